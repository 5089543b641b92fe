"""The crossmatch algorithm of a run: LSDB's k-nearest match within a radius, with the
ambiguity of every match measured in the same pass.

:class:`AmbiguityCrossmatch` is an LSDB crossmatch algorithm (``Catalog.crossmatch(...,
algorithm=...)``) with one override point, :meth:`~AmbiguityCrossmatch.perform_crossmatch`.
For each pair of partitions it gives the same pairs and ``_dist_arcsec`` as LSDB's
``KdTreeCrossmatch`` (the ``n_neighbors`` nearest objects strictly within the radius, in
order of distance; exact ties are broken by the object's row in its partition), plus:

* ``n_candidates``: every object within the radius of the redshift, however many are kept;
* ``second_dist_arcsec``: the separation of the second-nearest of them (null with one);
* ``p_chance``: the probability that an unrelated object lies as close as the matched one,
  ``1 - exp(-pi * Sigma * sep**2)``, with ``Sigma`` the objects of the object partition
  (its own rows, after the object filters) over the partition's area.

The k-D tree is built over the smaller side of the pair (usually the redshifts): the
larger side is first reduced to the points within the radius of any point of the smaller
one, then the pairs are found between two small trees. An inner join's matched rows are
built by :meth:`~AmbiguityCrossmatch.crossmatch` itself, as LSDB builds them but with fewer
copies (what a small partition costs). The module imports LSDB: the
pipeline imports it when a run starts, not with the package.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import nested_pandas as npd
import numpy as np
import pandas as pd
import pyarrow as pa
from lsdb.core.crossmatch.kdtree_match import KdTreeCrossmatch
from scipy.spatial import KDTree

from tsm_core.columns import DIST_COLUMN, N_CANDIDATES_COLUMN, P_CHANCE_COLUMN, SECOND_DIST_COLUMN
from tsm_core.science.sphere import arc_arcsec, chord, unit_vectors

if TYPE_CHECKING:
    from lsdb.core.crossmatch.crossmatch_args import CrossmatchArgs

_FLOAT = pd.ArrowDtype(pa.float64())
_INT = pd.ArrowDtype(pa.int64())
_ARCSEC2_PER_SR = (180.0 / math.pi * 3600.0) ** 2
#: the pre-selection of the larger side keeps points a hair beyond the radius; the pairs
#: themselves are cut at the radius exactly as LSDB cuts them
_LOOSE = 1.0 + 1e-9


def _arrow(values: np.ndarray, kind: pa.DataType) -> pd.api.extensions.ExtensionArray:
    """``values`` as an Arrow-backed pandas array (NaN becomes null, as in a Series of that dtype)."""
    return pd.array(values, dtype=pd.ArrowDtype(kind))


def suffixed_names(
    left: list[str], right: list[str], suffixes: tuple[str, str], suffix_method: str
) -> tuple[list[str], list[str]]:
    """The left and right column names of a crossmatch's output, as LSDB's ``apply_suffixes``
    names them: every column suffixed (``all_columns``) or only those both sides have
    (``overlapping_columns``)."""
    if suffix_method == "all_columns":
        both = set(left) | set(right)
    elif suffix_method == "overlapping_columns":
        both = set(left) & set(right)
    else:
        raise ValueError(f"Invalid suffix method: {suffix_method}")
    return [c + suffixes[0] if c in both else c for c in left], [c + suffixes[1] if c in both else c for c in right]


def _tree(points: np.ndarray) -> KDTree:
    return KDTree(points, compact_nodes=True, balanced_tree=True, copy_data=False)


def all_pairs(left: np.ndarray, right: np.ndarray, max_chord: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (left row, right row, chord) strictly within ``max_chord``, sorted by left row,
    then chord, then right row. One tree is built over the smaller side; the larger side is
    reduced to its points within the radius (a hair more) of that side, and the pairs are
    found between the tree and a tree over those points."""
    empty = np.zeros(0, dtype=np.int64)
    left_small = len(left) <= len(right)
    small, large = (left, right) if left_small else (right, left)
    if not len(small) or not len(large):
        return empty, empty, np.zeros(0)
    small_tree = _tree(small)
    nearest, _ = small_tree.query(large, k=1, distance_upper_bound=max_chord * _LOOSE)
    near = np.flatnonzero(np.isfinite(nearest))
    if not len(near):
        return empty, empty, np.zeros(0)
    pairs = small_tree.sparse_distance_matrix(_tree(large[near]), max_chord, output_type="ndarray")
    inside = pairs["v"] < max_chord  # KDTree.query's bound is strict, sparse_distance_matrix's is not
    small_rows, large_rows, d = pairs["i"][inside], near[pairs["j"][inside]], pairs["v"][inside]
    i, j = (small_rows, large_rows) if left_small else (large_rows, small_rows)
    order = np.lexsort((j, d, i))
    return i[order], j[order], d[order]


def native_count(right_df: pd.DataFrame, order: int | None, pixel: int | None, index_order: int | None) -> int:
    """Rows of ``right_df`` inside its own partition's pixel (not its margin), from the
    HATS spatial index; -1 when the pixel is unknown."""
    if order is None or pixel is None:
        return -1
    from hats.pixel_math.spatial_index import healpix_to_spatial_index

    index_order = index_order or 29
    lower = healpix_to_spatial_index(order, pixel, spatial_index_order=index_order)
    upper = healpix_to_spatial_index(order, pixel + 1, spatial_index_order=index_order)
    index = right_df.index.to_numpy()
    return int(np.count_nonzero((index >= lower) & (index < upper)))


