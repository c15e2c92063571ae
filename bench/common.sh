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

# The commit measured, and whether src/ or extension/ differ from it.
bench_git_line() {
    echo "git:         $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD -- src extension 2>/dev/null || echo ' + uncommitted changes in src/ or extension/')"
}

# The bare signing loop (bench/sign_loop.cpp over the core library built by
# CMake in BENCH_CMAKE_DIR or $work/cmake) as $work/sign_loop.
bench_build_sign_loop() {
    local cmake_dir=${BENCH_CMAKE_DIR:-$work/cmake}
    cmake -S "$repo" -B "$cmake_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/cmake.log" 2>&1 \
        && cmake --build "$cmake_dir" --target so_core -j"$(nproc)" >>"$work/cmake.log" 2>&1 \
        || { tail -40 "$work/cmake.log"; echo "building so_core failed" >&2; exit 1; }
    c++ -std=c++17 -O2 -Wall -I"$repo/src" -o "$work/sign_loop" "$repo/bench/sign_loop.cpp" \
        "$cmake_dir/libso_core.a" -lcurl -lcrypto -lpthread
    echo "bare loop:   bench/sign_loop.cpp, -O2, so_core built $(sed -nE 's/^CMAKE_BUILD_TYPE:[A-Z]+=//p' "$cmake_dir/CMakeCache.txt")"
}
