"""What the authorization tests of both modes share (``test_web_authorization.py``, token
mode; ``test_web_authorization_open.py``, open mode; two files so that two test workers run
them side by side): a served ``$TSM_HOME`` with Alice's, Bob's and the operator's things, and
the table of every route of the JSON API and of the Photo-z Server API x (the owner, another
user, the admin token, no token) with the status each caller must get.

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


def catalog_csv(scene: dict, rows: int = 60) -> bytes:
    """The first ``rows`` redshifts of the scene as an uploaded CSV file."""
    return scene["redshifts"].head(rows).to_csv(index=False).encode()


def upload_catalog(svc: Service, who: str, name: str, scene: dict) -> int:
    return svc.ok(
        "POST",
        "/api/redshift-catalogs",
        who,
        201,
        data={"name": name},
        files={"file": ("z.csv", catalog_csv(scene), "text/csv")},
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
            files={"file": ("up.csv", catalog_csv(scene), "text/csv")},
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
def served(tmp_path_factory, scene, admin: str | None):
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
        "files": {"file": ("z.csv", catalog_csv(scene), "text/csv")},
    }


def _submit_body(catalog: str) -> Callable[[Service, str, dict], dict]:
    return lambda svc, who, scene: {
        "json": {"name": "m", "redshift_catalog": {"id": svc.ids[catalog]}, "object_catalog": {"release": "dp1"}}
    }


def _pz_file_body(svc: Service, who: str, scene: dict) -> dict:
    return {"files": {"file": ("up.csv", catalog_csv(scene), "text/csv")}, "data": {"role": 0}}


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


#: the test ids of :data:`ROUTES`
ROUTE_IDS = [_case_id(r) for r in ROUTES]


def check_route(svc: Service, scene: dict, route: tuple, who: str, open_mode: bool) -> None:
    """One answer of the table: ``who`` calls ``route`` on ``svc``; in open mode, no token (or
    the unset admin token) is the admin."""
    method, path, extra, statuses = route
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
    expected = statuses[CALLERS.index("admin" if open_mode and who == "anon" else who)]
    answer = svc.call(method, path, who, **kwargs)
    assert answer.status_code == expected, (answer.status_code, answer.text)
    if expected in (401, 404):  # DRF's {"detail"} on the Photo-z Server's routes, ours elsewhere
        body = answer.json()
        drf = path.split("?")[0].endswith("/")
        assert ("detail" in body) if drf else (body["field"] in ("id", "token"))
        assert "alice" not in answer.text  # not even the owner of what a caller may not see
