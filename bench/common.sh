# Sourced by the benchmark scripts: the set-up, cleanup and machine facts
# they share. Sets repo, PG_BIN and work.

repo=$(cd "$(dirname "${BASH_SOURCE[1]}")/.." && pwd)
cd "$repo"

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    "$repo/scripts/install-deps.sh"
    make -s -j"$(nproc)" >/dev/null
    make -s install >/dev/null
fi

PG_BIN=$(pg_config --bindir)

# bench_workdir NAME: a temporary directory the server's user can read,
# removed on exit with the cluster and the S3 fixture started in it.
bench_workdir() {
    work=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/$1.XXXXXX")
    chmod 755 "$work"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    "$repo/tests/s3/run-fixture.sh" stop "$work/s3" >/dev/null 2>&1 || true
    "$repo/scripts/cluster.sh" stop "$work/cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
}

# The first lines of every benchmark's output.
bench_machine_facts() {
    echo "== machine"
    echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "kernel:      $(uname -srm)"
    echo "nproc:       $(nproc)"
    echo "cpu:         $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "memory:      $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "load:        $(cut -d' ' -f1-3 /proc/loadavg)"
}
