#!/usr/bin/env bash
# Benchmark of so_sign on an S3 backend (not a test: it prints numbers and
# ratios, it asserts nothing about them). As root, from a checkout:
#   bench/s3_sign.sh
# Builds and installs the extension (scripts/install-deps.sh, make install),
# builds the C++ core with CMake (target so_core), installs the Node peer
# from bench/node/package-lock.json (npm ci), starts the loopback S3 fixture
# (tests/s3/run-fixture.sh) and a throwaway cluster (scripts/cluster.sh),
# and in one run measures presigned GET URLs for ROWS distinct keys
# ("photos/<i>/photo <i>.jpg", i = 1..ROWS), valid for 3600 s, by
#   so_sign   so_sign(file) over a table of ROWS stored_object values of an
#             S3 backend registered against the fixture (values built from
#             JSON, nothing uploaded), count(...) in one statement, serial
#             plan (max_parallel_workers_per_gather = 0), in a session that
#             has signed 1,000 rows first; the table is vacuumed, analyzed
#             and read once before any run;
#   boto3     generate_presigned_url with botocore's pure-Python signer
#             (BOTO_DISABLE_CRT=true), bench/sign_boto3.py;
#   sdk       @aws-sdk/s3-request-presigner getSignedUrl with
#             @aws-sdk/client-s3, path-style, fixed endpoint,
#             bench/node/sign_sdk.mjs;
#   plpgsql   a PL/pgSQL presigner on pgcrypto, bench/s3_sign_plpgsql.sql,
#             over the same table (its key column), same plan and warm-up;
#   bare      a C++ loop over our own signer with a cached signing key,
#             bench/sign_loop.cpp linked against so_core (the limit);
# REPEATS times each, interleaved, and prints URLs/s, the medians and the
# ratios so_sign/peer with the issue's targets. Before timing it checks that
# the PL/pgSQL presigner's URLs equal so_sign's for the same time and expiry
# (1,000 keys) and the bare loop's too, and that every peer's URL for key 1
# fetches the object from the fixture (which verifies the signature). Also
# printed, not part of any target: so_sign with the URLs sent to the client
# (COPY ... TO STDOUT), and a parallel plan.
#
# Environment: ROWS (100000), REPEATS (3), BENCH_PARALLEL (1: also measure a
# parallel plan; 0: skip), BENCH_PERF (auto: profile the backend with perf
# when so_sign/bare is below its target; 1: always; 0: never),
# BENCH_TMPDIR (where the temporary directory goes; $TMPDIR or /tmp),
# BENCH_SKIP_BUILD=1 to use the installed extension as it is,
# BENCH_CMAKE_DIR (a CMake build directory to reuse; default: a fresh one
# in the temporary directory).
set -euo pipefail

ROWS=${ROWS:-100000}
REPEATS=${REPEATS:-3}
BENCH_PARALLEL=${BENCH_PARALLEL:-1}
BENCH_PERF=${BENCH_PERF:-auto}
EXPIRES=3600
BUCKET=test-bucket
PYTHON=/usr/bin/python3

. "$(dirname "$0")/common.sh"
bench_workdir so_bench_sign

# ---- machine facts ----------------------------------------------------------

bench_machine_facts
echo "compiler:    $(c++ --version | head -1)"
echo "openssl:     $(openssl version 2>/dev/null || echo unknown)"
echo "psql:        $("$PG_BIN/psql" --version)"
echo "python:      $("$PYTHON" --version 2>&1), boto3 $("$PYTHON" -c 'import boto3; print(boto3.__version__)'), botocore $("$PYTHON" -c 'import botocore; print(botocore.__version__)')"
echo "node:        $(node --version), npm $(npm --version)"
bench_git_line

# ---- setup ------------------------------------------------------------------

# The bare loop: our signer from the core library built by CMake.
bench_build_sign_loop

# The Node peer, from the committed lockfile.
if [ ! -d "$repo/bench/node/node_modules/@aws-sdk/s3-request-presigner" ]; then
    (cd "$repo/bench/node" && npm ci --no-audit --no-fund --loglevel=error >"$work/npm.log" 2>&1) \
        || { cat "$work/npm.log"; echo "npm ci failed" >&2; exit 1; }
