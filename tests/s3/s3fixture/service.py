"""The strict S3 layer: requests are checked here, bytes are kept by s3rver."""

import email.utils
import html
import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from . import keys, listing, s3xml
from .faults import ERROR_CODES
from .locks import NamedLocks, NamedRWLocks
from .request import AUX_PARAMS
from .s3xml import S3Error
from .sigv4 import check_payload
from .store import valid_bucket_name

# Request headers never passed to s3rver: connection-level, authentication
# (s3rver gets its own), and the ones the proxy evaluates itself.
_NOT_FORWARDED = {
    "host", "authorization", "connection", "keep-alive", "proxy-connection",
    "transfer-encoding", "te", "upgrade", "expect", "content-length",
    "content-md5", "x-amz-date", "x-amz-content-sha256",
    "x-amz-security-token", "x-amz-copy-source", "range", "if-match",
    "if-none-match", "if-modified-since", "if-unmodified-since",
    "user-agent", "accept-encoding", "amz-sdk-invocation-id",
    "amz-sdk-request",
}
# s3rver response headers the proxy replaces or that describe s3rver's
# own connection.
_NOT_RELAYED = {"connection", "keep-alive", "transfer-encoding", "date",
                "vary", "x-amz-request-id", "x-amz-id-2"}
_UNSUPPORTED_HEADERS = ("x-amz-sdk-checksum-algorithm", "x-amz-trailer")
_COPY_SOURCE_SAFE = "/;:@&=+$,?#"  # left raw: s3rver uses decodeURI()
_POST_OPERATIONS = ("DeleteObjects", "CreateMultipartUpload",
                    "CompleteMultipartUpload")
DEFAULT_MIN_PART_SIZE = 5 * 1024 * 1024


@dataclass
class Response:
    status: int
    headers: list = field(default_factory=list)
    body: bytes = b""
    close: bool = False  # close the client connection after answering


def xml_response(document, status=200):
    return Response(status, [("Content-Type", "application/xml")], document)


def no_such_key(key):
    return S3Error("NoSuchKey", "The specified key does not exist.", Key=key)


def no_such_upload(upload_id):
    return S3Error(
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, "
        "or the upload may have been aborted or completed.",
        UploadId=upload_id)


def not_implemented(what):
    return S3Error("NotImplemented",
                   f"{what} is not implemented by the test fixture.")


