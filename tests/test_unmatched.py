"""``output.unmatched``: the file of the redshifts a run lost, each with its reason, against
an independent computation (numpy checks, pandas filters, astropy matches, the unique-galaxy
rules as plain loops), read back with the standard reader of each format, and against the
run's funnel."""

from __future__ import annotations

import json
import time
from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

import tsm_core
from conftest import isolate
from helpers import DP1_BANDS, brute_force_match, second_measurements, select_unique, write_objects, writers_plugin

RADIUS = 2.0
SPACING = 20.0 / 3600  # objects on a 20 arcsec grid: a redshift has at most one object within the radius
FILTERS = ["z_flag >= 3", "z > 0.05"]


@pytest.fixture(scope="module")
def lost_scene(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Objects on a grid; redshifts of every fate, in a shuffled order: 20 on an object, 4
    more on an object that has one (0.6 arcsec away), 6 between objects, 5 far away, 6 of
    z_flag 1, 3 of z 0.02, and 3 bad rows (NaN ra, dec 95, z -1)."""
    rng = np.random.default_rng(11)
    base = tmp_path_factory.mktemp("lost")
    gx, gy = np.meshgrid(np.arange(30), np.arange(30))
    odec = -5.0 + gy.ravel() * SPACING
    ora = 30.0 + gx.ravel() * SPACING / np.cos(np.radians(odec))
    n = len(ora)
    objects = pd.DataFrame({"objectId": np.arange(n, dtype=np.int64) + 5000, "coord_ra": ora, "coord_dec": odec})
    for band in DP1_BANDS:
        objects[f"{band}_cModelFlux"] = rng.lognormal(np.log(3000), 0.8, n).astype(np.float32)
        objects[f"{band}_cModelFluxErr"] = np.full(n, 30, np.float32)
    write_objects(objects, base / "objects", margin_arcsec=10.0, partition_rows=300)

    inner = np.flatnonzero((gx.ravel() > 3) & (gx.ravel() < 26) & (gy.ravel() > 3) & (gy.ravel() < 26))
    on, flagged, young = np.split(rng.choice(inner, 29, replace=False), [20, 26])
    cos = np.cos(np.radians(odec))
    rows = [(ora[i] + 0.3 / 3600 / cos[i], odec[i], 4, 0.5) for i in on]
    rows += [(ora[i], odec[i] + 0.6 / 3600, 4, 0.5) for i in on[:4]]
    rows += [(ora[i] + 0.5 * SPACING / cos[i], odec[i] + 0.5 * SPACING, 4, 0.5) for i in on[4:10]]
    rows += [(200.0 + k, 40.0, 4, 0.5) for k in range(5)]
    rows += [(ora[i], odec[i], 1, 0.5) for i in flagged]
    rows += [(ora[i], odec[i], 4, 0.02) for i in young]
    rows += [(np.nan, odec[on[0]], 4, 0.5), (ora[on[1]], 95.0, 4, 0.5), (ora[on[2]], odec[on[2]], 4, -1.0)]
    table = np.array(rows)[rng.permutation(len(rows))]
    nz = len(table)
    redshifts = pd.DataFrame(
        {
            "id": [f"g{i:03d}" for i in range(nz)],
            "ra": table[:, 0],
            "dec": table[:, 1],
            "z": np.where(table[:, 3] == 0.5, rng.uniform(0.1, 1.5, nz).round(4), table[:, 3]),
            "z_err": np.full(nz, 1e-3),
            "z_flag": table[:, 2].astype(np.int64),
            "survey": rng.choice(["DESI", "VVDS"], nz),
        }
    )
    redshifts.to_parquet(base / "redshifts.parquet", index=False)
    return {"objects": objects, "redshifts": redshifts, "base": base}


def expected_lost(z: pd.DataFrame, objects: pd.DataFrame, rule: str = "closest") -> pd.DataFrame:
    """id -> (reason, detail, row), computed with numpy, pandas and astropy."""
    out = []
    z = z.assign(row=np.arange(len(z)))
    checks = [
        ("NaN or non-numeric ra/dec", ~(np.isfinite(z["ra"]) & np.isfinite(z["dec"]))),
        ("dec outside [-90, 90] deg", z["dec"].abs() > 90),
        ("z < -0.01", z["z"] < -0.01),
    ]
    bad = np.zeros(len(z), dtype=bool)
    for what, mask in checks:
        mask = mask.to_numpy() & ~bad
        bad |= mask
        out += [(i, "bad_row", what, r) for i, r in zip(z["id"][mask], z["row"][mask])]
    left = z[~bad]
    for expression, keep in zip(FILTERS, [lambda f: f["z_flag"] >= 3, lambda f: f["z"] > 0.05]):
        gone = left[~keep(left)]
        out += [(i, "redshift_filter", expression, r) for i, r in zip(gone["id"], gone["row"])]
        left = left[keep(left)]
    centre = SkyCoord(objects["coord_ra"].mean(), objects["coord_dec"].mean(), unit="deg")
    near = SkyCoord(left["ra"], left["dec"], unit="deg").separation(centre).deg < 5
    out += [(i, "outside_footprint", "dp1", r) for i, r in zip(left["id"][~near], left["row"][~near])]
    left = left[near]
    zc = SkyCoord(left["ra"], left["dec"], unit="deg")
    zi, _, _, _ = SkyCoord(objects["coord_ra"], objects["coord_dec"], unit="deg").search_around_sky(
        zc, RADIUS * u.arcsec
    )
    alone = ~np.isin(np.arange(len(left)), zi)
    out += [
        (i, "no_object_within_radius", f"{RADIUS:g} arcsec", r) for i, r in zip(left["id"][alone], left["row"][alone])
    ]
    pairs = brute_force_match(left, objects, RADIUS, 1).merge(left[["id", "z_flag", "z_err"]], on="id")
    kept = {zid for zid, _ in select_unique(pairs.to_dict("records"), rule)}
    out += [(i, "unique_galaxies", rule, r) for i, r in zip(left["id"], left["row"]) if i in set(pairs["id"]) - kept]
    return pd.DataFrame(out, columns=["id", "reason", "detail", "row"]).set_index("id").sort_index()


def _config(scene: dict, out: Path, fmt: str, **extra) -> dict:
    return {
        "name": "lost",
        "redshift_catalog": {"path": str(scene["base"] / "redshifts.parquet")},
        "object_catalog": {"release": "dp1", "path": str(scene["base"] / "objects")},
        "crossmatch": {"radius_arcsec": RADIUS},
        "filters": {"redshift": FILTERS},
        "unique_galaxies": "closest",
        "output": {"directory": str(out), "format": fmt, "unmatched": True},
        "compute": {"scheduler": "synchronous"},
        **extra,
    }


FORMATS = ("parquet", "csv", "ecsv", "fits", "hdf5", "hats")


@pytest.fixture(scope="module")
def runs(lost_scene, tmp_path_factory) -> dict:
    """One run per format, with ``output.unmatched``, in a home of their own (read only)."""
    base = tmp_path_factory.mktemp("lost-runs")
    with pytest.MonkeyPatch.context() as mp:
        isolate(base / "home", mp)
        return {fmt: tsm_core.run(_config(lost_scene, base / "out", fmt)) for fmt in FORMATS}


def read_standard(path: Path, fmt: str) -> pd.DataFrame:
    """The file with the format's own reader (pandas, astropy, h5py), not the writer's ``read``."""
    if fmt in ("parquet", "hats"):  # a HATS product's unmatched file is Parquet
        return pd.read_parquet(path)
    if fmt == "csv":
        return pd.read_csv(path, comment="#", dtype={"id": str, "detail": str})
    if fmt == "ecsv":
        return Table.read(path, format="ascii.ecsv").to_pandas()
    if fmt == "fits":
        frame = Table.read(path, hdu="TRAINING_SET").to_pandas()
        for c in ("id", "survey", "reason", "detail"):
            frame[c] = frame[c].map(lambda v: v.decode() if isinstance(v, bytes) else v).str.rstrip()
        return frame
    return pd.read_hdf(path)  # one table, no key (the HDF5 writer's default layout)


@pytest.mark.parametrize("fmt", FORMATS)
def test_unmatched_rows_and_reasons(runs, lost_scene, fmt):
    result = runs[fmt]
    z = lost_scene["redshifts"]
    expected = expected_lost(z, lost_scene["objects"])
    # every fate of the scene is there, as it was built
    assert expected["reason"].value_counts().to_dict() == {
        "bad_row": 3,
        "redshift_filter": 9,
        "outside_footprint": 5,
        "no_object_within_radius": 6,
        "unique_galaxies": 4,
    }
    path = result.unmatched_path
    assert path is not None and path.parent == result.output_path.parent
    assert path.name == f"lost_{result.product_id}_unmatched.{'parquet' if fmt == 'hats' else fmt}"
    found = read_standard(path, fmt)
    assert list(found.columns) == ["id", "ra", "dec", "z", "z_err", "z_flag", "survey", "row", "reason", "detail"]
    got = found.set_index("id").sort_index()
    assert got.index.tolist() == expected.index.tolist()
    assert got[["reason", "detail"]].equals(expected[["reason", "detail"]])
    assert got["row"].astype(np.int64).tolist() == expected["row"].tolist()
    # the canonical values are the catalog's, by row in the file
    source = z.iloc[got["row"].astype(np.int64)]
    assert (source["id"].to_numpy() == got.index.to_numpy()).all()
    np.testing.assert_array_equal(got["z"].to_numpy(float), source["z"].to_numpy(float))
    np.testing.assert_array_equal(got["ra"].to_numpy(float), source["ra"].to_numpy(float))
    assert (got["survey"].to_numpy() == source["survey"].to_numpy()).all()
    # the same rows through tsm_core: RunResult and read by product ID
    mine = result.to_pandas(part="unmatched")
    assert sorted(mine["id"]) == got.index.tolist()


def test_unmatched_counts_agree_with_the_funnel(runs):
    from tsm_core.pipeline.funnel import Funnel

    result = runs["parquet"]
    found = pd.read_parquet(result.unmatched_path)
    funnel = Funnel.from_dict(result.funnel)
    per = found.groupby(["reason", "detail"]).size().to_dict()
    removed = {s.key: s.count for s in funnel.steps if s.kind == "removed" and s.count}
    assert removed == {
        "bad_rows:NaN or non-numeric ra/dec": per["bad_row", "NaN or non-numeric ra/dec"],
        "bad_rows:dec outside [-90, 90] deg": per["bad_row", "dec outside [-90, 90] deg"],
        "bad_rows:z < -0.01": per["bad_row", "z < -0.01"],
        "filter:z_flag >= 3": per["redshift_filter", "z_flag >= 3"],
        "filter:z > 0.05": per["redshift_filter", "z > 0.05"],
        "outside_coverage": per["outside_footprint", "dp1"],
        "no_match": per["no_object_within_radius", "2 arcsec"],
        "unique:not the nearest redshift of its object": per["unique_galaxies", "closest"],  # one row per redshift
    }
    # lost and written: every redshift read, once
    assert len(found) + result.n_rows == funnel.step("read").count
    written = pd.read_parquet(result.output_path)
    assert not set(written["id"]) & set(found["id"])
    # listed in the provenance, stored with the product, in the file itself
    lost = result.provenance["unmatched"]
    assert lost["file"] == result.unmatched_path.name and lost["rows"] == len(found)
    assert lost["by_reason"] == found["reason"].value_counts().to_dict()
    assert json.loads(pq.read_schema(result.unmatched_path).metadata[b"tsm.provenance"])["unmatched"] == lost


def test_read_by_product_id_and_part(runs, lost_scene, tmp_path, monkeypatch):
    result = runs["fits"]
    isolate(Path(result.provenance["config"]["output"]["directory"]).parent / "home", monkeypatch)
    frame = tsm_core.read(result.product_id, part="unmatched")
    assert sorted(frame["id"]) == sorted(expected_lost(lost_scene["redshifts"], lost_scene["objects"]).index)
    with pytest.raises(tsm_core.TSMError, match="has no 'validation' file; its files: unmatched"):
        tsm_core.read(result.product_id, part="validation")
    with pytest.raises(tsm_core.TSMError, match="applies to a product ID"):
        tsm_core.read(result.output_path, part="unmatched")
    with pytest.raises(tsm_core.TSMError, match="choices: unmatched"):
        result.to_pandas(part="training")


def test_registered_catalog_read_partition_by_partition(lost_scene, tmp_path, monkeypatch):
    """A registered catalog: the stored copy's rows scanned in small batches, the bad rows kept
    at registration; rows and reasons as from the file, the row numbers the file's."""
    import tsm_core.redshifts.side as side
    from tsm_core.redshifts.registration import register_redshift_catalog

    monkeypatch.setattr(side, "SCAN_BATCH_ROWS", 7)
    register_redshift_catalog("lost", lost_scene["base"] / "redshifts.parquet")
    cfg = _config(lost_scene, tmp_path / "out", "parquet")
    cfg["redshift_catalog"] = {"name": "lost"}
    result = tsm_core.run(cfg)
    found = pd.read_parquet(result.unmatched_path).set_index("id").sort_index()
    expected = expected_lost(lost_scene["redshifts"], lost_scene["objects"])
    assert found[["reason", "detail"]].equals(expected[["reason", "detail"]])
    assert found["row"].tolist() == expected["row"].tolist()
    assert "not_listed" not in result.provenance["unmatched"]

    # a catalog registered before the bad rows were kept: counted, not listed, no row numbers
    from tsm_core.config import tsm_home
    from tsm_core.products.registry import Registry
    from tsm_core.redshifts.store import BAD_ROWS_FILE

    (Path(Registry.at_home(tsm_home()).redshift_catalog("lost").path) / BAD_ROWS_FILE).unlink()
    older = tsm_core.run(cfg)
    found = pd.read_parquet(older.unmatched_path).set_index("id").sort_index()
    listed = expected[expected["reason"] != "bad_row"]
    assert found[["reason", "detail"]].equals(listed[["reason", "detail"]]) and found["row"].isna().all()
    assert older.provenance["unmatched"]["not_listed"] == {"bad_row": 3}


def test_several_matches_lost_only_when_all_are_removed(scene, base_config, tmp_path):
    """n_neighbors 3 and best_redshift, with second measurements of 150 sources: a redshift is
    lost when each of its matches went to another redshift of the object (plain loops over
    the astropy pairs), not when only some did."""
    z, objects = scene["redshifts"], scene["objects"]
    z = pd.concat([z, second_measurements(z, 150, seed=3)], ignore_index=True)
    z.to_parquet(tmp_path / "twice.parquet", index=False)
    cfg = {**base_config, "unique_galaxies": "best_redshift", "crossmatch": {"radius_arcsec": 3.0, "n_neighbors": 3}}
    cfg["redshift_catalog"] = {"path": str(tmp_path / "twice.parquet")}
    cfg["output"] = {**cfg["output"], "unmatched": True}
    result = tsm_core.run(cfg)
    pairs = brute_force_match(z, objects, 3.0, 3).merge(z[["id", "z_flag", "z_err"]], on="id")
    kept = {zid for zid, _ in select_unique(pairs.to_dict("records"), "best_redshift")}
    lost_by_rule = set(pairs["id"]) - kept
    partly = {zid for zid, n in pairs.groupby("id").size().items() if n > 1} & kept
    found = result.to_pandas(part="unmatched")
    by_rule = found[found["reason"] == "unique_galaxies"]
    assert set(by_rule["id"]) == lost_by_rule and len(lost_by_rule) > 5
    assert (by_rule["detail"] == "best_redshift").all()
    assert set(found.loc[found["reason"] == "no_object_within_radius", "id"]) == set(z["id"]) - set(pairs["id"])
    # the rule's funnel step counts match rows: more than the redshifts it took all rows of
    step = next(s for s in result.funnel["steps"] if s["key"].startswith("unique:"))
    assert step["count"] > len(lost_by_rule) and partly
    assert len(found) + pd.read_parquet(result.output_path)["id"].nunique() == len(z)


def test_a_failure_writing_it_leaves_no_file(lost_scene, tmp_path, registered_plugin):
    """The unmatched file is staged with the product: a writer failing on it leaves neither."""
    from tsm_core.config import tsm_home
    from tsm_core.products.registry import Registry
    from tsm_writers.parquet import ParquetWriter

    class FailsOnLost(ParquetWriter):
        name = "parquet-failing-on-lost"

        def open(self, path, schema, metadata, options):
            if "reason" in schema.names:
                raise RuntimeError("no room for the lost ones")
            return super().open(path, schema, metadata, options)

    registered_plugin(writers_plugin(FailsOnLost()), "test-fails-on-lost")
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="no room for the lost ones"):
        tsm_core.run(_config(lost_scene, out, "parquet-failing-on-lost"))
    assert list(out.iterdir()) == []  # no product, no unmatched file, no claim, no staging folder
    (product,) = Registry.at_home(tsm_home()).products()
    assert product.status == "failed"


