"""Redshifts seen by several catalogs: which are duplicates of a better one.

:func:`duplicate_mask` works on keys only (position, ``z_flag``, ``z_err``, the catalog's
index and the row's order), never on whole rows, and finds close pairs with a KD-tree of
unit vectors per catalog (``scipy.spatial.cKDTree.sparse_distance_matrix``), so it never
compares all pairs: the work grows as N log N plus the number of close pairs.

The rule (:func:`duplicate_mask`): redshifts are ranked best first by

1. the homogenized ``z_flag``, highest first; a star (6) ranks below every other redshift
   and a missing flag just above it (as ``unique_galaxies: best_redshift`` ranks them);
2. ``z_err``, smallest first (a missing one last);
3. the catalog, in the order the config lists them (the first wins a tie);
4. the row, in the catalog's order.

Walking that ranking, each redshift not yet removed is kept and removes every redshift
*of another catalog* within the radius. Two redshifts of one catalog are never duplicates
of each other (a catalog's own repeats are its own business), and a redshift removed does
not remove others. :func:`duplicate_mask` walks the ranking once, each redshift looking at
its better neighbours only (compiled by numba: the work grows as N + the close pairs, however
long a chain of overlapping pairs).

Memory: the keys (about 42 bytes a redshift) and, while the duplicates are found, one unit
vector and one KD-tree per catalog and the ranking: about 90 bytes a redshift more (measured:
168 MB for 2 million redshifts of two catalogs, half a million of them duplicates; 8.5 s on two
busy cores), so about 130 bytes a redshift at the peak, 1.3 GB for ten million.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from tsm_core.plugins.records import Z_FLAG_STAR
from tsm_core.science.sphere import chord, unit_vectors


def flag_rank(z_flag: np.ndarray) -> np.ndarray:
    """``z_flag`` as a rank, higher is better: a star (6) -2, a missing flag -1, else the flag."""
    flag = np.asarray(z_flag, dtype=np.float64)
    return np.where(flag == Z_FLAG_STAR, -2.0, np.where(np.isnan(flag), -1.0, flag))


def quality_order(z_flag: np.ndarray, z_err: np.ndarray, catalog: np.ndarray) -> np.ndarray:
    """Row indices from the best redshift to the worst (see the module's docstring)."""
    err = np.asarray(z_err, dtype=np.float64)
    err = np.where(np.isnan(err), np.inf, err)
    rows = np.arange(len(err))
    # np.lexsort sorts by the last key first
    return np.lexsort((rows, np.asarray(catalog), err, -flag_rank(z_flag)))


def close_pairs(ra: np.ndarray, dec: np.ndarray, catalog: np.ndarray, radius_arcsec: float) -> np.ndarray:
    """Every pair ``(i, j)`` of rows of *different* catalogs within ``radius_arcsec`` (k x 2)."""
    from scipy.spatial import cKDTree

    catalog = np.asarray(catalog)
    within = chord(radius_arcsec)
    members = [np.flatnonzero(catalog == c) for c in np.unique(catalog)]
    trees = [cKDTree(unit_vectors(ra[m], dec[m])) for m in members]
    found = [np.zeros((0, 2), dtype=np.int64)]
    for a in range(len(trees)):
        for b in range(a + 1, len(trees)):
            near = trees[a].sparse_distance_matrix(trees[b], within, output_type="ndarray")
            if len(near):
                found.append(np.column_stack([members[a][near["i"]], members[b][near["j"]]]))
    return np.concatenate(found)


def duplicate_mask(
    ra: np.ndarray,
    dec: np.ndarray,
    z_flag: np.ndarray,
    z_err: np.ndarray,
    catalog: np.ndarray,
    radius_arcsec: float,
) -> np.ndarray:
    """True for each redshift removed as the duplicate of a better one of another catalog.

    ``catalog`` is each row's catalog as its index in the config's list (it breaks ties);
    rows are ranked within their catalog by their order in the arrays.
    """
    n = len(ra)
    dropped = np.zeros(n, dtype=bool)
    pairs = close_pairs(ra, dec, catalog, radius_arcsec)
    if not len(pairs):
        return dropped
    order = quality_order(z_flag, z_err, catalog)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    first_better = position[pairs[:, 0]] < position[pairs[:, 1]]
    better = np.where(first_better, pairs[:, 0], pairs[:, 1])
    worse = np.where(first_better, pairs[:, 1], pairs[:, 0])
    del pairs, position
    # each redshift's better neighbours, grouped by redshift (compressed rows)
    by_worse = np.argsort(worse, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(worse, minlength=n), out=indptr[1:])
    return _walk(order, indptr, better[by_worse])


def _walk(order: np.ndarray, indptr: np.ndarray, better_of: np.ndarray) -> np.ndarray:
    """The walk down the ranking: a redshift is removed when one of its better neighbours
    (``better_of[indptr[i]:indptr[i + 1]]``) was kept; every better one is decided before
    it, so one pass in rank order decides all (O(n + pairs), compiled by numba)."""
    return _compiled_walk()(order, indptr, better_of)


@functools.cache
def _compiled_walk() -> Any:
    """:func:`_walk_loop` compiled once per process (numba; cached on disk where the run enabled it)."""
    from numba import njit

    return njit(cache=True, nogil=True)(_walk_loop)


def _walk_loop(order: np.ndarray, indptr: np.ndarray, better_of: np.ndarray) -> np.ndarray:
    dropped = np.zeros(len(order), dtype=np.bool_)
    for node in order:
        for k in range(indptr[node], indptr[node + 1]):
            if not dropped[better_of[k]]:
                dropped[node] = True
                break
    return dropped
