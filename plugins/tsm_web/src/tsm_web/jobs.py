"""Training sets built in background threads, so that long runs never block the server."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor

from tsm_core.pipeline import Plan, execute
from tsm_core.registry import Registry

log = logging.getLogger(__name__)


class Runner:
    """Runs prepared training sets, at most ``max_runs`` at once, recording progress."""

    def __init__(self, max_runs: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=max_runs, thread_name_prefix="tsm-run")

    def submit(self, plan: Plan, product_id: int, registry: Registry) -> Future:
        last = [0.0]

        def progress(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            if total and (now - last[0] > 0.5 or done == total):
                last[0] = now
                registry.set_progress(product_id, 0.99 * done / total)

        def work() -> None:
            try:
                execute(plan, product_id, progress)
            except Exception:  # noqa: BLE001 - recorded in the registry by execute()
                log.exception("training set %d failed", product_id)

        return self.pool.submit(work)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
