//! Socket set-up and options: [`TcpListener::builder`] (backlog and
//! options before `bind(2)`), the TCP stream's common options, a connect
//! bounded in time, and [`setsockopt`] / [`getsockopt`] for any other
//! option of any socket.
//!
//! Invariants: these are plain system calls that never block (set-up and
//! options), usable outside a task, except
//! [`TcpStream::connect_timeout`], which goes through the ring like
//! [`TcpStream::connect`]. Option values cross into the kernel only as
//! [`SockOptValue`] types, for which every bit pattern is a valid value,
//! so whatever the kernel writes back is sound to read.

use super::net::{family, from_sockaddr, to_sockaddr};
use super::{TcpListener, TcpStream};
use crate::error::errno;
use crate::task::TaskContext;
use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::ptr;
use std::time::Duration;

/// A type that may be passed to and read back from the kernel as a socket
/// option's value: plain old data, every bit pattern of its size a valid
/// value (so no `bool`, no references, no enums).
///
/// # Safety
///
/// Implement it only for `Copy` types without padding-sensitive
/// invariants, for which any bytes the kernel writes (and all zeroes) are a
/// valid value. It is implemented for the C integer types and the C option
/// structs the kernel uses (`linger`, `timeval`, ...).
///
/// ```
/// // A C struct of plain integers qualifies.
/// #[derive(Clone, Copy, Default)]
/// #[repr(C)]
/// struct TcpKeepalive { idle: libc::c_int }
/// unsafe impl monad_async::io::SockOptValue for TcpKeepalive {}
/// ```
pub unsafe trait SockOptValue: Copy {}

// SAFETY: integers and C structs of integers: any bits are a value.
unsafe impl SockOptValue for i32 {}
// SAFETY: as above.
unsafe impl SockOptValue for u32 {}
// SAFETY: as above.
unsafe impl SockOptValue for i64 {}
// SAFETY: as above.
unsafe impl SockOptValue for u64 {}
// SAFETY: as above.
unsafe impl SockOptValue for u8 {}
// SAFETY: as above.
unsafe impl SockOptValue for libc::linger {}
// SAFETY: as above.
unsafe impl SockOptValue for libc::timeval {}
// SAFETY: as above.
unsafe impl SockOptValue for libc::ip_mreq {}
// SAFETY: as above.
unsafe impl SockOptValue for libc::ipv6_mreq {}

