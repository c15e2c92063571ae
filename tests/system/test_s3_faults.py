#!/usr/bin/python3
"""System test: the S3 backend when the store misbehaves.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_s3_faults.py

with PGHOST/PGPORT/PGUSER naming a running cluster (stored_object installed)
and the S3 fixture's variables exported (S3_ENDPOINT, S3_ACCESS_KEY_ID, ...;
see tests/system/s3support.py). Faults come from the fixture's
/__fixture/faults endpoint and are reset after every test; its
/__fixture/stats counts the attempts.

- Store down: so_put/so_get fail with 58030 naming the endpoint, no secret.
- 500s, 503 SlowDown and dropped connections are retried; retries are
  bounded by max_retries (and request_timeout_ms) and by time.
- statement_timeout, pg_cancel_backend and pg_terminate_backend stop a slow
  transfer within a fraction of a second, and the session (after a cancel)
  goes on.
- Wrong credentials give 42501 with S3's error code and no secret.
- Many so_get calls in one session reuse one keep-alive connection.

The last line of output is "N passed, N failed"; the exit status is non-zero
on any failure.
"""

import json
import os
import socket
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3support  # noqa: E402
from s3support import Background, delta  # noqa: E402

import psycopg2  # noqa: E402

FX = s3support.Fixture("faults")

WRONG_SECRET = "wrong-secret-" + os.urandom(8).hex()
WRONG_TOKEN = "wrong-token-" + os.urandom(8).hex()
# Time allowed between a cancel and its error on a busy machine: the
# transfer loop polls every 100 ms; the rest is slack.
CANCEL_SLACK = 1.0


class FaultBase(s3support.SqlAssertions, unittest.TestCase):
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
            FaultBase.kp_mpf = FX.register("mpf", "mpf", part_size=5 * s3support.MIB,
                                           max_concurrency=1)
            FX.register("badsecret", "f", secret_access_key=WRONG_SECRET)
            FX.register("badkey", "f", access_key_id="AKIA-NOT-A-KEY")
            FX.register("badtoken", "f", access_key_id=s3support.TEMP_ACCESS_KEY,
                        secret_access_key=s3support.TEMP_SECRET_KEY, session_token=WRONG_TOKEN)
            FX.secrets += [WRONG_SECRET, WRONG_TOKEN]
            FaultBase.obj = FX.value("SELECT so_put('f', 'base/existing.bin', %s)::text",
                                     (psycopg2.Binary(b"existing content" * 100),))
            FaultBase.ready = True

    def setUp(self):
        FX.reset_faults()

    def tearDown(self):
        FX.reset_faults()

    def fault(self, **rule):
        FX.control.add_fault(rule)

    def timed_error(self, sqlstate, query, args=None, conn=None):
        started = time.monotonic()
        e = self.assertSqlError(sqlstate, query, args, conn)
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
            self.assertIn("quick", e.diag.message_primary)
            e2, _ = self.timed_error("58030", "SELECT so_get(%s::stored_object)", (self.obj,))
            self.assertIn(FX.authority, e2.diag.message_primary)
            self.assertLess(took, 3.0)
        finally:
            FX.control.wait_healthy()
        # Back up: the same session works again (its old connections were reset).
        self.assertEqual(self.get_existing(), b"existing content" * 100)
        FX.value("SELECT so_put('quick', 'down/after.bin', 'after'::bytea)::text")
        self.assertEqual(FX.get_bytes(self.kp_quick + "down/after.bin"), b"after")
        self.assertIsNone(FX.head(self.kp_quick + "down/put.bin"))

    def test_nothing_listening(self):
        # An endpoint where nothing listens at all.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        FX.register("nowhere", "nowhere", endpoint="http://127.0.0.1:%d" % port, max_retries=1)
        e, _ = self.timed_error("58030", "SELECT so_put('nowhere', 'x.bin', 'x'::bytea)")
        self.assertIn("127.0.0.1:%d" % port, e.diag.message_primary)


