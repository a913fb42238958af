"""JupyterHub 6.1.1's tests/test_api.py, user part: listing (state, name filter, sort), the
self model, creating (single, multiple, admin), deleting, admin flag, renaming, and activity.

Black-box ports against the real `atrium serve` (see conftest.py and api_compat.py); each test
names the JupyterHub test it ports. JupyterHub's tests start from a database holding the users
`admin` and `user`; these start from fresh users of their own and filter lists to them.

The hub: JupyterHub's MockPAMAuthenticator refuses to add users whose names start with `dne`
(test_add_user_bad) and the username_pattern `w.*` refuses others (test_add_multi_user_invalid);
Atrium's authenticator refuses the names in `auth.blocked_users`, set here. Simulated starts
take 4 s and the API answers 202 after 100 ms, so that a start stays pending while
test_get_users_state_filter looks (JupyterHub sets its spawner's `_spawn_pending`).
"""
import json
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest

from api_compat import (
    PAGINATION_MEDIA_TYPE,
    TIMESTAMP,
    add_user,
    api_request,
    hub_fixture,
    new_name,
    normalize_timestamp,
    parse_date,
    subset,
    token_header,
    user_model,
    utcnow,
)

SUFFIX = uuid.uuid4().hex[:8]
DNE_USER = f"dne_newuser{SUFFIX}"
# test_add_multi_user_invalid: JupyterHub's pattern admits willow and refuses andrew and tara
WILLOW, ANDREW, TARA = f"willow{SUFFIX}", f"andrew{SUFFIX}", f"tara{SUFFIX}"

app = hub_fixture(env={
    "ATRIUM_AUTH__BLOCKED_USERS": f"{DNE_USER},{ANDREW},{TARA}",
    "ATRIUM_SIMULATED__START_DELAY_MIN": "4s",
    "ATRIUM_SIMULATED__START_DELAY_MAX": "4s",
    "ATRIUM_SPAWN__SLOW_SPAWN_TIMEOUT": "100ms",
})


def normalize_user(user):
    """JupyterHub's normalize_user"""
    user = dict(user)
    for key in ("created", "last_activity"):
        user[key] = normalize_timestamp(user[key])
    if "roles" in user:
        user["roles"] = sorted(user["roles"])
    if "servers" in user:
        user["servers"] = {k: dict(v) for k, v in user["servers"].items()}
        for server in user["servers"].values():
            for key in ("started", "last_activity"):
                server[key] = normalize_timestamp(server[key])
    return user


def fill_user(model):
    """JupyterHub's fill_user"""
    model.setdefault("server", None)
    model.setdefault("kind", "user")
    model.setdefault("roles", [])
    model.setdefault("groups", [])
    model.setdefault("admin", False)
    model.setdefault("pending", None)
    model.setdefault("created", TIMESTAMP)
    model.setdefault("last_activity", TIMESTAMP)
    model.setdefault("servers", {})
    return model


