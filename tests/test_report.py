"""The training-set report and the representativeness weights.

Weights are checked against a scikit-learn computation on the same data (the
objects written by the test and the product file read back); the report's numbers
against pandas counts of the product file; the page in Debian's headless chromium.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from helpers import DP1_BANDS, ab_mag, in_partitions_with, numpy_depth, sklearn_weights

K = 5
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FIGURES = ("funnel", "nz", "separation", "ambiguity", "magnitudes", "colours", "sky", "depths", "representativeness")


@pytest.fixture(scope="module")
def product(scene: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One finished run with a split and representativeness (every object sampled), in
    its own $TSM_HOME shared by the tests of this module."""
    import tsm_core

    base = tmp_path_factory.mktemp("report")
    config = {
        "name": "report set",
        "description": "for the report tests",
        "redshift_catalog": {"path": str(scene["redshift_path"])},
        "object_catalog": {"release": "dp1", "path": str(scene["objects_path"])},
        "crossmatch": {"radius_arcsec": 3.0},
        "unique_galaxies": "closest",
        "split": {"train_fraction": 0.8},
        "representativeness": {"sample_fraction": 1.0, "k": K, "som_shape": [6, 6]},
        "output": {"directory": str(base / "out")},
        "compute": {"scheduler": "synchronous"},
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TSM_HOME", str(base / "home"))
        result = tsm_core.run(config)
    return {"home": base / "home", "result": result, "config": config}


@pytest.fixture
def at_product_home(product: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("TSM_HOME", str(product["home"]))
    return product


def _cli_report(product_id: int) -> tuple[dict, Path]:
    """The numbers ``tsm report <product_id>`` wrote (the JSON beside its page), and the page."""
    from tsm_core.cli.main import get_cli

    out = CliRunner().invoke(get_cli(), ["report", str(product_id)])
    assert out.exit_code == 0, out.output
    html_path = Path(out.output.split("report: ")[1].split()[0])
    assert html_path.is_file()
    return json.loads(html_path.with_suffix("").with_suffix(".report.json").read_text()), html_path


def _mag_columns(frame: pd.DataFrame) -> list[str]:
    return [f"{b}_cModelMag" for b in DP1_BANDS]


def test_every_row_has_the_weight_sklearn_gives_with_non_detections_at_the_depth(scene, product):
    """Weights of the documented formula by scikit-learn on the same rows: a missing magnitude
    (training row or photometric object) is the band's depth, itself checked against numpy."""
    out = pd.read_parquet(product["result"].output_path)
    prov = product["result"].provenance
    depth = np.array([prov["depths"]["bands"][b]["depth"] for b in DP1_BANDS])
    z = scene["redshifts"]
    read = scene["objects"][in_partitions_with(scene["objects_path"], scene["objects"], z["ra"], z["dec"])]
    np.testing.assert_allclose(depth, [numpy_depth(read[f"{b}_cModelFluxErr"]) for b in DP1_BANDS], atol=6e-4)
    train = out[_mag_columns(out)].to_numpy(float)
    phot = np.column_stack([ab_mag(scene["objects"][f"{b}_cModelFlux"].to_numpy()) for b in DP1_BANDS])
    assert not np.isfinite(train).all(axis=1).all()  # rows with a non-detection are weighed too
    train = np.where(np.isfinite(train), train, depth)
    phot = np.where(np.isfinite(phot), phot, depth)

    weights = out["weight"].to_numpy(float)
    assert np.isfinite(weights).all()
    np.testing.assert_allclose(weights, sklearn_weights(train, phot, K), rtol=1e-12)
    rep = prov["representativeness"]
    assert rep["n_photometric_used"] == len(phot) and rep["n_training_used"] == len(train)
    assert rep["non_detections"]["limits"] == dict(zip(DP1_BANDS, depth.tolist()))


def test_knn_weights_by_brute_force():
    from tsm_core.science.representativeness import knn_weights

    rng = np.random.default_rng(1)
    train = rng.normal(0, 1, (80, 3))
    phot = rng.normal(0.3, 1.2, (500, 3))
    d_tt = np.linalg.norm(train[:, None] - train[None], axis=2)
    r = np.sort(d_tt, axis=1)[:, 4]  # the 4th nearest other row (column 0 is the row itself)
    n = (np.linalg.norm(train[:, None] - phot[None], axis=2) <= r[:, None]).sum(axis=1)
    np.testing.assert_allclose(knn_weights(train, phot, 4), (n / 500) / (4 / 80))


def test_som_finds_the_photometric_objects_no_training_object_resembles():
    from tsm_core.science.representativeness import SOM, empty_cell_fraction

    rng = np.random.default_rng(2)
    near, far = rng.normal(0, 0.3, (700, 4)), rng.normal(6, 0.3, (300, 4))
    phot = np.vstack([near, far])
    som = SOM.train(phot, (5, 5), seed=1)
    train = rng.normal(0, 0.3, (200, 4))  # resembles only the first group
    assert empty_cell_fraction(som.assign(phot), som.assign(train), 25) == pytest.approx(0.3, abs=0.02)
    assert empty_cell_fraction(som.assign(phot), som.assign(phot), 25) == 0.0


def test_report_numbers_agree_with_the_file(at_product_home):
    result = at_product_home["result"]
    data, html_path = _cli_report(result.product_id)
    frame = pd.read_parquet(result.output_path)

    assert data["funnel"] == result.funnel
    nz = data["nz"]
    assert {s: sum(c) for s, c in nz["counts"].items()} == frame["survey"].value_counts().to_dict()
    sep = data["separation"]
    assert sum(sep["counts"]) == len(frame) and sep["radius_arcsec"] == 3.0
    assert sep["chance_within_radius"] > 0
    for band in DP1_BANDS:
        column = frame[f"{band}_cModelMag"]
        assert data["magnitudes"][band]["non_detection_fraction"] == pytest.approx(column.isna().mean())
        assert sum(data["magnitudes"][band]["counts"]) == column.notna().sum()
    matched = sum(data["sky"]["matched_per_pixel"].values())
    assert matched == len(frame)
    assert 0 <= data["representativeness"]["empty_cell_fraction"] <= 1

    page = html_path.read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page and "<link" not in page
    assert all(f'id="fig-{name}"' in page for name in FIGURES)


def test_report_of_an_hdf5_rail_product(scene, base_config):
    import tsm_core

    base_config.update(split=None)
    base_config["output"].update(format="hdf5", layout="rail", non_detection=99.0)
    result = tsm_core.run(base_config)
    data = tsm_core.report_data(result.product_id)
    assert sum(sum(c) for c in data["nz"]["counts"].values()) == result.n_rows
    assert set(data["magnitudes"]) == set(DP1_BANDS)  # found under RAIL's names, 99 read as not detected
    import h5py

    with h5py.File(result.output_path) as fh:
        mag_r = fh["photometry"]["mag_r_lsst"][()]
    assert data["magnitudes"]["r"]["non_detection_fraction"] == pytest.approx(float((mag_r == 99.0).mean()))
    assert "representativeness" not in data
    assert tsm_core.report_html(result.product_id).startswith("<!DOCTYPE html>")
    fragment = tsm_core.report_html(result.product_id, fragment=True)
    assert fragment.startswith('<div class="tsm-report">') and "<style" not in fragment and "<html" not in fragment


def _assert_rows_counted(data: dict, frame: pd.DataFrame) -> None:
    """The report counted every row of ``frame`` (the product read independently)."""
    assert data["product"]["rows"] == len(frame) > 0
    assert {s: sum(c) for s, c in data["nz"]["counts"].items()} == frame["survey"].value_counts().to_dict()
    assert sum(data["separation"]["counts"]) == len(frame)
    assert sum(data["sky"]["matched_per_pixel"].values()) == len(frame)
    for band in DP1_BANDS:
        assert sum(data["magnitudes"][band]["counts"]) == frame[f"{band}_cModelMag"].notna().sum()


def test_report_of_a_hats_product(base_config):
    """`tsm report` reads a HATS product (a directory) through the hats writer's read."""
    import lsdb

    import tsm_core

    base_config["output"]["format"] = "hats"
    result = tsm_core.run(base_config)
    assert result.output_path.is_dir()
    data = _cli_report(result.product_id)[0]
    _assert_rows_counted(data, lsdb.open_catalog(result.output_path).compute())
    assert data["product"]["format"] == "hats"


def test_report_of_a_third_party_format(base_config, registered_plugin):
    """`tsm report` of the VOTable test plugin's product, read by the plugin's Writer.read."""
    from astropy.table import Table

    import tsm_core
    from helpers import writers_plugin
    from votable_plugin import VOTableWriter

    base_config["output"]["format"] = "votable"
    registered_plugin(writers_plugin(VOTableWriter()), "test-writer-votable")
    result = tsm_core.run(base_config)
    data = _cli_report(result.product_id)[0]
    _assert_rows_counted(data, Table.read(result.output_path, format="votable").to_pandas())
    assert data["product"]["file"].endswith(".xml")


def test_report_of_an_unknown_or_unfinished_product_is_one_line(tsm_home):
    import tsm_core
    from tsm_core.errors import TSMError
    from tsm_core.products.registry import Registry

    with pytest.raises(TSMError, match="no training set with ID 42"):
        tsm_core.report(42)
    pid = Registry.at_home(tsm_home).create_product("x", "", {})
    with pytest.raises(TSMError, match=f"training set {pid} is running"):
        tsm_core.report(pid)
    other = tsm_home / "set.xml"
    other.write_text("<VOTABLE/>")
    Registry.at_home(tsm_home).finish_product(pid, 0, str(other), {})
    with pytest.raises(
        TSMError,
        match=r"no reader for the product file .*set.xml: no installed output format makes "
        r"\.xml files \(installed formats: parquet \(\.parquet, \.pq\), csv",
    ):
        tsm_core.report(pid)


@pytest.mark.browser
def test_report_page_in_headless_chromium(at_product_home, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it with apt-get; needs root)")
    sync_api = pytest.importorskip("playwright.sync_api")
    import tsm_core
    from tsm_core import reports

    files = tsm_core.report(at_product_home["result"].product_id, tmp_path)
    shots = Path(os.environ.get("TSM_SCREENSHOT_DIR") or tmp_path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1100, "height": 1300})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(files.html.as_uri())
        loaded = page.eval_on_selector_all(
            "img.figure", "els => els.map(e => [e.id, e.complete && e.naturalWidth > 0 && e.naturalHeight > 0])"
        )
        assert dict(loaded) == {f"fig-{name}": True for name in FIGURES}
        assert page.inner_text("#funnel-table").count("redshifts read") == 1
        page.screenshot(path=str(shots / "report.png"), full_page=True)
        # served by a web site with a strict Content-Security-Policy, as tsm-web's pages are
        csp = f"default-src 'self'; script-src 'self'; style-src 'self' {reports.style_source()}; img-src 'self' data:"
        page.route(
            "http://tsm.test/report",
            lambda route: route.fulfill(
                body=files.html.read_text(), content_type="text/html", headers={"Content-Security-Policy": csp}
            ),
        )
        page.goto("http://tsm.test/report")
        loaded = page.eval_on_selector_all("img.figure", "els => els.map(e => e.naturalWidth > 0)")
        assert loaded == [True] * len(FIGURES)
        assert page.eval_on_selector("h2", "e => getComputedStyle(e).borderBottomStyle") == "solid"  # CSS applied
        browser.close()
    assert [u for u in requests if not u.startswith(("file:", "data:", "http://tsm.test/"))] == []


def test_feature_bands_are_checked_before_the_run(base_config):
    import tsm_core
    from tsm_core.errors import ConfigError

    base_config["representativeness"] = {"bands": ["g", "q"]}
    with pytest.raises(ConfigError, match=r"representativeness.bands.*\['q'\]"):
        tsm_core.prepare(base_config)


def test_colour_space():
    from tsm_core.science.representativeness import feature_names, features

    mags = np.array([[20.0, 19.5, 19.0, 18.8], [22.0, 21.0, 20.5, 20.4]])
    assert feature_names("griz", "colours") == ["mag_i", "g-r", "r-i", "i-z"]
    np.testing.assert_allclose(features(mags, "griz", "colours"), [[19.0, 0.5, 0.5, 0.2], [20.5, 1.0, 0.5, 0.1]])
    assert features(mags, "griz", "magnitudes") is mags


def test_report_leaves_warnings_and_matplotlib_alone(at_product_home, tmp_path):
    import sys
    import warnings

    import tsm_core

    filters = list(warnings.filters)
    had_pyplot = "matplotlib.pyplot" in sys.modules
    tsm_core.report(at_product_home["result"].product_id, tmp_path)
    assert warnings.filters == filters
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot  # no pyplot, so no backend chosen for the process
