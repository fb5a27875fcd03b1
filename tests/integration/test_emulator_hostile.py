"""The emulator against clients that misbehave: a body that is not the one signed, large unauthenticated
bodies, many idle connections, every documented fault at probability 1, stray scratch files from a crash,
and dollar-quoted SQL inside UNLOAD. Raw requests are signed with botocore's own signer (the independent
witness) and sent over plain sockets so that headers and bodies can disagree."""
import hashlib
import hmac
import http.client
import json
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import botocore.exceptions

from emulator_fixture import REDDUCK, Emulator, clean_env, wait_until

BUCKET = "redduck-staging"
SHA_MISMATCH = "The provided 'x-amz-content-sha256' header does not match what was computed."


def client(emu, service, secret="test"):
    return boto3.session.Session().client(
        service, endpoint_url=emu.endpoint, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"},
                                      s3={"addressing_style": "path"},
                                      connect_timeout=5, read_timeout=10))


def signed_headers(emu, method, path, body, service="s3", secret="test", headers=None):
    """The headers botocore signs for this request (S3 over plain http: the body's SHA-256 is signed)."""
    req = botocore.awsrequest.AWSRequest(method=method, url=emu.endpoint + path, data=body, headers=headers or {})
    creds = botocore.credentials.Credentials("test", secret)
    if service == "s3-streaming":
        botocore.auth.SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
    else:
        auth = botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
        auth(creds, service, "us-east-1").add_auth(req)
    return dict(req.headers.items())


def aws_chunked_body(headers, secret, chunks):
    """A STREAMING-AWS4-HMAC-SHA256-PAYLOAD body, written from AWS's "Transferring Payload in Multiple Chunks":
    each chunk signed over the previous signature, seeded by the request's own."""
    seed = headers["Authorization"].rsplit("Signature=", 1)[1]
    amz_date = headers["X-Amz-Date"]
    scope = "%s/us-east-1/s3/aws4_request" % amz_date[:8]
    key = ("AWS4" + secret).encode()
    for part in (amz_date[:8], "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    out, prev = [], seed
    for chunk in list(chunks) + [b""]:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, hashlib.sha256(b"").hexdigest(),
                             hashlib.sha256(chunk).hexdigest()])
        prev = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        out.append(b"%x;chunk-signature=%s\r\n%s\r\n" % (len(chunk), prev.encode(), chunk))
    return b"".join(out)


def send(emu, method, path, body, headers):
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def peak_rss_kb(pid):
    """The process's peak resident set (VmHWM), in kB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def header_block(method, path, headers):
    lines = ["%s %s HTTP/1.1" % (method, path)] + ["%s: %s" % kv for kv in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def push_large_body(port, head, limit=48 << 20):
    """Sends the request head, reads the answer the emulator gives from the headers alone, then tries to push
    `limit` bytes of body. Returns (status line, bytes the emulator took before closing)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(head)
        answer = s.recv(200).decode("latin-1")  # the emulator answers before any body arrives
        sent, piece = 0, b"x" * (1 << 20)
        try:
            while sent < limit:
                s.sendall(piece)
                sent += len(piece)
        except OSError:
            pass
        return answer.split("\r\n", 1)[0], sent
    finally:
        s.close()


class HostileClientsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator()

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()

    def test_body_that_was_not_signed_is_refused_and_not_stored(self):
        path = "/%s/tampered" % BUCKET
        h = signed_headers(self.emu, "PUT", path, b"the body that was signed")
        status, body = send(self.emu, "PUT", path, b"another body, same size!", h)
        self.assertEqual(status, 400, body)
        self.assertIn("<Code>XAmzContentSHA256Mismatch</Code>", body)
        self.assertIn("<Message>%s</Message>" % SHA_MISMATCH.replace("'", "&apos;"), body.replace("'", "&apos;"))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            client(self.emu, "s3").head_object(Bucket=BUCKET, Key="tampered")
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 404)
        # the body that was signed goes through
        status, body = send(self.emu, "PUT", path, b"the body that was signed", h)
        self.assertEqual(status, 200, body)
        got = client(self.emu, "s3").get_object(Bucket=BUCKET, Key="tampered")["Body"].read()
        self.assertEqual(got, b"the body that was signed")

    def test_signed_aws_chunked_is_verified_chunk_by_chunk(self):
        data = os.urandom(65536 + 4464)

        def upload(key, tamper=False):
            path = "/%s/%s" % (BUCKET, key)
            # botocore's base signer signs the X-Amz-Content-SHA256 it is given (its S3 signer would replace it)
            h = signed_headers(self.emu, "PUT", path, b"", service="s3-streaming", headers={
                "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "Content-Encoding": "aws-chunked",
                "x-amz-decoded-content-length": str(len(data))})
            body = bytearray(aws_chunked_body(h, "test", [data[:65536], data[65536:]]))
            if tamper:
                body[len(body) // 2] ^= 1  # one data byte of the first chunk
            return send(self.emu, "PUT", path, bytes(body), h)

        status, body = upload("chunked")
        self.assertEqual(status, 200, body)
        s3 = client(self.emu, "s3")
        self.assertEqual(s3.get_object(Bucket=BUCKET, Key="chunked")["Body"].read(), data)
        status, body = upload("chunked-tampered", tamper=True)
        self.assertEqual(status, 403, body)
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", body)
        with self.assertRaises(botocore.exceptions.ClientError):
            s3.head_object(Bucket=BUCKET, Key="chunked-tampered")

    def test_put_body_streams_to_disk(self):
        pid = self.emu.proc.pid
        before = peak_rss_kb(pid)
        body = os.urandom(1 << 20) * 48
        s3 = client(self.emu, "s3")
        s3.put_object(Bucket=BUCKET, Key="streamed", Body=body)
        self.assertLess(peak_rss_kb(pid) - before, 24 * 1024)  # kB: the 48 MB never sat in memory
        self.assertEqual(s3.head_object(Bucket=BUCKET, Key="streamed")["ContentLength"], len(body))
        s3.delete_object(Bucket=BUCKET, Key="streamed")

    def test_large_unauthenticated_bodies_are_not_read(self):
        pid = self.emu.proc.pid
        before = peak_rss_kb(pid)
        big = 300 << 20
        put = "/%s/big" % BUCKET
        bad_sig = signed_headers(self.emu, "PUT", put, b"", secret="not-the-secret")
        data = signed_headers(self.emu, "POST", "/", b"{}", service="redshift-data",
                              headers={"X-Amz-Target": "RedshiftData.ExecuteStatement",
                                       "Content-Type": "application/x-amz-json-1.1"})
        heads = [
            ({"Host": "127.0.0.1", "Content-Length": str(big)}, "PUT", put, "403"),
            (dict(bad_sig, **{"Content-Length": str(big)}), "PUT", put, "403"),
            (dict(data, **{"Content-Length": str(big)}), "POST", "/", "413"),
            ({"Host": "127.0.0.1", "Content-Type": "application/x-www-form-urlencoded",
              "Content-Length": str(big)}, "POST", "/", "413"),
        ]
        for headers, method, path, want in heads:
            status, taken = push_large_body(self.emu.port, header_block(method, path, headers))
            self.assertIn(" %s " % want, status + " ", (method, path, status))
            self.assertLess(taken, 48 << 20, (method, path))  # refused before the body was read
        # a body without Content-Length that runs over the cap is dropped as it comes
        s = socket.create_connection(("127.0.0.1", self.emu.port), timeout=10)
        s.sendall(header_block("POST", "/", {"Host": "127.0.0.1", "Transfer-Encoding": "chunked",
                                             "Content-Type": "application/x-www-form-urlencoded"}))
        piece = b"100000\r\n" + b"y" * (1 << 20) + b"\r\n"
        for _ in range(12):
            s.sendall(piece)
        s.sendall(b"0\r\n\r\n")
        self.assertIn(b" 413 ", s.recv(200))
        s.close()
        self.assertLess(peak_rss_kb(pid) - before, 100 * 1024)  # kB: nothing of those bodies was kept

    def test_idle_connections_leave_it_responsive(self):
        # 1,100 idle connections from one client address (on loopback): at most 256 of them are kept
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 1100
        if soft < want + 100:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want + 200), hard))
            want = min(want, min(hard, want + 200) - 100)
        idle = []
        try:
            for _ in range(want):
                c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                c.bind(("127.0.0.2", 0))
                c.settimeout(2)
                try:
                    c.connect(("127.0.0.1", self.emu.port))
                except OSError:
                    c.close()
                    continue
                idle.append(c)
            time.sleep(0.3)
            kept = 0
            for c in idle:
                c.setblocking(False)
                try:
                    kept += c.recv(1) != b""
                except BlockingIOError:
                    kept += 1
                except OSError:
                    pass
            self.assertLessEqual(kept, 256)
            # another client is still served, quickly
            t0 = time.monotonic()
            names = [b["Name"] for b in client(self.emu, "s3").list_buckets()["Buckets"]]
            self.assertIn(BUCKET, names)
            self.assertLess(time.monotonic() - t0, 2.0)
        finally:
            for c in idle:
                c.close()


