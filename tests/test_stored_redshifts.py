"""Registered redshift catalogs stored as HATS collections and opened lazily (issue 18).

The same training set from a registered catalog as from its file, and both as an astropy
brute-force match; the stored copy read back by HATS and LSDB; the in-memory sky
partitioning against LSDB's own ``from_dataframe``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import tsm_core
from helpers import DP1_BANDS, ab_mag, brute_force_match
from tsm_core.redshifts.registration import register_redshift_catalog, remove_redshift_catalog
from tsm_core.redshifts.store import CATALOG_NAME, ROWS_PER_PARTITION


def _read(path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


@pytest.mark.parametrize("n_neighbors", [1, 3])
def test_registered_catalog_gives_the_file_s_training_set_and_brute_force(scene, base_config, tmp_path, n_neighbors):
    radius = 3.0
    base_config["crossmatch"] = {"radius_arcsec": radius, "n_neighbors": n_neighbors}
    base_config["filters"] = {"redshift": ["z_flag >= 2", "z < 1.8"]}  # one pushed into the read, per survey counts
    from_file = tsm_core.run(base_config)
    register_redshift_catalog("scene", scene["redshift_path"])
    registered = dict(base_config, redshift_catalog={"name": "scene"})
    from_store = tsm_core.run(registered)

    z = scene["redshifts"]
    kept = z[(z["z_flag"] >= 2) & (z["z"] < 1.8)].reset_index(drop=True)
    expected = brute_force_match(kept, scene["objects"], radius, n_neighbors)
    key = ["id", "objectId"]
    file_rows = _read(from_file.output_path).sort_values(key).reset_index(drop=True)
    store_rows = _read(from_store.output_path).sort_values(key).reset_index(drop=True)
    assert len(store_rows) == len(file_rows) == len(expected) > 0
    pd.testing.assert_frame_equal(store_rows, file_rows)  # same ids, separations, magnitudes, types
    merged = expected.merge(store_rows, on=key, how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()
    np.testing.assert_allclose(merged["_dist_arcsec"], merged["dist"], atol=1e-6)
    objects = scene["objects"].iloc[merged["oi"]]
    for band in DP1_BANDS:
        np.testing.assert_allclose(
            merged[f"{band}_cModelMag"], ab_mag(objects[f"{band}_cModelFlux"].to_numpy()), atol=1e-9
        )
    # the funnel counts the same, per survey too
    assert from_store.funnel == from_file.funnel
    removed = {s["key"]: s for s in from_store.funnel["steps"]}
    low_flag = z[z["z_flag"] < 2]
    assert removed["filter:z_flag >= 2"]["count"] == len(low_flag)
    assert removed["filter:z_flag >= 2"]["by_survey"] == low_flag["survey"].value_counts().sort_index().to_dict()


def test_stored_copy_is_a_partitioned_hats_collection(scene):
    import hats
    import lsdb

    record = register_redshift_catalog("scene", scene["redshift_path"])
    collection = hats.read_hats(record.path)
    main = collection.main_catalog
    assert main.catalog_info.catalog_name == CATALOG_NAME
    assert main.catalog_info.total_rows == len(scene["redshifts"]) == record.n_rows
    assert len(main.get_healpix_pixels()) >= 2  # two patches far apart on the sky
    assert collection.default_margin is None  # no margin: a run never reads one (issue 30)
    stats = main.per_partition_statistics(include_columns=["z"], include_stats=["row_count"])
    assert stats.iloc[:, 0].max() <= ROWS_PER_PARTITION
    rows = lsdb.open_catalog(record.path).compute().sort_values("id")
    expected = scene["redshifts"].sort_values("id")
    assert rows["id"].tolist() == expected["id"].tolist()
    np.testing.assert_array_equal(rows["z"].to_numpy(float), expected["z"].to_numpy())

    remove_redshift_catalog("scene")  # unregistering deletes the stored folder
    assert not Path(record.path).exists()


def test_rerun_from_the_stored_copy_after_the_file_is_gone(scene, base_config, tmp_path):
    import shutil

    mine = tmp_path / "mine.parquet"
    shutil.copy(scene["redshift_path"], mine)
    register_redshift_catalog("mine", mine)
    first = tsm_core.run(dict(base_config, redshift_catalog={"name": "mine", "keep_columns": "all"}))
    mine.unlink()
    again = tsm_core.rerun(first.product_id)
    pd.testing.assert_frame_equal(_read(again.output_path), _read(first.output_path))


def test_a_filter_on_an_unknown_column_of_a_stored_catalog_is_refused_before_any_work(scene, base_config):
    register_redshift_catalog("scene", scene["redshift_path"])
    cfg = dict(base_config, redshift_catalog={"name": "scene"}, filters={"redshift": ["zflag >= 3"]})
    with pytest.raises(tsm_core.TSMError, match="unknown redshift column.*did you mean z_flag"):
        tsm_core.run(cfg)


def test_sky_partitions_match_lsdb_from_dataframe():
    import lsdb

    from tsm_core.redshifts.partitioning import sky_partitions

    rng = np.random.default_rng(3)
    n = 30_000
    frame = pd.DataFrame(
        {
            "ra": np.concatenate([rng.uniform(359.5, 360, n // 2), rng.uniform(10, 40, n - n // 2)]),
            "dec": np.concatenate([rng.uniform(-1, 1, n // 2), rng.uniform(-60, -20, n - n // 2)]),
            "z": rng.uniform(0, 2, n),
            "survey": rng.choice(["A", "B"], n),
        }
    )
    ours = sky_partitions(frame, rows_per_partition=5_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = lsdb.from_dataframe(
            frame, ra_column="ra", dec_column="dec", margin_threshold=None, partition_rows=5_000
        )
    assert ours.get_healpix_pixels() == theirs.get_healpix_pixels()
    assert ours.meta.dtypes.to_dict() == theirs.meta.dtypes.to_dict()
    for i in (0, ours.npartitions // 2, ours.npartitions - 1):
        a, b = ours.partitions[i].compute(), theirs.partitions[i].compute()
        assert sorted(a["z"].tolist()) == sorted(b["z"].tolist())
        assert (a.index.to_numpy() == np.sort(a.index.to_numpy())).all()  # sorted by spatial index, as LSDB needs
    assert ours.hc_structure.moc is not None


def test_sky_partitions_of_a_dense_field_split_deeper():
    """A field denser than a partition per order-7 pixel (where LSDB's from_dataframe stops)."""
    from hats.pixel_math.healpix_shim import radec2pix

    from tsm_core.redshifts.partitioning import sky_partitions

    rng = np.random.default_rng(4)
    n = 20_000
    frame = pd.DataFrame({"ra": rng.uniform(60.0, 60.3, n), "dec": rng.uniform(-30.0, -29.7, n), "n": np.arange(n)})
    catalog = sky_partitions(frame, rows_per_partition=1_000)
    parts = [catalog.partitions[i].compute() for i in range(catalog.npartitions)]
    assert max(len(p) for p in parts) <= 1_000
    assert sorted(np.concatenate([p["n"].to_numpy() for p in parts]).tolist()) == list(range(n))
    for pixel, part in zip(catalog.get_healpix_pixels(), parts):  # each row in its partition's pixel
        inside = radec2pix(pixel.order, part["ra"].to_numpy(float), part["dec"].to_numpy(float))
        assert (inside == pixel.pixel).all()


def test_a_catalog_registered_as_a_parquet_snapshot_still_runs(scene, base_config, tsm_home):
    """Catalogs registered by the previous version were stored as one Parquet snapshot."""
    from tsm_core.products.registry import Registry
    from tsm_core.redshifts.readers import read_redshift_catalog
    from tsm_core.redshifts.snapshots import write_snapshot

    table = read_redshift_catalog(scene["redshift_path"])
    old = tsm_home / "redshift_catalogs" / "old.parquet"
    old.parent.mkdir(parents=True, exist_ok=True)
    write_snapshot(table, old)
    Registry.at_home(tsm_home).add_redshift_catalog(
        "old", str(old), {}, len(table.frame), "", source_path=str(scene["redshift_path"]), convention="canonical"
    )
    from_snapshot = _read(tsm_core.run(dict(base_config, redshift_catalog={"name": "old"})).output_path)
    from_file = _read(tsm_core.run(base_config).output_path)
    key = ["id", "objectId"]
    pd.testing.assert_frame_equal(
        from_snapshot.sort_values(key, ignore_index=True), from_file.sort_values(key, ignore_index=True)
    )
    remove_redshift_catalog("old")
    assert not old.exists()


def test_a_field_denser_than_a_partition_per_order_7_pixel_registers(tmp_path, monkeypatch):
    """A dense spectroscopic field (here 3,000 redshifts in 0.01 deg2) with partitions of
    1,000 rows: LSDB's default order 7 cannot split it; the store goes deeper."""
    import hats

    from tsm_core.redshifts import store as redshift_store

    monkeypatch.setattr(redshift_store, "ROWS_PER_PARTITION", 1_000)
    rng = np.random.default_rng(5)
    n = 3_000
    dense = pd.DataFrame(
        {"ra": rng.uniform(150.0, 150.1, n), "dec": rng.uniform(2.0, 2.1, n), "z": rng.uniform(0, 1, n)}
    )
    dense.to_parquet(tmp_path / "dense.parquet")
    record = register_redshift_catalog("dense", tmp_path / "dense.parquet")
    main = hats.read_hats(record.path).main_catalog
    stats = main.per_partition_statistics(include_columns=["z"], include_stats=["row_count"])
    assert main.catalog_info.total_rows == n and stats.iloc[:, 0].max() <= 1_000
    assert max(p.order for p in main.get_healpix_pixels()) > 7


def test_sky_partitions_cut_on_the_object_catalog_s_pixels(scene):
    """A redshift file is cut on the object catalog's own partitions: one task per object partition."""
    import lsdb
    from hats.pixel_math.healpix_shim import radec2pix

    from tsm_core.redshifts.partitioning import sky_partitions

    objects = lsdb.open_catalog(scene["objects_path"])
    pixels = objects.get_healpix_pixels()
    z = scene["redshifts"]
    far = pd.DataFrame({"ra": [200.0], "dec": [60.0], "id": ["far"]})  # in no object partition
    frame = pd.concat([z[["ra", "dec", "id"]], far], ignore_index=True)
    catalog = sky_partitions(frame, pixels=pixels)
    assert set(catalog.get_healpix_pixels()) <= set(pixels)
    parts = [catalog.partitions[i].compute() for i in range(catalog.npartitions)]
    for pixel, part in zip(catalog.get_healpix_pixels(), parts):
        assert (
            len(part)
            and (radec2pix(pixel.order, part["ra"].to_numpy(float), part["dec"].to_numpy(float)) == pixel.pixel).all()
        )
    assert sorted(pd.concat(parts)["id"]) == sorted(z["id"])  # every redshift in a partition, the far one left out


def test_stored_partitions_finer_than_the_objects_are_read_together(
    scene, coarse_objects_path, base_config, monkeypatch
):
    """Where the stored partitions are finer than the object catalog's (dense redshifts),
    the crossmatch reads them together at the object pixel that holds them, so each object
    partition is read once; the training set is the brute-force match all the same."""
    import hats
    import lsdb
    from hats.pixel_math.healpix_shim import radec2pix

    from tsm_core.redshifts import side as redshift_side
    from tsm_core.redshifts import store as redshift_store
    from tsm_core.redshifts.partitioning import merged_on

    monkeypatch.setattr(redshift_store, "ROWS_PER_PARTITION", 60)
    monkeypatch.setattr(redshift_side, "READ_WHOLE_ROWS", 0)  # a large catalog's path: LSDB reads the partitions
    record = register_redshift_catalog("fine", scene["redshift_path"])
    stored = hats.read_hats(record.path).main_catalog.get_healpix_pixels()
    objects = lsdb.open_catalog(coarse_objects_path)
    object_pixels = objects.get_healpix_pixels()
    assert len(stored) > 2 * len(object_pixels) and min(p.order for p in stored) > max(p.order for p in object_pixels)

    merged = merged_on(lsdb.open_catalog(record.path, columns=["id", "ra", "dec"]), object_pixels)
    assert set(merged.get_healpix_pixels()) <= set(object_pixels)
    parts = [merged.partitions[i].compute() for i in range(merged.npartitions)]
    for pixel, part in zip(merged.get_healpix_pixels(), parts):
        assert (radec2pix(pixel.order, part["ra"].to_numpy(float), part["dec"].to_numpy(float)) == pixel.pixel).all()
    assert sorted(pd.concat(parts)["id"]) == sorted(scene["redshifts"]["id"])
    # a filter pushed into the read may name a column that is not loaded
    filtered = merged_on(
        lsdb.open_catalog(record.path, columns=["id", "ra", "dec"], filters=[("z", ">", 1.0)]), object_pixels
    )
    z = scene["redshifts"]
    assert sorted(filtered.compute()["id"]) == sorted(z.loc[z["z"] > 1.0, "id"])

    config = dict(base_config, redshift_catalog={"name": "fine"})
    config["object_catalog"] = {"release": "dp1", "path": str(coarse_objects_path)}
    rows = _read(tsm_core.run(config).output_path)
    expected = brute_force_match(scene["redshifts"], scene["objects"], 3.0, 1)
    assert sorted(zip(rows["id"], rows["objectId"])) == sorted(zip(expected["id"], expected["objectId"]))


def test_sky_partitions_for_worker_processes_carry_only_their_own_rows(scene):
    """With tasks sent to worker processes (``ship_rows``), each task holds its partition's
    rows, not the whole table; the partitions are the same as when they share the table."""
    import pickle

    import lsdb

    from tsm_core.redshifts.partitioning import sky_partitions

    pixels = lsdb.open_catalog(scene["objects_path"]).get_healpix_pixels()
    frame = scene["redshifts"]
    shared = sky_partitions(frame, pixels=pixels)
    shipped = sky_partitions(frame, pixels=pixels, ship_rows=True)
    assert shipped.get_healpix_pixels() == shared.get_healpix_pixels() and shipped.npartitions > 4
    for i in range(shipped.npartitions):
        pd.testing.assert_frame_equal(shipped.partitions[i].compute(), shared.partitions[i].compute())
    whole = len(pickle.dumps(frame))
    for task in shipped._operation.build().graph.values():
        assert len(pickle.dumps(task)) < whole / 3
    # (in-process tasks share the table instead: each refers to all of it)
    assert all(len(pickle.dumps(task)) > whole for task in shared._operation.build().graph.values())
