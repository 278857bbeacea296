//! Task dumps: what every task of an executor is doing right now.
//!
//! A suspended stackful task is invisible to tools that walk threads.
//! [`Executor::dump`](crate::Executor::dump) (on the executor's thread),
//! [`ExecutorHandle::dump`](crate::ExecutorHandle::dump) (from any
//! thread) and [`ThreadPool::dump`](crate::ThreadPool::dump) (one per
//! worker) list the tasks: what each is doing
//! ([`Activity`]: runnable, parked, sleeping, waiting for which I/O on
//! which fd, ...), its priorities, and its time figures.
//!
//! # Invariants
//!
//! * A dump is a snapshot taken on the executor's thread, between two of
//!   its steps, from the executor's own bookkeeping (no lock, no system
//!   call): every task attached at that moment, oldest attach first.
//! * Tasks spawned from other threads appear once the executor has taken
//!   them from its inbox (its next pass of the run loop).
//! * Times are `None` on an executor built with
//!   [`time_tracking(false)`](crate::ExecutorBuilder::time_tracking).
//!
//! # Printing a dump on demand
//!
//! A service that wants a dump on `SIGQUIT` (as the JVM prints its
//! threads) blocks the signal in every thread, waits for it on a thread
//! of its own with `sigwait`, and prints
//! [`ExecutorHandle::dump`](crate::ExecutorHandle::dump) from there: the
//! executor answers between two slices.
//!
//! ```no_run
//! use monad_async::Executor;
//!
//! // First thing in main, before any thread starts (they inherit the mask).
//! // SAFETY: plain libc calls on a local signal set.
//! let set = unsafe {
//!     let mut set: libc::sigset_t = std::mem::zeroed();
//!     libc::sigemptyset(&mut set);
//!     libc::sigaddset(&mut set, libc::SIGQUIT);
//!     libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
//!     set
//! };
//! let ex = Executor::new()?;
//! let handle = ex.handle();
//! std::thread::spawn(move || loop {
//!     let mut sig = 0;
//!     // SAFETY: `set` is a valid signal set; `sig` a valid out-pointer.
//!     unsafe { libc::sigwait(&set, &mut sig) };
//!     match handle.dump() {
//!         Ok(dump) => eprintln!("{dump}"), // `kill -QUIT <pid>` prints it
//!         Err(_) => break,                 // the executor is gone
//!     }
//! });
//! // ... spawn the service's tasks, then run the executor:
//! ex.run_until_idle()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ```
//! use monad_async::{Activity, Executor, Priority};
//! use std::time::Duration;
//!
//! let ex = Executor::new()?;
//! ex.spawn(Priority::Low, |cx| cx.sleep(Duration::from_millis(50)));
//! ex.run(16, Some(Duration::ZERO))?; // it starts its sleep
//! let handle = ex.handle();
//! let printer = std::thread::spawn(move || handle.dump());
//! // The executor answers the other thread's request as it runs.
//! let dump = loop {
//!     let _ = ex.run(16, Some(Duration::from_millis(1))); // Err(ETIME) when idle
//!     if printer.is_finished() {
//!         break printer.join().unwrap()?;
//!     }
//! };
//! assert_eq!(dump.len(), 1);
//! assert_eq!(dump[0].activity(), Activity::Sleeping);
//! println!("{dump}");
//! # ex.run_until_idle()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::error::check;
use crate::sys;
use crate::task::Slot;
use crate::ticks::{self, ticks_now};
use crate::{LatencyStats, Priority};
use std::fmt;
use std::io;
use std::ops::Deref;
use std::time::Duration;

