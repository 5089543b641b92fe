"""The website as its users see it, in a real headless browser: Debian's chromium driven by
Playwright, at a phone's width (390 px), a tablet's (768) and a desktop's (1280).

`make test` installs chromium with apt-get; where it cannot be installed, this test is
skipped with that reason. Set TSM_SCREENSHOT_DIR (e.g. to `docs`) to keep screenshots of
the pages (`web-form-390.png`, ...; the documentation shows those of `docs/`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import pandas as pd
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
WIDTHS = (390, 768, 1280)

pytestmark = pytest.mark.browser

#: the boxes and computed styles of the page's own parts that an embedded report must not change (main grows)
PAGE_PARTS = """() => ["header", "header h1", "header nav a", "main", "h2", ".facts th", ".facts td", "#status"].map(sel => {
  const e = document.querySelector(sel); const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
  return [sel, Math.round(r.x), Math.round(r.y), Math.round(r.width), sel === "main" ? null : Math.round(r.height),
          s.textAlign, s.fontSize, s.fontFamily, s.color, s.backgroundColor, s.padding, s.maxWidth];
})"""
#: every visible text input, select and text area narrower than 200 px (checkboxes and radios are not text)
NARROW_INPUTS = """() => [...document.querySelectorAll("input, select, textarea")]
  .filter(e => e.offsetParent !== null && !["checkbox", "radio", "hidden"].includes(e.type))
  .map(e => [e.id || e.placeholder, Math.round(e.getBoundingClientRect().width)]).filter(([, w]) => w < 200)"""


@pytest.fixture
def server(scene, tsm_home, tmp_path):
    # dp1 served from a copy of the scene marked as TSM's synthetic sample (links to its files)
    objects = tmp_path / "objects"
    objects.mkdir()
    for item in Path(scene["objects_path"]).iterdir():
        (objects / item.name).symlink_to(item)
    (objects / "tsm_sample.json").write_text(json.dumps({"synthetic": True}))
    with tsm_serve({"TSM_HOME": str(tsm_home), "TSM_DP1_PATH": str(objects)}) as url:
        yield url


def _shot(page, name: str, full_page: bool = True) -> None:
    shots = os.environ.get("TSM_SCREENSHOT_DIR")
    if shots:
        page.screenshot(path=str(Path(shots) / f"{name}.png"), full_page=full_page)


def _api(url: str, path: str, body: dict | None = None, token: str = "") -> object:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url + path, data=data, headers=headers), timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.slow
def test_website_end_to_end(server, scene, tsm_home, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it with apt-get; needs root)")
    sync_api = pytest.importorskip("playwright.sync_api")
    upload = tmp_path / "odd names.csv"
    scene["redshifts"].rename(columns={"ra": "RA_DEG", "dec": "DEC_DEG", "z": "ZSPEC"}).to_csv(upload, index=False)
    releases = {r["name"]: r["backed_by"] for r in _api(server, "/api/releases")}
    assert releases["dp1"] == "synthetic sample" and "nothing" in releases.values()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        # Playwright evaluates its wait conditions as strings, which the pages' CSP forbids (no eval)
        context = browser.new_context(viewport={"width": 390, "height": 900}, accept_downloads=True, bypass_csp=True)
        problems: list[str] = []  # every console error and every 404, on every page
        context.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
        context.on("response", lambda r: problems.append(f"404: {r.url}") if r.status == 404 else None)
        page = context.new_page()

        # the form on a phone: every input usable, the release labels whole and marked
        page.goto(server + "/")
        page.wait_for_function("document.querySelectorAll('#flux_type option').length > 0")
        assert "anonymous" in page.text_content("#who-name")
        page.check("input[value=upload]")
        page.select_option("#split", "random")
        assert page.evaluate(NARROW_INPUTS) == []
        labels = dict(page.eval_on_selector_all("#release option", "os => os.map(o => [o.value, o.textContent])"))
        for name, backed in releases.items():
            assert ("SYNTHETIC" in labels[name]) == (backed == "synthetic sample"), labels
            assert ("no catalog" in labels[name]) == (backed == "nothing"), labels
        assert "SYNTHETIC" in page.text_content("#release-hint")
        # the chosen label fits in its box: its text is narrower than the select less its arrow
        assert page.evaluate("""() => { const s = document.getElementById("release"), c = document.createElement("canvas").getContext("2d");
            c.font = getComputedStyle(s).font; return c.measureText(s.selectedOptions[0].textContent).width < s.clientWidth - 40; }""")
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            _shot(page, f"web-form-{width}")

        # three wrong fields and a fourth: each error at its own field, in the form's words, all at once
        page.set_viewport_size({"width": 390, "height": 900})
        page.set_input_files("#upload_file", str(upload))
        page.fill("#upload_name", "odd upload")
        page.fill("#map_ra", "RA_DEG")
        page.fill("#map_dec", "DEC_DEG")
        page.fill("#map_z", "ZSPEC")
        page.select_option("#flux_type", "gaap1p0")
        page.fill("#filters_redshift", "z > 0.05\nisfinite(z)")
        page.select_option("#format", "csv")
        page.fill("#name", "")
        page.fill("#radius", "-1")
        page.fill("#neighbors", "0")
        page.fill("#train_fraction", "1.5")
        page.click("#submit")
        page.wait_for_function("document.querySelectorAll('[aria-invalid=true]').length >= 4", timeout=120_000)
        expected = {
            "name": "Training set name must not be empty.",
            "radius": "Threshold distance (arcsec) must be greater than 0.",
            "neighbors": "Number of neighbours must be at least 1.",
            "train_fraction": "Training fraction must be less than 1.",
        }
        for control, words in expected.items():
            placed = page.evaluate(
                """(id) => { const c = document.getElementById(id), f = c.closest(".field"), e = f.querySelector(".error");
                   const [cr, fr, er] = [c, f, e].map(x => x.getBoundingClientRect());
                   return [e.textContent, er.top >= cr.bottom - 1 && er.top - cr.bottom < 40 && er.bottom <= fr.bottom + 1]; }""",
                control,
            )
            assert placed == [words, True], (control, placed)
        assert page.text_content("#err-general") == "" and "should" not in page.text_content("#tsm-form")
        _shot(page, "web-errors-390")
        # the browser logs the refused submission itself (its 422), and nothing else
        assert problems == [
            "console: Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
        ]
        problems.clear()

        # corrected: the upload was registered by the first submission; a CSV training set
        page.fill("#name", "browser set")
        page.fill("#description", "made in a headless chromium")
        page.fill("#radius", "2.5")
        page.fill("#neighbors", "1")
        page.fill("#train_fraction", "0.8")
        page.click("#submit")
        page.wait_for_url("**/products/*")
        product_url = page.url
        page.wait_for_selector("#status.status-done", timeout=120_000)
        rows = int(page.text_content("#rows"))
        assert page.text_content("#catalog") == "odd upload"
        page.wait_for_selector("#report img", timeout=60_000)  # Playwright's selectors enter the shadow root
        assert page.locator("#report img").count() >= 5
        funnel = page.text_content("#funnel")
        assert "redshifts read" in funnel and "redshift filter z > 0.05" in funnel
        with page.expect_download() as info:
            page.click("#download")
        target = tmp_path / info.value.suggested_filename
        info.value.save_as(target)
        table = pd.read_csv(target, comment="#")
        assert len(table) == rows > 0 and "r_gaap1p0Mag" in table.columns and "is_training" in table.columns
        assert (table["z"] > 0.05).all()

        # the page's own parts are the same with the report as without it (its answer emptied)
        page.set_viewport_size({"width": 1280, "height": 1300})
        with_report = page.evaluate(PAGE_PARTS)
        assert page.evaluate("getComputedStyle(document.querySelector('.facts td')).textAlign") == "left"
        assert page.evaluate("document.querySelector('header').getBoundingClientRect().width") == 1280
        plain = context.new_page()
        plain.route("**/report", lambda route: route.fulfill(json={"numbers": {}, "html": ""}))
        plain.set_viewport_size({"width": 1280, "height": 1300})
        plain.goto(product_url)
        plain.wait_for_selector("#report-status.hidden", state="attached")
        assert plain.evaluate(PAGE_PARTS) == with_report
        plain.close()

        # a second visit: the stored report within a second
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 1300})
            start = time.monotonic()
            page.goto(product_url)
            page.wait_for_selector("#report img")
            assert time.monotonic() - start < 1.0
            _shot(page, f"web-product-{width}", full_page=False)

        # the list: names, search, paging (two more sets submitted through the API)
        catalog_id = _api(server, "/api/redshift-catalogs")[0]["id"]
        for n in (2, 3):
            _api(server, "/api/training-sets", {"name": f"set {n}", "redshift_catalog": {"id": catalog_id}})
        page.set_viewport_size({"width": 390, "height": 900})
        page.goto(server + "/products?size=2")
        page.wait_for_selector("#rows tr >> nth=1")
        first = page.eval_on_selector_all("#rows tr", "trs => trs.map(t => [...t.cells].map(c => c.textContent))")
        assert [r[:3] for r in first] == [["set 3", "odd upload", "dp1"], ["set 2", "odd upload", "dp1"]]
        assert page.evaluate(NARROW_INPUTS) == []
        page.click("#next")
        page.wait_for_selector("#rows >> text=browser set")
        assert page.locator("#rows tr").count() == 1 and page.is_disabled("#next")
        row = page.eval_on_selector("#rows tr", "t => [...t.cells].map(c => c.textContent)")
        assert row[:3] == ["browser set", "odd upload", "dp1"] and row[4] == "done" and row[5] == str(rows)
        page.fill("#search", "set 2")
        page.wait_for_function(
            "document.querySelectorAll('#rows tr').length === 1 && document.getElementById('page').textContent === 'page 1'"
        )
        assert page.text_content("#rows tr td") == "set 2"
        for width in (390, 1280):
            page.set_viewport_size({"width": width, "height": 700})
            page.goto(server + "/products")
            page.wait_for_selector("#rows >> text=browser set")
            _shot(page, f"web-products-{width}")

        # signed in as a user, then signed out
        from tsm_core.products.registry import Registry
        from tsm_web.users import Users

        _, token = Users(Registry.at_home(tsm_home)).add("alice")
        page.evaluate("(t) => localStorage.setItem('tsm-token', t)", token)
        page.reload()
        page.wait_for_function("document.getElementById('who-name').textContent === 'signed in as alice'")
        page.click("#sign-out")
        page.wait_for_function("document.getElementById('who-name').textContent.includes('anonymous')")
        assert page.evaluate("localStorage.getItem('tsm-token')") is None and page.is_hidden("#sign-out")

        assert problems == []
        browser.close()
