#!/usr/bin/python3
"""System test: the S3 backend against an endpoint that misbehaves on purpose.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_hostile_endpoint.py

with PGHOST/PGPORT/PGUSER naming a running cluster (stored_object
installed). It needs no S3 fixture: it starts its own HTTP server on
127.0.0.1 (a free port, plain sockets and threads), registers the backend
'hostile' on it as the superuser, and sends every request of this file there.
The server answers each object key (or listing prefix) in its own hostile
way:

- (a) a 500 whose chunked body never ends, for so_get and so_stat;
- (b) a ranged so_get(obj, 0, 10) answered 206 with Content-Length
  10000000000 and then a trickle, or the connection closing; the same with
  a 200 (the server ignoring Range); a plain so_get answered 200 with a
  negative, overflowing or non-numeric Content-Length;
- (c) 100,000 response headers, or one header line of 8 MiB;
- (d) a 200 ListObjectsV2 body that never ends (chunked, or announced as
  10 GB), for so_orphans; and pages without end, each truncated and handing
  back the continuation token it was asked with;
- an error document whose Code and Message carry line breaks, control
  characters, bytes that are not UTF-8 and 100 KB of text.

Each must end as a clear error, SQLSTATE 58030 (not 57014: statement_timeout
is only a safety net), within a deadline, with a message of one line, valid
UTF-8 and bounded length, while the backend process's peak resident memory
(VmHWM in /proc/PID/status, reset first through /proc/PID/clear_refs) grows
by less than 64 MiB. Clear means it says what happened: a HEAD answered 500
reports HTTP status 500 (not the garbage that followed it on the same
connection), an oversized header is not "out of memory", an error document
that is not UTF-8 still names the backend, the key and the status. The
session then goes on working, and once its connection is closed every
server thread has stopped.

A plain so_get answered 200 with Content-Length 10000000000 is an object too
large for one bytea: 22023 naming the size, with a hint to read it in parts,
still without allocating it.

The last line of output is "N passed, N failed"; the exit status is non-zero
on any failure.
"""

import json
import os
import socket
import sys
import threading
import time
import traceback
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runner  # noqa: E402
from procfs import proc_status, reset_peak  # noqa: E402

import psycopg2  # noqa: E402

MIB = 1024 * 1024
BACKEND = "hostile"
BUCKET = "bucket"
# What a hostile answer may cost the backend process: peak resident memory
# growth, wall time, and the length of each message field.
MEMORY_LIMIT = 64 * MIB
DEADLINE = 10.0
MAX_MESSAGE_BYTES = 2000
# Only a safety net: a hang shows as 57014, which fails the test.
SAFETY_TIMEOUT = "20s"
# How long the server's threads get to notice a closed connection.
THREADS_STOP_WITHIN = 10.0
HUGE = 10000000000  # 10 GB


# ---- the hostile server -------------------------------------------------------

class ClientGone(Exception):
    """The client closed the connection (or the server is stopping)."""


class Request:
    def __init__(self, method, target, headers):
        self.method = method
        self.target = target
        self.headers = headers  # names lowercase
        parts = urllib.parse.urlsplit(target)
        self.path = urllib.parse.unquote(parts.path)
        self.query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))

    def key(self):
        """The object key of a path-style request, or None for the bucket."""
        rest = self.path[len("/" + BUCKET):].lstrip("/")
        return rest or None


class Connection:
    """One accepted connection, served on its own thread."""

    def __init__(self, server, sock, number):
        self.server = server
        self.sock = sock
        self.number = number
        self.requests = []
        self.bytes_sent = 0
        self.thread = threading.Thread(target=self.run, name="hostile-%d" % number, daemon=True)

    def run(self):
        try:
            while not self.server.stopping.is_set():
                request = self.read_request()
                if request is None:
                    break
                self.requests.append(request)
                self.server.record(request)
                if not self.server.respond(self, request):
                    break
        except (ClientGone, OSError):
            pass  # the client went away: that is how every endless answer ends
        except Exception:
            self.server.failures.append(traceback.format_exc())
        finally:
            try:
                self.sock.close()
            except OSError:
                pass
            self.server.finished(self)

    def read_request(self):
        data = b""
        while b"\r\n\r\n" not in data:
            if len(data) > 256 * 1024:
                raise ClientGone("request head too long")
            piece = self.sock.recv(65536)
            if not piece:
                return None
            data += piece
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        while len(body) < length:
            piece = self.sock.recv(65536)
            if not piece:
                return None
            body += piece
        return Request(method, target, headers)

    def send(self, data):
        if self.server.stopping.is_set():
            raise ClientGone("stopping")
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)  # raises once the client has closed
        self.bytes_sent += len(data)

    def pause(self, seconds):
        """Waits between the bytes of a trickle; ends it when the server stops."""
        if self.server.stopping.wait(seconds):
            raise ClientGone("stopping")


