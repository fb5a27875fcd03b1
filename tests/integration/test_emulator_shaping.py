"""The emulator's network shaping seen through boto3: s3.get.bandwidth paces each connection's GetObject body
(a ranged GET returns exactly its bytes and takes at least the paced time), s3.get.latency.ms holds back
each answer's first byte, the older GetObject faults (truncate, reset, slowdown) still hit ranged GETs with
shaping on, 40 shaped connections are served at once, and unload.mbps paces an UNLOAD: part files are
listed before the statement is FINISHED, none sooner than its cumulative bytes / rate, and the statement
lasts at least total bytes / rate. Only lower bounds of deliberate delays are asserted."""
import os
import threading
import time
import unittest

import boto3
import botocore.config
import botocore.exceptions

from emulator_fixture import Emulator, in_parallel

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
BUCKET = "redduck-staging"
MB = 1000 * 1000


def client(emu, service, pool=10):
    return boto3.session.Session().client(
        service, endpoint_url=emu.endpoint, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"},
                                      s3={"addressing_style": "path"}, max_pool_connections=pool,
                                      connect_timeout=5, read_timeout=30))


class GetShapingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(args=["--faults", "s3.get.bandwidth=2MB,s3.get.latency.ms=200"], lifetime=300)
        cls.s3 = client(cls.emu, "s3", pool=48)
        cls.data = os.urandom(3 * MB)
        cls.s3.put_object(Bucket=BUCKET, Key="big", Body=cls.data)

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()

    def test_ranged_get_is_paced_and_exact(self):
        t0 = time.monotonic()
        r = self.s3.get_object(Bucket=BUCKET, Key="big", Range="bytes=1000000-2999999")
        body = r["Body"].read()
        took = time.monotonic() - t0
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 206)
        self.assertEqual(r["ContentRange"], "bytes 1000000-2999999/3000000")
        self.assertEqual(body, self.data[1000000:3000000])
        # 2 MB at 2 MB/s, less the bucket's first burst (1/20 s of data), plus the 200 ms before the first byte
        self.assertGreaterEqual(took, 0.2 + 0.95)

    def test_first_byte_latency(self):
        t0 = time.monotonic()
        body = self.s3.get_object(Bucket=BUCKET, Key="big", Range="bytes=0-9")["Body"].read()
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)
        self.assertEqual(body, self.data[:10])
        t0 = time.monotonic()  # an answer without a body (not found) waits as well
        with self.assertRaises(botocore.exceptions.ClientError):
            self.s3.get_object(Bucket=BUCKET, Key="missing")
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)

    def test_forty_connections_at_once(self):
        """More connections than a 16-32-way download opens, each with its own range, all served."""
        size = 50 * 1000

        def fetch(i):
            first = i * size
            rng = "bytes=%d-%d" % (first, first + size - 1)
            return self.s3.get_object(Bucket=BUCKET, Key="big", Range=rng)["Body"].read()

        bodies = in_parallel(fetch, range(40), workers=40)
        for i, b in enumerate(bodies):
            self.assertEqual(b, self.data[i * size:(i + 1) * size], i)


class FaultsWithShapingTest(unittest.TestCase):
    """The GetObject faults drawn on ranged answers while shaping is on."""

    def emulator(self, faults):
        emu = Emulator(args=["--faults", faults + ",s3.get.bandwidth=4MB,s3.get.latency.ms=20"], lifetime=120)
        self.addCleanup(emu.cleanup)
        s3 = client(emu, "s3")
        s3.put_object(Bucket=BUCKET, Key="k", Body=os.urandom(2 * MB))
        return s3

    def test_truncate_and_reset_cut_a_ranged_body(self):
        for fault in ("s3.get.truncate=1", "s3.get.reset=1"):
            s3 = self.emulator(fault)
            with self.assertRaises((botocore.exceptions.ResponseStreamingError, ConnectionError), msg=fault):
                s3.get_object(Bucket=BUCKET, Key="k", Range="bytes=100-1499999")["Body"].read()

    def test_slowdown_on_a_ranged_get(self):
        s3 = self.emulator("s3.get.slowdown=1")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            s3.get_object(Bucket=BUCKET, Key="k", Range="bytes=0-99")
        self.assertEqual(cm.exception.response["Error"]["Code"], "SlowDown")
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 503)


