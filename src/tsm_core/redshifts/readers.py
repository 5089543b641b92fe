"""Read redshift catalog files: Parquet, CSV, FITS, HDF5 or a HATS catalog.

:data:`FILE_FORMATS` names the formats by file suffix (:func:`file_format`); a CSV file's
delimiter is sniffed (:func:`sniff_delimiter`); :func:`read_table` gives a file as it is.
:func:`read_redshift_catalog` is the entry point of the package: any of these formats (or a
legacy snapshot, :mod:`tsm_core.redshifts.snapshots`) read and normalized
(:func:`tsm_core.redshifts.normalize.normalize_table`).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from tsm_core.errors import CatalogError
from tsm_core.plugins.records import ColumnInfo
from tsm_core.redshifts.normalize import normalize_table
from tsm_core.redshifts.snapshots import is_snapshot, read_snapshot
from tsm_core.redshifts.table import RedshiftTable

FILE_FORMATS: dict[str, tuple[str, ...]] = {
    "parquet": (".parquet", ".pq", ".parq"),
    "csv": (".csv", ".csv.gz", ".csv.bz2", ".txt"),
    "fits": (".fits", ".fit", ".fits.gz", ".fz"),
    "hdf5": (".hdf5", ".h5", ".hdf"),
}
CSV_DELIMITERS = ",;\t|"


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
    raise CatalogError(
        "redshift_catalog", f"{path}: unknown redshift catalog format; use one of {known} or a HATS catalog"
    )


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
        frame = pd.DataFrame({k: (v.astype(str) if v.dtype.kind in "SO" else v) for k, v in columns.items()})
        return frame
    return pd.read_hdf(path)


def sniff_delimiter(path: Path) -> str:
    """The delimiter of a CSV file, guessed from its first lines (``,`` when unsure)."""
    import bz2
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else bz2.open if str(path).endswith(".bz2") else open
    with opener(path, "rt", newline="", errors="replace") as fh:
        head = fh.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(head, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        return ","


def _read_fits(path: Path) -> tuple[pd.DataFrame, dict[str, ColumnInfo]]:
    from astropy.table import Table

    table = Table.read(path, format="fits", hdu=1)
    scalar = [c for c in table.colnames if table[c].ndim == 1]
    info = {
        c: ColumnInfo(str(table[c].unit or ""), str(table[c].description or ""))
        for c in scalar
        if table[c].unit is not None or table[c].description
    }
    return table[scalar].to_pandas(), info


def _read(path: Path, delimiter: str | None = None) -> tuple[pd.DataFrame, dict[str, ColumnInfo]]:
    fmt = file_format(path)
    try:
        if fmt == "parquet":
            return pd.read_parquet(path), {}
        if fmt == "csv":
            # no comment stripping: a '#' inside a value is data
            return pd.read_csv(path, sep=delimiter or sniff_delimiter(path)), {}
        if fmt == "fits":
            return _read_fits(path)
        return _read_hdf5(path), {}
    except CatalogError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's fault
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CatalogError("redshift_catalog", f"cannot read redshift catalog {path} as {fmt}: {message}") from exc


def read_table(path: str | Path, delimiter: str | None = None) -> pd.DataFrame:
    """The whole redshift file as a DataFrame (redshift catalogs are small)."""
    path = Path(path)
    if not path.exists():
        raise CatalogError("redshift_catalog", f"redshift catalog {path} does not exist")
    return _read(path, delimiter)[0]


def read_redshift_catalog(
    path: str | Path,
    columns: Mapping[str, str] | None = None,
    convention: str | None = None,
    bad_rows: str = "drop",
    delimiter: str | None = None,
) -> RedshiftTable:
    """Read a redshift file or HATS catalog and normalize it (see
    :func:`~tsm_core.redshifts.normalize.normalize_table`).

    A HATS redshift catalog is read whole too: redshift catalogs are small next to
    object catalogs (millions of rows at most). A snapshot written by
    :func:`~tsm_core.redshifts.snapshots.write_snapshot` is read back as it was normalized.
    """
    path = Path(path)
    info: dict[str, ColumnInfo] = {}
    if is_hats_catalog(path):
        import lsdb

        table = lsdb.open_catalog(str(path)).compute()
    else:
        if not path.exists():
            raise CatalogError("redshift_catalog", f"redshift catalog {path} does not exist")
        if file_format(path) == "parquet" and is_snapshot(path):
            return read_snapshot(path)
        table, info = _read(path, delimiter)
    return normalize_table(table, str(path), columns, convention, bad_rows, info)


def load_redshift_catalog(path: str | Path, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The canonical columns of a redshift catalog (bad rows dropped), as a DataFrame."""
    table = read_redshift_catalog(path, columns)
    return table.frame[table.canonical]
