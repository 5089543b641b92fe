"""Several redshift catalogs in one run (issue #28 item 6): each read through its own
convention, duplicates across catalogs kept once, checked against a brute-force combination
(astropy separations, a plain loop over the ranking) and a brute-force crossmatch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tsm_core
from conftest import scene_config
from helpers import brute_force_combination, brute_force_match
from tsm_core.errors import ConfigError
from tsm_core.pipeline.funnel import Funnel

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
    20 at the same place with the same flag and error: ties), and 130 of their own; plus one
    row with a NaN redshift."""
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
    bad = vvds.iloc[:1].assign(id="vvds_bad", z=np.nan)  # a bad row, dropped and counted
    vvds = pd.concat([vvds, bad], ignore_index=True)
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
    keys = pd.concat([frames[name] for name in order], ignore_index=True)
    return keys[np.isfinite(keys["z"])].reset_index(drop=True)


def _entries(catalogs: dict) -> dict:
    return {
        "desi": {"path": str(catalogs["paths"]["desi"])},
        "vvds": {"path": str(catalogs["paths"]["vvds"]), "convention": "vvds"},
        "vvds_reg": {"name": "vvds_reg"},
    }


@pytest.fixture(scope="module")
def runs(scene: dict, catalogs: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two runs of the two catalogs: both files, DESI listed first; and the VVDS catalog
    registered (stored as HATS, scanned and read partition by partition) listed first,
    before the DESI file under a label."""
    from conftest import isolate
    from tsm_core.redshifts.registration import register_redshift_catalog

    base = tmp_path_factory.mktemp("multicat-runs")
    with pytest.MonkeyPatch.context() as mp:
        isolate(base / "home", mp)
        register_redshift_catalog("vvds_reg", catalogs["paths"]["vvds"], convention="vvds")
        entries = _entries(catalogs)
        out = {}
        for key, listed in {
            "files": [entries["desi"], entries["vvds"]],
            "stored": [entries["vvds_reg"], entries["desi"] | {"label": "DESI DR1"}],
        }.items():
            config = scene_config(scene, base / key) | {"name": key, "redshift_duplicates_arcsec": RADIUS}
            config["filters"] = {"redshift": FILTERS[key]}
            out[key] = tsm_core.run(config | {"redshift_catalog": listed})
    return out


#: the redshift filters of each run (the filters apply before duplicates are looked for)
FILTERS = {"files": [], "stored": ["z_flag >= 1"]}


def _expected(
    catalogs: dict, names: dict[str, str], listed: tuple[str, str], case: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows after bad rows and filters, normalized by hand (catalogs renamed by
    ``names``, in the order ``listed``), and the rows the brute-force combination keeps."""
    keys = _keys(catalogs, ("desi", "vvds_wide"))
    if FILTERS[case]:
        keys = keys[keys["z_flag"] >= 1]
    keys["catalog"] = keys["catalog"].map(names)
    keys = pd.concat([keys[keys["catalog"] == name] for name in listed], ignore_index=True)
    return keys, brute_force_combination(keys, RADIUS)


CASES = {
    "files": ({"desi": "desi", "vvds_wide": "vvds_wide"}, ("desi", "vvds_wide")),
    "stored": ({"desi": "DESI DR1", "vvds_wide": "vvds_reg"}, ("vvds_reg", "DESI DR1")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_two_catalogs_against_a_brute_force_combination(runs: dict, catalogs: dict, scene: dict, case: str) -> None:
    names, listed = CASES[case]
    keys, kept = _expected(catalogs, names, listed, case)
    assert 100 < len(keys) - len(kept) < 220  # duplicates were found, not every pair
    expected = brute_force_match(kept.assign(id=kept["catalog"] + "/" + kept["id"]), scene["objects"], 3.0, 1)
    rows = pd.read_parquet(runs[case].output_path)
    row_keys = rows["catalog"] + "/" + rows["id"].astype(str)
    assert set(zip(row_keys, rows["objectId"])) == set(zip(expected["id"], expected["objectId"]))
    # each row's values are its catalog's, normalized by its own convention
    by_key = kept.set_index(kept["catalog"] + "/" + kept["id"])
    np.testing.assert_allclose(rows["z"].to_numpy(float), by_key.loc[row_keys, "z"].to_numpy(float))
    np.testing.assert_array_equal(rows["z_flag"].to_numpy(float), by_key.loc[row_keys, "z_flag"].to_numpy(float))
    np.testing.assert_allclose(rows["z_err"].to_numpy(float), by_key.loc[row_keys, "z_err"].to_numpy(float))
    assert set(rows.loc[rows["catalog"] == names["vvds_wide"], "survey"]) == {"VVDS"}
    assert rows.loc[rows["catalog"] == names["desi"], "survey"].isna().all()  # DESI files have no survey column


@pytest.mark.parametrize("case", list(CASES))
def test_ties_go_to_the_catalog_listed_first(runs: dict, catalogs: dict, case: str) -> None:
    """The 20 VVDS redshifts at the place of a DESI one with the same flag and error (a DESI
    star's twin has flag 4 and wins): the twin of the catalog listed first is kept."""
    names, listed = CASES[case]
    vvds, desi = catalogs["vvds"].iloc[200:220], catalogs["desi"]
    twins = desi.set_index(desi["TARGET_RA"].round(9))  # the twins sit exactly at the DESI position
    star = (twins.loc[vvds["ra"].round(9), "SPECTYPE"] == "STAR").to_numpy()
    rows = pd.read_parquet(runs[case].output_path, columns=["catalog", "id"])
    written = set(zip(rows["catalog"], rows["id"].astype(str)))
    twin_ids = twins.loc[vvds["ra"].round(9), "TARGETID"].astype(str).to_numpy()
    for vid, did, is_star in zip(vvds["id"], twin_ids, star):
        winner = names["vvds_wide"] if is_star or listed[0] == names["vvds_wide"] else names["desi"]
        loser = (names["desi"], did) if winner == names["vvds_wide"] else (names["vvds_wide"], vid)
        assert loser not in written  # removed as a duplicate (the winner may have no object)


@pytest.mark.parametrize("case", list(CASES))
def test_funnel_and_provenance_count_each_catalog(runs: dict, catalogs: dict, case: str) -> None:
    names, listed = CASES[case]
    keys, kept = _expected(catalogs, names, listed, case)
    result = runs[case]
    funnel = {s["key"]: s for s in result.funnel["steps"]}
    read = {names["desi"]: 500, names["vvds_wide"]: 351}
    assert funnel["read"]["count"] == 851 and funnel["read"]["by_catalog"] == read
    assert funnel["bad_rows:non-finite z"]["by_catalog"] == {names["vvds_wide"]: 1}
    everything = _keys(catalogs, ("desi", "vvds_wide")).assign(catalog=lambda f: f["catalog"].map(names))
    if FILTERS[case]:
        step = funnel["filter:z_flag >= 1"]
        assert step["by_catalog"] == (everything["z_flag"] < 1).groupby(everything["catalog"]).sum().to_dict()
    # read, then bad rows, then the filters, then the duplicates
    order = ["read", "bad_rows:non-finite z", *(f"filter:{f}" for f in FILTERS[case]), "duplicates"]
    assert list(funnel)[: len(order)] == order
    removed = keys.groupby("catalog").size() - kept.groupby("catalog").size()
    assert funnel["duplicates"]["count"] == len(keys) - len(kept)
    assert funnel["duplicates"]["by_catalog"] == {name: int(removed[name]) for name in listed}
    assert funnel["duplicates"]["remaining"] == len(kept) == result.n_redshifts
    lines = "\n".join(Funnel.from_dict(result.funnel).lines())
    assert f"{names['desi']}: 500 read, -{removed[names['desi']]} duplicates" in lines
    prov = result.provenance
    assert [(c["catalog"], c["convention"], c["rows_read"], c["duplicates"]) for c in prov["redshift_catalogs"]] == [
        (name, "desi" if name == names["desi"] else "vvds", read[name], int(removed[name])) for name in listed
    ]
    assert prov["config"]["redshift_duplicates_arcsec"] == RADIUS


def test_a_single_catalog_is_read_as_before(base_config: dict) -> None:
    from tsm_core.config import load_config

    one = load_config(base_config)
    listed = load_config(base_config | {"redshift_catalog": [base_config["redshift_catalog"]]})
    assert isinstance(one.model_dump()["redshift_catalog"], dict)
    assert one.redshift_catalogs == listed.redshift_catalogs


def test_config_errors_name_the_catalog_of_the_list(base_config: dict, tmp_path: Path) -> None:
    import shutil

    from tsm_core.config import load_config
    from tsm_core.pipeline.main import prepare

    source = base_config["redshift_catalog"]
    with pytest.raises(ConfigError) as err:  # one file twice: refused before it is read
        prepare(base_config | {"redshift_catalog": [source, source | {"label": "b"}]})
    assert err.value.key == "redshift_catalog.1" and "the same catalog as redshift_catalog.0" in str(err.value)
    (tmp_path / "copy").mkdir()
    twin = source | {"path": shutil.copy(source["path"], tmp_path / "copy")}  # another file of the same stem
    with pytest.raises(ConfigError) as err:
        load_config(base_config | {"redshift_catalog": [source, {"nam": "x"}]})
    assert err.value.key == "redshift_catalog.1.nam" and "did you mean 'name'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(base_config | {"redshift_catalog": []})
    assert err.value.key == "redshift_catalog"
    with pytest.raises(ConfigError) as err:  # two files of one stem
        prepare(base_config | {"redshift_catalog": [source, twin]})
    assert err.value.key == "redshift_catalog.1.label" and "give one a label" in str(err.value)
    with pytest.raises(ConfigError) as err:  # each catalog's own checks, named by its place
        prepare(base_config | {"redshift_catalog": [source, twin | {"label": "b", "keep_columns": ["nope"]}]})
    assert err.value.key == "redshift_catalog.1.keep_columns"
    with pytest.raises(ConfigError) as err:  # a filter on a column a catalog lacks names that catalog
        prepare(base_config | {"redshift_catalog": [source], "filters": {"redshift": ["SPECTYPE == 'GALAXY'"]}})
    single = err.value.message
    with pytest.raises(ConfigError) as err:
        prepare(
            base_config
            | {"redshift_catalog": [source, twin | {"label": "b"}], "filters": {"redshift": ["SPECTYPE == 'GALAXY'"]}}
        )
    assert err.value.message == f"{single} (in redshift_catalog.0, {source['path']})"
    with pytest.raises(ConfigError) as err:  # not yet with several catalogs, refused before any read
        prepare(base_config | {"redshift_catalog": [source, source | {"label": "b"}], "output": {"unmatched": True}})
    assert err.value.key == "output.unmatched"
    # relative paths of every catalog resolve against the YAML file's folder
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "run.yaml").write_text(
        "name: x\nredshift_catalog:\n  - {path: a.parquet}\n  - {path: ../b.csv, label: b}\n"
    )
    paths = [c.path for c in load_config(tmp_path / "cfg" / "run.yaml").redshift_catalogs]
    assert paths == [str(tmp_path / "cfg" / "a.parquet"), str(tmp_path / "b.csv")]


def test_every_catalog_of_a_list_is_bounded_by_the_trust_rules(scene: dict, tmp_path: Path) -> None:
    """A web client may not give a path in any catalog of the list, and may build only from
    its own registered catalogs and the official ones, each of the list checked."""
    from tsm_core import service
    from tsm_core.errors import TSMError
    from tsm_core.redshifts.registration import register_redshift_catalog
    from tsm_web.trust import OperatorSettings, client_config, public_config, redact_provenance

    operator = OperatorSettings(release_paths={"dp1": str(scene["objects_path"])})
    with pytest.raises(ConfigError) as err:
        client_config({"name": "x", "redshift_catalog": [{"name": "a"}, {"path": "/etc/passwd"}]}, operator)
    assert err.value.key == "redshift_catalog.path"
    assert public_config({"redshift_catalog": [{"path": "/srv/a"}, {"id": 3}]})["redshift_catalog"] == [{}, {"id": 3}]
    small = scene["redshifts"].iloc[:10]
    small.to_csv(tmp_path / "small.csv", index=False)
    for name, owner in (("alices", "alice"), ("bobs", "bob"), ("official", None)):
        register_redshift_catalog(name, tmp_path / "small.csv", owner=owner)
    config = {"name": "x", "redshift_catalog": [{"name": "alices"}, {"name": "official"}]}
    plan, _ = service.submit(client_config(config, operator), owner="alice")
    assert [c["catalog"] for c in plan.redshifts.sources()] == ["alices", "official"]
    config["redshift_catalog"].append({"name": "bobs"})
    with pytest.raises(TSMError, match="bobs"):
        service.submit(client_config(config, operator), owner="alice")
    # what the client reads back names each catalog by its registration, never where it is stored
    from tsm_core.pipeline.provenance import provenance

    redacted = redact_provenance(provenance(plan, 1, "now"))
    assert str(tmp_path) in str(provenance(plan, 1, "now")["redshift_catalogs"])  # the operator's copy says where
    assert str(tmp_path) not in str(redacted["redshift_catalogs"]) + str(redacted["redshift_catalog"])
    assert [c["source"] for c in redacted["redshift_catalogs"]] == [
        "registered catalog 'alices'",
        "registered catalog 'official'",
    ]


def test_a_catalog_the_filters_empty_is_left_out_of_the_match(scene: dict, tmp_path: Path) -> None:
    z = scene["redshifts"]
    z[z["z"] < 0.8].to_parquet(tmp_path / "low.parquet")
    z[z["z"] >= 1.2].to_parquet(tmp_path / "high.parquet")
    config = scene_config(scene, tmp_path / "out")
    config["redshift_catalog"] = [{"path": str(tmp_path / "low.parquet")}, {"path": str(tmp_path / "high.parquet")}]
    config["filters"] = {"redshift": ["z > 1"]}
    result = tsm_core.run(config)
    expected = brute_force_match(z[z["z"] >= 1.2], scene["objects"], 3.0, 1)
    rows = pd.read_parquet(result.output_path)
    assert set(zip(rows["id"], rows["objectId"])) == set(zip(expected["id"], expected["objectId"]))
    assert set(rows["catalog"]) == {"high"}
    assert [c["kept"] for c in result.provenance["redshift_catalogs"]] == [0, int((z["z"] >= 1.2).sum())]


def test_the_duplicate_rule_on_three_catalogs_with_ties_stars_and_missing_values() -> None:
    """The KD-tree rounds against the plain loop: 3 catalogs crowded into 40 arcsec, flags
    with stars and NaN, errors with ties and NaN."""
    from tsm_core.redshifts.duplicates import duplicate_mask

    rng = np.random.default_rng(5)
    n = 240
    keys = pd.DataFrame(
        {
            "catalog": np.sort(rng.integers(0, 3, n)),  # listed in order 0, 1, 2
            "ra": rng.uniform(150, 150 + 40 / 3600, n),
            "dec": rng.uniform(2, 2 + 40 / 3600, n),
            "z_flag": rng.choice([1.0, 3.0, 4.0, 6.0, np.nan], n),
            "z_err": rng.choice([1e-3, 2e-3, np.nan], n),
        }
    )
    got = duplicate_mask(*(keys[c].to_numpy() for c in ("ra", "dec", "z_flag", "z_err", "catalog")), 2.0)
    kept = brute_force_combination(keys.assign(row=np.arange(n)), 2.0)
    assert 50 < got.sum() < n - 50
    np.testing.assert_array_equal(np.flatnonzero(~got), kept["row"].to_numpy())


def test_a_long_chain_of_overlapping_redshifts_is_walked_once() -> None:
    """Redshifts 5 arcsec apart along the equator, alternating between two catalogs, each
    worse than the last (a chain as long as the catalog): the rule as a plain loop over the
    ranking gives the same duplicates, and 100,000 of them take well under the seconds the
    round-by-round walk took."""
    import time

    from astropy.coordinates import SkyCoord

    from tsm_core.redshifts.duplicates import duplicate_mask

    def loop(ra, dec, flag, err, catalog, radius):
        sky = SkyCoord(ra, dec, unit="deg")
        kept: list[int] = []
        dropped = np.zeros(len(ra), dtype=bool)
        for i in sorted(range(len(ra)), key=lambda i: (-flag[i], err[i], catalog[i], i)):
            near = [k for k in kept if catalog[k] != catalog[i] and sky[k].separation(sky[i]).arcsec < radius]
            dropped[i] = bool(near)
            if not near:
                kept.append(i)
        return dropped

    for n in (300, 100_000):
        ra = (np.arange(n) * 5.0 / 3600 + 359.9) % 360  # across RA 0/360
        dec = np.zeros(n)
        catalog = np.arange(n) % 2
        err = np.arange(n, dtype=float) * 1e-4
        flag = np.full(n, 4.0)
        started = time.perf_counter()
        got = duplicate_mask(ra, dec, flag, err, catalog, 6.0)
        if n <= 300:
            np.testing.assert_array_equal(got, loop(ra, dec, flag, err, catalog, 6.0))
        else:
            assert time.perf_counter() - started < 10
            np.testing.assert_array_equal(got, np.arange(n) % 2 == 1)  # every other one, as the loop gives
