//! One live task's record in the core: [`TaskEntry`], the driver-side [`Phase`] machine and
//! the [`Cancel`] machine, each with the one function that moves it.

use std::num::NonZeroU64;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

use crate::executor::Runnable;
use crate::task::{CancelMode, TaskId, TaskState};
use crate::token::{CancellationToken, OnCancelGuard};

/// Index of a live task in the task table.
pub(crate) type TaskKey = usize;

/// Where an admitted task's slot comes from (core invariant 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Not admitted.
    None,
    /// Counted in `slots_in_use`.
    Own,
    /// Lent by the task at this key (a `u32`, as in the cell's tag: keys stay below
    /// 2^32), which is suspended awaiting this one.
    Borrowed(u32),
}

impl Slot {
    /// `None` as a [`SlotCode`].
    const NONE: u32 = u32::MAX;
    /// `Own` as a [`SlotCode`].
    const OWN: u32 = u32::MAX - 1;
}

/// A [`Slot`] in 4 bytes (the enum takes 8): `Borrowed(k)` is `k`, `None` and `Own` are
/// the two largest `u32`s, which are never keys (a key plus one fits a `u32`, and four
/// billion live tasks do not fit in memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotCode(u32);

impl SlotCode {
    /// Not admitted.
    pub const NONE: SlotCode = SlotCode(Slot::NONE);

    /// Encodes `slot`.
    pub fn new(slot: Slot) -> Self {
        SlotCode(match slot {
            Slot::None => Slot::NONE,
            Slot::Own => Slot::OWN,
            Slot::Borrowed(k) => {
                debug_assert!(k < Slot::OWN, "a task key collides with a slot code");
                k
            }
        })
    }

    /// Decodes it.
    pub fn get(self) -> Slot {
        match self.0 {
            Slot::NONE => Slot::None,
            Slot::OWN => Slot::Own,
            k => Slot::Borrowed(k),
        }
    }
}

/// Where a live task is in the driver's hands. The public [`TaskState`] is derived from it.
///
/// ```text
/// Pending ──admit──▶ Ready ──pop──▶ Polling ──poll returned Pending──▶ Suspended
///    │                 ▲              │  (woken during the poll)          │
///    │                 └──────────────┴───────────────◀──wake─────────────┘
///    └──cancelled / queue timeout──▶ Doomed   (polled once, only to end it)
/// ```
/// Finishing removes the entry, from any phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Submitted, not admitted; the runnable waits in the entry.
    Pending,
    /// Never admitted, queued only to be ended (cancelled or its queue timeout expired).
    Doomed,
    /// Admitted and queued to be polled; the runnable waits in the entry.
    Ready,
    /// Being polled (the runnable is out, in the driver's hands).
    Polling,
    /// Admitted and parked on something; a waker brings its runnable back.
    Suspended,
}

impl Phase {
    /// The state a snapshot shows.
    pub fn state(self) -> TaskState {
        match self {
            Phase::Pending | Phase::Doomed => TaskState::Pending,
            Phase::Ready | Phase::Polling => TaskState::Running,
            Phase::Suspended => TaskState::Suspended,
        }
    }

    /// The one function that moves a phase: `next` if the edge exists (see the diagram).
    pub fn to(self, next: Phase) -> Option<Phase> {
        use Phase::*;
        let legal = matches!(
            (self, next),
            (Pending, Ready)
                | (Pending, Doomed)
                | (Ready, Polling)
                | (Polling, Ready)
                | (Polling, Suspended)
                | (Suspended, Ready)
        );
        legal.then_some(next)
    }
}

/// How far a task's cancellation has gone.
///
/// ```text
/// Live ──cancel──▶ Requested ──survived a poll──▶ Grace ──cleanup_grace ran out──▶ Forced
///   └─────────────────── force (the scheduler is dropped) ──────────────────────────▶┘
/// ```
/// The first reason wins; later cancels change nothing. The stage and reason are boxed
/// together: most tasks are never cancelled, and every live task's entry carries this
/// field (8 bytes: `None` is live; was 16 as an enum of boxed reasons, 24 unboxed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cancel(Option<Box<Cancelled>>);

/// A cancelled task's [`Cancel`]: how far it has gone and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cancelled {
    pub stage: Stage,
    pub reason: Reason,
}

/// How far a cancellation has gone (see [`Cancel`]'s diagram).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Cancelled: checkpoints fail (outside shields), `Drop`-mode bodies are dropped.
    Requested,
    /// Cancelled and still running after a poll: the cleanup grace timer is armed.
    Grace,
    /// The grace ran out or the scheduler is going away: the body is dropped at its next
    /// poll, shield or not.
    Forced,
}

/// Why a task was cancelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reason {
    pub text: Arc<str>,
    pub why: Why,
}

/// Who cancelled a task, which decides how it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// `cancel`, a parent, a sibling, shutdown: it ends `cancelled`.
    Cancel,
    /// Its deadline or timeout: it ends `error` with `TimedOut`.
    Deadline,
    /// Its queue timeout, while pending: it ends `error` with `TimedOut`.
    QueueTimeout,
}

