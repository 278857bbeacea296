#!/bin/sh
# Minimum wall time per iteration of each ir_probe mode over R runs of N
# iterations: the minimum is what a loaded machine least disturbs.
# Usage: wall.sh PROBE_BINARY [MODE...]; R (default 15) and N (200000).
set -eu
bin=$1
shift
modes=${*:-yield park mpsc join}
r=${R:-15}
n=${N:-200000}
for m in $modes; do
    i=0
    while [ $i -lt "$r" ]; do
        IR_PROBE_TIME=1 "$bin" "$m" "$n"
        i=$((i + 1))
    done | sort -k2 -n | head -n 1
done
