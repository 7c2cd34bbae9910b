//! What a provider is doing right now: calls queued, attempts on the wire, calls backing off
//! before a retry, and the last retry it decided on. Read with
//! [`LlmProvider::activity`](crate::LlmProvider::activity) for progress lines and tests.
//!
//! # Invariants
//!
//! 1. Every count is raised by creating a guard and lowered by dropping it, so a dropped
//!    (cancelled) call never leaves a count behind.
//! 2. `peak_on_wire` is the largest `on_wire` ever observed: it is raised in the same
//!    atomic step that raises `on_wire` (a `fetch_max` on the new value).
//!
//! The counters are atomics; the mutex guards only the last retry's note and is never held
//! across an await.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A snapshot of a provider's activity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Activity {
    /// Calls waiting for their first request to be sent (for a gate slot or a rate limit).
    pub queued: usize,
    /// Requests sent whose answer (or stream) has not been read to the end.
    pub on_wire: usize,
    /// The most requests that were ever on the wire at once.
    pub peak_on_wire: usize,
    /// Calls waiting to retry after a failed attempt.
    pub backing_off: usize,
    /// Retries decided so far.
    pub retries: u64,
    /// The last retry decided, as logged: `retrying in 2.1s (429)`.
    pub last_retry: Option<String>,
}

/// The live counters behind [`Activity`], shared by a provider's calls.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    queued: AtomicUsize,
    on_wire: AtomicUsize,
    peak_on_wire: AtomicUsize,
    backing_off: AtomicUsize,
    retries: AtomicU64,
    last_retry: Mutex<Option<String>>,
}

/// Lowers one of a [`Tracker`]'s counts when dropped (invariant 1).
#[derive(Debug)]
pub(crate) struct Counted {
    tracker: Arc<Tracker>,
    which: Which,
}

#[derive(Clone, Copy, Debug)]
enum Which {
    Queued,
    OnWire,
    BackingOff,
}

impl Tracker {
    fn counter(&self, which: Which) -> &AtomicUsize {
        match which {
            Which::Queued => &self.queued,
            Which::OnWire => &self.on_wire,
            Which::BackingOff => &self.backing_off,
        }
    }

    fn count(self: &Arc<Self>, which: Which) -> Counted {
        let now = self.counter(which).fetch_add(1, Ordering::SeqCst) + 1;
        if let Which::OnWire = which {
            self.peak_on_wire.fetch_max(now, Ordering::SeqCst); // invariant 2
        }
        Counted {
            tracker: self.clone(),
            which,
        }
    }

    /// Counts a call as queued until the guard is dropped.
    pub(crate) fn queued(self: &Arc<Self>) -> Counted {
        self.count(Which::Queued)
    }

    /// Counts a request as on the wire until the guard is dropped.
    pub(crate) fn on_wire(self: &Arc<Self>) -> Counted {
        self.count(Which::OnWire)
    }

    /// Counts a call as backing off until the guard is dropped, and notes why.
    pub(crate) fn backing_off(self: &Arc<Self>, note: String) -> Counted {
        self.retries.fetch_add(1, Ordering::SeqCst);
        *self.last_retry.lock().unwrap_or_else(|p| p.into_inner()) = Some(note);
        self.count(Which::BackingOff)
    }

    /// A snapshot.
    pub(crate) fn snapshot(&self) -> Activity {
        Activity {
            queued: self.queued.load(Ordering::SeqCst),
            on_wire: self.on_wire.load(Ordering::SeqCst),
            peak_on_wire: self.peak_on_wire.load(Ordering::SeqCst),
            backing_off: self.backing_off.load(Ordering::SeqCst),
            retries: self.retries.load(Ordering::SeqCst),
            last_retry: self
                .last_retry
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.tracker
            .counter(self.which)
            .fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_up_and_down_and_the_peak_stays() {
        let t = Arc::new(Tracker::default());
        let a = t.on_wire();
        let b = t.on_wire();
        let q = t.queued();
        assert_eq!(
            (
                t.snapshot().on_wire,
                t.snapshot().peak_on_wire,
                t.snapshot().queued
            ),
            (2, 2, 1)
        );
        drop((a, b, q));
        let _c = t.on_wire();
        let r = t.backing_off("retrying in 2.1s (429)".into());
        let s = t.snapshot();
        assert_eq!((s.on_wire, s.peak_on_wire, s.queued), (1, 2, 0));
        assert_eq!((s.backing_off, s.retries), (1, 1));
        assert_eq!(s.last_retry.as_deref(), Some("retrying in 2.1s (429)"));
        drop(r);
        assert_eq!(t.snapshot().backing_off, 0);
        assert_eq!(t.snapshot().retries, 1, "retries is a running total");
    }
}
