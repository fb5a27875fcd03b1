"""Projects against the emulator: `redduck run` (a failing source beside passing ones, the run history,
incremental refresh twice in a row moving only new rows, explicit keys from .env when host access is off,
`--check` without AWS) and `redduck doctor` (all ✓ for a full identity; for principals missing each
permission, a ✗ naming the IAM action)."""
import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import time
import unittest

import boto3

from emulator_fixture import REDDUCK, Emulator, identities, wait_until, write_file
from test_query import create_database

ADMIN = ("AKIDADMIN", "admin-secret")
DENIED = {
    "nogetcreds": "redshift-serverless:GetCredentials",
    "noexecute": "redshift-data:ExecuteStatement",
    "nodescribe": "redshift-data:DescribeStatement",
    "noresult": "redshift-data:GetStatementResult",
    "nocancel": "redshift-data:CancelStatement",
    "nolist": "s3:ListBucket",
    "noget": "s3:GetObject",
    "nodelete": "s3:DeleteObject",
}


def config():
    return identities([("admin", ADMIN[0], ADMIN[1], ["*"])], denials=DENIED,
                      roles=[{"name": "redshift-unload", "allow": ["s3:*"], "default": True},
                             {"name": "readonly", "allow": ["s3:GetObject", "s3:ListBucket"]}],
                      workgroups=["demo"], clusters=["redshift-cluster-1"], buckets=["redduck-staging"])


