//! The scheduler's bookkeeping: the task table, the two queues, slots, timers, counters and
//! history, all behind one mutex ([`Shared::core`](crate::executor::Shared)).
//!
//! # Implementation details
//!
//! `Core` holds everything about a task except its future, which lives in the task's own
//! `async-task` cell (one allocation per task). Every method here runs under the core lock,
//! is O(log n) or better (the await-cycle search aside, which walks only await edges), never
//! blocks, never awaits and never runs user code: whatever could (cancelling a token runs
//! callbacks; waking runs a foreign waker; sending an event wakes subscribers; dropping an
//! entry drops a token and a waker) is collected in [`Effects`] and delivered by the lock's
//! guard after the lock is released (`executor::CoreGuard`).
//!
//! The parts: `entry.rs` (the record and its two state machines), `slots.rs` (admission and
//! slot lending), `timers.rs`, `history.rs`, `awaits.rs` (await edges, await cycles and the
//! lock manager's view of the task graph).
//!
//! # Invariants
//!
//! 1. A task is in `tasks` from submission until it finishes, at the key its `TaskId`
//!    carries; finished tasks live only in `history` (a ring bounded by `history_limit`).
//! 2. `counts` equals the number of live tasks in each of pending/running/suspended.
//! 3. `slots_in_use` equals the number of live tasks whose slot is [`Slot::Own`], and is at
//!    most `max_concurrent_tasks` except transiently after `configure` lowers the limit.
//! 4. Slot lending: a task lends its slot to at most one task at a time (`lent_to`); the
//!    borrower's slot is `Slot::Borrowed(lender)`. When a borrower ends, the slot goes to the
//!    lender's next awaited pending task, or back to the lender; when a lender ends first,
//!    its borrower inherits the lender's own slot. No slot is ever counted twice or lost.
//! 5. A task's runnable is in its entry iff its phase is `Pending`, or it is `Ready`/`Doomed`
//!    and queued in `ready`; in `Polling` it is in the driver's hands; in `Suspended` it
//!    exists only inside the async-task cell until a waker fires (then it comes back
//!    through the inbox, `absorb`).
//! 6. Queue and timer items carry the task's `seq`; an item whose seq does not match the
//!    live entry at that key, or whose entry holds no runnable, is stale and skipped.
//!
//! # Lock order
//!
//! core → lock-manager state; core → a token node's lock, only for work that runs no
//! callback (cloning a token, creating a child token, registering a child task's link with
//! `on_cancel_unless_cancelled`). Cancelling a token and the event bus's lock never happen
//! under the core lock (their work is an [`Effects`] item).

mod awaits;
pub(crate) mod entry;
mod history;
#[cfg(all(test, loom))]
mod models;
mod slots;
mod timers;

use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use slab::Slab;
use tokio::time::Instant;

use crate::config::Config;
use crate::context::Current;
use crate::error::TaskError;
use crate::events::EventKind;
use crate::executor::Runnable;
use crate::queue::{Item, TaskQueue};
use crate::stats::{Histogram, Stats};
use crate::task::{CancelMode, TaskId, TaskInfo, TaskState};
use crate::token::{CancellationToken, OnCancelGuard};

pub(crate) use entry::{
    Cancel, CancelStep, Cold, Limits, Phase, Reason, Slot, SlotCode, Stage, TaskEntry, TaskKey, Why,
};
use history::{Finished, History};
pub(crate) use timers::{Timer, TimerKind, Timers};

/// Work to do once the core lock is released (see the module docs).
#[derive(Default)]
pub(crate) struct Effects {
    /// Events to broadcast, with the time they happened.
    pub events: Vec<(Option<TaskId>, EventKind, Instant)>,
    /// Wakers to wake.
    pub wake: Vec<Waker>,
    /// Tokens to cancel, with the reason.
    pub cancel: Vec<(CancellationToken, Arc<str>)>,
    /// Entries of finished tasks and stale runnables, dropped outside the lock.
    pub garbage: Vec<Garbage>,
}

