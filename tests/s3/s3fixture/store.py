"""Knowledge of s3rver 3.7.1's on-disk layout.

Objects and parts are written by s3rver itself; the proxy reads this layout
for what s3rver gets wrong or lacks (sorted listings, multipart upload
bookkeeping), deletes the directory of an aborted upload, and moves the
files of object versions in and out of the sidecar (sidecar.py).

    DATA/BUCKET/<escaped key>._S3rver_object        object bytes
    DATA/BUCKET/<escaped key>._S3rver_object.md5    hex MD5 (the ETag)
    DATA/BUCKET/<escaped key>._S3rver_metadata.json Content-Type, standard
                                                    headers, x-amz-meta-*
    DATA/BUCKET/._S3rver_uploads/UPLOADID/key       escaped key of upload
    DATA/BUCKET/._S3rver_uploads/UPLOADID/N         bytes of part N
    DATA/BUCKET/._S3rver_uploads/UPLOADID/N.md5     hex MD5 of part N
"""

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass

from . import keys

OBJECT_SUFFIX = "._S3rver_object"
UPLOADS_DIR = "._S3rver_uploads"
# The files of one object, by role; "tagging" is s3rver's own tag store,
# unused since the proxy answers tagging requests itself.
OBJECT_FILES = {"object": "._S3rver_object",
                "md5": "._S3rver_object.md5",
                "metadata": "._S3rver_metadata.json",
                "tagging": "._S3rver_tagging.xml"}
# The proxy's own state in each bucket (sidecar.py).
SIDECAR_DIR = "._fixture"
# Directories at the top of a bucket that hold no objects.
SKIPPED_DIRS = {UPLOADS_DIR, SIDECAR_DIR}
_UPLOAD_ID = re.compile(r"[A-Za-z0-9]{1,128}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass
class ObjectInfo:
    key: str
    size: int
    mtime: float
    etag: str  # quoted, as S3 returns it
    storage_class: str = "STANDARD"


@dataclass
class UploadInfo:
    upload_id: str
    key: str
    initiated: float
    storage_class: str = "STANDARD"


@dataclass
class PartInfo:
    number: int
    size: int
    mtime: float
    etag: str  # quoted


def valid_bucket_name(name):
    return bool(_BUCKET.fullmatch(name)) and ".." not in name


class Store:
    def __init__(self, data_dir):
        self.data_dir = os.path.abspath(data_dir)

    # -- buckets and objects ----------------------------------------------

    def bucket_dir(self, bucket):
        return os.path.join(self.data_dir, bucket)

    def bucket_exists(self, bucket):
        return os.path.isdir(self.bucket_dir(bucket))

    def object_info(self, bucket, key):
        """ObjectInfo of a stored object, or None if there is none."""
        return object_info_at(key, self.object_files(bucket, key)["object"])

    def object_files(self, bucket, key):
        """{role: path} of the files s3rver keeps for an object."""
        stem = os.path.join(self.bucket_dir(bucket), keys.to_store(key))
        return {role: stem + suffix for role, suffix in OBJECT_FILES.items()}

    def remove_object(self, bucket, key):
        """Delete an object's files (its now-empty directories stay: s3rver
        may be creating a sibling in them, and they list as nothing)."""
        for path in self.object_files(bucket, key).values():
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def iter_keys(self, bucket, prefix=""):
        """Yield the client key of every object that starts with prefix."""
        root = self.bucket_dir(bucket)
        stored_prefix = keys.to_store(prefix)
        for stored_key in _walk_objects(root, "", stored_prefix):
            yield keys.from_store(stored_key)

    # -- multipart uploads --------------------------------------------------

    def upload_dir(self, bucket, upload_id):
        if not _UPLOAD_ID.fullmatch(upload_id or ""):
            return None
        return os.path.join(self.bucket_dir(bucket), UPLOADS_DIR, upload_id)

    def upload_info(self, bucket, upload_id):
        """UploadInfo of an upload in progress, or None."""
        directory = self.upload_dir(bucket, upload_id)
        if directory is None:
            return None
        key_file = os.path.join(directory, "key")
        try:
            with open(key_file, "rb") as handle:
                stored_key = handle.read().decode("utf-8")
            initiated = os.stat(key_file).st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return None
        return UploadInfo(upload_id, keys.from_store(stored_key), initiated)

    def list_uploads(self, bucket):
        root = os.path.join(self.bucket_dir(bucket), UPLOADS_DIR)
        try:
            names = os.listdir(root)
        except FileNotFoundError:
            return []
        uploads = (self.upload_info(bucket, name) for name in names)
        return [u for u in uploads if u is not None]

    def list_parts(self, bucket, upload_id):
        """{part number: PartInfo} for an upload."""
        directory = self.upload_dir(bucket, upload_id)
        parts = {}
        for name in _listdir(directory):
            if not name.isdigit():
                continue
            info = _part_info(int(name), os.path.join(directory, name))
            if info is not None:
                parts[info.number] = info
        return parts

    def remove_upload(self, bucket, upload_id):
        directory = self.upload_dir(bucket, upload_id)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def _listdir(directory):
    try:
        return os.listdir(directory) if directory else []
    except FileNotFoundError:
        return []


def _walk_objects(root, relative, stored_prefix):
    """Yield stored keys below root/relative, pruned by prefix."""
    try:
        entries = list(os.scandir(os.path.join(root, relative)))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        name = relative + entry.name
        if entry.is_dir(follow_symlinks=False):
            if name in SKIPPED_DIRS:
                continue
            # Every key below this directory starts with name + "/".
            below = name + "/"
            if below.startswith(stored_prefix) or \
                    stored_prefix.startswith(below):
                yield from _walk_objects(root, below, stored_prefix)
        elif name.endswith(OBJECT_SUFFIX):
            stored_key = name[: -len(OBJECT_SUFFIX)]
            if stored_key.startswith(stored_prefix):
                yield stored_key


def object_info_at(key, path):
    """ObjectInfo of the bytes at path (ETag from path + ".md5"), or None."""
    try:
        stat = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return ObjectInfo(key, stat.st_size, stat.st_mtime,
                      _quoted_md5(path, path + ".md5"))


def read_metadata(path):
    """s3rver's metadata JSON (header name -> value), {} if absent."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


def _part_info(number, path):
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return PartInfo(number, stat.st_size, stat.st_mtime,
                    _quoted_md5(path, path + ".md5"))


def _quoted_md5(data_path, md5_path):
    """s3rver's stored MD5, or the MD5 of the data when it wrote none."""
    try:
        with open(md5_path, encoding="ascii") as handle:
            digest = handle.read().strip()
    except FileNotFoundError:
        digest = ""
    if not digest:
        try:
            with open(data_path, "rb") as handle:
                digest = hashlib.md5(handle.read()).hexdigest()
        except FileNotFoundError:
            digest = ""
    return '"' + digest + '"'
