"""JupyterHub 6.1.1's named-server tests (jupyterhub/tests/test_named_servers.py, and the
named-server cases of test_api.py), ported to the real `atrium` binary over HTTP.

Named servers are allowed with a limit of 2 per user, as JupyterHub's `named_servers` fixture
sets (`allow_named_servers=True, named_server_limit_per_user=2`).

What cannot be reached over HTTP is left out (see /work/compat-report-named-roles.md): servers
with names invalid since JupyterHub 6 made directly in the ORM (`user._new_orm_spawner`), the
Python `Spawner` internals (`spawner.server`, `get_state()`'s `pid`, `/env`), the spawn page
forms, `default_server_name` and `user_redirect_hook`, and a callable named-server limit.

Comparisons follow JupyterHub's `normalize_user`/`fill_user` (test_api.py). Two adjustments,
both for things Atrium documents or the spawner decides, not the hub: the keys Atrium documents
as its additions (`approval` on users, `atrium_*` on servers; docs/openapi-atrium.yml, README)
are dropped before comparing, and a server's `state` (the spawner's own `get_state()`, `{'pid':
…}` for JupyterHub's mock spawner) is only checked to be a JSON object.
"""
import json
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote, urlparse

import pytest
import requests

from conftest import new_name

HUB_SPAWN = {"allow_named_servers": "true", "named_server_limit_per_user": "2"}

# ---------------------------------------------------------------------------------------------
# JupyterHub's helpers (tests/test_api.py, jupyterhub/utils.py), adapted to a black box
# ---------------------------------------------------------------------------------------------

ATRIUM_USER_EXTRAS = {"approval"}
ATRIUM_SERVER_EXTRAS = {"atrium_phase", "atrium_usage", "atrium_failure"}
STATE = "<spawner state: a JSON object>"


def normalize_timestamp(ts):
    """test_api.py::normalize_timestamp"""
    if ts is None:
        return
    return re.sub(r'\d(\.\d+)?', '0', ts)


TIMESTAMP = normalize_timestamp(datetime.now().isoformat() + 'Z')


def normalize_server(server):
    server = {k: v for k, v in server.items() if k not in ATRIUM_SERVER_EXTRAS}
    for key in ('started', 'last_activity'):
        if key in server:
            server[key] = normalize_timestamp(server[key])
    if 'progress_url' in server:
        server['progress_url'] = re.sub(r'.*/hub/api', 'PREFIX/hub/api', server['progress_url'])
    if 'state' in server:
        # the spawner's get_state() (JupyterHub's mock spawner: {'pid': N}, normalized to 0)
        assert isinstance(server['state'], dict), server
        server['state'] = STATE
    return server


def normalize_user(user):
    """test_api.py::normalize_user (plus dropping Atrium's documented extra keys)"""
    user = {k: v for k, v in user.items() if k not in ATRIUM_USER_EXTRAS}
    for key in ('created', 'last_activity'):
        if key in user:
            user[key] = normalize_timestamp(user[key])
    if 'roles' in user:
        user['roles'] = sorted(user['roles'])
    if 'servers' in user:
        user['servers'] = {name: normalize_server(s) for name, s in user['servers'].items()}
    return user


def fill_user(model):
    """test_api.py::fill_user"""
    model.setdefault('server', None)
    model.setdefault('kind', 'user')
    model.setdefault('roles', [])
    model.setdefault('groups', [])
    model.setdefault('admin', False)
    model.setdefault('pending', None)
    model.setdefault('created', TIMESTAMP)
    model.setdefault('last_activity', TIMESTAMP)
    model.setdefault('servers', {})
    return model


def url_escape_path(value):
    """jupyterhub.utils.url_escape_path"""
    return quote(value, safe='@~')


def user_url(name):
    """JupyterHub's `user.url` without subdomains: /user/{escaped name}/"""
    return f"/user/{url_escape_path(name)}/"


