"""Every format read back with its standard reader and compared with the source table."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tsm_core
from conftest import isolate, scene_config
from helpers import DP1_BANDS, writers_plugin


@pytest.fixture(scope="module")
def nullable_redshifts(scene, tmp_path_factory):
    """The scene's redshifts with a nullable integer z_flag and missing z_err."""
    z = scene["redshifts"].copy()
    z["z_flag"] = z["z_flag"].astype("Int64")
    z.loc[z.index[::7], "z_flag"] = pd.NA
    z.loc[z.index[::11], "z_err"] = np.nan
    z.loc[0, "survey"] = "DESI-ÜÉ"  # non-ASCII survives every format
    path = tmp_path_factory.mktemp("nullable") / "z.parquet"
    z.to_parquet(path, index=False)
    return path


def _config(base_config, redshift_path, fmt, **output):
    cfg = dict(base_config)
    cfg["redshift_catalog"] = {"path": str(redshift_path)}
    cfg["output"] = {**base_config["output"], "format": fmt, **output}
    cfg["crossmatch"] = {"radius_arcsec": 3.0, "n_neighbors": 2}
    cfg["split"] = {"train_fraction": 0.7, "seed": 3}
    return cfg


@pytest.fixture(scope="module")
def outputs(scene, nullable_redshifts, tmp_path_factory):
    """The same training set in the four formats (and the Parquet one as the reference),
    made once in a home of their own for the module's tests, which only read them."""
    base = tmp_path_factory.mktemp("formats")
    with pytest.MonkeyPatch.context() as mp:
        isolate(base / "tsm-home", mp)
        config = scene_config(scene, base / "out")
        paths = {
            fmt: tsm_core.run(_config(config, nullable_redshifts, fmt)).output_path
            for fmt in ("parquet", "csv", "fits", "hdf5")
        }
    return paths


def test_all_formats_agree(outputs):
    ref = pq.read_table(outputs["parquet"]).to_pandas()
    assert len(ref) > 100 and ref["z_flag"].isna().any() and ref["is_training"].any() and not ref["is_training"].all()

    csv = pd.read_csv(outputs["csv"], comment="#", dtype={"z_flag": "Int64", "id": str, "survey": str})
    import fitsio
    from astropy.table import Table

    fits_astropy = Table.read(outputs["fits"], hdu="TRAINING_SET")
    fits_raw = fitsio.read(outputs["fits"], ext="TRAINING_SET")
    with h5py.File(outputs["hdf5"]) as fh:
        group = fh["training_set"]
        rows = group["table"][()]
        hdf = {name: rows[name] for name in rows.dtype.names}
        assert list(group.attrs["columns"]) == list(hdf)
        zflag_null = json.loads(group.attrs["null_values"])["z_flag"]

    assert list(csv.columns) == list(ref.columns) == list(fits_astropy.colnames) == list(hdf)
    for name in ref.columns:
        want = ref[name]
        if name == "z_flag":
            valid = want.notna().to_numpy()
            exact = want[valid].astype(np.int64).to_numpy()
            assert (csv[name][valid].astype(np.int64).to_numpy() == exact).all() and csv[name][~valid].isna().all()
            column = fits_astropy[name]
            assert column.dtype.newbyteorder("=") == np.int64 and (column.mask == ~valid).all()
            assert (np.asarray(column)[valid] == exact).all()
            assert hdf[name].dtype == np.int64 and (hdf[name][~valid] == zflag_null).all()
            assert (hdf[name][valid] == exact).all()
            continue
        if want.dtype.kind in "OUT" or pd.api.types.is_string_dtype(want):
            expected = want.astype(str).to_numpy()
            assert (csv[name].astype(str).to_numpy() == expected).all(), name
            escaped = [v.encode("ascii", "backslashreplace").decode() for v in expected]
            assert list(np.char.rstrip(np.asarray(fits_astropy[name]).astype(str))) == escaped, name
            assert [v.decode() for v in hdf[name]] == list(expected), name
            continue
        expected = want.to_numpy()
        for got, label in (
            (csv[name].to_numpy(), "csv"),
            (np.asarray(fits_raw[name]), "fitsio"),
            (np.asarray(fits_astropy[name]), "astropy"),
            (hdf[name], "hdf5"),
        ):
            # FITS is big-endian on disk: same type, other byte order
            assert got.dtype.newbyteorder("=") == expected.dtype, (name, label, got.dtype, expected.dtype)
            np.testing.assert_array_equal(got, expected, err_msg=f"{name} in {label}")
    # int64 ids exactly, beyond float precision
    assert ref["objectId"].min() > 2**53


