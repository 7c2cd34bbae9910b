//! What a task body can ask about itself, and the scheduler's await points:
//! [`current_task`], [`current_token`], [`check_cancelled`], [`yield_now`], [`sleep`] and
//! [`shield`].
//!
//! # Cancellation at await points
//!
//! How a primitive behaves once the current task's token is cancelled depends on the task's
//! [`CancelMode`]:
//! * `Drop`: it never completes; the executor drops the body at this await.
//! * `Cooperative`: it returns `Err(Cancelled)` so the body can unwind and clean up.
//!
//! Inside a [`shield`] the cancellation is invisible: primitives behave as if the token were
//! not cancelled, until the shielded future finishes (or `cleanup_grace` runs out).
//! Outside any task, primitives never see a cancellation.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::executor::{with_current, TaskCtx};
use crate::task::{CancelMode, TaskId};
use crate::token::{CancellationToken, Cancelled};

/// The id of the task whose body is running on this thread, if any.
pub fn current_task() -> Option<TaskId> {
    with_current(|c| c.map(|c| c.id))
}

/// The cancellation token of the running task, if any.
pub fn current_token() -> Option<CancellationToken> {
    with_current(|c| c.map(|c| c.token.clone()))
}

/// The priority of the running task (0 outside tasks).
pub fn current_priority() -> i32 {
    with_current(|c| c.map_or(0, |c| c.priority))
}

/// `Err(Cancelled)` if the running task's token is cancelled (and no shield is open).
///
/// ```
/// # omega_sched::Scheduler::new().block_on(async {
/// assert!(omega_sched::check_cancelled().is_ok()); // not in a task: never cancelled
/// # });
/// ```
pub fn check_cancelled() -> Result<(), Cancelled> {
    with_current(|c| match c {
        Some(c) if c.cancel_visible() => Err(Cancelled {
            reason: c.token.reason().unwrap_or_else(|| "cancelled".into()),
        }),
        _ => Ok(()),
    })
}

/// What a primitive should do about cancellation right now.
enum CancelCheck {
    /// Not cancelled (or shielded, or not in a task): work normally.
    Proceed,
    /// Cancelled in `Drop` mode: stay pending; the executor drops the body.
    Park,
    /// Cancelled in `Cooperative` mode: return this error.
    Fail(Cancelled),
}

/// The cancellation check at the top of every primitive's `poll`: `Some(poll)` to return
/// at once (`Pending` to park in `Drop` mode, `Ready(Err)` in `Cooperative` mode), `None` to
/// work normally.
pub(crate) fn cancel_poll<T>() -> Option<Poll<Result<T, Cancelled>>> {
    match cancel_check() {
        CancelCheck::Fail(c) => Some(Poll::Ready(Err(c))),
        CancelCheck::Park => Some(Poll::Pending),
        CancelCheck::Proceed => None,
    }
}

fn cancel_check() -> CancelCheck {
    with_current(|c| match c {
        Some(c) if c.cancel_visible() => match c.cancel_mode {
            CancelMode::Drop => CancelCheck::Park,
            CancelMode::Cooperative => CancelCheck::Fail(Cancelled {
                reason: c.token.reason().unwrap_or_else(|| "cancelled".into()),
            }),
        },
        _ => CancelCheck::Proceed,
    })
}

/// Gives other ready tasks a turn: the current task goes to the back of the ready queue.
/// Returns `Err(Cancelled)` in a cancelled cooperative task.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = Result<(), Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(p) = cancel_poll() {
            return p;
        }
        if self.yielded {
            return Poll::Ready(Ok(()));
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Sleeps for `d` on tokio's clock (so paused-clock tests are exact). The task is
/// `suspended` meanwhile. Returns `Err(Cancelled)` early in a cancelled cooperative task.
pub fn sleep(d: Duration) -> SleepFuture {
    SleepFuture {
        inner: Box::pin(tokio::time::sleep(d)),
    }
}

/// The future of [`sleep`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct SleepFuture {
    inner: Pin<Box<tokio::time::Sleep>>,
}

impl Future for SleepFuture {
    type Output = Result<(), Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(p) = cancel_poll() {
            return p;
        }
        self.inner.as_mut().poll(cx).map(Ok)
    }
}

/// Runs `fut` so that the current task's cancellation does not interrupt it: for cleanup
/// that must finish (closing a session, releasing a remote lock, a Lisp `finally`).
///
/// While the shield is open the task is not dropped and the scheduler's primitives do not
/// report the cancellation. The protection is bounded: `cleanup_grace` (default 5 s) after
/// the cancel, the task is dropped anyway.
///
/// ```
/// use omega_sched::{shield, Scheduler, TaskOptions};
/// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
///
/// let sched = Scheduler::new();
/// let cleaned = Arc::new(AtomicBool::new(false));
/// let flag = cleaned.clone();
/// let s = sched.clone();
/// sched.block_on(async move {
///     let h = s.submit(async move {
///         omega_sched::current_token().unwrap().cancel("stop");
///         shield(async {
///             let _ = omega_sched::sleep(std::time::Duration::from_millis(1)).await;
///             flag.store(true, Ordering::SeqCst);
///         }).await;
///         // The cancellation takes effect at the next await point.
///         omega_sched::yield_now().await.ok();
///         unreachable!("dropped at the await above");
///     }, TaskOptions::new());
///     assert!(h.await.unwrap_err().is_cancelled());
/// });
/// assert!(cleaned.load(Ordering::SeqCst));
/// ```
pub fn shield<F: Future>(fut: F) -> Shield<F> {
    Shield {
        fut: Box::pin(fut),
        task: None,
        entered: false,
    }
}

/// The future of [`shield`].
#[must_use = "futures do nothing unless awaited"]
pub struct Shield<F> {
    fut: Pin<Box<F>>,
    task: Option<Arc<TaskCtx>>,
    entered: bool,
}

impl<F> std::fmt::Debug for Shield<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shield")
            .field("entered", &self.entered)
            .finish()
    }
}

impl<F> Shield<F> {
    fn leave(&mut self) {
        if let Some(t) = self.task.take() {
            t.shield_depth.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl<F: Future> Future for Shield<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if !self.entered {
            self.entered = true;
            self.task = with_current(|c| c.cloned());
            if let Some(t) = &self.task {
                t.shield_depth.fetch_add(1, Ordering::Relaxed);
            }
        }
        let out = self.fut.as_mut().poll(cx);
        if out.is_ready() {
            self.leave();
        }
        out
    }
}

impl<F> Drop for Shield<F> {
    fn drop(&mut self) {
        self.leave();
    }
}
