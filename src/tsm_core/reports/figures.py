"""The figures of a training-set report, drawn from its numbers (see :mod:`.data`).

The figures: the funnel, n(z) per survey, separations with the chance
level, the ambiguity of the matches, magnitudes per band, colours against redshift, a HEALPix sky
map split into one panel per patch of sky, the depth per band, and the representativeness (SOM cells, weights). Each is drawn
with matplotlib's Agg canvas on a figure made here (never pyplot, so no backend is set
for the process) and returned as base64 PNG, by name (:data:`FIGURES`).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from tsm_core.reports import ambiguity, depths
from tsm_core.reports.data import magnitudes, redshifts, weights

FIGURES = (
    "funnel",
    "nz",
    "separation",
    "ambiguity",
    "magnitudes",
    "colours",
    "sky",
    "depths",
    "representativeness",
)


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
    steps = [
        s
        for s in numbers["funnel"].get("steps", [])
        if s["kind"] in ("total", "removed") and s["remaining"] is not None and (s["kind"] == "total" or s["count"])
    ]

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
                ax.stairs(
                    sep["chance_per_bin"],
                    edges,
                    color="#cc3311",
                    linewidth=2,
                    label=f"chance level ({sep['chance_within_radius']:.1f} within the radius)",
                )
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
    pairs = list(pairwise(bands))

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
            ra0 = math.degrees(
                math.atan2(np.sin(np.radians(centres[:, 0])).mean(), np.cos(np.radians(centres[:, 0])).mean())
            )

            def unwrap(poly: np.ndarray, ra0: float = ra0) -> np.ndarray:
                x = (poly[:, 0] - ra0 + 180.0) % 360.0 - 180.0
                x = x[0] + (x - x[0] + 180.0) % 360.0 - 180.0  # keep a pixel in one piece
                return np.column_stack([x, poly[:, 1]])

            ax.add_collection(
                PolyCollection(
                    [unwrap(p) for p in group_cover], facecolor="#dddddd", edgecolor="#999999", linewidth=0.3
                )
            )
            if group_matched:
                coll = PolyCollection(
                    [unwrap(p) for p, _ in group_matched],
                    array=np.array([v for _, v in group_matched]),
                    cmap="viridis",
                    norm=norm,
                    edgecolor="none",
                )
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
    xyz = np.column_stack(
        [
            np.cos(centres[:, 1]) * np.cos(centres[:, 0]),
            np.cos(centres[:, 1]) * np.sin(centres[:, 0]),
            np.sin(centres[:, 1]),
        ]
    )
    pairs = cKDTree(xyz).query_pairs(2 * math.sin(math.radians(link_deg) / 2), output_type="ndarray")
    graph = (
        coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(xyz), len(xyz)))
        if len(pairs)
        else coo_matrix((len(xyz), len(xyz)))
    )
    _, labels = connected_components(graph, directed=False)
    groups = sorted((np.flatnonzero(labels == k) for k in np.unique(labels)), key=len, reverse=True)
    return groups[:most]


def _draw_representativeness(numbers: dict[str, Any], weight: np.ndarray | None) -> Callable[[Any], None]:
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
            axes[1].set_title(
                f"training per cell (x: none); {100 * rep.get('empty_cell_fraction', 0):.1f}% of\n"
                "photometric objects in cells without training",
                fontsize=9,
            )
        if weight is not None and np.isfinite(weight).any():
            finite = weight[np.isfinite(weight)]
            top = max(float(np.percentile(finite, 99)), 1e-9)
            axes[2].hist(np.clip(finite, 0, top), bins=30, range=(0, top), color="#4477aa")
            axes[2].set_xlabel("weight (the top 1% in the last bin)", fontsize=8)
            axes[2].set_title(
                f"weights (k={rep.get('k')}): median {np.median(finite):.2f}, max {finite.max():.3g}", fontsize=9
            )
        for ax in axes:
            ax.tick_params(labelsize=7)

    return draw


def render_figures(numbers: dict[str, Any], frame: pd.DataFrame, prov: dict[str, Any]) -> dict[str, str]:
    """Every figure of the report as base64 PNG, by name (see :data:`FIGURES`)."""
    z = redshifts(frame)
    mags = magnitudes(frame, prov)
    n_panels = max(len(mags) - 1, 1)
    figures = {
        "funnel": _figure(_draw_funnel(numbers), (8, 0.45 * max(len(numbers["funnel"].get("steps", [])), 4) + 1)),
        "nz": _figure(_draw_nz(numbers), (7, 3.8)),
        "separation": _figure(_draw_separation(numbers), (7, 3.8)),
        "magnitudes": _figure(_draw_magnitudes(numbers), (9, 2.6 * math.ceil(max(len(mags), 1) / 3) + 0.4)),
        "colours": _figure(_draw_colours(numbers, z, mags), (9, 2.6 * math.ceil(n_panels / 3) + 0.4)),
        "sky": _figure(_draw_sky(numbers), (9, 4.2)),
    }
    if "ambiguity" in numbers:
        figures["ambiguity"] = _figure(ambiguity.draw(numbers["ambiguity"]), (10, 3.4))
    if numbers.get("depths"):
        figures["depths"] = _figure(depths.draw(numbers["depths"]), (7, 3.4))
    if "representativeness" in numbers:
        figures["representativeness"] = _figure(_draw_representativeness(numbers, weights(frame)), (10, 3.4))
    return figures
