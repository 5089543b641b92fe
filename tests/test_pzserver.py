"""LIneA's `pzserver` client (0.3.7, installed with --no-deps by `make install`) against a real
`tsm serve`, exactly as a user's notebook drives it: upload redshift catalogs with their column
association, run the Training Set Maker, poll, read and download the product.

The object catalog is a small DP1-shaped HATS catalog around the real DESI DR1 sample's
positions, chosen by the operator (TSM_DP1_PATH in the server's environment), never by the
client. The matches are checked against an astropy brute-force match of the same inputs.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from helpers import DP1_BANDS, ab_mag, brute_force_match, select_unique, tsm_serve, write_objects

pzserver = pytest.importorskip("pzserver", reason="the pzserver client is installed by `make install`")

ADMIN_TOKEN = "admin-s3cret"
DESI_ASSOCIATION = {
    "TARGETID": "id",
    "TARGET_RA": "ra",
    "TARGET_DEC": "dec",
    "Z": "z",
    "ZERR": "z_err",
    "ZWARN": "z_flag",
}
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
    objects = pd.DataFrame(
        {
            "objectId": 592_914_119_181_000_000 + rng.permutation(n).astype(np.int64),
            "coord_ra": ora,
            "coord_dec": odec,
        }
    )
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
    own = pd.DataFrame(
        {
            "SPEC_ID": [f"S{i:04d}" for i in range(300)],
            "RA_DEG": objects["coord_ra"].to_numpy()[pick] + rng.normal(0, 0.1 / 3600, 300),
            "DEC_DEG": objects["coord_dec"].to_numpy()[pick] + rng.normal(0, 0.1 / 3600, 300),
            "ZSPEC": np.round(rng.uniform(0.05, 1.5, 300), 4),
            "ZQUAL": rng.choice([1, 2, 3, 4], 300),
        }
    )
    own_path = base / "my spectra.csv"
    own.to_csv(own_path, index=False)
    return {
        "desi": desi,
        "desi_path": desi_path,
        "own": own,
        "own_path": own_path,
        "objects": objects,
        "objects_path": base / "dp1_objects",
    }


@pytest.fixture
def server(world, tsm_home):
    """A real `tsm serve` on 127.0.0.1 and two users (as `tsm users add` makes them)."""
    from tsm_core.products.registry import Registry
    from tsm_web.users import Users

    env = dict(os.environ, TSM_HOME=str(tsm_home), TSM_DP1_PATH=str(world["objects_path"]), TSM_API_TOKEN=ADMIN_TOKEN)
    tokens = {name: Users(Registry.at_home(tsm_home)).add(name)[1] for name in ("alice", "bob")}
    with tsm_serve(env) as url:
        yield {"url": url, "api": url + "/api/", "tokens": tokens, "env": env, "home": tsm_home}


def _upload(pz, name: str, path: Path, association: dict[str, str]) -> int:
    upload = pz.upload(
        name=name,
        product_type="redshift_catalog",
        main_file=str(path),
        release="dp1",
        description=f"{name}, uploaded by the test",
    )
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
    out = _run(
        pz,
        "desi training set",
        desi_id,
        {
            "flux_type": "CMODEL",
            "crossmatch": {"radius_arcsec": 1.5, "n_neighbors": 2},
            "duplicate_criteria": "none",
            "dereddening": "none",
            "convert_flux_to_mag": True,
            "output_format": "parquet",
        },
    )
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
    out2 = _run(
        pz,
        "own set",
        own_id,
        {
            "flux_type": "cModel",
            "crossmatch": {"radius_arcsec": 2.0, "n_neighbors": 3},
            "duplicate_criteria": "closest",
            "dereddening": "sfd",
        },
    )
    got2 = _frame(pz.get_product(out2["id"]))
    own = world["own"].rename(
        columns={"SPEC_ID": "id", "RA_DEG": "ra", "DEC_DEG": "dec", "ZSPEC": "z", "ZQUAL": "z_flag"}
    )
    pairs = brute_force_match(own, world["objects"], 2.0, 3)
    kept = select_unique(pairs.to_dict("records"), "closest")
    assert set(zip(got2["id"], got2["objectId"])) == kept and len(got2) == len(kept) > 250
    m2 = pairs.merge(got2, on=["id", "objectId"])
    o2 = world["objects"].iloc[m2["oi"]]
    np.testing.assert_allclose(
        m2["i_cModelMag_dered"],
        ab_mag(o2["i_cModelFlux"].to_numpy()) - 2.053659 * o2["ebv"].to_numpy(dtype=float),
        atol=1e-5,
    )

    # another user sees neither the uploads nor the training sets, and cannot read them
    other = pzserver.PzServer(token=server["tokens"]["bob"], host=server["api"])
    assert not {desi_id, own_id, out["id"], out2["id"]} & {p["id"] for p in other.get_products_list()}
    for product_id in (desi_id, out["id"]):
        with pytest.raises(ValueError, match="product not found"):
            other.get_product_metadata(product_id)
        assert (
            requests.get(
                f"{server['api']}products/{product_id}/download/main-file/file/",
                headers={"Authorization": f"Token {server['tokens']['bob']}"},
            ).status_code
            == 404
        )
    with pytest.raises(requests.RequestException, match="Not found"):
        other.training_set_maker("stolen").set_redshift(desi_id)
    # the admin token sees them all
    admin = pzserver.PzServer(token=ADMIN_TOKEN, host=server["api"])
    assert {desi_id, own_id, out["id"], out2["id"]} <= {p["id"] for p in admin.get_products_list()}


# -- the API in detail, through FastAPI's test client (no client library, no server process) -------------------
@pytest.fixture
def api(tsm_home):
    from fastapi.testclient import TestClient

    from tsm_core.products.registry import Registry
    from tsm_web import create_app
    from tsm_web.users import Users

    registry = Registry.at_home(tsm_home)
    tokens = {name: Users(registry).add(name)[1] for name in ("alice", "bob")}
    with TestClient(create_app(max_upload_mb=1, token=ADMIN_TOKEN)) as client:
        client.tokens = tokens
        yield client


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def _http_upload(
    api,
    token: str,
    frame: pd.DataFrame,
    association: dict[str, str],
    name: str = "cat",
    filename: str = "cat.csv",
    publish: bool = True,
) -> int:
    h = _auth(token)
    created = api.post(
        "/api/products/",
        json={"display_name": name, "product_type": 1, "release": None, "official_product": False, "status": 0},
        headers=h,
    )
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    sent = api.post(
        "/api/product-files/",
        data={"product": pid, "role": 0},
        files={"file": (filename, frame.to_csv(index=False).encode(), "text/csv")},
        headers=h,
    )
    assert sent.status_code == 201, sent.text
    assert api.get(f"/api/products/{pid}/registry/", headers=h).status_code == 200
    columns = {
        c["column_name"]: c["id"] for c in api.get(f"/api/product-contents/?product={pid}", headers=h).json()["results"]
    }
    for column, alias in association.items():
        assert (
            api.patch(f"/api/product-contents/{columns[column]}/", data={"alias": alias}, headers=h).status_code == 200
        )
    if publish:
        done = api.patch(f"/api/products/{pid}/", data={"status": 1}, headers=h)
        assert done.status_code == 200 and done.json()["status"] == 1, done.text
    return pid


def test_old_routes_kept_and_trailing_slashes(api):
    admin = _auth(ADMIN_TOKEN)
    old = api.get("/api/releases", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert old.status_code == 200 and isinstance(old.json(), list)  # the tool's own API, unchanged
    assert api.get("/api/training-sets", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json() == []
    assert api.get("/api/formats").status_code == 401
    assert (
        api.get("/api/training-sets/", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, follow_redirects=True).json()
        == []
    )  # Starlette's slash redirect still reaches the old route
    page = api.get("/api/releases/", headers=admin).json()
    assert set(page) == {"count", "next", "previous", "results"} and "dp1" in [r["name"] for r in page["results"]]
    assert api.get("/api/releases/?name=dp1", headers=admin).json()["count"] == 1
    assert api.get("/api/product-types", headers=admin, follow_redirects=True).json()["count"] == 7
    assert api.get("/api//products/?status=1", headers=admin).json()["count"] == 0  # the client's double slash
    root = api.get("/api/", headers=admin).json()
    assert root["products"].endswith("/api/products/")
    assert api.get("/api/releases/", headers={"Authorization": "Token nope"}).json() == {"detail": "Invalid token."}
    assert api.get("/api/releases/").status_code == 401
    assert [u["username"] for u in api.get("/api/users/", headers=_auth(api.tokens["bob"])).json()["results"]] == [
        "bob"
    ]
    assert api.get("/api/users/", headers=admin).json()["count"] == 2
    tsm = api.get("/api/pipelines/?name=training_set_maker", headers=admin).json()["results"][0]
    assert tsm["product_types_accepted"] == [1] and tsm["output_product_type"] == 2
    assert tsm["system_config"]["param"]["crossmatch"] == {"radius_arcsec": 1.0, "n_neighbors": 1}


def test_pagination(api):
    h = _auth(api.tokens["alice"])
    first = api.get("/api/product-types/?ordering=order&page_size=3", headers=h).json()
    assert first["count"] == 7 and len(first["results"]) == 3 and first["previous"] is None
    assert [t["order"] for t in first["results"]] == [1, 2, 3]
    third = api.get(first["next"].replace("page=2", "page=3"), headers=h).json()
    assert len(third["results"]) == 1 and third["next"] is None
    assert api.get("/api/product-types/?page=9", headers=h).status_code == 404


def test_process_options_refused_with_the_field_named(api, scene, tsm_home, monkeypatch):
    monkeypatch.setenv("TSM_DP1_PATH", str(scene["objects_path"]))
    h = _auth(api.tokens["alice"])
    z = scene["redshifts"].rename(columns={"ra": "RA_DEG", "dec": "DEC_DEG", "z": "ZSPEC"})
    pid = _http_upload(api, api.tokens["alice"], z, {"RA_DEG": "ra", "DEC_DEG": "dec", "ZSPEC": "z", "id": "ID"})
    dp1 = api.get("/api/releases/?name=dp1", headers=h).json()["results"][0]["id"]

    def process(param=None, **extra):
        body = {
            "pipeline": 1,
            "display_name": "x",
            "release": dp1,
            "inputs": [pid],
            "used_config": {"param": param or {}, **extra.pop("top", {})},
            **extra,
        }
        return api.post("/api/processes/", json=body, headers=h)

    cases = [
        (process({"flux_type": "bogus"}), "flux_type"),
        (process({"dereddening": "magic"}), "dereddening"),
        (process({"duplicate_criteria": "random"}), "duplicate_criteria"),
        (process({"convert_flux_to_mag": "yes"}), "convert_flux_to_mag"),
        (process(top={"output_format": "xls"}), "output_format"),
        (process({"output_dir": "/tmp/evil"}), "output_dir"),
        (process({"object_catalog": {"path": "/etc"}}), "object_catalog"),
        (process(top={"inputs": {"dataset": {"path": "/etc"}}}), "inputs"),
        (process(top={"compute": {"scheduler": "tcp://evil:8786"}}), "compute"),
        (process(release=99), "release"),
        (process(inputs=[12345]), "inputs"),
        (process(pipeline=7), "pipeline"),
        (process(display_name=" "), "display_name"),
    ]
    for answer, field in cases:
        assert answer.status_code == 400 and field in answer.json(), (field, answer.text)
        assert str(tsm_home) not in answer.text and "/tmp" not in answer.text and "/etc" not in answer.text
    bad_radius = process({"crossmatch": {"radius_arcsec": -1}})
    assert bad_radius.json() == {"crossmatch": {"radius_arcsec": ["Input should be greater than 0, not -1"]}}
    assert process({"crossmatch": {"radius_arcsec": 1, "margin": "/x"}}).json()["crossmatch"] == {
        "margin": ["unknown key; valid: radius_arcsec, n_neighbors"]
    }
    assert process({"flux_type": "bogus"}).json()["flux_type"][0].startswith("unknown value 'bogus'; valid: cModel")
    assert not list((tsm_home / "products").glob("*")) if (tsm_home / "products").exists() else True
    assert api.get("/api/processes/", headers=h).json()["count"] == 0

    # a good one: the config the server built holds only the science options, and its own locations
    ok = api.post(
        "/api/processes/",
        json={
            "pipeline": 1,
            "display_name": "good",
            "release": dp1,
            "inputs": [pid],
            "used_config": json.dumps({"param": {"flux_type": "gaap1P0"}}),
        },
        headers=h,
    )
    assert ok.status_code == 201, ok.text
    from tsm_core.products.registry import Registry

    record = Registry.at_home(tsm_home).products()[0]
    assert record.owner == "alice"
    assert record.config["object_catalog"]["flux_type"] == "gaap1p0"
    assert record.config["output"]["directory"] == str(tsm_home / "products")
    assert record.config["object_catalog"]["path"] is None and record.config["compute"]["scheduler"] == "threads"
    status = api.get(f"/api/processes/{ok.json()['id']}/stop/", headers=h).json()["status"]
    if status == "Successful":  # it finished before the stop: stopping a finished process changes nothing
        assert Registry.at_home(tsm_home).products()[0].status == "done"
        return
    assert status in ("Stopping", "Stopped")
    deadline = time.monotonic() + 120
    while api.get(f"/api/processes/{ok.json()['id']}/", headers=h).json()["status"] == "Stopping":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert api.get(f"/api/processes/{ok.json()['id']}/", headers=h).json()["status"] == "Stopped"
    assert api.get(f"/api/products/{ok.json()['upload']}/", headers=h).json()["status"] == 9
    assert api.get(f"/api/processes/{ok.json()['id']}/", headers=_auth(api.tokens["bob"])).status_code == 404


def test_upload_errors_and_hostile_names(api, scene, tsm_home):
    h = _auth(api.tokens["alice"])
    z = scene["redshifts"]
    assert api.post("/api/products/", json={"display_name": "t", "product_type": 2}, headers=h).json().keys() == {
        "product_type"
    }
    assert api.post("/api/products/", json={"display_name": "", "product_type": 1}, headers=h).json().keys() == {
        "display_name"
    }
    assert (
        api.post(
            "/api/products/", json={"display_name": "o", "product_type": 1, "official_product": True}, headers=h
        ).status_code
        == 403
    )
    pid = _http_upload(api, api.tokens["alice"], z, {}, filename="../../etc/evil name.csv", publish=False)
    stored = list((tsm_home / "uploads").iterdir())
    assert len(stored) == 1 and stored[0].suffix == ".csv" and "evil" not in stored[0].name
    info = api.get(f"/api/products/{pid}/main_file_info/", headers=h).json()["main_file"]
    assert info["name"] == "evil_name.csv" and info["n_rows"] == len(z)
    content = api.get(f"/api/product-contents/?product={pid}", headers=h).json()["results"][1]
    assert api.patch(
        f"/api/product-contents/{content['id']}/", data={"alias": "magnitude"}, headers=h
    ).json().keys() == {"alias"}
    assert (
        api.patch(
            f"/api/product-contents/{content['id']}/", data={"alias": "RA"}, headers=_auth(api.tokens["bob"])
        ).status_code
        == 404
    )
    missing = api.patch(f"/api/products/{pid}/", data={"status": 1}, headers=h)
    assert missing.status_code == 406 and "Dec" in missing.text
    # bad rows: named without the server's path
    broken = z.assign(ra=z["ra"].astype(str).where(z.index != 3, "ra?"))  # text where a number belongs
    bid = _http_upload(
        api, api.tokens["alice"], broken, {"ra": "RA", "dec": "Dec", "z": "z"}, name="broken", publish=False
    )
    refused = api.patch(f"/api/products/{bid}/", data={"status": 1}, headers=h)
    assert refused.status_code == 400 and "holds text" in refused.text and str(tsm_home) not in refused.text
    # size limit and unknown file types
    pid2 = api.post("/api/products/", json={"display_name": "big", "product_type": 1}, headers=h).json()["id"]
    big = api.post(
        "/api/product-files/",
        data={"product": pid2, "role": 0},
        files={"file": ("big.csv", b"ra,dec,z\n" + b"1,2,3\n" * 400_000, "text/csv")},
        headers=h,
    )
    assert big.status_code == 413 and "file" in big.json()
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="product"\r\n\r\n{pid2}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
    ).encode()
    chunked = api.post(
        "/api/product-files/",
        content=iter([head] + [b"1,2,3\n" * 50_000] * 8),
        headers={**h, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert chunked.status_code == 413 and "over the limit" in chunked.text  # no Content-Length: counted as it streams
    exe = api.post(
        "/api/product-files/",
        data={"product": pid2, "role": 0},
        files={"file": ("x.exe", b"MZ", "application/octet-stream")},
        headers=h,
    )
    assert exe.status_code == 400 and "file" in exe.json()
    assert len(list((tsm_home / "uploads").iterdir())) == 2  # the refused files left nothing behind


def test_operator_products_are_official(api, scene, tsm_home):
    from tsm_core.redshifts.registration import register_redshift_catalog

    record = register_redshift_catalog("operator set", scene["redshift_path"])
    h = _auth(api.tokens["bob"])
    products = api.get("/api/products/?status=1", headers=h).json()["results"]
    assert [(p["display_name"], p["uploaded_by"], p["official_product"], p["is_owner"]) for p in products] == [
        ("operator set", "operator", True, False)
    ]
    assert api.patch(f"/api/products/{products[0]['id']}/", data={"description": "mine"}, headers=h).status_code == 404
    from tsm_core.redshifts.store import parquet_copy_path

    assert api.get(f"/api/products/{products[0]['id']}/main_file_info/", headers=h).status_code == 200
    assert not parquet_copy_path(record.path).exists()  # listings and info do not export the stored copy
    file = api.get(f"/api/products/{products[0]['id']}/download/main-file/file/", headers=h)
    assert file.status_code == 200 and "redshifts.parquet" in file.headers["content-disposition"]
    import io

    import pyarrow.parquet as pq

    downloaded = pq.read_table(io.BytesIO(file.content)).to_pandas()  # the stored HATS copy, as one Parquet file
    assert sorted(downloaded["id"]) == sorted(scene["redshifts"]["id"])
    assert "_zrow" not in downloaded.columns and "_healpix_29" not in downloaded.columns
    assert str(tsm_home) not in api.get(f"/api/products/{products[0]['id']}/main_file_info/", headers=h).text
    assert str(scene["redshift_path"].parent) not in api.get("/api/product-files/", headers=h).text


def test_registry_users_and_owner_migration(tmp_path):
    import sqlite3

    from tsm_core.products.registry import Registry
    from tsm_web.users import Users

    path = tmp_path / "registry.sqlite"
    with sqlite3.connect(path) as db:  # a registry file written before owners existed
        db.execute(
            "CREATE TABLE products (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, description TEXT "
            "NOT NULL DEFAULT '', status TEXT NOT NULL, config TEXT NOT NULL, n_rows INTEGER, output_path TEXT, "
            "error TEXT, provenance TEXT, progress REAL NOT NULL DEFAULT 0, created_at TEXT NOT NULL, "
            "finished_at TEXT)"
        )
        db.execute("INSERT INTO products (name, status, config, created_at) VALUES ('old', 'done', '{}', 'then')")
    registry = Registry(path)
    assert registry.product(1).owner is None
    assert registry.product(registry.create_product("new", "", {}, owner="alice")).owner == "alice"
    users = Users(registry)
    user, token = users.add("alice")
    assert users.for_token(token) == user and users.for_token(token + "x") is None
    assert token not in path.read_bytes().decode("latin-1")  # only the hash is stored
    users.remove("alice")
    assert users.for_token(token) is None and users.all() == []


def test_users_of_an_older_registry_kept(tmp_path):
    """Users stored when the core's registry held them (same table, same columns) still sign in."""
    import hashlib
    import sqlite3

    from tsm_core.products.registry import Registry
    from tsm_web.users import Users

    path = tmp_path / "registry.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, "
            "token_sha256 TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO users (name, token_sha256, created_at) VALUES ('dora', ?, 'then')",
            (hashlib.sha256(b"t0ken").hexdigest(),),
        )
    users = Users(Registry(path))
    assert [u.name for u in users.all()] == ["dora"] and users.for_token("t0ken").name == "dora"
    assert users.add("erin")[0].id == 2


