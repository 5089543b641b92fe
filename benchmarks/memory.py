"""Where one run's memory goes: RSS over the run, attributed to its log lines.

Runs ``tsm_core.run(CONFIG)`` in this process (log level INFO, so every stage and step
logs a line) while a thread samples the process's RSS every 50 ms. Prints, for each log
line, when it came, the RSS then and the highest RSS until the next line: the peak of a
run is then found under the step that reached it.

    TSM_HOME=benchmarks/work/tsm-home python benchmarks/memory.py CONFIG.yaml [--min-mb 20]

Lines whose peak is within ``--min-mb`` of the line before are folded into it.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time

import psutil


class Sampler(threading.Thread):
    """Samples this process's RSS (MB) every ``interval`` seconds into :attr:`samples`."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self.stopped = threading.Event()
        self.process = psutil.Process()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append((time.perf_counter(), self.process.memory_info().rss / 2**20))
            self.stopped.wait(self.interval)


class Lines(logging.Handler):
    """Keeps every log record's time and text."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((time.perf_counter(), f"{record.name}: {record.getMessage()}"[:150]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--min-mb", type=float, default=20.0)
    args = parser.parse_args()
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")  # as the tsm command sets it
    lines = Lines()
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(lines)
    sampler = Sampler()
    start = time.perf_counter()
    lines.lines.append((start, "start (before importing tsm_core)"))
    sampler.start()
    import tsm_core

    result = tsm_core.run(args.config, overrides=["output.overwrite=true"])
    lines.lines.append((time.perf_counter(), f"done: {result.n_rows:,} rows"))
    time.sleep(0.1)
    sampler.stopped.set()
    sampler.join()
    samples = sampler.samples
    print(f"{'t (s)':>7} {'RSS at':>8} {'peak to next':>12}  log line")
    last_peak = 0.0
    bounds = [t for t, _ in lines.lines[1:]] + [float("inf")]
    for (t, text), end in zip(lines.lines, bounds):
        inside = [rss for s, rss in samples if t <= s < end]
        at = inside[0] if inside else float("nan")
        peak = max(inside) if inside else float("nan")
        if inside and abs(peak - last_peak) < args.min_mb and not text.startswith("done"):
            continue
        last_peak = peak if inside else last_peak
        print(f"{t - start:7.1f} {at:8.0f} {peak:12.0f}  {text}")
    print(f"peak RSS {max(r for _, r in samples):,.0f} MB over {samples[-1][0] - start:.1f} s")


if __name__ == "__main__":
    main()
