#!/bin/sh
# Draws docs/bench/net_echo_sweep.svg from the net_echo harness's medians
# CSV (gnuplot; on Debian: apt-get install gnuplot-nox). Usage, from the
# repository root:
#     benches/plot/net_echo.sh [target/net_echo.csv] [docs/bench/net_echo_sweep.svg] [subtitle]
set -eu
here=$(dirname "$0")
in=${1:-target/net_echo.csv}
out=${2:-docs/bench/net_echo_sweep.svg}
sub=${3:-"server pinned to core 0, shared epoll load generator on core 1; medians of 3 rotating rounds"}
sizes=$(awk -F, 'NR > 1 { print $2 }' "$in" | sort -nu | tr '\n' ' ')
[ -n "$sizes" ] || { echo "$in: no rows" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
gnuplot -e "infile='$in'; outfile='$out'; subtitle='$sub'; sizes='$sizes'" "$here/net_echo.gnuplot"
echo "wrote $out"
