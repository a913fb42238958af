#!/usr/bin/env python3
"""Admin panel benchmark: N users (default 50,000) in the store, then
  - the JSON endpoint the panel reads (GET /hub/api/users, paginated) under several queries;
  - the panel's first render in headless Chromium: navigation start → users table rendered
    (the page sets body[data-users-rendered] to performance.now() after its first render).
Prints figures; not a pass/fail test. Needs .build/debug/atrium (or ATRIUM_BINARY),
chromium, chromium-driver and selenium for the browser part.

  python3 scripts/bench-admin.py [--users 50000] [--runs 7]
"""
import argparse
import json
import os
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "browser"))
import hub as hubkit  # noqa: E402


def request(url, token, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"token {token}", "Accept": "application/jupyterhub-pagination+json",
        "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"null")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    hub = hubkit.Hub()
    try:
        token = hub.atrium(["token", "create", "admin", "--admin"])
        api = hub.url + "/hub/api"
        t = time.time()
        batch = 1000
        for start in range(0, args.users, batch):
            names = [f"student-{i:05}" for i in range(start, min(start + batch, args.users))]
            request(api + "/users", token, "POST", {"usernames": names})
        print(f"created {args.users:,} users in {time.time() - t:.1f} s (POST /users, {batch} a batch)")

        queries = {
            "first page, by name": "sort=name&limit=50",
            "last page, by name": f"sort=name&limit=50&offset={max(0, args.users - 50)}",
            "recently active": "sort=-last_activity&limit=50",
            "newest": "sort=-created&limit=50",
            "search 'nt-4999'": "sort=name&limit=50&name_filter=nt-4999",
            "stopped (inactive)": "sort=name&limit=50&state=inactive",
            "idle": "sort=name&limit=50&state=idle",
            "awaiting approval": "sort=name&limit=50&approval=pending",
        }
        print(f"\nGET /hub/api/users (panel's query, include_stopped_servers), {args.runs * 3} runs each, ms:")
        print(f"  {'query':28} {'median':>8} {'p95':>8} {'max':>8}")
        for label, q in queries.items():
            samples = []
            for _ in range(args.runs * 3):
                t = time.perf_counter()
                request(f"{api}/users?{q}&include_stopped_servers=1", token)
                samples.append((time.perf_counter() - t) * 1000)
            samples.sort()
            p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
            print(f"  {label:28} {statistics.median(samples):8.1f} {p95:8.1f} {samples[-1]:8.1f}")

        missing = hubkit.missing_browser()
        if missing:
            print(f"\nbrowser part skipped: {missing} is not installed")
            return 0
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
        driver = hubkit.browser()
        try:
            driver.get(hub.url + "/hub/login")
            driver.find_element(By.ID, "username").send_keys("admin")
            driver.find_element(By.ID, "password").send_keys(hub.admin_password)
            driver.find_element(By.ID, "login_submit").click()
            renders = []
            for _ in range(args.runs):
                driver.get(hub.url + "/hub/admin")
                WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.usersRendered"))
                rendered = float(driver.execute_script("return document.body.dataset.usersRendered"))
                rows = len(driver.find_elements(By.CSS_SELECTOR, "#users-body tr[data-user]"))
                total = driver.find_element(By.ID, "range").text
                renders.append(rendered)
            print(f"\n/hub/admin first render in Chromium (navigation start → table of {rows} rows rendered, '{total}'),"
                  f" {args.runs} loads, ms: median {statistics.median(renders):.0f}, min {min(renders):.0f}, max {max(renders):.0f}")
        finally:
            driver.quit()
    finally:
        hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
