"""The SQLite registry of redshift catalogs and training-set products: SQL only.

One file, ``$TSM_HOME/registry.sqlite``, serves the CLI, Python calls and the web
service alike. Each call opens its own short connection (WAL journal, busy timeout),
so several processes can run training sets against one registry at once. Opening a
registry creates or migrates its tables (:mod:`tsm_core.products.schema`) and nothing
else: recovering interrupted runs is :mod:`tsm_core.products.lifecycle`'s.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path
from typing import Any

from tsm_core.errors import CatalogError, ConfigError, TooManyRuns, one_line
from tsm_core.products.process import current_owner
from tsm_core.products.records import ProductRecord, RedshiftCatalogRecord
from tsm_core.products.schema import migrate, now, retry_locked

#: the largest ID SQLite can hold: a larger one names nothing (and must not overflow a query)
MAX_ID = 2**63 - 1


class Registry:
    """Access to the registry file at ``path`` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                "TSM_HOME", f"cannot create the registry folder {self.path.parent}: {exc.strerror}"
            ) from None
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise ConfigError("TSM_HOME", f"{self.path.parent} is not a directory")
        try:
            with closing(sqlite3.connect(self.path, timeout=60, isolation_level=None)) as db:
                retry_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))
                # take the write lock up front, so that a second process creating the registry
                # at the same moment waits for it instead of failing
                retry_locked(lambda: db.execute("BEGIN IMMEDIATE"))
                migrate(db)
                db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if not all(os.access(p, os.W_OK) for p in (self.path.parent, self.path) if p.exists()):
                raise ConfigError(
                    "TSM_HOME",
                    f"{self.path.parent} is read-only: the registry {self.path.name} needs a folder this process "
                    "can write (make it writable, or set TSM_HOME to another folder)",
                ) from None
            raise ConfigError(
                "TSM_HOME", f"the registry {self.path} is unreadable ({exc}); move it aside to start a new one"
            ) from None

    @classmethod
    def at_home(cls, home: Path) -> Registry:
        """The registry of ``$TSM_HOME``."""
        return cls(home / "registry.sqlite")

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A connection in an immediate transaction (committed on success), for tables of plugins."""
        return self._connect()

    def _open(self) -> sqlite3.Connection:
        """A connection to the registry file, which must exist: a registry removed (or moved)
        while in use is refused in one line, not silently replaced by an empty one."""
        try:
            if self.path.is_file():
                uri = f"{self.path.absolute().as_uri()}?mode=rw"
                return sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None)
        except sqlite3.OperationalError:
            if self.path.is_file():
                raise
        raise ConfigError(
            "TSM_HOME",
            f"the registry {self.path} was removed while in use; what this process was doing is not "
            "recorded (the next command starts a new registry)",
        )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(self._open()) as db:
            db.row_factory = sqlite3.Row
            retry_locked(lambda: db.execute("BEGIN IMMEDIATE"))
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # -- redshift catalogs -------------------------------------------------------------
    def add_redshift_catalog(
        self,
        name: str,
        path: str,
        columns: dict[str, str],
        n_rows: int,
        description: str = "",
        *,
        source_path: str | None = None,
        convention: str | None = None,
        dropped: dict[str, int] | None = None,
        owner: str | None = None,
    ) -> RedshiftCatalogRecord:
        """Record a validated redshift catalog as ``name``, unique among the catalogs of ``owner``
        (a user name, or None for the operator's own)."""
        if not name.strip():
            raise ConfigError("name", "a redshift catalog needs a non-blank name")
        with self._connect() as db:
            if db.execute("SELECT 1 FROM redshift_catalogs WHERE name = ? AND owner IS ?", (name, owner)).fetchone():
                raise ConfigError("name", f"a redshift catalog called {name!r} is registered already")
            cur = db.execute(
                "INSERT INTO redshift_catalogs (name, description, path, columns, n_rows, created_at, "
                "source_path, convention, dropped, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    description,
                    path,
                    json.dumps(columns),
                    n_rows,
                    now(),
                    source_path,
                    convention,
                    json.dumps(dropped or {}),
                    owner,
                ),
            )
            row_id = _inserted_id(cur)
        return self.redshift_catalog(row_id)

    def set_redshift_catalog_owner(self, catalog_id: int, owner: str | None) -> RedshiftCatalogRecord:
        """Give registered catalog ``catalog_id`` to ``owner`` (None: the operator's, shared with
        every user); fails when that owner has a catalog of the same name already."""
        record = self.redshift_catalog(catalog_id)
        with self._connect() as db:
            taken = db.execute(
                "SELECT 1 FROM redshift_catalogs WHERE name = ? AND owner IS ? AND id != ?",
                (record.name, owner, record.id),
            ).fetchone()
            if taken:
                whose = "the operator" if owner is None else repr(owner)
                raise ConfigError("name", f"{whose} has a redshift catalog called {record.name!r} already")
            db.execute("UPDATE redshift_catalogs SET owner = ? WHERE id = ?", (owner, record.id))
        return self.redshift_catalog(record.id)

    def remove_redshift_catalog(self, key: str | int, visible_to: str | None = None) -> RedshiftCatalogRecord:
        """Forget a registered redshift catalog (by name or ID, as :meth:`redshift_catalog`
        finds it for ``visible_to``); returns what it was."""
        record = self.redshift_catalog(key, visible_to)
        with self._connect() as db:
            db.execute("DELETE FROM redshift_catalogs WHERE id = ?", (record.id,))
        return record

    def redshift_catalogs(self, visible_to: str | None = None) -> list[RedshiftCatalogRecord]:
        """The registered redshift catalogs, oldest first: all of them, or (``visible_to``, a
        user name) that user's and the operator's."""
        where, args = _visible(visible_to)
        with self._connect() as db:
            rows = db.execute(f"SELECT * FROM redshift_catalogs WHERE {where} ORDER BY id", args).fetchall()
        return [self._redshift(r) for r in rows]

    def redshift_catalog(self, key: str | int, visible_to: str | None = None) -> RedshiftCatalogRecord:
        """A registered redshift catalog by ID (an ``int``) or by name (a ``str``; a string of
        digits that names no catalog is taken as an ID).

        For a user (``visible_to``) a name is their own catalog, else the operator's one; a
        catalog they may not read is not found. For the operator (None), a name is the
        operator's catalog, else the one catalog of that name among all owners; several fail
        listing them. Unknown keys fail listing the catalogs the caller may use.
        """
        where, args = _visible(visible_to)
        with self._connect() as db:
            rows: list[sqlite3.Row] = []
            if isinstance(key, str):
                # the caller's own first (owner = caller), then the operator's (owner NULL), then others
                rows = db.execute(
                    f"SELECT * FROM redshift_catalogs WHERE name = ? AND {where} "
                    "ORDER BY CASE WHEN owner IS ? THEN 0 WHEN owner IS NULL THEN 1 ELSE 2 END, id",
                    (key, *args, visible_to),
                ).fetchall()
            if not rows and _as_int(key) is not None:
                rows = db.execute(
                    f"SELECT * FROM redshift_catalogs WHERE id = ? AND {where}", (_as_int(key), *args)
                ).fetchall()
        if rows and (len(rows) == 1 or rows[0]["owner"] == visible_to or rows[0]["owner"] is None):
            return self._redshift(rows[0])
        if rows:
            choices = ", ".join(f"{r['name']} ({r['owner']}, id {r['id']})" for r in rows)
            raise CatalogError(
                "redshift_catalog", f"several redshift catalogs are called {key!r}: {choices}; choose one by its id"
            )
        names = ", ".join(f"{c.name} (id {c.id})" for c in self.redshift_catalogs(visible_to)) or "none"
        raise CatalogError("redshift_catalog", f"no registered redshift catalog {key!r}; registered: {names}")

    @staticmethod
    def _redshift(row: sqlite3.Row) -> RedshiftCatalogRecord:
        data = dict(row)
        data["columns"] = json.loads(data["columns"])
        data["dropped"] = json.loads(data["dropped"]) if data.get("dropped") else {}
        return RedshiftCatalogRecord(**data)

    # -- products ----------------------------------------------------------------------
    def create_product(
        self,
        name: str,
        description: str,
        config: dict[str, Any],
        status: str = "running",
        owner: str | None = None,
        max_active: int | None = None,
    ) -> int:
        """Register a new training set, ``running`` (or ``queued``) and run by this process;
        returns its automatic ID (``owner``: the user it belongs to, or none). With
        ``max_active``, fails with :class:`~tsm_core.errors.TooManyRuns` when ``owner`` has
        that many queued or running already (counted in the same transaction)."""
        if status not in ("queued", "running"):
            raise ValueError(f"a new product is queued or running, not {status!r}")
        process = current_owner()
        with self._connect() as db:
            if max_active is not None:
                _check_active(db, owner, max_active)
            cur = db.execute(
                "INSERT INTO products (name, description, status, config, created_at, host, pid, start_token, owner) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, description, status, json.dumps(config), now(), process.host, process.pid, process.token, owner),
            )
            return _inserted_id(cur)

    def check_active(self, owner: str | None, max_active: int) -> None:
        """Fail with :class:`~tsm_core.errors.TooManyRuns` when ``owner`` has ``max_active``
        training sets queued or running already (a check before planning; :meth:`create_product`
        counts again in its own transaction)."""
        with self._connect() as db:
            _check_active(db, owner, max_active)

    def start_product(self, product_id: int) -> bool:
        """Mark a queued (or running) product running in this process; False if it was
        cancelled or ended meanwhile."""
        owner = current_owner()
        with self._connect() as db:
            cur = db.execute(
                "UPDATE products SET status = 'running', host = ?, pid = ?, start_token = ? "
                "WHERE id = ? AND status IN ('queued', 'running') AND cancel_requested = 0",
                (owner.host, owner.pid, owner.token, product_id),
            )
            return cur.rowcount == 1

    def set_files(self, product_id: int, output_path: str, staging_path: str | None, claim_path: str | None) -> None:
        """Record the output file a running product reserved, its staging folder and claim."""
        with self._connect() as db:
            db.execute(
                "UPDATE products SET output_path = ?, staging_path = ?, claim_path = ? WHERE id = ?",
                (output_path, staging_path, claim_path, product_id),
            )

    def set_progress(self, product_id: int, fraction: float) -> None:
        """Record how far a running product is (0 to 1)."""
        with self._connect() as db:
            db.execute("UPDATE products SET progress = ? WHERE id = ?", (fraction, product_id))

    def finish_product(self, product_id: int, n_rows: int, output_path: str, provenance: dict[str, Any]) -> None:
        """Mark a product done, with its file and provenance."""
        with self._connect() as db:
            db.execute(
                "UPDATE products SET status = 'done', n_rows = ?, output_path = ?, provenance = ?, "
                "progress = 1, finished_at = ?, staging_path = NULL, claim_path = NULL WHERE id = ?",
                (n_rows, output_path, json.dumps(provenance, default=str), now(), product_id),
            )

    def fail_product(self, product_id: int, error: str, status: str = "failed") -> bool:
        """Mark a queued or running product ``failed`` (or ``cancelled``) with its error,
        as one line (it has no file); False if it had ended already."""
        if status not in ("failed", "cancelled"):
            raise ValueError(f"a product fails as failed or cancelled, not {status!r}")
        with self._connect() as db:
            cur = db.execute(
                "UPDATE products SET status = ?, error = ?, output_path = NULL, finished_at = ?, "
                "staging_path = NULL, claim_path = NULL WHERE id = ? AND status IN ('queued', 'running')",
                (status, one_line(error), now(), product_id),
            )
            return cur.rowcount == 1

    def request_cancel(self, product_id: int) -> None:
        """Cancel a queued product now; ask a running one to stop (its process polls this)."""
        with self._connect() as db:
            db.execute(
                "UPDATE products SET status = 'cancelled', error = 'cancelled before it started', finished_at = ? "
                "WHERE id = ? AND status = 'queued'",
                (now(), product_id),
            )
            db.execute("UPDATE products SET cancel_requested = 1 WHERE id = ? AND status = 'running'", (product_id,))

    def cancel_requested(self, product_id: int) -> bool:
        """Whether someone asked the product's run to stop."""
        with self._connect() as db:
            row = db.execute("SELECT cancel_requested FROM products WHERE id = ?", (product_id,)).fetchone()
        return bool(row and row["cancel_requested"])

    def delete_product(self, product_id: int) -> None:
        """Forget a product (its file is the caller's business)."""
        with self._connect() as db:
            db.execute("DELETE FROM products WHERE id = ?", (product_id,))

    def active_products(self) -> list[ProductRecord]:
        """The queued and running products (of every owner and host), oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM products WHERE status IN ('queued', 'running') ORDER BY id").fetchall()
        return [self._product(r) for r in rows]

    def product(self, product_id: int, visible_to: str | None = None) -> ProductRecord:
        """A training set by ID (for a user, ``visible_to``: theirs or the operator's only)."""
        where, args = _visible(visible_to)
        with self._connect() as db:
            row = db.execute(
                f"SELECT * FROM products WHERE id = ? AND {where}", (_as_int(product_id), *args)
            ).fetchone()
        if row is None:
            raise self.not_found(product_id)
        return self._product(row)

    @staticmethod
    def not_found(product_id: int) -> CatalogError:
        """The error for a training set that does not exist (or that the caller may not see)."""
        return CatalogError("", f"no training set with ID {product_id}")

    def products(
        self, search: str | None = None, limit: int | None = None, visible_to: str | None = None
    ) -> list[ProductRecord]:
        """Training sets, newest first; ``search`` matches part of the name (any case);
        ``visible_to`` (a user name) keeps that user's and the operator's."""
        where, visible_args = _visible(visible_to)
        query = f"SELECT * FROM products WHERE {where}"
        args: list[Any] = list(visible_args)
        if search:
            query += " AND name LIKE ? ESCAPE '\\'"
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


def _inserted_id(cursor: sqlite3.Cursor) -> int:
    """The ID of the row an ``INSERT`` made."""
    if cursor.lastrowid is None:
        raise RuntimeError("the registry inserted no row")
    return cursor.lastrowid


def _visible(user: str | None) -> tuple[str, tuple[Any, ...]]:
    """A WHERE condition (and its arguments) keeping the rows ``user`` may see: their own and
    the operator's (owner NULL); every row for the operator or admin (``user`` None)."""
    if user is None:
        return "1 = 1", ()
    return "(owner IS NULL OR owner = ?)", (user,)


def _as_int(key: str | int) -> int | None:
    """``key`` as an ID SQLite can hold, or None (not a number, or out of range)."""
    try:
        value = int(key)
    except (TypeError, ValueError):
        return None
    return value if -MAX_ID <= value <= MAX_ID else None


def _check_active(db: Any, owner: str | None, max_active: int) -> None:
    """Refuse a new product of ``owner`` who has ``max_active`` queued or running ones."""
    active = db.execute(
        "SELECT COUNT(*) FROM products WHERE owner IS ? AND status IN ('queued', 'running')", (owner,)
    ).fetchone()[0]
    if active >= max_active:
        raise TooManyRuns(
            f"{owner or 'the operator'} has {active} training sets queued or running, the "
            f"limit of this server is {max_active}; wait for one to end or cancel one"
        )
