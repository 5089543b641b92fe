"""HDF5 (h5py): the training set as one table that pandas, astropy, h5py and PyTables open
with no options; the RAIL layout as one 1-D dataset per column, as ``tables_io`` and RAIL read it.

Default layout: the group ``training_set`` holds one compound dataset ``table`` (one field
per column, in order) and nothing else that a reader takes for a table, so
``pandas.read_hdf(path)`` (PyTables' generic table) and ``astropy.table.Table.read(path)``
find it without a key or ``path=``. Beside it, ``table.__table_column_meta__`` is astropy's
serialized header (each column's ``unit`` and ``description``; the table's ``meta``:
``name``, ``description``, ``product_id``, ``provenance``). The group's attributes hold
``name``, ``product_id``, ``columns``, ``provenance`` (JSON) and ``null_values`` (JSON:
column -> the sentinel of its nulls).

RAIL layout (``output.layout: rail``): the group ``photometry`` (RAIL's default
``hdf5_groupname``) holds one resizable 1-D dataset per column, each with the attributes
``unit`` and ``description``; the group has ``columns`` (the column order), ``name``,
``product_id``, ``provenance``, ``non_detection`` and ``mag_limits``.

Strings are fixed-width UTF-8 (sized from the column's longest value where known, else
from the first chunk's, at least :data:`MIN_STRING_BYTES`; a longer value later is refused),
which h5py and astropy read as bytes and pandas as text; booleans are HDF5 enums that
h5py and astropy read as bool (pandas as 0/1 integers); a null in an integer column is
written as -2**63 (``null_value`` of its dataset, or the group's ``null_values``).

Datasets are chunked and compressed (gzip with byte shuffle, which every HDF5 reader
decodes). Rows are buffered until a chunk of :data:`CHUNK_ROWS` is full, so a file
smaller than one chunk gets chunks of exactly its own length instead of a mostly
empty 65,536-row chunk.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from tsm_core import OutputConfig, OutputMetadata, Writer
from tsm_core.errors import OutputError
from tsm_writers.common import column_to_numpy, provenance_json
from tsm_writers.hdf5_guard import _GuardedFile

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_GROUP = "training_set"
RAIL_GROUP = "photometry"
#: the compound dataset of the default layout, in its group
TABLE = "table"
#: astropy's name for the dataset of a table's serialized header (``astropy.io.misc.hdf5.META_KEY``)
META_KEY = "__table_column_meta__"
CHUNK_ROWS = 65_536
#: width of a string column whose longest value is not known before the first chunk
MIN_STRING_BYTES = 64
#: h5py's dataset options for compression: gzip (deflate) with the shuffle filter
COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


def group_name(options: OutputConfig) -> str:
    """The HDF5 group that holds the columns for ``options.layout``."""
    return RAIL_GROUP if options.layout == "rail" else DEFAULT_GROUP


class _HDF5Sink:
    def __init__(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> None:
        import h5py

        self.metadata = metadata
        self.rail = options.layout == "rail"
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
        if self.rail:
            rail = metadata.provenance.get("rail_layout", {})
            fill = rail.get("non_detection", options.non_detection)
            self.group.attrs["non_detection"] = np.nan if fill is None or math.isnan(fill) else fill
            if rail.get("mag_limits"):
                self.group.attrs["mag_limits"] = json.dumps(rail["mag_limits"])
        # HDF5 lists datasets alphabetically: keep the column order as an attribute
        self.group.attrs["columns"] = schema.names
        self.schema = schema
        self.dtypes = {f.name: _dtype(f, metadata) for f in schema}
        self.nulls: dict[str, int] = {}
        self.n_rows = 0
        self.pending: list[pa.Table] = []  # rows held until the first chunk is full
        self.created = False

    def _create(self, chunk_rows: int) -> None:
        chunks = (max(chunk_rows, 1),)
        if not self.rail:
            self._size_strings()
            compound = np.dtype([(f.name, self.dtypes[f.name]) for f in self.schema])
            self.group.create_dataset(TABLE, shape=(0,), maxshape=(None,), dtype=compound, chunks=chunks, **COMPRESSION)
            self.created = True
            return
        for f in self.schema:
            ds = self.group.create_dataset(
                f.name, shape=(0,), maxshape=(None,), dtype=self.dtypes[f.name], chunks=chunks, **COMPRESSION
            )
            info = self.metadata.columns.get(f.name)
            ds.attrs["unit"] = info.unit if info else ""
            ds.attrs["description"] = info.description if info else ""
        self.created = True

    def _size_strings(self) -> None:
        """A fixed width for each string column of unknown length (a compound field has no
        variable-length strings that PyTables reads): the first chunk's longest, at least 64 bytes."""
        import h5py

        for name, dtype in self.dtypes.items():
            if dtype.kind == "O":  # h5py's variable-length string
                longest = max(
                    (len(v.encode()) for t in self.pending for v in t.column(name).drop_null().to_pylist()), default=0
                )
                self.dtypes[name] = h5py.string_dtype("utf-8", length=max(longest, MIN_STRING_BYTES))

    def _columns(self, table: pa.Table) -> dict[str, np.ndarray]:
        """``table``'s columns as the dataset's numpy values (strings encoded, nulls as sentinels)."""
        out = {}
        for name in table.column_names:
            column = table.column(name)
            values, sentinel = column_to_numpy(column)
            dtype = self.dtypes[name]
            if values.dtype == object and dtype.kind == "S":
                encoded = [v.encode("utf-8") for v in values]
                too_long = next((v for v in encoded if len(v) > dtype.itemsize), None)
                if too_long is not None:
                    raise OutputError(
                        f"HDF5 column {name}: value {too_long.decode()!r} is longer than {dtype.itemsize} bytes"
                    )
                values = np.array(encoded, dtype=dtype)
            out[name] = values
            if column.null_count and sentinel is not None:
                self.nulls[name] = sentinel
        return out

    def _append(self, table: pa.Table) -> None:
        self.raw.check()
        start, stop = self.n_rows, self.n_rows + table.num_rows
        columns = self._columns(table)
        if self.rail:
            for name, values in columns.items():
                ds = self.group[name]
                ds.resize((stop,))
                ds[start:stop] = values
                if name in self.nulls:
                    ds.attrs["null_value"] = self.nulls[name]
        else:
            ds = self.group[TABLE]
            rows = np.empty(table.num_rows, dtype=ds.dtype)
            for name, values in columns.items():
                rows[name] = values
            ds.resize((stop,))
            ds[start:stop] = rows
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

    def _write_header(self) -> None:
        """astropy's serialized header beside the table: units, descriptions and the table's meta."""
        from astropy.table import Table, meta

        table = Table(np.zeros(0, dtype=self.group[TABLE].dtype))
        for name in table.colnames:
            info = self.metadata.columns.get(name)
            if info and info.unit:
                table[name].unit = info.unit
            if info and info.description:
                table[name].description = info.description
            if name in self.nulls:
                table[name].meta["null_value"] = self.nulls[name]
        table.meta.update(
            name=self.metadata.name,
            description=self.metadata.description,
            product_id=self.metadata.product_id,
            provenance=json.loads(provenance_json(self.metadata)),
        )
        header = [line.encode("utf-8") for line in meta.get_yaml_from_table(table)]
        self.group.create_dataset(f"{TABLE}.{META_KEY}", data=np.array(header))
        self.group.attrs["null_values"] = json.dumps(self.nulls)

    def close(self) -> None:
        try:
            if hasattr(self, "pending") and self.raw.error is None:
                if not self.created:
                    self._create(sum(t.num_rows for t in self.pending))
                    self._flush()
                self.group.attrs["provenance"] = provenance_json(self.metadata)
                if not self.rail:
                    self._write_header()
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


