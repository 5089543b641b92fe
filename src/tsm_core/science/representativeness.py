"""How well a training set covers the photometric sample it will be applied to.

With ``representativeness: {sample_fraction: 0.01, k: 20}`` a run

1. draws a random sample of the photometric objects: ``sample_fraction`` of every
   partition of the object catalog after the run's cuts, through the run's own
   photometry (same bands, dereddening and magnitudes), seeded by ``(seed, order,
   pixel)``. This is a second lazy LSDB pass over the object catalog (the crossmatch
   visits only the partitions that hold redshifts, the sample needs all of them), opened
   without cuts so that it also counts what each release cut and object filter removes;
2. writes a ``weight`` for every training row from the k-nearest-neighbour density
   ratio of Lima et al. (2008): ``r`` is the distance from the row to its k-th nearest
   other training row in magnitude (or colour) space, and
   ``weight = (N_phot(<= r) / N_phot) / (k / N_train)``. A non-detection (a missing
   magnitude) of a training or photometric row enters at the band's 1-sigma limit, the
   run's depth (:mod:`tsm_core.science.depths`, or ``output.mag_limits``) less
   ``R_b * E(B-V)`` of the row when the run dereddens, so every row gets a finite weight;
3. counts the photometric objects in cells of a self-organizing map (trained on the
   photometric sample) that hold no training object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tsm_core.columns import DIST_COLUMN, EBV_COLUMN, WEIGHT_COLUMN, ZROW_COLUMN
from tsm_core.config import RepresentativenessConfig
from tsm_core.science import magnitudes as phot
from tsm_core.science.depths import fill_non_detections
from tsm_core.science.filters import Filter, parse_filter
from tsm_core.science.photometry import Photometry

#: the key of the filters made from a release's own cuts
RELEASE_CUT = "release cut"
#: the self-organizing map is trained on at most this many photometric rows
SOM_TRAINING_ROWS = 100_000


def _reference_band(bands: Sequence[str]) -> str:
    return "i" if "i" in bands else bands[len(bands) // 2]


def feature_names(bands: Sequence[str], space: str) -> list[str]:
    """Names of the feature axes: ``mag_g, ...`` or ``mag_i, g-r, r-i, ...``."""
    if space == "magnitudes":
        return [f"mag_{b}" for b in bands]
    return [f"mag_{_reference_band(bands)}"] + [f"{a}-{b}" for a, b in zip(bands[:-1], bands[1:])]


def magnitudes(frame: pd.DataFrame, photometry: Photometry) -> np.ndarray:
    """(n, bands) magnitudes of the photometry's output columns in ``frame``."""
    cols = []
    for band in photometry.bands:
        values = frame[photometry.output_names(band)[0]].to_numpy(dtype=np.float64, na_value=np.nan)
        cols.append(values if photometry.to_magnitudes else phot.flux_to_mag(values, photometry.catalog.zero_point))
    return np.column_stack(cols) if cols else np.zeros((len(frame), 0))


def features(mags: np.ndarray, bands: Sequence[str], space: str) -> np.ndarray:
    """The feature matrix of ``space`` from (n, bands) magnitudes."""
    if space == "magnitudes" or mags.shape[1] < 2:
        return mags
    ref = list(bands).index(_reference_band(bands))
    return np.column_stack([mags[:, ref], mags[:, :-1] - mags[:, 1:]])


def release_cut_filters(cuts: Sequence[tuple[str, str, Any]]) -> list[Filter]:
    """A release's pushed-down ``(column, op, value)`` cuts as filters of the filter language."""
    out = []
    for column, op, value in cuts:
        literal = repr(list(value)) if op in ("in", "not in") else repr(value)
        out.append(parse_filter(f"`{column}` {op} {literal}", RELEASE_CUT))
    return out


