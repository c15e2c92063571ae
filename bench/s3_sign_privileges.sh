#!/usr/bin/env bash
# Benchmark of so_sign's access checks on an S3 backend (not a test: it
# prints numbers and ratios, it asserts nothing about them). As root, from a
# checkout:
#   bench/s3_sign_privileges.sh
# The set-up of bench/s3_sign.sh (the extension built and installed, the C++
# core built by CMake for the bare loop bench/sign_loop.cpp, the loopback S3
# fixture, a throwaway cluster, an S3 backend 's3' registered against the
# fixture), and a table
#     t (id int, tenant text, file stored_object)   ROWS rows
# of values built from JSON (nothing uploaded; signing makes no network
# call), keys "photos/<i>/photo <i>.jpg" as in s3_sign.sh, a btree index on
# file and so_manage_column('t', 'file') (attached before the rows are
# inserted, 1,000 rows a transaction, so every value went through the
# trigger's check). Two roles that are not superusers, both with SELECT on t:
#   so_reader   holds the backend's read privilege: so_grant('s3', 'read', ...);
#   so_viewer   holds no privilege on the backend: its so_sign passes only
#               because a row it may read in a managed column references the
#               object (the table's owner holds read), which so_sign checks
#               row by row with the column's reference query
#               (SELECT 1 FROM ONLY t WHERE file = $1 LIMIT 1) as so_viewer.
# Measured in one run, REPEATS times, interleaved, each statement in a fresh
# session after signing 1,000 rows (serial plan,
# max_parallel_workers_per_gather = 0, count() in the server, as in
# s3_sign.sh):
#   superuser   SELECT count(so_sign(file)) FROM t, as postgres (no check);
#   reader      the same as so_reader: the backend privilege check;
#   bare        the C++ loop over our signer (the limit);
#   viewer      the same statement as so_viewer: row-level access;
#   viewer+RLS  so_viewer again with row-level security enabled on t and the
#               policy  USING (tenant = current_user)  (every row's tenant
#               is 'so_viewer', so every row stays visible); the check is
#               then a query as the user under the policy, which uses the
#               index because the stored_object comparisons are LEAKPROOF.
#               RLS_SAMPLE (default: every row) signs a sample instead:
#               rows spread evenly over t (id % k = 0), the rate per row of
#               that sample.
# Printed: URLs/s each, medians, so_reader/bare (target >= 0.6) and the
# viewer's rows/s (target >= 100,000, with and without RLS). Diagnostics,
# not part of the targets: the scan and call overhead alone
# (count(so_filename(file))), the reference query's own work (a LATERAL
# index probe per row in one plan, as so_viewer), the viewer's URLs sent to
# the client (COPY TO STDOUT), the reference query's plan with and without
# RLS. BENCH_PERF (auto: when the viewer misses its target; 1; 0): a perf
# profile of the viewer's backend (self time by symbol).
#
# Environment: ROWS (100000), REPEATS (3), RLS_SAMPLE (ROWS), BENCH_PERF,
# BENCH_TMPDIR, BENCH_SKIP_BUILD=1 to use the installed
# extension as it is, BENCH_CMAKE_DIR (a CMake build directory to reuse).
set -euo pipefail

ROWS=${ROWS:-100000}
REPEATS=${REPEATS:-3}
RLS_SAMPLE=${RLS_SAMPLE:-$ROWS}
BENCH_PERF=${BENCH_PERF:-auto}
EXPIRES=3600
BUCKET=test-bucket
CHUNK=1000
PYTHON=/usr/bin/python3
for v in ROWS REPEATS RLS_SAMPLE; do
    [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || { echo "$v must be a positive whole number, not '${!v}'" >&2; exit 2; }
done
[ "$ROWS" -ge 2000 ] || { echo "need ROWS >= 2000" >&2; exit 2; }
[ "$RLS_SAMPLE" -le "$ROWS" ] || RLS_SAMPLE=$ROWS

. "$(dirname "$0")/common.sh"
bench_workdir so_bench_sign_priv

# ---- machine facts ----------------------------------------------------------

bench_machine_facts
echo "compiler:    $(c++ --version | head -1)"
echo "psql:        $("$PG_BIN/psql" --version)"
bench_git_line

# ---- setup ------------------------------------------------------------------

bench_build_sign_loop

s3_port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
S3_FIXTURE_BUCKETS=$BUCKET "$repo/tests/s3/run-fixture.sh" start "$work/s3" "$s3_port" >"$work/s3-start.log" 2>&1 \
    || { cat "$work/s3-start.log"; echo "the S3 fixture did not start" >&2; exit 1; }
# shellcheck disable=SC1091
. "$work/s3/fixture.env"
ENDPOINT=$S3_ENDPOINT REGION=$S3_REGION AK=$S3_ACCESS_KEY_ID SK=$S3_SECRET_ACCESS_KEY

port=$("$repo/scripts/cluster.sh" start "$work/cluster")
export PGHOST="$work/cluster/sock" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -v endpoint="$ENDPOINT" -v ak="$AK" -v sk="$SK" -v region="$REGION" "$@"; }
psql >/dev/null <<'EOF'
CREATE EXTENSION stored_object;
SELECT so_register_backend('s3', 's3://test-bucket',
    jsonb_build_object('endpoint', :'endpoint', 'region', :'region', 'allow_http', true,
                       'access_key_id', :'ak', 'secret_access_key', :'sk'));
