"""test_refresh_cli.py — `redduck refresh|status|logs --cloud` against a real `redduck server` and the emulator
(both processes on loopback, port 0, stopped by the test or by their lifetimes). A copy of examples/demo is
deployed with explicit keys in prod (connector.warehouse.aws_access_key_id / aws_secret_access_key /
endpoint_url as prod variables: the server forces allow_host_access off), then: `refresh --wait` queues and
follows the three sources to success (one line each), `status` shows them with their rows (and `--json` the
server's answer), `logs` prints a run's lines and `logs --follow` follows a run while it runs to its end, a
failing source makes `refresh --wait` and `logs --follow` exit 1 with the warehouse's error, a viewer's refresh is refused naming the role (exit 4), an unknown source is named (exit 1), the commands
without --cloud are usage errors, and no token or secret appears in any output."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from emulator_fixture import REDDUCK, Emulator, clean_env, identities, team_deploy, team_server
from test_cloud_cli import DEMO

LIFETIME = 240  # seconds: the server is killed by then whatever happens to the test
AWS_KEY = "AKIDREFRESHRUNNER"
AWS_SECRET = "aws-refresh-s3cr3t-Hq7Zp2Lw"
SOURCES = ("recent_sales", "revenue_by_currency", "sales")


class RefreshCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rd-refresh-")
        cfg = identities([("runner", AWS_KEY, AWS_SECRET, ["*"])],
                         roles=[{"name": "redshift-unload", "allow": ["s3:*"], "default": True}],
                         workgroups=["demo"], buckets=["redduck-staging"])
        # a little latency on every request, so a run lasts long enough to be followed while it runs
        cls.emu = Emulator(args=["--sample", "sales:rows=200", "--faults", "latency.ms=80"], config=cfg,
                           lifetime=LIFETIME)
        try:
            cls.server = team_server(os.path.join(cls.tmp, "server-data"))
        except Exception:
            cls.emu.cleanup()
            raise
        cls.server.set_lifetime(LIFETIME)
        cls.tokens = [cls.server.token]
        cls.home = os.path.join(cls.tmp, "home")
        os.makedirs(cls.home)
        cls.proj = os.path.join(cls.tmp, "demo")
        shutil.copytree(DEMO, cls.proj)
        team_deploy(cls.server, cls.proj, cls.home, cls.emu.endpoint, AWS_KEY, AWS_SECRET)
        cls.viewer = cls.server.new_token("vera", "demo", "viewer")
        cls.tokens.append(cls.viewer)

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        cls.emu.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, "the server did not stop cleanly: %r" % rc

    @classmethod
    def env_for(cls, token):
        return clean_env(cls.home, REDDUCK_SERVER=cls.server.url, REDDUCK_TOKEN=token, REDDUCK_CA_BUNDLE=None)

    def redduck(self, *args, token=None, timeout=120):
        p = subprocess.run([REDDUCK] + list(args), cwd=self.proj, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, env=self.env_for(token or self.server.token))
        self.no_secret(p.stdout + p.stderr, args)
        return p

    def no_secret(self, text, what):
        for secret in self.tokens + [AWS_SECRET]:
            self.assertNotIn(secret, text, "a secret leaked in the output of %s" % (what,))

    def status_json(self):
        p = self.redduck("status", "--cloud", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    # ---- the tests run in order: each builds on the runs of the ones before ---------------------------------

    def test_1_refresh_wait_then_status(self):
        p = self.redduck("refresh", "--cloud", "--wait", "--timeout", "100")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for s in SOURCES:
            self.assertRegex(p.stdout, r"(?m)^%s: run \d+ queued$" % s)
            self.assertRegex(p.stdout, r"(?m)^%s: success, \d+ rows, [0-9.]+ s \(run \d+\)$" % s)
        self.assertRegex(p.stdout, r"(?m)^sales: success, 200 rows, ")
        self.assertEqual(p.stderr, "")
        # a run is a success only once a snapshot holding its table is published: right after --wait, the
        # current snapshot has every source's table (the data a `redduck pull` would get now)
        s, info = self.server.api("GET", "/v1/projects/demo/snapshot/info")
        self.assertEqual(s, 200, info)
        self.assertEqual(sorted(t["name"] for t in info["tables"] if not t["name"].startswith("_redduck")),
                         sorted(SOURCES), info)

        # one audit row for the manual refresh, naming the sources
        s, audit = self.server.api("GET", "/v1/projects/demo/audit")
        self.assertEqual(s, 200, audit)
        refreshes = [e for e in audit["events"] if e["action"] == "refresh"]
        self.assertEqual(len(refreshes), 1, audit)
        self.assertEqual(refreshes[0]["actor"], "admin")
        self.assertEqual(sorted(refreshes[0]["detail"]["sources"]), list(SOURCES))

        j = self.status_json()
        self.assertEqual(j["project"], "demo")
        self.assertEqual(j["active_version"], 1)
        self.assertEqual([x["name"] for x in j["sources"]], list(SOURCES))
        for x in j["sources"]:
            self.assertEqual(x["last_run"]["state"], "success", x)
            self.assertEqual(x["last_run"]["trigger"], "manual")
            self.assertEqual(x["last_run"]["triggered_by"], "admin")
            self.assertFalse(x["running"])
        sales = j["sources"][2]
        self.assertEqual(sales["table"], "sales")
        self.assertEqual(sales["last_run"]["rows"], 200)
        self.assertEqual(sales["schedule"], "none")
        self.assertIsNone(sales["next_run"])
        self.assertIsNotNone(j["snapshot"], j)

        p = self.redduck("status", "--cloud")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0], "demo: version 1 on %s" % self.server.url)
        self.assertRegex(lines[1], r"^SOURCE +LAST RUN +STATUS +ROWS +DURATION +NEXT RUN$")
        rows = {l.split()[0]: l for l in lines[2:5]}
        self.assertEqual(sorted(rows), sorted(SOURCES))
        for s in SOURCES:
            self.assertIn(" success ", rows[s])
            self.assertRegex(rows[s], r" (ago|just now) ")
        self.assertRegex(rows["sales"], r" 200 ")
        self.assertRegex(rows["sales"], r"manual$")
        # the columns line up: every row has its STATUS where the header has it
        col = lines[1].index("STATUS")
        for s in SOURCES:
            self.assertEqual(rows[s][col:col + 7], "success")
        self.assertRegex(lines[5], r"^snapshot \d+: ")

    def test_2_logs_of_the_latest_run(self):
        runs = {x["name"]: x["last_run"] for x in self.status_json()["sources"]}
        p = self.redduck("logs", "--cloud", "sales")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0], "run %d of sales (manual by admin, queued %s): success" %
                         (runs["sales"]["id"], runs["sales"]["queued_at"]))
        self.assertGreater(len(lines), 2, p.stdout)
        for l in lines[1:]:
            self.assertRegex(l, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  \S")
        # --run: the same run by its id; SOURCE may be left out
        p2 = self.redduck("logs", "--cloud", "--run", str(runs["sales"]["id"]))
        self.assertEqual(p2.returncode, 0, p2.stderr)
        self.assertEqual(p2.stdout, p.stdout)
        # a run of another source is refused
        p = self.redduck("logs", "--cloud", "sales", "--run", str(runs["recent_sales"]["id"]))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("is a run of recent_sales, not of sales", p.stderr)
        # no such run, no runs of a source
        p = self.redduck("logs", "--cloud", "--run", "999999")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("project demo has no run 999999", p.stderr)
        p = self.redduck("logs", "--cloud", "nosuch")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("source nosuch of demo has no runs", p.stderr)

    def test_3_follow_a_running_run(self):
        p = self.redduck("refresh", "--cloud", "sales")
        self.assertEqual(p.returncode, 0, p.stderr)
        m = re.search(r"^sales: run (\d+) queued$", p.stdout, re.M)
        self.assertIsNotNone(m, p.stdout)
        run = int(m.group(1))
        f = self.redduck("logs", "--cloud", "sales", "--follow")
        self.assertEqual(f.returncode, 0, f.stdout + f.stderr)
        lines = f.stdout.splitlines()
        # it started on the run while it had not ended, and followed it to its end
        self.assertRegex(lines[0], r"^run %d of sales \(manual by admin, queued \S+\): (queued|running)$" % run)
        self.assertEqual(lines[-1], "run %d of sales: success" % run)
        self.assertGreater(len(lines), 3, f.stdout)
        # every line once, in order: the same lines as reading the finished run
        again = self.redduck("logs", "--cloud", "--run", str(run))
        self.assertEqual(again.stdout.splitlines()[1:], lines[1:-1])

    def test_4_viewer_reads_but_may_not_refresh(self):
        p = self.redduck("status", "--cloud", token=self.viewer)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.redduck("logs", "--cloud", "sales", token=self.viewer)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.redduck("refresh", "--cloud", token=self.viewer)
        self.assertEqual(p.returncode, 4, p.stdout + p.stderr)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
        self.assertIn("the editor or admin role", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_5_unknown_source_named(self):
        before = len(self.server.api("GET", "/v1/projects/demo/runs")[1]["runs"])
        p = self.redduck("refresh", "--cloud", "sales", "nosuch")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
        self.assertIn("project demo has no source nosuch", p.stderr)
        self.assertIn("recent_sales, revenue_by_currency, sales", p.stderr)
        # nothing was queued, not even sales
        self.assertEqual(len(self.server.api("GET", "/v1/projects/demo/runs")[1]["runs"]), before)
        # an unknown project
        p = self.redduck("refresh", "--cloud", "--project", "nosuch")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("no project nosuch", p.stderr)

    def test_7_a_failing_run_fails_wait_and_follow(self):
        # a second project with one source the warehouse refuses (no such table)
        d = os.path.join(self.tmp, "broken")
        shutil.copytree(DEMO, d)
        for f in os.listdir(os.path.join(d, "sources")):
            os.remove(os.path.join(d, "sources", f))
        with open(os.path.join(d, "redduck.yaml"), "w") as f:
            f.write("name: broken\nduckdb: data/broken.duckdb\n")
        with open(os.path.join(d, "sources", "bad.yaml"), "w") as f:
            f.write("connector: warehouse\nsql: select * from no_such_table\n")
        self.assertEqual(self.server.api("POST", "/v1/projects", body={"name": "broken"})[0], 201)
        s, j = self.server.api("PATCH", "/v1/projects/broken/variables/prod", body={"set": {
            "connector.warehouse.aws_access_key_id": AWS_KEY,
            "connector.warehouse.aws_secret_access_key": AWS_SECRET,
            "connector.warehouse.endpoint_url": self.emu.endpoint}})
        self.assertEqual(s, 200, j)
        p = subprocess.run([REDDUCK, "deploy", "--no-prompt"], cwd=d, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL, env=self.env_for(self.server.token))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = self.redduck("refresh", "--cloud", "--project", "broken", "--wait", "--timeout", "60")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"(?m)^bad: failed, [0-9.]+ s \(run \d+\): .*no_such_table")
        self.assertIn("1 of the runs failed", p.stderr)
        f = self.redduck("logs", "--cloud", "--project", "broken", "bad", "--follow")
        self.assertEqual(f.returncode, 1, f.stdout + f.stderr)
        self.assertRegex(f.stdout.splitlines()[-1], r"^run \d+ of bad: failed$")
        p = self.redduck("status", "--cloud", "--project", "broken")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^bad +(just now|\S+ ago) +failed ")  # "just now" within a second
        self.assertIn("no snapshot yet", p.stdout)

    def test_6_usage(self):
        for args, text in ((["refresh"], "refresh needs --cloud"), (["status"], "status needs --cloud"),
                           (["logs", "sales"], "logs needs --cloud"), (["logs", "--cloud"], "name the SOURCE"),
                           (["refresh", "--cloud", "--timeout", "5"], "--timeout needs --wait"),
                           (["refresh", "--cloud", "--wait", "--timeout", "x"], "--timeout is a number of seconds"),
                           (["logs", "--cloud", "a", "b"], "one source only"),
                           (["logs", "--cloud", "--run", "0"], "--run: '0' is not a run id")):
            with self.subTest(args=args):
                p = self.redduck(*args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(text, p.stderr)
                self.assertTrue(p.stderr.endswith("(see `redduck %s --help`)\n" % args[0]), p.stderr)
        for cmd in ("refresh", "status", "logs"):
            p = self.redduck(cmd, "--help")
            self.assertEqual(p.returncode, 0)
            self.assertTrue(p.stdout.startswith("usage: redduck %s --cloud" % cmd), p.stdout)


if __name__ == "__main__":
    unittest.main()
