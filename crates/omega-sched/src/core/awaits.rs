//! Await edges: who awaits whom (SPEC §3.3, §4). They drive slot lending, refuse await
//! cycles at once, and are the task half of the lock manager's wait-for graph
//! ([`TaskGraph`]).

use std::collections::HashSet;

use tokio::time::Instant;

use super::{Core, TaskKey};
use crate::lock::{DeadlockCycle, OwnerId, TaskGraph, WaitEdge, WaitOn};
use crate::task::TaskId;

impl Core {
    /// Task `awaiter` starts awaiting task `target`. Records the edge, lends `target` the
    /// awaiter's slot if it is still pending, and refuses an await that would close a
    /// cycle of awaits (a task awaiting itself, or `a → b → a`), naming the cycle.
    /// Returns `Ok(false)` when there is nothing to record (either side finished).
    pub fn begin_await(
        &mut self,
        awaiter: TaskId,
        target: TaskId,
        now: Instant,
    ) -> Result<bool, DeadlockCycle> {
        let (Some(a), Some(t)) = (self.live_key(awaiter), self.live_key(target)) else {
            return Ok(false);
        };
        if let Some(path) = self.await_path(t, awaiter) {
            let mut nodes = vec![awaiter];
            nodes.extend(path);
            let edges = nodes
                .windows(2)
                .map(|w| WaitEdge {
                    waiter: OwnerId::Task(w[0]),
                    on: WaitOn::Await,
                    holder: OwnerId::Task(w[1]),
                })
                .collect();
            return Err(DeadlockCycle { edges });
        }
        if !self.tasks[a].awaiting().contains(&target) {
            self.tasks[a].cold_mut().awaiting.push(target);
            self.tasks[t].awaited_by += 1;
        }
        self.lend_slot(a, t, now);
        Ok(true)
    }

    /// The await of `awaiter` on `target` is over (result taken, or the await dropped).
    pub fn end_await(&mut self, awaiter_key: TaskKey, awaiter_seq: u64, target: TaskId) {
        let Some(a) = self
            .tasks
            .get(awaiter_key)
            .filter(|e| e.id.seq() == awaiter_seq)
            .map(|_| awaiter_key)
        else {
            return;
        };
        let Some(cold) = self.tasks[a].cold.as_deref_mut() else {
            return;
        };
        let list = &mut cold.awaiting;
        if let Some(i) = list.iter().position(|t| *t == target) {
            list.swap_remove(i);
            if let Some(t) = self.live_key(target) {
                self.tasks[t].awaited_by -= 1;
            }
        }
    }

    /// A chain of await edges from `from` to `goal` (both included), if one exists.
    fn await_path(&self, from: TaskKey, goal: TaskId) -> Option<Vec<TaskId>> {
        let start = self.tasks[from].id;
        if start == goal {
            return Some(vec![start, goal]);
        }
        // Depth-first with an explicit stack of (node, next edge index).
        let mut seen = HashSet::new();
        seen.insert(from);
        let mut stack: Vec<(TaskKey, usize)> = vec![(from, 0)];
        while let Some((k, i)) = stack.last_mut() {
            let Some(next) = self.tasks[*k].awaiting().get(*i).copied() else {
                stack.pop();
                continue;
            };
            *i += 1;
            if next == goal {
                let mut path: Vec<TaskId> = stack.iter().map(|(k, _)| self.tasks[*k].id).collect();
                path.push(goal);
                return Some(path);
            }
            if let Some(nk) = self.live_key(next) {
                if seen.insert(nk) {
                    stack.push((nk, 0));
                }
            }
        }
        None
    }
}

impl TaskGraph for Core {
    fn awaits_of(&self, t: TaskId) -> Vec<TaskId> {
        self.live_key(t).map_or_else(Vec::new, |k| {
            self.tasks[k]
                .awaiting()
                .iter()
                .copied()
                .filter(|x| self.live_key(*x).is_some())
                .collect()
        })
    }

    fn is_awaited(&self, t: TaskId) -> bool {
        self.live_key(t)
            .is_some_and(|k| self.tasks[k].awaited_by > 0)
    }

    fn set_inherited_priority(&mut self, id: TaskId, inherited: Option<i32>, now: Instant) {
        let Some(key) = self.live_key(id) else {
            return;
        };
        let e = &mut self.tasks[key];
        let before = e.effective_priority();
        if inherited.is_some() || e.cold.is_some() {
            e.cold_mut().inherited = inherited;
        }
        // A task waiting in the ready queue is queued again at its new priority (the old
        // item goes stale: whichever pops first runs it, the other finds no runnable).
        if e.phase == super::Phase::Ready && e.runnable.is_some() && e.effective_priority() > before
        {
            let item = self.item(key, now);
            self.ready.push(item);
        }
    }
}
