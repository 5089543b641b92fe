"""The run's crossmatch algorithm (tsm_core.science.crossmatch) against astropy brute force:
the pairs of LSDB's k-nearest match, and n_candidates, second_dist_arcsec and p_chance of
every row, across partition edges, the RA wrap and both poles."""

from __future__ import annotations

import astropy.units as u
import healpy as hp
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord

import tsm_core
from helpers import brute_force_match

RADIUS = 2.0
ARCSEC2_PER_SR = (180 / np.pi * 3600) ** 2


def _patch(rng, ra0: float, dec0: float, n_z: int, n_bg: int, size: float) -> tuple[np.ndarray, ...]:
    """Redshifts with 0-4 objects within a few arcsec each, and a background, around (ra0, dec0)
    in a tangent plane (so a patch at a pole spans every RA)."""
    centre = SkyCoord(ra0, dec0, unit="deg")

    def around(n, scale):
        r = scale * np.sqrt(rng.uniform(0, 1, n))
        return centre.directional_offset_by(rng.uniform(0, 360, n) * u.deg, r * u.deg)

    z = around(n_z, size)
    k = rng.integers(0, 5, n_z)
    near = np.repeat(np.arange(n_z), k)
    objects = z[near].directional_offset_by(
        rng.uniform(0, 360, len(near)) * u.deg, np.abs(rng.normal(0, 1.3, len(near))) * u.arcsec
    )
    bg = around(n_bg, size * 1.2)
    return (
        z.ra.deg,
        z.dec.deg,
        np.concatenate([objects.ra.deg, bg.ra.deg]),
        np.concatenate([objects.dec.deg, bg.dec.deg]),
    )


@pytest.fixture(scope="module")
def sky():
    """Four patches: across RA 0/360, at each pole, and one with exact duplicates (ties)."""
    rng = np.random.default_rng(11)
    parts = [
        _patch(rng, 0.0, 1.0, 300, 3000, 0.5),
        _patch(rng, 0.0, 90.0, 200, 2000, 0.3),
        _patch(rng, 123.0, -89.9, 200, 2000, 0.3),
    ]
    zra, zdec = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    ora, odec = np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts])
    # ties: three copies of one object position, 0.5 arcsec from a redshift
    tie = SkyCoord(45.0, -30.0, unit="deg")
    dup = tie.directional_offset_by(0 * u.deg, 0.5 * u.arcsec)
    zra, zdec = np.append(zra, tie.ra.deg), np.append(zdec, tie.dec.deg)
    ora, odec = np.concatenate([ora, [dup.ra.deg] * 3]), np.concatenate([odec, [dup.dec.deg] * 3])
    objects = pd.DataFrame({"objectId": np.arange(len(ora), dtype=np.int64), "coord_ra": ora, "coord_dec": odec})
    redshifts = pd.DataFrame({"id": [f"z{i}" for i in range(len(zra))], "ra": zra, "dec": zdec})
    return objects, redshifts


@pytest.fixture(scope="module")
def catalogs(sky):
    from tsm_core.compute.noise import quiet_known_warnings

    quiet_known_warnings()
    import lsdb

    objects, redshifts = sky
    obj = lsdb.from_dataframe(
        objects,
        ra_column="coord_ra",
        dec_column="coord_dec",
        lowest_order=4,
        highest_order=8,
        partition_rows=600,
        margin_threshold=5.0,
    )
    z = lsdb.from_dataframe(
        redshifts, ra_column="ra", dec_column="dec", lowest_order=2, highest_order=6, partition_rows=200
    )
    assert len(obj.get_healpix_pixels()) > 20 and len(z.get_healpix_pixels()) > 5
    return z, obj


def _crossmatch(catalogs, n_neighbors: int) -> pd.DataFrame:
    from tsm_core.science.crossmatch import AmbiguityCrossmatch

    z, obj = catalogs
    algorithm = AmbiguityCrossmatch(n_neighbors=n_neighbors, radius_arcsec=RADIUS)
    got = z.crossmatch(obj, algorithm=algorithm, suffixes=("", "_o"), suffix_method="overlapping_columns")
    return pd.DataFrame(got.compute()).reset_index(drop=True)


def _brute_candidates(redshifts: pd.DataFrame, objects: pd.DataFrame) -> pd.DataFrame:
    """Every pair within the radius, from astropy."""
    zc = SkyCoord(redshifts["ra"].to_numpy(), redshifts["dec"].to_numpy(), unit="deg")
    oc = SkyCoord(objects["coord_ra"].to_numpy(), objects["coord_dec"].to_numpy(), unit="deg")
    zi, oi, sep, _ = oc.search_around_sky(zc, RADIUS * u.arcsec)
    return pd.DataFrame({"id": redshifts["id"].to_numpy()[zi], "dist": sep.to(u.arcsec).value})


