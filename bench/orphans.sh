#!/usr/bin/env bash
# Benchmark of the orphan sweeper so_orphans() (not a test: it prints numbers
# and ratios, it asserts nothing about their size). As root, from a checkout:
#   bench/orphans.sh
# Builds and installs the extension (scripts/install-deps.sh, make install),
# starts a throwaway cluster (scripts/cluster.sh) and, unless S3_OBJECTS=0,
# the loopback S3 fixture (tests/s3/run-fixture.sh), and measures
#
#   local  a file:// backend 'b' holding OBJECTS files, and tables that
#          reference all but ORPHANS of them: docs (OBJECTS rows, column
#          file stored_object: the single-value path, some objects in two
#          rows) and albums (column gallery stored_object[], ALBUM_SIZE
#          elements a row: the array path, a tenth of the referenced
#          objects; so only a sweeper that reads both paths finds exactly
#          ORPHANS). Then, REPEATS times, each in a
#          FRESH connection:
#              SELECT count(*) FROM so_orphans('b', '', '0 seconds')
#          (expected: ORPHANS), timed by the client around the statement,
#          with the server process's peak RSS (VmHWM of /proc/<pid>/status,
#          pid from pg_backend_pid()) read before (once the module is loaded)
#          and after the statement.
#          Peers, same run: listing the directory with find(1) as postgres,
#          and a plain SQL scan of every referenced key (UNION of both
#          columns); the ratio so_orphans / (find + scan) is what the
#          sweeper costs over doing its two halves by hand.
#   s3     the same on an S3 backend 's3' in the fixture with S3_OBJECTS
#          objects (S3_ORPHANS not referenced), uploaded with boto3. The
#          fixture is one Python proxy in front of s3rver on this machine:
#          its listing speed is the fixture's, not S3's. (so_orphans reads
#          every stored_object column of the database, the local part's
#          tables included.)
#
# How the objects are made: the local files are written directly into the
# backend's directory by /usr/bin/python3 running as the postgres user
# (OBJECT_SIZE random-ish bytes each, 256 subdirectories), which is what
# so_orphans lists: it only reads the directory, never the files; the rows
# are built with so_from_json (metadata only, no I/O). so_put would do the
# same through the server, slower. The S3 objects are put with boto3 (16
# threads).
#
# Memory: VmHWM is the peak resident set, shared buffers the process touched
# included (the table scans read through them: see RssShmem before -> after);
# RssAnon is private memory still mapped (palloc'd memory freed at the end of
# the statement may or may not be returned to the system). The sweep's own
# private peak is about the VmHWM increase minus the RssShmem increase.
#
# Environment: OBJECTS (100000), ORPHANS (10000), ALBUM_SIZE (4), REPEATS (3), OBJECT_SIZE
# (64), S3_OBJECTS (10000; 0 skips the S3 part), S3_ORPHANS (S3_OBJECTS/10),
# BENCH_TMPDIR (where the temporary directory goes; $TMPDIR or /tmp),
# BENCH_SKIP_BUILD=1 to use the installed extension as it is.
set -euo pipefail

OBJECTS=${OBJECTS:-100000}
ORPHANS=${ORPHANS:-10000}
ALBUM_SIZE=${ALBUM_SIZE:-4}
REPEATS=${REPEATS:-3}
OBJECT_SIZE=${OBJECT_SIZE:-64}
S3_OBJECTS=${S3_OBJECTS:-10000}
S3_ORPHANS=${S3_ORPHANS:-$((S3_OBJECTS / 10))}
BUCKET=test-bucket
PYTHON=/usr/bin/python3
for v in OBJECTS ORPHANS ALBUM_SIZE REPEATS OBJECT_SIZE S3_OBJECTS S3_ORPHANS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a whole number, not '${!v}'" >&2; exit 2; }
done
if [ "$ALBUM_SIZE" -lt 1 ] || [ "$REPEATS" -lt 1 ] || [ "$OBJECT_SIZE" -lt 8 ] || [ "$ORPHANS" -ge "$OBJECTS" ] ||
   { [ "$S3_OBJECTS" -gt 0 ] && [ "$S3_ORPHANS" -ge "$S3_OBJECTS" ]; }; then
    echo "need ALBUM_SIZE >= 1, REPEATS >= 1, OBJECT_SIZE >= 8, ORPHANS < OBJECTS, S3_ORPHANS < S3_OBJECTS" >&2
    exit 2
