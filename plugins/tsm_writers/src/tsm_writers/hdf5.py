"""HDF5 (h5py): one resizable 1-D dataset per column, as ``tables_io`` and RAIL read them.

The group is ``training_set`` (``photometry`` with ``output.layout: rail``, the default
``hdf5_groupname`` of RAIL). Each dataset has the attributes ``unit`` and
``description``; the group has ``columns`` (the column order), ``name``, ``product_id``, ``provenance`` (JSON) and, in
the RAIL layout, ``non_detection``. Strings are variable-length UTF-8; booleans are
HDF5 enums that h5py reads as numpy bool; a null in an integer column is written as
-2**63 and the dataset gets the attribute ``null_value``.
"""

from __future__ import annotations

import math
from pathlib import Path

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


class _HDF5Sink:
    def __init__(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> None:
        import h5py

        self.metadata = metadata
        self.file = h5py.File(path, "w")
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

    def close(self) -> None:
        try:
            self.group.attrs["provenance"] = provenance_json(self.metadata)
        finally:
            self.file.close()


class HDF5Writer(Writer):
    name = "hdf5"
    extension = "hdf5"
    description = "HDF5 (h5py), one dataset per column as tables_io/RAIL read it; `output.layout: rail` for RAIL names"

    def open(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> _HDF5Sink:
        return _HDF5Sink(path, schema, metadata, options)
