"""Output layouts: our own column names (``default``) or RAIL's (``rail``).

LSST DESC RAIL reads training files with ``tables_io``; with its default parameters
(``rail.core.common_params``) its informers and estimators expect ``redshift``,
``mag_{band}_lsst`` and ``mag_err_{band}_lsst`` in the HDF5 group ``photometry``, and
non-detections as ``nondetect_val = 99`` (which KNearNeigh, BPZ and others replace by
the band's limiting magnitude). The ``rail`` layout writes exactly that:

* a missing magnitude (flux <= 0 or NaN) becomes ``output.non_detection`` (99 if
  unset) and its error the band's 1-sigma limiting magnitude, as in RAIL's own DC2
  training files and ``rail_bpz`` (the release's ``mag_limits``, overridden per band by
  ``output.mag_limits``);
* a valid magnitude whose error is NaN gets the error a source of that magnitude has
  when the noise is the band's 1-sigma limit: ``2.5/ln(10) * 10**(0.4 (mag - limit))``.

What was used is recorded in the file's provenance (``rail_layout``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from tsm_core.config import OutputConfig
from tsm_core.errors import ConfigError
from tsm_core.plugins.records import ColumnInfo

RAIL_NAMES = {"mag": "mag_{band}_lsst", "mag_err": "mag_err_{band}_lsst"}
#: RAIL's ``nondetect_val``
RAIL_NON_DETECTION = 99.0
#: 2.5 / ln(10): magnitude error of a source at signal-to-noise 1
MAG_ERR_AT_SNR1 = 2.5 / math.log(10)
NAN_ERROR_RULE = "2.5/ln(10) * 10**(0.4 * (mag - mag_limit)): the error at the band's 1-sigma limit"


@dataclass(frozen=True)
class RailFill:
    """How the rail layout fills non-detections and missing errors."""

    non_detection: float
    mag_limits: Mapping[str, float]
    source: str

    def provenance(self) -> dict[str, Any]:
        """What goes into the file's provenance under ``rail_layout``."""
        return {
            "non_detection": self.non_detection,
            "non_detection_error": "the band's 1-sigma limiting magnitude (mag_limits)",
            "mag_limits": dict(self.mag_limits),
            "mag_limits_source": self.source,
            "nan_error": NAN_ERROR_RULE,
        }


def rail_fill(
    output: OutputConfig, release_limits: Mapping[str, float], release: str, bands: Sequence[str]
) -> RailFill | None:
    """The fill of the rail layout for ``bands`` (None for the default layout).

    Raises a :class:`ConfigError` when a band has no limiting magnitude.
    """
    if output.layout != "rail":
        return None
    overrides = output.mag_limits or {}
    unknown = sorted(set(overrides) - set(bands))
    if unknown:
        raise ConfigError("output.mag_limits", f"unknown band(s) {unknown}; the run has {list(bands)}")
    limits = {b: float(overrides.get(b, release_limits.get(b, math.nan))) for b in bands}
    lacking = [b for b, v in limits.items() if not math.isfinite(v)]
    if lacking:
        raise ConfigError(
            "output.mag_limits",
            f"no 1-sigma limiting magnitude for band(s) {lacking} of {release}; "
            "give them, e.g. {" + ", ".join(f"{b}: 27.0" for b in lacking) + "}",
        )
    source = f"release {release}" + (f", overridden by output.mag_limits for {sorted(overrides)}" if overrides else "")
    fill = RAIL_NON_DETECTION if output.non_detection is None else float(output.non_detection)
    return RailFill(fill, limits, source)


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


def fill_band(mag: np.ndarray, err: np.ndarray, limit: float, non_detection: float) -> tuple[np.ndarray, np.ndarray]:
    """One band's magnitudes and errors with non-detections and NaN errors filled."""
    mag = np.array(mag, dtype=np.float64)
    err = np.array(err, dtype=np.float64)
    missing = np.isnan(mag)
    no_error = ~missing & np.isnan(err)
    err[no_error] = MAG_ERR_AT_SNR1 * 10 ** (0.4 * (mag[no_error] - limit))
    if not math.isnan(non_detection):
        mag[missing] = non_detection
        err[missing] = limit
    return mag, err


def apply(
    frame: pd.DataFrame, info: dict[str, ColumnInfo], output: OutputConfig, fill: RailFill | None = None
) -> pd.DataFrame:
    """``frame`` in the layout of ``output`` (fills RAIL non-detections with ``fill``)."""
    mapping = renames(info, output)
    if not mapping:
        return frame
    if fill is not None and len(frame):
        frame = frame.copy()
        pairs: dict[str, dict[str, str]] = {}
        for name, col in info.items():
            if col.quantity in ("mag", "mag_err") and col.band:
                pairs.setdefault(col.band, {})[col.quantity] = name
        for band, names in pairs.items():
            frame[names["mag"]], frame[names["mag_err"]] = fill_band(
                frame[names["mag"]].to_numpy(dtype=np.float64, na_value=np.nan),
                frame[names["mag_err"]].to_numpy(dtype=np.float64, na_value=np.nan),
                fill.mag_limits[band],
                fill.non_detection,
            )
    return frame.rename(columns=mapping)


def column_info(info: dict[str, ColumnInfo], output: OutputConfig) -> dict[str, ColumnInfo]:
    """Column descriptions under the names of the layout (saying how non-detections are written)."""
    mapping = renames(info, output)
    fill = RAIL_NON_DETECTION if output.non_detection is None else output.non_detection
    notes = (
        {
            "mag": f"; {fill} where not detected",
            "mag_err": "; the band's 1-sigma limiting magnitude where not detected",
        }
        if mapping and not math.isnan(fill)
        else {}
    )
    return {
        mapping.get(k, k): replace(v, description=v.description + notes.get(v.quantity or "", "")) if v.band else v
        for k, v in info.items()
    }


def file_extension(extension: str, output: OutputConfig) -> str:
    """The output file's extension: Parquet in the rail layout is ``.pq``.

    ``tables_io`` (RAIL's reader) reads ``.pq`` as a pandas DataFrame, which RAIL's
    stages take, and ``.parquet`` as an Arrow table, which its informers cannot use.
    """
    if output.layout == "rail" and extension == "parquet":
        return "pq"
    return extension
