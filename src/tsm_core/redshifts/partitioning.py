"""Partition an in-memory table on the sky, once per run, without reordering it.

A redshift file given by path is matched as a lazy LSDB catalog. ``lsdb.from_dataframe``
would do it, but it cuts each partition with a boolean mask over the whole table (one
pass per partition), hashes every partition's data to name the Dask tasks, and builds a
MOC from every row: 3 s for 2 million rows on two cores, most of a run at that size.
:func:`sky_partitions` computes each row's HEALPix spatial index once, finds the
partition that holds it (:func:`partition_of`), groups the row numbers by partition (a
sort of small integers) and leaves each partition's rows to be taken from the table (an
Arrow ``take``, sorted by spatial index) by the partition's own task, in parallel with the
crossmatch of the others; the tasks are named with a random token and the MOC is built
from the distinct order-10 cells. Partitions are HATS's own ``generate_alignment`` (computed with
array operations: :func:`sky_pixels`), or the other catalog's.

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

from tsm_core.science.sphere import SPATIAL_ORDER

if TYPE_CHECKING:
    import lsdb

#: HEALPix order of the row-count histogram (HATS's and LSDB's default), and the deepest
#: one used where a pixel of that order holds more than a partition's rows (dense fields)
HISTOGRAM_ORDER = 7
DEEPEST_HISTOGRAM_ORDER = 10
#: order of the coverage map (MOC) of the partitioned table
MOC_ORDER = 10


class _RandomToken:
    """Named in Dask's graph by a random token instead of by hashing the data it holds."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex

    def __dask_tokenize__(self) -> str:
        return self.token


class _PixelRows(_RandomToken):
    """Takes each pixel's rows from the table, for the catalog's tasks (so the table is
    never reordered whole)."""

    def __init__(self, table: Any, spatial: np.ndarray, rows: dict[Any, np.ndarray]) -> None:
        self.table = table
        self.spatial = spatial
        self.rows = rows
        super().__init__()

    def __call__(self, pixel: Any) -> pd.DataFrame:
        import nested_pandas as npd

        return npd.NestedFrame(_frame(self.table.take(_sorted(self.rows[pixel], self.spatial))))


class _OwnRows(_RandomToken):
    """One partition's rows, already taken, for a task sent to a worker process with them."""

    def __init__(self, table: Any) -> None:
        self.table = table
        super().__init__()


def _own_rows(pixel: Any, rows: _OwnRows) -> pd.DataFrame:
    import nested_pandas as npd

    return npd.NestedFrame(_frame(rows.table))


def _sorted(rows: np.ndarray, spatial: np.ndarray) -> np.ndarray:
    """``rows`` in the order of their spatial index, as HATS stores rows."""
    return rows[np.argsort(spatial[rows], kind="stable")]


def _frame(table: Any) -> pd.DataFrame:
    """An Arrow table with the spatial index column as a frame indexed by it, Arrow-backed."""
    from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN

    return table.to_pandas(types_mapper=pd.ArrowDtype).set_index(SPATIAL_INDEX_COLUMN)


#: deepest partition order for which :func:`partition_of` uses a lookup table (one entry
#: per pixel of that order: 12 * 4**10, 25 MB, at most)
LOOKUP_ORDER = 10


def partition_dtype(n_pixels: int) -> type:
    """The smallest integer type that numbers ``n_pixels`` partitions and -1."""
    return np.int16 if n_pixels < 2**15 else np.int32


def partition_of(pixels: Sequence[Any], spatial: np.ndarray) -> np.ndarray:
    """Index into ``pixels`` (which do not overlap; anything with ``order`` and ``pixel``)
    of the pixel holding each HEALPix spatial index (order 29), -1 for none, as the
    smallest integer type that holds it. A lookup table at the deepest order of
    ``pixels`` (one pass over ``spatial``), or a search over the pixels' index ranges
    where that order is deeper than :data:`LOOKUP_ORDER`."""
    dtype = partition_dtype(len(pixels))
    if not len(pixels):
        return np.full(len(spatial), -1, dtype=dtype)
    orders = np.array([int(p.order) for p in pixels], dtype=np.int64)
    numbers = np.array([int(p.pixel) for p in pixels], dtype=np.int64)
    deepest = int(orders.max())
    if deepest <= LOOKUP_ORDER:
        table = np.full(12 * 4**deepest, -1, dtype=dtype)
        for i, (order, number) in enumerate(zip(orders, numbers)):
            shift = 2 * (deepest - int(order))
            table[number << shift : (number + 1) << shift] = i
        return table[np.asarray(spatial) >> (2 * (SPATIAL_ORDER - deepest))]
    shifts = 2 * (SPATIAL_ORDER - orders)
    sorter = np.argsort(numbers << shifts)
    starts, ends = (numbers << shifts)[sorter], ((numbers + 1) << shifts)[sorter]
    at = np.searchsorted(starts, spatial, side="right") - 1  # the last range starting at or before; -1: none
    pos = np.maximum(at, 0)
    return np.where((at >= 0) & (spatial < ends[pos]), sorter[pos], -1).astype(dtype)


