#!/usr/bin/python3
"""System test: a backend owned by a non-superuser reaches no internal
address, whatever its endpoint's name says.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_ssrf.py

with PGHOST/PGPORT/PGUSER naming a running cluster (PGUSER a superuser) and
the S3 fixture's variables exported (the fixture listens on loopback).

Registration refuses endpoints whose text is an internal address; a name
that only resolves to one (here: a name of this machine that /etc/hosts or
the resolver maps to loopback) passes that check, and the connection itself
is refused, on the address the resolver produced: 42501, before any byte is
sent. A superuser's allowance (stored_object.allowed_internal_networks)
lets the same backend through.
"""

import os
import socket
import sys
import unittest
import urllib.parse

import psycopg2

import s3support

FX = s3support.Fixture("ssrf")


def loopback_alias():
    """A name other than localhost that resolves to a loopback address only,
    or None."""
    candidates = [socket.gethostname()]
    try:
        with open("/etc/hosts") as f:
            for line in f:
                fields = line.split("#", 1)[0].split()
                candidates += fields[1:]
    except OSError:
        pass
    for name in candidates:
        if name.lower() == "localhost" or name.lower().endswith(".localhost"):
            continue
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
        except OSError:
            continue
        if addresses and all(a.startswith("127.") or a == "::1" for a in addresses):
            return name
    return None


class ResolvedAddressTest(s3support.SqlAssertions, unittest.TestCase):
    FX = FX

    def setUp(self):
        self.alias = loopback_alias()
        if self.alias is None:
            self.skipTest("no name other than localhost resolves to loopback here")
        self.role = "so_ssrf_admin_%d" % os.getpid()
        FX.sql("CREATE ROLE %s LOGIN" % self.role)
        self.addCleanup(FX.sql, "DROP ROLE %s" % self.role)
        FX.sql("SELECT so_grant_admin(%s)", (self.role,))
        self.addCleanup(FX.sql, "SELECT so_revoke_admin(%s)", (self.role,))
        self.conn = psycopg2.connect(dbname=FX.dbname, user=self.role)
        self.conn.autocommit = True
        FX.connections.append(self.conn)
        port = urllib.parse.urlsplit(FX.endpoint).port
        self.endpoint = "http://%s:%d" % (self.alias, port)
        self.addCleanup(FX.sql, "DELETE FROM so_backends WHERE key LIKE 'ssrf%%'")

    def register(self, key, endpoint):
        FX.register(key, key, conn=self.conn, endpoint=endpoint, path_style=True)

    def test_text_of_an_internal_address_is_refused_at_registration(self):
        port = urllib.parse.urlsplit(FX.endpoint).port
        for host in ("127.0.0.1", "localhost", "[::1]", "169.254.169.254", "2130706433", "0x7f.1", "0177.0.0.1",
                     "127.1", "10.1.2.3", "[::ffff:127.0.0.1]"):
            with self.subTest(host=host):
                e = self.assertSqlError("42501", "SELECT so_register_backend('ssrf_text', 's3://test-bucket/x', %s)",
                                        ('{"endpoint": "http://%s:%d", "allow_http": true, "access_key_id": "a", '
                                         '"secret_access_key": "b"}' % (host, port),), conn=self.conn)
                self.assertIn("internal address", e.diag.message_detail or "")

    def test_a_name_resolving_to_loopback_is_refused_at_connect(self):
        self.register("ssrf_name", self.endpoint)  # the text passes
        before = FX.control.stats()
        e = self.assertSqlError("42501", "SELECT so_put('ssrf_name', 'x.txt', 'x')", conn=self.conn)
        self.assertIn("refused to connect to the internal address", e.diag.message_primary)
        self.assertIn("allowed_internal_networks", e.diag.message_hint or "")
        for query in ("SELECT so_exists('{\"backend\":\"ssrf_name\",\"filename\":\"x.txt\"}')",
                      "SELECT so_orphans('ssrf_name')"):
            self.assertSqlError("42501", query, conn=self.conn)
        # Nothing reached the fixture from these calls.
        after = FX.control.stats()
        self.assertEqual(s3support.delta(before, after).get("requests", 0), 0, s3support.delta(before, after))

        # A superuser allows loopback for this database: the same backend works.
        FX.sql("ALTER DATABASE %s SET stored_object.allowed_internal_networks = '127.0.0.0/8, ::1/128'" % FX.dbname)
        self.addCleanup(FX.sql, "ALTER DATABASE %s RESET stored_object.allowed_internal_networks" % FX.dbname)
        conn = psycopg2.connect(dbname=FX.dbname, user=self.role)
        conn.autocommit = True
        FX.connections.append(conn)
        self.assertReachesFixture("SELECT so_put('ssrf_name', 'allowed.txt', 'reached')", conn)
        # Only a superuser may set the allowance.
        with self.assertRaises(psycopg2.Error) as cm:
            FX.sql("SET stored_object.allowed_internal_networks = '0.0.0.0/0'", conn=conn)
        self.assertEqual(cm.exception.pgcode, "42501")

    def test_superuser_backends_are_not_restricted(self):
        FX.register("ssrf_super", "super", endpoint=self.endpoint, path_style=True)
        self.assertReachesFixture("SELECT so_put('ssrf_super', 'x.txt', 'x')", FX.conn)

    def assertReachesFixture(self, query, conn):
        """The request reaches the fixture. (Which answers it with an error:
        it takes a Host other than an address for a virtual-hosted bucket.)"""
        before = FX.control.stats()
        try:
            FX.sql(query, conn=conn)
        except psycopg2.Error as e:
            self.assertNotEqual(e.pgcode, "42501", e.pgerror)
            self.assertIn("Virtual-hosted-style requests are not supported by the test fixture", e.pgerror)
        self.assertGreater(s3support.delta(before, FX.control.stats())["requests"], 0)


if __name__ == "__main__":
    sys.exit(s3support.main(FX, [ResolvedAddressTest]))
