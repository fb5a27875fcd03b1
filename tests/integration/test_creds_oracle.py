"""Credential resolution oracle: for each of 40+ config/env setups that botocore resolves without the
network, redduck must pick the same access key as botocore (or fail where botocore fails). Plus config
files written by the real AWS CLI (`aws configure set`)."""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

from emulator_fixture import REDDUCK, clean_env, in_parallel

BOTOCORE_PROBE = r"""
import sys, botocore.session
profile = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None
try:
    c = botocore.session.Session(profile=profile).get_credentials()
    print("KEY:" + (c.access_key if c else "NONE"))
except Exception as e:
    print("ERROR:" + type(e).__name__)
"""

PROCESS_OK = """#!/bin/sh
echo '{"Version": 1, "AccessKeyId": "PROCKEY", "SecretAccessKey": "procsecret"}'
"""
PROCESS_TOKEN = """#!/bin/sh
echo '{"Version": 1, "AccessKeyId": "PROCTOKEN", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": "2099-01-01T00:00:00Z"}'
"""
PROCESS_FAIL = """#!/bin/sh
echo "no credentials for you" >&2
exit 3
"""
PROCESS_JUNK = """#!/bin/sh
echo 'this is not json'
"""
PROCESS_V2 = """#!/bin/sh
echo '{"Version": 2, "AccessKeyId": "V2", "SecretAccessKey": "s"}'
"""

S = "aws_secret_access_key = SeCrEt0\n"

