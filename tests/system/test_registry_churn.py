#!/usr/bin/python3
"""System test: sessions that read the backend registry while another keeps
changing it.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_registry_churn.py

with PGHOST/PGPORT/PGUSER naming a running cluster (stored_object installed),
SO_TEST_TMPDIR a directory for local backends, and the S3 fixture's
variables exported (see tests/system/s3support.py).

For about 10 s one session changes the registry in a tight loop
(so_alter_backend of options, so_register_backend / so_unregister_backend
of extra backends, sometimes re-registered at another URL, plain UPDATE of
so_backends, so_grant / so_revoke, several changes in one transaction,
committed or rolled back), while four other sessions (one of them an
ordinary role) call what walks the whole registry or looks backends up:
so_verify_url (it builds the list of every store), so_sign, so_get,
so_exists, so_backend_info, alone, in multi-row statements and in
transactions. The mix is seeded (printed; SO_TEST_SEED repeats it).

Asserted: no session loses its connection; the server log of the run holds
no PANIC, no TRAP and no "terminated by signal"; every call succeeds or
fails with a SQLSTATE that the registry's state at that moment can explain
(42704 for a backend unregistered, 58P01 for a backend re-registered at an
empty place, 42501 for a privilege revoked); and results are right: URLs of
the backends nobody changes always verify (tampered ones never), so_sign
gives exactly the URL a Python HMAC computes (with one of the secrets and
base URLs the changed backend may have had), so_get returns the bytes
written, so_backend_info shows every backend that is never unregistered,
without secret values.

The last line of output is "N passed, N failed"; the exit status is non-zero
on any failure.
"""

import base64
import collections
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3support  # noqa: E402

import psycopg2  # noqa: E402

SEED = int(os.environ.get("SO_TEST_SEED") or random.SystemRandom().randrange(1, 1 << 31))
DURATION = float(os.environ.get("SO_TEST_DURATION") or 10)

FIXED_BASE = "https://fixed.example.com/media"
FIXED_SECRET = "fixed-secret-" + "f" * 20
CHURN_BASES = ("https://a.example.com/x", "https://b.example.com/y/z")
CHURN_SECRETS = ("churn-secret-one-" + "1" * 16, "churn-secret-two-" + "2" * 16)
EXTRA_KEYS = ["extra-%d" % i for i in range(6)]
CONTENT = {"fixed": b"fixed local content " * 50, "s3-fixed": b"fixed s3 content " * 40,
           "churn-loc": b"churned local content " * 30, "s3-churn": b"churned s3 content " * 20,
           "extra": b"extra content " * 10}
KEY = "dir one/obj \u00fc+%.bin"  # a key that needs encoding in URLs


