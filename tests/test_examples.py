"""Every configuration in ``examples/`` runs on the data its header names and gives the rows it
claims ("Gives N rows"); N is also checked against an independent pandas/astropy computation.

A file of ``examples/`` without an entry in :data:`CHECKS` fails: each example is run here.
The synthetic samples are built once per test run (at the size the headers name); the real
samples come from ``../shared/reference-data/``; the DP1-shaped object catalogs around the real
redshifts are made here (the real DP1 sample does not overlap them, see the reference README).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from conftest import shared_build
from helpers import DP1_BANDS, brute_force_combination, brute_force_match, write_objects

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SAMPLE_SIZE = {"n_objects": 3000, "n_redshifts": 400}  # what the headers say: --objects 3000 --redshifts 400
OFFSET_ARCSEC = 0.3  # the made objects sit this far north of their redshift


def stated_rows(path: Path) -> int:
    """The number of rows an example's header claims ("Gives N rows")."""
    found = re.search(r"^# Gives (\d+) rows", path.read_text(), re.MULTILINE)
    assert found, f"{path.name}: the header says how many rows it gives ('# Gives N rows ...')"
    return int(found.group(1))


def run_example(name: str, tmp_path: Path) -> tuple[object, Path]:
    """Run ``examples/name`` from a copy in ``tmp_path`` (its `out` folder goes there)."""
    import tsm_core

    config = tmp_path / name
    shutil.copy(EXAMPLES / name, config)
    result = tsm_core.run(config)
    return result, Path(result.output_path)


# --- the synthetic samples ------------------------------------------------------------------


_BUILT: dict[str, Path] = {}


def built_sample(tmp_path_factory: pytest.TempPathFactory, release_name: str) -> Path:
    """The synthetic sample of ``release_name`` at the headers' size, built once per test run
    (per process here, across pytest-xdist workers by :func:`shared_build`); read only."""
    if release_name not in _BUILT:
        _BUILT[release_name] = _build_sample(tmp_path_factory, release_name)
    return _BUILT[release_name]


def _build_sample(tmp_path_factory: pytest.TempPathFactory, release_name: str) -> Path:
    from tsm_core import plugins
    from tsm_core.catalogs.rubin.sample import make_sample

    release = plugins.object_catalog(release_name)
    return shared_build(
        tmp_path_factory, f"example-sample-{release_name}", lambda path: make_sample(release, path, **SAMPLE_SIZE)
    )


def place_sample(sample: Path, release: str) -> None:
    """Put a built sample where `object_catalog.path: sample` (and ``make_sample`` of the same
    size) finds it: ``$TSM_HOME/samples/<release>``."""
    home = Path(os.environ["TSM_HOME"])
    (home / "samples").mkdir(parents=True, exist_ok=True)
    (home / "samples" / release).symlink_to(sample)


def use_sample(sample: Path, release: str) -> pd.DataFrame:
    """:func:`place_sample`, then register its redshifts as ``<release>-sample`` (as the headers
    say) and return its redshift table."""
    from tsm_core.redshifts.registration import register_redshift_catalog

    place_sample(sample, release)
    register_redshift_catalog(f"{release}-sample", sample / "redshifts.parquet")
    return pd.read_parquet(sample / "redshifts.parquet")


def sample_objects(sample: Path) -> pd.DataFrame:
    """The sample's objects, read with pandas from the collection's Parquet files."""
    properties = (sample / "objects" / "collection.properties").read_text()
    primary = re.search(r"^hats_primary_table_url=(\S+)", properties, re.MULTILINE).group(1)
    return pd.read_parquet(sample / "objects" / primary / "dataset")


def nearest_matches(redshifts: pd.DataFrame, objects: pd.DataFrame) -> pd.DataFrame:
    """Each redshift's nearest object within 1 arcsec (astropy)."""
    return brute_force_match(redshifts, objects, radius_arcsec=1.0, n_neighbors=1)


def closest_one_to_one(pairs: pd.DataFrame) -> pd.DataFrame:
    """`unique_galaxies: closest`: each object keeps its nearest redshift (each redshift has one
    object already), by a plain sort."""
    return pairs.sort_values(["dist", "id"]).drop_duplicates("objectId")


