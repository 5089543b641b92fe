"""Guards of the fixed costs of one small `tsm run` (issue 30), without timing assertions.

One real `tsm run` in a fresh process (``python -X importtime -m tsm_core run``) on a HATS
catalog written here: it imports nothing of the web service or RAIL, its training set is
the astropy brute force, whole, though the process skips the interpreter's teardown; and
:func:`tsm_core.cli.leave.leave` does what an exit must (threads, atexit handlers, streams).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from helpers import brute_force_match, write_objects
from tsm_core.cli.leave import FAST_EXIT_ENV, fast_exit_allowed

#: what a run must not import: the web service's stack, RAIL's, optional file formats
NOT_ON_THE_RUN_PATH = (
    "fastapi",
    "uvicorn",
    "starlette",
    "tsm_web.app",
    "tsm_web.api",
    "rail",
    "ceci",
    "jax",
    "tables_io",
    "tsm_rail",
    "sklearn",
)


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ, TSM_HOME=str(home), PYTHONPATH=os.pathsep.join(sys.path))
    env.pop(FAST_EXIT_ENV, None)
    return env


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """300 objects in one partition, 120 redshifts near some of them, one `tsm run` of them
    in a fresh process with ``-X importtime``."""
    base = tmp_path_factory.mktemp("speed-run")
    rng = np.random.default_rng(30)
    n = 300
    objects = pd.DataFrame(
        {
            "objectId": np.arange(n, dtype=np.int64) * 11 + 5,
            "coord_ra": 37.5 + rng.uniform(-0.05, 0.05, n),
            "coord_dec": 7.5 + rng.uniform(-0.05, 0.05, n),
        }
    )
    for band in ("u", "g", "r", "i", "z", "y"):
        objects[f"{band}_cModelFlux"] = rng.uniform(100, 5000, n).astype(np.float32)
        objects[f"{band}_cModelFluxErr"] = np.full(n, 20, np.float32)
    write_objects(objects, base / "objects", margin_arcsec=5.0, partition_rows=1000)
    near = rng.choice(n, 120, replace=False)
    redshifts = pd.DataFrame(
        {
            "id": [f"z{i}" for i in range(len(near))],
            "ra": objects["coord_ra"].to_numpy()[near] + rng.normal(0, 0.4 / 3600, len(near)),
            "dec": objects["coord_dec"].to_numpy()[near] + rng.normal(0, 0.4 / 3600, len(near)),
            "z": rng.uniform(0.1, 1.5, len(near)),
        }
    )
    redshifts.to_parquet(base / "z.parquet", index=False)
    config = base / "small.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "small",
                "redshift_catalog": {"path": str(base / "z.parquet")},
                "object_catalog": {"release": "dp1", "path": str(base / "objects")},
                "crossmatch": {"radius_arcsec": 1.0, "n_neighbors": 1},
                "output": {"directory": str(base / "out")},
            }
        )
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tsm_core", "run", str(config)],
        env=_env(base / "home"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return {"done": done, "imported": imported, "objects": objects, "redshifts": redshifts, "out": base / "out"}


def test_a_run_imports_nothing_of_the_web_service_or_rail(small_run: dict) -> None:
    assert small_run["done"].returncode == 0, small_run["done"].stderr[-2000:]
    assert "lsdb" in small_run["imported"]  # the parse of -X importtime's lines works
    loaded = sorted(
        name
        for name in small_run["imported"]
        if any(name == m or name.startswith(m + ".") for m in NOT_ON_THE_RUN_PATH)
    )
    assert loaded == []


def test_the_training_set_is_whole_and_the_brute_force(small_run: dict) -> None:
    """The process ends without the interpreter's teardown: its file and its last line are whole."""
    done = small_run["done"]
    assert done.returncode == 0, done.stderr[-2000:]
    files = list(small_run["out"].glob("small_*.parquet"))
    assert len(files) == 1
    table = pq.read_table(files[0]).to_pandas()
    expected = brute_force_match(small_run["redshifts"], small_run["objects"], 1.0, 1)
    got = table.set_index("id")["objectId"].sort_index()
    assert got.to_dict() == expected.set_index("id")["objectId"].sort_index().to_dict()
    assert f"{len(expected)} rows -> {files[0]}" in done.stdout
    assert done.stdout.endswith("\n")


LEAVER = textwrap.dedent(
    """
    import atexit, sys, threading, time
    from pathlib import Path
    from tsm_core.cli.leave import leave

    out = Path(sys.argv[1])
    atexit.register(lambda: (out / "atexit").write_text("ran"))

    def late():
        time.sleep(0.3)
        (out / "thread").write_text("finished")

    threading.Thread(target=late).start()  # not a daemon: an exit waits for it
    sys.stdout.write("x" * 200_000)  # no newline: left in the buffer
    leave(3)
    """
)


def test_leave_finishes_threads_runs_atexit_and_flushes(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LEAVER, str(tmp_path)],
        env=_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout == "x" * 200_000
    assert (tmp_path / "thread").read_text() == "finished"
    assert (tmp_path / "atexit").read_text() == "ran"


def test_no_fast_exit_when_asked_or_watched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAST_EXIT_ENV, raising=False)
    watched = sys.gettrace() is not None or sys.getprofile() is not None  # e.g. a coverage run
    assert fast_exit_allowed() is not watched
    monkeypatch.setenv(FAST_EXIT_ENV, "0")
    assert fast_exit_allowed() is False
    monkeypatch.delenv(FAST_EXIT_ENV)
    previous = sys.gettrace()
    sys.settrace(lambda *args: None)
    try:
        assert fast_exit_allowed() is False  # a tracer (debugger, coverage) sees a normal exit
    finally:
        sys.settrace(previous)
