"""One authorization model for both APIs of a real ``tsm serve`` over real HTTP: every route
of the JSON API and of the Photo-z Server API x (the owner, another user, the admin token,
no token), in token mode and in open mode; per-owner catalog names; the per-user queue
limit; ids out of range; LIneA's client deleting a product; reports served from a stored copy.

Alice owns the things under test, Bob is another user, the admin holds ``TSM_API_TOKEN``.
Expected lists are computed from the registry file with plain SQL, not through the code.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from helpers import tsm_serve

ADMIN = "admin-t0ken"
HUGE = "99999999999999999999999"
CALLERS = ("owner", "other", "admin", "anon")


class Service:
    """A served ``$TSM_HOME``: base URL, the callers' headers, and the things made in setup."""

    def __init__(self, url: str, home: Path, tokens: dict[str, str | None]) -> None:
        self.url, self.home, self.tokens = url, home, tokens
        self.ids: dict[str, int] = {}

    def headers(self, who: str) -> dict[str, str]:
        token = self.tokens[who]
        return {"Authorization": f"Token {token}"} if token else {}

    def call(self, method: str, path: str, who: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.url + path, headers=self.headers(who), timeout=120, **kwargs)

    def ok(self, method: str, path: str, who: str, status: int, **kwargs: Any) -> Any:
        answer = self.call(method, path, who, **kwargs)
        assert answer.status_code == status, (method, path, who, answer.status_code, answer.text)
        return answer.json() if answer.content else None

    def sql(self, query: str, *args: Any) -> list[tuple]:
        with sqlite3.connect(self.home / "registry.sqlite") as db:
            return db.execute(query, args).fetchall()


def _csv(scene: dict, rows: int = 60) -> bytes:
    return scene["redshifts"].head(rows).to_csv(index=False).encode()


def upload_catalog(svc: Service, who: str, name: str, scene: dict) -> int:
    return svc.ok(
        "POST",
        "/api/redshift-catalogs",
        who,
        201,
        data={"name": name},
        files={"file": ("z.csv", _csv(scene), "text/csv")},
    )["id"]


def submit(svc: Service, who: str, catalog: int | str, status: int = 202) -> Any:
    key = {"id": catalog} if isinstance(catalog, int) else {"name": catalog}
    return svc.ok(
        "POST",
        "/api/training-sets",
        who,
        status,
        json={
            "name": f"{who} set",
            "redshift_catalog": key,
            "object_catalog": {"release": "dp1"},
            "output": {"unmatched": True},  # downloadable beside the training set, with the same rules
        },
    )


def wait_done(svc: Service, product_id: int) -> None:
    deadline = time.monotonic() + 240
    while (status := svc.ok("GET", f"/api/training-sets/{product_id}", "admin", 200)["status"]) != "done":
        assert status in ("queued", "running") and time.monotonic() < deadline, status
        time.sleep(0.3)


def pz_upload(svc: Service, who: str, scene: dict, read: bool = True) -> int:
    """A Photo-z Server product being registered (status 0), with its file read when ``read``."""
    pid = svc.ok("POST", "/api/products/", who, 201, json={"display_name": f"{who} upload", "product_type": 1})["id"]
    if read:
        svc.ok(
            "POST",
            "/api/product-files/",
            who,
            201,
            data={"product": pid, "role": 0},
            files={"file": ("up.csv", _csv(scene), "text/csv")},
        )
        svc.ok("GET", f"/api/products/{pid}/registry/", who, 200)
    return pid


def disposable_training_set(svc: Service, owner: str | None) -> int:
    """A failed training set of ``owner`` (made in the registry file, as ``tsm run`` would)."""
    from tsm_core.products.registry import Registry

    registry = Registry.at_home(svc.home)
    product_id = registry.create_product("disposable", "", {"name": "disposable"}, status="queued", owner=owner)
    registry.fail_product(product_id, "failed for the test")
    return product_id


