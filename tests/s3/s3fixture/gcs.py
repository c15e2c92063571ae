"""GCS mode (s3proxy.py --gcs): the fixture answers as Google Cloud
Storage's XML API answers a client holding an HMAC key, where it differs
from S3.  The S3 machinery underneath (s3rver, versions, sidecar, locks,
multipart bookkeeping) is the same; this module changes what is accepted
and what is answered.

Each rule names the Cloud Storage page it follows (under
https://cloud.google.com/storage/docs/): "xml-api/overview",
"xml-api/reference-headers" (the headers table), "aws-simple-migration"
("Simple migration from Amazon S3 to Cloud Storage"),
"authentication/signatures", "access-control/signing-urls-manually",
"request-preconditions", "multipart-uploads", "xml-api/put-object",
"xml-api/post-object-complete", "xml-api/reference-status", and
"metadata" (generations).  Where the pages say nothing, the fixture's
choice is marked "fixture's choice"; README.md lists them all.
"""

import base64
import dataclasses
import hashlib
import re
import threading
import time
import xml.etree.ElementTree as ET
from urllib.parse import quote

from . import crc32c, goog4, listing, objectfiles, s3xml
from .attributes import Attributes
from .goog4 import gcs_error
from .request import GCS_AUX_PARAMS
from .s3xml import S3Error, no_such_key
from .service import (AUX_PARAMS, Response, S3Service, _complete_body,
                      _directive, _metadata_headers, _parse_complete_body,
                      _parse_copy_source, _read_conditions, _resolve_range,
                      _xml_field, xml_response)
from .sigv4 import check_md5, check_payload
from .store import valid_bucket_name

# -- headers ------------------------------------------------------------

# reference-headers, "extension (custom) HTTP headers", without the
# "x-goog-" prefix.  Request headers, and those of both directions:
REQUEST_HEADERS = {
    "acl", "allowed-resources", "api-version", "bucket-object-lock-enabled",
    "bucket-retention-period", "bypass-governance-retention",
    "content-length-range", "content-sha256", "copy-source",
    "copy-source-generation", "copy-source-if-generation-match",
    "copy-source-if-match", "copy-source-if-metageneration-match",
    "copy-source-if-modified-since", "copy-source-if-none-match",
    "copy-source-if-unmodified-since", "date", "encryption-key",
    "encryption-kms-key-name", "if-generation-match",
    "if-metageneration-match", "interop-list-objects-format",
    "metadata-directive", "project-id", "resumable", "user-project",
    "custom-time", "encryption-algorithm", "encryption-key-sha256", "hash",
    "object-lock-mode", "object-lock-retain-until-date", "storage-class"}
REQUEST_PREFIXES = ("meta-", "custom-audit-")
# ... and response headers, meaningless in a request.
RESPONSE_ONLY = {"component-count", "expiration", "generation",
                 "metageneration", "stored-content-encoding",
                 "stored-content-length"}
# Of the request headers, what the fixture does (the rest: 501).
EMULATED = {"content-sha256", "content-length-range", "date", "copy-source",
            "copy-source-generation",
            "copy-source-if-generation-match",
            "copy-source-if-metageneration-match", "if-generation-match",
            "if-metageneration-match", "metadata-directive", "hash",
            "storage-class"}
IGNORED = {"acl", "api-version", "project-id", "user-project"}  # no ACLs,
# no projects or billing in the fixture: accepted and ignored
# Sent by Google's own client libraries; not in the table.  Ignored.
LIBRARY_HEADERS = {"x-goog-api-client", "x-goog-request-params"}
PRECONDITIONS = ("x-goog-if-generation-match",
                 "x-goog-if-metageneration-match")
STORAGE_CLASSES = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")
# Standard headers kept as object metadata (put-object); x-goog-meta-*
# are kept by s3rver as x-amz-meta-*.
_STANDARD = ("content-type", "cache-control", "content-disposition",
             "content-encoding", "content-language")
# put-object: "If you do not specify a content type, Cloud Storage
# defaults to application/octet-stream".
DEFAULT_CONTENT_TYPE = "application/octet-stream"