class FaultsTest(unittest.TestCase):
    """Every documented fault, at probability 1 so that it fires on every draw."""

    def emulator(self, faults):
        emu = Emulator(args=["--faults", faults])
        self.addCleanup(emu.cleanup)
        return emu

    def assertCode(self, fn, code, status=None):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            fn()
        self.assertEqual(cm.exception.response["Error"]["Code"], code)
        if status:
            self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], status)

    def test_slowdowns_throttles_and_latency(self):
        emu = self.emulator("s3.list.slowdown=1,s3.put.slowdown=1,sts.throttle=1,data.describe.throttle=1,"
                            "data.execute.throttle=1,data.result.throttle=1,latency.ms=50")
        s3, data = client(emu, "s3"), client(emu, "redshift-data")
        self.assertCode(lambda: s3.list_objects_v2(Bucket=BUCKET), "SlowDown", 503)  # s3.list.slowdown
        self.assertCode(lambda: s3.list_objects(Bucket=BUCKET), "SlowDown", 503)
        self.assertCode(lambda: s3.list_buckets(), "SlowDown", 503)
        self.assertCode(lambda: s3.put_object(Bucket=BUCKET, Key="k", Body=b"abc"), "SlowDown", 503)
        self.assertCode(lambda: s3.head_object(Bucket=BUCKET, Key="k"), "404")  # the slowed PUT stored nothing
        self.assertCode(lambda: client(emu, "sts").get_caller_identity(), "Throttling")
        self.assertCode(lambda: data.execute_statement(WorkgroupName="demo", Database="dev", Sql="select 1"),
                        "ThrottlingException")
        self.assertCode(lambda: data.describe_statement(Id="00000000-0000-0000-0000-000000000000"),
                        "ThrottlingException")
        self.assertCode(lambda: data.get_statement_result(Id="00000000-0000-0000-0000-000000000000"),
                        "ThrottlingException")
        t0 = time.monotonic()
        s3.head_bucket(Bucket=BUCKET)  # latency.ms: no fault but the delay
        self.assertGreaterEqual(time.monotonic() - t0, 0.05)

    def test_get_slowdown_and_execute_fail(self):
        emu = self.emulator("s3.get.slowdown=1,data.execute.fail=1")
        s3, data = client(emu, "s3"), client(emu, "redshift-data")
        s3.put_object(Bucket=BUCKET, Key="k", Body=b"abc")
        self.assertCode(lambda: s3.get_object(Bucket=BUCKET, Key="k"), "SlowDown", 503)
        self.assertEqual(s3.head_object(Bucket=BUCKET, Key="k")["ContentLength"], 3)
        sid = data.execute_statement(WorkgroupName="demo", Database="dev", Sql="select 1")["Id"]
        d = wait_until(lambda: (lambda d: d if d["Status"] in ("FINISHED", "FAILED", "ABORTED") else None)(
            data.describe_statement(Id=sid)), timeout=30)
        self.assertEqual(d["Status"], "FAILED")

    def get_raw(self, emu, size):
        s3 = client(emu, "s3")
        s3.put_object(Bucket=BUCKET, Key="big", Body=b"z" * size)
        path = "/%s/big" % BUCKET
        conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
        conn.request("GET", path, headers=signed_headers(emu, "GET", path, b""))
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(int(r.getheader("Content-Length")), size)
        return r, conn

    def test_get_reset_is_a_connection_reset(self):
        emu = self.emulator("s3.get.reset=1")
        r, conn = self.get_raw(emu, 4 << 20)
        with self.assertRaises(ConnectionResetError):
            while r.read(65536):
                time.sleep(0.01)  # let the reset arrive while data is still due
        conn.close()

    def test_get_truncate_is_a_short_body(self):
        emu = self.emulator("s3.get.truncate=1")
        # a tiny object: the cut still delivers a byte and closes (a cut before the first byte used to hang)
        s3 = client(emu, "s3")
        s3.put_object(Bucket=BUCKET, Key="tiny", Body=b"qqqqqq")
        t0 = time.monotonic()
        with self.assertRaises(botocore.exceptions.ResponseStreamingError):
            s3.get_object(Bucket=BUCKET, Key="tiny")["Body"].read()
        self.assertLess(time.monotonic() - t0, 5)
        r, conn = self.get_raw(emu, 4 << 20)
        with self.assertRaises(http.client.IncompleteRead):
            r.read()
        conn.close()

    def test_unknown_fault_names_are_refused(self):
        tmp = tempfile.mkdtemp(prefix="rd-emu-faults-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for spec, words in (("s3.list.slowdon=1", "unknown fault 's3.list.slowdon'"),
                            ("s3.get.reset=2", "between 0 and 1")):
            p = subprocess.run([REDDUCK, "emulator", "--port", "0", "--data-dir", os.path.join(tmp, "d"),
                                "--lifetime", "5", "--faults", spec], capture_output=True, text=True, timeout=30,
                               env=clean_env(tmp))
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(words, p.stderr)