def next_event(it):
    """test_api.py::next_event: read an event from an event stream"""
    while True:
        try:
            line = next(it)
        except StopIteration:
            return
        if line.startswith('data:'):
            return json.loads(line.split(':', 1)[1])


def ensure_ready(app, name, server, r):
    """A start answered 201 (ready) or 202 (pending): wait until ready (bounded)."""
    assert r.status_code in (201, 202), (r.status_code, r.text)
    if r.status_code == 202:
        app.wait_for_server(name, server)


def wait_until_stopped(app, name, server, r):
    """A stop answered 204 (stopped) or 202 (pending): wait until stopped (bounded)."""
    assert r.status_code in (202, 204), (r.status_code, r.text)
    if r.status_code == 202:
        app.wait_for_server(name, server, ready=False)


def include_stopped(app, name):
    r = app.api_request(f"users/{name}?include_stopped_servers=1")
    assert r.status_code == 200, r.text
    return r.json()["servers"]


# ---------------------------------------------------------------------------------------------
# test_named_servers.py
# ---------------------------------------------------------------------------------------------


def test_default_server(app):
    """ported from test_named_servers.py::test_default_server"""
    username = app.add_user()
    r = app.api_request('users', username, 'server', method='post')
    assert r.status_code == 201
    assert r.text == ''

    r = app.api_request('users', username)
    r.raise_for_status()

    user_model = normalize_user(r.json())
    assert user_model == fill_user(
        {
            'name': username,
            'roles': ['user'],
            'user_info': None,
            'auth_state': None,
            'server': user_url(username),
            'servers': {
                '': {
                    'full_name': f"{username}/",
                    'name': '',
                    'display_name': '',
                    'started': TIMESTAMP,
                    'last_activity': TIMESTAMP,
                    'url': user_url(username),
                    'pending': None,
                    'ready': True,
                    'stopped': False,
                    'progress_url': f'PREFIX/hub/api/users/{username}/server/progress',
                    'state': STATE,
                    'user_options': {},
                    'full_url': None,
                    'full_progress_url': None,
                }
            },
        }
    )

    # now stop the server
    r = app.api_request('users', username, 'server', method='delete')
    assert r.status_code == 204
    assert r.text == ''

    r = app.api_request('users', username)
    r.raise_for_status()

    user_model = normalize_user(r.json())
    assert user_model == fill_user(
        {'name': username, 'roles': ['user'], 'user_info': None, 'auth_state': None}
    )


@pytest.mark.parametrize(
    'servername,displayname,escapedname',
    [
        # ('$p~c|a! ch@rs', ...) and ('hash#?question', ...) are start_only: they need a server
        # with that (now invalid) name made in the ORM first, which no API can do (skipped).
        # New servers can have an optional displayname, defaults to servername
        ('trevor', None, 'trevor'),
        ('trevor', 'My name is Trevor', 'trevor'),
        # Valid server names are alphanumeric, or alphanumeric-HASH8
        ('server1', "e_êẹèêéøßæṣ-", "server1"),
        ('server-abcdef12', "e_êẹèêéøßæṣ-", "server-abcdef12"),
    ],
    ids=["trevor", "trevor-display_name", "server1-unicode_display_name", "server-abcdef12-unicode_display_name"],
)
def test_create_or_start_named_server(app, servername, displayname, escapedname):
    """ported from test_named_servers.py::test_create_or_start_named_server"""
    username = app.add_user()
    token = app.token_for(username)
    request_servername = servername

    kwargs = {}
    user_options = {}
    expected_displayname = servername
    if displayname is not None:
        expected_displayname = displayname
        kwargs["json"] = {"display_name": displayname}

    r = app.api_request('users', username, 'servers', request_servername, method='post', **kwargs)
    r.raise_for_status()
    assert r.status_code == 201
    assert r.text == ''

    # the server answers at its URL (JupyterHub reads its mock server's /env here: the spawner's
    # environment is the spawner's business, only the URL is checked)
    url = f"{app.url}{user_url(username)}{request_servername}/env"
    expected_url = f"{app.url}{user_url(username)}{escapedname}/env"
    r = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=30)
    r.raise_for_status()
    assert unquote(r.url) == unquote(expected_url)

    r = app.api_request('users', username)
    r.raise_for_status()

    user_model = normalize_user(r.json())
    assert user_model == fill_user(
        {
            'name': username,
            'roles': ['user'],
            'user_info': None,
            'auth_state': None,
            'servers': {
                servername: {
                    'full_name': f"{username}/{servername}",
                    'name': servername,
                    'display_name': expected_displayname,
                    'started': TIMESTAMP,
                    'last_activity': TIMESTAMP,
                    'url': f"{user_url(username)}{escapedname}/",
                    'pending': None,
                    'ready': True,
                    'stopped': False,
                    'progress_url': f'PREFIX/hub/api/users/{username}/servers/{escapedname}/progress',
                    'state': STATE,
                    'user_options': user_options,
                    'full_url': None,
                    'full_progress_url': None,
                }
            },
        }
    )


