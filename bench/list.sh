#!/usr/bin/env bash
# Benchmark of so_list() (not a test: it prints numbers and ratios, it
# asserts nothing about them). As root, from a checkout:
#   bench/list.sh
#
# Local: OBJECTS files (default 100,000) in 256 directories of a file://
# backend; so_list against find (as the server's OS user, printing name,
# size and time of every file: what so_list reads).
# S3: S3_OBJECTS objects (default 10,000: putting 100,000 through the
# loopback fixture alone takes minutes) under a prefix of the fixture;
# so_list against the AWS CLI (`aws s3 ls --recursive`), both listing
# through the same fixture, whose speed bounds both.
# Each so_list run is SELECT count(*) FROM so_list(...) in a fresh
# connection; its backend's peak memory (VmHWM) is read before and after:
# rows go to a tuplestore that spills beyond work_mem, so the growth is one
# listing page plus work_mem, whatever the count.
# Environment: OBJECTS, S3_OBJECTS (0: skip S3), REPEATS (3), BENCH_TMPDIR,
# BENCH_SKIP_BUILD=1 to use the installed extension as it is.
set -euo pipefail

OBJECTS=${OBJECTS:-100000}
S3_OBJECTS=${S3_OBJECTS:-10000}
REPEATS=${REPEATS:-3}
BUCKET=test-bucket
PYTHON=/usr/bin/python3
AWS=/usr/bin/aws
for v in OBJECTS S3_OBJECTS REPEATS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a whole number, not '${!v}'" >&2; exit 2; }
done

. "$(dirname "$0")/common.sh"
bench_workdir so_bench_list

bench_machine_facts
echo "psql:        $("$PG_BIN/psql" --version)"
echo "aws:         $($AWS --version 2>&1)"

port=$("$repo/scripts/cluster.sh" start "$work/cluster")
export PGHOST="$work/cluster/sock" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -c "CREATE EXTENSION stored_object"
echo "server:      $(psql -At -c 'SHOW server_version'), work_mem=$(psql -At -c 'SHOW work_mem')"
echo "settings:    OBJECTS=$OBJECTS S3_OBJECTS=$S3_OBJECTS REPEATS=$REPEATS"

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
seconds_since() { awk -v ns=$(($(date +%s%N) - $1)) 'BEGIN {printf "%.3f", ns / 1e9}'; }

