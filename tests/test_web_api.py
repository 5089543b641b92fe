"""The HTTP API through FastAPI's test client: upload, submit, poll, download, safety."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

import tsm_core  # noqa: E402
from helpers import writers_plugin  # noqa: E402
from tsm_web import create_app  # noqa: E402

DESI_COLUMNS = {"id": "TARGETID", "ra": "TARGET_RA", "dec": "TARGET_DEC", "z": "Z", "z_err": "ZERR", "z_flag": "ZWARN"}


@pytest.fixture
def client(scene):
    # the operator, not the client, says where dp1's object catalog is
    with TestClient(create_app(max_upload_mb=2, release_paths={"dp1": str(scene["objects_path"])})) as c:
        yield c


@pytest.fixture
def odd_csv(scene) -> bytes:
    z = scene["redshifts"].rename(columns={canonical: own for canonical, own in DESI_COLUMNS.items()})
    buf = io.StringIO()
    z.to_csv(buf, index=False)
    return buf.getvalue().encode()


def _upload(client, name, content, columns=DESI_COLUMNS, filename="desi.csv"):
    import json

    return client.post(
        "/api/redshift-catalogs",
        data={"name": name, "columns": json.dumps(columns)},
        files={"file": (filename, content, "text/csv")},
    )


def _wait(client, product_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/training-sets/{product_id}").json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.2)
    raise AssertionError("the run did not finish")


def _config(scene, catalog_id, **extra):
    return {
        "name": "web set",
        "redshift_catalog": {"id": catalog_id},
        "object_catalog": {"release": "dp1", "flux_type": "cModel"},
        "crossmatch": {"radius_arcsec": 3.0, "n_neighbors": 2},
        **extra,
    }


def test_listings(client):
    releases = client.get("/api/releases").json()
    assert {r["name"] for r in releases} >= {"dp1", "dp02"}
    flux = client.get("/api/releases/dp02/flux-types").json()
    assert [f["name"] for f in flux if f["default"]] == ["cModel"] and "gaap0p5" in {f["name"] for f in flux}
    assert client.get("/api/releases/dp9/flux-types").status_code == 404
    ders = {d["name"]: d for d in client.get("/api/dereddeners").json()}
    assert ders["none"]["files_present"] and not ders["sfd"]["files_present"] and ders["sfd"]["missing_files"]
    assert {f["name"] for f in client.get("/api/formats").json()} >= {"parquet", "csv", "fits", "hdf5"}
    assert "/api/training-sets" in client.get("/openapi.json").json()["paths"]


def test_upload_submit_poll_download(client, scene, odd_csv, tmp_path):
    up = _upload(client, "desi odd", odd_csv)
    assert up.status_code == 201, up.text
    catalog = up.json()
    assert catalog["n_rows"] == len(scene["redshifts"]) and catalog["columns"]["ra"] == "TARGET_RA"
    assert [c["name"] for c in client.get("/api/redshift-catalogs").json()] == ["desi odd"]

    sub = client.post("/api/training-sets", json=_config(scene, catalog["id"]))
    assert sub.status_code == 202, sub.text
    product = _wait(client, sub.json()["id"])
    assert product["status"] == "done" and product["n_rows"] > 0 and product["progress"] == 1
    got = client.get(product["download_url"])
    assert got.status_code == 200
    (tmp_path / "web.parquet").write_bytes(got.content)
    web = pq.read_table(tmp_path / "web.parquet").to_pandas()

    # the same run from Python, on the same registered catalog
    cfg = _config(scene, catalog["id"], output={"directory": str(tmp_path / "py")})
    cfg["object_catalog"]["path"] = str(scene["objects_path"])
    python = pq.read_table(tsm_core.run(cfg).output_path).to_pandas()
    pd.testing.assert_frame_equal(web, python)
    listed = client.get("/api/training-sets", params={"search": "web"}).json()
    assert listed[0]["id"] > listed[-1]["id"] or len(listed) == 1


def test_field_errors(client, scene, odd_csv):
    cid = _upload(client, "c", odd_csv).json()["id"]
    cases = [
        ({"crossmatch": {"radius_arcsec": 0}}, "crossmatch.radius_arcsec"),
        ({"object_catalog": {"release": "dp1", "flux_type": "psfFlux"}}, "object_catalog.flux_type"),
        ({"output": {"format": "xlsx"}}, "output.format"),
        ({"name": ""}, "name"),
        ({"colour": 1}, "colour"),
        ({"redshift_catalog": {"path": "/etc/passwd"}}, "redshift_catalog.path"),
        ({"redshift_catalog": {"name": "nope"}}, "redshift_catalog"),
        ({"object_catalog": {"release": "dp1", "dereddening": "sfd"}}, "object_catalog.dereddening"),
    ]
    for change, field in cases:
        response = client.post("/api/training-sets", json=_config(scene, cid) | change)
        assert response.status_code == 422, (change, response.text)
        assert response.json()["field"] == field, (change, response.json())
    assert client.get("/api/training-sets").json() == []


def test_bad_uploads(client, scene, odd_csv, tsm_home):
    z = scene["redshifts"].copy()
    z["ra"] = z["ra"].astype(object)
    z.loc[4, "ra"] = "abc"  # a text value in a number column (NaN rows are dropped and counted)
    buf = io.StringIO()
    z.to_csv(buf, index=False)
    bad = client.post(
        "/api/redshift-catalogs", data={"name": "bad"}, files={"file": ("z.csv", buf.getvalue().encode())}
    )
    assert bad.status_code == 422 and bad.json()["field"] == "columns" and "row 4" in bad.json()["message"]
    # (without ZWARN the DESI convention is not recognised, which would map dec and z itself)
    missing = _upload(client, "m", odd_csv.replace(b"ZWARN", b"QUALITY"), columns={"ra": "TARGET_RA"})
    assert missing.status_code == 422 and "missing required column(s) dec, z" in missing.json()["message"]
    assert _upload(client, "x", odd_csv, filename="evil.exe").status_code == 422
    big = client.post("/api/redshift-catalogs", data={"name": "big"}, files={"file": ("big.csv", b"0" * (3 * 2**20))})
    assert big.status_code == 413 and big.json()["field"] == "file"
    assert client.get("/api/redshift-catalogs").json() == []
    assert not any((tsm_home / "uploads").iterdir())


def test_hostile_names(client, scene, odd_csv, tsm_home):
    up = _upload(client, "../../etc/x", odd_csv)
    assert up.status_code == 201 and up.json()["name"] == "../../etc/x"
    assert all(p.parent == tsm_home / "uploads" for p in (tsm_home / "uploads").iterdir())
    sub = client.post("/api/training-sets", json=_config(scene, up.json()["id"]) | {"name": "../../etc/x"})
    product = _wait(client, sub.json()["id"])
    path = Path(tsm_core.pipeline.main.Registry.at_home(tsm_home).product(product["id"]).output_path)
    assert path.parent == tsm_home / "products" and path.name == f"etc_x_{product['id']}.parquet"


def test_download_only_finished_registered_files(client):
    assert client.get("/api/training-sets/99/file").status_code == 404
    assert client.get("/api/training-sets/99").status_code == 404
    assert client.get("/api/training-sets/../../etc/passwd").status_code == 404


def test_failed_run_shown_failed(client, scene, odd_csv, tsm_home, registered_plugin):
    from tsm_writers.parquet import ParquetWriter

    class Broken(ParquetWriter):
        name = "broken"

        def open(self, path, schema, metadata, options):
            raise OSError("quota exceeded")

    registered_plugin(writers_plugin(Broken()), "test-writer-broken")
    cid = _upload(client, "c", odd_csv).json()["id"]
    sub = client.post("/api/training-sets", json=_config(scene, cid) | {"output": {"format": "broken"}})
    product = _wait(client, sub.json()["id"])
    assert product["status"] == "failed" and "quota exceeded" in product["error"] and product["download_url"] is None
    assert client.get(f"/api/training-sets/{product['id']}/file").status_code == 409
    assert not any((tsm_home / "products").iterdir())


def test_token_required_when_set(monkeypatch, scene):
    monkeypatch.setenv("TSM_API_TOKEN", "s3cret")
    with TestClient(create_app()) as c:
        assert c.get("/api/formats", headers={"Authorization": "Token s3cret"}).status_code == 200
        denied = c.get("/api/formats")
        assert denied.status_code == 401 and denied.json()["field"] == "token"
        assert c.get("/api/formats", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/formats", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/").status_code == 200  # the page loads, and asks for the token
