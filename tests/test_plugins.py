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
    _install(
        site,
        "tsm-misspelt",
        "misspelt",
        "tsm_misspelt_plugin",
        """
        import tsm_core

        @tsm_core.hookimpl
        def tsm_writer():
            return []
    """,
    )
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


def test_implementation_with_fewer_arguments_than_its_spec(registered_plugin):
    from tsm_core.plugins.records import FluxType

    class Extra:
        @tsm_core.hookimpl
        def tsm_flux_types(self):  # pluggy allows leaving out arguments of the spec
            return [FluxType("myflux", "a flux of my own")]

    registered_plugin(Extra(), "extra")
    assert "myflux" in plugins.flux_types(plugins.object_catalog("dp1"))


def test_clash_names_both_distributions(registered_plugin):
    from tsm_writers.parquet import ParquetWriter

    class Twin:
        @tsm_core.hookimpl
        def tsm_writers(self):
            return [ParquetWriter()]

    registered_plugin(Twin(), "twin")
    with pytest.raises(
        plugins.PluginClashError,
        match=r"output format 'parquet' is offered twice: by tsm-writers .*'writers'.* and by .*'twin'",
    ):
        plugins.writers()


def test_hook_wrappers_see_the_calls(registered_plugin):
    seen = []

    class Tracer:
        @tsm_core.hookimpl(wrapper=True)
        def tsm_writers(self):
            result = yield
            seen.append(sum(len(r or ()) for r in result))
            return result

    registered_plugin(Tracer(), "tracer")
    plugins.writers()
    assert seen and seen[0] >= 4


def test_versions_from_the_manager():
    versions = plugins.plugin_versions()
    assert set(versions) >= {"tsm-writers", "tsm-dp1", "tsm-dp02", "tsm-web"}


def test_every_hookspec_example_is_a_working_plugin(registered_plugin):
    """The example in each hook's docstring, registered as a plugin, offers what it says."""
    import textwrap
    import types

    import click
    import numpy as np

    from tsm_core.plugins import hookspecs

    for hook in plugins.hook_names():
        example = textwrap.dedent(getattr(hookspecs, hook).__doc__.split("::\n", 1)[1])
        module = types.ModuleType(f"example_{hook}")
        module.__dict__.update(tsm_core=tsm_core, click=click, np=np, MySink=None)
        exec(compile(example, f"<example of {hook}>", "exec"), module.__dict__)
        registered_plugin(module, f"example-{hook}")
    release = plugins.object_catalog("my_survey")
    assert release.bands == ("g", "r", "i") and plugins.default_flux_type(release).name == "cModel"
    assert plugins.dereddener("my_ebv").required_columns(release) == ["my_ebv"]
    assert plugins.writer("votable").extension == "xml"
    assert plugins.redshift_convention("sdss").columns["z_flag"] == "ZWARNING"
    cli = click.Group()
    plugins.get_plugin_manager().hook.tsm_register_commands(cli=cli)
    assert "hello" in cli.commands
