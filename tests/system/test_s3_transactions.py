#!/usr/bin/python3
"""System test: transactions and concurrent sessions on an S3 backend.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_s3_transactions.py

with PGHOST/PGPORT/PGUSER naming a running cluster (stored_object installed)
and the S3 fixture's variables exported (S3_ENDPOINT, S3_ACCESS_KEY_ID, ...;
see tests/system/s3support.py). Two (or more) psycopg2 sessions with explicit
BEGIN/COMMIT/ROLLBACK, and boto3 as the independent witness of what is in
the bucket: aborted puts and rolled-back savepoints leave nothing behind,
deletes and overwrites are invisible to other sessions until commit,
create-only puts race safely, PREPARE TRANSACTION is refused.

The last line of output is "N passed, N failed"; the exit status is non-zero
on any failure.
"""

import os
import random
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3support  # noqa: E402

import psycopg2  # noqa: E402

FX = s3support.Fixture("tx")


class TxBase(s3support.SqlAssertions, unittest.TestCase):
    FX = FX
    kp = None  # full key prefix of backend 'tx' in the bucket

    @classmethod
    def setUpClass(cls):
        if TxBase.kp is None:
            TxBase.kp = FX.register("tx", "tx")
            TxBase.a = FX.connect()
            TxBase.b = FX.connect()

    def setUp(self):
        # Each test starts with both sessions idle, whatever the last one did.
        for c in (self.a, self.b):
            if c.closed:
                raise RuntimeError("a session was closed")
            if c.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                FX.sql("ROLLBACK", conn=c)
        self.key_base = self.id().rsplit(".", 1)[-1]

    # helpers ------------------------------------------------------------------

    def k(self, name):
        """A key unique to this test."""
        return "%s/%s" % (self.key_base, name)

    def s3key(self, key):
        return self.kp + key

    def run_sql(self, conn, query, args=None):
        return FX.sql(query, args, conn)

    def put(self, conn, key, content, overwrite=False):
        return FX.value("SELECT so_put('tx', %s, %s, overwrite => %s)::text",
                        (key, psycopg2.Binary(content), overwrite), conn)

    def get(self, conn, obj):
        return bytes(FX.value("SELECT so_get(%s::stored_object)", (obj,), conn))

    def in_s3(self, key):
        return FX.head(self.s3key(key)) is not None

    def s3_bytes(self, key):
        return FX.get_bytes(self.s3key(key))

    def staged(self):
        FX.wait_for_worker()  # it removes what overwrites staged
        return FX.list_keys("tx/.so-staging/")

    def assertGone(self, key):
        FX.wait_for_worker()  # deletes after commit, undos after an abort
        self.assertIsNone(FX.head(self.s3key(key)), "%s should not exist in the bucket" % key)


