#!/usr/bin/python3
"""System test: rows and files after crashes, on a cluster of its own.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_crash_recovery.py

It needs no running cluster: it makes and owns a throwaway one
(scripts/cluster.sh start/stop under a temporary directory), because it
crashes it on purpose; the S3 cases use the S3 fixture named by the
environment (S3_ENDPOINT, S3_ACCESS_KEY_ID, ...; see s3support.py) and are
skipped when there is none. The installed library must be a test build
(make SO_TEST_HOOKS=1): stored_object.test_pause_after_promote = K makes a
committing backend take and release pg_advisory_lock_shared(K) right after
it promoted its staged overwrites, so a session holding pg_advisory_lock(K)
parks it there.

Every case checks one invariant: a committed row never points at a missing
file, and once recovery, the background worker and the sweeper have run, no
file is lost and none is left over.

* Async commit + immediate shutdown (wal_writer_delay = 10s, so an async
  commit stays unflushed for a while): a managed row delete and an so_delete
  (with its row) committed with synchronous_commit = off, then at once an
  immediate shutdown; an overwrite (so_put overwrite => true, row updated)
  likewise. After the restart either the transaction survived (its files go)
  or it did not (its files stay), never a mix; the row's value and its key's
  content agree. Local backend and S3.
* kill -9 between promotion and commit: the key already holds the new
  bytes, the row the old value. After the crash restart the worker's first
  run (its end is in the server log, at log_min_messages = debug1) and then
  so_gc, which recovers before it sweeps, put the old bytes back; no backup
  or staged file remains. Both on a busy server (another commit flushed the
  parked transaction's WAL) and an idle one (its transaction id may be handed
  out again after the restart). The same after a crash of the whole server
  restarted without the worker, other transactions committing before anyone
  sweeps: so_gc alone must restore, never sweep the backup away. On S3 a
  promotion cannot be undone (README): the key keeps the new bytes, and
  so_gc removes the staged object.
* SERIALIZABLE: T1 is parked after its promotion, T2 overwrites the same key
  and waits for T1 on the overwrite lock, a write-skew partner commits
  first and dooms T1, which then fails at commit with 40001 after its
  promotion: the abort puts the original back, then T2 promotes and commits.
* Without the preloaded library: so_delete, and a managed row delete, warn
  once per session; the delete waits in so_pending_deletes,
  so_process_pending() carries it out, so_wait_for_worker returns false at
  once; so_operation_stats shows each session what it counted itself.
  so_process_pending flushes the WAL it saw committed when the WAL ends
  exactly at a page start (stored_object.test_pad_wal_to_page_start, a test
  build's hook, fills the page to there).

The cluster, its directories and the S3 objects under this file's own
prefix are removed at the end, whatever happens. The last line of output is
"N passed, N failed"; the exit status is non-zero on any failure.
"""

import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3support  # noqa: E402  (sets BOTO_DISABLE_CRT before boto3 loads)
import runner  # noqa: E402

import boto3  # noqa: E402
import psycopg2  # noqa: E402
import psycopg2.extensions  # noqa: E402
import psycopg2.extras  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER_SH = os.path.join(REPO, "scripts", "cluster.sh")
PG_BIN = "/usr/lib/postgresql/15/bin"
IS_ROOT = os.geteuid() == 0
DBNAME = "so_crash"
BUCKET = s3support.BUCKET
NO_WORKER_WARNING = "not in shared_preload_libraries"
OVERWRITE_LOCK = 0x5350  # objsubid of the overwrite lock (src/pg/object_locks.cpp)
READY = "database system is ready to accept connections"
REINIT = "all server processes terminated; reinitializing"


# ---- small helpers -----------------------------------------------------------

def md5(data):
    return hashlib.md5(data).hexdigest()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def as_postgres(args, timeout=120, check=True):
    """Runs a command as the postgres OS user (PostgreSQL refuses root), from
    a directory that user can read."""
    cmd = (["runuser", "-u", "postgres", "--"] if IS_ROOT else []) + list(args)
    result = subprocess.run(cmd, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(args), result.returncode,
                                                     result.stdout.decode(errors="replace")))
    return result


def process_alive(pid):
    """Whether pid is a live process (a zombie nobody reaped counts as dead)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def wait_until(predicate, timeout, what, interval=0.02):
    """Polls predicate() until it returns a true value (returned), or fails
    after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %g s waiting for %s" % (timeout, what))
        time.sleep(interval)


