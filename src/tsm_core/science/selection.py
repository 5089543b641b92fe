"""Selections over the whole matched set: unique galaxies and the training split.

The matched set is small (at most ``n_neighbors`` rows per redshift), so the keys of
every row fit in memory even when the rows themselves are streamed. Rules work on
the keys only and return a boolean mask over rows in output order, which makes them
independent of how the sky was partitioned.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from tsm_core.columns import DIST_COLUMN
from tsm_core.config import SplitConfig
from tsm_core.plugins.records import Z_FLAG_STAR

log = logging.getLogger(__name__)

UNIQUE_RULES = ("none", "closest", "best_redshift", "best_redshift_per_object")


def _keep_first(keys: pd.DataFrame, by: str, order: list[str], ascending: list[bool]) -> np.ndarray:
    """Mask keeping, for each value of ``by``, the first row in the given sort order."""
    ordered = keys.sort_values(order + ["_row"], ascending=ascending + [True], na_position="last", kind="mergesort")
    kept = ordered.drop_duplicates(subset=[by], keep="first")["_row"].to_numpy()
    mask = np.zeros(len(keys), dtype=bool)
    mask[kept] = True
    return mask


def unique_galaxies(
    keys: pd.DataFrame, rule: str, redshift_key: str, object_key: str
) -> tuple[np.ndarray, dict[str, int]]:
    """Mask of rows kept by ``rule`` and the number of rows each step removed.

    ``keys`` has one row per match with ``redshift_key``, ``object_key``,
    ``_dist_arcsec`` and, for ``best_redshift``, ``z_flag`` and ``z_err`` if present.

    * ``none``: keep every match.
    * ``closest``: each redshift keeps its nearest object, then each object keeps its
      nearest remaining redshift: the result is one-to-one.
    * ``best_redshift_per_object``: an object matched by several redshifts keeps the one
      with the highest homogenized ``z_flag``, then the smallest ``z_err``, then the
      nearest; a star (``z_flag`` 6) ranks below every other redshift, a missing flag just
      above it, so a star is never chosen while a galaxy redshift of the object exists.
      One row per object, but a redshift may still be kept by several objects.
    * ``best_redshift``: ``best_redshift_per_object``, then each redshift keeps only its
      nearest kept object: the result is one-to-one.
    """
    keys = keys.reset_index(drop=True).assign(_row=np.arange(len(keys)))
    mask = np.ones(len(keys), dtype=bool)
    removed: dict[str, int] = {}
    if rule == "none" or not len(keys):
        return mask, removed
    if rule == "closest":
        mask = _keep_first(keys, redshift_key, [DIST_COLUMN], [True])
        removed["not the nearest object of its redshift"] = int((~mask).sum())
        survivors = keys[mask]
        second = _keep_first(survivors.assign(_row=np.arange(len(survivors))), object_key, [DIST_COLUMN], [True])
        mask[np.flatnonzero(mask)[~second]] = False
        removed["not the nearest redshift of its object"] = int((~second).sum())
    elif rule in ("best_redshift", "best_redshift_per_object"):
        order, ascending = [], []
        if "z_flag" in keys:
            flag = pd.to_numeric(keys["z_flag"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            rank = np.where(flag == Z_FLAG_STAR, -2.0, np.where(np.isnan(flag), -1.0, flag))
            keys = keys.assign(_flag_rank=rank)
            order.append("_flag_rank")
            ascending.append(False)
        if "z_err" in keys:
            order.append("z_err")
            ascending.append(True)
        mask = _keep_first(keys, object_key, order + [DIST_COLUMN], ascending + [True])
        removed["not the best redshift of its object"] = int((~mask).sum())
        if rule == "best_redshift":
            survivors = keys[mask]
            second = _keep_first(survivors.assign(_row=np.arange(len(survivors))), redshift_key, [DIST_COLUMN], [True])
            mask[np.flatnonzero(mask)[~second]] = False
            removed["not the nearest kept object of its redshift"] = int((~second).sum())
    else:
        raise ValueError(f"unknown unique-galaxy rule {rule!r}; valid: {', '.join(UNIQUE_RULES)}")
    return mask, removed


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def seeded_hash(values: pd.Series | np.ndarray, seed: int) -> np.ndarray:
    """A uint64 per value that depends only on the value (as text) and ``seed``."""
    text = pd.Series(values).astype(str).to_numpy(dtype=object)
    hashed = pd.util.hash_array(text, categorize=False)
    with np.errstate(over="ignore"):
        return _splitmix64(hashed.astype(np.uint64) ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF))


#: a group holding more than this share of the rows is reported (the split cannot cut it)
LARGE_GROUP = 0.25
#: the redshift columns a split reads (besides the object id)
SPLIT_KEY_COLUMNS = ("id", "z", "ra", "dec")


def split_groups(*node_keys: np.ndarray) -> np.ndarray:
    """Group label per row: connected components of the graph whose nodes are the
    values of each key column (``node_keys``, one array per kind, same length) and whose
    edges join the values that share a row.

    With the redshift ids and object ids this puts every row of one object and of one
    redshift in one group, however they chain (A-x, x-B, B-y ...).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n_rows = len(node_keys[0])
    if not n_rows:
        return np.zeros(0, dtype=np.int64)
    codes, offset = [], 0
    for values in node_keys:
        c, uniques = pd.factorize(pd.Series(values), use_na_sentinel=False)
        codes.append(c.astype(np.int64) + offset)
        offset += len(uniques)
    first = np.concatenate([codes[0]] * (len(codes) - 1)) if len(codes) > 1 else codes[0]
    second = np.concatenate(codes[1:]) if len(codes) > 1 else codes[0]
    graph = coo_matrix((np.ones(len(first), dtype=np.int8), (first, second)), shape=(offset, offset))
    _, labels = connected_components(graph, directed=False)
    return labels[codes[0]].astype(np.int64)


