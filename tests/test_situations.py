"""Situations of the machine (issue #29, item 5), each with real processes: a read-only
``TSM_HOME``, the registry removed during a run, two ``tsm serve`` on one home, a run under a
memory cap. Each fails in one line or works, and leaves a registry that SQLite finds sound."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shlex
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

import test_lifecycle
from helpers import multipart_csv, tsm_serve
from tsm_core.products.registry import Registry

GIB = 2**30
Run = test_lifecycle.Run  # a slow ``tsm run`` in its own process
slow_config = test_lifecycle.slow_config  # its config (a fixture)


def _sound(registry: Path) -> None:
    """The registry file passes SQLite's own check."""
    with sqlite3.connect(f"{registry.as_uri()}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def _tsm(home: Path, *args: str, cap: int | None = None, read_only: bool = False) -> subprocess.CompletedProcess:
    """``tsm ARGS`` in a new process with ``TSM_HOME=home``; ``cap`` an address-space limit
    (``RLIMIT_AS``, bytes); ``read_only`` with ``home`` mounted read-only (a bind mount in a
    user namespace as root, where permissions do not bind; a ``chmod`` otherwise)."""
    command = [sys.executable, "-m", "tsm_core", *args]
    env = dict(os.environ, TSM_HOME=str(home))
    limit = (lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap))) if cap else None
    if read_only and os.geteuid() == 0:
        mount = f"mount --bind {home} {home} && mount -o remount,bind,ro {home} && exec {shlex.join(command)}"
        command = ["unshare", "--map-root-user", "--mount", "sh", "-c", mount]
    elif read_only:
        home.chmod(0o555)
    try:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, preexec_fn=limit)
    finally:
        if read_only:
            home.chmod(0o755)


def _one_error_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and out.stderr.rstrip().endswith(errors[0]), out.stderr
    return errors[0]


def _config_file(config: dict, tmp_path: Path) -> str:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_a_read_only_home_is_refused_in_one_line_and_left_as_it_was(base_config, tmp_path, tsm_home):
    if os.geteuid() == 0 and subprocess.run(["unshare", "--map-root-user", "--mount", "true"]).returncode:
        pytest.skip("root without user namespaces: no read-only mount to test with")
    registry = Registry.at_home(tsm_home)
    registry.create_product("before", "", {"name": "before"})
    before = hashlib.sha256((tsm_home / "registry.sqlite").read_bytes()).hexdigest()

    for args in (("products", "list"), ("run", _config_file(base_config, tmp_path))):
        line = _one_error_line(_tsm(tsm_home, *args, read_only=True))
        assert line == (
            f"Error: TSM_HOME: {tsm_home} is read-only: the registry registry.sqlite needs a folder this "
            "process can write (make it writable, or set TSM_HOME to another folder)"
        )
    assert not Path(base_config["output"]["directory"]).exists()
    assert hashlib.sha256((tsm_home / "registry.sqlite").read_bytes()).hexdigest() == before
    _sound(tsm_home / "registry.sqlite")
    assert [p.name for p in registry.products()] == ["before"]  # writable again: as it was


def test_the_registry_removed_during_a_run_fails_it_in_one_line(slow_config, tmp_path, tsm_home):
    run = Run(slow_config, tmp_path, tsm_home)
    run.wait_for("writing")
    for path in tsm_home.glob("registry.sqlite*"):
        path.unlink()
    code, _, err = run.finish()
    assert code == 1 and "Traceback" not in err, err
    assert err.rstrip().splitlines()[-1] == (
        f"Error: TSM_HOME: the registry {tsm_home / 'registry.sqlite'} was removed while in use; what this "
        "process was doing is not recorded (the next command starts a new registry)"
    )
    assert not (tsm_home / "registry.sqlite").exists()  # not silently replaced by an empty one
    out = _tsm(tsm_home, "products", "list")
    assert out.returncode == 0 and out.stdout.strip() == "", out.stderr
    _sound(tsm_home / "registry.sqlite")


def _upload(url: str, name: str, csv: bytes) -> dict:
    body, content_type = multipart_csv(name, csv)
    request = urllib.request.Request(url + "/api/redshift-catalogs", body, {"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=120) as answer:
        assert answer.status == 201
        return json.load(answer)


def _names(url: str) -> list[str]:
    with urllib.request.urlopen(url + "/api/redshift-catalogs", timeout=60) as answer:
        return sorted(c["name"] for c in json.load(answer))


def test_two_servers_on_one_home_share_its_registry(scene, tsm_home):
    csv = scene["redshifts"].to_csv(index=False).encode()
    env = {"TSM_HOME": str(tsm_home)}
    with tsm_serve(env) as first:
        with tsm_serve(env) as second:
            _upload(first, "from-first", csv)
            _upload(second, "from-second", csv)
            assert _names(first) == _names(second) == ["from-first", "from-second"]
        assert _names(first) == ["from-first", "from-second"]  # the other's stop leaves it serving
    _sound(tsm_home / "registry.sqlite")
    stored = [Path(c.path) for c in Registry.at_home(tsm_home).redshift_catalogs()]
    assert len(stored) == 2 and all(p.exists() for p in stored)
    assert not list((tsm_home / "redshift_catalogs").glob(".*tmp*"))


def test_a_run_under_a_memory_cap_is_refused_or_works(base_config, tmp_path, tsm_home):
    config = _config_file(base_config, tmp_path)
    line = _one_error_line(_tsm(tsm_home, "run", config, cap=GIB))
    assert line == (
        "Error: the address-space limit of this process (ulimit -v) is 1.0 GiB; a run needs at least 1.5 GiB: "
        "raise the limit (or run where memory is not capped)"
    )
    assert Registry.at_home(tsm_home).products() == []  # refused before anything is recorded

    out = _tsm(tsm_home, "run", config, cap=3 * GIB)
    assert out.returncode == 0, out.stderr
    [product] = Registry.at_home(tsm_home).products()
    assert product.status == "done"
    assert len(pd.read_parquet(product.output_path)) == product.n_rows > 0
    _sound(tsm_home / "registry.sqlite")


def test_an_allocation_failure_is_one_line():
    from tsm_core.compute.memory import out_of_memory

    with pytest.raises(MemoryError) as failed:
        bytearray(2**62)  # more than any machine holds: a real allocation failure
    assert str(out_of_memory(failed.value)).startswith("out of memory")
    assert out_of_memory(ValueError("no")) is None
