"""Where the redshifts of a run went: the funnel, counted while the run happens.

A :class:`Funnel` is an ordered list of :class:`FunnelStep` records. A step either sets
a total (``redshifts read``, ``match rows``, ``rows written``) or removes a number of
them (a bad-row reason, a redshift filter, no object catalog coverage, no object within
the radius, the unique-galaxy rule); each also holds its counts per survey when the
redshift catalog has a ``survey`` column. The run fills it from what it already has in
memory (the keys of the redshifts, the keys of the matched rows), never from a second pass
over the object catalog. It is stored in the product's provenance (``to_dict``), returned in
``RunResult.funnel`` and printed by ``tsm run`` (``lines``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: the survey name used for rows of a catalog without a ``survey`` column, or with none given
NO_SURVEY = "(none)"


def survey_counts(surveys: pd.Series | None) -> dict[str, int]:
    """Rows per survey (``{}`` without a survey column); missing values count as ``(none)``.
    Counted on category codes: no string per row is made."""
    if surveys is None:
        return {}
    values = _as_category(surveys)
    codes = values.cat.codes.to_numpy()
    names = [NO_SURVEY, *map(str, values.cat.categories)]
    counts: dict[str, int] = {}
    for name, n in zip(names, np.bincount(codes.astype(np.int64) + 1, minlength=len(names))):
        if n:
            counts[name] = counts.get(name, 0) + int(n)
    return dict(sorted(counts.items()))


def _as_category(values: pd.Series) -> pd.Series:
    return values if isinstance(values.dtype, pd.CategoricalDtype) else values.astype("category")


@dataclass
class FunnelStep:
    """One step of the funnel.

    ``kind`` is ``total`` (``count`` is how many there are after the step), ``removed``
    (``count`` were removed), ``split`` (``count`` of the written rows are training
    rows), ``info`` (a count beside the funnel, such as objects removed by cuts) or
    ``not_counted`` (``note`` says why). ``unit`` is ``redshifts``, ``rows``
    (matches: one redshift may have several rows when ``n_neighbors > 1``) or
    ``objects``. ``remaining`` is the running total after the step. ``by_catalog``
    holds the counts per redshift catalog in a run with several (else it is empty).
    """

    key: str
    label: str
    kind: str
    count: int
    unit: str = "redshifts"
    remaining: int | None = None
    by_survey: dict[str, int] = field(default_factory=dict)
    note: str = ""
    by_catalog: dict[str, int] = field(default_factory=dict)


@dataclass
class Funnel:
    """The ordered steps of a run, with per-survey counts where the catalog has surveys."""

    steps: list[FunnelStep] = field(default_factory=list)

    def _running(self) -> int | None:
        for step in reversed(self.steps):
            if step.remaining is not None:
                return step.remaining
        return None

    def total(self, key: str, label: str, surveys: pd.Series | None, n: int, unit: str = "redshifts") -> FunnelStep:
        """A step that sets the running total to ``n`` (``surveys``: one value per row, or None)."""
        return self.total_counts(key, label, n, survey_counts(surveys), unit)

    def total_counts(
        self, key: str, label: str, n: int, by_survey: Mapping[str, int] | None = None, unit: str = "redshifts"
    ) -> FunnelStep:
        """A step that sets the running total to ``n``, with its per-survey counts given directly."""
        step = FunnelStep(key, label, "total", int(n), unit, int(n), dict(by_survey or {}))
        self.steps.append(step)
        return step

    def removed(self, key: str, label: str, surveys: pd.Series | None, n: int, unit: str = "redshifts") -> FunnelStep:
        """A step that removed ``n`` (``surveys``: the survey of each removed row, or None)."""
        return self.removed_counts(key, label, int(n), survey_counts(surveys), unit)

    def removed_counts(
        self, key: str, label: str, n: int, by_survey: Mapping[str, int] | None = None, unit: str = "redshifts"
    ) -> FunnelStep:
        """A step that removed ``n``, with its per-survey counts given directly."""
        running = self._running()
        remaining = None if running is None else running - int(n)
        step = FunnelStep(key, label, "removed", int(n), unit, remaining, dict(by_survey or {}))
        self.steps.append(step)
        return step

    def bad_rows(self, reasons: Mapping[str, int], by_survey: Mapping[str, Mapping[str, int]] | None = None) -> None:
        """One removal step per bad-row reason, as the redshift reader reports them."""
        for reason, n in reasons.items():
            self.removed_counts(f"bad_rows:{reason}", f"bad rows: {reason}", int(n), (by_survey or {}).get(reason))

    def split(self, key: str, label: str, surveys: pd.Series | None, n: int, unit: str = "rows") -> FunnelStep:
        """A partition of the written rows (training rows): does not change the total."""
        step = FunnelStep(key, label, "split", int(n), unit, None, survey_counts(surveys))
        self.steps.append(step)
        return step

    def not_counted(self, key: str, label: str, note: str, unit: str = "objects") -> FunnelStep:
        """A step the run could not count in the same pass; ``note`` says why."""
        step = FunnelStep(key, label, "not_counted", 0, unit, None, {}, note)
        self.steps.append(step)
        return step

    def count(self, key: str, label: str, n: int, note: str = "", unit: str = "objects") -> FunnelStep:
        """An informative count outside the redshift funnel (objects removed by cuts)."""
        step = FunnelStep(key, label, "info", int(n), unit, None, {}, note)
        self.steps.append(step)
        return step

    def step(self, key: str) -> FunnelStep | None:
        """The first step with ``key``, else None."""
        return next((s for s in self.steps if s.key == key), None)

    @property
    def surveys(self) -> list[str]:
        """The surveys counted, in the order of the first step that has them."""
        for s in self.steps:
            if s.by_survey:
                return list(s.by_survey)
        return []

    def emptied_at(self) -> FunnelStep | None:
        """The first step after which nothing remained (None if something remains)."""
        return next((s for s in self.steps if s.kind in ("total", "removed") and s.remaining == 0), None)

    def _catalog_lines(self) -> list[str]:
        """Per redshift catalog (a run with several): read, then each step that removed some."""
        read = self.step("read")
        if read is None or not read.by_catalog:
            return []
        out = ["  per catalog:"]
        for name, n in read.by_catalog.items():
            removed = [
                f"-{s.by_catalog[name]} {s.label}" for s in self.steps if s.kind == "removed" and s.by_catalog.get(name)
            ]
            out.append(f"    {name}: {n} read" + "".join(f", {r}" for r in removed))
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"steps": [...], "surveys": [...]}``."""
        return {"steps": [asdict(s) for s in self.steps], "surveys": self.surveys}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Funnel:
        """The funnel stored by :meth:`to_dict` (for example in a product's provenance)."""
        return cls([FunnelStep(**s) for s in data.get("steps", [])])

    def lines(self) -> list[str]:
        """A few lines for the terminal."""
        out: list[str] = []
        chain: list[str] = []
        for s in self.steps:
            if s.kind == "total":
                chain.append(f"{s.count} {s.label}")
            elif s.kind == "removed" and s.count:
                chain.append(f"-{s.count} {s.label}")
        line = "funnel:"
        for i, part in enumerate(chain):  # wrapped at about 110 characters
            piece = (" " if i == 0 else " | ") + part
            if i and len(line) + len(piece) > 110:
                out.append(line + " |")
                line = "   " + part
            else:
                line += piece
        if chain:
            out.append(line)
        split = [s for s in self.steps if s.kind == "split"]
        if split:
            out.append("  " + ", ".join(f"{s.count} {s.label}" for s in split))
        for s in self.steps:
            if s.kind == "info":
                out.append(f"  {s.label}: {s.count}" + (f" ({s.note})" if s.note else ""))
            elif s.kind == "not_counted":
                out.append(f"  {s.label}: not counted ({s.note})")
        surveys = self.surveys
        first = self.step("read")
        last = self.step("written")
        if surveys and first and last:
            per = ", ".join(f"{sv} {last.by_survey.get(sv, 0)}/{first.by_survey.get(sv, 0)}" for sv in surveys)
            out.append(f"  per survey (rows written / redshifts read): {per}")
        out.extend(self._catalog_lines())
        empty = self.emptied_at()
        if empty is not None:
            out.append(
                f"  no rows left after step {empty.label!r}" + (f" ({empty.key})" if empty.key != empty.label else "")
            )
        return out


