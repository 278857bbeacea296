#!/bin/sh
# Prints instructions per yield, per attach+run+exit and per park/wake
# round trip of two tasks (see hot_ir.c):
# callgrind counts of N and 2N operations, difference / N.
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
for mode in y a p; do
    one=$(count $mode "$n")
    two=$(count $mode $((2 * n)))
    per=$(( (two - one) / n ))
    case $mode in
    y) what="yield (suspend + resume)" ;;
    a) what="attach + run + exit" ;;
    p) what="park/wake round trip" ;;
    esac
    printf '%-28s %5d instructions\n' "$what" "$per"
done
