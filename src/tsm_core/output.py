"""Where the output goes: slugged file names, a staging directory, atomic placement.

A writer writes into a hidden staging directory beside the final file; only a file
that was closed without error is moved into place (an atomic rename on the same
file system). A failure removes the staging directory, so nothing is left behind.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tsm_core.errors import OutputError


def slugify(name: str, max_length: int = 64) -> str:
    """A file-name-safe form of ``name``: ASCII letters, digits, ``-`` and ``_`` only."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_name).strip("_-.")
    return slug[:max_length] or "training_set"


def output_file_name(name: str, product_id: int, extension: str) -> str:
    """``<slug of name>_<product id>.<ext>``."""
    return f"{slugify(name)}_{product_id}.{extension.lstrip('.')}"


def check_directory(directory: str | Path) -> Path:
    """Create ``directory`` if needed and check that files can be written in it."""
    path = Path(directory).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"output.directory {path}: cannot create it ({exc.strerror})") from None
    if not path.is_dir():
        raise OutputError(f"output.directory {path}: not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"output.directory {path}: not writable")
    return path.resolve()


@contextmanager
def staged_file(final: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging path for ``final``; move it into place only if the block succeeds."""
    if final.exists() and not overwrite:
        raise OutputError(f"{final} exists already; set output.overwrite to replace it")
    try:
        staging = Path(tempfile.mkdtemp(prefix=".tsm-staging-", dir=final.parent))
    except OSError as exc:
        raise OutputError(f"output.directory {final.parent}: cannot write there ({exc.strerror})") from None
    try:
        staged = staging / final.name
        yield staged
        if not staged.exists():
            raise OutputError(f"the writer did not create {final.name}")
        os.replace(staged, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
