"""Browser-based uploads: POST Object with a SigV4-signed POST policy.

Follows the S3 API reference pages "POST Object", "Browser-Based Uploads
Using POST (AWS Signature Version 4)", "Authenticating Requests:
Browser-Based Uploads Using POST" and "Creating a POST Policy"
(sigv4-HTTPPOSTConstructPolicy).  This module reads the
multipart/form-data body, checks the signature (sigv4.py) and the policy,
and turns the form into the PutObject request that service.py writes
like any other, so an object uploaded by POST is indistinguishable from
one uploaded by PUT.

s3rver has a POST handler of its own, but it checks neither signature
nor policy; nothing here reaches it.
"""

import base64
import binascii
import calendar
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlencode, urlsplit

from . import attributes, keys, s3xml
from .request import S3Request
from .s3xml import S3Error
from .sigv4 import check_md5

MAX_FILE_BYTES = 5 * 1024 ** 3  # as PutObject
# "The form data and boundaries (excluding the contents of the file)
# cannot exceed 20 KB."
MAX_FIELDS_BYTES = 20 * 1024
AUTH_FIELDS = ("policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date",
               "x-amz-signature")
# The only fields a policy need not name ("Creating a POST Policy",
# Conditions), besides x-ignore-*.
_NEED_NO_CONDITION = ("x-amz-signature", "file", "policy")
# Form fields that PutObject takes as request headers.
_HEADER_FIELDS = ("cache-control", "content-type", "content-disposition",
                  "content-encoding", "expires", attributes.STORAGE_CLASS)
# With ACLs disabled (S3's default for new buckets since April 2023) only
# these canned ACLs are accepted; the fixture has no ACLs.
_ACCEPTED_ACLS = ("private", "bucket-owner-full-control")
_STATUSES = {"200": 200, "201": 201, "204": 204}
_EXPIRATION = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d{1,9})?Z")


# -- multipart/form-data -------------------------------------------------


@dataclass
class Form:
    fields: dict = field(default_factory=dict)  # lower-case name -> value
    file: bytes = None  # None: the form had no file field
    filename: str = ""  # as ${filename} expands: no directories


def parse_form(content_type, body):
    """Read the fields up to the `file` field ("Any fields below it are
    ignored").  Field names are case-insensitive; a name given twice has
    its values joined by commas, as the policy then sees them."""
    media_type, params = _split_header(content_type or "")
    if media_type.lower() != "multipart/form-data":
        raise S3Error("PreconditionFailed", "At least one of the "
                      "pre-conditions you specified did not hold",
                      Condition="Bucket POST must be of the enclosure-type "
                      "multipart/form-data")
    boundary = params.get("boundary")
    if not boundary:
        raise _malformed_post()
    delimiter = b"--" + boundary.encode("latin-1")
    # The first delimiter may open the body; every other one follows CRLF.
    if body.startswith(delimiter):
        position = 0
    else:
        position = body.find(b"\r\n" + delimiter)
        if position < 0:
            raise _malformed_post()
        position += 2
    form = Form()
    while True:
        position += len(delimiter)
        if body.startswith(b"--", position):
            return form  # the closing delimiter, and no file
        line_end = body.find(b"\r\n", position)
        if line_end < 0 or body[position:line_end].strip(b" \t"):
            raise _malformed_post()
        head_start = line_end + 2
        if body.startswith(b"\r\n", head_start):
            head, content_start = b"", head_start + 2
        else:
            head_end = body.find(b"\r\n\r\n", head_start)
            if head_end < 0:
                raise _malformed_post()
            head, content_start = body[head_start:head_end], head_end + 4
        content_end = body.find(b"\r\n" + delimiter, content_start)
        if content_end < 0:
            raise _malformed_post()
        name, filename = _part_name(head)
        if name == "file":
            if content_start > MAX_FIELDS_BYTES:
                raise _fields_too_large()
            form.file = body[content_start:content_end]
            form.filename = re.split(r"[/\\]", filename or "")[-1]
            return form
        if content_end > MAX_FIELDS_BYTES:
            raise _fields_too_large()
        try:
            value = body[content_start:content_end].decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed_post() from None
        known = form.fields.get(name)
        form.fields[name] = value if known is None else known + "," + value
        position = content_end + 2


def _part_name(head):
    """(lower-case field name, filename or None) of a part's headers."""
    try:
        lines = head.decode("utf-8").split("\r\n")
    except UnicodeDecodeError:
        raise _malformed_post() from None
    for line in lines:
        header, colon, value = line.partition(":")
        if colon and header.strip().lower() == "content-disposition":
            kind, params = _split_header(value)
            if kind.lower() != "form-data" or not params.get("name"):
                raise _malformed_post()
            return params["name"].lower(), params.get("filename")
    raise _malformed_post()


