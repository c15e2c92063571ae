"""gs:// backends against the S3 test fixture in its GCS mode.

No GCS server runs here: tests/s3/run-fixture.sh --gcs makes the fixture
answer as Cloud Storage's XML API documents it for a client with an HMAC
key (tests/s3/README.md, "GCS mode", lists each rule and its page). What
this checks, and what each check rests on:

- requests are signed GOOG4-HMAC-SHA256 (the fixture refuses x-goog-*
  headers in AWS4-signed requests, as GCS's migration guide says);
- create-only writes use x-goog-if-generation-match: 0 (the fixture, like
  GCS, ignores If-None-Match on writes), multipart ones too, through a
  copy, since GCS takes no precondition on completing a multipart upload;
- generations are the values' versions: a delete removes exactly the
  generation the row recorded;
- x-goog-meta-*, x-goog-storage-class, x-goog-copy-source(-generation);
- V4 signed URLs (GOOG4-HMAC-SHA256) for downloads and uploads, the upload
  bound to its type, create-only and its size range.

boto3 (AWS4, which the fixture's GCS mode accepts, as GCS does from HMAC
keys) is the independent client that reads back what so_put wrote.
Run as root, from scripts/test.sh or alone.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
os.environ["BOTO_DISABLE_CRT"] = "true"
import runner  # noqa: E402

import boto3  # noqa: E402
import psycopg2  # noqa: E402
from botocore.config import Config  # noqa: E402

RUN_FIXTURE = os.path.join(REPO, "tests", "s3", "run-fixture.sh")
BUCKET = "gcs-bucket"
ACCESS_ID = "GOOG1EXAMPLEHMACACCESSID"
SECRET = "gcs-hmac-secret-for-tests"
MIB = 1024 * 1024


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Fixture:
    name = "test_gcs"

    def __init__(self):
        self.dir = None
        self.conn = None
        self.dbname = "so_gcs_%d" % os.getpid()
        self.created_db = False

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="so_gcs_", dir=os.environ.get("SO_TEST_TMPDIR"))
        port = free_port()
        env = dict(os.environ, S3_FIXTURE_BUCKETS=BUCKET, S3_FIXTURE_CREDENTIALS="%s:%s" % (ACCESS_ID, SECRET))
        out = subprocess.run([RUN_FIXTURE, "start", os.path.join(self.dir, "s3"), str(port), "--gcs"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180)
        if out.returncode != 0:
            raise RuntimeError("the GCS-mode fixture did not start:\n" + out.stdout.decode(errors="replace"))
        self.endpoint = "http://127.0.0.1:%d" % port
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_ID,
                               aws_secret_access_key=SECRET, region_name="auto",
                               config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
        admin = psycopg2.connect(dbname="postgres")
        admin.autocommit = True
        admin.cursor().execute("CREATE DATABASE %s" % self.dbname)
        admin.close()
        self.created_db = True
        self.conn = psycopg2.connect(dbname=self.dbname)
        self.conn.autocommit = True
        self.sql("CREATE EXTENSION stored_object")
        self.register("gcs", part_size=5 * MIB)

    def stop(self):
        if self.conn:
            self.conn.close()
        if self.created_db:
            admin = psycopg2.connect(dbname="postgres")
            admin.autocommit = True
            admin.cursor().execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.dbname)
            admin.close()
            self.created_db = False
        if self.dir:
            subprocess.run([RUN_FIXTURE, "stop", os.path.join(self.dir, "s3")], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            shutil.rmtree(self.dir, ignore_errors=True)

    def sql(self, query, args=None, conn=None):
        cur = (conn or self.conn).cursor()
        cur.execute(query, args)
        return cur.fetchall() if cur.description else None

    def value(self, query, args=None, conn=None):
        return self.sql(query, args, conn)[0][0]

    def register(self, key, **options):
        import json
        opts = {"endpoint": self.endpoint, "allow_http": True, "access_key_id": ACCESS_ID,
                "secret_access_key": SECRET}
        opts.update(options)
        self.sql("SELECT so_register_backend(%s, %s, %s)", (key, "gs://%s/%s" % (BUCKET, key), json.dumps(opts)))

    def body(self, key):
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def keys(self, prefix):
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))


FX = Fixture()


class GcsTest(unittest.TestCase):
    def assertSqlError(self, sqlstate, query, args=None, conn=None):
        with self.assertRaises(psycopg2.Error) as caught:
            FX.sql(query, args, conn)
        self.assertEqual(caught.exception.pgcode, sqlstate, caught.exception.pgerror)
        return caught.exception

    def put(self, key, data, **extra):
        import json
        args = ", ".join(["%s => %%s" % k for k in extra])
        v = FX.value("SELECT so_put('gcs', %%s, %%s%s)::text" % (", " + args if args else ""),
                     (key, data) + tuple(extra.values()))
        return json.loads(v)

    def test_put_is_read_back_by_an_independent_client(self):
        v = self.put("a/hello world.txt", b"hello gcs", metadata='{"owner": "ada", "n": 3}')
        self.assertEqual(FX.body("gcs/a/hello world.txt"), b"hello gcs")
        # A generation, the GCS version of the object, is recorded.
        self.assertTrue(v["version_id"].isdigit(), v)
        head = FX.s3.head_object(Bucket=BUCKET, Key="gcs/a/hello world.txt")
        self.assertEqual(head["ResponseMetadata"]["HTTPHeaders"]["x-goog-generation"], v["version_id"])
        self.assertEqual(head["ResponseMetadata"]["HTTPHeaders"]["x-goog-meta-owner"], "ada")
        stat = FX.value("SELECT so_stat('gcs', 'a/hello world.txt')::jsonb")
        self.assertEqual(stat["metadata"], {"owner": "ada", "n": 3})
        self.assertEqual(stat["version_id"], v["version_id"])
        self.assertEqual(bytes(FX.value("SELECT so_get(so_stat('gcs', 'a/hello world.txt'), 6, 3)")), b"gcs")

    def test_create_only_uses_the_generation_precondition(self):
        self.put("once.txt", b"first")
        e = self.assertSqlError("58P02", "SELECT so_put('gcs', 'once.txt', 'second')")
        self.assertIn("already exists", e.diag.message_primary)
        self.assertEqual(FX.body("gcs/once.txt"), b"first")
        # Another client's object blocks it too.
        FX.s3.put_object(Bucket=BUCKET, Key="gcs/theirs.txt", Body=b"theirs")
        self.assertSqlError("58P02", "SELECT so_put('gcs', 'theirs.txt', 'mine')")

    def test_multipart_put_is_create_only_through_a_copy(self):
        data = os.urandom(11 * MIB + 123)
        v = self.put("big.bin", data)
        self.assertEqual(v["size"], len(data))
        self.assertEqual(FX.body("gcs/big.bin"), data)
        # No object of the parts is left behind.
        self.assertEqual([k for k in FX.keys("gcs/") if ".so-staging" in k], [])
        e = self.assertSqlError("58P02", "SELECT so_put('gcs', 'big.bin', %s)", (data,))
        self.assertIn("big.bin", e.diag.message_primary)
        self.assertEqual([k for k in FX.keys("gcs/") if ".so-staging" in k], [])

    def test_a_delete_removes_exactly_the_recorded_generation(self):
        import json
        old = FX.value("SELECT so_put('gcs', 'gen.txt', 'old')::text")
        # Another writer replaces the object: a new generation at the key.
        FX.s3.put_object(Bucket=BUCKET, Key="gcs/gen.txt", Body=b"new")
        FX.sql("SELECT so_delete(%s::stored_object)", (old,))
        FX.sql("SELECT so_process_pending()")
        self.assertEqual(FX.body("gcs/gen.txt"), b"new")
        # Its own generation goes.
        mine = json.loads(FX.value("SELECT so_put('gcs', 'gen2.txt', 'mine')::text"))
        FX.sql("SELECT so_delete(%s::stored_object)", (json.dumps(mine),))
        FX.sql("SELECT so_process_pending()")
        self.assertEqual(FX.keys("gcs/gen2.txt"), [])

    def test_overwrite_in_a_transaction(self):
        self.put("ow.txt", b"one")
        conn = psycopg2.connect(dbname=FX.dbname)
        self.addCleanup(conn.close)
        cur = conn.cursor()
        cur.execute("SELECT so_put('gcs', 'ow.txt', 'two', overwrite => true)")
        self.assertEqual(FX.body("gcs/ow.txt"), b"one")  # not before commit
        conn.rollback()
        self.assertEqual(FX.body("gcs/ow.txt"), b"one")
        cur.execute("SELECT so_put('gcs', 'ow.txt', 'three', overwrite => true)")
        conn.commit()
        self.assertEqual(FX.body("gcs/ow.txt"), b"three")

    def test_storage_class_and_refusals(self):
        self.put("cold.txt", b"x", attributes='{"storage_class": "NEARLINE", "cache_control": "no-cache"}')
        head = FX.s3.head_object(Bucket=BUCKET, Key="gcs/cold.txt")["ResponseMetadata"]["HTTPHeaders"]
        self.assertEqual(head["x-goog-storage-class"], "NEARLINE")
        self.assertEqual(head["cache-control"], "no-cache")
        self.assertEqual(FX.value("SELECT so_attributes(so_stat('gcs', 'cold.txt'))->>'storage_class'"), "NEARLINE")
        e = self.assertSqlError("22023", "SELECT so_put('gcs', 't.txt', 'x', attributes => '{\"tags\": {\"a\": \"b\"}}')")
        self.assertIn("no tags", e.diag.message_primary)
        e = self.assertSqlError("22023", "SELECT so_put('gcs', 't.txt', 'x', attributes => "
                                         "'{\"storage_class\": \"STANDARD_IA\"}')")
        self.assertIn("GCS storage class", e.diag.message_primary)
        e = self.assertSqlError("22023", "SELECT so_register_backend('gx', 'gs://bucket-x/x', '{\"sse\": \"AES256\"}')")
        self.assertIn("unknown option \"sse\" for gs backends", e.diag.message_primary)

    def test_server_side_copy_names_the_recorded_generation(self):
        v1 = FX.value("SELECT so_put('gcs', 'src.txt', 'generation one')::text")
        FX.register("gcs2")
        FX.value("SELECT so_copy(%s::stored_object, 'gcs2', 'dst.txt')::text", (v1,))
        self.assertEqual(FX.body("gcs2/dst.txt"), b"generation one")
        # Once another writer replaced it, the recorded generation is gone
        # (an unversioned bucket): the copy refuses rather than copying the
        # other writer's content.
        FX.s3.put_object(Bucket=BUCKET, Key="gcs/src.txt", Body=b"generation two")
        e = self.assertSqlError("58P01", "SELECT so_copy(%s::stored_object, 'gcs2', 'dst2.txt')", (v1,))
        self.assertIn("src.txt", e.diag.message_primary)
        self.assertEqual(FX.keys("gcs2/dst2.txt"), [])

    def test_signed_download_and_upload_urls(self):
        self.put("signed.txt", b"signed content")
        url = FX.value("SELECT so_sign(so_stat('gcs', 'signed.txt'), download_as => 'r\u00e9sum\u00e9.txt')")
        self.assertIn("X-Goog-Algorithm=GOOG4-HMAC-SHA256", url)
        with urllib.request.urlopen(url, timeout=10) as r:
            self.assertEqual(r.read(), b"signed content")
            self.assertIn("filename*=UTF-8''r%C3%A9sum%C3%A9.txt", r.headers["Content-Disposition"])
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url.replace("signed.txt", "other.txt"), timeout=10)
        self.assertEqual(caught.exception.code, 403)

        import json
        up = json.loads(FX.value("SELECT so_sign_upload('gcs', 'up.txt', 'text/plain', 10, NULL, '10 minutes', 'PUT')::text"))
        headers = up["headers"]
        self.assertEqual(headers["x-goog-if-generation-match"], "0")
        request = urllib.request.Request(up["url"], data=b"0123456789", method="PUT", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as r:
            self.assertEqual(r.status, 200)
        self.assertEqual(FX.body("gcs/up.txt"), b"0123456789")
        # Create-only: a second upload with the same URL is refused.
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(urllib.request.Request(up["url"], data=b"9876543210", method="PUT",
                                                          headers=headers), timeout=10)
        self.assertEqual(caught.exception.code, 412)
        adopted = json.loads(FX.value("SELECT so_adopt('gcs', 'up.txt', 10)::text"))
        self.assertEqual(adopted["size"], 10)
        # The size range (here 10,10) is signed: another size is refused by the store.
        big = json.loads(FX.value("SELECT so_sign_upload('gcs', 'big-up.txt', 'text/plain', 10, NULL, "
                                  "'10 minutes', 'PUT')::text"))
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(urllib.request.Request(big["url"], data=b"x" * 500, method="PUT",
                                                          headers=big["headers"]), timeout=10)
        self.assertEqual(caught.exception.code, 400)

    def test_a_token_backend_cannot_sign_urls(self):
        FX.sql("SELECT so_register_backend('gtok', 'gs://%s/gtok', jsonb_build_object('endpoint', %%s::text, "
               "'allow_http', true, 'credentials', 'metadata'))" % BUCKET, (FX.endpoint,))
        e = self.assertSqlError("0A000", "SELECT so_sign('{\"backend\": \"gtok\", \"filename\": \"x\"}'::stored_object)")
        self.assertIn("OAuth token", e.diag.message_primary)


if __name__ == "__main__":
    sys.exit(runner.run(FX.name, FX, [GcsTest],
                        lambda: ["database %s remains" % FX.dbname] if FX.created_db else []))
