"""One authorization model for both APIs of a real ``tsm serve`` over real HTTP, in token
mode: every route of the JSON API and of the Photo-z Server API x (the owner, another user,
the admin token, no token); per-owner catalog names; the per-user queue limit; ids out of
range; LIneA's client deleting a product; reports served from a stored copy. Open mode is in
``test_web_authorization_open.py``; the table and the served home in ``web_authz.py``.

Alice owns the things under test, Bob is another user, the admin holds ``TSM_API_TOKEN``.
Expected lists are computed from the registry file with plain SQL, not through the code.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from web_authz import ADMIN, CALLERS, ROUTE_IDS, ROUTES, catalog_csv, check_route, pz_upload, served, submit, wait_done


@pytest.fixture(scope="module")
def token_mode(tmp_path_factory, scene):
    """The server with ``TSM_API_TOKEN``: no token, no access."""
    with served(tmp_path_factory, scene, ADMIN) as svc:
        yield svc


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_route_by_caller(token_mode, scene, route, who):
    """Each answer of the table."""
    check_route(token_mode, scene, route, who, open_mode=False)


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
        files={"file": ("z.csv", catalog_csv(scene), "text/csv")},
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