class S3Service:
    def __init__(self, upstream, store, verifier, faults, stats,
                 min_part_size=DEFAULT_MIN_PART_SIZE):
        self.upstream = upstream
        self.store = store
        self.verifier = verifier
        self.faults = faults
        self.stats = stats
        self.min_part_size = min_part_size
        self.key_locks = NamedLocks()
        self.upload_locks = NamedRWLocks()
        self._handlers = {
            "GetObject": self.get_object,
            "HeadObject": self.get_object,
            "PutObject": self.put_object,
            "CopyObject": self.copy_object,
            "DeleteObject": self.delete_object,
            "DeleteObjects": self.delete_objects,
            "ListObjects": self.list_objects,
            "ListObjectsV2": self.list_objects,
            "CreateMultipartUpload": self.create_upload,
            "UploadPart": self.upload_part,
            "CompleteMultipartUpload": self.complete_upload,
            "AbortMultipartUpload": self.abort_upload,
            "ListParts": self.list_parts,
            "ListMultipartUploads": self.list_uploads,
        }

    def handle(self, req):
        auth = self.verifier.authenticate(req.incoming())
        check_payload(req.incoming(), req.body, auth.presigned)
        _reject_unsupported(req)
        if req.bucket:
            self._check_names(req)
        elif req.method != "GET":
            raise S3Error("MethodNotAllowed", "The specified method is not "
                          "allowed against this resource.")
        handler = self._handlers.get(req.operation, self.passthrough)
        return handler(req)

    def _check_names(self, req):
        if not valid_bucket_name(req.bucket):
            raise S3Error("InvalidBucketName", "The specified bucket is not "
                          "valid.", BucketName=req.bucket)
        if req.operation != "CreateBucket" and \
                not self.store.bucket_exists(req.bucket):
            raise S3Error("NoSuchBucket", "The specified bucket does not "
                          "exist", BucketName=req.bucket)
        problem = keys.key_problem(req.key) if req.key else None
        if problem:
            raise S3Error(*problem)

    # -- helpers -------------------------------------------------------

    def _send(self, req, method, query=(), headers=None, body=b""):
        """Forward to s3rver at req's bucket/key; raise on its errors."""
        path = keys.store_url_path(req.bucket, req.key) if req.key else \
            "/" + quote(req.bucket, safe="")
        status, up_headers, up_body = self.upstream.request(
            method, path, query, headers or {}, body)
        if status >= 300 and status != 304:
            raise _upstream_error(req, status, up_headers, up_body)
        return status, up_headers, up_body

    def _relay(self, status, up_headers, body):
        headers = [(k, v) for k, v in up_headers
                   if k.lower() not in _NOT_RELAYED and
                   not k.lower().startswith("x-amz-error-")]
        return Response(status, headers, body)

    # -- objects -------------------------------------------------------

    def get_object(self, req):
        """GetObject/HeadObject, with conditions and ranges done here."""
        with self.key_locks.hold((req.bucket, req.key)):
            info = self.store.object_info(req.bucket, req.key)
            if info is None:
                raise no_such_key(req.key)
            not_modified = _read_conditions(req, info)
            if not_modified is not None:
                return not_modified
            headers = _forward_headers(req)
            byte_range = _resolve_range(req.header("range"), info.size)
            if byte_range:
                headers["Range"] = byte_range
            query = [(k, v) for k, v in req.query if k.startswith("response-")]
            result = self._send(req, req.method, query, headers)
        return self._relay(*result)

    def put_object(self, req):
        with self.key_locks.hold((req.bucket, req.key)):
            self._write_conditions(req)
            result = self._send(req, "PUT", (), _forward_headers(req),
                                req.body)
        return self._relay(*result)

    def _write_conditions(self, req):
        """If-None-Match: * and If-Match on writes (caller holds the lock)."""
        none_match = req.header("if-none-match")
        match = req.header("if-match")
        if none_match is None and match is None:
            return
        info = self.store.object_info(req.bucket, req.key)
        if none_match is not None:
            if none_match.strip() != "*":
                raise S3Error("NotImplemented", "A header you provided "
                              "implies functionality that is not implemented",
                              Header="If-None-Match")
            if info is not None:
                raise _precondition_failed("If-None-Match")
        if match is not None:
            if info is None:
                raise no_such_key(req.key)
            if not _etag_matches(match, info.etag):
                raise _precondition_failed("If-Match")

    def copy_object(self, req):
        src_bucket, src_key = _parse_copy_source(
            req.header("x-amz-copy-source"))
        if not valid_bucket_name(src_bucket) or \
                not self.store.bucket_exists(src_bucket):
            raise S3Error("NoSuchBucket", "The specified bucket does not "
                          "exist", BucketName=src_bucket)
        headers = _forward_headers(req)
        headers["x-amz-copy-source"] = "/" + quote(src_bucket, safe="") + \
            "/" + quote(keys.to_store(src_key), safe=_COPY_SOURCE_SAFE)
        with self.key_locks.hold((req.bucket, req.key),
                                 (src_bucket, src_key)):
            if self.store.object_info(src_bucket, src_key) is None:
                raise no_such_key(src_key)
            result = self._send(req, "PUT", (), headers)
        return self._relay(*result)

    def delete_object(self, req):
        with self.key_locks.hold((req.bucket, req.key)):
            self._send(req, "DELETE")
        return Response(204)

    def delete_objects(self, req):
        """DeleteObjects, done as one s3rver DELETE per key (each locked)."""
        if not req.has_header("content-md5"):
            raise S3Error("InvalidRequest", "Missing required header for this "
                          "request: Content-Md5")
        quiet, wanted = _parse_delete_body(req.body)
        results = [self._delete_one(req, key) for key in wanted]
        fields = []
        for key, error in results:
            if error is None:
                if not quiet:
                    fields.append(("Deleted", [("Key", key)]))
            else:
                fields.append(("Error", [("Key", key), ("Code", error.code),
                                         ("Message", error.message)]))
        return xml_response(s3xml.build("DeleteResult", fields))

    def _delete_one(self, req, key):
        problem = keys.key_problem(key)
        if problem:
            return key, S3Error(*problem)
        with self.key_locks.hold((req.bucket, key)):
            status, _, _ = self.upstream.request(
                "DELETE", keys.store_url_path(req.bucket, key))
        if status != 204:
            return key, S3Error("InternalError", "We encountered an internal "
                                "error. Please try again.")
        return key, None

    # -- listings ------------------------------------------------------

    def list_objects(self, req):
        v2 = req.operation == "ListObjectsV2"
        params = dict(req.params)
        params.setdefault("prefix", "")
        enc = listing.encoder(params.get("encoding-type"))
        params["max-keys"] = listing.max_value(params.get("max-keys"),
                                               "max-keys")
        if v2:
            token = params.get("continuation-token")
            entries_after = listing.read_token(token) if token is not None \
                else None
            keys_after = None if token is not None else \
                params.get("start-after") or None
        else:
            keys_after = entries_after = params.get("marker") or None
        page = self._page_of_keys(req.bucket, params, keys_after,
                                  entries_after)
        if v2:
            owner = params.get("fetch-owner") == "true"
            document = listing.list_v2_document(req.bucket, params, page, enc,
                                                owner)
        else:
            document = listing.list_v1_document(req.bucket, params, page, enc)
        return xml_response(document)

    def _page_of_keys(self, bucket, params, keys_after, entries_after):
        if params["max-keys"] == 0:
            return listing.Page()
        found = sorted(self.store.iter_keys(bucket, params["prefix"]),
                       key=listing.utf8_order)
        page = listing.paginate(found, lambda k: k, params["prefix"],
                                params.get("delimiter", ""),
                                params["max-keys"], keys_after, entries_after)
        page.items = self._object_infos(bucket, page.items)
        return page

    def _object_infos(self, bucket, names):
        """Read metadata of listed keys, each under its lock."""
        infos = []
        for key in names:
            with self.key_locks.hold((bucket, key)):
                info = self.store.object_info(bucket, key)
            if info is not None:
                infos.append(info)
        return infos

    def list_uploads(self, req):
        params = dict(req.params)
        enc = listing.encoder(params.get("encoding-type"))
        params["max-uploads"] = listing.max_value(params.get("max-uploads"),
                                                  "max-uploads")
        uploads = sorted(
            self.store.list_uploads(req.bucket),
            key=lambda u: (listing.utf8_order(u.key), u.initiated,
                           u.upload_id))
        uploads, entries_after = _after_upload_marker(uploads, params)
        if params["max-uploads"] == 0:
            page = listing.Page()
        else:
            page = listing.paginate(uploads, lambda u: u.key,
                                    params.get("prefix", ""),
                                    params.get("delimiter", ""),
                                    params["max-uploads"],
                                    entries_after=entries_after)
        return xml_response(listing.uploads_document(req.bucket, params, page,
                                                     enc))

    # -- multipart uploads ---------------------------------------------

    def _upload_lock(self, req, exclusive):
        return self.upload_locks.hold((req.bucket, req.params["uploadId"]),
                                      exclusive)

    def _require_upload(self, req):
        upload_id = req.params["uploadId"]
        upload = self.store.upload_info(req.bucket, upload_id)
        if upload is None or upload.key != req.key:
            raise no_such_upload(upload_id)
        return upload

    def create_upload(self, req):
        _, _, body = self._send(req, "POST", [("uploads", "")],
                                _forward_headers(req))
        upload_id = _xml_field(body, "UploadId")
        if not upload_id:
            raise S3Error("InternalError", "s3rver returned no UploadId")
        self.faults.upload_created(upload_id)
        return xml_response(s3xml.build("InitiateMultipartUploadResult", [
            ("Bucket", req.bucket), ("Key", req.key),
            ("UploadId", upload_id)]))

    def upload_part(self, req):
        number = _part_number(req.params.get("partNumber"))
        with self._upload_lock(req, exclusive=False):
            self._require_upload(req)
            injected = self.faults.part_status(req.params["uploadId"])
            if injected is not None:
                self.stats.fault("fail_part")
                code, message = ERROR_CODES[injected]
                raise S3Error(code, message, status=injected)
            result = self._send(req, "PUT", [
                ("partNumber", str(number)),
                ("uploadId", req.params["uploadId"])], {}, req.body)
        return self._relay(*result)

    def complete_upload(self, req):
        requested = _parse_complete_body(req.body)
        upload_id = req.params["uploadId"]
        with self._upload_lock(req, exclusive=True):
            self._require_upload(req)
            stored = self.store.list_parts(req.bucket, upload_id)
            self._check_parts(upload_id, requested, stored)
            with self.key_locks.hold((req.bucket, req.key)):
                self._write_conditions(req)
                _, _, body = self._send(
                    req, "POST", [("uploadId", upload_id)],
                    {"Content-Type": "application/xml"},
                    _complete_body(requested))
        location = "http://%s/%s/%s" % (req.header("host", "localhost"),
                                        quote(req.bucket, safe=""),
                                        quote(req.key, safe="/~"))
        return xml_response(s3xml.build("CompleteMultipartUploadResult", [
            ("Location", location), ("Bucket", req.bucket),
            ("Key", req.key), ("ETag", _xml_field(body, "ETag"))]))

    def _check_parts(self, upload_id, requested, stored):
        numbers = [number for number, _ in requested]
        if any(b <= a for a, b in zip(numbers, numbers[1:])):
            raise S3Error("InvalidPartOrder", "The list of parts was not in "
                          "ascending order. The parts list must be specified "
                          "in order by part number.", UploadId=upload_id)
        for number, etag in requested:
            part = stored.get(number)
            if part is None or part.etag.strip('"') != etag.strip().strip('"'):
                raise S3Error(
                    "InvalidPart",
                    "One or more of the specified parts could not be found. "
                    "The part may not have been uploaded, or the specified "
                    "entity tag may not match the part's entity tag.",
                    UploadId=upload_id, PartNumber=number, ETag=etag)
        for number, etag in requested[:-1]:
            if stored[number].size < self.min_part_size:
                raise S3Error(
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum "
                    "allowed size",
                    ProposedSize=stored[number].size,
                    MinSizeAllowed=self.min_part_size,
                    PartNumber=number, ETag=etag)

    def abort_upload(self, req):
        with self._upload_lock(req, exclusive=True):
            self._require_upload(req)
            # s3rver has no AbortMultipartUpload (405): delete its upload
            # directory, parts included.
            self.store.remove_upload(req.bucket, req.params["uploadId"])
        return Response(204)

    def list_parts(self, req):
        with self._upload_lock(req, exclusive=False):
            upload = self._require_upload(req)
            parts = self.store.list_parts(req.bucket, upload.upload_id)
        marker = _int_param(req.params.get("part-number-marker", "0"),
                            "part-number-marker")
        max_parts = listing.max_value(req.params.get("max-parts"),
                                      "max-parts")
        return xml_response(listing.parts_document(req.bucket, upload, parts,
                                                   marker, max_parts))

    # -- everything else -----------------------------------------------

    def passthrough(self, req):
        """Operations s3rver handles well enough on its own."""
        query = [(k, v) for k, v in req.query if k not in AUX_PARAMS]
        if not req.bucket:
            status, up_headers, body = self.upstream.request("GET", "/")
            return self._relay(status, up_headers, body)
        with self.key_locks.hold((req.bucket, req.key)):
            result = self._send(req, req.method, query, _forward_headers(req),
                                req.body)
        return self._relay(*result)