def test_cli_prints_it_and_remove_deletes_it(lost_scene, tmp_path):
    from click.testing import CliRunner

    from tsm_core.cli.main import get_cli

    config = tmp_path / "run.yaml"
    config.write_text(json.dumps(_config(lost_scene, tmp_path / "out", "csv")))
    ran = CliRunner().invoke(get_cli(), ["run", str(config)])
    assert ran.exit_code == 0, ran.output
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["lost_1.csv", "lost_1_unmatched.csv"]
    assert f"unmatched redshifts: 27 -> {tmp_path / 'out' / 'lost_1_unmatched.csv'}" in ran.output
    assert (
        "(5 outside_footprint, 6 no_object_within_radius, 4 unique_galaxies, 9 redshift_filter, 3 bad_row)"
        in ran.output
    )
    shown = CliRunner().invoke(get_cli(), ["products", "show", "1"])
    assert f"unmatched redshifts: {tmp_path / 'out' / 'lost_1_unmatched.csv'} (27 rows)" in shown.output
    removed = CliRunner().invoke(get_cli(), ["products", "remove", "1"])
    assert removed.exit_code == 0, removed.output
    assert list((tmp_path / "out").iterdir()) == []


def test_redshift_columns_named_like_its_own_are_refused(lost_scene, tmp_path):
    z = lost_scene["redshifts"].assign(reason="spectro")
    z.to_parquet(tmp_path / "z.parquet", index=False)
    cfg = _config(lost_scene, tmp_path / "out", "parquet")
    cfg["redshift_catalog"] = {"path": str(tmp_path / "z.parquet"), "keep_columns": ["reason"]}
    with pytest.raises(tsm_core.TSMError, match="redshift_catalog.keep_columns.*reason have the name of a column"):
        tsm_core.prepare(cfg)
    cfg["output"]["unmatched"] = False
    assert tsm_core.prepare(cfg).redshifts.columns[-1] == "reason"


