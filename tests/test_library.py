"""tsm_core as a library: a call leaves the caller's process as it found it."""

from __future__ import annotations

import copy
import os
import warnings

import dask

import tsm_core


def test_run_leaves_warnings_dask_and_environment_alone(base_config):
    filters = list(warnings.filters)
    config = copy.deepcopy(dask.config.config)
    environ = dict(os.environ)
    for scheduler in ("threads", "synchronous"):
        base_config["compute"] = {"scheduler": scheduler}
        base_config["name"] = f"library {scheduler}"
        assert tsm_core.run(base_config).n_rows > 0
        assert warnings.filters == filters
        assert dask.config.config == config
        assert dict(os.environ) == environ
