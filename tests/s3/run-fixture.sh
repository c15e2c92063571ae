#!/usr/bin/env bash
# Start or stop the loopback S3 fixture: s3rver behind the strict s3proxy.py.
#
#   run-fixture.sh start DIR PORT [extra s3proxy.py flags...]
#   run-fixture.sh stop DIR
#
# start: s3rver listens on a free 127.0.0.1 port with its data in DIR/data,
# the proxy on 127.0.0.1:PORT.  Returns once both answer.  Writes
# DIR/s3rver.pid, DIR/proxy.pid, DIR/*.log and DIR/fixture.env.
# Environment (defaults in brackets):
#   S3_FIXTURE_BUCKETS      buckets to create      ["test-bucket"]
#   S3_FIXTURE_CREDENTIALS  KEY:SECRET[:TOKEN] ... ["test-access-key:test-secret-key"]
#   S3_FIXTURE_REGION       required region        ["us-east-1"]
#   S3_FIXTURE_MIN_PART_SIZE                       [5242880]
# Extra flags go to s3proxy.py, e.g. --gcs for Google Cloud Storage's XML
# API behaviour (README.md, "GCS mode"); fixture.env then also says
# S3_FIXTURE_GCS=1.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON=/usr/bin/python3

die() { echo "run-fixture.sh: $*" >&2; exit 1; }

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ensure_node_modules() {
    if [ ! -f "$HERE/node_modules/s3rver/bin/s3rver.js" ]; then
        (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) >&2
    fi
}

# True if PID is alive and its command line mentions WHAT (guards against
# killing an unrelated process that reused a stale pid).
pid_is() {
    local pid="$1" what="$2"
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
        tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$what"
}

wait_for_http() {
    local url="$1" pid="$2" tries=200
    while [ "$tries" -gt 0 ]; do
        kill -0 "$pid" 2>/dev/null || return 1
        if "$PYTHON" - "$url" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1).read()
PY
        sleep 0.1
        tries=$((tries - 1))
    done
    return 1
}

start() {
    local dir="$1" port="$2"; shift 2
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number"
    mkdir -p "$dir/data"
    dir="$(cd "$dir" && pwd)"
    if pid_is "$(cat "$dir/proxy.pid" 2>/dev/null)" s3proxy.py; then
        die "a fixture already runs from $dir"
    fi
    ensure_node_modules

    local buckets="${S3_FIXTURE_BUCKETS:-test-bucket}"
    local credentials="${S3_FIXTURE_CREDENTIALS:-test-access-key:test-secret-key}"
    local region="${S3_FIXTURE_REGION:-us-east-1}"
    local min_part="${S3_FIXTURE_MIN_PART_SIZE:-5242880}"
    local s3rver_port bucket_args=() credential_args=() b c
    s3rver_port="$(free_port)"
    for b in $buckets; do bucket_args+=(--configure-bucket "$b"); done
    for c in $credentials; do credential_args+=(--credential "$c"); done

    # s3rver's ListObjectsV2 continuation tokens use DES, which Node 17+
    # only offers with the legacy OpenSSL provider.
    NODE_OPTIONS=--openssl-legacy-provider setsid node \
        "$HERE/node_modules/s3rver/bin/s3rver.js" \
        --directory "$dir/data" --address 127.0.0.1 --port "$s3rver_port" \
        --silent --no-vhost-buckets "${bucket_args[@]}" \
        >"$dir/s3rver.log" 2>&1 < /dev/null &
    echo $! > "$dir/s3rver.pid"
    if ! wait_for_http "http://127.0.0.1:$s3rver_port/" "$(cat "$dir/s3rver.pid")"; then
        cat "$dir/s3rver.log" >&2
        stop "$dir"
        die "s3rver did not start"
    fi

    BOTO_DISABLE_CRT=true setsid "$PYTHON" "$HERE/s3proxy.py" \
        --port "$port" --upstream-port "$s3rver_port" --data-dir "$dir/data" \
        --region "$region" --min-part-size "$min_part" \
        "${credential_args[@]}" "$@" \
        >"$dir/proxy.log" 2>&1 < /dev/null &
    echo $! > "$dir/proxy.pid"
    if ! wait_for_http "http://127.0.0.1:$port/__fixture/health" "$(cat "$dir/proxy.pid")"; then
        cat "$dir/proxy.log" >&2
        stop "$dir"
        die "s3proxy.py did not start"
    fi

    local first="${credentials%% *}"
    local key="${first%%:*}" rest="${first#*:}" flag gcs=""
    for flag in "$@"; do
        if [ "$flag" = --gcs ]; then gcs=1; fi
    done
    {
        echo "S3_ENDPOINT=http://127.0.0.1:$port"
        echo "S3_REGION=$region"
        echo "S3_ACCESS_KEY_ID=$key"
        echo "S3_SECRET_ACCESS_KEY=${rest%%:*}"
        echo "S3_BUCKETS=\"$buckets\""
        echo "S3RVER_PORT=$s3rver_port"
        if [ -n "$gcs" ]; then echo "S3_FIXTURE_GCS=1"; fi
    } > "$dir/fixture.env"
    echo "S3 fixture ready: http://127.0.0.1:$port (s3rver on port $s3rver_port, data in $dir/data)"
}

stop_pid() {
    local file="$1" what="$2" pid
    pid="$(cat "$file" 2>/dev/null || true)"
    if pid_is "$pid" "$what"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            pid_is "$pid" "$what" || break
            sleep 0.1
        done
        if pid_is "$pid" "$what"; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$file"
}

stop() {
    local dir="$1"
    [ -d "$dir" ] || die "no such directory: $dir"
    stop_pid "$dir/proxy.pid" s3proxy.py
    stop_pid "$dir/s3rver.pid" s3rver.js
}

case "${1:-}" in
    start) [ $# -ge 3 ] || die "usage: $0 start DIR PORT [s3proxy flags...]"
           shift; start "$@" ;;
    stop)  [ $# -eq 2 ] || die "usage: $0 stop DIR"
           stop "$2" ;;
    *)     die "usage: $0 start DIR PORT [s3proxy flags...] | stop DIR" ;;
esac
