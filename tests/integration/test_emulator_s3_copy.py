"""The emulator's CopyObject and UploadPartCopy, driven by the stock AWS CLI (`aws s3 cp` between buckets with
v1 and Debian's v2, `aws s3 mv`, `aws s3 sync` between prefixes) and boto3 (copy_object's metadata directive, conditions, odd
source keys and version ids; the managed copy() of an object over its multipart threshold, which uses
UploadPartCopy), with the authorisation S3 asks for: s3:GetObject on the source, s3:PutObject on the
destination."""
import hashlib
import os
import subprocess
import unittest

import boto3
import boto3.s3.transfer
import botocore.config
import botocore.exceptions

from emulator_fixture import Emulator, identities, in_parallel

MIB = 1 << 20
V2 = "/usr/bin/aws"  # Debian's AWS CLI v2: a second witness (it ignores AWS_ENDPOINT_URL)

CONFIG = identities(
    [("admin", "AKIDADMIN", "admin-secret", ["*"]),
     ("reader", "AKIDREADER", "reader-secret", ["s3:GetObject", "s3:ListBucket"]),
     ("writer", "AKIDWRITER", "writer-secret", ["s3:PutObject", "s3:ListBucket"])],
    buckets=["src", "dst"])

SELF_COPY = ("This copy request is illegal because it is trying to copy an object to itself without changing the "
             "object's metadata, storage class, website redirect location or encryption attributes.")


def client(emu, key, secret):
    return boto3.session.Session().client(
        "s3", endpoint_url=emu.endpoint, region_name="us-east-1", aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))


