//! Unix domain sockets through the ring: [`UnixListener`],
//! [`UnixStream`] and [`UnixDatagram`].
//!
//! Invariants, as for the TCP and UDP types: every call that may wait
//! (accept, connect, send, receive, shutdown, close) goes through the
//! executor's ring and suspends only the calling task; the calls that
//! never block (bind, listen, `connect(2)` of a datagram socket, the
//! address queries) are plain system calls, usable outside a task. Each
//! type owns its descriptor ([`OwnedFd`]) and converts to and from the std
//! type and `OwnedFd`.
//!
//! Addresses are std's [`std::os::unix::net::SocketAddr`]: a path, a
//! Linux abstract name (built with
//! [`SocketAddrExt::from_abstract_name`](std::os::linux::net::SocketAddrExt::from_abstract_name),
//! no file, gone with the socket), or unnamed (an unbound peer).

use super::file::close_fd;
use super::net::{fd_conversions, recv, send, shutdown, socket};
use super::to_usize;
use super::{BufferRing, ProvidedBuffer};
use crate::error::errno;
use crate::sys;
use crate::task::TaskContext;
use std::io;
use std::mem;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::ptr;
use std::sync::OnceLock;
use std::time::Duration;

/// Where `sun_path` starts in a `sockaddr_un` (after the family).
const PATH_OFFSET: usize = mem::offset_of!(libc::sockaddr_un, sun_path);

/// `addr` in the C layout, and its length.
fn to_sockaddr_un(addr: &SocketAddr) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: all-zero is a valid sockaddr_un.
    let mut sun: libc::sockaddr_un = unsafe { mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    // A path is NUL-terminated; an abstract name starts with a NUL and is
    // exactly as long as the length says.
    let (bytes, start, extra) = if let Some(path) = addr.as_pathname() {
        (path.as_os_str().as_bytes(), 0, 1)
    } else if let Some(name) = addr.as_abstract_name() {
        (name, 1, 0)
    } else {
        return Err(errno(libc::EINVAL)); // unnamed: nothing to reach
    };
    if start + bytes.len() + extra > sun.sun_path.len() {
        return Err(errno(libc::ENAMETOOLONG));
    }
    for (d, s) in sun.sun_path[start..].iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = PATH_OFFSET + start + bytes.len() + extra;
    Ok((sun, len as libc::socklen_t))
}

/// An unnamed address, as std has no constructor for one: the name of an
/// unbound socket, asked once.
fn unnamed() -> io::Result<SocketAddr> {
    static UNNAMED: OnceLock<SocketAddr> = OnceLock::new();
    if let Some(a) = UNNAMED.get() {
        return Ok(a.clone());
    }
    let a = std::os::unix::net::UnixDatagram::unbound()?.local_addr()?;
    Ok(UNNAMED.get_or_init(|| a).clone())
}

/// The std address of the first `len` bytes of `sun`.
fn from_sockaddr_un(sun: &libc::sockaddr_un, len: libc::socklen_t) -> io::Result<SocketAddr> {
    let len = (len as usize).min(mem::size_of::<libc::sockaddr_un>());
    if len <= PATH_OFFSET {
        return unnamed();
    }
    let path: Vec<u8> = sun.sun_path[..len - PATH_OFFSET]
        .iter()
        .map(|&c| c as u8)
        .collect();
    if path[0] == 0 {
        return SocketAddr::from_abstract_name(&path[1..]);
    }
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    SocketAddr::from_pathname(Path::new(std::ffi::OsStr::from_bytes(&path[..end])))
}

/// getsockname(2) (`peer` false) or getpeername(2).
fn sock_name(fd: RawFd, peer: bool) -> io::Result<SocketAddr> {
    // SAFETY: all-zero is a valid sockaddr_un.
    let mut sun: libc::sockaddr_un = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    let p = ptr::addr_of_mut!(sun).cast();
    // SAFETY: valid out-pointers of the size given.
    let r = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    from_sockaddr_un(&sun, len)
}

