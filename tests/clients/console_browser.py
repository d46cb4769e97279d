"""Drives the gateway's console in headless Chromium (Debian's chromium + chromium-driver,
Selenium from PyPI), as tests/suites/console.rs sets it up.

Usage: console_browser.py SPEC.json   (SPEC: base, tokens, expectations; see console.rs)

Prints `STEP <name> PASS|FAIL <detail>` per step and figures as `FIGURE <name> <value>`; exits
non-zero on the first failure. Every page is checked with axe-core (no serious or critical
violation) and screenshotted; the browser's log must show no Content-Security-Policy violation.
"""

import json
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

SPEC = json.load(open(sys.argv[1]))
BASE = SPEC["base"]
SHOTS = SPEC["screenshots"]
DOWNLOADS = SPEC["downloads"]
os.makedirs(SHOTS, exist_ok=True)
os.makedirs(DOWNLOADS, exist_ok=True)


def step(name, ok, detail=""):
    print(f"STEP {name} {'PASS' if ok else 'FAIL'} {detail}".rstrip(), flush=True)
    if not ok:
        try:
            driver.save_screenshot(os.path.join(SHOTS, f"failed-{name}.png"))
            print("PAGE TEXT:", driver.find_element(By.TAG_NAME, "body").text[:3000])
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
        driver.quit()
        sys.exit(1)


def browser():
    options = webdriver.ChromeOptions()
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]:
        options.add_argument(arg)
    options.binary_location = SPEC.get("chromium", "/usr/bin/chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {
        "download.default_directory": DOWNLOADS,
        "download.prompt_for_download": False,
    })
    service = Service(SPEC.get("chromedriver", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options, service=service)


driver = browser()
wait = WebDriverWait(driver, 20)
AXE = open(SPEC["axe"]).read() if SPEC.get("axe") else None


def text():
    return driver.find_element(By.TAG_NAME, "main").text


def until_text(fragment, timeout=20):
    try:
        WebDriverWait(driver, timeout).until(lambda d: fragment in text())
        return True
    except TimeoutException:
        return False


def until_css(selector, timeout=20):
    try:
        WebDriverWait(driver, timeout).until(lambda d: d.find_elements(By.CSS_SELECTOR, selector))
        return True
    except TimeoutException:
        return False


def shot(name):
    driver.execute_script("window.scrollTo(0, 0);")
    driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def axe(page):
    if AXE is None:
        step(f"axe-{page}", False, "axe-core not found")
    driver.execute_script(AXE)
    violations = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map(v => "
        "({id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help}))), e => done([{id: 'error', impact: 'critical', help: String(e)}]));")
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    step(f"axe-{page}", not bad, json.dumps(bad) if bad else f"{len(violations)} minor")


def no_script_ran(where):
    pwned = driver.execute_script("return window.__pwned === undefined ? null : window.__pwned;")
    try:
        driver.switch_to.alert
        alert = True
    except NoAlertPresentException:
        alert = False
    step(f"no-script-{where}", pwned is None and not alert, f"pwned={pwned} alert={alert}")


def sign_in(token):
    driver.get(f"{BASE}/console")
    step("sign-in-form", until_css("#token"))
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#signin button[type=submit]").click()
    step("signed-in", until_css("#nav a"))


def go(hash_part):
    driver.execute_script("document.getElementById('main').replaceChildren(); location.hash = arguments[0];", hash_part)


def fetch_status(path):
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {headers: {Authorization: 'Bearer ' + sessionStorage.getItem('mcpgw.console.token')}})"
        ".then(r => done(r.status), e => done(String(e)));", path)


def csp_violations():
    try:
        logs = driver.get_log("browser")
    except Exception:  # noqa: BLE001 - some drivers have no log
        return []
    return [entry["message"] for entry in logs if "Content Security Policy" in entry["message"]]