def test_every_writer_reads_back_the_rows_written(outputs):
    """``Writer.read`` of each format against the Parquet file read by pyarrow, and against
    each format's own standard reader (pandas, astropy, h5py); ``tsm_core.read`` by path
    finds the writer from the extension."""
    from astropy.table import Table

    from tsm_core import plugins

    ref = pq.read_table(outputs["parquet"]).to_pandas()
    standard = {
        "parquet": ref,
        "csv": pd.read_csv(outputs["csv"], comment="#"),
        "fits": Table.read(outputs["fits"], hdu="TRAINING_SET").to_pandas(),
    }
    standard["hdf5"] = pd.read_hdf(outputs["hdf5"])
    for fmt, path in outputs.items():
        got = plugins.writer(fmt).read(path)
        assert list(got.columns) == list(ref.columns) == list(standard[fmt].columns), fmt
        assert len(got) == len(ref) == len(standard[fmt]), fmt
        assert plugins.writer(fmt).columns(path) == list(ref.columns), fmt
        pd.testing.assert_frame_equal(tsm_core.read(path), got)
        for name in ref.columns:
            want, have = ref[name], got[name]
            if name == "z_flag":
                assert (have.isna() == want.isna()).all(), fmt
                assert (have[want.notna()].astype(np.int64) == want[want.notna()].astype(np.int64)).all(), fmt
            elif pd.api.types.is_string_dtype(want) or want.dtype == object:
                assert have.astype(str).tolist() == want.astype(str).tolist(), (fmt, name)  # FITS escapes undone
            else:
                np.testing.assert_array_equal(have.to_numpy(want.dtype), want.to_numpy(), err_msg=f"{name} in {fmt}")
    assert "DESI-ÜÉ" in set(tsm_core.read(outputs["fits"])["survey"])


def test_a_csv_value_with_a_hash_is_data(tmp_path):
    """The CSV is plain (no ``#`` comments): a ``#`` in a value is data for ``CSVWriter.read``."""
    from tsm_core.config import OutputConfig
    from tsm_core.plugins.records import OutputMetadata
    from tsm_writers.csv import CSVWriter

    table = pa.table(
        {"id": ["#1", "a#2", "3"], "z": [0.1, float("nan"), 0.3], "z_flag": pa.array([1, None, 3], pa.int64())}
    )
    metadata = OutputMetadata("hash", "", 7, {}, {"counts": {"rows": 3}})
    path = tmp_path / "hash.csv"
    sink = CSVWriter().open(path, table.schema, metadata, OutputConfig())
    sink.write(table)
    sink.close()
    assert path.read_text().splitlines() == ['"id","z","z_flag"', '"#1",0.1,1', '"a#2",nan,', '"3",0.3,3']
    got = CSVWriter().read(path)
    assert got["id"].tolist() == ["#1", "a#2", "3"] and str(got["z_flag"].dtype) == "Int64"
    assert got["z_flag"].isna().tolist() == [False, True, False] and np.isnan(
        got["z"].to_numpy(float, na_value=np.nan)[1]
    )


def test_a_writer_without_read_says_so(tmp_path):
    from votable_plugin import VOTableWriter

    class WriteOnly(VOTableWriter):
        name = "votable-write-only"
        read = tsm_core.Writer.read
        columns = tsm_core.Writer.columns

    with pytest.raises(
        tsm_core.TSMError,
        match=r"the writer 'votable-write-only' of plugin test_writers cannot read "
        r"its files back; read .*x\.xml with the format's own tools",
    ):
        WriteOnly().columns(tmp_path / "x.xml")


