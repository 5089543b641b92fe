"""Several redshift catalogs in one run (issue #28 item 6): each read through its own
convention, duplicates across catalogs kept once, checked against a brute-force combination
(astropy separations, a plain loop over the ranking) and a brute-force crossmatch."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord

import tsm_core
from conftest import scene_config
from helpers import brute_force_match

RADIUS = 1.0  # redshift_duplicates_arcsec


def desi_flag(frame: pd.DataFrame) -> np.ndarray:
    """DESI's homogenized flag, written out (every row primary: no ZCAT_PRIMARY column):
    STAR 6; ZWARN != 0 -> 1; else 4 if ZERR < 0.001, 3 if not."""
    flag = np.where(frame["ZERR"] < 0.001, 4, 3)
    flag = np.where(frame["ZWARN"] != 0, 1, flag)
    return np.where(frame["SPECTYPE"] == "STAR", 6, flag)


def vvds_flag(raw: np.ndarray) -> np.ndarray:
    """VVDS's homogenized flag, written out: the last digit, 0-4 as it is, 9 -> 2, else 0."""
    digit = np.asarray(raw).astype(int) % 10
    return np.where(digit <= 4, digit, np.where(digit == 9, 2, 0))


def _catalogs(scene: dict, base: Path) -> dict:
    """A DESI-convention Parquet file of 500 of the scene's redshifts and a VVDS CSV of 350
    rows: 220 second measurements of DESI sources (150 within 0.9 arcsec, 50 at 1.2-3 arcsec,
    20 at the same place with the same flag and error: ties), and 130 of their own."""
    rng = np.random.default_rng(11)
    z = scene["redshifts"]
    first = z.iloc[:500]
    desi = pd.DataFrame(
        {
            "TARGETID": np.arange(500, dtype=np.int64) + 39_600_000_000_000_000,
            "TARGET_RA": first["ra"].to_numpy(),
            "TARGET_DEC": first["dec"].to_numpy(),
            "Z": first["z"].to_numpy(),
            "ZERR": np.round(rng.choice([0.0002, 0.0005, 0.002], 500), 4),
            "ZWARN": rng.choice([0, 0, 0, 4], 500),
            "SPECTYPE": rng.choice(["GALAXY"] * 9 + ["STAR"], 500),
        }
    )
    pick = rng.permutation(500)[:220]
    offset = np.concatenate([rng.uniform(0.1, 0.9, 150), rng.uniform(1.2, 3.0, 50), np.zeros(20)])
    angle = rng.uniform(0, 2 * np.pi, 220)
    dec = desi["TARGET_DEC"].to_numpy()[pick] + offset * np.sin(angle) / 3600
    ra = desi["TARGET_RA"].to_numpy()[pick] + offset * np.cos(angle) / 3600 / np.cos(np.radians(dec))
    raw = rng.choice([2, 3, 4, 9, 14, 23, 24, 8], 220)
    err = rng.choice([0.0001, 0.0005, 0.003], 220)
    ties = slice(200, 220)  # same flag and error as their DESI twin
    twin_flag = desi_flag(desi.iloc[pick[ties]])
    raw[ties] = np.where(twin_flag == 6, 4, twin_flag)  # a star's twin: 4 (not a tie, ranked above it)
    err[ties] = desi["ZERR"].to_numpy()[pick[ties]]
    others = z.iloc[500:630]
    vvds = pd.DataFrame(
        {
            "id": [f"vvds{i:04d}" for i in range(350)],
            "ra": np.mod(np.concatenate([ra, others["ra"].to_numpy()]), 360),
            "dec": np.concatenate([dec, others["dec"].to_numpy()]),
            "z": np.round(rng.uniform(0.05, 1.5, 350), 4),
            "z_err": np.concatenate([err, rng.choice([0.0001, 0.003], 130)]),
            "z_flag": np.concatenate([raw, rng.choice([3, 4, 23], 130)]),
            "survey": "VVDS",
        }
    )
    paths = {"desi": base / "desi.parquet", "vvds": base / "vvds_wide.csv"}
    desi.to_parquet(paths["desi"], index=False)
    vvds.to_csv(paths["vvds"], index=False)
    return {"desi": desi, "vvds": vvds, "paths": paths}


