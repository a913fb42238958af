"""JupyterHub 6.1.1's tests/test_api.py, server part: spawn and stop, user options, missing
users, progress, and renaming/patching named servers.

Black-box ports against the real `atrium serve` (see conftest.py and api_compat.py): the
simulated backend starts servers in 0.3-0.8 s, within the slow-spawn timeout, so a start
answers 201 as JupyterHub's MockSpawner's does. Named servers are allowed with a limit of 2
per user (JupyterHub's `named_servers` fixture). What JupyterHub's tests read from its
Spawner objects is read here from the server model (`GET /users/{name}`,
`GET /users/{name}/servers/{server}`); what only a Python spawner has (MockSpawner's HTTP
answers, its pid state, `handler`) is left out, and said where.
"""
import json

import pytest

from api_compat import (
    add_user,
    api_request,
    events,
    new_name,
    user_model,
)

HUB_SPAWN = {"allow_named_servers": "true", "named_server_limit_per_user": 2}


def test_spawn(app):
    """ported from test_api.py::test_spawn (MockSpawner's own HTTP answers, argv and
    environment are a Python spawner's: not ported)"""
    name = add_user(app)
    options = {"s": ["value"], "i": 5}
    r = api_request(app, "users", name, "server", method="post", data=json.dumps(options))
    assert r.status_code == 201, r.text
    server = user_model(app, name)["servers"][""]
    assert server["user_options"] == options
    assert server["pending"] is None
    assert server["ready"] is True
    assert server["url"] == f"/user/{name}/"
    assert user_model(app, name)["server"] == f"/user/{name}/"

    r = api_request(app, "users", name, "server", method="delete")
    assert r.status_code == 204

    # check that we cleaned up after ourselves: no server, no server token left
    model = user_model(app, name)
    assert model["servers"] == {}
    assert model["server"] is None
    assert model["pending"] is None
    r = api_request(app, "users", name, "tokens")
    assert r.status_code == 200
    assert r.json()["api_tokens"] == []


def test_user_options(app):
    """ported from test_api.py::test_user_options"""
    name = add_user(app)
    options = {"s": ["value"], "i": 5}
    r = api_request(app, "users", name, "server", method="post", data=json.dumps(options))
    assert r.status_code == 201
    assert user_model(app, name)["servers"][""]["user_options"] == options

    # stop the server
    r = api_request(app, "users", name, "server", method="delete")
    # the stopped server still has the user_options
    stopped = user_model(app, name, include_stopped_servers=1)["servers"]
    assert stopped[""]["user_options"] == options

    # spawn again, no options specified: should re-use options from last spawn
    r = api_request(app, "users", name, "server", method="post")
    assert r.status_code == 201
    assert user_model(app, name)["servers"][""]["user_options"] == options

    # stop the server
    r = api_request(app, "users", name, "server", method="delete")

    # spawn again, new options specified: should override options from last spawn
    new_options = {"key": "value"}
    r = api_request(app, "users", name, "server", method="post", data=json.dumps(new_options))
    assert r.status_code == 201
    assert user_model(app, name)["servers"][""]["user_options"] == new_options
    # saved
    r = api_request(app, "users", name, "server", method="delete")
    stopped = user_model(app, name, include_stopped_servers=1)["servers"]
    assert stopped[""]["user_options"] == new_options


def test_spawn_nosuch_user(app):
    """ported from test_api.py::test_spawn_nosuch_user"""
    r = api_request(app, "users", new_name("nosuchuser"), "server", method="post")
    assert r.status_code == 404


def test_stop_nosuch_user(app):
    """ported from test_api.py::test_stop_nosuch_user"""
    r = api_request(app, "users", new_name("nosuchuser"), "server", method="delete")
    assert r.status_code == 404


def test_stop_not_running(app):
    """ported from the end of test_api.py::test_slow_spawn ("204 deleted if there's no such
    server"): stopping a server that is not running, never started or already stopped"""
    name = add_user(app)
    r = api_request(app, "users", name, "server", method="delete")
    assert r.status_code == 204, r.text
    r = api_request(app, "users", name, "server", method="post")
    assert r.status_code == 201
    r = api_request(app, "users", name, "server", method="delete")
    assert r.status_code == 204
    r = api_request(app, "users", name, "server", method="delete")
    assert r.status_code == 204, r.text


