#!/usr/bin/env bash
# Benchmark of COMMIT latency with the object store down (not a test: it
# prints numbers and ratios, it asserts nothing about them). As root, from a
# checkout:
#   bench/commit_latency.sh [--rows N] [--old-rows N] [--old-cap SECONDS] [--repeats N] [--old-ref REF]
#
# What changed in 0.3.0: COMMIT no longer talks to the store. A managed row
# deleted in a transaction is checked (is the object still referenced?) at
# commit and its object queued in so_delete_queue, which a background worker
# carries out later. In 0.2.0 (git OLD_REF, 5430261) the DELETE statement
# did the reference check and queued the object, and the commit callback
# then sent a HEAD and a DELETE per object, with retries, inside COMMIT.
#
# Both builds run side by side in one run:
#   current  the installed extension (the server from pg_config --bindir);
#   old      OLD_REF, exported with git archive, built with PGXS against the
#            installed server's pg_config and installed (make install
#            DESTDIR=...) into a copy of the server's lib and share trees
#            (/usr/lib/postgresql/15 and /usr/share/postgresql/15 under
#            $work/old/usr/...): PostgreSQL finds its share and lib
#            directories relative to its binaries, so that copy runs 0.2.0
#            while the installed tree keeps 0.3.0. Checked in each cluster:
#            pg_extension.extversion, pg_available_extensions, the module
#            file the postmaster mapped (shared_preload_libraries).
# Each build gets a throwaway cluster (scripts/cluster.sh, which preloads
# stored_object, so 0.3.0's worker runs). One loopback S3 fixture
# (tests/s3/run-fixture.sh) serves both: each registers an S3 backend 's3'
# on it and a table docs (id, title, file stored_object) with a btree index
# on file and so_manage_column('docs', 'file'). A probe checks, with the
# fixture up, that each build deletes the object of a deleted row (0.2.0
# inside COMMIT, 0.3.0 by its worker, so_wait_for_worker). Then the fixture
# is stopped: the store is unreachable (connections to its port are
# refused: the fast way to fail; a store that drops packets costs 0.2.0 a
# connect timeout per attempt instead) and stays so for every timed run.
#
# A run: TRUNCATE docs, insert N rows (1,000 a transaction) whose values are
# built with so_from_json under fresh keys (commit-bench/<run>/<i>.bin, so
# 0.3.0 never finds them queued by an earlier run; nothing is uploaded: the
# store is down anyway), VACUUM ANALYZE, then in one session, timed by psql
# (\timing):
#     BEGIN; DELETE FROM docs; COMMIT;
# and reports the DELETE statement's time and the COMMIT's. Every repeat,
# interleaved:
#   current  ROWS rows, DELETE + COMMIT;
#   old      ROWS rows, DELETE + ROLLBACK (the DELETE statement's time at
#            full size; a rollback does no I/O in either build);
#   old      OLD_ROWS rows, DELETE + COMMIT: the COMMIT's cost per object,
#            which scales it to ROWS (0.2.0's commit handles the objects one
#            after another, each independently: linear);
#   current  OLD_ROWS rows, DELETE + COMMIT, the same-size peer.
# Then once, old, ROWS rows, COMMIT stopped by pg_cancel_backend after
# OLD_CAP seconds: "> OLD_CAP s" measured at full size. (statement_timeout
# cannot stop it: PostgreSQL disables the statement timer before it runs the
# commit; a cancel does, and 0.2.0 then abandons the remaining deletes to
# its queue.) Queued deletes of earlier runs are dropped before each run
# (those the 0.3.0 worker holds stay; their keys are not reused).
#
# Options (or the environment variables of the same name): --rows ROWS
# (10000), --old-rows OLD_ROWS (50), --old-cap OLD_CAP seconds (60; 0 skips
# the capped run), --repeats REPEATS (3), --old-ref OLD_REF (5430261).
# A run that fails (for instance a lock table too small for the run's
# transaction) is reported as FAILED with the error, not timed.
# Environment: BENCH_OLD_PREFIX (where the old build's server copy goes;
# default $work/old, removed at the end; a directory given here is kept and
# reused when it holds a build of the same commit), BENCH_TMPDIR,
# BENCH_SKIP_BUILD=1 to use the installed extension as it is.
set -euo pipefail

