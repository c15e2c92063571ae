#!/usr/bin/python3
"""Helper of bench/s3_transfer.sh: one large so_put or so_get in a fresh
connection, timed, with the backend's peak memory.

    s3_transfer_pg.py put BACKEND KEY PATH SIZE
        so_put(BACKEND, KEY, content) where content is
        pg_read_binary_file(PATH, 0, SIZE): generated server-side, one
        palloc of SIZE bytes, no transfer from this client. The file is
        read in a subquery (OFFSET 0 keeps it from being flattened) and
        so_put is timed by clock_timestamp() on either side of it in the
        target list, which PostgreSQL evaluates left to right: the time is
        so_put's alone, without reading the file.
    s3_transfer_pg.py get BACKEND KEY SIZE
        length(so_get(value)) for a value built from JSON, timed the same
        way (the bytes are read into the backend, not sent to this client).

Connection from the PG* environment (psycopg2). Before the timed
statement, the session warms up with so_exists() on the same key's backend
(this loads the module, reads the registry, builds the store and opens its
HTTP connection), then resets the backend's peak RSS (writes 5 to
/proc/PID/clear_refs; needs root) so VmHWM afterwards is the peak of the
timed statement. Prints "seconds", "rss_fresh_kb" (VmRSS right after
connecting), "hwm_fresh_kb" (VmHWM right after connecting),
"rss_before_kb" (VmRSS after the warm-up), "hwm_after_kb" (VmHWM after the
statement), "hwm_reset" (1 if the reset worked; 0: peak since connecting)
and "result" (the stored_object, or the length read).
"""
import sys

import psycopg2


def status(pid):
    values = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                values[name] = int(rest.split()[0])
    return values


def main(argv):
    if len(argv) == 6 and argv[1] == "put":
        _, _, backend, key, path, size = argv
        sql = ("SELECT clock_timestamp(), so_put(%s, %s, c)::text, clock_timestamp() "
               "FROM (SELECT pg_read_binary_file(%s, 0, %s) AS c OFFSET 0) AS s")
        params = (backend, key, path, int(size))
    elif len(argv) == 5 and argv[1] == "get":
        _, _, backend, key, size = argv
        sql = ("SELECT clock_timestamp(), length(so_get(so_from_json(jsonb_build_object('filename', %s), %s))), "
               "clock_timestamp()")
        params = (key, backend)
    else:
        sys.stderr.write(__doc__)
        return 2

    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
    fresh = status(pid)
    cur.execute("SELECT so_exists(so_from_json(jsonb_build_object('filename', %s), %s))", (key + ".warm-up", backend))
    before = status(pid)
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        reset = 1
    except OSError:
        reset = 0
    cur.execute(sql, params)
    t0, result, t1 = cur.fetchone()
    after = status(pid)
    conn.close()
    if argv[1] == "get" and int(result) != int(size):
        raise SystemExit("so_get read %s bytes, expected %s" % (result, size))
    print("seconds %.6f" % (t1 - t0).total_seconds())
    print("rss_fresh_kb %d" % fresh["VmRSS"])
    print("hwm_fresh_kb %d" % fresh["VmHWM"])
    print("rss_before_kb %d" % before["VmRSS"])
    print("hwm_before_kb %d" % before["VmHWM"])
    print("hwm_after_kb %d" % after["VmHWM"])
    print("rss_after_kb %d" % after["VmRSS"])
    print("hwm_reset %d" % reset)
    print("pid %d" % pid)
    print("result %s" % result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