def poll(predicate, timeout, interval=0.02):
    """Like wait_until, but returns the last value instead of failing."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class Background:
    """A callable run in a thread; remembers its result or exception."""

    def __init__(self, fn, *args):
        self.result = self.error = None
        self.thread = threading.Thread(target=self._run, args=(fn,) + args, daemon=True)
        self.thread.start()

    def _run(self, fn, *args):
        try:
            self.result = fn(*args)
        except BaseException as e:  # noqa: B902 - reported to the test
            self.error = e

    def done(self):
        return not self.thread.is_alive()

    def join(self, timeout=30):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("the background statement did not finish within %d s" % timeout)
        return self


# ---- the cluster of this test --------------------------------------------------

class Cluster:
    """A cluster made by scripts/cluster.sh under dir, that this test stops,
    crashes and starts again."""

    def __init__(self, directory):
        self.dir = directory
        self.data = os.path.join(directory, "data")
        self.sock = os.path.join(directory, "sock")
        self.log = os.path.join(directory, "server.log")
        self.port = None
        self.preloaded = True

    def create(self):
        out = subprocess.run([CLUSTER_SH, "start", self.dir], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180)
        if out.returncode != 0:
            raise RuntimeError("cluster.sh start failed:\n" + out.stdout.decode(errors="replace"))
        self.port = int(out.stdout.decode().split()[-1])

    def options(self, preload):
        # What scripts/cluster.sh starts it with, the preloading aside.
        return ("-p %d -k %s -c listen_addresses='' -c fsync=off -c max_prepared_transactions=5 "
                "-c shared_preload_libraries=%s" % (self.port, self.sock, "stored_object" if preload else "''"))

    def pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def running(self):
        pid = self.pid()
        return pid is not None and process_alive(pid)

    def start(self, preload=True):
        as_postgres([PG_BIN + "/pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60",
                     "-o", self.options(preload), "start"])
        self.preloaded = preload

    def stop(self):
        as_postgres([PG_BIN + "/pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop"])

    def restart(self, preload=True):
        self.stop()
        self.start(preload)

    def crash(self, how):
        """An immediate shutdown, the way `pg_ctl stop -m immediate` does it
        (SIGQUIT to the postmaster): either through pg_ctl, or by sending the
        signal from here, which loses less time after the last COMMIT."""
        pid = self.pid()
        if how == "pg_ctl":
            as_postgres([PG_BIN + "/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "60", "stop"])
        else:
            os.kill(pid, signal.SIGQUIT)
        wait_until(lambda: not process_alive(pid), 30, "the postmaster to exit after an immediate shutdown")

    def log_size(self):
        try:
            return os.path.getsize(self.log)
        except FileNotFoundError:
            return 0

    def log_text(self, offset=0):
        try:
            with open(self.log, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_crash_restart(self, offset, timeout=60):
        """After a backend was killed: waits until the postmaster has reaped
        it, reinitialized and finished crash recovery (server log)."""
        def restarted():
            text = self.log_text(offset)
            i = text.find(REINIT)
            return i >= 0 and text.find(READY, i) >= 0
        wait_until(restarted, timeout, "the crash restart in the server log", interval=0.05)

    def connect(self, dbname=DBNAME, autocommit=True):
        c = psycopg2.connect(host=self.sock, port=self.port, user="postgres", dbname=dbname, connect_timeout=10)
        c.autocommit = autocommit
        return c


class S3:
    """The S3 fixture of the environment, through boto3, under this file's prefix."""

    def __init__(self):
        self.endpoint = os.environ["S3_ENDPOINT"].rstrip("/")
        assert urllib.parse.urlsplit(self.endpoint).hostname in ("127.0.0.1", "localhost"), self.endpoint
        self.region = os.environ.get("S3_REGION") or "us-east-1"
        self.access_key = os.environ["S3_ACCESS_KEY_ID"]
        self.secret_key = os.environ["S3_SECRET_ACCESS_KEY"]
        self.prefix = "so_systest/crash-%d-%s" % (os.getpid(), secrets.token_hex(4))
        self.client = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"total_max_attempts": 1, "mode": "standard"},
                          connect_timeout=5, read_timeout=60))

    def options(self):
        return {"endpoint": self.endpoint, "region": self.region, "allow_http": True,
                "access_key_id": self.access_key, "secret_access_key": self.secret_key}

    def list(self, prefix):
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys

    def get(self, key):
        """The bytes at key, or None when it does not exist."""
        try:
            return self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return None
            raise

    def remove_all(self):
        for upload in self.client.list_multipart_uploads(Bucket=BUCKET, Prefix=self.prefix + "/").get("Uploads", []):
            self.client.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
        for key in self.list(self.prefix + "/"):
            self.client.delete_object(Bucket=BUCKET, Key=key)


class Fixture:
    def __init__(self):
        self.name = "crash"
        self.tmp = None
        self.cluster = None
        self.s3 = None
        self.connections = []
        self.threads = []
        self.admin = None

    def start(self):
        base = os.environ.get("SO_TEST_TMPDIR") or None
        self.tmp = tempfile.mkdtemp(prefix="so-crash-", dir=base)
        os.chmod(self.tmp, 0o755)
        if IS_ROOT:
            shutil.chown(self.tmp, "postgres", "postgres")
        self.files = os.path.join(self.tmp, "files")
        as_postgres(["mkdir", "-m", "0700", self.files])
        if os.environ.get("S3_ENDPOINT"):
            self.s3 = S3()
        self.cluster = Cluster(os.path.join(self.tmp, "cluster"))
        self.cluster.create()
        c = self.cluster.connect("postgres")
        with c.cursor() as cur:
            cur.execute("CREATE DATABASE " + DBNAME)
        c.close()
        self.reconnect()
        self.sql("CREATE EXTENSION stored_object")

    def stop(self):
        # The server first: a fast stop ends every session, parked ones too,
        # so closing their connections cannot wait on a statement.
        for step in (self.stop_cluster, self.close_connections, self.remove_objects, self.remove_tmp):
            try:
                step()
            except Exception:
                traceback.print_exc(file=sys.stdout)

    def close_connections(self):
        for c in self.connections:
            try:
                c.close()
            except Exception:
                pass
        self.connections = []
        self.admin = None

    def stop_cluster(self):
        if self.cluster is None:
            return
        if self.cluster.running():
            try:
                self.cluster.stop()
            except Exception:
                traceback.print_exc(file=sys.stdout)
                if self.cluster.running():
                    self.cluster.crash("signal")
        for t in self.threads:  # their sessions are gone with the server
            t.join(30)
        subprocess.run([CLUSTER_SH, "stop", self.cluster.dir], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)

    def remove_objects(self):
        if self.s3 is not None:
            self.s3.remove_all()

    def remove_tmp(self):
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def leftovers(self):
        left = []
        if self.cluster is not None and self.cluster.running():
            left.append("postmaster %d still runs" % self.cluster.pid())
        if self.tmp is not None:
            if os.path.exists(self.tmp):
                left.append(self.tmp + " remains")
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or not process_alive(int(entry)):
                    continue
                try:
                    with open("/proc/%s/cmdline" % entry, "rb") as f:
                        cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if self.tmp in cmdline:
                    left.append("process %s: %s" % (entry, cmdline[:200]))
        if self.s3 is not None:
            keys = self.s3.list(self.s3.prefix + "/")
            if keys:
                left.append("%d S3 objects under %s" % (len(keys), self.s3.prefix))
        return left

    # ---- sessions ------------------------------------------------------------

    def connect(self, autocommit=True):
        c = self.cluster.connect(DBNAME, autocommit)
        self.connections.append(c)
        return c

    def reconnect(self):
        """After a restart: forget every session, open the admin one again."""
        self.close_connections()
        self.admin = self.connect()

    def sql(self, query, args=None, conn=None):
        with (conn or self.admin).cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall() if cur.description else None

    def value(self, query, args=None, conn=None):
        return self.sql(query, args, conn)[0][0]

    def background(self, fn, *args):
        b = Background(fn, *args)
        self.threads.append(b.thread)
        return b

    # ---- crashes -------------------------------------------------------------

    def crash_and_restart(self, how, preload=True):
        self.cluster.crash(how)
        self.close_connections()
        self.cluster.start(preload)
        self.reconnect()

    def kill_backend(self, pid):
        """kill -9 of one backend: the postmaster kills the others and
        restarts; returns once it accepts connections again."""
        offset = self.cluster.log_size()
        os.kill(pid, signal.SIGKILL)
        self.cluster.wait_crash_restart(offset)
        self.reconnect()
        return offset

    # ---- backends ------------------------------------------------------------

    def register_local(self, key):
        root = os.path.join(self.files, key)
        self.sql("SELECT so_register_backend(%s, %s)", (key, "file://" + root))
        return LocalBackend(key, root)

    def register_s3(self, key):
        self.sql("SELECT so_register_backend(%s, %s, %s::jsonb)",
                 (key, "s3://%s/%s/%s" % (BUCKET, self.s3.prefix, key), psycopg2.extras.Json(self.s3.options())))
        return S3Backend(key, self.s3, "%s/%s/" % (self.s3.prefix, key))



