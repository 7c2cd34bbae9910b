//! Task timers: deadlines, queue timeouts, cleanup graces and sleeps, in one min-heap.
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
    /// A [`sleep`](crate::sleep) of the task ends: wake it (the sleep sees its deadline
    /// passed). One heap entry instead of a tokio timer per sleeping task (SPEC §9).
    Wake,
}

/// One armed timer: 32 bytes (the key a `u32`, as in the cell's tag: keys stay below
/// 2^32). A sleeping task has one in the heap, so its size counts per task (SPEC §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timer {
    pub at: Instant,
    pub seq: u64,
    key: u32,
    pub kind: TimerKind,
}

impl Timer {
    /// A timer of `kind` for the task at `key` (seq `seq`), due at `at`.
    pub fn new(at: Instant, key: TaskKey, seq: u64, kind: TimerKind) -> Timer {
        Timer {
            at,
            seq,
            // Keys stay below 2^32 (`TaskId::new` refuses larger ones).
            key: key as u32,
            kind,
        }
    }

    /// The task's key.
    pub fn key(&self) -> TaskKey {
        self.key as TaskKey
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
const _: () = assert!(std::mem::size_of::<Timer>() <= 32);

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
