//! TCP and UDP sockets through the ring.

use super::file::close_fd;
use super::{to_fd, to_usize};
use super::{BufferRing, ProvidedBuffer};
use crate::error::errno;
use crate::sys;
use crate::task::TaskContext;
use std::io;
use std::mem;
use std::net::{Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

/// A socket address in the C layout, and its length.
pub(super) fn to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, u32) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for
            // any sockaddr type.
            let sin = unsafe { &mut *ptr::addr_of_mut!(ss).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *ptr::addr_of_mut!(ss).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as u32)
}

/// The std address of a C socket address.
pub(super) fn from_sockaddr(ss: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says it is a sockaddr_in.
            let sin = unsafe { &*ptr::addr_of!(*ss).cast::<libc::sockaddr_in>() };
            Ok(SocketAddr::V4(SocketAddrV4::new(
                sin.sin_addr.s_addr.to_ne_bytes().into(),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says it is a sockaddr_in6.
            let sin6 = unsafe { &*ptr::addr_of!(*ss).cast::<libc::sockaddr_in6>() };
            Ok(SocketAddr::V6(SocketAddrV6::new(
                sin6.sin6_addr.s6_addr.into(),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => Err(errno(libc::EAFNOSUPPORT)),
    }
}

pub(super) fn family(addr: &SocketAddr) -> libc::c_int {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

/// A new socket through the ring (or the system call on kernels without
/// IORING_OP_SOCKET).
pub(super) fn socket(
    cx: &mut TaskContext<'_>,
    domain: libc::c_int,
    ty: libc::c_int,
) -> io::Result<OwnedFd> {
    // SAFETY: the running task.
    let r = unsafe {
        sys::monad_async_io_socket(
            cx.raw_task(),
            ptr::null_mut(),
            domain,
            ty | libc::SOCK_CLOEXEC,
            0,
        )
    };
    let fd = to_fd(cx.check(r)?)?;
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[inline]
pub(super) fn send(cx: &mut TaskContext<'_>, fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the running task; the call returns only once the kernel is
    // done with `buf`.
    let r = unsafe {
        sys::monad_async_io_send(
            cx.raw_task(),
            ptr::null_mut(),
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    cx.check(r).map(to_usize)
}

#[inline]
pub(super) fn recv(cx: &mut TaskContext<'_>, fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: as for send.
    let r = unsafe {
        sys::monad_async_io_recv(
            cx.raw_task(),
            ptr::null_mut(),
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
        )
    };
    cx.check(r).map(to_usize)
}

pub(super) fn shutdown(cx: &mut TaskContext<'_>, fd: RawFd, how: Shutdown) -> io::Result<()> {
    let how = match how {
        Shutdown::Read => libc::SHUT_RD,
        Shutdown::Write => libc::SHUT_WR,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: the running task.
    cx.check(unsafe { sys::monad_async_io_shutdown(cx.raw_task(), ptr::null_mut(), fd, how) })
        .map(drop)
}

macro_rules! fd_conversions {
    ($ty:ident, $std:ty) => {
        impl From<$std> for $ty {
            fn from(s: $std) -> $ty {
                $ty { fd: s.into() }
            }
        }
        impl From<$ty> for $std {
            fn from(s: $ty) -> $std {
                s.fd.into()
            }
        }
        impl From<OwnedFd> for $ty {
            fn from(fd: OwnedFd) -> $ty {
                $ty { fd }
            }
        }
        impl From<$ty> for OwnedFd {
            fn from(s: $ty) -> OwnedFd {
                s.fd
            }
        }
        impl AsFd for $ty {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.fd.as_fd()
            }
        }
        impl AsRawFd for $ty {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.as_raw_fd()
            }
        }
    };
}
pub(super) use fd_conversions;

/// A listening TCP socket whose accepts go through the ring.
///
/// ```
/// use monad_async::io::{TcpListener, TcpStream};
/// use monad_async::{Executor, Priority};
///
/// let ex = Executor::new()?;
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let server = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
///     let (s, _) = listener.accept(cx)?;
///     let mut buf = [0u8; 4];
///     s.read_exact(cx, &mut buf)?;
///     s.write_all(cx, &buf)
/// });
/// let client = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<[u8; 4]> {
///     let s = TcpStream::connect(cx, addr)?;
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
pub struct TcpListener {
    fd: OwnedFd,
}

impl TcpListener {
    /// Binds and listens (plain system calls: they never block). Usable
    /// outside a task. Like std, tries each address `addr` resolves to
    /// and keeps the first that binds; a [`SocketAddr`] is one address,
    /// a `"host:port"` string may resolve to several. For the backlog and
    /// socket options before `bind(2)`, see [`TcpListener::builder`].
    ///
    /// # Errors
    ///
    /// As [`std::net::TcpListener::bind`].
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        std::net::TcpListener::bind(addr).map(TcpListener::from)
    }

    /// The bound address.
    ///
    /// # Errors
    ///
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(self.fd.as_raw_fd())
    }

    /// Accepts a connection through the ring.
    ///
    /// # Errors
    ///
    /// The kernel's; `ECANCELED`, `ENOTSUP`.
    pub fn accept(&self, cx: &mut TaskContext<'_>) -> io::Result<(TcpStream, SocketAddr)> {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::sockaddr_storage>() as u32;
        // SAFETY: the running task; `ss` and `len` outlive the call, which
        // returns only once the kernel has written them.
        let r = unsafe {
            sys::monad_async_io_accept(
                cx.raw_task(),
                ptr::null_mut(),
                self.fd.as_raw_fd(),
                ptr::addr_of_mut!(ss).cast(),
                &mut len,
                libc::SOCK_CLOEXEC,
            )
        };
        let fd = to_fd(cx.check(r)?)?;
        // SAFETY: the kernel just gave us this descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let stream = TcpStream { fd };
        Ok((stream, from_sockaddr(&ss)?))
    }
}

fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: valid out-pointers of the right size.
    if unsafe { libc::getsockname(fd, ptr::addr_of_mut!(ss).cast(), &mut len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    from_sockaddr(&ss)
}

fd_conversions!(TcpListener, std::net::TcpListener);

/// A connected TCP socket whose sends and receives go through the ring.
#[derive(Debug)]
pub struct TcpStream {
    fd: OwnedFd,
}

impl TcpStream {
    /// Creates a socket and connects it to `addr`, both through the ring.
    ///
    /// # Errors
    ///
    /// The kernel's (`ECONNREFUSED`, ...); `ECANCELED`, `ENOTSUP`.
    pub fn connect(cx: &mut TaskContext<'_>, addr: SocketAddr) -> io::Result<TcpStream> {
        let fd = socket(cx, family(&addr), libc::SOCK_STREAM)?;
        let (ss, len) = to_sockaddr(&addr);
        // SAFETY: the running task; `ss` outlives the call.
        let r = unsafe {
            sys::monad_async_io_connect(
                cx.raw_task(),
                ptr::null_mut(),
                fd.as_raw_fd(),
                ptr::addr_of!(ss).cast(),
                len,
            )
        };
        cx.check(r)?;
        Ok(TcpStream { fd })
    }

    /// Sends from `buf`; returns the bytes sent.
    ///
    /// # Errors
    ///
    /// The kernel's (`EPIPE`, ...); `ECANCELED`, `ENOTSUP`.
    #[inline]
    pub fn send(&self, cx: &mut TaskContext<'_>, buf: &[u8]) -> io::Result<usize> {
        send(cx, self.fd.as_raw_fd(), buf)
    }

    /// Receives into `buf`; returns the bytes received (0: the peer shut
    /// down its side).
    ///
    /// # Errors
    ///
    /// As [`TcpStream::send`].
    #[inline]
    pub fn recv(&self, cx: &mut TaskContext<'_>, buf: &mut [u8]) -> io::Result<usize> {
        recv(cx, self.fd.as_raw_fd(), buf)
    }

    /// Receives into a buffer the kernel picks from `ring` as the data
    /// arrives, so the wait holds no buffer: `Some` with the bytes (at most
    /// the ring's buffer size), `None` once the peer has shut down its
    /// side. Dropping the buffer gives it back to the ring.
    ///
    /// ```
    /// use monad_async::io::{BufferRing, TcpListener, TcpStream};
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let ring = std::rc::Rc::new(BufferRing::new(&ex, 1024, 4)?);
    /// let server = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<usize> {
    ///     let (conn, _) = listener.accept(cx)?;
    ///     let first = conn.recv_provided(cx, &ring)?.map_or(0, |b| b.len());
    ///     Ok(first)
    /// });
    /// ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     TcpStream::connect(cx, addr)?.write_all(cx, b"hi")
    /// });
    /// ex.run_until_idle()?;
    /// assert_eq!(server.join().unwrap()?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `ENOBUFS` when every buffer of the ring is out (the receive is not
    /// retried: drop some and call again); `EINVAL` when the ring belongs to
    /// another executor or its executor is gone; otherwise as
    /// [`TcpStream::send`].
    pub fn recv_provided<'b, 'r: 'b, 'c: 'b>(
        &self,
        cx: &mut TaskContext<'c>,
        ring: &'r BufferRing,
    ) -> io::Result<Option<ProvidedBuffer<'b>>> {
        ring.recv(cx, self.fd.as_raw_fd(), 0)
    }

    /// Sends all of `buf`.
    ///
    /// # Errors
    ///
    /// `WriteZero` if nothing more is accepted; otherwise as
    /// [`TcpStream::send`].
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
    /// # Errors
    ///
    /// `UnexpectedEof` if the peer shuts down first; otherwise as
    /// [`TcpStream::recv`].
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
    /// # Errors
    ///
    /// As [`TcpStream::send`].
    pub fn shutdown(&self, cx: &mut TaskContext<'_>, how: Shutdown) -> io::Result<()> {
        shutdown(cx, self.fd.as_raw_fd(), how)
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(self.fd.as_raw_fd())
    }

    /// Closes through the ring, reporting the kernel's verdict.
    ///
    /// # Errors
    ///
    /// The kernel's; on `ECANCELED`/`ENOTSUP` drop closes it instead.
    pub fn close(self, cx: &mut TaskContext<'_>) -> io::Result<()> {
        close_fd(cx, self.fd)
    }
}

fd_conversions!(TcpStream, std::net::TcpStream);

/// A UDP socket whose datagrams go through the ring.
#[derive(Debug)]
pub struct UdpSocket {
    fd: OwnedFd,
}

impl UdpSocket {
    /// Binds (a plain system call). Usable outside a task.
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::bind`].
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        std::net::UdpSocket::bind(addr).map(UdpSocket::from)
    }

    /// The bound address.
    ///
    /// # Errors
    ///
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(self.fd.as_raw_fd())
    }

    /// Sends one datagram to `addr` (sendmsg through the ring).
    ///
    /// # Errors
    ///
    /// The kernel's; `ECANCELED`, `ENOTSUP`.
    pub fn send_to(
        &self,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
        addr: SocketAddr,
    ) -> io::Result<usize> {
        let (mut ss, len) = to_sockaddr(&addr);
        let mut iov = libc::iovec {
            iov_base: buf.as_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: all-zero is a valid msghdr.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_name = ptr::addr_of_mut!(ss).cast();
        msg.msg_namelen = len;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        // SAFETY: the running task; msg, iov, ss and buf outlive the call,
        // which returns only once the kernel is done with them. The
        // kernel only reads through iov_base for a send.
        let r = unsafe {
            sys::monad_async_io_sendmsg(
                cx.raw_task(),
                ptr::null_mut(),
                self.fd.as_raw_fd(),
                ptr::addr_of!(msg).cast(),
                0,
            )
        };
        cx.check(r).map(to_usize)
    }

    /// Receives one datagram; returns its length and sender.
    ///
    /// # Errors
    ///
    /// As [`UdpSocket::send_to`].
    pub fn recv_from(
        &self,
        cx: &mut TaskContext<'_>,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr)> {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: all-zero is a valid msghdr.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_name = ptr::addr_of_mut!(ss).cast();
        msg.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        // SAFETY: as for send_to.
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
        Ok((n, from_sockaddr(&ss)?))
    }

    /// Connects to `addr` (a plain system call: it never blocks for UDP).
    ///
    /// # Errors
    ///
    /// As `connect(2)`.
    pub fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        let (ss, len) = to_sockaddr(&addr);
        // SAFETY: a valid address of `len` bytes.
        if unsafe { libc::connect(self.fd.as_raw_fd(), ptr::addr_of!(ss).cast(), len) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends one datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// As [`UdpSocket::send_to`].
    #[inline]
    pub fn send(&self, cx: &mut TaskContext<'_>, buf: &[u8]) -> io::Result<usize> {
        send(cx, self.fd.as_raw_fd(), buf)
    }

    /// Receives one datagram from the connected peer.
    ///
    /// # Errors
    ///
    /// As [`UdpSocket::send_to`].
    #[inline]
    pub fn recv(&self, cx: &mut TaskContext<'_>, buf: &mut [u8]) -> io::Result<usize> {
        recv(cx, self.fd.as_raw_fd(), buf)
    }

    /// Receives one datagram from the connected peer into a buffer the
    /// kernel picks from `ring` (a datagram longer than the ring's buffers
    /// is truncated to them). `Some` with the datagram's bytes; dropping
    /// the buffer gives it back to the ring.
    ///
    /// ```
    /// use monad_async::io::{BufferRing, UdpSocket};
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let ring = std::rc::Rc::new(BufferRing::new(&ex, 64, 2)?);
    /// let s = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    /// s.connect(s.local_addr()?)?; // talk to itself
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Vec<u8>> {
    ///     s.send(cx, b"ping")?;
    ///     Ok(s.recv_provided(cx, &ring)?.map(|b| b.to_vec()).unwrap_or_default())
    /// });
    /// assert_eq!(h.join().unwrap()?, b"ping");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`TcpStream::recv_provided`].
    pub fn recv_provided<'b, 'r: 'b, 'c: 'b>(
        &self,
        cx: &mut TaskContext<'c>,
        ring: &'r BufferRing,
    ) -> io::Result<Option<ProvidedBuffer<'b>>> {
        ring.recv(cx, self.fd.as_raw_fd(), 0)
    }
}

fd_conversions!(UdpSocket, std::net::UdpSocket);
