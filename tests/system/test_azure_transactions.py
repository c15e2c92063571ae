#!/usr/bin/python3
"""System test: transactions and concurrent sessions on an Azure Blob backend.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_azure_transactions.py

with PGHOST/PGPORT/PGUSER naming a running cluster (stored_object installed,
with its background worker) and the Azure fixture's variables exported
(AZURE_ENDPOINT, AZURE_ACCOUNT, AZURE_ACCOUNT_KEY, ...; see
tests/system/azuresupport.py). Two (or more) psycopg2 sessions with explicit
BEGIN/COMMIT/ROLLBACK on a table whose stored_object column is managed
(so_manage_column), and a Shared Key REST client of the test's own (and the
SDK where it says so) as the independent witness of what is in the
container:

- aborted puts and rolled-back savepoints leave nothing behind;
- deletes (of managed rows, or by so_delete) are invisible to other
  sessions until commit, carried out after it, never on rollback;
- overwrites are invisible until commit, an aborted one keeps the old
  content, the last of two commits wins, attributes survive the copy into
  place, and no staged blob stays;
- create-only puts race safely: the second fails at once (58P02);
- PREPARE TRANSACTION is refused;
- so_copy between two backends of one account is a server-side Copy Blob.

The last line of output is "N passed, N failed"; the exit status is non-zero
on any failure.
"""

import hashlib
import json
import os
import random
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import azuresupport  # noqa: E402
from azuresupport import MIB, b64md5, delta  # noqa: E402

import psycopg2  # noqa: E402

FX = azuresupport.Fixture("tx")


class TxBase(azuresupport.SqlAssertions, unittest.TestCase):
    FX = FX
    kp = None  # full name prefix of backend 'tx' in the container

    @classmethod
    def setUpClass(cls):
        if TxBase.kp is None:
            TxBase.kp = FX.register("tx", "tx")
            TxBase.bkp = FX.register("tx_blk", "tx-blk", block_size=MIB)
            FX.sql("CREATE TABLE docs (id serial PRIMARY KEY, name text, f stored_object)")
            FX.sql("CREATE INDEX ON docs (f)")
            FX.sql("SELECT so_manage_column('docs', 'f')")
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

    def run_sql(self, conn, query, args=None):
        return FX.sql(query, args, conn)

    def put(self, conn, key, content, overwrite=False, backend="tx", attributes=None):
        return FX.value("SELECT so_put(%s, %s, %s, overwrite => %s, attributes => %s)::text",
                        (backend, key, psycopg2.Binary(content), overwrite,
                         json.dumps(attributes) if attributes else None), conn)

    def insert(self, conn, key, content, overwrite=False):
        """A managed row holding a new object; (row id, value)."""
        return FX.sql("INSERT INTO docs (name, f) VALUES (%s, so_put('tx', %s, %s, overwrite => %s)) "
                      "RETURNING id, f::text", (key, key, psycopg2.Binary(content), overwrite), conn)[0]

    def get(self, conn, obj):
        return bytes(FX.value("SELECT so_get(%s::stored_object)", (obj,), conn))

    def in_store(self, key, kp=None):
        return FX.head((kp or self.kp) + key) is not None

    def store_bytes(self, key, kp=None):
        return FX.get_bytes((kp or self.kp) + key)

    def staged(self, kp=None):
        FX.wait_for_worker()  # it removes what overwrites staged
        return FX.list_names((kp or self.kp) + ".so-staging/")

    def assertGone(self, key, kp=None):
        FX.wait_for_worker()  # deletes after commit, undos after an abort
        self.assertIsNone(FX.head((kp or self.kp) + key), "%s should not exist in the container" % key)