CREATE ROLE so_reader LOGIN;
CREATE ROLE so_viewer LOGIN;
SELECT so_grant('s3', 'read', 'so_reader');
CREATE TABLE t (id int PRIMARY KEY, tenant text NOT NULL, file stored_object NOT NULL);
CREATE INDEX t_file ON t (file);
SELECT so_manage_column('t', 'file');
GRANT SELECT ON t TO so_reader, so_viewer;
CREATE POLICY tenant_rows ON t FOR SELECT USING (tenant = current_user);
EOF
t0=$(date +%s%N)
for ((lo = 1; lo <= ROWS; lo += CHUNK)); do
    echo "INSERT INTO t SELECT i, 'so_viewer',
              so_from_json(jsonb_build_object('filename', 'photos/' || i || '/photo ' || i || '.jpg',
                                              'size', 4096, 'content_type', 'image/jpeg'), 's3')
            FROM generate_series($lo, $((lo + CHUNK - 1 < ROWS ? lo + CHUNK - 1 : ROWS))) AS i;"
done | psql
load_s=$(awk -v ns=$(($(date +%s%N) - t0)) 'BEGIN {printf "%.1f", ns / 1e9}')
psql -c "VACUUM ANALYZE t" -c "SELECT count(*) FROM t" >/dev/null
echo "server:      $(psql -At -c 'SHOW server_version'), stored_object $(psql -At -c "SELECT extversion FROM pg_extension WHERE extname = 'stored_object'"), shared_buffers=$(psql -At -c 'SHOW shared_buffers'), jit=$(psql -At -c 'SHOW jit')"
echo "fixture:     $ENDPOINT (s3rver behind tests/s3/s3proxy.py), bucket $BUCKET, region $REGION"
echo "backend:     s3, privileges $(psql -At -c "SELECT privileges::text FROM so_backend_info WHERE key = 's3'")"
echo "table:       t, $ROWS rows (inserted through so_manage, $CHUNK a transaction, in $load_s s), $(psql -At -c "SELECT pg_size_pretty(pg_total_relation_size('t'))") with the index;" \
    "managed columns: $(psql -At -c "SELECT count(*) FROM pg_trigger WHERE tgfoid = 'so_manage()'::regprocedure")"
echo "settings:    ROWS=$ROWS REPEATS=$REPEATS RLS_SAMPLE=$RLS_SAMPLE expiry=${EXPIRES}s"

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
per_sec() { awk -v n="$2" -v ms="$1" 'BEGIN {printf "%.0f", n / (ms / 1000)}'; }   # ms rows
us_per_row() { awk -v n="$2" -v ms="$1" 'BEGIN {printf "%.2f", ms * 1000 / n}'; }  # ms rows
field() { sed -nE "s/^$1 //p" <<<"$2"; }

# ---- checks -----------------------------------------------------------------------

echo "== checks"
step=$((ROWS / RLS_SAMPLE))
sample_where="WHERE id % $step = 0"
sample_rows=$(psql -At -c "SELECT count(*) FROM t $sample_where")
for who in so_reader so_viewer; do
    u=$(psql -U "$who" -At -c "SELECT so_sign(file) FROM t WHERE id = 1")
    s=$(psql -At -c "SELECT so_sign(file) FROM t WHERE id = 1")
    [ "${u%%&X-Amz-Date*}" = "${s%%&X-Amz-Date*}" ] && echo "$who: so_sign works, same URL as the superuser's (up to the time)" \
        || { echo "$who: so_sign differs or fails: $u" >&2; exit 1; }
done
denied=$(psql -U so_viewer -At -c "SELECT so_sign(so_from_json('{\"filename\": \"not/in/any/row.jpg\"}', 's3'))" 2>&1 || true)
echo "so_viewer, an object no row references: $(head -1 <<<"$denied")"
psql -c "ALTER TABLE t ENABLE ROW LEVEL SECURITY"
echo "so_viewer, RLS on: sees $(psql -U so_viewer -At -c "SELECT count(*) FROM t") rows; signs id 1: $(psql -U so_viewer -At -c "SELECT so_sign(file) IS NOT NULL FROM t WHERE id = 1")"
psql -c "ALTER TABLE t DISABLE ROW LEVEL SECURITY"