def chunk(data):
    if isinstance(data, str):
        data = data.encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


class HostileServer:
    """An HTTP/1.1 server on 127.0.0.1 that answers each object key (or
    listing prefix) in the way named in ANSWERS / LISTINGS."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.changed = threading.Condition()
        self.active = set()
        self.all_connections = []
        self.seen = []  # (method, key or listing prefix, headers) of every request
        self.failures = []  # exceptions of server threads (bugs of this test)
        self.accept_thread = threading.Thread(target=self.accept_loop, name="hostile-accept", daemon=True)

    def start(self):
        self.accept_thread.start()

    def accept_loop(self):
        number = 0
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                break  # the listener was shut down
            number += 1
            # A safety net only: a client that stops reading for this long
            # ends the thread even if it never closes.
            sock.settimeout(60)
            conn = Connection(self, sock, number)
            with self.changed:
                self.active.add(conn)
                self.all_connections.append(conn)
            conn.thread.start()

    def finished(self, conn):
        with self.changed:
            self.active.discard(conn)
            self.changed.notify_all()

    def record(self, request):
        with self.changed:
            self.seen.append(request)
            self.changed.notify_all()

    def requests_for(self, key):
        with self.changed:
            return [r for r in self.seen if (r.key() or "list:" + r.query.get("prefix", "")) == key]

    def open_connections(self):
        with self.changed:
            return len(self.active)

    def wait_idle(self, timeout):
        """True once no connection is open (every thread has ended)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
            return True

    def stop(self):
        """Stops accepting, ends every connection, joins every thread.
        Returns the names of threads still alive (none, normally)."""
        self.stopping.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        self.accept_thread.join(10)
        with self.changed:
            conns = list(self.all_connections)
        for conn in conns:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        alive = []
        for thread in [self.accept_thread] + [c.thread for c in conns]:
            thread.join(10)
            if thread.is_alive():
                alive.append(thread.name)
        return alive

    # ---- answers ----------------------------------------------------------------

    def respond(self, conn, request):
        """Answers one request; returns whether the connection goes on."""
        key = request.key()
        if key is None:
            answer = LISTINGS.get(request.query.get("prefix", ""), answer_empty_listing)
        else:
            answer = ANSWERS.get(key, answer_not_found)
        return answer(conn, request)