def as_arrow_types(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with Arrow-backed columns, as LSDB reads HATS catalogs (and builds them)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=True)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def sky_partitions(
    frame: pd.DataFrame,
    ra: str = "ra",
    dec: str = "dec",
    rows_per_partition: int = 50_000,
    name: str = "redshifts",
    pixels: Sequence[Any] | None = None,
    ship_rows: bool = False,
) -> lsdb.Catalog:
    """A lazy LSDB catalog of ``frame``, cut into HEALPix partitions of at most about
    ``rows_per_partition`` rows (no margin: it is the left side of a crossmatch).

    With ``pixels`` (the partitions of the catalog it will be matched with, which do not
    overlap) the table is cut on those instead, rows outside them left out: the crossmatch
    then pairs each partition with one partition of the other catalog, which is read once,
    not once per finer partition of this one.

    Each partition's task takes its rows from the table when it runs; with ``ship_rows``
    (tasks run in worker processes, which do not share this one's memory) they are taken
    now and each task carries only its own."""
    import hats
    import lsdb
    import nested_pandas as npd
    import pyarrow as pa
    from hats.catalog import TableProperties
    from hats.pixel_math import HealpixPixel
    from hats.pixel_math.healpix_pixel_function import get_pixel_argsort
    from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN, compute_spatial_index
    from lsdb.operations.lsdb_ops import FromHealpixMap
    from mocpy import MOC

    if not len(frame):
        raise ValueError("cannot partition an empty table")
    spatial = compute_spatial_index(frame[ra].to_numpy(dtype=float), frame[dec].to_numpy(dtype=float))
    if pixels is None:
        pixels = sky_pixels(spatial, rows_per_partition)
    pixels = [HealpixPixel(int(p.order), int(p.pixel)) for p in pixels]
    pixels = [pixels[i] for i in get_pixel_argsort(pixels)]
    home = partition_of(pixels, spatial)  # small integers: a radix sort where they fit in 16 bits
    by_home = np.argsort(home, kind="stable")
    bounds = np.cumsum(np.bincount(home.astype(np.int64) + 1, minlength=len(pixels) + 1))  # rows outside come first
    rows = {pixel: by_home[lo:hi] for pixel, lo, hi in zip(pixels, bounds[:-1], bounds[1:]) if hi > lo}
    if not rows:
        raise ValueError("no row lies in the given pixels")
    table = pa.Table.from_pandas(frame, preserve_index=False).append_column(SPATIAL_INDEX_COLUMN, pa.array(spatial))
    meta = npd.NestedFrame(_frame(table.slice(0, 0)))
    pixels = list(rows)
    if ship_rows:
        taken = [_OwnRows(table.take(_sorted(r, spatial))) for r in rows.values()]
        operation = FromHealpixMap(_own_rows, pixels=pixels, meta=meta, verify_meta=False, map_kwargs={"rows": taken})
    else:
        operation = FromHealpixMap(_PixelRows(table, spatial, rows), pixels=pixels, meta=meta, verify_meta=False)
    present = np.zeros(12 * 4**MOC_ORDER, dtype=bool)  # the distinct cells, by a scatter rather than a sort
    present[spatial[home >= 0] >> (2 * (SPATIAL_ORDER - MOC_ORDER))] = True
    cells = np.flatnonzero(present)
    moc = MOC.from_healpix_cells(cells, np.full(len(cells), MOC_ORDER, dtype=np.uint8), MOC_ORDER)
    info = TableProperties(  # type: ignore[call-arg]  # hats declares optional fields as required
        catalog_name=name,
        catalog_type="object",
        ra_column=ra,
        dec_column=dec,
        total_rows=int((home >= 0).sum()),
        healpix_column=SPATIAL_INDEX_COLUMN,
        healpix_order=SPATIAL_ORDER,
    )
    structure = hats.catalog.Catalog(info, pixels, moc=moc, schema=_schema(meta), generate_snapshot=True)
    return lsdb.Catalog(operation, structure)


