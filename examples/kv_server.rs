//! A line-based key-value service: one task per connection at Normal,
//! an admin port served at High, bulk work (SCAN) in Low child tasks, an
//! idle reaper (each wait for a request is bounded by `cx.timeout`), and
//! graceful shutdown on SIGINT/SIGTERM or the admin command `SHUTDOWN`
//! (idle connections are closed, a request in progress is answered).
//!
//! Protocol, one request per line, one reply line each:
//!
//! ```text
//! SET key value...  -> OK
//! GET key           -> VALUE value... | NOT_FOUND
//! DEL key           -> DELETED | NOT_FOUND
//! SCAN prefix       -> SCAN count bytes digest   (computed at Low priority)
//! QUIT              -> BYE
//! admin port: STATS -> STATS open=N accepted=N reaped=N keys=N
//!             SHUTDOWN -> SHUTTING DOWN
//! an idle connection is sent "BYE idle" and closed
//! ```
//!
//! `cargo run --release --example kv_server -- --addr 127.0.0.1:7070
//! --admin 127.0.0.1:7071 --idle-ms 30000` serves until a signal or
//! `SHUTDOWN`. `--self-test N` serves on free ports and runs a client in
//! the same process: N connections (most idle, pinging now and then; some
//! silent, which the reaper must close; 32 busy with checked SET/GET/DEL/
//! SCAN, requests split across packets and pipelined, 100 KB values),
//! then `SHUTDOWN` on the admin port, and checks that every connection is
//! closed; the process exits 0 (what CI runs).

#[path = "common/args.rs"]
mod args;
#[path = "common/conns.rs"]
mod conns;
#[path = "common/signal.rs"]
mod signal;

use args::Args;
use conns::{Conn, Conns};
use monad_async::io::{BufStream, TcpListener, TcpStream};
use monad_async::sync::Notify;
use monad_async::{Executor, Priority, TaskContext};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{BufRead, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A request line longer than this closes the connection.
const MAX_LINE: u64 = 1 << 20;

struct Server {
    store: RefCell<HashMap<String, String>>,
    conns: Rc<Conns>,
    admin_conns: Rc<Conns>,
    idle: Duration,
    reaped: Cell<u64>,
    shutdown: Notify,
}

fn main() -> std::io::Result<()> {
    let args = Args::from_env();
    let self_test = args.self_test();
    let addr = args.addr("--addr");
    let admin_addr = args.addr("--admin");
    let default_idle = if self_test.is_some() { 2000 } else { 30_000 };
    let idle = Duration::from_millis(
        args.flag("--idle-ms")
            .map_or(default_idle, |v| v.parse().expect("--idle-ms MS")),
    );

    let signals = signal::install()?;
    let ex = Executor::new()?;
    let listener = TcpListener::bind(addr)?;
    let admin = TcpListener::bind(admin_addr)?;
    let (addr, admin_addr) = (listener.local_addr()?, admin.local_addr()?);
    println!("kv server on {addr}, admin on {admin_addr}, idle timeout {idle:?}");
    let client = self_test.map(|n| {
        std::thread::spawn(move || {
            conns::self_test(move || self_test_client(addr, admin_addr, n, idle))
        })
    });

    let srv = Rc::new(Server {
        store: RefCell::new(HashMap::new()),
        conns: Rc::new(Conns::default()),
        admin_conns: Rc::new(Conns::default()),
        idle,
        reaped: Cell::new(0),
        shutdown: Notify::new(),
    });
    let s = Rc::clone(&srv);
    let acceptor = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        loop {
            let (stream, _) = listener.accept(cx)?; // ECANCELED at shutdown
            stream.set_nodelay(true)?;
            let srv = Rc::clone(&s);
            s.conns.spawn(cx, Priority::Normal, move |cx, conn| {
                if let Err(e) = serve(cx, stream, conn, &srv) {
                    // Cancelled at shutdown, or a peer that reset: the
                    // connection ends either way.
                    if e.raw_os_error() != Some(libc::ECANCELED) {
                        eprintln!("connection: {e}");
                    }
                }
            })?;
        }
    });
    let s = Rc::clone(&srv);
    let admin_acceptor = ex.spawn(Priority::High, move |cx| -> std::io::Result<()> {
        loop {
            let (stream, _) = admin.accept(cx)?;
            let srv = Rc::clone(&s);
            s.admin_conns.spawn(cx, Priority::High, move |cx, conn| {
                let _ = serve_admin(cx, stream, conn, &srv);
            })?;
        }
    });
    let s = Rc::clone(&srv);
    // Waits for long: at High it would make every Normal slice check the
    // ring first (a system call); a shutdown can start a slice later.
    let signal_waiter = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        signal::wait(cx, &signals)?;
        println!("signal: shutting down");
        s.shutdown.notify_one();
        Ok(())
    });
    let s = Rc::clone(&srv);
    ex.spawn(Priority::High, move |cx| -> std::io::Result<()> {
        s.shutdown.notified()?;
        let start = Instant::now();
        let open = s.conns.open();
        for h in [&acceptor, &admin_acceptor, &signal_waiter] {
            h.cancel()?;
        }
        s.conns.stop(cx);
        s.admin_conns.stop(cx);
        println!(
            "shutdown: {open} connections closed in {:?}",
            start.elapsed()
        );
        Ok(())
    });
    ex.run_until_idle()?; // until the shutdown is over
    println!(
        "stopped: {} connections served, {} reaped idle, {} keys",
        srv.conns.accepted.get(),
        srv.reaped.get(),
        srv.store.borrow().len()
    );
    conns::finish_self_test(client);
    Ok(())
}