/// `setsockopt(2)` of any socket: sets option `name` at `level`
/// (`libc::SOL_SOCKET`, `libc::IPPROTO_TCP`, ...) to `value`. The escape
/// hatch for what the types here have no method for.
///
/// ```
/// use monad_async::io::{getsockopt, setsockopt, TcpListener};
/// let l = TcpListener::bind("127.0.0.1:0")?;
/// setsockopt(&l, libc::SOL_SOCKET, libc::SO_RCVBUF, &65536i32)?;
/// let got: i32 = getsockopt(&l, libc::SOL_SOCKET, libc::SO_RCVBUF)?;
/// assert!(got >= 65536); // Linux doubles it for bookkeeping
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// The kernel's (`ENOPROTOOPT`: no such option, `EINVAL`: a value of the
/// wrong size or range, ...).
pub fn setsockopt<T: SockOptValue>(
    fd: impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is readable for size_of::<T>() bytes; the kernel
    // copies it in and keeps no pointer.
    let r = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            level,
            name,
            ptr::from_ref(value).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `getsockopt(2)` of any socket: the value of option `name` at `level`,
/// read as a `T` (bytes the kernel does not write stay zero).
///
/// ```
/// use monad_async::io::{getsockopt, TcpListener};
/// let l = TcpListener::bind("127.0.0.1:0")?;
/// let listening: i32 = getsockopt(&l, libc::SOL_SOCKET, libc::SO_ACCEPTCONN)?;
/// assert_eq!(listening, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// The kernel's (`ENOPROTOOPT`, `EINVAL` for a `T` too small, ...).
pub fn getsockopt<T: SockOptValue>(
    fd: impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<T> {
    // SAFETY: all-zero is a valid T (SockOptValue).
    let mut value: T = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is writable for `len` bytes, and any bytes written
    // leave it a valid T (SockOptValue).
    let r = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            level,
            name,
            ptr::from_mut(&mut value).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

fn set_flag(fd: impl AsFd, level: libc::c_int, name: libc::c_int, on: bool) -> io::Result<()> {
    setsockopt(fd, level, name, &libc::c_int::from(on))
}

fn get_flag(fd: impl AsFd, level: libc::c_int, name: libc::c_int) -> io::Result<bool> {
    getsockopt::<libc::c_int>(fd, level, name).map(|v| v != 0)
}

/// A listening TCP socket's set-up: the options to set before `bind(2)`
/// and the backlog of `listen(2)`. Made by [`TcpListener::builder`].
///
/// Defaults: backlog 1024, `SO_REUSEADDR` on (as std sets it: a restarted
/// server can bind its port while old connections linger in TIME_WAIT),
/// `SO_REUSEPORT` off, IPv6 sockets dual-stack as the system decides.
///
/// ```
/// use monad_async::io::TcpListener;
/// // Two listeners on one port: the kernel spreads connections over them.
/// let a = TcpListener::builder("127.0.0.1:0".parse().unwrap()).reuse_port(true).bind()?;
/// let b = TcpListener::builder(a.local_addr()?).reuse_port(true).backlog(64).bind()?;
/// assert_eq!(a.local_addr()?, b.local_addr()?);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TcpListenerBuilder {
    addr: SocketAddr,
    backlog: i32,
    reuse_address: bool,
    reuse_port: bool,
    only_v6: Option<bool>,
}

impl TcpListenerBuilder {
    /// The most connections the kernel completes and queues for accept
    /// (`listen(2)`'s backlog; the kernel caps it at
    /// `net.core.somaxconn`). When the queue is full, new connections'
    /// handshakes wait (their SYNs are dropped and retried by the
    /// client).
    ///
    /// ```
    /// let l = monad_async::io::TcpListener::builder("127.0.0.1:0".parse().unwrap())
    ///     .backlog(16)
    ///     .bind()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// `SO_REUSEADDR` (on by default).
    ///
    /// ```
    /// use monad_async::io::{getsockopt, TcpListener};
    /// let l = TcpListener::builder("127.0.0.1:0".parse().unwrap()).reuse_address(false).bind()?;
    /// assert_eq!(getsockopt::<i32>(&l, libc::SOL_SOCKET, libc::SO_REUSEADDR)?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reuse_address(mut self, on: bool) -> Self {
        self.reuse_address = on;
        self
    }

    /// `SO_REUSEPORT`: several sockets (of one user) may listen on the same
    /// address, and the kernel balances connections over them, e.g. one
    /// listener per executor. See [`TcpListenerBuilder`].
    ///
    /// ```
    /// use monad_async::io::{getsockopt, TcpListener};
    /// let l = TcpListener::builder("127.0.0.1:0".parse().unwrap()).reuse_port(true).bind()?;
    /// assert_eq!(getsockopt::<i32>(&l, libc::SOL_SOCKET, libc::SO_REUSEPORT)?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// `IPV6_V6ONLY` for an IPv6 address: `true` accepts IPv6 only,
    /// `false` IPv4-mapped connections too. Ignored for IPv4.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use monad_async::io::TcpListener;
    /// let Ok(l) = TcpListener::builder("[::1]:0".parse().unwrap()).only_v6(true).bind() else {
    ///     return Ok(()); // no IPv6 here
    /// };
    /// assert!(l.local_addr()?.is_ipv6());
    /// # Ok(()) }
    /// ```
    pub fn only_v6(mut self, on: bool) -> Self {
        self.only_v6 = Some(on);
        self
    }

    /// Creates the socket, sets the options, binds and listens (plain
    /// system calls: they never block). Usable outside a task.
    ///
    /// ```
    /// let l = monad_async::io::TcpListener::builder("127.0.0.1:0".parse().unwrap()).bind()?;
    /// assert_ne!(l.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The kernel's: `EADDRINUSE`, `EACCES`, ...
    pub fn bind(self) -> io::Result<TcpListener> {
        // SAFETY: plain arguments; the result is checked.
        let raw = unsafe {
            libc::socket(
                family(&self.addr),
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just gave us this descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_flag(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            self.reuse_address,
        )?;
        if self.reuse_port {
            set_flag(&fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, true)?;
        }
        if let (Some(on), SocketAddr::V6(_)) = (self.only_v6, self.addr) {
            set_flag(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, on)?;
        }
        let (ss, len) = to_sockaddr(&self.addr);
        // SAFETY: a valid address of `len` bytes.
        if unsafe { libc::bind(fd.as_raw_fd(), ptr::addr_of!(ss).cast(), len) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: plain arguments.
        if unsafe { libc::listen(fd.as_raw_fd(), self.backlog) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(TcpListener::from(fd))
    }
}

impl TcpListener {
    /// A listener's set-up, to bind with options and a backlog of one's
    /// choice; see [`TcpListenerBuilder`].
    ///
    /// ```
    /// let l = monad_async::io::TcpListener::builder("127.0.0.1:0".parse().unwrap())
    ///     .backlog(4096)
    ///     .reuse_address(true)
    ///     .bind()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder(addr: SocketAddr) -> TcpListenerBuilder {
        TcpListenerBuilder {
            addr,
            backlog: 1024,
            reuse_address: true,
            reuse_port: false,
            only_v6: None,
        }
    }
}

impl TcpStream {
    /// As [`TcpStream::connect`], given up once `timeout` has passed: the
    /// connect in flight is cancelled in the kernel and the call returns an
    /// error of kind [`TimedOut`](io::ErrorKind::TimedOut) (`ETIMEDOUT`);
    /// the task goes on. It composes with
    /// [`TaskContext::timeout`] (an enclosing, earlier deadline wins).
    ///
    /// ```
    /// use monad_async::io::{TcpListener, TcpStream};
    /// use monad_async::{Executor, Priority};
    /// use std::time::Duration;
    ///
    /// let ex = Executor::new()?;
    /// let l = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = l.local_addr()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| {
    ///     TcpStream::connect_timeout(cx, addr, Duration::from_secs(5)).map(drop)
    /// });
    /// h.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `TimedOut`; otherwise as [`TcpStream::connect`].
    pub fn connect_timeout(
        cx: &mut TaskContext<'_>,
        addr: SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        cx.timeout(timeout, |cx| TcpStream::connect(cx, addr))
    }

    /// The peer's address.
    ///
    /// ```
    /// use monad_async::io::{TcpListener, TcpStream};
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let l = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = l.local_addr()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| TcpStream::connect(cx, addr)?.peer_addr());
    /// assert_eq!(h.join().unwrap()?, addr);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `getpeername(2)` (`ENOTCONN`, ...).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: valid out-pointers of the size given.
        if unsafe { libc::getpeername(self.as_raw_fd(), ptr::addr_of_mut!(ss).cast(), &mut len) }
            != 0
        {
            return Err(io::Error::last_os_error());
        }
        from_sockaddr(&ss)
    }

    /// `TCP_NODELAY`: on, small sends go out at once instead of waiting
    /// to be merged (Nagle's algorithm), for request-response traffic.
    ///
    /// ```
    /// use monad_async::io::{TcpListener, TcpStream};
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let l = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = l.local_addr()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<bool> {
    ///     let s = TcpStream::connect(cx, addr)?;
    ///     s.set_nodelay(true)?;
    ///     s.nodelay()
    /// });
    /// assert!(h.join().unwrap()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `setsockopt(2)`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        set_flag(self, libc::IPPROTO_TCP, libc::TCP_NODELAY, on)
    }

    /// Whether `TCP_NODELAY` is on; see [`TcpStream::set_nodelay`].
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let s = monad_async::io::TcpStream::from(std::net::TcpStream::connect(l.local_addr()?)?);
    /// assert!(!s.nodelay()?); // the system's default
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `getsockopt(2)`.
    pub fn nodelay(&self) -> io::Result<bool> {
        get_flag(self, libc::IPPROTO_TCP, libc::TCP_NODELAY)
    }

    /// The time-to-live (IPv4) or hop limit (IPv6) of the packets sent.
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let s = monad_async::io::TcpStream::from(std::net::TcpStream::connect(l.local_addr()?)?);
    /// s.set_ttl(17)?;
    /// assert_eq!(s.ttl()?, 17);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `setsockopt(2)` (`EINVAL` above 255).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = libc::c_int::try_from(ttl).map_err(|_| errno(libc::EINVAL))?;
        let (level, name) = self.ttl_option()?;
        setsockopt(self, level, name, &ttl)
    }

    /// The time-to-live or hop limit; see [`TcpStream::set_ttl`].
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let s = monad_async::io::TcpStream::from(std::net::TcpStream::connect(l.local_addr()?)?);
    /// assert!(s.ttl()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `getsockopt(2)`.
    pub fn ttl(&self) -> io::Result<u32> {
        let (level, name) = self.ttl_option()?;
        let v: libc::c_int = getsockopt(self, level, name)?;
        // Linux resolves IPv6's "default" (-1) to the route's hop limit.
        u32::try_from(v).map_err(|_| errno(libc::EINVAL))
    }

    fn ttl_option(&self) -> io::Result<(libc::c_int, libc::c_int)> {
        Ok(match self.local_addr()? {
            SocketAddr::V4(_) => (libc::IPPROTO_IP, libc::IP_TTL),
            SocketAddr::V6(_) => (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS),
        })
    }
}

static_assertions::assert_impl_all!(TcpListenerBuilder: Send, Sync);
