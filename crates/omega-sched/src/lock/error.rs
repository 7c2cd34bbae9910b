//! [`LockError`] and the description of a deadlock, [`DeadlockCycle`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::types::{LeaseId, LockMode, OwnerId};

/// Why one owner waits for another, on one edge of the wait-for graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitOn {
    /// Waits for a resource the other owner holds.
    Lock(Arc<str>),
    /// Waits for a resource behind the other owner, queued ahead of it.
    Queue(Arc<str>),
    /// The waiting task awaits the other task (`TaskHandle`).
    Await,
}

/// One edge of a deadlock cycle: `waiter` cannot go on until `holder` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitEdge {
    /// Who waits.
    pub waiter: OwnerId,
    /// On what.
    pub on: WaitOn,
    /// For whom.
    pub holder: OwnerId,
}

/// A cycle of the wait-for graph, starting with the wait that would have closed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadlockCycle {
    /// The edges in order; the last edge's `holder` is the first edge's `waiter`.
    pub edges: Vec<WaitEdge>,
}

impl DeadlockCycle {
    /// The owners on the cycle, in order.
    pub fn owners(&self) -> Vec<OwnerId> {
        self.edges.iter().map(|e| e.waiter.clone()).collect()
    }

    /// The resources on the cycle, in order.
    pub fn resources(&self) -> Vec<Arc<str>> {
        self.edges
            .iter()
            .filter_map(|e| match &e.on {
                WaitOn::Lock(r) | WaitOn::Queue(r) => Some(r.clone()),
                WaitOn::Await => None,
            })
            .collect()
    }
}

impl fmt::Display for DeadlockCycle {
    /// `task A waits for "x" held by task B, which awaits task A`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.edges.iter().enumerate() {
            if i == 0 {
                write!(f, "{} ", e.waiter)?;
            } else {
                f.write_str(", which ")?;
            }
            match &e.on {
                WaitOn::Lock(r) => write!(f, "waits for {r:?} held by {}", e.holder)?,
                WaitOn::Queue(r) => write!(f, "waits for {r:?} queued behind {}", e.holder)?,
                WaitOn::Await => write!(f, "awaits {}", e.holder)?,
            }
        }
        Ok(())
    }
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn held_by(holder: &Option<(OwnerId, LockMode)>) -> String {
    match holder {
        Some((o, m)) => format!("is held by {o} ({m})"),
        None => "is reserved by earlier waiters".to_string(),
    }
}

/// A lock operation failed. Every variant names the resource (or lease) concerned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// `try_acquire`: the resource is held in a conflicting mode (or reserved by waiters
    /// ahead, a waiting writer blocking later readers).
    #[error(
        "lock {resource:?} {}; you are {} in queue",
        held_by(holder),
        ordinal(*queue_position)
    )]
    Conflict {
        /// The resource.
        resource: Arc<str>,
        /// A conflicting holder and its mode (`None`: only waiters stand in the way).
        holder: Option<(OwnerId, LockMode)>,
        /// The place the request would take in the queue (1 = first).
        queue_position: usize,
    },
    /// `acquire(..).timeout(d)` ran out before the grant.
    #[error(
        "timed out after {after:?} waiting for lock {resource:?}, which {}; you were {} in queue",
        held_by(holder),
        ordinal(*queue_position)
    )]
    Timeout {
        /// The first resource still not grantable.
        resource: Arc<str>,
        /// The timeout that expired.
        after: Duration,
        /// A conflicting holder at expiry, if any.
        holder: Option<(OwnerId, LockMode)>,
        /// The waiter's place in that resource's queue at expiry (1 = first).
        queue_position: usize,
    },
    /// Waiting would close a cycle of the wait-for graph.
    #[error("deadlock: {cycle}")]
    Deadlock {
        /// The cycle, starting with the refused wait.
        cycle: DeadlockCycle,
    },
    /// A Read→Write upgrade while others hold the resource too.
    #[error(
        "cannot upgrade {owner}'s read lock on {resource:?} to write: {others} other holder(s); \
         release the read lock and acquire write instead"
    )]
    UpgradeConflict {
        /// The resource.
        resource: Arc<str>,
        /// Who asked.
        owner: OwnerId,
        /// How many other owners hold it.
        others: usize,
    },
    /// The waiting task was cancelled.
    #[error("lock wait for {resource:?} cancelled: {reason}")]
    Cancelled {
        /// The resource waited for.
        resource: Arc<str>,
        /// The cancellation reason.
        reason: Arc<str>,
    },
    /// Acquired outside a task without `.owner(..)`.
    #[error("lock {resource:?} acquired outside a task: give an owner with .owner(..)")]
    NoOwner {
        /// The resource.
        resource: Arc<str>,
    },
    /// The lease is not held any more (released, or expired and swept).
    #[error("{lease} is not held any more (released, or its lease expired)")]
    NotHeld {
        /// The lease.
        lease: LeaseId,
    },
    /// A shared lock store (SPEC §8) could not do it: unreachable, or it failed. The message
    /// says what was attempted and why it failed.
    #[error("lock store: {message}")]
    Store {
        /// What was attempted, and the store's error.
        message: Arc<str>,
    },
}

impl LockError {
    /// `Conflict`.
    pub fn is_conflict(&self) -> bool {
        matches!(self, LockError::Conflict { .. })
    }
    /// `Timeout`.
    pub fn is_timeout(&self) -> bool {
        matches!(self, LockError::Timeout { .. })
    }
    /// `Deadlock`.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, LockError::Deadlock { .. })
    }
    /// `Cancelled`.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, LockError::Cancelled { .. })
    }
    /// The stable kind name used by the Lisp layer: `lock-conflict`, `lock-timeout`,
    /// `deadlock`, `lock-upgrade`, `cancelled`, `lock-owner`, `lock-not-held`, `lock-store`.
    pub fn kind(&self) -> &'static str {
        match self {
            LockError::Conflict { .. } => "lock-conflict",
            LockError::Timeout { .. } => "lock-timeout",
            LockError::Deadlock { .. } => "deadlock",
            LockError::UpgradeConflict { .. } => "lock-upgrade",
            LockError::Cancelled { .. } => "cancelled",
            LockError::NoOwner { .. } => "lock-owner",
            LockError::NotHeld { .. } => "lock-not-held",
            LockError::Store { .. } => "lock-store",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_resource_holder_and_position() {
        let e = LockError::Conflict {
            resource: "plan:42".into(),
            holder: Some((OwnerId::named("agent-1"), LockMode::Write)),
            queue_position: 2,
        };
        assert_eq!(
            e.to_string(),
            "lock \"plan:42\" is held by owner \"agent-1\" (write); you are 2nd in queue"
        );
        let cycle = DeadlockCycle {
            edges: vec![
                WaitEdge {
                    waiter: OwnerId::named("A"),
                    on: WaitOn::Lock("x".into()),
                    holder: OwnerId::named("B"),
                },
                WaitEdge {
                    waiter: OwnerId::named("B"),
                    on: WaitOn::Await,
                    holder: OwnerId::named("A"),
                },
            ],
        };
        assert_eq!(
            LockError::Deadlock { cycle }.to_string(),
            "deadlock: owner \"A\" waits for \"x\" held by owner \"B\", which awaits owner \"A\""
        );
        assert_eq!(ordinal(11), "11th");
        assert_eq!(ordinal(23), "23rd");
    }
}
