"""The report's depths: the 1-sigma limiting magnitude per band the run measured.

:func:`depth_numbers` takes them from the provenance (``depths``, and ``rail_layout``
for the limits a rail-layout file used) for the report's JSON; :func:`depth_section` is
their table on the page.
"""

from __future__ import annotations

import html
from typing import Any


def depth_numbers(prov: dict[str, Any]) -> dict[str, Any] | None:
    """Depth, rows measured and source per band (and the rail layout's limit), or None
    for a product made before depths were measured."""
    depths = prov.get("depths")
    if not depths:
        return None
    rail = prov.get("rail_layout") or {}
    bands = {}
    for band, entry in (depths.get("bands") or {}).items():
        row = dict(entry)
        if band in (rail.get("mag_limits") or {}):
            row["rail_limit"] = rail["mag_limits"][band]
            row["rail_limit_source"] = (rail.get("mag_limits_sources") or {}).get(band)
        bands[band] = row
    return {
        "method": depths.get("method"),
        "zero_point": depths.get("zero_point"),
        "partitions": depths.get("partitions"),
        "bands": bands,
        "rail_dereddened": rail.get("dereddened"),
    }


def _value(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "–"


def depth_section(numbers: dict[str, Any]) -> str:
    """The page's section on the depths ('' when the report has none)."""
    depths = numbers.get("depths")
    if not depths:
        return ""
    e = html.escape
    rail = any("rail_limit" in row for row in depths["bands"].values())
    head = "<tr><th>band</th><th>1-σ depth (mag)</th><th>rows measured</th><th>source</th>"
    head += "<th>rail-layout limit (mag)</th></tr>" if rail else "</tr>"
    rows = []
    for band, row in depths["bands"].items():
        cells = f"<td>{e(band)}</td><td>{_value(row.get('depth'))}</td><td>{row.get('rows', 0)}</td>"
        cells += f"<td>{e(str(row.get('source', '')))}</td>"
        if rail:
            cells += f"<td>{_value(row.get('rail_limit'))}</td>"
        rows.append(f"<tr>{cells}</tr>")
    note = f"{e(str(depths.get('method') or ''))}; {depths.get('partitions', 0)} partitions read."
    if depths.get("rail_dereddened"):
        note += " In the file a non-detection's error is the limit less R_b × E(B-V) of its row."
    return (
        '<section id="depths"><h2>Depths per band</h2>'
        f'<p class="note">{note}</p><table id="depths-table">{head}{"".join(rows)}</table></section>'
    )
