"""GOOG4-HMAC-SHA256: Cloud Storage's own V4 signatures with an HMAC key.

Used in the fixture's GCS mode only (gcs.py).  Cloud Storage documents
the process on three pages: "Signatures" (authentication/signatures:
string to sign, signing key), "Canonical requests"
(authentication/canonical-requests) and "V4 signing process with your
own program" (access-control/signing-urls-manually: the query parameters
of a signed URL).  Written from those pages with hashlib/hmac, not with
botocore, whose signer knows only AWS4:

    canonical request = METHOD \\n PATH \\n CANONICAL_QUERY \\n
                        CANONICAL_HEADERS \\n SIGNED_HEADERS \\n PAYLOAD
    string to sign    = GOOG4-HMAC-SHA256 \\n TIMESTAMP \\n
                        DATE/LOCATION/storage/goog4_request \\n
                        hex(SHA-256(canonical request))
    signing key       = HMAC(HMAC(HMAC(HMAC("GOOG4" + secret, DATE),
                        LOCATION), "storage"), "goog4_request")
    signature         = hex(HMAC-SHA256(signing key, string to sign))

Header-signed requests carry "Authorization: GOOG4-HMAC-SHA256
Credential=ID/DATE/LOCATION/storage/goog4_request, SignedHeaders=...,
Signature=..." and x-goog-date; signed URLs carry X-Goog-Algorithm,
X-Goog-Credential, X-Goog-Date, X-Goog-Expires (at most 604800),
X-Goog-SignedHeaders and X-Goog-Signature.  PAYLOAD is the value of a
signed x-goog-content-sha256 header, else UNSIGNED-PAYLOAD (always the
case for a signed URL that signs no such header).  LOCATION is not
checked: "auto" or any region is accepted, as by Cloud Storage.
"""

import calendar
import hashlib
import hmac
import re
import time
from urllib.parse import quote

from .s3xml import S3Error
from .sigv4 import AuthResult

ALGORITHM = "GOOG4-HMAC-SHA256"
SERVICE = "storage"
TERMINATOR = "goog4_request"
UNSIGNED = "UNSIGNED-PAYLOAD"
MAX_EXPIRES = 7 * 24 * 3600  # signing-urls-manually: "604800 seconds"
MAX_SKEW_SECONDS = 15 * 60
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_QUERY_NAMES = ("X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date",
                "X-Goog-Expires", "X-Goog-SignedHeaders", "X-Goog-Signature")


# Statuses of Cloud Storage's codes that S3 does not have.
GCS_STATUS = {"CrcMismatch": 400, "ExcessHeaderValues": 400,
              "ExpiredToken": 400, "MalformedSecurityHeader": 400}


def gcs_error(code, message, details=None, status=None, **extra):
    """An error as Cloud Storage's XML API writes it: Code, Message and
    Details ("HTTP status and error codes for XML", reference-status)."""
    fields = {"Details": details} if details else {}
    fields.update(extra)
    return S3Error(code, message, status=status or GCS_STATUS.get(code),
                   **fields)


def malformed(details, **extra):
    # What Cloud Storage answers for malformed or missing V4 fields, for a
    # signed header the request lacks and for an unsigned x-goog-* header.
    return gcs_error("MalformedSecurityHeader", "Its value is malformed.",
                     details, status=400, **extra)


def query_param(request, name):
    """A signed-URL parameter; Google's libraries also send lower case."""
    lower = name.lower()
    for key, value in request.query:
        if key.lower() == lower:
            return value
    return None


def is_goog4(request):
    header = request.header("authorization") or ""
    return header.startswith(ALGORITHM) or \
        query_param(request, "X-Goog-Algorithm") is not None


def signed_headers_of(request):
    """The SignedHeaders list of a GOOG4 request (lower case)."""
    header = request.header("authorization")
    if header and header.startswith(ALGORITHM):
        text = _parse_authorization(header)["SignedHeaders"]
    else:
        text = query_param(request, "X-Goog-SignedHeaders") or ""
    return text.split(";")


