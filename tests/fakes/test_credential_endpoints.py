#!/usr/bin/python3
"""Self-test of credential_endpoints.py, the loopback fake of the cloud
credential endpoints.

    /usr/bin/python3 tests/fakes/test_credential_endpoints.py

Starts the fake in-process on a free port of 127.0.0.1 (and once as a
process, for the command line), talks to it with urllib and http.client,
and prints "N passed, N failed" last; the exit status is non-zero on any
failure. Needs nothing but Debian's Python.
"""

import base64
import calendar
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from xml.etree import ElementTree

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "system"))
import runner  # noqa: E402
import credential_endpoints as ce  # noqa: E402

PYTHON = "/usr/bin/python3"
SCRIPT = os.path.join(HERE, "credential_endpoints.py")

CREDS = [{"access_key_id": "ASIATESTKEY%09d" % i,
          "secret_access_key": "test-secret-access-key-%d" % i,
          "session_token": "test-session-token-%d" % i} for i in range(3)]
ROLE_ARN = "arn:aws:iam::111122223333:role/test-role"
WEB_TOKEN = "test-web-identity-token"
CONTAINER_PATH = "/v2/credentials/test-task"
CONTAINER_AUTH = "test-container-authorization"
TENANT = "test-tenant"
CLIENT = "test-client"
ASSERTION = "test-federated-assertion"
MI_CLIENT = "test-managed-identity-client"
IDENTITY_HEADER = "test-identity-header"
CLIENT_SECRET = "test-client-secret"
AZURE_TOKENS = ["az-token-0", "az-token-1"]
GCE_TOKENS = ["gce-token-0", "gce-token-1"]
EMAIL = "test-sa@test-project.iam.gserviceaccount.com"
BASE = {
    "lifetime_seconds": 60,
    "credentials": CREDS,
    "aws": {"role_name": "test-role", "role_arn": ROLE_ARN, "web_identity_token": WEB_TOKEN,
            "container_path": CONTAINER_PATH, "container_authorization_token": CONTAINER_AUTH},
    "azure": {"tenant_id": TENANT, "client_id": CLIENT, "client_assertion": ASSERTION,
              "managed_identity_client_id": MI_CLIENT, "identity_header": IDENTITY_HEADER,
              "client_secret": CLIENT_SECRET, "access_tokens": AZURE_TOKENS},
    "gce": {"service_account_email": EMAIL, "project_id": "test-project", "access_tokens": GCE_TOKENS},
}
# Values the request log must never show.
SECRET_VALUES = [WEB_TOKEN, CONTAINER_AUTH, ASSERTION, IDENTITY_HEADER, CLIENT_SECRET] + AZURE_TOKENS + GCE_TOKENS + \
    [c["secret_access_key"] for c in CREDS] + [c["session_token"] for c in CREDS]

TTL = "X-aws-ec2-metadata-token-ttl-seconds"
IMDS_TOKEN = "X-aws-ec2-metadata-token"
CREDS_PATH = "/latest/meta-data/iam/security-credentials/"
AZURE_PATH = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + \
    urllib.parse.quote("https://storage.azure.com/", safe="")
APP_SERVICE_PATH = "/msi/token?api-version=2019-08-01&resource=" + \
    urllib.parse.quote("https://storage.azure.com/", safe="")
ENTRA_PATH = "/%s/oauth2/v2.0/token" % TENANT
GCE_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"

FAKE = ce.CredentialEndpoints(BASE)
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def call(method, path, headers=None, body=None):
    """(status, headers, body) of one request; error statuses are answers too."""
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(FAKE.url + path, data=data, method=method,
                                     headers=headers or {})
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def call_json(method, path, headers=None, body=None):
    status, headers, data = call(method, path, headers, body)
    return status, headers, json.loads(data)


def control(method, name, document=None):
    body = json.dumps(document) if document is not None else None
    status, _, data = call(method, "/__fake/" + name, body=body)
    return status, json.loads(data)


def parse_iso(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def sts_form(**overrides):
    params = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": ROLE_ARN,
              "RoleSessionName": "session-1", "WebIdentityToken": WEB_TOKEN}
    params.update(overrides)
    return urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})


def sts_error(body):
    """(Type, Code, Message, RequestId) of an STS ErrorResponse."""
    root = ElementTree.fromstring(body)
    assert root.tag == STS_NS + "ErrorResponse", root.tag
    error = root.find(STS_NS + "Error")
    return tuple(error.findtext(STS_NS + name) for name in ("Type", "Code", "Message")) + \
        (root.findtext(STS_NS + "RequestId"),)


def entra_form(**overrides):
    params = {"grant_type": "client_credentials", "client_id": CLIENT,
              "scope": "https://storage.azure.com/.default",
              "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
              "client_assertion": ASSERTION}
    params.update(overrides)
    return urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})


class FakeTest(unittest.TestCase):
    def setUp(self):
        self.assertEqual(control("PUT", "config", BASE)[0], 200)
        self.assertEqual(control("DELETE", "faults")[0], 200)
        self.assertEqual(control("DELETE", "requests")[0], 200)

    def log(self):
        status, entries = control("GET", "requests")
        self.assertEqual(status, 200)
        return entries

    def imds_token(self, ttl="60"):
        status, headers, body = call("PUT", "/latest/api/token", {TTL: ttl})
        self.assertEqual(status, 200, body)
        return body.decode()

    def imds_credentials(self):
        status, _, body = call("GET", CREDS_PATH + "test-role", {IMDS_TOKEN: self.imds_token()})
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def assertAbout(self, value, expected, slack=2):
        self.assertLessEqual(abs(value - expected), slack, (value, expected))


