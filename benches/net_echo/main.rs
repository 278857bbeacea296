//! net_echo: TCP echo on loopback, monad-async against tokio
//! (current-thread), may (one worker) and monoio (io_uring), side by side
//! in one run, over a sweep of connection counts and message sizes, with
//! two floors beside them: servers with no runtime, a raw io_uring loop
//! and a raw epoll loop (floors.rs), the least the kernel makes any server
//! pay per round trip here.
//!
//! ```text
//! cargo bench -p monad-async-benches --bench net_echo                 # the full sweep
//! cargo bench -p monad-async-benches --bench net_echo -- --quick      # < 1 minute
//! cargo bench -p monad-async-benches --bench net_echo -- \
//!     --contenders monad_async,tokio --conns 64,10000 --sizes 64 --rounds 3 \
//!     --warmup-ms 300 --measure-ms 2000 --out target/net_echo.csv
//! ```
//! (`NET_ECHO_QUICK=1` is `--quick`.) Then `benches/plot/net_echo.sh`
//! draws `docs/bench/net_echo_sweep.svg` from the CSV.
//!
//! Each measurement runs two fresh processes: the server (one contender,
//! pinned to core 0 with every thread its runtime starts) and the shared
//! load generator (generator.rs, epoll, pinned to core 1), so each side
//! has its own RLIMIT_NOFILE (raised to the hard limit) for 10,000
//! connections, and no runtime idles in the other's process. Measured in
//! a timed window after a warm-up: the server process's CPU time per
//! round trip (its process CPU clock, read by the generator), round trips
//! per second, p50/p99 round-trip latency, how busy each side was (CPU
//! time / wall time; a generator near 100% would be the bottleneck), the
//! kernel's share of the server's CPU time (/proc/PID/stat ticks), and
//! the busy time of the server's core per round trip (`core/rt`: wall
//! time less the core's idle time, sys::core_idle_ns), which counts the
//! interrupt and softirq work done on that core whether the kernel
//! charged it to the server (it runs while the server is current) or to
//! nobody (it runs while the core idles): a server that sleeps more is
//! otherwise charged less for the same network work.
//! Contenders take turns in an order rotated each round; the tables give
//! medians over the rounds. A wrong echo fails the run; every run first
//! checks that it does, against a server that corrupts a bit now and then.

mod floors;
mod generator;
mod servers;
mod sys;
#[path = "../common/uring.rs"]
mod uring;

use generator::{GenArgs, GenResult};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Config {
    contenders: Vec<String>,
    conns: Vec<usize>,
    sizes: Vec<usize>,
    rounds: usize,
    warmup_ms: u64,
    measure_ms: u64,
    out: String,
}

fn list<T: std::str::FromStr>(s: &str) -> Vec<T> {
    s.split(',')
        .map(|x| {
            x.trim()
                .replace('_', "")
                .parse()
                .unwrap_or_else(|_| die(&format!("bad list item {x:?}")))
        })
        .collect()
}

fn die(msg: &str) -> ! {
    eprintln!("net_echo: {msg}");
    std::process::exit(2)
}

fn parse(args: &[String]) -> Config {
    let mut c = Config {
        contenders: servers::CONTENDERS.iter().map(|s| s.to_string()).collect(),
        conns: vec![1, 64, 1000, 10_000],
        sizes: vec![64, 4096],
        rounds: 3,
        warmup_ms: 300,
        measure_ms: 2000,
        // The repository's target/, wherever cargo builds.
        out: std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map_or_else(|| "target".into(), |root| root.join("target"))
            .join("net_echo.csv")
            .display()
            .to_string(),
    };
    let quick = |c: &mut Config| {
        c.conns = vec![1, 64];
        c.sizes = vec![64];
        c.rounds = 1;
        c.warmup_ms = 200;
        c.measure_ms = 1000;
    };
    if std::env::var_os("NET_ECHO_QUICK").is_some_and(|v| v != "0") {
        quick(&mut c);
    }
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| die(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--quick" => quick(&mut c),
            "--contenders" => {
                c.contenders = val().split(',').map(str::to_string).collect();
                for x in &c.contenders {
                    if !servers::CONTENDERS.contains(&x.as_str()) {
                        die(&format!(
                            "unknown contender {x}; known: {:?}",
                            servers::CONTENDERS
                        ));
                    }
                }
            }
            "--conns" => c.conns = list(&val()),
            "--sizes" => c.sizes = list(&val()),
            "--rounds" => c.rounds = list::<usize>(&val())[0].max(1),
            "--warmup-ms" => c.warmup_ms = list::<u64>(&val())[0],
            "--measure-ms" => c.measure_ms = list::<u64>(&val())[0].max(100),
            "--out" => c.out = val(),
            // cargo bench passes --bench; criterion-style filters are not
            // used here.
            "--bench" => {}
            other => die(&format!("unknown argument {other}")),
        }
    }
    c
}

