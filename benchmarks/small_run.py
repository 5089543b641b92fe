"""Where a small `tsm run` spends its time beyond the import floor (issue 30), in one process.

Imports the floor (``pandas, pyarrow, lsdb``) first, then times, wall and CPU: TSM's CLI and
plugins, the run path's modules, the first call of HATS's numba-compiled pixel-alignment
functions (numba's compiler initialized, the cached machine code loaded), and the `tsm run`
command itself on CONFIG (``-q``; the plan, graph and write are in its log with ``-v``).
The process's own exit is not timed here: compare whole processes for that
(``/usr/bin/time -v python -m tsm_core run CONFIG`` against
``/usr/bin/time -v python -c "import pandas, pyarrow, lsdb"``).

    TSM_HOME=/tmp/home .venv/bin/python benchmarks/small_run.py CONFIG.yaml
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


class Clock:
    """Wall and CPU seconds of successive steps."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float]] = []
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def step(self, name: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.rows.append((name, wall - self.wall, cpu - self.cpu))
        self.wall, self.cpu = wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    args = parser.parse_args()
    clock = Clock()
    import lsdb  # noqa: F401 - the floor
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    clock.step("floor: import pandas, pyarrow, lsdb")
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    from tsm_core import plugins
    from tsm_core.cli.main import get_cli

    plugins.get_plugin_manager()
    clock.step("TSM's CLI and plugins")
    import tsm_core.pipeline.main  # noqa: F401
    import tsm_core.science.crossmatch  # noqa: F401

    clock.step("the run path's modules")
    import numpy as np
    from hats.pixel_tree.moc_filter import perform_filter_by_moc
    from hats.pixel_tree.pixel_alignment import perform_align_trees, perform_inner_align_trees

    from tsm_core.compute import numba_cache
    from tsm_core.config import tsm_home

    numba_cache.enable(numba_cache.cache_dir(tsm_home()))
    pixels = np.array([[0, 4]], dtype=np.int64)
    perform_inner_align_trees(pixels, pixels)
    perform_align_trees(pixels, pixels, True, True)
    perform_filter_by_moc(pixels, pixels)
    clock.step("first call of HATS's numba functions")
    try:
        get_cli()(["run", str(args.config), "-q"], obj={})
    except SystemExit as exc:
        if exc.code:
            raise
    clock.step("tsm run (plan, graph, match, write, registry)")
    print("| step | wall | cpu |\n|---|---:|---:|")
    for name, wall, cpu in clock.rows:
        print(f"| {name} | {wall:.3f} s | {cpu:.3f} s |")
    beyond = clock.rows[1:]
    print(f"| beyond the floor | {sum(r[1] for r in beyond):.3f} s | {sum(r[2] for r in beyond):.3f} s |")


if __name__ == "__main__":
    main()