class AbortTest(TxBase):
    """Puts of an aborted transaction or rolled-back savepoint are removed."""

    def test_rollback_removes_uploaded_objects(self):
        a = self.a
        self.run_sql(a, "BEGIN")
        self.put(a, self.k("one.bin"), b"one")
        self.put(a, self.k("two ü.bin"), b"two" * 1000)
        # Written at once: the store has them before the commit.
        self.assertTrue(self.in_s3(self.k("one.bin")))
        self.assertTrue(self.in_s3(self.k("two ü.bin")))
        self.run_sql(a, "ROLLBACK")
        self.assertGone(self.k("one.bin"))
        self.assertGone(self.k("two ü.bin"))

    def test_error_aborts_and_removes(self):
        a = self.a
        self.run_sql(a, "BEGIN")
        self.put(a, self.k("err.bin"), b"doomed")
        self.assertTrue(self.in_s3(self.k("err.bin")))
        self.assertSqlError("22012", "SELECT 1/0", conn=a)
        self.run_sql(a, "ROLLBACK")
        self.assertGone(self.k("err.bin"))

    def test_rows_and_objects_roll_back_together(self):
        a = self.a
        self.run_sql(a, "CREATE TABLE IF NOT EXISTS docs (id serial PRIMARY KEY, f stored_object)")
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "INSERT INTO docs (f) SELECT so_put('tx', %s || g || '.bin', 'x'::bytea) "
                        "FROM generate_series(1, 5) g", (self.k("row-"),))
        for g in range(1, 6):
            self.assertTrue(self.in_s3(self.k("row-%d.bin" % g)))
        self.run_sql(a, "ROLLBACK")
        for g in range(1, 6):
            self.assertGone(self.k("row-%d.bin" % g))
        self.assertEqual(FX.value("SELECT count(*) FROM docs WHERE so_filename(f) LIKE %s",
                                  (self.k("row-") + "%",), a), 0)

    def test_rollback_to_savepoint_removes_only_its_own(self):
        a = self.a
        self.run_sql(a, "BEGIN")
        self.put(a, self.k("keep1.bin"), b"keep1")
        self.run_sql(a, "SAVEPOINT s")
        self.put(a, self.k("gone1.bin"), b"gone1")
        self.put(a, self.k("gone2.bin"), b"gone2")
        self.run_sql(a, "ROLLBACK TO SAVEPOINT s")
        # Removed at the rollback to the savepoint, before the commit.
        self.assertGone(self.k("gone1.bin"))
        self.assertGone(self.k("gone2.bin"))
        self.assertTrue(self.in_s3(self.k("keep1.bin")))
        self.put(a, self.k("keep2.bin"), b"keep2")
        self.run_sql(a, "RELEASE SAVEPOINT s")
        self.run_sql(a, "COMMIT")
        self.assertEqual(self.s3_bytes(self.k("keep1.bin")), b"keep1")
        self.assertEqual(self.s3_bytes(self.k("keep2.bin")), b"keep2")
        self.assertGone(self.k("gone1.bin"))
        self.assertGone(self.k("gone2.bin"))

    def test_released_inner_savepoint_rolls_back_with_outer(self):
        a = self.a
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "SAVEPOINT outer_sp")
        self.run_sql(a, "SAVEPOINT inner_sp")
        self.put(a, self.k("inner.bin"), b"inner")
        self.run_sql(a, "RELEASE SAVEPOINT inner_sp")
        self.assertTrue(self.in_s3(self.k("inner.bin")))
        self.run_sql(a, "ROLLBACK TO SAVEPOINT outer_sp")
        self.assertGone(self.k("inner.bin"))
        self.run_sql(a, "COMMIT")
        self.assertGone(self.k("inner.bin"))

    def test_rollback_keeps_object_replaced_by_another_session(self):
        # B creates, A overwrites and commits, B rolls back: A's committed
        # object is not B's to remove.
        a, b = self.a, self.b
        key = self.k("replaced.bin")
        self.run_sql(b, "BEGIN")
        self.put(b, key, b"from b")
        self.run_sql(a, "BEGIN")
        obj_a = self.put(a, key, b"from a, committed", overwrite=True)
        self.run_sql(a, "COMMIT")
        self.run_sql(b, "ROLLBACK")
        self.assertEqual(self.s3_bytes(key), b"from a, committed")
        self.assertEqual(self.get(a, obj_a), b"from a, committed")