/// What a [`Cancel`] transition asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CancelStep {
    Request,
    ArmGrace,
    Force,
}

impl Cancel {
    /// Not cancelled.
    pub const LIVE: Cancel = Cancel(None);

    /// True while not cancelled.
    pub fn is_live(&self) -> bool {
        self.0.is_none()
    }

    /// The stage and reason, once cancelled.
    pub fn cancelled(&self) -> Option<&Cancelled> {
        self.0.as_deref()
    }

    /// The reason, once cancelled.
    pub fn reason(&self) -> Option<&Reason> {
        self.0.as_deref().map(|c| &c.reason)
    }

    /// The one function that moves a cancellation. Returns true if it changed.
    pub fn step(&mut self, step: CancelStep, reason: impl FnOnce() -> Reason) -> bool {
        match (&mut self.0, step) {
            (None, CancelStep::Request | CancelStep::Force) => {
                let stage = if step == CancelStep::Force {
                    Stage::Forced
                } else {
                    Stage::Requested
                };
                self.0 = Some(Box::new(Cancelled {
                    stage,
                    reason: reason(),
                }));
                true
            }
            (Some(c), CancelStep::ArmGrace) if c.stage == Stage::Requested => {
                c.stage = Stage::Grace;
                true
            }
            (Some(c), CancelStep::Force) if c.stage != Stage::Forced => {
                c.stage = Stage::Forced;
                true
            }
            _ => false,
        }
    }
}

/// Deadlines and timeouts of one task.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Limits {
    /// Timeout counted from admission.
    pub timeout: Option<Duration>,
    /// Absolute deadline: the caller's, capped by the parent's.
    pub fixed_deadline: Option<Instant>,
    /// Effective deadline, set at admission.
    pub deadline: Option<Instant>,
    /// Longest time in `pending`.
    pub queue_timeout: Option<Duration>,
}

impl Limits {
    /// The deadline in force now: the effective one once admitted, else the fixed one.
    pub fn current_deadline(&self) -> Option<Instant> {
        self.deadline.or(self.fixed_deadline)
    }
}

/// Everything the core knows about a live task (its future lives in its `async-task` cell).
#[derive(Debug)]
pub(crate) struct TaskEntry {
    pub id: TaskId,
    pub phase: Phase,
    pub cancel: Cancel,
    pub mode: CancelMode,
    /// Present while `Pending`, `Doomed`-and-queued or `Ready`-and-queued.
    pub runnable: Option<Runnable>,
    /// Wakes the task (cancel, grace expiry, shutdown) whatever it is parked on.
    pub waker: Waker,
    /// Created on demand: `current_token`, a child task, `TaskHandle::token`. A child
    /// task's token, once created, is a child of the token its `link` is registered on.
    pub token: Option<CancellationToken>,
    /// A child task's link to its parent's token (or its cancel scope's): an entry (inline,
    /// no boxed closure) that cancels this task, registered on that token at submission and unregistered when
    /// the entry is dropped (after the core lock). Inert for root tasks and for tasks born
    /// cancelled. A child thus costs its parent's token one entry, not a token node of its
    /// own.
    pub link: OnCancelGuard,
    pub priority: i32,
    /// Also the round-robin admission group: the parent's seq, 0 for root tasks.
    pub parent: Option<TaskId>,
    /// Submission time, in nanoseconds since the core's epoch (8 bytes, not an `Instant`'s
    /// 16: every live task carries it). See [`created_at`](Self::created_at).
    pub created: u64,
    /// Admission time, in nanoseconds since the core's epoch plus one; `None` until
    /// admitted. See [`started_at`](Self::started_at).
    pub started: Option<NonZeroU64>,
    /// Deadlines and timeouts; boxed only for tasks that have any (most have none).
    pub limits: Option<Box<Limits>>,
    /// Where its slot comes from; see [`slot`](Self::slot).
    pub slot: SlotCode,
    /// The name, inherited priority, slot loan and await edges: boxed, made when the first
    /// is set (most tasks have none of them; 48 bytes less per task, SPEC §9).
    pub cold: Option<Box<Cold>>,
    /// How many live tasks have an await edge to this one.
    pub awaited_by: u32,
    /// Open `shield` sections, kept between polls (2 bytes: the entry's small fields fit
    /// in 16; a depth past `u16::MAX`, 65,535 shields nested in one task, is kept as
    /// `u16::MAX`).
    pub shield_depth: u16,
}

/// The fields of a [`TaskEntry`] that few tasks use (see `TaskEntry::cold`).
#[derive(Debug, Default)]
pub(crate) struct Cold {
    pub name: Option<Arc<str>>,
    /// Priority inherited from lock waiters (SPEC §3.4).
    pub inherited: Option<i32>,
    /// The borrower of this task's slot (a key, `u32` as in `Slot::Borrowed`).
    pub lent_to: Option<u32>,
    /// Tasks this one awaits now (await edges: slot lending and the wait-for graph).
    pub awaiting: Vec<TaskId>,
}

