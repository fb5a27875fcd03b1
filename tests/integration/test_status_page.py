"""The server's status page in a real headless Chromium, driven over the Chrome DevTools Protocol on a pipe
(fds 3 and 4, NUL-terminated JSON; stdlib only), against a real `redduck server` on loopback port 0 that
refreshes a deployed copy of examples/demo from the emulator (explicit prod keys, a source file named
`<b>x<script>.yaml`): the login form typed into and submitted, the dashboard with the project's sources,
the "Refresh now" button clicked and the runs it queued found in the store (read-only sqlite3) and then on
the page with their chart points, the hostile source name shown as text (the DOM's textContent, no element
made of it, no dialog opened), a screenshot saved as a PNG under the build dir, and a viewer who sees no
button and gets 403 when posting the form anyway with their own session and CSRF token. Chromium runs in
its own process group, killed at the end whatever happens (and with the test process)."""
import base64
import fcntl
import json
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from emulator_fixture import REDDUCK, Emulator, clean_env, die_with_parent, team_deploy, team_server
from test_cloud_cli import DEMO

CHROMIUM = os.environ.get("RD_CHROMIUM", "/usr/bin/chromium")
XSS_NAME = "<b>x<script>"
TIMEOUT = 15  # seconds for any one wait
LIFETIME = 90  # seconds: Chromium is killed by then whatever happens to the test


def artifact_dir():
    """test-artifacts/ in the build dir (where the redduck under test was built), else the current dir."""
    base = os.path.dirname(REDDUCK) if os.path.isabs(REDDUCK) else os.getcwd()
    d = os.path.join(base, "test-artifacts")
    os.makedirs(d, exist_ok=True)
    return d


class CDPError(Exception):
    pass


