"""tsm_rail's TrainingSetMaker: a RAIL stage that makes the training set, interactively and in a
real ceci pipeline that informs and estimates with KNearNeigh (pz-rail-sklearn) and BPZ lite
(pz-rail-bpz).

What the stage hands over is compared with a run of :func:`tsm_core.run` in the default layout
and Parquet, read with pyarrow (the same rows, split by its ``is_training`` column), and its
files are read with h5py; the pipeline's PDFs are read with qp.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from rail.core.data import DataStore

import tsm_core
from helpers import DP1_BANDS
from rail_support import BPZ_INFORM, bpz_data, bpz_estimate_options
from tsm_rail import TrainingSetMaker, training_set_maker
from tsm_rail.options import run_config

SPLIT = {"train_fraction": 0.7, "seed": 5}


@pytest.fixture(autouse=True)
def data_store_overwrite(monkeypatch):
    """RAIL keeps every handle in one process-wide DataStore; a test may reuse a stage name."""
    monkeypatch.setattr(DataStore, "allow_overwrite", True, raising=False)


@pytest.fixture(scope="module")
def run_cfg(scene) -> dict:
    """The run config handed to the stage (no output section: the stage writes rail HDF5)."""
    return {
        "name": "rail stage set",
        "redshift_catalog": {"path": str(scene["redshift_path"])},
        "object_catalog": {"release": "dp1", "path": str(scene["objects_path"])},
        "crossmatch": {"radius_arcsec": 3.0, "n_neighbors": 1},
        "compute": {"scheduler": "synchronous"},
    }


@pytest.fixture(scope="module")
def reference(run_cfg, tmp_path_factory):
    """The same run in the default layout, Parquet, one file with ``is_training``, read by pyarrow."""
    out = tmp_path_factory.mktemp("rail-reference")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TSM_HOME", str(out / "home"))
        result = tsm_core.run({**run_cfg, "split": SPLIT, "output": {"format": "parquet", "directory": str(out)}})
    return pq.read_table(result.output_path).to_pandas()


def read_group(path) -> dict[str, np.ndarray]:
    with h5py.File(path) as fh:
        return {name: ds[()] for name, ds in fh["photometry"].items()}


def assert_rows(table: dict, expected) -> None:
    """``table`` ({column: array}, rail layout) holds the rows of ``expected`` (default layout)."""
    assert len(table["redshift"]) == len(expected)
    order = np.argsort(table["objectId"])
    want = expected.sort_values("objectId")
    np.testing.assert_array_equal(table["objectId"][order], want["objectId"].to_numpy())
    np.testing.assert_array_equal(np.char.decode(table["id"][order]), want["id"].to_numpy())
    np.testing.assert_array_equal(table["redshift"][order], want["z"].to_numpy())
    for band in DP1_BANDS:
        mag = want[f"{band}_cModelMag"].to_numpy()
        got = table[f"mag_{band}_lsst"][order]
        detected = np.isfinite(mag)
        np.testing.assert_allclose(got[detected], mag[detected], rtol=1e-12)
        assert (got[~detected] == 99.0).all()


def test_stage_interactive_split(run_cfg, reference, tmp_path):
    """make_stage + make_training_set: the training and validation rows of the run's split, as
    handles whose data is what RAIL reads, written where RAIL's ``output``/``validation`` say."""
    stage = TrainingSetMaker.make_stage(
        name="tsm_split",
        run_config=run_cfg,
        split=SPLIT,
        output=str(tmp_path / "train.hdf5"),
        validation=str(tmp_path / "valid.hdf5"),
    )
    handles = stage.make_training_set()
    for tag, file, rows in (
        ("output", "train.hdf5", reference[reference["is_training"]]),
        ("validation", "valid.hdf5", reference[~reference["is_training"]]),
    ):
        handle = stage.get_handle(tag)
        assert handles[tag] is handle and Path(handle.path) == tmp_path / file
        assert_rows(handle.data["photometry"], rows)
        on_disk = read_group(handle.path)
        assert set(on_disk) == set(handle.data["photometry"])
        for name, values in on_disk.items():
            np.testing.assert_array_equal(values, handle.data["photometry"][name])
        with h5py.File(handle.path) as fh:  # a copy of the product's file: its attributes too
            assert fh["photometry"].attrs["product_id"] == stage.result.product_id
    assert 0 < len(handles["validation"].data["photometry"]["redshift"]) < len(reference)