# -- request checks ----------------------------------------------------


def _reject_unsupported(req):
    for name, _ in req.headers:
        lname = name.lower()
        if (lname.startswith("x-amz-checksum-") and
                lname != "x-amz-checksum-mode") or \
                lname in _UNSUPPORTED_HEADERS:
            raise not_implemented(f"The {lname} header (flexible checksums)")
        if lname.startswith("x-amz-copy-source-if-"):
            raise not_implemented(f"The {lname} header")
    version = req.params.get("versionId")
    if version not in (None, "null"):
        raise S3Error("InvalidArgument", "Invalid version id specified",
                      ArgumentName="versionId", ArgumentValue=version)
    if req.operation == "UploadPartCopy":
        raise not_implemented("UploadPartCopy")
    if req.method == "POST" and req.operation not in _POST_OPERATIONS:
        raise not_implemented("This POST request (e.g. browser uploads)")


def _forward_headers(req):
    return {k: v for k, v in req.headers if k.lower() not in _NOT_FORWARDED}


def _int_param(text, name):
    try:
        return int(text)
    except (TypeError, ValueError):
        raise S3Error("InvalidArgument", f"{name} must be an integer",
                      ArgumentName=name, ArgumentValue=text) from None


def _part_number(text):
    number = _int_param(text, "partNumber")
    if not 1 <= number <= 10000:
        raise S3Error("InvalidArgument", "Part number must be an integer "
                      "between 1 and 10000, inclusive",
                      ArgumentName="partNumber", ArgumentValue=text)
    return number


