//! A keep-alive HTTP/1.1 server in the TechEmpower "plaintext" style: one
//! task per connection on one executor, requests parsed with `httparse`.
//!
//! * `GET /plaintext` (or `HEAD`) -> `200`, `Hello, World!`, with `Server`,
//!   `Date`, `Content-Type` and `Content-Length`; any other path -> `404`;
//!   other methods -> `405` (their bodies are read and dropped first).
//! * Keep-alive by default on HTTP/1.1; HTTP/1.0 only with
//!   `Connection: keep-alive`; `Connection: close` is honoured (the reply
//!   says so, and later requests on the connection are not answered).
//! * Pipelining: every complete request in what one receive brought is
//!   answered, in order, and the replies leave in one write per batch.
//! * Request bodies with `Content-Length` are consumed, even across
//!   receives; `Transfer-Encoding` bodies get `501` and the connection is
//!   closed (this demo has no chunked decoder).
//! * A malformed request gets `400`, a head with more than 32 headers or
//!   over 8 KiB gets `431`; both close the connection.
//!
//! Each connection owns a 16 KiB receive buffer and a reply buffer, both
//! reused for every request; the reply of a batch is written with one
//! send. A ticker task renders the `Date` text, and the whole common
//! reply, once a second.
//!
//! `cargo run --release --example http_server -- --addr 127.0.0.1:8080`
//! serves until SIGINT/SIGTERM (graceful: connections waiting for a
//! request are closed, one being answered finishes first). With
//! `--self-test N` it serves on a free port and a client in the same
//! process opens N connections at once, all of them checking keep-alive,
//! pipelining (16 mixed requests in one write), `Connection: close`,
//! HTTP/1.0, `404`, `405` with a body, `400`, `431`, `501`, requests split
//! across packets and bodies spread over many receives; then it sends
//! SIGTERM while 16 more connections are busy pipelining, and checks
//! that every connection is closed, the busy ones between two whole
//! replies; the process exits 0 (what CI runs). `benches/http/run.sh` runs it under `wrk` beside
//! hyper and may_minihttp (BENCHMARKS.md).

#[path = "common/args.rs"]
mod args;
#[path = "common/conns.rs"]
mod conns;
#[path = "common/signal.rs"]
mod signal;

use args::Args;
use conns::{Conn, Conns};
use monad_async::io::{TcpListener, TcpStream};
use monad_async::{Executor, Priority, TaskContext};
use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The body of `/plaintext`, the same bytes as the peers in `benches/`.
const BODY: &[u8] = b"Hello, World!";
/// The `Server` header's value: the same for the three servers of the
/// benchmark (may_minihttp's fixed one), so that every reply has the
/// same size.
const SERVER: &[u8] = b"M";
/// Receive buffer per connection: room for a full head plus pipelined
/// requests behind it.
const READ_BUF: usize = 16 * 1024;
/// A request head longer than this gets 431.
const MAX_HEAD: usize = 8 * 1024;
/// A request with more headers than this gets 431.
const MAX_HEADERS: usize = 32;
/// How long, and for how many bytes, a connection being closed after an
/// error still reads what the client sends (so that the kernel does not
/// answer unread data with a reset that destroys our reply in flight).
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 256 * 1024;