ROWS=${ROWS:-10000}
OLD_ROWS=${OLD_ROWS:-50}
OLD_CAP=${OLD_CAP:-60}
REPEATS=${REPEATS:-3}
OLD_REF=${OLD_REF:-5430261}
CHUNK=1000
BUCKET=test-bucket
PYTHON=/usr/bin/python3
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS=$2; shift 2 ;;
        --old-rows) OLD_ROWS=$2; shift 2 ;;
        --old-cap) OLD_CAP=$2; shift 2 ;;
        --repeats) REPEATS=$2; shift 2 ;;
        --old-ref) OLD_REF=$2; shift 2 ;;
        *) echo "usage: $0 [--rows N] [--old-rows N] [--old-cap SECONDS] [--repeats N] [--old-ref REF]" >&2; exit 2 ;;
    esac
done
for v in ROWS OLD_ROWS OLD_CAP REPEATS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a whole number, not '${!v}'" >&2; exit 2; }
done
if [ "$ROWS" -lt 1 ] || [ "$OLD_ROWS" -lt 1 ] || [ "$REPEATS" -lt 1 ]; then
    echo "need ROWS >= 1, OLD_ROWS >= 1, REPEATS >= 1" >&2
    exit 2
fi

. "$(dirname "$0")/common.sh"
bench_workdir so_bench_commit

old_prefix=${BENCH_OLD_PREFIX:-$work/old}
commit_cleanup() {
    # The old cluster may sit in a COMMIT that ignores a fast shutdown.
    if [ -f "$work/cluster-old/data/postmaster.pid" ]; then
        (cd / && runuser -u postgres -- "$old_prefix$PG_BIN/pg_ctl" -D "$work/cluster-old/data" -m immediate -w stop) \
            >/dev/null 2>&1 || true
    fi
    PG_BIN="$old_prefix$PG_BIN" "$repo/scripts/cluster.sh" stop "$work/cluster-old" >/dev/null 2>&1 || true
    bench_cleanup
}
trap commit_cleanup EXIT

# ---- machine facts ----------------------------------------------------------

bench_machine_facts
echo "psql:        $("$PG_BIN/psql" --version)"
bench_git_line

# ---- the old build --------------------------------------------------------------

old_commit=$(git -C "$repo" rev-parse --verify "$OLD_REF^{commit}")
old_version=$(git -C "$repo" show "$old_commit:stored_object.control" | sed -nE "s/^default_version = '([^']+)'.*/\1/p")
new_version=$(sed -nE "s/^default_version = '([^']+)'.*/\1/p" "$(pg_config --sharedir)/extension/stored_object.control")
pg_lib_tree=$(dirname "$PG_BIN")        # /usr/lib/postgresql/15
pg_share_tree=$(pg_config --sharedir)   # /usr/share/postgresql/15
old_bin=$old_prefix$PG_BIN
if [ "$(cat "$old_prefix/built-from" 2>/dev/null)" = "$old_commit" ] && [ -x "$old_bin/postgres" ]; then
    echo "old build:   $OLD_REF ($old_version), reused from $old_prefix"
else
    t0=$(date +%s)
    if [ -d "$old_prefix" ] && [ ! -f "$old_prefix/built-from" ] && [ -n "$(ls -A "$old_prefix")" ]; then
        echo "BENCH_OLD_PREFIX=$old_prefix is not empty and holds no build of ours: not touching it" >&2
        exit 2
    fi
    rm -rf "$old_prefix"
    mkdir -p "$old_prefix/src" "$old_prefix$(dirname "$pg_lib_tree")" "$old_prefix$(dirname "$pg_share_tree")"
    cp -a "$pg_lib_tree" "$old_prefix$(dirname "$pg_lib_tree")/"
    cp -a "$pg_share_tree" "$old_prefix$(dirname "$pg_share_tree")/"
    # The copy must hold nothing of the current build.
    rm -rf "$old_prefix$pg_lib_tree/lib/stored_object.so" "$old_prefix$pg_lib_tree/lib/bitcode/stored_object" \
        "$old_prefix$pg_lib_tree/lib/bitcode/stored_object.index.bc" "$old_prefix$pg_share_tree"/extension/stored_object[.-]*
    git -C "$repo" archive "$old_commit" | tar -x -C "$old_prefix/src"
    { make -C "$old_prefix/src" -j"$(nproc)" PG_CONFIG="$PG_BIN/pg_config" \
        && make -C "$old_prefix/src" install PG_CONFIG="$PG_BIN/pg_config" DESTDIR="$old_prefix/stage"; } \
        >"$work/old-build.log" 2>&1 || { tail -30 "$work/old-build.log"; echo "building $OLD_REF failed" >&2; exit 1; }
    cp -a "$old_prefix/stage/." "$old_prefix/"
    rm -rf "$old_prefix/stage"
    echo "$old_commit" >"$old_prefix/built-from"
    echo "old build:   $OLD_REF ($old_version) built in $(($(date +%s) - t0)) s into a copy of $pg_lib_tree and $pg_share_tree under $old_prefix"
