"""Normalize and validate a redshift catalog as read (:mod:`tsm_core.redshifts.readers`).

A survey *convention* (``canonical``, ``crc``, ``desi``, ... from the
``tsm_redshift_conventions`` hook; configured, or detected from the columns) maps the
survey's column names to the canonical names ``id, ra, dec, z, z_err, z_flag, survey``
and derives the homogenized ``z_flag`` (0-4, 6 star); ``redshift_catalog.columns``
overrides its mapping. Only ``ra``, ``dec`` and ``z`` are required. A catalog without an
``id`` gets one: the 0-based row number in the file.

Coordinates are degrees; ``units: rad`` converts radians, and a catalog whose every
coordinate fits radians (:func:`looks_like_radians`) is refused unless ``units`` is given.
Rows with NaN or out-of-range coordinates, a non-finite ``z`` or ``z < -0.01`` are
dropped and counted per reason (``bad_rows: drop``), or refused (``bad_rows: fail``).
Every other column of the file is kept in the normalized table (under its own name, or
``<name>_raw`` where it would clash with a canonical name), so filters can use it and a
training set can keep it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from tsm_core import plugins
from tsm_core.config import CANONICAL_REDSHIFT_COLUMNS, REQUIRED_REDSHIFT_COLUMNS
from tsm_core.errors import BadRowsError, CatalogError, ConfigError
from tsm_core.plugins.records import Z_FLAG_SCALE, ColumnInfo, RedshiftConvention
from tsm_core.redshifts.table import BAD_DETAIL_COLUMN, BAD_ROW_COLUMN, RedshiftTable, settle_dtypes

log = logging.getLogger(__name__)

BAD_ROW_POLICIES = ("drop", "fail")
#: redshifts below this are refused as unphysical (blueshifted stars reach about -0.005)
MIN_Z = -0.01
#: canonical columns that must hold numbers
NUMERIC_COLUMNS = ("ra", "dec", "z", "z_err", "z_flag")
#: the survey's own quality flag, kept beside the homogenized ``z_flag``
RAW_FLAG_COLUMN = "z_flag_raw"
#: units of ``redshift_catalog.units``
COORDINATE_UNITS = ("deg", "rad")
#: a catalog of at least this many rows, all within |ra| <= 2 pi and |dec| <= pi/2, looks like radians
RADIAN_ROWS = 20


def looks_like_radians(ra: np.ndarray, dec: np.ndarray) -> bool:
    """True where at least :data:`RADIAN_ROWS` finite coordinates all fit radians
    (|ra| <= 2 pi, |dec| <= pi/2): in degrees that is a 6 x 3 degree box at the origin."""
    ok = np.isfinite(ra) & np.isfinite(dec)
    return bool(
        ok.sum() >= RADIAN_ROWS and (np.abs(ra[ok]) <= 2 * np.pi).all() and (np.abs(dec[ok]) <= np.pi / 2).all()
    )


def _in_degrees(canonical: pd.DataFrame, units: str | None, source: str) -> None:
    """Convert ``ra``/``dec`` of ``units: rad`` to degrees (ra wrapped to [0, 360)), in place;
    refuse coordinates that look like radians when no units were given."""
    if units not in (None, *COORDINATE_UNITS):
        raise ConfigError("redshift_catalog.units", f"unknown units {units!r}; valid: {', '.join(COORDINATE_UNITS)}")
    ra, dec = canonical["ra"].to_numpy(), canonical["dec"].to_numpy()
    if units == "rad":
        canonical["ra"] = np.degrees(ra) % 360.0
        canonical["dec"] = np.degrees(dec)
    elif units is None and looks_like_radians(ra, dec):
        raise CatalogError(
            "redshift_catalog.units",
            f"{source}: every ra is within +-2 pi and every dec within +-pi/2: these look like radians; "
            "set redshift_catalog.units: rad to convert them (or deg if they are degrees; "
            "tsm redshift register --units rad|deg)",
        )


def _check_ids_fit(ids: pd.Series, column: str, source: str) -> None:
    """Refuse unsigned 64-bit ids beyond the signed range that training sets store."""
    if ids.dtype.kind == "u" and ids.dtype.itemsize == 8 and len(ids) and int(ids.max()) >= 2**63:
        row = int(np.argmax(ids.to_numpy() >= np.uint64(2**63)))
        raise CatalogError(
            "redshift_catalog.columns.id",
            f"{source}: column {column!r} (id) holds {int(ids.iloc[row])} (row {row}), beyond 2^63 - 1, the largest id a training set "
            "stores; map another column to id, or leave id unmapped to number the rows",
        )


def choose_convention(present: Sequence[str], name: str | None) -> tuple[RedshiftConvention, bool]:
    """The configured convention, else the one recognised from the columns, else ``canonical``.

    Returns it and whether it was detected. Two conventions recognising the same
    columns are refused: set ``redshift_catalog.convention``.
    """
    if name:
        return plugins.redshift_convention(name), False
    conventions = plugins.redshift_conventions()
    found = [c for c in conventions.values() if c.detected_in(present)]
    if len(found) > 1:
        raise ConfigError(
            "redshift_catalog.convention",
            f"the columns fit conventions {', '.join(sorted(repr(c.name) for c in found))}; choose one",
        )
    if found:
        return found[0], True
    return conventions["canonical"], False


def column_mapping(
    present: list[str], columns: Mapping[str, str], source: str, convention: RedshiftConvention | None = None
) -> dict[str, str]:
    """Map file column -> canonical name; fail naming missing columns and those present.

    ``columns`` (the user's) overrides the convention's mapping; a canonical name in
    neither is looked for under its own name.
    """
    defaults = dict(convention.columns) if convention else {}
    mapping: dict[str, str] = {}
    for canonical in CANONICAL_REDSHIFT_COLUMNS:
        own = columns.get(canonical) or defaults.get(canonical, canonical)
        if own in present and own not in mapping:
            mapping[own] = canonical
        elif own in mapping and canonical in columns:
            raise CatalogError(
                f"redshift_catalog.columns.{canonical}",
                f"{source}: column {own!r} is mapped to both {mapping[own]!r} and {canonical!r}; "
                f"map each canonical name to a column of its own",
            )
        elif canonical in columns:
            raise CatalogError(
                f"redshift_catalog.columns.{canonical}",
                f"{source}: column {own!r} (mapped to {canonical!r}) not found; columns present: {', '.join(present)}",
            )
    missing = [c for c in REQUIRED_REDSHIFT_COLUMNS if c not in mapping.values()]
    if missing:
        raise CatalogError(
            f"redshift_catalog.columns.{missing[0]}",
            f"{source}: missing required column(s) {', '.join(missing)}; map them with "
            f"columns: {{{', '.join(f'{m}: <column>' for m in missing)}}}; columns present: "
            f"{', '.join(present)}",
        )
    return mapping


def _check_numeric(frame: pd.DataFrame, mapping: Mapping[str, str], skip: Sequence[str], source: str) -> None:
    """Refuse a text column mapped to a numeric canonical one, naming it and a value."""
    for own, canonical in mapping.items():
        if canonical not in NUMERIC_COLUMNS or canonical in skip:
            continue
        values = frame[own]
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            continue
        converted = pd.to_numeric(values, errors="coerce")
        text = converted.isna() & values.notna() & (values.astype("string").str.strip() != "")
        if text.any():
            row = int(np.flatnonzero(text.to_numpy(dtype=bool, na_value=False))[0])
            raise CatalogError(
                f"redshift_catalog.columns.{canonical}",
                f"{source}: column {own!r} (mapped to {canonical!r}) holds text, not numbers "
                f"(row {row}: {str(values.iloc[row])!r})",
            )


def bad_row_reasons(frame: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """(reason, mask) of each kind of bad row; a row is counted under its first reason."""
    ra = pd.to_numeric(frame["ra"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    dec = pd.to_numeric(frame["dec"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    z = pd.to_numeric(frame["z"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    taken = np.zeros(len(frame), dtype=bool)
    reasons = []
    with np.errstate(invalid="ignore"):
        checks = [
            ("NaN or non-numeric ra/dec", ~(np.isfinite(ra) & np.isfinite(dec))),
            ("ra outside [0, 360] deg", (ra < 0) | (ra > 360)),
            ("dec outside [-90, 90] deg", (dec < -90) | (dec > 90)),
            ("non-finite z", ~np.isfinite(z)),
            (f"z < {MIN_Z}", z < MIN_Z),
        ]
    for what, bad in checks:
        bad = bad & ~taken
        taken |= bad
        reasons.append((what, bad))
    return reasons


def validate_rows(frame: pd.DataFrame, source: str) -> None:
    """Refuse bad coordinates and redshifts, naming the rows of the first reason found."""
    for what, bad in bad_row_reasons(frame):
        if bad.any():
            raise BadRowsError("redshift_catalog", what, np.flatnonzero(bad).tolist(), source)


def _check_unique_ids(ids: pd.Series, file_rows: np.ndarray, source: str) -> None:
    """Refuse repeated ids, naming the first values and their 0-based rows in the file."""
    dup = ids.duplicated(keep=False).to_numpy()
    if not dup.any():
        return
    shown = []
    repeated = pd.Series(file_rows[dup], index=ids[dup].to_numpy())
    for value, rows in repeated.groupby(level=0, sort=False):
        shown.append(f"{value!r} (rows {', '.join(str(r) for r in rows.to_numpy()[:3])})")
        if len(shown) == 3:
            break
    n = int(ids[dup].nunique(dropna=False))
    raise CatalogError(
        "redshift_catalog.columns.id",
        f"{source}: {n} id value(s) occur more than once, e.g. {'; '.join(shown)}; ids must be unique "
        "(map another column to id, or leave id unmapped to number the rows)",
    )


def _scalar_columns(frame: pd.DataFrame) -> list[str]:
    """Columns of one value per row (array-valued columns such as DESI's COEFF are left out)."""
    keep = []
    for col in frame.columns:
        if frame[col].dtype == object:
            first = frame[col].dropna()
            if len(first) and isinstance(first.iloc[0], (list, tuple, dict, np.ndarray)):
                continue
        keep.append(col)
    return keep


def homogenized_by(conv: RedshiftConvention, mapping: Mapping[str, str]) -> bool:
    """True where ``conv`` derives ``z_flag`` (the file's flag is then ``z_flag_raw``)."""
    return conv.homogenize is not None and "z_flag" in mapping.values()


def _bad_rows(
    canonical: pd.DataFrame, dropped: np.ndarray, reasons: list[tuple[str, np.ndarray]], homogenized: bool
) -> pd.DataFrame:
    """The dropped rows' canonical columns as read, their 0-based row in the file and their
    reason (for ``output.unmatched``); a homogenized flag is not derived for them."""
    rows = canonical[dropped]
    if homogenized and "z_flag" in rows.columns:
        rows = rows.rename(columns={"z_flag": RAW_FLAG_COLUMN})
    elif "z_flag" in rows.columns:
        rows = rows.assign(z_flag=pd.to_numeric(rows["z_flag"], errors="coerce"))
    if "survey" in rows.columns:
        rows = rows.assign(survey=rows["survey"].astype("string").str.strip())
    detail = np.full(len(canonical), "", dtype=object)
    for what, mask in reasons:  # each row under its first reason, as counted
        detail[mask] = what
    return rows.assign(
        **{BAD_ROW_COLUMN: np.flatnonzero(dropped).astype(np.int64), BAD_DETAIL_COLUMN: detail[dropped]}
    ).reset_index(drop=True)


def normalize_table(
    table: pd.DataFrame,
    source: str,
    columns: Mapping[str, str] | None = None,
    convention: str | None = None,
    bad_rows: str = "drop",
    info: Mapping[str, ColumnInfo] | None = None,
    *,
    units: str | None = None,
) -> RedshiftTable:
    """Apply a convention to a table as read: map, check, convert ``units`` (see
    :func:`_in_degrees`), drop or refuse bad rows, derive the homogenized ``z_flag``,
    keep the other columns."""
    if bad_rows not in BAD_ROW_POLICIES:
        raise ConfigError(
            "redshift_catalog.bad_rows", f"unknown policy {bad_rows!r}; valid: {', '.join(BAD_ROW_POLICIES)}"
        )
    columns = dict(columns or {})
    table = table.reset_index(drop=True)
    table.columns = [str(c) for c in table.columns]
    present = list(table.columns)
    twice = sorted({c for c in present if present.count(c) > 1})
    if twice:
        raise CatalogError(
            "redshift_catalog", f"{source}: column name(s) {', '.join(map(repr, twice))} occur more than once"
        )
    conv, detected = choose_convention(present, convention)
    mapping = column_mapping(present, columns, source, conv)
    if not len(table):
        raise CatalogError("redshift_catalog", f"{source}: the redshift catalog has no rows")
    homogenized = homogenized_by(conv, mapping)
    _check_numeric(table, mapping, ("z_flag",) if homogenized else (), source)

    canonical = pd.DataFrame({canon: table[own] for own, canon in mapping.items()})
    for col in ("ra", "dec", "z", "z_err"):
        if col in canonical.columns and canonical[col].dtype != np.float64:  # (a float64 column is kept, not copied)
            canonical[col] = pd.to_numeric(canonical[col], errors="coerce").astype("float64")
    if "id" not in canonical.columns:
        canonical["id"] = np.arange(len(canonical), dtype=np.int64)
    _check_ids_fit(canonical["id"], next((own for own, c in mapping.items() if c == "id"), "id"), source)
    _in_degrees(canonical, units, source)

    dropped: dict[str, int] = {}
    keep = np.ones(len(table), dtype=bool)
    reasons = bad_row_reasons(canonical)
    for what, bad in reasons:
        if not bad.any():
            continue
        if bad_rows == "fail":
            raise BadRowsError("redshift_catalog", what, np.flatnonzero(bad).tolist(), source)
        dropped[what] = int(bad.sum())
        keep &= ~bad
    if dropped:
        log.warning(
            "%s: dropped %d bad row(s): %s",
            source,
            int((~keep).sum()),
            ", ".join(f"{n} with {what}" for what, n in dropped.items()),
        )
    if not keep.any():
        raise CatalogError(
            "redshift_catalog", f"{source}: no valid rows: all {len(table)} were dropped ({', '.join(dropped)})"
        )
    bad = _bad_rows(canonical, ~keep, reasons, homogenized)
    table = table[keep].reset_index(drop=True)
    canonical = canonical[keep].reset_index(drop=True)
    _check_unique_ids(canonical["id"], np.flatnonzero(keep), source)

    out: dict[str, object] = {c: canonical[c] for c in CANONICAL_REDSHIFT_COLUMNS if c in canonical.columns}
    names = {own: canon for own, canon in mapping.items()}
    if homogenized:
        renamed = pd.concat([table.drop(columns=list(mapping)), canonical], axis=1)
        flag = np.asarray(conv.homogenize(renamed), dtype=float)  # type: ignore[misc]
        off_scale = ~np.isin(flag, list(Z_FLAG_SCALE)) & ~np.isnan(flag)
        if len(flag) != len(canonical) or off_scale.any():
            raise CatalogError(
                "redshift_catalog.convention",
                f"{source}: convention {conv.name!r} gave z_flag values off the scale "
                f"{sorted(Z_FLAG_SCALE)}: {sorted(set(flag[off_scale].tolist()))[:5] or 'wrong length'}",
            )
        out[RAW_FLAG_COLUMN] = canonical["z_flag"]
        out["z_flag"] = flag.astype(np.int64) if np.all(np.isfinite(flag)) else flag.astype(float)
        names[next(own for own, canon in mapping.items() if canon == "z_flag")] = RAW_FLAG_COLUMN
    elif "z_flag" in out:
        out["z_flag"] = pd.to_numeric(canonical["z_flag"], errors="coerce")
    if "survey" in out:
        out["survey"] = canonical["survey"].astype("string").str.strip()
    for own in _scalar_columns(table):
        if own in mapping:
            continue
        name = own if own not in out else f"{own}_raw"
        while name in out:
            name += "_"
        out[name] = table[own]
        names[own] = name
    frame = settle_dtypes(pd.DataFrame(out))
    extras = []
    for own in conv.extra_columns:
        if own in names and names[own] not in CANONICAL_REDSHIFT_COLUMNS:
            extras.append(names[own])
    defaults = ([RAW_FLAG_COLUMN] if homogenized else []) + extras
    notes: dict[str, ColumnInfo] = {}
    for own, name in names.items():
        found = conv.column_info.get(own) or (info or {}).get(own)
        if found is not None and name not in CANONICAL_REDSHIFT_COLUMNS:
            notes[name] = found
    if homogenized and RAW_FLAG_COLUMN not in notes:
        notes[RAW_FLAG_COLUMN] = ColumnInfo("", f"the survey's own quality flag ({conv.name} convention)")
    log.info(
        "%s: redshift convention %r (%s), %d rows kept of %d",
        source,
        conv.name,
        "detected from the columns" if detected else "configured" if convention else "default",
        len(frame),
        len(keep),
    )
    return RedshiftTable(
        frame=frame,
        source=source,
        convention=conv.name,
        detected=detected,
        n_read=len(keep),
        dropped=dropped,
        names=names,
        default_columns=tuple(dict.fromkeys(defaults)),
        info=notes,
        bad=bad,
    )
