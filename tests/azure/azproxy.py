#!/usr/bin/python3
"""Pass-through HTTP/1.1 proxy in front of Azurite's blob service.

Listens on 127.0.0.1:PORT and forwards every request byte for byte (request
line, header lines, body) to Azurite on 127.0.0.1:UPSTREAM_PORT, and every
answer back the same way: Azurite itself checks Shared Key and SAS
signatures, so nothing a client signed may change on the way.  Bodies are
streamed in both directions (Content-Length or chunked), never held whole in
memory.  Each client connection gets its own upstream connection, kept alive
as long as both sides allow.

/__fixture/* is a control endpoint with the interface of the S3 fixture's
(tests/s3/s3proxy.py): health, stats, fault rules.  The fault rules are
parsed and matched by tests/s3/s3fixture/faults.py; only the error bodies
are Azure's.  See README.md.
"""

import argparse
import email.utils
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from urllib.parse import parse_qsl, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
# Reuse the S3 fixture's rule parser, matcher and counters (stdlib only).
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "s3"))

from s3fixture import faults as faults_mod  # noqa: E402

CONTROL_PREFIX = "/__fixture/"
BUFFER = 256 * 1024
MAX_LINE = 64 * 1024        # one request/status/header line
MAX_HEAD = 256 * 1024       # all header lines of one message
MAX_CONTROL_BODY = 1024 * 1024
CLIENT_IDLE_TIMEOUT = 300   # seconds a kept-alive client connection may idle
UPSTREAM_TIMEOUT = 300      # seconds to wait on Azurite

# Azure's answers for the injected errors (x-ms-error-code and body).
AZURE_ERRORS = {
    500: ("InternalError",
          "The server encountered an internal error. Please retry the request."),
    503: ("ServerBusy",
          "The server is currently unable to receive requests. "
          "Please retry your request."),
}
# Real Azure's Server header; injected errors should look like Azure's.
AZURE_SERVER = "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0"


class BadMessage(Exception):
    """A message the proxy cannot frame: answer 400 and close."""


class WriteFailed(ConnectionError):
    """Sending to the other side of a relay failed (reading did not)."""


# -- operation names ----------------------------------------------------


def operation_name(method, target, headers):
    """Azure's REST operation name for a request (for stats and faults).

    Path style only: /ACCOUNT[/CONTAINER[/BLOB...]]?query.
    """
    split = urlsplit(target)
    query = dict(parse_qsl(split.query, keep_blank_values=True))
    comp, restype = query.get("comp"), query.get("restype")
    names = {name.lower() for name, _ in headers}
    copy = "x-ms-copy-source" in names
    segments = split.path.split("/")  # ["", account, container, blob...]
    blob = len(segments) > 3 and "/".join(segments[3:]) != ""
    container = restype == "container"

    if method == "PUT":
        if container:
            return {None: "CreateContainer", "metadata": "SetContainerMetadata",
                    "acl": "SetContainerACL"}.get(comp, "Other")
        if comp is None:
            return "CopyBlob" if copy else "PutBlob"
        if comp == "block":
            return "PutBlockFromURL" if copy else "PutBlock"
        return {"blocklist": "PutBlockList", "metadata": "SetBlobMetadata",
                "tags": "SetBlobTags",
                "properties": "SetBlobProperties"}.get(comp, "Other")
    if method == "GET":
        if container:
            return {"list": "ListBlobs", None: "GetContainerProperties",
                    "metadata": "GetContainerMetadata",
                    "acl": "GetContainerACL"}.get(comp, "Other")
        if comp == "list" and not blob:
            return "ListContainers"
        if blob:
            return {None: "GetBlob", "tags": "GetBlobTags",
                    "metadata": "GetBlobMetadata",
                    "blocklist": "GetBlockList"}.get(comp, "Other")
        return "Other"
    if method == "HEAD":
        if container:
            return {None: "GetContainerProperties",
                    "metadata": "GetContainerMetadata"}.get(comp, "Other")
        if blob:
            return {None: "GetBlobProperties",
                    "metadata": "GetBlobMetadata"}.get(comp, "Other")
        return "Other"
    if method == "DELETE":
        if container and comp is None:
            return "DeleteContainer"
        if blob and comp is None:
            return "DeleteBlob"
    return "Other"


# -- HTTP/1.1 message framing -------------------------------------------


