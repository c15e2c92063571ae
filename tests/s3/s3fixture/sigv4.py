"""AWS Signature Version 4 verification, delegated to botocore's signer.

Nothing here computes canonical requests or HMACs by hand: the request is
rebuilt as a botocore AWSRequest and signed again by botocore's S3 signers
with the client's credentials, timestamp, scope and signed-header list; the
two signatures are then compared.
"""

import base64
import binascii
import calendar
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from botocore.auth import S3SigV4Auth, S3SigV4PostAuth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from .s3xml import S3Error

MAX_SKEW_SECONDS = 15 * 60
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED = "UNSIGNED-PAYLOAD"
HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class _ExactHeaders:
    """Sign exactly the headers the client listed in SignedHeaders.

    botocore's default skips some names (user-agent, expect) when *choosing*
    what to sign; a verifier must use the client's choice instead.
    """

    def headers_to_sign(self, request):
        chosen = HTTPHeaders()
        for name, value in request.headers.items():
            chosen[name.lower()] = value
        return chosen


class _HeaderSigner(_ExactHeaders, S3SigV4Auth):
    pass


class _QuerySigner(_ExactHeaders, S3SigV4QueryAuth):
    pass


@dataclass
class Credential:
    access_key: str
    secret_key: str
    token: str = None