# One so_list run in a fresh connection: "seconds count hwm_growth_kB".
cat >"$work/measure.py" <<'EOF'
import sys, time
import psycopg2
backend = sys.argv[1]
conn = psycopg2.connect("")
conn.autocommit = True
cur = conn.cursor()
cur.execute("SELECT pg_backend_pid()")
pid = cur.fetchone()[0]
cur.execute("SELECT so_exists('{\"backend\":\"%s\",\"filename\":\"warm-up\"}')" % backend)
def hwm():
    with open("/proc/%d/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
before = hwm()
t0 = time.monotonic()
cur.execute("SELECT count(*) FROM so_list(%s)", (backend,))
n = cur.fetchone()[0]
print("%.3f %d %d" % (time.monotonic() - t0, n, hwm() - before))
EOF

run_list() {  # label backend -> sets list_secs
    local secs=() line
    "$PYTHON" "$work/measure.py" "$2" >/dev/null  # warm-up, not counted
    for ((r = 1; r <= REPEATS; r++)); do
        line=$("$PYTHON" "$work/measure.py" "$2")
        read -r s n grew <<<"$line"
        secs+=("$s")
        echo "$1 run $r: so_list ${s} s, $n objects, peak memory +${grew} kB"
    done
    list_secs=$(median "${secs[@]}")
}

# ---- local ----------------------------------------------------------------------

echo "== local: $OBJECTS files"
install -d -o postgres -g postgres "$work/backend"
t0=$(date +%s%N)
(cd / && runuser -u postgres -- "$PYTHON" - "$work/backend" "$OBJECTS" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
os.umask(0o077)
for d in range(256):
    os.mkdir(os.path.join(root, "%02x" % d), 0o700)
for i in range(n):
    fd = os.open(os.path.join(root, "%02x/%07d.bin" % (i % 256, i)), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, i.to_bytes(8, "big"))
    os.close(fd)
EOF
)
echo "files:       $OBJECTS written in $(seconds_since "$t0") s"
psql -c "SELECT so_register_backend('b', 'file://$work/backend')" >/dev/null
run_list "local" b
local_secs=$list_secs
find_s=()
for ((r = 1; r <= REPEATS; r++)); do
    t0=$(date +%s%N)
    n=$(cd / && runuser -u postgres -- find "$work/backend" -type f -printf '%P %s %T@\n' | wc -l)
    find_s+=("$(seconds_since "$t0")")
    echo "peer  run $r: find ${find_s[-1]} s, $n files"
done
find_secs=$(median "${find_s[@]}")

# ---- S3 -------------------------------------------------------------------------

if [ "$S3_OBJECTS" -gt 0 ]; then
    echo "== s3 (the loopback fixture): $S3_OBJECTS objects"
    s3_port=$($PYTHON -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    S3_FIXTURE_BUCKETS="$BUCKET" "$repo/tests/s3/run-fixture.sh" start "$work/s3" "$s3_port" >"$work/s3-start.log" 2>&1 \
        || { cat "$work/s3-start.log"; exit 1; }
    set -a; . "$work/s3/fixture.env"; set +a
    prefix="bench-list"
    t0=$(date +%s%N)
    BOTO_DISABLE_CRT=true $PYTHON - "$prefix" "$S3_OBJECTS" <<'EOF'
import os, sys
from concurrent.futures import ThreadPoolExecutor
import boto3
from botocore.config import Config
prefix, n = sys.argv[1], int(sys.argv[2])
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ.get("S3_REGION", "us-east-1"),
                  aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"],
                  aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"],
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                max_pool_connections=16, retries={"total_max_attempts": 5, "mode": "standard"}))
def put(i):
    s3.put_object(Bucket="test-bucket", Key="%s/%02x/%07d.bin" % (prefix, i % 256, i), Body=i.to_bytes(8, "big"))
with ThreadPoolExecutor(16) as pool:
    list(pool.map(put, range(n)))
EOF
    echo "objects:     $S3_OBJECTS put with boto3 in $(seconds_since "$t0") s"
    psql -c "SELECT so_register_backend('s3', 's3://$BUCKET/$prefix',
                 jsonb_build_object('endpoint', '$S3_ENDPOINT', 'region', '$S3_REGION', 'allow_http', true,
                                    'path_style', true, 'access_key_id', '$S3_ACCESS_KEY_ID',
                                    'secret_access_key', '$S3_SECRET_ACCESS_KEY'))" >/dev/null
    run_list "s3   " s3
    s3_secs=$list_secs
    aws_s=()
    for ((r = 1; r <= REPEATS; r++)); do
        t0=$(date +%s%N)
        n=$(AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$S3_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=$S3_REGION \
            AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
            $AWS --endpoint-url "$S3_ENDPOINT" s3 ls --recursive "s3://$BUCKET/$prefix/" | wc -l)
        aws_s+=("$(seconds_since "$t0")")
        echo "peer  run $r: aws s3 ls --recursive ${aws_s[-1]} s, $n objects"
    done
    aws_secs=$(median "${aws_s[@]}")
fi

# ---- summary ----------------------------------------------------------------------

echo "== summary (median of $REPEATS)"
printf 'local: so_list %7.3f s for %d files; find %7.3f s; so_list/find = %s (time: lower is better)\n' \
    "$local_secs" "$OBJECTS" "$find_secs" "$(ratio "$local_secs" "$find_secs")"
if [ "$S3_OBJECTS" -gt 0 ]; then
    printf 's3:    so_list %7.3f s for %d objects; aws s3 ls %7.3f s; so_list/aws = %s\n' \
        "$s3_secs" "$S3_OBJECTS" "$aws_secs" "$(ratio "$s3_secs" "$aws_secs")"
fi
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
