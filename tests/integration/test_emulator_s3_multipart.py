"""The emulator's multipart uploads, object metadata and stored checksums, driven by the stock AWS CLI (v1 and
Debian's v2) and boto3 as independent witnesses: `aws s3 cp` of a 20 MB file and of stdin (both switch to
multipart at 8 MB),
the part rules S3 enforces (EntityTooSmall, InvalidPart, InvalidPartOrder, NoSuchUpload), uploads invisible
until completed, storage released on abort and on a part's re-upload, the "<md5 of md5s>-N" ETag, metadata
kept and replayed on HEAD and GET, and checksums returned with ChecksumMode=ENABLED (whole-object and
composite)."""
import base64
import hashlib
import os
import subprocess
import unittest
import zlib

import boto3
import boto3.s3.transfer
import botocore.config
import botocore.exceptions

from emulator_fixture import Emulator, in_parallel

MIB = 1 << 20
V2 = "/usr/bin/aws"  # Debian's AWS CLI v2: a second witness (it ignores AWS_ENDPOINT_URL)


def multipart_etag(data, part_size):
    parts = [data[i:i + part_size] for i in range(0, len(data), part_size)]
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    return '"%s-%d"' % (hashlib.md5(md5s).hexdigest(), len(parts))


def b64(raw):
    return base64.b64encode(raw).decode()


def crc32_b64(data):
    return b64(zlib.crc32(data).to_bytes(4, "big"))


def tree_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


