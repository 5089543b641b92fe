"""Several redshift catalogs in one run, combined into one redshift side.

:func:`open_combined_side` opens each catalog of ``redshift_catalog`` (a list) on its own,
through its own convention, columns and bad-row policy, with the run's redshift filters
(:func:`tsm_core.redshifts.side.open_redshift_side`: a file is read in memory, a registered
catalog scanned partition by partition), each into a funnel of its own. Then, on the keys
only, the redshifts of different catalogs within ``redshift_duplicates_arcsec`` of a better
one are removed (:mod:`tsm_core.redshifts.duplicates`) and the funnels merged, every step
counted per catalog (``by_catalog``), followed by the ``duplicates`` step.

The :class:`CombinedSide` numbers the rows of all catalogs apart (``_zrow`` of catalog k
plus the rows of the catalogs before it), writes each row's catalog name in the
``catalog`` column, and gives the crossmatch one lazy catalog: each catalog's own lazy
catalog, its duplicates removed, its columns brought to the common ones, concatenated
(``lsdb.Catalog.concat``) partition by partition. A column in several catalogs keeps its
type when they agree, becomes float64 when they are all numbers, else text; a column a
catalog lacks is null in its rows.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tsm_core.columns import CANONICAL_REDSHIFT_COLUMNS, CATALOG_COLUMN, ZROW_COLUMN
from tsm_core.errors import ConfigError, TSMError
from tsm_core.pipeline.funnel import NO_SURVEY, Funnel, FunnelStep, partition_index
from tsm_core.plugins.records import ColumnInfo
from tsm_core.redshifts.duplicates import duplicate_mask
from tsm_core.redshifts.keys import QUALITY_COLUMNS
from tsm_core.redshifts.side import RedshiftSide, TableSide, open_redshift_side

if TYPE_CHECKING:
    import lsdb

    from tsm_core.config import RunConfig
    from tsm_core.products.registry import Registry
    from tsm_core.science.filters import Filter

log = logging.getLogger(__name__)

#: what the ``catalog`` column holds
CATALOG_INFO = ColumnInfo("", "the redshift catalog of the row (its label, registered name or file stem)")
#: the longest text a number may become when its column is text in another catalog
NUMBER_AS_TEXT = 32


def _text() -> Any:
    import pyarrow as pa

    return pd.ArrowDtype(pa.string())


def common_dtypes(metas: Sequence[pd.DataFrame], columns: Sequence[str]) -> dict[str, Any]:
    """One type per column over the catalogs' empty frames ``metas``: theirs when they
    agree, float64 when all are numbers (not booleans), else text."""
    import pyarrow as pa

    out: dict[str, Any] = {}
    for c in columns:
        kinds = [m[c].dtype for m in metas if c in m.columns]
        if all(k == kinds[0] for k in kinds):
            out[c] = kinds[0]
        elif all(pd.api.types.is_numeric_dtype(k) and not pd.api.types.is_bool_dtype(k) for k in kinds):
            out[c] = pd.ArrowDtype(pa.float64())
        else:
            out[c] = _text()
    return out


class _Adapt:
    """One catalog's partition brought to the combined side: its duplicates removed, its
    rows numbered apart, its catalog named, its columns the common ones in their types."""

    def __init__(self, offset: int, name: str, dropped: np.ndarray, dtypes: dict[str, Any]) -> None:
        self.offset = offset
        self.name = name
        self.dropped = np.sort(np.asarray(dropped, dtype=np.int64))
        self.dtypes = dtypes

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        rows = frame[ZROW_COLUMN].to_numpy(dtype=np.int64)
        if len(self.dropped):
            at = np.minimum(np.searchsorted(self.dropped, rows), len(self.dropped) - 1)
            frame = frame[self.dropped[at] != rows]
        columns = {}
        for c, dtype in self.dtypes.items():
            if c == CATALOG_COLUMN:
                columns[c] = pd.array([self.name] * len(frame), dtype=dtype)
            elif c == ZROW_COLUMN:
                columns[c] = frame[c].to_numpy(dtype=np.int64) + self.offset
            elif c in frame.columns:
                columns[c] = frame[c].astype(dtype) if frame[c].dtype != dtype else frame[c]
            else:
                columns[c] = pd.array([None] * len(frame), dtype=dtype)
        return frame.iloc[:, :0].assign(**columns)  # the partition's own frame type and index


@dataclass
class CombinedSide(RedshiftSide):
    """The redshift rows of several catalogs, duplicates removed (see the module's docstring)."""

    parts: list[RedshiftSide] = field(default_factory=list, repr=False)
    #: each catalog's first row number in the combined numbering
    offsets: list[int] = field(default_factory=list)
    #: each catalog's rows (its own ``_zrow``) removed as duplicates
    dropped: list[np.ndarray] = field(default_factory=list, repr=False)
    #: the type of every column of the combined rows (and ``_zrow``)
    dtypes: dict[str, Any] = field(default_factory=dict, repr=False)
    #: each catalog, for the provenance (see :meth:`RedshiftSide.sources`)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def catalog(self, align_to: Sequence[Any] | None = None) -> lsdb.Catalog:
        combined = None
        meta = self.meta()
        for part, offset, dropped in self._matched(align_to):
            if isinstance(part, TableSide):  # its duplicates left its table already
                dropped = np.zeros(0, np.int64)
            one = part.catalog(align_to).map_partitions(_Adapt(offset, part.name, dropped, self.dtypes), meta=meta)
            if combined is None:
                combined = one
                continue
            with warnings.catch_warnings():  # the left side of a crossmatch needs no margin: none is kept
                warnings.filterwarnings("ignore", message="One side has no margin", category=UserWarning)
                combined = combined.concat(one)
        assert combined is not None, "a combined side has catalogs"
        return combined

    def _matched(self, align_to: Sequence[Any] | None) -> list[tuple[RedshiftSide, int, np.ndarray]]:
        """The catalogs with a kept redshift (inside ``align_to``, where given), with their
        offset and duplicates: a catalog with none has nothing to match."""
        zrows = self.keys[ZROW_COLUMN].to_numpy()
        if align_to is not None:
            inside = partition_index(align_to, self.keys["ra"].to_numpy(float), self.keys["dec"].to_numpy(float))
            zrows = zrows[inside >= 0]
        ends = [*self.offsets[1:], np.iinfo(np.int64).max]
        return [
            (part, offset, dropped)
            for part, offset, end, dropped in zip(self.parts, self.offsets, ends, self.dropped)
            if ((zrows >= offset) & (zrows < end)).any()
        ]

    def meta(self) -> pd.DataFrame:
        first = self.parts[0].meta()
        return _Adapt(0, "", np.zeros(0, np.int64), self.dtypes)(first.assign(**{ZROW_COLUMN: np.zeros(0, np.int64)}))

    def sources(self) -> list[dict[str, Any]]:
        return [dict(entry) for entry in self.entries]


def open_combined_side(
    config: RunConfig, registry: Registry, filters: Sequence[Filter], funnel: Funnel
) -> CombinedSide:
    """The redshift side of a run with several catalogs (``config.redshift_catalogs``)."""
    if config.output.unmatched:
        raise ConfigError(
            "output.unmatched",
            "is not available with several redshift catalogs yet; run each catalog on its own for its unmatched file",
        )
    _each_once(config, registry)
    parts: list[RedshiftSide] = []
    funnels: list[Funnel] = []
    for i, source in enumerate(config.redshift_catalogs):
        own = Funnel()
        try:
            parts.append(open_redshift_side(config, registry, filters, own, source, quality=True))
        except TSMError as exc:
            raise _in_item(exc, i, source.label or source.path or source.name or str(source.id)) from exc
        funnels.append(own)
    names = [p.name for p in parts]
    for i, part in enumerate(parts):
        if names.index(part.name) != i:
            raise ConfigError(
                f"redshift_catalog.{i}.label",
                f"catalogs {names.index(part.name)} and {i} are both called {part.name!r}; give one a label",
            )
        if CATALOG_COLUMN in part.columns:
            raise ConfigError(
                f"redshift_catalog.{i}.keep_columns",
                f"{part.name!r} has a column {CATALOG_COLUMN!r}, the name of the column that says each row's "
                "catalog in a run with several: leave it out of keep_columns",
            )
    offsets = list(np.cumsum([0] + [int(p.summary["rows"]) for p in parts[:-1]]))
    keys = _combined_keys(parts, offsets)
    gone = duplicate_mask(
        keys["ra"].to_numpy(),
        keys["dec"].to_numpy(),
        keys["z_flag"].to_numpy(),
        keys["z_err"].to_numpy(),
        keys[CATALOG_COLUMN].cat.codes.to_numpy(),
        config.redshift_duplicates_arcsec,
    )
    index = keys[CATALOG_COLUMN].cat.codes.to_numpy()
    zrows = keys[ZROW_COLUMN].to_numpy()
    dropped = [zrows[gone & (index == i)] - offsets[i] for i in range(len(parts))]
    _merge_funnels(funnel, funnels, names)
    removed = keys[gone]
    step = funnel.removed(
        "duplicates",
        f"duplicates within {config.redshift_duplicates_arcsec:g} arcsec of a better redshift of another catalog",
        removed["survey"] if "survey" in removed.columns else None,
        int(gone.sum()),
    )
    step.by_catalog = {name: len(d) for name, d in zip(names, dropped)}
    kept = keys[~gone].drop(columns=[c for c in (*QUALITY_COLUMNS, CATALOG_COLUMN) if c in keys.columns])
    del keys
    entries = [
        part.sources()[0] | {"duplicates": len(d), "kept": len(part) - len(d)} for part, d in zip(parts, dropped)
    ]
    for part, d in zip(parts, dropped):
        part.keys = part.keys.iloc[:0]  # only the combined keys stay
        if isinstance(part, TableSide):  # an in-memory table loses its duplicates now
            part.frame = part.frame[~np.isin(part.frame[ZROW_COLUMN].to_numpy(), d)].reset_index(drop=True)
    log.info("%d redshift catalogs: %d redshifts, %d removed as duplicates", len(parts), len(gone), int(gone.sum()))
    return _side(parts, offsets, dropped, kept.reset_index(drop=True), entries)


def _combined_keys(parts: Sequence[RedshiftSide], offsets: Sequence[int]) -> pd.DataFrame:
    """The keys of every catalog, numbered apart, with ``catalog`` (a category in list
    order), ``survey`` (where any catalog has one) and the quality columns (NaN where none)."""
    from pandas.api.types import union_categoricals

    columns: dict[str, Any] = {}
    n = [len(p.keys) for p in parts]
    columns[ZROW_COLUMN] = np.concatenate([p.keys[ZROW_COLUMN].to_numpy(np.int64) + o for p, o in zip(parts, offsets)])
    for c in ("ra", "dec", *QUALITY_COLUMNS):
        columns[c] = np.concatenate(
            [p.keys[c].to_numpy(np.float64) if c in p.keys else np.full(k, np.nan) for p, k in zip(parts, n)]
        )
    codes = np.repeat(np.arange(len(parts), dtype=np.int16), n)
    columns[CATALOG_COLUMN] = pd.Categorical.from_codes(codes, categories=[p.name for p in parts])
    if any("survey" in p.keys for p in parts):
        columns["survey"] = union_categoricals([_text_category(p.keys.get("survey"), k) for p, k in zip(parts, n)])
    return pd.DataFrame(columns)


def _text_category(values: pd.Series | None, n: int) -> pd.Categorical:
    """``values`` as a category of plain text (whatever their type), or ``n`` missing values."""
    if values is None:
        return pd.Categorical.from_codes(np.full(n, -1), categories=pd.Index([], dtype=object))
    values = pd.Categorical(values)
    return pd.Categorical.from_codes(values.codes, categories=pd.Index(values.categories.astype(str), dtype=object))


def _merge_funnels(funnel: Funnel, funnels: Sequence[Funnel], names: Sequence[str]) -> None:
    """Each catalog's first steps summed into ``funnel`` by key, with their counts per
    catalog: the rows read, then the bad rows, then the filters (each group in the order its
    steps first appear). Where some catalogs have surveys, the rows of one without count as
    ``(none)``."""
    merged: dict[str, FunnelStep] = {}
    any_survey = any(s.by_survey for own in funnels for s in own.steps)
    for own, name in zip(funnels, names):
        for s in own.steps:
            step = merged.setdefault(s.key, FunnelStep(s.key, s.label, s.kind, 0, s.unit))
            step.count += s.count
            step.by_catalog[name] = s.count
            per = s.by_survey or ({NO_SURVEY: s.count} if any_survey and s.count else {})
            for survey, n in per.items():
                step.by_survey[survey] = step.by_survey.get(survey, 0) + n

    def phase(step: FunnelStep) -> int:
        return 0 if step.kind == "total" else 1 if step.key.startswith("bad_rows:") else 2

    for step in sorted(merged.values(), key=phase):  # a stable sort: each group keeps its order
        step.by_survey = dict(sorted(step.by_survey.items()))
        if step.kind == "total":
            funnel.total_counts(step.key, step.label, step.count, step.by_survey).by_catalog = step.by_catalog
        else:
            funnel.removed_counts(step.key, step.label, step.count, step.by_survey).by_catalog = step.by_catalog


def _in_item(exc: TSMError, i: int, what: str) -> TSMError:
    """``exc`` (raised opening item ``i`` of ``redshift_catalog``, ``what``) keyed to the item:
    ``redshift_catalog.columns`` becomes ``redshift_catalog.1.columns``; another key (a
    redshift filter) keeps its key and names the catalog."""
    if exc.key.startswith("redshift_catalog"):
        key = exc.key.replace("redshift_catalog", f"redshift_catalog.{i}", 1)
        if isinstance(exc, ConfigError):
            return ConfigError(key, exc.message)
        exc.key = key
        return exc
    if isinstance(exc, ConfigError):
        return ConfigError(exc.key, f"{exc.message} (in redshift_catalog.{i}, {what})")
    return exc


def _side(
    parts: list[RedshiftSide],
    offsets: list[int],
    dropped: list[np.ndarray],
    keys: pd.DataFrame,
    entries: list[dict[str, Any]],
) -> CombinedSide:
    """The :class:`CombinedSide` of the opened catalogs: common columns, types, notes."""
    canonical = [c for c in CANONICAL_REDSHIFT_COLUMNS if any(c in p.columns for p in parts)]
    extra = [c for p in parts for c in p.columns if c not in CANONICAL_REDSHIFT_COLUMNS]
    columns = list(dict.fromkeys([*canonical, CATALOG_COLUMN, *extra]))
    metas = [p.meta() for p in parts]
    dtypes = common_dtypes(metas, [c for c in columns if c != CATALOG_COLUMN])
    dtypes = {c: dtypes.get(c, _text()) for c in columns} | {ZROW_COLUMN: np.dtype(np.int64)}
    lengths: dict[str, int] = {CATALOG_COLUMN: max(len(p.name.encode()) for p in parts)}
    for p, meta in zip(parts, metas):
        for c in p.columns:
            if pd.api.types.is_string_dtype(dtypes[c]) and c in meta and c not in p.string_lengths:
                lengths[c] = max(lengths.get(c, 1), NUMBER_AS_TEXT)  # a number, written as text
            elif c in p.string_lengths:
                lengths[c] = max(lengths.get(c, 1), p.string_lengths[c])
    info: dict[str, Any] = {CATALOG_COLUMN: CATALOG_INFO}
    for p in reversed(parts):
        info |= {c: note for c, note in p.info.items() if c in columns}
    summaries = [p.summary for p in parts]
    dropped_rows: dict[str, int] = {}
    for s in summaries:
        for reason, n in (s.get("rows_dropped") or {}).items():
            dropped_rows[reason] = dropped_rows.get(reason, 0) + int(n)
    summary = {
        "convention": "+".join(dict.fromkeys(str(s.get("convention")) for s in summaries)),
        "convention_detected": all(bool(s.get("convention_detected")) for s in summaries),
        "rows_read": sum(int(s.get("rows_read") or 0) for s in summaries),
        "rows_dropped": dropped_rows,
        "rows": sum(int(s.get("rows") or 0) for s in summaries),
        "duplicates": int(sum(len(d) for d in dropped)),
    }
    return CombinedSide(
        keys=keys,
        columns=columns,
        label=f"{len(parts)} redshift catalogs: " + "; ".join(p.label for p in parts),
        summary=summary,
        info=info,
        string_lengths=lengths,
        name="+".join(p.name for p in parts),
        parts=parts,
        offsets=[int(o) for o in offsets],
        dropped=dropped,
        dtypes=dtypes,
        entries=entries,
    )


def _each_once(config: RunConfig, registry: Registry) -> None:
    """Refuse a list that names one catalog twice (the same file, or the same registered
    catalog by name or id), before any of them is read: it would only be its own duplicate."""
    seen: dict[tuple[str, str], int] = {}
    for i, source in enumerate(config.redshift_catalogs):
        key = source.name or source.id
        if source.path:
            identity = ("file", str(Path(source.path).expanduser().resolve()))
        elif key is not None:
            try:
                identity = ("registered", str(registry.redshift_catalog(key).id))
            except TSMError:
                continue  # unknown: opening it says so, naming its item
        else:
            continue
        if identity in seen:
            raise ConfigError(
                f"redshift_catalog.{i}",
                f"is the same catalog as redshift_catalog.{seen[identity]} "
                f"({source.path or source.name or source.id}); list each catalog once",
            )
        seen[identity] = i
