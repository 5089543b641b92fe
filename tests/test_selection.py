"""Unique galaxies, the training split and quality cuts, against plain-loop selections."""

from __future__ import annotations

import astropy.units as u
import healpy as hp
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord

import tsm_core
from helpers import brute_force_match, second_measurements, select_unique, write_objects


@pytest.fixture(scope="module")
def duplicated(scene, tmp_path_factory):
    """The scene's redshifts plus second measurements of 80 of them, 0.2-0.8 arcsec away."""
    rng = np.random.default_rng(3)
    z = scene["redshifts"]
    twins = second_measurements(z, 80, seed=1)
    twins["z_flag"] = rng.choice([1, 2, 3, 4], len(twins))
    twins["z_err"] = rng.uniform(1e-4, 1e-3, len(twins))
    both = pd.concat([z, twins], ignore_index=True)
    path = tmp_path_factory.mktemp("dup") / "z.parquet"
    both.to_parquet(path, index=False)
    return both, path


@pytest.mark.parametrize(
    "rule, n_neighbors",
    [
        ("none", 1),
        ("none", 3),
        ("closest", 1),
        ("closest", 3),
        ("best_redshift", 1),
        ("best_redshift", 3),
        ("best_redshift_per_object", 3),
    ],
)
def test_unique_rules_match_plain_loops(scene, base_config, duplicated, rule, n_neighbors):
    redshifts, path = duplicated
    base_config["redshift_catalog"] = {"path": str(path)}
    base_config["crossmatch"] = {"radius_arcsec": 3.0, "n_neighbors": n_neighbors}
    base_config["unique_galaxies"] = rule
    result = tsm_core.run(base_config)
    got = pq.read_table(result.output_path).to_pandas()
    matches = brute_force_match(redshifts, scene["objects"], 3.0, n_neighbors)
    info = redshifts.set_index("id")
    pairs = [
        dict(id=r.id, objectId=r.objectId, dist=r.dist, z_flag=info.at[r.id, "z_flag"], z_err=info.at[r.id, "z_err"])
        for r in matches.itertuples()
    ]
    expected = select_unique(pairs, rule)
    assert set(zip(got["id"], got["objectId"])) == expected
    assert result.n_matched == len(matches) and result.n_rows == len(expected)
    assert sum(result.removed.values()) == len(matches) - len(expected)
    if rule == "closest":
        assert got["id"].is_unique and got["objectId"].is_unique
    if rule == "best_redshift":  # one-to-one (#28)
        assert got["objectId"].is_unique and got["id"].is_unique and len(expected) < len(matches)
    if rule == "best_redshift_per_object" and n_neighbors > 1:  # one per object, a redshift may stay with several
        assert got["objectId"].is_unique and not got["id"].is_unique
    if rule.startswith("best_redshift"):
        removed = {"not the best redshift of its object"}
        if rule == "best_redshift":
            removed.add("not the nearest kept object of its redshift")
        assert set(result.removed) == removed


