#!/usr/bin/env python3
"""A small real workspace program for the isolation and limits tests.

It serves HTTP on the Unix socket the hub gives it (`--socket`), under `--base-url`, and does
what a student's code could do, reporting what the kernel allowed:

  GET  {base}whoami              uid, gid, groups, umask, HOME, USER, pid
  POST {base}probe               body {"read": [paths], "list": [dirs], "connect": [sockets],
                                 "signal": [pids]}: per item "ok" or the errno name
  POST {base}allocate?mb=N       touches N MiB (the memory limit's test)
  POST {base}forkbomb            forks sleeping children until fork fails; returns how many
  POST {base}spin?threads=N      N busy processes until the workspace stops
  GET  {base}pids                the pids of this workspace's processes (for the other probe)
"""
import argparse, errno, json, os, signal, socket, socketserver, sys, time
from http.server import BaseHTTPRequestHandler

parser = argparse.ArgumentParser()
parser.add_argument("--socket", required=True)
parser.add_argument("--base-url", required=True)
args = parser.parse_args()
base = args.base_url if args.base_url.endswith("/") else args.base_url + "/"
children = []
hoard = []


def outcome(action):
    try:
        action()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def read(path):
    with open(path, "rb") as f:
        f.read(1)


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    finally:
        s.close()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def route(self):
        path, _, query = self.path.partition("?")
        if not path.startswith(base):
            return None, {}
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        return path[len(base):], params

    def do_GET(self):
        name, _ = self.route()
        if name == "whoami":
            mask = os.umask(0o077)
            os.umask(mask)
            return self.reply(200, {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
                                    "umask": mask, "home": os.environ.get("HOME"), "user": os.environ.get("USER"),
                                    "pid": os.getpid(), "cwd": os.getcwd()})
        if name == "pids":
            return self.reply(200, {"pids": [os.getpid()] + children})
        return self.reply(200 if name is not None else 404, {"probe": "workspace"})

    def do_POST(self):
        name, params = self.route()
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if name == "probe":
            result = {
                "read": {p: outcome(lambda p=p: read(p)) for p in body.get("read", [])},
                "list": {p: outcome(lambda p=p: os.listdir(p)) for p in body.get("list", [])},
                "connect": {p: outcome(lambda p=p: connect(p)) for p in body.get("connect", [])},
                "signal": {str(p): outcome(lambda p=p: os.kill(int(p), signal.SIGTERM)) for p in body.get("signal", [])},
            }
            return self.reply(200, result)
        if name == "allocate":
            mb = int(params.get("mb", "1"))
            for _ in range(mb):
                hoard.append(bytearray(b"x" * (1 << 20)))
            return self.reply(200, {"allocated_mb": mb})
        if name == "forkbomb":
            made = 0
            failure = None
            for _ in range(100000):
                try:
                    pid = os.fork()
                except OSError as e:
                    failure = errno.errorcode.get(e.errno, str(e.errno))
                    break
                if pid == 0:
                    time.sleep(3600)
                    os._exit(0)
                children.append(pid)
                made += 1
            return self.reply(200, {"forked": made, "failure": failure})
        if name == "spin":
            for _ in range(int(params.get("threads", "1"))):
                pid = os.fork()
                if pid == 0:
                    while True:
                        pass
                children.append(pid)
            return self.reply(200, {"spinning": int(params.get("threads", "1"))})
        return self.reply(404, {"error": "unknown probe"})


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)


try:
    os.unlink(args.socket)
except FileNotFoundError:
    pass
server = Server(args.socket, Handler)
os.chmod(args.socket, 0o600)
print(f"probe workspace on {args.socket} at {base} as uid {os.getuid()}", flush=True)
server.serve_forever()
