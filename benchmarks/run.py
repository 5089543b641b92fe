"""Density grid: `tsm run` beside a bare LSDB script and the naive approach.

For every object-catalog size and redshift fraction, in one run of this script, each command
in a fresh process: `tsm run` with the redshifts given as a file (`redshift_catalog.path`) and
as a registered catalog (`tsm redshift register NAME FILE` once, outside the timing, then
`redshift_catalog.name`), the bare LSDB script (bare_lsdb.py) and the naive approach
(naive.py). Wall time, and peak memory as the largest summed RSS of the process and all its
children (Dask workers included), sampled every 50 ms; `tsm` runs with `-v` and its stage
timings are kept.

    python benchmarks/run.py [--sizes 2000000,20000000] [--fractions 0.01,0.1,1.0] [--skip-naive-above N]

Catalogs are generated once per size under benchmarks/work/ (see generate.py). `tsm` runs
after one warm-up run per catalog size, as on any machine after its first run (the numba
cache is warm). Results go to benchmarks/results.json and a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import psutil
import yaml

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
BIN = Path(sys.executable).parent
TSM = str(BIN / "tsm")
RADIUS = 1.0
STAGE = re.compile(r"^tsm: ([A-Za-z][\w ,'-]*): (\d+(?:\.\d+)?) s$")


def tree_rss(proc: psutil.Process) -> int:
    """Summed RSS of ``proc`` and all its descendants (0 when it is gone)."""
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(cmd: list[str], env: dict, timeout: float, also: Callable[[], int] | None = None) -> dict:
    """Wall time, peak RSS of the process tree (plus ``also()`` bytes, e.g. a Dask cluster's
    processes, sampled at the same instants), exit status and stderr of ``cmd``."""
    start = time.perf_counter()
    proc = psutil.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err_chunks: list[str] = []
    reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
    reader.start()
    peak = peak_own = 0
    status = "ok"
    while proc.poll() is None:
        own = tree_rss(proc)
        peak_own = max(peak_own, own)
        peak = max(peak, own + (also() if also else 0))
        if time.perf_counter() - start > timeout:
            for c in proc.children(recursive=True):
                c.kill()
            proc.kill()
            status = "timeout"
            break
        time.sleep(0.05)
    seconds = round(time.perf_counter() - start, 2)
    reader.join(timeout=10)
    err = "".join(err_chunks)
    if status == "ok" and proc.returncode != 0:
        status = (
            "out of memory" if proc.returncode in (-9, 137) or "MemoryError" in err else f"failed ({proc.returncode})"
        )
    return {
        "seconds": seconds,
        "peak_mb": round(peak / 2**20),
        "peak_mb_own_tree": round(peak_own / 2**20),
        "status": status,
        "stages": stages(err),
        "stderr": err[-800:] if status != "ok" else "",
    }


def stages(stderr: str) -> dict[str, float]:
    """The stage timings that `tsm -v` logs (``tsm: plan: 1.90 s``)."""
    found = {}
    for line in stderr.splitlines():
        m = STAGE.match(line.strip())
        if m:
            found[m.group(1)] = float(m.group(2))
    return found


def machine() -> dict:
    """Date, machine and load, to print beside every table."""
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30),
        "load": os.getloadavg(),
        "python": platform.python_version(),
        "commit": git_commit(),
    }


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def ensure_catalog(rows: int, fractions: list[float]) -> Path:
    out = WORK / f"{rows // 1_000_000}M" if rows % 1_000_000 == 0 else WORK / str(rows)
    missing = [f for f in fractions if not redshift_file(out, f).exists()]
    if not (out / "objects").exists() or missing:
        subprocess.run(
            [
                sys.executable,
                str(HERE / "generate.py"),
                "--rows",
                str(rows),
                "--out",
                str(out),
                "--fractions",
                ",".join(str(f) for f in fractions),
            ],
            check=True,
        )
    return out


def redshift_file(base: Path, fraction: float) -> Path:
    return base / f"redshifts_{int(fraction * 100)}pct.parquet"


def register(name: str, path: Path, env: dict, timeout: float) -> dict:
    """Register ``path`` as redshift catalog ``name`` (replacing an older registration), measured."""
    subprocess.run([TSM, "-q", "redshift", "remove", name], env=env, capture_output=True)
    result = measure([TSM, "-v", "redshift", "register", name, str(path)], env, timeout)
    if result["status"] != "ok":
        print(f"registering {path} as {name} failed: {result['stderr']}", flush=True)
    return result


def tsm_config(
    name: str, redshifts: dict, objects: Path, out: Path, release: str = "dp1", compute: dict | None = None
) -> Path:
    """Write a run configuration; ``redshifts`` is ``{"path": ...}`` or ``{"name": ...}``."""
    cfg = {
        "name": name,
        "redshift_catalog": redshifts,
        "object_catalog": {"release": release, "path": str(objects), "flux_type": "cModel"},
        "crossmatch": {"radius_arcsec": RADIUS, "n_neighbors": 1},
        "output": {"format": "parquet", "directory": str(out)},
    }
    if compute:
        cfg["compute"] = compute
    path = out / f"{name.replace(' ', '_')}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def clean_outputs(out: Path) -> None:
    """Delete the training sets written so far (each run writes a new file, named by its product ID)."""
    for path in out.glob("*.parquet"):
        path.unlink()


def tsm_command(cfg: Path) -> list[str]:
    return [TSM, "-v", "run", str(cfg), "--no-progress", "--set", "output.overwrite=true"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000000,20000000")
    parser.add_argument("--fractions", default="0.01,0.1,1.0")
    parser.add_argument("--skip-naive-above", type=int, default=20_000_000)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--tsm-only", action="store_true", help="only the tsm runs (for their stage timings)")
    parser.add_argument("--json", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    env = dict(os.environ, TSM_HOME=str(WORK / "tsm-home"))
    out = WORK / "out"
    out.mkdir(parents=True, exist_ok=True)
    fractions = [float(f) for f in args.fractions.split(",")]
    info = machine()
    print(f"# {info}", flush=True)
    results = []
    for rows in (int(s) for s in args.sizes.split(",")):
        base = ensure_catalog(rows, fractions)
        for fraction in fractions:
            redshifts = redshift_file(base, fraction)
            label = f"bench_{base.name}_{int(fraction * 100)}pct"
            row = {"objects": rows, "redshifts": int(rows * fraction)}
            row["register"] = register(label, redshifts, env, args.timeout)
            by_path = tsm_config(f"{label} path", {"path": str(redshifts)}, base / "objects", out)
            by_name = tsm_config(f"{label} registered", {"name": label}, base / "objects", out)
            if fraction == fractions[0]:  # warm-up (numba cache, file system cache of the object catalog)
                subprocess.run(tsm_command(by_path), env=env, check=True, capture_output=True)
            row["tsm_path"] = measure(tsm_command(by_path), env, args.timeout)
            row["tsm_registered"] = (
                measure(tsm_command(by_name), env, args.timeout)
                if row["register"]["status"] == "ok"
                else {"seconds": 0, "peak_mb": 0, "status": "not registered", "stages": {}, "stderr": ""}
            )
            if args.tsm_only:
                results.append(row)
                print(line(row), flush=True)
                continue
            row["bare_lsdb"] = measure(
                [
                    sys.executable,
                    str(HERE / "bare_lsdb.py"),
                    str(base / "objects"),
                    str(redshifts),
                    str(out / "bare.parquet"),
                    str(RADIUS),
                ],
                env,
                args.timeout,
            )
            if rows <= args.skip_naive_above:
                row["naive"] = measure(
                    [
                        sys.executable,
                        str(HERE / "naive.py"),
                        str(base / "objects"),
                        str(redshifts),
                        str(out / "naive.parquet"),
                        str(RADIUS),
                    ],
                    env,
                    args.timeout,
                )
            results.append(row)
            print(line(row), flush=True)
            clean_outputs(out)
            info["load_after"] = os.getloadavg()
            args.json.write_text(
                json.dumps({"machine": info, "command": " ".join(sys.argv), "grid": results}, indent=1)
            )
    print(table(results))
    print(stage_table(results))


def cell(m: dict | None) -> str:
    if not m:
        return ""
    if m["status"] != "ok":
        return m["status"]
    return f"{m['seconds']:.1f} s, {m['peak_mb']:,} MB"


def ratio(a: dict | None, b: dict | None) -> str:
    if not a or not b or a["status"] != "ok" or b["status"] != "ok":
        return ""
    return f"{a['seconds'] / b['seconds']:.2f}"


def line(row: dict) -> str:
    text = (
        f"{row['objects']:>11,} objects {row['redshifts']:>11,} redshifts | register {cell(row['register'])}"
        f" | tsm path {cell(row['tsm_path'])} | tsm registered {cell(row['tsm_registered'])}"
        f" | bare {cell(row.get('bare_lsdb'))} | naive {cell(row.get('naive'))}"
    )
    for name in ("tsm_path", "tsm_registered", "bare_lsdb", "naive"):
        if name in row and row[name]["status"] != "ok":
            text += f"\n    {name}: {row[name]['status']}: {row[name]['stderr']}"
    return text


def table(results: list[dict]) -> str:
    rows = [
        "| objects | redshifts | tsm run, file | tsm run, registered | bare LSDB | naive | file / bare | "
        "registered / bare | file / naive | registered / naive | register (once) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        p, g, b, n = r["tsm_path"], r["tsm_registered"], r.get("bare_lsdb"), r.get("naive")
        rows.append(
            f"| {r['objects']:,} | {r['redshifts']:,} | {cell(p)} | {cell(g)} | {cell(b)} | {cell(n)} | "
            f"{ratio(p, b)} | {ratio(g, b)} | {ratio(p, n)} | {ratio(g, n)} | {cell(r['register'])} |"
        )
    return "\n".join(rows)


def stage_table(results: list[dict]) -> str:
    """Where `tsm run`'s time goes (its `-v` stage timings; the rest is start-up and imports)."""
    names: list[str] = []
    for r in results:
        for key in ("tsm_path", "tsm_registered"):
            names += [s for s in r[key]["stages"] if s not in names]
    rows = [
        "| objects | redshifts | given as | wall | " + " | ".join(names) + " | rest (start-up, imports) |",
        "|---:|---:|---|---:|" + "---:|" * (len(names) + 1),
    ]
    for r in results:
        for key, given in (("tsm_path", "file"), ("tsm_registered", "registered")):
            m = r[key]
            if m["status"] != "ok":
                continue
            rest = m["seconds"] - sum(m["stages"].values())
            rows.append(
                f"| {r['objects']:,} | {r['redshifts']:,} | {given} | {m['seconds']:.1f} s | "
                + " | ".join(f"{m['stages'][s]:.2f}" if s in m["stages"] else "" for s in names)
                + f" | {rest:.1f} |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