def test_progress_not_started(app):
    """ported from test_api.py::test_progress_not_started"""
    name = add_user(app)
    r = api_request(app, "users", name, "server", method="post")
    r.raise_for_status()
    r = api_request(app, "users", name, "server", method="delete")
    r.raise_for_status()
    r = api_request(app, "users", name, "server/progress")
    assert r.status_code == 404, r.text


def test_progress_not_found(app):
    """ported from test_api.py::test_progress_not_found"""
    r = api_request(app, "users", new_name("nosuchuser"), "server/progress")
    assert r.status_code == 404
    name = add_user(app)
    r = api_request(app, "users", name, "server/progress")
    assert r.status_code == 404, r.text


def test_progress_ready(app):
    """ported from test_api.py::test_progress_ready: progress of a server already started"""
    name = add_user(app)
    r = api_request(app, "users", name, "server", method="post")
    r.raise_for_status()
    r = api_request(app, "users", name, "server/progress", stream=True)
    r.raise_for_status()
    try:
        assert r.headers["content-type"] == "text/event-stream"
        evt = next(events(r))
    finally:
        r.close()
    assert evt["progress"] == 100
    assert evt["ready"]
    assert evt["url"] == f"/user/{name}/"


# --------------------------------
# Named servers: rename and patch
# --------------------------------


def get_servers(app, name):
    return user_model(app, name, include_stopped_servers=1)["servers"]


@pytest.mark.parametrize(
    "src_name, dst_name, status_code, active",
    [
        ("exists", "valid", 200, False),
        ("not_exists", "valid", 404, False),
        ("exists", "valid", 400, True),
        ("exists", "invalid name", 400, False),
        ("", "valid", 200, False),
        ("exists", "alsoexists", 409, False),
        ("exists", "", 409, False),
        ("exists", "full", 200, False),
        ("", "full", 400, False),
    ],
)
def test_rename_server(app, src_name, dst_name, status_code, active):
    """ported from test_api.py::test_rename_server (named_server_limit_per_user 2). JupyterHub
    makes the servers in its database (get_or_create_spawner); here they are created with
    PUT /users/{name}/servers/{server}, which does not start them."""
    user = add_user(app)

    def create(server):
        r = api_request(app, "users", user, "servers", server, method="put")
        assert r.status_code == 201, r.text

    if active:
        r = api_request(app, "users", user, "servers", src_name, method="post")
        assert r.ok, r.text
        app.wait_for_server(user, src_name)
    else:
        create("exists")
    server_limit = 2
    if dst_name == "alsoexists":
        create("alsoexists")
    if dst_name == "full":
        # make sure user has all the servers they are allowed
        # rename existing is okay, rename default is not
        existing_named = len([s for s in get_servers(app, user) if s])
        for i in range(existing_named, server_limit):
            create(f"exists-{i}")
    before_servers = sorted(get_servers(app, user))

    r = api_request(app, f"users/{user}/servers/{src_name}", data=json.dumps({"name": dst_name}), method="patch")
    assert r.status_code == status_code, r.text
    if status_code == 200:
        # validate after state
        r = api_request(app, f"users/{user}/servers/{dst_name}")
        assert r.status_code == 200
        assert r.json()["name"] == dst_name
        servers = get_servers(app, user)
        assert dst_name in servers
        if src_name != "":
            assert src_name not in servers
        else:
            # renaming the default server leaves a (new) default server
            assert "" in servers
    else:
        # make sure nothing changed
        assert sorted(get_servers(app, user)) == before_servers


def test_patch_server(app):
    """ported from test_api.py::test_patch_server"""
    user = add_user(app)
    src_name = "named"
    dst_name = "newname"
    r = api_request(app, "users", user, "servers", src_name, method="put", json={"display_name": "display name"})
    assert r.status_code == 201, r.text
    r = api_request(app, f"users/{user}/servers/{src_name}", method="patch", data=json.dumps({
        "name": dst_name,
        "display_name": "New Name!",
        "user_options": {"key": "value"},
    }))
    r.raise_for_status()
    servers = get_servers(app, user)
    assert src_name not in servers
    assert dst_name in servers
    r = api_request(app, "users", user, "servers", dst_name)
    assert r.status_code == 200
    server = r.json()
    assert server["name"] == dst_name
    assert server["display_name"] == "New Name!"
    assert server["user_options"] == {"key": "value"}
