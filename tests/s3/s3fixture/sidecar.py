"""The proxy's own state on disk, next to s3rver's files.

What S3 keeps and s3rver cannot (bucket versioning and CORS rules,
non-current versions and delete markers, per-version attributes,
multipart upload attributes) lives in one directory per bucket, so it
survives a proxy restart and goes away with DeleteBucket:

    DATA/BUCKET/._fixture/bucket.json          {"versioning": "Enabled"}
    DATA/BUCKET/._fixture/cors.json            CORS rules (cors.py)
    DATA/BUCKET/._fixture/uploads/ID.json      attributes of an upload
    DATA/BUCKET/._fixture/keys/<escaped key>._v/
        index.json                             the key's versions, newest
                                               first (versions.py)
        VID.object                             bytes, ETag and metadata of
        VID.object.md5                         a non-current version: the
        VID.metadata.json                      s3rver files, moved here

Nothing here can pass for an object: s3rver lists only files ending in
"._S3rver_object", and the proxy's walk skips "._fixture" (store.py).
Key directories mirror keys.to_store(), whose directories all end in "~",
so "<last segment>._v" never collides with one.
"""

import json
import os
import secrets
import threading

from . import keys
from .store import SIDECAR_DIR, object_info_at

KEY_DIR_SUFFIX = "._v"
INDEX = "index.json"
# s3rver file role -> suffix of the archived copy after the version id.
_VERSION_FILES = {"object": ".object", "md5": ".object.md5",
                  "metadata": ".metadata.json"}


class Sidecar:
    def __init__(self, store):
        self.store = store
        # Making a directory and putting a file in it must not interleave
        # with removing that directory because it looked empty.
        self._tree = threading.Lock()

    def _root(self, bucket):
        return os.path.join(self.store.bucket_dir(bucket), SIDECAR_DIR)

    # -- bucket configuration and uploads ----------------------------------

    def bucket_config(self, bucket):
        return _read_json(os.path.join(self._root(bucket), "bucket.json"))

    def set_bucket_config(self, bucket, doc):
        self._write_json(os.path.join(self._root(bucket), "bucket.json"), doc)

    def _cors_path(self, bucket):
        return os.path.join(self._root(bucket), "cors.json")

    def cors(self, bucket):
        return _read_json(self._cors_path(bucket))

    def set_cors(self, bucket, doc):
        self._write_json(self._cors_path(bucket), doc)

    def remove_cors(self, bucket):
        _unlink(self._cors_path(bucket))

    def _upload_path(self, bucket, upload_id):
        return os.path.join(self._root(bucket), "uploads",
                            upload_id + ".json")

    def upload(self, bucket, upload_id):
        return _read_json(self._upload_path(bucket, upload_id))

    def set_upload(self, bucket, upload_id, doc):
        self._write_json(self._upload_path(bucket, upload_id), doc)

    def remove_upload(self, bucket, upload_id):
        _unlink(self._upload_path(bucket, upload_id))

    # -- per-key version index ---------------------------------------------

    def key_dir(self, bucket, key):
        return os.path.join(self._root(bucket), "keys",
                            keys.to_store(key) + KEY_DIR_SUFFIX)

    def index(self, bucket, key):
        return _read_json(os.path.join(self.key_dir(bucket, key), INDEX))

    def set_index(self, bucket, key, doc):
        self._write_json(os.path.join(self.key_dir(bucket, key), INDEX), doc)

    def remove_index(self, bucket, key):
        _unlink(os.path.join(self.key_dir(bucket, key), INDEX))
        self._prune(bucket, self.key_dir(bucket, key))

    def iter_keys(self, bucket, prefix=""):
        """Client keys that have an index, pruned by prefix (unsorted)."""
        root = os.path.join(self._root(bucket), "keys")
        for stored in _walk_indexes(root, "", keys.to_store(prefix)):
            yield keys.from_store(stored)

    # -- files of non-current versions -------------------------------------

    def version_files(self, bucket, key, version_id):
        base = os.path.join(self.key_dir(bucket, key), version_id)
        return {role: base + suffix for role, suffix in _VERSION_FILES.items()}

    def version_info(self, bucket, key, version_id):
        return object_info_at(
            key, self.version_files(bucket, key, version_id)["object"])

    def archive(self, bucket, key, version_id):
        """Move s3rver's current object into the sidecar as version_id."""
        live = self.store.object_files(bucket, key)
        kept = self.version_files(bucket, key, version_id)
        with self._tree:
            os.makedirs(self.key_dir(bucket, key), exist_ok=True)
            for role, target in kept.items():
                _move(live[role], target, required=role == "object")
        _unlink(live["tagging"])

    def restore(self, bucket, key, version_id):
        """Make an archived version s3rver's current object again."""
        live = self.store.object_files(bucket, key)
        kept = self.version_files(bucket, key, version_id)
        # s3rver removes a directory it finds empty after a DELETE of a
        # sibling key, possibly between our makedirs and rename: retry.
        for attempt in range(20):
            try:
                os.makedirs(os.path.dirname(live["object"]), exist_ok=True)
                for role in ("metadata", "md5", "object"):
                    _move(kept[role], live[role], required=role == "object")
                break
            except FileNotFoundError:
                if attempt == 19:
                    raise
        self._prune(bucket, self.key_dir(bucket, key))

    def discard(self, bucket, key, version_id):
        for path in self.version_files(bucket, key, version_id).values():
            _unlink(path)
        self._prune(bucket, self.key_dir(bucket, key))

    # -- helpers -----------------------------------------------------------

    def _write_json(self, path, doc):
        """Atomic replace, so readers never see half a document."""
        data = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
        temporary = f"{path}.{secrets.token_hex(6)}.tmp"
        with self._tree:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(temporary, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)

    def _prune(self, bucket, directory):
        """Remove directory and its parents while empty, up to keys/."""
        stop = os.path.join(self._root(bucket), "keys")
        with self._tree:
            while directory.startswith(stop + os.sep):
                try:
                    os.rmdir(directory)
                except OSError:  # not empty, or already gone
                    return
                directory = os.path.dirname(directory)


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _move(source, target, required):
    """rename(2), which keeps the mtime S3 reports as LastModified."""
    try:
        os.replace(source, target)
    except FileNotFoundError:
        if required or os.path.exists(source):
            raise  # the target's directory is missing
        # An optional file s3rver did not write (or a retry moved already).


def _walk_indexes(root, relative, stored_prefix):
    try:
        entries = list(os.scandir(os.path.join(root, relative)))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        name = relative + entry.name
        if name.endswith(KEY_DIR_SUFFIX):
            stored = name[: -len(KEY_DIR_SUFFIX)]
            if stored.startswith(stored_prefix) and \
                    os.path.exists(os.path.join(entry.path, INDEX)):
                yield stored
        elif name.endswith("~"):  # a directory of keys.to_store()
            below = name + "/"
            if below.startswith(stored_prefix) or \
                    stored_prefix.startswith(below):
                yield from _walk_indexes(root, below, stored_prefix)
