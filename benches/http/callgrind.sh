#!/usr/bin/env bash
# User-space instructions per request of the three HTTP servers of
# run.sh, under valgrind's callgrind: repeatable on a loaded machine,
# where requests/s is not (the kernel's share is not counted).
#
#   benches/http/callgrind.sh [CONNECTIONS] [PIPELINE]   (defaults: 64 1)
#
# Each server starts under callgrind with instrumentation off; after a
# 1 s wrk warm-up `callgrind_control -i on` switches it on, a 5 s wrk run
# follows, `callgrind_control -d` dumps, and the instructions are divided
# by wrk's request count. Needs valgrind and wrk; builds like run.sh
# (run that first, or `cargo build --release --example http_server` and
# `cargo build --release -p monad-async-benches --bin http_hyper --bin
# http_may`). The servers are killed with SIGKILL: valgrind does not act
# on SIGTERM while a thread waits in io_uring_enter.
set -euo pipefail
cd "$(dirname "$0")/../.."
conns=${1:-64}
depth=${2:-1}
target=${CARGO_TARGET_DIR:-target}
base=${HTTP_PORT:-18090}
out=$(mktemp -d)
script=()
[ "$depth" -gt 1 ] && script=(-s benches/http/pipeline.lua)
i=0
for bin in examples/http_server http_hyper http_may; do
    p=$((base + i))
    i=$((i + 1))
    name=$(basename "$bin")
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/$name.out" \
        "$target/release/$bin" --addr "127.0.0.1:$p" >"$out/$name.log" 2>&1 &
    vg=$!
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
        sleep 0.1
    done
    wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$p/plaintext" >/dev/null
    callgrind_control -i on "$vg" >/dev/null
    wrk -t1 -c"$conns" -d5s "${script[@]}" "http://127.0.0.1:$p/plaintext" ${script:+-- $depth} \
        >"$out/$name.wrk"
    callgrind_control -d "$vg" >/dev/null
    sleep 0.5
    kill -9 "$vg"
    wait "$vg" 2>/dev/null || true
    requests=$(awk '/requests in/ { print $1 }' "$out/$name.wrk")
    ir=$(cat "$out/$name.out".* | awk '/^summary:/ { s += $2 } END { print s }')
    echo "$name connections=$conns pipeline=$depth requests=$requests instructions=$ir per_request=$((ir / requests))"
done
echo "callgrind files in $out (callgrind_annotate FILE)"
