#!/usr/bin/env python3
"""What running each workspace as its student's Unix account costs a start (run as root).

Starts the real hub twice — `local.isolation: hub_user`, then `system_users` — with the bundled
`atrium-workspace` program (it starts in milliseconds, so the hub's own work shows), makes N users
and starts all their servers at once, twice: the first round makes the accounts (useradd), the
second finds them. For every start the hub logs what the isolation work took:

  created a system account  atrium.useradd_ms=…     useradd itself (one at a time: it locks /etc/passwd)
  system account ready      atrium.ms=…             finding the account, or waiting for and making it
  started process           atrium.cgroup_spawn_ms=…  the cgroup's set-up and the spawn as the user

and this prints them per mode and round with each round's wall time from the first POST to the
last server ready. The isolation cost per start (the issue's budget: 20 ms) is the wall time
system_users takes beyond hub_user, divided by the number of starts (account waits overlap with
other starts' work, so the account step's own mean overstates it).

    sudo scripts/bench-isolation.py [--users 50] [--binary .build/release/atrium]
"""
import argparse, json, os, random, re, shutil, statistics, string, subprocess, sys, tempfile, threading, time
import urllib.error, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def call(url, token, method="GET", body=None):
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": "token " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            text = response.read().decode()
            return response.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def run_mode(binary, mode, users, create="on_start"):
    folder = tempfile.mkdtemp(prefix=f"atrium-bench-{mode}-")
    os.chmod(folder, 0o711)
    prefix = "bn" + "".join(random.choice(string.ascii_lowercase) for _ in range(5)) + "-"
    with open(os.path.join(folder, "atrium.yaml"), "w") as f:
        f.write(f"""backend: local
local:
  preset: atrium-workspace
  isolation: {mode}
  create_system_users: {create}
  system_user_prefix: "{prefix}"
  socket_dir: {folder}/run
  stop_grace_period: 5s
spawn:
  concurrent_spawn_limit: 100
  stop_servers_on_shutdown: true
  slow_spawn_timeout: 1s
log_level: info
auth:
  bcrypt_cost: 4
""")
    def atrium(*arguments):
        return subprocess.run([binary, *arguments, "--config", "atrium.yaml"], cwd=folder, capture_output=True, text=True, check=True).stdout.strip()
    atrium("migrate")
    token = atrium("token", "create", "bench", "--admin")
    log_path = os.path.join(folder, "hub.log")
    log = open(log_path, "w")
    hub = subprocess.Popen([binary, "serve", "--port", "0", "--config", "atrium.yaml"], cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    url = None
    for _ in range(600):
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", open(log_path).read())
        if m:
            url = m.group(1)
            break
        time.sleep(0.1)
    if url is None:
        hub.kill()
        sys.exit(f"the hub did not start:\n{open(log_path).read()[-2000:]}")
    api = url + "/hub/api"
    names = [f"student{i:03}" for i in range(users)]
    status, body = call(api + "/users", token, "POST", {"usernames": names})
    assert status == 201, (status, body)
    made_in = None
    if mode == "system_users" and create == "on_approval":
        # The class was approved before it starts: wait until every account exists.
        began = time.time()
        for _ in range(1200):
            if sum(1 for line in open("/etc/passwd") if line.startswith(prefix)) == users:
                break
            time.sleep(0.05)
        made_in = time.time() - began
    walls = []
    try:
        for _ in range(2):
            began = time.time()
            threads = [threading.Thread(target=call, args=(f"{api}/users/{n}/server", token, "POST")) for n in names]
            for t in threads: t.start()
            for t in threads: t.join()
            for _ in range(1200):
                status, listed = call(api + "/users?state=ready&limit=1000", token)
                if status == 200 and len(listed) == users:
                    break
                time.sleep(0.05)
            else:
                sys.exit(f"{mode}: not every server became ready:\n{open(log_path).read()[-3000:]}")
            walls.append(time.time() - began)
            for n in names: call(f"{api}/users/{n}/server", token, "DELETE")
            for _ in range(1200):
                status, listed = call(api + "/users?state=active&limit=1000", token)
                if status == 200 and not listed:
                    break
                time.sleep(0.05)
    finally:
        hub.terminate()
        hub.wait(timeout=60)
        log.close()
        for line in open("/etc/passwd"):
            name = line.split(":")[0]
            if name.startswith(prefix):
                subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
                subprocess.run(["userdel", "--remove", name], capture_output=True)
    text = open(log_path).read()
    account = [float(x) for x in re.findall(r"atrium\.ms=([\d.]+)", text)]
    useradd = [float(x) for x in re.findall(r"atrium\.useradd_ms=([\d.]+)", text)]
    spawn = [float(x) for x in re.findall(r"atrium\.cgroup_spawn_ms=([\d.]+)", text)]
    shutil.rmtree(folder, ignore_errors=True)
    return {"account": [account[:users], account[users:]], "spawn": [spawn[:users], spawn[users:]], "walls": walls, "useradd": useradd,
            "made_in": made_in}


def summary(values):
    return f"mean {statistics.mean(values):7.2f} ms  median {statistics.median(values):7.2f} ms" if values else "—"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    default = os.path.join(ROOT, ".build/release/atrium")
    parser.add_argument("--binary", default=default if os.path.exists(default) else os.path.join(ROOT, ".build/debug/atrium"))
    options = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: system_users makes Unix accounts")
    print(f"{options.users} concurrent starts of atrium-workspace, {os.cpu_count()} cores, {options.binary}")
    results = {
        "hub_user": run_mode(options.binary, "hub_user", options.users),
        "system_users (accounts at approval, the default)": run_mode(options.binary, "system_users", options.users, "on_approval"),
        "system_users (accounts at first start)": run_mode(options.binary, "system_users", options.users, "on_start"),
    }
    plain = results["hub_user"]
    for label, r in results.items():
        if r["made_in"] is not None:
            print(f"\n{label}: {len(r['useradd'])} accounts made at approval in {r['made_in']:.2f} s (useradd {summary(r['useradd'])} each)")
    for index, round_name in enumerate(("first start", "second start (accounts exist)")):
        print(f"\n{round_name}:")
        for label, r in results.items():
            line = f"  {label:48} wall {r['walls'][index]:6.2f} s   cgroup+spawn {summary(r['spawn'][index])}"
            if r["account"][index]:
                line += f"   account step {summary(r['account'][index])}"
            if label != "hub_user":
                per_start = (r["walls"][index] - plain["walls"][index]) / options.users * 1000
                line += f"\n  {'':48} isolation cost per start {per_start:+.2f} ms (budget 20 ms: {'within' if per_start <= 20 else 'OVER'})"
            if index == 0 and r["useradd"] and r["made_in"] is None:
                line += f"\n  {'':48} useradd in the start path: {summary(r['useradd'])} each, one at a time"
            print(line)


if __name__ == "__main__":
    main()
