//! The scheduler's shared bookkeeping: the task table, the two queues, slots, timers and
//! counters, all behind one mutex ([`Shared::core`](crate::executor::Shared)).
//!
//! # Implementation details
//!
//! `Core` holds everything about a task except its future (futures live with the driver, on
//! the executor's thread; see `executor.rs`). Every method here runs under the core lock, is
//! O(log n) or better, never blocks, never awaits, and never calls user code: anything that
//! could run user code (cancelling a token runs callbacks; dropping a future runs
//! destructors; waking a `TaskHandle` runs a foreign waker) is handed back to the caller to do
//! after the lock is released.
//!
//! # Invariants
//!
//! 1. A task is in `tasks` from submission until it finishes, at the key its `TaskId`
//!    carries; finished tasks live only in `history` (a ring bounded by `history_limit`).
//! 2. `counts` equals the number of live tasks in each of pending/running/suspended.
//! 3. `slots_in_use` equals the number of live tasks whose slot is [`Slot::Own`], and is at
//!    most `max_concurrent_tasks` except transiently after `configure` lowers the limit.
//! 4. Slot lending: a task lends its slot to at most one task at a time (`lent_to`); the
//!    borrower's slot is `Slot::Borrowed(lender)`. When a borrower ends, the slot returns to
//!    its lender (which is woken); when a lender ends first, its borrower inherits the
//!    lender's own slot. So no slot is ever counted twice or lost.
//! 5. `entry.queued` is true iff the task's key is in the ready queue (non-stale). The ready
//!    queue holds running tasks, and pending tasks only when their token is cancelled (so
//!    the driver can end them).
//! 6. Queue and timer items carry the task's `seq`; an item whose seq does not match the
//!    live entry at that key is stale and skipped.
//!
//! # Lock order
//!
//! core → (event bus, pool state). Token locks are never taken under the core lock except
//! `is_cancelled` (an atomic load) and `reason`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use slab::Slab;
use tokio::time::Instant;

use crate::config::Config;
use crate::error::TaskError;
use crate::events::{EventBus, EventKind};
use crate::queue::{Item, TaskQueue};
use crate::stats::{Histogram, Stats};
use crate::task::{TaskId, TaskInfo, TaskState};
use crate::token::CancellationToken;

/// Index of a live task in the task table.
pub(crate) type TaskKey = usize;

/// Where an admitted task's slot comes from (invariant 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Not admitted.
    None,
    /// Counted in `slots_in_use`.
    Own,
    /// Lent by the task at this key, which is suspended awaiting this one.
    Borrowed(TaskKey),
}

/// Everything the core knows about a live task.
#[derive(Debug)]
pub(crate) struct TaskEntry {
    pub id: TaskId,
    pub seq: u64,
    pub name: Option<Arc<str>>,
    pub priority: i32,
    pub state: TaskState,
    pub parent: Option<(TaskKey, u64, TaskId)>,
    pub token: CancellationToken,
    pub created_at: Instant,
    pub started_at: Option<Instant>,
    /// Timeout counted from admission.
    pub timeout: Option<Duration>,
    /// Absolute deadline: the caller's, capped by the parent's.
    pub fixed_deadline: Option<Instant>,
    /// Effective deadline, set at admission.
    pub deadline: Option<Instant>,
    pub queue_timeout: Option<Duration>,
    pub slot: Slot,
    pub lent_to: Option<TaskKey>,
    pub queued: bool,
    pub polling: bool,
    pub timed_out: bool,
    pub grace_armed: bool,
    pub group: u64,
    /// Priority inherited from lock waiters (see `set_inherited_priority`).
    pub inherited: Option<i32>,
    /// Tasks this task is awaiting through their `TaskHandle`s (key → seq), for the lock
    /// manager's wait-for graph. Recorded once locks are in use (see `handle.rs`).
    pub awaiting: HashMap<TaskKey, u64>,
    /// How many live tasks record an await on this one (may over-count when an awaiter
    /// ends mid-await: only a shortcut of the deadlock check reads it, conservatively).
    pub awaited_by: u32,
}