/// What a task is doing, in a [`TaskInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Activity {
    /// Spawned, not yet started.
    PendingLaunch,
    /// Ready to run (it yielded, or was woken and has not run since).
    Runnable,
    /// Running now: the task that took the dump.
    Running,
    /// In a timed sleep ([`TaskContext::sleep`](crate::TaskContext::sleep)).
    Sleeping,
    /// Parked: in a join, a lock, a channel, a
    /// [`park`](crate::TaskContext::park)...
    Parked,
    /// Waiting for an I/O operation to complete: see [`TaskInfo::io`].
    Io,
    /// Waiting to start I/O (for a slot of the in-flight guard, or for
    /// the kernel to take submissions).
    IoQueued,
    /// Waiting for a registered buffer.
    Buffer,
    /// Its closure returned; waiting for the kernel to finish operations
    /// it left in flight.
    Exiting,
}

impl Activity {
    fn from_sys(a: u32) -> Activity {
        use sys::monad_async_task_activity as A;
        match a {
            x if x == A::MONAD_ASYNC_TASK_ACTIVITY_PENDING_LAUNCH.0 => Activity::PendingLaunch,
            x if x == A::MONAD_ASYNC_TASK_ACTIVITY_RUNNING.0 => Activity::Running,
            x if x == A::MONAD_ASYNC_TASK_ACTIVITY_SLEEPING.0 => Activity::Sleeping,
            x if x == A::MONAD_ASYNC_TASK_ACTIVITY_PARKED.0 => Activity::Parked,
            x if x == A::MONAD_ASYNC_TASK_ACTIVITY_IO.0 => Activity::Io,
            x if x == A::MONAD_ASYNC_TASK_ACTIVITY_IO_QUEUED.0 => Activity::IoQueued,
            x if x == A::MONAD_ASYNC_TASK_ACTIVITY_BUFFER.0 => Activity::Buffer,
            x if x == A::MONAD_ASYNC_TASK_ACTIVITY_EXITING.0 => Activity::Exiting,
            _ => Activity::Runnable,
        }
    }

    /// A short lower-case name: "runnable", "parked", "io", ...
    ///
    /// ```
    /// assert_eq!(monad_async::Activity::IoQueued.name(), "io-queued");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Activity::PendingLaunch => "pending",
            Activity::Runnable => "runnable",
            Activity::Running => "running",
            Activity::Sleeping => "sleeping",
            Activity::Parked => "parked",
            Activity::Io => "io",
            Activity::IoQueued => "io-queued",
            Activity::Buffer => "buffer",
            Activity::Exiting => "exiting",
        }
    }
}

