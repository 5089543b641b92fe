"""The two example notebooks of ``docs/examples/`` run top to bottom in a fresh ``$TSM_HOME``
(with nbclient, in a real Jupyter kernel), draw their figures, and write the training set an
independent pandas/astropy computation expects.

The synthetic samples they use are built once per test run by ``tests/test_examples.py``'s
builder (the same size as the notebooks ask for, so ``make_sample`` reuses them).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

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
    """The one training set the notebook wrote, read with plain pandas."""
    (path,) = (cwd / "training_sets").glob("*.parquet")
    return pd.read_parquet(path)


@pytest.mark.parametrize(("name", "release"), [("example1_dp02.ipynb", "dp02"), ("example2_dp1.ipynb", "dp1")])
def test_example_notebook_runs(
    name: str, release: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """The notebook runs, shows its figures and writes the rows an astropy match of the sample gives."""
    sample = built_sample(tmp_path_factory, release)
    place_sample(sample, release)
    notebook = execute(name, tmp_path)
    assert images(notebook) >= 1  # n(z), colour-redshift and separations, in one figure
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
