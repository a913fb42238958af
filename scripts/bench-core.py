#!/usr/bin/env python3
"""Hub-core benchmark: prints users created per second (batches of 100) and the latency of
GET /hub/api/users (p50, p99) with 10,000 users, for SQLite and, when a PostgreSQL URL is given,
for PostgreSQL. Starts the real `atrium serve` binary for each database.

    swift build -c release
    python3 scripts/bench-core.py [--binary .build/release/atrium] [--postgres postgres://…/db]
"""
import argparse, json, os, re, statistics, subprocess, tempfile, time, urllib.request

def call(method, url, token, body=None, accept=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", f"token {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, r.read()

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

def run(binary, db, users, label):
    work = tempfile.mkdtemp(prefix="atrium-bench-")
    subprocess.run([binary, "migrate", "--db", db], cwd=work, capture_output=True, check=True)
    token = subprocess.run([binary, "token", "create", "bench", "--admin", "--db", db], cwd=work,
                           capture_output=True, text=True, check=True).stdout.strip()
    hub = subprocess.Popen([binary, "serve", "--port", "0", "--db", db, "--log-level", "warning"], cwd=work,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = None
        for _ in range(100):
            line = hub.stdout.readline()
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1)); break
        assert port, "hub did not start"
        api = f"http://127.0.0.1:{port}/hub/api"
        start = time.perf_counter()
        batch_times = []
        for b in range(users // 100):
            t = time.perf_counter()
            status, _ = call("POST", f"{api}/users", token, {"usernames": [f"bench-{b * 100 + i}" for i in range(100)]})
            assert status == 201
            batch_times.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - start
        full = []
        for _ in range(30):
            t = time.perf_counter(); call("GET", f"{api}/users", token); full.append(time.perf_counter() - t)
        page = []
        for i in range(300):
            t = time.perf_counter()
            call("GET", f"{api}/users?offset={(i * 50) % users}&limit=50", token, accept="application/jupyterhub-pagination+json")
            page.append(time.perf_counter() - t)
        result = {
            "database": label, "users": users,
            "users_created_per_second": round(users / elapsed, 1),
            "batch_of_100_p50_ms": round(pct(batch_times, 50) * 1000, 1),
            "list_all_p50_ms": round(pct(full, 50) * 1000, 1), "list_all_p99_ms": round(pct(full, 99) * 1000, 1),
            "page_of_50_p50_ms": round(pct(page, 50) * 1000, 2), "page_of_50_p99_ms": round(pct(page, 99) * 1000, 2),
        }
        print(json.dumps(result))
        return result
    finally:
        hub.terminate(); hub.wait(timeout=30)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/atrium" if os.path.exists(".build/release/atrium") else ".build/debug/atrium")
    parser.add_argument("--postgres", default=os.environ.get("ATRIUM_BENCH_POSTGRES_URL"))
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    run(binary, os.path.join(tempfile.mkdtemp(), "bench.sqlite"), args.users, "sqlite")
    if args.postgres:
        run(binary, args.postgres, args.users, "postgres")
    else:
        print("no --postgres URL: PostgreSQL skipped")