fn main() -> io::Result<()> {
    let args = Args::from_env();
    let self_test = args.self_test();
    let addr = args.addr("--addr");

    let signals = signal::install()?;
    let ex = Executor::new()?;
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    println!("http server on http://{addr}/plaintext");
    let client = self_test
        .map(|n| std::thread::spawn(move || conns::self_test(move || self_test_client(addr, n))));

    let conns = Rc::new(Conns::default());
    let clock = Rc::new(Clock::default());
    clock.tick();
    let k = Rc::clone(&clock);
    // The ticker, the acceptor and the signal waiter wait for long spells
    // at the connections' priority: a High operation in flight makes the
    // executor check the ring (a system call) before every Normal slice.
    let ticker = ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        loop {
            // Wake just after each second starts, and render its Date.
            let into = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            cx.sleep(Duration::from_nanos(u64::from(1_000_000_000 - into)))?;
            k.tick();
        }
    });
    let c = Rc::clone(&conns);
    let acceptor = ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        loop {
            let (s, _peer) = listener.accept(cx)?; // ECANCELED at shutdown
            s.set_nodelay(true)?;
            let clock = Rc::clone(&clock);
            c.spawn(cx, Priority::Normal, move |cx, conn| {
                let _ = serve(cx, &s, conn, &clock);
            })?;
        }
    });
    let c = Rc::clone(&conns);
    ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        signal::wait(cx, &signals)?;
        println!("signal: shutting down ({} connections open)", c.open());
        acceptor.cancel()?;
        c.stop(cx);
        ticker.cancel()?;
        Ok(())
    });
    conns::run_to_end(&ex, &conns, client)
}

/// Serves one connection until the peer closes, a request asks to close,
/// an error, or the server stops.
fn serve(cx: &mut TaskContext<'_>, s: &TcpStream, conn: &Conn, clock: &Clock) -> io::Result<()> {
    let mut rbuf = vec![0u8; READ_BUF];
    let mut wbuf: Vec<u8> = Vec::with_capacity(4096);
    // Received and not yet parsed: rbuf[start..end].
    let (mut start, mut end) = (0usize, 0usize);
    // Body bytes of the last request still to be dropped.
    let mut skip = 0u64;
    loop {
        // Keep a partial request, at the front, and receive behind it.
        if start > 0 {
            rbuf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = conn.idle(cx, |cx| s.recv(cx, &mut rbuf[end..]))?;
        if n == 0 {
            return Ok(()); // the client hung up
        }
        end += n;

        let mut close = false;
        let mut linger = false;
        // This second's Date and `200 Hello` reply; borrowed only while
        // parsing (no suspension: the ticker cannot run meanwhile).
        let now = clock.date.get();
        let hello = clock.hello.borrow();
        while start < end {
            if skip > 0 {
                let k = skip.min((end - start) as u64);
                start += k as usize;
                skip -= k;
                continue;
            }
            // Uninitialised: filling 32 empty headers per request costs
            // more than parsing a short one.
            let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut []);
            match req.parse_with_uninit_headers(&rbuf[start..end], &mut headers) {
                Ok(httparse::Status::Complete(len)) => {
                    start += len;
                    match answer(&req, &mut wbuf, &now, &hello) {
                        Ok(next) => {
                            skip = next.body;
                            if !next.keep_alive {
                                close = true;
                                break;
                            }
                        }
                        Err(status) => {
                            reply_error(&mut wbuf, &now, status);
                            (close, linger) = (true, true);
                            break;
                        }
                    }
                }
                Ok(httparse::Status::Partial) => {
                    if end - start >= MAX_HEAD {
                        reply_error(&mut wbuf, &now, Status::HeadTooLarge);
                        (close, linger) = (true, true);
                    }
                    break;
                }
                Err(httparse::Error::TooManyHeaders) => {
                    reply_error(&mut wbuf, &now, Status::HeadTooLarge);
                    (close, linger) = (true, true);
                    break;
                }
                Err(_) => {
                    reply_error(&mut wbuf, &now, Status::BadRequest);
                    (close, linger) = (true, true);
                    break;
                }
            }
        }
        drop(hello);
        if start == end {
            (start, end) = (0, 0);
        }
        if !wbuf.is_empty() {
            s.write_all(cx, &wbuf)?; // the whole batch, one send
            wbuf.clear();
        }
        if close {
            // Requests after one that closes are never read: drain them
            // for a while so that closing does not reset the connection
            // under our last reply.
            return if linger || start < end {
                lingering_close(cx, s, &mut rbuf)
            } else {
                Ok(())
            };
        }
        if conn.stopping() {
            return Ok(());
        }
    }
}

