"""JupyterHub 6.1.1's tests/test_api.py with its `bad_spawn` fixture (BadSpawner: every start
fails at once): test_bad_spawn and test_progress_bad, against the real `atrium serve`.

Every simulated start fails (`simulated.failure_rate` 1.0) after 0.3-0.8 s, within the
slow-spawn timeout, so the failure is the start request's answer, as BadSpawner's is.
BadSpawner's message ("I don't work!") is its own: the ports check JupyterHub's wording around
it ("Spawn failed: …"). test_api_slow_bad_spawn.py has the slow variants.
"""
from api_compat import add_user, api_request, events, hub_fixture, user_model

app = hub_fixture(env={"ATRIUM_SIMULATED__FAILURE_RATE": "1.0"})


def assert_failed_event(evt):
    assert set(evt) - {"html_message"} == {"progress", "failed", "message"}, evt
    assert evt["progress"] == 100
    assert evt["failed"] is True
    assert evt["message"].startswith("Spawn failed: "), evt


def test_bad_spawn(app):
    """ported from test_api.py::test_bad_spawn (JupyterHub also checks that the failed
    spawner object is not reused, which a client sees as the second start failing the same
    way instead of being refused)"""
    name = add_user(app)
    r = api_request(app, "users", name, "server", method="post")
    assert r.status_code == 500, r.text
    assert user_model(app, name)["pending"] is None

    r = api_request(app, "users", name, "server", method="post")
    assert r.status_code == 500, r.text
    assert user_model(app, name)["pending"] is None


def test_progress_bad(app):
    """ported from test_api.py::test_progress_bad: progress of a server whose start failed"""
    name = add_user(app)
    r = api_request(app, "users", name, "server", method="post")
    assert r.status_code == 500
    r = api_request(app, "users", name, "server/progress", stream=True)
    r.raise_for_status()
    try:
        assert r.headers["content-type"] == "text/event-stream"
        evt = next(events(r))
    finally:
        r.close()
    assert_failed_event(evt)