/// `__serve CONTENDER CONNS`: the server process.
fn serve_main(contender: &str, conns: usize) {
    sys::pin_to_core(sys::SERVER_CORE).expect("pin to core 0");
    sys::raise_nofile().expect("RLIMIT_NOFILE");
    let l = sys::listener().expect("listener");
    let port = l.local_addr().expect("local_addr").port();
    let mut out = std::io::stdout();
    writeln!(out, "PORT {port}").unwrap();
    out.flush().unwrap();
    servers::serve(contender, l, conns);
}

/// `__generate PORT SERVER_PID CONNS SIZE WARMUP_MS MEASURE_MS`: the
/// load generator process.
fn generate_main(args: &[String]) {
    let num = |i: usize| -> u64 { args[i].parse().expect("number") };
    sys::pin_to_core(1).expect("pin to core 1");
    let limit = sys::raise_nofile().expect("RLIMIT_NOFILE");
    let a = GenArgs {
        addr: ([127, 0, 0, 1], num(0) as u16).into(),
        server_pid: num(1) as libc::pid_t,
        conns: num(2) as usize,
        size: num(3) as usize,
        warmup: Duration::from_millis(num(4)),
        measure: Duration::from_millis(num(5)),
    };
    if a.conns as u64 + 64 > limit {
        eprintln!(
            "net_echo generator: {} connections need more than RLIMIT_NOFILE {limit}",
            a.conns
        );
        std::process::exit(1);
    }
    match generator::generate(&a) {
        Ok(r) => println!("{}", r.to_line()),
        Err(e) => {
            eprintln!("net_echo generator: {e}");
            std::process::exit(1);
        }
    }
}

