#!/usr/bin/env bash
# Benchmark of so_sign on a Google Cloud Storage backend (not a test: it
# prints numbers and ratios, it asserts nothing about them). As root, from a
# checkout:
#   bench/gcs_sign.sh
# Builds and installs the extension (scripts/install-deps.sh, make install),
# builds the bare loop (bench/gcs_sign_loop.cpp, -O2, with OpenSSL and the
# extension's src/core/gcs_signer.cpp and what it needs compiled in), starts
# the loopback S3 fixture in its GCS mode (tests/s3/run-fixture.sh ... --gcs,
# when the fixture has that mode) and a throwaway cluster
# (scripts/cluster.sh), and in one run measures V4 signed URLs (GET, one
# object each, path style, valid for 3600 s) for distinct objects
# ("media/photos/<i>/photo <i>.jpg", i = 1..N, of a gs://test-bucket/media
# backend) of two kinds:
#   HMAC      GOOG4-HMAC-SHA256 with an HMAC key (options access_key_id and
#             secret_access_key), N = ROWS;
#   RSA       GOOG4-RSA-SHA256 with a service account key (option
#             service_account_file: tests/unit/data/gcs_test_service_account.json,
#             Google's public dummy key, RSA 2048, copied to a file of the
#             server's user, mode 0600), N = RSA_ROWS (an RSA signature
#             costs about a thousand times an HMAC);
# by, for each kind,
#   so_sign   so_sign(file) over a table of N stored_object values of the
#             backend (endpoint http://127.0.0.1:PORT, allow_http,
#             path_style; values built from JSON, nothing uploaded),
#             count(...) in one statement, serial plan
#             (max_parallel_workers_per_gather = 0), in a session that has
#             signed 1,000 rows (RSA: 100) first; the table is vacuumed,
#             analyzed and read once before any run;
#   bare      a C++ loop that builds the same URLs itself from Google's
#             documentation of V4 signing: canonical request, string to
#             sign, the signing key's HMAC chain ("GOOG4" + secret, date,
#             "auto", "storage", "goog4_request"), OpenSSL's EVP_Digest and
#             one-shot HMAC(), hex; RSA: EVP_DigestSign with the key loaded
#             once; what a careful loop keeps across URLs made once (the
#             day's signing key, the canonical query, the head of the
#             string to sign), buffers reused (bench/gcs_sign_loop.cpp
#             hmac-bare, rsa-bare; the limit);
# REPEATS times each, interleaved, and prints URLs/s, the medians and the
# ratios so_sign/bare. Also timed, as diagnostics:
#   bare-pads (HMAC) the bare loop with HMAC-SHA256 resumed from saved
#             SHA-256 states (the signing key's padded blocks and the head
#             of the string to sign), as the extension's S3 signer does;
#   core      the extension's own signer (so::gcs::HmacSigner::sign_url,
#             so::gcs::RsaSigner::sign_url) in the same loop, its request
#             made per URL as S3Store::sign_gcs makes it, without the
#             database.
# Before timing it checks that so_sign's URLs for 1,000 objects (RSA: at
# most RSA_ROWS), signed in one statement, are byte for byte those of the
# bare and core loops at the same signing time (so_sign's X-Goog-Date), and
# prints a line saying so; after, that so_sign's URL of each kind verifies
# from the URL alone (canonical request rebuilt from it in Python; HMAC by
# hmac, RSA by openssl dgst -verify with the service account's public key),
# and, when the fixture runs, that every HMAC peer's URL for object 1
# fetches the object from it (its GCS mode verifies GOOG4-HMAC-SHA256; it
# does not verify RSA: the RSA URL's answer is printed as it comes). Also
# printed, not part of any target: so_sign with the URLs sent to the client
# (COPY ... TO STDOUT), and the scan alone (count(so_filename(file))).
#
# The issue states no targets of its own for GCS: the target printed is
# S3's (bench/s3_sign.sh: so_sign >= 0.25 of the bare loop), against the
# bare loop that keeps the day's signing key, as the extension's HmacSigner
# does.
#
# Environment: ROWS (100000), RSA_ROWS (2000), REPEATS (3), BENCH_PERF (auto:
# profile the backend signing HMAC URLs with perf when so_sign/bare is below
# the target; 1: always; 0: never), BENCH_TMPDIR (where the temporary
# directory goes; $TMPDIR or /tmp), BENCH_SKIP_BUILD=1 to use the installed
# extension as it is.
set -euo pipefail

