#!/usr/bin/python3
"""System test: stored_object on a hot standby, after a failover, and behind
pgbouncer in transaction pooling mode.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_standby_and_pooling.py

with PGHOST/PGPORT/PGUSER naming a running cluster (stored_object installed
and in shared_preload_libraries, unix socket, trust authentication, local
replication allowed: scripts/cluster.sh makes one), SO_TEST_TMPDIR a
directory the postgres user owns, and the S3 fixture's variables exported
(S3_ENDPOINT, S3_ACCESS_KEY_ID, ...; see tests/system/s3support.py).
Debian's pgbouncer must be installed (scripts/install-deps.sh).

* Hot standby: a streaming replica made with pg_basebackup -R from the test
  cluster, with the same options (stored_object preloaded). On it so_get,
  so_exists, so_stat, so_sign (S3 and local) and so_verify_url give the
  primary's answers; so_put, so_delete, so_copy, so_process_pending and
  deletes of managed rows are refused with 25006 and store nothing; the
  extension's background worker does not run there, its server log holds no
  error but the ones the test provoked, and queued deletes stay untouched.
* Failover: deletes queued on the primary that its worker cannot carry out
  (the S3 fixture answers DeleteObject with 500) wait in the queue; the
  primary stops; on the standby they become due and still nothing happens;
  after pg_ctl promote the promoted server's own worker carries them out
  (boto3 sees the objects gone). The primary is started again afterwards.
* pgbouncer (pool_mode = transaction, several server connections used in
  turn): consecutive transactions of one client land on different server
  sessions, and puts, rollbacks, so_delete, managed row deletes and
  overwrites behave as on direct connections, on S3 and local storage.

The replica, pgbouncer and every directory are removed at the end, whatever
happens. The last line of output is "N passed, N failed"; the exit status is
non-zero on any failure.
"""

import ctypes
import hashlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import unittest
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3support  # noqa: E402
import runner  # noqa: E402
from s3support import delta  # noqa: E402

import psycopg2  # noqa: E402
import psycopg2.extensions  # noqa: E402

PG_BIN = "/usr/lib/postgresql/15/bin"
PGBOUNCER = "/usr/sbin/pgbouncer"
IS_ROOT = os.geteuid() == 0
# The options scripts/cluster.sh starts the test cluster with.
SERVER_OPTIONS = ["-c", "listen_addresses=", "-c", "fsync=off", "-c", "max_prepared_transactions=5",
                  "-c", "shared_preload_libraries=stored_object"]
# A log line of a problem (default log_line_prefix '%m [%p] ').
PROBLEM_LINE = re.compile(r"\b(WARNING|ERROR|FATAL|PANIC):\s+(.*)$")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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


def give_to_postgres(path):
    if IS_ROOT:
        shutil.chown(path, "postgres", "postgres")