impl fmt::Display for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The I/O operation a task waits for, in a [`TaskInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IoWait {
    opcode: u8,
    fd: i32,
}

impl IoWait {
    /// The io_uring opcode (`IORING_OP_*`).
    ///
    /// ```
    /// # use monad_async::{Activity, Executor, Priority};
    /// # let ex = Executor::new()?;
    /// # let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// # let a = monad_async::io::TcpStream::from(std::os::fd::OwnedFd::from(a));
    /// # ex.spawn(Priority::Normal, move |cx| a.recv(cx, &mut [0u8; 1]));
    /// # ex.run(16, Some(std::time::Duration::ZERO))?;
    /// let io = ex.dump()?[0].io().unwrap();
    /// assert_eq!(io.opcode(), 27); // IORING_OP_RECV
    /// # std::io::Write::write_all(&mut &b, b"x")?;
    /// # ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn opcode(&self) -> u8 {
        self.opcode
    }

    /// The operation's name: "recv", "accept", "read", ... ("op N" for an
    /// opcode this crate does not name).
    ///
    /// ```
    /// # use monad_async::{Activity, Executor, Priority};
    /// # let ex = Executor::new()?;
    /// # let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// # let a = monad_async::io::TcpStream::from(std::os::fd::OwnedFd::from(a));
    /// # ex.spawn(Priority::Normal, move |cx| a.recv(cx, &mut [0u8; 1]));
    /// # ex.run(16, Some(std::time::Duration::ZERO))?;
    /// let dump = ex.dump()?;
    /// assert_eq!(dump[0].io().unwrap().name(), "recv");
    /// # std::io::Write::write_all(&mut &b, b"x")?;
    /// # ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn name(&self) -> std::borrow::Cow<'static, str> {
        const NAMES: [&str; 49] = [
            "nop",
            "readv",
            "writev",
            "fsync",
            "read_fixed",
            "write_fixed",
            "poll_add",
            "poll_remove",
            "sync_file_range",
            "sendmsg",
            "recvmsg",
            "timeout",
            "timeout_remove",
            "accept",
            "async_cancel",
            "link_timeout",
            "connect",
            "fallocate",
            "openat",
            "close",
            "files_update",
            "statx",
            "read",
            "write",
            "fadvise",
            "madvise",
            "send",
            "recv",
            "openat2",
            "epoll_ctl",
            "splice",
            "provide_buffers",
            "remove_buffers",
            "tee",
            "shutdown",
            "renameat",
            "unlinkat",
            "mkdirat",
            "symlinkat",
            "linkat",
            "msg_ring",
            "fsetxattr",
            "setxattr",
            "fgetxattr",
            "getxattr",
            "socket",
            "uring_cmd",
            "send_zc",
            "sendmsg_zc",
        ];
        match NAMES.get(usize::from(self.opcode)) {
            Some(n) => std::borrow::Cow::Borrowed(n),
            None => std::borrow::Cow::Owned(format!("op {}", self.opcode)),
        }
    }

    /// The file descriptor the operation names (an index into the
    /// registered files for a fixed-file operation); `None` for one that
    /// names none (a timeout).
    ///
    /// ```
    /// # use monad_async::{Activity, Executor, Priority};
    /// # use std::os::fd::AsRawFd;
    /// # let ex = Executor::new()?;
    /// # let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// # let fd = a.as_raw_fd();
    /// # let a = monad_async::io::TcpStream::from(std::os::fd::OwnedFd::from(a));
    /// # ex.spawn(Priority::Normal, move |cx| a.recv(cx, &mut [0u8; 1]));
    /// # ex.run(16, Some(std::time::Duration::ZERO))?;
    /// assert_eq!(ex.dump()?[0].io().unwrap().fd(), Some(fd));
    /// # std::io::Write::write_all(&mut &b, b"x")?;
    /// # ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn fd(&self) -> Option<i32> {
        (self.fd >= 0).then_some(self.fd)
    }
}

impl fmt::Display for IoWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fd() {
            Some(fd) => write!(f, "{} fd {fd}", self.name()),
            None => f.write_str(&self.name()),
        }
    }
}

/// One task of a [`Dump`].
#[derive(Debug, Clone)]
pub struct TaskInfo {
    raw: sys::monad_async_task_info,
    now: u64,
    id: u64,
    name: Option<Box<str>>,
}

// SAFETY: a TaskInfo is plain data: the task and user pointers in it are
// never dereferenced through it, only compared.
unsafe impl Send for TaskInfo {}
// SAFETY: as above.
unsafe impl Sync for TaskInfo {}