class DeleteTest(TxBase):
    """so_delete only schedules: the object goes at COMMIT, never on rollback."""

    def test_delete_invisible_to_others_until_commit(self):
        a, b = self.a, self.b
        key = self.k("del.bin")
        obj = self.put(a, key, b"to be deleted")
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "SELECT so_delete(%s::stored_object)", (obj,))
        # Another session (and the bucket) still has it.
        self.assertEqual(self.get(b, obj), b"to be deleted")
        self.assertTrue(FX.value("SELECT so_exists(%s::stored_object)", (obj,), b))
        self.assertTrue(self.in_s3(key))
        self.run_sql(a, "COMMIT")
        self.assertGone(key)
        e = self.assertSqlError("58P01", "SELECT so_get(%s::stored_object)", (obj,), conn=b)
        self.assertIn(key, e.diag.message_primary)
        self.assertFalse(FX.value("SELECT so_exists(%s::stored_object)", (obj,), b))

    def test_rolled_back_delete_keeps_object(self):
        a = self.a
        key = self.k("kept.bin")
        obj = self.put(a, key, b"kept")
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "SELECT so_delete(%s::stored_object)", (obj,))
        self.run_sql(a, "ROLLBACK")
        self.assertEqual(self.s3_bytes(key), b"kept")
        # Rolled back to a savepoint, then committed.
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "SAVEPOINT s")
        self.run_sql(a, "SELECT so_delete(%s::stored_object)", (obj,))
        self.run_sql(a, "ROLLBACK TO SAVEPOINT s")
        self.run_sql(a, "COMMIT")
        self.assertEqual(self.s3_bytes(key), b"kept")
        self.assertEqual(self.get(a, obj), b"kept")

    def test_put_then_delete_in_one_transaction(self):
        a = self.a
        key = self.k("short-lived.bin")
        self.run_sql(a, "BEGIN")
        obj = self.put(a, key, b"short-lived")
        self.run_sql(a, "SELECT so_delete(%s::stored_object)", (obj,))
        self.assertTrue(self.in_s3(key))
        self.run_sql(a, "COMMIT")
        self.assertGone(key)

    def test_committed_delete_keeps_key_reused_with_other_content(self):
        a, b = self.a, self.b
        key = self.k("reused-other.bin")
        obj = self.put(a, key, b"old bytes")
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "SELECT so_delete(%s::stored_object)", (obj,))
        obj_b = self.put(b, key, b"new bytes from b", overwrite=True)
        self.run_sql(a, "COMMIT")
        self.assertEqual(self.s3_bytes(key), b"new bytes from b")
        self.assertEqual(self.get(b, obj_b), b"new bytes from b")


class CreateOnlyTest(TxBase):
    """Two sessions putting the same key create-only: exactly one wins."""

    def test_second_session_fails_at_once(self):
        a, b = self.a, self.b
        key = self.k("contended.bin")
        self.run_sql(a, "BEGIN")
        self.put(a, key, b"from a")
        started = time.monotonic()
        e = self.assertSqlError("58P02", "SELECT so_put('tx', %s, 'from b'::bytea)", (key,), conn=b)
        self.assertLess(time.monotonic() - started, 5, "58P02 at once, not after a wait")
        self.assertIn(key, e.diag.message_primary)
        self.run_sql(a, "COMMIT")
        self.assertEqual(self.s3_bytes(key), b"from a")

    def test_loser_can_retry_after_winner_rolls_back(self):
        a, b = self.a, self.b
        key = self.k("retry.bin")
        self.run_sql(a, "BEGIN")
        self.put(a, key, b"from a")
        self.assertSqlError("58P02", "SELECT so_put('tx', %s, 'from b'::bytea)", (key,), conn=b)
        self.run_sql(a, "ROLLBACK")
        self.assertGone(key)
        obj = self.put(b, key, b"from b")
        self.assertEqual(self.s3_bytes(key), b"from b")
        self.assertEqual(self.get(a, obj), b"from b")

    def test_failed_put_in_transaction_does_not_remove_winner(self):
        # The loser's transaction aborts: its undo must not touch the key it
        # never wrote.
        a, b = self.a, self.b
        key = self.k("winner.bin")
        self.put(a, key, b"winner")
        self.run_sql(b, "BEGIN")
        self.put(b, self.k("loser-own.bin"), b"loser's own")
        self.assertSqlError("58P02", "SELECT so_put('tx', %s, 'loser'::bytea)", (key,), conn=b)
        self.run_sql(b, "ROLLBACK")
        self.assertEqual(self.s3_bytes(key), b"winner")
        self.assertGone(self.k("loser-own.bin"))

    def test_threaded_race_over_many_keys(self):
        sessions, nkeys = 4, 24
        keys = [self.k("race-%02d.bin" % i) for i in range(nkeys)]
        conns = [FX.connect() for _ in range(sessions)]
        barrier = threading.Barrier(sessions)
        outcomes = [dict() for _ in range(sessions)]

        def worker(n):
            conn = conns[n]
            order = list(keys)
            random.Random(n).shuffle(order) if n % 2 else None  # half in order, half shuffled
            barrier.wait(timeout=30)
            for key in order:
                content = ("session %d wrote %s" % (n, key)).encode()
                try:
                    obj = FX.value("SELECT so_put('tx', %s, %s)::text", (key, psycopg2.Binary(content)), conn)
                    outcomes[n][key] = ("ok", content, obj)
                except psycopg2.Error as e:
                    outcomes[n][key] = (e.pgcode, None, e.pgerror)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in threads), "a racing session hung")
        for key in keys:
            with self.subTest(key=key):
                results = [outcomes[n].get(key) for n in range(sessions)]
                self.assertTrue(all(r is not None for r in results), results)
                winners = [r for r in results if r[0] == "ok"]
                losers = [r for r in results if r[0] != "ok"]
                self.assertEqual(len(winners), 1, results)
                self.assertEqual([r[0] for r in losers], ["58P02"] * (sessions - 1), results)
                # The bucket holds the winner's bytes, with the etag it reported.
                head = FX.head(self.s3key(key))
                self.assertEqual(self.s3_bytes(key), winners[0][1])
                self.assertEqual(head["ETag"].strip('"'),
                                 FX.value("SELECT so_etag(%s::stored_object)", (winners[0][2],)))
        for c in conns:
            c.close()
            FX.connections.remove(c)


