"""LIneA's `pzserver` client (0.3.7, installed with --no-deps by `make install`) against a real
`tsm serve`, exactly as a user's notebook drives it: upload redshift catalogs with their column
association, run the Training Set Maker, poll, read and download the product.

The object catalog is a small DP1-shaped HATS catalog around the real DESI DR1 sample's
positions, chosen by the operator (TSM_DP1_PATH in the server's environment), never by the
client. The matches are checked against an astropy brute-force match of the same inputs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from helpers import DP1_BANDS, ab_mag, brute_force_match, select_unique, write_objects

pzserver = pytest.importorskip("pzserver", reason="the pzserver client is installed by `make install`")

ADMIN_TOKEN = "admin-s3cret"
DESI_ASSOCIATION = {"TARGETID": "id", "TARGET_RA": "ra", "TARGET_DEC": "dec", "Z": "z", "ZERR": "z_err",
                    "ZWARN": "z_flag"}
OWN_ASSOCIATION = {"SPEC_ID": "id", "RA_DEG": "ra", "DEC_DEG": "dec", "ZSPEC": "z", "ZQUAL": "z_flag"}


def _objects_around(ra: np.ndarray, dec: np.ndarray, seed: int = 11) -> pd.DataFrame:
    """DP1-shaped objects: 0-3 within ~2 arcsec of each position, plus a uniform background."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 4, len(ra))
    near = np.repeat(np.arange(len(ra)), k)
    odec = dec[near] + rng.normal(0, 0.8 / 3600, len(near))
    ora = ra[near] + rng.normal(0, 0.8 / 3600, len(near)) / np.cos(np.radians(odec))
    n_bg = 3000
    bra = rng.uniform(ra.min() - 0.05, ra.max() + 0.05, n_bg)
    bdec = rng.uniform(dec.min() - 0.05, dec.max() + 0.05, n_bg)
    ora, odec = np.concatenate([ora, bra]), np.concatenate([odec, bdec])
    n = len(ora)
    objects = pd.DataFrame({
        "objectId": 592_914_119_181_000_000 + rng.permutation(n).astype(np.int64),
        "coord_ra": ora,
        "coord_dec": odec,
    })
    for band in DP1_BANDS:
        flux = rng.lognormal(np.log(3000), 1.2, n) - 200
        flux[rng.uniform(0, 1, n) < 0.05] = np.nan
        objects[f"{band}_cModelFlux"] = flux.astype(np.float32)
        objects[f"{band}_cModelFluxErr"] = np.abs(rng.normal(60, 10, n)).astype(np.float32)
    objects["ebv"] = rng.uniform(0.02, 0.08, n).astype(np.float32)
    objects["refExtendedness"] = rng.choice([0.0, 1.0], n).astype(np.float32)
    return objects


@pytest.fixture(scope="module")
def world(tmp_path_factory, reference) -> dict:
    """The DESI sample, a second redshift file with its own column names, and the HATS objects."""
    base = tmp_path_factory.mktemp("pz-world")
    desi_path = reference / "desi_dr1_dp1_fields_sample.parquet"
    desi = pd.read_parquet(desi_path)
    objects = _objects_around(desi["TARGET_RA"].to_numpy(), desi["TARGET_DEC"].to_numpy())
    write_objects(objects, base / "dp1_objects", margin_arcsec=10.0, partition_rows=1500)
    # a catalog of its own: 300 spectra at objects' positions (within 0.3 arcsec), own names, CSV
    rng = np.random.default_rng(5)
    pick = rng.choice(len(objects), 300, replace=False)
    own = pd.DataFrame({
        "SPEC_ID": [f"S{i:04d}" for i in range(300)],
        "RA_DEG": objects["coord_ra"].to_numpy()[pick] + rng.normal(0, 0.1 / 3600, 300),
        "DEC_DEG": objects["coord_dec"].to_numpy()[pick] + rng.normal(0, 0.1 / 3600, 300),
        "ZSPEC": np.round(rng.uniform(0.05, 1.5, 300), 4),
        "ZQUAL": rng.choice([1, 2, 3, 4], 300),
    })
    own_path = base / "my spectra.csv"
    own.to_csv(own_path, index=False)
    return {"desi": desi, "desi_path": desi_path, "own": own, "own_path": own_path, "objects": objects,
            "objects_path": base / "dp1_objects"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tsm(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "tsm_core", *args], env=env, capture_output=True, text=True,
                          check=True)
    return done.stdout


@pytest.fixture
def server(world, tsm_home):
    """A real `tsm serve` on 127.0.0.1 and two users made with `tsm users add`."""
    env = dict(os.environ, TSM_HOME=str(tsm_home), TSM_DP1_PATH=str(world["objects_path"]),
               TSM_API_TOKEN=ADMIN_TOKEN)
    tokens = {name: _tsm(env, "users", "add", name).strip().splitlines()[-1] for name in ("alice", "bob")}
    assert "alice" in _tsm(env, "users", "list")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tsm_core", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(url + "/api/formats", timeout=1)
            break
        except requests.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"tsm serve did not start: {proc.stdout.read() if proc.stdout else ''}")
            time.sleep(0.2)
    yield {"url": url, "api": url + "/api/", "tokens": tokens, "env": env, "home": tsm_home}
    proc.terminate()
    proc.wait(timeout=20)


def _upload(pz, name: str, path: Path, association: dict[str, str]) -> int:
    upload = pz.upload(name=name, product_type="redshift_catalog", main_file=str(path), release="dp1",
                       description=f"{name}, uploaded by the test")
    assert set(association) <= set(upload.columns)
    upload.make_columns_association(association)
    assert upload.check_required_columns()["success"]
    upload.save()
    return upload.product_id


