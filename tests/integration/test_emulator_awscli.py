"""The emulator, driven by independent witnesses: the real AWS CLI and boto3, unchanged, with
--endpoint-url. Replies are checked field by field against what botocore's models require (botocore's own
parsers raise on malformed replies, and the fields are compared with what the test did)."""
import hashlib
import json
import os
import subprocess
import time
import unittest

import boto3
import botocore.config
import botocore.exceptions

from emulator_fixture import Emulator, identities


def aws(emu, *args, env=None, check=True):
    cmd = ["aws", "--endpoint-url", emu.endpoint, "--output", "json"] + list(args)
    p = subprocess.run(cmd, env=env or emu.env(), capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError("aws %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
    return p


def client(emu, service, key="test", secret="test", token=None, region="us-east-1"):
    return boto3.session.Session().client(
        service, endpoint_url=emu.endpoint, region_name=region, aws_access_key_id=key,
        aws_secret_access_key=secret, aws_session_token=token,
        config=botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))


CONFIG = identities(
    [("admin", "AKIDADMIN", "admin-secret", ["*"]),
     ("reader", "AKIDREADER", "reader-secret", ["s3:GetObject", "s3:ListBucket", "sts:GetCallerIdentity"])],
    account="111122223333",
    roles=[{"name": "unload", "allow": ["s3:*"], "default": True, "web_identity_tokens": ["web-token-1"]}],
    sso=[{"access_token": "sso-token-1", "account_id": "111122223333", "role_name": "Admin", "role": "unload"}],
    workgroups=["demo"], clusters=["redshift-cluster-1"], buckets=["staging"])


class EmulatorAwsCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(config=CONFIG)
        cls.admin = dict(key="AKIDADMIN", secret="admin-secret")

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()

    def env(self, **kw):
        return self.emu.env(key="AKIDADMIN", secret="admin-secret", **kw)

    # --- STS -------------------------------------------------------------------------------------------
    def test_sts_get_caller_identity_cli(self):
        out = json.loads(aws(self.emu, "sts", "get-caller-identity", env=self.env()).stdout)
        self.assertEqual(out["Account"], "111122223333")
        self.assertEqual(out["Arn"], "arn:aws:iam::111122223333:user/admin")
        self.assertTrue(out["UserId"])

    def test_sts_wrong_secret_is_refused(self):
        p = aws(self.emu, "sts", "get-caller-identity",
                env=self.emu.env(key="AKIDADMIN", secret="wrong"), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("SignatureDoesNotMatch", p.stderr)
        p = aws(self.emu, "sts", "get-caller-identity", env=self.emu.env(key="AKIDNOBODY", secret="x"),
                check=False)
        self.assertIn("InvalidClientTokenId", p.stderr)

    def test_assume_role_then_use_session(self):
        sts = client(self.emu, "sts", **{"key": "AKIDADMIN", "secret": "admin-secret"})
        r = sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/unload", RoleSessionName="t1",
                            DurationSeconds=900)
        c = r["Credentials"]
        self.assertTrue(c["AccessKeyId"].startswith("ASIA"))
        self.assertGreater(c["Expiration"].timestamp(), time.time() + 800)
        self.assertEqual(r["AssumedRoleUser"]["Arn"], "arn:aws:sts::111122223333:assumed-role/unload/t1")
        sts2 = client(self.emu, "sts", key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"])
        self.assertEqual(sts2.get_caller_identity()["Arn"], "arn:aws:sts::111122223333:assumed-role/unload/t1")
        bad = client(self.emu, "sts", key=c["AccessKeyId"], secret=c["SecretAccessKey"], token="forged")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            bad.get_caller_identity()
        self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidClientTokenId")

    def test_assume_role_with_web_identity_unsigned(self):
        sts = client(self.emu, "sts")
        r = sts.assume_role_with_web_identity(RoleArn="arn:aws:iam::111122223333:role/unload",
                                              RoleSessionName="web", WebIdentityToken="web-token-1")
        self.assertTrue(r["Credentials"]["SessionToken"])
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            sts.assume_role_with_web_identity(RoleArn="arn:aws:iam::111122223333:role/unload",
                                              RoleSessionName="web", WebIdentityToken="nope")
        self.assertEqual(cm.exception.response["Error"]["Code"], "AccessDenied")

    def test_sso_get_role_credentials(self):
        sso = client(self.emu, "sso")
        r = sso.get_role_credentials(roleName="Admin", accountId="111122223333", accessToken="sso-token-1")
        self.assertTrue(r["roleCredentials"]["accessKeyId"].startswith("ASIA"))
        self.assertGreater(r["roleCredentials"]["expiration"], int(time.time() * 1000))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            sso.get_role_credentials(roleName="Admin", accountId="111122223333", accessToken="bad")
        self.assertEqual(cm.exception.response["Error"]["Code"], "UnauthorizedException")

    def test_database_credentials(self):
        rs = client(self.emu, "redshift-serverless", key="AKIDADMIN", secret="admin-secret")
        r = rs.get_credentials(workgroupName="demo", dbName="dev")
        self.assertEqual(r["dbUser"], "IAM:admin")
        self.assertTrue(r["dbPassword"])
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            rs.get_credentials(workgroupName="nope", dbName="dev")
        self.assertEqual(cm.exception.response["Error"]["Code"], "ResourceNotFoundException")
        rsc = client(self.emu, "redshift", key="AKIDADMIN", secret="admin-secret")
        r = rsc.get_cluster_credentials_with_iam(ClusterIdentifier="redshift-cluster-1", DbName="dev")
        self.assertEqual(r["DbUser"], "IAM:admin")
        self.assertGreater(r["Expiration"].timestamp(), time.time())
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            rsc.get_cluster_credentials_with_iam(ClusterIdentifier="nope", DbName="dev")
        self.assertEqual(cm.exception.response["Error"]["Code"], "ClusterNotFound")
        reader = client(self.emu, "redshift-serverless", key="AKIDREADER", secret="reader-secret")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            reader.get_credentials(workgroupName="demo", dbName="dev")
        self.assertEqual(cm.exception.response["Error"]["Code"], "AccessDeniedException")
        self.assertIn("redshift-serverless:GetCredentials", cm.exception.response["Error"]["Message"])

    # --- S3 --------------------------------------------------------------------------------------------
    def test_s3_cli_round_trip(self):
        env = self.env()
        aws(self.emu, "s3", "mb", "s3://cli-bucket", env=env)
        src = os.path.join(self.emu.tmp, "payload.bin")
        data = os.urandom(3 * 1024 * 1024 + 17)
        with open(src, "wb") as f:
            f.write(data)
        aws(self.emu, "s3", "cp", src, "s3://cli-bucket/dir/payload.bin", env=env)
        aws(self.emu, "s3", "cp", src, "s3://cli-bucket/dir/sub/ütf8 name.bin", env=env)
        ls = aws(self.emu, "s3", "ls", "s3://cli-bucket/dir/", env=env).stdout
        self.assertIn("payload.bin", ls)
        self.assertIn("PRE sub/", ls)
        dst = os.path.join(self.emu.tmp, "back.bin")
        aws(self.emu, "s3", "cp", "s3://cli-bucket/dir/sub/ütf8 name.bin", dst, env=env)
        with open(dst, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(data).hexdigest())
        aws(self.emu, "s3", "rm", "--recursive", "s3://cli-bucket/dir/", env=env)
        self.assertEqual(aws(self.emu, "s3", "ls", "s3://cli-bucket/", env=env, check=False).stdout.strip(), "")

    def test_s3_boto3_listing_and_errors(self):
        s3 = client(self.emu, "s3", key="AKIDADMIN", secret="admin-secret")
        s3.create_bucket(Bucket="list-bucket")
        keys = ["a/%04d" % i for i in range(1205)] + ["b/x", "b/y/z"]
        for k in keys:
            s3.put_object(Bucket="list-bucket", Key=k, Body=k.encode())
        pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="list-bucket", Prefix="a/"))
        got = [o["Key"] for p in pages for o in p.get("Contents", [])]
        self.assertEqual(got, sorted(k for k in keys if k.startswith("a/")))
        self.assertGreaterEqual(len(pages), 2)
        r = s3.list_objects_v2(Bucket="list-bucket", Delimiter="/")
        self.assertEqual([p["Prefix"] for p in r["CommonPrefixes"]], ["a/", "b/"])
        r = s3.get_object(Bucket="list-bucket", Key="a/0001", Range="bytes=2-3")
        self.assertEqual(r["Body"].read(), b"00")
        self.assertEqual(r["ContentRange"], "bytes 2-3/6")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            s3.get_object(Bucket="list-bucket", Key="missing")
        self.assertEqual(cm.exception.response["Error"]["Code"], "NoSuchKey")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            s3.get_object(Bucket="no-such-bucket", Key="x")
        self.assertEqual(cm.exception.response["Error"]["Code"], "NoSuchBucket")
        d = s3.delete_objects(Bucket="list-bucket", Delete={"Objects": [{"Key": k} for k in keys[:1000]]})
        self.assertEqual(len(d.get("Deleted", [])), 1000)
        self.assertEqual(s3.head_bucket(Bucket="list-bucket")["ResponseMetadata"]["HTTPHeaders"]
                         .get("x-amz-bucket-region"), "us-east-1")

    def test_s3_denied_for_reader(self):
        s3 = client(self.emu, "s3", key="AKIDREADER", secret="reader-secret")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            s3.put_object(Bucket="staging", Key="x", Body=b"x")
        self.assertEqual(cm.exception.response["Error"]["Code"], "AccessDenied")

    def test_skewed_clock_refused(self):
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        import datetime
        import urllib.error
        import urllib.request
        req = botocore.awsrequest.AWSRequest(method="GET", url=self.emu.endpoint + "/staging?list-type=2")
        old = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
        signer = botocore.auth.S3SigV4Auth(botocore.credentials.Credentials("AKIDADMIN", "admin-secret"),
                                           "s3", "us-east-1")
        from unittest import mock
        with mock.patch("botocore.auth.get_current_datetime", return_value=old):
            signer.add_auth(req)
        prepared = req.prepare()
        r = urllib.request.Request(prepared.url, headers=dict(prepared.headers), method="GET")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(r, timeout=10)
        self.assertEqual(cm.exception.code, 403)
        self.assertIn(b"RequestTimeTooSkewed", cm.exception.read())


if __name__ == "__main__":
    unittest.main()