def write(path, text):
    write_file(path, textwrap.dedent(text))


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(args=["--sample", "sales:rows=5000", "--slices", "3"], config=config())

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="rd-proj-")
        write(os.path.join(self.dir, "redduck.yaml"), "name: t\nduckdb: data/t.duckdb\nparallel: 2\n")
        write(os.path.join(self.dir, "connectors", "wh.yaml"), """\
            type: redshift
            workgroup: demo
            database: dev
            region: us-east-1
            output_location: s3://redduck-staging/proj/
            """)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def env(self, user=None):
        key, secret = ADMIN if user is None else ("AKID" + user.upper(), user + "-secret")
        return self.emu.env(key=key, secret=secret)

    def redduck(self, *args, user=None, env=None):
        return subprocess.run([REDDUCK, *args], capture_output=True, text=True, env=env or self.env(user),
                              timeout=300)

    def query(self, sql):
        p = self.redduck("query", os.path.join(self.dir, "data", "t.duckdb"), sql, "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def run_sql(self, sql):
        c = boto3.client("redshift-data", endpoint_url=self.emu.endpoint, region_name="us-east-1",
                         aws_access_key_id=ADMIN[0], aws_secret_access_key=ADMIN[1])
        sid = c.execute_statement(WorkgroupName="demo", Database="dev", Sql=sql)["Id"]
        d = wait_until(lambda: (lambda d: d if d["Status"] in ("FINISHED", "FAILED", "ABORTED") else None)(
            c.describe_statement(Id=sid)), timeout=60)
        self.assertEqual(d["Status"], "FINISHED", d.get("Error"))

    def assertStagingClean(self):
        s3 = boto3.client("s3", endpoint_url=self.emu.endpoint, region_name="us-east-1",
                          aws_access_key_id=ADMIN[0], aws_secret_access_key=ADMIN[1])
        self.assertEqual(s3.list_objects_v2(Bucket="redduck-staging", Prefix="proj/").get("KeyCount", 0), 0)


class ProjectTest(Base):
    def test_failing_source_beside_passing_ones_and_history(self):
        write(os.path.join(self.dir, "sources", "sales.yaml"), "connector: wh\nsql: select * from sales\n")
        write(os.path.join(self.dir, "sources", "broken.yaml"), "connector: wh\nsql: select * from no_such_table\n")
        write(os.path.join(self.dir, "sources", "stores.yaml"),
              "sql: select store_id, count(*) as n from sales group by store_id\nvia: data-api\n"
              "table_name: store_counts\n")
        p = self.redduck("run", self.dir, "--json")
        self.assertEqual(p.returncode, 101, p.stderr)
        out = json.loads(p.stdout)
        by = {s["source"]: s for s in out["sources"]}
        self.assertEqual(by["sales"]["status"], "ok")
        self.assertEqual(by["sales"]["rows"], 5000)
        self.assertEqual(by["stores"]["status"], "ok")
        self.assertEqual(by["broken"]["status"], "failed")
        self.assertIn("no_such_table", by["broken"]["error"])
        self.assertEqual(out["failed"], 1)
        self.assertEqual(self.query("select count(*) as n from sales"), [{"n": 5000}])
        self.assertEqual(self.query("select sum(n) as n from store_counts"), [{"n": 5000}])
        runs = self.query("select source, status, rows from _redduck_runs order by source")
        self.assertEqual([(r["source"], r["status"]) for r in runs],
                         [("broken", "failed"), ("sales", "ok"), ("stores", "ok")])
        # run one named source; its previous table is replaced, the others untouched
        p = self.redduck("run", self.dir, "sales")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("1 of 1 sources succeeded", p.stdout)
        self.assertEqual(len(self.query("select * from _redduck_runs")), 4)

    def test_incremental_refresh_moves_only_new_rows(self):
        self.run_sql("create table events (id integer, updated_at timestamp, v varchar(20))")
        self.run_sql("insert into events values (1, '2024-01-01 00:00:00', 'a'), (2, '2024-01-02 00:00:00', 'b'), "
                     "(3, '2024-01-03 00:00:00', 'c')")
        write(os.path.join(self.dir, "sources", "events.yaml"), """\
            connector: wh
            table: events
            incremental:
              column: updated_at
              unique_key: id
            """)
        p = self.redduck("run", self.dir, "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["sources"][0]["rows"], 3)
        # nothing new: nothing moves
        p = self.redduck("run", self.dir, "--json")
        first = json.loads(p.stdout)["sources"][0]
        self.assertEqual((first["rows"], first["watermark"]), (0, "2024-01-03 00:00:00"))
        # two new rows and one updated row
        self.run_sql("insert into events values (4, '2024-01-04 00:00:00', 'd'), (5, '2024-01-05 00:00:00', 'e')")
        self.run_sql("update events set v = 'a2', updated_at = '2024-01-06 00:00:00' where id = 1")
        p = self.redduck("run", self.dir, "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["sources"][0]["rows"], 3)
        rows = self.query("select id, v from events order by id")
        self.assertEqual(rows, [{"id": 1, "v": "a2"}, {"id": 2, "v": "b"}, {"id": 3, "v": "c"}, {"id": 4, "v": "d"},
                                {"id": 5, "v": "e"}])
        self.assertStagingClean()

    def test_incremental_watermark_is_quoted_as_a_redshift_literal(self):
        # Redshift reads \\ in a string literal as one backslash and \c as c: a watermark b\c sent unescaped
        # would become bc and skip the new row b] (which sorts between b\c and bc)
        self.run_sql("create table keys (k varchar(10))")
        self.run_sql("insert into keys values ('a'), ('b\\\\c')")
        write(os.path.join(self.dir, "sources", "keys.yaml"), "sql: select k from keys\nincremental:\n  column: k\n")
        p = self.redduck("run", self.dir, "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["sources"][0]["rows"], 2)
        self.assertEqual(self.query("select max(k) as k from keys"), [{"k": "b\\c"}])
        self.run_sql("insert into keys values ('b]')")
        p = self.redduck("run", self.dir, "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        first = json.loads(p.stdout)["sources"][0]
        self.assertEqual((first["watermark"], first["rows"]), ("b\\c", 1))
        self.assertEqual(self.query("select k from keys order by k"), [{"k": "a"}, {"k": "b\\c"}, {"k": "b]"}])

    def test_incremental_watermark_of_any_length(self):
        # a watermark was cut to 127 bytes: every run re-fetched everything and appended duplicates
        prefix = "p" * 300
        self.run_sql("create table longkeys (k varchar(400))")
        self.run_sql("insert into longkeys values ('%s1'), ('%s2'), ('%s3')" % (prefix, prefix, prefix))
        write(os.path.join(self.dir, "sources", "longkeys.yaml"),
              "sql: select k from longkeys\nincremental:\n  column: k\n")
        for expected in (3, 0, 0):
            p = self.redduck("run", self.dir, "--json")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(p.stdout)["sources"][0]["rows"], expected)
        self.assertEqual(json.loads(p.stdout)["sources"][0]["watermark"], prefix + "3")
        self.assertEqual(self.query("select count(*) as n, count(distinct k) as d from longkeys"), [{"n": 3, "d": 3}])
        runs = self.query("select watermark from _redduck_runs order by finished_at")
        self.assertEqual([r["watermark"] for r in runs], [None, prefix + "3", prefix + "3"])

    def test_reserved_table_names_are_refused(self):
        env = self.env()
        env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # refused before any AWS call
        for name in ("_redduck_runs", "_REDDUCK_anything"):
            with self.subTest(name=name):
                write(os.path.join(self.dir, "sources", "hist.yaml"), "connector: wh\nsql: select 1\ntable_name: %s\n"
                      % name)
                for args in (("run", self.dir, "--check"), ("run", self.dir)):
                    p = self.redduck(*args, env=env)
                    self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                    self.assertIn("hist.yaml:3", p.stderr)
                    self.assertIn("reserved", p.stderr)
                p = self.redduck("ingest", "--workgroup", "demo", "--sql", "select 1", "--into",
                                 os.path.join(self.dir, "x.duckdb:" + name), env=env)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("reserved", p.stderr)
                self.assertFalse(os.path.exists(os.path.join(self.dir, "x.duckdb")))
        # a file named after a reserved name needs table_name
        os.remove(os.path.join(self.dir, "sources", "hist.yaml"))
        write(os.path.join(self.dir, "sources", "_redduck_runs.yaml"), "connector: wh\nsql: select 1\n")
        p = self.redduck("run", self.dir, "--check", env=env)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("reserved", p.stderr)
        self.assertIn("table_name", p.stderr)

    def test_a_bad_connector_region_is_refused_naming_the_connector(self):
        # the region becomes part of hostnames: 'evil.example/#' would send signed requests elsewhere
        write(os.path.join(self.dir, "connectors", "wh.yaml"), "type: redshift\nworkgroup: demo\n"
              "region: 'evil.example/#'\n")
        write(os.path.join(self.dir, "sources", "one.yaml"), "sql: select 1 as x\n")
        env = self.env()
        env.pop("AWS_ENDPOINT_URL", None)  # the AWS hostname would be built from the region
        env["HTTPS_PROXY"] = env["HTTP_PROXY"] = "http://127.0.0.1:9"  # and anything sent would fail here
        p = self.redduck("run", self.dir, "--json", env=env)
        self.assertEqual(p.returncode, 101, p.stderr)
        error = json.loads(p.stdout)["sources"][0]["error"]
        self.assertIn("connector wh", error)
        self.assertIn("region", error)
        self.assertNotIn("127.0.0.1:9", error)

    def test_a_failed_history_write_fails_the_run(self):
        # _redduck_runs exists with another shape: the INSERT fails, and the run must say so (it exited 0)
        os.makedirs(os.path.join(self.dir, "data"))
        create_database(os.path.join(self.dir, "data", "t.duckdb"), ["create table _redduck_runs (x integer)"])
        write(os.path.join(self.dir, "sources", "one.yaml"), "connector: wh\nsql: select 1 as x\nvia: data-api\n")
        p = self.redduck("run", self.dir, "--json")
        self.assertEqual(p.returncode, 101, p.stderr)
        item = json.loads(p.stdout)["sources"][0]
        self.assertEqual(item["status"], "failed")
        self.assertIn("_redduck_runs", item["error"])
        self.assertIn("loaded 1 rows into one", item["error"])

    def test_explicit_keys_from_env_when_host_access_is_off(self):
        write(os.path.join(self.dir, "connectors", "wh.yaml"), """\
            type: redshift
            workgroup: demo
            region: us-east-1
            allow_host_access: false
            """)
        write(os.path.join(self.dir, "sources", "one.yaml"), "sql: select 1 as x\n")
        p = self.redduck("run", self.dir)
        self.assertEqual(p.returncode, 101, p.stderr)
        self.assertIn("connector.wh.aws_access_key_id", p.stderr)
        # the keys in .env (the environment's admin keys are not used: host access is off)
        env = self.env()
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = "AKIDNOEXECUTE", "noexecute-secret"
        # `redduck env configure` asks for exactly the keys the connector needs (here: from a pipe)
        p = subprocess.run([REDDUCK, "env", "configure", self.dir], input="%s\n%s\n" % ADMIN, capture_output=True,
                           text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("connector.wh.aws_access_key_id,connector.wh.aws_secret_access_key", p.stderr)
        self.assertEqual(os.stat(os.path.join(self.dir, ".env")).st_mode & 0o777, 0o600)
        p = self.redduck("env", "show", self.dir, env=env)
        self.assertIn("connector.wh.aws_access_key_id", p.stdout)
        self.assertNotIn(ADMIN[1], p.stdout)
        p = self.redduck("run", self.dir, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn(ADMIN[1], p.stdout + p.stderr)

    def test_check_finds_errors_without_aws(self):
        write(os.path.join(self.dir, "sources", "a.yaml"), "connector: nope\nsql: select 1\n")
        env = self.env()
        env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # nothing listens: --check must not need it
        p = self.redduck("run", self.dir, "--check", env=env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("a.yaml:1", p.stderr)
        self.assertIn("nope", p.stderr)
        write(os.path.join(self.dir, "sources", "a.yaml"), "connector: wh\nsql: select 1\n")
        p = self.redduck("run", self.dir, "--check", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("1 source", p.stdout)


class DoctorTest(Base):
    def doctor(self, user=None, role=None):
        if role:
            write(os.path.join(self.dir, "connectors", "wh.yaml"), """\
                type: redshift
                workgroup: demo
                region: us-east-1
                output_location: s3://redduck-staging/proj/
                role_arn: %s
                """ % role)
        p = self.redduck("doctor", self.dir, "--json", user=user)
        return p, (json.loads(p.stdout)[0]["checks"] if p.stdout.strip() else [])

    def test_all_checks_pass_for_a_full_identity(self):
        p, checks = self.doctor()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(len(checks), 10)
        self.assertTrue(all(c["result"] == "ok" for c in checks), checks)
        self.assertNotIn("Password", p.stdout)
        self.assertStagingClean()
        # the human table too
        p = self.redduck("doctor", self.dir)
        self.assertIn("✓", p.stdout)
        self.assertIn("all checks passed", p.stdout)

    def test_each_missing_permission_is_named(self):
        for user, action in DENIED.items():
            with self.subTest(user=user):
                p, checks = self.doctor(user=user)
                self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                failed = [c for c in checks if c["result"] == "failed"]
                self.assertTrue(failed, checks)
                self.assertIn(action, [c["action"] for c in failed])
                self.assertNotIn(user + "-secret", p.stdout + p.stderr)
                h = self.redduck("doctor", self.dir, user=user)
                self.assertIn("✗", h.stdout)
                self.assertIn("grant: " + action, h.stdout)

    def test_unload_role_without_put_object(self):
        p, checks = self.doctor(role="arn:aws:iam::000000000000:role/readonly")
        self.assertEqual(p.returncode, 1)
        bad = [c for c in checks if c["result"] == "failed"]
        self.assertEqual(len(bad), 1, checks)
        self.assertIn("s3:PutObject", bad[0]["action"])
        self.assertIn("readonly", bad[0]["action"])


if __name__ == "__main__":
    unittest.main()
