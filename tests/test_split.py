"""Training/validation splits, checked over the written files with pyarrow, healpy and numpy.

The redshift catalog has second measurements of some redshifts a fraction of an arcsec
away and the runs keep three neighbours, so that objects are matched by several
redshifts and redshifts match several objects: groups chain across rows.
"""

from __future__ import annotations

import json
import re

import healpy as hp
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import tsm_core
from helpers import second_measurements


@pytest.fixture(scope="module")
def chained(scene, tmp_path_factory):
    """The scene's redshifts plus second measurements of 150 of them, 0.2-0.8 arcsec away."""
    z = scene["redshifts"]
    both = pd.concat([z, second_measurements(z, 150, seed=5)], ignore_index=True)
    path = tmp_path_factory.mktemp("chained") / "z.parquet"
    both.to_parquet(path, index=False)
    return path


def _config(base_config, path, split, **output):
    base_config["redshift_catalog"] = {"path": str(path)}
    base_config["crossmatch"] = {"radius_arcsec": 3.0, "n_neighbors": 3}
    base_config["split"] = split
    base_config["output"] |= output
    return base_config


def _sides(result) -> tuple[pd.DataFrame, pd.DataFrame]:
    files = result.output_paths
    assert set(files) == {"training", "validation"} and result.output_path == files["training"]
    return pq.read_table(files["training"]).to_pandas(), pq.read_table(files["validation"]).to_pandas()


def _assert_disjoint(train: pd.DataFrame, valid: pd.DataFrame) -> None:
    assert len(train) and len(valid)
    assert not set(train["objectId"]) & set(valid["objectId"])
    assert not set(train["id"]) & set(valid["id"])


@pytest.mark.parametrize(
    "split",
    [
        {"method": "random", "train_fraction": 0.7, "seed": 1},
        {"method": "random", "train_fraction": 0.6, "seed": 2, "stratify": "z", "z_bins": 5},
        {"method": "healpix", "train_fraction": 0.5, "healpix_order": 9, "seed": 3},
        {"method": "kfold", "k": 4, "validation_fold": 2, "seed": 4},
    ],
)
def test_no_object_or_redshift_on_both_sides(base_config, chained, split):
    cfg = _config(base_config, chained, split, split_files=True)
    result = tsm_core.run(cfg)
    train, valid = _sides(result)
    # the matched set chains: some object has several redshifts and some redshift several objects
    both = pd.concat([train, valid])
    assert both.groupby("objectId")["id"].nunique().max() > 1 and both.groupby("id")["objectId"].nunique().max() > 1
    _assert_disjoint(train, valid)
    assert train["is_training"].all() and not valid["is_training"].any()
    assert len(train) + len(valid) == result.n_rows
    prov = json.loads(pq.read_metadata(result.output_paths["validation"]).metadata[b"tsm.provenance"])
    assert prov["output_files"] == {k: v.name for k, v in result.output_paths.items()}
    assert prov["counts"]["training"] == len(train) and prov["counts"]["validation"] == len(valid)
    if split["method"] == "healpix":
        pix = {
            side: set(hp.ang2pix(2**9, f["ra"].to_numpy(), f["dec"].to_numpy(), nest=True, lonlat=True))
            for side, f in (("t", train), ("v", valid))
        }
        assert not pix["t"] & pix["v"] and len(pix["t"]) > 3 and len(pix["v"]) > 3
    elif split["method"] == "kfold":
        assert set(valid["fold"]) == {2} and set(train["fold"]) == {0, 1, 3}
        # no object and no redshift in two folds
        assert both.groupby("objectId")["fold"].nunique().max() == 1
        assert both.groupby("id")["fold"].nunique().max() == 1
    else:
        assert abs(len(train) / result.n_rows - split["train_fraction"]) < 0.05
    from tsm_core.config import tsm_home
    from tsm_core.products.registry import Registry

    registry = Registry.at_home(tsm_home())
    record = registry.product(result.product_id)
    assert record.output_path == str(result.output_paths["training"])
    assert record.provenance["output_files"]["validation"] == result.output_paths["validation"].name


