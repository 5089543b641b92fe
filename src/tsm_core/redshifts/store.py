"""Registered redshift catalogs, stored as HATS collections.

``tsm redshift register`` normalizes a catalog once (convention, homogenized flags, bad
rows dropped and counted, unique ids) and stores it under ``$TSM_HOME/redshift_catalogs/``
as a HATS collection: the catalog ``redshifts`` partitioned on the sky (at most
:data:`ROWS_PER_PARTITION` rows a partition), and ``tsm_redshift.json`` beside it (what
normalization did, column notes, the longest text of each string column). Each row keeps its
row number in the normalized table (``_zrow``): runs tell redshifts apart by it.

A run opens the collection lazily (:class:`tsm_core.redshifts.side.StoredSide`): only the
partitions that overlap the object catalog are read for the crossmatch, with the run's
columns and its simple filters pushed into the Parquet read.

Catalogs registered before this version also have a :data:`MARGIN_ARCSEC` margin catalog
(``redshifts_10arcs``): a run never reads it (the redshifts are the left side of the
crossmatch, whose margin LSDB does not use), so new copies are written without one; the
old ones open and run as before.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsm_core.columns import ZROW_COLUMN
from tsm_core.errors import CatalogError
from tsm_core.plugins.records import ColumnInfo
from tsm_core.redshifts.table import RedshiftTable, string_lengths

#: the metadata file of a stored catalog
META_FILE = "tsm_redshift.json"
#: the rows dropped at registration (their canonical columns, row in the file, reason), beside it
BAD_ROWS_FILE = "bad_rows.parquet"
#: name of the partitioned catalog inside the collection
CATALOG_NAME = "redshifts"
#: width of the margin of copies registered by earlier versions (new copies have none)
MARGIN_ARCSEC = 10.0
#: partition size: small enough that each object partition reads little of the redshifts
ROWS_PER_PARTITION = 50_000


def is_store(path: str | Path) -> bool:
    """True for a folder written by :func:`write_store`."""
    return (Path(path) / META_FILE).is_file()


def write_store(table: RedshiftTable, directory: Path, progress: bool = False) -> None:
    """Write ``table`` as a HATS collection at ``directory`` (which must not exist), in this
    process (:func:`tsm_core.catalogs.small_hats.write_collection`; ``progress``: a bar on
    stderr). No margin: a run matches the redshifts as the left side of its crossmatch, which
    reads none."""
    from tsm_core.catalogs.small_hats import write_collection

    frame = table.frame.assign(**{ZROW_COLUMN: np.arange(len(table.frame), dtype=np.int64)})
    # partitioned at order 7 as LSDB does, deeper where a field is denser than a partition per pixel
    write_collection(
        directory,
        frame,
        name=CATALOG_NAME,
        ra="ra",
        dec="dec",
        rows_per_partition=ROWS_PER_PARTITION,
        progress=progress,
    )
    meta = {
        "source": table.source,
        "convention": table.convention,
        "detected": table.detected,
        "n_read": table.n_read,
        "rows": len(table.frame),
        "dropped": table.dropped,
        "names": table.names,
        "default_columns": list(table.default_columns),
        "columns": [str(c) for c in table.frame.columns],
        "info": {name: {"unit": note.unit, "description": note.description} for name, note in table.info.items()},
        "string_lengths": string_lengths(table.frame),
    }
    if table.bad is not None and len(table.bad):
        _write_bad_rows(table.bad, directory / BAD_ROWS_FILE)
    (directory / META_FILE).write_text(json.dumps(meta, indent=1))


def _write_bad_rows(bad: pd.DataFrame, path: Path) -> None:
    """The dropped rows as Parquet; a column of mixed values (a text id among numbers) as text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {}
    for name in bad.columns:
        try:
            columns[name] = pa.array(bad[name], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array(bad[name].astype("string"), type=pa.string())
    pq.write_table(pa.table(columns), path)


@dataclass
class StoredCatalog:
    """A stored catalog's description (:attr:`table` has its columns, no rows) and where
    its partitions are."""

    path: Path
    table: RedshiftTable
    string_lengths: dict[str, int]

    @property
    def dataset(self) -> Path:
        """The folder of the partitions' Parquet files."""
        return self.path / CATALOG_NAME / "dataset"

    def bad_rows(self) -> pd.DataFrame | None:
        """The rows dropped at registration (none dropped: empty); None for a catalog
        registered before they were kept."""
        if (self.path / BAD_ROWS_FILE).is_file():
            return pd.read_parquet(self.path / BAD_ROWS_FILE)
        return self.table.dropped_rows()

    def scan(self, columns: list[str], batch_rows: int) -> Any:
        """Every stored row's ``columns``, ``batch_rows`` at a time, partition by partition (frames of Arrow types)."""
        for batch in self._partitions().to_batches(columns=columns, batch_size=batch_rows):
            yield batch.to_pandas(types_mapper=pd.ArrowDtype)

    @property
    def n_rows(self) -> int:
        """How many rows are stored."""
        return int(self.table.summary()["rows"])  # type: ignore[call-overload]

    def read(self, columns: list[str], filters: list[tuple[str, str, Any]] | None = None) -> pd.DataFrame:
        """Every stored row's ``columns`` (those passing ``filters``: cuts as
        ``pyarrow.parquet`` takes them), partition after partition, as one frame of Arrow types."""
        import pyarrow.parquet as pq

        cut = pq.filters_to_expression(filters) if filters else None
        return self._partitions().to_table(columns=columns, filter=cut).to_pandas(types_mapper=pd.ArrowDtype)

    def _partitions(self) -> Any:
        """The stored partitions' Parquet files as one ``pyarrow.dataset``."""
        import pyarrow.dataset as ds

        return ds.dataset(self.dataset, format="parquet")

    def schema(self) -> Any:
        """The Arrow schema of the stored rows."""
        import pyarrow.parquet as pq

        return pq.read_schema(self.dataset / "_common_metadata")


def read_store(path: str | Path) -> StoredCatalog:
    """The stored catalog at ``path``, from its metadata (no row is read)."""
    path = Path(path)
    try:
        meta = json.loads((path / META_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise CatalogError("redshift_catalog", f"cannot read the stored redshift catalog at {path}: {exc}") from exc
    info = {name: ColumnInfo(note["unit"], note["description"]) for name, note in meta["info"].items()}
    empty = pd.DataFrame({name: pd.Series(dtype="float64") for name in meta["columns"]})
    table = RedshiftTable.from_record(meta, empty, info, rows=meta["rows"])
    return StoredCatalog(path, table, {k: int(v) for k, v in meta["string_lengths"].items()})


def parquet_copy_path(path: str | Path) -> Path:
    """Where :func:`parquet_copy` writes the stored catalog at ``path`` as one Parquet file."""
    return Path(path) / "export" / f"{CATALOG_NAME}.parquet"


def parquet_copy(path: str | Path) -> Path:
    """One Parquet file of a stored catalog's rows (for a download), written on first use
    inside the store, batch by batch, without the storage columns (``_zrow``, the HEALPix index)."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    target = parquet_copy_path(path)
    if target.is_file():
        return target
    store = read_store(path)
    target.parent.mkdir(exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp")
    dataset = ds.dataset(store.dataset, format="parquet")
    columns = [c for c in store.table.frame.columns if c in dataset.schema.names]
    try:
        with pq.ParquetWriter(
            staging, pa.schema([dataset.schema.field(c) for c in columns]), compression="zstd"
        ) as out:
            for batch in dataset.to_batches(columns=columns):
                out.write_batch(batch)
        staging.replace(target)
    finally:
        staging.unlink(missing_ok=True)
    return target


def remove_store(path: str | Path) -> None:
    """Delete a stored catalog (only a folder written by :func:`write_store`)."""
    if is_store(path):
        shutil.rmtree(path, ignore_errors=True)


def verify_store(path: str | Path, expected_rows: int) -> tuple[int, int]:
    """Read every partition of the stored catalog at ``path`` whole, one at a time, and check
    that they hold ``expected_rows`` rows together (the count recorded at registration).
    Returns (rows, partitions); raises the reader's error for an unreadable partition and a
    :class:`ValueError` for a wrong count."""
    import pyarrow.parquet as pq

    store = read_store(path)
    files = sorted(store.dataset.glob("Norder=*/Dir=*/Npix=*.parquet"))
    if not files:
        raise ValueError(f"no partitions in {store.dataset}")
    rows = 0
    for file in files:
        try:
            rows += pq.read_table(file).num_rows
        except Exception as exc:  # noqa: BLE001 - which file, then the reader's reason
            where = file.relative_to(store.dataset)
            raise ValueError(f"partition {where}: {str(exc).replace(str(file), where.name)}") from exc
    if rows != expected_rows or rows != store.table.rows:
        raise ValueError(f"its partitions hold {rows} rows, {expected_rows} were registered")
    return rows, len(files)
