#!/usr/bin/env bash
# Benchmark of so_put/so_get on an S3 backend (not a test: it prints numbers
# and ratios, it asserts nothing about them). As root, from a checkout:
#   bench/s3_transfer.sh
# Builds and installs the extension (scripts/install-deps.sh, make install),
# starts the loopback S3 fixture (tests/s3/run-fixture.sh: s3rver behind
# the SigV4-verifying Python proxy) and a throwaway cluster
# (scripts/cluster.sh), and in one run, REPEATS times, interleaved, moves
#   small: COUNT objects of 4 KiB, puts then gets, by
#     so     so_put / so_get in ONE psql session, one statement per object
#            (PREPAREd; the content is a constant of the statement; gets
#            return length(so_get(...)), the bytes stay in the server);
#            timed with the server's clock from the session's first
#            statement, so the module load and first connection count;
#     boto3  one client, put_object / get_object().read()
#            (bench/s3_transfer_boto3.py; client creation not timed);
#     curl   --aws-sigv4 over ONE keep-alive connection: one curl per
#            direction with a -K config of COUNT requests joined by "next"
#            (the client-side limit); wall time of each curl;
#   large: one object of LARGE_MB MiB of random bytes, put then get, by
#     so     so_put in a fresh connection, content from
#            pg_read_binary_file(file, 0, size) (one palloc, server-side, no
#            client transfer), timed around so_put alone; so_get likewise;
#            both through bench/s3_transfer_pg.py, which also reads the
#            backend's VmHWM from /proc (see the memory section below);
#     boto3  upload_fileobj / download_fileobj with a TransferConfig of the
#            same part size and concurrency as the backend (multipart upload,
#            ranged GETs in threads), and single put_object / get_object;
#     curl   one PUT (-T) and one GET, precomputed payload hashes;
# The fixture is warmed up first (one untimed curl round of the small
# puts and gets), and the clients take turns going first (run r starts with
# the r-th of so, boto3, curl). It prints requests/s and MB/s (10^6 bytes/s), the medians,
# the ratios so/curl and so/boto3 with the issue's targets, the connections
# and S3 requests each client made (from the fixture's counters), the CPU
# seconds the fixture's two processes spent while each client ran, and the
# peak memory of the backend running the large so_put. The fixture is one
# Python process (the proxy: a thread per connection, one GIL) in front of
# one Node process (s3rver: one event loop), and may itself be the
# bottleneck: the comparison is fair because every client goes through it,
# in the same run.
#
# Every client sends the same bytes, and the fixture checks the same things
# for all: each PUT carries x-amz-content-sha256 with the real SHA-256 (for
# curl precomputed once, since curl 7.88 adds no payload hash) and
# Content-MD5 (so_put and boto3 compute both, which is client work curl is
# spared). curl's small PUTs use -X PUT --data-binary, which sends no
# "Expect: 100-continue": with -T, curl sends Expect even for 4 KiB, and
# removing it with -H 'Expect:' makes curl 7.88 sign an empty Expect header
# it does not send (403 SignatureDoesNotMatch). boto3 sends Expect:
# 100-continue on every PUT, as it does against S3.
#
# Environment: COUNT (1000), SMALL_SIZE (4096), LARGE_MB (64), REPEATS (5: the
# fixture shares the machine, so single runs scatter widely),
# SMALL_CONSTANT_KB (8192: the "small constant" of the memory target),
# PART_SIZE, MAX_CONCURRENCY (backend options; unset: the backend's
# defaults, 8 MiB and 4), BENCH_TMPDIR (where the temporary directory goes;
# $TMPDIR or /tmp), BENCH_SKIP_BUILD=1 to use the installed extension.
set -euo pipefail

COUNT=${COUNT:-1000}
SMALL_SIZE=${SMALL_SIZE:-4096}
LARGE_MB=${LARGE_MB:-64}
REPEATS=${REPEATS:-5}
BUCKET=test-bucket
PYTHON=/usr/bin/python3
LARGE_SIZE=$((LARGE_MB * 1024 * 1024))

