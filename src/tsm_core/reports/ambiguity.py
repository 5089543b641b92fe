"""The ambiguity section of a training-set report: how many objects competed for each
match (``n_candidates``), how far the second-nearest was (``second_dist_arcsec``) and how
likely an unrelated object was this close (``p_chance``), from the product's rows.

:func:`numbers` gives the JSON-ready distributions and the fraction of ambiguous matches
(another object within the radius); :func:`draw` draws them for the figures module and
:func:`note` writes the line above the figure. A product made before these columns
existed has no ambiguity section.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from tsm_core.columns import N_CANDIDATES_COLUMN, P_CHANCE_COLUMN, SECOND_DIST_COLUMN

#: a match whose ``p_chance`` exceeds this is counted as a likely chance coincidence
LIKELY_CHANCE = 0.05
#: ``n_candidates`` bars: 1, 2, ... and one bar for this many or more
MOST_CANDIDATES = 6
#: ``p_chance`` histogram edges (log-spaced, the first bin from 0)
P_EDGES = np.concatenate([[0.0], np.logspace(-5, 0, 11)])


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(float, na_value=np.nan)


def numbers(frame: pd.DataFrame, radius_arcsec: float) -> dict[str, Any] | None:
    """The distributions of the ambiguity columns of ``frame`` (None without them)."""
    if not {N_CANDIDATES_COLUMN, SECOND_DIST_COLUMN, P_CHANCE_COLUMN} <= set(frame.columns):
        return None
    n = _floats(frame, N_CANDIDATES_COLUMN)
    second = _floats(frame, SECOND_DIST_COLUMN)
    p = _floats(frame, P_CHANCE_COLUMN)
    rows = len(frame)
    capped = np.minimum(n[np.isfinite(n)], MOST_CANDIDATES).astype(int)
    counts = np.bincount(capped, minlength=MOST_CANDIDATES + 1)[1:]
    second_edges = np.linspace(0.0, radius_arcsec, 21)
    finite_p = p[np.isfinite(p)]
    return {
        "rows": rows,
        "n_candidates": {
            "values": [*map(str, range(1, MOST_CANDIDATES)), f"{MOST_CANDIDATES}+"],
            "counts": counts.tolist(),
        },
        "ambiguous_fraction": float(np.mean(n > 1)) if rows else None,
        "second_dist": {
            "edges": second_edges.tolist(),
            "counts": np.histogram(second[np.isfinite(second)], second_edges)[0].tolist(),
        },
        "p_chance": {
            "edges": P_EDGES.tolist(),
            "counts": np.histogram(np.clip(finite_p, 0.0, 1.0), P_EDGES)[0].tolist(),
            "median": float(np.median(finite_p)) if len(finite_p) else None,
            "likely_chance_threshold": LIKELY_CHANCE,
            "likely_chance_fraction": float(np.mean(finite_p > LIKELY_CHANCE)) if len(finite_p) else None,
        },
    }


def draw(amb: dict[str, Any]) -> Callable[[Any], None]:
    """Three panels: n_candidates, the second-nearest separation, p_chance."""

    def paint(fig: Any) -> None:
        left, middle, right = fig.subplots(1, 3)
        values = amb["n_candidates"]["values"]
        left.bar(values, amb["n_candidates"]["counts"], color="#4477aa")
        left.set_xlabel("objects within the radius")
        left.set_ylabel("rows")
        left.set_title("n_candidates")
        middle.stairs(amb["second_dist"]["counts"], np.asarray(amb["second_dist"]["edges"]), fill=True, alpha=0.6)
        middle.set_xlabel("second-nearest separation (arcsec)")
        middle.set_title("second_dist_arcsec")
        p = amb["p_chance"]
        right.bar(range(len(p["counts"])), p["counts"], color="#cc6677")
        right.set_xticks(range(len(p["counts"])), [f"{e:.0e}" for e in p["edges"][1:]], rotation=60, fontsize=7)
        right.set_xlabel("p_chance (upper bin edge)")
        right.set_title("p_chance")

    return paint


def note(amb: dict[str, Any]) -> str:
    """The HTML line above the figure."""
    p = amb["p_chance"]
    parts = []
    if amb["ambiguous_fraction"] is not None:
        parts.append(
            f"<b>{100 * amb['ambiguous_fraction']:.1f}%</b> of the {amb['rows']} rows are ambiguous "
            "(another object within the radius)"
        )
    if p["likely_chance_fraction"] is not None:
        parts.append(
            f"{100 * p['likely_chance_fraction']:.1f}% have p_chance above {p['likely_chance_threshold']:g} "
            f"(median {p['median']:.2g})"
        )
    return "<p>" + html.escape("; ").join(parts) + ".</p>" if parts else ""
