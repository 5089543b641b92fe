"""The messages a user acts on, verbatim: YAML errors, column mappings, object catalogs
that are not HATS catalogs, and the command line's options and usage errors."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from click.testing import CliRunner

import tsm_core
from tsm_core.cli.main import get_cli
from tsm_core.errors import ConfigError


def _message(exc_info: pytest.ExceptionInfo) -> str:
    """The error as the command line shows it: the config key, then the message."""
    text = str(exc_info.value)
    key = exc_info.value.key
    return text if not key or text.startswith(f"{key}: ") else f"{key}: {text}"


def test_yaml_syntax_error_gives_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nobject_catalog:\n  release: dp1\n  bad: [1, 2\noutput:\n  format: csv\n")
    with pytest.raises(ConfigError) as caught:
        tsm_core.load_config(path)
    assert _message(caught) == (
        f"{path} is not valid YAML: line 5, column 7: did not find expected ',' or ']' "
        "(while parsing a flow sequence at line 4, column 8)"
    )


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("name: x\noutput:\n  format: csv\nname: y\n", "name", (1, 4)),
        ("name: x\noutput:\n  format: csv\n  directory: a\n  format: fits\n", "output.format", (3, 5)),
        ("a: &base {k: 1}\nb:\n  <<: *base\n  k: 2\n", None, None),  # a merge key overridden: allowed
    ],
)
def test_duplicate_yaml_keys_are_refused_naming_both_lines(tmp_path, text, key, lines):
    from tsm_core.config.files import read_yaml

    path = tmp_path / "dup.yaml"
    path.write_text(text)
    if key is None:
        assert read_yaml(path)["b"] == {"k": 2}
        return
    with pytest.raises(ConfigError) as caught:
        read_yaml(path)
    assert _message(caught) == f"{path}: key {key!r} is given twice, on lines {lines[0]} and {lines[1]}; keep one"


def test_two_canonical_names_on_one_column_says_so(base_config, scene):
    config = base_config | {"redshift_catalog": {"path": str(scene["redshift_path"]), "columns": {"survey": "id"}}}
    with pytest.raises(tsm_core.TSMError) as caught:
        tsm_core.run(config)
    assert _message(caught) == (
        f"redshift_catalog.columns.survey: {scene['redshift_path']}: column 'id' is mapped to both 'id' and "
        "'survey'; map each canonical name to a column of its own"
    )


def test_a_plain_parquet_file_as_object_catalog_hints_tsm_import(base_config, tmp_path):
    plain = tmp_path / "objects.parquet"
    pd.DataFrame({"objectId": [1], "coord_ra": [0.0], "coord_dec": [0.0]}).to_parquet(plain)
    config = base_config | {"object_catalog": {"release": "dp1", "path": str(plain)}}
    with pytest.raises(tsm_core.TSMError) as caught:
        tsm_core.run(config)
    assert _message(caught) == (
        f"object_catalog.path: the object catalog {plain} is a plain Parquet file, not a HATS catalog; make a "
        f"HATS catalog of your own table with `tsm import {plain} --release dp1 --out DIR`"
    )


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_a_wrong_environment_variable_is_named(base_config, tmp_path, monkeypatch, kind):
    wrong = tmp_path / "dp1"
    what = "does not exist"
    if kind == "folder":
        wrong.mkdir()
        what = "is a folder without HATS properties, not a HATS catalog"
    monkeypatch.setenv("TSM_DP1_PATH", str(wrong))
    config = base_config | {"object_catalog": {"release": "dp1"}}
    with pytest.raises(tsm_core.TSMError) as caught:
        tsm_core.run(config)
    assert _message(caught) == (
        f"object_catalog.path: the object catalog {wrong} {what} (the path came from $TSM_DP1_PATH); make a "
        f"HATS catalog of your own table with `tsm import {wrong} --release dp1 --out DIR`"
    )


def _tsm(*args: str):
    return CliRunner().invoke(get_cli(), list(args), prog_name="tsm")


def test_global_options_after_the_sub_command():
    for args in (["formats", "-v"], ["formats", "--quiet"], ["-q", "formats", "--debug"]):
        result = _tsm(*args)
        assert result.exit_code == 0 and "parquet (.parquet)" in result.stdout, (args, result.output)
    from tsm_core.cli.main import hoist_global_flags

    assert hoist_global_flags(["run", "a.yaml", "-v", "--", "-q"]) == ["-v", "run", "a.yaml", "--", "-q"]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["run"], "Error: Missing argument 'CONFIG'. Usage: tsm run [OPTIONS] CONFIG (`tsm run --help` for more)"),
        (["nosuch"], "Error: No such command 'nosuch'. Usage: tsm [OPTIONS] COMMAND [ARGS]... (`tsm --help` for more)"),
        (
            ["formats", "--bogus"],
            "Error: No such option '--bogus'. Usage: tsm formats [OPTIONS] (`tsm formats --help` for more)",
        ),
    ],
)
def test_usage_errors_take_one_line(args, line):
    result = _tsm(*args)
    assert result.exit_code == 2 and result.stderr == line + "\n"
    assert re.fullmatch(r"[^\n]*\n", result.stderr)


def test_progress_by_default_only_on_a_terminal(monkeypatch):
    """Without --progress/--no-progress, bars are shown when stderr is a terminal (a real
    pseudo-terminal here) and not when it is a pipe; an explicit choice wins either way."""
    import os

    from tsm_core.cli.progress import wants_progress

    leader, follower = os.openpty()
    read_end, write_end = os.pipe()
    with open(follower, "w") as terminal, open(write_end, "w") as pipe:
        monkeypatch.setattr("sys.stderr", terminal)
        assert wants_progress(None) is True and wants_progress(False) is False
        monkeypatch.setattr("sys.stderr", pipe)
        assert wants_progress(None) is False and wants_progress(True) is True
    os.close(leader)
    os.close(read_end)


def test_progress_bars_on_request_and_never_off_a_terminal(scene, tmp_path):
    """``--progress`` shows LSDB's tqdm bars on stderr; without it (not a terminal here) none."""
    args = ["redshift", "register", "{}", str(scene["redshift_path"])]
    shown = _tsm(*[a.format("shown") for a in args], "--progress")
    quiet = _tsm(*[a.format("quiet") for a in args])
    assert shown.exit_code == quiet.exit_code == 0, shown.output + quiet.output
    assert re.search(r"Writing Catalog: 100%\|", shown.stderr) and "%|" not in quiet.stderr
    sample = _tsm(
        "sample", "dp1", "--objects", "2000", "--redshifts", "100", "--out", str(tmp_path / "s"), "--progress"
    )
    assert sample.exit_code == 0 and re.search(r"Writing Catalog: 100%\|", sample.stderr), sample.output
