"""Secrets and TLS in the AWS layers, end to end with the real binary:
- a parser error (credential_process output, container endpoint reply, STS reply) names line and column and
  never quotes the input, which can hold a secret;
- redduck is not dumpable and has no core file size (unless REDDUCK_ALLOW_CORE_DUMPS=1);
- a region that is not a region name is a usage error before anything is sent (a loopback "proxy" records
  every connection attempt, so nothing can reach another host);
- AWS_CA_BUNDLE and the profile's ca_bundle (tests/fakes/fake_aws.py over HTTPS with a throwaway CA made with
  the openssl CLI); an untrusted certificate fails at once, naming the host and AWS_CA_BUNDLE.
Loopback only; the fakes stop by themselves."""
import json
import os
import pwd
import resource
import shutil
import socket
import subprocess
import threading
import time
import unittest

import emulator_fixture
from emulator_fixture import clean_env, make_home
from test_creds_remote import ACCOUNT, ALICE_KEY, ALICE_SECRET, FakeAWS

REDDUCK = emulator_fixture.REDDUCK
SECRET_PIECES = ["wJalr", "K7MDENG", "GARBAGESECRET", ALICE_SECRET]

FAKE_CONFIG = {
    "users": {ALICE_KEY: {"secret": ALICE_SECRET, "account": ACCOUNT,
                          "arn": "arn:aws:iam::%s:user/alice" % ACCOUNT, "user_id": "AIDAALICE000000000001"}},
    "container": {"path": "/container/creds"},
    "garbage": {
        "container": '{"AccessKeyId": "ASIAGARBAGE", "SecretAccessKey": wJalrGARBAGESECRET1, "Token": "t"}',
        "sts": ("<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::1:user/GARBAGESECRET2</Arn>"
                "<wJalrGARBAGESECRET3></GetCallerIdentityResult></GetCallerIdentityResponse>"),
    },
}
GOOD_CONFIG = {k: v for k, v in FAKE_CONFIG.items() if k != "garbage"}


class HomeMixin(emulator_fixture.HomeMixin):
    secrets = SECRET_PIECES


