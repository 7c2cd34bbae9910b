//! Tasks: identity, the state machine, submission options and snapshots.
//!
//! # The state machine
//!
//! ```text
//! pending ──admit──▶ running ◀──wake── suspended
//!    │                 │  └──await/lock/llm wait──▶ suspended
//!    │                 ├──▶ completed   (body returned Ok)
//!    │                 ├──▶ error       (body returned Err, panicked, or timed out)
//!    ├──queue timeout──▶ error
//!    └──cancel──▶ cancelled ◀──cancel── running / suspended
//! ```
//!
//! Every change of state goes through [`TaskState::transition`], which rejects any move not
//! drawn above. `suspended ──▶ error` is also legal: a suspended task whose cleanup grace
//! expires is ended without another poll.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use crate::error::ErrorKind;

/// A task's identity: a random UUID v4, unique across schedulers and processes, plus the
/// compact internal key that finds the task in its scheduler without a hash lookup.
/// Equality, hashing and order use the UUID only.
#[derive(Clone, Copy)]
pub struct TaskId {
    uuid: Uuid,
    /// The key plus one: the zero niche makes an `Option<TaskId>` (a task entry's parent,
    /// a handle's await edge) as small as a `TaskId`.
    key: std::num::NonZeroU32,
    seq: u64,
}

impl TaskId {
    pub(crate) fn new(uuid: Uuid, key: usize, seq: u64) -> Self {
        let key = u32::try_from(key)
            .ok()
            .and_then(|k| k.checked_add(1))
            .and_then(std::num::NonZeroU32::new)
            .expect("fewer than 2^32 - 1 live tasks");
        TaskId { uuid, key, seq }
    }

    /// The UUID behind this id.
    pub fn as_uuid(&self) -> Uuid {
        self.uuid
    }

    /// The task's slot in its scheduler's table (valid while it lives).
    pub(crate) fn key(&self) -> usize {
        (self.key.get() - 1) as usize
    }

    /// The task's submission number in its scheduler (tells reused slots apart).
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }
}

impl PartialEq for TaskId {
    fn eq(&self, other: &Self) -> bool {
        self.uuid == other.uuid
    }
}

impl Eq for TaskId {}

impl std::hash::Hash for TaskId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.uuid.hash(state);
    }
}

impl PartialOrd for TaskId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TaskId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.uuid.cmp(&other.uuid)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.uuid, f)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({})", self.uuid)
    }
}

/// Where a task is in its life. See the module docs for the legal transitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Submitted, waiting for a slot (`max_concurrent_tasks`).
    Pending,
    /// Admitted and ready to be polled, or being polled.
    Running,
    /// Admitted and waiting on something: another task, a lock, a pool permit, a timer, I/O.
    Suspended,
    /// The body finished with a value.
    Completed,
    /// The body returned an error, panicked or timed out.
    Error,
    /// The task's token was cancelled before the body finished.
    Cancelled,
}

/// An attempt to move a task along an edge the state machine does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal task state transition {from:?} -> {to:?}")]
pub struct IllegalTransition {
    /// The state the task was in.
    pub from: TaskState,
    /// The state that was asked for.
    pub to: TaskState,
}

impl TaskState {
    /// True for the three final states.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Error | TaskState::Cancelled
        )
    }

    /// True if `self → next` is an edge of the state machine.
    pub fn can_transition_to(self, next: TaskState) -> bool {
        use TaskState::*;
        matches!(
            (self, next),
            (Pending, Running)
                | (Pending, Cancelled)
                | (Pending, Error)
                | (Running, Suspended)
                | (Running, Completed)
                | (Running, Error)
                | (Running, Cancelled)
                | (Suspended, Running)
                | (Suspended, Cancelled)
                | (Suspended, Error)
        )
    }

    /// The one function that changes a task's state: returns `next` if the move is legal.
    pub fn transition(self, next: TaskState) -> Result<TaskState, IllegalTransition> {
        if self.can_transition_to(next) {
            Ok(next)
        } else {
            Err(IllegalTransition {
                from: self,
                to: next,
            })
        }
    }

    /// The lower-case name used in events, stats and Lisp (`pending`, `running`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Suspended => "suspended",
            TaskState::Completed => "completed",
            TaskState::Error => "error",
            TaskState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How cancellation reaches a task's body.
