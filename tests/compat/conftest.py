"""JupyterHub's own REST-API tests, ported to run against the real `atrium` binary.

Each module here ports cases of JupyterHub's `jupyterhub/tests/` (the `jupyterhub` pip package,
6.1.1): where JupyterHub has a behaviour, its tests are the contract. They are black-box tests:
`atrium serve` (simulated backend, so servers start in well under a second without programs)
is driven over HTTP with `requests`, as JupyterHub's clients drive JupyterHub.

Every module runs on both stores: a new SQLite file, and a new PostgreSQL database on the server
`ATRIUM_TEST_POSTGRES_URL` names (scripts/test.sh starts one). Without it the PostgreSQL half is
skipped, except under CI=true, where that fails.

Run: python3 -m pytest tests/compat   (ATRIUM_BINARY picks the binary; default .build/debug/atrium)
"""
import os
import shutil
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "browser"))
from hub import Hub  # noqa: E402

ADMIN_PASSWORD = "Admin-Pass-4821"


def _psql():
    found = shutil.which("psql")
    if found:
        return found
    import glob
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    return candidates[-1] if candidates else None


def new_postgres_database():
    """A new, empty database on ATRIUM_TEST_POSTGRES_URL's server; returns its URL."""
    base = os.environ.get("ATRIUM_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("CI") == "true":
            pytest.fail("ATRIUM_TEST_POSTGRES_URL is required under CI (scripts/test.sh starts a server)")
        pytest.skip("ATRIUM_TEST_POSTGRES_URL is not set: the PostgreSQL half is skipped")
    psql = _psql()
    if psql is None:
        pytest.fail("psql is missing (apt-get install postgresql-client)")
    name = "compat_" + uuid.uuid4().hex[:12]
    subprocess.run([psql, base, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True, timeout=60)
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


class HubClient:
    """The hub under test and JupyterHub's test helpers, over HTTP."""

    def __init__(self, hub, admin_token, store):
        self.hub = hub
        self.url = hub.url
        self.admin_token = admin_token
        self.store = store

    def api_request(self, *api_path, method="get", token=None, noauth=False, headers=None, **kwargs):
        """JupyterHub's `api_request`: `/hub/api/<path>` with the admin's token unless `token`
        (another token) or `noauth` is given. Returns the `requests.Response`."""
        path = "/".join(p.strip("/") for p in api_path if p)
        url = f"{self.url}/hub/api/{path}" if path else f"{self.url}/hub/api"
        all_headers = dict(headers or {})
        if not noauth and "Authorization" not in all_headers:
            all_headers["Authorization"] = f"token {token or self.admin_token}"
        return requests.request(method.upper(), url, headers=all_headers, timeout=60, allow_redirects=False, **kwargs)

    def add_user(self, name=None, admin=False, **model):
        """Creates a user through the API (JupyterHub's `add_user` fixture helper); returns its name."""
        name = name or new_name()
        r = self.api_request("users", name, method="post", json={"admin": admin, **model} if admin or model else None)
        assert r.status_code == 201, (r.status_code, r.text)
        return name

    def token_for(self, name, scopes=None, **model):
        """An API token of `name` (created by the admin), with `scopes` when given."""
        body = dict(model)
        if scopes is not None:
            body["scopes"] = scopes
        r = self.api_request("users", name, "tokens", method="post", json=body)
        assert r.status_code == 201, (r.status_code, r.text)
        return r.json()["token"]

    def user_model(self, name):
        r = self.api_request("users", name)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def wait_for_server(self, name, server="", ready=True, timeout=180):
        """Polls until the server is ready (or, with ready=False, gone); bounded by `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            servers = self.user_model(name).get("servers", {})
            if ready and servers.get(server, {}).get("ready"):
                return servers[server]
            if not ready and server not in servers:
                return None
            time.sleep(0.1)
        raise AssertionError(f"server {name!r}/{server!r} did not become {'ready' if ready else 'stopped'}")


def new_name(prefix="u"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def start_hub(store, extra_config="", spawn=None):
    db = new_postgres_database() if store == "postgresql" else None

    def setup(h):
        h.admin_token = h.atrium(["token", "create", "admin", "--note", "compat tests"])

    hub = Hub(admin_password=ADMIN_PASSWORD, extra_config=extra_config, spawn=spawn, setup=setup, db=db)
    return HubClient(hub, hub.admin_token, store)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(request):
    """One hub per module and store (simulated backend, named servers allowed). A module may set
    `HUB_CONFIG` (extra YAML) and `HUB_SPAWN` (keys of `spawn:`)."""
    extra = getattr(request.module, "HUB_CONFIG", "")
    spawn = getattr(request.module, "HUB_SPAWN", None)
    client = start_hub(request.param, extra_config=extra, spawn=spawn)
    try:
        yield client
    finally:
        client.hub.stop()
