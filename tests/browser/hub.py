"""Start the real `atrium` binary (simulated backend) and a headless Chromium for browser tests."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("ATRIUM_BINARY", os.path.join(ROOT, ".build", "debug", "atrium"))
ARTIFACTS = os.environ.get("ATRIUM_TEST_ARTIFACTS", os.path.join(ROOT, "test-artifacts"))


def missing_browser():
    """What is missing to run browser tests, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the Python package selenium (pip install selenium)"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "chromium (apt-get install chromium chromium-driver)"
    if not shutil.which("chromedriver"):
        return "chromedriver (apt-get install chromium-driver)"
    return None


def require_browser():
    """Exit 0 with a note when the browser stack is missing; under CI=true that is a failure."""
    missing = missing_browser()
    if missing:
        if os.environ.get("CI") == "true":
            print(f"browser tests: {missing} is required under CI", file=sys.stderr)
            sys.exit(1)
        print(f"browser tests skipped: {missing} is not installed", file=sys.stderr)
        sys.exit(0)
    if not os.access(BINARY, os.X_OK):
        print(f"browser tests: {BINARY} is missing: run `swift build` first", file=sys.stderr)
        sys.exit(1)


class Hub:
    """`atrium serve --port 0` in a temporary folder, with an admin `admin`."""

    def __init__(self, admin_password="Admin-Pass-4821", extra_config=""):
        self.dir = tempfile.mkdtemp(prefix="atrium-browser-")
        self.config = os.path.join(self.dir, "atrium.yaml")
        with open(self.config, "w") as f:
            f.write(
                f"db: {self.dir}/atrium.sqlite\n"
                f"cookie_secret_file: {self.dir}/cookie_secret\n"
                "backend: simulated\n"
                "simulated:\n  start_delay_min: 300ms\n  start_delay_max: 800ms\n"
                "auth:\n  bcrypt_cost: 4\n"
                "log_level: warning\n" + extra_config)
        self.admin_password = admin_password
        self.atrium(["user", "add", "admin", "--admin", "--password-stdin"], stdin=admin_password + "\n")
        self.process = subprocess.Popen(
            [BINARY, "serve", "--port", "0", "--config", self.config],
            cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output = []
        deadline = time.time() + 60
        port = None
        while time.time() < deadline and port is None:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
        if port is None:
            self.stop()
            raise RuntimeError("atrium serve did not start:\n" + "".join(self.output))
        self.url = f"http://127.0.0.1:{port}"
        # Keep draining the hub's output so it never blocks on a full pipe.
        threading.Thread(target=lambda: [self.output.append(l) for l in self.process.stdout], daemon=True).start()

    def atrium(self, args, stdin=None):
        result = subprocess.run([BINARY] + args + ["--config", self.config], cwd=self.dir, input=stdin,
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"atrium {' '.join(args)} failed: {result.stderr}")
        return result.stdout.strip()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def browser(width=1400, height=1000):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    options.binary_location = binary
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
