"""`redduck server` as a real process on loopback port 0, driven over HTTP: every call of docs/SERVER_API.md
for every kind of identity (the expected status computed from the contract's rules written as data, never from
the server's answers), hostile archives refused with nothing new under the data dir nor beside it, a tampered
ciphertext refused by name while the other values still read, another server's keyring refused at start, and
a planted secret set, updated and deleted in every environment found in no byte under the data dir, in the
server's output or its command line. test_server.py covers the lifecycle, TLS and concurrency."""
import base64
import http.client
import io
import itertools
import json
import os
import re
import secrets
import shutil
import sqlite3
import tarfile
import tempfile
import unittest
import zlib

import emulator_fixture
import test_server as ts

DEMO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "demo")
PROJECT, OTHER = "demo", "other"
ENVS = ("dev", "shared", "prod")
UNAUTHORIZED = {"error": {"code": "Unauthorized", "message": "authentication required"}}

# docs/SERVER_API.md as data: the expected answers are computed from this, never from the server.
CONTRACT = {
    # "Roles": each row's least role, and whether its `prod` case also needs prod access
    "rows": {"status": ("viewer", False), "deploy": ("editor", True), "variables": ("editor", True),
             "audit": ("admin", False)},
    "rank": ("viewer", "editor", "admin"),
    "admin_has_prod": True,  # "an admin always has it"
    "server_admin_role": "admin",  # "is admin of every project"
    # "Calls": who may make each one: anyone, any token, a server admin, or a row of the roles table
    "who": {"health": "anyone", "whoami": "token", "project.create": "server admin", "project.get": "status",
            "deploy": "deploy", "deployments.list": "status", "activate": "deploy", "variables.get": "variables",
            "variables.names": "variables", "variables.patch": "variables", "variables.put": "variables",
            "variables.delete": "variables", "audit": "audit"},
    "ok": {"project.create": 201, "deploy": 201, "variables.delete": 204},  # any other call: 200
    "unauthenticated": 401,  # no token, or an unknown or revoked one
    "forbidden": 403,  # a good token, a role not enough
    "not_member": 404,  # a project the caller has no role in, "so names do not leak"
}

# Who is tested: how each is made (offline), and what it is. token: "none", "unknown", "revoked" or a live one.
IDENTITIES = {
    "viewer": {PROJECT: ("viewer", False)},
    "editor": {PROJECT: ("editor", False)},
    "prod_editor": {PROJECT: ("editor", True)},
    "project_admin": {PROJECT: ("admin", False)},
    "server_admin": {"server_admin": True},
    "outsider": {OTHER: ("admin", True)},  # a member of another project only
    "revoked": {"server_admin": True, "token": "revoked"},
    "unknown": {"token": "unknown"},
    "anonymous": {"token": "none"},
}


def expected(identity, call, env=None):
    """The status docs/SERVER_API.md gives identity for call (env: the call's environment, if any)."""
    who = IDENTITIES[identity]
    rule = CONTRACT["who"][call]
    ok = CONTRACT["ok"].get(call, 200)
    if rule == "anyone":
        return ok
    if who.get("token") in ("none", "unknown", "revoked"):
        return CONTRACT["unauthenticated"]
    if rule == "token":
        return ok
    if rule == "server admin":
        return ok if who.get("server_admin") else CONTRACT["forbidden"]
    if who.get("server_admin"):
        role, prod = CONTRACT["server_admin_role"], True
    elif PROJECT in who:
        role, prod = who[PROJECT]
    else:
        return CONTRACT["not_member"]
    prod = prod or (role == "admin" and CONTRACT["admin_has_prod"])
    least, prod_needs_access = CONTRACT["rows"][rule]
    rank = CONTRACT["rank"]
    if rank.index(role) < rank.index(least):
        return CONTRACT["forbidden"]
    if prod_needs_access and env == "prod" and not prod:
        return CONTRACT["forbidden"]
    return ok


def demo_files():
    """(relative path, bytes) of examples/demo, as `redduck deploy` would pack it (no .env, data/, *.duckdb)."""
    out = []
    for root, dirs, files in os.walk(DEMO):
        dirs[:] = sorted(d for d in dirs if d not in ("data", ".git"))
        for f in sorted(files):
            if f == ".env" or f.startswith(".env.") or f.endswith((".duckdb", ".duckdb.wal")):
                continue
            path = os.path.join(root, f)
            with open(path, "rb") as fh:
                out.append((os.path.relpath(path, DEMO), fh.read()))
    return out


