"""The registry's SQLite file: its tables, the migrations of files made by older TSMs, and
the small helpers every access uses (a timestamp, a retry while another process holds the
file).

:func:`migrate` brings any registry file to the current schema; it is idempotent and runs
in the caller's transaction. Plugins keep their own tables in the same file (created
through :meth:`~tsm_core.products.registry.Registry.transaction`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timezone

SCHEMA = """
CREATE TABLE IF NOT EXISTS redshift_catalogs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL,
    columns TEXT NOT NULL,
    n_rows INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    source_path TEXT,
    convention TEXT,
    dropped TEXT,
    owner TEXT
);
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    config TEXT NOT NULL,
    n_rows INTEGER,
    output_path TEXT,
    error TEXT,
    provenance TEXT,
    progress REAL NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    host TEXT,
    pid INTEGER,
    start_token TEXT,
    staging_path TEXT,
    claim_path TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    owner TEXT
);
"""

#: columns added after the first release, with their definition: added to older registry files
OWNER_COLUMNS = {"products": "owner TEXT", "redshift_catalogs": "owner TEXT"}

#: a catalog name is unique per owner (the operator's, owner NULL, count as one owner)
CATALOG_NAME_INDEX = (
    "CREATE UNIQUE INDEX IF NOT EXISTS redshift_catalogs_owner_name ON redshift_catalogs (COALESCE(owner, ''), name)"
)

#: columns added to ``redshift_catalogs`` after its first version (added to older registries)
REDSHIFT_CATALOG_COLUMNS_ADDED = (("source_path", "TEXT"), ("convention", "TEXT"), ("dropped", "TEXT"))

#: the products columns of registries made before the job lifecycle (status running/done/failed)
_OLD_PRODUCT_COLUMNS = (
    "id, name, description, status, config, n_rows, output_path, error, provenance, progress, created_at, finished_at"
)


def now() -> str:
    """The current UTC time, as the registry stores it (ISO 8601, seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def migrate(db: sqlite3.Connection) -> None:
    """Create the tables of a new registry, or bring an older one to the current schema
    (inside the caller's transaction)."""
    for statement in filter(str.strip, SCHEMA.split(";")):
        db.execute(statement)
    _migrate_products(db)
    have = {r[1] for r in db.execute("PRAGMA table_info(redshift_catalogs)")}
    for column, kind in REDSHIFT_CATALOG_COLUMNS_ADDED:
        if column not in have:
            db.execute(f"ALTER TABLE redshift_catalogs ADD COLUMN {column} {kind}")
    for table, column in OWNER_COLUMNS.items():
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column.split()[0] not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    _migrate_catalog_names(db)
    db.execute(CATALOG_NAME_INDEX)


def _rebuild_table(db: sqlite3.Connection, table: str, columns: str) -> None:
    """Copy ``table`` into a new one made by the current SCHEMA (SQLite cannot change a CHECK
    or drop a UNIQUE in place), keeping ``columns``, its rows' IDs and its ID sequence."""
    create = SCHEMA[SCHEMA.index(f"CREATE TABLE IF NOT EXISTS {table} ") :]
    db.execute(f"ALTER TABLE {table} RENAME TO {table}_old")
    db.execute(create[: create.index(";")])
    db.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}_old")
    # keep the ID sequence, so that IDs of removed rows are not given again
    db.execute(
        f"UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = '{table}_old') "
        f"WHERE name = '{table}'"
    )
    db.execute(f"DELETE FROM sqlite_sequence WHERE name = '{table}_old'")
    db.execute(f"DROP TABLE {table}_old")


def _migrate_products(db: sqlite3.Connection) -> None:
    """Bring a products table made by an older TSM to the current schema (new states and
    columns): SQLite cannot change a CHECK, so the table is copied into a new one."""
    sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'products'").fetchone()[0]
    if "'queued'" in sql:
        return
    _rebuild_table(db, "products", _OLD_PRODUCT_COLUMNS)
    # an old registry did not record which process ran a product: its running ones are lost
    db.execute(
        "UPDATE products SET status = 'failed', error = 'interrupted: recorded by an older TSM that did not '"
        " || 'record its process', finished_at = ? WHERE status = 'running'",
        (now(),),
    )


def _migrate_catalog_names(db: sqlite3.Connection) -> None:
    """Make the catalog names of an older registry unique per owner instead of unique overall
    (the table is copied into a new one, keeping every ID)."""
    sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'redshift_catalogs'").fetchone()[0]
    if "UNIQUE" not in sql:
        return
    columns = ", ".join(r[1] for r in db.execute("PRAGMA table_info(redshift_catalogs)"))
    _rebuild_table(db, "redshift_catalogs", columns)


def retry_locked(action: Callable[[], object], seconds: float = 60.0) -> None:
    """Run ``action``, retrying while another process holds the database.

    SQLite's busy timeout does not cover every case: switching the journal mode, or
    starting a transaction while another process recovers the WAL, can fail at once
    with "database is locked".
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