def _run(pz, name: str, redshift_id: int, config: dict) -> dict:
    tsm = pz.training_set_maker(name)
    tsm.set_redshift(redshift_id)
    tsm.set_release("dp1")
    tsm.set_config(config)
    tsm.run()
    deadline = time.monotonic() + 180
    while (status := tsm.check_status()) not in ("Successful", "Failed"):
        assert status in ("Pending", "Running"), status
        assert time.monotonic() < deadline, "the training set did not finish"
        time.sleep(0.5)
    assert status == "Successful", tsm.process
    return tsm.output


def _frame(table) -> pd.DataFrame:
    return table.to_pandas().reset_index(drop=True)


def test_client_notebook_flow(server, world, tmp_path):
    pz = pzserver.PzServer(token=server["tokens"]["alice"], host=server["api"])
    assert "dp1" in [r["name"] for r in pz.get_releases()]
    assert [t["name"] for t in pz.get_product_types()][:2] == ["redshift_catalog", "training_set"]

    desi_id = _upload(pz, "DESI DR1 in DP1", world["desi_path"], DESI_ASSOCIATION)
    own_id = _upload(pz, "My spectra", world["own_path"], OWN_ASSOCIATION)
    mine = {p["id"]: p for p in pz.get_products_list()}
    assert mine[desi_id]["status"] == 1 and mine[desi_id]["uploaded_by"] == "alice"
    info = pz.get_product_metadata(desi_id)
    assert info["main_file"]["n_rows"] == len(world["desi"])
    assert {c["column_name"]: c["alias"] for c in info["main_file"]["columns_association"]}["TARGET_RA"] == "RA"

    # 1. the DESI sample, every match within 1.5 arcsec (2 neighbours), flux type in another case
    out = _run(pz, "desi training set", desi_id, {
        "flux_type": "CMODEL", "crossmatch": {"radius_arcsec": 1.5, "n_neighbors": 2},
        "duplicate_criteria": "none", "dereddening": "none", "convert_flux_to_mag": True, "output_format": "parquet",
    })
    meta = pz.get_product_metadata(out["id"])
    assert meta["product_type_internal_name"] == "training_set" and meta["status"] == 1
    assert meta["internal_name"] == out["internal_name"] and meta["is_owner"]
    got = _frame(pz.get_product(out["id"]))
    server_file = server["home"] / "products" / meta["main_file"]["name"]
    on_server = pd.read_parquet(server_file)
    pd.testing.assert_frame_equal(got, on_server, check_dtype=False)

    desi = world["desi"].rename(columns={"TARGETID": "id", "TARGET_RA": "ra", "TARGET_DEC": "dec"})
    expected = brute_force_match(desi, world["objects"], 1.5, 2)
    assert len(expected) > 500
    assert sorted(zip(got["id"], got["objectId"])) == sorted(zip(expected["id"], expected["objectId"]))
    merged = expected.merge(got, on=["id", "objectId"])
    np.testing.assert_allclose(merged["_dist_arcsec"], merged["dist"], atol=1e-6)
    objects = world["objects"].iloc[merged["oi"]]
    np.testing.assert_allclose(merged["r_cModelMag"], ab_mag(objects["r_cModelFlux"].to_numpy()), atol=1e-5)

    pz.download_product(out["id"], save_in=str(tmp_path))
    archive = tmp_path / f"{out['internal_name']}.zip"
    with zipfile.ZipFile(archive) as zf:
        zf.extract(server_file.name, tmp_path / "unzipped")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "unzipped" / server_file.name), on_server)

    # 2. the catalog with its own names: closest pairs, dereddened with SFD (the DP1 ebv column)
    out2 = _run(pz, "own set", own_id, {
        "flux_type": "cModel", "crossmatch": {"radius_arcsec": 2.0, "n_neighbors": 3},
        "duplicate_criteria": "closest", "dereddening": "sfd",
    })
    got2 = _frame(pz.get_product(out2["id"]))
    own = world["own"].rename(columns={"SPEC_ID": "id", "RA_DEG": "ra", "DEC_DEG": "dec", "ZSPEC": "z",
                                       "ZQUAL": "z_flag"})
    pairs = brute_force_match(own, world["objects"], 2.0, 3)
    kept = select_unique(pairs.to_dict("records"), "closest")
    assert set(zip(got2["id"], got2["objectId"])) == kept and len(got2) == len(kept) > 250
    m2 = pairs.merge(got2, on=["id", "objectId"])
    o2 = world["objects"].iloc[m2["oi"]]
    np.testing.assert_allclose(
        m2["i_cModelMag_dered"], ab_mag(o2["i_cModelFlux"].to_numpy()) - 2.053659 * o2["ebv"].to_numpy(dtype=float),
        atol=1e-5)

    # another user sees neither the uploads nor the training sets, and cannot read them
    other = pzserver.PzServer(token=server["tokens"]["bob"], host=server["api"])
    assert not {desi_id, own_id, out["id"], out2["id"]} & {p["id"] for p in other.get_products_list()}
    for product_id in (desi_id, out["id"]):
        with pytest.raises(ValueError, match="product not found"):
            other.get_product_metadata(product_id)
        assert requests.get(f"{server['api']}products/{product_id}/download/main-file/file/",
                            headers={"Authorization": f"Token {server['tokens']['bob']}"}).status_code == 404
    with pytest.raises(requests.RequestException, match="Not found"):
        other.training_set_maker("stolen").set_redshift(desi_id)
    # the admin token sees them all
    admin = pzserver.PzServer(token=ADMIN_TOKEN, host=server["api"])
    assert {desi_id, own_id, out["id"], out2["id"]} <= {p["id"] for p in admin.get_products_list()}
