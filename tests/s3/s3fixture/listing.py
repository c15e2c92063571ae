"""S3 listing semantics, done by the proxy because s3rver's are wrong.

s3rver 3.7.1 returns keys in directory-walk order (e.g. "a/x" before "a"),
and its continuation tokens resume by string comparison, so pages repeat
or skip keys.  Here keys are sorted by their UTF-8 bytes, as S3 does, and
tokens name the last entry returned.
"""

import base64
import binascii
import time
from dataclasses import dataclass, field
from urllib.parse import quote_plus

from . import s3xml
from .s3xml import S3Error

OWNER = [("ID", "75aa57f09aa0c8caeab4f8c24e99d10f"
                "8e7faeebf76c078efc7c6caea54ba06a"),
         ("DisplayName", "fixture")]
DEFAULT_MAX = 1000


def utf8_order(text):
    return text.encode("utf-8", "surrogatepass")


@dataclass
class Page:
    items: list = field(default_factory=list)
    prefixes: list = field(default_factory=list)
    truncated: bool = False
    last_entry: str = None  # last key or common prefix returned


def paginate(items, key_of, prefix, delimiter, max_entries,
             keys_after=None, entries_after=None):
    """One page of a listing.

    items must be sorted by utf8_order(key_of(item)).  keys_after drops
    keys at or before it (StartAfter/Marker); entries_after also drops
    common prefixes at or before it (continuation tokens, V1 markers).
    """
    page = Page()
    count = 0
    low_key = utf8_order(keys_after) if keys_after is not None else None
    low_entry = utf8_order(entries_after) if entries_after is not None \
        else None
    for item in items:
        key = key_of(item)
        if not key.startswith(prefix):
            continue
        if low_key is not None and utf8_order(key) <= low_key:
            continue
        if low_entry is not None and utf8_order(key) <= low_entry:
            continue
        common = _common_prefix(key, prefix, delimiter)
        if common is not None:
            if low_entry is not None and utf8_order(common) <= low_entry:
                continue
            if page.prefixes and page.prefixes[-1] == common:
                continue
        if count >= max_entries:
            page.truncated = True
            break
        count += 1
        if common is not None:
            page.prefixes.append(common)
            page.last_entry = common
        else:
            page.items.append(item)
            page.last_entry = key
    return page


def _common_prefix(key, prefix, delimiter):
    if not delimiter:
        return None
    index = key.find(delimiter, len(prefix))
    if index < 0:
        return None
    return key[: index + len(delimiter)]


# -- request parameters ------------------------------------------------


def max_value(text, name):
    if text is None:
        return DEFAULT_MAX
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise S3Error("InvalidArgument", f"Provided {name} not an integer "
                      "or within integer range",
                      ArgumentName=name, ArgumentValue=text)
    return min(value, DEFAULT_MAX)


def encoder(encoding_type):
    """Function applied to keys in responses, per the encoding-type param."""
    if encoding_type is None:
        return lambda text: text
    if encoding_type != "url":
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified "
                      "in Request", ArgumentName="encoding-type",
                      ArgumentValue=encoding_type)
    # Real S3 encodes a space as "+" here (form encoding).
    return lambda text: None if text is None else quote_plus(text, safe="/")


def make_token(last_entry):
    raw = b"fixture-v1:" + last_entry.encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def read_token(token):
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
        if raw.startswith(b"fixture-v1:"):
            return raw[len(b"fixture-v1:"):].decode("utf-8")
    except (binascii.Error, ValueError, UnicodeError):
        pass
    raise S3Error("InvalidArgument",
                  "The continuation token provided is incorrect",
                  ArgumentName="continuation-token")


