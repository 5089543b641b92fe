"""Registered redshift catalogs and products: CLI, Python and concurrent processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import tsm_core
from tsm_core.redshift_catalogs import register_redshift_catalog
from tsm_core.cli import get_cli
from tsm_core.config import tsm_home
from tsm_core.errors import BadRowsError, CatalogError
from tsm_core.registry import Registry


@pytest.fixture
def odd_catalog(scene, tmp_path) -> Path:
    """The scene's redshifts under DESI-like column names, as FITS."""
    from astropy.table import Table

    z = scene["redshifts"].rename(columns={"id": "TARGETID", "ra": "TARGET_RA", "dec": "TARGET_DEC", "z": "Z",
                                           "z_err": "ZERR", "z_flag": "QUALITY", "survey": "SURVEY"})
    z["TARGETID"] = np.arange(len(z), dtype=np.int64) + 39627966220603924
    path = tmp_path / "desi.fits"
    Table.from_pandas(z).write(path)
    return path


COLUMNS = "id=TARGETID,ra=TARGET_RA,dec=TARGET_DEC,z=Z,z_err=ZERR,z_flag=QUALITY,survey=SURVEY"


def test_register_and_run_by_name_and_id(scene, base_config, odd_catalog):
    runner = CliRunner()
    out = runner.invoke(get_cli(), ["redshift", "register", "desi-dr1", str(odd_catalog), "--columns", COLUMNS])
    assert out.exit_code == 0, out.output
    assert f"registered 'desi-dr1' (id 1): {len(scene['redshifts'])} rows" in out.output
    listed = runner.invoke(get_cli(), ["redshift", "list"]).output
    assert "desi-dr1" in listed and "TARGET_RA" in listed
    base_config["redshift_catalog"] = {"name": "desi-dr1"}
    by_name = tsm_core.run(base_config)
    base_config["redshift_catalog"] = {"id": 1}
    by_id = tsm_core.run(base_config)
    assert by_name.n_rows == by_id.n_rows > 0 and by_name.product_id != by_id.product_id
    df = pd.read_parquet(by_id.output_path)
    assert df["id"].min() >= 39627966220603924 and df["id"].dtype == np.int64


def test_register_refuses_bad_rows(scene, tmp_path):
    z = scene["redshifts"].copy()
    z.loc[[5, 9], "z"] = np.nan
    path = tmp_path / "bad.csv"
    z.to_csv(path, index=False)
    with pytest.raises(BadRowsError, match=r"2 row\(s\) with non-finite z: rows 5, 9"):
        register_redshift_catalog("bad", path, bad_rows="fail")
    assert Registry.at_home(tsm_home()).redshift_catalogs() == []
    assert not any((tsm_home() / "redshift_catalogs").glob("*"))
    out = CliRunner().invoke(get_cli(), ["redshift", "register", "bad", str(path), "--bad-rows", "fail"])
    assert out.exit_code == 1 and out.output.count("\n") == 1 and "Traceback" not in out.output
    dropped = register_redshift_catalog("dropped", path)  # the default drops and counts them
    assert dropped.n_rows == len(z) - 2 and dropped.dropped == {"non-finite z": 2}


def test_register_missing_column_and_duplicate_name(scene, odd_catalog):
    with pytest.raises(CatalogError, match="missing required column\\(s\\) ra, dec, z"):
        register_redshift_catalog("x", odd_catalog)
    register_redshift_catalog("x", odd_catalog, {"ra": "TARGET_RA", "dec": "TARGET_DEC", "z": "Z"})
    with pytest.raises(tsm_core.TSMError, match="'x' is registered already"):
        register_redshift_catalog("x", odd_catalog, {"ra": "TARGET_RA", "dec": "TARGET_DEC", "z": "Z"})


def test_unknown_registered_name_lists_the_registered(base_config, odd_catalog):
    register_redshift_catalog("desi", odd_catalog, {"ra": "TARGET_RA", "dec": "TARGET_DEC", "z": "Z"})
    base_config["redshift_catalog"] = {"name": "sdss"}
    with pytest.raises(CatalogError, match=r"no registered redshift catalog 'sdss'; registered: desi \(id 1\)"):
        tsm_core.run(base_config)


def test_products_list_and_show(base_config, tmp_path):
    base_config["name"] = "Same Name"
    first = tsm_core.run(base_config)
    second = tsm_core.run(base_config)
    assert first.output_path != second.output_path  # the ID makes equal names distinct
    runner = CliRunner()
    listed = runner.invoke(get_cli(), ["products", "list"]).output.splitlines()
    assert listed[0].startswith(f"{second.product_id}\tSame Name\tdone") and len(listed) == 2
    shown = runner.invoke(get_cli(), ["products", "show", str(first.product_id)]).output
    config = yaml.safe_load(shown.split("config (re-run with `tsm run`):\n", 1)[1])
    (tmp_path / "again.yaml").write_text(yaml.safe_dump(config))
    again = runner.invoke(get_cli(), ["run", str(tmp_path / "again.yaml")])
    assert again.exit_code == 0, again.output
    assert runner.invoke(get_cli(), ["products", "list", "--search", "same"]).output.count("Same Name") == 3
    assert runner.invoke(get_cli(), ["products", "list", "--search", "other"]).output == ""


def test_concurrent_processes_share_one_registry(base_config, tmp_path):
    configs = []
    for k in range(2):
        cfg = dict(base_config, name=f"parallel {k}")
        path = tmp_path / f"p{k}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        configs.append(path)
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-m", "tsm_core", "-q", "run", str(p)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in configs]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    products = Registry.at_home(tsm_home()).products()
    assert sorted(p.id for p in products) == [1, 2] and {p.status for p in products} == {"done"}
    assert len({p.output_path for p in products}) == 2 and all(Path(p.output_path).exists() for p in products)
