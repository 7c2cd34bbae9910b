//! The bounded history of finished tasks: a ring of at most `history_limit` records.

use std::sync::Arc;

use tokio::time::Instant;

use crate::error::TaskError;
use crate::task::{TaskId, TaskInfo, TaskState};

/// What the history keeps of a finished task (a `TaskInfo` is built on demand, so finishing
/// a task formats nothing).
#[derive(Debug)]
pub(crate) struct Finished {
    pub id: TaskId,
    pub name: Option<Arc<str>>,
    pub priority: i32,
    pub state: TaskState,
    pub parent: Option<TaskId>,
    pub created_at: Instant,
    pub started_at: Option<Instant>,
    pub completed_at: Instant,
    pub error: Option<TaskError>,
}

impl Finished {
    pub fn info(&self) -> TaskInfo {
        TaskInfo {
            id: self.id,
            name: self.name.clone(),
            priority: self.priority,
            state: self.state,
            parent: self.parent,
            created_at: self.created_at,
            started_at: self.started_at,
            completed_at: Some(self.completed_at),
            error_kind: self.error.as_ref().map(TaskError::kind),
            error: self.error.as_ref().map(ToString::to_string),
        }
    }
}

/// A ring of finished tasks: a vector that grows to `limit` records, then overwrites the
/// oldest in place (one write per finished task, nothing moved out).
#[derive(Debug, Default)]
pub(crate) struct History {
    ring: Vec<Finished>,
    /// Index of the oldest record once the ring is full (0 while it grows).
    head: usize,
}

impl History {
    /// Remembers `f`, forgetting the oldest record beyond `limit`.
    pub fn push(&mut self, f: Finished, limit: usize) {
        if limit == 0 {
            return;
        }
        if self.ring.len() > limit {
            self.trim(limit);
        }
        if self.ring.len() < limit {
            if self.head != 0 {
                // The limit grew after the ring wrapped: straighten it first.
                self.ring.rotate_left(self.head);
                self.head = 0;
            }
            self.ring.push(f);
        } else {
            self.ring[self.head] = f;
            self.head = (self.head + 1) % limit;
        }
    }

    /// Forgets the oldest records beyond `limit`.
    pub fn trim(&mut self, limit: usize) {
        self.ring.rotate_left(self.head);
        self.head = 0;
        if self.ring.len() > limit {
            let extra = self.ring.len() - limit;
            self.ring.drain(..extra);
        }
    }

    /// A remembered task (most recent first: the likeliest to be asked about).
    pub fn find(&self, id: TaskId) -> Option<&Finished> {
        self.iter().rev().find(|f| f.id == id)
    }

    /// Every record, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Finished> {
        let (new, old) = self.ring.split_at(self.head);
        old.iter().chain(new.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u128) -> Finished {
        Finished {
            id: TaskId::new(uuid::Uuid::from_u128(n), 0, n as u64),
            name: None,
            priority: 0,
            state: TaskState::Completed,
            parent: None,
            created_at: Instant::now(),
            started_at: None,
            completed_at: Instant::now(),
            error: None,
        }
    }

    fn ids(h: &History) -> Vec<u128> {
        h.iter().map(|f| f.id.as_uuid().as_u128()).collect()
    }

    #[test]
    fn keeps_the_last_limit_records_oldest_first() {
        let mut h = History::default();
        for n in 1..=7 {
            h.push(rec(n), 3);
        }
        assert_eq!(ids(&h), [5, 6, 7]);
        assert!(h
            .find(TaskId::new(uuid::Uuid::from_u128(6), 0, 0))
            .is_some());
        assert!(h
            .find(TaskId::new(uuid::Uuid::from_u128(4), 0, 0))
            .is_none());
        // The limit shrinks, then grows again.
        h.trim(2);
        assert_eq!(ids(&h), [6, 7]);
        h.push(rec(8), 4);
        h.push(rec(9), 4);
        h.push(rec(10), 4);
        assert_eq!(ids(&h), [7, 8, 9, 10]);
        h.push(rec(11), 0);
        assert_eq!(ids(&h), [7, 8, 9, 10], "limit 0 remembers nothing new");
    }
}
