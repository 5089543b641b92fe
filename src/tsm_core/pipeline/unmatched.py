"""The redshifts a run lost (``output.unmatched``): one row per redshift of the catalog that is
not in the training set, with the step that removed it, in a second file beside the product.

Each row has the run's redshift columns (canonical ones first), ``row`` (its 0-based row in
the catalog as read, bad rows counted; null where unknown), ``reason`` (one of
:data:`REASONS`) and ``detail`` (which bad-row check, which filter, which rule).

Which redshifts were lost is known from their row numbers (``_zrow``), which the run holds
anyway: the keys left after the filters, their object partitions, the rows matched and the
rows written. The file is then written in one more pass over the normalized rows
(:meth:`~tsm_core.redshifts.side.RedshiftSide.scan`: a file's table in memory, a registered
catalog partition by partition), each batch cut to its lost rows before it is kept; only a
byte per redshift is held. A filtered row gets the first filter that removes it, evaluated
again on that row alone. LSDB's left crossmatch (``how="left"``) would only find the
``no_object_within_radius`` rows, and would push them through the photometry and the
selection: the row numbers already tell.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tsm_core import plugins
from tsm_core.columns import ZROW_COLUMN
from tsm_core.errors import ConfigError
from tsm_core.pipeline.timing import stage
from tsm_core.plugins.records import ColumnInfo, OutputMetadata
from tsm_core.products.output import open_sinks, output_file_name
from tsm_core.redshifts.table import BAD_DETAIL_COLUMN, BAD_ROW_COLUMN, file_rows, is_text
from tsm_core.science import layout

if TYPE_CHECKING:
    from tsm_core.pipeline.plan import Plan
    from tsm_core.pipeline.select import Selection
    from tsm_core.pipeline.write import Written
    from tsm_core.products.cancel import CancelToken

ROW_COLUMN, REASON_COLUMN, DETAIL_COLUMN = BAD_ROW_COLUMN, "reason", BAD_DETAIL_COLUMN
#: the reasons, in the order of the run's steps, with what ``detail`` holds for each
REASONS: dict[str, str] = {
    "bad_row": "dropped when the catalog was read; detail: what was wrong (e.g. NaN or non-numeric ra/dec)",
    "redshift_filter": "removed by a redshift filter; detail: the first filter that removes it, as written",
    "outside_footprint": "in no partition of the object catalog (no object could be there); detail: the release",
    "no_object_within_radius": "no object (after the object filters and release cuts) within the radius; "
    "detail: the radius",
    "match_filter": "each of its matches removed by a match filter (filters.match); detail: the first "
    "filter (in the order written) that removed one of them",
    "unique_galaxies": "each of its matches removed by the unique-galaxy rule (or a match filter); detail: the rule",
}
#: the file's name ends ``<product file stem>_unmatched.<ext>``
SUFFIX = "_unmatched"
#: the part of a run (``RunResult.to_pandas(part=...)``, ``tsm_core.read(..., part=...)``) that is this file
UNMATCHED = "unmatched"
#: formats whose unmatched file is written in another format: a HATS catalog cannot hold
#: rows without coordinates (bad rows), so the file beside a ``.hats`` product is Parquet
OTHER_FORMAT = {"hats": "parquet"}

# what became of each normalized row (by ``_zrow``): a label's index (the redshift filters'
# labels start at _FILTERED), or _UNRESOLVED for a row a redshift filter removed (which one
# is found when the row is read back)
_KEPT, _OUTSIDE, _NO_MATCH, _UNIQUE, _FILTERED = range(5)
_UNRESOLVED = -1


def unmatched_format(fmt: str) -> str:
    """The format of the unmatched file of a product in format ``fmt``."""
    return OTHER_FORMAT.get(fmt, fmt)


def outcomes(
    zrows: np.ndarray,
    covered: np.ndarray,
    matched_zrows: np.ndarray,
    written_zrows: np.ndarray,
    match_failed: np.ndarray | None = None,
    match_label: int = _FILTERED,  # the label of the first match filter
) -> np.ndarray:
    """What became of every normalized row below ``max(zrows) + 1``: kept, outside, no
    match, removed by the unique-galaxy rule, else filtered (a row not among ``zrows``, the
    rows left after the filters, whose object partition ``covered`` says they have).
    With ``match_failed`` (per match, the first match filter it failed, -1 if none), a row
    all of whose matches failed a match filter is ``match_label + i``, ``i`` the first such
    filter that removed one of them."""
    size = int(zrows.max()) + 1 if len(zrows) else 0
    matched_zrows = np.asarray(matched_zrows, dtype=np.int64)
    matched = np.zeros(size, dtype=bool)
    matched[matched_zrows] = True
    written = np.zeros(size, dtype=bool)
    written[np.asarray(written_zrows, dtype=np.int64)] = True
    codes = np.full(size, _UNRESOLVED, dtype=np.int16)
    codes[zrows] = np.where(
        written[zrows],
        _KEPT,
        np.where(matched[zrows], _UNIQUE, np.where(covered, _NO_MATCH, _OUTSIDE)),
    )
    if match_failed is not None and len(matched_zrows):
        passed = np.zeros(size, dtype=bool)
        passed[matched_zrows[match_failed < 0]] = True
        first = np.full(size, np.iinfo(np.int16).max, dtype=np.int16)
        np.minimum.at(first, matched_zrows[match_failed >= 0], match_failed[match_failed >= 0])
        by_filter = matched & ~written & ~passed
        codes[by_filter] = match_label + first[by_filter]
    return codes


@dataclass
class LostRows:
    """The lost redshifts of a run, as Arrow tables of one schema (:meth:`tables`)."""

    plan: Plan
    codes: np.ndarray
    #: (reason, detail) of each label; a row's label indexes it
    labels: list[tuple[str, str]] = field(default_factory=list)
    #: rows per label, counted as they are written
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: the rows dropped as bad (None: unknown, for a catalog registered before they were kept)
    bad: pd.DataFrame | None = None

    @classmethod
    def of(
        cls,
        plan: Plan,
        matched_zrows: np.ndarray,
        written_zrows: np.ndarray,
        match_failed: np.ndarray | None = None,
    ) -> LostRows:
        cfg = plan.config
        zrows = plan.redshifts.keys[ZROW_COLUMN].to_numpy(dtype=np.int64)
        labels = [
            ("", ""),
            ("outside_footprint", plan.release.name),
            ("no_object_within_radius", f"{cfg.crossmatch.radius_arcsec:g} arcsec"),
            ("unique_galaxies", cfg.unique_galaxies),
            *(("redshift_filter", one.expression) for one in plan.redshifts.filters),
        ]
        match_label = len(labels)
        labels += [("match_filter", expression) for expression in cfg.filters.match]
        codes = outcomes(zrows, plan.redshift_partitions >= 0, matched_zrows, written_zrows, match_failed, match_label)
        bad = plan.redshifts.dropped_rows()
        if bad is not None and len(bad):
            labels += [("bad_row", str(what)) for what in pd.unique(bad[DETAIL_COLUMN])]
        return cls(plan, codes, labels, np.zeros(len(labels), np.int64), bad)

    @property
    def columns(self) -> list[str]:
        return list(self.plan.redshifts.columns)

    def schema(self) -> pa.Schema:
        """The redshift columns as the run reads them, then ``row``, ``reason``, ``detail``."""
        check_columns(self.columns)
        meta = self.plan.redshifts.meta()
        kept = pa.Schema.from_pandas(meta[self.columns], preserve_index=False).remove_metadata()
        return pa.schema(
            [
                *kept,
                pa.field(ROW_COLUMN, pa.int64()),
                pa.field(REASON_COLUMN, pa.string()),
                pa.field(DETAIL_COLUMN, pa.string()),
            ]
        )

    def column_info(self) -> dict[str, ColumnInfo]:
        """Units and descriptions (the run's for the redshift columns), text widths over every row."""
        info = {c: i for c, i in self.plan.photometry.column_info().items() if c in self.columns}
        lengths = dict(self.plan.redshifts.all_string_lengths())
        bad = self.bad if self.bad is not None else pd.DataFrame()
        for name in [c for c in self.columns if c in bad.columns and (bad[c].dtype == object or is_text(bad[c]))]:
            longest = bad[name].dropna().astype(str).map(lambda v: len(v.encode())).max()
            lengths[name] = max(lengths.get(name, 1), int(0 if pd.isna(longest) else longest), 1)
        for name, longest in lengths.items():
            base = info.get(name, ColumnInfo())
            info[name] = ColumnInfo(base.unit, base.description, base.quantity, base.band, longest)
        widest = lambda at: max(len(label[at].encode()) for label in self.labels) or 1  # noqa: E731
        info[ROW_COLUMN] = ColumnInfo("", "0-based row of the redshift catalog as read (bad rows counted)")
        info[REASON_COLUMN] = ColumnInfo(
            "", f"why it is not in the training set: {', '.join(REASONS)}", max_length=widest(0)
        )
        info[DETAIL_COLUMN] = ColumnInfo("", "which check, filter or rule removed it", max_length=widest(1))
        return info

    def _table(self, frame: pd.DataFrame, rows: Any, labels: np.ndarray, schema: pa.Schema) -> pa.Table:
        """One batch of lost rows as the file's Arrow table."""
        arrays = [
            _as_type(frame[f.name] if f.name in frame.columns else None, len(frame), f.type)
            for f in list(schema)[: len(self.columns)]
        ]
        arrays.append(pa.array(rows, type=pa.int64()) if rows is not None else pa.nulls(len(frame), pa.int64()))
        indices = pa.array(labels.astype(np.int32))
        for at in (0, 1):
            names = pa.array([label[at] for label in self.labels], type=pa.string())
            arrays.append(pa.DictionaryArray.from_arrays(indices, names).dictionary_decode())
        self.counts += np.bincount(labels, minlength=len(self.labels))
        return pa.Table.from_arrays(arrays, schema=schema)

    def tables(self, schema: pa.Schema) -> Iterator[pa.Table]:
        """The bad rows, then every other lost row, a batch at a time, in the order the catalog is read
        (a file's rows in order; a registered catalog's partition by partition)."""
        side, bad = self.plan.redshifts, self.bad
        if bad is not None and len(bad):
            where = {label: i for i, label in enumerate(self.labels)}
            labels = np.array([where["bad_row", str(d)] for d in bad[DETAIL_COLUMN]], dtype=np.int64)
            yield self._table(bad, bad[ROW_COLUMN].to_numpy(dtype=np.int64), labels, schema)
        filters = side.filters
        read = list(dict.fromkeys([*self.columns, *(c for f in filters for c in f.columns)]))
        size = len(self.codes)
        for frame in side.scan(read):
            zrows = frame[ZROW_COLUMN].to_numpy(dtype=np.int64)
            codes = np.full(len(zrows), _UNRESOLVED, dtype=np.int64)
            inside = zrows < size
            codes[inside] = self.codes[zrows[inside]]
            lost = codes != _KEPT
            if not lost.any():
                continue
            frame, zrows, labels = frame[lost], zrows[lost], codes[lost]
            filtered = np.flatnonzero(labels == _UNRESOLVED)
            if len(filtered):
                labels[filtered] = _first_filter(frame.iloc[filtered], filters, zrows[filtered]) + _FILTERED
            yield self._table(frame, file_rows(zrows, bad), labels, schema)

    def summary(self, name: str, fmt: str) -> dict[str, Any]:
        """For the provenance: the file, its format, its rows per reason and per detail, and
        (``not_listed``) the bad rows counted but not known row by row (a catalog registered
        before they were kept)."""
        by_reason: dict[str, int] = {}
        details = []
        for (reason, detail), n in zip(self.labels, self.counts.tolist()):
            if reason and n:
                by_reason[reason] = by_reason.get(reason, 0) + n
                details.append({"reason": reason, "detail": detail, "rows": n})
        out = {
            "file": name,
            "format": fmt,
            "rows": int(self.counts.sum()),
            "by_reason": by_reason,
            "by_detail": details,
        }
        if self.bad is None:
            out["not_listed"] = {"bad_row": sum((self.plan.redshift_summary.get("rows_dropped") or {}).values())}
        return out


def _first_filter(frame: pd.DataFrame, filters: Any, zrows: np.ndarray) -> np.ndarray:
    """Index of the first of ``filters`` that removes each row of ``frame`` (applied in turn, as the run does)."""
    first = np.full(len(frame), -1, dtype=np.int64)
    left = np.arange(len(frame))
    for i, one in enumerate(filters):
        keep = np.asarray(one.mask(frame.iloc[left]), dtype=bool)
        first[left[~keep]] = i
        left = left[keep]
        if not len(left):
            break
    if len(left):
        raise RuntimeError(f"redshift rows {zrows[left][:5].tolist()} were left out of the run but pass every filter")
    return first


def _as_type(values: pd.Series | None, n: int, typ: pa.DataType) -> pa.Array:
    """``values`` as an Arrow array of ``typ``; nulls where the column is missing (a bad row's
    derived columns) or its values do not convert (text among a bad row's numbers)."""
    if values is None:
        return pa.nulls(n, typ)
    try:
        return pa.array(values, type=typ, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError):
        try:
            return pa.array(values, from_pandas=True).cast(typ)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError):
            return pa.nulls(n, typ)


