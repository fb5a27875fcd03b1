"""The scheduler of a real `redduck server` (port 0, temp data dir) refreshing deployed projects from the
emulator running as a real process. The server's own environment holds bogus AWS_* values; the deployments'
prod variables hold the emulator's keys and endpoint, dev's other keys and a dead endpoint. Witnesses: the
store read read-only with Python's sqlite3, the server log, the snapshot's bytes with hashlib, the project's
DuckDB file with `redduck query`, and a webhook receiver (http.server on 127.0.0.1).

Server A: a source with `every: 2s` runs at ~2 s spacing with prod's keys only; a slow source with
`every: 1s` gets skipped runs and never two at once; a failing source beside passing ones fails with its
error and a failure event, then succeeds after a new deployment fixes it and a recovery event follows; a
project without prod keys fails naming the variables to set; snapshots match their sha256 and at most 3 are
kept; SIGTERM during the slow ingest ends it cancelled, its previous table intact, the server exiting 0.
Server B (an emulator whose seeded fault fails the first statement): the first attempt fails and the retry
succeeds (attempts 2); stopped ~5 s and started again: exactly one catch-up run."""
import hashlib
import http.server
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import threading
import time
import unittest

from emulator_fixture import Emulator, Server, api, identities, in_parallel, wait_until

REDDUCK = os.environ.get("REDDUCK_BIN", "redduck")
KEY, SECRET = "AKIDPRODSCHED", "prod-SECRET-sched-4d1f9a"
HOST_ENV = {"AWS_ACCESS_KEY_ID": "AKIDHOSTONLY", "AWS_SECRET_ACCESS_KEY": "host-SECRET-only-77",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_PROFILE": "no-such-profile",
            "AWS_REGION": "eu-bogus-9"}
# ~3 s of UNLOAD: 200 x 200 x 200 x 48 pairs, counted and then materialised by the emulator (a small result)
SLOW = ("select a.sale_id from sales a, sales b, sales c, (select sale_id from sales where sale_id <= 48) d "
        "where a.sale_id + b.sale_id + c.sale_id + d.sale_id <= 6")
WEBHOOK_TOKEN = "hookTOKEN0a9b"


def emulator(*args):
    users = [("prod", KEY, SECRET, ["*"])]
    config = identities(users, roles=[{"name": "redshift-unload", "allow": ["s3:*"], "default": True}],
                        workgroups=["demo"], buckets=["redduck-staging"])
    return Emulator(["--sample", "sales:rows=200"] + list(args), config=config)


def archive(files):
    """A gzip tar of {relative path: text}, as `redduck deploy` sends it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for rel, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def project_files(name, sources):
    files = {"redduck.yaml": "name: %s\n" % name,
             "connectors/wh.yaml": "type: redshift\nworkgroup: demo\ndatabase: dev\nregion: us-east-1\n"
                                   "output_location: s3://redduck-staging/%s/\n" % name}
    for src, text in sources.items():
        files["sources/%s.yaml" % src] = text
    return files


def raw_call(url, method, path, token, data, content_type):
    import urllib.request
    import urllib.error
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    req.add_header("Content-Type", content_type)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=20) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


class Receiver:
    """A webhook on 127.0.0.1: every POST's path, headers and JSON body."""

    def __init__(self):
        self.events = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.events.append((self.path, dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook/%s?sig=1" % (self.httpd.server_address[1], WEBHOOK_TOKEN)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def json_events(self):
        return [json.loads(b) for _, _, b in list(self.events)]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Store:
    """The server's store, read-only (real SQLite)."""

    def __init__(self, data_dir):
        self.path = os.path.join(data_dir, "store.db")

    def rows(self, sql, *args):
        db = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, timeout=10)
        try:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(sql, args)]
        finally:
            db.close()

    def runs(self, project, source):
        return self.rows("SELECT r.* FROM runs r JOIN projects p ON p.id = r.project_id WHERE p.name = ? AND "
                         "r.source = ? ORDER BY r.id", project, source)

    def log(self, run_id):
        return [r["line"] for r in self.rows("SELECT line FROM run_logs WHERE run_id = ? ORDER BY seq", run_id)]