/// Something dropped after the core lock is released (held only to be dropped).
#[allow(dead_code, clippy::large_enum_variant)]
pub(crate) enum Garbage {
    Entry(TaskEntry),
    Runnable(Runnable),
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.wake.is_empty()
            && self.cancel.is_empty()
            && self.garbage.is_empty()
    }
}

impl std::fmt::Debug for Effects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Effects")
            .field("events", &self.events.len())
            .field("wake", &self.wake.len())
            .field("cancel", &self.cancel.len())
            .field("garbage", &self.garbage.len())
            .finish()
    }
}

/// How a task ended, as its body wrapper saw it.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The body returned its value.
    Completed,
    /// The body returned this error or panicked.
    Failed(TaskError),
    /// The body was stopped (dropped or unwound) because the task was cancelled, timed out,
    /// or was never admitted before its queue timeout; the entry says which.
    Stopped,
}

/// The lock-protected state. See the module docs for its invariants.
#[derive(Debug)]
pub(crate) struct Core {
    pub tasks: Slab<TaskEntry>,
    pending: TaskQueue,
    ready: TaskQueue,
    timers: Timers,
    pub slots_in_use: usize,
    counts: [usize; 3],
    next_seq: u64,
    epoch: Instant,
    pub config: Config,
    history: History,
    /// Set by `shutdown`: submissions fail with this reason.
    pub closed: Option<Arc<str>>,
    /// Whether anyone ever subscribed to events (refreshed at every lock).
    pub events_on: bool,
    /// See [`Effects`].
    pub fx: Effects,
    completed: u64,
    cancelled: u64,
    failed: u64,
    panicked: u64,
    timed_out: u64,
    submitted: u64,
    peak_admitted: usize,
    queue_wait: Histogram,
    run_time: Histogram,
}

fn count_index(state: TaskState) -> Option<usize> {
    match state {
        TaskState::Pending => Some(0),
        TaskState::Running => Some(1),
        TaskState::Suspended => Some(2),
        _ => None,
    }
}

/// The fields of a new task, gathered by `Scheduler::submit` before it takes the lock.
#[derive(Debug)]
pub(crate) struct NewTask {
    pub id: TaskId,
    pub name: Option<Arc<str>>,
    pub priority: i32,
    pub mode: CancelMode,
    pub parent: Option<TaskId>,
    /// The child's registration on its parent's (or cancel scope's) token.
    pub link: OnCancelGuard,
    /// The reason of the parent's token when it was cancelled before the child was born.
    pub born_cancelled: Option<Arc<str>>,
    pub timeout: Option<Option<Duration>>,
    pub deadline: Option<Instant>,
    pub queue_timeout: Option<Duration>,
}

/// What a task's end left for its handle and its owner.
#[derive(Debug)]
pub(crate) struct FinishOut {
    /// `None` for success, else the error the handle gets.
    pub error: Option<TaskError>,
    /// The task that ended.
    pub id: TaskId,
}

impl Core {
    pub fn new(config: Config) -> Self {
        Core {
            tasks: Slab::new(),
            pending: TaskQueue::new(config.fairness, config.aging),
            ready: TaskQueue::new(ready_order(config.fairness), config.aging),
            timers: Timers::default(),
            slots_in_use: 0,
            counts: [0; 3],
            next_seq: 1,
            epoch: Instant::now(),
            config,
            history: History::default(),
            closed: None,
            events_on: false,
            fx: Effects::default(),
            completed: 0,
            cancelled: 0,
            failed: 0,
            panicked: 0,
            timed_out: 0,
            submitted: 0,
            peak_admitted: 0,
            queue_wait: Histogram::default(),
            run_time: Histogram::default(),
        }
    }

    /// The key and sequence number the next inserted task will get.
    pub fn next_ids(&mut self) -> (TaskKey, u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        (self.tasks.vacant_key(), seq)
    }