# S3 operations Cloud Storage's XML API lacks, or the fixture does not
# emulate in GCS mode (README.md): 501 NotImplemented.
NOT_EMULATED = {
    "DeleteObjects": "Multi-object delete (POST ?delete), which Cloud "
                     "Storage's XML API does not have,",
    "GetObjectTagging": "Object tagging", "PutObjectTagging":
    "Object tagging", "DeleteObjectTagging": "Object tagging",
    "ListObjectVersions": "Listing object versions",
    "GetBucketCors": "CORS", "PutBucketCors": "CORS",
    "DeleteBucketCors": "CORS", "PreflightRequest": "CORS",
    "PostObject": "POST Object (HTML form uploads)",
    "UploadPartCopy": "Copying a part",
}


def _suffix(lname, prefix):
    return lname[len(prefix):]


def _known(suffix):
    return suffix in REQUEST_HEADERS or suffix in RESPONSE_ONLY or \
        suffix.startswith(REQUEST_PREFIXES)


def normalise(req):
    """The request as the GCS handlers read it: x-goog-* names only.

    aws-simple-migration: "specifying the AWS signature identifier in the
    Authorization header lets Cloud Storage know to expect x-amz-*
    headers"; "Cloud Storage processes x-amz-* headers that have an
    x-goog-* equivalent, such as those listed in the headers table, and
    it processes the x-amz-decoded-content-length header".  So
    x-amz-SUFFIX becomes x-goog-SUFFIX when the reference-headers table
    has x-goog-SUFFIX.  An x-amz-* header without an equivalent
    (x-amz-server-side-encryption, x-amz-tagging, x-amz-checksum-*,
    x-amz-security-token...) is refused, 400 InvalidArgument: Cloud
    Storage would not process it, and a client relying on it must find
    out (fixture's choice: refuse rather than ignore).  The same page
    says AWS4-HMAC-SHA256 means "you intend to send x-amz-* headers" and
    GOOG4-HMAC-SHA256 "x-goog-* headers": a request with both families
    is refused, 400 ExcessHeaderValues (what Cloud Storage is reported
    to answer when a request mixes them).
    """
    names = [k.lower() for k, _ in req.headers]
    amz = sorted(n for n in names if n.startswith("x-amz-"))
    goog = sorted(n for n in names if n.startswith("x-goog-") and
                  n not in LIBRARY_HEADERS)
    if amz and goog:
        raise gcs_error("ExcessHeaderValues", "Multiple HTTP header values "
                        "where one was expected.",
                        "The request mixes x-amz-* headers (" +
                        ", ".join(amz) + ") with x-goog-* headers (" +
                        ", ".join(goog) + "); use one family, the one of "
                        "the signature's algorithm.", status=400)
    headers = []
    for name, value in req.headers:
        lname = name.lower()
        if lname.startswith("x-amz-"):
            suffix = _suffix(lname, "x-amz-")
            if suffix == "decoded-content-length":
                continue  # documented; chunked bodies are refused anyway
            if not _known(suffix):
                raise gcs_error("InvalidArgument", "Invalid argument.",
                                f"{name}: Cloud Storage's XML API processes "
                                "only x-amz-* headers that have an x-goog-* "
                                "equivalent (aws-simple-migration), and this "
                                "one has none.", ArgumentName=name)
            name = lname = "x-goog-" + suffix
        if lname.startswith("x-goog-") and lname not in LIBRARY_HEADERS:
            _check_goog_header(lname)
        headers.append((name, value))
    return dataclasses.replace(req, headers=headers)


def _check_goog_header(lname):
    suffix = _suffix(lname, "x-goog-")
    if suffix in RESPONSE_ONLY:
        raise gcs_error("InvalidArgument", "Invalid argument.",
                        f"{lname} is a response header (reference-headers); "
                        "it selects nothing in a request.",
                        ArgumentName=lname)
    if not _known(suffix):
        raise gcs_error("InvalidArgument", "Invalid argument.",
                        f"{lname} is not a Cloud Storage XML API header "
                        "(reference-headers).", ArgumentName=lname)
    if suffix in EMULATED or suffix in IGNORED or \
            suffix.startswith("meta-"):
        return
    raise gcs_error("NotImplemented", "A header you provided implies "
                    "functionality that is not implemented.",
                    f"{lname} is a Cloud Storage header the test fixture "
                    "does not emulate.", status=501, Header=lname)


