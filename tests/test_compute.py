"""The same training set on threads and on a dask.distributed cluster given by address."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

import tsm_core
from helpers import brute_force_match
from tsm_core.redshifts.registration import register_redshift_catalog


def _read(path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


@pytest.mark.slow
def test_registered_catalog_on_a_cluster_given_by_address(scene, base_config):
    """The README's cluster form: a running dask.distributed scheduler's address (here a
    LocalCluster of two worker processes, as dask-jobqueue's SLURMCluster gives one), with a
    registered (stored HATS) redshift catalog read by the workers: the same rows as threads,
    and as an astropy brute-force match. (``scheduler: processes`` is checked in test_library.)"""
    from distributed import LocalCluster

    register_redshift_catalog("scene", scene["redshift_path"])
    base_config["crossmatch"]["n_neighbors"] = 2
    base_config["object_catalog"]["dereddening"] = "catalog"
    base_config.update(
        redshift_catalog={"name": "scene"}, filters={"redshift": ["z_flag >= 2", "abs(z - 1) > 0.1"]}
    )  # pushed, and evaluated per partition
    base_config["compute"] = {"scheduler": "threads", "n_workers": 2}
    threaded = _read(tsm_core.run(base_config).output_path)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", memory_limit="1.5GB"
    ) as cluster:
        base_config["compute"] = {"scheduler": cluster.scheduler_address}
        clustered = _read(tsm_core.run(base_config).output_path)
    key = ["id", "objectId"]
    z = scene["redshifts"]
    kept = z[(z["z_flag"] >= 2) & ((z["z"] - 1).abs() > 0.1)].reset_index(drop=True)
    expected = brute_force_match(kept, scene["objects"], 3.0, 2)
    assert len(clustered) > 100
    assert sorted(zip(clustered["id"], clustered["objectId"])) == sorted(zip(expected["id"], expected["objectId"]))
    pd.testing.assert_frame_equal(
        clustered.sort_values(key).reset_index(drop=True), threaded.sort_values(key).reset_index(drop=True)
    )


def test_bad_scheduler_named(base_config):
    base_config["compute"] = {"scheduler": "gpu"}
    with pytest.raises(tsm_core.TSMError, match="compute.scheduler: .gpu. is neither one of threads, processes"):
        tsm_core.run(base_config)


def test_numba_cache_enabled_for_hats(tmp_path):
    from hats.pixel_tree import pixel_alignment
    from numba.core.caching import NullCache

    from tsm_core.compute import numba_cache

    numba_cache.enable(tmp_path / "cache")
    assert not isinstance(pixel_alignment.perform_align_trees._cache, NullCache)
    assert numba_cache.enable(tmp_path / "cache") == 0  # already on: nothing more to switch
