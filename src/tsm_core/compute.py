"""Where the Dask graph runs, and how crossmatched partitions are streamed out.

``compute.scheduler`` is ``threads`` (default), ``processes`` (a local
``dask.distributed`` cluster of worker processes), ``synchronous`` (debugging), or the
address of a running ``dask.distributed`` scheduler (``tcp://host:8786``), for
example one started on a SLURM allocation with ``dask-jobqueue``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import dask

from tsm_core.config import ComputeConfig
from tsm_core.errors import ConfigError

log = logging.getLogger(__name__)


@contextmanager
def dask_scheduler(config: ComputeConfig) -> Iterator[int]:
    """Run the enclosed Dask computations as configured; yields the number of workers."""
    n_workers = config.n_workers or os.cpu_count() or 1
    if config.scheduler == "synchronous":
        with dask.config.set(scheduler="synchronous"):
            yield 1
        return
    if config.scheduler == "threads":
        with dask.config.set(scheduler="threads", num_workers=n_workers):
            yield n_workers
        return
    from distributed import Client, LocalCluster

    if config.scheduler == "processes":
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=config.memory_limit or "auto",
            dashboard_address=None,
        )
        with cluster, Client(cluster) as client, dask.config.set(scheduler=client):
            log.info("local Dask cluster with %d worker processes", n_workers)
            yield n_workers
        return
    try:
        client = Client(config.scheduler, timeout="20s")
    except OSError as exc:
        raise ConfigError("compute.scheduler", f"cannot reach the Dask scheduler at {config.scheduler}: {exc}") from None
    with client, dask.config.set(scheduler=client):
        workers = len(client.scheduler_info().get("workers", {})) or n_workers
        log.info("connected to Dask scheduler %s with %d workers", config.scheduler, workers)
        yield workers


def stream(
    tasks: Sequence[Any], in_flight: int, on_done: Callable[[int], None] | None = None
) -> Iterator[Any]:
    """Compute delayed ``tasks`` ``in_flight`` at a time and yield results in order.

    The next batch is computed while the caller consumes the current one (writes it),
    so writing overlaps matching; memory holds at most two batches of results, whatever
    the number of tasks. ``on_done(n)`` is told how many tasks have finished.
    """
    step = max(1, in_flight)
    batches = [tasks[i : i + step] for i in range(0, len(tasks), step)]
    if not batches:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tsm-prefetch") as pool:
        pending = pool.submit(dask.compute, *batches[0])
        for k in range(len(batches)):
            results = pending.result()
            if k + 1 < len(batches):
                pending = pool.submit(dask.compute, *batches[k + 1])
            if on_done is not None:
                on_done(min((k + 1) * step, len(tasks)))
            yield from results