impl TaskInfo {
    /// The task's id (as [`JoinHandle::id`](crate::JoinHandle::id)); 0
    /// for a task whose closure has returned ([`Activity::Exiting`]).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |_cx| ());
    /// assert_eq!(ex.dump()?[0].id(), h.id());
    /// # ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The task's name, if it was given one (see
    /// [`Executor::build_task`](crate::Executor::build_task)).
    ///
    /// ```
    /// use monad_async::Executor;
    /// let ex = Executor::new()?;
    /// ex.build_task().name("conn-42").spawn(|_cx| ());
    /// assert_eq!(ex.dump()?[0].name(), Some("conn-42"));
    /// # ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What it is doing.
    ///
    /// ```
    /// use monad_async::{Activity, Executor, Priority};
    /// let ex = Executor::new()?;
    /// ex.spawn(Priority::Normal, |_cx| ());
    /// assert_eq!(ex.dump()?[0].activity(), Activity::PendingLaunch);
    /// # ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn activity(&self) -> Activity {
        Activity::from_sys(self.raw.activity)
    }

    /// Its CPU priority now (it may have been
    /// [changed](crate::TaskContext::set_priority) since it was spawned).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// let ex = Executor::new()?;
    /// ex.spawn(Priority::High, |_cx| ());
    /// assert_eq!(ex.dump()?[0].priority(), Priority::High);
    /// # ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn priority(&self) -> Priority {
        Priority::from_sys(self.raw.cpu_priority)
    }

    /// Its I/O priority (a spawn gives it the CPU priority;
    /// [`set_io_priority`](crate::TaskContext::set_io_priority) changes it).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// let ex = Executor::new()?;
    /// ex.spawn(Priority::High, |_cx| ());
    /// assert_eq!(ex.dump()?[0].io_priority(), Priority::High);
    /// # ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn io_priority(&self) -> Priority {
        Priority::from_sys(self.raw.io_priority)
    }

    /// The I/O operation it waits for (with [`Activity::Io`], and with
    /// [`Activity::Sleeping`] on an executor with a ring, where a sleep is
    /// a kernel timeout).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// let ex = Executor::new()?;
    /// ex.spawn(Priority::Normal, |_cx| ());
    /// assert!(ex.dump()?[0].io().is_none());
    /// # ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn io(&self) -> Option<IoWait> {
        u8::try_from(self.raw.io_opcode).ok().map(|opcode| IoWait {
            opcode,
            fd: self.raw.io_fd,
        })
    }

    /// True once the task was cancelled.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| cx.park());
    /// ex.run(16, Some(std::time::Duration::ZERO))?;
    /// assert!(!ex.dump()?[0].is_cancelled());
    /// h.cancel()?;
    /// # ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.raw.cancelled != 0
    }

    /// How many times it has suspended in its current work.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// let ex = Executor::new()?;
    /// ex.spawn(Priority::Normal, |cx| {
    ///     cx.yield_now()?;
    ///     cx.yield_now()
    /// });
    /// ex.run(2, Some(std::time::Duration::ZERO))?;
    /// assert_eq!(ex.dump()?[0].suspensions(), 2);
    /// # ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn suspensions(&self) -> u64 {
        self.raw.suspensions
    }

    /// Operations in flight that it started without waiting for them.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// let ex = Executor::new()?;
    /// ex.spawn(Priority::Normal, |_cx| ());
    /// assert_eq!(ex.dump()?[0].io_in_flight(), 0);
    /// # ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn io_in_flight(&self) -> u32 {
        self.raw.io_inflight
    }

    /// Time since it was spawned; `None` without time tracking.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// let ex = Executor::new()?;
    /// ex.spawn(Priority::Normal, |_cx| ());
    /// std::thread::sleep(std::time::Duration::from_millis(2));
    /// let age = ex.dump()?[0].age().unwrap();
    /// assert!(age >= std::time::Duration::from_millis(2));
    /// # ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn age(&self) -> Option<Duration> {
        self.since(self.raw.ticks_attached)
    }

    /// Time it has spent running; `None` without time tracking.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// let ex = Executor::new()?;
    /// ex.spawn(Priority::Normal, |cx| cx.yield_now());
    /// ex.run(1, Some(std::time::Duration::ZERO))?;
    /// assert!(ex.dump()?[0].executing().unwrap() > std::time::Duration::ZERO);
    /// # ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn executing(&self) -> Option<Duration> {
        (self.raw.ticks_attached != 0).then(|| ticks::ticks_to_duration(self.raw.ticks_executing))
    }

    /// How long it has been suspended, if it is (it ran before, and is
    /// not runnable or running); `None` without time tracking.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::time::Duration;
    /// let ex = Executor::new()?;
    /// ex.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_millis(20)));
    /// ex.run(1, Some(Duration::ZERO))?;
    /// std::thread::sleep(Duration::from_millis(2));
    /// assert!(ex.dump()?[0].waiting().unwrap() >= Duration::from_millis(2));
    /// # ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn waiting(&self) -> Option<Duration> {
        match self.activity() {
            Activity::PendingLaunch | Activity::Runnable | Activity::Running => None,
            _ => self.since(self.raw.ticks_suspended),
        }
    }

    /// Time left until the deadline of its current wait (a sleep, a
    /// [`park_timeout`](crate::TaskContext::park_timeout), a
    /// [`timeout`](crate::TaskContext::timeout)); zero once passed. `None`
    /// without a deadline or without time tracking.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::time::Duration;
    /// let ex = Executor::new()?;
    /// ex.spawn(Priority::Normal, |cx| cx.park_timeout(Duration::from_secs(5)));
    /// ex.run(1, Some(Duration::ZERO))?;
    /// let left = ex.dump()?[0].deadline().unwrap();
    /// assert!(left > Duration::from_secs(4) && left <= Duration::from_secs(6));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn deadline(&self) -> Option<Duration> {
        let d = self.raw.deadline;
        (d != 0 && d != u64::MAX && self.raw.ticks_attached != 0)
            .then(|| ticks::ticks_to_duration(d.saturating_sub(self.now)))
    }

    fn since(&self, stamp: u64) -> Option<Duration> {
        (stamp != 0).then(|| ticks::ticks_to_duration(self.now.saturating_sub(stamp)))
    }
}

