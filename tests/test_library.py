"""tsm_core as a library: a call leaves the caller's process as it found it."""

from __future__ import annotations

import copy
import os
import warnings

import dask
import pandas as pd
import pyarrow.parquet as pq
import pytest

import tsm_core


@pytest.mark.slow
def test_run_leaves_warnings_dask_and_environment_alone(base_config):
    filters = list(warnings.filters)
    config = copy.deepcopy(dask.config.config)
    environ = dict(os.environ)
    rows = {}
    for scheduler in ("threads", "synchronous", "processes"):
        base_config["compute"] = {"scheduler": scheduler, "n_workers": 1}  # one worker process is enough here
        base_config["name"] = f"library {scheduler}"
        result = tsm_core.run(base_config)
        assert result.n_rows > 0
        rows[scheduler] = (
            pq.read_table(result.output_path).to_pandas().sort_values(["id", "objectId"], ignore_index=True)
        )
        assert warnings.filters == filters
        assert dask.config.config == config
        assert dict(os.environ) == environ
    from distributed import default_client

    with pytest.raises(ValueError, match="No clients found"):
        default_client()  # the run's client was never the process's default
    for scheduler in ("synchronous", "processes"):  # every scheduler gives the same rows
        pd.testing.assert_frame_equal(rows[scheduler], rows["threads"])
