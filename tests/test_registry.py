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
from tsm_core.cli.main import get_cli
from tsm_core.config import tsm_home
from tsm_core.errors import BadRowsError, CatalogError
from tsm_core.products.registry import Registry
from tsm_core.redshifts.registration import register_redshift_catalog


@pytest.fixture
def odd_catalog(scene, tmp_path) -> Path:
    """The scene's redshifts under DESI-like column names, as FITS."""
    from astropy.table import Table

    z = scene["redshifts"].rename(
        columns={
            "id": "TARGETID",
            "ra": "TARGET_RA",
            "dec": "TARGET_DEC",
            "z": "Z",
            "z_err": "ZERR",
            "z_flag": "QUALITY",
            "survey": "SURVEY",
        }
    )
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
    assert "desi-dr1\tofficial\t" in listed and "TARGET_RA" in listed
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


@pytest.mark.slow
def test_concurrent_processes_share_one_registry(base_config, tmp_path):
    configs = []
    for k in range(2):
        cfg = dict(base_config, name=f"parallel {k}")
        path = tmp_path / f"p{k}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        configs.append(path)
    env = dict(os.environ)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tsm_core", "-q", "run", str(p)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in configs
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    products = Registry.at_home(tsm_home()).products()
    assert sorted(p.id for p in products) == [1, 2] and {p.status for p in products} == {"done"}
    assert len({p.output_path for p in products}) == 2 and all(Path(p.output_path).exists() for p in products)


def _old_catalog_table(path: Path) -> None:
    """A registry file as an older TSM wrote it: catalog names unique over all owners."""
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE redshift_catalogs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, "
            "description TEXT NOT NULL DEFAULT '', path TEXT NOT NULL, columns TEXT NOT NULL, "
            "n_rows INTEGER NOT NULL, created_at TEXT NOT NULL, source_path TEXT, convention TEXT, "
            "dropped TEXT, owner TEXT)"
        )
        for row_id, name, owner in ((3, "desi", None), (7, "vvds", "alice"), (9, "gone", None)):
            db.execute(
                "INSERT INTO redshift_catalogs (id, name, path, columns, n_rows, created_at, owner) "
                "VALUES (?, ?, '/x', '{}', 1, 'then', ?)",
                (row_id, name, owner),
            )
        db.execute("DELETE FROM redshift_catalogs WHERE id = 9")  # its id must not be given again


def test_catalog_names_unique_per_owner_after_migration(tmp_path):
    import sqlite3

    path = tmp_path / "registry.sqlite"
    _old_catalog_table(path)
    registry = Registry(path)
    assert [(c.id, c.name, c.owner) for c in registry.redshift_catalogs()] == [(3, "desi", None), (7, "vvds", "alice")]
    with sqlite3.connect(path) as db:
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'redshift_catalogs'").fetchone()[0]
    assert "UNIQUE" not in sql
    alice_desi = registry.add_redshift_catalog("desi", "/a", {}, 1, owner="alice")
    bob_desi = registry.add_redshift_catalog("desi", "/b", {}, 1, owner="bob")
    bob_vvds = registry.add_redshift_catalog("vvds", "/c", {}, 1, owner="bob")
    assert alice_desi.id == 10  # after the removed 9: the sequence was kept
    with pytest.raises(Exception, match="registered already"):
        registry.add_redshift_catalog("desi", "/d", {}, 1, owner="alice")
    with pytest.raises(Exception, match="registered already"):
        registry.add_redshift_catalog("desi", "/d", {}, 1)
    # a user: own first, then the operator's; others' are unknown (by name and by id)
    assert registry.redshift_catalog("desi", visible_to="alice").id == alice_desi.id
    assert registry.redshift_catalog("desi", visible_to="carol").id == 3
    assert registry.redshift_catalog("vvds", visible_to="bob").id == bob_vvds.id
    for key in (bob_desi.id, str(bob_desi.id), "vvds"):
        with pytest.raises(CatalogError, match="no registered redshift catalog") as err:
            registry.redshift_catalog(key, visible_to="carol")
        assert "bob" not in str(err.value) and "alice" not in str(err.value)
    # the operator: the official one first, else the one of that name, else the choices
    assert registry.redshift_catalog("desi").id == 3
    with pytest.raises(CatalogError) as err:
        registry.redshift_catalog("vvds")
    assert "vvds (alice, id 7)" in str(err.value) and f"vvds (bob, id {bob_vvds.id})" in str(err.value)
    assert [c.id for c in registry.redshift_catalogs(visible_to="bob")] == [3, bob_desi.id, bob_vvds.id]


def test_ids_out_of_range_are_not_found(tmp_path):
    registry = Registry(tmp_path / "registry.sqlite")
    for key in (2**63, -(2**64), "99999999999999999999999"):
        with pytest.raises(CatalogError):
            registry.product(key)
        with pytest.raises(CatalogError):
            registry.redshift_catalog(key)