def iso_time(epoch):
    millis = int(epoch * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + \
        f".{millis:03d}Z"


# -- documents ---------------------------------------------------------


def _contents(info, enc, owner):
    return ("Contents", [
        ("Key", enc(info.key)),
        ("LastModified", iso_time(info.mtime)),
        ("ETag", info.etag),
        ("Size", info.size),
        ("Owner", OWNER if owner else None),
        ("StorageClass", info.storage_class),
    ])


def _prefixes(page, enc):
    return [("CommonPrefixes", [("Prefix", enc(p))]) for p in page.prefixes]


def list_v2_document(bucket, params, page, enc, owner):
    fields = [
        ("Name", bucket),
        ("Prefix", enc(params["prefix"])),
        ("StartAfter", enc(params.get("start-after"))),
        ("ContinuationToken", params.get("continuation-token")),
        ("NextContinuationToken",
         make_token(page.last_entry) if page.truncated else None),
        ("KeyCount", len(page.items) + len(page.prefixes)),
        ("MaxKeys", params["max-keys"]),
        ("Delimiter", enc(params.get("delimiter") or None)),
        ("EncodingType", params.get("encoding-type")),
        ("IsTruncated", page.truncated),
    ]
    fields += [_contents(i, enc, owner) for i in page.items]
    fields += _prefixes(page, enc)
    return s3xml.build("ListBucketResult", fields)


def list_v1_document(bucket, params, page, enc):
    delimiter = params.get("delimiter") or None
    fields = [
        ("Name", bucket),
        ("Prefix", enc(params["prefix"])),
        ("Marker", enc(params.get("marker") or "")),
        # S3 returns NextMarker only when a delimiter was given.
        ("NextMarker", enc(page.last_entry)
         if page.truncated and delimiter else None),
        ("MaxKeys", params["max-keys"]),
        ("Delimiter", enc(delimiter)),
        ("EncodingType", params.get("encoding-type")),
        ("IsTruncated", page.truncated),
    ]
    fields += [_contents(i, enc, True) for i in page.items]
    fields += _prefixes(page, enc)
    return s3xml.build("ListBucketResult", fields)


def uploads_document(bucket, params, page, enc):
    last = page.items[-1] if page.items else None
    fields = [
        ("Bucket", bucket),
        ("KeyMarker", enc(params.get("key-marker") or "")),
        ("UploadIdMarker", params.get("upload-id-marker") or ""),
        ("NextKeyMarker", enc(page.last_entry) if page.truncated else None),
        ("NextUploadIdMarker", last.upload_id
         if page.truncated and last and page.last_entry == last.key
         else None),
        ("Prefix", enc(params.get("prefix") or None)),
        ("Delimiter", enc(params.get("delimiter") or None)),
        ("MaxUploads", params["max-uploads"]),
        ("EncodingType", params.get("encoding-type")),
        ("IsTruncated", page.truncated),
    ]
    for upload in page.items:
        fields.append(("Upload", [
            ("Key", enc(upload.key)),
            ("UploadId", upload.upload_id),
            ("Initiator", OWNER),
            ("Owner", OWNER),
            ("StorageClass", upload.storage_class),
            ("Initiated", iso_time(upload.initiated)),
        ]))
    fields += _prefixes(page, enc)
    return s3xml.build("ListMultipartUploadsResult", fields)


def versions_document(bucket, params, page, enc):
    """ListObjectVersions; page.items are (key, Version, is latest)."""
    last = page.items[-1] if page.items else None
    fields = [
        ("Name", bucket),
        ("Prefix", enc(params["prefix"])),
        ("KeyMarker", enc(params.get("key-marker") or "")),
        ("VersionIdMarker", params.get("version-id-marker") or ""),
        ("NextKeyMarker", enc(page.last_entry) if page.truncated else None),
        ("NextVersionIdMarker", last[1].version_id
         if page.truncated and last and page.last_entry == last[0]
         else None),
        ("MaxKeys", params["max-keys"]),
        ("Delimiter", enc(params.get("delimiter") or None)),
        ("EncodingType", params.get("encoding-type")),
        ("IsTruncated", page.truncated),
    ]
    for key, version, latest in page.items:
        common = [("Key", enc(key)), ("VersionId", version.version_id),
                  ("IsLatest", latest),
                  ("LastModified", iso_time(version.last_modified))]
        if version.delete_marker:
            fields.append(("DeleteMarker", common + [("Owner", OWNER)]))
        else:
            fields.append(("Version", common + [
                ("ETag", version.info.etag), ("Size", version.info.size),
                ("Owner", OWNER),
                ("StorageClass", version.attrs.storage_class)]))
    fields += _prefixes(page, enc)
    return s3xml.build("ListVersionsResult", fields)


def parts_document(bucket, upload, parts, marker, max_parts):
    """ListParts for the parts numbered above marker."""
    numbers = sorted(n for n in parts if n > marker)
    shown = numbers[:max_parts]
    truncated = len(numbers) > len(shown)
    fields = [
        ("Bucket", bucket),
        ("Key", upload.key),
        ("UploadId", upload.upload_id),
        ("Initiator", OWNER),
        ("Owner", OWNER),
        ("StorageClass", upload.storage_class),
        ("PartNumberMarker", marker),
        ("NextPartNumberMarker", shown[-1] if shown else 0),
        ("MaxParts", max_parts),
        ("IsTruncated", truncated),
    ]
    for number in shown:
        part = parts[number]
        fields.append(("Part", [
            ("PartNumber", number),
            ("LastModified", iso_time(part.mtime)),
            ("ETag", part.etag),
            ("Size", part.size),
        ]))
    return s3xml.build("ListPartsResult", fields)