def die_with_parent():
    """In the child before exec (after it became postgres): SIGTERM when this
    process dies, so that even a killed test leaves no pgbouncer behind."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def wait_until(predicate, timeout, what, interval=0.05):
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


def postmaster_pid(datadir):
    try:
        with open(os.path.join(datadir, "postmaster.pid")) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def log_problems(text, allowed=()):
    """WARNING/ERROR/FATAL/PANIC lines of a server log, but those whose
    message matches one of the allowed regular expressions."""
    problems = []
    for line in text.splitlines():
        m = PROBLEM_LINE.search(line)
        if m and not any(re.search(a, m.group(2)) for a in allowed):
            problems.append(line)
    return problems


class Server:
    """A PostgreSQL server of this test: where it listens and how to reach it."""

    def __init__(self, datadir, sockdir, port, log):
        self.datadir, self.sockdir, self.port, self.log = datadir, sockdir, port, log

    def connect(self, dbname, autocommit=True):
        c = psycopg2.connect(host=self.sockdir, port=self.port, user="postgres", dbname=dbname,
                             connect_timeout=10)
        c.autocommit = autocommit
        return c

    def running(self):
        pid = postmaster_pid(self.datadir)
        return pid is not None and pid_alive(pid)

    def stop(self):
        if os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
            as_postgres([PG_BIN + "/pg_ctl", "-D", self.datadir, "-m", "fast", "-w", "-t", "60", "stop"],
                        check=False)

    def log_text(self, offset=0):
        try:
            with open(self.log, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log)
        except FileNotFoundError:
            return 0


class Fixture(s3support.Fixture):
    """s3support's database, prefix and clients, plus: a local backend in a
    directory of this test, the primary's own description (to stop and start
    it again), a streaming replica and a pgbouncer."""

    def __init__(self):
        super().__init__("standby")
        self.tmp = None
        self.primary = None
        self.replica = None
        self.bouncer = None
        self.bouncer_port = None
        self.bouncer_dir = None
        self.primary_opts = None
        self.replica_connections = []

    # ---- setup --------------------------------------------------------------

    def start(self):
        base = os.environ.get("SO_TEST_TMPDIR") or None
        self.tmp = tempfile.mkdtemp(prefix="so-standby-", dir=base)
        os.chmod(self.tmp, 0o755)
        give_to_postgres(self.tmp)
        self.files = os.path.join(self.tmp, "files")  # the local backend's directory
        super().start()
        datadir = self.value("SHOW data_directory", conn=self.admin)
        sockdir = os.environ.get("PGHOST") or self.value("SHOW unix_socket_directories",
                                                         conn=self.admin).split(",")[0].strip()
        port = int(self.value("SHOW port", conn=self.admin))
        log = os.path.join(os.path.dirname(datadir), "server.log")  # scripts/cluster.sh's
        if not os.path.exists(log):
            log = os.path.join(self.tmp, "primary.log")
        self.primary = Server(datadir, sockdir, port, log)
        # The command line the primary runs with, to start it again after the failover.
        with open(os.path.join(datadir, "postmaster.opts")) as f:
            self.primary_opts = shlex.split(f.read())[1:]
        i = self.primary_opts.index("-D")
        del self.primary_opts[i:i + 2]

        self.s3_prefix = self.register("s3", "s3")
        self.sql("SELECT so_register_backend('local', %s, %s)",
                 ("file://" + self.files, '{"base_url": "https://files.example.com/media"}'))
        self.sql("CREATE TABLE docs (id int PRIMARY KEY, title text, f stored_object)")
        self.sql("CREATE INDEX ON docs (f)")
        self.sql("SELECT so_manage_column('docs', 'f')")

    # ---- the primary --------------------------------------------------------

    def stop_primary(self):
        self.close_connections()
        if self.admin is not None:
            try:
                self.admin.close()
            except Exception:
                pass
            self.admin = None
        self.primary.stop()
        if self.primary.running():
            raise RuntimeError("the primary did not stop")

    def start_primary(self):
        """Starts the primary again as it ran, and reconnects the fixture."""
        if not self.primary.running():
            as_postgres([PG_BIN + "/pg_ctl", "-D", self.primary.datadir, "-l", self.primary.log, "-w",
                         "-t", "60", "-o", shlex.join(self.primary_opts), "start"])
        if self.admin is None or self.admin.closed:
            self.admin = psycopg2.connect(dbname="postgres")
            self.admin.autocommit = True
        if self.conn is None or self.conn.closed:
            self.close_connections()
            if self.created_db:
                self.conn = self.connect()

    # ---- the replica --------------------------------------------------------

    def make_replica(self):
        """pg_basebackup -R of the primary, started as a hot standby on its own
        port and socket directory; returns once it accepts connections."""
        datadir = os.path.join(self.tmp, "replica")
        sockdir = os.path.join(self.tmp, "replica-sock")
        os.mkdir(sockdir, 0o755)
        give_to_postgres(sockdir)
        replica = Server(datadir, sockdir, free_port(), os.path.join(self.tmp, "replica.log"))
        as_postgres([PG_BIN + "/pg_basebackup", "-h", self.primary.sockdir, "-p", str(self.primary.port),
                     "-U", "postgres", "-D", datadir, "-R", "-X", "stream", "-c", "fast", "--no-sync"])
        self.replica = replica
        as_postgres([PG_BIN + "/pg_ctl", "-D", datadir, "-l", replica.log, "-w", "-t", "60", "-o",
                     shlex.join(["-p", str(replica.port), "-k", sockdir] + SERVER_OPTIONS), "start"])
        return replica

    def replica_connect(self, dbname=None):
        c = self.replica.connect(dbname or self.dbname)
        self.replica_connections.append(c)
        return c

    def wait_for_replay(self, timeout=30):
        """Until the replica has replayed everything the primary has written."""
        target = self.value("SELECT pg_current_wal_lsn()::text", conn=self.admin)
        c = self.replica.connect("postgres")
        try:
            wait_until(lambda: self.value("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,), conn=c),
                       timeout, "the replica to replay up to %s" % target)
        finally:
            c.close()

    def stop_replica(self):
        for c in self.replica_connections:
            try:
                c.close()
            except Exception:
                pass
        self.replica_connections = []
        if self.replica is not None:
            self.replica.stop()

    # ---- pgbouncer ----------------------------------------------------------

    def start_bouncer(self, pool_size=3):
        d = self.bouncer_dir = os.path.join(self.tmp, "pgbouncer")
        os.mkdir(d, 0o755)
        give_to_postgres(d)
        self.bouncer_port = free_port()
        with open(os.path.join(d, "userlist.txt"), "w") as f:
            f.write('"postgres" ""\n')
        ini = os.path.join(d, "pgbouncer.ini")
        with open(ini, "w") as f:
            f.write("""[databases]
