"""/hub/metrics against JupyterHub 6.1.1's own metrics: every family JupyterHub exports, with its
type and label names, read from the `jupyterhub.metrics` module of the installed `jupyterhub`
package (not a list written here); and the events that feed the new families."""
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import ADMIN_PASSWORD


def scrape(app):
    r = requests.get(f"{app.url}/hub/metrics", headers={"Authorization": f"token {app.admin_token}"}, timeout=60)
    assert r.status_code == 200, r.text
    return {family.name: family for family in text_string_to_metric_families(r.text)}


def value(families, name, sample_name=None, **labels):
    """The value of the one sample of `name`'s family whose labels include `labels`."""
    family = families[name]
    sample_name = sample_name or name
    found = [s.value for s in family.samples
             if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (sample_name, labels, found)
    return found[0]


def jupyterhub_families():
    """JupyterHub's families: name -> (type, label names), from the metric objects its
    `jupyterhub.metrics` module declares."""
    import jupyterhub.metrics as declared
    from prometheus_client.metrics import MetricWrapperBase
    families = {}
    for metric in vars(declared).values():
        if isinstance(metric, MetricWrapperBase):
            families[metric._name] = (metric._type, set(metric._labelnames))
    return families


def test_every_jupyterhub_family_with_its_labels(app):
    """Every metric family JupyterHub 6.1.1 exports is on /hub/metrics, with its type and labels."""
    expected = jupyterhub_families()
    assert len(expected) >= 17, expected  # the module really was read
    assert app.api_request("").status_code == 200  # a request, so that one is counted
    ours = scrape(app)
    missing = sorted(set(expected) - set(ours))
    assert not missing, f"families JupyterHub has and Atrium lacks: {missing}"
    for name, (kind, labels) in expected.items():
        assert ours[name].type == kind, (name, ours[name].type, kind)
        our_labels = set()
        for sample in ours[name].samples:
            our_labels |= set(sample.labels) - {"le"}
        assert our_labels == labels, (name, our_labels, labels)


def test_spawn_series_precreated_with_reason(app):
    """JupyterHub pre-creates the spawn histogram's status/reason series (metrics.py)."""
    from jupyterhub.metrics import ServerSpawnFailureReason, ServerSpawnStatus
    ours = scrape(app)
    series = {(s.labels["status"], s.labels["reason"]) for s in ours["jupyterhub_server_spawn_duration_seconds"].samples}
    for status in ServerSpawnStatus:
        assert (str(status), "") in series
    for reason in ServerSpawnFailureReason:
        assert ("failure", str(reason)) in series


def browser_session(app):
    """A `requests` session holding the login form's XSRF cookie."""
    s = requests.Session()
    r = s.get(f"{app.url}/hub/login", timeout=60)
    assert r.status_code == 200
    return s, s.cookies.get("_xsrf")


def test_login_logout_durations(app):
    name = app.add_user()
    before = scrape(app)
    s, xsrf = browser_session(app)
    r = s.post(f"{app.url}/hub/login", data={"username": "admin", "password": "wrong", "_xsrf": xsrf}, allow_redirects=False, timeout=60)
    assert r.status_code == 403
    r = s.post(f"{app.url}/hub/login", data={"username": "admin", "password": ADMIN_PASSWORD, "_xsrf": xsrf}, allow_redirects=False, timeout=60)
    assert r.status_code in (302, 303), r.text
    r = s.post(f"{app.url}/hub/logout", data={"_xsrf": xsrf}, allow_redirects=False, timeout=60)
    assert r.status_code in (302, 303)
    after = scrape(app)
    family = "jupyterhub_login_duration_seconds"
    for status in ("success", "failure"):
        assert value(after, family, family + "_count", status=status) == value(before, family, family + "_count", status=status) + 1
    family = "jupyterhub_logout_duration_seconds"
    assert value(after, family, family + "_count") == value(before, family, family + "_count") + 1
    assert name


def test_csp_reports(app):
    """JupyterHub's CSPReportHandler: authenticated, counted; the pages name it as report-uri."""
    report = {"csp-report": {"document-uri": f"{app.url}/hub/home", "violated-directive": "script-src"}}
    r = requests.post(f"{app.url}/hub/security/csp-report", json=report, timeout=60)
    assert r.status_code == 403
    s, xsrf = browser_session(app)
    login = s.get(f"{app.url}/hub/login", timeout=60)
    assert "report-uri /hub/security/csp-report" in login.headers["Content-Security-Policy"]
    r = s.post(f"{app.url}/hub/login", data={"username": "admin", "password": ADMIN_PASSWORD, "_xsrf": xsrf}, allow_redirects=False, timeout=60)
    assert r.status_code in (302, 303)
    before = scrape(app)
    r = s.post(f"{app.url}/hub/security/csp-report", json=report, headers={"Content-Type": "application/csp-report"}, timeout=60)
    assert r.status_code == 200
    after = scrape(app)
    name = "jupyterhub_csp_reports"
    assert value(after, name, name + "_total") == value(before, name, name + "_total") + 1


def test_proxy_add_delete_and_check_routes(app):
    name = app.add_user()
    before = scrape(app)
    r = app.api_request("users", name, "server", method="post")
    assert r.status_code in (201, 202), r.text
    app.wait_for_server(name)
    r = app.api_request("users", name, "server", method="delete")
    assert r.status_code in (202, 204), r.text
    app.wait_for_server(name, ready=False)
    r = app.api_request("proxy", method="post")
    assert r.status_code == 200
    after = scrape(app)
    for family in ("jupyterhub_proxy_add_duration_seconds", "jupyterhub_proxy_delete_duration_seconds"):
        count = family + "_count"
        assert value(after, family, count, status="success") == value(before, family, count, status="success") + 1, family
    family = "jupyterhub_check_routes_duration_seconds"
    assert value(after, family, family + "_count") >= value(before, family, family + "_count") + 1


def test_event_loop_interval_is_measured(app):
    """The hub measures its scheduler every 50 ms (bounded wait for the first samples)."""
    family = "jupyterhub_event_loop_interval_seconds"
    for _ in range(100):
        ours = scrape(app)
        if value(ours, family, family + "_count") > 0:
            break
        time.sleep(0.1)
    assert value(ours, family, family + "_count") > 0
