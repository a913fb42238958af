"""IBM's unmodified `hub-stress-test.py` against the real hub, on both stores: `stress-test`,
`activity-stress-test` (every update accepted) and `purge`, each exiting 0 with no warning in its
log. The script is kept in vendor/ibm-jupyter-tools (CI cannot reach GitHub) and runs only when
its SHA-256 is the pinned one. It needs `requests` and `urllib3<2` (it passes urllib3 1.x's
`method_whitelist`), which the compat environment has."""
import hashlib
import os
import re
import subprocess
import sys
from datetime import datetime, timezone

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
VENDOR = os.path.join(HERE, "vendor", "ibm-jupyter-tools")
SCRIPT = os.path.join(VENDOR, "hub-stress-test.py")
PREFIX = "hub-stress-test-"


def pinned_sha256():
    with open(os.path.join(VENDOR, "PIN")) as f:
        return re.search(r"^sha256 ([0-9a-f]{64})$", f.read(), re.M).group(1)


def test_script_is_the_pinned_one():
    with open(SCRIPT, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == pinned_sha256(), "vendor/ibm-jupyter-tools/hub-stress-test.py was changed"


def run_script(app, tmp_path, *args):
    """Runs the script (verbose, logging to a file); returns (exit code, log lines)."""
    test_script_is_the_pinned_one()
    log = tmp_path / f"{args[0]}.log"
    env = dict(os.environ, JUPYTERHUB_API_TOKEN=app.admin_token, JUPYTERHUB_ENDPOINT=f"{app.url}/hub/api")
    result = subprocess.run([sys.executable, SCRIPT, "-v", "--log-to-file", str(log), *args],
                            env=env, capture_output=True, text=True, timeout=900)
    lines = log.read_text().splitlines() if log.exists() else []
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr}\n" + "\n".join(lines[-40:])
    return lines


def problems(lines):
    """Lines the script logged at WARNING or above."""
    return [l for l in lines if re.search(r" (WARNING|ERROR|CRITICAL) \[", l)]


def responses(lines):
    """(method, url, status) of every response the script logged (its verbose response hook)."""
    found = []
    for line in lines:
        m = re.search(r"\[hub-stress-test\] (\w+) (\S+) status:(\d+) time:", line)
        if m:
            found.append((m.group(1), m.group(2), int(m.group(3))))
    return found


def stress_users(app):
    r = app.api_request("users")
    assert r.status_code == 200
    return [u for u in r.json() if u["name"].startswith(PREFIX)]


def test_stress_test(app, tmp_path):
    """`stress-test` on its defaults: 100 users, servers started in batches of 10, waited for,
    stopped and deleted."""
    lines = run_script(app, tmp_path, "stress-test")
    assert not problems(lines), "\n".join(problems(lines))
    seen = responses(lines)
    starts = [s for m, u, s in seen if m == "POST" and u.endswith("/server")]
    assert len(starts) == 100 and all(s in (201, 202) for s in starts), starts
    stops = [s for m, u, s in seen if m == "DELETE" and u.endswith("/server")]
    assert len(stops) == 100 and all(s in (202, 204) for s in stops), stops
    assert all(s < 400 or (m == "GET" and s == 404) for m, u, s in seen), [x for x in seen if x[2] >= 400]
    assert stress_users(app) == []


def test_activity_stress_test_then_purge(app, tmp_path):
    """`activity-stress-test --keep`: 100 users without servers, each sent one activity update
    (a minute ahead, as the script sends it) by 100 workers: all accepted and recorded. Then
    `purge` deletes them."""
    began = datetime.now(timezone.utc)
    lines = run_script(app, tmp_path, "activity-stress-test", "--keep")
    assert not problems(lines), "\n".join(problems(lines))
    updates = [s for m, u, s in responses(lines) if m == "POST" and u.endswith("/activity")]
    assert len(updates) == 100, len(updates)
    refused = [s for s in updates if s != 200]
    assert not refused, f"{len(refused)} of 100 activity updates refused: {refused[:5]}"
    users = stress_users(app)
    assert len(users) == 100
    for user in users:
        assert user["last_activity"], user
        recorded = datetime.fromisoformat(user["last_activity"].replace("Z", "+00:00"))
        assert recorded > began, (user["name"], user["last_activity"])

    lines = run_script(app, tmp_path, "purge")
    assert not problems(lines), "\n".join(problems(lines))
    assert stress_users(app) == []