def answer_not_found(conn, request):
    conn.send("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    return True


OK_BODY = b"0123456789"


def answer_ok(conn, request):
    """A well-behaved object of 10 bytes: for warming a session up and for
    showing that it goes on after an error."""
    head = "Content-Type: application/octet-stream\r\nETag: \"0123\"\r\n" \
           "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
    if request.method == "HEAD":
        conn.send("HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n" % (head, len(OK_BODY)))
    elif request.headers.get("range"):
        first, _, last = request.headers["range"][len("bytes="):].partition("-")
        first = int(first)
        last = min(int(last) if last else len(OK_BODY) - 1, len(OK_BODY) - 1)
        body = OK_BODY[first:last + 1]
        conn.send("HTTP/1.1 206 Partial Content\r\n%sContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n\r\n"
                  % (head, first, last, len(OK_BODY), len(body)))
        conn.send(body)
    else:
        conn.send("HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n" % (head, len(OK_BODY)))
        conn.send(OK_BODY)
    return True


def answer_endless_500(conn, request):
    """(a) A 500 whose chunked body never ends, even for HEAD."""
    conn.send("HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
              "Transfer-Encoding: chunked\r\n\r\n")
    conn.send(chunk("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>"))
    piece = chunk(b"We encountered an internal error. " * 2000)
    while True:
        conn.send(piece)


def trickle(conn):
    while True:
        conn.send(b"x")
        conn.pause(0.05)


def answer_206_huge_trickle(conn, request):
    """(b) The range asked for answered with 10 GB announced, then a trickle."""
    conn.send("HTTP/1.1 206 Partial Content\r\nContent-Type: application/octet-stream\r\n"
              "Content-Range: bytes 0-%d/%d\r\nContent-Length: %d\r\n\r\n" % (HUGE - 1, HUGE, HUGE))
    trickle(conn)


def answer_206_huge_close(conn, request):
    """(b) 10 GB announced, then the connection closes."""
    conn.send("HTTP/1.1 206 Partial Content\r\nContent-Type: application/octet-stream\r\n"
              "Content-Range: bytes 0-%d/%d\r\nContent-Length: %d\r\n\r\n" % (HUGE - 1, HUGE, HUGE))
    return False


def answer_200_huge_trickle(conn, request):
    """(b) Range ignored: the whole object of 10 GB, trickling."""
    conn.send("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % HUGE)
    trickle(conn)


def bad_length(value):
    def answer(conn, request):
        conn.send("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %s\r\n\r\n" % value)
        trickle(conn)
    answer.__doc__ = "(b) 200 with Content-Length: %s, then a trickle." % value
    return answer


def answer_many_headers(conn, request):
    """(c) 100,000 header lines (about 2.4 MB) before the blank line."""
    conn.send("HTTP/1.1 200 OK\r\n")
    for batch in range(100):
        conn.send("".join("X-Hostile-%06d: v\r\n" % (batch * 1000 + i) for i in range(1000)))
    conn.send("Content-Length: 10\r\n\r\n0123456789")
    return True


def answer_giant_header(conn, request):
    """(c) One header line of 8 MiB."""
    conn.send("HTTP/1.1 200 OK\r\nX-Giant: ")
    piece = b"a" * MIB
    for _ in range(8):
        conn.send(piece)
    conn.send("\r\nContent-Length: 10\r\n\r\n0123456789")
    return True


# Code and Message as hostile as valid UTF-8 can make them: line breaks,
# control characters, an escape sequence, a line separator, 100 KB.
NASTY = ("Line\nbreak\r\x1b[31mred\x7f\u0085\u2028sep \u00e9t\u00e9 " + "A" * 100000).encode()
# And with bytes that are not UTF-8 at all.
NASTY_BYTES = b"not UTF-8: \xff\xfe\xc3\x28 " + NASTY


def nasty_error(text, request_id):
    def answer(conn, request):
        body = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + text + b"</Code><Message>" + text
                + b"</Message>" + (b"<RequestId>" + text + b"</RequestId>" if request_id else b"") + b"</Error>")
        conn.send(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
                  b"x-amz-request-id: \xff\xfe\x1b[0m\r\nContent-Length: %d\r\n\r\n" % len(body))
        conn.send(body)
        return True
    answer.__doc__ = ("A 500 error document (Content-Length framed, so it is parsed) whose fields "
                      "carry %r..." % text[:40])
    return answer


LISTING_HEAD = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns="
                "\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bucket</Name><Prefix>endless/</Prefix>"
                "<KeyCount>1000</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>")


def listing_entries(first, count, prefix):
    return "".join("<Contents><Key>%s%09d</Key><LastModified>2000-01-01T00:00:00.000Z</LastModified>"
                   "<ETag>&quot;0123&quot;</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>"
                   % (prefix, first + i) for i in range(count))


def answer_endless_listing(conn, request):
    """(d) A 200 ListObjectsV2 body that never ends (chunked)."""
    conn.send("HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n")
    conn.send(chunk(LISTING_HEAD))
    n = 0
    while True:
        conn.send(chunk(listing_entries(n, 500, "endless/")))
        n += 500


def answer_huge_listing(conn, request):
    """(d) A 200 ListObjectsV2 body announced as 10 GB, sent as fast as read."""
    conn.send("HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n" % HUGE)
    conn.send(LISTING_HEAD)
    n = 0
    while True:
        conn.send(listing_entries(n, 500, "huge-listing/"))
        n += 500


def answer_repeated_token(conn, request):
    """(d) Pages of 1,000 keys without end: every page says IsTruncated and
    hands back the continuation token it was asked with."""
    body = (LISTING_HEAD.replace("endless/", "pages/") + listing_entries(0, 1000, "pages/")
            + "<NextContinuationToken>same-again</NextContinuationToken></ListBucketResult>")
    conn.send("HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n%s"
              % (len(body), body))
    return True


def answer_empty_listing(conn, request):
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>bucket</Name>"
            "<KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>")
    conn.send("HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n%s"
              % (len(body), body))
    return True