def list_users(app, **params):
    r = api_request(app, "users", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def admin_requester(app, is_admin):
    """JupyterHub's create_user_with_scopes("admin:users") with `admin = is_admin`. Atrium has no
    custom roles: a user holds admin:users only as an admin. The admin requester is a fresh
    admin's token limited to admin:users; the other a fresh user's token (without admin:users,
    so JupyterHub answers the same 403 for it)."""
    if is_admin:
        return app.token_for(add_user(app, admin=True), scopes=["admin:users"])
    return app.token_for(add_user(app))


# --------------
# User API tests
# --------------


def test_get_users(app):
    """ported from test_api.py::test_get_users (an admin and a user of this test's own, in
    place of the database's `admin` and `user`)"""
    admin = add_user(app, name=new_name("a"), admin=True, used=True)
    user = add_user(app, name=new_name("u"), used=True)

    r = api_request(app, "users")
    assert r.status_code == 200

    r_user = api_request(app, "users", token=app.token_for(user))
    users = sorted((u for u in r.json() if u["name"] in (admin, user)), key=lambda d: d["name"])
    users = [normalize_user(u) for u in users]
    user_model = {"name": user, "admin": False, "roles": ["user"], "auth_state": None, "user_info": None}
    expected = [
        fill_user({"name": admin, "admin": True, "roles": ["admin", "user"], "auth_state": None, "user_info": None}),
        fill_user(user_model),
    ]
    assert ([subset(u, e) for u, e in zip(users, expected)], r_user.status_code) == (expected, 403), r_user.text


@pytest.fixture(scope="module")
def state_users(app):
    """test_get_users_state_filter's users, made once per hub:

    - has_one_active: one active (pending) server, one inactive (named, created, never started)
    - has_two_active: two active, ready servers (default and `secondary`)
    - has_two_inactive: two servers, neither active (the default, and `secondary` created)
    - has_zero: no servers at all
    """
    prefix = "st" + uuid.uuid4().hex[:8]
    names = SimpleNamespace(**{k: add_user(app, name=f"{prefix}-{k.replace('_', '')}")
                               for k in ("has_one_active", "has_two_active", "has_two_inactive", "has_zero")})
    names.prefix = prefix
    r = api_request(app, "users", names.has_two_inactive, "servers", "secondary", method="put")
    assert r.status_code == 201, r.text
    r = api_request(app, "users", names.has_one_active, "servers", "inactive", method="put")
    assert r.status_code == 201, r.text
    for server in ("", "secondary"):
        path = ("server",) if server == "" else ("servers", server)
        r = api_request(app, "users", names.has_two_active, *path, method="post")
        assert r.status_code in (201, 202), r.text
    for server in ("", "secondary"):
        app.wait_for_server(names.has_two_active, server)
    r = api_request(app, "users", names.has_one_active, "server", method="post")
    assert r.status_code == 202, r.text
    return names


@pytest.mark.parametrize("state", ("inactive", "active", "ready", "invalid"))
def test_get_users_state_filter(app, state, state_users):
    """ported from test_api.py::test_get_users_state_filter. The users' names share a prefix,
    and the query adds name_filter with it so the page holds only them."""
    # has_one_active's start is pending for 4 s after the fixture: check it still is
    assert user_model(app, state_users.has_one_active)["servers"][""]["pending"] == "spawn"
    user_states = {
        "inactive": ["has_two_inactive", "has_zero"],
        "ready": ["has_two_active"],
        "active": ["has_one_active", "has_two_active"],
        "invalid": [],
    }
    expected = sorted(getattr(state_users, k) for k in user_states[state])

    r = api_request(app, "users", params={"state": state, "name_filter": state_users.prefix},
                    headers={"Accept": PAGINATION_MEDIA_TYPE})
    if state == "invalid":
        assert r.status_code == 400
        return
    assert r.status_code == 200

    response = r.json()
    users = response["items"]
    page = response["_pagination"]

    usernames = sorted(u["name"] for u in users)
    assert usernames == expected
    if state == "ready":
        # "ready" can't actually get a correct count because it has post-filtering applied
        # but it has an upper bound
        assert page["total"] >= len(users)
    else:
        assert page["total"] == len(users)


def test_get_users_name_filter(app):
    """ported from test_api.py::test_get_users_name_filter (q, qr, qrs, qrst after a prefix of
    this test's own)"""
    p = "nf" + uuid.uuid4().hex[:8]
    names = [f"{p}q", f"{p}qr", f"{p}qrs", f"{p}qrst"]
    for name in names:
        add_user(app, name=name)

    response_users = [u.get("name") for u in list_users(app)]
    assert set(names).intersection(response_users) == set(names)

    for i, filt in enumerate(names):
        response_users = [u.get("name") for u in list_users(app, name_filter=filt)]
        assert response_users == names[i:]


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("sort", ["id", "name", "last_activity"])
def test_get_users_sort(app, sort, direction):
    """ported from test_api.py::test_get_users_sort (last_activity set through the activity
    API; the prefix `xyz` is this test's own)"""
    orders = {
        "id": ["1", "2", "3", "4"],
        "name": ["a", "b", "c", "d"],
        "last_activity": ["never", "early", "middle", "late"],
    }
    expected_order = orders[sort]
    sort_param = sort
    if direction == "desc":
        expected_order.reverse()
        sort_param = "-" + sort

    prefix = "xyz" + uuid.uuid4().hex[:8]
    now = utcnow()
    for suffix, activity in [("c-1-middle", now - timedelta(hours=1)), ("a-2-late", now),
                             ("d-3-never", None), ("b-4-early", now - timedelta(days=1))]:
        name = add_user(app, name=f"{prefix}-{suffix}")
        if activity is not None:
            r = api_request(app, "users", name, "activity", method="post",
                            data=json.dumps({"last_activity": activity.isoformat()}))
            assert r.status_code == 200, r.text

    class UserName:
        def __init__(self, username):
            _, self.name, self.id, self.last_activity = username.split("-")

    params = {"name_filter": prefix, "sort": sort_param, "limit": 2}
    r = api_request(app, "users", params=params, headers={"Accept": PAGINATION_MEDIA_TYPE})
    assert r.status_code == 200
    page_1 = r.json()
    assert page_1["_pagination"]["total"] == 4
    users = page_1["items"]
    assert len(users) == 2

    params["offset"] = page_1["_pagination"]["next"]["offset"]
    r = api_request(app, "users", params=params, headers={"Accept": PAGINATION_MEDIA_TYPE})
    assert r.status_code == 200
    page_2 = r.json()

    users.extend(page_2["items"])
    usernames = [UserName(u["name"]) for u in users]
    sorted_fields = [getattr(u, sort) for u in usernames]
    assert sorted_fields == expected_order


def test_get_users_sort_invalid(app):
    """ported from test_api.py::test_get_users_sort_invalid"""
    r = api_request(app, "users", params={"sort": "servers"})
    assert r.status_code == 400
    r = api_request(app, "users", params={"sort": "--id"})
    assert r.status_code == 400


def test_get_self(app):
    """ported from test_api.py::test_get_self (JupyterHub identifies the user through an OAuth
    token; here through an API token, whose id `token_id` names)"""
    r = api_request(app, "user")
    r.raise_for_status()
    assert r.json()["kind"] == "user"

    name = add_user(app)
    r = api_request(app, "users", name, "tokens", method="post", json={})
    assert r.status_code == 201, r.text
    token, token_id = r.json()["token"], r.json()["id"]
    r = api_request(app, "user", headers=token_header(token))
    r.raise_for_status()
    model = r.json()
    assert model["name"] == name
    assert model["token_id"] == token_id

    # invalid auth gets 403
    r = api_request(app, "user", headers={"Authorization": "token notvalid"})
    assert r.status_code == 403


def test_add_user(app):
    """ported from test_api.py::test_add_user"""
    name = new_name("newuser")
    r = api_request(app, "users", name, method="post")
    assert r.status_code == 201
    user = user_model(app, name)
    assert user["name"] == name
    assert not user["admin"]
    # the default 'user' role
    assert "user" in user["roles"]
    assert "admin" not in user["roles"]


def test_get_user(app):
    """ported from test_api.py::test_get_user"""
    name = add_user(app)
    token = app.token_for(name)
    # get own model
    r = api_request(app, "users", name, token=token)
    r.raise_for_status()
    # admin request
    r = api_request(app, "users", name)
    r.raise_for_status()
    user = normalize_user(r.json())

    # admin request, no such user
    r = api_request(app, "users", new_name("nosuchuser"))
    assert r.status_code == 404

    # unauthorized request, no such user
    r_nosuch = api_request(app, "users", new_name("nosuchuser"), token=token)
    # unauthorized request for existing user
    r_admin = api_request(app, "users", "admin", token=token)

    expected = fill_user({"name": name, "roles": ["user"], "auth_state": None, "user_info": None})
    assert (subset(user, expected), r_nosuch.status_code, r_admin.status_code) == (expected, 404, 404), \
        (r_nosuch.text, r_admin.text)


def test_add_multi_user_bad(app):
    """ported from test_api.py::test_add_multi_user_bad"""
    r = api_request(app, "users", method="post")
    assert r.status_code == 400
    r = api_request(app, "users", method="post", data="{}")
    assert r.status_code == 400
    r = api_request(app, "users", method="post", data="[]")
    assert r.status_code == 400


def test_add_multi_user_invalid(app):
    """ported from test_api.py::test_add_multi_user_invalid (the refused names are blocked
    here, JupyterHub's don't match its username_pattern)"""
    willow, andrew, tara = WILLOW.capitalize(), ANDREW.capitalize(), TARA.capitalize()
    r = api_request(app, "users", method="post", data=json.dumps({"usernames": [willow, andrew, tara]}))
    assert r.status_code == 400
    assert r.json()["message"] == f"Invalid usernames: {ANDREW}, {TARA}"


def test_add_multi_user(app):
    """ported from test_api.py::test_add_multi_user"""
    p = uuid.uuid4().hex[:8]
    names = [f"a{p}", f"b{p}"]
    r = api_request(app, "users", method="post", data=json.dumps({"usernames": names}))
    assert r.status_code == 201
    reply = r.json()
    r_names = [user["name"] for user in reply]
    assert names == r_names

    for name in names:
        user = user_model(app, name)
        assert user["name"] == name
        assert not user["admin"]
        assert "user" in user["roles"]
        assert "admin" not in user["roles"]

    # try to create the same users again
    r = api_request(app, "users", method="post", data=json.dumps({"usernames": names}))
    assert r.status_code == 409

    names = [f"a{p}", f"b{p}", f"ab{p}"]

    # try to create the same users again
    r = api_request(app, "users", method="post", data=json.dumps({"usernames": names}))
    assert r.status_code == 201
    reply = r.json()
    r_names = [user["name"] for user in reply]
    assert r_names == [f"ab{p}"]


@pytest.mark.parametrize("is_admin", [True, False])
def test_add_multi_user_admin(app, is_admin):
    """ported from test_api.py::test_add_multi_user_admin (see admin_requester)"""
    token = admin_requester(app, is_admin)
    p = uuid.uuid4().hex[:8]
    names = [f"c{p}", f"d{p}"]
    r = api_request(app, "users", method="post", data=json.dumps({"usernames": names, "admin": True}), token=token)
    if is_admin:
        assert r.status_code == 201, r.text
    else:
        assert r.status_code == 403, r.text
        return
    reply = r.json()
    r_names = [user["name"] for user in reply]
    assert names == r_names

    for name in names:
        user = user_model(app, name)
        assert user["name"] == name
        assert user["admin"]
        assert "user" in user["roles"]
        assert "admin" in user["roles"]


def test_add_user_bad(app):
    """ported from test_api.py::test_add_user_bad (the authenticator refuses the name)"""
    r = api_request(app, "users", DNE_USER, method="post")
    assert r.status_code == 400
    r = api_request(app, "users", DNE_USER)
    assert r.status_code == 404


def test_add_user_duplicate(app):
    """ported from test_api.py::test_add_user_duplicate"""
    name = add_user(app)
    r = api_request(app, "users", name, method="post")
    # special 409 conflict for creating a user that already exists
    assert r.status_code == 409


@pytest.mark.parametrize("is_admin", [True, False])
def test_add_admin(app, is_admin):
    """ported from test_api.py::test_add_admin (see admin_requester)"""
    token = admin_requester(app, is_admin)
    name = new_name("newadmin")
    r = api_request(app, "users", name, method="post", data=json.dumps({"admin": True}), token=token)
    if is_admin:
        assert r.status_code == 201, r.text
    else:
        assert r.status_code == 403, r.text
        return
    user = user_model(app, name)
    assert user["name"] == name
    assert user["admin"]
    assert "user" in user["roles"]
    assert "admin" in user["roles"]


def test_delete_user(app):
    """ported from test_api.py::test_delete_user"""
    mal = add_user(app, name=new_name("mal"))
    r = api_request(app, "users", mal, method="delete")
    assert r.status_code == 204


@pytest.mark.parametrize("is_admin", [True, False])
def test_user_make_admin(app, is_admin):
    """ported from test_api.py::test_user_make_admin (see admin_requester)"""
    token = admin_requester(app, is_admin)
    name = new_name("make_admin")
    r = api_request(app, "users", name, method="post")
    assert r.status_code == 201
    user = user_model(app, name)
    assert user["name"] == name
    assert not user["admin"]
    assert "user" in user["roles"]
    assert "admin" not in user["roles"]

    r = api_request(app, "users", name, method="patch", data=json.dumps({"admin": True}), token=token)
    if is_admin:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 403, r.text
        return
    user = user_model(app, name)
    assert user["name"] == name
    assert user["admin"]
    assert "user" in user["roles"]
    assert "admin" in user["roles"]


@pytest.mark.parametrize(
    "requester_is_admin, user_is_admin",
    [
        (True, True),
        (True, False),
        # (False, False): JupyterHub's requester is a user who is not an admin but holds
        # admin:users (200); Atrium has no such user (no custom roles): not ported.
        (False, True),
    ],
)
def test_user_rename(app, requester_is_admin, user_is_admin):
    """ported from test_api.py::test_user_rename (see admin_requester)"""
    token = admin_requester(app, requester_is_admin)
    user = add_user(app, admin=user_is_admin)
    new = new_name()
    request_name = new.upper()  # test normalization

    before = user_model(app, user)
    r = api_request(app, "users", user, method="patch", data=json.dumps({"name": request_name}), token=token)
    if requester_is_admin or not user_is_admin:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 403, r.text
        return
    renamed = user_model(app, new)
    assert renamed["name"] == new
    # the same user (JupyterHub compares ids): created at the same moment
    assert renamed["created"] == before["created"]
    assert api_request(app, "users", user).status_code == 404


@pytest.mark.parametrize("new_name_kind", ["in/valid", "exists"])
def test_user_rename_invalid(app, new_name_kind):
    """ported from test_api.py::test_user_rename_invalid"""
    user = add_user(app)
    target = "in/valid" if new_name_kind == "in/valid" else add_user(app)
    r = api_request(app, "users", user, method="patch", data=json.dumps({"name": target}))
    assert r.status_code == 400


# ------------------
# Activity API tests
# ------------------


def test_update_activity_403(app):
    """ported from test_api.py::test_update_activity_403"""
    user = add_user(app)
    admin_user = add_user(app, name=new_name("testadmin"), admin=True)
    token = app.token_for(user)
    r = api_request(app, f"users/{admin_user}/activity", headers=token_header(token), data="{}", method="post")
    assert r.status_code == 404, r.text


def test_update_activity_admin(app):
    """ported from test_api.py::test_update_activity_admin"""
    user = add_user(app)
    admin_user = add_user(app, name=new_name("testadmin"), admin=True)
    token = app.token_for(admin_user, roles=["admin"])
    r = api_request(app, f"users/{user}/activity", headers=token_header(token),
                    data=json.dumps({"last_activity": utcnow().isoformat()}), method="post")
    r.raise_for_status()


def test_update_activity_empty_body(app):
    """from users.py ActivityAPIHandler.post (no test_api.py case): a body with neither
    last_activity nor servers is a 400"""
    user = add_user(app)
    r = api_request(app, f"users/{user}/activity", token=app.token_for(user), data="{}", method="post")
    assert r.status_code == 400, r.text
    assert "at least one of" in r.json()["message"]


def test_update_activity_never_started(app):
    """from users.py ActivityAPIHandler._validate_servers (no test_api.py case): the default
    server is always in a user's orm_spawners (User.__init__ creates it), so activity for the
    default server of a user who never started it is accepted"""
    user = add_user(app)
    r = api_request(app, f"users/{user}/activity", token=app.token_for(user), method="post",
                    data=json.dumps({"servers": {"": {"last_activity": utcnow().isoformat()}}}))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "server_name, fresh",
    [
        ("", True),
        ("", False),
        ("exists", True),
        ("exists", False),
        ("nope", True),
        ("nope", False),
    ],
)
def test_update_server_activity(app, server_name, fresh):
    """ported from test_api.py::test_update_server_activity. JupyterHub initializes the
    activity of the default server and of the named server `exists` in its database; here
    `exists` is created (PUT, not started) and both get their activity through the API."""
    user = add_user(app)
    token = app.token_for(user)
    r = api_request(app, "users", user, "servers", "exists", method="put")
    assert r.status_code == 201, r.text
    now = utcnow()
    r = api_request(app, f"users/{user}/activity", method="post", data=json.dumps(
        {"servers": {name: {"last_activity": now.isoformat()} for name in ("", "exists")}}))
    assert r.status_code == 200, r.text

    td = timedelta(minutes=1)
    activity = now + td if fresh else now - td

    r = api_request(app, f"users/{user}/activity", headers=token_header(token), method="post",
                    data=json.dumps({"servers": {server_name: {"last_activity": activity.isoformat()}}}))
    if server_name == "nope":
        assert r.status_code == 400
        reply = r.json()
        assert server_name in reply["message"]
        assert "No such server" in reply["message"]
        assert user in reply["message"]
        return

    r.raise_for_status()

    # check that last activity was updated
    expected = activity if fresh else now
    servers = user_model(app, user, include_stopped_servers=1)["servers"]
    assert server_name in servers, sorted(servers)
    got = servers[server_name]["last_activity"]
    assert got is not None and abs((parse_date(got) - expected).total_seconds()) < 0.001, (got, expected.isoformat())
