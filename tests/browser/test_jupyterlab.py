"""The real JupyterLab front end through the hub, in a real headless Chromium, against the real
`atrium` binary with the local backend and its default `jupyterlab` preset:

a student logs in, presses Start on the home page and lands in JupyterLab at /user/<name>/lab
(every API call and the kernel's WebSocket go through the hub's authenticating proxy); they
create a Python 3 notebook from the launcher, run `print(6 * 7)` and see 42; the admin then
opens the student's JupyterLab from the admin panel ("Access") and sees the same workspace.
Screenshots go to test-artifacts/jupyterlab-*.png. On failure the browsers' console errors and
failed requests, the hub's output and the workspace's log are printed.

Run: python3 tests/browser/test_jupyterlab.py  (needs .build/debug/atrium, chromium,
chromedriver, selenium, and jupyterlab + ipykernel; skipped without them unless CI=true).
"""
import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hub as hubkit  # noqa: E402

hubkit.require_browser()


def find_jupyter_lab():
    """The directory holding `jupyter-lab`: next to this Python first (a pyenv shim on PATH
    needs pyenv), then on PATH. None when JupyterLab is not installed."""
    here = os.path.join(os.path.dirname(os.path.realpath(sys.executable)), "jupyter-lab")
    if os.access(here, os.X_OK):
        return os.path.dirname(here)
    found = shutil.which("jupyter-lab")
    return os.path.dirname(found) if found else None


JUPYTER_DIR = find_jupyter_lab()
if JUPYTER_DIR is None:
    if os.environ.get("CI") == "true":
        print("JupyterLab browser test: jupyter-lab is required under CI (pip install jupyterlab ipykernel)", file=sys.stderr)
        sys.exit(1)
    print("JupyterLab browser test skipped: jupyter-lab is not installed (pip install jupyterlab ipykernel)", file=sys.stderr)
    sys.exit(0)

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

STUDENT, STUDENT_PASSWORD = "student1", "Student-Pass-9317"
LAB = f"/user/{STUDENT}/lab"
START_TIMEOUT = 180  # a loaded CI machine starts jupyter-lab slowly
UI_TIMEOUT = 180  # JupyterLab's first load: many scripts, then its API calls


def wait(driver, condition, timeout=20, message=""):
    return WebDriverWait(driver, timeout, poll_frequency=0.5,
                         ignored_exceptions=(StaleElementReferenceException, WebDriverException)).until(condition, message)


def login(driver, url, name, password):
    ok = hubkit.login(driver, url, name, password)
    assert ok, f"{name} could not log in: " + driver.find_element(By.TAG_NAME, "body").text[:300]


def visible(driver, selector):
    return [e for e in driver.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()]