def _split_header(value):
    """("form-data", {"name": ...}) of a header value with parameters;
    quoted values may escape '"' and '\\' (RFC 7578 / RFC 2045), and
    name*=UTF-8''... is RFC 5987."""
    kind, _, rest = value.partition(";")
    params = {}
    for match in re.finditer(
            r'\s*([^\s=;]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^;]*)\s*(;|$)',
            rest):
        name, raw, quoted = match.group(1).lower(), match.group(2), \
            match.group(3)
        if quoted is not None:
            text = re.sub(r'\\(["\\])', r"\1", quoted)
        else:
            text = raw.strip()
        if name.endswith("*"):
            charset, _, encoded = text.partition("''")
            name = name[:-1]
            try:
                text = unquote(encoded, encoding=charset or "utf-8",
                               errors="strict")
            except (LookupError, UnicodeDecodeError):
                continue
        params[name] = text
    return kind.strip(), params


def _malformed_post():
    return S3Error("MalformedPOSTRequest", "The body of your POST request is "
                   "not well-formed multipart/form-data.")


def _fields_too_large():
    # S3's wording, spelling included.
    return S3Error("MaxPostPreDataLengthExceeded", "Your POST request fields "
                   "preceeding the upload file was too large.",
                   MaxPostPreDataLength=MAX_FIELDS_BYTES)


# -- the POST policy -----------------------------------------------------


@dataclass
class Condition:
    op: str        # "eq", "starts-with" or "content-length-range"
    name: str      # lower-case field name; "" for content-length-range
    value: object  # the expected value or prefix, or (min, max)
    text: str      # the condition as S3 quotes it in errors


def parse_policy(encoded):
    """(expiration as epoch seconds, [Condition]) of the base64 policy;
    InvalidPolicyDocument 400 when it is not a policy."""
    encoded = re.sub(r"\s", "", encoded)
    if not encoded:
        raise _invalid_policy("Expecting '{' but found End-of-Input")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid_policy("invalid Base64 encoding.") from None
    try:
        document = json.loads(_json_escapes(raw.decode("utf-8")))
    except (UnicodeDecodeError, ValueError):
        raise _invalid_policy("Invalid JSON.") from None
    if not isinstance(document, dict):
        raise _invalid_policy("Invalid JSON.")
    for name in document:
        if name not in ("expiration", "conditions"):
            raise _invalid_policy(f'Unexpected: "{name}"')
    if "expiration" not in document:
        raise _invalid_policy("Policy missing expiration.")
    expiration = _expiration(document["expiration"])
    if "conditions" not in document:
        raise _invalid_policy("Policy missing conditions.")
    if not isinstance(document["conditions"], list):
        raise _invalid_policy("Invalid 'conditions' value: must be a List.")
    return expiration, [_condition(c) for c in document["conditions"]]


def _json_escapes(text):
    """The policy's escapes that JSON lacks ("Character Escaping": \\$ and
    \\v), rewritten; the others are JSON's own."""
    def replace(match):
        char = match.group(1)
        return {"$": "$", "v": "\\u000b"}.get(char, match.group(0))
    return re.sub(r"\\(.)", replace, text, flags=re.S)


def _expiration(value):
    """ISO 8601 in UTC, e.g. 2007-12-01T12:00:00.000Z."""
    match = _EXPIRATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _invalid_policy(f"Invalid 'expiration' value: '{value}'")
    try:
        moment = time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise _invalid_policy(
            f"Invalid 'expiration' value: '{value}'") from None
    fraction = float(match.group(7)) if match.group(7) else 0.0
    return calendar.timegm(moment) + fraction


