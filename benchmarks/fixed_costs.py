"""Fixed costs of small work (issue 30): each command in a fresh process, beside its floor.

The floor is the interpreter importing what any of these commands must import
(``import pandas, pyarrow, lsdb``). Measured, each ``--repeat`` times after one warm-up run
(the numba cache and the file cache warm), the median wall time kept:

- ``tsm run`` of 1,000 redshifts against the 1,000 objects of the real DP1 sample (imported
  with ``tsm import``; the redshifts are the objects' positions moved by 0.3 arcsec), beside
  the hand-written cKDTree script (``ckdtree.py``) on the same files;
- ``tsm redshift register`` of the real 1,000-row Combine Redshift Catalogs sample;
- ``tsm import`` of the real 1,000-row DP1 sample (in the ``tsm`` process: no Dask cluster);
- with ``--big OBJECTS REDSHIFTS`` (a ``generate.py`` collection and redshift file), ``tsm run``
  and ``ckdtree.py`` on them.

Prints a Markdown table and writes ``--json``.

    .venv/bin/python benchmarks/fixed_costs.py --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parent.parent / "shared" / "reference-data"
TSM = [sys.executable, "-m", "tsm_core"]


def timed(command: list[str], env: dict[str, str], repeat: int, before: list[str] | None = None) -> dict:
    """Median, min and max wall seconds of ``command`` over ``repeat`` runs after one warm-up
    (``before`` runs untimed before each run: removing what the previous one wrote)."""
    walls = []
    for i in range(repeat + 1):
        if before:
            subprocess.run(before, env=env, capture_output=True)
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        if i:
            walls.append(wall)
    return {"median": statistics.median(walls), "min": min(walls), "max": max(walls), "n": repeat}


def small_inputs(work: Path) -> tuple[Path, Path]:
    """The 1,000 DP1 sample objects as a Parquet file and 1,000 redshifts 0.3 arcsec off them."""
    objects = pd.read_parquet(REFERENCE / "dp1_object_sample.parquet")
    rng = np.random.default_rng(1)
    dec = objects["coord_dec"].to_numpy() + rng.normal(0, 0.3 / 3600, len(objects))
    ra = objects["coord_ra"].to_numpy() + rng.normal(0, 0.3 / 3600, len(objects)) / np.cos(np.radians(dec))
    redshifts = pd.DataFrame({"id": [f"z{i}" for i in range(len(objects))], "ra": ra, "dec": dec})
    redshifts["z"] = rng.uniform(0, 2, len(objects))
    redshifts.to_parquet(work / "z1k.parquet", index=False)
    return REFERENCE / "dp1_object_sample.parquet", work / "z1k.parquet"


def run_config(work: Path, name: str, objects: Path, redshifts: Path) -> Path:
    config = work / f"{name}.yaml"
    config.write_text(
        f"name: {name}\nredshift_catalog: {{path: {redshifts}}}\n"
        f"object_catalog: {{release: dp1, path: {objects}}}\noutput: {{directory: {work / 'out'}, overwrite: true}}\n"
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--big", nargs=2, type=Path, metavar=("OBJECTS", "REDSHIFTS"))
    parser.add_argument("--json", type=Path, default=HERE / "results_fixed_costs.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tsm-fixed-"))
    env = dict(os.environ, TSM_HOME=str(work / "home"))
    source, redshifts = small_inputs(work)
    subprocess.run([*TSM, "import", str(source), "--out", str(work / "dp1_1k")], env=env, check=True)
    rows: dict[str, dict] = {}
    rows["floor: import pandas, pyarrow, lsdb"] = timed(
        [sys.executable, "-c", "import pandas, pyarrow, lsdb"], env, args.repeat
    )
    rows["tsm run, 1k x 1k"] = timed(
        [*TSM, "run", str(run_config(work, "small", work / "dp1_1k", redshifts))], env, args.repeat
    )
    rows["cKDTree script, 1k x 1k"] = timed(
        [sys.executable, str(HERE / "ckdtree.py"), str(work / "dp1_1k"), str(redshifts), str(work / "ck.parquet"), "1"],
        env,
        args.repeat,
    )
    crc = REFERENCE / "combined_redshift_sample.parquet"
    remove = [*TSM, "redshift", "remove", "crc"]
    rows["tsm redshift register, 1k"] = timed([*TSM, "redshift", "register", "crc", str(crc)], env, args.repeat, remove)
    out = work / "imported"
    rows["tsm import, 1k"] = timed([*TSM, "import", str(source), "--out", str(out), "--overwrite"], env, args.repeat)
    if args.big:
        objects, big_z = args.big
        rows["tsm run, big"] = timed([*TSM, "run", str(run_config(work, "big", objects, big_z))], env, args.repeat)
        rows["cKDTree script, big"] = timed(
            [sys.executable, str(HERE / "ckdtree.py"), str(objects), str(big_z), str(work / "ck_big.parquet"), "1"],
            env,
            args.repeat,
        )
    floor = rows["floor: import pandas, pyarrow, lsdb"]["median"]
    print("| command | median | min-max | above the floor |\n|---|---:|---:|---:|")
    for name, m in rows.items():
        print(f"| {name} | {m['median']:.2f} s | {m['min']:.2f}-{m['max']:.2f} s | {m['median'] - floor:+.2f} s |")
    load = os.getloadavg()
    args.json.write_text(json.dumps({"load": load, "rows": rows}, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
