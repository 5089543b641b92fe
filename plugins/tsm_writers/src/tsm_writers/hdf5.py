"""HDF5 (h5py): one resizable 1-D dataset per column, as ``tables_io`` and RAIL read them.

The group is ``training_set`` (``photometry`` with ``output.layout: rail``, the default
``hdf5_groupname`` of RAIL). Each dataset has the attributes ``unit`` and
``description``; the group has ``columns`` (the column order), ``name``, ``product_id``, ``provenance`` (JSON) and, in
the RAIL layout, ``non_detection`` and ``mag_limits``. Strings are fixed-width UTF-8 (sized from the
column's longest value; variable-length where that is unknown), which h5py reads as
bytes; booleans are HDF5 enums that h5py reads as numpy bool; a null in an integer
column is written as -2**63 and the dataset gets the attribute ``null_value``.

Datasets are chunked and compressed (gzip with byte shuffle, which every HDF5 reader
decodes). Rows are buffered until a chunk of :data:`CHUNK_ROWS` is full, so a file
smaller than one chunk gets chunks of exactly its own length instead of a mostly
empty 65,536-row chunk.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from tsm_core import OutputConfig, OutputMetadata, Writer
from tsm_writers.common import column_to_numpy, provenance_json

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_GROUP = "training_set"
RAIL_GROUP = "photometry"
CHUNK_ROWS = 65_536
#: h5py's dataset options for compression: gzip (deflate) with the shuffle filter
COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


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
            self._open_file(h5py, schema, metadata, options)
        except BaseException:
            self.close()
            raise

    def _open_file(self, h5py: Any, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> None:
        self.file = h5py.File(self.raw, "w")
        self.group = self.file.create_group(group_name(options))
        self.group.attrs["name"] = metadata.name
        self.group.attrs["description"] = metadata.description
        self.group.attrs["product_id"] = metadata.product_id
        if options.layout == "rail":
            rail = metadata.provenance.get("rail_layout", {})
            fill = rail.get("non_detection", options.non_detection)
            self.group.attrs["non_detection"] = np.nan if fill is None or math.isnan(fill) else fill
            if rail.get("mag_limits"):
                self.group.attrs["mag_limits"] = json.dumps(rail["mag_limits"])
        # HDF5 lists datasets alphabetically: keep the column order as an attribute
        self.group.attrs["columns"] = schema.names
        self.schema = schema
        self.dtypes = {f.name: _dtype(f, metadata) for f in schema}
        self.n_rows = 0
        self.pending: list[pa.Table] = []  # rows held until the first chunk is full
        self.created = False

    def _create(self, chunk_rows: int) -> None:
        for f in self.schema:
            ds = self.group.create_dataset(
                f.name,
                shape=(0,),
                maxshape=(None,),
                dtype=self.dtypes[f.name],
                chunks=(max(chunk_rows, 1),),
                **COMPRESSION,
            )
            info = self.metadata.columns.get(f.name)
            ds.attrs["unit"] = info.unit if info else ""
            ds.attrs["description"] = info.description if info else ""
        self.created = True

    def _append(self, table: pa.Table) -> None:
        self.raw.check()
        start, stop = self.n_rows, self.n_rows + table.num_rows
        for name in table.column_names:
            column = table.column(name)
            values, sentinel = column_to_numpy(column)
            ds = self.group[name]
            if values.dtype == object and ds.dtype.kind == "S":
                values = np.array([v.encode("utf-8") for v in values], dtype=ds.dtype)
            ds.resize((stop,))
            ds[start:stop] = values
            if column.null_count and sentinel is not None:
                ds.attrs["null_value"] = sentinel
        self.n_rows = stop
        self.raw.check()

    def _flush(self) -> None:
        if self.pending:
            self._append(pa.concat_tables(self.pending))
            self.pending = []

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if self.created:
            self._append(table)
            return
        self.pending.append(table)
        if sum(t.num_rows for t in self.pending) >= CHUNK_ROWS:
            self._create(CHUNK_ROWS)
            self._flush()

    def close(self) -> None:
        try:
            if hasattr(self, "pending") and self.raw.error is None:
                if not self.created:
                    self._create(sum(t.num_rows for t in self.pending))
                    self._flush()
                self.group.attrs["provenance"] = provenance_json(self.metadata)
        finally:
            try:
                if hasattr(self, "file"):
                    self.file.close()
            finally:
                self.raw.close()
        self.raw.check()


def _dtype(f: pa.Field, metadata: OutputMetadata) -> np.dtype:
    """The HDF5 dtype of a column: fixed-width UTF-8 strings where the longest value is known."""
    import h5py

    if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
        info = metadata.columns.get(f.name)
        if info and info.max_length:
            return h5py.string_dtype("utf-8", length=info.max_length)
        return h5py.string_dtype("utf-8")
    if pa.types.is_boolean(f.type):
        return np.dtype(np.bool_)
    return np.dtype(f.type.to_pandas_dtype())


class HDF5Writer(Writer):
    name = "hdf5"
    extension = "hdf5"
    description = "HDF5 (h5py), one dataset per column as tables_io/RAIL read it; `output.layout: rail` for RAIL names"

    def open(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> _HDF5Sink:
        return _HDF5Sink(path, schema, metadata, options)

    def read(self, path: Path) -> pd.DataFrame:
        """The columns of the file's group (``training_set`` or ``photometry``) in their
        order: strings decoded, a ``null_value`` integer as ``<NA>`` (``Int64``)."""
        import h5py
        import pandas as pd

        with h5py.File(path, "r") as fh:
            groups = [g for g in fh.values() if isinstance(g, h5py.Group)] or [fh]
            group = max(groups, key=len)
            names = [str(n) for n in group.attrs.get("columns", list(group))]
            columns = {}
            for name in names:
                ds = group[name]
                if h5py.check_string_dtype(ds.dtype) is not None:
                    columns[name] = ds.asstr()[()]
                    continue
                values = ds[()]
                if "null_value" in ds.attrs:
                    values = pd.array(values, dtype="Int64")
                    values[values == ds.attrs["null_value"]] = pd.NA
                columns[name] = values
        return pd.DataFrame(columns)
