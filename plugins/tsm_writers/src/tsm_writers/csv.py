"""CSV with a commented header: one ``#`` line per column (unit, description) and the
provenance as JSON. Read it with ``pandas.read_csv(path, comment="#")`` (or, where a value may hold a
``#``, with :meth:`CSVWriter.read`).

Booleans are ``true``/``false``, NaN is ``nan``, a null integer is an empty field
(read it back exactly with ``dtype={"z_flag": "Int64"}``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.csv as pacsv

from tsm_core import OutputConfig, OutputMetadata, Writer
from tsm_writers.common import provenance_json

if TYPE_CHECKING:
    import pandas as pd


def _comment(text: str) -> str:
    return " ".join(text.splitlines())


class _CSVSink:
    def __init__(self, path: Path, schema: pa.Schema, metadata: OutputMetadata) -> None:
        self.metadata = metadata
        self.schema = schema
        self.file = open(path, "wb")  # noqa: SIM115 - closed in close()
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

    def read(self, path: Path) -> pd.DataFrame:
        """The rows between the commented header and the ``# counts:`` line.

        Only whole lines that start with ``#`` before the column names, and the last line
        when it starts with ``# counts:``, are comments: a ``#`` inside a value is data.
        Columns get pandas' nullable types (a null integer is ``<NA>`` in an ``Int64``
        column, ``true``/``false`` a ``boolean`` column).
        """
        import pandas as pd

        data = Path(path).read_bytes()
        start = 0
        while data.startswith(b"#", start):
            newline = data.find(b"\n", start)
            start = len(data) if newline < 0 else newline + 1
        end = data.rfind(b"\n# counts: ", max(start - 1, 0)) + 1 or len(data)
        return pd.read_csv(io.BytesIO(data[start:end]), dtype_backend="numpy_nullable")

    def columns(self, path: Path) -> list[str]:
        """The column names: the first row that is not a ``#`` comment (nothing else is read)."""
        import csv

        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                if row and not row[0].startswith("#"):
                    return row
        return []
