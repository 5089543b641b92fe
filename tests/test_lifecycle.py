"""The job lifecycle with real processes and real signals: runs stopped by SIGTERM, SIGINT
(to the process group, as Ctrl-C) and SIGKILL leave no staging folder and no running
product; cancel and remove; the server stopping; two registries racing for one file."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

import tsm_core
from tsm_core.config import tsm_home
from tsm_core.errors import OutputError, TSMError
from tsm_core.products.registry import Registry

SLOW_TSM = Path(__file__).parent / "slow_tsm.py"


def _leftovers(directory: Path) -> list[str]:
    """Staging folders, claims and empty reservations left in ``directory``."""
    if not directory.exists():
        return []
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.name.startswith(".tsm-") or p.name.endswith(".tsm-claim") or (p.is_file() and p.stat().st_size == 0)
    )


class Run:
    """A ``tsm run`` (with the slow test writer) in its own process group."""

    def __init__(self, config: dict, tmp_path: Path, home: Path, *extra: str, delay: float = 0.3) -> None:
        path = tmp_path / f"{config['name'].replace(' ', '_')}.yaml"
        path.write_text(yaml.safe_dump(config))
        self.log = tmp_path / f"{path.stem}.log"
        env = dict(os.environ, TSM_HOME=str(home), TSM_TEST_WRITE_DELAY=str(delay))
        self.proc = subprocess.Popen(
            [sys.executable, str(SLOW_TSM), "run", str(path), *extra],
            env=env,
            stdout=subprocess.PIPE,
            stderr=open(self.log, "w"),
            text=True,
            start_new_session=True,
        )

    def wait_for(self, text: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_text():
                return
            assert self.proc.poll() is None, f"ended before {text!r}: {self.log.read_text()}"
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} in {self.log.read_text()}")

    def signal(self, signum: int, group: bool = False) -> float:
        if group:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)
        return time.monotonic()

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, self.log.read_text()


def _group(pgid: int) -> list[str]:
    """The processes still in process group ``pgid`` (zombies aside)."""
    out = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-g", str(pgid)], capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if line.split()[1:2] != ["Z"] and line.split()[1:2] != ["Z+"]]


@pytest.fixture
def slow_config(base_config: dict) -> dict:
    base_config["output"]["format"] = "slow-parquet"
    base_config["compute"] = {"scheduler": "threads", "n_workers": 2}
    return base_config


def _cli_products(home: Path) -> str:
    """``tsm products list`` in a new process (which recovers interrupted runs)."""
    out = subprocess.run(
        [sys.executable, "-m", "tsm_core", "products", "list"],
        env=dict(os.environ, TSM_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scheduler", "signum", "group", "moment", "status"),
    [
        ("threads", signal.SIGINT, True, "product ID", "cancelled"),
        ("threads", signal.SIGKILL, False, "writing", "failed"),
        ("processes", signal.SIGINT, True, "writing", "cancelled"),
        ("processes", signal.SIGTERM, False, "local Dask cluster", "failed"),
    ],
    ids=["threads-ctrlC-starting", "threads-SIGKILL-writing", "processes-ctrlC-writing", "processes-SIGTERM-computing"],
)
def test_signals_leave_nothing_behind(slow_config, tmp_path, tsm_home, scheduler, signum, group, moment, status):
    slow_config["compute"]["scheduler"] = scheduler
    if scheduler == "processes":
        slow_config["compute"]["n_workers"] = 1  # a worker process to leave behind is all it takes
    if signum == signal.SIGKILL:  # two outputs, two claims: recovery finds the second one too
        slow_config["output"]["unmatched"] = True
    run = Run(slow_config, tmp_path, tsm_home)
    run.wait_for(moment)
    sent = run.signal(signum, group)
    code, out, err = run.finish()
    stopped_in = time.monotonic() - sent
    out_dir = Path(slow_config["output"]["directory"])
    if signum == signal.SIGKILL:
        assert code == -signal.SIGKILL
        listing = _cli_products(tsm_home)  # the next registry opening cleans up
        assert "\tfailed\t" in listing and "interrupted: the process running it stopped" in listing, listing
    else:
        assert stopped_in < 20, f"took {stopped_in:.1f} s to stop"
        assert code == (130 if signum == signal.SIGINT else 143), err
        assert "Traceback" not in err and err.rstrip().endswith(
            "Error: " + ("cancelled by Ctrl-C (SIGINT)" if signum == signal.SIGINT else "interrupted by SIGTERM")
        ), err
    [product] = Registry.at_home(tsm_home).products()
    assert product.status == status and product.output_path is None, product
    assert _leftovers(out_dir) == [] and not list(out_dir.glob("*.parquet"))
    if scheduler == "processes":  # no worker process left behind
        deadline = time.monotonic() + 15
        while _group(run.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _group(run.proc.pid) == [], _group(run.proc.pid)
    if signum == signal.SIGKILL:  # and a re-run succeeds
        slow_config["output"]["format"] = "parquet"
        result = tsm_core.run(slow_config)
        assert result.n_rows > 0 and pq.read_table(result.output_path).num_rows == result.n_rows
        assert _leftovers(out_dir) == []


@pytest.mark.slow
def test_cancel_from_another_process(slow_config, tmp_path, tsm_home):
    from tsm_core.products.lifecycle import cancel_product

    run = Run(slow_config, tmp_path, tsm_home)
    run.wait_for("writing")
    registry = Registry.at_home(tsm_home)
    [product] = registry.products()
    assert product.status == "running" and product.pid == run.proc.pid
    stopped = cancel_product(registry, product.id, wait=30)
    code, _, err = run.finish()
    assert stopped.status == "cancelled" and "cancelled on request" in stopped.error, stopped
    assert code == 1 and "Error: cancelled on request" in err
    assert _leftovers(Path(slow_config["output"]["directory"])) == []
    with pytest.raises(TSMError, match="cancelled already; nothing to cancel"):
        cancel_product(registry, product.id)


def test_cancel_queued_and_remove(base_config):
    from tsm_core.products.lifecycle import cancel_product, remove_product

    registry = Registry.at_home(tsm_home())
    queued = registry.create_product("later", "", {}, status="queued")
    assert registry.product(queued).status == "queued"
    assert cancel_product(registry, queued).status == "cancelled"
    assert not registry.start_product(queued)  # a runner picking it up later does nothing

    done = tsm_core.run(base_config)
    running = registry.create_product("busy", "", {})
    with pytest.raises(TSMError, match="is running; cancel it first"):
        remove_product(registry, running)
    remove_product(registry, done.product_id)
    assert not done.output_path.exists()
    assert [p.id for p in registry.products()] == [running, queued]


def test_interrupted_runs_recovered_once_per_process(tmp_path, caplog):
    """A product whose process is gone (dead pid, or a pid reused by another process): found
    once per process and registry (the first listing or run), and on request, not whenever a
    registry is opened."""
    from click.testing import CliRunner

    from tsm_core.cli.main import get_cli
    from tsm_core.products.process import start_token
    from tsm_core.products.recovery import recover_interrupted, recover_once

    home = tsm_home()
    registry = Registry.at_home(home)
    staging = tmp_path / "out" / ".tsm-staging-abc"
    staging.mkdir(parents=True)
    (staging / "part.parquet").write_bytes(b"x" * 100)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = registry.create_product("gone", "", {})
    reused = registry.create_product("reused", "", {})
    registry.create_product("alive", "", {})  # this process: alive, left running
    with sqlite3.connect(registry.path) as db:
        db.execute("UPDATE products SET pid = ?, staging_path = ? WHERE id = ?", (dead.pid, str(staging), gone))
        # our own pid, but started at another time: a reused pid
        db.execute("UPDATE products SET start_token = ? WHERE id = ?", (start_token(os.getpid()) + "0", reused))
    again = Registry.at_home(home)
    assert {p.status for p in again.products()} == {"running"}  # opening a registry recovers nothing
    with caplog.at_level("WARNING", logger="tsm_core.products.recovery"):
        assert sorted(recover_once(again)) == [gone, reused]
    states = {p.name: (p.status, p.error) for p in again.products()}
    # users see no host or pid; the operator's log has them
    assert states["gone"] == ("failed", "interrupted: the process running it stopped")
    assert f"its process {dead.pid} on {socket.gethostname()} is gone" in caplog.text
    assert states["reused"][0] == "failed"
    assert states["alive"] == ("running", None)
    assert not staging.exists()
    # once per process: a later run that dies is found on request (tsm products recover)
    later = again.create_product("later", "", {})
    with sqlite3.connect(again.path) as db:
        db.execute("UPDATE products SET pid = ? WHERE id = ?", (dead.pid, later))
    assert recover_once(Registry.at_home(home)) == [] and again.product(later).status == "running"
    recovered = CliRunner().invoke(get_cli(), ["products", "recover"])
    assert recovered.exit_code == 0 and recovered.output.splitlines()[-1] == f"interrupted: {later}"
    assert again.product(later).error == "interrupted: the process running it stopped"
    assert recover_interrupted(again) == []


def test_products_list_marks_interrupted_runs(tmp_path):
    """What a user listing products sees: a run whose process is gone has failed."""
    from click.testing import CliRunner

    from tsm_core.cli.main import get_cli

    registry = Registry.at_home(tsm_home())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = registry.create_product("gone", "", {})
    with sqlite3.connect(registry.path) as db:
        db.execute("UPDATE products SET pid = ? WHERE id = ?", (dead.pid, gone))
    listing = CliRunner().invoke(get_cli(), ["products", "list"])
    assert listing.exit_code == 0
    assert (
        f"{gone}\tgone\tfailed\t" in listing.output and "interrupted: the process running it stopped" in listing.output
    )
    assert registry.product(gone).status == "failed"


def test_old_registry_migrated(tmp_path):
    path = tmp_path / "old" / "registry.sqlite"
    path.parent.mkdir()
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE products (
                id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
                status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')), config TEXT NOT NULL,
                n_rows INTEGER, output_path TEXT, error TEXT, provenance TEXT, progress REAL NOT NULL DEFAULT 0,
                created_at TEXT NOT NULL, finished_at TEXT);
            INSERT INTO products (name, status, config, n_rows, output_path, created_at)
                VALUES ('old done', 'done', '{}', 5, '/x/a.parquet', '2025-01-01');
            INSERT INTO products (name, status, config, created_at) VALUES ('old stuck', 'running', '{}', '2025-01-01');
            INSERT INTO products (name, status, config, created_at) VALUES ('removed', 'failed', '{}', '2025-01-01');
            DELETE FROM products WHERE name = 'removed';
        """)
    registry = Registry(path)
    states = {p.name: p.status for p in registry.products()}
    assert states == {"old done": "done", "old stuck": "failed"}
    new = registry.create_product("new", "", {}, status="queued")
    assert new == 4  # IDs of removed products are not given again
    assert registry.product(new).status == "queued"


