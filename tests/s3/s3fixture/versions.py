"""S3 versioning on top of s3rver, which keeps one object per key.

The newest version of a key, unless it is a delete marker, is s3rver's
object, so reads and listings of current objects keep going through s3rver
as before; older versions are s3rver's files moved into the sidecar
(sidecar.py) and answered by the proxy.  A key with anything beyond a
plain current object has an index, newest version first:

    {"key": "a/b", "versions": [
        {"id": "Qx...", "marker": true, "mtime": 1733212345.12},
        {"id": "Zc...", "attrs": {"sse": "AES256", "tags": [["k", "v"]]}},
        {"id": "null"}]}

A key without an index has at most one version: s3rver's object, version
id "null", no attributes (attributes.py).  Unversioned buckets use the
same index for attributes only.  Callers hold the key's lock (locks.py)
from reading a key's versions until they are saved.
"""

import re
import secrets
import string
import time
from dataclasses import dataclass, field

from .attributes import Attributes
from .s3xml import S3Error, no_such_key
from .store import ObjectInfo, read_metadata

ENABLED, SUSPENDED = "Enabled", "Suspended"
NULL = "null"
_VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._]{31}")
_ALNUM = string.ascii_letters + string.digits


def new_version_id():
    """Opaque, URL-safe and unique (191 random bits), shaped like S3's
    32-character ids; never starting with "-", which CLIs would take for
    an option."""
    return secrets.choice(_ALNUM) + "".join(
        secrets.choice(_ALNUM + "._") for _ in range(31))


def check_version_id(state, version_id):
    """Unversioned buckets only know "null"; others also our own ids."""
    if version_id is None or version_id == NULL:
        return
    if state is None or not _VERSION_ID.fullmatch(version_id):
        raise S3Error("InvalidArgument", "Invalid version id specified",
                      ArgumentName="versionId", ArgumentValue=version_id)


@dataclass
class Version:
    version_id: str
    delete_marker: bool = False
    attrs: Attributes = field(default_factory=Attributes)
    mtime: float = 0.0        # delete markers: when they were made
    info: ObjectInfo = None   # object versions: size, ETag, mtime
    live: bool = False        # its bytes are s3rver's current object

    @property
    def last_modified(self):
        return self.info.mtime if self.info is not None else self.mtime

    def marker_headers(self):
        return [("x-amz-delete-marker", "true"),
                ("x-amz-version-id", self.version_id)]

    def to_json(self):
        entry = {"id": self.version_id}
        if self.delete_marker:
            entry.update(marker=True, mtime=self.mtime)
        elif not self.attrs.is_plain():
            entry["attrs"] = self.attrs.to_json()
        return entry


@dataclass
class History:
    """The versions of one key, newest first."""
    bucket: str
    key: str
    state: str  # None (never versioned), ENABLED or SUSPENDED
    versions: list

    @property
    def latest(self):
        return self.versions[0] if self.versions else None

    @property
    def current(self):
        """The latest version unless it is a delete marker (or None)."""
        latest = self.latest
        return latest if latest and not latest.delete_marker else None

    def find(self, version_id):
        return next((v for v in self.versions
                     if v.version_id == version_id), None)

    def version_header(self, version):
        """x-amz-version-id, sent only by buckets that have versioning."""
        return [("x-amz-version-id", version.version_id)] \
            if self.state else []


@dataclass
class Write:
    """A version being written; see Versions.begin_write."""
    history: History
    version_id: str
    archived: str = None  # version moved out of s3rver's way


