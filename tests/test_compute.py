"""The same training set on threads and on a local cluster of worker processes."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

import tsm_core


@pytest.mark.slow
def test_local_cluster_gives_the_same_rows(base_config):
    base_config["crossmatch"]["n_neighbors"] = 2
    base_config["object_catalog"]["dereddening"] = "catalog"
    base_config["compute"] = {"scheduler": "threads", "n_workers": 2}
    threaded = pq.read_table(tsm_core.run(base_config).output_path).to_pandas()
    base_config["compute"] = {"scheduler": "processes", "n_workers": 2, "memory_limit": "2GB"}
    processes = pq.read_table(tsm_core.run(base_config).output_path).to_pandas()
    key = ["id", "objectId"]
    a = threaded.sort_values(key).reset_index(drop=True)
    b = processes.sort_values(key).reset_index(drop=True)
    assert len(a) > 100
    import pandas as pd

    pd.testing.assert_frame_equal(a, b)


def test_bad_scheduler_named(base_config):
    base_config["compute"] = {"scheduler": "gpu"}
    with pytest.raises(tsm_core.TSMError, match="compute.scheduler: .gpu. is neither one of threads, processes"):
        tsm_core.run(base_config)


def test_numba_cache_enabled_for_hats(tmp_path):
    from numba.core.caching import NullCache

    from hats.pixel_tree import pixel_alignment
    from tsm_core import numba_cache

    numba_cache.enable(tmp_path / "cache")
    assert not isinstance(pixel_alignment.perform_align_trees._cache, NullCache)
    assert numba_cache.enable(tmp_path / "cache") == 0  # already on: nothing more to switch
