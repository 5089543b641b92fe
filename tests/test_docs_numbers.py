"""Numbers the documentation prints about the real reference samples, computed here from
the samples with pandas (DESI's own columns, not the convention's code)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_desi_flag_counts_in_the_docs(reference):
    desi = pd.read_parquet(reference / "desi_dr1_dp1_fields_sample.parquet")
    good = desi["ZWARN"] == 0
    star = desi["SPECTYPE"].str.strip().str.upper() == "STAR"
    primary = desi["ZCAT_PRIMARY"].astype(bool)
    flag4 = good & primary & (desi["ZERR"] < 0.001) & ~star
    flag3 = good & primary & (desi["ZERR"] >= 0.001) & ~star
    expected = {
        "rows": len(desi),
        "good": int(good.sum()),
        "flag4": int(flag4.sum()),
        "flag3": int(flag3.sum()),
        "good_stars": int((good & star).sum()),
        "bad": int((~good).sum()),
        "flag1": int((~good & primary & ~star).sum()),
        "flag0": int((~good & ~primary & ~star).sum()),
        "bad_stars": int((~good & star).sum()),
        "at_least_3": int((flag4 | flag3 | star).sum()),
        "galaxies": int((flag4 | flag3).sum()),
    }
    text = " ".join((DOCS / "redshift-catalogs.md").read_text().split())
    pattern = (
        r"On the (\d+) rows of the DESI sample: the (\d+) with `ZWARN == 0` get `z_flag` 4 \((\d+)\), 3 \((\d+)\) "
        r"or 6 \((\d+) stars\); the (\d+) with `ZWARN != 0` get 1 \((\d+)\), 0 \((\d+), not primary\) or 6 "
        r"\((\d+) stars\)\. `z_flag >= 3` alone keeps (\d+) rows, stars included .*? it keeps the (\d+) good"
    )
    found = re.search(pattern, text)
    assert found, "the DESI paragraph of docs/redshift-catalogs.md changed: update this test"
    assert dict(zip(expected, map(int, found.groups()))) == expected


def test_crc_registration_in_the_docs(reference, tmp_path):
    """The `tsm redshift register` output the docs show for the CRC sample, from a real
    registration; the dropped rows counted with numpy."""
    import numpy as np
    from click.testing import CliRunner

    from tsm_core.cli.main import get_cli

    crc = pd.read_parquet(reference / "combined_redshift_sample.parquet")
    non_finite = int((~np.isfinite(crc["z"])).sum())
    negative = int((crc["z"] < -0.01).sum())
    out = CliRunner().invoke(
        get_cli(), ["redshift", "register", "crc", str(reference / "combined_redshift_sample.parquet")]
    )
    assert out.exit_code == 0, out.output
    printed = re.search(r"(\d+) rows from .*?, convention crc", out.output)
    assert printed and int(printed.group(1)) == len(crc) - non_finite - negative
    text = (DOCS / "redshift-catalogs.md").read_text()
    shown = re.search(
        r"registered 'crc' \(id 2\): (\d+) rows .*\n#   dropped (\d+) rows with non-finite z\n#   dropped (\d+) rows with z < -0.01",
        text,
    )
    assert shown, "the CRC registration block of docs/redshift-catalogs.md changed: update this test"
    assert tuple(map(int, shown.groups())) == (len(crc) - non_finite - negative, non_finite, negative)
    assert f"dropped {non_finite} rows with non-finite z" in out.output
    assert f"dropped {negative} rows with z < -0.01" in out.output
