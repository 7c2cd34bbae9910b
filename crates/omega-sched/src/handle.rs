//! [`TaskHandle`]: awaiting, cancelling and inspecting one submitted task.
//!
//! # Implementation details
//!
//! Each task has a `JoinCell<T>` shared by its body wrapper, the executor and the handle.
//! The body stashes its value there; the executor *publishes* the ending once the task's
//! final state is recorded, so whoever is woken by the handle already sees the task
//! finished in `Scheduler::task` and `stats`. The cell's mutex guards only the cell.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::core::TaskKey;
use crate::error::TaskError;
use crate::executor::{with_current, Publish, Shared};
use crate::task::{TaskId, TaskInfo, TaskState};
use crate::token::CancellationToken;

struct JoinInner<T> {
    value: Option<T>,
    result: Option<Result<T, TaskError>>,
    done: bool,
    waker: Option<Waker>,
}

/// Where a task's result waits for its handle.
pub(crate) struct JoinCell<T> {
    inner: Mutex<JoinInner<T>>,
}

impl<T> JoinCell<T> {
    pub fn new() -> Self {
        JoinCell {
            inner: Mutex::new(JoinInner {
                value: None,
                result: None,
                done: false,
                waker: None,
            }),
        }
    }

    /// The body's value, kept until the executor publishes the ending.
    pub fn stash(&self, value: T) {
        self.inner.lock().value = Some(value);
    }

    fn is_done(&self) -> bool {
        self.inner.lock().done
    }

    fn poll_take(&self, waker: &Waker) -> Poll<Result<T, TaskError>> {
        let mut g = self.inner.lock();
        if g.done {
            return Poll::Ready(
                g.result
                    .take()
                    .expect("a TaskHandle must not be polled after it returned its result"),
            );
        }
        match &g.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => g.waker = Some(waker.clone()),
        }
        Poll::Pending
    }
}

impl<T> Publish for JoinCell<T> {
    fn publish(&self, error: Option<TaskError>) {
        let waker = {
            let mut g = self.inner.lock();
            g.result = Some(match error {
                Some(e) => Err(e),
                None => Ok(g
                    .value
                    .take()
                    .expect("a task completes only after its body stashed its value")),
            });
            g.done = true;
            g.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A submitted task: a future of its result, and a way to cancel and inspect it.
///
/// Awaiting gives `Ok(value)` or the [`TaskError`] it ended with. Dropping the handle
/// detaches the task: it keeps running. Awaiting from inside another task of the same
/// scheduler also tells the scheduler who waits for whom, so a task still `pending` because
/// of `max_concurrent_tasks` is admitted at once on the awaiter's slot (SPEC §3.3).
///
/// # Panics
/// Polling the handle again after it returned its result panics, like most futures.
#[must_use = "dropping a TaskHandle detaches the task; await it or call .detach()"]
pub struct TaskHandle<T> {
    pub(crate) id: TaskId,
    pub(crate) key: TaskKey,
    pub(crate) seq: u64,
    pub(crate) join: Arc<JoinCell<T>>,
    pub(crate) token: CancellationToken,
    pub(crate) shared: Arc<Shared>,
    /// The task awaiting this handle, once its await edge is recorded in the core (for the
    /// lock manager's wait-for graph); the edge goes when the result is taken or the
    /// handle dropped.
    pub(crate) awaited_by: Option<(TaskKey, u64)>,
}

impl<T> TaskHandle<T> {
    fn forget_await(&mut self) {
        if let Some(a) = self.awaited_by.take() {
            self.shared
                .core
                .lock()
                .remove_await(a, (self.key, self.seq));
        }
    }
}

impl<T> Drop for TaskHandle<T> {
    fn drop(&mut self) {
        self.forget_await();
    }
}

impl<T> std::fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle").field("id", &self.id).finish()
    }
}

impl<T> TaskHandle<T> {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The task's cancellation token.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Cancels the task (and its subtree) with `reason`. Returns true if the task had not
    /// finished yet; false if it had (nothing changes then).
    pub fn cancel(&self, reason: &str) -> bool {
        if self.is_finished() {
            return false;
        }
        self.token.cancel(reason);
        true
    }

    /// True once the task has finished and its result is ready.
    pub fn is_finished(&self) -> bool {
        self.join.is_done()
    }

    /// The task's state now (`None` once it finished and left the bounded history).
    pub fn state(&self) -> Option<TaskState> {
        self.shared
            .core
            .lock()
            .state_of(self.key, self.seq, self.id)
    }

    /// A snapshot of the task (`None` once it finished and left the bounded history).
    pub fn info(&self) -> Option<TaskInfo> {
        self.shared.core.lock().find(self.id)
    }

    /// Lets the task run on without anyone awaiting it (the same as dropping the handle).
    pub fn detach(self) {}
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(r) = this.join.poll_take(cx.waker()) {
            this.forget_await();
            return Poll::Ready(r);
        }
        let awaiter = with_current(|c| match c {
            Some(c) if c.sched_id == this.shared.id => Some((c.key, c.seq, c.id)),
            _ => None,
        });
        if let Some((akey, aseq, aid)) = awaiter {
            let target = (this.key, this.seq);
            let mut core = this.shared.core.lock();
            core.lend_slot((akey, aseq), target, Instant::now(), &this.shared.events);
            // Wait-for graph hook (SPEC §4): record "awaiter awaits target" once per handle,
            // after the first lock acquisition ever (before that no lock can be involved).
            let mut wake = Vec::new();
            if this.awaited_by.is_none() && this.shared.locks.tracks_awaits() {
                core.add_await((akey, aseq), target);
                this.awaited_by = Some((akey, aseq));
                wake = this.shared.locks.await_started(&core, aid, this.id);
            }
            drop(core);
            for w in wake {
                w.wake();
            }
        }
        Poll::Pending
    }
}