/// A new unix socket of type `ty`, connected to `addr`, both through the
/// ring.
fn connect(cx: &mut TaskContext<'_>, addr: &SocketAddr, ty: libc::c_int) -> io::Result<OwnedFd> {
    let (sun, len) = to_sockaddr_un(addr)?;
    let fd = socket(cx, libc::AF_UNIX, ty)?;
    // SAFETY: the running task; `sun` outlives the call, which returns
    // only once the kernel is done with it.
    let r = unsafe {
        sys::monad_async_io_connect(
            cx.raw_task(),
            ptr::null_mut(),
            fd.as_raw_fd(),
            ptr::addr_of!(sun).cast(),
            len,
        )
    };
    cx.check(r)?;
    Ok(fd)
}

/// A listening Unix stream socket whose accepts go through the ring.
///
/// ```
/// use monad_async::io::{UnixListener, UnixStream};
/// use monad_async::{Executor, Priority};
/// use std::os::linux::net::SocketAddrExt;
/// use std::os::unix::net::SocketAddr;
///
/// let ex = Executor::new()?;
/// // An abstract name: no file to clean up.
/// let addr = SocketAddr::from_abstract_name(format!("doc-listener-{}", std::process::id()))?;
/// let listener = UnixListener::bind_addr(&addr)?;
/// let server = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
///     let (s, _peer) = listener.accept(cx)?;
///     let mut buf = [0u8; 4];
///     s.read_exact(cx, &mut buf)?;
///     s.write_all(cx, &buf)
/// });
/// let client = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<[u8; 4]> {
///     let s = UnixStream::connect_addr(cx, &addr)?;
///     s.write_all(cx, b"ping")?;
///     let mut buf = [0u8; 4];
///     s.read_exact(cx, &mut buf)?;
///     Ok(buf)
/// });
/// assert_eq!(&client.join().unwrap()?, b"ping");
/// server.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixListener {
    fd: OwnedFd,
}

impl UnixListener {
    /// Binds to the path `path` and listens (plain system calls: they never
    /// block). Usable outside a task. The file it creates stays after the
    /// listener is gone, as with std: remove it to bind the path again.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("monad-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("bind.sock");
    /// let _ = std::fs::remove_file(&path);
    /// let l = monad_async::io::UnixListener::bind(&path)?;
    /// assert_eq!(l.local_addr()?.as_pathname(), Some(path.as_path()));
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`std::os::unix::net::UnixListener::bind`] (`EADDRINUSE` when the
    /// path exists, ...).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        std::os::unix::net::UnixListener::bind(path).map(UnixListener::from)
    }

    /// Binds to `addr` (a path or an abstract name) and listens.
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(b"monad-doc-bind-addr")?;
    /// let l = monad_async::io::UnixListener::bind_addr(&addr)?;
    /// assert_eq!(l.local_addr()?.as_abstract_name(), Some(&b"monad-doc-bind-addr"[..]));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`std::os::unix::net::UnixListener::bind_addr`].
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        std::os::unix::net::UnixListener::bind_addr(addr).map(UnixListener::from)
    }

    /// The bound address.
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(b"monad-doc-local")?;
    /// let l = monad_async::io::UnixListener::bind_addr(&addr)?;
    /// assert!(l.local_addr()?.as_abstract_name().is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_name(self.fd.as_raw_fd(), false)
    }

    /// Accepts a connection through the ring; the peer's address is
    /// usually unnamed (a client that did not bind).
    ///
    /// ```
    /// use monad_async::io::{UnixListener, UnixStream};
    /// use monad_async::{Executor, Priority};
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// let ex = Executor::new()?;
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(b"monad-doc-accept")?;
    /// let l = UnixListener::bind_addr(&addr)?;
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<bool> {
    ///     let _client = UnixStream::connect_addr(cx, &addr)?; // queued: no accept needed
    ///     let (_conn, peer) = l.accept(cx)?;
    ///     Ok(peer.is_unnamed())
    /// });
    /// assert!(h.join().unwrap()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The kernel's; `ECANCELED`, `ENOTSUP`.
    pub fn accept(&self, cx: &mut TaskContext<'_>) -> io::Result<(UnixStream, SocketAddr)> {
        // SAFETY: all-zero is a valid sockaddr_un.
        let mut sun: libc::sockaddr_un = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::sockaddr_un>() as u32;
        // SAFETY: the running task; `sun` and `len` outlive the call,
        // which returns only once the kernel has written them.
        let r = unsafe {
            sys::monad_async_io_accept(
                cx.raw_task(),
                ptr::null_mut(),
                self.fd.as_raw_fd(),
                ptr::addr_of_mut!(sun).cast(),
                &mut len,
                libc::SOCK_CLOEXEC,
            )
        };
        let fd = super::to_fd(cx.check(r)?)?;
        // SAFETY: the kernel just gave us this descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok((UnixStream { fd }, from_sockaddr_un(&sun, len)?))
    }
}

