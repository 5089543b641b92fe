"""The authorization model of ``test_web_authorization.py`` in open mode (a real ``tsm serve``
without ``TSM_API_TOKEN``, over real HTTP): no token, or an unknown one, is the operator;
users with a token still see only their own things and the official ones.
"""

from __future__ import annotations

import pytest

from web_authz import CALLERS, ROUTE_IDS, ROUTES, check_route, disposable_training_set, served, upload_catalog


@pytest.fixture(scope="module")
def open_mode(tmp_path_factory, scene):
    """The server without ``TSM_API_TOKEN``: no token (or an unknown one) is the admin."""
    with served(tmp_path_factory, scene, None) as svc:
        yield svc


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_route_by_caller(open_mode, scene, route, who):
    """Each answer of the table; no token (or the unset admin token) is the admin."""
    check_route(open_mode, scene, route, who, open_mode=True)


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
