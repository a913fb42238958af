"""The admin panel and the user pages in a real headless Chromium, against the real `atrium`
binary with the simulated backend:

signup → the admin approves in the panel → the user logs in, starts a workspace, opens it; the
admin opens it too ("access"), resets the user's password, revokes the user (who then cannot log
in), bulk-adds 100 users from a CSV roster, deletes a user; the user creates and revokes a token
on a phone-sized screen. Screenshots of the admin panel and the home page go to test-artifacts/.

Run: python3 tests/browser/test_admin.py  (needs .build/debug/atrium, chromium, chromedriver,
selenium; skipped without them unless CI=true).
"""
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hub as hubkit  # noqa: E402

hubkit.require_browser()

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

STUDENT, STUDENT_PASSWORD = "student1", "Student-Pass-9317"


def wait(driver, condition, timeout=20, message=""):
    # Chromium reports a node the page has just replaced either as a stale element or as an
    # inspector error ("Node with given id does not belong to the document"): retry on both.
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException, WebDriverException)).until(condition, message)


def login(driver, url, name, password):
    hubkit.login(driver, url, name, password)


click_fresh = hubkit.click_fresh


def row_button(driver, user, action):
    """Clicks the row's button (the table is re-rendered by polling)."""
    hubkit.click_fresh(driver, f'tr[data-user="{user}"] [data-action="{action}"]')


def accept_confirm(driver):
    wait(driver, EC.alert_is_present(), 5, "a confirmation")
    driver.switch_to.alert.accept()


def badge(driver, user, column):
    """Text of the row's status (column 3) or account (column 4) badge, or None without a row."""
    try:
        return driver.find_element(By.CSS_SELECTOR, f'tr[data-user="{user}"] td:nth-child({column}) .badge').text
    except Exception:
        return None


def search(driver, text, filter_value=""):
    box = driver.find_element(By.ID, "search")
    box.clear()
    box.send_keys(text)
    Select(driver.find_element(By.ID, "filter")).select_by_value(filter_value)
    time.sleep(0.4)  # the search box's debounce; the waits below check the result itself