@dataclass
class IncomingRequest:
    """What the verifier needs to know about an HTTP request."""

    method: str
    raw_path: str  # as sent, still percent-encoded, without the query
    query: list  # decoded (name, value) pairs, in order
    headers: list  # (name, value) pairs as received

    def header(self, name, default=None):
        values = self.header_values(name)
        return values[0] if values else default

    def header_values(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def param(self, name, default=None):
        for key, value in self.query:
            if key == name:
                return value
        return default


@dataclass
class AuthResult:
    access_key: str
    presigned: bool


class Verifier:
    def __init__(self, credentials, region, any_region=False):
        self.credentials = {c.access_key: c for c in credentials}
        self.region = region
        # GCS mode: Cloud Storage takes AWS4-HMAC-SHA256 scopes naming any
        # region ("auto" in Google's samples; "Simple migration from
        # Amazon S3 to Cloud Storage"), and signs with the scope's region.
        self.any_region = any_region

    def authenticate(self, request, now=None):
        """Return AuthResult or raise S3Error for an unacceptable request."""
        now = time.time() if now is None else now
        header = request.header("authorization")
        presigned = request.param("X-Amz-Algorithm") is not None
        if request.param("Signature") is not None or (
            header and not header.startswith(ALGORITHM)
        ):
            raise S3Error(
                "InvalidRequest",
                "The authorization mechanism you have provided is not "
                "supported. Please use AWS4-HMAC-SHA256.",
            )
        if header and presigned:
            raise S3Error(
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm "
                "query parameter, Signature query string parameter or the "
                "Authorization header should be specified",
            )
        if header:
            return self._verify_header_auth(request, header, now)
        if presigned:
            return self._verify_presigned(request, now)
        raise S3Error("AccessDenied", "Access Denied")

    # -- header-signed requests ------------------------------------------

    def _verify_header_auth(self, request, header, now):
        fields = _parse_authorization(header)
        credential, region = self._credential_for(fields["Credential"], False)
        timestamp = request.header("x-amz-date")
        if not _valid_timestamp(timestamp):
            raise S3Error(
                "AccessDenied",
                "AWS authentication requires a valid Date or x-amz-date "
                "header",
            )
        skew = abs(now - _epoch(timestamp))
        if skew > MAX_SKEW_SECONDS:
            raise S3Error(
                "RequestTimeTooSkewed",
                "The difference between the request time and the current "
                "time is too large.",
                RequestTime=timestamp,
                ServerTime=time.strftime(TIMESTAMP_FORMAT, time.gmtime(now)),
                MaxAllowedSkewMilliseconds=MAX_SKEW_SECONDS * 1000,
            )
        if request.header("x-amz-content-sha256") is None:
            raise S3Error(
                "InvalidRequest",
                "Missing required header for this request: "
                "x-amz-content-sha256",
            )
        signed = fields["SignedHeaders"].split(";")
        self._check_common(request, credential, signed, False)
        signer = _HeaderSigner(self._botocore_credentials(credential), "s3",
                               region)
        self._compare(signer, request, request.query, signed, timestamp,
                      fields["Signature"], credential)
        return AuthResult(credential.access_key, presigned=False)

    # -- presigned URLs ----------------------------------------------------

    def _verify_presigned(self, request, now):
        params = _presign_params(request)
        credential, region = self._credential_for(params["X-Amz-Credential"],
                                                  True)
        timestamp = params["X-Amz-Date"]
        if not _valid_timestamp(timestamp):
            raise S3Error(
                "AuthorizationQueryParametersError",
                "X-Amz-Date must be in the ISO8601 Long Format "
                "\"yyyyMMdd'T'HHmmss'Z'\"",
            )
        expires = _presign_expiry(params["X-Amz-Expires"])
        if now > _epoch(timestamp) + expires:
            raise S3Error(
                "AccessDenied",
                "Request has expired",
                **{"X-Amz-Expires": expires},
                Expires=time.strftime(
                    TIMESTAMP_FORMAT, time.gmtime(_epoch(timestamp) + expires)
                ),
                ServerTime=time.strftime(TIMESTAMP_FORMAT, time.gmtime(now)),
            )
        signed = params["X-Amz-SignedHeaders"].split(";")
        self._check_common(request, credential, signed, True)
        signer = _QuerySigner(self._botocore_credentials(credential), "s3",
                              region, expires=expires)
        # "The canonical query string must include all the query parameters
        # except X-Amz-Signature."
        query = [(k, v) for k, v in request.query if k != "X-Amz-Signature"]
        self._compare(signer, request, query, signed, timestamp,
                      params["X-Amz-Signature"], credential)
        return AuthResult(credential.access_key, presigned=True)

    # -- browser-based uploads (POST Object) -------------------------------

    def verify_post_policy(self, fields):
        """Authenticate a POST Object form (S3 API reference
        "Authenticating Requests: Browser-Based Uploads Using POST (AWS
        Signature Version 4)"): x-amz-signature must be the hex
        HMAC-SHA256 of the base64 `policy` text, keyed with the SigV4
        signing key of the x-amz-credential scope (date/region/s3).
        `fields` maps lower-case field names to values; all five
        fields are present (the caller checked).  Returns the access key.
        """
        algorithm = fields["x-amz-algorithm"]
        if algorithm != ALGORITHM:
            raise S3Error("InvalidArgument", "Only AWS4-HMAC-SHA256 is "
                          "supported", ArgumentName="x-amz-algorithm",
                          ArgumentValue=algorithm)
        scope = fields["x-amz-credential"]
        credential, date = self._post_credential(scope)
        if not _valid_timestamp(fields["x-amz-date"]):
            raise S3Error("InvalidArgument", "X-Amz-Date must be in the "
                          "ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
                          ArgumentName="x-amz-date",
                          ArgumentValue=fields["x-amz-date"])
        check_token(fields.get("x-amz-security-token"), credential)
        policy, provided = fields["policy"], fields["x-amz-signature"]
        signer = S3SigV4PostAuth(self._botocore_credentials(credential),
                                 "s3", self.region)
        # Only the date of the timestamp enters the signing key.
        request = AWSRequest(method="POST", url="http://signed-host/")
        request.context["timestamp"] = date + "T000000Z"
        expected = signer.signature(policy, request)
        if not hmac.compare_digest(expected, provided.lower()):
            raise S3Error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the "
                "signature you provided. Check your key and signing method.",
                AWSAccessKeyId=credential.access_key,
                StringToSign=policy,
                SignatureProvided=provided,
                StringToSignBytes=" ".join(
                    "%02x" % b for b in policy.encode("utf-8")))
        return credential.access_key

    def _post_credential(self, scope):
        """(Credential, YYYYMMDD) of a form's x-amz-credential; S3 answers
        InvalidArgument naming the field for a bad scope."""
        def invalid(message):
            return S3Error("InvalidArgument", message,
                           ArgumentName="x-amz-credential",
                           ArgumentValue=scope)
        parts = scope.split("/")
        if len(parts) != 5 or not re.fullmatch(r"\d{8}", parts[1]):
            raise invalid("the Credential is mal-formed; expecting "
                          "\"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/"
                          "aws4_request\".")
        access_key, date, region, service, terminator = parts
        credential = self.credentials.get(access_key)
        if credential is None:
            raise S3Error(
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our "
                "records.",
                AWSAccessKeyId=access_key,
            )
        if region != self.region:
            raise invalid(f"the region '{region}' is wrong; expecting "
                          f"'{self.region}'")
        if service != "s3":
            raise invalid(f"incorrect service \"{service}\". This endpoint "
                          "belongs to \"s3\".")
        if terminator != "aws4_request":
            raise invalid(f"incorrect terminal \"{terminator}\". This "
                          "endpoint uses \"aws4_request\".")
        return credential, date

    # -- shared checks -----------------------------------------------------

    def _credential_for(self, scope, presigned):
        """(Credential, region) of a credential scope, validated."""
        error = "AuthorizationQueryParametersError" if presigned else \
            "AuthorizationHeaderMalformed"
        parts = scope.split("/")
        if len(parts) != 5 or not re.fullmatch(r"\d{8}", parts[1]):
            raise S3Error(error, "The credential scope is malformed; "
                          "expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/"
                          "aws4_request\".")
        access_key, _, region, service, terminator = parts
        credential = self.credentials.get(access_key)
        if credential is None:
            raise S3Error(
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our "
                "records.",
                AWSAccessKeyId=access_key,
            )
        if region != self.region and not self.any_region:
            raise S3Error(error, f"The authorization header is malformed; the "
                          f"region '{region}' is wrong; expecting "
                          f"'{self.region}'", Region=self.region)
        if service != "s3" or terminator != "aws4_request":
            raise S3Error(error, "The credential scope must name service "
                          "'s3' and end with 'aws4_request'.")
        return credential, region

    def _check_common(self, request, credential, signed, presigned):
        if "host" not in signed:
            raise S3Error(
                "AuthorizationQueryParametersError" if presigned
                else "AuthorizationHeaderMalformed",
                "The host header must be signed.",
            )
        unsigned = sorted(
            {k.lower() for k, _ in request.headers
             if k.lower().startswith("x-amz-") and k.lower() not in signed}
        )
        if unsigned:
            raise S3Error(
                "AccessDenied",
                "There were headers present in the request which were not "
                "signed",
                HeadersNotSigned=", ".join(unsigned),
            )
        _check_token(request, credential)

    def _botocore_credentials(self, credential):
        return Credentials(credential.access_key, credential.secret_key,
                           credential.token)

    def _compare(self, signer, request, query, signed, timestamp, provided,
                 credential):
        expected, canonical, string_to_sign = _botocore_signature(
            signer, request, query, signed, timestamp)
        if not hmac.compare_digest(expected, provided.lower()):
            raise S3Error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the "
                "signature you provided. Check your key and signing method.",
                AWSAccessKeyId=credential.access_key,
                StringToSign=string_to_sign,
                SignatureProvided=provided,
                CanonicalRequest=canonical,
            )


