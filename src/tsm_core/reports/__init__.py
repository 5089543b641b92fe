"""The training-set report: numbers (:mod:`.data`), figures (:mod:`.figures`), the page
(:mod:`.html`), and the functions that build, write and store it (:mod:`.build`)."""

from tsm_core.reports.build import (
    REPORTS_DIR,
    ReportFiles,
    remove_stored_report,
    report,
    report_data,
    report_html,
    stored_report,
)
from tsm_core.reports.data import compute_numbers
from tsm_core.reports.figures import FIGURES, render_figures
from tsm_core.reports.html import CSS, render_html, style_source

__all__ = [
    "CSS",
    "FIGURES",
    "REPORTS_DIR",
    "ReportFiles",
    "compute_numbers",
    "remove_stored_report",
    "render_figures",
    "render_html",
    "report",
    "report_data",
    "report_html",
    "stored_report",
    "style_source",
]
