"""The service's trust boundary, tried as an attacker would, against a real ``tsm serve``
on 127.0.0.1 over real HTTP: code in filters, server-side locations and addresses,
oversized and unauthenticated uploads, server paths in error bodies, offline docs."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpers import free_port, tsm_serve

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Listener:
    """A loopback listener standing in for an internal host: it records every connection."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def _call(url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **AUTH, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def service(tmp_path_factory, scene):
    home = tmp_path_factory.mktemp("served-home")
    env = {"TSM_HOME": str(home), "TSM_API_TOKEN": TOKEN, "TSM_MAX_UPLOAD_MB": "2"}
    with tsm_serve(env, "--release-path", f"dp1={scene['objects_path']}") as url:
        # a registered catalog to aim runs at
        boundary = "b0undary"
        csv = scene["redshifts"].to_csv(index=False).encode()
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nz\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"z.csv\"\r\n"
                "Content-Type: text/csv\r\n\r\n").encode() + csv + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(url + "/api/redshift-catalogs", data=body, method="POST", headers={
            **AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            catalog = json.loads(response.read())
        yield {"url": url, "home": home, "catalog": catalog["id"]}


def _config(catalog: int, **extra) -> dict:
    return {"name": "attack", "redshift_catalog": {"id": catalog}, "object_catalog": {"release": "dp1"}, **extra}


def _no_server_path(body: dict, service: dict, scene: dict) -> None:
    text = json.dumps(body)
    for secret in (str(service["home"]), str(scene["objects_path"]), "/tmp/", "uploads/"):
        assert secret not in text, (secret, text)


@pytest.mark.parametrize("which", ["redshift", "object"])
def test_filter_injection_runs_nothing(service, scene, tmp_path, which):
    target = tmp_path / "pwned"
    for payload in (f"@pd.io.common.os.system('touch {target}') == 0",
                    f"__import__('os').system('touch {target}') == 0"):
        status, body = _call(service["url"] + "/api/training-sets", "POST",
                             _config(service["catalog"], filters={which: [payload]}))
        assert status == 422 and body["field"] == f"filters.{which}[0]"
        assert "not allow" in body["message"] and body["request_id"]
    time.sleep(0.5)
    assert not target.exists()


@pytest.mark.parametrize("change,field", [
    ({"object_catalog": {"release": "dp1", "path": "http://127.0.0.1:{port}/cat"}}, "object_catalog.path"),
    ({"object_catalog": {"release": "dp1", "margin_path": "http://127.0.0.1:{port}/m"}}, "object_catalog.margin_path"),
    ({"compute": {"scheduler": "tcp://127.0.0.1:{port}"}}, "compute"),
    ({"compute": {"n_workers": 100000}}, "compute"),
    ({"object_catalog": {"release": "dp1", "dust_maps_dir": "/etc"}}, "object_catalog.dust_maps_dir"),
    ({"output": {"directory": "/tmp/elsewhere"}}, "output.directory"),
    ({"output": {"overwrite": True}}, "output.overwrite"),
    ({"redshift_catalog": {"path": "http://127.0.0.1:{port}/z.parquet"}}, "redshift_catalog.path"),
])
def test_server_side_locations_refused(service, scene, change, field):
    listener = Listener()
    try:
        body = json.loads(json.dumps(_config(service["catalog"]) | change).replace("{port}", str(listener.port)))
        status, answer = _call(service["url"] + "/api/training-sets", "POST", body)
        time.sleep(0.3)
        assert status == 422 and answer["field"] == field and "operator" in answer["message"]
        assert listener.connections == 0
        _no_server_path(answer, service, scene)
    finally:
        listener.close()


def _raw_headers_only(url: str, headers: dict[str, str], declared: int) -> tuple[int, float]:
    """Send a request's headers declaring ``declared`` body bytes, and none of the body:
    returns the status the server answers with, and how long it took."""
    host, port = url.removeprefix("http://").split(":")
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as s:
        lines = ["POST /api/redshift-catalogs HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {declared}",
                 "Content-Type: multipart/form-data; boundary=x", *(f"{k}: {v}" for k, v in headers.items())]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = s.recv(4096).decode(errors="replace")
    return int(answer.split()[1]), time.monotonic() - start


def test_uploads_answered_before_their_body(service):
    status, took = _raw_headers_only(service["url"], {}, 60 * 2**20)
    assert status == 401 and took < 5
    status, took = _raw_headers_only(service["url"], {"Authorization": "Bearer wrong"}, 100)
    assert status == 401
    status, took = _raw_headers_only(service["url"], AUTH, 60 * 2**20)
    assert status == 413 and took < 5


def test_undeclared_body_cut_off_at_the_limit(service):
    """A chunked upload (no Content-Length) is read only up to the limit."""
    host, port = service["url"].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as s:
        head = ["POST /api/redshift-catalogs HTTP/1.1", f"Host: {host}:{port}", "Transfer-Encoding: chunked",
                "Content-Type: multipart/form-data; boundary=x", f"Authorization: Bearer {TOKEN}"]
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        part = b'--x\r\nContent-Disposition: form-data; name="file"; filename="z.csv"\r\n\r\n'
        chunk = b"0" * 2**20
        try:
            s.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            for _ in range(10):  # 10 MB against a 2 MB limit
                s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except OSError:
            pass  # the server stopped reading
        answer = s.recv(4096).decode(errors="replace")
    assert answer.split()[1] == "413"


def test_error_bodies_hold_no_server_path(service, scene):
    status, body = _call(service["url"] + "/api/training-sets", "POST",
                         _config(service["catalog"], crossmatch={"radius_arcsec": 30.0}))
    assert status == 422 and body["field"] == "crossmatch.radius_arcsec"
    _no_server_path(body, service, scene)
    status, body = _call(service["url"] + "/api/training-sets", "POST", _config(999))
    assert status == 422
    _no_server_path(body, service, scene)
    status, listed = _call(service["url"] + "/api/redshift-catalogs")
    assert status == 200 and "path" not in listed[0]
    _no_server_path(listed, service, scene)


def test_pages_carry_security_headers(service):
    with urllib.request.urlopen(service["url"] + "/", timeout=10) as response:
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "<script>" not in response.read().decode()


def test_openapi_declares_token_and_errors(service):
    with urllib.request.urlopen(service["url"] + "/openapi.json", timeout=10) as response:
        doc = json.loads(response.read())
    assert doc["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    post = doc["paths"]["/api/training-sets"]["post"]
    assert post["security"] == [{"token": []}]
    assert {"401", "404", "409", "413", "422"} <= set(post["responses"])


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.browser
def test_docs_render_offline_in_chromium(service):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it with apt-get; needs root)")
    sync_api = pytest.importorskip("playwright.sync_api")
    from test_web_browser import FLAGS

    elsewhere: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page()

        def block(route):
            if route.request.url.startswith(service["url"]):
                route.continue_()
            else:
                elsewhere.append(route.request.url)
                route.abort()

        page.route("**/*", block)
        page.goto(service["url"] + "/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        assert "Training Set Maker" in page.text_content(".swagger-ui .info .title")
        page.wait_for_selector("text=Submit a training set; it is built in the background")
        browser.close()
    assert elsewhere == []




def test_downloaded_file_names_no_server_path(service, scene, tmp_path):
    import pyarrow.parquet as pq

    status, body = _call(service["url"] + "/api/training-sets", "POST",
                         _config(service["catalog"], name="served", crossmatch={"radius_arcsec": 2.0}))
    assert status == 202, body
    deadline = time.monotonic() + 120
    while body["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
        status, body = _call(service["url"] + f"/api/training-sets/{body['id']}")
    assert body["status"] == "done", body
    request = urllib.request.Request(service["url"] + body["download_url"], headers=AUTH)
    with urllib.request.urlopen(request, timeout=30) as response:
        (tmp_path / "served.parquet").write_bytes(response.read())
    table = pq.read_table(tmp_path / "served.parquet")
    assert table.num_rows > 0
    metadata = b" ".join(v for v in (table.schema.metadata or {}).values()).decode(errors="replace")
    metadata += json.dumps(body)
    for secret in (str(service["home"]), str(scene["objects_path"]), "/tmp/"):
        assert secret not in metadata, secret
