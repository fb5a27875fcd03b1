#!/usr/bin/env python3
"""fake_aws.py — one loopback fake of the credential services redduck talks to, for tests only.

Serves on 127.0.0.1 (port 0 → prints "PORT <n>" as its first stdout line), routed by path:
  POST /                      STS query API: GetCallerIdentity, AssumeRole (SigV4 verified with botocore
                              against the known secrets), AssumeRoleWithWebIdentity (unsigned, token checked)
  GET  /federation/...        SSO portal GetRoleCredentials (x-amz-sso_bearer_token checked)
  PUT/GET /latest/...         EC2 instance metadata, IMDSv2 tokens (v1 optional)
  GET  /container/...         ECS/EKS container credentials endpoint (optional Authorization check)

With --tls-cert/--tls-key it serves HTTPS instead, and logs every accepted TCP connection as
{"api": "tls:connection"} (a client that rejects the certificate never gets as far as a request).

Configured by a JSON file (see DEFAULTS below). Every request is appended to the --log file as one JSON
line {"method", "path", "api", "status", "auth", "headers"} with secret headers redacted. Exits by itself
after --lifetime seconds (default 120) or when its stdin (a pipe) closes.
"""
import argparse
import datetime
import hashlib
import json
import os
import secrets
import ssl
import stat
import string
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
SECRET_HEADERS = {
    "authorization",
    "x-amz-security-token",
    "x-amz-sso_bearer_token",
    "x-aws-ec2-metadata-token",
    "cookie",
}

DEFAULTS = {
    # access key id -> {"secret", "account", "arn", "user_id"}
    "users": {},
    # role ARN -> {} (any known caller may assume it)
    "roles": {},
    # web identity token -> {"subject": "...", "provider": "..."}
    "web_tokens": {},
    # SSO portal: bearer tokens accepted and which account/role pairs they may use
    "sso": {"tokens": [], "accounts": {}, "user": "sso-user"},
    # IMDS: role_name served, role_arn behind it, token_put_status (200 = IMDSv2), v1 (IMDSv1 allowed)
    "imds": None,
    # container endpoint: path (e.g. /container/creds), token (Authorization required when set), role_arn
    "container": None,
    "duration_seconds": 3600,
    # prefixed to every issued secret key and session token, so tests can grep output for leaks
    "secret_marker": "",
    # malformed replies: {"sts": "...", "container": "..."} answers that API with this body and HTTP 200
    "garbage": {},
}


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rand_id(prefix, n=16):
    return prefix + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(n))


def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


class State:
    def __init__(self, cfg, log_path):
        self.cfg = cfg
        self.lock = threading.Lock()
        self.issued = {}  # access key -> {"secret", "token", "arn", "account", "user_id", "expires"}
        self.imds_tokens = set()
        self.imds_creds = None
        self.log_path = log_path

    def issue(self, arn, account, user_id):
        now = time.time()
        marker = self.cfg.get("secret_marker", "")
        creds = {
            "access_key": rand_id("ASIA"),
            "secret": marker + secrets.token_urlsafe(30),
            "token": marker + secrets.token_urlsafe(60),
            "arn": arn,
            "account": account,
            "user_id": user_id,
            "expires": now + int(self.cfg.get("duration_seconds", 3600)),
        }
        with self.lock:
            self.issued[creds["access_key"]] = creds
        return creds

    def lookup_key(self, access_key):
        with self.lock:
            if access_key in self.issued:
                return dict(self.issued[access_key])
        user = self.cfg["users"].get(access_key)
        if user:
            return {
                "access_key": access_key,
                "secret": user["secret"],
                "token": None,
                "arn": user["arn"],
                "account": user["account"],
                "user_id": user.get("user_id", "AIDA" + hashlib.sha1(access_key.encode()).hexdigest()[:16].upper()),
            }
        return None

    def log(self, entry):
        if not self.log_path:
            return
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.lock:
            with open(self.log_path, "a") as f:
                f.write(line)


