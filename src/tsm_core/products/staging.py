"""Staging folders that outlive no process: what ``tsm redshift register`` and ``tsm import``
write before it is complete.

:func:`owned_staging` creates a hidden folder ``.tsm-staging-KIND-<random>`` beside where the
result goes, with an owner file (host, pid and start token of this process, as
:mod:`tsm_core.products.process` tells processes apart) and removes it on any exit of the
``with`` block (an error, Ctrl-C, a SIGTERM turned into an exception by the ``tsm``
command). After a SIGKILL nothing runs, so :func:`sweep_staging` (called when the next
command of the same kind starts, and when a registry is recovered) removes the folders whose
owner is gone. A result moved out of its staging folder keeps an owner file
(:func:`mark_owner`) until it is recorded (:func:`clear_owner`): a sweep removes it if its
owner died before that, unless ``keep`` says it was recorded.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tsm_core.products.process import Owner, current_owner, owner_alive

log = logging.getLogger(__name__)

#: the names of staging folders start with this (then the kind, then a random part)
PREFIX = ".tsm-staging-"
#: the owner file inside a staging folder or a result not yet recorded
OWNER_FILE = ".tsm-owner.json"


def mark_owner(folder: Path) -> None:
    """Write this process as the owner of ``folder`` (which exists)."""
    me = current_owner()
    (folder / OWNER_FILE).write_text(json.dumps({"host": me.host, "pid": me.pid, "token": me.token}))


def clear_owner(folder: Path) -> None:
    """``folder`` is recorded: no sweep may remove it any more."""
    (folder / OWNER_FILE).unlink(missing_ok=True)


def _owner_gone(folder: Path) -> bool:
    """True when ``folder`` has an owner file whose process is gone (on this host)."""
    try:
        held = json.loads((folder / OWNER_FILE).read_text())
        owner = Owner(str(held["host"]), int(held["pid"]), held.get("token"))
    except (OSError, ValueError, KeyError, TypeError):
        return False  # no owner file (not ours, or not written yet): left alone
    return owner_alive(owner) is False


@contextmanager
def owned_staging(parent: Path, kind: str) -> Iterator[Path]:
    """A new staging folder in ``parent`` owned by this process, removed when the block ends
    (move what it holds out of it to keep it)."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = parent / f"{PREFIX}{kind}-{uuid.uuid4().hex}"
    folder.mkdir()
    try:
        mark_owner(folder)
        yield folder
    finally:
        _remove(folder)


def _remove(folder: Path, patience: float = 10.0) -> None:
    """Remove ``folder``, again while something still writes into it: after an interrupt,
    the threads of a computation (LSDB writing partitions) may finish a file in it after
    the main thread has left; they start no new task, so it empties within seconds."""
    end = time.monotonic() + patience
    while True:
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists() or time.monotonic() > end:
            return
        time.sleep(0.05)


def sweep_staging(parent: Path, keep: Callable[[Path], bool] = lambda _path: False) -> list[Path]:
    """Remove from ``parent`` the staging folders, and the results never recorded, whose
    owning process is gone; a result that ``keep`` says was recorded only loses its owner
    file. Returns what was removed. Folders of live processes and of other hosts stay."""
    removed: list[Path] = []
    try:
        children = list(parent.iterdir())
    except OSError:
        return removed
    for child in children:
        if not child.is_dir() or not _owner_gone(child):
            continue
        if not child.name.startswith(PREFIX) and keep(child):
            clear_owner(child)
            continue
        shutil.rmtree(child, ignore_errors=True)
        log.warning("removed %s, left by an interrupted command", child)
        removed.append(child)
    return removed