# ---- runs ---------------------------------------------------------------------

# Milliseconds of the last statement of a psql session: SQL on stdin.
time_last() {  # psql arguments
    local out
    out=$(psql -At "$@")
    sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' <<<"$out" | tail -1
}
serial="SET max_parallel_workers_per_gather = 0;"
so_sql="SELECT count(so_sign(file)) FROM t"
run_as() {  # role [where]
    time_last -U "$1" <<EOF
$serial
$so_sql WHERE id <= 1000;
\timing on
$so_sql ${2:-};
EOF
}

super_rates=(); reader_rates=(); bare_rates=(); viewer_rates=(); rls_rates=()
for ((r = 1; r <= REPEATS; r++)); do
    echo "== run $r/$REPEATS"
    ms=$(run_as postgres); super_rates+=("$(per_sec "$ms" "$ROWS")")
    printf 'superuser:            %8.0f ms  %9s URLs/s\n' "$ms" "${super_rates[-1]}"

    ms=$(run_as so_reader); reader_rates+=("$(per_sec "$ms" "$ROWS")")
    printf 'so_reader (granted):  %8.0f ms  %9s URLs/s\n' "$ms" "${reader_rates[-1]}"

    out=$("$work/sign_loop" "$ENDPOINT" "$BUCKET" "$AK" "$SK" "$REGION" "$ROWS" "$EXPIRES")
    bare_rates+=("$(field rate "$out")")
    printf 'bare C++ loop:        %8.1f ms  %9s URLs/s\n' "$(field seconds "$out" | awk '{print $1 * 1000}')" "${bare_rates[-1]}"

    ms=$(run_as so_viewer); viewer_rates+=("$(per_sec "$ms" "$ROWS")")
    printf 'so_viewer (rows):     %8.0f ms  %9s rows/s\n' "$ms" "${viewer_rates[-1]}"

    psql -c "ALTER TABLE t ENABLE ROW LEVEL SECURITY"
    ms=$(time_last -U so_viewer <<EOF
$serial
$so_sql WHERE id <= 10;
\timing on
$so_sql $sample_where;
EOF
)
    psql -c "ALTER TABLE t DISABLE ROW LEVEL SECURITY"
    rls_rates+=("$(per_sec "$ms" "$sample_rows")")
    printf 'so_viewer, RLS on:    %8.0f ms  %9s rows/s   (%d sample rows)\n' "$ms" "${rls_rates[-1]}" "$sample_rows"
done

# ---- diagnostics, not part of the targets ---------------------------------------------

echo "== diagnostics (median of $REPEATS, not part of the targets)"
diag() {  # role sql rows -> median ms
    local ms=() i
    for ((i = 1; i <= REPEATS; i++)); do
        ms+=("$(time_last -U "$1" <<EOF
$serial
SET enable_hashjoin = off; SET enable_mergejoin = off;
\timing on
$2
EOF
)")
    done
    median "${ms[@]}"
}
scan_ms=$(diag so_viewer "SELECT count(so_filename(file)) FROM t;")
probe_ms=$(diag so_viewer "SELECT count(*) FROM t AS a, LATERAL (SELECT 1 FROM ONLY public.t AS b WHERE b.file OPERATOR(public.=) a.file LIMIT 1) AS x;")
copy_ms=$(diag so_viewer "COPY (SELECT so_sign(file) FROM t) TO STDOUT \g /dev/null")
super=$(median "${super_rates[@]}"); viewer=$(median "${viewer_rates[@]}")
super_us=$(awk -v r="$super" 'BEGIN {printf "%.2f", 1e6 / r}'); viewer_us=$(awk -v r="$viewer" 'BEGIN {printf "%.2f", 1e6 / r}')
echo "per row, as so_viewer unless said:"
printf '  %-62s %7s us\n' "scan + call overhead, count(so_filename(file))" "$(us_per_row "$scan_ms" "$ROWS")"
printf '  %-62s %7s us\n' "so_sign as superuser (no check)" "$super_us"
printf '  %-62s %7s us\n' "so_sign, row-level check (median run)" "$viewer_us"
printf '  %-62s %7s us\n' "  of which the check: row-level - superuser" "$(awk -v a="$viewer_us" -v b="$super_us" 'BEGIN {printf "%.2f", a - b}')"
printf '  %-62s %7s us\n' "  the reference query's own work: LATERAL index probe, one plan" "$(us_per_row "$probe_ms" "$ROWS")"
printf '  %-62s %7s us\n' "  so per-call overhead (SPI, plan, executor start, GUCs)" \
    "$(awk -v a="$viewer_us" -v b="$super_us" -v p="$(us_per_row "$probe_ms" "$ROWS")" 'BEGIN {printf "%.2f", a - b - p}')"
