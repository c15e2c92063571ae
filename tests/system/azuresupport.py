"""Shared helpers of the Azure Blob system tests (tests/system/test_azure_*.py).

Not a test itself (scripts/test.sh runs only test_*.py). Each test file

    FX = azuresupport.Fixture("clients")
    ...
    sys.exit(azuresupport.main(FX, [SomeTest, OtherTest]))

gets its own database (CREATE EXTENSION stored_object; dropped at the end),
its own blob name prefix (so_systest/<name>-<pid>-<random>/) in the
fixture's containers (every blob under it removed at the end, and counted as
a failure if one remains), the official Azure SDK as the independent client
(node tests/azure/sdkclient.mjs), a small Shared Key REST client of its own
for the many cheap checks (HEAD, list, delete: a node process costs 0.4 s),
the fixture's control endpoint (faults reset at the end, whatever happens)
and the "N passed, N failed" last line (tests/system/runner.py).

Environment (exported by scripts/test.sh from the Azure fixture's
azurite.env, see tests/azure/README.md): PGHOST/PGPORT/PGUSER, AZURE_ENDPOINT
(http://127.0.0.1:PORT/devstoreaccount1, path style), AZURE_ACCOUNT,
AZURE_ACCOUNT_KEY, AZURE_CONTAINER, AZURE_FIXTURE_CONTROL. Run with Debian's
/usr/bin/python3 (python3-psycopg2 and the standard library only).

The helpers every store's tests share (Control, delta, Background, curl,
error_texts, SqlAssertions) come from storesupport.py, which needs no
boto3.
"""

import base64
import datetime
import email.utils
import hashlib
import hmac
import http.client
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import traceback
import urllib.parse
import xml.etree.ElementTree as ET


import runner
from storesupport import (Background, Control, DatabaseFixture, SqlAssertions, curl, delta, env,  # noqa: F401
                          error_texts)

HERE = os.path.dirname(os.path.abspath(__file__))
AZURE_DIR = os.path.join(os.path.dirname(HERE), "azure")
SDKCLIENT = os.path.join(AZURE_DIR, "sdkclient.mjs")
OTHER_CONTAINER = "other-container"
CURL = "/usr/bin/curl"
MIB = 1024 * 1024
# The REST and SAS version the extension speaks (azure_auth.hpp kServiceVersion);
# the REST client below speaks it too.
SERVICE_VERSION = "2021-08-06"


def iso_seconds(epoch):
    """2026-12-03T08:55:55Z, as SAS se= and st= values are written."""
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_seconds(text):
    d = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    return int(d.replace(tzinfo=datetime.timezone.utc).timestamp())


def b64md5(content):
    return base64.b64encode(hashlib.md5(content).digest()).decode()


def main(fx, cases):
    """Runs the cases against fx (started first, stopped last, whatever
    happens); prints "N passed, N failed" last; returns the exit status."""
    return runner.run(fx.name, fx, cases, fx.leftovers)


# ---- Azure: our own Shared Key REST client and SAS signer --------------------------


class RestError(Exception):
    def __init__(self, status, headers, body, what):
        self.status, self.headers, self.body = status, headers, body
        super().__init__("%s: HTTP %d %s %s" % (what, status, headers.get("x-ms-error-code", ""), body[:300]))


def quote_name(name):
    """A blob name in a URL path: UTF-8, percent-encoded, '/' kept."""
    return urllib.parse.quote(name, safe="/-_.~")


