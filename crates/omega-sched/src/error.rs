//! How a task can fail: [`TaskError`] and its [`ErrorKind`].

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::lock::DeadlockCycle;
use crate::token::Cancelled;

/// Why a task did not produce its value. Cheap to clone (shared payloads).
///
/// `#[non_exhaustive]`: match with a wildcard arm, or use [`TaskError::kind`].
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task's token was cancelled (by `cancel`, a parent, a sibling's failure, …).
    #[error("task cancelled: {reason}")]
    Cancelled {
        /// The first reason given to the token.
        reason: Arc<str>,
    },
    /// The task's timeout, deadline or queue timeout expired.
    #[error("task timed out after {after:?}")]
    TimedOut {
        /// How long the task had (from admission, or in the queue for a queue timeout).
        after: Duration,
    },
    /// The body returned an error.
    #[error("task failed: {0}")]
    Failed(Arc<dyn StdError + Send + Sync>),
    /// The body panicked; the scheduler caught it.
    #[error("task panicked: {message}")]
    Panicked {
        /// The panic payload, if it was a string.
        message: Arc<str>,
    },
    /// Awaiting the task would close a cycle of awaits (a task awaiting itself, or tasks
    /// awaiting each other): the await fails at once instead of hanging (SPEC §3.9). The
    /// awaited task is not affected.
    #[error("deadlock: {cycle}")]
    Deadlock {
        /// The cycle, starting with the refused await.
        cycle: DeadlockCycle,
    },
    /// The scheduler was shut down (or dropped) before the task could run or finish.
    #[error("scheduler shut down: {reason}")]
    Shutdown {
        /// The reason given to `shutdown`.
        reason: Arc<str>,
    },
}

/// The kind of a [`TaskError`], without its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`TaskError::Cancelled`].
    Cancelled,
    /// [`TaskError::TimedOut`].
    Timeout,
    /// [`TaskError::Failed`].
    Failed,
    /// [`TaskError::Panicked`].
    Panic,
    /// [`TaskError::Deadlock`].
    Deadlock,
    /// [`TaskError::Shutdown`].
    Shutdown,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Failed => "failed",
            ErrorKind::Panic => "panic",
            ErrorKind::Deadlock => "deadlock",
            ErrorKind::Shutdown => "shutdown",
        })
    }
}

impl TaskError {
    /// Wraps any error as [`TaskError::Failed`].
    pub fn failed(err: impl StdError + Send + Sync + 'static) -> Self {
        TaskError::Failed(Arc::new(err))
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            TaskError::Cancelled { .. } => ErrorKind::Cancelled,
            TaskError::TimedOut { .. } => ErrorKind::Timeout,
            TaskError::Failed(_) => ErrorKind::Failed,
            TaskError::Panicked { .. } => ErrorKind::Panic,
            TaskError::Deadlock { .. } => ErrorKind::Deadlock,
            TaskError::Shutdown { .. } => ErrorKind::Shutdown,
        }
    }

    /// True for [`TaskError::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled { .. })
    }

    /// True for [`TaskError::TimedOut`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, TaskError::TimedOut { .. })
    }

    /// True for [`TaskError::Panicked`].
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskError::Panicked { .. })
    }

    /// True for [`TaskError::Deadlock`].
    pub fn is_deadlock(&self) -> bool {
        matches!(self, TaskError::Deadlock { .. })
    }

    /// True for [`TaskError::Shutdown`].
    pub fn is_shutdown(&self) -> bool {
        matches!(self, TaskError::Shutdown { .. })
    }

    pub(crate) fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Self {
        let message: Arc<str> = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).into()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.as_str().into()
        } else {
            "non-string panic payload".into()
        };
        TaskError::Panicked { message }
    }
}

impl From<Cancelled> for TaskError {
    fn from(c: Cancelled) -> Self {
        TaskError::Cancelled { reason: c.reason }
    }
}

/// `await_any` was given no tasks.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("await_any needs at least one task")]
pub struct NoTasks;

impl From<NoTasks> for TaskError {
    fn from(e: NoTasks) -> Self {
        TaskError::failed(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_kinds() {
        let e = TaskError::from(Cancelled {
            reason: "user".into(),
        });
        assert_eq!(e.to_string(), "task cancelled: user");
        assert_eq!(e.kind(), ErrorKind::Cancelled);
        let e = TaskError::TimedOut {
            after: Duration::from_millis(5),
        };
        assert_eq!(e.to_string(), "task timed out after 5ms");
        assert!(e.is_timeout());
        assert_eq!(
            TaskError::failed(NoTasks).to_string(),
            "task failed: await_any needs at least one task"
        );
        let p = TaskError::from_panic(Box::new("boom"));
        assert_eq!(p.to_string(), "task panicked: boom");
        assert_eq!(p.kind().to_string(), "panic");
    }
}