class RestartAndSqlTest(unittest.TestCase):
    def test_stray_scratch_files_are_swept_at_start(self):
        first = Emulator()
        self.addCleanup(first.cleanup)
        client(first, "s3").put_object(Bucket=BUCKET, Key="kept", Body=b"real data")
        first.stop()
        tmp = os.path.join(first.data_dir, "tmp")
        stray = [os.path.join(tmp, n) for n in ("unload-4242-1", "unload-4242-2")]
        for path in stray:
            open(path, "w").close()  # 0-byte files, as a crash mid-UNLOAD leaves them
        second = Emulator(data_dir=first.data_dir)
        self.addCleanup(second.cleanup)
        self.assertEqual([p for p in stray if os.path.exists(p)], [])
        self.assertTrue(os.path.isdir(tmp))
        got = client(second, "s3").get_object(Bucket=BUCKET, Key="kept")["Body"].read()
        self.assertEqual(got, b"real data")

    def test_dollar_quoted_string_through_unload(self):
        emu = Emulator()
        self.addCleanup(emu.cleanup)
        work = tempfile.mkdtemp(prefix="rd-dq-")
        self.addCleanup(shutil.rmtree, work, True)
        db = os.path.join(work, "dq.duckdb")
        p = subprocess.run([REDDUCK, "ingest", "--workgroup", "demo", "--staging", "s3://%s/dq" % BUCKET,
                            "--via", "unload", "--sql", "select $$a'b$$ as x, $t$c$$d$t$ as y", "--into", db],
                           capture_output=True, text=True, env=emu.env(), timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        q = subprocess.run([REDDUCK, "query", db, "select x, y from result", "--json"], capture_output=True,
                           text=True, env=emu.env(), timeout=60)
        self.assertEqual(q.returncode, 0, q.stderr)
        out = json.loads(q.stdout)
        rows = out["rows"] if isinstance(out, dict) else out
        self.assertEqual(rows[0]["x"] if isinstance(rows[0], dict) else rows[0][0], "a'b")
        self.assertEqual(rows[0]["y"] if isinstance(rows[0], dict) else rows[0][1], "c$$d")


if __name__ == "__main__":
    unittest.main()