impl TaskEntry {
    /// The priority the ready queue uses: its own, or a higher inherited one.
    pub fn effective_priority(&self) -> i32 {
        self.inherited
            .map_or(self.priority, |p| p.max(self.priority))
    }
}

/// What a timer does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// The task's deadline: cancel its token with reason "timeout".
    Deadline,
    /// The task's queue timeout: end it if still pending.
    Queue,
    /// The cleanup grace after a cancel: drop the body if still running.
    Grace,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    seq: u64,
    key: TaskKey,
    kind: TimerKind,
}

/// A timer that fired, for the driver to act on outside the lock.
#[derive(Debug)]
pub(crate) enum Expired {
    /// Cancel this token with reason "timeout".
    Deadline(CancellationToken),
    /// End this pending task as timed out.
    Queue(TaskKey, u64),
    /// Force this task to end.
    Grace(TaskKey, u64),
}

/// How a task ended, as decided by the driver.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The body returned its value.
    Completed,
    /// The body returned this error or panicked.
    Failed(TaskError),
    /// The body was stopped because its token was cancelled.
    Stopped,
    /// Its queue timeout expired while it was pending.
    QueueTimeout,
}

/// What `pop_ready` found.
#[derive(Debug)]
pub(crate) enum Popped {
    /// Poll this task.
    Poll(TaskKey),
    /// This pending task was cancelled before admission: end it.
    EndPending(TaskKey),
}

/// What the bounded history keeps of a finished task (a `TaskInfo` is built on demand,
/// so finishing a task formats nothing).
#[derive(Debug)]
struct Finished {
    id: TaskId,
    name: Option<Arc<str>>,
    priority: i32,
    state: TaskState,
    parent: Option<TaskId>,
    created_at: Instant,
    started_at: Option<Instant>,
    completed_at: Instant,
    error: Option<TaskError>,
}

impl Finished {
    fn info(&self) -> TaskInfo {
        TaskInfo {
            id: self.id,
            name: self.name.clone(),
            priority: self.priority,
            state: self.state,
            parent: self.parent,
            created_at: self.created_at,
            started_at: self.started_at,
            completed_at: Some(self.completed_at),
            error_kind: self.error.as_ref().map(TaskError::kind),
            error: self.error.as_ref().map(ToString::to_string),
        }
    }
}

/// The lock-protected state. See the module docs for its invariants.
#[derive(Debug)]
pub(crate) struct Core {
    pub tasks: Slab<TaskEntry>,
    pending: TaskQueue,
    ready: TaskQueue,
    timers: BinaryHeap<Reverse<Timer>>,
    pub slots_in_use: usize,
    counts: [usize; 3],
    next_seq: u64,
    epoch: Instant,
    pub config: Config,
    history: VecDeque<Finished>,
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
    pub parent: Option<(TaskKey, u64, TaskId)>,
    pub token: CancellationToken,
    pub timeout: Option<Option<Duration>>,
    pub deadline: Option<Instant>,
    pub queue_timeout: Option<Duration>,
}

impl Core {
    pub fn new(config: Config) -> Self {
        Core {
            tasks: Slab::new(),
            pending: TaskQueue::new(config.fairness, config.aging),
            ready: TaskQueue::new(ready_order(config.fairness), config.aging),
            timers: BinaryHeap::new(),
            slots_in_use: 0,
            counts: [0; 3],
            next_seq: 1,
            epoch: Instant::now(),
            config,
            history: VecDeque::new(),
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
    pub fn next_ids(&self) -> (TaskKey, u64) {
        (self.tasks.vacant_key(), self.next_seq)
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
            seq: e.seq,
            priority: e.effective_priority(),
            group: e.group,
            since: self.since(now),
        }
    }

    /// The one place a live task changes state (finishing goes through `finish`).
    fn set_state(&mut self, key: TaskKey, to: TaskState, events: &EventBus) {
        let e = &mut self.tasks[key];
        let from = e.state;
        e.state = from
            .transition(to)
            .expect("the core only asks for transitions the state machine has");
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
            events.send(Some(e.id), kind);
        }
    }

