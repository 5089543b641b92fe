"""Dereddening with real dustmaps query classes over map files written by the tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord

import dust_maps
import tsm_core
from helpers import ab_mag, brute_force_match, write_objects
from tsm_core import plugins
from tsm_core.errors import MissingDustMapError

#: DP1 (rubin_sim) coefficients
R = {"u": 4.75721, "g": 3.66056, "r": 2.701367, "i": 2.053659, "z": 1.59009, "y": 1.3077049}

MAPS = {
    "sfd": (dust_maps.write_sfd, lambda l, b: dust_maps.sfd_expected(l, b), 1e-6),
    "csfd": (dust_maps.write_csfd, lambda l, b: dust_maps.healpix_expected(l, b, nest=False), 1e-7),
    "planck": (dust_maps.write_planck, lambda l, b: dust_maps.healpix_expected(l, b, nest=True), 1e-7),
    "planck_gnilc": (
        dust_maps.write_planck_gnilc,
        lambda l, b: dust_maps.healpix_expected(l, b, nest=True, scale=1.49),
        1e-6,
    ),
}


@pytest.fixture(scope="module")
def two_hemispheres(tmp_path_factory):
    """Objects and redshifts in a northern and a southern Galactic field."""
    rng = np.random.default_rng(11)
    rows = []
    for ra0, dec0 in ((150.0, 2.0), (53.1, -28.1)):  # COSMOS (b > 0), ECDFS (b < 0)
        n = 300
        rows.append(
            pd.DataFrame({"coord_ra": ra0 + rng.uniform(-0.2, 0.2, n), "coord_dec": dec0 + rng.uniform(-0.2, 0.2, n)})
        )
    objects = pd.concat(rows, ignore_index=True)
    n = len(objects)
    objects.insert(0, "objectId", np.arange(n, dtype=np.int64) + 10**15)
    for band in R:
        objects[f"{band}_cModelFlux"] = rng.uniform(500, 5000, n).astype(np.float32)
        objects[f"{band}_cModelFluxErr"] = np.full(n, 30, np.float32)
    objects["ebv"] = np.float32(0.02)
    base = tmp_path_factory.mktemp("hemispheres")
    write_objects(objects, base / "objects")
    z = pd.DataFrame({"id": np.arange(n), "ra": objects["coord_ra"] + 1e-5, "dec": objects["coord_dec"], "z": 0.3})
    z.to_parquet(base / "z.parquet")
    gal = SkyCoord(objects["coord_ra"], objects["coord_dec"], unit="deg").galactic
    assert (gal.b.deg > 0).any() and (gal.b.deg < 0).any()
    return {"objects": objects, "redshifts": z, "base": base}


def _config(data, tmp_path, dereddening, maps_dir, convert=True):
    return {
        "name": f"dered {dereddening}",
        "redshift_catalog": {"path": str(data["base"] / "z.parquet")},
        "object_catalog": {
            "release": "dp1",
            "path": str(data["base"] / "objects"),
            "dereddening": dereddening,
            "dust_maps_dir": str(maps_dir),
            "convert_to_magnitudes": convert,
        },
        "crossmatch": {"radius_arcsec": 1.0},
        "output": {"directory": str(tmp_path / "out")},
    }


@pytest.mark.parametrize("name", list(MAPS))
def test_dereddened_magnitudes(name, two_hemispheres, tmp_path):
    write, expected_ebv, tol = MAPS[name]
    write(tmp_path / "maps")
    result = tsm_core.run(_config(two_hemispheres, tmp_path, name, tmp_path / "maps"))
    got = pq.read_table(result.output_path).to_pandas()
    objects = two_hemispheres["objects"]
    merged = brute_force_match(two_hemispheres["redshifts"], objects, 1.0, 1).merge(got, on=["id", "objectId"])
    assert len(merged) == len(objects)
    o = objects.iloc[merged["oi"]]
    gal = SkyCoord(o["coord_ra"].to_numpy(), o["coord_dec"].to_numpy(), unit="deg").galactic
    ebv = expected_ebv(gal.l.deg, gal.b.deg)
    np.testing.assert_allclose(merged["ebv"], ebv, rtol=tol, atol=1e-7)
    for band, r in R.items():
        want = ab_mag(o[f"{band}_cModelFlux"].to_numpy()) - r * ebv
        np.testing.assert_allclose(merged[f"{band}_cModelMag_dered"], want, atol=1e-5)
    prov = result.provenance
    assert name in prov["dereddening"] and prov["extinction_coefficients"]["i"] == R["i"]
    assert "E(B-V) from" in pq.read_schema(result.output_path).field("ebv").metadata[b"description"].decode()


def test_dereddened_fluxes(two_hemispheres, tmp_path):
    dust_maps.write_sfd(tmp_path / "maps")
    got = pq.read_table(
        tsm_core.run(_config(two_hemispheres, tmp_path, "sfd", tmp_path / "maps", convert=False)).output_path
    ).to_pandas()
    objects = two_hemispheres["objects"].set_index("objectId").loc[got["objectId"]]
    factor = 10 ** (0.4 * R["g"] * got["ebv"].to_numpy())
    np.testing.assert_allclose(
        got["g_cModelFlux_dered"], objects["g_cModelFlux"].to_numpy(dtype=float) * factor, rtol=1e-12
    )
    np.testing.assert_allclose(
        got["g_cModelFluxErr_dered"], objects["g_cModelFluxErr"].to_numpy(dtype=float) * factor, rtol=1e-12
    )


def test_missing_map_file_fails_before_work(two_hemispheres, tmp_path):
    maps = tmp_path / "maps"
    dust_maps.write_sfd(maps)
    (maps / "sfd" / "SFD_dust_4096_sgp.fits").unlink()
    with pytest.raises(
        MissingDustMapError, match=r"SFD_dust_4096_sgp.fits; install them with `tsm dustmaps fetch sfd`"
    ) as info:
        tsm_core.run(_config(two_hemispheres, tmp_path, "sfd", maps))
    assert [p.name for p in info.value.missing] == ["SFD_dust_4096_sgp.fits"]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_maps_dir_from_environment(two_hemispheres, tmp_path, monkeypatch):
    dust_maps.write_csfd(tmp_path / "envmaps")
    monkeypatch.setenv("TSM_DUSTMAPS_DIR", str(tmp_path / "envmaps"))
    cfg = _config(two_hemispheres, tmp_path, "csfd", tmp_path)
    del cfg["object_catalog"]["dust_maps_dir"]
    assert tsm_core.run(cfg).n_rows == len(two_hemispheres["objects"])


def test_listing_marks_missing_files(tmp_path):
    dust_maps.write_sfd(tmp_path)
    listed = plugins.dereddeners()
    assert {"none", "catalog", "sfd", "csfd", "planck", "planck_gnilc"} <= set(listed)
    assert listed["sfd"].missing_files(tmp_path) == []
    assert [p.name for p in listed["planck"].missing_files(tmp_path)] == [
        "HFI_CompMap_ThermalDustModel_2048_R1.20.fits"
    ]


def test_map_built_once_per_process(tmp_path):
    from tsm_core.science.dust import DustMapEBV, load_query

    dust_maps.write_sfd(tmp_path)
    load_query.cache_clear()
    source = plugins.dereddener("sfd").source(plugins.object_catalog("dp1"), tmp_path)
    assert isinstance(source, DustMapEBV)
    ra, dec = np.array([150.0, 53.1]), np.array([2.0, -28.1])
    first = source(ra, dec, None)
    source(ra, dec, None)
    assert load_query.cache_info().misses == 1 and load_query.cache_info().hits == 1
    gal = SkyCoord(ra, dec, unit="deg").galactic
    np.testing.assert_allclose(first, dust_maps.sfd_expected(gal.l.deg, gal.b.deg), rtol=1e-6)


@pytest.mark.parametrize("user_has_config", [False, True])
def test_dustmaps_config_untouched(tmp_path, user_has_config):
    """Querying never reads the user's ~/.dustmapsrc for paths nor writes it: in a fresh
    process (dustmaps reads its configuration when first imported) whose home has one
    pointing at other maps, or none."""
    import json
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    home.mkdir()
    rc = home / ".dustmapsrc"
    if user_has_config:
        dust_maps.write_sfd(tmp_path / "other", n=8)  # other maps: other values
        rc.write_text(json.dumps({"data_dir": str(tmp_path / "other")}))
    dust_maps.write_sfd(tmp_path / "maps")
    code = (
        "import numpy as np; from tsm_core import plugins; "
        f"s = plugins.dereddener('sfd').source(plugins.object_catalog('dp1'), __import__('pathlib').Path({str(tmp_path / 'maps')!r})); "
        "print(repr(float(s(np.array([10.0]), np.array([10.0]), None)[0])))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DUSTMAPS_CONFIG_FNAME"} | {"HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    gal = SkyCoord([10.0], [10.0], unit="deg").galactic
    assert float(done.stdout.split()[-1]) == pytest.approx(dust_maps.sfd_expected(gal.l.deg, gal.b.deg)[0], rel=1e-6)
    if user_has_config:
        assert json.loads(rc.read_text()) == {"data_dir": str(tmp_path / "other")}
    else:
        assert not rc.exists()


def test_sfd_files_directly_in_the_maps_dir(two_hemispheres, tmp_path):
    """dust_maps_dir may also be the map's own folder (the files without dustmaps' sfd/ level)."""
    dust_maps.write_sfd(tmp_path / "maps")
    result = tsm_core.run(_config(two_hemispheres, tmp_path, "sfd", tmp_path / "maps" / "sfd"))
    assert result.n_rows == len(two_hemispheres["objects"])