* = host={sock} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {bport}
unix_socket_dir =
auth_type = trust
auth_file = {d}/userlist.txt
pool_mode = transaction
default_pool_size = {pool}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 100
; idle server connections are handed out oldest first, so consecutive
; transactions of one client go to different server sessions
server_round_robin = 1
server_lifetime = 3600
server_idle_timeout = 600
logfile = {d}/pgbouncer.log
pidfile = {d}/pgbouncer.pid
admin_users = postgres
ignore_startup_parameters = extra_float_digits
""".format(sock=self.primary.sockdir, port=self.primary.port, bport=self.bouncer_port, d=d,
                pool=pool_size))
        for name in ("userlist.txt", "pgbouncer.ini"):
            give_to_postgres(os.path.join(d, name))
        out = open(os.path.join(d, "stderr.log"), "wb")
        kwargs = dict(user="postgres", group="postgres", extra_groups=[]) if IS_ROOT else {}
        self.bouncer = subprocess.Popen([PGBOUNCER, ini], cwd="/", stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=out, preexec_fn=die_with_parent, **kwargs)
        out.close()

        def up():
            if self.bouncer.poll() is not None:
                raise RuntimeError("pgbouncer exited with %s:\n%s" % (self.bouncer.returncode, self.bouncer_log()))
            try:
                socket.create_connection(("127.0.0.1", self.bouncer_port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(up, 15, "pgbouncer to listen")

    def bouncer_connect(self):
        c = psycopg2.connect(host="127.0.0.1", port=self.bouncer_port, user="postgres", dbname=self.dbname,
                             connect_timeout=10)
        c.autocommit = True
        self.connections.append(c)
        return c

    def bouncer_log(self):
        text = ""
        for name in ("stderr.log", "pgbouncer.log"):
            try:
                with open(os.path.join(self.bouncer_dir, name), "rb") as f:
                    text += f.read().decode(errors="replace")
            except OSError:
                pass
        return text

    def stop_bouncer(self):
        if self.bouncer is None:
            return
        # Its clients first: pgbouncer's shutdown does not wait for them.
        for c in list(self.connections):
            if c.dsn and "port=%d" % self.bouncer_port in c.dsn:
                try:
                    c.close()
                except Exception:
                    pass
                self.connections.remove(c)
        if self.bouncer.poll() is None:
            self.bouncer.terminate()  # SIGTERM: immediate shutdown
            try:
                self.bouncer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.bouncer.kill()
                self.bouncer.wait()

    # ---- teardown -------------------------------------------------------------

    def stop(self):
        for step in (self.reset_faults, self.stop_bouncer, self.stop_replica, self.start_primary):
            try:
                if self.primary is not None or step != self.start_primary:
                    step()
            except Exception:
                traceback.print_exc(file=sys.stdout)
        super().stop()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def leftovers(self):
        left = []
        if self.created_db:
            left.append("database %s remains" % self.dbname)
        if self.replica is not None and self.replica.running():
            left.append("the replica (pid %s) still runs" % postmaster_pid(self.replica.datadir))
        if self.bouncer is not None and self.bouncer.poll() is None:
            left.append("pgbouncer (pid %d) still runs" % self.bouncer.pid)
        if self.primary is not None and not self.primary.running():
            left.append("the test cluster was left stopped")
        if self.tmp and os.path.exists(self.tmp):
            left.append(self.tmp + " remains")
        return left


FX = Fixture()


class Base(s3support.SqlAssertions, unittest.TestCase):
    FX = FX

    def s3key(self, key):
        return FX.s3_prefix + key

    def in_s3(self, key):
        return FX.head(self.s3key(key)) is not None

    def local_path(self, key):
        return os.path.join(FX.files, key)

    def local_bytes(self, key):
        with open(self.local_path(key), "rb") as f:
            return f.read()

    def stored(self, backend, key):
        """The bytes under key, read by independent means (boto3, the file
        system), or None."""
        if backend == "s3":
            return FX.get_bytes(self.s3key(key)) if self.in_s3(key) else None
        p = self.local_path(key)
        return self.local_bytes(key) if os.path.exists(p) else None

    def put(self, conn, backend, key, content, overwrite=False):
        return FX.value("SELECT so_put(%s, %s, %s, overwrite => %s)::text",
                        (backend, key, psycopg2.Binary(content), overwrite), conn)

    def get(self, conn, obj):
        return bytes(FX.value("SELECT so_get(%s::stored_object)", (obj,), conn))


# ---------------------------------------------------------------------------
# Part 1: a hot standby, and a failover to it
# ---------------------------------------------------------------------------

class StandbyBase(Base):
    ready = False
    s3_content = b"S3 object read on the standby\n" * 40
    local_content = "local file, ü, read on the standby\n".encode() * 30

    @classmethod
    def setUpClass(cls):
        if StandbyBase.ready:
            return
        StandbyBase.ready = True
        FX.make_replica()
        # Written after the base backup: reaches the replica by streaming.
        p = FX.conn
        StandbyBase.s3_obj = FX.value("SELECT so_put('s3', 'hs/a.bin', %s, metadata => '{\"owner\": \"ann\"}')::text",
                                      (psycopg2.Binary(StandbyBase.s3_content),), p)
        StandbyBase.local_obj = FX.value("SELECT so_put('local', 'hs/b.txt', %s)::text",
                                         (psycopg2.Binary(StandbyBase.local_content),), p)
        FX.sql("INSERT INTO docs VALUES (1, 's3 row', so_put('s3', 'hs/row1.bin', 'row one'::bytea)), "
               "(2, 'local row', so_put('local', 'hs/row2.txt', 'row two'::bytea)), "
               "(3, 's3 row to fail over', so_put('s3', 'hs/row3.bin', 'row three'::bytea))", conn=p)
        assert FX.value("SELECT so_wait_for_worker('1 minute')", conn=p)
        FX.wait_for_replay()
        StandbyBase.r = FX.replica_connect()

    def both(self, query, args=None):
        """The same query on the primary and on the replica."""
        return FX.sql(query, args, FX.conn), FX.sql(query, args, self.r)


class StandbyReadTest(StandbyBase):
    """Reading, signing and verifying on a hot standby: the primary's answers."""

    provoked = []  # messages of the errors this test provoked on the replica

    def replica_error(self, sqlstate, query, args=None):
        e = self.assertSqlError(sqlstate, query, args, conn=self.r)
        StandbyReadTest.provoked.append(re.escape(e.diag.message_primary))
        return e

    def test_01_replica_is_a_hot_standby_without_worker(self):
        self.assertTrue(FX.value("SELECT pg_is_in_recovery()", conn=self.r))
        self.assertEqual(FX.value("SELECT current_setting('shared_preload_libraries')", conn=self.r),
                         "stored_object")
        self.assertEqual(*[v[0][0] for v in self.both(
            "SELECT extversion FROM pg_extension WHERE extname = 'stored_object'")])
        primary, replica = self.both("SELECT key, scheme, url, options, secrets_set FROM so_backend_info ORDER BY key")
        self.assertEqual(primary, replica)
        self.assertEqual([k for k, *_ in replica], ["local", "s3"])
        # No launcher, no worker: bgw_start_time is RecoveryFinished.
        self.assertEqual(FX.sql("SELECT backend_type FROM pg_stat_activity WHERE backend_type LIKE 'stored_object%'",
                                conn=self.r), [])
        # The primary has its launcher.
        self.assertIn(("stored_object launcher",),
                      FX.sql("SELECT backend_type FROM pg_stat_activity", conn=FX.admin))

    def test_02_get_exists_stat_match_primary(self):
        for obj, content in ((self.s3_obj, self.s3_content), (self.local_obj, self.local_content)):
            with self.subTest(obj=obj):
                primary, replica = self.both(
                    "SELECT so_get(o), so_get(o, 5, 17), so_exists(o), so_stat(so_backend(o), so_filename(o))::text, "
                    "so_size(o), so_etag(o), so_checksum(o), so_metadata(o) FROM (SELECT %s::stored_object AS o) s",
                    (obj,))
                self.assertEqual(primary, replica)
                row = replica[0]
                self.assertEqual(bytes(row[0]), content)
                self.assertEqual(bytes(row[1]), content[5:22])
                self.assertTrue(row[2])
                self.assertEqual(row[6], hashlib.sha256(content).hexdigest())
        # so_stat agrees with what was stored and with independent readers.
        stat = FX.value("SELECT so_stat('s3', 'hs/a.bin')::text", conn=self.r)
        self.assertEqual(FX.value("SELECT so_etag(%s::stored_object)", (stat,), self.r),
                         FX.head(self.s3key("hs/a.bin"))["ETag"].strip('"'))
        self.assertEqual(FX.value("SELECT so_metadata(%s::stored_object)", (stat,), self.r), {"owner": "ann"})
        self.assertEqual(FX.value("SELECT so_checksum(so_stat('local', 'hs/b.txt'))", conn=self.r),
                         hashlib.sha256(self.local_content).hexdigest())
        # Managed rows read the same.
        primary, replica = self.both("SELECT id, so_get(f), so_exists(f) FROM docs ORDER BY id")
        self.assertEqual([(i, bytes(b), e) for i, b, e in primary], [(i, bytes(b), e) for i, b, e in replica])
        self.assertEqual([bytes(b) for _, b, _ in replica], [b"row one", b"row two", b"row three"])
        # Missing objects: false, and 58P01 on both.
        for backend in ("s3", "local"):
            missing = '{"backend":"%s","filename":"hs/missing.bin"}' % backend
            primary, replica = self.both("SELECT so_exists(%s::stored_object)", (missing,))
            self.assertEqual(primary, [(False,)])
            self.assertEqual(replica, [(False,)])
            self.assertSqlError("58P01", "SELECT so_get(%s::stored_object)", (missing,), conn=FX.conn)
            self.replica_error("58P01", "SELECT so_get(%s::stored_object)", (missing,))
            self.replica_error("58P01", "SELECT so_stat(%s, 'hs/missing.bin')", (backend,))

    def test_03_local_sign_and_verify_match_primary(self):
        primary_url = FX.value("SELECT so_sign(%s::stored_object, '10 minutes')", (self.local_obj,), FX.conn)
        replica_url = FX.value("SELECT so_sign(%s::stored_object, '10 minutes')", (self.local_obj,), self.r)
        self.assertTrue(replica_url.startswith("https://files.example.com/media/hs/b.txt?"), replica_url)
        self.assertEqual(primary_url.split("?")[0], replica_url.split("?")[0])
        # The same secret on both: each verifies the other's URL.
        for url in (primary_url, replica_url):
            for conn in (FX.conn, self.r):
                self.assertTrue(FX.value("SELECT so_verify_url(%s)", (url,), conn), url)
                self.assertFalse(FX.value("SELECT so_verify_url(%s, 'PUT')", (url,), conn), url)
        tampered = replica_url.replace("hs/b.txt", "hs/c.txt")
        self.assertEqual(self.both("SELECT so_verify_url(%s)", (tampered,)), ([(False,)], [(False,)]))
        # Upload URLs signed on the replica verify for PUT on the primary.
        upload = FX.value("SELECT so_sign(%s::stored_object, '5 minutes', for_upload => true)", (self.local_obj,),
                          self.r)
        self.assertTrue(FX.value("SELECT so_verify_url(%s, 'PUT')", (upload,), FX.conn))
        self.assertFalse(FX.value("SELECT so_verify_url(%s, 'GET')", (upload,), FX.conn))
        # The expiry is the replica's statement time plus the interval.
        expires = int(urllib.parse.parse_qs(urllib.parse.urlsplit(replica_url).query)["expires"][0])
        self.assertLess(abs(expires - (time.time() + 600)), 120)

    def test_04_s3_presigned_urls_match_primary(self):
        urls = [FX.value("SELECT so_sign(%s::stored_object, '10 minutes', download_as => 'report.bin')",
                         (self.s3_obj,), c) for c in (FX.conn, self.r)]
        parsed = [urllib.parse.urlsplit(u) for u in urls]
        self.assertEqual(parsed[0][:3], parsed[1][:3])  # scheme, authority, path
        queries = [urllib.parse.parse_qs(p.query) for p in parsed]
        for q in queries:
            q.pop("X-Amz-Date")
            q.pop("X-Amz-Signature")
            q["X-Amz-Credential"] = [re.sub(r"/\d{8}/", "/DATE/", q["X-Amz-Credential"][0])]
        self.assertEqual(queries[0], queries[1])
        # Both fetch the object from the store (the fixture checks the signature).
        for url in urls:
            with urllib.request.urlopen(url, timeout=30) as resp:
                self.assertEqual(resp.read(), self.s3_content)
                self.assertIn("report.bin", resp.headers.get("Content-Disposition", ""))

    def test_05_writes_refused_with_25006(self):
        before = FX.control.stats()
        for backend in ("s3", "local"):
            with self.subTest(backend=backend):
                for overwrite in (False, True):
                    e = self.replica_error("25006", "SELECT so_put(%s, 'hs/new.bin', 'nope'::bytea, overwrite => %s)",
                                           (backend, overwrite))
                    self.assertIn("so_put", e.diag.message_primary)
                self.assertIsNone(self.stored(backend, "hs/new.bin"))
                # Overwriting an existing key: refused, the old content stays.
                self.replica_error("25006", "SELECT so_put(%s, %s, 'nope'::bytea, overwrite => true)",
                                   (backend, "hs/a.bin" if backend == "s3" else "hs/b.txt"))
        for obj in (self.s3_obj, self.local_obj):
            e = self.replica_error("25006", "SELECT so_delete(%s::stored_object)", (obj,))
            self.assertIn("so_delete", e.diag.message_primary)
            self.replica_error("25006", "SELECT so_copy(%s::stored_object, 'local', 'hs/copy.bin')", (obj,))
        self.replica_error("25006", "SELECT * FROM so_process_pending()")
        # A managed row's delete: PostgreSQL's own refusal; nothing queued.
        self.replica_error("25006", "DELETE FROM docs WHERE id = 1")
        self.assertEqual(self.stored("s3", "hs/a.bin"), self.s3_content)
        self.assertEqual(self.stored("local", "hs/b.txt"), self.local_content)
        self.assertEqual(self.stored("s3", "hs/row1.bin"), b"row one")
        self.assertIsNone(self.stored("local", "hs/copy.bin"))
        d = delta(before, FX.control.stats())
        for op in ("op:PutObject", "op:DeleteObject", "op:CopyObject", "op:CreateMultipartUpload"):
            self.assertNotIn(op, d, d)
        # On the primary, a read-only transaction refuses them the same way.
        FX.sql("BEGIN READ ONLY", conn=FX.conn)
        self.assertSqlError("25006", "SELECT so_put('s3', 'hs/ro.bin', 'x'::bytea)", conn=FX.conn)
        FX.sql("ROLLBACK", conn=FX.conn)
        FX.sql("BEGIN READ ONLY", conn=FX.conn)
        self.assertSqlError("25006", "SELECT so_delete(%s::stored_object)", (self.local_obj,), conn=FX.conn)
        FX.sql("ROLLBACK", conn=FX.conn)
        self.assertIsNone(self.stored("s3", "hs/ro.bin"))
        # The session on the replica goes on.
        self.assertEqual(self.get(self.r, self.local_obj), self.local_content)

    def test_06_queue_and_wait_on_the_standby(self):
        primary, replica = self.both("SELECT id, object::text, attempts, next_attempt_at FROM so_pending_deletes "
                                     "ORDER BY id")
        self.assertEqual(primary, replica)
        # No worker runs on a standby: false at once, no waiting, no error.
        started = time.monotonic()
        self.assertFalse(FX.value("SELECT so_wait_for_worker('10 seconds')", conn=self.r))
        self.assertLess(time.monotonic() - started, 5)

    def test_07_replica_log_clean(self):
        text = FX.replica.log_text()  # the whole log, from its start
        allowed = list(StandbyReadTest.provoked)
        self.assertEqual(log_problems(text, allowed), [], "unexpected problems in the replica's log")
        self.assertNotRegex(text, r'background worker "stored_object[^"]*" .*exited with exit code [1-9]')


