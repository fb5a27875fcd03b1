"""The emulator's Data API catalog calls (ListDatabases, ListSchemas, ListTables, DescribeTable) and the
Redshift / Redshift Serverless / STS calls stock tools make around them (DescribeClusters and its waiter,
GetWorkgroup, ListWorkgroups, GetSessionToken), driven by the real AWS CLI and boto3's paginators, replies
checked against botocore's service models."""
import json
import os
import subprocess
import unittest

import boto3
import botocore.config
import botocore.exceptions
import botocore.session

import test_emulator_data_cli as data_cli
from emulator_fixture import Emulator, identities, in_parallel, wait_until

CONFIG = identities([("admin", "AKIDADMIN", "admin-secret", ["*"])], account="111122223333",
                    denials={"nolist": "redshift-data:ListTables",
                             "nocreds": "redshift-serverless:GetCredentials",
                             "nowg": "redshift-serverless:GetWorkgroup"},
                    workgroups=["demo", "etl"], clusters=["redshift-cluster-1"], buckets=["staging"])

DATA = botocore.session.get_session().get_service_model("redshift-data")
SERVERLESS = botocore.session.get_session().get_service_model("redshift-serverless")

SETUP = [
    "create table orders (id int not null, note varchar(20) default 'none', amount decimal(10,2), placed date)",
    "create table order_items (order_id int, sku varchar(12), qty smallint)",
    "create table orderXitems (x bigint)",
    "create view v_orders as select id, amount from orders",
    "create schema stage",
    "create table stage.raw_orders (payload varchar(100), loaded_at timestamp)",
]


class EmulatorCatalogTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(config=CONFIG)
        cls.data = cls.client("redshift-data")
        r = cls.data.batch_execute_statement(WorkgroupName="demo", Database="dev", Sqls=SETUP)
        d = wait_until(lambda: (lambda d: d if d["Status"] in ("FINISHED", "FAILED", "ABORTED") else None)(
            cls.data.describe_statement(Id=r["Id"])), timeout=30)
        assert d and d["Status"] == "FINISHED", d
        # a second database of the workgroup, made by using it
        r = cls.data.execute_statement(WorkgroupName="demo", Database="analytics", Sql="create table t (a int)")
        assert wait_until(lambda: cls.data.describe_statement(Id=r["Id"])["Status"] == "FINISHED", timeout=30)
        # the AWS CLI's calls are independent witnesses and slow to start: run them side by side, two rounds
        dev = ("--workgroup-name", "demo", "--database", "dev")
        cls.cli = dict(in_parallel(lambda kv: (kv[0], cls.run_cli(kv[1])), [
            ("schemas_first", ("redshift-data", "list-schemas") + dev + ("--page-size", "1", "--max-items", "2")),
            ("tables", ("redshift-data", "list-tables") + dev),
            ("describe", ("redshift-data", "describe-table") + dev + ("--schema", "public", "--table", "orders")),
            ("wait", ("redshift", "wait", "cluster-available", "--cluster-identifier", "redshift-cluster-1")),
            ("workgroup", ("redshift-serverless", "get-workgroup", "--workgroup-name", "demo")),
            ("session_token", ("sts", "get-session-token", "--duration-seconds", "900")),
        ], workers=6))
        first = json.loads(cls.cli["schemas_first"].stdout)
        creds = json.loads(cls.cli["session_token"].stdout)["Credentials"]
        env = cls.emu.env(key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                          AWS_SESSION_TOKEN=creds["SessionToken"])
        cls.cli.update(dict(in_parallel(lambda kv: (kv[0], cls.run_cli(kv[1], kv[2])), [
            ("schemas_rest", ("redshift-data", "list-schemas") + dev +
             ("--page-size", "1", "--starting-token", first.get("NextToken", "")), None),
            ("tables_as_session", ("redshift-data", "list-tables") + dev + ("--table-pattern", "orders"), env),
        ])))

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()

    boto = boto3.session.Session()  # one session: its loader reads each service model once

    @classmethod
    def client(cls, service, key="AKIDADMIN", secret="admin-secret", token=None, **kw):
        return cls.boto.client(service, endpoint_url=cls.emu.endpoint, region_name="us-east-1",
                               aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token, **kw)

    @classmethod
    def run_cli(cls, args, env=None, binary="aws"):
        env = env or cls.emu.env(key="AKIDADMIN", secret="admin-secret")
        return subprocess.run([binary, "--endpoint-url", cls.emu.endpoint, "--output", "json"] + list(args), env=env,
                              capture_output=True, text=True, timeout=60)

    def cli_json(self, name):
        p = self.cli[name]
        self.assertEqual(p.returncode, 0, "%s: %s" % (name, p.stderr))
        return json.loads(p.stdout)

    def aws(self, *args, env=None, check=True, binary="aws"):
        env = env or self.emu.env(key="AKIDADMIN", secret="admin-secret")
        p = subprocess.run([binary, "--endpoint-url", self.emu.endpoint, "--output", "json"] + list(args), env=env,
                           capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("aws %s: %s" % (" ".join(args), p.stderr))
        return json.loads(p.stdout) if check else p

    def check(self, value, model, op):
        data_cli.check_shape(self, value, model.operation_model(op).output_shape)

    # ---------------------------------------------------------------- Data API catalog

    def test_list_databases(self):
        out = self.data.list_databases(WorkgroupName="demo", Database="dev")
        out.pop("ResponseMetadata")
        self.check(out, DATA, "ListDatabases")
        self.assertEqual(out["Databases"], ["analytics", "dev"])
        # another workgroup has only its own
        self.assertEqual(self.data.list_databases(WorkgroupName="etl", Database="dev")["Databases"], ["dev"])

    def test_list_schemas_patterns_and_cli_paging(self):
        out = self.data.list_schemas(WorkgroupName="demo", Database="dev")
        self.assertEqual(out["Schemas"], ["information_schema", "pg_catalog", "public", "stage"])
        self.assertEqual(self.data.list_schemas(WorkgroupName="demo", Database="dev", SchemaPattern="st%")["Schemas"],
                         ["stage"])
        self.assertEqual(self.data.list_schemas(WorkgroupName="demo", Database="dev", SchemaPattern="p_b%")["Schemas"],
                         ["public"])
        # the CLI's own paging: one schema per request, two per output page, then the rest
        first = self.cli_json("schemas_first")
        self.check({k: v for k, v in first.items() if k != "NextToken"}, DATA, "ListSchemas")
        self.assertEqual(first["Schemas"], ["information_schema", "pg_catalog"])
        self.assertIn("NextToken", first)
        self.assertEqual(self.cli_json("schemas_rest")["Schemas"], ["public", "stage"])

    def test_list_tables_types_and_patterns(self):
        out = self.cli_json("tables")
        self.check(out, DATA, "ListTables")
        got = {(t["schema"], t["name"]): t["type"] for t in out["Tables"]}
        # names are folded to lower case, as Redshift folds identifiers
        self.assertEqual(got, {("public", "orders"): "TABLE", ("public", "order_items"): "TABLE",
                               ("public", "orderxitems"): "TABLE", ("public", "v_orders"): "VIEW",
                               ("stage", "raw_orders"): "TABLE"})

        def names(**kw):
            return [t["name"] for t in self.data.list_tables(WorkgroupName="demo", **kw)["Tables"]]

        # '_' is any one character, '\_' only itself
        self.assertEqual(sorted(names(Database="dev", TablePattern="order_items")), ["order_items", "orderxitems"])
        self.assertEqual(names(Database="dev", TablePattern="order\\_items"), ["order_items"])
        self.assertEqual(self.data.list_tables(WorkgroupName="demo", Database="dev", SchemaPattern="stage",
                                               TablePattern="%orders")["Tables"],
                         [{"name": "raw_orders", "schema": "stage", "type": "TABLE"}])
        self.assertEqual(names(Database="dev", TablePattern="ORDERS"), [])
        # the other database holds other tables; ConnectedDatabase is only where the caller connects
        self.assertEqual(names(Database="analytics", ConnectedDatabase="dev"), ["t"])

    def test_describe_table(self):
        out = self.cli_json("describe")
        self.check(out, DATA, "DescribeTable")
        self.assertEqual(out["TableName"], "orders")
        cols = {c["name"]: c for c in out["ColumnList"]}
        self.assertEqual([c["name"] for c in out["ColumnList"]], ["id", "note", "amount", "placed"])
        self.assertEqual((cols["id"]["typeName"], cols["id"]["nullable"]), ("int4", 0))
        self.assertEqual((cols["note"]["typeName"], cols["note"]["nullable"]), ("varchar", 1))
        self.assertIn("none", cols["note"]["columnDefault"])
        self.assertEqual((cols["amount"]["typeName"], cols["amount"]["precision"], cols["amount"]["scale"]),
                         ("numeric", 10, 2))
        self.assertEqual(cols["placed"]["typeName"], "date")
        for c in out["ColumnList"]:
            self.assertEqual((c["schemaName"], c["tableName"]), ("public", "orders"))
        # no table: every table's columns; a view is described too
        out = self.data.describe_table(WorkgroupName="demo", Database="dev", Schema="stage")
        self.assertEqual([(c["tableName"], c["name"], c["typeName"]) for c in out["ColumnList"]],
                         [("raw_orders", "payload", "varchar"), ("raw_orders", "loaded_at", "timestamp")])
        out = self.data.describe_table(WorkgroupName="demo", Database="dev", Table="v_orders")
        self.assertEqual([(c["name"], c["typeName"]) for c in out["ColumnList"]],
                         [("id", "int4"), ("amount", "numeric")])

    def test_boto3_paginators_see_everything_once(self):
        target = {"WorkgroupName": "demo", "Database": "dev"}
        for op, key, extra in (("list_databases", "Databases", {}), ("list_schemas", "Schemas", {}),
                               ("list_tables", "Tables", {}),
                               ("describe_table", "ColumnList", {"Schema": "public", "Table": "orders"})):
            whole = getattr(self.data, op)(**target, **extra)[key]
            pages = list(self.data.get_paginator(op).paginate(**target, **extra, PaginationConfig={"PageSize": 1}))
            self.assertEqual(len(pages), len(whole), op)
            for p in pages[:-1]:
                self.assertIn("NextToken", p, op)
            self.assertNotIn("NextToken", pages[-1], op)
            self.assertEqual([item for p in pages for item in p[key]], whole, op)
            built = self.data.get_paginator(op).paginate(**target, **extra,
                                                         PaginationConfig={"PageSize": 2}).build_full_result()
            self.assertEqual(built[key], whole, op)

    def test_catalog_errors(self):
        def error(fn, **kw):
            with self.assertRaises(botocore.exceptions.ClientError) as cm:
                fn(**kw)
            return cm.exception.response["Error"]["Code"], cm.exception.response["Error"]["Message"]

        code, msg = error(self.data.list_tables, WorkgroupName="nope", Database="dev")
        self.assertEqual(code, "ResourceNotFoundException")
        self.assertIn("nope", msg)
        code, _ = error(self.data.list_tables, WorkgroupName="demo", Database="dev", NextToken="garbage")
        self.assertEqual(code, "ValidationException")
        code, _ = error(self.data.list_schemas, WorkgroupName="demo", Database="bad name!")
        self.assertEqual(code, "ValidationException")
        code, msg = error(self.client("redshift-data", "AKIDNOLIST", "nolist-secret").list_tables,
                          WorkgroupName="demo", Database="dev")
        self.assertEqual(code, "AccessDeniedException")
        self.assertIn("redshift-data:ListTables", msg)
        # the Data API fetches database credentials as the caller
        code, msg = error(self.client("redshift-data", "AKIDNOCREDS", "nocreds-secret").list_schemas,
                          WorkgroupName="demo", Database="dev")
        self.assertEqual(code, "AccessDeniedException")
        self.assertIn("redshift-serverless:GetCredentials", msg)

    def test_cli_v2_lists_tables(self):
        out = self.aws("redshift-data", "list-tables", "--workgroup-name", "demo", "--database", "dev",
                       "--schema-pattern", "public", "--table-pattern", "v\\_%", binary="/usr/bin/aws")
        self.assertEqual(out["Tables"], [{"name": "v_orders", "schema": "public", "type": "VIEW"}])

    # ---------------------------------------------------------------- Redshift, Serverless, STS

    def test_cluster_waiter_and_describe_clusters(self):
        p = self.cli["wait"]
        self.assertEqual(p.returncode, 0, p.stderr)
        rs = self.client("redshift")
        out = rs.describe_clusters()
        self.assertEqual([c["ClusterIdentifier"] for c in out["Clusters"]], ["redshift-cluster-1"])
        c = out["Clusters"][0]
        self.assertEqual(c["ClusterStatus"], "available")
        self.assertEqual(c["Endpoint"]["Address"], "127.0.0.1")
        self.assertIsInstance(c["Endpoint"]["Port"], int)
        self.assertEqual(c["DBName"], "dev")
        with self.assertRaises(rs.exceptions.ClusterNotFoundFault):
            rs.describe_clusters(ClusterIdentifier="nope")
        # boto3's waiter reads the same replies
        rs.get_waiter("cluster_available").wait(ClusterIdentifier="redshift-cluster-1",
                                                WaiterConfig={"Delay": 1, "MaxAttempts": 2})

    def test_serverless_workgroups(self):
        out = self.cli_json("workgroup")
        self.check(out, SERVERLESS, "GetWorkgroup")
        wg = out["workgroup"]
        self.assertEqual((wg["workgroupName"], wg["status"]), ("demo", "AVAILABLE"))
        self.assertEqual(wg["endpoint"]["address"], "127.0.0.1")
        self.assertIsInstance(wg["endpoint"]["port"], int)
        self.assertTrue(wg["workgroupArn"].startswith("arn:aws:redshift-serverless:us-east-1:111122223333:workgroup/"))
        self.assertTrue(wg["workgroupArn"].endswith(wg["workgroupId"]))
        sl = self.client("redshift-serverless")
        self.assertEqual(sl.get_workgroup(workgroupName="demo")["workgroup"]["workgroupId"], wg["workgroupId"])
        out = sl.list_workgroups()  # boto3 parses it by the model (creationDate a datetime)
        self.assertEqual([w["workgroupName"] for w in out["workgroups"]], ["demo", "etl"])
        pages = list(sl.get_paginator("list_workgroups").paginate(PaginationConfig={"PageSize": 1}))
        self.assertEqual([w["workgroupName"] for p in pages for w in p["workgroups"]], ["demo", "etl"])
        with self.assertRaises(sl.exceptions.ResourceNotFoundException):
            sl.get_workgroup(workgroupName="nope")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.client("redshift-serverless", "AKIDNOWG", "nowg-secret").get_workgroup(workgroupName="demo")
        self.assertEqual(cm.exception.response["Error"]["Code"], "AccessDeniedException")

    def test_session_token_credentials_sign_calls(self):
        creds = self.cli_json("session_token")["Credentials"]
        self.assertTrue(creds["AccessKeyId"].startswith("ASIA"))
        ident = self.client("sts", creds["AccessKeyId"], creds["SecretAccessKey"],
                            creds["SessionToken"]).get_caller_identity()
        self.assertEqual(ident["Arn"], "arn:aws:iam::111122223333:user/admin")
        tables = self.cli_json("tables_as_session")  # the CLI, signing with them
        self.assertEqual([t["name"] for t in tables["Tables"]], ["orders"])
        # they carry the user's policy, not more
        sts = self.client("sts", "AKIDNOLIST", "nolist-secret")
        c = sts.get_session_token()["Credentials"]
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.client("redshift-data", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]).list_tables(
                WorkgroupName="demo", Database="dev")
        self.assertEqual(cm.exception.response["Error"]["Code"], "AccessDeniedException")
        # a forged token, and session credentials asking for another session, are refused
        forged = self.client("sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"][:-4] + "AAAA")
        with self.assertRaises(botocore.exceptions.ClientError):
            forged.get_caller_identity()
        session = self.client("sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            session.get_session_token()
        self.assertEqual(cm.exception.response["Error"]["Code"], "AccessDenied")
        unchecked = self.client("sts", config=botocore.config.Config(parameter_validation=False))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            unchecked.get_session_token(DurationSeconds=60)
        self.assertEqual(cm.exception.response["Error"]["Code"], "ValidationError")

if __name__ == "__main__":
    unittest.main()