. "$(dirname "$0")/common.sh"
bench_workdir so_bench_transfer

# ---- machine facts ----------------------------------------------------------

bench_machine_facts
echo "temp dir:    $work ($(stat -f -c %T "$work"))"
echo "psql:        $("$PG_BIN/psql" --version)"
echo "curl:        $(curl --version | head -1)"
echo "python:      $("$PYTHON" --version 2>&1), boto3 $("$PYTHON" -c 'import boto3; print(boto3.__version__)'), botocore $("$PYTHON" -c 'import botocore; print(botocore.__version__)')"
bench_git_line

# ---- setup ------------------------------------------------------------------

s3_port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
S3_FIXTURE_BUCKETS=$BUCKET "$repo/tests/s3/run-fixture.sh" start "$work/s3" "$s3_port" >"$work/s3-start.log" 2>&1 \
    || { cat "$work/s3-start.log"; echo "the S3 fixture did not start" >&2; exit 1; }
# shellcheck disable=SC1091
. "$work/s3/fixture.env"
ENDPOINT=$S3_ENDPOINT REGION=$S3_REGION AK=$S3_ACCESS_KEY_ID SK=$S3_SECRET_ACCESS_KEY
proxy_pid=$(cat "$work/s3/proxy.pid")
s3rver_pid=$(cat "$work/s3/s3rver.pid")

port=$("$repo/scripts/cluster.sh" start "$work/cluster")
export PGHOST="$work/cluster/sock" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
options="{\"endpoint\": \"$ENDPOINT\", \"region\": \"$REGION\", \"allow_http\": true, \"access_key_id\": \"$AK\""
[ -n "${PART_SIZE:-}" ] && options+=", \"part_size\": $PART_SIZE"
[ -n "${MAX_CONCURRENCY:-}" ] && options+=", \"max_concurrency\": $MAX_CONCURRENCY"
psql -c "CREATE EXTENSION stored_object"
psql -v options="$options, \"secret_access_key\": \"$SK\"}" >/dev/null <<'EOF'
SELECT so_register_backend('s3', 's3://test-bucket', :'options');
EOF
part_size=${PART_SIZE:-8388608}
concurrency=${MAX_CONCURRENCY:-4}
echo "server:      $(psql -At -c 'SHOW server_version')"
echo "fixture:     $ENDPOINT (s3rver behind tests/s3/s3proxy.py, one Python process), bucket $BUCKET"
echo "backend:     $(psql -At -c "SELECT url || ' ' || options::text FROM so_backend_info WHERE key = 's3'")"
echo "             part_size $part_size, max_concurrency $concurrency$([ -z "${PART_SIZE:-}${MAX_CONCURRENCY:-}" ] && echo ' (the defaults)')"
echo "settings:    COUNT=$COUNT SMALL_SIZE=$SMALL_SIZE LARGE_MB=$LARGE_MB REPEATS=$REPEATS"

