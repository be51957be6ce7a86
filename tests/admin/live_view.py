"""Drives the live view (/ui/) of a running dyegate in headless Chromium through Selenium, for
tests/admin/live_view.rs. Argument: one JSON object (admin URL, mode, paths, names, tokens).
Prints one JSON object with what it saw; the Rust test asserts on it. It waits for conditions
(WebDriverWait), never for a fixed time.
"""

import json
import os
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ARGS = json.loads(sys.argv[1])
ADMIN = ARGS["admin"]
WAIT = 90


def browser(width=1280, height=1000):
    opts = webdriver.ChromeOptions()
    opts.binary_location = ARGS["chromium"]
    for a in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--user-data-dir=" + tempfile.mkdtemp(prefix="dyegate-chromium-"),
        "--window-size=%d,%d" % (width, height),
    ]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=ARGS["chromedriver"], log_output=os.devnull)
    return webdriver.Chrome(service=service, options=opts)


def api(method, path, token=None, headers=None, body=None):
    req = urllib.request.Request(ADMIN + path, method=method, data=body)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait(driver, cond, what):
    return WebDriverWait(driver, WAIT, poll_frequency=0.2).until(cond, message=what)


def panel(driver, route):
    return driver.find_element(By.CSS_SELECTOR, '.rollout[data-route="%s"]' % route)


def open_view(driver, view):
    driver.find_element(By.CSS_SELECTOR, '#tabs button[data-view="%s"]' % view).click()
    wait(driver, lambda d: d.execute_script("return document.body.dataset.rendered") == view, "view " + view)


def texts(driver, selector):
    """The text of every element `selector` finds, read in one go (views are drawn again every
    second: an element found in one call may be gone by the next)."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent);", selector
    )


def shot(driver, name):
    os.makedirs(ARGS["shots"], exist_ok=True)
    driver.save_screenshot(os.path.join(ARGS["shots"], name + ".png"))


def requests_seen(driver):
    """Every URL the browser asked the network for, from the performance log (Network events);
    the browser's own pages (chrome://) and inline data (data:) are not network requests."""
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            url = msg["params"]["request"]["url"]
            if url.split(":", 1)[0] in ("http", "https", "ws", "wss", "ftp"):
                urls.append(url)
    return urls


def console_errors(driver):
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def alert_open(driver):
    try:
        driver.switch_to.alert
        return True
    except NoAlertPresentException:
        return False


def panel_figures(driver, route):
    """The panel's state, step, gates and judgement time, read in one go in the page (the panel
    is drawn again every second)."""
    return driver.execute_script(
        """
        const p = [...document.querySelectorAll('.rollout')].find((e) => e.dataset.route === arguments[0]);
        if (!p) return null;
        const field = (f) => { const e = p.querySelector('[data-field="' + f + '"]'); return e ? e.textContent : null; };
        const gates = [...p.querySelectorAll('table.gates tbody tr')].map((row) => {
          const c = [...row.querySelectorAll('td')].map((td) => td.textContent);
          return { gate: c[0], value: c[1], limit: c[2], verdict: c[3] };
        });
        let judged = null;
        for (const dt of p.querySelectorAll('dl dt')) if (dt.textContent === 'judged at') judged = dt.nextElementSibling.textContent;
        return { state: field('state'), step: field('step'), gates, judged_at: judged };
        """,
        route,
    )


def api_figures(answer):
    e = answer.get("last_evaluation") or {}
    gates = [
        {"gate": g["gate"], "value": "%.4f" % g["value"], "limit": "%.4f" % g["limit"],
         "verdict": "holds" if g["ok"] else "breached"}
        for g in e.get("gates", [])
    ]
    return {"state": answer["state"], "step": str(answer["step"]), "gates": gates, "judged_at": e.get("at")}


def same_judgement(driver, route, token=None):
    """The panel's figures and the API's, read at one judgement (the gates are judged every
    second: the two are compared once both show the same `judged at`)."""
    found = {}

    def check(d):
        page = panel_figures(d, route)
        _, answer = api("GET", "/rollouts/" + route, token)
        found["page"], found["api"] = page, api_figures(answer)
        return page and page["judged_at"] and page["judged_at"] == found["api"]["judged_at"] and page["gates"]

    try:
        wait(driver, check, "the panel showing the judgement the API gives")
    except Exception:
        shot(driver, "failed-judgement")
        raise AssertionError("the panel never showed the API's judgement; last: %s" % json.dumps(found))
    return found