def _assign_fraction(sizes: np.ndarray, fraction: float) -> np.ndarray:
    """Groups (in their order) on the training side so that about ``fraction`` of the
    rows are: a group goes to training while the running total is below the target."""
    before = np.cumsum(sizes) - sizes
    return before + sizes / 2.0 <= fraction * sizes.sum()


def _assign_folds(sizes: np.ndarray, k: int) -> np.ndarray:
    """Groups (in their order) dealt into ``k`` folds, each to the fold with the fewest
    rows so far (lowest index on ties): single rows go round-robin, so folds differ by
    at most one row."""
    if (sizes == 1).all():
        return np.arange(len(sizes), dtype=np.int64) % k
    counts = [0] * k
    folds = np.empty(len(sizes), dtype=np.int64)
    for i, size in enumerate(sizes.tolist()):
        fold = counts.index(min(counts))
        folds[i] = fold
        counts[fold] += size
    return folds


def assign_split(keys: pd.DataFrame, object_key: str, split: SplitConfig) -> tuple[np.ndarray, np.ndarray | None]:
    """``is_training`` and (with ``k`` folds) ``fold`` per row of ``keys``.

    ``keys`` has the redshift ``id``, ``z``, ``ra``, ``dec`` and ``object_key`` of every
    row of the selected matched set (any row order). Rows are grouped by
    :func:`split_groups` over redshift ids and object ids (and, for the ``healpix``
    method, the HEALPix pixel of the redshift at ``split.healpix_order``). Groups are
    ordered by a seeded hash of their smallest member id (of their pixel for
    ``healpix``), within quantile bins of their median ``z`` for ``stratify: z``, and then
    assigned in that order; nothing depends on partitioning or row order.
    """
    n = len(keys)
    if not n:
        return np.zeros(0, dtype=bool), (np.zeros(0, dtype=np.int64) if split.k else None)
    ids = keys["id"].to_numpy()
    objects = keys[object_key].to_numpy()
    if split.method == "healpix":
        import healpy as hp

        pixels = hp.ang2pix(
            1 << split.healpix_order,
            keys["ra"].to_numpy(dtype=np.float64),
            keys["dec"].to_numpy(dtype=np.float64),
            nest=True,
            lonlat=True,
        )
        labels = split_groups(pixels, ids, objects)
        member_hash = seeded_hash(pixels, split.seed)
    else:
        labels = split_groups(ids, objects)
        member_hash = seeded_hash(ids, split.seed)
    rows = pd.DataFrame({"group": labels, "hash": member_hash, "z": keys["z"].to_numpy(dtype=np.float64)})
    groups = rows.groupby("group", sort=True).agg(hash=("hash", "min"), size=("hash", "size"), z=("z", "median"))
    if split.stratify == "z":
        edges = np.quantile(groups["z"].to_numpy(), np.linspace(0, 1, split.z_bins + 1)[1:-1])
        groups["stratum"] = np.searchsorted(edges, groups["z"].to_numpy(), side="right")
    else:
        groups["stratum"] = 0
    groups = groups.sort_values(["stratum", "hash"], kind="mergesort")
    sizes = groups["size"].to_numpy()
    if sizes.max() > LARGE_GROUP * n:
        log.warning(
            "split: %d of %d rows share objects, redshifts%s in one group, which goes to one side whole",
            sizes.max(),
            n,
            " or HEALPix pixels" if split.method == "healpix" else "",
        )
    if split.k:
        group_fold = pd.Series(_assign_folds(sizes, split.k), index=groups.index)
        fold = group_fold.reindex(labels).to_numpy()
        return fold != split.validation_fold, fold
    training = np.zeros(len(groups), dtype=bool)
    strata = groups["stratum"].to_numpy()
    for stratum in np.unique(strata):
        at = strata == stratum
        training[at] = _assign_fraction(sizes[at], split.train_fraction)
    return pd.Series(training, index=groups.index).reindex(labels).to_numpy(), None


class Spool:
    """Matched partitions parked on disk while a selection over the whole matched set
    (unique galaxies, split, weights) is made from their keys, then replayed in order."""

    def __init__(self, directory: Path, key_columns: list[str]) -> None:
        self.directory = directory
        self.key_columns = key_columns
        self.files: list[Path] = []
        self.keys: list[pd.DataFrame] = []

    def add(self, frame: pd.DataFrame) -> None:
        path = self.directory / f"part-{len(self.files):06d}.parquet"
        frame.to_parquet(path, index=False)
        self.files.append(path)
        self.keys.append(frame[[c for c in self.key_columns if c in frame]])

    @property
    def n_rows(self) -> int:
        return sum(len(k) for k in self.keys)

    def all_keys(self) -> pd.DataFrame:
        if not self.keys:
            return pd.DataFrame(columns=self.key_columns)
        return pd.concat(self.keys, ignore_index=True)

    def replay(self, mask: np.ndarray) -> Iterator[pd.DataFrame]:
        start = 0
        for path in self.files:
            frame = pd.read_parquet(path, dtype_backend="pyarrow")
            yield frame[mask[start : start + len(frame)]]
            start += len(frame)
            path.unlink()