fi
chmod 755 "$old_prefix"

# ---- clusters and the fixture ---------------------------------------------------

s3_port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
S3_FIXTURE_BUCKETS=$BUCKET "$repo/tests/s3/run-fixture.sh" start "$work/s3" "$s3_port" >"$work/s3-start.log" 2>&1 \
    || { cat "$work/s3-start.log"; echo "the S3 fixture did not start" >&2; exit 1; }
# shellcheck disable=SC1091
. "$work/s3/fixture.env"

new_port=$("$repo/scripts/cluster.sh" start "$work/cluster")
old_port=$(PG_BIN=$old_bin "$repo/scripts/cluster.sh" start "$work/cluster-old")
export PGUSER=postgres PGDATABASE=postgres
# sql current|old [psql arguments]
sql() {
    local which=$1; shift
    if [ "$which" = old ]; then
        "$PG_BIN/psql" -X -q -h "$work/cluster-old/sock" -p "$old_port" "$@"
    else
        "$PG_BIN/psql" -X -q -h "$work/cluster/sock" -p "$new_port" "$@"
    fi
}
for b in current old; do
    sql "$b" -v ON_ERROR_STOP=1 -v endpoint="$S3_ENDPOINT" -v region="$S3_REGION" \
        -v ak="$S3_ACCESS_KEY_ID" -v sk="$S3_SECRET_ACCESS_KEY" >/dev/null <<'EOF'
CREATE EXTENSION stored_object;
SELECT so_register_backend('s3', 's3://test-bucket/commit-bench',
    jsonb_build_object('endpoint', :'endpoint', 'region', :'region', 'allow_http', true,
                       'access_key_id', :'ak', 'secret_access_key', :'sk'));
CREATE TABLE docs (id int PRIMARY KEY, title text, file stored_object);
CREATE INDEX docs_file ON docs (file);
SELECT so_manage_column('docs', 'file');
EOF
done

# Which build each cluster runs.
for b in current old; do
    dir=$work/cluster; [ "$b" = old ] && dir=$work/cluster-old
    ext=$(sql "$b" -At -c "SELECT extversion FROM pg_extension WHERE extname = 'stored_object'")
    avail=$(sql "$b" -At -F ' ' -c "SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'stored_object'")
    module=$(grep -o '/[^ ]*stored_object\.so' "/proc/$(head -1 "$dir/data/postmaster.pid")/maps" | sort -u | tr '\n' ' ')
    printf '%-8s     server %s, stored_object %s (available: default %s, installed %s), module %s\n' "$b:" \
        "$(sql "$b" -At -c 'SHOW server_version')" "$ext" "${avail% *}" "${avail#* }" "$module"
    want=$new_version; [ "$b" = old ] && want=$old_version
    [ "$ext" = "$want" ] || { echo "the $b cluster runs stored_object $ext, not $want" >&2; exit 1; }
done
echo "workers:     current: $(sql current -At -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'stored_object%'") stored_object background processes; old: none (0.2.0 has no worker)"
echo "settings:    ROWS=$ROWS OLD_ROWS=$OLD_ROWS OLD_CAP=${OLD_CAP}s REPEATS=$REPEATS, max_locks_per_transaction=$(sql current -At -c 'SHOW max_locks_per_transaction')," \
    "backend options: $(sql current -At -c "SELECT options::text FROM so_backend_info WHERE key = 's3'")"

# ---- probe with the store up ------------------------------------------------------

echo "== probe, store up: a managed row deleted, its object removed"
for b in current old; do
    sql "$b" -v ON_ERROR_STOP=1 >/dev/null <<'EOF'
INSERT INTO docs VALUES (0, 'probe', so_put('s3', 'probe.txt', convert_to('probe', 'UTF8')));
DELETE FROM docs WHERE id = 0;
EOF
    [ "$b" = current ] && sql current -At -c "SELECT so_wait_for_worker('30 seconds')" >/dev/null
    left=$(sql "$b" -At -c "SELECT so_exists(so_from_json('{\"filename\": \"probe.txt\"}', 's3'))")
    printf '%-8s     so_put, DELETE of its row, COMMIT%s: object exists afterwards: %s\n' "$b:" \
        "$([ "$b" = current ] && echo ', so_wait_for_worker')" "$left"
done

# ---- the store goes down ------------------------------------------------------------