/// One client connection: requests until QUIT, end of stream, the idle
/// timeout or the shutdown.
fn serve(
    cx: &mut TaskContext<'_>,
    s: TcpStream,
    conn: &Conn,
    srv: &Rc<Server>,
) -> std::io::Result<()> {
    let mut stream = BufStream::new(s); // the read buffer outlives requests
    let mut line = String::new();
    loop {
        line.clear();
        let r = conn.idle(cx, |cx| {
            cx.timeout(srv.idle, |cx| {
                stream.io(cx).take(MAX_LINE).read_line(&mut line)
            })
        });
        match r {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                srv.reaped.set(srv.reaped.get() + 1);
                return stream.io(cx).write_all(b"BYE idle\n");
            }
            Err(e) => return Err(e),
        }
        if !line.ends_with('\n') {
            return stream.io(cx).write_all(b"ERR line too long or cut\n");
        }
        let (reply, quit) = request(cx, srv, line.trim_end_matches(['\r', '\n']))?;
        stream.io(cx).write_all(reply.as_bytes())?;
        if quit || conn.stopping() {
            return Ok(());
        }
    }
}

/// The reply to one request, and whether to close after it.
fn request(
    cx: &mut TaskContext<'_>,
    srv: &Rc<Server>,
    line: &str,
) -> std::io::Result<(String, bool)> {
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    let reply = match cmd {
        "SET" => match rest.split_once(' ') {
            Some((k, v)) => {
                srv.store.borrow_mut().insert(k.to_owned(), v.to_owned());
                "OK\n".to_owned()
            }
            None => "ERR usage: SET key value\n".to_owned(),
        },
        "GET" => match srv.store.borrow().get(rest) {
            Some(v) => format!("VALUE {v}\n"),
            None => "NOT_FOUND\n".to_owned(),
        },
        "DEL" => match srv.store.borrow_mut().remove(rest) {
            Some(_) => "DELETED\n".to_owned(),
            None => "NOT_FOUND\n".to_owned(),
        },
        "SCAN" => {
            // A snapshot (cheap copies), then the CPU work in a Low child
            // task, which yields so Normal requests go first; this
            // connection waits for it (parked), the others do not.
            let mut items: Vec<(String, String)> = srv
                .store
                .borrow()
                .iter()
                .filter(|(k, _)| k.starts_with(rest))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let bulk = cx.spawn(Priority::Low, move |cx| -> std::io::Result<String> {
                items.sort_unstable();
                let bytes: usize = items.iter().map(|(_, v)| v.len()).sum();
                let mut digest = 0u64;
                for (i, (k, v)) in items.iter().enumerate() {
                    digest = scan_digest(digest, k, v);
                    if i % 64 == 63 {
                        cx.yield_now()?;
                    }
                }
                Ok(format!("SCAN {} {bytes} {digest:016x}\n", items.len()))
            })?;
            bulk.join().map_err(std::io::Error::from)??
        }
        "QUIT" => return Ok(("BYE\n".to_owned(), true)),
        _ => "ERR unknown command\n".to_owned(),
    };
    Ok((reply, false))
}

