//! The wait-for graph, searched for cycles when a wait is about to start (SPEC §4).
//!
//! # Implementation details
//!
//! The graph is not stored: its edges are read off the lock table and the scheduler's core
//! at the moment of the search, both locked (core first, see the `lock` module's lock order):
//!
//! * **lock waits** — an owner (or the task acquiring on its behalf) with a queued request
//!   waits for every other holder of a requested resource whose mode conflicts
//!   ([`WaitOn::Lock`]), and for every waiter queued ahead of it that it may not pass
//!   ([`WaitOn::Queue`]);
//! * **task awaits** — a task polling another task's `TaskHandle` waits for that task
//!   ([`WaitOn::Await`]; recorded by `handle.rs` in the core).
//!
//! A breadth-first search from the nodes a new wait would point at looks for the waiter
//! itself; the path found, prefixed with the new edge, is the cycle reported (the shortest
//! one). Nodes are [`OwnerId`]s; a task is `OwnerId::Task`. Named owners have no awaits:
//! a cycle through a named owner is found through its lock waits only.

use std::collections::{HashMap, VecDeque};

use tokio::time::Instant;

use crate::task::TaskId;

use super::error::{DeadlockCycle, WaitEdge, WaitOn};
use super::state::{fit, Fit, Order, Req, State, WaiterKey};
use super::types::{LockMode, OwnerId};

/// What the lock manager needs to know of the scheduler's tasks, and may change: their
/// await edges (the task half of the wait-for graph) and their inherited priorities.
/// Implemented by the scheduler's core; the manager never sees the core itself.
pub(crate) trait TaskGraph {
    /// The live tasks task `t` awaits now.
    fn awaits_of(&self, t: TaskId) -> Vec<TaskId>;
    /// True if some live task awaits `t`.
    fn is_awaited(&self, t: TaskId) -> bool;
    /// Task `t` holds a lock a task of priority `p` waits for (`None`: no more).
    fn set_inherited_priority(&mut self, t: TaskId, p: Option<i32>, now: Instant);
}

/// Gives the lock manager the task graph, locked, for the length of a closure. The graph's
/// lock is always taken before the manager's own (lock order: core → lock state).
pub(crate) trait TaskGraphHost: Send + Sync {
    /// Runs `f` with the task graph locked.
    fn with_graph(&self, f: &mut dyn FnMut(&mut dyn TaskGraph));
}

/// One outgoing edge: the wait that makes it (for lock edges) and its target.
type Out = (WaitOn, OwnerId, Option<WaiterKey>);

/// Read-only view of both edge sources.
pub(crate) struct Graph<'a> {
    pub st: &'a State,
    pub core: Option<&'a dyn TaskGraph>,
}

