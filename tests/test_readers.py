"""Every format opened by pandas and astropy with no options, and by ``tsm_core.read`` /
``RunResult.to_pandas``, compared with the rows of a separate run read by pyarrow."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from astropy.table import Table

import tsm_core
from conftest import isolate, scene_config

FORMATS = ("csv", "ecsv", "fits", "hdf5", "parquet")


@pytest.fixture(scope="module")
def runs(scene, tmp_path_factory):
    """One training set per format, and the reference run (Parquet, read with pyarrow)."""
    base = tmp_path_factory.mktemp("readers")
    with pytest.MonkeyPatch.context() as mp:
        home = isolate(base / "tsm-home", mp)
        config = scene_config(scene, base / "out")
        config["crossmatch"] = {"radius_arcsec": 3.0, "n_neighbors": 2}
        config["split"] = {"train_fraction": 0.7, "seed": 3}
        reference = tsm_core.run({**config, "name": "reference"})
        results = {
            fmt: tsm_core.run({**config, "name": f"as {fmt}", "output": {**config["output"], "format": fmt}})
            for fmt in FORMATS
        }
    reference_rows = pq.read_table(reference.output_path).to_pandas()
    return {"home": home, "config": config, "reference": reference_rows, "results": results}


def _same_rows(frame: pd.DataFrame, ref: pd.DataFrame) -> None:
    """``frame`` holds the reference's rows and columns (row order may differ: ids sort both)."""
    assert list(frame.columns) == list(ref.columns)
    got = frame.sort_values("id", kind="stable").reset_index(drop=True)
    want = ref.sort_values("id", kind="stable").reset_index(drop=True)
    assert len(got) == len(want) > 100
    assert (got["id"].astype(str) == want["id"].astype(str)).all()
    for name in ("z", "ra", "dec"):
        np.testing.assert_allclose(got[name].astype(float), want[name].astype(float), rtol=1e-12)
    flags = {"True": True, "False": False, "true": True, "false": False}
    training = got["is_training"].map(lambda v: flags.get(str(v), v)).astype(bool)
    assert (training == want["is_training"]).all()


