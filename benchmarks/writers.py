"""Peak memory of each writer against the number of rows it writes.

Each (format, rows) pair runs in a fresh process that streams batches of 100,000 rows of a
training-set-shaped table (ids, coordinates, strings, 12 magnitudes, a boolean) through the
writer; the process's peak RSS is then compared across row counts.

    python benchmarks/writers.py --rows 1000000,5000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH = 100_000


def batches(rows: int):
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(0)
    for start in range(0, rows, BATCH):
        n = min(BATCH, rows - start)
        cols = {
            "id": pa.array([f"DESI_{i:09d}" for i in range(start, start + n)], pa.large_string()),
            "ra": rng.uniform(0, 360, n),
            "dec": rng.uniform(-60, 10, n),
            "z": rng.uniform(0, 3, n),
            "z_flag": pa.array(rng.integers(0, 5, n), pa.int64()),
            "survey": pa.array(rng.choice(["DESI", "VVDS", "2dFLenS"], n), pa.large_string()),
            "objectId": pa.array(np.arange(start, start + n, dtype=np.int64) + 2**60),
            "_dist_arcsec": rng.uniform(0, 1, n),
        }
        for band in "ugrizy":
            cols[f"{band}_cModelMag"] = rng.normal(24, 1, n)
            cols[f"{band}_cModelMagErr"] = rng.uniform(0.01, 0.3, n)
        cols["is_training"] = rng.uniform(0, 1, n) < 0.8
        yield pa.table(cols)


def child(fmt: str, rows: int, out: Path) -> None:
    from tsm_core import plugins
    from tsm_core.config import OutputConfig
    from tsm_core.plugins.records import ColumnInfo, OutputMetadata

    writer = plugins.writer(fmt)
    first = next(batches(1))
    info = {n: ColumnInfo("", n, max_length=16 if n in ("id", "survey") else None) for n in first.column_names}
    metadata = OutputMetadata("bench", "", 1, info, {"bench": True})
    start = time.perf_counter()
    sink = writer.open(out / f"bench.{writer.extension}", first.schema, metadata, OutputConfig(format=fmt))
    for table in batches(rows):
        sink.write(table)
    sink.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {"format": fmt, "rows": rows, "seconds": round(time.perf_counter() - start, 1), "peak_mb": round(peak)}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,5000000")
    parser.add_argument("--formats", default="parquet,csv,fits,hdf5")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as tmp:
            child(args.child[0], int(args.child[1]), Path(tmp))
        return
    print(f"{'format':8} {'rows':>10} {'seconds':>8} {'peak MB':>8}")
    for fmt in args.formats.split(","):
        for rows in args.rows.split(","):
            out = subprocess.run(
                [sys.executable, __file__, "--child", fmt, rows], capture_output=True, text=True, check=True
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['format']:8} {r['rows']:>10,} {r['seconds']:>8} {r['peak_mb']:>8}", flush=True)


if __name__ == "__main__":
    main()
