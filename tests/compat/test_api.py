"""JupyterHub 6.1.1's tests/test_api.py, general part: authentication, content types, bodies,
XSRF, error messages, the root and info endpoints, OPTIONS, the proxy table, and tokens.

Ported to black-box tests of the real `atrium serve` (see conftest.py). Each test names the
JupyterHub test it ports. Where JupyterHub's test reads its database, the port reads the same
fact through the API; fields Atrium adds to a model are tolerated (`subset`), every field
JupyterHub's test compares is compared. No server is started in this module (the proxy tests
read the routing table, which then holds only the hub's route).
"""
import json
import subprocess
from datetime import timedelta
from urllib.parse import quote

import pytest
from hub import BINARY

from api_compat import (
    PAGINATION_MEDIA_TYPE,
    add_user,
    api_request,
    login_user,
    new_name,
    new_password,
    normalize_timestamp,
    parse_date,
    set_password,
    token_header,
    utcnow,
)

# --------------------
# Authentication tests
# --------------------


def test_auth_api(app):
    """ported from test_api.py::test_auth_api"""
    r = api_request(app, "authorizations", "gobbledygook")
    assert r.status_code == 404

    # make a new token of the admin
    api_token = app.token_for("admin")

    # check success:
    r = api_request(app, "authorizations/token", api_token)
    assert r.status_code == 200
    assert r.json()["name"] == "admin"

    # check fail
    r = api_request(app, "authorizations/token", api_token, headers={"Authorization": "no sir"})
    assert r.status_code == 403

    # JupyterHub sends the admin's cookie id as a malformed token; a session cookie's value here
    cookies = login_user(app, "admin", app.hub.admin_password)
    cookie_value = next(v for k, v in cookies.items() if k != "_xsrf")
    r = api_request(app, "authorizations/token", api_token, headers={"Authorization": f"token: {cookie_value}"})
    assert r.status_code == 403


@pytest.mark.parametrize(
    "content_type, status",
    [
        ("text/plain", 403),
        # accepted, but invalid
        ("application/json; charset=UTF-8", 400),
    ],
)
def test_post_content_type(app, content_type, status):
    """ported from test_api.py::test_post_content_type (cookie-authenticated POST, _xsrf in the
    URL as JupyterHub's api_request adds it)"""
    cookies = login_user(app, "admin", app.hub.admin_password)
    r = api_request(app, "users", method="post", data="{}",
                    headers={"Authorization": "", "Content-Type": content_type}, cookies=cookies)
    assert r.status_code == status, r.text


