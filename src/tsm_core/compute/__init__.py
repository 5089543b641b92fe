"""Where the Dask graph runs: schedulers, worker set-up, the numba cache, known warnings."""

#: the name of the daemon thread that computes a run's next batch ahead (``tsm`` exits without
#: waiting for it after an error: see :func:`tsm_core.cli.main.main`)
PREFETCH_THREAD = "tsm-prefetch"
