"""Registering redshift catalogs: validate once, store a normalized copy, then choose
them by name or ID.

A registered catalog is a stored copy: the normalized table (canonical columns, the
homogenized ``z_flag``, every other column of the file, bad rows dropped) is written as a
HATS collection partitioned on the sky (in this process, without Dask), under
``$TSM_HOME/redshift_catalogs/`` (:mod:`tsm_core.redshifts.store`). It keeps working after
the original file moves or is deleted, and runs open it lazily instead of reading and
re-partitioning the whole catalog each time.
"""

from __future__ import annotations

import json
import shlex
import uuid
from pathlib import Path

from tsm_core.config import CANONICAL_REDSHIFT_COLUMNS, tsm_home
from tsm_core.errors import CatalogError, ConfigError, one_line
from tsm_core.products.records import RedshiftCatalogRecord
from tsm_core.products.registry import Registry
from tsm_core.products.staging import clear_owner, mark_owner, owned_staging, sweep_staging
from tsm_core.redshifts.readers import read_redshift_catalog
from tsm_core.redshifts.snapshots import read_snapshot
from tsm_core.redshifts.store import is_store, read_store, remove_store, verify_store, write_store
from tsm_core.redshifts.table import RedshiftTable

#: folder of the stored copies, beside the registry
STORE_DIR = "redshift_catalogs"


def register_redshift_catalog(
    name: str,
    path: str | Path,
    columns: dict[str, str] | None = None,
    description: str = "",
    registry: Registry | None = None,
    *,
    convention: str | None = None,
    bad_rows: str = "drop",
    delimiter: str | None = None,
    owner: str | None = None,
    progress: bool = False,
    units: str | None = None,
    table: str | None = None,
) -> RedshiftCatalogRecord:
    """Validate the catalog at ``path`` and register a normalized copy of it as ``name``
    (``owner``: the user it belongs to; none for the operator's own catalogs).

    ``columns`` overrides the mapping of ``convention`` (detected from the columns when
    not given); ``bad_rows`` drops and counts, or refuses, invalid rows. Fails (with the
    bad rows or the missing columns named) before anything is recorded or stored.
    ``progress``: progress bars on stderr while the copy is written.
    """
    name = name.strip()
    if not name:
        raise ConfigError("name", "a redshift catalog needs a non-blank name")
    path = Path(path).expanduser().resolve()
    registry = registry or Registry.at_home(tsm_home())
    if any(r.name == name and r.owner == owner for r in registry.redshift_catalogs(visible_to=owner)):
        raise ConfigError("name", f"a redshift catalog called {name!r} is registered already")
    sweep_redshift_staging(registry)
    normalized = read_redshift_catalog(path, columns or {}, convention, bad_rows, delimiter, units=units, table=table)
    directory = registry.path.parent / STORE_DIR
    stored = directory / uuid.uuid4().hex
    try:
        with owned_staging(directory, "register") as staging:
            write_store(normalized, staging / "store", progress)
            mark_owner(staging / "store")  # swept if this process dies before the catalog is recorded
            (staging / "store").replace(stored)
        record = registry.add_redshift_catalog(
            name,
            str(stored),
            columns or {},
            len(normalized.frame),
            description,
            source_path=str(path),
            convention=normalized.convention,
            dropped=normalized.dropped,
            owner=owner,
        )
        clear_owner(stored)
        return record
    except BaseException:
        remove_store(stored)
        raise


def sweep_redshift_staging(registry: Registry) -> list[Path]:
    """Remove what registrations interrupted by SIGKILL (or a lost node) left in the stored
    copies' folder of ``registry``: their staging folders, and stored copies never recorded."""
    directory = registry.path.parent / STORE_DIR
    if not directory.is_dir():
        return []
    recorded = {Path(r.path).name for r in registry.redshift_catalogs() if r.source_path is not None}
    return sweep_staging(directory, keep=lambda path: path.name in recorded)


def remove_redshift_catalog(
    key: str | int, registry: Registry | None = None, visible_to: str | None = None
) -> RedshiftCatalogRecord:
    """Unregister a catalog (by name or ID, as ``visible_to`` finds it: see
    :meth:`Registry.redshift_catalog`) and delete its stored copy; the original file stays."""
    registry = registry or Registry.at_home(tsm_home())
    record = registry.remove_redshift_catalog(key, visible_to)
    if record.source_path is not None:  # a stored copy of ours, not the user's file
        if is_store(record.path):
            remove_store(record.path)
        else:  # a Parquet snapshot, as registered before catalogs were stored as HATS
            Path(record.path).unlink(missing_ok=True)
    return record


def stored_table(record: RedshiftCatalogRecord) -> RedshiftTable | None:
    """The description of a registered catalog's stored copy (columns, convention; rows
    only for an older Parquet snapshot), None for a catalog registered as the user's file."""
    if record.source_path is None:
        return None
    return read_store(record.path).table if is_store(record.path) else read_snapshot(record.path)


def damaged_catalog_error(record: RedshiftCatalogRecord, reason: str) -> CatalogError:
    """The one line for a registered catalog whose stored copy is damaged: which catalog, why,
    and how to register it again."""
    again = f"tsm redshift remove {record.id} && tsm redshift register {shlex.quote(record.name)}"
    return CatalogError(
        "redshift_catalog",
        f"the stored copy of registered redshift catalog {record.name!r} (id {record.id}) is damaged ({reason}); "
        f"register it again: {again} {shlex.quote(record.source_path or 'FILE')}",
    )


def check_redshift_catalog(key: str | int, registry: Registry | None = None) -> str:
    """Verify the stored copy of registered catalog ``key`` (every partition read whole, the
    rows as recorded): one line saying it is intact, else a :class:`CatalogError` saying how
    to register it again (:func:`damaged_catalog_error`)."""
    registry = registry or Registry.at_home(tsm_home())
    record = registry.redshift_catalog(key)
    if record.source_path is None:
        return f"{record.name!r} (id {record.id}) has no stored copy: it is read from {record.path}"
    if not is_store(record.path):
        try:
            rows = len(read_snapshot(record.path).frame)
        except Exception as exc:  # noqa: BLE001 - any reader error means the snapshot is damaged
            raise damaged_catalog_error(record, one_line(exc, 200)) from exc
        if rows != record.n_rows:
            raise damaged_catalog_error(record, f"it holds {rows} rows, {record.n_rows} were registered")
        return f"{record.name!r} (id {record.id}): intact, {rows} rows"
    try:
        rows, partitions = verify_store(record.path, record.n_rows)
    except Exception as exc:  # noqa: BLE001 - any reader error means the copy is damaged
        raise damaged_catalog_error(record, one_line(exc, 200)) from exc
    return f"{record.name!r} (id {record.id}): intact, {rows} rows in {partitions} partitions"


def parse_column_mapping(text: str | None) -> dict[str, str]:
    """A column mapping given as JSON (``{"ra": "RA"}``) or as ``ra=RA,dec=DEC``; blanks dropped."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"columns is not valid JSON: {exc}") from None
    else:
        mapping = {}
        for item in text.split(","):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"{item!r} is not canonical=column")
            mapping[key.strip()] = value.strip()
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise ValueError("columns maps canonical names to column names (strings)")
    mapping = {k: v for k, v in mapping.items() if v}
    unknown = sorted(set(mapping) - set(CANONICAL_REDSHIFT_COLUMNS))
    if unknown:
        raise ValueError(f"unknown canonical column(s) {unknown}; valid: {list(CANONICAL_REDSHIFT_COLUMNS)}")
    return mapping
