"""The web form in a real headless browser: Debian's chromium driven by Playwright.

`make test` installs chromium with apt-get; where it cannot be installed, this test is
skipped with that reason. Set TSM_SCREENSHOT_DIR to keep screenshots of the pages.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import tsm_serve

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


@pytest.fixture
def server(scene, tsm_home):
    with tsm_serve({"TSM_HOME": str(tsm_home), "TSM_DP1_PATH": str(scene["objects_path"])}) as url:
        yield url


def test_form_end_to_end(server, scene, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it with apt-get; needs root)")
    sync_api = pytest.importorskip("playwright.sync_api")
    shots = os.environ.get("TSM_SCREENSHOT_DIR")
    upload = tmp_path / "odd names.csv"
    scene["redshifts"].rename(columns={"ra": "RA_DEG", "dec": "DEC_DEG", "z": "ZSPEC"}).to_csv(upload, index=False)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        # Playwright evaluates its wait conditions as strings, which the pages' CSP forbids (no eval)
        page = browser.new_page(viewport={"width": 1100, "height": 1300}, accept_downloads=True, bypass_csp=True)
        page.goto(server + "/")
        page.wait_for_function("document.querySelectorAll('#flux_type option').length > 0")
        options = lambda: page.eval_on_selector_all("#flux_type option", "els => els.map(e => e.value)")  # noqa: E731
        assert "sersic" in options() and "gaap0p5" not in options()
        page.select_option("#release", "dp02")
        page.wait_for_function("[...document.querySelectorAll('#flux_type option')].some(o => o.value === 'gaap0p5')")
        assert "sersic" not in options()
        page.select_option("#release", "dp1")
        page.wait_for_function("[...document.querySelectorAll('#flux_type option')].some(o => o.value === 'sersic')")
        assert page.eval_on_selector("#dereddening option[value=sfd]", "e => e.disabled")  # no map files here

        page.fill("#name", "browser set")
        page.fill("#description", "made in a headless chromium")
        page.check("input[value=upload]")
        page.set_input_files("#upload_file", str(upload))
        page.fill("#upload_name", "odd upload")
        page.fill("#map_ra", "RA_DEG")
        page.fill("#map_dec", "DEC_DEG")
        page.fill("#map_z", "ZSPEC")
        page.select_option("#flux_type", "gaap1p0")
        page.fill("#filters_redshift", "z > 0.05\nisfinite(z)")
        page.select_option("#split", "random")
        page.fill("#radius", "0")
        if shots:
            page.screenshot(path=str(Path(shots) / "web-form.png"), full_page=True)
        page.click("#submit")
        page.wait_for_function("document.getElementById('err-crossmatch-radius_arcsec').textContent.length > 0")
        assert "greater than 0" in page.text_content("#err-crossmatch-radius_arcsec")
        page.fill("#radius", "2.5")
        page.check("input[value=registered]")  # the upload was registered by the first submission
        page.wait_for_timeout(200)
        page.click("#submit")
        page.wait_for_url("**/products/*")
        page.wait_for_selector("#status.status-done", timeout=120_000)
        rows = int(page.text_content("#rows"))
        # the funnel, and the report with its figures, on the product page
        page.wait_for_selector("#report img", timeout=60_000)
        assert page.locator("#report img").count() >= 5
        funnel = page.text_content("#funnel")
        assert "redshifts read" in funnel and "redshift filter z > 0.05" in funnel
        if shots:
            page.screenshot(path=str(Path(shots) / "web-product.png"), full_page=True)
        with page.expect_download() as info:
            page.click("#download")
        target = tmp_path / info.value.suggested_filename
        info.value.save_as(target)
        table = pq.read_table(target)
        assert (
            table.num_rows == rows > 0 and "r_gaap1p0Mag" in table.column_names and "is_training" in table.column_names
        )
        assert (table.column("z").to_numpy() > 0.05).all()
        page.goto(server + "/products")
        page.wait_for_selector("text=browser set")
        browser.close()
