"""The credential providers that talk to a service, end to end: `redduck whoami` resolves credentials
from web identity, SSO, the container endpoint, IMDSv2 and assumed roles served by tests/fakes/fake_aws.py
(loopback only, stops by itself), then calls STS GetCallerIdentity on the same fake, which verifies the
SigV4 signature with botocore. Nothing here may reach 169.254.169.254 or any non-loopback address."""
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import unittest

from emulator_fixture import HomeMixin, clean_env, make_home

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "fakes", "fake_aws.py")

ACCOUNT = "123456789012"
ALICE_KEY = "AKIAFAKEALICE0000001"
ALICE_SECRET = "alice-secret-0000000000000000000000000000"
MARKER = "SeCrEtMaRk"  # the fake prefixes every secret key and session token it issues with this
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.web-identity-jwt.sig"
SSO_TOKEN = "sso-bearer-token-aoAAAAAGUm9sZQ"
CONTAINER_TOKEN = "container-auth-token-Zm9vYmFy"
SECRETS = [ALICE_SECRET, MARKER, WEB_TOKEN, SSO_TOKEN, CONTAINER_TOKEN]

FAKE_CONFIG = {
    "users": {ALICE_KEY: {"secret": ALICE_SECRET, "account": ACCOUNT,
                          "arn": "arn:aws:iam::%s:user/alice" % ACCOUNT, "user_id": "AIDAALICE000000000001"}},
    "roles": {"arn:aws:iam::%s:role/web-role" % ACCOUNT: {},
              "arn:aws:iam::%s:role/dev" % ACCOUNT: {}},
    "web_tokens": {WEB_TOKEN: {"subject": "system:serviceaccount:ns:sa"}},
    "sso": {"tokens": [SSO_TOKEN], "accounts": {"111122223333": ["ReadOnly"]}, "user": "alice@example.com"},
    "imds": {"role_name": "ec2-role", "role_arn": "arn:aws:iam::%s:role/ec2-role" % ACCOUNT, "v1": False},
    "container": {"path": "/container/creds", "token": CONTAINER_TOKEN,
                  "role_arn": "arn:aws:iam::%s:role/task-role" % ACCOUNT},
    "secret_marker": MARKER,
}


def header(req, name):
    """A logged request's header, by name in any case (None when absent)."""
    for k, v in req["headers"].items():
        if k.lower() == name.lower():
            return v
    return None


