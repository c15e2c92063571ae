"""What S3 keeps with each object version besides bytes and metadata:
server-side encryption (SSE-S3, SSE-KMS, SSE-C), tags, storage class and
a SHA-256 checksum given at upload.

s3rver knows none of these, so the proxy parses and validates the request
headers here, never forwards them (s3rver would store the SSE-C key in its
upload metadata and refuse newer storage classes), keeps the result in its
sidecar state (versions.py) and writes the response headers itself.
Nothing is encrypted: the fixture only answers as S3 would.
"""

import base64
import binascii
import hashlib
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from . import s3xml
from .request import as_utf8
from .s3xml import S3Error

SSE = "x-amz-server-side-encryption"
KMS_KEY = "x-amz-server-side-encryption-aws-kms-key-id"
BUCKET_KEY = "x-amz-server-side-encryption-bucket-key-enabled"
CUSTOMER = "x-amz-server-side-encryption-customer-"
COPY_CUSTOMER = "x-amz-copy-source-server-side-encryption-customer-"
TAGGING = "x-amz-tagging"
STORAGE_CLASS = "x-amz-storage-class"
CHECKSUM_SHA256 = "x-amz-checksum-sha256"

# PutObject's documented values (aws:kms:dsse is dual-layer SSE-KMS).
SSE_VALUES = ("AES256", "aws:kms", "aws:kms:dsse")
STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA",
                   "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER",
                   "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "SNOW",
                   "EXPRESS_ONEZONE")
# Archived until restored: GetObject and CopyObject refuse them.
ARCHIVED_CLASSES = ("GLACIER", "DEEP_ARCHIVE")
FAKE_ACCOUNT = "000000000000"
# What S3 reports for aws:kms without a key id is the account's aws/s3
# managed key; the fixture's account has this one.
DEFAULT_KMS_KEY_ID = "5f1a4e5c-0000-4000-8000-f1c7f1c7f1c7"
MAX_TAGS = 10
MAX_TAG_KEY, MAX_TAG_VALUE = 128, 256
_TAG_SYMBOLS = set("_.:/=+-@")


def is_attribute_header(lname):
    """A (lower-case) request header this module consumes."""
    return lname.startswith((SSE, "x-amz-copy-source-server-side-")) or \
        lname in (TAGGING, STORAGE_CLASS, "x-amz-tagging-directive",
                  CHECKSUM_SHA256, "x-amz-sdk-checksum-algorithm",
                  "x-amz-checksum-mode")


