"""End to end: tsm_core.run against an independent brute-force astropy match."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import tsm_core
from helpers import DP1_BANDS, ab_mag, ab_mag_err, brute_force_match


def _read(path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


@pytest.mark.parametrize("n_neighbors", [1, 3])
def test_every_row_matches_brute_force(scene, base_config, n_neighbors):
    radius = 3.0
    base_config["crossmatch"] = {"radius_arcsec": radius, "n_neighbors": n_neighbors}
    result = tsm_core.run(base_config)
    got = _read(result.output_path)
    expected = brute_force_match(scene["redshifts"], scene["objects"], radius, n_neighbors)
    assert result.n_rows == len(got) == len(expected)
    # the scene crosses RA = 0/360 and has many partitions: matches on both sides exist
    assert (got["coord_ra"] > 359.9).any() and (got["coord_ra"] < 0.1).any()
    key = ["id", "objectId"]
    merged = expected.merge(got, on=key, how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"].head()
    np.testing.assert_allclose(merged["_dist_arcsec"], merged["dist"], atol=1e-6)
    objects = scene["objects"].iloc[merged["oi"]]
    for band in DP1_BANDS:
        flux = objects[f"{band}_cModelFlux"].to_numpy()
        err = objects[f"{band}_cModelFluxErr"].to_numpy()
        np.testing.assert_allclose(merged[f"{band}_cModelMag"], ab_mag(flux), rtol=0, atol=1e-9)
        np.testing.assert_allclose(merged[f"{band}_cModelMagErr"], ab_mag_err(flux, err), rtol=1e-12)
    # negative and NaN fluxes give NaN magnitudes
    assert merged["g_cModelMag"].isna().sum() == (~(objects["g_cModelFlux"].to_numpy() > 0)).sum() > 0


def test_output_columns_and_types(base_config):
    result = tsm_core.run(base_config)
    table = pq.read_table(result.output_path)
    names = table.column_names
    assert names[:11] == [
        "id",
        "ra",
        "dec",
        "z",
        "z_err",
        "z_flag",
        "survey",
        "objectId",
        "coord_ra",
        "coord_dec",
        "_dist_arcsec",
    ]
    assert [f"{b}_cModelMag" for b in DP1_BANDS] == [n for n in names if n.endswith("_cModelMag")]
    assert str(table.schema.field("objectId").type) == "int64"
    assert table.schema.field("g_cModelMag").metadata[b"unit"] == b"mag"
    assert result.output_path.name == f"test_set_{result.product_id}.parquet"


def test_fluxes_when_not_converted(scene, base_config):
    base_config["object_catalog"].update(convert_to_magnitudes=False, flux_type="gaap1p0")
    got = _read(tsm_core.run(base_config).output_path)
    exp = brute_force_match(scene["redshifts"], scene["objects"], 3.0, 1)
    merged = exp.merge(got, on=["id", "objectId"])
    objects = scene["objects"].iloc[merged["oi"]]
    np.testing.assert_array_equal(merged["r_gaap1p0Flux"], objects["r_gaap1p0Flux"].to_numpy(dtype=float))
    assert "r_gaap1p0FluxErr" in got and "r_gaap1p0Mag" not in got


def test_catalog_dereddening(scene, base_config):
    base_config["object_catalog"]["dereddening"] = "catalog"
    got = _read(tsm_core.run(base_config).output_path)
    merged = brute_force_match(scene["redshifts"], scene["objects"], 3.0, 1).merge(got, on=["id", "objectId"])
    objects = scene["objects"].iloc[merged["oi"]]
    ebv = objects["ebv"].to_numpy(dtype=float)
    # Rubin DP1 tutorial coefficient for i
    expected = ab_mag(objects["i_cModelFlux"].to_numpy()) - 2.053659 * ebv
    np.testing.assert_allclose(merged["i_cModelMag_dered"], expected, atol=1e-9)
    np.testing.assert_allclose(merged["ebv"], ebv)


def test_coefficients_overridable(scene, base_config):
    base_config["object_catalog"].update(dereddening="catalog", extinction_coefficients={"i": 1.684})
    got = _read(tsm_core.run(base_config).output_path)
    merged = brute_force_match(scene["redshifts"], scene["objects"], 3.0, 1).merge(got, on=["id", "objectId"])
    objects = scene["objects"].iloc[merged["oi"]]
    expected = ab_mag(objects["i_cModelFlux"].to_numpy()) - 1.684 * objects["ebv"].to_numpy(dtype=float)
    np.testing.assert_allclose(merged["i_cModelMag_dered"], expected, atol=1e-9)


def test_object_filters_pushed_and_general(scene, base_config):
    base_config["filters"] = {"object": ["refExtendedness == 1", "i_cModelFlux / i_cModelFluxErr > 5"]}
    got = _read(tsm_core.run(base_config).output_path)
    objects = scene["objects"]
    keep = (objects["refExtendedness"] == 1) & (objects["i_cModelFlux"] / objects["i_cModelFluxErr"] > 5)
    expected = brute_force_match(scene["redshifts"], objects[keep].reset_index(drop=True), 3.0, 1)
    assert sorted(zip(got["id"], got["objectId"])) == sorted(zip(expected["id"], expected["objectId"]))


def test_redshift_filter(scene, base_config):
    base_config["filters"] = {"redshift": ["z_flag >= 3"]}
    got = _read(tsm_core.run(base_config).output_path)
    z = scene["redshifts"]
    expected = brute_force_match(z[z["z_flag"] >= 3].reset_index(drop=True), scene["objects"], 3.0, 1)
    assert len(got) == len(expected) and (got["z_flag"] >= 3).all()


def test_result_registered(base_config):
    from tsm_core.config import tsm_home
    from tsm_core.products.registry import Registry

    result = tsm_core.run(base_config)
    product = Registry.at_home(tsm_home()).product(result.product_id)
    assert product.status == "done" and product.n_rows == result.n_rows
    assert product.output_path == str(result.output_path)
    assert product.provenance["counts"]["rows"] == result.n_rows


def test_margin_cache_kept_apart(scene, base_config):
    """A catalog and its margin cache given as two HATS catalogs (not a collection): the
    scene collection's own two catalogs, each opened by its folder."""
    import hats

    plain = scene["objects_path"] / "objects"
    [margin] = [p for p in scene["objects_path"].iterdir() if p.is_dir() and p.name != "objects"]
    assert hats.read_hats(plain).catalog_info.catalog_type == "object"
    assert hats.read_hats(margin).catalog_info.catalog_type == "margin"
    base_config["object_catalog"].update(path=str(plain), margin_path=str(margin))
    got = _read(tsm_core.run(base_config).output_path)
    expected = brute_force_match(scene["redshifts"], scene["objects"], 3.0, 1)
    assert sorted(zip(got["id"], got["objectId"])) == sorted(zip(expected["id"], expected["objectId"]))


def test_object_catalog_by_url(scene, base_config):
    """Paths go through fsspec/UPath: a file:// URL works as s3:// or https:// would."""
    base_config["object_catalog"]["path"] = scene["objects_path"].as_uri()
    got = _read(tsm_core.run(base_config).output_path)
    assert len(got) == len(brute_force_match(scene["redshifts"], scene["objects"], 3.0, 1))


def test_redshifts_outside_the_object_catalog(scene, base_config, tmp_path):
    """Redshifts in no partition of the object catalog: a finished run with 0 rows, told by
    the funnel, not an error."""
    far = scene["redshifts"].head(20).assign(ra=180.0, dec=60.0 + np.arange(20) * 1e-3)
    far.to_parquet(tmp_path / "far.parquet", index=False)
    base_config["redshift_catalog"] = {"path": str(tmp_path / "far.parquet")}
    result = tsm_core.run(base_config)
    assert result.n_rows == 0 and result.n_redshifts == 20
    assert _read(result.output_path).empty