def forward_headers(req, default_type=True):
    """Headers s3rver keeps as the object's metadata: the standard ones
    and x-goog-meta-* (stored, as s3rver only knows, as x-amz-meta-*)."""
    out = {}
    for name, value in req.headers:
        lname = name.lower()
        if lname in _STANDARD:
            out[name] = value
        elif lname.startswith("x-goog-meta-"):
            out["x-amz-meta-" + _suffix(lname, "x-goog-meta-")] = value
    if default_type and not any(k.lower() == "content-type" for k in out):
        out["Content-Type"] = DEFAULT_CONTENT_TYPE
    return out


def response_headers(headers):
    """reference-headers: user metadata comes back as x-goog-meta-*; no
    x-amz-* header is answered (x-amz-version-id, SSE, tag counts: S3's)."""
    out = []
    for name, value in headers:
        lname = name.lower()
        if lname.startswith("x-amz-meta-"):
            out.append(("x-goog-meta-" + _suffix(lname, "x-amz-meta-"),
                        value))
        elif not lname.startswith("x-amz-"):
            out.append((name, value))
    return out


def aws4_signed_headers(request):
    header = request.header("authorization") or ""
    match = re.search(r"SignedHeaders=([^,\s]*)", header)
    if match:
        return match.group(1).split(";")
    return (request.param("X-Amz-SignedHeaders") or "").split(";")


# -- errors -------------------------------------------------------------


def flavour(error, req):
    """An S3Error raised by the shared S3 code, as Cloud Storage words it
    (reference-status: Code, Message, Details)."""
    fields = dict(error.details)
    details = fields.pop("Details", None)
    code, message = error.code, error.message
    if code == "NoSuchKey":
        key = fields.pop("Key", req.key)
        message = "The specified key does not exist."
        details = details or f"No such object: {req.bucket}/{key}"
    elif code == "NoSuchBucket":
        bucket = fields.pop("BucketName", req.bucket)
        message = "The specified bucket does not exist."
        details = details or f"No such bucket: {bucket}"
    elif code == "AccessDenied":
        details = details or (
            "Anonymous caller does not have access to the Google Cloud "
            "Storage object." if message == "Access Denied" else message)
        message = "Access denied."
    elif code == "PreconditionFailed":
        message = "At least one of the pre-conditions you specified did " \
                  "not hold."
        if "Condition" in fields and not details:
            details = "Condition: " + str(fields["Condition"])
    elif code == "InvalidArgument" and not details:
        details, message = message, "Invalid argument."
    result = S3Error(code, message, status=error.status,
                     **({"Details": details} if details else {}), **fields)
    result.headers = response_headers(error.headers)
    return result


def error_document(error):
    """<?xml version='1.0' encoding='UTF-8'?><Error><Code>...</Code>
    <Message>...</Message><Details>...</Details></Error>: Cloud Storage's
    XML errors carry no RequestId or HostId (reference-status)."""
    root = ET.Element("Error")
    for tag, value in [("Code", error.code), ("Message", error.message)] + \
            list(error.details.items()):
        if value is not None:
            ET.SubElement(root, tag).text = str(value)
    return ("<?xml version='1.0' encoding='UTF-8'?>" +
            ET.tostring(root, encoding="unicode")).encode("utf-8")


def not_emulated(what):
    return gcs_error("NotImplemented", "A header or query you provided "
                     "requested a function that is not implemented.",
                     f"{what} is not emulated by the test fixture in GCS "
                     "mode.", status=501)


def _precondition_failed(header):
    return gcs_error("PreconditionFailed", "At least one of the "
                     "pre-conditions you specified did not hold.",
                     f"Condition: {header}", status=412)


def _invalid(details, **extra):
    return gcs_error("InvalidArgument", "Invalid argument.", details,
                     **extra)


def _number_header(req, name):
    """A generation or metageneration header: an integer >= 0."""
    value = req.header(name)
    if value is None:
        return None
    if not re.fullmatch(r"\d{1,19}", value.strip()):
        raise _invalid(f"Invalid value for {name}: {value!r}; expecting a "
                       "non-negative integer.", ArgumentName=name)
    return int(value)


