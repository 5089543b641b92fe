"""Time and peak memory of `tsm run` beside a bare LSDB script and the naive approach.

Each command runs in a fresh process; peak memory is the largest summed RSS of the
process and all its children (Dask workers included), sampled every 50 ms.

    python benchmarks/run.py --sizes 1000000,5000000 [--fractions 0.01,0.1] [--skip-naive-above 5000000]

Catalogs are generated once per size under benchmarks/work/ (see generate.py). TSM
runs after one warm-up run, as it does on any machine after its first run (numba cache).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import yaml

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
BIN = Path(sys.executable).parent
RADIUS = 1.0


def measure(cmd: list[str], env: dict, timeout: float) -> dict:
    """Wall time, peak RSS of the process tree, and exit status of ``cmd``."""
    start = time.perf_counter()
    proc = psutil.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    status = "ok"
    while proc.poll() is None:
        try:
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        if time.perf_counter() - start > timeout:
            for c in proc.children(recursive=True):
                c.kill()
            proc.kill()
            status = "timeout"
            break
        time.sleep(0.05)
    err = proc.stderr.read() if proc.stderr else ""
    if status == "ok" and proc.returncode != 0:
        status = "out of memory" if proc.returncode in (-9, 137) or "MemoryError" in err else f"failed ({proc.returncode})"
    return {"seconds": round(time.perf_counter() - start, 2), "peak_mb": round(peak / 2**20), "status": status,
            "stderr": err[-500:] if status != "ok" else ""}


def ensure_catalog(rows: int) -> Path:
    out = WORK / f"{rows // 1_000_000}M" if rows % 1_000_000 == 0 else WORK / str(rows)
    if not (out / "objects").exists():
        subprocess.run([sys.executable, str(HERE / "generate.py"), "--rows", str(rows), "--out", str(out)], check=True)
    return out


def tsm_config(base: Path, redshifts: Path, out: Path) -> Path:
    cfg = {
        "name": f"bench {base.name} {redshifts.stem}",
        "redshift_catalog": {"path": str(redshifts)},
        "object_catalog": {"release": "dp1", "path": str(base / "objects"), "flux_type": "cModel"},
        "crossmatch": {"radius_arcsec": RADIUS, "n_neighbors": 1},
        "output": {"format": "parquet", "directory": str(out)},
    }
    path = out / f"{base.name}_{redshifts.stem}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,5000000,20000000")
    parser.add_argument("--fractions", default="0.01,0.1")
    parser.add_argument("--skip-naive-above", type=int, default=20_000_000)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    env = dict(os.environ, TSM_HOME=str(WORK / "tsm-home"))
    out = WORK / "out"
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for rows in (int(s) for s in args.sizes.split(",")):
        base = ensure_catalog(rows)
        for fraction in (float(f) for f in args.fractions.split(",")):
            redshifts = base / f"redshifts_{int(fraction * 100)}pct.parquet"
            cfg = tsm_config(base, redshifts, out)
            tsm = [str(BIN / "tsm"), "-q", "run", str(cfg), "--no-progress", "--set", "output.overwrite=true"]
            subprocess.run(tsm, env=env, check=True, capture_output=True)  # warm-up (numba cache)
            row = {"objects": rows, "redshifts": int(rows * fraction)}
            row["tsm"] = measure(tsm, env, args.timeout)
            row["bare_lsdb"] = measure([sys.executable, str(HERE / "bare_lsdb.py"), str(base / "objects"), str(redshifts),
                                        str(out / "bare.parquet"), str(RADIUS)], env, args.timeout)
            if rows <= args.skip_naive_above:
                row["naive"] = measure([sys.executable, str(HERE / "naive.py"), str(base / "objects"), str(redshifts),
                                        str(out / "naive.parquet"), str(RADIUS)], env, args.timeout)
            results.append(row)
            report(row)
    (HERE / "results.json").write_text(json.dumps(results, indent=1))


def report(row: dict) -> None:
    t, b = row["tsm"], row["bare_lsdb"]
    line = (f"{row['objects']:>10,} objects {row['redshifts']:>9,} redshifts | tsm {t['seconds']:7.1f} s {t['peak_mb']:6} MB"
            f" | bare LSDB {b['seconds']:7.1f} s {b['peak_mb']:6} MB | tsm/bare {t['seconds'] / b['seconds']:.2f}")
    n = row.get("naive")
    if n:
        naive = f"{n['seconds']:7.1f} s {n['peak_mb']:6} MB" if n["status"] == "ok" else n["status"]
        line += f" | naive {naive}" + (f" | tsm/naive {t['seconds'] / n['seconds']:.2f}" if n["status"] == "ok" else "")
    for name in ("tsm", "bare_lsdb", "naive"):
        if name in row and row[name]["status"] != "ok":
            line += f"\n    {name}: {row[name]['status']}: {row[name]['stderr']}"
    print(line, flush=True)


if __name__ == "__main__":
    main()