class LocalBackend:
    """What is on disk under a local backend's root, read directly."""
    kind = "local"

    def __init__(self, key, root):
        self.key, self.root = key, root

    def content(self, key):
        try:
            with open(os.path.join(self.root, key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def keys(self):
        """Every file (relative path) but the journal's."""
        found = []
        if not os.path.isdir(self.root):
            return found
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            if rel == ".":
                dirnames[:] = [d for d in dirnames if d != ".so-journal"]
            for name in filenames:
                found.append(name if rel == "." else os.path.join(rel, name))
        return sorted(found)

    def journal(self):
        d = os.path.join(self.root, ".so-journal")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def reserved(self):
        """Our own temporary, staged and backup files, and journal entries."""
        return [k for k in self.keys() if os.path.basename(k).startswith(".so-")] + \
            [".so-journal/" + e for e in self.journal()]


class S3Backend:
    """What is in the bucket under an S3 backend's prefix, through boto3."""
    kind = "s3"

    def __init__(self, key, s3, prefix):
        self.key, self.s3, self.prefix = key, s3, prefix

    def content(self, key):
        return self.s3.get(self.prefix + key)

    def keys(self):
        return sorted(k[len(self.prefix):] for k in self.s3.list(self.prefix))

    def journal(self):
        return []

    def reserved(self):
        return [k for k in self.keys() if k.startswith(".so-") or "/.so-" in k]


FX = Fixture()


class CrashBase(unittest.TestCase):
    """Helpers shared by the cases."""

    @classmethod
    def backend(cls, kind, key):
        if kind == "s3":
            if FX.s3 is None:
                raise unittest.SkipTest("no S3 fixture in the environment (S3_ENDPOINT)")
            return FX.register_s3(key)
        return FX.register_local(key)

    def table(self, name, managed):
        FX.sql("CREATE TABLE %s (id int PRIMARY KEY, f stored_object)" % name)
        FX.sql("CREATE INDEX ON %s (f)" % name)
        if managed:
            FX.sql("SELECT so_manage_column(%s, 'f')", (name,))

    def put_row(self, table, row_id, backend, key, content):
        FX.sql("INSERT INTO %s (id, f) VALUES (%%s, so_put(%%s, %%s, %%s))" % table,
               (row_id, backend.key, key, psycopg2.Binary(content)))

    def row(self, table, row_id, conn=None):
        """(filename, etag, checksum, text) of a row's value, or None."""
        rows = FX.sql("SELECT so_filename(f), so_etag(f), so_checksum(f), f::text FROM %s WHERE id = %%s" % table,
                      (row_id,), conn)
        return rows[0] if rows else None

    def so_get(self, table, row_id, conn=None):
        return bytes(FX.value("SELECT so_get(f) FROM %s WHERE id = %%s" % table, (row_id,), conn))

    def referenced(self, backend, *tables):
        keys = set()
        for t in tables:
            keys |= {r[0] for r in FX.sql("SELECT so_filename(f) FROM %s WHERE so_backend(f) = %%s" % t,
                                          (backend.key,))}
        return keys

    def wait_for_worker(self):
        self.assertTrue(FX.value("SELECT so_wait_for_worker('30 seconds')"),
                        "the worker did not catch up within 30 s")

    def settle(self, timeout=20):
        """Waits until the worker has carried out every queued delete. A
        delete the worker postponed (the object's reference lock was taken)
        is not due yet when so_wait_for_worker returns: wait for it too."""
        query = "SELECT so_filename(object), attempts, last_error, next_attempt_at - now() FROM so_pending_deletes"
        deadline = time.monotonic() + timeout
        self.wait_for_worker()
        rows = FX.sql(query)
        if rows:
            print("(so_wait_for_worker returned true with deletes not due yet: %s) " % rows, end="")
        while rows:
            self.assertFalse([r for r in rows if r[1] > 0], "queued deletes failed: %s" % rows)
            self.assertLess(time.monotonic(), deadline, "deletes still queued after %d s: %s" % (timeout, rows))
            time.sleep(0.05)
            self.wait_for_worker()
            rows = FX.sql(query)

    def assertRowMatchesContent(self, table, row_id, backend, msg=""):
        """The committed row's value and its key's content agree."""
        name, etag, checksum, text = self.row(table, row_id)
        stored = backend.content(name)
        self.assertIsNotNone(stored, "%s row %d points at missing %s %s" % (table, row_id, backend.kind, name))
        via_sql = self.so_get(table, row_id)
        self.assertEqual(via_sql, stored, "so_get and the store disagree")
        self.assertEqual(md5(stored), etag, "%s%s row %d says %s but the key holds %r"
                         % (msg, table, row_id, text, stored[:80]))
        if checksum is not None:
            self.assertEqual(sha256(stored), checksum)
        return stored

    def pause_lock_waiter(self, pid, key):
        """Whether backend pid waits for the test hook's advisory lock key."""
        return FX.value("SELECT count(*) FROM pg_locks WHERE pid = %s AND locktype = 'advisory' AND NOT granted "
                        "AND classid = %s AND objid = %s AND objsubid = 1",
                        (pid, key >> 32, key & 0xffffffff)) > 0

    def overwrite_lock_waiter(self, pid):
        return FX.value("SELECT count(*) FROM pg_locks WHERE pid = %s AND locktype = 'advisory' AND NOT granted "
                        "AND objsubid = %s", (pid, OVERWRITE_LOCK)) > 0

    def state(self, b):
        return "key holds %r, journal %s, files %s" % (b.content("b/k.txt"), b.journal(), b.keys())

    def xid_evidence(self, tags):
        """For a failure message: how PostgreSQL sees the transactions that
        journal entries or staged names are tagged with (reads only, so no
        transaction id is assigned by asking)."""
        parts = ["snapshot %s" % FX.value("SELECT pg_current_snapshot()::text")]
        for tag in tags:
            try:
                parts.append("tag %s: %s" % (tag, FX.value("SELECT pg_xact_status(%s::xid8)", (tag,))))
            except psycopg2.Error as e:
                parts.append("tag %s: %s" % (tag, e.diag.message_primary))
        return "; ".join(parts)


# ---- (a) synchronous_commit = off, then an immediate shutdown ----------------------

class AsyncCommitCrashTest(CrashBase):
    """Deletes and overwrites committed with synchronous_commit = off and an
    immediate shutdown right after COMMIT: whether the commit survived or
    not, rows and files agree after the restart."""

    ITERATIONS = 3

    @classmethod
    def setUpClass(cls):
        FX.sql("ALTER SYSTEM SET wal_writer_delay = '10s'")
        FX.sql("SELECT pg_reload_conf()")
        c = FX.connect()
        wait_until(lambda: FX.value("SHOW wal_writer_delay", conn=c) == "10s", 10, "the reload")
        c.close()

    def run_case(self, kind):
        b = self.backend(kind, "a_" + kind)
        managed, plain = "ma_" + kind, "pa_" + kind
        self.table(managed, True)
        self.table(plain, False)
        n = self.ITERATIONS
        for i in range(1, n + 1):
            self.put_row(managed, i, b, "a/m%d.txt" % i, b"managed %d" % i)
            self.put_row(plain, i, b, "a/p%d.txt" % i, b"plain %d" % i)
        self.put_row(managed, 100, b, "a/ov.txt", b"overwrite 0")
        written = [b"overwrite 0"] + [b"overwrite %d" % i for i in range(1, n + 1)]
        problems, history = [], []
        outcomes = {"lost": 0, "survived": 0, "overwrite lost": 0, "overwrite survived": 0}
        for i in range(1, n + 1):
            conn = FX.connect()
            FX.sql("SET synchronous_commit = off", conn=conn)
            new = b"overwrite %d" % i

            def overwrite():
                FX.sql("BEGIN", conn=conn)
                FX.sql("UPDATE %s SET f = so_put(%%s, 'a/ov.txt', %%s, overwrite => true) WHERE id = 100" % managed,
                       (b.key, psycopg2.Binary(new)), conn)
                FX.sql("COMMIT", conn=conn)

            def deletes():
                FX.sql("BEGIN", conn=conn)
                FX.sql("DELETE FROM %s WHERE id = %%s" % managed, (i,), conn)
                FX.sql("SELECT so_delete(f) FROM %s WHERE id = %%s" % plain, (i,), conn)
                FX.sql("DELETE FROM %s WHERE id = %%s" % plain, (i,), conn)
                FX.sql("COMMIT", conn=conn)

            # The last transaction before the crash alternates.
            steps = (overwrite, deletes) if i % 2 else (deletes, overwrite)
            for step in steps:
                step()
            FX.crash_and_restart("signal" if i % 2 else "pg_ctl")

            # One transaction: the managed row and the plain row (with its
            # so_delete) went together, or stayed together.
            m_row, p_row = self.row(managed, i), self.row(plain, i)
            self.assertEqual(m_row is None, p_row is None, "iteration %d: half a transaction survived" % i)
            history.append("%d:%s" % (i, "lost" if m_row is not None else "survived"))
            if m_row is not None:
                outcomes["lost"] += 1
                # The delete did not survive: its objects must not go.
                self.assertEqual(b.content("a/m%d.txt" % i), b"managed %d" % i)
                self.assertEqual(b.content("a/p%d.txt" % i), b"plain %d" % i)
                self.assertEqual(FX.value("SELECT count(*) FROM so_pending_deletes WHERE so_filename(object) "
                                          "IN (%s, %s)", ("a/m%d.txt" % i, "a/p%d.txt" % i)), 0)
            else:
                outcomes["survived"] += 1
            # The overwritten row and its key agree, whichever way it went
            # (checked to the end, so one mismatch hides nothing else).
            name, etag, _, text = self.row(managed, 100)
            stored = b.content(name)
            self.assertIn(stored, written, "a/ov.txt holds bytes no transaction wrote")
            self.assertEqual(self.so_get(managed, 100), stored)
            outcomes["overwrite survived" if etag == md5(new) else "overwrite lost"] += 1
            if md5(stored) != etag:
                problems.append("iteration %d (%s last, %s): the row says %s, the key holds %r"
                                % (i, steps[-1].__name__, "signal" if i % 2 else "pg_ctl", text, stored))
            # Every committed row points at an existing object.
            for t in (managed, plain):
                for (row_id, name, exists) in FX.sql("SELECT id, so_filename(f), so_exists(f) FROM %s" % t):
                    self.assertTrue(exists, "%s row %d: so_exists false for %s" % (t, row_id, name))
                    self.assertIsNotNone(b.content(name), "%s row %d: %s missing in the store" % (t, row_id, name))
        print("  %s: %s (%s) ... " % (kind, ", ".join("%s %d" % kv for kv in outcomes.items()), " ".join(history)),
              end="")
        sys.stdout.flush()

        # The worker carries out what survived; nothing is lost or left over.
        self.settle()
        referenced = self.referenced(b, managed, plain)
        if kind == "local":
            self.assertEqual(b.reserved(), [], "leftovers before the sweeper")
            self.assertEqual(set(b.keys()), referenced)
        else:
            # A staged object whose commit a crash undid is an orphan (README).
            self.assertEqual(set(k for k in b.keys() if not k.startswith(".so-staging/")), referenced)
        staged = [k for k in b.keys() if k.startswith(".so-staging/")]
        evidence = self.xid_evidence([k.split("/")[1].split("-")[0] for k in staged])
        swept = FX.sql("SELECT so_filename(object), action FROM so_gc(%s, '0 seconds', dry_run => false)", (b.key,))
        for name, action in swept:
            self.assertTrue(name.startswith(".so-staging/") and kind == "s3",
                            "so_gc removed %s (%s): not an orphan of a crash" % (name, action))
        self.assertEqual(set(b.keys()) - set(staged), referenced)
        if b.reserved():
            problems.append("left after so_gc: %s (%s)" % (b.reserved(), evidence))
        name, etag, _, text = self.row(managed, 100)
        if md5(b.content(name)) != etag:
            problems.append("at the end: the row says %s, the key holds %r" % (text, b.content(name)))
        if problems:
            self.fail("the row's value and its key's content disagree:\n" + "\n".join(problems))

    def test_local(self):
        self.run_case("local")

    def test_s3(self):
        self.run_case("s3")


# ---- (b) kill -9 between the promotion and the commit ------------------------------

class KillAfterPromoteTest(CrashBase):
    """The committing backend dies after it promoted its overwrite and
    before its commit record: the transaction aborted, so the key must hold
    the old bytes again once recovery has run."""

    PAUSE_KEY = 731001

    @classmethod
    def setUpClass(cls):
        FX.sql("ALTER SYSTEM SET log_min_messages = 'debug1'")  # background worker starts and ends
        FX.sql("SELECT pg_reload_conf()")

    @classmethod
    def tearDownClass(cls):
        FX.sql("ALTER SYSTEM RESET log_min_messages")
        FX.sql("SELECT pg_reload_conf()")

    def park_overwrite(self, b, table, key, old, new):
        """Row 1 holds old at key; a session overwrites it with new and is
        parked after the promotion. Returns (session pid, background COMMIT,
        lock holder)."""
        self.table(table, True)
        self.put_row(table, 1, b, key, old)
        holder = FX.connect()
        FX.sql("SELECT pg_advisory_lock(%s)", (self.PAUSE_KEY,), holder)
        a = FX.connect()
        pid = FX.value("SELECT pg_backend_pid()", conn=a)
        FX.sql("SET stored_object.test_pause_after_promote = %s", (self.PAUSE_KEY,), a)
        FX.sql("BEGIN", conn=a)
        FX.sql("UPDATE %s SET f = so_put(%%s, %%s, %%s, overwrite => true) WHERE id = 1" % table,
               (b.key, key, psycopg2.Binary(new)), a)
        commit = FX.background(FX.sql, "COMMIT", None, a)
        wait_until(lambda: self.pause_lock_waiter(pid, self.PAUSE_KEY) or commit.done(), 20,
                   "the COMMIT to park after the promotion")
        self.assertFalse(commit.done(), "COMMIT did not park: %r" % (commit.error,))
        # Promoted, not committed: the key holds the new bytes, the row the old value.
        self.assertEqual(b.content(key), new)
        self.assertEqual(self.row(table, 1)[1], md5(old))
        return pid, commit, holder

    def tags(self, b):
        names = b.journal() + [os.path.basename(k) for k in b.reserved()]
        tags = set()
        for n in names:
            m = re.match(r"(?:\.so-(?:old|new)-)?(\d+)-", n)
            if m:
                tags.add(m.group(1))
        return sorted(tags)

    def kill_case(self, name, busy):
        b = self.backend("local", name)
        table = "k" + name
        old, new = b"old content", b"new content, never committed"
        pid, commit, _ = self.park_overwrite(b, table, "b/k.txt", old, new)
        self.assertEqual(len(b.journal()), 1, "one journal entry for the promotion")
        self.assertTrue(any(os.path.basename(k).startswith(".so-old-") for k in b.keys()), b.keys())
        tags = self.tags(b)
        if busy:
            # Other sessions commit meanwhile, which flushes the WAL that
            # the parked transaction wrote so far.
            FX.sql("CREATE TABLE %s_other (i int)" % table)
        database = FX.value("SELECT oid FROM pg_database WHERE datname = current_database()")
        offset = FX.kill_backend(pid)
        commit.join()
        self.assertIsNotNone(commit.error, "the killed COMMIT cannot have succeeded")
        self.assertEqual(self.row(table, 1)[1], md5(old), "the row keeps its old value")

        # The launcher starts a worker in every database once recovery is
        # over; its first run finishes the interrupted overwrite. (debug1:
        # the postmaster logs the worker's end.)
        ended = 'unregistering background worker "stored_object worker for database %d"' % database
        def after_restart():
            text = FX.cluster.log_text(offset)
            return text[text.find(READY, text.find(REINIT)):]
        wait_until(lambda: ended in after_restart(), 20, "the worker's first run after the restart")
        restored = b.content("b/k.txt") == old and not b.journal()
        evidence = "after the worker's first run: %s; %s" % (self.state(b), self.xid_evidence(tags))
        swept = FX.sql("SELECT so_filename(object), action FROM so_gc(%s, '0 seconds', dry_run => false)", (b.key,))
        evidence += "; after so_gc: %s" % self.state(b)
        self.assertEqual(swept, [], "so_gc found orphans after the recovery (%s)" % evidence)
        self.assertEqual(b.content("b/k.txt"), old, "the key does not hold the old bytes after recovery and so_gc "
                         "(%s)" % evidence)
        self.assertRowMatchesContent(table, 1, b)
        self.assertEqual(b.reserved(), [], "backup or staged leftovers")
        self.assertEqual(b.keys(), ["b/k.txt"])
        self.assertTrue(restored, "the worker's first run after the restart did not restore (%s)" % evidence)

    def test_local_busy_server(self):
        self.kill_case("b_busy", busy=True)

    def test_local_idle_server(self):
        # Nothing flushes the WAL of the parked transaction: after the
        # restart its transaction id is handed out again.
        self.kill_case("b_idle", busy=False)

    def test_local_sweeper_restores_without_worker(self):
        # The whole server crashes while the overwrite is parked, and comes
        # back without the library preloaded: no worker, so so_gc's own
        # recovery must put the backup back, never sweep it as an orphan,
        # also when other transactions committed since the restart.
        b = self.backend("local", "b2_local")
        old, new = b"old content 2", b"new content 2, never committed"
        _, commit, _ = self.park_overwrite(b, "kb2_local", "b/k.txt", old, new)
        tags = self.tags(b)
        try:
            FX.crash_and_restart("signal", preload=False)
            commit.join()
            self.assertIsNotNone(commit.error)
            self.assertEqual(self.row("kb2_local", 1)[1], md5(old), "the row keeps its old value")
            self.assertEqual(b.content("b/k.txt"), new, "nothing should have recovered without a worker yet")
            before = "right after the restart: %s; %s" % (self.state(b), self.xid_evidence(tags))
            # Applications go on: a transaction commits before anyone sweeps.
            FX.sql("CREATE TABLE after_crash (i int)")
            FX.sql("INSERT INTO after_crash VALUES (1)")
            evidence = "%s; after two unrelated commits: %s" % (before, self.xid_evidence(tags))
            # A dry run does not call the backup an orphan either: the real
            # run puts it back.
            listed = FX.sql("SELECT so_filename(object), action FROM so_gc(%s, '0 seconds')", (b.key,))
            self.assertFalse([s for s in listed if ".so-old-" in s[0]],
                             "a dry run lists the backup as an orphan: %s (%s)" % (listed, evidence))
            swept = FX.sql("SELECT so_filename(object), action FROM so_gc(%s, '0 seconds', dry_run => false)",
                           (b.key,))
            evidence += "; after so_gc: %s" % self.state(b)
            self.assertFalse([s for s in swept if ".so-old-" in s[0]],
                             "so_gc swept the backup away: %s (%s)" % (swept, evidence))
            self.assertEqual(b.content("b/k.txt"), old, "so_gc did not restore the old bytes (%s); it swept %s"
                             % (evidence, swept))
            self.assertRowMatchesContent("kb2_local", 1, b)
            self.assertEqual(b.reserved(), [], "backup or staged leftovers")
            self.assertEqual(b.keys(), ["b/k.txt"])
        finally:
            FX.close_connections()
            FX.cluster.restart(preload=True)
            FX.reconnect()

    def test_s3_key_keeps_new_bytes_and_sweeper_removes_staging(self):
        # README: "S3 cannot undo the copy: if the commit fails after it
        # (..., or a crash in that instant), the key keeps the new content
        # while the row keeps the old value. A staged object left by a crash
        # is an orphan so_gc removes."
        b = self.backend("s3", "b_s3")
        old, new = b"old s3 content", b"new s3 content, never committed"
        pid, commit, _ = self.park_overwrite(b, "kb_s3", "b/k.txt", old, new)
        staged = [k for k in b.keys() if k.startswith(".so-staging/")]
        self.assertEqual(len(staged), 1, b.keys())
        tags = [staged[0].split("/")[1].split("-")[0]]
        FX.kill_backend(pid)
        commit.join()
        self.assertIsNotNone(commit.error)
        self.assertEqual(self.row("kb_s3", 1)[1], md5(old), "the row keeps its old value")
        self.assertEqual(b.content("b/k.txt"), new, "S3 cannot restore (README): the key keeps the new bytes")
        self.assertEqual(self.so_get("kb_s3", 1), new)
        self.settle()
        evidence = "before so_gc: objects %s; %s" % (b.keys(), self.xid_evidence(tags))
        swept = FX.sql("SELECT so_filename(object), action FROM so_gc(%s, '0 seconds', dry_run => false)", (b.key,))
        evidence += "; after so_gc: objects %s" % b.keys()
        self.assertTrue(set(s[0] for s in swept) <= set(staged), "so_gc removed more than the staged object: %s"
                        % swept)
        self.assertEqual(b.keys(), ["b/k.txt"], "the staged object is left over after so_gc (%s)" % evidence)


# ---- (c) SERIALIZABLE: a serialization failure after the promotion ------------------

class SerializableUndoTest(CrashBase):
    """T1 (SERIALIZABLE) overwrites key K and is parked after its promotion;
    T2 overwrites K too and waits on the overwrite lock; T3, T1's write-skew
    partner, commits first, so T1 fails at commit with 40001 (PostgreSQL
    checks serializability after the pre-commit callbacks, i.e. after the
    promotion). T1's abort puts the original back, then T2 promotes and
    commits."""

    PAUSE_KEY = 731002

    def run_case(self, kind):
        b = self.backend(kind, "c_" + kind)
        table, skew = "kc_" + kind, "skew_" + kind
        key = "c/k.txt"
        orig, t1_bytes, t2_bytes = b"original", b"from T1, doomed", b"from T2, committed"
        self.table(table, True)
        self.put_row(table, 1, b, key, orig)
        FX.sql("INSERT INTO %s VALUES (2, NULL)" % table)
        FX.sql("CREATE TABLE %s (id int PRIMARY KEY, v int)" % skew)
        FX.sql("INSERT INTO %s VALUES (1, 0), (2, 0)" % skew)
        holder, t1, t2, t3 = FX.connect(), FX.connect(), FX.connect(), FX.connect()
        t1_pid = FX.value("SELECT pg_backend_pid()", conn=t1)
        t2_pid = FX.value("SELECT pg_backend_pid()", conn=t2)
        FX.sql("SELECT pg_advisory_lock(%s)", (self.PAUSE_KEY,), holder)
        released = False
        try:
            FX.sql("SET stored_object.test_pause_after_promote = %s", (self.PAUSE_KEY,), t1)
            # Write skew: each reads both rows, writes one.
            FX.sql("BEGIN ISOLATION LEVEL SERIALIZABLE", conn=t1)
            FX.sql("SELECT sum(v) FROM %s" % skew, conn=t1)
            FX.sql("BEGIN ISOLATION LEVEL SERIALIZABLE", conn=t3)
            FX.sql("SELECT sum(v) FROM %s" % skew, conn=t3)
            FX.sql("UPDATE %s SET v = v + 1 WHERE id = 1" % skew, conn=t1)
            FX.sql("UPDATE %s SET f = so_put(%%s, %%s, %%s, overwrite => true) WHERE id = 1" % table,
                   (b.key, key, psycopg2.Binary(t1_bytes)), t1)
            FX.sql("UPDATE %s SET v = v + 1 WHERE id = 2" % skew, conn=t3)

            c1 = FX.background(FX.sql, "COMMIT", None, t1)
            wait_until(lambda: self.pause_lock_waiter(t1_pid, self.PAUSE_KEY) or c1.done(), 20,
                       "T1's COMMIT to park after the promotion")
            self.assertFalse(c1.done(), "T1's COMMIT did not park: %r" % (c1.error,))
            self.assertEqual(b.content(key), t1_bytes, "T1 promoted")

            FX.sql("BEGIN", conn=t2)
            FX.sql("UPDATE %s SET f = so_put(%%s, %%s, %%s, overwrite => true) WHERE id = 2" % table,
                   (b.key, key, psycopg2.Binary(t2_bytes)), t2)
            c2 = FX.background(FX.sql, "COMMIT", None, t2)
            wait_until(lambda: self.overwrite_lock_waiter(t2_pid) or c2.done(), 20,
                       "T2's COMMIT to wait on the overwrite lock of the key")
            self.assertFalse(c2.done(), "T2 committed while T1 held the key: %r" % (c2.error,))
            self.assertEqual(b.content(key), t1_bytes, "T2 must not promote before T1 ends")

            FX.sql("COMMIT", conn=t3)  # the partner commits first: T1 is the pivot, doomed
            FX.sql("SELECT pg_advisory_unlock(%s)", (self.PAUSE_KEY,), holder)
            released = True
            c1.join()
            c2.join()
        finally:
            if not released:
                FX.sql("SELECT pg_advisory_unlock_all()", conn=holder)
        self.assertIsNotNone(c1.error, "T1 should fail at commit with a serialization failure")
        self.assertEqual(getattr(c1.error, "pgcode", None), "40001", "T1: %r" % (c1.error,))
        self.assertIn("during commit attempt", str(c1.error))  # after its promotion, not at a statement
        self.assertIsNone(c2.error, "T2: %r" % (c2.error,))

        # T1 left no trace: its row value and skew write are gone.
        self.assertEqual(self.row(table, 1)[1], md5(orig))
        self.assertEqual(FX.sql("SELECT id, v FROM %s ORDER BY id" % skew), [(1, 0), (2, 1)])
        # T2 won: the key holds its bytes and its row references them.
        self.assertEqual(b.content(key), t2_bytes)
        self.assertEqual(self.row(table, 2)[0], key)
        self.assertRowMatchesContent(table, 2, b)
        self.settle()
        self.assertEqual(b.reserved(), [], "leftovers of the two overwrites")
        self.assertEqual(b.keys(), [key])
        self.assertEqual(FX.value("SELECT count(*) FROM so_pending_deletes"), 0)
        swept = FX.sql("SELECT so_filename(object), action FROM so_gc(%s, '0 seconds', dry_run => true)", (b.key,))
        self.assertEqual(swept, [])

    def test_local(self):
        self.run_case("local")

    def test_s3(self):
        self.run_case("s3")


# ---- (d) without the preloaded library ---------------------------------------------

class WithoutPreloadTest(CrashBase):
    """Restarted with shared_preload_libraries = '': no worker."""

    @classmethod
    def setUpClass(cls):
        FX.close_connections()
        FX.cluster.restart(preload=False)
        FX.reconnect()
        cls.b = FX.register_local("d_local")

    @classmethod
    def tearDownClass(cls):
        FX.close_connections()
        FX.cluster.restart(preload=True)
        FX.reconnect()

    def warnings(self, conn):
        return [n for n in conn.notices if n.startswith("WARNING:") and NO_WORKER_WARNING in n]

    def test_so_delete_warns_once_and_waits_for_process_pending(self):
        self.table("pd", False)
        for i in (1, 2):
            self.put_row("pd", i, self.b, "d/p%d.txt" % i, b"plain %d" % i)
        s = FX.connect()
        FX.sql("BEGIN", conn=s)
        FX.sql("SELECT so_delete(f) FROM pd WHERE id = 1", conn=s)
        self.assertEqual(len(self.warnings(s)), 1, s.notices)
        self.assertIn("so_pending_deletes", self.warnings(s)[0])
        FX.sql("SELECT so_delete(f) FROM pd WHERE id = 2", conn=s)
        FX.sql("DELETE FROM pd", conn=s)
        FX.sql("COMMIT", conn=s)
        FX.sql("BEGIN", conn=s)
        FX.sql("SELECT so_delete(so_put('d_local', 'd/p3.txt', 'plain 3'))", conn=s)
        FX.sql("COMMIT", conn=s)
        self.assertEqual(len(self.warnings(s)), 1, "once per session: %s" % s.notices)

        # Committed, queued, not carried out.
        self.assertEqual(sorted(r[0] for r in FX.sql("SELECT so_filename(object) FROM so_pending_deletes")),
                         ["d/p1.txt", "d/p2.txt", "d/p3.txt"])
        self.assertEqual(self.b.content("d/p1.txt"), b"plain 1")
        started = time.monotonic()
        self.assertFalse(FX.value("SELECT so_wait_for_worker('30 seconds')"))
        self.assertLess(time.monotonic() - started, 2, "so_wait_for_worker must return false at once")
        self.assertEqual(FX.value("SELECT count(*) FROM so_pending_deletes"), 3)
        self.assertEqual(FX.sql("SELECT * FROM so_process_pending()"), [(3, 0, 0, 0)])
        self.assertEqual(FX.value("SELECT count(*) FROM so_pending_deletes"), 0)
        self.assertEqual(self.b.keys(), [])
        # Another session is warned again, once.
        s2 = FX.connect()
        self.put_row("pd", 4, self.b, "d/p4.txt", b"plain 4")
        self.put_row("pd", 5, self.b, "d/p5.txt", b"plain 5")
        FX.sql("SELECT so_delete(f) FROM pd WHERE id = 4", conn=s2)
        FX.sql("SELECT so_delete(f) FROM pd WHERE id = 5", conn=s2)
        self.assertEqual(len(self.warnings(s2)), 1, s2.notices)
        FX.sql("DELETE FROM pd")
        self.assertEqual(FX.sql("SELECT * FROM so_process_pending()"), [(2, 0, 0, 0)])
        self.assertEqual(self.b.keys(), [])

    def test_process_pending_when_the_wal_ends_at_a_page_start(self):
        # so_process_pending makes the commits it saw durable before it
        # deletes. Flushing all WAL inserted so far must work when it ends
        # exactly at a page boundary, where "the next record's position" is
        # past a page header nobody wrote (one run in a few hundred hit it).
        # The test hook fills the page up to there before the flush.
        self.table("pw", False)
        s = FX.connect()
        FX.sql("SET stored_object.test_pad_wal_to_page_start = on", conn=s)
        FX.sql("SET synchronous_commit = off", conn=s)
        hit = False
        for attempt in range(1, 6):  # another backend's WAL may land in between
            key = "d/page-start-%d.txt" % attempt
            self.put_row("pw", attempt, self.b, key, b"page start")
            FX.sql("BEGIN", conn=s)
            FX.sql("SELECT so_delete(f) FROM pw WHERE id = %s", (attempt,), conn=s)
            FX.sql("DELETE FROM pw WHERE id = %s", (attempt,), conn=s)
            FX.sql("COMMIT", conn=s)
            del s.notices[:]
            self.assertEqual(FX.sql("SELECT * FROM so_process_pending()", conn=s), [(1, 0, 0, 0)])
            self.assertIsNone(self.b.content(key))
            if any("the next WAL record starts a page" in n for n in s.notices):
                hit = True
                break
        self.assertTrue(hit, "the hook never ended the WAL at a page start")
        self.assertEqual(FX.value("SELECT count(*) FROM so_pending_deletes"), 0)

    def test_operation_statistics_are_per_session(self):
        # No shared memory: each session sees what it counted itself.
        s, s2 = FX.connect(), FX.connect()
        FX.sql("SELECT so_put('d_local', 'd/stats.txt', 'counted')", conn=s)
        FX.sql("SELECT so_get(so_stat('d_local', 'd/stats.txt'))", conn=s)
        rows = FX.sql("SELECT operation, calls, bytes_read, bytes_written FROM so_operation_stats "
                      "WHERE backend = 'd_local' ORDER BY operation", conn=s)
        self.assertEqual(rows, [("get", 1, 7, 0), ("put", 1, 0, 7), ("stat", 1, 0, 0)])
        self.assertEqual(FX.sql("SELECT * FROM so_operation_stats WHERE backend = 'd_local'", conn=s2), [])
        FX.sql("SELECT so_operation_stats_reset()", conn=s)
        self.assertEqual(FX.value("SELECT count(*) FROM so_operation_stats WHERE calls > 0", conn=s), 0)
        FX.sql("SELECT so_delete(so_stat('d_local', 'd/stats.txt'))", conn=s)
        FX.sql("SELECT so_process_pending()", conn=s)

    def test_aborted_s3_put_left_for_the_sweeper_with_a_warning(self):
        # No network I/O in an abort: without a worker to take the undo,
        # the object stays, a WARNING says so, and so_gc removes it.
        s3 = self.backend("s3", "d_s3")
        s = FX.connect()
        FX.sql("BEGIN", conn=s)
        FX.sql("SELECT so_put('d_s3', 'left/aborted.txt', 'x')", conn=s)
        del s.notices[:]
        FX.sql("ROLLBACK", conn=s)
        left = [n for n in s.notices if "so_gc removes it" in n]
        self.assertEqual(len(left), 1, s.notices)
        self.assertIn("left/aborted.txt", left[0])
        self.assertEqual(s3.content("left/aborted.txt"), b"x")
        swept = FX.sql("SELECT so_filename(object), action FROM so_gc('d_s3', '0 seconds', dry_run => false)")
        self.assertEqual(swept, [("left/aborted.txt", "deleted")])
        self.assertIsNone(s3.content("left/aborted.txt"))

    def test_managed_delete_warns_once_and_waits_for_process_pending(self):
        self.table("md", True)
        for i in (1, 2):
            self.put_row("md", i, self.b, "d/m%d.txt" % i, b"managed %d" % i)
        s = FX.connect()
        FX.sql("DELETE FROM md WHERE id = 1", conn=s)
        FX.sql("DELETE FROM md WHERE id = 2", conn=s)
        queued = sorted(r[0] for r in FX.sql("SELECT so_filename(object) FROM so_pending_deletes"))
        self.assertEqual(queued, ["d/m1.txt", "d/m2.txt"])
        self.assertEqual(self.b.content("d/m1.txt"), b"managed 1")
        self.assertFalse(FX.value("SELECT so_wait_for_worker('30 seconds')"))
        self.assertEqual(FX.sql("SELECT * FROM so_process_pending()"), [(2, 0, 0, 0)])
        self.assertEqual(self.b.keys(), [])
        # Last: what fails here is the warning alone.
        self.assertEqual(len(self.warnings(s)), 1, "a managed delete committed without a worker should warn once "
                         "per session; notices: %s" % s.notices)


if __name__ == "__main__":
    sys.exit(runner.run(FX.name, FX, [AsyncCommitCrashTest, KillAfterPromoteTest, SerializableUndoTest,
                                      WithoutPreloadTest], FX.leftovers))
