"""The two example notebooks of ``docs/examples/`` run top to bottom in a fresh ``$TSM_HOME``
(with nbclient, in a real Jupyter kernel), draw their figures, and write the training set an
independent pandas/astropy computation expects.

The synthetic samples they use are built once per test run by ``tests/test_examples.py``'s
builder (the same size as the notebooks ask for, so ``make_sample`` reuses them). Their last
section runs on the real samples of ``../shared/reference-data`` (``TSM_REFERENCE_DATA``):
the rows it writes are checked against an astropy match of the same files.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from helpers import brute_force_match
from test_examples import built_sample, closest_one_to_one, nearest_matches, place_sample, sample_objects

NOTEBOOKS = Path(__file__).resolve().parents[1] / "docs" / "examples"


def execute(name: str, cwd: Path) -> nbformat.NotebookNode:
    """Run the notebook ``name`` in ``cwd`` (its `training_sets/` goes there); fails on any error."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def images(notebook: nbformat.NotebookNode) -> int:
    """How many PNG figures the executed notebook shows."""
    return sum("image/png" in out.get("data", {}) for cell in notebook.cells for out in cell.get("outputs", []))


def written(cwd: Path) -> pd.DataFrame:
    """The one training set of the synthetic sample the notebook wrote, read with plain pandas."""
    (path,) = (cwd / "training_sets").glob("*.parquet")
    return pd.read_parquet(path)


def written_real(cwd: Path, stem: str) -> pd.DataFrame:
    """The training set of the real samples whose file name starts with ``stem``."""
    (path,) = (cwd / "training_sets" / "real").glob(f"{stem}_[0-9]*.parquet")
    return pd.read_parquet(path)


def check_real_dp1(reference: Path, cwd: Path) -> None:
    """Real DESI against the real DP1 rows: none within 1 arcsec (as the notebook says); at 30 arcsec (mechanics only)
    the good non-star redshifts' nearest objects, one per object, as astropy finds them."""
    import numpy as np

    desi = pd.read_parquet(reference / "desi_dr1_dp1_fields_sample.parquet")
    objects = pd.read_parquet(reference / "dp1_object_sample.parquet")
    good = (desi["ZWARN"] == 0) & desi["ZCAT_PRIMARY"] & np.isfinite(desi["Z"]) & np.isfinite(desi["ZERR"])
    good &= desi["SPECTYPE"].str.strip() != "STAR"
    redshifts = desi.loc[good].rename(columns={"TARGETID": "id", "TARGET_RA": "ra", "TARGET_DEC": "dec"})
    assert len(brute_force_match(redshifts, objects, radius_arcsec=1.0, n_neighbors=1)) == 0
    expected = closest_one_to_one(brute_force_match(redshifts, objects, radius_arcsec=30.0, n_neighbors=1))
    frame = written_real(cwd, "example_2_real_samples_wide")
    assert len(frame) == len(expected) > 5
    assert set(frame["id"].astype(str)) == set(expected["id"].astype(str))
    assert set(frame["objectId"]) == set(expected["objectId"])
    np.testing.assert_allclose(np.sort(frame["_dist_arcsec"]), np.sort(expected["dist"]), atol=1e-6)


def check_real_dp02(reference: Path, cwd: Path) -> None:
    """The real CRC rows the notebook placed on the real DP0.2 rows: each finite-z redshift's
    nearest primary object within 1 arcsec, one per object, as astropy finds them."""
    import numpy as np

    objects = pd.read_parquet(reference / "dp02_object_sample.parquet").reset_index()
    placed = pd.read_parquet(cwd / "real_samples" / "crc_at_dp02_objects.parquet")
    crc = pd.read_parquet(reference / "combined_redshift_sample.parquet")
    assert placed.drop(columns=["ra", "dec"]).equals(crc.drop(columns=["ra", "dec"]))  # real rows, only moved
    # the crc convention: a row's id is CRD_ID (the pipeline's own id), its survey id stays a column
    redshifts = placed[np.isfinite(placed["z"]) & (placed["z"] >= -0.01)].assign(id=lambda f: f["CRD_ID"])
    primary = objects[objects["detect_isPrimary"]]
    expected = closest_one_to_one(brute_force_match(redshifts, primary, radius_arcsec=1.0, n_neighbors=1))
    frame = written_real(cwd, "example_1_real_samples")
    assert len(frame) == len(expected) > 5
    assert set(frame["id"]) == set(expected["id"]) and set(frame["objectId"]) == set(expected["objectId"])


@pytest.mark.slow
@pytest.mark.parametrize(("name", "release"), [("example1_dp02.ipynb", "dp02"), ("example2_dp1.ipynb", "dp1")])
def test_example_notebook_runs(
    name: str,
    release: str,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    reference: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The notebook runs, shows its figures and writes the rows an astropy match of the sample
    gives, and of the real samples in its last section."""
    sample = built_sample(tmp_path_factory, release)
    place_sample(sample, release)
    monkeypatch.setenv("TSM_REFERENCE_DATA", str(reference))  # the kernel inherits it
    notebook = execute(name, tmp_path)
    assert images(notebook) >= 2  # n(z), colour-redshift and separations: the synthetic and the real samples
    (check_real_dp02 if release == "dp02" else check_real_dp1)(reference, tmp_path)
    redshifts = pd.read_parquet(sample / "redshifts.parquet")
    objects = sample_objects(sample)
    if release == "dp02":  # detect_isPrimary (the release's cut) and S/N > 5 in gaap1p0 i
        objects = objects[objects["detect_isPrimary"] & (objects["i_gaap1p0Flux"] / objects["i_gaap1p0FluxErr"] > 5)]
    else:  # extended objects
        objects = objects[objects["refExtendedness"] == 1]
    expected = closest_one_to_one(nearest_matches(redshifts[redshifts["z_flag"] >= 3], objects))
    frame = written(tmp_path)
    assert len(frame) == len(expected) > 0
    assert set(frame["id"]) == set(expected["id"])
    printed = "".join(
        out.get("text", "") for cell in notebook.cells for out in cell.get("outputs", []) if out.get("name") == "stdout"
    )
    assert f"{len(expected)} rows" in printed