def flow():
    sign_in(SPEC["tokens"]["admin"])

    # Overview
    go("#/overview")
    step("overview", until_text("Last hour") and until_css("figure svg"), "")
    step("overview-actors", until_text("audit_writer") or until_text("registry"))
    shot("overview")
    axe("overview")

    # Tools: the drifted definition as a diff, approved by the admin
    go("#/tools")
    drifted = SPEC["drifted_tool"]
    step("tools-drift", until_text(f"Drifted: {drifted}"))
    step("tools-diff", until_css(".diff .add") and until_css(".diff .del"))
    added = " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, ".diff .add"))
    step("tools-diff-text", SPEC["drift_marker"] in added, added[:200])
    shot("tools")
    axe("tools")
    driver.find_element(By.CSS_SELECTOR, f"button[data-tool='{drifted}']").click()
    step("tools-approve", until_text(f"Approved the new definition of {drifted}"))
    step("tools-no-drift", until_text("No drift.", timeout=30))

    # Audit: hostile values shown as text, filters in the URL, details, export, verification
    go("#/audit")
    step("audit", until_css("#audit-results table"))
    # Hidden details (masked arguments) included: the text of the page, not its markup.
    body = driver.execute_script("return document.querySelector('main').textContent;")
    for payload in SPEC["hostile"]:
        # Masked arguments are shown as the JSON they are stored as.
        found = payload in body or json.dumps(payload)[1:-1] in body
        step("audit-hostile-as-text", found, payload if found else body[body.find("onmouseover") - 200:][:400])
    injected = driver.execute_script(
        "return document.querySelectorAll('main [onerror], main [onmouseover], main script, main img, main b').length;")
    step("audit-no-markup-from-data", injected == 0, f"{injected} element(s)")
    no_script_ran("audit")
    shot("audit")
    axe("audit")
    driver.find_element(By.ID, "f-user").send_keys(SPEC["filter_user"])
    driver.find_element(By.ID, "f-tool").send_keys(SPEC["filter_tool"])
    driver.find_element(By.CSS_SELECTOR, "#audit-filters button[type=submit]").click()
    WebDriverWait(driver, 20).until(lambda d: "user=" in d.current_url)
    step("audit-filter-in-url", f"user={SPEC['filter_user']}" in driver.current_url, driver.current_url)
    step("audit-filtered", until_css("#audit-count"))
    rows = driver.find_elements(By.CSS_SELECTOR, "#audit-results tbody tr:not(.detail)")
    users = {r.find_elements(By.TAG_NAME, "td")[1].text for r in rows if len(r.find_elements(By.TAG_NAME, "td")) > 2}
    step("audit-filter-rows", users == {SPEC["filter_user"]}, f"{len(rows)} rows, users {users}")
    # The bookmark reopens the same selection.
    bookmark = driver.current_url
    driver.get(bookmark)
    step("audit-bookmark", until_css("#audit-count") and driver.find_element(By.ID, "f-user").get_attribute("value") == SPEC["filter_user"])
    driver.find_element(By.CSS_SELECTOR, "#audit-results button[aria-expanded]").click()
    step("audit-detail", until_text("Row hash") and until_text("Previous row hash"))
    for fmt in ("csv", "jsonl"):
        driver.find_element(By.ID, f"export-{fmt}").click()
        path = os.path.join(DOWNLOADS, f"audit.{fmt}")
        for _ in range(100):
            if os.path.exists(path) and os.path.getsize(path) > 0:
                break
            time.sleep(0.1)
        content = open(path).read() if os.path.exists(path) else ""
        lines = [l for l in content.splitlines() if l.strip()]
        body_lines = lines[1:] if fmt == "csv" else lines
        step(f"audit-export-{fmt}", body_lines and all(SPEC["filter_user"] in l for l in body_lines), f"{len(body_lines)} rows")
    driver.find_element(By.ID, "verify").click()
    step("audit-verify-broken", until_text("BROKEN", timeout=60), "")
    step("audit-verify-says-where", until_text(SPEC["tamper_says"]))
    shot("audit-verify")

    # Policy: explain a denial, rate-limit usage
    go("#/policy")
    step("policy", until_css("#explain"))
    form = driver.find_element(By.ID, "explain")
    form.find_element(By.NAME, "sub").send_keys("guest-user")
    form.find_element(By.NAME, "roles").send_keys("guest")
    form.find_element(By.NAME, "tool").send_keys(SPEC["deny_tool"])
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    step("policy-explain-denied", until_text(f"DENIED: guest-user may not call {SPEC['deny_tool']}"))
    step("policy-explain-rule", until_text("no role of the caller grants"))
    usage = driver.find_element(By.ID, "usage")
    usage.find_element(By.NAME, "user").send_keys(SPEC["filter_user"])
    usage.find_element(By.NAME, "roles").send_keys("developer")
    usage.find_element(By.NAME, "tool").send_keys(SPEC["filter_tool"])
    usage.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    step("policy-usage", until_text("Available now") and until_text("per_user"))
    shot("policy")
    axe("policy")

    # Jobs: cancel a running one
    go("#/jobs?all=true")
    job = SPEC["job"]
    step("jobs", until_css(f"button[data-job='{job}']"))
    shot("jobs")
    axe("jobs")
    driver.find_element(By.CSS_SELECTOR, f"button[data-job='{job}']").click()
    step("jobs-cancel", until_text(f"Cancelled job {job}"))

    # An operator cannot open the audit page (and the API agrees)
    driver.find_element(By.CSS_SELECTOR, "#who button").click()
    sign_in(SPEC["tokens"]["operator"])
    links = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#nav a")]
    step("operator-nav", "Audit" not in links and "Overview" in links, str(links))
    go("#/audit")
    step("operator-audit-refused", until_text("You cannot open this page"))
    step("operator-audit-api-403", fetch_status("/admin/audit-logs") == 403)
    shot("operator-audit")
    axe("operator-refused")

    violations = csp_violations()
    step("no-csp-violations", not violations, "; ".join(violations)[:500])


