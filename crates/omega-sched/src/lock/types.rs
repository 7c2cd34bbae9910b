//! The vocabulary of the lock manager: [`LockMode`], [`OwnerId`], [`LeaseId`].

use std::fmt;
use std::sync::Arc;

use crate::task::TaskId;

/// How a resource is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LockMode {
    /// Shared: any number of readers at once, no writer.
    Read,
    /// Exclusive: one owner, nobody else.
    Write,
}

impl LockMode {
    /// True when a holder in `self` mode and a holder in `other` mode may coexist.
    pub fn compatible(self, other: LockMode) -> bool {
        self == LockMode::Read && other == LockMode::Read
    }

    /// `"read"` or `"write"`.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Read => "read",
            LockMode::Write => "write",
        }
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who holds a lock: a task (the default: the task that acquires) or a host-level owner
/// such as an agent or a session, named by a string.
///
/// Re-entrancy is per owner: the same owner acquiring the same resource again is counted,
/// not blocked. A named owner is not released when a task ends; a task owner is.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OwnerId {
    /// A task of the scheduler.
    Task(TaskId),
    /// A host-level owner (agent, session, …).
    Named(Arc<str>),
}

impl OwnerId {
    /// A named owner.
    pub fn named(name: impl Into<Arc<str>>) -> Self {
        OwnerId::Named(name.into())
    }

    /// The task, for a task owner.
    pub fn task(&self) -> Option<TaskId> {
        match self {
            OwnerId::Task(t) => Some(*t),
            OwnerId::Named(_) => None,
        }
    }
}

impl From<TaskId> for OwnerId {
    fn from(t: TaskId) -> Self {
        OwnerId::Task(t)
    }
}

impl From<&str> for OwnerId {
    fn from(s: &str) -> Self {
        OwnerId::Named(s.into())
    }
}

impl fmt::Display for OwnerId {
    /// `task 3f2a1b9c` (the first 8 hex digits of the UUID) or `owner "agent-1"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OwnerId::Task(t) => {
                let s = t.to_string();
                write!(f, "task {}", &s[..8.min(s.len())])
            }
            OwnerId::Named(n) => write!(f, "owner {n:?}"),
        }
    }
}

impl fmt::Debug for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OwnerId::Task(t) => write!(f, "Task({t})"),
            OwnerId::Named(n) => write!(f, "Named({n:?})"),
        }
    }
}

/// Identifies one grant (one guard) for [`renew`](crate::LockManager::renew) and release.
/// Its number is the grant's fencing token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId(pub u64);

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lease #{}", self.0)
    }
}
