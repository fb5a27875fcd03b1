"""Two S3 refusals the emulator answers in S3's own words, with boto3 and the AWS CLI as witnesses: requests
signed with Signature Version 2 (botocore's "s3" header signer and "s3-query" presigned URLs), and
CreateBucket's location constraint against the region of the endpoint the request was signed for."""
import subprocess
import unittest
import urllib.error
import urllib.request

import boto3
import botocore.config
import botocore.exceptions

from emulator_fixture import Emulator

SIGV2 = "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."


def client(emu, region="us-east-1", **config):
    return boto3.session.Session().client(
        "s3", endpoint_url=emu.endpoint, region_name=region, aws_access_key_id="test", aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}, **config))


class EmulatorS3AuthRegionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(lifetime=120)
        cls.s3 = client(cls.emu)
        cls.s3.create_bucket(Bucket="plain")
        cls.s3.put_object(Bucket="plain", Key="k", Body=b"v")

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()

    def error(self, fn, **kw):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            fn(**kw)
        e = cm.exception.response
        return e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Code"], e["Error"]["Message"]

    def test_signature_v2_is_refused(self):
        v2 = client(self.emu, signature_version="s3")
        self.assertEqual(self.error(v2.get_object, Bucket="plain", Key="k"), (400, "InvalidRequest", SIGV2))
        self.assertEqual(self.error(v2.put_object, Bucket="plain", Key="k2", Body=b"x"),
                         (400, "InvalidRequest", SIGV2))
        url = client(self.emu, signature_version="s3-query").generate_presigned_url(
            "get_object", Params={"Bucket": "plain", "Key": "k"})
        self.assertIn("AWSAccessKeyId=", url)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(url, timeout=10)
        self.assertEqual(cm.exception.code, 400)
        body = cm.exception.read().decode()
        self.assertIn("<Code>InvalidRequest</Code>", body)
        self.assertIn(SIGV2, body)
        # the same object with SigV4 (header and presigned) is served
        self.assertEqual(self.s3.get_object(Bucket="plain", Key="k")["Body"].read(), b"v")
        url4 = client(self.emu, signature_version="s3v4").generate_presigned_url(
            "get_object", Params={"Bucket": "plain", "Key": "k"})  # boto3 presigns S3 with v2 unless told
        with urllib.request.urlopen(url4, timeout=10) as r:
            self.assertEqual(r.read(), b"v")
        self.assertEqual(self.error(v2.head_object, Bucket="plain", Key="k")[0], 400)

    def test_create_bucket_location_constraint(self):
        eu = client(self.emu, region="eu-west-1")
        eu.create_bucket(Bucket="in-eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        self.assertEqual(self.s3.get_bucket_location(Bucket="in-eu")["LocationConstraint"], "eu-west-1")
        self.assertEqual(
            self.error(eu.create_bucket, Bucket="other-1", CreateBucketConfiguration={"LocationConstraint": "us-west-2"}),
            (400, "IllegalLocationConstraintException",
             "The us-west-2 location constraint is incompatible for the region specific endpoint this request was "
             "sent to."))
        self.assertEqual(
            self.error(eu.create_bucket, Bucket="other-2"),
            (400, "IllegalLocationConstraintException",
             "The unspecified location constraint is incompatible for the region specific endpoint this request was "
             "sent to."))
        self.assertEqual(
            self.error(self.s3.create_bucket, Bucket="other-3",
                       CreateBucketConfiguration={"LocationConstraint": "us-east-1"})[1], "InvalidLocationConstraint")
        # the us-east-1 endpoint takes another region's constraint, as S3's global endpoint does
        self.s3.create_bucket(Bucket="from-east", CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
        self.assertEqual(self.s3.get_bucket_location(Bucket="from-east")["LocationConstraint"], "ap-south-1")
        names = [b["Name"] for b in self.s3.list_buckets()["Buckets"]]
        self.assertNotIn("other-1", names)
        self.assertNotIn("other-2", names)
        # the CLI's mb in a region sends its constraint
        p = subprocess.run(["aws", "--endpoint-url", self.emu.endpoint, "s3", "mb", "s3://cli-west"],
                           env=self.emu.env(region="us-west-2"), capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.s3.get_bucket_location(Bucket="cli-west")["LocationConstraint"], "us-west-2")


if __name__ == "__main__":
    unittest.main()