    /// Adds a submitted task (state `pending`) and admits what the limit allows.
    /// Returns the new task's key and seq.
    pub fn insert(&mut self, t: NewTask, now: Instant, events: &EventBus) -> (TaskKey, u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let (parent_deadline, group) = match t.parent {
            Some((pk, pseq, _)) => match self.tasks.get(pk) {
                Some(p) if p.seq == pseq => (p.deadline.or(p.fixed_deadline), pseq),
                _ => (None, pseq),
            },
            None => (None, 0),
        };
        let fixed_deadline = match (t.deadline, parent_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = t.timeout.unwrap_or(self.config.task_timeout);
        let entry = TaskEntry {
            id: t.id,
            seq,
            name: t.name,
            priority: t.priority,
            state: TaskState::Pending,
            parent: t.parent,
            token: t.token,
            created_at: now,
            started_at: None,
            timeout,
            fixed_deadline,
            deadline: None,
            queue_timeout: t.queue_timeout,
            slot: Slot::None,
            lent_to: None,
            queued: false,
            polling: false,
            timed_out: false,
            grace_armed: false,
            group,
            inherited: None,
            awaiting: HashMap::new(),
            awaited_by: 0,
        };
        let key = self.tasks.insert(entry);
        debug_assert_eq!((key, seq), (t.id.key(), t.id.seq()));
        self.counts[0] += 1;
        self.submitted += 1;
        events.send(Some(t.id), EventKind::Submitted);
        if let Some(q) = t.queue_timeout {
            self.push_timer(now + q, key, TimerKind::Queue);
        }
        if let Some(at) = fixed_deadline {
            // An absolute deadline also binds while the task waits for admission.
            self.push_timer(at, key, TimerKind::Deadline);
        }
        if self.tasks[key].token.is_cancelled() {
            // Born cancelled (its parent was): the driver ends it without admitting it.
            self.tasks[key].queued = true;
            let item = self.item(key, now);
            self.ready.push(item);
        } else {
            let item = self.item(key, now);
            self.pending.push(item);
            self.admit_pending(now, events);
        }
        (key, seq)
    }

    fn push_timer(&mut self, at: Instant, key: TaskKey, kind: TimerKind) {
        let seq = self.tasks[key].seq;
        self.timers.push(Reverse(Timer { at, seq, key, kind }));
    }

    fn live(&self, key: TaskKey, seq: u64) -> bool {
        self.tasks.get(key).is_some_and(|e| e.seq == seq)
    }

    fn limit(&self) -> usize {
        self.config.max_concurrent_tasks.unwrap_or(usize::MAX)
    }

    /// Admits pending tasks while slots are free (invariant 3).
    pub fn admit_pending(&mut self, now: Instant, events: &EventBus) {
        while self.slots_in_use < self.limit() {
            let Some(item) = self.pending.pop() else {
                return;
            };
            let valid = self.tasks.get(item.key).is_some_and(|e| {
                e.seq == item.seq && e.state == TaskState::Pending && !e.token.is_cancelled()
            });
            if valid {
                self.slots_in_use += 1;
                self.admit(item.key, Slot::Own, now, events);
            }
        }
    }

    /// `pending → running` with the given slot; arms the deadline and queues the task.
    fn admit(&mut self, key: TaskKey, slot: Slot, now: Instant, events: &EventBus) {
        self.set_state(key, TaskState::Running, events);
        let admitted = self.slots_in_use;
        self.peak_admitted = self.peak_admitted.max(admitted);
        let e = &mut self.tasks[key];
        e.slot = slot;
        e.started_at = Some(now);
        let by_timeout = e.timeout.map(|t| now + t);
        e.deadline = match (by_timeout, e.fixed_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wait = now.saturating_duration_since(e.created_at);
        let deadline = e.deadline;
        self.queue_wait.record(wait);
        if let Some(at) = deadline {
            self.push_timer(at, key, TimerKind::Deadline);
        }
        if !self.tasks[key].queued {
            self.tasks[key].queued = true;
            let item = self.item(key, now);
            self.ready.push(item);
        }
    }

    /// A waker fired for `key`/`seq`. Returns true if the driver should be woken.
    pub fn wake(&mut self, key: TaskKey, seq: u64, now: Instant, events: &EventBus) -> bool {
        let Some(e) = self.tasks.get(key) else {
            return false;
        };
        if e.seq != seq || e.queued {
            return false;
        }
        match e.state {
            TaskState::Running => {}
            TaskState::Suspended => self.set_state(key, TaskState::Running, events),
            // A pending task is only woken by its cancel callback: queue it to be ended.
            TaskState::Pending if e.token.is_cancelled() => {}
            _ => return false,
        }
        self.tasks[key].queued = true;
        let item = self.item(key, now);
        self.ready.push(item);
        true
    }

    /// Takes the next task to run from the ready queue, skipping stale items.
    pub fn pop_ready(&mut self) -> Option<Popped> {
        while let Some(item) = self.ready.pop() {
            let Some(e) = self.tasks.get_mut(item.key) else {
                continue;
            };
            if e.seq != item.seq || !e.queued {
                continue;
            }
            e.queued = false;
            return Some(match e.state {
                TaskState::Pending => Popped::EndPending(item.key),
                _ => {
                    e.polling = true;
                    Popped::Poll(item.key)
                }
            });
        }
        None
    }

    /// True when tasks wait in the ready queue.
    pub fn has_ready(&self) -> bool {
        self.ready.len() > 0
    }

    /// After a poll returned `Pending`: `running → suspended` unless it was woken meanwhile.
    /// Returns whether the cleanup grace timer should be armed (first time only).
    pub fn end_poll(&mut self, key: TaskKey, arm_grace: bool, now: Instant, events: &EventBus) {
        let e = &mut self.tasks[key];
        e.polling = false;
        let queued = e.queued;
        if arm_grace && !e.grace_armed {
            e.grace_armed = true;
            let at = now + self.config.cleanup_grace;
            self.push_timer(at, key, TimerKind::Grace);
        }
        if !queued {
            self.set_state(key, TaskState::Suspended, events);
        }
    }

    /// The earliest armed timer, if any (stale ones included; they fire as no-ops).
    pub fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(t)| t.at)
    }

