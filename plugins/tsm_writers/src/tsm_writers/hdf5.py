"""HDF5 (h5py): one resizable 1-D dataset per column, as ``tables_io`` and RAIL read them.

The group is ``training_set`` (``photometry`` with ``output.layout: rail``, the default
``hdf5_groupname`` of RAIL). Each dataset has the attributes ``unit`` and
``description``; the group has ``columns`` (the column order), ``name``, ``product_id``, ``provenance`` (JSON) and, in
the RAIL layout, ``non_detection``. Strings are variable-length UTF-8; booleans are
HDF5 enums that h5py reads as numpy bool; a null in an integer column is written as
-2**63 and the dataset gets the attribute ``null_value``.
"""

from __future__ import annotations

import errno
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tsm_core import OutputMetadata, Writer
from tsm_core.config import OutputConfig
from tsm_writers.common import column_to_numpy, provenance_json

DEFAULT_GROUP = "training_set"
RAIL_GROUP = "photometry"
CHUNK_ROWS = 65_536


def group_name(options: OutputConfig) -> str:
    """The HDF5 group that holds the columns for ``options.layout``."""
    return RAIL_GROUP if options.layout == "rail" else DEFAULT_GROUP


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


class _HDF5Sink:
    def __init__(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> None:
        import h5py

        self.metadata = metadata
        self.raw = _GuardedFile(path)
        try:
            self._create(h5py, schema, metadata, options)
        except BaseException:
            self.close()
            raise

    def _create(self, h5py: Any, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> None:
        self.file = h5py.File(self.raw, "w")
        self.group = self.file.create_group(group_name(options))
        self.group.attrs["name"] = metadata.name
        self.group.attrs["description"] = metadata.description
        self.group.attrs["product_id"] = metadata.product_id
        if options.layout == "rail":
            fill = options.non_detection
            self.group.attrs["non_detection"] = np.nan if fill is None or math.isnan(fill) else fill
        # HDF5 lists datasets alphabetically: keep the column order as an attribute
        self.group.attrs["columns"] = schema.names
        self.n_rows = 0
        for f in schema:
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
                dtype = h5py.string_dtype("utf-8")
            elif pa.types.is_boolean(f.type):
                dtype = np.bool_
            else:
                dtype = np.dtype(f.type.to_pandas_dtype())
            ds = self.group.create_dataset(f.name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(CHUNK_ROWS,))
            info = metadata.columns.get(f.name)
            ds.attrs["unit"] = info.unit if info else ""
            ds.attrs["description"] = info.description if info else ""

    def write(self, table: pa.Table) -> None:
        self.raw.check()
        if not table.num_rows:
            return
        start, stop = self.n_rows, self.n_rows + table.num_rows
        for name in table.column_names:
            column = table.column(name)
            values, sentinel = column_to_numpy(column)
            ds = self.group[name]
            ds.resize((stop,))
            ds[start:stop] = values
            if column.null_count and sentinel is not None:
                ds.attrs["null_value"] = sentinel
        self.n_rows = stop
        self.raw.check()

    def close(self) -> None:
        try:
            if hasattr(self, "group") and self.raw.error is None:
                self.group.attrs["provenance"] = provenance_json(self.metadata)
        finally:
            try:
                if hasattr(self, "file"):
                    self.file.close()
            finally:
                self.raw.close()
        self.raw.check()


class HDF5Writer(Writer):
    name = "hdf5"
    extension = "hdf5"
    description = "HDF5 (h5py), one dataset per column as tables_io/RAIL read it; `output.layout: rail` for RAIL names"

    def open(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> _HDF5Sink:
        return _HDF5Sink(path, schema, metadata, options)
