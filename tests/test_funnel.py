"""The funnel of a run against an independent count on a scene built so that each step
removes a known number of redshifts (and, per survey, a number counted with pandas)."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.coordinates import SkyCoord
from click.testing import CliRunner

from helpers import DP1_BANDS, brute_force_match, select_unique, write_objects

RADIUS = 2.0
SPACING = 20.0 / 3600  # objects on a 20 arcsec grid: matches are never ambiguous


@pytest.fixture(scope="module")
def grid_scene(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Objects on a grid in one field; redshifts of every kind, with known numbers:

    * 30 on an object (0.3 arcsec away), 4 more on an object that already has one
      (0.6 arcsec away: removed by the ``closest`` rule),
    * 9 between objects (14 arcsec from any: no match),
    * 7 in another part of the sky (no object catalog partition there),
    * 10 more on other objects with ``z_flag = 1`` (removed by the filter ``z_flag >= 3``).

    So: 60 read, 10 filtered, 7 outside, 9 without a match, 4 removed as not unique, 30 written.
    """
    rng = np.random.default_rng(3)
    base = tmp_path_factory.mktemp("grid")
    ra0, dec0 = 30.0, -5.0
    gx, gy = np.meshgrid(np.arange(40), np.arange(40))
    odec = dec0 + gy.ravel() * SPACING
    ora = ra0 + gx.ravel() * SPACING / np.cos(np.radians(odec))
    n = len(ora)
    objects = pd.DataFrame({"objectId": np.arange(n, dtype=np.int64) + 10_000, "coord_ra": ora, "coord_dec": odec})
    for band in DP1_BANDS:
        objects[f"{band}_cModelFlux"] = rng.lognormal(np.log(3000), 0.8, n).astype(np.float32)
        objects[f"{band}_cModelFluxErr"] = np.full(n, 30, np.float32)
    objects["refExtendedness"] = np.where(np.arange(n) % 5 == 0, 0.0, 1.0).astype(np.float32)
    write_objects(objects, base / "objects", margin_arcsec=10.0, partition_rows=500)

    inner = np.flatnonzero((gx.ravel() > 3) & (gx.ravel() < 36) & (gy.ravel() > 3) & (gy.ravel() < 36))
    on, flagged = np.split(rng.choice(inner, 40, replace=False), [30])
    rows = []
    for i in on:  # matched
        rows.append((ora[i] + 0.3 / 3600 / np.cos(np.radians(odec[i])), odec[i]))
    for i in on[:4]:  # second redshift of an object: closest rule removes it
        rows.append((ora[i], odec[i] + 0.6 / 3600))
    for i in on[4:13]:  # between four objects: 14 arcsec from each
        rows.append((ora[i] + 0.5 * SPACING / np.cos(np.radians(odec[i])), odec[i] + 0.5 * SPACING))
    for k in range(7):  # far away
        rows.append((200.0 + k, 40.0))
    for i in flagged:  # on an object but of poor quality
        rows.append((ora[i], odec[i]))
    ra, dec = np.array(rows).T
    nz = len(ra)
    flags = np.full(nz, 4)
    flags[-len(flagged) :] = 1
    order = rng.permutation(nz)
    ra, dec, flags = ra[order], dec[order], flags[order]
    redshifts = pd.DataFrame(
        {
            "id": [f"s{i:03d}" for i in range(nz)],
            "ra": ra,
            "dec": dec,
            "z": rng.uniform(0.05, 1.5, nz).round(4),
            "z_err": np.full(nz, 1e-3),
            "z_flag": flags,
            "survey": rng.choice(["DESI", "VVDS", "2dFLenS"], nz),
        }
    )
    redshifts.to_parquet(base / "redshifts.parquet", index=False)
    return {
        "objects": objects,
        "redshifts": redshifts,
        "objects_path": base / "objects",
        "redshift_path": base / "redshifts.parquet",
    }


def _config(scene: dict, tmp_path: Path, **extra) -> dict:
    return {
        "name": "funnel",
        "redshift_catalog": {"path": str(scene["redshift_path"])},
        "object_catalog": {"release": "dp1", "path": str(scene["objects_path"])},
        "crossmatch": {"radius_arcsec": RADIUS},
        "filters": {"redshift": ["z_flag >= 3"]},
        "unique_galaxies": "closest",
        "split": {"train_fraction": 0.7, "seed": 5},
        "output": {"directory": str(tmp_path / "out")},
        "compute": {"scheduler": "synchronous"},
        **extra,
    }


def _by_survey(frame: pd.DataFrame) -> dict[str, int]:
    return {k: int(v) for k, v in frame["survey"].value_counts().items()}


