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


def _one_table(path: Path, tables: list[str], wanted: str | None) -> str:
    """The table of an HDF5 file to read: the one named by ``redshift_catalog.table``, or
    the only one; several without a choice are refused, naming them."""
    if wanted is not None:
        name = "/" + wanted.strip("/")
        if name not in tables:
            raise CatalogError(
                "redshift_catalog.table",
                f"{path} has no table {wanted!r} (redshift_catalog.table); its tables: {', '.join(tables)}",
            )
        return name
    if len(tables) > 1:
        raise CatalogError(
            "redshift_catalog.table",
            f"{path} holds {len(tables)} tables ({', '.join(tables)}); choose one with redshift_catalog.table: NAME",
        )
    return tables[0]


#: astropy's serialized table header, a dataset beside its table (not a column)
ASTROPY_HEADER = ".__table_column_meta__"


def _read_hdf5(path: Path, table: str | None = None) -> pd.DataFrame:
    """A table of an HDF5 file: a pandas HDFStore table, a compound dataset (astropy's or
    PyTables' one-dataset table, the TSM's own HDF5 output), or the one-dimensional datasets
    of one group (a column each). A file of several tables needs ``table``."""
    import h5py

    groups: dict[str, dict[str, h5py.Dataset]] = {}
    stored: list[str] = []  # pandas HDFStore tables
    compound: dict[str, h5py.Dataset] = {}  # one-dataset tables (astropy, PyTables, a TSM output)
    with h5py.File(path, "r") as fh:

        def visit(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Group) and "pandas_type" in obj.attrs:
                stored.append("/" + name)
            elif isinstance(obj, h5py.Dataset) and obj.ndim == 1 and obj.dtype.names is not None:
                if not any(name.startswith(s[1:] + "/") for s in stored):
                    compound["/" + name] = obj
            elif isinstance(obj, h5py.Dataset) and obj.ndim == 1 and not name.endswith(ASTROPY_HEADER):
                parent, _, column = name.rpartition("/")
                if not any(parent == s[1:] or parent.startswith(s[1:] + "/") for s in stored):
                    groups.setdefault("/" + parent, {})[column] = obj

        fh.visititems(visit)
        if not stored and (groups or compound):
            name = _one_table(path, sorted([*groups, *compound]), table)
            if name in compound:  # one field a column
                values = {f: compound[name].fields(f)[()] for f in compound[name].dtype.names or ()}
            else:
                values = {k: v[()] for k, v in groups[name].items()}
            return pd.DataFrame({k: (v.astype(str) if v.dtype.kind in "SO" else v) for k, v in values.items()})
    if not stored:
        raise CatalogError("redshift_catalog", f"{path} holds no table (no one-dimensional datasets, no pandas table)")
    return pd.read_hdf(path, key=_one_table(path, sorted(stored), table))


def _read_csv(path: Path, delimiter: str | None) -> pd.DataFrame:
    """A CSV file; a header that names a column twice is refused (pandas would rename the
    second ``z`` to ``z.1`` and read on)."""
    sep = delimiter or sniff_delimiter(path)
    header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str).iloc[0].astype(str).str.strip().tolist()
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise CatalogError(
            "redshift_catalog",
            f"{path}: column name(s) {', '.join(map(repr, twice))} occur more than once in the header",
        )
    # no comment stripping: a '#' inside a value is data
    return pd.read_csv(path, sep=sep)


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


def _read(
    path: Path, delimiter: str | None = None, table: str | None = None
) -> tuple[pd.DataFrame, dict[str, ColumnInfo]]:
    fmt = file_format(path)
    if table is not None and fmt != "hdf5":
        raise CatalogError("redshift_catalog.table", f"{path}: only an HDF5 file has tables to choose from")
    try:
        if fmt == "parquet":
            return pd.read_parquet(path), {}
        if fmt == "csv":
            return _read_csv(path, delimiter), {}
        if fmt == "fits":
            return _read_fits(path)
        return _read_hdf5(path, table), {}
    except CatalogError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's fault
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CatalogError("redshift_catalog", f"cannot read redshift catalog {path} as {fmt}: {message}") from exc


def read_table(path: str | Path, delimiter: str | None = None, table: str | None = None) -> pd.DataFrame:
    """The whole redshift file as a DataFrame (redshift catalogs are small)."""
    path = Path(path)
    if not path.exists():
        raise CatalogError("redshift_catalog", f"redshift catalog {path} does not exist")
    return _read(path, delimiter, table)[0]


def read_redshift_catalog(
    path: str | Path,
    columns: Mapping[str, str] | None = None,
    convention: str | None = None,
    bad_rows: str = "drop",
    delimiter: str | None = None,
    *,
    units: str | None = None,
    table: str | None = None,
) -> RedshiftTable:
    """Read a redshift file or HATS catalog and normalize it (see
    :func:`~tsm_core.redshifts.normalize.normalize_table`; ``units`` of ra and dec are
    ``deg`` or ``rad``, ``table`` chooses one of an HDF5 file's tables).

    A HATS redshift catalog is read whole too: redshift catalogs are small next to
    object catalogs (millions of rows at most). A snapshot written by
    :func:`~tsm_core.redshifts.snapshots.write_snapshot` is read back as it was normalized.
    """
    path = Path(path)
    info: dict[str, ColumnInfo] = {}
    if is_hats_catalog(path):
        import lsdb

        frame = lsdb.open_catalog(str(path)).compute()
    else:
        if not path.exists():
            raise CatalogError("redshift_catalog", f"redshift catalog {path} does not exist")
        if file_format(path) == "parquet" and is_snapshot(path):
            return read_snapshot(path)
        frame, info = _read(path, delimiter, table)
    return normalize_table(frame, str(path), columns, convention, bad_rows, info, units=units)


def load_redshift_catalog(path: str | Path, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The canonical columns of a redshift catalog (bad rows dropped), as a DataFrame."""
    table = read_redshift_catalog(path, columns)
    return table.frame[table.canonical]
