"""The select stage: the match filters (``filters.match``), the unique-galaxy rule, the
split and the representativeness fit, which need the whole matched set, applied to the
run's matches (the science itself is in
:mod:`tsm_core.science.selection` and :mod:`tsm_core.science.representativeness`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tsm_core.pipeline.timing import stage
from tsm_core.science.filters import Filter, parse_filters
from tsm_core.science.photometry import DIST_COLUMN, ZROW_COLUMN
from tsm_core.science.selection import SPLIT_KEY_COLUMNS, Spool, assign_split, unique_galaxies

if TYPE_CHECKING:
    from tsm_core.pipeline.plan import Plan
    from tsm_core.science.representativeness import Weigher

log = logging.getLogger(__name__)


@dataclass
class Selection:
    """Which match rows are written, in the order they come, and their side of the split."""

    #: the kept rows, partition by partition
    frames: Iterator[pd.DataFrame]
    #: rows removed per unique-galaxy rule
    removed: dict[str, int] = field(default_factory=dict)
    #: ``is_training`` and fold of every kept row, in order (with a split)
    training: np.ndarray | None = None
    fold: np.ndarray | None = None
    #: the redshift row of every match before the rules; None when the matches stream
    #: straight to the writer (no rule, split or weights) and are counted as written
    matched_zrows: np.ndarray | None = None
    #: per match, in the order of ``matched_zrows``: the index of the first match filter
    #: that removed it, -1 where it passed them all (None without match filters)
    match_failed: np.ndarray | None = None


def select(
    plan: Plan,
    frames: Iterator[pd.DataFrame],
    weigher: Weigher | None,
    folder: Path,
    written: Any,
    hold: bool = False,
) -> Selection:
    """Apply the match filters, then the unique-galaxy rule (over the rows that passed), the
    split and the representativeness fit, which need the whole matched set: every match is
    spooled to ``folder`` (only its keys kept in memory) and replayed, kept rows only. Without
    any of them (and without ``hold``: the rows wait for something measured over every match,
    such as the depths) the matches stream straight through."""
    cfg, release = plan.config, plan.release
    match_filters = parse_filters(cfg.filters.match, "filters.match")
    no_rule = cfg.unique_galaxies == "none" and cfg.split is None and weigher is None
    if no_rule and not match_filters and not hold:
        return Selection(frames)
    key_columns = [ZROW_COLUMN, release.id_column, DIST_COLUMN, "z_flag", "z_err"]
    key_columns += [c for c in (SPLIT_KEY_COLUMNS if cfg.split else []) if c not in key_columns]
    key_columns += [c for c in (weigher.key_columns if weigher else []) if c not in key_columns]
    spool = Spool(folder, key_columns)
    failed: list[np.ndarray] = []
    removed = {f"filters.match: {f.expression}": 0 for f in match_filters}
    with stage("match and photometry (spooled for selection)"):
        for frame in frames:
            with written:
                spool.add(frame)
            failed.append(_match_filter(frame, match_filters, removed))
    keys = spool.all_keys()
    match_failed = np.concatenate(failed) if failed else np.zeros(0, dtype=np.int16)
    mask = match_failed < 0
    unique, removed_unique = unique_galaxies(keys[mask], cfg.unique_galaxies, ZROW_COLUMN, release.id_column)
    mask[np.flatnonzero(mask)[~unique]] = False
    removed |= removed_unique
    for rule, count in removed_unique.items():
        log.info("unique galaxies (%s): removed %d rows %s", cfg.unique_galaxies, count, rule)
    training = fold = None
    if cfg.split:
        with stage(f"split ({cfg.split.method})"):
            training, fold = assign_split(keys[mask], release.id_column, cfg.split)
    if weigher:
        weigher.fit(keys[mask])
    zrows = keys[ZROW_COLUMN].to_numpy()
    return Selection(spool.replay(mask), removed, training, fold, zrows, match_failed if match_filters else None)


def _match_filter(frame: pd.DataFrame, filters: list[Filter], removed: dict[str, int]) -> np.ndarray:
    """For each row of ``frame``, the index of the first match filter it fails (-1: it passes
    every one); each removed row is counted in ``removed`` under that filter."""
    first = np.full(len(frame), -1, dtype=np.int16)
    for i, f in enumerate(filters):
        fails = (first < 0) & ~np.asarray(f.mask(frame), dtype=bool)
        removed[f"filters.match: {f.expression}"] += int(fails.sum())
        first[fails] = i
    return first
