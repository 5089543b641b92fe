"""Partition an in-memory table on the sky, once per run, in one sort.

A redshift file given by path is matched as a lazy LSDB catalog. ``lsdb.from_dataframe``
would do it, but it cuts each partition with a boolean mask over the whole table (one
pass per partition), hashes every partition's data to name the Dask tasks, and builds a
MOC from every row: 3 s for 2 million rows on two cores, most of a run at that size.
:func:`sky_partitions` sorts the table once by its HEALPix spatial index, cuts the
partitions as slices of the sorted table (``searchsorted`` on the pixels' index bounds),
names the tasks with a random token, and builds the MOC from the distinct order-10
cells: the same partitions (HATS's own ``generate_alignment``), in a fraction of the time.

A registered catalog is already partitioned on disk, in partitions of a fixed number of
rows: where redshifts are dense they are finer than the object catalog's, and LSDB's
crossmatch would read an object partition once per redshift partition inside it.
:func:`merged_on` reads those redshift partitions together, as one partition at the
object pixel that holds them.

Both build the catalog from LSDB's ``FromHealpixMap`` operation (and :func:`merged_on`
reads each file with LSDB's own ``read_pixel``), which are not public API: pyproject pins
lsdb and hats to one version for that reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import lsdb

#: HEALPix order of the row-count histogram (HATS's and LSDB's default), and the deepest
#: one used where a pixel of that order holds more than a partition's rows (dense fields)
HISTOGRAM_ORDER = 7
DEEPEST_HISTOGRAM_ORDER = 10
#: order of the coverage map (MOC) of the partitioned table
MOC_ORDER = 10
SPATIAL_ORDER = 29


class _PixelFrames:
    """The frame of each pixel, for the catalog's tasks; tokenized by a random token
    instead of by hashing every partition's data."""

    def __init__(self, frames: dict[Any, pd.DataFrame]) -> None:
        self.frames = frames
        self.token = uuid.uuid4().hex

    def __call__(self, pixel: Any) -> pd.DataFrame:
        return self.frames[pixel]

    def __dask_tokenize__(self) -> str:
        return self.token


def as_arrow_types(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with Arrow-backed columns, as LSDB reads HATS catalogs (and builds them)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=True)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def sky_partitions(
    frame: pd.DataFrame, ra: str = "ra", dec: str = "dec", rows_per_partition: int = 50_000, name: str = "redshifts",
    pixels: Sequence[Any] | None = None,
) -> lsdb.Catalog:
    """A lazy LSDB catalog of ``frame``, cut into HEALPix partitions of at most about
    ``rows_per_partition`` rows (no margin: it is the left side of a crossmatch).

    With ``pixels`` (the partitions of the catalog it will be matched with, which do not
    overlap) the table is cut on those instead, rows outside them left out: the crossmatch
    then pairs each partition with one partition of the other catalog, which is read once,
    not once per finer partition of this one."""
    import hats
    import lsdb
    import nested_pandas as npd
    from hats.catalog import TableProperties
    from hats.pixel_math import HealpixPixel, generate_alignment
    from hats.pixel_math.healpix_pixel_function import get_pixel_argsort
    from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN, compute_spatial_index, healpix_to_spatial_index
    from lsdb.operations.lsdb_ops import FromHealpixMap
    from mocpy import MOC

    if not len(frame):
        raise ValueError("cannot partition an empty table")
    spatial = compute_spatial_index(frame[ra].to_numpy(dtype=float), frame[dec].to_numpy(dtype=float))
    order = np.argsort(spatial, kind="stable")
    spatial = spatial[order]
    table = frame.iloc[order].reset_index(drop=True)
    table.index = pd.Index(spatial, name=SPATIAL_INDEX_COLUMN)
    table = as_arrow_types(table)

    if pixels is None:
        histogram_order, histogram = _histogram(spatial, rows_per_partition)
        alignment = generate_alignment(
            histogram, highest_order=histogram_order, lowest_order=0,
            threshold=_threshold(histogram, rows_per_partition), drop_empty_siblings=True, use_lower_order=True,
        )
        pixels = list({HealpixPixel(int(a[0]), int(a[1])) for a in alignment if a is not None})
    pixels = [HealpixPixel(int(p.order), int(p.pixel)) for p in pixels]
    pixels = [pixels[i] for i in get_pixel_argsort(pixels)]
    frames = {}
    for pixel in pixels:
        lo, hi = np.searchsorted(
            spatial,
            [healpix_to_spatial_index(pixel.order, pixel.pixel), healpix_to_spatial_index(pixel.order, pixel.pixel + 1)],
        )
        if hi > lo:
            frames[pixel] = npd.NestedFrame(table.iloc[int(lo):int(hi)])
    if not frames:
        raise ValueError("no row lies in the given pixels")
    pixels = list(frames)
    kept = np.concatenate([frames[p].index.to_numpy() for p in pixels])
    meta = npd.NestedFrame(table.iloc[:0])
    operation = FromHealpixMap(_PixelFrames(frames), pixels=pixels, meta=meta, verify_meta=False)
    cells = np.unique(kept.astype(np.int64) >> (2 * (SPATIAL_ORDER - MOC_ORDER)))
    moc = MOC.from_healpix_cells(cells, np.full(len(cells), MOC_ORDER, dtype=np.uint8), MOC_ORDER)
    info = TableProperties(
        catalog_name=name, catalog_type="object", ra_column=ra, dec_column=dec, total_rows=len(kept),
        healpix_column=SPATIAL_INDEX_COLUMN, healpix_order=SPATIAL_ORDER,
    )
    structure = hats.catalog.Catalog(info, pixels, moc=moc, schema=_schema(meta), generate_snapshot=True)
    return lsdb.Catalog(operation, structure)