@pytest.mark.parametrize("servername", ["a$/b", "$p~c|a! ch@rs", "hash#?question", "server--abc-def"])
def test_create_invalid_named_server(app, servername):
    """ported from test_named_servers.py::test_create_invalid_named_server"""
    username = app.add_user()
    request_servername = url_escape_path(servername)

    r = app.api_request('users', username, 'servers', request_servername, method='post')

    with pytest.raises(requests.HTTPError) as exc:
        r.raise_for_status()
    assert exc.value.response.json() == {
        'status': 400,
        'message': f"Invalid server_name: {servername!r}",
    }


@pytest.mark.parametrize(
    "servername,escapedname",
    [
        ("splugoth", "splugoth"),
        # ("$p~c|a! ch@rs", ..., start_only=True): needs an ORM-made server (skipped)
    ],
)
def test_delete_named_server(app, servername, escapedname):
    """ported from test_named_servers.py::test_delete_named_server"""
    username = app.add_user()

    r = app.api_request('users', username, 'servers', escapedname, method='post')
    r.raise_for_status()
    assert r.status_code == 201

    r = app.api_request('users', username, 'servers', escapedname, method='delete')
    r.raise_for_status()
    assert r.status_code == 204

    r = app.api_request('users', username)
    r.raise_for_status()

    user_model = normalize_user(r.json())
    assert user_model == fill_user(
        {'name': username, 'roles': ['user'], 'user_info': None, 'auth_state': None}
    )
    # low-level record still exists (`servername in user.orm_spawners`), seen over HTTP as
    # GET …/servers/{name} (200 for orm_spawners, users.py UserServerAPIHandler.get) and in
    # ?include_stopped_servers
    r = app.api_request('users', username, 'servers', escapedname)
    assert r.status_code == 200
    assert servername in include_stopped(app, username)

    r = app.api_request(
        'users', username, 'servers', servername, method='delete', data=json.dumps({'remove': True}),
    )
    r.raise_for_status()
    assert r.status_code == 204
    # low-level record is now removed
    r = app.api_request('users', username, 'servers', escapedname)
    assert r.status_code == 404
    assert servername not in include_stopped(app, username)


def test_named_server_limit(app):
    """ported from test_named_servers.py::test_named_server_limit"""
    username = app.add_user()

    # Create 1st named server
    servername1 = 'bar-1'
    r = app.api_request('users', username, 'servers', servername1, method='post')
    r.raise_for_status()
    assert r.status_code == 201
    assert r.text == ''

    # Create 2nd named server
    servername2 = 'bar-2'
    r = app.api_request('users', username, 'servers', servername2, method='post')
    r.raise_for_status()
    assert r.status_code == 201
    assert r.text == ''

    # Create 3rd named server
    servername3 = 'bar-3'
    r = app.api_request('users', username, 'servers', servername3, method='post')
    assert r.status_code == 400
    assert r.json() == {
        "status": 400,
        "message": f"User {username} already has the maximum of 2 named servers.  One must be deleted before a new server can be created",
    }

    # Create default server
    r = app.api_request('users', username, 'server', method='post')
    assert r.status_code == 201
    assert r.text == ''

    # Delete 1st named server
    r = app.api_request(
        'users', username, 'servers', servername1, method='delete', data=json.dumps({'remove': True}),
    )
    r.raise_for_status()
    assert r.status_code == 204

    # Create 3rd named server again
    r = app.api_request('users', username, 'servers', servername3, method='post')
    r.raise_for_status()
    assert r.status_code == 201
    assert r.text == ''