def test_invalid_utf8_json_returns_400(app):
    """ported from test_api.py::test_invalid_utf8_json_returns_400"""
    r = api_request(app, "users", method="post", data=b"\xff\xfe", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


@pytest.mark.parametrize("xsrf_in_url", [True, False, "invalid"])
@pytest.mark.parametrize("method, path", [("GET", "user"), ("POST", "users/{username}/tokens")])
def test_xsrf_check(app, method, path, xsrf_in_url):
    """ported from test_api.py::test_xsrf_check. JupyterHub's test sends a GET for both
    parametrizations (its api_request call passes no method), with Sec-Fetch-Mode: cors; so
    does this port. test_xsrf_check_post below sends the POST the parametrization names."""
    username = add_user(app)
    cookies = login_user(app, username)
    xsrf = cookies["_xsrf"]
    if xsrf_in_url == "invalid":
        cookies.pop("_xsrf")
        # a valid old-style tornado xsrf token is no longer valid
        xsrf = cookies["_xsrf"] = "2|7329b149|d837ced983e8aac7468bc7a61ce3d51a|1708610065"

    url = path.format(username=username)
    params = {"_xsrf": xsrf} if xsrf_in_url else None
    r = api_request(app, url, noauth=True, cookies=cookies, params=params)
    if xsrf_in_url is True:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 403, r.text


@pytest.mark.parametrize("xsrf_in_url", [True, False, "invalid"])
def test_xsrf_check_post(app, xsrf_in_url):
    """test_api.py::test_xsrf_check's ("POST", "users/{username}/tokens") case with the POST
    sent (JupyterHub: 201 with the _xsrf the hub issued, else 403: base.py check_xsrf_cookie)."""
    username = add_user(app)
    cookies = login_user(app, username)
    xsrf = cookies["_xsrf"]
    if xsrf_in_url == "invalid":
        cookies.pop("_xsrf")
        xsrf = cookies["_xsrf"] = "2|7329b149|d837ced983e8aac7468bc7a61ce3d51a|1708610065"
    params = {"_xsrf": xsrf} if xsrf_in_url else None
    r = api_request(app, f"users/{username}/tokens", method="post", noauth=True, cookies=cookies, params=params,
                    json={})
    if xsrf_in_url is True:
        assert r.status_code == 201, r.text
    else:
        assert r.status_code == 403, r.text


@pytest.mark.parametrize(
    "auth, expected_message",
    [
        ("", "Missing or invalid credentials"),
        ("cookie_no_xsrf", "'_xsrf' argument missing from GET"),
        ("cookie_xsrf_mismatch", "XSRF cookie does not match GET argument"),
        ("token_no_scope", "requires any of [list:users]"),
        ("cookie_no_scope", "requires any of [list:users]"),
    ],
)
def test_permission_error_messages(app, auth, expected_message):
    """ported from test_api.py::test_permission_error_messages"""
    user = add_user(app)
    headers = {}
    params = {}
    cookies = None
    if auth == "token_no_scope":
        headers["Authorization"] = f"Bearer {app.token_for(user)}"
    elif "cookie" in auth:
        cookies = login_user(app, user)
        if auth == "cookie_no_scope":
            params["_xsrf"] = cookies["_xsrf"]
        if auth == "cookie_xsrf_mismatch":
            params["_xsrf"] = "somethingelse"
    headers["Sec-Fetch-Mode"] = "cors"
    r = api_request(app, "users", noauth=True, headers=headers, params=params, cookies=cookies)
    assert r.status_code == 403, r.text[:300]
    assert expected_message in r.json()["message"]


def test_api_request_headers(app):
    """ported from the checks tests/utils.py::api_request makes on every API answer: a
    Content-Security-Policy with frame-ancestors 'none' and the hub's csp-report URL, and no
    http(s) origin in it (JSON content type: checked by api_request on every answer here)."""
    for path, kwargs in [("users", {}), ("users/nosuchuser-" + new_name(), {}), ("", {"noauth": True})]:
        r = api_request(app, path, **kwargs)
        csp = r.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp, (path, r.status_code, dict(r.headers))
        assert "/hub/security/csp-report" in csp, (path, csp)
        assert "http" not in csp, (path, csp)


# -----------------
# General API tests
# -----------------


def test_root_api(app):
    """ported from test_api.py::test_root_api. The version is the JupyterHub API level Atrium
    implements (README: `GET /` reports it, with atrium_version beside it)."""
    r = api_request(app, noauth=True)
    r.raise_for_status()
    api_level = subprocess.run([BINARY, "version"], capture_output=True, text=True, check=True).stdout
    reply = r.json()
    assert reply["version"] in api_level
    assert set(reply) - {"atrium_version"} == {"version"}


def test_info(app):
    """ported from test_api.py::test_info (python and sys_executable are Python's; Atrium
    reports what it has in their place)"""
    r = api_request(app, "info")
    r.raise_for_status()
    data = r.json()
    assert data["version"] == api_request(app, noauth=True).json()["version"]
    assert sorted(set(data) - {"atrium_version"}) == ["authenticator", "python", "spawner", "sys_executable", "version"]
    for key in ("authenticator", "spawner"):
        assert sorted(data[key]) == ["class", "version"], data[key]
        assert isinstance(data[key]["class"], str) and data[key]["class"]


def test_options(app):
    """ported from test_api.py::test_options"""
    r = api_request(app, "users", method="options")
    r.raise_for_status()
    assert "Access-Control-Allow-Headers" in r.headers


def test_bad_json_body(app):
    """ported from test_api.py::test_bad_json_body"""
    r = api_request(app, "users", method="post", data="notjson")
    assert r.status_code == 400


# -----------------
# Proxy API tests
# -----------------


def test_get_proxy(app):
    """ported from test_api.py::test_get_proxy (no server runs in this module: the table holds
    the hub's route, `/`)"""
    r = api_request(app, "proxy")
    r.raise_for_status()
    reply = r.json()
    assert list(reply.keys()) == ["/"]


@pytest.mark.parametrize("offset", (0, 1))
def test_get_proxy_pagination(app, offset):
    """ported from test_api.py::test_get_proxy_pagination"""
    r = api_request(app, f"proxy?offset={offset}", headers={"Accept": PAGINATION_MEDIA_TYPE})
    r.raise_for_status()
    reply = r.json()
    assert set(reply) == {"items", "_pagination"}
    assert list(reply["items"].keys()) == ["/"][offset:]


# -----------------
# Token API tests
# -----------------


def normalize_token(token):
    token = dict(token)
    for key in ("created", "last_activity"):
        token[key] = normalize_timestamp(token[key])
    return token


def test_cookie(app):
    """ported from test_api.py::test_cookie (the deprecated /authorizations/cookie endpoint;
    the cookie is the hub's login cookie, Atrium's `atrium-session`). JupyterHub's test starts
    the user's server first, which the endpoint does not read: not done here (no server runs in
    this module)."""
    name = add_user(app)
    cookies = login_user(app, name)
    cookie_name = next(k for k in cookies if k != "_xsrf")
    cookie = cookies[cookie_name].strip('"')
    r = api_request(app, "authorizations/cookie", cookie_name, "nothintoseehere")
    assert r.status_code == 404

    r = api_request(app, "authorizations/cookie", cookie_name, quote(cookie, safe=""))
    r.raise_for_status()
    assert r.json()["name"] == name

    # deprecated cookie in body:
    r = api_request(app, "authorizations/cookie", cookie_name, data=cookie)
    r.raise_for_status()
    assert r.json()["name"] == name


def test_check_token(app):
    """ported from test_api.py::test_check_token"""
    name = add_user(app)
    token = app.token_for(name)
    r = api_request(app, "authorizations/token", token)
    r.raise_for_status()
    assert r.json()["name"] == name
    r = api_request(app, "authorizations/token", "notauthorized")
    assert r.status_code == 404


@pytest.mark.parametrize("headers, status", [({}, 404), ({"Authorization": "token bad"}, 404)])
def test_get_new_token_deprecated(app, headers, status):
    """ported from test_api.py::test_get_new_token_deprecated"""
    r = api_request(app, "authorizations", "token", method="post", headers=headers)
    assert r.status_code == status


@pytest.mark.parametrize(
    "headers, status, note, expires_in",
    [
        ({}, 201, "test note", None),
        ({}, 201, "", 100),
        ({"Authorization": "token bad"}, 403, "", None),
    ],
)
def test_get_new_token(app, headers, status, note, expires_in):
    """ported from test_api.py::test_get_new_token"""
    options = {}
    if note:
        options["note"] = note
    if expires_in:
        options["expires_in"] = expires_in
    body = json.dumps(options) if options else ""
    r = api_request(app, "users/admin/tokens", method="post", headers=headers, data=body)
    assert r.status_code == status, r.text
    if status != 201:
        return
    # check the new-token reply
    reply = r.json()
    assert "token" in reply
    assert reply["user"] == "admin"
    assert reply["created"]
    assert "last_activity" in reply
    if expires_in:
        assert isinstance(reply["expires_at"], str)
    else:
        assert reply["expires_at"] is None
    if note:
        assert reply["note"] == note
    else:
        assert reply["note"] == "Requested via api"
    token_id = reply["id"]
    initial = normalize_token(reply)
    # pop token for later comparison
    initial.pop("token")

    # check the validity of the new token
    r = api_request(app, "users/admin/tokens", token_id)
    r.raise_for_status()
    reply = r.json()
    assert normalize_token(reply) == initial

    # delete the token
    r = api_request(app, "users/admin/tokens", token_id, method="delete")
    assert r.status_code == 204
    # verify deletion
    r = api_request(app, "users/admin/tokens", token_id)
    assert r.status_code == 404


@pytest.mark.parametrize(
    "expires_in_max, expires_in, expected",
    [
        # Atrium has no token_expires_in_max_seconds setting: only JupyterHub's cases
        # without a maximum are ported.
        (None, None, None),
        (None, 86400, 86400),
    ],
)
def test_token_expires_in_max(app, expires_in_max, expires_in, expected):
    """ported from test_api.py::test_token_expires_in_max (the cases without a maximum)"""
    user = add_user(app)
    r = api_request(app, f"users/{user}/tokens", method="post", data=json.dumps({"expires_in": expires_in}))
    assert r.status_code == 201, r.text
    token_model = r.json()
    if expected is None:
        assert token_model["expires_at"] is None
    else:
        expected_expires_at = utcnow() + timedelta(seconds=expected)
        expires_at = parse_date(token_model["expires_at"])
        assert abs((expires_at - expected_expires_at).total_seconds()) < 30


@pytest.mark.parametrize(
    "as_user, for_user, status",
    [
        ("admin", "other", 201),
        ("admin", "missing", 403),
        ("user", "other", 403),
        ("user", "user", 201),
    ],
)
def test_token_for_user(app, as_user, for_user, status):
    """ported from test_api.py::test_token_for_user ('admin' is the hub's admin, 'user' and
    'other' fresh users, 'missing' a name nobody has)"""
    names = {"admin": "admin", "user": add_user(app) if "user" in (as_user, for_user) else None,
             "other": add_user(app), "missing": new_name("missing")}
    as_name, for_name = names[as_user], names[for_user]
    headers = token_header(app.token_for(as_name))
    r = api_request(app, "users", for_name, "tokens", method="post", data=json.dumps({"username": for_name}),
                    headers=headers)
    assert r.status_code == status, r.text
    reply = r.json()
    if status != 201:
        return
    assert "token" in reply

    token_id = reply["id"]
    r = api_request(app, "users", for_name, "tokens", token_id, headers=headers)
    r.raise_for_status()
    reply = r.json()
    assert reply["user"] == for_name
    if for_name == as_name:
        note = "Requested via api"
    else:
        note = f"Requested via api by user {as_name}"
    assert reply["note"] == note

    # delete the token
    r = api_request(app, "users", for_name, "tokens", token_id, method="delete", headers=headers)
    assert r.status_code == 204
    r = api_request(app, "users", for_name, "tokens", token_id, headers=headers)
    assert r.status_code == 404


def test_token_authenticator_noauth(app):
    """ported from test_api.py::test_token_authenticator_noauth: a token for a user who
    authenticates with the request body (`auth`: name and password) and no Authorization"""
    name = add_user(app)
    password = new_password()
    set_password(app, name, password)
    data = {"auth": {"username": name, "password": password}}
    r = api_request(app, "users", name, "tokens", method="post", data=json.dumps(data), noauth=True)
    assert r.status_code == 201, r.text
    reply = r.json()
    assert "token" in reply
    r = api_request(app, "authorizations", "token", reply["token"])
    r.raise_for_status()
    assert r.json()["name"] == name


@pytest.mark.parametrize(
    "as_user, for_user, status",
    [
        ("admin", "other", 200),
        ("admin", "missing", 404),
        ("user", "other", 404),
        ("user", "user", 200),
    ],
)
def test_token_list(app, as_user, for_user, status):
    """ported from test_api.py::test_token_list. JupyterHub compares the count with the
    user's tokens in its database: here, the tokens this test made for the user."""
    names = {"admin": "admin", "user": add_user(app) if "user" in (as_user, for_user) else None,
             "other": add_user(app), "missing": new_name("missing")}
    as_name, for_name = names[as_user], names[for_user]
    headers = token_header(app.token_for(as_name))
    if for_user != "missing":
        # one more token of the user (the one `headers` carries is theirs too when as == for)
        app.token_for(for_name)
    made = 2 if as_name == for_name else 1
    r = api_request(app, "users", for_name, "tokens", headers=headers)
    assert r.status_code == status, r.text
    if status != 200:
        return
    reply = r.json()
    assert sorted(set(reply) - {"oauth_tokens"}) == ["api_tokens"]
    assert len(reply["api_tokens"]) == made
    assert all(token["user"] == for_name for token in reply["api_tokens"])
    # validate individual token ids
    for token in reply["api_tokens"]:
        r = api_request(app, "users", for_name, "tokens", token["id"], headers=headers)
        r.raise_for_status()
        assert normalize_token(r.json()) == normalize_token(token)
