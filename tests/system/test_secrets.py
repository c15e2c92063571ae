#!/usr/bin/python3
"""System test: secrets never reach the server log, and credentials can be
given without writing them in SQL at all.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_secrets.py

with PGHOST/PGPORT/PGUSER naming a running cluster made by scripts/cluster.sh
(its server log is DIR/server.log beside DIR/data), SO_TEST_TMPDIR a
directory the postgres user owns, and the S3 fixture's variables exported.

* Statements that register or alter a backend and fail (the extension's own
  errors, and errors PostgreSQL raises in them: a malformed jsonb literal, a
  NOT NULL violation whose "Failing row contains" detail quotes the options)
  leave no secret in the server log, nor does log_statement = 'all'. The
  errors themselves are logged: the test finds each one.
* credentials: "file:/path" with a profile reads the AWS shared-credentials
  file of the server's OS user; a file others may read, a missing profile
  and a non-superuser naming a file are refused.
"""

import base64
import os
import pwd
import secrets
import sys
import time
import unittest

import psycopg2

import s3support

FX = s3support.Fixture("secrets")


def server_log_path():
    data = FX.value("SELECT setting FROM pg_settings WHERE name = 'data_directory'")
    return os.path.join(os.path.dirname(data), "server.log")


class LogTest(s3support.SqlAssertions, unittest.TestCase):
    FX = FX

    def setUp(self):
        self.log = server_log_path()
        self.assertTrue(os.path.exists(self.log), self.log)
        self.start = os.path.getsize(self.log)
        self.marks = []

    def secret(self):
        s = "SECRET-%s" % secrets.token_hex(12)
        self.marks.append(s)
        return s

    def new_log(self, must_contain, timeout=10):
        """The server log written since setUp, once it holds every string
        of must_contain (the log is written asynchronously to us)."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log, "rb") as f:
                f.seek(self.start)
                text = f.read().decode("utf-8", "replace")
            if all(m in text for m in must_contain) or time.monotonic() > deadline:
                return text

    def fails(self, sqlstate, query, args=None, conn=None):
        conn = conn or FX.conn
        with self.assertRaises(psycopg2.Error) as cm:
            FX.sql(query, args, conn)
        if not conn.autocommit:
            conn.rollback()
        self.assertEqual(cm.exception.pgcode, sqlstate, cm.exception.pgerror)
        self.assertSecretFree(cm.exception, self.marks)
        return cm.exception

    def test_failed_registry_statements_leave_no_secret_in_the_log(self):
        FX.sql("SET log_min_error_statement = error")
        errors = []
        s = self.secret()
        errors.append(self.fails("22023", "SELECT so_register_backend('leak1', 's3://test-bucket/p', "
                                          "'{\"secret_access_key\": \"%s\", \"access_key_id\": \"a\", "
                                          "\"bogus_option\": 1}')" % s))
        # An SSE-C key (a secret option) in a registration that fails.
        s = base64.b64encode(secrets.token_bytes(32)).decode()
        self.marks.append(s)
        errors.append(self.fails("22023", "SELECT so_register_backend('leak_ssec', 's3://test-bucket/p', "
                                          "'{\"sse_customer_key\": \"%s\", \"access_key_id\": \"a\", "
                                          "\"secret_access_key\": \"b\", \"sse\": \"AES256\"}')" % s))
        s = self.secret()
        # PostgreSQL's own error: the jsonb literal does not parse.
        errors.append(self.fails("22P02", "SELECT so_register_backend('leak2', 's3://test-bucket/p', "
                                          "'{\"secret_access_key\": \"%s\", bad')" % s))
        s = self.secret()
        # PostgreSQL's own error, whose detail quotes the row.
        errors.append(self.fails("23502", "INSERT INTO so_backends (key, url, options) VALUES "
                                          "('leak3', NULL, '{\"secret_access_key\": \"%s\"}')" % s))
        FX.register("leak_ok", "leak")
        s = self.secret()
        errors.append(self.fails("22023", "SELECT so_alter_backend('leak_ok', options => "
                                          "'{\"secret_access_key\": \"%s\", \"nonsense\": true}')" % s))
        s = self.secret()
        errors.append(self.fails("22023", "UPDATE so_backends SET options = options || "
                                          "'{\"secret_access_key\": \"%s\", \"nonsense\": 2}' "
                                          "WHERE key = 'leak_ok'" % s))
        # A later error in a transaction that wrote a secret.
        s = self.secret()
        conn = FX.connect(autocommit=False)
        FX.sql("SELECT so_alter_backend('leak_ok', options => %s)",
               ('{"endpoint": "%s", "allow_http": true, "region": "us-east-1", "access_key_id": "a", '
                '"secret_access_key": "%s"}' % (FX.endpoint, s),), conn)
        errors.append(self.fails("22012", "SELECT 1 / 0 AS \"%s\"" % s, conn=conn))
        # Statements logged as they run: the registry's are not.
        s = self.secret()
        FX.sql("SET log_statement = 'all'")
        FX.sql("SELECT so_register_backend('leak_logged', 's3://test-bucket/p', %s)",
               ('{"endpoint": "%s", "allow_http": true, "region": "us-east-1", "access_key_id": "a", '
                '"secret_access_key": "%s"}' % (FX.endpoint, s),))
        FX.sql("SELECT 'after the registration' AS marker")
        FX.sql("RESET log_statement")

        primaries = [e.diag.message_primary for e in errors]
        text = self.new_log(primaries + ["after the registration"])
        # Each error reached the log (else the test could not fail) ...
        for p in primaries:
            self.assertIn(p, text)
        self.assertIn("after the registration", text)
        # ... and no secret did.
        for s in self.marks:
            self.assertNotIn(s, text)
        self.assertNotIn(FX.secret_key, text)


class CredentialsFileTest(s3support.SqlAssertions, unittest.TestCase):
    FX = FX

    def setUp(self):
        tmp = os.environ.get("SO_TEST_TMPDIR") or "/tmp"
        self.dir = os.path.join(tmp, "so-credentials-%d" % os.getpid())
        os.makedirs(self.dir, exist_ok=True)
        self.path = os.path.join(self.dir, "credentials")
        with open(self.path, "w") as f:
            f.write("[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n"
                    "[stored_object]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                    % (FX.access_key, FX.secret_key))
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            for p in (self.dir, self.path):
                os.chown(p, pg.pw_uid, pg.pw_gid)
        os.chmod(self.dir, 0o700)
        os.chmod(self.path, 0o600)
        self.addCleanup(self.remove)

    def remove(self):
        if os.path.exists(self.path):
            os.remove(self.path)
        os.rmdir(self.dir)

    def register(self, key, **extra):
        return FX.register(key, key, access_key_id=None, secret_access_key=None,
                           credentials="file:" + self.path, **extra)

    def test_profile_of_a_file_only_the_server_reads(self):
        prefix = self.register("credfile", profile="stored_object")
        obj = FX.value("SELECT so_put('credfile', 'a.txt', 'from the file''s credentials')::text")
        self.assertEqual(FX.get_bytes(prefix + "a.txt"), b"from the file's credentials")
        self.assertEqual(bytes(FX.value("SELECT so_get(%s::stored_object)", (obj,))),
                         b"from the file's credentials")
        # The options show the path, never a key from the file.
        info = FX.value("SELECT options::text FROM so_backend_info WHERE key = 'credfile'")
        self.assertIn(self.path, info)
        self.assertNotIn(FX.secret_key, info)

        # The default profile holds other keys: S3 refuses them.
        self.register("creddefault")
        e = self.assertSqlError("42501", "SELECT so_put('creddefault', 'b.txt', 'x')")
        self.assertIn("creddefault", e.diag.message_primary)

        # A missing profile.
        self.register("credmissing", profile="nope")
        e = self.assertSqlError("55000", "SELECT so_put('credmissing', 'c.txt', 'x')")
        self.assertIn("has no profile \"nope\"", e.diag.message_primary)

        # A file others may read is refused before it is read (by a session
        # that has not read it yet: one that has keeps what it read).
        os.chmod(self.path, 0o640)
        e = self.assertSqlError("42501", "SELECT so_put('credfile', 'd.txt', 'x')", conn=FX.connect())
        self.assertIn("may be read by others than its owner", e.diag.message_primary)
        self.assertIn("chmod 600", e.diag.message_hint)
        os.chmod(self.path, 0o600)

    def test_only_a_superuser_names_a_credentials_file(self):
        role = "so_secrets_admin_%d" % os.getpid()
        FX.sql("CREATE ROLE %s LOGIN" % role)
        try:
            FX.sql("SELECT so_grant_admin(%s)", (role,))
            conn = psycopg2.connect(dbname=FX.dbname, user=role)
            conn.autocommit = True
            FX.connections.append(conn)
            e = self.assertSqlError("42501", "SELECT so_register_backend('credfile_user', 's3://test-bucket/x', "
                                             "%s)", ('{"credentials": "file:%s"}' % self.path,), conn=conn)
            self.assertIn("credfile_user", e.diag.message_primary)
            conn.close()
        finally:
            FX.sql("SELECT so_revoke_admin(%s)", (role,))
            FX.sql("DROP ROLE %s" % role)


if __name__ == "__main__":
    sys.exit(s3support.main(FX, [LogTest, CredentialsFileTest]))