class RetryTest(FaultBase):

    def test_500s_then_success(self):
        self.fault(mode="error", status=500, count=2, method="PUT", operation="PutObject")
        before = FX.control.stats()
        FX.value("SELECT so_put('f', 'retry/500.bin', 'after two 500s'::bytea)::text")
        d = delta(before, FX.control.stats())
        self.assertEqual(d.get("op:PutObject"), 3, d)
        self.assertEqual(d.get("status:500"), 2, d)
        self.assertEqual(d.get("fault:error"), 2, d)
        self.assertEqual(FX.get_bytes(self.kp + "retry/500.bin"), b"after two 500s")

    def test_503_slowdown_then_success(self):
        self.fault(mode="error", status=503, count=2, operation="PutObject")
        before = FX.control.stats()
        FX.value("SELECT so_put('f', 'retry/503.bin', 'after SlowDown'::bytea)::text")
        d = delta(before, FX.control.stats())
        self.assertEqual(d.get("op:PutObject"), 3, d)
        self.assertEqual(d.get("status:503"), 2, d)
        self.assertEqual(FX.get_bytes(self.kp + "retry/503.bin"), b"after SlowDown")
        # Reads too.
        self.fault(mode="error", status=503, count=2, operation="GetObject")
        before = FX.control.stats()
        self.assertEqual(self.get_existing(), b"existing content" * 100)
        d = delta(before, FX.control.stats())
        self.assertEqual(d.get("op:GetObject"), 3, d)

    def test_dropped_connection_retried(self):
        # The store closes the connection (FIN, or RST) after reading the
        # request, without answering; nothing is stored. The put is retried,
        # whether its connection was new or a reused keep-alive one (the
        # usual case in a session that has talked to the store before).
        for reset in (False, True):
            for warm in (False, True):
                with self.subTest(reset=reset, reused_connection=warm):
                    conn = FX.connect()
                    if warm:
                        self.assertEqual(self.get_existing(conn), b"existing content" * 100)
                    FX.reset_faults()
                    self.fault(mode="drop", count=1, reset=reset, operation="PutObject")
                    before = FX.control.stats()
                    key = "retry/drop-%s-%s.bin" % ("rst" if reset else "fin", "warm" if warm else "cold")
                    FX.value("SELECT so_put('f', %s, 'after a drop'::bytea)::text", (key,), conn)
                    d = delta(before, FX.control.stats())
                    self.assertEqual(d.get("op:PutObject"), 2, d)
                    self.assertEqual(d.get("fault:drop"), 1, d)
                    self.assertEqual(FX.get_bytes(self.kp + key), b"after a drop")

    def test_dropped_connection_retried_for_reads(self):
        conn = FX.connect()
        for reset in (False, True):
            with self.subTest(reset=reset):
                self.assertEqual(self.get_existing(conn), b"existing content" * 100)  # warm
                self.fault(mode="drop", count=1, reset=reset, operation="GetObject")
                before = FX.control.stats()
                self.assertEqual(self.get_existing(conn), b"existing content" * 100)
                self.assertEqual(delta(before, FX.control.stats()).get("op:GetObject"), 2)

    def test_dropped_part_upload_retried(self):
        # A multipart put (two parts of 5 MiB + 1 byte, one at a time) on a
        # session that has talked to the store before; the first UploadPart
        # (on the reused connection) is dropped.
        conn = FX.connect()
        self.assertEqual(self.get_existing(conn), b"existing content" * 100)
        self.fault(mode="drop", count=1, operation="UploadPart")
        before = FX.control.stats()
        obj = FX.value("SELECT so_put('mpf', 'retry/multipart-drop.bin', decode(repeat('ab', 5242881), 'hex'))::text",
                       conn=conn)
        d = delta(before, FX.control.stats())
        self.assertEqual(d.get("op:UploadPart"), 3, d)
        self.assertEqual(FX.value("SELECT so_size(%s::stored_object)", (obj,)), 5242881)
        self.assertEqual(FX.multipart_uploads(self.kp_mpf), [])

    def test_retried_create_only_put_does_not_conflict_with_itself(self):
        # The retry of a create-only put whose first attempt never reached
        # the store succeeds (If-None-Match: * sees no object). A new session:
        # see test_dropped_connection_retried for reused connections.
        conn = FX.connect()
        self.fault(mode="drop", count=1, operation="PutObject")
        FX.value("SELECT so_put('f', 'retry/create-only.bin', 'once'::bytea)::text", conn=conn)
        self.assertEqual(FX.get_bytes(self.kp + "retry/create-only.bin"), b"once")
        self.fault(mode="error", status=503, count=1, operation="PutObject")
        FX.value("SELECT so_put('f', 'retry/create-only-503.bin', 'once'::bytea)::text", conn=conn)
        self.assertEqual(FX.get_bytes(self.kp + "retry/create-only-503.bin"), b"once")

    def test_retries_bounded_by_max_retries(self):
        for backend, retries in (("f", 3), ("quick", 1), ("none", 0)):
            with self.subTest(backend=backend):
                FX.reset_faults()
                self.fault(mode="error", status=500, count=-1, operation="PutObject")
                before = FX.control.stats()
                e, took = self.timed_error("58030", "SELECT so_put(%s, 'bounded/always-500.bin', 'x'::bytea)",
                                           (backend,))
                d = delta(before, FX.control.stats())
                self.assertEqual(d.get("op:PutObject"), retries + 1, d)
                self.assertIn("InternalError", e.diag.message_primary)
                self.assertIn("HTTP status 500", e.diag.message_detail or "")
                # Backoff: at most 100, 200, 400 ms (capped exponential).
                self.assertLess(took, 3.0)
        FX.reset_faults()
        self.assertIsNone(FX.head(self.kp + "bounded/always-500.bin"))

    def test_retries_bounded_by_request_timeout(self):
        # max_retries 10 but request_timeout_ms 1500: no retry starts after
        # the deadline, so far fewer than 11 attempts.
        self.fault(mode="error", status=500, count=-1, operation="PutObject")
        before = FX.control.stats()
        _, took = self.timed_error("58030", "SELECT so_put('deadline', 'bounded/deadline.bin', 'x'::bytea)")
        attempts = delta(before, FX.control.stats()).get("op:PutObject")
        self.assertGreaterEqual(attempts, 2)
        self.assertLess(attempts, 9)
        self.assertLess(took, 5.0)

    def test_client_errors_not_retried(self):
        # A 4xx is an answer, not a transient failure: one attempt.
        before = FX.control.stats()
        self.assertSqlError("42501", "SELECT so_put('badsecret', 'x/once.bin', 'x'::bytea)")
        self.assertEqual(delta(before, FX.control.stats()).get("op:PutObject"), 1)


