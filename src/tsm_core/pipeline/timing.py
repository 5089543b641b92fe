"""How a run reports on itself while it works: the progress callback's type and the wall
time of each stage in the log."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

#: progress callback: (stage, done, total)
Progress = Callable[[str, int, int], None]


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Log the wall time of a stage of the run."""
    start = time.perf_counter()
    yield
    log.info("%s: %.2f s", name, time.perf_counter() - start)
