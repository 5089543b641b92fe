"""Where DP1 and DP2 are read from: replicas of the published collections opened through
the releases' default and known locations (under $TSM_LOCATIONS_ROOT) and through
$TSM_DP1_PATH / $TSM_DP2_PATH; no synthetic data unless asked; cut sets; the margin."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

import tsm_core
from helpers import DP1_BANDS, brute_force_match
from tsm_core import plugins
from tsm_core.cli.main import get_cli

FLAGS = ("cModel_flag", "psfFlux_flag", "pixelFlags_bad", "pixelFlags_saturated", "pixelFlags_edge")


def _properties(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#")
    )


def _published_table(reference: Path, release: str) -> pd.DataFrame:
    """The real DP1 sample's rows and columns, with the columns of the published DP1/DP2
    collections that the sample lacks: PSF fluxes, ebv, flags (a few set), refFwhm."""
    objects = pd.read_parquet(reference / "dp1_object_sample.parquet").reset_index(drop=True)
    rng = np.random.default_rng(11)
    n = len(objects)
    if release == "dp2":  # move the rows into the DP2 field DDF COSMOS
        objects["coord_ra"] = objects["coord_ra"] - 37.6 + 150.1
        objects["coord_dec"] = objects["coord_dec"] - 7.7 + 2.1
        objects["objectId"] = objects["objectId"] + 2_000_000_000_000_000_000
    for band in DP1_BANDS:
        objects[f"{band}_psfFlux"] = (objects[f"{band}_cModelFlux"] * 0.6).astype(np.float32)
        objects[f"{band}_psfFluxErr"] = objects[f"{band}_cModelFluxErr"]
        objects[f"{band}_psfMag"] = np.float32(25.0)
        for flag in FLAGS:
            objects[f"{band}_{flag}"] = rng.uniform(0, 1, n) < 0.05
    objects["shape_flag"] = False
    objects["ebv"] = rng.uniform(0.01, 0.05, n).astype(np.float32)
    objects["refFwhm"] = np.float32(0.8)
    return objects


def write_replica(objects: pd.DataFrame, path: Path) -> None:
    """A collection laid out as DP1/DP2 are published: object_lc, object_lc_5arcs (5 arcsec),
    the objectId index object_lc_objectId, a hats_cols_default without cModel, gaap or ebv,
    and a nested objectForcedSource column, built with LSDB and nested-pandas."""
    import lsdb
    import nested_pandas as npd

    from tsm_core.catalogs.importer import write_index
    from tsm_core.compute import numba_cache
    from tsm_core.config import tsm_home

    numba_cache.enable(numba_cache.cache_dir(tsm_home()))  # the session's cache (conftest)
    rng = np.random.default_rng(3)
    k = rng.integers(1, 4, len(objects))
    sources = pd.DataFrame(
        {
            "midpointMjdTai": rng.uniform(60600, 60700, k.sum()),
            "psfFlux": rng.normal(1000, 30, k.sum()).astype(np.float32),
            "band": rng.choice(list(DP1_BANDS), k.sum()),
        },
        index=np.repeat(objects.index.to_numpy(), k),
    )
    nested = npd.NestedFrame(objects).join_nested(sources, "objectForcedSource")
    catalog = lsdb.from_dataframe(
        nested,
        ra_column="coord_ra",
        dec_column="coord_dec",
        catalog_name="object_lc",
        lowest_order=4,
        highest_order=9,
        partition_rows=250,
        margin_threshold=5.0,
    )
    default = [
        "objectId",
        "coord_ra",
        "coord_dec",
        "refExtendedness",
        "refFwhm",
        "objectForcedSource",
        *[f"{b}_psf{s}" for b in DP1_BANDS for s in ("Flux", "FluxErr", "Mag")],
    ]
    catalog.write_catalog(path, as_collection=True, overwrite=True, progress_bar=False, default_columns=default)
    write_index(path, "object_lc", "object_lc_objectId", "objectId")


@pytest.fixture(scope="module")
def replicas(reference, tmp_path_factory) -> dict:
    """DP1 and DP2 replicas at their Rubin Science Platform paths under a fake root."""
    root = tmp_path_factory.mktemp("root")
    out = {"root": root}
    for release in ("dp1", "dp2"):
        objects = _published_table(reference, release)
        path = root / "rubin" / "lsdb_data" / release / "object_collection"
        write_replica(objects, path)
        out[release] = {"objects": objects, "path": path}
    return out


def _redshifts(objects: pd.DataFrame, n: int = 300, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(objects), n, replace=False)
    dec = objects["coord_dec"].to_numpy()[rows] + rng.normal(0, 0.4 / 3600, n)
    ra = objects["coord_ra"].to_numpy()[rows] + rng.normal(0, 0.4 / 3600, n) / np.cos(np.radians(dec))
    return pd.DataFrame({"id": [f"z{i}" for i in range(n)], "ra": ra, "dec": dec, "z": rng.uniform(0.1, 1.5, n)})


def _config(tmp_path: Path, release: str, redshifts: pd.DataFrame, **object_catalog) -> dict:
    path = tmp_path / f"z_{release}.parquet"
    redshifts.to_parquet(path)
    return {
        "name": f"{release} set",
        "redshift_catalog": {"path": str(path)},
        "object_catalog": {"release": release, **object_catalog},
        "crossmatch": {"radius_arcsec": 1.0},
        "output": {"directory": str(tmp_path / "out")},
        "compute": {"scheduler": "synchronous"},
    }


def test_replica_is_laid_out_as_published(replicas):
    import hats
    import lsdb

    path = replicas["dp1"]["path"]
    props = _properties(path / "collection.properties")
    assert props["hats_primary_table_url"] == "object_lc"
    assert props["all_margins"] == props["default_margin"] == "object_lc_5arcs"
    assert props["all_indexes"] == "objectId object_lc_objectId"
    default = lsdb.open_catalog(path).columns
    assert "objectForcedSource" in default and not [c for c in default if "cModel" in c or c == "ebv"]
    # the index finds the partition of an id, read back by plain pyarrow
    objects = replicas["dp1"]["objects"]
    index = hats.read_hats(path / "object_lc_objectId")
    some = objects["objectId"].to_numpy()[[0, 500, 999]]
    main = hats.read_hats(path / "object_lc")
    found = set()
    for pixel in index.loc_partitions(list(some)):
        file = hats.io.paths.pixel_catalog_file(main.catalog_base_dir, pixel)
        found |= set(pq.read_table(file, columns=["objectId"]).column(0).to_pylist())
    assert set(some) <= found


@pytest.mark.parametrize("release", ["dp1", "dp2"])
def test_default_location_then_environment(release, replicas, tmp_path, monkeypatch):
    objects, path = replicas[release]["objects"], replicas[release]["path"]
    redshifts = _redshifts(objects)
    expected = brute_force_match(redshifts, objects, 1.0, 1)
    # ebv is not among the collection's default columns: the run must ask for it
    config = _config(tmp_path, release, redshifts, dereddening="catalog")

    monkeypatch.setenv("TSM_LOCATIONS_ROOT", str(replicas["root"]))
    result = tsm_core.run(config)
    assert result.provenance["object_catalog_path"] == str(path)
    assert result.provenance["object_catalog_source"] == "default" and result.provenance["synthetic_sample"] is False
    got = pq.read_table(result.output_path).to_pandas()
    assert sorted(zip(got["id"], got["objectId"])) == sorted(zip(expected["id"], expected["objectId"]))
    assert len(expected) >= 250
    merged = expected.merge(got, on=["id", "objectId"])
    ebv = objects["ebv"].to_numpy(dtype=float)[merged["oi"]]
    flux = objects["r_cModelFlux"].to_numpy(dtype=float)[merged["oi"]]
    with np.errstate(invalid="ignore", divide="ignore"):
        want = 31.4 - 2.5 * np.log10(np.where(flux > 0, flux, np.nan)) - 2.701367 * ebv
    np.testing.assert_allclose(merged["r_cModelMag_dered"], want, atol=1e-4)

    # the environment variable wins over the default location
    monkeypatch.setenv("TSM_LOCATIONS_ROOT", str(tmp_path / "empty"))
    monkeypatch.setenv(f"TSM_{release.upper()}_PATH", str(path))
    again = tsm_core.run(config | {"output": {"directory": str(tmp_path / "env")}})
    assert again.provenance["object_catalog_source"] == "env"
    got = pq.read_table(again.output_path).to_pandas()
    assert sorted(got["objectId"]) == sorted(expected["objectId"])


def test_known_locations_in_order(replicas, tmp_path, monkeypatch):
    import shutil

    cat = plugins.object_catalog("dp1")
    monkeypatch.setenv("TSM_LOCATIONS_ROOT", str(tmp_path))
    canfar = tmp_path / "arc/projects/hats/lsst/dp1/object_collection"
    old = tmp_path / "rubin/lsdb_data/object_collection"
    for place in (canfar, old):
        shutil.copytree(replicas["dp1"]["path"], place)
    found = cat.locate(None, tmp_path / "home")
    assert (found.path, found.source, found.site) == (str(canfar), "known", "CANFAR")
    assert cat.available(tmp_path / "home") == found and not found.synthetic
    assert found.tried == (
        str(tmp_path / "rubin/lsdb_data/dp1/object_collection"),
        str(tmp_path / "global/cfs/cdirs/lsst/shared/rubin/DP1/HATS/dp1_full/hats/v29_0_0/object_collection"),
        str(canfar),
    )
    shutil.rmtree(canfar)
    assert cat.locate(None, tmp_path / "home").path == str(old)
    out = CliRunner().invoke(get_cli(), ["catalogs"]).output
    assert f"catalog: {old} (known, Rubin Science Platform, before DP2)" in out
    assert "cut set recommended (filters.preset): refExtendedness == 1;" in out


def test_no_catalog_fails_listing_the_places_tried(tmp_path, reference):
    config = _config(tmp_path, "dp1", _redshifts(pd.read_parquet(reference / "dp1_object_sample.parquet")))
    with pytest.raises(tsm_core.TSMError) as err:
        tsm_core.run(config)
    message = str(err.value)
    for place in (
        "rubin/lsdb_data/dp1/object_collection",
        "/arc/projects/hats/lsst/dp1/object_collection",
        "DP1/HATS/dp1_full/hats/v29_0_0/object_collection",
        "rubin/lsdb_data/object_collection",
    ):
        assert place in message
    assert "$TSM_DP1_PATH" in message and "tsm sample dp1" in message and "object_catalog.path: sample" in message
    # nothing synthetic was used or built behind the user's back
    assert not (Path(tsm_core.config.tsm_home()) / "samples").exists()
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    out = CliRunner().invoke(get_cli(), ["run", str(tmp_path / "run.yaml")])
    assert out.exit_code == 1 and out.output.count("\n") == 1 and "no dp1 object catalog found (tried" in out.output
    # asking for the sample before it is built says how to build it
    config["object_catalog"]["path"] = "sample"
    with pytest.raises(tsm_core.TSMError, match="sample is not built yet: run `tsm sample dp1`"):
        tsm_core.run(config)


def test_run_on_the_sample_only_when_asked_and_it_says_so(tmp_path):
    from tsm_core.catalogs.rubin.sample import make_sample

    cat = plugins.object_catalog("dp2")
    home = tsm_core.config.tsm_home()
    assert cat.available(home) is None  # what a form shows: no catalog, no sample
    paths = make_sample(cat, cat.sample_dir(tsm_core.config.tsm_home()), n_objects=1500, n_redshifts=150)
    config = _config(tmp_path, "dp2", pd.read_parquet(paths["redshifts"]))
    with pytest.raises(tsm_core.TSMError, match="no dp2 object catalog found"):
        tsm_core.run(config)  # built, but not asked for
    backing = cat.available(home)
    assert (backing.source, backing.synthetic, backing.path) == ("sample", True, str(paths["objects"]))
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    out = CliRunner().invoke(get_cli(), ["run", str(tmp_path / "run.yaml"), "--sample", "--set", "output.format=fits"])
    assert out.exit_code == 0, out.output
    from astropy.io import fits

    from tsm_core.products.registry import Registry

    product = Registry.at_home(tsm_core.config.tsm_home()).products()[0]
    assert product.status == "done" and product.provenance["synthetic_sample"] is True
    assert product.provenance["object_catalog_source"] == "sample"
    with fits.open(product.output_path) as hdul:
        written = json.loads(bytes(hdul["PROVENANCE"].data).decode())
    assert written["synthetic_sample"] is True
    # a sample given by path is recognised as synthetic too
    config["object_catalog"]["path"] = str(paths["objects"])
    result = tsm_core.run(config)
    assert result.provenance["synthetic_sample"] is True and result.provenance["object_catalog_source"] == "config"


def test_recommended_cuts(replicas, tmp_path, monkeypatch):
    monkeypatch.setenv("TSM_LOCATIONS_ROOT", str(replicas["root"]))
    objects = replicas["dp1"]["objects"]
    redshifts = _redshifts(objects, n=600, seed=4)
    config = _config(tmp_path, "dp1", redshifts, bands=["g", "r", "i"])
    config["filters"] = {"preset": "recommended"}
    result = tsm_core.run(config)
    got = pq.read_table(result.output_path).to_pandas()
    # the same cuts in plain pandas
    keep = objects["refExtendedness"].to_numpy() == 1
    for band in ("g", "r", "i"):
        for flag in ("cModel_flag", "pixelFlags_bad", "pixelFlags_saturated", "pixelFlags_edge"):
            keep &= ~objects[f"{band}_{flag}"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        keep &= (objects["i_cModelFlux"] / objects["i_cModelFluxErr"]).to_numpy() >= 5
    expected = brute_force_match(redshifts, objects[keep].reset_index(drop=True), 1.0, 1)
    assert 0 < len(expected) < len(brute_force_match(redshifts, objects, 1.0, 1))
    assert sorted(got["objectId"]) == sorted(expected["objectId"])
    config["filters"] = {"preset": "strict"}
    with pytest.raises(
        tsm_core.TSMError, match="filters.preset: unknown cut set of dp1 'strict'; installed choices: recommended"
    ):
        tsm_core.run(config)


def test_radius_over_the_collection_margin_is_refused(replicas, tmp_path, monkeypatch):
    monkeypatch.setenv("TSM_DP2_PATH", str(replicas["dp2"]["path"]))
    config = _config(tmp_path, "dp2", _redshifts(replicas["dp2"]["objects"], n=20))
    config["crossmatch"]["radius_arcsec"] = 6.0
    with pytest.raises(
        tsm_core.TSMError,
        match=r"crossmatch.radius_arcsec: 6.0 arcsec is larger than the object catalog's margin of 5.0 arcsec",
    ):
        tsm_core.run(config)