def _density(objects: pd.DataFrame, pixels, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Objects per arcsec^2 of the object partition holding each (ra, dec), with healpy."""
    out = np.full(len(ra), np.nan)
    for p in pixels:
        nside = 2**p.order
        inside = hp.ang2pix(nside, ra, dec, nest=True, lonlat=True) == p.pixel
        n = np.count_nonzero(
            hp.ang2pix(nside, objects["coord_ra"].to_numpy(), objects["coord_dec"].to_numpy(), nest=True, lonlat=True)
            == p.pixel
        )
        out[inside] = n / (hp.nside2pixarea(nside) * ARCSEC2_PER_SR)
    return out


@pytest.mark.parametrize("n_neighbors", [1, 3])
def test_pairs_and_ambiguity_match_brute_force(sky, catalogs, n_neighbors):
    objects, redshifts = sky
    got = _crossmatch(catalogs, n_neighbors)
    expected = brute_force_match(redshifts, objects, RADIUS, n_neighbors)
    # the sky has matches on both sides of RA 0 and near both poles
    assert (got["coord_ra"] > 359.99).any() and (got["coord_ra"] < 0.01).any()
    assert (got["dec"] > 89.9).any() and (got["dec"] < -89.9).any()
    tied = got["id"] == redshifts["id"].iloc[-1]
    assert tied.sum() == min(n_neighbors, 3)  # three objects at the same distance: k of them kept
    # ties are broken by row: the first copies kept
    assert got.loc[tied, "objectId"].tolist() == list(range(len(objects) - 3, len(objects) - 3 + min(n_neighbors, 3)))
    got_untied, exp_untied = got[~tied], expected[expected["id"] != redshifts["id"].iloc[-1]]
    merged = exp_untied.merge(got_untied, on=["id", "objectId"], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"].head()
    np.testing.assert_allclose(merged["_dist_arcsec"].astype(float), merged["dist"], rtol=0, atol=1e-6)
    # rows come per redshift in order of distance
    assert (got.groupby("id", sort=False)["_dist_arcsec"].apply(lambda s: s.is_monotonic_increasing)).all()

    candidates = _brute_candidates(redshifts, objects).sort_values(["id", "dist"])
    counts = candidates.groupby("id").size()
    second = candidates.groupby("id")["dist"].nth(1).groupby(candidates["id"]).first()
    np.testing.assert_array_equal(got["n_candidates"].to_numpy(int), counts.reindex(got["id"]).to_numpy())
    assert n_neighbors > 1 or (got["n_candidates"] > 1).sum() > 50  # counted beyond the one kept
    want_second = second.reindex(got["id"]).to_numpy(float)
    np.testing.assert_allclose(got["second_dist_arcsec"].to_numpy(float, na_value=np.nan), want_second, atol=1e-6)
    assert got["second_dist_arcsec"].isna().sum() == (got["n_candidates"] == 1).sum() > 0

    _, obj = catalogs
    sigma = _density(objects, obj.get_healpix_pixels(), got["ra"].to_numpy(), got["dec"].to_numpy())
    sep = got["_dist_arcsec"].to_numpy(float)
    np.testing.assert_allclose(got["p_chance"].to_numpy(float), 1 - np.exp(-np.pi * sigma * sep**2), rtol=1e-6)


def test_same_pairs_and_distances_as_lsdb(catalogs, sky):
    """Without exact ties, the pairs and ``_dist_arcsec`` are LSDB's KdTreeCrossmatch's, bit for bit."""
    z, obj = catalogs
    for k in (1, 3):
        ours = _crossmatch(catalogs, k)
        theirs = z.crossmatch(
            obj, n_neighbors=k, radius_arcsec=RADIUS, suffixes=("", "_o"), suffix_method="overlapping_columns"
        )
        theirs = pd.DataFrame(theirs.compute()).reset_index(drop=True)
        last = sky[1]["id"].iloc[-1]
        ours, theirs = ours[ours["id"] != last], theirs[theirs["id"] != last]
        key = ["id", "objectId", "_dist_arcsec"]
        pd.testing.assert_frame_equal(
            ours[key].reset_index(drop=True), theirs[key].reset_index(drop=True), check_dtype=False
        )


def test_run_writes_ambiguity_columns(scene, base_config):
    """End to end on the scene: n_candidates counts every object in the radius with n_neighbors 1."""
    result = tsm_core.run(base_config)
    got = pq.read_table(result.output_path).to_pandas()
    everything = brute_force_match(scene["redshifts"], scene["objects"], 3.0, 1000)
    counts = everything.groupby("id").size()
    np.testing.assert_array_equal(got["n_candidates"].to_numpy(), counts.reindex(got["id"]).to_numpy())
    second = everything.groupby("id")["dist"].nth(1).groupby(everything["id"]).first()
    np.testing.assert_allclose(got["second_dist_arcsec"].to_numpy(float), second.reindex(got["id"]), atol=1e-6)
    assert ((got["p_chance"] > 0) & (got["p_chance"] < 1)).all()


def test_match_filters_on_ambiguity(scene, base_config):
    """``filters.match`` cuts matched rows on their ambiguity; each removed row is counted
    under the first filter it fails, and the unique-galaxy rule sees only the rows that passed."""
    base_config["crossmatch"] = {"radius_arcsec": 3.0, "n_neighbors": 3}
    base_config["filters"] = {"match": ["n_candidates <= 2", "_dist_arcsec < 1.5"]}
    base_config["unique_galaxies"] = "closest"
    result = tsm_core.run(base_config)
    got = pq.read_table(result.output_path).to_pandas()
    every = brute_force_match(scene["redshifts"], scene["objects"], 3.0, 1000)
    n_cand = every.groupby("id")["dist"].transform("size")
    kept3 = every.groupby("id").head(3)
    first = n_cand[kept3.index] > 2
    second = ~first & (kept3["dist"] >= 1.5)
    passed = kept3[~first & ~second]
    # closest over the rows that passed, as a plain loop
    best_z: dict = {}
    for r in passed.itertuples():
        if r.id not in best_z or r.dist < best_z[r.id].dist:
            best_z[r.id] = r
    best_o: dict = {}
    for r in best_z.values():
        if r.objectId not in best_o or r.dist < best_o[r.objectId].dist:
            best_o[r.objectId] = r
    assert set(zip(got["id"], got["objectId"])) == {(r.id, r.objectId) for r in best_o.values()}
    assert result.removed["filters.match: n_candidates <= 2"] == int(first.sum()) > 0
    assert result.removed["filters.match: _dist_arcsec < 1.5"] == int(second.sum()) > 0
    steps = {s["label"]: s["count"] for s in result.funnel["steps"]}
    assert steps["filters.match: n_candidates <= 2"] == int(first.sum())


def test_match_filter_on_an_unknown_column_fails_before_work(base_config):
    base_config["filters"] = {"match": ["n_candidate == 1"]}
    with pytest.raises(tsm_core.TSMError) as err:
        tsm_core.run(base_config)
    assert "filters.match[0]" in str(err.value) and "n_candidates" in str(err.value)


def test_report_shows_the_ambiguity(scene, base_config, tmp_path, monkeypatch):
    """The report's ambiguity numbers against counts of an astropy brute-force match."""
    from tsm_core.reports import report_data, report_html

    result = tsm_core.run(base_config)
    numbers = report_data(result.product_id)["ambiguity"]
    got = pq.read_table(result.output_path).to_pandas()
    every = brute_force_match(scene["redshifts"], scene["objects"], 3.0, 1000)
    n = every.groupby("id").size().reindex(got["id"]).to_numpy()
    assert numbers["rows"] == len(got)
    assert numbers["ambiguous_fraction"] == pytest.approx(np.mean(n > 1))
    assert numbers["n_candidates"]["counts"] == [int((np.minimum(n, 6) == k).sum()) for k in range(1, 7)]
    second = every.groupby("id")["dist"].nth(1).groupby(every["id"]).first().reindex(got["id"]).dropna()
    assert sum(numbers["second_dist"]["counts"]) == len(second) == int((n > 1).sum())
    assert sum(numbers["p_chance"]["counts"]) == len(got)
    page = report_html(result.product_id)
    assert 'id="fig-ambiguity"' in page and "are ambiguous" in page


@pytest.mark.parametrize("n_left, n_right", [(200, 3000), (3000, 200)])
def test_all_pairs_whichever_side_is_smaller(n_left, n_right):
    """The tree goes over the smaller side, redshifts or objects: the same pairs as astropy either way."""
    from tsm_core.science.crossmatch import all_pairs
    from tsm_core.science.sphere import arc_arcsec, chord, unit_vectors

    rng = np.random.default_rng(n_left)
    left = SkyCoord(rng.uniform(-0.02, 0.02, n_left) % 360, rng.uniform(-0.02, 0.02, n_left), unit="deg")
    right = SkyCoord(rng.uniform(-0.02, 0.02, n_right) % 360, rng.uniform(-0.02, 0.02, n_right), unit="deg")
    i, j, d = all_pairs(
        unit_vectors(left.ra.deg, left.dec.deg), unit_vectors(right.ra.deg, right.dec.deg), chord(RADIUS * 3)
    )
    zi, oi, sep, _ = right.search_around_sky(left, RADIUS * 3 * u.arcsec)
    order = np.lexsort((oi, sep.arcsec, zi))
    assert len(i) == len(zi) > 50
    np.testing.assert_array_equal(i, zi[order])
    np.testing.assert_array_equal(j, oi[order])
    np.testing.assert_allclose(arc_arcsec(d), sep.arcsec[order], atol=1e-6)
