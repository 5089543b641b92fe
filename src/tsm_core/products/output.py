"""Where the output goes: slugged file names, the output directory, the writers' sinks, and
one-line errors for a full disk.

The claim on an output name, its staging folder and the placement of the finished files
are :mod:`~tsm_core.products.claims`.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from tsm_core.errors import OutputError, TSMError, one_line

if TYPE_CHECKING:
    import pyarrow as pa

    from tsm_core.config import OutputConfig
    from tsm_core.plugins.records import OutputMetadata, Sink, Writer

K = TypeVar("K")

STAGING_PREFIX = ".tsm-staging-"


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


def remove_output(path: Path) -> None:
    """Delete a product's file (gone already is fine)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot remove {path}: {exc.strerror}") from None


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def write_failure(exc: BaseException, directory: Path) -> OutputError:
    """One line for a failed write in ``directory``, naming it and its free space."""
    try:
        free = shutil.disk_usage(directory).free
        room = f"{_size(free)} free"
    except OSError:
        free, room = None, "free space unknown"
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or "No space left" in str(exc) or (code is None and free is not None and free < 2**20):
        reason = "no space left on the device"
    elif code == errno.EDQUOT:
        reason = "disk quota exceeded"
    elif code == errno.EFBIG:
        reason = "the file is larger than the file system or the file-size limit allows"
    else:
        reason = f"cannot write the output: {one_line(exc)}"
    return OutputError(f"output.directory {directory}: {reason} ({room})")


class writing_into:  # noqa: N801 - used as a reusable context manager
    """``with writing_into(directory): ...`` turns an ``OSError`` of a writer (a full
    disk, a quota, a vanished folder) into one :class:`~tsm_core.errors.OutputError`
    line naming ``directory`` and its free space. Reusable."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> Literal[False]:
        if exc is None or isinstance(exc, TSMError):
            return False
        cause = exc if isinstance(exc, OSError) else disk_full_cause(exc)
        if cause is not None:
            raise write_failure(cause, self.directory) from exc
        return False


#: the errors of a full disk, a quota or a file-size limit
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def disk_full_cause(exc: BaseException) -> OSError | None:
    """The full-disk ``OSError`` behind ``exc``, also when a library wrapped it (LSDB raises
    ``RuntimeError("Error applying function ...: [Errno 28] ...")`` from a Dask task, and a
    task's error may reach us without its ``__cause__``); None if there is none."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    found = re.search(r"\[Errno (\d+)\]", str(exc))
    if found and int(found.group(1)) in DISK_FULL_ERRNOS:
        code = int(found.group(1))
        return OSError(code, os.strerror(code))
    return None


@contextmanager
def open_sinks(
    writer: Writer,
    paths: Mapping[K, Path],
    schema: pa.Schema,
    metadata: OutputMetadata,
    options: OutputConfig,
    guard: Any = None,
) -> Iterator[dict[K, Sink]]:
    """One open sink of ``writer`` per staged path, for the ``with`` block.

    Leaving the block normally closes every sink (the first failure is raised once all
    are closed); leaving it with an error closes them quietly and re-raises the error
    (the staged files are discarded). ``guard`` (a context manager, such as
    :func:`writing_into`) wraps each open and close, to turn a full disk into one line.
    """
    guard = guard if guard is not None else nullcontext()
    sinks: dict[K, Sink] = {}
    try:
        for key, path in paths.items():
            with guard:
                sinks[key] = writer.open(path, schema, metadata, options)
        yield sinks
    except BaseException:
        for sink in sinks.values():
            with suppress(Exception):  # the staged files are discarded; keep the first error
                sink.close()
        raise
    first: BaseException | None = None
    for sink in sinks.values():
        try:
            with guard:
                sink.close()
        except BaseException as exc:  # noqa: BLE001 - raised below, once every sink is closed
            first = first or exc
    if first is not None:
        raise first