def test_downloaded_from_the_json_api(lost_scene, tmp_path, tsm_home):
    """Through the service: a training set asked with ``output.unmatched`` offers its unmatched
    file beside it (a registered upload: bad rows kept, rows numbered as in the CSV sent)."""
    fastapi = pytest.importorskip("fastapi.testclient")
    from tsm_web import create_app

    z = lost_scene["redshifts"]
    app = create_app(release_paths={"dp1": str(lost_scene["base"] / "objects")})
    with fastapi.TestClient(app) as client:
        up = client.post(
            "/api/redshift-catalogs", data={"name": "lost"}, files={"file": ("z.csv", z.to_csv(index=False).encode())}
        )
        assert up.status_code == 201, up.text
        config = {
            "name": "web lost",
            "redshift_catalog": {"id": up.json()["id"]},
            "object_catalog": {"release": "dp1"},
            "crossmatch": {"radius_arcsec": RADIUS},
            "filters": {"redshift": FILTERS},
            "unique_galaxies": "closest",
            "output": {"format": "csv", "unmatched": True},
        }
        ids = [client.post("/api/training-sets", json=c).json()["id"] for c in (config, {**config, "output": {}})]
        done = []
        for product_id in ids:
            while (body := client.get(f"/api/training-sets/{product_id}").json())["status"] in ("queued", "running"):
                time.sleep(0.2)
            done.append(body)
        lost, plain = done
        assert lost["status"] == "done" and lost["unmatched_url"] == f"/api/training-sets/{lost['id']}/unmatched"
        assert lost["unmatched_file_name"] == f"web_lost_{lost['id']}_unmatched.csv"
        got = client.get(lost["unmatched_url"])
        assert got.status_code == 200 and lost["unmatched_file_name"] in got.headers["content-disposition"]
        (tmp_path / "lost.csv").write_bytes(got.content)
        found = pd.read_csv(tmp_path / "lost.csv", dtype={"id": str}).set_index("id").sort_index()
        expected = expected_lost(z, lost_scene["objects"])
        assert found[["reason", "detail", "row"]].equals(expected[["reason", "detail", "row"]])
        # a training set run without it has none
        assert plain["status"] == "done" and plain["unmatched_url"] is None
        missing = client.get(f"/api/training-sets/{plain['id']}/unmatched")
        assert missing.status_code == 404 and "output.unmatched: true" in missing.json()["message"]
        # removed with its training set
        on_server = tsm_home / "products" / lost["unmatched_file_name"]
        assert on_server.is_file()
        assert client.delete(f"/api/training-sets/{lost['id']}").status_code == 204
        assert client.get(f"/api/training-sets/{lost['id']}/unmatched").status_code == 404
        assert not on_server.exists()


