"""What every writer of this plugin shares: provenance text and null handling."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tsm_core import OutputMetadata

#: written in place of a null in integer columns of formats that have no nulls (FITS, HDF5)
INTEGER_NULL = np.iinfo(np.int64).min


def provenance_json(metadata: OutputMetadata) -> str:
    """The run's provenance as compact JSON."""
    return json.dumps(metadata.provenance, default=str, sort_keys=True)


def column_to_numpy(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, int | None]:
    """A column as numpy; nulls of integer columns become :data:`INTEGER_NULL`.

    Returns the array and the null sentinel used (None where there was no need).
    """
    typ = column.type
    if pa.types.is_integer(typ):
        if column.null_count:
            return pc.fill_null(column, INTEGER_NULL).to_numpy().astype(np.int64), INTEGER_NULL
        return column.to_numpy(), INTEGER_NULL if typ == pa.int64() else None
    if pa.types.is_floating(typ):
        return pc.fill_null(column, np.nan).to_numpy(), None
    if pa.types.is_boolean(typ):
        return pc.fill_null(column, False).to_numpy(zero_copy_only=False), None
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return np.asarray(pc.fill_null(column, "").to_pylist(), dtype=object), None
    raise TypeError(f"column type {typ} is not supported by this writer")
