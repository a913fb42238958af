#!/usr/bin/env python3
"""`atrium stress` against IBM's hub-stress-test.py, on the same hub (issue 17, item 7).

Starts the real hub (simulated backend: starts take 1–3 s; `spawn.concurrent_spawn_limit` small
enough that starts are throttled with 429 and Retry-After, where the retry policies differ), then
runs each tool's `stress-test` with the same --count and --batch-size, alternately, --rounds times,
each on an empty hub, and prints the wall time of every run and the median of each tool.
IBM's script runs unmodified from tests/compat/vendor/ (pinned, SHA-256 checked) in the
compatibility environment (scripts/compat-env.sh; scripts/install-test-deps.sh makes it).

    scripts/bench-stress-vs-ibm.py [--count 100] [--batch-size 10] [--spawn-limit 5] [--rounds 2]
                                   [--start-delay 1s-3s] [--binary .build/release/atrium]
"""
import argparse, hashlib, os, re, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "browser"))
from hub import Hub  # noqa: E402

VENDOR = os.path.join(ROOT, "tests", "compat", "vendor", "ibm-jupyter-tools")


def compat_python():
    env = subprocess.run([os.path.join(ROOT, "scripts", "compat-env.sh")], capture_output=True, text=True).stdout.strip()
    python = os.path.join(env, "bin", "python")
    if not os.access(python, os.X_OK):
        sys.exit(f"{python} is missing: run scripts/install-test-deps.sh")
    return python


def check_pin():
    script = os.path.join(VENDOR, "hub-stress-test.py")
    pinned = re.search(r"^sha256 (\w+)$", open(os.path.join(VENDOR, "PIN")).read(), re.M).group(1)
    if hashlib.sha256(open(script, "rb").read()).hexdigest() != pinned:
        sys.exit("tests/compat/vendor/ibm-jupyter-tools/hub-stress-test.py differs from its pinned hash")
    return script


def run(label, command, env):
    began = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - began
    if result.returncode != 0:
        sys.exit(f"{label} failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--spawn-limit", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--start-delay", default="1s-3s", help="simulated start time, MIN-MAX (e.g. 2s-2s for no spread)")
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "atrium"))
    args = parser.parse_args()
    import hub as hubmodule
    args.binary = os.path.abspath(args.binary)
    hubmodule.BINARY = args.binary
    script, python = check_pin(), compat_python()

    hub = Hub(setup=lambda h: setattr(h, "token", h.atrium(["token", "create", "admin"])),
              simulated={"start_delay_min": args.start_delay.split("-")[0], "start_delay_max": args.start_delay.split("-")[1],
                         "failure_rate": "0"},
              spawn={"concurrent_spawn_limit": str(args.spawn_limit)})
    try:
        env = dict(os.environ, JUPYTERHUB_API_TOKEN=hub.token, JUPYTERHUB_ENDPOINT=f"{hub.url}/hub/api")
        common = ["--count", str(args.count), "--batch-size", str(args.batch_size)]
        times = {"hub-stress-test.py": [], "atrium stress": []}
        for round in range(args.rounds):
            times["hub-stress-test.py"].append(run("hub-stress-test.py", [python, script, "stress-test", *common], env))
            times["atrium stress"].append(run("atrium stress", [args.binary, "stress", "stress-test", *common], env))
            print(f"round {round + 1}: hub-stress-test.py {times['hub-stress-test.py'][-1]:.1f} s, "
                  f"atrium stress {times['atrium stress'][-1]:.1f} s", flush=True)
        print(f"\n{args.count} users, batches of {args.batch_size}, concurrent_spawn_limit {args.spawn_limit}, "
              f"starts {args.start_delay} (simulated), {args.rounds} rounds each")
        for tool, runs in times.items():
            print(f"  {tool:20s} median {statistics.median(runs):6.1f} s   runs: {', '.join(f'{t:.1f}' for t in runs)}")
        ratio = statistics.median(times["atrium stress"]) / statistics.median(times["hub-stress-test.py"])
        print(f"  atrium stress / hub-stress-test.py: {ratio:.2f}")
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
