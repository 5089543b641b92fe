"""HATS catalog (through LSDB), partitioned on the redshift's ``ra``/``dec``.

The product is a HATS collection directory (``<name>_<id>.hats``) with the catalog and a
5 arcsec margin cache, so it can be cross-matched again with LSDB or read with
``lsdb.open_catalog(path)``. The ``properties`` file of the catalog carries
``tsm_name``, ``tsm_product_id`` and ``tsm_provenance`` (the provenance as one line of
JSON).

Batches are appended to a Parquet file in the staging directory; the catalog is made
from it when the sink closes (``lsdb.from_dataframe``), so the training set is held in
memory once, at the end. A run with no rows writes no catalog and fails with an
:class:`~tsm_core.errors.OutputError` (HATS has no empty catalogs).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from tsm_core import OutputConfig, OutputMetadata, Writer
from tsm_core.errors import OutputError
from tsm_core.products.output import slugify
from tsm_writers.common import provenance_json
from tsm_writers.parquet import PartFileSink

if TYPE_CHECKING:
    import pandas as pd

RA_COLUMN, DEC_COLUMN = "ra", "dec"
MARGIN_ARCSEC = 5.0


class _HATSSink(PartFileSink):
    def __init__(self, path: Path, schema: pa.Schema, metadata: OutputMetadata) -> None:
        missing = [c for c in (RA_COLUMN, DEC_COLUMN) if c not in schema.names]
        if missing:
            raise OutputError(f"the hats format needs the columns {missing} to partition the sky")
        super().__init__(path, schema, metadata)

    def close(self) -> None:
        self.writer.close()
        try:
            table = pq.read_table(self.part)
            if not table.num_rows:
                raise OutputError("no rows to write: a HATS catalog cannot be empty")
            self._write_catalog(table)
        finally:
            self.part.unlink(missing_ok=True)

    def _write_catalog(self, table: pa.Table) -> None:
        import lsdb

        frame = table.to_pandas(types_mapper=pd_arrow_dtype)
        catalog = lsdb.from_dataframe(
            frame,
            ra_column=RA_COLUMN,
            dec_column=DEC_COLUMN,
            catalog_name=slugify(self.metadata.name),
            margin_threshold=MARGIN_ARCSEC,
        )
        catalog.write_catalog(
            self.path,
            as_collection=True,
            progress_bar=False,
            addl_hats_properties={
                "tsm_name": self.metadata.name,
                "tsm_product_id": str(self.metadata.product_id),
                "tsm_provenance": provenance_json(self.metadata),
            },
        )


def pd_arrow_dtype(typ: pa.DataType):
    """Arrow-backed pandas dtypes, so nullable integers and strings survive."""
    import pandas as pd

    return pd.ArrowDtype(typ)


class HATSWriter(Writer):
    name = "hats"
    extension = "hats"
    description = "HATS catalog (LSDB) with a margin cache; provenance in its properties, read with lsdb.open_catalog"

    def open(self, path: Path, schema: pa.Schema, metadata: OutputMetadata, options: OutputConfig) -> _HATSSink:
        return _HATSSink(path, schema, metadata)

    def read(self, path: Path) -> pd.DataFrame:
        """The catalog's rows (``lsdb.open_catalog(path).compute()``), in the catalog's
        order (by HEALPix pixel, not the run's), with a plain 0-based index."""
        import lsdb

        return lsdb.open_catalog(path).compute().reset_index(drop=True)
