"""The README's quick start, run as a user would: each command of its shell block, as written,
in a fresh ``$TSM_HOME`` and an empty folder, with ``tsm`` and ``python`` on the PATH.

What the block promises is checked against the files it leaves (read back with pandas), not
against the tool's own summary.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from helpers import brute_force_match

ROOT = Path(__file__).resolve().parents[1]


def printed_run_output() -> list[str]:
    """The lines that docs/getting-started.md says the quick start's ``tsm run`` prints."""
    page = (ROOT / "docs" / "getting-started.md").read_text()
    section = page[page.index("## What `tsm run` prints") :]
    block = re.search(r"^```text\n(.*?)^```", section, re.M | re.S)
    assert block is not None
    return block.group(1).splitlines()


def quickstart_commands(readme: str) -> list[str]:
    """The commands of the first ``sh`` block under the "Quick start" heading; a heredoc stays
    with its command, comments and blank lines are dropped."""
    section = readme[readme.index("## Quick start") :]
    block = re.search(r"^```sh\n(.*?)^```", section, re.M | re.S)
    assert block is not None, "no sh block under the Quick start heading"
    commands: list[str] = []
    lines = iter(block.group(1).splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        heredoc = re.search(r"<<'?(\w+)'?", line)
        if heredoc:
            body = []
            for more in lines:
                body.append(more)
                if more == heredoc.group(1):
                    break
            line = "\n".join([line, *body])
        commands.append(line)
    return commands


def _shims(folder: Path) -> Path:
    """``tsm`` and ``python`` of this test's interpreter (and its PYTHONPATH), as an activated
    environment puts them on the PATH."""
    folder.mkdir()
    for name, args in (("tsm", "-m tsm_core"), ("python", "")):
        shim = folder / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {args} "$@"\n')
        shim.chmod(0o755)
    return folder


def test_quickstart_block_is_parsed() -> None:
    commands = quickstart_commands((ROOT / "README.md").read_text())
    assert commands[0] == "tsm catalogs                      # the installed releases and what backs each"
    assert any(c.startswith("cat > my_set.yaml <<'EOF'\nname: my first set") and c.endswith("\nEOF") for c in commands)
    assert all(c.split()[0] in {"tsm", "cat", "python"} for c in commands)


@pytest.mark.slow
def test_readme_quickstart_runs_in_a_fresh_home(tsm_home: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PATH": f"{_shims(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}"}
    assert env["TSM_HOME"] == str(tsm_home) and not any(tsm_home.glob("*registry*"))
    for command in quickstart_commands((ROOT / "README.md").read_text()):
        done = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        if command.startswith("tsm run"):
            printed = done.stdout.replace(str(work), "/path/to/folder").splitlines()
            assert printed[: len(printed_run_output())] == printed_run_output()
        if command.startswith("python"):
            assert "count" in done.stdout and "i_cModelMag" in done.stdout
    # what the block's comments promise
    product = work / "out" / "my_first_set_1.csv"
    assert product.is_file() and (work / "out" / "my_first_set_1.report.html").is_file()
    rows = pd.read_csv(product, comment="#")
    redshifts = pd.read_parquet(work / "sample" / "redshifts.parquet")
    assert 0 < len(rows) <= (redshifts["z_flag"] >= 3).sum()
    assert (rows["z_flag"] >= 3).all()
    assert rows["id"].is_unique and rows["objectId"].is_unique  # unique_galaxies: closest
    # the funnel the docs print, counted here with pandas and astropy
    funnel = " ".join(" ".join(printed_run_output()[2:4]).split())
    numbers = [int(n) for n in re.findall(r"(?:^|\| )-?(\d+) ", funnel.split("funnel: ")[1])]
    good = redshifts[redshifts["z_flag"] >= 3]
    objects = pq.read_table(work / "sample" / "objects" / "object_lc" / "dataset").to_pandas()
    matched = brute_force_match(good, objects, radius_arcsec=1.0, n_neighbors=1)
    assert numbers[:3] == [len(redshifts), len(redshifts) - len(good), len(good) - len(matched)]
    assert len(numbers) == 5 and numbers[-1] == len(rows) == len(matched) - numbers[3]