def storage_class(req):
    """reference-headers x-goog-storage-class, storage-classes: STANDARD,
    NEARLINE, COLDLINE, ARCHIVE.  S3's names are refused (400)."""
    value = req.header("x-goog-storage-class")
    if value is None:
        return "STANDARD"
    if value not in STORAGE_CLASSES:
        raise _invalid(f"Invalid storage class: {value}; expecting one of "
                       + ", ".join(STORAGE_CLASSES) + ".",
                       ArgumentName="x-goog-storage-class")
    return value


def check_length_range(req):
    """reference-headers x-goog-content-length-range: "MIN,MAX" bytes
    (inclusive) an upload may have; outside it the request fails with
    400.  (The codes, EntityTooSmall / EntityTooLarge, are the fixture's
    choice; the page names only the status.)"""
    value = req.header("x-goog-content-length-range")
    if value is None:
        return
    match = re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*", value)
    if not match or int(match.group(1)) > int(match.group(2)):
        raise _invalid(f"Invalid x-goog-content-length-range {value!r}; "
                       "expecting MIN,MAX.",
                       ArgumentName="x-goog-content-length-range")
    low, high = int(match.group(1)), int(match.group(2))
    if len(req.body) < low:
        raise gcs_error("EntityTooSmall", "Your proposed upload is smaller "
                        "than the minimum object size specified in your "
                        "Policy Document.", f"Content-length smaller than "
                        f"lower bound on range ({len(req.body)} < {low}).",
                        status=400)
    if len(req.body) > high:
        raise gcs_error("EntityTooLarge", "Your proposed upload exceeds the "
                        "maximum allowed object size.", f"Content-length "
                        f"exceeds upper bound on range ({len(req.body)} > "
                        f"{high}).", status=400)


def check_upload_hash(req, crc):
    """x-goog-hash on an upload ("crc32c=B64,md5=B64", reference-headers):
    each hash given must match the body (reference-status: CrcMismatch,
    BadDigest)."""
    for header in [v for k, v in req.headers if k.lower() == "x-goog-hash"]:
        for item in header.split(","):
            algorithm, sep, value = item.strip().partition("=")
            if not sep or algorithm not in ("crc32c", "md5"):
                raise _invalid(f"Invalid x-goog-hash {header!r}; expecting "
                               "crc32c=BASE64 and/or md5=BASE64.",
                               ArgumentName="x-goog-hash")
            if algorithm == "crc32c" and value != crc:
                raise gcs_error("CrcMismatch", "The CRC32C you specified did "
                                "not match what we received.",
                                f"Expected {value}, computed {crc}.")
            if algorithm == "md5":
                md5 = base64.b64encode(hashlib.md5(req.body).digest())
                if value != md5.decode():
                    raise gcs_error("BadDigest", "The Content-MD5 or "
                                    "x-goog-hash you specified did not match "
                                    "what we received.",
                                    f"Expected {value}, computed "
                                    f"{md5.decode()}.")