    /// Pops every timer due at `now` and says what to do about each.
    pub fn expire_timers(&mut self, now: Instant) -> Vec<Expired> {
        let mut out = Vec::new();
        while let Some(Reverse(t)) = self.timers.peek().copied() {
            if t.at > now {
                break;
            }
            self.timers.pop();
            let Some(e) = self.tasks.get_mut(t.key) else {
                continue;
            };
            if e.seq != t.seq {
                continue;
            }
            match t.kind {
                TimerKind::Deadline
                    if e.deadline == Some(t.at)
                        || (e.state == TaskState::Pending && e.fixed_deadline == Some(t.at)) =>
                {
                    e.timed_out = true;
                    out.push(Expired::Deadline(e.token.clone()));
                }
                TimerKind::Queue if e.state == TaskState::Pending => {
                    out.push(Expired::Queue(t.key, t.seq));
                }
                TimerKind::Grace => out.push(Expired::Grace(t.key, t.seq)),
                _ => {}
            }
        }
        out
    }

    /// Task `awaiter` polls the handle of `target`: if `target` is still pending, admit it
    /// at once on the awaiter's slot (SPEC §3.3, invariant 4).
    pub fn lend_slot(
        &mut self,
        awaiter: (TaskKey, u64),
        target: (TaskKey, u64),
        now: Instant,
        events: &EventBus,
    ) {
        if !self.live(awaiter.0, awaiter.1) || !self.live(target.0, target.1) {
            return;
        }
        let t = &self.tasks[target.0];
        if t.state != TaskState::Pending || t.token.is_cancelled() {
            return;
        }
        let a = &self.tasks[awaiter.0];
        if a.lent_to.is_some() || a.slot == Slot::None {
            return;
        }
        self.tasks[awaiter.0].lent_to = Some(target.0);
        self.admit(target.0, Slot::Borrowed(awaiter.0), now, events);
    }

