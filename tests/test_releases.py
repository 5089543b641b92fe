"""The DP0.2 and DP1 providers on the real reference samples, and their sample generators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import tsm_core
from helpers import DP1_BANDS, ab_mag, brute_force_match, write_objects
from tsm_core import plugins


def test_both_releases_installed_with_flux_types():
    cats = plugins.object_catalogs()
    assert {"dp02", "dp1"} <= set(cats)
    for name in ("dp02", "dp1"):
        offered = plugins.flux_types(cats[name])
        assert {"cModel", "gaap1p0", "gaapOptimal", "psf", "calib", "kron", "gaap0p7", "gaap3p0"} <= set(offered)
        assert plugins.default_flux_type(cats[name]).name == "cModel"
        assert all(f.description for f in offered.values())
    assert "gaap0p5" in plugins.flux_types(cats["dp02"]) and "gaap0p5" not in plugins.flux_types(cats["dp1"])
    assert cats["dp1"].ebv_column == "ebv" and cats["dp02"].ebv_column is None
    assert cats["dp02"].default_filters == (("detect_isPrimary", "==", True),)


def _redshifts_near(objects: pd.DataFrame, rows: list[int], offset_arcsec: float = 0.2) -> pd.DataFrame:
    picked = objects.iloc[rows]
    return pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(len(rows))],
            "ra": picked["coord_ra"].to_numpy()
            + offset_arcsec / 3600 / np.cos(np.radians(picked["coord_dec"].to_numpy())),
            "dec": picked["coord_dec"].to_numpy(),
            "z": np.linspace(0.1, 1.0, len(rows)),
        }
    )


def test_dp02_reference_sample(reference, tmp_path):
    objects = pd.read_parquet(reference / "dp02_object_sample.parquet").reset_index()  # objectId is the index
    assert objects["objectId"].dtype == np.int64
    write_objects(objects, tmp_path / "dp02")
    primary = np.flatnonzero(objects["detect_isPrimary"].to_numpy())
    secondary = np.flatnonzero(~objects["detect_isPrimary"].to_numpy())
    assert len(secondary) > 0
    rows = list(primary[:40]) + list(secondary[:10])
    redshifts = _redshifts_near(objects, rows)
    redshifts.to_csv(tmp_path / "z.csv", index=False)
    result = tsm_core.run(
        {
            "name": "dp02 ref",
            "redshift_catalog": {"path": str(tmp_path / "z.csv")},
            "object_catalog": {"release": "dp02", "path": str(tmp_path / "dp02")},
            "crossmatch": {"radius_arcsec": 1.0},
            "output": {"directory": str(tmp_path / "out")},
        }
    )
    got = pq.read_table(result.output_path).to_pandas()
    expected = brute_force_match(redshifts, objects[objects["detect_isPrimary"]].reset_index(drop=True), 1.0, 1)
    assert sorted(got["objectId"]) == sorted(expected["objectId"])
    assert not set(got["objectId"]) & set(objects["objectId"].iloc[secondary])
    # magnitudes of a few rows by hand: 31.4 - 2.5 log10(flux in nJy)
    by_id = objects.set_index("objectId")
    for _, row in got.head(5).iterrows():
        for band in DP1_BANDS:
            flux = by_id.loc[row["objectId"], f"{band}_cModelFlux"]
            want = 31.4 - 2.5 * np.log10(flux) if flux > 0 else np.nan
            np.testing.assert_allclose(row[f"{band}_cModelMag"], want, atol=1e-9)


def test_dp02_has_no_catalog_ebv(tmp_path, base_config):
    base_config["object_catalog"] = {"release": "dp02", "dereddening": "catalog", "path": str(tmp_path)}
    with pytest.raises(tsm_core.TSMError, match="release 'dp02' has no E\\(B-V\\) column; choose a dust map"):
        tsm_core.run(base_config)


def test_dp1_reference_sample_with_desi_columns(reference, tmp_path):
    objects = pd.read_parquet(reference / "dp1_object_sample.parquet")
    assert objects["g_cModelFlux"].dtype == np.float32
    objects["ebv"] = np.float32(0.03)  # the sample lacks it; the real table has it
    write_objects(objects, tmp_path / "dp1")
    desi = pd.read_parquet(reference / "desi_dr1_dp1_fields_sample.parquet")
    # put a few DESI targets on top of DP1 objects so that real DESI rows match
    desi.loc[:19, "TARGET_RA"] = objects["coord_ra"].to_numpy()[:20] + 0.3 / 3600
    desi.loc[:19, "TARGET_DEC"] = objects["coord_dec"].to_numpy()[:20]
    path = tmp_path / "desi.parquet"
    desi.to_parquet(path)
    result = tsm_core.run(
        {
            "name": "desi x dp1",
            "redshift_catalog": {
                "path": str(path),
                "columns": {
                    "id": "TARGETID",
                    "ra": "TARGET_RA",
                    "dec": "TARGET_DEC",
                    "z": "Z",
                    "z_err": "ZERR",
                    "z_flag": "ZWARN",
                },
            },
            "object_catalog": {"release": "dp1", "path": str(tmp_path / "dp1"), "dereddening": "catalog"},
            "crossmatch": {"radius_arcsec": 1.0, "n_neighbors": 1},
            "output": {"directory": str(tmp_path / "out"), "format": "parquet"},
        }
    )
    got = pq.read_table(result.output_path).to_pandas()
    canon = desi.rename(columns={"TARGETID": "id", "TARGET_RA": "ra", "TARGET_DEC": "dec", "Z": "z"})
    expected = brute_force_match(canon, objects, 1.0, 1)
    assert len(expected) >= 20 and sorted(got["objectId"]) == sorted(expected["objectId"])
    merged = expected.merge(got, on=["id", "objectId"])
    flux = objects["r_cModelFlux"].to_numpy()[merged["oi"]]
    np.testing.assert_allclose(merged["r_cModelMag_dered"], ab_mag(flux) - 2.701367 * 0.03, atol=1e-6)
    assert got["id"].dtype == np.int64  # DESI TARGETIDs stay exact integers


@pytest.mark.parametrize("release", ["dp1", "dp2", "dp02"])
def test_generated_sample_round_trips(release, tmp_path, reference):
    import lsdb

    from tsm_core.catalogs.rubin.sample import make_sample, object_table, redshift_table

    cat = plugins.object_catalog(release)
    paths = make_sample(cat, tmp_path / release, n_objects=3000, n_redshifts=300, seed=5)
    objects = lsdb.open_catalog(paths["objects"], columns="all").compute()
    assert lsdb.open_catalog(paths["objects"]).margin is not None
    if release in ("dp1", "dp2"):  # laid out as published
        props = dict(
            line.split("=", 1)
            for line in (paths["objects"] / "collection.properties").read_text().splitlines()
            if "=" in line
        )
        assert props["hats_primary_table_url"] == "object_lc"
        assert props["default_margin"] == props["all_margins"] == "object_lc_5arcs"
        assert props["all_indexes"] == "objectId object_lc_objectId"
        assert {"object_lc", "object_lc_5arcs", "object_lc_objectId"} <= {p.name for p in paths["objects"].iterdir()}
        default = lsdb.open_catalog(paths["objects"]).columns
        assert "objectId" in default and not [c for c in default if "cModel" in c or c == "ebv"]
        assert lsdb.open_catalog(paths["objects"]).margin.hc_structure.catalog_info.margin_threshold == 5.0
        assert pd.api.types.is_bool_dtype(objects["i_pixelFlags_bad"]) and 0 < objects["i_pixelFlags_bad"].sum() < 200
    ref = pd.read_parquet(reference / f"{'dp1' if release == 'dp2' else release}_object_sample.parquet").reset_index()
    for column in ("objectId", "coord_ra", "coord_dec", "g_cModelFlux", "g_cModelFluxErr", "refExtendedness"):
        assert column in objects, column
        assert objects[column].to_numpy().dtype == ref[column].to_numpy().dtype, column
    # in the release's footprint
    for ra, dec in zip(objects["coord_ra"].to_numpy()[:200], objects["coord_dec"].to_numpy()[:200]):
        assert any(
            np.hypot((ra - f.ra) * np.cos(np.radians(dec)), dec - f.dec) <= f.radius_deg * 1.01
            for f in cat.sample.fields
        )
    flux = objects["i_cModelFlux"].to_numpy(dtype=float)
    assert (flux < 0).any() and np.isnan(objects["u_cModelFlux"].to_numpy(dtype=float)).any() or release != "dp1"
    if release != "dp02":
        assert objects["ebv"].std() > 0
    else:
        assert (~objects["detect_isPrimary"]).any()
    redshifts = pd.read_parquet(paths["redshifts"])
    assert list(redshifts.columns) == ["id", "ra", "dec", "z", "z_err", "z_flag", "survey"]
    matched = brute_force_match(redshifts, objects.reset_index(drop=True), 0.8, 1)
    assert 0.8 * len(redshifts) < matched["id"].nunique() < len(redshifts)
    # deterministic: the same arguments give the same tables again (generated afresh in memory:
    # writing them as a second HATS collection would only time LSDB twice)
    again, again_z = object_table(cat, 3000, seed=5)
    pd.testing.assert_frame_equal(redshift_table(cat, again, again_z, 300, seed=5), redshifts)
    written = objects.sort_values("objectId")
    again = again.sort_values("objectId")
    for column in ("objectId", "coord_ra", "coord_dec", "g_cModelFlux"):
        np.testing.assert_array_equal(written[column].to_numpy(dtype=again[column].dtype), again[column].to_numpy())


def test_object_path_from_environment(scene, base_config, monkeypatch):
    del base_config["object_catalog"]["path"]
    monkeypatch.setenv("TSM_DP1_PATH", str(scene["objects_path"]))
    result = tsm_core.run(base_config)
    assert result.provenance["object_catalog_path"] == str(scene["objects_path"])
    assert result.provenance["object_catalog_source"] == "env" and result.provenance["synthetic_sample"] is False