@pytest.fixture(scope="module")
def catalogs(scene: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _catalogs(scene, tmp_path_factory.mktemp("multicat"))


def _keys(catalogs: dict, order: tuple[str, ...]) -> pd.DataFrame:
    """Both catalogs normalized by hand: catalog, id (text), position, z, homogenized flag, error."""
    desi, vvds = catalogs["desi"], catalogs["vvds"]
    frames = {
        "desi": pd.DataFrame(
            {
                "catalog": "desi",
                "id": desi["TARGETID"].astype(str),
                "ra": desi["TARGET_RA"],
                "dec": desi["TARGET_DEC"],
                "z": desi["Z"],
                "z_flag": desi_flag(desi),
                "z_err": desi["ZERR"],
            }
        ),
        "vvds_wide": pd.DataFrame(
            {
                "catalog": "vvds_wide",
                "id": vvds["id"],
                "ra": vvds["ra"],
                "dec": vvds["dec"],
                "z": vvds["z"],
                "z_flag": vvds_flag(vvds["z_flag"]),
                "z_err": vvds["z_err"],
            }
        ),
    }
    return pd.concat([frames[name] for name in order], ignore_index=True)


def brute_force_combination(keys: pd.DataFrame, radius: float) -> pd.DataFrame:
    """The rule as a plain loop: walk the redshifts best first (flag, a star last; error;
    the catalog listed first; the row); each one not removed removes the redshifts of other
    catalogs within ``radius`` (astropy separations of every pair)."""
    listed = list(dict.fromkeys(keys["catalog"]))
    coords = SkyCoord(keys["ra"].to_numpy() * u.deg, keys["dec"].to_numpy() * u.deg)

    def rank(i: int) -> tuple:
        flag = keys["z_flag"].iat[i]
        return (-(-2 if flag == 6 else flag), keys["z_err"].iat[i], listed.index(keys["catalog"].iat[i]), i)

    removed: set[int] = set()
    for i in sorted(range(len(keys)), key=rank):
        if i in removed:
            continue
        near = np.flatnonzero(coords[i].separation(coords).arcsec <= radius)
        removed.update(int(j) for j in near if keys["catalog"].iat[j] != keys["catalog"].iat[i])
    return keys.drop(index=sorted(removed)).reset_index(drop=True)


def _config(scene: dict, catalogs: dict, out: Path, order: tuple[str, ...] = ("desi", "vvds")) -> dict:
    config = scene_config(scene, out)
    entries = {
        "desi": {"path": str(catalogs["paths"]["desi"])},
        "vvds": {"path": str(catalogs["paths"]["vvds"]), "convention": "vvds"},
    }
    config["redshift_catalog"] = [entries[name] for name in order]
    config["redshift_duplicates_arcsec"] = RADIUS
    return config


def _check_rows(result, expected_keys: pd.DataFrame, scene: dict) -> pd.DataFrame:
    expected = brute_force_match(
        expected_keys.rename(columns={"id": "key"}).assign(id=lambda f: f["catalog"] + "/" + f["key"]),
        scene["objects"],
        3.0,
        1,
    )
    rows = result.to_pandas()
    got = set(zip(rows["catalog"] + "/" + rows["id"].astype(str), rows["objectId"]))
    assert got == set(zip(expected["id"], expected["objectId"]))
    return rows


def test_two_catalogs_against_a_brute_force_combination(scene: dict, catalogs: dict, tmp_path: Path) -> None:
    result = tsm_core.run(_config(scene, catalogs, tmp_path))
    keys = _keys(catalogs, ("desi", "vvds_wide"))
    kept = brute_force_combination(keys, RADIUS)
    assert 100 < len(keys) - len(kept) < 220  # duplicates were found, not all pairs
    rows = _check_rows(result, kept, scene)
    # each row's values are its catalog's, normalized by its own convention
    by_key = kept.set_index(kept["catalog"] + "/" + kept["id"])
    row_keys = rows["catalog"] + "/" + rows["id"].astype(str)
    np.testing.assert_allclose(rows["z"].to_numpy(float), by_key.loc[row_keys, "z"].to_numpy(float))
    np.testing.assert_array_equal(rows["z_flag"].to_numpy(float), by_key.loc[row_keys, "z_flag"].to_numpy(float))
    assert set(rows.loc[rows["catalog"] == "vvds_wide", "survey"]) == {"VVDS"}
    assert rows.loc[rows["catalog"] == "desi", "survey"].isna().all()