class Goog4Verifier:
    def __init__(self, credentials):
        self.credentials = {c.access_key: c for c in credentials}

    def authenticate(self, request, now=None):
        now = time.time() if now is None else now
        header = request.header("authorization")
        if header and query_param(request, "X-Goog-Algorithm") is not None:
            raise gcs_error("InvalidArgument", "Invalid argument.",
                            "Only one authentication mechanism may be "
                            "used: the Authorization header or the "
                            "X-Goog-* query parameters, not both.")
        if header:
            return self._header_auth(request, header, now)
        return self._query_auth(request, now)

    # -- Authorization: GOOG4-HMAC-SHA256 ...  -----------------------------

    def _header_auth(self, request, header, now):
        fields = _parse_authorization(header)
        timestamp = request.header("x-goog-date")
        if timestamp is None:
            raise malformed("Missing required header x-goog-date: a "
                            "GOOG4-HMAC-SHA256 request must carry it.")
        _check_timestamp(timestamp, "x-goog-date")
        credential, date, location = self._scope(fields["Credential"])
        if timestamp[:8] != date:
            raise malformed("The date of the credential scope does not "
                            "match x-goog-date.")
        skew = abs(now - _epoch(timestamp))
        if skew > MAX_SKEW_SECONDS:
            raise gcs_error("RequestTimeTooSkewed", "The difference between "
                            "the request time and the server's time is too "
                            "large.", f"x-goog-date {timestamp}",
                            status=403)
        signed = _signed_list(fields["SignedHeaders"])
        query = list(request.query)
        self._compare(request, query, signed, timestamp, date, location,
                      credential, fields["Signature"])
        return AuthResult(credential.access_key, presigned=False)

    # -- signed URLs ---------------------------------------------------------

    def _query_auth(self, request, now):
        params = {n: query_param(request, n) for n in _QUERY_NAMES}
        missing = [n for n, v in params.items() if v is None]
        if missing:
            raise malformed("Missing required query parameter(s): " +
                            ", ".join(missing), ParameterName=missing[0])
        if params["X-Goog-Algorithm"] != ALGORITHM:
            raise malformed(f"Unsupported X-Goog-Algorithm "
                            f"{params['X-Goog-Algorithm']!r}: the fixture "
                            f"verifies {ALGORITHM} (HMAC keys) only.",
                            ParameterName="X-Goog-Algorithm")
        timestamp = params["X-Goog-Date"]
        _check_timestamp(timestamp, "X-Goog-Date")
        expires = params["X-Goog-Expires"]
        if not re.fullmatch(r"\d{1,10}", expires) or int(expires) < 1:
            raise malformed("X-Goog-Expires must be a number of seconds.",
                            ParameterName="X-Goog-Expires")
        if int(expires) > MAX_EXPIRES:
            raise malformed(f"Max allowed expiration interval is seven days "
                            f"{MAX_EXPIRES}", ParameterName="X-Goog-Expires")
        credential, date, location = self._scope(
            params["X-Goog-Credential"])
        if timestamp[:8] != date:
            raise malformed("The date of the credential scope does not "
                            "match X-Goog-Date.",
                            ParameterName="X-Goog-Credential")
        ends = _epoch(timestamp) + int(expires)
        if now > ends:
            raise gcs_error(
                "ExpiredToken", "The provided token has expired.",
                "Request signature expired at: " + time.strftime(
                    "%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ends)),
                status=400)
        signed = _signed_list(params["X-Goog-SignedHeaders"])
        # "all query string parameters except X-Goog-Signature"
        query = [(k, v) for k, v in request.query
                 if k.lower() != "x-goog-signature"]
        self._compare(request, query, signed, timestamp, date, location,
                      credential, params["X-Goog-Signature"])
        return AuthResult(credential.access_key, presigned=True)

    # -- shared ------------------------------------------------------------

    def _scope(self, scope):
        parts = scope.split("/")
        if len(parts) != 5 or not re.fullmatch(r"\d{8}", parts[1]):
            raise malformed("The credential scope is malformed; expecting "
                            "ACCESS_ID/YYYYMMDD/LOCATION/storage/"
                            "goog4_request.")
        access_id, date, location, service, terminator = parts
        if service != SERVICE or terminator != TERMINATOR:
            raise malformed(f"The credential scope must name service "
                            f"'{SERVICE}' and end with '{TERMINATOR}'.")
        credential = self.credentials.get(access_id)
        if credential is None:
            raise gcs_error("InvalidAccessKeyId", "The access key ID you "
                            "provided does not exist in our records.",
                            f"Unknown HMAC access ID {access_id}",
                            status=403)
        return credential, date, location

    def _compare(self, request, query, signed, timestamp, date, location,
                 credential, provided):
        if "host" not in signed:
            raise malformed("The host header must be signed.")
        check_goog_headers_signed(request, signed)
        canonical = canonical_request(request, query, signed)
        scope = f"{date}/{location}/{SERVICE}/{TERMINATOR}"
        string_to_sign = "\n".join([
            ALGORITHM, timestamp, scope,
            hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
        key = signing_key(credential.secret_key, date, location)
        expected = hmac.new(key, string_to_sign.encode("utf-8"),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, provided.lower()):
            raise gcs_error(
                "SignatureDoesNotMatch", "Access denied.",
                "The request signature we calculated does not match the "
                "signature you provided. Check your Google secret key and "
                "signing method.", status=403,
                StringToSign=string_to_sign, CanonicalRequest=canonical)


def check_goog_headers_signed(request, signed):
    """Every x-goog-* header must be signed: Cloud Storage refuses an
    unsigned one (MalformedSecurityHeader), whichever V4 algorithm."""
    unsigned = sorted({k.lower() for k, _ in request.headers
                       if k.lower().startswith("x-goog-") and
                       k.lower() not in signed})
    if unsigned:
        raise malformed("Found unsigned x-goog-* header(s): " +
                        ", ".join(unsigned) + "; they must be signed.",
                        HeadersNotSigned=", ".join(unsigned))


def signing_key(secret, date, location):
    key = ("GOOG4" + secret).encode("utf-8")
    for part in (date, location, SERVICE, TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def canonical_request(request, query, signed):
    """canonical-requests: the path as sent, the query sorted and
    percent-encoded (RFC 3986 unreserved characters kept), each signed
    header "name:value" with its value trimmed and inner whitespace
    collapsed (several values joined by commas), then the payload."""
    encoded = sorted((_encode(k), _encode(v)) for k, v in query)
    lines = []
    for name in signed:
        values = request.header_values(name)
        if not values:
            raise malformed("Header was included in signedheaders, but not "
                            "in the request.", HeaderName=name)
        lines.append(name + ":" + ",".join(" ".join(v.split())
                                           for v in values))
    payload = UNSIGNED
    if "x-goog-content-sha256" in signed:
        payload = request.header("x-goog-content-sha256")
    return "\n".join([request.method, request.raw_path,
                      "&".join(f"{k}={v}" for k, v in encoded),
                      "\n".join(lines) + "\n", ";".join(signed), payload])


def _encode(text):
    return quote(text, safe="-_.~")


def _signed_list(text):
    """SignedHeaders: lower-case names, sorted, separated by ";"."""
    names = text.split(";")
    if not text or any(n != n.lower() or not n for n in names) or \
            names != sorted(set(names)):
        raise malformed("SignedHeaders must list lower-case header names, "
                        "sorted and without repeats, separated by ';'.",
                        SignedHeaders=text)
    return names


def _parse_authorization(header):
    fields = {}
    for part in header[len(ALGORITHM):].split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name] = value
    missing = [n for n in ("Credential", "SignedHeaders", "Signature")
               if n not in fields]
    if missing:
        raise malformed("The Authorization header is missing " +
                        ", ".join(missing) + ".")
    return fields


def _check_timestamp(text, name):
    if not re.fullmatch(r"\d{8}T\d{6}Z", text or ""):
        raise malformed(f"{name} must be in the ISO 8601 basic format "
                        "YYYYMMDD'T'HHMMSS'Z'.", ParameterName=name)
    try:
        time.strptime(text, TIMESTAMP_FORMAT)
    except ValueError:
        raise malformed(f"{name} is not a valid time.",
                        ParameterName=name) from None


def _epoch(timestamp):
    return calendar.timegm(time.strptime(timestamp, TIMESTAMP_FORMAT))


def check_payload(request, body):
    """x-goog-content-sha256 (a hex SHA-256 or UNSIGNED-PAYLOAD) against
    the body of a GOOG4 request."""
    declared = request.header("x-goog-content-sha256")
    if declared is None or declared == UNSIGNED:
        return
    if not re.fullmatch(r"[0-9a-fA-F]{64}", declared):
        raise gcs_error("InvalidArgument", "Invalid argument.",
                        "x-goog-content-sha256 must be UNSIGNED-PAYLOAD or "
                        "the hex SHA-256 of the payload.")
    if hashlib.sha256(body).hexdigest() != declared.lower():
        raise gcs_error("BadDigest", "The SHA-256 you specified did not "
                        "match what we received.",
                        "x-goog-content-sha256 does not match the payload.")
