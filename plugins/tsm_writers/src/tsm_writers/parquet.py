"""Parquet: types, nulls and units kept as they are (field metadata ``unit``, ``description``).

The provenance is in the file's key-value metadata (``tsm.provenance``) and in the Arrow
schema metadata (``tsm.provenance``, and ``PANDAS_ATTRS`` so that ``pandas.read_parquet``
puts it in ``DataFrame.attrs["provenance"]``). The Arrow schema is fixed when a Parquet
file is opened while the provenance is complete only at the end (row counts), so batches
go to a part file beside the final one (in the core's staging directory), whose row
groups are rewritten, one at a time, into the final file when it is closed.
"""

from __future__ import annotations

import json
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


def with_provenance(schema: pa.Schema, metadata: OutputMetadata) -> pa.Schema:
    """``schema`` with the provenance in its metadata, also as pandas ``attrs``."""
    text = provenance_json(metadata)
    attrs = json.dumps({"provenance": json.loads(text)})
    return schema.with_metadata(schema.metadata | {"tsm.provenance": text, "PANDAS_ATTRS": attrs})


class PartFileSink:
    """Batches appended to a hidden Parquet file beside ``path`` (in the core's staging
    directory), with units and descriptions in the field metadata; a subclass's
    :meth:`close` turns the part file into the product."""

    def __init__(self, path: Path, schema: pa.Schema, metadata: OutputMetadata) -> None:
        self.path = path
        self.part = path.with_name(f".{path.name}.part")
        self.schema = described_schema(schema, metadata)
        self.metadata = metadata
        self.writer = pq.ParquetWriter(self.part, self.schema, compression="zstd")

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self.writer.write_table(table.cast(self.schema))

    def close(self) -> None:
        raise NotImplementedError


class _ParquetSink(PartFileSink):
    def close(self) -> None:
        self.writer.close()
        schema = with_provenance(self.schema, self.metadata)
        part = pq.ParquetFile(self.part)
        with pq.ParquetWriter(self.path, schema, compression="zstd") as final:
            for i in range(part.num_row_groups):
                final.write_table(part.read_row_group(i).replace_schema_metadata(schema.metadata))
            final.add_key_value_metadata({"tsm.provenance": provenance_json(self.metadata)})
        self.part.unlink()


class ParquetWriter(Writer):
    name = "parquet"
    extension = "parquet"
    description = "Apache Parquet (pyarrow); units and descriptions in field metadata, provenance in the file and schema metadata"

    def open(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> _ParquetSink:
        return _ParquetSink(path, schema, metadata)
