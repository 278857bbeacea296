#!/bin/sh
# Prints instructions per operation for each mode of hot_ir.c (all, or
# those in HOT_IR_MODES): callgrind counts of N and 2N operations,
# difference / N.
set -eu
bin=$1
n=${HOT_IR_N:-10000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count() {
    valgrind -q --tool=callgrind --callgrind-out-file="$tmp/cg.$1.$2.%p" \
        "$bin" "$1" "$2" >/dev/null
    # The dump taken by CALLGRIND_DUMP_STATS is the file ending in .1.
    sed -n 's/^summary: //p' "$tmp"/cg."$1"."$2".*.1
}
for mode in ${HOT_IR_MODES:-y a w d n m f g N M i p}; do
    one=$(count $mode "$n")
    two=$(count $mode $((2 * n)))
    per=$(( (two - one) / n ))
    case $mode in
    y) what="yield (suspend + resume)" ;;
    a) what="attach + run + exit" ;;
    n) what="NOP, batch 1" ;;
    m) what="NOP, batch 32" ;;
    N) what="NOP, batch 1, ticks on" ;;
    M) what="NOP, batch 32, ticks on" ;;
    i) what="NOP initiated + wait" ;;
    p) what="64 B round trip, socketpair" ;;
    f) what="floor NOP, batch 1" ;;
    g) what="floor NOP, batch 32" ;;
    w) what="park/wake round trip" ;;
    d) what="park/deferred wake round trip" ;;
    esac
    printf '%-28s %5d instructions\n' "$what" "$per"
done
