//! The load generator, the same for every server: one thread, plain
//! nonblocking sockets and level-triggered epoll through libc, so that no
//! contender's runtime is on the client side. Each of `conns` connections
//! keeps exactly one `size`-byte message outstanding: it sends, waits for
//! the whole echo, checks it byte for byte, and sends the next.
//!
//! Invariants: every message differs (connection index and sequence number
//! in its first bytes, a rotating pattern after them), and an echo that
//! differs from what was sent, arrives early closed, or brings extra bytes
//! is an error that fails the run; no number is reported for it. The timed
//! window starts after a warm-up (at least two round trips per connection)
//! and ends before the drain (at least four per connection in it); the server's
//! CPU time is read from its process CPU clock at both ends (all of its
//! threads), our own from ours.

use crate::sys::{
    core_idle_ns, nodelay, proc_user_sys_ticks, process_cpu_clock, read_clock, SERVER_CORE,
};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// What one run is asked to do.
pub struct GenArgs {
    pub addr: SocketAddr,
    pub server_pid: libc::pid_t,
    pub conns: usize,
    pub size: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

/// What one run measured in its timed window.
#[derive(Clone, Copy, Debug, Default)]
pub struct GenResult {
    /// Round trips completed in the window.
    pub rts: u64,
    pub wall_ns: u64,
    /// CPU time of the server process (all threads) in the window.
    pub server_cpu_ns: u64,
    /// CPU time of this generator in the window.
    pub gen_cpu_ns: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    /// The server's user and system time in the window, in clock ticks.
    pub server_user_ticks: u64,
    pub server_sys_ticks: u64,
    /// Round trips of the whole run, warm-up and drain included (for
    /// instruction counts of the whole server process, see main.rs).
    pub total_rts: u64,
    /// Busy time of the server's core in the window: wall time less the
    /// core's idle time (sys::core_idle_ns), whoever the work was
    /// charged to.
    pub core_busy_ns: u64,
}

impl GenResult {
    pub fn to_line(self) -> String {
        format!(
            "RESULT {} {} {} {} {} {} {} {} {} {}",
            self.rts,
            self.wall_ns,
            self.server_cpu_ns,
            self.gen_cpu_ns,
            self.p50_ns,
            self.p99_ns,
            self.server_user_ticks,
            self.server_sys_ticks,
            self.total_rts,
            self.core_busy_ns
        )
    }