class PrepareTest(TxBase):
    """PREPARE TRANSACTION after puts or deletes is refused, and undone."""

    def test_prepare_after_put_refused(self):
        a = self.a
        key = self.k("prepared.bin")
        self.run_sql(a, "BEGIN")
        self.put(a, key, b"prepared?")
        e = self.assertSqlError("0A000", "PREPARE TRANSACTION 'so_s3_tx_put'", conn=a)
        self.assertIn("PREPARE", e.diag.message_primary)
        self.run_sql(a, "ROLLBACK")
        self.assertGone(key)
        self.assertEqual(FX.value("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'so_s3_tx%'"), 0)

    def test_prepare_after_delete_refused(self):
        a = self.a
        key = self.k("not-deleted.bin")
        obj = self.put(a, key, b"stays")
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "SELECT so_delete(%s::stored_object)", (obj,))
        self.assertSqlError("0A000", "PREPARE TRANSACTION 'so_s3_tx_del'", conn=a)
        self.run_sql(a, "ROLLBACK")
        self.assertEqual(self.s3_bytes(key), b"stays")
        self.assertEqual(FX.value("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'so_s3_tx%'"), 0)
        self.assertEqual(FX.value("SELECT count(*) FROM so_pending_deletes WHERE so_filename(object) = %s",
                                  (key,)), 0)

    def test_prepare_after_overwrite_refused(self):
        a = self.a
        key = self.k("over-prepared.bin")
        self.put(a, key, b"old")
        self.run_sql(a, "BEGIN")
        self.put(a, key, b"new", overwrite=True)
        self.assertSqlError("0A000", "PREPARE TRANSACTION 'so_s3_tx_over'", conn=a)
        self.run_sql(a, "ROLLBACK")
        self.assertEqual(self.s3_bytes(key), b"old")
        self.assertEqual(self.staged(), [])


