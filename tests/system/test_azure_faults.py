#!/usr/bin/python3
"""System test: the Azure Blob backend when the store misbehaves.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_azure_faults.py

with PGHOST/PGPORT/PGUSER naming a running cluster (stored_object installed)
and the Azure fixture's variables exported (AZURE_ENDPOINT, AZURE_ACCOUNT,
AZURE_ACCOUNT_KEY, AZURE_FIXTURE_CONTROL, ...; see
tests/system/azuresupport.py). Faults come from the fixture's
/__fixture/faults endpoint (tests/azure/azproxy.py) and are reset after every
test; its /__fixture/stats counts the attempts per Azure operation.

- Store down: so_put/so_get fail with 58030 naming the endpoint and the
  backend, no secret, nothing left behind; the session works once it is back.
- 500 InternalError, 503 ServerBusy and dropped connections are retried, for
  Put Blob, Get Blob, Put Block and Put Block List; retries are bounded by
  max_retries, by request_timeout_ms, and by time; a slow answer fails
  after request_timeout_ms, and no retry starts after it.
- A block that fails beyond the retries leaves no committed blob.
- A wrong account key gives 42501 with Azure's error code, one attempt, no
  secret.
- statement_timeout, pg_cancel_backend and pg_terminate_backend stop a slow
  transfer within a fraction of a second, and the session (after a cancel)
  goes on.
- Many requests of a session reuse one keep-alive connection.

The last line of output is "N passed, N failed"; the exit status is non-zero
on any failure.
"""

import base64
import json
import os
import re
import socket
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import azuresupport  # noqa: E402
from azuresupport import MIB, Background, delta  # noqa: E402

import psycopg2  # noqa: E402

FX = azuresupport.Fixture("faults")

WRONG_KEY = base64.b64encode(os.urandom(64)).decode()
EXISTING = b"existing content" * 100
# Time allowed between a cancel and its error on a busy machine: the
# transfer loop polls every 100 ms; the rest is slack.
CANCEL_SLACK = 1.0


class FaultBase(azuresupport.SqlAssertions, unittest.TestCase):
    FX = FX
    ready = False

    @classmethod
    def setUpClass(cls):
        if not FaultBase.ready:
            FaultBase.kp = FX.register("f", "f")                      # defaults: max_retries 3
            FaultBase.kp_quick = FX.register("quick", "quick", max_retries=1)
            FaultBase.kp_none = FX.register("none", "none", max_retries=0)
            FaultBase.kp_deadline = FX.register("deadline", "deadline", max_retries=10,
                                                request_timeout_ms=1500)
            FaultBase.kp_blk = FX.register("blk", "blk", block_size=MIB, max_concurrency=1, max_retries=2)
            FX.register("badkey", "f", account_key=WRONG_KEY)
            FX.secrets += [WRONG_KEY]
            FaultBase.obj = FX.value("SELECT so_put('f', 'base/existing.bin', %s)::text",
                                     (psycopg2.Binary(EXISTING),))
            FaultBase.ready = True

    def setUp(self):
        FX.reset_faults()

    def tearDown(self):
        FX.reset_faults()

    def fault(self, **rule):
        FX.control.add_fault(rule)

    def timed_error(self, sqlstate, query, args=None, conn=None, message=None):
        started = time.monotonic()
        e = self.assertSqlError(sqlstate, query, args, conn, message=message)
        return e, time.monotonic() - started

    def get_existing(self, conn=None):
        return bytes(FX.value("SELECT so_get(%s::stored_object)", (self.obj,), conn))