class UnloadPaceTest(unittest.TestCase):
    RATE = 4  # MB per second

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(args=["--faults", "unload.mbps=%d" % cls.RATE, "--slices", "2"], lifetime=300)
        cls.s3 = client(cls.emu, "s3")
        cls.rsd = client(cls.emu, "redshift-data")

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()

    def data_files(self, prefix):
        """{key: (size, first seen)} of the data files (not the manifest) listed under prefix now."""
        r = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return {o["Key"]: o["Size"] for o in r.get("Contents", []) if not o["Key"].endswith("manifest")}

    def test_parts_appear_at_the_pace(self):
        prefix = "paced/run/"
        # about 16 MB of Parquet that compresses little (md5 hex), in files of at most 5 MB
        sql = ("unload ('select g as id, md5(cast(g as varchar)) as h from generate_series(1, 400000) as t(g)') "
               "to 's3://%s/%s' iam_role default format parquet maxfilesize 5 mb manifest" % (BUCKET, prefix))
        seen = {}  # key -> (size, seconds after the statement was sent)
        t0 = time.monotonic()
        sid = self.rsd.execute_statement(WorkgroupName="demo", Database="dev", Sql=sql)["Id"]
        while True:
            d = self.rsd.describe_statement(Id=sid)
            now = time.monotonic() - t0
            if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
                break
            for k, size in self.data_files(prefix).items():
                seen.setdefault(k, (size, now))
            time.sleep(0.05)
        finished_after = time.monotonic() - t0
        self.assertEqual(d["Status"], "FINISHED", d.get("Error"))
        final = self.data_files(prefix)
        total = sum(final.values())
        self.assertGreaterEqual(len(final), 3)
        self.assertGreater(total, 12 * MB)
        # part files were there while the statement was still running, the first well before its end
        self.assertGreaterEqual(len(seen), 1)
        self.assertLess(min(t for _, t in seen.values()), finished_after - 1.0)
        # no file sooner than its cumulative bytes / rate (files are published in name order)
        cumulative = 0
        for k in sorted(final):
            cumulative += final[k]
            if k in seen:
                self.assertGreaterEqual(seen[k][1], cumulative / (self.RATE * MB), k)
        # the statement as a whole: at least total / rate, by the client's clock and by its own Duration
        self.assertGreaterEqual(finished_after, total / (self.RATE * MB))
        self.assertGreaterEqual(d["Duration"] / 1e9, total / (self.RATE * MB))
        manifest = self.s3.get_object(Bucket=BUCKET, Key=prefix + "manifest")["Body"].read()
        self.assertIn(b"record_count", manifest)

    def test_cancel_ends_a_paced_unload(self):
        prefix = "paced/cancelled/"
        sql = ("unload ('select g as id, md5(cast(g as varchar)) as h from generate_series(1, 400000) as t(g)') "
               "to 's3://%s/%s' iam_role default format parquet maxfilesize 5 mb manifest" % (BUCKET, prefix))
        sid = self.rsd.execute_statement(WorkgroupName="demo", Database="dev", Sql=sql)["Id"]
        deadline = time.monotonic() + 30
        while self.rsd.describe_statement(Id=sid)["Status"] != "STARTED" and time.monotonic() < deadline:
            time.sleep(0.02)
        self.rsd.cancel_statement(Id=sid)
        t0 = time.monotonic()
        while self.rsd.describe_statement(Id=sid)["Status"] not in ("FINISHED", "FAILED", "ABORTED"):
            self.assertLess(time.monotonic() - t0, 30)
            time.sleep(0.05)
        self.assertEqual(self.rsd.describe_statement(Id=sid)["Status"], "ABORTED")
        r = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "manifest")
        self.assertEqual(r.get("KeyCount", 0), 0)  # never reached its end


if __name__ == "__main__":
    unittest.main()