def role_session_arn(role_arn, session):
    # arn:aws:iam::123456789012:role/path/name -> arn:aws:sts::123456789012:assumed-role/name/session
    parts = role_arn.split(":", 5)
    account = parts[4] if len(parts) > 4 else "000000000000"
    name = parts[5].split("/")[-1] if len(parts) > 5 else "role"
    return f"arn:aws:sts::{account}:assumed-role/{name}/{session}", account, name


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-aws/1"

    def log_message(self, fmt, *args):  # quiet: the JSON log is the record
        pass

    # --- plumbing ---------------------------------------------------------------------------------------
    @property
    def state(self):
        return self.server.state

    def body_bytes(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body, ctype, api, auth="none", extra_headers=None):
        data = body.encode() if isinstance(body, str) else body
        # record first, so a client that has its answer always finds its request in the log
        headers = {k: ("<redacted>" if k.lower() in SECRET_HEADERS else v) for k, v in self.headers.items()}
        self.state.log({
            "method": self.command,
            "path": urllib.parse.urlsplit(self.path).path,
            "api": api,
            "status": status,
            "auth": auth,
            "headers": headers,
        })
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", secrets.token_hex(16))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def sts_error(self, status, code, message, api, auth="none"):
        kind = "Receiver" if status >= 500 else "Sender"
        body = (f'<ErrorResponse xmlns="{STS_NS}"><Error><Type>{kind}</Type><Code>{code}</Code>'
                f"<Message>{xml_escape(message)}</Message></Error>"
                f"<RequestId>{secrets.token_hex(16)}</RequestId></ErrorResponse>")
        self.reply(status, body, "text/xml", api, auth)

    # --- STS --------------------------------------------------------------------------------------------
    def verify_sigv4(self, body):
        """Returns (principal, None) or (None, (status, code, message))."""
        authz = self.headers.get("Authorization")
        if not authz or not authz.startswith("AWS4-HMAC-SHA256 "):
            return None, (403, "MissingAuthenticationToken", "Request is missing Authentication Token")
        fields = {}
        for part in authz[len("AWS4-HMAC-SHA256 "):].split(","):
            k, _, v = part.strip().partition("=")
            fields[k] = v
        try:
            access_key, date, region, service, term = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            signature = fields["Signature"]
        except (KeyError, ValueError):
            return None, (400, "IncompleteSignature", "The request signature is malformed")
        principal = self.state.lookup_key(access_key)
        if principal is None:
            return None, (403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        if principal["token"] is not None and self.headers.get("X-Amz-Security-Token") != principal["token"]:
            return None, (403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        amz_date = self.headers.get("X-Amz-Date", "")
        if not amz_date.startswith(date) or service != "sts" or term != "aws4_request":
            return None, (403, "SignatureDoesNotMatch", "Credential scope does not match the request date/service")
        headers = {}
        for name in signed:
            value = self.headers.get(name)
            if value is None:
                return None, (403, "SignatureDoesNotMatch", f"Signed header {name} is missing")
            headers[name] = value
        req = AWSRequest(method=self.command, url="http://" + self.headers.get("Host", "localhost") + self.path,
                         data=body, headers=headers)
        req.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(access_key, principal["secret"], principal["token"]), service, region)
        canonical = signer.canonical_request(req)
        expected = signer.signature(signer.string_to_sign(req, canonical), req)
        if not secrets.compare_digest(expected, signature):
            return None, (403, "SignatureDoesNotMatch",
                          "The request signature we calculated does not match the signature you provided. "
                          "Check your AWS Secret Access Key and signing method. Consult the service documentation "
                          "for details.")
        return principal, None

    def creds_xml(self, creds):
        return (f"<Credentials><AccessKeyId>{creds['access_key']}</AccessKeyId>"
                f"<SecretAccessKey>{creds['secret']}</SecretAccessKey>"
                f"<SessionToken>{creds['token']}</SessionToken>"
                f"<Expiration>{iso(creds['expires'])}</Expiration></Credentials>")

    def do_sts(self):
        body = self.body_bytes()
        params = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        action = params.get("Action", "")
        api = "sts:" + action
        if "sts" in self.state.cfg.get("garbage", {}):
            return self.reply(200, self.state.cfg["garbage"]["sts"], "text/xml", api, "garbage")
        req_id = secrets.token_hex(16)
        if action == "AssumeRoleWithWebIdentity":
            token = params.get("WebIdentityToken", "")
            role = params.get("RoleArn", "")
            session = params.get("RoleSessionName", "")
            info = self.state.cfg["web_tokens"].get(token)
            if info is None:
                return self.sts_error(400, "InvalidIdentityToken", "The web identity token is not valid", api)
            if role not in self.state.cfg["roles"] or not session:
                return self.sts_error(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity",
                                      api)
            arn, account, name = role_session_arn(role, session)
            role_id = "AROA" + hashlib.sha1(role.encode()).hexdigest()[:17].upper()
            creds = self.state.issue(arn, account, f"{role_id}:{session}")
            body = (f'<AssumeRoleWithWebIdentityResponse xmlns="{STS_NS}"><AssumeRoleWithWebIdentityResult>'
                    f"<Audience>{xml_escape(info.get('audience', 'sts.amazonaws.com'))}</Audience>"
                    f"<SubjectFromWebIdentityToken>{xml_escape(info.get('subject', 'subject'))}"
                    f"</SubjectFromWebIdentityToken>"
                    f"<AssumedRoleUser><AssumedRoleId>{role_id}:{xml_escape(session)}</AssumedRoleId>"
                    f"<Arn>{xml_escape(arn)}</Arn></AssumedRoleUser>"
                    f"{self.creds_xml(creds)}"
                    f"<Provider>{xml_escape(info.get('provider', 'oidc.example.com'))}</Provider>"
                    f"</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>{req_id}</RequestId>"
                    f"</ResponseMetadata></AssumeRoleWithWebIdentityResponse>")
            return self.reply(200, body, "text/xml", api, "none")
        principal, failure = self.verify_sigv4(body)
        if failure:
            return self.sts_error(failure[0], failure[1], failure[2], api, "bad")
        if action == "GetCallerIdentity":
            body = (f'<GetCallerIdentityResponse xmlns="{STS_NS}"><GetCallerIdentityResult>'
                    f"<Arn>{xml_escape(principal['arn'])}</Arn><UserId>{xml_escape(principal['user_id'])}</UserId>"
                    f"<Account>{principal['account']}</Account></GetCallerIdentityResult>"
                    f"<ResponseMetadata><RequestId>{req_id}</RequestId></ResponseMetadata>"
                    f"</GetCallerIdentityResponse>")
            return self.reply(200, body, "text/xml", api, "ok")
        if action == "AssumeRole":
            role = params.get("RoleArn", "")
            session = params.get("RoleSessionName", "")
            if role not in self.state.cfg["roles"] or not session:
                return self.sts_error(403, "AccessDenied",
                                      f"User: {principal['arn']} is not authorized to perform: sts:AssumeRole on "
                                      f"resource: {role}", api, "ok")
            expected_external = self.state.cfg["roles"][role].get("external_id")
            if expected_external is not None and params.get("ExternalId") != expected_external:
                return self.sts_error(403, "AccessDenied", "The external id does not match", api, "ok")
            arn, account, name = role_session_arn(role, session)
            role_id = "AROA" + hashlib.sha1(role.encode()).hexdigest()[:17].upper()
            creds = self.state.issue(arn, account, f"{role_id}:{session}")
            body = (f'<AssumeRoleResponse xmlns="{STS_NS}"><AssumeRoleResult>'
                    f"<AssumedRoleUser><AssumedRoleId>{role_id}:{xml_escape(session)}</AssumedRoleId>"
                    f"<Arn>{xml_escape(arn)}</Arn></AssumedRoleUser>{self.creds_xml(creds)}"
                    f"</AssumeRoleResult><ResponseMetadata><RequestId>{req_id}</RequestId></ResponseMetadata>"
                    f"</AssumeRoleResponse>")
            return self.reply(200, body, "text/xml", api, "ok")
        return self.sts_error(400, "InvalidAction", f"Could not find operation {action} for version 2011-06-15",
                              api, "ok")

    # --- SSO portal ---------------------------------------------------------------------------------------
    def do_sso(self):
        api = "sso:GetRoleCredentials"
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/federation/credentials":
            return self.reply(404, json.dumps({"message": "Not found"}), "application/json", "sso:unknown")
        q = dict(urllib.parse.parse_qsl(url.query))
        sso = self.state.cfg["sso"]
        token = self.headers.get("x-amz-sso_bearer_token")
        if token is None or token not in sso.get("tokens", []):
            return self.reply(401, json.dumps({"message": "Session token not found or invalid"}), "application/json",
                              api, "bad", {"x-amzn-ErrorType": "UnauthorizedException:"})
        account, role = q.get("account_id", ""), q.get("role_name", "")
        if role not in sso.get("accounts", {}).get(account, []):
            return self.reply(403, json.dumps({"message": "No access"}), "application/json", api, "ok",
                              {"x-amzn-ErrorType": "ForbiddenException:"})
        user = sso.get("user", "sso-user")
        arn = f"arn:aws:sts::{account}:assumed-role/AWSReservedSSO_{role}_0123456789abcdef/{user}"
        creds = self.state.issue(arn, account, f"AROASSO{account}:{user}")
        body = json.dumps({"roleCredentials": {
            "accessKeyId": creds["access_key"],
            "secretAccessKey": creds["secret"],
            "sessionToken": creds["token"],
            "expiration": int(creds["expires"] * 1000),
        }})
        return self.reply(200, body, "application/json", api, "ok")

    # --- IMDS -----------------------------------------------------------------------------------------------
    def imds_creds(self, imds):
        with self.state.lock:
            existing = self.state.imds_creds
        if existing is None:
            role_arn = imds.get("role_arn", "arn:aws:iam::123456789012:role/ec2-role")
            arn, account, name = role_session_arn(role_arn, "i-0123456789abcdef0")
            existing = self.state.issue(arn, account, "AROAEC2:i-0123456789abcdef0")
            with self.state.lock:
                self.state.imds_creds = existing
        return existing

    def do_imds(self):
        imds = self.state.cfg.get("imds")
        path = urllib.parse.urlsplit(self.path).path
        if imds is None:
            return self.reply(404, "", "text/plain", "imds:disabled")
        if self.command == "PUT" and path == "/latest/api/token":
            api = "imds:token"
            status = int(imds.get("token_put_status", 200))
            if status != 200:
                return self.reply(status, "", "text/plain", api)
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if self.headers.get("X-Forwarded-For") or not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.reply(400, "", "text/plain", api)
            token = secrets.token_urlsafe(40)
            with self.state.lock:
                self.state.imds_tokens.add(token)
            return self.reply(200, token, "text/plain", api, "none", {"X-aws-ec2-metadata-token-ttl-seconds": ttl})
        if self.command != "GET":
            return self.reply(405, "", "text/plain", "imds:unknown")
        prefix = "/latest/meta-data/iam/security-credentials/"
        api = "imds:role-list" if path == prefix else "imds:credentials"
        token = self.headers.get("X-aws-ec2-metadata-token")
        if token is not None:
            with self.state.lock:
                ok = token in self.state.imds_tokens
            if not ok:
                return self.reply(401, "", "text/plain", api, "bad")
            auth = "ok"
        elif imds.get("v1", False):
            auth = "v1"
        else:
            return self.reply(401, "", "text/plain", api, "bad")
        role_name = imds.get("role_name", "ec2-role")
        if path == prefix:
            return self.reply(200, role_name, "text/plain", api, auth)
        if path == prefix + role_name:
            creds = self.imds_creds(imds)
            body = json.dumps({
                "Code": "Success",
                "LastUpdated": iso(time.time()),
                "Type": "AWS-HMAC",
                "AccessKeyId": creds["access_key"],
                "SecretAccessKey": creds["secret"],
                "Token": creds["token"],
                "Expiration": iso(creds["expires"]),
            }, indent=2)
            return self.reply(200, body, "text/plain", api, auth)
        return self.reply(404, "", "text/plain", api, auth)

    # --- container endpoint -------------------------------------------------------------------------------
    def do_container(self):
        api = "container:credentials"
        c = self.state.cfg.get("container")
        path = urllib.parse.urlsplit(self.path).path
        if c is None or path != c.get("path", "/container/creds"):
            return self.reply(404, json.dumps({"message": "Not found"}), "application/json", api)
        if "container" in self.state.cfg.get("garbage", {}):
            return self.reply(200, self.state.cfg["garbage"]["container"], "application/json", api, "garbage")
        auth = "none"
        if c.get("token") is not None:
            if self.headers.get("Authorization") != c["token"]:
                return self.reply(401, json.dumps({"message": "Unauthorized"}), "application/json", api, "bad")
            auth = "ok"
        role_arn = c.get("role_arn", "arn:aws:iam::123456789012:role/task-role")
        arn, account, name = role_session_arn(role_arn, "task-0123")
        creds = self.state.issue(arn, account, "AROATASK:task-0123")
        body = json.dumps({
            "AccessKeyId": creds["access_key"],
            "SecretAccessKey": creds["secret"],
            "Token": creds["token"],
            "Expiration": iso(creds["expires"]),
            "RoleArn": role_arn,
            "AccountId": account,
        })
        return self.reply(200, body, "application/json", api, auth)

    # --- dispatch ------------------------------------------------------------------------------------------
    def route(self):
        path = urllib.parse.urlsplit(self.path).path
        try:
            if path.startswith("/latest/"):
                return self.do_imds()
            if path.startswith("/container/"):
                return self.do_container()
            if path.startswith("/federation/"):
                return self.do_sso()
            if self.command == "POST" and path == "/":
                return self.do_sts()
            self.body_bytes()
            return self.reply(404, "", "text/plain", "unknown")
        except Exception as e:  # a fake must answer, never hang the client
            return self.reply(500, f"fake_aws internal error: {type(e).__name__}", "text/plain", "error")

    do_GET = route
    do_PUT = route
    do_POST = route


class Server(ThreadingHTTPServer):
    daemon_threads = True
    tls = None  # an ssl.SSLContext when serving HTTPS

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.tls is None:
            return sock, addr
        self.state.log({"method": "", "path": "", "api": "tls:connection", "status": 0, "auth": "none",
                        "headers": {}})
        sock.settimeout(10)
        try:
            tls_sock = self.tls.wrap_socket(sock, server_side=True)  # the handshake; raises if refused
        except (OSError, ssl.SSLError):
            sock.close()
            raise
        tls_sock.settimeout(None)
        return tls_sock, addr


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", help="JSON configuration file")
    ap.add_argument("--log", help="append one JSON line per request here")
    ap.add_argument("--lifetime", type=float, default=120.0, help="exit after this many seconds")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate chain (PEM)")
    ap.add_argument("--tls-key", help="the certificate's private key (PEM)")
    args = ap.parse_args()
    with open(args.config) as f:
        cfg = dict(DEFAULTS)
        cfg.update(json.load(f))
    server = Server(("127.0.0.1", 0), Handler)
    server.state = State(cfg, args.log)
    if args.tls_cert:
        server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.tls.load_cert_chain(args.tls_cert, args.tls_key)
    print(f"PORT {server.server_address[1]}", flush=True)

    def stop_later():
        time.sleep(args.lifetime)
        os._exit(0)

    threading.Thread(target=stop_later, daemon=True).start()
    try:
        if stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):
            def stop_on_eof():
                sys.stdin.buffer.read()
                os._exit(0)
            threading.Thread(target=stop_on_eof, daemon=True).start()
    except (OSError, ValueError):
        pass
    server.serve_forever()


if __name__ == "__main__":
    main()