class OverwriteTest(TxBase):
    """overwrite => true: staged under .so-staging/, copied over the key just
    before commit; other sessions see the old content until then."""

    def test_overwrite_invisible_until_commit(self):
        a, b = self.a, self.b
        key = self.k("doc.txt")
        old = self.put(a, key, b"old content")
        self.run_sql(a, "BEGIN")
        new = self.put(a, key, b"new content, longer", overwrite=True)
        # The writer reads its own new version; everyone else the old one.
        self.assertEqual(self.get(a, new), b"new content, longer")
        self.assertEqual(self.get(b, old), b"old content")
        self.assertEqual(self.s3_bytes(key), b"old content")
        self.assertEqual(len(self.staged()), 1, self.staged())
        self.run_sql(a, "COMMIT")
        self.assertEqual(self.get(b, old), b"new content, longer")
        self.assertEqual(self.s3_bytes(key), b"new content, longer")
        head = FX.head(self.s3key(key))
        self.assertEqual(head["ETag"].strip('"'), FX.value("SELECT so_etag(%s::stored_object)", (new,)))
        self.assertEqual(head["ContentLength"], FX.value("SELECT so_size(%s::stored_object)", (new,)))
        self.assertEqual(self.staged(), [])

    def test_aborted_overwrite_keeps_old_content(self):
        a, b = self.a, self.b
        key = self.k("keep-old.txt")
        old = self.put(a, key, b"old content")
        self.run_sql(a, "BEGIN")
        self.put(a, key, b"never committed", overwrite=True)
        self.assertEqual(len(self.staged()), 1, self.staged())
        self.run_sql(a, "ROLLBACK")
        self.assertEqual(self.s3_bytes(key), b"old content")
        self.assertEqual(self.get(b, old), b"old content")
        self.assertEqual(self.staged(), [])

    def test_overwrite_rolled_back_to_savepoint(self):
        a = self.a
        key = self.k("sp-over.txt")
        old = self.put(a, key, b"v1")
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "SAVEPOINT s")
        self.put(a, key, b"v2 (rolled back)", overwrite=True)
        self.run_sql(a, "ROLLBACK TO SAVEPOINT s")
        self.assertEqual(self.staged(), [])
        # The session reads the committed version again.
        self.assertEqual(self.get(a, old), b"v1")
        new = self.put(a, key, b"v3", overwrite=True)
        self.run_sql(a, "COMMIT")
        self.assertEqual(self.s3_bytes(key), b"v3")
        self.assertEqual(self.get(a, new), b"v3")
        self.assertEqual(self.staged(), [])

    def test_overwrite_of_missing_key_creates_it(self):
        a, b = self.a, self.b
        key = self.k("fresh.txt")
        self.run_sql(a, "BEGIN")
        obj = self.put(a, key, b"fresh", overwrite=True)
        self.assertGone(key)
        self.assertFalse(FX.value("SELECT so_exists(%s::stored_object)", (obj,), b))
        self.run_sql(a, "COMMIT")
        self.assertEqual(self.s3_bytes(key), b"fresh")
        self.assertEqual(self.staged(), [])

    def test_two_overwrites_last_commit_wins(self):
        a, b = self.a, self.b
        key = self.k("twice.txt")
        self.put(a, key, b"base")
        self.run_sql(a, "BEGIN")
        self.run_sql(b, "BEGIN")
        self.put(a, key, b"from a", overwrite=True)
        self.put(b, key, b"from b", overwrite=True)
        self.assertEqual(len(self.staged()), 2)
        self.run_sql(a, "COMMIT")
        self.assertEqual(self.s3_bytes(key), b"from a")
        self.run_sql(b, "COMMIT")
        self.assertEqual(self.s3_bytes(key), b"from b")
        self.assertEqual(self.staged(), [])


class CopyTest(TxBase):
    """so_copy between two backends of one store copies server-side, except
    what this transaction staged (the store has not got it yet)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not hasattr(CopyTest, "archive_kp"):
            CopyTest.archive_kp = FX.register("tx_archive", "tx-archive")

    def copy(self, conn, obj, key):
        return FX.value("SELECT so_copy(%s::stored_object, 'tx_archive', %s)::text", (obj, key), conn)

    def test_same_store_copies_server_side(self):
        obj = self.put(self.a, self.k("src.txt"), b"committed")
        before = FX.control.stats()
        copied = self.copy(self.a, obj, self.k("dst.txt"))
        d = s3support.delta(before, FX.control.stats())
        self.assertEqual(d.get("op:CopyObject"), 1, d)
        self.assertNotIn("op:GetObject", d)
        self.assertEqual(FX.get_bytes(self.archive_kp + self.k("dst.txt")), b"committed")
        self.assertEqual(self.get(self.a, copied), b"committed")

    def test_staged_source_is_streamed(self):
        key = self.k("src.txt")
        self.put(self.a, key, b"committed")
        self.run_sql(self.a, "BEGIN")
        obj = self.put(self.a, key, b"staged in this transaction", overwrite=True)
        before = FX.control.stats()
        self.copy(self.a, obj, self.k("dst.txt"))
        d = s3support.delta(before, FX.control.stats())
        self.assertNotIn("op:CopyObject", d)
        self.run_sql(self.a, "COMMIT")
        self.assertEqual(FX.get_bytes(self.archive_kp + self.k("dst.txt")), b"staged in this transaction")


if __name__ == "__main__":
    sys.exit(s3support.main(FX, [AbortTest, DeleteTest, CreateOnlyTest, PrepareTest, OverwriteTest, CopyTest]))
