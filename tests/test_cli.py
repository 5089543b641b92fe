"""The ``tsm`` command as a user types it."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from tsm_core.cli.main import get_cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _write(tmp_path, config) -> str:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_run_with_overrides(runner, base_config, tmp_path):
    path = _write(tmp_path, base_config)
    out = runner.invoke(
        get_cli(),
        ["run", path, "--set", "crossmatch.n_neighbors=2", "--set", "output.format=csv", "--set", "name=from the cli"],
    )
    assert out.exit_code == 0, out.output
    line = [l for l in out.output.splitlines() if l.startswith("Training set")][0]
    written = line.rsplit("-> ", 1)[1]
    assert written.endswith(".csv") and "from_the_cli_" in written
    df = pd.read_csv(written, comment="#")
    assert df.groupby("id").size().max() == 2


def test_errors_are_one_line_and_non_zero(runner, base_config, tmp_path):
    path = _write(tmp_path, base_config)
    out = runner.invoke(get_cli(), ["run", path, "--set", "object_catalog.flux_type=psfFlux"])
    assert out.exit_code == 1
    assert out.output.strip().splitlines() == [out.output.strip().splitlines()[0]] and out.output.startswith(
        "Error: object_catalog.flux_type: unknown flux type"
    )
    assert "cModel" in out.output and "Traceback" not in out.output
    debug = runner.invoke(get_cli(), ["--debug", "run", path, "--set", "object_catalog.flux_type=psfFlux"])
    assert debug.exit_code != 0 and debug.exception is not None


def test_bad_override_and_missing_file(runner, tmp_path, base_config):
    out = runner.invoke(get_cli(), ["run", _write(tmp_path, base_config), "--set", "radius"])
    assert out.exit_code == 1 and "key.sub=value" in out.output
    out = runner.invoke(get_cli(), ["run", str(tmp_path / "nope.yaml")])
    assert out.exit_code == 1 and "cannot read config file" in out.output


def test_listings(runner):
    cats = runner.invoke(get_cli(), ["catalogs"]).output
    assert "dp1:" in cats and "dp02:" in cats and "- cModel (default)" in cats and "- gaap1p0" in cats
    formats = runner.invoke(get_cli(), ["formats"]).output
    assert all(f"{f} (." in formats for f in ("parquet", "csv", "fits", "hdf5"))
    ders = runner.invoke(get_cli(), ["dereddeners"]).output
    assert "sfd:" in ders and "MISSING" in ders and "none: no dereddening" in ders


def test_dereddeners_show_present_files(runner, tmp_path):
    import dust_maps

    dust_maps.write_sfd(tmp_path)
    out = runner.invoke(get_cli(), ["dereddeners", "--dust-maps-dir", str(tmp_path)]).output
    assert [l for l in out.splitlines() if l.startswith("sfd:")][0].endswith("[files present]")


def test_sample_and_demo(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = runner.invoke(get_cli(), ["sample", "dp1", "--out", "s", "--objects", "2000", "--redshifts", "200"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "s" / "objects").is_dir() and (tmp_path / "s" / "redshifts.parquet").is_file()
    out = runner.invoke(get_cli(), ["demo", "--out", "demo", "--objects", "2000", "--redshifts", "200"])
    assert out.exit_code == 0, out.output
    assert "matched within 1 arcsec, median separation" in out.output and "200 redshifts" in out.output
    assert len(list((tmp_path / "demo").glob("demo_dp1_*.parquet"))) == 1


def test_dustmaps_fetch_rejects_non_maps(runner):
    out = runner.invoke(get_cli(), ["dustmaps", "fetch", "catalog"])
    assert out.exit_code == 1 and "no map files to fetch" in out.output
    out = runner.invoke(get_cli(), ["dustmaps", "fetch", "sdf"])
    assert out.exit_code == 1 and "installed choices: catalog, csfd, none, planck, planck_gnilc, sfd" in out.output
