"""`tsm import`: the real DP1 sample turned into a collection in the published layout,
then matched against jittered positions and checked against astropy."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import tsm_core
from helpers import brute_force_match
from tsm_core import plugins
from tsm_core.cli.main import get_cli


@pytest.mark.slow
def test_import_the_real_dp1_sample_and_match(reference, tmp_path):
    import lsdb

    source = reference / "dp1_object_sample.parquet"
    out = tmp_path / "mine"
    result = CliRunner().invoke(
        get_cli(),
        [
            "import",
            str(source),
            "--out",
            str(out),
            "--release",
            "dp1",
            "--workers",
            "1",
            "--chunk-rows",
            "1000",
            "--progress",
        ],
    )
    assert result.exit_code == 0, result.output
    # --progress: a file this small is written in the tsm process (no cluster), with LSDB's
    # tqdm bar on stderr, run to its end (a large one shows hats-import's bars per stage)
    assert re.search(r"Writing Catalog *: 100%\|", result.stderr), result.stderr[-2000:]
    assert "1000 rows" in result.output and "margin 5 arcsec (object_lc_5arcs)" in result.output
    props = dict(l.split("=", 1) for l in (out / "collection.properties").read_text().splitlines() if "=" in l)
    assert props["hats_primary_table_url"] == "object_lc" and props["default_margin"] == "object_lc_5arcs"
    assert props["all_indexes"] == "objectId object_lc_objectId" and props["obs_collection"] == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind
    catalog = lsdb.open_catalog(out)
    assert catalog.margin.hc_structure.catalog_info.margin_threshold == 5.0

    objects = pd.read_parquet(source)
    rng = np.random.default_rng(8)
    rows = rng.choice(len(objects), 400, replace=False)
    dec = objects["coord_dec"].to_numpy()[rows] + rng.normal(0, 0.5 / 3600, 400)
    ra = objects["coord_ra"].to_numpy()[rows] + rng.normal(0, 0.5 / 3600, 400) / np.cos(np.radians(dec))
    redshifts = pd.DataFrame({"id": [f"j{i}" for i in range(400)], "ra": ra, "dec": dec, "z": rng.uniform(0, 2, 400)})
    redshifts.to_parquet(tmp_path / "z.parquet")
    run = tsm_core.run(
        {
            "name": "imported",
            "redshift_catalog": {"path": str(tmp_path / "z.parquet")},
            "object_catalog": {"release": "dp1", "path": str(out)},
            "crossmatch": {"radius_arcsec": 2.0, "n_neighbors": 2},
            "output": {"directory": str(tmp_path / "out")},
            "compute": {"scheduler": "synchronous"},
        }
    )
    got = pq.read_table(run.output_path).to_pandas()
    expected = brute_force_match(redshifts, objects, 2.0, 2)
    assert len(expected) >= 400
    assert sorted(zip(got["id"], got["objectId"])) == sorted(zip(expected["id"], expected["objectId"]))
    merged = expected.merge(got, on=["id", "objectId"])
    np.testing.assert_allclose(merged["_dist_arcsec"], merged["dist"], atol=1e-6)


def test_import_checks_the_release_columns_first(reference, tmp_path):
    from tsm_core.catalogs.importer import import_objects

    frame = pd.read_parquet(reference / "dp1_object_sample.parquet").rename(columns={"coord_dec": "dec"})
    frame.head(50).to_csv(tmp_path / "a.csv", index=False)
    out = CliRunner().invoke(get_cli(), ["import", str(tmp_path / "*.csv"), "--out", str(tmp_path / "c")])
    assert out.exit_code == 1 and out.output.count("\n") == 1
    assert "a.csv lacks the dp1 column(s) coord_dec (dec); its columns: objectId, coord_ra, dec" in out.output
    assert not (tmp_path / "c").exists()
    with pytest.raises(tsm_core.TSMError, match="nothing.txt: no such file or folder"):
        import_objects([tmp_path / "nothing.txt"], tmp_path / "d", plugins.object_catalog("dp1"))
    (tmp_path / "b.parquet").write_bytes(b"")
    with pytest.raises(tsm_core.TSMError, match="mix formats"):
        import_objects([tmp_path], tmp_path / "d", plugins.object_catalog("dp1"))
