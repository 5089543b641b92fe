"""Small training sets in a warm `tsm serve`: seconds from submission to done.

Writes the DP1 synthetic sample (20,000 objects, 2,000 redshifts) under a fresh $TSM_HOME,
registers its redshifts, starts a real `tsm serve` on it and submits training sets over HTTP:
first ``--jobs`` one after another (each polled every 10 ms until done: the latency a user
sees), then the same number at once (the server builds ``--runs`` at a time: the throughput).
With ``--layout imported`` the sample's objects are first exported to Parquet and imported
with `tsm import` (one partition, as a user's small catalog is), instead of the sample's own
layout (50 partitions of 400 rows, made to exercise many partitions). Prints one JSON line.

    .venv/bin/python benchmarks/web_jobs.py --jobs 30

``--sample DIR`` reuses a sample written before by ``tsm sample dp1 --out DIR`` (the same
rows every time: 36 s less per call, and two versions of the code compared on one input);
``--at-once 0`` skips the burst.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _call(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _wait(url: str, product_id: int, poll: float = 0.01) -> dict:
    while True:
        product = _call(f"{url}/api/training-sets/{product_id}")
        if product["status"] in ("done", "failed", "cancelled"):
            return product
        time.sleep(poll)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--runs", type=int, default=2, help="tsm serve --runs")
    parser.add_argument("--layout", choices=("sample", "imported"), default="sample")
    parser.add_argument(
        "--sample", type=Path, help="a sample written by `tsm sample dp1 --out DIR` (default: a new one)"
    )
    parser.add_argument("--at-once", type=int, help="jobs submitted at once after the others (default: --jobs)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tsm-web-bench-"))
    env = dict(os.environ, TSM_HOME=str(home))
    tsm = [sys.executable, "-m", "tsm_core"]
    sample = args.sample or home / "sample"
    if args.sample is None:
        subprocess.run([*tsm, "sample", "dp1", "--out", str(sample), "--no-progress"], env=env, check=True)
    subprocess.run(
        [*tsm, "redshift", "register", "z2k", str(sample / "redshifts.parquet"), "--no-progress"], env=env, check=True
    )
    objects = next(p for p in sample.iterdir() if p.is_dir())
    if args.layout == "imported":
        import pyarrow.dataset as ds

        table = ds.dataset(objects / "object_lc" / "dataset", format="parquet", exclude_invalid_files=True).to_table()
        table.drop_columns(
            [c for c in ("_healpix_29", "Norder", "Dir", "Npix") if c in table.column_names]
        ).to_pandas().to_parquet(home / "objects.parquet", index=False)
        objects = home / "imported"
        subprocess.run([*tsm, "import", str(home / "objects.parquet"), "--out", str(objects)], env=env, check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(home / "serve.log", "w")  # noqa: SIM115 - closed after the server stops
    server = subprocess.Popen(
        [*tsm, "serve", "--port", str(port), "--runs", str(args.runs), "--release-path", f"dp1={objects}"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            try:
                _call(url + "/api/formats")
                break
            except OSError:
                if time.monotonic() - started > 120:
                    raise
                time.sleep(0.1)
        config = {"name": "small", "redshift_catalog": {"name": "z2k"}, "object_catalog": {"release": "dp1"}}
        _wait(url, _call(url + "/api/training-sets", config)["id"])  # warm-up: first imports, numba cache
        latencies, rows = [], set()
        for _ in range(args.jobs):
            t0 = time.perf_counter()
            product = _wait(url, _call(url + "/api/training-sets", config)["id"])
            latencies.append(time.perf_counter() - t0)
            rows.add((product["status"], product["n_rows"]))
        t0 = time.perf_counter()
        at_once = args.jobs if args.at_once is None else args.at_once
        ids = [_call(url + "/api/training-sets", config)["id"] for _ in range(at_once)]
        finished = [_wait(url, i, 0.05) for i in ids]
        burst = time.perf_counter() - t0
        print(
            json.dumps(
                {
                    "jobs": args.jobs,
                    "layout": args.layout,
                    "runs": args.runs,
                    "one_at_a_time_s": {
                        "median": round(statistics.median(latencies), 3),
                        "min": round(min(latencies), 3),
                        "max": round(max(latencies), 3),
                    },
                    "at_once": at_once,
                    "all_at_once_s": round(burst, 2),
                    "statuses": sorted({p["status"] for p in finished} | {s for s, _ in rows}),
                    "rows": sorted({n for _, n in rows}),
                }
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


if __name__ == "__main__":
    main()