impl Graph<'_> {
    /// The edges of a request that would wait with queue position `limit`.
    fn request_edges(&self, req: &Req, limit: Order, key: Option<WaiterKey>, out: &mut Vec<Out>) {
        for (r, mode) in &req.items {
            let Some(res) = self.st.resources.get(&**r) else {
                continue;
            };
            if fit(Some(res), &req.owner, *mode) == Fit::Reentrant {
                continue;
            }
            for h in &res.holders {
                if h.owner != req.owner && !mode.compatible(h.mode()) {
                    out.push((WaitOn::Lock(r.clone()), h.owner.clone(), key));
                }
            }
            for (_, &k) in res.queue.range(..limit) {
                let w = &self.st.waiters[k];
                let passes = *mode == LockMode::Read && w.mode_on(r) == Some(LockMode::Read);
                if !passes && w.req.owner != req.owner {
                    out.push((WaitOn::Queue(r.clone()), w.req.owner.clone(), key));
                }
            }
        }
    }

    fn edges(&self, node: &OwnerId, out: &mut Vec<Out>) {
        out.clear();
        if let Some(e) = self.st.owners.get(node) {
            for &k in &e.waits {
                let w = &self.st.waiters[k];
                self.request_edges(&w.req, w.order, Some(k), out);
            }
        }
        if let (OwnerId::Task(t), Some(core)) = (node, self.core) {
            for target in core.awaits_of(*t) {
                out.push((WaitOn::Await, OwnerId::Task(target), None));
            }
        }
    }

    /// Breadth-first search from `starts` for any of `goals`. Returns the path as edges
    /// (the first edge's waiter is `from`) and the waiter keys of its lock edges.
    fn search(
        &self,
        from: &OwnerId,
        starts: Vec<Out>,
        goals: &[OwnerId],
    ) -> Option<Vec<(WaitEdge, Option<WaiterKey>)>> {
        let mut parent: HashMap<OwnerId, (OwnerId, WaitOn, Option<WaiterKey>)> = HashMap::new();
        let mut queue = VecDeque::new();
        for (on, to, key) in starts {
            if !parent.contains_key(&to) {
                parent.insert(to.clone(), (from.clone(), on, key));
                queue.push_back(to);
            }
        }
        let mut out = Vec::new();
        let mut found = None;
        'bfs: while let Some(node) = queue.pop_front() {
            if goals.contains(&node) {
                found = Some(node);
                break;
            }
            self.edges(&node, &mut out);
            for (on, to, key) in out.drain(..) {
                if goals.contains(&to) && !parent.contains_key(&to) {
                    parent.insert(to.clone(), (node.clone(), on, key));
                    found = Some(to);
                    break 'bfs;
                }
                if !parent.contains_key(&to) && &to != from {
                    parent.insert(to.clone(), (node.clone(), on, key));
                    queue.push_back(to);
                }
            }
        }
        let mut node = found?;
        let mut path = Vec::new();
        loop {
            let (prev, on, key) = parent.get(&node)?.clone();
            path.push((
                WaitEdge {
                    waiter: prev.clone(),
                    on,
                    holder: node.clone(),
                },
                key,
            ));
            if &prev == from {
                break;
            }
            node = prev;
            if path.len() > parent.len() + 1 {
                return None;
            }
        }
        path.reverse();
        Some(path)
    }

    /// Would `req`, queued now, close a cycle? Returns the cycle, starting with its wait.
    pub fn would_deadlock(&self, req: &Req) -> Option<DeadlockCycle> {
        let mut goals = vec![req.owner.clone()];
        if let Some(t) = req.task {
            goals.push(OwnerId::Task(t));
        }
        // A cycle must come back to a goal. Nothing waits for a goal that holds no lock and
        // has no queued wait (the request is not queued yet) unless some task awaits it: in
        // that common case no search is needed.
        let reachable = goals.iter().any(|g| {
            self.st.owners.contains_key(g)
                || (g.task()).is_some_and(|t| self.core.is_some_and(|c| c.is_awaited(t)))
        });
        if !reachable {
            return None;
        }
        let mut starts = Vec::new();
        self.request_edges(req, self.st.newcomer_limit(req.priority), None, &mut starts);
        if starts.is_empty() {
            return None;
        }
        let path = self.search(&req.owner, starts, &goals)?;
        let mut edges: Vec<WaitEdge> = path.into_iter().map(|(e, _)| e).collect();
        // Close the cycle on whichever goal was reached (the owner, or the acquiring task).
        if let (Some(last), Some(first)) =
            (edges.last().map(|e| e.holder.clone()), edges.first_mut())
        {
            first.waiter = last;
        }
        Some(DeadlockCycle { edges })
    }

    /// Task `awaiter` starts awaiting task `target`: if that closes a cycle, returns it
    /// (starting with the await) and the queued wait on it to fail.
    pub fn await_cycle(
        &self,
        awaiter: TaskId,
        target: TaskId,
    ) -> Option<(DeadlockCycle, WaiterKey)> {
        let me = OwnerId::Task(awaiter);
        let starts = vec![(WaitOn::Await, OwnerId::Task(target), None)];
        let path = self.search(&me, starts, std::slice::from_ref(&me))?;
        let key = path.iter().find_map(|(_, k)| *k)?;
        let edges = path.into_iter().map(|(e, _)| e).collect();
        Some((DeadlockCycle { edges }, key))
    }
}
