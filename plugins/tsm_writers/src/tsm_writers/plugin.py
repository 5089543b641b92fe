"""The writer hook of the ``tsm-writers`` plugin."""

from __future__ import annotations

from tsm_core import Writer, hookimpl
from tsm_writers.csv import CSVWriter
from tsm_writers.ecsv import ECSVWriter
from tsm_writers.fits import FITSWriter
from tsm_writers.hats import HATSWriter
from tsm_writers.hdf5 import HDF5Writer
from tsm_writers.parquet import ParquetWriter


@hookimpl
def tsm_writers() -> list[Writer]:
    return [ParquetWriter(), CSVWriter(), ECSVWriter(), FITSWriter(), HDF5Writer(), HATSWriter()]