@dataclass(frozen=True)
class PartitionSampler:
    """Picklable: one uncut object partition -> the objects each cut removes, then the
    seeded random fraction of the objects left, as magnitudes."""

    photometry: Photometry
    fraction: float
    seed: int
    cuts: tuple[Filter, ...] = ()

    def __call__(self, frame: pd.DataFrame, order: int, pixel: int) -> tuple[pd.DataFrame, int, list[int]]:
        n_rows = len(frame)
        removed = []
        for cut in self.cuts:  # in order: each counts what the ones before it left
            keep = cut.mask(frame)
            removed.append(int(len(frame) - keep.sum()))
            frame = frame[keep]
        rng = np.random.default_rng([self.seed, order, pixel])
        part = frame[rng.random(len(frame)) < self.fraction]
        blanks = {c: np.full(len(part), np.nan) for c in (ZROW_COLUMN, *self.photometry.redshift_columns, DIST_COLUMN)}
        out = self.photometry(part.assign(**blanks))
        mags = pd.DataFrame(magnitudes(out, self.photometry), columns=list(self.photometry.bands))
        if EBV_COLUMN in out.columns and self.photometry.ebv is not None:  # for the limits of its non-detections
            mags[EBV_COLUMN] = out[EBV_COLUMN].to_numpy(dtype=np.float64)
        return mags, n_rows, removed


def sample_tasks(objects: Any, sampler: PartitionSampler) -> list[Any]:
    """Delayed ``(magnitudes, rows before cuts, removed per cut)`` per partition of the lazy catalog."""
    import dask

    pixels = objects.get_healpix_pixels()
    return [dask.delayed(sampler)(part, p.order, p.pixel) for part, p in zip(objects.to_delayed(), pixels)]


def knn_weights(train: np.ndarray, photometric: np.ndarray, k: int) -> np.ndarray:
    """Lima et al. (2008) weights of the rows of ``train`` (both arrays (n, d), finite).

    ``r_i`` is the distance to the k-th nearest other training row; the weight is the
    fraction of ``photometric`` rows within ``r_i`` (inclusive) over ``k / len(train)``.
    """
    from scipy.spatial import cKDTree

    n_train, n_phot = len(train), len(photometric)
    if n_train < 2 or n_phot == 0:
        return np.full(n_train, np.nan)
    k = min(k, n_train - 1)
    dist, _ = cKDTree(train).query(train, k=k + 1)
    radius = dist[:, -1] if dist.ndim == 2 else dist
    inside = cKDTree(photometric).query_ball_point(train, radius, return_length=True)
    return (np.asarray(inside, dtype=np.float64) / n_phot) / (k / n_train)


@dataclass
class SOM:
    """A small batch self-organizing map on standardized features (numpy only)."""

    shape: tuple[int, int]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray = field(repr=False)

    @classmethod
    def train(cls, data: np.ndarray, shape: tuple[int, int], seed: int, n_iter: int = 30) -> SOM:
        """Fit to ``data`` (n, d): prototypes start at random rows; the neighbourhood shrinks."""
        mean, scale = data.mean(axis=0), data.std(axis=0)
        scale[scale == 0] = 1.0
        x = (data - mean) / scale
        rng = np.random.default_rng(seed)
        n_cells = shape[0] * shape[1]
        weights = x[rng.choice(len(x), n_cells, replace=len(x) < n_cells)].copy()
        gy, gx = np.divmod(np.arange(n_cells), shape[1])
        grid2 = (gy[:, None] - gy[None, :]) ** 2 + (gx[:, None] - gx[None, :]) ** 2
        som = cls(shape, mean, scale, weights)
        for sigma in np.geomspace(max(shape) / 2, 0.5, n_iter):
            bmu = som._bmu(x)
            h = np.exp(-grid2 / (2 * sigma**2))
            counts = np.bincount(bmu, minlength=n_cells).astype(np.float64)
            sums = np.zeros_like(weights)
            np.add.at(sums, bmu, x)
            den = h @ counts
            ok = den > 0
            som.weights[ok] = (h @ sums)[ok] / den[ok, None]
        return som

    def _bmu(self, x: np.ndarray) -> np.ndarray:
        out = np.empty(len(x), dtype=np.int64)
        w2 = (self.weights**2).sum(axis=1)
        for start in range(0, len(x), 50_000):
            chunk = x[start : start + 50_000]
            out[start : start + len(chunk)] = np.argmin(w2[None, :] - 2 * chunk @ self.weights.T, axis=1)
        return out

    def assign(self, data: np.ndarray) -> np.ndarray:
        """The cell (0 .. rows*cols-1) of every row of ``data``."""
        return self._bmu((data - self.mean) / self.scale)


def empty_cell_fraction(phot_cells: np.ndarray, train_cells: np.ndarray, n_cells: int) -> float:
    """Fraction of photometric rows whose cell holds no training row."""
    if not len(phot_cells):
        return float("nan")
    has_train = np.bincount(train_cells, minlength=n_cells) > 0
    return float((~has_train[phot_cells]).mean())


