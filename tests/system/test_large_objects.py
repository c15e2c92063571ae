#!/usr/bin/python3
"""System test: objects beyond one bytea, with the backend's peak memory.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_large_objects.py

with PGHOST/PGPORT/PGUSER naming a running cluster (stored_object
installed), SO_TEST_TMPDIR a directory the postgres user owns, and the S3
fixture's variables exported (see tests/system/s3support.py).

- so_put_file stores a 3 GiB server file (sparse: nothing of it is
  committed to git or written beforehand) on a local backend, and one of
  1.25 GiB (beyond one bytea; every byte crosses the loopback fixture, so
  not 3 GiB, to keep the suite short) on S3;
  the content arrives whole (size, SHA-256, the fixture's size), and the
  backend's peak resident memory grows by less than 48 MiB (local) or two
  16 MiB parts and 48 MiB (S3): the file is never held whole. The peaks
  are printed.
- so_upload_begin / so_upload_append / so_upload_finish store 256 MiB sent
  in 4 MiB pieces, with the same bound; an upload left open is aborted at
  commit with a WARNING, and one in an aborted transaction leaves nothing.
- The refusals: a role without pg_read_server_files (42501), a relative
  path (22023), a missing file (58P01), a directory (22023), a piece beyond
  max_size (54000, and the upload is over), an unknown upload (22023).

The last line of output is "N passed, N failed"; the exit status is non-zero
on any failure.
"""

import hashlib
import json
import os
import pwd
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3support  # noqa: E402  (sets BOTO_DISABLE_CRT before boto3 loads)
from procfs import proc_status, reset_peak  # noqa: E402

FX = s3support.Fixture("large")
GIB = 1024 ** 3
MIB = 1024 ** 2
BIG = 3 * GIB
S3_BIG = 5 * GIB // 4  # beyond one bytea (1 GiB)
PART = 16 * MIB
# Peak growth allowed: the part in flight (S3) plus what one statement
# costs (a 4 MiB piece arrives as 8 MiB of hex, then a bytea), never the
# object: 3 GiB would be 3072 MiB.
LOCAL_BOUND = 48 * MIB
S3_BOUND = 2 * PART + 48 * MIB


def sha256_of_zeros(n):
    digest, block = hashlib.sha256(), bytes(8 * MIB)
    while n > 0:
        digest.update(block[:min(n, len(block))])
        n -= len(block)
    return digest.hexdigest()