impl fmt::Display for TaskInfo {
    /// One line: activity (with the I/O operation and fd), priorities,
    /// age, time running, time waiting, suspensions, deadline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "id {:<6} {:<12} ", self.id, format!("'{name}'"))?,
            None => write!(f, "id {:<6} {:<12} ", self.id, "")?,
        }
        let what = match (self.activity(), self.io()) {
            (Activity::Io | Activity::Sleeping, Some(io)) => format!("{} ({io})", self.activity()),
            (a, _) => a.to_string(),
        };
        write!(
            f,
            "{what:<22} cpu {:<6} io {:<6}",
            format!("{:?}", self.priority()),
            format!("{:?}", self.io_priority())
        )?;
        let ms = |d: Option<Duration>| d.map(|d| format!("{:.3} ms", d.as_secs_f64() * 1e3));
        if let Some(age) = ms(self.age()) {
            write!(f, " age {age}")?;
        }
        if let Some(run) = ms(self.executing()) {
            write!(f, " ran {run}")?;
        }
        if let Some(w) = ms(self.waiting()) {
            write!(f, " waiting {w}")?;
        }
        write!(f, " suspensions {}", self.suspensions())?;
        if let Some(d) = ms(self.deadline()) {
            write!(f, " deadline in {d}")?;
        }
        if self.io_in_flight() != 0 {
            write!(f, " in flight {}", self.io_in_flight())?;
        }
        if self.is_cancelled() {
            f.write_str(" CANCELLED")?;
        }
        Ok(())
    }
}

/// A snapshot of an executor's tasks, oldest spawn first; from
/// [`Executor::dump`](crate::Executor::dump) or
/// [`ExecutorHandle::dump`](crate::ExecutorHandle::dump). Derefs to a
/// slice of [`TaskInfo`]; `Display` prints one line per task.
///
/// ```
/// use monad_async::{Executor, Priority};
/// let ex = Executor::new()?;
/// ex.spawn(Priority::Normal, |_cx| ());
/// let dump = ex.dump()?;
/// assert_eq!(dump.len(), 1);
/// assert!(dump.to_string().contains("pending"));
/// # ex.run_until_idle()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Dump {
    tasks: Vec<TaskInfo>,
    latency: LatencyStats,
}

impl Dump {
    /// The executor's latency histograms when the dump was taken (see
    /// [`LatencyStats`]); printed after the tasks.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// let ex = Executor::new()?;
    /// ex.spawn(Priority::High, |_cx| ()).join().unwrap();
    /// let dump = ex.dump()?;
    /// assert_eq!(dump.latency().launch(Priority::High).count(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn latency(&self) -> &LatencyStats {
        &self.latency
    }
}