# ---- AWS ----------------------------------------------------------------------

class Ec2MetadataTest(FakeTest):
    def test_token_role_and_credentials(self):
        status, headers, body = call("PUT", "/latest/api/token", {TTL: "21600"})
        self.assertEqual(status, 200)
        self.assertEqual(headers[TTL], "21600")
        self.assertEqual(headers["Content-Length"], str(len(body)))
        token = body.decode()
        for listing in (CREDS_PATH, CREDS_PATH.rstrip("/")):
            status, _, body = call("GET", listing, {IMDS_TOKEN: token})
            self.assertEqual((status, body), (200, b"test-role"))
        started = time.time()
        status, headers, body = call("GET", CREDS_PATH + "test-role", {IMDS_TOKEN: token})
        self.assertEqual(status, 200, body)
        document = json.loads(body)
        self.assertEqual(set(document), {"Code", "LastUpdated", "Type", "AccessKeyId",
                                         "SecretAccessKey", "Token", "Expiration"})
        self.assertEqual((document["Code"], document["Type"]), ("Success", "AWS-HMAC"))
        self.assertEqual((document["AccessKeyId"], document["SecretAccessKey"], document["Token"]),
                         (CREDS[0]["access_key_id"], CREDS[0]["secret_access_key"],
                          CREDS[0]["session_token"]))
        self.assertRegex(document["Expiration"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertAbout(parse_iso(document["Expiration"]), started + 60)
        self.assertAbout(parse_iso(document["LastUpdated"]), started)

    def test_token_ttl_must_be_1_to_21600(self):
        self.assertEqual(call("PUT", "/latest/api/token")[0], 400)
        for ttl in ("0", "21601", "abc", "-5", ""):
            self.assertEqual(call("PUT", "/latest/api/token", {TTL: ttl})[0], 400, ttl)
        for ttl in ("1", "21600"):
            self.assertEqual(call("PUT", "/latest/api/token", {TTL: ttl})[0], 200, ttl)

    def test_forwarded_token_request_is_forbidden(self):
        status, headers, body = call("PUT", "/latest/api/token",
                                     {TTL: "60", "X-Forwarded-For": "10.0.0.1"})
        self.assertEqual(status, 403)
        self.assertIn(b"403 - Forbidden", body)

    def test_metadata_needs_a_valid_token(self):
        for path in (CREDS_PATH, CREDS_PATH + "test-role", "/latest/meta-data/no-such-thing"):
            self.assertEqual(call("GET", path)[0], 401, path)
            self.assertEqual(call("GET", path, {IMDS_TOKEN: "not-a-token"})[0], 401, path)
        checks = [e["secrets"][IMDS_TOKEN] for e in self.log()]
        self.assertEqual(checks, ["missing", "mismatch"] * 3)
        self.assertEqual(call("GET", "/latest/meta-data/no-such-thing",
                              {IMDS_TOKEN: self.imds_token()})[0], 404)

    def test_unknown_role_is_404(self):
        status, _, body = call("GET", CREDS_PATH + "other-role", {IMDS_TOKEN: self.imds_token()})
        self.assertEqual(status, 404)
        self.assertIn(b"404 - Not Found", body)

    def test_expired_token_is_401(self):
        token = self.imds_token(ttl="1")
        self.assertEqual(call("GET", CREDS_PATH, {IMDS_TOKEN: token})[0], 200)
        time.sleep(1.1)  # the shortest TTL IMDS allows
        self.assertEqual(call("GET", CREDS_PATH, {IMDS_TOKEN: token})[0], 401)
        self.assertEqual(self.log()[-1]["secrets"], {IMDS_TOKEN: "expired"})

    def test_token_path_takes_only_put(self):
        status, headers, _ = call("GET", "/latest/api/token")
        self.assertEqual((status, headers["Allow"]), (405, "PUT"))
        self.assertEqual(call("POST", CREDS_PATH, {IMDS_TOKEN: self.imds_token()}, body="")[0], 405)


class ContainerTest(FakeTest):
    def test_credentials(self):
        started = time.time()
        status, headers, document = call_json("GET", CONTAINER_PATH, {"Authorization": CONTAINER_AUTH})
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(set(document), {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn"})
        self.assertEqual(document["AccessKeyId"], CREDS[0]["access_key_id"])
        self.assertEqual(document["Token"], CREDS[0]["session_token"])
        self.assertEqual(document["RoleArn"], ROLE_ARN)
        self.assertAbout(parse_iso(document["Expiration"]), started + 60)
        self.assertEqual(self.log()[-1]["secrets"], {"Authorization": "match"})

    def test_missing_authorization_is_401_wrong_is_403(self):
        status, _, document = call_json("GET", CONTAINER_PATH)
        self.assertEqual(status, 401)
        self.assertEqual(set(document), {"code", "message"})
        status, _, document = call_json("GET", CONTAINER_PATH, {"Authorization": "Basic wrong"})
        self.assertEqual(status, 403)
        self.assertEqual(set(document), {"code", "message"})
        log = self.log()
        self.assertEqual([e["secrets"]["Authorization"] for e in log], ["missing", "mismatch"])
        self.assertEqual([e["expected_headers"]["Authorization"] for e in log], [False, True])
        self.assertEqual([e["issued"] for e in log], [None, None])

    def test_no_authorization_configured(self):
        self.assertEqual(control("POST", "config", {"aws": {"container_authorization_token": None}})[0], 200)
        self.assertEqual(call("GET", CONTAINER_PATH)[0], 200)
        self.assertEqual(self.log()[-1]["secrets"], {"Authorization": "not_required"})

    def test_other_paths_and_methods(self):
        self.assertEqual(call("GET", "/v2/credentials/other-task", {"Authorization": CONTAINER_AUTH})[0], 404)
        self.assertEqual(call("POST", CONTAINER_PATH, {"Authorization": CONTAINER_AUTH}, body="")[0], 405)
        # Another path can be configured at run time.
        self.assertEqual(control("POST", "config", {"aws": {"container_path": "/creds"}})[0], 200)
        self.assertEqual(call("GET", "/creds", {"Authorization": CONTAINER_AUTH})[0], 200)
        self.assertEqual(call("GET", CONTAINER_PATH, {"Authorization": CONTAINER_AUTH})[0], 404)


class StsTest(FakeTest):
    def test_form_post(self):
        started = time.time()
        status, headers, body = call("POST", "/", {"Content-Type": "application/x-www-form-urlencoded"},
                                     sts_form(DurationSeconds="900"))
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["Content-Type"], "text/xml")
        root = ElementTree.fromstring(body)
        self.assertEqual(root.tag, STS_NS + "AssumeRoleWithWebIdentityResponse")
        result = root.find(STS_NS + "AssumeRoleWithWebIdentityResult")
        creds = result.find(STS_NS + "Credentials")
        self.assertEqual(creds.findtext(STS_NS + "AccessKeyId"), CREDS[0]["access_key_id"])
        self.assertEqual(creds.findtext(STS_NS + "SecretAccessKey"), CREDS[0]["secret_access_key"])
        self.assertEqual(creds.findtext(STS_NS + "SessionToken"), CREDS[0]["session_token"])
        self.assertAbout(parse_iso(creds.findtext(STS_NS + "Expiration")), started + 60)
        self.assertTrue(result.findtext(STS_NS + "SubjectFromWebIdentityToken"))
        user = result.find(STS_NS + "AssumedRoleUser")
        self.assertEqual(user.findtext(STS_NS + "Arn"),
                         "arn:aws:sts::111122223333:assumed-role/test-role/session-1")
        self.assertRegex(user.findtext(STS_NS + "AssumedRoleId"), r"^AROA[A-Z0-9]+:session-1$")
        request_id = root.find(STS_NS + "ResponseMetadata").findtext(STS_NS + "RequestId")
        self.assertEqual(request_id, headers["x-amzn-RequestId"])
        self.assertEqual(self.log()[-1]["secrets"], {"WebIdentityToken": "match"})

    def test_get_with_query(self):
        status, _, body = call("GET", "/?" + sts_form())
        self.assertEqual(status, 200, body)
        self.assertIn(b"<AccessKeyId>", body)

    def test_wrong_token_is_400_invalid_identity_token(self):
        status, headers, body = call("POST", "/", body=sts_form(WebIdentityToken="someone-elses-token"))
        self.assertEqual(status, 400)
        kind, code, message, request_id = sts_error(body)
        self.assertEqual((kind, code), ("Sender", "InvalidIdentityToken"))
        self.assertTrue(message and request_id)
        self.assertEqual(self.log()[-1]["secrets"], {"WebIdentityToken": "mismatch"})

    def test_wrong_role_is_403_access_denied(self):
        status, _, body = call("POST", "/", body=sts_form(RoleArn="arn:aws:iam::111122223333:role/other"))
        self.assertEqual(status, 403)
        self.assertEqual(sts_error(body)[:2], ("Sender", "AccessDenied"))

    def test_validation(self):
        cases = [
            (sts_form(RoleSessionName=None), "ValidationError"),
            (sts_form(WebIdentityToken=None), "ValidationError"),
            (sts_form(RoleSessionName="a"), "ValidationError"),
            (sts_form(RoleSessionName="has space"), "ValidationError"),
            (sts_form(DurationSeconds="899"), "ValidationError"),
            (sts_form(DurationSeconds="43201"), "ValidationError"),
            (sts_form(Action="AssumeRole"), "InvalidAction"),
            (sts_form(Version=None), "InvalidAction"),
        ]
        for body, code in cases:
            status, _, answer = call("POST", "/", body=body)
            self.assertEqual((status, sts_error(answer)[1]), (400, code), body)
        self.assertEqual(call("POST", "/", body=sts_form(DurationSeconds="43200"))[0], 200)


# ---- Azure --------------------------------------------------------------------

class AzureManagedIdentityTest(FakeTest):
    def test_token(self):
        started = time.time()
        status, headers, document = call_json("GET", AZURE_PATH, {"Metadata": "true"})
        self.assertEqual(status, 200, document)
        self.assertEqual(headers["Content-Type"], "application/json; charset=utf-8")
        self.assertEqual(set(document), {"access_token", "refresh_token", "expires_in", "expires_on",
                                         "not_before", "resource", "token_type"})
        self.assertTrue(all(isinstance(v, str) for v in document.values()), document)
        self.assertEqual(document["access_token"], AZURE_TOKENS[0])
        self.assertEqual(document["refresh_token"], "")
        self.assertEqual(document["token_type"], "Bearer")
        self.assertEqual(document["resource"], "https://storage.azure.com/")
        self.assertIn(document["expires_in"], ("59", "60"))
        self.assertAbout(int(document["expires_on"]), started + 60)
        self.assertAbout(int(document["not_before"]), started)

    def test_metadata_header_required(self):
        for headers in ({}, {"Metadata": "True"}, {"Metadata": "true", "X-Forwarded-For": "10.0.0.1"}):
            status, _, document = call_json("GET", AZURE_PATH, headers)
            self.assertEqual(status, 400, headers)
            self.assertEqual(document, {"error": "bad_request_102",
                                        "error_description": "Required metadata header not specified"})
        self.assertEqual([e["expected_headers"]["Metadata"] for e in self.log()], [False, True, True])

    def test_user_assigned_identity(self):
        status, _, document = call_json("GET", AZURE_PATH + "&client_id=" + MI_CLIENT, {"Metadata": "true"})
        self.assertEqual(status, 200, document)
        for other in ("&client_id=someone-else", "&object_id=x", "&mi_res_id=/subscriptions/x"):
            status, _, document = call_json("GET", AZURE_PATH + other, {"Metadata": "true"})
            self.assertEqual((status, document["error_description"]), (400, "Identity not found"), other)

    def test_parameter_refusals(self):
        base = "/metadata/identity/oauth2/token"
        cases = [(base + "?resource=https://storage.azure.com/", "invalid_request"),
                 (base + "?api-version=2018-02-01", "invalid_request"),
                 (base + "?api-version=2018-02-01&resource=https://vault.azure.net", "invalid_resource")]
        for path, error in cases:
            status, _, document = call_json("GET", path, {"Metadata": "true"})
            self.assertEqual((status, document["error"]), (400, error), path)
        # The resource's trailing slash does not matter.
        status, _, _ = call_json("GET", base + "?api-version=2018-02-01&resource=https://storage.azure.com",
                                 {"Metadata": "true"})
        self.assertEqual(status, 200)


class AzureAppServiceTest(FakeTest):
    HEADER = {"X-IDENTITY-HEADER": IDENTITY_HEADER}

    def test_token(self):
        started = time.time()
        status, headers, document = call_json("GET", APP_SERVICE_PATH, self.HEADER)
        self.assertEqual(status, 200, document)
        self.assertEqual(headers["Content-Type"], "application/json; charset=utf-8")
        self.assertEqual(set(document), {"access_token", "expires_on", "resource", "token_type", "client_id"})
        self.assertEqual(document["access_token"], AZURE_TOKENS[0])
        self.assertEqual(document["token_type"], "Bearer")
        self.assertEqual(document["resource"], "https://storage.azure.com/")
        self.assertAbout(int(document["expires_on"]), started + 60)
        (entry,) = self.log()
        self.assertEqual((entry["service"], entry["secrets"]), ("azure_app_service", {"X-IDENTITY-HEADER": "match"}))

    def test_identity_header_required(self):
        for headers, outcome in (({}, "missing"), ({"X-IDENTITY-HEADER": "wrong"}, "mismatch")):
            status, _, document = call_json("GET", APP_SERVICE_PATH, headers)
            self.assertEqual((status, document["error"]), (401, "unauthorized"), headers)
        self.assertEqual([e["secrets"]["X-IDENTITY-HEADER"] for e in self.log()], ["missing", "mismatch"])

    def test_parameter_refusals(self):
        resource = "&resource=" + urllib.parse.quote("https://storage.azure.com/", safe="")
        cases = [("/msi/token?api-version=2017-09-01" + resource, "invalid_request"),
                 ("/msi/token?api-version=2019-08-01", "invalid_request"),
                 ("/msi/token?api-version=2019-08-01&resource=https://vault.azure.net", "invalid_resource"),
                 (APP_SERVICE_PATH + "&client_id=someone-else", "invalid_request")]
        for path, error in cases:
            status, _, document = call_json("GET", path, self.HEADER)
            self.assertEqual((status, document["error"]), (400, error), path)
        status, _, document = call_json("GET", APP_SERVICE_PATH + "&client_id=" + MI_CLIENT, self.HEADER)
        self.assertEqual((status, document["client_id"]), (200, MI_CLIENT))

    def test_rotation_of_its_own(self):
        call_json("GET", AZURE_PATH, {"Metadata": "true"})  # IMDS's rotation: not this one
        tokens = [call_json("GET", APP_SERVICE_PATH, self.HEADER)[2]["access_token"] for _ in range(2)]
        self.assertEqual(tokens, AZURE_TOKENS)


class EntraTest(FakeTest):
    def test_token(self):
        status, headers, document = call_json("POST", ENTRA_PATH, body=entra_form())
        self.assertEqual(status, 200, document)
        self.assertEqual(document, {"token_type": "Bearer", "expires_in": 60, "ext_expires_in": 60,
                                    "access_token": AZURE_TOKENS[0]})
        self.assertIn("no-store", headers["Cache-Control"])
        self.assertEqual(self.log()[-1]["secrets"], {"client_assertion": "match"})

    def test_wrong_assertion_is_invalid_client(self):
        status, _, document = call_json("POST", ENTRA_PATH, body=entra_form(client_assertion="forged"))
        self.assertEqual((status, document["error"], document["error_codes"]), (401, "invalid_client", [700213]))
        self.assertTrue(document["error_description"].startswith("AADSTS700213: "))
        for key in ("timestamp", "trace_id", "correlation_id", "error_uri"):
            self.assertIn(key, document)
        self.assertEqual(self.log()[-1]["secrets"], {"client_assertion": "mismatch"})

    def test_client_secret(self):
        secret_form = entra_form(client_assertion=None, client_assertion_type=None, client_secret=CLIENT_SECRET)
        status, _, document = call_json("POST", ENTRA_PATH, body=secret_form)
        self.assertEqual((status, document["access_token"]), (200, AZURE_TOKENS[0]), document)
        self.assertEqual(self.log()[-1]["secrets"], {"client_secret": "match"})
        self.assertEqual(self.log()[-1]["form"]["client_secret"], "<redacted>")
        wrong = entra_form(client_assertion=None, client_assertion_type=None, client_secret="wrong")
        status, _, document = call_json("POST", ENTRA_PATH, body=wrong)
        self.assertEqual((status, document["error"], document["error_codes"]), (401, "invalid_client", [7000215]))
        self.assertEqual(self.log()[-1]["secrets"], {"client_secret": "mismatch"})
        # An app without a secret refuses every one.
        self.assertEqual(control("POST", "config", {"azure": {"client_secret": None}})[0], 200)
        status, _, document = call_json("POST", ENTRA_PATH, body=secret_form)
        self.assertEqual((status, document["error_codes"]), (401, [7000215]))

    def test_client_certificate(self):
        work = tempfile.mkdtemp(prefix="fake_cert_")
        self.addCleanup(subprocess.run, ["rm", "-rf", work])

        def certificate(name):
            key, cert = os.path.join(work, name + ".key"), os.path.join(work, name + ".pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                            "/CN=" + name, "-keyout", key, "-out", cert], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(cert) as f:
                return key, f.read()

        key, cert = certificate("app")
        other_key, _ = certificate("other")
        self.assertEqual(control("POST", "config", {"azure": {"client_certificate": cert}})[0], 200)

        def b64(data):
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        def assertion(signing_key=key, x5t=None, **claims):
            now = int(time.time())
            body = {"aud": "https://login.example" + ENTRA_PATH, "iss": CLIENT, "sub": CLIENT, "jti": "j1",
                    "nbf": now, "exp": now + 300}
            body.update(claims)
            head = {"alg": "RS256", "typ": "JWT", "x5t": x5t or ce.certificate_x5t(cert)}
            signed = b64(json.dumps(head).encode()) + "." + b64(json.dumps(body).encode())
            signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", signing_key], input=signed.encode(),
                                       stdout=subprocess.PIPE, check=True).stdout
            return entra_form(client_assertion=signed + "." + b64(signature))

        status, _, document = call_json("POST", ENTRA_PATH, body=assertion())
        self.assertEqual((status, document.get("access_token")), (200, AZURE_TOKENS[0]), document)
        self.assertEqual(self.log()[-1]["secrets"], {"client_certificate": "match"})
        cases = [(assertion(signing_key=other_key), 700027), (assertion(x5t="AAAA"), 700027),
                 (assertion(iss="someone-else"), 700021), (assertion(aud="https://login.example/other/token"), 700027),
                 (assertion(exp=int(time.time()) - 10), 700024)]
        for body, code in cases:
            status, _, document = call_json("POST", ENTRA_PATH, body=body)
            self.assertEqual((status, document["error"], document["error_codes"]), (401, "invalid_client", [code]))
        self.assertEqual(self.log()[-5]["secrets"], {"client_certificate": "mismatch"})

    def test_refusals(self):
        cases = [
            ("/other-tenant/oauth2/v2.0/token", entra_form(), 400, "invalid_request"),
            (ENTRA_PATH, entra_form(client_id="other-client"), 400, "unauthorized_client"),
            (ENTRA_PATH, entra_form(grant_type="password"), 400, "unsupported_grant_type"),
            (ENTRA_PATH, entra_form(grant_type=None), 400, "invalid_request"),
            (ENTRA_PATH, entra_form(scope="https://storage.azure.com/user_impersonation"), 400, "invalid_scope"),
            (ENTRA_PATH, entra_form(scope="https://vault.azure.net/.default"), 400, "invalid_resource"),
            (ENTRA_PATH, entra_form(client_assertion_type=None), 401, "invalid_client"),
            (ENTRA_PATH, entra_form(client_assertion=None), 401, "invalid_client"),
        ]
        for path, body, expected_status, error in cases:
            status, _, document = call_json("POST", path, body=body)
            self.assertEqual((status, document["error"]), (expected_status, error), body)
        status, _, document = call_json("GET", ENTRA_PATH)
        self.assertEqual((status, document["error_codes"]), (400, [900561]))


# ---- Google -------------------------------------------------------------------

class GceMetadataTest(FakeTest):
    FLAVOR = {"Metadata-Flavor": "Google"}

    def test_token(self):
        status, headers, document = call_json("GET", GCE_TOKEN_PATH + "?scopes=x", self.FLAVOR)
        self.assertEqual(status, 200)
        self.assertEqual(headers["Metadata-Flavor"], "Google")
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(set(document), {"access_token", "expires_in", "token_type"})
        self.assertEqual((document["access_token"], document["token_type"]), (GCE_TOKENS[0], "Bearer"))
        self.assertIn(document["expires_in"], (59, 60))

    def test_flavor_header_required(self):
        for headers in ({}, {"Metadata-Flavor": "google"},
                        {"Metadata-Flavor": "Google", "X-Forwarded-For": "10.0.0.1"}):
            status, answer_headers, body = call("GET", GCE_TOKEN_PATH, headers)
            self.assertEqual(status, 403, headers)
            self.assertEqual(answer_headers["Metadata-Flavor"], "Google")
        self.assertIn(b"Missing Metadata-Flavor:Google header", call("GET", GCE_TOKEN_PATH)[2])
        self.assertEqual([e["issued"] for e in self.log()], [None] * 4)

    def test_email_and_account(self):
        accounts = "/computeMetadata/v1/instance/service-accounts/"
        self.assertEqual(call("GET", accounts + "default/email", self.FLAVOR)[2].decode(), EMAIL)
        self.assertEqual(call("GET", accounts + EMAIL + "/email", self.FLAVOR)[2].decode(), EMAIL)
        status, _, info = call_json("GET", accounts + "default/?recursive=true", self.FLAVOR)
        self.assertEqual((status, info["email"], info["aliases"]), (200, EMAIL, ["default"]))
        self.assertTrue(info["scopes"])
        self.assertIn(b"default/", call("GET", accounts, self.FLAVOR)[2])
        self.assertEqual(call("GET", accounts + "nobody@x/email", self.FLAVOR)[0], 404)
        self.assertEqual(call("GET", "/computeMetadata/v1/project/project-id", self.FLAVOR)[2], b"test-project")
        self.assertEqual(call("GET", accounts + EMAIL + "/token", self.FLAVOR)[0], 200)

    def test_root_answers_a_ping(self):
        status, headers, _ = call("GET", "/")
        self.assertEqual((status, headers["Metadata-Flavor"]), (200, "Google"))


# ---- rotation, expiry, run-time settings --------------------------------------

class RotationTest(FakeTest):
    def test_each_issue_takes_the_next(self):
        keys = [self.imds_credentials()["AccessKeyId"] for _ in range(4)]
        self.assertEqual(keys, [CREDS[i]["access_key_id"] for i in (0, 1, 2, 0)])
        issued = [e["issued"] for e in self.log() if e["issued"] is not None]
        self.assertEqual(issued, [0, 1, 2, 0])
        # Each service has a rotation of its own.
        document = call_json("GET", CONTAINER_PATH, {"Authorization": CONTAINER_AUTH})[2]
        self.assertEqual(document["AccessKeyId"], CREDS[0]["access_key_id"])
        tokens = [call_json("POST", ENTRA_PATH, body=entra_form())[2]["access_token"] for _ in range(3)]
        self.assertEqual(tokens, [AZURE_TOKENS[0], AZURE_TOKENS[1], AZURE_TOKENS[0]])

    def test_reuse_until_expiry_then_refresh(self):
        self.assertEqual(control("POST", "config", {"reuse_until_expiry": True, "lifetime_seconds": 1})[0], 200)
        first = self.imds_credentials()
        self.assertEqual(self.imds_credentials(), first)  # the metadata service caches
        gce = [call_json("GET", GCE_TOKEN_PATH, GceMetadataTest.FLAVOR)[2]["access_token"] for _ in range(2)]
        self.assertEqual(gce, [GCE_TOKENS[0]] * 2)
        # STS issues anew even so.
        keys = [ElementTree.fromstring(call("POST", "/", body=sts_form())[2])
                .find(".//%sAccessKeyId" % STS_NS).text for _ in range(2)]
        self.assertEqual(keys, [CREDS[0]["access_key_id"], CREDS[1]["access_key_id"]])
        time.sleep(max(0.0, parse_iso(first["Expiration"]) - time.time()) + 0.05)
        second = self.imds_credentials()
        self.assertEqual(second["AccessKeyId"], CREDS[1]["access_key_id"])
        self.assertGreater(parse_iso(second["Expiration"]), parse_iso(first["Expiration"]))
        self.assertEqual(call_json("GET", GCE_TOKEN_PATH, GceMetadataTest.FLAVOR)[2]["access_token"],
                         GCE_TOKENS[1])

    def test_lifetimes(self):
        for lifetime in (5, 60, -30):  # negative: credentials that are already expired
            self.assertEqual(control("POST", "config", {"lifetime_seconds": lifetime})[0], 200)
            started = time.time()
            expiration = parse_iso(self.imds_credentials()["Expiration"])
            self.assertGreaterEqual(expiration, int(started) + lifetime)
            self.assertLessEqual(expiration, started + lifetime + 1.5)

    def test_runtime_settings(self):
        self.assertEqual(self.imds_credentials()["AccessKeyId"], CREDS[0]["access_key_id"])
        # A change of lifetime keeps the rotation going.
        self.assertEqual(control("POST", "config", {"lifetime_seconds": 5})[0], 200)
        self.assertEqual(self.imds_credentials()["AccessKeyId"], CREDS[1]["access_key_id"])
        # A new list starts from its first entry.
        new = [{"access_key_id": "ASIANEWKEY", "secret_access_key": "s", "session_token": "t"}]
        self.assertEqual(control("POST", "config", {"credentials": new})[0], 200)
        self.assertEqual(self.imds_credentials()["AccessKeyId"], "ASIANEWKEY")
        # Refused changes change nothing.
        for bad in ({"lifetime_seconds": "5"}, {"nonsense": 1}, {"aws": {"role_nme": "x"}},
                    {"credentials": []}, {"credentials": [{"access_key_id": "only"}]},
                    {"aws": {"container_path": "/latest/x"}}, {"reuse_until_expiry": 1}):
            status, document = control("POST", "config", bad)
            self.assertEqual(status, 400, bad)
            self.assertIn("error", document)
        status, _, body = call("POST", "/__fake/config", body="{not json")
        self.assertEqual(status, 400)
        started = time.time()
        document = self.imds_credentials()
        self.assertEqual(document["AccessKeyId"], "ASIANEWKEY")
        self.assertAbout(parse_iso(document["Expiration"]), started + 5)
        # PUT replaces the whole configuration: defaults for what it leaves out.
        self.assertEqual(control("PUT", "config", {"lifetime_seconds": 7})[0], 200)
        self.assertEqual(call("GET", CREDS_PATH, {IMDS_TOKEN: self.imds_token()})[2],
                         ce.DEFAULT_CONFIG["aws"]["role_name"].encode())


# ---- faults -------------------------------------------------------------------

class FaultTest(FakeTest):
    def test_error_fault_then_recovery(self):
        status, rules = control("POST", "faults", {"path_prefix": "/latest", "status": 500, "count": 2})
        self.assertEqual((status, len(rules)), (200, 1))
        # Other paths and the control endpoint are not touched.
        self.assertEqual(call("GET", GCE_TOKEN_PATH, GceMetadataTest.FLAVOR)[0], 200)
        self.assertEqual(control("GET", "health"), (200, {"ok": True}))
        results = [call("PUT", "/latest/api/token", {TTL: "60"})[0] for _ in range(3)]
        self.assertEqual(results, [500, 500, 200])
        self.assertEqual(control("GET", "faults")[1], [])
        imds = [e for e in self.log() if e["service"] == "ec2_imds"]
        self.assertEqual([(e["fault"], e["status"]) for e in imds],
                         [("error", 500), ("error", 500), (None, 200)])

    def test_delay(self):
        self.assertEqual(control("POST", "faults", {"mode": "delay", "seconds": 0.3,
                                                    "path_prefix": "/computeMetadata"})[0], 200)
        started = time.monotonic()
        self.assertEqual(call("GET", GCE_TOKEN_PATH, GceMetadataTest.FLAVOR)[0], 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.3)
        self.assertEqual(self.log()[-1]["fault"], "delay")

    def test_drop(self):
        self.assertEqual(control("POST", "faults", {"mode": "drop", "path_prefix": "/metadata/"})[0], 200)
        conn = http.client.HTTPConnection("127.0.0.1", FAKE.port, timeout=5)
        try:
            conn.request("GET", AZURE_PATH, headers={"Metadata": "true"})
            with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
                conn.getresponse()
        finally:
            conn.close()
        self.assertEqual(call("GET", AZURE_PATH, {"Metadata": "true"})[0], 200)
        self.assertEqual([(e["fault"], e["status"]) for e in self.log()], [("drop", None), (None, 200)])

    def test_until_cleared_with_method_filter_and_custom_answer(self):
        fault = {"status": 429, "count": -1, "method": "post", "body": '{"error":"slow down"}',
                 "content_type": "application/json", "headers": {"Retry-After": "1"}}
        self.assertEqual(control("POST", "faults", [fault])[0], 200)
        for _ in range(3):
            status, headers, body = call("POST", "/", body=sts_form())
            self.assertEqual((status, headers["Retry-After"], body), (429, "1", b'{"error":"slow down"}'))
        self.assertEqual(call("GET", "/?" + sts_form())[0], 200)  # GET is not filtered
        self.assertEqual(control("GET", "faults")[1][0]["count"], -1)
        self.assertEqual(control("DELETE", "faults")[0], 200)
        self.assertEqual(call("POST", "/", body=sts_form())[0], 200)

    def test_bad_fault_descriptions(self):
        for bad in ({"status": 200}, {"count": 0}, {"mode": "explode"}, {"path_prefix": "/__fake/x"},
                    {"mode": "delay"}, {"mode": "delay", "seconds": 1, "status": 500}, "not an object",
                    [{"status": 500}, {"status": "500"}]):
            status, document = control("POST", "faults", bad)
            self.assertEqual(status, 400, bad)
            self.assertIn("error", document)
        self.assertEqual(control("GET", "faults")[1], [])  # nothing half-added


# ---- the request log ----------------------------------------------------------

class RequestLogTest(FakeTest):
    def test_entries_name_headers_but_never_secrets(self):
        token = self.imds_token()
        call("GET", CREDS_PATH + "test-role", {IMDS_TOKEN: token})
        call("GET", "/?" + sts_form())
        call("POST", ENTRA_PATH, body=entra_form())
        call("GET", CONTAINER_PATH, {"Authorization": CONTAINER_AUTH})
        call("GET", AZURE_PATH, {"Metadata": "true"})
        call("GET", GCE_TOKEN_PATH, GceMetadataTest.FLAVOR)
        call("GET", APP_SERVICE_PATH, AzureAppServiceTest.HEADER)
        log = self.log()
        self.assertEqual([e["service"] for e in log],
                         ["ec2_imds", "ec2_imds", "sts", "entra", "container", "azure_imds", "gce_metadata",
                          "azure_app_service"])
        for entry in log:
            self.assertEqual(set(entry), {"seq", "time", "method", "path", "query", "form", "headers",
                                          "service", "expected_headers", "secrets", "issued", "fault",
                                          "status"})
            self.assertEqual(entry["status"], 200)
            self.assertAbout(entry["time"], time.time(), 10)
        self.assertEqual([e["seq"] for e in log], sorted(e["seq"] for e in log))
        self.assertEqual(log[1]["path"], CREDS_PATH + "test-role")
        self.assertIn(IMDS_TOKEN.lower(), [h.lower() for h in log[1]["headers"]])
        self.assertEqual(log[1]["expected_headers"], {IMDS_TOKEN: True})
        self.assertEqual(log[2]["query"]["WebIdentityToken"], "<redacted>")
        self.assertEqual(log[2]["query"]["RoleArn"], ROLE_ARN)
        self.assertEqual(log[3]["form"]["client_assertion"], "<redacted>")
        self.assertEqual(log[3]["form"]["client_id"], CLIENT)
        self.assertEqual(log[5]["query"]["resource"], "https://storage.azure.com/")
        dump = json.dumps(log)
        for secret in SECRET_VALUES + [token]:
            self.assertNotIn(secret, dump)

    def test_clear_and_control_requests_are_not_logged(self):
        call("GET", "/no/such/path")
        log = self.log()
        self.assertEqual([(e["service"], e["status"]) for e in log], [(None, 404)])
        self.assertEqual(control("DELETE", "requests"), (200, {"cleared": 1}))
        control("GET", "health")
        control("GET", "faults")
        self.assertEqual(self.log(), [])
        self.assertEqual(control("GET", "no-such-operation")[0], 404)


# ---- HTTP and lifecycle -------------------------------------------------------

class HttpTest(FakeTest):
    def test_keep_alive_and_content_length(self):
        conn = http.client.HTTPConnection("127.0.0.1", FAKE.port, timeout=5)
        try:
            requests = [("PUT", "/latest/api/token", {TTL: "60"}, 200),
                        ("GET", CREDS_PATH, {}, 401),
                        ("GET", AZURE_PATH, {}, 400),
                        ("GET", GCE_TOKEN_PATH, {}, 403),
                        ("GET", "/nothing-here", {}, 404),
                        ("POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, 200)]
            sock = None
            for method, path, headers, expected in requests:
                body = sts_form() if method == "POST" else None
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self.assertEqual((response.status, response.version), (expected, 11), path)
                self.assertEqual(int(response.getheader("Content-Length")), len(data))
                self.assertIsNone(response.getheader("Connection"))
                sock = sock or conn.sock
                self.assertIs(conn.sock, sock)  # the same connection all along
        finally:
            conn.close()

    def test_chunked_request_body(self):
        conn = http.client.HTTPConnection("127.0.0.1", FAKE.port, timeout=5)
        try:
            body = sts_form().encode()
            conn.request("POST", "/", body=iter([body[:10], body[10:]]), encode_chunked=True,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            response = conn.getresponse()
            self.assertEqual(response.status, 200, response.read())
        finally:
            conn.close()

    def test_stop_ends_open_connections_and_delays(self):
        other = ce.CredentialEndpoints(BASE).start()
        idle = socket.create_connection(("127.0.0.1", other.port))  # an idle keep-alive client
        other.add_fault({"mode": "delay", "seconds": 60})
        result = {}

        def delayed():
            conn = http.client.HTTPConnection("127.0.0.1", other.port, timeout=30)
            try:
                conn.request("GET", "/")
                result["status"] = conn.getresponse().status
            except (OSError, http.client.HTTPException) as exc:
                result["error"] = exc
            finally:
                conn.close()
        thread = threading.Thread(target=delayed)
        thread.start()
        deadline = time.monotonic() + 5
        while not other.requests() and len(other._server.connections) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)  # let the request reach its delay
        started = time.monotonic()
        other.stop()
        thread.join(10)
        idle.close()
        self.assertLess(time.monotonic() - started, 5)
        self.assertFalse(thread.is_alive())
        self.assertIn("error", result)  # closed, not answered after the delay
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", other.port), timeout=2).close()


class CommandLineTest(unittest.TestCase):
    def test_process_with_config_and_port_file(self):
        with tempfile.TemporaryDirectory(prefix="credential-endpoints-") as tmp:
            config = os.path.join(tmp, "config.json")
            with open(config, "w") as f:
                json.dump({"lifetime_seconds": 5, "aws": {"role_name": "cli-role"}}, f)
            port_file = os.path.join(tmp, "port")
            process = subprocess.Popen([PYTHON, SCRIPT, "--port", "0", "--config", config,
                                        "--port-file", port_file],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                deadline = time.monotonic() + 10
                while not os.path.exists(port_file) and time.monotonic() < deadline \
                        and process.poll() is None:
                    time.sleep(0.02)
                with open(port_file) as f:
                    port = int(f.read())
                url = "http://127.0.0.1:%d" % port
                request = urllib.request.Request(url + "/latest/api/token", method="PUT",
                                                 headers={TTL: "60"})
                token = OPENER.open(request, timeout=5).read().decode()
                request = urllib.request.Request(url + CREDS_PATH, headers={IMDS_TOKEN: token})
                self.assertEqual(OPENER.open(request, timeout=5).read(), b"cli-role")
                process.terminate()
                self.assertEqual(process.wait(10), 0)
                self.assertIn(b"listening on " + url.encode(), process.stdout.read())
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
                process.stdout.close()
                process.stderr.close()

    def test_bad_configuration_is_refused(self):
        with tempfile.TemporaryDirectory(prefix="credential-endpoints-") as tmp:
            config = os.path.join(tmp, "config.json")
            with open(config, "w") as f:
                json.dump({"lifetime_seconds": "soon"}, f)
            result = subprocess.run([PYTHON, SCRIPT, "--config", config], capture_output=True, timeout=10)
            self.assertEqual(result.returncode, 2)
            self.assertIn(b"lifetime_seconds", result.stderr)


def leftovers():
    """Threads or a listening socket that outlived stop()."""
    left = [t.name for t in threading.enumerate() if t.name.startswith("credential-endpoints")]
    try:
        socket.create_connection(("127.0.0.1", FAKE.port), timeout=1).close()
        left.append("port %d still listening" % FAKE.port)
    except OSError:
        pass
    return left


if __name__ == "__main__":
    sys.exit(runner.run("credential_endpoints", FAKE,
                        [Ec2MetadataTest, ContainerTest, StsTest, AzureManagedIdentityTest, AzureAppServiceTest, EntraTest,
                         GceMetadataTest, RotationTest, FaultTest, RequestLogTest, HttpTest,
                         CommandLineTest],
                        leftovers))