class BrowserLog:
    """Collects a Chromium's console messages and its failed requests (status >= 400, or no
    answer) from the performance log as the test goes, so the last ones can be printed."""

    def __init__(self, name, driver):
        self.name, self.driver = name, driver
        self.console, self.failed, self.statuses, self.requests = [], [], {}, []
        self.urls = {}

    def collect(self):
        try:
            for entry in self.driver.get_log("browser"):
                self.console.append(f"{entry.get('level')} {entry.get('message')}")
        except Exception:
            pass
        try:
            entries = self.driver.get_log("performance")
        except Exception:
            return
        for entry in entries:
            try:
                message = json.loads(entry["message"])["message"]
            except (KeyError, ValueError):
                continue
            method, params = message.get("method"), message.get("params", {})
            if method == "Network.requestWillBeSent":
                request = params.get("request", {})
                self.urls[params.get("requestId")] = f"{request.get('method')} {request.get('url')}"
            elif method == "Network.responseReceived":
                response = params.get("response", {})
                status = response.get("status", 0)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                self.requests.append(f"{status} {self.urls.get(params.get('requestId'), response.get('url'))}")
                if status >= 400:
                    what = self.urls.get(params.get("requestId"), response.get("url"))
                    self.failed.append(f"{status} {what}")
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                what = self.urls.get(params.get("requestId"), "?")
                self.failed.append(f"failed ({params.get('errorText')}) {what}")
            elif method == "Network.webSocketCreated":
                self.urls[params.get("requestId")] = f"WebSocket {params.get('url')}"
            elif method == "Network.webSocketHandshakeResponseReceived":
                status = params.get("response", {}).get("status", 0)
                if status != 101:
                    self.failed.append(f"{status} {self.urls.get(params.get('requestId'), 'WebSocket ?')}")

    def report(self, out=sys.stderr, limit=40):
        self.collect()
        print(f"--- {self.name}: HTTP statuses seen {dict(sorted(self.statuses.items()))}", file=out)
        print(f"--- {self.name}: failed requests ({len(self.failed)}, last {limit}):", file=out)
        for line in self.failed[-limit:]:
            print("    " + line[:400], file=out)
        print(f"--- {self.name}: last {limit // 2} answered requests:", file=out)
        for line in self.requests[-(limit // 2):]:
            print("    " + line[:400], file=out)
        print(f"--- {self.name}: console ({len(self.console)}, last {limit}):", file=out)
        for line in self.console[-limit:]:
            print("    " + line[:400], file=out)


def main():
    os.makedirs(hubkit.ARTIFACTS, exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = JUPYTER_DIR + os.pathsep + env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    tokens = {}

    def setup(h):
        h.atrium(["user", "add", STUDENT, "--password-stdin"], stdin=STUDENT_PASSWORD + "\n")
        tokens["admin"] = h.atrium(["token", "create", "admin", "--admin", "--note", "jupyterlab browser test"])

    began = time.time()
    hub = hubkit.Hub(backend="local", local={"preset": "jupyterlab"}, env=env, log_level="info", setup=setup,
                     spawn={"start_timeout": "3m", "ready_timeout": "150s"})
    drivers, logs = {}, []
    steps = []

    def step(name):
        steps.append(name)
        print(f"  {len(steps):2}. {name} ({time.time() - began:.0f} s)", flush=True)

    def api(method, path, body=None):
        request = urllib.request.Request(hub.url + "/hub/api" + path, method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": "token " + tokens["admin"], "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
                return response.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def server_model():
        status, user = api("GET", f"/users/{STUDENT}?include_stopped_servers=1")
        assert status == 200, f"GET /hub/api/users/{STUDENT}: {status} {user}"
        return (user.get("servers") or {}).get("")

    def open_browser(name, **kwargs):
        driver = hubkit.browser(logs=True, **kwargs)
        drivers[name] = driver
        log = BrowserLog(name, driver)
        logs.append(log)
        return driver, log

    def lab_ready(driver, log):
        """JupyterLab has rendered its shell with the launcher or a notebook (not a blank page)."""
        log.collect()
        if f"/user/{STUDENT}/lab" not in driver.current_url:  # /lab, or /lab/tree/<file> once a document is open
            return False
        return bool(visible(driver, ".jp-Launcher") or visible(driver, ".jp-NotebookPanel"))

    try:
        url = hub.url
        student, student_log = open_browser("student")

        step("the student logs in and presses Start on the home page")
        login(student, url, STUDENT, STUDENT_PASSWORD)
        wait(student, lambda d: "/hub/home" in d.current_url, 10, "the home page")
        student.find_element(By.CSS_SELECTOR, '#server-default form[action="/hub/spawn"] button').click()

        step("jupyter-lab starts (the hub reports the server ready)")

        def started(_):
            server = server_model()
            phase = server and server.get("atrium_phase")
            if phase == "failed":
                raise AssertionError("the server failed to start: " + json.dumps(server))
            return server if server and server.get("ready") else None
        server = wait(student, started, START_TIMEOUT, f"{STUDENT}'s server ready within {START_TIMEOUT} s")
        assert server["url"] == f"/user/{STUDENT}/", server

        step("the browser lands in JupyterLab at /user/<name>/lab and the launcher renders")
        # A quick start redirects straight into the workspace; a slow one shows progress on the
        # home page, which reloads to an Open link. Either way, follow the hub's own links.
        wait(student, lambda d: f"/user/{STUDENT}/" in d.current_url or d.find_elements(By.CSS_SELECTOR, "#server-default a.button"),
             30, "the workspace or its Open link")
        if f"/user/{STUDENT}/" not in student.current_url:
            href = wait(student, lambda d: d.find_element(By.CSS_SELECTOR, "#server-default a.button").get_attribute("href"), 10, "the Open link")
            assert href.endswith(f"/user/{STUDENT}/"), href
            student.get(href)
        wait(student, lambda d: lab_ready(d, student_log) and visible(d, ".jp-Launcher"), UI_TIMEOUT,
             f"JupyterLab's launcher at {LAB} within {UI_TIMEOUT} s")
        wait(student, lambda d: visible(d, '.jp-LauncherCard[data-category="Notebook"]'), 60, "the launcher's notebook card")
        student.save_screenshot(os.path.join(hubkit.ARTIFACTS, "jupyterlab-launcher.png"))

        step("the student creates a Python 3 notebook from the launcher; the kernel becomes idle")
        card = visible(student, '.jp-LauncherCard[data-category="Notebook"]')[0]
        assert "Python 3" in (card.get_attribute("title") or card.text), card.get_attribute("title")
        card.click()
        wait(student, lambda d: visible(d, ".jp-NotebookPanel .jp-Cell .cm-content"), 60, "the new notebook's first cell")

        def kernel_idle(d):
            # The status bar's kernel item follows the session ("Python 3 (ipykernel) | Idle" once
            # the kernel is connected and idle); the toolbar's indicator says idle before that.
            student_log.collect()
            items = visible(d, '#jp-main-statusbar .jp-StatusBar-TextItem[title^="Change kernel"]')
            indicators = visible(d, ".jp-NotebookPanel .jp-Notebook-ExecutionIndicator")
            return (items and items[0].text.endswith("| Idle")
                    and indicators and indicators[0].get_attribute("data-status") == "idle")
        wait(student, kernel_idle, 120, "the notebook's kernel connected and idle (status bar '… | Idle')")

        step("the student runs print(6 * 7) and sees 42")
        editor = visible(student, ".jp-NotebookPanel .jp-Cell .cm-content")[0]
        editor.click()
        editor.send_keys("print(6 * 7)")
        wait(student, lambda d: visible(d, ".jp-NotebookPanel .jp-Cell .cm-content")[0].text == "print(6 * 7)", 10,
             "the code in the cell")
        ActionChains(student).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()

        def output(d):
            student_log.collect()
            return any(e.text.strip() == "42" for e in visible(d, ".jp-NotebookPanel .jp-OutputArea-output"))
        wait(student, output, 120, "the output 42 (the kernel's WebSocket works through the proxy)")
        student.save_screenshot(os.path.join(hubkit.ARTIFACTS, "jupyterlab-notebook.png"))

        step("the student saves the notebook; it is a file in the workspace's code folder")
        _, model = api("GET", f"/users/{STUDENT}")
        state = model["servers"][""]["state"]
        code = os.path.join(state["workspace"], "code")
        visible(student, ".jp-NotebookPanel .jp-Cell .cm-content")[-1].click()
        ActionChains(student).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()

        def saved(d):
            student_log.collect()
            # JupyterLab asks whether to rename an Untitled notebook on its first save: keep the name.
            for button in visible(d, ".jp-Dialog .jp-Dialog-button.jp-mod-accept"):
                button.click()
            for name in (n for n in os.listdir(code) if n.endswith(".ipynb")):
                with open(os.path.join(code, name), errors="replace") as f:
                    if "print(6 * 7)" in f.read():
                        return name
            return None
        notebook = wait(student, saved, 30, f"a notebook holding the code in {code}")
        if os.geteuid() == 0:
            # As root the hub runs the workspace as the student's own account (system_users):
            # what the student saves is theirs, not root's, and nobody else may read it.
            account = state.get("account") or {}
            info = os.stat(os.path.join(code, notebook))
            assert account.get("uid") not in (None, 0), f"the workspace runs as the student's account, not root: {account}"
            assert info.st_uid == account.get("uid"), f"the notebook belongs to {info.st_uid}, not the student's account {account}"
            assert info.st_mode & 0o077 == 0, f"the notebook is readable by others: mode {oct(info.st_mode)}"

        step("the admin logs in (fresh session) and opens the student's JupyterLab from the panel")
        admin, admin_log = open_browser("admin")
        login(admin, url, "admin", hub.admin_password)
        admin.get(url + "/hub/admin")
        wait(admin, lambda d: d.find_element(By.ID, "admin").get_attribute("data-loaded") == "true", 20, "the admin panel")
        access = f'tr[data-user="{STUDENT}"] [data-action="access"]'
        wait(admin, lambda d: d.find_elements(By.CSS_SELECTOR, access), 20, "the student's Access button")
        before = set(admin.window_handles)
        panel = admin.current_window_handle

        hubkit.click_fresh(admin, access)
        wait(admin, lambda d: len(d.window_handles) > len(before) or f"/user/{STUDENT}/" in d.current_url, 20, "a tab with the workspace")
        new = [h for h in admin.window_handles if h not in before]
        if new:
            admin.switch_to.window(new[0])
        wait(admin, lambda d: lab_ready(d, admin_log), UI_TIMEOUT, f"the student's JupyterLab in the admin's browser within {UI_TIMEOUT} s")
        wait(admin, lambda d: any(e.text == notebook for e in visible(d, ".jp-DirListing-itemText")), 60,
             f"the student's {notebook} in the file browser")
        if not visible(admin, ".jp-NotebookPanel .jp-Cell"):  # JupyterLab restores the open tab; open it if it did not
            item = [e for e in visible(admin, ".jp-DirListing-itemText") if e.text == notebook][0]
            ActionChains(admin).double_click(item).perform()

        def same_notebook(d):
            admin_log.collect()
            cells = [e.text for e in visible(d, ".jp-NotebookPanel .jp-Cell .cm-content")]
            outputs = [e.text.strip() for e in visible(d, ".jp-NotebookPanel .jp-OutputArea-output")]
            return "print(6 * 7)" in cells and "42" in outputs
        wait(admin, same_notebook, 60, f"the student's {notebook} with its code and output 42 in the admin's browser")
        admin.save_screenshot(os.path.join(hubkit.ARTIFACTS, "jupyterlab-admin-access.png"))
        if new:
            admin.switch_to.window(panel)

        if os.geteuid() == 0:
            step("the admin's logs view shows the workspace's memory and CPU use, read from its cgroup")
            logs_button = f'tr[data-user="{STUDENT}"] [data-action="logs"]'
            admin.get(url + "/hub/admin")
            wait(admin, lambda d: d.find_element(By.ID, "admin").get_attribute("data-loaded") == "true", 20, "the admin panel")
            wait(admin, lambda d: d.find_elements(By.CSS_SELECTOR, logs_button), 20, "the student's Logs button")
            hubkit.click_fresh(admin, logs_button)
            usage = wait(admin, lambda d: re.search(r"Memory ([\d.]+) MiB · CPU time ([\d.]+) s", d.find_element(By.ID, "logs-usage").text),
                         20, "memory and CPU use in the logs view")
            # A running JupyterLab with a kernel holds tens of MiB and has used some CPU.
            assert float(usage.group(1)) > 10 and float(usage.group(2)) > 0, usage.group(0)
            admin.save_screenshot(os.path.join(hubkit.ARTIFACTS, "jupyterlab-admin-usage.png"))
            admin.find_element(By.CSS_SELECTOR, "#dlg-logs .close").click()

        step("no request to the workspace was refused or failed while it ran")
        for log in logs:
            log.collect()
            refused = [f for f in log.failed if f"/user/{STUDENT}/" in f and not f.startswith("404")]
            assert not refused, f"{log.name}'s browser: requests to the workspace refused or failed: {refused[:10]}"

        step("the student's server stops through the API")
        status, body = api("DELETE", f"/users/{STUDENT}/server")
        assert status in (202, 204), f"stop: {status} {body}"
        wait(admin, lambda d: (server_model() or {}).get("atrium_phase") == "stopped", 60, "the server stopped")

        print(f"JupyterLab browser test: {len(steps)} steps passed in {time.time() - began:.0f} s; "
              f"screenshots in {hubkit.ARTIFACTS}")
        return 0
    except BaseException as error:
        for name, d in drivers.items():
            try:
                d.save_screenshot(os.path.join(hubkit.ARTIFACTS, f"failure-jupyterlab-{name}.png"))
                print(f"--- {name}: at {d.current_url}, page text: {d.find_element(By.TAG_NAME, 'body').text[:500]!r}", file=sys.stderr)
            except Exception:
                pass
        print(f"JupyterLab browser test FAILED at step {len(steps)}: {steps[-1] if steps else '-'} "
              f"(after {time.time() - began:.0f} s): {type(error).__name__}: {error}", file=sys.stderr)
        for log in logs:
            log.report()
        try:
            print("--- server model: " + json.dumps(server_model()), file=sys.stderr)
        except BaseException:
            pass
        print("--- hub output (last 60 lines):\n" + "".join(hub.output[-60:]), file=sys.stderr)
        try:
            with open(hub.log_file(STUDENT), errors="replace") as f:
                print("--- workspace log (last 60 lines):\n" + "".join(f.readlines()[-60:]), file=sys.stderr)
        except OSError as e:
            print(f"--- workspace log: {e}", file=sys.stderr)
        raise
    finally:
        for d in drivers.values():
            try:
                d.quit()
            except Exception:
                pass
        hub.stop()


if __name__ == "__main__":
    sys.exit(main())
