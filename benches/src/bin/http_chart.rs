//! Summarises `benches/http/run.sh`'s results: the median of the rounds
//! for each server and load, printed as a Markdown table with the ratios
//! of monad-async to the peers, and drawn as an SVG (requests/s and
//! server CPU per request, grouped bars; no dependencies).
//!
//! `http_chart benches/http/results.csv docs/bench/http.svg`

use std::collections::BTreeMap;
use std::fmt::Write as _;

const SERVERS: [&str; 3] = ["monad-async", "hyper", "may_minihttp"];
const COLOURS: [&str; 3] = ["#d95f02", "#1b9e77", "#7570b3"];

/// One run: a line of results.csv.
struct Run {
    server: String,
    conns: u32,
    depth: u32,
    rps: f64,
    p99_us: f64,
    cpu_us: f64,
    wrk_cpu: f64,
    /// wrk's CPU time per request, µs (its CPU share over requests/s).
    wrk_us: f64,
    errors: u64,
}

/// Medians over the rounds of one server under one load.
#[derive(Clone, Copy, Default)]
struct Summary {
    rps: f64,
    p99_us: f64,
    cpu_us: f64,
    wrk_cpu: f64,
    wrk_us: f64,
    errors: u64,
    rounds: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (csv, svg) = match &args[..] {
        [_, csv, svg] => (csv, svg),
        _ => {
            eprintln!("usage: http_chart RESULTS.csv OUT.svg");
            std::process::exit(2);
        }
    };
    let text = std::fs::read_to_string(csv).expect("read the results");
    let runs: Vec<Run> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let num = |i: usize| f[i].parse::<f64>().unwrap_or(f64::NAN);
            Run {
                server: f[1].to_string(),
                conns: f[2].parse().expect("connections"),
                depth: f[3].parse().expect("pipeline"),
                rps: num(4),
                p99_us: num(5),
                cpu_us: num(8),
                wrk_cpu: num(9),
                wrk_us: num(9) / 100.0 / num(4) * 1e6,
                errors: f[10].parse().unwrap_or(0),
            }
        })
        .collect();

    // (conns, depth) -> server -> summary
    let mut loads: BTreeMap<(u32, u32), BTreeMap<String, Summary>> = BTreeMap::new();
    let keys: Vec<(u32, u32, String)> = {
        let mut k: Vec<_> = runs
            .iter()
            .map(|r| (r.depth, r.conns, r.server.clone()))
            .collect();
        k.sort();
        k.dedup();
        k.into_iter().map(|(d, c, s)| (c, d, s)).collect()
    };
    for (conns, depth, server) in keys {
        let mine: Vec<&Run> = runs
            .iter()
            .filter(|r| r.conns == conns && r.depth == depth && r.server == server)
            .collect();
        let pick = |f: fn(&Run) -> f64| median(mine.iter().map(|r| f(r)).collect());
        let s = Summary {
            rps: pick(|r| r.rps),
            p99_us: pick(|r| r.p99_us),
            cpu_us: pick(|r| r.cpu_us),
            wrk_cpu: pick(|r| r.wrk_cpu),
            wrk_us: pick(|r| r.wrk_us),
            errors: mine.iter().map(|r| r.errors).sum(),
            rounds: mine.len(),
        };
        loads.entry((depth, conns)).or_default().insert(server, s);
    }

    println!(
        "| load | server | requests/s | p99 | server CPU / request | wrk CPU | wrk CPU / request | errors | rounds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for ((depth, conns), by) in &loads {
        let load = label(*conns, *depth);
        let ours = by.get(SERVERS[0]).copied();
        for name in SERVERS {
            let Some(s) = by.get(name) else { continue };
            let ratio = |x: f64, y: f64| {
                if name == SERVERS[0] {
                    String::new()
                } else {
                    format!(" ({:.2}x)", x / y)
                }
            };
            let (r1, r2, r3) = match ours {
                Some(o) => (
                    ratio(o.rps, s.rps),
                    ratio(s.p99_us, o.p99_us),
                    ratio(s.cpu_us, o.cpu_us),
                ),
                None => Default::default(),
            };
            println!(
                "| {load} | {name} | {:.0}{r1} | {}{r2} | {:.2} µs{r3} | {:.0}% | {:.2} µs | {} | {} |",
                s.rps,
                fmt_us(s.p99_us),
                s.cpu_us,
                s.wrk_cpu,
                s.wrk_us,
                s.errors,
                s.rounds
            );
        }
    }
    println!();
    println!(
        "Ratios in brackets: monad-async's requests/s over the peer's, and the \
         peer's p99 and CPU per request over monad-async's (above 1: monad-async ahead). \
         wrk CPU / request: wrk's CPU share over requests/s; where it exceeds the server's, \
         one wrk core saturates before one server core would."
    );

    std::fs::write(svg, draw(&loads)).expect("write the chart");
    eprintln!("wrote {svg}");
}

