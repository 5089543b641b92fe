"""The rail layout read by the real RAIL (pz-rail-base, pz-rail-sklearn) with its defaults.

Files are read the way RAIL documents it, through a ``rail.core.data.TableHandle``
handed to the stages; values are checked against h5py / pyarrow reads and plain numpy.
A non-detection's error is the band's depth: the numpy median of ``-2.5 log10(fluxErr) +
31.4`` over the object partitions that hold a redshift (placed with cdshealpix).
"""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import tsm_core
from helpers import DP1_BANDS, ab_mag, ab_mag_err, in_partitions_with, numpy_depth

#: RAIL's defaults (rail.core.common_params.lsst_def_maglims), as given in the issue
RAIL_LIMITS = {"u": 27.79, "g": 29.04, "r": 29.06, "i": 28.62, "z": 27.98, "y": 27.05}
#: the depth measured from per-partition histograms is the median to within half a 0.001 mag bin
DEPTH_TOL = 0.0006


@pytest.fixture(scope="module")
def rail_runs(scene, tmp_path_factory):
    """The scene as a rail-layout HDF5 and Parquet file, plus the default-layout reference."""
    out = tmp_path_factory.mktemp("rail")
    home = tmp_path_factory.mktemp("rail-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("TSM_HOME", str(home))
    base = {
        "name": "rail set",
        "redshift_catalog": {"path": str(scene["redshift_path"])},
        "object_catalog": {"release": "dp1", "path": str(scene["objects_path"])},
        "crossmatch": {"radius_arcsec": 3.0, "n_neighbors": 1},
        "compute": {"scheduler": "synchronous"},
    }
    try:
        runs = {
            fmt: tsm_core.run({**base, "output": {"format": fmt, "directory": str(out), "layout": "rail"}})
            for fmt in ("hdf5", "parquet", "csv", "fits")
        }
        runs["reference"] = tsm_core.run({**base, "output": {"format": "parquet", "directory": str(out)}})
        dered = {**base, "object_catalog": {**base["object_catalog"], "dereddening": "catalog"}}
        runs["dered"] = tsm_core.run({**dered, "output": {"format": "hdf5", "directory": str(out), "layout": "rail"}})
    finally:
        mp.undo()
    return runs


def test_rail_columns_and_non_detections(rail_runs, scene):
    reference = pq.read_table(rail_runs["reference"].output_path).to_pandas()
    objects = scene["objects"].set_index("objectId").loc[reference["objectId"]]
    assert rail_runs["parquet"].output_path.suffix == ".pq"
    parquet = pq.read_table(rail_runs["parquet"].output_path).to_pandas()
    csv = pd.read_csv(rail_runs["csv"].output_path, comment="#")
    from astropy.table import Table

    fits = Table.read(rail_runs["fits"].output_path, hdu="TRAINING_SET")
    with h5py.File(rail_runs["hdf5"].output_path) as fh:
        group = fh["photometry"]
        hdf = {name: group[name][()] for name in group}
        assert group.attrs["non_detection"] == 99.0
        limits = json.loads(group.attrs["mag_limits"])
        prov = json.loads(group.attrs["provenance"])
    read = scene["objects"][
        in_partitions_with(scene["objects_path"], scene["objects"], scene["redshifts"]["ra"], scene["redshifts"]["dec"])
    ]
    assert 0 < len(read) < len(scene["objects"])  # the crossmatch reads some of the partitions
    assert limits.keys() == set(DP1_BANDS)
    for band in DP1_BANDS:
        err = read[f"{band}_cModelFluxErr"].to_numpy(float)
        assert abs(limits[band] - numpy_depth(err)) < DEPTH_TOL, band
        recorded = prov["depths"]["bands"][band]
        assert recorded["depth"] == limits[band] and recorded["source"] == "measured"
        assert recorded["rows"] == int((np.isfinite(err) & (err > 0)).sum())
    assert prov["rail_layout"]["mag_limits"] == limits and prov["rail_layout"]["non_detection"] == 99.0
    assert not prov["rail_layout"]["dereddened"] and "measured" in prov["rail_layout"]["mag_limits_source"]
    np.testing.assert_array_equal(hdf["redshift"], reference["z"].to_numpy())
    np.testing.assert_array_equal(parquet["redshift"].to_numpy(), reference["z"].to_numpy())
    n_missing = 0
    for band in DP1_BANDS:
        flux = objects[f"{band}_cModelFlux"].to_numpy()
        flux_err = objects[f"{band}_cModelFluxErr"].to_numpy()
        detected = flux > 0  # NaN compares False
        n_missing += int((~detected).sum())
        want_mag = np.where(detected, ab_mag(flux), 99.0)
        want_err = np.where(detected, ab_mag_err(flux, flux_err), limits[band])
        for label, data in (("hdf5", hdf), ("parquet", parquet), ("csv", csv), ("fits", fits)):
            np.testing.assert_allclose(
                np.asarray(data[f"mag_{band}_lsst"], dtype=float), want_mag, rtol=1e-12, err_msg=label
            )
            np.testing.assert_allclose(
                np.asarray(data[f"mag_err_{band}_lsst"], dtype=float), want_err, rtol=1e-12, err_msg=label
            )
    assert n_missing > 10  # the scene has negative and NaN fluxes
    assert (
        "99.0 where not detected"
        in pq.read_schema(rail_runs["parquet"].output_path).field("mag_g_lsst").metadata[b"description"].decode()
    )


#: rubin_sim DustValues().r_x, the DP1 release's A_b/E(B-V) (from the reference data's README)
RUBIN_SIM_R = {"u": 4.75721, "g": 3.66056, "r": 2.701367, "i": 2.053659, "z": 1.59009, "y": 1.3077049}


def test_non_detection_errors_are_dereddened_like_the_magnitudes(rail_runs, scene):
    """Dereddened, a non-detection's error is the band's depth less R_b * E(B-V) of its row,
    in the system of the magnitudes, and a detection's magnitude is mag - R_b * E(B-V)."""
    reference = pq.read_table(rail_runs["reference"].output_path).to_pandas()
    objects = scene["objects"].set_index("objectId").loc[reference["objectId"]]
    with h5py.File(rail_runs["dered"].output_path) as fh:
        group = fh["photometry"]
        data = {name: group[name][()] for name in group}
        limits = json.loads(group.attrs["mag_limits"])
        prov = json.loads(group.attrs["provenance"])
    np.testing.assert_array_equal(data["objectId"], reference["objectId"].to_numpy())
    assert prov["rail_layout"]["dereddened"] and "R_b * E(B-V)" in prov["rail_layout"]["non_detection_error"]
    ebv = objects["ebv"].to_numpy(np.float64)
    read = scene["objects"][
        in_partitions_with(scene["objects_path"], scene["objects"], scene["redshifts"]["ra"], scene["redshifts"]["dec"])
    ]
    for band in DP1_BANDS:
        assert abs(limits[band] - numpy_depth(read[f"{band}_cModelFluxErr"])) < DEPTH_TOL  # observed depth
        flux = objects[f"{band}_cModelFlux"].to_numpy()
        detected = flux > 0
        assert (~detected).sum() > 5
        want_err = limits[band] - RUBIN_SIM_R[band] * ebv
        np.testing.assert_allclose(data[f"mag_err_{band}_lsst"][~detected], want_err[~detected], rtol=1e-12)
        want_mag = ab_mag(flux) - RUBIN_SIM_R[band] * ebv
        np.testing.assert_allclose(data[f"mag_{band}_lsst"][detected], want_mag[detected], rtol=1e-12)


def test_nan_error_and_overrides(base_config, scene, tmp_path):
    """A detected magnitude without error gets 2.5/ln10 * 10**(0.4 (m - limit)); limits
    are overridden per band by output.mag_limits, and the fill value by non_detection."""
    objects = scene["objects"].copy()
    objects.loc[objects.index[::3], "g_cModelFluxErr"] = np.nan
    from helpers import write_objects

    write_objects(objects, tmp_path / "objects", partition_rows=2000)
    base_config["object_catalog"]["path"] = str(tmp_path / "objects")
    base_config["output"] |= {"format": "hdf5", "layout": "rail", "mag_limits": {"g": 26.5}, "non_detection": 98.0}
    result = tsm_core.run(base_config)
    with h5py.File(result.output_path) as fh:
        mag, err = fh["photometry/mag_g_lsst"][()], fh["photometry/mag_err_g_lsst"][()]
        umag, uerr = fh["photometry/mag_u_lsst"][()], fh["photometry/mag_err_u_lsst"][()]
        prov = json.loads(fh["photometry"].attrs["provenance"])
    flux = objects.set_index("objectId").loc[
        pd.read_parquet(
            tsm_core.run(
                {**base_config, "output": {**base_config["output"], "format": "parquet", "layout": "default"}}
            ).output_path
        )["objectId"]
    ]
    g_flux, g_err = flux["g_cModelFlux"].to_numpy(), flux["g_cModelFluxErr"].to_numpy()
    no_err = (g_flux > 0) & np.isnan(g_err)
    assert no_err.sum() > 10
    want = 2.5 / math.log(10) * 10 ** (0.4 * (ab_mag(g_flux[no_err]) - 26.5))
    np.testing.assert_allclose(err[no_err], want, rtol=1e-12)
    assert (mag[~(g_flux > 0)] == 98.0).all() and (err[~(g_flux > 0)] == 26.5).all()
    u_missing = ~(flux["u_cModelFlux"].to_numpy() > 0)
    z = scene["redshifts"]
    read = objects[in_partitions_with(tmp_path / "objects", objects, z["ra"], z["dec"])]
    u_limit = prov["rail_layout"]["mag_limits"]["u"]  # not overridden: the measured depth
    assert abs(u_limit - numpy_depth(read["u_cModelFluxErr"])) < DEPTH_TOL
    assert (umag[u_missing] == 98.0).all() and (uerr[u_missing] == u_limit).all()
    assert prov["rail_layout"]["mag_limits"]["g"] == 26.5
    assert prov["rail_layout"]["mag_limits_sources"] == {b: "measured" for b in "uriyz"} | {"g": "output.mag_limits"}
    assert "output.mag_limits for g" in prov["rail_layout"]["mag_limits_source"]


def test_release_limits():
    from tsm_core import plugins

    for release in ("dp1", "dp02"):
        assert dict(plugins.object_catalog(release).mag_limits) == RAIL_LIMITS


def test_unknown_band_in_mag_limits(base_config):
    base_config["output"] |= {"layout": "rail", "mag_limits": {"w": 25.0}}
    with pytest.raises(tsm_core.TSMError, match=r"output.mag_limits: unknown band\(s\) \['w'\]"):
        tsm_core.run(base_config)


def _rail_stages(handle, tmp_path, name, informer_options):
    """Inform and estimate with TrainZ and KNearNeigh; returns the PDFs per estimator."""
    from rail.estimation.algos.k_nearneigh import KNearNeighEstimator, KNearNeighInformer
    from rail.estimation.algos.train_z import TrainZEstimator, TrainZInformer

    ensembles = {}
    for label, informer, estimator in (
        ("trainz", TrainZInformer, TrainZEstimator),
        ("knn", KNearNeighInformer, KNearNeighEstimator),
    ):
        inform = informer.make_stage(
            name=f"inform_{label}_{name}", model=str(tmp_path / f"{label}_{name}.pkl"), **informer_options
        )
        model = inform.inform(handle)
        estimate = estimator.make_stage(
            name=f"estimate_{label}_{name}", model=model, output=str(tmp_path / f"{label}_{name}_pdfs.hdf5")
        )
        ensembles[label] = estimate.estimate(handle).data
    return ensembles


@pytest.mark.slow
def test_rail_trainz_and_knn_with_defaults(rail_runs, tmp_path, monkeypatch):
    """HDF5: every RAIL parameter at its default. Parquet (.pq, read as a DataFrame by
    tables_io): estimators at their defaults, informers with hdf5_groupname "" (a
    Parquet file has no groups)."""
    from rail.core.data import TableHandle

    monkeypatch.chdir(tmp_path)
    reference = pq.read_table(rail_runs["reference"].output_path).to_pandas()
    n = len(reference)
    for fmt, options in (("hdf5", {}), ("parquet", {"hdf5_groupname": ""})):
        handle = TableHandle("input", path=str(rail_runs[fmt].output_path))
        handle.read()
        ensembles = _rail_stages(handle, tmp_path, fmt, options)
        assert ensembles["knn"].npdf == n and ensembles["trainz"].npdf == n
        # TrainZ gives every galaxy the training set's n(z): its mode is that of a plain histogram
        counts, edges = np.histogram(reference["z"].to_numpy(), np.linspace(0.0, 3.0, 302))
        mode = (edges[:-1] + np.diff(edges) / 2)[np.argmax(counts)]
        np.testing.assert_allclose(ensembles["trainz"].ancil["zmode"], mode)
        knn_mode = ensembles["knn"].mode(np.linspace(0, 3, 301)).ravel()
        assert np.isfinite(knn_mode).all()
