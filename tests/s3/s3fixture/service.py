"""The strict S3 layer: requests are checked here, bytes are kept by s3rver."""

import email.utils
import html
import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from . import attributes, cors, keys, listing, objectfiles, post_upload, \
    s3xml
from .attributes import Attributes
from .faults import ERROR_CODES
from .locks import NamedLocks, NamedRWLocks
from .request import AUX_PARAMS
from .s3xml import S3Error, no_such_key
from .sidecar import Sidecar
from .sigv4 import check_payload
from .store import valid_bucket_name
from .versions import ENABLED, SUSPENDED, Versions, check_version_id

# Request headers never passed to s3rver: connection-level, authentication
# (s3rver gets its own), and the ones the proxy evaluates itself.
_NOT_FORWARDED = {
    "host", "authorization", "connection", "keep-alive", "proxy-connection",
    "transfer-encoding", "te", "upgrade", "expect", "content-length",
    "content-md5", "x-amz-date", "x-amz-content-sha256",
    "x-amz-security-token", "x-amz-copy-source", "range", "if-match",
    "if-none-match", "if-modified-since", "if-unmodified-since",
    "user-agent", "accept-encoding", "amz-sdk-invocation-id",
    "amz-sdk-request", "x-amz-metadata-directive", "origin",
    "access-control-request-method", "access-control-request-headers",
}
# s3rver response headers the proxy replaces or that describe s3rver's
# own connection.
_NOT_RELAYED = {"connection", "keep-alive", "transfer-encoding", "date",
                "vary", "x-amz-request-id", "x-amz-id-2",
                "x-amz-storage-class"}
_UNSUPPORTED_HEADERS = ("x-amz-sdk-checksum-algorithm", "x-amz-trailer")
_POST_OPERATIONS = ("DeleteObjects", "CreateMultipartUpload",
                    "CompleteMultipartUpload", "PostObject")
# Operations that take ?versionId=; others refuse all but "null".
_VERSIONED_OPERATIONS = ("GetObject", "HeadObject", "DeleteObject",
                         "GetObjectTagging", "PutObjectTagging",
                         "DeleteObjectTagging")
DEFAULT_MIN_PART_SIZE = 5 * 1024 * 1024


@dataclass
class Response:
    status: int
    headers: list = field(default_factory=list)
    body: bytes = b""
    close: bool = False  # close the client connection after answering