class StoreDownTest(FaultBase):

    def test_store_down(self):
        # Connections refused for 3 s: longer than every retry of 'quick'.
        FX.control.add_fault({"mode": "down", "seconds": 3})
        try:
            e, took = self.timed_error("58030", "SELECT so_put('quick', 'down/put.bin', 'x'::bytea)")
            self.assertIn(FX.authority, e.diag.message_primary)
            self.assertIn('"quick"', e.diag.message_primary)
            self.assertIn("Azure Blob Storage", e.diag.message_primary)
            e2, _ = self.timed_error("58030", "SELECT so_get(%s::stored_object)", (self.obj,))
            self.assertIn(FX.authority, e2.diag.message_primary)
            self.assertIn('"f"', e2.diag.message_primary)
            self.assertLess(took, 3.0)
        finally:
            FX.control.wait_healthy()
        # Back up: the same session works again (its old connections were reset).
        self.assertEqual(self.get_existing(), EXISTING)
        FX.value("SELECT so_put('quick', 'down/after.bin', 'after'::bytea)::text")
        self.assertEqual(FX.get_bytes(self.kp_quick + "down/after.bin"), b"after")
        FX.wait_for_worker()
        self.assertIsNone(FX.head(self.kp_quick + "down/put.bin"))
        self.assertEqual(FX.list_names(self.kp_quick + "down/put"), [])

    def test_nothing_listening(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        FX.register("nowhere", "nowhere", endpoint="http://127.0.0.1:%d/%s" % (port, FX.account), max_retries=1)
        e, _ = self.timed_error("58030", "SELECT so_put('nowhere', 'x.bin', 'x'::bytea)")
        self.assertIn("127.0.0.1:%d" % port, e.diag.message_primary)
        self.assertIn('"nowhere"', e.diag.message_primary)


class RetryTest(FaultBase):

    def test_500s_then_success(self):
        self.fault(mode="error", status=500, count=2, method="PUT", operation="PutBlob")
        before = FX.control.stats()
        FX.value("SELECT so_put('f', 'retry/500.bin', 'after two 500s'::bytea)::text")
        d = delta(before, FX.control.stats())
        self.assertEqual(d.get("op:PutBlob"), 3, d)
        self.assertEqual(d.get("status:500"), 2, d)
        self.assertEqual(d.get("fault:error"), 2, d)
        self.assertEqual(FX.get_bytes(self.kp + "retry/500.bin"), b"after two 500s")

    def test_503_server_busy_then_success(self):
        self.fault(mode="error", status=503, count=2, operation="PutBlob")
        before = FX.control.stats()
        FX.value("SELECT so_put('f', 'retry/503.bin', 'after ServerBusy'::bytea)::text")
        d = delta(before, FX.control.stats())
        self.assertEqual(d.get("op:PutBlob"), 3, d)
        self.assertEqual(d.get("status:503"), 2, d)
        self.assertEqual(FX.get_bytes(self.kp + "retry/503.bin"), b"after ServerBusy")
        # Reads, and so_stat's HEAD, too.
        for op, query in (("GetBlob", "SELECT length(so_get(%s::stored_object))"),
                          ("GetBlobProperties", "SELECT so_size(so_stat('f', so_filename(%s::stored_object)))")):
            with self.subTest(operation=op):
                self.fault(mode="error", status=503, count=2, operation=op)
                before = FX.control.stats()
                self.assertEqual(FX.value(query, (self.obj,)), len(EXISTING))
                d = delta(before, FX.control.stats())
                self.assertEqual(d.get("op:" + op), 3, d)

    def test_dropped_connection_retried(self):
        # The store closes the connection (FIN, or RST) after reading the
        # request, without answering; nothing is stored. The put is retried,
        # whether its connection was new or a reused keep-alive one.
        for reset in (False, True):
            for warm in (False, True):
                with self.subTest(reset=reset, reused_connection=warm):
                    conn = FX.connect()
                    if warm:
                        self.assertEqual(self.get_existing(conn), EXISTING)
                    FX.reset_faults()
                    self.fault(mode="drop", count=1, reset=reset, operation="PutBlob")
                    before = FX.control.stats()
                    key = "retry/drop-%s-%s.bin" % ("rst" if reset else "fin", "warm" if warm else "cold")
                    FX.value("SELECT so_put('f', %s, 'after a drop'::bytea)::text", (key,), conn)
                    d = delta(before, FX.control.stats())
                    self.assertEqual(d.get("op:PutBlob"), 2, d)
                    self.assertEqual(d.get("fault:drop"), 1, d)
                    self.assertEqual(FX.get_bytes(self.kp + key), b"after a drop")

    def test_dropped_connection_retried_for_reads(self):
        conn = FX.connect()
        for reset in (False, True):
            with self.subTest(reset=reset):
                self.assertEqual(self.get_existing(conn), EXISTING)  # warm
                self.fault(mode="drop", count=1, reset=reset, operation="GetBlob")
                before = FX.control.stats()
                self.assertEqual(self.get_existing(conn), EXISTING)
                self.assertEqual(delta(before, FX.control.stats()).get("op:GetBlob"), 2)

    def test_retried_create_only_put_does_not_conflict_with_itself(self):
        # The retry of a create-only put whose first attempt never reached
        # the store succeeds (If-None-Match: * sees no blob).
        conn = FX.connect()
        self.fault(mode="drop", count=1, operation="PutBlob")
        FX.value("SELECT so_put('f', 'retry/create-only.bin', 'once'::bytea)::text", conn=conn)
        self.assertEqual(FX.get_bytes(self.kp + "retry/create-only.bin"), b"once")
        self.fault(mode="error", status=503, count=1, operation="PutBlob")
        FX.value("SELECT so_put('f', 'retry/create-only-503.bin', 'once'::bytea)::text", conn=conn)
        self.assertEqual(FX.get_bytes(self.kp + "retry/create-only-503.bin"), b"once")

    def test_retries_bounded_by_max_retries(self):
        for backend, retries in (("f", 3), ("quick", 1), ("none", 0)):
            with self.subTest(backend=backend):
                FX.reset_faults()
                self.fault(mode="error", status=500, count=-1, operation="PutBlob")
                before = FX.control.stats()
                e, took = self.timed_error("58030", "SELECT so_put(%s, 'bounded/always-500.bin', 'x'::bytea)",
                                           (backend,))
                d = delta(before, FX.control.stats())
                self.assertEqual(d.get("op:PutBlob"), retries + 1, d)
                self.assertIn("InternalError", e.diag.message_primary)
                self.assertIn('"%s"' % backend, e.diag.message_primary)
                self.assertIn("HTTP status 500", e.diag.message_detail or "")
                # Backoff: at most 100, 200, 400 ms (capped exponential).
                self.assertLess(took, 3.0)
        FX.reset_faults()
        self.assertEqual(FX.list_names(FX.prefix + "/"), [n for n in FX.list_names(FX.prefix + "/")
                                                          if not n.endswith("bounded/always-500.bin")])

    def test_retries_bounded_by_request_timeout(self):
        # max_retries 10 but request_timeout_ms 1500: no retry starts after
        # the deadline, so far fewer than 11 attempts.
        self.fault(mode="error", status=500, count=-1, operation="PutBlob")
        before = FX.control.stats()
        _, took = self.timed_error("58030", "SELECT so_put('deadline', 'bounded/deadline.bin', 'x'::bytea)")
        attempts = delta(before, FX.control.stats()).get("op:PutBlob")
        self.assertGreaterEqual(attempts, 2)
        self.assertLess(attempts, 9)
        self.assertLess(took, 5.0)

    def test_request_timeout_bounds_a_slow_answer(self):
        # request_timeout_ms 1500 (retries included): a Get Blob the store
        # answers after 10 s fails after about 1.5 s, naming the endpoint,
        # and the error is about that request. No retry starts once the
        # 1.5 s are over: a retry then would get a budget of 1 ms, and its
        # "timed out after 1 milliseconds" (or, at times, its success)
        # would be what the caller sees.
        stub = json.dumps({"backend": "deadline", "filename": "base/existing.bin"})
        FX.rest.put(FX.container, self.kp_deadline + "base/existing.bin", EXISTING)
        for attempt in range(3):  # the retry after the deadline happens most times, not every time
            FX.reset_faults()
            self.fault(mode="delay", seconds=10, count=1, operation="GetBlob")
            before = FX.control.stats()
            started = time.monotonic()
            try:
                got = FX.value("SELECT length(so_get(%s::stored_object))", (stub,))
            except psycopg2.Error as e:
                took = time.monotonic() - started
                self.assertEqual(e.pgcode, "58030", e.pgerror)
                self.assertIn(FX.authority, e.diag.message_primary)
                self.assertIn('"deadline"', e.diag.message_primary)
                self.assertGreater(took, 1.2)
                self.assertLess(took, 3.0)
                reported = re.search(r"timed out after (\d+) milliseconds", e.diag.message_primary)
                if reported:
                    self.assertGreaterEqual(int(reported.group(1)), 1000, e.diag.message_primary)
                self.assertEqual(delta(before, FX.control.stats()).get("op:GetBlob"), 1,
                                 "a retry was sent after the request timeout had passed")
            else:
                self.fail("so_get returned %s bytes %.2f s after it started, past its 1.5 s request "
                          "timeout: a retry started after the deadline" % (got, time.monotonic() - started))
        FX.reset_faults()
        self.assertEqual(bytes(FX.value("SELECT so_get(%s::stored_object)", (stub,))), EXISTING)

    def test_client_errors_not_retried(self):
        # A 4xx is an answer, not a transient failure: one attempt.
        before = FX.control.stats()
        e = self.assertSqlError("42501", "SELECT so_put('badkey', 'x/once.bin', 'x'::bytea)")
        self.assertEqual(delta(before, FX.control.stats()).get("op:PutBlob"), 1)
        self.assertIn('"badkey"', e.diag.message_primary)
        # An injected 400-class answer is not retried either (409 from a
        # create-only put of an existing key).
        before = FX.control.stats()
        self.assertSqlError("58P02", "SELECT so_put('f', 'base/existing.bin', 'x'::bytea)")
        self.assertEqual(delta(before, FX.control.stats()).get("op:PutBlob"), 1)


class BlockFaultTest(FaultBase):
    """Backend 'blk': block_size 1 MiB, one block at a time, max_retries 2."""

    def test_block_500s_retried(self):
        content = os.urandom(3 * MIB + 1)  # 4 blocks
        self.fault(mode="error", status=500, count=2, operation="PutBlock")
        before = FX.control.stats()
        obj = json.loads(FX.value("SELECT so_put('blk', 'blocks/500.bin', %s)::text",
                                  (psycopg2.Binary(content),)))
        d = delta(before, FX.control.stats())
        self.assertEqual(d.get("op:PutBlock"), 4 + 2, d)
        self.assertEqual(d.get("op:PutBlockList"), 1, d)
        self.assertEqual(FX.get_bytes(self.kp_blk + "blocks/500.bin"), content)
        self.assertEqual(obj["size"], len(content))

    def test_dropped_block_retried(self):
        conn = FX.connect()
        self.assertEqual(self.get_existing(conn), EXISTING)  # a kept-alive connection
        content = os.urandom(2 * MIB + 1)
        self.fault(mode="drop", count=1, operation="PutBlock")
        before = FX.control.stats()
        FX.value("SELECT so_put('blk', 'blocks/drop.bin', %s)::text", (psycopg2.Binary(content),), conn)
        d = delta(before, FX.control.stats())
        self.assertEqual(d.get("op:PutBlock"), 3 + 1, d)
        self.assertEqual(FX.get_bytes(self.kp_blk + "blocks/drop.bin"), content)

    def test_block_list_503_retried(self):
        content = os.urandom(MIB + 1)
        self.fault(mode="error", status=503, count=1, operation="PutBlockList")
        before = FX.control.stats()
        FX.value("SELECT so_put('blk', 'blocks/list-503.bin', %s)::text", (psycopg2.Binary(content),))
        d = delta(before, FX.control.stats())
        self.assertEqual(d.get("op:PutBlockList"), 2, d)
        self.assertEqual(FX.get_bytes(self.kp_blk + "blocks/list-503.bin"), content)

    def test_failed_block_leaves_no_committed_blob(self):
        content = os.urandom(3 * MIB + 1)
        self.fault(mode="error", status=500, count=-1, operation="PutBlock")
        before = FX.control.stats()
        e, took = self.timed_error("58030", "SELECT so_put('blk', 'blocks/failed.bin', %s)",
                                   (psycopg2.Binary(content),))
        d = delta(before, FX.control.stats())
        # Each round sends every block still pending: 4 blocks, 1 + max_retries 2 rounds.
        self.assertEqual(d.get("op:PutBlock"), 4 * 3, d)
        self.assertNotIn("op:PutBlockList", d)
        self.assertIn("block", e.diag.message_primary)
        self.assertIn("InternalError", e.diag.message_primary)
        self.assertIn('"blk"', e.diag.message_primary)
        self.assertLess(took, 5.0)
        FX.reset_faults()
        self.assertIsNone(FX.head(self.kp_blk + "blocks/failed.bin"))
        # A later block failing, the earlier ones sent: still nothing committed.
        self.fault(mode="error", status=500, count=-1, operation="PutBlockList")
        before = FX.control.stats()
        self.timed_error("58030", "SELECT so_put('blk', 'blocks/failed.bin', %s)", (psycopg2.Binary(content),))
        d = delta(before, FX.control.stats())
        self.assertEqual(d.get("op:PutBlock"), 4, d)
        self.assertEqual(d.get("op:PutBlockList"), 3, d)
        FX.reset_faults()
        self.assertIsNone(FX.head(self.kp_blk + "blocks/failed.bin"))
        self.assertFalse(FX.value("SELECT so_exists('{\"backend\":\"blk\",\"filename\":\"blocks/failed.bin\"}')"))
        # The uncommitted blocks stay (the service drops them after a week).
        # Azurite counts such a blob as existing for If-None-Match: *, so a
        # create-only put of the name is refused there (58P02) although
        # nothing can be read; an overwrite replaces the blocks.
        try:
            FX.value("SELECT so_put('blk', 'blocks/failed.bin', 'fine'::bytea)::text")
        except psycopg2.Error as e:
            self.assertEqual(e.pgcode, "58P02", e.pgerror)
            print("  (Azurite: uncommitted blocks make a create-only put of the name fail with 58P02)")
            FX.value("SELECT so_put('blk', 'blocks/failed.bin', 'fine'::bytea, overwrite => true)::text")
        self.assertEqual(FX.get_bytes(self.kp_blk + "blocks/failed.bin"), b"fine")


class InterruptTest(FaultBase):

    def slow(self, conn, operation, fn, seconds=10):
        """Starts fn(conn) with the store answering `operation` after
        `seconds`; returns once the request is waiting at the store."""
        self.fault(mode="delay", seconds=seconds, count=1, operation=operation)
        before = FX.control.stats()
        bg = Background(fn, conn)
        FX.control.wait_for(lambda s: delta(before, s).get("fault:delay", 0) >= 1, what="the delayed " + operation)
        time.sleep(0.2)  # inside the transfer loop
        return bg, before

    def cancel(self, conn, bg):
        t0 = time.monotonic()
        self.assertTrue(FX.value("SELECT pg_cancel_backend(%s)", (conn.get_backend_pid(),)))
        bg.join(15)
        took = bg.finished_at - t0
        self.assertIsInstance(bg.error, psycopg2.Error, "the statement was not interrupted")
        self.assertEqual(bg.error.pgcode, "57014", bg.error.pgerror)
        self.assertLess(took, CANCEL_SLACK, "the cancel took %.2f s" % took)
        return took

    def test_statement_timeout(self):
        conn = FX.connect()
        FX.sql("SET statement_timeout = '500ms'", conn=conn)
        self.fault(mode="delay", seconds=10, count=1, operation="GetBlob")
        e, took = self.timed_error("57014", "SELECT so_get(%s::stored_object)", (self.obj,), conn)
        self.assertLess(took, 2.0, "statement_timeout took %.2f s" % took)
        self.assertIn("statement timeout", e.diag.message_primary)
        FX.reset_faults()
        # The same session goes on, under the same timeout.
        self.assertEqual(self.get_existing(conn), EXISTING)
        FX.sql("RESET statement_timeout", conn=conn)
        self.assertEqual(self.get_existing(conn), EXISTING)

    def test_statement_timeout_during_retries(self):
        # Backoff sleeps are interruptible too.
        conn = FX.connect()
        FX.sql("SET statement_timeout = '300ms'", conn=conn)
        self.fault(mode="error", status=503, count=-1, operation="PutBlob")
        _, took = self.timed_error("57014", "SELECT so_put('deadline', 'timeout/retrying.bin', 'x'::bytea)",
                                   conn=conn)
        self.assertLess(took, 1.5)

    def test_pg_cancel_backend(self):
        conn = FX.connect()
        bg, _ = self.slow(conn, "GetBlob", self.get_existing)
        took = self.cancel(conn, bg)
        print("  (pg_cancel_backend: %.3f s)" % took)
        FX.reset_faults()
        self.assertEqual(self.get_existing(conn), EXISTING)

    def test_pg_terminate_backend(self):
        conn = FX.connect()
        pid = conn.get_backend_pid()
        bg, _ = self.slow(conn, "GetBlob", self.get_existing)
        t0 = time.monotonic()
        self.assertTrue(FX.value("SELECT pg_terminate_backend(%s)", (pid,)))
        bg.join(15)
        took = bg.finished_at - t0
        self.assertIsInstance(bg.error, psycopg2.OperationalError, "so_get was not interrupted")
        self.assertIn(bg.error.pgcode, ("57P01", None), bg.error)
        self.assertTrue(conn.closed)
        self.assertLess(took, CANCEL_SLACK, "the terminate took %.2f s" % took)
        deadline = time.monotonic() + 5
        while FX.value("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(FX.value("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)), 0)

    def test_cancel_slow_put(self):
        conn = FX.connect()
        delay = 2
        bg, before = self.slow(conn, "PutBlob", lambda c: FX.value(
            "SELECT so_put('f', 'slow/put.bin', 'slow'::bytea)::text", conn=c), seconds=delay)
        self.cancel(conn, bg)
        # The request had reached the store, which completes it after the
        # delay: a blob no row points at (what so_gc is for). Wait for it so
        # it is not left behind.
        FX.control.wait_for(lambda s: delta(before, s).get("status:201", 0) >= 1, timeout=delay + 10,
                            what="the delayed Put Blob to finish")
        if FX.head(self.kp + "slow/put.bin") is not None:
            print("  (the cancelled Put Blob was completed by the store afterwards: an orphan blob)")

    def test_cancel_block_upload(self):
        conn = FX.connect()
        content = os.urandom(3 * MIB)
        bg, before = self.slow(conn, "PutBlock", lambda c: FX.value(
            "SELECT so_put('blk', 'slow/blocks.bin', %s)::text", (psycopg2.Binary(content),), c), seconds=3)
        self.cancel(conn, bg)
        FX.control.wait_for(lambda s: delta(before, s).get("status:201", 0) >= 1, timeout=15,
                            what="the delayed Put Block to finish")
        d = delta(before, FX.control.stats())
        self.assertNotIn("op:PutBlockList", d)
        self.assertIsNone(FX.head(self.kp_blk + "slow/blocks.bin"))
        FX.reset_faults()
        self.assertEqual(self.get_existing(conn), EXISTING)


