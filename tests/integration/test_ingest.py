"""`redduck ingest` against the emulator: Serverless and cluster targets, every Redshift type round-tripped
exactly (checked against the emulator's own DuckDB file), empty results, many small files, LIMIT and tricky
quoting, cross-region bucket, KMS, denied permissions naming the IAM action, seeded faults ending with the
identical table, failures leaving the old table and an empty staging prefix, and Ctrl-C mid-download."""
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

import boto3

from emulator_fixture import REDDUCK, Emulator, finish, identities, in_parallel, wait_until

ADMIN = ("AKIDADMIN", "admin-secret")
DENIALS = {
    # user name: (denied action, how the ingest is aimed)
    "nogetcreds": "redshift-serverless:GetCredentials",
    "noiamcreds": "redshift:GetClusterCredentialsWithIAM",
    "noexecute": "redshift-data:ExecuteStatement",
    "nodescribe": "redshift-data:DescribeStatement",
    "nolist": "s3:ListBucket",
    "noget": "s3:GetObject",
    "nodelete": "s3:DeleteObject",
    "nocancel": "redshift-data:CancelStatement",
}
# users with several denials, not part of the one-denial sweep
MULTI_DENIALS = {
    "nowatch": ["redshift-data:DescribeStatement", "redshift-data:CancelStatement"],
}


def config():
    return identities([("admin", ADMIN[0], ADMIN[1], ["*"])], denials=dict(DENIALS, **MULTI_DENIALS),
                      roles=[{"name": "redshift-unload", "allow": ["s3:*"], "default": True}],
                      workgroups=["demo"], clusters=["redshift-cluster-1"], buckets=["redduck-staging"])


TYPED_DDL = ("create table typed (i2 smallint, i4 integer, i8 bigint, n numeric(38,10), n2 decimal(12,2), r real, "
             "d double precision, b boolean, c char(5), v varchar(100), dt date, ts timestamp, tstz timestamptz, "
             "t time, ttz timetz, vb varbyte, s super)")
TYPED_ROWS = ("insert into typed values "
              "(-32768, -2147483648, -9223372036854775808, 1234567890123456789012345678.0123456789, "
              "-9999999999.99, 1.5, 2.718281828459045, true, 'ab', 'it''s \"q\" \\\\ ünï 😀', '0001-01-01', "
              "'1999-12-31 23:59:59.999999', '2024-06-30 12:00:00+00', '00:00:00', '23:59:59.999999+00', "
              "from_hex('00ff10'), json_parse('{\"a\":[1,2,{\"b\":null}]}')), "
              "(32767, 2147483647, 9223372036854775807, -0.0000000001, 0, -3.4e38, 1e308, false, 'abcde', '', "
              "'9999-12-31', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '12:34:56.789', '01:02:03+00', "
              "from_hex(''), json_parse('\"str\"')), "
              "(null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, "
              "null)")
CHECKSUM = "select count(*) as n, md5(string_agg(cast(t as varchar), '|' order by sale_id)) as h from {} t"