def xml_response(document, status=200):
    return Response(status, [("Content-Type", "application/xml")], document)


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
        self.region = verifier.region  # for SSE-KMS key ARNs
        self.faults = faults
        self.stats = stats
        self.min_part_size = min_part_size
        self.key_locks = NamedLocks()
        self.upload_locks = NamedRWLocks()
        self.sidecar = Sidecar(store)
        self.versions = Versions(store, self.sidecar)
        self.cors = cors.Cors(self.sidecar)
        # Query parameters that authenticate rather than select (passthrough)
        self.aux_params = AUX_PARAMS
        self._handlers = {
            "GetObject": self.get_object,
            "HeadObject": self.get_object,
            "PutObject": self.put_object,
            "CopyObject": self.copy_object,
            "DeleteObject": self.delete_object,
            "DeleteObjects": self.delete_objects,
            "GetObjectTagging": self.get_tagging,
            "PutObjectTagging": self.put_tagging,
            "DeleteObjectTagging": self.delete_tagging,
            "ListObjects": self.list_objects,
            "ListObjectsV2": self.list_objects,
            "ListObjectVersions": self.list_versions,
            "GetBucketVersioning": self.get_versioning,
            "PutBucketVersioning": self.put_versioning,
            "DeleteBucket": self.delete_bucket,
            "GetBucketCors": self.get_cors,
            "PutBucketCors": self.put_cors,
            "DeleteBucketCors": self.delete_cors,
            "CreateMultipartUpload": self.create_upload,
            "UploadPart": self.upload_part,
            "CompleteMultipartUpload": self.complete_upload,
            "AbortMultipartUpload": self.abort_upload,
            "ListParts": self.list_parts,
            "ListMultipartUploads": self.list_uploads,
        }

    def handle(self, req):
        if req.operation in ("PreflightRequest", "PostObject"):
            # Browsers send these unsigned (a preflight) or signed in the
            # form (POST Object), so they skip header/query SigV4.
            self._check_names(req)
            if req.operation == "PostObject":
                _reject_unsupported(req)
                return self.post_object(req)
            return Response(200, self.cors.preflight(req))
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

    def _write(self, req, attrs, send):
        """Let send() have s3rver write req's key, as a new version with
        attrs (caller holds the key lock).  Returns (headers for the
        response, s3rver's answer)."""
        write = self.versions.begin_write(req.bucket, req.key)
        try:
            result = send()
        except BaseException:
            self.versions.abort(write)
            raise
        version = self.versions.commit(write, attrs)
        # A Suspended bucket's "null" version is not announced (S3 sends
        # no x-amz-version-id then); an Enabled one's new id is.
        headers = [("x-amz-version-id", version.version_id)] \
            if write.history.state == ENABLED else []
        return headers + attrs.encryption_headers(), result

    # -- objects -------------------------------------------------------

    def get_object(self, req):
        """GetObject/HeadObject of the latest or a given version, with
        conditions and ranges done here."""
        with self.key_locks.hold((req.bucket, req.key)):
            history, version = self.versions.lookup(
                req.bucket, req.key, req.params.get("versionId"))
            attributes.check_read(req, version.attrs)
            if req.method == "GET" and version.attrs.archived:
                raise attributes.invalid_object_state(version.attrs)
            extra = history.version_header(version) + \
                version.attrs.object_headers()
            not_modified = _read_conditions(req, version.info)
            if not_modified is not None:
                not_modified.headers += history.version_header(version)
                return not_modified
            byte_range = _resolve_range(req.header("range"),
                                        version.info.size)
            if attributes.wants_checksum(req) and byte_range is None:
                # A whole-object checksum says nothing about a range.
                extra += version.attrs.checksum_headers()
            if version.live:
                headers = _forward_headers(req)
                if byte_range:
                    headers["Range"] = byte_range
                query = [(k, v) for k, v in req.query
                         if k.startswith("response-")]
                result = self._send(req, req.method, query, headers)
            else:
                path, metadata = self.versions.files(history, version)
                result = objectfiles.answer(req.method, path, version.info,
                                            metadata, byte_range, req.query)
        response = self._relay(*result)
        response.headers += extra
        return response

    def put_object(self, req):
        attrs = attributes.for_write(req, self.region)
        attrs.checksum_sha256 = attributes.checksum_sha256(
            req.header(attributes.CHECKSUM_SHA256), req.body)
        headers, result = self._put(req, attrs)
        response = self._relay(*result)
        response.headers += headers
        return response

    def _put(self, req, attrs):
        """Write req.body at req's key with attrs (PutObject, POST
        Object); (response headers, s3rver's answer)."""
        with self.key_locks.hold((req.bucket, req.key)):
            self._write_conditions(req)
            headers, result = self._write(req, attrs, lambda: self._send(
                req, "PUT", (), _forward_headers(req), req.body))
        return headers + attrs.checksum_headers(), result

    def post_object(self, req):
        """POST Object: the form, once post_upload.py has checked its
        signature and policy, is written as PutObject would write it."""
        upload = post_upload.authorize(req, self.verifier)
        put = upload.put_request(req)
        attrs = attributes.for_write(put, self.region, with_tags=False)
        attrs.tags = upload.tags
        attrs.checksum_sha256 = upload.checksum_sha256
        headers, (_, up_headers, _) = self._put(put, attrs)
        etag = dict((k.lower(), v) for k, v in up_headers).get("etag", "")
        return Response(*upload.answer(req, etag, headers))

    def _write_conditions(self, req):
        """If-None-Match: * and If-Match on writes (caller holds the lock).

        s3rver holds an object exactly when the key's latest version is
        not a delete marker, which is when S3 calls the key present.
        """
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
        """CopyObject, done by the proxy: it reads the source version's
        bytes and metadata and has s3rver PUT them (s3rver cannot copy
        from a non-current version, nor to itself with COPY)."""
        src_bucket, src_key, src_version = _parse_copy_source(
            req.header("x-amz-copy-source"))
        if not valid_bucket_name(src_bucket) or \
                not self.store.bucket_exists(src_bucket):
            raise S3Error("NoSuchBucket", "The specified bucket does not "
                          "exist", BucketName=src_bucket)
        replace_metadata = _directive(req, "x-amz-metadata-directive")
        replace_tags = _directive(req, "x-amz-tagging-directive")
        attrs = attributes.for_write(req, self.region, replace_tags)
        with self.key_locks.hold((req.bucket, req.key),
                                 (src_bucket, src_key)):
            source, version = self.versions.lookup(
                src_bucket, src_key, src_version, copy_source=True)
            attributes.check_read(req, version.attrs, source=True)
            if version.attrs.archived:
                raise attributes.invalid_object_state(version.attrs)
            if (src_bucket, src_key) == (req.bucket, req.key) and \
                    version is source.latest and not replace_metadata and \
                    not _changes_object(req):
                raise S3Error(
                    "InvalidRequest", "This copy request is illegal because "
                    "it is trying to copy an object to itself without "
                    "changing the object's metadata, storage class, website "
                    "redirect location or encryption attributes.")
            path, metadata = self.versions.files(source, version)
            with open(path, "rb") as handle:
                body = handle.read()
            if not replace_tags:
                attrs.tags = list(version.attrs.tags)
            # Same bytes, same SHA-256: the copy keeps the source's.
            attrs.checksum_sha256 = version.attrs.checksum_sha256
            headers = _forward_headers(req) if replace_metadata else \
                _metadata_headers(metadata)
            written, _ = self._write(req, attrs, lambda: self._send(
                req, "PUT", (), headers, body))
            info = self.store.object_info(req.bucket, req.key)
        response = xml_response(s3xml.build("CopyObjectResult", [
            ("LastModified", listing.iso_time(info.mtime)),
            ("ETag", info.etag)]))
        response.headers += written
        if source.state:
            response.headers.append(("x-amz-copy-source-version-id",
                                     version.version_id))
        return response

    def delete_object(self, req):
        version_id = req.params.get("versionId")
        with self.key_locks.hold((req.bucket, req.key)):
            if self.versions.state(req.bucket) is None:
                check_version_id(None, version_id)
                self._send(req, "DELETE")
                self.sidecar.remove_index(req.bucket, req.key)
                return Response(204)
            version = self.versions.delete(req.bucket, req.key, version_id)
        headers = [("x-amz-delete-marker", "true")] \
            if version.delete_marker else []
        return Response(204, headers + [("x-amz-version-id",
                                         version.version_id)])

    def delete_objects(self, req):
        """DeleteObjects, done one key at a time (each locked)."""
        if not req.has_header("content-md5"):
            raise _missing_md5()
        quiet, wanted = _parse_delete_body(req.body)
        fields = []
        for key, version_id in wanted:
            entry = [("Key", key), ("VersionId", version_id)]
            try:
                version = self._delete_one(req, key, version_id)
            except S3Error as error:
                fields.append(("Error", entry + [("Code", error.code),
                                                 ("Message", error.message)]))
                continue
            if version is not None and version.delete_marker:
                entry += [("DeleteMarker", True),
                          ("DeleteMarkerVersionId", version.version_id)]
            if not quiet:
                fields.append(("Deleted", entry))
        return xml_response(s3xml.build("DeleteResult", fields))

    def _delete_one(self, req, key, version_id):
        """The version removed or delete marker made (None if unversioned)."""
        problem = keys.key_problem(key)
        if problem:
            raise S3Error(*problem)
        with self.key_locks.hold((req.bucket, key)):
            if self.versions.state(req.bucket) is not None:
                return self.versions.delete(req.bucket, key, version_id)
            check_version_id(None, version_id)
            status, _, _ = self.upstream.request(
                "DELETE", keys.store_url_path(req.bucket, key))
            if status != 204:
                raise S3Error("InternalError", "We encountered an internal "
                              "error. Please try again.")
            self.sidecar.remove_index(req.bucket, key)
        return None

    # -- tags ------------------------------------------------------------

    def get_tagging(self, req):
        with self.key_locks.hold((req.bucket, req.key)):
            history, version = self.versions.lookup(
                req.bucket, req.key, req.params.get("versionId"))
        response = xml_response(attributes.tagging_document(
            version.attrs.tags))
        response.headers += history.version_header(version)
        return response

    def put_tagging(self, req):
        if not req.has_header("content-md5"):
            raise _missing_md5()
        return self._set_tags(req, attributes.parse_tagging(req.body), 200)

    def delete_tagging(self, req):
        return self._set_tags(req, [], 204)

    def _set_tags(self, req, tags, status):
        """Tags belong to one version: the latest, or ?versionId's."""
        with self.key_locks.hold((req.bucket, req.key)):
            history, version = self.versions.lookup(
                req.bucket, req.key, req.params.get("versionId"))
            version.attrs.tags = tags
            self.versions.save(history)
        return Response(status, history.version_header(version))

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
                    info.storage_class = self.versions.current_attrs(
                        bucket, key).storage_class
            if info is not None:
                infos.append(info)
        return infos

    def list_versions(self, req):
        """ListObjectVersions: keys in UTF-8 order, each key's versions
        and delete markers newest first."""
        params = dict(req.params)
        params.setdefault("prefix", "")
        enc = listing.encoder(params.get("encoding-type"))
        params["max-keys"] = listing.max_value(params.get("max-keys"),
                                               "max-keys")
        key_marker = params.get("key-marker") or None
        id_marker = params.get("version-id-marker") or None
        if id_marker is not None:
            if key_marker is None:
                raise S3Error("InvalidArgument", "A version-id marker cannot "
                              "be specified without a key marker.",
                              ArgumentName="version-id-marker",
                              ArgumentValue=id_marker)
            check_version_id(self.versions.state(req.bucket), id_marker)
        page = listing.Page()
        if params["max-keys"] > 0:
            page = listing.paginate(
                self._iter_versions(req.bucket, params["prefix"], key_marker,
                                    id_marker),
                lambda item: item[0], params["prefix"],
                params.get("delimiter", ""), params["max-keys"],
                entries_after=key_marker if id_marker is None else None)
        return xml_response(listing.versions_document(req.bucket, params,
                                                      page, enc))

    def _iter_versions(self, bucket, prefix, key_marker, id_marker):
        """(key, Version, is latest) after the markers, lazily."""
        low = listing.utf8_order(key_marker) if key_marker else None
        for key in sorted(self.versions.iter_keys(bucket, prefix),
                          key=listing.utf8_order):
            order = listing.utf8_order(key)
            if low is not None and (order < low or (
                    order == low and id_marker is None)):
                continue
            with self.key_locks.hold((bucket, key)):
                versions = self.versions.history(bucket, key).versions
            skip = order == low and id_marker is not None
            for position, version in enumerate(versions):
                if skip:
                    skip = version.version_id != id_marker
                    continue
                yield key, version, position == 0

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
        for upload in page.items:
            upload.storage_class = self._upload_attrs(
                req.bucket, upload.upload_id).storage_class
        return xml_response(listing.uploads_document(req.bucket, params, page,
                                                     enc))

    # -- buckets ---------------------------------------------------------

    def get_cors(self, req):
        rules = self.cors.rules(req.bucket)
        if rules is None:
            raise cors.no_configuration(req.bucket)
        return xml_response(cors.configuration_document(rules))

    def put_cors(self, req):
        if not req.has_header("content-md5"):
            raise _missing_md5()
        self.cors.set_rules(req.bucket, cors.parse_configuration(req.body))
        return Response(200)

    def delete_cors(self, req):
        self.cors.remove(req.bucket)
        return Response(204)

    def cors_headers(self, req):
        """CORS headers S3 adds to a (non-preflight) request that has an
        Origin header, error answers included."""
        origin = req.header("origin")
        if not origin or req.operation == "PreflightRequest" or \
                not valid_bucket_name(req.bucket) or \
                not self.store.bucket_exists(req.bucket):
            return []
        return self.cors.actual_headers(req.bucket, origin, req.method)

    def get_versioning(self, req):
        state = self.versions.state(req.bucket)
        return xml_response(s3xml.build("VersioningConfiguration", [
            ("Status", state)]))

    def put_versioning(self, req):
        """Enabled or Suspended; a bucket never goes back to unversioned."""
        if not req.has_header("content-md5"):
            raise _missing_md5()
        root = s3xml.parse(req.body)
        if root.tag != "VersioningConfiguration":
            raise _malformed_xml()
        status = root.findtext("Status")
        mfa_delete = root.findtext("MfaDelete")
        if mfa_delete not in (None, "Enabled", "Disabled") or \
                status not in (None, ENABLED, SUSPENDED):
            raise _malformed_xml()
        if mfa_delete == "Enabled":
            raise not_implemented("MFA delete")
        if status is None:
            raise S3Error("IllegalVersioningConfigurationException",
                          "The Versioning element must be specified")
        self.versions.set_state(req.bucket, status)
        return Response(200)

    def delete_bucket(self, req):
        """s3rver only looks for current objects; S3 also refuses while
        non-current versions or delete markers remain."""
        if self.versions.has_versions(req.bucket):
            raise S3Error("BucketNotEmpty", "The bucket you tried to delete "
                          "is not empty. You must delete all versions in the "
                          "bucket.", BucketName=req.bucket)
        return self.passthrough(req)

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

    def _upload_attrs(self, bucket, upload_id):
        return Attributes.from_json(self.sidecar.upload(bucket, upload_id))

    def create_upload(self, req):
        attrs = attributes.for_write(req, self.region)
        _, _, body = self._send(req, "POST", [("uploads", "")],
                                _forward_headers(req))
        upload_id = _xml_field(body, "UploadId")
        if not upload_id:
            raise S3Error("InternalError", "s3rver returned no UploadId")
        self.sidecar.set_upload(req.bucket, upload_id, attrs.to_json())
        self.faults.upload_created(upload_id)
        response = xml_response(s3xml.build("InitiateMultipartUploadResult", [
            ("Bucket", req.bucket), ("Key", req.key),
            ("UploadId", upload_id)]))
        response.headers += attrs.encryption_headers()
        return response

    def upload_part(self, req):
        number = _part_number(req.params.get("partNumber"))
        with self._upload_lock(req, exclusive=False):
            self._require_upload(req)
            attrs = self._upload_attrs(req.bucket, req.params["uploadId"])
            attributes.check_part(req, attrs)
            injected = self.faults.part_status(req.params["uploadId"])
            if injected is not None:
                self.stats.fault("fail_part")
                code, message = ERROR_CODES[injected]
                raise S3Error(code, message, status=injected)
            result = self._send(req, "PUT", [
                ("partNumber", str(number)),
                ("uploadId", req.params["uploadId"])], {}, req.body)
        response = self._relay(*result)
        response.headers += attrs.encryption_headers()
        return response

    def complete_upload(self, req):
        requested = _parse_complete_body(req.body)
        upload_id = req.params["uploadId"]
        with self._upload_lock(req, exclusive=True):
            self._require_upload(req)
            attrs = self._upload_attrs(req.bucket, upload_id)
            if attributes.customer_key(req) is not None:
                attributes.check_part(req, attrs)
            stored = self.store.list_parts(req.bucket, upload_id)
            self._check_parts(upload_id, requested, stored)
            with self.key_locks.hold((req.bucket, req.key)):
                self._write_conditions(req)
                headers, (_, _, body) = self._write(
                    req, attrs, lambda: self._send(
                        req, "POST", [("uploadId", upload_id)],
                        {"Content-Type": "application/xml"},
                        _complete_body(requested)))
            self.sidecar.remove_upload(req.bucket, upload_id)
        location = "http://%s/%s/%s" % (req.header("host", "localhost"),
                                        quote(req.bucket, safe=""),
                                        quote(req.key, safe="/~"))
        response = xml_response(s3xml.build("CompleteMultipartUploadResult", [
            ("Location", location), ("Bucket", req.bucket),
            ("Key", req.key), ("ETag", _xml_field(body, "ETag"))]))
        # CompleteMultipartUpload's documented headers carry no SSE-C.
        response.headers += [(k, v) for k, v in headers
                             if not k.startswith(attributes.CUSTOMER)]
        return response

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
            self.sidecar.remove_upload(req.bucket, req.params["uploadId"])
        return Response(204)

    def list_parts(self, req):
        with self._upload_lock(req, exclusive=False):
            upload = self._require_upload(req)
            parts = self.store.list_parts(req.bucket, upload.upload_id)
            upload.storage_class = self._upload_attrs(
                req.bucket, upload.upload_id).storage_class
        marker = _int_param(req.params.get("part-number-marker", "0"),
                            "part-number-marker")
        max_parts = listing.max_value(req.params.get("max-parts"),
                                      "max-parts")
        return xml_response(listing.parts_document(req.bucket, upload, parts,
                                                   marker, max_parts))

    # -- everything else -----------------------------------------------

    def passthrough(self, req):
        """Operations s3rver handles well enough on its own."""
        query = [(k, v) for k, v in req.query if k not in self.aux_params]
        if not req.bucket:
            status, up_headers, body = self.upstream.request("GET", "/")
            return self._relay(status, up_headers, body)
        with self.key_locks.hold((req.bucket, req.key)):
            result = self._send(req, req.method, query, _forward_headers(req),
                                req.body)
        return self._relay(*result)