/// One measurement, with a fresh server process and a fresh generator:
/// its result and the server's process id.
fn measure(
    cfg: &Config,
    contender: &str,
    conns: usize,
    size: usize,
) -> Result<(GenResult, u32), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // NET_ECHO_SERVER_WRAP runs the server under a tool, e.g.
    // "valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p": its
    // instruction counts do not move with the machine's load (the CPU
    // figures then mean nothing; the round-trip counts still do).
    // Not the self-check's server: that one is not measured.
    let wrap: Vec<String> = std::env::var("NET_ECHO_SERVER_WRAP")
        .ok()
        .filter(|_| contender != "broken")
        .map(|w| w.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let mut server = match wrap.split_first() {
        Some((tool, args)) => {
            let mut c = Command::new(tool);
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let mut server = server
        .args(["__serve", contender, &conns.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn server: {e}"))?;
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let Some(port) = line.trim().strip_prefix("PORT ") else {
        let _ = server.kill();
        let _ = server.wait();
        return Err(format!("{contender} server did not start: {line:?}"));
    };
    let gen = Command::new(&exe)
        .args([
            "__generate",
            port,
            &server.id().to_string(),
            &conns.to_string(),
            &size.to_string(),
            &cfg.warmup_ms.to_string(),
            &cfg.measure_ms.to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("spawn generator: {e}"))?;
    let result = String::from_utf8_lossy(&gen.stdout)
        .lines()
        .find_map(GenResult::from_line);
    // The server returns once every connection has ended; give it time.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        match server.try_wait().map_err(|e| e.to_string())? {
            Some(st) => break Some(st),
            None if Instant::now() > deadline => {
                let _ = server.kill();
                let _ = server.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    if !gen.status.success() {
        let _ = server.kill();
        return Err(format!(
            "{contender}: the generator failed ({})",
            gen.status
        ));
    }
    match status {
        Some(st) if st.success() => {}
        Some(st) => return Err(format!("{contender}: the server failed ({st})")),
        None => return Err(format!("{contender}: the server did not finish")),
    }
    let pid = server.id();
    result
        .map(|r| (r, pid))
        .ok_or_else(|| format!("{contender}: no result line"))
}

/// The echo check must be able to fail: a server that corrupts one bit
/// now and then must fail the run rather than report a number. Checked
/// on every run, before any measurement.
fn self_check() {
    let quick = Config {
        contenders: Vec::new(),
        conns: Vec::new(),
        sizes: Vec::new(),
        rounds: 1,
        warmup_ms: 50,
        measure_ms: 200,
        out: String::new(),
    };
    match measure(&quick, "broken", 4, 64) {
        Err(e) if e.contains("generator failed") => {
            eprintln!("self-check: a corrupting server fails the run, as it must")
        }
        Err(e) => die(&format!("self-check: unexpected failure: {e}")),
        Ok(_) => die("self-check: a corrupting server was not caught"),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Medians over the rounds of one (contender, size, conns) cell.
#[derive(Clone, Copy)]
struct Cell {
    cpu_per_rt_ns: f64,
    rt_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    server_busy: f64,
    gen_busy: f64,
    /// The kernel's share of the server's CPU time.
    server_sys: f64,
    /// Busy time of the server's core per round trip (sys::core_idle_ns).
    core_per_rt_ns: f64,
}

fn cell(runs: &[GenResult]) -> Cell {
    let m = |f: &dyn Fn(&GenResult) -> f64| median(runs.iter().map(f).collect());
    Cell {
        cpu_per_rt_ns: m(&|r| r.server_cpu_ns as f64 / r.rts as f64),
        rt_per_s: m(&|r| r.rts as f64 * 1e9 / r.wall_ns as f64),
        p50_us: m(&|r| r.p50_ns as f64 / 1e3),
        p99_us: m(&|r| r.p99_ns as f64 / 1e3),
        server_busy: m(&|r| r.server_cpu_ns as f64 / r.wall_ns as f64),
        gen_busy: m(&|r| r.gen_cpu_ns as f64 / r.wall_ns as f64),
        server_sys: m(&|r| {
            r.server_sys_ticks as f64 / (r.server_user_ticks + r.server_sys_ticks).max(1) as f64
        }),
        core_per_rt_ns: m(&|r| r.core_busy_ns as f64 / r.rts as f64),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("__serve") => {
            return serve_main(&args[1], args[2].parse().expect("conns"));
        }
        Some("__generate") => return generate_main(&args[1..]),
        _ => {}
    }
    let cfg = parse(&args);
    self_check();
    let raw_path = cfg.out.replace(".csv", "") + "_raw.csv";
    let mut raw = String::from(
        "round,contender,size,conns,rts,wall_ns,server_cpu_ns,gen_cpu_ns,p50_ns,p99_ns,server_user_ticks,server_sys_ticks,total_rts,server_pid,core_busy_ns\n",
    );
    let mut runs: BTreeMap<(String, usize, usize), Vec<GenResult>> = BTreeMap::new();
    let started = Instant::now();
    for round in 0..cfg.rounds {
        for &size in &cfg.sizes {
            for &conns in &cfg.conns {
                let k = cfg.contenders.len();
                for i in 0..k {
                    let contender = &cfg.contenders[(i + round) % k];
                    let (r, pid) = measure(&cfg, contender, conns, size)
                        .unwrap_or_else(|e| die(&format!("{e} ({conns} connections, {size} B)")));
                    eprintln!(
                        "[{:>5.0}s] round {round} {contender:>11} {size:>5} B {conns:>6} conns: {:>7.0} ns CPU/rt, {:>8.0} rt/s, p99 {:>8.1} us, generator {:>3.0}% busy",
                        started.elapsed().as_secs_f64(),
                        r.server_cpu_ns as f64 / r.rts as f64,
                        r.rts as f64 * 1e9 / r.wall_ns as f64,
                        r.p99_ns as f64 / 1e3,
                        r.gen_cpu_ns as f64 * 100.0 / r.wall_ns as f64,
                    );
                    raw += &format!(
                        "{round},{contender},{size},{conns},{},{},{},{},{},{},{},{},{},{},{}\n",
                        r.rts,
                        r.wall_ns,
                        r.server_cpu_ns,
                        r.gen_cpu_ns,
                        r.p50_ns,
                        r.p99_ns,
                        r.server_user_ticks,
                        r.server_sys_ticks,
                        r.total_rts,
                        pid,
                        r.core_busy_ns
                    );
                    runs.entry((contender.clone(), size, conns))
                        .or_default()
                        .push(r);
                }
            }
        }
    }
    let cells: BTreeMap<_, Cell> = runs.iter().map(|(k, v)| (k.clone(), cell(v))).collect();

    // The human table, one block per message size and connection count.
    println!(
        "\nnet_echo: medians of {} round(s), {} ms windows; server on core 0, generator on core 1",
        cfg.rounds, cfg.measure_ms
    );
    println!(
        "{:>6} {:>6} {:<12} {:>10} {:>8} {:>10} {:>8} {:>10} {:>9} {:>9} {:>7} {:>7} {:>7}",
        "size",
        "conns",
        "contender",
        "CPU/rt ns",
        "x tokio",
        "core/rt ns",
        "x tokio",
        "rt/s",
        "p50 us",
        "p99 us",
        "server",
        "kernel",
        "gen"
    );
    let mut csv = String::from(
        "contender,size,conns,cpu_per_rt_ns,ratio_to_tokio,rt_per_s,p50_us,p99_us,server_busy,gen_busy,rounds,server_kernel_share,core_per_rt_ns,core_ratio_to_tokio\n",
    );
    for &size in &cfg.sizes {
        for &conns in &cfg.conns {
            let tokio = cells.get(&("tokio".to_string(), size, conns)).copied();
            for c in &cfg.contenders {
                let x = cells[&(c.clone(), size, conns)];
                let ratio = tokio.map_or(f64::NAN, |t| x.cpu_per_rt_ns / t.cpu_per_rt_ns);
                let core_ratio = tokio.map_or(f64::NAN, |t| x.core_per_rt_ns / t.core_per_rt_ns);
                println!(
                    "{:>6} {:>6} {:<12} {:>10.0} {:>8.2} {:>10.0} {:>8.2} {:>10.0} {:>9.1} {:>9.1} {:>6.0}% {:>6.0}% {:>6.0}%",
                    size,
                    conns,
                    c,
                    x.cpu_per_rt_ns,
                    ratio,
                    x.core_per_rt_ns,
                    core_ratio,
                    x.rt_per_s,
                    x.p50_us,
                    x.p99_us,
                    x.server_busy * 100.0,
                    x.server_sys * 100.0,
                    x.gen_busy * 100.0
                );
            }
        }
    }
    // Sorted by contender, then size, then connections, so that each
    // chart line is one contiguous run of rows.
    for ((c, size, conns), x) in &cells {
        let tokio = cells.get(&("tokio".to_string(), *size, *conns));
        let ratio = tokio.map_or(f64::NAN, |t| x.cpu_per_rt_ns / t.cpu_per_rt_ns);
        let core_ratio = tokio.map_or(f64::NAN, |t| x.core_per_rt_ns / t.core_per_rt_ns);
        csv += &format!(
            "{c},{size},{conns},{:.1},{:.3},{:.0},{:.2},{:.2},{:.3},{:.3},{},{:.3},{:.1},{:.3}\n",
            x.cpu_per_rt_ns,
            ratio,
            x.rt_per_s,
            x.p50_us,
            x.p99_us,
            x.server_busy,
            x.gen_busy,
            runs[&(c.clone(), *size, *conns)].len(),
            x.server_sys,
            x.core_per_rt_ns,
            core_ratio
        );
    }
    // The issue's bound: CPU per round trip grows at most 1.5x from 64 to
    // the largest connection count.
    if let Some(&top) = cfg.conns.iter().max().filter(|&&m| m > 64) {
        if cfg.conns.contains(&64) {
            println!("\nCPU/rt growth from 64 to {top} connections (bound: 1.5x):");
            for &size in &cfg.sizes {
                for c in &cfg.contenders {
                    let a = cells[&(c.clone(), size, 64)].cpu_per_rt_ns;
                    let b = cells[&(c.clone(), size, top)].cpu_per_rt_ns;
                    println!("  {size:>5} B {c:<12} {:.2}x", b / a);
                }
            }
        }
    }
    if let Some(dir) = std::path::Path::new(&cfg.out).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&cfg.out, csv).unwrap_or_else(|e| die(&format!("{}: {e}", cfg.out)));
    std::fs::write(&raw_path, raw).unwrap_or_else(|e| die(&format!("{raw_path}: {e}")));
    println!("\nwrote {} and {}", cfg.out, raw_path);
}
