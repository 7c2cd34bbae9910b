//! The order in which tasks are admitted and polled: [`Fairness`] and the queue behind it.
//!
//! # Implementation details
//!
//! One [`TaskQueue`] type serves both the admission queue (pending tasks) and the ready queue
//! (admitted tasks waiting to be polled):
//!
//! * `Fifo`: a `VecDeque`; items leave in the order they were pushed.
//! * `Priority`: a binary heap. **Aging** makes a waiting item's effective priority grow by one
//!   level per `aging` interval: `effective = priority + waited / aging`. Because every waiting
//!   item ages at the same rate, comparing two items at any moment `now` is the same as
//!   comparing `priority·aging − pushed_at` — a number that does not change while the item
//!   waits. So the heap key is fixed at push time and aging costs nothing per tick. Ties go
//!   to the item pushed first.
//! * `RoundRobin` (admission only): one FIFO per *group* (the submitting parent task; root
//!   tasks form one group), served in turn, so a task that submits thousands of children
//!   does not hold back another's. The ready queue under `RoundRobin` is FIFO: each poll is
//!   one quantum and a re-woken task goes to the back.
//!
//! Items can go stale (a pending task admitted by slot lending, a cancelled task); the queue
//! does not know, and its owner skips stale items when it pops them.

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

/// How admission and polling are ordered. Pool and lock waiters follow the same order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fairness {
    /// Submission order for admission; wake order for polling.
    #[default]
    Fifo,
    /// Highest priority first, FIFO among equals, with aging against starvation.
    Priority,
    /// Admission takes one task from each submitting parent in turn; polling is one quantum
    /// per ready task, then the back of the queue.
    RoundRobin,
}

/// One queued task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Item {
    /// Slab key of the task.
    pub key: usize,
    /// The task's submission sequence number (also tells stale slab keys apart).
    pub seq: u64,
    /// The task's (effective) priority.
    pub priority: i32,
    /// Round-robin group: the parent's sequence number, 0 for root tasks.
    pub group: u64,
    /// When it was pushed, in nanoseconds since the scheduler's epoch.
    pub since: u64,
}

#[derive(Debug, PartialEq, Eq)]
struct Ranked {
    rank: i128,
    order: u64,
    item: Item,
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank
            .cmp(&other.rank)
            .then_with(|| other.order.cmp(&self.order))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug)]
enum Order {
    Fifo(VecDeque<Item>),
    Priority {
        heap: BinaryHeap<Ranked>,
        aging: Option<u64>,
    },
    RoundRobin {
        turn: VecDeque<u64>,
        groups: HashMap<u64, VecDeque<Item>>,
    },
}

/// A queue of tasks in [`Fairness`] order.
#[derive(Debug)]
pub(crate) struct TaskQueue {
    order: Order,
    pushed: u64,
    len: usize,
}

impl TaskQueue {
    /// An empty queue. `aging` is the time per priority level gained (priority order only).
    pub fn new(fairness: Fairness, aging: Option<Duration>) -> Self {
        let order = match fairness {
            Fairness::Fifo => Order::Fifo(VecDeque::new()),
            Fairness::Priority => Order::Priority {
                heap: BinaryHeap::new(),
                aging: aging.map(|d| d.as_nanos().clamp(1, u64::MAX as u128) as u64),
            },
            Fairness::RoundRobin => Order::RoundRobin {
                turn: VecDeque::new(),
                groups: HashMap::new(),
            },
        };
        TaskQueue {
            order,
            pushed: 0,
            len: 0,
        }
    }

    /// Number of items, stale ones included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Adds an item.
    pub fn push(&mut self, item: Item) {
        self.len += 1;
        self.pushed += 1;
        match &mut self.order {
            Order::Fifo(q) => q.push_back(item),
            Order::Priority { heap, aging } => {
                let rank = match aging {
                    Some(per_level) => {
                        item.priority as i128 * *per_level as i128 - item.since as i128
                    }
                    None => item.priority as i128,
                };
                heap.push(Ranked {
                    rank,
                    order: self.pushed,
                    item,
                });
            }
            Order::RoundRobin { turn, groups } => {
                let q = groups.entry(item.group).or_default();
                if q.is_empty() {
                    turn.push_back(item.group);
                }
                q.push_back(item);
            }
        }
    }

    /// Removes and returns the next item in order.
    pub fn pop(&mut self) -> Option<Item> {
        let item = match &mut self.order {
            Order::Fifo(q) => q.pop_front(),
            Order::Priority { heap, .. } => heap.pop().map(|r| r.item),
            Order::RoundRobin { turn, groups } => {
                let group = turn.pop_front()?;
                let q = groups
                    .get_mut(&group)
                    .expect("a group is in the turn list only while it has items");
                let item = q.pop_front();
                if q.is_empty() {
                    groups.remove(&group);
                } else {
                    turn.push_back(group);
                }
                item
            }
        };
        if item.is_some() {
            self.len -= 1;
        }
        item
    }

