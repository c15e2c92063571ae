#!/usr/bin/env bash
# Benchmark of the local backend (not a test: it prints numbers and ratios,
# it asserts nothing about them). As root, from a checkout:
#   bench/local_put.sh
# Builds and installs the extension (scripts/install-deps.sh, make install),
# starts a throwaway cluster (scripts/cluster.sh), and in one run measures
#   (a) COUNT so_put of SIZE bytes in ONE transaction,
#   (b) COUNT so_put of SIZE bytes in autocommit, one statement each (psql),
#   (c) bench/plain_put.c writing COUNT files of SIZE bytes with the same
#       durability and hashing as so_put (temp file, fsync, renameat2
#       RENAME_NOREPLACE, fsync of the directory, MD5 + SHA-256),
# REPEATS times each, interleaved, and prints files/s, the medians and the
# ratios (a)/(c) and (b)/(c) (the target is >= 0.7). Then
#   (d) so_sign over SIGN_ROWS stored_object values (built from JSON, no
#       files), against count(so_filename(...)) over the same rows as a peer.
# The backend's directory and the plain program's directory are in the same
# temporary directory, so on the same file system.
#
# Environment: COUNT (10000), SIZE (4096), REPEATS (3), SIGN_ROWS (100000),
# BENCH_TMPDIR (where the temporary directory goes; $TMPDIR or /tmp),
# BENCH_PG_FSYNC (on: the server's own fsync setting; scripts/cluster.sh
# turns it off for tests, but then a commit is not durable, which would
# favour (b) over the plain program; "off" keeps cluster.sh's server as it
# is), BENCH_SKIP_BUILD=1 to use the installed extension as it is.
set -euo pipefail

COUNT=${COUNT:-10000}
SIZE=${SIZE:-4096}
REPEATS=${REPEATS:-3}
SIGN_ROWS=${SIGN_ROWS:-100000}
BENCH_PG_FSYNC=${BENCH_PG_FSYNC:-on}

. "$(dirname "$0")/common.sh"
bench_workdir so_bench

# ---- machine facts ----------------------------------------------------------

bench_machine_facts
echo "temp dir:    $work"
echo "file system: $(stat -f -c %T "$work") ($(df -P "$work" | awk 'NR==2 {print $1}'))"
echo "compiler:    $(cc --version | head -1)"
echo "openssl:     $(openssl version 2>/dev/null || echo unknown)"
echo "psql:        $("$PG_BIN/psql" --version)"

# ---- setup ------------------------------------------------------------------

cc -O2 -Wall -o "$work/plain_put" "$repo/bench/plain_put.c" -lcrypto

