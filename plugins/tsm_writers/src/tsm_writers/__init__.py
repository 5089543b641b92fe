"""Parquet, CSV, ECSV, FITS, HDF5 and HATS writers for the Training Set Maker."""