@contextmanager
def _served(tmp_path_factory, scene, admin: str | None):
    """A server (token mode with ``admin``, else open mode) holding Alice's and the operator's
    catalogs and finished training sets, a Photo-z Server process of Alice's (built from the
    official catalog) and an upload of hers."""
    from tsm_core.products.registry import Registry
    from tsm_web.users import Users

    home = tmp_path_factory.mktemp("authz-home")
    registry = Registry.at_home(home)
    users = Users(registry)
    tokens = {"owner": users.add("alice")[1], "other": users.add("bob")[1], "admin": ADMIN, "anon": None}
    env = {"TSM_HOME": str(home), **({"TSM_API_TOKEN": admin} if admin else {})}
    with tsm_serve(env, "--release-path", f"dp1={scene['objects_path']}") as url:
        svc = Service(url, home, tokens)
        ids = svc.ids
        ids["cat"] = upload_catalog(svc, "owner", "desi", scene)
        ids["bobcat"] = upload_catalog(svc, "other", "desi", scene)  # the same name, another owner
        ids["ocat"] = upload_catalog(svc, "admin", "official", scene)
        ids["ts"] = submit(svc, "owner", ids["cat"])["id"]
        ids["ots"] = submit(svc, "admin", ids["ocat"])["id"]
        official = svc.ok(
            "GET", "/api/products/?official_product=true&product_type_name=redshift_catalog", "admin", 200
        )
        ids["pzoff"] = next(p["id"] for p in official["results"] if p["display_name"] == "official")
        dp1 = svc.ok("GET", "/api/releases/?name=dp1", "admin", 200)["results"][0]["id"]
        ids["dp1"] = dp1
        process = svc.ok(
            "POST",
            "/api/processes/",
            "owner",
            201,
            json={"pipeline": 1, "display_name": "alice pz", "release": dp1, "inputs": [ids["pzoff"]]},
        )
        ids["proc"], ids["pz"] = process["id"], process["upload"]
        ids["pzup"] = pz_upload(svc, "owner", scene)
        for key in ("ts", "ots"):
            wait_done(svc, ids[key])
        pz_ts = svc.ok("GET", f"/api/processes/{ids['proc']}/", "owner", 200)
        deadline = time.monotonic() + 240
        while pz_ts["status"] != "Successful":
            assert pz_ts["status"] in ("Pending", "Running") and time.monotonic() < deadline, pz_ts
            time.sleep(0.3)
            pz_ts = svc.ok("GET", f"/api/processes/{ids['proc']}/", "owner", 200)
        yield svc


@pytest.fixture(scope="module")
def token_mode(tmp_path_factory, scene):
    """The server with ``TSM_API_TOKEN``: no token, no access."""
    with _served(tmp_path_factory, scene, ADMIN) as svc:
        yield svc


@pytest.fixture(scope="module")
def open_mode(tmp_path_factory, scene):
    """The server without ``TSM_API_TOKEN``: no token (or an unknown one) is the admin."""
    with _served(tmp_path_factory, scene, None) as svc:
        yield svc


# -- the matrix: route x caller -> status ------------------------------------------------------
#: a target made fresh for one call (for routes that change or remove it)
Fresh = Callable[[Service, dict], int]


def _fresh_ts(owner: str | None) -> Fresh:
    return lambda svc, scene: disposable_training_set(svc, owner)


def _fresh_pz(who: str) -> Fresh:
    return lambda svc, scene: pz_upload(svc, who, scene, read=False)


def _upload_body(svc: Service, who: str, scene: dict) -> dict:
    return {
        "data": {"name": f"mine-{who}-{time.monotonic_ns()}"},
        "files": {"file": ("z.csv", _csv(scene), "text/csv")},
    }


def _submit_body(catalog: str) -> Callable[[Service, str, dict], dict]:
    return lambda svc, who, scene: {
        "json": {"name": "m", "redshift_catalog": {"id": svc.ids[catalog]}, "object_catalog": {"release": "dp1"}}
    }


def _pz_file_body(svc: Service, who: str, scene: dict) -> dict:
    return {"files": {"file": ("up.csv", _csv(scene), "text/csv")}, "data": {"role": 0}}


def _process_body(svc: Service, who: str, scene: dict) -> dict:
    return {"json": {"pipeline": 1, "display_name": "m", "release": svc.ids["dp1"], "inputs": [svc.ids["pzoff"]]}}