class Chromium:
    """A headless Chromium with --remote-debugging-pipe: commands written to its fd 3, replies and events read
    from its fd 4, one JSON message per NUL. Flat sessions (Target.attachToTarget with flatten)."""

    def __init__(self, tmp):
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp)
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        # the child's ends at fds >= 10, so bash's 3<&N 4>&M never overwrite each other
        cr = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        cw = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_child_r)
        os.close(from_child_w)
        args = [CHROMIUM, "--headless=new", "--remote-debugging-pipe", "--user-data-dir=" + self.profile,
                "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--disable-component-update",
                "--no-proxy-server", "--window-size=1200,900", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        env = clean_env(self.profile)
        script = 'exec "$@" 3<&%d 4>&%d %d<&- %d>&-' % (cr, cw, cr, cw)
        self.proc = subprocess.Popen(["bash", "-c", script, "bash"] + args, pass_fds=(cr, cw),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=env, start_new_session=True,
                                     preexec_fn=die_with_parent)
        os.close(cr)
        os.close(cw)
        # a lifetime, as the servers have: killed by then even if the test hangs
        self.timer = threading.Timer(LIFETIME, self._kill)
        self.timer.daemon = True
        self.timer.start()
        self.next_id = 0
        self.replies = {}
        self.events = []
        self.cond = threading.Condition()
        self.closed = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.from_child, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self.cond:
                    if "id" in msg:
                        self.replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def send(self, method, params=None, session=None, timeout=TIMEOUT):
        with self.cond:
            self.next_id += 1
            mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self.cond:
            while mid not in self.replies:
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    raise CDPError("no reply to %s (chromium %s)" % (method, "gone" if self.closed else "silent"))
                self.cond.wait(left)
            reply = self.replies.pop(mid)
        if "error" in reply:
            raise CDPError("%s: %s" % (method, reply["error"]))
        return reply.get("result", {})

    def events_named(self, method, session=None):
        with self.cond:
            return [e for e in self.events if e.get("method") == method and
                    (session is None or e.get("sessionId") == session)]

    def _kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self):
        """Kills the whole process group (the browser and its child processes), whatever state it is in."""
        self.timer.cancel()
        self._kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        for fd in (self.to_child, self.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self.reader.join(5)
        shutil.rmtree(self.profile, ignore_errors=True)


class Tab:
    """One page in its own browser context (its own cookies), attached with a flat session."""

    def __init__(self, browser):
        self.b = browser
        self.context = browser.send("Target.createBrowserContext", {"disposeOnDetach": True})["browserContextId"]
        target = browser.send("Target.createTarget", {"url": "about:blank", "browserContextId": self.context})
        self.session = browser.send("Target.attachToTarget",
                                    {"targetId": target["targetId"], "flatten": True})["sessionId"]
        self.cmd("Page.enable")
        self.cmd("Runtime.enable")

    def cmd(self, method, params=None):
        return self.b.send(method, params, session=self.session)

    def eval(self, expr):
        r = self.cmd("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        if "exceptionDetails" in r:
            raise CDPError("evaluation failed: %s" % r["exceptionDetails"].get("text"))
        return r["result"].get("value")

    def wait_for(self, expr, what):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                v = self.eval(expr)
                if v:
                    return v
            except CDPError:
                pass  # a navigation destroyed the context: retry
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %s (at %s: %s)" % (what, self.eval("location.href"),
                                                                      self.eval("document.documentElement.outerHTML.slice(0, 3000)")))

    def navigated(self, before, path):
        """Waits for a new document at path (after a form post) to be loaded."""
        self.wait_for("performance.timeOrigin > %r && location.pathname === %s && document.readyState === "
                      "'complete'" % (before, json.dumps(path)), "the page %s" % path)

    def origin_time(self):
        return self.eval("performance.timeOrigin")

    def goto(self, url):
        before = self.origin_time()
        self.cmd("Page.navigate", {"url": url})
        self.navigated(before, urllib.parse.urlparse(url).path)

    def click(self, selector):
        """A real mouse click at the middle of the element."""
        rect = self.eval("(() => { const e = document.querySelector(%s); e.scrollIntoView({block: 'center'});"
                         " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
                         % json.dumps(selector))
        for kind in ("mousePressed", "mouseReleased"):
            self.cmd("Input.dispatchMouseEvent", {"type": kind, "x": rect[0], "y": rect[1], "button": "left",
                                                  "clickCount": 1})

    def status(self):
        """The HTTP status of the current document."""
        return self.eval("performance.getEntriesByType('navigation')[0].responseStatus")

    def login(self, url, token):
        self.goto(url + "/")
        self.eval("document.getElementById('token').focus()")
        self.cmd("Input.insertText", {"text": token})
        before = self.origin_time()
        self.click("#login button")
        self.navigated(before, "/")
        if self.eval("!!document.getElementById('login')"):
            raise AssertionError("the login was refused: %s" % self.eval("document.body.innerText"))


