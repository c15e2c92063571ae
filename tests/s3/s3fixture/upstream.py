"""Keep-alive HTTP client for the s3rver behind the proxy."""

import http.client
import threading
import time
from urllib.parse import urlencode

# s3rver does not verify V4 signatures, but it wants its own access key and
# a current x-amz-date before it accepts e.g. response-* overrides.
_DUMMY_SIGNATURE = "0" * 64


def _s3rver_auth_headers():
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return {
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential=S3RVER/{stamp[:8]}/us-east-1/s3/"
            f"aws4_request, SignedHeaders=host, Signature={_DUMMY_SIGNATURE}"),
        "x-amz-date": stamp,
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
    }


class Upstream:
    def __init__(self, host, port, timeout=120.0):
        self.host = host
        self.port = port
        self.timeout = timeout
        self._idle = []
        self._lock = threading.Lock()

    def request(self, method, path, query=(), headers=None, body=b""):
        """Send one request; return (status, [(name, value)], body bytes)."""
        url = path + ("?" + urlencode(list(query)) if query else "")
        all_headers = dict(headers or {})
        all_headers.update(_s3rver_auth_headers())
        all_headers["Content-Length"] = str(len(body))
        conn, reused = self._checkout()
        try:
            return self._exchange(conn, method, url, all_headers, body)
        except (http.client.RemoteDisconnected, ConnectionResetError,
                BrokenPipeError):
            if not reused:
                raise
        # Node closed an idle keep-alive connection under us; the request
        # never reached s3rver, so one retry on a new connection is safe.
        return self._exchange(self._new_connection(), method, url,
                              all_headers, body)

    def _exchange(self, conn, method, url, headers, body):
        try:
            conn.request(method, url, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            conn.close()
            raise
        result = (response.status, response.getheaders(), data)
        if response.will_close:
            conn.close()
        else:
            self._checkin(conn)
        return result

    def _checkout(self):
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._new_connection(), False

    def _checkin(self, conn):
        with self._lock:
            self._idle.append(conn)

    def _new_connection(self):
        return http.client.HTTPConnection(self.host, self.port,
                                          timeout=self.timeout)
