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

from helpers import multipart_csv, register_csv, tsm_serve

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
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **AUTH, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def service(tmp_path_factory, scene):
    home = tmp_path_factory.mktemp("served-home")
    env = {
        "TSM_HOME": str(home),
        "TSM_API_TOKEN": TOKEN,
        "TSM_MAX_UPLOAD_MB": "2",
        "TSM_ALLOWED_HOSTS": "proxy.example:8443",
    }
    with tsm_serve(env, "--release-path", f"dp1={scene['objects_path']}") as url:
        # a registered catalog to aim runs at
        catalog = register_csv(url, AUTH, scene["redshifts"].to_csv(index=False).encode())
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
    for payload in (
        f"@pd.io.common.os.system('touch {target}') == 0",
        f"__import__('os').system('touch {target}') == 0",
    ):
        status, body = _call(
            service["url"] + "/api/training-sets", "POST", _config(service["catalog"], filters={which: [payload]})
        )
        assert status == 422 and body["field"] == f"filters.{which}[0]"
        assert "not allow" in body["message"] and body["request_id"]
    time.sleep(0.5)
    assert not target.exists()


@pytest.mark.parametrize(
    "change,field",
    [
        ({"object_catalog": {"release": "dp1", "path": "http://127.0.0.1:{port}/cat"}}, "object_catalog.path"),
        (
            {"object_catalog": {"release": "dp1", "margin_path": "http://127.0.0.1:{port}/m"}},
            "object_catalog.margin_path",
        ),
        ({"compute": {"scheduler": "tcp://127.0.0.1:{port}"}}, "compute"),
        ({"compute": {"n_workers": 100000}}, "compute"),
        ({"object_catalog": {"release": "dp1", "dust_maps_dir": "/etc"}}, "object_catalog.dust_maps_dir"),
        ({"output": {"directory": "/tmp/elsewhere"}}, "output.directory"),
        ({"output": {"overwrite": True}}, "output.overwrite"),
        ({"redshift_catalog": {"path": "http://127.0.0.1:{port}/z.parquet"}}, "redshift_catalog.path"),
    ],
)
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
        lines = [
            "POST /api/redshift-catalogs HTTP/1.1",
            f"Host: {host}:{port}",
            f"Content-Length: {declared}",
            "Content-Type: multipart/form-data; boundary=x",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
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
        head = [
            "POST /api/redshift-catalogs HTTP/1.1",
            f"Host: {host}:{port}",
            "Transfer-Encoding: chunked",
            "Content-Type: multipart/form-data; boundary=x",
            f"Authorization: Bearer {TOKEN}",
        ]
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
    status, body = _call(
        service["url"] + "/api/training-sets", "POST", _config(service["catalog"], crossmatch={"radius_arcsec": 30.0})
    )
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

    status, body = _call(
        service["url"] + "/api/training-sets",
        "POST",
        _config(service["catalog"], name="served", crossmatch={"radius_arcsec": 2.0}),
    )
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


# -- cross-site requests, the Host allow-list, early answers' headers, error bodies --------
EXTRA_HOST = "tsm.example.org"


@pytest.fixture(scope="module")
def open_service(tmp_path_factory, scene):
    """``tsm serve`` without a token (the documented local default), with one more name."""
    home = tmp_path_factory.mktemp("open-home")
    with tsm_serve(
        {"TSM_HOME": str(home)}, "--release-path", f"dp1={scene['objects_path']}", "--allowed-hosts", EXTRA_HOST
    ) as url:
        yield {"url": url, "home": home}


@pytest.fixture(params=["open", "token"])
def either(request, open_service, service):
    """Each test once against the open server and once against the one with a token."""
    return {**(open_service if request.param == "open" else service), "mode": request.param}


def _raw(
    url: str, method: str, path: str, headers: dict[str, str], body: bytes = b"", declared: int | None = None
) -> tuple[int, dict[str, str], dict]:
    """One request over a socket, exactly as written (the Host header included); the answer's
    status, headers (lower-case names) and JSON body. ``declared`` announces a body that
    is never sent (the answer must come from the headers alone)."""
    host, port = url.removeprefix("http://").split(":")
    length = len(body) if declared is None else declared
    lines = [
        f"{method} {path} HTTP/1.1",
        *(f"{k}: {v}" for k, v in headers.items()),
        f"Content-Length: {length}",
        "Connection: close",
    ]
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer or (declared is not None and not answer.endswith(b"}")):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
        if declared is None:
            while chunk := s.recv(65536):
                answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    names = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in names.items()}, json.loads(payload or b"null")