port=$("$repo/scripts/cluster.sh" start "$work/cluster")
export PGHOST="$work/cluster/sock" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
if [ "$BENCH_PG_FSYNC" != off ]; then
    # cluster.sh starts the server with -c fsync=off on its command line,
    # which no configuration file overrides: restart it without that.
    (cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work/cluster/data" -m fast -w stop >/dev/null)
    (cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work/cluster/data" -l "$work/cluster/server.log" -w \
        -o "-p $port -k $work/cluster/sock -c listen_addresses='' -c fsync=$BENCH_PG_FSYNC" start >/dev/null)
fi
psql -c "CREATE EXTENSION stored_object"
install -d -o postgres -g postgres "$work/backend" "$work/plain"
psql -c "SELECT so_register_backend('bench', 'file://$work/backend')" >/dev/null
psql -c "SELECT so_register_backend('bench_sign', 'file://$work/sign', '{\"base_url\": \"https://files.example.com/media\"}')" >/dev/null

echo "server:      $(psql -At -c 'SHOW server_version')," \
    "fsync=$(psql -At -c 'SHOW fsync')," \
    "synchronous_commit=$(psql -At -c 'SHOW synchronous_commit')," \
    "wal_sync_method=$(psql -At -c 'SHOW wal_sync_method')"
echo "settings:    COUNT=$COUNT SIZE=$SIZE REPEATS=$REPEATS SIGN_ROWS=$SIGN_ROWS"

# The content of file i: SIZE fixed bytes with i (4 bytes) overlaid at the start.
base_sql="decode(repeat(md5('stored_object'), $SIZE / 16 + 1), 'hex')"
content_sql() { echo "overlay(substr($base_sql, 1, $SIZE) placing int4send($1) from 1)"; }

# Autocommit script: one statement (one transaction) per put.
{
    echo "PREPARE put(text, int) AS SELECT so_put('bench', \$1 || \$2 || '.bin', $(content_sql '$2')) IS NOT NULL;"
    echo '\o /dev/null'
    for ((i = 1; i <= COUNT; i++)); do echo "EXECUTE put(:'dir', $i);"; done
} >"$work/autocommit.sql"

now_ns() { date +%s%N; }
rate() { awk -v n="$1" -v ns="$2" 'BEGIN {printf "%.1f", n / (ns / 1e9)}'; }
secs() { awk -v ns="$1" 'BEGIN {printf "%.3f", ns / 1e9}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
check_files() {  # dir: every file there, none left over
    local n
    n=$(find "$1" -type f -name '*.bin' | wc -l)
    [ "$n" -eq "$COUNT" ] || { echo "expected $COUNT files in $1, found $n" >&2; exit 1; }
    if find "$1" -name '.*' -type f | grep -q .; then echo "temporary files left in $1" >&2; exit 1; fi
}

a_rates=(); b_rates=(); s_rates=(); c_rates=()

for ((r = 1; r <= REPEATS; r++)); do
    echo "== run $r/$REPEATS"
    sync

    # (a) one transaction
    t0=$(now_ns)
    psql -At -c "SELECT count(so_put('bench', 'a$r/' || i || '.bin', $(content_sql i)))
                   FROM generate_series(1, $COUNT) AS i" >/dev/null
    dt=$(($(now_ns) - t0))
    check_files "$work/backend/a$r"
    a_rates+=("$(rate "$COUNT" "$dt")")
    printf '(a)  so_put, one transaction:           %6d files in %7s s = %8s files/s\n' "$COUNT" "$(secs "$dt")" "${a_rates[-1]}"
    rm -rf "$work/backend/a$r"
    sync

    # (b) autocommit
    t0=$(now_ns)
    psql -v dir="b$r/" -f "$work/autocommit.sql"
    dt=$(($(now_ns) - t0))
    check_files "$work/backend/b$r"
    b_rates+=("$(rate "$COUNT" "$dt")")
    printf '(b)  so_put, autocommit:                %6d files in %7s s = %8s files/s\n' "$COUNT" "$(secs "$dt")" "${b_rates[-1]}"
    rm -rf "$work/backend/b$r"
    sync

    # (b') the same without waiting for the commit's WAL flush: so_put takes
    # a transaction id, so each autocommit put also commits (and flushes)
    # a WAL record; this shows what that costs. Not part of the target.
    t0=$(now_ns)
    PGOPTIONS="-c synchronous_commit=off" psql -v dir="s$r/" -f "$work/autocommit.sql"
    dt=$(($(now_ns) - t0))
    check_files "$work/backend/s$r"
    s_rates+=("$(rate "$COUNT" "$dt")")
    printf "(b') so_put, autocommit, async commit:  %6d files in %7s s = %8s files/s\n" "$COUNT" "$(secs "$dt")" "${s_rates[-1]}"
    rm -rf "$work/backend/s$r"
    sync

    # (c) the plain program, same file system
    t0=$(now_ns)
    "$work/plain_put" "$work/plain/c$r" "$COUNT" "$SIZE" >/dev/null
    dt=$(($(now_ns) - t0))
    check_files "$work/plain/c$r"
    c_rates+=("$(rate "$COUNT" "$dt")")
    printf '(c)  plain_put (C, same file system):   %6d files in %7s s = %8s files/s\n' "$COUNT" "$(secs "$dt")" "${c_rates[-1]}"
    rm -rf "$work/plain/c$r"
done

a=$(median "${a_rates[@]}"); b=$(median "${b_rates[@]}"); b2=$(median "${s_rates[@]}"); c=$(median "${c_rates[@]}")
verdict() { awk -v r="$1" 'BEGIN {print (r >= 0.7) ? "meets the 0.7 target" : "below the 0.7 target"}'; }
echo "== so_put vs plain_put: median of $REPEATS, $COUNT files of $SIZE bytes"
printf '(a)  one transaction:  %8s files/s   (a)/(c)  = %s  %s\n' "$a" "$(ratio "$a" "$c")" "$(verdict "$(ratio "$a" "$c")")"
printf '(b)  autocommit:       %8s files/s   (b)/(c)  = %s  %s\n' "$b" "$(ratio "$b" "$c")" "$(verdict "$(ratio "$b" "$c")")"
printf "(b') async commit:     %8s files/s   (b')/(c) = %s  (diagnostic)\n" "$b2" "$(ratio "$b2" "$c")"
printf '(c)  plain_put:        %8s files/s\n' "$c"

# ---- (d) so_sign --------------------------------------------------------------

echo "== (d) so_sign over $SIGN_ROWS rows (hmac scheme, serial plan), median of $REPEATS"
psql -c "CREATE TABLE t (id int PRIMARY KEY, file stored_object)" \
     -c "INSERT INTO t SELECT i, so_from_json(jsonb_build_object('filename', 'd/' || i || '/photo ' || i || '.jpg',
                                   'size', 4096, 'content_type', 'image/jpeg'), 'bench_sign')
           FROM generate_series(1, $SIGN_ROWS) AS i" \
     -c "VACUUM ANALYZE t"
# Times from psql's \timing, in one session (no connection cost); a warm-up
# first. Serial plans: the per-row cost, comparable between runs (and so_sign
# in a parallel worker fails today: "cannot update SecondarySnapshot during a
# parallel operation" from the registry's first read in the worker).
timings=$(psql -At <<EOF
SET max_parallel_workers_per_gather = 0;
SELECT count(so_sign(file)) FROM t;
\timing on
$(for ((r = 1; r <= REPEATS; r++)); do
    echo "SELECT count(so_filename(file)) FROM t;"
    echo "SELECT count(so_sign(file)) FROM t;"
done)
EOF
)
peer_ms=(); sign_ms=()
while read -r ms; do
    if [ $(( (${#peer_ms[@]} + ${#sign_ms[@]}) % 2 )) -eq 0 ]; then peer_ms+=("$ms"); else sign_ms+=("$ms"); fi
done < <(sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' <<<"$timings")
[ "${#sign_ms[@]}" -eq "$REPEATS" ] || { echo "could not read the timings:"; echo "$timings"; exit 1; }
sample=$(psql -At -c "SELECT so_sign(file) FROM t WHERE id = 1")
sign_rate=$(awk -v n="$SIGN_ROWS" -v ms="$(median "${sign_ms[@]}")" 'BEGIN {printf "%.0f", n / (ms / 1000)}')
peer_rate=$(awk -v n="$SIGN_ROWS" -v ms="$(median "${peer_ms[@]}")" 'BEGIN {printf "%.0f", n / (ms / 1000)}')
echo "runs (ms):   so_sign ${sign_ms[*]}; so_filename ${peer_ms[*]}"
printf 'so_sign:               %10s rows/s\n' "$sign_rate"
printf 'so_filename (peer):    %10s rows/s   so_sign/so_filename = %s\n' "$peer_rate" "$(ratio "$sign_rate" "$peer_rate")"
echo "sample URL:  $sample"