def perf():
    sign_in(SPEC["tokens"]["auditor"])
    go("#/audit")
    until_css("#audit-count")
    timings = []
    for i in range(3):
        # From another selection each time (the same hash again is no navigation).
        go(f"#/audit?limit={25 + i}")
        until_css("#audit-count")
        started = time.monotonic()
        go("#/audit?" + SPEC["perf_query"])
        ok = until_css("#audit-count", timeout=30)
        timings.append((time.monotonic() - started) * 1000)
        step("perf-rendered", ok)
    rows = driver.find_elements(By.CSS_SELECTOR, "#audit-results tbody tr:not(.detail)")
    step("perf-rows", len(rows) > 0, f"{len(rows)} rows")
    print(f"FIGURE render_ms {min(timings):.0f} (best of 3; all {', '.join(f'{t:.0f}' for t in timings)})", flush=True)
    shot("audit-1m-rows")


def oidc():
    driver.get(f"{BASE}/console")
    step("oidc-button", until_css("#oidc-signin"))
    shot("sign-in")
    axe("sign-in")
    driver.find_element(By.ID, "oidc-signin").click()
    step("oidc-signed-in", until_css("#nav a", timeout=30), driver.current_url)
    who = driver.find_element(By.ID, "who").text
    step("oidc-user", SPEC["expect_user"] in who and "operator" in who, who)
    step("oidc-code-gone", "code=" not in driver.current_url, driver.current_url)
    step("oidc-overview", until_text("Last hour"))
    violations = csp_violations()
    step("no-csp-violations", not violations, "; ".join(violations)[:500])


def approvals():
    # The requester, though holding the approver role, cannot decide their own request.
    sign_in(SPEC["tokens"]["requester"])
    go("#/approvals")
    step("approvals-own", until_text("Your own request"))
    step("approvals-own-no-buttons", not driver.find_elements(By.CSS_SELECTOR, "button[data-approve]"))
    driver.find_element(By.CSS_SELECTOR, "#who button").click()
    sign_in(SPEC["tokens"]["approver"])
    go("#/approvals")
    request = SPEC["request"]
    step("approvals-listed", until_css(f"button[data-approve='{request}']"))
    body = text()
    step("approvals-arguments", SPEC["argument_marker"] in body, body[:300])
    step("approvals-rule-fired", "amount: max" in body)
    shot("approvals")
    axe("approvals")
    driver.find_element(By.CSS_SELECTOR, f"button[data-approve='{request}']").click()
    step("approvals-reason-required", until_text("A reason is required."))
    driver.find_element(By.ID, f"reason-{request}").send_keys("invoice 42 checked")
    driver.find_element(By.CSS_SELECTOR, f"button[data-approve='{request}']").click()
    step("approvals-approved", until_text("Approved: transfer"))
    violations = csp_violations()
    step("no-csp-violations", not violations, "; ".join(violations)[:500])


try:
    {"flow": flow, "perf": perf, "oidc": oidc, "approvals": approvals}[SPEC["mode"]]()
    print("ALL PASS", flush=True)
finally:
    driver.quit()
