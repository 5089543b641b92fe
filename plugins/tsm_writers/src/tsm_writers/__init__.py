"""Parquet, CSV, FITS, HDF5 and HATS writers for the Training Set Maker."""