class AbortTest(TxBase):
    """Puts of an aborted transaction or rolled-back savepoint are removed."""

    def test_rollback_removes_uploaded_blobs(self):
        a = self.a
        self.run_sql(a, "BEGIN")
        self.insert(a, self.k("one.bin"), b"one")
        self.insert(a, self.k("two ü#.bin"), b"two" * 1000)
        # Written at once: the store has them before the commit.
        self.assertTrue(self.in_store(self.k("one.bin")))
        self.assertTrue(self.in_store(self.k("two ü#.bin")))
        self.run_sql(a, "ROLLBACK")
        self.assertGone(self.k("one.bin"))
        self.assertGone(self.k("two ü#.bin"))
        self.assertEqual(FX.value("SELECT count(*) FROM docs WHERE name LIKE %s", (self.key_base + "/%",)), 0)

    def test_error_aborts_and_removes(self):
        a = self.a
        self.run_sql(a, "BEGIN")
        self.insert(a, self.k("err.bin"), b"doomed")
        self.assertTrue(self.in_store(self.k("err.bin")))
        self.assertSqlError("22012", "SELECT 1/0", conn=a)
        self.run_sql(a, "ROLLBACK")
        self.assertGone(self.k("err.bin"))

    def test_rows_and_objects_roll_back_together(self):
        a = self.a
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "INSERT INTO docs (name, f) SELECT 'row', so_put('tx', %s || g || '.bin', 'x'::bytea) "
                        "FROM generate_series(1, 5) g", (self.k("row-"),))
        for g in range(1, 6):
            self.assertTrue(self.in_store(self.k("row-%d.bin" % g)))
        self.run_sql(a, "ROLLBACK")
        for g in range(1, 6):
            self.assertGone(self.k("row-%d.bin" % g))
        self.assertEqual(FX.value("SELECT count(*) FROM docs WHERE so_filename(f) LIKE %s",
                                  (self.k("row-") + "%",), a), 0)

    def test_rollback_to_savepoint_removes_only_its_own(self):
        a = self.a
        self.run_sql(a, "BEGIN")
        self.insert(a, self.k("keep1.bin"), b"keep1")
        self.run_sql(a, "SAVEPOINT s")
        self.insert(a, self.k("gone1.bin"), b"gone1")
        self.put(a, self.k("gone2.bin"), b"gone2")
        self.run_sql(a, "ROLLBACK TO SAVEPOINT s")
        # Removed at the rollback to the savepoint, before the commit.
        self.assertGone(self.k("gone1.bin"))
        self.assertGone(self.k("gone2.bin"))
        self.assertTrue(self.in_store(self.k("keep1.bin")))
        self.insert(a, self.k("keep2.bin"), b"keep2")
        self.run_sql(a, "RELEASE SAVEPOINT s")
        self.run_sql(a, "COMMIT")
        self.assertEqual(self.store_bytes(self.k("keep1.bin")), b"keep1")
        self.assertEqual(self.store_bytes(self.k("keep2.bin")), b"keep2")
        self.assertGone(self.k("gone1.bin"))
        self.assertGone(self.k("gone2.bin"))

    def test_released_inner_savepoint_rolls_back_with_outer(self):
        a = self.a
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "SAVEPOINT outer_sp")
        self.run_sql(a, "SAVEPOINT inner_sp")
        self.insert(a, self.k("inner.bin"), b"inner")
        self.run_sql(a, "RELEASE SAVEPOINT inner_sp")
        self.assertTrue(self.in_store(self.k("inner.bin")))
        self.run_sql(a, "ROLLBACK TO SAVEPOINT outer_sp")
        self.assertGone(self.k("inner.bin"))
        self.run_sql(a, "COMMIT")
        self.assertGone(self.k("inner.bin"))

    def test_rollback_keeps_object_replaced_by_another_session(self):
        # B creates, A overwrites and commits, B rolls back: A's committed
        # blob is not B's to remove (its Content-MD5 is not the one B wrote).
        a, b = self.a, self.b
        key = self.k("replaced.bin")
        self.run_sql(b, "BEGIN")
        self.put(b, key, b"from b")
        self.run_sql(a, "BEGIN")
        obj_a = self.put(a, key, b"from a, committed", overwrite=True)
        self.run_sql(a, "COMMIT")
        self.run_sql(b, "ROLLBACK")
        FX.wait_for_worker()
        self.assertEqual(self.store_bytes(key), b"from a, committed")
        self.assertEqual(self.get(a, obj_a), b"from a, committed")

    def test_adoption_rolled_back_removes_the_blob(self):
        # so_adopt of a blob the SDK wrote: single shot (it has Content-MD5)
        # and in blocks (it has none: the value's etag is Azure's ETag). An
        # abort removes either again.
        a = self.a
        for key, options in ((self.k("adopted.bin"), {}),
                             (self.k("adopted-blocks.bin"), {"block_size": MIB})):
            with self.subTest(key=key):
                content = os.urandom(MIB + 10)
                FX.sdk_put(self.kp + key, content, **options)
                self.run_sql(a, "BEGIN")
                obj = FX.value("INSERT INTO docs (name, f) VALUES ('adopted', so_adopt('tx', %s, %s)) "
                               "RETURNING f::text", (key, len(content)), a)
                etag = json.loads(obj)["etag"]
                if options:
                    self.assertEqual(etag, FX.head(self.kp + key)["etag"].strip('"'))
                else:
                    self.assertEqual(etag, hashlib.md5(content).hexdigest())
                self.run_sql(a, "ROLLBACK")
                self.assertGone(key)

    def test_block_upload_rolled_back(self):
        a = self.a
        content = os.urandom(2 * MIB + 100)
        self.run_sql(a, "BEGIN")
        before = FX.control.stats()
        self.put(a, self.k("blocks.bin"), content, backend="tx_blk")
        self.assertEqual(delta(before, FX.control.stats()).get("op:PutBlockList"), 1)
        self.assertEqual(self.store_bytes(self.k("blocks.bin"), self.bkp), content)
        self.run_sql(a, "ROLLBACK")
        self.assertGone(self.k("blocks.bin"), self.bkp)


