"""Uploaded redshift catalogs: size-limited, stored under a generated name, and checked
against the operator's limits on decompressed bytes and rows before anything reads them whole.

The check (:func:`check_limits`) keeps the server's memory bounded: compressed files are
decompressed in chunks and counted, Parquet files are judged from their footer, FITS files
from their headers, HDF5 files from their datasets' shapes and types. Only where metadata
cannot bound the decoded size is data read, in bounded pieces: the dictionaries and indices
of dictionary-encoded Parquet strings, the descriptors of variable-length HDF5 values. HDF5
attributes that are pickles able to run code are refused (pandas' reader would load them).
"""

from tsm_web.uploads.check import check_limits
from tsm_web.uploads.limits import UploadLimits, UploadRefused, UploadTooLarge
from tsm_web.uploads.saving import save_upload, suffix_of

__all__ = ["UploadLimits", "UploadRefused", "UploadTooLarge", "check_limits", "save_upload", "suffix_of"]
