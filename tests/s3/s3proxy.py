#!/usr/bin/python3
"""Strict S3 front for s3rver: a loopback test fixture.

Listens on 127.0.0.1:PORT, verifies every request's SigV4 signature with
botocore, enforces what s3rver does not (conditional writes, multipart
bookkeeping, keys with "//", sorted listings, payload digests, versioning,
encryption headers, tags, storage classes, browser POST uploads, CORS) and
forwards the data path to s3rver.  /__fixture/* is an unsigned control
endpoint for fault injection and statistics.  With --gcs it answers as
Google Cloud Storage's XML API does for HMAC keys (s3fixture/gcs.py).
See README.md for the full contract.
"""

import argparse
import http
import http.client
import http.server
import json
import os
import secrets
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback

# botocore must use its pure-Python signer, never awscrt's.
os.environ["BOTO_DISABLE_CRT"] = "true"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from s3fixture import faults as faults_mod  # noqa: E402
from s3fixture import gcs as gcs_mod  # noqa: E402
from s3fixture.request import parse_target  # noqa: E402
from s3fixture.s3xml import S3Error, error_document  # noqa: E402
from s3fixture.service import Response, S3Service  # noqa: E402
from s3fixture.sigv4 import Credential, Verifier  # noqa: E402
from s3fixture.store import Store  # noqa: E402
from s3fixture.upstream import Upstream  # noqa: E402

CONTROL_PREFIX = "/__fixture/"
MAX_BODY = 5 * 1024 ** 3  # S3's single PUT limit
# A POST Object body is a 5 GiB file plus up to 20 KiB of form fields
# (post_upload.py checks both limits with S3's errors).
MAX_POST_BODY = MAX_BODY + 64 * 1024
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
HOST_ID = "fixture-host-id"


class Drop:
    """Handler result: close the connection without answering."""

    def __init__(self, reset):
        self.reset = reset  # RST instead of an orderly FIN


# -- the listening socket, with "down" mode ----------------------------


