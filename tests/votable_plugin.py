"""A third-party writer, as an outside package would ship it: VOTable through astropy.

It buffers batches (VOTable has no append) and reads its files back (``Writer.read``, so
``tsm report`` and ``tsm_core.read`` work for it); it exists to show that a format can be
added without touching the core.
"""

from __future__ import annotations

import pyarrow as pa

from tsm_core import Writer


class _Sink:
    def __init__(self, path, schema, metadata):
        self.path, self.schema, self.metadata, self.tables = path, schema, metadata, []

    def write(self, table: pa.Table) -> None:
        self.tables.append(table)

    def close(self) -> None:
        from astropy.table import Table

        table = Table.from_pandas(pa.concat_tables(self.tables or [self.schema.empty_table()]).to_pandas())
        for name, info in self.metadata.columns.items():
            if name in table.colnames:
                table[name].unit = info.unit or None
                table[name].description = info.description
        table.write(self.path, format="votable")


class VOTableWriter(Writer):
    name = "votable"
    extension = "xml"
    description = "IVOA VOTable (astropy)"

    def open(self, path, schema, metadata, options):
        return _Sink(path, schema, metadata)

    def read(self, path):
        from astropy.table import Table

        return Table.read(path, format="votable").to_pandas()