def read_head(rfile):
    """(start line, [(name, value)], raw head bytes) of the next message,
    or None at a clean end of stream before it."""
    line = rfile.readline(MAX_LINE + 1)
    while line in (b"\r\n", b"\n"):  # RFC 9112 2.2: ignore leading CRLFs
        line = rfile.readline(MAX_LINE + 1)
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise BadMessage("start line too long or truncated")
    raw = [line]
    size = len(line)
    headers = []
    while True:
        field = rfile.readline(MAX_LINE + 1)
        if not field:
            raise ConnectionError("end of stream inside a message head")
        if not field.endswith(b"\n"):
            raise BadMessage("header line too long")
        size += len(field)
        if size > MAX_HEAD:
            raise BadMessage("message head too large")
        raw.append(field)
        if field in (b"\r\n", b"\n"):
            break
        if field[:1] in (b" ", b"\t"):
            raise BadMessage("obsolete header line folding")
        name, colon, value = field.partition(b":")
        if not colon or not name or name != name.strip():
            raise BadMessage("malformed header line")
        headers.append((name.decode("latin-1"),
                        value.strip().decode("latin-1")))
    return line.rstrip(b"\r\n").decode("latin-1"), headers, b"".join(raw)


def header_values(headers, name):
    name = name.lower()
    return [value for key, value in headers if key.lower() == name]


def has_token(headers, name, token):
    """True if a comma-separated header (e.g. Connection) lists token."""
    return any(token == part.strip().lower()
               for value in header_values(headers, name)
               for part in value.split(","))


def body_framing(headers, response_without_body=False, is_response=False):
    """("length", n), ("chunked", None) or ("close", None) (RFC 9112 6.3)."""
    if response_without_body:
        return ("length", 0)
    codings = [c.strip().lower() for value in
               header_values(headers, "transfer-encoding")
               for c in value.split(",") if c.strip()]
    if codings:
        if codings[-1] == "chunked":
            return ("chunked", None)
        if is_response:
            return ("close", None)
        raise BadMessage("request Transfer-Encoding without chunked")
    lengths = {v.strip() for v in header_values(headers, "content-length")}
    if len(lengths) > 1 or any(not v.isdigit() for v in lengths):
        raise BadMessage("bad Content-Length")
    if lengths:
        return ("length", int(lengths.pop()))
    return ("close", None) if is_response else ("length", 0)


class Sink:
    """A socket's sendall that, once it fails, drops the rest silently."""

    def __init__(self, sock):
        self.sock = sock
        self.failed = False

    def sendall(self, data):
        if not self.failed:
            try:
                self.sock.sendall(data)
            except OSError:
                self.failed = True


def with_connection_close(start, headers):
    """A response head rebuilt with "Connection: close" instead of any
    Connection header it had."""
    lines = [start] + [f"{k}: {v}" for k, v in headers
                       if k.lower() not in ("connection", "keep-alive")]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _send(sock, data):
    if sock is not None:  # None: read and discard
        try:
            sock.sendall(data)
        except OSError as exc:
            raise WriteFailed(str(exc)) from exc


def relay_length(rfile, sock, remaining):
    while remaining > 0:
        data = rfile.read(min(BUFFER, remaining))
        if not data:
            raise ConnectionError("end of stream inside a body")
        _send(sock, data)
        remaining -= len(data)


def relay_chunked(rfile, sock):
    """Copy a chunked body as it is, chunk framing and trailers included."""
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if not line.endswith(b"\n"):
            raise ConnectionError("bad or truncated chunk size line")
        _send(sock, line)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ConnectionError("bad chunk size") from None
        if size == 0:
            break
        relay_length(rfile, sock, size + 2)  # the data and its CRLF
    while True:  # trailer fields, up to the empty line
        line = rfile.readline(MAX_LINE + 1)
        if not line.endswith(b"\n"):
            raise ConnectionError("truncated chunked trailer")
        _send(sock, line)
        if line in (b"\r\n", b"\n"):
            return


def relay_until_close(rfile, sock):
    while True:
        data = rfile.read1(BUFFER)
        if not data:
            return
        _send(sock, data)


def relay_body(framing, rfile, sock):
    kind, length = framing
    if kind == "length":
        relay_length(rfile, sock, length)
    elif kind == "chunked":
        relay_chunked(rfile, sock)
    else:
        relay_until_close(rfile, sock)


