"""Registration and import of small inputs written without LSDB's fixed costs (issue 30).

Each piece is checked against LSDB's or HATS' own unmodified code on the same rows: the
partitions against HATS' ``generate_alignment``, the margin rows against the margin of
``lsdb.from_dataframe`` (near partition edges, the poles, RA 0/360 and a corner where three
base pixels meet), the files against what ``from_dataframe(...).write_catalog(...)`` writes
(byte for byte). A catalog registered by an earlier version (with a margin, written by LSDB)
still runs, and gives the training set a new registration gives.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import tsm_core

REFERENCE_ROWS = 1000


def _lsdb(frame: pd.DataFrame, ra: str, dec: str, rows: int, margin: float | None, name: str = "main"):
    import lsdb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lsdb.from_dataframe(
            frame, ra_column=ra, dec_column=dec, margin_threshold=margin, partition_rows=rows, catalog_name=name
        )


def _sky(rng: np.random.Generator, n: int, ra: tuple[float, float], dec: tuple[float, float]) -> pd.DataFrame:
    """``n`` positions uniform on the sphere inside the RA and Dec ranges (RA may wrap past 360)."""
    sin = rng.uniform(np.sin(np.radians(dec[0])), np.sin(np.radians(dec[1])), n)
    return pd.DataFrame({"ra": np.mod(rng.uniform(*ra, n), 360.0), "dec": np.degrees(np.arcsin(sin))})


SCENES = {
    # name: (RA range, Dec range, rows, rows per partition, margin in arcsec); wide margins: LSDB's
    # loop over the border pixels at the margin order takes seconds at 10 arcsec
    "ra_wrap": ((359.0, 361.0), (-1.0, 1.0), 3000, 400, 120.0),
    "north_pole": ((0.0, 360.0), (88.0, 90.0), 2000, 400, 120.0),
    "south_pole": ((0.0, 360.0), (-90.0, -88.0), 1500, 300, 120.0),
    "three_base_pixels": ((-1.0, 1.0), (40.8, 42.8), 2000, 400, 120.0),  # RA 0, Dec 41.8: a corner of 3
    "all_sky": ((0.0, 360.0), (-90.0, 90.0), 1000, 100, 600.0),
}


@pytest.mark.parametrize("name", list(SCENES))
def test_margin_rows_are_those_of_lsdb_from_dataframe(name):
    from hats.pixel_math.spatial_index import compute_spatial_index

    from tsm_core.catalogs.margins import margin_rows
    from tsm_core.redshifts.partitioning import partition_of

    ra_range, dec_range, n, rows, margin = SCENES[name]
    frame = _sky(np.random.default_rng(len(name)), n, ra_range, dec_range).assign(row=np.arange(n))
    theirs = _lsdb(frame, "ra", "dec", rows, margin)
    pixels = theirs.get_healpix_pixels()
    assert len(pixels) > 1
    ra, dec = frame["ra"].to_numpy(), frame["dec"].to_numpy()
    spatial = compute_spatial_index(ra, dec)
    ours = margin_rows(ra, dec, spatial, pixels, partition_of(pixels, spatial), margin)
    assert theirs.margin is not None
    expected = {
        p: theirs.margin.get_partition(p.order, p.pixel).compute()["row"].to_numpy()
        for p in theirs.margin.get_healpix_pixels()
    }
    assert list(ours) == list(expected)  # the same margin partitions (empty regions' too), in order
    assert sum(len(r) for r in ours.values()) > 0
    for pixel, found in ours.items():
        np.testing.assert_array_equal(found, expected[pixel])  # the same rows, in the same order


def test_negative_pixels_cover_the_rest_of_the_sky_once():
    """The empty regions and the partitions tile the sky: every order-10 cell in exactly one."""
    from hats.pixel_math import HealpixPixel

    from tsm_core.catalogs.margins import negative_pixels

    pixels = [HealpixPixel(0, 4), HealpixPixel(2, 5), HealpixPixel(3, 100), HealpixPixel(7, 12345)]
    counts = np.zeros(12 * 4**10, dtype=np.int64)
    for p in [*pixels, *negative_pixels(pixels)]:
        shift = 2 * (10 - p.order)
        counts[p.pixel << shift : (p.pixel + 1) << shift] += 1
    assert (counts == 1).all()
    assert negative_pixels([HealpixPixel(0, i) for i in range(12)]) == []


@pytest.mark.parametrize(
    "ra, dec, n, rows",
    [
        ((0.0, 360.0), (-90.0, 90.0), 5000, 50_000),  # sparse all-sky: the 12 base pixels or fewer
        ((37.0, 38.5), (6.5, 8.0), 20_000, 3_000),  # one dense field
        ((0.0, 360.0), (-30.0, 30.0), 3_000, 50),
    ],
)
def test_sky_pixels_are_hats_generate_alignment(ra, dec, n, rows):
    from hats.pixel_math import HealpixPixel, generate_alignment
    from hats.pixel_math.spatial_index import compute_spatial_index

    from tsm_core.redshifts.partitioning import sky_pixels

    frame = _sky(np.random.default_rng(n), n, ra, dec)
    spatial = compute_spatial_index(frame["ra"].to_numpy(), frame["dec"].to_numpy())
    ours = sky_pixels(spatial, rows)
    histogram = np.bincount(spatial >> (2 * (29 - 7)), minlength=12 * 4**7)  # LSDB's order (HATS' loop: 0.3 s)
    assert histogram.max() <= rows
    alignment = generate_alignment(
        histogram,
        highest_order=7,
        threshold=rows,
        drop_empty_siblings=True,
        use_lower_order=True,
    )
    expected = {HealpixPixel(int(a[0]), int(a[1])) for a in alignment if a is not None}
    assert len(ours) == len(expected) and set(ours) == expected


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def _properties(path: Path) -> dict[str, str]:
    drop = ("hats_builder", "hats_creation_date", "hats_estsize")  # ours names tsm-core
    lines = path.read_text().splitlines()
    return {k: v for k, _, v in (line.partition("=") for line in lines if "=" in line) if k not in drop}


def _same_collection(ours: Path, theirs: Path) -> None:
    """Every file LSDB wrote is written the same (Parquet byte for byte), but the statistics file."""
    mine, lsdbs = _files(ours), _files(theirs)
    missing = set(lsdbs) - set(mine)
    assert all(name.endswith("per_partition_statistics.parquet") for name in missing), missing
    assert set(mine) <= set(lsdbs), set(mine) - set(lsdbs)
    for name, path in mine.items():
        if name.endswith("properties"):
            assert _properties(path) == _properties(lsdbs[name]), name
        elif name.endswith("_metadata"):
            a, b = pq.read_metadata(path), pq.read_metadata(lsdbs[name])
            assert a.schema.to_arrow_schema().equals(b.schema.to_arrow_schema(), check_metadata=True), name
            assert [a.row_group(i).num_rows for i in range(a.num_row_groups)] == [
                b.row_group(i).num_rows for i in range(b.num_row_groups)
            ], name
        else:
            assert path.read_bytes() == lsdbs[name].read_bytes(), name


@pytest.fixture(scope="module")
def reference_frames(reference) -> dict[str, pd.DataFrame]:
    from tsm_core.redshifts.readers import read_redshift_catalog

    crc = read_redshift_catalog(reference / "combined_redshift_sample.parquet", {}, None, "drop", None).frame
    return {
        "crc": crc.assign(_zrow=np.arange(len(crc), dtype=np.int64)),
        "dp1": pd.read_parquet(reference / "dp1_object_sample.parquet"),
        "dp02": pd.read_parquet(reference / "dp02_object_sample.parquet"),  # objectId is the index
    }


@pytest.mark.parametrize(
    "which, ra, dec, margin",
    [("crc", "ra", "dec", None), ("dp1", "coord_ra", "coord_dec", 5.0), ("dp02", "coord_ra", "coord_dec", 5.0)],
)
def test_written_collection_is_the_one_lsdb_writes(reference_frames, tmp_path, which, ra, dec, margin):
    import hats
    import lsdb

    from tsm_core.catalogs.small_hats import write_collection

    frame = reference_frames[which]
    theirs = _lsdb(frame, ra, dec, 50_000, margin)
    theirs.write_catalog(tmp_path / "lsdb", catalog_name="main", as_collection=True, progress_bar=False)
    margin_spec = None if margin is None else (f"main_{int(margin)}arcs", margin)
    write_collection(
        tmp_path / "ours", frame, name="main", ra=ra, dec=dec, rows_per_partition=50_000, margin=margin_spec
    )
    _same_collection(tmp_path / "ours", tmp_path / "lsdb")
    opened = lsdb.open_catalog(tmp_path / "ours")
    assert opened.get_healpix_pixels() == theirs.get_healpix_pixels()
    assert (opened.margin is None) == (margin is None)
    assert hats.read_hats(tmp_path / "ours").main_catalog.catalog_info.total_rows == len(frame)
    back = pd.read_parquet(tmp_path / "ours" / "main" / "dataset").drop(columns=["_healpix_29"])
    source = frame.reset_index() if frame.index.name else frame
    key = "objectId" if "objectId" in source else "_zrow"
    back = back.sort_values(key, ignore_index=True)[list(source.columns)]
    expected = source.sort_values(key, ignore_index=True)
    for column in source.columns:  # every value read back by pandas as it was given
        assert (
            back[column].astype(object).where(back[column].notna(), None).tolist()
            == expected[column].astype(object).where(expected[column].notna(), None).tolist()
        ), column


def test_written_margin_of_many_partitions_is_the_one_lsdb_writes(tmp_path):
    from tsm_core.catalogs.small_hats import write_collection

    rng = np.random.default_rng(11)
    frame = _sky(rng, 3000, (359.0, 361.0), (-1.0, 1.0)).assign(objectId=np.arange(3000), flux=rng.normal(size=3000))
    frame.loc[::7, "flux"] = np.nan
    theirs = _lsdb(frame, "ra", "dec", 500, 10.0)
    theirs.write_catalog(tmp_path / "lsdb", catalog_name="main", as_collection=True, progress_bar=False)
    parts = write_collection(
        tmp_path / "ours", frame, name="main", ra="ra", dec="dec", rows_per_partition=500, margin=("main_10arcs", 10.0)
    )
    assert len(parts.pixels) > 4
    _same_collection(tmp_path / "ours", tmp_path / "lsdb")


def test_a_catalog_registered_with_a_margin_by_an_earlier_version_runs_the_same(scene, base_config):
    """New copies have no margin; a copy written as earlier versions wrote it (LSDB's
    ``from_dataframe`` with a 10 arcsec margin) opens and gives the same training set."""
    import lsdb

    from tsm_core.redshifts.registration import register_redshift_catalog, stored_table
    from tsm_core.redshifts.store import CATALOG_NAME, MARGIN_ARCSEC

    new = register_redshift_catalog("new", scene["redshift_path"])
    old = register_redshift_catalog("old", scene["redshift_path"])
    assert lsdb.open_catalog(new.path).margin is None
    rows = pd.read_parquet(Path(new.path) / CATALOG_NAME / "dataset").drop(columns=["_healpix_29"])
    rows = rows.sort_values("_zrow", ignore_index=True)
    shutil.rmtree(Path(old.path) / CATALOG_NAME)
    (Path(old.path) / "collection.properties").unlink()
    staging = Path(old.path).with_name("earlier")
    catalog = _lsdb(rows, "ra", "dec", 50_000, MARGIN_ARCSEC, CATALOG_NAME)
    catalog.write_catalog(staging, catalog_name=CATALOG_NAME, as_collection=True, progress_bar=False)
    for item in staging.iterdir():
        item.rename(Path(old.path) / item.name)
    assert lsdb.open_catalog(old.path).margin is not None
    assert stored_table(old).rows == len(rows)

    outputs = {}
    for name in ("new", "old"):
        result = tsm_core.run(dict(base_config, name=name, redshift_catalog={"name": name}))
        outputs[name] = pq.read_table(result.output_path).to_pandas()
    assert len(outputs["new"]) > 0
    pd.testing.assert_frame_equal(outputs["new"], outputs["old"])