@pytest.mark.parametrize(
    "body, message",
    [
        pytest.param({"display_name": 5}, "display_name", id="display_name_int"),
        pytest.param({"display_name": "x" * 257}, "display_name", id="display_name_invalid"),
        pytest.param({"display_name": "x", "user_options": 5}, "user_options", id="user_options_int"),
    ],
)
def test_named_server_create_server_invalid(app, body, message):
    """ported from test_named_servers.py::test_named_server_create_server_invalid"""
    username = app.add_user()
    r = app.api_request('users', username, 'servers/named', method='put', json=body)
    assert r.status_code == 400
    response = r.json()
    assert message in response["message"]


def test_named_server_create_server(app):
    """ported from test_named_servers.py::test_named_server_create_server"""
    username = app.add_user()
    server_name = "named"
    body = {"display_name": "My Named Server", "user_options": {"key": "value"}}
    r = app.api_request('users', username, 'servers', server_name, method='put', json=body)
    assert r.status_code == 201
    server_model = r.json()
    assert server_model["name"] == server_name
    assert server_model["display_name"] == body["display_name"]
    assert server_model["user_options"] == body["user_options"]
    assert server_model["stopped"]

    r = app.api_request('users', username, 'servers', server_name)
    assert r.status_code == 200
    server_model = r.json()
    assert server_model["name"] == server_name
    assert server_model["display_name"] == body["display_name"]
    assert server_model["user_options"] == body["user_options"]
    assert server_model["stopped"]


@pytest.mark.parametrize("include_stopped_servers", [True, False])
def test_stopped_servers(app, include_stopped_servers):
    """ported from test_named_servers.py::test_stopped_servers"""
    username = app.add_user()
    r = app.api_request('users', username, 'server', method='post')
    r.raise_for_status()
    r = app.api_request('users', username, 'servers', "named", method='post')
    r.raise_for_status()

    # wait for starts (bounded polling, as JupyterHub's test)
    app.wait_for_server(username, "")
    app.wait_for_server(username, "named")

    r = app.api_request('users', username, 'server', method='delete')
    r.raise_for_status()
    r = app.api_request('users', username, 'servers', "named", method='delete')
    r.raise_for_status()

    # wait for stops
    app.wait_for_server(username, "", ready=False)
    app.wait_for_server(username, "named", ready=False)

    # we have two stopped servers
    path = f"users/{username}"
    if include_stopped_servers:
        path = f"{path}?include_stopped_servers"
    r = app.api_request(path)
    r.raise_for_status()
    user_model = r.json()
    servers = list(user_model["servers"].values())
    if include_stopped_servers:
        assert len(servers) == 2
        assert all(s["last_activity"] for s in servers)
        assert all(s["started"] is None for s in servers)
        assert all(s["stopped"] for s in servers)
        assert not any(s["ready"] for s in servers)
        assert not any(s["pending"] for s in servers)
    else:
        assert user_model["servers"] == {}


# ---------------------------------------------------------------------------------------------
# Named-server cases of test_api.py and of the handlers (jupyterhub/apihandlers/users.py)
# ---------------------------------------------------------------------------------------------

# jupyterhub/apihandlers/base.py APIHandler.server_model: every key of the Server model; `state`
# only with admin:server_state (the admin token here has it).
SERVER_MODEL_KEYS = {
    'name', 'display_name', 'full_name', 'last_activity', 'started', 'pending', 'ready',
    'stopped', 'url', 'user_options', 'progress_url', 'full_url', 'full_progress_url', 'state',
}