def test_funnel_matches_an_independent_count(grid_scene, tmp_path):
    import tsm_core
    from tsm_core.pipeline.funnel import Funnel

    result = tsm_core.run(_config(grid_scene, tmp_path))
    funnel = Funnel.from_dict(result.funnel)
    z, objects = grid_scene["redshifts"], grid_scene["objects"]

    # the independent count: plain pandas and astropy
    kept = z[z["z_flag"] >= 3].reset_index(drop=True)
    near = (
        SkyCoord(kept["ra"], kept["dec"], unit="deg")
        .separation(SkyCoord(objects["coord_ra"].mean(), objects["coord_dec"].mean(), unit="deg"))
        .deg
        < 5
    )
    zc, oc = (
        SkyCoord(kept["ra"], kept["dec"], unit="deg"),
        SkyCoord(objects["coord_ra"], objects["coord_dec"], unit="deg"),
    )
    zi, _, _, _ = oc.search_around_sky(zc, RADIUS * u.arcsec)
    has_match = np.isin(np.arange(len(kept)), zi)
    pairs = brute_force_match(kept, objects, RADIUS, 1).merge(kept[["id", "survey"]], on="id")
    chosen = select_unique(pairs.to_dict("records"), "closest")
    written = pairs[[(a, b) in chosen for a, b in zip(pairs["id"], pairs["objectId"])]]

    expected = {
        "read": (len(z), _by_survey(z)),
        "filter:z_flag >= 3": (int((z["z_flag"] < 3).sum()), _by_survey(z[z["z_flag"] < 3])),
        "outside_coverage": (int((~near).sum()), _by_survey(kept[~near])),
        "no_match": (int((near & ~has_match).sum()), _by_survey(kept[near & ~has_match])),
        "written": (len(written), _by_survey(written)),
    }
    # the numbers the scene was built with
    assert [expected[k][0] for k in ("read", "filter:z_flag >= 3", "outside_coverage", "no_match", "written")] == [
        60,
        10,
        7,
        9,
        30,
    ]
    assert len(pairs) == 34
    for key, (count, surveys) in expected.items():
        step = funnel.step(key)
        assert step is not None, key
        assert step.count == count, key
        assert step.by_survey == surveys, key
    unique = [s for s in funnel.steps if s.key.startswith("unique:") and s.count]
    assert [s.count for s in unique] == [len(pairs) - len(written)] == [4]
    gone = pairs[~pairs.set_index(["id", "objectId"]).index.isin(written.set_index(["id", "objectId"]).index)]
    assert unique[0].by_survey == _by_survey(gone)
    assert funnel.step("written").remaining == len(z) - sum(s.count for s in funnel.steps if s.kind == "removed")

    # training / validation against the file read back with pandas
    out = pd.read_parquet(result.output_path)
    assert len(out) == result.n_rows == len(written)
    assert funnel.step("training").count == int(out["is_training"].sum())
    assert funnel.step("training").by_survey == _by_survey(out[out["is_training"]])
    assert funnel.step("validation").by_survey == _by_survey(out[~out["is_training"]])
    # stored with the product
    from tsm_core.config import tsm_home
    from tsm_core.products.registry import Registry

    product = Registry.at_home(tsm_home()).product(result.product_id)
    assert product.provenance["funnel"] == result.funnel
    assert funnel.step("object_cuts").kind == "not_counted"


def test_object_cuts_counted_with_representativeness(grid_scene, tmp_path):
    from tsm_core.cli.main import get_cli

    cfg = _config(grid_scene, tmp_path, representativeness={"sample_fraction": 0.5, "k": 5})
    cfg["filters"]["object"] = ["refExtendedness == 1", "g_cModelFlux / g_cModelFluxErr > 100"]
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = CliRunner().invoke(get_cli(), ["run", str(path)])
    assert out.exit_code == 0, out.output
    objects = grid_scene["objects"]
    extended = objects["refExtendedness"] == 1
    bright = objects["g_cModelFlux"] / objects["g_cModelFluxErr"] > 100
    assert 0 < (extended & ~bright).sum() < extended.sum()  # each filter removes some
    assert f"objects in the object catalog: {len(objects)}" in out.output
    assert f"objects removed by object filter refExtendedness == 1: {(~extended).sum()}" in out.output
    assert (
        f"objects removed by object filter g_cModelFlux / g_cModelFluxErr > 100: {(extended & ~bright).sum()}"
        in out.output
    )
    assert "of the photometric sample in SOM cells without a training object" in out.output


def test_release_cuts_in_the_filter_language():
    from tsm_core.science.representativeness import release_cut_filters

    frame = pd.DataFrame({"detect_isPrimary": [True, False, True], "band": ["g", "r", "z"]})
    primary, bands = release_cut_filters([("detect_isPrimary", "==", True), ("band", "in", ("g", "r"))])
    assert primary.mask(frame).tolist() == [True, False, True]
    assert bands.mask(frame).tolist() == [True, True, False]


def test_a_run_left_empty_says_where(grid_scene, tmp_path):
    from tsm_core.cli.main import get_cli

    cfg = _config(grid_scene, tmp_path, representativeness={"sample_fraction": 0.2})
    cfg["filters"]["redshift"] = ["z_flag >= 3", "z > 5"]
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = CliRunner().invoke(get_cli(), ["run", str(path)])
    assert out.exit_code == 0, out.output
    assert "0 rows" in out.output
    assert "no rows left after step 'redshift filter z > 5'" in out.output
    assert (
        "funnel: 60 redshifts read | -10 redshift filter z_flag >= 3 | -50 redshift filter z > 5 | 0 rows written"
        in out.output
    )
    product_id = out.output.split("Training set ")[1].split(":")[0]
    report = CliRunner().invoke(get_cli(), ["report", product_id])  # an empty set still has a report
    assert report.exit_code == 0, report.output