class InterruptTest(FaultBase):

    def slow_get(self, conn, seconds=10):
        """Starts a so_get that the store answers after `seconds`; returns once
        the request is waiting at the store."""
        self.fault(mode="delay", seconds=seconds, count=1, operation="GetObject")
        before = FX.control.stats()
        bg = Background(self.get_existing, conn)
        FX.control.wait_for(lambda s: delta(before, s).get("fault:delay", 0) >= 1, what="the delayed GET")
        time.sleep(0.2)  # inside the transfer loop
        return bg

    def test_statement_timeout(self):
        conn = FX.connect()
        FX.sql("SET statement_timeout = '500ms'", conn=conn)
        self.fault(mode="delay", seconds=10, count=1, operation="GetObject")
        e, took = self.timed_error("57014", "SELECT so_get(%s::stored_object)", (self.obj,), conn)
        self.assertLess(took, 2.0, "statement_timeout took %.2f s" % took)
        self.assertIn("statement timeout", e.diag.message_primary)
        FX.reset_faults()
        # The same session goes on, under the same timeout.
        self.assertEqual(self.get_existing(conn), b"existing content" * 100)
        FX.sql("RESET statement_timeout", conn=conn)
        self.assertEqual(self.get_existing(conn), b"existing content" * 100)

    def test_statement_timeout_during_retries(self):
        # Backoff sleeps are interruptible too.
        conn = FX.connect()
        FX.sql("SET statement_timeout = '300ms'", conn=conn)
        self.fault(mode="error", status=503, count=-1, operation="PutObject")
        _, took = self.timed_error("57014", "SELECT so_put('deadline', 'timeout/retrying.bin', 'x'::bytea)",
                                   conn=conn)
        self.assertLess(took, 1.5)

    def test_pg_cancel_backend(self):
        conn = FX.connect()
        pid = conn.get_backend_pid()
        bg = self.slow_get(conn)
        t0 = time.monotonic()
        self.assertTrue(FX.value("SELECT pg_cancel_backend(%s)", (pid,)))
        bg.join(15)
        took = bg.finished_at - t0
        self.assertIsInstance(bg.error, psycopg2.Error, "so_get was not interrupted")
        self.assertEqual(bg.error.pgcode, "57014", bg.error.pgerror)
        self.assertLess(took, CANCEL_SLACK, "the cancel took %.2f s" % took)
        print("  (pg_cancel_backend: %.3f s)" % took)
        FX.reset_faults()
        self.assertEqual(self.get_existing(conn), b"existing content" * 100)

    def test_pg_terminate_backend(self):
        conn = FX.connect()
        pid = conn.get_backend_pid()
        bg = self.slow_get(conn)
        t0 = time.monotonic()
        self.assertTrue(FX.value("SELECT pg_terminate_backend(%s)", (pid,)))
        bg.join(15)
        took = bg.finished_at - t0
        self.assertIsInstance(bg.error, psycopg2.OperationalError, "so_get was not interrupted")
        # The FATAL message (57P01), or just the closed connection.
        self.assertIn(bg.error.pgcode, ("57P01", None), bg.error)
        if bg.error.pgcode is None:
            self.assertIn("closed", str(bg.error))
        self.assertTrue(conn.closed)
        self.assertLess(took, CANCEL_SLACK, "the terminate took %.2f s" % took)
        print("  (pg_terminate_backend: %.3f s)" % took)
        # The process is gone.
        deadline = time.monotonic() + 5
        while FX.value("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(FX.value("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)), 0)

    def test_cancel_slow_put(self):
        conn = FX.connect()
        pid = conn.get_backend_pid()
        delay = 2
        self.fault(mode="delay", seconds=delay, count=1, operation="PutObject")
        before = FX.control.stats()
        bg = Background(lambda: FX.value("SELECT so_put('f', 'slow/put.bin', 'slow'::bytea)::text", conn=conn))
        FX.control.wait_for(lambda s: delta(before, s).get("fault:delay", 0) >= 1, what="the delayed PUT")
        time.sleep(0.2)
        t0 = time.monotonic()
        FX.value("SELECT pg_cancel_backend(%s)", (pid,))
        bg.join(15)
        self.assertIsInstance(bg.error, psycopg2.Error)
        self.assertEqual(bg.error.pgcode, "57014")
        self.assertLess(bg.finished_at - t0, CANCEL_SLACK)
        # The request had reached the store, which completes it after the
        # delay: an object no row points at (what a sweeper is for). Wait
        # for it so it is not left behind.
        FX.control.wait_for(lambda s: delta(before, s).get("status:200", 0) >= 1, timeout=delay + 10,
                            what="the delayed PUT to finish")
        if FX.head(self.kp + "slow/put.bin") is not None:
            print("  (the cancelled PUT was completed by the store afterwards: an orphan object)")


