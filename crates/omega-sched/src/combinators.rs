//! Structured waits over many tasks (SPEC §3.3): fail-fast [`all_or_cancel`] and
//! first-success [`first_ok_or_cancel`], generic over anything that resolves like a task (to
//! any error type) and carries the task's cancellation token — `TaskHandle`s, or a host's own shared wrappers
//! (the Lisp layer's task values). `Scheduler::await_all` and `await_any` are these.

use std::future::Future;

use futures::stream::{FuturesUnordered, StreamExt};

use crate::error::NoTasks;
use crate::token::CancellationToken;

/// Awaits every future. The first error cancels the tokens of the futures that have not
/// finished, with `reason`, and is returned. Values come back in input order.
pub async fn all_or_cancel<F, T, E>(
    tasks: Vec<(F, CancellationToken)>,
    reason: &str,
) -> Result<Vec<T>, E>
where
    F: Future<Output = Result<T, E>>,
{
    let mut out: Vec<Option<T>> = (0..tasks.len()).map(|_| None).collect();
    let mut tokens = Vec::with_capacity(tasks.len());
    let mut pending = FuturesUnordered::new();
    for (i, (fut, token)) in tasks.into_iter().enumerate() {
        tokens.push(token);
        pending.push(async move { (i, fut.await) });
    }
    while let Some((i, r)) = pending.next().await {
        match r {
            Ok(v) => out[i] = Some(v),
            Err(e) => {
                for (j, t) in tokens.iter().enumerate() {
                    if j != i && out[j].is_none() {
                        t.cancel(reason);
                    }
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

/// Returns the index and value of the first future to **succeed** and cancels the others'
/// tokens with `reason`. If all fail, returns the last error; with no futures,
/// `E::from(NoTasks)`.
pub async fn first_ok_or_cancel<F, T, E>(
    tasks: Vec<(F, CancellationToken)>,
    reason: &str,
) -> Result<(usize, T), E>
where
    F: Future<Output = Result<T, E>>,
    E: From<NoTasks>,
{
    if tasks.is_empty() {
        return Err(E::from(NoTasks));
    }
    let mut tokens = Vec::with_capacity(tasks.len());
    let mut pending = FuturesUnordered::new();
    for (i, (fut, token)) in tasks.into_iter().enumerate() {
        tokens.push(token);
        pending.push(async move { (i, fut.await) });
    }
    let mut last = None;
    while let Some((i, r)) = pending.next().await {
        match r {
            Ok(v) => {
                for (j, t) in tokens.iter().enumerate() {
                    if j != i {
                        t.cancel(reason);
                    }
                }
                return Ok((i, v));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one future ran"))
}