def test_users_command(tsm_home):
    from click.testing import CliRunner

    from tsm_core.cli.main import get_cli
    from tsm_core.products.registry import Registry
    from tsm_web.users import Users

    runner = CliRunner()
    added = runner.invoke(get_cli(), ["users", "add", "carol"])
    assert added.exit_code == 0, added.output
    token = added.output.strip().splitlines()[-1]
    assert Users(Registry.at_home(tsm_home)).for_token(token).name == "carol"
    again = runner.invoke(get_cli(), ["users", "add", "carol"])
    assert again.exit_code != 0 and "exists already" in again.output
    assert runner.invoke(get_cli(), ["users", "add", "../x"]).exit_code != 0
    assert "carol" in runner.invoke(get_cli(), ["users", "list"]).output
    missing = runner.invoke(get_cli(), ["users", "remove", "dave"])
    assert missing.exit_code != 0 and "no user 'dave'; users: carol" in missing.output
    assert runner.invoke(get_cli(), ["users", "remove", "carol"]).exit_code == 0
    assert Users(Registry.at_home(tsm_home)).for_token(token) is None


def test_marked_official_a_users_catalog_is_buildable_by_all(api, scene, tsm_home, monkeypatch):
    """The admin marking alice's published catalog official makes it the operator's in the
    registry: bob lists it and builds from it; unmarked, it is alice's alone again."""
    from tsm_core.products.registry import Registry

    frame = scene["redshifts"].head(50)
    pid = _http_upload(api, api.tokens["alice"], frame, {"ra": "ra", "dec": "dec", "z": "z"}, name="alice set")
    bob = _auth(api.tokens["bob"])
    catalog = lambda: Registry.at_home(tsm_home).redshift_catalogs()[0]  # noqa: E731
    assert catalog().owner == "alice"
    name = catalog().name
    listed = lambda: [c["name"] for c in api.get("/api/redshift-catalogs", headers=_bearer(api.tokens["bob"])).json()]  # noqa: E731
    assert name not in listed()

    marked = api.patch(f"/api/products/{pid}/", data={"official_product": "true"}, headers=_auth(ADMIN_TOKEN))
    assert marked.status_code == 200, marked.text
    assert catalog().owner is None
    assert name in listed()
    monkeypatch.setenv("TSM_DP1_PATH", str(scene["objects_path"]))
    dp1 = next(r["id"] for r in api.get("/api/releases/", headers=bob).json()["results"] if r["name"] == "dp1")
    built = api.post(
        "/api/processes/",
        json={"pipeline": 1, "display_name": "bob from official", "release": dp1, "inputs": [pid], "used_config": "{}"},
        headers=bob,
    )
    assert built.status_code == 201, built.text

    unmarked = api.patch(f"/api/products/{pid}/", data={"official_product": "false"}, headers=_auth(ADMIN_TOKEN))
    assert unmarked.status_code == 200 and catalog().owner == "alice"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_unmatched_file_in_the_archive(api, scene, tsm_home, monkeypatch, tmp_path):
    """``param.unmatched`` (ours): the training set's archive holds the redshifts it lost too,
    and they are the ones not written (an independent count of the ids)."""
    monkeypatch.setenv("TSM_DP1_PATH", str(scene["objects_path"]))
    h = _auth(api.tokens["alice"])
    z = scene["redshifts"].head(120)
    pid = _http_upload(api, api.tokens["alice"], z, {"ra": "ra", "dec": "dec", "z": "z", "id": "ID"})
    dp1 = api.get("/api/releases/?name=dp1", headers=h).json()["results"][0]["id"]
    body = {"pipeline": 1, "display_name": "lost", "release": dp1, "inputs": [pid]}
    param = {"crossmatch": {"radius_arcsec": 1.0, "n_neighbors": 1}, "unmatched": True}
    made = api.post("/api/processes/", json=body | {"used_config": {"param": param}}, headers=h)
    assert made.status_code == 201, made.text
    deadline = time.monotonic() + 120
    while (status := api.get(f"/api/processes/{made.json()['id']}/", headers=h).json()["status"]) != "Successful":
        assert status in ("Pending", "Running") and time.monotonic() < deadline, status
        time.sleep(0.3)
    out = made.json()["upload"]
    archive = api.get(f"/api/products/{out}/download/file/", headers=h)
    assert archive.status_code == 200
    (tmp_path / "a.zip").write_bytes(archive.content)
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        names = zf.namelist()
        lost_name = next(n for n in names if n.endswith("_unmatched.parquet"))
        main = next(n for n in names if n.endswith(".parquet") and n != lost_name)
        zf.extractall(tmp_path / "unzipped")
    written = pd.read_parquet(tmp_path / "unzipped" / main)
    lost = pd.read_parquet(tmp_path / "unzipped" / lost_name)
    pairs = brute_force_match(z, scene["objects"], 1.0, 1)
    alone = lost.loc[lost["reason"] == "no_object_within_radius", "id"]
    assert set(alone) == set(z["id"]) - set(pairs["id"]) and len(alone) > 10
    assert set(lost["id"]) == set(z["id"]) - set(written["id"])
    assert set(lost["reason"]) <= {"no_object_within_radius", "unique_galaxies"}
    assert api.get(f"/api/products/{out}/download/file/", headers=_auth(api.tokens["bob"])).status_code == 404