    /// Gives back or passes on the slot of a task that is ending (invariant 4).
    fn release_slot(&mut self, key: TaskKey, now: Instant, events: &EventBus) {
        let (slot, lent_to) = {
            let e = &self.tasks[key];
            (e.slot, e.lent_to)
        };
        if let Some(b) = lent_to {
            if self
                .tasks
                .get(b)
                .is_some_and(|e| !e.state.is_finished() && e.slot == Slot::Borrowed(key))
            {
                self.tasks[b].slot = slot;
                if let Slot::Borrowed(x) = slot {
                    self.tasks[x].lent_to = Some(b);
                }
                return;
            }
        }
        match slot {
            Slot::None => {}
            Slot::Own => {
                self.slots_in_use -= 1;
                self.admit_pending(now, events);
            }
            Slot::Borrowed(lender) => {
                self.tasks[lender].lent_to = None;
                let seq = self.tasks[lender].seq;
                // The lender may be awaiting another pending task: let it lend again.
                self.wake(lender, seq, now, events);
            }
        }
    }

    /// Ends a live task: final state, counters, slot, history. Returns the error to hand
    /// to its `TaskHandle` (None for success) and the removed entry, which the caller drops
    /// outside the lock.
    pub fn finish(
        &mut self,
        key: TaskKey,
        ending: Ending,
        now: Instant,
        events: &EventBus,
    ) -> (Option<TaskError>, TaskEntry) {
        let e = &self.tasks[key];
        let (state, error) = match ending {
            Ending::Completed => (TaskState::Completed, None),
            Ending::Failed(err) => (TaskState::Error, Some(err)),
            Ending::QueueTimeout => (
                TaskState::Error,
                Some(TaskError::TimedOut {
                    after: e.queue_timeout.unwrap_or_default(),
                }),
            ),
            Ending::Stopped => {
                let reason = e.token.reason().unwrap_or_else(|| "cancelled".into());
                let past_deadline = e.deadline.or(e.fixed_deadline).is_some_and(|d| now >= d);
                if e.timed_out || (past_deadline && &*reason == "timeout") {
                    // From admission, or from submission for a task that never started.
                    let start = e.started_at.unwrap_or(e.created_at);
                    let after = e
                        .deadline
                        .or(e.fixed_deadline)
                        .map_or(Duration::ZERO, |d| d.saturating_duration_since(start));
                    (TaskState::Error, Some(TaskError::TimedOut { after }))
                } else {
                    (TaskState::Cancelled, Some(TaskError::Cancelled { reason }))
                }
            }
        };
        let from = e.state;
        // Bodies end only while running; pending and suspended tasks end only by being
        // stopped or timed out, which the state machine allows from there.
        let to = from
            .transition(state)
            .expect("the driver ends tasks only along edges the state machine has");
        if let Some(i) = count_index(from) {
            self.counts[i] -= 1;
        }
        if from != TaskState::Pending {
            self.release_slot(key, now, events);
        }
        let e = self.tasks.remove(key);
        if let Some(s) = e.started_at {
            self.run_time.record(now.saturating_duration_since(s));
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
                    error: if events.active() {
                        err.to_string()
                    } else {
                        String::new()
                    },
                }
            }
        };
        events.send(Some(e.id), kind);
        let record = Finished {
            id: e.id,
            name: e.name.clone(),
            priority: e.priority,
            state: to,
            parent: e.parent.map(|p| p.2),
            created_at: e.created_at,
            started_at: e.started_at,
            completed_at: now,
            error: error.clone(),
        };
        self.remember(record);
        (error, e)
    }

    fn remember(&mut self, record: Finished) {
        let limit = self.config.history_limit;
        if limit == 0 {
            return;
        }
        if self.history.len() >= limit {
            self.history.pop_front();
        }
        self.history.push_back(record);
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
        while self.history.len() > self.config.history_limit {
            self.history.pop_front();
        }
    }

    /// Looks up a live task: its id says where it is; the entry must still be that task.
    pub fn key_of(&self, id: TaskId) -> Option<TaskKey> {
        let key = id.key();
        self.tasks
            .get(key)
            .filter(|e| e.seq == id.seq() && e.id == id)
            .map(|_| key)
    }

    /// A remembered finished task (most recent first: the likeliest to be asked about).
    fn finished(&self, id: TaskId) -> Option<&Finished> {
        self.history.iter().rev().find(|f| f.id == id)
    }

    /// A snapshot of a live task.
    pub fn info(&self, key: TaskKey) -> TaskInfo {
        let e = &self.tasks[key];
        TaskInfo {
            id: e.id,
            name: e.name.clone(),
            priority: e.priority,
            state: e.state,
            parent: e.parent.map(|p| p.2),
            created_at: e.created_at,
            started_at: e.started_at,
            completed_at: None,
            error_kind: None,
            error: None,
        }
    }

    /// A snapshot of a live or remembered task.
    pub fn find(&self, id: TaskId) -> Option<TaskInfo> {
        match self.key_of(id) {
            Some(k) => Some(self.info(k)),
            None => self.finished(id).map(Finished::info),
        }
    }

    /// Snapshots of every live task, then every remembered finished one (oldest first).
    pub fn all(&self) -> Vec<TaskInfo> {
        let mut v: Vec<TaskInfo> = self.tasks.iter().map(|(k, _)| self.info(k)).collect();
        v.sort_by_key(|i| i.created_at);
        v.extend(self.history.iter().map(Finished::info));
        v
    }

    /// The state of a live task, or of a remembered finished one.
    pub fn state_of(&self, key: TaskKey, seq: u64, id: TaskId) -> Option<TaskState> {
        match self.tasks.get(key) {
            Some(e) if e.seq == seq => Some(e.state),
            _ => self.finished(id).map(|f| f.state),
        }
    }

    /// Counters for `Stats` (pools are filled in by the caller).
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

    /// Priority-inheritance hook (SPEC §3.4), called by the lock manager (lock order: core
    /// first): task `id` holds a lock that a task of priority `inherited` waits for, so it
    /// runs at `max(own, inherited)`; `None` restores its own priority. A task already in
    /// the ready queue is queued again at its new priority (the old item goes stale:
    /// whichever pops first runs it, the other is skipped, invariant 5/6).
    pub fn set_inherited_priority(&mut self, id: TaskId, inherited: Option<i32>, now: Instant) {
        let Some(key) = self.key_of(id) else {
            return;
        };
        let e = &mut self.tasks[key];
        let before = e.effective_priority();
        e.inherited = inherited;
        if e.queued && e.effective_priority() > before {
            let item = self.item(key, now);
            self.ready.push(item);
        }
    }

    /// Await-edge hook (`TaskHandle::poll`): task `awaiter` awaits task `target`.
    pub fn add_await(&mut self, awaiter: (TaskKey, u64), target: (TaskKey, u64)) {
        if self.live(awaiter.0, awaiter.1)
            && self.tasks[awaiter.0]
                .awaiting
                .insert(target.0, target.1)
                .is_none()
            && self.live(target.0, target.1)
        {
            self.tasks[target.0].awaited_by += 1;
        }
    }

    /// True if some live task may be awaiting task `id` (see `TaskEntry::awaited_by`).
    pub fn is_awaited(&self, id: TaskId) -> bool {
        self.key_of(id)
            .is_some_and(|k| self.tasks[k].awaited_by > 0)
    }

    /// The await of `awaiter` on `target` is over (result taken or handle dropped).
    pub fn remove_await(&mut self, awaiter: (TaskKey, u64), target: (TaskKey, u64)) {
        if self.live(awaiter.0, awaiter.1) {
            let a = &mut self.tasks[awaiter.0].awaiting;
            if a.get(&target.0) == Some(&target.1) {
                a.remove(&target.0);
                if self.live(target.0, target.1) {
                    let t = &mut self.tasks[target.0];
                    t.awaited_by = t.awaited_by.saturating_sub(1);
                }
            }
        }
    }

    /// The live tasks task `id` awaits (for the wait-for graph).
    pub fn awaits_of(&self, id: TaskId) -> Vec<TaskId> {
        let Some(key) = self.key_of(id) else {
            return Vec::new();
        };
        self.tasks[key]
            .awaiting
            .iter()
            .filter_map(|(k, seq)| self.tasks.get(*k).filter(|t| t.seq == *seq).map(|t| t.id))
            .collect()
    }
}

/// The ready queue's order for a fairness mode: round-robin polls in FIFO order.
fn ready_order(f: crate::Fairness) -> crate::Fairness {
    match f {
        crate::Fairness::RoundRobin => crate::Fairness::Fifo,
        other => other,
    }
}