fi
echo "aws sdk:     @aws-sdk/client-s3 $(node -p 'require("./bench/node/node_modules/@aws-sdk/client-s3/package.json").version'), @aws-sdk/s3-request-presigner $(node -p 'require("./bench/node/node_modules/@aws-sdk/s3-request-presigner/package.json").version')"

# The S3 fixture and the cluster.
s3_port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
S3_FIXTURE_BUCKETS=$BUCKET "$repo/tests/s3/run-fixture.sh" start "$work/s3" "$s3_port" >"$work/s3-start.log" 2>&1 \
    || { cat "$work/s3-start.log"; echo "the S3 fixture did not start" >&2; exit 1; }
# shellcheck disable=SC1091
. "$work/s3/fixture.env"
ENDPOINT=$S3_ENDPOINT REGION=$S3_REGION AK=$S3_ACCESS_KEY_ID SK=$S3_SECRET_ACCESS_KEY

port=$("$repo/scripts/cluster.sh" start "$work/cluster")
export PGHOST="$work/cluster/sock" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -v endpoint="$ENDPOINT" -v ak="$AK" -v sk="$SK" -v region="$REGION" "$@"; }
psql -c "CREATE EXTENSION stored_object" -c "CREATE EXTENSION pgcrypto"
psql -f "$repo/bench/s3_sign_plpgsql.sql"
psql >/dev/null <<'EOF'
SELECT so_register_backend('s3', 's3://test-bucket',
    jsonb_build_object('endpoint', :'endpoint', 'region', :'region', 'allow_http', true,
                       'access_key_id', :'ak', 'secret_access_key', :'sk'));
EOF
echo "server:      $(psql -At -c 'SHOW server_version'), shared_buffers=$(psql -At -c 'SHOW shared_buffers')," \
    "jit=$(psql -At -c 'SHOW jit')"
echo "fixture:     $ENDPOINT (s3rver behind tests/s3/s3proxy.py), bucket $BUCKET, region $REGION"
echo "backend:     $(psql -At -c "SELECT url || ' ' || options::text FROM so_backend_info WHERE key = 's3'")"
echo "settings:    ROWS=$ROWS REPEATS=$REPEATS expiry=${EXPIRES}s"

psql <<EOF
CREATE TABLE t (id int PRIMARY KEY, key text NOT NULL, file stored_object NOT NULL);
INSERT INTO t
SELECT i, k, so_from_json(jsonb_build_object('filename', k, 'size', 4096, 'content_type', 'image/jpeg'), 's3')
  FROM generate_series(1, $ROWS) AS i, LATERAL (SELECT 'photos/' || i || '/photo ' || i || '.jpg' AS k) AS x;
VACUUM ANALYZE t;
SELECT count(*) FROM t \g /dev/null
-- One object, so that every peer's URL for key 1 can be fetched.
SELECT so_put('s3', 'photos/1/photo 1.jpg', convert_to('sample', 'UTF8')) \g /dev/null
EOF
echo "table:       $ROWS rows, $(psql -At -c "SELECT pg_size_pretty(pg_table_size('t'))"), e.g. $(psql -At -c 'SELECT file FROM t WHERE id = 2')"

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
per_sec() { awk -v n="$ROWS" -v ms="$1" 'BEGIN {printf "%.0f", n / (ms / 1000)}'; }
field() { sed -nE "s/^$1 //p" <<<"$2"; }

# ---- checks -------------------------------------------------------------------

echo "== checks"
# The PL/pgSQL presigner against so_sign, same statement: so_sign signs at
# the statement's start (whole seconds), expiry 3600 s.
read -r n_checked n_equal < <(psql -At -F ' ' <<'EOF'
SELECT count(*), count(*) FILTER (WHERE so_sign(file, '3600 seconds')
         = s3_presign_get(:'endpoint', 'test-bucket', key, :'ak', :'sk', :'region', 3600,
                          to_timestamp(floor(extract(epoch FROM statement_timestamp())))))
  FROM t WHERE id <= 1000;
EOF
)
echo "PL/pgSQL URLs equal to so_sign's (same time, expiry): $n_equal of $n_checked"
if [ "$n_equal" != "$n_checked" ]; then
    psql -At <<'EOF'
