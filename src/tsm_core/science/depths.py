"""1-sigma limiting magnitudes (depths) per band, measured from the object rows a run reads.

A row's 1-sigma depth in a band is the magnitude of a source whose flux equals the row's
flux error: ``-2.5 log10(fluxErr) + zero_point`` (errors that are NaN or <= 0 give none).
A run's depth in a band is the **median of that over every object row of the partitions
the crossmatch reads** (after the release's cuts and the object filters; margin rows are
not counted twice), in the release's observed (not dereddened) system.

The median is gathered without a second pass: each partition read gives a fixed-bin
histogram of its row depths (:class:`DepthCounter`, bins of :data:`BIN_MAG` from
:data:`LOW_MAG` to :data:`HIGH_MAG`, values outside counted in the end bins), the run adds
them up (:class:`DepthTally`), and the median is read from the summed histogram: the
centre of the bin holding the middle row (the mean of the two middle rows' bin centres for
an even count), so it is the exact median of the rows read to within half a bin (0.0005 mag).
A band with no finite error in any partition read falls back to the release's configured
limit, and the provenance says so.

:func:`fill_non_detections` puts such a limit (less ``R_b * E(B-V)`` per row when the run
dereddens) where a magnitude is missing: the rail layout's errors and the weights use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: the histogram of row depths: bins of BIN_MAG magnitudes from LOW_MAG to HIGH_MAG
LOW_MAG, HIGH_MAG, BIN_MAG = 10.0, 40.0, 0.001
N_BINS = round((HIGH_MAG - LOW_MAG) / BIN_MAG)
METHOD = (
    "median of -2.5 log10(fluxErr) + zero point over the object rows of the partitions the crossmatch "
    f"reads (after cuts and object filters), from per-partition histograms of {BIN_MAG} mag bins "
    "(exact to half a bin)"
)
SOURCE_MEASURED = "measured"
SOURCE_FALLBACK = "release mag_limits (no finite flux error in the partitions read)"


def row_depths(flux_err: np.ndarray, zero_point: float) -> np.ndarray:
    """``-2.5 log10(fluxErr) + zero_point`` of the rows with a finite, positive error."""
    err = np.asarray(flux_err, dtype=np.float64)
    err = err[np.isfinite(err) & (err > 0)]
    return -2.5 * np.log10(err) + zero_point


def histogram(depths: np.ndarray) -> np.ndarray:
    """Counts of ``depths`` in the :data:`N_BINS` fixed bins (outside values in the end bins)."""
    index = np.clip(np.floor((depths - LOW_MAG) / BIN_MAG), 0, N_BINS - 1).astype(np.int64)
    return np.bincount(index, minlength=N_BINS)


def histogram_median(counts: np.ndarray) -> float:
    """The median (bin centres) of the values counted in ``counts``; NaN when empty."""
    total = int(counts.sum())
    if total == 0:
        return math.nan
    cumulative = np.cumsum(counts)
    # 0-based ranks of the middle values, as numpy's median takes them
    ranks = (total // 2,) if total % 2 else (total // 2 - 1, total // 2)
    bins = [int(np.searchsorted(cumulative, r + 1)) for r in ranks]
    return float(np.mean([LOW_MAG + (b + 0.5) * BIN_MAG for b in bins]))


@dataclass(frozen=True)
class DepthCounter:
    """Picklable: one object partition -> ``{band: (bin indices, counts)}`` of its row depths."""

    err_columns: Mapping[str, str]
    zero_point: float

    def __call__(self, frame: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for band, column in self.err_columns.items():
            err = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
            counts = histogram(row_depths(err, self.zero_point))
            nonzero = np.flatnonzero(counts)
            out[band] = (nonzero, counts[nonzero])
        return out


@dataclass
class DepthTally:
    """The run's sum of the partitions' histograms, then its depths per band."""

    bands: Sequence[str]
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    partitions: int = 0

    def add(self, part: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Add one partition's sparse histograms (from :class:`DepthCounter`)."""
        self.partitions += 1
        for band, (index, counts) in part.items():
            total = self.counts.setdefault(band, np.zeros(N_BINS, dtype=np.int64))
            np.add.at(total, index, counts)

    def depths(self, fallback: Mapping[str, float]) -> Depths:
        """The measured depth of each band; ``fallback`` (the release's limits) where none was measured."""
        values, rows, sources = {}, {}, {}
        for band in self.bands:
            counts = self.counts.get(band, np.zeros(N_BINS, dtype=np.int64))
            rows[band] = int(counts.sum())
            median = histogram_median(counts)
            if math.isfinite(median):
                values[band], sources[band] = round(median, 4), SOURCE_MEASURED
            else:
                values[band], sources[band] = float(fallback.get(band, math.nan)), SOURCE_FALLBACK
        return Depths(values, rows, sources, self.partitions)


@dataclass(frozen=True)
class Depths:
    """The 1-sigma depth of each band, the rows it was measured on and where it came from."""

    values: Mapping[str, float]
    rows: Mapping[str, int]
    sources: Mapping[str, str]
    partitions: int

    def provenance(self, zero_point: float) -> dict[str, Any]:
        """What goes into the provenance under ``depths``."""
        return {
            "method": METHOD,
            "zero_point": zero_point,
            "partitions": self.partitions,
            "bands": {
                b: {"depth": self.values[b], "rows": self.rows[b], "source": self.sources[b]} for b in self.values
            },
        }


def fill_non_detections(
    mags: np.ndarray, limits: Sequence[float], extinction: Sequence[float] | None, ebv: np.ndarray | None
) -> np.ndarray:
    """(n, bands) magnitudes with each missing one set to its band's limit, less
    ``R_b * E(B-V)`` of its row when ``extinction`` (R_b per band) and ``ebv`` are given
    (a NaN E(B-V) counts as 0), i.e. the limit in the system of the magnitudes."""
    mags = np.array(mags, dtype=np.float64)
    if mags.size == 0:
        return mags
    fill = np.broadcast_to(np.asarray(limits, dtype=np.float64), mags.shape).copy()
    if extinction is not None and ebv is not None:
        fill -= np.nan_to_num(np.asarray(ebv, dtype=np.float64))[:, None] * np.asarray(extinction)[None, :]
    missing = ~np.isfinite(mags)
    mags[missing] = fill[missing]
    return mags
