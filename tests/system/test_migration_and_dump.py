#!/usr/bin/python3
"""System test: getting data into and out of stored_object, and upgrading it.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_migration_and_dump.py

with PGHOST/PGPORT/PGUSER naming a running cluster (stored_object installed,
PGUSER a superuser), SO_TEST_TMPDIR a directory the postgres user owns, and
the S3 fixture's variables exported (S3_ENDPOINT, S3_ACCESS_KEY_ID,
S3_SECRET_ACCESS_KEY; bucket test-bucket).

Three stories a user lives through:

* Migration from advanced-alchemy: a table whose JSONB columns hold
  FileObject dicts exactly as advanced-alchemy's FileObject.to_dict() writes
  them (a single-file column and a multiple=True column holding a JSON list)
  converts in place with ALTER TABLE ... TYPE stored_object USING
  so_from_json(...) / TYPE stored_object[] USING so_array_from_json(...);
  every field survives and so_get reads every file back.
* pg_dump -Fc / pg_restore into a new database keeps the backend registry
  (secrets included), every stored_object value and the queued deletes; the
  restored database reads the files of its local and S3 backends. The
  registry's rows can be restored (and dumped) only by roles that may read
  them.
* ALTER EXTENSION stored_object UPDATE from 0.1.0, 0.2.0 or 0.3.0 to 0.4.0 keeps the data
  and files working, and leaves the same set of objects as a fresh
  CREATE EXTENSION.

Each test creates its own databases (and roles, directories under
SO_TEST_TMPDIR, keys under its own prefix in the bucket) and removes them
again, whatever happens. The last line of output is "N passed, N failed";
the exit status is non-zero on any failure.
"""

import os

# Pure-Python botocore: no CRT signer swapped in behind our back.
os.environ["BOTO_DISABLE_CRT"] = "true"

import json  # noqa: E402
import pwd  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import unittest  # noqa: E402
import urllib.parse  # noqa: E402

import boto3  # noqa: E402
import psycopg2  # noqa: E402
from botocore.config import Config  # noqa: E402

import runner  # noqa: E402

PG_BIN = "/usr/lib/postgresql/15/bin"
BUCKET = "test-bucket"
RUN = "%d_%s" % (os.getpid(), secrets.token_hex(3))
NEWEST = "0.4.0"  # stored_object.control's default_version

# The keys advanced-alchemy's FileObject.to_dict() writes (dataclasses.asdict
# without "backend"), in its field order.
AA_KEYS = ["filename", "content_type", "size", "path", "protocol", "last_modified",
           "checksum", "etag", "version_id", "metadata", "extra"]
# The canonical text form of stored_object.
SO_KEYS = ["backend", "filename", "content_type", "size", "last_modified", "checksum",
           "etag", "version_id", "metadata"]

# Members of the extension, as in the brief of the upgrade test.
MEMBERS_QUERY = """
SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
 WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'stored_object') AND deptype = 'e'
 ORDER BY 1"""

# More of each member than its name: function labels, ACLs, definitions, comments,
# table columns and triggers, the configuration tables pg_dump dumps.
MEMBER_DETAILS_QUERY = """
WITH m AS (
    SELECT classid, objid FROM pg_depend
     WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'stored_object') AND deptype = 'e')
SELECT 'function ' || p.oid::regprocedure::text || ' ' ||
       concat_ws(' ', p.provolatile, p.proparallel, p.proisstrict, p.prosecdef, p.proconfig::text,
                 p.proacl::text, pg_get_function_result(p.oid), md5(pg_get_functiondef(p.oid)),
                 md5(obj_description(p.oid, 'pg_proc')))
  FROM m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
UNION ALL
SELECT 'relation ' || c.oid::regclass::text || ' ' || concat_ws(' ', c.relkind, c.relacl::text,
       CASE WHEN c.relkind = 'v' THEN md5(pg_get_viewdef(c.oid)) END)
  FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
UNION ALL
SELECT 'column ' || a.attrelid::regclass::text || '.' || a.attname || ' ' ||
       concat_ws(' ', format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
  FROM m JOIN pg_attribute a ON m.classid = 'pg_class'::regclass AND a.attrelid = m.objid
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid)
  FROM m JOIN pg_trigger t ON m.classid = 'pg_class'::regclass AND t.tgrelid = m.objid
 WHERE NOT t.tgisinternal
UNION ALL
SELECT 'config ' || array_to_string(ARRAY(SELECT x::regclass::text FROM unnest(e.extconfig) AS x ORDER BY 1), ',')
  FROM pg_extension e WHERE e.extname = 'stored_object'
ORDER BY 1"""


def env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError("%s is not set: run under scripts/test.sh" % name)
    return value


