"""What the Photo-z Server API adds to the registry: its products, their columns, its processes.

The Photo-z Server numbers uploaded redshift catalogs and training sets in one series of
*products*; each is backed by a registered redshift catalog or a training set of the core
registry (``catalog_id`` / ``training_set_id``). The tables live in the registry's own
SQLite file (``pz_`` prefix) so that one file holds everything; the file paths kept here
are the server's business and are never shown to a client.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tsm_core.products.registry import MAX_ID, Registry

SCHEMA = """
CREATE TABLE IF NOT EXISTS pz_products (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product_type TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    release TEXT,
    official INTEGER NOT NULL DEFAULT 0,
    pz_code TEXT,
    owner TEXT,
    status INTEGER NOT NULL DEFAULT 0,
    file_path TEXT,
    file_name TEXT,
    file_type TEXT,
    file_size INTEGER,
    n_rows INTEGER,
    catalog_id INTEGER UNIQUE,
    training_set_id INTEGER UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pz_contents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id INTEGER NOT NULL,
    column_name TEXT NOT NULL,
    ucd TEXT,
    alias TEXT,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pz_processes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    upload INTEGER NOT NULL UNIQUE,
    training_set_id INTEGER NOT NULL,
    display_name TEXT NOT NULL,
    release TEXT,
    used_config TEXT NOT NULL,
    inputs TEXT NOT NULL,
    owner TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
)
"""


#: a product is gone once the training set or catalog behind it is (removed through the JSON API or the CLI)
LIVE = (
    "(training_set_id IS NULL OR training_set_id IN (SELECT id FROM products)) "
    "AND (catalog_id IS NULL OR catalog_id IN (SELECT id FROM redshift_catalogs))"
)


def _id(value: int) -> int:
    """``value`` if SQLite can hold it, else an ID that names nothing (no overflow error)."""
    return value if -MAX_ID <= value <= MAX_ID else 0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class PzProduct:
    """A Photo-z Server product (a row of ``pz_products``)."""

    id: int
    product_type: str
    display_name: str
    description: str
    release: str | None
    official: bool
    pz_code: str | None
    owner: str | None
    status: int
    file_path: str | None
    file_name: str | None
    file_type: str | None
    file_size: int | None
    n_rows: int | None
    catalog_id: int | None
    training_set_id: int | None
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class PzContent:
    """A column of a product's main file, with the alias the user associated to it."""

    id: int
    product_id: int
    column_name: str
    ucd: str | None
    alias: str | None
    position: int


@dataclass(frozen=True)
class PzProcess:
    """A training-set run asked for through the API."""

    id: int
    upload: int
    training_set_id: int
    display_name: str
    release: str | None
    used_config: Any
    inputs: list[int]
    owner: str | None
    stop_requested: bool
    created_at: str


