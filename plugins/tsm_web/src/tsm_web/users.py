"""The users of ``tsm serve`` and their API tokens (``tsm users add|list|remove``).

Users live in the registry's own SQLite file (table ``users``, created here through
:meth:`~tsm_core.products.registry.Registry.transaction`), so that one file holds the
catalogs and products and who owns them. Only the SHA-256 of a token is kept: the token
itself is shown once, when the user is created.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from tsm_core.errors import CatalogError, ConfigError
from tsm_core.products.registry import Registry
from tsm_core.products.schema import now

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class UserRecord:
    """A user of the web service; only a hash of the token is kept."""

    id: int
    name: str
    created_at: str


def token_hash(token: str) -> str:
    """The SHA-256 (hex) under which a user's token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


class Users:
    """The users kept in ``registry`` (their table is created on first use)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        with registry.transaction() as db:
            db.execute(SCHEMA)

    def add(self, name: str) -> tuple[UserRecord, str]:
        """Create user ``name`` with a new random token; returns the user and the token
        (shown once: only its SHA-256 is stored)."""
        name = name.strip()
        if not name or not all(c.isalnum() or c in "._-@" for c in name):
            raise ConfigError("name", f"a user name is letters, digits and . _ - @ only, not {name!r}")
        token = secrets.token_hex(20)
        with self.registry.transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise ConfigError("name", f"a user called {name!r} exists already")
            cur = db.execute(
                "INSERT INTO users (name, token_sha256, created_at) VALUES (?, ?, ?)", (name, token_hash(token), now())
            )
            row = db.execute("SELECT id, name, created_at FROM users WHERE id = ?", (cur.lastrowid,)).fetchone()
        return UserRecord(**dict(row)), token

    def all(self) -> list[UserRecord]:
        """All users, oldest first."""
        with self.registry.transaction() as db:
            rows = db.execute("SELECT id, name, created_at FROM users ORDER BY id").fetchall()
        return [UserRecord(**dict(r)) for r in rows]

    def remove(self, name: str) -> None:
        """Remove user ``name`` (their token stops working; their products keep their owner)."""
        with self.registry.transaction() as db:
            if db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 0:
                known = ", ".join(r["name"] for r in db.execute("SELECT name FROM users ORDER BY id")) or "none"
                raise CatalogError("name", f"no user {name!r}; users: {known}")

    def for_token(self, token: str) -> UserRecord | None:
        """The user whose token is ``token``, or None."""
        if not token:
            return None
        with self.registry.transaction() as db:
            row = db.execute(
                "SELECT id, name, created_at FROM users WHERE token_sha256 = ?", (token_hash(token),)
            ).fetchone()
        return UserRecord(**dict(row)) if row else None