"$repo/tests/s3/run-fixture.sh" stop "$work/s3" >/dev/null
echo "== store down: fixture stopped; so_exists now says:"
for b in current old; do
    printf '%-8s     %s\n' "$b:" "$(sql "$b" -At -c "SELECT so_exists(so_from_json('{\"filename\": \"probe.txt\"}', 's3'))" 2>&1 | head -1)"
done

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", a / b}'; }
secs() { awk -v ms="$1" 'BEGIN {printf "%.1f", ms / 1000}'; }

# populate BUILD N TAG: docs holds N fresh rows, the old queue rows are gone.
populate() {
    local b=$1 n=$2 tag=$3 lo
    {
        echo "TRUNCATE docs;"
        if [ "$b" = current ]; then
            echo "DELETE FROM so_delete_queue WHERE id IN (SELECT id FROM so_delete_queue FOR UPDATE SKIP LOCKED);"
        else
            echo "DELETE FROM so_pending_deletes;"
        fi
        for ((lo = 1; lo <= n; lo += CHUNK)); do
            echo "INSERT INTO docs SELECT i, 'doc ' || i,
                      so_from_json(jsonb_build_object('filename', 'commit-bench/$tag/' || i || '.bin', 'size', 4096,
                                                      'etag', md5(i::text), 'content_type', 'application/octet-stream'), 's3')
                    FROM generate_series($lo, $((lo + CHUNK - 1 < n ? lo + CHUNK - 1 : n))) AS i;"
        done
        echo "VACUUM ANALYZE docs;"
        [ "$b" = current ] && echo "VACUUM ANALYZE so_delete_queue;" || echo "VACUUM ANALYZE so_pending_deletes;"
    } | sql "$b" -v ON_ERROR_STOP=1 >/dev/null
}