class _MergedPixels:
    """Reads the partitions on disk that make one merged partition, in pixel order, with
    ``read`` (LSDB's ``read_pixel``)."""

    def __init__(self, groups: dict[Any, list[Any]], read: Any) -> None:
        self.groups = groups
        self.read = read
        self.token = uuid.uuid4().hex

    def __call__(self, pixel: Any) -> pd.DataFrame:
        import nested_pandas as npd

        frames = [self.read(part) for part in self.groups[pixel]]
        return frames[0] if len(frames) == 1 else npd.NestedFrame(pd.concat(frames))

    def __dask_tokenize__(self) -> str:
        return self.token


def merged_on(catalog: lsdb.Catalog, pixels: Sequence[Any]) -> lsdb.Catalog:
    """``catalog`` (as ``lsdb.open_catalog`` opened it, with its columns and filters) with
    the partitions that lie inside one of ``pixels`` at a deeper order read together as one
    partition at that pixel; the others are kept as they are. Matched with the catalog
    whose partitions are ``pixels``, each of those is then read once, not once per finer
    partition of ``catalog``. Returns ``catalog`` itself when nothing is to merge."""
    import functools

    import hats
    import lsdb
    from hats.pixel_math import HealpixPixel
    from hats.pixel_math.healpix_pixel_function import get_pixel_argsort
    from lsdb.loaders.hats.read_hats import read_pixel
    from lsdb.operations.lsdb_ops import FromHealpixMap

    targets = {(int(p.order), int(p.pixel)) for p in pixels}
    orders = sorted({order for order, _ in targets})
    groups: dict[HealpixPixel, list[HealpixPixel]] = {}
    for part in catalog.get_healpix_pixels():
        home = next(
            (HealpixPixel(o, part.pixel >> 2 * (part.order - o)) for o in orders
             if o < part.order and (o, part.pixel >> 2 * (part.order - o)) in targets),
            part,
        )
        groups.setdefault(home, []).append(part)
    if all(len(parts) == 1 for parts in groups.values()) and all(home == parts[0] for home, parts in groups.items()):
        return catalog
    structure, config = catalog.hc_structure, catalog.loading_config
    assert config is not None, "merged_on reads a catalog opened from disk"
    suffix = structure.catalog_info.npix_suffix
    read = functools.partial(
        read_pixel, path_generator=config.path_generator, catalog_base_dir=structure.catalog_base_dir,
        npix_suffix=suffix, columns=config.columns, schema=structure.schema, filters=config.filters,
        index_column=catalog.meta.index.name, is_dir=suffix == "/", **config.kwargs,
    )
    homes = list(groups)
    homes = [homes[i] for i in get_pixel_argsort(homes)]
    for parts in groups.values():
        parts.sort(key=lambda p: p.pixel << 2 * (SPATIAL_ORDER - p.order))
    operation = FromHealpixMap(_MergedPixels(groups, read), pixels=homes, meta=catalog.meta, verify_meta=False)
    merged = hats.catalog.Catalog(structure.catalog_info, homes, moc=structure.moc, schema=structure.schema)
    return lsdb.Catalog(operation, merged)


def partitioning_order(ra: np.ndarray, dec: np.ndarray, rows_per_partition: int) -> tuple[int, int]:
    """The deepest HEALPix order a partitioning of these positions needs (:data:`HISTOGRAM_ORDER`,
    or deeper where one pixel holds more than a partition's rows) and the row threshold to
    use with it (``rows_per_partition``, or the fullest pixel's rows where even the deepest
    order cannot split a field that dense)."""
    from hats.pixel_math.spatial_index import compute_spatial_index

    order, histogram = _histogram(compute_spatial_index(np.asarray(ra, float), np.asarray(dec, float)), rows_per_partition)
    return order, _threshold(histogram, rows_per_partition)


def _threshold(histogram: np.ndarray, rows_per_partition: int) -> int:
    return max(rows_per_partition, int(histogram.max()))


def _histogram(spatial: np.ndarray, rows_per_partition: int) -> tuple[int, np.ndarray]:
    """Rows per HEALPix pixel at :data:`HISTOGRAM_ORDER`, or deeper (up to
    :data:`DEEPEST_HISTOGRAM_ORDER`) until no pixel holds more than a partition's rows."""
    for order in range(HISTOGRAM_ORDER, DEEPEST_HISTOGRAM_ORDER + 1):
        histogram = np.bincount(spatial >> (2 * (SPATIAL_ORDER - order)), minlength=12 * 4**order)
        if histogram.max() <= rows_per_partition:
            break
    return order, histogram


def _schema(meta: pd.DataFrame) -> Any:
    import pyarrow as pa

    return pa.Schema.from_pandas(meta, preserve_index=True)