def _parse_copy_source(header):
    """x-amz-copy-source -> (bucket, key)."""
    source, _, query = header.partition("?")
    version = re.search(r"(?:^|&)versionId=([^&]*)", query)
    if version and version.group(1) != "null":
        raise S3Error("InvalidArgument", "Invalid version id specified",
                      ArgumentName="versionId",
                      ArgumentValue=version.group(1))
    try:
        source = unquote(source, errors="strict")
    except UnicodeDecodeError:
        source = ""
    bucket, _, key = source[1:].partition("/") if source.startswith("/") \
        else source.partition("/")
    if not bucket or not key or keys.key_problem(key):
        raise S3Error("InvalidArgument", "Copy Source must mention the source "
                      "bucket and key: sourcebucket/sourcekey",
                      ArgumentName="x-amz-copy-source", ArgumentValue=header)
    return bucket, key


def _parse_delete_body(body):
    root = s3xml.parse(body)
    objects = root.findall("Object")
    if root.tag != "Delete" or not objects or len(objects) > 1000:
        raise _malformed_xml()
    wanted = [o.findtext("Key") for o in objects]
    if None in wanted:
        raise _malformed_xml()
    return (root.findtext("Quiet") or "").strip() == "true", wanted


def _parse_complete_body(body):
    root = s3xml.parse(body)
    parts = root.findall("Part")
    if root.tag != "CompleteMultipartUpload" or not parts:
        raise _malformed_xml()
    requested = []
    for part in parts:
        number, etag = part.findtext("PartNumber"), part.findtext("ETag")
        if number is None or etag is None or not number.strip().isdigit():
            raise _malformed_xml()
        requested.append((int(number), etag))
    return requested


