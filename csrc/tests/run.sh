#!/bin/sh
# Runs every test program in a directory, one line per test.
#
#   sh tests/run.sh <bindir> [<sanitizers>]
#
# <sanitizers> is what the build was made with (e.g. "address,undefined",
# "thread"), or empty. Under sanitizers the tests scale their iteration
# counts down (MONAD_ASYNC_TEST_SCALE), never to zero.
#
# MONAD_ASYNC_TEST_RUNNER, if set, is a command put before each program
# (an emulator: `make test-aarch64` sets it to qemu-aarch64, together with
# MONAD_ASYNC_TEST_EMULATOR, which the tests read; see test_common.h).
#
# Prints `PASS name` or `FAIL name (why)` per test (with the program's
# `note:` lines under a pass and the tail of its output under a failure),
# or `SKIP name (why)` for a program that exits 77 after a `skip:` line
# (only what cannot run here at all, e.g. io_uring under qemu-user), then
# `N passed, M failed` (`, K skipped` when some were). Exits non-zero if
# anything failed or if no test passed at all.

bindir=$1
san=$2

if [ -z "$bindir" ] || [ ! -d "$bindir" ]; then
    echo "run.sh: no such test directory: '$bindir'" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

if [ -n "$san" ]; then
    : "${MONAD_ASYNC_TEST_SCALE:=10}"
    export MONAD_ASYNC_TEST_SCALE
    # Leaks fail the test; keep going after UBSan reports is disabled at
    # compile time (-fno-sanitize-recover=all).
    : "${ASAN_OPTIONS:=detect_leaks=1:abort_on_error=0}"
    export ASAN_OPTIONS
    : "${UBSAN_OPTIONS:=print_stacktrace=1}"
    export UBSAN_OPTIONS
fi
MONAD_ASYNC_TEST_SANITIZE=$san
export MONAD_ASYNC_TEST_SANITIZE

per_test_timeout=${MONAD_ASYNC_TEST_TIMEOUT:-300}
if command -v timeout >/dev/null 2>&1; then
    have_timeout=1
else
    have_timeout=0
    echo "note: 'timeout' not found; tests run without the runner's time limit (each test still has its own watchdog)"
fi

log=$(mktemp "${TMPDIR:-/tmp}/monad_async_test.XXXXXX") || exit 1
trap 'rm -f "$log"' EXIT
trap 'rm -f "$log"; exit 130' INT TERM

runner=${MONAD_ASYNC_TEST_RUNNER:-}

passed=0
failed=0
skipped=0
for prog in "$bindir"/*; do
    [ -f "$prog" ] && [ -x "$prog" ] || continue
    name=$(basename "$prog")
    # $runner is split into words on purpose (a command and its options).
    if [ "$have_timeout" = 1 ]; then
        timeout -k 10 "$per_test_timeout" $runner "$prog" >"$log" 2>&1 </dev/null
    else
        $runner "$prog" >"$log" 2>&1 </dev/null
    fi
    rc=$?
    if [ "$rc" -eq 77 ] && grep -q '^skip: ' "$log"; then
        skipped=$((skipped + 1))
        echo "SKIP $name ($(grep -m1 '^skip: ' "$log" | sed 's/^skip: //'))"
        grep '^note:' "$log" | sed 's/^/    /'
    elif [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS $name"
        grep '^note:' "$log" | sed 's/^/    /'
    else
        failed=$((failed + 1))
        if [ "$have_timeout" = 1 ] && [ "$rc" -eq 124 ]; then
            why="timed out after ${per_test_timeout}s"
        elif [ "$have_timeout" = 1 ] && [ "$rc" -eq 137 ]; then
            why="killed by SIGKILL (timed out and ignored SIGTERM, or OOM)"
        elif [ "$rc" -gt 128 ]; then
            sig=$((rc - 128))
            signame=$(kill -l "$sig" 2>/dev/null || echo "?")
            why="killed by signal $sig SIG$signame"
        else
            why="exit code $rc"
        fi
        echo "FAIL $name ($why)"
        tail -n 60 "$log" | sed 's/^/    | /'
    fi
done

if [ "$skipped" -ne 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
if [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
    exit 1
fi
exit 0