ANSWERS = {
    "ok": answer_ok,
    "endless-500": answer_endless_500,
    "206-huge-trickle": answer_206_huge_trickle,
    "206-huge-close": answer_206_huge_close,
    "200-huge-trickle": answer_200_huge_trickle,
    "length-negative": bad_length("-1"),
    "length-very-negative": bad_length("-%d" % HUGE),
    "length-overflow": bad_length("9" * 40),
    "length-not-a-number": bad_length("ten gigabytes"),
    "length-huge": bad_length(str(HUGE)),
    "many-headers": answer_many_headers,
    "giant-header": answer_giant_header,
    "nasty-error": nasty_error(NASTY, request_id=False),
    "nasty-error-bytes": nasty_error(NASTY_BYTES, request_id=True),
}

LISTINGS = {
    "endless/": answer_endless_listing,
    "huge-listing/": answer_huge_listing,
    "pages/": answer_repeated_token,
}


# ---- the fixture -----------------------------------------------------------------

def obj(key):
    return json.dumps({"backend": BACKEND, "filename": key})


class Fixture:
    """A database with the extension, the hostile server and the backend on it."""

    def __init__(self):
        self.name = "hostile_endpoint"
        self.dbname = "so_hostile_%d" % os.getpid()
        self.admin = None
        self.conn = None
        self.created_db = False
        self.connections = []
        self.server = None
        self.threads_left = []

    def start(self):
        self.server = HostileServer()
        self.server.start()
        self.admin = psycopg2.connect(dbname="postgres")
        self.admin.autocommit = True
        with self.admin.cursor() as cur:
            cur.execute("CREATE DATABASE %s" % self.dbname)
        self.created_db = True
        self.conn = self.connect()
        self.sql("CREATE EXTENSION stored_object")
        options = {"endpoint": "http://127.0.0.1:%d" % self.server.port, "region": "us-east-1",
                   "access_key_id": "a", "secret_access_key": "b", "path_style": True, "allow_http": True}
        self.sql("SELECT so_register_backend(%s, %s, %s)", (BACKEND, "s3://" + BUCKET, json.dumps(options)))

    def stop(self):
        for step in (self.close_connections, self.drop_database, self.stop_server):
            try:
                step()
            except Exception:
                traceback.print_exc(file=sys.stdout)

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

    def stop_server(self):
        if self.server is not None:
            self.threads_left = self.server.stop()

    def leftovers(self):
        left = []
        if self.created_db:
            left.append("database %s remains" % self.dbname)
        if self.threads_left:
            left.append("server threads still running: " + ", ".join(self.threads_left))
        if self.server is not None and self.server.failures:
            left.append("server thread errors:\n" + "\n".join(self.server.failures))
        return left

    def connect(self):
        c = psycopg2.connect(dbname=self.dbname)
        c.autocommit = True
        self.connections.append(c)
        return c

    def sql(self, query, args=None, conn=None):
        with (conn or self.conn).cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall() if cur.description else None

    def value(self, query, args=None, conn=None):
        return self.sql(query, args, conn)[0][0]

    def session(self, safety=SAFETY_TIMEOUT):
        """A new session, its libraries loaded and its first S3 requests
        made, so what it allocates for good is not counted against a case."""
        c = self.connect()
        self.sql("SET statement_timeout = %s", (safety,), c)
        self.check_alive(c)
        return c

    def check_alive(self, conn):
        """The session still talks to the (well-behaved part of the) store."""
        assert self.value("SELECT so_exists(%s::stored_object)", (obj("missing"),), conn) is False
        assert bytes(self.value("SELECT so_get(%s::stored_object)", (obj("ok"),), conn)) == OK_BODY
        assert bytes(self.value("SELECT so_get(%s::stored_object, 2, 3)", (obj("ok"),), conn)) == b"234"
        assert self.value("SELECT so_size(so_stat(%s, 'ok'))", (BACKEND,), conn) == len(OK_BODY)

    def close(self, conn):
        conn.close()
        self.connections.remove(conn)


FX = Fixture()


# ---- the tests ---------------------------------------------------------------------

