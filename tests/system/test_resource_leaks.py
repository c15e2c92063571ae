#!/usr/bin/python3
"""System test: no memory or file descriptor grows without bound.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_resource_leaks.py

with PGHOST/PGPORT/PGUSER naming a running cluster (PGUSER a superuser, the
test runs as root to read /proc of the server's processes), SO_TEST_TMPDIR
a directory the postgres user owns, and the S3 fixture's variables exported
(s3support's fixture makes the database).

* CREATE INDEX over values whose metadata is stored out of line (TOAST):
  the comparison functions free what they detoast, so the backend's peak
  memory stays near maintenance_work_mem instead of growing with every
  comparison.
* so_orphans cancelled in the middle of a directory walk (statement_timeout)
  closes every directory it opened: the backend's open file descriptors do
  not grow from one cancelled walk to the next.
"""

import os
import pwd
import secrets
import shutil
import sys
import unittest

import psycopg2

import s3support
from procfs import proc_status, reset_peak

FX = s3support.Fixture("leaks")
MIB = 1024 * 1024




def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class IndexBuildMemoryTest(unittest.TestCase):

    def test_create_index_over_toasted_values_stays_near_maintenance_work_mem(self):
        conn = FX.connect()
        pid = conn.get_backend_pid()
        FX.sql("CREATE TABLE wide (id int, f stored_object)", conn=conn)
        # 40,000 values with ~2.2 kB of metadata each: compressed or stored
        # out of line (TOAST), so every comparison detoasts both sides into
        # new memory; small enough for a btree index row.
        FX.sql("""INSERT INTO wide
                  SELECT i, jsonb_build_object('backend', 'b', 'filename', 'k/' || (i * 7919 % 40000),
                         'metadata', jsonb_build_object('blob',
                             (SELECT string_agg(md5(i::text || '-' || j::text), '') FROM generate_series(1, 68) AS j)))
                            ::text::stored_object
                    FROM generate_series(1, 40000) AS i""", conn=conn)
        self.assertEqual(FX.value("SELECT count(*) FROM wide WHERE pg_column_compression(f) IS NULL "
                                  "AND pg_column_size(f) < 2000", conn=conn),
                         0, "values neither compressed nor out of line: the test would prove nothing")
        FX.sql("SET maintenance_work_mem = '16MB'", conn=conn)
        FX.sql("SET max_parallel_maintenance_workers = 0", conn=conn)
        reset = reset_peak(pid)
        before = proc_status(pid)
        baseline = before["VmRSS"] if reset else before["VmHWM"]
        FX.sql("CREATE INDEX wide_f ON wide (f)", conn=conn)
        growth = proc_status(pid)["VmHWM"] - baseline
        print("  (CREATE INDEX: peak RSS +%.1f MiB, maintenance_work_mem 16 MiB)" % (growth / MIB))
        # Leaking each detoasted copy would take gigabytes (40,000 x log2
        # comparisons x 2 x 2 kB); the sort itself needs about 16 MiB.
        self.assertLess(growth, 160 * MIB)
        self.assertEqual(FX.value("SELECT count(*) FROM wide WHERE f = %s::stored_object",
                                  ('{"backend":"b","filename":"k/7919"}',), conn=conn), 1)


class CancelledWalkTest(unittest.TestCase):

    def setUp(self):
        tmp = os.environ.get("SO_TEST_TMPDIR") or "/tmp"
        self.root = os.path.join(tmp, "so-leaks-%d-%s" % (os.getpid(), secrets.token_hex(3)))
        self.addCleanup(shutil.rmtree, self.root, True)
        # A deep and wide tree: the walk holds one directory open per level.
        count = 0
        for a in range(40):
            for b in range(25):
                d = os.path.join(self.root, "a%02d" % a, "b%02d" % b, "c", "d")
                os.makedirs(d)
                for n in range(20):
                    with open(os.path.join(d, "f%02d" % n), "w") as f:
                        f.write("x")
                    count += 1
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            for dirpath, dirnames, filenames in os.walk(self.root):
                os.chown(dirpath, pg.pw_uid, pg.pw_gid)
                for name in filenames:
                    os.chown(os.path.join(dirpath, name), pg.pw_uid, pg.pw_gid)
        self.count = count
        FX.sql("SELECT so_register_backend('leaks', %s)", ("file://" + self.root,))
        self.addCleanup(FX.sql, "SELECT so_unregister_backend('leaks')")

    def test_cancelled_so_orphans_closes_its_directories(self):
        conn = FX.connect()
        pid = conn.get_backend_pid()
        # A full walk first: libraries, caches and the store are set up.
        self.assertEqual(FX.value("SELECT count(*) FROM so_orphans('leaks', '', '0 seconds')", conn=conn),
                         self.count)
        baseline = open_fds(pid)
        cancelled = 0
        timeout_ms = 5
        for _ in range(12):
            FX.sql("SET statement_timeout = %s", (timeout_ms,), conn=conn)
            try:
                FX.sql("SELECT count(*) FROM so_orphans('leaks', '', '0 seconds')", conn=conn)
                timeout_ms = max(1, timeout_ms // 2)  # too fast: cancel sooner next time
            except psycopg2.Error as e:
                self.assertEqual(e.pgcode, "57014", e.pgerror)
                cancelled += 1
            FX.sql("RESET statement_timeout", conn=conn)
        self.assertGreaterEqual(cancelled, 6, "the walk was too fast to cancel in the middle")
        after = open_fds(pid)
        print("  (%d cancelled walks; open descriptors %d before, %d after)" % (cancelled, baseline, after))
        # Four levels deep: a leak would add up to 4 per cancelled walk.
        self.assertLessEqual(after, baseline + 1)
        # And the session still walks the whole tree.
        self.assertEqual(FX.value("SELECT count(*) FROM so_orphans('leaks', '', '0 seconds')", conn=conn),
                         self.count)


if __name__ == "__main__":
    sys.exit(s3support.main(FX, [IndexBuildMemoryTest, CancelledWalkTest]))
