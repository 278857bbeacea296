//! An executor whose io_uring cannot be created says why. In a child
//! process a seccomp filter answers io_uring_setup with EPERM (what
//! container runtimes' default profiles do) or ENOSYS: building an
//! executor with a ring fails with an error of that errno's kind that
//! names the cause, the errno is in its `RingSetupError`, and an executor
//! without a ring still works. Too many entries is explained without any
//! filter, and a thread pool asking for a ring reports the same way.

mod common;

use monad_async::{Executor, Priority, RingSetupError, ThreadPool};
use std::io;

/// Refuses io_uring_setup with `err` in this process from now on.
fn refuse_io_uring_setup(err: u32) {
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
    const ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
    let stmt = |code, k| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k, jt, jf| libc::sock_filter {
        code: JEQ_K,
        jt,
        jf,
        k,
    };
    let filter = [
        stmt(LD_W_ABS, 4), // seccomp_data.arch
        jump(ARCH, 1, 0),
        stmt(RET_K, ALLOW),
        stmt(LD_W_ABS, 0), // seccomp_data.nr
        jump(libc::SYS_io_uring_setup as u32, 0, 1),
        stmt(RET_K, ERRNO | err),
        stmt(RET_K, ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: plain system calls on a valid, live filter program.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::syscall(libc::SYS_seccomp, 1 /* SET_MODE_FILTER */, 0, &prog),
            0,
            "seccomp: {}",
            io::Error::last_os_error()
        );
    }
}

fn ring_error(err: &io::Error) -> &RingSetupError {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<RingSetupError>())
        .unwrap_or_else(|| panic!("no RingSetupError in {err:?}"))
}

fn refused(errno: i32, kind: io::ErrorKind) {
    refuse_io_uring_setup(errno as u32);
    let Err(err) = Executor::new() else {
        panic!("the ring must be refused");
    };
    assert_eq!(err.kind(), kind);
    let why = ring_error(&err);
    assert_eq!(why.errno(), errno);
    let msg = err.to_string();
    assert!(msg.contains("seccomp"), "{msg}");
    assert!(msg.contains(&format!("os error {errno}")), "{msg}");
    println!("{msg}");

    let Err(err) = ThreadPool::builder().threads(1).ring_entries(16).build() else {
        panic!("the pool's ring must be refused");
    };
    assert_eq!(ring_error(&err).errno(), errno);

    // No ring, no problem.
    let ex = Executor::builder().ring_entries(0).build().unwrap();
    assert_eq!(ex.spawn(Priority::Normal, |_cx| 7).join().unwrap(), 7);
}

/// The child passed, and really ran the case (it prints the message).
fn check_child(out: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("cannot create the executor's io_uring"),
        "{stdout}"
    );
}

#[test]
fn refused_by_seccomp_with_eperm() {
    common::in_child(
        "MA_RING_ERROR",
        "refused_by_seccomp_with_eperm",
        "eperm",
        || refused(libc::EPERM, io::ErrorKind::PermissionDenied),
        check_child,
    );
}

#[test]
fn refused_by_seccomp_with_enosys() {
    common::in_child(
        "MA_RING_ERROR",
        "refused_by_seccomp_with_enosys",
        "enosys",
        || refused(libc::ENOSYS, io::ErrorKind::Unsupported),
        check_child,
    );
}

#[test]
fn too_many_entries_is_explained_and_a_normal_ring_works() {
    let err = Executor::builder()
        .ring_entries(1 << 20)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(ring_error(&err).errno(), libc::EINVAL);
    assert!(ring_error(&err).explanation().contains("entries"));
    // The same builder with a sane size makes a ring here, so the
    // refusals in the other cases are their filters' doing.
    let ex = Executor::builder().ring_entries(64).build().unwrap();
    assert_eq!(ex.stats().io.sq_entries, 64);
    // Errors that are not about the ring stay plain errno errors.
    let err = ThreadPool::builder().threads(0).build().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
}