def utc(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeAWS:
    """tests/fakes/fake_aws.py on 127.0.0.1:<random>; stops when its stdin closes or after 120 s."""

    def __init__(self, tmp, config, tls_cert=None, tls_key=None, lifetime=120):
        self.cfg_path = os.path.join(tmp, "fake.json")
        self.log_path = os.path.join(tmp, "fake-requests.log")
        with open(self.cfg_path, "w") as f:
            json.dump(config, f)
        tls = ["--tls-cert", tls_cert, "--tls-key", tls_key] if tls_cert else []
        self.proc = subprocess.Popen([sys.executable, FAKE, self.cfg_path, "--log", self.log_path,
                                      "--lifetime", str(lifetime)] + tls,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError("fake_aws did not start: %r" % line)
        self.port = int(line.split()[1])
        self.url = "%s://127.0.0.1:%d" % ("https" if tls_cert else "http", self.port)

    def requests(self):
        try:
            with open(self.log_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def apis(self):
        return [r["api"] for r in self.requests()]

    def stop(self):
        self.proc.stdout.close()
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        else:
            self.proc.stdin.close()


class CredsRemoteTest(HomeMixin, unittest.TestCase):
    secrets = SECRETS
    write_mode = 0o600

    def setUp(self):
        self.tmp, self.home = make_home("rd-creds-remote-")
        self.fake = FakeAWS(self.tmp, FAKE_CONFIG)

    def tearDown(self):
        self.fake.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- helpers -----------------------------------------------------------------------------------------
    def env(self, **extra):
        return clean_env(self.home, **dict({"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_STS": self.fake.url,
                                            "AWS_ENDPOINT_URL_SSO": self.fake.url}, **extra))


    def whoami(self, env, *extra, local=False):
        args = ["whoami", "--json"] + (["--local"] if local else []) + list(extra)
        p = self.run_redduck(args, env)
        self.assertEqual(p.returncode, 0, "whoami failed: %s" % p.stderr)
        return json.loads(p.stdout)

    def sso_cache(self, key_source, token, expires_at, start_url, region, session=True):
        """The token file as `aws sso login` writes it (~/.aws/sso/cache/<sha1>.json)."""
        doc = {"startUrl": start_url, "region": region, "accessToken": token, "expiresAt": expires_at}
        if session:
            doc.update({"clientId": "client-id-abc", "clientSecret": "client-secret-abc",
                        "registrationExpiresAt": utc(time.time() + 80 * 86400), "refreshToken": "refresh-abc"})
        name = hashlib.sha1(key_source.encode("utf-8")).hexdigest()
        return self.write(os.path.join(".aws", "sso", "cache", name + ".json"), json.dumps(doc))

    # --- web identity -----------------------------------------------------------------------------------
    def test_web_identity_from_environment(self):
        token_file = self.write("web-token", WEB_TOKEN)
        env = self.env(AWS_WEB_IDENTITY_TOKEN_FILE=token_file, AWS_ROLE_ARN="arn:aws:iam::%s:role/web-role" % ACCOUNT,
                       AWS_ROLE_SESSION_NAME="wi-session")
        out = self.whoami(env)
        self.assertEqual(out["provider"], "assume-role-with-web-identity")
        self.assertEqual(out["arn"], "arn:aws:sts::%s:assumed-role/web-role/wi-session" % ACCOUNT)
        self.assertEqual(out["account"], ACCOUNT)
        self.assertTrue(out["access_key_id"].startswith("ASIA"))
        reqs = self.fake.requests()
        self.assertEqual([r["api"] for r in reqs], ["sts:AssumeRoleWithWebIdentity", "sts:GetCallerIdentity"])
        self.assertEqual(reqs[0]["auth"], "none")  # unsigned
        self.assertIsNone(header(reqs[0], "Authorization"))
        self.assertEqual(reqs[1]["auth"], "ok")  # signed with the temporary credentials, verified by botocore

        local = self.whoami(env, local=True)
        self.assertEqual(local["provider"], "assume-role-with-web-identity")
        self.assertNotIn("arn", local)
        self.assertEqual(self.fake.apis()[2:], ["sts:AssumeRoleWithWebIdentity"])

    def test_web_identity_from_profile(self):
        token_file = self.write("web-token", WEB_TOKEN)
        self.write(".aws/config", "[profile web]\nrole_arn = arn:aws:iam::%s:role/web-role\n"
                                  "web_identity_token_file = %s\nrole_session_name = from-profile\n"
                   % (ACCOUNT, token_file))
        out = self.whoami(self.env(AWS_PROFILE="web"))
        self.assertEqual(out["provider"], "assume-role-with-web-identity")
        self.assertEqual(out["arn"], "arn:aws:sts::%s:assumed-role/web-role/from-profile" % ACCOUNT)

    def test_web_identity_bad_token_is_refused(self):
        token_file = self.write("web-token", "not-a-known-token")
        env = self.env(AWS_WEB_IDENTITY_TOKEN_FILE=token_file, AWS_ROLE_ARN="arn:aws:iam::%s:role/web-role" % ACCOUNT)
        p = self.run_redduck(["whoami", "--json"], env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("InvalidIdentityToken", p.stderr)
        self.assertNotIn("not-a-known-token", p.stderr)
        self.assertEqual(self.fake.apis(), ["sts:AssumeRoleWithWebIdentity"])

    # --- SSO ---------------------------------------------------------------------------------------------
    def test_sso_session_profile(self):
        self.write(".aws/config", "[profile sso-dev]\nsso_session = corp\nsso_account_id = 111122223333\n"
                                  "sso_role_name = ReadOnly\nregion = us-east-1\n\n"
                                  "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n"
                                  "sso_region = eu-west-1\nsso_registration_scopes = sso:account:access\n")
        self.sso_cache("corp", SSO_TOKEN, utc(time.time() + 8 * 3600), "https://corp.awsapps.com/start", "eu-west-1")
        out = self.whoami(self.env(AWS_PROFILE="sso-dev"))
        self.assertEqual(out["provider"], "sso")
        self.assertEqual(out["account"], "111122223333")
        self.assertEqual(out["arn"], "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_ReadOnly_0123456789abcdef/"
                                     "alice@example.com")
        reqs = self.fake.requests()
        self.assertEqual([r["api"] for r in reqs], ["sso:GetRoleCredentials", "sts:GetCallerIdentity"])
        self.assertEqual(reqs[0]["auth"], "ok")
        self.assertEqual(header(reqs[0], "x-amz-sso_bearer_token"), "<redacted>")
        self.assertEqual(reqs[1]["auth"], "ok")

    def test_sso_legacy_profile(self):
        start = "https://legacy.awsapps.com/start"
        self.write(".aws/config", "[profile old]\nsso_start_url = %s\nsso_region = us-east-1\n"
                                  "sso_account_id = 111122223333\nsso_role_name = ReadOnly\n" % start)
        self.sso_cache(start, SSO_TOKEN, utc(time.time() + 3600), start, "us-east-1", session=False)
        out = self.whoami(self.env(AWS_PROFILE="old"), local=True)
        self.assertEqual(out["provider"], "sso")
        self.assertTrue(out["access_key_id"].startswith("ASIA"))
        self.assertEqual(self.fake.apis(), ["sso:GetRoleCredentials"])

    def test_sso_expired_token_says_to_log_in(self):
        self.write(".aws/config", "[profile sso-dev]\nsso_session = corp\nsso_account_id = 111122223333\n"
                                  "sso_role_name = ReadOnly\n\n"
                                  "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n"
                                  "sso_region = eu-west-1\n")
        self.sso_cache("corp", SSO_TOKEN, utc(time.time() - 60), "https://corp.awsapps.com/start", "eu-west-1")
        p = self.run_redduck(["whoami", "--json"], self.env(AWS_PROFILE="sso-dev"))
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("The SSO session for profile 'sso-dev' has expired or is missing: "
                      "run `aws sso login --profile sso-dev`", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1)
        self.assertEqual(self.fake.requests(), [])

    def test_sso_missing_keys_are_named(self):
        self.write(".aws/config", "[profile half]\nsso_account_id = 111122223333\nsso_role_name = ReadOnly\n")
        p = self.run_redduck(["whoami", "--json"], self.env(AWS_PROFILE="half"))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("sso_start_url, sso_region", p.stderr)
        self.assertEqual(self.fake.requests(), [])

    # --- container endpoint --------------------------------------------------------------------------------
    def test_container_full_uri_with_token(self):
        env = self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=self.fake.url + "/container/creds",
                       AWS_CONTAINER_AUTHORIZATION_TOKEN=CONTAINER_TOKEN)
        out = self.whoami(env)
        self.assertEqual(out["provider"], "container-role")
        self.assertEqual(out["arn"], "arn:aws:sts::%s:assumed-role/task-role/task-0123" % ACCOUNT)
        reqs = self.fake.requests()
        self.assertEqual([r["api"] for r in reqs], ["container:credentials", "sts:GetCallerIdentity"])
        self.assertEqual(reqs[0]["auth"], "ok")
        self.assertEqual(header(reqs[0], "Authorization"), "<redacted>")

    def test_container_token_file_wins_over_env_token(self):
        token_file = self.write("eks-token", CONTAINER_TOKEN)
        env = self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=self.fake.url + "/container/creds",
                       AWS_CONTAINER_AUTHORIZATION_TOKEN="wrong-env-token",
                       AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=token_file)
        out = self.whoami(env, local=True)
        self.assertEqual(out["provider"], "container-role")
        self.assertEqual([r["auth"] for r in self.fake.requests()], ["ok"])

    def test_container_wrong_token_is_refused(self):
        env = self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=self.fake.url + "/container/creds",
                       AWS_CONTAINER_AUTHORIZATION_TOKEN="wrong-env-token")
        p = self.run_redduck(["whoami", "--json", "--local"], env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("401", p.stderr)
        self.assertNotIn("wrong-env-token", p.stderr)
        self.assertEqual(self.fake.apis(), ["container:credentials"] * 3)  # botocore's 3 attempts

    def test_container_disallowed_host_sends_nothing(self):
        # 0.0.0.0 is neither loopback nor an ECS/EKS address, so botocore refuses it; were it contacted, Linux
        # would deliver it to this machine's fake, so a regression shows up in the fake's log (and no packet
        # ever leaves the machine).
        env = self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://0.0.0.0:%d/container/creds" % self.fake.port,
                       AWS_CONTAINER_AUTHORIZATION_TOKEN=CONTAINER_TOKEN)
        p = self.run_redduck(["whoami", "--json", "--local"], env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Unsupported host '0.0.0.0'", p.stderr)
        time.sleep(0.2)
        self.assertEqual(self.fake.requests(), [])

    def test_container_token_with_newline_is_refused(self):
        token_file = self.write("eks-token", CONTAINER_TOKEN + "\n")
        env = self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=self.fake.url + "/container/creds",
                       AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=token_file)
        p = self.run_redduck(["whoami", "--json", "--local"], env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("CR or LF", p.stderr)
        self.assertEqual(self.fake.requests(), [])

    # --- IMDS --------------------------------------------------------------------------------------------
    def test_imds_v2_token_flow(self):
        env = self.env(AWS_EC2_METADATA_DISABLED=None, AWS_EC2_METADATA_SERVICE_ENDPOINT=self.fake.url + "/")
        out = self.whoami(env)
        self.assertEqual(out["provider"], "iam-role")
        self.assertEqual(out["arn"], "arn:aws:sts::%s:assumed-role/ec2-role/i-0123456789abcdef0" % ACCOUNT)
        reqs = self.fake.requests()
        self.assertEqual([r["api"] for r in reqs],
                         ["imds:token", "imds:role-list", "imds:credentials", "sts:GetCallerIdentity"])
        self.assertEqual(reqs[0]["method"], "PUT")
        self.assertEqual(header(reqs[0], "X-aws-ec2-metadata-token-ttl-seconds"), "21600")
        self.assertEqual([r["auth"] for r in reqs[1:3]], ["ok", "ok"])
        self.assertEqual(header(reqs[1], "X-aws-ec2-metadata-token"), "<redacted>")

    def test_imds_disabled_sends_nothing(self):
        env = self.env(AWS_EC2_METADATA_DISABLED="true", AWS_EC2_METADATA_SERVICE_ENDPOINT=self.fake.url + "/")
        p = self.run_redduck(["whoami", "--json"], env)
        self.assertEqual(p.returncode, 3, p.stderr)
        time.sleep(0.2)
        self.assertEqual(self.fake.requests(), [])

    # --- roles with source credentials ------------------------------------------------------------------------
    def test_assume_role_with_source_profile(self):
        self.write(".aws/credentials", "[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                   % (ALICE_KEY, ALICE_SECRET))
        self.write(".aws/config", "[profile dev]\nrole_arn = arn:aws:iam::%s:role/dev\nsource_profile = base\n"
                                  "role_session_name = dev-session\n" % ACCOUNT)
        out = self.whoami(self.env(AWS_PROFILE="dev"))
        self.assertEqual(out["provider"], "assume-role")
        self.assertEqual(out["arn"], "arn:aws:sts::%s:assumed-role/dev/dev-session" % ACCOUNT)
        reqs = self.fake.requests()
        self.assertEqual([r["api"] for r in reqs], ["sts:AssumeRole", "sts:GetCallerIdentity"])
        self.assertEqual([r["auth"] for r in reqs], ["ok", "ok"])  # AssumeRole signed with alice's keys

    def test_credential_source_ecs_container(self):
        self.write(".aws/config", "[profile ecs]\nrole_arn = arn:aws:iam::%s:role/dev\n"
                                  "credential_source = EcsContainer\nrole_session_name = from-ecs\n" % ACCOUNT)
        env = self.env(AWS_PROFILE="ecs", AWS_CONTAINER_CREDENTIALS_FULL_URI=self.fake.url + "/container/creds",
                       AWS_CONTAINER_AUTHORIZATION_TOKEN=CONTAINER_TOKEN)
        out = self.whoami(env)
        self.assertEqual(out["provider"], "assume-role")
        self.assertEqual(out["arn"], "arn:aws:sts::%s:assumed-role/dev/from-ecs" % ACCOUNT)
        reqs = self.fake.requests()
        self.assertEqual([r["api"] for r in reqs],
                         ["container:credentials", "sts:AssumeRole", "sts:GetCallerIdentity"])
        self.assertEqual(reqs[1]["auth"], "ok")  # signed with the container's temporary credentials

    def test_credential_source_environment(self):
        self.write(".aws/config", "[profile envrole]\nrole_arn = arn:aws:iam::%s:role/dev\n"
                                  "credential_source = Environment\nrole_session_name = from-env\n" % ACCOUNT)
        env = self.env(AWS_ACCESS_KEY_ID=ALICE_KEY, AWS_SECRET_ACCESS_KEY=ALICE_SECRET)
        out = self.whoami(env, "--profile", "envrole")
        self.assertEqual(out["provider"], "assume-role")
        self.assertEqual(out["arn"], "arn:aws:sts::%s:assumed-role/dev/from-env" % ACCOUNT)
        self.assertEqual(self.fake.apis(), ["sts:AssumeRole", "sts:GetCallerIdentity"])

    # --- exit codes and logging ---------------------------------------------------------------------------------
    def test_no_credentials_exits_3(self):
        p = self.run_redduck(["whoami", "--json"], self.env())
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(self.fake.requests(), [])

    def test_refused_by_sts_exits_4(self):
        p = self.run_redduck(["whoami", "--json"], self.env(AWS_ACCESS_KEY_ID=ALICE_KEY,
                                                            AWS_SECRET_ACCESS_KEY="wrong-secret-value"))
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertIn("SignatureDoesNotMatch", p.stderr)
        self.assertNotIn("wrong-secret-value", p.stderr)
        p = self.run_redduck(["whoami", "--json"], self.env(AWS_ACCESS_KEY_ID="AKIAUNKNOWN000000000",
                                                            AWS_SECRET_ACCESS_KEY="wrong-secret-value"))
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertIn("InvalidClientTokenId", p.stderr)
        self.assertEqual([r["auth"] for r in self.fake.requests()], ["bad", "bad"])

    def test_verbose_logs_requests_but_no_secrets(self):
        self.write(".aws/config", "[profile sso-dev]\nsso_session = corp\nsso_account_id = 111122223333\n"
                                  "sso_role_name = ReadOnly\n\n"
                                  "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n"
                                  "sso_region = eu-west-1\n")
        self.sso_cache("corp", SSO_TOKEN, utc(time.time() + 3600), "https://corp.awsapps.com/start", "eu-west-1")
        host = "127.0.0.1:%d" % self.fake.port
        for flag in ("-v", "-vv"):
            p = self.run_redduck(["whoami", "--json", flag], self.env(AWS_PROFILE="sso-dev"))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertRegex(p.stderr, r"GET %s /federation/credentials\S* -> 200" % host)
            self.assertRegex(p.stderr, r"POST %s / -> 200" % host)

        token_file = self.write("web-token", WEB_TOKEN)
        env = self.env(AWS_WEB_IDENTITY_TOKEN_FILE=token_file, AWS_ROLE_ARN="arn:aws:iam::%s:role/web-role" % ACCOUNT)
        p = self.run_redduck(["whoami", "--json", "-vv"], env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("<redacted>", p.stderr)  # the signed GetCallerIdentity's Authorization header

        env = self.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=self.fake.url + "/container/creds",
                       AWS_CONTAINER_AUTHORIZATION_TOKEN=CONTAINER_TOKEN)
        p = self.run_redduck(["whoami", "--json", "-vv"], env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("GET %s /container/creds -> 200" % host, p.stderr)

        env = self.env(AWS_EC2_METADATA_DISABLED=None, AWS_EC2_METADATA_SERVICE_ENDPOINT=self.fake.url)
        p = self.run_redduck(["whoami", "--json", "-vv"], env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("PUT %s /latest/api/token -> 200" % host, p.stderr)
        self.assertIn("GET %s /latest/meta-data/iam/security-credentials/ec2-role -> 200" % host, p.stderr)
        # run_redduck asserted for every run above that no secret, session token or bearer token was printed


if __name__ == "__main__":
    unittest.main()