class ParseErrorsQuoteNothingTest(HomeMixin, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp, cls.home = make_home("rd-parse-")
        cls.fake = FakeAWS(cls.tmp, FAKE_CONFIG, lifetime=60)

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_credential_process_malformed_json(self):
        out = self.write("process-output.json",
                         '{"Version": 1, "AccessKeyId": "AKID", "SecretAccessKey": wJalrXUtnFEMI/K7MDENG}\n')
        self.write(".aws/config", "[default]\ncredential_process = cat %s\n" % out)
        p = self.run_redduck(["whoami"], clean_env(self.home, AWS_REGION="us-east-1"))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("credential_process", p.stderr)
        self.assertIn("line 1, column", p.stderr)

    def test_container_reply_malformed_json(self):
        env = clean_env(self.home, AWS_REGION="us-east-1",
                       AWS_CONTAINER_CREDENTIALS_FULL_URI=self.fake.url + "/container/creds")
        self.write(".aws/config", "")
        p = self.run_redduck(["whoami"], env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("container", p.stderr)
        self.assertIn("line 1, column", p.stderr)

    def test_sts_reply_malformed_xml(self):
        env = clean_env(self.home, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID=ALICE_KEY,
                       AWS_SECRET_ACCESS_KEY=ALICE_SECRET, AWS_ENDPOINT_URL_STS=self.fake.url)
        self.write(".aws/config", "")
        p = self.run_redduck(["whoami"], env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("GetCallerIdentity", p.stderr)
        self.assertIn("line 1, column", p.stderr)


class CoreDumpsTest(HomeMixin, unittest.TestCase):
    """A non-dumpable process's /proc/PID files belong to root, whoever runs it; a dumpable one's to its
    user. So redduck runs as `nobody` when the test is root (or as the test's own user otherwise) while it
    waits for a slow credential_process, and the owner of /proc/PID/status tells which it is."""

    @classmethod
    def setUpClass(cls):
        cls.tmp, cls.home = make_home("rd-core-")
        with open(os.path.join(cls.home, ".aws", "config"), "w") as f:
            f.write("[default]\nregion = us-east-1\ncredential_process = sleep 3\n")
        for d, _, files in os.walk(cls.tmp):
            os.chmod(d, 0o755)
            for name in files:
                os.chmod(os.path.join(d, name), 0o644)
        cls.uid = os.getuid()
        if os.geteuid() == 0:
            cls.uid = pwd.getpwnam("nobody").pw_uid

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start(self, **extra):
        uid = self.uid

        def child():
            # a core size limit the old code would have kept
            try:
                resource.setrlimit(resource.RLIMIT_CORE, (1 << 20, 1 << 20))
            except (ValueError, OSError):
                pass
            if os.geteuid() == 0:
                os.setgid(pwd.getpwuid(uid).pw_gid)
                os.setgroups([])
                os.setuid(uid)

        return subprocess.Popen([REDDUCK, "whoami"], env=clean_env(self.home, **extra), preexec_fn=child,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.tmp)

    def observe(self, proc):
        """(owner uid of /proc/PID/status, soft core limit) once redduck waits for its credential_process."""
        pid = proc.pid
        deadline = time.time() + 10
        children = ""
        while time.time() < deadline and not children:
            try:
                with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                    children = f.read().strip()
            except OSError:
                break
            if not children:
                time.sleep(0.02)
        self.assertTrue(children, "redduck never started its credential_process")
        owner = os.stat("/proc/%d/status" % pid).st_uid
        core = None
        with open("/proc/%d/limits" % pid) as f:
            for line in f:
                if line.startswith("Max core file size"):
                    core = line.split()[4]
        proc.kill()
        proc.wait()
        return owner, core

    def test_not_dumpable_and_no_core_file(self):
        owner, core = self.observe(self.start())
        self.assertEqual(core, "0")
        self.assertEqual(owner, 0, "redduck is still dumpable")
        self.assertNotEqual(self.uid, 0)

    def test_allowed_by_environment(self):
        # an ASan build limits core files itself unless told otherwise
        asan = (os.environ.get("ASAN_OPTIONS", "") + ":disable_coredump=0").lstrip(":")
        owner, core = self.observe(self.start(REDDUCK_ALLOW_CORE_DUMPS="1", ASAN_OPTIONS=asan))
        self.assertNotEqual(core, "0")
        self.assertEqual(owner, self.uid)


class ConnectionRecorder:
    """A loopback "proxy" that records every connection and closes it at once."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.count += 1
            conn.close()

    def stop(self):
        self.running = False
        self.thread.join()
        self.sock.close()


class RegionNamesTest(HomeMixin, unittest.TestCase):
    BAD = "evil.example/#"

    @classmethod
    def setUpClass(cls):
        cls.tmp, cls.home = make_home("rd-region-")
        cls.proxy = ConnectionRecorder()

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def env(self, **extra):
        url = "http://127.0.0.1:%d" % self.proxy.port
        # every request, to any host, would go through the recorder
        return clean_env(self.home, AWS_ACCESS_KEY_ID=ALICE_KEY, AWS_SECRET_ACCESS_KEY=ALICE_SECRET,
                        AWS_SESSION_TOKEN="session-token-wJalrGARBAGESECRET4", AWS_MAX_ATTEMPTS="1",
                        HTTPS_PROXY=url, https_proxy=url, HTTP_PROXY=url, http_proxy=url, NO_PROXY=None,
                        no_proxy=None, **extra)

    def refused(self, args, env, source):
        before = self.proxy.count
        p = self.run_redduck(["whoami"] + args, env)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("not a valid AWS region name", p.stderr)
        self.assertIn(source, p.stderr)
        time.sleep(0.05)
        self.assertEqual(self.proxy.count, before, "a request was sent")

    def test_flag(self):
        self.write(".aws/config", "")
        self.refused(["--region", self.BAD], self.env(), "--region")

    def test_environment(self):
        self.write(".aws/config", "")
        self.refused([], self.env(AWS_REGION=self.BAD), "AWS_REGION")
        self.refused([], self.env(AWS_DEFAULT_REGION=self.BAD), "AWS_DEFAULT_REGION")

    def test_profile(self):
        path = self.write(".aws/config", "[default]\nregion = %s\n" % self.BAD)
        self.refused([], self.env(), path)

    def test_a_valid_region_does_reach_the_recorder(self):
        # the control: the recorder does see what redduck sends
        self.write(".aws/config", "")
        before = self.proxy.count
        p = self.run_redduck(["whoami", "--region", "us-east-1"], self.env())
        self.assertNotEqual(p.returncode, 0)
        self.assertGreater(self.proxy.count, before)


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=30)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".pem", "-days", "2", "-subj", "/CN=redduck test " + name,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=d)
    return os.path.join(d, name + ".pem")


class CABundleTest(HomeMixin, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp, cls.home = make_home("rd-tls-")
        d = cls.tmp
        cls.ca = make_ca(d, "ca")
        cls.other_ca = make_ca(d, "other-ca")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
        with open(os.path.join(d, "server.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                    "extendedKeyUsage=serverAuth\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.pem", "-days", "2", "-extfile", "server.ext", cwd=d)
        shutil.copy(cls.ca, os.path.join(cls.home, "corp-ca.pem"))
        cls.fake = FakeAWS(cls.tmp, GOOD_CONFIG, tls_cert=os.path.join(d, "server.pem"),
                           tls_key=os.path.join(d, "server.key"), lifetime=60)

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def connections(self):
        return sum(1 for r in self.fake.requests() if r["api"] == "tls:connection")

    def whoami(self, **extra):
        env = clean_env(self.home, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID=ALICE_KEY,
                       AWS_SECRET_ACCESS_KEY=ALICE_SECRET, **extra)
        before = self.connections()
        p = self.run_redduck(["whoami", "--json", "--endpoint-url", self.fake.url], env)
        time.sleep(0.05)
        return p, self.connections() - before

    def test_untrusted_certificate_fails_at_once(self):
        self.write(".aws/config", "")
        p, n = self.whoami()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("the TLS certificate of 127.0.0.1:%d is not trusted" % self.fake.port, p.stderr)
        self.assertIn("AWS_CA_BUNDLE", p.stderr)
        self.assertEqual(n, 1, "a certificate error was retried")

    def test_aws_ca_bundle(self):
        self.write(".aws/config", "")
        p, _ = self.whoami(AWS_CA_BUNDLE=self.ca)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["arn"], "arn:aws:iam::%s:user/alice" % ACCOUNT)

    def test_profile_ca_bundle_with_tilde(self):
        self.write(".aws/config", "[default]\nca_bundle = ~/corp-ca.pem\n")
        p, _ = self.whoami()
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_environment_wins_over_profile(self):
        self.write(".aws/config", "[default]\nca_bundle = ~/corp-ca.pem\n")
        p, n = self.whoami(AWS_CA_BUNDLE=self.other_ca)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("not trusted by the CA bundle %s" % self.other_ca, p.stderr)
        self.assertEqual(n, 1)

    def test_container_endpoint_certificate_error_is_not_retried(self):
        # the container provider has its own attempts (3, as botocore); a certificate verdict ends them
        self.write(".aws/config", "")
        env = clean_env(self.home, AWS_REGION="us-east-1",
                       AWS_CONTAINER_CREDENTIALS_FULL_URI=self.fake.url + "/container/creds")
        before = self.connections()
        p = self.run_redduck(["whoami", "--local"], env)
        time.sleep(0.05)
        self.assertNotEqual(p.returncode, 0, p.stderr)
        self.assertIn("the TLS certificate of 127.0.0.1:%d is not trusted" % self.fake.port, p.stderr)
        self.assertEqual(self.connections() - before, 1, "a certificate error was retried")

    def test_missing_bundle_is_named_before_connecting(self):
        self.write(".aws/config", "")
        missing = os.path.join(self.tmp, "no-such-ca.pem")
        p, n = self.whoami(AWS_CA_BUNDLE=missing)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(missing, p.stderr)
        self.assertIn("does not exist", p.stderr)
        self.assertEqual(n, 0)


if __name__ == "__main__":
    unittest.main()