class EmulatorS3MultipartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(lifetime=300)
        cls.s3 = boto3.session.Session().client(
            "s3", endpoint_url=cls.emu.endpoint, region_name="us-east-1", aws_access_key_id="test",
            aws_secret_access_key="test",
            config=botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
        cls.s3.create_bucket(Bucket="mpu")

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()

    def aws(self, *args, data=None, binary="aws"):
        p = subprocess.run([binary, "--endpoint-url", self.emu.endpoint] + list(args), env=self.emu.env(),
                           input=data, capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        return p

    def error_code(self, fn, **kw):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            fn(**kw)
        return cm.exception.response["Error"]["Code"]

    # --- the AWS CLI ------------------------------------------------------------------------------------
    def test_cli_copies_a_20mb_file_and_stdin(self):
        data = os.urandom(20 * MIB + 123)
        src = os.path.join(self.emu.tmp, "big.bin")
        with open(src, "wb") as f:
            f.write(data)
        streamed = data[:9 * MIB]
        # the CLI's metadata flags on a multipart upload: applied at completion
        meta = ("--metadata", "team=data", "--content-type", "application/x-parquet", "--cache-control", "no-store")
        in_parallel(lambda job: self.aws(*job[0], data=job[1], binary=job[2]),
                    [(("s3", "cp", src, "s3://mpu/cli/big.bin"), None, "aws"),
                     (("s3", "cp", "-", "s3://mpu/cli/stream.bin") + meta, streamed, "aws"),
                     (("s3", "cp", src, "s3://mpu/cli/v2.bin"), None, V2)], workers=3)
        h = self.s3.head_object(Bucket="mpu", Key="cli/stream.bin")
        self.assertEqual((h["Metadata"], h["ContentType"], h["CacheControl"]),
                         ({"team": "data"}, "application/x-parquet", "no-store"))
        for key, want in (("cli/big.bin", data), ("cli/stream.bin", streamed), ("cli/v2.bin", data)):
            got = self.s3.get_object(Bucket="mpu", Key=key)
            self.assertEqual(got["ContentLength"], len(want))
            self.assertEqual(got["ETag"], multipart_etag(want, 8 * MIB))  # the CLI's 8 MiB parts
            self.assertEqual(hashlib.sha256(got["Body"].read()).digest(), hashlib.sha256(want).digest())
        self.assertEqual(self.s3.list_multipart_uploads(Bucket="mpu").get("Uploads", []), [])

    # --- the part rules ---------------------------------------------------------------------------------
    def test_upload_rules_visibility_and_errors(self):
        s3 = self.s3
        key = "rules/obj"
        s3.put_object(Bucket="mpu", Key=key, Body=b"old")
        up = s3.create_multipart_upload(Bucket="mpu", Key=key)["UploadId"]
        p1 = os.urandom(5 * MIB)
        p2 = b"tail"
        e1 = s3.upload_part(Bucket="mpu", Key=key, UploadId=up, PartNumber=1, Body=p1)["ETag"]
        e2 = s3.upload_part(Bucket="mpu", Key=key, UploadId=up, PartNumber=2, Body=p2)["ETag"]
        self.assertEqual(e1, '"%s"' % hashlib.md5(p1).hexdigest())
        # in progress: invisible; the old object stays whole
        self.assertEqual(s3.get_object(Bucket="mpu", Key=key)["Body"].read(), b"old")
        self.assertNotIn("rules/other", [o["Key"] for o in s3.list_objects_v2(Bucket="mpu").get("Contents", [])])
        listed = s3.list_multipart_uploads(Bucket="mpu", Prefix="rules/")["Uploads"]
        self.assertEqual([(u["Key"], u["UploadId"]) for u in listed], [(key, up)])
        parts = s3.list_parts(Bucket="mpu", Key=key, UploadId=up)["Parts"]
        self.assertEqual([(p["PartNumber"], p["Size"], p["ETag"]) for p in parts],
                         [(1, len(p1), e1), (2, len(p2), e2)])
        self.assertEqual(self.error_code(s3.upload_part, Bucket="mpu", Key=key, UploadId=up, PartNumber=10001,
                                         Body=b"x"), "InvalidArgument")
        self.assertEqual(self.error_code(s3.upload_part, Bucket="mpu", Key="rules/elsewhere", UploadId=up,
                                         PartNumber=1, Body=b"x"), "NoSuchUpload")
        complete = s3.complete_multipart_upload
        self.assertEqual(self.error_code(complete, Bucket="mpu", Key=key, UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]}), "InvalidPartOrder")
        self.assertEqual(self.error_code(complete, Bucket="mpu", Key=key, UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": '"%s"' % ("0" * 32)}]}), "InvalidPart")
        self.assertEqual(self.error_code(complete, Bucket="mpu", Key=key, UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": e1}, {"PartNumber": 3, "ETag": e2}]}), "InvalidPart")
        # a small part anywhere but last
        small = s3.upload_part(Bucket="mpu", Key=key, UploadId=up, PartNumber=3, Body=b"tiny")["ETag"]
        self.assertEqual(self.error_code(complete, Bucket="mpu", Key=key, UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": e2}, {"PartNumber": 3, "ETag": small}]}), "EntityTooSmall")
        self.assertEqual(s3.get_object(Bucket="mpu", Key=key)["Body"].read(), b"old")
        # parts 1 and 2 only (3 is dropped), unquoted ETags accepted as S3 does
        r = complete(Bucket="mpu", Key=key, UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": e1.strip('"')}, {"PartNumber": 2, "ETag": e2}]})
        self.assertEqual(r["ETag"], multipart_etag(p1 + p2, 5 * MIB))
        got = s3.get_object(Bucket="mpu", Key=key)
        self.assertEqual(got["Body"].read(), p1 + p2)
        self.assertEqual(got["ETag"], r["ETag"])
        self.assertEqual(self.error_code(s3.list_parts, Bucket="mpu", Key=key, UploadId=up), "NoSuchUpload")
        self.assertEqual(self.error_code(complete, Bucket="mpu", Key=key, UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": e1}]}), "NoSuchUpload")
        self.assertEqual(self.error_code(s3.abort_multipart_upload, Bucket="mpu", Key=key, UploadId="../../x"),
                         "NoSuchUpload")

    def test_abort_and_reupload_release_storage(self):
        s3 = self.s3
        key = "abort/obj"
        before = tree_bytes(self.emu.data_dir)
        up = s3.create_multipart_upload(Bucket="mpu", Key=key)["UploadId"]
        s3.upload_part(Bucket="mpu", Key=key, UploadId=up, PartNumber=1, Body=os.urandom(3 * MIB))
        grown = tree_bytes(self.emu.data_dir)
        self.assertGreater(grown, before + 3 * MIB - 1)
        # the same part number again: the first bytes go
        e = s3.upload_part(Bucket="mpu", Key=key, UploadId=up, PartNumber=1, Body=b"second")["ETag"]
        self.assertLess(tree_bytes(self.emu.data_dir), before + MIB)
        parts = s3.list_parts(Bucket="mpu", Key=key, UploadId=up)["Parts"]
        self.assertEqual([(p["PartNumber"], p["Size"], p["ETag"]) for p in parts], [(1, 6, e)])
        s3.upload_part(Bucket="mpu", Key=key, UploadId=up, PartNumber=2, Body=os.urandom(2 * MIB))
        s3.abort_multipart_upload(Bucket="mpu", Key=key, UploadId=up)
        self.assertLess(tree_bytes(self.emu.data_dir), before + 64 * 1024)
        self.assertEqual(self.error_code(s3.upload_part, Bucket="mpu", Key=key, UploadId=up, PartNumber=1,
                                         Body=b"x"), "NoSuchUpload")
        self.assertEqual(self.error_code(s3.abort_multipart_upload, Bucket="mpu", Key=key, UploadId=up),
                         "NoSuchUpload")
        self.assertEqual(self.error_code(s3.head_object, Bucket="mpu", Key=key), "404")

    def test_list_multipart_uploads_pages(self):
        s3 = self.s3
        ids = [(k, s3.create_multipart_upload(Bucket="mpu", Key=k)["UploadId"])
               for k in ("pages/a b", "pages/a b", "pages/ç%")]
        seen = []
        kw = {"Bucket": "mpu", "Prefix": "pages/", "MaxUploads": 1}
        while True:
            r = s3.list_multipart_uploads(**kw)
            seen += [(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])]
            self.assertLessEqual(len(r.get("Uploads", [])), 1)
            if not r["IsTruncated"]:
                break
            kw.update(KeyMarker=r["NextKeyMarker"], UploadIdMarker=r["NextUploadIdMarker"])
        self.assertEqual(sorted(seen), sorted(ids))
        self.assertEqual([k for k, _ in seen], ["pages/a b", "pages/a b", "pages/ç%"])
        r = s3.list_multipart_uploads(Bucket="mpu", Prefix="pages/ç", EncodingType="url")
        self.assertEqual([u["Key"] for u in r["Uploads"]], ["pages/%C3%A7%25"])
        for k, up in ids:
            s3.abort_multipart_upload(Bucket="mpu", Key=k, UploadId=up)
        self.assertEqual(s3.list_multipart_uploads(Bucket="mpu", Prefix="pages/").get("Uploads", []), [])

    # --- metadata ---------------------------------------------------------------------------------------
    def test_metadata_is_kept_and_replayed(self):
        s3 = self.s3
        s3.put_object(Bucket="mpu", Key="meta/a.txt", Body=b"hello", ContentType="text/plain",
                      Metadata={"Owner": "ana", "run-id": "42"}, CacheControl="max-age=60",
                      ContentDisposition='attachment; filename="a.txt"', ContentEncoding="identity",
                      ContentLanguage="pt-BR", Expires="Wed, 21 Oct 2037 07:28:00 GMT")
        for r in (s3.head_object(Bucket="mpu", Key="meta/a.txt"), s3.get_object(Bucket="mpu", Key="meta/a.txt")):
            self.assertEqual(r["Metadata"], {"owner": "ana", "run-id": "42"})
            self.assertEqual(r["ContentType"], "text/plain")
            self.assertEqual(r["CacheControl"], "max-age=60")
            self.assertEqual(r["ContentDisposition"], 'attachment; filename="a.txt"')
            self.assertEqual(r["ContentEncoding"], "identity")
            self.assertEqual(r["ContentLanguage"], "pt-BR")
            self.assertEqual(r["ResponseMetadata"]["HTTPHeaders"]["expires"], "Wed, 21 Oct 2037 07:28:00 GMT")
        r = s3.get_object(Bucket="mpu", Key="meta/a.txt", ResponseContentType="application/x-thing",
                          ResponseCacheControl="no-cache", ResponseContentDisposition="inline")
        self.assertEqual((r["ContentType"], r["CacheControl"], r["ContentDisposition"]),
                         ("application/x-thing", "no-cache", "inline"))
        self.assertEqual(self.error_code(s3.put_object, Bucket="mpu", Key="meta/big", Body=b"x",
                                         Metadata={"k": "v" * 2100}), "MetadataTooLarge")
        self.assertEqual(self.error_code(s3.create_multipart_upload, Bucket="mpu", Key="meta/big",
                                         Metadata={"k": "v" * 2100}), "MetadataTooLarge")

    # --- checksums --------------------------------------------------------------------------------------
    def test_checksums_are_stored_and_returned(self):
        s3 = self.s3
        body = os.urandom(1000)
        s3.put_object(Bucket="mpu", Key="ck/crc", Body=body)  # botocore sends CRC32 by default
        r = s3.head_object(Bucket="mpu", Key="ck/crc", ChecksumMode="ENABLED")
        self.assertEqual(r["ChecksumCRC32"], crc32_b64(body))
        self.assertEqual(r["ChecksumType"], "FULL_OBJECT")
        self.assertNotIn("ChecksumCRC32", s3.head_object(Bucket="mpu", Key="ck/crc"))
        g = s3.get_object(Bucket="mpu", Key="ck/crc", ChecksumMode="ENABLED")
        self.assertEqual(g["ChecksumCRC32"], crc32_b64(body))
        self.assertEqual(g["Body"].read(), body)  # botocore validates the body against it
        s3.put_object(Bucket="mpu", Key="ck/sha", Body=body, ChecksumAlgorithm="SHA256")
        self.assertEqual(s3.head_object(Bucket="mpu", Key="ck/sha", ChecksumMode="ENABLED")["ChecksumSHA256"],
                         b64(hashlib.sha256(body).digest()))

        # a managed upload with SHA-256 parts: composite checksum over the parts' raw digests
        data = os.urandom(10 * MIB + 1000)
        path = os.path.join(self.emu.tmp, "ck.bin")
        with open(path, "wb") as f:
            f.write(data)
        cfg = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
        s3.upload_file(path, "mpu", "ck/managed", Config=cfg, ExtraArgs={"ChecksumAlgorithm": "SHA256"})
        parts = [data[i:i + 5 * MIB] for i in range(0, len(data), 5 * MIB)]
        composite = "%s-%d" % (b64(hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()),
                               len(parts))
        h = s3.head_object(Bucket="mpu", Key="ck/managed", ChecksumMode="ENABLED")
        self.assertEqual(h["ChecksumSHA256"], composite)
        self.assertEqual(h["ChecksumType"], "COMPOSITE")
        self.assertEqual(h["ETag"], multipart_etag(data, 5 * MIB))
        # a default managed upload (botocore's CRC32 on each part, no algorithm on the upload) works too
        s3.upload_file(path, "mpu", "ck/default", Config=cfg)
        self.assertEqual(s3.get_object(Bucket="mpu", Key="ck/default")["Body"].read(), data)

        # per-part checksums: in UploadPart's reply and ListParts, checked again at completion
        up = s3.create_multipart_upload(Bucket="mpu", Key="ck/low", ChecksumAlgorithm="CRC32")["UploadId"]
        r1 = s3.upload_part(Bucket="mpu", Key="ck/low", UploadId=up, PartNumber=1, Body=parts[0],
                            ChecksumAlgorithm="CRC32")
        r2 = s3.upload_part(Bucket="mpu", Key="ck/low", UploadId=up, PartNumber=2, Body=b"end",
                            ChecksumAlgorithm="CRC32")
        self.assertEqual((r1["ChecksumCRC32"], r2["ChecksumCRC32"]), (crc32_b64(parts[0]), crc32_b64(b"end")))
        lp = s3.list_parts(Bucket="mpu", Key="ck/low", UploadId=up)
        self.assertEqual([p["ChecksumCRC32"] for p in lp["Parts"]], [r1["ChecksumCRC32"], r2["ChecksumCRC32"]])
        self.assertEqual(lp["ChecksumAlgorithm"], "CRC32")
        self.assertEqual(self.error_code(s3.upload_part, Bucket="mpu", Key="ck/low", UploadId=up, PartNumber=3,
                                         Body=b"x", ChecksumAlgorithm="SHA1"), "InvalidRequest")
        wrong = {"Parts": [{"PartNumber": 1, "ETag": r1["ETag"], "ChecksumCRC32": r1["ChecksumCRC32"]},
                           {"PartNumber": 2, "ETag": r2["ETag"], "ChecksumCRC32": crc32_b64(b"other")}]}
        self.assertEqual(self.error_code(s3.complete_multipart_upload, Bucket="mpu", Key="ck/low", UploadId=up,
                                         MultipartUpload=wrong), "InvalidPart")
        right = {"Parts": [{"PartNumber": 1, "ETag": r1["ETag"], "ChecksumCRC32": r1["ChecksumCRC32"]},
                           {"PartNumber": 2, "ETag": r2["ETag"], "ChecksumCRC32": r2["ChecksumCRC32"]}]}
        done = s3.complete_multipart_upload(Bucket="mpu", Key="ck/low", UploadId=up, MultipartUpload=right)
        raw = zlib.crc32(parts[0]).to_bytes(4, "big") + zlib.crc32(b"end").to_bytes(4, "big")
        self.assertEqual(done["ChecksumCRC32"], crc32_b64(raw) + "-2")
        h = s3.head_object(Bucket="mpu", Key="ck/low", ChecksumMode="ENABLED")
        self.assertEqual((h["ChecksumCRC32"], h["ChecksumType"]), (done["ChecksumCRC32"], "COMPOSITE"))


if __name__ == "__main__":
    unittest.main()
