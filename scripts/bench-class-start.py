#!/usr/bin/env python3
"""A whole class pressing Start at once: N real JupyterLab workspaces (the default preset) started
together through the REST API of the real `atrium serve`, with the default configuration
(concurrent_spawn_limit: auto, ready_timeout 30 s) on this machine.

Prints how many became ready, the time to the first and the last ready (from the moment the
starts were sent), and the CPU bound measured in the same run: N x the CPU seconds one JupyterLab
start costs (measured on a lone start first) / cores. A benchmark, not a test: it prints figures.

    swift build -c release --product atrium
    python3 scripts/bench-class-start.py [--binary .build/release/atrium] [--users 60] [--json]
"""
import argparse, json, os, re, shutil, subprocess, sys, tempfile, threading, time, urllib.request

def call(method, url, token, body=None, timeout=120):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", f"token {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()

def cpu_seconds(pid):
    """utime + stime of a process and its waited-for children, from /proc (clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")

def watch_progress(api, token, name, began, results):
    """Reads the server's progress stream until ready or failed; records when and the last message."""
    req = urllib.request.Request(f"{api}/users/{name}/server/progress")
    req.add_header("Authorization", f"token {token}")
    last = ""
    try:
        with urllib.request.urlopen(req, timeout=600) as stream:
            for raw in stream:
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                last = event.get("message", "")
                if event.get("ready"):
                    results[name] = ("ready", time.perf_counter() - began, last)
                    return
                if event.get("failed"):
                    results[name] = ("failed", time.perf_counter() - began, last)
                    return
    except Exception as e:  # noqa: BLE001 - reported as a failure of that start
        last = f"{last} ({e})"
    results.setdefault(name, ("no answer", time.perf_counter() - began, last))

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/atrium")
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    if not shutil.which("jupyter-lab"):
        sys.exit("jupyter-lab is not installed (scripts/install-test-deps.sh)")
    work = tempfile.mkdtemp(prefix="atrium-class-")
    # As root the default isolation is system_users: the students' accounts pass through this
    # folder to their homes, and this run's accounts have a prefix of their own, removed at the end.
    os.chmod(work, 0o711)
    prefix = f"cls{os.getpid() % 100000}-"
    with open(f"{work}/atrium.yaml", "w") as f:
        f.write(f"db: {work}/atrium.sqlite\ncookie_secret_file: {work}/secret\nlog_level: warning\n"
                f"spawn:\n  stop_servers_on_shutdown: true\nlocal:\n  workspaces_root: {work}/workspaces\n  log_dir: {work}/logs\n"
                f"  socket_dir: /tmp/atrium-class-{os.getpid()}\n  system_user_prefix: \"{prefix}\"\n")
    subprocess.run([binary, "migrate", "--config", "atrium.yaml"], cwd=work, check=True, capture_output=True)
    token = subprocess.run([binary, "token", "create", "bench", "--admin", "--config", "atrium.yaml"], cwd=work,
                           check=True, capture_output=True, text=True).stdout.strip()
    hub = subprocess.Popen([binary, "serve", "--port", "0", "--config", "atrium.yaml"], cwd=work,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    names = [f"student{i:02d}" for i in range(args.users)]
    try:
        port = None
        for _ in range(200):
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", hub.stdout.readline())
            if m:
                port = int(m.group(1))
                break
        assert port, "the hub did not start"
        threading.Thread(target=lambda: [None for _ in hub.stdout], daemon=True).start()
        api = f"http://127.0.0.1:{port}/hub/api"
        assert call("POST", f"{api}/users", token, {"usernames": names + ["lone"]})[0] == 201

        # One start alone: its CPU seconds give the bound.
        t = time.perf_counter()
        lone = {}
        watcher = threading.Thread(target=watch_progress, args=(api, token, "lone", t, lone))
        status, _ = call("POST", f"{api}/users/lone/server", token)
        assert status in (201, 202), status
        watcher.start()
        watcher.join(300)
        assert lone.get("lone", ("?",))[0] == "ready", f"the lone start did not become ready: {lone}"
        _, model = call("GET", f"{api}/users/lone", token)
        pid = json.loads(model)["servers"][""]["state"]["pid"]
        lone_cpu = cpu_seconds(pid)
        lone_seconds = lone["lone"][1]
        assert call("DELETE", f"{api}/users/lone/server", token)[0] in (202, 204)
        time.sleep(2)
        cores = os.cpu_count()
        bound = args.users * lone_cpu / cores

        # The class presses Start.
        results = {}
        began = time.perf_counter()
        watchers = []
        codes = {}
        def press(name):
            codes[name] = call("POST", f"{api}/users/{name}/server", token)[0]
            w = threading.Thread(target=watch_progress, args=(api, token, name, began, results))
            w.start()
            watchers.append(w)
        pressers = [threading.Thread(target=press, args=(n,)) for n in names]
        for p in pressers: p.start()
        for p in pressers: p.join()
        for w in list(watchers): w.join(600)
        elapsed = time.perf_counter() - began
        ready = sorted(v[1] for v in results.values() if v[0] == "ready")
        failed = {k: v for k, v in results.items() if v[0] != "ready"}
        report = {
            "users": args.users, "cores": cores,
            "lone_start_cpu_seconds": round(lone_cpu, 2), "lone_start_ready_seconds": round(lone_seconds, 2),
            "cpu_bound_seconds": round(bound, 1),
            "ready": len(ready), "failed": len(failed),
            "first_ready_seconds": round(ready[0], 2) if ready else None,
            "median_ready_seconds": round(ready[len(ready) // 2], 2) if ready else None,
            "last_ready_seconds": round(ready[-1], 2) if ready else None,
            "last_ready_over_bound": round(ready[-1] / bound, 2) if ready else None,
            "post_status_codes": {str(c): list(codes.values()).count(c) for c in sorted(set(codes.values()))},
            "elapsed_seconds": round(elapsed, 1),
        }
        if failed:
            report["failures"] = {k: v[2] for k, v in list(failed.items())[:5]}
        if args.json:
            print(json.dumps(report))
        else:
            for k, v in report.items():
                print(f"{k:28} {v}")
        for n in names:
            call("DELETE", f"{api}/users/{n}/server", token)
    finally:
        hub.terminate()
        try:
            hub.wait(60)
        except subprocess.TimeoutExpired:
            hub.kill()
        subprocess.run(["pkill", "-f", f"{work}/workspaces"], check=False)
        if os.geteuid() == 0:
            import pwd
            for account in [p for p in pwd.getpwall() if p.pw_name.startswith(prefix) and p.pw_gecos.startswith("Atrium user ")]:
                subprocess.run(["pkill", "-KILL", "-u", str(account.pw_uid)], check=False)
                for _ in range(50):
                    if subprocess.run(["userdel", "--remove", account.pw_name], capture_output=True).returncode in (0, 6, 12):
                        break
                    time.sleep(0.1)
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
