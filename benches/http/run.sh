#!/usr/bin/env bash
# HTTP/1.1 plaintext under wrk: examples/http_server.rs (monad-async, one
# executor) against hyper 1.x on a current-thread tokio runtime
# (benches/src/bin/http_hyper.rs) and may_minihttp on one worker
# (benches/src/bin/http_may.rs).
#
#   benches/http/run.sh [SECONDS] [ROUNDS]      (defaults: 5 s, 3 rounds)
#
# (HTTP_PORT=N moves the three servers to ports N, N+1, N+2.)
#
# Needs wrk and GNU time (Debian: apt-get install -y wrk time) and two
# cores. Each server runs pinned to core 0 (taskset -c 0), wrk to core 1
# with one thread, for each load: 64 and 512 connections, one request at
# a time per connection and 16 pipelined (TechEmpower's pipeline.lua,
# benches/http/pipeline.lua). The server order rotates over the rounds.
# Measured per run: requests/s and p99 latency (wrk --latency; with
# pipelining wrk times each batch of 16), the server's CPU time
# (utime+stime from /proc/PID/stat before and after) per request, and
# wrk's own CPU use (near 100% means the generator, not the server, is
# the limit). Writes benches/http/results.csv (one line per run), then
# benches/http/chart (the http_chart bin) prints the medians as a Markdown
# table with ratios and draws docs/bench/http.svg.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}
rounds=${2:-3}
out=benches/http/results.csv
target=${CARGO_TARGET_DIR:-target}
for tool in wrk /usr/bin/time taskset; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y wrk time)"; exit 1; }
done

cargo build --release --example http_server
cargo build --release -p monad-async-benches --bin http_hyper --bin http_may --bin http_chart
declare -A bin=(
    [monad-async]="$target/release/examples/http_server"
    [hyper]="$target/release/http_hyper"
    [may_minihttp]="$target/release/http_may"
)
# Ports: HTTP_PORT (default 18080) and the next two.
base=${HTTP_PORT:-18080}
declare -A port=([monad-async]=$base [hyper]=$((base + 1)) [may_minihttp]=$((base + 2)))
servers=(monad-async hyper may_minihttp)
hz=$(getconf CLK_TCK)
headers=(-H 'Host: localhost' -H 'Connection: keep-alive'
    -H 'Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7')

# utime+stime of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# A latency as wrk prints it (850.00us, 1.20ms, 2.00s) in microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /s$/) m = 1000000
        printf "%.1f", n * m
    }'
}

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on port $1"; exit 1
}

echo "round,server,connections,pipeline,requests_per_s,p99_us,requests,server_cpu_s,server_cpu_us_per_request,wrk_cpu_percent,errors" >"$out"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
    # Rotate the order: each server goes first once in three rounds.
    order=("${servers[@]:$(( (round - 1) % 3 ))}" "${servers[@]:0:$(( (round - 1) % 3 ))}")
    for server in "${order[@]}"; do
        p=${port[$server]}
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "port $p is taken (set HTTP_PORT)"; exit 1
        fi
        taskset -c 0 "${bin[$server]}" --addr "127.0.0.1:$p" >/dev/null &
        pid=$!
        wait_port "$p"
        kill -0 "$pid" # still running: it is the one listening
        # Warm-up: connections, buffers, the page cache of the binary.
        taskset -c 1 wrk -t1 -c64 -d1s "http://127.0.0.1:$p/plaintext" >/dev/null
        for conns in 64 512; do
            for depth in 1 16; do
                script=()
                [ "$depth" -gt 1 ] && script=(-s benches/http/pipeline.lua)
                before=$(cpu_ticks "$pid")
                /usr/bin/time -f '%U %S %e' -o /tmp/http_wrk_time \
                    taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s --latency "${headers[@]}" \
                    "${script[@]}" "http://127.0.0.1:$p/plaintext" ${script:+-- $depth} >/tmp/http_wrk_out
                after=$(cpu_ticks "$pid")
                rps=$(awk '/^Requests\/sec:/ { print $2 }' /tmp/http_wrk_out)
                p99=$(to_us "$(awk '$1 == "99%" { print $2 }' /tmp/http_wrk_out)")
                requests=$(awk '/requests in/ { print $1 }' /tmp/http_wrk_out)
                errors=$(awk '/Socket errors:/ { n += $4 + $6 + $8 + $10 } /Non-2xx/ { n += $NF } END { print n + 0 }' \
                    /tmp/http_wrk_out | tr -d ,)
                cpu=$(awk -v a="$before" -v b="$after" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')
                per=$(awk -v c="$cpu" -v r="$requests" 'BEGIN { printf "%.3f", c * 1e6 / r }')
                wrkcpu=$(awk '{ printf "%.0f", ($1 + $2) * 100 / $3 }' /tmp/http_wrk_time)
                line="$round,$server,$conns,$depth,$rps,$p99,$requests,$cpu,$per,$wrkcpu,$errors"
                echo "$line" | tee -a "$out"
            done
        done
        kill "$pid"
        wait "$pid" 2>/dev/null || true
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$target/release/http_chart" "$out" docs/bench/http.svg