ROWS=${ROWS:-100000}
RSA_ROWS=${RSA_ROWS:-2000}
REPEATS=${REPEATS:-3}
BENCH_PERF=${BENCH_PERF:-auto}
EXPIRES=3600
BUCKET=test-bucket
PREFIX=media
CHECK_ROWS=1000
# A made-up HMAC key shaped like GCS's (61-character access id, 40-character secret).
ACCESS_ID=GOOG1EBENCHMARKACCESSID00000000000000000000000000000000000000
SECRET=bEnChMaRk/HmAc+SeCrEt/0123456789abcdefGH
PYTHON=/usr/bin/python3

. "$(dirname "$0")/common.sh"
bench_workdir so_bench_gcs_sign

# ---- machine facts ----------------------------------------------------------

bench_machine_facts
echo "compiler:    $(c++ --version | head -1)"
echo "openssl:     $(openssl version 2>/dev/null || echo unknown)"
echo "psql:        $("$PG_BIN/psql" --version)"
bench_git_line

# ---- setup ------------------------------------------------------------------

# The bare loop, with the extension's signer compiled in for the core modes.
core_sources=(gcs_signer crypto json uri error)
core_files=()
for f in "${core_sources[@]}"; do core_files+=("$repo/src/core/$f.cpp"); done
c++ -std=c++17 -O2 -Wall -I"$repo/src" -o "$work/gcs_sign_loop" "$repo/bench/gcs_sign_loop.cpp" \
    "${core_files[@]}" -lcrypto 2>"$work/loop-build.log" \
    || { cat "$work/loop-build.log"; echo "building bench/gcs_sign_loop.cpp failed" >&2; exit 1; }
echo "bare loop:   bench/gcs_sign_loop.cpp, -O2, OpenSSL; core modes with src/core/{$(IFS=,; echo "${core_sources[*]}")}.cpp"

# The service account key, a file of the server's user only (the extension
# refuses one that others may read).
SA_FILE=$work/gcs_service_account.json
cp "$repo/tests/unit/data/gcs_test_service_account.json" "$SA_FILE"
chown postgres:postgres "$SA_FILE"
chmod 600 "$SA_FILE"

# The fixture in GCS mode, when it has one: signing needs no server, the
# fetch checks do.
port_of_nothing() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fixture=0
fixture_note=
if BOTO_DISABLE_CRT=true "$PYTHON" "$repo/tests/s3/s3proxy.py" --help 2>/dev/null | grep -q -- '--gcs\b'; then
    s3_port=$(port_of_nothing)
    if S3_FIXTURE_BUCKETS=$BUCKET S3_FIXTURE_CREDENTIALS="$ACCESS_ID:$SECRET" \
        "$repo/tests/s3/run-fixture.sh" start "$work/s3" "$s3_port" --gcs >"$work/s3-start.log" 2>&1; then
        # shellcheck disable=SC1091
        . "$work/s3/fixture.env"
        ENDPOINT=$S3_ENDPOINT
        fixture=1
    else
        fixture_note="the fixture's GCS mode did not start ($(tail -1 "$work/s3-start.log"))"
    fi
else
    fixture_note="tests/s3/s3proxy.py has no --gcs mode"
fi
if [ "$fixture" = 0 ]; then
    ENDPOINT=http://127.0.0.1:$(port_of_nothing)  # nothing listens: signing needs no server
fi

port=$("$repo/scripts/cluster.sh" start "$work/cluster")
export PGHOST="$work/cluster/sock" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -c "CREATE EXTENSION stored_object"
psql -v endpoint="$ENDPOINT" -v id="$ACCESS_ID" -v secret="$SECRET" -v sa="$SA_FILE" \
    -v url="gs://$BUCKET/$PREFIX" >/dev/null <<'EOF'
SELECT so_register_backend('gcs_hmac', :'url',
    jsonb_build_object('endpoint', :'endpoint', 'allow_http', true, 'path_style', true,
                       'access_key_id', :'id', 'secret_access_key', :'secret'));
SELECT so_register_backend('gcs_rsa', :'url',
    jsonb_build_object('endpoint', :'endpoint', 'allow_http', true, 'path_style', true,
                       'service_account_file', :'sa'));
