"""S3 browser-form uploads (PostObject) against the emulator: botocore's generate_presigned_post signs the
policy (the independent witness of the signature and the policy's shape) and urllib3 encodes the
multipart/form-data body; the answers are checked against S3's documented codes and words — success with
the content type kept, ${filename}, success_action_status 201's PostResponse XML, success_action_redirect,
and every refusal: wrong secret, unknown key, expired, a failed condition, extra fields, content-length-range,
a bad session token, a denied s3:PutObject, a malformed body. An ordinary signed POST (DeleteObjects) still
works beside them."""
import base64
import hashlib
import http.client
import os
import subprocess
import tempfile
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

import boto3
import botocore.config
import botocore.exceptions
import urllib3

from emulator_fixture import Emulator, identities

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
BUCKET = "redduck-staging"
POLICY = "Invalid according to Policy: "


def client(emu, service="s3", key="test", secret="test", token=None):
    return boto3.session.Session().client(
        service, endpoint_url=emu.endpoint, region_name="us-east-1", aws_access_key_id=key,
        aws_secret_access_key=secret, aws_session_token=token,
        config=botocore.config.Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                      retries={"total_max_attempts": 1, "mode": "standard"}))


def post_form(url, fields, filename="hello.txt", data=b"hello world", body=None, content_type=None):
    """POSTs the form (fields in order, then the file) with urllib3's multipart encoding; or body as given.
    Returns (status, headers, body)."""
    if body is None:
        parts = list(fields.items()) + [("file", (filename, data, "application/octet-stream"))]
        body, content_type = urllib3.encode_multipart_formdata(parts)
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request("POST", u.path, body=body, headers={"Content-Type": content_type})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def error_of(body):
    root = ET.fromstring(body)
    return root.findtext("Code"), root.findtext("Message")


class PostObjectTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        users = [("test", "test", "test", ["*"]),
                 {"name": "reader", "access_key_id": "AKIDREADER", "secret_access_key": "reader-secret",
                  "allow": ["s3:GetObject", "s3:ListBucket"]}]
        roles = [{"name": "uploader", "allow": ["s3:*"]}]
        cls.emu = Emulator(config=identities(users, roles=roles, buckets=[BUCKET]), lifetime=120)
        cls.s3 = client(cls.emu)

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()

    def presign(self, key, fields=None, conditions=None, s3=None, expires=300):
        return (s3 or self.s3).generate_presigned_post(BUCKET, key, Fields=fields, Conditions=conditions,
                                                       ExpiresIn=expires)

    def assert_refused(self, result, status, code, message=None):
        got_status, _, body = result
        got_code, got_message = error_of(body)
        self.assertEqual((got_status, got_code), (status, code), body)
        if message is not None:
            self.assertEqual(got_message, message)

    def assert_absent(self, key):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.s3.head_object(Bucket=BUCKET, Key=key)
        self.assertEqual(cm.exception.response["Error"]["Code"], "404")

    def test_upload_keeps_content_type_and_answers_204(self):
        post = self.presign("docs/a.txt", fields={"Content-Type": "text/plain", "x-amz-meta-owner": "ana"},
                            conditions=[{"Content-Type": "text/plain"}, {"x-amz-meta-owner": "ana"}])
        status, headers, body = post_form(post["url"], post["fields"], data=b"first upload")
        self.assertEqual(status, 204, body)
        self.assertEqual(body, b"")
        self.assertEqual(headers["ETag"], '"%s"' % hashlib.md5(b"first upload").hexdigest())
        obj = self.s3.get_object(Bucket=BUCKET, Key="docs/a.txt")
        self.assertEqual(obj["Body"].read(), b"first upload")
        self.assertEqual(obj["ContentType"], "text/plain")
        self.assertEqual(obj["Metadata"], {"owner": "ana"})

    def test_content_md5(self):
        good = base64.b64encode(hashlib.md5(b"hello world").digest()).decode()
        post = self.presign("md5/x.txt", conditions=[["starts-with", "$Content-MD5", ""]])
        fields = dict(post["fields"], **{"Content-MD5": base64.b64encode(hashlib.md5(b"other").digest()).decode()})
        self.assert_refused(post_form(post["url"], fields), 400, "BadDigest")
        self.assert_absent("md5/x.txt")
        self.assert_refused(post_form(post["url"], dict(post["fields"], **{"Content-MD5": "bm90LW1kNQ=="})), 400,
                            "InvalidDigest")
        status, _, body = post_form(post["url"], dict(post["fields"], **{"Content-MD5": good}))
        self.assertEqual(status, 204, body)

    def test_metadata_too_large(self):
        post = self.presign("meta/big.txt", fields={"x-amz-meta-big": "v" * 2100},
                            conditions=[["starts-with", "$x-amz-meta-big", ""]])
        self.assert_refused(post_form(post["url"], post["fields"]), 400, "MetadataTooLarge")
        self.assert_absent("meta/big.txt")

    def test_filename_and_status_201_xml(self):
        post = self.presign("in/${filename}", fields={"success_action_status": "201"},
                            conditions=[{"success_action_status": "201"}])
        status, headers, body = post_form(post["url"], post["fields"], filename="report.csv", data=b"a,b\n1,2\n")
        self.assertEqual(status, 201, body)
        root = ET.fromstring(body)
        self.assertEqual(root.tag, "PostResponse")
        self.assertEqual(root.findtext("Bucket"), BUCKET)
        self.assertEqual(root.findtext("Key"), "in/report.csv")
        self.assertEqual(root.findtext("ETag"), '"%s"' % hashlib.md5(b"a,b\n1,2\n").hexdigest())
        self.assertTrue(root.findtext("Location").endswith("/%s/in%%2Freport.csv" % BUCKET))
        self.assertEqual(self.s3.get_object(Bucket=BUCKET, Key="in/report.csv")["Body"].read(), b"a,b\n1,2\n")

    def test_redirect_and_status_200(self):
        post = self.presign("r/x.bin", fields={"success_action_redirect": "http://app.example/done?from=form"},
                            conditions=[{"success_action_redirect": "http://app.example/done?from=form"}])
        status, headers, body = post_form(post["url"], post["fields"])
        self.assertEqual(status, 303, body)
        loc = urllib.parse.urlsplit(headers["Location"])
        self.assertEqual((loc.netloc, loc.path), ("app.example", "/done"))
        q = urllib.parse.parse_qs(loc.query)
        self.assertEqual(q["from"], ["form"])
        self.assertEqual(q["bucket"], [BUCKET])
        self.assertEqual(q["key"], ["r/x.bin"])
        self.assertEqual(q["etag"], ['"%s"' % hashlib.md5(b"hello world").hexdigest()])
        # a redirect that is not a URL is ignored: the status decides
        post = self.presign("r/z.bin", fields={"success_action_redirect": "done.html", "success_action_status": "201"},
                            conditions=[{"success_action_redirect": "done.html"}, {"success_action_status": "201"}])
        status, _, body = post_form(post["url"], post["fields"])
        self.assertEqual(status, 201, body)
        self.assertEqual(ET.fromstring(body).findtext("Key"), "r/z.bin")
        post = self.presign("r/y.bin", fields={"success_action_status": "200"},
                            conditions=[{"success_action_status": "200"}])
        status, _, body = post_form(post["url"], post["fields"])
        self.assertEqual((status, body), (200, b""))

    def test_wrong_secret_and_unknown_key(self):
        post = self.presign("bad/sig.txt", s3=client(self.emu, secret="not-the-secret"))
        self.assert_refused(post_form(post["url"], post["fields"]), 403, "SignatureDoesNotMatch")
        post = self.presign("bad/key.txt", s3=client(self.emu, key="AKIDNOBODY"))
        self.assert_refused(post_form(post["url"], post["fields"]), 403, "InvalidAccessKeyId")
        # a policy altered after signing
        post = self.presign("bad/policy.txt")
        fields = dict(post["fields"])
        fields["policy"] = fields["policy"][:-4] + ("AAAA" if not fields["policy"].endswith("AAAA") else "BBBB")
        self.assert_refused(post_form(post["url"], fields), 403, "SignatureDoesNotMatch")
        for key in ("bad/sig.txt", "bad/key.txt", "bad/policy.txt"):
            self.assert_absent(key)

    def test_expired_policy(self):
        post = self.presign("old/x.txt", expires=-60)
        self.assert_refused(post_form(post["url"], post["fields"]), 403, "AccessDenied", POLICY + "Policy expired.")
        self.assert_absent("old/x.txt")

    def test_conditions(self):
        post = self.presign("exact/x.txt")
        fields = dict(post["fields"], key="exact/other.txt")
        self.assert_refused(post_form(post["url"], fields), 403, "AccessDenied",
                            POLICY + 'Policy Condition failed: ["eq", "$key", "exact/x.txt"]')
        self.assert_absent("exact/other.txt")
        # starts-with: a prefix for the key, "" for any content type
        post = self.presign("pre/${filename}", fields={"Content-Type": "image/png"},
                            conditions=[["starts-with", "$Content-Type", ""]])
        status, _, body = post_form(post["url"], post["fields"], filename="ok.png")
        self.assertEqual(status, 204, body)
        self.assertEqual(self.s3.head_object(Bucket=BUCKET, Key="pre/ok.png")["ContentType"], "image/png")
        fields = dict(post["fields"], key="elsewhere/${filename}")
        self.assert_refused(post_form(post["url"], fields, filename="no.png"), 403, "AccessDenied",
                            POLICY + 'Policy Condition failed: ["starts-with", "$key", "pre/"]')
        # the bucket condition is checked against the bucket posted to
        post = self.presign("b/x.txt", conditions=[{"bucket": "another-bucket"}])
        self.assert_refused(post_form(post["url"], post["fields"]), 403, "AccessDenied",
                            POLICY + 'Policy Condition failed: ["eq", "$bucket", "another-bucket"]')

    def test_extra_fields(self):
        post = self.presign("extra/x.txt")
        fields = dict(post["fields"], **{"x-amz-meta-sneaky": "1"})
        self.assert_refused(post_form(post["url"], fields), 403, "AccessDenied",
                            POLICY + "Extra input fields: x-amz-meta-sneaky")
        self.assert_absent("extra/x.txt")
        fields = dict(post["fields"], **{"x-ignore-tracking": "42"})  # exempt
        status, _, body = post_form(post["url"], fields)
        self.assertEqual(status, 204, body)

    def test_content_length_range(self):
        post = self.presign("size/x.bin", conditions=[["content-length-range", 5, 10]])
        self.assert_refused(post_form(post["url"], post["fields"], data=b"1234"), 400, "EntityTooSmall")
        self.assert_refused(post_form(post["url"], post["fields"], data=b"12345678901"), 400, "EntityTooLarge")
        self.assert_absent("size/x.bin")
        status, _, body = post_form(post["url"], post["fields"], data=b"1234567890")
        self.assertEqual(status, 204, body)

    def test_form_over_the_buffer_limit_refused_in_s3_words(self):
        post = self.presign("big/form.bin")
        parts = list(post["fields"].items()) + [("file", ("big.bin", b"x" * (9 << 20), "application/octet-stream"))]
        body, content_type = urllib3.encode_multipart_formdata(parts)
        with tempfile.NamedTemporaryFile() as f:
            f.write(body)
            f.flush()
            out = subprocess.run(["curl", "-s", "--noproxy", "*", "-o", "-", "-w", "\n%{http_code}", "-H",
                                  "Content-Type: " + content_type, "--data-binary", "@" + f.name, post["url"]],
                                 capture_output=True, timeout=60)
        text, status = out.stdout.rsplit(b"\n", 1)
        self.assertEqual(status, b"400", out.stdout[-400:])
        self.assertEqual(error_of(text)[0], "EntityTooLarge")
        self.assert_absent("big/form.bin")

    def test_session_credentials(self):
        creds = client(self.emu, "sts").assume_role(RoleArn="arn:aws:iam::000000000000:role/uploader",
                                                    RoleSessionName="form")["Credentials"]
        s3 = client(self.emu, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                    token=creds["SessionToken"])
        post = self.presign("sess/x.txt", s3=s3)
        self.assertIn("x-amz-security-token", post["fields"])
        fields = dict(post["fields"], **{"x-amz-security-token": "not-the-token"})
        self.assert_refused(post_form(post["url"], fields), 403, "InvalidToken")
        status, _, body = post_form(post["url"], post["fields"])
        self.assertEqual(status, 204, body)

    def test_denied_put(self):
        post = self.presign("deny/x.txt", s3=client(self.emu, key="AKIDREADER", secret="reader-secret"))
        self.assert_refused(post_form(post["url"], post["fields"]), 403, "AccessDenied", "Access Denied")
        self.assert_absent("deny/x.txt")

    def test_malformed_and_missing(self):
        post = self.presign("mal/x.txt")
        body = b"--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nmal/x.txt\r\n--XyZ"  # cut short
        self.assert_refused(post_form(post["url"], None, body=body, content_type="multipart/form-data; boundary=XyZ"),
                            400, "MalformedPOSTRequest",
                            "The body of your POST request is not well-formed multipart/form-data.")
        fields = {k: v for k, v in post["fields"].items() if k != "key"}
        self.assert_refused(post_form(post["url"], fields), 400, "InvalidArgument",
                            "Bucket POST must contain a field named 'key'.  If it is specified, please check the "
                            "order of the fields.")
        # a signature version 2 form (botocore's "s3" signer) is refused as S3's newer regions do
        s3v2 = boto3.session.Session().client(
            "s3", endpoint_url=self.emu.endpoint, region_name="us-east-1", aws_access_key_id="test",
            aws_secret_access_key="test",
            config=botocore.config.Config(signature_version="s3", s3={"addressing_style": "path"}))
        post = s3v2.generate_presigned_post(BUCKET, "mal/x.txt")
        self.assertIn("AWSAccessKeyId", post["fields"])
        self.assert_refused(post_form(post["url"], post["fields"]), 400, "InvalidRequest")
        self.assert_absent("mal/x.txt")

    def test_signed_post_still_works(self):
        self.s3.put_object(Bucket=BUCKET, Key="del/one", Body=b"1")
        out = self.s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "del/one"}]})
        self.assertEqual([d["Key"] for d in out["Deleted"]], ["del/one"])
        self.assert_absent("del/one")


if __name__ == "__main__":
    unittest.main()
