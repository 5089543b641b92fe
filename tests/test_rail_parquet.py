"""Which RAIL stages read a rail-layout Parquet file (``.pq``) with their defaults, and that all
of them read it with ``hdf5_groupname=""`` (what docs/rail.md says, stage by stage).

tables_io reads a ``.pq`` file as one pandas DataFrame: a Parquet file has no groups, so no
file can answer RAIL's default ``hdf5_groupname: photometry``. A stage that takes the whole
table in memory and looks the group up in it (every informer here, and RandomGaussEstimator,
which checks its columns on that table first) fails with ``KeyError: 'photometry'``;
estimators that iterate the file read it with their defaults. The PDFs are counted against the
file's rows read with pyarrow.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from rail.core.data import DataStore, TableHandle
from rail.estimation.algos.bpz_lite import BPZliteEstimator, BPZliteInformer
from rail.estimation.algos.k_nearneigh import KNearNeighEstimator, KNearNeighInformer
from rail.estimation.algos.random_gauss import RandomGaussEstimator, RandomGaussInformer
from rail.estimation.algos.sklearn_neurnet import SklNeurNetEstimator, SklNeurNetInformer
from rail.estimation.algos.train_z import TrainZEstimator, TrainZInformer

import tsm_core
from rail_support import BPZ_INFORM, bpz_data, bpz_estimate_options

# SklNeurNet is trained for a few iterations only: its neural network need not converge here
pytestmark = pytest.mark.filterwarnings("ignore:lbfgs failed to converge")

#: label -> informer, estimator, informer options, whether the informer and the estimator need
#: hdf5_groupname "" (the table of docs/rail.md)
STAGES = {
    "TrainZ": (TrainZInformer, TrainZEstimator, {}, (True, False)),
    "KNearNeigh": (KNearNeighInformer, KNearNeighEstimator, {"ngrid_sigma": 3, "nneigh_max": 4}, (True, False)),
    "RandomGauss": (RandomGaussInformer, RandomGaussEstimator, {}, (False, True)),
    "SklNeurNet": (SklNeurNetInformer, SklNeurNetEstimator, {"max_iter": 30}, (True, False)),
    "BPZlite": (BPZliteInformer, BPZliteEstimator, BPZ_INFORM, (True, False)),
}


@pytest.fixture(autouse=True)
def data_store_overwrite(monkeypatch):
    monkeypatch.setattr(DataStore, "allow_overwrite", True, raising=False)


@pytest.fixture(scope="module")
def rail_parquet(scene, tmp_path_factory):
    """The scene as a rail-layout Parquet file and its number of rows (read by pyarrow)."""
    out = tmp_path_factory.mktemp("rail-pq")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TSM_HOME", str(out / "home"))
        result = tsm_core.run(
            {
                "name": "rail parquet",
                "redshift_catalog": {"path": str(scene["redshift_path"])},
                "object_catalog": {"release": "dp1", "path": str(scene["objects_path"])},
                "crossmatch": {"radius_arcsec": 3.0},
                "output": {"format": "parquet", "directory": str(out), "layout": "rail"},
                "compute": {"scheduler": "synchronous"},
            }
        )
    assert result.output_path.suffix == ".pq"
    return str(result.output_path), pq.read_metadata(result.output_path).num_rows


@pytest.fixture(scope="module")
def bpz_folder(tmp_path_factory):
    return bpz_data(tmp_path_factory)


def _estimate_options(label, request, monkeypatch) -> dict:
    if label != "BPZlite":
        return {}
    folder = request.getfixturevalue("bpz_folder")  # built only where BPZ lite runs
    monkeypatch.setenv("BPZDATAPATH", str(folder))  # BPZ lite sets it: restored after the test
    return bpz_estimate_options(folder)


@pytest.mark.parametrize("label", list(STAGES))
def test_parquet_with_empty_groupname(label, rail_parquet, tmp_path, request, monkeypatch):
    informer, estimator, inform_options, _ = STAGES[label]
    path, n_rows = rail_parquet
    name = f"pq_{label}"
    model = informer.make_stage(
        name=f"inform_{name}", model=str(tmp_path / "model.pkl"), hdf5_groupname="", **inform_options
    ).inform(TableHandle(f"train_{name}", path=path))
    pdfs = estimator.make_stage(
        name=f"estimate_{name}",
        model=model,
        output=str(tmp_path / "pdfs.hdf5"),
        hdf5_groupname="",
        **_estimate_options(label, request, monkeypatch),
    ).estimate(TableHandle(f"test_{name}", path=path))
    assert pdfs.data.npdf == n_rows


@pytest.mark.parametrize("label", list(STAGES))
def test_parquet_with_defaults(label, rail_parquet, tmp_path, request, monkeypatch):
    """With every option at its default: the stages docs/rail.md names fail with KeyError
    'photometry', the others read the file."""
    informer, estimator, inform_options, (inform_needs, estimate_needs) = STAGES[label]
    path, n_rows = rail_parquet
    name = f"pqd_{label}"

    def inform(**options):
        stage = informer.make_stage(name=f"inform_{name}", model=str(tmp_path / "model.pkl"), **options)
        return stage.inform(TableHandle(f"train_{name}", path=path))

    if inform_needs:
        with pytest.raises(KeyError, match="photometry"):
            inform(**inform_options)
        model = inform(**inform_options, hdf5_groupname="")
    else:
        model = inform(**inform_options)
    stage = estimator.make_stage(
        name=f"estimate_{name}",
        model=model,
        output=str(tmp_path / "pdfs.hdf5"),
        **_estimate_options(label, request, monkeypatch),
    )
    if estimate_needs:
        with pytest.raises(KeyError, match="photometry"):
            stage.estimate(TableHandle(f"test_{name}", path=path))
    else:
        assert stage.estimate(TableHandle(f"test_{name}", path=path)).data.npdf == n_rows
