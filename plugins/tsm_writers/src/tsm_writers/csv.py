"""CSV with a commented header: one ``#`` line per column (unit, description) and the
provenance as JSON. Read it with ``pandas.read_csv(path, comment="#")``.

Booleans are ``true``/``false``, NaN is ``nan``, a null integer is an empty field
(read it back exactly with ``dtype={"z_flag": "Int64"}``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from tsm_core import OutputMetadata, Writer
from tsm_core.config import OutputConfig
from tsm_writers.common import provenance_json


def _comment(text: str) -> str:
    return " ".join(text.splitlines())


class _CSVSink:
    def __init__(self, path: Path, schema: pa.Schema, metadata: OutputMetadata) -> None:
        self.metadata = metadata
        self.schema = schema
        self.file = open(path, "wb")
        lines = [f"# Training Set Maker: {_comment(metadata.name)} (product ID {metadata.product_id})"]
        if metadata.description:
            lines.append(f"# description: {_comment(metadata.description)}")
        for f in schema:
            info = metadata.columns.get(f.name)
            if info:
                unit = f" [{info.unit}]" if info.unit else ""
                lines.append(f"# column {f.name}{unit}: {_comment(info.description)}")
        lines.append(f"# provenance: {provenance_json(metadata)}")
        self.file.write(("\n".join(lines) + "\n").encode())
        self.writer = pacsv.CSVWriter(self.file, schema)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self.writer.write_table(table.cast(self.schema))

    def close(self) -> None:
        try:
            self.writer.close()
            counts = self.metadata.provenance.get("counts")
            if counts is not None:
                self.file.write(f"# counts: {json.dumps(counts, sort_keys=True)}\n".encode())
        finally:
            self.file.close()


class CSVWriter(Writer):
    name = "csv"
    extension = "csv"
    description = "comma-separated values with a commented header (units, descriptions, provenance)"

    def open(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> _CSVSink:
        return _CSVSink(path, schema, metadata)
