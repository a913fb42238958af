"""JupyterHub 6.1.1's tests/test_api.py::test_spawn_limit, against the real `atrium serve`.

JupyterHub's `concurrent_spawn_limit` 2: with two starts pending, a third start is refused with
429 until one of them finishes. Atrium has the setting of the same name,
`spawn.concurrent_spawn_limit`, and a queue beside it (`spawn.spawn_queue_limit`, default
1000: starts beyond the limit wait in it; beyond the queue, 429). The module runs twice per
store: with the queue turned off ("limit-noqueue"), JupyterHub's behaviour exactly, where the
test is JupyterHub's; and with Atrium's default queue ("limit"), a documented difference (README,
"Sizing: a class starting at once"): the third start waits its turn instead of a 429.

JupyterHub holds its spawners pending with futures it resolves one by one; here simulated
starts take 3 s and the API answers 202 after 100 ms (`no_patience`), so starts stay pending
for 3 s. The starts cannot be released one at a time: the port waits for the first to be
ready (the second may be ready too, so JupyterHub's pending count of 1 is not checked).
"""
from api_compat import add_user, api_request, hub_fixture, wait_stopped

SLOW = {
    "ATRIUM_SIMULATED__START_DELAY_MIN": "3s",
    "ATRIUM_SIMULATED__START_DELAY_MAX": "3s",
    "ATRIUM_SPAWN__SLOW_SPAWN_TIMEOUT": "100ms",
    "ATRIUM_SPAWN__SLOW_STOP_TIMEOUT": "100ms",
}

app = hub_fixture(variants={
    "limit": (SLOW, "", {"concurrent_spawn_limit": 2}),
    "limit-noqueue": (SLOW, "", {"concurrent_spawn_limit": 2, "spawn_queue_limit": 0}),
})


def test_spawn_limit(app):
    """ported from test_api.py::test_spawn_limit"""
    if app.variant == "limit":
        return queued_instead(app)
    # start two pending spawns
    names = [add_user(app), add_user(app)]
    for name in names:
        r = api_request(app, "users", name, "server", method="post")
        assert r.status_code == 202, r.text

    # both spawns are pending: a third should fail with 429
    essun = add_user(app)
    try:
        r = api_request(app, "users", essun, "server", method="post")
        assert r.status_code == 429, r.text

        # wait for the first to finish
        app.wait_for_server(names[0])
        r = api_request(app, "users", essun, "server", method="post")
        r.raise_for_status()
        # everybody finishes starting
        for name in names + [essun]:
            app.wait_for_server(name)
    finally:
        for name in names + [essun]:
            api_request(app, "users", name, "server", method="delete")
        for name in names + [essun]:
            wait_stopped(app, name)


def queued_instead(app):
    """Atrium's documented difference: with the spawn queue on (the default), a start beyond
    `concurrent_spawn_limit` is accepted (202), waits, and is ready after the others."""
    names = [add_user(app), add_user(app), add_user(app)]
    try:
        for name in names:
            r = api_request(app, "users", name, "server", method="post")
            assert r.status_code == 202, r.text
        for name in names:
            app.wait_for_server(name)
    finally:
        for name in names:
            api_request(app, "users", name, "server", method="delete")
        for name in names:
            wait_stopped(app, name)