class DeleteTest(TxBase):
    """Deletes only schedule: the blob goes after COMMIT, never on rollback."""

    def test_delete_invisible_to_others_until_commit(self):
        a, b = self.a, self.b
        key = self.k("del.bin")
        row, obj = self.insert(a, key, b"to be deleted")
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "DELETE FROM docs WHERE id = %s", (row,))
        # Another session (and the container) still has it.
        self.assertEqual(FX.value("SELECT count(*) FROM docs WHERE id = %s", (row,), b), 1)
        self.assertEqual(self.get(b, obj), b"to be deleted")
        self.assertTrue(FX.value("SELECT so_exists(%s::stored_object)", (obj,), b))
        self.assertTrue(self.in_store(key))
        self.run_sql(a, "COMMIT")
        self.assertGone(key)
        e = self.assertSqlError("58P01", "SELECT so_get(%s::stored_object)", (obj,), conn=b)
        self.assertIn(key, e.diag.message_primary)
        self.assertFalse(FX.value("SELECT so_exists(%s::stored_object)", (obj,), b))
        self.assertEqual(FX.value("SELECT count(*) FROM so_pending_deletes WHERE so_filename(object) = %s",
                                  (key,)), 0)

    def test_so_delete_invisible_until_commit(self):
        a, b = self.a, self.b
        key = self.k("so_delete.bin")
        obj = self.put(a, key, b"so_delete")
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "SELECT so_delete(%s::stored_object)", (obj,))
        self.assertEqual(self.get(b, obj), b"so_delete")
        self.assertTrue(self.in_store(key))
        self.run_sql(a, "COMMIT")
        self.assertGone(key)

    def test_rolled_back_delete_keeps_blob(self):
        a = self.a
        key = self.k("kept.bin")
        row, obj = self.insert(a, key, b"kept")
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "DELETE FROM docs WHERE id = %s", (row,))
        self.run_sql(a, "ROLLBACK")
        FX.wait_for_worker()
        self.assertEqual(self.store_bytes(key), b"kept")
        # Rolled back to a savepoint, then committed.
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "SAVEPOINT s")
        self.run_sql(a, "DELETE FROM docs WHERE id = %s", (row,))
        self.run_sql(a, "SELECT so_delete(%s::stored_object)", (obj,))
        self.run_sql(a, "ROLLBACK TO SAVEPOINT s")
        self.run_sql(a, "COMMIT")
        FX.wait_for_worker()
        self.assertEqual(self.store_bytes(key), b"kept")
        self.assertEqual(self.get(a, obj), b"kept")

    def test_update_releases_the_old_blob(self):
        a = self.a
        row, old = self.insert(a, self.k("v1.bin"), b"v1")
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "UPDATE docs SET f = so_put('tx', %s, 'v2'::bytea) WHERE id = %s", (self.k("v2.bin"), row))
        self.assertTrue(self.in_store(self.k("v1.bin")))
        self.run_sql(a, "COMMIT")
        self.assertGone(self.k("v1.bin"))
        self.assertEqual(self.store_bytes(self.k("v2.bin")), b"v2")

    def test_moved_between_rows_is_kept(self):
        a = self.a
        row, obj = self.insert(a, self.k("moved.bin"), b"moved")
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "DELETE FROM docs WHERE id = %s", (row,))
        self.run_sql(a, "INSERT INTO docs (name, f) VALUES ('moved', %s)", (obj,))
        self.run_sql(a, "COMMIT")
        FX.wait_for_worker()
        self.assertEqual(self.store_bytes(self.k("moved.bin")), b"moved")

    def test_put_then_delete_in_one_transaction(self):
        a = self.a
        key = self.k("short-lived.bin")
        self.run_sql(a, "BEGIN")
        row, obj = self.insert(a, key, b"short-lived")
        self.run_sql(a, "DELETE FROM docs WHERE id = %s", (row,))
        self.assertTrue(self.in_store(key))
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
        FX.wait_for_worker()
        self.assertEqual(self.store_bytes(key), b"new bytes from b")
        self.assertEqual(self.get(b, obj_b), b"new bytes from b")


