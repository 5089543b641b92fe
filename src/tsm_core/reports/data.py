"""The numbers of a training-set report, computed from the product's rows and provenance.

:func:`compute_numbers` gives the JSON-ready dict the page and the web show: the funnel,
n(z) per survey (weighted where the set has weights), separations against the radius with
the chance-match level expected from the local object density, the ambiguity of the
matches (:mod:`.ambiguity`), magnitudes per band with
their non-detection fractions, median colours per redshift bin, matched redshifts per
HEALPix pixel over the object catalog's coverage, the representativeness summary and the
depths per band (:mod:`.depths`).
The column helpers (:func:`redshifts`, :func:`magnitudes`, :func:`weights`) serve the
figures too.
"""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsm_core.columns import DIST_COLUMN, WEIGHT_COLUMN
from tsm_core.pipeline.funnel import NO_SURVEY
from tsm_core.plugins.records import LSST_BANDS
from tsm_core.products.registry import ProductRecord
from tsm_core.reports import ambiguity
from tsm_core.reports.depths import depth_numbers

#: names a redshift column has in the default and the RAIL layout
REDSHIFT_NAMES = ("z", "redshift")
DIST_NAME, WEIGHT_NAME = DIST_COLUMN, WEIGHT_COLUMN


def redshifts(frame: pd.DataFrame) -> np.ndarray:
    """The spectroscopic redshifts of ``frame`` as floats (zeros where it has no redshift column)."""
    zname = next((c for c in REDSHIFT_NAMES if c in frame.columns), None)
    if zname is None:
        return np.zeros(len(frame))
    return pd.to_numeric(frame[zname], errors="coerce").to_numpy(float, na_value=np.nan)


def weights(frame: pd.DataFrame) -> np.ndarray | None:
    """The representativeness weights of ``frame`` (``None`` where it has none)."""
    return frame[WEIGHT_NAME].to_numpy(float, na_value=np.nan) if WEIGHT_NAME in frame.columns else None


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    return value


def _bands(prov: dict[str, Any]) -> list[str]:
    configured = (prov.get("config") or {}).get("object_catalog", {}).get("bands")
    if configured:
        return list(configured)
    try:
        from tsm_core import plugins

        return list(plugins.object_catalog(prov.get("release", "")).bands)
    except Exception:  # noqa: BLE001 - a product of a release no longer installed
        return list(LSST_BANDS)


def magnitudes(frame: pd.DataFrame, prov: dict[str, Any]) -> dict[str, np.ndarray]:
    """Magnitude per band, whatever the layout (RAIL names, magnitudes or fluxes)."""
    from tsm_core.science.magnitudes import flux_to_mag

    flux_type = prov.get("flux_type", "")
    zero_point = float(prov.get("zero_point", 31.4))
    output = (prov.get("config") or {}).get("output", {})
    fill = output.get("non_detection")
    if fill is None and output.get("layout") == "rail":
        fill = (prov.get("rail_layout") or {}).get("non_detection", 99.0)  # RAIL's nondetect_val by default
    out = {}
    for band in _bands(prov):
        for name, is_flux in (
            (f"mag_{band}_lsst", False),
            (f"{band}_{flux_type}Mag_dered", False),
            (f"{band}_{flux_type}Mag", False),
            (f"{band}_{flux_type}Flux_dered", True),
            (f"{band}_{flux_type}Flux", True),
        ):
            if name in frame.columns:
                values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                if is_flux:
                    values = flux_to_mag(values, zero_point)
                elif fill is not None:
                    values = np.where(values == fill, np.nan, values)
                out[band] = values
                break
    return out


def _surveys(frame: pd.DataFrame) -> pd.Series:
    if "survey" in frame.columns:
        return frame["survey"].astype("string").fillna(NO_SURVEY)
    return pd.Series(["all"] * len(frame), dtype="string")


def _hist(values: np.ndarray, edges: np.ndarray, weights: np.ndarray | None = None) -> list[float]:
    ok = np.isfinite(values) if weights is None else np.isfinite(values) & np.isfinite(weights)
    counts, _ = np.histogram(values[ok], bins=edges, weights=None if weights is None else weights[ok])
    return counts.tolist()


def _sky_order(pixels: list[list[Any]]) -> int:
    return int(min(max((p[0] for p in pixels), default=6) + 1, 10))


