//! Socket options the benches set on raw descriptors (a peer runtime's
//! socket has no std type to call `set_nodelay` on). Shared by the bench
//! files with `#[path]`.

use std::io;

/// Sets TCP_NODELAY on socket `fd`.
pub fn nodelay(fd: i32) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a valid option buffer of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
