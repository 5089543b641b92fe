"""Output layouts: our own column names (``default``) or RAIL's (``rail``).

LSST DESC RAIL reads training files with ``tables_io``; with its default parameters
(``rail.core.common_params``) its informers and estimators expect ``redshift``,
``mag_{band}_lsst`` and ``mag_err_{band}_lsst`` in the HDF5 group ``photometry``, and
non-detections as ``nondetect_val = 99`` (which KNearNeigh, BPZ and others replace by
the band's limiting magnitude). The ``rail`` layout writes exactly that:

* a missing magnitude (flux <= 0 or NaN) becomes ``output.non_detection`` (99 if
  unset) and its error the band's 1-sigma limiting magnitude, as in RAIL's own DC2
  training files and ``rail_bpz``: the depth measured from the partitions the run read
  (:mod:`tsm_core.science.depths`; the release's ``mag_limits`` for a band with no finite
  flux error), overridden per band by ``output.mag_limits``; when the run dereddens, the
  limit of a row is ``limit - R_b * E(B-V)``, in the system of its magnitudes;
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

from tsm_core.columns import EBV_COLUMN
from tsm_core.config import OutputConfig
from tsm_core.errors import ConfigError
from tsm_core.plugins.records import ColumnInfo
from tsm_core.science.depths import SOURCE_FALLBACK, SOURCE_MEASURED, Depths

RAIL_NAMES = {"mag": "mag_{band}_lsst", "mag_err": "mag_err_{band}_lsst"}
#: RAIL's ``nondetect_val``
RAIL_NON_DETECTION = 99.0
#: 2.5 / ln(10): magnitude error of a source at signal-to-noise 1
MAG_ERR_AT_SNR1 = 2.5 / math.log(10)
NAN_ERROR_RULE = "2.5/ln(10) * 10**(0.4 * (mag - mag_limit)): the error at the band's 1-sigma limit"
OVERRIDE_SOURCE = "output.mag_limits"


@dataclass(frozen=True)
class RailFill:
    """How the rail layout fills non-detections and missing errors.

    ``mag_limits`` are the bands' 1-sigma limits (observed system), ``sources`` where each
    came from; ``extinction`` (R_b per band) is set when the run dereddens, and a row's
    limit is then ``mag_limits[b] - R_b * E(B-V)``.
    """

    non_detection: float
    mag_limits: Mapping[str, float]
    sources: Mapping[str, str]
    extinction: Mapping[str, float] | None = None

    @property
    def needs_depths(self) -> bool:
        """True when a band's limit is to come from the measured depths (not overridden)."""
        return any(s != OVERRIDE_SOURCE for s in self.sources.values())

    def with_depths(self, depths: Depths, release: str) -> RailFill:
        """The fill with the measured ``depths`` for every band not overridden; fails
        naming ``output.mag_limits`` for a band left with no limit at all."""
        limits, sources = dict(self.mag_limits), dict(self.sources)
        for band in limits:
            if sources[band] != OVERRIDE_SOURCE:
                limits[band] = float(depths.values.get(band, math.nan))
                sources[band] = depths.sources.get(band, SOURCE_FALLBACK)
        lacking = [b for b, v in limits.items() if not math.isfinite(v)]
        if lacking:
            raise ConfigError(
                "output.mag_limits",
                f"no 1-sigma limiting magnitude for band(s) {lacking} of {release} (no finite flux error "
                "read and none configured); give them, e.g. {" + ", ".join(f"{b}: 27.0" for b in lacking) + "}",
            )
        return replace(self, mag_limits=limits, sources=sources)

    def row_limits(self, band: str, frame: pd.DataFrame) -> float | np.ndarray:
        """The limit of ``band`` for each row of ``frame`` (dereddened with its E(B-V) when the run dereddens)."""
        limit = self.mag_limits[band]
        if self.extinction is None or EBV_COLUMN not in frame.columns:
            return limit
        ebv = np.nan_to_num(frame[EBV_COLUMN].to_numpy(dtype=np.float64, na_value=np.nan))
        return limit - self.extinction[band] * ebv

    def provenance(self) -> dict[str, Any]:
        """What goes into the file's provenance under ``rail_layout``."""
        by_source: dict[str, list[str]] = {}
        for band, source in self.sources.items():
            by_source.setdefault(source, []).append(band)
        dered = ", less R_b * E(B-V) of the row (dereddened like the magnitudes)" if self.extinction else ""
        return {
            "non_detection": self.non_detection,
            "non_detection_error": f"the band's 1-sigma limiting magnitude (mag_limits){dered}",
            "mag_limits": dict(self.mag_limits),
            "mag_limits_source": "; ".join(f"{s} for {', '.join(b)}" for s, b in by_source.items()),
            "mag_limits_sources": dict(self.sources),
            "dereddened": self.extinction is not None,
            "nan_error": NAN_ERROR_RULE,
        }


def rail_fill(
    output: OutputConfig,
    bands: Sequence[str],
    extinction: Mapping[str, float] | None = None,
) -> RailFill | None:
    """The fill of the rail layout for ``bands`` (None for the default layout), before the
    run: the bands ``output.mag_limits`` overrides, the others waiting for the measured
    depths (:meth:`RailFill.with_depths`). Raises a :class:`ConfigError` on an unknown band."""
    if output.layout != "rail":
        return None
    overrides = output.mag_limits or {}
    unknown = sorted(set(overrides) - set(bands))
    if unknown:
        raise ConfigError("output.mag_limits", f"unknown band(s) {unknown}; the run has {list(bands)}")
    limits = {b: float(overrides.get(b, math.nan)) for b in bands}
    sources = {b: OVERRIDE_SOURCE if b in overrides else SOURCE_MEASURED for b in bands}
    fill = RAIL_NON_DETECTION if output.non_detection is None else float(output.non_detection)
    return RailFill(fill, limits, sources, dict(extinction) if extinction is not None else None)


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


def fill_band(
    mag: np.ndarray, err: np.ndarray, limit: float | np.ndarray, non_detection: float
) -> tuple[np.ndarray, np.ndarray]:
    """One band's magnitudes and errors with non-detections and NaN errors filled
    (``limit``: the band's, or one per row)."""
    mag = np.array(mag, dtype=np.float64)
    err = np.array(err, dtype=np.float64)
    limits = np.broadcast_to(np.asarray(limit, dtype=np.float64), mag.shape)
    missing = np.isnan(mag)
    no_error = ~missing & np.isnan(err)
    err[no_error] = MAG_ERR_AT_SNR1 * 10 ** (0.4 * (mag[no_error] - limits[no_error]))
    if not math.isnan(non_detection):
        mag[missing] = non_detection
        err[missing] = limits[missing]
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
                fill.row_limits(band, frame),
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