fi

. "$(dirname "$0")/common.sh"
bench_workdir so_bench_orphans

# ---- machine facts ----------------------------------------------------------

bench_machine_facts
echo "temp dir:    $work"
echo "file system: $(stat -f -c %T "$work") ($(df -P "$work" | awk 'NR==2 {print $1}'))"
echo "psql:        $("$PG_BIN/psql" --version)"
echo "python:      $($PYTHON --version 2>&1), psycopg2 $($PYTHON -c 'import psycopg2; print(psycopg2.__version__.split()[0])')"

# ---- setup ------------------------------------------------------------------

port=$("$repo/scripts/cluster.sh" start "$work/cluster")
export PGHOST="$work/cluster/sock" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -c "CREATE EXTENSION stored_object"
echo "server:      $(psql -At -c 'SHOW server_version'), shared_buffers=$(psql -At -c 'SHOW shared_buffers')," \
    "work_mem=$(psql -At -c 'SHOW work_mem')"
echo "settings:    OBJECTS=$OBJECTS ORPHANS=$ORPHANS ALBUM_SIZE=$ALBUM_SIZE REPEATS=$REPEATS" \
    "OBJECT_SIZE=$OBJECT_SIZE S3_OBJECTS=$S3_OBJECTS S3_ORPHANS=$S3_ORPHANS"

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# Key of object i (0-based), the same on both backends: 256 directories.
#   SQL:    lpad(to_hex(i % 256), 2, '0') || '/' || lpad(i::text, 7, '0') || '.bin'
#   Python: '%02x/%07d.bin' % (i % 256, i)
key_sql() { echo "lpad(to_hex(($1) % 256), 2, '0') || '/' || lpad(($1)::text, 7, '0') || '.bin'"; }

# Tables referencing objects 0 .. n-orphans-1 of backend $1:
#   singles: objects 0 .. n-orphans-album_refs-1, in n rows of docs (the
#            rows after the first pass reference the first objects again);
#   arrays:  the next album_refs objects, ALBUM_SIZE per row of albums.
make_tables() {  # backend n orphans suffix
    local backend=$1 n=$2 orphans=$3 t=$4 referenced album_refs singles
    referenced=$((n - orphans))
    album_refs=$((referenced / 10 / ALBUM_SIZE * ALBUM_SIZE))
    singles=$((referenced - album_refs))
    psql -c "CREATE TABLE docs$t (id int PRIMARY KEY, title text, file stored_object)" \
         -c "INSERT INTO docs$t SELECT i, 'doc ' || i,
                 so_from_json(jsonb_build_object('filename', $(key_sql "i % $singles"), 'size', $OBJECT_SIZE), '$backend')
               FROM generate_series(0, $n - 1) AS i" \
         -c "CREATE TABLE albums$t (id int PRIMARY KEY, gallery stored_object[])" \
         -c "INSERT INTO albums$t SELECT a, ARRAY(
                 SELECT so_from_json(jsonb_build_object('filename', $(key_sql "$singles + a * $ALBUM_SIZE + e"),
                                                        'size', $OBJECT_SIZE), '$backend')
                   FROM generate_series(0, $ALBUM_SIZE - 1) AS e ORDER BY e)
               FROM generate_series(0, $album_refs / $ALBUM_SIZE - 1) AS a" \
         -c "VACUUM ANALYZE docs$t, albums$t"
    echo "tables:      docs$t $(psql -At -c "SELECT count(*) FROM docs$t") rows" \
        "($(psql -At -c "SELECT count(DISTINCT so_filename(file)) FROM docs$t") distinct objects)," \
        "albums$t $(psql -At -c "SELECT count(*) FROM albums$t") rows" \
        "($(psql -At -c "SELECT count(DISTINCT so_filename(o)) FROM albums$t, unnest(gallery) o") objects in arrays);" \
        "$(psql -At -c "SELECT pg_size_pretty(pg_total_relation_size('docs$t') + pg_total_relation_size('albums$t'))")"
}