def _no_warning_read(read, path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return read(path)


@pytest.mark.parametrize("fmt", ["csv", "ecsv"])
def test_pandas_read_csv_without_options(runs, fmt):
    path = runs["results"][fmt].output_path
    frame = pd.read_csv(path) if fmt == "csv" else pd.read_csv(path, comment="#")
    _same_rows(frame, runs["reference"])
    if fmt == "csv":
        assert path.read_text().splitlines()[0] == ",".join(f'"{c}"' for c in runs["reference"].columns)


@pytest.mark.parametrize("fmt", ["csv", "ecsv", "fits", "hdf5"])
def test_astropy_table_read_without_options(runs, fmt):
    table = _no_warning_read(Table.read, runs["results"][fmt].output_path)
    _same_rows(table.to_pandas(), runs["reference"])


def test_hdf5_read_by_pandas_and_astropy_without_options(runs):
    """``pd.read_hdf(path)`` and ``Table.read(path)``, no key, no ``path=``, no warning: the
    rows, column order, units, descriptions and provenance; nulls are the documented sentinel."""
    result = runs["results"]["hdf5"]
    frame = _no_warning_read(pd.read_hdf, result.output_path)
    _same_rows(frame, runs["reference"])
    assert frame["id"].map(type).eq(str).all()  # pandas decodes the UTF-8 strings
    table = _no_warning_read(Table.read, result.output_path)
    assert table.colnames == list(runs["reference"].columns)
    assert str(table["ra"].unit) == "deg" and str(table["i_cModelMag"].unit) == "mag" and table["z"].description
    assert table["is_training"].dtype == bool
    assert table.meta["product_id"] == result.product_id and table.meta["name"] == "as hdf5"
    assert table.meta["provenance"]["counts"]["rows"] == result.n_rows == len(table) == len(frame)


def test_pandas_reads_every_format_without_options(runs):
    """One standard pandas call per format, with no option but a CSV comment marker for ECSV
    (astropy's header) and FITS through astropy (pandas has no FITS reader)."""
    results = {fmt: runs["results"][fmt].output_path for fmt in FORMATS}
    frames = {
        "csv": pd.read_csv(results["csv"]),
        "ecsv": pd.read_csv(results["ecsv"], comment="#"),
        "fits": Table.read(results["fits"]).to_pandas(),
        "hdf5": pd.read_hdf(results["hdf5"]),
        "parquet": pd.read_parquet(results["parquet"]),
    }
    for frame in frames.values():
        _same_rows(frame, runs["reference"])


def test_ecsv_carries_units_descriptions_and_provenance(runs):
    result = runs["results"]["ecsv"]
    table = Table.read(result.output_path)
    assert str(table["ra"].unit) == "deg" and table["z"].description
    assert table.meta["product_id"] == result.product_id and table.meta["name"] == "as ecsv"
    assert table.meta["provenance"]["counts"]["rows"] == result.n_rows == len(table)


def test_fits_provenance_is_an_image_after_the_only_table(runs):
    from astropy.io import fits

    result = runs["results"]["fits"]
    with fits.open(result.output_path) as hdul:
        tables = [h.name for h in hdul if isinstance(h, fits.BinTableHDU)]
        assert tables == ["TRAINING_SET"] and hdul[-1].name == "PROVENANCE"
        provenance = json.loads(bytes(hdul["PROVENANCE"].data).decode())
    assert provenance["counts"]["rows"] == result.n_rows


def test_hdf5_rail_layout_read_by_tables_io_and_the_documented_pandas_route(runs, monkeypatch):
    """The RAIL layout (a group of 1-D datasets) is what tables_io reads; pandas and astropy
    take tables_io's dict of columns, as docs/outputs.md says."""
    import tables_io

    isolate(runs["home"], monkeypatch)
    config = runs["config"]
    result = tsm_core.run(
        {**config, "name": "rail route", "output": {**config["output"], "format": "hdf5", "layout": "rail"}}
    )
    data = tables_io.read(str(result.output_path))["photometry"]
    frame = pd.DataFrame(data)
    table = Table(data)
    want = runs["reference"].sort_values("id", kind="stable")
    for got in (frame, table.to_pandas()):
        got = got.assign(id=got["id"].map(lambda v: v.decode() if isinstance(v, bytes) else v))
        got = got.sort_values("id", kind="stable")
        assert got["id"].tolist() == want["id"].astype(str).tolist()
        np.testing.assert_allclose(got["redshift"], want["z"], rtol=1e-12)


def test_parquet_read_by_pandas_and_astropy(runs):
    path = runs["results"]["parquet"].output_path
    _same_rows(pd.read_parquet(path), runs["reference"])
    _same_rows(_no_warning_read(Table.read, path).to_pandas(), runs["reference"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_tsm_read_and_to_pandas_give_the_rows_of_every_format(runs, fmt, monkeypatch):
    isolate(runs["home"], monkeypatch)
    result = runs["results"][fmt]
    for frame in (tsm_core.read(result.product_id), tsm_core.read(result.output_path), result.to_pandas()):
        _same_rows(frame, runs["reference"])


def test_to_pandas_names_the_parts_of_a_run(runs):
    with pytest.raises(tsm_core.TSMError, match=r"^part 'training' is not a file of this run; choices: none"):
        runs["results"]["csv"].to_pandas("training")


def test_ecsv_rows_starting_with_a_hash_and_nulls_survive(tmp_path):
    """astropy leaves ``#1`` unquoted (read back as a comment): the writer quotes it."""
    import pyarrow as pa

    from tsm_core.config import OutputConfig
    from tsm_core.plugins.records import OutputMetadata
    from tsm_writers.ecsv import ECSVWriter

    table = pa.table({"id": ["#1", None, "3", "#a b"], "z_flag": pa.array([1, None, 3, 4], pa.int64())})
    path = tmp_path / "hash.ecsv"
    sink = ECSVWriter().open(path, table.schema, OutputMetadata("hash", "", 7, {}, {}), OutputConfig())
    sink.write(table)
    sink.close()
    assert path.read_text().splitlines()[-4:] == ['"#1",1', ",", "3,3", '"#a b",4']
    back = Table.read(path)
    assert back["id"].filled("").tolist() == ["#1", "", "3", "#a b"] and back["id"].mask.tolist() == [
        False,
        True,
        False,
        False,
    ]
    assert back["z_flag"].mask.tolist() == [False, True, False, False]
    frame = pd.read_csv(path, comment="#")
    assert frame["id"].fillna("").tolist() == ["#1", "", "3", "#a b"]


def test_hdf5_tables_of_astropy_and_of_a_training_set_read_as_redshift_catalogs(runs, tmp_path):
    """A compound-dataset table (what astropy writes, and the TSM's own HDF5 output) is a
    redshift catalog file too: its rows equal astropy's read of the same file."""
    from tsm_core.redshifts.readers import _read_hdf5, read_redshift_catalog

    output = runs["results"]["hdf5"].output_path
    read = _read_hdf5(output)  # the raw table: its ids repeat (two neighbours per redshift)
    want = Table.read(output).to_pandas()
    assert len(read) == len(want) > 100
    for name in ("z", "ra", "dec"):
        np.testing.assert_array_equal(read[name].to_numpy(), want[name].to_numpy())

    table = Table({"ra": [10.0, 10.5], "dec": [-5.0, -5.5], "z": [0.3, 0.7], "name": ["a", "bb"]})
    table.write(tmp_path / "astropy.h5", path="spec", serialize_meta=True)
    frame = read_redshift_catalog(tmp_path / "astropy.h5").frame
    assert frame["z"].tolist() == [0.3, 0.7]
    assert frame["ra"].tolist() == [10.0, 10.5]
