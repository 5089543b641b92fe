"""The margin rows of a small in-memory catalog, found with array operations.

LSDB's ``from_dataframe`` finds a margin by listing, for every partition and every empty
region of the sky (its "negative tree"), the pixels at the margin order that border it
(``hats.pixel_math.get_margin``, a Python loop over every border pixel: 0.9 s for an
all-sky catalog of 1,000 rows, most of a registration), then joining the rows on them.
:func:`margin_rows` gives the same rows from the other side: each row's pixel at the margin
order and its 8 neighbours there (``cdshealpix``, vectorized), and the region of the sky
(partition or empty) that holds each neighbour; a row is in the margin of every region other
than its own that holds one of its neighbours -- exactly the regions whose border pixels
include the row's pixel. The empty regions are HATS' own decomposition of what the partitions
leave uncovered (:func:`negative_pixels`, computed here without HATS' numba code).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tsm_core.science.sphere import SPATIAL_ORDER


def margin_order(threshold_arcsec: float, highest_order: int) -> int:
    """The HEALPix order LSDB's ``from_dataframe`` finds a margin of ``threshold_arcsec`` at,
    checked as it checks it: deeper than every partition, its pixels wider than the margin."""
    import hats  # noqa: F401  # the package whole, first: see tsm_core.catalogs.small_hats
    import hats.pixel_math.healpix_shim as hp

    order = int(hp.margin2order(margin_thr_arcmin=np.asarray(threshold_arcsec / 60.0)))
    if order < highest_order + 1:
        raise ValueError("margin_order must be of a higher order than the highest order catalog partition pixel.")
    if hp.order2mindist(order) * 60.0 < threshold_arcsec:
        raise ValueError("margin pixels must be larger than margin_threshold")
    return order


def negative_pixels(pixels: Sequence[Any]) -> list[Any]:
    """The pixels that cover the sky outside ``pixels`` (which do not overlap), as few as the
    quadtree allows: HATS' ``compute_negative_tree_pixels`` (the sky's 12 base pixels aligned
    with the tree), without its numba code. Sorted as HATS sorts pixels (by spatial index)."""
    import hats  # noqa: F401  # the package whole, first: see tsm_core.catalogs.small_hats
    from hats.pixel_math import HealpixPixel
    from hats.pixel_math.healpix_pixel_function import get_pixel_argsort

    taken = {(int(p.order), int(p.pixel)) for p in pixels}
    # every strict ancestor of a partition: a pixel that is split, not covered whole
    split = {(order - k, pixel >> (2 * k)) for order, pixel in taken for k in range(1, order + 1)}
    found: list[HealpixPixel] = []
    stack = [(0, base) for base in range(12)]
    while stack:
        order, pixel = stack.pop()
        if (order, pixel) in taken:
            continue
        if (order, pixel) in split:
            stack.extend((order + 1, 4 * pixel + child) for child in range(4))
        else:
            found.append(HealpixPixel(order, pixel))
    return [found[i] for i in get_pixel_argsort(found)] if found else []


def margin_rows(
    ra: np.ndarray,
    dec: np.ndarray,
    spatial: np.ndarray,
    pixels: Sequence[Any],
    home: np.ndarray,
    threshold_arcsec: float,
) -> dict[Any, np.ndarray]:
    """The rows in the margin of each pixel, as LSDB's ``from_dataframe`` builds a margin of
    ``threshold_arcsec``: a row is in the margin of a pixel (a partition in ``pixels``, or an
    empty region of :func:`negative_pixels`) when its own pixel at the margin order
    (:func:`margin_order`) borders that pixel from outside, by an edge or a corner.

    ``spatial``: each row's spatial index, ``home``: the index into ``pixels`` of its partition.
    Returns, for every pixel with margin rows, their row numbers sorted by spatial index (stable:
    rows at one position in table order), the pixels in HATS' order."""
    import hats  # noqa: F401  # the package whole, first: see tsm_core.catalogs.small_hats
    import hats.pixel_math.healpix_shim as hp
    from cdshealpix.nested import neighbours
    from hats.pixel_math.healpix_pixel_function import get_pixel_argsort

    from tsm_core.redshifts.partitioning import partition_of

    if not len(ra):
        return {}
    order = margin_order(threshold_arcsec, max(int(p.order) for p in pixels))
    empty = negative_pixels(pixels)
    regions = [*pixels, *empty]
    cells = np.asarray(hp.radec2pix(order, np.asarray(ra, float), np.asarray(dec, float)), dtype=np.int64)
    around = neighbours(cells.astype(np.uint64), order).astype(np.int64)  # 9 a row, itself among them, -1: none
    rows = np.repeat(np.arange(len(cells), dtype=np.int64), around.shape[1])
    around = around.ravel()
    real = around >= 0
    rows, around = rows[real], around[real]
    region = partition_of(regions, around << (2 * (SPATIAL_ORDER - order)))  # the regions tile the sky
    own = np.asarray(home, dtype=np.int64)[rows]
    outside = region != own
    pairs = np.unique(region[outside].astype(np.int64) * len(cells) + rows[outside])  # each row once per region
    region, rows = pairs // len(cells), pairs % len(cells)
    spatial = np.asarray(spatial)
    found: dict[Any, np.ndarray] = {}
    bounds = np.flatnonzero(np.diff(region)) + 1
    for group in np.split(np.arange(len(region)), bounds) if len(region) else []:
        members = rows[group]
        found[regions[int(region[group[0]])]] = members[np.argsort(spatial[members], kind="stable")]
    keys = list(found)
    return {keys[i]: found[keys[i]] for i in get_pixel_argsort(keys)} if keys else {}