# The timed runs: fresh connection each, VmHWM before and after.
cat >"$work/measure.py" <<'EOF'
import os, sys, time
import psycopg2

def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssShmem"):
                out[k] = int(v.split()[0])  # kB
    return out

backend, prefix, older = sys.argv[1], sys.argv[2], sys.argv[3]
conn = psycopg2.connect(dbname=os.environ.get("PGDATABASE", "postgres"))
conn.autocommit = True
cur = conn.cursor()
cur.execute("SELECT pg_backend_pid()")
pid = cur.fetchone()[0]
# Load the module (and its libraries) first: "before" is a session ready to
# sweep, so the difference is the sweep's own.
cur.execute("SELECT so_secret_options()")
before = status(pid)
t0 = time.perf_counter()
cur.execute("SELECT count(*) FROM so_orphans(%s, %s, %s)", (backend, prefix, older))
n = cur.fetchone()[0]
dt = time.perf_counter() - t0
after = status(pid)
conn.close()
print("%.3f %d %d %d %d %d %d %d" % (dt, n, before["VmHWM"], after["VmHWM"], before["RssAnon"], after["RssAnon"],
                                    before["RssShmem"], after["RssShmem"]))
EOF

run_orphans() {  # label backend expected
    local label=$1 backend=$2 expected=$3
    local secs=() hwm=() grew=() line dt n b a anon0 anon shm0 shm
    for ((r = 1; r <= REPEATS; r++)); do
        line=$($PYTHON "$work/measure.py" "$backend" "" "0 seconds")
        read -r dt n b a anon0 anon shm0 shm <<<"$line"
        secs+=("$dt"); hwm+=("$a"); grew+=("$((a - b))")
        printf '%s run %d: %7.3f s  orphans %6d%s  VmHWM %d -> %d kB (+%d)  RssAnon %d -> %d kB  RssShmem %d -> %d kB\n' \
            "$label" "$r" "$dt" "$n" "$([ "$n" -eq "$expected" ] && echo "" || echo " (EXPECTED $expected)")" \
            "$b" "$a" "$((a - b))" "$anon0" "$anon" "$shm0" "$shm"
    done
    median_secs=$(median "${secs[@]}")
    median_hwm=$(median "${hwm[@]}")
    median_grew=$(median "${grew[@]}")
}

# ---- local backend ------------------------------------------------------------