def _histograms(mags: np.ndarray, bands: Sequence[str]) -> dict[str, dict[str, list[float]]]:
    out = {}
    for j, band in enumerate(bands):
        values = mags[:, j][np.isfinite(mags[:, j])]
        if len(values):
            counts, edges = np.histogram(values, bins=40)
            out[band] = {
                "edges": edges.round(5).tolist(),
                "counts": counts.tolist(),
                "non_detected": float(1 - len(values) / len(mags)),
            }
    return out


def assess(
    train_mags: np.ndarray, phot_mags: np.ndarray, bands: Sequence[str], config: RepresentativenessConfig
) -> tuple[np.ndarray, dict[str, Any]]:
    """Weights for the training rows and the summary stored in the provenance."""
    train_x = features(train_mags, bands, config.space)
    phot_x = features(phot_mags, bands, config.space)
    t_ok = np.isfinite(train_x).all(axis=1)
    p_ok = np.isfinite(phot_x).all(axis=1)
    weights = np.full(len(train_x), np.nan)
    k = min(config.k, max(int(t_ok.sum()) - 1, 1))
    weights[t_ok] = knn_weights(train_x[t_ok], phot_x[p_ok], k)  # k bounded by the training rows
    n_cells = config.som_shape[0] * config.som_shape[1]
    summary: dict[str, Any] = {
        "method": "k-nearest-neighbour density ratio (Lima et al. 2008)",
        "space": config.space,
        "features": feature_names(bands, config.space),
        "k": k,
        "sample_fraction": config.sample_fraction,
        "seed": config.seed,
        "n_photometric": int(len(phot_x)),
        "n_photometric_used": int(p_ok.sum()),
        "n_training": int(len(train_x)),
        "n_training_used": int(t_ok.sum()),
    }
    finite = weights[np.isfinite(weights)]
    if len(finite):
        summary["weights"] = {
            "min": float(finite.min()),
            "median": float(np.median(finite)),
            "max": float(finite.max()),
            "zero": int((finite == 0).sum()),
        }
    if p_ok.sum() >= 2 and t_ok.any():
        rng = np.random.default_rng(config.seed)
        fit_on = phot_x[p_ok]
        if len(fit_on) > SOM_TRAINING_ROWS:  # the map's shape is set by a seeded subset; every row is assigned
            fit_on = fit_on[rng.choice(len(fit_on), SOM_TRAINING_ROWS, replace=False)]
        som = SOM.train(fit_on, config.som_shape, config.seed)
        phot_cells, train_cells = som.assign(phot_x[p_ok]), som.assign(train_x[t_ok])
        summary["som"] = {
            "shape": list(config.som_shape),
            "photometric_counts": np.bincount(phot_cells, minlength=n_cells).tolist(),
            "training_counts": np.bincount(train_cells, minlength=n_cells).tolist(),
        }
        summary["empty_cell_fraction"] = empty_cell_fraction(phot_cells, train_cells, n_cells)
    return weights, summary


def check_bands(config: RepresentativenessConfig, bands: Sequence[str]) -> tuple[str, ...]:
    """The bands of the feature space; fails naming a band the run does not have."""
    chosen = tuple(config.bands or bands)
    unknown = [b for b in chosen if b not in bands]
    if unknown or not chosen:
        from tsm_core.errors import ConfigError

        raise ConfigError(
            "representativeness.bands",
            f"band(s) {unknown} not among the run's bands {list(bands)}" if unknown else "needs at least one band",
        )
    return chosen


def describe(config: RepresentativenessConfig) -> str:
    """One line: how the weights were made."""
    bands = f" of {''.join(config.bands)}" if config.bands else ""
    return (
        f"k={config.k} in {config.space}{bands} space, photometric sample fraction {config.sample_fraction} "
        f"(seed {config.seed}); a non-detection at the band's 1-sigma depth"
    )