#: (method, path with {placeholders}, body maker or None, statuses for owner, other, admin, anon)
ROUTES: list[tuple[str, str, Any, tuple[int, int, int, int]]] = [
    # the JSON API
    ("GET", "/api/releases", None, (200, 200, 200, 401)),
    ("GET", "/api/releases/dp1/flux-types", None, (200, 200, 200, 401)),
    ("GET", "/api/dereddeners", None, (200, 200, 200, 401)),
    ("GET", "/api/conventions", None, (200, 200, 200, 401)),
    ("GET", "/api/formats", None, (200, 200, 200, 401)),
    ("GET", "/api/redshift-catalogs", None, (200, 200, 200, 401)),
    ("POST", "/api/redshift-catalogs", _upload_body, (201, 201, 201, 401)),
    ("POST", "/api/training-sets", _submit_body("cat"), (202, 422, 202, 401)),
    ("POST", "/api/training-sets", _submit_body("ocat"), (202, 202, 202, 401)),
    ("GET", "/api/training-sets", None, (200, 200, 200, 401)),
    ("GET", "/api/training-sets/{ts}", None, (200, 404, 200, 401)),
    ("GET", "/api/training-sets/{ots}", None, (200, 200, 200, 401)),
    ("GET", "/api/training-sets/{ts}/file", None, (200, 404, 200, 401)),
    ("GET", "/api/training-sets/{ots}/file", None, (200, 200, 200, 401)),
    ("GET", "/api/training-sets/{ts}/unmatched", None, (200, 404, 200, 401)),
    ("GET", "/api/training-sets/{ots}/unmatched", None, (200, 200, 200, 401)),
    ("GET", "/api/training-sets/{ts}/report", None, (200, 404, 200, 401)),
    ("POST", "/api/training-sets/{ts}/cancel", None, (409, 404, 409, 401)),
    ("POST", "/api/training-sets/{ots}/cancel", None, (404, 404, 409, 401)),
    ("DELETE", "/api/training-sets/{fresh}", _fresh_ts("alice"), (204, 404, 204, 401)),
    ("DELETE", "/api/training-sets/{fresh}", _fresh_ts(None), (404, 404, 204, 401)),
    ("GET", f"/api/training-sets/{HUGE}", None, (404, 404, 404, 401)),
    ("GET", f"/api/training-sets/{HUGE}/file", None, (404, 404, 404, 401)),
    ("GET", f"/api/training-sets/{HUGE}/unmatched", None, (404, 404, 404, 401)),
    ("GET", f"/api/training-sets/{HUGE}/report", None, (404, 404, 404, 401)),
    ("POST", f"/api/training-sets/{HUGE}/cancel", None, (404, 404, 404, 401)),
    ("DELETE", f"/api/training-sets/{HUGE}", None, (404, 404, 404, 401)),
    # the Photo-z Server API
    ("GET", "/api/", None, (200, 200, 200, 401)),
    ("GET", "/api/releases/", None, (200, 200, 200, 401)),
    ("GET", "/api/releases/1/", None, (200, 200, 200, 401)),
    ("GET", "/api/product-types/", None, (200, 200, 200, 401)),
    ("GET", "/api/product-types/1/", None, (200, 200, 200, 401)),
    ("GET", "/api/pipelines/", None, (200, 200, 200, 401)),
    ("GET", "/api/pipelines/1/", None, (200, 200, 200, 401)),
    ("GET", "/api/users/", None, (200, 200, 200, 401)),
    ("GET", "/api/products/", None, (200, 200, 200, 401)),
    ("OPTIONS", "/api/products/", None, (200, 200, 200, 401)),
    (
        "POST",
        "/api/products/",
        lambda s, w, sc: {"json": {"display_name": "x", "product_type": 1}},
        (201, 201, 201, 401),
    ),
    ("GET", "/api/products/{pz}/", None, (200, 404, 200, 401)),
    ("GET", "/api/products/{pzoff}/", None, (200, 200, 200, 401)),
    ("PATCH", "/api/products/{pz}/", lambda s, w, sc: {"json": {"description": "d"}}, (200, 404, 200, 401)),
    ("PATCH", "/api/products/{pzoff}/", lambda s, w, sc: {"json": {"description": "d"}}, (404, 404, 200, 401)),
    ("GET", "/api/products/{pzup}/registry/", None, (200, 404, 200, 401)),
    ("GET", "/api/products/{pz}/main_file_info/", None, (200, 404, 200, 401)),
    ("POST", "/api/products/{pz}/download/main-file/prepare/", None, (200, 404, 200, 401)),
    ("GET", "/api/products/{pz}/download/main-file/status/", None, (200, 404, 200, 401)),
    ("GET", "/api/products/{pz}/download/main-file/file/", None, (200, 404, 200, 401)),
    ("POST", "/api/products/{pz}/download/prepare/", None, (200, 404, 200, 401)),
    ("GET", "/api/products/{pz}/download/status/", None, (200, 404, 200, 401)),
    ("GET", "/api/products/{pz}/download/file/", None, (200, 404, 200, 401)),
    ("GET", "/api/products/{pzoff}/download/main-file/file/", None, (200, 200, 200, 401)),
    ("GET", "/api/product-files/", None, (200, 200, 200, 401)),
    ("POST", "/api/product-files/", _fresh_pz("owner"), (201, 404, 201, 401)),
    ("GET", "/api/product-contents/", None, (200, 200, 200, 401)),
    ("GET", "/api/product-contents/?product={pzup}", None, (200, 404, 200, 401)),
    ("GET", "/api/product-contents/{content}/", None, (200, 404, 200, 401)),
    ("PATCH", "/api/product-contents/{content}/", lambda s, w, sc: {"json": {"alias": "ra"}}, (200, 404, 200, 401)),
    ("GET", "/api/processes/", None, (200, 200, 200, 401)),
    ("POST", "/api/processes/", _process_body, (201, 201, 201, 401)),
    ("GET", "/api/processes/{proc}/", None, (200, 404, 200, 401)),
    ("GET", "/api/processes/{proc}/stop/", None, (200, 404, 200, 401)),
    ("DELETE", "/api/products/{fresh}/", _fresh_pz("owner"), (204, 404, 204, 401)),
    ("DELETE", "/api/products/{fresh}/", _fresh_pz("admin"), (404, 404, 204, 401)),
    ("GET", f"/api/products/{HUGE}/", None, (404, 404, 404, 401)),
    ("PATCH", f"/api/products/{HUGE}/", lambda s, w, sc: {"json": {"description": "d"}}, (404, 404, 404, 401)),
    ("DELETE", f"/api/products/{HUGE}/", None, (404, 404, 404, 401)),
    ("GET", f"/api/products/{HUGE}/main_file_info/", None, (404, 404, 404, 401)),
    ("GET", f"/api/product-contents/{HUGE}/", None, (404, 404, 404, 401)),
    ("GET", f"/api/processes/{HUGE}/", None, (404, 404, 404, 401)),
    ("GET", f"/api/processes/{HUGE}/stop/", None, (404, 404, 404, 401)),
]