def _decoded(values: np.ndarray) -> np.ndarray:
    """Fixed-width UTF-8 bytes as text."""
    return np.array([v.decode("utf-8") for v in values], dtype=object)


class HDF5Writer(Writer):
    name = "hdf5"
    extension = "hdf5"
    description = (
        "HDF5, one table that pandas.read_hdf and astropy read with no options; `output.layout: rail` for RAIL"
    )

    def open(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> _HDF5Sink:
        return _HDF5Sink(path, schema, metadata, options)

    def read(self, path: Path) -> pd.DataFrame:
        """The columns of the file's table (``training_set/table``) or group of columns
        (``photometry``, or the 1-D datasets of a file written before tables) in their order:
        strings decoded, an integer null sentinel as ``<NA>`` (``Int64``)."""
        import h5py
        import pandas as pd

        columns: dict[str, Any] = {}
        with h5py.File(path, "r") as fh:
            groups = [g for g in fh.values() if isinstance(g, h5py.Group)] or [fh]
            group = max(groups, key=len)
            table = group.get(TABLE)
            if isinstance(table, h5py.Dataset) and table.dtype.names:
                rows = table[()]
                nulls = json.loads(group.attrs.get("null_values", "{}"))
                for name in table.dtype.names:
                    kind = rows.dtype[name].kind
                    columns[name] = _decoded(rows[name]) if kind == "S" else rows[name]
            else:
                names = [str(n) for n in group.attrs.get("columns", list(group))]
                nulls = {n: group[n].attrs["null_value"] for n in names if "null_value" in group[n].attrs}
                for name in names:
                    ds = group[name]
                    string = h5py.check_string_dtype(ds.dtype) is not None
                    columns[name] = ds.asstr()[()] if string else ds[()]
        for name, sentinel in nulls.items():
            values = pd.array(columns[name], dtype="Int64")
            values[values == sentinel] = pd.NA
            columns[name] = values
        return pd.DataFrame(columns)
