"""The life of a training-set run, shared by the CLI, Python calls and the web service.

A product goes ``queued -> running -> done | failed | cancelled``. Each run records the
process that owns it (host, pid and a start token, so that a reused pid is not taken
for the run's process), its staging folder and its output claim. Whenever the registry
is opened, runs whose process is gone are marked failed ("interrupted") and their
files removed (:meth:`~tsm_core.products.registry.Registry.recover_interrupted`).

A run is stopped through a :class:`CancelToken`, checked between partitions: the CLI's
signal handlers set it, the web service sets it on shutdown, and
``tsm products cancel`` / ``POST /api/training-sets/{id}/cancel`` ask for it through
the registry, which the token polls. The library never installs signal handlers.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tsm_core.errors import RunCancelled, TSMError

if TYPE_CHECKING:
    from tsm_core.products.registry import ProductRecord, Registry

#: states in which a product still has a process working on it (or waiting to)
ACTIVE_STATES = ("queued", "running")
#: states a product ends in
TERMINAL_STATES = ("done", "failed", "cancelled")


class TooManyRuns(TSMError):
    """A user has as many training sets queued or running as the service allows."""


# -- which process owns a run -----------------------------------------------------------
@dataclass(frozen=True)
class Owner:
    """The process that runs (or will run) a product."""

    host: str
    pid: int
    token: str | None


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def start_token(pid: int) -> str | None:
    """What tells process ``pid`` apart from a later process given the same pid:
    its start time (and the boot it started in); None if the process does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # the command name (field 2) may hold spaces and parentheses: split after the last ')'
        start = stat[stat.rindex(")") + 2 :].split()[19]
        return f"{_boot_id()}:{start}"
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return f"psutil:{psutil.Process(pid).create_time():.3f}"
    except Exception:  # noqa: BLE001 - psutil missing, or no such process
        return None


def current_owner() -> Owner:
    """This process, as recorded in the products it runs."""
    return Owner(socket.gethostname(), os.getpid(), start_token(os.getpid()))


def owner_alive(owner: Owner) -> bool | None:
    """Whether the process of ``owner`` still runs: None if it is on another host (unknown)."""
    if owner.host != socket.gethostname():
        return None
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    if owner.token is None:
        return True
    token = start_token(owner.pid)
    return token is None or token == owner.token


# -- stopping a run -------------------------------------------------------------------------
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


# -- what the CLI and the web service do to products -------------------------------------------
def cancel_product(registry: Registry, product_id: int, wait: float = 0.0) -> ProductRecord:
    """Cancel a queued or running training set.

    A queued one is cancelled at once; a running one is asked to stop, and its process
    (the CLI, Python or the web service, on any host sharing the registry) stops at its
    next partition, removes its files and marks it cancelled. If that process is gone,
    the product is marked failed at once. Waits up to ``wait`` seconds for the run to
    end; returns the product as it is then. Fails for a product that has ended.
    """
    product = registry.product(product_id)
    if product.status in TERMINAL_STATES:
        raise TSMError(f"training set {product_id} is {product.status} already; nothing to cancel")
    registry.request_cancel(product_id)
    registry.recover_interrupted()
    deadline = time.monotonic() + wait
    product = registry.product(product_id)
    while product.status in ACTIVE_STATES and time.monotonic() < deadline:
        time.sleep(0.2)
        product = registry.product(product_id)
    return product


def remove_product(registry: Registry, product_id: int, visible_to: str | None = None) -> ProductRecord:
    """Remove a training set that has ended, its file and its stored report; fails for a
    queued or running one, and (for a user, ``visible_to``) for one that is not theirs."""
    from tsm_core.products.output import remove_output
    from tsm_core.reports import remove_stored_report

    product = registry.product(product_id, visible_to)
    if visible_to is not None and product.owner != visible_to:
        raise registry.not_found(product_id)
    if product.status in ACTIVE_STATES:
        raise TSMError(f"training set {product_id} is {product.status}; cancel it first (tsm products cancel {product_id})")
    if product.status == "done" and product.output_path:
        remove_output(Path(product.output_path))
    registry.delete_product(product_id)
    remove_stored_report(registry.path.parent, product_id)
    return product
