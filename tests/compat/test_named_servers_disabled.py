"""JupyterHub 6.1.1's test_named_servers.py::test_named_server_disabled, on a hub with named
servers turned off (`spawn.allow_named_servers: false`, JupyterHub's default
`allow_named_servers = False`). The other named-server tests are in test_named_servers.py."""

HUB_SPAWN = {"allow_named_servers": "false"}


def test_named_server_disabled(app):
    """ported from test_named_servers.py::test_named_server_disabled"""
    username = app.add_user()
    servername = 'okay'
    r = app.api_request('users', username, 'servers', servername, method='post')
    assert r.status_code == 400
    r = app.api_request('users', username, 'servers', servername, method='delete')
    assert r.status_code == 400


def test_named_server_disabled_put(app):
    """PUT /users/{name}/servers/{server} with named servers off: 400 "Named servers are not
    enabled." (users.py UserServerAPIHandler.put → base.py _check_named_server_request, line
    1662-1663); not a JupyterHub test of its own."""
    username = app.add_user()
    r = app.api_request('users', username, 'servers', 'okay', method='put')
    assert r.status_code == 400


def test_named_server_disabled_default_server_works(app):
    """The default server is not a named server: it starts with named servers off
    (users.py UserServerAPIHandler.post only checks named requests, lines 734-737)."""
    username = app.add_user()
    r = app.api_request('users', username, 'server', method='post')
    assert r.status_code in (201, 202), r.text
