#!/bin/sh
# Instructions per operation of each ir_probe mode: callgrind counts of N
# and 2N iterations, difference / N. Usage: ir.sh PROBE_BINARY [MODE...]
set -eu
bin=$1
shift
modes=${*:-yield spawn park mpsc join exit}
n=${IR_N:-20000}
count() {
    # Collect inside the executor's run; exit toggles collection itself
    # (ir_probe.rs).
    toggle=--toggle-collect=*run_until_idle*
    if [ "$1" = exit ]; then
        toggle=
    fi
    valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no ${toggle:+"$toggle"} "$bin" "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : *//p'
}
for m in $modes; do
    one=$(count "$m" "$n")
    two=$(count "$m" $((2 * n)))
    printf '%-6s %6d instructions\n' "$m" $(( (two - one) / n ))
done
