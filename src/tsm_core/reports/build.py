"""The training-set report: a self-contained HTML page and a JSON of its numbers.

:func:`report` reads a finished product's file through the writer of its format
(:meth:`~tsm_core.plugins.records.Writer.read`, so any installed format, HATS included)
and its provenance from the registry, and writes ``<product file stem>.report.html`` and
``.report.json``: the funnel, n(z) per survey, the separation histogram against the radius
and the chance-match level expected from the local object density, magnitude
distributions per band with their non-detection fractions, colour-redshift panels, a
HEALPix sky map of the matched redshifts over the object catalog's coverage and, where
the run asked for it, the representativeness of the set (weights and self-organizing-map
cells without training objects). The numbers are computed in :mod:`.data`, the figures
drawn in :mod:`.figures`, the page written in :mod:`.html`.

:func:`report_data` and :func:`report_html` give the web service the dict and the page;
:func:`stored_report` renders a report once and keeps it beside the registry.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsm_core.config import tsm_home
from tsm_core.errors import CatalogError
from tsm_core.products.reading import finished_product, read_product
from tsm_core.products.registry import ProductRecord
from tsm_core.reports.data import compute_numbers
from tsm_core.reports.figures import render_figures
from tsm_core.reports.html import render_html


@dataclass(frozen=True)
class ReportFiles:
    """Where :func:`report` wrote the page and its numbers."""

    html: Path
    json: Path


def _done_product(product_id: int) -> ProductRecord:
    return finished_product(product_id, "a report")


def _build(record: ProductRecord, figures: bool) -> tuple[dict[str, Any], dict[str, str]]:
    frame = read_product(record)
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
        raise CatalogError("out_dir", f"report directory {directory} does not exist")
    stem = source.name.rsplit(".", 1)[0]
    files = ReportFiles(directory / f"{stem}.report.html", directory / f"{stem}.report.json")
    _write_text(files.json, json.dumps(numbers, indent=1, allow_nan=False))
    _write_text(files.html, render_html(numbers, figures))
    return files