def _upload(url: str, name: str, headers: dict[str, str], csv: bytes) -> tuple[int, dict[str, str], dict]:
    body, content_type = multipart_csv(name, csv)
    host = url.removeprefix("http://")
    return _raw(
        url,
        "POST",
        "/api/redshift-catalogs",
        {"Host": host, **AUTH, "Content-Type": content_type, **headers},
        body,
    )


def _catalog_names(url: str) -> set[str]:
    return {c["name"] for c in _call(url + "/api/redshift-catalogs")[1]}


@pytest.mark.parametrize(
    "headers,field",
    [
        ({"Origin": "http://evil.example"}, "origin"),
        ({"Referer": "http://evil.example/page.html"}, "referer"),
        ({"Origin": "null"}, "origin"),  # a sandboxed page or a redirect from another site
        ({"Origin": "http://127.0.0.1.evil.example"}, "origin"),
    ],
)
def test_cross_site_post_refused(either, scene, headers, field):
    """A page of another site cannot make the browser change anything, token or none: the
    answer comes from the headers alone (the 60 MB body is never sent)."""
    url = either["url"]
    host = url.removeprefix("http://")
    status, answer_headers, body = _raw(
        url,
        "POST",
        "/api/redshift-catalogs",
        {"Host": host, "Content-Type": "multipart/form-data; boundary=x", **headers},
        declared=60 * 2**20,
    )
    assert status == 403, body
    value = next(iter(headers.values()))
    assert body["field"] == field
    assert body["message"] == f"cross-site request refused: {field.capitalize()} {value!r} is not this server"
    assert answer_headers["x-content-type-options"] == "nosniff"
    # and with the whole upload sent: nothing registered
    status, _, _ = _upload(url, "from-evil", headers, scene["redshifts"].to_csv(index=False).encode())
    assert status == 403 and "from-evil" not in _catalog_names(url)


def test_cross_site_refused_on_the_pzserver_api(either):
    """The Photo-z Server API's routes answer DRF's ``{"detail": ...}``; DELETE is refused too."""
    host = either["url"].removeprefix("http://")
    status, headers, body = _raw(
        either["url"], "DELETE", "/api/products/1/", {"Host": host, "Origin": "https://evil.example", **AUTH}
    )
    assert status == 403 and headers["x-content-type-options"] == "nosniff"
    assert body == {"detail": "cross-site request refused: Origin 'https://evil.example' is not this server"}


@pytest.mark.parametrize("which", ["origin", "referer", "extra host", "no header"])
def test_same_site_and_api_clients_accepted(either, scene, which):
    """The web form's own requests (same origin, or the operator's extra name) and API
    clients that send neither Origin nor Referer (curl, requests, pzserver) are served."""
    url = either["url"]
    headers = {
        "origin": {"Origin": url},
        "referer": {"Referer": url + "/"},
        "extra host": {"Origin": f"https://{EXTRA_HOST}"},
        "no header": {},
    }[which]
    name = f"same-{which.replace(' ', '-')}"
    status, _, body = _upload(url, name, headers, scene["redshifts"].to_csv(index=False).encode())
    if which == "extra host" and either["mode"] == "token":
        # the token server has no extra name: https://tsm.example.org is another site to it
        assert status == 403, body
        return
    assert status == 201, body
    assert name in _catalog_names(url)


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost.evil.example:{port}"]
)
def test_foreign_host_refused(either, host):
    """DNS rebinding: a name of another site resolving to this server gets nothing, GET included."""
    port = either["url"].rsplit(":", 1)[1]
    given = host.replace("{port}", port)
    for method, path in (("GET", "/api/redshift-catalogs"), ("GET", "/"), ("POST", "/api/training-sets")):
        status, headers, body = _raw(
            either["url"], method, path, {"Host": given, **AUTH}, declared=10 * 2**20 if method == "POST" else None
        )
        assert status == 400, (method, path, body)
        assert headers["x-content-type-options"] == "nosniff"
        assert body["field"] == "host" and body["message"] == (
            f"the Host header {given!r} is not a name of this server "
            "(the operator lists them with tsm serve --allowed-hosts)"
        )


