"""`tsm redshift register` and `tsm import` under real signals: real `tsm` processes killed
(SIGINT, SIGTERM, SIGKILL) while they stage their output; nothing is left behind (at once, or
when the next command starts), nothing is recorded, and a re-run succeeds (#29)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import tsm_cli
from tsm_core.products.registry import Registry
from tsm_core.products.staging import OWNER_FILE, PREFIX

TSM = [sys.executable, "-m", "tsm_core", "-q"]


def _redshifts(path: Path, n: int = 40_000) -> Path:
    rng = np.random.default_rng(29)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "ra": rng.uniform(0, 360, n),
            "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
            "z": rng.uniform(0, 3, n),
        }
    )
    frame.to_parquet(path)
    return path


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([*TSM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(folder: Path, pattern: str, proc: subprocess.Popen, timeout: float = 120) -> Path:
    """The first path matching ``pattern`` under ``folder`` once it exists (the process still running)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"{pattern} never appeared under {folder}")


def _dead_owner() -> dict:
    """The owner record of a real process that has ended."""
    import socket

    from tsm_core.products.process import start_token

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    token = start_token(proc.pid)
    proc.wait()
    return {"host": socket.gethostname(), "pid": proc.pid, "token": token}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "stage", "code"),
    [
        (signal.SIGTERM, f"{PREFIX}register-*", 143),  # as soon as the staging folder appears
        (signal.SIGINT, f"{PREFIX}register-*/store/*", 130),  # while the stored copy is written
        (signal.SIGKILL, f"{PREFIX}register-*/store/*", -9),
    ],
)
def test_register_killed_leaves_nothing_and_reruns(tmp_path, tsm_home, sig, stage, code):
    source = _redshifts(tmp_path / "z.parquet")
    store = tsm_home / "redshift_catalogs"
    proc = _start(["redshift", "register", "big", str(source)])
    _wait_for(store, stage, proc)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    if sig != signal.SIGKILL:
        assert err.strip().splitlines() == [f"Error: interrupted by {signal.Signals(sig).name}"]
        assert list(store.iterdir()) == []  # removed by the process itself
    else:
        assert [p.name[: len(PREFIX)] for p in store.iterdir()] == [PREFIX]  # what SIGKILL leaves
    assert Registry.at_home(tsm_home).redshift_catalogs() == []
    # the next commands run in this process: what they do is under test, not their process
    listed = tsm_cli("-q", "redshift", "list")
    assert listed.returncode == 0 and listed.stdout == "", listed.stderr
    assert list(store.iterdir()) == []  # the next `tsm redshift` swept what SIGKILL left
    again = tsm_cli("-q", "redshift", "register", "big", str(source))
    assert again.returncode == 0, again.stderr
    [record] = Registry.at_home(tsm_home).redshift_catalogs()
    assert record.n_rows == 40_000 and [p.name for p in store.iterdir()] == [Path(record.path).name]
    assert not (Path(record.path) / OWNER_FILE).exists()


def test_sweep_keeps_recorded_copies_and_live_owners(tmp_path, tsm_home):
    """A copy moved into place but not recorded when its process died is removed; a recorded
    one only loses its owner file; a staging folder of a live process stays."""
    from tsm_core.redshifts.registration import STORE_DIR, sweep_redshift_staging

    registry = Registry.at_home(tsm_home)
    store = tsm_home / STORE_DIR
    dead = _dead_owner()
    orphan, recorded, live = store / ("0" * 32), store / ("1" * 32), store / f"{PREFIX}register-live"
    for folder in (orphan, recorded, live):
        folder.mkdir(parents=True)
    for folder in (orphan, recorded):
        (folder / OWNER_FILE).write_text(json.dumps(dead))
    (live / OWNER_FILE).write_text(json.dumps({**dead, "pid": os.getpid(), "token": None}))
    registry.add_redshift_catalog("kept", str(recorded), {}, 1, source_path=str(tmp_path / "z.parquet"))
    assert sweep_redshift_staging(registry) == [orphan]
    assert sorted(p.name for p in store.iterdir()) == sorted([recorded.name, live.name])
    assert not (recorded / OWNER_FILE).exists()


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_import_killed_leaves_nothing_and_reruns(reference, tmp_path, sig, code):
    source = reference / "dp1_object_sample.parquet"
    out = tmp_path / "cats" / "mine"
    args = ["import", str(source), "--out", str(out), "--release", "dp1", "--chunk-rows", "1000", "--no-progress"]
    proc = _start(args)
    _wait_for(out.parent, f"{PREFIX}import-*/*", proc)  # hats-import is writing
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    if sig != signal.SIGKILL:
        # (a local Dask cluster stopped by the same signal may log its own shutdown after it)
        assert "Error: interrupted by SIGTERM" in err.strip().splitlines()
        assert list(out.parent.iterdir()) == []
    assert not out.exists()
    again = subprocess.run([*TSM, *args], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "1000 rows" in again.stdout and "%|" not in again.stderr  # --no-progress: no bar
    assert [p.name for p in out.parent.iterdir()] == ["mine"]  # the next import swept what SIGKILL left


def test_damaged_stored_catalog_fails_the_product_and_check_says_so(base_config, tmp_path, tsm_home):
    """A truncated partition of a registered catalog's stored copy: the run fails recorded,
    naming the catalog and how to register it again; `tsm redshift check` tells intact from damaged."""
    from click.testing import CliRunner

    import tsm_core
    from tsm_core.cli.main import get_cli
    from tsm_core.errors import CatalogError

    source = base_config["redshift_catalog"]["path"]
    expected = len(pd.read_parquet(source))
    cli = CliRunner()
    assert cli.invoke(get_cli(), ["redshift", "register", "mine", source]).exit_code == 0
    [record] = Registry.at_home(tsm_home).redshift_catalogs()
    intact = cli.invoke(get_cli(), ["redshift", "check", "mine"])
    assert intact.exit_code == 0, intact.output
    parts = sorted(Path(record.path).glob("redshifts/dataset/Norder=*/Dir=*/Npix=*.parquet"))
    assert intact.output.splitlines() == [
        f"'mine' (id {record.id}): intact, {expected} rows in {len(parts)} partitions"
    ]

    data = parts[0].read_bytes()
    parts[0].write_bytes(data[: len(data) // 2])  # truncated, as by a full disk or a bad copy
    damaged = cli.invoke(get_cli(), ["redshift", "check", "mine"])
    assert damaged.exit_code == 1
    [line] = damaged.output.strip().splitlines()
    assert line.startswith(
        f"Error: the stored copy of registered redshift catalog 'mine' (id {record.id}) is damaged ("
    )
    assert line.endswith(f"register it again: tsm redshift remove {record.id} && tsm redshift register mine {source}")

    config = {**base_config, "redshift_catalog": {"name": "mine"}}
    with pytest.raises(CatalogError, match=r"registered redshift catalog 'mine' \(id \d+\) is damaged") as caught:
        tsm_core.run(config)
    [product] = Registry.at_home(tsm_home).products()
    assert product.status == "failed" and product.error == str(caught.value)
    assert "register it again" in product.error and not list(Path(base_config["output"]["directory"]).glob("*"))
