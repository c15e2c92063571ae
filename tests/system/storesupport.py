"""Helpers the system tests of every object store fixture share (S3,
GCS, Azure): the fixtures' control endpoint, statistics deltas, a
background statement, curl, and SQL error assertions. Standard library and
psycopg2 only, so a test of one store needs nothing of another's client
(s3support.py imports boto3; azuresupport.py the Azure fixture's client).
Not a test itself."""

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse

import psycopg2

CURL = "/usr/bin/curl"


def env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError("%s is not set: run under scripts/test.sh, or source the fixture's environment file"
                           % name)
    return value


class Control:
    """The fixture's /__fixture/ endpoint over one keep-alive connection, so
    that reading the statistics adds no connection of its own between two
    readings."""

    def __init__(self, endpoint, what="S3"):
        parts = urllib.parse.urlsplit(endpoint)
        self.host, self.port = parts.hostname, parts.port
        self.what = what  # the fixture, for messages
        self.conn = None

    def request(self, method, name, body=None):
        data = None if body is None else json.dumps(body).encode()
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request(method, "/__fixture/" + name, body=data,
                                  headers={"Content-Type": "application/json"} if data else {})
                resp = self.conn.getresponse()
                text = resp.read()
                if resp.getheader("connection", "").lower() == "close":
                    self.close()
                if resp.status >= 300:
                    raise RuntimeError("fixture control %s %s: %d %s" % (method, name, resp.status, text[:300]))
                return json.loads(text) if text.strip() else None
            except (OSError, http.client.HTTPException):
                # E.g. "down" mode reset this connection: once more on a new one.
                self.close()
                if attempt:
                    raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def stats(self):
        return self.request("GET", "stats")

    def add_fault(self, rule):
        return self.request("POST", "faults", rule)

    def reset_faults(self):
        return self.request("DELETE", "faults")

    def faults(self):
        return self.request("GET", "faults")

    def healthy(self):
        try:
            self.request("GET", "health")
            return True
        except Exception:
            return False

    def wait_healthy(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return
            time.sleep(0.1)
        raise RuntimeError("the %s fixture did not come back within %d s" % (self.what, timeout))

    def wait_for(self, predicate, timeout=10, what="the fixture"):
        """Poll the statistics until predicate(stats) holds."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats()
            if predicate(s):
                return s
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s; stats: %s" % (what, s))
            time.sleep(0.02)


def delta(before, after):
    """Differences of two /__fixture/stats readings, flattened:
    {"connections": n, "requests": n, "op:PutObject": n, "status:500": n, "fault:error": n}."""
    out = {"connections": after["connections_accepted"] - before["connections_accepted"],
           "requests": after["requests"] - before["requests"]}
    for section, tag in (("operations", "op"), ("statuses", "status"), ("faults_injected", "fault")):
        for k in set(before[section]) | set(after[section]):
            d = after[section].get(k, 0) - before[section].get(k, 0)
            if d:
                out["%s:%s" % (tag, k)] = d
    return out


class Background:
    """A callable run in a thread; remembers its result or exception and the
    monotonic time it finished."""

    def __init__(self, fn, *args):
        self.result = self.error = self.finished_at = None
        self.thread = threading.Thread(target=self._run, args=(fn,) + args, daemon=True)
        self.thread.start()

    def _run(self, fn, *args):
        try:
            self.result = fn(*args)
        except BaseException as e:  # noqa: B902 - reported to the test
            self.error = e
        self.finished_at = time.monotonic()

    def join(self, timeout=30):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("the background statement did not finish within %d s" % timeout)
        return self


def curl(url, method="GET", upload=None, headers=()):
    """(status, {lowercase header: value}, body) of a plain curl request that
    sends the URL exactly as given."""
    tmp = tempfile.mkdtemp(prefix="so-curl-")
    try:
        head, body = os.path.join(tmp, "head"), os.path.join(tmp, "body")
        args = [CURL, "-sS", "--globoff", "--path-as-is", "-D", head, "-o", body, "-w", "%{http_code}"]
        if method == "HEAD":
            args += ["-I"]
        elif method != "GET" or upload is not None:
            args += ["-X", method]
        if upload is not None:
            src = os.path.join(tmp, "upload")
            with open(src, "wb") as f:
                f.write(upload)
            args += ["-T", src, "-H", "Expect:"]
        for h in headers:
            args += ["-H", h]
        out = subprocess.run(args + [url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             check=True, timeout=60)
        status = int(out.stdout.decode())
        parsed = {}
        with open(head, "rb") as f:
            for line in f.read().decode("latin-1").split("\r\n"):
                if line.startswith("HTTP/"):
                    parsed = {}  # a later response (after 100 Continue) replaces it
                elif ":" in line:
                    k, _, v = line.partition(":")
                    parsed[k.strip().lower()] = v.strip()
        data = b""
        if os.path.exists(body):
            with open(body, "rb") as f:
                data = f.read()
        return status, parsed, data
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def error_texts(e):
    d = e.diag
    return [str(e), e.pgerror or "", d.message_primary or "", d.message_detail or "",
            d.message_hint or "", d.context or "", d.internal_query or ""]


class SqlAssertions:
    """Mixin for unittest.TestCase: SQL errors, their SQLSTATE and message,
    and secrets."""

    FX = None  # set by each test file

    def assertSqlError(self, sqlstate, query, args=None, conn=None, message=None):
        """The statement fails with sqlstate; message, when given, is a
        substring (or a list of substrings) of the primary message. No secret
        shows anywhere in the error."""
        conn = conn or self.FX.conn
        with self.assertRaises(psycopg2.Error) as cm:
            self.FX.sql(query, args, conn)
        e = cm.exception
        if not conn.autocommit and not conn.closed:
            conn.rollback()
        self.assertEqual(e.pgcode, sqlstate, e.pgerror)
        for part in ([message] if isinstance(message, str) else message or []):
            self.assertIn(part, e.diag.message_primary or "", e.pgerror)
        self.assertSecretFree(e)
        return e

    def assertSecretFree(self, e, extra=()):
        texts = error_texts(e) if isinstance(e, psycopg2.Error) else [str(e)]
        for text in texts:
            for secret in list(self.FX.secrets) + list(extra):
                self.assertNotIn(secret, text)


class DatabaseFixture:
    """The database of one test file: created with the extension at start,
    dropped at the end (FORCE), with the connections the tests open."""

    def __init__(self, dbname):
        self.dbname = dbname
        self.admin = None
        self.conn = None
        self.created_db = False
        self.connections = []
        # Values that must never appear in an error, a notice or a result.
        self.secrets = []

    def create_database(self):
        self.admin = psycopg2.connect(dbname="postgres")
        self.admin.autocommit = True
        with self.admin.cursor() as cur:
            cur.execute("CREATE DATABASE %s" % self.dbname)
        self.created_db = True
        self.conn = self.connect()
        self.sql("CREATE EXTENSION stored_object")

    def close_connections(self):
        for c in self.connections:
            try:
                c.close()
            except Exception:
                pass
        self.connections = []
        self.conn = None

    def drop_database(self):
        if self.admin is not None:
            if self.created_db:
                with self.admin.cursor() as cur:
                    cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.dbname)
                self.created_db = False
            self.admin.close()
            self.admin = None

    def connect(self, autocommit=True):
        c = psycopg2.connect(dbname=self.dbname)
        c.autocommit = autocommit
        self.connections.append(c)
        return c

    def sql(self, query, args=None, conn=None):
        with (conn or self.conn).cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall() if cur.description else None

    def value(self, query, args=None, conn=None):
        return self.sql(query, args, conn)[0][0]