class IngestBase(unittest.TestCase):
    emu_args = ["--sample", "sales:rows=20000", "--slices", "4", "--seed", "3"]

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(args=cls.emu_args, config=config())
        cls.work = tempfile.mkdtemp(prefix="rd-ingest-")

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()
        shutil.rmtree(cls.work, ignore_errors=True)

    def env(self, user=None):
        key, secret = ADMIN if user is None else ("AKID" + user.upper(), user + "-secret")
        return self.emu.env(key=key, secret=secret)

    def ingest(self, *args, user=None, check=True, timeout=300):
        p = subprocess.run([REDDUCK, "ingest", *args], capture_output=True, text=True, env=self.env(user),
                           timeout=timeout)
        if check and p.returncode != 0:
            self.fail("redduck ingest %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
        return p

    def query(self, db, sql, check=True):
        p = subprocess.run([REDDUCK, "query", db, sql, "--json"], capture_output=True, text=True,
                           env=self.env(), timeout=120)
        if check and p.returncode != 0:
            self.fail("redduck query failed: %s" % p.stderr)
        return json.loads(p.stdout) if p.returncode == 0 else p

    def db(self, name):
        return os.path.join(self.work, name)

    def client(self, service):
        return boto3.client(service, endpoint_url=self.emu.endpoint, region_name="us-east-1",
                            aws_access_key_id=ADMIN[0], aws_secret_access_key=ADMIN[1])

    def run_sql(self, sql, **target):
        target = target or {"WorkgroupName": "demo"}
        c = self.client("redshift-data")
        sid = c.execute_statement(Database="dev", Sql=sql, **target)["Id"]
        d = wait_until(lambda: (lambda d: d if d["Status"] in ("FINISHED", "FAILED", "ABORTED") else None)(
            c.describe_statement(Id=sid)), timeout=60)
        self.assertEqual(d["Status"], "FINISHED", d.get("Error"))
        return d

    def staged_keys(self, prefix=""):
        s3 = self.client("s3")
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="redduck-staging", Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys

    def assertStagingEmpty(self):
        self.assertEqual(self.staged_keys(), [])


class TestIngest(IngestBase):
    def unload(self, *args, into, user=None, check=True, extra=()):
        return self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/runs", "--into", into, *args,
                           *extra, user=user, check=check)

    def test_serverless_and_cluster_paths_match(self):
        db = self.db("paths.duckdb")
        out = json.loads(self.unload("--sql", "select * from sales", "--json", into=db + ":wg").stdout)
        self.assertEqual(out["status"], "ok")
        self.assertEqual(out["rows"], 20000)
        self.assertEqual(out["files"], 4)
        self.assertTrue(out["staging"].startswith("s3://redduck-staging/runs/redduck-"))
        self.assertEqual(out["staged_deleted"], 5)  # 4 files + manifest
        # the same table on the cluster (IAM identity, then a database user)
        self.run_sql("create table orders (id integer, amount numeric(10,2))", ClusterIdentifier="redshift-cluster-1")
        self.run_sql("insert into orders values (1, 9.99), (2, 0.01)", ClusterIdentifier="redshift-cluster-1")
        self.ingest("--cluster-id", "redshift-cluster-1", "--staging", "s3://redduck-staging/runs", "--table",
                    "orders", "--into", db)
        self.assertEqual(self.query(db, "select id, amount::varchar as a from orders order by id"),
                         [{"id": 1, "a": "9.99"}, {"id": 2, "a": "0.01"}])
        self.ingest("--cluster-id", "redshift-cluster-1", "--db-user", "etl", "--sql", "select 42 as answer",
                    "--into", db + ":cl2")
        self.assertEqual(self.query(db, "select answer from cl2"), [{"answer": 42}])
        # UNLOAD and Data API paths give the identical table
        self.ingest("--workgroup", "demo", "--via", "data-api", "--sql", "select * from sales where sale_id <= 3000",
                    "--into", db + ":api")
        r = self.query(db, "select (select count(*) from (select * from wg where sale_id <= 3000 except all "
                           "select * from api)) as a, (select count(*) from (select * from api except all select * "
                           "from wg where sale_id <= 3000)) as b, (select count(*) from api) as n")
        self.assertEqual(r, [{"a": 0, "b": 0, "n": 3000}])
        self.assertStagingEmpty()

    def test_empty_result_creates_typed_empty_table(self):
        db = self.db("empty.duckdb")
        for via, table in (("unload", "e1"), ("data-api", "e2")):
            extra = () if via == "unload" else ("--via", "data-api")
            out = json.loads(self.unload("--sql", "select sale_id, unit_price, sale_time, receipt from sales "
                                         "where sale_id < 0", "--json", into=db + ":" + table, extra=extra).stdout)
            self.assertEqual(out["rows"], 0)
            cols = self.query(db, "select column_name, data_type from information_schema.columns where "
                                  "table_name = '%s' order by ordinal_position" % table)
            self.assertEqual([(c["column_name"], c["data_type"]) for c in cols],
                             [("sale_id", "BIGINT"), ("unit_price", "DECIMAL(12,2)"), ("sale_time", "TIME"),
                              ("receipt", "BLOB")])
            self.assertEqual(self.query(db, "select count(*) as n from " + table), [{"n": 0}])
        self.assertStagingEmpty()

    def test_limit_and_tricky_quoting(self):
        sql = ("/* leading comment with 'quote' */ select sale_id, 'it''s' as q1, '''' as q2, "
               "'back\\\\slash' as bs, 'tab\\tand\\'quote' as esc, '$$dollars$$' as dd, "
               "'-- not a comment' as dash, 'a;b' as semi, "
               "'Łódź ünï' as \"naïve col\" from sales where customer_name <> 'x''y' "
               "order by sale_id limit 7 -- trailing comment\n;")
        db = self.db("quote.duckdb")
        for via in ("unload", "data-api"):
            self.unload("--sql", sql, into=db + ":" + via.replace("-", "_"), extra=("--via", via))
            rows = self.query(db, "select * from %s order by sale_id" % via.replace("-", "_"))
            self.assertEqual(len(rows), 7)
            self.assertEqual(rows[0], {"sale_id": 1, "q1": "it's", "q2": "'", "bs": "back\\slash",
                                       "esc": "tab\tand'quote",
                                       "dd": "$$dollars$$", "dash": "-- not a comment", "semi": "a;b",
                                       "naïve col": "Łódź ünï"})

    def test_every_type_round_trips_exactly(self):
        self.run_sql(TYPED_DDL)
        self.run_sql(TYPED_ROWS)
        db = self.db("types.duckdb")
        self.unload("--table", "public.typed", into=db)  # table name defaults to "typed"
        self.unload("--table", "typed", into=db + ":typed_api", extra=("--via", "data-api"))
        for t in ("typed", "typed_api"):
            rows = self.query(db, "select i2, i4, i8, n::varchar as n, n2::varchar as n2, r, d, b, v, dt::varchar "
                                  "as dt, ts::varchar as ts, tstz::varchar as tstz, t::varchar as t, ttz::varchar "
                                  "as ttz, hex(vb) as vb, s from %s order by i2 nulls last" % t)
            self.assertEqual(rows[0], {"i2": -32768, "i4": -2147483648, "i8": -9223372036854775808,
                                       "n": "1234567890123456789012345678.0123456789", "n2": "-9999999999.99",
                                       "r": 1.5, "d": 2.718281828459045, "b": True, "v": "it's \"q\" \\ ünï 😀",
                                       "dt": "0001-01-01", "ts": "1999-12-31 23:59:59.999999",
                                       "tstz": "2024-06-30 12:00:00+00", "t": "00:00:00",
                                       "ttz": "23:59:59.999999+00", "vb": "00FF10", "s": '{"a":[1,2,{"b":null}]}'})
            self.assertEqual(rows[1]["i8"], 9223372036854775807)
            self.assertEqual(rows[1]["n"], "-0.0000000001")
            self.assertEqual(rows[1]["d"], 1e308)
            self.assertEqual(rows[1]["vb"], "")
            self.assertEqual(rows[1]["t"], "12:34:56.789")
            self.assertTrue(all(v is None for v in rows[2].values()), rows[2])
            types = self.query(db, "select column_name, data_type from information_schema.columns where "
                                   "table_name = '%s' and column_name in ('s', 't', 'ttz', 'vb', 'n', 'tstz') "
                                   "order by column_name" % t)
            self.assertEqual({r["column_name"]: r["data_type"] for r in types},
                             {"n": "DECIMAL(38,10)", "s": "JSON", "t": "TIME", "tstz": "TIMESTAMP WITH TIME ZONE",
                              "ttz": "TIME WITH TIME ZONE", "vb": "BLOB"})

    def test_many_small_files_and_parquet_format(self):
        emu = Emulator(args=["--sample", "sales:rows=3000", "--slices", "100"], config=config())
        try:
            env = emu.env(key=ADMIN[0], secret=ADMIN[1])
            d = os.path.join(self.work, "pq")
            p = subprocess.run([REDDUCK, "ingest", "--workgroup", "demo", "--staging", "s3://redduck-staging/p",
                                "--sql", "select * from sales", "--format", "parquet", "--into", d, "--json"],
                               capture_output=True, text=True, env=env, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            out = json.loads(p.stdout)
            self.assertEqual((out["rows"], out["files"]), (3000, 100))
            files = sorted(glob.glob(os.path.join(d, "*.parquet")))
            self.assertEqual(len(files), 100)
            db = self.db("many.duckdb")
            p = subprocess.run([REDDUCK, "ingest", "--workgroup", "demo", "--staging", "s3://redduck-staging/p",
                                "--sql", "select * from sales", "--into", db, "--concurrency", "7",
                                "--max-local-bytes", "1M", "--json"], capture_output=True, text=True, env=env,
                               timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(p.stdout)["files"], 100)
            r = self.query(db, "select count(*) as n, count(distinct sale_id) as d from result")
            self.assertEqual(r, [{"n": 3000, "d": 3000}])
            pq = self.query(db, "select count(*) as n from read_parquet('%s/*.parquet')" % d)
            self.assertEqual(pq, [{"n": 3000}])
        finally:
            emu.cleanup()

    def test_cross_region_bucket_and_kms(self):
        s3 = self.client("s3")
        s3.create_bucket(Bucket="redduck-eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        db = self.db("eu.duckdb")
        p = self.ingest("--workgroup", "demo", "--staging", "s3://redduck-eu/x", "--kms-key",
                        "arn:aws:kms:eu-west-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab", "--sql",
                        "select sale_id from sales where sale_id <= 10", "--into", db, "--json", "-v")
        self.assertEqual(json.loads(p.stdout)["rows"], 10)
        self.assertIn("REGION AS 'eu-west-1'", self.statement_text(json.loads(p.stdout)["statement_id"]))
        self.assertIn("KMS_KEY_ID 'arn:aws:kms:eu-west-1", self.statement_text(json.loads(p.stdout)["statement_id"]))
        self.assertEqual([o["Key"] for o in s3.list_objects_v2(Bucket="redduck-eu").get("Contents", [])], [])

    def statement_text(self, sid):
        return self.client("redshift-data").describe_statement(Id=sid)["QueryString"]

    def test_denied_permissions_name_the_action(self):
        db = self.db("denied.duckdb")
        self.unload("--sql", "select sale_id from sales where sale_id <= 5", into=db + ":keep")
        for user, action in DENIALS.items():
            if user == "nocancel":
                continue
            with self.subTest(user=user):
                target = ["--cluster-id", "redshift-cluster-1"] if user == "noiamcreds" else ["--workgroup", "demo"]
                p = self.ingest(*target, "--staging", "s3://redduck-staging/runs", "--sql",
                                "select sale_id from sales where sale_id <= 20" if user != "noiamcreds" else
                                "select 1 as sale_id", "--into", db + ":keep", user=user, check=False)
                self.assertNotEqual(p.returncode, 0)
                self.assertEqual(p.returncode, 4, p.stderr)
                self.assertIn(action, p.stderr)
                self.assertNotIn(user + "-secret", p.stderr)
                if user == "nodelete":  # the data is in; only the clean-up failed, and says so
                    self.assertIn("the data is loaded", p.stderr)
                    self.assertEqual(self.query(db, "select count(*) as n from keep"), [{"n": 20}])
                else:  # the old table is untouched
                    self.assertEqual(self.query(db, "select count(*) as n from keep"), [{"n": 5}])
                if user not in ("nodelete", "nolist"):
                    self.assertStagingEmpty()
        for k in self.staged_keys():  # what the no-delete / no-list runs had to leave behind
            self.client("s3").delete_object(Bucket="redduck-staging", Key=k)

    def test_timeout_cancels_and_a_denied_cancel_is_named(self):
        slow = "select a.sale_id from sales a, sales b, sales c where a.sale_id + b.sale_id + c.sale_id = -7"
        # the two runs side by side, each into its own file (a target's lock would serialise them)
        p, q = in_parallel(lambda a: self.unload("--sql", slow, "--timeout", "2", into=self.db(a[0]), user=a[1],
                                                 check=False), [("slow.duckdb", None), ("slow2.duckdb", "nocancel")])
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("did not finish within 2 s and was cancelled", p.stderr)
        p = q
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertIn("redshift-data:CancelStatement", p.stderr)
        # the UNLOAD was not stopped: the message names the prefix it may still write to
        self.assertRegex(p.stderr, r"CancelStatement failed too \(.*\): the UNLOAD may still write to "
                                   r"s3://redduck-staging/runs/redduck-[0-9a-f-]{36}/; delete it when it stops")
        self.assertStagingEmpty()

    def listed_status(self, user, sid):
        """The statement's status as ListStatements shows it to its owner (DescribeStatement may be denied)."""
        c = boto3.client("redshift-data", endpoint_url=self.emu.endpoint, region_name="us-east-1",
                         aws_access_key_id="AKID" + user.upper(), aws_secret_access_key=user + "-secret")
        for st in c.list_statements(MaxResults=100)["Statements"]:
            if st["Id"] == sid:
                return st["Status"]
        return None

    def test_a_statement_given_up_on_is_cancelled(self):
        # DescribeStatement fails for good (denied: no retry helps) on the first poll of a query that runs
        # until cancelled: redduck must not walk away from it
        slow = "select a.sale_id from sales a, sales b, sales c where a.sale_id + b.sale_id + c.sale_id = -11"
        db = self.db("giveup.duckdb")
        p = self.ingest("--workgroup", "demo", "--via", "data-api", "--sql", slow, "--into", db, "--json",
                        user="nodescribe", check=False)
        self.assertEqual(p.returncode, 4, p.stderr)
        out = json.loads(p.stdout)
        self.assertIn("redshift-data:DescribeStatement", out["error"])
        self.assertIn("the statement was cancelled", out["error"])
        self.assertEqual(wait_until(lambda: self.listed_status("nodescribe", out["statement_id"]) == "ABORTED",
                                    timeout=20), True, self.listed_status("nodescribe", out["statement_id"]))
        # neither DescribeStatement nor CancelStatement: the message says the statement may still run
        p = self.ingest("--workgroup", "demo", "--via", "data-api", "--sql", "select 1 as x", "--into", db,
                        user="nowatch", check=False)
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertIn("redshift-data:DescribeStatement", p.stderr)
        self.assertIn("and CancelStatement failed too (", p.stderr)
        self.assertIn("redshift-data:CancelStatement", p.stderr)
        self.assertIn("it may still run", p.stderr)

    def test_sigint_during_the_unload_cancels_the_statement(self):
        slow = "select a.sale_id from sales a, sales b, sales c where a.sale_id + b.sale_id + c.sale_id = -9"
        proc = subprocess.Popen([REDDUCK, "ingest", "--workgroup", "demo", "--staging", "s3://redduck-staging/runs",
                                 "--sql", slow, "--into", self.db("sigint.duckdb"), "--json", "-v"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env())
        lines = []
        try:
            # the probe is instant; the UNLOAD runs until cancelled: -v logs "UNLOAD to", then its
            # ExecuteStatement and DescribeStatement polls; the signal goes once two of those are done
            after = None
            for line in proc.stderr:
                lines.append(line)
                if "UNLOAD to s3://" in line:
                    after = 0
                elif after is not None and line.startswith("redduck: info: POST "):
                    after += 1
                    if after == 3:
                        break
            proc.send_signal(signal.SIGINT)
        finally:
            out, err = finish(proc, timeout=60)
        err = "".join(lines) + err
        self.assertEqual(after, 3, err)
        self.assertEqual(proc.returncode, 130, err)
        summary = json.loads(out)
        self.assertEqual(summary["status"], "error")
        self.assertIn("interrupted", summary["error"])
        d = self.client("redshift-data").describe_statement(Id=summary["statement_id"])
        self.assertEqual(d["Status"], "ABORTED")
        self.assertIn("UNLOAD", d["QueryString"])
        self.assertStagingEmpty()

    def small_disk(self, name, size="256k"):
        """A directory on its own tiny tmpfs (unmounted when the test ends), to fill the disk for real."""
        d = os.path.join(self.work, name)
        os.makedirs(d)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", d], capture_output=True,
                           text=True)
        if p.returncode != 0:
            self.skipTest("cannot mount a small tmpfs here (needs root): " + p.stderr.strip())
        self.addCleanup(lambda: subprocess.run(["umount", "-l", d], capture_output=True))
        return d

    def test_a_full_disk_fails_at_once_in_one_line(self):
        full = self.small_disk("full")
        # downloads: ENOSPC is not retried; the message names the directory and the way out
        p = self.unload("--sql", "select * from sales", "-v", into=os.path.join(full, "w.duckdb"), check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        last = p.stderr.strip().splitlines()[-1]
        self.assertRegex(last, r"^redduck: downloading the staged files: No space left on device on %s/"
                               r"\.redduck-tmp-\w+: free space or lower --max-local-bytes$" % full)
        self.assertNotIn("retrying", p.stderr)
        self.assertEqual([f for f in os.listdir(full) if f.startswith(".redduck-tmp-")], [])
        # the Data API path: DuckDB spilling to a full disk is one line too
        p = self.ingest("--workgroup", "demo", "--via", "data-api", "--sql", "select * from sales where sale_id <= "
                        "8000", "--memory-limit", "8MB", "--into", os.path.join(full, "w.duckdb"), check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
        self.assertIn("No space left on device on %s: free space" % full, p.stderr)
        self.assertStagingEmpty()

    # SIGINT/SIGTERM during the commit: rolled back before COMMIT is issued, committed once it has started;
    # exit 130 either way, the message saying which, the table as the message says
    def interrupt_at(self, marker, sig, db):
        proc = subprocess.Popen([REDDUCK, "ingest", "--workgroup", "demo", "--staging", "s3://redduck-staging/c",
                                 "--sql", "select * from sales", "--into", db + ":t", "-v"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env())
        lines = []
        try:
            for line in proc.stderr:  # -v logs each step as it happens
                lines.append(line)
                if marker in line:
                    proc.send_signal(sig)
                    break
        finally:
            out, err = finish(proc, timeout=60)
        err = "".join(lines) + err
        self.assertTrue(any(marker in l for l in lines), err)
        return proc.returncode, err.strip().splitlines()[-1]

    def test_signal_during_commit_exits_130_and_says_what_became_of_the_table(self):
        db = self.db("commit.duckdb")
        self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/c", "--sql",
                    "select sale_id from sales where sale_id <= 5", "--into", db + ":t")
        # the signal as the commit begins: whichever side of COMMIT it lands, the message tells the truth
        rc, last = self.interrupt_at("commit: verifying 20000 rows", signal.SIGINT, db)
        self.assertEqual(rc, 130, last)
        n = self.query(db, "select count(*) as n from t")[0]["n"]
        if "rolled back" in last:
            self.assertIn("interrupted during commit: rolled back: the old table is unchanged", last)
            self.assertEqual(n, 5)
        else:
            self.assertRegex(last, r"interrupted (during|after the) commit: the new table was committed")
            self.assertEqual(n, 20000)
        # once COMMIT is issued it finishes: committed, and still 130
        self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/c", "--sql",
                    "select sale_id from sales where sale_id <= 5", "--into", db + ":t")
        rc, last = self.interrupt_at("DuckDB: COMMIT", signal.SIGTERM, db)
        self.assertEqual(rc, 130, last)
        self.assertRegex(last, r"interrupted (during|after the) commit: the new table was committed")
        self.assertEqual(self.query(db, "select count(*) as n from t"), [{"n": 20000}])
        self.assertEqual(self.query(db, "select count(*) as n from information_schema.tables where table_name "
                                        "like '%redduck_staging%'"), [{"n": 0}])
        self.assertStagingEmpty()

    def test_failed_statement_carries_redshift_message(self):
        p = self.unload("--sql", "select * from no_such_table", into=self.db("fail.duckdb"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("schema probe", p.stderr)
        self.assertIn("no_such_table", p.stderr)
        self.assertFalse(os.path.exists(self.db("fail.duckdb")) and
                         self.query(self.db("fail.duckdb"), "select count(*) as n from information_schema.tables "
                                    "where table_name = 'result'")[0]["n"] > 0)

    def test_progress_lines_on_a_terminal_only(self):
        import pty
        db = self.db("tty.duckdb")
        args = [REDDUCK, "ingest", "--workgroup", "demo", "--staging", "s3://redduck-staging/runs", "--sql",
                "select * from sales", "--into", db]
        master, slave = pty.openpty()
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, env=self.env())
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        p.wait(timeout=120)
        os.close(master)
        tty = b"".join(chunks).decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, tty)
        self.assertIn("unload: ", tty)
        self.assertRegex(tty, r"download: files 4/4, [0-9.]+/[0-9.]+ MB, [0-9.]+ MB/s; rows loaded")
        self.assertIn("commit: verifying 20000 rows", tty)
        self.assertIn("\r", tty)
        # not a terminal: no progress lines, only the summary on stdout
        q = self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/runs", "--sql",
                        "select * from sales", "--into", db)
        self.assertEqual(q.stderr, "")
        self.assertIn("loaded 20000 rows", q.stdout)

    def test_usage_errors(self):
        for args, msg in ((["--sql", "select 1"], "--into"),
                          (["--sql", "select 1", "--table", "t", "--into", "x.duckdb"], "either --sql or --table"),
                          (["--sql", "select 1", "--into", "x.duckdb"], "--workgroup or --cluster-id"),
                          (["--workgroup", "demo", "--sql", "select 1", "--into", "x.duckdb", "--via", "x"], "--via"),
                          (["--workgroup", "demo", "--sql", "select 1", "--into", "x.duckdb", "--via", "unload"],
                           "staging")):
            p = self.ingest(*args, check=False)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(msg, p.stderr)


class TestIngestAgainstSource(IngestBase):
    """The ingested tables equal the emulator's own tables, value for value and type for type."""
    emu_args = ["--sample", "sales:rows=3000", "--slices", "4", "--seed", "3"]  # (the size is no matter here)

    def test_equal_to_the_emulators_duckdb(self):
        self.run_sql(TYPED_DDL)
        self.run_sql(TYPED_ROWS)
        db = self.db("against.duckdb")
        for table in ("sales", "typed"):
            self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/s", "--table", table, "--into", db)
            self.ingest("--workgroup", "demo", "--via", "data-api", "--table", table, "--into", db + ":" + table +
                        "_api")
        self.emu.stop()
        src = glob.glob(os.path.join(self.emu.data_dir, "warehouses", "workgroup-demo", "dev.duckdb"))
        self.assertEqual(len(src), 1)
        for table in ("sales", "typed"):
            for mine in (table, table + "_api"):
                r = self.query(db, "attach '%s' as src (read_only); select (select count(*) from (select * from "
                                   "src.public.%s except all select * from %s)) as a, (select count(*) from "
                                   "(select * from %s except all select * from src.public.%s)) as b"
                               % (src[0], table, mine, mine, table))
                self.assertEqual(r, [{"a": 0, "b": 0}], mine)
                types = self.query(db, "attach '%s' as src (read_only); select a.column_name, a.data_type as mine, "
                                       "b.data_type as theirs from information_schema.columns a join "
                                       "information_schema.columns b on a.column_name = b.column_name and "
                                       "a.table_name = '%s' and b.table_name = '%s' and b.table_catalog = 'src' "
                                       "and a.table_catalog <> 'src' order by a.ordinal_position"
                                   % (src[0], mine, table))
                self.assertGreater(len(types), 3)
                for t in types:
                    theirs = t["theirs"]
                    if table == "typed" and t["column_name"] == "c":
                        continue  # CHAR(5): the emulator stores VARCHAR too; compared above
                    self.assertEqual(t["mine"], theirs, (mine, t))


FAULTY_ROWS = 3000  # the faults are per request: the size of the files is no matter


class TestIngestFaults(IngestBase):
    emu_args = ["--sample", "sales:rows=%d" % FAULTY_ROWS, "--slices", "6", "--seed", "11", "--faults",
                "s3.get.reset=0.15,s3.get.truncate=0.1,s3.get.slowdown=0.1,s3.list.slowdown=0.05,"
                "data.describe.throttle=0.15,data.result.throttle=0.1,data.execute.throttle=0.05"]

    def test_twenty_faulty_runs_give_the_identical_table(self):
        # ten targets side by side (most of a faulty run is backoff), two runs each (the second replaces
        # the table)
        def lane(n):
            db = self.db("faults%d.duckdb" % n)
            got = []
            for i in range(2):
                p = self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/f%d" % n, "--sql",
                                "select * from sales", "--into", db + ":sales", "--json")
                got.append((json.loads(p.stdout), self.query(db, CHECKSUM.format("sales"))))
            return got
        runs = [run for got in in_parallel(lane, range(10), workers=10) for run in got]
        self.assertEqual(len(runs), 20)
        sums, retries = set(), 0
        for out, r in runs:
            self.assertEqual(out["rows"], FAULTY_ROWS)
            retries += out["retries"]
            self.assertEqual(r[0]["n"], FAULTY_ROWS)
            sums.add(r[0]["h"])
        self.assertEqual(len(sums), 1)
        self.assertGreater(retries, 0)  # the faults did fire
        self.assertStagingEmpty()

    def test_unrecoverable_failure_keeps_the_old_table(self):
        db = self.db("keep.duckdb")
        self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/k", "--sql",
                    "select sale_id from sales where sale_id <= 100", "--into", db + ":t")
        # the GetObject denial fails the download for good; the staging prefix is still emptied
        p = self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/k", "--sql",
                        "select * from sales", "--into", db + ":t", user="noget", check=False)
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertEqual(self.query(db, "select count(*) as n from t"), [{"n": 100}])
        self.assertEqual(self.query(db, "select count(*) as n from information_schema.tables where table_name "
                                        "like '%redduck_staging%'"), [{"n": 0}])
        self.assertStagingEmpty()
        self.assertEqual(glob.glob(os.path.join(self.work, ".redduck-tmp-*")), [])