fd_conversions!(UnixListener, std::os::unix::net::UnixListener);

/// A connected Unix stream socket whose sends and receives go through the
/// ring. See [`UnixListener`] for a whole exchange.
///
/// ```
/// use monad_async::io::UnixStream;
/// use monad_async::{Executor, Priority};
///
/// let ex = Executor::new()?;
/// let (a, b) = UnixStream::pair()?;
/// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Vec<u8>> {
///     a.write_all(cx, b"hello")?;
///     let mut buf = [0u8; 5];
///     b.read_exact(cx, &mut buf)?;
///     Ok(buf.to_vec())
/// });
/// assert_eq!(h.join().unwrap()?, b"hello");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixStream {
    fd: OwnedFd,
}

impl UnixStream {
    /// Creates a socket and connects it to the path `path`, both through
    /// the ring.
    ///
    /// ```
    /// use monad_async::io::{UnixListener, UnixStream};
    /// use monad_async::{Executor, Priority};
    ///
    /// let dir = std::env::temp_dir().join(format!("monad-doc-c-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("s.sock");
    /// let _ = std::fs::remove_file(&path);
    /// let l = UnixListener::bind(&path)?;
    /// let ex = Executor::new()?;
    /// let p = path.clone();
    /// let h = ex.spawn(Priority::Normal, move |cx| UnixStream::connect(cx, &p).map(drop));
    /// h.join().unwrap()?;
    /// drop(l);
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The kernel's (`ENOENT`: no such path, `ECONNREFUSED`: nobody
    /// listens there, ...); `ENAMETOOLONG`; `ECANCELED`, `ENOTSUP`.
    pub fn connect(cx: &mut TaskContext<'_>, path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let addr = SocketAddr::from_pathname(path)?;
        UnixStream::connect_addr(cx, &addr)
    }

    /// Creates a socket and connects it to `addr` (a path or an abstract
    /// name), both through the ring. See [`UnixListener`].
    ///
    /// ```
    /// use monad_async::io::UnixStream;
    /// use monad_async::{Executor, Priority};
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// let ex = Executor::new()?;
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(b"monad-doc-nobody")?;
    /// let h = ex.spawn(Priority::Normal, move |cx| UnixStream::connect_addr(cx, &addr).map(drop));
    /// let err = h.join().unwrap().unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`UnixStream::connect`]; `EINVAL` for an unnamed address.
    pub fn connect_addr(cx: &mut TaskContext<'_>, addr: &SocketAddr) -> io::Result<UnixStream> {
        connect(cx, addr, libc::SOCK_STREAM).map(|fd| UnixStream { fd })
    }

