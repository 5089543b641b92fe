"""Where the Dask graph runs: schedulers, worker set-up, the numba cache, known warnings."""
