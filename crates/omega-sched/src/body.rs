//! [`Body`]: the future inside each task's cell. It wraps the submitted future, ends it when
//! the driver says so (cancelled in `Drop` mode, forced after the grace, never admitted),
//! catches its panics, and records the task's ending before the output is published.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::context::with_current;
use crate::core::Ending;
use crate::error::TaskError;
use crate::executor::SharedRef;
use crate::task::{CancelMode, TaskId};

pin_project! {
    /// A task's future as the executor runs it. `inner` is `None` once it ended.
    pub(crate) struct Body<F> {
        #[pin]
        inner: Option<F>,
        shared: SharedRef,
        // The task's key and seq (12 bytes), not its 32-byte `TaskId`: every task's cell
        // carries this (SPEC §9, memory per task).
        key: u32,
        seq: u64,
        // Boxed, and only when tracing is on: a disabled `Span` still takes 40 bytes.
        span: Option<Box<tracing::Span>>,
    }

    impl<F> PinnedDrop for Body<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Only when a cell is dropped without having run to its end (the scheduler is
            // gone): record the ending so counts stay exact.
            if this.inner.is_some() {
                if let Some(s) = this.shared.upgrade() {
                    s.finish(*this.key, *this.seq, Ending::Stopped, Instant::now());
                }
            }
        }
    }
}

impl<F> Body<F> {
    pub fn new(inner: F, shared: SharedRef, id: TaskId, span: tracing::Span) -> Self {
        Body {
            inner: Some(inner),
            shared,
            key: u32::try_from(id.key()).expect("keys stay below 2^32"),
            seq: id.seq(),
            span: (!span.is_disabled()).then(|| Box::new(span)),
        }
    }
}

/// What the driver told this poll, and what the body saw.
fn stop_requested() -> bool {
    with_current(|c| c.is_some_and(|c| c.stop))
}

/// Cancelled in `Drop` mode with no shield open: the body goes now.
fn drop_now() -> bool {
    with_current(|c| {
        c.is_some_and(|c| c.cancel.is_some() && c.mode == CancelMode::Drop && c.shield_depth == 0)
    })
}

fn task_cancelled() -> bool {
    with_current(|c| c.is_some_and(|c| c.cancel.is_some()))
}

fn turn_now() -> Instant {
    with_current(|c| c.map(|c| c.now)).unwrap_or_else(Instant::now)
}

impl<F, T> Future for Body<F>
where
    F: Future<Output = Result<T, TaskError>>,
{
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let (value, ending) = if stop_requested() {
            (None, Ending::Stopped)
        } else {
            let Some(inner) = this.inner.as_mut().as_pin_mut() else {
                // The cell never polls a finished future; answer anyway.
                return Poll::Ready(Err(TaskError::failed(AfterEnd)));
            };
            let _span = this.span.as_deref().map(tracing::Span::enter);
            match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
                Ok(Poll::Pending) if drop_now() => (None, Ending::Stopped),
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(Ok(v))) => (Some(v), Ending::Completed),
                Ok(Poll::Ready(Err(e))) if e.is_cancelled() && task_cancelled() => {
                    (None, Ending::Stopped)
                }
                Ok(Poll::Ready(Err(e))) => (None, Ending::Failed(e)),
                Err(panic) => (None, Ending::Failed(TaskError::from_panic(panic))),
            }
        };
        // Drop the body as the task itself (the current task is still set), and before
        // the ending is recorded, so its guards and permits are released first.
        let mut inner = this.inner;
        {
            let _span = this.span.as_deref().map(tracing::Span::enter);
            let _ = catch_unwind(AssertUnwindSafe(|| inner.set(None)));
        }
        let error = match this.shared.upgrade() {
            Some(s) => s.finish(*this.key, *this.seq, ending, turn_now()),
            None => Some(TaskError::Shutdown {
                reason: "the scheduler is gone".into(),
            }),
        };
        Poll::Ready(match (error, value) {
            (None, Some(v)) => Ok(v),
            (Some(e), _) => Err(e),
            (None, None) => Err(TaskError::failed(AfterEnd)),
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("internal error: a task body was polled after it ended")]
struct AfterEnd;