class Generations:
    """metadata#generation-number: a new, unique, positive integer per
    write; the fixture uses microseconds since the epoch, strictly
    increasing across the proxy's writes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._last = 0

    def next(self):
        with self._lock:
            self._last = max(time.time_ns() // 1000, self._last + 1)
            return self._last


def generation_of(version):
    """A version's generation; one written before GCS mode (no stored
    generation) gets its mtime in microseconds, which is stable."""
    return version.attrs.generation or int(version.info.mtime * 1_000_000)


def metageneration_of(version):
    # Metadata is never updated in place here (no PATCH of metadata), so
    # every generation stays at metageneration 1.
    return version.attrs.metageneration or 1


# -- the service --------------------------------------------------------


class GcsService(S3Service):
    def __init__(self, *args, multipart_preconditions=False, bearer_tokens=(), **kwargs):
        super().__init__(*args, **kwargs)
        # xml-api/overview, "OAuth 2.0 authentication": Authorization:
        # Bearer TOKEN. Which tokens are valid the fixture is told.
        self.bearer_tokens = set(bearer_tokens)
        self.aux_params = AUX_PARAMS | GCS_AUX_PARAMS
        self.goog4 = goog4.Goog4Verifier(self.verifier.credentials.values())
        self.generations = Generations()
        self.multipart_preconditions = multipart_preconditions
        self._handlers.update({
            "GetObject": self.gcs_get,
            "HeadObject": self.gcs_get,
            "PutObject": self.gcs_put,
            "CopyObject": self.gcs_copy,
            "DeleteObject": self.gcs_delete,
            "CreateMultipartUpload": self.gcs_create_upload,
            "UploadPart": self.gcs_upload_part,
            "CompleteMultipartUpload": self.gcs_complete,
        })

    def handle(self, req):
        try:
            response = self._handle(req)
        except S3Error as error:
            raise flavour(error, req) from None
        response.headers = response_headers(response.headers)
        return response

    def cors_headers(self, req):
        return []  # CORS is not emulated in GCS mode

    def _handle(self, req):
        if req.operation in NOT_EMULATED:
            raise not_emulated(NOT_EMULATED[req.operation])
        incoming = req.incoming()
        header = incoming.header("authorization") or ""
        if header.startswith("Bearer ") and self.bearer_tokens:
            if header[len("Bearer "):] not in self.bearer_tokens:
                raise gcs_error("AuthenticationRequired", "Invalid Credentials", status=401)
            if incoming.header("content-md5") is not None:
                check_md5(incoming.header("content-md5"), req.body)
        elif goog4.is_goog4(incoming):
            # signatures: GOOG4-HMAC-SHA256, header or signed URL.
            self.goog4.authenticate(incoming)
            goog4.check_payload(incoming, req.body)
            if incoming.header("content-md5") is not None:
                check_md5(incoming.header("content-md5"), req.body)
        else:
            header = incoming.header("authorization")
            if header and not header.startswith("AWS4-HMAC-SHA256"):
                raise _invalid("The test fixture verifies AWS4-HMAC-SHA256 "
                               "and GOOG4-HMAC-SHA256 (HMAC key) "
                               "signatures only; V2 signatures (GOOG1, AWS) "
                               "and OAuth tokens are not emulated.")
            # aws-simple-migration: AWS4-HMAC-SHA256 with the HMAC key,
            # header-signed or presigned, any region in the scope.
            auth = self.verifier.authenticate(incoming)
            goog4.check_goog_headers_signed(incoming,
                                            aws4_signed_headers(incoming))
            check_payload(incoming, req.body, auth.presigned)
        req = normalise(req)
        if req.bucket:
            self._check_names(req)
        elif req.method != "GET":
            raise S3Error("MethodNotAllowed", "The specified method is not "
                          "allowed against this resource.")
        if req.method == "POST" and req.operation not in (
                "CreateMultipartUpload", "CompleteMultipartUpload"):
            raise not_emulated("This POST request")
        if "versionId" in req.params:
            raise _invalid("Cloud Storage names versions by generation "
                           "(?generation=N), not versionId.",
                           ArgumentName="versionId")
        handler = self._handlers.get(req.operation, self.passthrough)
        return handler(req)

    # -- helpers ---------------------------------------------------------

    def _addressed(self, history, text, key):
        """The live version, or the one ?generation=N names (metadata:
        "You can use the generation number to ... refer to a specific
        version"); only a live object and, in a bucket with versioning,
        its noncurrent generations exist.  Else 404 NoSuchKey."""
        if text is None:
            if history.current is None:
                raise no_such_key(key)
            return history.current
        if not re.fullmatch(r"[1-9]\d{0,18}", text):
            raise _invalid(f"Invalid generation: {text!r}.",
                           ArgumentName="generation")
        for version in history.versions:
            if not version.delete_marker and \
                    generation_of(version) == int(text):
                return version
        raise no_such_key(key)

    def _check_preconditions(self, req, version, put=False):
        """request-preconditions: x-goog-if-generation-match (0: only if
        there is no live object) and x-goog-if-metageneration-match, 412
        PreconditionFailed when they do not hold.  put-object allows the
        metageneration one only together with the generation one."""
        want = _number_header(req, "x-goog-if-generation-match")
        want_meta = _number_header(req, "x-goog-if-metageneration-match")
        if put and want_meta is not None and want is None:
            raise _invalid("x-goog-if-metageneration-match is only allowed "
                           "if x-goog-if-generation-match is specified.",
                           ArgumentName="x-goog-if-metageneration-match")
        if want is not None:
            holds = version is None if want == 0 else \
                version is not None and generation_of(version) == want
            if not holds:
                raise _precondition_failed("x-goog-if-generation-match")
        if want_meta is not None and (
                version is None or metageneration_of(version) != want_meta):
            raise _precondition_failed("x-goog-if-metageneration-match")

    def _object_headers(self, history, version):
        """x-goog-generation, -metageneration, -stored-content-length,
        -stored-content-encoding, -hash (crc32c, and md5 unless the object
        is composite: post-object-complete "has a CRC32c hash, but not an
        MD5 hash") and x-goog-component-count (composite objects)."""
        path, metadata = self.versions.files(history, version)
        attrs = version.attrs
        hashes = "crc32c=" + (attrs.crc32c or crc32c.b64_of_file(path))
        md5 = version.info.etag.strip('"')
        if not attrs.component_count and re.fullmatch(r"[0-9a-f]{32}", md5):
            hashes += ",md5=" + base64.b64encode(bytes.fromhex(md5)).decode()
        headers = [
            ("x-goog-generation", str(generation_of(version))),
            ("x-goog-metageneration", str(metageneration_of(version))),
            ("x-goog-stored-content-length", str(version.info.size)),
            ("x-goog-stored-content-encoding",
             metadata.get("content-encoding", "identity")),
            ("x-goog-hash", hashes)]
        if attrs.component_count:
            headers.append(("x-goog-component-count",
                            str(attrs.component_count)))
        return headers

    def _live_headers(self, bucket, key):
        """_object_headers of the live object just written (lock held)."""
        history = self.versions.history(bucket, key)
        return self._object_headers(history, history.current)

    def _new_attrs(self, storage, crc=None, components=None):
        return Attributes(storage_class=storage,
                          generation=self.generations.next(),
                          metageneration=1, crc32c=crc,
                          component_count=components)

    # -- objects -----------------------------------------------------------

    def gcs_get(self, req):
        """GET/HEAD object (xml-api/get-object, head-object): ?generation=
        N, x-goog-if-generation-match / -metageneration-match (412),
        If-Match, If-None-Match, If-(Un)Modified-Since, Range."""
        with self.key_locks.hold((req.bucket, req.key)):
            history = self.versions.history(req.bucket, req.key)
            version = self._addressed(history, req.params.get("generation"),
                                      req.key)
            self._check_preconditions(req, version)
            extra = self._object_headers(history, version) + [
                ("x-goog-storage-class", version.attrs.storage_class)]
            not_modified = _read_conditions(req, version.info)
            if not_modified is not None:
                not_modified.headers += extra
                return not_modified
            byte_range = _resolve_range(req.header("range"),
                                        version.info.size)
            if version.live:
                query = [(k, v) for k, v in req.query
                         if k.startswith("response-")]
                result = self._send(req, req.method, query, {
                    "Range": byte_range} if byte_range else {})
            else:
                path, metadata = self.versions.files(history, version)
                result = objectfiles.answer(req.method, path, version.info,
                                            metadata, byte_range, req.query)
        response = self._relay(*result)
        response.headers += extra
        return response

    def gcs_put(self, req):
        """PUT object (xml-api/put-object): x-goog-if-generation-match: 0
        creates only; If-None-Match and If-Match are ignored on writes
        (request-preconditions: they are "applicable for requests that
        retrieve data"), so the write goes ahead."""
        storage = storage_class(req)
        check_length_range(req)
        crc = crc32c.b64(req.body)
        check_upload_hash(req, crc)
        with self.key_locks.hold((req.bucket, req.key)):
            history = self.versions.history(req.bucket, req.key)
            self._check_preconditions(req, history.current, put=True)
            attrs = self._new_attrs(storage, crc)
            _, result = self._write(req, attrs, lambda: self._send(
                req, "PUT", (), forward_headers(req), req.body))
            headers = self._live_headers(req.bucket, req.key)
        response = self._relay(*result)
        response.headers += headers
        return response

    def gcs_copy(self, req):
        """PUT with x-goog-copy-source (xml-api/put-object, "Copy an
        object"): x-goog-copy-source-generation picks the source's
        generation, x-goog-copy-source-if-generation-match /
        -if-metageneration-match test it, x-goog-if-generation-match the
        destination (0: create only), x-goog-metadata-directive COPY or
        REPLACE."""
        source_header = req.header("x-goog-copy-source")
        if "?" in source_header:
            # reference-headers names the source generation with
            # x-goog-copy-source-generation; a query in the source
            # (?versionId=, ?generation=) is refused rather than ignored
            # (fixture's choice: the pages document no such form).
            raise _invalid("x-goog-copy-source takes BUCKET/OBJECT only; "
                           "name a source generation with "
                           "x-goog-copy-source-generation.",
                           ArgumentName="x-goog-copy-source")
        src_bucket, src_key, _ = _parse_copy_source(source_header)
        if not valid_bucket_name(src_bucket) or \
                not self.store.bucket_exists(src_bucket):
            raise S3Error("NoSuchBucket", "The specified bucket does not "
                          "exist", BucketName=src_bucket)
        replace = _directive(req, "x-goog-metadata-directive")
        storage = storage_class(req)
        with self.key_locks.hold((req.bucket, req.key),
                                 (src_bucket, src_key)):
            source = self.versions.history(src_bucket, src_key)
            try:
                version = self._addressed(
                    source, req.header("x-goog-copy-source-generation"),
                    src_key)
            except S3Error as error:
                if error.code == "NoSuchKey":
                    raise S3Error("NoSuchKey", "", Details="No such object: "
                                  f"{src_bucket}/{src_key}") from None
                raise
            self._check_source_preconditions(req, version)
            target = self.versions.history(req.bucket, req.key)
            self._check_preconditions(req, target.current, put=True)
            path, metadata = self.versions.files(source, version)
            with open(path, "rb") as handle:
                body = handle.read()
            attrs = self._new_attrs(
                storage, version.attrs.crc32c or crc32c.b64(body),
                version.attrs.component_count)
            headers = forward_headers(req) if replace else \
                _metadata_headers(metadata)
            self._write(req, attrs, lambda: self._send(
                req, "PUT", (), headers, body))
            written = self._live_headers(req.bucket, req.key)
            info = self.store.object_info(req.bucket, req.key)
        response = xml_response(s3xml.build("CopyObjectResult", [
            ("LastModified", listing.iso_time(info.mtime)),
            ("ETag", info.etag)]))
        response.headers += written
        return response

    def _check_source_preconditions(self, req, version):
        for header, value in (
                ("x-goog-copy-source-if-generation-match",
                 generation_of(version)),
                ("x-goog-copy-source-if-metageneration-match",
                 metageneration_of(version))):
            wanted = _number_header(req, header)
            if wanted is not None and wanted != value:
                raise _precondition_failed(header)

    def gcs_delete(self, req):
        """DELETE object (xml-api/delete-object): 204; an object that does
        not exist is 404 NoSuchKey (not S3's 204); ?generation=N deletes
        that generation; x-goog-if-generation-match and
        -if-metageneration-match are checked against it (412)."""
        with self.key_locks.hold((req.bucket, req.key)):
            history = self.versions.history(req.bucket, req.key)
            generation = req.params.get("generation")
            version = self._addressed(history, generation, req.key)
            self._check_preconditions(req, version)
            if history.state is None:
                self._send(req, "DELETE")
                self.sidecar.remove_index(req.bucket, req.key)
            else:
                # With versioning the live object becomes noncurrent (the
                # S3 layer records that as a delete marker, never shown in
                # GCS mode); a named generation goes for good, and when it
                # was the live one no older generation becomes live
                # (object-versioning: noncurrent versions stay noncurrent
                # until copied back), unlike S3's promotion of the next one.
                if version.live or generation is None:
                    self.versions.delete(req.bucket, req.key, None)
                if generation is not None:
                    self.versions.delete(req.bucket, req.key,
                                         version.version_id)
        return Response(204)

    # -- multipart uploads ---------------------------------------------------

    def _refuse_preconditions(self, req, step):
        """multipart-uploads, "Considerations": "Preconditions are not
        supported in requests" of XML API multipart uploads (and
        post-object-complete lists no precondition header), so the
        fixture refuses them, 501, rather than let a client believe its
        multipart write is create-only.  --gcs-multipart-preconditions
        makes CompleteMultipartUpload honour x-goog-if-generation-match
        instead (for a client that has found otherwise on real GCS)."""
        present = [h for h in PRECONDITIONS if req.has_header(h)]
        if present and not (step == "complete" and
                            self.multipart_preconditions):
            raise gcs_error("NotImplemented", "A header you provided "
                            "implies functionality that is not implemented.",
                            f"{present[0]}: preconditions are not supported "
                            "in XML API multipart upload requests "
                            "(multipart-uploads, Considerations).",
                            status=501, Header=present[0])

    def gcs_create_upload(self, req):
        """POST ?uploads (xml-api/post-object-multipart): metadata,
        standard headers and storage class for the final object."""
        self._refuse_preconditions(req, "initiate")
        attrs = Attributes(storage_class=storage_class(req))
        _, _, body = self._send(req, "POST", [("uploads", "")],
                                forward_headers(req))
        upload_id = _xml_field(body, "UploadId")
        if not upload_id:
            raise S3Error("InternalError", "s3rver returned no UploadId")
        self.sidecar.set_upload(req.bucket, upload_id, attrs.to_json())
        self.faults.upload_created(upload_id)
        return xml_response(s3xml.build("InitiateMultipartUploadResult", [
            ("Bucket", req.bucket), ("Key", req.key),
            ("UploadId", upload_id)]))

    def gcs_upload_part(self, req):
        """PUT ?partNumber=N&uploadId=ID (xml-api/put-object-multipart):
        part numbers 1 to 10000 (the S3 code checks them)."""
        self._refuse_preconditions(req, "part")
        return self.upload_part(req)

    def gcs_complete(self, req):
        """POST ?uploadId=ID (xml-api/post-object-complete): S3's
        CompleteMultipartUpload document; parts ascending, existing, all
        but the last at least 5 MiB (--min-part-size), at most 10000
        (multipart-uploads, "Considerations").  The object is composite:
        a CRC32C, no MD5 in x-goog-hash, x-goog-component-count."""
        self._refuse_preconditions(req, "complete")
        requested = _parse_complete_body(req.body)
        upload_id = req.params["uploadId"]
        if len(requested) > 10000 or any(not 1 <= n <= 10000
                                         for n, _ in requested):
            raise _invalid("An upload has at most 10000 parts, numbered 1 "
                           "to 10000.", ArgumentName="PartNumber")
        with self._upload_lock(req, exclusive=True):
            self._require_upload(req)
            upload = self._upload_attrs(req.bucket, upload_id)
            stored = self.store.list_parts(req.bucket, upload_id)
            self._check_parts(upload_id, requested, stored)
            with self.key_locks.hold((req.bucket, req.key)):
                history = self.versions.history(req.bucket, req.key)
                self._check_preconditions(req, history.current, put=True)
                attrs = self._new_attrs(upload.storage_class,
                                        components=len(requested))

                def send():
                    result = self._send(
                        req, "POST", [("uploadId", upload_id)],
                        {"Content-Type": "application/xml"},
                        _complete_body(requested))
                    attrs.crc32c = crc32c.b64_of_file(self.store.object_files(
                        req.bucket, req.key)["object"])
                    return result
                _, (_, _, body) = self._write(req, attrs, send)
                headers = self._live_headers(req.bucket, req.key)
            self.sidecar.remove_upload(req.bucket, upload_id)
        location = "http://%s/%s/%s" % (req.header("host", "localhost"),
                                        quote(req.bucket, safe=""),
                                        quote(req.key, safe="/~"))
        response = xml_response(s3xml.build("CompleteMultipartUploadResult", [
            ("Location", location), ("Bucket", req.bucket),
            ("Key", req.key), ("ETag", _xml_field(body, "ETag"))]))
        response.headers += headers
        return response

