"""ECSV (astropy's Enhanced Character Separated Values): CSV with a YAML header.

The header carries each column's type, ``unit`` and ``description``, and the table's
``meta``: ``name``, ``product_id`` and ``provenance`` (the run's provenance as a mapping).
``astropy.table.Table.read(path)`` gives all of it back; ``pandas.read_csv(path,
comment="#")`` the rows (the header lines start with ``#``). Null integers are masked
(written as empty fields).

The provenance is complete only when the run ends (row counts) and the header comes first,
so batches are spooled to a Parquet file in the staging directory and the ECSV file is
written from it when the sink closes (the training set is held in memory once, then).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tsm_core import OutputMetadata, Writer
from tsm_core.config import OutputConfig
from tsm_writers.common import provenance_json
from tsm_writers.parquet import PartFileSink

if TYPE_CHECKING:
    import pandas as pd
    from astropy.table import Table


def astropy_table(table: pa.Table, metadata: OutputMetadata) -> Table:
    """``table`` as an astropy Table: nulls masked, units, descriptions and provenance kept."""
    from astropy.table import MaskedColumn
    from astropy.table import Table as AstropyTable

    columns = []
    for name in table.column_names:
        column = table.column(name)
        values = column.to_numpy(zero_copy_only=False)
        mask = column.is_null().to_numpy(zero_copy_only=False)
        if mask.any():
            fill = "" if values.dtype == object else 0
            values = np.where(mask, fill, values).astype(column.type.to_pandas_dtype())
        if values.dtype == object:
            values = values.astype(str)
        info = metadata.columns.get(name)
        columns.append(
            MaskedColumn(
                values,
                name=name,
                mask=mask if mask.any() else None,
                unit=(info.unit or None) if info else None,
                description=info.description if info else None,
            )
        )
    meta = {
        "name": metadata.name,
        "product_id": metadata.product_id,
        "provenance": json.loads(provenance_json(metadata)),
    }
    return AstropyTable(columns, meta=meta, copy=False)


class _ECSVSink(PartFileSink):
    def close(self) -> None:
        self.writer.close()
        try:
            table = pq.read_table(self.part)
            astropy_table(table, self.metadata).write(self.path, format="ascii.ecsv", delimiter=",", overwrite=True)
            first = table.schema.field(0).type if table.num_columns else None
            if first is not None and (pa.types.is_string(first) or pa.types.is_large_string(first)):
                quote_leading_hashes(self.path)
        finally:
            self.part.unlink(missing_ok=True)


def quote_leading_hashes(path: Path) -> None:
    """Quote a first value that starts with ``#`` in the rows of the ECSV file ``path``.

    astropy quotes a value only where it holds the delimiter or a quote, so a row whose
    first value starts with ``#`` would be read back as a comment and lost. Such a value
    holds neither (astropy would have quoted it), so it ends at the first comma.
    """
    with open(path, encoding="utf-8") as fh:
        lines = fh.readlines()
    body = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines)) + 1
    hashed = [i for i in range(body, len(lines)) if lines[i].startswith("#")]
    if not hashed:
        return
    for i in hashed:
        value, sep, rest = lines[i].partition(",")
        end = value.rstrip("\r\n")
        lines[i] = f'"{end}"{sep}{rest}' if sep else f'"{end}"' + value[len(end) :]
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(lines)


class ECSVWriter(Writer):
    name = "ecsv"
    extension = "ecsv"
    description = "astropy ECSV: CSV with a YAML header of units, descriptions and the provenance"

    def open(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> _ECSVSink:
        return _ECSVSink(path, schema, metadata)

    def read(self, path: Path) -> pd.DataFrame:
        """The rows as astropy reads them (masked integers as ``<NA>``, ``Int64``); the
        table's ``meta`` (name, product ID, provenance) in ``attrs``."""
        from astropy.table import Table as AstropyTable

        table = AstropyTable.read(path, format="ascii.ecsv")
        frame = table.to_pandas()
        frame.attrs.update({k: v for k, v in table.meta.items() if k in ("name", "product_id", "provenance")})
        return frame