EOF
echo "server:      $(psql -At -c 'SHOW server_version'), shared_buffers=$(psql -At -c 'SHOW shared_buffers')," \
    "jit=$(psql -At -c 'SHOW jit')"
if [ "$fixture" = 1 ]; then
    echo "fixture:     $ENDPOINT (tests/s3/s3proxy.py --gcs in front of s3rver), bucket $BUCKET, HMAC key $ACCESS_ID"
else
    echo "fixture:     none ($fixture_note); endpoint $ENDPOINT, where nothing listens"
fi
echo "backends:    $(psql -At -c "SELECT string_agg(key || ' ' || url || ' ' || options::text, '; ' ORDER BY key) FROM so_backend_info WHERE key LIKE 'gcs%'")"
echo "settings:    ROWS=$ROWS RSA_ROWS=$RSA_ROWS REPEATS=$REPEATS expiry=${EXPIRES}s"

psql <<EOF
CREATE TABLE t_hmac (id int PRIMARY KEY, key text NOT NULL, file stored_object NOT NULL);
CREATE TABLE t_rsa (LIKE t_hmac INCLUDING ALL);
INSERT INTO t_hmac
SELECT i, k, so_from_json(jsonb_build_object('filename', k, 'size', 4096, 'content_type', 'image/jpeg'), 'gcs_hmac')
  FROM generate_series(1, $ROWS) AS i, LATERAL (SELECT 'photos/' || i || '/photo ' || i || '.jpg' AS k) AS x;
INSERT INTO t_rsa
SELECT i, k, so_from_json(jsonb_build_object('filename', k, 'size', 4096, 'content_type', 'image/jpeg'), 'gcs_rsa')
  FROM generate_series(1, $RSA_ROWS) AS i, LATERAL (SELECT 'photos/' || i || '/photo ' || i || '.jpg' AS k) AS x;
VACUUM ANALYZE t_hmac, t_rsa;
SELECT count(*) FROM t_hmac \g /dev/null
SELECT count(*) FROM t_rsa \g /dev/null
EOF
if [ "$fixture" = 1 ]; then
    # One object, so that every peer's URL for object 1 can be fetched: by
    # so_put, else through so_sign's upload URL (GOOG4-HMAC-SHA256, PUT).
    if ! psql -c "SELECT so_put('gcs_hmac', 'photos/1/photo 1.jpg', convert_to('sample', 'UTF8'))" \
        >/dev/null 2>"$work/put.err"; then
        put_url=$(psql -At -c "SELECT so_sign(file, '1 hour', true) FROM t_hmac WHERE id = 1")
        code=$(curl -sS -o "$work/put.out" -w '%{http_code}' -X PUT -H 'Content-Type: image/jpeg' \
            --data-binary sample "$put_url" || true)
        echo "object 1:    so_put failed ($(head -1 "$work/put.err" | sed 's/^ERROR: *//')); put through so_sign's" \
            "upload URL instead: HTTP $code"
    fi
fi
echo "tables:      t_hmac $ROWS rows, $(psql -At -c "SELECT pg_size_pretty(pg_table_size('t_hmac'))"); t_rsa $RSA_ROWS rows;" \
    "e.g. $(psql -At -c 'SELECT file FROM t_hmac WHERE id = 2')"

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
per_sec() { awk -v n="$1" -v ms="$2" 'BEGIN {printf "%.0f", n / (ms / 1000)}'; }
field() { sed -nE "s/^$1 //p" <<<"$2"; }
# loop MODE COUNT [UNIX_TIME]: hmac-* modes get the HMAC key, rsa-* the key file.
loop() {
    local credentials=$SA_FILE
    case "$1" in *hmac-*) credentials="$ACCESS_ID:$SECRET" ;; esac
    "$work/gcs_sign_loop" "$1" "$ENDPOINT" "$BUCKET" "$PREFIX" "$credentials" "$2" "$EXPIRES" "${@:3}"
}

# ---- checks -------------------------------------------------------------------