def _case_id(route: tuple) -> str:
    return f"{route[0]} {route[1]}"


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("route", ROUTES, ids=[_case_id(r) for r in ROUTES])
@pytest.mark.parametrize("mode", ["token_mode", "open_mode"])
def test_route_by_caller(request, scene, mode, route, who):
    """Each answer of the table; in open mode, no token (or the unset admin token) is the admin."""
    method, path, extra, statuses = route
    svc = request.getfixturevalue(mode)
    kwargs: dict[str, Any] = {}
    if path == "/api/product-files/" and method == "POST":  # the product is a form field there
        kwargs = _pz_file_body(svc, who, scene)
        kwargs["data"]["product"] = extra(svc, scene)
    elif "{fresh}" in path:
        path = path.replace("{fresh}", str(extra(svc, scene)))
    elif extra is not None:
        kwargs = extra(svc, who, scene)
    if "{content}" in path:  # re-reading the upload (registry/ above) numbers its columns anew
        svc.ids["content"] = svc.sql("SELECT MIN(id) FROM pz_contents WHERE product_id = ?", svc.ids["pzup"])[0][0]
    path = path.format(**svc.ids)
    expected = statuses[CALLERS.index("admin" if mode == "open_mode" and who == "anon" else who)]
    answer = svc.call(method, path, who, **kwargs)
    assert answer.status_code == expected, (answer.status_code, answer.text)
    if expected in (401, 404):  # DRF's {"detail"} on the Photo-z Server's routes, ours elsewhere
        body = answer.json()
        drf = path.split("?")[0].endswith("/")
        assert ("detail" in body) if drf else (body["field"] in ("id", "token"))
        assert "alice" not in answer.text  # not even the owner of what a caller may not see


