"""Bounded work for everything a client types (#24, item 1): filters whose constants are
huge integer powers, YAML alias bombs and oversized configs are refused at once, by the
library, by ``tsm run`` in a real process and by a real ``tsm serve``; a ``tsm run`` that
gets SIGTERM while planning stops within seconds and leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

import tsm_core
from helpers import register_csv, tsm_cli, tsm_serve
from tsm_core.config import MAX_YAML_BYTES, load_config, load_yaml
from tsm_core.errors import ConfigError
from tsm_core.products.registry import Registry
from tsm_core.science.filters import parse_filter

#: the filters of the issue (each would run Python's big integers for minutes), and the
#: first constant of each that overflows a float64 (9**9 = 387420489 and 10**10 do not)
HUGE_POWERS = [("object", "9**9**9**9 > 1", "9**9**9"), ("redshift", "(10 ** 10 ** 10) > z", "10 ** 10 ** 10")]


def _alias_bomb() -> str:
    """A "billion laughs" config: nine levels of nine aliases (9**9 strings once expanded), under 1 KB."""
    lines = ["name: bomb", 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    lines.append("filters: {object: *l8}")
    return "\n".join(lines) + "\n"


# ---- filters, in the library -------------------------------------------------------------


@pytest.mark.parametrize(("which", "expression", "overflowing"), HUGE_POWERS)
def test_huge_powers_refused_at_once_by_the_library(base_config, which, expression, overflowing):
    from tsm_core.pipeline.main import prepare

    started = time.perf_counter()
    with pytest.raises(ConfigError, match="not a finite 64-bit float"):
        parse_filter(expression, f"filters.{which}")
    assert time.perf_counter() - started < 0.05
    base_config["filters"] = {which: ["z >"]}
    with pytest.raises(ConfigError, match="not a valid expression"):
        prepare(base_config)  # imports and opens what planning needs, so that the next one is timed alone
    base_config["filters"] = {which: [expression]}
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        prepare(base_config)
    assert time.perf_counter() - started < 0.5
    assert caught.value.key == f"filters.{which}[0]"
    assert caught.value.message == f"{expression!r}: the constant {overflowing} is not a finite 64-bit float"


# ---- filters, through a real tsm serve ------------------------------------------------------


TOKEN = "bounded-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _post_json(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json", **AUTH}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _register_catalog(url: str, redshifts) -> int:
    return register_csv(url, AUTH, redshifts.to_csv(index=False).encode())["id"]


class Pinger:
    """A second client asking ``GET /api/formats`` in a loop; records each answer's latency."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                request = urllib.request.Request(self.url + "/api/formats", headers=AUTH)
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.status == 200 and json.loads(response.read())
                self.latencies.append(time.perf_counter() - started)
            except Exception as exc:  # noqa: BLE001 - a timeout is what the test looks for
                self.failures.append(repr(exc))
            time.sleep(0.02)

    def __enter__(self) -> Pinger:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_huge_powers_refused_by_a_real_server_that_keeps_answering(scene, tmp_path):
    env = {"TSM_HOME": str(tmp_path / "home"), "TSM_API_TOKEN": TOKEN}
    with tsm_serve(env, "--release-path", f"dp1={scene['objects_path']}") as url:
        catalog = _register_catalog(url, scene["redshifts"])
        with Pinger(url) as pinger:
            time.sleep(0.3)
            for which, expression, _ in HUGE_POWERS:
                started = time.perf_counter()
                status, body = _post_json(
                    url + "/api/training-sets",
                    {
                        "name": "power",
                        "redshift_catalog": {"id": catalog},
                        "object_catalog": {"release": "dp1"},
                        "filters": {which: [expression]},
                    },
                )
                took = time.perf_counter() - started
                assert status == 422 and body["field"] == f"filters.{which}[0]", body
                assert "not a finite 64-bit float" in body["message"]
                assert took < 1.0, f"answered in {took:.2f} s"
            time.sleep(0.3)
        assert pinger.failures == []
        assert len(pinger.latencies) >= 10 and max(pinger.latencies) < 1.0, pinger.latencies


# ---- YAML configs ---------------------------------------------------------------------------


def _peak_rss_of(command: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str, float, float]:
    """Run ``command`` from a fresh wrapper process that reports its child's peak RSS (MB):
    (exit code, stderr, seconds, peak MB)."""
    wrapper = textwrap.dedent("""
        import json, resource, subprocess, sys, time
        started = time.monotonic()
        done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
        print(json.dumps([done.returncode, done.stderr, time.monotonic() - started,
                          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))
    """)
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *command], env=env, capture_output=True, text=True, timeout=timeout
    )
    code, err, seconds, peak = json.loads(out.stdout)
    return code, err, seconds, peak


def test_alias_bomb_refused_by_tsm_run_in_one_line_with_bounded_memory(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_alias_bomb())
    assert bomb.stat().st_size < 1024
    env = dict(os.environ, TSM_HOME=str(tmp_path / "home"))
    code, err, seconds, peak_mb = _peak_rss_of([sys.executable, "-m", "tsm_core", "run", str(bomb)], env)
    assert code == 1
    assert err.splitlines() == [
        f"Error: {bomb}: YAML aliases expand beyond 10,000 nodes (aliases and merge keys may add at most that many)"
    ], err
    assert peak_mb < 500, f"peak RSS {peak_mb:.0f} MB"
    assert seconds < 30  # the interpreter and the plugins' imports; the refusal itself is immediate