def _condition(item):
    if isinstance(item, dict):
        if len(item) != 1:
            raise _invalid_policy("Invalid Simple-Condition: "
                                  "Simple-Conditions must have exactly one "
                                  "property specified.")
        (name, value), = item.items()
        if not isinstance(value, str):
            raise _invalid_policy("Invalid Simple-Condition: value must be "
                                  "a string.")
        return Condition("eq", name.lower(), value,
                         _quote(["eq", "$" + name, value]))
    if not isinstance(item, list):
        raise _invalid_policy("Invalid condition test: must be a List or "
                              "Object.")
    if not item or not isinstance(item[0], str):
        raise _invalid_policy("Invalid Condition: missing operation "
                              "identifier.")
    op = item[0].lower()
    if op not in ("eq", "starts-with", "content-length-range"):
        raise _invalid_policy(f"Invalid Condition: unknown operation "
                              f"'{item[0]}'.")
    if len(item) != 3:
        raise _invalid_policy(f"Invalid {op}: wrong number of arguments.")
    if op == "content-length-range":
        bounds = [_integer(v) for v in item[1:]]
        if None in bounds:
            raise _invalid_policy("Invalid content-length-range: the bounds "
                                  "must be integers.")
        return Condition(op, "", tuple(bounds), _quote(item))
    name, value = item[1], item[2]
    if not isinstance(name, str) or not name.startswith("$") or \
            len(name) == 1:
        raise _invalid_policy(f"Invalid {op}: the field name must start "
                              "with '$'.")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _invalid_policy(f"Invalid {op}: the value must be a string.")
    return Condition(op, name[1:].lower(), str(value), _quote(item))


def _integer(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,19}", value):
        return int(value)
    return None


def _quote(item):
    return "[" + ", ".join(json.dumps(v, ensure_ascii=False)
                           for v in item) + "]"


def _invalid_policy(message):
    return S3Error("InvalidPolicyDocument", "Invalid Policy: " + message)


def _denied(message):
    return S3Error("AccessDenied", "Invalid according to Policy: " + message)


def check_policy(expiration, conditions, bucket, fields, size, now):
    """Evaluate the policy against the (expanded) form, in S3's order:
    expiry, fields no condition names, then each condition in turn."""
    if now >= expiration:
        raise _denied("Policy expired.")
    named = {c.name for c in conditions if c.name}
    # The bucket is an input too: a policy must name it.
    inputs = dict.fromkeys(["bucket"] + [
        n for n in fields
        if n not in _NEED_NO_CONDITION and not n.startswith("x-ignore-")])
    extra = [n for n in inputs if n not in named]
    if extra:
        raise _denied("Extra input fields: " + ", ".join(extra))
    for condition in conditions:
        if condition.op == "content-length-range":
            _check_size(condition.value, size)
            continue
        actual = bucket if condition.name == "bucket" else \
            fields.get(condition.name)
        if actual is None or not _meets(condition, actual):
            raise _denied("Policy Condition failed: " + condition.text)


def _meets(condition, actual):
    if condition.op == "eq":
        return actual == condition.value
    if condition.name == "content-type":
        # A list of types: each must start with the prefix.
        return all(part.strip().startswith(condition.value)
                   for part in actual.split(","))
    return actual.startswith(condition.value)


def _check_size(bounds, size):
    low, high = bounds
    if size > high:
        raise S3Error("EntityTooLarge", "Your proposed upload exceeds the "
                      "maximum allowed size", ProposedSize=size,
                      MaxSizeAllowed=high)
    if size < low:
        raise S3Error("EntityTooSmall", "Your proposed upload is smaller "
                      "than the minimum allowed size", ProposedSize=size,
                      MinSizeAllowed=low)


# -- from form to PutObject ----------------------------------------------


@dataclass
class Upload:
    """An authorised POST: what to write and how to answer."""
    bucket: str
    key: str
    fields: dict  # expanded, lower-case names
    file: bytes
    access_key: str
    tags: list = field(default_factory=list)
    checksum_sha256: str = None

    def put_request(self, req):
        """The PutObject request this upload amounts to (form fields as
        headers, as received: UTF-8 read as latin-1, like http.server)."""
        headers = [("Host", req.header("host", ""))]
        for name, value in self.fields.items():
            if name in _HEADER_FIELDS or \
                    name.startswith(("x-amz-meta-", attributes.SSE)):
                if "\r" in value or "\n" in value:
                    raise S3Error("InvalidArgument", "Form field values may "
                                  "not contain line breaks.",
                                  ArgumentName=name, ArgumentValue=value)
                headers.append((name, value.encode("utf-8").decode(
                    "latin-1")))
        return S3Request("PUT", req.raw_path, [], headers, self.file,
                         self.bucket, self.key, req.request_id, "PutObject",
                         {})

    def location(self, req):
        return "http://%s/%s/%s" % (req.header("host", "localhost"),
                                    quote(self.bucket, safe=""),
                                    quote(self.key, safe="/~"))

    def answer(self, req, etag, headers):
        """(status, headers, body) after the write: a 303 to
        success_action_redirect, or success_action_status (201 with a
        PostResponse document, 200 or 204 empty; 204 by default)."""
        location = self.location(req)
        redirect = _redirect(self.fields.get("success_action_redirect") or
                             self.fields.get("redirect"),
                             self.bucket, self.key, etag)
        if redirect is not None:
            return 303, [("Location", redirect), ("ETag", etag)] + \
                headers, b""
        status = _STATUSES.get(self.fields.get("success_action_status"), 204)
        headers = [("ETag", etag), ("Location", location)] + headers
        if status != 201:
            return status, headers, b""
        body = s3xml.build("PostResponse", [
            ("Location", location), ("Bucket", self.bucket),
            ("Key", self.key), ("ETag", etag)], namespace=False)
        return 201, headers + [("Content-Type", "application/xml")], body