class Versions:
    def __init__(self, store, sidecar):
        self.store = store
        self.sidecar = sidecar

    # -- bucket state ----------------------------------------------------

    def state(self, bucket):
        return (self.sidecar.bucket_config(bucket) or {}).get("versioning")

    def set_state(self, bucket, status):
        config = self.sidecar.bucket_config(bucket) or {}
        config["versioning"] = status
        self.sidecar.set_bucket_config(bucket, config)

    # -- reading ---------------------------------------------------------

    def history(self, bucket, key):
        state = self.state(bucket)
        doc = self.sidecar.index(bucket, key)
        live = self.store.object_info(bucket, key)
        if doc is None:
            versions = [Version(NULL, live=True, info=live)] if live else []
            return History(bucket, key, state, versions)
        versions = []
        for entry in doc.get("versions", []):
            version = Version(entry["id"], bool(entry.get("marker")),
                              Attributes.from_json(entry.get("attrs")),
                              entry.get("mtime", 0.0))
            if not version.delete_marker:
                version.live = not versions
                version.info = live if version.live else \
                    self.sidecar.version_info(bucket, key, entry["id"])
                if version.info is None:
                    continue  # its bytes are gone: not a version any more
            versions.append(version)
        return History(bucket, key, state, versions)

    def lookup(self, bucket, key, version_id, copy_source=False):
        """(history, version) a read names; S3's errors otherwise."""
        history = self.history(bucket, key)
        check_version_id(history.state, version_id)
        if version_id is None:
            version = history.latest
            if version is None:
                raise no_such_key(key)
            if version.delete_marker:
                error = no_such_key(key)
                raise error if copy_source else \
                    error.with_headers(version.marker_headers())
            return history, version
        version = history.find(version_id)
        if version is None:
            if history.state is None:
                raise no_such_key(key)
            raise S3Error("NoSuchVersion", "The specified version does not "
                          "exist.", Key=key, VersionId=version_id)
        if version.delete_marker:
            if copy_source:
                raise S3Error("InvalidRequest", "The source of a copy "
                              "request may not specifically refer to a "
                              "delete marker by version id.")
            raise S3Error(
                "MethodNotAllowed", "The specified method is not allowed "
                "against this resource.", Method="GET",
                ResourceType="DeleteMarker").with_headers(
                    version.marker_headers() + [
                        ("Last-Modified", _http_date(version.mtime))])
        return history, version

    def files(self, history, version):
        """(path of the bytes, s3rver metadata dict) of an object version."""
        if version.live:
            files = self.store.object_files(history.bucket, history.key)
        else:
            files = self.sidecar.version_files(
                history.bucket, history.key, version.version_id)
        return files["object"], read_metadata(files["metadata"])

    def current_attrs(self, bucket, key):
        """Attributes of s3rver's object at key (for listings)."""
        doc = self.sidecar.index(bucket, key) or {}
        entries = doc.get("versions") or [{}]
        return Attributes.from_json(entries[0].get("attrs"))

    def iter_keys(self, bucket, prefix=""):
        """Every key with a version (current or not), unsorted."""
        return set(self.store.iter_keys(bucket, prefix)) | \
            set(self.sidecar.iter_keys(bucket, prefix))

    def has_versions(self, bucket):
        """True if any key keeps a version or delete marker."""
        return any(self.history(bucket, key).versions
                   for key in self.sidecar.iter_keys(bucket))

    def save(self, history):
        versions = history.versions
        implicit = len(versions) == 1 and versions[0].live and \
            versions[0].version_id == NULL and versions[0].attrs.is_plain()
        if not versions or implicit:
            self.sidecar.remove_index(history.bucket, history.key)
        else:
            self.sidecar.set_index(history.bucket, history.key, {
                "key": history.key,
                "versions": [v.to_json() for v in versions]})

    # -- writing ---------------------------------------------------------

    def begin_write(self, bucket, key):
        """Prepare for s3rver to write key: on a versioned bucket, move
        the current object into the sidecar unless the write replaces it
        (the "null" version of a Suspended bucket).  Then either commit()
        or abort()."""
        history = self.history(bucket, key)
        version_id = new_version_id() if history.state == ENABLED else NULL
        write = Write(history, version_id)
        current = history.current
        if history.state and current and current.version_id != version_id:
            self.sidecar.archive(bucket, key, current.version_id)
            write.archived = current.version_id
        return write

    def abort(self, write):
        if write.archived:
            history = write.history
            self.sidecar.restore(history.bucket, history.key, write.archived)

    def commit(self, write, attrs):
        """Record s3rver's new object as the latest version."""
        history = write.history
        if history.state is None:
            history.versions = []
        self._forget(history, write.version_id)
        for version in history.versions:
            version.live = False
        version = Version(write.version_id, attrs=attrs, live=True,
                          info=self.store.object_info(history.bucket,
                                                      history.key))
        history.versions.insert(0, version)
        self.save(history)
        return version

    def _forget(self, history, version_id):
        """Drop an existing version with this id (a Suspended bucket's
        writes replace the "null" version, as S3 documents)."""
        old = history.find(version_id)
        if old is None:
            return
        if not old.delete_marker and not old.live:
            self.sidecar.discard(history.bucket, history.key, version_id)
        history.versions.remove(old)

    def delete(self, bucket, key, version_id=None):
        """DeleteObject on a bucket with versioning (Enabled/Suspended).

        Without a version id: a new delete marker becomes the latest
        version.  With one: that version goes for good; if it was the
        latest, the next older one (unless a marker) becomes s3rver's
        object again.  Returns the version created or
        removed (or, for an unknown id, a Version with that id: S3 answers
        204 either way).
        """
        history = self.history(bucket, key)
        check_version_id(history.state, version_id)
        if version_id is None:
            return self._add_marker(history)
        version = history.find(version_id)
        if version is None:
            return Version(version_id)
        was_latest = version is history.latest
        history.versions.remove(version)
        if version.live:
            self.store.remove_object(bucket, key)
        elif not version.delete_marker:
            self.sidecar.discard(bucket, key, version_id)
        promoted = history.latest
        if was_latest and promoted and not promoted.delete_marker:
            self.sidecar.restore(bucket, key, promoted.version_id)
            promoted.live = True
        self.save(history)
        return version

    def _add_marker(self, history):
        bucket, key = history.bucket, history.key
        marker_id = new_version_id() if history.state == ENABLED else NULL
        current = history.current
        if current is not None and current.version_id == marker_id:
            # Suspended: the null version is replaced by the null marker.
            self.store.remove_object(bucket, key)
            history.versions.remove(current)
        elif current is not None:
            self.sidecar.archive(bucket, key, current.version_id)
            current.live = False
        self._forget(history, marker_id)
        marker = Version(marker_id, delete_marker=True, mtime=time.time())
        history.versions.insert(0, marker)
        self.save(history)
        return marker


def _http_date(epoch):
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(epoch))
