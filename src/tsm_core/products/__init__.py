"""Training-set products and the registry that records them.

- :mod:`~tsm_core.products.registry`: the SQLite registry (SQL only), its records in
  :mod:`~tsm_core.products.records`, its tables and migrations in :mod:`~tsm_core.products.schema`;
- :mod:`~tsm_core.products.process`: which process runs a product (host, pid, start token);
- :mod:`~tsm_core.products.cancel`: the token that stops a run between partitions;
- :mod:`~tsm_core.products.lifecycle`: cancel and remove a training set;
- :mod:`~tsm_core.products.recovery`: mark failed the runs whose process is gone (once per process);
- :mod:`~tsm_core.products.output`: output file names, the output folder, sinks, full-disk errors;
- :mod:`~tsm_core.products.claims`: claims on output names, staging, all-or-none placement.
"""