def main():
    os.makedirs(hubkit.ARTIFACTS, exist_ok=True)
    hub = hubkit.Hub()
    admin = hubkit.browser()
    student = hubkit.browser(width=390, height=844)  # a phone-sized screen
    steps = []

    def step(name):
        steps.append(name)
        print(f"  {len(steps):2}. {name}", flush=True)

    try:
        url = hub.url
        step("a student signs up and must wait for approval")
        student.get(url + "/hub/signup")
        student.find_element(By.ID, "username").send_keys(STUDENT)
        student.find_element(By.ID, "password").send_keys(STUDENT_PASSWORD)
        student.find_element(By.ID, "password_confirm").send_keys(STUDENT_PASSWORD)
        student.find_element(By.ID, "signup_submit").click()
        notice = wait(student, lambda d: d.find_element(By.CSS_SELECTOR, ".notice, .error"), 20, "the signup's answer")
        assert "administrator must approve" in notice.text, notice.text
        login(student, url, STUDENT, STUDENT_PASSWORD)
        assert student.find_elements(By.CSS_SELECTOR, ".error"), "a pending user cannot log in"

        step("a non-admin gets a 403 page at /hub/admin; an anonymous browser the login page")
        student.get(url + "/hub/admin")
        assert "/hub/login" in student.current_url

        step("the admin logs in and approves the signup in the panel")
        login(admin, url, "admin", hub.admin_password)
        admin.get(url + "/hub/admin")
        wait(admin, lambda d: d.find_element(By.ID, "admin").get_attribute("data-loaded") == "true")
        Select(admin.find_element(By.ID, "filter")).select_by_value("pending")
        wait(admin, lambda d: badge(d, STUDENT, 4) == "pending", message="the pending signup is listed")
        row_button(admin, STUDENT, "approve")
        wait(admin, lambda d: badge(d, STUDENT, 4) in (None, "approved"))
        Select(admin.find_element(By.ID, "filter")).select_by_value("")
        wait(admin, lambda d: badge(d, STUDENT, 4) == "approved", message="approved")

        step("the student logs in, starts the workspace (live progress) and opens it")
        login(student, url, STUDENT, STUDENT_PASSWORD)
        wait(student, lambda d: "/hub/home" in d.current_url)
        student.find_element(By.CSS_SELECTOR, '#server-default form[action="/hub/spawn"] button').click()
        # A quick start redirects straight into the workspace; a slow one shows progress, then Open.
        wait(student, lambda d: f"/user/{STUDENT}/" in d.current_url or d.find_elements(By.CSS_SELECTOR, "#server-default a.button"),
             30, "the workspace or its Open link")
        if f"/user/{STUDENT}/" not in student.current_url:
            # The page may still redraw the row (progress, then a redirect): read the link's
            # target again until it holds still, then follow it.
            href = wait(student, lambda d: d.find_element(By.CSS_SELECTOR, "#server-default a.button").get_attribute("href"), 10, "the Open link")
            assert f"/user/{STUDENT}/" in href, href
            student.get(href)
        wait(student, lambda d: f"simulated workspace for {STUDENT}" in d.find_element(By.TAG_NAME, "body").text)
        student.get(url + "/hub/home")
        wait(student, lambda d: d.find_element(By.CSS_SELECTOR, "#server-default a.button"), 10, "Open on the home page")
        student.save_screenshot(os.path.join(hubkit.ARTIFACTS, "home-phone.png"))

        step("the panel shows the workspace running without a reload; the admin opens it (access)")
        wait(admin, lambda d: badge(d, STUDENT, 3) == "running", 15, "live status")
        admin.save_screenshot(os.path.join(hubkit.ARTIFACTS, "admin-panel.png"))
        href = admin.find_element(By.CSS_SELECTOR, f'tr[data-user="{STUDENT}"] [data-action="access"]').get_attribute("href")
        admin.get(href)
        assert f"simulated workspace for {STUDENT}" in admin.find_element(By.TAG_NAME, "body").text
        admin.get(url + "/hub/admin")
        wait(admin, lambda d: badge(d, STUDENT, 3) == "running")

        step("the admin reads the workspace's logs")
        row_button(admin, STUDENT, "logs")
        wait(admin, lambda d: d.find_element(By.ID, "logs-text").text not in ("", "Loading…"))
        admin.find_element(By.CSS_SELECTOR, "#dlg-logs .close").click()

        step("the admin resets the student's password; the new one works, the old one not")
        row_button(admin, STUDENT, "password")
        accept_confirm(admin)
        new_password = wait(admin, lambda d: d.find_element(By.ID, "new-password").text)
        admin.find_element(By.CSS_SELECTOR, "#dlg-password .close").click()
        login(student, url, STUDENT, STUDENT_PASSWORD)
        assert student.find_elements(By.CSS_SELECTOR, ".error"), "the old password no longer works"
        login(student, url, STUDENT, new_password)
        wait(student, lambda d: "/hub/home" in d.current_url)

        step("the student creates and revokes a personal API token (phone-sized screen)")
        student.get(url + "/hub/token")
        student.find_element(By.ID, "token-note").send_keys("my script")
        Select(student.find_element(By.ID, "token-expiry")).select_by_value("86400")
        student.find_element(By.ID, "token-create").click()
        token = wait(student, lambda d: d.find_element(By.ID, "token-value").text)
        assert len(token) > 20
        wait(student, lambda d: "my script" in d.find_element(By.ID, "token-list").text)
        # The list also holds the token the hub issued for the running workspace: pick our row.
        student.find_element(By.XPATH, "//*[@id='token-list']/tr[td[1]='my script']//button[@data-token]").click()
        accept_confirm(student)
        wait(student, lambda d: "my script" not in d.find_element(By.ID, "token-list").text)

        step("a named server shows under its user in the panel; the admin stops it there")
        student.get(url + "/hub/home")
        student.find_element(By.ID, "new-server").send_keys("lab2")
        student.find_element(By.CSS_SELECTOR, 'form input#new-server ~ button[type="submit"]').click()
        named = f'tr.named-server[data-user="{STUDENT}"][data-server="lab2"]'

        def named_badge(d):
            try:
                return d.find_element(By.CSS_SELECTOR, f"{named} td:nth-child(3) .badge").text
            except Exception:
                return None
        wait(admin, lambda d: named_badge(d) == "running", 30, "the named server running in the panel")
        assert badge(admin, STUDENT, 3) == "running", "the default server's row is unchanged"
        wait(admin, lambda d: d.find_element(By.CSS_SELECTOR, f'{named} [data-action="stop"]').click() or True, message="its Stop button")
        accept_confirm(admin)
        wait(admin, lambda d: named_badge(d) == "stopped", 20, "the named server stopped")
        assert badge(admin, STUDENT, 3) == "running", "stopping the named server left the default one running"

        step("the admin stops the workspace, then revokes the student, who cannot log in")
        row_button(admin, STUDENT, "stop")
        accept_confirm(admin)
        wait(admin, lambda d: badge(d, STUDENT, 3) == "stopped", 20, "stopped")
        row_button(admin, STUDENT, "revoke")
        accept_confirm(admin)
        wait(admin, lambda d: badge(d, STUDENT, 4) == "revoked")
        student.get(url + "/hub/home")
        assert "/hub/login" in student.current_url, "the revoked user's session ended"
        login(student, url, STUDENT, new_password)
        assert student.find_elements(By.CSS_SELECTOR, ".error"), "a revoked user cannot log in"

        step("the admin bulk-adds 100 users from a CSV roster and downloads their passwords")
        roster = os.path.join(hub.dir, "roster.csv")
        with open(roster, "w") as f:
            f.write("username,group,profile,admin\n")
            for i in range(100):
                f.write(f"bulk-{i:03},{'lab-a' if i % 2 else 'lab-b'},,{'true' if i == 0 else ''}\n")
        admin.find_element(By.ID, "add-open").click()
        admin.find_element(By.ID, "add-file").send_keys(roster)
        wait(admin, lambda d: "bulk-099" in d.find_element(By.ID, "add-text").get_property("value"))
        admin.find_element(By.ID, "add-submit").click()
        wait(admin, lambda d: d.find_element(By.ID, "add-result").is_displayed(), 60, "the roster's result")
        rows = admin.find_elements(By.CSS_SELECTOR, "#add-rows tr")
        assert len(rows) == 100, len(rows)
        href = admin.find_element(By.ID, "add-download").get_attribute("href")
        assert href.startswith("data:text/csv"), href[:40]
        csv_text = urllib.parse.unquote(href.split(",", 1)[1])
        lines = csv_text.strip().split("\n")
        assert lines[0] == "username,password,groups,profile,admin" and len(lines) == 101, lines[:3]
        assert lines[1].startswith("bulk-000,") and lines[1].endswith(",true"), lines[1]
        first_password = lines[2].split(",")[1]
        admin.find_element(By.CSS_SELECTOR, "#add-result .close").click()
        search(admin, "bulk-")
        wait(admin, lambda d: d.find_element(By.ID, "range").text.endswith("of 100"), message="100 bulk users")
        with_group = Select(admin.find_element(By.ID, "group-filter"))
        wait(admin, lambda d: any(o.get_attribute("value") == "lab-a" for o in with_group.options))
        with_group.select_by_value("lab-a")
        wait(admin, lambda d: d.find_element(By.ID, "range").text.endswith("of 50"), message="the group filter")
        with_group.select_by_value("")
        login(student, url, "bulk-001", first_password)
        wait(student, lambda d: "/hub/home" in d.current_url, message="a roster password logs in")
        student.get(url + "/hub/admin")
        assert "Only administrators" in student.find_element(By.TAG_NAME, "body").text, "non-admins get a 403 page"

        step("the admin deletes a user after confirming")
        search(admin, "bulk-042")
        wait(admin, lambda d: badge(d, "bulk-042", 4) == "approved")
        row_button(admin, "bulk-042", "delete")
        assert not admin.find_element(By.ID, "delete-files").is_selected(), "files are kept unless asked"
        # The dialog opens with an animation: click once its button can take the click.
        wait(admin, EC.element_to_be_clickable((By.ID, "delete-confirm")), 20, "the delete dialog").click()
        wait(admin, lambda d: "No users match" in d.find_element(By.ID, "users-body").text)
        search(admin, "bulk-")
        wait(admin, lambda d: d.find_element(By.ID, "range").text.endswith("of 99"))

        step("multi-select: approve and delete several users at once, with files")
        for name in ("bulk-010", "bulk-011"):
            search(admin, name)
            wait(admin, lambda d: badge(d, name, 4) == "approved")
            click_fresh(admin, f'tr[data-user="{name}"] input.pick')
        assert admin.find_element(By.ID, "selected-count").text == "2 selected"
        admin.find_element(By.CSS_SELECTOR, '[data-bulk="delete"]').click()
        accept_confirm(admin)
        search(admin, "bulk-01")
        wait(admin, lambda d: d.find_element(By.ID, "range").text.endswith("of 8"), message="two fewer")

        step("groups: create, rename, delete")
        admin.find_element(By.ID, "group-name").send_keys("tutors")
        admin.find_element(By.CSS_SELECTOR, "#group-create button").click()
        wait(admin, lambda d: d.find_elements(By.ID, "group-tutors"))
        admin.find_element(By.CSS_SELECTOR, '#group-tutors [data-gaction="delete"]').click()
        accept_confirm(admin)
        wait(admin, lambda d: not d.find_elements(By.ID, "group-tutors"))

        search(admin, "")
        admin.save_screenshot(os.path.join(hubkit.ARTIFACTS, "admin-panel-after.png"))
        student.get(url + "/hub/home")
        student.save_screenshot(os.path.join(hubkit.ARTIFACTS, "home-page.png"))
        print(f"browser tests: {len(steps)} steps passed; screenshots in {hubkit.ARTIFACTS}")
        return 0
    except Exception:
        for name, d in (("admin", admin), ("student", student)):
            try:
                d.save_screenshot(os.path.join(hubkit.ARTIFACTS, f"failure-{name}.png"))
            except Exception:
                pass
        print(f"browser tests FAILED at step {len(steps)}: {steps[-1] if steps else '-'}", file=sys.stderr)
        print("hub output (last lines):\n" + "".join(hub.output[-30:]), file=sys.stderr)
        raise
    finally:
        admin.quit()
        student.quit()
        hub.stop()


if __name__ == "__main__":
    sys.exit(main())
