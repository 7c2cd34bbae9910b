//! Task timers: deadlines, queue timeouts and cleanup graces, in one min-heap.
//!
//! Timers are never removed early: each carries its task's key and seq, and one that no
//! longer matches its task (finished, or re-armed) fires as a no-op.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tokio::time::Instant;

use super::entry::TaskKey;

/// What a timer does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// The task's deadline: cancel it with reason "timeout".
    Deadline,
    /// The task's queue timeout: end it if still pending.
    Queue,
    /// The cleanup grace after a cancel: force the body to end.
    Grace,
}

/// One armed timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timer {
    pub at: Instant,
    pub seq: u64,
    pub key: TaskKey,
    pub kind: TimerKind,
}

/// The heap of armed timers, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Timer>>,
}

impl Timers {
    pub fn push(&mut self, t: Timer) {
        self.heap.push(Reverse(t));
    }

    /// The earliest armed timer, stale ones included.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(t)| t.at)
    }

    /// Pops the next timer due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        match self.heap.peek() {
            Some(Reverse(t)) if t.at <= now => self.heap.pop().map(|Reverse(t)| t),
            _ => None,
        }
    }
}
