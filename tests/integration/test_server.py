"""`redduck server` as a real process on loopback port 0 with a temporary data dir: the first start's token
taken from its output, calls with urllib, a restart keeping everything, rotate-key offline and the values
still read, a planted secret never in any byte under the data dir nor in the server's output, the keyring
refused at 0644, a non-loopback --listen refused without TLS unless --insecure-http (with a warning), TLS
with a self-signed certificate (works with it as CA, fails without), SIGTERM ending with exit 0, the offline
user and token commands, and 50 concurrent clients setting and reading variables with nothing lost."""
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import unittest
import urllib.error
import urllib.request

from emulator_fixture import Server, api

REDDUCK = os.environ.get("REDDUCK_BIN", "redduck")
SECRET = "planted-SECRET-9c1e4f7a2b-value"



def run(*args):
    env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true")
    return subprocess.run([REDDUCK, "server"] + list(args), capture_output=True, text=True, timeout=30, env=env)


def all_bytes_under(folder):
    for root, _, files in os.walk(folder):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                yield os.path.join(root, f), fh.read()


class ServerTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rd-server-")
        self.data = os.path.join(self.tmp, "data")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            if s.proc.poll() is None:
                s.proc.kill()
                s.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, *args, **kw):
        s = Server(self.data, "--listen", "127.0.0.1:0", *args, **kw)
        self.servers.append(s)
        return s

    def test_lifecycle_restart_rotate_and_no_secret_anywhere(self):
        s = self.start()
        self.assertTrue(s.url.startswith("http://127.0.0.1:"))
        self.assertIsNotNone(s.token, "the first start prints the admin token")
        token = s.token
        self.assertEqual(os.stat(os.path.join(self.data, "keyring")).st_mode & 0o777, 0o600)
        self.assertEqual(api(s.url, "GET", "/v1/health")[0], 200)
        self.assertEqual(api(s.url, "GET", "/v1/whoami")[0], 401)
        st, who = api(s.url, "GET", "/v1/whoami", token)
        self.assertEqual((st, who["user"], who["server_admin"]), (200, "admin", True))
        self.assertEqual(api(s.url, "POST", "/v1/projects", token, {"name": "demo"})[0], 201)
        st, _ = api(s.url, "PUT", "/v1/projects/demo/variables/prod/connector.rs.aws_secret_access_key", token,
                    {"value": SECRET})
        self.assertEqual(st, 200)
        st, got = api(s.url, "GET", "/v1/projects/demo/variables/prod", token)
        self.assertEqual(got["variables"], {"connector.rs.aws_secret_access_key": SECRET})
        self.assertNotIn(SECRET, " ".join(open("/proc/%d/cmdline" % s.proc.pid).read().split("\0")))
        self.assertEqual(s.stop(), 0)
        self.assertIn("SIGTERM", s.stderr)
        self.assertIn("PUT /v1/projects/demo/variables/prod/connector.rs.aws_secret_access_key 200", s.stderr)
        outputs = [s.stdout, s.stderr]

        # a restart keeps everything and prints no token
        s = self.start()
        self.assertIsNone(s.token)
        st, got = api(s.url, "GET", "/v1/projects/demo/variables/prod", token)
        self.assertEqual((st, got["variables"]["connector.rs.aws_secret_access_key"]), (200, SECRET))
        # rotate-key refuses while the server runs
        p = run("rotate-key", "--data-dir", self.data)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("stop the server first", p.stderr)
        self.assertEqual(s.stop(signal.SIGINT), 0)
        outputs += [s.stdout, s.stderr]

        p = run("rotate-key", "--data-dir", self.data)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("key 2 added; 1 value re-encrypted", p.stdout)
        outputs += [p.stdout, p.stderr]
        s = self.start()
        st, got = api(s.url, "GET", "/v1/projects/demo/variables/prod", token)
        self.assertEqual((st, got["variables"]["connector.rs.aws_secret_access_key"]), (200, SECRET))
        st, audit = api(s.url, "GET", "/v1/projects/demo/audit", token)
        self.assertEqual(st, 200)
        self.assertIn("variable.set", [e["action"] for e in audit["events"]])
        self.assertEqual(s.stop(), 0)
        outputs += [s.stdout, s.stderr]

        for text in outputs:
            self.assertNotIn(SECRET, text)
        for path, data in all_bytes_under(self.data):
            self.assertNotIn(SECRET.encode(), data, "the planted secret is in " + path)
            self.assertNotIn(token.encode(), data, "the admin token is in " + path)
        self.assertTrue(any(os.path.basename(p) == "store.db" for p, _ in all_bytes_under(self.data)))

    def test_chunked_json_body_not_buffered(self):
        """A JSON body without Content-Length stops being kept at 1 MiB: 48 MiB sent chunked get a 413 and the
        server's peak RSS does not grow by the body's size."""
        import http.client
        import urllib.parse

        s = self.start()
        def peak_kib():
            with open("/proc/%d/status" % s.proc.pid) as fh:
                return int(re.search(r"VmHWM:\s+(\d+) kB", fh.read()).group(1))

        self.assertEqual(api(s.url, "POST", "/v1/projects", s.token, {"name": "demo"})[0], 201)
        before = peak_kib()
        total = 48 << 20

        def body():
            yield b'{"value":"'
            piece = b"x" * (1 << 20)
            for _ in range(total >> 20):
                yield piece
            yield b'"}'

        u = urllib.parse.urlparse(s.url)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        c.request("PUT", "/v1/projects/demo/variables/dev/BIG", body(),
                  {"Authorization": "Bearer " + s.token, "Content-Type": "application/json"}, encode_chunked=True)
        r = c.getresponse()
        got = json.loads(r.read())
        c.close()
        self.assertEqual((r.status, got["error"]["code"]), (413, "PayloadTooLarge"))
        grown = peak_kib() - before
        self.assertLess(grown, 16 << 10, "peak RSS grew by %d KiB for a 48 MiB chunked body" % grown)
        self.assertEqual(api(s.url, "GET", "/v1/projects/demo/variables/dev?names=1", s.token)[1]["names"], [])
        self.assertEqual(s.stop(), 0)

    def test_keyring_readable_by_others_refused(self):
        s = self.start()
        self.assertEqual(s.stop(), 0)
        os.chmod(os.path.join(self.data, "keyring"), 0o644)
        s = self.start(expect_ready=False)
        rc = s.wait()
        self.assertNotEqual(rc, 0)
        self.assertIn("chmod 600", s.stderr)
        self.assertNotIn("listening", s.stdout)

    def test_non_loopback_needs_tls_or_insecure_http(self):
        p = subprocess.run([REDDUCK, "server", "--data-dir", self.data, "--listen", "0.0.0.0:0"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("needs TLS", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.data, "store.db")))
        s = Server(self.data, "--listen", "0.0.0.0:0", "--insecure-http")
        self.servers.append(s)
        port = s.url.rsplit(":", 1)[1]
        self.assertEqual(api("http://127.0.0.1:" + port, "GET", "/v1/health")[0], 200)
        self.assertEqual(s.stop(), 0)
        self.assertIn("WARNING: plain HTTP", s.stderr)  # read whole once stopped (stderr is its own pipe)

    def test_tls_self_signed(self):
        cert, key = os.path.join(self.tmp, "cert.pem"), os.path.join(self.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key,
                        "-out", cert], check=True, capture_output=True, timeout=60)
        s = self.start("--tls-cert", cert, "--tls-key", key)
        self.assertTrue(s.url.startswith("https://127.0.0.1:"), s.url)
        ctx = ssl.create_default_context(cafile=cert)
        st, who = api(s.url, "GET", "/v1/whoami", s.token, context=ctx)
        self.assertEqual((st, who["user"]), (200, "admin"))
        with self.assertRaises(urllib.error.URLError):  # verification stays on: unknown CA
            api(s.url, "GET", "/v1/health", context=ssl.create_default_context())
        with self.assertRaises(OSError):  # plain HTTP on the TLS port
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                s.url.replace("https", "http") + "/v1/health", timeout=10).read()
        self.assertEqual(s.stop(), 0)

    def test_offline_users_and_tokens(self):
        s = self.start()
        admin = s.token
        self.assertEqual(api(s.url, "POST", "/v1/projects", admin, {"name": "demo"})[0], 201)
        p = run("user", "add", "bob", "--data-dir", self.data, "--project", "demo", "--role", "editor")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = run("token", "create", "bob", "--name", "laptop", "--data-dir", self.data)
        self.assertEqual(p.returncode, 0, p.stderr)
        bob = re.search(r"rdk_[0-9a-f]{64}", p.stdout).group(0)
        st, who = api(s.url, "GET", "/v1/whoami", bob)
        self.assertEqual((st, who["projects"]), (200, [{"name": "demo", "role": "editor", "prod_access": False}]))
        self.assertEqual(api(s.url, "GET", "/v1/projects/demo/variables/prod", bob)[0], 403)
        self.assertEqual(api(s.url, "GET", "/v1/projects/demo/variables/dev", bob)[0], 200)
        p = run("user", "list", "--data-dir", self.data)
        self.assertIn("admin\tserver-admin", p.stdout)
        self.assertIn("bob\t-", p.stdout)
        p = run("token", "revoke", "bob", "laptop", "--data-dir", self.data)
        self.assertEqual(p.returncode, 0, p.stderr)
        st, body = api(s.url, "GET", "/v1/whoami", bob)
        self.assertEqual((st, body), (401, {"error": {"code": "Unauthorized", "message": "authentication required"}}))
        p = run("user", "rm", "admin", "--data-dir", self.data)
        self.assertNotEqual(p.returncode, 0)  # the last server admin stays
        self.assertEqual(s.stop(), 0)
        self.assertNotIn(bob, s.stderr)

    def test_50_concurrent_clients(self):
        s = self.start()
        token = s.token
        self.assertEqual(api(s.url, "POST", "/v1/projects", token, {"name": "demo"})[0], 201)
        errors = []

        def client(i):
            try:
                for k in range(4):
                    name = "K%02d_%d" % (i, k)
                    st, _ = api(s.url, "PUT", "/v1/projects/demo/variables/dev/" + name, token,
                                {"value": "v-%d-%d" % (i, k)})
                    if st != 200:
                        errors.append((name, st))
                    st, got = api(s.url, "GET", "/v1/projects/demo/variables/dev?names=1", token)
                    if st != 200 or name not in got["names"]:
                        errors.append((name, "read", st))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        st, got = api(s.url, "GET", "/v1/projects/demo/variables/dev", token)
        self.assertEqual(st, 200)
        self.assertEqual(len(got["variables"]), 200)
        for i in range(50):
            for k in range(4):
                self.assertEqual(got["variables"]["K%02d_%d" % (i, k)], "v-%d-%d" % (i, k))
        self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    unittest.main()
