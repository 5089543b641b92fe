"""The 1-sigma depths a run measures from the object partitions it reads, and the weights of
every row, against independent computations.

- Depths on the real DP1 and DP0.2 samples (HATS catalogs of them written here, a redshift
  on every object so that the run reads every partition) against a plain numpy median of
  ``-2.5 log10(fluxErr) + 31.4`` over the rows read (DP0.2: ``detect_isPrimary`` rows);
  the report's JSON and page show them.
- Weights of a dereddened run against scikit-learn on the same rows, non-detections at the
  band's depth less R_b * E(B-V) of the row.
- The histogram median against numpy's median.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import tsm_core
from helpers import DP1_BANDS, ab_mag, in_partitions_with, numpy_depth, sklearn_weights, write_objects

#: half a 0.001 mag bin, plus the rounding to 4 decimals
DEPTH_TOL = 0.0006
#: RAIL's defaults, the releases' configured limits: the fallback of a band with no error
RAIL_LIMITS = {"u": 27.79, "g": 29.04, "r": 29.06, "i": 28.62, "z": 27.98, "y": 27.05}
#: rubin_sim DustValues().r_x, the DP1 release's A_b/E(B-V) (from the reference data's README)
RUBIN_SIM_R = {"u": 4.75721, "g": 3.66056, "r": 2.701367, "i": 2.053659, "z": 1.59009, "y": 1.3077049}
SAMPLES = {"dp1": "dp1_object_sample.parquet", "dp02": "dp02_object_sample.parquet"}


@pytest.fixture(scope="module")
def real_runs(reference, tmp_path_factory):
    """A rail-layout run on each real sample, written as HATS with several partitions, with a
    redshift at every object's position."""
    base = tmp_path_factory.mktemp("depths")
    runs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TSM_HOME", str(base / "home"))
        for release, name in SAMPLES.items():
            objects = pd.read_parquet(reference / name)
            if "objectId" not in objects.columns:  # DP0.2: the pandas index
                objects = objects.reset_index()
            write_objects(objects, base / release, partition_rows=400)
            n = len(objects)
            redshifts = pd.DataFrame(
                {
                    "id": [f"z{i}" for i in range(n)],
                    "ra": objects["coord_ra"].to_numpy(),
                    "dec": objects["coord_dec"].to_numpy(),
                    "z": np.linspace(0.1, 1.5, n),
                }
            )
            redshifts.to_parquet(base / f"{release}_z.parquet", index=False)
            config = {
                "name": f"{release} depths",
                "redshift_catalog": {"path": str(base / f"{release}_z.parquet")},
                "object_catalog": {"release": release, "path": str(base / release)},
                "crossmatch": {"radius_arcsec": 0.5},
                "output": {"format": "parquet", "layout": "rail", "directory": str(base / "out")},
                "compute": {"scheduler": "synchronous"},
            }
            runs[release] = {"result": tsm_core.run(config), "objects": objects, "path": base / release}
        runs["dp1"]["report"] = tsm_core.report_data(runs["dp1"]["result"].product_id)
        runs["dp1"]["page"] = tsm_core.report_html(runs["dp1"]["result"].product_id)
    return runs


@pytest.mark.parametrize("release", list(SAMPLES))
def test_depths_of_the_real_samples_are_the_numpy_median(real_runs, release):
    run = real_runs[release]
    objects = run["objects"]
    if release == "dp02":
        objects = objects[objects["detect_isPrimary"]]  # the release's cut: rows read are primary
    prov = run["result"].provenance
    recorded = prov["depths"]["bands"]
    assert prov["depths"]["partitions"] > 1 and prov["depths"]["zero_point"] == 31.4
    frame = pd.read_parquet(run["result"].output_path)
    for band in DP1_BANDS:
        err = objects[f"{band}_cModelFluxErr"].to_numpy(np.float64)
        rows = int((np.isfinite(err) & (err > 0)).sum())
        assert recorded[band]["rows"] == rows
        limit = prov["rail_layout"]["mag_limits"][band]
        if rows:
            assert abs(recorded[band]["depth"] - numpy_depth(err)) < DEPTH_TOL, band
            assert recorded[band]["source"] == "measured" and limit == recorded[band]["depth"]
        else:  # DP1's u and y: no error anywhere, the release's configured limit
            assert recorded[band]["depth"] == RAIL_LIMITS[band] and "release" in recorded[band]["source"]
            assert limit == RAIL_LIMITS[band]
        missing = frame[f"mag_{band}_lsst"].to_numpy() == 99.0
        assert (frame[f"mag_err_{band}_lsst"].to_numpy()[missing] == limit).all()
    if release == "dp1":  # the numbers for the real DP1 sample
        for band, depth in {"g": 26.91, "r": 26.56, "i": 26.26, "z": 24.93}.items():
            assert abs(recorded[band]["depth"] - depth) < 0.01