def _botocore_signature(signer, request, query, signed, timestamp):
    """Ask botocore for (signature, canonical request, string to sign)."""
    headers = HTTPHeaders()
    for name in signed:
        for value in request.header_values(name):
            headers[name] = value
    # The host part of the URL is unused: "host" is always a signed header.
    aws_request = AWSRequest(
        method=request.method,
        url="http://signed-host" + request.raw_path,
        headers=headers,
        params=list(query),
    )
    aws_request.context["timestamp"] = timestamp
    canonical = signer.canonical_request(aws_request)
    string_to_sign = signer.string_to_sign(aws_request, canonical)
    return signer.signature(string_to_sign, aws_request), canonical, \
        string_to_sign


def _parse_authorization(header):
    fields = {}
    for part in header[len(ALGORITHM):].split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name] = value
    missing = [n for n in ("Credential", "SignedHeaders", "Signature")
               if n not in fields]
    if missing:
        raise S3Error(
            "AuthorizationHeaderMalformed",
            "The authorization header is malformed; missing "
            + ", ".join(missing) + ".",
        )
    return fields


def _presign_params(request):
    if request.param("X-Amz-Algorithm") != ALGORITHM:
        raise S3Error("AuthorizationQueryParametersError",
                      'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
    names = ("X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
             "X-Amz-SignedHeaders", "X-Amz-Signature")
    params = {n: request.param(n) for n in names}
    if None in params.values():
        raise S3Error(
            "AuthorizationQueryParametersError",
            "Query-string authentication version 4 requires the "
            "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, "
            "X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
        )
    return params


def _presign_expiry(text):
    if not re.fullmatch(r"\d{1,10}", text or ""):
        raise S3Error("AuthorizationQueryParametersError",
                      "X-Amz-Expires should be a number")
    expires = int(text)
    if expires > MAX_PRESIGN_EXPIRES:
        raise S3Error(
            "AuthorizationQueryParametersError",
            "X-Amz-Expires must be less than a week (in seconds); that is, "
            "the given X-Amz-Expires must be less than 604800 seconds",
        )
    return expires


def _check_token(request, credential):
    check_token(request.header("x-amz-security-token",
                               request.param("X-Amz-Security-Token")),
                credential)


def check_token(supplied, credential):
    """The session token sent (header, query or form field) or None."""
    if credential.token is None and supplied is None:
        return
    if supplied is None:
        raise S3Error(
            "MissingSecurityHeader",
            "Your request was missing a required header",
            MissingHeaderName="x-amz-security-token",
        )
    if credential.token is None or not hmac.compare_digest(
            supplied.encode(), credential.token.encode()):
        raise S3Error("InvalidToken",
                      "The provided token is malformed or otherwise invalid.")


def _valid_timestamp(text):
    if not text or not re.fullmatch(r"\d{8}T\d{6}Z", text):
        return False
    try:
        time.strptime(text, TIMESTAMP_FORMAT)
    except ValueError:
        return False
    return True


def _epoch(timestamp):
    return calendar.timegm(time.strptime(timestamp, TIMESTAMP_FORMAT))


# -- payload integrity --------------------------------------------------------


def check_payload(request, body, presigned):
    """Verify x-amz-content-sha256 and Content-MD5 against the body."""
    declared = request.header("x-amz-content-sha256")
    if declared is not None:
        _check_sha256(declared, body)
    md5 = request.header("content-md5")
    if md5 is not None:
        check_md5(md5, body)


def _check_sha256(declared, body):
    if declared == UNSIGNED:
        return
    if declared.startswith("STREAMING-"):
        raise S3Error(
            "NotImplemented",
            "The fixture does not implement aws-chunked (streaming) "
            "uploads; send a plain Content-Length body.",
        )
    if not HEX_SHA256.fullmatch(declared):
        raise S3Error(
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 value.",
            ArgumentName="x-amz-content-sha256",
            ArgumentValue=declared,
        )
    actual = hashlib.sha256(body).hexdigest()
    if actual != declared.lower():
        raise S3Error(
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what "
            "was computed.",
            ClientComputedContentSHA256=declared,
            S3ComputedContentSHA256=actual,
        )


def check_md5(declared, body):
    """Content-MD5 (header or POST form field) against the body."""
    try:
        digest = base64.b64decode(declared, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise S3Error("InvalidDigest",
                      "The Content-MD5 you specified was invalid.",
                      **{"Content-MD5": declared})
    if digest != hashlib.md5(body).digest():
        raise S3Error(
            "BadDigest",
            "The Content-MD5 you specified did not match what we received.",
            ExpectedDigest=declared,
            CalculatedDigest=base64.b64encode(
                hashlib.md5(body).digest()).decode(),
        )