@pytest.mark.parametrize("name", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LOCALHOST:{port}"])
def test_bound_address_names_accepted(either, name):
    port = either["url"].rsplit(":", 1)[1]
    status, _, body = _raw(either["url"], "GET", "/api/formats", {"Host": name.replace("{port}", port), **AUTH})
    assert status == 200, body


def test_allowed_hosts_adds_a_name(open_service, service):
    """``--allowed-hosts`` (any port when none is given) and ``$TSM_ALLOWED_HOSTS`` add names;
    the bound address's names stay."""
    for given in (EXTRA_HOST, f"{EXTRA_HOST}:443", f"{EXTRA_HOST}:8443"):
        status, _, body = _raw(open_service["url"], "GET", "/api/formats", {"Host": given})
        assert status == 200, (given, body)
        # the token server was not given that name
        status, _, _ = _raw(service["url"], "GET", "/api/formats", {"Host": given, **AUTH})
        assert status == 400
    status, _, _ = _raw(service["url"], "GET", "/api/formats", {"Host": "proxy.example:8443", **AUTH})
    assert status == 200
    status, _, _ = _raw(service["url"], "GET", "/api/formats", {"Host": "proxy.example:9000", **AUTH})
    assert status == 400


def test_early_answers_carry_security_headers(service):
    """401, 413, 400 and 403 sent before the body is read carry the headers of every answer."""
    url, host = service["url"], service["url"].removeprefix("http://")
    cases = [
        (401, {"Host": host}, 100),
        (413, {"Host": host, **AUTH}, 60 * 2**20),
        (400, {"Host": "evil.example", **AUTH}, 100),
        (403, {"Host": host, "Origin": "http://evil.example"}, 100),
    ]
    for expected, headers, declared in cases:
        status, answer, body = _raw(
            url,
            "POST",
            "/api/redshift-catalogs",
            {**headers, "Content-Type": "multipart/form-data; boundary=x"},
            declared=declared,
        )
        assert status == expected, body
        assert answer["x-content-type-options"] == "nosniff" and answer["referrer-policy"] == "same-origin"
        assert answer["x-request-id"] == body["request_id"]


def test_error_bodies_read_well(service, scene):
    """A server location is one ``<server path>``, never two; a name the client typed is shown
    as typed, even when it looks like a path."""
    csv = b"a,b\n1,2\n"
    status, _, body = _upload(service["url"], "no-columns", {}, csv)
    assert status == 422 and body["field"] == "columns"
    assert body["message"] == (
        "<server path>: missing required column(s) ra, dec, z; map them with columns: "
        "{ra: <column>, dec: <column>, z: <column>}; columns present: a, b"
    )
    for typed in ("/data/my/z.csv", "../../etc/passwd", "surveys/z.parquet"):
        status, body = _call(
            service["url"] + "/api/training-sets", "POST", _config(0, redshift_catalog={"name": typed})
        )
        assert status == 422 and body["field"] == "redshift_catalog", body
        assert body["message"].startswith(f"no registered redshift catalog {typed!r}; registered: "), body


@pytest.mark.parametrize(
    "path",
    [
        "/api/training-sets/99999999999999999999999",
        "/api/products/99999999999999999999999/",
        "/api/product-contents/99999999999999999999999/",
        "/api/processes/99999999999999999999999/",
    ],
)
def test_ids_out_of_range_are_not_found(service, path):
    """An ID no SQLite row can have is a 404 like any missing one (it was a 500)."""
    status, body = _call(service["url"] + path)
    assert status == 404, body


def test_pzserver_errors_redact_the_servers_locations(service, scene):
    """The Photo-z Server API's messages go through the same redaction: a release whose
    catalog the operator did not configure names its published locations as server paths."""
    from tsm_core import plugins

    def pz(method: str, path: str, body: dict) -> tuple[int, dict]:
        return _call(service["url"] + path, method, body, {"Authorization": f"Token {TOKEN}"})

    status, product = pz("POST", "/api/products/", {"display_name": "pz-z", "product_type": 1, "status": 0})
    assert status == 201, product
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="product"\r\n\r\n{product["id"]}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="role"\r\n\r\n0\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="z.csv"\r\n\r\n'
    ).encode()
    body += scene["redshifts"].to_csv(index=False).encode() + f"\r\n--{boundary}--\r\n".encode()
    status, _, sent = _raw(
        service["url"],
        "POST",
        "/api/product-files/",
        {
            "Host": service["url"].removeprefix("http://"),
            **AUTH,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        body,
    )
    assert status == 201, sent
    assert pz("GET", f"/api/products/{product['id']}/registry/", None)[0] == 200
    for content in pz("GET", f"/api/product-contents/?product={product['id']}", None)[1]["results"]:
        if content["column_name"] in ("ra", "dec", "z"):
            assert pz("PATCH", f"/api/product-contents/{content['id']}/", {"alias": content["column_name"]})[0] == 200
    status, published = pz("PATCH", f"/api/products/{product['id']}/", {"status": 1})
    assert status == 200 and published["status"] == 1, published
    releases = {r["name"]: r["id"] for r in pz("GET", "/api/releases/", None)[1]["results"]}
    status, refused = pz(
        "POST",
        "/api/processes/",
        {"display_name": "elsewhere", "pipeline": 1, "release": releases["dp2"], "inputs": [product["id"]]},
    )
    assert status == 400, refused
    message = json.dumps(refused)
    places = [place.path for place in plugins.object_catalog("dp2").locations()]
    assert message.count("<server path>") == len(places), message
    for place in places:
        assert place not in message


@pytest.mark.parametrize("headers", [{"Referer": "http://evil.example/"}, {"Sec-Fetch-Site": "cross-site"}])
def test_cross_site_get_that_changes_state_refused(open_service, headers):
    """The Photo-z Server API's GET routes that change state (stop a process, read an upload
    into its product) are refused from another site like a POST, in open mode too; a client
    sending neither header (LIneA's pzserver) reaches them."""
    import requests

    url = open_service["url"]
    for path in ("/api/processes/999999/stop/", "/api/products/999999/registry/"):
        refused = requests.get(url + path, headers=headers, timeout=30)
        assert refused.status_code == 403, refused.text
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert requests.get(url + path, timeout=30).status_code == 404  # no such process/product: not refused


def test_deeply_nested_json_is_a_bad_request(open_service):
    """A body nested deeper than the JSON parser goes is refused as bad JSON (400), not a 500,
    as the whole body and as a `used_config` string of the Photo-z Server API."""
    import requests

    url = open_service["url"]
    nested = "[" * 100_000 + "]" * 100_000
    body = '{"pipeline": 1, "display_name": "x", "release": 1, "inputs": [1], "used_config": ' + nested + "}"
    whole = requests.post(url + "/api/processes/", data=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert whole.status_code == 400, whole.text
    as_text = requests.post(
        url + "/api/processes/",
        json={"pipeline": 1, "display_name": "x", "release": 1, "inputs": [1], "used_config": nested},
        timeout=30,
    )
    assert as_text.status_code == 400, as_text.text


def test_a_json_body_is_bounded_apart_from_uploads(open_service):
    """A JSON body over 1 MB is refused (413) before it is read, however large uploads may be."""
    import requests

    url = open_service["url"]
    body = b'{"name": "' + b"x" * (2 << 20) + b'"}'
    answer = requests.post(
        url + "/api/training-sets", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert answer.status_code == 413, answer.text
    assert f"over the limit of {1 << 20} bytes" in answer.json()["message"]