@dataclass
class Attributes:
    sse: str = None            # x-amz-server-side-encryption value
    kms_key_id: str = None     # key ARN, SSE-KMS only
    bucket_key: bool = False   # S3 Bucket Key, SSE-KMS only
    customer_key_md5: str = None  # SSE-C: base64 MD5 of the key, never the key
    tags: list = field(default_factory=list)  # [(key, value)], in order
    storage_class: str = "STANDARD"
    checksum_sha256: str = None  # base64, as x-amz-checksum-sha256
    # GCS mode only (gcs.py): the object's generation and metageneration,
    # its CRC32C (base64, as x-goog-hash) and, for a composite object (a
    # completed multipart upload), its component count.
    generation: int = None
    metageneration: int = None
    crc32c: str = None
    component_count: int = None

    def to_json(self):
        """Only what differs from an ordinary object (small sidecars)."""
        doc = {}
        for name in ("sse", "kms_key_id", "customer_key_md5",
                     "checksum_sha256", "generation", "metageneration",
                     "crc32c", "component_count"):
            if getattr(self, name):
                doc[name] = getattr(self, name)
        if self.bucket_key:
            doc["bucket_key"] = True
        if self.tags:
            doc["tags"] = [list(t) for t in self.tags]
        if self.storage_class != "STANDARD":
            doc["storage_class"] = self.storage_class
        return doc

    @classmethod
    def from_json(cls, doc):
        doc = doc or {}
        return cls(doc.get("sse"), doc.get("kms_key_id"),
                   bool(doc.get("bucket_key")), doc.get("customer_key_md5"),
                   [tuple(t) for t in doc.get("tags", [])],
                   doc.get("storage_class", "STANDARD"),
                   doc.get("checksum_sha256"), doc.get("generation"),
                   doc.get("metageneration"), doc.get("crc32c"),
                   doc.get("component_count"))

    def is_plain(self):
        return not self.to_json()

    @property
    def archived(self):
        return self.storage_class in ARCHIVED_CLASSES

    def encryption_headers(self):
        """SSE headers of PUT/COPY/Create/UploadPart/GET/HEAD responses."""
        headers = []
        if self.sse:
            headers.append((SSE, self.sse))
        if self.kms_key_id:
            headers.append((KMS_KEY, self.kms_key_id))
        if self.bucket_key:
            headers.append((BUCKET_KEY, "true"))
        if self.customer_key_md5:
            headers += [(CUSTOMER + "algorithm", "AES256"),
                        (CUSTOMER + "key-MD5", self.customer_key_md5)]
        return headers

    def object_headers(self):
        """Everything GetObject/HeadObject add for these attributes.

        S3 omits x-amz-storage-class for STANDARD objects.
        """
        headers = self.encryption_headers()
        if self.storage_class != "STANDARD":
            headers.append((STORAGE_CLASS, self.storage_class))
        if self.tags:
            headers.append(("x-amz-tagging-count", str(len(self.tags))))
        return headers

    def checksum_headers(self):
        """PutObject's answer, and GET/HEAD with x-amz-checksum-mode:
        ENABLED (S3 sends checksums only when asked)."""
        if not self.checksum_sha256:
            return []
        return [(CHECKSUM_SHA256, self.checksum_sha256),
                ("x-amz-checksum-type", "FULL_OBJECT")]


# -- parsing a write ------------------------------------------------------


def for_write(req, region, with_tags=True):
    """Attributes requested by PutObject, CreateMultipartUpload or the
    target of CopyObject; raises S3Error for what S3 refuses."""
    attrs = Attributes()
    attrs.sse, attrs.kms_key_id, attrs.bucket_key = _sse_kms(req, region)
    attrs.customer_key_md5 = customer_key(req)
    if attrs.sse and attrs.customer_key_md5:
        raise S3Error("InvalidArgument", "Server Side Encryption with "
                      "Customer provided key is incompatible with the "
                      "encryption method specified",
                      ArgumentName=SSE, ArgumentValue=attrs.sse)
    attrs.storage_class = storage_class(req)
    if with_tags:
        attrs.tags = tags_from_header(as_utf8(req.header(TAGGING) or ""))
    return attrs


def _sse_kms(req, region):
    value = req.header(SSE)
    key_id = req.header(KMS_KEY)
    if value is not None and value not in SSE_VALUES:
        raise S3Error("InvalidArgument", "The encryption method specified "
                      "is not supported", ArgumentName=SSE,
                      ArgumentValue=value)
    kms = value is not None and value.startswith("aws:kms")
    if key_id is not None and not kms:
        raise S3Error("InvalidArgument", "Server Side Encryption with AWS KMS "
                      "managed key requires HTTP header "
                      "x-amz-server-side-encryption : aws:kms",
                      ArgumentName=SSE, ArgumentValue=value or "null")
    if not kms:
        return value, None, False
    bucket_key = (req.header(BUCKET_KEY) or "").lower() == "true"
    return value, _kms_arn(key_id or DEFAULT_KMS_KEY_ID, region), bucket_key


def _kms_arn(key_id, region):
    """S3 reports the key as an ARN even when given a bare key id."""
    if key_id.startswith("arn:"):
        return key_id
    prefix = f"arn:aws:kms:{region}:{FAKE_ACCOUNT}:"
    return prefix + (key_id if key_id.startswith("alias/")
                     else "key/" + key_id)


