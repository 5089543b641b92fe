"""Parquet: types, nulls and units kept as they are (field metadata ``unit``, ``description``).

The provenance is in the file's key-value metadata (``tsm.provenance``) and in the Arrow
schema metadata (``tsm.provenance``, and ``PANDAS_ATTRS`` so that ``pandas.read_parquet``
puts it in ``DataFrame.attrs["provenance"]``). The provenance is complete only at the end
(row counts) while pyarrow fixes the Arrow schema when the file is opened, so batches are
written straight into the file (in the core's staging directory) and the footer, written
at close, gets the provenance keys and the Arrow schema carrying them (``ARROW:schema``,
pyarrow's base64 IPC form; keys added at close win over those written at open).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from tsm_core import OutputConfig, OutputMetadata, Writer
from tsm_writers.common import provenance_json

if TYPE_CHECKING:
    import pandas as pd


def described_schema(schema: pa.Schema, metadata: OutputMetadata) -> pa.Schema:
    """``schema`` with each field's unit and description as field metadata."""
    fields = []
    for f in schema:
        info = metadata.columns.get(f.name)
        meta = {"unit": info.unit, "description": info.description} if info else {}
        fields.append(f.with_metadata(meta))
    # astropy's Parquet reader sizes string columns from these keys (and warns without them)
    lengths = {
        f"table::len::{f.name}": str(metadata.columns[f.name].max_length)
        for f in schema
        if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
        and f.name in metadata.columns
        and metadata.columns[f.name].max_length
    }
    return pa.schema(fields, metadata={"tsm.name": metadata.name, "tsm.product_id": str(metadata.product_id)} | lengths)


def with_provenance(schema: pa.Schema, metadata: OutputMetadata) -> pa.Schema:
    """``schema`` with the provenance in its metadata, also as pandas ``attrs``."""
    text = provenance_json(metadata)
    attrs = json.dumps({"provenance": json.loads(text)})
    return schema.with_metadata(schema.metadata | {"tsm.provenance": text, "PANDAS_ATTRS": attrs})


def arrow_schema_footer(schema: pa.Schema) -> dict[str, str]:
    """Footer key-value metadata that makes readers see ``schema``: its own metadata, and
    ``ARROW:schema`` as pyarrow writes it (the IPC-serialized schema, base64)."""
    encoded = base64.b64encode(schema.serialize().to_pybytes()).decode()
    own = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    return own | {"ARROW:schema": encoded}


class BatchFileSink:
    """Batches appended to the Parquet file ``file``, with units and descriptions in the
    field metadata."""

    def __init__(self, file: Path, schema: pa.Schema, metadata: OutputMetadata) -> None:
        self.schema = described_schema(schema, metadata)
        self.metadata = metadata
        self.writer = pq.ParquetWriter(file, self.schema, compression="zstd")

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self.writer.write_table(table.cast(self.schema))

    def close(self) -> None:
        raise NotImplementedError


class PartFileSink(BatchFileSink):
    """Batches appended to a hidden Parquet file beside ``path`` (in the core's staging
    directory); a subclass's :meth:`close` turns the part file into the product."""

    def __init__(self, path: Path, schema: pa.Schema, metadata: OutputMetadata) -> None:
        self.path = path
        self.part = path.with_name(f".{path.name}.part")
        super().__init__(self.part, schema, metadata)


class _ParquetSink(BatchFileSink):
    """Batches written straight into the product; the provenance goes into the footer."""

    def close(self) -> None:
        self.writer.add_key_value_metadata(arrow_schema_footer(with_provenance(self.schema, self.metadata)))
        self.writer.close()


class ParquetWriter(Writer):
    name = "parquet"
    extension = "parquet"
    description = (
        "Apache Parquet (pyarrow); units and descriptions in field metadata, provenance in the file and schema metadata"
    )

    def open(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> _ParquetSink:
        return _ParquetSink(path, schema, metadata)

    def read(self, path: Path) -> pd.DataFrame:
        """The file as pandas reads it (the provenance in ``attrs["provenance"]``)."""
        return pq.read_table(path).to_pandas()

    def columns(self, path: Path) -> list[str]:
        """The column names, from the file's schema."""
        return list(pq.read_schema(path).names)