class TestIngestInterrupt(IngestBase):
    # 12 files fetched one at a time, each slow: the download lasts seconds whatever the rows
    emu_args = ["--sample", "sales:rows=3000", "--slices", "12", "--faults", "latency.ms=150"]

    def test_sigint_mid_download_cancels_cleans_up_and_exits_130(self):
        db = self.db("int.duckdb")
        proc = subprocess.Popen([REDDUCK, "ingest", "--workgroup", "demo", "--staging", "s3://redduck-staging/i",
                                 "--sql", "select * from sales", "--into", db, "--concurrency", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env())
        try:
            found = wait_until(lambda: [k for k in self.staged_keys("i/") if k.endswith("manifest")], timeout=120,
                               interval=0.1)
            self.assertTrue(found, "the UNLOAD never wrote its manifest")
            # mid-download: a first file is in the download directory
            downloading = wait_until(lambda: [d for d in glob.glob(os.path.join(self.work, ".redduck-tmp-*"))
                                              if os.listdir(d)] or proc.poll() is not None, timeout=60,
                                     interval=0.02)
            self.assertIsNone(proc.poll(), "the ingest ended before its download")
            self.assertTrue(downloading)
            proc.send_signal(signal.SIGINT)
        finally:
            out, err = finish(proc, timeout=120)
        self.assertEqual(proc.returncode, 130, err)
        self.assertIn("interrupted", err)
        self.assertStagingEmpty()
        tables = self.query(db, "select table_name from information_schema.tables")
        self.assertEqual(tables, [])
        self.assertEqual(glob.glob(os.path.join(self.work, ".redduck-tmp-*")), [])


if __name__ == "__main__":
    unittest.main()