/// Sends FIN, then reads and drops what the client still sends, up to
/// `LINGER` and `LINGER_BYTES`, before the socket is closed.
fn lingering_close(cx: &mut TaskContext<'_>, s: &TcpStream, buf: &mut [u8]) -> io::Result<()> {
    s.shutdown(cx, Shutdown::Write)?;
    let mut dropped = 0;
    cx.timeout(LINGER, |cx| {
        while dropped < LINGER_BYTES {
            match s.recv(cx, buf)? {
                0 => break,
                n => dropped += n,
            }
        }
        Ok(())
    })
}

/// An error reply's status; each closes the connection.
#[derive(Clone, Copy, Debug)]
enum Status {
    BadRequest,
    HeadTooLarge,
    NotImplemented,
}

/// What follows a request that was answered.
struct Next {
    /// Body bytes to drop before the next request.
    body: u64,
    keep_alive: bool,
}

/// Appends the reply to one parsed request.
fn answer(
    req: &httparse::Request<'_, '_>,
    w: &mut Vec<u8>,
    date: &[u8; 29],
    hello: &[u8],
) -> Result<Next, Status> {
    let http10 = req.version == Some(0);
    let (mut close, mut keep_alive) = (false, false);
    let mut body: Option<u64> = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(h.value).ok_or(Status::BadRequest)?;
            // Two different lengths: which one frames the next request?
            if body.is_some_and(|b| b != n) {
                return Err(Status::BadRequest);
            }
            body = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Status::NotImplemented);
        }
    }
    let keep = if http10 { keep_alive && !close } else { !close };
    let (status, content): (&[u8], &[u8]) = match (req.method, req.path) {
        (Some("GET" | "HEAD"), Some("/plaintext")) => (b"200 OK", BODY),
        (Some("GET" | "HEAD"), _) => (b"404 Not Found", b"Not Found"),
        _ => (b"405 Method Not Allowed", b"Method Not Allowed"),
    };
    let head_only = req.method == Some("HEAD");
    let connection: &[u8] = match (keep, http10) {
        (false, _) => b"Connection: close\r\n",
        (true, true) => b"Connection: keep-alive\r\n",
        (true, false) => b"",
    };
    if content == BODY && !head_only && connection.is_empty() {
        w.extend_from_slice(hello); // the common case, rendered already
    } else {
        write_reply(w, status, date, connection, content, head_only);
    }
    Ok(Next {
        body: body.unwrap_or(0),
        keep_alive: keep,
    })
}

/// A `Content-Length` value: decimal digits only (no sign, no spaces
/// inside), as RFC 9110 says; `None` if malformed or absurd.
fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

fn reply_error(w: &mut Vec<u8>, date: &[u8; 29], status: Status) {
    let (line, body): (&[u8], &[u8]) = match status {
        Status::BadRequest => (b"400 Bad Request", b"Bad Request"),
        Status::HeadTooLarge => (
            b"431 Request Header Fields Too Large",
            b"Request Header Fields Too Large",
        ),
        Status::NotImplemented => (b"501 Not Implemented", b"Not Implemented"),
    };
    write_reply(w, line, date, b"Connection: close\r\n", body, false);
}

/// Appends one reply: status line, the four headers every reply has, an
/// optional `Connection` header, and the body (left out for `HEAD`).
fn write_reply(
    w: &mut Vec<u8>,
    status: &[u8],
    date: &[u8; 29],
    connection: &[u8],
    body: &[u8],
    head_only: bool,
) {
    w.extend_from_slice(b"HTTP/1.1 ");
    w.extend_from_slice(status);
    w.extend_from_slice(b"\r\nServer: ");
    w.extend_from_slice(SERVER);
    w.extend_from_slice(b"\r\nDate: ");
    w.extend_from_slice(date);
    w.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
    push_decimal(w, body.len());
    w.extend_from_slice(b"\r\n");
    w.extend_from_slice(connection);
    w.extend_from_slice(b"\r\n");
    if !head_only {
        w.extend_from_slice(body);
    }
}

fn push_decimal(w: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    w.extend_from_slice(&digits[i..]);
}

