"""JupyterHub 6.1.1's tests/test_api.py with its `slow_spawn` and `no_patience` fixtures:
test_slow_spawn, test_start_stop_race, test_progress.

JupyterHub's SlowSpawner takes a couple of seconds to start and `no_patience` sets the
slow-spawn and slow-stop timeouts to 0.1 s, so the API answers 202 and the start goes on. Here:
simulated starts take 2 s (`simulated.start_delay_min/max`), `spawn.slow_spawn_timeout` and
`spawn.slow_stop_timeout` are 100 ms. The simulated backend's stops take what they take (not
SlowSpawner's): where JupyterHub's assertion depends on a stop still being under way, the port
checks the answer JupyterHub gives for the state the server is in (202 while it stops, 204 once
stopped), and says so.
"""
from api_compat import add_user, api_request, events, hub_fixture, subset, user_model, wait_stopped

app = hub_fixture(env={
    "ATRIUM_SIMULATED__START_DELAY_MIN": "2s",
    "ATRIUM_SIMULATED__START_DELAY_MAX": "2s",
    "ATRIUM_SPAWN__SLOW_SPAWN_TIMEOUT": "100ms",
    "ATRIUM_SPAWN__SLOW_STOP_TIMEOUT": "100ms",
})


def server_of(app, name, server=""):
    return user_model(app, name).get("servers", {}).get(server)


def test_slow_spawn(app):
    """ported from test_api.py::test_slow_spawn"""
    name = add_user(app)
    r = api_request(app, "users", name, "server", method="post")
    r.raise_for_status()
    assert r.status_code == 202
    server = server_of(app, name)
    assert server["pending"] == "spawn"
    assert user_model(app, name)["pending"] == "spawn"

    app.wait_for_server(name)
    assert server_of(app, name)["pending"] is None

    r = api_request(app, "users", name, "server", method="delete")
    r.raise_for_status()
    assert r.status_code in (202, 204)
    if r.status_code == 202:
        # JupyterHub: a second stop while stopping is 202 too
        if (server_of(app, name) or {}).get("pending") == "stop":
            r = api_request(app, "users", name, "server", method="delete")
            assert r.status_code in (202, 204)
    wait_stopped(app, name)
    r = api_request(app, "users", name, "server", method="delete")
    # 204 deleted if there's no such server
    assert r.status_code == 204
    model = user_model(app, name)
    assert model["pending"] is None
    assert model["servers"] == {}


def test_start_stop_race(app):
    """ported from test_api.py::test_start_stop_race"""
    name = add_user(app)
    # start the server
    r = api_request(app, "users", name, "server", method="post")
    assert r.status_code == 202
    assert server_of(app, name)["pending"] == "spawn"
    # additional spawns while spawning shouldn't trigger a new spawn
    r = api_request(app, "users", name, "server", method="post")
    assert r.status_code == 202, r.text

    # stop while spawning is okay now (JupyterHub's stop is slow: 202, pending 'stop'; a stop
    # already done is 204)
    r = api_request(app, "users", name, "server", method="delete")
    assert r.status_code in (202, 204), r.text
    server = server_of(app, name)
    if r.status_code == 202 and server and server["pending"] == "stop":
        # additional stops while stopping shouldn't trigger a new stop
        r = api_request(app, "users", name, "server", method="delete")
        assert r.status_code == 202
        # start while stopping is not allowed
        if (server_of(app, name) or {}).get("pending") == "stop":
            r = api_request(app, "users", name, "server", method="post")
            assert r.status_code == 400

    wait_stopped(app, name)
    # start after stop is okay
    r = api_request(app, "users", name, "server", method="post")
    assert r.status_code == 202
    app.wait_for_server(name)


def test_progress(app):
    """ported from test_api.py::test_progress. The first event is JupyterHub's own; the events
    between it and the ready event come from the spawner (MockSpawner: one, 'Spawning
    server...'), so the port checks they go forward, below 100."""
    name = add_user(app)
    r = api_request(app, "users", name, "server", method="post")
    r.raise_for_status()
    r = api_request(app, "users", name, "server/progress", stream=True)
    r.raise_for_status()
    try:
        assert r.headers["content-type"] == "text/event-stream"
        received = list(events(r))
    finally:
        r.close()
    first, middle, last = received[0], received[1:-1], received[-1]
    expected_first = {"progress": 0, "message": "Server requested"}
    assert subset(first, expected_first) == expected_first
    progress = [e["progress"] for e in middle]
    assert progress == sorted(progress) and all(0 <= p < 100 for p in progress), middle
    url = f"/user/{name}/"
    assert last == {
        "progress": 100,
        "message": f"Server ready at {url}",
        "html_message": f'Server ready at <a href="{url}">{url}</a>',
        "url": url,
        "ready": True,
    }