# -- request checks ----------------------------------------------------


def _reject_unsupported(req):
    for name, value in req.headers:
        lname = name.lower()
        if req.operation == "PutObject" and _sha256_checksum(req, lname,
                                                             value):
            continue
        if (lname.startswith("x-amz-checksum-") and
                lname != "x-amz-checksum-mode") or \
                lname in _UNSUPPORTED_HEADERS:
            raise not_implemented(f"The {lname} header (flexible checksums)")
        if lname.startswith("x-amz-copy-source-if-"):
            raise not_implemented(f"The {lname} header")
    if req.operation not in _VERSIONED_OPERATIONS:
        check_version_id(None, req.params.get("versionId"))
    if req.operation == "UploadPartCopy":
        raise not_implemented("UploadPartCopy")
    if req.method == "POST" and req.operation not in _POST_OPERATIONS:
        # Browser uploads (POST Object) go to /BUCKET, not to a key.
        raise not_implemented("This POST request")


def _sha256_checksum(req, lname, value):
    """PutObject may carry x-amz-checksum-sha256 (verified and kept), and
    x-amz-sdk-checksum-algorithm: SHA256 along with it, as SDKs send;
    other flexible checksums stay unimplemented."""
    if lname == attributes.CHECKSUM_SHA256:
        return True
    return lname == "x-amz-sdk-checksum-algorithm" and \
        value.upper() == "SHA256" and \
        req.has_header(attributes.CHECKSUM_SHA256)