def test_corrupt_registry_and_home_named(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from tsm_core.cli.main import get_cli

    home = tmp_path / "home"
    home.mkdir()
    (home / "registry.sqlite").write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("TSM_HOME", str(home))
    result = CliRunner().invoke(get_cli(), ["products", "list"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and f"the registry {home / 'registry.sqlite'} is unreadable" in result.output
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("TSM_HOME", str(blocker))
    result = CliRunner().invoke(get_cli(), ["products", "list"])
    assert result.exit_code == 1 and str(blocker) in result.output and result.output.count("\n") == 1, result.output


# -- output claims -------------------------------------------------------------------------
def test_claim_is_exclusive_and_released(tmp_path):
    from tsm_core.products.claims import claim_output, staged_file

    final = tmp_path / "set_1.parquet"
    claim = claim_output(final, overwrite=True)
    with pytest.raises(OutputError, match=f"{final} is taken: process {os.getpid()}"):
        claim_output(final, overwrite=True)
    claim.release()
    assert list(tmp_path.iterdir()) == []
    # a claim left by a process that is gone is taken over
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".set_1.parquet.tsm-claim").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid}))
    with staged_file(final) as staged:
        staged.write_text("new")
    assert final.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["set_1.parquet"]


def test_overwrite_replaces_atomically(base_config, tmp_path, monkeypatch):
    first = tsm_core.run(base_config)
    before = first.output_path.stat().st_ino
    monkeypatch.setenv("TSM_HOME", str(tmp_path / "other-home"))  # another registry: the same ID 1
    base_config["crossmatch"]["n_neighbors"] = 2
    with pytest.raises(OutputError, match="exists already"):
        tsm_core.run(base_config)
    base_config["output"]["overwrite"] = True
    monkeypatch.setenv("TSM_HOME", str(tmp_path / "third-home"))  # (the failed run took ID 1 in the other)
    second = tsm_core.run(base_config)
    assert second.output_path == first.output_path and second.output_path.stat().st_ino != before
    assert pq.read_table(second.output_path).num_rows == second.n_rows != first.n_rows
    assert _leftovers(first.output_path.parent) == []