def test_bad_rows_and_coverage_units():
    from tsm_core.pipeline.funnel import Funnel, partition_index
    from tsm_core.redshifts.side import FilterTally

    frame = pd.DataFrame({"ra": [1.0, 2.0], "dec": [0.0, 0.0], "survey": ["A", "B"]})
    funnel = Funnel()
    tally = FilterTally([])
    tally.apply(frame)
    tally.record(funnel, {"non-finite z": 3, "ra outside [0, 360] deg": 1})
    assert [(s.key, s.count, s.remaining) for s in funnel.steps] == [
        ("read", 6, 6),
        ("bad_rows:non-finite z", 3, 3),
        ("bad_rows:ra outside [0, 360] deg", 1, 2),
    ]

    class Pixel:
        def __init__(self, order: int, pixel: int) -> None:
            self.order, self.pixel = order, pixel

    import healpy as hp

    ra = np.array([10.0, 10.0, 100.0])
    dec = np.array([5.0, 5.0, -40.0])
    parent = int(hp.ang2pix(2**3, 10.0, 5.0, nest=True, lonlat=True))
    deeper = int(hp.ang2pix(2**6, 100.0, -40.0, nest=True, lonlat=True))
    assert (partition_index([Pixel(3, parent), Pixel(6, deeper)], ra, dec) >= 0).tolist() == [True, True, True]
    assert (partition_index([Pixel(3, parent)], ra, dec) >= 0).tolist() == [True, True, False]


@pytest.mark.parametrize("lookup_order", [10, 0])  # a lookup table; a search over index ranges (orders > 10)
def test_partition_index_in_batches_matches_healpy(monkeypatch, lookup_order):
    """Positions are placed in batches (small temporary arrays); each gets the index of the
    partition that holds it, at whatever order, as healpy places it one pixel order at a time."""
    import healpy as hp
    from hats.pixel_math import HealpixPixel

    from tsm_core.pipeline import funnel
    from tsm_core.redshifts import partitioning

    monkeypatch.setattr(funnel, "PLACE_BATCH", 7)
    monkeypatch.setattr(partitioning, "LOOKUP_ORDER", lookup_order)
    rng = np.random.default_rng(3)
    ra, dec = rng.uniform(0, 60, 100), rng.uniform(-20, 20, 100)
    # order 2: the even pixels; order 5: a third of the children of the odd ones (no overlap)
    pixels = [HealpixPixel(2, p) for p in range(0, 192, 2)] + [
        HealpixPixel(5, q) for q in range(12288) if (q >> 6) % 2 and q % 3 == 1
    ]
    expected = np.full(100, -1)
    for i, pixel in enumerate(pixels):
        expected[hp.ang2pix(2**pixel.order, ra, dec, nest=True, lonlat=True) == pixel.pixel] = i
    assert (expected == -1).any() and (expected >= 96).any()
    assert (funnel.partition_index(pixels, ra, dec) == expected).all()


def test_partition_of_deep_pixels_leaves_positions_outside_them_out():
    """Partitions deeper than order 10 (a dense field): positions before the first, between
    and after them belong to none."""
    import healpy as hp
    from hats.pixel_math import HealpixPixel
    from hats.pixel_math.spatial_index import compute_spatial_index

    from tsm_core.redshifts.partitioning import partition_of

    rng = np.random.default_rng(8)
    ra, dec = rng.uniform(150.0, 150.02, 2000), rng.uniform(2.0, 2.02, 2000)
    cells = np.unique(hp.ang2pix(2**12, ra, dec, nest=True, lonlat=True))
    pixels = [HealpixPixel(12, int(c)) for c in cells[::2]]  # every other occupied order-12 cell
    ra, dec = np.concatenate([ra, [0.0, 359.9, 150.01]]), np.concatenate([dec, [-89.0, 89.0, -30.0]])
    expected = np.full(len(ra), -1)
    for i, pixel in enumerate(pixels):
        expected[hp.ang2pix(2**12, ra, dec, nest=True, lonlat=True) == pixel.pixel] = i
    assert (expected == -1).sum() > 500 and (expected >= 0).sum() > 500
    assert (partition_of(pixels, compute_spatial_index(ra, dec)) == expected).all()


def test_coverage_is_kept_compact():
    from tsm_core.pipeline.funnel import coarse_pixels

    class Pixel:
        def __init__(self, order: int, pixel: int) -> None:
            self.order, self.pixel = order, pixel

    deep = [Pixel(8, n) for n in range(4 * 4 * 300)]  # 4800 pixels of order 8 -> 300 of order 6
    assert coarse_pixels(deep + [Pixel(3, 700)], most=400) == [[3, 700]] + [[6, n] for n in range(300)]
