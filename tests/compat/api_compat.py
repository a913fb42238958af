"""Helpers of the test_api*.py modules: JupyterHub's `tests/utils.py` and `tests/conftest.py`
helpers, over HTTP against the real `atrium` binary (see conftest.py for the hub fixture).

- `api_request` is JupyterHub's `api_request`: `Sec-Fetch-Mode: cors` as a browser's fetch,
  the admin's token unless `token`/`headers`/`cookies`/`noauth`, `_xsrf` from `cookies` in the
  URL, and its check that every answer with a body is JSON.
- `hub_fixture` makes a module's own `app` fixture when the hub needs environment settings
  (the simulated backend's start delay and failure rate, blocked users) that the YAML cannot
  carry beside the sections hub.py writes.
"""
import os
import re
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
import requests

import conftest  # the compat harness (loaded by pytest as `conftest`)

new_name = conftest.new_name

PAGINATION_MEDIA_TYPE = "application/jupyterhub-pagination+json"


def api_url(app, *api_path):
    """`/hub/api/` joined with `api_path` (JupyterHub's url_path_join: a trailing slash stays,
    as in `users/{name}/servers/` for the default server)."""
    parts = [str(p) for p in api_path if p != "" and p is not None]
    path = "/".join(p.strip("/") for p in parts)
    if parts and parts[-1].endswith("/") and path:
        path += "/"
    return f"{app.url}/hub/api/{path}" if path else f"{app.url}/hub/api"


def api_request(app, *api_path, method="get", token=None, noauth=False, headers=None, cookies=None,
                check_json=True, **kwargs):
    """JupyterHub's tests/utils.py::api_request, against Atrium."""
    headers = dict(headers or {})
    headers.setdefault("Sec-Fetch-Mode", "cors")
    if "Authorization" not in headers and not noauth and cookies is None:
        headers["Authorization"] = f"token {token or app.admin_token}"
    params = dict(kwargs.pop("params", None) or {})
    if cookies is not None and "_xsrf" in cookies and not noauth:
        params["_xsrf"] = cookies["_xsrf"]
    kwargs.setdefault("timeout", 60)
    kwargs.setdefault("allow_redirects", False)
    r = requests.request(method.upper(), api_url(app, *api_path), headers=headers, cookies=cookies,
                         params=params or None, **kwargs)
    if check_json and not kwargs.get("stream", False) and r.content:
        content_type = r.headers.get("content-type", "unspecified")
        assert "application/json" in content_type, (r.status_code, content_type, r.text[:200])
    return r


def token_header(token):
    return {"Authorization": f"token {token}"}


def new_password():
    return "Pw-" + uuid.uuid4().hex


def set_password(app, name, password):
    app.hub.atrium(["user", "set-password", name, "--password-stdin"], stdin=password + "\n")


def login_user(app, name, password=None):
    """JupyterHub's `app.login_user`: logs in through the login form; returns the cookies
    (session and `_xsrf`) as a dict. A user without `password` is given a fresh one first."""
    if password is None:
        password = new_password()
        set_password(app, name, password)
    s = requests.Session()
    r = s.get(app.url + "/hub/login", timeout=60)
    assert r.status_code == 200, r.status_code
    xsrf = s.cookies.get("_xsrf")
    assert xsrf, "the login page sets an _xsrf cookie"
    r = s.post(app.url + "/hub/login", data={"username": name, "password": password, "_xsrf": xsrf},
               allow_redirects=False, timeout=60)
    assert r.status_code in (302, 303), (r.status_code, r.text[:300])
    return {c.name: c.value for c in s.cookies}


def add_user(app, name=None, admin=False, used=False):
    """A new user (through the API); with `used`, the user has made a request with their own
    token (JupyterHub's fixture users have, so their `last_activity` is set)."""
    name = app.add_user(name=name, admin=admin)
    if used:
        r = api_request(app, "user", token=app.token_for(name))
        assert r.status_code == 200, r.text
    return name


def user_model(app, name, **params):
    r = api_request(app, "users", name, params=params)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def normalize_timestamp(ts):
    """JupyterHub's normalize_timestamp: every digit run becomes 0."""
    if ts is None:
        return None
    return re.sub(r"\d(\.\d+)?", "0", ts)


TIMESTAMP = normalize_timestamp(datetime.now().isoformat() + "Z")


def parse_date(ts):
    """An ISO 8601 timestamp as an aware datetime."""
    if ts.endswith("Z"):
        ts = ts[:-1] + "+00:00"
    dt = datetime.fromisoformat(ts)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


def utcnow():
    return datetime.now(timezone.utc)


def subset(model, expected):
    """The keys of `expected` taken from `model` (keys missing in `model` stay missing), so an
    equality check reads every key and value JupyterHub's test compares, and tolerates fields
    Atrium adds."""
    return {k: model[k] for k in expected if k in model}


def wait_for(condition, timeout=180, interval=0.1, message="condition"):
    """Bounded polling for an event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


def wait_stopped(app, name, server=""):
    """Waits until `server` is neither active nor pending (JupyterHub's `while spawner.active`)."""
    def stopped():
        servers = user_model(app, name).get("servers", {})
        s = servers.get(server)
        return s is None or (not s.get("ready") and not s.get("pending"))
    return wait_for(stopped, message=f"{name}/{server} to stop")


def events(response):
    """The `data:` events of an event stream, decoded, as an iterator (JupyterHub's next_event)."""
    import json
    for line in response.iter_lines(decode_unicode=True):
        if line and line.startswith("data:"):
            yield json.loads(line.split(":", 1)[1])


@contextmanager
def environment(values):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def hub_fixture(env=None, extra_config="", spawn=None, variants=None):
    """A module-scoped `app` fixture (one hub per store, as conftest's) whose hub starts with
    `env` in its environment. `variants` ({id: (env, extra_config, spawn)}) runs the module once
    per variant and store instead; the variant's id is `app.variant`."""
    variants = variants or {"": (env or {}, extra_config, spawn)}
    params = [(store, v) for v in variants for store in ("sqlite", "postgresql")]
    ids = [f"{store}-{v}" if v else store for store, v in params]

    @pytest.fixture(scope="module", params=params, ids=ids)
    def app(request):
        store, variant = request.param
        v_env, v_config, v_spawn = variants[variant]
        with environment(v_env or {}):
            client = conftest.start_hub(store, extra_config=v_config or "", spawn=v_spawn)
        client.variant = variant
        try:
            yield client
        finally:
            client.hub.stop()

    return app