def customer_key(req, source=False):
    """Validate SSE-C headers (or x-amz-copy-source-... ones for a copy
    source); return the key's base64 MD5, or None if none were sent."""
    prefix = COPY_CUSTOMER if source else CUSTOMER
    algorithm = req.header(prefix + "algorithm")
    key = req.header(prefix + "key")
    key_md5 = req.header(prefix + "key-md5")
    if algorithm is None and key is None and key_md5 is None:
        return None

    def invalid(message, code="InvalidArgument"):
        return S3Error(code, message, ArgumentName=SSE,
                       ArgumentValue="null")
    what = "Requests specifying Server Side Encryption with Customer " \
        "provided keys must provide "
    if algorithm is None:
        raise invalid(what + "a valid encryption algorithm.")
    if algorithm != "AES256":
        raise S3Error("InvalidEncryptionAlgorithmError", "The Encryption "
                      "request you specified is not valid. Supported value: "
                      "AES256.", ArgumentName=prefix + "algorithm",
                      ArgumentValue=algorithm)
    if key is None:
        raise invalid(what + "an appropriate secret key.")
    if key_md5 is None:
        raise invalid(what + "the client calculated MD5 of the secret key.")
    raw = _b64(key)
    if raw is None or len(raw) != 32:
        raise invalid("The secret key was invalid for the specified "
                      "algorithm.")
    if _b64(key_md5) != hashlib.md5(raw).digest():
        raise invalid("The calculated MD5 hash of the key did not match the "
                      "hash that was provided.")
    return base64.b64encode(hashlib.md5(raw).digest()).decode("ascii")


def _b64(text):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def checksum_sha256(value, body):
    """Verify an x-amz-checksum-sha256 value (header or POST form field)
    against the body and return it, or None if none was sent."""
    if value is None:
        return None
    digest = _b64(value.strip())
    if digest is None or len(digest) != 32:
        raise S3Error("InvalidRequest", "Value for x-amz-checksum-sha256 "
                      "header is invalid.")
    if digest != hashlib.sha256(body).digest():
        raise S3Error("BadDigest", "The SHA256 you specified did not match "
                      "the calculated checksum.")
    return base64.b64encode(digest).decode("ascii")


def wants_checksum(req):
    return (req.header("x-amz-checksum-mode") or "").upper() == "ENABLED"


def storage_class(req):
    value = req.header(STORAGE_CLASS)
    if value is None:
        return "STANDARD"
    if value not in STORAGE_CLASSES:
        raise S3Error("InvalidStorageClass", "The storage class you "
                      "specified is not valid", StorageClassRequested=value)
    return value


# -- checks on reads ------------------------------------------------------


def check_read(req, attrs, source=False):
    """SSE-C access to a stored version (GET/HEAD, or a copy source)."""
    if not source and req.has_header(SSE):
        # SSE-S3/KMS objects are decrypted transparently; S3 refuses the
        # header on reads.
        raise S3Error("InvalidArgument", "x-amz-server-side-encryption "
                      "header is not supported for this operation.",
                      ArgumentName=SSE, ArgumentValue=req.header(SSE))
    given = customer_key(req, source)
    if attrs.customer_key_md5 is None:
        if given is not None:
            raise S3Error("InvalidRequest", "The encryption parameters are "
                          "not applicable to this object.")
        return
    if given is None:
        raise S3Error("InvalidRequest", "The object was stored using a form "
                      "of Server Side Encryption. The correct parameters "
                      "must be provided to retrieve the object.")
    if given != attrs.customer_key_md5:
        raise S3Error("AccessDenied", "Access Denied")


def check_part(req, upload_attrs):
    """UploadPart (and Complete, if it sends a key) must carry the key the
    upload was created with."""
    given = customer_key(req)
    expected = upload_attrs.customer_key_md5
    if expected is not None and given is None:
        raise S3Error("InvalidRequest", "The multipart upload initiate "
                      "requested encryption. Subsequent part requests must "
                      "include the appropriate encryption parameters.")
    if given is not None and given != expected:
        raise S3Error("InvalidArgument", "The provided encryption parameters "
                      "did not match the ones used originally.",
                      ArgumentName=SSE, ArgumentValue="null")


