"""Training sets from the real DESI DR1 and Combine Redshift Catalogs samples: conventions,
best redshifts, filters on any column, kept columns, registered snapshots and re-runs.

The object catalog is the real DP1 Object sample (its rows and values), placed at the
DESI redshifts' positions (the two samples do not overlap on the sky), written as HATS
with LSDB. Every expectation is computed here from the input files with pandas/astropy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

import tsm_core
from helpers import brute_force_match, write_objects
from tsm_core.cli.main import get_cli
from tsm_core.config import tsm_home
from tsm_core.errors import CatalogError, ConfigError
from tsm_core.products.registry import Registry
from tsm_core.redshifts.registration import register_redshift_catalog

RADIUS = 1.0
OBJECT_EXTRAS = ["refExtendedness", "tract", "patch", "detect_isIsolated", "detect_fromBlend"]


def _offset(ra, dec, arcsec, angle):
    dec2 = dec + arcsec / 3600 * np.sin(angle)
    return np.mod(ra + arcsec / 3600 * np.cos(angle) / np.cos(np.radians(dec2)), 360), dec2


@pytest.fixture(scope="module")
def field(reference, tmp_path_factory) -> dict:
    """DESI redshifts, a file of DESI rows grouped around single objects, and DP1 objects."""
    base = tmp_path_factory.mktemp("desi")
    rng = np.random.default_rng(11)
    desi = pd.read_parquet(reference / "desi_dr1_dp1_fields_sample.parquet")
    dp1 = pd.read_parquet(reference / "dp1_object_sample.parquet")
    objects = dp1.copy()
    # object i sits 0.1-0.4 arcsec from DESI redshift i
    objects["coord_ra"], objects["coord_dec"] = _offset(
        desi["TARGET_RA"].to_numpy(),
        desi["TARGET_DEC"].to_numpy(),
        rng.uniform(0.1, 0.4, len(desi)),
        rng.uniform(0, 2 * np.pi, len(desi)),
    )
    # groups of real DESI rows moved next to one new object each, far from the DESI fields
    good = desi[(desi["ZWARN"] == 0) & desi["ZCAT_PRIMARY"] & (desi["SPECTYPE"] == "GALAXY")]
    bad = desi[(desi["ZWARN"] != 0) & desi["ZCAT_PRIMARY"] & (desi["SPECTYPE"] != "STAR")]
    stars = desi[desi["SPECTYPE"] == "STAR"]
    bad = bad.sort_values("ZERR")  # the bad fits have the smallest errors: the flag must win
    groups, centres = [], []
    for g in range(12):
        ra0, dec0 = 200.0 + 0.05 * g, 30.0
        members = [bad.iloc[[g]], stars.iloc[[g]]] + ([good.iloc[[g]]] if g % 2 == 0 else [])
        rows = pd.concat(members)
        rows["TARGET_RA"], rows["TARGET_DEC"] = _offset(
            ra0, dec0, rng.uniform(0.1, 0.6, len(rows)), rng.uniform(0, 2 * np.pi, len(rows))
        )
        rows["group"] = g
        groups.append(rows)
        centres.append((ra0, dec0))
    grouped = pd.concat(groups, ignore_index=True)
    extra = dp1.iloc[: len(centres)].copy()
    extra["objectId"] = np.arange(len(centres), dtype=np.int64) + 7_000_000
    extra["coord_ra"] = [c[0] for c in centres]
    extra["coord_dec"] = [c[1] for c in centres]
    objects = pd.concat([objects, extra], ignore_index=True)
    objects["ebv"] = rng.uniform(0.01, 0.1, len(objects)).astype(np.float32)  # the DP1 sample has none
    write_objects(objects, base / "objects", margin_arcsec=5.0, partition_rows=300)
    desi_path = base / "desi.parquet"
    shutil.copy(reference / "desi_dr1_dp1_fields_sample.parquet", desi_path)
    grouped_path = base / "grouped.fits"
    from astropy.table import Table

    Table.from_pandas(grouped.drop(columns=["COEFF"])).write(grouped_path)
    return {
        "desi": desi,
        "dp1": dp1,
        "objects": objects,
        "grouped": grouped,
        "objects_path": base / "objects",
        "desi_path": desi_path,
        "grouped_path": grouped_path,
    }


def _config(field, tmp_path, **redshift) -> dict:
    return {
        "name": "desi set",
        "redshift_catalog": {"path": str(field["desi_path"]), **redshift},
        "object_catalog": {"release": "dp1", "path": str(field["objects_path"]), "extra_columns": OBJECT_EXTRAS},
        "crossmatch": {"radius_arcsec": RADIUS, "n_neighbors": 1},
        "output": {"format": "parquet", "directory": str(tmp_path / "out")},
        "compute": {"scheduler": "synchronous"},
    }


def _expected_pairs(field, redshift_mask=None, object_mask=None) -> pd.DataFrame:
    desi, objects = field["desi"], field["objects"]
    z = desi if redshift_mask is None else desi[redshift_mask]
    o = objects if object_mask is None else objects[object_mask]
    z = pd.DataFrame(
        {"id": z["TARGETID"].to_numpy(), "ra": z["TARGET_RA"].to_numpy(), "dec": z["TARGET_DEC"].to_numpy()}
    )
    return brute_force_match(z, o.reset_index(drop=True), RADIUS, 1)


def test_desi_run_keeps_columns_equal_to_the_inputs(field, tmp_path):
    result = tsm_core.run(_config(field, tmp_path))
    assert result.convention == "desi" and result.dropped == {}
    table = pq.read_table(result.output_path)
    got = table.to_pandas()
    expected = _expected_pairs(field)
    assert sorted(zip(got["id"], got["objectId"])) == sorted(zip(expected["id"], expected["objectId"]))
    # redshift columns, row by row, against the DESI file
    desi = field["desi"].set_index("TARGETID").loc[got["id"]]
    for col in ["SPECTYPE", "DELTACHI2", "ZCAT_PRIMARY", "ZCAT_NSPEC", "SURVEY", "PROGRAM", "SUBTYPE"]:
        assert got[col].tolist() == desi[col].tolist(), col
    assert got["z_flag_raw"].tolist() == desi["ZWARN"].tolist()
    np.testing.assert_array_equal(got["z"], desi["Z"])
    # object columns, row by row, against the DP1 sample
    dp1 = field["objects"].set_index("objectId").loc[got["objectId"]]
    for col in OBJECT_EXTRAS:
        np.testing.assert_array_equal(got[col].to_numpy(), dp1[col].to_numpy(), err_msg=col)
    assert b"point source" in table.schema.field("refExtendedness").metadata[b"description"]
    assert b"Redrock spectral type" in table.schema.field("SPECTYPE").metadata[b"description"]
    assert b"6 star" in table.schema.field("z_flag").metadata[b"description"]
    # provenance: in the Arrow schema metadata, in pandas attrs and in the registry
    prov = json.loads(table.schema.metadata[b"tsm.provenance"])
    assert prov["redshift_convention"] == "desi" and prov["redshift_rows"]["convention_detected"] is True
    assert prov["counts"]["rows"] == len(got) and prov["object_extra_columns"] == OBJECT_EXTRAS
    assert pd.read_parquet(result.output_path).attrs["provenance"]["redshift_convention"] == "desi"
    stored = Registry.at_home(tsm_home()).product(result.product_id).provenance
    assert stored["redshift_rows"]["rows_read"] == len(field["desi"])


def test_filters_on_spectype_and_an_object_flag(field, tmp_path):
    cfg = _config(field, tmp_path, keep_columns=[])
    cfg["filters"] = {"redshift": ["SPECTYPE == 'GALAXY'", "DELTACHI2 > 40"], "object": ["detect_isIsolated == True"]}
    result = tsm_core.run(cfg)
    got = pq.read_table(result.output_path).to_pandas()
    desi, objects = field["desi"], field["objects"]
    expected = _expected_pairs(
        field, (desi["SPECTYPE"] == "GALAXY") & (desi["DELTACHI2"] > 40), objects["detect_isIsolated"]
    )
    assert 0 < len(expected) < len(desi) // 2
    assert result.n_rows == len(got) == len(expected)
    assert sorted(zip(got["id"], got["objectId"])) == sorted(zip(expected["id"], expected["objectId"]))
    assert "SPECTYPE" not in got.columns  # filtered on, not kept


def test_best_redshift_ranks_the_homogenized_flag_and_never_picks_a_star(field, tmp_path):
    cfg = _config(field, tmp_path)
    cfg["redshift_catalog"] = {"path": str(field["grouped_path"])}
    cfg["unique_galaxies"] = "best_redshift"
    cfg["crossmatch"]["n_neighbors"] = 1
    result = tsm_core.run(cfg)
    got = pq.read_table(result.output_path).to_pandas()
    grouped = field["grouped"].set_index("TARGETID")
    assert len(got) == grouped["group"].nunique() and got["objectId"].is_unique
    for row in got.itertuples():
        group = grouped[grouped["group"] == grouped.at[row.id, "group"]]
        chosen = grouped.loc[row.id]
        assert chosen["SPECTYPE"] != "STAR"  # every group has a galaxy redshift
        if ((group["ZWARN"] == 0) & (group["SPECTYPE"] != "STAR")).any():
            assert chosen["ZWARN"] == 0  # ZWARN=0 wins over a ZWARN!=0 fit with a smaller ZERR
        else:
            assert chosen["ZWARN"] != 0


def test_crc_registers_and_runs(reference, tmp_path):
    record = register_redshift_catalog("crc", reference / "combined_redshift_sample.parquet")
    raw = pd.read_parquet(reference / "combined_redshift_sample.parquet")
    assert record.convention == "crc"
    assert record.dropped == {"non-finite z": int(raw["z"].isna().sum()), "z < -0.01": int((raw["z"] < -0.01).sum())}
    assert record.n_rows == int((raw["z"] >= -0.01).sum())
    import lsdb

    snapshot = lsdb.open_catalog(record.path).compute()  # stored as a HATS collection, read back by LSDB
    assert len(snapshot) == record.n_rows
    valid = raw[raw["z"] >= -0.01].set_index("CRD_ID")
    np.testing.assert_array_equal(snapshot["z_flag"], valid.loc[snapshot["id"], "z_flag_homogenized"])
    # a training set over the CRC rows in the DP1 fields: objects at those positions
    rows = valid[valid["is_in_DP1_fields"] == 1]
    dp1 = pd.read_parquet(reference / "dp1_object_sample.parquet").head(len(rows)).copy()
    dp1["coord_ra"], dp1["coord_dec"] = rows["ra"].to_numpy(), rows["dec"].to_numpy() + 0.2 / 3600
    write_objects(dp1, tmp_path / "objects", margin_arcsec=5.0)
    cfg = {
        "name": "crc set",
        "redshift_catalog": {"name": "crc", "keep_columns": "all"},
        "object_catalog": {"release": "dp1", "path": str(tmp_path / "objects")},
        "filters": {"redshift": ["z_flag >= 3", "z_flag != 6"]},
        "output": {"directory": str(tmp_path / "out")},
        "compute": {"scheduler": "synchronous"},
    }
    got = pq.read_table(tsm_core.run(cfg).output_path).to_pandas()
    good = rows[(rows["z_flag_homogenized"] >= 3) & (rows["z_flag_homogenized"] != 6)]
    assert sorted(got["id"]) == sorted(good.index)
    for col in ["survey", "source", "tie_result", "instrument_type_homogenized"]:
        assert got[col].tolist() == good.loc[got["id"], col].tolist(), col
    assert got["z_flag_raw"].tolist() == pytest.approx(good.loc[got["id"], "z_flag"].tolist(), nan_ok=True)
    assert got["id_raw"].tolist() == good.loc[got["id"], "id"].tolist()


def test_registered_snapshot_survives_the_file_and_products_rerun(field, tmp_path):
    moved = tmp_path / "mine.parquet"
    shutil.copy(field["desi_path"], moved)
    runner = CliRunner()
    out = runner.invoke(get_cli(), ["redshift", "register", "desi", str(moved)])
    assert out.exit_code == 0, out.output
    assert "1000 rows" in out.output and "convention desi" in out.output
    cfg = _config(field, tmp_path)
    cfg["redshift_catalog"] = {"name": "desi"}
    first = tsm_core.run(cfg)
    moved.unlink()
    again = runner.invoke(get_cli(), ["products", "rerun", str(first.product_id), "--set", "name=desi again"])
    assert again.exit_code == 0, again.output
    assert "redshift convention: desi" in again.output
    products = Registry.at_home(tsm_home()).products()
    rerun = products[0]
    assert rerun.id != first.product_id and rerun.name == "desi again" and rerun.status == "done"
    a = pd.read_parquet(first.output_path).sort_values("id").reset_index(drop=True)
    b = pd.read_parquet(rerun.output_path).sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    # show, list, remove
    shown = runner.invoke(get_cli(), ["redshift", "show", "desi"]).output
    assert f"source file: {moved}" in shown and "convention: desi" in shown and "SPECTYPE" in shown
    stored = Registry.at_home(tsm_home()).redshift_catalog("desi").path
    assert runner.invoke(get_cli(), ["redshift", "remove", "desi"]).exit_code == 0
    assert not Path(stored).exists() and Registry.at_home(tsm_home()).redshift_catalogs() == []
    with pytest.raises(CatalogError, match="no registered redshift catalog 'desi'"):
        tsm_core.rerun(first.product_id)


def test_registered_catalog_refuses_a_new_mapping(field, tmp_path):
    register_redshift_catalog("d", field["desi_path"])
    cfg = _config(field, tmp_path)
    cfg["redshift_catalog"] = {"name": "d", "columns": {"z": "Z"}}
    with pytest.raises(ConfigError, match="redshift_catalog.columns: applies when a catalog is read from its file"):
        tsm_core.run(cfg)


def test_cli_run_reports_dropped_rows_and_resolves_relative_paths(field, tmp_path):
    desi = field["desi"].copy()
    desi.loc[[3, 8], "TARGET_DEC"] = np.nan
    desi.loc[5, "Z"] = -3.0
    folder = tmp_path / "project"
    folder.mkdir()
    desi.to_parquet(folder / "desi.parquet")
    cfg = _config(field, tmp_path)
    cfg["redshift_catalog"] = {"path": "desi.parquet"}
    cfg["output"]["directory"] = "out"
    (folder / "set.yaml").write_text(yaml.safe_dump(cfg))
    out = CliRunner().invoke(get_cli(), ["run", str(folder / "set.yaml")])
    assert out.exit_code == 0, out.output
    assert (
        "dropped 2 rows with NaN or non-numeric ra/dec" in out.output and "dropped 1 rows with z < -0.01" in out.output
    )
    product = Registry.at_home(tsm_home()).products()[0]
    assert product.config["redshift_catalog"]["path"] == str(folder / "desi.parquet")
    assert product.config["output"]["directory"] == str(folder / "out")
    assert Path(product.output_path).parent == folder / "out"
    assert product.provenance["redshift_rows"]["rows_dropped"] == {"NaN or non-numeric ra/dec": 2, "z < -0.01": 1}
    expected = _expected_pairs(field, desi["TARGET_DEC"].notna() & (desi["Z"] >= -0.01))
    assert product.n_rows == len(expected)


def test_object_extra_columns_checked_before_reading(field, tmp_path):
    cfg = _config(field, tmp_path)
    cfg["object_catalog"]["extra_columns"] = ["refExtendedness", "notAColumn"]
    with pytest.raises(ConfigError, match="object_catalog.extra_columns: unknown column\\(s\\) notAColumn"):
        tsm_core.prepare(cfg)
    assert Registry.at_home(tsm_home()).products() == []


def test_overridden_extinction_coefficients_are_named(field, tmp_path):
    cfg = _config(field, tmp_path)
    cfg["object_catalog"].update(dereddening="catalog", extinction_coefficients={"i": 1.684}, extra_columns=[])
    prov = tsm_core.run(cfg).provenance
    assert prov["extinction_coefficients"]["i"] == 1.684 and prov["extinction_coefficients"]["g"] == 3.66056
    assert prov["extinction_source"].startswith(
        "object_catalog.extinction_coefficients (user-supplied) for i; u, g, r, z, y: rubin_sim"
    )


def test_registry_of_an_older_version_keeps_working(scene, base_config, tmp_path):
    """A registry made before snapshots: its catalogs point at the user's file, with a mapping."""
    import sqlite3

    z = scene["redshifts"].rename(columns={"ra": "RA", "dec": "DEC"})
    z.to_parquet(tmp_path / "old.parquet")
    home = tsm_home()
    home.mkdir(parents=True)
    with sqlite3.connect(home / "registry.sqlite") as db:
        db.execute(
            "CREATE TABLE redshift_catalogs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, "
            "description TEXT NOT NULL DEFAULT '', path TEXT NOT NULL, columns TEXT NOT NULL, "
            "n_rows INTEGER NOT NULL, created_at TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO redshift_catalogs (name, path, columns, n_rows, created_at) VALUES (?, ?, ?, ?, ?)",
            ("old", str(tmp_path / "old.parquet"), json.dumps({"ra": "RA", "dec": "DEC"}), len(z), "2025"),
        )
    record = Registry.at_home(home).redshift_catalog("old")
    assert record.source_path is None and record.dropped == {} and record.columns == {"ra": "RA", "dec": "DEC"}
    base_config["redshift_catalog"] = {"name": "old"}
    result = tsm_core.run(base_config)
    expected = brute_force_match(scene["redshifts"], scene["objects"], 3.0, 1)
    assert result.n_rows == len(expected) and result.convention == "canonical"