@pytest.mark.parametrize("who,user", [("owner", "alice"), ("other", "bob"), ("admin", None)])
def test_lists_hold_exactly_what_the_caller_may_see(token_mode, who, user):
    svc = token_mode
    mine = "owner IS NULL OR owner = ?" if user else "1 = 1 OR ? IS NULL"
    expected_sets = {r[0] for r in svc.sql(f"SELECT id FROM products WHERE {mine}", user)}
    sets = svc.ok("GET", "/api/training-sets?limit=1000", who, 200)
    assert {p["id"] for p in sets} == expected_sets
    owners = dict(svc.sql("SELECT id, owner FROM products"))
    assert all(p["owner"] == owners[p["id"]] for p in sets)
    expected_cats = {r[0] for r in svc.sql(f"SELECT id FROM redshift_catalogs WHERE {mine}", user)}
    assert {c["id"] for c in svc.ok("GET", "/api/redshift-catalogs", who, 200)} == expected_cats
    readable = "owner IS NULL OR official = 1 OR owner = ?" if user else "1 = 1 OR ? IS NULL"
    live = (
        "(training_set_id IS NULL OR training_set_id IN (SELECT id FROM products)) AND "
        "(catalog_id IS NULL OR catalog_id IN (SELECT id FROM redshift_catalogs))"
    )
    expected_pz = {r[0] for r in svc.sql(f"SELECT id FROM pz_products WHERE ({readable}) AND {live}", user)}
    listed_pz = {p["id"] for p in svc.ok("GET", "/api/products/?page_size=1000", who, 200)["results"]}
    assert listed_pz == expected_pz
    procs = {p["id"] for p in svc.ok("GET", "/api/processes/?page_size=1000", who, 200)["results"]}
    expected_procs = {r[0] for r in svc.sql("SELECT id FROM pz_processes WHERE owner = ? OR ? IS NULL", user, user)} & {
        r[0] for r in svc.sql("SELECT p.id FROM pz_processes p JOIN products t ON t.id = p.training_set_id")
    }
    assert procs == expected_procs


def test_catalog_names_are_per_owner(token_mode, scene):
    svc = token_mode
    # "desi" is Alice's and Bob's: each builds from their own by name, the admin must choose
    alice = submit(svc, "owner", "desi")
    bob = submit(svc, "other", "desi")
    assert alice["config"]["redshift_catalog"]["id"] == svc.ids["cat"]
    assert bob["config"]["redshift_catalog"]["id"] == svc.ids["bobcat"]
    ambiguous = submit(svc, "admin", "desi", status=422)
    assert ambiguous["field"] == "redshift_catalog"
    assert f"desi (alice, id {svc.ids['cat']})" in ambiguous["message"]
    assert f"desi (bob, id {svc.ids['bobcat']})" in ambiguous["message"]
    # Alice cannot register a second "desi"; Bob cannot build from Alice's by id: as if unknown
    again = svc.ok(
        "POST",
        "/api/redshift-catalogs",
        "owner",
        422,
        data={"name": "desi"},
        files={"file": ("z.csv", _csv(scene), "text/csv")},
    )
    assert again["field"] == "name" and "desi" in again["message"]
    unknown = submit(svc, "other", svc.ids["cat"], status=422)
    missing = submit(svc, "other", 10**9, status=422)
    assert unknown["field"] == missing["field"] == "redshift_catalog"
    assert unknown["message"].startswith("no registered redshift catalog")
    assert unknown["message"].split(";")[1] == missing["message"].split(";")[1]  # the same choices listed
    assert "alice" not in unknown["message"]


def test_queue_limit_per_user(token_mode):
    from tsm_core.products.registry import Registry

    svc = token_mode
    registry = Registry.at_home(svc.home)
    # four queued ones "run" by this test process (alive: they stay queued), whatever else Bob has
    held = [registry.create_product("held", "", {"name": "held"}, status="queued", owner="bob") for _ in range(4)]
    try:
        refused = submit(svc, "other", svc.ids["bobcat"], status=429)
        assert refused["field"] == "id" and "limit" in refused["message"] and "4" in refused["message"]
        pz = svc.call(
            "POST",
            "/api/processes/",
            "other",
            json={"pipeline": 1, "display_name": "m", "release": svc.ids["dp1"], "inputs": [svc.ids["pzoff"]]},
        )
        assert pz.status_code == 429 and "limit" in pz.json()["detail"]
        submit(svc, "owner", svc.ids["cat"])  # another user's queue is their own
    finally:
        for product_id in held:
            registry.fail_product(product_id, "released by the test", "cancelled")