class FailoverTest(StandbyBase):
    """Deletes queued on the primary that its worker could not carry out
    wait on the standby, and are carried out by the promoted server's worker."""

    def test_failover_worker_takes_over(self):
        p, r = FX.conn, self.r
        log_offset = FX.replica.log_size()
        s3_obj = FX.value("SELECT so_put('s3', 'hs/fail-over.bin', 'deleted after the failover'::bytea)::text",
                          conn=p)
        # The store answers every DeleteObject with 500 (until reset): the
        # primary's worker tries and leaves the rows queued for a retry.
        FX.control.add_fault({"mode": "error", "status": 500, "count": -1, "method": "DELETE",
                              "operation": "DeleteObject"})
        before = FX.control.stats()
        FX.sql("BEGIN", conn=p)
        FX.sql("SELECT so_delete(%s::stored_object)", (s3_obj,), p)
        FX.sql("DELETE FROM docs WHERE id = 3", conn=p)  # managed: hs/row3.bin
        FX.sql("COMMIT", conn=p)

        def attempted():
            rows = FX.sql("SELECT so_filename(object), attempts, last_error FROM so_pending_deletes ORDER BY id",
                          conn=p)
            return rows if len(rows) == 2 and all(attempts >= 1 for _, attempts, _ in rows) else None
        rows = wait_until(attempted, 30, "the primary's worker to fail its first attempt")
        self.assertEqual(sorted(key for key, _, _ in rows), ["hs/fail-over.bin", "hs/row3.bin"])
        for _, _, last_error in rows:
            self.assertIn("InternalError", last_error or "")
        d = delta(before, FX.control.stats())
        self.assertGreaterEqual(d.get("fault:error", 0), 2, d)
        self.assertTrue(self.in_s3("hs/fail-over.bin"))
        self.assertTrue(self.in_s3("hs/row3.bin"))

        FX.wait_for_replay()
        queue = "SELECT id, object::text, attempts, last_error, next_attempt_at FROM so_pending_deletes ORDER BY id"
        primary_queue = FX.sql(queue, conn=p)
        self.assertEqual(FX.sql(queue, conn=r), primary_queue)

        try:
            FX.stop_primary()
            FX.reset_faults()  # from now on a delete would succeed
            # While a standby, the rows become due and nothing happens.
            wait_until(lambda: FX.value("SELECT now() > max(next_attempt_at) + interval '1 second' "
                                        "FROM so_pending_deletes", conn=r),
                       40, "the queued deletes to become due on the standby", interval=0.2)
            self.assertEqual(FX.sql(queue, conn=r), primary_queue)
            self.assertTrue(FX.value("SELECT pg_is_in_recovery()", conn=r))
            self.assertEqual(FX.sql("SELECT backend_type FROM pg_stat_activity "
                                    "WHERE backend_type LIKE 'stored_object%'", conn=r), [])
            # so_wait_for_worker: true once the due deletes are carried out,
            # which nobody does on a standby.
            self.assertFalse(FX.value("SELECT so_wait_for_worker('1 second')", conn=r),
                             "due deletes and no worker on the standby: not settled")
            self.assertTrue(self.in_s3("hs/fail-over.bin"))
            self.assertTrue(self.in_s3("hs/row3.bin"))

            before = FX.control.stats()
            as_postgres([PG_BIN + "/pg_ctl", "-D", FX.replica.datadir, "-w", "-t", "60", "promote"])
            self.assertFalse(FX.value("SELECT pg_is_in_recovery()", conn=r))
            # The promoted server's worker carries the queued deletes out.
            wait_until(lambda: FX.value("SELECT count(*) = 0 FROM so_pending_deletes", conn=r), 40,
                       "the promoted server's worker to empty the queue", interval=0.1)
            self.assertTrue(FX.value("SELECT so_wait_for_worker('30 seconds')", conn=r))
            self.assertIsNone(FX.head(self.s3key("hs/fail-over.bin")), "hs/fail-over.bin should be gone")
            self.assertIsNone(FX.head(self.s3key("hs/row3.bin")), "hs/row3.bin should be gone")
            d = delta(before, FX.control.stats())
            self.assertEqual(d.get("op:DeleteObject"), 2, d)
            self.assertEqual(d.get("status:204"), 2, d)
            self.assertIn(("stored_object launcher",),
                          FX.sql("SELECT backend_type FROM pg_stat_activity", conn=r))
            # The rest stays.
            self.assertEqual(self.stored("s3", "hs/a.bin"), self.s3_content)
            self.assertEqual(self.stored("s3", "hs/row1.bin"), b"row one")
            self.assertEqual(self.stored("local", "hs/row2.txt"), b"row two")
            # Writes work on the promoted server.
            obj = self.put(r, "local", "hs/after-promotion.txt", b"written after the promotion")
            self.assertEqual(self.stored("local", "hs/after-promotion.txt"), b"written after the promotion")
            FX.sql("SELECT so_delete(%s::stored_object)", (obj,), r)
            self.assertTrue(FX.value("SELECT so_wait_for_worker('30 seconds')", conn=r))
            self.assertIsNone(self.stored("local", "hs/after-promotion.txt"))
            text = FX.replica.log_text(log_offset)
            # The walreceiver's complaints about the stopped primary are expected.
            allowed = [r"could not connect to the primary server", r"terminating walreceiver",
                       r"replication terminated by primary server", r"could not receive data from WAL stream",
                       r"could not send end-of-streaming message to primary"]
            self.assertEqual(log_problems(text, allowed), [], "unexpected problems in the promoted server's log")
        finally:
            FX.reset_faults()
            FX.stop_replica()
            FX.start_primary()


