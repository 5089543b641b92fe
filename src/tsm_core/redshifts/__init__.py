"""Spectroscopic redshift catalogs: reading, survey conventions, normalization, the stored
copy, the run's redshift side.

- :mod:`~tsm_core.redshifts.readers`: the file formats (Parquet, CSV, FITS, HDF5, HATS) and
  :func:`~tsm_core.redshifts.readers.read_redshift_catalog`, the entry point: read and normalize.
- :mod:`~tsm_core.redshifts.conventions`: the built-in survey conventions (a built-in plugin).
- :mod:`~tsm_core.redshifts.normalize`: column mapping, row validation and normalization.
- :mod:`~tsm_core.redshifts.table`: :class:`~tsm_core.redshifts.table.RedshiftTable`, a
  normalized catalog, and the types of its columns.
- :mod:`~tsm_core.redshifts.store`: registered catalogs stored as HATS collections.
- :mod:`~tsm_core.redshifts.snapshots`: the legacy Parquet snapshots of registered catalogs.
- :mod:`~tsm_core.redshifts.registration`: register, look up and remove catalogs.
- :mod:`~tsm_core.redshifts.partitioning`: sky partitions of a table for the crossmatch.
- :mod:`~tsm_core.redshifts.side`: the run's redshift side (the lazy catalog it matches).

Nothing is re-exported here: the built-in conventions are loaded with the plugins, and
``tsm --help`` must not import pandas.
"""