def reset_socket(sock):
    """Abort a connection with a TCP RST."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# -- the listening socket, with "down" mode ------------------------------


class Listener:
    """Accept loop that can close its socket for a while ("down")."""

    def __init__(self, host, port, serve_connection):
        self.host, self.port = host, port
        self.serve_connection = serve_connection
        self.sock = self._bind()
        self._lock = threading.Lock()
        self._connections = set()
        self._down_request = None  # (seconds, connection to keep, event)
        self._up_at = 0.0

    def _bind(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        return sock

    def serve_forever(self):
        while True:
            self._apply_down_request()
            if self.sock is None:
                if time.monotonic() < self._up_at:
                    time.sleep(0.02)
                    continue
                try:
                    self.sock = self._bind()
                except OSError:
                    time.sleep(0.02)  # port briefly unavailable
                    continue
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready:
                continue
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._run, args=(conn,),
                             daemon=True).start()

    def _run(self, conn):
        with self._lock:
            self._connections.add(conn)
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.serve_connection(conn)
        except (ConnectionError, OSError):
            pass  # the client went away, or "down" mode reset it
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    def go_down(self, seconds, keep):
        """Refuse connections for `seconds`; returns once that is true."""
        done = threading.Event()
        with self._lock:
            self._down_request = (seconds, keep, done)
        done.wait(5)

    def up_now(self, *_signal_args):
        self._up_at = 0.0

    def _apply_down_request(self):
        with self._lock:
            request, self._down_request = self._down_request, None
            if request is None:
                return
            seconds, keep, done = request
            others = [c for c in self._connections if c is not keep]
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self._up_at = time.monotonic() + seconds
        for conn in others:
            reset_socket(conn)
        done.set()


# -- the upstream side ------------------------------------------------------


class Upstream:
    """One connection to Azurite, owned by one client connection."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=UPSTREAM_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb", buffering=BUFFER)

    def stale(self):
        """An idle connection with something to read has been closed by
        Azurite (its keep-alive timeout): do not send on it."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self):
        try:
            self.rfile.close()
            self.sock.close()
        except OSError:
            pass


# -- one client connection ---------------------------------------------------


class Drop(Exception):
    """Close the client connection without an answer."""

    def __init__(self, reset):
        super().__init__("drop")
        self.reset = reset


class Connection:
    def __init__(self, app, sock):
        self.app = app
        self.sock = sock
        self.rfile = sock.makefile("rb", buffering=BUFFER)
        self.upstream = None
        sock.settimeout(CLIENT_IDLE_TIMEOUT)

    def serve(self):
        try:
            while self._one_request():
                pass
        except Drop as drop:
            if drop.reset:
                # Linger 0, and no shutdown (which would send a FIN first):
                # the close below then sends a bare RST.
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
            else:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        except BadMessage as exc:
            self._plain(400, "Bad Request", f"azproxy: {exc}\n", close=True)
        except (ConnectionError, socket.timeout, OSError):
            pass
        finally:
            self._close_upstream()
            self.rfile.close()

    def _one_request(self):
        """Serve one request; False when the connection must close."""
        head = read_head(self.rfile)
        if head is None:
            return False
        start, headers, raw_head = head
        parts = start.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadMessage("malformed request line")
        method, target, version = parts
        client_close = (has_token(headers, "connection", "close") or
                        (version == "HTTP/1.0" and not has_token(
                            headers, "connection", "keep-alive")))
        framing = body_framing(headers)
        started = time.monotonic()

        if target.startswith(CONTROL_PREFIX):
            body = self._read_control_body(framing)
            status, document, close = self.app.control(method, target, body,
                                                       self.sock)
            self._json(status, document, close or client_close)
            return not (close or client_close)

        app = self.app
        operation = operation_name(method, target, headers)
        app.stats.request(operation)
        expect = any(v.strip().lower() == "100-continue"
                     for v in header_values(headers, "expect"))
        has_body = framing != ("length", 0)

        fault = app.faults.take(method, operation)
        if fault is not None:
            app.stats.fault(fault["mode"])
            if fault["mode"] == "delay":
                time.sleep(fault["seconds"])
            elif fault["mode"] == "drop":
                if has_body and not expect:
                    relay_body(framing, self.rfile, None)  # read, discard
                raise Drop(fault["reset"])
            else:  # "error"
                # A client waiting for "100 Continue" never sends the body:
                # answer and close.  Otherwise read the body first so the
                # connection stays usable.
                if has_body and not expect:
                    relay_body(framing, self.rfile, None)
                close = client_close or (has_body and expect)
                self._azure_error(method, headers, fault["status"], close)
                app.stats.status(fault["status"])
                self._log(method, target, fault["status"], started, "fault")
                return not close

        status, keep = self._forward(method, raw_head, framing, expect,
                                     has_body)
        app.stats.status(status)
        self._log(method, target, status, started, "")
        return keep and not client_close

    def _forward(self, method, raw_head, framing, expect, has_body):
        """Send the request to Azurite and its answer back.
        Returns (status, whether the client connection may stay open)."""
        if self.upstream is not None and self.upstream.stale():
            self._close_upstream()
        if self.upstream is None:
            try:
                self.upstream = Upstream(self.app.upstream_port)
            except OSError as exc:
                self._plain(502, "Bad Gateway",
                            f"azproxy: Azurite does not answer: {exc}\n",
                            close=True)
                return 502, False
        up = self.upstream
        try:
            up.sock.sendall(raw_head)
        except OSError as exc:
            self._close_upstream()
            self._plain(502, "Bad Gateway",
                        f"azproxy: lost Azurite: {exc}\n", close=True)
            return 502, False

        body_sent = not has_body
        if has_body and not expect:
            # If Azurite answers early and closes, the rest of the body is
            # still read (and dropped) so that the client gets to read the
            # answer; a client that goes away mid-body ends the connection.
            sink = Sink(up.sock)
            relay_body(framing, self.rfile, sink)
            body_sent = not sink.failed

        while True:
            try:
                head = read_head(up.rfile)
            except (OSError, BadMessage) as exc:
                head, error = None, exc
            else:
                error = "closed the connection"
            if head is None:
                self._close_upstream()
                self._plain(502, "Bad Gateway",
                            f"azproxy: Azurite gave no answer: {error}\n",
                            close=True)
                return 502, False
            start, headers, raw = head
            try:
                status = int(start.split(" ", 2)[1])
            except (IndexError, ValueError):
                self._close_upstream()
                self._plain(502, "Bad Gateway",
                            "azproxy: malformed answer from Azurite\n",
                            close=True)
                return 502, False
            if 100 <= status < 200:
                self.sock.sendall(raw)  # interim answer, e.g. 100 Continue
                if status == 100 and not body_sent:
                    relay_body(framing, self.rfile, up.sock)
                    body_sent = True
                continue
            break

        no_body = method == "HEAD" or status in (204, 304)
        response_framing = body_framing(headers, no_body, is_response=True)
        if not body_sent and not has_token(headers, "connection", "close"):
            # Azurite answered before taking the whole body: this
            # connection will close, so say so (a response head is not
            # signed; changing it breaks nothing).
            raw = with_connection_close(start, headers)
        self.sock.sendall(raw)
        relay_body(response_framing, up.rfile, self.sock)
        upstream_close = (response_framing[0] == "close" or
                          has_token(headers, "connection", "close"))
        if upstream_close or not body_sent:
            self._close_upstream()
        # If the client's body was never read, the connection is out of
        # step: close it (Azurite's answer said nothing about that).
        return status, not upstream_close and body_sent

    def _read_control_body(self, framing):
        kind, length = framing
        if kind != "length" or length > MAX_CONTROL_BODY:
            raise BadMessage("control requests need a small Content-Length")
        data = self.rfile.read(length)
        if len(data) != length:
            raise ConnectionError("truncated control request")
        return data

    def _close_upstream(self):
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None

    # -- answers made by the proxy itself --

    def _write(self, status, reason, headers, body, close, head_only=False):
        headers = list(headers) + [
            ("Content-Length", str(len(body))),
            ("Date", email.utils.formatdate(usegmt=True))]
        if close:
            headers.append(("Connection", "close"))
        text = f"HTTP/1.1 {status} {reason}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        self.sock.sendall(text.encode("latin-1") +
                          (b"" if head_only else body))

    def _plain(self, status, reason, text, close):
        try:
            self._write(status, reason, [("Content-Type", "text/plain")],
                        text.encode(), close)
        except OSError:
            pass

    def _json(self, status, document, close):
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found",
                  503: "Service Unavailable"}.get(status, "Status")
        self._write(status, reason, [("Content-Type", "application/json")],
                    json.dumps(document, indent=1).encode(), close)

    def _azure_error(self, method, request_headers, status, close):
        """An injected error, shaped like Azure's own."""
        code, message = AZURE_ERRORS[status]
        request_id = str(uuid.uuid4())
        now = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())
        body = ('<?xml version="1.0" encoding="utf-8"?><Error><Code>'
                f"{code}</Code><Message>{message}\nRequestId:{request_id}\n"
                f"Time:{now}</Message></Error>").encode()
        headers = [("Content-Type", "application/xml"),
                   ("Server", AZURE_SERVER),
                   ("x-ms-request-id", request_id),
                   ("x-ms-error-code", code)]
        for value in header_values(request_headers, "x-ms-version")[:1]:
            headers.append(("x-ms-version", value))
        for value in header_values(request_headers,
                                   "x-ms-client-request-id")[:1]:
            headers.append(("x-ms-client-request-id", value))
        reason = {500: "Internal Server Error",
                  503: "Service Unavailable"}[status]
        self._write(status, reason, headers, body, close,
                    head_only=(method == "HEAD"))

    def _log(self, method, target, status, started, note):
        if self.app.log_requests:
            sys.stderr.write("%s %s %d %.1fms %s\n" % (
                method, target, status, 1000 * (time.monotonic() - started),
                note))
            sys.stderr.flush()