impl TaskEntry {
    /// The cold fields, made on first use.
    pub fn cold_mut(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Box::default)
    }

    /// Where the task's slot comes from.
    pub fn slot(&self) -> Slot {
        self.slot.get()
    }

    /// The open shields kept between polls.
    pub fn shields(&self) -> u32 {
        u32::from(self.shield_depth)
    }

    /// Keeps the open shields between polls (saturating at `u16::MAX`).
    pub fn set_shields(&mut self, depth: u32) {
        self.shield_depth = u16::try_from(depth).unwrap_or(u16::MAX);
    }

    /// The task's name, if it has one.
    pub fn name(&self) -> Option<&Arc<str>> {
        self.cold.as_ref().and_then(|c| c.name.as_ref())
    }

    /// The priority inherited from lock waiters, if any.
    pub fn inherited(&self) -> Option<i32> {
        self.cold.as_ref().and_then(|c| c.inherited)
    }

    /// The borrower of this task's slot, if it lent it.
    pub fn lent_to(&self) -> Option<u32> {
        self.cold.as_ref().and_then(|c| c.lent_to)
    }

    /// Sets the borrower of this task's slot (clearing it makes nothing).
    pub fn set_lent_to(&mut self, to: Option<u32>) {
        if to.is_some() || self.cold.is_some() {
            self.cold_mut().lent_to = to;
        }
    }

    /// Tasks this one awaits now.
    pub fn awaiting(&self) -> &[TaskId] {
        self.cold.as_ref().map_or(&[], |c| &c.awaiting)
    }

    /// Round-robin admission group: the parent's seq, 0 for root tasks.
    pub fn group(&self) -> u64 {
        self.parent.map_or(0, |p| p.seq())
    }

    /// When the task was submitted (`epoch` is the core's).
    pub fn created_at(&self, epoch: Instant) -> Instant {
        epoch + Duration::from_nanos(self.created)
    }

    /// When the task was admitted, if it was (`epoch` is the core's).
    pub fn started_at(&self, epoch: Instant) -> Option<Instant> {
        self.started
            .map(|n| epoch + Duration::from_nanos(n.get() - 1))
    }

    /// The task's deadlines and timeouts (all `None` when it has none).
    pub fn limits(&self) -> Limits {
        self.limits.as_deref().copied().unwrap_or_default()
    }

    /// The priority the ready queue uses: its own, or a higher inherited one.
    pub fn effective_priority(&self) -> i32 {
        self.inherited()
            .map_or(self.priority, |p| p.max(self.priority))
    }

    /// Moves the phase along a legal edge.
    ///
    /// # Panics
    /// On an illegal edge: the core only asks for edges the machine has.
    pub fn set_phase(&mut self, next: Phase) {
        self.phase = self
            .phase
            .to(next)
            .unwrap_or_else(|| panic!("illegal phase change {:?} -> {next:?}", self.phase));
    }
}

/// Every live task has one entry in the core's slab (SPEC §9, memory per task): a field
/// added here costs every task; rare ones go to [`Cold`]. (Not under loom: its sync types
/// are bigger.)
#[cfg(all(test, not(loom), target_pointer_width = "64"))]
const _: () = assert!(std::mem::size_of::<TaskEntry>() <= 168);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_codes_round_trip() {
        for s in [
            Slot::None,
            Slot::Own,
            Slot::Borrowed(0),
            Slot::Borrowed(u32::MAX - 2),
        ] {
            assert_eq!(SlotCode::new(s).get(), s);
        }
        assert_eq!(SlotCode::NONE.get(), Slot::None);
    }

    #[test]
    fn phases_follow_the_diagram() {
        use Phase::*;
        let all = [Pending, Doomed, Ready, Polling, Suspended];
        let legal = [
            (Pending, Ready),
            (Pending, Doomed),
            (Ready, Polling),
            (Polling, Ready),
            (Polling, Suspended),
            (Suspended, Ready),
        ];
        for a in all {
            for b in all {
                assert_eq!(a.to(b).is_some(), legal.contains(&(a, b)), "{a:?}->{b:?}");
            }
        }
        assert_eq!(Doomed.state(), TaskState::Pending);
        assert_eq!(Polling.state(), TaskState::Running);
    }

    #[test]
    fn first_cancel_reason_wins_and_force_is_final() {
        let r = |t: &str| Reason {
            text: t.into(),
            why: Why::Cancel,
        };
        let mut c = Cancel::LIVE;
        assert!(c.step(CancelStep::Request, || r("a")));
        assert!(!c.step(CancelStep::Request, || r("b")));
        assert!(c.step(CancelStep::ArmGrace, || r("c")));
        assert!(!c.step(CancelStep::ArmGrace, || r("c")));
        assert!(c.step(CancelStep::Force, || r("d")));
        assert_eq!(
            c.cancelled(),
            Some(&Cancelled {
                stage: Stage::Forced,
                reason: r("a")
            })
        );
        assert!(!c.step(CancelStep::Force, || r("e")));
        let mut live = Cancel::LIVE;
        assert!(!live.step(CancelStep::ArmGrace, || r("x")));
        assert!(live.step(CancelStep::Force, || r("shutdown")));
    }
}