def test_server_model_keys(app):
    """The Server model's keys (`full_name`, `display_name`, …) in the user model's `servers`
    and from GET /users/{name}/servers/{server}: jupyterhub/apihandlers/base.py
    APIHandler.server_model (lines 197-227); not a JupyterHub test of its own."""
    username = app.add_user()
    r = app.api_request('users', username, 'servers', 'keys', method='post')
    ensure_ready(app, username, 'keys', r)
    model = app.user_model(username)
    server = {k: v for k, v in model['servers']['keys'].items() if k not in ATRIUM_SERVER_EXTRAS}
    assert set(server) == SERVER_MODEL_KEYS
    assert server['full_name'] == f"{username}/keys"
    assert server['display_name'] == 'keys'

    r = app.api_request('users', username, 'servers', 'keys')
    assert r.status_code == 200
    server = {k: v for k, v in r.json().items() if k not in ATRIUM_SERVER_EXTRAS}
    assert set(server) == SERVER_MODEL_KEYS
    assert server['full_name'] == f"{username}/keys"
    assert server['display_name'] == 'keys'


def test_get_named_server_not_found(app):
    """GET /users/{name}/servers/{server} (JupyterHub 6): 404 for a server the user does not
    have and for a user that does not exist (users.py UserServerAPIHandler.get, lines
    675-686); not a JupyterHub test of its own."""
    username = app.add_user()
    r = app.api_request('users', username, 'servers', 'nosuchserver')
    assert r.status_code == 404
    r = app.api_request('users', new_name("nosuchuser"), 'servers', 'nosuchserver')
    assert r.status_code == 404


def test_put_existing_server_conflict(app):
    """PUT /users/{name}/servers/{server} on an existing server: 409 "User {name} already has
    server {server}" (users.py UserServerAPIHandler.put, lines 706-709); not a JupyterHub test of
    its own."""
    username = app.add_user()
    r = app.api_request('users', username, 'servers', 'dup', method='put')
    assert r.status_code == 201
    r = app.api_request('users', username, 'servers', 'dup', method='put')
    assert r.status_code == 409


@pytest.mark.parametrize("server_name", ["", "opts"])
@pytest.mark.parametrize("style", ["whole-body", "user_options-field"])
def test_user_options(app, server_name, style):
    """ported from test_api.py::test_user_options (for the default and a named server; the
    `user_options-field` style is JupyterHub 6's schema, users.py get_server_json_body: a body
    with `user_options` (or `display_name`) carries the options in that field, any other body
    is the options themselves)"""
    name = app.add_user()
    path = ('server',) if not server_name else ('servers', server_name)

    def body(options):
        if style == "whole-body":
            return json.dumps(options)
        return json.dumps({"user_options": options})

    def current_options():
        return include_stopped(app, name)[server_name]['user_options']

    options = {'s': ['value'], 'i': 5}
    r = app.api_request('users', name, *path, method='post', data=body(options))
    assert r.status_code == 201
    assert current_options() == options

    # stop the server
    r = app.api_request('users', name, *path, method='delete')
    wait_until_stopped(app, name, server_name, r)

    # orm_spawner still exists and has a reference to the user_options
    assert current_options() == options

    # spawn again, no options specified
    # should re-use options from last spawn
    r = app.api_request('users', name, *path, method='post')
    assert r.status_code == 201
    assert current_options() == options

    # stop the server
    r = app.api_request('users', name, *path, method='delete')
    wait_until_stopped(app, name, server_name, r)

    # spawn again, new options specified
    # should override options from last spawn
    new_options = {'key': 'value'}
    r = app.api_request('users', name, *path, method='post', data=body(new_options))
    assert r.status_code == 201
    assert current_options() == new_options