class LargeObjectTest(s3support.SqlAssertions, unittest.TestCase):
    FX = FX

    @classmethod
    def setUpClass(cls):
        cls.dir = os.path.join(os.environ["SO_TEST_TMPDIR"], "large-%d" % os.getpid())
        os.makedirs(cls.dir)
        os.chmod(cls.dir, 0o755)
        if os.geteuid() == 0:  # the server (user postgres) makes the backend's directory here
            postgres = pwd.getpwnam("postgres")
            os.chown(cls.dir, postgres.pw_uid, postgres.pw_gid)
        cls.big = os.path.join(cls.dir, "three-gib.bin")
        with open(cls.big, "wb") as f:
            f.truncate(BIG)  # sparse: no disk, no time
        os.chmod(cls.big, 0o644)
        cls.s3_big = os.path.join(cls.dir, "beyond-one-bytea.bin")
        with open(cls.s3_big, "wb") as f:
            f.truncate(S3_BIG)
        os.chmod(cls.s3_big, 0o644)
        cls.root = os.path.join(cls.dir, "store")
        FX.sql("SELECT so_register_backend('large_local', %s)", ("file://" + cls.root,))
        cls.prefix = FX.register("large_s3", "large", part_size=PART)
        # 5 MiB parts: the first 6 MiB piece starts a multipart upload.
        FX.register("large_limited", "limited", max_size=10 * MIB, part_size=5 * MIB)

    @classmethod
    def tearDownClass(cls):
        for dirpath, dirs, files in os.walk(cls.dir, topdown=False):
            for name in files:
                os.unlink(os.path.join(dirpath, name))
            for name in dirs:
                os.rmdir(os.path.join(dirpath, name))
        os.rmdir(cls.dir)

    def measured(self, query, args=None, conn=None):
        """(result, growth of the backend's peak RSS in bytes) of one query
        on a connection of its own."""
        conn = conn or FX.connect()
        pid = FX.value("SELECT pg_backend_pid()", conn=conn)
        reset_peak(pid)
        before = proc_status(pid)["VmHWM"]
        result = FX.value(query, args, conn)
        return result, proc_status(pid)["VmHWM"] - before

    def report(self, what, growth, bound):
        print("\n  %s: backend peak RSS grew by %.1f MiB (bound %d MiB)" % (what, growth / MIB, bound // MIB),
              end=" ")
        self.assertLess(growth, bound, what)

    def test_three_gib_file_to_local_storage(self):
        value, growth = self.measured("SELECT so_put_file('large_local', 'big/three.bin', %s)::text", (self.big,))
        value = json.loads(value)
        self.report("so_put_file of 3 GiB to a local backend", growth, LOCAL_BOUND)
        self.assertEqual(value["size"], BIG)
        self.assertEqual(os.path.getsize(os.path.join(self.root, "big", "three.bin")), BIG)
        self.assertEqual(value["checksum"], sha256_of_zeros(BIG))

    def test_file_beyond_one_bytea_to_s3(self):
        value, growth = self.measured("SELECT so_put_file('large_s3', 'big/beyond.bin', %s)::text", (self.s3_big,))
        value = json.loads(value)
        self.report("so_put_file of 1.25 GiB to S3 (16 MiB parts)", growth, S3_BOUND)
        self.assertEqual(value["size"], S3_BIG)
        self.assertEqual(value["checksum"], sha256_of_zeros(S3_BIG))
        self.assertEqual(FX.head(self.prefix + "big/beyond.bin")["ContentLength"], S3_BIG)
        FX.s3.delete_object(Bucket=s3support.BUCKET, Key=self.prefix + "big/beyond.bin")

    def test_upload_in_pieces(self):
        piece = os.urandom(4 * MIB)
        conn = FX.connect(autocommit=False)
        pid = FX.value("SELECT pg_backend_pid()", conn=conn)
        for backend in ("large_s3", "large_local"):
            with self.subTest(backend):
                upload = FX.value("SELECT so_upload_begin(%s, 'pieces/quarter.bin')", (backend,), conn)
                reset_peak(pid)
                before = proc_status(pid)["VmHWM"]
                digest = hashlib.sha256()
                for _ in range(64):
                    FX.value("SELECT so_upload_append(%s, %s)", (upload, piece), conn)
                    digest.update(piece)
                value = json.loads(FX.value("SELECT so_upload_finish(%s)::text", (upload,), conn))
                conn.commit()
                self.report("256 MiB in 4 MiB pieces to %s" % backend, proc_status(pid)["VmHWM"] - before,
                            S3_BOUND if backend == "large_s3" else LOCAL_BOUND)
                self.assertEqual(value["size"], 256 * MIB)
                content = FX.value("SELECT so_get(%s::stored_object, %s, %s)", (json.dumps(value), 100 * MIB, 10),
                                   conn)
                self.assertEqual(bytes(content), piece[:10])  # 100 MiB is 25 whole pieces in
                if backend == "large_local":
                    self.assertEqual(value["checksum"], digest.hexdigest())
                conn.commit()

    def test_open_and_aborted_uploads_leave_nothing(self):
        conn = FX.connect(autocommit=False)
        upload = FX.value("SELECT so_upload_begin('large_local', 'pieces/open.bin')", conn=conn)
        FX.value("SELECT so_upload_append(%s, 'x')", (upload,), conn)
        del conn.notices[:]
        conn.commit()
        self.assertTrue(any("was not finished: aborted" in n for n in conn.notices), conn.notices)
        upload = FX.value("SELECT so_upload_begin('large_local', 'pieces/aborted.bin')", conn=conn)
        FX.value("SELECT so_upload_append(%s, 'x')", (upload,), conn)
        conn.rollback()
        self.assertSqlError("22023", "SELECT so_upload_append(%s, 'x')", (upload,), conn)
        pieces = os.path.join(self.root, "pieces")
        left = [n for n in os.listdir(pieces) if n.startswith(".so-") or n in ("open.bin", "aborted.bin")] \
            if os.path.isdir(pieces) else []
        self.assertEqual(left, [])

    def test_refusals(self):
        FX.sql("CREATE ROLE large_writer")
        try:
            FX.sql("SELECT so_grant('large_local', 'write', 'large_writer')")
            FX.sql("GRANT EXECUTE ON FUNCTION so_put_file(text, text, text, text, jsonb, jsonb) TO large_writer")
            conn = FX.connect()
            FX.sql("SET ROLE large_writer", conn=conn)
            self.assertSqlError("42501", "SELECT so_put_file('large_local', 'x', %s)", (self.big,), conn)
        finally:
            FX.sql("DROP OWNED BY large_writer")
            FX.sql("DROP ROLE large_writer")
        self.assertSqlError("22023", "SELECT so_put_file('large_local', 'x', 'relative/path')")
        self.assertSqlError("58P01", "SELECT so_put_file('large_local', 'x', %s)", (self.big + ".missing",))
        self.assertSqlError("22023", "SELECT so_put_file('large_local', 'x', %s)", (self.dir,))
        self.assertSqlError("54000", "SELECT so_put_file('large_limited', 'x', %s)", (self.big,))
        conn = FX.connect(autocommit=False)
        upload = FX.value("SELECT so_upload_begin('large_limited', 'limited.bin')", conn=conn)
        FX.value("SELECT so_upload_append(%s, %s)", (upload, bytes(6 * MIB)), conn)
        e = self.assertSqlError("54000", "SELECT so_upload_append(%s, %s)", (upload, bytes(6 * MIB)), conn)
        self.assertIn("max_size", e.pgerror)
        self.assertSqlError("22023", "SELECT so_upload_finish(%s)", (upload,), conn)
        self.assertEqual(FX.multipart_uploads(FX.prefix + "/limited/"), [])


if __name__ == "__main__":
    sys.exit(s3support.main(FX, [LargeObjectTest]))