class Listener:
    """Accept loop that can close its socket for a while ("down")."""

    def __init__(self, host, port, serve_connection):
        self.host, self.port = host, port
        self.serve_connection = serve_connection
        self.sock = self._bind()
        self._lock = threading.Lock()
        self._connections = set()
        self._down_request = None  # (seconds, keep socket, done event)
        self._up_at = None

    def _bind(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        return sock

    def serve_forever(self):
        while True:
            self._apply_down_request()
            if self.sock is None and not self._come_back_up():
                time.sleep(0.02)
                continue
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready:
                continue
            try:
                conn, address = self.sock.accept()
            except OSError:
                continue  # e.g. the client gave up, or out of descriptors
            threading.Thread(target=self._run, args=(conn, address),
                             daemon=True).start()

    def _come_back_up(self):
        """Rebind after a "down" period; False while still down."""
        if time.monotonic() < self._up_at:
            return False
        try:
            self.sock = self._bind()
        except OSError:
            return False  # port briefly unavailable: try again shortly
        return True

    def _run(self, conn, address):
        with self._lock:
            self._connections.add(conn)
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.serve_connection(conn, address)
        except (ConnectionError, OSError):
            pass  # the client went away, or "down" mode reset us
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    def go_down(self, seconds, keep=None):
        """Refuse connections for `seconds`; returns once that is true."""
        done = threading.Event()
        with self._lock:
            self._down_request = (seconds, keep, done)
        done.wait(5)

    def up_now(self, *_signal_args):
        self._up_at = 0

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
            _reset(conn)
        done.set()


def _reset(conn):
    """Abort a connection with a TCP RST."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# -- control endpoint --------------------------------------------------


class Control:
    """/__fixture/{health,stats,faults}: unsigned, never faulted."""

    def __init__(self, app):
        self.app = app

    def handle(self, method, path, body, conn):
        name = path[len(CONTROL_PREFIX):].partition("?")[0].rstrip("/")
        route = {("GET", "health"): self.health,
                 ("GET", "stats"): self.stats,
                 ("DELETE", "stats"): self.reset_stats,
                 ("GET", "faults"): self.describe_faults,
                 ("DELETE", "faults"): self.reset_faults,
                 ("POST", "faults"): self.add_faults}.get((method, name))
        if route is None:
            return _json(404, {"error": f"no control route {method} {path}"})
        return route(body, conn)

    def health(self, body, conn):
        try:
            status, _, _ = self.app.upstream.request("GET", "/")
        except OSError as exc:
            return _json(503, {"ok": False, "upstream": str(exc)})
        return _json(200 if status == 200 else 503,
                     {"ok": status == 200, "upstream_status": status})

    def stats(self, body, conn):
        return _json(200, self.app.stats.snapshot())

    def reset_stats(self, body, conn):
        self.app.stats.reset()
        return _json(200, {"ok": True})

    def describe_faults(self, body, conn):
        return _json(200, self.app.faults.describe())

    def reset_faults(self, body, conn):
        self.app.faults.reset()
        return _json(200, {"ok": True})

    def add_faults(self, body, conn):
        try:
            specs = json.loads(body or b"null")
            specs = specs if isinstance(specs, list) else [specs]
            rules = [faults_mod.parse_rule(s) for s in specs]
        except (ValueError, faults_mod.FaultError) as exc:
            return _json(400, {"error": str(exc)})
        response = _json(200, {"ok": True, "rules": rules})
        for rule in rules:
            if rule["mode"] == "reset":
                self.app.faults.reset()
            elif rule["mode"] == "down":
                self.app.stats.fault("down")
                # Close the listener before answering, so a client that
                # reads this answer is already refused on its next connect.
                self.app.listener.go_down(rule["seconds"], keep=conn)
                response.close = True
            else:
                self.app.faults.add(rule)
        return response


def _json(status, document):
    return Response(status, [("Content-Type", "application/json")],
                    json.dumps(document, indent=1).encode())


# -- HTTP handling -----------------------------------------------------


class App:
    """Everything a connection handler needs."""

    def __init__(self, args):
        self.upstream = Upstream("127.0.0.1", args.upstream_port)
        self.faults = faults_mod.Faults()
        self.stats = faults_mod.Stats()
        self.gcs = args.gcs
        verifier = Verifier(args.credentials, args.region,
                            any_region=args.gcs)
        if args.gcs:
            self.service = gcs_mod.GcsService(
                self.upstream, Store(args.data_dir), verifier, self.faults,
                self.stats, args.min_part_size,
                multipart_preconditions=args.gcs_multipart_preconditions,
                bearer_tokens=set(filter(None, (args.gcs_bearer_tokens or "").split(","))))
        else:
            self.service = S3Service(self.upstream, Store(args.data_dir),
                                     verifier, self.faults, self.stats,
                                     args.min_part_size)
        self.control = Control(self)
        self.log_requests = args.log_requests
        self.listener = Listener(args.host, args.port, self.serve_connection)

    def serve_connection(self, conn, address):
        self.stats.connection()
        Handler(conn, address, self)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AmazonS3"
    sys_version = ""
    timeout = 300  # idle keep-alive connections are closed after this

    def do_GET(self):
        self._handle()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_OPTIONS = do_GET

    def _handle(self):
        started = time.monotonic()
        request_id = secrets.token_hex(8).upper()
        body = self._read_body(request_id)
        if body is None:
            return
        app = self.server
        if self.path.startswith(CONTROL_PREFIX):
            response = app.control.handle(self.command, self.path, body,
                                          self.connection)
            self.close_connection = self.close_connection or response.close
        else:
            response = self._s3(app, request_id, body)
            if not isinstance(response, Drop):
                app.stats.status(response.status)
        if isinstance(response, Drop):
            self._drop(response.reset)
            return
        self._write(response, request_id)
        if app.log_requests:
            sys.stderr.write("%s %s %d %.1fms\n" % (
                self.command, self.path, response.status,
                1000 * (time.monotonic() - started)))

    def _s3(self, app, request_id, body):
        """One S3 request: parse, count, inject faults, serve."""
        try:
            req = parse_target(self.command, self.path,
                               list(self.headers.items()), body, app.gcs)
        except S3Error as error:
            return _error_response(error, request_id, app.gcs)
        req.request_id = request_id
        app.stats.request(req.operation)
        response = self._serve(app, req, request_id)
        if not isinstance(response, Drop):
            response.headers += _cors_headers(app, req)
        return response

    def _serve(self, app, req, request_id):
        fault = app.faults.take(req.method, req.operation)
        if fault is not None:
            app.stats.fault(fault["mode"])
            injected = _apply_fault(fault, request_id, app.gcs)
            if injected is not None:
                return injected
        try:
            _check_host(self.headers.get("host"))
            return app.service.handle(req)
        except S3Error as error:
            return _error_response(error, request_id, app.gcs)
        except (ConnectionError, TimeoutError,
                http.client.HTTPException) as exc:
            return _error_response(S3Error(
                "InternalError", f"s3rver did not answer: {exc!r}"),
                request_id, app.gcs)
        except Exception:  # a fixture bug must still answer, and be seen
            traceback.print_exc()
            return _error_response(S3Error(
                "InternalError", "We encountered an internal error. Please "
                "try again."), request_id, app.gcs)

    def _read_body(self, request_id):
        """Read a Content-Length body; answer and return None if we can't."""
        def fail(error):
            self._write(_error_response(error, request_id, self.server.gcs),
                        request_id)
        if self.headers.get("transfer-encoding"):
            self.close_connection = True
            fail(S3Error(
                "NotImplemented", "Transfer-Encoding is not implemented by "
                "the test fixture; send Content-Length."))
            return None
        length = self.headers.get("content-length")
        if length is None:
            if self.command == "PUT":
                fail(S3Error(
                    "MissingContentLength", "You must provide the "
                    "Content-Length HTTP header."))
                return None
            return b""
        limit = MAX_POST_BODY if self.command == "POST" else MAX_BODY
        if not length.isdigit() or int(length) > limit:
            self.close_connection = True
            fail(S3Error(
                "EntityTooLarge" if length.isdigit() else "InvalidArgument",
                "Bad Content-Length"))
            return None
        body = self.rfile.read(int(length))
        if len(body) != int(length):
            self.close_connection = True
            fail(S3Error(
                "IncompleteBody", "You did not provide the number of bytes "
                "specified by the Content-Length HTTP header"))
            return None
        return body

    def _write(self, response, request_id):
        """Send a whole response in one write (no Nagle stalls)."""
        headers = [(k, v) for k, v in response.headers
                   if k.lower() != "content-length"]
        no_body = self.command == "HEAD" or response.status in (204, 304)
        if self.command == "HEAD":
            headers += [(k, v) for k, v in response.headers
                        if k.lower() == "content-length"]
        elif response.status not in (204, 304):
            headers.append(("Content-Length", str(len(response.body))))
        if self.server.gcs:
            # reference-headers: x-guploader-uploadid on every answer;
            # Cloud Storage's answers say "Server: UploadServer".
            headers += [("x-guploader-uploadid", request_id),
                        ("Date", self.date_time_string()),
                        ("Server", "UploadServer")]
        else:
            headers += [("x-amz-request-id", request_id),
                        ("x-amz-id-2", HOST_ID),
                        ("Date", self.date_time_string()),
                        ("Server", self.server_version)]
        if self.close_connection:
            headers.append(("Connection", "close"))
        try:
            reason = http.HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
        head = [f"HTTP/1.1 {response.status} {reason}"]
        head += [f"{k}: {_header_text(v)}" for k, v in headers]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(data + (b"" if no_body else response.body))

    def _drop(self, reset):
        self.close_connection = True
        try:
            if reset:
                _reset(self.connection)
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def log_message(self, *args):
        pass  # access logging is opt-in (--log-requests)


def _apply_fault(fault, request_id, gcs=False):
    """Response for an injected fault, or None to carry on normally."""
    mode = fault["mode"]
    if mode == "delay":
        time.sleep(fault["seconds"])
        return None
    if mode == "drop":
        return Drop(fault["reset"])
    code, message = faults_mod.ERROR_CODES[fault["status"]]
    return _error_response(S3Error(code, message, status=fault["status"]),
                           request_id, gcs)


def _cors_headers(app, req):
    """S3 adds CORS headers to any answer, errors included, when the
    bucket's rules allow the request's Origin and method."""
    try:
        return app.service.cors_headers(req)
    except (OSError, ValueError, S3Error):
        return []  # never let CORS bookkeeping break an answer


def _header_text(value):
    text = str(value)
    try:
        text.encode("latin-1")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8").decode("latin-1")


def _error_response(error, request_id, gcs=False):
    if gcs:
        return Response(error.status, [
            ("Content-Type", "application/xml; charset=UTF-8")] +
            gcs_mod.response_headers(error.headers),
            gcs_mod.error_document(error))
    return Response(error.status,
                    [("Content-Type", "application/xml")] + error.headers,
                    error_document(error, request_id, HOST_ID))


def _check_host(host):
    """Only path-style requests are served."""
    if host is None:
        raise S3Error("InvalidRequest", "Missing Host header")
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else \
        host[1:].split("]", 1)[0]
    if name in LOOPBACK_HOSTS or _is_ipv4(name):
        return
    raise S3Error("InvalidRequest", "Virtual-hosted-style requests are not "
                  "supported by the test fixture; use path-style URLs "
                  f"(got Host: {host}).")


def _is_ipv4(name):
    try:
        socket.inet_aton(name)
        return name.count(".") == 3
    except OSError:
        return False


# -- command line ------------------------------------------------------


def _credential(text):
    parts = text.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise argparse.ArgumentTypeError(
            "expected ACCESS_KEY:SECRET or ACCESS_KEY:SECRET:SESSION_TOKEN")
    token = parts[2] if len(parts) == 3 else None
    return Credential(parts[0], parts[1], token)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1",
                        help="loopback IPv4 address to listen on")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True,
                        help="port of s3rver on 127.0.0.1")
    parser.add_argument("--data-dir", required=True,
                        help="s3rver's --directory")
    parser.add_argument("--credential", dest="credentials", action="append",
                        type=_credential, required=True,
                        help="ACCESS_KEY:SECRET[:SESSION_TOKEN]; repeatable. "
                             "With a token, requests must carry it.")
    parser.add_argument("--region", default="us-east-1",
                        help="region required in credential scopes")
    parser.add_argument("--min-part-size", type=int, default=5 * 1024 * 1024,
                        help="smallest non-final multipart part (bytes)")
    parser.add_argument("--log-requests", action="store_true")
    parser.add_argument("--gcs", action="store_true",
                        help="answer as Google Cloud Storage's XML API does "
                             "for HMAC keys (README.md, \"GCS mode\")")
    parser.add_argument("--gcs-multipart-preconditions", action="store_true",
                        help="GCS mode: honour x-goog-if-generation-match "
                             "on CompleteMultipartUpload (Cloud Storage "
                             "documents no preconditions for multipart "
                             "uploads; refused with 501 without this flag)")
    parser.add_argument("--gcs-bearer-tokens", metavar="TOKEN,...",
                        help="GCS mode: OAuth 2.0 access tokens taken in "
                             "\"Authorization: Bearer\" (XML API, OAuth 2.0 "
                             "authentication), as a client with a service "
                             "account's token sends them")
    args = parser.parse_args(argv)
    if not args.host.startswith("127."):
        parser.error("the fixture only listens on 127.x.x.x addresses")
    if args.gcs_multipart_preconditions and not args.gcs:
        parser.error("--gcs-multipart-preconditions needs --gcs")
    if args.gcs and any(c.token for c in args.credentials):
        parser.error("--gcs: HMAC keys have no session tokens; give "
                     "KEY:SECRET credentials")
    return args


def main(argv=None):
    args = parse_args(argv)
    app = App(args)
    signal.signal(signal.SIGUSR1, app.listener.up_now)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sys.stderr.write(f"s3proxy listening on {args.host}:{args.port}, "
                     f"s3rver on 127.0.0.1:{args.upstream_port}\n")
    sys.stderr.flush()
    app.listener.serve_forever()


if __name__ == "__main__":
    main()