@pytest.fixture(scope="module")
def dp1_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_sample(tmp_path_factory, "dp1")


@pytest.fixture(scope="module")
def dp02_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_sample(tmp_path_factory, "dp02")


def check_synthetic_dp1(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[int, object]:
    sample = request.getfixturevalue("dp1_sample")
    redshifts = use_sample(sample, "dp1")
    expected = len(nearest_matches(redshifts, sample_objects(sample)))
    result, path = run_example("synthetic_dp1.yaml", tmp_path)
    frame = pd.read_parquet(path)
    assert "i_cModelMag_dered" in frame.columns and frame["ebv"].notna().all()
    return expected, result


def check_synthetic_dp02(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[int, object]:
    sample = request.getfixturevalue("dp02_sample")
    redshifts = use_sample(sample, "dp02")
    objects = sample_objects(sample)
    keep = objects["detect_isPrimary"] & (objects["i_gaap1p0Flux"] / objects["i_gaap1p0FluxErr"] > 5)
    expected = len(nearest_matches(redshifts, objects[keep]))
    result, path = run_example("synthetic_dp02.yaml", tmp_path)
    assert "i_gaap1p0Mag" in pd.read_parquet(path).columns
    return expected, result


def check_split(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[int, object]:
    sample = request.getfixturevalue("dp1_sample")
    redshifts = use_sample(sample, "dp1")
    expected = len(closest_one_to_one(nearest_matches(redshifts, sample_objects(sample))))
    result, path = run_example("split.yaml", tmp_path)
    frame = pd.read_parquet(path)
    assert sorted(frame["fold"].unique()) == [0, 1, 2, 3, 4]
    assert (frame["is_training"] == (frame["fold"] != 0)).all()
    assert (frame.groupby("objectId")["fold"].nunique() == 1).all()
    assert (frame.groupby("id")["fold"].nunique() == 1).all()
    return expected, result


def check_rail(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[int, object]:
    sample = request.getfixturevalue("dp1_sample")
    redshifts = use_sample(sample, "dp1")
    pairs = nearest_matches(redshifts[redshifts["z_flag"] >= 3], sample_objects(sample))
    expected = len(closest_one_to_one(pairs))
    result, path = run_example("rail.yaml", tmp_path)
    with h5py.File(path) as fh:
        group = fh["photometry"]
        assert {"redshift", "mag_i_lsst", "mag_err_i_lsst"} <= set(group)
        assert len(group["redshift"]) == result.n_rows
        mags = np.concatenate([group[f"mag_{b}_lsst"][:] for b in DP1_BANDS])
        assert np.isfinite(mags).all()  # a non-detection is 99, never NaN
    return expected, result


# --- the real redshift samples, against DP1-shaped catalogs made around them ----------------


def objects_at(ra: np.ndarray, dec: np.ndarray, keys: np.ndarray, seed: int) -> pd.DataFrame:
    """A DP1-shaped Object table with one object 0.3 arcsec north of each position;
    ``refExtendedness`` is 1 unless ``key % 4 == 0``."""
    rng = np.random.default_rng(seed)
    n = len(ra)
    frame = pd.DataFrame(
        {
            "objectId": np.arange(n, dtype=np.int64) + 10**15,
            "coord_ra": np.asarray(ra, float),
            "coord_dec": np.asarray(dec, float) + OFFSET_ARCSEC / 3600,
        }
    )
    for band in DP1_BANDS:
        frame[f"{band}_cModelFlux"] = rng.lognormal(np.log(3000), 1.0, n).astype(np.float32)
        frame[f"{band}_cModelFluxErr"] = np.full(n, 60, np.float32)
    frame["ebv"] = np.full(n, 0.03, np.float32)
    frame["refExtendedness"] = np.where(np.asarray(keys) % 4 == 0, 0.0, 1.0).astype(np.float32)
    frame["detect_isIsolated"] = rng.uniform(0, 1, n) < 0.8
    frame["tract"] = rng.integers(0, 10000, n).astype(np.int64)
    frame["patch"] = rng.integers(0, 100, n).astype(np.int64)
    return frame


def use_objects(frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Write ``frame`` as a HATS collection and point $TSM_DP1_PATH at it, as the headers say."""
    write_objects(frame, tmp_path / "dp1_objects", margin_arcsec=5.0)
    monkeypatch.setenv("TSM_DP1_PATH", str(tmp_path / "dp1_objects"))


def use_desi(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The DESI sample registered as ``desi-dr1`` and a DP1-shaped catalog around it in
    $TSM_DP1_PATH (as desi.yaml's header says); returns both tables."""
    from tsm_core.redshifts.registration import register_redshift_catalog

    source = request.getfixturevalue("reference") / "desi_dr1_dp1_fields_sample.parquet"
    desi = pd.read_parquet(source)
    objects = objects_at(desi["TARGET_RA"], desi["TARGET_DEC"], desi["TARGETID"], 1)
    use_objects(objects, tmp_path, request.getfixturevalue("monkeypatch"))
    register_redshift_catalog("desi-dr1", source)
    return desi, objects


def desi_good(desi: pd.DataFrame) -> pd.Series:
    """DESI's own meaning of a good redshift: ZWARN == 0 of a primary spectrum, finite Z."""
    return (desi["ZWARN"] == 0) & desi["ZCAT_PRIMARY"] & np.isfinite(desi["Z"])


def check_desi(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[int, object]:
    desi, objects = use_desi(request, tmp_path)
    # no stars, extended objects; every redshift has its own object (the positions are 20" apart
    # at least, each object 0.3" from its redshift)
    kept = desi_good(desi) & (desi["SPECTYPE"] != "STAR") & (objects["refExtendedness"] == 1).to_numpy()
    result, path = run_example("desi.yaml", tmp_path)
    frame = pd.read_parquet(path)
    assert set(frame["SPECTYPE"]) <= {"GALAXY", "QSO"} and (frame["z_flag_raw"] == 0).all()
    assert "detect_isIsolated" in frame.columns
    return int(kept.sum()), result


def check_filters(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[int, object]:
    desi, objects = use_desi(request, tmp_path)
    bright = (objects["i_cModelFlux"] / objects["i_cModelFluxErr"] >= 5) & (objects["refExtendedness"] == 1)
    kept = desi_good(desi) & (desi["SPECTYPE"] == "GALAXY") & bright.to_numpy()
    result, path = run_example("filters.yaml", tmp_path)
    assert set(pd.read_parquet(path)["id"].astype(str)) == set(desi.loc[kept, "TARGETID"].astype(str))
    return int(kept.sum()), result


def check_crc(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[int, object]:
    from tsm_core.redshifts.registration import register_redshift_catalog

    source = request.getfixturevalue("reference") / "combined_redshift_sample.parquet"
    crc = pd.read_parquet(source)
    # a DP1 catalog covers the DP1 fields only: objects near the CRC rows flagged in them
    in_dp1 = crc[crc["is_in_DP1_fields"] == 1]
    frame = objects_at(in_dp1["ra"], in_dp1["dec"], in_dp1["CRD_ID"].factorize()[0] + 1, 2)
    use_objects(frame, tmp_path, request.getfixturevalue("monkeypatch"))
    register_redshift_catalog("crc", source)
    # the kept redshifts are 2.9 arcsec apart at least: each keeps one row of its own
    kept = np.isfinite(crc["z"]) & (crc["z"] >= -0.01) & (crc["is_in_DP1_fields"] == 1)
    kept &= crc["z_flag_homogenized"].isin([3, 4]) & (crc["tie_result"] == 1)
    expected = int(kept.sum())
    result, path = run_example("crc.yaml", tmp_path)
    with fits.open(path) as hdul:
        table = hdul[1].data
        assert len(table) == result.n_rows
        assert {"tract", "patch", "tie_result", "source"} <= set(hdul[1].columns.names)
    return expected, result


def check_multicat(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[int, object]:
    from tsm_core.redshifts.registration import register_redshift_catalog

    reference = request.getfixturevalue("reference")
    desi = pd.read_parquet(reference / "desi_dr1_dp1_fields_sample.parquet")
    crc = pd.read_parquet(reference / "combined_redshift_sample.parquet")
    # objects at the DESI redshifts and at the CRC ones in the DP1 fields not already there
    in_dp1 = crc[crc["is_in_DP1_fields"] == 1]
    taken = brute_force_match(
        in_dp1,
        desi.rename(columns={"TARGET_RA": "coord_ra", "TARGET_DEC": "coord_dec", "TARGETID": "objectId"}),
        1.0,
        1,
    )
    crc_only = in_dp1[~in_dp1["id"].isin(taken["id"])]
    ra = np.concatenate([desi["TARGET_RA"], crc_only["ra"]])
    dec = np.concatenate([desi["TARGET_DEC"], crc_only["dec"]])
    use_objects(objects_at(ra, dec, np.arange(len(ra)) + 1, 3), tmp_path, request.getfixturevalue("monkeypatch"))
    register_redshift_catalog("desi-dr1", reference / "desi_dr1_dp1_fields_sample.parquet")
    register_redshift_catalog("crc", reference / "combined_redshift_sample.parquet")
    # each catalog's good redshifts, by its own rule, then the combination by brute force
    good_desi = desi_good(desi) & (desi["SPECTYPE"] != "STAR")
    flag = np.where(desi["ZERR"] < 0.001, 4, 3)
    good_crc = np.isfinite(crc["z"]) & (crc["z"] >= -0.01) & crc["z_flag_homogenized"].isin([3, 4])
    keys = pd.concat(
        [
            pd.DataFrame(
                {
                    "catalog": "desi-dr1",
                    "id": desi["TARGETID"].astype(str),
                    "ra": desi["TARGET_RA"],
                    "dec": desi["TARGET_DEC"],
                    "z_flag": flag,
                    "z_err": desi["ZERR"],
                }
            )[good_desi.to_numpy()],
            pd.DataFrame(
                {
                    "catalog": "crc",
                    "id": crc["CRD_ID"].astype(str),
                    "ra": crc["ra"],
                    "dec": crc["dec"],
                    "z_flag": crc["z_flag_homogenized"],
                    "z_err": crc["z_err"],
                }
            )[good_crc.to_numpy()],
        ],
        ignore_index=True,
    )
    kept = brute_force_combination(keys, 1.0)
    objects = objects_at(ra, dec, np.arange(len(ra)) + 1, 3)
    expected = brute_force_match(kept.assign(id=kept["catalog"] + "/" + kept["id"]), objects, 1.0, 1)
    result, path = run_example("multicat.yaml", tmp_path)
    frame = pd.read_parquet(path)
    assert set(frame["catalog"] + "/" + frame["id"].astype(str)) == set(expected["id"])
    assert (
        len(keys) - len(kept)
        == result.funnel["steps"][[s["key"] for s in result.funnel["steps"]].index("duplicates")]["count"]
    )
    return len(expected), result


CHECKS: dict[str, Callable[[pytest.FixtureRequest, Path], tuple[int, object]]] = {
    "synthetic_dp1.yaml": check_synthetic_dp1,
    "synthetic_dp02.yaml": check_synthetic_dp02,
    "split.yaml": check_split,
    "rail.yaml": check_rail,
    "desi.yaml": check_desi,
    "filters.yaml": check_filters,
    "crc.yaml": check_crc,
    "multicat.yaml": check_multicat,
}


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_example_gives_the_rows_it_states(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The example runs on its data; the rows it gives are the number its header states and the
    number an independent computation finds."""
    assert name in CHECKS, f"examples/{name} has no check in tests/test_examples.py (every example is run)"
    expected, result = CHECKS[name](request, tmp_path)
    assert result.n_rows > 0
    assert result.n_rows == expected
    assert stated_rows(EXAMPLES / name) == expected


def test_every_check_has_its_example() -> None:
    assert sorted(CHECKS) == sorted(p.name for p in EXAMPLES.glob("*.yaml"))