# measure BUILD N TAG END [CAP]: populate, then BEGIN; DELETE; END (COMMIT
# or ROLLBACK); sets del_ms and end_ms (end_ms empty if END failed: the
# message is in end_error). CAP > 0: pg_cancel_backend the session's
# COMMIT after CAP seconds.
measure() {
    local b=$1 n=$2 tag=$3 end=$4 cap=${5:-0} out canceller=
    populate "$b" "$n" "$tag"
    if [ "$cap" -gt 0 ]; then
        (sleep "$cap"
         sql "$b" -At -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
                           WHERE application_name = 'commit-bench-capped' AND state = 'active' AND query = 'COMMIT;'" \
             >"$work/cancelled" 2>&1) &
        canceller=$!
    fi
    out=$(PGAPPNAME=commit-bench-capped sql "$b" -v ON_ERROR_STOP=0 2>"$work/end.err" <<EOF
\timing on
BEGIN;
DELETE FROM docs;
$end;
EOF
)
    [ -n "$canceller" ] && { kill "$canceller" 2>/dev/null || true; wait "$canceller" 2>/dev/null || true; }
    del_ms=$(sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' <<<"$out" | sed -n 2p)
    end_ms=$(sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' <<<"$out" | sed -n 3p)
    warnings=$(grep -c '^WARNING:' "$work/end.err" || true)
    end_error=$(grep -m1 '^ERROR:' "$work/end.err" || true)
    local left
    left=$(sql "$b" -At -c "SELECT count(*) FROM docs")
    if [ -n "$end_error" ] || { [ "$end" = COMMIT ] && [ "$left" != 0 ]; }; then
        end_ms=""
        [ -n "$end_error" ] || end_error="$left rows left after COMMIT"
    fi
}

report_run() {  # label
    if [ -n "$end_ms" ]; then
        printf '%-34s DELETE %9.1f ms   %-8s %11.1f ms%s\n' "$1" "$del_ms" "$2" "$end_ms" \
            "$([ "$warnings" -gt 0 ] && echo "   ($warnings WARNINGs)")"
    else
        printf '%-34s DELETE %9.1f ms   %-8s FAILED: %s\n' "$1" "$del_ms" "$2" "$end_error"
    fi
}

# ---- runs ---------------------------------------------------------------------------

new_del=(); new_commit=(); old_del=(); old_small_del=(); old_small_commit=(); new_small_commit=(); new_small_del=()
failed=0
for ((r = 1; r <= REPEATS; r++)); do
    echo "== run $r/$REPEATS (store down)"
    measure current "$ROWS" "new-$r" COMMIT
    report_run "current, $ROWS rows:" COMMIT
    if [ -n "$end_ms" ]; then new_del+=("$del_ms"); new_commit+=("$end_ms"); else failed=1; fi

    measure old "$ROWS" "old-$r" ROLLBACK
    report_run "old, $ROWS rows (rolled back):" ROLLBACK
    old_del+=("$del_ms")

    measure old "$OLD_ROWS" "old-small-$r" COMMIT
    report_run "old, $OLD_ROWS rows:" COMMIT
    old_small_del+=("$del_ms"); old_small_commit+=("$end_ms")

    measure current "$OLD_ROWS" "new-small-$r" COMMIT
    report_run "current, $OLD_ROWS rows:" COMMIT
    new_small_del+=("$del_ms"); new_small_commit+=("$end_ms")
done

capped_ms=""
if [ "$OLD_CAP" -gt 0 ]; then
    echo "== old, $ROWS rows, COMMIT cancelled (pg_cancel_backend) after ${OLD_CAP} s"
    measure old "$ROWS" "old-capped" COMMIT "$OLD_CAP"
    capped_ms=$end_ms
    report_run "old, $ROWS rows, capped:" COMMIT
    echo "cancel sent: $(tr -d '\n' <"$work/cancelled"); queued for so_process_pending afterwards: $(sql old -At -c 'SELECT count(*) FROM so_pending_deletes')"
fi

# ---- summary --------------------------------------------------------------------------

echo "== summary: store unreachable, BEGIN; DELETE FROM docs; COMMIT; median of $REPEATS"
printf '%-10s %8s %14s %16s\n' build rows "DELETE stmt" COMMIT
if [ "$failed" = 0 ]; then
    nd=$(median "${new_del[@]}"); nc=$(median "${new_commit[@]}")
    printf '%-10s %8d %11.1f ms %13.1f ms\n' "current" "$ROWS" "$nd" "$nc"
else
    nd=""; nc=""
    printf '%-10s %8d %14s %16s\n' "current" "$ROWS" "-" "FAILED (see above)"
fi
od=$(median "${old_del[@]}")
osc=$(median "${old_small_commit[@]}")
per_object=$(awk -v ms="$osc" -v n="$OLD_ROWS" 'BEGIN {printf "%.1f", ms / n}')
extrapolated=$(awk -v p="$per_object" -v n="$ROWS" 'BEGIN {printf "%.0f", p * n}')
printf '%-10s %8d %11.1f ms %13s s   (extrapolated: %s ms per object measured at %d rows x %d rows)\n' \
    "old" "$ROWS" "$od" "~$(secs "$extrapolated")" "$per_object" "$OLD_ROWS" "$ROWS"
[ -n "$capped_ms" ] && printf '%-10s %8d %14s %13s s   (measured: cancelled after %d s, still committing)\n' \
    "old" "$ROWS" "" "> $(secs "$capped_ms")" "$OLD_CAP"
nsd=$(median "${new_small_del[@]}"); nsc=$(median "${new_small_commit[@]}"); osd=$(median "${old_small_del[@]}")
printf '%-10s %8d %11.1f ms %13.1f ms\n' "current" "$OLD_ROWS" "$nsd" "$nsc"
printf '%-10s %8d %11.1f ms %13.1f ms\n' "old" "$OLD_ROWS" "$osd" "$osc"
echo "ratios old/current (how many times longer 0.2.0 takes):"
printf '  %-44s %sx\n' "COMMIT, $OLD_ROWS rows (both measured):" "$(ratio "$osc" "$nsc")"
if [ -n "$nc" ]; then
    printf '  %-44s ~%sx' "COMMIT, $ROWS rows (old extrapolated):" "$(ratio "$extrapolated" "$nc")"
    [ -n "$capped_ms" ] && printf '   (old measured: > %sx)' "$(ratio "$capped_ms" "$nc")"
    echo
    printf '  %-44s %sx\n' "DELETE statement, $ROWS rows:" "$(awk -v a="$od" -v b="$nd" 'BEGIN {printf "%.2f", a / b}')"
    printf '  %-44s ~%sx\n' "DELETE + COMMIT, $ROWS rows:" \
        "$(ratio "$(awk -v a="$od" -v b="$extrapolated" 'BEGIN {print a + b}')" "$(awk -v a="$nd" -v b="$nc" 'BEGIN {print a + b}')")"
fi
echo "runs (ms): current $ROWS: DELETE ${new_del[*]:--} COMMIT ${new_commit[*]:--}; old $ROWS: DELETE ${old_del[*]};" \
    "old $OLD_ROWS: DELETE ${old_small_del[*]} COMMIT ${old_small_commit[*]}; current $OLD_ROWS: DELETE ${new_small_del[*]} COMMIT ${new_small_commit[*]}"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
