"""Small inputs are imported and registered in the calling process: no Dask cluster (no child
process) is started, and the collection is the one the cluster path writes, compared file by
file with pyarrow."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow.dataset as ds
import pytest

from tsm_core import plugins


@contextmanager
def counting_children() -> Iterator[list[int]]:
    """The most child processes started while the block ran that this process had at once
    (sampled every 10 ms; one left by an earlier test, such as multiprocessing's resource
    tracker, is not counted)."""
    seen = [0]
    done = threading.Event()
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}

    def sample() -> None:
        while not done.is_set():
            seen[0] = max(seen[0], len({p.pid for p in me.children(recursive=True)} - before))
            time.sleep(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join()


def pixels(folder: Path) -> dict[str, pd.DataFrame]:
    """Each partition file's rows (sorted by objectId, columns by name), by its path in ``folder``."""
    out = {}
    for file in sorted((folder / "dataset").glob("Norder=*/Dir=*/Npix=*.parquet")):
        frame = ds.dataset(file, format="parquet").to_table().to_pandas()
        out[str(file.relative_to(folder))] = frame[sorted(frame.columns)].sort_values("objectId", ignore_index=True)
    return out


@pytest.fixture(scope="module")
def straddling(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 objects 36 arcsec around RA 0, Dec 60: across the border of two HEALPix pixels, so
    the collection has two partitions and margins with rows."""
    rng = np.random.default_rng(3)
    n = 2000
    frame = pd.DataFrame(
        {
            "objectId": np.arange(n, dtype=np.int64) + 10**15,
            "coord_ra": rng.uniform(-0.01, 0.01, n) % 360,
            "coord_dec": 60 + rng.uniform(-0.01, 0.01, n),
            "g_cModelFlux": rng.uniform(1, 1e4, n).astype(np.float32),
        }
    )
    path = tmp_path_factory.mktemp("straddling") / "objects.parquet"
    frame.to_parquet(path, index=False)
    return path


def test_a_small_import_starts_no_cluster_and_writes_what_the_cluster_path_writes(straddling, tmp_path, capfd):
    from tsm_core.catalogs.importer import import_objects

    release = plugins.object_catalog("dp1")
    with counting_children() as small_children:
        small = import_objects([straddling], tmp_path / "small", release)
    with counting_children() as cluster_children:
        cluster = import_objects([straddling], tmp_path / "cluster", release, in_process_rows=0, progress=True)
    bars = capfd.readouterr().err  # the cluster path's progress: hats-import's bar per stage, run to its end
    for stage in ("Catalog: Mapping", "Catalog: Reducing", "Margin: Reducing", "Margin: Finishing"):
        assert re.search(rf"{stage} *: 100%\|", bars), (stage, bars[-2000:])
    assert small_children[0] == 0  # no worker process: the import ran in this one
    assert cluster_children[0] >= 1  # the sampler sees a cluster's workers
    assert (small.n_rows, small.n_partitions) == (cluster.n_rows, cluster.n_partitions) == (2000, 2)

    source = pd.read_parquet(straddling).sort_values("objectId", ignore_index=True)
    for part in ("object_lc", "object_lc_5arcs"):
        got, expected = pixels(small.path / part), pixels(cluster.path / part)
        assert list(got) == list(expected)
        for name in got:
            pd.testing.assert_frame_equal(got[name], expected[name])
    rows = pd.concat(pixels(small.path / "object_lc").values()).sort_values("objectId", ignore_index=True)
    pd.testing.assert_frame_equal(rows[source.columns], source)
    assert sum(len(f) for f in pixels(small.path / "object_lc_5arcs").values()) > 0

    def index(path: Path) -> pd.DataFrame:
        table = ds.dataset(path / "object_lc_objectId" / "dataset" / "index", format="parquet").to_table()
        return table.to_pandas().sort_values("objectId", ignore_index=True)

    pd.testing.assert_frame_equal(index(small.path), index(cluster.path))

    def properties(path: Path, name: str) -> dict[str, str]:
        lines = (path / name).read_text().splitlines()
        drop = ("hats_builder", "hats_creation_date", "hats_estsize", "hats_primary_table_url")
        return {k: v for k, _, v in (line.partition("=") for line in lines if "=" in line) if k not in drop}

    assert properties(small.path, "collection.properties") == properties(cluster.path, "collection.properties") | {
        "obs_collection": "small"
    }


def test_a_small_registration_starts_no_cluster(reference, tmp_path):
    from tsm_core.redshifts.registration import register_redshift_catalog
    from tsm_core.redshifts.store import CATALOG_NAME

    source = reference / "combined_redshift_sample.parquet"
    with counting_children() as children:
        record = register_redshift_catalog("small", source)
    assert children[0] == 0
    raw = pd.read_parquet(source)
    good = raw[np.isfinite(raw["z"]) & (raw["z"] >= -0.01)]
    stored = ds.dataset(Path(record.path) / CATALOG_NAME / "dataset", format="parquet", exclude_invalid_files=True)
    assert record.n_rows == len(good) == stored.count_rows()
    assert sorted(map(str, stored.to_table(columns=["ra"]).column("ra").to_pylist())) == sorted(map(str, good["ra"]))


def test_csv_rows_counted_decompressed_and_only_up_to_the_threshold(tmp_path):
    """A compressed CSV is counted by its lines, not guessed from its size: an xz file of
    300,000 rows (a few kB) is over a 200,000-row threshold, found without reading past it."""
    import lzma

    from tsm_core.catalogs.in_process import count_rows

    body = "objectId,coord_ra,coord_dec\n" + "".join(f"{i},1.0,2.0\n" for i in range(300_000))
    (tmp_path / "big.csv.xz").write_bytes(lzma.compress(body.encode()))
    (tmp_path / "small.csv.gz").write_bytes(__import__("gzip").compress(body[: body.index("1000,")].encode()))
    assert (tmp_path / "big.csv.xz").stat().st_size < 100_000
    assert 200_000 < count_rows([str(tmp_path / "big.csv.xz")], "csv", limit=200_000) <= 300_000
    assert count_rows([str(tmp_path / "big.csv.xz")], "csv") == 300_000
    assert count_rows([str(tmp_path / "small.csv.gz")], "csv") == 1000 == len(pd.read_csv(tmp_path / "small.csv.gz"))


def test_the_queue_limit_is_checked_before_the_catalogs_are_read(tmp_path, monkeypatch):
    """A user at the server's queue limit is refused before planning reads any catalog (a
    config naming a file that does not exist still gets the limit's refusal, not the file's)."""
    from tsm_core import service
    from tsm_core.errors import TooManyRuns, TSMError
    from tsm_core.products.registry import Registry

    monkeypatch.setenv("TSM_HOME", str(tmp_path / "home"))
    registry = Registry.at_home(tmp_path / "home")
    registry.create_product("busy", "", {}, status="queued", owner="carol")
    config = {"name": "x", "redshift_catalog": [{"path": str(tmp_path / f"missing{i}.parquet")} for i in range(3)]}
    with pytest.raises(TooManyRuns, match="carol has 1 training sets queued or running"):
        service.submit(config, owner="carol", max_active=1, registry=registry)
    with pytest.raises(TSMError) as below:  # below the limit, planning goes on (and fails on what it opens)
        service.submit(config, owner="carol", max_active=2, registry=registry)
    assert not isinstance(below.value, TooManyRuns)