def _redirect(url, bucket, key, etag):
    """success_action_redirect with bucket, key and etag appended; None
    if there is none or "Amazon S3 cannot interpret the URL"."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    query = urlencode([("bucket", bucket), ("key", key), ("etag", etag)])
    return url.split("#")[0] + ("&" if parts.query else "?") + query


def authorize(req, verifier, now=None):
    """Read and check a POST Object request; an Upload, or S3's error."""
    now = time.time() if now is None else now
    form = parse_form(req.header("content-type"), req.body)
    if form.file is None:
        raise S3Error("InvalidArgument", "POST requires exactly one file "
                      "upload per request.", ArgumentName="file",
                      ArgumentValue="0")
    # "All variables within the form are expanded before the policy is
    # validated."
    fields = {name: value if name in ("policy", "x-amz-signature") else
              value.replace("${filename}", form.filename)
              for name, value in form.fields.items()}
    key = fields.get("key")
    if key is None:
        raise _missing_field("key")
    if key == "":  # e.g. "${filename}" and a file without a name
        raise S3Error("InvalidArgument", "User key must have a length "
                      "greater than 0.", ArgumentName="key", ArgumentValue="")
    problem = keys.key_problem(key)
    if problem:
        raise S3Error(*problem)
    if not any(name in fields for name in AUTH_FIELDS):
        if "signature" in fields or "awsaccesskeyid" in fields:
            raise S3Error("InvalidRequest", "The authorization mechanism you "
                          "have provided is not supported. Please use "
                          "AWS4-HMAC-SHA256.")
        raise S3Error("AccessDenied", "Access Denied")  # no bucket is public
    for name in AUTH_FIELDS:
        if name not in fields:
            raise _missing_field(name)
    access_key = verifier.verify_post_policy(fields)
    expiration, conditions = parse_policy(fields["policy"])
    check_policy(expiration, conditions, req.bucket, fields, len(form.file),
                 now)
    if len(form.file) > MAX_FILE_BYTES:
        raise S3Error("EntityTooLarge", "Your proposed upload exceeds the "
                      "maximum allowed size", ProposedSize=len(form.file),
                      MaxSizeAllowed=MAX_FILE_BYTES)
    upload = Upload(req.bucket, key, fields, form.file, access_key)
    _check_values(upload)
    return upload


def _check_values(upload):
    """What PutObject would check in its headers, for the form's fields."""
    fields = upload.fields
    acl = fields.get("acl")
    if acl is not None and acl not in _ACCEPTED_ACLS:
        raise S3Error("AccessControlListNotSupported", "The bucket does not "
                      "allow ACLs")
    for name, value in fields.items():
        if name == "x-amz-checksum-algorithm":
            unsupported = value.upper() != "SHA256"
        else:
            unsupported = name.startswith("x-amz-checksum-") and \
                name != attributes.CHECKSUM_SHA256
        if unsupported:
            raise S3Error("NotImplemented", f"The {name} field (flexible "
                          "checksums other than SHA-256) is not implemented "
                          "by the test fixture.")
    if "content-md5" in fields:
        check_md5(fields["content-md5"], upload.file)
    given = fields.get(attributes.CHECKSUM_SHA256)
    if given is None and "x-amz-checksum-algorithm" in fields:
        # The algorithm alone: S3 computes the checksum and keeps it.
        given = base64.b64encode(hashlib.sha256(upload.file).digest()) \
            .decode("ascii")
    upload.checksum_sha256 = attributes.checksum_sha256(given, upload.file)
    if "tagging" in fields:
        upload.tags = attributes.parse_tagging(
            fields["tagging"].encode("utf-8"))


def _missing_field(name):
    return S3Error("InvalidArgument", f"Bucket POST must contain a field "
                   f"named '{name}'.  If it is specified, please check the "
                   "order of the fields.", ArgumentName=name,
                   ArgumentValue="")