    /// Empties the queue, returning its items in order (used when the fairness mode changes).
    pub fn drain(&mut self) -> Vec<Item> {
        let mut out = Vec::with_capacity(self.len);
        while let Some(item) = self.pop() {
            out.push(item);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(key: usize, priority: i32, group: u64, since: u64) -> Item {
        Item {
            key,
            seq: key as u64,
            priority,
            group,
            since,
        }
    }

    #[test]
    fn aging_lets_an_old_low_priority_item_overtake() {
        let mut q = TaskQueue::new(Fairness::Priority, Some(Duration::from_millis(100)));
        // Pushed at t=0 with priority 0, versus priority 5 pushed at t=600ms: after 600ms of
        // waiting the old item has effective priority 6 > 5.
        q.push(item(1, 0, 0, 0));
        q.push(item(2, 5, 0, 600_000_000));
        assert_eq!(q.pop().map(|i| i.key), Some(1));
        // Without aging the higher priority wins.
        let mut q = TaskQueue::new(Fairness::Priority, None);
        q.push(item(1, 0, 0, 0));
        q.push(item(2, 5, 0, 600_000_000));
        assert_eq!(q.pop().map(|i| i.key), Some(2));
    }

    #[test]
    fn round_robin_alternates_groups() {
        let mut q = TaskQueue::new(Fairness::RoundRobin, None);
        for k in 0..3 {
            q.push(item(k, 0, 1, 0));
        }
        for k in 10..12 {
            q.push(item(k, 0, 2, 0));
        }
        let order: Vec<usize> = q.drain().into_iter().map(|i| i.key).collect();
        assert_eq!(order, vec![0, 10, 1, 11, 2]);
        assert_eq!(q.len(), 0);
    }

    proptest! {
        #[test]
        fn fifo_pops_in_push_order(n in 0usize..200) {
            let mut q = TaskQueue::new(Fairness::Fifo, None);
            for k in 0..n { q.push(item(k, (k % 7) as i32, (k % 3) as u64, 0)); }
            let keys: Vec<usize> = q.drain().into_iter().map(|i| i.key).collect();
            prop_assert_eq!(keys, (0..n).collect::<Vec<_>>());
        }

        #[test]
        fn priority_pops_highest_first_fifo_among_equals(
            prios in proptest::collection::vec(-5i32..5, 0..200)
        ) {
            let mut q = TaskQueue::new(Fairness::Priority, None);
            for (k, p) in prios.iter().enumerate() { q.push(item(k, *p, 0, 0)); }
            let out = q.drain();
            prop_assert_eq!(out.len(), prios.len());
            for w in out.windows(2) {
                prop_assert!(w[0].priority > w[1].priority
                    || (w[0].priority == w[1].priority && w[0].key < w[1].key));
            }
        }

        #[test]
        fn priority_with_aging_orders_by_effective_priority(
            entries in proptest::collection::vec((-5i32..5, 0u64..10_000), 0..100)
        ) {
            // aging: one level per 1000ns; compare at a time after every push.
            let mut q = TaskQueue::new(Fairness::Priority, Some(Duration::from_nanos(1000)));
            for (k, (p, since)) in entries.iter().enumerate() { q.push(item(k, *p, 0, *since)); }
            let now = 20_000i128;
            let eff = |i: &Item| i.priority as i128 * 1000 + (now - i.since as i128);
            let out = q.drain();
            for w in out.windows(2) {
                prop_assert!(eff(&w[0]) > eff(&w[1])
                    || (eff(&w[0]) == eff(&w[1]) && w[0].key < w[1].key));
            }
        }

        #[test]
        fn round_robin_keeps_fifo_within_group_and_never_serves_a_group_twice_in_a_row_while_others_wait(
            groups in proptest::collection::vec(0u64..4, 0..200)
        ) {
            let mut q = TaskQueue::new(Fairness::RoundRobin, None);
            for (k, g) in groups.iter().enumerate() { q.push(item(k, 0, *g, 0)); }
            let mut remaining: HashMap<u64, usize> = HashMap::new();
            for g in &groups { *remaining.entry(*g).or_default() += 1; }
            let mut last_key: HashMap<u64, usize> = HashMap::new();
            let mut prev: Option<u64> = None;
            while let Some(i) = q.pop() {
                if let Some(p) = prev {
                    let others_waiting = remaining.iter().any(|(g, n)| *g != p && *n > 0);
                    prop_assert!(!(others_waiting && p == i.group));
                }
                if let Some(k) = last_key.insert(i.group, i.key) { prop_assert!(k < i.key); }
                *remaining.get_mut(&i.group).unwrap() -= 1;
                prev = Some(i.group);
            }
            prop_assert!(remaining.values().all(|n| *n == 0));
        }
    }
}
