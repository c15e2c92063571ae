#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine, as root:
#   scripts/test.sh
# Installs what it needs, builds and installs the extension, starts a
# throwaway PostgreSQL cluster (and the S3, Azure and nginx fixtures), runs
# pg_regress, the GoogleTest unit tests and the libpqxx integration tests,
# stops everything, and ends with one line "N passed, N failed".
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

"$repo/scripts/install-deps.sh" || { echo "0 passed, 1 failed"; exit 1; }

work=$(mktemp -d /tmp/stored_object_test.XXXXXX)
chmod 755 "$work"
cleanup() {
    "$repo/tests/s3/run-fixture.sh" stop "$work/s3" >/dev/null 2>&1 || true
    "$repo/tests/azure/run-azurite.sh" stop "$work/azure" >/dev/null 2>&1 || true
    "$repo/scripts/cluster.sh" stop "$work/cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
skipped=0
suite_started=$SECONDS
record() {  # suite passed failed [skipped]; also how long since the last record
    printf '%-14s %4d passed, %d failed%s  (%d s)\n' "$1" "$2" "$3" "${4:+, $4 skipped}" $((SECONDS - suite_started))
    suite_started=$SECONDS
    passed=$((passed + $2))
    failed=$((failed + $3))
    skipped=$((skipped + ${4:-0}))
}
summary() {  # the last line: "N passed, N failed" (", N skipped" when some were)
    if [ "$skipped" -gt 0 ]; then
        echo "$passed passed, $failed failed, $skipped skipped"
    else
        echo "$passed passed, $failed failed"
    fi
}
fail_setup() {
    echo "setup failed: $1" >&2
    record "$1" 0 1
    summary
    exit 1
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

echo "== build"
# No LLVM bitcode for the test build (a third of the build's time), and
# none left from an earlier install, which the JIT could otherwise inline.
make -s -j2 SO_TEST_HOOKS=1 with_llvm=no >"$work/build.log" 2>&1 \
    && make -s SO_TEST_HOOKS=1 with_llvm=no install >>"$work/build.log" 2>&1 \
    && rm -rf "$(pg_config --pkglibdir)/bitcode/stored_object" "$(pg_config --pkglibdir)/bitcode/stored_object.index.bc" \
    || { cat "$work/build.log"; fail_setup build; }
# The unit and integration tests unoptimized, with assertions: half the time.
cmake -S . -B build/cmake -DCMAKE_BUILD_TYPE=Debug >"$work/cmake.log" 2>&1 \
    && cmake --build build/cmake -j2 >>"$work/cmake.log" 2>&1 \
    || { tail -50 "$work/cmake.log"; fail_setup cmake; }

echo "== cluster"
port=$("$repo/scripts/cluster.sh" start "$work/cluster") || fail_setup cluster
export PGHOST="$work/cluster/sock" PGPORT="$port" PGUSER=postgres
export SO_TEST_TMPDIR="$work/tmp"
install -d -o postgres -g postgres "$SO_TEST_TMPDIR"

echo "== S3 fixture (s3rver behind a SigV4-verifying proxy)"
S3_FIXTURE_BUCKETS="test-bucket other-bucket" \
    S3_FIXTURE_CREDENTIALS="test-access-key:test-secret-key temp-access-key:temp-secret-key:temp-session-token" \
    "$repo/tests/s3/run-fixture.sh" start "$work/s3" "$(free_port)" >"$work/s3-start.log" 2>&1 \
    || { cat "$work/s3-start.log"; fail_setup s3-fixture; }
# Exported for every suite: where the fixtures listen and their credentials.
set -a; . "$work/s3/fixture.env"; set +a
export S3_FIXTURE_DIR="$work/s3"

echo "== Azure fixture (Azurite behind a fault-injecting proxy)"
"$repo/tests/azure/run-azurite.sh" start "$work/azure" "$(free_port)" >"$work/azure-start.log" 2>&1 \
    || { cat "$work/azure-start.log"; fail_setup azure-fixture; }
set -a; . "$work/azure/azurite.env"; set +a

echo "== pg_regress ($SECONDS s so far: install, build, fixtures)"
suite_started=$SECONDS
rm -rf build/regress
make installcheck >"$work/regress.log" 2>&1
ok=$(grep -cE '\.\.\. ok' "$work/regress.log")
bad=$(grep -cE '\.\.\. (FAILED|failed)' "$work/regress.log")
[ -s build/regress/regression.diffs ] && head -200 build/regress/regression.diffs
[ "$ok" -eq 0 ] && [ "$bad" -eq 0 ] && { cat "$work/regress.log"; bad=1; }
record pg_regress "$ok" "$bad"

echo "== GoogleTest (unit and integration)"
psql -X -q -d postgres -c "CREATE DATABASE so_integration" \
    && psql -X -q -d so_integration -c "CREATE EXTENSION stored_object" || fail_setup integration-db
export SO_TEST_DSN="host=$PGHOST port=$PGPORT user=postgres dbname=so_integration"
ctest --test-dir build/cmake --output-on-failure >"$work/ctest.log" 2>&1
grep -E '\*\*\*(Failed|Exception|Timeout)|Not Run' "$work/ctest.log"
summary=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$work/ctest.log")
if [ -n "$summary" ]; then
    total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$summary")
    bad=$(sed -E 's/.* ([0-9]+) tests failed.*/\1/' <<<"$summary")
    record gtest $((total - bad)) "$bad"
    if [ "$bad" -gt 0 ]; then
        # Each failed test's own output, as ctest printed it.
        awk '/\*\*\*(Failed|Exception|Timeout)/ {show=1} /^ *[0-9]+\/[0-9]+ Test +#[0-9]+: .* +Passed/ {show=0} show' \
            "$work/ctest.log" | head -300
    fi
else
    tail -30 "$work/ctest.log"
    record gtest 0 1
fi

echo "== system tests (the fixtures' own tests, then tests/system/*.py)"
for t in tests/s3/test_fixture.py tests/azure/test_azurite_fixture.py tests/fakes/test_credential_endpoints.py \
         tests/system/test_*.py; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .py)
    /usr/bin/python3 "$t" >"$work/$name.log" 2>&1
    rc=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$work/$name.log" | tail -1)
    if [ -n "$line" ]; then
        ok=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")
        bad=$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$line")
        skip=$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+' || true)
    else
        ok=0; bad=1; skip=
    fi
    [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
    [ "$bad" -gt 0 ] && tail -40 "$work/$name.log"
    record "$name" "$ok" "$bad" "$skip"
done

summary
[ "$failed" -eq 0 ]
