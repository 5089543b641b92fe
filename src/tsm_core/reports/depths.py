"""The report's depths: the 1-sigma limiting magnitude per band the run measured.

:func:`depth_numbers` takes them from the provenance (``depths``, and ``rail_layout``
for the limits a rail-layout file used) for the report's JSON; :func:`depth_section` is
their table on the page, :func:`draw` their figure.
"""

from __future__ import annotations

import html
from collections.abc import Callable
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


def depth_section(numbers: dict[str, Any], figure: str | None = None) -> str:
    """The page's section on the depths ('' when the report has none): their table, and
    ``figure`` (base64 PNG of :func:`draw`) below it."""
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
    image = (
        f'<img id="fig-depths" class="figure" alt="Depths per band" src="data:image/png;base64,{figure}">'
        if figure
        else ""
    )
    return (
        '<section id="depths"><h2>Depths per band</h2>'
        f'<p class="note">{note}</p><table id="depths-table">{head}{"".join(rows)}</table>{image}</section>'
    )


def draw(depths: dict[str, Any]) -> Callable[[Any], None]:
    """The depth per band: the measured median (filled), a release's configured limit where
    no error was found (open), and the limit a rail-layout file used (cross)."""
    bands = list(depths["bands"])

    def paint(fig: Any) -> None:
        ax = fig.add_subplot()
        x = list(range(len(bands)))
        for i, band in enumerate(bands):
            row = depths["bands"][band]
            measured = row.get("source") == "measured"
            depth = row.get("depth")
            if isinstance(depth, (int, float)):
                style = {"color": "#4477aa"} if measured else {"markerfacecolor": "none", "color": "#999999"}
                ax.plot([i], [depth], "o", markersize=8, **style)
                ax.annotate(f"{depth:.2f}", (i, depth), textcoords="offset points", xytext=(8, -3), fontsize=8)
            if isinstance(row.get("rail_limit"), (int, float)):
                ax.plot([i], [row["rail_limit"]], "x", color="#cc6677", markersize=8)
        ax.set_xticks(x, bands)
        ax.set_xlim(-0.5, len(bands) - 0.5)
        ax.invert_yaxis()  # deeper is fainter: down the page
        ax.set_ylabel("1-σ limiting magnitude (AB)")
        ax.set_title(
            "depth per band: ● measured median, ○ release limit (no error measured), × rail-layout limit", fontsize=9
        )

    return paint
