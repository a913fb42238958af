"""JupyterHub 6.1.1's tests/test_api.py with its `slow_bad_spawn` and `no_patience`
fixtures (SlowBadSpawner fails after a delay; the API answers 202 before): test_slow_bad_spawn
and test_progress_bad_slow, against the real `atrium serve`.

Every simulated start fails (`simulated.failure_rate` 1.0) after 2 s; the API answers 202 after
100 ms. SlowBadSpawner's message ("I don't work!") is its own: the ports check JupyterHub's
wording around it ("Spawn failed: …").
"""
from api_compat import add_user, api_request, events, hub_fixture, user_model, wait_for

app = hub_fixture(env={
    "ATRIUM_SIMULATED__FAILURE_RATE": "1.0",
    "ATRIUM_SIMULATED__START_DELAY_MIN": "2s",
    "ATRIUM_SIMULATED__START_DELAY_MAX": "2s",
    "ATRIUM_SPAWN__SLOW_SPAWN_TIMEOUT": "100ms",
    "ATRIUM_SPAWN__SLOW_STOP_TIMEOUT": "100ms",
})


def assert_failed_event(evt):
    assert set(evt) - {"html_message"} == {"progress", "failed", "message"}, evt
    assert evt["progress"] == 100
    assert evt["failed"] is True
    assert evt["message"].startswith("Spawn failed: "), evt


def test_slow_bad_spawn(app):
    """ported from test_api.py::test_slow_bad_spawn (JupyterHub reads its pending count; here
    the user model's pending)"""
    name = add_user(app)
    r = api_request(app, "users", name, "server", method="post")
    r.raise_for_status()
    wait_for(lambda: user_model(app, name)["pending"] is None, message="the start to end")
    # spawn failed
    model = user_model(app, name)
    assert model["server"] is None
    assert not any(s["ready"] for s in model["servers"].values())


def test_progress_bad_slow(app):
    """ported from test_api.py::test_progress_bad_slow: progress while the start fails. The
    events between JupyterHub's first (0) and the failed one are the spawner's (SlowBadSpawner:
    one, at 50): checked to go forward, below 100."""
    name = add_user(app)
    r = api_request(app, "users", name, "server", method="post")
    assert r.status_code == 202
    r = api_request(app, "users", name, "server/progress", stream=True)
    r.raise_for_status()
    try:
        assert r.headers["content-type"] == "text/event-stream"
        received = list(events(r))
    finally:
        r.close()
    assert received[0]["progress"] == 0
    middle = [e["progress"] for e in received[1:-1]]
    assert middle == sorted(middle) and all(0 <= p < 100 for p in middle), received
    assert_failed_event(received[-1])
