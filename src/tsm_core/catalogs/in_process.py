"""``tsm import`` of a small table, in this process: no Dask cluster.

Below :data:`IN_PROCESS_ROWS` rows a local ``dask.distributed`` cluster costs more than the
import itself (its worker processes start in 5-20 s; 1,000 rows took 19-28 s). Such inputs
are read whole (:func:`read_whole`: pandas for Parquet and CSV, astropy for FITS) and written in
this process (:func:`write_in_process`) as LSDB's ``from_dataframe`` and ``write_catalog`` would
write them, without their fixed costs (:mod:`tsm_core.catalogs.small_hats`), in the same
published layout as the cluster path of :mod:`tsm_core.catalogs.importer`: the main catalog,
its margin and the id index (from the ids in memory), named in ``collection.properties``.
:func:`count_rows` decides, from the files' metadata where they have it (Parquet footers,
FITS headers) and by counting a CSV file's lines (decompressed, up to the threshold).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from tsm_core.catalogs.index import write_index
from tsm_core.catalogs.small_hats import write_collection
from tsm_core.plugins.locations import CollectionLayout
from tsm_core.plugins.records import ObjectCatalog

#: inputs of at most this many rows are imported in this process (no cluster)
IN_PROCESS_ROWS = 200_000
#: partitions of an in-process import hold at most this many rows
IN_PROCESS_PARTITION_ROWS = 50_000


def count_rows(files: Sequence[str], fmt: str, limit: int | None = None) -> int:
    """The number of rows of ``files``: from their metadata for Parquet and FITS; for CSV
    (compressed or not, as pandas reads it) by counting lines, a stream at a time, and
    stopping once more than ``limit`` are counted (the answer is then only "more than
    ``limit``"), so a large or highly compressed file costs no more than ``limit`` lines."""
    total = 0
    for path in files:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            total += pq.ParquetFile(path).metadata.num_rows
        elif fmt == "fits":
            from astropy.io import fits

            with fits.open(path, memmap=True) as hdul:
                hdu = next((h for h in hdul if isinstance(h, (fits.BinTableHDU, fits.TableHDU))), None)
                total += int(hdu.header.get("NAXIS2", 0)) if hdu is not None else 0
        else:
            left = None if limit is None else max(limit - total, 0)
            total += _csv_rows(path, left)
        if limit is not None and total > limit:
            break
    return total


def _csv_rows(path: str, limit: int | None) -> int:
    """Data lines of a CSV file (its header not counted), up to one more than ``limit``."""
    from pandas.io.common import get_handle

    lines = -1  # the header
    with get_handle(path, "rb", compression="infer", is_text=False) as handle:
        while chunk := handle.handle.read(1 << 20):
            lines += chunk.count(b"\n")
            if limit is not None and lines > limit:
                return lines
    return max(lines, 0)


def read_whole(files: Sequence[str], fmt: str) -> pd.DataFrame:
    """All rows of ``files`` in one frame, read as hats-import's readers read them."""
    if fmt == "parquet":
        frames = [pd.read_parquet(path) for path in files]
    elif fmt == "fits":
        from astropy.table import Table

        frames = [Table.read(path, format="fits").to_pandas() for path in files]
    else:
        frames = [pd.read_csv(path) for path in files]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def write_in_process(
    frame: pd.DataFrame,
    out: Path,
    release: ObjectCatalog,
    layout: CollectionLayout,
    margin_arcsec: float,
    margin_name: str,
    progress: bool = False,
) -> Path:
    """Write ``frame`` at ``out`` (which must not exist) as a collection in ``layout``: the
    catalog ``layout.primary``, its margin ``margin_name`` of ``margin_arcsec`` and the id index
    (``progress``: a bar per catalog on stderr, as LSDB's)."""
    parts = write_collection(
        out,
        frame,
        name=layout.primary,
        ra=release.ra_column,
        dec=release.dec_column,
        rows_per_partition=IN_PROCESS_PARTITION_ROWS,
        margin=(margin_name, margin_arcsec),
        progress=progress,
    )
    if layout.index:
        ids = parts.table.column(release.id_column)
        by_pixel = {pixel: ids.take(rows) for pixel, rows in zip(parts.pixels, parts.rows)}
        write_index(out, layout.primary, layout.index, release.id_column, ids=by_pixel)
    return out