class PzStore:
    """The ``pz_`` tables in the registry file of ``registry``."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        with registry.transaction() as db:
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)

    # -- products ----------------------------------------------------------------------
    def create_product(self, **fields: Any) -> PzProduct:
        """A new product from ``fields`` (columns of ``pz_products``)."""
        fields = {**fields, "created_at": _now(), "updated_at": _now()}
        with self.registry.transaction() as db:
            cur = db.execute(
                f"INSERT INTO pz_products ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
                list(fields.values()),
            )
            row_id = int(cur.lastrowid)
        return self.product(row_id)

    def training_set_product(self, training_set_id: int, **fields: Any) -> PzProduct:
        """The product of training set ``training_set_id`` with ``fields``, created or (when
        :meth:`adopt_operator_products` got there first) updated."""
        fields = {
            **fields,
            "product_type": "training_set",
            "training_set_id": training_set_id,
            "created_at": _now(),
            "updated_at": _now(),
        }
        update = ", ".join(f"{k} = excluded.{k}" for k in fields if k not in ("training_set_id", "created_at"))
        with self.registry.transaction() as db:
            db.execute(
                f"INSERT INTO pz_products ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))}) "
                f"ON CONFLICT(training_set_id) DO UPDATE SET {update}",
                list(fields.values()),
            )
            row = db.execute("SELECT * FROM pz_products WHERE training_set_id = ?", (training_set_id,)).fetchone()
        return _product(row)

    def update_product(self, product_id: int, **fields: Any) -> PzProduct:
        """Set ``fields`` of product ``product_id``."""
        fields = {**fields, "updated_at": _now()}
        with self.registry.transaction() as db:
            db.execute(
                f"UPDATE pz_products SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                [*fields.values(), product_id],
            )
        return self.product(product_id)

    def product(self, product_id: int) -> PzProduct | None:
        """Product ``product_id``, or None (also once what was behind it is removed)."""
        with self.registry.transaction() as db:
            row = db.execute(f"SELECT * FROM pz_products WHERE id = ? AND {LIVE}", (_id(product_id),)).fetchone()
        return _product(row) if row else None

    def products(self, visible_to: str | None = None) -> list[PzProduct]:
        """The products, newest first: all, or (``visible_to``, a user name) that user's, the
        operator's and the official ones."""
        with self.registry.transaction() as db:
            rows = db.execute(
                f"SELECT * FROM pz_products WHERE {LIVE} AND (? IS NULL OR owner IS NULL OR official = 1 OR owner = ?) "
                "ORDER BY id DESC",
                (visible_to, visible_to),
            ).fetchall()
        return [_product(r) for r in rows]

    def remove_product(self, product_id: int) -> None:
        """Forget product ``product_id``, its columns and the process that made it."""
        with self.registry.transaction() as db:
            db.execute("DELETE FROM pz_contents WHERE product_id = ?", (product_id,))
            db.execute("DELETE FROM pz_processes WHERE upload = ?", (product_id,))
            db.execute("DELETE FROM pz_products WHERE id = ?", (product_id,))

    def forget_training_set(self, training_set_id: int) -> None:
        """Forget the product of training set ``training_set_id`` (removed through another API)."""
        with self.registry.transaction() as db:
            row = db.execute("SELECT id FROM pz_products WHERE training_set_id = ?", (training_set_id,)).fetchone()
        if row is not None:
            self.remove_product(row["id"])

    def adopt_operator_products(self) -> None:
        """Give a product number to the operator's own training sets and catalogs (made with the
        command line or Python, owner none) that have none yet: they are the official products."""
        from tsm_core.redshifts.store import is_store

        with self.registry.transaction() as db:
            now = _now()
            for row in db.execute(
                "SELECT * FROM redshift_catalogs WHERE owner IS NULL AND id NOT IN "
                "(SELECT catalog_id FROM pz_products WHERE catalog_id IS NOT NULL)"
            ).fetchall():
                path = Path(row["path"])  # the registry's normalized copy; named after the operator's file
                name = Path(row["source_path"]).name if row["source_path"] else path.name
                if is_store(path):  # stored as HATS, downloaded as Parquet
                    name = f"{Path(name).stem}.parquet"
                size = path.stat().st_size if path.is_file() else None
                db.execute(
                    "INSERT INTO pz_products (product_type, display_name, description, official, status, file_path, "
                    "file_name, file_size, n_rows, catalog_id, created_at, updated_at) "
                    "VALUES ('redshift_catalog', ?, ?, 1, 1, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        row["name"],
                        row["description"],
                        str(path),
                        name,
                        size,
                        row["n_rows"],
                        row["id"],
                        row["created_at"],
                        now,
                    ),
                )
            for row in db.execute(
                "SELECT * FROM products WHERE owner IS NULL AND id NOT IN "
                "(SELECT training_set_id FROM pz_products WHERE training_set_id IS NOT NULL)"
            ).fetchall():
                release = (json.loads(row["config"]).get("object_catalog") or {}).get("release")
                db.execute(
                    "INSERT INTO pz_products (product_type, display_name, description, release, official, status, "
                    "training_set_id, created_at, updated_at) VALUES ('training_set', ?, ?, ?, 1, 3, ?, ?, ?)",
                    (row["name"], row["description"], release, row["id"], row["created_at"], now),
                )

    # -- contents ----------------------------------------------------------------------
    def set_columns(self, product_id: int, columns: list[str]) -> None:
        """Replace the columns of product ``product_id`` (no aliases yet)."""
        with self.registry.transaction() as db:
            db.execute("DELETE FROM pz_contents WHERE product_id = ?", (product_id,))
            db.executemany(
                "INSERT INTO pz_contents (product_id, column_name, position) VALUES (?, ?, ?)",
                [(product_id, c, i) for i, c in enumerate(columns)],
            )

    def contents(self, product_id: int) -> list[PzContent]:
        """The columns of product ``product_id`` in file order."""
        with self.registry.transaction() as db:
            rows = db.execute(
                "SELECT * FROM pz_contents WHERE product_id = ? ORDER BY position", (product_id,)
            ).fetchall()
        return [PzContent(**dict(r)) for r in rows]

    def content(self, content_id: int) -> PzContent | None:
        """One column by its ID, or None."""
        with self.registry.transaction() as db:
            row = db.execute("SELECT * FROM pz_contents WHERE id = ?", (_id(content_id),)).fetchone()
        return PzContent(**dict(row)) if row else None

    def set_alias(self, content_id: int, ucd: str | None, alias: str | None) -> PzContent:
        """Associate ``alias`` (and its ``ucd``) to a column."""
        with self.registry.transaction() as db:
            db.execute("UPDATE pz_contents SET ucd = ?, alias = ? WHERE id = ?", (ucd, alias, content_id))
        content = self.content(content_id)
        assert content is not None
        return content

    # -- processes ---------------------------------------------------------------------
    def create_process(
        self,
        upload: int,
        training_set_id: int,
        display_name: str,
        release: str,
        used_config: Any,
        inputs: list[int],
        owner: str | None,
    ) -> PzProcess:
        """Record a run asked for through the API."""
        with self.registry.transaction() as db:
            cur = db.execute(
                "INSERT INTO pz_processes (upload, training_set_id, display_name, release, used_config, inputs, owner, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    upload,
                    training_set_id,
                    display_name,
                    release,
                    json.dumps(used_config),
                    json.dumps(inputs),
                    owner,
                    _now(),
                ),
            )
            row_id = int(cur.lastrowid)
        process = self.process(row_id)
        assert process is not None
        return process

    def process(self, process_id: int) -> PzProcess | None:
        """Process ``process_id``, or None."""
        with self.registry.transaction() as db:
            row = db.execute("SELECT * FROM pz_processes WHERE id = ?", (_id(process_id),)).fetchone()
        return _process(row) if row else None

    def process_of_upload(self, product_id: int) -> PzProcess | None:
        """The process that makes product ``product_id``, or None."""
        with self.registry.transaction() as db:
            row = db.execute("SELECT * FROM pz_processes WHERE upload = ?", (product_id,)).fetchone()
        return _process(row) if row else None

    def processes(self, owner: str | None = None) -> list[PzProcess]:
        """The processes, newest first: all, or (``owner``, a user name) that user's."""
        with self.registry.transaction() as db:
            rows = db.execute(
                "SELECT * FROM pz_processes WHERE (? IS NULL OR owner = ?) "
                "AND training_set_id IN (SELECT id FROM products) ORDER BY id DESC",
                (owner, owner),
            ).fetchall()
        return [_process(r) for r in rows]

    def request_stop(self, process_id: int) -> None:
        """Mark process ``process_id`` as asked to stop."""
        with self.registry.transaction() as db:
            db.execute("UPDATE pz_processes SET stop_requested = 1 WHERE id = ?", (process_id,))


def _product(row: sqlite3.Row) -> PzProduct:
    data = dict(row)
    data["official"] = bool(data["official"])
    return PzProduct(**data)


def _process(row: sqlite3.Row) -> PzProcess:
    data = dict(row)
    data["used_config"] = json.loads(data["used_config"])
    data["inputs"] = json.loads(data["inputs"])
    data["stop_requested"] = bool(data["stop_requested"])
    return PzProcess(**data)
