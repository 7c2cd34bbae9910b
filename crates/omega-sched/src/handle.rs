//! [`TaskHandle`]: awaiting, cancelling and inspecting one submitted task.
//!
//! # Implementation details
//!
//! A handle owns the `async-task` `Task` of the task's cell: the task's output is written
//! into the cell by its body (after the ending is recorded in the core) and read from there
//! by the handle, so a result costs no allocation of its own. Dropping the handle detaches
//! the cell (the task runs on). Awaiting from inside another task of the same scheduler
//! records an await edge in the core for as long as the await lasts: it lends the awaiter's
//! slot to a pending task (SPEC §3.3), and refuses an await that closes a cycle
//! (`TaskError::Deadlock`).

use std::future::Future;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::context::{cancel_poll, current_in};
use crate::error::TaskError;
use crate::executor::{Shared, TaskTag};
use crate::task::{TaskId, TaskInfo, TaskState};
use crate::token::CancellationToken;

type Cell<T> = async_task::FallibleTask<Result<T, TaskError>, TaskTag>;

/// Where a handle's result comes from.
enum Slot<T> {
    /// The task's cell, until the result is taken.
    Cell(Cell<T>),
    /// A result known before the task ran (the scheduler was closed). Boxed: rare, and
    /// inline it would add 16 bytes to every handle (a Lisp task value holds one, SPEC §9).
    Early(Box<TaskError>),
    /// Taken.
    Taken,
}

/// A submitted task: a future of its result, and a way to cancel and inspect it.
///
/// Awaiting gives `Ok(value)` or the [`TaskError`] it ended with. Awaiting from inside
/// another task of the same scheduler tells the scheduler who waits for whom: a task still
/// `pending` because of `max_concurrent_tasks` is admitted at once on the awaiter's slot
/// (SPEC §3.3), and awaiting a task that (through a chain of awaits) awaits the awaiter
/// fails at once with [`TaskError::Deadlock`].
///
/// # Cancel safety
///
/// Dropping a `TaskHandle` — or a pending `.await` on it, or an `await_all` / `await_any`
/// future holding it — **detaches** the task: it keeps running and its result is dropped
/// when it ends. Cancel it explicitly with [`cancel`](Self::cancel) if that is what you
/// mean. Awaiting is a checkpoint of the awaiting task: in a cancelled cooperative task it
/// returns `TaskError::Cancelled` (level-triggered: every time).
///
/// If the scheduler is shut down or dropped before the task ends, the handle resolves with
/// [`TaskError::Shutdown`] (or the task's cancellation), never hangs.
///
/// # Panics
/// Polling the handle again after it returned its result panics, like most futures.
#[must_use = "dropping a TaskHandle detaches the task; await it or call .detach()"]
pub struct TaskHandle<T> {
    pub(crate) id: TaskId,
    result: Slot<T>,
    pub(crate) shared: Arc<Shared>,
    /// The awaiting task whose await edge is recorded, until the await ends: its seq (the
    /// niche says whether there is one) and its key, beside `tracked` (12 bytes in all,
    /// not an `Option<TaskId>`'s 32: every handle has them, a Lisp task value too).
    edge_seq: Option<NonZeroU64>,
    edge_key: u32,
    /// Record await edges (see [`untracked`](Self::untracked)).
    tracked: bool,
}

impl<T> TaskHandle<T> {
    pub(crate) fn new(id: TaskId, cell: Cell<T>, shared: Arc<Shared>) -> Self {
        TaskHandle {
            id,
            result: Slot::Cell(cell),
            shared,
            edge_seq: None,
            edge_key: 0,
            tracked: true,
        }
    }

    /// A handle that resolves at once with `error` (a submission the scheduler refused).
    pub(crate) fn failed(id: TaskId, error: TaskError, shared: Arc<Shared>) -> Self {
        TaskHandle {
            id,
            result: Slot::Early(Box::new(error)),
            shared,
            edge_seq: None,
            edge_key: 0,
            tracked: false,
        }
    }