def test_stage_without_split_and_return_mode(run_cfg, reference, tmp_path, monkeypatch):
    """Without a split, ``validation`` has the columns and no rows; the rail.interactive-style
    function writes no RAIL file (the run's own product goes to the working folder)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    tables = training_set_maker(name="tsm_return", run_config=run_cfg, run_name="returned set")
    assert_rows(tables["output"]["photometry"], reference)
    validation = tables["validation"]["photometry"]
    assert set(validation) == set(tables["output"]["photometry"])
    assert all(len(values) == 0 for values in validation.values())
    assert sorted(p.name for p in work.iterdir()) == ["returned_set_1.hdf5"]

    stage = TrainingSetMaker.make_stage(name="tsm_nosplit", run_config=run_cfg)
    stage.run()
    stage.finalize()
    assert_rows(read_group(stage.get_handle("output").path), reference)
    assert all(len(v) == 0 for v in read_group(stage.get_handle("validation").path).values())


def test_options_over_run_config(run_cfg, tmp_path, monkeypatch):
    """run_config as a YAML path (its relative paths against its folder); a section option
    updates that section key by key; the stage's name names a run without one."""
    monkeypatch.chdir(tmp_path)
    redshifts = Path(run_cfg["redshift_catalog"]["path"])
    (tmp_path / "conf").mkdir()
    shutil.copy(redshifts, tmp_path / "conf")
    text = {**run_cfg, "redshift_catalog": {"path": redshifts.name}, "output": {"directory": "products"}}
    del text["name"]
    (tmp_path / "conf" / "run.yaml").write_text(yaml.safe_dump(text))
    options = {"run_config": tmp_path / "conf" / "run.yaml", "crossmatch": {"radius_arcsec": 1.5}, "split": SPLIT}
    config = run_config(options, default_name="stage name", default_directory=str(tmp_path / "elsewhere"))
    assert config.name == "stage name"
    assert config.redshift_catalog.path == str(tmp_path / "conf" / redshifts.name)
    assert (config.crossmatch.radius_arcsec, config.crossmatch.n_neighbors) == (1.5, 1)
    assert config.output.directory == str(tmp_path / "conf" / "products")
    assert (config.output.format, config.output.layout, config.output.split_files) == ("hdf5", "rail", True)
    stage = TrainingSetMaker.make_stage(name="tsm_relative", run_config="conf/run.yaml")
    assert stage.config.run_config == str(tmp_path.resolve() / "conf" / "run.yaml")  # as ceci's processes need it
    config = run_config({"run_config": run_cfg, "run_output": {}}, default_name="x", default_directory=".")
    assert config.name == run_cfg["name"] and Path(config.output.directory) == tmp_path.resolve()
    assert config.output.split_files is False


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"run_output": {"format": "parquet"}}, r"run_output.format: the RAIL stage writes format 'hdf5'"),
        ({"run_output": {"layout": "default"}}, r"run_output.layout: the RAIL stage writes layout 'rail'"),
        ({"run_config": 3}, r"run_config: a dict or the path of a YAML file, not int"),
        ({"crossmatch": {"radius": 2}}, r"crossmatch.radius: unknown key"),
    ],
)
def test_bad_options(run_cfg, options, message):
    with pytest.raises(tsm_core.TSMError, match=message):
        run_config({"run_config": run_cfg, **options}, default_name="x", default_directory=".")


@pytest.mark.slow
def test_ceci_pipeline_knn_and_bpz(run_cfg, reference, tmp_path, tmp_path_factory, monkeypatch):
    """A RailPipeline built in Python, saved as a pipeline YAML and run by ceci (each stage a
    process): TrainingSetMaker -> KNearNeigh and BPZ lite informed on the training rows and
    estimating the validation rows, one PDF per row."""
    import ceci
    import qp
    from rail.core.stage import RailPipeline
    from rail.estimation.algos.bpz_lite import BPZliteEstimator, BPZliteInformer
    from rail.estimation.algos.k_nearneigh import KNearNeighEstimator, KNearNeighInformer

    bpz = bpz_data(tmp_path_factory)
    # ceci starts each stage as `python3 -m ...`: this interpreter's
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")

    class TsmKnnBpzPipeline(RailPipeline):
        def __init__(self) -> None:
            RailPipeline.__init__(self)
            self.make_training_set = TrainingSetMaker.build(run_config=run_cfg, split=SPLIT)
            training, validation = self.make_training_set.io.output, self.make_training_set.io.validation
            self.inform_knn = KNearNeighInformer.build(connections={"input": training}, ngrid_sigma=3, nneigh_max=4)
            self.estimate_knn = KNearNeighEstimator.build(
                connections={"input": validation, "model": self.inform_knn.io.model}
            )
            self.inform_bpz = BPZliteInformer.build(connections={"input": training}, **BPZ_INFORM)
            self.estimate_bpz = BPZliteEstimator.build(
                connections={"input": validation, "model": self.inform_bpz.io.model}, **bpz_estimate_options(bpz)
            )

    out = tmp_path / "pipe"
    pipe = TsmKnnBpzPipeline()
    pipe.initialize({}, {"output_dir": str(out), "log_dir": str(out), "resume": False}, None)
    pipe.save(str(tmp_path / "pipe.yaml"))
    status = ceci.Pipeline.read(
        str(tmp_path / "pipe.yaml"), extra_config=["launcher.name=mini", "launcher.interval=0.2"]
    ).run()
    logs = {p.name: p.read_text()[-2000:] for p in out.glob("*.out")}
    assert status == 0, logs

    training = read_group(out / "output_make_training_set.hdf5")
    validation = read_group(out / "validation_make_training_set.hdf5")
    assert_rows(training, reference[reference["is_training"]])
    assert_rows(validation, reference[~reference["is_training"]])
    for estimator in ("knn", "bpz"):
        ensemble = qp.read(str(out / f"output_estimate_{estimator}.hdf5"))
        assert ensemble.npdf == len(validation["redshift"])
        mode = ensemble.mode(np.linspace(0.0, 3.0, 301)).ravel()
        assert np.isfinite(mode).all() and ((mode >= 0) & (mode <= 3)).all()