def check_columns(columns: list[str]) -> None:
    """Refuse redshift columns named like the unmatched file's own (checked when the run is planned)."""
    clash = [c for c in (ROW_COLUMN, REASON_COLUMN, DETAIL_COLUMN) if c in columns]
    if clash:
        raise ConfigError(
            "redshift_catalog.keep_columns",
            f"redshift column(s) {', '.join(clash)} have the name of a column of the unmatched file "
            f"({ROW_COLUMN}, {REASON_COLUMN}, {DETAIL_COLUMN}); keep fewer columns or set output.unmatched: false",
        )


def unmatched_path(plan: Plan, product_id: int) -> Path | None:
    """Where the unmatched file of the run goes (None without ``output.unmatched``):
    ``<slug of name>_<product id>_unmatched.<ext>`` in the output directory."""
    cfg = plan.config
    if not cfg.output.unmatched:
        return None
    writer = plugins.writer(unmatched_format(cfg.output.format))
    name = output_file_name(cfg.name, product_id, layout.file_extension(writer.extension, cfg.output))
    stem, extension = name.rsplit(".", 1)
    return plan.output_dir / f"{stem}{SUFFIX}.{extension}"


def write_unmatched(
    plan: Plan,
    selection: Selection,
    out: Written,
    path: Path,
    final: Path,
    metadata: OutputMetadata,
    guard: Any,
    cancel: CancelToken,
) -> dict[str, Any]:
    """Write the lost redshifts to ``path`` (staged; ``final`` its name once in place) with the
    product's writer (:data:`OTHER_FORMAT` aside); their counts go into ``metadata.provenance``
    (``unmatched``) before the file is closed, so that the file carries them too."""
    cfg = plan.config
    written = out.all_zrows()
    matched = written if selection.matched_zrows is None else selection.matched_zrows
    lost = LostRows.of(plan, matched, written, selection.match_failed)
    fmt = unmatched_format(cfg.output.format)
    schema = lost.schema()
    own = OutputMetadata(
        cfg.name,
        f"redshifts not in training set {metadata.product_id}, with the reason",
        metadata.product_id,
        lost.column_info(),
        metadata.provenance,  # the run's, shared: complete when the file is closed
    )
    options = cfg.output.model_copy(update={"layout": "default"})
    with (
        stage("unmatched redshifts"),
        open_sinks(plugins.writer(fmt), {None: path}, schema, own, options, guard) as sink,
    ):
        for table in lost.tables(schema):
            cancel.check()
            with guard:
                sink[None].write(table)
        metadata.provenance["unmatched"] = summary = lost.summary(final.name, fmt)
    return summary
