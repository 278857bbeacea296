//! The connections of a server on one executor, for a graceful
//! shutdown: [`Conns::stop`] cancels the connections waiting for a
//! request (between requests nothing is lost) and lets the ones busy
//! with a request finish it, answer, and then see [`Conns::stopping`]
//! and end. Everything here runs on the executor's thread, so plain
//! `Cell`s suffice and nothing changes between two checks of a task.

use monad_async::{JoinHandle, Priority, TaskContext};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::rc::Rc;

/// What a connection task shares with the registry.
pub struct Conn {
    idle: Cell<bool>,
    stopping: Rc<Cell<bool>>,
}

impl Conn {
    /// True once the server is stopping: end after the current reply.
    pub fn stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Runs `wait` (the read of the next request) marked idle: a stop
    /// during it cancels the task.
    pub fn idle<R>(
        &self,
        cx: &mut TaskContext<'_>,
        wait: impl FnOnce(&mut TaskContext<'_>) -> R,
    ) -> R {
        self.idle.set(true);
        let r = wait(cx);
        self.idle.set(false);
        r
    }
}

/// A live connection: its task, and what it shares with the registry.
type Live = (JoinHandle<()>, Rc<Conn>);

#[derive(Default)]
pub struct Conns {
    next: Cell<u64>,
    live: RefCell<HashMap<u64, Live>>,
    stopping: Rc<Cell<bool>>,
    /// Connections served in all.
    pub accepted: Cell<u64>,
}

impl Conns {
    /// Spawns the task of one connection (`serve`), registered until it
    /// ends.
    pub fn spawn(
        self: &Rc<Self>,
        cx: &mut TaskContext<'_>,
        priority: Priority,
        serve: impl FnOnce(&mut TaskContext<'_>, &Conn) + 'static,
    ) -> io::Result<()> {
        let id = self.next.get();
        self.next.set(id + 1);
        self.accepted.set(self.accepted.get() + 1);
        let conn = Rc::new(Conn {
            idle: Cell::new(false),
            stopping: Rc::clone(&self.stopping),
        });
        let (me, c) = (Rc::clone(self), Rc::clone(&conn));
        let h = cx.spawn(priority, move |cx| {
            serve(cx, &c);
            me.live.borrow_mut().remove(&id);
        })?;
        self.live.borrow_mut().insert(id, (h, conn));
        Ok(())
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.live.borrow().len()
    }

    /// Stops: cancels the idle connections, then waits (parking this
    /// task) until every connection has ended.
    /// `_cx`: it runs in a task, whose joins park it.
    pub fn stop(&self, _cx: &mut TaskContext<'_>) {
        self.stopping.set(true);
        let live: Vec<_> = self.live.borrow_mut().drain().map(|(_, v)| v).collect();
        for (h, conn) in &live {
            if conn.idle.get() {
                let _ = h.cancel();
            }
        }
        for (h, _) in live {
            // Cancelled ones end Cancelled, the others with ().
            let _ = h.join();
        }
    }
}

/// Runs a self-test client (on its own thread): if it panics, SIGTERM
/// stops the server so that the process ends (with the panic) instead of
/// serving on; a watchdog ends a self-test that hangs after `LIMIT`.
pub fn self_test<T>(client: impl FnOnce() -> T) -> T {
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(90);
    std::thread::spawn(|| {
        std::thread::sleep(LIMIT);
        eprintln!("self-test: not done after {LIMIT:?}");
        std::process::exit(2);
    });
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(client)) {
        Ok(v) => v,
        Err(panic) => {
            // SAFETY: kill(2) to our own process.
            unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
            std::panic::resume_unwind(panic)
        }
    }
}

/// The end of a server's `main`: waits for the self-test client started
/// with [`self_test`] (if any) and prints its report. A failed self-test
/// panics here, so the process exits non-zero.
pub fn finish_self_test(client: Option<std::thread::JoinHandle<String>>) {
    if let Some(client) = client {
        let report = client.join().expect("self-test client panicked");
        println!("self-test passed: {report}");
    }
}

/// Drives `ex` until the shutdown is over (every task has ended), says
/// how long that took and how many connections `conns` served, then
/// finishes the self-test.
#[allow(dead_code)] // kv_server reports more than this and ends on its own
pub fn run_to_end(
    ex: &monad_async::Executor,
    conns: &Conns,
    client: Option<std::thread::JoinHandle<String>>,
) -> io::Result<()> {
    let start = std::time::Instant::now();
    ex.run_until_idle()?;
    println!(
        "stopped after {:?}: {} connections served",
        start.elapsed(),
        conns.accepted.get()
    );
    finish_self_test(client);
    Ok(())
}
