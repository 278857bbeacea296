#!/bin/sh
# User-space instructions per round trip of each echo server, under
# callgrind: repeatable on a loaded machine, where the CPU-time figures
# of the sweep are not. Each (contender, connections, size) runs twice,
# with a short and a long timed window; the difference of the two runs'
# instruction counts over the difference of their round trips leaves out
# start-up, accepting and tear-down. Kernel time is not in these counts
# (the sweep's "kernel" column is). Each timed window holds at least four
# round trips per connection, so with 10,000 connections under callgrind
# even the short one takes seconds: the long window is NET_ECHO_CG_LONG_MS
# if set, else the larger of 4 s and 2 ms per connection (20 s at 10,000:
# may and monoio need more than 4 s there); should the two runs' round
# trips still not differ by half, the row says n/a. NET_ECHO_CG_CACHE=1 adds callgrind's cache
# simulation and two columns, first-level and last-level data misses per
# round trip. The model is fixed rather than read from the CPU (which
# in a VM may report nonsense): L1 32 KiB 8-way, last level 1 MiB
# 16-way, i.e. one core's L1 and L2 of a current x86 server; override
# with NET_ECHO_CG_CACHE_MODEL. The misses it counts are user space's
# (the kernel's are not seen), in a model without prefetchers.
# Usage, from the repository root:
#     benches/net_echo/callgrind.sh [contenders] [connections] [sizes]
# e.g. benches/net_echo/callgrind.sh monad_async,tokio 64,10000 64
set -eu
contenders=${1:-monad_async,tokio,may,monoio}
conns=${2:-64,10000}
sizes=${3:-64}
dir=$(mktemp -d /tmp/net_echo_cg.XXXXXX)
wrap="valgrind --tool=callgrind --callgrind-out-file=$dir/cg.%p"
cache=${NET_ECHO_CG_CACHE:-0}
if [ "$cache" = 1 ]; then
  model=${NET_ECHO_CG_CACHE_MODEL:---I1=32768,8,64 --D1=32768,8,64 --LL=1048576,16,64}
  wrap="$wrap --cache-sim=yes $model"
  echo "contender,size,conns,instructions_per_rt,rts_short,rts_long,d1_data_misses_per_rt,ll_data_misses_per_rt"
else
  echo "contender,size,conns,instructions_per_rt,rts_short,rts_long"
fi
for c in $(echo "$contenders" | tr ',' ' '); do
  for n in $(echo "$conns" | tr ',' ' '); do
    long=${NET_ECHO_CG_LONG_MS:-$(( n * 2 > 4000 ? n * 2 : 4000 ))}
    for s in $(echo "$sizes" | tr ',' ' '); do
      for ms in 1000 $long; do
        NET_ECHO_SERVER_WRAP="$wrap" cargo bench -q -p monad-async-benches --bench net_echo -- \
          --contenders "$c" --conns "$n" --sizes "$s" --rounds 1 --measure-ms $ms \
          --out "$dir/run_$ms.csv" >/dev/null 2>"$dir/log_$ms" || {
          echo "callgrind.sh: $c, $n connections, $s B, ${ms} ms failed; see $dir/log_$ms" >&2
          exit 1
        }
      done
      # total_rts is column 13, the server's pid column 14 of the raw CSV.
      # Per run: round trips, instructions, and (with the cache model)
      # D1 and LL data misses, read + write, from callgrind's totals.
      set -- $(for ms in 1000 $long; do
        row=$(tail -n 1 "$dir/run_${ms}_raw.csv")
        rts=$(echo "$row" | cut -d, -f13)
        pid=$(echo "$row" | cut -d, -f14)
        awk -v rts="$rts" '
          /^events:/ { for (i = 2; i <= NF; i++) col[$i] = i }
          /^totals:/ { d1 = ("D1mr" in col) ? $col["D1mr"] + $col["D1mw"] : 0
                       ll = ("DLmr" in col) ? $col["DLmr"] + $col["DLmw"] : 0
                       print rts, $col["Ir"], d1, ll }' "$dir/cg.$pid"
      done)
      awk -v c="$c" -v s="$s" -v n="$n" -v cache="$cache" \
        -v r1="$1" -v i1="$2" -v d1="$3" -v l1="$4" -v r2="$5" -v i2="$6" -v d2="$7" -v l2="$8" \
        'BEGIN { if (r2 - r1 < r1 / 2) { printf "%s,%s,%s,n/a,%s,%s", c, s, n, r1, r2
                   if (cache == 1) printf ",n/a,n/a" }
                 else { printf "%s,%s,%s,%.0f,%s,%s", c, s, n, (i2 - i1) / (r2 - r1), r1, r2
                   if (cache == 1) printf ",%.2f,%.2f", (d2 - d1) / (r2 - r1) + 0, (l2 - l1) / (r2 - r1) + 0 }
                 printf "\n" }'
    done
  done
done
rm -rf "$dir"
