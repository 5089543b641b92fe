"""Plain CSV: one header line with the column names, then the rows.

Every CSV reader opens it without options (``pandas.read_csv(path)``,
``astropy.table.Table.read(path)``, TOPCAT, a spreadsheet). Units, descriptions and the
provenance are not in the file: the ``ecsv`` format carries them. Booleans are
``true``/``false``, NaN is ``nan``, a null integer is an empty field (pandas reads
the column as float, :meth:`CSVWriter.read` as ``Int64``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.csv as pacsv

from tsm_core import OutputConfig, OutputMetadata, Writer

if TYPE_CHECKING:
    import pandas as pd


class _CSVSink:
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.schema = schema
        self.writer = pacsv.CSVWriter(str(path), schema)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self.writer.write_table(table.cast(self.schema))

    def close(self) -> None:
        self.writer.close()


class CSVWriter(Writer):
    name = "csv"
    extension = "csv"
    description = "plain comma-separated values, one header line (use ecsv for units, descriptions, provenance)"

    def open(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> _CSVSink:
        return _CSVSink(path, schema)

    def read(self, path: Path) -> pd.DataFrame:
        """The rows with pandas' nullable types (a null integer is ``<NA>`` in an ``Int64``
        column, ``true``/``false`` a ``boolean`` column)."""
        import pandas as pd

        return pd.read_csv(path, dtype_backend="numpy_nullable")

    def columns(self, path: Path) -> list[str]:
        """The column names: the header line (nothing else is read)."""
        import csv

        with open(path, newline="", encoding="utf-8") as fh:
            return next(csv.reader(fh), [])
