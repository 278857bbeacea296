//! The few OS calls the harness makes itself: pinning to a core, raising
//! the open-file limit, CPU-time clocks of this or another process, and
//! how long a core has been idle.

use std::io;
use std::time::Duration;

/// The core the server runs on (main.rs pins it there); the generator
/// reads that core's idle time.
pub const SERVER_CORE: usize = 0;

/// Pins the calling thread to `core`; threads it creates afterwards
/// inherit the mask, so calling this first in `main` pins the process.
pub fn pin_to_core(core: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it.
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Raises RLIMIT_NOFILE's soft limit to its hard limit; the new soft limit.
pub fn raise_nofile() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit out-parameter.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: a valid rlimit in-parameter.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim.rlim_cur)
}

/// The CPU-time clock of process `pid` (0: this process): user + system
/// time of all its threads.
pub fn process_cpu_clock(pid: libc::pid_t) -> io::Result<libc::clockid_t> {
    if pid == 0 {
        return Ok(libc::CLOCK_PROCESS_CPUTIME_ID);
    }
    let mut id: libc::clockid_t = 0;
    // SAFETY: a valid out-parameter; the call only looks `pid` up.
    let r = unsafe { libc::clock_getcpuclockid(pid, &mut id) };
    if r == 0 {
        Ok(id)
    } else {
        Err(io::Error::from_raw_os_error(r))
    }
}

/// The current value of `clock`.
pub fn read_clock(clock: libc::clockid_t) -> io::Result<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec out-parameter.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[path = "../common/sock.rs"]
mod sock;
pub use sock::nodelay;

/// A loopback listener with a backlog of 4,096 (std's is 128), so that
/// 10,000 connections opened back to back are not dropped at the SYN and
/// retried a second later. Every server converts it to its own type.
pub fn listener() -> io::Result<std::net::TcpListener> {
    use std::os::fd::AsRawFd;
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    // SAFETY: listen on a bound socket we own; a second listen only
    // changes the backlog.
    if unsafe { libc::listen(l.as_raw_fd(), 4096) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(l)
}

/// User and system CPU time of process `pid` so far, in clock ticks
/// (fields 14 and 15 of /proc/PID/stat; 100 per second here). Coarse, so
/// only their ratio is used: how much of the server's time the kernel
/// takes.
pub fn proc_user_sys_ticks(pid: libc::pid_t) -> io::Result<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // count the fields after its closing one.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split(' ').collect();
    let num = |i: usize| -> io::Result<u64> {
        f.get(i)
            .and_then(|x| x.parse().ok())
            .ok_or_else(|| io::Error::other("unexpected /proc/PID/stat"))
    };
    // After the name: field 3 is at index 0, so field N at N - 3.
    Ok((num(14 - 3)?, num(15 - 3)?))
}

/// Nanoseconds core `core` has spent idle since boot. From cpuidle's
/// per-state residency (microseconds; a period still under way is counted
/// when it ends), else from /proc/stat's idle and iowait fields (clock
/// ticks, `_SC_CLK_TCK` a second: 100 here). A core's busy time over a window (wall
/// time less idle time) counts everything the core did, the server and
/// the interrupts and softirqs that ran on it whoever they were charged
/// to: without IRQ time accounting (this kernel), softirq work that runs
/// while a process is current is charged to that process, and work that
/// runs while the core idles to nobody, so a server that sleeps less is
/// charged more of the same work. Anything else that runs on that core
/// counts too: compare it on a quiet machine.
pub fn core_idle_ns(core: usize) -> io::Result<u64> {
    let dir = format!("/sys/devices/system/cpu/cpu{core}/cpuidle");
    if let Ok(states) = std::fs::read_dir(&dir) {
        let mut us = 0u64;
        let mut any = false;
        for st in states.flatten() {
            if let Ok(t) = std::fs::read_to_string(st.path().join("time")) {
                us += t.trim().parse::<u64>().unwrap_or(0);
                any = true;
            }
        }
        if any {
            return Ok(us * 1000);
        }
    }
    let stat = std::fs::read_to_string("/proc/stat")?;
    let name = format!("cpu{core} ");
    let line = stat
        .lines()
        .find(|l| l.starts_with(&name))
        .ok_or_else(|| io::Error::other("no such core in /proc/stat"))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let ticks = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    // SAFETY: sysconf reads a constant of the system.
    let per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(ticks * (1_000_000_000 / per_s))
}
