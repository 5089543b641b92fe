"""Read and validate spectroscopic redshift catalogs.

A redshift catalog is a Parquet, CSV, FITS or HDF5 file, or a HATS catalog. A column
mapping renames the file's columns to the canonical names ``id, ra, dec, z, z_err,
z_flag, survey``; only ``ra``, ``dec`` and ``z`` are required. A catalog without an
``id`` gets one: the 0-based row number in the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from tsm_core.config import CANONICAL_REDSHIFT_COLUMNS, REQUIRED_REDSHIFT_COLUMNS
from tsm_core.errors import BadRowsError, CatalogError


FILE_FORMATS: dict[str, tuple[str, ...]] = {
    "parquet": (".parquet", ".pq", ".parq"),
    "csv": (".csv", ".csv.gz", ".csv.bz2", ".txt"),
    "fits": (".fits", ".fit", ".fits.gz", ".fz"),
    "hdf5": (".hdf5", ".h5", ".hdf"),
}


def is_hats_catalog(path: str | Path) -> bool:
    """True for a directory holding a HATS catalog or collection."""
    p = Path(path)
    return p.is_dir() and any((p / f).exists() for f in ("hats.properties", "collection.properties", "properties"))


def file_format(path: str | Path) -> str:
    """The format of a redshift file, from its name."""
    name = str(path).lower()
    for fmt, suffixes in FILE_FORMATS.items():
        if name.endswith(suffixes):
            return fmt
    known = ", ".join(s for suffixes in FILE_FORMATS.values() for s in suffixes)
    raise CatalogError(f"{path}: unknown redshift catalog format; use one of {known} or a HATS catalog", "redshift_catalog")


def _read_hdf5(path: Path) -> pd.DataFrame:
    """One-dimensional datasets of equal length (grouped), else a pandas HDFStore table."""
    import h5py

    groups: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as fh:

        def visit(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset) and obj.ndim == 1 and obj.dtype.names is None:
                parent, _, column = name.rpartition("/")
                groups.setdefault(parent, {})[column] = obj[()]

        fh.visititems(visit)
    if groups:
        columns = max(groups.values(), key=len)
        frame = pd.DataFrame(
            {k: (v.astype(str) if v.dtype.kind in "SO" else v) for k, v in columns.items()}
        )
        return frame
    return pd.read_hdf(path)


def read_table(path: str | Path) -> pd.DataFrame:
    """The whole redshift file as a DataFrame (redshift catalogs are small)."""
    path = Path(path)
    if not path.exists():
        raise CatalogError(f"redshift catalog {path} does not exist", "redshift_catalog")
    fmt = file_format(path)
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        if fmt == "csv":
            return pd.read_csv(path, comment="#")
        if fmt == "fits":
            from astropy.table import Table

            table = Table.read(path, format="fits", hdu=1)
            scalar = [c for c in table.colnames if table[c].ndim == 1]
            return table[scalar].to_pandas()
        return _read_hdf5(path)
    except CatalogError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's fault
        raise CatalogError(f"cannot read redshift catalog {path} as {fmt}: {exc}", "redshift_catalog") from exc


def column_mapping(present: list[str], columns: Mapping[str, str], source: str) -> dict[str, str]:
    """Map file column -> canonical name; fail naming missing columns and those present."""
    mapping: dict[str, str] = {}
    for canonical in CANONICAL_REDSHIFT_COLUMNS:
        own = columns.get(canonical, canonical)
        if own in present:
            mapping[own] = canonical
        elif canonical in columns:
            raise CatalogError(
                f"{source}: column {own!r} (mapped to {canonical!r}) not found; columns present: "
                f"{', '.join(present)}",
                f"redshift_catalog.columns.{canonical}",
            )
    missing = [c for c in REQUIRED_REDSHIFT_COLUMNS if c not in mapping.values()]
    if missing:
        raise CatalogError(
            f"{source}: missing required column(s) {', '.join(missing)}; map them with "
            f"columns: {{{', '.join(f'{m}: <column>' for m in missing)}}}; columns present: "
            f"{', '.join(present)}",
            f"redshift_catalog.columns.{missing[0]}",
        )
    return mapping


def validate_rows(frame: pd.DataFrame, source: str) -> None:
    """Refuse NaN or out-of-range coordinates and non-finite redshifts, naming the rows."""
    ra = pd.to_numeric(frame["ra"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    dec = pd.to_numeric(frame["dec"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    z = pd.to_numeric(frame["z"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    checks = [
        ("NaN or non-numeric ra/dec", ~(np.isfinite(ra) & np.isfinite(dec))),
        ("ra outside [0, 360] deg", np.isfinite(ra) & ((ra < 0) | (ra > 360))),
        ("dec outside [-90, 90] deg", np.isfinite(dec) & ((dec < -90) | (dec > 90))),
        ("non-finite z", ~np.isfinite(z)),
    ]
    for what, bad in checks:
        if bad.any():
            raise BadRowsError(what, np.flatnonzero(bad).tolist(), source)


def normalize(frame: pd.DataFrame, columns: Mapping[str, str], source: str) -> pd.DataFrame:
    """Rename to canonical columns, keep only those, validate rows and fix dtypes."""
    mapping = column_mapping([str(c) for c in frame.columns], columns, source)
    out = frame[list(mapping)].rename(columns=mapping).reset_index(drop=True)
    validate_rows(out, source)
    if "id" not in out.columns:
        out.insert(0, "id", np.arange(len(out), dtype=np.int64))
    for col in ("ra", "dec", "z", "z_err"):
        if col in out.columns:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    if "survey" in out.columns:
        out["survey"] = out["survey"].astype("string").str.strip()
    return out[[c for c in CANONICAL_REDSHIFT_COLUMNS if c in out.columns]]


def load_redshift_catalog(path: str | Path, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read a redshift file or HATS catalog; return its validated canonical DataFrame.

    A HATS redshift catalog is read whole too: redshift catalogs are small next to
    object catalogs (millions of rows at most), and this validates every row.
    """
    if is_hats_catalog(path):
        import lsdb

        table = lsdb.open_catalog(str(path)).compute()
    else:
        table = read_table(path)
    return normalize(table, columns or {}, str(path))