/// The SCAN digest: FNV-1a over key and value, 16 rounds (CPU work).
fn scan_digest(mut h: u64, k: &str, v: &str) -> u64 {
    for _ in 0..16 {
        for &b in k.as_bytes().iter().chain(b"=").chain(v.as_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

/// One admin connection (High): STATS and SHUTDOWN.
fn serve_admin(
    cx: &mut TaskContext<'_>,
    s: TcpStream,
    conn: &Conn,
    srv: &Rc<Server>,
) -> std::io::Result<()> {
    let mut stream = BufStream::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        if conn.idle(cx, |cx| stream.io(cx).take(1024).read_line(&mut line))? == 0 {
            return Ok(());
        }
        let reply = match line.trim_end() {
            "STATS" => format!(
                "STATS open={} accepted={} reaped={} keys={}\n",
                srv.conns.open(),
                srv.conns.accepted.get(),
                srv.reaped.get(),
                srv.store.borrow().len()
            ),
            "SHUTDOWN" => {
                srv.shutdown.notify_one();
                "SHUTTING DOWN\n".to_owned()
            }
            _ => "ERR unknown command\n".to_owned(),
        };
        stream.io(cx).write_all(reply.as_bytes())?;
        if conn.stopping() {
            return Ok(());
        }
    }
}

// ---- the self-test client (plain std sockets on other threads) ----

struct Client {
    r: std::io::BufReader<std::net::TcpStream>,
    w: std::net::TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let w = std::net::TcpStream::connect(addr).expect("connect");
        w.set_nodelay(true).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Client {
            r: std::io::BufReader::new(w.try_clone().unwrap()),
            w,
        }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).expect("reply");
        l
    }

    fn call(&mut self, req: &str) -> String {
        self.w.write_all(req.as_bytes()).unwrap();
        self.line()
    }

    /// End of stream (and nothing before it).
    fn expect_closed(mut self) {
        let mut rest = String::new();
        self.r.read_to_string(&mut rest).expect("closed");
        assert!(rest.is_empty(), "unexpected: {rest:?}");
    }
}

fn self_test_client(addr: SocketAddr, admin: SocketAddr, n: usize, idle: Duration) -> String {
    const BUSY_THREADS: usize = 4;
    const BUSY_PER_THREAD: usize = 8;
    const REQUESTS: usize = 300;
    let silent_n = (n / 16).max(1);
    let idle_n = n.saturating_sub(silent_n + BUSY_THREADS * BUSY_PER_THREAD);
    let started = Instant::now();
    let silent: Vec<Client> = (0..silent_n).map(|_| Client::connect(addr)).collect();
    let mut idlers: Vec<Client> = (0..idle_n).map(|_| Client::connect(addr)).collect();
    for (i, c) in idlers.iter_mut().enumerate() {
        assert_eq!(c.call(&format!("SET idle-{i} {i}\n")), "OK\n");
    }
    let busy_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The idlers ping every idle/8, so the reaper leaves them alone.
    let pinger = {
        let done = Arc::clone(&busy_done);
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for (i, c) in idlers.iter_mut().enumerate() {
                    assert_eq!(c.call(&format!("GET idle-{i}\n")), format!("VALUE {i}\n"));
                }
                std::thread::sleep(idle / 8);
            }
            idlers
        })
    };
    let busy: Vec<_> = (0..BUSY_THREADS)
        .map(|t| std::thread::spawn(move || busy_client(addr, t, BUSY_PER_THREAD, REQUESTS)))
        .collect();
    let mut requests = 0;
    for b in busy {
        requests += b.join().unwrap();
    }
    busy_done.store(true, std::sync::atomic::Ordering::Relaxed);
    let idlers = pinger.join().unwrap();
    // The silent ones: reaped after the idle timeout, not before.
    for c in silent {
        let mut c = c;
        assert_eq!(c.line(), "BYE idle\n");
        c.expect_closed();
    }
    assert!(started.elapsed() >= idle);
    let mut a = Client::connect(admin);
    let stats = a.call("STATS\n");
    let field = |name: &str| -> usize {
        stats
            .split_whitespace()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {stats:?}"))
    };
    assert_eq!(field("reaped"), silent_n, "{stats}");
    assert_eq!(field("open"), idle_n, "{stats}");
    assert_eq!(field("accepted"), n, "{stats}");
    assert_eq!(a.call("SHUTDOWN\n"), "SHUTTING DOWN\n");
    a.expect_closed();
    for c in idlers {
        c.expect_closed();
    }
    format!(
        "{n} connections: {idle_n} idle until the shutdown, {silent_n} reaped, \
         {} busy with {requests} checked requests",
        BUSY_THREADS * BUSY_PER_THREAD
    )
}

