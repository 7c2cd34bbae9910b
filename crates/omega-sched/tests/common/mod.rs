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