@pytest.mark.slow
def test_two_registries_one_file(slow_config, tmp_path):
    """Two runs, different TSM_HOMEs, same name and folder: one wins, the other is told."""
    runs = []
    for k in (1, 2):
        cfg = json.loads(json.dumps(slow_config))
        cfg["crossmatch"]["n_neighbors"] = k  # different row counts, to tell the files apart
        (tmp_path / f"r{k}").mkdir()
        runs.append((Run(cfg, tmp_path / f"r{k}", tmp_path / f"home{k}", delay=0.1), tmp_path / f"home{k}"))
    results = [run.finish(timeout=240) for run, _ in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    winner = next(i for i, r in enumerate(results) if r[0] == 0)
    loser = 1 - winner
    assert "is taken" in results[loser][2] or "exists already" in results[loser][2], results[loser][2]
    [won] = Registry.at_home(runs[winner][1]).products()
    [lost] = Registry.at_home(runs[loser][1]).products()
    assert won.status == "done" and lost.status == "failed" and lost.output_path is None
    path = Path(won.output_path)
    assert pq.read_table(path).num_rows == won.n_rows
    assert (
        json.loads(pq.read_metadata(path).metadata[b"tsm.provenance"])["config"]["crossmatch"]["n_neighbors"]
        == winner + 1
    )
    assert _leftovers(path.parent) == []


# -- the web service ------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text else {}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class Server:
    def __init__(self, home: Path, tmp_path: Path, *options: str) -> None:
        self.port = _free_port()
        self.log = tmp_path / f"serve-{self.port}.log"
        env = dict(os.environ, TSM_HOME=str(home), TSM_TEST_WRITE_DELAY="0.5")
        env.pop("TSM_API_TOKEN", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(SLOW_TSM), "serve", "--port", str(self.port), "--runs", "1", *options],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "w"),
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                _http("GET", f"{self.url}/api/formats")
                return
            except OSError:
                assert self.proc.poll() is None, self.log.read_text()
                time.sleep(0.2)
        raise AssertionError("the server did not start")


