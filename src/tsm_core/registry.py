"""The SQLite registry of redshift catalogs and training-set products.

One file, ``$TSM_HOME/registry.sqlite``, serves the CLI, Python calls and the web
service alike. Each call opens its own short connection (WAL journal, busy timeout),
so several processes can run training sets against one registry at once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tsm_core.errors import CatalogError, ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS redshift_catalogs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL,
    columns TEXT NOT NULL,
    n_rows INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    config TEXT NOT NULL,
    n_rows INTEGER,
    output_path TEXT,
    error TEXT,
    provenance TEXT,
    progress REAL NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
"""

#: columns added after the first release, with their definition: added to older registry files
OWNER_COLUMNS = {"products": "owner TEXT", "redshift_catalogs": "owner TEXT"}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RedshiftCatalogRecord:
    """A registered redshift catalog: a validated file and its column mapping."""

    id: int
    name: str
    description: str
    path: str
    columns: dict[str, str]
    n_rows: int
    created_at: str
    owner: str | None = None


@dataclass(frozen=True)
class UserRecord:
    """A user of the web service; only a hash of the token is kept."""

    id: int
    name: str
    created_at: str


def token_hash(token: str) -> str:
    """The SHA-256 (hex) under which a user's token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ProductRecord:
    """A training set: its automatic ID, status and, once done, its file."""

    id: int
    name: str
    description: str
    status: str
    config: dict[str, Any]
    n_rows: int | None
    output_path: str | None
    error: str | None
    provenance: dict[str, Any] | None
    progress: float
    created_at: str
    finished_at: str | None
    owner: str | None = None


class Registry:
    """Access to the registry file at ``path`` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=60, isolation_level=None)) as db:
            _retry_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))
            # take the write lock up front, so that a second process creating the registry
            # at the same moment waits for it instead of failing
            _retry_locked(lambda: db.execute("BEGIN IMMEDIATE"))
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)
            for table, column in OWNER_COLUMNS.items():
                present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column.split()[0] not in present:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
            db.execute("COMMIT")

    @classmethod
    def at_home(cls, home: Path) -> Registry:
        """The registry of ``$TSM_HOME``."""
        return cls(home / "registry.sqlite")

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A connection in an immediate transaction (committed on success), for tables of plugins."""
        return self._connect()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=60, isolation_level=None)) as db:
            db.row_factory = sqlite3.Row
            _retry_locked(lambda: db.execute("BEGIN IMMEDIATE"))
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # -- redshift catalogs -------------------------------------------------------------
    def add_redshift_catalog(
        self, name: str, path: str, columns: dict[str, str], n_rows: int, description: str = "",
        owner: str | None = None,
    ) -> RedshiftCatalogRecord:
        """Record a validated redshift catalog under a unique ``name`` (``owner``: a user name, or none)."""
        if not name.strip():
            raise ConfigError("name", "a redshift catalog needs a non-blank name")
        with self._connect() as db:
            if db.execute("SELECT 1 FROM redshift_catalogs WHERE name = ?", (name,)).fetchone():
                raise ConfigError("name", f"a redshift catalog called {name!r} is registered already")
            cur = db.execute(
                "INSERT INTO redshift_catalogs (name, description, path, columns, n_rows, created_at, owner) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, description, path, json.dumps(columns), n_rows, _now(), owner),
            )
            row_id = cur.lastrowid
        return self.redshift_catalog(row_id)

    def redshift_catalogs(self) -> list[RedshiftCatalogRecord]:
        """All registered redshift catalogs, oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM redshift_catalogs ORDER BY id").fetchall()
        return [self._redshift(r) for r in rows]

    def redshift_catalog(self, key: str | int) -> RedshiftCatalogRecord:
        """A registered redshift catalog by name or ID; fails listing the registered names."""
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM redshift_catalogs WHERE name = ? OR id = ?", (str(key), _as_int(key))
            ).fetchone()
        if row is None:
            names = ", ".join(f"{c.name} (id {c.id})" for c in self.redshift_catalogs()) or "none"
            raise CatalogError(f"no registered redshift catalog {key!r}; registered: {names}", "redshift_catalog")
        return self._redshift(row)

    @staticmethod
    def _redshift(row: sqlite3.Row) -> RedshiftCatalogRecord:
        data = dict(row)
        data["columns"] = json.loads(data["columns"])
        return RedshiftCatalogRecord(**data)

    # -- products ----------------------------------------------------------------------
    def create_product(self, name: str, description: str, config: dict[str, Any], owner: str | None = None) -> int:
        """Register a new training set as running; returns its automatic ID (``owner``: a user name, or none)."""
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO products (name, description, status, config, created_at, owner) "
                "VALUES (?, ?, 'running', ?, ?, ?)",
                (name, description, json.dumps(config), _now(), owner),
            )
            return int(cur.lastrowid)

    def set_progress(self, product_id: int, fraction: float) -> None:
        """Record how far a running product is (0 to 1)."""
        with self._connect() as db:
            db.execute("UPDATE products SET progress = ? WHERE id = ?", (fraction, product_id))

    def finish_product(
        self, product_id: int, n_rows: int, output_path: str, provenance: dict[str, Any]
    ) -> None:
        """Mark a product done, with its file and provenance."""
        with self._connect() as db:
            db.execute(
                "UPDATE products SET status = 'done', n_rows = ?, output_path = ?, provenance = ?, "
                "progress = 1, finished_at = ? WHERE id = ?",
                (n_rows, output_path, json.dumps(provenance, default=str), _now(), product_id),
            )

    def fail_product(self, product_id: int, error: str) -> None:
        """Mark a product failed with its error (it has no file)."""
        with self._connect() as db:
            db.execute(
                "UPDATE products SET status = 'failed', error = ?, output_path = NULL, finished_at = ? WHERE id = ?",
                (error, _now(), product_id),
            )

    def product(self, product_id: int) -> ProductRecord:
        """A training set by ID."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM products WHERE id = ?", (_as_int(product_id),)).fetchone()
        if row is None:
            raise CatalogError(f"no training set with ID {product_id}")
        return self._product(row)

    def products(self, search: str | None = None, limit: int | None = None) -> list[ProductRecord]:
        """Training sets, newest first; ``search`` matches part of the name (any case)."""
        query = "SELECT * FROM products"
        args: list[Any] = []
        if search:
            query += " WHERE name LIKE ? ESCAPE '\\'"
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            args.append(f"%{escaped}%")
        query += " ORDER BY id DESC"
        if limit:
            query += " LIMIT ?"
            args.append(limit)
        with self._connect() as db:
            rows = db.execute(query, args).fetchall()
        return [self._product(r) for r in rows]

    @staticmethod
    def _product(row: sqlite3.Row) -> ProductRecord:
        data = dict(row)
        data["config"] = json.loads(data["config"])
        data["provenance"] = json.loads(data["provenance"]) if data["provenance"] else None
        return ProductRecord(**data)

    # -- users -------------------------------------------------------------------------
    def add_user(self, name: str) -> tuple[UserRecord, str]:
        """Create user ``name`` with a new random token; returns the user and the token
        (shown once: only its SHA-256 is stored)."""
        name = name.strip()
        if not name or not all(c.isalnum() or c in "._-@" for c in name):
            raise ConfigError("name", f"a user name is letters, digits and . _ - @ only, not {name!r}")
        token = secrets.token_hex(20)
        with self._connect() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise ConfigError("name", f"a user called {name!r} exists already")
            cur = db.execute("INSERT INTO users (name, token_sha256, created_at) VALUES (?, ?, ?)",
                             (name, token_hash(token), _now()))
            row = db.execute("SELECT id, name, created_at FROM users WHERE id = ?", (cur.lastrowid,)).fetchone()
        return UserRecord(**dict(row)), token

    def users(self) -> list[UserRecord]:
        """All users, oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT id, name, created_at FROM users ORDER BY id").fetchall()
        return [UserRecord(**dict(r)) for r in rows]

    def remove_user(self, name: str) -> None:
        """Remove user ``name`` (their token stops working; their products keep their owner)."""
        with self._connect() as db:
            if db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 0:
                known = ", ".join(r["name"] for r in db.execute("SELECT name FROM users ORDER BY id")) or "none"
                raise CatalogError(f"no user {name!r}; users: {known}", "name")

    def user_for_token(self, token: str) -> UserRecord | None:
        """The user whose token is ``token``, or None."""
        if not token:
            return None
        with self._connect() as db:
            row = db.execute("SELECT id, name, created_at FROM users WHERE token_sha256 = ?",
                             (token_hash(token),)).fetchone()
        return UserRecord(**dict(row)) if row else None


def _retry_locked(action: Callable[[], object], seconds: float = 60.0) -> None:
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


def _as_int(key: str | int) -> int | None:
    try:
        return int(key)
    except (TypeError, ValueError):
        return None