@pytest.mark.parametrize("stratify", [None, "z"])
def test_folds_balanced_for_ungrouped_rows(base_config, chained, stratify):
    """One-to-one matches (unique_galaxies: closest): k folds within one row of each other,
    and with stratify: z also within each quantile bin of z."""
    cfg = _config(base_config, chained, {"method": "kfold", "k": 5, "stratify": stratify, "z_bins": 4})
    cfg["unique_galaxies"] = "closest"
    got = pq.read_table(tsm_core.run(cfg).output_path).to_pandas()
    assert got["id"].is_unique and got["objectId"].is_unique
    counts = np.bincount(got["fold"].to_numpy(), minlength=5)
    assert counts.max() - counts.min() <= 1 and counts.sum() == len(got)
    assert (got["is_training"] == (got["fold"] != 0)).all()
    if stratify:
        z = got["z"].to_numpy()
        bins = np.searchsorted(np.quantile(z, [0.25, 0.5, 0.75]), z, side="right")
        for b in range(4):
            per_bin = np.bincount(got["fold"].to_numpy()[bins == b], minlength=5)
            assert per_bin.max() - per_bin.min() <= 1, (b, per_bin)


def test_split_same_whatever_partitioning_and_scheduler(scene, base_config, chained, coarse_objects_path):
    split = {"method": "kfold", "k": 3, "stratify": "z", "seed": 11}
    first = pq.read_table(tsm_core.run(_config(base_config, chained, split)).output_path).to_pandas()
    base_config["object_catalog"]["path"] = str(coarse_objects_path)  # the scene in a few large partitions
    base_config["compute"] = {"scheduler": "threads", "n_workers": 2}
    second = pq.read_table(tsm_core.run(base_config).output_path).to_pandas()
    a = first.set_index(["id", "objectId"])["fold"].sort_index()
    b = second.set_index(["id", "objectId"])["fold"].sort_index()
    pd.testing.assert_series_equal(a, b)


def test_split_config_errors(base_config):
    for split, message in (
        ({"method": "kfold"}, "split: the kfold method needs k"),
        ({"method": "random", "k": 3}, "split: k applies to the kfold and healpix methods"),
        ({"method": "kfold", "k": 3, "validation_fold": 3}, "validation_fold 3 is not a fold of 0..2"),
        ({"method": "spatial"}, "split.method"),
    ):
        with pytest.raises(tsm_core.TSMError, match=message):
            tsm_core.run(dict(base_config, split=split))
    with pytest.raises(tsm_core.TSMError, match="output.split_files needs a split"):
        tsm_core.run(dict(base_config, output={**base_config["output"], "split_files": True}))


def test_groups_unit():
    """Chains of shared objects and redshifts are one group, against a plain union-find."""
    from tsm_core.science.selection import split_groups

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 300, 500).astype(str)
    objs = rng.integers(0, 400, 500)
    labels = split_groups(ids, objs)
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for i, o in zip(ids, objs):
        parent[find(("i", i))] = find(("o", int(o)))
    roots = [find(("i", i)) for i in ids]
    # same partition of rows: labels and roots map one-to-one
    pairs = set(zip(labels.tolist(), roots))
    assert len(pairs) == len(set(labels.tolist())) == len(set(roots))


def test_split_files_from_the_cli(base_config, chained, tmp_path):
    """`tsm run` names both files; `tsm products show` lists the validation file too."""
    import yaml
    from click.testing import CliRunner

    from tsm_core.cli.main import get_cli

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_config(base_config, chained, {"method": "healpix", "healpix_order": 8})))
    out = CliRunner().invoke(
        get_cli(), ["run", str(path), "--set", "output.split_files=true", "--set", "output.format=csv"]
    )
    assert out.exit_code == 0, out.output
    train = out.output.split("-> ", 1)[1].splitlines()[0]
    valid = [l for l in out.output.splitlines() if l.startswith("  validation rows -> ")][0].split("-> ")[1]
    assert train.endswith("_training.csv") and valid.endswith("_validation.csv")
    t, v = pd.read_csv(train, comment="#"), pd.read_csv(valid, comment="#")
    _assert_disjoint(t, v)
    product_id = re.search(r"Training set (\d+):", out.output).group(1)
    shown = CliRunner().invoke(get_cli(), ["products", "show", product_id])
    assert f"output: {train}" in shown.output and f"validation output: {valid}" in shown.output
