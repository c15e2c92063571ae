#!/usr/bin/python3
"""A loopback fake of the HTTP endpoints that cloud credential providers
talk to, for tests.

One threaded HTTP/1.1 server on 127.0.0.1 speaks, on one port:

  AWS    EC2 instance metadata, IMDSv2 only     PUT /latest/api/token, GET /latest/meta-data/iam/...
         ECS/EKS container credentials          GET <aws.container_path>
         STS AssumeRoleWithWebIdentity          POST / (form) or GET /?Action=...
  Azure  managed identity through IMDS          GET /metadata/identity/oauth2/token
         managed identity, App Service kind     GET /msi/token (X-IDENTITY-HEADER)
         Entra token endpoint (workload id.,    POST /<tenant>/oauth2/v2.0/token
         client secret, client certificate)
  Google GCE metadata server                    GET /computeMetadata/v1/instance/service-accounts/...

and a control endpoint under /__fake/ (request log, run-time settings,
fault injection). README.md beside this file has the whole contract.

Run it as a process:
    /usr/bin/python3 credential_endpoints.py --port 0 --config FILE.json --port-file F
or in-process:
    with CredentialEndpoints({"lifetime_seconds": 5}) as fake:
        ... fake.url ...

Standard library only (Debian's /usr/bin/python3).
"""

import argparse
import base64
import binascii
import copy
import hashlib
import hmac
import http.server
import json
import math
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape

HOST = "127.0.0.1"  # loopback only, whatever the caller asks
CONTROL_PREFIX = "/__fake/"
MAX_BODY = 1024 * 1024  # credential requests are tiny; refuse anything big
MAX_LOG = 10000  # request log entries kept (oldest dropped first)

# Parameters whose values never reach the request log.
SECRET_PARAMS = {"WebIdentityToken", "client_assertion", "client_secret",
                 "assertion", "refresh_token"}

DEFAULT_CONFIG = {
    # Every credential or token handed out expires this many seconds after
    # it is issued (negative: already expired, to test refusal of those).
    "lifetime_seconds": 3600,
    # False: every successful credential request issues the next entry of
    # the rotation. True: the metadata services (EC2 IMDS, container, Azure
    # IMDS and App Service, GCE) hand out the same issue again until it
    # expires, as the real ones cache; STS and Entra always issue anew.
    "reuse_until_expiry": False,
    # AWS credentials, used in rotation by EC2 IMDS, container and STS.
    "credentials": [
        {"access_key_id": "ASIAFAKEEXAMPLE00001",
         "secret_access_key": "fake-secret-access-key-1",
         "session_token": "fake-session-token-1"},
    ],
    "aws": {
        "role_name": "fake-role",
        "role_arn": "arn:aws:iam::123456789012:role/fake-role",
        "web_identity_token": "fake-web-identity-token",
        "container_path": "/v2/credentials/fake-task",
        "container_authorization_token": None,  # None: no Authorization needed
    },
    "azure": {
        "tenant_id": "00000000-0000-0000-0000-00000000000a",
        "client_id": "00000000-0000-0000-0000-00000000000c",  # workload identity app
        "client_assertion": "fake-federated-assertion",
        # The app's client secret (service principal); None: it has none,
        # and a client_secret is refused.
        "client_secret": None,
        # The app's certificate (PEM), for client assertions that name it
        # by x5t and are signed with its key; None: it has none.
        "client_certificate": None,
        # A user-assigned managed identity, asked for with ?client_id=;
        # requests without client_id get the system-assigned identity.
        "managed_identity_client_id": None,
        # The secret App Service, Functions and Container Apps put in
        # IDENTITY_HEADER; their endpoint wants it as X-IDENTITY-HEADER.
        "identity_header": "fake-identity-header",
        "resources": ["https://storage.azure.com/"],
        "access_tokens": ["fake-azure-access-token-1"],
    },
    "gce": {
        "service_account_email": "fake-sa@fake-project.iam.gserviceaccount.com",
        "project_id": "fake-project",
        "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
        "access_tokens": ["fake-gce-access-token-1"],
        # Google's OAuth token endpoint (POST /token): the service account's
        # public key (PEM) checks the JWT's signature; None: not checked.
        "service_account_public_key": None,
    },
}

# Which services draw from which rotation (replacing a list restarts the
# rotations that draw from it).
POOLS = {
    "credentials": ("ec2_imds", "container", "sts"),
    "azure.access_tokens": ("azure_imds", "azure_app_service", "entra"),
    "gce.access_tokens": ("gce_metadata", "google_oauth"),
}

# Paths the container path may not shadow.
RESERVED_PREFIXES = ("/__fake", "/latest", "/computeMetadata", "/metadata/identity", "/msi")


