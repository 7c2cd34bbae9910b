//! Structured waits over many tasks (SPEC §3.3): fail-fast [`all_or_cancel`] and
//! first-success [`first_ok_or_cancel`], generic over anything that resolves like a task (to
//! any error type) and can cancel its task ([`CancelTask`]) — `TaskHandle`s, or a host's own
//! wrappers such as the Lisp layer's task values ([`WithToken`]). `Scheduler::await_all`
//! and `await_any` are these.
//!
//! When the outcome is decided, the tasks whose futures are still pending are cancelled
//! through the futures themselves: no per-task bookkeeping, no token clones.
//!
//! # Cancel safety
//!
//! Dropping an `all_or_cancel` / `first_ok_or_cancel` future before it resolves drops the
//! task futures it holds: for `TaskHandle`s that **detaches** the tasks (they keep running,
//! nothing is cancelled). Cancel them yourself if the results are no longer wanted.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{FuturesUnordered, StreamExt};

use crate::error::NoTasks;
use crate::handle::TaskHandle;
use crate::token::CancellationToken;

/// A task's future that can also cancel the task.
pub trait CancelTask {
    /// Cancels the task with `reason` (a no-op if it already finished or was cancelled).
    fn cancel_task(&self, reason: &str);
}

impl<T> CancelTask for TaskHandle<T> {
    fn cancel_task(&self, reason: &str) {
        self.cancel(reason);
    }
}

/// Any future paired with the token of the task it stands for.
#[derive(Debug)]
pub struct WithToken<F> {
    fut: Pin<Box<F>>,
    token: CancellationToken,
}

impl<F> WithToken<F> {
    /// Pairs `fut` with `token`.
    pub fn new(fut: F, token: CancellationToken) -> Self {
        WithToken {
            fut: Box::pin(fut),
            token,
        }
    }
}

impl<F: Future> Future for WithToken<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.fut.as_mut().poll(cx)
    }
}

impl<F> CancelTask for WithToken<F> {
    fn cancel_task(&self, reason: &str) {
        self.token.cancel(reason);
    }
}

/// A future that remembers its position in the input.
struct Indexed<F> {
    index: usize,
    fut: F,
}

impl<F: Future + Unpin> Future for Indexed<F> {
    type Output = (usize, F::Output);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let index = self.index;
        Pin::new(&mut self.fut).poll(cx).map(|out| (index, out))
    }
}

fn indexed<F: Future + Unpin>(tasks: Vec<F>) -> FuturesUnordered<Indexed<F>> {
    tasks
        .into_iter()
        .enumerate()
        .map(|(index, fut)| Indexed { index, fut })
        .collect()
}

/// Awaits every task. The first error cancels the tasks still running, with `reason`, and
/// is returned. Values come back in input order.
pub async fn all_or_cancel<F, T, E>(tasks: Vec<F>, reason: &str) -> Result<Vec<T>, E>
where
    F: Future<Output = Result<T, E>> + CancelTask + Unpin,
{
    let mut out: Vec<Option<T>> = (0..tasks.len()).map(|_| None).collect();
    let mut pending = indexed(tasks);
    while let Some((i, r)) = pending.next().await {
        match r {
            Ok(v) => out[i] = Some(v),
            Err(e) => {
                for rest in pending.iter() {
                    rest.fut.cancel_task(reason);
                }
                return Err(e);
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|v| v.expect("every future produced a value"))
        .collect())
}

/// Returns the index and value of the first task to **succeed** and cancels the tasks still
/// running, with `reason`. If all fail, returns the last error; with no tasks,
/// `E::from(NoTasks)`.
pub async fn first_ok_or_cancel<F, T, E>(tasks: Vec<F>, reason: &str) -> Result<(usize, T), E>
where
    F: Future<Output = Result<T, E>> + CancelTask + Unpin,
    E: From<NoTasks>,
{
    if tasks.is_empty() {
        return Err(E::from(NoTasks));
    }
    let mut pending = indexed(tasks);
    let mut last = None;
    while let Some((i, r)) = pending.next().await {
        match r {
            Ok(v) => {
                for rest in pending.iter() {
                    rest.fut.cancel_task(reason);
                }
                return Ok((i, v));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one future ran"))
}