def test_alias_bomb_refused_by_the_server_settings(tmp_path):
    from tsm_web.settings import ServerSettings

    bomb = tmp_path / "server.yaml"
    bomb.write_text(_alias_bomb().replace("name: bomb\n", ""))
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        ServerSettings.load(bomb)
    assert time.perf_counter() - started < 0.5
    assert caught.value.key == "--config" and "YAML aliases expand beyond" in str(caught.value)


def test_server_settings_still_read_a_plain_config(tmp_path):
    from tsm_web.settings import ServerSettings

    path = tmp_path / "server.yaml"
    path.write_text("max_runs: 3\nmax_upload_mb: 5\n")
    settings = ServerSettings.load(path)
    assert (settings.max_runs, settings.max_upload_mb) == (3, 5)
    path.write_text("max_runs: [3\n")
    with pytest.raises(ConfigError, match=r"^--config: .*server.yaml is not valid YAML: .*line 2, column 1"):
        ServerSettings.load(path)


def test_alias_bomb_in_a_set_override_refused():
    from tsm_core.config import apply_overrides

    value = "{" + ", ".join(_alias_bomb().splitlines()[1:10]) + "}"  # the bomb's levels as one flow mapping
    with pytest.raises(ConfigError, match=r"^filters.object: the value: YAML aliases expand beyond"):
        apply_overrides({}, [f"filters.object={value}"])


@pytest.mark.parametrize(
    "text",
    [
        "a: &a [*a]\n",  # an alias of its own parent: endless once expanded
        "base: &b {"
        + ", ".join(f"k{i}: {i}" for i in range(200))
        + "}\n"
        + "".join(f"m{i}: {{<<: *b}}\n" for i in range(60)),  # merge keys: 60 x 200 values
    ],
)
def test_recursive_aliases_and_merge_key_floods_refused(text):
    with pytest.raises(ConfigError, match="YAML aliases expand beyond"):
        load_yaml(text, "config.yaml")


def test_small_aliases_and_merge_keys_still_work():
    text = "defaults: &d {radius_arcsec: 2.0, n_neighbors: 1}\ncrossmatch:\n  <<: *d\n  radius_arcsec: 1.5\n"
    assert load_yaml(text, "config.yaml") == {
        "defaults": {"radius_arcsec": 2.0, "n_neighbors": 1},
        "crossmatch": {"radius_arcsec": 1.5, "n_neighbors": 1},
    }


def test_config_over_the_size_limit_refused_in_one_line(tmp_path, base_config):
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(base_config) + "# " + "x" * MAX_YAML_BYTES + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert str(caught.value) == f"{path} is over the limit of {MAX_YAML_BYTES:,} bytes"
    out = tsm_cli("run", str(path))
    assert out.returncode == 1 and out.stderr.splitlines() == [f"Error: {caught.value}"], out.stderr


def test_invalid_yaml_keeps_its_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nfilters: {object: [a > 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert "line 3, column 1" in str(caught.value) and "\n" not in str(caught.value)


# ---- SIGTERM while planning ----------------------------------------------------------------


def test_sigterm_while_planning_stops_within_seconds(base_config, tmp_path, tsm_home):
    """The redshift catalog is a named pipe that nobody writes: planning blocks reading it
    (as on a hung network file system) until SIGTERM."""
    fifo = tmp_path / "z.csv"
    os.mkfifo(fifo)
    base_config["redshift_catalog"] = {"path": str(fifo)}
    config = tmp_path / "plan.yaml"
    config.write_text(yaml.safe_dump(base_config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tsm_core", "run", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TSM_HOME=str(tsm_home)),
    )
    writer = None
    try:
        deadline = time.monotonic() + 60
        while writer is None:  # opening the writing end succeeds once the run has opened the pipe to read it
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.05)
        time.sleep(0.5)  # blocked in its read now
        assert proc.poll() is None
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        stopped_in = time.monotonic() - sent
    finally:
        if writer is not None:
            os.close(writer)
        if proc.poll() is None:
            proc.kill()
    assert stopped_in < 5, f"took {stopped_in:.1f} s"
    assert proc.returncode == 143 and err.splitlines()[-1] == "Error: interrupted by SIGTERM", err
    assert "Traceback" not in err
    assert Registry.at_home(tsm_home).products() == []  # nothing registered
    out_dir = Path(base_config["output"]["directory"])
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_too_many_filters_refused_in_one_line(base_config):
    from tsm_core.config import MAX_FILTERS

    base_config["filters"] = {"redshift": ["z > 0"] * (MAX_FILTERS + 1)}
    started = time.monotonic()
    with pytest.raises(ConfigError, match=rf"filters\.redshift.*at most {MAX_FILTERS} items"):
        tsm_core.prepare(base_config)
    assert time.monotonic() - started < 1


def test_long_yaml_numbers_refused_in_one_line():
    """A 5000-digit integer (over Python's conversion limit) and a long base-60 number (read in
    quadratic time) are refused before they are read, naming their line."""
    from tsm_core.config.files import MAX_YAML_NUMBER_CHARS

    for number in ("9" * 5000, ":".join(["1"] * 200_000)):
        started = time.monotonic()
        with pytest.raises(ConfigError, match=rf"number on line 2 is longer than {MAX_YAML_NUMBER_CHARS} characters"):
            load_yaml("name: x\nid: " + number + "\n", "config.yaml")
        assert time.monotonic() - started < 1
    assert load_yaml("a: 1:1:1.5\nb: 12345678901234567890", "config.yaml") == {"a": 3661.5, "b": 12345678901234567890}