echo "== local: $OBJECTS files, $((OBJECTS - ORPHANS)) referenced, $ORPHANS orphans"
install -d -o postgres -g postgres "$work/backend"
t0=$(date +%s%N)
(cd / && runuser -u postgres -- $PYTHON - "$work/backend" "$OBJECTS" "$OBJECT_SIZE" <<'EOF'
import os, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.umask(0o077)
for d in range(256):
    os.mkdir(os.path.join(root, "%02x" % d), 0o700)
body = (b"stored_object orphans benchmark " * (size // 32 + 1))[:size]
past = 1_600_000_000  # 2020: older than any cutoff
for i in range(n):
    path = os.path.join(root, "%02x/%07d.bin" % (i % 256, i))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, i.to_bytes(8, "big") + body[8:])
    os.close(fd)
    os.utime(path, (past, past))
EOF
)
echo "files:       $(find "$work/backend" -type f | wc -l) written in $(awk -v ns=$(($(date +%s%N) - t0)) 'BEGIN {printf "%.1f", ns / 1e9}') s" \
    "($(du -sh "$work/backend" | cut -f1) on disk)"
psql -c "SELECT so_register_backend('b', 'file://$work/backend')" >/dev/null
make_tables b "$OBJECTS" "$ORPHANS" ""

# Warm-up (module load, registry, page cache), not counted.
$PYTHON "$work/measure.py" b "" "0 seconds" >/dev/null
run_orphans "local" b "$ORPHANS"
local_secs=$median_secs; local_hwm=$median_hwm; local_grew=$median_grew

# Peers: the two halves by hand.
find_s=(); scan_s=()
for ((r = 1; r <= REPEATS; r++)); do
    t0=$(date +%s%N)
    n=$(cd / && runuser -u postgres -- find "$work/backend" -type f -printf '%P %s %T@\n' | wc -l)
    find_s+=("$(awk -v ns=$(($(date +%s%N) - t0)) 'BEGIN {printf "%.3f", ns / 1e9}')")
    scan=$(psql -At <<EOF
\timing on
SELECT count(*) FROM (SELECT so_filename(file) FROM docs WHERE so_backend(file) = 'b'
                      UNION ALL
                      SELECT so_filename(o) FROM albums, unnest(gallery) AS o WHERE so_backend(o) = 'b') s;
EOF
)
    scan_s+=("$(sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' <<<"$scan" | awk '{printf "%.3f", $1 / 1000}')")
    echo "peers run $r: find $n files ${find_s[-1]} s; SQL scan of $(head -1 <<<"$scan") references ${scan_s[-1]} s"
done
peer=$(awk -v a="$(median "${find_s[@]}")" -v b="$(median "${scan_s[@]}")" 'BEGIN {printf "%.3f", a + b}')

# ---- S3 backend -----------------------------------------------------------------

if [ "$S3_OBJECTS" -gt 0 ]; then
    echo "== s3 (the loopback fixture): $S3_OBJECTS objects, $((S3_OBJECTS - S3_ORPHANS)) referenced, $S3_ORPHANS orphans"
    s3_port=$($PYTHON -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    S3_FIXTURE_BUCKETS="$BUCKET" "$repo/tests/s3/run-fixture.sh" start "$work/s3" "$s3_port" >"$work/s3-start.log" 2>&1 \
        || { cat "$work/s3-start.log"; exit 1; }
    set -a; . "$work/s3/fixture.env"; set +a
    prefix="bench-orphans"
    t0=$(date +%s%N)
    BOTO_DISABLE_CRT=true $PYTHON - "$prefix" "$S3_OBJECTS" "$OBJECT_SIZE" <<'EOF'
import os, sys
from concurrent.futures import ThreadPoolExecutor
import boto3
from botocore.config import Config
prefix, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ.get("S3_REGION", "us-east-1"),
                  aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"],
                  aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"],
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                max_pool_connections=16, retries={"total_max_attempts": 5, "mode": "standard"}))
body = (b"stored_object orphans benchmark " * (size // 32 + 1))[:size]
def put(i):
    s3.put_object(Bucket="test-bucket", Key="%s/%02x/%07d.bin" % (prefix, i % 256, i),
                  Body=i.to_bytes(8, "big") + body[8:])
with ThreadPoolExecutor(16) as pool:
    list(pool.map(put, range(n)))
EOF
    echo "objects:     $S3_OBJECTS put with boto3 in $(awk -v ns=$(($(date +%s%N) - t0)) 'BEGIN {printf "%.1f", ns / 1e9}') s"
    psql -c "SELECT so_register_backend('s3', 's3://$BUCKET/$prefix',
                 jsonb_build_object('endpoint', '$S3_ENDPOINT', 'region', '$S3_REGION', 'allow_http', true,
                                    'access_key_id', '$S3_ACCESS_KEY_ID', 'secret_access_key', '$S3_SECRET_ACCESS_KEY'))" >/dev/null
    make_tables s3 "$S3_OBJECTS" "$S3_ORPHANS" "_s3"
    $PYTHON "$work/measure.py" s3 "" "0 seconds" >/dev/null
    run_orphans "s3   " s3 "$S3_ORPHANS"
    s3_secs=$median_secs; s3_hwm=$median_hwm; s3_grew=$median_grew
fi

# ---- summary ----------------------------------------------------------------------

echo "== summary (median of $REPEATS, each run in a fresh connection)"
printf 'local so_orphans:  %7.3f s for %d files (%d orphans)  peak RSS (VmHWM) %d kB, +%d kB during the statement\n' \
    "$local_secs" "$OBJECTS" "$ORPHANS" "$local_hwm" "$local_grew"
printf 'local peers:       %7.3f s (find + SQL scan)   so_orphans/peers = %s\n' "$peer" "$(ratio "$local_secs" "$peer")"
if [ "$S3_OBJECTS" -gt 0 ]; then
    printf 's3 (fixture):      %7.3f s for %d objects (%d orphans)  peak RSS (VmHWM) %d kB, +%d kB during the statement\n' \
        "$s3_secs" "$S3_OBJECTS" "$S3_ORPHANS" "$s3_hwm" "$s3_grew"
fi