def test_self_describing(outputs):
    from astropy.table import Table

    schema = pq.read_schema(outputs["parquet"])
    assert schema.field("i_cModelMag").metadata[b"unit"] == b"mag"
    assert schema.field("coord_ra").metadata[b"unit"] == b"deg"
    assert schema.field("_dist_arcsec").metadata[b"unit"] == b"arcsec"
    prov = json.loads(pq.read_metadata(outputs["parquet"]).metadata[b"tsm.provenance"])
    assert (
        prov["config"]["crossmatch"]["n_neighbors"] == 2 and "lsdb" in prov["versions"] and "hats" in prov["versions"]
    )
    assert prov["counts"]["rows"] == pq.read_metadata(outputs["parquet"]).num_rows

    lines = outputs["csv"].read_text().splitlines()  # plain CSV: units and provenance are in ecsv
    assert not any(line.startswith("#") for line in lines) and len(lines) == prov["counts"]["rows"] + 1

    from astropy.io import fits

    with fits.open(outputs["fits"]) as hdul:
        hdr = hdul["TRAINING_SET"].header
        idx = hdul["TRAINING_SET"].columns.names.index("i_cModelMag") + 1
        assert hdr[f"TUNIT{idx}"] == "mag" and "cModel" in hdr[f"TCOMM{idx}"]
        assert json.loads(bytes(hdul["PROVENANCE"].data).decode())["counts"]["rows"] == hdr["NROWS"]

    table = Table.read(outputs["hdf5"])
    assert str(table["i_cModelMag"].unit) == "mag" and "cModel" in table["i_cModelMag"].description
    assert table.meta["provenance"]["counts"]["rows"] == len(table)
    with h5py.File(outputs["hdf5"]) as fh:
        assert json.loads(fh["training_set"].attrs["provenance"])["name"] == "test set"


def test_rail_layout_read_by_tables_io(base_config, nullable_redshifts):
    import tables_io

    cfg = _config(base_config, nullable_redshifts, "hdf5", layout="rail", non_detection=99.0)
    result = tsm_core.run(cfg)
    # as RAIL does: read the file, then take its hdf5_groupname (default "photometry")
    data = tables_io.read(str(result.output_path))["photometry"]
    for band in DP1_BANDS:
        assert f"mag_{band}_lsst" in data and f"mag_err_{band}_lsst" in data
        assert not np.isnan(data[f"mag_{band}_lsst"]).any()
    ref = pq.read_table(tsm_core.run(_config(base_config, nullable_redshifts, "parquet")).output_path).to_pandas()
    mags = ref["g_cModelMag"].to_numpy()
    np.testing.assert_array_equal(data["mag_g_lsst"], np.where(np.isnan(mags), 99.0, mags))
    np.testing.assert_array_equal(data["redshift"], ref["z"].to_numpy())
    with h5py.File(result.output_path) as fh:
        assert fh["photometry"].attrs["non_detection"] == 99.0


def test_rail_layout_needs_magnitudes(base_config, nullable_redshifts):
    cfg = _config(base_config, nullable_redshifts, "hdf5", layout="rail")
    cfg["object_catalog"] = {**cfg["object_catalog"], "convert_to_magnitudes": False}
    with pytest.raises(tsm_core.TSMError, match="output.layout: the rail layout needs magnitudes"):
        tsm_core.run(cfg)


def test_empty_result_is_a_valid_file(base_config, tmp_path):
    far = pd.DataFrame({"ra": [180.0], "dec": [60.0], "z": [0.5]})
    path = tmp_path / "far.csv"
    far.to_csv(path, index=False)
    for fmt in ("parquet", "csv", "fits", "hdf5"):
        cfg = _config(base_config, path, fmt)
        cfg.pop("split")
        result = tsm_core.run(cfg)
        assert result.n_rows == 0 and result.output_path.exists()
    assert pq.read_table(tsm_core.run(_config(base_config, path, "parquet")).output_path).num_rows == 0


def test_third_party_writer_plugin(base_config, tmp_path, registered_plugin):
    """A VOTable writer registered as an external plugin is used by its format name."""
    from astropy.io.votable import parse_single_table

    from votable_plugin import VOTableWriter

    base_config["output"]["format"] = "votable"
    registered_plugin(writers_plugin(VOTableWriter()), "test-writer-votable")
    result = tsm_core.run(base_config)
    read = tsm_core.read(result.product_id)  # through the plugin's Writer.read
    table = parse_single_table(str(result.output_path)).to_table()
    ref = pq.read_table(
        tsm_core.run(dict(base_config, output={**base_config["output"], "format": "parquet"})).output_path
    )
    assert len(table) == ref.num_rows and str(table["i_cModelMag"].unit) == "mag"
    np.testing.assert_array_equal(np.asarray(table["objectId"]), ref.column("objectId").to_numpy())
    assert len(read) == len(table) and read["objectId"].tolist() == ref.column("objectId").to_pylist()


