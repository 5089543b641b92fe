"""``tsm import`` of a small table, in this process: no Dask cluster.

Below :data:`IN_PROCESS_ROWS` rows a local ``dask.distributed`` cluster costs more than the
import itself (its worker processes start in 5-20 s; 1,000 rows took 19-28 s). Such inputs
are read whole (:func:`read_whole`: pandas for Parquet and CSV, astropy for FITS), partitioned
and given their margin by LSDB's ``from_dataframe`` and written by ``write_catalog`` in this
process (:func:`write_in_process`), in the same published layout as the cluster path of
:mod:`tsm_core.catalogs.importer`: the main catalog, its margin and the id index, named in
``collection.properties``. :func:`count_rows` decides, from the files' metadata where they
have it (Parquet footers, FITS headers) and by counting a CSV file's lines (decompressed, up
to the threshold).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from tsm_core.catalogs.index import write_index
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
    catalog ``layout.primary``, its margin ``margin_name`` of ``margin_arcsec`` and the id index."""
    import lsdb

    from tsm_core.compute import numba_cache
    from tsm_core.config import tsm_home

    numba_cache.enable(numba_cache.cache_dir(tsm_home()))  # the margin is found with HATS' numba code
    with warnings.catch_warnings():  # "from_dataframe is not intended for large datasets": this one is small
        warnings.filterwarnings("ignore", message="from_dataframe is not intended", category=RuntimeWarning)
        catalog = lsdb.from_dataframe(
            frame,
            ra_column=release.ra_column,
            dec_column=release.dec_column,
            catalog_name=layout.primary,
            partition_rows=IN_PROCESS_PARTITION_ROWS,
            margin_threshold=margin_arcsec,
        )
    catalog.write_catalog(out, as_collection=True, catalog_name=layout.primary, progress_bar=progress)
    written = next(p.name for p in out.iterdir() if p.is_dir() and p.name.startswith(f"{layout.primary}_"))
    if written != margin_name:  # LSDB names it after the whole arcseconds of its width
        (out / written).rename(out / margin_name)
        _rename_in_properties(out / margin_name / "hats.properties", written, margin_name)
        _rename_in_properties(out / "collection.properties", written, margin_name)
    if layout.index:
        write_index(out, layout.primary, layout.index, release.id_column)
    return out


def _rename_in_properties(path: Path, old: str, new: str) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line.replace(f"={old}", f"={new}") for line in lines) + "\n")