class Weigher:
    """The run's side of representativeness: sample, then weigh the matched rows in order.

    :meth:`sample` runs the pass over the object partitions; :meth:`fit` computes the
    weights of the kept matched rows (their magnitude columns, in output order), their
    non-detections at :attr:`limits` (set by the run: the depths it measured);
    :meth:`apply` then adds the ``weight`` column to the frames as they are written.
    """

    def __init__(self, photometry: Photometry, config: RepresentativenessConfig) -> None:
        self.photometry = photometry
        self.config = config
        self.bands = check_bands(config, photometry.bands)
        self.key_columns = [photometry.output_names(b)[0] for b in photometry.bands]
        self.dereddened = photometry.ebv is not None
        if self.dereddened:
            self.key_columns.append(EBV_COLUMN)
        self.limits: Callable[[], Mapping[str, float]] | None = None
        self.phot_mags = np.zeros((0, len(photometry.bands)))
        self.phot_ebv: np.ndarray | None = None
        self.n_objects = 0
        self.n_objects_after_cuts = 0
        self.cut_counts: dict[str, int] = {}
        self.weights: np.ndarray | None = None
        self.summary: dict[str, Any] = {}
        self._offset = 0

    def sample(
        self,
        path: str,
        columns: Sequence[str],
        cuts: Sequence[Filter],
        in_flight: int,
        scheduler: Any = None,
        cancel: Any = None,
    ) -> None:
        """Draw the photometric sample from every partition of the object catalog at ``path``.

        The catalog is opened again without any cut (``columns`` and the cuts' columns),
        so that the pass counts what each cut (release cuts, then object filters)
        removes, in ``cut_counts``, before sampling what they leave.
        """
        import lsdb

        from tsm_core.compute.scheduler import stream

        load = list(dict.fromkeys([*columns, *(c for cut in cuts for c in cut.columns)]))
        objects = lsdb.open_catalog(path, columns=load)
        sampler = PartitionSampler(self.photometry, self.config.sample_fraction, self.config.seed, tuple(cuts))
        parts: list[pd.DataFrame] = []
        removed = np.zeros(len(cuts), dtype=np.int64)
        self.n_objects = 0
        computed = stream(sample_tasks(objects, sampler), in_flight, scheduler=scheduler, cancel=cancel)
        for mags, n_rows, cut_removed in computed:
            parts.append(mags)
            self.n_objects += n_rows
            removed += np.asarray(cut_removed, dtype=np.int64)
        kinds = {True: "release cut", False: "object filter"}
        self.cut_counts = {f"{kinds[cut.key == RELEASE_CUT]} {cut.expression}": int(n) for cut, n in zip(cuts, removed)}
        self.n_objects_after_cuts = self.n_objects - int(removed.sum())
        if parts:
            sample = pd.concat(parts, ignore_index=True)
            self.phot_mags = sample[list(self.photometry.bands)].to_numpy(dtype=np.float64)
            if EBV_COLUMN in sample.columns:
                self.phot_ebv = sample[EBV_COLUMN].to_numpy(dtype=np.float64)

    def fit(self, keys: pd.DataFrame) -> None:
        """Weights of the rows of ``keys`` (the written rows, in order)."""
        used = [self.photometry.bands.index(b) for b in self.bands]
        train, phot = magnitudes(keys, self.photometry)[:, used], self.phot_mags[:, used]
        limits = dict(self.limits()) if self.limits is not None else {}
        if limits:  # non-detections at the band's limit, in the system of the magnitudes
            at = [limits.get(b, np.nan) for b in self.bands]
            r_b = [self.photometry.coefficients[b] for b in self.bands] if self.dereddened else None
            ebv = keys[EBV_COLUMN].to_numpy(dtype=np.float64) if self.dereddened else None
            train = fill_non_detections(train, at, r_b, ebv)
            phot = fill_non_detections(phot, at, r_b, self.phot_ebv if self.dereddened else None)
        self.weights, self.summary = assess(train, phot, self.bands, self.config)
        self.summary["non_detections"] = {
            "rule": "a missing magnitude enters at the band's 1-sigma limit"
            + (" less R_b * E(B-V) of the row" if self.dereddened else ""),
            "limits": {b: limits.get(b) for b in self.bands},
        }
        self.summary["objects"] = self.n_objects
        self.summary["objects_after_cuts"] = self.n_objects_after_cuts
        self.summary["removed_by_cut"] = self.cut_counts
        self.summary["photometric_histograms"] = _histograms(self.phot_mags, self.photometry.bands)
        self._offset = 0

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with its ``weight`` column (the next rows of the fitted weights)."""
        if self.weights is None:
            return frame.assign(**{WEIGHT_COLUMN: np.zeros(len(frame), dtype=np.float64) * np.nan})
        chunk = self.weights[self._offset : self._offset + len(frame)]
        self._offset += len(frame)
        return frame.assign(**{WEIGHT_COLUMN: chunk})