/// The `Date` header's text (RFC 9110 IMF-fixdate) and the whole
/// keep-alive `200 Hello, World!` reply, rendered once a second by a
/// ticker task and shared by the connections of the executor: a request
/// reads no clock and formats nothing.
#[derive(Default)]
struct Clock {
    date: Cell<[u8; 29]>,
    hello: RefCell<Vec<u8>>,
}

impl Clock {
    fn tick(&self) {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let date = imf_fixdate(second);
        self.date.set(date);
        let mut hello = self.hello.borrow_mut();
        hello.clear();
        write_reply(&mut hello, b"200 OK", &date, b"", BODY, false);
    }
}

/// `Thu, 01 Jan 1970 00:00:00 GMT` for a Unix time in seconds.
fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);

    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    let two = |out: &mut [u8; 29], at: usize, v: u64| {
        out[at] = b'0' + (v / 10) as u8;
        out[at + 1] = b'0' + (v % 10) as u8;
    };
    two(&mut out, 5, day);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    two(&mut out, 12, year / 100 % 100);
    two(&mut out, 14, year % 100);
    two(&mut out, 17, rem / 3600);
    two(&mut out, 20, rem / 60 % 60);
    two(&mut out, 23, rem % 60);
    out
}

// ---------------------------------------------------------------------
// The self-test client.

/// One reply as the client reads it.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A client connection with its own receive buffer (replies of a
/// pipelined batch arrive together).
struct Client {
    s: std::net::TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_nodelay(true).unwrap();
        Client { s, buf: Vec::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("send");
    }

    /// Reads one reply; `head` says whether it answers a HEAD (no body).
    fn reply(&mut self, head: bool) -> Reply {
        loop {
            let mut hs = [httparse::EMPTY_HEADER; 16];
            let mut r = httparse::Response::new(&mut hs);
            if let httparse::Status::Complete(len) = r.parse(&self.buf).expect("a valid reply") {
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| {
                        let v = String::from_utf8(h.value.to_vec()).unwrap();
                        (h.name.to_string(), v)
                    })
                    .collect();
                let status = r.code.unwrap();
                let cl: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .expect("Content-Length")
                    .1
                    .parse()
                    .unwrap();
                let body_len = if head { 0 } else { cl };
                while self.buf.len() < len + body_len {
                    self.fill();
                }
                let body = self.buf[len..len + body_len].to_vec();
                self.buf.drain(..len + body_len);
                return Reply {
                    status,
                    headers,
                    body,
                };
            }
            self.fill();
        }
    }

    fn fill(&mut self) {
        assert!(self.fill_or_end(), "connection closed before a whole reply");
    }

    /// Receives more; false once the server has closed the connection
    /// (end of stream, which must come between two replies, or a reset:
    /// the server closed with requests of ours unread).
    fn fill_or_end(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match self.s.read(&mut chunk) {
            Ok(0) => {
                assert!(self.buf.is_empty(), "end of stream inside a reply");
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => false,
            Err(e) => panic!("read a reply: {e}"),
        }
    }

    /// Reads one reply to a GET, or `None` if the server closed first.
    fn try_reply(&mut self) -> Option<Reply> {
        loop {
            let mut hs = [httparse::EMPTY_HEADER; 16];
            if let httparse::Status::Complete(len) = httparse::Response::new(&mut hs)
                .parse(&self.buf)
                .expect("a valid reply")
            {
                if self.buf.len() >= len + BODY.len() {
                    return Some(self.reply(false));
                }
            }
            if !self.fill_or_end() {
                return None;
            }
        }
    }

    /// The server closed the connection, with nothing more sent.
    fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        self.s.read_to_end(&mut rest).expect("closed by the server");
        assert!(
            self.buf.is_empty() && rest.is_empty(),
            "bytes after the last reply: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nAccept: text/plain\r\n\r\n")
}

/// Checks a `200 Hello, World!` (or its HEAD) with the full header set.
fn check_hello(r: &Reply, head: bool) {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-length"), Some("13"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("server"), Some("M"));
    let date = r.header("date").expect("Date");
    assert!(date.len() == 29 && date.ends_with(" GMT"), "Date: {date}");
    assert_eq!(r.body, if head { &b""[..] } else { BODY });
}