class CredentialsTest(FaultBase):

    def check(self, backend, code):
        stub = json.dumps({"backend": backend, "filename": "base/existing.bin"})
        for query, args, with_code in (
                ("SELECT so_put(%s, 'cred/x.bin', 'x'::bytea)", (backend,), True),
                ("SELECT so_get(%s::stored_object)", (stub,), True),
                # A HEAD error has no body, so no S3 error code to show.
                ("SELECT so_stat(%s, 'base/existing.bin')", (backend,), False)):
            with self.subTest(backend=backend, query=query.split("(")[0]):
                e = self.assertSqlError("42501", query, args)
                self.assertIn(backend, e.diag.message_primary)
                if with_code:
                    self.assertIn(code, e.diag.message_primary)
                self.assertIn("HTTP status 403", e.diag.message_detail or "")

    def test_wrong_secret(self):
        self.check("badsecret", "SignatureDoesNotMatch")

    def test_unknown_access_key(self):
        self.check("badkey", "InvalidAccessKeyId")

    def test_wrong_session_token(self):
        # S3 answers 400 InvalidToken; whatever the SQLSTATE, no secret shows.
        for query in ("SELECT so_put('badtoken', 'cred/t.bin', 'x'::bytea)",
                      "SELECT so_stat('badtoken', 'base/existing.bin')"):
            with self.subTest(query=query):
                with self.assertRaises(psycopg2.Error) as cm:
                    FX.sql(query)
                self.assertIn(cm.exception.pgcode, ("42501", "58030"), cm.exception.pgerror)
                self.assertSecretFree(cm.exception)
                if "so_put" in query:
                    self.assertIn("InvalidToken", cm.exception.diag.message_primary)

    def test_nothing_written_with_wrong_credentials(self):
        self.assertIsNone(FX.head(self.kp + "cred/x.bin"))
        self.assertIsNone(FX.head(self.kp + "cred/t.bin"))


class KeepAliveTest(FaultBase):

    def test_one_connection_for_many_requests(self):
        conn = FX.connect()
        before = FX.control.stats()
        n = 30
        for _ in range(n):
            self.assertEqual(len(FX.value("SELECT so_get(%s::stored_object)", (self.obj,), conn)), 1600)
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
        self.assertEqual(total, 20 * 1600)
        d = delta(before, FX.control.stats())
        self.assertEqual(d["connections"], 1, d)


if __name__ == "__main__":
    sys.exit(s3support.main(FX, [StoreDownTest, RetryTest, InterruptTest, CredentialsTest, KeepAliveTest]))
