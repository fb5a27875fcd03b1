"""The emulator's Redshift Data API and UNLOAD, driven by the real AWS CLI and boto3: statements through
their states, typed results checked against botocore's service model, errors, UNLOAD into the emulator's
S3 (files and manifest as Redshift writes them), permissions, persistence across a restart, clean stop."""
import json
import os
import signal
import subprocess
import time
import unittest

import boto3
import botocore.config
import botocore.exceptions
import botocore.session

from emulator_fixture import Emulator, identities, in_parallel

CONFIG = identities([("admin", "AKIDADMIN", "admin-secret", ["*"]), ("viewer", "AKIDVIEW", "view-secret",
                                                                     ["s3:*", "sts:*"])],
                    account="111122223333", roles=[{"name": "unload", "allow": ["s3:*"], "default": True}],
                    workgroups=["demo"], clusters=["redshift-cluster-1"], buckets=["staging"])

MODEL = botocore.session.get_session().get_service_model("redshift-data")


def aws(endpoint, env, *args, timeout=120):
    """The real AWS CLI aimed at the emulator, JSON output."""
    return subprocess.run(["aws", "--endpoint-url", endpoint, "--output", "json"] + list(args), env=env,
                          capture_output=True, text=True, timeout=timeout)


def admin_env(emu, **extra):
    return emu.env(key="AKIDADMIN", secret="admin-secret", AWS_DEFAULT_REGION="us-east-1", **extra)


def check_shape(test, value, shape, path="$"):
    """Every member present has the type the model says; required members are there; enums are valid."""
    t = shape.type_name
    if t == "structure":
        test.assertIsInstance(value, dict, path)
        for req in shape.required_members:
            test.assertIn(req, value, "%s.%s is required" % (path, req))
        for k, v in value.items():
            test.assertIn(k, shape.members, "%s.%s is not in the model" % (path, k))
            check_shape(test, v, shape.members[k], "%s.%s" % (path, k))
    elif t == "list":
        test.assertIsInstance(value, list, path)
        for i, v in enumerate(value):
            check_shape(test, v, shape.member, "%s[%d]" % (path, i))
    elif t == "string":
        test.assertIsInstance(value, str, path)
        if shape.enum:
            test.assertIn(value, shape.enum, path)
    elif t in ("integer", "long"):
        test.assertIsInstance(value, int, path)
    elif t == "boolean":
        test.assertIsInstance(value, bool, path)
    elif t == "double":
        test.assertIsInstance(value, (int, float), path)
    elif t == "timestamp":
        test.assertIsInstance(value, (int, float, str), path)


class EmulatorDataApiCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(args=["--sample", "sales:rows=1000", "--slices", "2"], config=CONFIG)

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()

    def env(self, key="AKIDADMIN", secret="admin-secret"):
        return self.emu.env(key=key, secret=secret, AWS_DEFAULT_REGION="us-east-1")

    def aws(self, *args, env=None, check=True):
        p = aws(self.emu.endpoint, env or self.env(), *args)
        if check and p.returncode != 0:
            raise AssertionError("aws %s: %s" % (" ".join(args), p.stderr))
        return p

    def run_sql(self, sql, *target):
        target = target or ("--workgroup-name", "demo")
        out = json.loads(self.aws("redshift-data", "execute-statement", *target, "--database", "dev",
                                  "--sql", sql).stdout)
        check_shape(self, out, MODEL.operation_model("ExecuteStatement").output_shape)
        sid = out["Id"]
        seen = []
        for _ in range(600):
            d = json.loads(self.aws("redshift-data", "describe-statement", "--id", sid).stdout)
            seen.append(d["Status"])
            if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
                break
            time.sleep(0.05)
        check_shape(self, d, MODEL.operation_model("DescribeStatement").output_shape)
        return d

    def test_statement_lifecycle_and_typed_results(self):
        d = self.run_sql("select sale_id, quantity, unit_price, total_amount, is_online, customer_name, sale_date, "
                         "updated_at from sales order by sale_id limit 120")
        self.assertEqual(d["Status"], "FINISHED")
        self.assertTrue(d["HasResultSet"])
        self.assertEqual(d["ResultRows"], 120)
        rows, cols, token, pages = [], None, None, 0
        while True:
            args = ["redshift-data", "get-statement-result", "--id", d["Id"]]
            if token:
                args += ["--next-token", token]
            r = json.loads(self.aws(*args).stdout)
            check_shape(self, r, MODEL.operation_model("GetStatementResult").output_shape)
            cols = r["ColumnMetadata"]
            rows += r["Records"]
            pages += 1
            token = r.get("NextToken")
            if not token:
                break
        self.assertEqual(len(rows), 120)
        self.assertEqual([c["name"] for c in cols][:3], ["sale_id", "quantity", "unit_price"])
        self.assertEqual(cols[0]["typeName"], "int8")
        self.assertEqual(cols[2]["typeName"], "numeric")
        self.assertEqual((cols[2]["precision"], cols[2]["scale"]), (12, 2))
        self.assertIn("longValue", rows[0][0])
        self.assertEqual(rows[0][0]["longValue"], 1)
        self.assertIn("stringValue", rows[0][2])  # decimals travel as strings
        # boto3's paginator sees the same rows
        c = boto3.session.Session().client("redshift-data", endpoint_url=self.emu.endpoint, region_name="us-east-1",
                                           aws_access_key_id="AKIDADMIN", aws_secret_access_key="admin-secret")
        pag = [rec for p in c.get_paginator("get_statement_result").paginate(Id=d["Id"]) for rec in p["Records"]]
        self.assertEqual(pag, rows)

    def test_failed_statement_and_errors(self):
        # four independent CLI runs, side by side
        d, p1, p2, p3 = in_parallel(lambda f: f(), [
            lambda: self.run_sql("select * from no_such_table"),
            lambda: self.aws("redshift-data", "execute-statement", "--workgroup-name", "nope", "--database", "dev",
                             "--sql", "select 1", check=False),
            lambda: self.aws("redshift-data", "describe-statement", "--id", "00000000-0000-0000-0000-000000000000",
                             check=False),
            lambda: self.aws("redshift-data", "execute-statement", "--workgroup-name", "demo", "--database", "dev",
                             "--sql", "select 1", env=self.env("AKIDVIEW", "view-secret"), check=False)])
        self.assertEqual(d["Status"], "FAILED")
        self.assertTrue(d["Error"])
        p = p1
        self.assertNotEqual(p.returncode, 0)
        self.assertTrue("ValidationException" in p.stderr or "ResourceNotFoundException" in p.stderr, p.stderr)
        p = p2
        self.assertIn("ResourceNotFoundException", p.stderr)
        p = p3
        self.assertIn("AccessDeniedException", p.stderr)

    def test_cluster_target(self):
        d = self.run_sql("select 41 + 1 as answer", "--cluster-identifier", "redshift-cluster-1", "--db-user", "etl")
        self.assertEqual(d["Status"], "FINISHED")
        r = json.loads(self.aws("redshift-data", "get-statement-result", "--id", d["Id"]).stdout)
        self.assertEqual(r["Records"][0][0]["longValue"], 42)

    def test_unload_to_s3(self):
        d = self.run_sql("unload ('select sale_id, customer_name, total_amount from sales where note is null or "
                         "note <> ''x''') to 's3://staging/cli/run1/' iam_role default format as parquet "
                         "manifest verbose")
        self.assertEqual(d["Status"], "FINISHED", d.get("Error"))
        dst = os.path.join(self.emu.tmp, "unloaded")
        # listing, download and the second UNLOAD (which must fail, below) read the prefix side by side
        ls, _, d2 = in_parallel(lambda f: f(), [
            lambda: self.aws("s3", "ls", "s3://staging/cli/run1/").stdout,
            lambda: self.aws("s3", "cp", "--recursive", "s3://staging/cli/run1/", dst),
            lambda: self.run_sql("unload ('select 1') to 's3://staging/cli/run1/' iam_role default format parquet")])
        self.assertIn("0000_part_00.parquet", ls)
        self.assertIn("manifest", ls)
        with open(os.path.join(dst, "manifest")) as f:
            manifest = json.load(f)
        total = 0
        for e in manifest["entries"]:
            name = e["url"].rsplit("/", 1)[1]
            path = os.path.join(dst, name)
            self.assertEqual(os.path.getsize(path), e["meta"]["content_length"])
            with open(path, "rb") as f:
                head = f.read(4)
                f.seek(-4, os.SEEK_END)
                self.assertEqual((head, f.read(4)), (b"PAR1", b"PAR1"))
            total += e["meta"]["record_count"]
        self.assertEqual(total, 1000)
        # a second UNLOAD to the same prefix without ALLOWOVERWRITE fails as Redshift does
        d = d2
        self.assertEqual(d["Status"], "FAILED")
        self.assertIn("not empty", d["Error"])

    def test_restart_keeps_state_and_sigterm_stops(self):
        emu = Emulator(config=CONFIG)
        try:
            env = admin_env(emu)

            def statement(endpoint, sql, done):
                """execute-statement, then describe-statement until its status is in done (the last reply)."""
                sid = json.loads(aws(endpoint, env, "redshift-data", "execute-statement", "--workgroup-name",
                                     "demo", "--database", "dev", "--sql", sql, timeout=60).stdout)["Id"]
                for _ in range(200):
                    d = json.loads(aws(endpoint, env, "redshift-data", "describe-statement", "--id", sid,
                                       timeout=60).stdout)
                    if d["Status"] in done:
                        break
                    time.sleep(0.05)
                return d
            src = os.path.join(emu.tmp, "obj.txt")
            with open(src, "w") as f:
                f.write("persist me")
            # the table and the object are made side by side
            _, cp = in_parallel(lambda f: f(), [
                lambda: statement(emu.endpoint, "create table kept as select 7 as v", ("FINISHED",)),
                lambda: aws(emu.endpoint, env, "s3", "cp", src, "s3://staging/kept.txt", timeout=60)])
            self.assertEqual(cp.returncode, 0)
            t0 = time.time()
            emu.proc.send_signal(signal.SIGTERM)
            self.assertEqual(emu.proc.wait(timeout=20), 0)
            self.assertLess(time.time() - t0, 10)
            emu2 = Emulator(config=CONFIG, data_dir=emu.data_dir)
            try:
                env["AWS_ENDPOINT_URL"] = emu2.endpoint
                out, d = in_parallel(lambda f: f(), [
                    lambda: aws(emu2.endpoint, env, "s3", "cp", "s3://staging/kept.txt", "-", timeout=60),
                    lambda: statement(emu2.endpoint, "select v from kept", ("FINISHED", "FAILED"))])
                self.assertEqual(out.stdout, "persist me")
                self.assertEqual(d["Status"], "FINISHED", d.get("Error"))
            finally:
                emu2.stop()
        finally:
            emu.cleanup()

    def test_throttling_faults_are_retried_by_the_cli(self):
        emu = Emulator(args=["--faults", "data.describe.throttle=0.5", "--seed", "3"], config=CONFIG)
        try:
            env = admin_env(emu, AWS_MAX_ATTEMPTS="10", AWS_RETRY_MODE="standard")
            sid = json.loads(aws(emu.endpoint, env, "redshift-data", "execute-statement", "--workgroup-name", "demo",
                                 "--database", "dev", "--sql", "select 1", timeout=60).stdout)["Id"]
            # six CLI runs side by side (most of each is the CLI's backoff); half of its calls are throttled
            for p in in_parallel(lambda _: aws(emu.endpoint, env, "redshift-data", "describe-statement", "--id", sid,
                                               timeout=60), range(6), workers=6):
                self.assertEqual(p.returncode, 0, p.stderr)
            c = boto3.session.Session().client(
                "redshift-data", endpoint_url=emu.endpoint, region_name="us-east-1", aws_access_key_id="AKIDADMIN",
                aws_secret_access_key="admin-secret", config=botocore.config.Config(retries={"max_attempts": 1}))
            throttled = 0
            for _ in range(30):
                try:
                    c.describe_statement(Id=sid)
                except botocore.exceptions.ClientError as e:
                    self.assertEqual(e.response["Error"]["Code"], "ThrottlingException")
                    throttled += 1
            self.assertGreater(throttled, 3)
            self.assertLess(throttled, 27)
        finally:
            emu.cleanup()

if __name__ == "__main__":
    unittest.main()