    pub fn from_line(line: &str) -> Option<GenResult> {
        let mut it = line.strip_prefix("RESULT ")?.split(' ');
        let mut next = || it.next()?.parse::<u64>().ok();
        Some(GenResult {
            rts: next()?,
            wall_ns: next()?,
            server_cpu_ns: next()?,
            gen_cpu_ns: next()?,
            p50_ns: next()?,
            p99_ns: next()?,
            server_user_ticks: next()?,
            server_sys_ticks: next()?,
            total_rts: next()?,
            core_busy_ns: next()?,
        })
    }
}

struct Conn {
    s: TcpStream,
    out: Vec<u8>,
    inb: Vec<u8>,
    got: usize,
    seq: u64,
    sent: Instant,
}

/// Pseudo-random bytes (xorshift), `len` of them.
fn pattern(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn err(msg: String) -> io::Error {
    io::Error::other(msg)
}

impl Conn {
    /// Writes the next message, whole. A fresh message always fits an
    /// empty send buffer; should it not, this waits for room with poll.
    fn send(&mut self, idx: usize, pat: &[u8]) -> io::Result<()> {
        let size = self.out.len();
        let off = (idx * 7 + self.seq as usize) % 251;
        self.out.copy_from_slice(&pat[off..off + size]);
        let tag = ((idx as u64) << 32 | (self.seq & 0xffff_ffff)).to_le_bytes();
        let n = tag.len().min(size);
        self.out[..n].copy_from_slice(&tag[..n]);
        self.got = 0;
        self.sent = Instant::now();
        let fd = self.s.as_raw_fd();
        let mut done = 0;
        while done < size {
            // SAFETY: the pointer and length stay inside `self.out`.
            let r = unsafe {
                libc::write(
                    fd,
                    self.out[done..].as_ptr().cast(),
                    (size - done) as libc::size_t,
                )
            };
            if r >= 0 {
                done += r as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::WouldBlock {
                return Err(e);
            }
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, 1000) };
        }
        Ok(())
    }

    /// Reads what is there of the echo; true when it is complete and
    /// matches what was sent.
    fn recv(&mut self, idx: usize) -> io::Result<bool> {
        let size = self.out.len();
        match self.s.read(&mut self.inb[self.got..size]) {
            Ok(0) => Err(err(format!(
                "connection {idx}: the server closed it mid-message"
            ))),
            Ok(n) => {
                self.got += n;
                if self.got < size {
                    return Ok(false);
                }
                if self.inb != self.out {
                    let at = self.inb.iter().zip(&self.out).position(|(a, b)| a != b);
                    return Err(err(format!(
                        "connection {idx}, message {}: the echo differs from what was sent (first at byte {at:?})",
                        self.seq
                    )));
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Runs the load: connect, warm up, time a window, drain, close cleanly.
pub fn generate(a: &GenArgs) -> io::Result<GenResult> {
    let pat = pattern(a.size + 256);
    let server_clock = process_cpu_clock(a.server_pid)?;
    let own_clock = process_cpu_clock(0)?;

    // SAFETY: plain epoll_create1; the fd is closed at the end.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut conns = Vec::with_capacity(a.conns);
    for idx in 0..a.conns {
        let s = TcpStream::connect(a.addr)
            .map_err(|e| err(format!("connect #{idx} to {}: {e}", a.addr)))?;
        nodelay(s.as_raw_fd())?;
        s.set_nonblocking(true)?;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: idx as u64,
        };
        // SAFETY: a valid epoll fd, socket and event.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) } != 0 {
            return Err(io::Error::last_os_error());
        }
        conns.push(Conn {
            s,
            out: vec![0; a.size],
            inb: vec![0; a.size],
            got: 0,
            seq: 0,
            sent: Instant::now(),
        });
    }

    for (idx, c) in conns.iter_mut().enumerate() {
        c.send(idx, &pat)?;
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let begin = Instant::now();
    let measure_from = begin + a.warmup;
    let mut done = 0u64;
    #[derive(PartialEq)]
    enum Phase {
        Warmup,
        Measure,
        Drain,
    }
    let mut phase = Phase::Warmup;
    let mut lat: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut res = GenResult::default();
    let (mut t0, mut s0, mut g0) = (begin, Duration::ZERO, Duration::ZERO);
    let mut ticks0 = (0, 0);
    let mut idle0 = 0u64;
    let mut outstanding = conns.len();
    while outstanding > 0 {
        // SAFETY: `events` has room for the count passed.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 10_000) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(err(format!(
                "no echo for 10 s with {outstanding} messages outstanding"
            )));
        }
        let now = Instant::now();
        // Steady state first: every connection has had a few round trips
        // (at 10,000 connections one round trip of all takes a while), and
        // the window holds several round trips of every connection, so
        // that it is not the ramp-up or one burst that is timed.
        if phase == Phase::Warmup && now >= measure_from && done >= 2 * conns.len() as u64 {
            ticks0 = proc_user_sys_ticks(a.server_pid)?;
            idle0 = core_idle_ns(SERVER_CORE)?;
            s0 = read_clock(server_clock)?;
            g0 = read_clock(own_clock)?;
            t0 = Instant::now();
            phase = Phase::Measure;
        } else if phase == Phase::Measure
            && now >= t0 + a.measure
            && res.rts >= 4 * conns.len() as u64
        {
            let s1 = read_clock(server_clock)?;
            let g1 = read_clock(own_clock)?;
            let ticks1 = proc_user_sys_ticks(a.server_pid)?;
            let idle1 = core_idle_ns(SERVER_CORE)?;
            res.server_user_ticks = ticks1.0 - ticks0.0;
            res.server_sys_ticks = ticks1.1 - ticks0.1;
            res.wall_ns = t0.elapsed().as_nanos() as u64;
            res.server_cpu_ns = (s1 - s0).as_nanos() as u64;
            res.core_busy_ns = res.wall_ns.saturating_sub(idle1.saturating_sub(idle0));
            res.gen_cpu_ns = (g1 - g0).as_nanos() as u64;
            phase = Phase::Drain;
        }
        for ev in &events[..n as usize] {
            let idx = ev.u64 as usize;
            let c = &mut conns[idx];
            if !c.recv(idx)? {
                continue;
            }
            done += 1;
            if phase == Phase::Measure {
                lat.push(c.sent.elapsed().as_nanos().min(u32::MAX as u128) as u32);
                res.rts += 1;
            }
            if phase == Phase::Drain {
                outstanding -= 1;
            } else {
                c.seq += 1;
                c.send(idx, &pat)?;
            }
        }
    }
    // SAFETY: our epoll fd, closed once.
    unsafe { libc::close(ep) };

    // A clean end: shut our side, and each server task must answer with
    // its own end of stream and nothing more.
    for c in &conns {
        c.s.shutdown(std::net::Shutdown::Write)?;
    }
    for (idx, c) in conns.iter_mut().enumerate() {
        c.s.set_nonblocking(false)?;
        c.s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut b = [0u8; 64];
        let n = c.s.read(&mut b)?;
        if n != 0 {
            return Err(err(format!(
                "connection {idx}: {n} bytes after the last echo"
            )));
        }
    }
    res.total_rts = done;
    if lat.is_empty() {
        return Err(err("no round trip in the timed window".into()));
    }
    let mut pick = |q: f64| {
        let k = ((lat.len() as f64 - 1.0) * q).round() as usize;
        *lat.select_nth_unstable(k).1 as u64
    };
    res.p50_ns = pick(0.50);
    res.p99_ns = pick(0.99);
    Ok(res)
}
