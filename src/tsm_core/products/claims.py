"""Claims on output names: one run, one name, whatever the registries and processes.

A run first claims its output name (:func:`claim_output`): a hidden claim file
``.<name>.tsm-claim`` is created exclusively beside it and, unless ``output.overwrite``
is set, the final name itself is reserved by creating it empty and exclusively. So two
runs, from any registries and processes, can never write the same file. The writer then
writes into a hidden staging directory beside the final file; only files that were closed
without error are moved into place, all of a run's files or none (:func:`commit_together`).
A failure removes the staging directory, the reservation and the claim, so nothing is left
behind; a claim left by a process that is gone is removed by the next claim on the name or
by the recovery of interrupted runs (:mod:`~tsm_core.products.recovery`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tsm_core.errors import OutputError
from tsm_core.products.output import STAGING_PREFIX, write_failure
from tsm_core.products.process import Owner, current_owner, owner_alive

CLAIM_SUFFIX = ".tsm-claim"
#: what a placed file replaced (``output.overwrite``) is kept in the staging folder under this
#: prefix until the run ends (a leading dot: no output name, which is slugged, starts so)
KEPT_PREFIX = ".old-"


def claim_path(final: Path) -> Path:
    """The hidden file that holds the claim on ``final``."""
    return final.parent / f".{final.name}{CLAIM_SUFFIX}"


def claimed_path(claim: Path) -> Path:
    """The output name a claim file holds (the inverse of :func:`claim_path`)."""
    return claim.parent / claim.name[1 : -len(CLAIM_SUFFIX)]


@dataclass
class OutputClaim:
    """A run's hold on its output name (see :func:`claim_output`)."""

    final: Path
    claim: Path
    placeholder: int | None  # inode of the empty file reserving ``final``, if we made one
    staging: Path | None = None
    committed: bool = field(default=False)
    kept: Path | None = field(default=None, repr=False)  # what a committed file replaced, until release

    def stage(self) -> Path:
        """Create the staging directory; returns the path the writer writes."""
        try:
            self.staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.final.parent))
        except OSError as exc:
            raise write_failure(exc, self.final.parent) from None
        return self.staging / self.final.name

    def commit(self, staged: Path) -> None:
        """Move the finished file into place, atomically replacing the reservation or, with
        ``overwrite``, an older file. The older file (or folder) is kept beside ``staged``
        until :meth:`release`, so that :meth:`undo` can put it back."""
        if not staged.exists():
            raise OutputError(f"the writer did not create {self.final.name}")
        kept = staged.parent / f"{KEPT_PREFIX}{self.final.name}"
        try:
            if staged.is_dir():  # a folder (a HATS catalog) cannot replace a file or a folder in one rename
                if self.placeholder is not None:
                    _remove_placeholder(self.final, self.placeholder)
                if self.final.is_dir():  # output.overwrite: the old folder is moved aside
                    os.replace(self.final, kept)
                    self.kept = kept
            elif self.placeholder is None and self.final.is_file():  # output.overwrite of an older file
                with suppress(OSError):  # (a file system without hard links: no way back)
                    os.link(self.final, kept)
                    self.kept = kept
            os.replace(staged, self.final)
        except OSError as exc:
            if self.kept is not None and not self.final.exists():
                os.replace(self.kept, self.final)
                self.kept = None
            raise OutputError(f"{self.final}: cannot move the finished file into place ({exc.strerror})") from exc
        self.committed = True

    def undo(self) -> None:
        """Take a committed file out of its place again and put back what it replaced."""
        if not self.committed:
            return
        if self.final.is_dir() and not self.final.is_symlink():
            shutil.rmtree(self.final, ignore_errors=True)
        else:
            self.final.unlink(missing_ok=True)
        if self.kept is not None:
            os.replace(self.kept, self.final)
            self.kept = None
        self.committed = False

    def release(self) -> None:
        """Remove the staging directory, and the reservation unless the file was committed;
        give up the claim. Safe to call more than once."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
        if not self.committed and self.placeholder is not None:
            _remove_placeholder(self.final, self.placeholder)
        with suppress(FileNotFoundError):
            if read_claim(self.claim).get("pid") == os.getpid():
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
                holder = read_claim(claim)
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
    """Remove what an interrupted run (process ``pid``) left: its staging folder (after putting
    back the older files it had replaced, if it stopped between two placements), its
    reservation of ``final`` (if still empty) and its claim (if still its own, and a file of
    this user's: a claim planted by someone else is left alone)."""
    if staging and Path(staging).name.startswith(STAGING_PREFIX):
        _put_back(Path(staging))
        shutil.rmtree(staging, ignore_errors=True)
    if not claim or not own_file(Path(claim)):
        return
    try:
        holder = read_claim(Path(claim))
    except FileNotFoundError:
        return
    if not holder or (pid is not None and holder.get("pid") != pid) or holder.get("host") != socket.gethostname():
        return
    if final and holder.get("placeholder") is not None:
        _remove_placeholder(Path(final), holder["placeholder"])
    with suppress(OSError):
        Path(claim).unlink()


def own_file(path: Path) -> bool:
    """Whether ``path`` is a regular file (not a link) of this process's user."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid()


def _put_back(staging: Path) -> None:
    """Move the older outputs kept in ``staging`` (see :meth:`OutputClaim.commit`) back over the
    files of a run that stopped before it ended: all or none holds after a SIGKILL too."""
    for kept in staging.glob(f"{KEPT_PREFIX}*"):
        final = staging.parent / kept.name[len(KEPT_PREFIX) :]
        with suppress(OSError):
            if final.is_dir() and not final.is_symlink():
                shutil.rmtree(final)
            os.replace(kept, final)


def read_claim(claim: Path) -> dict:
    """What a claim file records (host, pid, token, product and registry, placeholder inode);
    ``{}`` while it is being written or when it is unreadable. Raises FileNotFoundError."""
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
        if read_claim(claim) != holder:
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


def commit_together(placements: Sequence[tuple[OutputClaim, Path]]) -> None:
    """Move each staged file into place under its claim: all of them or none. If one move
    fails, those already made are taken back (an older file they replaced is put back) and
    the :class:`~tsm_core.errors.OutputError` is raised."""
    done: list[OutputClaim] = []
    try:
        for claim, staged in placements:
            claim.commit(staged)
            done.append(claim)
    except BaseException:
        for claim in reversed(done):
            with suppress(OSError):
                claim.undo()
        raise


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
