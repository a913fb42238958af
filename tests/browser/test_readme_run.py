"""The README's run command, exactly as written, in this checkout (CI runs it in its fresh clone):
it must end with a hub whose default workspace, the real JupyterLab, loads in a browser.

Reads the command from README.md ("The two commands"), runs it in the repository's root, reads
the admin's password from the first start's output, logs in in headless Chromium, presses Start
and waits for JupyterLab's launcher. The state the command creates (atrium.sqlite, the cookie
secret, workspaces/, logs/) is removed afterwards; if any of it exists before, the test does not
run (it would not be a first start), and under CI=true that is a failure.

Run: python3 tests/browser/test_readme_run.py
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hub as hubkit  # noqa: E402

hubkit.require_browser()

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = hubkit.ROOT
STATE = ["atrium.sqlite", "atrium.sqlite-wal", "atrium.sqlite-shm", "atrium_cookie_secret", "workspaces", "logs", "accounts.json"]


def skip_or_fail(reason):
    if os.environ.get("CI") == "true":
        print(f"README run command: {reason}", file=sys.stderr)
        sys.exit(1)
    print(f"README run command test skipped: {reason}", file=sys.stderr)
    sys.exit(0)


def readme_command():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text.split("## The two commands", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    for line in block.splitlines():
        if "atrium serve" in line:
            return line.split("#", 1)[0].strip()
    raise AssertionError("README.md's two commands have no `atrium serve` line")


def wait(driver, condition, timeout, message):
    return WebDriverWait(driver, timeout, poll_frequency=0.5,
                         ignored_exceptions=(StaleElementReferenceException, WebDriverException)).until(condition, message)


def main():
    if not shutil.which("jupyter-lab"):
        skip_or_fail("jupyter-lab is not installed (scripts/install-test-deps.sh), and installing it here is not this test's job")
    present = [name for name in STATE if os.path.exists(os.path.join(ROOT, name))]
    if present:
        skip_or_fail(f"the checkout already holds hub state ({', '.join(present)}): this would not be a first start")
    command = readme_command()
    print(f"README run command: {command}")
    os.makedirs(hubkit.ARTIFACTS, exist_ok=True)
    process = subprocess.Popen(command, shell=True, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    output = []
    driver = None
    try:
        password = url = None
        deadline = time.time() + 1800  # `swift run` may have to build first
        while time.time() < deadline and (url is None or password is None):
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if m := re.search(r'created the admin user "admin" with password (\S+)', line):
                password = m.group(1)
            if m := re.search(r"listening on (http://\S+)", line):
                url = m.group(1)
        threading.Thread(target=lambda: [output.append(l) for l in process.stdout], daemon=True).start()
        assert url, "the hub did not start:\n" + "".join(output[-40:])
        assert password, "the first start printed no admin password:\n" + "".join(output[-40:])

        driver = hubkit.browser()
        driver.get(url + "/hub/login")
        driver.find_element(By.ID, "username").send_keys("admin")
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.ID, "login_submit").click()
        wait(driver, lambda d: "/hub/home" in d.current_url, 20, "the home page after logging in")
        driver.find_element(By.CSS_SELECTOR, '#server-default form[action="/hub/spawn"] button').click()

        def lab(d):
            if "/user/admin/" not in d.current_url:
                links = d.find_elements(By.CSS_SELECTOR, "#server-default a.button")
                if links:
                    links[0].click()
                failure = d.find_elements(By.CSS_SELECTOR, "#server-default small.error")
                if failure:
                    raise AssertionError("the workspace failed to start: " + failure[0].text)
                return False
            return bool([e for e in d.find_elements(By.CSS_SELECTOR, ".jp-Launcher") if e.is_displayed()])
        wait(driver, lab, 240, "JupyterLab's launcher at /user/admin/lab")
        driver.save_screenshot(os.path.join(hubkit.ARTIFACTS, "readme-run-jupyterlab.png"))
        print("README run command: JupyterLab's launcher loaded for the first admin")
    except BaseException:
        print("hub output:\n" + "".join(output[-60:]), file=sys.stderr)
        if driver is not None:
            driver.save_screenshot(os.path.join(hubkit.ARTIFACTS, "readme-run-failure.png"))
            print("page: " + driver.current_url + "\n" + driver.find_element(By.TAG_NAME, "body").text[:1500], file=sys.stderr)
        raise
    finally:
        if driver is not None:
            driver.quit()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        # As root the workspace ran as its user's own account (local.isolation: system_users):
        # the accounts this run made, with their processes and homes, go (accounts.json names them).
        mapping = os.path.join(ROOT, "accounts.json")
        if os.path.exists(mapping):
            import json
            import pwd
            for binding in json.load(open(mapping)).values():
                try:
                    account = pwd.getpwnam(binding["account"])
                except KeyError:
                    continue
                subprocess.run(["pkill", "-KILL", "-u", str(account.pw_uid)], capture_output=True)
                for _ in range(50):  # userdel refuses while the account's processes are still ending
                    if subprocess.run(["userdel", "--remove", account.pw_name], capture_output=True).returncode in (0, 6, 12):
                        break
                    time.sleep(0.1)
                shutil.rmtree(account.pw_dir, ignore_errors=True)
        # The default keeps workspaces running across hub restarts: end this run's.
        workspaces = os.path.join(ROOT, "workspaces") + os.sep
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                if (os.readlink(f"/proc/{pid}/cwd") + os.sep).startswith(workspaces):
                    os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        for name in STATE:
            path = os.path.join(ROOT, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.remove(path)


if __name__ == "__main__":
    main()
