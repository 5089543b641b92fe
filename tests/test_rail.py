"""The rail layout read by the real RAIL (pz-rail-base, pz-rail-sklearn) with its defaults.

Files are read the way RAIL documents it, through a ``rail.core.data.TableHandle``
handed to the stages; values are checked against h5py / pyarrow reads and plain numpy.
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
from helpers import DP1_BANDS, ab_mag, ab_mag_err

#: RAIL's defaults (rail.core.common_params.lsst_def_maglims), as given in the issue
RAIL_LIMITS = {"u": 27.79, "g": 29.04, "r": 29.06, "i": 28.62, "z": 27.98, "y": 27.05}


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
        assert json.loads(group.attrs["mag_limits"]) == RAIL_LIMITS
        prov = json.loads(group.attrs["provenance"])
    assert prov["rail_layout"]["mag_limits"] == RAIL_LIMITS and prov["rail_layout"]["non_detection"] == 99.0
    np.testing.assert_array_equal(hdf["redshift"], reference["z"].to_numpy())
    np.testing.assert_array_equal(parquet["redshift"].to_numpy(), reference["z"].to_numpy())
    n_missing = 0
    for band in DP1_BANDS:
        flux = objects[f"{band}_cModelFlux"].to_numpy()
        flux_err = objects[f"{band}_cModelFluxErr"].to_numpy()
        detected = flux > 0  # NaN compares False
        n_missing += int((~detected).sum())
        want_mag = np.where(detected, ab_mag(flux), 99.0)
        want_err = np.where(detected, ab_mag_err(flux, flux_err), RAIL_LIMITS[band])
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
    assert (umag[u_missing] == 98.0).all() and (uerr[u_missing] == RAIL_LIMITS["u"]).all()
    assert (
        prov["rail_layout"]["mag_limits"]["g"] == 26.5
        and "output.mag_limits" in prov["rail_layout"]["mag_limits_source"]
    )


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