class Fixture:
    """What the tests create, so that it is all removed at the end."""

    def __init__(self):
        self.admin = None
        self.databases = []      # created, to drop
        self.roles = []          # created, to drop
        self.dirs = []           # created, to remove
        self.s3_prefixes = []    # key prefixes in the bucket, to empty
        self.connections = []
        self.s3 = None

    def start(self):
        self.admin = psycopg2.connect(dbname="postgres")
        self.admin.autocommit = True
        with self.admin.cursor() as cur:
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            if not cur.fetchone()[0]:
                raise RuntimeError("PGUSER must be a superuser")
        self.tmp = os.environ.get("SO_TEST_TMPDIR") or tempfile.gettempdir()
        self.endpoint = env("S3_ENDPOINT").rstrip("/")
        host = urllib.parse.urlsplit(self.endpoint).hostname
        assert host in ("127.0.0.1", "localhost"), "loopback only: " + self.endpoint
        self.region = os.environ.get("S3_REGION") or "us-east-1"
        self.access_key = env("S3_ACCESS_KEY_ID")
        self.secret_key = env("S3_SECRET_ACCESS_KEY")
        self.s3 = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"total_max_attempts": 2, "mode": "standard"},
                          connect_timeout=5, read_timeout=60))

    def stop(self):
        for step in (self.close_connections, self.drop_databases, self.drop_roles,
                     self.remove_dirs, self.remove_objects):
            try:
                step()
            except Exception:
                traceback.print_exc(file=sys.stdout)
        if self.admin is not None:
            self.admin.close()
            self.admin = None

    def leftovers(self):
        """What the cleanup could not remove."""
        left = []
        if self.databases or self.roles:
            conn = psycopg2.connect(dbname="postgres")
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (self.databases,))
                    left += ["database " + r[0] for r in cur.fetchall()]
                    cur.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (self.roles,))
                    left += ["role " + r[0] for r in cur.fetchall()]
            finally:
                conn.close()
        left += ["directory " + d for d in self.dirs if os.path.exists(d)]
        if self.s3 is not None:
            for prefix in self.s3_prefixes:
                if self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("KeyCount", 0):
                    left.append("S3 objects under " + prefix)
        return left

    def close_connections(self, dbnames=None):
        keep = []
        for dbname, c in self.connections:
            if dbnames is None or dbname in dbnames:
                try:
                    c.close()
                except Exception:
                    pass
            else:
                keep.append((dbname, c))
        self.connections = keep

    def drop_databases(self, first=0):
        """Drops the databases created since mark() returned first (all by default)."""
        names = self.databases[first:]
        self.close_connections(names)
        with self.admin.cursor() as cur:
            for name in names:
                cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
        del self.databases[first:]

    def drop_roles(self, first=0):
        with self.admin.cursor() as cur:
            for name in self.roles[first:]:
                cur.execute("DROP ROLE IF EXISTS %s" % name)
        del self.roles[first:]

    def mark(self):
        return len(self.databases), len(self.roles)

    def drop_since(self, mark):
        """What a test created: its databases, then its roles (which own some)."""
        self.drop_databases(mark[0])
        self.drop_roles(mark[1])

    def remove_dirs(self):
        for d in self.dirs:
            if os.path.exists(d):
                for root, dirnames, _ in os.walk(d):  # directories we made read-only
                    for name in dirnames:
                        os.chmod(os.path.join(root, name), 0o700)
                shutil.rmtree(d)

    def remove_objects(self):
        if self.s3 is None:
            return
        paginator = self.s3.get_paginator("list_objects_v2")
        for prefix in self.s3_prefixes:
            for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix):
                for o in page.get("Contents", []):
                    self.s3.delete_object(Bucket=BUCKET, Key=o["Key"])

    # ---- things a test makes --------------------------------------------------

    def database(self, tag, owner=None, extension=True, version=None):
        """A new database (dropped at the end); with the extension created by
        the superuser unless extension is False. Returns its name."""
        name = "so_mig_%s_%s" % (tag, RUN)
        self.databases.append(name)
        with self.admin.cursor() as cur:
            cur.execute("CREATE DATABASE %s%s" % (name, " OWNER " + owner if owner else ""))
        if extension:
            c = self.connect(name)
            sql(c, "CREATE EXTENSION stored_object" + (" VERSION '%s'" % version if version else ""))
        return name

    def role(self, tag, *attributes):
        name = "so_mig_%s_%s" % (tag, RUN)
        self.roles.append(name)
        with self.admin.cursor() as cur:
            cur.execute("CREATE ROLE %s %s" % (name, " ".join(attributes)))
        return name

    def connect(self, dbname, user=None, autocommit=True):
        c = psycopg2.connect(dbname=dbname, user=user) if user else psycopg2.connect(dbname=dbname)
        c.autocommit = autocommit
        self.connections.append((dbname, c))
        return c

    def directory(self, tag):
        """A directory under SO_TEST_TMPDIR owned by postgres (the server
        writes there); the backend's root is its "root" subdirectory, which
        the server creates on first write."""
        d = tempfile.mkdtemp(prefix="so-mig-%s-" % tag, dir=self.tmp)
        self.dirs.append(d)
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(d, pg.pw_uid, pg.pw_gid)
        return d

    def s3_prefix(self, tag):
        prefix = "so_systest/migration-%s-%s" % (tag, RUN)
        self.s3_prefixes.append(prefix + "/")
        return prefix

    def s3_options(self, **extra):
        opts = {"endpoint": self.endpoint, "region": self.region, "allow_http": True,
                "access_key_id": self.access_key, "secret_access_key": self.secret_key}
        opts.update(extra)
        return json.dumps(opts)


FX = None  # the Fixture, set by main()


def sql(conn, query, args=None):
    with conn.cursor() as cur:
        cur.execute(query, args)
        return cur.fetchall() if cur.description else None


def value(conn, query, args=None):
    return sql(conn, query, args)[0][0]


def run(args, user=None):
    """A PostgreSQL client program; returns the CompletedProcess."""
    e = dict(os.environ)
    if user:
        e["PGUSER"] = user
    return subprocess.run(args, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300,
                          cwd="/")


def make_postgres_dir(path, mode=0o700):
    os.mkdir(path, mode)
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        os.chown(path, pg.pw_uid, pg.pw_gid)


def aa_dict(so_text, protocol="file", backend=None):
    """The dict advanced-alchemy's FileObject.to_dict() writes for the file
    so_put stored (its key set and order; "backend" only when asked for:
    some applications add it to name the backend in each value)."""
    v = json.loads(so_text)
    d = {"filename": v["filename"], "content_type": v["content_type"], "size": v["size"],
         "path": v["filename"], "protocol": protocol, "last_modified": v["last_modified"],
         "checksum": v["checksum"], "etag": v["etag"], "version_id": v["version_id"],
         "metadata": v["metadata"], "extra": {}}
    assert list(d) == AA_KEYS
    if backend is not None:
        d["backend"] = backend
    return d


def queue_deletes(conn, locked_dir, table, where):
    """Makes queued deletes the honest way: so_delete of files in a
    directory the server may not write to, so the background worker's
    attempt after COMMIT fails and the rows stay in the queue with their
    error. Once each row has been tried, its next attempt is put off for
    ever, so that nothing changes them while a test compares them.
    Returns (deletes, rows that failed with an error)."""
    os.chmod(locked_dir, 0o500)
    sql(conn, "BEGIN")
    objects = [r[0] for r in sql(conn, "SELECT f::text FROM %s WHERE %s" % (table, where))]
    sql(conn, "SELECT so_delete(f) FROM %s WHERE %s" % (table, where))
    sql(conn, "DELETE FROM %s WHERE %s" % (table, where))
    sql(conn, "COMMIT")
    deadline = time.monotonic() + 60
    while True:
        tried = value(conn, "SELECT count(*) FROM so_delete_queue WHERE object = ANY(%s::stored_object[]) AND attempts > 0",
                      (objects,))
        if tried == len(objects) or time.monotonic() > deadline:
            break
        value(conn, "SELECT so_wait_for_worker('1 second')")
    sql(conn, "UPDATE so_delete_queue SET next_attempt_at = 'infinity' WHERE object = ANY(%s::stored_object[])", (objects,))
    failed = value(conn, "SELECT count(*) FROM so_delete_queue WHERE object = ANY(%s::stored_object[]) "
                         "AND last_error IS NOT NULL", (objects,))
    return len(objects), failed