def pixel_area_arcsec2(order: int) -> float:
    """Area of a HEALPix pixel of ``order`` in square arcseconds."""
    return 4.0 * math.pi / (12 * 4**order) * _ARCSEC2_PER_SR


def chance_probability(separation_arcsec: np.ndarray, density_per_arcsec2: float) -> np.ndarray:
    """``1 - exp(-pi * Sigma * sep**2)``: the probability that a Poisson field of density
    ``Sigma`` puts an object within ``sep`` of a given position."""
    return -np.expm1(-math.pi * density_per_arcsec2 * np.square(separation_arcsec))


class AmbiguityCrossmatch(KdTreeCrossmatch):
    """LSDB's k-nearest crossmatch with the ambiguity columns (see the module docstring);
    the radius, ``n_neighbors`` and the margin check are LSDB's own."""

    extra_columns = pd.DataFrame(
        {
            DIST_COLUMN: pd.Series(dtype=_FLOAT),
            N_CANDIDATES_COLUMN: pd.Series(dtype=_INT),
            SECOND_DIST_COLUMN: pd.Series(dtype=_FLOAT),
            P_CHANCE_COLUMN: pd.Series(dtype=_FLOAT),
        }
    )

    def __init__(self, n_neighbors: int = 1, radius_arcsec: float = 1.0) -> None:
        super().__init__(n_neighbors=n_neighbors, radius_arcsec=radius_arcsec)

    def perform_crossmatch(self, crossmatch_args: CrossmatchArgs) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """LSDB's override point: the pairs and the extra columns as a frame."""
        i, j, extra = self._match(crossmatch_args)
        return i, j, pd.DataFrame({name: pd.Series(values, copy=False) for name, values in extra.items()})

    def crossmatch(
        self, crossmatch_args: CrossmatchArgs, how: str, suffixes: tuple[str, str], suffix_method: str = "all_columns"
    ) -> npd.NestedFrame:
        """The matched rows of one pair of partitions, as LSDB's own ``crossmatch`` builds them
        (left columns, right columns, the extra columns; the left rows' index), for an inner
        join in one step: each side taken once at the matched rows (block by block) and put
        beside the other and the extra columns by one concat (LSDB renames both partitions,
        takes, resets and concatenates them, then sets the index and adds each extra column:
        three times the time). Other joins are LSDB's."""
        args = crossmatch_args
        left, right = args.left_df, args.right_df
        if how != "inner" or left is None or right is None:
            return super().crossmatch(args, how, suffixes, suffix_method)
        if len(left) and len(right):
            i, j, extra = self._match(args)
        else:
            i = j = np.zeros(0, dtype=np.int64)
            extra = {name: pd.array([], dtype=dtype) for name, dtype in self.extra_columns.dtypes.items()}
        left_names, right_names = suffixed_names(list(left.columns), list(right.columns), suffixes, suffix_method)
        left_rows, right_rows = pd.DataFrame(left).take(i), pd.DataFrame(right).take(j)  # block by block
        left_rows.columns, right_rows.columns = left_names, right_names
        index = left_rows.index.rename(left.index.name if left.index.name is not None else "index")
        left_rows.index = right_rows.index = index
        return npd.NestedFrame(pd.concat([left_rows, right_rows, pd.DataFrame(extra, index=index)], axis=1))

    def _match(self, args: CrossmatchArgs) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """The pairs (left rows, right rows) and the extra columns' values, as Arrow-backed arrays."""
        left_info, right_info = args.left_catalog_info, args.right_catalog_info
        left = unit_vectors(
            args.left_df[left_info.ra_column].to_numpy(dtype=np.float64),
            args.left_df[left_info.dec_column].to_numpy(dtype=np.float64),
        )
        right = unit_vectors(
            args.right_df[right_info.ra_column].to_numpy(dtype=np.float64),
            args.right_df[right_info.dec_column].to_numpy(dtype=np.float64),
        )
        i, j, d = all_pairs(left, right, chord(self.radius_arcsec))
        # rank of each pair among its redshift's candidates (pairs are sorted by left row)
        starts = np.searchsorted(i, i, side="left")
        rank = np.arange(len(i)) - starts
        counts = np.bincount(i, minlength=len(left))
        second = np.full(len(left), np.nan)
        second[i[rank == 1]] = d[rank == 1]
        kept = rank < self.n_neighbors
        i, j, d = i[kept], j[kept], d[kept]
        separation = arc_arcsec(d)
        n_native = native_count(args.right_df, args.right_order, args.right_pixel, right_info.healpix_order)
        if n_native >= 0 and args.right_order is not None:
            p_chance = chance_probability(separation, n_native / pixel_area_arcsec2(args.right_order))
        else:
            p_chance = np.full(len(i), np.nan)
        extra = {
            DIST_COLUMN: _arrow(separation, pa.float64()),
            N_CANDIDATES_COLUMN: _arrow(counts[i], pa.int64()),
            SECOND_DIST_COLUMN: _arrow(arc_arcsec(second[i]), pa.float64()),
            P_CHANCE_COLUMN: _arrow(p_chance, pa.float64()),
        }
        return i, j, extra
