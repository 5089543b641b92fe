"""Parquet: types, nulls and units kept as they are (field metadata ``unit``, ``description``)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tsm_core import OutputMetadata, Writer
from tsm_core.config import OutputConfig
from tsm_writers.common import provenance_json


def described_schema(schema: pa.Schema, metadata: OutputMetadata) -> pa.Schema:
    """``schema`` with each field's unit and description as field metadata."""
    fields = []
    for f in schema:
        info = metadata.columns.get(f.name)
        meta = {"unit": info.unit, "description": info.description} if info else {}
        fields.append(f.with_metadata(meta))
    return pa.schema(fields, metadata={"tsm.name": metadata.name, "tsm.product_id": str(metadata.product_id)})


class _ParquetSink:
    def __init__(self, path: Path, schema: pa.Schema, metadata: OutputMetadata) -> None:
        self.schema = described_schema(schema, metadata)
        self.metadata = metadata
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self.writer.write_table(table.cast(self.schema))

    def close(self) -> None:
        self.writer.add_key_value_metadata({"tsm.provenance": provenance_json(self.metadata)})
        self.writer.close()


class ParquetWriter(Writer):
    name = "parquet"
    extension = "parquet"
    description = "Apache Parquet (pyarrow); units and descriptions in field metadata, provenance in the file metadata"

    def open(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> _ParquetSink:
        return _ParquetSink(path, schema, metadata)
