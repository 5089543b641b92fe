"""The Photo-z Server API's state on the app (``app.state.pzserver``): the admin token, the
upload limit, the runner, the app's one registry and the API's own tables over it."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from fastapi import Request

from tsm_core.config import tsm_home
from tsm_core.products.registry import Registry
from tsm_web.jobs import Runner
from tsm_web.pzserver.store import PzStore


@dataclass
class PzSettings:
    """What ``create_app`` tells this API: the admin token, the upload limit, the runner and
    the app's one registry (shared with the JSON API)."""

    token: str | None
    max_upload_bytes: int
    runner: Runner
    shared_registry: Registry
    home: Path = field(default_factory=tsm_home)
    futures: dict[int, Future] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    def registry(self) -> Registry:
        return self.shared_registry

    def store(self) -> PzStore:
        return self._store

    @cached_property
    def _store(self) -> PzStore:
        return PzStore(self.shared_registry)


def settings(request: Request) -> PzSettings:
    return request.app.state.pzserver