def test_report_shows_the_depths(real_runs):
    run = real_runs["dp1"]
    recorded = run["result"].provenance["depths"]["bands"]
    shown = run["report"]["depths"]
    json.dumps(shown)  # JSON-ready
    assert {b: row["depth"] for b, row in shown["bands"].items()} == {b: recorded[b]["depth"] for b in DP1_BANDS}
    assert shown["bands"]["g"]["rail_limit"] == recorded["g"]["depth"]
    page = run["page"]
    table = page[page.index('<table id="depths-table">') :]
    table = table[: table.index("</table>")]
    for band in DP1_BANDS:
        assert f"<td>{band}</td><td>{recorded[band]['depth']:.3f}</td><td>{recorded[band]['rows']}</td>" in table
    section = page[page.index('<section id="depths">') :]
    section = section[: section.index("</section>")]
    assert 'id="fig-depths"' in section  # the figure, in the depths' own section
    import base64
    import io

    from matplotlib.image import imread

    png = section.split('src="data:image/png;base64,')[1].split('"')[0]
    pixels = imread(io.BytesIO(base64.b64decode(png)), format="png")
    assert pixels.shape[0] > 200 and pixels.std() > 0.05  # a drawn figure, not a blank


def test_histogram_median_is_numpy_median_to_half_a_bin():
    from tsm_core.science.depths import BIN_MAG, histogram, histogram_median

    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 1000, 1001):
        values = rng.normal(26.0, 0.8, n)
        assert abs(histogram_median(histogram(values)) - np.median(values)) <= BIN_MAG / 2 + 1e-9
    assert np.isnan(histogram_median(histogram(np.zeros(0))))


def test_dereddened_weights_of_every_row_are_sklearns(scene, base_config):
    """Non-detections of training rows and photometric objects at the depth less
    R_b * E(B-V) of the row, every row weighed, equal to scikit-learn's."""
    k = 4
    base_config["object_catalog"]["dereddening"] = "catalog"
    base_config["unique_galaxies"] = "closest"
    base_config["representativeness"] = {"sample_fraction": 1.0, "k": k, "som_shape": [3, 3]}
    result = tsm_core.run(base_config)
    out = pd.read_parquet(result.output_path)
    objects, z = scene["objects"], scene["redshifts"]
    read = objects[in_partitions_with(scene["objects_path"], objects, z["ra"], z["dec"])]
    depth = np.array([result.provenance["depths"]["bands"][b]["depth"] for b in DP1_BANDS])
    np.testing.assert_allclose(depth, [numpy_depth(read[f"{b}_cModelFluxErr"]) for b in DP1_BANDS], atol=DEPTH_TOL)
    r_b = np.array([RUBIN_SIM_R[b] for b in DP1_BANDS])

    def dereddened_at_limits(mags: np.ndarray, ebv: np.ndarray) -> np.ndarray:
        limit = depth[None, :] - ebv[:, None] * r_b[None, :]
        return np.where(np.isfinite(mags), mags, limit)

    train = out[[f"{b}_cModelMag_dered" for b in DP1_BANDS]].to_numpy(float)
    assert not np.isfinite(train).all(axis=1).all()
    train = dereddened_at_limits(train, out["ebv"].to_numpy(float))
    ebv = objects["ebv"].to_numpy(np.float64)
    phot = np.column_stack([ab_mag(objects[f"{b}_cModelFlux"].to_numpy()) for b in DP1_BANDS]) - ebv[:, None] * r_b
    phot = dereddened_at_limits(phot, ebv)
    weights = out["weight"].to_numpy(float)
    assert np.isfinite(weights).all()
    np.testing.assert_allclose(weights, sklearn_weights(train, phot, k), rtol=1e-12)


def test_measuring_reads_no_object_partition_twice(base_config, coarse_objects_path):
    """The depth histograms ride on the match: computing the paired tasks runs each object
    partition's read once, exactly as many reads as the match tasks alone (counted with a
    Dask callback on the executed keys)."""
    import dask
    from dask.callbacks import Callback

    from tsm_core.pipeline.depths import DepthMeter
    from tsm_core.pipeline.main import prepare
    from tsm_core.pipeline.match import match

    base_config["object_catalog"]["path"] = str(coarse_objects_path)  # a few large partitions
    plan = prepare(base_config)
    read_name = plan.objects.to_delayed()[0].key[0]

    def reads(tasks: list) -> tuple[list, tuple]:
        executed: list = []
        with Callback(posttask=lambda key, *_: executed.append(key)):
            results = dask.compute(*tasks, scheduler="synchronous")
        return [k for k in executed if isinstance(k, tuple) and k[0] == read_name], results

    tasks, _ = match(plan)
    alone, _ = reads(tasks)
    meter = DepthMeter(plan)
    paired, results = reads(meter.attach(tasks))
    assert alone and len(paired) == len(set(paired)) == len(alone) == len(tasks)
    assert sorted(paired) == sorted(alone)
    list(meter.frames(results))
    assert meter.tally.partitions == len(alone)
