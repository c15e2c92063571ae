"""Reversible translation between client object keys and s3rver keys.

s3rver routes requests with a `/:bucket/:key+` pattern and stores each key
as a file path, so a key with an empty path segment (`a//b`, `/lead`) never
reaches its handlers (404).  We therefore escape keys before they reach
s3rver:

    "~" -> "~~"      "/" -> "~/"

Every "/" seen by s3rver is then preceded by a "~", so no path segment is
empty, and no directory segment can be "." or ".." (it always ends in "~").
The mapping is a prefix-free code applied character by character, so
`to_store(p)` is a prefix of `to_store(k)` exactly when `p` is a prefix of
`k`; listing by prefix still works on the escaped form.  It does not
preserve sort order, which is why the proxy sorts listings itself.
"""

import re
from urllib.parse import quote

_ESCAPE = re.compile(r"([~/])")
_UNESCAPE = re.compile(r"~([~/])")

# s3rver appends suffixes such as "._S3rver_metadata.json" (22 bytes) to the
# last segment of a key to build file names; Linux limits a name to 255 bytes.
_SUFFIX_BYTES = len("._S3rver_metadata.json")
_NAME_MAX = 255
MAX_KEY_BYTES = 1024  # the S3 limit


def to_store(key):
    """Client key -> key stored in s3rver."""
    return _ESCAPE.sub(r"~\1", key)


def from_store(stored):
    """Key stored in s3rver -> client key (lenient on malformed input)."""
    return _UNESCAPE.sub(r"\1", stored)


def store_url_path(bucket, key):
    """Percent-encoded request path for s3rver.

    Dots are encoded too so that no URL segment is a literal "." or "..",
    which some HTTP layers would normalise away.
    """
    encoded = quote(to_store(key), safe="/").replace(".", "%2E")
    return "/" + quote(bucket, safe="") + "/" + encoded


def key_problem(key):
    """(S3 error code, message) if `key` cannot be stored, else None."""
    if key == "":
        return "InvalidArgument", "The key must not be empty."
    if "\x00" in key:
        return "InvalidArgument", "The fixture cannot store keys with NUL."
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return "KeyTooLongError", "Your key is too long"
    segments = to_store(key).split("/")
    longest = max(len(s.encode("utf-8")) for s in segments[:-1]) \
        if len(segments) > 1 else 0
    if longest > _NAME_MAX or \
            len(segments[-1].encode("utf-8")) + _SUFFIX_BYTES > _NAME_MAX:
        return "KeyTooLongError", ("A '/'-separated part of the key is too "
                                   "long for the fixture's file store.")
    return None