/// One connection's script (`i` picks which of the ending cases it
/// ends with); returns how many requests were answered. A keep-alive
/// connection is handed back open.
fn exercise(mut c: Client, i: usize) -> (usize, Option<Client>) {
    let mut answered = 0;
    // Keep-alive: one request at a time.
    for _ in 0..3 {
        c.send(get("/plaintext").as_bytes());
        check_hello(&c.reply(false), false);
        answered += 1;
    }
    // Pipelining: 16 mixed requests in one write, answered in order.
    let mut batch = String::new();
    let mut kinds = Vec::new();
    for k in 0..16 {
        let kind = (i + k) % 5;
        batch.push_str(&match kind {
            0 | 1 => get("/plaintext"),
            2 => get("/nothing/here"),
            3 => "HEAD /plaintext HTTP/1.1\r\nHost: t\r\n\r\n".into(),
            _ => "POST /plaintext HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello=world"
                .into(),
        });
        kinds.push(kind);
    }
    c.send(batch.as_bytes());
    for kind in kinds {
        let r = c.reply(kind == 3);
        match kind {
            0 | 1 => check_hello(&r, false),
            2 => assert_eq!((r.status, &r.body[..]), (404, &b"Not Found"[..])),
            3 => check_hello(&r, true),
            _ => assert_eq!(r.status, 405, "{r:?}"),
        }
        answered += 1;
    }
    // A request split across packets, and a body spread over many
    // receives (larger than the server's buffer), then a GET behind it.
    let req = get("/plaintext");
    let (a, b) = req.as_bytes().split_at(7);
    c.send(a);
    std::thread::sleep(Duration::from_millis(2));
    c.send(b);
    check_hello(&c.reply(false), false);
    let body = vec![b'x'; 40_000];
    c.send(
        format!(
            "POST /upload HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    for piece in body.chunks(7_000) {
        c.send(piece);
    }
    c.send(get("/plaintext").as_bytes());
    assert_eq!(c.reply(false).status, 405);
    check_hello(&c.reply(false), false);
    answered += 3;

    // How this connection ends.
    match i % 8 {
        0 => {
            // Connection: close, with a request pipelined behind it that
            // must not be answered.
            let close = "GET /plaintext HTTP/1.1\r\nConnection: close\r\n\r\n";
            c.send(format!("{close}{}", get("/plaintext")).as_bytes());
            let r = c.reply(false);
            check_hello(&r, false);
            assert_eq!(r.header("connection"), Some("close"));
            c.expect_closed();
            (answered + 1, None)
        }
        1 => {
            // HTTP/1.0 without keep-alive closes after one reply.
            c.send(b"GET /plaintext HTTP/1.0\r\n\r\n");
            check_hello(&c.reply(false), false);
            c.expect_closed();
            (answered + 1, None)
        }
        2 => {
            // HTTP/1.0 with keep-alive stays open.
            for _ in 0..2 {
                c.send(b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
                let r = c.reply(false);
                check_hello(&r, false);
                assert_eq!(r.header("connection"), Some("keep-alive"));
            }
            (answered + 2, Some(c))
        }
        3 => {
            // Malformed: 400, then closed, even with more sent behind it.
            c.send(
                format!(
                    "GET /plaintext HTTP/1.1\r\nno colon here\r\n\r\n{}",
                    get("/")
                )
                .as_bytes(),
            );
            let r = c.reply(false);
            assert_eq!((r.status, r.header("connection")), (400, Some("close")));
            c.expect_closed();
            (answered + 1, None)
        }
        4 => {
            // Too many headers: 431.
            let mut req = String::from("GET /plaintext HTTP/1.1\r\n");
            for h in 0..40 {
                req.push_str(&format!("X-H{h}: v\r\n"));
            }
            c.send(format!("{req}\r\n").as_bytes());
            assert_eq!(c.reply(false).status, 431);
            c.expect_closed();
            (answered + 1, None)
        }
        5 => {
            // A head over 8 KiB: 431, before the head is even complete.
            let big = format!("GET /plaintext HTTP/1.1\r\nX-Big: {}\r\n", "y".repeat(9000));
            c.send(big.as_bytes());
            assert_eq!(c.reply(false).status, 431);
            c.expect_closed();
            (answered + 1, None)
        }
        6 => {
            // A chunked body: 501 (not decoded by this demo), closed.
            c.send(
                b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            );
            assert_eq!(c.reply(false).status, 501);
            c.expect_closed();
            (answered + 1, None)
        }
        _ => (answered, Some(c)), // stays open, idle
    }
}

/// Sends batches of 4 pipelined GETs until the server closes the
/// connection (the shutdown), checking every reply; returns how many.
fn busy_until_closed(mut c: Client, replies: &AtomicUsize) -> usize {
    let batch = get("/plaintext").repeat(4);
    let limit = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    loop {
        assert!(Instant::now() < limit, "still served a minute on");
        if c.s.write_all(batch.as_bytes()).is_err() {
            return n; // closed (EPIPE, ECONNRESET) between two batches
        }
        for _ in 0..4 {
            let Some(r) = c.try_reply() else { return n };
            check_hello(&r, false);
            n += 1;
            replies.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The self-test's client: returns a summary, panics on any wrong reply.
fn self_test_client(addr: SocketAddr, n: usize) -> String {
    // The Date text against known instants (a leap day among them).
    assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(&imf_fixdate(951_868_799), b"Tue, 29 Feb 2000 23:59:59 GMT");
    assert_eq!(
        &imf_fixdate(1_000_000_000),
        b"Sun, 09 Sep 2001 01:46:40 GMT"
    );
    assert_eq!(
        &imf_fixdate(4_102_444_800),
        b"Fri, 01 Jan 2100 00:00:00 GMT"
    );

    // n connections at once, from 8 threads: each thread first opens all
    // of its connections, then runs their scripts one after another while
    // the others wait open.
    let threads = 8;
    let (answered, open): (usize, Vec<Client>) = std::thread::scope(|scope| {
        let ts: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let conns: Vec<(usize, Client)> = (t..n)
                        .step_by(threads)
                        .map(|i| (i, Client::connect(addr)))
                        .collect();
                    let mut answered = 0;
                    let mut open = Vec::new();
                    for (i, c) in conns {
                        let (a, c) = exercise(c, i);
                        answered += a;
                        open.extend(c);
                    }
                    (answered, open)
                })
            })
            .collect();
        ts.into_iter()
            .map(|t| t.join().unwrap())
            .fold((0, Vec::new()), |(a, mut o), (b, p)| {
                o.extend(p);
                (a + b, o)
            })
    });
    // Every connection left open is still served...
    let mut open = open;
    for c in &mut open {
        c.send(get("/plaintext").as_bytes());
        check_hello(&c.reply(false), false);
    }
    let kept = open.len();
    // ...and closed by a graceful shutdown, which comes while 16 more
    // connections are busy pipelining: each gets whole replies, then is
    // closed between two of them.
    let replies = AtomicUsize::new(0);
    let (busy, busy_replies) = std::thread::scope(|scope| {
        let ts: Vec<_> = (0..16)
            .map(|_| {
                let c = Client::connect(addr);
                let replies = &replies;
                scope.spawn(move || busy_until_closed(c, replies))
            })
            .collect();
        while replies.load(Ordering::Relaxed) < 1000 {
            std::thread::sleep(Duration::from_millis(1));
        }
        // SAFETY: kill(2) to our own process; the handler is installed.
        assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGTERM) }, 0);
        for mut c in open {
            c.expect_closed();
        }
        let n = ts.len();
        (n, ts.into_iter().map(|t| t.join().unwrap()).sum::<usize>())
    });
    format!(
        "{n} connections, {} requests answered; {kept} kept alive to the end, \
         all closed by SIGTERM, which came while {busy} more were pipelining \
         ({busy_replies} replies, all whole)",
        answered + kept
    )
}