def member(name, data=b"", kind=tarfile.REGTYPE, **attrs):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, 0o644, 0
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for k, v in attrs.items():
        setattr(info, k, v)
    return info, data


def archive(extra=(), base=True):
    """A gzip tar of the demo's files (when base) followed by extra [(TarInfo, bytes)]."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in ([member(n, d) for n, d in demo_files()] if base else []) + list(extra):
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def pax_bomb(entries=240, record=512 << 10):
    """A gzip tar of folders behind 512 KiB pax records (libarchive's most is 1 MiB): 120 MiB of tar, past the
    server's 64 MiB + 4 KiB for each of 10000 entries, in ~120 KiB of gzip, without a byte of file data."""
    z = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip framing
    out = []
    padding = "p" * record
    for i in range(entries):
        info = tarfile.TarInfo("bomb%03d" % i)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
        info.pax_headers = {"comment": padding}
        out.append(z.compress(info.tobuf(tarfile.PAX_FORMAT)))
    out.append(z.compress(b"\0" * 1024))
    out.append(z.flush())
    return b"".join(out)


def listing(folder):
    """Every path under folder with its type (f, d, l or ?), sorted."""
    out = []
    for root, dirs, files in os.walk(folder):
        for n in dirs + files:
            p = os.path.join(root, n)
            kind = "l" if os.path.islink(p) else "d" if os.path.isdir(p) else "f" if os.path.isfile(p) else "?"
            out.append((os.path.relpath(p, folder), kind))
    return sorted(out)


class Client:
    """HTTP calls to one server; each unauthenticated call from an address of its own (127.0.x.y), so the
    10-failures-a-minute rule never answers 429 for the cells that follow."""
    _addresses = ("127.0.%d.%d" % (a, b) for a, b in itertools.product(range(1, 255), range(1, 255)))

    def __init__(self, url):
        m = re.match(r"http://([0-9.]+):(\d+)$", url)
        self.host, self.port = m.group(1), int(m.group(2))

    def call(self, method, path, token=None, body=None, raw=None, ctype=None, fresh=False):
        """(status, parsed JSON or None, raw text); fresh: from an address of its own (a 401 is expected)."""
        source = next(self._addresses) if fresh or not token else "127.0.0.1"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60, source_address=(source, 0))
        headers = {}
        if token:
            headers["Authorization"] = "Bearer " + token
        data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
        if data is not None:
            headers["Content-Type"] = ctype or "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            text = r.read().decode("utf-8", "replace")
        finally:
            conn.close()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return r.status, parsed, text


class ServerMatrixTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        emulator_fixture.SERVER_LIFETIME = 240  # one server for the class: it still stops by itself if the run dies
        cls.tmp = tempfile.mkdtemp(prefix="rd-matrix-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        home = os.path.join(cls.tmp, "home")
        os.mkdir(home)
        old_home = os.environ.get("HOME")
        os.environ["HOME"] = home
        cls.addClassCleanup(lambda: os.environ.update(HOME=old_home) if old_home else os.environ.pop("HOME", None))
        cls.data = os.path.join(cls.tmp, "data")
        cls.server = cls.start_server(cls.data)
        cls.client = Client(cls.server.url)
        root = cls.server.token
        for p in (PROJECT, OTHER):
            st, _, text = cls.client.call("POST", "/v1/projects", root, {"name": p})
            assert st == 201, text
        cls.tokens = {"anonymous": None, "unknown": "rdk_" + secrets.token_hex(32)}
        for name, who in IDENTITIES.items():
            if who.get("token") in ("none", "unknown"):
                continue
            args = ["user", "add", name, "--data-dir", cls.data]
            if who.get("server_admin"):
                args.append("--server-admin")
            for proj in (PROJECT, OTHER):
                if proj in who:
                    role, prod = who[proj]
                    args += ["--project", proj, "--role", role] + (["--prod"] if prod else [])
            cls.offline(args)
            out = cls.offline(["token", "create", name, "--name", "t1", "--data-dir", cls.data])
            cls.tokens[name] = re.search(r"rdk_[0-9a-f]{64}", out).group(0)
            if who.get("token") == "revoked":
                cls.offline(["token", "revoke", name, "t1", "--data-dir", cls.data])
        # a version of each environment to activate
        cls.versions = {}
        for env in ("dev", "prod"):
            st, got, text = cls.deploy(root, env, archive())
            assert st == 201, text
            cls.versions[env] = got["version"]

    @classmethod
    def start_server(cls, data, *args, **kw):
        s = emulator_fixture.Server(data, "--listen", "127.0.0.1:0", *args, **kw)
        cls.addClassCleanup(lambda: s.proc.poll() is None and (s.proc.kill(), s.wait()))
        return s

    @classmethod
    def offline(cls, args):
        p = ts.run(*args)
        assert p.returncode == 0, "redduck server %s: %s" % (args[:2], p.stderr)
        return p.stdout

    @classmethod
    def deploy(cls, token, env, data, fresh=False):
        return cls.client.call("POST", "/v1/projects/%s/deployments?environment=%s" % (PROJECT, env), token, raw=data,
                               ctype="application/gzip", fresh=fresh)

    def check_answer(self, what, want, st, got, text, wrong):
        if st != want:
            wrong.append("%s: expected %d, got %d (%s)" % (what, want, st, text.strip()[:160]))
        elif st == 401 and got != UNAUTHORIZED:
            wrong.append("%s: a 401 with more than the plain answer: %s" % (what, text.strip()[:160]))
        elif st in (403, 404) and (got or {}).get("error", {}).get("code") != {403: "Forbidden", 404: "NotFound"}[st]:
            wrong.append("%s: %d with the wrong code: %s" % (what, st, text.strip()[:160]))

    def test_role_matrix(self):
        c, root, wrong = self.client, self.server.token, []
        gz = archive()
        base = "/v1/projects/" + PROJECT
        for ident in IDENTITIES:
            tok = self.tokens[ident]
            fresh = expected(ident, "whoami") == CONTRACT["unauthenticated"]
            cells = [("health", None, "GET", "/v1/health", None), ("whoami", None, "GET", "/v1/whoami", None),
                     ("project.create", None, "POST", "/v1/projects", {"name": "made-" + ident.replace("_", "-")}),
                     ("project.get", None, "GET", base, None),
                     ("deployments.list", None, "GET", base + "/deployments", None),
                     ("audit", None, "GET", base + "/audit?limit=5", None)]
            for env in ("dev", "prod"):
                cells.append(("activate", env, "POST", "%s/deployments/%d/activate" % (base, self.versions[env]), None))
            for env in ENVS:
                v = "%s/variables/%s" % (base, env)
                cells += [("variables.get", env, "GET", v, None), ("variables.names", env, "GET", v + "?names=1", None),
                          ("variables.patch", env, "PATCH", v, {"set": {"M_" + ident: "m"}, "unset": ["NOPE"]}),
                          ("variables.put", env, "PUT", "%s/P_%s" % (v, ident), {"value": "p"}),
                          ("variables.delete", env, "DELETE", "%s/D_%s" % (v, ident), None)]
            for call, env, method, path, body in cells:
                if call == "variables.delete":  # present, so an allowed delete is a 204, not a 404
                    st, _, text = c.call("PUT", path, root, {"value": "d"})
                    self.assertEqual(st, 200, text)
                st, got, text = c.call(method, path, tok, body, fresh=fresh)
                self.check_answer("%s %s as %s" % (method, path, ident), expected(ident, call, env), st, got, text,
                                  wrong)
            for env in ("dev", "prod"):
                st, got, text = self.deploy(tok, env, gz, fresh)
                self.check_answer("POST %s/deployments?environment=%s as %s" % (base, env, ident),
                                  expected(ident, "deploy", env), st, got, text, wrong)
        self.assertEqual(wrong, [], "the server disagrees with docs/SERVER_API.md:\n" + "\n".join(wrong))

    def test_expectations_follow_the_contract(self):
        # a few cells spelled out, so a wrong rule in expected() shows here too
        self.assertEqual(expected("editor", "variables.get", "prod"), 403)
        self.assertEqual(expected("editor", "variables.get", "shared"), 200)
        self.assertEqual(expected("prod_editor", "variables.put", "prod"), 200)
        self.assertEqual(expected("project_admin", "variables.delete", "prod"), 204)
        self.assertEqual(expected("viewer", "deployments.list"), 200)
        self.assertEqual(expected("viewer", "deploy", "dev"), 403)
        self.assertEqual(expected("prod_editor", "audit"), 403)
        self.assertEqual(expected("outsider", "project.get"), 404)
        self.assertEqual(expected("outsider", "project.create"), 403)
        self.assertEqual(expected("revoked", "whoami"), 401)
        self.assertEqual(expected("anonymous", "health"), 200)
        self.assertEqual(expected("server_admin", "project.create"), 201)

    def test_hostile_archives(self):
        c, root = self.client, self.server.token
        mark = "rdm-" + secrets.token_hex(4)
        parent = os.path.dirname(self.tmp)
        up = "../" * (len(os.path.relpath(self.data, parent).split(os.sep)) + 3)  # from projects/demo/vN to parent
        big = 16 << 20
        cases = [
            ("dotdot", [member("../%s-dotdot" % mark, b"x")], "a '..' component"),
            ("dotdot-deep", [member(up + mark + "-up", b"x")], "a '..' component"),
            ("inner-dotdot", [member("a/../../%s-inner" % mark, b"x")], "a '..' component"),
            ("absolute", [member(os.path.join(parent, mark + "-abs"), b"x")], "an absolute path"),
            ("symlink", [member(mark + "-link", kind=tarfile.SYMTYPE, linkname=parent)], "a symbolic link"),
            ("hardlink", [member(mark + "-hard", kind=tarfile.LNKTYPE, linkname="redduck.yaml")], "a hard link"),
            ("device", [member(mark + "-dev", kind=tarfile.CHRTYPE, devmajor=1, devminor=3)], "a character device"),
            ("fifo", [member(mark + "-fifo", kind=tarfile.FIFOTYPE)], "a fifo"),
            ("duplicate", [member(mark + "-dup", b"1"), member(mark + "-dup", b"2")], "a name that comes twice"),
            ("deep", [member("/".join(["d"] * 16) + "/" + mark + "-deep", b"x")], "a path deeper than 16 components"),
            ("too-big", [member(mark + "-big", bytes(big + 1))], "a file larger than %d bytes" % big),
            ("too-many", [member("%s-n/%05d" % (mark, i)) for i in range(10001)], "more than 10000 entries"),
        ]
        st, got, _ = c.call("GET", "/v1/projects/%s/deployments" % PROJECT, root)
        versions_before = [d["version"] for d in got["deployments"]]
        bodies = [(name, archive(extra), rule) for name, extra, rule in cases]
        bodies.append(("gzip-bomb", pax_bomb(), "a decompression bomb"))
        for name, body, rule in bodies:
            with self.subTest(archive=name):
                before = listing(self.data)
                st, got, text = self.deploy(root, "dev", body)
                self.assertEqual(st, 400, text[:300])
                self.assertEqual(got["error"]["code"], "BadRequest")
                self.assertIn(rule, got["error"]["message"])
                self.assertIn("nothing was unpacked", got["error"]["message"])
                self.assertEqual(listing(self.data), before, "the refused archive left something under the data dir")
        leaked = [n for n in os.listdir(parent) if mark in n]
        leaked += [p for p, _ in listing(self.tmp) if mark in p]
        self.assertEqual(leaked, [], "a refused archive's member was written")
        st, got, _ = c.call("GET", "/v1/projects/%s/deployments" % PROJECT, root)
        self.assertEqual([d["version"] for d in got["deployments"]], versions_before,
                         "a refused archive made a version")
        self.assertEqual(sorted(os.listdir(os.path.join(self.data, "projects", PROJECT))),
                         sorted([".deploy.lock"] + ["v%d" % v for v in versions_before]))

    def test_tampered_ciphertext_and_another_keyring(self):
        data = os.path.join(self.tmp, "tamper")
        s = self.start_server(data)
        root, c = s.token, Client(s.url)
        self.assertEqual(c.call("POST", "/v1/projects", root, {"name": PROJECT})[0], 201)
        value = "tamper-" + secrets.token_hex(16)
        for env, name in (("dev", "GOOD"), ("dev", "BAD"), ("prod", "ELSEWHERE")):
            path = "/v1/projects/%s/variables/%s/%s" % (PROJECT, env, name)
            st, _, text = c.call("PUT", path, root, {"value": value})
            self.assertEqual(st, 200, text)
        self.assertEqual(s.stop(), 0)
        db = sqlite3.connect(os.path.join(data, "store.db"))
        try:
            (blob,) = db.execute("SELECT blob FROM variables WHERE name = 'BAD'").fetchone()
            flipped = bytearray(blob)
            flipped[20] ^= 0x01  # in the ciphertext (the header is 17 bytes)
            db.execute("UPDATE variables SET blob = ? WHERE name = 'BAD'", (bytes(flipped),))
            db.commit()
        finally:
            db.close()
        s = self.start_server(data)
        c = Client(s.url)
        v = "/v1/projects/%s/variables/dev" % PROJECT
        st, got, text = c.call("GET", v, root)
        self.assertTrue(500 <= st < 600 or 400 <= st < 500, "reading a tampered value: %d" % st)
        self.assertNotIn(value, text, "the error answer holds the value")
        message = got["error"]["message"]
        self.assertIn("integrity", message)
        self.assertIn("BAD", message)
        self.assertEqual(got["error"]["code"], "Internal")
        st, got, _ = c.call("GET", v + "?names=1", root)
        self.assertEqual((st, sorted(got["names"])), (200, ["BAD", "GOOD"]))
        st, got, text = c.call("PUT", v + "/OTHER", root, {"value": "fine"})
        self.assertEqual(st, 200, text)
        st, got, text = c.call("GET", "/v1/projects/%s/variables/prod" % PROJECT, root)
        self.assertTrue(st == 200 and got["variables"] == {"ELSEWHERE": value}, "prod does not read: %d" % st)
        # the good value still reads once the tampered one is gone
        self.assertEqual(c.call("DELETE", v + "/BAD", root)[0], 204)
        st, got, _ = c.call("GET", v, root)
        self.assertEqual(st, 200)
        self.assertTrue(got["variables"].get("GOOD") == value, "the untouched value does not read back")
        self.assertEqual(s.stop(), 0)
        self.assertNotIn(value, s.stdout + s.stderr)

        # another server's keyring: refused at start, the message naming it
        other = os.path.join(self.tmp, "other-server")
        s2 = self.start_server(other)
        self.assertEqual(s2.stop(), 0)
        wrong_keyring = os.path.join(other, "keyring")
        s = self.start_server(data, "--keyring", wrong_keyring, expect_ready=False)
        rc = s.wait()
        self.assertNotEqual(rc, 0)
        self.assertIn(wrong_keyring, s.stderr)
        self.assertIn("does not open the values of this data dir", s.stderr)
        self.assertNotIn("listening", s.stdout)

    def test_planted_secret_nowhere(self):
        data = os.path.join(self.tmp, "planted")
        s = self.start_server(data)
        root, c = s.token, Client(s.url)
        self.assertEqual(c.call("POST", "/v1/projects", root, {"name": PROJECT})[0], 201)
        first, second = secrets.token_hex(24), secrets.token_hex(24)
        v = "/v1/projects/%s/variables/" % PROJECT
        for env in ENVS:
            key = "connector.rs.aws_secret_access_key"
            st, _, _ = c.call("PUT", v + env + "/" + key, root, {"value": first})  # set
            self.assertEqual(st, 200)
            st, _, _ = c.call("PATCH", v + env, root, {"set": {key: second, "KEPT": "plain"}})  # updated
            self.assertEqual(st, 200)
            st, got, _ = c.call("GET", v + env, root)
            self.assertTrue(st == 200 and got["variables"].get(key) == second, "the updated value does not read")
            if env == "shared":  # deleted: by a PATCH's unset here, by DELETE elsewhere
                st, got, _ = c.call("PATCH", v + env, root, {"unset": [key]})
                self.assertEqual((st, got["unset"]), (200, [key]))
            else:
                self.assertEqual(c.call("DELETE", v + env + "/" + key, root)[0], 204)
            st, got, _ = c.call("GET", v + env, root)
            self.assertEqual((st, sorted(got["variables"])), (200, ["KEPT"]))
        with open("/proc/%d/cmdline" % s.proc.pid, "rb") as f:
            cmdline = f.read()
        running = dict(ts.all_bytes_under(data))  # the WAL before any checkpoint
        self.assertEqual(s.stop(), 0)
        stopped = dict(ts.all_bytes_under(data))
        self.assertTrue(any(os.path.basename(p) == "store.db" for p in stopped))
        self.assertTrue(any(p.endswith("-wal") for p in running), "no WAL seen while the server ran")
        for secret in (first, second):
            needles = [secret[i:i + 12].encode() for i in range(0, len(secret) - 11)]
            needles += [bytes.fromhex(secret), base64.b64encode(secret.encode())[:32]]
            for where, blob in list(running.items()) + list(stopped.items()) + [
                    ("/proc/PID/cmdline", cmdline), ("stdout", s.stdout.encode()), ("stderr", s.stderr.encode())]:
                self.assertFalse(any(n in blob for n in needles), "part of the planted secret is in " + where)


if __name__ == "__main__":
    unittest.main()