///
/// Either way a cancellation is **level-triggered**: from the cancel on, every checkpoint
/// of the task ([`check_cancelled`](crate::check_cancelled), [`yield_now`](crate::yield_now),
/// [`sleep`](crate::sleep), pool and lock waits, awaiting a handle) observes it again until
/// the task ends, except inside a [`shield`](crate::shield), which `cleanup_grace` bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CancelMode {
    /// The executor drops the body at the await point where it is parked (after any
    /// [`shield`](crate::shield)ed section finishes). Destructors run; code after the await
    /// does not. Right for ordinary Rust futures.
    #[default]
    Drop,
    /// The executor never drops the body early: it wakes it, and the scheduler's primitives
    /// (`sleep`, `yield_now`, pool acquires, `check_cancelled`) return `Err(Cancelled)` so the
    /// body can unwind and run its own cleanup. If the body has not finished `cleanup_grace`
    /// after the cancel, it is dropped anyway. The Lisp VM runs in this mode.
    Cooperative,
}

/// Options for one submission. Built with [`TaskOptions::new`] and chained setters.
#[derive(Clone, Debug, Default)]
pub struct TaskOptions {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) priority: i32,
    pub(crate) timeout: Option<Option<Duration>>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) queue_timeout: Option<Duration>,
    pub(crate) cancel_mode: CancelMode,
    pub(crate) detached: bool,
}

impl TaskOptions {
    /// Default options: no name, priority 0, the scheduler's default timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// A name shown in [`TaskInfo`], events and tracing spans.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Higher runs first under [`Fairness::Priority`](crate::Fairness::Priority). Default 0.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// A timeout counted from admission; overrides the scheduler's `task_timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(Some(timeout));
        self
    }

    /// No timeout for this task, whatever the scheduler's default.
    pub fn no_timeout(mut self) -> Self {
        self.timeout = Some(None);
        self
    }

    /// An absolute deadline. With a timeout too, the earlier wins.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The longest the task may stay `pending`; on expiry it ends `error` with
    /// [`TaskError::TimedOut`](crate::TaskError::TimedOut).
    pub fn queue_timeout(mut self, timeout: Duration) -> Self {
        self.queue_timeout = Some(timeout);
        self
    }

    /// How cancellation reaches the body; see [`CancelMode`].
    pub fn cancel_mode(mut self, mode: CancelMode) -> Self {
        self.cancel_mode = mode;
        self
    }

    /// Submit as a root task even from inside another task: no parent, a fresh token, and
    /// no deadline inherited.
    pub fn detached(mut self) -> Self {
        self.detached = true;
        self
    }
}

/// A snapshot of one task, from [`Scheduler::task`](crate::Scheduler::task) and friends.
#[derive(Clone, Debug)]
pub struct TaskInfo {
    /// The task's id.
    pub id: TaskId,
    /// The name given at submission.
    pub name: Option<Arc<str>>,
    /// The priority given at submission.
    pub priority: i32,
    /// The state when the snapshot was taken.
    pub state: TaskState,
    /// The task that submitted this one, if any.
    pub parent: Option<TaskId>,
    /// When it was submitted.
    pub created_at: Instant,
    /// When it was admitted (`pending → running`).
    pub started_at: Option<Instant>,
    /// When it finished.
    pub completed_at: Option<Instant>,
    /// For tasks that ended in `error` or `cancelled`: the kind of ending.
    pub error_kind: Option<ErrorKind>,
    /// For tasks that ended in `error` or `cancelled`: the error as text.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskState::*;

    const ALL: [TaskState; 6] = [Pending, Running, Suspended, Completed, Error, Cancelled];

    #[test]
    fn legal_transitions_are_exactly_the_diagram() {
        let legal = [
            (Pending, Running),
            (Pending, Cancelled),
            (Pending, Error),
            (Running, Suspended),
            (Running, Completed),
            (Running, Error),
            (Running, Cancelled),
            (Suspended, Running),
            (Suspended, Cancelled),
            (Suspended, Error),
        ];
        for from in ALL {
            for to in ALL {
                let expected = legal.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), expected, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn finished_states_have_no_way_out() {
        for s in ALL.into_iter().filter(|s| s.is_finished()) {
            assert!(ALL.iter().all(|&t| !s.can_transition_to(t)));
        }
        let err = Completed.transition(Running).unwrap_err();
        assert_eq!(
            err.to_string(),
            "illegal task state transition Completed -> Running"
        );
    }

    #[test]
    fn ids_are_unique_and_display_as_uuid() {
        let a = TaskId::new(Uuid::new_v4(), 1, 1);
        let b = TaskId::new(Uuid::new_v4(), 1, 1);
        assert_ne!(a, b, "same slot, different tasks");
        assert_eq!(a, TaskId::new(a.as_uuid(), 7, 9), "identity is the UUID");
        assert_eq!(a.to_string().len(), 36);
        assert_eq!(a.as_uuid().get_version_num(), 4);
    }
}