def http(method, url, token=None, cookie=None, data=None, ctype=None):
    """(status, headers, body) without following redirects."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if cookie:
        req.add_header("Cookie", cookie)
    if ctype:
        req.add_header("Content-Type", ctype)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
    try:
        with opener.open(req, timeout=20) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class StatusPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rd-page-")
        cls.browser = cls.server = cls.emu = None
        try:
            cls.emu = Emulator(args=["--sample", "sales:rows=200"], lifetime=120)
            cls.server = team_server(os.path.join(cls.tmp, "server-data"))
            cls.browser = Chromium(cls.tmp)
            cls.deploy()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.browser:
            cls.browser.close()
        rc = cls.server.stop() if cls.server else 0
        if cls.emu:
            cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, "the server did not stop cleanly: %r" % rc

    @classmethod
    def deploy(cls):
        """A copy of examples/demo with a hostile source name, its prod keys set first, deployed to prod."""
        s = cls.server
        d = os.path.join(cls.tmp, "demo")
        shutil.copytree(DEMO, d, ignore=shutil.ignore_patterns("data", ".env"))
        with open(os.path.join(d, "sources", "revenue_by_currency.yaml"), "a") as f:
            f.write("refresh:\n  every: 6h\n")  # the scheduler's next slot is shown; nothing runs before it
        with open(os.path.join(d, "sources", XSS_NAME + ".yaml"), "w") as f:
            f.write("connector: warehouse\nsql: select count(*) as n from sales\nvia: data-api\ntable_name: xss\n")
        team_deploy(s, d, os.path.join(cls.tmp, "home"), cls.emu.endpoint, "test", "test")
        cls.viewer = s.new_token("vera", "demo", "viewer")

    def runs(self):
        """The demo project's runs as the store has them: [(source, state, trigger, triggered_by)]."""
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.server.data_dir, "store.db"), uri=True,
                             timeout=10)
        try:
            return db.execute("select r.source, r.state, r.\"trigger\", r.triggered_by from runs r join projects p"
                              " on p.id = r.project_id where p.name = 'demo' order by r.id").fetchall()
        finally:
            db.close()

    def wait_runs_ended(self, n):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            rs = self.runs()
            if len(rs) >= n and all(r[1] in ("success", "failed", "cancelled", "skipped") for r in rs):
                return rs
            time.sleep(0.1)
        raise AssertionError("the runs did not end: %r" % (self.runs(),))

    def test_admin_refreshes_and_sees_the_runs(self):
        url = self.server.url
        tab = Tab(self.browser)
        tab.login(url, self.server.token)
        self.assertEqual(tab.status(), 200)
        text = tab.eval("document.body.innerText")
        self.assertIn("demo", text)
        self.assertIn("admin (server admin)", text)
        sources = tab.eval("[...document.querySelectorAll('table.sources td.source')].map(e => e.textContent)")
        self.assertEqual(sorted(sources), sorted(["recent_sales", "revenue_by_currency", "sales", XSS_NAME]))
        self.assertEqual(self.runs(), [])
        row = tab.eval("(() => { const r = [...document.querySelectorAll('table.sources tr')].find(r =>"
                       " r.querySelector('td.source')?.textContent === 'revenue_by_currency');"
                       " return [...r.cells].map(c => [c.textContent, !!c.querySelector('time')]); })()")
        self.assertEqual(row[1][0], "every 6h")
        self.assertTrue(row[2][1], row)  # the next run: a time
        self.assertEqual(row[3][0], "never ran")

        # the button: a real click, the form posted with its CSRF token, back to the dashboard
        before = tab.origin_time()
        tab.click("section[data-project='demo'] button.refresh-now")
        tab.navigated(before, "/")
        self.assertEqual(tab.status(), 200)
        rs = self.wait_runs_ended(4)
        self.assertEqual(sorted(r[0] for r in rs), sorted(sources))
        self.assertEqual({(r[2], r[3]) for r in rs}, {("manual", "admin")})
        self.assertEqual({r[1] for r in rs}, {"success"}, rs)

        # the page shows the runs and charts them
        tab.goto(url + "/")
        states = tab.eval("[...document.querySelectorAll('table.sources span.state')].map(e => e.textContent)")
        self.assertEqual(states, ["success"] * 4)
        self.assertIn("manual by admin", tab.eval("document.querySelector('table.sources').innerText"))
        for metric in ("duration", "rows"):
            self.assertEqual(tab.eval("document.querySelectorAll('svg[data-metric=%s] circle').length" % metric), 4)
        self.assertRegex(tab.eval("document.querySelector('.snapshot').textContent"), r"^Snapshot \d+ of ")

        # the hostile name is text: the cell's textContent has it literally, no element came of it, no dialog
        cells = tab.eval("[...document.querySelectorAll('td.source')].filter(e => e.textContent === %s)"
                         ".map(e => e.children.length)" % json.dumps(XSS_NAME))
        self.assertEqual(cells, [0])
        self.assertEqual(tab.eval("document.scripts.length"), 0)
        self.assertEqual(tab.eval("document.querySelectorAll('main b').length"), 0)
        self.assertEqual(self.browser.events_named("Page.javascriptDialogOpening"), [])

        # the project's own page lists the runs
        tab.goto(url + "/projects/demo")
        self.assertEqual(tab.eval("document.querySelectorAll('table.runs td.source').length"), 4)

        # a screenshot of the dashboard, kept as an artifact
        tab.goto(url + "/")
        shot = base64.b64decode(tab.cmd("Page.captureScreenshot", {"format": "png",
                                                                    "captureBeyondViewport": True})["data"])
        path = os.path.join(artifact_dir(), "status_page.png")
        with open(path, "wb") as f:
            f.write(shot)
        self.assertEqual(shot[:8], b"\x89PNG\r\n\x1a\n")
        width, height = struct.unpack(">II", shot[16:24])
        self.assertEqual(shot[12:16], b"IHDR")
        self.assertGreaterEqual(width, 800)
        self.assertGreaterEqual(height, 400)
        self.assertGreater(len(shot), 20000)  # more than a blank page

    def test_viewer_has_no_button_and_gets_403(self):
        url = self.server.url
        tab = Tab(self.browser)
        tab.login(url, self.viewer)
        self.assertIn("vera", tab.eval("document.querySelector('header').innerText"))
        self.assertTrue(tab.eval("!!document.querySelector(\"section[data-project='demo']\")"))
        self.assertEqual(tab.eval("document.querySelectorAll('button.refresh-now, form.refresh').length"), 0)
        csrf = tab.eval("document.querySelector('input[name=csrf]').value")
        self.assertEqual(len(csrf), 64)
        n = len(self.runs())
        # the form a viewer's page does not have, posted anyway from the page with their session and token
        before = tab.origin_time()
        tab.eval("(() => { const f = document.createElement('form'); f.method = 'post';"
                 " f.action = '/projects/demo/refresh'; const i = document.createElement('input');"
                 " i.type = 'hidden'; i.name = 'csrf'; i.value = %s; f.appendChild(i);"
                 " document.body.appendChild(f); f.submit(); })()" % json.dumps(csrf))
        tab.navigated(before, "/projects/demo/refresh")
        self.assertEqual(tab.status(), 403)
        self.assertIn("does not allow a refresh", tab.eval("document.body.innerText"))
        self.assertEqual(len(self.runs()), n)
        # the session cookie is HttpOnly: the page's scripts never see it
        self.assertEqual(tab.eval("document.cookie"), "")

    def test_login_refused_and_cookie_attributes(self):
        url = self.server.url
        status, headers, body = http("POST", url + "/login", data=b"token=rdk_nope",
                                     ctype="application/x-www-form-urlencoded")
        self.assertEqual(status, 401)
        self.assertIsNone(headers.get("Set-Cookie"))
        self.assertIn(b"not accepted", body)
        status, headers, _ = http("POST", url + "/login", data=("token=" + self.viewer).encode(),
                                  ctype="application/x-www-form-urlencoded")
        self.assertEqual(status, 303)
        cookie = headers.get("Set-Cookie")
        self.assertRegex(cookie, r"^rd_session=[0-9a-f]{64}; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800$")
        self.assertEqual(headers.get("Location"), "/")
        status, headers, body = http("GET", url + "/", cookie=cookie.split(";")[0])
        self.assertEqual(status, 200)
        self.assertIn("default-src 'none'", headers.get("Content-Security-Policy"))
        self.assertIn(b"vera", body)
        # the log names the user and the path, never the token or the session id
        log = "".join(self.server.err)
        self.assertNotIn(self.viewer, log)
        self.assertNotIn(cookie.split(";")[0].split("=")[1], log)


if __name__ == "__main__":
    unittest.main()