def fault_seed(p=0.5, fail_first=1, then_pass=5):
    """A seed for which the emulator's data.execute.fail draws (faults.c: splitmix64 over seed, the fault's
    FNV-1a hash and the draw's number) fail the first statement and pass the next few."""
    m = (1 << 64) - 1

    def sm(x):
        x = (x + 0x9e3779b97f4a7c15) & m
        x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & m
        x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & m
        return x ^ (x >> 31)

    h = 1469598103934665603
    for c in b"data.execute.fail":
        h = ((h ^ c) * 1099511628211) & m
    for seed in range(1, 100000):
        draws = [((sm(seed ^ h ^ sm(n)) >> 11) / float(1 << 53)) < p for n in range(fail_first + then_pass)]
        if all(draws[:fail_first]) and not any(draws[fail_first:]):
            return seed
    raise AssertionError("no seed")


class SchedulerTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rd-sched-")
        self.saved = {k: os.environ.get(k) for k in HOST_ENV}
        os.environ.update(HOST_ENV)  # the servers' own environment: bogus
        self.cleanups = []

    def tearDown(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:
                pass
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(self.tmp, ignore_errors=True)

    def server(self, data):
        s = Server(data, "--listen", "127.0.0.1:0", "--max-concurrent-runs", "3")
        self.cleanups.append(lambda: s.proc.poll() is None and (s.proc.kill(), s.wait()))
        return s

    def setup_project(self, s, token, name, emu, sources, prod_keys=True):
        self.assertEqual(api(s.url, "POST", "/v1/projects", token, {"name": name})[0], 201)
        prod = {"connector.wh.endpoint_url": emu.endpoint}
        if prod_keys:
            prod.update({"connector.wh.aws_access_key_id": KEY, "connector.wh.aws_secret_access_key": SECRET})
        dev = {"connector.wh.aws_access_key_id": "AKIDDEVONLY", "connector.wh.aws_secret_access_key": "dev-only",
               "connector.wh.endpoint_url": "http://127.0.0.1:9"}
        for env, values in (("prod", prod), ("dev", dev)):
            st, body = api(s.url, "PATCH", "/v1/projects/%s/variables/%s" % (name, env), token, {"set": values})
            self.assertEqual(st, 200, body)
        self.deploy(s, token, name, sources)

    def deploy(self, s, token, name, sources):
        st, body = raw_call(s.url, "POST", "/v1/projects/%s/deployments?environment=prod" % name, token,
                            archive(project_files(name, sources)), "application/gzip")
        self.assertEqual(st, 201, body)
        return body["version"]

    # ---- server A --------------------------------------------------------------------------------------

    def scenario_a(self):
        emu = emulator()
        self.cleanups.append(emu.cleanup)
        hook = Receiver()
        self.cleanups.append(hook.close)
        data = os.path.join(self.tmp, "a")
        s = self.server(data)
        token = s.token
        store = Store(data)
        notify = "notify: {webhook: \"%s\", on: [failure, recovery]}\n" % hook.url
        sources = {"orders": "refresh: {every: 2s}\nsql: select sale_id, quantity from sales\n",
                   "broken": "refresh: {every: 2s}\n" + notify + "sql: select * from no_such_table\n",
                   "slow": "refresh: {every: 1s}\nsql: " + SLOW + "\n"}
        self.setup_project(s, token, "shop", emu, sources)
        self.setup_project(s, token, "nokeys", emu, {"a": "refresh: {every: 2s}\nsql: select 1 as x\n"},
                           prod_keys=False)

        # the schedule fires on time, with prod's keys (the host's and dev's would fail)
        def ended_runs():
            rs = [r for r in store.runs("shop", "orders") if r["trigger"] == "schedule"]
            return len(rs) >= 3 and all(r["state"] in ("success", "skipped", "failed") for r in rs[:3]) and rs
        runs = wait_until(ended_runs, 20)
        self.assertTrue(runs, store.runs("shop", "orders"))
        # on a loaded machine a run may outlast its 2 s: the slot's run is then recorded skipped
        self.assertEqual(runs[0]["state"], "success", runs)
        self.assertLessEqual({r["state"] for r in runs[:3]}, {"success", "skipped"}, runs)
        gaps = [b["queued_at"] - a["queued_at"] for a, b in zip(runs, runs[1:3])]
        for g in gaps:
            self.assertTrue(1500 <= g <= 2600, gaps)
        self.assertEqual(runs[0]["rows"], 200)
        self.assertEqual(runs[0]["triggered_by"], "scheduler")
        self.assertEqual(runs[0]["version"], 1)
        log0 = store.log(runs[0]["id"])
        self.assertTrue(any("attempt 1 of 1 started (version 1)" in l for l in log0), log0)
        self.assertTrue(any(l.startswith("success: 200 rows") for l in log0), log0)

        # the failing source beside them: failed with its error, and a failure event
        broken = wait_until(lambda: [r for r in store.runs("shop", "broken") if r["state"] == "failed"], 10)
        self.assertTrue(broken)
        self.assertIn("no_such_table", broken[0]["error"])
        self.assertTrue(wait_until(lambda: hook.events, 10))
        ev = hook.json_events()[0]
        self.assertEqual((ev["event"], ev["project"], ev["source"], ev["state"], ev["version"], ev["trigger"]),
                         ("failure", "shop", "broken", "failed", 1, "schedule"))
        self.assertIn("no_such_table", ev["error"])
        path, headers, body = hook.events[0]
        self.assertIn("application/json", headers.get("Content-Type", ""))
        self.assertTrue(headers.get("User-Agent", "").startswith("redduck-server/"))
        self.assertNotIn(SECRET.encode(), body)

        # a project without prod keys fails naming the keys to set (the host's AWS_ACCESS_KEY_ID unused)
        nk = wait_until(lambda: [r for r in store.runs("nokeys", "a") if r["state"] == "failed"], 10)
        self.assertTrue(nk)
        self.assertIn("connector.wh.aws_access_key_id", nk[0]["error"])
        self.assertIn("the variables of prod", nk[0]["error"])

        # a fix deployed: the next run succeeds, and a recovery event follows
        sources["broken"] = "refresh: {every: 2s}\n" + notify + "sql: select sale_id from sales where sale_id < 4\n"
        self.assertEqual(self.deploy(s, token, "shop", sources), 2)
        self.assertTrue(wait_until(lambda: [r for r in store.runs("shop", "broken") if r["state"] == "success"], 10))
        self.assertTrue(wait_until(lambda: any(e["event"] == "recovery" for e in hook.json_events()), 10))
        rec = [e for e in hook.json_events() if e["event"] == "recovery"][0]
        self.assertEqual((rec["source"], rec["state"], rec["version"]), ("broken", "success", 2))
        self.assertIsNone(rec["error"])

        # the slow source (every 1s, each run ~2 s): skipped runs, never two at once
        slow_ok = wait_until(lambda: [r for r in store.runs("shop", "slow") if r["state"] == "success"], 20)
        self.assertTrue(slow_ok, store.runs("shop", "slow"))
        self.assertTrue(wait_until(lambda: [r for r in store.runs("shop", "slow") if r["state"] == "skipped"], 10))
        done = [r for r in store.runs("shop", "slow") if r["state"] in ("success", "failed")]
        for a, b in zip(done, done[1:]):
            self.assertLessEqual(a["finished_at"], b["started_at"], done)

        # snapshots: the current one's bytes hash to its sha256; at most 3 files kept
        snap = store.rows("SELECT s.* FROM snapshots s JOIN projects p ON p.id = s.project_id WHERE p.name = 'shop' "
                          "ORDER BY s.id DESC LIMIT 1")[0]
        with open(snap["path"], "rb") as f:
            blob = f.read()
        self.assertEqual(hashlib.sha256(blob).hexdigest(), snap["sha256"])
        self.assertEqual(len(blob), snap["size"])
        self.assertEqual(os.stat(snap["path"]).st_mode & 0o777, 0o600)
        names = [t["name"] for t in json.loads(snap["tables_json"])]
        self.assertIn("orders", names)
        self.assertEqual(names, sorted(names))
        snapdir = os.path.join(data, "projects", "shop", "snapshots")
        self.assertTrue(wait_until(lambda: len([f for f in os.listdir(snapdir) if f.endswith(".duckdb")
                                                and not f.startswith(".")]) <= 3, 5))

        # SIGTERM during the slow ingest: cancelled, its previous table intact, exit 0
        def slow_running():
            rs = [r for r in store.runs("shop", "slow") if r["state"] == "running"]
            return rs and any(l == "phase unload" for l in store.log(rs[-1]["id"])) and rs[-1]
        running = wait_until(slow_running, 15)
        self.assertTrue(running)
        self.assertEqual(s.stop(), 0, s.stderr)
        after = [r for r in store.runs("shop", "slow") if r["id"] == running["id"]][0]
        self.assertEqual(after["state"], "cancelled", after)
        self.assertEqual(store.rows("SELECT count(*) AS n FROM runs WHERE state IN ('queued', 'running')")[0]["n"], 0)
        q = subprocess.run([REDDUCK, "query", os.path.join(data, "projects", "shop", "data.duckdb"),
                            "select count(*) as n from slow", "--csv"], capture_output=True, text=True, timeout=30)
        self.assertEqual(q.returncode, 0, q.stderr)
        last_ok = [r for r in store.runs("shop", "slow") if r["state"] == "success"][-1]
        self.assertGreater(last_ok["rows"], 0)
        self.assertEqual(q.stdout.split(), ["n", str(last_ok["rows"])])  # the last success's table

        # the server log: one line per run start and end; no value, key or webhook token anywhere
        log = s.stderr + s.stdout
        self.assertIn("scheduler: 0 projects, 0 scheduled sources", s.stdout)
        self.assertIn("shop/orders success: 200 rows", log)
        for secret in (SECRET, KEY, HOST_ENV["AWS_SECRET_ACCESS_KEY"], "dev-only", WEBHOOK_TOKEN):
            self.assertNotIn(secret, log)
        lines = "\n".join(r["line"] for r in store.rows("SELECT line FROM run_logs"))
        for secret in (SECRET, KEY, "dev-only", WEBHOOK_TOKEN):
            self.assertNotIn(secret, lines)

    # ---- server B ------------------------------------------------------------------------------------

    def scenario_b(self):
        emu = emulator("--faults", "data.execute.fail=0.5", "--seed", str(fault_seed()))
        self.cleanups.append(emu.cleanup)
        data = os.path.join(self.tmp, "b")
        s = self.server(data)
        store = Store(data)
        self.setup_project(s, s.token, "cu", emu, {
            "flaky": "refresh: {every: 2s, retry: {attempts: 3, backoff: 1s}}\nsql: select sale_id from sales\n"})
        # (a slot passing during the retry's wait is recorded skipped: the first run is the first not skipped)
        first = wait_until(lambda: [r for r in store.runs("cu", "flaky")
                                    if r["state"] not in ("queued", "running", "skipped")], 15)
        self.assertTrue(first)
        r = first[0]
        self.assertEqual((r["state"], r["attempts"], r["rows"]), ("success", 2, 200), r)
        log = store.log(r["id"])
        self.assertTrue(any(l.startswith("attempt 1 failed: ") for l in log), log)
        self.assertIn("retrying in 1.0 s (attempt 2 of 3)", log)
        self.assertTrue(any(l.startswith("attempt 2 of 3 started") for l in log), log)

        # stopped ~5 s (two slots or more pass), started again: exactly one catch-up run
        self.assertEqual(s.stop(), 0, s.stderr)
        stopped = time.time()
        time.sleep(5)
        s2 = self.server(data)
        self.assertIn("scheduler: 1 project, 1 scheduled source", s2.stdout)
        self.assertTrue(wait_until(lambda: [r for r in store.runs("cu", "flaky") if r["trigger"] == "catch-up"], 5))
        time.sleep(2.5)
        catchups = [r for r in store.runs("cu", "flaky") if r["trigger"] == "catch-up"]
        self.assertEqual(len(catchups), 1, catchups)
        self.assertGreater(catchups[0]["queued_at"] / 1000.0, stopped + 4)
        self.assertEqual(s2.stop(), 0, s2.stderr)

    def test_scheduler(self):
        in_parallel(lambda fn: fn(), [self.scenario_a, self.scenario_b], workers=2)


if __name__ == "__main__":
    unittest.main()