# -- the control endpoint -----------------------------------------------------


class App:
    def __init__(self, args):
        self.upstream_port = args.upstream_port
        self.log_requests = args.log_requests
        self.faults = faults_mod.Faults()
        self.stats = faults_mod.Stats()
        self.listener = Listener(args.host, args.port, self.serve_connection)

    def serve_connection(self, sock):
        self.stats.connection()
        Connection(self, sock).serve()

    def control(self, method, target, body, sock):
        """/__fixture/{health,stats,faults}: never faulted, not counted as
        requests.  Returns (status, JSON document, close connection)."""
        name = target[len(CONTROL_PREFIX):].partition("?")[0].rstrip("/")
        if (method, name) == ("GET", "health"):
            return self._health()
        if (method, name) == ("GET", "stats"):
            return 200, self.stats.snapshot(), False
        if (method, name) == ("DELETE", "stats"):
            self.stats.reset()
            return 200, {"ok": True}, False
        if (method, name) == ("GET", "faults"):
            return 200, {"rules": self.faults.describe()["rules"]}, False
        if (method, name) == ("DELETE", "faults"):
            self.faults.reset()
            return 200, {"ok": True}, False
        if (method, name) == ("POST", "faults"):
            return self._add_faults(body, sock)
        return 404, {"error": f"no control route {method} {target}"}, False

    def _health(self):
        """Azurite answers anything (403 to an unsigned request) with its
        Server header: that is enough to know it is up."""
        try:
            with socket.create_connection(("127.0.0.1", self.upstream_port),
                                          timeout=5) as sock:
                sock.sendall(b"GET /devstoreaccount1?comp=list HTTP/1.1\r\n"
                             b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
                rfile = sock.makefile("rb")
                head = read_head(rfile)
        except (OSError, BadMessage) as exc:
            return 503, {"ok": False, "upstream": str(exc)}, False
        if head is None:
            return 503, {"ok": False, "upstream": "no answer"}, False
        server = (header_values(head[1], "server") or [""])[0]
        ok = server.startswith("Azurite-Blob")
        return (200 if ok else 503), {
            "ok": ok, "upstream_status": int(head[0].split(" ")[1]),
            "upstream_server": server}, False

    def _add_faults(self, body, sock):
        try:
            specs = json.loads(body or b"null")
            specs = specs if isinstance(specs, list) else [specs]
            rules = [faults_mod.parse_rule(s) for s in specs]
        except (ValueError, faults_mod.FaultError) as exc:
            return 400, {"error": str(exc)}, False
        if any(r["mode"] == "fail_part" for r in rules):
            return 400, {"error": "fail_part is S3 multipart only; use "
                         '{"mode": "error", "operation": "PutBlock"}'}, False
        close = False
        for rule in rules:
            if rule["mode"] == "reset":
                self.faults.reset()
            elif rule["mode"] == "down":
                self.stats.fault("down")
                # Close the listener before answering, so a client that
                # reads this answer is already refused on its next connect.
                self.listener.go_down(rule["seconds"], keep=sock)
                close = True
            else:
                self.faults.add(rule)
        return 200, {"ok": True, "rules": rules}, close


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1",
                        help="loopback IPv4 address to listen on")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True,
                        help="Azurite's blob port on 127.0.0.1")
    parser.add_argument("--log-requests", action="store_true",
                        help="one line per request on stderr")
    args = parser.parse_args(argv)
    if not args.host.startswith("127."):
        parser.error("the fixture only listens on 127.x.x.x addresses")
    return args


def main(argv=None):
    args = parse_args(argv)
    app = App(args)
    signal.signal(signal.SIGUSR1, app.listener.up_now)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sys.stderr.write(f"azproxy listening on {args.host}:{args.port}, "
                     f"Azurite on 127.0.0.1:{args.upstream_port}\n")
    sys.stderr.flush()
    app.listener.serve_forever()


if __name__ == "__main__":
    main()