    /// A pair of connected sockets (`socketpair(2)`, a plain system call).
    ///
    /// ```
    /// let (a, b) = monad_async::io::UnixStream::pair()?;
    /// assert!(a.peer_addr()?.is_unnamed() && b.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `socketpair(2)`.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((a.into(), b.into()))
    }

    /// Sends from `buf`; returns the bytes sent.
    ///
    /// ```
    /// use monad_async::{io::UnixStream, Executor, Priority};
    /// let ex = Executor::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// assert_eq!(ex.spawn(Priority::Normal, move |cx| a.send(cx, b"abc")).join().unwrap()?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The kernel's (`EPIPE`, ...; never a `SIGPIPE`); `ECANCELED`,
    /// `ENOTSUP`.
    #[inline]
    pub fn send(&self, cx: &mut TaskContext<'_>, buf: &[u8]) -> io::Result<usize> {
        send(cx, self.fd.as_raw_fd(), buf)
    }

    /// Receives into `buf`; returns the bytes received (0: the peer shut
    /// down its side).
    ///
    /// ```
    /// use monad_async::{io::UnixStream, Executor, Priority};
    /// let ex = Executor::new()?;
    /// let (a, b) = UnixStream::pair()?;
    /// drop(b);
    /// let mut buf = [0u8; 8];
    /// assert_eq!(ex.spawn(Priority::Normal, move |cx| a.recv(cx, &mut buf)).join().unwrap()?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`UnixStream::send`].
    #[inline]
    pub fn recv(&self, cx: &mut TaskContext<'_>, buf: &mut [u8]) -> io::Result<usize> {
        recv(cx, self.fd.as_raw_fd(), buf)
    }

    /// Receives into a buffer the kernel picks from `ring` as the data
    /// arrives, as [`TcpStream::recv_provided`](super::TcpStream::recv_provided).
    ///
    /// ```
    /// use monad_async::io::{BufferRing, UnixStream};
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let ring = std::rc::Rc::new(BufferRing::new(&ex, 64, 2)?);
    /// let (a, b) = UnixStream::pair()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Vec<u8>> {
    ///     a.write_all(cx, b"hi")?;
    ///     Ok(b.recv_provided(cx, &ring)?.map(|b| b.to_vec()).unwrap_or_default())
    /// });
    /// assert_eq!(h.join().unwrap()?, b"hi");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`TcpStream::recv_provided`](super::TcpStream::recv_provided).
    pub fn recv_provided<'b, 'r: 'b, 'c: 'b>(
        &self,
        cx: &mut TaskContext<'c>,
        ring: &'r BufferRing,
    ) -> io::Result<Option<ProvidedBuffer<'b>>> {
        ring.recv(cx, self.fd.as_raw_fd(), 0)
    }

    /// Sends all of `buf`.
    ///
    /// ```
    /// use monad_async::{io::UnixStream, Executor, Priority};
    /// let ex = Executor::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// ex.spawn(Priority::Normal, move |cx| a.write_all(cx, &[7u8; 1000])).join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `WriteZero` if nothing more is accepted; otherwise as
    /// [`UnixStream::send`].
    #[inline]
    pub fn write_all(&self, cx: &mut TaskContext<'_>, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.send(cx, buf)?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero));
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Receives exactly `buf.len()` bytes.
    ///
    /// ```
    /// use monad_async::{io::UnixStream, Executor, Priority};
    /// let ex = Executor::new()?;
    /// let (a, b) = UnixStream::pair()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| {
    ///     a.write_all(cx, b"ab")?;
    ///     drop(a);
    ///     let mut buf = [0u8; 3];
    ///     b.read_exact(cx, &mut buf)
    /// });
    /// assert_eq!(h.join().unwrap().unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the peer shuts down first; otherwise as
    /// [`UnixStream::recv`].
    #[inline]
    pub fn read_exact(&self, cx: &mut TaskContext<'_>, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.recv(cx, buf)?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            buf = &mut buf[n..];
        }
        Ok(())
    }

    /// `shutdown(2)` through the ring.
    ///
    /// ```
    /// use monad_async::{io::UnixStream, Executor, Priority};
    /// use std::net::Shutdown;
    /// let ex = Executor::new()?;
    /// let (a, b) = UnixStream::pair()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| {
    ///     a.shutdown(cx, Shutdown::Write)?;
    ///     b.recv(cx, &mut [0u8; 4])
    /// });
    /// assert_eq!(h.join().unwrap()?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`UnixStream::send`].
    pub fn shutdown(&self, cx: &mut TaskContext<'_>, how: Shutdown) -> io::Result<()> {
        shutdown(cx, self.fd.as_raw_fd(), how)
    }

    /// The local address (unnamed for a client that did not bind).
    ///
    /// ```
    /// let (a, _b) = monad_async::io::UnixStream::pair()?;
    /// assert!(a.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_name(self.fd.as_raw_fd(), false)
    }

    /// The peer's address.
    ///
    /// ```
    /// let (a, _b) = monad_async::io::UnixStream::pair()?;
    /// assert!(a.peer_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `getpeername(2)` (`ENOTCONN`, ...).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sock_name(self.fd.as_raw_fd(), true)
    }

    /// Closes through the ring, reporting the kernel's verdict.
    ///
    /// ```
    /// use monad_async::{io::UnixStream, Executor, Priority};
    /// let ex = Executor::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// ex.spawn(Priority::Normal, move |cx| a.close(cx)).join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The kernel's; on `ECANCELED`/`ENOTSUP` drop closes it instead.
    pub fn close(self, cx: &mut TaskContext<'_>) -> io::Result<()> {
        close_fd(cx, self.fd)
    }
}