class EmulatorS3CopyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(config=CONFIG, lifetime=300)
        cls.s3 = client(cls.emu, "AKIDADMIN", "admin-secret")

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()

    def aws(self, *args, binary="aws"):
        p = subprocess.run([binary, "--endpoint-url", self.emu.endpoint] + list(args),
                           env=self.emu.env(key="AKIDADMIN", secret="admin-secret"), capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def error(self, fn, **kw):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            fn(**kw)
        return cm.exception.response["Error"]["Code"], cm.exception.response["Error"].get("Message")

    def body(self, bucket, key):
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def keys(self, bucket, prefix):
        return sorted(o["Key"] for o in self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))

    # --- the AWS CLI ------------------------------------------------------------------------------------
    def test_cli_cp_mv_and_sync(self):
        for i in range(3):
            self.s3.put_object(Bucket="src", Key="cli/in/f%d.txt" % i, Body=b"file %d" % i,
                               Metadata={"n": str(i)})
        self.s3.put_object(Bucket="src", Key="cli/mv/f.txt", Body=b"moving")
        in_parallel(lambda job: self.aws(*job[1:], binary=job[0]), [
            ("aws", "s3", "cp", "s3://src/cli/in/f0.txt", "s3://dst/cli/copied.txt"),
            ("aws", "s3", "mv", "s3://src/cli/mv/f.txt", "s3://src/cli/moved.txt"),
            ("aws", "s3", "sync", "s3://src/cli/in/", "s3://src/cli/out/"),
            (V2, "s3", "cp", "s3://src/cli/in/f2.txt", "s3://dst/cli/v2.txt")], workers=4)
        self.assertEqual(self.body("dst", "cli/v2.txt"), b"file 2")
        self.assertEqual(self.s3.head_object(Bucket="dst", Key="cli/v2.txt")["Metadata"], {"n": "2"})
        self.assertEqual(self.body("dst", "cli/copied.txt"), b"file 0")
        self.assertEqual(self.s3.head_object(Bucket="dst", Key="cli/copied.txt")["Metadata"], {"n": "0"})
        self.assertEqual(self.body("src", "cli/moved.txt"), b"moving")
        self.assertEqual(self.keys("src", "cli/mv/"), [])
        self.assertEqual(self.keys("src", "cli/out/"), ["cli/out/f0.txt", "cli/out/f1.txt", "cli/out/f2.txt"])
        self.assertEqual(self.body("src", "cli/out/f2.txt"), b"file 2")
        self.assertEqual(self.s3.head_object(Bucket="src", Key="cli/out/f1.txt")["Metadata"], {"n": "1"})

    # --- CopyObject -------------------------------------------------------------------------------------
    def test_copy_object_directives_conditions_and_sources(self):
        s3 = self.s3
        put = s3.put_object(Bucket="src", Key="co/a b+ç.txt", Body=b"payload", ContentType="text/plain",
                            Metadata={"origin": "src"}, CacheControl="max-age=5")
        etag = put["ETag"]
        # COPY (the default): the source's metadata and content type; boto3 URL-encodes the key
        r = s3.copy_object(Bucket="dst", Key="co/copy", CopySource={"Bucket": "src", "Key": "co/a b+ç.txt"})
        self.assertEqual(r["CopyObjectResult"]["ETag"], etag)
        h = s3.head_object(Bucket="dst", Key="co/copy")
        self.assertEqual((h["Metadata"], h["ContentType"], h["CacheControl"]),
                         ({"origin": "src"}, "text/plain", "max-age=5"))
        # REPLACE: the request's
        s3.copy_object(Bucket="dst", Key="co/replaced", CopySource="src/co/a b+ç.txt",
                       MetadataDirective="REPLACE", Metadata={"fresh": "yes"}, ContentType="application/json")
        h = s3.head_object(Bucket="dst", Key="co/replaced")
        self.assertEqual((h["Metadata"], h["ContentType"]), ({"fresh": "yes"}, "application/json"))
        self.assertNotIn("CacheControl", h)
        # a leading '/', and versionId=null (the only version of an unversioned bucket); botocore URL-encodes
        # the key of a string source
        s3.copy_object(Bucket="dst", Key="co/slash", CopySource="/src/co/a b+ç.txt?versionId=null")
        self.assertEqual(self.body("dst", "co/slash"), b"payload")
        self.assertEqual(self.error(s3.copy_object, Bucket="dst", Key="co/v",
                                    CopySource="src/co/a b+ç.txt?versionId=3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")[0],
                         "NoSuchVersion")
        self.assertEqual(self.error(s3.copy_object, Bucket="dst", Key="co/v",
                                    CopySource="src/co/a b+ç.txt?versionId=%2F%2F")[0], "InvalidArgument")
        self.assertEqual(self.error(s3.copy_object, Bucket="dst", Key="co/v",
                                    CopySource={"Bucket": "src", "Key": "co/missing"})[0], "NoSuchKey")
        # onto itself: only with REPLACE
        code, msg = self.error(s3.copy_object, Bucket="src", Key="co/a b+ç.txt",
                               CopySource={"Bucket": "src", "Key": "co/a b+ç.txt"})
        self.assertEqual((code, msg), ("InvalidRequest", SELF_COPY))
        s3.copy_object(Bucket="src", Key="co/a b+ç.txt", CopySource={"Bucket": "src", "Key": "co/a b+ç.txt"},
                       MetadataDirective="REPLACE", Metadata={"origin": "rewritten"}, ContentType="text/plain")
        self.assertEqual(s3.head_object(Bucket="src", Key="co/a b+ç.txt")["Metadata"], {"origin": "rewritten"})
        self.assertEqual(self.body("src", "co/a b+ç.txt"), b"payload")
        # conditions on the source
        src = {"Bucket": "src", "Key": "co/a b+ç.txt"}
        s3.copy_object(Bucket="dst", Key="co/if", CopySource=src, CopySourceIfMatch=etag)
        for kw in ({"CopySourceIfMatch": '"%s"' % ("0" * 32)}, {"CopySourceIfNoneMatch": etag},
                   {"CopySourceIfModifiedSince": "Wed, 21 Oct 2099 07:28:00 GMT"},
                   {"CopySourceIfUnmodifiedSince": "Wed, 21 Oct 2015 07:28:00 GMT"}):
            code, _ = self.error(s3.copy_object, Bucket="dst", Key="co/if2", CopySource=src, **kw)
            self.assertEqual(code, "PreconditionFailed", kw)
        self.assertEqual(self.keys("dst", "co/if2"), [])

    def test_copy_authorisation(self):
        self.s3.put_object(Bucket="src", Key="auth/obj", Body=b"secret")
        reader = client(self.emu, "AKIDREADER", "reader-secret")
        writer = client(self.emu, "AKIDWRITER", "writer-secret")
        src = {"Bucket": "src", "Key": "auth/obj"}
        self.assertEqual(self.error(reader.copy_object, Bucket="dst", Key="auth/r", CopySource=src)[0],
                         "AccessDenied")  # no s3:PutObject on the destination
        self.assertEqual(self.error(writer.copy_object, Bucket="dst", Key="auth/w", CopySource=src)[0],
                         "AccessDenied")  # no s3:GetObject on the source
        self.assertEqual(self.keys("dst", "auth/"), [])

    # --- UploadPartCopy ---------------------------------------------------------------------------------
    def test_managed_copy_uses_upload_part_copy(self):
        data = os.urandom(10 * MIB + 1000)
        self.s3.put_object(Bucket="src", Key="big/obj", Body=data, Metadata={"size": "11"})
        cfg = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
        self.s3.copy({"Bucket": "src", "Key": "big/obj"}, "dst", "big/copy", Config=cfg)
        h = self.s3.head_object(Bucket="dst", Key="big/copy")
        parts = [data[i:i + 5 * MIB] for i in range(0, len(data), 5 * MIB)]
        md5s = b"".join(hashlib.md5(p).digest() for p in parts)
        self.assertEqual(h["ETag"], '"%s-3"' % hashlib.md5(md5s).hexdigest())  # assembled from 3 part copies
        self.assertEqual(hashlib.sha256(self.body("dst", "big/copy")).digest(), hashlib.sha256(data).digest())
        # ranges: their reply, and the ones S3 refuses
        s3 = self.s3
        up = s3.create_multipart_upload(Bucket="dst", Key="big/ranged")["UploadId"]
        r = s3.upload_part_copy(Bucket="dst", Key="big/ranged", UploadId=up, PartNumber=1,
                                CopySource={"Bucket": "src", "Key": "big/obj"}, CopySourceRange="bytes=10-19")
        self.assertEqual(r["CopyPartResult"]["ETag"], '"%s"' % hashlib.md5(data[10:20]).hexdigest())
        for bad in ("bytes=10-%d" % len(data), "bytes=20-10", "10-19"):
            code, _ = self.error(s3.upload_part_copy, Bucket="dst", Key="big/ranged", UploadId=up, PartNumber=2,
                                 CopySource={"Bucket": "src", "Key": "big/obj"}, CopySourceRange=bad)
            self.assertEqual(code, "InvalidArgument", bad)
        s3.complete_multipart_upload(Bucket="dst", Key="big/ranged", UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]})
        self.assertEqual(self.body("dst", "big/ranged"), data[10:20])


if __name__ == "__main__":
    unittest.main()
