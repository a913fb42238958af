"""JupyterHub 6.1.1's tests/test_api.py::test_active_server_limit, against the real
`atrium serve`: `spawn.active_server_limit` 2 (JupyterHub's `active_server_limit`).

JupyterHub reads its counts of active, ready and pending servers from memory; here they are
read through the API: `GET /users?state=active` and `?state=ready`, narrowed to this test's
users with name_filter.
"""
import uuid

from api_compat import PAGINATION_MEDIA_TYPE, add_user, api_request, wait_stopped

HUB_SPAWN = {"active_server_limit": 2}


def counts(app, prefix):
    """{'active': n, 'ready': n, 'pending': n} over the users whose names start with prefix."""
    result = {}
    for state in ("active", "ready"):
        r = api_request(app, "users", params={"state": state, "name_filter": prefix},
                        headers={"Accept": PAGINATION_MEDIA_TYPE})
        assert r.status_code == 200, r.text
        result[state] = sum(1 for u in r.json()["items"] for s in u["servers"].values()
                            if (state == "ready" and s["ready"]) or state == "active")
    r = api_request(app, "users", params={"name_filter": prefix})
    result["pending"] = sum(1 for u in r.json() for s in u["servers"].values() if s["pending"])
    return result


def test_active_server_limit(app):
    """ported from test_api.py::test_active_server_limit"""
    prefix = "al" + uuid.uuid4().hex[:8]
    names = [add_user(app, name=f"{prefix}-ykka"), add_user(app, name=f"{prefix}-hjarka")]
    essun = add_user(app, name=f"{prefix}-essun")
    try:
        for name in names:
            r = api_request(app, "users", name, "server", method="post")
            r.raise_for_status()
        for name in names:
            app.wait_for_server(name)
        assert counts(app, prefix) == {"active": 2, "ready": 2, "pending": 0}

        # both servers are running: a third should fail with 429
        r = api_request(app, "users", essun, "server", method="post")
        assert r.status_code == 429, r.text
        assert counts(app, prefix) == {"active": 2, "ready": 2, "pending": 0}

        # stop one server
        r = api_request(app, "users", names[0], "server", method="delete")
        r.raise_for_status()
        wait_stopped(app, names[0])
        assert counts(app, prefix) == {"active": 1, "ready": 1, "pending": 0}

        r = api_request(app, "users", essun, "server", method="post")
        r.raise_for_status()
        app.wait_for_server(essun)
        assert counts(app, prefix) == {"active": 2, "ready": 2, "pending": 0}
    finally:
        for name in names + [essun]:
            r = api_request(app, "users", name, "server", method="delete")
            assert r.status_code in (202, 204), r.text
        for name in names + [essun]:
            wait_stopped(app, name)
    assert counts(app, prefix) == {"active": 0, "ready": 0, "pending": 0}
