"""Starts `redduck emulator` for integration tests: loopback only, a temporary data dir, a bounded
lifetime (the emulator stops by itself even if a test dies), and a clean AWS environment pointed at it.
Also the helpers the test modules share: the clean environment, identities JSON, writing files under a
home, finishing a started process, running independent slow steps side by side, and a `redduck server`
process with its /v1 API."""
import concurrent.futures
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

REDDUCK = os.environ.get("REDDUCK_BIN", "redduck")
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def clean_env(home, **extra):
    """The process environment minus every AWS_* and proxy variable, with HOME isolated, the config and
    credentials files under it, IMDS disabled and loopback never proxied; then extra (None removes a name)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k.lower() not in PROXY_VARS}
    env["HOME"] = home
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["AWS_CONFIG_FILE"] = os.path.join(home, ".aws", "config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(home, ".aws", "credentials")
    env["NO_PROXY"] = "127.0.0.1,localhost,::1"
    env["no_proxy"] = env["NO_PROXY"]
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def make_home(prefix):
    """A fresh temporary directory holding home/.aws; returns (tmp, home)."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    home = os.path.join(tmp, "home")
    os.makedirs(os.path.join(home, ".aws"))
    return tmp, home


def write_file(path, data, mode=None):
    """Writes text or bytes to path, creating its directories; chmod to mode when given. Returns path."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        os.chmod(path, mode)
    return path


class HomeMixin:
    """For a test case with self.home: files written under it (mode write_mode unless given), and redduck
    run with none of the strings in secrets on its stdout or stderr."""
    secrets = ()
    write_mode = None

    def write(self, rel, text, mode=None):
        return write_file(os.path.join(self.home, rel), text, self.write_mode if mode is None else mode)

    def run_redduck(self, args, env):
        p = subprocess.run([REDDUCK] + list(args), env=env, capture_output=True, text=True, timeout=60)
        for secret in self.secrets:
            self.assertNotIn(secret, p.stdout, "a secret leaked on stdout")
            self.assertNotIn(secret, p.stderr, "a secret leaked on stderr")
        return p


def identities(users, roles=None, account="000000000000", denials=None, **resources):
    """The emulator's --config JSON: users given as (name, key, secret, allow) tuples or dicts, plus one
    user per entry of denials {name: action or [actions]} (key AKID<NAME>, secret <name>-secret, allowed
    everything but those), the roles and the resources (workgroups=, clusters=, buckets=, sso=)."""
    out = []
    for u in users:
        out.append(u if isinstance(u, dict) else
                   {"name": u[0], "access_key_id": u[1], "secret_access_key": u[2], "allow": u[3]})
    for name, deny in (denials or {}).items():
        out.append({"name": name, "access_key_id": "AKID" + name.upper(), "secret_access_key": name + "-secret",
                    "allow": ["*"], "deny": [deny] if isinstance(deny, str) else list(deny)})
    cfg = {"account": account, "region": "us-east-1", "users": out}
    if roles is not None:
        cfg["roles"] = roles
    cfg.update(resources)
    return json.dumps(cfg)


def finish(proc, timeout=120):
    """communicate() with a started process; it is killed if that times out or raises. Returns (out, err)."""
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def in_parallel(fn, items, workers=4):
    """fn(item) for each item, up to workers at a time (for independent subprocesses); the results in
    order. The first exception raised is raised here once every call has ended."""
    items = list(items)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        futures = [pool.submit(fn, item) for item in items]
        return [f.result() for f in futures]


class Emulator:
    def __init__(self, args=(), config=None, lifetime=600, data_dir=None):
        self.tmp, self.home = make_home("rd-emu-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "emulator.log")
        cmd = [REDDUCK, "emulator", "--port", "0", "--data-dir", self.data_dir, "--lifetime", str(lifetime)]
        if config is not None:
            cfg_path = os.path.join(self.tmp, "emulator.json")
            with open(cfg_path, "w") as f:
                f.write(config)
            cmd += ["--config", cfg_path]
        cmd += list(args)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env=clean_env(self.home))
        line = self.proc.stdout.readline()
        if "listening on http://127.0.0.1:" not in line:
            self.stop()
            raise RuntimeError("emulator did not start: %r; log: %s" % (line, self.read_log()))
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.endpoint = "http://127.0.0.1:%d" % self.port

    def read_log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def env(self, key="test", secret="test", region="us-east-1", **extra):
        env = clean_env(self.home)
        env.update({"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": region,
                    "AWS_DEFAULT_REGION": region, "AWS_ENDPOINT_URL": self.endpoint})
        env.update(extra)
        return env

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()
        if not self.log.closed:
            self.log.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_until(pred, timeout=30.0, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return None


def die_with_parent():
    """preexec_fn for a server a test starts: PR_SET_PDEATHSIG, so it goes when the test process does."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