echo "so_viewer, URLs sent to the client (COPY TO STDOUT): $(per_sec "$copy_ms" "$ROWS") rows/s"
ref_sql="SELECT 1 FROM ONLY public.t WHERE file OPERATOR(public.=) (SELECT file FROM public.t WHERE id = $((ROWS / 2))) LIMIT 1"
echo "reference query plan as so_viewer, RLS off: $(psql -U so_viewer -At -c "EXPLAIN (COSTS OFF) $ref_sql" | grep -E 'Scan' | tail -1 | sed -E 's/^ *(-> )? *//')"
psql -c "ALTER TABLE t ENABLE ROW LEVEL SECURITY"
echo "reference query plan as so_viewer, RLS on:  $(psql -U so_viewer -At -c "EXPLAIN (COSTS OFF) $ref_sql" | grep -E 'Scan' | tail -1 | sed -E 's/^ *(-> )? *//')"
echo "  EXPLAIN ANALYZE, RLS on (one probe for the middle row): $(psql -U so_viewer -At -c "EXPLAIN (ANALYZE, COSTS OFF) $ref_sql" | grep -E 'Execution Time|Rows Removed' | tr -s ' ' | tr '\n' ';')"
psql -c "ALTER TABLE t DISABLE ROW LEVEL SECURITY"

# ---- summary --------------------------------------------------------------------

reader=$(median "${reader_rates[@]}"); bare=$(median "${bare_rates[@]}"); rls=$(median "${rls_rates[@]}")
verdict() {  # value target
    awk -v r="$1" -v t="$2" 'BEGIN {printf "target >= %s: %s", t, (r >= t) ? "met" : "NOT met"}'
}
echo "== so_sign with access checks, median of $REPEATS, $ROWS rows, serial plan, count() in the server"
printf 'superuser:             %9s URLs/s   superuser/bare = %5s   (no target)\n' "$super" "$(ratio "$super" "$bare")"
printf 'so_reader (so_grant):  %9s URLs/s   so_reader/bare = %5s   %s\n' "$reader" "$(ratio "$reader" "$bare")" "$(verdict "$(ratio "$reader" "$bare")" 0.6)"
printf 'bare C++ loop:         %9s URLs/s\n' "$bare"
printf 'so_viewer (row-level): %9s rows/s   %s\n' "$viewer" "$(verdict "$viewer" 100000)"
printf 'so_viewer, RLS on:     %9s rows/s   %s   (sample of %d rows; all %d would take ~%s s)\n' "$rls" "$(verdict "$rls" 100000)" \
    "$sample_rows" "$ROWS" "$(awk -v r="$rls" -v n="$ROWS" 'BEGIN {printf "%.0f", n / r}')"
echo "runs: superuser ${super_rates[*]}; so_reader ${reader_rates[*]}; bare ${bare_rates[*]}; so_viewer ${viewer_rates[*]}; RLS ${rls_rates[*]}"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- profile ----------------------------------------------------------------------

below=$(awk -v r="$viewer" 'BEGIN {print (r < 100000) ? 1 : 0}')
if [ "$BENCH_PERF" = 1 ] || { [ "$BENCH_PERF" = auto ] && [ "$below" = 1 ]; }; then
    if ! command -v perf >/dev/null 2>&1; then
        echo "== profile skipped: perf is not installed"
    else
        echo "== profile of the backend running '$so_sql' as so_viewer 3 times (serial; perf record; self time)"
        psql -U so_viewer >/dev/null <<EOF
$serial
$so_sql WHERE id <= 1000;
SELECT pg_backend_pid() AS pid \gset
\setenv BENCH_BACKEND_PID :pid
\! perf record -q -g -F 2000 -p "\$BENCH_BACKEND_PID" -o "$work/perf.data" >/dev/null 2>&1 & echo \$! >"$work/perf.pid"; sleep 0.5
$so_sql;
$so_sql;
$so_sql;
\! kill -INT "\$(cat "$work/perf.pid")"; while kill -0 "\$(cat "$work/perf.pid")" 2>/dev/null; do sleep 0.1; done
EOF
        perf report -i "$work/perf.data" --stdio --no-children --sort dso -g none --percent-limit 1 2>/dev/null \
            | grep -vE '^#|^$' | sed -E 's/[[:space:]-]+$//' | head -10
        echo "-- by symbol (>= 1% self time)"
        perf report -i "$work/perf.data" --stdio --no-children --sort dso,symbol -g none --percent-limit 1 2>/dev/null \
            | grep -vE '^#|^$' | sed -E 's/[[:space:]-]+$//' | head -40
    fi
fi