    fn end_edge(&mut self) {
        if let Some(seq) = self.edge_seq.take() {
            self.shared.end_await_at(self.edge_key, seq.get(), self.id);
        }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The task's cancellation token (created on first use, then the same token each time
    /// while the task lives; for a task that already finished, a fresh token that nothing
    /// listens to).
    ///
    /// Returned by value, looked up in the scheduler at each call: a handle caches nothing
    /// (16 bytes less in every handle, and in every Lisp task value, SPEC §9).
    pub fn token(&self) -> CancellationToken {
        self.shared.task_token(self.id).unwrap_or_default()
    }

    /// Cancels the task (and its subtree) with `reason`. Returns true if the task had not
    /// finished yet; false if it had (nothing changes then).
    pub fn cancel(&self, reason: &str) -> bool {
        self.shared
            .cancel_task(self.id, &reason.into(), crate::core::Why::Cancel)
    }

    /// True once the task has finished and its result is ready.
    pub fn is_finished(&self) -> bool {
        match &self.result {
            Slot::Cell(c) => c.is_finished(),
            Slot::Early(_) | Slot::Taken => true,
        }
    }

    /// The task's state now (`None` once it finished and left the bounded history).
    pub fn state(&self) -> Option<TaskState> {
        self.shared.lock_core().state_of(self.id)
    }

    /// A snapshot of the task (`None` once it finished and left the bounded history).
    pub fn info(&self) -> Option<TaskInfo> {
        self.shared.lock_core().find(self.id)
    }

    /// Lets the task run on without anyone awaiting it (the same as dropping the handle).
    pub fn detach(self) {}

    /// Records that the running task awaits this one until the returned guard is dropped,
    /// as awaiting a tracked handle does (see [`Scheduler::track_await`]): for an
    /// [`untracked`](Self::untracked) handle shared by several awaiters, without keeping a
    /// `Scheduler` beside it.
    ///
    /// [`Scheduler::track_await`]: crate::Scheduler::track_await
    pub fn track_await(&self) -> Result<crate::AwaitGuard, TaskError> {
        crate::scheduler::track_await_in(&self.shared, self.id)
    }

    /// This handle without await tracking: awaiting it from a task records no await edge
    /// (no slot lending, no deadlock check). For wrappers that share one handle between
    /// several awaiters (a `futures::Shared`) and record each awaiter's edge themselves
    /// with [`Scheduler::track_await`](crate::Scheduler::track_await).
    pub fn untracked(mut self) -> Self {
        self.tracked = false;
        self
    }
}

impl<T> Drop for TaskHandle<T> {
    fn drop(&mut self) {
        self.end_edge();
        if let Slot::Cell(cell) = std::mem::replace(&mut self.result, Slot::Taken) {
            cell.detach();
        }
    }
}

impl<T> std::fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle").field("id", &self.id).finish()
    }
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Slot::Early(_) = this.result {
            if let Slot::Early(e) = std::mem::replace(&mut this.result, Slot::Taken) {
                return Poll::Ready(Err(*e));
            }
        }
        // Awaiting is a checkpoint of the awaiting task.
        match cancel_poll::<()>() {
            Some(Poll::Ready(Err(c))) => {
                this.end_edge();
                return Poll::Ready(Err(c.into()));
            }
            Some(_) => return Poll::Pending,
            None => {}
        }
        if this.tracked && this.edge_seq.is_none() {
            if let Some((sched, me)) = current_in() {
                if sched == this.shared.id {
                    match this.shared.begin_await(me, this.id) {
                        Err(cycle) => return Poll::Ready(Err(TaskError::Deadlock { cycle })),
                        Ok(true) => {
                            this.edge_key = me.key() as u32;
                            this.edge_seq = NonZeroU64::new(me.seq());
                        }
                        Ok(false) => {}
                    }
                }
            }
        }
        let Slot::Cell(cell) = &mut this.result else {
            panic!("a TaskHandle must not be polled after it returned its result");
        };
        match Pin::new(cell).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(out) => {
                this.result = Slot::Taken;
                this.end_edge();
                Poll::Ready(out.unwrap_or_else(|| {
                    Err(TaskError::Shutdown {
                        reason: "the scheduler dropped the task before it ended".into(),
                    })
                }))
            }
        }
    }
}
