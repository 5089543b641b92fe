"""The training-set report: a self-contained HTML page and a JSON of its numbers.

:func:`report` reads a finished product's file (Parquet, CSV, FITS or HDF5, with the
standard readers) and its provenance from the registry, and writes
``<product file stem>.report.html`` and ``.report.json``: the funnel, n(z) per survey,
the separation histogram against the radius and the chance-match level expected from
the local object density, magnitude distributions per band with their non-detection
fractions, colour-redshift panels, a HEALPix sky map of the matched redshifts over the
object catalog's coverage and, where the run asked for it, the representativeness of
the set (weights and self-organizing-map cells without training objects).

Figures are drawn with matplotlib's Agg canvas on figures made here (never pyplot, so
no backend is set for the process) and embedded as base64 PNG; the page loads nothing
from the network. :func:`report_data` and :func:`report_html` give the web service the
dict and the page.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsm_core.columns import DIST_COLUMN, WEIGHT_COLUMN
from tsm_core.config import tsm_home
from tsm_core.errors import CatalogError, TSMError
from tsm_core.pipeline.funnel import NO_SURVEY
from tsm_core.products.registry import ProductRecord, Registry
from tsm_core.plugins.records import LSST_BANDS

#: names a redshift column has in the default and the RAIL layout
REDSHIFT_NAMES = ("z", "redshift")
DIST_NAME, WEIGHT_NAME = DIST_COLUMN, WEIGHT_COLUMN
FIGURES = ("funnel", "nz", "separation", "magnitudes", "colours", "sky", "representativeness")


@dataclass(frozen=True)
class ReportFiles:
    """Where :func:`report` wrote the page and its numbers."""

    html: Path
    json: Path


# -- reading -----------------------------------------------------------------------------
def _read_hdf5(path: Path) -> pd.DataFrame:
    import h5py

    with h5py.File(path, "r") as fh:
        groups = [g for g in fh.values() if isinstance(g, h5py.Group)] or [fh]
        group = max(groups, key=len)
        columns = {}
        for name, ds in group.items():
            if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
                continue
            if h5py.check_string_dtype(ds.dtype) is not None:
                columns[name] = ds.asstr()[()]
            else:
                values = ds[()]
                if "null_value" in ds.attrs:
                    values = pd.array(values, dtype="Int64")
                    values[values == ds.attrs["null_value"]] = pd.NA
                columns[name] = values
    return pd.DataFrame(columns)


def read_product_file(path: str | Path) -> pd.DataFrame:
    """A product file as a DataFrame: Parquet, CSV, FITS or HDF5, by its extension."""
    from tsm_core.redshifts.reading import file_format, read_table

    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"the product file {path} does not exist (moved or deleted?)", "product")
    try:
        fmt = file_format(path)
    except CatalogError:
        raise CatalogError(f"no reader for the product file {path}: a report reads Parquet, CSV, FITS and HDF5 files",
                           "product") from None
    if fmt == "hdf5":
        return _read_hdf5(path)
    return read_table(path)


def _done_product(product_id: int) -> ProductRecord:
    record = Registry.at_home(tsm_home()).product(product_id)
    if record.status != "done" or not record.output_path:
        raise TSMError(f"training set {product_id} is {record.status}: only a finished training set has a report")
    return record


# -- numbers -----------------------------------------------------------------------------
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


def _magnitudes(frame: pd.DataFrame, prov: dict[str, Any]) -> dict[str, np.ndarray]:
    """Magnitude per band, whatever the layout (RAIL names, magnitudes or fluxes)."""
    from tsm_core.science.magnitudes import flux_to_mag

    flux_type = prov.get("flux_type", "")
    zero_point = float(prov.get("zero_point", 31.4))
    fill = (prov.get("config") or {}).get("output", {}).get("non_detection")
    out = {}
    for band in _bands(prov):
        for name, is_flux in ((f"mag_{band}_lsst", False), (f"{band}_{flux_type}Mag_dered", False),
                              (f"{band}_{flux_type}Mag", False), (f"{band}_{flux_type}Flux_dered", True),
                              (f"{band}_{flux_type}Flux", True)):
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
    zname = next((c for c in REDSHIFT_NAMES if c in frame.columns), None)
    z = pd.to_numeric(frame[zname], errors="coerce").to_numpy(float, na_value=np.nan) if zname else np.zeros(len(frame))
    weights = frame[WEIGHT_NAME].to_numpy(float, na_value=np.nan) if WEIGHT_NAME in frame.columns else None
    surveys = _surveys(frame)
    numbers: dict[str, Any] = {
        "product": {
            "id": record.id, "name": record.name, "description": record.description,
            "release": prov.get("release"), "redshift_catalog": prov.get("redshift_catalog"),
            "format": cfg.get("output", {}).get("format"), "rows": record.n_rows,
            "file": Path(record.output_path).name if record.output_path else None,
            "created_at": record.created_at, "finished_at": record.finished_at,
            "flux_type": prov.get("flux_type"), "dereddening": prov.get("dereddening"),
            "radius_arcsec": radius, "n_neighbors": cfg.get("crossmatch", {}).get("n_neighbors", 1),
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
        if weights is not None:
            nz["weighted"][survey] = _hist(z[sel], zedges, weights[sel])
    nz["median_z"] = {s: float(np.nanmedian(z[(surveys == s).to_numpy()])) for s in nz["counts"] if len(z)}
    numbers["nz"] = nz
    # separations and the chance-match level
    sep: dict[str, Any] = {"radius_arcsec": radius}
    if DIST_NAME in frame.columns:
        dist = frame[DIST_NAME].to_numpy(float, na_value=np.nan)
        edges = np.linspace(0.0, radius, 21)
        sep.update(edges=edges.tolist(), counts=_hist(dist, edges),
                   median_arcsec=float(np.nanmedian(dist)) if len(dist) else None)
        density_sum = (prov.get("sky") or {}).get("density_sum_per_arcsec2")
        if density_sum is not None:
            expected = density_sum * math.pi * (edges[1:] ** 2 - edges[:-1] ** 2)
            sep.update(chance_per_bin=expected.tolist(), chance_within_radius=float(expected.sum()),
                       chance_note="unrelated objects expected at these separations from the local object "
                       "density of each covered redshift's partition (objects per partition area)")
    numbers["separation"] = sep
    # magnitudes per band with non-detection fractions
    mags = _magnitudes(frame, prov)
    rep = prov.get("representativeness") or {}
    phot_hist = rep.get("photometric_histograms", {})
    mag_numbers: dict[str, Any] = {}
    for band, values in mags.items():
        finite = values[np.isfinite(values)]
        if band in phot_hist:  # the photometric sample's bins; values beyond them count in the edge bins
            edges = np.asarray(phot_hist[band]["edges"], dtype=np.float64)
            values = np.clip(values, edges[0], edges[-1])
        else:
            edges = np.linspace(finite.min(), np.nextafter(finite.max(), np.inf), 31) if len(finite) else np.linspace(15, 30, 31)
        entry = {"edges": edges.tolist(), "counts": _hist(values, edges),
                 "non_detection_fraction": float(1 - len(finite) / len(values)) if len(values) else None}
        if weights is not None:
            entry["weighted"] = _hist(values, edges, weights)
        if band in phot_hist:
            entry["photometric_counts"] = phot_hist[band]["counts"]
            entry["photometric_non_detection_fraction"] = phot_hist[band].get("non_detected")
        mag_numbers[band] = entry
    numbers["magnitudes"] = mag_numbers
    # colour-redshift panels: median colour per redshift bin
    colours: dict[str, Any] = {"edges": zedges.tolist(), "median": {}}
    bands = list(mags)
    for a, b in zip(bands[:-1], bands[1:]):
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
    numbers["sky"] = {"order": order, "matched_per_pixel": {str(k): v for k, v in counts.items()},
                      "coverage_partitions": pixels, "n_covered_redshifts": sky_prov.get("n_covered")}
    if rep:
        numbers["representativeness"] = {k: v for k, v in rep.items() if k != "photometric_histograms"}
    return _json_ready(numbers)


# -- figures -----------------------------------------------------------------------------
def _figure(draw: Callable[[Any], None], size: tuple[float, float]) -> str:
    """A PNG of a figure drawn by ``draw(fig)``, base64; Agg canvas, no pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    draw(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _draw_funnel(numbers: dict[str, Any]) -> Callable[[Any], None]:
    steps = [s for s in numbers["funnel"].get("steps", [])
             if s["kind"] in ("total", "removed") and s["remaining"] is not None and (s["kind"] == "total" or s["count"])]

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        labels = [s["label"] if s["kind"] == "total" else f"− {s['label']}" for s in steps]
        remaining = [s["remaining"] for s in steps]
        colours = ["#4477aa" if s["kind"] == "total" else "#ee6677" for s in steps]
        y = np.arange(len(steps))[::-1]
        ax.barh(y, remaining, color=colours)
        for yi, s in zip(y, steps):
            text = f"{s['remaining']}" + (f"  (−{s['count']})" if s["kind"] == "removed" else "")
            ax.text(s["remaining"], yi, " " + text, va="center", fontsize=8)
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_xlabel("remaining (redshifts, then rows)")
        ax.set_xlim(0, max(remaining or [1]) * 1.25)
        ax.set_title("Funnel: what is left after each step")

    return draw


def _draw_nz(numbers: dict[str, Any]) -> Callable[[Any], None]:
    nz = numbers["nz"]

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        edges = np.asarray(nz["edges"])
        for survey, counts in nz["counts"].items():
            line = ax.stairs(counts, edges, label=f"{survey} ({sum(counts)})", linewidth=1.5)
            if survey in nz.get("weighted", {}):
                ax.stairs(nz["weighted"][survey], edges, linestyle="--", color=line.get_edgecolor(), linewidth=1)
        ax.set_xlabel("spectroscopic redshift z")
        ax.set_ylabel("rows per bin")
        title = "n(z) per survey" + (" (dashed: weighted)" if nz.get("weighted") else "")
        ax.set_title(title)
        if nz["counts"]:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no rows", ha="center", transform=ax.transAxes)

    return draw


def _draw_separation(numbers: dict[str, Any]) -> Callable[[Any], None]:
    sep = numbers["separation"]

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        if "edges" in sep:
            edges = np.asarray(sep["edges"])
            ax.stairs(sep["counts"], edges, fill=True, alpha=0.6, label="matches")
            if "chance_per_bin" in sep:
                ax.stairs(sep["chance_per_bin"], edges, color="#cc3311", linewidth=2,
                          label=f"chance level ({sep['chance_within_radius']:.1f} within the radius)")
        ax.axvline(sep["radius_arcsec"], color="k", linestyle=":", label=f"radius {sep['radius_arcsec']:g} arcsec")
        ax.set_xlabel("separation (arcsec)")
        ax.set_ylabel("rows per bin")
        ax.set_title("Separation between redshift and object")
        ax.legend(fontsize=8)

    return draw


def _grid(fig: Any, n: int, cols: int) -> list[Any]:
    rows = max(1, math.ceil(n / cols))
    return [fig.add_subplot(rows, cols, i + 1) for i in range(n)]


def _draw_magnitudes(numbers: dict[str, Any]) -> Callable[[Any], None]:
    mags = numbers["magnitudes"]

    def draw(fig: Any) -> None:
        for ax, (band, m) in zip(_grid(fig, len(mags), 3), mags.items()):
            edges = np.asarray(m["edges"])
            width = np.diff(edges)
            train = np.asarray(m["counts"], float)
            ax.stairs(train / max(train.sum(), 1) / width, edges, label="training", linewidth=1.5)
            if "weighted" in m:
                w = np.asarray(m["weighted"], float)
                ax.stairs(w / max(w.sum(), 1e-12) / width, edges, label="weighted", linestyle="--")
            if "photometric_counts" in m:
                p = np.asarray(m["photometric_counts"], float)
                ax.stairs(p / max(p.sum(), 1) / width, edges, label="photometric", color="grey")
            nd = m["non_detection_fraction"]
            ax.set_title(f"{band}: {100 * nd:.1f}% not detected" if nd is not None else band, fontsize=9)
            ax.set_xlabel(f"{band} (AB mag)", fontsize=8)
            ax.tick_params(labelsize=7)
        if mags:
            fig.axes[0].legend(fontsize=7)
        fig.suptitle("Magnitude distributions (normalized)")

    return draw


def _draw_colours(numbers: dict[str, Any], frame_z: np.ndarray, mags: dict[str, np.ndarray]) -> Callable[[Any], None]:
    bands = list(mags)
    pairs = list(zip(bands[:-1], bands[1:]))

    def draw(fig: Any) -> None:
        for ax, (a, b) in zip(_grid(fig, len(pairs), 3), pairs):
            colour = mags[a] - mags[b]
            ok = np.isfinite(colour) & np.isfinite(frame_z)
            if ok.sum() > 5000:
                ax.hexbin(frame_z[ok], colour[ok], gridsize=40, mincnt=1, cmap="viridis")
            else:
                ax.scatter(frame_z[ok], colour[ok], s=3, alpha=0.5)
            centres = np.asarray(numbers["colours"]["edges"])
            mid = 0.5 * (centres[1:] + centres[:-1])
            med = np.array([np.nan if v is None else v for v in numbers["colours"]["median"][f"{a}-{b}"]])
            ax.plot(mid, med, color="#cc3311", linewidth=1.5)
            if ok.any():
                lo, hi = np.percentile(colour[ok], [1, 99])
                ax.set_ylim(lo - 0.2, hi + 0.2)
            ax.set_xlabel("z", fontsize=8)
            ax.set_ylabel(f"{a} − {b}", fontsize=8)
            ax.tick_params(labelsize=7)
        fig.suptitle("Colour against redshift (red: median)")

    return draw


def _draw_sky(numbers: dict[str, Any]) -> Callable[[Any], None]:
    from cdshealpix.nested import vertices
    from matplotlib.collections import PolyCollection

    sky = numbers["sky"]

    def polygons(order: int, pixels: list[int]) -> list[np.ndarray]:
        if not pixels:
            return []
        lon, lat = vertices(np.asarray(pixels, dtype=np.uint64), order, step=2)
        lon, lat = np.degrees(np.asarray(lon)), np.degrees(np.asarray(lat))
        return [np.column_stack([lo, la]) for lo, la in zip(lon, lat)]

    def draw(fig: Any) -> None:
        cover = [poly for o, p in sky["coverage_partitions"] for poly in polygons(int(o), [int(p)])]
        matched_pix = [int(k) for k in sky["matched_per_pixel"]]
        matched = polygons(sky["order"], matched_pix)
        if not cover + matched:
            fig.add_subplot().text(0.5, 0.5, "no coverage recorded", ha="center")
            return
        values = np.array([sky["matched_per_pixel"][str(p)] for p in matched_pix], float)
        groups = _sky_groups(cover + matched)
        norm = None
        if len(values):
            from matplotlib.colors import Normalize

            norm = Normalize(vmin=0, vmax=values.max())
        axes = _grid(fig, len(groups), min(len(groups), 3))
        coll = None
        for ax, members in zip(axes, groups):
            chosen = set(members.tolist())
            group_cover = [p for i, p in enumerate(cover) if i in chosen]
            group_matched = [(p, v) for j, (p, v) in enumerate(zip(matched, values)) if len(cover) + j in chosen]
            every = group_cover + [p for p, _ in group_matched]
            centres = np.array([_centre(p) for p in every])
            ra0 = math.degrees(math.atan2(np.sin(np.radians(centres[:, 0])).mean(), np.cos(np.radians(centres[:, 0])).mean()))

            def unwrap(poly: np.ndarray, ra0: float = ra0) -> np.ndarray:
                x = (poly[:, 0] - ra0 + 180.0) % 360.0 - 180.0
                x = x[0] + (x - x[0] + 180.0) % 360.0 - 180.0  # keep a pixel in one piece
                return np.column_stack([x, poly[:, 1]])

            ax.add_collection(PolyCollection([unwrap(p) for p in group_cover], facecolor="#dddddd",
                                             edgecolor="#999999", linewidth=0.3))
            if group_matched:
                coll = PolyCollection([unwrap(p) for p, _ in group_matched], array=np.array([v for _, v in group_matched]),
                                      cmap="viridis", norm=norm, edgecolor="none")
                ax.add_collection(coll)
            xy = np.vstack([unwrap(p) for p in every])
            pad = 0.05 * max(np.ptp(xy[:, 0]), np.ptp(xy[:, 1]), 0.01)
            ax.set_xlim(xy[:, 0].max() + pad, xy[:, 0].min() - pad)  # RA grows to the left
            ax.set_ylim(xy[:, 1].min() - pad, xy[:, 1].max() + pad)
            ax.set_aspect(1 / max(math.cos(math.radians(float(np.clip(xy[:, 1].mean(), -85, 85)))), 0.1))
            ax.xaxis.set_major_formatter(lambda v, _, ra0=ra0: f"{(v + ra0) % 360:.5g}")
            ax.set_xlabel("RA (deg)", fontsize=8)
            ax.set_ylabel("Dec (deg)", fontsize=8)
            ax.tick_params(labelsize=7)
        if coll is not None:
            fig.colorbar(coll, ax=axes, label=f"matched redshifts per pixel (order {sky['order']})", shrink=0.8)
        fig.suptitle("Matched redshifts over the object catalog's partitions (grey)")

    return draw


def _centre(poly: np.ndarray) -> tuple[float, float]:
    """(lon, lat) of the mean unit vector of a polygon's (lon, lat) vertices: right across RA = 0."""
    lon, lat = np.radians(poly[:, 0]), np.radians(poly[:, 1])
    x, y, z = (np.cos(lat) * np.cos(lon)).mean(), (np.cos(lat) * np.sin(lon)).mean(), np.sin(lat).mean()
    return math.degrees(math.atan2(y, x)) % 360.0, math.degrees(math.atan2(z, math.hypot(x, y)))


def _sky_groups(polygons: list[np.ndarray], link_deg: float = 3.0, most: int = 6) -> list[np.ndarray]:
    """Indices of the polygons in each patch of sky (centres closer than ``link_deg`` chain),
    the ``most`` largest patches, so that separate fields get a panel each."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    centres = np.radians(np.array([_centre(p) for p in polygons]))
    xyz = np.column_stack([np.cos(centres[:, 1]) * np.cos(centres[:, 0]), np.cos(centres[:, 1]) * np.sin(centres[:, 0]),
                           np.sin(centres[:, 1])])
    pairs = cKDTree(xyz).query_pairs(2 * math.sin(math.radians(link_deg) / 2), output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(xyz), len(xyz))) if len(pairs) else \
        coo_matrix((len(xyz), len(xyz)))
    _, labels = connected_components(graph, directed=False)
    groups = sorted((np.flatnonzero(labels == k) for k in np.unique(labels)), key=len, reverse=True)
    return groups[:most]


def _draw_representativeness(numbers: dict[str, Any], weights: np.ndarray | None) -> Callable[[Any], None]:
    rep = numbers["representativeness"]

    def draw(fig: Any) -> None:
        axes = _grid(fig, 3, 3)
        som = rep.get("som")
        if som:
            shape = tuple(som["shape"])
            phot = np.asarray(som["photometric_counts"], float).reshape(shape)
            train = np.asarray(som["training_counts"], float).reshape(shape)
            im = axes[0].imshow(phot, cmap="Greys", origin="lower")
            fig.colorbar(im, ax=axes[0], shrink=0.8)
            axes[0].set_title("photometric objects per SOM cell", fontsize=9)
            masked = np.ma.masked_where(train == 0, train)
            im = axes[1].imshow(masked, cmap="viridis", origin="lower")
            ey, ex = np.nonzero(train == 0)
            axes[1].scatter(ex, ey, marker="x", color="#cc3311", s=20)
            fig.colorbar(im, ax=axes[1], shrink=0.8)
            axes[1].set_title(f"training per cell (x: none); {100 * rep.get('empty_cell_fraction', 0):.1f}% of\n"
                              "photometric objects in cells without training", fontsize=9)
        if weights is not None and np.isfinite(weights).any():
            finite = weights[np.isfinite(weights)]
            top = max(float(np.percentile(finite, 99)), 1e-9)
            axes[2].hist(np.clip(finite, 0, top), bins=30, range=(0, top), color="#4477aa")
            axes[2].set_xlabel("weight (the top 1% in the last bin)", fontsize=8)
            axes[2].set_title(f"weights (k={rep.get('k')}): median {np.median(finite):.2f}, max {finite.max():.3g}", fontsize=9)
        for ax in axes:
            ax.tick_params(labelsize=7)

    return draw


def render_figures(numbers: dict[str, Any], frame: pd.DataFrame, prov: dict[str, Any]) -> dict[str, str]:
    """Every figure of the report as base64 PNG, by name (see :data:`FIGURES`)."""
    zname = next((c for c in REDSHIFT_NAMES if c in frame.columns), None)
    z = pd.to_numeric(frame[zname], errors="coerce").to_numpy(float, na_value=np.nan) if zname else np.zeros(len(frame))
    mags = _magnitudes(frame, prov)
    weights = frame[WEIGHT_NAME].to_numpy(float, na_value=np.nan) if WEIGHT_NAME in frame.columns else None
    n_panels = max(len(mags) - 1, 1)
    figures = {
        "funnel": _figure(_draw_funnel(numbers), (8, 0.45 * max(len(numbers["funnel"].get("steps", [])), 4) + 1)),
        "nz": _figure(_draw_nz(numbers), (7, 3.8)),
        "separation": _figure(_draw_separation(numbers), (7, 3.8)),
        "magnitudes": _figure(_draw_magnitudes(numbers), (9, 2.6 * math.ceil(max(len(mags), 1) / 3) + 0.4)),
        "colours": _figure(_draw_colours(numbers, z, mags), (9, 2.6 * math.ceil(n_panels / 3) + 0.4)),
        "sky": _figure(_draw_sky(numbers), (9, 4.2)),
    }
    if "representativeness" in numbers:
        figures["representativeness"] = _figure(_draw_representativeness(numbers, weights), (10, 3.4))
    return figures


# -- page --------------------------------------------------------------------------------
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1000px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
td:first-child,th:first-child{text-align:left} th{background:#f4f4f4} .meta td{text-align:left}
img{max-width:100%;display:block;margin:.5em 0} .note{color:#666;font-size:.85em} .removed{color:#b22}
"""

TITLES = {
    "funnel": "Funnel", "nz": "n(z) per survey", "separation": "Separations and chance matches",
    "magnitudes": "Magnitudes per band", "colours": "Colours against redshift",
    "sky": "Sky map", "representativeness": "Representativeness",
}


def _funnel_table(funnel: dict[str, Any]) -> str:
    surveys = funnel.get("surveys", [])
    e = html.escape
    head = "<tr><th>step</th><th>count</th><th>remaining</th>" + "".join(f"<th>{e(s)}</th>" for s in surveys) + "</tr>"
    rows = []
    for s in funnel.get("steps", []):
        count = "not counted" if s["kind"] == "not_counted" else (f"−{s['count']}" if s["kind"] == "removed" else str(s["count"]))
        cls = ' class="removed"' if s["kind"] == "removed" and s["count"] else ""
        rem = "" if s["remaining"] is None else str(s["remaining"])
        known = s["by_survey"] or (s["kind"] == "removed" and s["count"] == 0)
        per = "".join(f"<td>{s['by_survey'].get(sv, 0) if known else ''}</td>" for sv in surveys)
        label = e(s["label"]) + (f'<br><span class="note">{e(s["note"])}</span>' if s.get("note") else "")
        rows.append(f"<tr><td>{label} <span class=\"note\">({e(s['unit'])})</span></td><td{cls}>{count}</td><td>{rem}</td>{per}</tr>")
    return f"<table id=\"funnel-table\">{head}{''.join(rows)}</table>"


def style_source() -> str:
    """The Content-Security-Policy source (``'sha256-...'``) that allows the page's one
    inline ``<style>`` element, for a server with ``style-src 'self'``."""
    import hashlib

    return "'sha256-" + base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode() + "'"


def render_html(numbers: dict[str, Any], figures: dict[str, str], fragment: bool = False) -> str:
    """The self-contained page: inline CSS, figures as data URIs, no script, no link.

    ``fragment`` gives only the report's body, ``<div class="tsm-report">``, for a page
    of another site (its classes: ``meta``, ``note``, ``removed``, ``figure``).
    """
    e = html.escape
    p = numbers["product"]
    meta_rows = [("release", p["release"]), ("redshift catalog", p["redshift_catalog"]), ("format", p["format"]),
                 ("rows", p["rows"]), ("file", p["file"]), ("flux type", p["flux_type"]),
                 ("dereddening", p["dereddening"]), ("radius", f"{p['radius_arcsec']:g} arcsec"),
                 ("neighbours kept", p["n_neighbors"]), ("unique galaxies", p["unique_galaxies"]),
                 ("finished", p["finished_at"])]
    meta = "".join(f"<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>" for k, v in meta_rows)
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>Training set {p['id']}: {e(p['name'])}</title><style>{CSS}</style></head><body>",
    ] if not fragment else ['<div class="tsm-report">']
    parts += [
        f"<h1>Training set {p['id']}: {e(p['name'])}</h1>",
        f"<p>{e(p['description'] or '')}</p><table class=\"meta\">{meta}</table>",
    ]
    sep = numbers["separation"]
    notes = {
        "funnel": _funnel_table(numbers["funnel"]),
        "separation": (f"<p>median separation {sep['median_arcsec']:.3f} arcsec" if sep.get("median_arcsec") is not None else "<p>")
        + (f"; {sep['chance_within_radius']:.1f} chance matches expected within the radius from the local "
           f"object density (red line)</p>" if "chance_within_radius" in sep else "</p>"),
        "magnitudes": "<p>" + ", ".join(
            f"{e(b)}: {100 * m['non_detection_fraction']:.1f}% not detected"
            for b, m in numbers["magnitudes"].items() if m["non_detection_fraction"] is not None) + "</p>",
    }
    rep = numbers.get("representativeness")
    if rep:
        w = rep.get("weights", {})
        notes["representativeness"] = (
            f"<p>{rep['n_photometric']} photometric objects sampled ({rep['sample_fraction']:g} of every partition, "
            f"seed {rep['seed']}), {rep['n_photometric_used']} of them detected in every band used; weights from the k={rep['k']} nearest neighbours in {e(rep['space'])} space "
            f"({e(', '.join(rep['features']))}) for {rep['n_training_used']} of {rep['n_training']} rows "
            f"(the others have a non-detection and no weight)"
            + (f"; weights from {w['min']:.3g} to {w['max']:.3g}, median {w['median']:.3g}" if w else "")
            + ".</p>"
            + (f"<p><b>{100 * rep['empty_cell_fraction']:.1f}%</b> of the photometric sample lies in "
               f"self-organizing-map cells ({rep['som']['shape'][0]}×{rep['som']['shape'][1]}) that hold no "
               "training object.</p>" if rep.get("empty_cell_fraction") is not None else "")
        )
    for name in FIGURES:
        if name not in figures:
            continue
        parts.append(f"<section id=\"{name}\"><h2>{TITLES[name]}</h2>{notes.get(name, '')}")
        parts.append(f"<img id=\"fig-{name}\" class=\"figure\" alt=\"{TITLES[name]}\" src=\"data:image/png;base64,{figures[name]}\">")
        parts.append("</section>")
    if fragment:
        return "".join(parts) + "</div>"
    parts.append("<p class=\"note\">Made by tsm report; the numbers are in the JSON file next to this page.</p></body></html>")
    return "".join(parts)