def test_stop_named_server_not_running(app):
    """Stopping a named server that exists but is not running answers 204; one the user does
    not have, 404 "{user} has no server named '{server}'"; `remove` on the default server, 400
    (users.py UserServerAPIHandler.delete, lines 898-906 and 950-952); not a JupyterHub test of
    its own."""
    username = app.add_user()
    # created, never started
    r = app.api_request('users', username, 'servers', 'idle', method='put')
    assert r.status_code == 201
    r = app.api_request('users', username, 'servers', 'idle', method='delete')
    assert r.status_code == 204
    assert 'idle' in include_stopped(app, username)

    # and removed while stopped
    r = app.api_request('users', username, 'servers', 'idle', method='delete', json={'remove': True})
    assert r.status_code == 204
    assert 'idle' not in include_stopped(app, username)

    r = app.api_request('users', username, 'servers', 'never', method='delete')
    assert r.status_code == 404

    # the default server, never started
    r = app.api_request('users', username, 'server', method='delete')
    assert r.status_code == 204
    r = app.api_request('users', username, 'server', method='delete', json={'remove': True})
    assert r.status_code == 400


def test_start_running_named_server(app):
    """Starting a named server that is already running: 400 "… is already running"
    (users.py UserServerAPIHandler.post, lines 752-761); not a JupyterHub test of its own."""
    username = app.add_user()
    r = app.api_request('users', username, 'servers', 'twice', method='post')
    ensure_ready(app, username, 'twice', r)
    r = app.api_request('users', username, 'servers', 'twice', method='post')
    assert r.status_code == 400


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
    """ported from test_api.py::test_update_server_activity

    JupyterHub sets last_activity of the default server and of "exists" to now in the ORM; here
    the default server is started and stopped, "exists" is created with PUT, and both get
    last_activity=now through the same activity API before the request under test."""
    name = app.add_user()
    token = app.token_for(name)
    r = app.api_request('users', name, 'server', method='post')
    ensure_ready(app, name, '', r)
    r = app.api_request('users', name, 'server', method='delete')
    wait_until_stopped(app, name, '', r)
    r = app.api_request('users', name, 'servers', 'exists', method='put')
    assert r.status_code == 201

    now = datetime.now(timezone.utc)
    r = app.api_request(
        f"users/{name}/activity", method="post",
        json={"servers": {n: {"last_activity": now.isoformat()} for n in ("", "exists")}},
    )
    assert r.status_code == 200, r.text

    td = timedelta(minutes=1)
    if fresh:
        activity = now + td
    else:
        activity = now - td

    r = app.api_request(
        f"users/{name}/activity",
        token=token,
        data=json.dumps({"servers": {server_name: {"last_activity": activity.isoformat()}}}),
        method="post",
    )
    if server_name == "nope":
        assert r.status_code == 400
        reply = r.json()
        assert server_name in reply["message"]
        assert "No such server" in reply["message"]
        assert name in reply["message"]
        return

    r.raise_for_status()

    # check that last activity was updated
    if fresh:
        expected = activity
    else:
        expected = now

    reported = include_stopped(app, name)[server_name]['last_activity']
    assert reported is not None
    got = datetime.fromisoformat(reported.replace('Z', '+00:00'))
    # JupyterHub stores the timestamp exactly; allow only the rounding of a float clock
    assert abs((got - expected).total_seconds()) < 0.001, (reported, expected.isoformat())


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
    """ported from test_api.py::test_rename_server

    JupyterHub makes the servers in the ORM (`get_or_create_spawner`); here they are created
    with PUT. JupyterHub's user always has a default server record, so where the default server
    takes part it is started and stopped first to make sure it exists."""
    name = app.add_user()
    server_limit = 2
    if "" in (src_name, dst_name):
        r = app.api_request('users', name, 'server', method='post')
        ensure_ready(app, name, '', r)
        r = app.api_request('users', name, 'server', method='delete')
        wait_until_stopped(app, name, '', r)
    if active:
        r = app.api_request('users', name, 'servers', src_name, method='post')
        assert r.ok
        ensure_ready(app, name, src_name, r)
    else:
        r = app.api_request('users', name, 'servers', 'exists', method='put')
        assert r.status_code == 201, r.text
    if dst_name == "alsoexists":
        r = app.api_request('users', name, 'servers', 'alsoexists', method='put')
        assert r.status_code == 201, r.text
    if dst_name == "full":
        # make sure user has all the servers they are allowed
        # rename existing is okay, rename default is not
        existing_servers = len([n for n in include_stopped(app, name) if n])
        for i in range(existing_servers, server_limit):
            r = app.api_request('users', name, 'servers', f'exists-{i}', method='put')
            assert r.status_code == 201, r.text
    before_servers = sorted(include_stopped(app, name))

    r = app.api_request(
        f"users/{name}/servers/{src_name}", data=json.dumps({"name": dst_name}), method="patch",
    )
    assert r.status_code == status_code, r.text
    if status_code == 200:
        # validate after state
        r = app.api_request(f"users/{name}/servers/{dst_name}")
        assert r.status_code == 200
        server_model = r.json()
        assert server_model["name"] == dst_name
        r = app.api_request(f"users/{name}?include_stopped_servers=1")
        assert r.status_code == 200
        user_model = r.json()
        servers = user_model["servers"]
        assert dst_name in servers
        if src_name != "":
            assert src_name not in servers
        else:
            assert "" in servers
    else:
        # make sure nothing changed
        assert sorted(include_stopped(app, name)) == before_servers


