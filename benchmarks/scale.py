"""DP2 scale: `tsm run` on a 10^8-object DP2-schema catalog, with threads and on a Dask cluster.

For each redshift file (default 1 M and 10 M redshifts spread over the footprint, see
generate_dp2.py): register it (`tsm redshift register`, measured, outside the run's timing),
then `tsm -v run` with `redshift_catalog.name`, default threads scheduler: wall time, peak RSS
of the process tree, partitions per second and rows per second. Then (``--cluster FILE``) the
same run on a `dask.distributed` LocalCluster of 2 worker processes (1 thread each) started
by this script in a process of its own and given to tsm by address
(`compute.scheduler: tcp://127.0.0.1:PORT`), right after the same run with threads; the
cluster's processes (scheduler, nannies, workers) are counted in the peak memory.

    python benchmarks/scale.py --base benchmarks/work/dp2_100M --redshifts redshifts_1M.parquet,redshifts_10M.parquet \\
        [--cluster redshifts_1M.parquet] [--skip-threads]

`tsm` is warmed up first (numba cache) with a small redshift file cut from the first one.
Results go to benchmarks/results_scale.json, Markdown tables and the extrapolation to DP2
(786,420,720 objects, 8,840 partitions) to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pyarrow.parquet as pq
from run import WORK, cell, clean_outputs, machine, measure, register, tree_rss, tsm_command, tsm_config

HERE = Path(__file__).resolve().parent
DP2_ROWS = 786_420_720
DP2_PARTITIONS = 8_840


def match_stage(stages: dict[str, float]) -> float | None:
    """The seconds of the stage that reads, matches and writes partitions (`tsm -v`'s
    ``match, photometry and write``)."""
    found = [v for k, v in stages.items() if k.startswith("match")]
    return found[0] if found else None


CLUSTER = """
import sys, time
from distributed import LocalCluster
cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                       scheduler_kwargs={"dashboard_address": ":0"})
print(cluster.scheduler_address, flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
cluster.close()
"""


def catalog_facts(objects: Path) -> dict:
    """Rows and partitions of the collection's main catalog."""
    import hats

    catalog = hats.read_hats(objects)
    main = getattr(catalog, "main_catalog", catalog)
    return {"rows": int(main.catalog_info.total_rows), "partitions": len(main.get_healpix_pixels())}


def rates(result: dict, facts: dict) -> dict:
    """Partitions and rows per second, over the match stage and over the whole run."""
    match = match_stage(result["stages"])
    out = {
        "partitions_per_s_wall": facts["partitions"] / result["seconds"],
        "rows_per_s_wall": facts["rows"] / result["seconds"],
    }
    if match:
        out |= {"partitions_per_s_match": facts["partitions"] / match, "rows_per_s_match": facts["rows"] / match}
    return out


def extrapolate(result: dict, facts: dict) -> dict:
    """DP2's run time from this one: the fixed part (everything but the match stage) as
    measured, the match stage scaled by partitions and, separately, by rows."""
    match = match_stage(result["stages"]) or result["seconds"]
    fixed = result["seconds"] - match
    return {
        "fixed_s": fixed,
        "match_s": match,
        "by_partitions_s": fixed + match * DP2_PARTITIONS / facts["partitions"],
        "by_rows_s": fixed + match * DP2_ROWS / facts["rows"],
    }


def warm_up(first: Path, base: Path, env: dict, out: Path, release: str, compute: dict | None = None) -> None:
    """A run with 2,000 redshifts (numba cache; on a cluster, the workers' imports)."""
    small = out / "warmup_redshifts.parquet"
    if not small.exists():
        pq.write_table(pq.read_table(first).slice(0, 2000), small)
    cfg = tsm_config("scale warm-up", {"path": str(small)}, base / "objects", out, release=release, compute=compute)
    subprocess.run(tsm_command(cfg), env=env, check=True, capture_output=True)


def start_cluster(env: dict) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CLUSTER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    address = proc.stdout.readline().strip()
    if not address.startswith("tcp://"):
        proc.kill()
        raise SystemExit(f"the LocalCluster did not start: {address!r}")
    return proc, address


def stop_cluster(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=WORK / "dp2_100M")
    parser.add_argument("--redshifts", default="redshifts_1M.parquet,redshifts_10M.parquet")
    parser.add_argument("--cluster", default="", help="redshift file (in --base) to run on the cluster too")
    parser.add_argument("--skip-threads", action="store_true", help="only the cluster comparison")
    parser.add_argument("--release", default="dp2", help="object catalog release of --base (dp1 for generate.py's)")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", type=Path, default=HERE / "results_scale.json")
    args = parser.parse_args()
    env = dict(os.environ, TSM_HOME=str(WORK / "tsm-home"))
    out = WORK / "out"
    out.mkdir(parents=True, exist_ok=True)
    args.base = args.base.resolve()
    files = [args.base / f for f in args.redshifts.split(",") if f]
    info = machine()
    print(f"# {info}", flush=True)
    facts = catalog_facts(args.base / "objects")
    print(f"# {args.base / 'objects'}: {facts}", flush=True)
    first = files[0] if files else args.base / args.cluster
    (out / "warmup_redshifts.parquet").unlink(missing_ok=True)
    warm_up(first, args.base, env, out, args.release)
    results: dict = {"machine": info, "command": " ".join(sys.argv), "catalog": facts, "runs": []}
    names = {}
    for path in ([] if args.skip_threads else files) + ([args.base / args.cluster] if args.cluster else []):
        if path in names:
            continue
        name = f"scale_{args.base.name}_{path.stem}"
        rows = pq.ParquetFile(path).metadata.num_rows
        reg = register(name, path, env, args.timeout)
        names[path] = name
        print(f"registered {rows:,} redshifts as {name}: {cell(reg)}", flush=True)
        results["runs"].append({"kind": "register", "redshifts": rows, "result": reg})
    for path in [] if args.skip_threads else files:
        cfg = tsm_config(
            f"{names[path]} threads", {"name": names[path]}, args.base / "objects", out, release=args.release
        )
        res = measure(tsm_command(cfg), env, args.timeout)
        row = {
            "kind": "threads",
            "redshifts": pq.ParquetFile(path).metadata.num_rows,
            "result": res,
            "rates": rates(res, facts),
            "extrapolation": extrapolate(res, facts),
        }
        results["runs"].append(row)
        print(json.dumps(row | {"result": {k: v for k, v in res.items() if k != "stderr"}}), flush=True)
        if res["status"] != "ok":
            print(res["stderr"], flush=True)
        clean_outputs(out)
    if args.cluster:
        path = args.base / args.cluster
        rows = pq.ParquetFile(path).metadata.num_rows
        threads = tsm_config(
            f"{names[path]} threads", {"name": names[path]}, args.base / "objects", out, release=args.release
        )
        proc, address = start_cluster(env)
        try:
            cluster = psutil.Process(proc.pid)
            cfg = tsm_config(
                f"{names[path]} cluster",
                {"name": names[path]},
                args.base / "objects",
                out,
                release=args.release,
                compute={"scheduler": address},
            )
            warm_up(first, args.base, env, out, args.release, compute={"scheduler": address})
            for kind, command, also in (
                ("cluster", cfg, lambda: tree_rss(cluster)),
                ("threads beside cluster", threads, None),
            ):
                if kind.startswith("threads"):
                    stop_cluster(proc)  # the idle cluster's memory and CPU are not the threads run's
                res = measure(tsm_command(command), env, args.timeout, also=also)
                row = {
                    "kind": kind,
                    "redshifts": rows,
                    "address": address,
                    "result": res,
                    "rates": rates(res, facts),
                    "extrapolation": extrapolate(res, facts),
                }
                results["runs"].append(row)
                print(json.dumps(row | {"result": {k: v for k, v in res.items() if k != "stderr"}}), flush=True)
                if res["status"] != "ok":
                    print(res["stderr"], flush=True)
        finally:
            if proc.poll() is None:
                stop_cluster(proc)
    results["machine"]["load_after"] = os.getloadavg()
    args.json.write_text(json.dumps(results, indent=1))
    print(report(results))


def report(results: dict) -> str:
    facts = results["catalog"]
    lines = [
        f"catalog: {facts['rows']:,} rows in {facts['partitions']:,} partitions",
        "",
        "| run | redshifts | wall | peak RSS | partitions/s (wall) | partitions/s (match stage) | "
        "rows/s (match stage) | stages |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results["runs"]:
        res = r["result"]
        if r["kind"] == "register":
            lines.append(f"| register | {r['redshifts']:,} | {res['seconds']:.1f} s | {res['peak_mb']:,} MB | | | | |")
            continue
        ra = r["rates"]
        st = ", ".join(f"{k} {v:.1f} s" for k, v in res["stages"].items())
        lines.append(
            f"| {r['kind']} | {r['redshifts']:,} | {res['seconds']:.1f} s | {res['peak_mb']:,} MB | "
            f"{ra['partitions_per_s_wall']:.1f} | {ra.get('partitions_per_s_match', 0):.1f} | "
            f"{ra.get('rows_per_s_match', 0):,.0f} | {st} |"
        )
    lines += [
        "",
        "| run | redshifts | fixed part | match stage | DP2 by partitions | DP2 by rows |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results["runs"]:
        if "extrapolation" in r:
            e = r["extrapolation"]
            lines.append(
                f"| {r['kind']} | {r['redshifts']:,} | {e['fixed_s']:.0f} s | {e['match_s']:.0f} s | "
                f"{e['by_partitions_s'] / 60:.0f} min | {e['by_rows_s'] / 60:.0f} min |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