fd_conversions!(UnixStream, std::os::unix::net::UnixStream);

/// A Unix datagram socket whose datagrams go through the ring.
///
/// ```
/// use monad_async::io::UnixDatagram;
/// use monad_async::{Executor, Priority};
/// use std::os::linux::net::SocketAddrExt;
///
/// let ex = Executor::new()?;
/// let addr = std::os::unix::net::SocketAddr::from_abstract_name(b"monad-doc-dgram")?;
/// let server = UnixDatagram::bind_addr(&addr)?;
/// let client = UnixDatagram::unbound()?;
/// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Vec<u8>> {
///     client.send_to_addr(cx, b"ping", &addr)?;
///     let mut buf = [0u8; 16];
///     let (n, from) = server.recv_from(cx, &mut buf)?;
///     assert!(from.is_unnamed());
///     Ok(buf[..n].to_vec())
/// });
/// assert_eq!(h.join().unwrap()?, b"ping");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixDatagram {
    fd: OwnedFd,
}

impl UnixDatagram {
    /// A socket bound to the path `path` (a plain system call). Usable
    /// outside a task; the file stays after the socket is gone.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("monad-doc-d-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let s = monad_async::io::UnixDatagram::bind(dir.join("d.sock"))?;
    /// assert!(s.local_addr()?.as_pathname().is_some());
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`std::os::unix::net::UnixDatagram::bind`].
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        std::os::unix::net::UnixDatagram::bind(path).map(UnixDatagram::from)
    }

    /// A socket bound to `addr` (a path or an abstract name). See
    /// [`UnixDatagram`].
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(b"monad-doc-dbind")?;
    /// let s = monad_async::io::UnixDatagram::bind_addr(&addr)?;
    /// assert!(s.local_addr()?.as_abstract_name().is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`std::os::unix::net::UnixDatagram::bind_addr`].
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        std::os::unix::net::UnixDatagram::bind_addr(addr).map(UnixDatagram::from)
    }

    /// A socket bound to no address: its datagrams reach their peers
    /// from an unnamed address, so they cannot be answered with
    /// [`UnixDatagram::send_to_addr`].
    ///
    /// ```
    /// let s = monad_async::io::UnixDatagram::unbound()?;
    /// assert!(s.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `socket(2)`.
    pub fn unbound() -> io::Result<UnixDatagram> {
        std::os::unix::net::UnixDatagram::unbound().map(UnixDatagram::from)
    }

    /// A pair of connected sockets (`socketpair(2)`).
    ///
    /// ```
    /// use monad_async::{io::UnixDatagram, Executor, Priority};
    /// let ex = Executor::new()?;
    /// let (a, b) = UnixDatagram::pair()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| {
    ///     a.send(cx, b"one")?;
    ///     b.recv(cx, &mut [0u8; 8])
    /// });
    /// assert_eq!(h.join().unwrap()?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `socketpair(2)`.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((a.into(), b.into()))
    }

    /// Sets the default peer of [`send`](UnixDatagram::send) and the only
    /// sender [`recv`](UnixDatagram::recv) accepts, by path (a plain
    /// system call: it never blocks for a datagram socket).
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("monad-doc-dc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let _server = monad_async::io::UnixDatagram::bind(dir.join("srv"))?;
    /// let c = monad_async::io::UnixDatagram::unbound()?;
    /// c.connect(dir.join("srv"))?;
    /// assert!(c.peer_addr()?.as_pathname().is_some());
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `connect(2)` (`ENOENT`, `ECONNREFUSED`, ...).
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.connect_addr(&SocketAddr::from_pathname(path)?)
    }

    /// As [`UnixDatagram::connect`], to `addr` (a path or an abstract
    /// name).
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(b"monad-doc-dconn")?;
    /// let _server = monad_async::io::UnixDatagram::bind_addr(&addr)?;
    /// let c = monad_async::io::UnixDatagram::unbound()?;
    /// c.connect_addr(&addr)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`UnixDatagram::connect`]; `EINVAL` for an unnamed address.
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        let (sun, len) = to_sockaddr_un(addr)?;
        // SAFETY: a valid address of `len` bytes.
        if unsafe { libc::connect(self.fd.as_raw_fd(), ptr::addr_of!(sun).cast(), len) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends one datagram to the path `path` (sendmsg through the ring).
    ///
    /// ```
    /// use monad_async::{io::UnixDatagram, Executor, Priority};
    /// let dir = std::env::temp_dir().join(format!("monad-doc-ds-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let server = UnixDatagram::bind(dir.join("srv"))?;
    /// let (c, p) = (UnixDatagram::unbound()?, dir.join("srv"));
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| {
    ///     c.send_to(cx, b"x", &p)?;
    ///     server.recv(cx, &mut [0u8; 4])
    /// });
    /// assert_eq!(h.join().unwrap()?, 1);
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The kernel's (`ENOENT`, `ECONNREFUSED`, `EMSGSIZE`, ...);
    /// `ECANCELED`, `ENOTSUP`.
    ///
    /// A receiver whose queue is full (`net.unix.max_dgram_qlen`
    /// datagrams) makes the send wait, as a blocking std send would: the
    /// task polls, then sleeps up to 5 ms at a time, until the datagram is
    /// taken.
    #[inline]
    pub fn send_to(
        &self,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
        path: impl AsRef<Path>,
    ) -> io::Result<usize> {
        self.send_to_addr(cx, buf, &SocketAddr::from_pathname(path)?)
    }

    /// Sends one datagram to `addr` (a path or an abstract name). See
    /// [`UnixDatagram`].
    ///
    /// ```
    /// use monad_async::{io::UnixDatagram, Executor, Priority};
    /// use std::os::linux::net::SocketAddrExt;
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(b"monad-doc-nobody-d")?;
    /// let c = UnixDatagram::unbound()?;
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| c.send_to_addr(cx, b"x", &addr));
    /// assert_eq!(h.join().unwrap().unwrap_err().raw_os_error(), Some(libc::ECONNREFUSED));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`UnixDatagram::send_to`]; `EINVAL` for an unnamed address.
    pub fn send_to_addr(
        &self,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
        addr: &SocketAddr,
    ) -> io::Result<usize> {
        let (sun, len) = to_sockaddr_un(addr)?;
        self.send_dgram(cx, buf, Some((&sun, len)))
    }

    /// One datagram through the ring, waiting out a full receiver without
    /// letting the kernel retry it.
    ///
    /// Why: a Unix datagram send that finds the receiver's queue full has
    /// already copied the data out of the iovec when it says EAGAIN, and
    /// io_uring's own retry then sends an empty datagram and reports 0
    /// (seen on Linux 6.18). So each try is MSG_DONTWAIT, and a full
    /// receiver is waited for here: a poll for POLLOUT (which a connected
    /// socket's receiver answers), then, if the queue is still full, sleeps
    /// of growing length (an unconnected sender has nothing to poll).
    fn send_dgram(
        &self,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
        to: Option<(&libc::sockaddr_un, libc::socklen_t)>,
    ) -> io::Result<usize> {
        let mut backoff = Duration::from_micros(50);
        let mut polled = false;
        loop {
            let mut iov = libc::iovec {
                iov_base: buf.as_ptr() as *mut libc::c_void,
                iov_len: buf.len(),
            };
            // SAFETY: all-zero is a valid msghdr.
            let mut msg: libc::msghdr = unsafe { mem::zeroed() };
            if let Some((sun, len)) = to {
                msg.msg_name = ptr::from_ref(sun).cast_mut().cast();
                msg.msg_namelen = len;
            }
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            // SAFETY: the running task; msg, iov, the address and buf
            // outlive the call, which returns only once the kernel is done
            // with them; the kernel only reads through them for a send.
            let r = unsafe {
                sys::monad_async_io_sendmsg(
                    cx.raw_task(),
                    ptr::null_mut(),
                    self.fd.as_raw_fd(),
                    ptr::addr_of!(msg).cast(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            match cx.check(r) {
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {}
                r => return r.map(to_usize),
            }
            if !polled {
                polled = true;
                super::poll(cx, self.fd.as_fd(), libc::POLLOUT)?;
            } else {
                cx.sleep(backoff)?;
                backoff = (backoff * 2).min(Duration::from_millis(5));
            }
        }
    }

    /// Receives one datagram; returns its length (the rest of a longer
    /// datagram is lost) and its sender's address. See [`UnixDatagram`].
    ///
    /// ```
    /// use monad_async::{io::UnixDatagram, Executor, Priority};
    /// let (a, b) = UnixDatagram::pair()?;
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| {
    ///     a.send(cx, b"hello")?;
    ///     let mut buf = [0u8; 2];
    ///     b.recv_from(cx, &mut buf).map(|(n, _)| n)
    /// });
    /// assert_eq!(h.join().unwrap()?, 2); // truncated
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`UnixDatagram::send_to`].
    pub fn recv_from(
        &self,
        cx: &mut TaskContext<'_>,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr)> {
        // SAFETY: all-zero is a valid sockaddr_un.
        let mut sun: libc::sockaddr_un = unsafe { mem::zeroed() };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: all-zero is a valid msghdr.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_name = ptr::addr_of_mut!(sun).cast();
        msg.msg_namelen = mem::size_of::<libc::sockaddr_un>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        // SAFETY: as for send_to_addr; the kernel writes `sun`, `buf` and
        // msg_namelen before the call returns.
        let r = unsafe {
            sys::monad_async_io_recvmsg(
                cx.raw_task(),
                ptr::null_mut(),
                self.fd.as_raw_fd(),
                ptr::addr_of_mut!(msg).cast(),
                0,
            )
        };
        let n = cx.check(r).map(to_usize)?;
        Ok((n, from_sockaddr_un(&sun, msg.msg_namelen)?))
    }

    /// Sends one datagram to the connected peer.
    ///
    /// ```
    /// use monad_async::{io::UnixDatagram, Executor, Priority};
    /// let (a, _b) = UnixDatagram::pair()?;
    /// let ex = Executor::new()?;
    /// assert_eq!(ex.spawn(Priority::Normal, move |cx| a.send(cx, b"abc")).join().unwrap()?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`UnixDatagram::send_to`]; `ENOTCONN` if not connected.
    #[inline]
    pub fn send(&self, cx: &mut TaskContext<'_>, buf: &[u8]) -> io::Result<usize> {
        self.send_dgram(cx, buf, None)
    }

    /// Receives one datagram (from the connected peer, if connected).
    /// See [`UnixDatagram::pair`].
    ///
    /// ```
    /// use monad_async::{io::UnixDatagram, Executor, Priority};
    /// let (a, b) = UnixDatagram::pair()?;
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| {
    ///     b.send(cx, b"")?; // an empty datagram is a datagram
    ///     a.recv(cx, &mut [0u8; 4])
    /// });
    /// assert_eq!(h.join().unwrap()?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`UnixDatagram::send_to`].
    #[inline]
    pub fn recv(&self, cx: &mut TaskContext<'_>, buf: &mut [u8]) -> io::Result<usize> {
        recv(cx, self.fd.as_raw_fd(), buf)
    }

    /// The bound address (unnamed if unbound).
    ///
    /// ```
    /// assert!(monad_async::io::UnixDatagram::unbound()?.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_name(self.fd.as_raw_fd(), false)
    }

    /// The connected peer's address.
    ///
    /// ```
    /// let s = monad_async::io::UnixDatagram::unbound()?;
    /// assert_eq!(s.peer_addr().unwrap_err().raw_os_error(), Some(libc::ENOTCONN));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `getpeername(2)` (`ENOTCONN`, ...).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sock_name(self.fd.as_raw_fd(), true)
    }
}

fd_conversions!(UnixDatagram, std::os::unix::net::UnixDatagram);

// Each owns a descriptor: any thread may own or use one, though the ring
// calls run on the executor of the task they are given.
static_assertions::assert_impl_all!(UnixListener: Send, Sync);
static_assertions::assert_impl_all!(UnixStream: Send, Sync);
static_assertions::assert_impl_all!(UnixDatagram: Send, Sync);