SELECT 'so_sign: ' || so_sign(file, '3600 seconds') || E'\nplpgsql: ' ||
       s3_presign_get(:'endpoint', 'test-bucket', key, :'ak', :'sk', :'region', 3600,
                      to_timestamp(floor(extract(epoch FROM statement_timestamp()))))
  FROM t WHERE id = 1;
EOF
    echo "the PL/pgSQL presigner is not a fair peer: its URLs differ" >&2
    exit 1
fi
# The bare loop against the PL/pgSQL presigner at a pinned time.
pinned=1700000000
bare_pinned=$(field sample "$("$work/sign_loop" "$ENDPOINT" "$BUCKET" "$AK" "$SK" "$REGION" 1 "$EXPIRES" "$pinned")")
plpgsql_pinned=$(psql -At <<<"SELECT s3_presign_get(:'endpoint', 'test-bucket', 'photos/1/photo 1.jpg', :'ak', :'sk', :'region', $EXPIRES, to_timestamp($pinned))")
[ "$bare_pinned" = "$plpgsql_pinned" ] && echo "bare loop URL equal to PL/pgSQL's (pinned time): yes" \
    || { echo "bare loop URL differs:"; echo "  bare:    $bare_pinned"; echo "  plpgsql: $plpgsql_pinned"; exit 1; }

# ---- runs ---------------------------------------------------------------------

# Milliseconds of the last statement of a psql session: SQL on stdin.
time_last() {
    local out
    out=$(psql -At)
    sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' <<<"$out" | tail -1
}
serial="SET max_parallel_workers_per_gather = 0;"
so_sql="SELECT count(so_sign(file)) FROM t"
pl_sql="SELECT count(s3_presign_get(:'endpoint', 'test-bucket', key, :'ak', :'sk', :'region', $EXPIRES)) FROM t"
peer_args=("$ENDPOINT" "$BUCKET" "$AK" "$SK" "$REGION" "$ROWS" "$EXPIRES")

so_rates=(); untracked_rates=(); boto_rates=(); sdk_rates=(); pl_rates=(); bare_rates=()
samples_boto='' samples_sdk='' samples_bare=''
for ((r = 1; r <= REPEATS; r++)); do
    echo "== run $r/$REPEATS"
    ms=$(time_last <<EOF
$serial
$so_sql WHERE id <= 1000;
\timing on
$so_sql;
EOF
)
    so_rates+=("$(per_sec "$ms")")
    printf 'so_sign (serial):   %8.0f ms  %9s URLs/s\n' "$ms" "${so_rates[-1]}"

    # The same without operation statistics: what counting costs.
    ms=$(time_last <<EOF
$serial
SET stored_object.track_operations = off;
$so_sql WHERE id <= 1000;
\timing on
$so_sql;
EOF
)
    untracked_rates+=("$(per_sec "$ms")")
    printf 'so_sign, no stats:  %8.0f ms  %9s URLs/s\n' "$ms" "${untracked_rates[-1]}"

    out=$(BOTO_DISABLE_CRT=true "$PYTHON" "$repo/bench/sign_boto3.py" "${peer_args[@]}")
    boto_rates+=("$(field rate "$out")"); samples_boto=$(field sample "$out")
    printf 'boto3:              %8.0f ms  %9s URLs/s  (%s)\n' "$(field seconds "$out" | awk '{print $1 * 1000}')" \
        "${boto_rates[-1]}" "$(field signer "$out")"

    out=$(cd "$repo/bench/node" && node sign_sdk.mjs "${peer_args[@]}" 2>>"$work/node.stderr")
    sdk_rates+=("$(field rate "$out")"); samples_sdk=$(field sample "$out")
    printf 'aws-sdk-js v3:      %8.0f ms  %9s URLs/s\n' "$(field seconds "$out" | awk '{print $1 * 1000}')" "${sdk_rates[-1]}"

    ms=$(time_last <<EOF
$serial
$pl_sql WHERE id <= 1000;
\timing on
$pl_sql;
EOF
)
    pl_rates+=("$(per_sec "$ms")")
    printf 'PL/pgSQL+pgcrypto:  %8.0f ms  %9s URLs/s\n' "$ms" "${pl_rates[-1]}"

    out=$("$work/sign_loop" "${peer_args[@]}")
    bare_rates+=("$(field rate "$out")"); samples_bare=$(field sample "$out")
    printf 'bare C++ loop:      %8.1f ms  %9s URLs/s\n' "$(field seconds "$out" | awk '{print $1 * 1000}')" "${bare_rates[-1]}"
