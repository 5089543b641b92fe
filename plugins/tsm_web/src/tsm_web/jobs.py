"""Training sets built in background threads, so that long runs never block the server.

Products are registered ``queued`` at submission and become ``running`` when a thread
takes them. :meth:`Runner.shutdown` (the server stopping, e.g. on SIGTERM) stops taking
work, marks the queued ones failed ("interrupted") and stops the running ones at their
next partition, which remove their files and are marked failed too. A cancel asked
through the registry (``POST /api/training-sets/{id}/cancel``, ``tsm products cancel``)
reaches a running product through its cancel token, which polls the registry.

A server is a warm process: :meth:`Runner.warm` imports what a run uses (LSDB, HATS, the
pipeline) in a background thread as the server starts, and turns on the numba cache, so
that the first training set does not pay 2-3 s of imports either. A small training set then
takes the time of its own work (plan, match, write), well under a second on a catalog of
a few partitions (``benchmarks/web_jobs.py``).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait

from tsm_core.errors import RunCancelled
from tsm_core.pipeline.main import Plan, execute
from tsm_core.products.cancel import CancelToken
from tsm_core.products.registry import Registry

log = logging.getLogger(__name__)

#: the reason recorded for runs the server did not finish
STOPPED = "interrupted: the server stopped"
#: imported by :meth:`Runner.warm` (what every run imports on its first use)
RUN_MODULES = ("lsdb", "hats", "tsm_core.pipeline.match", "tsm_core.pipeline.write", "tsm_core.redshifts.side")


class Runner:
    """Runs prepared training sets, at most ``max_runs`` at once, recording progress."""

    def __init__(self, max_runs: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=max_runs, thread_name_prefix="tsm-run")
        self.stopping = CancelToken()
        self.futures: dict[int, tuple[Future, Registry]] = {}
        self.warming: threading.Thread | None = None

    def warm(self) -> threading.Thread:
        """Import :data:`RUN_MODULES` and turn on the numba cache, in a daemon thread (started;
        returned). A failure is logged: the first run then imports what it needs itself."""

        def work() -> None:
            try:
                from tsm_core.compute import numba_cache
                from tsm_core.config import tsm_home

                for name in RUN_MODULES:
                    importlib.import_module(name)
                numba_cache.enable(numba_cache.cache_dir(tsm_home()))
            except Exception:  # noqa: BLE001 - only a head start: a run imports these again
                log.exception("warming up the run path failed")

        thread = self.warming = threading.Thread(target=work, name="tsm-warm", daemon=True)
        thread.start()
        return thread

    def submit(self, plan: Plan, product_id: int, registry: Registry) -> Future:
        """Queue ``plan`` (registered as queued product ``product_id``)."""
        last = [0.0]

        def progress(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            if total and (now - last[0] > 0.5 or done == total):
                last[0] = now
                registry.set_progress(product_id, 0.99 * done / total)

        def work() -> None:
            if self.stopping.is_set():
                return
            try:
                execute(plan, product_id, progress, cancel=CancelToken(parent=self.stopping))
            except RunCancelled as exc:
                log.info("training set %d stopped: %s", product_id, exc)
            except Exception:  # noqa: BLE001 - recorded in the registry by execute()
                log.exception("training set %d failed", product_id)

        future = self.pool.submit(work)
        self.futures = {k: v for k, v in self.futures.items() if not v[0].done()}
        self.futures[product_id] = (future, registry)
        return future

    def busy(self) -> bool:
        """Whether a training set is queued or running."""
        return any(not future.done() for future, _registry in list(self.futures.values()))

    def shutdown(self, wait_seconds: float = 20.0) -> None:
        """Stop taking work; queued runs are marked interrupted, running ones stop at their
        next partition (waiting up to ``wait_seconds`` for them to clean up)."""
        self.stopping.cancel(STOPPED, "failed")
        self.pool.shutdown(wait=False, cancel_futures=True)
        for product_id, (future, registry) in list(self.futures.items()):
            if future.cancelled():
                registry.fail_product(product_id, STOPPED)
        running = [f for f, _ in self.futures.values() if not f.done()]
        if running:
            wait(running, timeout=wait_seconds)
        for product_id, (_future, registry) in list(self.futures.items()):
            registry.fail_product(product_id, STOPPED)  # only changes a product still queued or running
