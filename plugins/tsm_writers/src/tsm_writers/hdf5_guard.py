"""The file HDF5 writes through, so that a failed write (a full disk) never reaches the HDF5 library."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path


class _GuardedFile(io.RawIOBase):
    """The file HDF5 writes through (h5py's ``fileobj`` driver), so that a failed write
    (a full disk) never reaches the HDF5 library.

    HDF5 does not survive a failed write: the file stays open in a broken state and the
    library crashes the process (SIGSEGV) when it closes it, at the latest when Python
    exits. Here the first failure is kept in :attr:`error` and every later write is
    dropped as if it had succeeded, so HDF5 closes cleanly; the sink then raises the
    error and the file is discarded.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.raw = open(path, "w+b", buffering=0)  # noqa: SIM115 - closed in close()
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        return self.raw.readinto(buffer)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def write(self, data: bytes | memoryview) -> int:
        size = memoryview(data).nbytes
        written = 0
        if self.error is None:
            try:
                written = self.raw.write(data) or 0
                if written == size:
                    return size
                raise OSError(errno.ENOSPC, "No space left on device (short write)")
            except OSError as exc:
                self.error = exc
        self.raw.seek(size - written, 1)  # as if all was written: HDF5 must not see the failure
        return size

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self.raw.truncate(size)
            except OSError as exc:
                self.error = exc
        return self.tell() if size is None else size

    def flush(self) -> None:
        if self.error is None and not self.raw.closed:
            try:
                self.raw.flush()
                os.fsync(self.raw.fileno())
            except OSError as exc:
                self.error = exc

    def close(self) -> None:
        if not self.closed:
            try:
                self.flush()
            finally:
                self.raw.close()
                super().close()

    def check(self) -> None:
        """Raise the first write failure, if there was one."""
        if self.error is not None:
            raise self.error
