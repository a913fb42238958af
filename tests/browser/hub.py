"""Start the real `atrium` binary (simulated or local backend) and a headless Chromium for browser tests."""
import os
import random
import re
import string
import shutil
import signal
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
    """`atrium serve --port 0` in a temporary folder, with an admin `admin`.

    `backend="simulated"` (the default) runs no processes. `backend="local"` runs real programs
    with the local backend; `local` adds keys of the `local:` section (e.g. `{"preset":
    "jupyterlab"}`), `spawn` keys of the `spawn:` section (e.g. `{"ready_timeout": "120s"}`);
    workspaces, logs and sockets live in the temporary folder. `env` is the environment of the
    hub and of the `atrium` commands (the local backend's programs inherit its PATH). `setup`
    is called with the hub before `atrium serve` starts (to add users or tokens to the database).
    `db` is the database (a `postgres://` URL); the default is a new SQLite file in the folder.
    `simulated` adds keys of the `simulated:` section (e.g. `{"start_delay_max": "3s"}`).
    """

    def __init__(self, admin_password="Admin-Pass-4821", extra_config="", backend="simulated", local=None, spawn=None,
                 env=None, log_level="warning", setup=None, db=None, simulated=None):
        self.dir = tempfile.mkdtemp(prefix="atrium-browser-")
        self.config = os.path.join(self.dir, "atrium.yaml")
        self.backend = backend
        # As root the local backend runs each workspace as the student's own Unix account
        # (local.isolation: system_users): they pass through this folder to their homes, and
        # this hub's accounts get a prefix of their own, removed again by stop().
        os.chmod(self.dir, 0o711)
        self.account_prefix = "b" + "".join(random.choice(string.ascii_lowercase) for _ in range(6)) + "-"
        env = dict(env if env is not None else os.environ)
        env["ATRIUM_LOCAL__SYSTEM_USER_PREFIX"] = self.account_prefix
        self.env = env
        self.process = None
        self.output = []
        if backend == "simulated":
            simulated_keys = {"start_delay_min": "300ms", "start_delay_max": "800ms"}
            simulated_keys.update(simulated or {})
            backend_config = "backend: simulated\nsimulated:\n" + "".join(f"  {k}: {v}\n" for k, v in simulated_keys.items())
        elif backend == "local":
            local_keys = {"workspaces_root": f"{self.dir}/workspaces", "log_dir": f"{self.dir}/logs",
                          "socket_dir": f"{self.dir}/sockets", "stop_grace_period": "5s"}
            local_keys.update(local or {})
            backend_config = "backend: local\nlocal:\n" + "".join(f"  {k}: {v}\n" for k, v in local_keys.items())
        else:
            raise ValueError(f"unknown backend {backend}")
        spawn_keys = {"stop_servers_on_shutdown": "true"} if backend == "local" else {}
        spawn_keys.update(spawn or {})
        spawn_config = ("spawn:\n" + "".join(f"  {k}: {v}\n" for k, v in spawn_keys.items())) if spawn_keys else ""
        with open(self.config, "w") as f:
            f.write(
                f"db: {db or self.dir + '/atrium.sqlite'}\n"
                f"cookie_secret_file: {self.dir}/cookie_secret\n"
                + backend_config + spawn_config +
                "auth:\n  bcrypt_cost: 4\n"
                f"log_level: {log_level}\n" + extra_config)
        self.admin_password = admin_password
        try:
            self.atrium(["migrate"])  # `atrium user add` needs an existing database
            self.atrium(["user", "add", "admin", "--admin", "--password-stdin"], stdin=admin_password + "\n")
            if setup:
                setup(self)
        except BaseException:
            self.stop()
            raise
        self.process = subprocess.Popen(
            [BINARY, "serve", "--port", "0", "--config", self.config],
            cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
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

    def log_file(self, user, server=""):
        """The local backend's output file of a server (it may not exist yet)."""
        return os.path.join(self.dir, "logs", f"{user}@{server}.log" if server else f"{user}.log")

    def atrium(self, args, stdin=None):
        result = subprocess.run([BINARY] + args + ["--config", self.config], cwd=self.dir, input=stdin,
                                capture_output=True, text=True, timeout=120, env=self.env)
        if result.returncode != 0:
            raise RuntimeError(f"atrium {' '.join(args)} failed: {result.stderr}")
        return result.stdout.strip()

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.backend == "local":
            self._kill_leftover_workspaces()
            self.remove_system_accounts()
        shutil.rmtree(self.dir, ignore_errors=True)

    def system_accounts(self):
        """The Unix accounts this hub made: [(name, uid, home)]."""
        import pwd
        return [(p.pw_name, p.pw_uid, p.pw_dir) for p in pwd.getpwall()
                if p.pw_name.startswith(self.account_prefix) and p.pw_gecos.startswith("Atrium user ")]

    def remove_system_accounts(self):
        for name, uid, _ in self.system_accounts():
            subprocess.run(["pkill", "-KILL", "-u", str(uid)], capture_output=True)
            for _ in range(50):  # another hub's useradd may hold the lock on /etc/passwd
                if subprocess.run(["userdel", "--remove", name], capture_output=True).returncode in (0, 6, 12):
                    break
                time.sleep(0.1)

    def _kill_leftover_workspaces(self):
        """Programs the local backend started run in their own session and outlive a killed hub:
        end those whose working directory is inside this hub's workspaces (by process id)."""
        root = os.path.join(self.dir, "workspaces") + os.sep
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if (cwd + os.sep).startswith(root):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass


def browser(width=1400, height=1000, logs=False):
    """A headless Chromium; with `logs`, its console (`get_log("browser")`) and network events
    (`get_log("performance")`) can be read."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    if logs:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    options.binary_location = binary
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def login(driver, url, name, password, timeout=20):
    """Logs in through the form with a fresh session and waits for the answer: the next page,
    or the login page again with its error. Returns whether the login succeeded."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    driver.delete_all_cookies()
    driver.get(url + "/hub/login")
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    button = driver.find_element(By.ID, "login_submit")
    button.click()
    # Chromium reports a node the page has just replaced either as a stale element or as an
    # inspector error: retry on both.
    WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException, WebDriverException)).until(
        EC.staleness_of(button), "the login answer")
    return "/hub/login" not in driver.current_url


def click_fresh(driver, selector, timeout=20):
    """Clicks the element the selector finds now; a page that re-renders (the admin panel polls)
    may replace it between finding and clicking, so a stale element is looked up again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def click(d):
        try:
            d.find_element(By.CSS_SELECTOR, selector).click()
            return True
        except StaleElementReferenceException:
            return False
    WebDriverWait(driver, timeout, poll_frequency=0.2).until(click, f"a click on {selector}")
