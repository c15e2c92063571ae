#!/usr/bin/python3
"""System test: a concurrent workload of managed rows on a local and an S3
backend, through a store outage and a kill -9 of a busy backend.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_concurrent_workload.py

with PGHOST/PGPORT/PGUSER naming a running cluster (stored_object installed,
preloaded, built with SO_TEST_HOOKS), SO_TEST_TMPDIR a directory for the
local backend, and the S3 fixture's variables exported (see
tests/system/s3support.py). The test process must be allowed to send
SIGKILL to the server's processes (root, or the postgres user).

Several client threads, each with its own session, run for about 25 s a
random mix (seeded; the seed is printed, SO_TEST_SEED repeats a run) on two
managed tables, each with one column per backend kind (`lf` on a file://
backend, `sf` on S3):

- insert rows with so_put; update a row with a new file (new key), or with
  new content under the same key (overwrite => true), sometimes twice in
  one transaction; move a value to another row in one transaction (DELETE
  row A + INSERT row B, or one column from A to B): the file must survive;
  delete rows; put objects no row references and so_delete them later (or
  in the same transaction); read rows back;
- explicit ROLLBACKs, deliberate errors that abort a transaction (division
  by zero, a create-only put of an existing key, a duplicate primary key),
  savepoints rolled back (with and without an error inside) and released.

In the middle:

1. kill -9 of a busy client backend: the victim is paused (test hook
   stored_object.test_pause_after_promote) inside COMMIT just after its
   local overwrite replaced the key, with puts on both backends, a managed
   row delete and an unreferenced S3 put in the same transaction. The
   postmaster restarts every session; every client reconnects and carries
   on; a COMMIT whose answer was lost is resolved from so_test_commits.
2. a store outage: the S3 fixture goes "down" for 4 s (connections refused,
   open ones reset), then comes back.

Commits of transactions that overwrite an S3 key are held back (not
stopped: they wait before COMMIT) while the crash or the outage begins:
the README documents that S3 cannot undo the CopyObject of such a commit
that then fails (the key keeps the new content while the row keeps the old
value), so the test does not provoke that case.

Each write transaction has a token (client.sequence) that it inserts into
so_test_commits and that names its keys (c<client>/t<sequence>-<n>.bin):
whether a transaction whose COMMIT lost its answer committed is read from
that table, not from pg_xact_status, because a crash can make the server
hand an xid out again (one the WAL on disk had not seen). After the
crash the victim's overwritten row is left alone, so that the final check
always sees whether the key got its committed content back.

Clients record every transaction they saw commit and the content they
wrote. At the end, after the worker caught up (so_wait_for_worker, then
so_process_pending by hand for deletes whose retry time lies ahead after
the outage):

a. every row is one a client committed, and every committed row is there;
   each value names the key and etag the client wrote, and its content
   (so_get, the file on disk, boto3 get_object) is what the client wrote;
b. no committed row points at a missing file; committed unreferenced
   objects still exist until swept;
c. before sweeping, every orphan so_orphans lists (and every unreferenced
   file on disk / object in the bucket) is explained: an object left
   unreferenced on purpose, or written by a transaction the crash
   interrupted, or an S3 write undone before the crash (by an abort or a
   rolled-back savepoint: the undo is handed to the worker in shared
   memory, which the crash clears), or an S3 write of a transaction that
   failed with a store error during the outage (the store may have kept a
   write whose answer was lost). Anything else, in particular an object
   some committed transaction released, is a leak. After so_gc(backend,
   '0 seconds', dry_run => false) on both backends, so_orphans lists
   nothing and no unreferenced file is left in the local root (but the
   .so-journal directory) or under the S3 prefix, and the committed rows'
   files are all still there with their content;
d. so_pending_deletes is empty;
e. the server log of this run holds no PANIC, no TRAP and no "terminated
   by signal" but the victim's.

The last line of output is "N passed, N failed"; the exit status is non-zero
on any failure.
"""

import collections
import hashlib
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3support  # noqa: E402

import psycopg2  # noqa: E402
import psycopg2.extensions  # noqa: E402

SEED = int(os.environ.get("SO_TEST_SEED") or random.SystemRandom().randrange(1, 1 << 31))
DURATION = float(os.environ.get("SO_TEST_DURATION") or 25)
CLIENTS = int(os.environ.get("SO_TEST_CLIENTS") or 5)
OUTAGE_SECONDS = 4
TABLES = ("docs", "attachments")
KINDS = ("l", "s")  # column lf on backend 'loc', column sf on backend 's3'
BACKEND = {"l": "loc", "s": "s3"}
COLUMN = {"l": "lf", "s": "sf"}
PAUSE_KEY = 7_406_001  # advisory lock the victim's COMMIT waits for
RECONNECT_TIMEOUT = 120

# An object as its writer knows it: backend kind, key, content, and the
# stored_object text so_put returned.
Obj = collections.namedtuple("Obj", "kind key content value")


class ConnectionLost(Exception):
    pass


def connection_lost(conn, e):
    return (isinstance(e, psycopg2.InterfaceError) or conn.closed != 0
            or e.pgcode in (None, "57P01", "57P02", "57P03"))


