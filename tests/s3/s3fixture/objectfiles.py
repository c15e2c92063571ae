"""GetObject/HeadObject answered from files the proxy holds.

Non-current versions live in the sidecar (sidecar.py), where s3rver cannot
serve them, so the proxy answers for them the way s3rver 3.7.1 answers for
its current objects: the stored metadata as headers, ETag, Last-Modified,
Accept-Ranges, an explicit byte range (already resolved by the caller)
and the response-* overrides of a signed GET.
"""

import email.utils
import re

from .s3xml import S3Error

# s3rver's list (middleware/response-header-override.js), from S3's docs.
RESPONSE_OVERRIDES = ("response-content-type", "response-content-language",
                      "response-expires", "response-cache-control",
                      "response-content-disposition",
                      "response-content-encoding")
_EXPLICIT_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


def answer(method, path, info, metadata, byte_range, query):
    """(status, [(header, value)], body) for a stored version."""
    overrides = _overrides(query)
    headers = [(_capitalize(name), value) for name, value in metadata.items()
               if name != "x-amz-storage-class"]
    if not any(name == "content-type" for name in metadata):
        headers.append(("Content-Type", "binary/octet-stream"))
    headers += [("ETag", info.etag),
                ("Last-Modified",
                 email.utils.formatdate(info.mtime, usegmt=True)),
                ("Accept-Ranges", "bytes")]
    status, first, last = 200, 0, info.size - 1
    if byte_range:
        first, last = map(int, _EXPLICIT_RANGE.fullmatch(byte_range).groups())
        status = 206
        headers.append(("Content-Range", f"bytes {first}-{last}/{info.size}"))
    headers.append(("Content-Length", str(max(0, last + 1 - first))))
    headers = [(k, v) for k, v in headers
               if k.lower() not in {o.lower() for o, _ in overrides}]
    headers += overrides
    body = b""
    if method == "GET" and last >= first:
        with open(path, "rb") as handle:
            handle.seek(first)
            body = handle.read(last + 1 - first)
    return status, headers, body


def _overrides(query):
    overrides = []
    for name, value in query:
        if not name.startswith("response-"):
            continue
        if name not in RESPONSE_OVERRIDES:
            raise S3Error("InvalidArgument", f"{name} is not in the set of "
                          "overridable response headers. Please refer to the "
                          "S3 API documentation for a complete list of "
                          "overridable response headers.",
                          ArgumentName=name, ArgumentValue=value)
        overrides.append((_capitalize(name[len("response-"):]), value))
    return overrides


def _capitalize(name):
    """Header spelling as s3rver writes it (x-amz-* stays lower case)."""
    if name.startswith("x-amz-"):
        return name
    return "-".join(word[:1].upper() + word[1:] for word in name.split("-"))
