//! The cycle a refused wait would have closed, rebuilt from the wait-for edges the database
//! found (`_deadlock` in the migration): a breadth-first search from the request's own
//! edges to its owner (or acting task), as the in-memory manager's `graph.rs` does, so the
//! error reads the same whichever store refused.

use std::collections::{HashMap, VecDeque};

use omega_sched::{DeadlockCycle, OwnerId, WaitEdge, WaitOn};
use serde_json::Value;

/// One edge as the database reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Edge {
    waiter: String,
    queue: bool,
    resource: String,
    holder: String,
}

fn edges(v: Option<&Value>) -> Vec<Edge> {
    let Some(Value::Array(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|e| {
            Some(Edge {
                waiter: e.get("waiter")?.as_str()?.to_string(),
                queue: e.get("kind")?.as_str()? == "queue",
                resource: e.get("resource")?.as_str()?.to_string(),
                holder: e.get("holder")?.as_str()?.to_string(),
            })
        })
        .collect()
}

/// The shortest cycle from `me` (or `task`) back to one of them, starting with the refused
/// wait. `decode` turns stored owners into [`OwnerId`]s.
pub(crate) fn cycle(
    graph: &Value,
    me: &str,
    task: Option<&str>,
    decode: impl Fn(&str) -> OwnerId,
) -> DeadlockCycle {
    let start = edges(graph.get("start"));
    let rest = edges(graph.get("edges"));
    let goals: Vec<&str> = std::iter::once(me).chain(task).collect();
    let mut out: HashMap<&str, Vec<&Edge>> = HashMap::new();
    for e in &rest {
        out.entry(e.waiter.as_str()).or_default().push(e);
    }
    // parent[node] = the edge that reached it.
    let mut parent: HashMap<&str, &Edge> = HashMap::new();
    let mut queue = VecDeque::new();
    let mut found = None;
    for e in &start {
        if !parent.contains_key(e.holder.as_str()) {
            parent.insert(&e.holder, e);
            queue.push_back(e.holder.as_str());
        }
    }
    while let Some(node) = queue.pop_front() {
        if goals.contains(&node) {
            found = Some(node);
            break;
        }
        for e in out.get(node).into_iter().flatten() {
            if !parent.contains_key(e.holder.as_str()) && e.holder != me {
                parent.insert(&e.holder, e);
                queue.push_back(&e.holder);
            } else if goals.contains(&e.holder.as_str()) && !parent.contains_key(e.holder.as_str())
            {
                parent.insert(&e.holder, e);
                queue.push_front(&e.holder);
            }
        }
    }
    let mut path: Vec<&Edge> = Vec::new();
    if let Some(mut node) = found {
        while let Some(e) = parent.get(node) {
            path.push(e);
            if e.waiter == me || path.len() > parent.len() {
                break;
            }
            node = &e.waiter;
        }
        path.reverse();
    }
    if path.is_empty() {
        // The database saw a cycle the search cannot retrace (it should not happen): report
        // the refused wait alone rather than nothing.
        path.extend(start.first());
    }
    let mut edges: Vec<WaitEdge> = path
        .into_iter()
        .map(|e| WaitEdge {
            waiter: decode(&e.waiter),
            on: if e.queue {
                WaitOn::Queue(e.resource.as_str().into())
            } else {
                WaitOn::Lock(e.resource.as_str().into())
            },
            holder: decode(&e.holder),
        })
        .collect();
    // Close the cycle on whichever goal was reached (the owner, or its acting task).
    if let (Some(last), Some(first)) = (edges.last().map(|e| e.holder.clone()), edges.first_mut()) {
        first.waiter = last;
    }
    DeadlockCycle { edges }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rebuilds_the_shortest_cycle_from_the_request() {
        let graph = json!({
            "start": [{"waiter": "a", "kind": "lock", "resource": "x", "holder": "b"}],
            "edges": [
                {"waiter": "b", "kind": "queue", "resource": "y", "holder": "c"},
                {"waiter": "b", "kind": "lock", "resource": "z", "holder": "a"},
                {"waiter": "c", "kind": "lock", "resource": "w", "holder": "a"}
            ]
        });
        let c = cycle(&graph, "a", None, |s| OwnerId::named(s));
        assert_eq!(
            c.to_string(),
            "owner \"a\" waits for \"x\" held by owner \"b\", which waits for \"z\" held by owner \"a\""
        );
        assert_eq!(c.owners(), vec![OwnerId::named("a"), OwnerId::named("b")]);
    }

    #[test]
    fn a_cycle_through_the_acting_task_closes_on_it() {
        let graph = json!({
            "start": [{"waiter": "agent", "kind": "queue", "resource": "x", "holder": "b"}],
            "edges": [{"waiter": "b", "kind": "lock", "resource": "y", "holder": "task:t"}]
        });
        let c = cycle(&graph, "agent", Some("task:t"), |s| OwnerId::named(s));
        assert_eq!(c.edges.len(), 2);
        assert_eq!(c.edges[0].waiter, OwnerId::named("task:t"));
        assert_eq!(c.edges[0].on, WaitOn::Queue("x".into()));
    }
}