/// `conns` connections of one thread, `requests` checked requests each
/// against a model of their own keys; returns the requests made.
fn busy_client(addr: SocketAddr, t: usize, conns: usize, requests: usize) -> usize {
    let mut cs: Vec<Client> = (0..conns).map(|_| Client::connect(addr)).collect();
    let mut models: Vec<HashMap<String, String>> = vec![HashMap::new(); conns];
    let mut made = 0;
    for r in 0..requests {
        for (i, (c, model)) in cs.iter_mut().zip(&mut models).enumerate() {
            let key = format!("t{t}c{i}k{}", (r * 7) % 23);
            let op = (r + i) % 10;
            match op {
                0..=3 => {
                    let v = if r % 97 == 5 {
                        "L".repeat(100_000) // a long line
                    } else {
                        format!("v{r} of {key} with spaces")
                    };
                    let req = format!("SET {key} {v}\n");
                    // Split across packets.
                    let (x, y) = req.as_bytes().split_at(req.len() / 2);
                    c.w.write_all(x).unwrap();
                    c.w.flush().unwrap();
                    std::thread::sleep(Duration::from_micros(50));
                    c.w.write_all(y).unwrap();
                    assert_eq!(c.line(), "OK\n");
                    model.insert(key, v);
                }
                4..=6 => {
                    let expect = model
                        .get(&key)
                        .map_or("NOT_FOUND\n".to_owned(), |v| format!("VALUE {v}\n"));
                    assert_eq!(c.call(&format!("GET {key}\n")), expect);
                }
                7 => {
                    let expect = if model.remove(&key).is_some() {
                        "DELETED\n"
                    } else {
                        "NOT_FOUND\n"
                    };
                    assert_eq!(c.call(&format!("DEL {key}\n")), expect);
                }
                8 => {
                    // Three requests in one packet.
                    let k2 = format!("t{t}c{i}p");
                    c.w.write_all(format!("SET {k2} {r}\nGET {k2}\nDEL {k2}\n").as_bytes())
                        .unwrap();
                    assert_eq!(c.line(), "OK\n");
                    assert_eq!(c.line(), format!("VALUE {r}\n"));
                    assert_eq!(c.line(), "DELETED\n");
                    made += 2;
                }
                _ => {
                    let prefix = format!("t{t}c{i}k");
                    let mut items: Vec<_> = model.iter().collect();
                    items.sort_unstable();
                    let bytes: usize = items.iter().map(|(_, v)| v.len()).sum();
                    let digest = items.iter().fold(0, |h, (k, v)| scan_digest(h, k, v));
                    let expect = format!("SCAN {} {bytes} {digest:016x}\n", items.len());
                    assert_eq!(c.call(&format!("SCAN {prefix}\n")), expect);
                }
            }
            made += 1;
        }
    }
    for mut c in cs {
        assert_eq!(c.call("QUIT\n"), "BYE\n");
        c.expect_closed();
    }
    made
}