def compute_numbers(record: ProductRecord, frame: pd.DataFrame) -> dict[str, Any]:
    """The numbers of the report of ``record`` whose file holds ``frame``."""
    from hats.pixel_math.healpix_shim import radec2pix

    prov = record.provenance or {}
    cfg = prov.get("config") or record.config
    radius = float(cfg.get("crossmatch", {}).get("radius_arcsec", 1.0))
    z = redshifts(frame)
    weight = weights(frame)
    surveys = _surveys(frame)
    numbers: dict[str, Any] = {
        "product": {
            "id": record.id,
            "name": record.name,
            "description": record.description,
            "release": prov.get("release"),
            "redshift_catalog": prov.get("redshift_catalog"),
            "format": cfg.get("output", {}).get("format"),
            "rows": record.n_rows,
            "file": Path(record.output_path).name if record.output_path else None,
            "created_at": record.created_at,
            "finished_at": record.finished_at,
            "flux_type": prov.get("flux_type"),
            "dereddening": prov.get("dereddening"),
            "radius_arcsec": radius,
            "n_neighbors": cfg.get("crossmatch", {}).get("n_neighbors", 1),
            "unique_galaxies": cfg.get("unique_galaxies", "none"),
        },
        "funnel": prov.get("funnel", {"steps": [], "surveys": []}),
    }
    # n(z) per survey (and weighted, where the set has weights)
    finite_z = z[np.isfinite(z)]
    zmin = min(float(finite_z.min()), 0.0) if len(finite_z) else 0.0  # stars and blueshifts below 0 kept
    zmax = float(finite_z.max()) if len(finite_z) else 1.0
    zedges = np.linspace(zmin, max(zmax * 1.02, zmin + 0.1), 31)
    nz: dict[str, Any] = {"edges": zedges.tolist(), "counts": {}, "weighted": {}}
    for survey in sorted(surveys.unique()):
        sel = (surveys == survey).to_numpy()
        nz["counts"][survey] = _hist(z[sel], zedges)
        if weight is not None:
            nz["weighted"][survey] = _hist(z[sel], zedges, weight[sel])
    nz["median_z"] = {s: float(np.nanmedian(z[(surveys == s).to_numpy()])) for s in nz["counts"] if len(z)}
    numbers["nz"] = nz
    # separations and the chance-match level
    sep: dict[str, Any] = {"radius_arcsec": radius}
    if DIST_NAME in frame.columns:
        dist = frame[DIST_NAME].to_numpy(float, na_value=np.nan)
        edges = np.linspace(0.0, radius, 21)
        sep.update(
            edges=edges.tolist(),
            counts=_hist(dist, edges),
            median_arcsec=float(np.nanmedian(dist)) if len(dist) else None,
        )
        density_sum = (prov.get("sky") or {}).get("density_sum_per_arcsec2")
        if density_sum is not None:
            expected = density_sum * math.pi * (edges[1:] ** 2 - edges[:-1] ** 2)
            sep.update(
                chance_per_bin=expected.tolist(),
                chance_within_radius=float(expected.sum()),
                chance_note="unrelated objects expected at these separations from the local object "
                "density of each covered redshift's partition (objects per partition area)",
            )
    numbers["separation"] = sep
    amb = ambiguity.numbers(frame, radius)  # None for a product made before the ambiguity columns
    if amb is not None:
        numbers["ambiguity"] = amb
    # magnitudes per band with non-detection fractions
    mags = magnitudes(frame, prov)
    rep = prov.get("representativeness") or {}
    phot_hist = rep.get("photometric_histograms", {})
    mag_numbers: dict[str, Any] = {}
    for band, values in mags.items():
        finite = values[np.isfinite(values)]
        if band in phot_hist:  # the photometric sample's bins; values beyond them count in the edge bins
            edges = np.asarray(phot_hist[band]["edges"], dtype=np.float64)
            values = np.clip(values, edges[0], edges[-1])
        else:
            edges = (
                np.linspace(finite.min(), np.nextafter(finite.max(), np.inf), 31)
                if len(finite)
                else np.linspace(15, 30, 31)
            )
        entry = {
            "edges": edges.tolist(),
            "counts": _hist(values, edges),
            "non_detection_fraction": float(1 - len(finite) / len(values)) if len(values) else None,
        }
        if weight is not None:
            entry["weighted"] = _hist(values, edges, weight)
        if band in phot_hist:
            entry["photometric_counts"] = phot_hist[band]["counts"]
            entry["photometric_non_detection_fraction"] = phot_hist[band].get("non_detected")
        mag_numbers[band] = entry
    numbers["magnitudes"] = mag_numbers
    # colour-redshift panels: median colour per redshift bin
    colours: dict[str, Any] = {"edges": zedges.tolist(), "median": {}}
    bands = list(mags)
    for a, b in pairwise(bands):
        colour = mags[a] - mags[b]
        ok = np.isfinite(colour) & np.isfinite(z)
        idx = np.digitize(z[ok], zedges) - 1
        colours["median"][f"{a}-{b}"] = [
            float(np.median(colour[ok][idx == i])) if (idx == i).any() else None for i in range(len(zedges) - 1)
        ]
    numbers["colours"] = colours
    # sky: matched redshifts per HEALPix pixel over the coverage
    sky_prov = prov.get("sky") or {}
    pixels = sky_prov.get("coverage", [])
    order = _sky_order(pixels)
    counts: dict[int, int] = {}
    if {"ra", "dec"} <= set(frame.columns) and len(frame):
        pix = radec2pix(order, frame["ra"].to_numpy(float), frame["dec"].to_numpy(float))
        uniq, n = np.unique(pix, return_counts=True)
        counts = dict(zip(uniq.tolist(), n.tolist()))
    numbers["sky"] = {
        "order": order,
        "matched_per_pixel": {str(k): v for k, v in counts.items()},
        "coverage_partitions": pixels,
        "n_covered_redshifts": sky_prov.get("n_covered"),
    }
    if rep:
        numbers["representativeness"] = {k: v for k, v in rep.items() if k != "photometric_histograms"}
    depths = depth_numbers(prov)
    if depths:
        numbers["depths"] = depths
    return _json_ready(numbers)
