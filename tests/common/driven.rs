//! An executor on its own thread, driven until dropped: what a service
//! awaiting its tasks from another runtime looks like.
//!
//! # Invariants
//!
//! * The thread runs the executor (waiting for work between runs) until
//!   the `Driven` is dropped; the drop stops it, wakes it, and joins it.
//!   The executor is dropped on its thread, which cancels work still
//!   pending then.

use monad_async::{Executor, ExecutorHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

/// See the module docs.
pub struct Driven {
    pub handle: ExecutorHandle,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Driven {
    /// Starts the thread and its executor.
    pub fn start() -> Driven {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let st = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let ex = Executor::new().unwrap();
            tx.send(ex.handle()).unwrap();
            while !st.load(Ordering::Acquire) {
                match ex.run(64, Some(Duration::from_millis(50))) {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
                    Err(e) => panic!("run: {e}"),
                }
            }
        });
        Driven {
            handle: rx.recv().unwrap(),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.handle.wake();
        if let Some(t) = self.thread.take() {
            let r = t.join();
            if !std::thread::panicking() {
                r.unwrap();
            }
        }
    }
}

/// Runs `f` on a thread of its own and returns its value, failing the
/// test if it takes longer than `limit` (a lost wake-up would otherwise
/// hang the test forever; the stuck thread is left behind).
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(e) => panic!("not done within {limit:?}: {e}"),
    }
}
