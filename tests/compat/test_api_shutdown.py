"""JupyterHub 6.1.1's tests/test_api.py::test_shutdown ("Shutdown MUST always be last test"),
against the real `atrium serve`: a module of its own, since it stops the module's hub.

JupyterHub's test checks that the request succeeds with a JSON answer and that the hub's
cleanup and stop ran; here, that the `atrium serve` process exits (bounded wait).
"""
import json
import time

from api_compat import add_user, api_request


def test_shutdown(app):
    """ported from test_api.py::test_shutdown"""
    # a running server, which `servers: true` stops with the hub
    name = add_user(app)
    r = api_request(app, "users", name, "server", method="post")
    assert r.status_code in (201, 202), r.text

    r = api_request(app, "shutdown", method="post", data=json.dumps({"servers": True, "proxy": True}))
    r.raise_for_status()
    reply = r.json()
    assert isinstance(reply, dict)

    process = app.hub.process
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.poll() is not None, "the hub did not stop"
    assert process.returncode == 0, "".join(app.hub.output[-20:])
