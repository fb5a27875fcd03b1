"""Result column names as Redshift gives them, seen by stock clients: boto3's redshift-data (ColumnMetadata of
GetStatementResult: names and typeNames), the AWS CLI v1, and the Parquet files of an UNLOAD read back from
the emulator's S3 (their schema read by DuckDB through `redduck query`). count(*) is "count", 1+1 "?column?",
x::varchar "x", unquoted and quoted identifiers come back lowercased, and two count(*) stay two "count"s."""
import json
import os
import subprocess
import time
import unittest

import boto3

from emulator_fixture import Emulator, identities
from test_query import create_database

REDDUCK = os.environ.get("REDDUCK_BIN", "redduck")
CONFIG = identities([("admin", "AKIDADMIN", "admin-secret", ["*"])], roles=[{"name": "unload", "allow": ["s3:*"],
                                                                              "default": True}],
                    workgroups=["demo"], buckets=["staging"])

QUERY = ("select count(*), sum(x), 1+1, max(x) as \"MyMax\", X, coalesce(a, \"B\"), "
         "case when x > 1 then 'big' end, x::varchar, nvl(a, 0), count(*) from Names_T group by x, a, \"B\" "
         "order by x")
NAMES = ["count", "sum", "?column?", "mymax", "x", "coalesce", "case", "x", "coalesce", "count"]


class RedshiftNamesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(config=CONFIG, lifetime=120)
        kw = dict(endpoint_url=cls.emu.endpoint, region_name="us-east-1", aws_access_key_id="AKIDADMIN",
                  aws_secret_access_key="admin-secret")
        cls.data = boto3.client("redshift-data", **kw)
        cls.s3 = boto3.client("s3", **kw)
        cls.run_sql("create table Names_T (X int, A int, \"B\" int, J super, V varchar(10))")
        cls.run_sql("insert into names_t values (1, 10, 100, json_parse('{\"k\": 1}'), 'p'), "
                    "(2, null, 200, null, 'q'), (2, null, 200, null, 'r')")

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()

    @classmethod
    def run_sql(cls, sql):
        sid = cls.data.execute_statement(WorkgroupName="demo", Database="dev", Sql=sql)["Id"]
        for _ in range(400):
            d = cls.data.describe_statement(Id=sid)
            if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
                break
            time.sleep(0.025)
        if d["Status"] != "FINISHED":
            raise AssertionError("%s: %s %s" % (sql, d["Status"], d.get("Error")))
        return d

    def result(self, sql):
        d = self.run_sql(sql)
        self.assertTrue(d["HasResultSet"], sql)
        return self.data.get_statement_result(Id=d["Id"])

    def test_column_metadata_names_and_types(self):
        r = self.result(QUERY)
        cols = r["ColumnMetadata"]
        self.assertEqual([c["name"] for c in cols], NAMES)
        self.assertEqual([c["label"] for c in cols], NAMES)
        types = {c["name"]: c["typeName"] for c in cols}
        self.assertEqual((types["count"], types["?column?"], types["mymax"], types["case"]),
                         ("int8", "int4", "int4", "varchar"))
        self.assertEqual(cols[7]["typeName"], "varchar")  # x::varchar, named x
        self.assertEqual(len(r["Records"]), 2)
        self.assertEqual([rec[0]["longValue"] for rec in r["Records"]], [1, 2])  # count per x
        self.assertEqual([rec[2]["longValue"] for rec in r["Records"]], [2, 2])  # 1+1

    def test_star_and_identifiers_and_super(self):
        r = self.result("select * from NAMES_T order by x limit 1")
        self.assertEqual([c["name"] for c in r["ColumnMetadata"]], ["x", "a", "b", "j", "v"])
        types = {c["name"]: c["typeName"] for c in r["ColumnMetadata"]}
        self.assertEqual((types["j"], types["v"]), ("super", "varchar"))
        r = self.result("select \"X\", names_t.\"B\" as \"Bee\", v \"Vee\", getdate(), sysdate, current_date, "
                        "'1'::int, cast(x as bigint), row_number() over (order by x) from names_t limit 1")
        self.assertEqual([c["name"] for c in r["ColumnMetadata"]],
                         ["x", "bee", "vee", "timestamp", "timestamp", "date", "int4", "x", "row_number"])
        # the names of a subquery show through * outside it
        r = self.result("select * from (select count(*), max(v) from names_t) s")
        self.assertEqual([c["name"] for c in r["ColumnMetadata"]], ["count", "max"])

    def test_unload_parquet_column_names(self):
        self.run_sql("unload ('select count(*), max(x) as \"MyMax\", 1+1, x::varchar, nvl(a, 0) from names_t "
                     "group by x, a') to 's3://staging/names/' iam_role default format parquet parallel off")
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket="staging", Prefix="names/")["Contents"]]
        self.assertEqual(len(keys), 1, keys)
        work = os.path.join(self.emu.tmp, "pq")
        os.makedirs(work, exist_ok=True)
        path = os.path.join(work, "part.parquet")
        with open(path, "wb") as f:
            f.write(self.s3.get_object(Bucket="staging", Key=keys[0])["Body"].read())
        db = os.path.join(work, "read.duckdb")
        create_database(db, [])
        p = subprocess.run([REDDUCK, "query", db, "select name from parquet_schema('%s') where num_children is null"
                            % path, "--json"], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, AWS_EC2_METADATA_DISABLED="true"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r["name"] for r in json.loads(p.stdout)], ["count", "mymax", "?column?", "x", "coalesce"])

    def test_char_blank_padded_bpchar(self):
        self.run_sql("create table names_c (c5 char(5), n int)")
        self.run_sql("insert into names_c values ('ab', 1), ('abcde', 2)")
        r = self.result("select c5, n from names_c order by n")
        col = r["ColumnMetadata"][0]
        self.assertEqual((col["name"], col["typeName"], col["precision"]), ("c5", "bpchar", 5))
        self.assertEqual([rec[0]["stringValue"] for rec in r["Records"]], ["ab   ", "abcde"])
        # trailing blanks do not count when compared with text
        r = self.result("select count(*) from names_c where c5 = 'ab'")
        self.assertEqual(r["Records"][0][0]["longValue"], 1)
        sid = self.data.execute_statement(WorkgroupName="demo", Database="dev",
                                          Sql="insert into names_c values ('abcdefg', 3)")["Id"]
        for _ in range(400):
            d = self.data.describe_statement(Id=sid)
            if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
                break
            time.sleep(0.025)
        self.assertEqual(d["Status"], "FAILED")
        self.assertIn("value too long for type character(5)", d["Error"])
        # an UNLOAD keeps the padding in its Parquet
        self.run_sql("unload ('select c5 from names_c where n = 1') to 's3://staging/names-char/' "
                     "iam_role default format parquet allowoverwrite")
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket="staging", Prefix="names-char/")["Contents"]]
        got = set()
        db = os.path.join(self.emu.tmp, "char.duckdb")
        create_database(db, [])
        for k in keys:
            path = os.path.join(self.emu.tmp, "char.parquet")
            with open(path, "wb") as f:
                f.write(self.s3.get_object(Bucket="staging", Key=k)["Body"].read())
            p = subprocess.run([REDDUCK, "query", db, "select c5 from read_parquet('%s')" % path, "--csv"],
                               capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, AWS_EC2_METADATA_DISABLED="true"))
            self.assertEqual(p.returncode, 0, p.stderr)
            got.update(p.stdout.splitlines()[1:])
        self.assertEqual(got, {"ab   "})

    def test_case_sensitive_identifiers_in_a_session(self):
        first = self.data.execute_statement(WorkgroupName="demo", Database="dev", SessionKeepAliveSeconds=60,
                                            Sql="set enable_case_sensitive_identifier to true")
        for _ in range(400):
            if self.data.describe_statement(Id=first["Id"])["Status"] == "FINISHED":
                break
            time.sleep(0.025)
        sid = self.data.execute_statement(SessionId=first["SessionId"], Sql="select 1 as \"MyCol\", 2 as Other")
        for _ in range(400):
            d = self.data.describe_statement(Id=sid["Id"])
            if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
                break
            time.sleep(0.025)
        self.assertEqual(d["Status"], "FINISHED", d.get("Error"))
        names = [c["name"] for c in self.data.get_statement_result(Id=sid["Id"])["ColumnMetadata"]]
        self.assertEqual(names, ["MyCol", "other"])  # quoted keeps its case, unquoted still folds
        # without the setting (another statement, its own session): folded
        r = self.result("select 1 as \"MyCol\"")
        self.assertEqual([c["name"] for c in r["ColumnMetadata"]], ["mycol"])

    def test_aws_cli_v1(self):
        env = self.emu.env(key="AKIDADMIN", secret="admin-secret")

        def aws(*args):
            p = subprocess.run(["aws", "--endpoint-url", self.emu.endpoint, "--output", "json"] + list(args),
                               env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            return json.loads(p.stdout)

        sid = aws("redshift-data", "execute-statement", "--workgroup-name", "demo", "--database", "dev", "--sql",
                  "select count(*), count(*), sum(x) as Total from names_t")["Id"]
        for _ in range(400):
            if self.data.describe_statement(Id=sid)["Status"] in ("FINISHED", "FAILED", "ABORTED"):
                break
            time.sleep(0.025)
        r = aws("redshift-data", "get-statement-result", "--id", sid)
        self.assertEqual([c["name"] for c in r["ColumnMetadata"]], ["count", "count", "total"])
        self.assertEqual(r["Records"][0][0]["longValue"], 3)


if __name__ == "__main__":
    unittest.main()
