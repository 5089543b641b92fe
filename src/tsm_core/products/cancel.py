"""Stopping a run: the :class:`CancelToken` a run checks between partitions.

The CLI's signal handlers set it, the web service sets it on shutdown, and
``tsm products cancel`` / ``POST /api/training-sets/{id}/cancel`` ask for it through the
registry, which the token polls (:func:`registry_poll`). The library never installs
signal handlers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tsm_core.errors import RunCancelled

if TYPE_CHECKING:
    from tsm_core.products.registry import Registry


class CancelToken:
    """Tells a run to stop at its next check (between partitions).

    ``cancel(reason, status)`` may be called from any thread or a signal handler;
    ``poll`` is an optional function asked at most every ``interval`` seconds whether
    the run was cancelled elsewhere (the registry's cancel request); ``parent`` is a
    token whose cancellation cancels this one too (a server stopping all its runs).
    """

    def __init__(
        self,
        poll: Callable[[], str | None] | None = None,
        interval: float = 1.0,
        parent: CancelToken | None = None,
    ) -> None:
        self._event = threading.Event()
        self.reason = "cancelled"
        self.status = "cancelled"
        self._poll = poll
        self._interval = interval
        self._last_poll = 0.0
        self._parent = parent

    def cancel(self, reason: str = "cancelled", status: str = "cancelled") -> None:
        """Ask the run to stop; it ends ``status`` (``cancelled`` or ``failed``) with ``reason``."""
        if not self._event.is_set():
            self.reason, self.status = reason, status
            self._event.set()

    def is_set(self) -> bool:
        """Whether the run must stop (polls the registry now and then)."""
        if self._event.is_set():
            return True
        if self._parent is not None and self._parent.is_set():
            self.cancel(self._parent.reason, self._parent.status)
            return True
        if self._poll is not None and time.monotonic() - self._last_poll >= self._interval:
            self._last_poll = time.monotonic()
            try:
                reason = self._poll()
            except Exception:  # noqa: BLE001 - a busy registry must not stop the run
                reason = None
            if reason:
                self.cancel(reason)
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`~tsm_core.errors.RunCancelled` if the run must stop."""
        if self.is_set():
            raise RunCancelled(self.reason, self.status)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking when cancelled; returns :meth:`is_set`."""
        self._event.wait(seconds)
        return self.is_set()


def registry_poll(registry: Registry, product_id: int) -> Callable[[], str | None]:
    """A :class:`CancelToken` poll that reports a cancel asked through the registry."""

    def poll() -> str | None:
        return "cancelled on request" if registry.cancel_requested(product_id) else None

    return poll