def _complete_body(requested):
    return s3xml.build("CompleteMultipartUpload", [
        ("Part", [("PartNumber", n), ("ETag", e)]) for n, e in requested])


def _malformed_xml():
    return S3Error("MalformedXML", "The XML you provided was not well-formed "
                   "or did not validate against our published schema.")


def _after_upload_marker(uploads, params):
    """Apply key-marker/upload-id-marker to sorted uploads."""
    key_marker = params.get("key-marker") or None
    id_marker = params.get("upload-id-marker") or None
    if key_marker is None:
        return uploads, None
    low = listing.utf8_order(key_marker)
    if id_marker is None:
        return [u for u in uploads if listing.utf8_order(u.key) > low], \
            key_marker
    ids = [u.upload_id for u in uploads if u.key == key_marker]
    position = ids.index(id_marker) + 1 if id_marker in ids else len(ids)
    kept_same_key = ids[position:]
    return [u for u in uploads if listing.utf8_order(u.key) > low or
            (u.key == key_marker and u.upload_id in kept_same_key)], None


def _xml_field(body, name):
    """A text field of an s3rver XML body (not always valid XML)."""
    match = re.search(rf"<{name}>(.*?)</{name}>", body.decode("utf-8",
                                                               "replace"))
    if not match:
        return None
    return html.unescape(match.group(1))