done

# ---- every peer's URL works -----------------------------------------------------

echo "== URLs for key 1 fetched from the fixture (it verifies SigV4)"
fetch_check() {  # name url
    local code body
    code=$(curl -sS -o "$work/fetched" -w '%{http_code}' "$2" || true)
    body=$(cat "$work/fetched" 2>/dev/null || true)
    if [ "$code" = 200 ] && [ "$body" = sample ]; then
        printf '%-18s HTTP %s, content ok\n' "$1:" "$code"
    else
        printf '%-18s HTTP %s: %s\n' "$1:" "$code" "$(head -c 300 <<<"$body")"
        echo "  $2"
    fi
}
fetch_check so_sign "$(psql -At -c "SELECT so_sign(file) FROM t WHERE id = 1")"
fetch_check boto3 "$samples_boto"
fetch_check aws-sdk-js "$samples_sdk"
fetch_check plpgsql "$(psql -At <<<"SELECT s3_presign_get(:'endpoint', 'test-bucket', 'photos/1/photo 1.jpg', :'ak', :'sk', :'region', $EXPIRES)")"
fetch_check bare "$samples_bare"
echo "so_sign sample: $(psql -At -c "SELECT so_sign(file) FROM t WHERE id = 2")"

# ---- diagnostics, not part of the targets ---------------------------------------

echo "== diagnostics (median of $REPEATS, not part of the targets)"
copy_ms=()
for ((r = 1; r <= REPEATS; r++)); do
    copy_ms+=("$(time_last <<EOF
$serial
$so_sql WHERE id <= 1000;
\timing on
COPY (SELECT so_sign(file) FROM t) TO STDOUT \g /dev/null
EOF
)")
done
echo "so_sign, URLs sent to the client (COPY TO STDOUT, serial): $(per_sec "$(median "${copy_ms[@]}")") URLs/s"
ident_ms=()
for ((r = 1; r <= REPEATS; r++)); do
    ident_ms+=("$(time_last <<EOF
$serial
\timing on
SELECT count(so_filename(file)) FROM t;
EOF
)")
done
echo "count(so_filename(file)), the scan and call overhead alone: $(per_sec "$(median "${ident_ms[@]}")") rows/s"
if [ "$BENCH_PARALLEL" = 1 ]; then
    workers=$(( $(nproc) > 1 ? $(nproc) : 2 ))
    parallel="SET max_parallel_workers_per_gather = $workers; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;"
    if launched=$(psql -At 2>"$work/parallel.err" <<EOF
$parallel
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $so_sql;
EOF
); then
        par_ms=()
        for ((r = 1; r <= REPEATS; r++)); do
            par_ms+=("$(time_last <<EOF
$parallel
$so_sql WHERE id <= 1000;
\timing on
$so_sql;
EOF
)")
        done
        echo "so_sign, parallel plan ($(grep -oE 'Workers Launched: [0-9]+' <<<"$launched" || echo 'no workers launched'), $(nproc) CPUs): $(per_sec "$(median "${par_ms[@]}")") URLs/s"
    else
        echo "so_sign, parallel plan: failed: $(head -3 "$work/parallel.err")"
    fi
fi

# ---- summary --------------------------------------------------------------------