def invalid_object_state(attrs):
    return S3Error("InvalidObjectState", "The operation is not valid for the "
                   "object's storage class",
                   StorageClass=attrs.storage_class)


# -- tags -----------------------------------------------------------------


def tags_from_header(text):
    """x-amz-tagging: form-encoded "k1=v1&k2" (a missing "=" is "")."""
    if not text:
        return []
    tags = []
    for part in text.split("&"):
        if part == "":
            continue
        name, _, value = part.partition("=")
        # A second raw "=" is malformed (S3 refuses "a=b=c"); an encoded
        # one (%3D) is an "=" inside the value, which tags may contain.
        malformed = "=" in value
        try:
            name = unquote_plus(name, errors="strict")
            value = unquote_plus(value, errors="strict")
        except UnicodeDecodeError:
            malformed = True
        if malformed:
            raise S3Error("InvalidArgument", "The header 'x-amz-tagging' "
                          "shall be encoded as UTF-8 then URLEncoded URL "
                          "query parameters without tag name duplicates.",
                          ArgumentName=TAGGING, ArgumentValue=text)
        tags.append((name, value))
    check_tags(tags)
    return tags


def parse_tagging(body):
    """The Tagging document of PutObjectTagging."""
    root = s3xml.parse(body)
    tag_set = root.find("TagSet")
    if root.tag != "Tagging" or tag_set is None:
        raise _malformed()
    tags = []
    for tag in tag_set:
        key, value = tag.find("Key"), tag.find("Value")
        if tag.tag != "Tag" or key is None or value is None:
            raise _malformed()
        tags.append((key.text or "", value.text or ""))
    check_tags(tags)
    return tags


def tagging_document(tags):
    return s3xml.build("Tagging", [("TagSet", [
        ("Tag", [("Key", k), ("Value", v)]) for k, v in tags])])


def check_tags(tags):
    """S3's object tag limits (user guide, "Categorizing your storage using
    tags"): lengths count UTF-16 code units, as S3 stores tags in UTF-16."""
    if len(tags) > MAX_TAGS:
        # What S3 answers (the API reference names no code for this case).
        raise S3Error("BadRequest", "Object tags cannot be greater than 10")
    seen = set()
    for key, value in tags:
        if not key or not _tag_text_ok(key):
            raise S3Error("InvalidTag", "The TagKey you have provided is "
                          "invalid", TagKey=key)
        if _utf16_len(key) > MAX_TAG_KEY:
            raise S3Error("InvalidTag", "The TagKey you have provided is too "
                          "long, max 128", TagKey=key)
        if key.startswith("aws:"):
            raise S3Error("InvalidTag", "Your TagKey cannot be prefixed with "
                          "aws:", TagKey=key)
        if not _tag_text_ok(value):
            raise S3Error("InvalidTag", "The TagValue you have provided is "
                          "invalid", TagKey=key, TagValue=value)
        if _utf16_len(value) > MAX_TAG_VALUE:
            raise S3Error("InvalidTag", "The TagValue you have provided is "
                          "too long, max 256", TagKey=key)
        if key in seen:
            raise S3Error("InvalidTag", "Cannot provide multiple Tags with "
                          "the same key", TagKey=key)
        seen.add(key)


def _utf16_len(text):
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _tag_text_ok(text):
    """Letters, numbers, white space and _ . : / = + - @ (S3's tag set)."""
    return all(c in _TAG_SYMBOLS or c.isspace() or
               unicodedata.category(c)[0] in "LMNZ" for c in text)


def _malformed():
    return S3Error("MalformedXML", "The XML you provided was not well-formed "
                   "or did not validate against our published schema.")