echo "== checks"
# check KIND TABLE N PEER...: so_sign's URLs for the first N objects, one
# statement (one signing time: the statement's start, whole seconds), and
# the peers' at that time.
check() {
    local kind=$1 table=$2 n=$3 peer same=() differ=() line
    shift 3
    psql -At -c "SELECT so_sign(file, '$EXPIRES seconds') FROM $table WHERE id <= $n ORDER BY id" >"$work/urls.$kind.so_sign"
    local date
    date=$(head -1 "$work/urls.$kind.so_sign" | sed -nE 's/.*[?&]X-Goog-Date=([0-9]{8})T([0-9]{2})([0-9]{2})([0-9]{2})Z.*/\1 \2:\3:\4/p')
    local signed_at
    signed_at=$(date -u -d "$date" +%s)
    for peer in "$@"; do
        loop "print-$kind-$peer" "$n" "$signed_at" >"$work/urls.$kind.$peer"
        if cmp -s "$work/urls.$kind.so_sign" "$work/urls.$kind.$peer"; then same+=("$peer"); else differ+=("$peer"); fi
    done
    echo "$kind: signing time $(date -u -d "@$signed_at" '+%Y-%m-%dT%H:%M:%SZ') (so_sign's X-Goog-Date), $n objects;" \
        "so_sign's URLs, byte for byte (signatures included), equal to: ${same[*]:-none}${differ:+; NOT equal to: ${differ[*]}}"
    for peer in "${differ[@]}"; do
        line=$(cmp "$work/urls.$kind.so_sign" "$work/urls.$kind.$peer" 2>&1 | sed -nE 's/.* line ([0-9]+).*/\1/p' || true)
        line=${line:-1}
        echo "  first difference, line $line:"
        echo "    so_sign: $(sed -n "${line}p" "$work/urls.$kind.so_sign")"
        echo "    $peer: $(sed -n "${line}p" "$work/urls.$kind.$peer")"
    done
    [ ${#differ[@]} -eq 0 ] || { echo "the peers do not make the same URLs: the comparison would not be fair" >&2; exit 1; }
}
check hmac t_hmac "$CHECK_ROWS" bare bare-pads core
check rsa t_rsa "$(( RSA_ROWS < CHECK_ROWS ? RSA_ROWS : CHECK_ROWS ))" bare core
echo "so_sign sample (HMAC): $(head -1 "$work/urls.hmac.so_sign")"
echo "so_sign sample (RSA):  $(head -1 "$work/urls.rsa.so_sign" | cut -c1-330)..."

# ---- runs ---------------------------------------------------------------------

# Milliseconds of the last statement of a psql session: SQL on stdin.
time_last() {
    local out
    out=$(psql -At)
    sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' <<<"$out" | tail -1
}
serial="SET max_parallel_workers_per_gather = 0;"
# so_sign_ms TABLE WARMUP_ROWS
so_sign_ms() {
    time_last <<EOF
$serial
SELECT count(so_sign(file)) FROM $1 WHERE id <= $2;
\timing on
SELECT count(so_sign(file)) FROM $1;
EOF
}

so_rates=(); bare_rates=(); pads_rates=(); core_rates=()
rso_rates=(); rbare_rates=(); rcore_rates=()
declare -A samples=()
# run_loop NAME MODE COUNT LABEL: times the loop, appends to NAME_rates.
run_loop() {
    local -n rates=$1
    local out
    out=$(loop "$2" "$3")
    rates+=("$(field rate "$out")"); samples[$2]=$(field sample "$out")
    printf '%-30s %9.1f ms  %9s URLs/s%s\n' "$4" "$(field seconds "$out" | awk '{print $1 * 1000}')" "${rates[-1]}" "$5"
}
for ((r = 1; r <= REPEATS; r++)); do
    echo "== run $r/$REPEATS"
    ms=$(so_sign_ms t_hmac 1000)
    so_rates+=("$(per_sec "$ROWS" "$ms")")
    printf '%-30s %9.1f ms  %9s URLs/s\n' "HMAC so_sign (serial):" "$ms" "${so_rates[-1]}"
    run_loop bare_rates hmac-bare "$ROWS" "HMAC bare C++ loop:" ""
    run_loop pads_rates hmac-bare-pads "$ROWS" "HMAC bare loop, saved pads:" "  (diagnostic)"
    run_loop core_rates hmac-core "$ROWS" "HMAC core loop (HmacSigner):" "  (diagnostic)"

    ms=$(so_sign_ms t_rsa 100)
    rso_rates+=("$(per_sec "$RSA_ROWS" "$ms")")
    printf '%-30s %9.1f ms  %9s URLs/s\n' "RSA so_sign (serial):" "$ms" "${rso_rates[-1]}"
    run_loop rbare_rates rsa-bare "$RSA_ROWS" "RSA bare C++ loop:" ""
    run_loop rcore_rates rsa-core "$RSA_ROWS" "RSA core loop (RsaSigner):" "  (diagnostic)"
done

# ---- the URLs verify ------------------------------------------------------------

echo "== so_sign's URLs for object 1 verified from the URL alone (canonical request rebuilt in Python)"
"$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["private_key"], end="")' \
    "$repo/tests/unit/data/gcs_test_service_account.json" | openssl pkey -pubout -out "$work/sa-public.pem"
# verify URL: rebuilds the string to sign from the URL as a server would
# (raw path, the query less X-Goog-Signature decoded, re-encoded and sorted,
# the host header), then checks the signature: HMAC here, RSA by openssl.
verify() {
    "$PYTHON" - "$1" "$ACCESS_ID" "$SECRET" "$work" "$work/sa-public.pem" <<'PY'
import hashlib, hmac, subprocess, sys
from urllib.parse import quote, unquote, urlsplit
url, access_id, secret, work, public_key = sys.argv[1:6]
u = urlsplit(url)
pairs = [tuple(unquote(x) for x in p.split("=", 1)) for p in u.query.split("&")]
q = dict(pairs)
signature = q["X-Goog-Signature"]
enc = lambda s: quote(s, safe="-_.~")
query = "&".join(f"{k}={v}" for k, v in sorted((enc(k), enc(v)) for k, v in pairs if k != "X-Goog-Signature"))
assert q["X-Goog-SignedHeaders"] == "host", q["X-Goog-SignedHeaders"]
canonical = "\n".join(["GET", u.path, query, "host:" + u.netloc, "", "host", "UNSIGNED-PAYLOAD"])
date, scope = q["X-Goog-Date"], q["X-Goog-Credential"].split("/", 1)[1]
to_sign = "\n".join([q["X-Goog-Algorithm"], date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
if q["X-Goog-Algorithm"] == "GOOG4-HMAC-SHA256":
    assert q["X-Goog-Credential"].split("/", 1)[0] == access_id
    key = ("GOOG4" + secret).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    ok = hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature)
    print("GOOG4-HMAC-SHA256: signature", "verifies" if ok else "DOES NOT verify", "(Python hmac, the key chain over the scope)")
else:
    open(f"{work}/to_sign", "w").write(to_sign)
    open(f"{work}/signature", "wb").write(bytes.fromhex(signature))
    r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", public_key, "-signature", f"{work}/signature",
                        f"{work}/to_sign"], capture_output=True, text=True)
    print("GOOG4-RSA-SHA256: signature", "verifies" if r.returncode == 0 else "DOES NOT verify",
          f"(openssl dgst -sha256 -verify, the service account's public key: {r.stdout.strip() or r.stderr.strip()})")
PY
}
verify "$(head -1 "$work/urls.hmac.so_sign")"
verify "$(head -1 "$work/urls.rsa.so_sign")"

if [ "$fixture" = 1 ]; then
    echo "== URLs for object 1 fetched from the fixture (its GCS mode verifies GOOG4-HMAC-SHA256)"
    fetch_check() {  # name url
        local code body
        code=$(curl -sS -o "$work/fetched" -w '%{http_code}' "$2" || true)
        body=$(cat "$work/fetched" 2>/dev/null || true)
        if [ "$code" = 200 ] && [ "$body" = sample ]; then
            printf '%-22s HTTP %s, content ok\n' "$1:" "$code"
        else
            printf '%-22s HTTP %s: %s\n' "$1:" "$code" "$(head -c 300 <<<"$body")"
            echo "  $2"
        fi
    }
    fetch_check "so_sign (HMAC)" "$(psql -At -c "SELECT so_sign(file) FROM t_hmac WHERE id = 1")"
    for peer in hmac-bare hmac-bare-pads hmac-core; do fetch_check "$peer" "${samples[$peer]}"; done
    # The fixture knows no service account: its answer, whatever it is.
    rsa_answer=$(fetch_check "so_sign (RSA)" "$(psql -At -c "SELECT so_sign(file) FROM t_rsa WHERE id = 1")")
    echo "$(head -1 <<<"$rsa_answer")  (not a check: the fixture verifies HMAC keys only)"
else
    echo "== fetch checks skipped: $fixture_note"
fi

# ---- diagnostics, not part of the targets ---------------------------------------

echo "== diagnostics (median of $REPEATS, not part of the targets)"
copy_ms=()
for ((r = 1; r <= REPEATS; r++)); do
    copy_ms+=("$(time_last <<EOF
$serial
SELECT count(so_sign(file)) FROM t_hmac WHERE id <= 1000;
\timing on
COPY (SELECT so_sign(file) FROM t_hmac) TO STDOUT \g /dev/null
EOF
)")
done
echo "HMAC so_sign, URLs sent to the client (COPY TO STDOUT, serial): $(per_sec "$ROWS" "$(median "${copy_ms[@]}")") URLs/s"
ident_ms=()
for ((r = 1; r <= REPEATS; r++)); do
    ident_ms+=("$(time_last <<EOF
$serial
\timing on
SELECT count(so_filename(file)) FROM t_hmac;
EOF
)")
done
echo "count(so_filename(file)), the scan and call overhead alone: $(per_sec "$ROWS" "$(median "${ident_ms[@]}")") rows/s"

# ---- summary --------------------------------------------------------------------

so=$(median "${so_rates[@]}"); bare=$(median "${bare_rates[@]}"); pads=$(median "${pads_rates[@]}")
core=$(median "${core_rates[@]}")
rso=$(median "${rso_rates[@]}"); rbare=$(median "${rbare_rates[@]}"); rcore=$(median "${rcore_rates[@]}")
verdict() {  # ratio target
    awk -v r="$1" -v t="$2" 'BEGIN {printf "S3'"'"'s target >= %s: %s", t, (r >= t) ? "met" : "NOT met"}'
}
echo "== GCS V4 signed URLs/s, median of $REPEATS"
echo "   (so_sign: serial plan, max_parallel_workers_per_gather = 0, count() in the server)"
echo "GOOG4-HMAC-SHA256, $ROWS distinct objects:"
printf '  so_sign:                    %9s URLs/s\n' "$so"
printf '  bare loop (one-shot HMAC):  %9s URLs/s   so_sign/bare      = %6s   %s\n' "$bare" "$(ratio "$so" "$bare")" \
    "$(verdict "$(ratio "$so" "$bare")" 0.25)"
echo "  diagnostics:"
printf '  bare loop, saved HMAC pads: %9s URLs/s   so_sign/bare-pads = %6s\n' "$pads" "$(ratio "$so" "$pads")"
printf '  core loop (HmacSigner):     %9s URLs/s   so_sign/core      = %6s   core/bare = %s\n' "$core" \
    "$(ratio "$so" "$core")" "$(ratio "$core" "$bare")"
echo "GOOG4-RSA-SHA256, $RSA_ROWS distinct objects:"
printf '  so_sign:                    %9s URLs/s\n' "$rso"
printf '  bare loop (EVP_DigestSign): %9s URLs/s   so_sign/bare      = %6s   %s\n' "$rbare" "$(ratio "$rso" "$rbare")" \
    "$(verdict "$(ratio "$rso" "$rbare")" 0.25)"
echo "  diagnostics:"
printf '  core loop (RsaSigner):      %9s URLs/s   so_sign/core      = %6s   core/bare = %s\n' "$rcore" \
    "$(ratio "$rso" "$rcore")" "$(ratio "$rcore" "$rbare")"
echo "runs (URLs/s): HMAC so_sign ${so_rates[*]}; bare ${bare_rates[*]}; bare-pads ${pads_rates[*]}; core ${core_rates[*]};" \
    "RSA so_sign ${rso_rates[*]}; bare ${rbare_rates[*]}; core ${rcore_rates[*]}"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- profile ----------------------------------------------------------------------

below=$(awk -v r="$(ratio "$so" "$bare")" 'BEGIN {print (r < 0.25) ? 1 : 0}')
if [ "$BENCH_PERF" = 1 ] || { [ "$BENCH_PERF" = auto ] && [ "$below" = 1 ]; }; then
    so_sql="SELECT count(so_sign(file)) FROM t_hmac"
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
            | grep -vE '^#|^$' | sed -E 's/[[:space:]-]+$//' | head -15 || true
        echo "-- by symbol (>= 1.5% self time)"
        perf report -i "$work/perf.data" --stdio --no-children --sort dso,symbol -g none --percent-limit 1.5 2>/dev/null \
            | grep -vE '^#|^$' | sed -E 's/[[:space:]-]+$//' | cut -c1-160 | head -40 || true
    fi
fi