# ---------------------------------------------------------------------------
# Part 2: pgbouncer in transaction pooling mode
# ---------------------------------------------------------------------------

class PoolingTest(Base):
    """Through pgbouncer (pool_mode = transaction): the same behaviour as
    direct connections, whichever server session a transaction lands on."""

    pids = set()

    @classmethod
    def setUpClass(cls):
        FX.start_bouncer(pool_size=3)
        # Three clients in a transaction at once: three server sessions in the pool.
        clients = [FX.bouncer_connect() for _ in range(3)]
        held = set()
        for c in clients:
            FX.sql("BEGIN", conn=c)
            held.add(FX.value("SELECT pg_backend_pid()", conn=c))
        for c in clients:
            FX.sql("COMMIT", conn=c)
        assert len(held) == 3, held
        PoolingTest.a, PoolingTest.b = clients[0], clients[1]

    def setUp(self):
        for c in (self.a, self.b):
            if c.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                FX.sql("ROLLBACK", conn=c)
        self.base = self.id().rsplit(".", 1)[-1]

    def k(self, name):
        return "pool/%s/%s" % (self.base, name)

    def pid(self, conn):
        pid = FX.value("SELECT pg_backend_pid()", conn=conn)
        PoolingTest.pids.add(pid)
        return pid

    def begin(self, conn):
        """BEGIN; returns the server session the transaction landed on."""
        FX.sql("BEGIN", conn=conn)
        return self.pid(conn)

    def settle(self, conn=None):
        self.assertTrue(FX.value("SELECT so_wait_for_worker('1 minute')", conn=conn or self.b),
                        "the worker did not catch up in a minute")

    def assertBoth(self, key, content):
        """content (or None: absent) under key on S3 and on local storage."""
        for backend in ("s3", "local"):
            self.assertEqual(self.stored(backend, key), content, "%s %s" % (backend, key))

    def test_01_transactions_land_on_different_server_sessions(self):
        a = self.a
        seen = [self.pid(a) for _ in range(6)]                  # autocommit
        for _ in range(4):                                     # explicit transactions
            p = self.begin(a)
            self.assertEqual(self.pid(a), p, "one transaction, one server session")
            FX.sql("COMMIT", conn=a)
            seen.append(p)
        self.assertGreater(len(set(seen)), 1, "consecutive transactions all used one server session: %s" % seen)

    def test_02_autocommit_puts_keep_their_files(self):
        a, b = self.a, self.b
        for backend in ("s3", "local"):
            obj = self.put(a, backend, self.k("auto.bin"), b"autocommitted")
            self.assertEqual(self.get(b, obj), b"autocommitted")
        self.settle()
        self.assertBoth(self.k("auto.bin"), b"autocommitted")

    def test_03_committed_transaction_keeps_files(self):
        a, b = self.a, self.b
        self.begin(a)
        objs = [self.put(a, backend, self.k("tx.bin"), b"in a transaction") for backend in ("s3", "local")]
        FX.sql("COMMIT", conn=a)
        self.settle()
        self.assertBoth(self.k("tx.bin"), b"in a transaction")
        for obj in objs:
            self.assertEqual(self.get(b, obj), b"in a transaction")

    def test_04_rolled_back_puts_leave_no_file(self):
        a = self.a
        self.begin(a)
        self.put(a, "s3", self.k("rb.bin"), b"rolled back")
        self.put(a, "local", self.k("rb.bin"), b"rolled back")
        self.assertBoth(self.k("rb.bin"), b"rolled back")  # written at once
        FX.sql("ROLLBACK", conn=a)
        self.settle()
        self.assertBoth(self.k("rb.bin"), None)
        # An error aborts the transaction: the same.
        self.begin(a)
        self.put(a, "s3", self.k("err.bin"), b"doomed")
        self.put(a, "local", self.k("err.bin"), b"doomed")
        self.assertSqlError("22012", "SELECT 1/0", conn=a)
        FX.sql("ROLLBACK", conn=a)
        self.settle()
        self.assertBoth(self.k("err.bin"), None)
        # And a rolled-back savepoint, in a transaction that commits.
        self.begin(a)
        self.put(a, "s3", self.k("kept.bin"), b"kept")
        FX.sql("SAVEPOINT s", conn=a)
        self.put(a, "s3", self.k("sp.bin"), b"savepoint")
        self.put(a, "local", self.k("sp.bin"), b"savepoint")
        FX.sql("ROLLBACK TO SAVEPOINT s", conn=a)
        FX.sql("COMMIT", conn=a)
        self.settle()
        self.assertBoth(self.k("sp.bin"), None)
        self.assertEqual(self.stored("s3", self.k("kept.bin")), b"kept")

    def test_05_interleaved_clients_on_different_sessions(self):
        a, b = self.a, self.b
        pa = self.begin(a)
        pb = self.begin(b)
        self.assertNotEqual(pa, pb)
        for backend in ("s3", "local"):
            self.put(a, backend, self.k("from-a.bin"), b"a, rolled back")
            self.put(b, backend, self.k("from-b.bin"), b"b, committed")
        FX.sql("ROLLBACK", conn=a)
        FX.sql("COMMIT", conn=b)
        self.settle()
        self.assertBoth(self.k("from-a.bin"), None)
        self.assertBoth(self.k("from-b.bin"), b"b, committed")
        # The rolled-back key is free again, for whichever session.
        for backend in ("s3", "local"):
            self.put(b, backend, self.k("from-a.bin"), b"a's key, reused")
        self.assertBoth(self.k("from-a.bin"), b"a's key, reused")

    def test_06_create_only_across_clients_and_sessions(self):
        a, b = self.a, self.b
        for backend in ("s3", "local"):
            self.put(a, backend, self.k("once.bin"), b"same bytes")
            # The same bytes again, from another client or the same one, on
            # whatever session: the key exists.
            for conn in (b, a, b):
                self.assertSqlError("58P02", "SELECT so_put(%s, %s, 'same bytes'::bytea)",
                                    (backend, self.k("once.bin")), conn=conn)
        self.settle()
        self.assertBoth(self.k("once.bin"), b"same bytes")

    def test_07_so_delete_commits_delete_rollbacks_keep(self):
        a, b = self.a, self.b
        objs = {backend: self.put(a, backend, self.k("del.bin"), b"to delete") for backend in ("s3", "local")}
        self.begin(a)
        for obj in objs.values():
            FX.sql("SELECT so_delete(%s::stored_object)", (obj,), a)
        FX.sql("ROLLBACK", conn=a)
        self.settle()
        self.assertBoth(self.k("del.bin"), b"to delete")
        self.begin(a)
        for obj in objs.values():
            FX.sql("SELECT so_delete(%s::stored_object)", (obj,), a)
        # Until the commit, other clients still read it.
        self.assertEqual(self.get(b, objs["s3"]), b"to delete")
        self.assertBoth(self.k("del.bin"), b"to delete")
        FX.sql("COMMIT", conn=a)
        self.settle()
        self.assertBoth(self.k("del.bin"), None)
        for obj in objs.values():
            self.assertFalse(FX.value("SELECT so_exists(%s::stored_object)", (obj,), b))
        # Autocommit so_delete too.
        obj = self.put(b, "local", self.k("del-auto.bin"), b"x")
        FX.sql("SELECT so_delete(%s::stored_object)", (obj,), a)
        self.settle(a)
        self.assertIsNone(self.stored("local", self.k("del-auto.bin")))

    def test_08_managed_row_deletes(self):
        a, b = self.a, self.b
        rows = {}
        for i, backend in ((101, "s3"), (102, "local"), (103, "s3"), (104, "local"), (105, "s3")):
            FX.sql("INSERT INTO docs VALUES (%s, 'pooled', so_put(%s, %s, %s::bytea))",
                   (i, backend, self.k("row%d.bin" % i), "row %d" % i), conn=a if i % 2 else b)
            rows[i] = backend
        self.settle()
        # Rolled back: the files stay.
        self.begin(a)
        FX.sql("DELETE FROM docs WHERE id IN (101, 102)", conn=a)
        FX.sql("ROLLBACK", conn=a)
        self.settle()
        self.assertEqual(self.stored("s3", self.k("row101.bin")), b"row 101")
        self.assertEqual(self.stored("local", self.k("row102.bin")), b"row 102")
        # Committed: the files go, after the commit.
        self.begin(b)
        FX.sql("DELETE FROM docs WHERE id IN (101, 102)", conn=b)
        self.assertEqual(self.stored("s3", self.k("row101.bin")), b"row 101")
        FX.sql("COMMIT", conn=b)
        # Autocommit.
        FX.sql("DELETE FROM docs WHERE id = 103", conn=a)
        # An update replacing the file: the old one goes, the new one stays.
        FX.sql("UPDATE docs SET f = so_put('local', %s, 'row 104, new'::bytea) WHERE id = 104",
               (self.k("row104-new.bin"),), conn=b)
        # A row whose delete is rolled back after another statement of its transaction.
        self.begin(a)
        FX.sql("DELETE FROM docs WHERE id = 105", conn=a)
        FX.sql("SELECT count(*) FROM docs", conn=a)
        FX.sql("ROLLBACK", conn=a)
        self.settle()
        self.assertIsNone(self.stored("s3", self.k("row101.bin")))
        self.assertIsNone(self.stored("local", self.k("row102.bin")))
        self.assertIsNone(self.stored("s3", self.k("row103.bin")))
        self.assertIsNone(self.stored("local", self.k("row104.bin")))
        self.assertEqual(self.stored("local", self.k("row104-new.bin")), b"row 104, new")
        self.assertEqual(self.stored("s3", self.k("row105.bin")), b"row 105")
        self.assertEqual(FX.sql("SELECT id FROM docs WHERE id > 100 ORDER BY id", conn=a), [(104,), (105,)])

    def test_09_rolled_back_overwrite_keeps_old_content(self):
        a, b = self.a, self.b
        old = {backend: self.put(a, backend, self.k("doc.txt"), b"old content") for backend in ("s3", "local")}
        self.begin(a)
        for backend in ("s3", "local"):
            new = self.put(a, backend, self.k("doc.txt"), b"new content, never committed", overwrite=True)
            self.assertEqual(self.get(a, new), b"new content, never committed")
            self.assertEqual(self.get(b, old[backend]), b"old content")
        FX.sql("ROLLBACK", conn=a)
        self.settle()
        self.assertBoth(self.k("doc.txt"), b"old content")
        for backend in ("s3", "local"):
            self.assertEqual(self.get(b, old[backend]), b"old content")
            self.assertEqual(self.get(a, old[backend]), b"old content")
        # Committed, the new content replaces it.
        self.begin(b)
        for backend in ("s3", "local"):
            self.put(b, backend, self.k("doc.txt"), b"new content, committed", overwrite=True)
        FX.sql("COMMIT", conn=b)
        self.settle()
        self.assertBoth(self.k("doc.txt"), b"new content, committed")
        # No staged leftovers on either store.
        self.assertEqual(FX.list_keys("s3/.so-staging/"), [])
        # (The directory .so-journal stays; nothing may remain in it.)
        leftovers = [os.path.relpath(os.path.join(dp, n), FX.files) for dp, _, ns in os.walk(FX.files) for n in ns]
        leftovers = [f for f in leftovers if any(part.startswith(".so-") for part in f.split(os.sep))]
        self.assertEqual(leftovers, [])

    def test_10_every_transaction_was_pooled(self):
        # Over the whole class, transactions ran on several server sessions.
        self.assertGreater(len(PoolingTest.pids), 1, PoolingTest.pids)
        self.assertEqual(FX.sql("SELECT count(*) FROM so_pending_deletes", conn=self.a), [(0,)])
        log = FX.bouncer_log()
        self.assertNotRegex(log, r"\b(ERROR|FATAL|PANIC)\b", log[-2000:])


if __name__ == "__main__":
    sys.exit(runner.run(FX.name, FX, [StandbyReadTest, FailoverTest, PoolingTest], FX.leftovers))