def _forward_headers(req):
    """Request headers for s3rver: not those the proxy evaluates, and never
    the encryption/tag/storage-class ones (attributes.py keeps those)."""
    return {k: v for k, v in req.headers
            if k.lower() not in _NOT_FORWARDED and
            not attributes.is_attribute_header(k.lower())}


def _metadata_headers(metadata):
    """s3rver's stored metadata as request headers (CopyObject COPY)."""
    return {name: value for name, value in metadata.items()
            if name != "x-amz-storage-class"}


def _directive(req, header):
    """True for REPLACE, False for COPY (the default)."""
    value = req.header(header, "COPY")
    if value not in ("COPY", "REPLACE"):
        what = "metadata" if "metadata" in header else "tagging"
        raise S3Error("InvalidArgument", f"Unknown {what} directive.",
                      ArgumentName=header, ArgumentValue=value)
    return value == "REPLACE"


def _changes_object(req):
    """Headers that make copying an object onto itself legal in S3."""
    return any(req.has_header(h) for h in (
        attributes.STORAGE_CLASS, attributes.SSE,
        attributes.CUSTOMER + "algorithm",
        "x-amz-website-redirect-location"))


def _missing_md5():
    return S3Error("InvalidRequest", "Missing required header for this "
                   "request: Content-Md5")


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
    """x-amz-copy-source -> (bucket, key, versionId or None)."""
    source, _, query = header.partition("?")
    version = re.search(r"(?:^|&)versionId=([^&]*)", query)
    version = unquote(version.group(1)) if version else None
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
    return bucket, key, version


def _parse_delete_body(body):
    """(quiet, [(key, versionId or None)])."""
    root = s3xml.parse(body)
    objects = root.findall("Object")
    if root.tag != "Delete" or not objects or len(objects) > 1000:
        raise _malformed_xml()
    wanted = [(o.findtext("Key"), o.findtext("VersionId")) for o in objects]
    if any(key is None for key, _ in wanted):
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