class HostileBase(unittest.TestCase):

    def hostile(self, query, args=(), sqlstate="58030", key=None, safety=SAFETY_TIMEOUT):
        """Runs query in a new session against the hostile server. Asserts
        it fails with sqlstate within DEADLINE, with a clean message, while
        the backend's peak memory grows less than MEMORY_LIMIT; that the
        session goes on; and that once it is closed the server's threads
        stop. Returns the error."""
        conn = FX.session(safety)
        pid = conn.get_backend_pid()
        reset = reset_peak(pid)
        before = proc_status(pid)
        baseline = before["VmRSS"] if reset else before["VmHWM"]
        started = time.monotonic()
        error = None
        try:
            FX.sql(query, args, conn)
        except psycopg2.Error as e:
            error = e
        took = time.monotonic() - started
        after = proc_status(pid)
        growth = after["VmHWM"] - baseline
        print("  (%s: %.2f s, peak RSS +%.1f MiB, virtual peak +%.1f MiB, %s: %s)"
              % (key or query, took, growth / MIB, (after["VmPeak"] - before["VmPeak"]) / MIB,
                 error.pgcode if error else "no error",
                 error.diag.message_primary[:160] if error else ""))
        try:
            self.assertIsNotNone(error, "no error from " + query)
            self.assertNotEqual(error.pgcode, "57014",
                                "ended only by statement_timeout (%.1f s): %s" % (took, error.pgerror))
            self.assertEqual(error.pgcode, sqlstate, error.pgerror)
            self.assertLess(took, DEADLINE, "took %.1f s" % took)
            self.assertLess(growth, MEMORY_LIMIT, "peak resident memory grew by %.1f MiB" % (growth / MIB))
            self.assertCleanMessage(error)
            # The same session goes on.
            FX.check_alive(conn)
        finally:
            FX.close(conn)
            self.assertTrue(FX.server.wait_idle(THREADS_STOP_WITHIN),
                            "%d server connection(s) still open %.0f s after the session closed"
                            % (FX.server.open_connections(), THREADS_STOP_WITHIN))
        if key is not None:
            self.assertTrue(FX.server.requests_for(key), "the server saw no request for " + key)
        return error

    def assertCleanMessage(self, e):
        d = e.diag
        for field, text in (("message", d.message_primary), ("detail", d.message_detail),
                            ("hint", d.message_hint)):
            if text is None:
                continue
            with self.subTest(field=field):
                # psycopg2 decodes with errors="replace": bytes that are not
                # UTF-8 show as U+FFFD, which no hostile answer here contains.
                self.assertNotIn("\ufffd", text, "not valid UTF-8: %r" % text[:300])
                text.encode("utf-8")  # no lone surrogates either
                self.assertLessEqual(len(text.encode("utf-8")), MAX_MESSAGE_BYTES,
                                     "%s of %d bytes" % (field, len(text.encode("utf-8"))))
                bad = [c for c in text if ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 or c in "\u2028\u2029"]
                self.assertEqual(bad, [], "line breaks or control characters in the %s: %r" % (field, text[:300]))
        self.assertTrue(d.message_primary, "an empty message")


class EndlessErrorBodyTest(HostileBase):
    """(a) A 500 whose chunked body never ends."""

    def test_so_get(self):
        e = self.hostile("SELECT so_get(%s::stored_object)", (obj("endless-500"),), key="endless-500")
        self.assertIn("127.0.0.1:%d" % FX.server.port, e.diag.message_primary)

    def test_so_get_ranged(self):
        self.hostile("SELECT so_get(%s::stored_object, 0, 10)", (obj("endless-500"),), key="endless-500")

    def test_so_stat(self):
        # A HEAD: the body the server sends after it anyway must not be read,
        # nor be read as the answer to the retry on the same connection:
        # the error reports the 500 the server answered.
        e = self.hostile("SELECT so_stat(%s, 'endless-500')", (BACKEND,), key="endless-500")
        self.assertIn("HTTP status 500", e.diag.message_detail or "", e.pgerror)

    def test_so_exists(self):
        e = self.hostile("SELECT so_exists(%s::stored_object)", (obj("endless-500"),), key="endless-500")
        self.assertIn("HTTP status 500", e.diag.message_detail or "", e.pgerror)