def connect(timeout=RECONNECT_TIMEOUT):
    """A new session of the test database, retried while the server is
    restarting (connection refused, 57P03 "in recovery mode"...)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            c = psycopg2.connect(dbname=FX.dbname, connect_timeout=10)
            c.autocommit = True
            with c.cursor() as cur:
                cur.execute("SELECT 1")
            return c
        except psycopg2.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def md5(data):
    return hashlib.md5(data).hexdigest()


class World:
    """What the clients and the conductor share."""

    def __init__(self):
        self.lock = threading.Condition()
        self.stop = threading.Event()
        self.t0 = time.monotonic()
        # Commits of transactions that overwrite an S3 key wait while closed.
        self.gate_closed = False
        self.s3_overwrite_commits = 0
        # The crash: when the kill was decided, when the server was back.
        self.crash_at = None
        self.back_at = None
        self.victim = None          # client id asked to run the victim transaction
        self.victim_ready = None    # (backend pid, xid, token) once its COMMIT waits
        self.victim_local_key = None
        # The outage.
        self.outage_at = None
        self.outage_end = None
        # Write transactions by token (client.sequence, also in so_test_commits
        # when committed): records; and the tokens of each xid (a crash may
        # hand an xid out again: one the WAL on disk does not know).
        self.txs = {}
        self.by_xid = collections.defaultdict(list)
        self.unexpected = []        # what no client should have seen
        self.observations = []      # noted, not failures
        self.read_mismatches = []   # a read of a committed row that returned other content
        self.dirty_keys = set()     # keys an overwrite interrupted by the crash had replaced
        self.warnings = collections.Counter()
        # (kind, key) -> [(seconds, token, what)]: committed puts and releases
        self.history = collections.defaultdict(list)
        self.errors = collections.Counter()
        self.ops = collections.Counter()

    def now(self):
        return time.monotonic() - self.t0

    def in_outage(self, started):
        """Whether a statement started at `started` may fail with a store error."""
        with self.lock:
            if self.outage_at is None:
                return False
            end = self.outage_end if self.outage_end is not None else float("inf")
            return started <= end + 10 and time.monotonic() >= self.outage_at - 0.5

    def in_crash(self):
        with self.lock:
            if self.crash_at is None:
                return False
            return self.back_at is None or time.monotonic() <= self.back_at + 30

    def record(self, token, **fields):
        with self.lock:
            self.txs.setdefault(token, {}).update(fields)
            if "xid" in fields:
                self.by_xid[fields["xid"]].append(token)

    def note_unexpected(self, text):
        with self.lock:
            self.unexpected.append("[%6.2fs] %s" % (self.now(), text))

    # ---- the gate for commits that overwrite S3 keys ------------------------

    def enter_s3_overwrite_commit(self):
        with self.lock:
            while self.gate_closed and not self.stop.is_set():
                self.lock.wait(0.5)
            self.s3_overwrite_commits += 1

    def leave_s3_overwrite_commit(self):
        with self.lock:
            self.s3_overwrite_commits -= 1
            self.lock.notify_all()

    def close_gate(self, timeout=60):
        with self.lock:
            self.gate_closed = True
            if not self.lock.wait_for(lambda: self.s3_overwrite_commits == 0, timeout):
                raise AssertionError("commits overwriting S3 keys did not finish within %d s" % timeout)

    def open_gate(self):
        with self.lock:
            self.gate_closed = False
            self.lock.notify_all()


class Tx:
    """A transaction's view of its client's model: applied on commit."""

    def __init__(self, client):
        self.rows = {k: dict(v) for k, v in client.rows.items()}
        self.free = dict(client.free)
        self.xid = None
        self.token = None
        self.s3_overwrite = False
        self.kinds = set()          # backends written
        self.s3_puts = 0            # S3 writes (puts, staged overwrites)
        self.s3_undone = False      # a rolled-back savepoint undid S3 writes (the worker removes them)
        self.local_overwrites = []  # keys
        self.commit_sent = False

    def snapshot(self):
        return ({k: dict(v) for k, v in self.rows.items()}, dict(self.free))

    def restore(self, snap):
        self.rows = {k: dict(v) for k, v in snap[0].items()}
        self.free = dict(snap[1])


class Client(threading.Thread):

    def __init__(self, world, cid):
        super().__init__(name="client-%d" % cid, daemon=True)
        self.w = world
        self.cid = cid
        self.rng = random.Random(SEED * 1000 + cid)
        self.rows = {}   # (table, id) -> {"l": Obj|None, "s": Obj|None}
        self.protected = set()  # rows left alone: the victim's overwritten row after the crash
        self.free = {}   # (kind, key) -> Obj: committed, referenced by no row
        self.counter = 0
        self.seq = 0
        self.conn = None
        self.committed = 0
        self.failure = None

    # ---- plumbing -----------------------------------------------------------

    def run(self):
        try:
            self.conn = connect()
            while not self.w.stop.is_set():
                if self.w.victim == self.cid and self.w.victim_ready is None:
                    self.victim_transaction()
                    continue
                self.one_transaction()
        except BaseException as e:  # noqa: B902 - reported by the test
            self.failure = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            with self.w.lock:
                self.w.lock.notify_all()
        finally:
            if self.conn is not None:
                try:
                    self.conn.close()
                except Exception:
                    pass

    def sql(self, query, args=None):
        with self.conn.cursor() as cur:
            cur.execute(query, args)
            rows = cur.fetchall() if cur.description else None
            return rows, cur.statusmessage

    def rows_of(self, query, args=None):
        return self.sql(query, args)[0]

    def one(self, query, args=None):
        return self.sql(query, args)[0][0][0]

    def collect_notices(self):
        if self.conn is None or self.conn.closed:
            return
        for n in self.conn.notices:
            if n.startswith("WARNING"):
                with self.w.lock:
                    self.w.warnings[re.sub(r'"[^"]*"', '"…"', n.strip())[:160]] += 1
        del self.conn.notices[:]

    def reconnect(self):
        try:
            self.conn.close()
        except Exception:
            pass
        self.conn = connect()

    def content(self, tx, n):
        size = self.rng.choice((0, 1, 100, 700, 2000, 5000, 20000, 65536 + 7))
        head = ("transaction %s xid %s #%d|" % (tx.token, tx.xid, n)).encode()
        return head + self.rng.randbytes(size)

    def new_key(self, tx, free=False):
        self.counter += 1
        return "c%d/%st%d-%d.bin" % (self.cid, "free-" if free else "", self.seq, self.counter), self.counter

    def put_sql(self, tx, kind, key, content, overwrite=False):
        tx.kinds.add(kind)
        tx.s3_puts += kind == "s"
        return ("so_put(%s, %s, %s, overwrite => %s)", [BACKEND[kind], key, psycopg2.Binary(content), overwrite])

    @staticmethod
    def objects(rows, free):
        """(kind, key) -> content of every object the model holds."""
        out = {(o.kind, o.key): o.content for v in rows.values() for o in v.values() if o is not None}
        out.update({ident: o.content for ident, o in free.items()})
        return out

    # ---- sub-operations (each on tx's model) --------------------------------

    def pick_row(self, tx, need=None):
        """A row of tx (with a non-null value of kind `need`), or None."""
        keys = [k for k, v in tx.rows.items() if (need is None or v[need] is not None) and k not in self.protected]
        return self.rng.choice(sorted(keys)) if keys else None

    def op_insert(self, tx, kinds=None):
        table = self.rng.choice(TABLES)
        if kinds is None:
            kinds = [k for k in KINDS if self.rng.random() < 0.8] or [self.rng.choice(KINDS)]
        objs = {"l": None, "s": None}
        exprs, args = [], [self.cid]
        for kind in KINDS:
            if kind in kinds:
                key, n = self.new_key(tx)
                content = self.content(tx, n)
                e, a = self.put_sql(tx, kind, key, content)
                exprs.append(e)
                args += a
                objs[kind] = Obj(kind, key, content, None)
            else:
                exprs.append("NULL")
        row = self.rows_of("INSERT INTO %s (owner, lf, sf) VALUES (%%s, %s, %s) RETURNING id, lf::text, sf::text"
                           % (table, exprs[0], exprs[1]), args)[0]
        for i, kind in enumerate(KINDS):
            if objs[kind] is not None:
                objs[kind] = objs[kind]._replace(value=row[1 + i])
        tx.rows[(table, row[0])] = objs
        return (table, row[0])

    def op_update_new_key(self, tx):
        kind = self.rng.choice(KINDS)
        rk = self.pick_row(tx)
        if rk is None:
            return self.op_insert(tx)
        table, rid = rk
        if self.rng.random() < 0.15 and tx.rows[rk][kind] is not None:
            # Released without a replacement.
            n = self.sql("UPDATE %s SET %s = NULL WHERE id = %%s AND owner = %%s" % (table, COLUMN[kind]),
                         (rid, self.cid))[1]
            self.expect_one(n, rk)
            tx.rows[rk][kind] = None
            return
        key, n = self.new_key(tx)
        content = self.content(tx, n)
        e, a = self.put_sql(tx, kind, key, content)
        rows = self.rows_of("UPDATE %s SET %s = %s WHERE id = %%s AND owner = %%s RETURNING %s::text"
                            % (table, COLUMN[kind], e, COLUMN[kind]), a + [rid, self.cid])
        self.expect_one("UPDATE %d" % len(rows), rk)
        tx.rows[rk][kind] = Obj(kind, key, content, rows[0][0])

    def op_overwrite(self, tx, kind=None, rk=None):
        kind = kind or self.rng.choice(KINDS)
        rk = rk or self.pick_row(tx, kind)
        if rk is None:
            return self.op_insert(tx)
        table, rid = rk
        old = tx.rows[rk][kind]
        self.counter += 1
        content = self.content(tx, self.counter)
        e, a = self.put_sql(tx, kind, old.key, content, overwrite=True)
        rows = self.rows_of("UPDATE %s SET %s = %s WHERE id = %%s AND owner = %%s RETURNING %s::text"
                            % (table, COLUMN[kind], e, COLUMN[kind]), a + [rid, self.cid])
        self.expect_one("UPDATE %d" % len(rows), rk)
        tx.rows[rk][kind] = Obj(kind, old.key, content, rows[0][0])
        if kind == "s":
            tx.s3_overwrite = True
        else:
            tx.local_overwrites.append(old.key)
        return rk

    def op_move(self, tx):
        rk = self.pick_row(tx)
        if rk is None:
            return self.op_insert(tx)
        table, rid = rk
        objs = tx.rows[rk]
        kind = self.rng.choice(KINDS)
        targets = [k for k, v in tx.rows.items() if k != rk and v[kind] is None and k not in self.protected]
        if objs[kind] is not None and targets and self.rng.random() < 0.4:
            # One column's value from row A to row B: UPDATE A, UPDATE B.
            to = self.rng.choice(sorted(targets))
            self.expect_one(self.sql("UPDATE %s SET %s = NULL WHERE id = %%s AND owner = %%s"
                                     % (table, COLUMN[kind]), (rid, self.cid))[1], rk)
            self.expect_one(self.sql("UPDATE %s SET %s = %%s::stored_object WHERE id = %%s AND owner = %%s"
                                     % (to[0], COLUMN[kind]), (objs[kind].value, to[1], self.cid))[1], to)
            tx.rows[to][kind] = objs[kind]
            tx.rows[rk][kind] = None
            return
        # The whole row: DELETE row A, INSERT row B with A's values.
        deleted = self.rows_of("DELETE FROM %s WHERE id = %%s AND owner = %%s RETURNING lf::text, sf::text"
                               % table, (rid, self.cid))
        self.expect_one("DELETE %d" % len(deleted), rk)
        to_table = self.rng.choice(TABLES)
        new_id = self.one("INSERT INTO %s (owner, lf, sf) VALUES (%%s, %%s::stored_object, %%s::stored_object) "
                          "RETURNING id" % to_table, (self.cid, deleted[0][0], deleted[0][1]))
        del tx.rows[rk]
        tx.rows[(to_table, new_id)] = objs

    def op_delete_row(self, tx):
        rk = self.pick_row(tx)
        if rk is None:
            return self.op_insert(tx)
        self.expect_one(self.sql("DELETE FROM %s WHERE id = %%s AND owner = %%s" % rk[0], (rk[1], self.cid))[1], rk)
        del tx.rows[rk]

    def op_free_put(self, tx, kind=None):
        kind = kind or self.rng.choice(KINDS)
        key, n = self.new_key(tx, free=True)
        content = self.content(tx, n)
        e, a = self.put_sql(tx, kind, key, content)
        value = self.one("SELECT %s::text" % e, a)
        tx.free[(kind, key)] = Obj(kind, key, content, value)

    def op_free_delete(self, tx):
        if not tx.free:
            return self.op_free_put(tx)
        fk = self.rng.choice(sorted(tx.free))
        self.sql("SELECT so_delete(%s::stored_object)", (tx.free[fk].value,))
        del tx.free[fk]

    def op_put_then_delete(self, tx):
        kind = self.rng.choice(KINDS)
        key, n = self.new_key(tx, free=True)
        e, a = self.put_sql(tx, kind, key, self.content(tx, n))
        self.sql("SELECT so_delete(%s)" % e, a)

    def op_read(self, tx):
        rk = self.pick_row(tx)
        if rk is None:
            return
        table, rid = rk
        got = self.rows_of("SELECT so_get(lf), so_get(sf) FROM %s WHERE id = %%s" % table, (rid,))
        if len(got) != 1:
            self.w.note_unexpected("client %d: row %s of its model is missing (%d rows)" % (self.cid, rk, len(got)))
            return
        for i, kind in enumerate(KINDS):
            obj = tx.rows[rk][kind]
            data = None if got[0][i] is None else bytes(got[0][i])
            want = None if obj is None else obj.content
            if data != want:
                with self.w.lock:
                    self.w.read_mismatches.append(
                        ("[%6.2fs] client %d read %s.%s id %s key %s: got %s bytes (md5 %s), wrote %s bytes (md5 %s)"
                         % (self.w.now(), self.cid, table, COLUMN[kind], rid, obj and obj.key,
                            None if data is None else len(data), data and md5(data),
                            None if want is None else len(want), want and md5(want)),
                         obj and obj.key))

    def expect_one(self, status, rk):
        if status.split()[-1] != "1":
            self.w.note_unexpected("client %d: %s on row %s of its model" % (self.cid, status, rk))

    def random_op(self, tx):
        ops = ((self.op_insert, 5), (self.op_update_new_key, 3), (self.op_overwrite, 3), (self.op_move, 3),
               (self.op_delete_row, 2), (self.op_free_put, 1), (self.op_free_delete, 1),
               (self.op_put_then_delete, 1), (self.op_read, 2))
        fn = self.rng.choices([o for o, _ in ops], [w for _, w in ops])[0]
        with self.w.lock:
            self.w.ops[fn.__name__] += 1
        fn(tx)

    def deliberate_error(self, tx):
        """A statement that fails; returns nothing, checks the SQLSTATE."""
        choice = self.rng.choice(("div", "dup_key", "dup_row"))
        keys = [(k, o) for rk, v in tx.rows.items() for k, o in v.items() if o is not None and rk not in self.protected]
        if choice == "dup_key" and keys:
            kind, obj = self.rng.choice(sorted(keys, key=lambda x: x[1].key))
            query, args, want = "SELECT so_put(%s, %s, 'not me'::bytea)", (BACKEND[kind], obj.key), ("58P02",)
        elif choice == "dup_row" and set(tx.rows) - self.protected:
            table, rid = self.rng.choice(sorted(set(tx.rows) - self.protected))
            query, args, want = "INSERT INTO %s (id, owner) VALUES (%%s, %%s)" % table, (rid, self.cid), ("23505",)
        else:
            query, args, want = "SELECT 1/0", None, ("22012",)
        started = time.monotonic()
        try:
            self.sql(query, args)
        except psycopg2.Error as e:
            if connection_lost(self.conn, e):
                raise
            if e.pgcode in want or (e.pgcode == "58030" and query.startswith("SELECT so_put(%s")
                                    and args[0] == "s3" and self.w.in_outage(started)):
                with self.w.lock:
                    self.w.errors["deliberate " + e.pgcode] += 1
                return
            raise
        self.w.note_unexpected("client %d: %s %s did not fail" % (self.cid, query, args))

    # ---- transactions ---------------------------------------------------------

    def begin(self, tx):
        self.seq += 1
        tx.token = "%d.%d" % (self.cid, self.seq)
        self.sql("BEGIN")
        tx.xid = self.one("SELECT pg_current_xact_id()::text")
        self.sql("INSERT INTO so_test_commits VALUES (%s)", (tx.token,))
        self.w.record(tx.token, xid=tx.xid, outcome="open", era=self.era())

    def era(self):
        """0 until the server is back from the crash (what ended before may
        have handed an undo to the worker that the crash lost), then 1."""
        return 0 if self.w.back_at is None else 1

    def commit(self, tx):
        if tx.s3_overwrite:
            self.w.enter_s3_overwrite_commit()
        try:
            tx.commit_sent = True
            status = self.sql("COMMIT")[1]
        finally:
            if tx.s3_overwrite:
                self.w.leave_s3_overwrite_commit()
        if status != "COMMIT":
            self.w.note_unexpected("client %d: COMMIT answered %s" % (self.cid, status))
            self.w.record(tx.token, outcome="aborted-at-commit", end_era=self.era())
            return
        self.apply(tx, "committed")

    def apply(self, tx, outcome):
        before = self.objects(self.rows, self.free)
        after = self.objects(tx.rows, tx.free)
        with self.w.lock:
            for ident in sorted(set(before) | set(after)):
                if ident not in after:
                    self.w.history[ident].append((round(self.w.now(), 2), tx.token, "released"))
                elif before.get(ident) != after[ident]:
                    self.w.history[ident].append((round(self.w.now(), 2), tx.token,
                                                  "wrote md5 " + md5(after[ident])))
        self.rows, self.free = tx.rows, tx.free
        self.committed += 1
        self.w.record(tx.token, outcome=outcome, end_era=self.era(), kinds=sorted(tx.kinds),
                      s3_undone=tx.s3_undone)

    def one_transaction(self):
        kind = self.rng.choices(("commit", "rollback", "error", "savepoint", "release", "double", "read"),
                                (40, 10, 10, 14, 5, 5, 8))[0]
        with self.w.lock:
            self.w.ops["tx " + kind] += 1
        if kind == "read":
            tx = Tx(self)
            self.guarded(tx, lambda: [self.op_read(tx) for _ in range(self.rng.randint(1, 3))], read_only=True)
            return
        tx = Tx(self)

        def body():
            self.begin(tx)
            if kind == "commit":
                for _ in range(self.rng.randint(1, 3)):
                    self.random_op(tx)
                self.commit(tx)
            elif kind == "rollback":
                for _ in range(self.rng.randint(1, 3)):
                    self.random_op(tx)
                self.sql("ROLLBACK")
                self.w.record(tx.token, outcome="rolled-back", end_era=self.era(), kinds=sorted(tx.kinds))
            elif kind == "error":
                for _ in range(self.rng.randint(1, 2)):
                    self.random_op(tx)
                self.deliberate_error(tx)
                self.sql("ROLLBACK")
                self.w.record(tx.token, outcome="error", end_era=self.era(), kinds=sorted(tx.kinds))
            elif kind in ("savepoint", "release"):
                if self.rng.random() < 0.7:
                    self.random_op(tx)
                snap = tx.snapshot()
                s3_puts = tx.s3_puts
                self.sql("SAVEPOINT s")
                for _ in range(self.rng.randint(1, 2)):
                    self.random_op(tx)
                if kind == "release":
                    self.sql("RELEASE SAVEPOINT s")
                else:
                    if self.rng.random() < 0.3:
                        self.deliberate_error(tx)
                    self.sql("ROLLBACK TO SAVEPOINT s")
                    s3_overwrite = tx.s3_overwrite
                    tx.restore(snap)
                    tx.s3_overwrite = s3_overwrite  # conservative: may still hold back its commit
                    tx.s3_undone |= tx.s3_puts > s3_puts
                if self.rng.random() < 0.8:
                    self.random_op(tx)
                self.commit(tx)
            elif kind == "double":
                # The same key overwritten twice in one transaction: the last wins.
                k = self.rng.choice(KINDS)
                rk = self.pick_row(tx, k)
                if rk is None:
                    self.op_insert(tx)
                else:
                    self.op_overwrite(tx, k, rk)
                    if self.rng.random() < 0.5:
                        self.op_read(tx)
                    self.op_overwrite(tx, k, rk)
                self.commit(tx)

        self.guarded(tx, body)

    def guarded(self, tx, body, read_only=False):
        """Runs body; sorts out what any failure means for the model."""
        started = time.monotonic()
        try:
            body()
        except psycopg2.Error as e:
            if connection_lost(self.conn, e):
                self.lost_connection(tx, e, read_only)
            else:
                self.failed(tx, e, started, read_only)
        finally:
            self.collect_notices()

    def failed(self, tx, e, started, read_only):
        code = e.pgcode
        with self.w.lock:
            self.w.errors[code] += 1
        outcome = "store-error" if code == "58030" else "unexpected-error"
        if code == "58030" and self.w.in_outage(started):
            pass  # the store is down
        else:
            self.w.note_unexpected("client %d xid %s: %s %s" % (self.cid, tx.xid, code,
                                                               (e.pgerror or str(e)).strip().splitlines()[0]))
        try:
            if not read_only and self.conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                self.sql("ROLLBACK")
        except psycopg2.Error as e2:
            if connection_lost(self.conn, e2):
                self.lost_connection(tx, e2, read_only)
                return
            raise
        if not read_only:
            self.w.record(tx.token, outcome=outcome, end_era=self.era(), kinds=sorted(tx.kinds),
                      s3_undone=tx.s3_undone)

    def lost_connection(self, tx, e, read_only):
        if not self.w.in_crash():
            self.w.note_unexpected("client %d xid %s: connection lost outside the crash: %s"
                                   % (self.cid, tx.xid, str(e).strip().splitlines()[0] if str(e).strip() else e))
        with self.w.lock:
            self.w.errors["connection lost"] += 1
        self.reconnect()
        if read_only or tx.token is None:
            return
        # Whether it committed: its row in so_test_commits says. (Not
        # pg_xact_status: the xid may not have reached the WAL on disk, and
        # then the restarted server hands it out again.)
        committed = self.one("SELECT count(*) FROM so_test_commits WHERE token = %s", (tx.token,)) == 1
        if tx.xid is not None:
            status = self.one("SELECT CASE WHEN %s::xid8 < pg_snapshot_xmax(pg_current_snapshot()) "
                              "THEN pg_xact_status(%s::xid8) ELSE 'in the future' END", (tx.xid, tx.xid))
            self.w.record(tx.token, xid_status_after_crash=status)
        if committed:
            if not tx.commit_sent:
                self.w.note_unexpected("client %d: %s committed without COMMIT" % (self.cid, tx.token))
            self.apply(tx, "in-doubt-committed")
        else:
            self.w.record(tx.token, outcome="interrupted", commit_sent=tx.commit_sent, end_era=self.era(),
                              kinds=sorted(tx.kinds))
            with self.w.lock:
                self.w.dirty_keys.update(tx.local_overwrites)

    def victim_transaction(self):
        """Puts on both backends, a local overwrite, a managed delete and an
        unreferenced S3 put; then COMMIT, paused by the test hook after the
        overwrite replaced the key, until the conductor kills it."""
        # A committed row with a local file to overwrite, and another to delete.
        while sum(1 for v in self.rows.values() if v["l"] is not None) < 2 and not self.w.stop.is_set():
            tx = Tx(self)

            def setup():
                self.begin(tx)
                self.op_insert(tx, kinds=("l", "s"))
                self.commit(tx)
            self.guarded(tx, setup)
        tx = Tx(self)
        target_row = []

        def body():
            self.begin(tx)
            with_local = sorted(k for k, v in tx.rows.items() if v["l"] is not None)
            target = with_local[0]
            target_row.append(target)
            self.op_insert(tx, kinds=("l", "s"))
            self.op_overwrite(tx, "l", target)
            others = [k for k in sorted(tx.rows) if k != target and tx.rows[k]["l"] is not None]
            if others:
                self.expect_one(self.sql("DELETE FROM %s WHERE id = %%s AND owner = %%s" % others[0][0],
                                         (others[0][1], self.cid))[1], others[0])
                del tx.rows[others[0]]
            self.op_free_put(tx, "s")
            self.sql("SET LOCAL stored_object.test_pause_after_promote = %s", (PAUSE_KEY,))
            pid = self.one("SELECT pg_backend_pid()")
            with self.w.lock:
                self.w.victim_local_key = tx.rows[target]["l"].key
                self.w.victim_ready = (pid, tx.xid, tx.token)
                self.w.lock.notify_all()
            self.commit(tx)
            self.w.note_unexpected("client %d: the victim's COMMIT returned" % self.cid)

        self.guarded(tx, body)
        if self.w.victim_ready is None:  # failed before its COMMIT (e.g. the store is down): again
            return
        # Its overwritten row stays as it is until the end: whatever the
        # mix, the final check then sees whether the key got its committed
        # content back.
        self.protected.add(target_row[0])
        rec = self.w.txs.get(self.w.victim_ready[2], {})
        if rec.get("outcome") != "interrupted":
            self.w.note_unexpected("client %d: the victim transaction ended %s" % (self.cid, rec))


class Fixture(s3support.Fixture):
    """s3support's fixture; its own sessions may have died in the crash, and
    the cluster must accept connections again before the test ends."""

    def stop(self):
        wait_for_server()
        try:
            with self.admin.cursor() as cur:
                cur.execute("SELECT 1")
        except Exception:
            try:
                self.admin = psycopg2.connect(dbname="postgres", connect_timeout=10)
                self.admin.autocommit = True
            except psycopg2.Error:
                traceback.print_exc(file=sys.stdout)
        super().stop()
        tmp = getattr(WorkloadTest, "tmp", None)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def wait_for_server():
    deadline = time.monotonic() + RECONNECT_TIMEOUT
    while True:
        try:
            psycopg2.connect(dbname="postgres", connect_timeout=10).close()
            return
        except psycopg2.Error:
            if time.monotonic() > deadline:
                print("the server does not accept connections after %d s" % RECONNECT_TIMEOUT)
                return
            time.sleep(0.1)


FX = Fixture("conc")


class WorkloadTest(s3support.SqlAssertions, unittest.TestCase):
    FX = FX
    done = False

    # ---- the run, once, before every assertion -------------------------------

    @classmethod
    def setUpClass(cls):
        if WorkloadTest.done:
            return
        WorkloadTest.done = True
        print("seed %d (SO_TEST_SEED=%d repeats the mix), %d clients, %.0f s" % (SEED, SEED, CLIENTS, DURATION))
        cls.prepare()
        cls.log_offset = cls.log_size()
        cls.run_workload()
        cls.settle()

    @classmethod
    def prepare(cls):
        base = os.environ.get("SO_TEST_TMPDIR") or None
        cls.tmp = tempfile.mkdtemp(prefix="so-concurrent-", dir=base)
        os.chmod(cls.tmp, 0o755)
        shutil.chown(cls.tmp, "postgres", "postgres")
        cls.root = os.path.join(cls.tmp, "files")  # created by the server on first write
        FX.sql("SELECT so_register_backend('loc', %s)", ("file://" + cls.root,))
        cls.s3_prefix = FX.register("s3", "s3")
        FX.sql("CREATE TABLE so_test_commits (token text PRIMARY KEY)")
        for t in TABLES:
            FX.sql("CREATE TABLE %s (id bigserial PRIMARY KEY, owner int NOT NULL, lf stored_object, "
                   "sf stored_object)" % t)
            for c in ("lf", "sf"):
                FX.sql("CREATE INDEX ON %s (%s)" % (t, c))
                FX.sql("SELECT so_manage_column(%s, %s)", (t, c))
        datadir = FX.value("SHOW data_directory")
        cls.server_log = os.path.join(os.path.dirname(datadir), "server.log")  # scripts/cluster.sh's
        hooks = FX.sql("SELECT 1 FROM pg_settings WHERE name = 'stored_object.test_pause_after_promote'")
        if not hooks:
            raise RuntimeError("the installed stored_object has no test hooks (build with SO_TEST_HOOKS=1)")

    @classmethod
    def log_size(cls):
        try:
            return os.path.getsize(cls.server_log)
        except OSError:
            return 0

    @classmethod
    def run_workload(cls):
        w = cls.world = World()
        clients = cls.clients = [Client(w, i) for i in range(CLIENTS)]
        for c in clients:
            c.start()
        rng = random.Random(SEED)
        try:
            # Warm up, then the crash.
            w.stop.wait(DURATION * 0.25)
            cls.crash(rng.randrange(CLIENTS))
            # The clients carry on; then the outage.
            w.stop.wait(max(0.0, DURATION * 0.6 - w.now()))
            cls.outage()
            w.stop.wait(max(0.0, DURATION - w.now()))
        finally:
            w.stop.set()
            w.open_gate()
            deadline = time.monotonic() + 120
            for c in clients:
                c.join(max(0.0, deadline - time.monotonic()))
        hung = [c.name for c in clients if c.is_alive()]
        if hung:
            raise AssertionError("clients did not finish: %s" % hung)
        print("ran %.1f s: %d transactions committed; %s" % (w.now(), sum(c.committed for c in clients),
                                                           dict(sorted(w.ops.items()))))
        print("errors by SQLSTATE: %s" % dict(w.errors))
        outcomes = collections.Counter(r.get("outcome") for r in w.txs.values())
        print("transactions by outcome: %s" % dict(outcomes))
        reused = {x: t for x, t in w.by_xid.items() if len(t) > 1}
        if reused:
            print("xids handed out twice (before and after the crash): %d, e.g. %s"
                  % (len(reused), sorted(reused.items())[:3]))
        after = collections.Counter(r.get("xid_status_after_crash") for r in w.txs.values()
                                    if "xid_status_after_crash" in r)
        print("status of interrupted transactions' xids after the restart: %s" % dict(after))
        if w.victim_ready:
            print("victim transaction %s: %s" % (w.victim_ready[2], w.txs.get(w.victim_ready[2])))
        for text, n in sorted(w.warnings.items()):
            print("  server WARNING x%d: %s" % (n, text))

    @classmethod
    def crash(cls, victim):
        """kill -9 of the victim's backend, paused inside COMMIT."""
        w = cls.world
        lock_conn = FX.connect()
        FX.sql("SELECT pg_advisory_lock(%s)", (PAUSE_KEY,), lock_conn)
        with w.lock:
            w.victim = victim
            if not w.lock.wait_for(lambda: w.victim_ready is not None or not cls.clients[victim].is_alive()
                                   or cls.clients[victim].failure, 120):
                raise AssertionError("the victim did not reach its COMMIT; unexpected: %s" % w.unexpected[:10])
        if w.victim_ready is None:
            raise AssertionError("the victim client failed: %s; unexpected: %s"
                                 % (cls.clients[victim].failure, w.unexpected[:10]))
        with w.lock:
            pid, xid, token = w.victim_ready
        # Paused at the hook: waiting for our advisory lock.
        deadline = time.monotonic() + 60
        while not FX.sql("SELECT 1 FROM pg_locks WHERE pid = %s AND locktype = 'advisory' AND NOT granted "
                         "AND objid = %s", (pid, PAUSE_KEY), lock_conn):
            if time.monotonic() > deadline:
                raise AssertionError("the victim's COMMIT never waited at the hook")
            time.sleep(0.02)
        active = FX.value("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND state = 'active' AND pid <> pg_backend_pid()", conn=lock_conn)
        w.close_gate()
        with w.lock:
            w.crash_at = time.monotonic()
        print("[%6.2fs] kill -9 of client %d's backend %d (xid %s, paused after promoting %s); "
              "%d sessions active" % (w.now(), victim, pid, xid, w.victim_local_key, active))
        os.kill(pid, signal.SIGKILL)
        cls.victim_pid = pid
        # The postmaster reaps it, then restarts every session.
        deadline = time.monotonic() + 60
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            if time.monotonic() > deadline:
                raise AssertionError("backend %d survived SIGKILL" % pid)
            time.sleep(0.01)
        cls.reconnect_fixture()
        with w.lock:
            w.back_at = time.monotonic()
        print("[%6.2fs] the server accepts connections again" % w.now())
        w.open_gate()

    @classmethod
    def reconnect_fixture(cls):
        """FX's own sessions died with the crash: new ones."""
        for c in FX.connections:
            try:
                c.close()
            except Exception:
                pass
        FX.connections = []
        deadline = time.monotonic() + RECONNECT_TIMEOUT
        while True:
            try:
                admin = psycopg2.connect(dbname="postgres", connect_timeout=10)
                admin.autocommit = True
                with admin.cursor() as cur:
                    cur.execute("SELECT 1")
                break
            except psycopg2.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        try:
            FX.admin.close()
        except Exception:
            pass
        FX.admin = admin
        FX.conn = connect()
        FX.connections.append(FX.conn)

    @classmethod
    def outage(cls):
        w = cls.world
        w.close_gate()
        with w.lock:
            w.outage_at = time.monotonic()
        FX.control.add_fault({"mode": "down", "seconds": OUTAGE_SECONDS})
        print("[%6.2fs] the S3 store is down for %d s" % (w.now(), OUTAGE_SECONDS))
        w.open_gate()
        w.stop.wait(OUTAGE_SECONDS)
        FX.control.wait_healthy(60)
        with w.lock:
            w.outage_end = time.monotonic()
        print("[%6.2fs] the S3 store is back" % w.now())

    @classmethod
    def settle(cls):
        """The worker carries out what committed and aborted transactions left."""
        FX.control.wait_healthy(60)
        FX.reset_faults()
        deadline = time.monotonic() + 300
        rounds = []
        while True:
            idle = FX.value("SELECT so_wait_for_worker('60 seconds')")
            counts = FX.sql("SELECT * FROM so_process_pending()")[0]
            left = FX.value("SELECT count(*) FROM so_pending_deletes")
            rounds.append((idle, counts, left))
            if idle and left == 0 and counts[3] == 0:
                break
            if time.monotonic() > deadline:
                break
        print("worker: so_wait_for_worker / so_process_pending (deleted, already gone, kept, failed) / left: %s"
              % rounds)
        cls.settle_rounds = rounds

    # ---- what the clients know ----------------------------------------------

    def expected_rows(self):
        rows = {}
        for c in self.clients:
            for rk, objs in c.rows.items():
                rows[rk] = (c.cid, objs)
        return rows

    def expected_free(self):
        free = {}
        for c in self.clients:
            free.update(c.free)
        return free

    def referenced(self, kind):
        keys = {o.key for _, objs in self.expected_rows().values() for o in objs.values()
                if o is not None and o.kind == kind}
        return keys

    def local_files(self):
        """Every file under the local root (relative paths), .so-journal apart."""
        out = set()
        for dirpath, dirnames, filenames in os.walk(self.root):
            if dirpath == self.root and ".so-journal" in dirnames:
                dirnames.remove(".so-journal")
            for f in filenames:
                out.add(os.path.relpath(os.path.join(dirpath, f), self.root))
        return out

    def s3_keys(self):
        return {k[len(self.s3_prefix):] for k in FX.list_keys("s3/")}

    def orphans(self, backend):
        return sorted(r[0] for r in FX.sql("SELECT so_filename(o) FROM so_orphans(%s, '', '0 seconds') AS o",
                                           (backend,)))

    # ---- assertions -----------------------------------------------------------

    def test_1_clients_saw_only_expected_errors(self):
        w = self.world
        failures = [c.name + ": " + c.failure for c in self.clients if c.failure]
        self.assertEqual(failures, [], "\n".join(failures))
        self.assertEqual(w.unexpected, [], "\n".join(w.unexpected[:50]))
        victim = w.victim_ready[2]
        self.assertEqual(w.txs[victim].get("outcome"), "interrupted", w.txs[victim])
        open_left = [t for t, r in w.txs.items() if r.get("outcome") == "open"]
        self.assertEqual(open_left, [], "transactions whose end no client recorded")
        self.assertTrue(all(c.committed > 0 for c in self.clients), [c.committed for c in self.clients])

    def test_2_reads_during_the_run_saw_committed_content(self):
        w = self.world
        hard = [m for m, key in w.read_mismatches if key not in w.dirty_keys]
        soft = [m for m, key in w.read_mismatches if key in w.dirty_keys]
        for m in soft:
            print("  note: read after the crash, before recovery put the key back? " + m)
        self.assertEqual(hard, [], "\n".join(hard[:30]))

    def test_3_committed_rows_point_at_their_files(self):
        expected = self.expected_rows()
        victim_key = self.world.victim_local_key
        problems = []
        for table in TABLES:
            got = {r[0]: r for r in FX.sql(
                "SELECT id, owner, so_backend(lf), so_filename(lf), so_etag(lf), so_get(lf), "
                "so_backend(sf), so_filename(sf), so_etag(sf), so_get(sf) FROM %s" % table)}
            want = {rid: v for (t, rid), v in expected.items() if t == table}
            for rid in sorted(set(got) - set(want)):
                problems.append("%s id %s (owner %s) was never committed by its client: lf %s, sf %s"
                                % (table, rid, got[rid][1], got[rid][3], got[rid][7]))
            for rid in sorted(set(want) - set(got)):
                problems.append("%s id %s committed by client %d is missing" % (table, rid, want[rid][0]))
            for rid in sorted(set(want) & set(got)):
                row = got[rid]
                cid, objs = want[rid]
                if row[1] != cid:
                    problems.append("%s id %s: owner %s, committed by client %d" % (table, rid, row[1], cid))
                for i, kind in enumerate(KINDS):
                    backend, key, etag, data = row[2 + 4 * i: 6 + 4 * i]
                    obj = objs[kind]
                    where = "%s id %s %s" % (table, rid, COLUMN[kind])
                    if obj is None:
                        if key is not None:
                            problems.append("%s: %s, committed as NULL" % (where, key))
                        continue
                    if (backend, key) != (BACKEND[kind], obj.key):
                        problems.append("%s: names %s/%s, committed %s/%s" % (where, backend, key,
                                                                              BACKEND[kind], obj.key))
                    if etag != md5(obj.content):
                        problems.append("%s (%s): etag %s, content written has md5 %s"
                                        % (where, obj.key, etag, md5(obj.content)))
                    if data is None or bytes(data) != obj.content:
                        problems.append("%s (%s): so_get returned %s bytes (md5 %s), the client wrote %d (md5 %s)"
                                        % (where, obj.key, None if data is None else len(data),
                                           data is not None and md5(bytes(data)), len(obj.content), md5(obj.content)))
                    problems += self.check_stored(kind, obj, where)
        # Committed objects no row references: still there until swept.
        for (kind, key), obj in sorted(self.expected_free().items()):
            problems += self.check_stored(kind, obj, "unreferenced " + key)
            got = FX.sql("SELECT so_get(%s::stored_object)", (obj.value,))[0][0]
            if bytes(got) != obj.content:
                problems.append("unreferenced %s: so_get returned other content" % key)
        problems = [p + (" [the victim's key: the overwrite its killed COMMIT had promoted is still in place]"
                         if victim_key and "(%s)" % victim_key in p or ": %s holds" % victim_key in p else "")
                    for p in problems]
        self.assertEqual(problems, [], "\n".join(problems[:60]))
        print("  %d committed rows, %d unreferenced objects checked" % (len(expected), len(self.expected_free())))

    def check_stored(self, kind, obj, where):
        """The object's bytes as an independent client reads them."""
        if kind == "l":
            path = os.path.join(self.root, obj.key)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                return ["%s: %s is missing on disk" % (where, path)]
        else:
            head = FX.head(self.s3_prefix + obj.key)
            if head is None:
                return ["%s: s3 key %s is missing in the bucket" % (where, obj.key)]
            data = FX.get_bytes(self.s3_prefix + obj.key)
        if data != obj.content:
            return ["%s: %s holds %d bytes (md5 %s), the client wrote %d (md5 %s)"
                    % (where, obj.key, len(data), md5(data), len(obj.content), md5(obj.content))]
        return []

    def explain(self, kind, key):
        """Why an unreferenced object may exist before the sweep; None: it may not."""
        w = self.world
        if (kind, key) in self.expected_free():
            return "left unreferenced on purpose"
        if re.search(r"(^|/)\.so-tmp-", key):
            return "temporary file of a write the crash cut"
        m = re.search(r"(?:^|/)c(\d+)/(?:free-)?t(\d+)-\d+\.bin$", key)
        if m:
            tokens = ["%s.%s" % m.groups()]
        else:
            # Staged versions and backups carry the writer's xid.
            m = re.search(r"\.so-(?:new|old)-(\d+)-", key) or re.search(r"^\.so-staging/(\d+)-", key)
            if not m:
                return None
            tokens = w.by_xid.get(m.group(1), [])
        for token in tokens:
            why = self.explain_token(kind, token, key)
            if why:
                return why
        return None

    def explain_token(self, kind, token, key):
        rec = self.world.txs.get(token)
        if rec is None:
            return None
        outcome = rec.get("outcome")
        if outcome == "interrupted":
            return "written by a transaction the crash interrupted"
        if kind == "s" and rec.get("end_era") == 0 and outcome not in ("committed", "in-doubt-committed"):
            return "S3 write of a transaction that ended (%s) before the crash: undo handed to the worker" % outcome
        if (kind == "s" and rec.get("end_era") == 0 and rec.get("s3_undone")
                and (kind, key) not in self.world.history):
            return "S3 write undone by a rolled-back savepoint of a transaction committed before the crash"
        if kind == "s" and outcome == "store-error":
            return "S3 write of a transaction that failed with a store error in the outage"
        return None

    def describe_token(self, token):
        return dict(self.world.txs.get(token) or {}, token=token)

    def describe(self, key):
        m = re.search(r"(?:^|/)c(\d+)/(?:free-)?t(\d+)-\d+\.bin$", key)
        if m:
            return self.describe_token("%s.%s" % m.groups())
        m = re.search(r"\.so-(?:new|old)-(\d+)-", key) or re.search(r"^\.so-staging/(\d+)-", key)
        if m:
            return [self.describe_token(t) for t in self.world.by_xid.get(m.group(1), [])]
        return None

    def test_4_orphans_explained_then_swept(self):
        problems = []
        for kind in KINDS:
            backend = BACKEND[kind]
            listed = self.orphans(backend)
            on_store = (self.local_files() if kind == "l" else self.s3_keys()) - self.referenced(kind)
            if set(listed) != on_store:
                problems.append("%s: so_orphans and the store disagree: only so_orphans %s, only the store %s"
                                % (backend, sorted(set(listed) - on_store)[:10], sorted(on_store - set(listed))[:10]))
            why = collections.Counter()
            for key in sorted(on_store | set(listed)):
                reason = self.explain(kind, key)
                if reason is None:
                    problems.append("%s: unexplained orphan %s (transaction: %s; committed history: %s)"
                                    % (backend, key, self.describe(key), self.world.history.get((kind, key))))
                else:
                    why[reason] += 1
            print("  %s before so_gc: %d orphans: %s" % (backend, len(on_store | set(listed)), dict(why)))
        journal = os.path.join(self.root, ".so-journal")
        entries = sorted(os.listdir(journal)) if os.path.isdir(journal) else []
        if entries:
            print("  note: .so-journal holds %s before so_gc" % entries)
        # The sweep.
        for kind in KINDS:
            swept = FX.sql("SELECT action, count(*) FROM so_gc(%s, '0 seconds', dry_run => false) "
                           "GROUP BY 1 ORDER BY 1", (BACKEND[kind],))
            print("  so_gc(%s): %s" % (BACKEND[kind], swept))
        for kind in KINDS:
            backend = BACKEND[kind]
            left = self.orphans(backend)
            if left:
                problems.append("%s: so_orphans after so_gc: %s" % (backend, left[:20]))
            on_store = (self.local_files() if kind == "l" else self.s3_keys()) - self.referenced(kind)
            if on_store:
                problems.append("%s: unreferenced after so_gc: %s" % (backend, sorted(on_store)[:20]))
            missing = self.referenced(kind) - (self.local_files() if kind == "l" else self.s3_keys())
            if missing:
                problems.append("%s: referenced but gone after so_gc: %s" % (backend, sorted(missing)[:20]))
        # The sweep (which finishes overwrites a crash interrupted) left every
        # committed row's content as its client wrote it.
        for (table, rid), (cid, objs) in sorted(self.expected_rows().items()):
            for kind, obj in objs.items():
                if obj is not None:
                    problems += self.check_stored(kind, obj, "after so_gc, %s id %s %s" % (table, rid, COLUMN[kind]))
        uploads = FX.multipart_uploads(self.s3_prefix)
        if uploads:
            problems.append("multipart uploads left: %s" % uploads)
        self.assertEqual(problems, [], "\n".join(problems[:60]))

    def test_5_no_pending_deletes(self):
        rows = FX.sql("SELECT so_filename(object), attempts, last_error FROM so_pending_deletes ORDER BY id")
        self.assertEqual(rows, [], "so_pending_deletes after the worker and so_process_pending: %s" % rows[:20])

    def test_6_server_log_clean(self):
        try:
            with open(self.server_log, "rb") as f:
                f.seek(self.log_offset)
                text = f.read().decode(errors="replace")
        except OSError as e:
            self.skipTest("no server log at %s: %s" % (self.server_log, e))
        bad = []
        killed = 0
        for line in text.splitlines():
            if "terminated by signal" in line:
                if "(PID %d) was terminated by signal 9" % self.victim_pid in line:
                    killed += 1
                else:
                    bad.append(line)
            elif re.search(r"\bPANIC\b|TRAP:", line):
                bad.append(line)
        self.assertEqual(bad, [], "\n".join(bad[:20]))
        self.assertEqual(killed, 1, "the victim's kill -9 is not in the log")


if __name__ == "__main__":
    sys.exit(s3support.main(FX, [WorkloadTest]))