class _MergedPixels(_RandomToken):
    """Reads the partitions on disk that make one merged partition, in pixel order, with
    ``read`` (LSDB's ``read_pixel``)."""

    def __init__(self, groups: dict[Any, list[Any]], read: Any) -> None:
        self.groups = groups
        self.read = read
        super().__init__()

    def __call__(self, pixel: Any) -> pd.DataFrame:
        import nested_pandas as npd

        frames = [self.read(part) for part in self.groups[pixel]]
        return frames[0] if len(frames) == 1 else npd.NestedFrame(pd.concat(frames))


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
            (
                HealpixPixel(o, part.pixel >> 2 * (part.order - o))
                for o in orders
                if o < part.order and (o, part.pixel >> 2 * (part.order - o)) in targets
            ),
            part,
        )
        groups.setdefault(home, []).append(part)
    if all(len(parts) == 1 for parts in groups.values()) and all(home == parts[0] for home, parts in groups.items()):
        return catalog
    structure, config = catalog.hc_structure, catalog.loading_config
    assert config is not None, "merged_on reads a catalog opened from disk"
    suffix = structure.catalog_info.npix_suffix
    # the files' own schema, as LSDB reads them: filters may name columns that are not loaded
    on_disk = structure.original_schema or hats.read_hats(structure.catalog_base_dir).schema  # type: ignore[union-attr]
    read = functools.partial(
        read_pixel,
        path_generator=config.path_generator,  # type: ignore[arg-type]
        catalog_base_dir=structure.catalog_base_dir,
        npix_suffix=suffix,
        columns=config.columns,
        schema=on_disk,
        filters=config.filters,
        index_column=catalog.meta.index.name,
        is_dir=suffix == "/",
        **config.kwargs,
    )
    homes = list(groups)
    homes = [homes[i] for i in get_pixel_argsort(homes)]
    for parts in groups.values():
        parts.sort(key=lambda p: p.pixel << 2 * (SPATIAL_ORDER - p.order))
    operation = FromHealpixMap(_MergedPixels(groups, read), pixels=homes, meta=catalog.meta, verify_meta=False)
    merged = hats.catalog.Catalog(structure.catalog_info, homes, moc=structure.moc, schema=structure.schema)
    return lsdb.Catalog(operation, merged)


def sky_pixels(spatial: np.ndarray, rows_per_partition: int) -> list[Any]:
    """The partitions of positions given by their spatial index, sorted as HATS sorts them:
    HATS' ``generate_alignment`` (``lowest_order=0``, ``drop_empty_siblings``,
    ``use_lower_order``) of the row counts at :data:`HISTOGRAM_ORDER`, or deeper (up to
    :data:`DEEPEST_HISTOGRAM_ORDER`) where a pixel holds more than ``rows_per_partition`` rows,
    with the fullest pixel's rows as the threshold where even that cannot split a field.
    Computed with array operations: HATS loops over every pixel of the order in Python (0.3 s
    at order 7, whatever the number of rows)."""
    import hats  # noqa: F401  # the package whole, first: see tsm_core.catalogs.small_hats
    from hats.pixel_math import HealpixPixel
    from hats.pixel_math.healpix_pixel_function import get_pixel_argsort

    for highest in range(HISTOGRAM_ORDER, DEEPEST_HISTOGRAM_ORDER + 1):
        histogram = np.bincount(spatial >> (2 * (SPATIAL_ORDER - highest)), minlength=12 * 4**highest)
        if histogram.max() <= rows_per_partition:
            break
    threshold = max(rows_per_partition, int(histogram.max()))
    sums = [histogram]  # the counts at every order, deepest first
    for _ in range(highest):
        sums.append(sums[-1].reshape(-1, 4).sum(axis=1))
    sums.reverse()
    while highest > 1 and sums[highest - 1].max() <= threshold:  # use_lower_order
        highest -= 1
    order_map = np.where(sums[highest] > 0, highest, -1)
    for order in range(highest - 1, -1, -1):  # collapse a quad of several non-empty cells that fits
        quads = sums[order + 1].reshape(-1, 4)
        collapse = (sums[order] != quads.max(axis=1)) & (sums[order] <= threshold)
        order_map[np.repeat(collapse, 4 ** (highest - order))] = order
    cells = np.flatnonzero(order_map >= 0)
    orders = order_map[cells]
    found = np.unique(np.stack([orders, cells >> (2 * (highest - orders))], axis=1), axis=0)
    pixels = [HealpixPixel(int(o), int(p)) for o, p in found]
    return [pixels[i] for i in get_pixel_argsort(pixels)] if pixels else []


def _schema(meta: pd.DataFrame) -> Any:
    import pyarrow as pa

    return pa.Schema.from_pandas(meta, preserve_index=True)