impl Deref for Dump {
    type Target = [TaskInfo];

    fn deref(&self) -> &[TaskInfo] {
        &self.tasks
    }
}

impl IntoIterator for Dump {
    type Item = TaskInfo;
    type IntoIter = std::vec::IntoIter<TaskInfo>;

    fn into_iter(self) -> Self::IntoIter {
        self.tasks.into_iter()
    }
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} tasks", self.tasks.len())?;
        for (i, t) in self.tasks.iter().enumerate() {
            writeln!(f, "  #{i:<4} {t}")?;
        }
        writeln!(f, "latency (spawn to first slice; wake to resume):")?;
        for line in self.latency.to_string().lines() {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// Takes a dump of `ex` on its thread, leaving out `skip` (the task taking
/// it on another thread's behalf).
///
/// # Safety
/// `ex` is a live executor and this is its thread.
pub(crate) unsafe fn take(
    ex: sys::monad_async_executor,
    skip: Option<sys::monad_async_task>,
) -> io::Result<Dump> {
    let mut raw: Vec<sys::monad_async_task_info> = Vec::new();
    loop {
        // SAFETY: per the contract; `raw` has room for its capacity.
        let n =
            check(unsafe { sys::monad_async_executor_dump(ex, raw.as_mut_ptr(), raw.capacity()) })?
                as usize;
        if n <= raw.capacity() {
            // SAFETY: the C side wrote the first n records.
            unsafe { raw.set_len(n) };
            break;
        }
        raw.reserve_exact(n);
    }
    let now = ticks_now();
    // SAFETY: per the contract; a copy read through addr_of!, on the
    // executor's thread, which is not inside a C call.
    let latency = LatencyStats::from_sys(&unsafe { std::ptr::addr_of!((*ex).latency).read() });
    Ok(Dump {
        latency,
        tasks: raw
            .into_iter()
            .filter(|raw| Some(raw.task) != skip)
            .map(|raw| {
                // A task whose closure has returned (its I/O draining)
                // may have its name taken by its join meanwhile: no id or
                // name for it. Any other is mid-work: its slot is held by
                // that work, on this thread.
                let (id, name) = if Activity::from_sys(raw.activity) == Activity::Exiting {
                    (0, None)
                } else {
                    // SAFETY: every task of this crate's executors carries
                    // a slot; its work is live (above), so the slot is
                    // held for it and its name is not being taken.
                    let slot = unsafe { Slot::of(raw.task) };
                    // SAFETY: as above.
                    (slot.id(), unsafe { slot.name() }.map(Box::from))
                };
                TaskInfo { raw, now, id, name }
            })
            .collect(),
    })
}

/// One dump request to an executor running on another thread (a thread
/// pool's worker): a bare C task, not one of this crate's slots, runs the
/// dump on the executor's thread and hands it back.
struct RemoteDump {
    ex: sys::monad_async_executor,
    result: std::sync::Mutex<Option<io::Result<Dump>>>,
    done: std::sync::atomic::AtomicBool,
    waiter: std::thread::Thread,
}

/// The bare task's code: takes the dump, leaving itself out.
unsafe extern "C" fn remote_dump_entry(task: sys::monad_async_task) -> sys::monad_async_result {
    // SAFETY: user_ptr is the RemoteDump (tagged, see REMOTE_TAG) that
    // `remote` keeps alive until it has seen `done` and the task's exit.
    let req = unsafe { &*(((*task).user_ptr as usize & !REMOTE_TAG) as *const RemoteDump) };
    let d = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: this task runs on the executor's thread, between its
        // steps; the executor is alive while it runs a task.
        unsafe { take(req.ex, Some(task)) }
    }))
    .unwrap_or_else(|_| Err(io::Error::other("the task dump panicked")));
    *req.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(d);
    req.done.store(true, std::sync::atomic::Ordering::Release);
    req.waiter.unpark();
    sys::monad_async_result { value: 0, error: 0 }
}