class Base(unittest.TestCase):
    """Each test's databases and roles are dropped when it ends (those of
    setUpClass when the class ends); directories and S3 keys at the end."""
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls._class_mark = FX.mark()

    @classmethod
    def tearDownClass(cls):
        FX.drop_since(cls._class_mark)

    def setUp(self):
        self._mark = FX.mark()
        self.addCleanup(FX.drop_since, self._mark)

    def assertFileObjectsEqual(self, aa, so_text, backend):
        """Field by field: the advanced-alchemy dict before, the
        stored_object text after."""
        so = json.loads(so_text)
        self.assertEqual(list(so), SO_KEYS, so_text)
        self.assertEqual(so["backend"], aa.get("backend", backend))
        for k in ("filename", "content_type", "size", "last_modified", "checksum", "etag",
                  "version_id", "metadata"):
            self.assertEqual(so[k], aa[k], "%s of %s" % (k, aa["filename"]))
            self.assertEqual(type(so[k]), type(aa[k]), "%s of %s" % (k, aa["filename"]))
        self.assertEqual(aa["path"], so["filename"])


# ---------------------------------------------------------------------------
# advanced-alchemy JSONB -> stored_object, in place
# ---------------------------------------------------------------------------

class AdvancedAlchemyMigrationTest(Base):

    def test_jsonb_columns_convert_in_place(self):
        db = FX.database("aa")
        conn = FX.connect(db)
        root = os.path.join(FX.directory("aa"), "root")
        sql(conn, "SELECT so_register_backend('aa_media', %s)", ("file://" + root,))

        # The files, stored by so_put: binary, empty, non-ASCII and nested keys,
        # a larger one; nested user metadata.
        contents = {
            "docs/report 2024.pdf": b"%PDF-1.4\n" + bytes(range(256)) * 20 + os.urandom(777),
            "images/naïve ✓ photo.jpg": b"\xff\xd8\xff\xe0" + os.urandom(4000),
            "images/b.png": b"\x89PNG\r\n\x1a\n" + os.urandom(1234),
            "images/c.gif": b"GIF89a" + os.urandom(10),
            "empty.txt": b"",
            "big/blob.bin": os.urandom(700 * 1024),
        }
        metadata = {
            "docs/report 2024.pdf": {"owner": "ann", "tags": ["q1", "finance"],
                                     "nested": {"level": {"deep": True, "ratio": 1.5, "none": None}}},
            "images/naïve ✓ photo.jpg": {"caption": "naïve ✓ ü", "exif": {"w": 640, "h": 480}},
        }
        stored = {}
        for key, content in contents.items():
            stored[key] = value(conn, "SELECT so_put('aa_media', %s, %s, metadata => %s)::text",
                                (key, psycopg2.Binary(content), json.dumps(metadata.get(key, {}))))
        # A file of another backend, which the values that hold it name.
        archive_root = os.path.join(FX.directory("aa-archive"), "root")
        sql(conn, "SELECT so_register_backend('aa_archive', %s)", ("file://" + archive_root,))
        contents["archive/old.txt"] = b"from the archive\n"
        stored["archive/old.txt"] = value(conn, "SELECT so_put('aa_archive', 'archive/old.txt', %s)::text",
                                          (psycopg2.Binary(contents["archive/old.txt"]),))
        aa = {k: aa_dict(v) for k, v in stored.items()}
        # Variants an application can have written: naming the backend in
        # the value (the default one, or another), and protocol null (a
        # FileObject created without a backend).
        pdf_named = aa_dict(stored["docs/report 2024.pdf"], backend="aa_media")
        photo_named = aa_dict(stored["images/naïve ✓ photo.jpg"], backend="aa_media")
        archive_named = aa_dict(stored["archive/old.txt"], backend="aa_archive")
        gif_no_protocol = aa_dict(stored["images/c.gif"], protocol=None)

        sql(conn, "CREATE TABLE aa_document (id int PRIMARY KEY, title text, file jsonb, images jsonb)")
        rows = {
            1: (aa["docs/report 2024.pdf"], [aa["images/naïve ✓ photo.jpg"], aa["images/b.png"]]),
            2: (photo_named, []),                                 # an empty list
            3: (None, None),                                      # SQL NULL in both
            4: (aa["empty.txt"], [gif_no_protocol, pdf_named]),   # a file in two rows, named and not
            5: (aa["big/blob.bin"], [aa["images/c.gif"], archive_named]),
            6: (archive_named, None),                             # another backend than the default
        }
        for id_, (file, images) in rows.items():
            sql(conn, "INSERT INTO aa_document VALUES (%s, %s, %s::jsonb, %s::jsonb)",
                (id_, "doc %d" % id_, None if file is None else json.dumps(file),
                 None if images is None else json.dumps(images)))
        before = {r[0]: (r[1], r[2]) for r in sql(conn, "SELECT id, file, images FROM aa_document")}
        # What the table holds is what advanced-alchemy wrote.
        for id_, (file, images) in rows.items():
            self.assertEqual(before[id_], (file, images))
            if file is not None:
                self.assertEqual(sorted(file), sorted(AA_KEYS + (["backend"] if "backend" in file else [])))

        sql(conn, "ALTER TABLE aa_document ALTER COLUMN file TYPE stored_object "
                  "USING so_from_json(file, 'aa_media')")
        sql(conn, "ALTER TABLE aa_document ALTER COLUMN images TYPE stored_object[] "
                  "USING so_array_from_json(images, 'aa_media')")

        types = dict(sql(conn, "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                               "WHERE attrelid = 'aa_document'::regclass AND attname IN ('file', 'images')"))
        self.assertEqual(types, {"file": "stored_object", "images": "stored_object[]"})

        after = sql(conn, """
            SELECT id, file::text, images IS NULL,
                   ARRAY(SELECT o::text FROM unnest(images) WITH ORDINALITY AS u(o, n) ORDER BY n)
              FROM aa_document ORDER BY id""")
        self.assertEqual([r[0] for r in after], sorted(rows))
        for id_, file_text, images_null, image_texts in after:
            with self.subTest(id=id_):
                file, images = before[id_]
                if file is None:
                    self.assertIsNone(file_text)
                else:
                    self.assertFileObjectsEqual(file, file_text, "aa_media")
                if images is None:
                    self.assertTrue(images_null)
                else:
                    self.assertFalse(images_null)  # [] became an empty array, not NULL
                    self.assertEqual(len(image_texts), len(images))
                    for aa_image, so_image in zip(images, image_texts):
                        self.assertFileObjectsEqual(aa_image, so_image, "aa_media")

        # The accessors agree with the JSON (the timestamp to the microsecond).
        for id_, fname, size, ctype, etag, checksum, meta, epoch in sql(conn, """
                SELECT id, so_filename(file), so_size(file), so_content_type(file), so_etag(file),
                       so_checksum(file), so_metadata(file), extract(epoch FROM so_last_modified(file))
                  FROM aa_document WHERE file IS NOT NULL"""):
            file = before[id_][0]
            self.assertEqual((fname, size, ctype, etag, checksum, meta),
                             (file["filename"], file["size"], file["content_type"], file["etag"],
                              file["checksum"], file["metadata"]))
            self.assertAlmostEqual(float(epoch), file["last_modified"], delta=1e-6)

        # Every file reads back identical, from both columns, from its backend.
        got = sql(conn, """
            SELECT so_backend(file), so_filename(file), so_get(file) FROM aa_document WHERE file IS NOT NULL
            UNION ALL
            SELECT so_backend(o), so_filename(o), so_get(o) FROM aa_document, unnest(images) AS o""")
        self.assertEqual(len(got), 5 + 6)
        for backend, fname, content in got:
            self.assertEqual(backend, "aa_archive" if fname.startswith("archive/") else "aa_media")
            self.assertEqual(bytes(content), contents[fname], fname)
        self.assertEqual({g[1] for g in got}, set(contents))

        # Identity (backend, filename, version_id) works on the converted
        # values: the PDF in row 1 (no backend in its JSON) equals the one
        # named in row 4's list.
        self.assertTrue(value(conn, """
            SELECT a.file = ANY(b.images) FROM aa_document a, aa_document b WHERE a.id = 1 AND b.id = 4"""))

    def test_json_null_in_single_file_column(self):
        """A single-file column advanced-alchemy set to None holds JSON null
        (SQLAlchemy's JSONB binds None as 'null' unless none_as_null); it
        should convert to SQL NULL like so_array_from_json's nulls do."""
        db = FX.database("aanull")
        conn = FX.connect(db)
        sql(conn, "CREATE TABLE aa_null (id int, file jsonb)")
        sql(conn, "INSERT INTO aa_null VALUES (1, 'null'), (2, NULL)")
        try:
            sql(conn, "ALTER TABLE aa_null ALTER COLUMN file TYPE stored_object "
                      "USING so_from_json(file, 'aa_media')")
        except psycopg2.Error as e:
            self.fail("so_from_json('null'::jsonb, 'aa_media') failed: %s (%s); "
                      "workaround: USING so_from_json(NULLIF(file, 'null'), ...)" % (e.diag.message_primary, e.pgcode))
        self.assertEqual(sql(conn, "SELECT id, file IS NULL FROM aa_null ORDER BY id"), [(1, True), (2, True)])


# ---------------------------------------------------------------------------
# pg_dump / pg_restore
# ---------------------------------------------------------------------------

REGISTRY_QUERY = "SELECT key, url, options, owner::text, acl::text, created_at, updated_at FROM so_backends ORDER BY key"
QUEUE_QUERY = "SELECT id, object::text, scheduled_at, attempts, last_error FROM so_pending_deletes ORDER BY id"
VALUES_QUERY = "SELECT id, local_file::text, s3_file::text, gallery::text FROM items ORDER BY id"


class DumpRestoreTest(Base):

    @classmethod
    def setUpClass(cls):
        """A source database with a local and an S3 backend, values of both
        in a table, and queued deletes; dumped with pg_dump -Fc."""
        super().setUpClass()
        cls.db = FX.database("dumpsrc")
        cls.conn = conn = FX.connect(cls.db)
        base = FX.directory("dump")
        cls.root = os.path.join(base, "root")
        make_postgres_dir(cls.root)
        cls.locked = os.path.join(cls.root, "locked")
        make_postgres_dir(cls.locked)
        cls.signing_secret = "dump-" + secrets.token_hex(24)
        sql(conn, "SELECT so_register_backend('dump_local', %s, %s)",
            ("file://" + cls.root, json.dumps({"base_url": "https://files.example.com/m",
                                                "signing_secret": cls.signing_secret})))
        cls.s3_prefix = FX.s3_prefix("dump")
        sql(conn, "SELECT so_register_backend('dump_s3', %s, %s)",
            ("s3://%s/%s" % (BUCKET, cls.s3_prefix), FX.s3_options(max_retries=1)))

        cls.contents = {}

        def put(backend, key, content, meta=None):
            cls.contents[(backend, key)] = content
            return value(conn, "SELECT so_put(%s, %s, %s, metadata => %s)::text",
                         (backend, key, psycopg2.Binary(content), json.dumps(meta or {})))

        sql(conn, "CREATE TABLE items (id int PRIMARY KEY, local_file stored_object, "
                  "s3_file stored_object, gallery stored_object[])")
        sql(conn, "INSERT INTO items VALUES (1, %s, %s, ARRAY[%s, %s]::stored_object[])", (
            put("dump_local", "a/one.bin", os.urandom(3000), {"k": {"n": [1, 2]}}),
            put("dump_s3", "s3/one ü.txt", "héllo S3\n".encode()),
            put("dump_local", "g/1.jpg", os.urandom(100)),
            put("dump_s3", "g/2.jpg", os.urandom(200))))
        sql(conn, "INSERT INTO items VALUES (2, %s, NULL, '{}'), (3, NULL, NULL, NULL)",
            (put("dump_local", "empty", b""),))
        sql(conn, "INSERT INTO items VALUES (4, %s, %s, NULL)", (
            put("dump_local", "big.bin", os.urandom(300 * 1024)),
            put("dump_s3", "big.bin", os.urandom(200 * 1024))))
        # A value that names a version and carries metadata but no file.
        sql(conn, """INSERT INTO items VALUES (5, '{"backend":"dump_s3","filename":"x/y","version_id":"v1",
                     "metadata":{"a":[1,{"b":null}]},"size":7,"last_modified":1700000000.25}', NULL, NULL)""")
        cls.readable = len(cls.contents)
        # Queued deletes: the files of table doomed, in the locked directory.
        sql(conn, "CREATE TABLE doomed (id int, f stored_object)")
        sql(conn, "INSERT INTO doomed VALUES (10, %s), (11, %s)", (
            put("dump_local", "locked/d1.bin", b"doomed one"), put("dump_local", "locked/d2.bin", b"doomed two")))
        queued, failed = queue_deletes(conn, cls.locked, "doomed", "true")
        if (queued, failed) != (2, 2):
            raise RuntimeError("expected 2 queued deletes the worker failed to carry out: %r" % ((queued, failed),))

        cls.registry = sql(conn, REGISTRY_QUERY)
        cls.queue = sql(conn, QUEUE_QUERY)
        cls.queue_seq = value(conn, "SELECT last_value FROM so_delete_queue_id_seq")
        cls.values = sql(conn, VALUES_QUERY)

        cls.dump_dir = tempfile.mkdtemp(prefix="so-mig-dumpfile-")
        FX.dirs.append(cls.dump_dir)
        os.chmod(cls.dump_dir, 0o755)
        cls.dump = os.path.join(cls.dump_dir, "src.dump")
        p = run([PG_BIN + "/pg_dump", "-Fc", "-d", cls.db, "-f", cls.dump])
        if p.returncode != 0:
            raise RuntimeError("pg_dump failed: " + p.stderr.decode())
        os.chmod(cls.dump, 0o644)

    def test_restore_keeps_registry_values_queue_and_files(self):
        self.assertEqual(len(self.registry), 2)
        self.assertEqual({r[2].get("signing_secret") for r in self.registry} - {None}, {self.signing_secret})
        self.assertEqual({r[2].get("secret_access_key") for r in self.registry} - {None}, {FX.secret_key})

        new = FX.database("dumpdst", extension=False)
        p = run([PG_BIN + "/pg_restore", "--exit-on-error", "-d", new, self.dump])
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(p.stderr.decode(), "")
        conn = FX.connect(new)

        # The registry with its secrets (read as superuser), every value, the queue.
        self.assertEqual(sql(conn, REGISTRY_QUERY), self.registry)
        self.assertEqual(sql(conn, VALUES_QUERY), self.values)
        self.assertEqual(sql(conn, QUEUE_QUERY), self.queue)
        self.assertEqual(value(conn, "SELECT last_value FROM so_delete_queue_id_seq"), self.queue_seq)
        self.assertEqual(value(conn, "SELECT extversion FROM pg_extension WHERE extname = 'stored_object'"),
                         value(self.conn, "SELECT extversion FROM pg_extension WHERE extname = 'stored_object'"))

        # The restored database reads every file, local and S3.
        got = sql(conn, """
            SELECT so_backend(o), so_filename(o), so_get(o)
              FROM items, LATERAL (SELECT local_file UNION ALL SELECT s3_file
                                   UNION ALL SELECT unnest(gallery)) AS x(o)
             WHERE o IS NOT NULL AND so_version_id(o) IS NULL""")
        self.assertEqual(len(got), self.readable)
        for backend, key, content in got:
            self.assertEqual(bytes(content), self.contents[(backend, key)], key)
        # The secrets work: a new object through the restored S3 credentials,
        # and a URL signed with the restored signing secret verifies.
        obj = value(conn, "SELECT so_put('dump_s3', 'after-restore.txt', 'new')::text")
        self.assertEqual(bytes(value(conn, "SELECT so_get(%s::stored_object)", (obj,))), b"new")
        url = value(conn, "SELECT so_sign(local_file) FROM items WHERE id = 1")
        self.assertTrue(value(self.conn, "SELECT so_verify_url(%s)", (url,)))
        self.assertTrue(value(conn, "SELECT so_verify_url(%s)", (url,)))

        # The queued deletes are still work to do: once the directory is
        # writable again, so_process_pending in the restored database does it.
        os.chmod(self.locked, 0o700)
        try:
            done = sql(conn, "SELECT deleted + already_gone, kept, failed FROM so_process_pending()")
            self.assertEqual(done, [(2, 0, 0)])
        finally:
            os.chmod(self.locked, 0o500)
        self.assertEqual(os.listdir(self.locked), [])
        self.assertEqual(value(conn, "SELECT count(*) FROM so_pending_deletes"), 0)

    def test_restore_as_role_that_may_not_read_secrets_fails(self):
        """A role with CREATEDB, not superuser, not a storage administrator
        of the database (it neither owns it nor was granted so_grant_admin):
        restoring the registry's rows into it is refused with permission
        denied, and leaves no rows."""
        role = FX.role("restorer", "LOGIN", "CREATEDB", "NOSUPERUSER")
        db = FX.database("asrole", extension=False)
        su = FX.connect(db)
        sql(su, "CREATE EXTENSION stored_object")
        sql(su, "GRANT CREATE ON SCHEMA public TO %s" % role)

        p = run([PG_BIN + "/pg_restore", "--data-only", "-t", "so_backends", "-d", db, self.dump], user=role)
        err = p.stderr.decode()
        self.assertNotEqual(p.returncode, 0, err)
        self.assertIn("permission denied for table so_backends", err)
        self.assertIn("COPY public.so_backends", err)
        self.assertNotIn(self.signing_secret, err)
        self.assertNotIn(FX.secret_key, err)
        self.assertEqual(value(su, "SELECT count(*) FROM so_backends"), 0)

        # The same COPY pg_restore sends, as that role: SQLSTATE 42501.
        as_role = FX.connect(db, user=role)
        with as_role.cursor() as cur:
            with self.assertRaises(psycopg2.Error) as cm:
                cur.copy_expert("COPY so_backends (key, url, options) FROM STDIN",
                                _Lines("k\ts3://b/p\t{}\n"))
        self.assertEqual(cm.exception.pgcode, "42501", cm.exception.pgerror)
        with self.assertRaises(psycopg2.Error) as cm:
            sql(as_role, "SELECT * FROM so_backends")
        self.assertEqual(cm.exception.pgcode, "42501")
        self.assertEqual(value(su, "SELECT count(*) FROM so_backends"), 0)

        # The other half of "only by the roles that may read them": the role
        # cannot dump them either (pg_dump dumps the registry's rows and the
        # delete queue as configuration data; it stops at the first of them
        # it may not read).
        sql(su, "SELECT so_register_backend('mine', %s, %s)",
            ("s3://%s/%s/mine" % (BUCKET, self.s3_prefix), FX.s3_options()))
        sql(as_role, "CREATE TABLE own_table (f stored_object)")
        p = run([PG_BIN + "/pg_dump", "-Fc", "-d", db, "-f", "/dev/null", "--no-sync"], user=role)
        err = p.stderr.decode()
        self.assertNotEqual(p.returncode, 0, err)
        self.assertRegex(err, r"permission denied for (table|sequence) so_(backends|delete_queue)")
        self.assertNotIn(FX.secret_key, err)
        # Even with the sequence out of the way, the registry is refused.
        p = run([PG_BIN + "/pg_dump", "-Fc", "-d", db, "-f", "/dev/null", "--no-sync",
                 "--exclude-table=so_delete_queue_id_seq"], user=role)
        err = p.stderr.decode()
        self.assertNotEqual(p.returncode, 0, err)
        self.assertRegex(err, r"permission denied for table so_(backends|delete_queue)")
        self.assertNotIn(FX.secret_key, err)

    def test_database_owner_administers_and_dumps_its_storage(self):
        """The owner of a database is its storage administrator: it may dump
        the registry; another database's registry stays closed to it."""
        role = FX.role("dumpadm", "LOGIN", "CREATEDB", "NOSUPERUSER")
        db = FX.database("admdump", owner=role, extension=False)
        su = FX.connect(db)
        sql(su, "CREATE EXTENSION stored_object")
        sql(su, "SELECT so_register_backend('adm_s3', %s, %s)",
            ("s3://%s/%s/adm" % (BUCKET, self.s3_prefix), FX.s3_options()))
        sql(FX.connect(db, user=role), "CREATE TABLE own_table (f stored_object)")
        p = run([PG_BIN + "/pg_dump", "-Fc", "-d", db, "-f", "/dev/null", "--no-sync"], user=role)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        # Administration is per database: the source database is not its.
        other = FX.connect(self.db, user=role)
        with self.assertRaises(psycopg2.Error) as cm:
            sql(other, "SELECT options FROM so_backends")
        self.assertEqual(cm.exception.pgcode, "42501")

    def test_restore_as_storage_admin(self):
        """The database owner (a storage administrator, who may read the
        secrets) restores the rows of S3 backends it owns; a file system
        backend, or a backend a superuser owns, still needs a superuser, so
        a registry holding one is refused as a whole (42501 from the
        registry's trigger) and leaves no rows."""
        role = FX.role("storeadm", "LOGIN", "CREATEDB", "NOSUPERUSER")

        # The full registry: local + S3, owned by a superuser.
        db = FX.database("asadmin", owner=role, extension=False)
        su = FX.connect(db)
        sql(su, "CREATE EXTENSION stored_object")
        p = run([PG_BIN + "/pg_restore", "--data-only", "-t", "so_backends", "-d", db, self.dump], user=role)
        err = p.stderr.decode()
        self.assertNotEqual(p.returncode, 0, err)
        self.assertIn("permission denied to register storage backend", err)
        self.assertNotIn(FX.secret_key, err)
        self.assertEqual(value(su, "SELECT count(*) FROM so_backends"), 0)

        # A registry of one S3 backend the role registered in its own
        # database (a superuser lets both databases reach the loopback fixture).
        src = FX.database("s3only", owner=role)
        db2 = FX.database("asadmin2", owner=role, extension=False)
        for name in (src, db2):
            sql(FX.admin, "ALTER DATABASE %s SET stored_object.allowed_internal_networks = '127.0.0.0/8'" % name)
        src_conn = FX.connect(src, user=role)
        sql(src_conn, "SELECT so_register_backend('only_s3', %s, %s)",
            ("s3://%s/%s/only" % (BUCKET, self.s3_prefix), FX.s3_options()))
        registry = sql(src_conn, REGISTRY_QUERY)
        self.assertEqual(registry[0][3], role)
        dump = os.path.join(self.dump_dir, "s3only.dump")
        p = run([PG_BIN + "/pg_dump", "-Fc", "-d", src, "-f", dump], user=role)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        os.chmod(dump, 0o644)
        su2 = FX.connect(db2)
        sql(su2, "CREATE EXTENSION stored_object")
        p = run([PG_BIN + "/pg_restore", "--exit-on-error", "--data-only", "-t", "so_backends", "-d", db2, dump],
                user=role)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(sql(su2, REGISTRY_QUERY), registry)
        self.assertEqual(registry[0][2]["secret_access_key"], FX.secret_key)
        # And the restored backend works for its owner.
        obj = value(FX.connect(db2, user=role), "SELECT so_put('only_s3', 'restored.txt', 'x')::text")
        self.assertEqual(json.loads(obj)["size"], 1)


class _Lines:
    """A file-like object for copy_expert."""

    def __init__(self, text):
        self.data = text.encode()

    def read(self, n=-1):
        chunk, self.data = (self.data, b"") if n < 0 else (self.data[:n], self.data[n:])
        return chunk

    def readline(self, n=-1):
        return self.read(n)


# ---------------------------------------------------------------------------
# ALTER EXTENSION ... UPDATE
# ---------------------------------------------------------------------------

# Functions for the extension's own use: not executable by PUBLIC in 0.3.0.
INTERNAL_FUNCTIONS = ["so_column_kind(regtype)", "so_secret_options()", "so_backends_trigger()"]


class UpgradeTest(Base):
    """ALTER EXTENSION stored_object UPDATE to the newest version, from 0.2.0
    and from 0.1.0 (through 0.3.0's access control), and from 0.3.0, on databases in use: rows, files, grants, a hash index, queued
    deletes. The result has the same objects as a fresh CREATE EXTENSION,
    and existing backends stay usable by the roles that used them."""

    def use_old_version(self, version):
        """A database on the old version, used: a local backend, files, a
        managed table with a hash index, a queued delete, a role that reads
        and writes through PUBLIC's rights. Returns what the checks need."""
        owner = FX.role("upgown" + version.replace(".", ""), "LOGIN", "NOSUPERUSER")
        user = FX.role("upguser" + version.replace(".", ""), "LOGIN", "NOSUPERUSER")
        db = FX.database("upg" + version.replace(".", ""), owner=owner, version=version)
        conn = FX.connect(db)
        self.assertEqual(value(conn, "SELECT extversion FROM pg_extension WHERE extname = 'stored_object'"), version)
        root = os.path.join(FX.directory("upg"), "root")
        make_postgres_dir(root)
        sql(conn, "SELECT so_register_backend('upg', %s)", ("file://" + root,))
        contents = {"docs/a.txt": b"version %s wrote this\n" % version.encode(), "docs/b.bin": os.urandom(5000),
                    "queued.bin": b"queued"}
        sql(conn, "CREATE TABLE docs (id int PRIMARY KEY, f stored_object, many stored_object[])")
        sql(conn, "GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO %s" % user)
        sql(conn, "INSERT INTO docs VALUES (1, so_put('upg', 'docs/a.txt', %s, metadata => '{\"v\": 1}'), "
                  "ARRAY[so_put('upg', 'docs/b.bin', %s)]), (2, NULL, '{}')",
            (psycopg2.Binary(contents["docs/a.txt"]), psycopg2.Binary(contents["docs/b.bin"])))
        sql(conn, "CREATE INDEX docs_f_hash ON docs USING hash (f)")
        if version != "0.1.0":
            sql(conn, "SELECT so_manage_column('docs', 'many')")
        # A queued delete as the old version left it: the file of a row
        # deleted earlier, its removal still to do.
        queued = value(conn, "SELECT so_put('upg', 'queued.bin', %s)::text", (psycopg2.Binary(contents["queued.bin"]),))
        sql(conn, "INSERT INTO so_pending_deletes (object, attempts, last_error) VALUES (%s, 1, 'store down')",
            (queued,))
        # The role used the backend with PUBLIC's rights.
        as_user = FX.connect(db, user=user)
        self.assertEqual(bytes(value(as_user, "SELECT so_get(f) FROM docs WHERE id = 1")), contents["docs/a.txt"])
        before = {
            "version": version,
            "rows": sql(conn, "SELECT id, f::text, many::text FROM docs ORDER BY id"),
            "queue": sql(conn, "SELECT id, object::text, scheduled_at, attempts, last_error "
                               "FROM so_pending_deletes ORDER BY id"),
            "registry": sql(conn, "SELECT key, url, options, created_at, updated_at FROM so_backends ORDER BY key"),
        }
        return db, conn, root, contents, owner, user, before

    def check_updated(self, db, root, contents, owner, user, before, notices):
        conn = FX.connect(db)  # a new session: nothing cached from the old version
        self.assertEqual(value(conn, "SELECT extversion FROM pg_extension WHERE extname = 'stored_object'"), NEWEST)
        self.assertTrue(any("stay usable by every role" in n and "'upg'" in n for n in notices), notices)

        # The data: rows, registry (now with an owner and PUBLIC's grant), queue.
        self.assertEqual(sql(conn, "SELECT id, f::text, many::text FROM docs ORDER BY id"), before["rows"])
        self.assertEqual(sql(conn, "SELECT key, url, options, created_at, updated_at FROM so_backends ORDER BY key"),
                         before["registry"])
        self.assertEqual(sql(conn, "SELECT key, owner, privileges::text FROM so_backend_info"),
                         [("upg", "postgres", '{"PUBLIC": ["read", "write", "delete"], "postgres": ["read", "write", "delete"]}')])
        self.assertEqual(sql(conn, "SELECT id, object::text, scheduled_at, attempts, last_error "
                                   "FROM so_pending_deletes ORDER BY id"), before["queue"])

        # The hash index was rebuilt with the new hash and finds the rows.
        sql(conn, "SET enable_seqscan = off")
        self.assertIn("docs_f_hash", "\n".join(r[0] for r in sql(
            conn, "EXPLAIN SELECT id FROM docs WHERE f = %s::stored_object", (before["rows"][0][1],))))
        self.assertEqual(sql(conn, "SELECT id FROM docs WHERE f = %s::stored_object", (before["rows"][0][1],)), [(1,)])
        self.assertTrue(value(conn, "SELECT bool_and(so_hash(f) = (so_hash_extended(f, 0) & 4294967295)::bit(32)::int) "
                                    "FROM docs WHERE f IS NOT NULL"))
        sql(conn, "RESET enable_seqscan")

        # The role that used the backend still does.
        as_user = FX.connect(db, user=user)
        self.assertEqual(bytes(value(as_user, "SELECT so_get(f) FROM docs WHERE id = 1")), contents["docs/a.txt"])
        self.assertEqual(bytes(value(as_user, "SELECT so_get(many[1]) FROM docs WHERE id = 1")),
                         contents["docs/b.bin"])
        sql(as_user, "INSERT INTO docs VALUES (3, so_put('upg', 'docs/c.txt', 'new'), NULL)")
        # The database owner administers the storage of its database now.
        self.assertEqual(value(FX.connect(db, user=owner), "SELECT count(*) FROM so_backends"), 1)
        with self.assertRaises(psycopg2.Error) as cm:
            sql(as_user, "SELECT count(*) FROM so_backends")
        self.assertEqual(cm.exception.pgcode, "42501")

        # The queued delete of the old version is carried out by the worker.
        self.assertTrue(value(conn, "SELECT so_wait_for_worker('60 seconds')"))
        self.assertEqual(value(conn, "SELECT count(*) FROM so_pending_deletes"), 0)
        self.assertFalse(os.path.exists(os.path.join(root, "queued.bin")))

        # Managed deletes work through the (re)made trigger.
        sql(conn, "SELECT so_manage_column('docs', 'many')")
        sql(as_user, "DELETE FROM docs WHERE id = 1")
        self.assertTrue(value(conn, "SELECT so_wait_for_worker('60 seconds')"))
        self.assertFalse(os.path.exists(os.path.join(root, "docs", "b.bin")))
        self.assertTrue(os.path.exists(os.path.join(root, "docs", "a.txt")))  # column f is not managed

        # Internal functions left the public API.
        for f in INTERNAL_FUNCTIONS:
            self.assertFalse(value(conn, "SELECT has_function_privilege('public', %s, 'EXECUTE')", (f,)), f)
        for f in ("so_remove_now(stored_object,boolean)", "so_own_queue_ids()"):
            self.assertIsNone(value(conn, "SELECT to_regprocedure(%s)", (f,)), f)

        fresh_conn = self.assertSameAsFreshInstall(conn, owner, "fresh" + before["version"].replace(".", ""))
        # A fresh install is closed: a backend registered there is not PUBLIC's.
        sql(fresh_conn, "SELECT so_register_backend('fresh', %s)", ("file://" + root + "/fresh",))
        self.assertEqual(value(fresh_conn, "SELECT privileges::text FROM so_backend_info"),
                         '{"postgres": ["read", "write", "delete"]}')

    def assertSameAsFreshInstall(self, conn, owner, tag):
        """The same objects as a fresh CREATE EXTENSION, with the same labels,
        ACLs, definitions, comments, columns and triggers. Returns a session
        of the fresh database."""
        fresh_owner = FX.role("upg" + tag, "LOGIN", "NOSUPERUSER")
        fresh_conn = FX.connect(FX.database(tag, owner=fresh_owner))
        self.assertEqual(value(fresh_conn, "SELECT extversion FROM pg_extension WHERE extname = 'stored_object'"),
                         NEWEST)
        fresh_members = [r[0] for r in sql(fresh_conn, MEMBERS_QUERY)]
        self.assertGreater(len(fresh_members), 50)
        self.assertEqual([r[0] for r in sql(conn, MEMBERS_QUERY)], fresh_members)
        # (The database owner is a storage administrator: its name differs.)
        self.assertEqual([r[0].replace(owner, "<owner>") for r in sql(conn, MEMBER_DETAILS_QUERY)],
                         [r[0].replace(fresh_owner, "<owner>") for r in sql(fresh_conn, MEMBER_DETAILS_QUERY)])
        return fresh_conn

    def update(self, db, conn):
        del conn.notices[:]
        sql(conn, "ALTER EXTENSION stored_object UPDATE")
        notices = list(conn.notices)
        conn.close()
        return notices

    def test_update_from_0_2_0(self):
        db, conn, root, contents, owner, user, before = self.use_old_version("0.2.0")
        notices = self.update(db, conn)
        # 0.2.0's managed-column trigger did not fire on INSERT: the update says so.
        self.assertTrue(any("do not check INSERTs" in n and "docs" in n for n in notices), notices)
        self.check_updated(db, root, contents, owner, user, before, notices)

    def test_update_from_0_3_0(self):
        """0.3.0 -> 0.4.0 changes a description only: rows, registry and
        privileges stay, and the result is a fresh install's."""
        owner = FX.role("upgown030", "LOGIN", "NOSUPERUSER")
        db = FX.database("upg030", owner=owner, version="0.3.0")
        conn = FX.connect(db)
        self.assertEqual(value(conn, "SELECT extversion FROM pg_extension WHERE extname = 'stored_object'"), "0.3.0")
        root = os.path.join(FX.directory("upg030"), "root")
        make_postgres_dir(root)
        sql(conn, "SELECT so_register_backend('upg', %s)", ("file://" + root,))
        sql(conn, "CREATE TABLE docs (id int PRIMARY KEY, f stored_object)")
        sql(conn, "INSERT INTO docs VALUES (1, so_put('upg', 'a.txt', 'written by 0.3.0'))")
        state = ("SELECT d.id, d.f::text, b.key, b.url, b.options, b.owner, b.privileges::text "
                 "FROM docs AS d, so_backend_info AS b ORDER BY 1")
        before = sql(conn, state)
        describe = "SELECT obj_description('so_register_backend(text,text,jsonb)'::regprocedure, 'pg_proc')"
        self.assertNotIn("az://", value(conn, describe))
        self.update(db, conn)
        conn = FX.connect(db)
        self.assertEqual(value(conn, "SELECT extversion FROM pg_extension WHERE extname = 'stored_object'"), NEWEST)
        self.assertEqual(sql(conn, state), before)
        self.assertIn("gs://bucket/prefix or az://container/prefix", value(conn, describe))
        self.assertEqual(bytes(value(conn, "SELECT so_get(f) FROM docs")), b"written by 0.3.0")
        self.assertSameAsFreshInstall(conn, owner, "fresh030")

    def test_update_from_0_1_0(self):
        db, conn, root, contents, owner, user, before = self.use_old_version("0.1.0")
        notices = self.update(db, conn)
        self.check_updated(db, root, contents, owner, user, before, notices)

    def test_update_keeps_stored_object_admin_where_it_has_members(self):
        """Runs last (alphabetical order): a member in the cluster-wide role
        changes what later installs do."""
        member = FX.role("zadmmember", "LOGIN", "NOSUPERUSER")
        db = FX.database("zadm", version="0.2.0")
        conn = FX.connect(db)
        sql(FX.admin, "GRANT stored_object_admin TO %s" % member)
        try:
            notices = self.update(db, conn)
            self.assertTrue(any("stored_object_admin has members" in n for n in notices), notices)
            as_member = FX.connect(db, user=member)
            self.assertEqual(value(as_member, "SELECT count(*) FROM so_backends"), 0)
        finally:
            sql(FX.admin, "REVOKE stored_object_admin FROM %s" % member)


# ---------------------------------------------------------------------------

def main():
    global FX
    FX = Fixture()
    return runner.run("migration_and_dump", FX, (AdvancedAlchemyMigrationTest, DumpRestoreTest, UpgradeTest),
                      FX.leftovers)


if __name__ == "__main__":
    sys.exit(main())