def test_hdf5_compressed_and_chunked_to_its_size(base_config, nullable_redshifts, tmp_path):
    """1,000 rows of a real training set: under 1 MB, chunks no longer than the data,
    gzip-compressed, read back equal with h5py."""
    from tsm_core.plugins.records import OutputMetadata
    from tsm_writers.hdf5 import HDF5Writer

    result = tsm_core.run(_config(base_config, nullable_redshifts, "parquet"))
    table = pq.read_table(result.output_path).replace_schema_metadata(None)
    table = pa.concat_tables([table] * (1000 // table.num_rows + 1)).slice(0, 1000)
    metadata = OutputMetadata("size", "", 1, {}, {})
    options = tsm_core.load_config(_config(base_config, nullable_redshifts, "hdf5")).output
    path = tmp_path / "thousand.hdf5"
    sink = HDF5Writer().open(path, table.schema, metadata, options)
    for batch in (table.slice(0, 300), table.slice(300, 700)):
        sink.write(batch)
    sink.close()
    assert path.stat().st_size < 1_000_000
    ref = table.to_pandas()
    with h5py.File(path) as fh:
        ds = fh["training_set/table"]
        assert ds.shape == (1000,) and ds.chunks[0] <= 1000 and ds.compression == "gzip"
        rows = ds[()]
    np.testing.assert_array_equal(rows["i_cModelMag"], ref["i_cModelMag"].to_numpy())
    np.testing.assert_array_equal(rows["objectId"], ref["objectId"].to_numpy())
    assert [v.decode() for v in rows["id"]] == ref["id"].astype(str).tolist()


def test_hdf5_string_of_unknown_width_sized_from_the_first_chunk(tmp_path, monkeypatch):
    """A string column whose longest value is not known gets the first chunk's width (at
    least 64 bytes); a longer value in a later chunk is refused, naming the column."""
    from tsm_core.config import OutputConfig
    from tsm_core.plugins.records import OutputMetadata
    from tsm_writers import hdf5

    monkeypatch.setattr(hdf5, "CHUNK_ROWS", 2)
    first = pa.table({"note": ["a" * 70, "b"]})
    path = tmp_path / "notes.hdf5"
    sink = hdf5.HDF5Writer().open(path, first.schema, OutputMetadata("n", "", 1, {}, {}), OutputConfig())
    sink.write(first)
    sink.write(pa.table({"note": ["Ü" * 35]}))  # 70 bytes: fits
    with pytest.raises(tsm_core.TSMError, match=r"^HDF5 column note: value 'c{71}' is longer than 70 bytes$"):
        sink.write(pa.table({"note": ["c" * 71]}))
    sink.close()
    assert pd.read_hdf(path)["note"].tolist() == ["a" * 70, "b", "Ü" * 35]


def test_hats_output_opened_by_lsdb(base_config, nullable_redshifts):
    """The hats format is a HATS catalog that lsdb.open_catalog reads: same rows as the
    Parquet file, provenance in its properties, a margin for further crossmatches."""
    import lsdb

    result = tsm_core.run(_config(base_config, nullable_redshifts, "hats"))
    assert result.output_path.is_dir() and result.output_path.suffix == ".hats"
    catalog = lsdb.open_catalog(result.output_path)
    assert catalog.margin is not None
    got = catalog.compute().reset_index(drop=True)
    ref = pq.read_table(tsm_core.run(_config(base_config, nullable_redshifts, "parquet")).output_path).to_pandas()
    key = ["id", "objectId"]
    got = got[list(ref.columns)].sort_values(key).reset_index(drop=True)
    ref = ref.sort_values(key).reset_index(drop=True)
    assert len(got) == len(ref) == result.n_rows
    for name in ("objectId", "i_cModelMag", "z", "ra", "is_training"):
        np.testing.assert_array_equal(got[name].to_numpy(), ref[name].to_numpy())
    assert got["id"].astype(str).tolist() == ref["id"].astype(str).tolist()
    extra = catalog.hc_structure.catalog_info.model_extra
    prov = json.loads(extra["tsm_provenance"])
    assert prov["product_id"] == result.product_id == int(extra["tsm_product_id"])
    assert prov["counts"]["rows"] == result.n_rows
    read = tsm_core.read(result.product_id)  # HATSWriter.read
    assert list(read.columns) == list(catalog.columns) and len(read) == result.n_rows
    pd.testing.assert_frame_equal(read, catalog.compute().reset_index(drop=True))
