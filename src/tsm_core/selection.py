"""Selections over the whole matched set: unique galaxies and the training split.

The matched set is small (at most ``n_neighbors`` rows per redshift), so the keys of
every row fit in memory even when the rows themselves are streamed. Rules work on
the keys only and return a boolean mask over rows in output order, which makes them
independent of how the sky was partitioned.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsm_core.types import Z_FLAG_STAR

UNIQUE_RULES = ("none", "closest", "best_redshift")


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
    * ``best_redshift``: an object matched by several redshifts keeps the one with the
      highest homogenized ``z_flag``, then the smallest ``z_err``, then the nearest; a
      star (``z_flag`` 6) ranks below every other redshift, a missing flag just above
      it, so a star is never chosen while a galaxy redshift of the object exists.
    """
    keys = keys.reset_index(drop=True).assign(_row=np.arange(len(keys)))
    mask = np.ones(len(keys), dtype=bool)
    removed: dict[str, int] = {}
    if rule == "none" or not len(keys):
        return mask, removed
    if rule == "closest":
        mask = _keep_first(keys, redshift_key, ["_dist_arcsec"], [True])
        removed["not the nearest object of its redshift"] = int((~mask).sum())
        survivors = keys[mask]
        second = _keep_first(survivors.assign(_row=np.arange(len(survivors))), object_key, ["_dist_arcsec"], [True])
        mask[np.flatnonzero(mask)[~second]] = False
        removed["not the nearest redshift of its object"] = int((~second).sum())
    elif rule == "best_redshift":
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
        mask = _keep_first(keys, object_key, order + ["_dist_arcsec"], ascending + [True])
        removed["not the best redshift of its object"] = int((~mask).sum())
    else:
        raise ValueError(f"unknown unique-galaxy rule {rule!r}; valid: {', '.join(UNIQUE_RULES)}")
    return mask, removed


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def training_flags(redshift_ids: pd.Series, fraction: float, seed: int) -> np.ndarray:
    """``is_training`` per row: a seeded hash of the redshift id below ``fraction``.

    All matches of one redshift fall on the same side, and the flag of a row depends
    only on its id and the seed, never on partitioning or row order.
    """
    hashed = pd.util.hash_array(redshift_ids.astype(str).to_numpy(dtype=object), categorize=False)
    with np.errstate(over="ignore"):
        mixed = _splitmix64(hashed.astype(np.uint64) ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF))
    uniform = (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return uniform < fraction