def _surveys(frame: pd.DataFrame, mask: np.ndarray | None = None) -> pd.Series | None:
    if "survey" not in frame.columns:
        return None
    return frame["survey"] if mask is None else frame["survey"][np.asarray(mask, dtype=bool)]


def _survey_lookup(surveys: pd.Series, zrows: np.ndarray, size: int) -> Any:
    """A function from redshift row numbers to their surveys (a categorical series)."""
    values = _as_category(surveys)
    by_row = np.full(size, -1, dtype=values.cat.codes.dtype)
    by_row[zrows] = values.cat.codes.to_numpy()
    categories = values.cat.categories

    def surveys_of(rows: np.ndarray) -> pd.Series:
        return pd.Series(pd.Categorical.from_codes(by_row[np.asarray(rows, dtype=np.int64)], categories))

    return surveys_of


#: positions placed at a time by :func:`partition_index` (its temporary arrays stay small)
PLACE_BATCH = 1 << 20


def partition_index(pixels: Sequence[Any], ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Index into ``pixels`` (objects with ``order`` and ``pixel``) of the partition holding
    each position, -1 for none (metadata only, no object rows), :data:`PLACE_BATCH`
    positions at a time, in the smallest integer type that holds it."""
    from hats.pixel_math.spatial_index import compute_spatial_index

    from tsm_core.redshifts.partitioning import partition_dtype, partition_of

    found: np.ndarray = np.full(len(ra), -1, dtype=partition_dtype(len(pixels)))
    if not len(ra) or not len(pixels):
        return found
    for start in range(0, len(ra), PLACE_BATCH):
        part = slice(start, start + PLACE_BATCH)
        spatial = compute_spatial_index(np.asarray(ra[part], float), np.asarray(dec[part], float))
        found[part] = partition_of(pixels, spatial)
    return found


def coarse_pixels(pixels: Sequence[Any], most: int = 800) -> list[list[int]]:
    """``[order, pixel]`` of the partitions, the deepest merged into their parents until
    at most ``most`` remain (a compact coverage for the provenance and the sky map)."""
    cells = {(int(p.order), int(p.pixel)) for p in pixels}
    while len(cells) > most:
        deepest = max(o for o, _ in cells)
        if deepest == 0:
            break
        cells = {(o - 1, n >> 2) if o == deepest else (o, n) for o, n in cells}
    return [list(c) for c in sorted(cells)]


def sky_summary(
    pixels: Sequence[Any], rows: Sequence[int] | None, idx: np.ndarray, kept_fraction: float = 1.0
) -> dict[str, Any]:
    """The object catalog's coverage (``coverage``: ``[order, pixel]``, see
    :func:`coarse_pixels`) and the local object density at the redshifts, whose partitions
    are ``idx`` (:func:`partition_index`):
    ``density_sum_per_arcsec2`` is the sum over the redshifts inside the coverage of the
    object density of their partition (rows / pixel area, times ``kept_fraction``, the
    share of objects the cuts keep where counted). A random placement puts
    ``density_sum * pi * (r2**2 - r1**2)`` unrelated objects at separations between r1 and
    r2 of these redshifts: the chance-match level.
    """
    from hats.pixel_math.healpix_shim import order2pixarea

    out: dict[str, Any] = {
        "coverage": coarse_pixels(pixels),
        "n_partitions": len(pixels),
        "n_covered": int((idx >= 0).sum()),
    }
    if rows is not None and len(pixels):
        area = np.array([order2pixarea(int(p.order), degrees=True) * 3600.0**2 for p in pixels])
        density = np.asarray(rows, dtype=np.float64) / area * kept_fraction
        out["density_sum_per_arcsec2"] = float(density[idx[idx >= 0]].sum())
        out["object_rows"] = int(sum(rows))
        out["kept_fraction"] = kept_fraction
    return out


def record_match(
    funnel: Funnel,
    redshifts: pd.DataFrame,
    zrow_column: str,
    covered: np.ndarray,
    matched_zrows: np.ndarray,
    unique_removed: Mapping[str, int],
    written_zrows: np.ndarray,
    training: np.ndarray | None,
    radius_arcsec: float,
    n_neighbors: int,
) -> None:
    """The steps after the redshift filters, from the redshift row number of every match.

    ``redshifts`` is the filtered redshift table, ``covered`` its rows inside the object
    catalog's partitions, ``matched_zrows`` the redshift row of every match (before the
    unique-galaxy rule), ``written_zrows`` that of every written row and ``training`` the
    ``is_training`` flag of every written row (None without a split).
    """
    zrows = redshifts[zrow_column].to_numpy()
    # row numbers are small non-negative integers (written and matched rows are among
    # zrows): lookups by position, not by hashing
    size = int(zrows.max()) + 1 if len(zrows) else 0
    is_key = np.zeros(size, dtype=bool)
    is_key[zrows] = True
    matched_zrows = np.asarray(matched_zrows, dtype=np.int64)
    if len(matched_zrows) and (matched_zrows.max() >= size or not is_key[matched_zrows].all()):
        raise RuntimeError("matched redshift rows that the filtered keys do not hold: the crossmatch read other rows")
    is_key[:] = False
    is_key[matched_zrows] = True
    matched = is_key[zrows]
    del is_key
    outside = ~covered & ~matched
    funnel.removed("outside_coverage", "outside the object catalog", _surveys(redshifts, outside), int(outside.sum()))
    lonely = covered & ~matched
    funnel.removed(
        "no_match", f"no object within {radius_arcsec:g} arcsec", _surveys(redshifts, lonely), int(lonely.sum())
    )
    surveys_of = (
        _survey_lookup(redshifts["survey"], zrows, size) if "survey" in redshifts.columns else lambda rows: None
    )

    if n_neighbors > 1:
        funnel.total(
            "match_rows",
            f"match rows (up to {n_neighbors} per redshift)",
            surveys_of(matched_zrows),
            len(matched_zrows),
            "rows",
        )
    # per survey, the rules together removed (match rows - written rows); a step gets them when it is the only one
    # that removed anything (the rules report totals only)
    gone = survey_counts(surveys_of(matched_zrows))
    for sv, n in survey_counts(surveys_of(written_zrows)).items():
        gone[sv] -= n
    gone = {sv: n for sv, n in gone.items() if n}
    busy = [rule for rule, n in unique_removed.items() if n]
    for rule, n in unique_removed.items():
        per = gone if n and len(busy) == 1 else {}
        label = rule if rule.startswith("filters.match") else f"unique-galaxy rule: {rule}"
        funnel.removed_counts(f"unique:{rule}", label, int(n), per, unit="rows")
    funnel.total("written", "rows written", surveys_of(written_zrows), len(written_zrows), "rows")
    if training is not None:
        training = np.asarray(training, dtype=bool)
        written = np.asarray(written_zrows)
        funnel.split("training", "training", surveys_of(written[training]), int(training.sum()))
        funnel.split("validation", "validation", surveys_of(written[~training]), int((~training).sum()))