@pytest.mark.slow
def test_server_stop_and_restart(scene, tmp_path, tsm_home):
    from tsm_core.redshifts.registration import register_redshift_catalog

    record = register_redshift_catalog("z", scene["redshift_path"])
    config = {
        "name": "web",
        "redshift_catalog": {"id": record.id},
        "object_catalog": {"release": "dp1"},
        "crossmatch": {"radius_arcsec": 3.0},
        "output": {"format": "slow-parquet"},
    }
    # the operator's choices: where dp1 is, and the compute every run uses
    operator = ("--release-path", f"dp1={scene['objects_path']}", "--scheduler", "threads", "--n-workers", "2")
    products_dir = tsm_home / "products"

    def submit_three(server: Server) -> list[int]:
        ids = []
        for _ in range(3):
            status, body = _http("POST", f"{server.url}/api/training-sets", config)
            assert status == 202, body
            ids.append(body["id"])
        deadline = time.monotonic() + 60
        while _http("GET", f"{server.url}/api/training-sets/{ids[0]}")[1]["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert _http("GET", f"{server.url}/api/training-sets/{ids[2]}")[1]["status"] == "queued"
        return ids

    # SIGKILL: the next server (any registry opening) finds the runs interrupted
    server = Server(tsm_home, tmp_path, *operator)
    killed = submit_three(server)
    time.sleep(1.0)
    server.proc.kill()
    server.proc.wait(timeout=30)
    server = Server(tsm_home, tmp_path, *operator)
    try:
        for product_id in killed:
            status, body = _http("GET", f"{server.url}/api/training-sets/{product_id}")
            assert body["status"] == "failed" and body["error"] == "interrupted: the process running it stopped", body
        assert _leftovers(products_dir) == []

        # SIGTERM: the server stops taking work, marks its runs interrupted and exits
        ids = submit_three(server)
        status, body = _http("POST", f"{server.url}/api/training-sets/{ids[2]}/cancel")  # a queued one
        assert status == 202 and body["status"] == "cancelled"
        assert _http("DELETE", f"{server.url}/api/training-sets/{ids[0]}")[0] == 409  # running: refused
        done = tsm_core.run(
            config
            | {
                "object_catalog": {"release": "dp1", "path": str(scene["objects_path"])},
                "output": {"format": "parquet", "directory": str(tmp_path / "done")},
            }
        )
        assert _http("DELETE", f"{server.url}/api/training-sets/{done.product_id}")[0] == 204
        assert not done.output_path.exists()
        assert _http("GET", f"{server.url}/api/training-sets/{done.product_id}")[0] == 404
    finally:
        sent = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=30)
    assert server.proc.returncode in (0, -signal.SIGTERM) and time.monotonic() - sent < 20  # uvicorn re-raises it
    states = {p.id: (p.status, p.error) for p in Registry.at_home(tsm_home).products()}
    assert states[ids[0]] == ("failed", "interrupted: the server stopped")
    assert states[ids[1]] == ("failed", "interrupted: the server stopped")
    assert states[ids[2]][0] == "cancelled"
    assert _leftovers(products_dir) == []
