#!/usr/bin/env python3
"""Proxy benchmark: requests/s and latency through the hub's proxy and directly to the workspace,
in one run, plus many WebSockets held open through the hub with its memory before and after.

    python3 scripts/bench-proxy.py [--bin .build-release/release] [--duration 10] [--connections 64]
                                   [--websockets 1000] [--hold 60]

Needs wrk (apt-get install wrk) and, for the WebSocket part, the Python `websockets` package
(pip install websockets). The workspace is the bundled atrium-workspace on a loopback TCP port
(wrk cannot use Unix sockets), so both paths are TCP; the hub reaches it the same way.
"""
import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def call(base, method, path, token, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read()
        return response.status, (json.loads(text) if text else None)


def wrk(url, headers, duration, connections, threads):
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def percentile(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": percentile(50), "p99_ms": percentile(99), "non_2xx": int(errors.group(1)) if errors else 0}


async def hold_websockets(url, headers, count, hold):
    import websockets

    sockets = []
    for i in range(count):
        ws = await websockets.connect(url, additional_headers=headers, max_size=None, open_timeout=30)
        sockets.append(ws)
    # Every socket echoes once when opened and once before closing.
    async def ping(ws, text):
        await ws.send(text)
        return (await ws.recv()) == text

    ok_open = sum(await asyncio.gather(*(ping(ws, f"hello {i}") for i, ws in enumerate(sockets))))
    return sockets, ok_open


async def close_all(sockets):
    async def bye(ws, i):
        ok = False
        try:
            await ws.send(f"bye {i}")
            ok = (await ws.recv()) == f"bye {i}"
        finally:
            await ws.close()
        return ok

    return sum(await asyncio.gather(*(bye(ws, i) for i, ws in enumerate(sockets))))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=None, help="folder with atrium and atrium-workspace (default: release, else debug)")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--websockets", type=int, default=1000)
    parser.add_argument("--hold", type=int, default=60, help="seconds to hold the WebSockets open")
    parser.add_argument("--workspace", choices=["atrium-workspace", "jupyter-server"], default="atrium-workspace",
                        help="the program behind the proxy (jupyter-server: GET /api/status of a real Jupyter server)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates = [args.bin] if args.bin else [f"{root}/.build-release/release", f"{root}/.build/release", f"{root}/.build/debug"]
    bindir = next((os.path.abspath(c) for c in candidates if c and os.path.exists(f"{c}/atrium") and os.path.exists(f"{c}/atrium-workspace")), None)
    if not bindir:
        sys.exit("build first: swift build -c release --product atrium && swift build -c release --product atrium-workspace")
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))

    work = tempfile.mkdtemp(prefix="atrium-bench-proxy-")
    if args.workspace == "jupyter-server":
        if not shutil.which("jupyter-server"):
            sys.exit("jupyter-server is missing: pip install jupyter-server")
        command = ('["jupyter-server", "--ServerApp.port={port}", "--ServerApp.base_url={base_url}", '
                   '"--ServerApp.root_dir={code}", "--ServerApp.allow_root=True", "--ServerApp.open_browser=False", '
                   '"--ServerApp.log_level=WARN"]')
        environment = '["JUPYTER_TOKEN={secret}"]'
        path = "/user/bench/api/status"
    else:
        command = f'["{bindir}/atrium-workspace", "--port", "{{port}}", "--base-url", "{{base_url}}"]'
        environment = "[]"
        path = "/user/bench/"
    config = f"""
local:
  command: {command}
  environment: {environment}
  socket_dir: {work}/run
spawn:
  stop_servers_on_shutdown: true
proxy:
  auth_cache_lifetime: 60s
log_level: warning
"""
    with open(f"{work}/atrium.yaml", "w") as f:
        f.write(config)
    subprocess.run([f"{bindir}/atrium", "migrate", "--config", "atrium.yaml"], cwd=work, capture_output=True, check=True)
    token = subprocess.run([f"{bindir}/atrium", "token", "create", "ops", "--admin", "--config", "atrium.yaml"],
                           cwd=work, capture_output=True, text=True, check=True).stdout.strip()
    hub = subprocess.Popen([f"{bindir}/atrium", "serve", "--port", "0", "--config", "atrium.yaml"], cwd=work,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = None
        for line in hub.stdout:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        base = f"http://127.0.0.1:{port}"
        call(base, "POST", "/hub/api/users", token, {"usernames": ["bench"]})
        status, _ = call(base, "POST", "/hub/api/users/bench/server", token)
        assert status in (201, 202), status
        for _ in range(300):
            _, model = call(base, "GET", "/hub/api/users/bench", token)
            server = model["servers"].get("", {})
            if server.get("ready"):
                break
            time.sleep(0.1)
        state = server["state"]
        wport = state["address"]["tcp"]["port"]
        with open(f"/proc/{state['pid']}/environ", "rb") as f:
            env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
        secret = env[b"ATRIUM_WORKSPACE_SECRET"].decode()

        # Warm both paths, then measure them back to back, twice, alternating.
        wrk(f"{base}{path}", [f"Authorization: token {token}"], 2, args.connections, args.threads)
        results = {"direct": [], "hub": []}
        for _ in range(2):
            results["direct"].append(wrk(f"http://127.0.0.1:{wport}{path}", [f"Authorization: token {secret}"],
                                         args.duration, args.connections, args.threads))
            results["hub"].append(wrk(f"{base}{path}", [f"Authorization: token {token}"],
                                      args.duration, args.connections, args.threads))
        best = {k: max(v, key=lambda r: r["rps"]) for k, v in results.items()}
        figures = {"http": best, "ratio_hub_to_direct": best["hub"]["rps"] / best["direct"]["rps"]}

        try:
            import websockets  # noqa: F401
            have_ws = True
        except ImportError:
            have_ws = False
            figures["websockets"] = "skipped: pip install websockets"
        if have_ws and args.websockets > 0 and args.workspace == "atrium-workspace":
            before = rss_kib(hub.pid)

            async def run_ws():
                url = f"ws://127.0.0.1:{port}/user/bench/ws"
                sockets, ok_open = await hold_websockets(url, {"Authorization": f"token {token}"}, args.websockets, args.hold)
                held = rss_kib(hub.pid)
                await asyncio.sleep(args.hold)
                held_end = rss_kib(hub.pid)
                ok_close = await close_all(sockets)
                return ok_open, ok_close, held, held_end

            ok_open, ok_close, held, held_end = asyncio.run(run_ws())
            time.sleep(2)
            after = rss_kib(hub.pid)
            figures["websockets"] = {
                "count": args.websockets, "hold_s": args.hold, "echo_ok_open": ok_open, "echo_ok_close": ok_close,
                "hub_rss_mib_before": round(before / 1024, 1), "hub_rss_mib_open": round(held / 1024, 1),
                "hub_rss_mib_end_of_hold": round(held_end / 1024, 1), "hub_rss_mib_after_close": round(after / 1024, 1),
            }
        call(base, "DELETE", "/hub/api/users/bench/server", token)
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(timeout=30)
        subprocess.run(["pkill", "-f", work])
        shutil.rmtree(work, ignore_errors=True)

    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"binaries: {bindir}; workspace: {args.workspace} ({path})")
    print(f"small GET, keep-alive, {args.connections} connections, {args.duration} s (best of 2):")
    for name in ("direct", "hub"):
        r = best[name]
        print(f"  {name:7s} {r['rps']:10.0f} req/s   p50 {r['p50_ms']:.2f} ms   p99 {r['p99_ms']:.2f} ms   non-2xx {r['non_2xx']}")
    print(f"  through the hub: {figures['ratio_hub_to_direct'] * 100:.1f}% of direct requests/s")
    ws = figures.get("websockets")
    if isinstance(ws, dict):
        print(f"{ws['count']} WebSockets through the hub held {ws['hold_s']} s: echo ok {ws['echo_ok_open']} at open, {ws['echo_ok_close']} at close")
        print(f"  hub RSS: {ws['hub_rss_mib_before']} MiB before, {ws['hub_rss_mib_open']} MiB open, "
              f"{ws['hub_rss_mib_end_of_hold']} MiB at end of hold, {ws['hub_rss_mib_after_close']} MiB after close")
    elif ws:
        print(f"websockets: {ws}")


if __name__ == "__main__":
    main()