    pub(crate) fn emit(&mut self, task: Option<TaskId>, kind: EventKind, at: Instant) {
        if self.events_on {
            self.fx.events.push((task, kind, at));
        }
    }

    fn since(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch)
            .as_nanos()
            .min(u64::MAX as u128) as u64
    }

    fn item(&self, key: TaskKey, now: Instant) -> Item {
        let e = &self.tasks[key];
        Item {
            key,
            seq: e.id.seq(),
            priority: e.effective_priority(),
            group: e.group(),
            since: self.since(now),
        }
    }

    /// The one place a live task changes phase (finishing goes through `finish`); keeps the
    /// counts (invariant 2) and sends the lifecycle event.
    fn set_phase(&mut self, key: TaskKey, to: Phase, now: Instant) {
        let e = &mut self.tasks[key];
        let from = e.phase.state();
        e.set_phase(to);
        let to = to.state();
        if from == to {
            return;
        }
        if let Some(i) = count_index(from) {
            self.counts[i] -= 1;
        }
        if let Some(i) = count_index(to) {
            self.counts[i] += 1;
        }
        let kind = match (from, to) {
            (TaskState::Pending, TaskState::Running) => Some(EventKind::Started),
            (TaskState::Running, TaskState::Suspended) => Some(EventKind::Suspended),
            (TaskState::Suspended, TaskState::Running) => Some(EventKind::Resumed),
            _ => None,
        };
        if let Some(kind) = kind {
            let id = self.tasks[key].id;
            self.emit(Some(id), kind, now);
        }
    }

    /// Queues a `Ready`/`Doomed` task whose runnable is in its entry (invariant 5).
    fn queue_ready(&mut self, key: TaskKey, now: Instant) {
        let item = self.item(key, now);
        self.ready.push(item);
    }

    /// Adds a submitted task (state `pending`) with its runnable and admits what the limit
    /// allows.
    pub fn insert(&mut self, t: NewTask, runnable: Runnable, waker: Waker, now: Instant) {
        let parent_deadline = t
            .parent
            .and_then(|p| self.live_key(p))
            .and_then(|pk| self.tasks[pk].limits().current_deadline());
        let fixed_deadline = match (t.deadline, parent_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let born_cancelled = t.born_cancelled;
        let entry = TaskEntry {
            id: t.id,
            phase: Phase::Pending,
            cancel: Cancel::LIVE,
            mode: t.mode,
            runnable: Some(runnable),
            waker,
            token: None,
            link: t.link,
            priority: t.priority,
            parent: t.parent,
            created: self.since(now),
            started: None,
            limits: {
                let l = Limits {
                    timeout: t.timeout.unwrap_or(self.config.task_timeout),
                    fixed_deadline,
                    deadline: None,
                    queue_timeout: t.queue_timeout,
                };
                let none =
                    l.timeout.is_none() && l.fixed_deadline.is_none() && l.queue_timeout.is_none();
                (!none).then(|| Box::new(l))
            },
            slot: SlotCode::NONE,
            cold: t.name.map(|name| {
                Box::new(Cold {
                    name: Some(name),
                    ..Cold::default()
                })
            }),
            awaited_by: 0,
            shield_depth: 0,
        };
        let key = self.tasks.insert(entry);
        debug_assert_eq!(key, t.id.key());
        self.counts[0] += 1;
        self.submitted += 1;
        self.emit(Some(t.id), EventKind::Submitted, now);
        let seq = t.id.seq();
        if let Some(q) = t.queue_timeout {
            self.timers.push(Timer {
                at: now + q,
                seq,
                key,
                kind: TimerKind::Queue,
            });
        }
        if let Some(at) = fixed_deadline {
            // An absolute deadline also binds while the task waits for admission.
            self.timers.push(Timer {
                at,
                seq,
                key,
                kind: TimerKind::Deadline,
            });
        }
        match born_cancelled {
            // Its parent was cancelled already: it ends without being admitted.
            Some(reason) => {
                self.request_cancel(key, reason, Why::Cancel, now);
            }
            // A free slot and nobody waiting: admitted at once (no detour through the
            // pending queue, which would give it back first anyway).
            None if self.pending.len() == 0 && self.has_free_slot() => {
                self.slots_in_use += 1;
                self.admit(key, Slot::Own, now);
            }
            None => {
                let item = self.item(key, now);
                self.pending.push(item);
                self.admit_pending(now);
            }
        }
    }

    /// The key of a live task, checking it is still that task.
    pub fn live_key(&self, id: TaskId) -> Option<TaskKey> {
        let key = id.key();
        self.tasks
            .get(key)
            .filter(|e| e.id.seq() == id.seq())
            .map(|_| key)
    }

    /// A runnable came back through the inbox (a waker fired): store it and queue the task
    /// (invariant 5). Stale runnables (finished tasks) are dropped outside the lock.
    pub fn absorb(&mut self, runnable: Runnable, now: Instant) {
        let tag = *runnable.metadata();
        let Some(key) = self
            .tasks
            .get(tag.key as usize)
            .filter(|e| e.id.seq() == tag.seq && e.runnable.is_none())
            .map(|_| tag.key as usize)
        else {
            self.fx.garbage.push(Garbage::Runnable(runnable));
            return;
        };
        self.tasks[key].runnable = Some(runnable);
        match self.tasks[key].phase {
            Phase::Suspended => self.set_phase(key, Phase::Ready, now),
            Phase::Ready | Phase::Doomed => {}
            Phase::Pending | Phase::Polling => {
                // A pending task's runnable is never out; a polling one comes back only
                // after `after_poll`. Keep it; it is queued when the phase allows.
                return;
            }
        }
        self.queue_ready(key, now);
    }

    /// Takes the next task to poll: its runnable and what its body should see.
    pub fn pop(&mut self, sched: u64, now: Instant) -> Option<(Runnable, Current)> {
        while let Some(item) = self.ready.pop() {
            let Some(e) = self.tasks.get_mut(item.key) else {
                continue;
            };
            if e.id.seq() != item.seq {
                continue;
            }
            if !matches!(e.phase, Phase::Ready | Phase::Doomed) {
                continue;
            }
            let Some(runnable) = e.runnable.take() else {
                continue;
            };
            if e.phase == Phase::Ready {
                e.set_phase(Phase::Polling);
            }
            let (cancel, stop) = match e.cancel.cancelled() {
                None => (None, e.phase == Phase::Doomed),
                Some(c) if c.stage == Stage::Forced => (Some(c.reason.text.clone()), true),
                Some(c) => (
                    Some(c.reason.text.clone()),
                    e.phase == Phase::Doomed || (e.mode == CancelMode::Drop && e.shield_depth == 0),
                ),
            };
            let current = Current {
                sched,
                id: e.id,
                priority: e.priority,
                mode: e.mode,
                cancel,
                stop,
                shield_depth: e.shields(),
                now,
            };
            return Some((runnable, current));
        }
        None
    }

    /// True when tasks wait in the ready queue (stale items included).
    pub fn has_ready(&self) -> bool {
        self.ready.len() > 0
    }

    /// After a poll returned `Pending`: `running → suspended`, or back to the ready queue if
    /// it was woken meanwhile (`rescheduled`: its runnable is on its way through the inbox).
    /// A cancelled task that survived the poll arms its cleanup grace.
    pub fn after_poll(&mut self, id: TaskId, rescheduled: bool, shield_depth: u32, now: Instant) {
        let Some(key) = self.live_key(id) else {
            return;
        };
        let e = &mut self.tasks[key];
        e.set_shields(shield_depth);
        if e.phase == Phase::Polling {
            let next = if rescheduled {
                Phase::Ready
            } else {
                Phase::Suspended
            };
            self.set_phase(key, next, now);
            if self.tasks[key].runnable.is_some() {
                // Woken from another thread and absorbed already.
                self.queue_ready(key, now);
            }
        }
        let e = &mut self.tasks[key];
        if e.cancel.step(CancelStep::ArmGrace, unreachable_reason) {
            let at = now + self.config.cleanup_grace;
            let seq = e.id.seq();
            self.timers.push(Timer {
                at,
                seq,
                key,
                kind: TimerKind::Grace,
            });
        }
    }

    /// Cancels a live task: the first reason wins. Returns false if it was cancelled
    /// already. Its token (if any) is cancelled and it is woken, after the lock.
    pub fn request_cancel(&mut self, key: TaskKey, text: Arc<str>, why: Why, now: Instant) -> bool {
        let e = &mut self.tasks[key];
        let changed = e.cancel.step(CancelStep::Request, || Reason {
            text: text.clone(),
            why,
        });
        if !changed {
            return false;
        }
        if let Some(t) = &e.token {
            self.fx.cancel.push((t.clone(), text));
        }
        self.poke(key, now);
        true
    }

    /// Ends the task at its next poll, shield or not (grace expiry, scheduler dropped).
    pub fn force(&mut self, key: TaskKey, text: &Arc<str>, now: Instant) {
        let e = &mut self.tasks[key];
        let token = e.token.clone();
        let first = e.cancel.is_live();
        if e.cancel.step(CancelStep::Force, || Reason {
            text: text.clone(),
            why: Why::Cancel,
        }) {
            if let (true, Some(t)) = (first, token) {
                self.fx.cancel.push((t, text.clone()));
            }
            self.poke(key, now);
        }
    }

    /// Makes sure a cancelled task gets polled: a pending one is doomed and queued (it is
    /// never admitted); a suspended or polling one is woken (a queued one will be popped).
    fn poke(&mut self, key: TaskKey, now: Instant) {
        match self.tasks[key].phase {
            Phase::Pending => {
                self.set_phase(key, Phase::Doomed, now);
                self.queue_ready(key, now);
            }
            // A polling task took its view of the cancellation when it was popped: wake it
            // so that it is polled again at once (found by the loom model: a cancel from
            // another thread during a poll would otherwise wait for the grace timer).
            Phase::Suspended | Phase::Polling => {
                let w = self.tasks[key].waker.clone();
                self.fx.wake.push(w);
            }
            Phase::Doomed | Phase::Ready => {}
        }
    }

    /// The earliest armed timer, if any (stale ones included; they fire as no-ops).
    pub fn next_timer(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Fires every timer due at `now`.
    pub fn expire_timers(&mut self, now: Instant) {
        while let Some(t) = self.timers.pop_due(now) {
            let Some(e) = self.tasks.get(t.key).filter(|e| e.id.seq() == t.seq) else {
                continue;
            };
            match t.kind {
                TimerKind::Deadline
                    if e.limits().deadline == Some(t.at)
                        || (e.phase == Phase::Pending
                            && e.limits().fixed_deadline == Some(t.at)) =>
                {
                    self.request_cancel(t.key, "timeout".into(), Why::Deadline, now);
                }
                TimerKind::Queue if e.phase == Phase::Pending => {
                    self.request_cancel(t.key, "queue timeout".into(), Why::QueueTimeout, now);
                }
                TimerKind::Grace => {
                    if let Some(r) = e.cancel.reason().map(|r| r.text.clone()) {
                        self.force(t.key, &r, now);
                    }
                }
                _ => {}
            }
        }
    }

    /// Ends a live task: final state, counters, slot, await edges, history. The removed
    /// entry is dropped after the lock.
    pub fn finish(
        &mut self,
        key: TaskKey,
        seq: u64,
        ending: Ending,
        now: Instant,
    ) -> Option<FinishOut> {
        let e = self.tasks.get(key).filter(|e| e.id.seq() == seq)?;
        let (state, error) = match ending {
            Ending::Completed => (TaskState::Completed, None),
            Ending::Failed(err) => (TaskState::Error, Some(err)),
            Ending::Stopped => self.stopped_as(e, now),
        };
        let from = e.phase.state();
        let to = from
            .transition(state)
            .expect("tasks end only along edges the state machine has");
        if let Some(i) = count_index(from) {
            self.counts[i] -= 1;
        }
        if e.slot() != Slot::None {
            self.release_slot(key, now);
        }
        let e = self.tasks.remove(key);
        let id = e.id;
        for t in e.awaiting() {
            if let Some(k) = self.live_key(*t) {
                self.tasks[k].awaited_by -= 1;
            }
        }
        if let Some(s) = e.started {
            let ran = self.since(now).saturating_sub(s.get() - 1);
            self.run_time.record(Duration::from_nanos(ran));
        }
        let kind = match &error {
            None => {
                self.completed += 1;
                EventKind::Completed
            }
            Some(TaskError::Cancelled { reason }) => {
                self.cancelled += 1;
                EventKind::Cancelled {
                    reason: reason.clone(),
                }
            }
            Some(TaskError::TimedOut { after }) => {
                self.timed_out += 1;
                EventKind::TimedOut { after: *after }
            }
            Some(err) => {
                self.failed += 1;
                if err.is_panic() {
                    self.panicked += 1;
                }
                EventKind::Failed {
                    error: if self.events_on {
                        err.to_string()
                    } else {
                        String::new()
                    },
                }
            }
        };
        self.emit(Some(e.id), kind, now);
        let limit = self.config.history_limit;
        self.history.push(
            Finished {
                id: e.id,
                name: e.name().cloned(),
                priority: e.priority,
                state: to,
                parent: e.parent,
                created_at: e.created_at(self.epoch),
                started_at: e.started_at(self.epoch),
                completed_at: now,
                error: error.clone(),
            },
            limit,
        );
        if e.token.is_some() || e.link.token().is_some() || e.runnable.is_some() {
            // A token's unlinking may drop user callbacks (the link holds a handle of the
            // parent's token, maybe the last), a runnable a future: after the lock.
            self.fx.garbage.push(Garbage::Entry(e));
        } else {
            // Only a waker reference, a name and plain data: nothing of a user's runs.
            drop(e);
        }
        Some(FinishOut { error, id })
    }

    /// How a stopped task ends: `cancelled` with its reason, or `error` with `TimedOut`.
    fn stopped_as(&self, e: &TaskEntry, now: Instant) -> (TaskState, Option<TaskError>) {
        let reason = e.cancel.reason();
        let text = reason.map_or_else(|| Arc::from("cancelled"), |r| r.text.clone());
        let why = reason.map_or(Why::Cancel, |r| r.why);
        // A parent's timeout reaches its child as reason "timeout" at the child's own
        // (capped) deadline: that is the child's timeout too.
        let past_deadline = e.limits().current_deadline().is_some_and(|d| now >= d);
        match why {
            Why::QueueTimeout => (
                TaskState::Error,
                Some(TaskError::TimedOut {
                    after: e.limits().queue_timeout.unwrap_or_default(),
                }),
            ),
            Why::Deadline => (TaskState::Error, Some(timed_out(e, self.epoch))),
            Why::Cancel if past_deadline && &*text == "timeout" => {
                (TaskState::Error, Some(timed_out(e, self.epoch)))
            }
            Why::Cancel => (
                TaskState::Cancelled,
                Some(TaskError::Cancelled { reason: text }),
            ),
        }
    }

    /// Re-orders both queues after the fairness mode or aging changed.
    pub fn reorder(&mut self) {
        let mut pending = TaskQueue::new(self.config.fairness, self.config.aging);
        for item in self.pending.drain() {
            pending.push(item);
        }
        self.pending = pending;
        let mut ready = TaskQueue::new(ready_order(self.config.fairness), self.config.aging);
        for item in self.ready.drain() {
            ready.push(item);
        }
        self.ready = ready;
        self.history.trim(self.config.history_limit);
    }

    /// A snapshot of a live task.
    pub fn info(&self, key: TaskKey) -> TaskInfo {
        let e = &self.tasks[key];
        TaskInfo {
            id: e.id,
            name: e.name().cloned(),
            priority: e.priority,
            state: e.phase.state(),
            parent: e.parent,
            created_at: e.created_at(self.epoch),
            started_at: e.started_at(self.epoch),
            completed_at: None,
            error_kind: None,
            error: None,
        }
    }

    /// A snapshot of a live or remembered task.
    pub fn find(&self, id: TaskId) -> Option<TaskInfo> {
        match self.live_key(id) {
            Some(k) if self.tasks[k].id == id => Some(self.info(k)),
            _ => self.history.find(id).map(Finished::info),
        }
    }

    /// Snapshots of every live task, then every remembered finished one (oldest first).
    pub fn all(&self) -> Vec<TaskInfo> {
        let mut v: Vec<TaskInfo> = self.tasks.iter().map(|(k, _)| self.info(k)).collect();
        v.sort_by_key(|i| (i.created_at, i.id.seq()));
        v.extend(self.history.iter().map(Finished::info));
        v
    }

    /// The state of a live task, or of a remembered finished one.
    pub fn state_of(&self, id: TaskId) -> Option<TaskState> {
        match self.live_key(id) {
            Some(k) => Some(self.tasks[k].phase.state()),
            None => self.history.find(id).map(|f| f.state),
        }
    }

    /// Live tasks.
    pub fn live(&self) -> usize {
        self.tasks.len()
    }

    /// Counters for `Stats` (pools and locks are filled in by the caller).
    pub fn stats(&self) -> Stats {
        Stats {
            pending: self.counts[0],
            running: self.counts[1],
            suspended: self.counts[2],
            completed: self.completed,
            cancelled: self.cancelled,
            failed: self.failed,
            panicked: self.panicked,
            timed_out: self.timed_out,
            submitted: self.submitted,
            peak_admitted: self.peak_admitted,
            llm_in_flight: 0,
            pools: Vec::new(),
            queue_wait: self.queue_wait.summary(),
            run_time: self.run_time.summary(),
            locks: Default::default(),
        }
    }

    /// The token of a live task, created (and linked to the task) on first use. `link` is
    /// given the new token to register the task's cancellation on it, outside the lock.
    pub fn token_of(&mut self, key: TaskKey) -> (CancellationToken, bool) {
        let e = &mut self.tasks[key];
        if let Some(t) = &e.token {
            return (t.clone(), false);
        }
        // A child's token descends from the token its link is registered on, so that its
        // own children (and whoever holds the token) see the parent's cancellation.
        let t = e
            .link
            .token()
            .map_or_else(CancellationToken::new, CancellationToken::child);
        if let Some(r) = e.cancel.reason() {
            self.fx.cancel.push((t.clone(), r.text.clone()));
        }
        e.token = Some(t.clone());
        (t, true)
    }
}

/// A placeholder for transitions that never build a reason (`ArmGrace` copies the old one).
fn unreachable_reason() -> Reason {
    Reason {
        text: "cancelled".into(),
        why: Why::Cancel,
    }
}

fn timed_out(e: &TaskEntry, epoch: Instant) -> TaskError {
    // From admission, or from submission for a task that never started.
    let start = e.started_at(epoch).unwrap_or_else(|| e.created_at(epoch));
    let after = e
        .limits()
        .current_deadline()
        .map_or(Duration::ZERO, |d| d.saturating_duration_since(start));
    TaskError::TimedOut { after }
}

/// The ready queue's order for a fairness mode: round-robin polls in FIFO order.
fn ready_order(f: crate::Fairness) -> crate::Fairness {
    match f {
        crate::Fairness::RoundRobin => crate::Fairness::Fifo,
        other => other,
    }
}
