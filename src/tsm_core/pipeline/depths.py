"""The run's depth measurement, riding on the match stage's tasks (no second pass).

Each matched partition's task reads one or more object partitions (LSDB names a partition's
read by a key of the object catalog's graph). :func:`attach` finds, by walking each task's
dependencies, the object partitions it reads and pairs the task with a
:class:`~tsm_core.science.depths.DepthCounter` of each of them not counted by an earlier
task: both are computed in one graph, so an object partition is read once for the match
and its histogram. :class:`DepthMeter` adds the histograms up as the results arrive
(:meth:`DepthMeter.frames`) and gives the depths once every partition has come
(:mod:`tsm_core.science.depths` has the measurement itself).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from tsm_core.science.depths import DepthCounter, Depths, DepthTally

if TYPE_CHECKING:
    from tsm_core.pipeline.plan import Plan

log = logging.getLogger(__name__)


def _pair(counter: DepthCounter, frame: pd.DataFrame, *reads: pd.DataFrame) -> tuple[pd.DataFrame, tuple[Any, ...]]:
    """A matched frame and the histograms of the object partitions ``reads``: one task."""
    return frame, tuple(counter(part) for part in reads)


def _object_reads(task: Any, targets: set[Any]) -> list[Any]:
    """The keys of ``targets`` (object partitions) that ``task`` depends on."""
    from dask.core import get_dependencies

    graph = task.__dask_graph__()
    found, seen, stack = [], set(), [task.key]
    while stack:
        key = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        if key in targets:
            found.append(key)
        elif key in graph:
            stack.extend(get_dependencies(graph, key))
    return sorted(found, key=str)


class DepthMeter:
    """Measures the run's depths from the object partitions its match tasks read."""

    def __init__(self, plan: Plan) -> None:
        photometry = plan.photometry
        release = plan.release
        self.plan = plan
        self.zero_point = release.zero_point
        self.counter = DepthCounter(
            {b: release.flux_err_column(photometry.flux_type, b) for b in photometry.bands}, release.zero_point
        )
        self.tally = DepthTally(photometry.bands)

    def attach(self, tasks: Sequence[Any]) -> list[Any]:
        """``tasks`` (delayed matched partitions), each now giving ``(frame, histograms)``:
        the histograms of the object partitions it reads that no earlier task counts."""
        import dask

        if not tasks:
            return []
        reads = {d.key: d for d in self.plan.objects.to_delayed()}
        targets = set(reads)
        counted: set[Any] = set()
        paired = []
        # one task per partition, bound to the counter (not an argument Dask would walk in
        # each call), keyed without hashing
        pair = dask.delayed(functools.partial(_pair, self.counter), pure=False)
        for task in tasks:
            mine = [k for k in _object_reads(task, targets) if k not in counted]
            counted.update(mine)
            paired.append(pair(task, *(reads[k] for k in mine)))
        if not counted:
            log.warning("no object partition found in the match tasks: depths fall back to the release's limits")
        return paired

    def frames(self, results: Iterable[tuple[pd.DataFrame, tuple[Any, ...]]]) -> Iterator[pd.DataFrame]:
        """The matched frames of ``results``, their histograms added to the tally on the way."""
        for frame, histograms in results:
            for part in histograms:
                self.tally.add(part)
            yield frame

    def depths(self) -> Depths:
        """The depths measured so far (all of them once :meth:`frames` is exhausted)."""
        return self.tally.depths(self.plan.release.mag_limits)

    def limits(self) -> dict[str, float]:
        """The run's limit per band: ``output.mag_limits`` where given, else the depth."""
        overrides = self.plan.config.output.mag_limits or {}
        return {b: float(overrides.get(b, v)) for b, v in self.depths().values.items()}

    def provenance(self) -> dict[str, Any]:
        return self.depths().provenance(self.zero_point)