def test_object_matched_from_two_partitions(tmp_path):
    """An object on a HEALPix partition edge, with a redshift on each side of the edge."""
    order, nside = 9, 2**9
    pix = int(hp.ang2pix(nside, 45.0, -30.0, nest=True, lonlat=True))
    corners = hp.boundaries(nside, pix, step=1, nest=True)
    mid = corners[:, 0] + corners[:, 1]
    lon, lat = hp.vec2ang(mid / np.linalg.norm(mid), lonlat=True)
    edge = SkyCoord(lon[0], lat[0], unit="deg")
    centre = SkyCoord(*hp.pix2ang(nside, pix, nest=True, lonlat=True), unit="deg")
    pa = edge.position_angle(centre)
    inside = edge.directional_offset_by(pa, 0.3 * u.arcsec)
    outside = edge.directional_offset_by(pa + 180 * u.deg, 0.5 * u.arcsec)
    assert hp.ang2pix(nside, inside.ra.deg, inside.dec.deg, nest=True, lonlat=True) == pix
    other = int(hp.ang2pix(nside, outside.ra.deg, outside.dec.deg, nest=True, lonlat=True))
    assert other != pix

    rng = np.random.default_rng(2)
    n = 30000
    bg = SkyCoord(edge.ra.deg + rng.uniform(-0.15, 0.15, n), edge.dec.deg + rng.uniform(-0.15, 0.15, n), unit="deg")
    bg = bg[bg.separation(edge) > 3 * u.arcsec]
    ra = np.concatenate([[edge.ra.deg], bg.ra.deg])
    dec = np.concatenate([[edge.dec.deg], bg.dec.deg])
    objects = pd.DataFrame({"objectId": np.arange(len(ra), dtype=np.int64) + 5, "coord_ra": ra, "coord_dec": dec})
    for band in "ugrizy":
        objects[f"{band}_cModelFlux"] = np.float32(1000)
        objects[f"{band}_cModelFluxErr"] = np.float32(10)
    write_objects(objects, tmp_path / "objects", partition_rows=6000)
    import lsdb

    pixels = {(p.order, p.pixel) for p in lsdb.open_catalog(tmp_path / "objects").get_healpix_pixels()}
    assert (order, pix) in pixels and (order, other) in pixels, "the two redshifts must fall in two partitions"

    z = pd.DataFrame(
        {
            "id": ["inside", "outside"],
            "ra": [inside.ra.deg, outside.ra.deg],
            "dec": [inside.dec.deg, outside.dec.deg],
            "z": [0.5, 0.51],
            "z_flag": [3, 4],
            "z_err": [1e-4, 1e-4],
        }
    )
    z.to_csv(tmp_path / "z.csv", index=False)
    kept = {}
    for rule in ("none", "closest", "best_redshift"):
        res = tsm_core.run(
            {
                "name": rule,
                "redshift_catalog": {"path": str(tmp_path / "z.csv")},
                "object_catalog": {"path": str(tmp_path / "objects")},
                "crossmatch": {"radius_arcsec": 1.0},
                "unique_galaxies": rule,
                "output": {"directory": str(tmp_path / "out")},
            }
        )
        got = pq.read_table(res.output_path).to_pandas()
        assert (got["objectId"] == 5).all()
        kept[rule] = sorted(got["id"])
    assert kept == {"none": ["inside", "outside"], "closest": ["inside"], "best_redshift": ["outside"]}


def test_split_is_reproducible_whatever_the_partitioning(scene, base_config, coarse_objects_path):
    base_config["split"] = {"train_fraction": 0.7, "seed": 9}
    first = pq.read_table(tsm_core.run(base_config).output_path).to_pandas()
    base_config["object_catalog"]["path"] = str(coarse_objects_path)  # the scene in a few large partitions
    second = pq.read_table(tsm_core.run(base_config).output_path).to_pandas()
    a = first.set_index(["id", "objectId"])["is_training"].sort_index()
    b = second.set_index(["id", "objectId"])["is_training"].sort_index()
    pd.testing.assert_series_equal(a, b)
    assert 0.6 < a.mean() < 0.8
    base_config["split"]["seed"] = 10
    third = (
        pq.read_table(tsm_core.run(base_config).output_path).to_pandas().set_index(["id", "objectId"])["is_training"]
    )
    assert (third.sort_index() != a).any()


def test_selection_unit_ties_and_missing_flags():
    from tsm_core.science.selection import unique_galaxies

    keys = pd.DataFrame(
        {
            "zrow": [0, 1, 2, 3],
            "obj": [7, 7, 7, 8],
            "_dist_arcsec": [0.5, 0.5, 0.2, 0.1],
            "z_flag": [4.0, 4.0, np.nan, 3.0],
            "z_err": [0.002, 0.001, 0.0001, 0.001],
        }
    )
    mask, removed = unique_galaxies(keys, "best_redshift_per_object", "zrow", "obj")
    assert mask.tolist() == [False, True, False, True] and removed == {"not the best redshift of its object": 2}
    # one redshift (zrow 1) best for two objects: one-to-one keeps its nearer object only
    shared = keys.assign(zrow=[0, 1, 2, 1])
    mask, removed = unique_galaxies(shared, "best_redshift_per_object", "zrow", "obj")
    assert mask.tolist() == [False, True, False, True]
    mask, removed = unique_galaxies(shared, "best_redshift", "zrow", "obj")
    assert mask.tolist() == [False, False, False, True]
    assert removed == {"not the best redshift of its object": 2, "not the nearest kept object of its redshift": 1}
    mask, _ = unique_galaxies(keys, "closest", "zrow", "obj")
    assert mask.tolist() == [False, False, True, True]