fn label(conns: u32, depth: u32) -> String {
    if depth > 1 {
        format!("{conns} conns, pipelined {depth}")
    } else {
        format!("{conns} conns")
    }
}

fn fmt_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// Two panels of grouped bars: requests/s, and server CPU µs per request.
fn draw(loads: &BTreeMap<(u32, u32), BTreeMap<String, Summary>>) -> String {
    let (w, h) = (1000.0, 420.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">HTTP/1.1 plaintext under wrk, one server core (median of rounds)</text>
"#,
        w / 2.0
    );
    type Value = fn(&Summary) -> f64;
    let panels: [(&str, Value, f64); 2] = [
        ("requests/s (higher is better)", |s| s.rps, 20.0),
        (
            "server CPU µs per request (lower is better)",
            |s| s.cpu_us,
            520.0,
        ),
    ];
    for (title, value, x0) in panels {
        let (pw, top, bottom) = (460.0, 60.0, 350.0);
        let max = loads
            .values()
            .flat_map(|by| by.values().map(value))
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            .max(1e-9);
        let scale = nice(max);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="48" text-anchor="middle" font-size="13">{title}</text>"#,
            x0 + pw / 2.0
        );
        for i in 0..=4 {
            let v = scale * f64::from(i) / 4.0;
            let y = bottom - (bottom - top) * f64::from(i) / 4.0;
            let _ = writeln!(
                s,
                r##"<line x1="{}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end" font-size="10">{}</text>"##,
                x0 + 50.0,
                x0 + pw,
                x0 + 46.0,
                y + 3.0,
                short(v)
            );
        }
        let groups = loads.len().max(1) as f64;
        let gw = (pw - 60.0) / groups;
        let bw = gw * 0.8 / SERVERS.len() as f64;
        for (g, ((depth, conns), by)) in loads.iter().enumerate() {
            let gx = x0 + 60.0 + gw * g as f64;
            for (k, name) in SERVERS.iter().enumerate() {
                let Some(v) = by.get(*name).map(value).filter(|v| v.is_finite()) else {
                    continue;
                };
                let bh = (bottom - top) * v / scale;
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{name}: {}</title></rect>"#,
                    gx + bw * k as f64,
                    bottom - bh,
                    bw - 2.0,
                    bh,
                    COLOURS[k],
                    short(v)
                );
            }
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{}" text-anchor="middle" font-size="10">{}</text>"#,
                gx + gw * 0.4,
                bottom + 15.0,
                if *depth > 1 {
                    format!("{conns} conns, x{depth}")
                } else {
                    format!("{conns} conns")
                }
            );
        }
    }
    for (k, name) in SERVERS.iter().enumerate() {
        let x = 300.0 + 150.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="392" width="12" height="12" fill="{}"/><text x="{}" y="402">{name}</text>"#,
            COLOURS[k],
            x + 16.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A round axis maximum at or above `max`.
fn nice(max: f64) -> f64 {
    let p = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= max {
            return m * p;
        }
    }
    10.0 * p
}

fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