def test_report_rendered_once_then_served_from_the_stored_copy(token_mode):
    svc = token_mode
    path = f"/api/training-sets/{svc.ids['ots']}/report"
    first = svc.ok("GET", path, "other", 200)
    stored = svc.home / "reports" / str(svc.ids["ots"])
    assert (stored / "fragment.html").read_text() == first["html"]
    started = time.monotonic()
    second = svc.ok("GET", path, "owner", 200)
    assert time.monotonic() - started < 1.0
    assert second == first and first["html"] and first["numbers"]


def test_json_delete_leaves_the_photoz_product_consistent(token_mode):
    svc = token_mode
    process = svc.ok(
        "POST",
        "/api/processes/",
        "owner",
        201,
        json={"pipeline": 1, "display_name": "to delete", "release": svc.ids["dp1"], "inputs": [svc.ids["pzoff"]]},
    )
    ts = svc.sql("SELECT training_set_id FROM pz_processes WHERE id = ?", process["id"])[0][0]
    wait_done(svc, ts)
    svc.ok("DELETE", f"/api/training-sets/{ts}", "owner", 204)
    assert svc.call("GET", f"/api/products/{process['upload']}/", "owner").status_code == 404
    assert svc.call("GET", f"/api/processes/{process['id']}/", "owner").status_code == 404
    listed = svc.ok("GET", "/api/products/?page_size=1000", "owner", 200)["results"]
    assert process["upload"] not in {p["id"] for p in listed}
    assert all(p["product_status"] != "Processing" or p["id"] != process["upload"] for p in listed)


def test_lineas_client_deletes_a_product(token_mode, scene):
    pzserver = pytest.importorskip("pzserver")
    svc = token_mode
    mine = pz_upload(svc, "owner", scene, read=False)
    others = pz_upload(svc, "other", scene, read=False)
    alice = pzserver.PzServer(token=svc.tokens["owner"], host=svc.url + "/api/")
    alice.delete_product(mine)
    assert svc.call("GET", f"/api/products/{mine}/", "admin").status_code == 404
    with pytest.raises(Exception):  # noqa: B017 - the client raises its own error for a 404
        alice.delete_product(others)
    assert svc.call("GET", f"/api/products/{others}/", "other").status_code == 200
    # a training set's product: the training set and its file go too
    ts_product = svc.ok("GET", f"/api/products/{svc.ids['pz']}/", "owner", 200)
    assert ts_product["is_owner"]
    ts = svc.sql("SELECT training_set_id FROM pz_products WHERE id = ?", svc.ids["pz"])[0][0]
    output = Path(svc.sql("SELECT output_path FROM products WHERE id = ?", ts)[0][0])
    assert output.exists()
    alice.delete_product(svc.ids["pz"])
    assert svc.call("GET", f"/api/training-sets/{ts}", "admin").status_code == 404
    assert not output.exists()


def test_open_mode_anonymous_is_the_operator(open_mode, scene):
    svc = open_mode
    anon_cat = upload_catalog(svc, "anon", "open", scene)
    assert svc.sql("SELECT owner FROM redshift_catalogs WHERE id = ?", anon_cat)[0][0] is None  # official
    everything = {r[0] for r in svc.sql("SELECT id FROM redshift_catalogs")}
    assert {c["id"] for c in svc.ok("GET", "/api/redshift-catalogs", "anon", 200)} == everything
    alices = {r[0] for r in svc.sql("SELECT id FROM redshift_catalogs WHERE owner IS NULL OR owner = 'alice'")}
    assert {c["id"] for c in svc.ok("GET", "/api/redshift-catalogs", "owner", 200)} == alices != everything
    alice_set = disposable_training_set(svc, "alice")
    svc.ok("DELETE", f"/api/training-sets/{alice_set}", "anon", 204)  # anonymous reaches everything
    svc.ok("POST", f"/api/training-sets/{svc.ids['ots']}/cancel", "owner", 404)  # official: read-only for a user
