"""SigV4 oracle: 240 generated requests (random methods, paths with reserved and UTF-8 characters,
dot segments, repeated and empty query keys, odd header whitespace, bodies, S3 and other services, with
and without a session token) are signed by `redduck sign` and by botocore; the Authorization headers must
be byte-identical."""
import datetime
import os
import random
import shutil
import subprocess
import tempfile
import unittest
from unittest import mock
from urllib.parse import quote

import botocore.auth
import botocore.awsrequest
import botocore.credentials

from emulator_fixture import in_parallel

REDDUCK = os.environ.get("REDDUCK_BIN", "redduck")
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
KEY = "AKIDEXAMPLEORACLE"
N = 240

CHARS = "abcXYZ019-_.~ !$&'()*+,;=:@%/?#[]éü中文ሴ🦆"


def rand_text(rng, lo=1, hi=8):
    return "".join(rng.choice(CHARS) for _ in range(rng.randint(lo, hi)))


def make_request(rng, i):
    service = rng.choice(["s3", "s3", "sts", "redshift-data", "service", "redshift-serverless"])
    region = rng.choice(["us-east-1", "eu-west-1", "ap-southeast-2"])
    method = rng.choice(["GET", "PUT", "POST", "DELETE", "HEAD"])
    host = rng.choice(["example.amazonaws.com", "127.0.0.1:4566", "bucket.s3.eu-west-1.amazonaws.com",
                       "localhost:9000"])
    scheme = "https" if "amazonaws" in host else "http"
    segments = []
    for _ in range(rng.randint(0, 4)):
        r = rng.random()
        if r < 0.1 and service != "s3":
            segments.append(rng.choice([".", "..", ""]))
        else:
            segments.append(quote(rand_text(rng), safe=""))
    path = "/" + "/".join(segments)
    if rng.random() < 0.3:
        path += "/"
    pairs = []
    for _ in range(rng.randint(0, 5)):
        k = quote(rand_text(rng, 0, 5), safe="-_.~")
        v = quote(rand_text(rng, 0, 6), safe="-_.~")
        pairs.append(k if rng.random() < 0.15 else "%s=%s" % (k, v))
        if rng.random() < 0.2:
            pairs.append("%s=%s" % (k, quote(rand_text(rng, 0, 3), safe="-_.~")))  # repeated key
    query = "&".join(p for p in pairs if p)
    url = "%s://%s%s%s" % (scheme, host, path, ("?" + query) if query else "")
    headers = {}
    for j in range(rng.randint(0, 4)):
        name = rng.choice(["X-Amz-Meta-Note", "Content-Type", "X-Custom-%d" % j, "Cache-Control", "User-Agent"])
        value = rng.choice(["  lead", "trail  ", "in   ner  spaces", "tab\there", "plain", "a , b",
                            "mixed \t  white"]) + str(j)
        headers[name] = value
    body = b""
    if method in ("PUT", "POST") and rng.random() < 0.7:
        body = os.urandom(rng.randint(0, 300)) if rng.random() < 0.5 else rand_text(rng, 0, 40).encode()
    token = "FQoGZXIvYXdzE" + str(i) + "Token/+=" if rng.random() < 0.4 else None
    when = datetime.datetime(2015 + rng.randint(0, 12), rng.randint(1, 12), rng.randint(1, 28),
                             rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                             tzinfo=datetime.timezone.utc)
    return dict(service=service, region=region, method=method, url=url, headers=headers, body=body,
                token=token, when=when)


def botocore_authorization(r):
    creds = botocore.credentials.Credentials(KEY, SECRET, r["token"])
    cls = botocore.auth.S3SigV4Auth if r["service"] == "s3" else botocore.auth.SigV4Auth
    signer = cls(creds, r["service"], r["region"])
    req = botocore.awsrequest.AWSRequest(method=r["method"], url=r["url"], data=r["body"],
                                         headers=dict(r["headers"]))
    with mock.patch("botocore.auth.get_current_datetime", return_value=r["when"].replace(tzinfo=None)):
        signer.add_auth(req)
    return req.headers["Authorization"], signer.canonical_request(req)


class SignOracleTest(unittest.TestCase):
    def test_byte_identical_authorization(self):
        rng = random.Random(20261124)
        tmp = tempfile.mkdtemp(prefix="rd-sign-")
        self.addCleanup(shutil.rmtree, tmp, True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(HOME=tmp, AWS_EC2_METADATA_DISABLED="true", AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
                   AWS_CONFIG_FILE=os.path.join(tmp, "none"), AWS_SHARED_CREDENTIALS_FILE=os.path.join(tmp, "none2"))
        # the requests are generated in order (one seeded rng) and botocore signs them here (its clock is
        # patched module-wide, so not from threads); only the `redduck sign` runs go side by side
        cases = []
        for i in range(N):
            r = make_request(rng, i)
            want, want_cr = botocore_authorization(r)
            args = [REDDUCK, "sign", "--method", r["method"], "--url", r["url"], "--service", r["service"],
                    "--region", r["region"], "--date", r["when"].strftime("%Y%m%dT%H%M%SZ")]
            for k, v in r["headers"].items():
                args += ["--header", "%s: %s" % (k, v)]
            body_path = os.path.join(tmp, "body-%d" % i)
            if r["body"]:
                with open(body_path, "wb") as f:
                    f.write(r["body"])
                args += ["--body-file", body_path]
            e = dict(env)
            if r["token"]:
                e["AWS_SESSION_TOKEN"] = r["token"]
            cases.append((i, r, want, want_cr, args, e))

        def sign(case):
            return subprocess.run(case[4], env=case[5], capture_output=True, timeout=60)

        mismatches = []
        for (i, r, want, want_cr, _, _), p in zip(cases, in_parallel(sign, cases)):
            name = "request %d: %s %s (%s)" % (i, r["method"], r["url"], r["service"])
            out = p.stdout.decode("utf-8", "replace")
            self.assertEqual(p.returncode, 0, "redduck sign failed for %s: %s" % (name, p.stderr.decode()))
            self.assertNotIn(SECRET, out + p.stderr.decode("utf-8", "replace"), name)
            if r["token"]:
                self.assertNotIn(r["token"], out, name)
            got = [l[len("Authorization: "):] for l in out.splitlines() if l.startswith("Authorization: ")]
            if got != [want]:
                cr = out.split("# canonical request\n", 1)[-1].split("\n\n# string to sign", 1)[0]
                mismatches.append("%s\n--- redduck\n%s\n--- botocore\n%s" % (name, cr, want_cr))
        self.assertEqual(len(cases), N)
        self.assertEqual(mismatches, [], "%d of %d requests differ; first:\n%s" % (
            len(mismatches), N, mismatches[0] if mismatches else ""))

if __name__ == "__main__":
    unittest.main()