class AzureRest:
    """Blob service requests signed with Shared Key by this file (stdlib
    HMAC), independent of the extension's signer; Azurite checks every
    signature. One keep-alive connection, reopened when needed. Used for
    the checks that run many times (HEAD, list, delete) and the cleanup."""

    def __init__(self, endpoint, account, key):
        parts = urllib.parse.urlsplit(endpoint)
        self.host, self.port = parts.hostname, parts.port
        self.base_path = parts.path.rstrip("/")  # "/devstoreaccount1"
        self.account = account
        self.key = base64.b64decode(key)
        self.conn = None
        self.lock = threading.Lock()

    def sign(self, method, path, query, headers):
        h = {k.lower(): v for k, v in headers.items()}
        length = h.get("content-length", "")
        fields = [method, h.get("content-encoding", ""), h.get("content-language", ""),
                  "" if length == "0" else length]
        fields += [h.get(n, "") for n in ("content-md5", "content-type", "date", "if-modified-since", "if-match",
                                          "if-none-match", "if-unmodified-since", "range")]
        canon_headers = "".join("%s:%s\n" % (k, h[k].strip()) for k in sorted(h) if k.startswith("x-ms-"))
        resource = "/" + self.account + path
        for name in sorted({n.lower() for n, _ in query}):
            values = sorted(v for n, v in query if n.lower() == name)
            resource += "\n%s:%s" % (name, ",".join(values))
        to_sign = "\n".join(fields) + "\n" + canon_headers + resource
        sig = base64.b64encode(hmac.new(self.key, to_sign.encode(), hashlib.sha256).digest()).decode()
        return "SharedKey %s:%s" % (self.account, sig)

    def request(self, method, container, blob=None, query=(), headers=None, body=b""):
        """(status, {lowercase header: value}, body bytes)."""
        path = "%s/%s" % (self.base_path, container)
        if blob is not None:
            path += "/" + quote_name(blob)
        query = list(query)
        h = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": SERVICE_VERSION}
        h.update(headers or {})
        if body or method == "PUT":
            h["Content-Length"] = str(len(body))
        h["Authorization"] = self.sign(method, path, query, h)
        target = path + ("?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote) if query else "")
        with self.lock:
            for attempt in (0, 1):
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                try:
                    self.conn.request(method, target, body=body or None, headers=h)
                    resp = self.conn.getresponse()
                    data = resp.read()
                    rh = {k.lower(): v for k, v in resp.getheaders()}
                    if rh.get("connection", "").lower() == "close":
                        self.close()
                    return resp.status, rh, data
                except (OSError, http.client.HTTPException):
                    self.close()
                    if attempt:
                        raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def head(self, container, blob):
        """The blob's properties as lowercase headers, or None on 404."""
        status, headers, body = self.request("HEAD", container, blob)
        if status == 404:
            return None
        if status != 200:
            raise RestError(status, headers, body, "HEAD " + blob)
        return headers

    def get(self, container, blob):
        status, headers, body = self.request("GET", container, blob)
        if status != 200:
            raise RestError(status, headers, body, "GET " + blob)
        return body

    def put(self, container, blob, body, headers=None):
        h = {"x-ms-blob-type": "BlockBlob"}
        h.update(headers or {})
        status, rh, data = self.request("PUT", container, blob, headers=h, body=body)
        if status != 201:
            raise RestError(status, rh, data, "PUT " + blob)
        return rh

    def delete(self, container, blob):
        """True if deleted, False if it was not there."""
        status, headers, body = self.request("DELETE", container, blob,
                                             headers={"x-ms-delete-snapshots": "include"})
        if status == 404:
            return False
        if status != 202:
            raise RestError(status, headers, body, "DELETE " + blob)
        return True

    def tags(self, container, blob):
        status, headers, body = self.request("GET", container, blob, query=[("comp", "tags")])
        if status != 200:
            raise RestError(status, headers, body, "GET tags " + blob)
        root = ET.fromstring(body)
        return {t.findtext("Key"): t.findtext("Value") for t in root.iter("Tag")}

    def list(self, container, prefix, uncommitted=False):
        """[(name, {property: text})] of every blob whose name starts with
        prefix, through every page of List Blobs; with uncommitted, also the
        blobs that have only uncommitted blocks (what an abandoned block
        upload leaves)."""
        out, marker = [], ""
        while True:
            query = [("restype", "container"), ("comp", "list"), ("prefix", prefix), ("maxresults", "1000")]
            if uncommitted:
                query.append(("include", "uncommittedblobs"))
            if marker:
                query.append(("marker", marker))
            status, headers, body = self.request("GET", container, None, query)
            if status != 200:
                raise RestError(status, headers, body, "List Blobs " + prefix)
            root = ET.fromstring(body)
            for blob in root.iter("Blob"):
                found = blob.find("Properties")
                props = {p.tag: p.text for p in found} if found is not None else {}
                out.append((blob.findtext("Name"), props))
            marker = root.findtext("NextMarker") or ""
            if not marker:
                return out


def sas_signature(key_b64, string_to_sign):
    return base64.b64encode(hmac.new(base64.b64decode(key_b64), string_to_sign.encode(),
                                     hashlib.sha256).digest()).decode()


def container_sas(account, key_b64, container, permissions, expiry, protocol="https,http"):
    """A service SAS for a whole container (sr=c), version 2021-08-06, signed
    here ("Create a service SAS": the SDK's generateBlobSASQueryParameters
    takes no 'l' for a blob, and sdkclient signs blobs only)."""
    se = iso_seconds(expiry)
    fields = [permissions, "", se, "/blob/%s/%s" % (account, container), "", "", protocol, SERVICE_VERSION, "c",
              "", "", "", "", "", "", ""]
    sig = sas_signature(key_b64, "\n".join(fields))
    params = [("sv", SERVICE_VERSION), ("spr", protocol), ("se", se), ("sr", "c"), ("sp", permissions),
              ("sig", sig)]
    return "&".join("%s=%s" % (n, urllib.parse.quote(v, safe="")) for n, v in params)



# ---- the fixture -------------------------------------------------------------


class SdkError(Exception):
    """sdkclient.mjs exited 1: statusCode, errorCode, message from its stderr."""

    def __init__(self, info, args):
        self.info = info
        self.status = info.get("statusCode")
        self.code = info.get("errorCode")
        super().__init__("sdkclient %s: %s" % (" ".join(args[:3]), info))


class Fixture(DatabaseFixture):
    """The database, blob prefix, clients and cleanup of one test file."""

    def __init__(self, name):
        self.name = name
        super().__init__("so_az_%s_%d" % (name, os.getpid()))
        self.prefix = "so_systest/%s-%d-%s" % (name, os.getpid(), secrets.token_hex(4))
        self.control = None
        self.rest = None
        self.containers = set()

    # ---- setup / teardown ---------------------------------------------------

    def start(self):
        self.endpoint = env("AZURE_ENDPOINT").rstrip("/")
        parts = urllib.parse.urlsplit(self.endpoint)
        assert parts.hostname in ("127.0.0.1", "localhost"), "loopback only: " + self.endpoint
        self.authority = parts.netloc
        self.account = env("AZURE_ACCOUNT")
        self.account_key = env("AZURE_ACCOUNT_KEY")
        self.container = env("AZURE_CONTAINER")
        self.containers = {self.container}
        self.secrets = [self.account_key]
        self.node = shutil.which("node")
        if not self.node or not os.path.exists(SDKCLIENT):
            raise RuntimeError("node and %s are needed (the Azure SDK client)" % SDKCLIENT)
        self.control = Control(env("AZURE_FIXTURE_CONTROL"), "Azure")
        self.control.wait_healthy()
        self.control.reset_faults()
        self.rest = AzureRest(self.endpoint, self.account, self.account_key)

        self.create_database()

    def stop(self):
        for step in (self.reset_faults, self.close_connections, self.drop_database, self.remove_blobs):
            try:
                step()
            except Exception:
                traceback.print_exc(file=sys.stdout)
        if self.control is not None:
            self.control.close()

    def reset_faults(self):
        if self.control is not None:
            self.control.reset_faults()

    def remove_blobs(self):
        """Every blob under this file's prefix, in every container it used,
        the uncommitted blocks of abandoned block uploads included
        (leftovers() then checks that none remains)."""
        if self.rest is None:
            return
        for container in sorted(self.containers):
            for name, _ in self.rest.list(container, self.prefix + "/", uncommitted=True):
                self.rest.delete(container, name)

    def leftovers(self):
        left = ["database %s remains" % self.dbname] if self.created_db else []
        if self.rest is not None:
            for container in sorted(self.containers):
                names = [n for n, _ in self.rest.list(container, self.prefix + "/", uncommitted=True)]
                if names:
                    left.append("%d blobs remain in %s under %s/ (%s)" % (len(names), container, self.prefix,
                                                                        ", ".join(names[:5])))
            self.rest.close()
        return left

    # ---- PostgreSQL -----------------------------------------------------------

    def wait_for_worker(self):
        """Waits until the background worker has carried out what committed
        and aborted transactions left it (deletes after commit, the undo of
        aborted writes)."""
        assert self.value("SELECT so_wait_for_worker('1 minute')"), "the worker did not catch up in a minute"

    def backend_options(self, **options):
        opts = {"account": self.account, "account_key": self.account_key, "endpoint": self.endpoint,
                "allow_http": True}
        opts.update(options)
        return {k: v for k, v in opts.items() if v is not None}

    def register(self, key, subprefix, conn=None, container=None, **options):
        """Registers an Azure backend on az://<container>/<prefix>/<subprefix>
        with the fixture's endpoint and account key (overridable by options;
        a None value leaves an option out). Returns the full name prefix of
        its blobs in the container."""
        container = container or self.container
        self.containers.add(container)
        self.sql("SELECT so_register_backend(%s, %s, %s)",
                 (key, "az://%s/%s/%s" % (container, self.prefix, subprefix),
                  json.dumps(self.backend_options(**options))), conn)
        return "%s/%s/" % (self.prefix, subprefix)

    # ---- the blob service through our REST client -------------------------------

    def head(self, blob, container=None):
        return self.rest.head(container or self.container, blob)

    def get_bytes(self, blob, container=None):
        return self.rest.get(container or self.container, blob)

    def list_names(self, name_prefix, container=None):
        """Every blob name starting with name_prefix (a full name prefix)."""
        return [n for n, _ in self.rest.list(container or self.container, name_prefix)]

    def supports(self, feature, headers):
        """Whether the service takes a Put Blob with these headers and keeps
        them (probed once per feature on a blob of our own, then removed):
        (True, "") or (False, the service's answer)."""
        cache = self.__dict__.setdefault("_supports", {})
        if feature not in cache:
            probe = "%s/.probe/%s" % (self.prefix, feature)
            h = {"x-ms-blob-type": "BlockBlob"}
            h.update(headers)
            status, rh, body = self.rest.request("PUT", self.container, probe, headers=h, body=b"probe")
            if status != 201:
                cache[feature] = (False, "Put Blob with %s: HTTP %d %s" % (headers, status,
                                                                          rh.get("x-ms-error-code", "")))
            else:
                cache[feature] = (True, "")
                if "x-ms-tags" in headers:
                    status, rh, body = self.rest.request("GET", self.container, probe, [("comp", "tags")])
                    if status != 200:
                        cache[feature] = (False, "Get Blob Tags: HTTP %d %s" % (status,
                                                                             rh.get("x-ms-error-code", "")))
                if "x-ms-access-tier" in headers:
                    tier = (self.rest.head(self.container, probe) or {}).get("x-ms-access-tier")
                    if tier != headers["x-ms-access-tier"]:
                        cache[feature] = (False, "Put Blob with %s kept the tier %r" % (headers, tier))
                self.rest.delete(self.container, probe)
        return cache[feature]

    # ---- the official SDK -------------------------------------------------------------

    def sdk(self, *args, timeout=60):
        """Runs node sdkclient.mjs ARGS...; its JSON answer, or SdkError."""
        e = dict(os.environ, AZURE_ENDPOINT=self.endpoint, AZURE_ACCOUNT=self.account,
                 AZURE_ACCOUNT_KEY=self.account_key)
        out = subprocess.run([self.node, SDKCLIENT] + [str(a) for a in args], env=e, cwd=AZURE_DIR,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if out.returncode == 1:
            try:
                info = json.loads(out.stderr.decode().strip().splitlines()[-1])
            except (ValueError, IndexError):
                info = {"message": out.stderr.decode(errors="replace")}
            raise SdkError(info, [str(a) for a in args])
        if out.returncode != 0:
            raise RuntimeError("sdkclient %s failed (%d): %s" % (args[0], out.returncode,
                                                                 out.stderr.decode(errors="replace")))
        return json.loads(out.stdout.decode())

    def sdk_put(self, blob, content, container=None, **options):
        """SDK upload of content; options as sdkclient's put flags
        (content_type="x", metadata={"k": "v"}, block_size=N, ...)."""
        tmp = tempfile.mkdtemp(prefix="so-az-")
        try:
            src = os.path.join(tmp, "in")
            with open(src, "wb") as f:
                f.write(content)
            args = ["put", container or self.container, blob, src]
            for name, value in options.items():
                if name == "metadata":
                    for k, v in value.items():
                        args += ["--metadata", "%s=%s" % (k, v)]
                else:
                    args += ["--" + name.replace("_", "-"), value]
            return self.sdk(*args)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def sdk_get(self, blob, container=None, offset=None, count=None, url=None):
        """(bytes, fields) of an SDK download (of a blob, or of a URL: get-url)."""
        tmp = tempfile.mkdtemp(prefix="so-az-")
        try:
            out = os.path.join(tmp, "out")
            if url is not None:
                fields = self.sdk("get-url", url, out)
            else:
                args = ["get", container or self.container, blob, out]
                if offset is not None:
                    args += ["--offset", offset, "--count", count]
                fields = self.sdk(*args)
            with open(out, "rb") as f:
                return f.read(), fields
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def sdk_props(self, blob, container=None):
        """The SDK's getProperties, or None on 404."""
        try:
            return self.sdk("props", container or self.container, blob)
        except SdkError as e:
            if e.status == 404:
                return None
            raise

    def sdk_put_url(self, url, content, content_type=None):
        tmp = tempfile.mkdtemp(prefix="so-az-")
        try:
            src = os.path.join(tmp, "in")
            with open(src, "wb") as f:
                f.write(content)
            args = ["put-url", url, src]
            if content_type:
                args += ["--content-type", content_type]
            return self.sdk(*args)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def sdk_sas(self, blob, permissions, expiry, container=None, **options):
        """sdkclient sas: {"query", "signature", "version", "stringToSign", "url"}."""
        args = ["sas", container or self.container, blob, "--permissions", permissions, "--expiry", expiry]
        for name, value in options.items():
            args += ["--" + name.replace("_", "-"), value]
        return self.sdk(*args)