# (name, config, credentials, env, profile flag)
CASES = [
    ("static default in credentials", "", "[default]\naws_access_key_id = CREDDEF\n" + S, {}, None),
    ("static default in config", "[default]\naws_access_key_id = CFGDEF\n" + S, "", {}, None),
    ("credentials file wins over config", "[default]\naws_access_key_id = CFG\n" + S,
     "[default]\naws_access_key_id = CRED\n" + S, {}, None),
    ("AWS_PROFILE selects", "", "[default]\naws_access_key_id = D\n" + S + "[dev]\naws_access_key_id = DEV\n" + S,
     {"AWS_PROFILE": "dev"}, None),
    ("--profile selects", "", "[default]\naws_access_key_id = D\n" + S + "[dev]\naws_access_key_id = DEV\n" + S,
     {}, "dev"),
    ("env only", "", "", {"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "x"}, None),
    ("env beats AWS_PROFILE", "", "[dev]\naws_access_key_id = DEV\n" + S,
     {"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "x", "AWS_PROFILE": "dev"}, None),
    ("--profile beats env", "", "[dev]\naws_access_key_id = DEV\n" + S,
     {"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "x"}, "dev"),
    ("env beats default profile", "", "[default]\naws_access_key_id = D\n" + S,
     {"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "x"}, None),
    ("partial env is an error", "", "[default]\naws_access_key_id = D\n" + S, {"AWS_ACCESS_KEY_ID": "ENVKEY"}, None),
    ("env with session token", "", "",
     {"AWS_ACCESS_KEY_ID": "ENVTOK", "AWS_SECRET_ACCESS_KEY": "x", "AWS_SESSION_TOKEN": "t"}, None),
    ("config [profile x]", "[profile x]\naws_access_key_id = PX\n" + S, "", {"AWS_PROFILE": "x"}, None),
    ("config [x] is not a profile", "[x]\naws_access_key_id = PX\n" + S, "", {"AWS_PROFILE": "x"}, None),
    ("credentials [profile x] is not profile x", "", "[profile x]\naws_access_key_id = PX\n" + S,
     {"AWS_PROFILE": "x"}, None),
    ("AWS_DEFAULT_PROFILE beats AWS_PROFILE", "",
     "[a]\naws_access_key_id = A\n" + S + "[b]\naws_access_key_id = B\n" + S,
     {"AWS_DEFAULT_PROFILE": "a", "AWS_PROFILE": "b"}, None),
    ("comments and odd whitespace", "",
     "# a comment\n; another\n[default]\n   aws_access_key_id   =    WS   \n\taws_secret_access_key=s\n\n", {}, None),
    ("colon delimiter", "", "[default]\naws_access_key_id: COLON\naws_secret_access_key: s\n", {}, None),
    ("uppercase keys", "", "[default]\nAWS_ACCESS_KEY_ID = UPPER\nAWS_SECRET_ACCESS_KEY = s\n", {}, None),
    ("inline hash is part of the value", "", "[default]\naws_access_key_id = KEY#1 ; x\n" + S, {}, None),
    ("quoted profile name", "[profile \"my team\"]\naws_access_key_id = QUOTED\n" + S, "",
     {"AWS_PROFILE": "my team"}, None),
    ("profile name with dots", "", "[team.prod-1]\naws_access_key_id = DOTS\n" + S, {}, "team.prod-1"),
    ("nested s3 section does not hide keys", "[default]\ns3 =\n  max_concurrent_requests = 20\n"
     "  endpoint_url = http://127.0.0.1:1\naws_access_key_id = NESTED\n" + S, "", {}, None),
    ("DEFAULT section is inherited", "", "[DEFAULT]\naws_secret_access_key = s\n[default]\naws_access_key_id = INH\n",
     {}, None),
    ("missing line delimiter is an error", "", "[default]\naws_access_key_id\n" + S, {}, None),
    ("setting before any section is an error", "", "aws_access_key_id = X\n[default]\n" + S, {}, None),
    ("duplicate section is an error", "", "[default]\naws_access_key_id = A\n[default]\n" + S, {}, None),
    ("duplicate key is an error", "", "[default]\naws_access_key_id = A\naws_access_key_id = B\n" + S, {}, None),
    ("unknown profile via AWS_PROFILE", "", "[default]\naws_access_key_id = D\n" + S, {"AWS_PROFILE": "nope"}, None),
    ("unknown profile via --profile", "", "[default]\naws_access_key_id = D\n" + S, {}, "nope"),
    ("partial keys in credentials file", "", "[default]\naws_access_key_id = ONLY\n", {}, None),
    ("no credentials at all", "", "", {}, None),
    ("credential_process", "[default]\ncredential_process = {dir}/ok.sh\n", "", {}, None),
    ("credential_process with token and expiry", "[profile p]\ncredential_process = {dir}/token.sh\n", "", {}, "p"),
    ("credential_process failing", "[default]\ncredential_process = {dir}/fail.sh\n", "", {}, None),
    ("credential_process junk", "[default]\ncredential_process = {dir}/junk.sh\n", "", {}, None),
    ("credential_process version 2", "[default]\ncredential_process = {dir}/v2.sh\n", "", {}, None),
    ("credentials file beats credential_process", "[default]\ncredential_process = {dir}/ok.sh\n",
     "[default]\naws_access_key_id = CREDFIRST\n" + S, {}, None),
    ("credential_process beats config keys",
     "[default]\ncredential_process = {dir}/ok.sh\naws_access_key_id = CFGKEY\n" + S, "", {}, None),
    ("role without source is an error", "[profile r]\nrole_arn = arn:aws:iam::123456789012:role/x\n", "", {}, "r"),
    ("source_profile cycle is an error", "[profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = b\n"
     "[profile b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = a\n", "", {}, "a"),
    ("missing source_profile is an error", "[profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = ghost\n",
     "", {}, "a"),
    ("source_profile and credential_source is an error",
     "[profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = b\ncredential_source = Environment\n"
     "[profile b]\naws_access_key_id = B\n" + S, "", {}, "a"),
]


class CredsOracleTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rd-oracle-")
        for name, body in [("ok.sh", PROCESS_OK), ("token.sh", PROCESS_TOKEN), ("fail.sh", PROCESS_FAIL),
                           ("junk.sh", PROCESS_JUNK), ("v2.sh", PROCESS_V2)]:
            path = os.path.join(self.tmp, name)
            with open(path, "w") as f:
                f.write(body)
            os.chmod(path, stat.S_IRWXU)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def env_for(self, home, extra):
        return clean_env(home, **extra)

    def botocore(self, env, profile):
        p = subprocess.run([sys.executable, "-c", BOTOCORE_PROBE, profile or ""], env=env, capture_output=True,
                           text=True, timeout=60)
        return p.stdout.strip()

    def redduck(self, env, profile, p=None):
        """redduck's answer (p: its `whoami --local --json` run, when already made)."""
        if p is None:
            p = self.whoami(env, profile)
        self.assertNotIn("SeCrEt0", p.stdout)
        if p.returncode != 0:
            self.assertTrue(p.stderr.startswith("redduck: "), p.stderr)
            self.assertEqual(p.stderr.count("\n"), 1, "errors are one line: %r" % p.stderr)
            self.assertNotIn("SeCrEt0", p.stderr)
            self.assertNotIn("procsecret", p.stderr)
            return "ERROR", p.stderr.strip()
        return "KEY:" + json.loads(p.stdout)["access_key_id"], ""

    def whoami(self, env, profile):
        args = [REDDUCK, "whoami", "--local", "--json"] + (["--profile", profile] if profile else [])
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)

    def resolve_case(self, case):
        """The case's home written, then botocore's answer and redduck's run (no assertion: for in_parallel)."""
        name, config, creds, env_extra, profile = case
        home = os.path.join(self.tmp, "home-" + str(abs(hash(name))))
        os.makedirs(os.path.join(home, ".aws"))
        for fname, text in (("config", config), ("credentials", creds)):
            if text:
                with open(os.path.join(home, ".aws", fname), "w") as f:
                    f.write(text.replace("{dir}", self.tmp))
        env = self.env_for(home, env_extra)
        return self.botocore(env, profile), self.whoami(env, profile)

    def check_case(self, name, want, p):
        got, msg = self.redduck(None, None, p)
        if want.startswith("ERROR") or want == "KEY:NONE":
            self.assertEqual(got, "ERROR", "%s: botocore says %s, redduck found %s" % (name, want, got))
        else:
            self.assertEqual(got, want, "%s: redduck %s (%s), botocore %s" % (name, got, msg, want))
        return want

    def test_setups_match_botocore(self):
        self.assertGreaterEqual(len(CASES), 30)
        resolved = 0
        # each case has its own home: botocore and redduck resolve them side by side, checked in order
        for case, (want, p) in zip(CASES, in_parallel(self.resolve_case, CASES)):
            with self.subTest(case[0]):
                want = self.check_case(case[0], want, p)
                if want.startswith("KEY:") and want != "KEY:NONE":
                    resolved += 1
        self.assertGreaterEqual(resolved, 20)  # most setups resolve a key, the rest are error cases

    def test_files_written_by_aws_configure_set(self):
        if not shutil.which("aws"):
            self.fail("the AWS CLI (`aws`) is not on PATH: run `make test` (bootstrap installs it)")
        home = os.path.join(self.tmp, "home-cli")
        os.makedirs(os.path.join(home, ".aws"))
        env = self.env_for(home, {})
        for args in (["aws_access_key_id", "CLIDEFAULT"], ["aws_secret_access_key", "s1"],
                     ["region", "eu-central-1"],
                     ["aws_access_key_id", "CLIDEV", "--profile", "dev"], ["aws_secret_access_key", "s2", "--profile", "dev"],
                     ["region", "ap-south-1", "--profile", "dev"],
                     ["profile.ops.aws_access_key_id", "CLIOPS"], ["profile.ops.aws_secret_access_key", "s3"]):
            subprocess.run(["aws", "configure", "set"] + args, env=env, check=True, capture_output=True, timeout=60)
        for profile, key, region in ((None, "CLIDEFAULT", "eu-central-1"), ("dev", "CLIDEV", "ap-south-1"),
                                     ("ops", "CLIOPS", None)):
            args = [REDDUCK, "whoami", "--local", "--json"] + (["--profile", profile] if profile else [])
            p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            out = json.loads(p.stdout)
            self.assertEqual(out["access_key_id"], key)
            self.assertEqual(out["region"], region)
            self.assertEqual(out["provider"], "shared-credentials-file")
            self.assertIn(".aws/credentials", out["source"])
            self.assertEqual(self.botocore(env, profile), "KEY:" + key)


if __name__ == "__main__":
    unittest.main()
