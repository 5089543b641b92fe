"""Bad inputs fail with one clear error, before work, and leave nothing on disk."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import tsm_core
from helpers import write_objects, writers_plugin
from tsm_core.errors import BadRowsError, CatalogError, ConfigError, OutputError, UnknownChoiceError


def _no_output(config: dict) -> None:
    out = Path(config["output"]["directory"])
    leftovers = list(out.rglob("*")) if out.exists() else []
    assert leftovers == [], leftovers


def test_missing_z_column(scene, base_config, tmp_path):
    bad = tmp_path / "noz.csv"
    scene["redshifts"].drop(columns=["z"]).to_csv(bad, index=False)
    base_config["redshift_catalog"] = {"path": str(bad)}
    with pytest.raises(CatalogError, match=r"missing required column\(s\) z.*columns present: id, ra, dec"):
        tsm_core.run(base_config)
    _no_output(base_config)


def test_mapped_column_absent(scene, base_config, tmp_path):
    bad = tmp_path / "z.parquet"
    scene["redshifts"].to_parquet(bad)
    base_config["redshift_catalog"] = {"path": str(bad), "columns": {"z": "Z_BEST"}}
    with pytest.raises(CatalogError, match="'Z_BEST' \\(mapped to 'z'\\) not found"):
        tsm_core.run(base_config)


def test_nan_coordinates_name_the_rows(scene, base_config, tmp_path):
    z = scene["redshifts"].copy()
    z.loc[[3, 17], "dec"] = np.nan
    z.loc[25, "ra"] = 400.0
    bad = tmp_path / "nan.parquet"
    z.to_parquet(bad)
    base_config["redshift_catalog"] = {"path": str(bad), "bad_rows": "fail"}
    with pytest.raises(BadRowsError, match=r"2 row\(s\) with NaN or non-numeric ra/dec: rows 3, 17") as info:
        tsm_core.run(base_config)
    assert info.value.rows == [3, 17]
    _no_output(base_config)


def test_radius_larger_than_margin(base_config):
    base_config["crossmatch"]["radius_arcsec"] = 12.0
    with pytest.raises(ConfigError, match=r"crossmatch.radius_arcsec: 12.0 arcsec is larger than .* margin of 10.0"):
        tsm_core.run(base_config)
    _no_output(base_config)


def test_catalog_without_margin(scene, base_config, tmp_path):
    import lsdb

    path = tmp_path / "nomargin"
    lsdb.from_dataframe(
        scene["objects"].head(2000), ra_column="coord_ra", dec_column="coord_dec", margin_threshold=None
    ).write_catalog(path, progress_bar=False)
    base_config["object_catalog"]["path"] = str(path)
    with pytest.raises(CatalogError, match="has no margin cache"):
        tsm_core.run(base_config)


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("flux_type", "psfFlux", "flux type for dp1"),
        ("release", "dp9", "object catalog"),
        ("dereddening", "schlegel", "dereddener"),
    ],
)
def test_unknown_choices_list_installed_ones(base_config, key, value, kind):
    base_config["object_catalog"][key] = value
    with pytest.raises(
        UnknownChoiceError, match=f"unknown {kind} '{value}'( \\(did you mean .*\\))?; installed choices: "
    ) as info:
        tsm_core.run(base_config)
    assert info.value.choices
    _no_output(base_config)


def test_unknown_format(base_config):
    base_config["output"]["format"] = "xlsx"
    with pytest.raises(
        UnknownChoiceError,
        match="output.format: unknown output format 'xlsx'; installed choices: csv, ecsv, fits, hats, hdf5, parquet",
    ):
        tsm_core.run(base_config)


def _as_unprivileged(code: str) -> list[str]:
    """The command that runs ``code`` with the project's Python: as it is for a normal user;
    as root (CI, containers), as ``nobody`` through setpriv, since root may write anywhere."""
    import shutil
    import sys

    command = [sys.executable, "-c", code]
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv to drop to an unprivileged user")
    return [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]


def test_unwritable_directory_for_an_unprivileged_user(tmp_path):
    import subprocess
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="tsm-unwritable-", dir="/tmp"))
    try:
        shared.chmod(0o755)
        locked = shared / "locked"
        locked.mkdir()
        locked.chmod(0o555)  # readable and enterable by everyone, writable by no one but root
        probe = subprocess.run(_as_unprivileged("import tsm_core.products.output"), capture_output=True, text=True)
        if probe.returncode != 0:
            pytest.skip(f"the unprivileged user cannot run this checkout's Python: {probe.stderr.strip()[-200:]}")
        code = f"from tsm_core.products.output import check_directory; check_directory({str(locked)!r})"
        done = subprocess.run(_as_unprivileged(code), capture_output=True, text=True)
        assert done.returncode != 0 and f"output.directory {locked}: not writable" in done.stderr
    finally:
        _remove_tree(shared)


def _remove_tree(path: Path) -> None:
    import shutil

    for p in [path, *path.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)


def test_unwritable_directory(base_config, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    base_config["output"]["directory"] = str(blocker / "out")
    with pytest.raises(OutputError, match="output.directory .*cannot create it"):
        tsm_core.run(base_config)


def test_missing_flux_column_named(scene, base_config, tmp_path):
    path = tmp_path / "partial"
    write_objects(scene["objects"].drop(columns=["y_cModelFlux"]).head(3000), path)
    base_config["object_catalog"]["path"] = str(path)
    with pytest.raises(CatalogError, match="lacks column\\(s\\) y_cModelFlux; flux types it has: cModel, gaap1p0"):
        tsm_core.run(base_config)


def test_existing_output_not_overwritten(base_config):
    from tsm_core.products.claims import staged_file

    target = Path(base_config["output"]["directory"])
    target.mkdir(parents=True)
    existing = target / "keep.parquet"
    existing.write_text("precious")
    with pytest.raises(OutputError, match="exists already"), staged_file(existing):
        pass
    assert existing.read_text() == "precious"


def test_failure_midway_leaves_nothing(base_config, registered_plugin):
    """A writer that fails after writing some rows: no file, product marked failed."""
    from tsm_core.config import tsm_home
    from tsm_core.products.registry import Registry
    from tsm_writers.parquet import ParquetWriter

    class Exploding(ParquetWriter):
        name = "exploding"

        def open(self, path, schema, metadata, options):
            sink = super().open(path, schema, metadata, options)
            real_write = sink.write
            calls = []

            def write(table):
                calls.append(1)
                real_write(table)  # some rows written (a small run's rows come as one batch)
                if len(calls) == 1:
                    raise RuntimeError("disk on fire")

            sink.write = write
            return sink

    base_config["output"]["format"] = "exploding"
    registered_plugin(writers_plugin(Exploding()), "test-writer-exploding")
    with pytest.raises(RuntimeError, match="disk on fire"):
        tsm_core.run(base_config)
    _no_output(base_config)
    [product] = Registry.at_home(tsm_home()).products()
    assert product.status == "failed" and "disk on fire" in product.error and product.output_path is None


def test_config_errors_name_the_key(base_config):
    from tsm_core.config import load_config

    for change, key in [
        ({"crossmatch": {"radius_arcsec": 0}}, "crossmatch.radius_arcsec"),
        ({"crossmatch": {"n_neighbors": 0}}, "crossmatch.n_neighbors"),
        ({"name": "  "}, "name"),
        ({"colour": "blue"}, "colour"),
        ({"object_catalog": {"flux": "cModel"}}, "object_catalog.flux"),
        ({"unique_galaxies": "some"}, "unique_galaxies"),
    ]:
        with pytest.raises(ConfigError) as info:
            load_config(base_config | change)
        assert info.value.key == key, (change, str(info.value))
    with pytest.raises(ConfigError, match="object_catalog.flux: unknown key"):
        load_config(base_config | {"object_catalog": {"flux": "cModel"}})


def test_unknown_filter_column(base_config):
    base_config["filters"] = {"object": ["extendedness == 1"]}
    with pytest.raises(
        ConfigError,
        match=r"filters.object\[0\]: 'extendedness == 1' names unknown dp1 object column\(s\) 'extendedness'; did you mean refExtendedness",
    ):
        tsm_core.run(base_config)
    _no_output(base_config)


def test_object_catalog_problems_fail_before_registration(base_config):
    """Margin and column problems are found while planning: no product is recorded."""
    from tsm_core.config import tsm_home
    from tsm_core.products.registry import Registry

    base_config["crossmatch"]["radius_arcsec"] = 11.0
    with pytest.raises(ConfigError):
        tsm_core.run(base_config)
    assert Registry.at_home(tsm_home()).products() == []


# -- messages (issue 13) ---------------------------------------------------------------------
def test_unknown_keys_list_the_valid_ones(base_config):
    from tsm_core.config import load_config

    with pytest.raises(ConfigError) as info:
        load_config(base_config | {"crossmatch": {"radius": 2}})
    assert str(info.value) == (
        "crossmatch.radius: unknown key (did you mean 'radius_arcsec'?); valid keys: radius_arcsec, n_neighbors"
    )
    with pytest.raises(ConfigError, match=r"^colour: unknown key; valid keys: name, description, redshift_catalog, "):
        load_config(base_config | {"colour": "blue"})


def test_choices_ignore_case_or_suggest(base_config):
    from astropy.table import Table

    base_config["object_catalog"] |= {"release": "DP1", "flux_type": "cmodel"}
    base_config["output"]["format"] = "FITS"
    result = tsm_core.run(base_config)
    assert (
        result.output_path.suffix == ".fits"
        and len(Table.read(result.output_path, hdu="TRAINING_SET")) == result.n_rows
    )
    assert result.provenance["release"] == "dp1" and result.provenance["flux_type"] == "cModel"
    base_config["output"]["format"] = "parqet"
    with pytest.raises(
        UnknownChoiceError, match=r"unknown output format 'parqet' \(did you mean 'parquet'\?\); installed"
    ):
        tsm_core.run(base_config)


def test_numeric_names_and_paths_accepted(base_config, tmp_path):
    import yaml
    from click.testing import CliRunner

    from tsm_core.cli.main import get_cli

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(base_config))
    out = CliRunner().invoke(get_cli(), ["-q", "run", str(config), "--set", "name=123"])
    assert out.exit_code == 0, out.output
    assert (Path(base_config["output"]["directory"]) / "123_1.parquet").exists()
    base_config["redshift_catalog"]["path"] = Path(base_config["redshift_catalog"]["path"])
    base_config["output"]["directory"] = tmp_path / "as-path"
    assert tsm_core.run(base_config).output_path.parent == (tmp_path / "as-path").resolve()


def test_empty_bands_refused(base_config):
    base_config["object_catalog"]["bands"] = []
    with pytest.raises(ConfigError, match="object_catalog.bands: an empty list selects no band"):
        tsm_core.run(base_config)


def test_multi_line_errors_are_one_line(base_config, tmp_path, registered_plugin):
    """A library's multi-line error (a FITSIO dump): one line on stderr and in the registry."""
    import yaml
    from click.testing import CliRunner

    from tsm_core.cli.main import get_cli
    from tsm_writers.parquet import ParquetWriter

    class Dumping(ParquetWriter):
        name = "dumping"

        def open(self, path, schema, metadata, options):
            raise RuntimeError(
                "FITSIO status = 108: error reading from FITS file\n"
                "ffgtbb: error reading from FITS file\n" + "\n".join(f"  frame {i}" for i in range(6))
            )

    base_config["output"]["format"] = "dumping"
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(base_config))
    registered_plugin(writers_plugin(Dumping()), "test-writer-dumping")
    out = CliRunner().invoke(get_cli(), ["-q", "run", str(config)])
    assert out.exit_code == 1
    assert out.output.splitlines()[0] == "Error: RuntimeError: FITSIO status = 108: error reading from FITS file"
    listing = CliRunner().invoke(get_cli(), ["products", "list"]).output
    assert len(listing.splitlines()) == 1 and "failed" in listing, listing
