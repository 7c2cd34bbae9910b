//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Records what tasks did, in order, from any task.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Appends one entry.
    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().push(s.into());
    }

    /// Everything recorded so far.
    pub fn get(&self) -> Vec<String> {
        self.0.lock().clone()
    }
}

/// Runs `f` on a thread of its own and fails if it is still running after `limit`: a
/// watchdog for scenarios that used to hang (not a synchronisation device).
pub fn within(limit: Duration, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(limit) {
        Ok(()) => t.join().expect("the scenario finished without panicking"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("hung: still running after {limit:?}")
        }
    }
}

/// A current-thread tokio runtime on the paused clock (time advances only when idle).
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime")
}
