"""Parquet, CSV, FITS and HDF5 writers for the Training Set Maker."""