def test_file_rows_of_normalized_rows_against_a_mask():
    """A normalized row's row in the file, given the dropped rows, as a boolean mask says."""
    from tsm_core.redshifts.table import file_rows

    rng = np.random.default_rng(4)
    dropped = rng.uniform(0, 1, 500) < 0.2
    dropped[:3] = True  # leading and trailing runs of bad rows
    dropped[-2:] = True
    kept = np.flatnonzero(~dropped)
    bad = pd.DataFrame({"row": rng.permutation(np.flatnonzero(dropped))})  # in any order
    np.testing.assert_array_equal(file_rows(np.arange(len(kept)), bad), kept)
    assert file_rows(np.arange(5), pd.DataFrame()).tolist() == [0, 1, 2, 3, 4]
    assert file_rows(np.arange(5), None) is None  # unknown: a catalog registered before bad rows were kept


def test_a_match_filter_is_its_own_reason(lost_scene, tmp_path, monkeypatch):
    """A redshift whose every match fails a match filter is lost to ``match_filter`` (the
    filter as detail), one whose matches passed but lost the unique-galaxy rule to
    ``unique_galaxies``: against astropy pairs and the rule as a loop."""
    isolate(tmp_path / "home", monkeypatch)
    cut = 0.5
    config = _config(lost_scene, tmp_path / "out", "parquet")
    config["filters"] = {"redshift": FILTERS, "match": [f"_dist_arcsec < {cut}"]}
    found = pd.read_parquet(tsm_core.run(config).unmatched_path).set_index("id").sort_index()

    z, objects = lost_scene["redshifts"], lost_scene["objects"]
    before = expected_lost(z, objects)  # the same run without the match filter
    matchable = z[~z["id"].isin(before.index) | z["id"].isin(before.index[before["reason"] == "unique_galaxies"])]
    pairs = brute_force_match(matchable, objects, RADIUS, 1).merge(matchable[["id", "z_flag", "z_err"]], on="id")
    failed = set(pairs["id"][pairs["dist"] >= cut])
    kept = {zid for zid, _ in select_unique(pairs[pairs["dist"] < cut].to_dict("records"), "closest")}
    expected = before[before["reason"] != "unique_galaxies"].copy()
    rows = dict(zip(z["id"], range(len(z))))
    for zid in sorted(set(pairs["id"]) - kept):
        reason = ("match_filter", f"_dist_arcsec < {cut}") if zid in failed else ("unique_galaxies", "closest")
        expected.loc[zid, ["reason", "detail", "row"]] = [*reason, rows[zid]]
    expected = expected.sort_index()
    assert len(failed) == 4  # the redshifts 0.6 arcsec from an object that has a closer one
    assert found.index.tolist() == expected.index.tolist()
    assert found["reason"].tolist() == expected["reason"].tolist()
    assert found["detail"].tolist() == expected["detail"].tolist()
