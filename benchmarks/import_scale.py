"""Wall time and peak memory of `tsm import` against the number of rows.

Input tables with the DP1 schema are generated in chunks of 500,000 rows (``generate.py``'s
``write_inputs``), then imported by ``tsm import`` in a fresh process whose process tree
(the Dask workers included) is sampled for its summed RSS (``run.py``'s ``measure``).

    python benchmarks/import_scale.py --rows 2000000,5000000 [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import write_inputs  # noqa: E402
from run import BIN, WORK, measure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="2000000,5000000")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    results = []
    for rows in (int(r) for r in args.rows.split(",")):
        base = WORK / f"import_{rows}"
        inputs = base / "inputs"
        if not inputs.exists():
            write_inputs(rows, 500_000, inputs, seed=7, radius=2.0)
        out = base / "collection"
        shutil.rmtree(out, ignore_errors=True)
        env = dict(os.environ, TSM_HOME=str(base / "home"))
        cmd = [
            str(BIN / "tsm"),
            "-q",
            "import",
            str(inputs),
            "--out",
            str(out),
            "--release",
            "dp1",
            "--workers",
            str(args.workers),
            "--memory-limit",
            args.memory_limit,
            "--no-progress",
        ]
        row = {"rows": rows, "workers": args.workers, **measure(cmd, env, args.timeout)}
        results.append(row)
        print(json.dumps(row), flush=True)
    (WORK / "import_scale.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
