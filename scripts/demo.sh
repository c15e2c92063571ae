#!/usr/bin/env bash
# The main job on the embedded default (the local file system backend),
# from a fresh Debian 12 machine, as root:
#   scripts/demo.sh
# Installs what it needs, builds and installs the extension, starts a
# throwaway cluster, runs scripts/demo.sql (files go to demo/files in this
# checkout), and stops the cluster again.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
"$repo/scripts/install-deps.sh"
make -s -j2 >/dev/null && make -s install >/dev/null

work=$(mktemp -d /tmp/stored_object_demo.XXXXXX)
chmod 755 "$work"
trap '"$repo/scripts/cluster.sh" stop "$work/cluster" >/dev/null 2>&1; rm -rf "$work"' EXIT
port=$("$repo/scripts/cluster.sh" start "$work/cluster")

# The server runs as postgres: it needs a directory it owns, reachable
# through every parent directory of the checkout.
files="$repo/demo/files"
rm -rf "$files"
install -d -o postgres -g postgres "$repo/demo" "$files"
if ! runuser -u postgres -- test -w "$files"; then
    files="$work/files"
    install -d -o postgres -g postgres "$files"
    echo "note: postgres cannot reach $repo; the demo stores files in $files instead"
fi

PGHOST="$work/cluster/sock" PGPORT="$port" PGUSER=postgres \
    psql -X -e -v files_root="$files" -d postgres -f "$repo/scripts/demo.sql"

echo
echo "== the files on disk"
find "$files" -type f -printf '%P  %s bytes\n' | sort
