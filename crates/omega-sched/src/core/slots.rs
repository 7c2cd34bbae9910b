//! Admission and slot lending (SPEC §3.3, core invariants 3 and 4).
//!
//! A task is admitted (`pending → running`) on a slot of its own while fewer than
//! `max_concurrent_tasks` are in use, or on a slot lent by a task that awaits it. The
//! lender is suspended anyway, so the borrower runs in its place: the limit counts the
//! pair once, and nested awaits under `max_concurrent_tasks(1)` complete at any depth.
//! A lender awaiting several pending tasks at once (`await_all`, `await_any`) lends to
//! them in turn: when one borrower ends, the slot goes to the lender's next awaited pending
//! task, decided here in the core, whoever polls which handle.

use tokio::time::Instant;

use super::{Core, Phase, Slot, SlotCode, TaskKey, Timer, TimerKind};
use crate::task::TaskId;

impl Core {
    fn limit(&self) -> usize {
        self.config.max_concurrent_tasks.unwrap_or(usize::MAX)
    }

    /// True while an own slot is free (invariant 3).
    pub(super) fn has_free_slot(&self) -> bool {
        self.slots_in_use < self.limit()
    }

    /// Admits pending tasks while slots are free (invariant 3).
    pub fn admit_pending(&mut self, now: Instant) {
        while self.slots_in_use < self.limit() {
            let Some(item) = self.pending.pop() else {
                return;
            };
            let valid = self
                .tasks
                .get(item.key)
                .is_some_and(|e| e.id.seq() == item.seq && e.phase == Phase::Pending);
            if valid {
                self.slots_in_use += 1;
                self.admit(item.key, Slot::Own, now);
            }
        }
    }

    /// `pending → running` on `slot`: arms the deadline and queues the task.
    pub(super) fn admit(&mut self, key: TaskKey, slot: Slot, now: Instant) {
        self.set_phase(key, Phase::Ready, now);
        self.peak_admitted = self.peak_admitted.max(self.slots_in_use);
        let since = self.since(now);
        let e = &mut self.tasks[key];
        e.slot = SlotCode::new(slot);
        e.started = std::num::NonZeroU64::new(since.saturating_add(1));
        let mut deadline = None;
        if let Some(l) = e.limits.as_deref_mut() {
            let by_timeout = l.timeout.map(|t| now + t);
            l.deadline = match (by_timeout, l.fixed_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            deadline = l.deadline;
        }
        // Both in nanoseconds since the epoch: no `Instant` arithmetic on this path.
        let wait = std::time::Duration::from_nanos(since.saturating_sub(e.created));
        let seq = e.id.seq();
        self.queue_wait.record(wait);
        if let Some(at) = deadline {
            self.timers.push(Timer {
                at,
                seq,
                key,
                kind: TimerKind::Deadline,
            });
        }
        self.queue_ready(key, now);
    }

    /// Task `lender` awaits `target`: if `target` is still pending and `lender` holds a slot
    /// it is not lending yet, admit `target` on it at once.
    pub(super) fn lend_slot(&mut self, lender: TaskKey, target: TaskKey, now: Instant) {
        let t = &self.tasks[target];
        if t.phase != Phase::Pending {
            return;
        }
        let a = &self.tasks[lender];
        if a.lent_to().is_some() || a.slot() == Slot::None {
            return;
        }
        self.tasks[lender].set_lent_to(Some(target as u32));
        self.admit(target, Slot::Borrowed(lender as u32), now);
    }

    /// The first task `lender` awaits that is still pending, if any.
    fn next_awaited_pending(&self, lender: TaskKey) -> Option<TaskKey> {
        self.tasks[lender]
            .awaiting()
            .iter()
            .filter_map(|t: &TaskId| self.live_key(*t))
            .find(|k| self.tasks[*k].phase == Phase::Pending)
    }

    /// Gives back or passes on the slot of a task that is ending (invariant 4).
    pub(super) fn release_slot(&mut self, key: TaskKey, now: Instant) {
        let (slot, lent_to) = {
            let e = &self.tasks[key];
            (e.slot(), e.lent_to())
        };
        if let Some(b) = lent_to {
            if self
                .tasks
                .get(b as usize)
                .is_some_and(|e| e.slot() == Slot::Borrowed(key as u32))
            {
                // The borrower inherits the slot this task had.
                self.tasks[b as usize].slot = SlotCode::new(slot);
                if let Slot::Borrowed(x) = slot {
                    self.tasks[x as usize].set_lent_to(Some(b));
                }
                return;
            }
        }
        match slot {
            Slot::None => {}
            Slot::Own => {
                self.slots_in_use -= 1;
                self.admit_pending(now);
            }
            Slot::Borrowed(lender) => {
                let lender = lender as usize;
                self.tasks[lender].set_lent_to(None);
                // The lender may await more pending tasks: lend to the next one.
                if let Some(next) = self.next_awaited_pending(lender) {
                    self.lend_slot(lender, next, now);
                }
            }
        }
    }
}
