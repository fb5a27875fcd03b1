"""test_pull_query.py — `redduck pull` and `redduck query --cloud` against a real `redduck server` and the
emulator (processes on loopback, port 0, stopped by the test or their lifetimes). A copy of examples/demo is
deployed with explicit prod keys and refreshed (`refresh --cloud --wait`); then, with no AWS variable in the
environment at all: a pull gives a DuckDB file whose tables and row counts are those `query --cloud` reports
(and whose bytes have the server's SHA-256); a second pull after the warehouse changed and another refresh
says what changed; `--tables sales` keeps one table and an unknown table is named; a pull cut by a loopback
proxy after some bytes leaves FILE.part and the next one resumes it with Range (the proxy sees it) to the right
SHA-256, and a part of another snapshot is started over (If-Range); a pull while a slow refresh runs gets the previous snapshot whole; `query --cloud` refuses INSERT,
ATTACH, COPY and read_csv with the server's message (exit 1), prints CSV and JSON as the local query does; no
secret is ever printed."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest

from emulator_fixture import REDDUCK, Emulator, clean_env, identities, wait_until, team_deploy, team_server
from test_cloud_cli import DEMO

LIFETIME = 240
AWS_KEY = "AKIDPULLRUNNER"
AWS_SECRET = "aws-pull-s3cr3t-Zq8Wm3Kp"


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class CuttingProxy:
    """A loopback TCP proxy to the server: the first snapshot download through it is cut after `cut` bytes of
    the answer; it records every request line and Range header the client sent."""

    def __init__(self, target_port, cut):
        self.target = target_port
        self.cut = cut
        self.cuts_left = 1
        self.requests = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.5)
        self.stopping = False
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()

    def accept_loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, client):
        server = socket.create_connection(("127.0.0.1", self.target))
        state = {"limit": None, "sent": 0}

        def up():
            try:
                while True:
                    data = client.recv(65536)
                    if not data:
                        break
                    text = data.decode("latin-1")
                    with self.lock:
                        for line in text.split("\r\n"):
                            if line.startswith(("GET ", "POST ")) or line.lower().startswith("range:"):
                                self.requests.append(line)
                        if "/snapshot HTTP" in text and self.cuts_left > 0:
                            self.cuts_left -= 1
                            state["limit"] = state["sent"] + self.cut
                    server.sendall(data)
            except OSError:
                pass

        t = threading.Thread(target=up, daemon=True)
        t.start()
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                limit = state["limit"]
                if limit is not None and state["sent"] + len(data) > limit:
                    client.sendall(data[:limit - state["sent"]])
                    break  # the cut: both sides closed mid-answer
                client.sendall(data)
                state["sent"] += len(data)
        except OSError:
            pass
        for s in (client, server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def stop(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(5)


class PullQueryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rd-pull-")
        cfg = identities([("runner", AWS_KEY, AWS_SECRET, ["*"])],
                         roles=[{"name": "redshift-unload", "allow": ["s3:*"], "default": True}],
                         workgroups=["demo"], buckets=["redduck-staging"])
        # some latency on every request: a refresh lasts long enough for a pull to run during it
        cls.emu = Emulator(args=["--sample", "sales:rows=200", "--faults", "latency.ms=40"], config=cfg,
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
        cls.work = os.path.join(cls.tmp, "work")  # where the pulls go (no redduck.yaml: --project)
        os.makedirs(cls.work)
        team_deploy(cls.server, cls.proj, cls.home, cls.emu.endpoint, AWS_KEY, AWS_SECRET)
        cls.viewer = cls.server.new_token("vera", "demo", "viewer")
        cls.tokens.append(cls.viewer)
        cls.refresh()

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        cls.emu.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, "the server did not stop cleanly: %r" % rc

    @classmethod
    def env_for(cls, token, server=None):
        env = clean_env(cls.home, REDDUCK_SERVER=server or cls.server.url, REDDUCK_TOKEN=token,
                        REDDUCK_CA_BUNDLE=None)
        assert not [k for k in env if k.startswith("AWS_") and k != "AWS_EC2_METADATA_DISABLED"
                    and k not in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")], env
        return env

    @classmethod
    def refresh(cls, wait=True):
        args = [REDDUCK, "refresh", "--cloud"] + (["--wait", "--timeout", "100"] if wait else [])
        before = cls.snapshot_id_now()
        p = subprocess.run(args, cwd=cls.proj, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL, env=cls.env_for(cls.server.token))
        assert p.returncode == 0, p.stdout + p.stderr
        if wait:  # the snapshot is published just after the runs end
            assert wait_until(lambda: cls.snapshot_id_now() not in (None, before), timeout=30), "no new snapshot"
        return p

    @classmethod
    def snapshot_id_now(cls):
        s, j = cls.server.api("GET", "/v1/projects/demo/snapshot/info")
        return j["id"] if s == 200 else None

    def redduck(self, *args, token=None, server=None, timeout=120):
        p = subprocess.run([REDDUCK] + list(args), cwd=self.work, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, env=self.env_for(token or self.viewer, server))
        for secret in self.tokens + [AWS_SECRET]:
            self.assertNotIn(secret, p.stdout + p.stderr)
        return p

    def cloud_counts(self):
        p = self.redduck("query", "--cloud", "demo", "--json",
                         "SELECT table_name AS t, estimated_size AS n FROM duckdb_tables() ORDER BY 1")
        self.assertEqual(p.returncode, 0, p.stderr)
        counts = {}
        for row in json.loads(p.stdout):
            if row["t"].startswith("_redduck"):
                continue
            q = self.redduck("query", "--cloud", "demo", "--json", 'SELECT count(*) AS n FROM "%s"' % row["t"])
            self.assertEqual(q.returncode, 0, q.stderr)
            counts[row["t"]] = json.loads(q.stdout)[0]["n"]
        return counts

    def local_counts(self, path):
        p = self.redduck("query", path, "--json",
                         "SELECT table_name AS t FROM duckdb_tables() WHERE NOT starts_with(table_name, '_redduck') "
                         "ORDER BY 1")
        self.assertEqual(p.returncode, 0, p.stderr)
        counts = {}
        for row in json.loads(p.stdout):
            q = self.redduck("query", path, "--json", 'SELECT count(*) AS n FROM "%s"' % row["t"])
            counts[row["t"]] = json.loads(q.stdout)[0]["n"]
        return counts

    # ---- in order: each builds on the snapshots of the ones before ------------------------------------------

    def test_1_pull_matches_the_cloud_query(self):
        p = self.redduck("pull", "--project", "demo")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        path = os.path.join(self.work, "demo.duckdb")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        s, info = self.server.api("GET", "/v1/projects/demo/snapshot/info")
        self.assertEqual(s, 200, info)
        self.assertEqual(sha256_of(path), info["sha256"])
        self.assertIn("pulled snapshot %d of demo into demo.duckdb" % info["id"], p.stdout)
        self.assertIn("sales: 200 rows", p.stdout)
        local = self.local_counts(path)
        self.assertEqual(local, self.cloud_counts())
        self.assertEqual(local["sales"], 200)
        self.assertEqual({t["name"]: t["rows"] for t in info["tables"] if not t["name"].startswith("_")}, local)
        self.assertFalse(os.path.exists(path + ".part"))
        # a pull with nothing new
        p = self.redduck("pull", "--project", "demo")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("is up to date: snapshot %d" % info["id"], p.stdout)
        self.assertIn("no changes since the last pull (snapshot %d)" % info["id"], p.stdout)

    def test_2_changes_since_the_last_pull(self):
        import boto3
        rs = boto3.session.Session().client(
            "redshift-data", endpoint_url=self.emu.endpoint, region_name="us-east-1",
            aws_access_key_id=AWS_KEY, aws_secret_access_key=AWS_SECRET)
        sid = rs.execute_statement(WorkgroupName="demo", Database="dev",
                                   Sql="insert into sales select * from sales limit 50")["Id"]
        for _ in range(200):
            st = rs.describe_statement(Id=sid)["Status"]
            if st in ("FINISHED", "FAILED", "ABORTED"):
                break
        self.assertEqual(st, "FINISHED")
        before = self.snapshot_id_now()
        self.refresh()
        self.assertNotEqual(self.snapshot_id_now(), before)
        p = self.redduck("pull", "--project", "demo")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("sales: 200 → 250 rows (+50)", p.stdout)
        self.assertNotIn("no changes", p.stdout)
        self.assertEqual(self.local_counts(os.path.join(self.work, "demo.duckdb"))["sales"], 250)

    def test_3_tables_keeps_one(self):
        p = self.redduck("pull", "--project", "demo", "--into", "only.duckdb", "--tables", "sales")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.local_counts(os.path.join(self.work, "only.duckdb")), {"sales": 250})
        p = self.redduck("pull", "--project", "demo", "--into", "bad.duckdb", "--tables", "sales,nosuch")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("no table nosuch", p.stderr)
        self.assertIn("sales", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.work, "bad.duckdb")))

    def test_4_a_broken_pull_resumes(self):
        proxy = CuttingProxy(int(self.server.url.rsplit(":", 1)[1]), cut=100000)
        try:
            url = "http://127.0.0.1:%d" % proxy.port
            target = os.path.join(self.work, "cut.duckdb")
            p = self.redduck("pull", "--project", "demo", "--into", "cut.duckdb", server=url)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("run `redduck pull` again to resume", p.stderr)
            self.assertTrue(os.path.exists(target + ".part"))
            have = os.path.getsize(target + ".part")
            self.assertGreater(have, 0)
            self.assertFalse(os.path.exists(target))
            p = self.redduck("pull", "--project", "demo", "--into", "cut.duckdb", server=url)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("resumed", p.stdout)
            with proxy.lock:
                self.assertIn("Range: bytes=%d-" % have, proxy.requests)
            s, info = self.server.api("GET", "/v1/projects/demo/snapshot/info")
            self.assertEqual(sha256_of(target), info["sha256"])
            self.assertFalse(os.path.exists(target + ".part"))
        finally:
            proxy.stop()

    def test_4b_a_part_of_another_snapshot_starts_over(self):
        target = os.path.join(self.work, "stale.duckdb")
        with open(target + ".part", "wb") as f:
            f.write(b"bytes of an older snapshot" * 100)
        with open(target + ".part.json", "w") as f:
            json.dump({"snapshot_id": 1, "sha256": "0" * 64, "size": 999999}, f)
        p = self.redduck("pull", "--project", "demo", "--into", "stale.duckdb")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("resumed", p.stdout)  # the server answered 200 to the If-Range of another snapshot
        s, info = self.server.api("GET", "/v1/projects/demo/snapshot/info")
        self.assertEqual(sha256_of(target), info["sha256"])
        self.assertFalse(os.path.exists(target + ".part"))
        self.assertFalse(os.path.exists(target + ".part.json"))

    def test_5_pull_during_a_refresh_gets_the_previous_snapshot(self):
        s, old = self.server.api("GET", "/v1/projects/demo/snapshot/info")
        self.refresh(wait=False)
        p = self.redduck("pull", "--project", "demo", "--into", "during.duckdb")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(sha256_of(os.path.join(self.work, "during.duckdb")), old["sha256"])
        self.assertIn("pulled snapshot %d " % old["id"], p.stdout)
        # the refresh goes on to publish a newer one
        self.assertTrue(wait_until(lambda: self.snapshot_id_now() != old["id"], timeout=60))

    def test_6_query_refusals_and_formats(self):
        for sql, word in [("INSERT INTO sales SELECT * FROM sales", "INSERT"),
                          ("ATTACH '/tmp/x.duckdb' AS x", "ATTACH"),
                          ("COPY sales TO '/tmp/out.csv'", "COPY"),
                          ("SELECT * FROM read_csv('/etc/passwd')", "never files")]:
            p = self.redduck("query", "--cloud", "demo", sql)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("refused", p.stderr)
            self.assertIn(word, p.stderr)
            self.assertEqual(p.stdout, "")
        p = self.redduck("query", "--cloud", "demo", "--csv",
                         "SELECT 1 AS a, 'x,y' AS b, NULL AS c, '' AS d UNION ALL SELECT 2, 'z', 3, 'w' ORDER BY a")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, 'a,b,c,d\n1,"x,y",,""\n2,z,3,w\n')
        p = self.redduck("query", "--cloud", "demo", "--json", "SELECT 1 AS a, 0.1 AS b, 'x' AS c")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), [{"a": 1, "b": "0.1", "c": "x"}])
        # the same text as the local query of the pulled file
        local = self.redduck("query", os.path.join(self.work, "demo.duckdb"), "--csv",
                             "SELECT currency, sales FROM revenue_by_currency ORDER BY 1")
        cloud = self.redduck("query", "--cloud", "demo", "--csv",
                             "SELECT currency, sales FROM revenue_by_currency ORDER BY 1")
        self.assertEqual(cloud.returncode, 0, cloud.stderr)
        self.assertEqual(cloud.stdout, local.stdout)
        p = self.redduck("query", "--cloud", "nosuchproject", "SELECT 1")
        self.assertEqual(p.returncode, 1, p.stderr)


if __name__ == "__main__":
    unittest.main()
