"""The plugin manager as pluggy intends it: hooks through pm.hook, refused and broken
plugins reported without breaking the others, clashes naming both distributions, and
TSM_PLUGINS choosing what loads. Entry points are real: a distribution's metadata written
to a folder on the subprocess's PYTHONPATH, as pip would install it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tsm_core
from tsm_core import plugins
from tsm_core.errors import TSMError

TSM = str(Path(sys.executable).with_name("tsm"))


def _install(site: Path, dist: str, entry: str, module: str, code: str) -> None:
    """A minimal installed distribution with one entry point of group tsm."""
    info = site / f"{dist.replace('-', '_')}-0.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[tsm]\n{entry} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(code))


def _tsm(site: Path, *args: str, plugins_env: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(site))
    env.pop("TSM_PLUGINS", None)
    if plugins_env is not None:
        env["TSM_PLUGINS"] = plugins_env
    return subprocess.run([TSM, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    _install(site, "tsm-broken", "broken", "tsm_broken_plugin", "raise ImportError('needs libfoo 3')\n")
    _install(site, "tsm-misspelt", "misspelt", "tsm_misspelt_plugin", """
        import tsm_core

        @tsm_core.hookimpl
        def tsm_writer():
            return []
    """)
    return site


def test_broken_and_misspelt_plugins_reported_others_unaffected(site):
    listed = _tsm(site, "plugins")
    assert listed.returncode == 0, listed.stderr
    lines = {line.split(" ", 1)[0]: line for line in listed.stdout.splitlines()}
    assert "NOT LOADED: ImportError: needs libfoo 3" in lines["broken"] and "(tsm-broken 0.3)" in lines["broken"]
    assert "NOT LOADED: implements tsm_writer, which is no hook of tsm" in lines["misspelt"]
    assert lines["writers"].startswith("writers (tsm-writers ") and lines["writers"].endswith("tsm_writers")
    formats = _tsm(site, "formats")
    assert formats.returncode == 0 and "parquet (.parquet)" in formats.stdout
    assert "plugin 'broken' (tsm-broken) is left out" in formats.stderr


def test_tsm_plugins_chooses_what_loads(site):
    only = _tsm(site, "plugins", plugins_env="writers")
    names = [line.split(" ", 1)[0] for line in only.stdout.splitlines()]
    assert names == ["tsm_core.science.dust", "tsm_core.redshifts.conventions", "writers"]
    none = _tsm(site, "formats", plugins_env="none")
    assert none.returncode == 0 and none.stdout == ""


def test_misspelt_hook_refused_in_process():
    class Misspelt:
        @tsm_core.hookimpl
        def tsm_writer(self):
            return []

    with pytest.raises(TSMError, match="plugin 'oops' implements tsm_writer, which is no hook of tsm"):
        plugins.check_plugin(Misspelt(), "oops")
    assert plugins.get_plugin_manager().get_plugin("oops") is None


def test_implementation_with_fewer_arguments_than_its_spec():
    from tsm_core.plugins.records import FluxType

    class Extra:
        @tsm_core.hookimpl
        def tsm_flux_types(self):  # pluggy allows leaving out arguments of the spec
            return [FluxType("myflux", "a flux of my own")]

    pm = plugins.get_plugin_manager()
    pm.register(Extra(), name="extra")
    try:
        assert "myflux" in plugins.flux_types(plugins.object_catalog("dp1"))
    finally:
        pm.unregister(name="extra")


def test_clash_names_both_distributions():
    from tsm_writers.parquet import ParquetWriter

    class Twin:
        @tsm_core.hookimpl
        def tsm_writers(self):
            return [ParquetWriter()]

    pm = plugins.get_plugin_manager()
    pm.register(Twin(), name="twin")
    try:
        with pytest.raises(plugins.PluginClashError, match=r"output format 'parquet' is offered twice: by tsm-writers .*'writers'.* and by .*'twin'"):
            plugins.writers()
    finally:
        pm.unregister(name="twin")


def test_hook_wrappers_see_the_calls():
    seen = []

    class Tracer:
        @tsm_core.hookimpl(wrapper=True)
        def tsm_writers(self):
            result = yield
            seen.append(sum(len(r or ()) for r in result))
            return result

    pm = plugins.get_plugin_manager()
    pm.register(Tracer(), name="tracer")
    try:
        plugins.writers()
    finally:
        pm.unregister(name="tracer")
    assert seen and seen[0] >= 4


def test_versions_from_the_manager():
    versions = plugins.plugin_versions()
    assert set(versions) >= {"tsm-writers", "tsm-dp1", "tsm-dp02", "tsm-web"}
