"""Spectroscopic redshift catalogs: reading, survey conventions, normalization, the stored copy, the run's redshift side."""
