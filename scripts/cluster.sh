#!/usr/bin/env bash
# Throwaway PostgreSQL clusters for the test and demo commands.
#   scripts/cluster.sh start DIR [PORT]   initdb + start; prints the port
#   scripts/cluster.sh stop DIR           stop and remove DIR
# PostgreSQL refuses to run as root, so as root the cluster runs as the
# postgres user and DIR is handed to it.
set -euo pipefail

PG_BIN=${PG_BIN:-$(pg_config --bindir)}

as_postgres() {
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2; }

case "$cmd" in
start)
    port=${3:-$(free_port)}
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    as_postgres mkdir -p "$dir/data" "$dir/sock"
    as_postgres "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log"
    as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-p $port -k $dir/sock -c listen_addresses='' -c fsync=off -c max_prepared_transactions=5 -c shared_preload_libraries=stored_object" \
        start >/dev/null
    echo "$port" >"$dir/port"
    echo "$port"
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "unknown command $cmd" >&2; exit 2 ;;
esac
