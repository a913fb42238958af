"""The unmodified `jupyterhub-idle-culler --cull-users` against the real hub, on both stores
(issue 17, item 1): on the culler's defaults (admin users culled too), it deletes only users who
did not use the hub within its timeout. A user whose API token, or whose browser session, was
used within the timeout is never deleted — nor the admin, nor the culler's own owner."""
import os
import subprocess
import sys
import threading
import time

import pytest
import requests

from conftest import new_name

TIMEOUT = 8  # the culler's --timeout, seconds


def culler_installed():
    return subprocess.run([sys.executable, "-c", "import jupyterhub_idle_culler"], capture_output=True).returncode == 0


class KeepUsing(threading.Thread):
    """Uses the hub as `use()` does, every 0.5 s, until stopped; counts failures."""

    def __init__(self, use):
        super().__init__(daemon=True)
        self.use = use
        self.stopped = threading.Event()
        self.failures = []

    def run(self):
        while not self.stopped.is_set():
            try:
                status = self.use()
                if status != 200:
                    self.failures.append(status)
            except requests.RequestException as e:
                self.failures.append(repr(e))
            self.stopped.wait(0.5)


def login(app, name, password):
    s = requests.Session()
    s.get(f"{app.url}/hub/login", timeout=60)
    r = s.post(f"{app.url}/hub/login", data={"username": name, "password": password, "_xsrf": s.cookies.get("_xsrf")},
               allow_redirects=False, timeout=60)
    assert r.status_code in (302, 303), r.text
    return s


def exists(app, name):
    r = app.api_request("users", name)
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


def test_cull_users_keeps_everyone_who_used_the_hub(app, tmp_path):
    if not culler_installed():
        if os.environ.get("CI") == "true":
            pytest.fail("jupyterhub-idle-culler is required under CI (scripts/install-test-deps.sh installs it)")
        pytest.skip("jupyterhub-idle-culler is not installed")
    idle = app.add_user(new_name("idle"))
    by_token = app.add_user(new_name("tok"))
    by_browser = new_name("web")
    r = app.api_request("users", by_browser, method="post")
    assert r.status_code == 201
    password = "Browser-Pass-4821"
    app.hub.atrium(["user", "set-password", by_browser, "--password-stdin"], stdin=password + "\n")
    culler_owner = new_name("culler")
    app.add_user(culler_owner, admin=True)
    culler_token = app.token_for(culler_owner)

    token = app.token_for(by_token)
    session = login(app, by_browser, password)
    users = [
        KeepUsing(lambda: requests.get(f"{app.url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=60).status_code),
        KeepUsing(lambda: session.get(f"{app.url}/hub/home", timeout=60, allow_redirects=False).status_code),
        # The admin whose token drives these tests.
        KeepUsing(lambda: app.api_request("user").status_code),
    ]
    for u in users:
        u.start()
    log = tmp_path / "culler.log"
    with open(log, "w") as out:
        culler = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub_idle_culler", f"--url={app.url}/hub/api", f"--timeout={TIMEOUT}",
             "--cull-every=2", "--cull-users=True", "--IdleCuller.log_level=DEBUG"],
            env=dict(os.environ, JUPYTERHUB_API_TOKEN=culler_token), stdout=out, stderr=subprocess.STDOUT)
    try:
        # The idle user goes once it has been idle for the timeout (bounded wait for that event).
        for _ in range(600):
            if not exists(app, idle):
                break
            assert culler.poll() is None, log.read_text()
            time.sleep(0.1)
        assert not exists(app, idle), "the idle user was never culled:\n" + log.read_text()
        # Two more timeouts with the others in use: none of them goes.
        def passes():
            return log.read_text().count("users with ready servers")
        passes_before = passes()
        for _ in range(1200):  # each pass is an event in the culler's log; every 2 s
            if passes() >= passes_before + TIMEOUT:  # two timeouts' worth of passes
                break
            assert culler.poll() is None, log.read_text()
            time.sleep(0.1)
        assert passes() >= passes_before + TIMEOUT, log.read_text()
        for name in (by_token, by_browser, "admin", culler_owner):
            assert exists(app, name), f"{name} was culled although active:\n" + log.read_text()
    finally:
        culler.kill()
        culler.wait(timeout=30)
        for u in users:
            u.stopped.set()
        for u in users:
            u.join(timeout=30)
    text = log.read_text()
    assert "Traceback" not in text, text
    assert all(not u.failures for u in users), [u.failures for u in users]
