#!/usr/bin/env bash
# Start or stop the loopback Azure Blob fixture: Azurite's blob service
# behind the pass-through azproxy.py (fault injection, statistics).
#
#   run-azurite.sh start DIR PORT [extra azproxy.py flags...]
#   run-azurite.sh stop DIR
#
# start: Azurite listens on a free 127.0.0.1 port with its data in DIR/data,
# the proxy on 127.0.0.1:PORT.  Returns once both answer and the containers
# exist.  Writes DIR/azurite.pid, DIR/proxy.pid, DIR/*.log and
# DIR/azurite.env.  Starting a fixture that already runs from DIR on PORT
# does nothing; stop is safe to repeat.
# Environment (defaults in brackets):
#   AZURE_FIXTURE_CONTAINERS  containers to create ["test-container other-container"]
#   AZURE_FIXTURE_API_VERSION_CHECK=1  let Azurite refuse x-ms-version values
#                             it does not know (the SDK's newest is one) [off]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON=/usr/bin/python3
AZURITE_MAIN="$HERE/node_modules/azurite/dist/src/blob/main.js"
ACCOUNT=devstoreaccount1
# Azurite's well-known development key (public, the same everywhere).
ACCOUNT_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

die() { echo "run-azurite.sh: $*" >&2; exit 1; }

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ensure_node_modules() {
    if [ ! -f "$AZURITE_MAIN" ] ||
       [ ! -f "$HERE/node_modules/@azure/storage-blob/package.json" ]; then
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

# Wait until URL gives an HTTP answer (any status, if ANY is "any"; else
# 2xx) while PID lives.  Polls every 0.1 s for at most 30 s.
wait_for_http() {
    local url="$1" pid="$2" any="${3:-}"
    "$PYTHON" - "$url" "$pid" "$any" <<'PY'
import os, sys, time, urllib.error, urllib.request
url, pid, any_status = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "any"
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(1)
    try:
        urllib.request.urlopen(url, timeout=1).read()
        sys.exit(0)
    except urllib.error.HTTPError:
        if any_status:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(1)
PY
}

start() {
    local dir="$1" port="$2"; shift 2
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number"
    mkdir -p "$dir/data"
    dir="$(cd "$dir" && pwd)"
    if pid_is "$(cat "$dir/proxy.pid" 2>/dev/null)" azproxy.py; then
        if grep -qx "AZURE_FIXTURE_PORT=$port" "$dir/azurite.env" 2>/dev/null &&
           pid_is "$(cat "$dir/azurite.pid" 2>/dev/null)" "$AZURITE_MAIN"; then
            echo "Azure fixture already running: http://127.0.0.1:$port/$ACCOUNT"
            return 0
        fi
        die "another fixture runs from $dir; stop it first"
    fi
    stop "$dir" # leftovers of a fixture that died halfway
    ensure_node_modules

    local containers="${AZURE_FIXTURE_CONTAINERS:-test-container other-container}"
    local azurite_port version_check=(--skipApiVersionCheck) api_version=
    if [ "${AZURE_FIXTURE_API_VERSION_CHECK:-0}" = 1 ]; then
        # The SDK's own x-ms-version is too new for Azurite's list.
        version_check=() api_version=2025-11-05
    fi
    azurite_port="$(free_port)"

    # Blob service only.  Not --loose: Azurite refuses what it does not
    # support (it checks Shared Key and SAS signatures in any mode).
    # --disableProductStyleUrl: the account always comes from the first
    # path segment, whatever the Host header says.  --disableTelemetry: no
    # attempt to reach Azure's telemetry service.  The keep-alive timeout
    # is the proxy's idle timeout, so Azurite seldom closes under it.
    # The proxy variables are cleared because Azurite calls itself (to
    # check a copy source URL) and that must stay on loopback.
    env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY \
        -u all_proxy -u ALL_PROXY \
        setsid node "$AZURITE_MAIN" \
        --blobHost 127.0.0.1 --blobPort "$azurite_port" \
        --location "$dir/data" --debug "$dir/azurite-debug.log" \
        --disableTelemetry --disableProductStyleUrl \
        --blobKeepAliveTimeout 300 "${version_check[@]}" \
        >"$dir/azurite.log" 2>&1 < /dev/null &
    echo $! > "$dir/azurite.pid"
    if ! wait_for_http "http://127.0.0.1:$azurite_port/$ACCOUNT?comp=list" \
            "$(cat "$dir/azurite.pid")" any; then
        cat "$dir/azurite.log" >&2
        stop "$dir"
        die "Azurite did not start"
    fi

    setsid "$PYTHON" "$HERE/azproxy.py" \
        --port "$port" --upstream-port "$azurite_port" "$@" \
        >"$dir/proxy.log" 2>&1 < /dev/null &
    echo $! > "$dir/proxy.pid"
    if ! wait_for_http "http://127.0.0.1:$port/__fixture/health" \
            "$(cat "$dir/proxy.pid")"; then
        cat "$dir/proxy.log" >&2
        stop "$dir"
        die "azproxy.py did not start"
    fi

    # Straight to Azurite, so the proxy's statistics start at zero.
    # shellcheck disable=SC2086  # one argument per container
    if ! AZURE_ENDPOINT="http://127.0.0.1:$azurite_port/$ACCOUNT" \
         AZURE_ACCOUNT="$ACCOUNT" AZURE_ACCOUNT_KEY="$ACCOUNT_KEY" \
         AZURE_SDK_API_VERSION="$api_version" \
         node "$HERE/sdkclient.mjs" create-container $containers >/dev/null; then
        stop "$dir"
        die "could not create the containers: $containers"
    fi

    local endpoint="http://127.0.0.1:$port/$ACCOUNT"
    {
        echo "AZURE_ENDPOINT=$endpoint"
        echo "AZURE_ACCOUNT=$ACCOUNT"
        echo "AZURE_ACCOUNT_KEY=$ACCOUNT_KEY"
        echo "AZURE_CONTAINER=${containers%% *}"
        echo "AZURE_CONTAINERS=\"$containers\""
        echo "AZURE_FIXTURE_DIR=$dir"
        echo "AZURE_FIXTURE_PORT=$port"
        echo "AZURE_FIXTURE_CONTROL=http://127.0.0.1:$port/__fixture"
        echo "AZURITE_PORT=$azurite_port"
        echo "AZURE_STORAGE_CONNECTION_STRING=\"DefaultEndpointsProtocol=http;AccountName=$ACCOUNT;AccountKey=$ACCOUNT_KEY;BlobEndpoint=$endpoint;\""
    } > "$dir/azurite.env"
    echo "Azure fixture ready: $endpoint (Azurite on port $azurite_port, data in $dir/data)"
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
    [ -d "$dir" ] || return 0 # nothing was started there
    stop_pid "$dir/proxy.pid" azproxy.py
    stop_pid "$dir/azurite.pid" "$AZURITE_MAIN"
}

case "${1:-}" in
    start) [ $# -ge 3 ] || die "usage: $0 start DIR PORT [azproxy.py flags...]"
           shift; start "$@" ;;
    stop)  [ $# -eq 2 ] || die "usage: $0 stop DIR"
           stop "$2" ;;
    *)     die "usage: $0 start DIR PORT [azproxy.py flags...] | stop DIR" ;;
esac
