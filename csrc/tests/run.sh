#!/bin/sh
# Runs every test program in a directory, one line per test.
#
#   sh tests/run.sh <bindir> [<sanitizers>]
#
# <sanitizers> is what the build was made with (e.g. "address,undefined",
# "thread"), or empty. Under sanitizers the tests scale their iteration
# counts down (MONAD_ASYNC_TEST_SCALE), never to zero.
#
# Prints `PASS name` or `FAIL name (why)` per test (with the program's
# `note:` lines under a pass and the tail of its output under a failure),
# then `N passed, M failed`. Exits non-zero if anything failed or if no
# test ran at all.

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

passed=0
failed=0
for prog in "$bindir"/*; do
    [ -f "$prog" ] && [ -x "$prog" ] || continue
    name=$(basename "$prog")
    if [ "$have_timeout" = 1 ]; then
        timeout -k 10 "$per_test_timeout" "$prog" >"$log" 2>&1 </dev/null
    else
        "$prog" >"$log" 2>&1 </dev/null
    fi
    rc=$?
    if [ "$rc" -eq 0 ]; then
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

echo "$passed passed, $failed failed"
if [ "$failed" -ne 0 ] || [ $((passed + failed)) -eq 0 ]; then
    exit 1
fi
exit 0
