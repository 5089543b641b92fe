"""Where the output goes: slugged file names, a claim on the name, staging, atomic placement.

A run first claims its output name (:func:`claim_output`): a hidden claim file
``.<name>.tsm-claim`` is created exclusively beside it and, unless ``output.overwrite``
is set, the final name itself is reserved by creating it empty and exclusively. So two
runs, from any registries and processes, can never write the same file. The writer
then writes into a hidden staging directory beside the final file; only a file that was
closed without error is moved into place (an atomic rename, also when it replaces an
existing file). A failure removes the staging directory, the reservation and the claim,
so nothing is left behind.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import tempfile
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from tsm_core.errors import OutputError, TSMError, one_line
from tsm_core.products.process import Owner, current_owner, owner_alive

if TYPE_CHECKING:
    import pyarrow as pa

    from tsm_core.config import OutputConfig
    from tsm_core.plugins.records import OutputMetadata, Sink, Writer

K = TypeVar("K")

STAGING_PREFIX = ".tsm-staging-"
CLAIM_SUFFIX = ".tsm-claim"


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


def claim_path(final: Path) -> Path:
    """The hidden file that holds the claim on ``final``."""
    return final.parent / f".{final.name}{CLAIM_SUFFIX}"


@dataclass
class OutputClaim:
    """A run's hold on its output name (see :func:`claim_output`)."""

    final: Path
    claim: Path
    placeholder: int | None  # inode of the empty file reserving ``final``, if we made one
    staging: Path | None = None
    committed: bool = field(default=False)

    def stage(self) -> Path:
        """Create the staging directory; returns the path the writer writes."""
        try:
            self.staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.final.parent))
        except OSError as exc:
            raise write_failure(exc, self.final.parent) from None
        return self.staging / self.final.name

    def commit(self, staged: Path) -> None:
        """Move the finished file into place (atomically replacing the reservation or,
        with ``overwrite``, an older file)."""
        if not staged.exists():
            raise OutputError(f"the writer did not create {self.final.name}")
        if staged.is_dir():  # a folder (a HATS catalog) cannot replace a file or a folder in one rename
            if self.placeholder is not None:
                _remove_placeholder(self.final, self.placeholder)
            if self.final.is_dir():  # output.overwrite: the old folder is moved aside, then removed
                aside = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.final.parent)) / "old"
                os.replace(self.final, aside)
                os.replace(staged, self.final)
                shutil.rmtree(aside.parent, ignore_errors=True)
                self.committed = True
                return
        os.replace(staged, self.final)
        self.committed = True

    def release(self) -> None:
        """Remove the staging directory, and the reservation unless the file was committed;
        give up the claim. Safe to call more than once."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
        if not self.committed and self.placeholder is not None:
            _remove_placeholder(self.final, self.placeholder)
        with suppress(FileNotFoundError):
            if _read_claim(self.claim).get("pid") == os.getpid():
                self.claim.unlink()


def claim_output(final: Path, overwrite: bool = False, owner: dict | None = None) -> OutputClaim:
    """Claim the output name ``final`` for this process, or fail saying who holds it.

    ``owner`` (product ID, registry) is recorded in the claim for the message another
    run gets. A claim left by a process of this host that is gone is taken over.
    """
    me = current_owner()
    record = {"host": me.host, "pid": me.pid, "token": me.token, **(owner or {})}
    claim = claim_path(final)
    for _attempt in range(3):
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = _read_claim(claim)
            except FileNotFoundError:  # released meanwhile: try again
                continue
            if _stale(holder):
                _drop_stale_claim(final, claim, holder)
                continue
            who = f"process {holder.get('pid')} on {holder.get('host')}" if holder else "another run"
            if holder.get("product_id") is not None:
                who = f"training set {holder['product_id']} of {holder.get('registry', '?')} ({who})"
            raise OutputError(f"{final} is taken: {who} is writing it; choose another name or directory") from None
        except OSError as exc:
            raise write_failure(exc, final.parent) from None
        break
    else:
        raise OutputError(f"{final} is taken: its claim {claim} keeps changing hands")
    placeholder = None
    try:
        if not overwrite:
            try:
                reserved = os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                raise OutputError(
                    f"{final} exists already (the file is taken); set output.overwrite to replace it"
                ) from None
            placeholder = os.fstat(reserved).st_ino
            os.close(reserved)
            record["placeholder"] = placeholder
        with os.fdopen(fd, "w") as fh:
            fd = -1
            json.dump(record, fh)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        if placeholder is not None:
            _remove_placeholder(final, placeholder)
        with suppress(OSError):
            claim.unlink()
        raise
    return OutputClaim(final, claim, placeholder)


def release_files(staging: str | None, claim: str | None, final: str | None, pid: int | None = None) -> None:
    """Remove what an interrupted run (process ``pid``) left: its staging folder, its
    reservation of ``final`` (if still empty) and its claim (if still its own)."""
    if staging and Path(staging).name.startswith(STAGING_PREFIX):
        shutil.rmtree(staging, ignore_errors=True)
    if not claim:
        return
    try:
        holder = _read_claim(Path(claim))
    except FileNotFoundError:
        return
    if not holder or (pid is not None and holder.get("pid") != pid) or holder.get("host") != socket.gethostname():
        return
    if final and holder.get("placeholder") is not None:
        _remove_placeholder(Path(final), holder["placeholder"])
    with suppress(OSError):
        Path(claim).unlink()


def remove_output(path: Path) -> None:
    """Delete a product's file (gone already is fine)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot remove {path}: {exc.strerror}") from None


def _read_claim(claim: Path) -> dict:
    try:
        data = json.loads(claim.read_text() or "{}")
    except FileNotFoundError:
        raise
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _stale(holder: dict) -> bool:
    if not holder.get("pid") or not holder.get("host"):
        return False  # being written right now, or not ours to judge
    return owner_alive(Owner(holder["host"], int(holder["pid"]), holder.get("token"))) is False


def _drop_stale_claim(final: Path, claim: Path, holder: dict) -> None:
    with suppress(FileNotFoundError):
        if _read_claim(claim) != holder:
            return  # taken over meanwhile
        if holder.get("placeholder") is not None:
            _remove_placeholder(final, holder["placeholder"])
        claim.unlink()


def _remove_placeholder(final: Path, inode: int) -> None:
    """Remove ``final`` only if it is still the empty file made to reserve the name."""
    with suppress(OSError):
        st = final.stat()
        if st.st_ino == inode and st.st_size == 0:
            final.unlink()


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
def staged_file(final: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging path for ``final``; move it into place only if the block succeeds.

    Claims the name first (:func:`claim_output`) and releases everything on failure.
    """
    claim = claim_output(final, overwrite)
    try:
        staged = claim.stage()
        yield staged
        claim.commit(staged)
    finally:
        claim.release()


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
