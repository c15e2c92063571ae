"""Parsed form of an incoming S3 request and its operation name."""

from dataclasses import dataclass, field
from urllib.parse import unquote, unquote_plus

from .s3xml import S3Error
from .sigv4 import IncomingRequest

# Sub-resources that change which S3 operation a request is.
_BUCKET_GET = {"uploads": "ListMultipartUploads",
               "location": "GetBucketLocation",
               "versioning": "GetBucketVersioning",
               "versions": "ListObjectVersions",
               "cors": "GetBucketCors"}
_OBJECT_SUBRESOURCES = ("tagging", "acl", "uploadId", "uploads",
                        "legal-hold", "retention", "torrent", "select")


@dataclass
class S3Request:
    method: str
    raw_path: str
    query: list  # decoded (name, value) pairs
    headers: list  # (name, value) pairs; values as received (latin-1)
    body: bytes = b""
    bucket: str = ""
    key: str = ""
    request_id: str = ""
    operation: str = ""
    params: dict = field(default_factory=dict)

    def header(self, name, default=None):
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return default

    def has_header(self, name):
        return self.header(name) is not None

    def incoming(self):
        """The view the signature verifier needs (header text as UTF-8)."""
        return IncomingRequest(self.method, self.raw_path, self.query,
                               [(k, as_utf8(v)) for k, v in self.headers])


def as_utf8(value):
    # http.server decodes header bytes as latin-1; clients sign UTF-8 text.
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def parse_target(method, target, headers, body, gcs=False):
    """Build an S3Request from the HTTP request line target (gcs: the
    fixture's GCS mode, whose signed URLs use X-Goog-* parameters and
    whose copies name their source in x-goog-copy-source)."""
    raw_path, _, raw_query = target.partition("?")
    try:
        query = _parse_query(raw_query)
        path = unquote(raw_path, errors="strict")
    except UnicodeDecodeError as exc:
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.") \
            from exc
    if not path.startswith("/"):
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.")
    bucket, _, key = path[1:].partition("/")
    request = S3Request(method, raw_path, query, headers, body, bucket, key)
    request.params = {}
    for name, value in query:
        request.params.setdefault(name, value)
    request.operation = operation_of(request, gcs)
    return request


def _parse_query(raw_query):
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        name, _, value = part.partition("=")
        pairs.append((unquote_plus(name, errors="strict"),
                      unquote_plus(value, errors="strict")))
    return pairs


def operation_of(request, gcs=False):
    """S3 API operation name, used for routing, statistics and faults."""
    method, params = request.method, request.params
    if not request.bucket:
        return "ListBuckets" if method == "GET" else "UnknownServiceOperation"
    if method == "OPTIONS":
        # A browser's CORS preflight, for the bucket or one of its keys.
        return "PreflightRequest"
    if not request.key:
        return _bucket_operation(method, params,
                                 AUX_PARAMS | GCS_AUX_PARAMS if gcs
                                 else AUX_PARAMS)
    copy = request.has_header("x-amz-copy-source") or (
        gcs and request.has_header("x-goog-copy-source"))
    return _object_operation(method, params, copy)


def _bucket_operation(method, params, aux):
    if method == "GET":
        for name, operation in _BUCKET_GET.items():
            if name in params:
                return operation
        if params.get("list-type") == "2":
            return "ListObjectsV2"
    meaningful = [p for p in params if p not in aux]
    if method == "GET":
        other = [p for p in meaningful if p not in _LIST_PARAMS]
        return f"GetBucket?{other[0]}" if other else "ListObjects"
    if method == "POST" and "delete" in params:
        return "DeleteObjects"
    if method == "POST" and not meaningful:
        return "PostObject"  # a browser-based upload (HTML form)
    if method == "PUT" and "versioning" in params:
        return "PutBucketVersioning"
    if method in ("PUT", "DELETE") and "cors" in params:
        return method.capitalize() + "BucketCors"
    names = {"HEAD": "HeadBucket", "PUT": "CreateBucket",
             "DELETE": "DeleteBucket"}
    if method in names and not meaningful:
        return names[method]
    return f"{method}Bucket?{','.join(meaningful) or '-'}"


# Query parameters that never select an operation: presigned-URL
# authentication and the SDKs' informational "x-id".
AUX_PARAMS = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
              "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature",
              "X-Amz-Security-Token", "x-id"}
# GCS mode: V4 signed URLs' parameters ("Signed URL query string
# parameters", canonical-requests), also authentication only.
# Google's libraries also spell them in lower case.
GCS_AUX_PARAMS = {name for base in (
    "X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date", "X-Goog-Expires",
    "X-Goog-SignedHeaders", "X-Goog-Signature") for name in (base,
                                                              base.lower())}
_LIST_PARAMS = {"list-type", "prefix", "delimiter", "max-keys", "marker",
                "start-after", "continuation-token", "encoding-type",
                "fetch-owner"}


def _object_operation(method, params, copy):
    sub = next((p for p in _OBJECT_SUBRESOURCES if p in params), None)
    if sub == "tagging" and method in ("GET", "PUT", "DELETE"):
        return {"GET": "GetObjectTagging", "PUT": "PutObjectTagging",
                "DELETE": "DeleteObjectTagging"}[method]
    if method == "PUT":
        if sub == "uploadId":
            return "UploadPartCopy" if copy else "UploadPart"
        if sub is None:
            return "CopyObject" if copy else "PutObject"
        return f"PutObject?{sub}"
    if method in ("GET", "HEAD"):
        if sub == "uploadId" and method == "GET":
            return "ListParts"
        if sub is None:
            return "GetObject" if method == "GET" else "HeadObject"
        return f"{method}Object?{sub}"
    if method == "DELETE":
        if sub == "uploadId":
            return "AbortMultipartUpload"
        return "DeleteObject" if sub is None else f"DeleteObject?{sub}"
    if method == "POST":
        if sub == "uploads":
            return "CreateMultipartUpload"
        if sub == "uploadId":
            return "CompleteMultipartUpload"
    return f"{method}Object?{sub or '-'}"