so=$(median "${so_rates[@]}"); untracked=$(median "${untracked_rates[@]}"); boto=$(median "${boto_rates[@]}"); sdk=$(median "${sdk_rates[@]}")
pl=$(median "${pl_rates[@]}"); bare=$(median "${bare_rates[@]}")
verdict() {  # ratio target
    awk -v r="$1" -v t="$2" 'BEGIN {printf "target >= %s: %s", t, (r >= t) ? "met" : "NOT met"}'
}
echo "== presigned GET URLs/s, median of $REPEATS, $ROWS distinct keys"
echo "   (so_sign: serial plan, max_parallel_workers_per_gather = 0, count() in the server)"
printf 'so_sign:            %9s URLs/s\n' "$so"
printf 'boto3:              %9s URLs/s   so_sign/boto3   = %8s   %s\n' "$boto" "$(ratio "$so" "$boto")" "$(verdict "$(ratio "$so" "$boto")" 50)"
printf 'aws-sdk-js v3:      %9s URLs/s   so_sign/sdk     = %8s   (no target)\n' "$sdk" "$(ratio "$so" "$sdk")"
printf 'PL/pgSQL+pgcrypto:  %9s URLs/s   so_sign/plpgsql = %8s   %s\n' "$pl" "$(ratio "$so" "$pl")" "$(verdict "$(ratio "$so" "$pl")" 20)"
printf 'bare C++ loop:      %9s URLs/s   so_sign/bare    = %8s   %s\n' "$bare" "$(ratio "$so" "$bare")" "$(verdict "$(ratio "$so" "$bare")" 0.25)"
printf 'so_sign, stats off: %9s URLs/s   statistics overhead = %s%%   %s\n' "$untracked" \
    "$(awk -v a="$so" -v b="$untracked" 'BEGIN {printf "%.1f", (b / a - 1) * 100}')" \
    "$(awk -v a="$so" -v b="$untracked" 'BEGIN {o = (b / a - 1) * 100; printf "target <= 5%%: %s", (o <= 5) ? "met" : "NOT met"}')"
echo "runs (URLs/s): so_sign ${so_rates[*]}; so_sign without statistics ${untracked_rates[*]}; boto3 ${boto_rates[*]}; sdk ${sdk_rates[*]}; plpgsql ${pl_rates[*]}; bare ${bare_rates[*]}"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- profile ----------------------------------------------------------------------

below=$(awk -v r="$(ratio "$so" "$bare")" 'BEGIN {print (r < 0.25) ? 1 : 0}')
if [ "$BENCH_PERF" = 1 ] || { [ "$BENCH_PERF" = auto ] && [ "$below" = 1 ]; }; then
    if ! command -v perf >/dev/null 2>&1; then
        echo "== profile skipped: perf is not installed"
    else
        echo "== profile of the backend running '$so_sql' 3 times (serial; perf record -g; self time)"
        "$PYTHON" - "$work/perf.data" "$so_sql" <<'PY'
import signal, subprocess, sys, time
import psycopg2
data, query = sys.argv[1], sys.argv[2]
conn = psycopg2.connect("")
conn.autocommit = True
cur = conn.cursor()
cur.execute("SET max_parallel_workers_per_gather = 0")
cur.execute(query + " WHERE id <= 1000")
cur.execute("SELECT pg_backend_pid()")
pid = cur.fetchone()[0]
perf = subprocess.Popen(["perf", "record", "-q", "-g", "-F", "2000", "-p", str(pid), "-o", data],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.5)
for _ in range(3):
    cur.execute(query)
perf.send_signal(signal.SIGINT)
perf.wait()
conn.close()
PY
        perf report -i "$work/perf.data" --stdio --no-children --sort dso -g none --percent-limit 1 2>/dev/null \
            | grep -vE '^#|^$' | sed -E 's/[[:space:]-]+$//' | head -15
        echo "-- by symbol (>= 1.5% self time)"
        perf report -i "$work/perf.data" --stdio --no-children --sort dso,symbol -g none --percent-limit 1.5 2>/dev/null \
            | grep -vE '^#|^$' | sed -E 's/[[:space:]-]+$//' | head -40
    fi
fi