def open_mode():
    out = {}
    d = browser()
    try:
        d.get(ADMIN + "/ui/")
        wait(d, lambda d: d.execute_script("return document.body.dataset.rendered") == "overview", "overview")
        wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#overview-traffic tbody tr"), "traffic rows")
        shot(d, "overview")

        open_view(d, "routes")
        xss = ARGS["xss_route"]
        names = texts(d, ".route .route-name")
        out["route_names"] = names
        out["img_elements"] = len(d.find_elements(By.TAG_NAME, "img"))
        split = '.route[data-route="shop"] table.split'
        wait(d, lambda d: "%" in "".join(texts(d, split)), "realised share")
        out["shop_split"] = texts(d, split)[0]
        out["xss_alert"] = alert_open(d)
        out["xss_shown_as_text"] = xss in names
        shot(d, "routes")

        open_view(d, "rollouts")
        wait(d, lambda d: panel(d, "shop").find_elements(By.CSS_SELECTOR, "table.gates"), "gates")
        out["judgement"] = same_judgement(d, "shop")
        # Two points make a line: the charts draw the canary, the others and the limit.
        wait(d, lambda d: len(panel(d, "shop").find_elements(By.CSS_SELECTOR, "svg.chart path.canary")) == 2, "chart lines")
        out["chart_limit_lines"] = len(panel(d, "shop").find_elements(By.CSS_SELECTOR, "svg.chart line.limit"))
        shot(d, "rollouts")
        d.set_window_size(390, 1600)
        shot(d, "rollouts-phone")
        out["phone_scroll_width"] = d.execute_script("return document.documentElement.scrollWidth")
        d.set_window_size(1280, 1000)

        # Abort asks first; cancelled, nothing happens.
        panel(d, "shop").find_element(By.CSS_SELECTOR, 'button[data-action="abort"]').click()
        wait(d, lambda d: d.find_element(By.ID, "confirm").is_displayed(), "abort confirmation")
        out["abort_confirmation"] = d.find_element(By.ID, "confirm-text").text
        d.find_element(By.ID, "confirm-cancel").click()
        wait(d, lambda d: not d.find_element(By.ID, "confirm").is_displayed(), "confirmation closed")
        out["state_after_cancelled_abort"] = api("GET", "/rollouts/shop")[1]["state"]

        # Pause: no confirmation; the API says paused.
        panel(d, "shop").find_element(By.CSS_SELECTOR, 'button[data-action="pause"]').click()
        wait(d, lambda d: (panel_figures(d, "shop") or {}).get("state") == "paused", "paused on the page")
        out["state_after_pause"] = api("GET", "/rollouts/shop")[1]["state"]

        open_view(d, "versions")
        wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, ".version"), "versions")
        first = d.find_elements(By.CSS_SELECTOR, ".version")[0]
        first.find_element(By.XPATH, ".//button[text()='Diff']").click()
        wait(d, lambda d: first.find_elements(By.CSS_SELECTOR, "pre.diff"), "diff")
        out["versions"] = len(d.find_elements(By.CSS_SELECTOR, ".version"))
        out["first_version_diff"] = first.find_element(By.CSS_SELECTOR, "pre.diff").text
        shot(d, "versions")

        open_view(d, "explain")
        d.find_element(By.ID, "explain-path").clear()
        d.find_element(By.ID, "explain-path").send_keys("/")
        d.find_element(By.ID, "explain-headers").send_keys("x-env-tag: canary")
        d.find_element(By.ID, "explain-submit").click()
        wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#explain-result, #explain-answer .error"), "explain answer")
        out["explain_answer"] = d.find_element(By.ID, "explain-answer").text
        # The answer's top-level fields as the page shows them (each <dd data-field=NAME>).
        out["explain_fields"] = d.execute_script(
            "const dl = document.querySelector('#explain-result > dl'); const f = {};"
            " if (dl) for (const dd of dl.children) if (dd.tagName === 'DD') f[dd.dataset.field] = dd.textContent;"
            " return f;"
        )
        shot(d, "explain")

        # Everything the page asked for, and what the console said, before the probes below.
        origin = ADMIN.rstrip("/")
        urls = requests_seen(d)
        out["requests"] = len(urls)
        out["foreign_requests"] = [u for u in urls if not u.startswith(origin + "/")]
        out["console_errors"] = console_errors(d)
    finally:
        d.quit()
    out["cross_site"] = cross_site()
    return out