/// The low bit of a remote dump task's `user_ptr`: a slot is 64-byte
/// aligned, so this tells the bare task apart from this crate's tasks.
const REMOTE_TAG: usize = 1;

/// True for the bare task of a remote dump (it carries no slot: the trace
/// hook must leave it alone).
///
/// # Safety
/// `task` is a live task of one of this crate's executors.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) unsafe fn is_remote_dump_task(task: sys::monad_async_task) -> bool {
    // SAFETY: per the contract; user_ptr is set before the attach and
    // read-only while attached.
    unsafe { (*task).user_ptr as usize & REMOTE_TAG != 0 }
}

/// Dumps each executor of `exs` on its own thread (they are running, or
/// will run, on other threads): attaches a High bare task to each, then
/// waits (blocking this thread) for all of them.
///
/// # Safety
/// Every executor in `exs` stays alive until this returns, and none runs
/// on this thread.
pub(crate) unsafe fn remote(exs: &[sys::monad_async_executor]) -> io::Result<Vec<Dump>> {
    use std::sync::atomic::Ordering;
    let mut sw: sys::monad_async_context_switcher = std::ptr::null_mut();
    // SAFETY: a valid out-pointer.
    check(unsafe { sys::monad_async_context_switcher_none_create(&mut sw) })?;
    let reqs: Vec<Box<RemoteDump>> = exs
        .iter()
        .map(|&ex| {
            Box::new(RemoteDump {
                ex,
                result: std::sync::Mutex::new(None),
                done: std::sync::atomic::AtomicBool::new(false),
                waiter: std::thread::current(),
            })
        })
        .collect();
    let mut tasks = Vec::with_capacity(exs.len());
    let mut failure = None;
    for req in &reqs {
        let mut t: sys::monad_async_task = std::ptr::null_mut();
        let attr = sys::monad_async_task_attr::default();
        // SAFETY: valid out-pointer, switcher and attr.
        if let Err(e) = check(unsafe { sys::monad_async_task_create(&mut t, sw, &attr) }) {
            failure = Some(e);
            break;
        }
        // SAFETY: a fresh task, ours until attached.
        unsafe {
            (*t).priority.cpu = sys::monad_async_priority::monad_async_priority_high;
            (*t).user_code = Some(remote_dump_entry);
            (*t).user_ptr = ((&**req as *const RemoteDump) as usize | REMOTE_TAG) as *mut _;
        }
        // SAFETY: the executor is alive (contract); attach is thread-safe.
        match check(unsafe { sys::monad_async_task_attach(req.ex, t, std::ptr::null_mut()) }) {
            Ok(_) => tasks.push((t, true)),
            Err(e) => {
                tasks.push((t, false));
                failure = Some(e);
                break;
            }
        }
    }
    // Wait for every attached one, whatever happened to the others: its
    // task points at its request.
    for (i, &(t, attached)) in tasks.iter().enumerate() {
        if !attached {
            continue;
        }
        while !reqs[i].done.load(Ordering::Acquire) {
            std::thread::park();
        }
        // Its exit is recorded just after the code returns: wait for it
        // before the task can be destroyed.
        // SAFETY: a live task of ours.
        while unsafe { crate::sys::atomics::task_state(t) }.load(Ordering::Acquire)
            & sys::monad_async_task_state_flag::MONAD_ASYNC_TASK_STATE_ATTACHED.0
            != 0
        {
            std::thread::yield_now();
        }
    }
    for &(t, _) in &tasks {
        // SAFETY: not attached (never, or exited above).
        let _ = unsafe { sys::monad_async_task_destroy(t) };
    }
    // SAFETY: its tasks are destroyed.
    let _ = unsafe { sys::monad_async_context_switcher_destroy(sw) };
    if let Some(e) = failure {
        return Err(e);
    }
    reqs.into_iter()
        .map(|r| {
            r.result
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err(io::Error::other("no dump")))
        })
        .collect()
}
