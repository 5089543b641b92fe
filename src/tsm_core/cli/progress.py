"""The ``--progress/--no-progress`` option of the commands with long steps (``tsm run``,
``tsm sample``, ``tsm redshift register``, ``tsm import``): tqdm bars on stderr, by
default only when stderr is a terminal (never in a pipe, a log file or a test)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

#: the option's help text
HELP = "Progress bars on stderr (default: when stderr is a terminal)."


def progress_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--progress/--no-progress`` (parameter ``progress``, ``None`` when not given)."""
    return click.option("--progress/--no-progress", default=None, help=HELP)(command)


def wants_progress(progress: bool | None) -> bool:
    """The user's choice, else whether stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else progress