def b64url(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def hmac_sig(secret, method, key, expires):
    return b64url(hmac.new(secret.encode(), ("%s\n%s\n%s" % (method, key, expires)).encode(),
                           hashlib.sha256).digest())


def quoted_key(key):
    return urllib.parse.quote(key, safe="/-_.~")


class Fixture(s3support.Fixture):
    def stop(self):
        super().stop()
        if getattr(self, "role_made", False) and self.admin_for_roles is not None:
            try:
                with self.admin_for_roles.cursor() as cur:
                    cur.execute("DROP ROLE IF EXISTS %s" % ROLE)
            except psycopg2.Error:
                traceback.print_exc(file=sys.stdout)
            self.admin_for_roles.close()
        if getattr(self, "tmp", None):
            shutil.rmtree(self.tmp, ignore_errors=True)


FX = Fixture("churn")
FX.admin_for_roles = None
ROLE = "so_churn_reader_%d" % os.getpid()


class Run:
    """What the churner and the readers share."""

    def __init__(self):
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.problems = []
        self.counts = collections.Counter()
        self.outcomes = collections.Counter()

    def problem(self, text):
        with self.lock:
            self.problems.append(text)

    def count(self, what):
        with self.lock:
            self.counts[what] += 1


class Session(threading.Thread):
    def __init__(self, run, name, seed, user=None):
        super().__init__(name=name, daemon=True)
        self.run_state = run
        self.rng = random.Random(seed)
        self.user = user
        self.conn = None
        self.failure = None
        self.lost = None

    def connect(self):
        kw = {"dbname": FX.dbname}
        if self.user:
            kw["user"] = self.user
        self.conn = psycopg2.connect(**kw)
        self.conn.autocommit = True

    def sql(self, query, args=None):
        with self.conn.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall() if cur.description else None

    def run(self):
        try:
            self.connect()
            while not self.run_state.stop.is_set():
                self.step()
        except psycopg2.Error as e:
            if self.conn is not None and self.conn.closed or e.pgcode is None:
                self.lost = "%s: %s" % (type(e).__name__, str(e).strip())
            self.failure = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        except BaseException as e:  # noqa: B902 - reported by the test
            self.failure = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        finally:
            if self.conn is not None:
                self.conn.close()

    def call(self, what, query, args=None, allowed=()):
        """Runs a statement; returns (rows, None), or (None, sqlstate) for an
        allowed error; any other error is a problem (and the connection must
        live on)."""
        try:
            rows = self.sql(query, args)
            with self.run_state.lock:
                self.run_state.outcomes[what + " ok"] += 1
            return rows, None
        except psycopg2.Error as e:
            if self.conn.closed or e.pgcode is None:
                raise
            with self.run_state.lock:
                self.run_state.outcomes["%s %s" % (what, e.pgcode)] += 1
            if e.pgcode not in allowed:
                self.run_state.problem("%s: %s: %s (%s)" % (self.name, what, e.pgcode,
                                                            (e.pgerror or "").strip().splitlines()[0]))
            if self.conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_INERROR:
                self.sql("ROLLBACK")
            return None, e.pgcode


class Churner(Session):
    """Changes the registry as fast as it can."""

    def step(self):
        r = self.rng
        op = r.choices(["alter_local", "alter_s3", "register", "unregister", "reregister", "update",
                        "grant", "tx_commit", "tx_rollback"], [4, 3, 3, 3, 1, 2, 1, 2, 1])[0]
        self.run_state.count("churn " + op)
        if op in ("tx_commit", "tx_rollback"):
            self.sql("BEGIN")
            for _ in range(r.randint(2, 4)):
                self.change(r.choice(["alter_local", "alter_s3", "register", "unregister", "update"]), in_tx=True)
                if self.conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_INTRANS:
                    break  # an error ended it (rolled back by call)
            if self.conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_INTRANS:
                self.sql("COMMIT" if op == "tx_commit" else "ROLLBACK")
        else:
            self.change(op)

    def change(self, op, in_tx=False):
        r = self.rng
        if op == "alter_local":
            opts = {}
            if r.random() < 0.7:
                opts["base_url"] = r.choice(CHURN_BASES)
            if r.random() < 0.7:
                opts["signing_secret"] = r.choice(CHURN_SECRETS)
            self.call("so_alter_backend", "SELECT so_alter_backend('churn-loc', options => %s)", (json.dumps(opts),))
        elif op == "alter_s3":
            opts = {"max_retries": r.randint(0, 4), "request_timeout_ms": r.choice([None, 20000, 30000]),
                    "connect_timeout_ms": r.choice([None, 5000, 7000]), "max_concurrency": r.randint(1, 4)}
            self.call("so_alter_backend", "SELECT so_alter_backend('s3-churn', options => %s)", (json.dumps(opts),))
        elif op == "update":
            self.call("UPDATE so_backends",
                      "UPDATE so_backends SET options = options || jsonb_build_object('part_size', %s::bigint) "
                      "WHERE key = 's3-churn'", (r.choice([5, 6, 8, 16]) * 1024 * 1024,))
        elif op == "register":
            key = r.choice(EXTRA_KEYS)
            self.call("so_register_backend", "SELECT so_register_backend(%s, %s, %s)", self.extra_args(key),
                      allowed=("42710",) if not in_tx else ("42710",))
        elif op == "unregister":
            key = r.choice(EXTRA_KEYS)
            self.call("so_unregister_backend", "SELECT so_unregister_backend(%s)", (key,), allowed=("42704",))
        elif op == "reregister":
            # The same key at an empty place, in one transaction; then back.
            key = r.choice(EXTRA_KEYS)
            self.sql("BEGIN")
            self.call("so_unregister_backend", "SELECT so_unregister_backend(%s)", (key,), allowed=("42704",))
            if self.conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_INTRANS:
                self.sql("BEGIN")
            url = self.extra_args(key)[1]
            empty = url.replace("/extra-files", "/empty") if url.startswith("file://") else url + "-empty"
            self.call("so_register_backend", "SELECT so_register_backend(%s, %s, %s)",
                      (key, empty, self.extra_args(key)[2]))
            if self.conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_INTRANS:
                self.sql("COMMIT")
        elif op == "grant":
            fn = r.choice(["so_grant", "so_revoke"])
            self.call(fn, "SELECT %s('churn-loc', 'read', %%s)" % fn, (ROLE,))

    def extra_args(self, key):
        """Extra backends: even numbers local, odd ones S3; all of one kind
        share the place that holds the object 'extra/e.bin'."""
        if int(key.split("-")[1]) % 2 == 0:
            return (key, "file://" + os.path.join(FX.tmp, "extra-files"),
                    json.dumps({"base_url": "https://extra.example.com/%s" % key}))
        opts = {"endpoint": FX.endpoint, "region": FX.region, "allow_http": True,
                "access_key_id": FX.access_key, "secret_access_key": FX.secret_key}
        return (key, "s3://%s/%s/extra" % (s3support.BUCKET, FX.prefix), json.dumps(opts))


class Reader(Session):
    """Walks the registry and looks backends up."""

    def __init__(self, run, name, seed, test, user=None, bulk=False):
        super().__init__(run, name, seed, user)
        self.t = test
        self.bulk = bulk

    def step(self):
        r = self.rng
        ops = ["verify_fixed", "verify_churn", "sign_fixed", "sign_churn", "get", "exists", "info", "extras",
               "transaction"]
        op = r.choice(ops)
        self.run_state.count("read " + op)
        getattr(self, "op_" + op)()

    # Each op checks its results and reports problems.

    def op_verify_fixed(self):
        n = 200 if self.bulk else 20
        urls = [self.t.fixed_urls[i % len(self.t.fixed_urls)] for i in range(n)]
        bad = [self.t.tampered[i % len(self.t.tampered)] for i in range(n // 4)]
        rows, err = self.call("so_verify_url", "SELECT u.n, so_verify_url(u.url) FROM unnest(%s::text[]) "
                              "WITH ORDINALITY AS u(url, n) ORDER BY u.n", (urls + bad,))
        if rows is None:
            return
        got = [v for _, v in rows]
        if got != [True] * len(urls) + [False] * len(bad):
            wrong = [(i, v) for i, v in enumerate(got) if v != (i < len(urls))]
            self.run_state.problem("%s: so_verify_url of fixed URLs: %d wrong, e.g. %s"
                                   % (self.name, len(wrong), wrong[:3]))

    def op_verify_churn(self):
        url = self.t.churn_urls[self.rng.randrange(len(self.t.churn_urls))]
        rows, _ = self.call("so_verify_url", "SELECT so_verify_url(%s), so_verify_url(%s, 'PUT')",
                            (url, self.t.fixed_urls[0]))
        if rows is not None and rows[0][1] is not False:
            self.run_state.problem("%s: a GET URL verified for PUT" % self.name)

    def op_sign_fixed(self):
        n = 50 if self.bulk else 1
        rows, _ = self.call("so_sign", "SELECT so_sign(%s::stored_object, '1 hour') FROM generate_series(1, %s)",
                            (self.t.objs["fixed"], n))
        if rows is None:
            return
        for (url,) in rows[:1]:
            why = self.t.check_signed(url, [FIXED_BASE], [FIXED_SECRET], KEY)
            if why:
                self.run_state.problem("%s: so_sign(fixed): %s: %s" % (self.name, why, url))
        if len(set(u for (u,) in rows)) != 1:
            self.run_state.problem("%s: one statement signed different URLs" % self.name)

    def op_sign_churn(self):
        rows, err = self.call("so_sign", "SELECT so_sign(%s::stored_object, '1 hour')", (self.t.objs["churn-loc"],),
                              allowed=("42501",) if self.user else ())
        if rows is None:
            return
        url = rows[0][0]
        why = self.t.check_signed(url, CHURN_BASES, CHURN_SECRETS, KEY)
        if why:
            self.run_state.problem("%s: so_sign(churn-loc): %s: %s" % (self.name, why, url))

    def op_get(self):
        which = self.rng.choice(["fixed", "s3-fixed", "churn-loc", "s3-churn"])
        allowed = ("42501",) if self.user and which == "churn-loc" else ()
        rows, _ = self.call("so_get", "SELECT so_get(%s::stored_object)", (self.t.objs[which],), allowed=allowed)
        if rows is not None and bytes(rows[0][0]) != CONTENT[which]:
            self.run_state.problem("%s: so_get(%s) returned other bytes" % (self.name, which))

    def op_exists(self):
        which = self.rng.choice(["fixed", "s3-fixed", "churn-loc", "s3-churn"])
        allowed = ("42501",) if self.user and which == "churn-loc" else ()
        rows, _ = self.call("so_exists", "SELECT so_exists(%s::stored_object)", (self.t.objs[which],), allowed=allowed)
        if rows is not None and rows[0][0] is not True:
            self.run_state.problem("%s: so_exists(%s) is %s" % (self.name, which, rows[0][0]))

    def op_info(self):
        rows, _ = self.call("so_backend_info", "SELECT key, scheme, url, options, secrets_set FROM so_backend_info "
                            "ORDER BY key")
        if rows is None:
            return
        info = {k: (scheme, url, opts, secrets) for k, scheme, url, opts, secrets in rows}
        for key in ("fixed", "s3-fixed", "churn-loc", "s3-churn"):
            if key not in info:
                self.run_state.problem("%s: so_backend_info lacks %s" % (self.name, key))
        for key, (scheme, url, opts, secrets) in info.items():
            text = json.dumps(opts)
            for secret in (FIXED_SECRET,) + CHURN_SECRETS + (FX.secret_key,):
                if secret in text:
                    self.run_state.problem("%s: so_backend_info shows a secret of %s" % (self.name, key))
        if "fixed" in info and (info["fixed"][2].get("base_url") != FIXED_BASE
                                or info["fixed"][3] != ["signing_secret"]):
            self.run_state.problem("%s: so_backend_info of fixed: %s" % (self.name, info["fixed"]))
        if "churn-loc" in info and info["churn-loc"][2].get("base_url") not in CHURN_BASES:
            self.run_state.problem("%s: so_backend_info of churn-loc: %s" % (self.name, info["churn-loc"]))
        for key in info:
            if key not in ("fixed", "s3-fixed", "churn-loc", "s3-churn") and key not in EXTRA_KEYS:
                self.run_state.problem("%s: so_backend_info lists %s" % (self.name, key))

    def op_extras(self):
        key = self.rng.choice(EXTRA_KEYS)
        obj = self.t.extra_obj(key)
        fn = self.rng.choice(["so_get", "so_exists", "so_sign"])
        if fn == "so_sign" and int(key.split("-")[1]) % 2:
            fn = "so_get"
        query = {"so_get": "SELECT so_get(%s::stored_object)", "so_exists": "SELECT so_exists(%s::stored_object)",
                 "so_sign": "SELECT so_sign(%s::stored_object)"}[fn]
        # Unregistered: 42704; re-registered at an empty place: 58P01 (so_get);
        # an ordinary role holds no privilege on the extras: 42501.
        allowed = ("42704", "58P01") + (("42501",) if self.user else ())
        rows, _ = self.call(fn + "(extra)", query, (obj,), allowed=allowed)
        if rows is None:
            return
        v = rows[0][0]
        if fn == "so_get" and bytes(v) != CONTENT["extra"]:
            self.run_state.problem("%s: so_get(%s) returned other bytes" % (self.name, key))
        if fn == "so_sign" and not v.startswith("https://extra.example.com/%s/" % key):
            self.run_state.problem("%s: so_sign(%s) = %s" % (self.name, key, v))

    def op_transaction(self):
        """Several lookups in one transaction, across changes committed meanwhile."""
        self.sql("BEGIN ISOLATION LEVEL " + self.rng.choice(["READ COMMITTED", "REPEATABLE READ"]))
        for _ in range(self.rng.randint(2, 5)):
            getattr(self, "op_" + self.rng.choice(["verify_fixed", "sign_fixed", "get", "exists", "extras",
                                                   "verify_churn"]))()
            if self.conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_INTRANS:
                return  # an allowed error rolled it back
        self.sql("COMMIT")


class ChurnTest(s3support.SqlAssertions, unittest.TestCase):
    FX = FX

    @classmethod
    def setUpClass(cls):
        print("seed %d (SO_TEST_SEED=%d repeats the mix), %.0f s" % (SEED, SEED, DURATION))
        base = os.environ.get("SO_TEST_TMPDIR") or None
        FX.tmp = tempfile.mkdtemp(prefix="so-churn-", dir=base)
        os.chmod(FX.tmp, 0o755)
        shutil.chown(FX.tmp, "postgres", "postgres")
        FX.secrets += [FIXED_SECRET] + list(CHURN_SECRETS)
        FX.sql("SELECT so_register_backend('fixed', %s, %s)",
               ("file://" + os.path.join(FX.tmp, "fixed"),
                json.dumps({"base_url": FIXED_BASE, "signing_secret": FIXED_SECRET})))
        FX.sql("SELECT so_register_backend('churn-loc', %s, %s)",
               ("file://" + os.path.join(FX.tmp, "churn"),
                json.dumps({"base_url": CHURN_BASES[0], "signing_secret": CHURN_SECRETS[0]})))
        FX.register("s3-fixed", "fixed")
        FX.register("s3-churn", "churn")
        cls.objs = {}
        for backend in ("fixed", "s3-fixed", "churn-loc", "s3-churn"):
            cls.objs[backend] = FX.value("SELECT so_put(%s, %s, %s)::text",
                                         (backend, KEY, psycopg2.Binary(CONTENT[backend])))
        # The object every extra backend of a kind finds.
        for key in EXTRA_KEYS[:2]:
            FX.sql("SELECT so_register_backend(%s, %s, %s)", Churner.extra_args(None, key))
            FX.sql("SELECT so_put(%s, 'extra/e.bin', %s)", (key, psycopg2.Binary(CONTENT["extra"])))
        # Signed URLs: of the fixed backend (always valid), tampered ones
        # (never), and of the churned one under each base URL and secret.
        cls.fixed_urls = [FX.value("SELECT so_sign(%s::stored_object, %s)", (cls.objs["fixed"], iv))
                          for iv in ("1 hour", "2 hours", "1 day")]
        cls.fixed_urls.append(FX.value("SELECT so_sign(%s::stored_object, '1 hour', for_upload => false)",
                                       (cls.objs["fixed"],)))
        cls.tampered = [cls.fixed_urls[0].replace("signature=", "signature=A"),
                        cls.fixed_urls[0].replace("obj", "obk"),
                        re.sub(r"expires=(\d+)", lambda m: "expires=%d" % (int(m.group(1)) + 1), cls.fixed_urls[0]),
                        FIXED_BASE + "/x.bin?expires=9999999999&signature=abc"]
        cls.churn_urls = []
        for b in CHURN_BASES:
            for s in CHURN_SECRETS:
                FX.sql("SELECT so_alter_backend('churn-loc', options => %s)",
                       (json.dumps({"base_url": b, "signing_secret": s}),))
                cls.churn_urls.append(FX.value("SELECT so_sign(%s::stored_object)", (cls.objs["churn-loc"],)))
        for url in cls.fixed_urls + cls.churn_urls:
            assert not cls.check_signed(url, [FIXED_BASE] + list(CHURN_BASES), [FIXED_SECRET] + list(CHURN_SECRETS),
                                        KEY), url
        # An ordinary role: reads the fixed backends; churn-loc's read
        # privilege is granted and revoked by the churner.
        FX.admin_for_roles = psycopg2.connect(dbname="postgres")
        FX.admin_for_roles.autocommit = True
        with FX.admin_for_roles.cursor() as cur:
            cur.execute("CREATE ROLE %s LOGIN" % ROLE)
        FX.role_made = True
        for backend in ("fixed", "s3-fixed", "s3-churn"):
            FX.sql("SELECT so_grant(%s, 'read', %s)", (backend, ROLE))
        log = os.path.join(os.path.dirname(FX.value("SHOW data_directory")), "server.log")
        cls.server_log = log
        cls.log_offset = os.path.getsize(log) if os.path.exists(log) else 0
        cls.run_churn()

    @classmethod
    def check_signed(cls, url, bases, secrets, key):
        """None if url is a GET URL of key signed with one of secrets under
        one of bases, expiring in the future; else what is wrong."""
        for base in bases:
            prefix = base + "/" + quoted_key(key) + "?"
            if url.startswith(prefix):
                break
        else:
            return "not under %s for the key" % (bases,)
        q = urllib.parse.parse_qs(url[len(prefix):])
        try:
            expires = q["expires"][0]
            sig = q["signature"][0]
        except KeyError:
            return "no expires or signature"
        if int(expires) < time.time():
            return "expired"
        if not any(hmac.compare_digest(sig, hmac_sig(s, "GET", key, expires)) for s in secrets):
            return "signature matches none of the secrets"
        return None

    @staticmethod
    def extra_obj(key):
        """The value of 'extra/e.bin' on an extra backend."""
        return json.dumps({"backend": key, "filename": "extra/e.bin"})

    @classmethod
    def run_churn(cls):
        run = cls.state = Run()
        rng = random.Random(SEED)
        churner = Churner(run, "churner", rng.randrange(1 << 30))
        readers = [Reader(run, "reader-%d" % i, rng.randrange(1 << 30), cls) for i in range(2)]
        readers.append(Reader(run, "reader-bulk", rng.randrange(1 << 30), cls, bulk=True))
        readers.append(Reader(run, "reader-role", rng.randrange(1 << 30), cls, user=ROLE))
        cls.sessions = [churner] + readers
        for s in cls.sessions:
            s.start()
        run.stop.wait(DURATION)
        run.stop.set()
        for s in cls.sessions:
            s.join(60)
        print("ran: %s" % dict(sorted(run.counts.items())))
        print("outcomes: %s" % dict(sorted(run.outcomes.items())))

    def test_1_no_session_lost_its_connection(self):
        hung = [s.name for s in self.sessions if s.is_alive()]
        self.assertEqual(hung, [], "sessions still running")
        lost = ["%s: %s" % (s.name, s.lost) for s in self.sessions if s.lost]
        self.assertEqual(lost, [], "\n".join(lost))
        failed = ["%s: %s" % (s.name, s.failure) for s in self.sessions if s.failure]
        self.assertEqual(failed, [], "\n".join(failed))
        # Every session is still usable afterwards, and the registry answers.
        self.assertEqual(FX.value("SELECT count(*) FROM so_backend_info WHERE key IN "
                                  "('fixed', 's3-fixed', 'churn-loc', 's3-churn')"), 4)

    def test_2_every_call_succeeded_or_failed_as_expected(self):
        self.assertEqual(self.state.problems, [], "\n".join(self.state.problems[:40]))
        for what in ("read verify_fixed", "read sign_fixed", "read get", "churn alter_local", "churn register",
                     "churn unregister"):
            self.assertGreater(self.state.counts[what], 0, what)

    def test_3_results_after_the_churn(self):
        # A fresh session sees the final registry and the same objects.
        c = FX.connect()
        for backend in ("fixed", "s3-fixed", "churn-loc", "s3-churn"):
            self.assertEqual(bytes(FX.value("SELECT so_get(%s::stored_object)", (self.objs[backend],), c)),
                             CONTENT[backend])
        self.assertTrue(all(FX.value("SELECT so_verify_url(%s)", (u,), c) for u in self.fixed_urls))
        self.assertFalse(any(FX.value("SELECT so_verify_url(%s)", (u,), c) for u in self.tampered))
        final = FX.sql("SELECT options->>'base_url' FROM so_backends WHERE key = 'churn-loc'", conn=c)[0][0]
        url = FX.value("SELECT so_sign(%s::stored_object)", (self.objs["churn-loc"],), c)
        self.assertIsNone(self.check_signed(url, [final], CHURN_SECRETS, KEY), url)
        self.assertTrue(FX.value("SELECT so_verify_url(%s)", (url,), c))

    def test_4_server_log_clean(self):
        try:
            with open(self.server_log, "rb") as f:
                f.seek(self.log_offset)
                text = f.read().decode(errors="replace")
        except OSError as e:
            self.skipTest("no server log: %s" % e)
        bad = [line for line in text.splitlines()
               if "terminated by signal" in line or re.search(r"\bPANIC\b|TRAP:", line)]
        self.assertEqual(bad, [], "\n".join(bad[:20]))


if __name__ == "__main__":
    sys.exit(s3support.main(FX, [ChurnTest]))
