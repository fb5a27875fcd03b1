"""The client commands of `redduck server` against a real server process (loopback, port 0, a temporary data
dir, stopped by the test): login (a prompt on stdin, --token-stdin, a refused token, credentials.json 0600,
logout, REDDUCK_TOKEN over the file, plain http to another host refused), deploy of a copy of examples/demo
(the version and the missing keys, --no-prompt, keys answered on stdin, a redeploy, `deployments`,
--rollback), an invalid project's FILE:LINE problems as the server found them, env push (the diff by name
with masked values, the confirmation, cloud-only keys kept) then env pull into a second checkout, pull
overriding and listing keys, env show --cloud masked and --reveal, env set --cloud KEY -, env rm --cloud,
roles refused with exit 4, and no token or secret value in any output. The server's own API (urllib) is
the witness of what was stored."""
import fcntl
import json
import os
import re
import select
import shutil
import stat
import subprocess
import tempfile
import termios
import time
import unittest

from emulator_fixture import REDDUCK, clean_env, team_server

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(os.environ.get("RD_SOURCE_DIR", os.path.join(HERE, "..", "..")), "examples", "demo")
SECRET_A = "s3cr3t-A-4f1e9c2b7d"
SECRET_B = "s3cr3t-B-8a2d6e0f13"
AWS_SECRET = "aws-s3cr3t-Zq9Xw2Lk7"



class CloudCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rd-cloud-")
        cls.server = team_server(os.path.join(cls.tmp, "server-data"))
        cls.tokens = [cls.server.token]

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, "the server did not stop cleanly: %r" % rc

    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=self.tmp)
        self.home = os.path.join(self.dir, "home")
        os.makedirs(self.home)
        self.creds = os.path.join(self.home, ".config", "redduck", "credentials.json")

    def env(self, **extra):
        base = {"REDDUCK_SERVER": None, "REDDUCK_TOKEN": None, "REDDUCK_CA_BUNDLE": None}
        base.update(extra)
        return clean_env(self.home, **base)

    def redduck(self, *args, input=None, **env):
        p = subprocess.run([REDDUCK] + list(args), input=input if input is not None else "", capture_output=True,
                           text=True, timeout=60, env=self.env(**env))
        for secret in self.tokens + [SECRET_A, SECRET_B, AWS_SECRET]:
            self.assertNotIn(secret, p.stdout, "a secret leaked on stdout of %s" % (args,))
            self.assertNotIn(secret, p.stderr, "a secret leaked on stderr of %s" % (args,))
        return p

    def assertOneLine(self, p, code, text):
        self.assertEqual(p.returncode, code, p.stdout + p.stderr)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
        self.assertIn(text, p.stderr)

    def on_terminal(self, args, answers, **env):
        """Runs redduck on a new pseudo-terminal (its controlling terminal); for each (prompt, text) of answers,
        waits for prompt in its output and types text. Returns (exit code, all it printed)."""
        master, slave = os.openpty()
        p = subprocess.Popen([REDDUCK] + list(args), stdin=slave, stdout=slave, stderr=slave, env=self.env(**env),
                             start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        out = b""

        def read_some(deadline):
            nonlocal out
            r, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                return False
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                return None
            out += chunk
            return bool(chunk)

        try:
            for prompt, text in answers:
                deadline = time.monotonic() + 20
                while prompt.encode() not in out:
                    if not read_some(deadline):
                        raise AssertionError("no prompt %r in %r" % (prompt, out))
                out = out.replace(prompt.encode(), b"<asked>", 1)
                os.write(master, text.encode())
            deadline = time.monotonic() + 20
            while read_some(deadline):
                pass
            rc = p.wait(20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            os.close(master)
        text = out.decode("utf-8", "replace")
        for secret in self.tokens + [SECRET_A, SECRET_B, AWS_SECRET]:
            self.assertNotIn(secret, text, "a secret was echoed or printed on the terminal")
        return rc, text

    def login(self):
        p = self.redduck("login", "--server", self.server.url, "--token-stdin", input=self.server.token)
        self.assertEqual(p.returncode, 0, p.stderr)

    def checkout(self, name, project):
        """A copy of examples/demo named project in redduck.yaml."""
        d = os.path.join(self.dir, name)
        shutil.copytree(DEMO, d)
        path = os.path.join(d, "redduck.yaml")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("name: demo", "name: %s" % project))
        return d

    def read_env(self, d):
        # values in clear: not through redduck(), which fails on them
        p = subprocess.run([REDDUCK, "env", "dump-json", os.path.join(d, ".env")], capture_output=True, text=True,
                           timeout=60, env=self.env())
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    # ---- login ------------------------------------------------------------------------------------------

    def test_login_logout_and_overrides(self):
        url = self.server.url
        # a prompt, answered on stdin
        p = self.redduck("login", "--server", url, input=self.server.token + "\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("logged in to %s as admin" % url, p.stdout)
        self.assertEqual(stat.S_IMODE(os.stat(self.creds).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(self.creds)).st_mode), 0o700)
        with open(self.creds) as f:
            saved = json.load(f)
        self.assertEqual(saved["server"], url)
        # the stored login works for the other commands, without REDDUCK_*
        p = self.redduck("deployments", "--project", "nosuch")
        self.assertOneLine(p, 1, "no project nosuch on %s: deploy it first (`redduck deploy`)" % url)

        # a file others may read is refused, and a new login makes it private again
        os.chmod(self.creds, 0o644)
        p = self.redduck("deployments", "--project", "nosuch")
        self.assertOneLine(p, 1, "chmod 600")
        self.login()
        self.assertEqual(stat.S_IMODE(os.stat(self.creds).st_mode), 0o600)

        # REDDUCK_TOKEN wins over the file (a bad one: refused, exit 3, one line)
        p = self.redduck("deployments", "--project", "nosuch", REDDUCK_TOKEN="rdk_" + "0" * 64)
        self.assertOneLine(p, 3, "refused the token: run `redduck login`")
        # REDDUCK_SERVER wins too: a server the file's token was not made for gets no token at all
        p = self.redduck("deployments", "--project", "x", REDDUCK_SERVER="http://127.0.0.1:1")
        self.assertOneLine(p, 3, "no token for http://127.0.0.1:1")
        # ... and with a token, an unreachable server says what to do
        p = self.redduck("deployments", "--project", "x", REDDUCK_SERVER="http://127.0.0.1:1",
                         REDDUCK_TOKEN=self.server.token)
        self.assertOneLine(p, 1, "cannot reach the redduck server at http://127.0.0.1:1: is it running?")

        # logout removes the file; then nothing is known
        p = self.redduck("logout")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(self.creds))
        self.assertIn("not logged in", self.redduck("logout").stdout)
        p = self.redduck("deployments", "--project", "x")
        self.assertOneLine(p, 2, "redduck login")
        # REDDUCK_SERVER and REDDUCK_TOKEN alone are enough
        p = self.redduck("deployments", "--project", "nosuch", REDDUCK_SERVER=url, REDDUCK_TOKEN=self.server.token)
        self.assertOneLine(p, 1, "no project nosuch")

        # a bad token: exit 3, one line, nothing stored
        p = self.redduck("login", "--server", url, "--token-stdin", input="rdk_" + "1" * 64 + "\n")
        self.assertOneLine(p, 3, "refused the token")
        self.assertFalse(os.path.exists(self.creds))
        # the token is never an argument
        p = self.redduck("login", "--server", url, "--token", self.server.token)
        self.assertEqual(p.returncode, 2)
        p = self.redduck("login", "--server", url, self.server.token)
        self.assertEqual(p.returncode, 2)
        self.assertFalse(os.path.exists(self.creds))
        # plain http to a host that is not this machine: refused before anything is sent
        for args in (["login", "--server", "http://192.0.2.10:8470", "--token-stdin"],
                     ["deployments", "--project", "x", "--server", "http://192.0.2.10:8470"]):
            p = self.redduck(*args, input=self.server.token, REDDUCK_TOKEN=self.server.token)
            self.assertOneLine(p, 2, "--insecure-http")
        self.assertFalse(os.path.exists(self.creds))
        # -vv logs the headers with the token redacted (the check in redduck() sees no token)
        p = self.redduck("login", "--server", url, "--token-stdin", "-vv", input=self.server.token)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Authorization: <redacted>", p.stderr)

    # ---- deploy, deployments ------------------------------------------------------------------------------

    def test_deploy_redeploy_and_rollback(self):
        self.login()
        d = self.checkout("a", "deploydemo")
        # never uploaded: .env, data/, *.duckdb
        with open(os.path.join(d, ".env"), "w") as f:
            f.write("LOCAL_SECRET=%s\n" % SECRET_A)
        os.makedirs(os.path.join(d, "data"), exist_ok=True)  # data/ exists after a local `make demo`
        for rel in ("data/demo.duckdb", "stray.duckdb"):
            with open(os.path.join(d, rel), "w") as f:
                f.write("x")
        p = self.redduck("deploy", d, "--no-prompt")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("deployed deploydemo version 1 to %s" % self.server.url, p.stdout)
        self.assertIn("still missing in prod: connector.warehouse.aws_access_key_id, "
                      "connector.warehouse.aws_secret_access_key", p.stdout)
        shipped = []
        vdir = os.path.join(self.server.data_dir, "projects", "deploydemo", "v1")
        for root, _, files in os.walk(vdir):
            shipped += [os.path.relpath(os.path.join(root, f), vdir) for f in files]
        self.assertIn("redduck.yaml", shipped)
        self.assertIn(os.path.join("sources", "sales.yaml"), shipped)
        for name in shipped:
            self.assertFalse(name == ".env" or name.startswith("data") or name.endswith(".duckdb"), name)

        # the keys answered on stdin (the access key in clear, the secret hidden on a terminal)
        p = self.redduck("deploy", d, input="AKIDEXAMPLE\n%s\n" % AWS_SECRET)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("deployed deploydemo version 2", p.stdout)
        self.assertIn("nothing missing", p.stdout)
        status, body = self.server.api("GET", "/v1/projects/deploydemo/variables/prod")
        self.assertEqual(status, 200)
        self.assertEqual(body["variables"], {"connector.warehouse.aws_access_key_id": "AKIDEXAMPLE",
                                             "connector.warehouse.aws_secret_access_key": AWS_SECRET})
        # a third deploy has nothing missing and asks nothing
        p = self.redduck("deploy", d, "--project", "deploydemo")
        self.assertIn("deployed deploydemo version 3", p.stdout)
        self.assertIn("nothing missing", p.stdout)

        p = self.redduck("deployments", d)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [l.split() for l in p.stdout.splitlines()[1:]]
        self.assertEqual([r[0] for r in rows], ["3", "2", "1"])
        self.assertEqual(rows[0][1], "*")
        self.assertNotIn("*", rows[1] + rows[2])
        p = self.redduck("deployments", d, "--rollback", "1")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("version 1 is active (was 3)", p.stdout)
        status, body = self.server.api("GET", "/v1/projects/deploydemo")
        self.assertEqual(body["active_version"], 1)
        p = self.redduck("deployments", d)
        active = [l.split()[0] for l in p.stdout.splitlines()[1:] if l.split()[1] == "*"]
        self.assertEqual(active, ["1"])
        p = self.redduck("deployments", d, "--rollback", "9")
        self.assertOneLine(p, 1, "no version 9")

    def test_invalid_project_gets_the_servers_problems(self):
        self.login()
        d = self.checkout("bad", "badproject")
        # valid here (the local .env has PAR), not on the server (it has no PAR)
        path = os.path.join(d, "redduck.yaml")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(re.sub(r"(?m)^parallel:.*$", 'parallel: "{{ .env.PAR }}"', text))
        with open(os.path.join(d, ".env"), "w") as f:
            f.write("PAR=2\n")
        self.assertEqual(self.redduck("run", "--check", d).returncode, 0)
        p = self.redduck("deploy", d, "--no-prompt")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("redduck: project badproject does not validate on the server", p.stderr)
        self.assertRegex(p.stderr, r"\n  redduck\.yaml:\d+: `parallel`")
        status, body = self.server.api("GET", "/v1/projects/badproject/deployments")
        self.assertTrue(status == 404 or (status == 200 and body["deployments"] == []), (status, body))
        # invalid locally: refused before anything is sent, as `run --check` says it
        with open(os.path.join(d, "sources", "sales.yaml"), "a") as f:
            f.write("bogus_key: 1\n")
        p = self.redduck("deploy", d, "--no-prompt")
        self.assertOneLine(p, 1, "sales.yaml:")

    # ---- env push / pull -----------------------------------------------------------------------------------

    def test_env_push_then_pull_in_a_second_checkout(self):
        self.login()
        a = self.checkout("a", "envdemo")
        self.assertEqual(self.redduck("deploy", a, "--no-prompt").returncode, 0)
        # a key only in the cloud
        status, _ = self.server.api("PUT", "/v1/projects/envdemo/variables/dev/CLOUD_ONLY", body={"value": "c1"})
        self.assertEqual(status, 200)
        with open(os.path.join(a, ".env"), "w") as f:
            f.write("# local notes\nAPI_TOKEN=%s\nREGION=eu-west-1\nconnector.warehouse.aws_secret_access_key=%s\n"
                    % (SECRET_A, AWS_SECRET))
        # no terminal and no --yes: shown, then refused, nothing written
        p = self.redduck("env", "push", a)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("pass --yes", p.stderr)
        self.assertIn("  + API_TOKEN=s3…", p.stdout)
        self.assertIn("  + REGION=eu-west-1", p.stdout)
        self.assertIn("  + connector.warehouse.aws_secret_access_key=aw…", p.stdout)
        self.assertIn("3 added, 0 changed, 0 unchanged, 1 only in the cloud (kept)", p.stdout)
        status, body = self.server.api("GET", "/v1/projects/envdemo/variables/dev")
        self.assertEqual(body["variables"], {"CLOUD_ONLY": "c1"})
        p = self.redduck("env", "push", a, "--yes")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("pushed 3 keys", p.stdout)
        # a change: shown by name, masked, with the old value masked
        self.assertEqual(self.redduck("env", "set", a, "API_TOKEN", "-", input=SECRET_B).returncode, 0)
        p = self.redduck("env", "push", a, "--yes")
        self.assertIn("  ~ API_TOKEN=s3… (was s3…)", p.stdout)
        self.assertIn("0 added, 1 changed, 2 unchanged, 1 only in the cloud (kept)", p.stdout)
        status, body = self.server.api("GET", "/v1/projects/envdemo/variables/dev")
        self.assertEqual(body["variables"], {"CLOUD_ONLY": "c1", "API_TOKEN": SECRET_B, "REGION": "eu-west-1",
                                             "connector.warehouse.aws_secret_access_key": AWS_SECRET})
        p = self.redduck("env", "push", a)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("nothing to push", p.stdout)

        # a second checkout, without a .env: pull gives the same keys (and the cloud-only one)
        b = self.checkout("b", "envdemo")
        p = self.redduck("env", "pull", b)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.read_env(b), dict(self.read_env(a), CLOUD_ONLY="c1"))
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(b, ".env")).st_mode), 0o600)
        with open(os.path.join(b, ".gitignore")) as f:
            self.assertIn(".env", f.read().splitlines())

        # pull over local changes: the cloud wins for its keys (listed), local-only keys stay
        self.assertEqual(self.redduck("env", "set", b, "REGION", "us-west-2").returncode, 0)
        with open(os.path.join(b, ".env"), "a") as f:
            f.write("LOCAL_ONLY=mine\n")
        os.chmod(os.path.join(b, ".env"), 0o644)
        p = self.redduck("env", "pull", b)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("  overrode: REGION\n", p.stdout)
        self.assertIn("  kept (only local): LOCAL_ONLY\n", p.stdout)
        got = self.read_env(b)
        self.assertEqual(got["REGION"], "eu-west-1")
        self.assertEqual(got["LOCAL_ONLY"], "mine")
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(b, ".env")).st_mode), 0o600)
        with open(os.path.join(b, ".gitignore")) as f:
            self.assertEqual(f.read().splitlines().count(".env"), 1)

    def test_env_cloud_show_set_rm(self):
        self.login()
        d = self.checkout("a", "showdemo")
        self.assertEqual(self.redduck("deploy", d, "--no-prompt").returncode, 0)
        p = self.redduck("env", "set", "--cloud", d, "DB_PASSWORD", "-", input=SECRET_A + "\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        status, body = self.server.api("GET", "/v1/projects/showdemo/variables/dev")
        self.assertEqual(body["variables"], {"DB_PASSWORD": SECRET_A})
        # without '-' either: stdin is not a terminal
        p = self.redduck("env", "set", "--cloud", d, "SCHEMA", input="public")
        self.assertEqual(p.returncode, 0, p.stderr)
        # a value on the command line is refused with --cloud, and not repeated
        p = self.redduck("env", "set", "--cloud", d, "SCHEMA", SECRET_B)
        self.assertEqual(p.returncode, 2)

        p = self.redduck("env", "show", "--cloud", d)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "DB_PASSWORD=s3…\nSCHEMA=public\n")
        p = self.redduck("env", "show", "--cloud", d, "--json")
        self.assertEqual(json.loads(p.stdout), {"DB_PASSWORD": "s3…", "SCHEMA": "public"})
        p = subprocess.run([REDDUCK, "env", "show", "--cloud", d, "--reveal"], capture_output=True, text=True,
                           timeout=60, env=self.env())
        self.assertEqual(p.stdout, "DB_PASSWORD=%s\nSCHEMA=public\n" % SECRET_A)
        # other environments are separate; the local .env is untouched by all this
        self.assertEqual(self.redduck("env", "show", "--cloud", d, "--environment", "shared").stdout, "")
        self.assertFalse(os.path.exists(os.path.join(d, ".env")))

        # configure --cloud: one answer per key from stdin, an empty one skips; all written at once
        p = self.redduck("env", "configure", "--cloud", d, "--keys", "A_KEY,B_SECRET,C_NAME", input="a1\n\nc1\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("wrote 2 keys to the dev variables of showdemo", p.stderr)
        status, body = self.server.api("GET", "/v1/projects/showdemo/variables/dev")
        self.assertEqual(body["variables"], {"DB_PASSWORD": SECRET_A, "SCHEMA": "public", "A_KEY": "a1",
                                             "C_NAME": "c1"})
        p = self.redduck("env", "rm", "--cloud", d, "DB_PASSWORD")
        self.assertEqual(p.returncode, 0, p.stderr)
        status, body = self.server.api("GET", "/v1/projects/showdemo/variables/dev")
        self.assertEqual(body["variables"], {"SCHEMA": "public", "A_KEY": "a1", "C_NAME": "c1"})
        p = self.redduck("env", "rm", "--cloud", d, "DB_PASSWORD")
        self.assertOneLine(p, 1, "no variable DB_PASSWORD")
        p = self.redduck("env", "show", "--cloud", "--project", "nosuch", d)
        self.assertOneLine(p, 1, "no project nosuch")
        # without --cloud, the server options are a usage error, and rm has no local form
        self.assertEqual(self.redduck("env", "show", d, "--environment", "dev").returncode, 2)
        self.assertEqual(self.redduck("env", "rm", d, "K").returncode, 2)

    def test_roles_refused(self):
        self.login()
        d = self.checkout("a", "roledemo")
        self.assertEqual(self.redduck("deploy", d, "--no-prompt").returncode, 0)
        viewer = self.server.new_token("vera", "roledemo", "viewer")
        editor = self.server.new_token("eddie", "roledemo", "editor")
        self.tokens += [viewer, editor]
        # a viewer lists deployments, but reads no variables and deploys nothing
        p = self.redduck("deployments", d, REDDUCK_TOKEN=viewer)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.redduck("env", "show", "--cloud", d, REDDUCK_TOKEN=viewer)
        self.assertOneLine(p, 4, "the editor or admin role")
        p = self.redduck("env", "pull", d, REDDUCK_TOKEN=viewer)
        self.assertOneLine(p, 4, "the editor or admin role")
        p = self.redduck("deploy", d, "--no-prompt", REDDUCK_TOKEN=viewer)
        self.assertOneLine(p, 4, "your user may not deploy")
        # an editor without prod access: dev yes, prod no
        self.assertEqual(self.redduck("env", "show", "--cloud", d, REDDUCK_TOKEN=editor).returncode, 0)
        p = self.redduck("env", "show", "--cloud", d, "--environment", "prod", REDDUCK_TOKEN=editor)
        self.assertOneLine(p, 4, "prod access")

    # ---- a terminal: hidden input and confirmations --------------------------------------------------------

    def test_on_a_terminal(self):
        # login's prompt: the token typed is not echoed
        rc, out = self.on_terminal(["login", "--server", self.server.url],
                                   [("(hidden): ", self.server.token + "\n")])
        self.assertEqual(rc, 0, out)
        self.assertIn("logged in to %s as admin" % self.server.url, out)
        # deploy asks for the missing keys: the secret without echo, the key id with it
        d = self.checkout("a", "ttydemo")
        rc, out = self.on_terminal(["deploy", d], [
            ("connector.warehouse.aws_access_key_id (empty: unchanged): ", "AKIDTTY\n"),
            ("connector.warehouse.aws_secret_access_key (hidden) (empty: unchanged): ", AWS_SECRET + "\n")])
        self.assertEqual(rc, 0, out)
        self.assertIn("AKIDTTY", out)
        self.assertIn("nothing missing", out)
        status, body = self.server.api("GET", "/v1/projects/ttydemo/variables/prod")
        self.assertEqual(body["variables"]["connector.warehouse.aws_secret_access_key"], AWS_SECRET)
        # env push asks before writing: "n" writes nothing, "y" writes
        with open(os.path.join(d, ".env"), "w") as f:
            f.write("API_TOKEN=%s\n" % SECRET_A)
        rc, out = self.on_terminal(["env", "push", d], [("[y/N] ", "n\n")])
        self.assertEqual(rc, 1, out)
        self.assertIn("nothing written", out)
        self.assertEqual(self.server.api("GET", "/v1/projects/ttydemo/variables/dev")[1]["variables"], {})
        rc, out = self.on_terminal(["env", "push", d], [("[y/N] ", "y\n")])
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.server.api("GET", "/v1/projects/ttydemo/variables/dev")[1]["variables"],
                         {"API_TOKEN": SECRET_A})
        # env set --cloud without '-' on a terminal: asked without echo
        rc, out = self.on_terminal(["env", "set", "--cloud", d, "OTHER_SECRET"], [("(hidden): ", SECRET_B + "\n")])
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.server.api("GET", "/v1/projects/ttydemo/variables/dev")[1]["variables"]["OTHER_SECRET"],
                         SECRET_B)

    def test_deploy_push_env(self):
        self.login()
        d = self.checkout("a", "pushdemo")
        with open(os.path.join(d, ".env"), "w") as f:
            f.write("connector.warehouse.aws_access_key_id=AKIDPUSH\n"
                    "connector.warehouse.aws_secret_access_key=%s\nEXTRA=1\n" % AWS_SECRET)
        # no terminal, no --yes: deployed, the push refused, and the keys still listed as missing
        p = self.redduck("deploy", d, "--push-env", "--no-prompt")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("deployed pushdemo version 1", p.stdout)
        self.assertIn("pass --yes", p.stderr)
        p = self.redduck("deploy", d, "--push-env", "--environment", "dev", "--yes")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("deployed pushdemo version 2", p.stdout)
        self.assertIn("  + connector.warehouse.aws_secret_access_key=aw…", p.stdout)
        self.assertIn("nothing missing", p.stdout)
        status, body = self.server.api("GET", "/v1/projects/pushdemo/variables/dev")
        self.assertEqual(body["variables"], {"connector.warehouse.aws_access_key_id": "AKIDPUSH",
                                             "connector.warehouse.aws_secret_access_key": AWS_SECRET, "EXTRA": "1"})
        status, body = self.server.api("GET", "/v1/projects/pushdemo/deployments")
        self.assertEqual([(x["version"], x["environment"]) for x in body["deployments"]], [(2, "dev"), (1, "prod")])
        self.assertEqual(self.redduck("deploy", d, "--environment", "shared").returncode, 2)

    def test_tls_with_a_private_ca(self):
        key, cert = os.path.join(self.dir, "key.pem"), os.path.join(self.dir, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key,
                        "-out", cert], check=True, capture_output=True, timeout=60)
        srv = team_server(os.path.join(self.dir, "tls-data"), "--tls-cert", cert, "--tls-key", key)
        self.tokens.append(srv.token)
        try:
            self.assertTrue(srv.url.startswith("https://127.0.0.1:"), srv.url)
            # the system's CAs do not know it: one line saying how to trust it, nothing stored
            p = self.redduck("login", "--server", srv.url, "--token-stdin", input=srv.token)
            self.assertOneLine(p, 1, "--ca-cert")
            self.assertFalse(os.path.exists(self.creds))
            p = self.redduck("login", "--server", srv.url, "--token-stdin", "--ca-cert", cert, input=srv.token)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(self.creds) as f:
                self.assertEqual(json.load(f)["ca_bundle"], os.path.realpath(cert))
            # the stored CA is used by the other commands
            p = self.redduck("deployments", "--project", "nosuch")
            self.assertOneLine(p, 1, "no project nosuch on %s" % srv.url)
            # REDDUCK_CA_BUNDLE, without the file
            self.assertEqual(self.redduck("logout").returncode, 0)
            p = self.redduck("deployments", "--project", "nosuch", REDDUCK_SERVER=srv.url, REDDUCK_TOKEN=srv.token)
            self.assertOneLine(p, 1, "--ca-cert")
            p = self.redduck("deployments", "--project", "nosuch", REDDUCK_SERVER=srv.url, REDDUCK_TOKEN=srv.token,
                             REDDUCK_CA_BUNDLE=cert)
            self.assertOneLine(p, 1, "no project nosuch")
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_too_many_failed_logins(self):
        # a server of its own: the slow-down counts failures per address
        srv = team_server(os.path.join(self.dir, "slow-data"))
        self.tokens.append(srv.token)
        try:
            for _ in range(10):
                p = self.redduck("login", "--server", srv.url, "--token-stdin", input="rdk_" + "2" * 64)
                self.assertOneLine(p, 3, "refused the token")
            # now even the good token waits: one line with the wait, exit 1, nothing stored
            p = self.redduck("login", "--server", srv.url, "--token-stdin", input=srv.token)
            self.assertOneLine(p, 1, "too many failed authentications")
            self.assertRegex(p.stderr, r"for \d+ s")
            self.assertFalse(os.path.exists(self.creds))
        finally:
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
