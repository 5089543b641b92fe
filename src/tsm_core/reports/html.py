"""The page of a training-set report: self-contained HTML from its numbers and figures.

:func:`render_html` writes the page (inline :data:`CSS`, figures as data URIs, no script,
no link) or, with ``fragment``, its body alone for another site's page;
:func:`style_source` is the Content-Security-Policy source that allows its one inline style.
"""

from __future__ import annotations

import base64
import html
from typing import Any

from tsm_core.reports import ambiguity
from tsm_core.reports.depths import depth_section
from tsm_core.reports.figures import FIGURES

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1000px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
td:first-child,th:first-child{text-align:left} th{background:#f4f4f4} .meta td{text-align:left}
img{max-width:100%;display:block;margin:.5em 0} .note{color:#666;font-size:.85em} .removed{color:#b22}
"""

TITLES = {
    "funnel": "Funnel",
    "nz": "n(z) per survey",
    "separation": "Separations and chance matches",
    "ambiguity": "Ambiguity of the matches",
    "magnitudes": "Magnitudes per band",
    "colours": "Colours against redshift",
    "sky": "Sky map",
    "representativeness": "Representativeness",
}


def _funnel_table(funnel: dict[str, Any]) -> str:
    surveys = funnel.get("surveys", [])
    e = html.escape
    head = "<tr><th>step</th><th>count</th><th>remaining</th>" + "".join(f"<th>{e(s)}</th>" for s in surveys) + "</tr>"
    rows = []
    for s in funnel.get("steps", []):
        count = (
            "not counted"
            if s["kind"] == "not_counted"
            else (f"−{s['count']}" if s["kind"] == "removed" else str(s["count"]))
        )
        cls = ' class="removed"' if s["kind"] == "removed" and s["count"] else ""
        rem = "" if s["remaining"] is None else str(s["remaining"])
        known = s["by_survey"] or (s["kind"] == "removed" and s["count"] == 0)
        per = "".join(f"<td>{s['by_survey'].get(sv, 0) if known else ''}</td>" for sv in surveys)
        label = e(s["label"]) + (f'<br><span class="note">{e(s["note"])}</span>' if s.get("note") else "")
        if s.get("by_catalog"):  # a run with several redshift catalogs
            per_catalog = ", ".join(f"{name} {n}" for name, n in s["by_catalog"].items())
            label += f'<br><span class="note">per catalog: {e(per_catalog)}</span>'
        rows.append(
            f'<tr><td>{label} <span class="note">({e(s["unit"])})</span></td><td{cls}>{count}</td><td>{rem}</td>{per}</tr>'
        )
    return f'<table id="funnel-table">{head}{"".join(rows)}</table>'


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
    meta_rows = [
        ("release", p["release"]),
        ("redshift catalog", p["redshift_catalog"]),
        ("format", p["format"]),
        ("rows", p["rows"]),
        ("file", p["file"]),
        ("flux type", p["flux_type"]),
        ("dereddening", p["dereddening"]),
        ("radius", f"{p['radius_arcsec']:g} arcsec"),
        ("neighbours kept", p["n_neighbors"]),
        ("unique galaxies", p["unique_galaxies"]),
        ("finished", p["finished_at"]),
    ]
    meta = "".join(f"<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>" for k, v in meta_rows)
    parts = (
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            f"<title>Training set {p['id']}: {e(p['name'])}</title><style>{CSS}</style></head><body>",
        ]
        if not fragment
        else ['<div class="tsm-report">']
    )
    parts += [
        f"<h1>Training set {p['id']}: {e(p['name'])}</h1>",
        f'<p>{e(p["description"] or "")}</p><table class="meta">{meta}</table>',
    ]
    sep = numbers["separation"]
    notes = {
        "funnel": _funnel_table(numbers["funnel"]),
        "separation": (
            f"<p>median separation {sep['median_arcsec']:.3f} arcsec" if sep.get("median_arcsec") is not None else "<p>"
        )
        + (
            f"; {sep['chance_within_radius']:.1f} chance matches expected within the radius from the local "
            f"object density (red line)</p>"
            if "chance_within_radius" in sep
            else "</p>"
        ),
        "magnitudes": "<p>"
        + ", ".join(
            f"{e(b)}: {100 * m['non_detection_fraction']:.1f}% not detected"
            for b, m in numbers["magnitudes"].items()
            if m["non_detection_fraction"] is not None
        )
        + "</p>",
    }
    if "ambiguity" in numbers:
        notes["ambiguity"] = ambiguity.note(numbers["ambiguity"])
    rep = numbers.get("representativeness")
    if rep:
        w = rep.get("weights", {})
        notes["representativeness"] = (
            f"<p>{rep['n_photometric']} photometric objects sampled ({rep['sample_fraction']:g} of every partition, "
            f"seed {rep['seed']}), {rep['n_photometric_used']} of them used; weights from the k={rep['k']} nearest neighbours in {e(rep['space'])} space "
            f"({e(', '.join(rep['features']))}) for {rep['n_training_used']} of {rep['n_training']} rows "
            "(a non-detection counted at the band's 1-sigma limit)"
            + (f"; weights from {w['min']:.3g} to {w['max']:.3g}, median {w['median']:.3g}" if w else "")
            + ".</p>"
            + (
                f"<p><b>{100 * rep['empty_cell_fraction']:.1f}%</b> of the photometric sample lies in "
                f"self-organizing-map cells ({rep['som']['shape'][0]}×{rep['som']['shape'][1]}) that hold no "
                "training object.</p>"
                if rep.get("empty_cell_fraction") is not None
                else ""
            )
        )
    for name in FIGURES:
        if name not in figures or name == "depths":  # the depths' figure is in their section, below
            continue
        parts.append(f'<section id="{name}"><h2>{TITLES[name]}</h2>{notes.get(name, "")}')
        parts.append(
            f'<img id="fig-{name}" class="figure" alt="{TITLES[name]}" src="data:image/png;base64,{figures[name]}">'
        )
        parts.append("</section>")
    parts.append(depth_section(numbers, figures.get("depths")))
    if fragment:
        return "".join(parts) + "</div>"
    parts.append(
        '<p class="note">Made by tsm report; the numbers are in the JSON file next to this page.</p></body></html>'
    )
    return "".join(parts)