class AnnouncedLengthTest(HostileBase):
    """(b) What the server announces never sizes an allocation by itself."""

    def ranged(self, key):
        e = self.hostile("SELECT so_get(%s::stored_object, 0, 10)", (obj(key),), key=key)
        ranges = {r.headers.get("range") for r in FX.server.requests_for(key)}
        self.assertEqual(ranges, {"bytes=0-9"})
        return e

    def test_206_with_10gb_then_trickle(self):
        e = self.ranged("206-huge-trickle")
        self.assertIn(str(HUGE), e.diag.message_primary)

    def test_206_with_10gb_then_close(self):
        self.ranged("206-huge-close")

    def test_range_ignored_200_with_10gb(self):
        self.ranged("200-huge-trickle")

    def test_plain_get_negative_length(self):
        for key in ("length-negative", "length-very-negative"):
            with self.subTest(key=key):
                self.hostile("SELECT so_get(%s::stored_object)", (obj(key),), key=key)

    def test_plain_get_overflowing_length(self):
        self.hostile("SELECT so_get(%s::stored_object)", (obj("length-overflow"),), key="length-overflow")

    def test_plain_get_length_not_a_number(self):
        self.hostile("SELECT so_get(%s::stored_object)", (obj("length-not-a-number"),), key="length-not-a-number")

    def test_plain_get_10gb(self):
        # An object of 10 GB may exist: too large for one bytea, read it in
        # parts; still no allocation of 10 GB.
        e = self.hostile("SELECT so_get(%s::stored_object)", (obj("length-huge"),), sqlstate="22023",
                         key="length-huge")
        self.assertIn("too large", e.diag.message_primary)
        self.assertIn(str(HUGE), e.diag.message_primary)
        self.assertIn("in parts", e.diag.message_hint or "")


class HeaderFloodTest(HostileBase):
    """(c) More headers than any store sends."""

    def test_100000_headers(self):
        for query, args in (("SELECT so_get(%s::stored_object)", (obj("many-headers"),)),
                            ("SELECT so_get(%s::stored_object, 0, 10)", (obj("many-headers"),)),
                            ("SELECT so_stat(%s, 'many-headers')", (BACKEND,))):
            with self.subTest(query=query):
                e = self.hostile(query, args, key="many-headers")
                self.assertIn("headers", e.diag.message_primary)

    def test_one_header_of_8_mib(self):
        for query, args in (("SELECT so_get(%s::stored_object)", (obj("giant-header"),)),
                            ("SELECT so_stat(%s, 'giant-header')", (BACKEND,))):
            with self.subTest(query=query):
                e = self.hostile(query, args, key="giant-header")
                # The database server is not out of memory: say what happened.
                self.assertNotIn("out of memory", e.diag.message_primary.lower())
                self.assertIn("header", e.diag.message_primary)


class EndlessListingTest(HostileBase):
    """(d) A ListObjectsV2 answer that never ends."""

    def test_so_orphans_chunked(self):
        self.hostile("SELECT count(*) FROM so_orphans(%s, 'endless/')", (BACKEND,), key="list:endless/")

    def test_so_orphans_announced_10gb(self):
        self.hostile("SELECT count(*) FROM so_orphans(%s, 'huge-listing/')", (BACKEND,),
                     key="list:huge-listing/")

    def test_so_orphans_repeated_continuation_token(self):
        # Endless in pages: each one truncated, handing back the token it
        # was asked with. Followed blindly, this never ends and every page
        # adds 1,000 entries. (A short safety net: this one grows fast.)
        self.hostile("SELECT count(*) FROM so_orphans(%s, 'pages/')", (BACKEND,), key="list:pages/",
                     safety="6s")


class HostileErrorDocumentTest(HostileBase):
    """The text of an error document reaches the message only made safe,
    and the message still says who answered what."""

    def check(self, key):
        e = self.hostile("SELECT so_get(%s::stored_object)", (obj(key),), key=key)
        self.assertIn(key, e.diag.message_primary)
        self.assertIn(BACKEND, e.diag.message_primary)
        self.assertIn("HTTP status 500", e.diag.message_detail or "")
        # Retried like any 500, a bounded number of times (max_retries 3).
        self.assertEqual(len(FX.server.requests_for(key)), 4)
        return e

    def test_error_document_with_control_characters(self):
        e = self.check("nasty-error")
        self.assertIn("\\x0a", e.diag.message_primary)  # the line break, escaped
        # No RequestId in the document: the header's, escaped.
        self.assertIn("\\xff", e.diag.message_detail)

    def test_error_document_not_utf8(self):
        self.check("nasty-error-bytes")


if __name__ == "__main__":
    sys.exit(runner.run(FX.name, FX, [EndlessErrorBodyTest, AnnouncedLengthTest, HeaderFloodTest,
                                      EndlessListingTest, HostileErrorDocumentTest], FX.leftovers))
