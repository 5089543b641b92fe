"""The match stage's per-partition work, made cheaper, gives the same rows (issue 30).

The crossmatch algorithm builds each partition pair's matched rows itself (not LSDB's
generic builder): compared with LSDB's own builder on real catalogs. Object partitions that
hold no redshift are never read (counted with a Dask callback on the executed keys). A run
over many small partitions, computed by the threads scheduler (a server's), gives the pairs
of an astropy brute force.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from helpers import brute_force_match

RADIUS = 3.0


class _LSDBBuilt:
    """Mixin: the matched rows built by LSDB's own ``AbstractCrossmatchAlgorithm.crossmatch``."""

    def crossmatch(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - LSDB's signature
        from lsdb.core.crossmatch.abstract_crossmatch_algorithm import AbstractCrossmatchAlgorithm

        return AbstractCrossmatchAlgorithm.crossmatch(self, *args, **kwargs)


@pytest.fixture(scope="module")
def catalogs(scene: dict) -> tuple:
    """The scene's objects (many small partitions) and its redshifts as LSDB catalogs; the
    redshifts carry a column the objects have too (``refExtendedness``), to be suffixed."""
    import lsdb

    redshifts = scene["redshifts"].assign(refExtendedness=np.arange(len(scene["redshifts"]), dtype=np.float64))
    left = lsdb.from_dataframe(redshifts, ra_column="ra", dec_column="dec", catalog_name="z", margin_threshold=None)
    right = lsdb.open_catalog(
        str(scene["objects_path"]), columns=["objectId", "coord_ra", "coord_dec", "refExtendedness", "g_cModelFlux"]
    )
    return left, right


@pytest.mark.parametrize(("n_neighbors", "suffix_method"), [(1, "overlapping_columns"), (3, "all_columns")])
def test_matched_rows_are_those_lsdb_builds(catalogs: tuple, n_neighbors: int, suffix_method: str) -> None:
    """Column for column (names, dtypes, values, nulls) and index for index, the frame of every
    partition pair is the one LSDB's generic builder makes from the same pairs."""
    from tsm_core.science.crossmatch import AmbiguityCrossmatch

    class LSDBBuilt(_LSDBBuilt, AmbiguityCrossmatch):
        pass

    left, right = catalogs
    frames = []
    for algorithm in (AmbiguityCrossmatch, LSDBBuilt):
        xmatch = left.crossmatch(
            right,
            algorithm=algorithm(n_neighbors=n_neighbors, radius_arcsec=RADIUS),
            require_right_margin=True,
            suffixes=("_z", "_object"),
            suffix_method=suffix_method,
        )
        frames.append(xmatch.compute())
    ours, lsdbs = frames
    assert len(ours) > 100 and "refExtendedness_object" in ours.columns
    assert list(ours.columns) == list(lsdbs.columns)
    assert ours.index.name == lsdbs.index.name
    pd.testing.assert_frame_equal(pd.DataFrame(ours), pd.DataFrame(lsdbs), check_exact=True)


def _partitions_holding(catalog_path: Path, ra: np.ndarray, dec: np.ndarray) -> int:
    """How many partitions of the HATS catalog at ``catalog_path`` hold one of the points
    (pixels from the catalog's partition list, positions placed with cdshealpix)."""
    import astropy.units as u
    import hats
    from cdshealpix.nested import lonlat_to_healpix

    opened = hats.read_hats(catalog_path)
    pixels = getattr(opened, "main_catalog", opened).get_healpix_pixels()
    held = 0
    for order in sorted({p.order for p in pixels}):
        points = set(lonlat_to_healpix(ra * u.deg, dec * u.deg, order).tolist())
        held += sum(1 for p in pixels if p.order == order and p.pixel in points)
    return held


def test_partitions_without_redshifts_are_not_read(scene: dict, tmp_path: Path) -> None:
    """Redshifts in one patch of the sky: the run's tasks (match, photometry, depths) read
    exactly the object partitions that hold one, each once, and their margins; no other."""
    import dask
    from dask.callbacks import Callback

    from tsm_core.pipeline.depths import DepthMeter
    from tsm_core.pipeline.main import prepare
    from tsm_core.pipeline.match import match

    redshifts = scene["redshifts"]
    few = redshifts[redshifts["ra"].between(44, 46)].iloc[::4]
    few.to_parquet(tmp_path / "few.parquet", index=False)
    config = {
        "name": "few",
        "redshift_catalog": {"path": str(tmp_path / "few.parquet")},
        "object_catalog": {"release": "dp1", "path": str(scene["objects_path"])},
        "crossmatch": {"radius_arcsec": RADIUS},
        "output": {"directory": str(tmp_path / "out")},
    }
    plan = prepare(config)
    object_reads = {d.key[0] for d in plan.objects.to_delayed()}
    margin_reads = {d.key[0] for d in plan.objects.margin.to_delayed()}
    tasks, _ = match(plan)
    executed: list = []
    with Callback(posttask=lambda key, *_: executed.append(key)):
        dask.compute(*DepthMeter(plan).attach(tasks), scheduler="synchronous")
    objects = [k for k in executed if isinstance(k, tuple) and k[0] in object_reads]
    margins = [k for k in executed if isinstance(k, tuple) and k[0] in margin_reads]
    holding = _partitions_holding(scene["objects_path"], few["ra"].to_numpy(), few["dec"].to_numpy())
    assert 0 < holding < plan.objects.npartitions / 2
    assert len(objects) == len(set(objects)) == holding
    assert len(margins) == len(set(margins)) == holding


@pytest.mark.parametrize("n_neighbors", [1, 3])
def test_many_small_partitions_in_threads_give_brute_force_pairs(scene: dict, tmp_path: Path, n_neighbors: int) -> None:
    """The scene's many small partitions (RA = 0 crossed), computed by the threads
    scheduler: the pairs and separations of astropy's ``search_around_sky``."""
    import tsm_core

    config = {
        "name": "threads",
        "redshift_catalog": {"path": str(scene["redshift_path"])},
        "object_catalog": {"release": "dp1", "path": str(scene["objects_path"])},
        "crossmatch": {"radius_arcsec": RADIUS, "n_neighbors": n_neighbors},
        "output": {"directory": str(tmp_path)},
        "compute": {"scheduler": "threads", "n_workers": 2},
    }
    result = tsm_core.run(config)
    got = result.to_pandas()
    # the small partitions' rows are gathered and written together: one row group, not one each
    assert pq.ParquetFile(result.output_path).metadata.num_row_groups == 1
    expected = brute_force_match(scene["redshifts"], scene["objects"], RADIUS, n_neighbors)
    assert result.provenance["counts"]["matched"] == len(expected) == len(got)
    key = ["id", "objectId"]
    merged = expected.merge(got[[*key, "_dist_arcsec"]], on=key, how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()
    np.testing.assert_allclose(merged["_dist_arcsec"], merged["dist"], rtol=0, atol=1e-6)


def test_the_server_freezes_its_startup_objects_once_warm():
    """``tsm serve`` moves what is alive once the run path is imported out of the collector's
    generations, unless a training set is already queued or running; in a process of its own
    (a freeze is process-wide: never in the test's)."""
    code = (
        "import gc, threading, time\n"
        "from concurrent.futures import Future\n"
        "from tsm_web.jobs import Runner\n"
        "from tsm_web.plugin import _freeze_when_warm\n"
        "def frozen(busy):\n"
        "    runner = Runner(1)\n"
        "    if busy: runner.futures[1] = (Future(), None)  # a run submitted during the warm-up\n"
        "    runner.warming = threading.Thread(target=lambda: time.sleep(2.0)); runner.warming.start()\n"
        "    _freeze_when_warm(runner)\n"
        "    assert gc.get_freeze_count() == 0  # not before the warm-up ends\n"
        "    runner.warming.join(); time.sleep(0.5)\n"
        "    deadline = time.monotonic() + 20\n"
        "    while not busy and gc.get_freeze_count() == 0 and time.monotonic() < deadline: time.sleep(0.05)\n"
        "    return gc.get_freeze_count()\n"
        "print(frozen(True), frozen(False))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    busy, idle = map(int, done.stdout.split())
    assert busy == 0 and idle > 1000


def test_gathered_frames_keep_every_row_in_order():
    """Selected frames joined up to the threshold: the same rows in the same order as a plain
    concatenation, no joined frame past the threshold unless one frame alone is, empties dropped."""
    from tsm_core.pipeline.write import gathered

    rng = np.random.default_rng(3)
    sizes = [0, 5, 0, 7, 30, 2, 0, 11, 40, 1, 0]
    frames, start = [], 0
    for n in sizes:
        frames.append(pd.DataFrame({"row": np.arange(start, start + n), "x": rng.normal(size=n)}))
        start += n
    out = list(gathered(iter(frames), rows=12))
    assert [len(f) for f in out] == [12, 30, 13, 40, 1]  # 5+7, 30, 2+11, 40, 1
    joined = pd.concat(out, ignore_index=True)
    pd.testing.assert_frame_equal(joined, pd.concat(frames, ignore_index=True))
    empty = list(gathered(iter([frames[0], frames[2]]), rows=12))
    assert len(empty) == 1 and len(empty[0]) == 0 and list(empty[0].columns) == ["row", "x"]
    assert [len(f) for f in gathered(iter([frames[1], frames[0]]), rows=5)] == [5]  # no trailing empty batch