class CreateOnlyTest(TxBase):
    """Two sessions putting the same key create-only: exactly one wins."""

    def test_second_session_fails_at_once(self):
        a, b = self.a, self.b
        key = self.k("contended.bin")
        self.run_sql(a, "BEGIN")
        self.insert(a, key, b"from a")
        started = time.monotonic()
        e = self.assertSqlError("58P02", "SELECT so_put('tx', %s, 'from b'::bytea)", (key,), conn=b,
                                message="already exists")
        self.assertLess(time.monotonic() - started, 5, "58P02 at once, not after a wait")
        self.assertIn(key, e.diag.message_primary)
        self.run_sql(a, "COMMIT")
        self.assertEqual(self.store_bytes(key), b"from a")

    def test_loser_can_retry_after_winner_rolls_back(self):
        a, b = self.a, self.b
        key = self.k("retry.bin")
        self.run_sql(a, "BEGIN")
        self.put(a, key, b"from a")
        self.assertSqlError("58P02", "SELECT so_put('tx', %s, 'from b'::bytea)", (key,), conn=b)
        self.run_sql(a, "ROLLBACK")
        self.assertGone(key)
        obj = self.put(b, key, b"from b")
        self.assertEqual(self.store_bytes(key), b"from b")
        self.assertEqual(self.get(a, obj), b"from b")

    def test_failed_put_in_transaction_does_not_remove_winner(self):
        a, b = self.a, self.b
        key = self.k("winner.bin")
        self.put(a, key, b"winner")
        self.run_sql(b, "BEGIN")
        self.put(b, self.k("loser-own.bin"), b"loser's own")
        self.assertSqlError("58P02", "SELECT so_put('tx', %s, 'loser'::bytea)", (key,), conn=b)
        self.run_sql(b, "ROLLBACK")
        FX.wait_for_worker()
        self.assertEqual(self.store_bytes(key), b"winner")
        self.assertGone(self.k("loser-own.bin"))

    def test_threaded_race_over_many_keys(self):
        sessions, nkeys = 4, 16
        keys = [self.k("race-%02d.bin" % i) for i in range(nkeys)]
        conns = [FX.connect() for _ in range(sessions)]
        barrier = threading.Barrier(sessions)
        outcomes = [dict() for _ in range(sessions)]

        def worker(n):
            conn = conns[n]
            order = list(keys)
            if n % 2:
                random.Random(n).shuffle(order)  # half in order, half shuffled
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
                # The container holds the winner's bytes, with the MD5 it reported.
                head = FX.head(self.kp + key)
                self.assertEqual(self.store_bytes(key), winners[0][1])
                self.assertEqual(head["content-md5"], b64md5(winners[0][1]))
                self.assertEqual(hashlib.md5(winners[0][1]).hexdigest(),
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
        self.insert(a, key, b"prepared?")
        e = self.assertSqlError("0A000", "PREPARE TRANSACTION 'so_az_tx_put'", conn=a)
        self.assertIn("PREPARE", e.diag.message_primary)
        self.run_sql(a, "ROLLBACK")
        self.assertGone(key)
        self.assertEqual(FX.value("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'so_az_tx%'"), 0)

    def test_prepare_after_delete_refused(self):
        a = self.a
        key = self.k("not-deleted.bin")
        row, obj = self.insert(a, key, b"stays")
        self.run_sql(a, "BEGIN")
        self.run_sql(a, "DELETE FROM docs WHERE id = %s", (row,))
        self.assertSqlError("0A000", "PREPARE TRANSACTION 'so_az_tx_del'", conn=a)
        self.run_sql(a, "ROLLBACK")
        FX.wait_for_worker()
        self.assertEqual(self.store_bytes(key), b"stays")
        self.assertEqual(FX.value("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'so_az_tx%'"), 0)


class OverwriteTest(TxBase):
    """overwrite => true: staged under .so-staging/, copied over the key (Copy
    Blob) just before commit; other sessions see the old content until then."""

    def test_overwrite_invisible_until_commit(self):
        a, b = self.a, self.b
        key = self.k("doc.txt")
        row, old = self.insert(a, key, b"old content")
        self.run_sql(a, "BEGIN")
        new = self.put(a, key, b"new content, longer", overwrite=True)
        self.run_sql(a, "UPDATE docs SET f = %s WHERE id = %s", (new, row))
        # The writer reads its own new version; everyone else the old one.
        self.assertEqual(self.get(a, new), b"new content, longer")
        self.assertEqual(self.get(b, old), b"old content")
        self.assertEqual(self.store_bytes(key), b"old content")
        self.assertEqual(len(self.staged()), 1, self.staged())
        before = FX.control.stats()
        self.run_sql(a, "COMMIT")
        self.assertEqual(delta(before, FX.control.stats()).get("op:CopyBlob"), 1)
        self.assertEqual(self.get(b, old), b"new content, longer")
        self.assertEqual(self.store_bytes(key), b"new content, longer")
        head = FX.head(self.kp + key)
        self.assertEqual(head["content-md5"], b64md5(b"new content, longer"))
        self.assertEqual(int(head["content-length"]), FX.value("SELECT so_size(%s::stored_object)", (new,)))
        self.assertEqual(FX.value("SELECT so_etag(%s::stored_object)", (new,)),
                         hashlib.md5(b"new content, longer").hexdigest())
        self.assertEqual(self.staged(), [])
        # The replaced row's object is the same key: kept, not deleted.
        FX.wait_for_worker()
        self.assertTrue(self.in_store(key))

    def test_aborted_overwrite_keeps_old_content(self):
        a, b = self.a, self.b
        key = self.k("keep-old.txt")
        old = self.put(a, key, b"old content")
        self.run_sql(a, "BEGIN")
        self.put(a, key, b"never committed", overwrite=True)
        self.assertEqual(len(self.staged()), 1, self.staged())
        self.run_sql(a, "ROLLBACK")
        self.assertEqual(self.store_bytes(key), b"old content")
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
        self.assertEqual(self.get(a, old), b"v1")
        new = self.put(a, key, b"v3", overwrite=True)
        self.run_sql(a, "COMMIT")
        self.assertEqual(self.store_bytes(key), b"v3")
        self.assertEqual(self.get(a, new), b"v3")
        self.assertEqual(self.staged(), [])

    def test_overwrite_of_missing_key_creates_it(self):
        a, b = self.a, self.b
        key = self.k("fresh.txt")
        self.run_sql(a, "BEGIN")
        obj = self.put(a, key, b"fresh", overwrite=True)
        self.assertIsNone(FX.head(self.kp + key))
        self.assertFalse(FX.value("SELECT so_exists(%s::stored_object)", (obj,), b))
        self.run_sql(a, "COMMIT")
        self.assertEqual(self.store_bytes(key), b"fresh")
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
        self.assertEqual(self.store_bytes(key), b"from a")
        self.run_sql(b, "COMMIT")
        self.assertEqual(self.store_bytes(key), b"from b")
        self.assertEqual(FX.head(self.kp + key)["content-md5"], b64md5(b"from b"))
        self.assertEqual(self.staged(), [])

    def test_overwrite_keeps_attributes_tier_and_tags(self):
        # Copy Blob copies neither tier nor tags: the promotion asks again.
        for feature, headers in (("tags", {"x-ms-tags": "a=b"}), ("tier-COOL", {"x-ms-access-tier": "Cool"})):
            supported, why = FX.supports(feature, headers)
            if not supported:
                self.skipTest("the service does not keep %s (%s)" % (feature, why))
        a = self.a
        key = self.k("attrs.txt")
        self.put(a, key, b"plain")
        attrs = {"storage_class": "COOL", "tags": {"app": "shop", "v": "2"}, "cache_control": "max-age=9",
                 "content_language": "it"}
        self.run_sql(a, "BEGIN")
        obj = self.put(a, key, b"with attributes", overwrite=True, attributes=attrs)
        self.run_sql(a, "COMMIT")
        self.assertEqual(json.loads(obj)["attributes"], attrs)
        props = FX.sdk_props(self.kp + key)
        self.assertEqual(props["accessTier"], "Cool")
        self.assertEqual(props["cacheControl"], "max-age=9")
        self.assertEqual(props["contentLanguage"], "it")
        self.assertEqual(FX.rest.tags(FX.container, self.kp + key), {"app": "shop", "v": "2"})
        self.assertEqual(json.loads(FX.value("SELECT so_stat('tx', %s)::text", (key,)))["attributes"], attrs)
        self.assertEqual(self.staged(), [])

    def test_overwrite_in_blocks(self):
        a = self.a
        key = self.k("big.bin")
        self.put(a, key, b"small", backend="tx_blk")
        content = os.urandom(3 * MIB + 5)
        self.run_sql(a, "BEGIN")
        before = FX.control.stats()
        obj = self.put(a, key, content, overwrite=True, backend="tx_blk")
        self.assertEqual(delta(before, FX.control.stats()).get("op:PutBlock"), 4)
        self.assertEqual(self.store_bytes(key, self.bkp), b"small")
        self.run_sql(a, "COMMIT")
        self.assertEqual(FX.sdk_get(self.bkp + key)[0], content)
        self.assertEqual(FX.head(self.bkp + key)["content-md5"], b64md5(content))
        self.assertEqual(json.loads(obj)["etag"], hashlib.md5(content).hexdigest())
        self.assertEqual(self.staged(self.bkp), [])


class CopyTest(TxBase):
    """so_copy between two backends of one account copies server-side (Copy
    Blob), except what this transaction staged (the store has not got it
    yet)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not hasattr(CopyTest, "archive_kp"):
            # Another container of the same account, and the same container.
            CopyTest.archive_kp = FX.register("tx_archive", "tx-archive", container=azuresupport.OTHER_CONTAINER)
            CopyTest.same_kp = FX.register("tx_same", "tx-same")

    def copy(self, conn, obj, key, to="tx_archive"):
        return FX.value("SELECT so_copy(%s::stored_object, %s, %s)::text", (obj, to, key), conn)

    def test_same_account_copies_server_side(self):
        content = os.urandom(5000)
        obj = self.put(self.a, self.k("src ü#.txt"), content,
                       attributes={"cache_control": "max-age=1", "content_disposition": "inline"})
        for target, kp, container in (("tx_archive", self.archive_kp, azuresupport.OTHER_CONTAINER),
                                      ("tx_same", self.same_kp, FX.container)):
            with self.subTest(target=target):
                before = FX.control.stats()
                copied = json.loads(self.copy(self.a, obj, self.k("dst ü#.txt"), target))
                d = delta(before, FX.control.stats())
                self.assertEqual(d.get("op:CopyBlob"), 1, d)
                for op in ("op:GetBlob", "op:PutBlob", "op:PutBlock", "op:PutBlockList"):
                    self.assertNotIn(op, d)
                self.assertEqual(FX.get_bytes(kp + self.k("dst ü#.txt"), container), content)
                self.assertEqual(self.get(self.a, json.dumps(copied)), content)
                self.assertEqual(copied["backend"], target)
                self.assertEqual(copied["etag"], hashlib.md5(content).hexdigest())
                self.assertEqual(copied["checksum"], hashlib.sha256(content).hexdigest())  # carried: same bytes
                self.assertEqual(copied["attributes"], {"cache_control": "max-age=1",
                                                        "content_disposition": "inline"})
                props = FX.sdk_props(kp + self.k("dst ü#.txt"), container)
                self.assertEqual(props["contentMD5"], b64md5(content))
                self.assertEqual(props["cacheControl"], "max-age=1")

    def test_copy_is_create_only_and_rolled_back(self):
        obj = self.put(self.a, self.k("src.txt"), b"source")
        self.put(self.a, self.k("taken.txt"), b"taken", backend="tx_archive")
        self.assertSqlError("58P02", "SELECT so_copy(%s::stored_object, 'tx_archive', %s)",
                            (obj, self.k("taken.txt")), message="already exists")
        self.assertEqual(FX.get_bytes(self.archive_kp + self.k("taken.txt"), azuresupport.OTHER_CONTAINER), b"taken")
        self.run_sql(self.a, "BEGIN")
        self.copy(self.a, obj, self.k("rolled-back.txt"))
        self.assertEqual(FX.get_bytes(self.archive_kp + self.k("rolled-back.txt"), azuresupport.OTHER_CONTAINER),
                         b"source")
        self.run_sql(self.a, "ROLLBACK")
        FX.wait_for_worker()
        self.assertIsNone(FX.head(self.archive_kp + self.k("rolled-back.txt"), azuresupport.OTHER_CONTAINER))

    def test_copy_of_missing_source_names_the_source_backend(self):
        stub = json.dumps({"backend": "tx", "filename": self.k("never-written.txt")})
        e = self.assertSqlError("58P01", "SELECT so_copy(%s::stored_object, 'tx_archive', 'x.txt')", (stub,))
        # The object that does not exist is in backend "tx", not in the target.
        self.assertIn('in backend "tx"', e.diag.message_primary, e.pgerror)

    def test_server_side_copy_keeps_tags(self):
        # As S3's server-side copy (CopyObject keeps tags) and a streamed
        # copy (it carries the value's attributes) do. Copy Blob does not
        # copy tags: they must be asked for again, as the overwrite's
        # promotion does.
        supported, why = FX.supports("tags", {"x-ms-tags": "a=b"})
        if not supported:
            self.skipTest("the service does not keep blob index tags (%s)" % why)
        tags = {"app": "shop", "kind": "copy"}
        obj = self.put(self.a, self.k("tagged.txt"), b"tagged", attributes={"tags": tags})
        copied = json.loads(self.copy(self.a, obj, self.k("tagged-copy.txt")))
        blob_tags = FX.rest.tags(azuresupport.OTHER_CONTAINER, self.archive_kp + self.k("tagged-copy.txt"))
        self.assertEqual(blob_tags, tags, "so_copy's target blob lost the source's tags")
        self.assertEqual(copied.get("attributes"), {"tags": tags})

    def test_staged_source_is_streamed(self):
        key = self.k("src.txt")
        self.put(self.a, key, b"committed")
        self.run_sql(self.a, "BEGIN")
        obj = self.put(self.a, key, b"staged in this transaction", overwrite=True)
        before = FX.control.stats()
        self.copy(self.a, obj, self.k("dst.txt"))
        d = delta(before, FX.control.stats())
        self.assertNotIn("op:CopyBlob", d)
        self.assertEqual(d.get("op:PutBlob"), 1, d)
        self.run_sql(self.a, "COMMIT")
        self.assertEqual(FX.get_bytes(self.archive_kp + self.k("dst.txt"), azuresupport.OTHER_CONTAINER),
                         b"staged in this transaction")


if __name__ == "__main__":
    sys.exit(azuresupport.main(FX, [AbortTest, DeleteTest, CreateOnlyTest, PrepareTest, OverwriteTest, CopyTest]))