class Evil(BaseHTTPRequestHandler):
    """A page on another origin that tries to abort the rollout through the visitor's browser."""

    def do_GET(self):
        page = (
            "<!doctype html><title>evil</title><script>"
            "fetch(%s, {method: 'POST', mode: 'no-cors', body: 'x'})"
            ".finally(() => { document.title = 'sent'; });"
            "</script>" % json.dumps(ADMIN + "/rollouts/shop/abort")
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args):
        pass


def cross_site():
    out = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    d = browser()
    try:
        d.get("http://127.0.0.1:%d/" % server.server_address[1])
        wait(d, lambda d: d.title == "sent", "the other site's POST sent")
    finally:
        d.quit()
        server.shutdown()
    out["state_after_other_site"] = api("GET", "/rollouts/shop")[1]["state"]
    # The same POST as a script would send it with the page's header but another Origin.
    out["foreign_origin_status"] = api(
        "POST", "/rollouts/shop/abort",
        headers={"Origin": "http://evil.example", "X-Dyegate-Ui": "1"},
    )
    out["state_after_foreign_origin"] = api("GET", "/rollouts/shop")[1]["state"]
    return out


def tokens_mode():
    out = {}
    d = browser()
    try:
        d.get(ADMIN + "/ui/")
        wait(d, lambda d: d.find_element(By.ID, "login").is_displayed(), "token prompt")
        out["without_token"] = {
            "login_shown": d.find_element(By.ID, "login").is_displayed(),
            "app_shown": d.find_element(By.ID, "app").is_displayed(),
            "tabs_shown": d.find_element(By.ID, "tabs").is_displayed(),
            "text": d.find_element(By.TAG_NAME, "body").text,
        }
        shot(d, "token-prompt")

        d.find_element(By.ID, "token").send_keys(ARGS["read_token"])
        d.find_element(By.ID, "login-submit").click()
        wait(d, lambda d: d.find_element(By.ID, "app").is_displayed(), "the page after the token")
        out["who"] = d.find_element(By.ID, "who").text
        open_view(d, "rollouts")
        wait(d, lambda d: panel(d, "shop").find_elements(By.CSS_SELECTOR, "table.gates"), "gates")
        buttons = panel(d, "shop").find_elements(By.CSS_SELECTOR, "button[data-action]")
        out["read_buttons"] = {b.get_attribute("data-action"): b.is_enabled() for b in buttons}
        open_view(d, "versions")
        wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, ".version"), "versions")
        out["read_rollback_enabled"] = [
            b.is_enabled() for b in d.find_elements(By.CSS_SELECTOR, 'button[data-action="rollback"]')
        ]
        origin = ADMIN.rstrip("/")
        out["foreign_requests"] = [u for u in requests_seen(d) if not u.startswith(origin + "/")]
        out["console_errors"] = console_errors(d)
        # Had the page tried: the API refuses a read identity's change.
        out["read_post_status"] = d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('/rollouts/shop/pause', {method: 'POST', headers: {'X-Dyegate-Ui': '1',"
            " 'Authorization': 'Bearer ' + arguments[0]}}).then(r => done(r.status), e => done(String(e)));",
            ARGS["read_token"],
        )
        out["state_after_read_post"] = api("GET", "/rollouts/shop", ARGS["read_token"])[1]["state"]

        # A write token: the buttons are enabled.
        d.find_element(By.ID, "forget").click()
        wait(d, lambda d: d.find_element(By.ID, "login").is_displayed(), "token prompt again")
        d.find_element(By.ID, "token").send_keys(ARGS["write_token"])
        d.find_element(By.ID, "login-submit").click()
        wait(d, lambda d: d.find_element(By.ID, "app").is_displayed(), "the page after the write token")
        open_view(d, "rollouts")
        wait(d, lambda d: panel(d, "shop").find_elements(By.CSS_SELECTOR, "table.gates"), "gates")
        buttons = panel(d, "shop").find_elements(By.CSS_SELECTOR, "button[data-action]")
        out["write_buttons"] = {b.get_attribute("data-action"): b.is_enabled() for b in buttons}
        # The token is in no URL the page asked for.
        out["token_in_url"] = any(ARGS["write_token"] in u or ARGS["read_token"] in u for u in requests_seen(d))
    finally:
        d.quit()
    return out


if __name__ == "__main__":
    result = open_mode() if ARGS["mode"] == "open" else tokens_mode()
    print(json.dumps(result))