def iso8601(t):
    """AWS's timestamp form: 2026-01-02T03:04:05Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def parse_params(text):
    """Query or form parameters; the first of repeated names wins."""
    params = {}
    for name, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        params.setdefault(name, value)
    return params


def redacted(params):
    return {k: ("<redacted>" if k in SECRET_PARAMS else v) for k, v in params.items()}


def secret_check(expected, given):
    """How a secret the client sent compares, for the request log."""
    if given is None:
        return "missing"
    return "match" if hmac.compare_digest(given.encode(), expected.encode()) else "mismatch"


def parse_jwt(text):
    """(header, claims, signed bytes, signature) of a JWT, or None."""
    parts = text.split(".")
    if len(parts) != 3:
        return None
    try:
        decoded = [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in parts]
        header, claims = json.loads(decoded[0]), json.loads(decoded[1])
    except (ValueError, binascii.Error):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims, (parts[0] + "." + parts[1]).encode(), decoded[2]


def rs256_signature_ok(signed, signature, public_key):
    """Whether signature is RSASSA-PKCS1-v1_5 SHA-256 of signed by the
    public key (PEM), checked by the openssl command."""
    with tempfile.TemporaryDirectory() as d:
        paths = {name: os.path.join(d, name) for name in ("key", "sig", "data")}
        for name, data in (("key", public_key.encode()), ("sig", signature), ("data", signed)):
            with open(paths[name], "wb") as f:
                f.write(data)
        out = subprocess.run(["openssl", "dgst", "-sha256", "-verify", paths["key"], "-signature",
                              paths["sig"], paths["data"]], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        return out.returncode == 0


def certificate_public_key(certificate):
    """The public key (PEM) of a certificate (PEM)."""
    out = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=certificate.encode(),
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    return out.stdout.decode()


def certificate_x5t(certificate):
    """A JWT's "x5t" for a certificate (PEM): base64url of its DER's SHA-1."""
    der = ssl.PEM_cert_to_DER_cert(certificate)
    return base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()


# ---- configuration ------------------------------------------------------------

class ConfigError(ValueError):
    """A configuration the fake cannot accept."""


def _merge(base, change, template, where=""):
    """base updated by change: sections merge key by key, values replace."""
    if not isinstance(change, dict):
        raise ConfigError("%s must be a JSON object" % (where.rstrip(".") or "the configuration"))
    result = copy.deepcopy(base)
    for key, value in change.items():
        if key not in template:
            raise ConfigError("unknown setting %s%s" % (where, key))
        if isinstance(template[key], dict):
            result[key] = _merge(result[key], value, template[key], where + key + ".")
        elif key == "access_tokens" and isinstance(value, str):
            result[key] = [value]  # one token is a rotation of one
        else:
            result[key] = copy.deepcopy(value)
    return result


def _text(value, name, optional=False):
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise ConfigError("%s must be a non-empty string%s" % (name, " or null" if optional else ""))


def _texts(value, name):
    if not isinstance(value, list) or not value:
        raise ConfigError("%s must be a non-empty list of strings" % name)
    for i, item in enumerate(value):
        _text(item, "%s[%d]" % (name, i))


def check_config(config):
    lifetime = config["lifetime_seconds"]
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or abs(lifetime) > 10 ** 7:
        raise ConfigError("lifetime_seconds must be an integer (seconds)")
    if not isinstance(config["reuse_until_expiry"], bool):
        raise ConfigError("reuse_until_expiry must be true or false")
    creds = config["credentials"]
    if not isinstance(creds, list) or not creds:
        raise ConfigError("credentials must be a non-empty list")
    for i, cred in enumerate(creds):
        keys = {"access_key_id", "secret_access_key", "session_token"}
        if not isinstance(cred, dict) or set(cred) != keys:
            raise ConfigError("credentials[%d] must have exactly %s" % (i, ", ".join(sorted(keys))))
        for key in keys:
            _text(cred[key], "credentials[%d].%s" % (i, key))
    aws = config["aws"]
    for key in ("role_name", "role_arn", "web_identity_token", "container_path"):
        _text(aws[key], "aws." + key)
    _text(aws["container_authorization_token"], "aws.container_authorization_token", optional=True)
    if "/" in aws["role_name"]:
        raise ConfigError("aws.role_name may not contain '/'")
    if not re.fullmatch(r"arn:[^:]+:iam::\d{12}:role/(.+/)?[\w+=,.@-]+", aws["role_arn"]):
        raise ConfigError("aws.role_arn must look like arn:aws:iam::123456789012:role/NAME")
    path = aws["container_path"]
    if not path.startswith("/") or path == "/" or "?" in path or \
            any(path == p or path.startswith(p + "/") for p in RESERVED_PREFIXES):
        raise ConfigError("aws.container_path must be a path of its own, such as /v2/credentials/ID "
                          "(not /, no query, not under %s)" % ", ".join(RESERVED_PREFIXES))
    azure = config["azure"]
    for key in ("tenant_id", "client_id", "client_assertion"):
        _text(azure[key], "azure." + key)
    if "/" in azure["tenant_id"]:
        raise ConfigError("azure.tenant_id may not contain '/'")
    _text(azure["managed_identity_client_id"], "azure.managed_identity_client_id", optional=True)
    _text(azure["identity_header"], "azure.identity_header")
    _text(azure["client_secret"], "azure.client_secret", optional=True)
    _text(azure["client_certificate"], "azure.client_certificate", optional=True)
    _texts(azure["resources"], "azure.resources")
    _texts(azure["access_tokens"], "azure.access_tokens")
    gce = config["gce"]
    for key in ("service_account_email", "project_id"):
        _text(gce[key], "gce." + key)
    _texts(gce["scopes"], "gce.scopes")
    _texts(gce["access_tokens"], "gce.access_tokens")
    _text(gce["service_account_public_key"], "gce.service_account_public_key", optional=True)


def build_config(change=None, base=None):
    config = _merge(base if base is not None else DEFAULT_CONFIG, change or {}, DEFAULT_CONFIG)
    check_config(config)
    return config


def _pool(config, name):
    section, _, key = name.rpartition(".")
    return (config[section] if section else config)[key]


# ---- faults -------------------------------------------------------------------

class FaultError(ValueError):
    """A fault description the control endpoint cannot accept."""


FAULT_KEYS = {
    "error": {"status", "body", "content_type", "headers"},
    "delay": {"seconds"},
    "drop": set(),
}


def parse_fault(spec):
    """Validate one fault description and return it normalised."""
    if not isinstance(spec, dict):
        raise FaultError("a fault is a JSON object")
    mode = spec.get("mode", "error")
    if mode not in FAULT_KEYS:
        raise FaultError("mode must be one of " + ", ".join(FAULT_KEYS))
    unknown = set(spec) - {"mode", "path_prefix", "method", "count"} - FAULT_KEYS[mode]
    if unknown:
        raise FaultError("unknown for mode %s: %s" % (mode, ", ".join(sorted(unknown))))
    prefix = spec.get("path_prefix", "/")
    if not isinstance(prefix, str) or not prefix.startswith("/") or prefix.startswith("/__fake"):
        raise FaultError("path_prefix must be a path, not under /__fake (never faulted)")
    method = spec.get("method")
    if method is not None and (not isinstance(method, str) or not method.isalpha()):
        raise FaultError("method must be an HTTP method such as GET")
    count = spec.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count == 0 or count < -1:
        raise FaultError("count must be a positive integer, or -1 for until cleared")
    fault = {"mode": mode, "path_prefix": prefix, "method": method and method.upper(), "count": count}
    if mode == "error":
        status = spec.get("status", 500)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise FaultError("status must be an HTTP error status, 400 to 599")
        body = spec.get("body", "fake: injected fault, HTTP %d\n" % status)
        content_type = spec.get("content_type", "text/plain")
        headers = spec.get("headers", {})
        if not isinstance(body, str) or not isinstance(content_type, str) or \
                not isinstance(headers, dict) or \
                not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise FaultError("body and content_type are strings, headers an object of strings")
        fault.update(status=status, body=body, content_type=content_type, headers=headers)
    elif mode == "delay":
        seconds = spec.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 600:
            raise FaultError("seconds must be a number from 0 to 600")
        fault["seconds"] = float(seconds)
    return fault


class Faults:
    """Rules in the order added; a request takes the first that matches."""

    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []

    def add(self, fault):
        with self._lock:
            self._rules.append(dict(fault))

    def clear(self):
        with self._lock:
            self._rules.clear()

    def list(self):
        with self._lock:
            return [dict(rule) for rule in self._rules]

    def take(self, method, path):
        """The fault for this request, if any (uses up one count)."""
        with self._lock:
            for rule in self._rules:
                if rule["method"] and rule["method"] != method:
                    continue
                if not path.startswith(rule["path_prefix"]):
                    continue
                if rule["count"] > 0:
                    rule["count"] -= 1
                    if rule["count"] == 0:
                        self._rules.remove(rule)
                return dict(rule)
            return None


# ---- shared state -------------------------------------------------------------

class Issue:
    """One credential (or token) handed out: which entry of the rotation,
    when, until when."""

    def __init__(self, index, value, issued_at, expires_at):
        self.index = index
        self.value = value
        self.issued_at = issued_at
        self.expires_at = expires_at  # whole seconds: what clients see

    def expires_in(self, now=None):
        return max(0, int(self.expires_at - (now if now is not None else time.time())))


class State:
    def __init__(self, config=None):
        self.lock = threading.RLock()
        self.config = build_config(config)  # replaced whole, never changed in place
        self.rotation = {}  # service -> next index into its pool
        self.current = {}  # service -> Issue (for reuse_until_expiry)
        self.log = []
        self.seq = 0
        self.faults = Faults()
        self.stopping = threading.Event()

    def replace_config(self, change):
        config = build_config(change)
        with self.lock:
            self.config = config
            self.rotation.clear()
            self.current.clear()

    def update_config(self, change):
        with self.lock:
            old = self.config
            config = build_config(change, base=old)
            self.config = config
            for pool, services in POOLS.items():
                if _pool(config, pool) != _pool(old, pool):
                    for service in services:  # a new list starts from its first entry
                        self.rotation.pop(service, None)
            self.current.clear()  # new settings apply to the next request

    def issue(self, service, pool, reusable):
        with self.lock:
            config = self.config
            now = time.time()
            current = self.current.get(service)
            if reusable and config["reuse_until_expiry"] and current and current.expires_at > now:
                return current
            values = _pool(config, pool)
            index = self.rotation.get(service, 0) % len(values)
            self.rotation[service] = index + 1
            issue = Issue(index, values[index], now, math.ceil(now + config["lifetime_seconds"]))
            self.current[service] = issue
            return issue

    def record(self, entry):
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.log.append(entry)
            del self.log[:-MAX_LOG]

    def requests(self):
        with self.lock:
            return copy.deepcopy(self.log)

    def clear_requests(self):
        with self.lock:
            count = len(self.log)
            self.log.clear()
            return count


# ---- requests and responses ---------------------------------------------------

class Request:
    def __init__(self, method, target, headers, body):
        self.method = method
        split = urllib.parse.urlsplit(target)
        self.path = urllib.parse.unquote(split.path)
        self.query = parse_params(split.query)
        self.headers = headers  # email.message.Message: case-insensitive get()
        self.body = body
        self._form = None

    def form(self):
        """The form parameters of an application/x-www-form-urlencoded body."""
        if self._form is None:
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            self._form = parse_params(self.body.decode("utf-8", "replace")) \
                if ctype == "application/x-www-form-urlencoded" else {}
        return self._form


class Response:
    def __init__(self, status, body=b"", content_type="text/plain", headers=None):
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.content_type = content_type
        self.headers = dict(headers or {})


def json_response(status, document, content_type="application/json", headers=None):
    return Response(status, json.dumps(document), content_type, headers)


# ---- AWS ----------------------------------------------------------------------

class Ec2Metadata:
    """EC2 instance metadata, IMDSv2 only (HttpTokens=required): every GET
    needs a session token from PUT /latest/api/token."""

    name = "ec2_imds"
    TOKEN_PATH = "/latest/api/token"
    CREDENTIALS_PATH = "/latest/meta-data/iam/security-credentials"
    TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
    TOKEN_HEADER = "X-aws-ec2-metadata-token"
    MAX_TTL = 21600

    def __init__(self, state):
        self.state = state
        self.tokens = {}  # session token -> expiry (time.time())
        self.lock = threading.Lock()

    def matches(self, request):
        return request.path == "/latest" or request.path.startswith("/latest/")

    @staticmethod
    def error(status, headers=None):
        # IMDS answers errors with this little XHTML page.
        title = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
                 404: "Not Found", 405: "Method Not Allowed"}[status]
        page = ('<?xml version="1.0" encoding="iso-8859-1"?>\n'
                '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
                '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
                '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
                ' <head>\n  <title>%d - %s</title>\n </head>\n'
                ' <body>\n  <h1>%d - %s</h1>\n </body>\n</html>\n') % (status, title, status, title)
        return Response(status, page, "text/html", headers)

    def handle(self, request, entry):
        if request.path == self.TOKEN_PATH:
            if request.method != "PUT":
                return self.error(405, {"Allow": "PUT"})
            return self.new_token(request, entry)
        if request.method != "GET":
            return self.error(405, {"Allow": "GET"})
        # The token is checked before the path: without one, everything is 401.
        if not self.token_valid(request, entry):
            return self.error(401)
        config = self.state.config
        if request.path in (self.CREDENTIALS_PATH, self.CREDENTIALS_PATH + "/"):
            return Response(200, config["aws"]["role_name"])
        if request.path != self.CREDENTIALS_PATH + "/" + config["aws"]["role_name"]:
            return self.error(404)
        issue = self.state.issue(self.name, "credentials", reusable=True)
        entry["issued"] = issue.index
        cred = issue.value
        document = {
            "Code": "Success",
            "LastUpdated": iso8601(issue.issued_at),
            "Type": "AWS-HMAC",
            "AccessKeyId": cred["access_key_id"],
            "SecretAccessKey": cred["secret_access_key"],
            "Token": cred["session_token"],
            "Expiration": iso8601(issue.expires_at),
        }
        # IMDS serves the JSON document as text/plain, pretty-printed.
        return Response(200, json.dumps(document, indent=2), "text/plain")

    def new_token(self, request, entry):
        ttl = request.headers.get(self.TTL_HEADER)
        entry["expected_headers"] = {self.TTL_HEADER: ttl is not None}
        # IMDS refuses token requests that went through a proxy.
        if request.headers.get("X-Forwarded-For") is not None:
            return self.error(403)
        if ttl is None or not ttl.strip().isdigit() or not 1 <= int(ttl) <= self.MAX_TTL:
            return self.error(400)
        ttl = int(ttl)
        token = secrets.token_urlsafe(42)
        now = time.time()
        with self.lock:
            for old in [t for t, expiry in self.tokens.items() if expiry <= now - 60]:
                del self.tokens[old]
            self.tokens[token] = now + ttl
        return Response(200, token, "text/plain", {self.TTL_HEADER: str(ttl)})

    def token_valid(self, request, entry):
        token = request.headers.get(self.TOKEN_HEADER)
        entry["expected_headers"] = {self.TOKEN_HEADER: token is not None}
        if token is None:
            status = "missing"
        else:
            with self.lock:
                expiry = self.tokens.get(token)
            status = "mismatch" if expiry is None else "expired" if expiry <= time.time() else "match"
        entry["secrets"] = {self.TOKEN_HEADER: status}
        return status == "match"


class ContainerCredentials:
    """The ECS task role / EKS Pod Identity endpoint: a GET of one path,
    with the Authorization header given to the container when one is set."""

    name = "container"

    def __init__(self, state):
        self.state = state

    def matches(self, request):
        return request.path == self.state.config["aws"]["container_path"]

    @staticmethod
    def error(status, code, message):
        # The SDKs' documented error form for this endpoint: code and message.
        return json_response(status, {"code": code, "message": message})

    def handle(self, request, entry):
        if request.method != "GET":
            return self.error(405, "MethodNotAllowed", "Only GET is supported")
        config = self.state.config
        expected = config["aws"]["container_authorization_token"]
        given = request.headers.get("Authorization")
        entry["expected_headers"] = {"Authorization": given is not None}
        if expected is None:
            entry["secrets"] = {"Authorization": "not_required"}
        else:
            check = secret_check(expected, given)
            entry["secrets"] = {"Authorization": check}
            if check == "missing":
                return self.error(401, "Unauthorized", "The Authorization header is missing")
            if check == "mismatch":
                return self.error(403, "AccessDenied", "The Authorization token is not valid")
        issue = self.state.issue(self.name, "credentials", reusable=True)
        entry["issued"] = issue.index
        cred = issue.value
        return json_response(200, {
            "AccessKeyId": cred["access_key_id"],
            "SecretAccessKey": cred["secret_access_key"],
            "Token": cred["session_token"],
            "Expiration": iso8601(issue.expires_at),
            "RoleArn": config["aws"]["role_arn"],
        })


class Sts:
    """STS AssumeRoleWithWebIdentity: unsigned, query protocol (a form POST
    to /, or a GET with the same parameters)."""

    name = "sts"
    NS = "https://sts.amazonaws.com/doc/2011-06-15/"
    VERSION = "2011-06-15"
    SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")

    def __init__(self, state):
        self.state = state

    def matches(self, request):
        return request.path == "/" and (request.method == "POST" or "Action" in request.query)

    def error(self, status, code, message, request_id):
        body = ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>Sender</Type>\n'
                '    <Code>%s</Code>\n    <Message>%s</Message>\n  </Error>\n'
                '  <RequestId>%s</RequestId>\n</ErrorResponse>\n') % (
                    self.NS, escape(code), escape(message), request_id)
        return Response(status, body, "text/xml", {"x-amzn-RequestId": request_id})

    def handle(self, request, entry):
        request_id = str(uuid.uuid4())
        params = request.form() if request.method == "POST" else request.query
        action, version = params.get("Action"), params.get("Version")
        if action != "AssumeRoleWithWebIdentity" or version != self.VERSION:
            return self.error(400, "InvalidAction", "Could not find operation %s for version %s"
                              % (action, version), request_id)
        for name in ("RoleArn", "RoleSessionName", "WebIdentityToken"):
            if name not in params:
                return self.error(400, "ValidationError", "1 validation error detected: Value null at "
                                  "'%s' failed to satisfy constraint: Member must not be null"
                                  % (name[0].lower() + name[1:]), request_id)
        session = params["RoleSessionName"]
        if not self.SESSION_NAME.fullmatch(session):
            return self.error(400, "ValidationError", "1 validation error detected: Value '%s' at "
                              "'roleSessionName' failed to satisfy constraint: Member must satisfy "
                              "regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64"
                              % session, request_id)
        if not 4 <= len(params["WebIdentityToken"]) <= 20000:
            return self.error(400, "ValidationError", "1 validation error detected: Value at "
                              "'webIdentityToken' failed to satisfy constraint: Member must have "
                              "length between 4 and 20000", request_id)
        if "DurationSeconds" in params:
            duration = params["DurationSeconds"]
            if not duration.isdigit() or not 900 <= int(duration) <= 43200:
                return self.error(400, "ValidationError", "1 validation error detected: Value '%s' at "
                                  "'durationSeconds' failed to satisfy constraint: Member must have "
                                  "value between 900 and 43200" % duration, request_id)
        config = self.state.config
        # The token is validated first, then the role's trust policy.
        token_check = secret_check(config["aws"]["web_identity_token"], params["WebIdentityToken"])
        role_check = "match" if params["RoleArn"] == config["aws"]["role_arn"] else "mismatch"
        entry["secrets"] = {"WebIdentityToken": token_check}  # RoleArn is in the logged params
        if token_check != "match":
            return self.error(400, "InvalidIdentityToken", "The web identity token that was passed "
                              "could not be validated by Amazon Web Services. Get a new identity token "
                              "from the identity provider and then retry the request.", request_id)
        if role_check != "match":
            return self.error(403, "AccessDenied", "Not authorized to perform "
                              "sts:AssumeRoleWithWebIdentity", request_id)
        issue = self.state.issue(self.name, "credentials", reusable=False)
        entry["issued"] = issue.index
        cred = issue.value
        arn = config["aws"]["role_arn"]
        account = arn.split(":")[4]
        role_name = arn.rsplit("/", 1)[1]
        role_id = "AROA" + uuid.uuid5(uuid.NAMESPACE_URL, arn).hex[:17].upper()
        body = ('<AssumeRoleWithWebIdentityResponse xmlns="{ns}">\n'
                '  <AssumeRoleWithWebIdentityResult>\n'
                '    <Credentials>\n'
                '      <AccessKeyId>{key}</AccessKeyId>\n'
                '      <SecretAccessKey>{secret}</SecretAccessKey>\n'
                '      <SessionToken>{token}</SessionToken>\n'
                '      <Expiration>{expiration}</Expiration>\n'
                '    </Credentials>\n'
                '    <SubjectFromWebIdentityToken>fake-web-identity-subject</SubjectFromWebIdentityToken>\n'
                '    <AssumedRoleUser>\n'
                '      <Arn>arn:aws:sts::{account}:assumed-role/{role}/{session}</Arn>\n'
                '      <AssumedRoleId>{role_id}:{session}</AssumedRoleId>\n'
                '    </AssumedRoleUser>\n'
                '    <Provider>fake-oidc-provider</Provider>\n'
                '    <Audience>sts.amazonaws.com</Audience>\n'
                '  </AssumeRoleWithWebIdentityResult>\n'
                '  <ResponseMetadata>\n'
                '    <RequestId>{request_id}</RequestId>\n'
                '  </ResponseMetadata>\n'
                '</AssumeRoleWithWebIdentityResponse>\n').format(
                    ns=self.NS, key=escape(cred["access_key_id"]),
                    secret=escape(cred["secret_access_key"]), token=escape(cred["session_token"]),
                    expiration=iso8601(issue.expires_at), account=account, role=escape(role_name),
                    session=escape(session), role_id=role_id, request_id=request_id)
        return Response(200, body, "text/xml", {"x-amzn-RequestId": request_id})


# ---- Azure --------------------------------------------------------------------

class AzureTokenService:
    """What the two managed identity endpoints share: JSON errors, and the
    checks of resource and identity."""

    CONTENT_TYPE = "application/json; charset=utf-8"

    def __init__(self, state):
        self.state = state

    def matches(self, request):
        return request.path == self.PATH

    def error(self, status, error, description):
        return json_response(status, {"error": error, "error_description": description},
                             self.CONTENT_TYPE)

    def refusal(self, query, identity_parameters):
        """The error for a missing or unknown resource or an unknown
        identity, else None. Only one user-assigned identity exists, named
        by its client id."""
        azure = self.state.config["azure"]
        resource = query.get("resource")
        if not resource:
            return self.error(400, "invalid_request", "Required audience parameter not specified")
        wanted = [k for k in identity_parameters if k in query]
        if wanted and not (wanted == ["client_id"] and azure["managed_identity_client_id"] is not None
                           and query["client_id"] == azure["managed_identity_client_id"]):
            return self.error(400, "invalid_request", "Identity not found")
        if resource.rstrip("/") not in [r.rstrip("/") for r in azure["resources"]]:
            return self.error(400, "invalid_resource", "AADSTS50001: The application named %s was "
                              "not found in the tenant named %s. This can happen if the application has "
                              "not been installed by the administrator of the tenant or consented to by "
                              "any user in the tenant. You might have sent your authentication request "
                              "to the wrong tenant." % (resource, azure["tenant_id"]))
        return None


class AzureManagedIdentity(AzureTokenService):
    """Managed identity tokens from the Azure instance metadata service."""

    name = "azure_imds"
    PATH = "/metadata/identity/oauth2/token"

    def handle(self, request, entry):
        metadata = request.headers.get("Metadata")
        entry["expected_headers"] = {"Metadata": metadata is not None}
        # Metadata must be exactly "true" and the request must not have been
        # forwarded; the SDKs probe with a header-less GET and expect this 400.
        if metadata != "true" or request.headers.get("X-Forwarded-For") is not None:
            return self.error(400, "bad_request_102", "Required metadata header not specified")
        if request.method != "GET":
            return self.error(405, "invalid_request", "Http method not allowed")
        query = request.query
        if "api-version" not in query:
            return self.error(400, "invalid_request", "Required query variable 'api-version' is missing")
        refused = self.refusal(query, ("client_id", "object_id", "msi_res_id", "mi_res_id"))
        if refused:
            return refused
        issue = self.state.issue(self.name, "azure.access_tokens", reusable=True)
        entry["issued"] = issue.index
        # This API version gives every number as a string.
        return json_response(200, {
            "access_token": issue.value,
            "refresh_token": "",
            "expires_in": str(issue.expires_in()),
            "expires_on": str(int(issue.expires_at)),
            "not_before": str(int(issue.issued_at)),
            "resource": query["resource"],
            "token_type": "Bearer",
        }, self.CONTENT_TYPE)


class AzureAppServiceIdentity(AzureTokenService):
    """Managed identity tokens from the local endpoint of App Service,
    Azure Functions and Container Apps (IDENTITY_ENDPOINT), API version
    2019-08-01: the secret of IDENTITY_HEADER as X-IDENTITY-HEADER."""

    name = "azure_app_service"
    PATH = "/msi/token"
    API_VERSION = "2019-08-01"

    def handle(self, request, entry):
        azure = self.state.config["azure"]
        given = request.headers.get("X-IDENTITY-HEADER")
        entry["secrets"] = {"X-IDENTITY-HEADER": secret_check(azure["identity_header"], given)}
        if entry["secrets"]["X-IDENTITY-HEADER"] != "match":
            return self.error(401, "unauthorized", "X-IDENTITY-HEADER is missing or wrong")
        if request.method != "GET":
            return self.error(405, "invalid_request", "Http method not allowed")
        query = request.query
        if query.get("api-version") != self.API_VERSION:
            return self.error(400, "invalid_request", "api-version must be %s" % self.API_VERSION)
        refused = self.refusal(query, ("client_id", "principal_id", "mi_res_id"))
        if refused:
            return refused
        issue = self.state.issue(self.name, "azure.access_tokens", reusable=True)
        entry["issued"] = issue.index
        return json_response(200, {
            "access_token": issue.value,
            "expires_on": str(int(issue.expires_at)),
            "resource": query["resource"],
            "token_type": "Bearer",
            "client_id": query.get("client_id") or azure["client_id"],
        }, self.CONTENT_TYPE)


class EntraToken:
    """Microsoft Entra's v2.0 token endpoint, client-credentials grant with
    a federated client assertion (what workload identity sends), a client
    secret or a JWT signed with a certificate's key (a service principal's)."""

    name = "entra"
    PATH = re.compile(r"/([^/]+)/oauth2/v2\.0/token")
    CONTENT_TYPE = "application/json; charset=utf-8"
    ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

    def __init__(self, state):
        self.state = state

    def matches(self, request):
        return self.PATH.fullmatch(request.path) is not None

    def error(self, status, error, code, message):
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(now))
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        return json_response(status, {
            "error": error,
            "error_description": "AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s"
                                 % (code, message, trace, correlation, stamp),
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": "https://login.microsoftonline.com/error?code=%d" % code,
        }, self.CONTENT_TYPE)

    def missing(self, name):
        return self.error(400, "invalid_request", 900144,
                          "The request body must contain the following parameter: '%s'." % name)

    def handle(self, request, entry):
        if request.method != "POST":
            return self.error(400, "invalid_request", 900561, "The endpoint only accepts POST, "
                              "OPTIONS requests. Received a %s request." % request.method)
        config = self.state.config
        azure = config["azure"]
        tenant = self.PATH.fullmatch(request.path).group(1)
        if tenant != azure["tenant_id"]:
            return self.error(400, "invalid_request", 90002, "Tenant '%s' not found. Check to make "
                              "sure you have the correct tenant ID and are signing into the correct "
                              "cloud." % tenant)
        form = request.form()
        if "grant_type" not in form:
            return self.missing("grant_type")
        if form["grant_type"] != "client_credentials":
            return self.error(400, "unsupported_grant_type", 70003, "The app requested an "
                              "unsupported grant type '%s'." % form["grant_type"])
        if "client_id" not in form:
            return self.missing("client_id")
        if form["client_id"] != azure["client_id"]:
            return self.error(400, "unauthorized_client", 700016, "Application with identifier "
                              "'%s' was not found in the directory '%s'." % (form["client_id"], tenant))
        if "scope" not in form:
            return self.missing("scope")
        scope = form["scope"]
        if not scope.endswith("/.default") or " " in scope:
            return self.error(400, "invalid_scope", 1002012, "The provided value for scope %s is not "
                              "valid. Client credential flows must have a scope value with /.default "
                              "suffixed to the resource identifier (application ID URI)." % scope)
        resource = scope[:-len("/.default")]
        if resource.rstrip("/") not in [r.rstrip("/") for r in azure["resources"]]:
            return self.error(400, "invalid_resource", 500011, "The resource principal named %s was "
                              "not found in the tenant named %s." % (resource, tenant))
        assertion = form.get("client_assertion")
        if assertion is None and "client_secret" in form:
            # A service principal's secret (what AZURE_CLIENT_SECRET holds).
            expected = azure["client_secret"]
            entry["secrets"] = {"client_secret": "mismatch" if expected is None
                                else secret_check(expected, form["client_secret"])}
            if entry["secrets"]["client_secret"] != "match":
                return self.error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure "
                                  "the secret being sent in the request is the client secret value, not the "
                                  "client secret ID, for a secret added to app '%s'." % azure["client_id"])
            return self.token(entry)
        jwt = parse_jwt(assertion) if assertion is not None else None
        if jwt is not None and "x5t" in jwt[0] and form.get("client_assertion_type") == self.ASSERTION_TYPE:
            return self.certificate_assertion(jwt, tenant, entry)
        entry["secrets"] = {"client_assertion": secret_check(azure["client_assertion"], assertion)}
        # An assertion without its type is no client credential at all.
        if assertion is None or form.get("client_assertion_type") != self.ASSERTION_TYPE:
            return self.error(401, "invalid_client", 7000218, "The request body must contain the "
                              "following parameter: 'client_assertion' or 'client_secret'.")
        if entry["secrets"]["client_assertion"] != "match":
            return self.error(401, "invalid_client", 700213, "No matching federated identity record "
                              "found for presented assertion subject. Check your federated identity "
                              "credential Subject, Audience and Issuer against the presented assertion.")
        return self.token(entry)

    def certificate_assertion(self, jwt, tenant, entry):
        """A service principal's certificate: a JWT naming the certificate
        by its SHA-1 thumbprint (x5t), signed RS256 with its key."""
        header, claims, signed, signature = jwt
        azure = self.state.config["azure"]
        certificate = azure["client_certificate"]
        ok = (certificate is not None and header.get("alg") == "RS256"
              and header.get("x5t") == certificate_x5t(certificate)
              and rs256_signature_ok(signed, signature, certificate_public_key(certificate)))
        entry["secrets"] = {"client_certificate": "match" if ok else "mismatch"}
        if not ok:
            return self.error(401, "invalid_client", 700027, "Client assertion failed signature validation.")
        if claims.get("iss") != azure["client_id"] or claims.get("sub") != azure["client_id"]:
            return self.error(401, "invalid_client", 700021, "Client assertion application identifier "
                              "doesn't match 'client_id' parameter.")
        if not str(claims.get("aud", "")).endswith("/%s/oauth2/v2.0/token" % tenant) or not claims.get("jti"):
            return self.error(401, "invalid_client", 700027, "Client assertion contains an invalid audience "
                              "or no jti.")
        now = time.time()
        nbf, exp = claims.get("nbf"), claims.get("exp")
        if not isinstance(nbf, int) or not isinstance(exp, int) or nbf > now + 300 or exp < now \
                or exp - nbf > 3600:
            return self.error(401, "invalid_client", 700024, "Client assertion is not within its valid "
                              "time range.")
        return self.token(entry)

    def token(self, entry):
        issue = self.state.issue(self.name, "azure.access_tokens", reusable=False)
        entry["issued"] = issue.index
        lifetime = issue.expires_in()
        return json_response(200, {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": issue.value,
        }, self.CONTENT_TYPE, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})


# ---- Google -------------------------------------------------------------------

class GceMetadata:
    """The GCE metadata server: service account email and access tokens."""

    name = "gce_metadata"
    PREFIX = "/computeMetadata/v1/"
    ACCOUNTS = PREFIX + "instance/service-accounts/"
    FLAVOR = {"Metadata-Flavor": "Google"}  # on every answer: clients check it
    TEXT = "application/text"  # what the server calls plain values

    def __init__(self, state):
        self.state = state

    def matches(self, request):
        return request.path == "/" or request.path == "/computeMetadata" or \
            request.path.startswith("/computeMetadata/")

    def text(self, status, body, content_type=None):
        return Response(status, body, content_type or self.TEXT, self.FLAVOR)

    def handle(self, request, entry):
        # The root answers anyone: the client libraries ping it to detect GCE.
        if request.path == "/" and request.method == "GET":
            return self.text(200, "computeMetadata/\n")
        flavor = request.headers.get("Metadata-Flavor")
        entry["expected_headers"] = {"Metadata-Flavor": flavor is not None}
        if request.headers.get("X-Forwarded-For") is not None:
            return self.text(403, "Your client does not have permission to get URL %s from this "
                             "server. Requests with X-Forwarded-For are not allowed.\n"
                             % request.path, "text/html; charset=UTF-8")
        if flavor != "Google":
            return self.text(403, "Your client does not have permission to get URL %s from this "
                             "server. Missing Metadata-Flavor:Google header.\n"
                             % request.path, "text/html; charset=UTF-8")
        if request.method != "GET":
            return self.text(405, "Method not allowed\n")
        config = self.state.config
        gce = config["gce"]
        path = request.path
        if path in ("/computeMetadata/", "/computeMetadata/v1", self.PREFIX):
            return self.text(200, "v1/\n" if path == "/computeMetadata/" else "instance/\nproject/\n")
        if path == self.PREFIX + "project/project-id":
            return self.text(200, gce["project_id"])
        if path == self.ACCOUNTS:
            return self.text(200, "default/\n%s/\n" % gce["service_account_email"])
        if not path.startswith(self.ACCOUNTS):
            return self.text(404, "Not Found\n")
        account, _, item = path[len(self.ACCOUNTS):].partition("/")
        if account not in ("default", gce["service_account_email"]):
            return self.text(404, "Not Found\n")
        if item == "":
            if request.query.get("recursive", "").lower() == "true":
                return Response(200, json.dumps({"aliases": ["default"],
                                                 "email": gce["service_account_email"],
                                                 "scopes": gce["scopes"]}),
                                "application/json", self.FLAVOR)
            return self.text(200, "aliases\nemail\nidentity\nscopes\ntoken\n")
        if item == "email":
            return self.text(200, gce["service_account_email"])
        if item == "scopes":
            return self.text(200, "".join(s + "\n" for s in gce["scopes"]))
        if item == "token":
            issue = self.state.issue(self.name, "gce.access_tokens", reusable=True)
            entry["issued"] = issue.index
            return Response(200, json.dumps({"access_token": issue.value,
                                             "expires_in": issue.expires_in(),
                                             "token_type": "Bearer"}),
                            "application/json", self.FLAVOR)
        return self.text(404, "Not Found\n")


class GoogleOAuthToken:
    """Google's OAuth 2.0 token endpoint for service accounts (the JWT bearer
    grant, RFC 7523): POST /token, form grant_type=
    urn:ietf:params:oauth:grant-type:jwt-bearer and assertion=JWT, the JWT
    RS256-signed by the service account (iss), for this endpoint (aud), a
    scope, iat and exp at most an hour apart."""

    name = "google_oauth"
    GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

    def __init__(self, state):
        self.state = state

    def matches(self, request):
        return request.path == "/token"

    @staticmethod
    def error(description):
        return json_response(400, {"error": "invalid_grant", "error_description": description})

    def handle(self, request, entry):
        if request.method != "POST":
            return json_response(405, {"error": "invalid_request"})
        form = request.form()
        if form.get("grant_type") != self.GRANT:
            return json_response(400, {"error": "unsupported_grant_type",
                                       "error_description": "Invalid grant_type: " + form.get("grant_type", "")})
        jwt = parse_jwt(form.get("assertion", ""))
        if jwt is None:
            return self.error("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe")
        header, claims, signed, signature = jwt
        gce = self.state.config["gce"]
        now = time.time()
        if header.get("alg") != "RS256":
            return self.error("Invalid JWT: unsupported algorithm")
        if claims.get("iss") != gce["service_account_email"]:
            return self.error("Invalid JWT Signature.")
        if not str(claims.get("aud", "")).endswith("/token"):
            return self.error("Invalid JWT: audience")
        if not claims.get("scope"):
            return self.error("Invalid JWT: no scope")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or exp - iat > 3600 or abs(iat - now) > 300 \
                or exp < now:
            return self.error("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                              "timeframe. Check your iat and exp values in the JWT claim.")
        public_key = gce["service_account_public_key"]
        entry["secrets"] = {"signature": "not_required" if public_key is None else "match"}
        if public_key is not None and not rs256_signature_ok(signed, signature, public_key):
            entry["secrets"] = {"signature": "mismatch"}
            return self.error("Invalid JWT Signature.")
        issue = self.state.issue(self.name, "gce.access_tokens", reusable=False)
        entry["issued"] = issue.index
        return json_response(200, {"access_token": issue.value, "expires_in": issue.expires_in(),
                                   "token_type": "Bearer"})


# ---- the control endpoint -----------------------------------------------------

class Control:
    """/__fake/: never faulted, never logged."""

    def __init__(self, state):
        self.state = state

    def handle(self, request):
        name = request.path[len(CONTROL_PREFIX):].strip("/")
        route = (request.method, name)
        try:
            if route == ("GET", "health"):
                return json_response(200, {"ok": True})
            if route == ("GET", "requests"):
                return json_response(200, self.state.requests())
            if route == ("DELETE", "requests"):
                return json_response(200, {"cleared": self.state.clear_requests()})
            if route in (("PUT", "config"), ("POST", "config")):
                change = json.loads(request.body or b"{}")
                if request.method == "PUT":
                    self.state.replace_config(change)  # defaults + change, rotations restart
                else:
                    self.state.update_config(change)  # merged into the settings in force
                return json_response(200, {"ok": True})
            if route == ("GET", "faults"):
                return json_response(200, self.state.faults.list())
            if route == ("POST", "faults"):
                document = json.loads(request.body or b"null")
                specs = document if isinstance(document, list) else [document]
                faults = [parse_fault(spec) for spec in specs]  # all valid, or none added
                for fault in faults:
                    self.state.faults.add(fault)
                return json_response(200, self.state.faults.list())
            if route == ("DELETE", "faults"):
                self.state.faults.clear()
                return json_response(200, {"ok": True})
        except (ValueError, ConfigError, FaultError) as exc:  # JSONDecodeError is a ValueError
            return json_response(400, {"error": str(exc)})
        return json_response(404, {"error": "no control operation %s %s" % route})


# ---- HTTP ---------------------------------------------------------------------

class BadRequest(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer has Content-Length
    timeout = 30  # an idle keep-alive connection is closed after this

    def log_message(self, format, *args):
        pass  # the request log replaces http.server's stderr lines

    def do_GET(self):
        self.dispatch()

    do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def dispatch(self):
        server = self.server
        state = server.state
        try:
            body = self.read_body()
        except BadRequest as exc:
            self.close_connection = True  # the rest of the stream is unusable
            self.send(Response(exc.status, str(exc) + "\n"))
            return
        request = Request(self.command, self.path, self.headers, body)
        if request.path + "/" == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX):
            self.send(server.control.handle(request))
            return
        service = server.route(request)
        entry = {
            "time": round(time.time(), 3),
            "method": request.method,
            "path": request.path,
            "query": redacted(request.query),
            "form": redacted(request.form()),
            "headers": list(self.headers.keys()),
            "service": service.name if service else None,
            "expected_headers": {},
            "secrets": {},
            "issued": None,
            "fault": None,
            "status": None,
        }
        response = None
        fault = state.faults.take(request.method, request.path)
        if fault:
            entry["fault"] = fault["mode"]
            if fault["mode"] == "drop":
                state.record(entry)
                self.close_connection = True  # closed without a byte of answer
                return
            if fault["mode"] == "delay" and state.stopping.wait(fault["seconds"]):
                self.close_connection = True  # stopping: give up on this one
                return
            if fault["mode"] == "error":
                response = Response(fault["status"], fault["body"], fault["content_type"],
                                    fault["headers"])
        if response is None:
            response = service.handle(request, entry) if service else Response(404, "Not Found\n")
        entry["status"] = response.status
        state.record(entry)  # before answering: a client that got the answer sees the entry
        if server.verbose:
            print("%s %s -> %d (%s%s)" % (request.method, request.path, response.status,
                                         entry["service"], ", fault" if fault else ""),
                  file=sys.stderr, flush=True)
        self.send(response)

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").strip().lower() == "chunked":
            return self.read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.strip().isdigit():
            raise BadRequest(400, "bad Content-Length")
        if int(length) > MAX_BODY:
            raise BadRequest(413, "request body too large")
        body = self.rfile.read(int(length))
        if len(body) != int(length):
            raise BadRequest(400, "request body shorter than Content-Length")
        return body

    def read_chunked(self):
        body = b""
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadRequest(400, "bad chunk size") from None
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return body
            if len(body) + size > MAX_BODY:
                raise BadRequest(413, "request body too large")
            body += self.rfile.read(size)
            self.rfile.readline(8)  # the CRLF after the chunk

    def send(self, response):
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(response.body)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() ends the connections itself, then joins

    def __init__(self, port, state, verbose=False):
        self.state = state
        self.verbose = verbose
        self.control = Control(state)
        # Order matters only where paths could overlap: the configured
        # container path is checked before the others.
        self.services = [ContainerCredentials(state), Ec2Metadata(state), Sts(state),
                         AzureManagedIdentity(state), AzureAppServiceIdentity(state), EntraToken(state),
                         GceMetadata(state),
                         GoogleOAuthToken(state)]
        self.connections = {}  # socket -> thread serving it
        self.connections_lock = threading.Lock()
        super().__init__((HOST, port), Handler)

    def route(self, request):
        for service in self.services:
            if service.matches(request):
                return service
        return None

    def process_request(self, request, client_address):
        thread = threading.Thread(target=self.serve_connection, args=(request, client_address),
                                  name="credential-endpoints-connection", daemon=True)
        with self.connections_lock:
            self.connections[request] = thread
        thread.start()

    def serve_connection(self, request, client_address):
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self.connections_lock:
                self.connections.pop(request, None)

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # a bug here: show it


class CredentialEndpoints:
    """The fake, started in-process: start()/stop(), or use it in a `with`.

    config: a dict in the form of DEFAULT_CONFIG (missing settings take the
    defaults). port 0 picks a free port; `port` and `url` tell which.
    """

    def __init__(self, config=None, port=0, verbose=False):
        self.state = State(config)
        self._wanted_port = port
        self._verbose = verbose
        self._server = None
        self._thread = None
        self.port = None

    @property
    def url(self):
        return "http://%s:%d" % (HOST, self.port)

    def start(self):
        if self._server is not None:
            return self
        self.state.stopping.clear()
        self._server = Server(self._wanted_port, self.state, self._verbose)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="credential-endpoints-serve", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        server, self._server = self._server, None
        if server is None:
            return
        self.state.stopping.set()  # ends delays in progress
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            open_connections = list(server.connections.items())
        for sock, _ in open_connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a handler waiting for the next request
            except OSError:
                pass
        for _, thread in open_connections:
            thread.join(5)
        self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # The control endpoint's operations, for in-process callers.
    def requests(self):
        return self.state.requests()

    def clear_requests(self):
        return self.state.clear_requests()

    def configure(self, change, replace=False):
        (self.state.replace_config if replace else self.state.update_config)(change)

    def add_fault(self, spec):
        self.state.faults.add(parse_fault(spec))

    def clear_faults(self):
        self.state.faults.clear()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Loopback fake of cloud credential endpoints.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--config", help="JSON file of settings (see README.md)")
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--verbose", action="store_true", help="one line per request on stderr")
    args = parser.parse_args(argv)
    config = None
    if args.config:
        try:
            with open(args.config) as f:
                config = json.load(f)
        except (OSError, ValueError) as exc:
            print("credential_endpoints: cannot read %s: %s" % (args.config, exc), file=sys.stderr)
            return 2
    try:
        fake = CredentialEndpoints(config, port=args.port, verbose=args.verbose)
    except ConfigError as exc:
        print("credential_endpoints: %s" % exc, file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    fake.start()
    try:
        if args.port_file:
            # Written whole, then renamed: a reader never sees half a number.
            temporary = args.port_file + ".tmp"
            with open(temporary, "w") as f:
                f.write("%d\n" % fake.port)
            os.replace(temporary, args.port_file)
        print("credential_endpoints listening on %s" % fake.url, flush=True)
        while not stop.wait(1):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