class CredentialsTest(FaultBase):

    def test_wrong_account_key(self):
        stub = json.dumps({"backend": "badkey", "filename": "base/existing.bin"})
        for query, args, with_message in (
                ("SELECT so_put('badkey', 'cred/x.bin', 'x'::bytea)", None, True),
                ("SELECT so_get(%s::stored_object)", (stub,), True),
                ("SELECT so_stat('badkey', 'base/existing.bin')", None, False),
                ("SELECT count(*) FROM so_list('badkey')", None, True)):
            with self.subTest(query=query.split("(")[0]):
                before = FX.control.stats()
                e = self.assertSqlError("42501", query, args, message='"badkey"')
                self.assertEqual(delta(before, FX.control.stats())["requests"], 1)  # not retried
                # Azure's error code (from the body, or x-ms-error-code of a HEAD).
                self.assertRegex(e.diag.message_primary, "AuthorizationFailure|AuthenticationFailed")
                if with_message:
                    self.assertIn("authenticate", e.diag.message_primary)
                self.assertIn("HTTP status 403", e.diag.message_detail or "")
                self.assertSecretFree(e, [FX.account_key, WRONG_KEY])
        self.assertIsNone(FX.head(self.kp + "cred/x.bin"))

    def test_key_not_listed(self):
        row = FX.sql("SELECT options::text, secrets_set FROM so_backend_info WHERE key = 'badkey'")[0]
        self.assertNotIn(WRONG_KEY, row[0])
        self.assertEqual(list(row[1]), ["account_key"])


