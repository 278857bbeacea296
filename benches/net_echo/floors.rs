//! The floors: echo servers with no runtime at all, one loop over the raw
//! kernel interface, so that the sweep shows what the kernel alone costs
//! per round trip on this machine and how far above it each runtime sits.
//!
//! - `uring_floor`: one io_uring set up as monad-async's executor sets up
//!   its own (`SINGLE_ISSUER | DEFER_TASKRUN`, the completion queue sized
//!   for every connection's operation), one operation in flight per
//!   connection (an accept, then recv, send, recv, ...), every completion
//!   of a batch handled before the next `io_uring_enter`, which submits
//!   what they queued and waits for at least one more. It is the least any
//!   io_uring server does per round trip: a recv and a send, no task, no
//!   switch, no bookkeeping beyond an index in `user_data`.
//! - `epoll_floor`: level-triggered epoll, one `read` per readiness and a
//!   `write` of what it read: the least a readiness-based server (tokio's
//!   model) does per round trip.
//!
//! Same contract as the other servers: `conns` connections accepted, each
//! echoed to its end (a partial send is finished before the next recv),
//! an I/O error panics.

use crate::servers::BUF;
use crate::sys::nodelay;
use crate::uring;
use io_uring::{opcode, squeue, types};
use std::net::TcpListener as StdListener;
use std::os::fd::AsRawFd;

/// What one connection of `uring_floor` holds.
struct Conn {
    fd: i32,
    buf: Box<[u8]>,
    /// Bytes of the last recv, and how many of them are sent.
    len: usize,
    sent: usize,
}

const OP_ACCEPT: u64 = 0;
const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;

fn tag(conn: usize, op: u64) -> u64 {
    ((conn as u64) << 2) | op
}

pub fn uring_floor(l: StdListener, conns: usize) {
    let entries = (conns.max(64) as u32).next_power_of_two().min(4096);
    let mut ring = uring::ring_cq(entries, Some((conns as u32 + 64).next_power_of_two()));
    let (submitter, mut sq, mut cq) = ring.split();
    let lfd = l.as_raw_fd();
    let mut table: Vec<Conn> = Vec::with_capacity(conns);
    let mut pending: Vec<squeue::Entry> = Vec::new();
    let mut done = 0;
    pending.push(
        opcode::Accept::new(types::Fd(lfd), std::ptr::null_mut(), std::ptr::null_mut())
            .build()
            .user_data(tag(0, OP_ACCEPT)),
    );
    while done < conns {
        // Queue what the last batch asked for, submitting whenever the
        // submission queue is full.
        for e in pending.drain(..) {
            // SAFETY: every buffer an entry points at is a connection's
            // boxed buffer, which lives in `table` until the loop ends,
            // and each connection has one operation in flight at most.
            while unsafe { sq.push(&e) }.is_err() {
                sq.sync();
                submitter.submit().expect("submit");
                sq.sync();
            }
        }
        sq.sync();
        match submitter.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
            Err(e) => panic!("io_uring_enter: {e}"),
        }
        cq.sync();
        for cqe in &mut cq {
            let (i, op) = ((cqe.user_data() >> 2) as usize, cqe.user_data() & 3);
            let res = cqe.result();
            assert!(
                res >= 0,
                "op {op}: {}",
                std::io::Error::from_raw_os_error(-res)
            );
            match op {
                OP_ACCEPT => {
                    nodelay(res).expect("nodelay");
                    table.push(Conn {
                        fd: res,
                        buf: vec![0u8; BUF].into_boxed_slice(),
                        len: 0,
                        sent: 0,
                    });
                    let at = table.len() - 1;
                    pending.push(recv(at, &mut table[at]));
                    if table.len() < conns {
                        pending.push(
                            opcode::Accept::new(
                                types::Fd(lfd),
                                std::ptr::null_mut(),
                                std::ptr::null_mut(),
                            )
                            .build()
                            .user_data(tag(0, OP_ACCEPT)),
                        );
                    }
                }
                OP_RECV => {
                    let c = &mut table[i];
                    if res == 0 {
                        // SAFETY: the connection's own descriptor, closed once.
                        unsafe { libc::close(c.fd) };
                        done += 1;
                        continue;
                    }
                    c.len = res as usize;
                    c.sent = 0;
                    pending.push(send(i, c));
                }
                _ => {
                    let c = &mut table[i];
                    c.sent += res as usize;
                    pending.push(if c.sent < c.len {
                        send(i, c)
                    } else {
                        recv(i, c)
                    });
                }
            }
        }
    }
}

fn recv(i: usize, c: &mut Conn) -> squeue::Entry {
    opcode::Recv::new(types::Fd(c.fd), c.buf.as_mut_ptr(), c.buf.len() as u32)
        .build()
        .user_data(tag(i, OP_RECV))
}

fn send(i: usize, c: &mut Conn) -> squeue::Entry {
    let rest = &c.buf[c.sent..c.len];
    opcode::Send::new(types::Fd(c.fd), rest.as_ptr(), rest.len() as u32)
        .build()
        .user_data(tag(i, OP_SEND))
}

pub fn epoll_floor(l: StdListener, conns: usize) {
    // SAFETY: plain system calls on descriptors this function owns; every
    // pointer is to a live local buffer of the length passed.
    unsafe {
        let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        assert!(
            ep >= 0,
            "epoll_create1: {}",
            std::io::Error::last_os_error()
        );
        let lfd = l.as_raw_fd();
        let add = |fd: i32| {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: fd as u64,
            };
            let r = libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev);
            assert_eq!(r, 0, "epoll_ctl: {}", std::io::Error::last_os_error());
        };
        add(lfd);
        let mut buf = vec![0u8; BUF];
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        let (mut accepted, mut done) = (0, 0);
        while done < conns {
            let n = libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1);
            if n < 0 {
                let e = std::io::Error::last_os_error();
                assert_eq!(e.raw_os_error(), Some(libc::EINTR), "epoll_wait: {e}");
                continue;
            }
            for ev in &events[..n as usize] {
                let fd = ev.u64 as i32;
                if fd == lfd {
                    let s = libc::accept4(lfd, std::ptr::null_mut(), std::ptr::null_mut(), 0);
                    assert!(s >= 0, "accept: {}", std::io::Error::last_os_error());
                    nodelay(s).expect("nodelay");
                    add(s);
                    accepted += 1;
                    if accepted == conns {
                        libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, lfd, std::ptr::null_mut());
                    }
                    continue;
                }
                // Blocking sockets: epoll said readable, so the read does
                // not block, and the write of one message fits the send
                // buffer (or waits for it, as it must).
                let r = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                assert!(r >= 0, "read: {}", std::io::Error::last_os_error());
                if r == 0 {
                    libc::close(fd); // also leaves the epoll set
                    done += 1;
                    continue;
                }
                let mut off = 0;
                while off < r as usize {
                    let w = libc::write(fd, buf[off..].as_ptr().cast(), r as usize - off);
                    assert!(w > 0, "write: {}", std::io::Error::last_os_error());
                    off += w as usize;
                }
            }
        }
        libc::close(ep);
    }
}
