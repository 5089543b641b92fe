"""Output layouts: our own column names (``default``) or RAIL's (``rail``).

LSST DESC RAIL reads training files with ``tables_io``; its informers expect
``mag_{band}_lsst``, ``mag_err_{band}_lsst`` and ``redshift``, with non-detections as
NaN or a chosen number (often 99). The ``rail`` layout renames to exactly that and
fills missing magnitudes with ``output.non_detection``; HDF5 files put the columns
in the group ``photometry``, tables_io's default ``hdf5_groupname``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tsm_core.config import OutputConfig
from tsm_core.errors import ConfigError
from tsm_core.types import ColumnInfo

RAIL_NAMES = {"mag": "mag_{band}_lsst", "mag_err": "mag_err_{band}_lsst"}


def renames(info: dict[str, ColumnInfo], output: OutputConfig) -> dict[str, str]:
    """Old name -> new name for ``output.layout`` (empty for the default layout)."""
    if output.layout == "default":
        return {}
    if not any(c.quantity == "mag" for c in info.values()):
        raise ConfigError("output.layout", "the rail layout needs magnitudes: set object_catalog.convert_to_magnitudes")
    mapping = {}
    for name, col in info.items():
        if col.quantity in RAIL_NAMES and col.band:
            mapping[name] = RAIL_NAMES[col.quantity].format(band=col.band)
        elif col.quantity == "redshift":
            mapping[name] = "redshift"
    return mapping


def apply(frame: pd.DataFrame, info: dict[str, ColumnInfo], output: OutputConfig) -> pd.DataFrame:
    """``frame`` in the layout of ``output`` (fills RAIL non-detections)."""
    mapping = renames(info, output)
    if not mapping:
        return frame
    fill = output.non_detection
    if fill is not None and not math.isnan(fill):
        frame = frame.copy()
        for name, col in info.items():
            if col.quantity in ("mag", "mag_err"):
                values = frame[name].to_numpy(dtype=np.float64, copy=True)
                values[np.isnan(values)] = fill
                frame[name] = values
    return frame.rename(columns=mapping)


def column_info(info: dict[str, ColumnInfo], output: OutputConfig) -> dict[str, ColumnInfo]:
    """Column descriptions under the names of the layout."""
    mapping = renames(info, output)
    return {mapping.get(k, k): v for k, v in info.items()}
