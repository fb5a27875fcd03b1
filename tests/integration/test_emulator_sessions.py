"""The emulator's Data API sessions (SessionKeepAliveSeconds, SessionId: temp tables that survive between
statements, busy and expired sessions) and CSV results (ResultFormat=CSV, GetStatementResultV2), driven by
boto3 and the AWS CLI; the CSV parsed with Python's csv module must equal the JSON result of the same query."""
import csv
import io
import json
import subprocess
import time
import unittest

import boto3
import botocore.config
import botocore.exceptions
import botocore.session

import test_emulator_data_cli as data_cli
from emulator_fixture import Emulator, wait_until

DATA = botocore.session.get_session().get_service_model("redshift-data")
DONE = ("FINISHED", "FAILED", "ABORTED")

# values a CSV writer must get right: NULLs, empty strings, quotes, commas, line breaks, non-ASCII
TRICKY = ("select * from (values "
          "(1, 'plain', 10.25::decimal(8,2), true, 1.5::float8, date '2024-02-29', null::varchar), "
          "(2, 'say \"hi\", twice', null, false, -0.1::float8, null, ''), "
          "(3, 'two\nlines\r\nand a tab\t', 0.00, null, 1e300::float8, date '1999-12-31', 'caf\u00e9 \u20ac'), "
          "(4, null, -3.50, true, null, date '2000-01-01', ',')"
          ") as t(id, txt, amount, flag, ratio, day, other) order by id")


class EmulatorSessionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator()
        cls.data = boto3.session.Session().client("redshift-data", endpoint_url=cls.emu.endpoint,
                                                  region_name="us-east-1", aws_access_key_id="test",
                                                  aws_secret_access_key="test")

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()

    def wait(self, sid, timeout=30):
        d = wait_until(lambda: (lambda d: d if d["Status"] in DONE else None)(self.data.describe_statement(Id=sid)),
                       timeout=timeout, interval=0.02)
        self.assertIsNotNone(d, "statement %s did not finish" % sid)
        return d

    def run_sql(self, sql, **kw):
        if "SessionId" not in kw:
            kw.setdefault("WorkgroupName", "demo")
            kw.setdefault("Database", "dev")
        r = self.data.execute_statement(Sql=sql, **kw)
        return r, self.wait(r["Id"])

    def error(self, fn, **kw):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            fn(**kw)
        return cm.exception.response["Error"]["Code"], cm.exception.response["Error"]["Message"]

    # ---------------------------------------------------------------- sessions

    def test_temp_table_survives_in_its_session(self):
        r, d = self.run_sql("create temp table staging as select 41 + 1 as answer", SessionKeepAliveSeconds=60)
        self.assertEqual(d["Status"], "FINISHED", d.get("Error"))
        session = r["SessionId"]
        self.assertEqual(d["SessionId"], session)
        # the next statement names only the session: it decides workgroup and database
        r2, d2 = self.run_sql("select answer from staging", SessionId=session)
        self.assertEqual(d2["Status"], "FINISHED", d2.get("Error"))
        self.assertEqual(r2["SessionId"], session)
        self.assertEqual(r2["WorkgroupName"], "demo")
        self.assertEqual(self.data.get_statement_result(Id=r2["Id"])["Records"], [[{"longValue": 42}]])
        listed = {s["Id"]: s.get("SessionId") for s in self.data.list_statements()["Statements"]}
        self.assertEqual(listed[r2["Id"]], session)
        # outside the session the temp table does not exist
        _, d3 = self.run_sql("select answer from staging")
        self.assertEqual(d3["Status"], "FAILED")
        self.assertIn("staging", d3["Error"])
        self.assertNotIn("SessionId", d3)
        # a batch runs in the session too, and keeps its changes there
        b = self.data.batch_execute_statement(Sqls=["insert into staging values (7)", "select count(*) from staging"],
                                              SessionId=session)
        self.assertEqual(self.wait(b["Id"])["Status"], "FINISHED")
        self.assertEqual(self.data.get_statement_result(Id=b["Id"] + ":2")["Records"], [[{"longValue": 2}]])
        # the AWS CLI passes the session the same way
        p = subprocess.run(["aws", "--endpoint-url", self.emu.endpoint, "--output", "json", "redshift-data",
                            "execute-statement", "--session-id", session, "--sql", "select count(*) from staging"],
                           env=self.emu.env(), capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        data_cli.check_shape(self, out, DATA.operation_model("ExecuteStatement").output_shape)
        self.assertEqual(out["SessionId"], session)
        self.assertEqual(self.wait(out["Id"])["Status"], "FINISHED")

    def test_unknown_and_conflicting_sessions(self):
        code, msg = self.error(self.data.execute_statement, Sql="select 1",
                               SessionId="00000000-0000-4000-8000-000000000000")
        self.assertEqual(code, "ValidationException")
        self.assertIn("Session with Id: 00000000-0000-4000-8000-000000000000 is invalid", msg)
        code, _ = self.error(self.data.execute_statement, Sql="select 1", SessionId="not-a-session")
        self.assertEqual(code, "ValidationException")
        code, _ = self.error(self.data.execute_statement, Sql="select 1", WorkgroupName="demo", Database="dev",
                             SessionKeepAliveSeconds=86401)
        self.assertEqual(code, "ValidationException")
        r, _ = self.run_sql("select 1", SessionKeepAliveSeconds=60)
        code, msg = self.error(self.data.execute_statement, Sql="select 1", SessionId=r["SessionId"],
                               Database="other")
        self.assertEqual(code, "ValidationException")
        self.assertIn("SessionId", msg)
        # without a keep-alive there is no session
        r, _ = self.run_sql("select 1")
        self.assertNotIn("SessionId", r)

    def test_busy_session_refuses_a_second_statement(self):
        r, _ = self.run_sql("select 1", SessionKeepAliveSeconds=60)
        session = r["SessionId"]
        slow = self.data.execute_statement(
            Sql="select count(*) from range(100000) a, range(100000) b where a.range + b.range = -1",
            SessionId=session)
        code, msg = self.error(self.data.execute_statement, Sql="select 2", SessionId=session)
        self.assertEqual(code, "ValidationException")
        self.assertIn("busy", msg)
        self.data.cancel_statement(Id=slow["Id"])
        self.assertEqual(self.wait(slow["Id"])["Status"], "ABORTED")
        # once the statement has ended the session takes the next one
        _, d = self.run_sql("select 3", SessionId=session)
        self.assertEqual(d["Status"], "FINISHED", d.get("Error"))

    def test_session_expires_after_its_keep_alive(self):
        r, d = self.run_sql("create temp table t as select 1 as a", SessionKeepAliveSeconds=2)
        session = r["SessionId"]
        # a statement that gets in renews the keep-alive, so only a wait can show the expiry: one second on,
        # the session still answers (and is renewed from that statement's end) ...
        time.sleep(1.0)
        _, d = self.run_sql("select a from t", SessionId=session)
        self.assertEqual(d["Status"], "FINISHED", d.get("Error"))
        # ... and more than two seconds after that, it is gone
        time.sleep(2.5)
        code, msg = self.error(self.data.execute_statement, Sql="select a from t", SessionId=session)
        self.assertEqual(code, "ValidationException")
        self.assertIn("not available", msg)

    # ---------------------------------------------------------------- CSV results

    def json_rows(self, sid):
        rows = [r for p in self.data.get_paginator("get_statement_result").paginate(Id=sid) for r in p["Records"]]

        def text(f):
            if f.get("isNull"):
                return None
            if "booleanValue" in f:
                return "t" if f["booleanValue"] else "f"
            if "longValue" in f:
                return str(f["longValue"])
            if "doubleValue" in f:
                return f["doubleValue"]
            return f["stringValue"]

        return [[text(f) for f in r] for r in rows]

    def test_csv_result_equals_json_result(self):
        rj, dj = self.run_sql(TRICKY)
        rc, dc = self.run_sql(TRICKY, ResultFormat="CSV")
        self.assertEqual((dj["Status"], dc["Status"]), ("FINISHED", "FINISHED"), (dj.get("Error"), dc.get("Error")))
        self.assertEqual(dc["ResultFormat"], "CSV")
        v2 = self.data.get_statement_result_v2(Id=rc["Id"])
        raw = dict(v2)
        raw.pop("ResponseMetadata")
        data_cli.check_shape(self, raw, DATA.operation_model("GetStatementResultV2").output_shape)
        self.assertEqual((v2["ResultFormat"], v2["TotalNumRows"]), ("CSV", 4))
        self.assertEqual([c["name"] for c in v2["ColumnMetadata"]],
                         ["id", "txt", "amount", "flag", "ratio", "day", "other"])
        text = "".join(r["CSVRecords"] for r in v2["Records"])
        parsed = list(csv.reader(io.StringIO(text, newline="")))
        self.assertEqual(parsed[0], ["id", "txt", "amount", "flag", "ratio", "day", "other"])
        want = self.json_rows(rj["Id"])
        self.assertEqual(len(parsed) - 1, len(want))
        for got, exp in zip(parsed[1:], want):
            self.assertEqual(len(got), len(exp))
            for g, e in zip(got, exp):
                if isinstance(e, float):
                    self.assertEqual(float(g), e)  # the same double, in its shortest exact form
                else:
                    self.assertEqual(g, "" if e is None else e)
        # a NULL is an empty field; an empty string is written "" so the two stay apart
        self.assertIn('\n2,"say ""hi"", twice",,f,-0.1,,""\n', text)
        self.assertTrue(text.endswith('\n4,,-3.50,t,,2000-01-01,","\n'), text[-60:])
        # each call serves only its own format
        code, msg = self.error(self.data.get_statement_result, Id=rc["Id"])
        self.assertEqual(code, "ValidationException")
        self.assertIn("GetStatementResultV2", msg)
        code, msg = self.error(self.data.get_statement_result_v2, Id=rj["Id"])
        self.assertEqual(code, "ValidationException")
        self.assertIn("GetStatementResult", msg)

    def test_csv_pages(self):
        rc, dc = self.run_sql("select i, 'row ' || i as label from range(2500) t(i) order by i", ResultFormat="CSV")
        self.assertEqual(dc["Status"], "FINISHED", dc.get("Error"))
        pages = list(self.data.get_paginator("get_statement_result_v2").paginate(Id=rc["Id"]))
        self.assertGreater(len(pages), 1)
        self.assertTrue(all(p["TotalNumRows"] == 2500 for p in pages))
        texts = [r["CSVRecords"] for p in pages for r in p["Records"]]
        self.assertTrue(texts[0].startswith("i,label\n"))
        self.assertFalse(any(t.startswith("i,label") for t in texts[1:]), "the header comes once, first")
        rows = [row for t in texts for row in csv.reader(io.StringIO(t, newline=""))]
        self.assertEqual(rows[0], ["i", "label"])
        self.assertEqual(rows[1:], [[str(i), "row %d" % i] for i in range(2500)])
        with self.assertRaises(botocore.exceptions.ClientError):
            self.data.get_statement_result_v2(Id=rc["Id"], NextToken="nonsense")


    def test_result_throttle_fault_reaches_v2(self):
        emu = Emulator(["--faults", "data.result.throttle=1"])
        try:
            data = boto3.session.Session().client(
                "redshift-data", endpoint_url=emu.endpoint, region_name="us-east-1", aws_access_key_id="test",
                aws_secret_access_key="test", config=botocore.config.Config(retries={"max_attempts": 1}))
            sid = data.execute_statement(WorkgroupName="demo", Database="dev", Sql="select 1",
                                         ResultFormat="CSV")["Id"]
            self.assertIsNotNone(wait_until(lambda: data.describe_statement(Id=sid)["Status"] == "FINISHED",
                                            timeout=30, interval=0.02))
            with self.assertRaises(botocore.exceptions.ClientError) as cm:
                data.get_statement_result_v2(Id=sid)
            self.assertEqual(cm.exception.response["Error"]["Code"], "ThrottlingException")
        finally:
            emu.cleanup()

if __name__ == "__main__":
    unittest.main()