def test_patch_server(app):
    """ported from test_api.py::test_patch_server (ORM checks read back over HTTP)"""
    name = app.add_user()
    src_name = "named"
    dst_name = "newname"
    r = app.api_request('users', name, 'servers', src_name, method='put', json={"display_name": "display name"})
    assert r.status_code == 201, r.text

    r = app.api_request(
        f"users/{name}/servers/{src_name}",
        data=json.dumps({"name": dst_name, "display_name": "New Name!", "user_options": {"key": "value"}}),
        method="patch",
    )
    r.raise_for_status()
    servers = include_stopped(app, name)
    assert src_name not in servers
    assert dst_name in servers
    r = app.api_request('users', name, 'servers', dst_name)
    assert r.status_code == 200
    model = r.json()
    assert model["name"] == dst_name
    assert model["display_name"] == "New Name!"
    assert model["user_options"] == {"key": "value"}


# ---------------------------------------------------------------------------------------------
# Progress of a named server (test_api.py's progress tests, on …/servers/{name}/progress)
# ---------------------------------------------------------------------------------------------


def test_progress_ready_named(app):
    """ported from test_api.py::test_progress_ready (named server)"""
    name = app.add_user()
    r = app.api_request('users', name, 'servers', 'prog', method='post')
    r.raise_for_status()
    ensure_ready(app, name, 'prog', r)
    r = app.api_request('users', name, 'servers/prog/progress', stream=True)
    try:
        r.raise_for_status()
        assert r.headers['content-type'] == 'text/event-stream'
        line_iter = iter(r.iter_lines(decode_unicode=True))
        evt = next_event(line_iter)
        assert evt['progress'] == 100
        assert evt['ready']
        assert evt['url'] == f"{user_url(name)}prog/"
    finally:
        r.close()


def test_progress_not_started_named(app):
    """ported from test_api.py::test_progress_not_started (named server)"""
    name = app.add_user()
    r = app.api_request('users', name, 'servers', 'prog', method='post')
    r.raise_for_status()
    ensure_ready(app, name, 'prog', r)
    r = app.api_request('users', name, 'servers', 'prog', method='delete')
    r.raise_for_status()
    wait_until_stopped(app, name, 'prog', r)
    r = app.api_request('users', name, 'servers/prog/progress')
    assert r.status_code == 404


def test_progress_not_found_named(app):
    """ported from test_api.py::test_progress_not_found (named server)"""
    r = app.api_request('users', new_name('nosuchuser'), 'servers/prog/progress')
    assert r.status_code == 404
    name = app.add_user()
    r = app.api_request('users', name, 'servers/prog/progress')
    assert r.status_code == 404