SERVER_LIFETIME = 90  # seconds: a server a test forgot is killed by then


def api(url, method, path, token=None, body=None, context=None):
    """One /v1 call: (status, parsed JSON or None). body is sent as JSON; context: an ssl context for https."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(req, timeout=20) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


class Server:
    """One `redduck server --data-dir DATA ARGS...` process. Its output is collected by threads; once it says
    it is ready, url and token (the first start's admin token, else None) are read from it. env: the
    process environment (default: this one minus proxy variables, IMDS off)."""

    def __init__(self, data_dir, *args, expect_ready=True, env=None):
        self.data_dir = data_dir
        if env is None:
            env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}
            env["AWS_EC2_METADATA_DISABLED"] = "true"
        self.env = env
        self.proc = subprocess.Popen([REDDUCK, "server", "--data-dir", data_dir] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                     preexec_fn=die_with_parent)
        self.out, self.err = [], []
        self.ready = threading.Event()
        self.timer = threading.Timer(SERVER_LIFETIME, self.proc.kill)
        self.timer.daemon = True
        self.timer.start()
        self.threads = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
                        threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True)]
        for t in self.threads:
            t.start()
        self.url = None
        self.token = None
        if expect_ready:
            if not self.ready.wait(20):
                self.stop()
                raise AssertionError("the server did not get ready: %s" % self.stderr)
            for line in list(self.out):
                m = re.search(r"listening on (https?://\S+)", line)
                if m:
                    self.url = m.group(1)
                m = re.search(r"(rdk_[0-9A-Za-z_]+)", line)
                if m:
                    self.token = m.group(1)

    def _read(self, stream, sink):
        for raw in stream:
            line = raw.decode("utf-8", "replace")
            sink.append(line)
            if "redduck server: ready" in line:
                self.ready.set()

    @property
    def stdout(self):
        return "".join(self.out)

    @property
    def stderr(self):
        return "".join(self.err)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait()

    def wait(self, timeout=20):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        finally:
            self.timer.cancel()
        for t in self.threads:
            t.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc

    def set_lifetime(self, seconds):
        """Kill the server after seconds from now instead (a test class that keeps one server longer)."""
        self.timer.cancel()
        self.timer = threading.Timer(seconds, self.proc.kill)
        self.timer.daemon = True
        self.timer.start()

    def api(self, method, path, token=None, body=None, context=None):
        """(status, JSON or None), straight to this server (token: the admin's by default)."""
        return api(self.url, method, path, token or self.token, body, context)

    def offline(self, *args):
        """`redduck server ARGS... --data-dir DATA` (user and token commands); its stdout."""
        p = subprocess.run([REDDUCK, "server"] + list(args) + ["--data-dir", self.data_dir], capture_output=True,
                           text=True, timeout=30, env=self.env)
        if p.returncode != 0:
            raise AssertionError("redduck server %s: %s" % (" ".join(args), p.stderr))
        return p.stdout

    def new_token(self, user, project, role, prod=False):
        """A new user with role on project, and a token of theirs."""
        self.offline("user", "add", user, "--project", project, "--role", role, *(["--prod"] if prod else []))
        m = re.search(r"(rdk_[0-9A-Za-z_]+)", self.offline("token", "create", user))
        return m.group(1)


def team_server(data_dir, *args):
    """A server as a team runs one for the tests of the client side: on a free loopback port, in a clean
    environment whose HOME is the data dir's parent."""
    return Server(data_dir, "--listen", "127.0.0.1:0", *args, env=clean_env(os.path.dirname(data_dir)))


def team_deploy(server, project_dir, home, endpoint, key, secret, connector="warehouse", name="demo"):
    """As a team sets up a project: creates it on server, sets the prod keys and endpoint of its connector
    first (so the first load has them), then `redduck deploy --no-prompt --yes` of project_dir as the server's
    admin, from a clean environment under home."""
    status, body = server.api("POST", "/v1/projects", body={"name": name})
    assert status == 201, (status, body)
    prefix = "connector.%s." % connector
    status, body = server.api("PATCH", "/v1/projects/%s/variables/prod" % name, body={"set": {
        prefix + "aws_access_key_id": key, prefix + "aws_secret_access_key": secret, prefix + "endpoint_url": endpoint}})
    assert status == 200, (status, body)
    os.makedirs(home, exist_ok=True)
    env = clean_env(home, REDDUCK_SERVER=server.url, REDDUCK_TOKEN=server.token, REDDUCK_CA_BUNDLE=None)
    p = subprocess.run([REDDUCK, "deploy", project_dir, "--no-prompt", "--yes"], capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