# -- conditions and ranges ---------------------------------------------


def _precondition_failed(condition):
    return S3Error("PreconditionFailed", "At least one of the pre-conditions "
                   "you specified did not hold", Condition=condition)


def _etag_matches(header, etag):
    wanted = etag.strip('"')
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate.strip('"') == wanted:
            return True
    return False


def _http_date(text):
    if not text:
        return None
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None


def _read_conditions(req, info):
    """Evaluate If-* headers of a read: 412 raised, 304 returned."""
    modified = int(info.mtime)
    if req.header("if-match") is not None:
        if not _etag_matches(req.header("if-match"), info.etag):
            raise _precondition_failed("If-Match")
    else:
        since = _http_date(req.header("if-unmodified-since"))
        if since is not None and modified > since:
            raise _precondition_failed("If-Unmodified-Since")
    if req.header("if-none-match") is not None:
        unchanged = _etag_matches(req.header("if-none-match"), info.etag)
    else:
        since = _http_date(req.header("if-modified-since"))
        unchanged = since is not None and modified <= since
    if not unchanged:
        return None
    return Response(304, [("ETag", info.etag), (
        "Last-Modified", email.utils.formatdate(modified, usegmt=True))])


def _resolve_range(header, size):
    """Turn a Range header into an explicit "bytes=a-b" for s3rver.

    s3rver reads "bytes=-N" as the first N+1 bytes; S3 means the last N.
    Unparseable or multi-range values are ignored, as S3 does.
    """
    if header is None:
        return None
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        length = int(last)
        if length == 0 or size == 0:
            raise _invalid_range(header, size)
        return f"bytes={max(0, size - length)}-{size - 1}"
    start = int(first)
    if last and int(last) < start:
        return None  # syntactically invalid: S3 ignores it
    if start >= size:
        raise _invalid_range(header, size)
    end = min(int(last), size - 1) if last else size - 1
    return f"bytes={start}-{end}"


def _invalid_range(header, size):
    return S3Error("InvalidRange", "The requested range is not satisfiable",
                   RangeRequested=header, ActualObjectSize=size)


def _upstream_error(req, status, headers, body):
    """Turn an s3rver error answer into an S3Error for the client."""
    code, message = s3xml.upstream_error(body) if body else (None, "")
    if code is None:
        code = dict((k.lower(), v) for k, v in headers).get(
            "x-amz-error-code", "InternalError")
    details = {}
    if code == "NoSuchKey":
        details["Key"] = req.key
    elif code in ("NoSuchBucket", "BucketNotEmpty"):
        details["BucketName"] = req.bucket
    return S3Error(code, message or code, status=status, **details)
