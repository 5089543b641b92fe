"""Odd inputs (issue #29, item 4): each is refused with one line naming its key or column,
through the ``tsm`` command as a user types it, or (radians) converted when the user says so."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

import tsm_core.config
from tsm_core import load_config, run
from tsm_core.cli.main import get_cli
from tsm_core.errors import TSMError
from tsm_core.redshifts.readers import read_redshift_catalog


def _refused(config: dict, tmp_path, *overrides: str) -> str:
    """The one line ``tsm run`` prints when it refuses ``config`` (asserted: non-zero exit,
    one line, no traceback, nothing written)."""
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    out = CliRunner().invoke(get_cli(), ["run", str(path), *[a for o in overrides for a in ("--set", o)]])
    assert out.exit_code != 0, out.output
    lines = [line for line in out.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error")]
    assert errors == lines[-1:], out.output  # one line, the last ("tsm: ..." progress lines may come before)
    assert "Traceback" not in out.output and "RuntimeError" not in out.output and "ValueError" not in out.output
    return errors[0]


def _sky(n: int = 30, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"ra": rng.uniform(40, 50, n), "dec": rng.uniform(-35, -25, n), "z": rng.uniform(0.05, 2.0, n).round(4)}
    )


# --- exceptions that were not TSMError ---------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"), [("output.directory", "out\0put"), ("redshift_catalog.path", "red\0shifts.parquet")]
)
def test_a_nul_byte_in_a_path_is_refused_naming_its_key(base_config, tmp_path, key, value):
    section, name = key.split(".")
    base_config[section][name] = str(tmp_path / value)
    line = _refused(base_config, tmp_path)
    assert f"{key}: " in line and "NUL byte" in line
    assert not (tmp_path / "out").exists()


def test_a_home_of_an_unknown_user_is_refused(base_config, tmp_path):
    line = _refused(base_config, tmp_path, "output.directory=~nonexistentuser/x")
    assert line == (
        "Error: output.directory: '~nonexistentuser/x': no home directory is known for nonexistentuser "
        "(write the path out in full)"
    )


def test_a_nul_byte_in_a_config_built_in_python_is_refused(base_config, tmp_path):
    from tsm_core.config import RunConfig

    with pytest.raises(ValueError, match=r"output\.directory\s.*NUL byte"):
        RunConfig.model_validate({**base_config, "output": {"directory": "a\0b"}})


def test_unsigned_ids_beyond_the_signed_range_are_refused_naming_the_column(tmp_path):
    frame = _sky()
    ids = np.arange(len(frame), dtype=np.uint64) + np.uint64(2**63 - 5)  # rows 0-4 fit, row 5 does not
    table = pa.table({"specid": pa.array(ids, pa.uint64()), **{c: frame[c].to_numpy() for c in frame}})
    pq.write_table(table, tmp_path / "u64.parquet")
    with pytest.raises(TSMError) as err:
        read_redshift_catalog(tmp_path / "u64.parquet", {"id": "specid"})
    assert err.value.key == "redshift_catalog.columns.id"
    assert f"column 'specid' (id) holds {2**63} (row 5), beyond 2^63 - 1" in str(err.value)
    # ids that fit are read as they are
    small = table.set_column(0, "specid", pa.array(np.arange(len(frame), dtype=np.uint64)))
    pq.write_table(small, tmp_path / "small.parquet")
    read = read_redshift_catalog(tmp_path / "small.parquet", {"id": "specid"})
    assert read.frame["id"].tolist() == list(range(len(frame)))


# --- accepted without a word --------------------------------------------------------------------


def test_coordinates_in_radians_are_refused_unless_units_are_given(scene, base_config, tmp_path):
    degrees = scene["redshifts"]
    radians = degrees.assign(ra=np.radians(degrees["ra"]), dec=np.radians(degrees["dec"]))
    radians.loc[radians["ra"] > np.pi, "ra"] -= 2 * np.pi  # ra in [-pi, pi] too is radians
    radians.to_parquet(tmp_path / "rad.parquet", index=False)
    base_config["redshift_catalog"]["path"] = str(tmp_path / "rad.parquet")
    line = _refused(base_config, tmp_path)
    assert "look like radians" in line and "redshift_catalog.units: rad" in line

    base_config["redshift_catalog"]["units"] = "rad"
    converted = pd.read_parquet(run(base_config).output_path).sort_values("id", ignore_index=True)
    base_config["redshift_catalog"] = {"path": str(scene["redshift_path"])}
    base_config["output"]["directory"] = str(tmp_path / "deg")
    expected = pd.read_parquet(run(base_config).output_path).sort_values("id", ignore_index=True)
    assert len(expected) > 100
    assert converted["id"].tolist() == expected["id"].tolist()
    np.testing.assert_allclose(converted["ra"], expected["ra"], atol=1e-9)
    np.testing.assert_allclose(converted["dec"], expected["dec"], atol=1e-9)


def test_units_deg_accepts_a_small_field_at_the_origin(tmp_path):
    field = _sky().assign(ra=np.linspace(0.5, 3, 30), dec=np.linspace(-1, 1, 30))  # degrees that fit radians
    field.to_csv(tmp_path / "origin.csv", index=False)
    with pytest.raises(TSMError, match="look like radians") as err:
        read_redshift_catalog(tmp_path / "origin.csv")
    assert err.value.key == "redshift_catalog.units"
    read = read_redshift_catalog(tmp_path / "origin.csv", units="deg")
    assert read.frame["ra"].tolist() == field["ra"].tolist()
    field.head(10).to_csv(tmp_path / "few.csv", index=False)  # too few rows to tell
    assert len(read_redshift_catalog(tmp_path / "few.csv").frame) == 10


def test_an_hdf5_file_of_several_tables_needs_one_named(tmp_path):
    spec, phot = _sky(seed=1), _sky(seed=2)
    with h5py.File(tmp_path / "groups.h5", "w") as fh:
        for name, frame in (("spec", spec), ("phot", phot)):
            for col in frame:
                fh[f"{name}/{col}"] = frame[col].to_numpy()
    with pytest.raises(TSMError) as err:
        read_redshift_catalog(tmp_path / "groups.h5")
    assert err.value.key == "redshift_catalog.table"
    assert "holds 2 tables (/phot, /spec); choose one with redshift_catalog.table: NAME" in str(err.value)
    chosen = read_redshift_catalog(tmp_path / "groups.h5", table="phot")
    np.testing.assert_array_equal(chosen.frame["z"], phot["z"])
    with pytest.raises(TSMError, match=r"no table 'other' \(redshift_catalog.table\); its tables: /phot, /spec"):
        read_redshift_catalog(tmp_path / "groups.h5", table="other")

    spec.to_hdf(tmp_path / "store.h5", key="a")  # pandas HDFStore tables
    phot.to_hdf(tmp_path / "store.h5", key="b", format="table")
    with pytest.raises(TSMError, match=r"holds 2 tables \(/a, /b\)"):
        read_redshift_catalog(tmp_path / "store.h5")
    np.testing.assert_array_equal(read_redshift_catalog(tmp_path / "store.h5", table="/b").frame["z"], phot["z"])


def test_table_is_refused_for_a_file_without_tables(base_config, tmp_path):
    line = _refused(base_config, tmp_path, "redshift_catalog.table=spec")
    assert "only an HDF5 file has tables to choose from" in line


def test_a_csv_naming_a_column_twice_is_refused(base_config, tmp_path):
    (tmp_path / "twice.csv").write_text("ra,dec,z,z\n45.0,-30.0,0.1,0.2\n45.1,-30.1,0.3,0.4\n")
    base_config["redshift_catalog"]["path"] = str(tmp_path / "twice.csv")
    line = _refused(base_config, tmp_path)
    assert line.endswith("twice.csv: column name(s) 'z' occur more than once in the header")


def test_a_control_character_in_a_product_name_is_refused(base_config, tmp_path):
    base_config["name"] = "a\0b"
    assert _refused(base_config, tmp_path) == (
        "Error: name: 'a\\x00b' holds the control character '\\x00'; a name is printable text"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lots", "compute.memory_limit: 'lots' is not a size; give bytes per worker such as 4GB, 512MiB, or auto"),
        ("-1GB", "compute.memory_limit: '-1GB' is not a positive size"),
        ("1kB", "compute.memory_limit: '1kB' is below the smallest worker size, 64 MiB"),
    ],
)
def test_memory_limits_are_sizes(base_config, tmp_path, value, message):
    assert message in _refused(base_config, tmp_path, f"compute.memory_limit={value}")


def test_good_memory_limits_are_kept(base_config):
    for value in ("4GB", "512MiB", "auto"):
        assert load_config({**base_config, "compute": {"memory_limit": value}}).compute.memory_limit == value


def test_workers_are_bounded_by_the_machine_unless_on_a_cluster(base_config, tmp_path):
    cpus = os.cpu_count() or 1
    line = _refused(base_config, tmp_path, "compute.n_workers=1000000", "compute.scheduler=processes")
    assert (
        f"compute.n_workers: 1000000 is more than 4 per CPU of this machine ({cpus} CPUs): at most {4 * cpus}" in line
    )
    assert load_config({**base_config, "compute": {"n_workers": 4 * cpus}}).compute.n_workers == 4 * cpus
    on_cluster = load_config({**base_config, "compute": {"scheduler": "tcp://127.0.0.1:8786", "n_workers": 1000}})
    assert on_cluster.compute.n_workers == 1000


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("representativeness.k=1000000000", "representativeness.k: 1,000,000,000 neighbours; at most 1,000"),
        (
            "representativeness.som_shape=[100000, 100000]",
            "representativeness.som_shape: [100000, 100000] has 10,000,000,000 cells; at most 2,500",
        ),
        ("object_catalog.extinction_coefficients={i: .nan}", "object_catalog.extinction_coefficients: i: nan is not"),
        ("object_catalog.extinction_coefficients={i: -1.0}", "object_catalog.extinction_coefficients: i: -1.0 is neg"),
        ("output.mag_limits={i: .inf}", "output.mag_limits: i: inf is not a finite number"),
    ],
)
def test_science_options_are_bounded(base_config, tmp_path, override, message):
    assert message in _refused(base_config, tmp_path, override)


def test_registering_a_radians_file_needs_units(scene, tmp_path):
    """`tsm redshift register` refuses a file that looks like radians, and registers it in
    degrees with --units rad (positions against numpy's conversion of the file)."""
    from click.testing import CliRunner

    from tsm_core.cli.main import get_cli
    from tsm_core.products.registry import Registry

    degrees = scene["redshifts"]
    radians = degrees.assign(ra=np.radians(degrees["ra"]), dec=np.radians(degrees["dec"]))
    radians.to_parquet(tmp_path / "rad.parquet", index=False)
    refused = CliRunner().invoke(get_cli(), ["redshift", "register", "rad", str(tmp_path / "rad.parquet")])
    assert refused.exit_code == 1 and "look like radians" in refused.output and "--units rad" in refused.output
    done = CliRunner().invoke(
        get_cli(), ["redshift", "register", "rad", str(tmp_path / "rad.parquet"), "--units", "rad"]
    )
    assert done.exit_code == 0, done.output
    import lsdb

    record = Registry.at_home(tsm_core.config.tsm_home()).redshift_catalog("rad")
    stored = lsdb.open_catalog(record.path).compute().sort_values("id", ignore_index=True)
    expected = degrees.sort_values("id", ignore_index=True)
    np.testing.assert_allclose(stored["ra"], np.degrees(np.radians(expected["ra"])) % 360.0, atol=1e-9)
    np.testing.assert_allclose(stored["dec"], expected["dec"], atol=1e-9)
