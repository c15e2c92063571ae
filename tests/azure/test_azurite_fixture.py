#!/usr/bin/python3
"""Self-test of the Azure Blob fixture (run-azurite.sh, azproxy.py, Azurite,
sdkclient.mjs).

Run with Debian's Python: /usr/bin/python3 tests/azure/test_azurite_fixture.py
Prints "N passed, N failed" last and exits non-zero on any failure.
AZURE_FIXTURE_TEST_PORT picks the proxy's port (default: any free one); the
fixture's directory is made under $TMPDIR and removed at the end.

Requests are made two ways: with the SDK (sdkclient.mjs), and with a small
Shared Key / SAS signer written here from Microsoft's documentation, so the
tests also pin down the string-to-sign forms Azurite accepts.
"""

import base64
import email.utils
import hashlib
import hmac
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
from xml.etree import ElementTree

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "system"))

import runner  # noqa: E402

RUN = os.path.join(HERE, "run-azurite.sh")
SDKCLIENT = os.path.join(HERE, "sdkclient.mjs")
ACCOUNT = "devstoreaccount1"
CONTAINER = "test-container"
OTHER_CONTAINER = "other-container"
MIB = 1024 * 1024


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_running(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Fixture:
    """The fixture under test, started once for all cases."""

    def __init__(self):
        self.dir = None
        self.port = None
        self.env = {}
        self.pids = []

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="azure-fixture-test-")
        self.port = int(os.environ.get("AZURE_FIXTURE_TEST_PORT") or
                        free_port())
        subprocess.run([RUN, "start", self.dir, str(self.port)], check=True,
                       stdout=subprocess.DEVNULL, timeout=300)
        with open(os.path.join(self.dir, "azurite.env")) as handle:
            for line in handle:
                name, _, value = line.strip().partition("=")
                self.env[name] = value.strip('"')
        for name in ("proxy.pid", "azurite.pid"):
            with open(os.path.join(self.dir, name)) as handle:
                self.pids.append(int(handle.read()))

    def stop(self):
        """Safe to call more than once."""
        if self.dir is None:
            return
        subprocess.run([RUN, "stop", self.dir], timeout=60)
        if not os.environ.get("AZURE_FIXTURE_TEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def leftovers(self):
        return [f"process {pid}" for pid in self.pids
                if process_running(pid)]

    @property
    def key(self):
        return base64.b64decode(self.env["AZURE_ACCOUNT_KEY"])


FX = Fixture()


# -- helpers ------------------------------------------------------------------


def sdk(*args, env=None, check=True):
    """Run sdkclient.mjs; returns (exit code, stdout JSON or None,
    stderr JSON or text)."""
    full_env = {**os.environ, **FX.env, **(env or {})}
    proc = subprocess.run(["node", SDKCLIENT, *args], env=full_env,
                          capture_output=True, text=True, timeout=120)
    out = json.loads(proc.stdout) if proc.stdout.strip() else None
    try:
        err = json.loads(proc.stderr) if proc.stderr.strip() else None
    except ValueError:
        err = proc.stderr
    if check and proc.returncode != 0:
        raise AssertionError(f"sdkclient {args} failed: {proc.stderr}")
    return proc.returncode, out, err


def blob_path(blob, container=CONTAINER):
    return f"/{ACCOUNT}/{container}/{urllib.parse.quote(blob)}"


SIGNED_STANDARD_HEADERS = (
    "content-encoding", "content-language", "content-length", "content-md5",
    "content-type", "date", "if-modified-since", "if-match", "if-none-match",
    "if-unmodified-since", "range")


def shared_key_headers(method, path, query, headers, key=None,
                       resource=None):
    """Headers with a Shared Key Authorization (version 2009-09-19 and
    later form).  The canonicalized resource is "/ACCOUNT" + the request
    path as sent (percent-encoded, account segment included: path style
    gives "/devstoreaccount1/devstoreaccount1/container/blob"), then each
    query parameter "\\nname:value" (lower-case names, sorted, values
    decoded).  `resource` overrides that path part, to try other forms."""
    lower = {k.lower(): v for k, v in headers.items()}
    lower.setdefault("x-ms-date", email.utils.formatdate(usegmt=True))
    lower.setdefault("x-ms-version", "2021-08-06")
    values = [lower.get(name, "") for name in SIGNED_STANDARD_HEADERS]
    if values[2] == "0":  # Content-Length 0 is signed as ""
        values[2] = ""
    canonical_headers = "".join(
        f"{name}:{lower[name]}\n"
        for name in sorted(n for n in lower if n.startswith("x-ms-")))
    canonical_resource = f"/{ACCOUNT}{path if resource is None else resource}"
    for name in sorted(query):
        canonical_resource += f"\n{name.lower()}:{query[name]}"
    string_to_sign = (method + "\n" + "\n".join(values) + "\n" +
                      canonical_headers + canonical_resource)
    digest = hmac.new(key or FX.key, string_to_sign.encode(),
                      hashlib.sha256).digest()
    lower["authorization"] = (f"SharedKey {ACCOUNT}:"
                              f"{base64.b64encode(digest).decode()}")
    return lower


def connection(port=None):
    return http.client.HTTPConnection("127.0.0.1", port or FX.port,
                                      timeout=30)


def signed_request(method, path, query=None, headers=None, body=b"",
                   key=None, resource=None, conn=None, port=None):
    """One Shared Key request through the proxy; (status, headers, body)."""
    query = query or {}
    headers = dict(headers or {})
    if body or method == "PUT":
        headers["Content-Length"] = str(len(body))
    signed = shared_key_headers(method, path, query, headers, key, resource)
    target = path + ("?" + urllib.parse.urlencode(query) if query else "")
    own = conn is None
    conn = conn or connection(port)
    try:
        conn.request(method, target, body=body, headers=signed)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        if own:
            conn.close()


def put_blob(blob, data, container=CONTAINER):
    status, _, body = signed_request(
        "PUT", blob_path(blob, container), body=data,
        headers={"x-ms-blob-type": "BlockBlob"})
    assert status == 201, (status, body)


def sas_query(blob, permissions, expiry, start="", protocol="",
              version="2021-08-06", key=None, **overrides):
    """A blob service SAS (sr=b) made here from the documented string to
    sign (version 2020-12-06 and later form); overrides: rscc, rscd, rsce,
    rscl, rsct."""
    fields = [permissions, start, expiry,
              f"/blob/{ACCOUNT}/{CONTAINER}/{blob}",
              "",  # si
              "",  # sip
              protocol, version, "b",
              "",  # snapshot time
              "",  # ses
              overrides.get("rscc", ""), overrides.get("rscd", ""),
              overrides.get("rsce", ""), overrides.get("rscl", ""),
              overrides.get("rsct", "")]
    string_to_sign = "\n".join(fields)
    signature = base64.b64encode(hmac.new(
        key or FX.key, string_to_sign.encode(),
        hashlib.sha256).digest()).decode()
    query = [("sv", version)]
    if protocol:
        query.append(("spr", protocol))
    if start:
        query.append(("st", start))
    query += [("se", expiry), ("sr", "b"), ("sp", permissions)]
    for name in ("rscc", "rscd", "rsce", "rscl", "rsct"):
        if overrides.get(name):
            query.append((name, overrides[name]))
    query.append(("sig", signature))
    return urllib.parse.urlencode(query, quote_via=urllib.parse.quote), \
        signature, string_to_sign


def anonymous_get(target):
    conn = connection()
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def control(method, name, document=None):
    conn = connection()
    try:
        body = None if document is None else json.dumps(document).encode()
        conn.request(method, "/__fixture/" + name, body=body,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def error_code(body):
    return ElementTree.fromstring(body).findtext("Code")


def write_file(name, data):
    path = os.path.join(FX.dir, name)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def read_file(path):
    with open(path, "rb") as handle:
        return handle.read()


def wait_until(predicate, timeout=10.0, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


# -- the cases ----------------------------------------------------------------


class ContainerTests(unittest.TestCase):
    def test_containers_exist(self):
        for name in (CONTAINER, OTHER_CONTAINER):
            _, out, _ = sdk("list", name)
            self.assertIsInstance(out["blobs"], list)

    def test_missing_container_is_404(self):
        code, _, err = sdk("list", "no-such-container", check=False)
        self.assertEqual(code, 1)
        self.assertEqual((err["statusCode"], err["errorCode"]),
                         (404, "ContainerNotFound"))

    def test_env_file(self):
        self.assertEqual(FX.env["AZURE_ENDPOINT"],
                         f"http://127.0.0.1:{FX.port}/{ACCOUNT}")
        self.assertEqual(FX.env["AZURE_ACCOUNT"], ACCOUNT)
        self.assertEqual(FX.env["AZURE_CONTAINER"], CONTAINER)
        self.assertEqual(FX.env["AZURE_FIXTURE_DIR"], FX.dir)

    def test_start_again_is_a_no_op(self):
        proc = subprocess.run([RUN, "start", FX.dir, str(FX.port)],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("already running", proc.stdout)


class SdkRoundTripTests(unittest.TestCase):
    def test_put_get_props_list_delete(self):
        data = os.urandom(300_000)
        source = write_file("roundtrip.bin", data)
        _, put, _ = sdk("put", CONTAINER, "rt/a b+ü.bin", source,
                        "--content-type", "application/x-test",
                        "--metadata", "color=blue", "--metadata", "n=1")
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        self.assertEqual(put["contentMD5"], md5)

        out = os.path.join(FX.dir, "roundtrip.out")
        _, got, _ = sdk("get", CONTAINER, "rt/a b+ü.bin", out)
        self.assertEqual(read_file(out), data)
        self.assertEqual(got["etag"], put["etag"])
        self.assertEqual(got["contentType"], "application/x-test")
        self.assertEqual(got["metadata"], {"color": "blue", "n": "1"})

        _, part, _ = sdk("get", CONTAINER, "rt/a b+ü.bin", out,
                         "--offset", "1000", "--count", "10")
        self.assertEqual(read_file(out), data[1000:1010])
        self.assertEqual(part["contentRange"], "bytes 1000-1009/300000")

        _, props, _ = sdk("props", CONTAINER, "rt/a b+ü.bin")
        self.assertEqual(props["contentLength"], len(data))
        self.assertEqual(props["contentMD5"], md5)
        self.assertEqual(props["blobType"], "BlockBlob")
        self.assertEqual(props["etag"], put["etag"])

        _, listing, _ = sdk("list", CONTAINER, "--prefix", "rt/")
        self.assertEqual(listing["blobs"][0]["name"], "rt/a b+ü.bin")
        self.assertEqual(listing["blobs"][0]["size"], len(data))

        sdk("delete", CONTAINER, "rt/a b+ü.bin")
        code, _, err = sdk("props", CONTAINER, "rt/a b+ü.bin", check=False)
        self.assertEqual((code, err["statusCode"], err["errorCode"]),
                         (1, 404, "BlobNotFound"))

    def test_block_upload_counts_operations(self):
        data = os.urandom(2 * MIB + 5)
        source = write_file("blocks.bin", data)
        control("DELETE", "stats")
        sdk("put", CONTAINER, "blocks.bin", source, "--block-size", str(MIB))
        _, stats = control("GET", "stats")
        self.assertEqual(stats["operations"].get("PutBlock"), 3)
        self.assertEqual(stats["operations"].get("PutBlockList"), 1)
        out = os.path.join(FX.dir, "blocks.out")
        sdk("get", CONTAINER, "blocks.bin", out)
        self.assertEqual(read_file(out), data)


class SharedKeyTests(unittest.TestCase):
    """Azurite verifies Shared Key signatures (also without --loose)."""

    @classmethod
    def setUpClass(cls):
        cls.data = b"shared key test\n"
        put_blob("sk/obj.txt", cls.data)

    def test_right_key_path_style_resource(self):
        # Signed over "/devstoreaccount1/devstoreaccount1/test-container/..."
        status, _, body = signed_request("GET", blob_path("sk/obj.txt"))
        self.assertEqual((status, body), (200, self.data))

    def test_wrong_key_is_refused(self):
        wrong = hashlib.sha512(b"not the key").digest()
        status, headers, body = signed_request(
            "GET", blob_path("sk/obj.txt"), key=wrong)
        self.assertEqual(status, 403)
        # Azurite answers AuthorizationFailure where Azure answers
        # AuthenticationFailed.
        self.assertEqual(headers["x-ms-error-code"], "AuthorizationFailure")
        self.assertEqual(error_code(body), "AuthorizationFailure")

    def test_wrong_key_through_the_sdk(self):
        wrong = base64.b64encode(b"w" * 64).decode()
        code, _, err = sdk("props", CONTAINER, "sk/obj.txt",
                           env={"AZURE_ACCOUNT_KEY": wrong}, check=False)
        self.assertEqual((code, err["statusCode"], err["errorCode"]),
                         (1, 403, "AuthorizationFailure"))

    def test_resource_without_account_segment_is_refused(self):
        status, _, _ = signed_request(
            "GET", blob_path("sk/obj.txt"),
            resource=f"/{CONTAINER}/sk/obj.txt")
        self.assertEqual(status, 403)

    def test_decoded_path_is_refused(self):
        put_blob("sk/a b.txt", b"x")
        path = blob_path("sk/a b.txt")  # .../sk/a%20b.txt
        self.assertEqual(signed_request("GET", path)[0], 200)
        status, _, _ = signed_request(
            "GET", path, resource=urllib.parse.unquote(path))
        self.assertEqual(status, 403)

    def test_query_is_signed(self):
        query = {"restype": "container", "comp": "list", "prefix": "sk/"}
        status, _, body = signed_request("GET", f"/{ACCOUNT}/{CONTAINER}",
                                         query)
        self.assertEqual(status, 200, body)
        signed = shared_key_headers("GET", f"/{ACCOUNT}/{CONTAINER}", query,
                                    {})
        conn = connection()
        try:  # send another prefix than the one signed
            conn.request("GET", f"/{ACCOUNT}/{CONTAINER}?restype=container"
                         "&comp=list&prefix=zz", headers=signed)
            response = conn.getresponse()
            response.read()
            self.assertEqual(response.status, 403)
        finally:
            conn.close()

    def test_x_ms_header_added_after_signing_is_refused(self):
        signed = shared_key_headers("GET", blob_path("sk/obj.txt"), {}, {})
        signed["x-ms-meta-extra"] = "1"
        conn = connection()
        try:
            conn.request("GET", blob_path("sk/obj.txt"), headers=signed)
            response = conn.getresponse()
            response.read()
            self.assertEqual(response.status, 403)
        finally:
            conn.close()

    def test_host_is_not_signed(self):
        # The proxy passes Host through unchanged; Azurite ignores it for
        # path-style URLs (--disableProductStyleUrl), so a request signed
        # for the proxy is also valid sent straight to Azurite.
        signed = shared_key_headers("GET", blob_path("sk/obj.txt"), {}, {})
        signed["Host"] = "elsewhere.example:1234"
        conn = connection(int(FX.env["AZURITE_PORT"]))
        try:
            conn.request("GET", blob_path("sk/obj.txt"), headers=signed)
            response = conn.getresponse()
            self.assertEqual((response.status, response.read()),
                             (200, self.data))
        finally:
            conn.close()

    def test_unsigned_request_is_refused(self):
        status, _, body = anonymous_get(blob_path("sk/obj.txt"))
        self.assertEqual((status, error_code(body)),
                         (403, "AuthorizationFailure"))


class SasTests(unittest.TestCase):
    START = "2020-01-01T00:00:00Z"
    EXPIRY = "2035-01-01T00:00:00Z"

    @classmethod
    def setUpClass(cls):
        cls.blob = "sas/report 1.txt"
        cls.data = b"sas test body\n"
        put_blob(cls.blob, cls.data)

    def sdk_sas(self, *extra):
        _, out, _ = sdk("sas", CONTAINER, self.blob, "--permissions", "r",
                        "--start", self.START, "--expiry", self.EXPIRY,
                        "--protocol", "https,http", "--version", "2021-08-06",
                        *extra)
        return out

    def test_sdk_sas_reads(self):
        out = self.sdk_sas("--content-disposition", 'attachment; filename="r.txt"',
                           "--cache-control", "no-cache")
        target = os.path.join(FX.dir, "sas.out")
        _, got, _ = sdk("get-url", out["url"], target)
        self.assertEqual(read_file(target), self.data)
        self.assertEqual(got["contentDisposition"],
                         'attachment; filename="r.txt"')
        self.assertEqual(got["cacheControl"], "no-cache")

    def test_sdk_and_documented_string_to_sign_agree(self):
        out = self.sdk_sas("--content-type", "text/x-a")
        _, signature, string_to_sign = sas_query(
            self.blob, "r", self.EXPIRY, self.START, "https,http",
            rsct="text/x-a")
        self.assertEqual(out["stringToSign"], string_to_sign)
        self.assertEqual(out["signature"], signature)
        # The canonicalized resource of a blob SAS:
        self.assertIn(f"\n/blob/{ACCOUNT}/{CONTAINER}/{self.blob}\n",
                      string_to_sign)

    def test_tampered_sas_is_refused(self):
        url = self.sdk_sas("--cache-control", "no-cache")["url"]
        target = os.path.join(FX.dir, "tampered.out")
        for old, new in (("sp=r", "sp=rw"), ("rscc=no-cache", "rscc=public"),
                         ("se=2035", "se=2036")):
            self.assertIn(old, url)
            code, _, err = sdk("get-url", url.replace(old, new), target,
                               check=False)
            self.assertEqual((code, err["statusCode"], err["errorCode"]),
                             (1, 403, "AuthorizationFailure"), old)

    def test_sas_signed_with_wrong_key_is_refused(self):
        query, _, _ = sas_query(self.blob, "r", self.EXPIRY,
                                key=b"k" * 64)
        status, _, body = anonymous_get(blob_path(self.blob) + "?" + query)
        self.assertEqual((status, error_code(body)),
                         (403, "AuthorizationFailure"))

    def test_sas_made_here_reads(self):
        query, _, _ = sas_query(self.blob, "r", self.EXPIRY,
                                rscd="inline")
        status, headers, body = anonymous_get(blob_path(self.blob) + "?" +
                                              query)
        self.assertEqual((status, body), (200, self.data))
        self.assertEqual(headers["Content-Disposition"], "inline")

    def test_expired_and_not_yet_valid(self):
        for kwargs in ({"expiry": "2020-01-02T00:00:00Z"},
                       {"expiry": self.EXPIRY,
                        "start": "2034-01-01T00:00:00Z"}):
            query, _, _ = sas_query(self.blob, "r", **kwargs)
            status, _, body = anonymous_get(blob_path(self.blob) + "?" +
                                            query)
            self.assertEqual((status, error_code(body)),
                             (403, "AuthorizationFailure"), kwargs)

    def test_https_only_sas_is_refused_over_http(self):
        query, _, _ = sas_query(self.blob, "r", self.EXPIRY,
                                protocol="https")
        status, _, body = anonymous_get(blob_path(self.blob) + "?" + query)
        self.assertEqual((status, error_code(body)),
                         (403, "AuthorizationProtocolMismatch"))

    def test_permission_is_checked(self):
        query, _, _ = sas_query(self.blob, "w", self.EXPIRY)
        status, _, body = anonymous_get(blob_path(self.blob) + "?" + query)
        self.assertEqual((status, error_code(body)),
                         (403, "AuthorizationPermissionMismatch"))

    def test_put_url(self):
        _, out, _ = sdk("sas", CONTAINER, "sas/upload.bin", "--permissions",
                        "cw", "--expiry", self.EXPIRY)
        data = os.urandom(5000)
        _, put, _ = sdk("put-url", out["url"], write_file("up.bin", data),
                        "--content-type", "application/x-up")
        target = os.path.join(FX.dir, "up.out")
        _, got, _ = sdk("get", CONTAINER, "sas/upload.bin", target)
        self.assertEqual(read_file(target), data)
        self.assertEqual(got["etag"], put["etag"])
        self.assertEqual(got["contentType"], "application/x-up")


class FaultTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.data = b"fault test\n"
        put_blob("faults/obj.txt", cls.data)

    def setUp(self):
        control("DELETE", "faults")
        control("DELETE", "stats")

    def tearDown(self):
        control("DELETE", "faults")

    def get(self, conn=None):
        return signed_request("GET", blob_path("faults/obj.txt"), conn=conn)

    def test_503_once_then_success(self):
        status, document = control("POST", "faults", {
            "mode": "error", "status": 503, "operation": "GetBlob"})
        self.assertEqual((status, document["ok"]), (200, True))
        status, headers, body = self.get()
        self.assertEqual(status, 503)
        self.assertEqual(headers["x-ms-error-code"], "ServerBusy")
        self.assertTrue(body.startswith(
            b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy'))
        self.assertEqual(error_code(body), "ServerBusy")
        self.assertEqual(self.get()[:3:2], (200, self.data))
        _, stats = control("GET", "stats")
        self.assertEqual(stats["operations"], {"GetBlob": 2})
        self.assertEqual(stats["statuses"], {"503": 1, "200": 1})
        self.assertEqual(stats["faults_injected"], {"error": 1})

    def test_500_internal_error(self):
        control("POST", "faults", {"mode": "error", "status": 500})
        status, headers, body = self.get()
        self.assertEqual((status, headers["x-ms-error-code"],
                          error_code(body)),
                         (500, "InternalError", "InternalError"))

    def test_count_and_filters(self):
        control("POST", "faults", [
            {"mode": "error", "count": 2, "operation": "GetBlob"},
            {"mode": "error", "count": 1, "method": "HEAD"}])
        _, rules = control("GET", "faults")
        self.assertEqual(len(rules["rules"]), 2)
        self.assertEqual(self.get()[0], 503)
        self.assertEqual(self.get()[0], 503)
        self.assertEqual(self.get()[0], 200)
        status, _, _ = signed_request("HEAD", blob_path("faults/obj.txt"))
        self.assertEqual(status, 503)
        self.assertEqual(signed_request(
            "HEAD", blob_path("faults/obj.txt"))[0], 200)

    def test_forever_until_reset(self):
        control("POST", "faults", {"mode": "error", "count": -1})
        for _ in range(3):
            self.assertEqual(self.get()[0], 503)
        control("DELETE", "faults")
        self.assertEqual(self.get()[0], 200)

    def test_sdk_retries_through_faults(self):
        control("POST", "faults", {"mode": "error", "count": 2,
                                   "operation": "GetBlob"})
        target = os.path.join(FX.dir, "retried.out")
        sdk("get", CONTAINER, "faults/obj.txt", target, "--max-tries", "3")
        self.assertEqual(read_file(target), self.data)
        _, stats = control("GET", "stats")
        self.assertEqual(stats["operations"]["GetBlob"], 3)

    def test_sdk_without_retries_sees_the_error(self):
        control("POST", "faults", {"mode": "error", "operation": "GetBlob"})
        code, _, err = sdk("get", CONTAINER, "faults/obj.txt",
                           os.path.join(FX.dir, "x.out"), check=False)
        self.assertEqual((code, err["statusCode"], err["errorCode"]),
                         (1, 503, "ServerBusy"))

    def test_error_on_upload_keeps_connection_usable(self):
        control("POST", "faults", {"mode": "error", "operation": "PutBlob"})
        conn = connection()
        try:
            body = os.urandom(MIB)
            status, _, _ = signed_request(
                "PUT", blob_path("faults/up.bin"), body=body,
                headers={"x-ms-blob-type": "BlockBlob"}, conn=conn)
            self.assertEqual(status, 503)
            status, _, _ = signed_request(
                "PUT", blob_path("faults/up.bin"), body=body,
                headers={"x-ms-blob-type": "BlockBlob"}, conn=conn)
            self.assertEqual(status, 201)
            self.assertEqual(self.get(conn=conn)[0], 200)
        finally:
            conn.close()
        _, stats = control("GET", "stats")
        # The rule's, ours and this one's.
        self.assertEqual(stats["connections_accepted"], 3)

    def test_drop(self):
        control("POST", "faults", {"mode": "drop"})
        with self.assertRaises(http.client.RemoteDisconnected):
            self.get()
        self.assertEqual(self.get()[0], 200)
        control("POST", "faults", {"mode": "drop", "reset": True})
        with self.assertRaises(ConnectionResetError):
            self.get()
        self.assertEqual(self.get()[0], 200)
        _, stats = control("GET", "stats")
        self.assertEqual(stats["faults_injected"], {"drop": 2})

    def test_delay(self):
        control("POST", "faults", {"mode": "delay", "seconds": 0.4})
        started = time.monotonic()
        self.assertEqual(self.get()[0], 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.4)

    def test_down_for_a_while(self):
        started = time.monotonic()
        status, _ = control("POST", "faults", {"mode": "down",
                                               "seconds": 1.0})
        self.assertEqual(status, 200)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", FX.port), 1).close()
        self.assertTrue(wait_until(lambda: port_open(FX.port), 10))
        self.assertGreaterEqual(time.monotonic() - started, 0.9)
        self.assertEqual(self.get()[0], 200)
        _, stats = control("GET", "stats")
        self.assertEqual(stats["faults_injected"], {"down": 1})

    def test_bad_rules_are_refused(self):
        for rule in ({"mode": "explode"}, {"mode": "error", "status": 404},
                     {"mode": "error", "count": 0},
                     {"mode": "fail_part", "part": 1}):
            status, document = control("POST", "faults", rule)
            self.assertEqual(status, 400, rule)
            self.assertIn("error", document)
        self.assertEqual(control("GET", "faults")[1], {"rules": []})


class OperationNameTests(unittest.TestCase):
    def test_names(self):
        control("DELETE", "stats")
        path = blob_path("ops/obj.txt")
        put_blob("ops/obj.txt", b"1")
        signed_request("PUT", path, {"comp": "block",
                                     "blockid": "YWFhYQ=="}, body=b"2")
        signed_request("PUT", path, {"comp": "blocklist"},
                       body=b'<?xml version="1.0" encoding="utf-8"?>'
                            b"<BlockList><Latest>YWFhYQ==</Latest>"
                            b"</BlockList>")
        signed_request("PUT", blob_path("ops/copy.txt"), headers={
            "x-ms-copy-source":
                f"http://127.0.0.1:{FX.port}{path}"})
        signed_request("HEAD", path)
        signed_request("GET", path)
        signed_request("PUT", path, {"comp": "metadata"},
                       headers={"x-ms-meta-a": "b"})
        signed_request("PUT", path, {"comp": "tags"},
                       body=b'<?xml version="1.0" encoding="utf-8"?><Tags>'
                            b"<TagSet><Tag><Key>k</Key><Value>v</Value></Tag>"
                            b"</TagSet></Tags>")
        signed_request("GET", path, {"comp": "tags"})
        signed_request("GET", f"/{ACCOUNT}/{CONTAINER}",
                       {"restype": "container", "comp": "list"})
        signed_request("PUT", f"/{ACCOUNT}/ops-container",
                       {"restype": "container"})
        signed_request("PUT", blob_path("ops/copy.txt"), {"comp": "lease"},
                       headers={"x-ms-lease-action": "acquire",
                                "x-ms-lease-duration": "15"})  # Other
        signed_request("DELETE", path)
        _, stats = control("GET", "stats")
        self.assertEqual(stats["operations"], {
            "PutBlob": 1, "PutBlock": 1, "PutBlockList": 1, "CopyBlob": 1,
            "GetBlobProperties": 1, "GetBlob": 1, "SetBlobMetadata": 1,
            "SetBlobTags": 1, "GetBlobTags": 1, "ListBlobs": 1,
            "CreateContainer": 1, "DeleteBlob": 1, "Other": 1})
        # All were valid requests.
        self.assertEqual(sum(v for k, v in stats["statuses"].items()
                             if k.startswith("2")), 13, stats["statuses"])


class ProxyTests(unittest.TestCase):
    def test_20_mib_blob_streams_intact(self):
        with open(f"/proc/{FX.pids[0]}/status") as handle:
            before = _vm_hwm(handle.read())
        data = os.urandom(20 * MIB)
        source = write_file("big.bin", data)
        sdk("put", CONTAINER, "big/20mib.bin", source)
        target = os.path.join(FX.dir, "big.out")
        _, got, _ = sdk("get", CONTAINER, "big/20mib.bin", target)
        self.assertEqual(got["contentLength"], len(data))
        self.assertEqual(hashlib.sha256(read_file(target)).hexdigest(),
                         hashlib.sha256(data).hexdigest())
        with open(f"/proc/{FX.pids[0]}/status") as handle:
            after = _vm_hwm(handle.read())
        # The proxy streams: its peak memory does not grow by the body.
        self.assertLess(after - before, 8 * MIB, (before, after))

    def test_chunked_request_body_passes(self):
        # Sent the same way to the proxy and straight to Azurite: the
        # answers must agree (the proxy relays chunked framing as it is).
        results = []
        for port in (FX.port, int(FX.env["AZURITE_PORT"])):
            path = blob_path(f"chunked/{port}.bin")
            headers = shared_key_headers(
                "PUT", path, {}, {"x-ms-blob-type": "BlockBlob",
                                  "Transfer-Encoding": "chunked"})
            conn = connection(port)
            try:
                conn.putrequest("PUT", path, skip_host=False,
                                skip_accept_encoding=True)
                for name, value in headers.items():
                    conn.putheader(name, value)
                conn.endheaders()
                for piece in (b"hello ", b"chunked ", b"world"):
                    conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                conn.send(b"0\r\n\r\n")
                response = conn.getresponse()
                response.read()
                results.append(response.status)
            finally:
                conn.close()
        self.assertEqual(results[0], results[1])

    def test_expect_100_continue(self):
        body = os.urandom(100_000)
        path = blob_path("expect.bin")
        headers = shared_key_headers(
            "PUT", path, {}, {"x-ms-blob-type": "BlockBlob",
                              "Content-Length": str(len(body))})
        headers["Expect"] = "100-continue"
        with socket.create_connection(("127.0.0.1", FX.port), 10) as sock:
            head = f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{FX.port}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            sock.sendall((head + "\r\n").encode())
            rfile = sock.makefile("rb")
            self.assertTrue(rfile.readline().startswith(b"HTTP/1.1 100"))
            while rfile.readline() not in (b"\r\n", b""):
                pass
            sock.sendall(body)
            self.assertTrue(rfile.readline().startswith(b"HTTP/1.1 201"))
        status, _, got = signed_request("GET", path)
        self.assertEqual((status, got), (200, body))

    def test_keep_alive(self):
        control("DELETE", "stats")
        conn = connection()
        try:
            for _ in range(5):
                self.assertEqual(signed_request(
                    "GET", f"/{ACCOUNT}/{CONTAINER}",
                    {"restype": "container", "comp": "list"},
                    conn=conn)[0], 200)
        finally:
            conn.close()
        _, stats = control("GET", "stats")
        self.assertEqual(stats["connections_accepted"], 2)  # ours + stats
        self.assertEqual(stats["operations"], {"ListBlobs": 5})

    def test_health(self):
        status, document = control("GET", "health")
        self.assertEqual(status, 200)
        self.assertTrue(document["ok"])
        self.assertTrue(document["upstream_server"].startswith(
            "Azurite-Blob/3.37.0"))


def _vm_hwm(status_text):
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


class ApiVersionCheckTests(unittest.TestCase):
    """AZURE_FIXTURE_API_VERSION_CHECK=1: a second fixture whose Azurite
    refuses x-ms-version values it does not list."""

    def test_strict_api_versions(self):
        directory = os.path.join(FX.dir, "strict")
        port = free_port()
        env = dict(os.environ, AZURE_FIXTURE_API_VERSION_CHECK="1",
                   AZURE_FIXTURE_CONTAINERS="strict-container")
        try:
            subprocess.run([RUN, "start", directory, str(port)], env=env,
                           check=True, stdout=subprocess.DEVNULL, timeout=120)
            for name in ("proxy.pid", "azurite.pid"):
                with open(os.path.join(directory, name)) as handle:
                    FX.pids.append(int(handle.read()))  # leftovers() checks
            path = f"/{ACCOUNT}/strict-container"
            query = {"restype": "container", "comp": "list"}
            for version, expected in (("2021-08-06", 200), ("2025-11-05", 200),
                                      ("2026-06-06", 200), ("2026-10-06", 400),
                                      ("2021-08-07", 400)):
                status, headers, _ = signed_request(
                    "GET", path, query, {"x-ms-version": version}, port=port)
                self.assertEqual(status, expected, version)
                if expected == 400:
                    self.assertEqual(headers["x-ms-error-code"],
                                     "InvalidHeaderValue")
            sdk_env = {"AZURE_ENDPOINT": f"http://127.0.0.1:{port}/{ACCOUNT}"}
            # The SDK's own version (2026-10-06) is refused...
            code, _, err = sdk("list", "strict-container", env=sdk_env,
                               check=False)
            self.assertEqual((code, err["statusCode"], err["errorCode"]),
                             (1, 400, "InvalidHeaderValue"))
            # ... unless sdkclient pins an older one.
            sdk("list", "strict-container", "--api-version", "2025-11-05",
                env=sdk_env)
        finally:
            subprocess.run([RUN, "stop", directory], timeout=60)


class StopTests(unittest.TestCase):
    """Runs last: stop must end both processes and free the port."""

    def test_stop_cleans_up(self):
        subprocess.run([RUN, "stop", FX.dir], check=True, timeout=60)
        for pid in FX.pids[:2]:
            self.assertFalse(process_running(pid), f"{pid} still runs")
        for name in ("proxy.pid", "azurite.pid"):
            self.assertFalse(os.path.exists(os.path.join(FX.dir, name)))
        self.assertFalse(port_open(FX.port))
        self.assertFalse(port_open(int(FX.env["AZURITE_PORT"])))
        # Stopping again is harmless.
        subprocess.run([RUN, "stop", FX.dir], check=True, timeout=60)


if __name__ == "__main__":
    sys.exit(runner.run("azure fixture", FX, [
        ContainerTests, SdkRoundTripTests, SharedKeyTests, SasTests,
        FaultTests, OperationNameTests, ProxyTests, ApiVersionCheckTests,
        StopTests],
        FX.leftovers))