class KeepAliveTest(FaultBase):

    def test_one_connection_for_many_requests(self):
        conn = FX.connect()
        before = FX.control.stats()
        n = 30
        for _ in range(n):
            self.assertEqual(len(FX.value("SELECT so_get(%s::stored_object)", (self.obj,), conn)), len(EXISTING))
        FX.value("SELECT so_exists(%s::stored_object)", (self.obj,), conn)
        FX.value("SELECT so_stat('f', 'base/existing.bin')::text", conn=conn)
        FX.value("SELECT so_put('f', 'keepalive/put.bin', 'x'::bytea)::text", conn=conn)
        d = delta(before, FX.control.stats())
        self.assertEqual(d["requests"], n + 3, d)
        self.assertEqual(d["connections"], 1, d)

    def test_one_statement_many_rows(self):
        conn = FX.connect()
        before = FX.control.stats()
        total = FX.value("SELECT sum(length(so_get(%s::stored_object))) FROM generate_series(1, 20)",
                         (self.obj,), conn)
        self.assertEqual(total, 20 * len(EXISTING))
        d = delta(before, FX.control.stats())
        self.assertEqual(d["connections"], 1, d)


if __name__ == "__main__":
    sys.exit(azuresupport.main(FX, [StoreDownTest, RetryTest, BlockFaultTest, InterruptTest, CredentialsTest,
                                    KeepAliveTest]))
