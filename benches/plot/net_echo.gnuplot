# The connection-sweep chart of the net_echo harness: server CPU time per
# round trip against the number of connections, one line per contender,
# one panel per message size. Input: the medians CSV net_echo writes
# (contender,size,conns,cpu_per_rt_ns,...; sorted by contender, size and
# connections, so each line's rows are contiguous). Run through
# net_echo.sh, which sets `infile`, `outfile`, `subtitle` and `sizes`
# (the message sizes in the file, one panel each).
set terminal svg size 1000,460 dynamic font "sans,12" background "white"
set output outfile
set datafile separator ","
set multiplot layout 1,words(sizes) title "TCP echo on loopback: server CPU per round trip (lower is better)\n{/*0.8 ".subtitle."}"
set logscale x 10
set xrange [0.7:15000]
set xtics ("1" 1, "64" 64, "1,000" 1000, "10,000" 10000)
set xlabel "connections (one message outstanding each)"
set ylabel "server CPU ns per round trip"
# Log scale: one connection (a wake-up per round trip) costs ten times
# what a busy server pays, and the sweep is about the busy end.
set logscale y 10
set yrange [1000:100000]
set ytics ("1,000" 1000, "2,000" 2000, "5,000" 5000, "10,000" 10000, "20,000" 20000, "50,000" 50000, "100,000" 100000)
set grid xtics ytics lc rgb "#dddddd"
set key top right
# The two floors (no runtime: raw io_uring, raw epoll) in grey, dashed.
names = "monad_async tokio may monoio uring_floor epoll_floor"
colors = "#d62728 #1f77b4 #2ca02c #9467bd #7f7f7f #bcbd22"
dashes = "1 1 1 1 2 2"
do for [size in sizes] {
    set title sprintf("%s-byte messages", size == "4096" ? "4,096" : size)
    plot for [i=1:words(names)] infile skip 1 \
        using ((strcol(1) eq word(names, i) && $2 == size + 0) ? $3 : NaN):4 \
        with linespoints lw 2 pt 7 ps 0.8 lc rgb word(colors, i) \
        dt int(word(dashes, i)) title word(names, i) noenhanced
}
unset multiplot