# The small content: md5('stored_object') repeated, the same bytes for every
# client; the large content: random bytes, written once, read by all.
small_sql="substr(decode(repeat(md5('stored_object'), $SMALL_SIZE / 16 + 1), 'hex'), 1, $SMALL_SIZE)"
"$PYTHON" - "$work/small.bin" "$SMALL_SIZE" "$work/large.bin" "$LARGE_SIZE" <<'PY'
import hashlib, os, sys
small, small_size, large, large_size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
with open(small, "wb") as f:
    f.write((hashlib.md5(b"stored_object").digest() * (small_size // 16 + 1))[:small_size])
with open(large, "wb") as f:
    left = large_size
    while left:
        n = min(left, 1 << 20)
        f.write(os.urandom(n))
        left -= n
PY
chmod 644 "$work/small.bin" "$work/large.bin"
[ "$(psql -At -c "SELECT md5($small_sql)")" = "$(md5sum <"$work/small.bin" | cut -d' ' -f1)" ] \
    || { echo "the small content differs between SQL and the file" >&2; exit 1; }
small_sha=$(sha256sum <"$work/small.bin" | cut -d' ' -f1)
small_md5=$(openssl dgst -md5 -binary "$work/small.bin" | base64)
large_sha=$(sha256sum <"$work/large.bin" | cut -d' ' -f1)
large_md5=$(openssl dgst -md5 -binary "$work/large.bin" | base64)
empty_sha=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# ---- helpers ------------------------------------------------------------------

now_ns() { date +%s%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
rps() { awk -v n="$COUNT" -v s="$1" 'BEGIN {printf "%.1f", n / s}'; }
mbps() { awk -v n="$LARGE_SIZE" -v s="$1" 'BEGIN {printf "%.1f", n / 1e6 / s}'; }
field() { sed -nE "s/^$1 //p" <<<"$2"; }
max() { printf '%s\n' "$@" | sort -g | tail -1; }

# The fixture's counters and the CPU time of its two processes, around
# each client: connections opened (less the one reading the counters),
# S3 requests, proxy and s3rver CPU seconds.
fixture_counters() {
    curl -s "$ENDPOINT/__fixture/stats" | "$PYTHON" -c 'import json, sys; d = json.load(sys.stdin); print(d["connections_accepted"], d["requests"])'
}
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
phase_begin() {
    read -r p_conn p_req < <(fixture_counters)
    p_proxy=$(cpu_s "$proxy_pid"); p_s3rver=$(cpu_s "$s3rver_pid"); p_t=$(now_ns)
}
phase_end() {  # sets phase_note
    local conn req wall
    wall=$(awk -v ns="$(($(now_ns) - p_t))" 'BEGIN {print ns / 1e9}')
    read -r conn req < <(fixture_counters)
    phase_note=$(awk -v c=$((conn - p_conn - 1)) -v r=$((req - p_req)) -v px="$(cpu_s "$proxy_pid")" -v px0="$p_proxy" \
        -v sv="$(cpu_s "$s3rver_pid")" -v sv0="$p_s3rver" -v w="$wall" \
        'BEGIN {printf "%d conn, %d req; CPU proxy %.2f s, s3rver %.2f s in %.2f s", c, r, px - px0, sv - sv0, w}')
}

# so: one psql session, puts then gets, server-side clock.
{
    echo "PREPARE put(int) AS SELECT so_put('s3', :'prefix' || \$1 || '.bin', $small_sql) IS NOT NULL;"
    echo "PREPARE get(int) AS SELECT length(so_get(so_from_json(jsonb_build_object('filename', :'prefix' || \$1 || '.bin'), 's3')));"
    echo "SELECT extract(epoch FROM clock_timestamp()) AS t0 \\gset"
    echo '\o /dev/null'
    for ((i = 1; i <= COUNT; i++)); do echo "EXECUTE put($i);"; done
    echo '\o'
    echo "SELECT extract(epoch FROM clock_timestamp()) AS t1 \\gset"
    echo "\\o :getout"
    for ((i = 1; i <= COUNT; i++)); do echo "EXECUTE get($i);"; done
    echo '\o'
    echo "SELECT extract(epoch FROM clock_timestamp()) AS t2 \\gset"
    echo '\echo times :t0 :t1 :t2'
} >"$work/so_small.sql"

# curl: -K configs of COUNT requests joined by "next" (one connection).
curl_configs() {  # prefix
    local i url
    for ((i = 1; i <= COUNT; i++)); do
        url="$ENDPOINT/$BUCKET/$1$i.bin"
        [ "$i" -eq 1 ] || echo next
        printf 'url = "%s"\nrequest = "PUT"\ndata-binary = "@%s"\n' "$url" "$work/small.bin"
        printf 'header = "Content-Type: application/octet-stream"\nheader = "x-amz-content-sha256: %s"\n' "$small_sha"
        printf 'header = "Content-MD5: %s"\naws-sigv4 = "aws:amz:%s:s3"\nuser = "%s:%s"\n' "$small_md5" "$REGION" "$AK" "$SK"
        printf 'output = "/dev/null"\nwrite-out = "%%{http_code} %%{size_upload} %%{num_connects}\\n"\n'
    done >"$work/curl_put.cfg"
    for ((i = 1; i <= COUNT; i++)); do
        url="$ENDPOINT/$BUCKET/$1$i.bin"
        [ "$i" -eq 1 ] || echo next
        printf 'url = "%s"\nheader = "x-amz-content-sha256: %s"\n' "$url" "$empty_sha"
        printf 'aws-sigv4 = "aws:amz:%s:s3"\nuser = "%s:%s"\n' "$REGION" "$AK" "$SK"
        printf 'output = "/dev/null"\nwrite-out = "%%{http_code} %%{size_download} %%{num_connects}\\n"\n'
    done >"$work/curl_get.cfg"
}
check_curl() {  # file expected-bytes
    awk -v n="$COUNT" -v b="$2" '$1 == 200 && $2 == b {ok++} {c += $3} END {
        if (ok != n) {print "curl: " ok " of " n " requests ok" > "/dev/stderr"; exit 1}
        if (c != 1) print "note: curl opened " c " connections" > "/dev/stderr"}' "$1"
}

so_put_rps=(); so_get_rps=(); b_put_rps=(); b_get_rps=(); c_put_rps=(); c_get_rps=()
so_put_mbs=(); so_get_mbs=(); bt_put_mbs=(); bt_get_mbs=(); bs_put_mbs=(); bs_get_mbs=(); c_lput_mbs=(); c_lget_mbs=()
mem_growth=(); mem_fresh_growth=(); mem_get_growth=(); notes=()
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN {print b - a}'; }
ns_secs() { awk -v ns="$1" 'BEGIN {print ns / 1e9}'; }

small_so() {
    phase_begin
    out=$(psql -At -v prefix="small/so/$r/" -v getout="$work/so_get.out" -f "$work/so_small.sql")
    phase_end
    read -r t0 t1 t2 < <(field times "$out")
    [ "$(grep -cx "$SMALL_SIZE" "$work/so_get.out")" -eq "$COUNT" ] || { echo "so_get read wrong sizes" >&2; exit 1; }
    so_put_rps+=("$(rps "$(secs_between "$t0" "$t1")")"); so_get_rps+=("$(rps "$(secs_between "$t1" "$t2")")")
    printf 'so_put/so_get, 1 session:  put %6s req/s  get %6s req/s  [%s]\n' "${so_put_rps[-1]}" "${so_get_rps[-1]}" "$phase_note"
}
small_boto3() {
    phase_begin
    out=$("$PYTHON" "$repo/bench/s3_transfer_boto3.py" small "$ENDPOINT" "$BUCKET" "$AK" "$SK" "$REGION" \
        "small/boto3/$r/" "$COUNT" "$work/small.bin")
    phase_end
    b_put_rps+=("$(rps "$(field put_seconds "$out")")"); b_get_rps+=("$(rps "$(field get_seconds "$out")")")
    printf 'boto3, 1 client:           put %6s req/s  get %6s req/s  [%s]\n' "${b_put_rps[-1]}" "${b_get_rps[-1]}" "$phase_note"
}
small_curl() {
    local t dput dget
    curl_configs "small/curl/$r/"
    phase_begin
    t=$(now_ns); curl -sS -K "$work/curl_put.cfg" >"$work/curl_put.out"; dput=$(($(now_ns) - t))
    t=$(now_ns); curl -sS -K "$work/curl_get.cfg" >"$work/curl_get.out"; dget=$(($(now_ns) - t))
    phase_end
    check_curl "$work/curl_put.out" "$SMALL_SIZE"; check_curl "$work/curl_get.out" "$SMALL_SIZE"
    c_put_rps+=("$(rps "$(ns_secs "$dput")")"); c_get_rps+=("$(rps "$(ns_secs "$dget")")")
    printf 'curl, 1 connection each:   put %6s req/s  get %6s req/s  [%s]\n' "${c_put_rps[-1]}" "${c_get_rps[-1]}" "$phase_note"
}
large_so() {
    local put get
    phase_begin
    put=$("$PYTHON" "$repo/bench/s3_transfer_pg.py" put s3 "large/so/$r.bin" "$work/large.bin" "$LARGE_SIZE")
    get=$("$PYTHON" "$repo/bench/s3_transfer_pg.py" get s3 "large/so/$r.bin" "$LARGE_SIZE")
    phase_end
    [ "$(psql -At -c "SELECT so_checksum('$(field result "$put")'::stored_object)")" = "$large_sha" ] \
        || { echo "so_put stored a wrong checksum: $(field result "$put")" >&2; exit 1; }
    so_put_mbs+=("$(mbps "$(field seconds "$put")")"); so_get_mbs+=("$(mbps "$(field seconds "$get")")")
    mem_growth+=("$(( $(field hwm_after_kb "$put") - $(field rss_before_kb "$put") ))")
    mem_fresh_growth+=("$(( $(field hwm_after_kb "$put") - $(field hwm_fresh_kb "$put") ))")
    mem_get_growth+=("$(( $(field hwm_after_kb "$get") - $(field rss_before_kb "$get") ))")
    [ "$(field hwm_reset "$put")" = 1 ] || notes+=("VmHWM could not be reset: peaks include the warm-up")
    printf 'so_put/so_get:                 put %6s MB/s  get %6s MB/s  [%s]\n' "${so_put_mbs[-1]}" "${so_get_mbs[-1]}" "$phase_note"
    printf '    so_put backend: VmRSS %s kB after connecting, %s kB after warm-up; VmHWM %s kB after so_put (+%s kB)\n' \
        "$(field rss_fresh_kb "$put")" "$(field rss_before_kb "$put")" "$(field hwm_after_kb "$put")" "${mem_growth[-1]}"
    printf '    so_get backend: VmRSS %s kB after warm-up; VmHWM %s kB after so_get (+%s kB)\n' \
        "$(field rss_before_kb "$get")" "$(field hwm_after_kb "$get")" "${mem_get_growth[-1]}"
}
large_boto3() {
    phase_begin
    out=$("$PYTHON" "$repo/bench/s3_transfer_boto3.py" large "$ENDPOINT" "$BUCKET" "$AK" "$SK" "$REGION" \
        "large/boto3/$r" "$work/large.bin" "$part_size" "$concurrency")
    phase_end
    bt_put_mbs+=("$(mbps "$(field transfer_put_seconds "$out")")"); bt_get_mbs+=("$(mbps "$(field transfer_get_seconds "$out")")")
    bs_put_mbs+=("$(mbps "$(field single_put_seconds "$out")")"); bs_get_mbs+=("$(mbps "$(field single_get_seconds "$out")")")
    printf 'boto3 upload/download_fileobj: put %6s MB/s  get %6s MB/s\n' "${bt_put_mbs[-1]}" "${bt_get_mbs[-1]}"
    printf 'boto3 put_object/get_object:   put %6s MB/s  get %6s MB/s  [both ways: %s]\n' "${bs_put_mbs[-1]}" "${bs_get_mbs[-1]}" "$phase_note"
}
large_curl() {
    local t dput dget code got
    phase_begin
    t=$(now_ns)
    code=$(curl -sS -o /dev/null -w '%{http_code}' -T "$work/large.bin" \
        -H "x-amz-content-sha256: $large_sha" -H "Content-MD5: $large_md5" -H 'Content-Type: application/octet-stream' \
        --aws-sigv4 "aws:amz:$REGION:s3" --user "$AK:$SK" "$ENDPOINT/$BUCKET/large/curl/$r.bin")
    dput=$(($(now_ns) - t))
    [ "$code" = 200 ] || { echo "curl PUT: HTTP $code" >&2; exit 1; }
    t=$(now_ns)
    read -r code got < <(curl -sS -o /dev/null -w '%{http_code} %{size_download}\n' -H "x-amz-content-sha256: $empty_sha" \
        --aws-sigv4 "aws:amz:$REGION:s3" --user "$AK:$SK" "$ENDPOINT/$BUCKET/large/curl/$r.bin")
    dget=$(($(now_ns) - t))
    phase_end
    [ "$code" = 200 ] && [ "$got" = "$LARGE_SIZE" ] || { echo "curl GET: HTTP $code, $got bytes" >&2; exit 1; }
    c_lput_mbs+=("$(mbps "$(ns_secs "$dput")")"); c_lget_mbs+=("$(mbps "$(ns_secs "$dget")")")
    printf 'curl, one request each:        put %6s MB/s  get %6s MB/s  [%s]\n' "${c_lput_mbs[-1]}" "${c_lget_mbs[-1]}" "$phase_note"
}

# Warm the fixture up (s3rver's JIT, the proxy's caches), so the first
# client of run 1 does not pay for a cold server: one untimed round of the
# small puts and gets with curl.
curl_configs "warm-up/"
curl -sS -K "$work/curl_put.cfg" >/dev/null
curl -sS -K "$work/curl_get.cfg" >/dev/null
echo "warm-up:     $COUNT untimed small puts and gets with curl"

# The clients take turns going first: run r starts with the r-th client.
clients=(so boto3 curl)
for ((r = 1; r <= REPEATS; r++)); do
    order=()
    for ((k = 0; k < 3; k++)); do order+=("${clients[$(((r - 1 + k) % 3))]}"); done
    echo "== run $r/$REPEATS: $COUNT x $SMALL_SIZE B, puts then gets (order: ${order[*]})"
    for c in "${order[@]}"; do "small_$c"; done
    echo "== run $r/$REPEATS: 1 x $LARGE_MB MiB, put then get"
    for c in "${order[@]}"; do "large_$c"; done
done

# ---- summary ------------------------------------------------------------------

verdict() {  # ratio target
    awk -v r="$1" -v t="$2" 'BEGIN {printf "target >= %s: %s", t, (r >= t) ? "met" : "NOT met"}'
}
fixture_cpu() {  # name of the fixture's process, its pid
    echo "$1 $(cpu_s "$2") s"
}
echo "== fixture: CPU time over the whole run: $(fixture_cpu proxy "$proxy_pid"), $(fixture_cpu s3rver "$s3rver_pid")"
echo "   Every request goes through the fixture's two processes in turn: the Python proxy (one GIL),"
echo "   then s3rver (one Node event loop), on this machine's $(nproc) CPUs, shared with the client and"
echo "   PostgreSQL. Their CPU seconds per client are shown above: when proxy + s3rver come near the"
echo "   wall time, the fixture is the bottleneck and the ratios below compare clients against the"
echo "   same limit; fair because every client goes through it, interleaved, in the same run."

sp=$(median "${so_put_rps[@]}"); sg=$(median "${so_get_rps[@]}")
bp=$(median "${b_put_rps[@]}"); bg=$(median "${b_get_rps[@]}")
cp=$(median "${c_put_rps[@]}"); cg=$(median "${c_get_rps[@]}")
echo "== small objects: $COUNT x $SMALL_SIZE B, requests/s, median of $REPEATS"
printf '%-34s %8s %8s\n' "" put get
printf '%-34s %8s %8s\n' "so_put/so_get (1 session)" "$sp" "$sg" "boto3 (1 client)" "$bp" "$bg" \
    "curl (1 keep-alive connection)" "$cp" "$cg"
printf 'so/curl    put %5s  %s   get %5s  %s\n' "$(ratio "$sp" "$cp")" "$(verdict "$(ratio "$sp" "$cp")" 0.8)" \
    "$(ratio "$sg" "$cg")" "$(verdict "$(ratio "$sg" "$cg")" 0.8)"
printf 'so/boto3   put %5s                         get %5s   (no target)\n' "$(ratio "$sp" "$bp")" "$(ratio "$sg" "$bg")"
printf 'boto3/curl put %5s                         get %5s   (the issue saw about 0.5)\n' "$(ratio "$bp" "$cp")" "$(ratio "$bg" "$cg")"
echo "runs (req/s): so put ${so_put_rps[*]}, get ${so_get_rps[*]}; boto3 put ${b_put_rps[*]}, get ${b_get_rps[*]};" \
    "curl put ${c_put_rps[*]}, get ${c_get_rps[*]}"

lsp=$(median "${so_put_mbs[@]}"); lsg=$(median "${so_get_mbs[@]}")
btp=$(median "${bt_put_mbs[@]}"); btg=$(median "${bt_get_mbs[@]}")
bsp=$(median "${bs_put_mbs[@]}"); bsg=$(median "${bs_get_mbs[@]}")
lcp=$(median "${c_lput_mbs[@]}"); lcg=$(median "${c_lget_mbs[@]}")
echo "== large object: $LARGE_MB MiB, MB/s (10^6 B/s), median of $REPEATS"
printf '%-62s %7s %7s\n' "" put get
printf '%-62s %7s %7s\n' "so_put/so_get (multipart: part_size $part_size, max_concurrency $concurrency)" "$lsp" "$lsg" \
    "boto3 upload_fileobj/download_fileobj (same part size, threads)" "$btp" "$btg" \
    "boto3 put_object/get_object (one request)" "$bsp" "$bsg" \
    "curl (one request)" "$lcp" "$lcg"
printf 'so/boto3 fileobj (same parts)  put %5s  %s   get %5s  %s\n' \
    "$(ratio "$lsp" "$btp")" "$(verdict "$(ratio "$lsp" "$btp")" 1)" "$(ratio "$lsg" "$btg")" "$(verdict "$(ratio "$lsg" "$btg")" 1)"
printf 'so/boto3 one request           put %5s  %s   get %5s  %s\n' \
    "$(ratio "$lsp" "$bsp")" "$(verdict "$(ratio "$lsp" "$bsp")" 1)" "$(ratio "$lsg" "$bsg")" "$(verdict "$(ratio "$lsg" "$bsg")" 1)"
printf 'so/curl                        put %5s                   get %5s   (no target)\n' "$(ratio "$lsp" "$lcp")" "$(ratio "$lsg" "$lcg")"
echo "runs (MB/s): so put ${so_put_mbs[*]}, get ${so_get_mbs[*]}; boto3 fileobj put ${bt_put_mbs[*]}, get ${bt_get_mbs[*]};" \
    "boto3 one request put ${bs_put_mbs[*]}, get ${bs_get_mbs[*]}; curl put ${c_lput_mbs[*]}, get ${c_lget_mbs[*]}"

content_kb=$((LARGE_SIZE / 1024))
parts_kb=$((part_size * concurrency / 1024))
peak=$(max "${mem_growth[@]}")
small_constant_kb=${SMALL_CONSTANT_KB:-8192}
echo "== peak backend memory of the $LARGE_MB MiB so_put (fresh connection; VmHWM from /proc/<pg_backend_pid()>/status)"
echo "   The session warms up (so_exists: module, registry, HTTP connection), VmHWM is reset (clear_refs 5),"
echo "   so_put runs with its content from pg_read_binary_file (one palloc), VmHWM is read again."
printf 'content:                                  %8d kB\n' "$content_kb"
printf 'part_size x max_concurrency:              %8d kB  (%d x %d)\n' "$parts_kb" "$part_size" "$concurrency"
printf 'measured peak growth during so_put:       %8d kB  (max of runs: %s kB)\n' "$peak" "${mem_growth[*]}"
printf '  from the fresh connection, warm-up included: %s kB\n' "${mem_fresh_growth[*]}"
printf 'constant left over (peak - content - part_size x max_concurrency): %d kB\n' "$((peak - content_kb - parts_kb))"
printf 'peak beyond the content (everything so_put held besides it):       %d kB\n' "$((peak - content_kb))"
awk -v p="$peak" -v b="$((content_kb + parts_kb))" -v c="$small_constant_kb" 'BEGIN {
    printf "target peak <= content + part_size x max_concurrency + a small constant (%d kB): %s\n", c, (p <= b + c) ? "met" : "NOT met" }'
printf 'so_get of the same object, peak growth:   %8s kB  (content %d kB)\n' "$(max "${mem_get_growth[@]}")" "$content_kb"
for n in "${notes[@]}"; do echo "note: $n"; done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
