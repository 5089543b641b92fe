"""Where one `tsm run` spends its time: a cProfile summary of the whole process.

The run's own thread and the threads that compute the partitions (each ``dask.compute``
call of :mod:`tsm_core.compute.scheduler`, profiled where it runs and merged) are counted,
with the scheduler forced to ``synchronous`` so that a partition's work is not split over
threads the profiler does not see. Imports are timed apart (they come first). Prints the
``--top`` functions by cumulative time, and writes the merged profile to ``--out``.

    .venv/bin/python benchmarks/profile_run.py CONFIG.yaml --top 30

``--gc`` also times the garbage collector's collections (``gc.callbacks``, in this script
only): how many there were and their seconds, per generation.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("run.prof"))
    parser.add_argument("--gc", action="store_true", help="time the garbage collector's collections")
    args = parser.parse_args()
    started = time.perf_counter()
    import dask

    import tsm_core
    from tsm_core.compute import scheduler

    imported = time.perf_counter() - started
    profiles = [cProfile.Profile()]
    compute = dask.compute

    class Profiled:
        """``dask`` as the scheduler module sees it, with ``compute`` profiled in its own thread."""

        def __getattr__(self, name: str) -> Any:
            return getattr(dask, name)

        def compute(self, *tasks: Any, **options: Any) -> Any:
            profile = cProfile.Profile()
            profiles.append(profile)
            return profile.runcall(compute, *tasks, **options)

    scheduler.dask = Profiled()  # type: ignore[assignment]
    collections: dict[int, list[float]] = {}
    if args.gc:
        began = [0.0]

        def timed(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                began[0] = time.perf_counter()
            else:
                collections.setdefault(info["generation"], []).append(time.perf_counter() - began[0])

        gc.callbacks.append(timed)
    started = time.perf_counter()
    result = profiles[0].runcall(tsm_core.run, str(args.config), overrides=["compute.scheduler=synchronous"])
    ran = time.perf_counter() - started
    stats = pstats.Stats(profiles[0], stream=sys.stdout)
    for profile in profiles[1:]:
        stats.add(profile)
    stats.dump_stats(args.out)
    print(f"imports {imported:.2f} s, run {ran:.2f} s, {result.n_rows} rows (profiled: slower than unprofiled)")
    for generation, seconds in sorted(collections.items()):
        print(f"gc generation {generation}: {len(seconds)} collections, {sum(seconds):.3f} s")
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