# -- public ------------------------------------------------------------------------------
def _build(record: ProductRecord, figures: bool) -> tuple[dict[str, Any], dict[str, str]]:
    frame = read_product_file(record.output_path or "")
    numbers = compute_numbers(record, frame)
    return numbers, (render_figures(numbers, frame, record.provenance or {}) if figures else {})


def report_data(product_id: int) -> dict[str, Any]:
    """The numbers of the report of training set ``product_id`` (JSON-ready dict)."""
    return _build(_done_product(product_id), figures=False)[0]


def report_html(product_id: int, fragment: bool = False) -> str:
    """The self-contained HTML report of training set ``product_id`` (or, with
    ``fragment``, its body alone to embed in another page; see :func:`render_html`).
    Served under a strict Content-Security-Policy, the page needs ``img-src data:`` and
    :func:`style_source` in ``style-src``."""
    numbers, figures = _build(_done_product(product_id), figures=True)
    return render_html(numbers, figures, fragment)


#: folder of the stored reports (one sub-folder per training set), beside the registry
REPORTS_DIR = "reports"


def stored_report(product_id: int, home: Path | None = None) -> tuple[dict[str, Any], str]:
    """The numbers and the HTML fragment of the report of finished training set
    ``product_id``, rendered once and stored under ``<home>/reports/<id>/`` (written
    atomically; concurrent first requests wait for one rendering), then read from there."""
    import fcntl

    folder = (home or tsm_home()) / REPORTS_DIR / str(int(product_id))
    numbers_file, html_file = folder / "numbers.json", folder / "fragment.html"
    if not html_file.is_file():  # written last: its presence means the copy is complete
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not html_file.is_file():
                numbers, figures = _build(_done_product(product_id), figures=True)
                _write_text(numbers_file, json.dumps(numbers, allow_nan=False))
                _write_text(html_file, render_html(numbers, figures, fragment=True))
    return json.loads(numbers_file.read_text(encoding="utf-8")), html_file.read_text(encoding="utf-8")


def remove_stored_report(home: Path, product_id: int) -> None:
    """Remove the stored report of training set ``product_id`` (if any)."""
    import shutil

    shutil.rmtree(home / REPORTS_DIR / str(int(product_id)), ignore_errors=True)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def report(product_id: int, out_dir: str | Path | None = None) -> ReportFiles:
    """Write the HTML report of training set ``product_id`` and the JSON of its numbers.

    The files are ``<product file stem>.report.html`` and ``.report.json``, in
    ``out_dir`` or next to the product file. Raises a :class:`~tsm_core.errors.TSMError`
    for an unknown or unfinished product or a missing file.
    """
    record = _done_product(product_id)
    numbers, figures = _build(record, figures=True)
    source = Path(record.output_path or "")
    directory = Path(out_dir) if out_dir else source.parent
    if not directory.is_dir():
        raise CatalogError(f"report directory {directory} does not exist", "out_dir")
    stem = source.name.rsplit(".", 1)[0]
    files = ReportFiles(directory / f"{stem}.report.html", directory / f"{stem}.report.json")
    _write_text(files.json, json.dumps(numbers, indent=1, allow_nan=False))
    _write_text(files.html, render_html(numbers, figures))
    return files
