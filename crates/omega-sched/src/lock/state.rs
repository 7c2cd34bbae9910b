//! The lock table: resources, holders, waiters, grants and leases, all behind the manager's
//! one mutex. Pure bookkeeping — nothing here blocks, awaits, wakes or calls user code;
//! wakers and events are collected in [`Effects`] for the caller to deliver after unlocking.
//!
//! The invariants are listed (and numbered) in the `lock` module docs; comments here cite
//! them as (I1)…(I9).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use slab::Slab;
use smallvec::SmallVec;
use tokio::time::Instant;

use crate::events::EventKind;
use crate::task::TaskId;

use super::error::LockError;
use super::stats::{Counters, LockStats, LockTotals, Retained, Totals};
use super::types::{LockMode, OwnerId};

/// Index of a waiting acquisition in [`State::waiters`].
pub(crate) type WaiterKey = usize;
/// A grant's fencing token, also its id.
pub(crate) type Fence = u64;
/// A waiter's place in every queue it is in: `(rank, arrival)`, smaller first.
pub(crate) type Order = (i64, u64);
/// What one request was granted: one entry per resource (inline for a single one).
pub(crate) type Grants = SmallVec<[Granted; 1]>;
/// A request's resources (inline for a single one).
pub(crate) type Items = SmallVec<[(Arc<str>, LockMode); 1]>;
/// The maps of the table: names come from scripts, so the hasher is seeded per process.
pub(crate) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One owner's hold on one resource, counted per mode (re-entrancy).
#[derive(Debug)]
pub(crate) struct Holder {
    pub owner: OwnerId,
    pub reads: u32,
    pub writes: u32,
}

impl Holder {
    pub fn mode(&self) -> LockMode {
        if self.writes > 0 {
            LockMode::Write
        } else {
            LockMode::Read
        }
    }
}

/// A resource in the table (I1: present iff it has holders or waiters).
#[derive(Debug, Default)]
pub(crate) struct Resource {
    pub holders: SmallVec<[Holder; 2]>,
    pub queue: BTreeMap<Order, WaiterKey>,
    pub counters: Counters,
}

impl Resource {
    fn holder_mut(&mut self, owner: &OwnerId) -> Option<&mut Holder> {
        self.holders.iter_mut().find(|h| &h.owner == owner)
    }

    /// The first holder other than `owner` whose mode conflicts with `mode`.
    pub fn conflicting(&self, owner: &OwnerId, mode: LockMode) -> Option<&Holder> {
        self.holders
            .iter()
            .find(|h| &h.owner != owner && !mode.compatible(h.mode()))
    }
}

/// How a request for one resource fits its current holders (the queue aside).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fit {
    /// The owner holds it already in a mode that covers the request, or is the sole holder
    /// asking for an upgrade: granted at once, queue or not.
    Reentrant,
    /// Compatible with every holder: granted if the queue allows (I5).
    Free,
    /// A holder conflicts.
    Blocked,
    /// A Read→Write upgrade while this many other owners hold it.
    UpgradeConflict(usize),
}

pub(crate) fn fit(res: Option<&Resource>, owner: &OwnerId, mode: LockMode) -> Fit {
    let Some(res) = res else {
        return Fit::Free;
    };
    if let Some(h) = res.holders.iter().find(|h| &h.owner == owner) {
        return if mode == LockMode::Read || h.writes > 0 || res.holders.len() == 1 {
            Fit::Reentrant
        } else {
            Fit::UpgradeConflict(res.holders.len() - 1)
        };
    }
    if res.conflicting(owner, mode).is_some() {
        Fit::Blocked
    } else {
        Fit::Free
    }
}

/// What a waiting acquisition has become.
#[derive(Debug)]
pub(crate) enum Outcome {
    Waiting,
    Granted(Grants),
    Failed(LockError),
}

/// One granted resource of a request.
#[derive(Clone, Debug)]
pub(crate) struct Granted {
    pub fence: Fence,
    pub resource: Arc<str>,
    pub mode: LockMode,
}

/// A request, normalised: items sorted by name, one per name (the stronger mode).
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub items: Items,
    pub owner: OwnerId,
    pub task: Option<TaskId>,
    pub priority: i32,
    pub ttl: Option<Duration>,
}

/// A waiting acquisition (single resource or batch).
#[derive(Debug)]
pub(crate) struct Waiter {
    pub req: Req,
    pub order: Order,
    pub since: Instant,
    pub waker: Option<Waker>,
    pub outcome: Outcome,
}

impl Waiter {
    pub fn mode_on(&self, r: &str) -> Option<LockMode> {
        self.req
            .items
            .iter()
            .find(|(n, _)| &**n == r)
            .map(|(_, m)| *m)
    }
}

/// One live grant (one guard).
#[derive(Debug)]
pub(crate) struct Grant {
    pub resource: Arc<str>,
    pub owner: OwnerId,
    pub mode: LockMode,
    pub acquired_at: Instant,
    pub expires: Option<Instant>,
}

/// What an owner holds and waits for (I3). A task also lists the waits it makes on behalf
/// of named owners, so the wait-for graph sees the task blocked.
#[derive(Debug, Default)]
pub(crate) struct OwnerEntry {
    pub grants: SmallVec<[Fence; 2]>,
    pub waits: SmallVec<[WaiterKey; 1]>,
}

/// Things to do once the lock is released.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub wakers: Vec<Waker>,
    pub events: Vec<(Option<TaskId>, EventKind)>,
    /// Collect events at all (someone ever subscribed): otherwise `event` does nothing.
    pub events_on: bool,
    /// Tasks whose inherited priority may have changed.
    pub boost: Vec<TaskId>,
}

/// The lock-protected state of a manager.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub resources: Map<Arc<str>, Resource>,
    pub waiters: Slab<Waiter>,
    pub grants: Map<Fence, Grant>,
    pub owners: Map<OwnerId, OwnerEntry>,
    /// Inherited priority last handed to the core, per task (I8).
    pub boosts: HashMap<TaskId, i32>,
    leases: BinaryHeap<Reverse<(Instant, Fence)>>,
    next_fence: Fence,
    arrivals: u64,
    pub by_priority: bool,
    /// Waiters still waiting (not granted or failed).
    pub waiting: usize,
    totals: Totals,
    retained: Retained,
}

/// Normalises a request's items: sorted by name, one entry per name with the stronger mode.
pub(crate) fn normalise(mut items: Items) -> Items {
    if items.len() > 1 {
        items.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        items.dedup_by(|later, first| later.0 == first.0);
    }
    items
}

impl Effects {
    /// Records an event to send after unlocking, if anyone listens.
    pub fn event(&mut self, e: (Option<TaskId>, EventKind)) {
        if self.events_on {
            self.events.push(e);
        }
    }
}

impl State {
    pub fn new(by_priority: bool) -> Self {
        State {
            next_fence: 1,
            by_priority,
            ..Default::default()
        }
    }

    fn rank(&self, priority: i32) -> i64 {
        if self.by_priority {
            -(priority as i64)
        } else {
            0
        }
    }

    /// The order a new request would take in every queue: after everyone of its rank.
    pub fn newcomer_limit(&self, priority: i32) -> Order {
        (self.rank(priority), u64::MAX)
    }

    /// True when every waiter ahead of `limit` in `r`'s queue lets a `mode` request pass:
    /// only readers pass readers (I5).
    pub fn queue_allows(&self, res: &Resource, r: &str, limit: Order, mode: LockMode) -> bool {
        res.queue.range(..limit).all(|(_, &k)| {
            mode == LockMode::Read && self.waiters[k].mode_on(r) == Some(LockMode::Read)
        })
    }

    /// Grants `req` at once if it can be (all or nothing), fails it if it never can, or says
    /// it must wait.
    pub fn decide(&mut self, req: &Req, now: Instant, fx: &mut Effects) -> Decision {
        let limit = self.newcomer_limit(req.priority);
        let mut wait = false;
        for (r, mode) in &req.items {
            let res = self.resources.get(&**r);
            match fit(res, &req.owner, *mode) {
                Fit::Reentrant => {}
                Fit::UpgradeConflict(others) => {
                    return Decision::Fail(LockError::UpgradeConflict {
                        resource: r.clone(),
                        owner: req.owner.clone(),
                        others,
                    })
                }
                Fit::Blocked => wait = true,
                Fit::Free => {
                    if let Some(res) = res {
                        if !self.queue_allows(res, r, limit, *mode) {
                            wait = true;
                        }
                    }
                }
            }
        }
        if wait {
            Decision::Wait
        } else {
            Decision::Granted(self.grant_all(req, now, fx))
        }
    }

    /// Why `req` cannot be granted now: the first blocked resource, a conflicting holder
    /// and the queue position it has (`order`) or would have (`None`: a newcomer).
    pub fn blocker(&self, req: &Req, order: Option<Order>) -> LockError {
        let limit = order.unwrap_or_else(|| self.newcomer_limit(req.priority));
        let mut first = None;
        for (r, mode) in &req.items {
            let Some(res) = self.resources.get(&**r) else {
                continue;
            };
            let holder = res.conflicting(&req.owner, *mode);
            let fits = matches!(fit(Some(res), &req.owner, *mode), Fit::Reentrant);
            if fits || (holder.is_none() && self.queue_allows(res, r, limit, *mode)) {
                continue;
            }
            first = Some((
                r.clone(),
                holder.map(|h| (h.owner.clone(), h.mode())),
                res.queue.range(..limit).count() + 1,
            ));
            break;
        }
        let (resource, holder, queue_position) = first.unwrap_or_else(|| {
            let r = req
                .items
                .first()
                .map(|i| i.0.clone())
                .unwrap_or_else(|| "".into());
            (r, None, 1)
        });
        LockError::Conflict {
            resource,
            holder,
            queue_position,
        }
    }

    fn entry(&mut self, r: &Arc<str>) -> &mut Resource {
        if !self.resources.contains_key(&**r) {
            let counters = self.retained.take(r).unwrap_or_default();
            self.resources.insert(
                r.clone(),
                Resource {
                    counters,
                    ..Default::default()
                },
            );
        }
        self.resources.get_mut(&**r).expect("inserted above")
    }

    fn grant_all(&mut self, req: &Req, now: Instant, fx: &mut Effects) -> Grants {
        req.items
            .iter()
            .map(|(r, mode)| self.grant_item(r, *mode, req, now, fx))
            .collect()
    }

    /// Adds one grant: a holder (or one more count for it), a fencing token (I6), a lease.
    fn grant_item(
        &mut self,
        r: &Arc<str>,
        mode: LockMode,
        req: &Req,
        now: Instant,
        fx: &mut Effects,
    ) -> Granted {
        let res = self.entry(r);
        match res.holder_mut(&req.owner) {
            Some(h) if mode == LockMode::Write => h.writes += 1,
            Some(h) => h.reads += 1,
            None => res.holders.push(Holder {
                owner: req.owner.clone(),
                reads: (mode == LockMode::Read) as u32,
                writes: (mode == LockMode::Write) as u32,
            }),
        }
        res.counters.granted(mode);
        match mode {
            LockMode::Read => self.totals.reads += 1,
            LockMode::Write => self.totals.writes += 1,
        }
        let fence = self.next_fence;
        self.next_fence += 1;
        let expires = req.ttl.map(|d| now + d);
        if let Some(at) = expires {
            self.leases.push(Reverse((at, fence)));
        }
        self.grants.insert(
            fence,
            Grant {
                resource: r.clone(),
                owner: req.owner.clone(),
                mode,
                acquired_at: now,
                expires,
            },
        );
        self.owners
            .entry(req.owner.clone())
            .or_default()
            .grants
            .push(fence);
        fx.event((
            req.owner.task().or(req.task),
            EventKind::LockAcquired {
                resource: r.clone(),
                mode,
                fence,
            },
        ));
        Granted {
            fence,
            resource: r.clone(),
            mode,
        }
    }

    /// Queues `req` in every queue of its resources (I4).
    pub fn enqueue(&mut self, req: Req, waker: &Waker, now: Instant) -> WaiterKey {
        self.arrivals += 1;
        let order = (self.rank(req.priority), self.arrivals);
        let items = req.items.clone();
        let owner = req.owner.clone();
        let task = req.task;
        let key = self.waiters.insert(Waiter {
            req,
            order,
            since: now,
            waker: Some(waker.clone()),
            outcome: Outcome::Waiting,
        });
        for (r, _) in &items {
            let res = self.entry(r);
            res.queue.insert(order, key);
            res.counters.contended += 1;
            res.counters.make_hot();
        }
        self.totals.contended += 1;
        self.waiting += 1;
        self.owners
            .entry(owner.clone())
            .or_default()
            .waits
            .push(key);
        if let Some(t) = task {
            let me = OwnerId::Task(t);
            if me != owner {
                self.owners.entry(me).or_default().waits.push(key);
            }
        }
        key
    }

    /// Takes a waiter out of its queues and its owners' wait lists (it stays in the slab).
    fn unqueue(&mut self, key: WaiterKey) {
        let w = &self.waiters[key];
        if !matches!(w.outcome, Outcome::Waiting) {
            return;
        }
        let order = w.order;
        let items: Vec<Arc<str>> = w.req.items.iter().map(|i| i.0.clone()).collect();
        let mut owners = vec![w.req.owner.clone()];
        if let Some(t) = w.req.task {
            owners.push(OwnerId::Task(t));
        }
        for r in &items {
            if let Some(res) = self.resources.get_mut(&**r) {
                res.queue.remove(&order);
            }
        }
        for o in owners {
            if let Some(e) = self.owners.get_mut(&o) {
                e.waits.retain(|k| *k != key);
                if e.grants.is_empty() && e.waits.is_empty() {
                    self.owners.remove(&o);
                }
            }
        }
        self.waiting -= 1;
    }

    /// Re-runs grants for resource `r` after a holder left or a waiter went away (I5, I7).
    pub fn regrant(&mut self, r: &Arc<str>, now: Instant, fx: &mut Effects) {
        let keys: Vec<WaiterKey> = match self.resources.get(&**r) {
            Some(res) if !res.queue.is_empty() => res.queue.values().copied().collect(),
            _ => return,
        };
        let mut reader_waiting = false;
        for k in keys {
            let Some(mode) = self.waiters[k].mode_on(r) else {
                continue;
            };
            if mode == LockMode::Write && reader_waiting {
                break;
            }
            if self.grantable(k, r) {
                self.grant_waiter(k, now, fx);
                if mode == LockMode::Write {
                    break;
                }
            } else if mode == LockMode::Write {
                break;
            } else {
                reader_waiting = true;
            }
        }
        if let Some(res) = self.resources.get(&**r) {
            for h in &res.holders {
                if let OwnerId::Task(t) = h.owner {
                    fx.boost.push(t);
                }
            }
        }
    }

    /// True when waiter `k` fits the holders of all its resources and, on resources other
    /// than `scanning` (whose queue the caller walks in order), nobody ahead blocks it.
    fn grantable(&self, k: WaiterKey, scanning: &str) -> bool {
        let w = &self.waiters[k];
        w.req.items.iter().all(|(q, mode)| {
            let res = self.resources.get(&**q);
            let fits = matches!(fit(res, &w.req.owner, *mode), Fit::Reentrant | Fit::Free);
            fits && (&**q == scanning
                || match res {
                    Some(res) => self.queue_allows(res, q, w.order, *mode),
                    None => true,
                })
        })
    }

    /// Grants every resource of waiter `k` at once (all or nothing: I4).
    fn grant_waiter(&mut self, k: WaiterKey, now: Instant, fx: &mut Effects) {
        self.unqueue(k);
        let req = self.waiters[k].req.clone();
        let waited = now.saturating_duration_since(self.waiters[k].since);
        let granted = self.grant_all(&req, now, fx);
        self.totals.wait.record(waited);
        for (r, _) in &req.items {
            if let Some(res) = self.resources.get_mut(&**r) {
                res.counters.record_wait(waited);
            }
        }
        let w = &mut self.waiters[k];
        w.outcome = Outcome::Granted(granted);
        if let Some(waker) = w.waker.take() {
            fx.wakers.push(waker);
        }
    }

    /// Fails a waiting waiter with `err` (deadlock found after it queued) and wakes it.
    pub fn fail_waiter(&mut self, k: WaiterKey, err: LockError, now: Instant, fx: &mut Effects) {
        self.unqueue(k);
        let items: Vec<Arc<str>> = self.waiters[k]
            .req
            .items
            .iter()
            .map(|i| i.0.clone())
            .collect();
        let w = &mut self.waiters[k];
        w.outcome = Outcome::Failed(err);
        if let Some(waker) = w.waker.take() {
            fx.wakers.push(waker);
        }
        for r in &items {
            self.regrant(r, now, fx);
            self.cleanup(r);
        }
    }

    /// Removes a waiter for good (its future is done or dropped). Returns its grants if it
    /// had been granted; the caller turns them into guards or releases them (I7).
    pub fn remove_waiter(&mut self, k: WaiterKey, now: Instant, fx: &mut Effects) -> Outcome {
        let was_waiting = matches!(self.waiters[k].outcome, Outcome::Waiting);
        self.unqueue(k);
        let w = self.waiters.remove(k);
        if was_waiting {
            for (r, _) in &w.req.items {
                self.regrant(r, now, fx);
                self.cleanup(r);
            }
        }
        w.outcome
    }

    /// Counts a timeout against the waiter's resources.
    pub fn count_timeout(&mut self, k: WaiterKey) {
        self.totals.timeouts += 1;
        for (r, _) in &self.waiters[k].req.items {
            if let Some(res) = self.resources.get_mut(&**r) {
                res.counters.timeouts += 1;
            }
        }
    }

    /// Counts a refused (deadlocking) wait.
    pub fn count_deadlock(&mut self, items: &[(Arc<str>, LockMode)]) {
        self.totals.deadlocks += 1;
        for (r, _) in items {
            if let Some(res) = self.resources.get_mut(&**r) {
                res.counters.deadlocks += 1;
            }
        }
    }

    /// Drops the entry of an idle resource (I1), keeping a hot one's figures aside.
    pub fn cleanup(&mut self, r: &str) {
        let idle = self
            .resources
            .get(r)
            .is_some_and(|res| res.holders.is_empty() && res.queue.is_empty());
        if idle {
            if let Some((name, res)) = self.resources.remove_entry(r) {
                self.retained.keep(name, res.counters);
            }
        }
    }

    /// Releases one grant. False if it was not held (released or swept before).
    pub fn release(&mut self, fence: Fence, now: Instant, fx: &mut Effects) -> bool {
        let Some(g) = self.grants.remove(&fence) else {
            return false;
        };
        let held = now.saturating_duration_since(g.acquired_at);
        self.totals.hold.record(held);
        if let Some(res) = self.resources.get_mut(&*g.resource) {
            if let Some(i) = res.holders.iter().position(|h| h.owner == g.owner) {
                let h = &mut res.holders[i];
                match g.mode {
                    LockMode::Read => h.reads -= 1,
                    LockMode::Write => h.writes -= 1,
                }
                if h.reads == 0 && h.writes == 0 {
                    res.holders.swap_remove(i);
                }
            }
            res.counters.record_hold(held);
        }
        if let Some(e) = self.owners.get_mut(&g.owner) {
            e.grants.retain(|f| *f != fence);
            if e.grants.is_empty() && e.waits.is_empty() {
                self.owners.remove(&g.owner);
            }
        }
        if let OwnerId::Task(t) = g.owner {
            if self.boosts.contains_key(&t) {
                fx.boost.push(t);
            }
        }
        fx.event((
            g.owner.task(),
            EventKind::LockReleased {
                resource: g.resource.clone(),
                mode: g.mode,
            },
        ));
        self.regrant(&g.resource, now, fx);
        self.cleanup(&g.resource);
        true
    }

    /// Releases everything `owner` holds. Returns how many grants that was.
    pub fn release_owner(&mut self, owner: &OwnerId, now: Instant, fx: &mut Effects) -> usize {
        let fences = match self.owners.get(owner) {
            Some(e) => e.grants.clone(),
            None => return 0,
        };
        fences
            .into_iter()
            .filter(|f| self.release(*f, now, fx))
            .count()
    }

    /// Frees every lease expired at `now` (I9). Returns how many.
    pub fn sweep(&mut self, now: Instant, fx: &mut Effects) -> usize {
        let mut n = 0;
        while let Some(&Reverse((at, fence))) = self.leases.peek() {
            if at > now {
                break;
            }
            self.leases.pop();
            if self
                .grants
                .get(&fence)
                .is_some_and(|g| g.expires == Some(at))
                && self.release(fence, now, fx)
            {
                self.totals.expired += 1;
                n += 1;
            }
        }
        n
    }

    /// Expired leases not swept yet.
    pub fn stale_count(&self, now: Instant) -> usize {
        self.leases
            .iter()
            .filter(|Reverse((at, f))| {
                *at <= now && self.grants.get(f).is_some_and(|g| g.expires == Some(*at))
            })
            .count()
    }

    /// The next lease expiry (dropping stale heap tops first).
    pub fn next_expiry(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, fence))) = self.leases.peek() {
            if self
                .grants
                .get(&fence)
                .is_some_and(|g| g.expires == Some(at))
            {
                return Some(at);
            }
            self.leases.pop();
        }
        None
    }

    /// Extends a lease to `now + ttl`.
    pub fn renew(&mut self, fence: Fence, ttl: Duration, now: Instant) -> Option<Instant> {
        let g = self.grants.get_mut(&fence)?;
        let at = now + ttl;
        g.expires = Some(at);
        self.leases.push(Reverse((at, fence)));
        Some(at)
    }

    /// The priority `owner` inherits from the waiters it blocks (I8): the highest among
    /// waiters queued on what it holds, each counted at its own inherited priority.
    fn inherited_for(&self, owner: &OwnerId) -> Option<i32> {
        let e = self.owners.get(owner)?;
        let mut best: Option<i32> = None;
        for f in &e.grants {
            let Some(res) = self
                .grants
                .get(f)
                .and_then(|g| self.resources.get(&*g.resource))
            else {
                continue;
            };
            for &k in res.queue.values() {
                let w = &self.waiters[k];
                let own = w.req.task.and_then(|t| self.boosts.get(&t).copied());
                let p = w.req.priority.max(own.unwrap_or(i32::MIN));
                best = Some(best.map_or(p, |b| b.max(p)));
            }
        }
        best
    }

    /// Recomputes inherited priorities from `candidates`, following wait chains (a boosted
    /// holder that itself waits passes the boost on). Returns the changes for the core.
    pub fn update_boosts(&mut self, candidates: Vec<TaskId>) -> Vec<(TaskId, Option<i32>)> {
        let mut work: VecDeque<TaskId> = candidates.into();
        let mut changes: HashMap<TaskId, Option<i32>> = HashMap::new();
        let mut steps = 0;
        while let Some(t) = work.pop_front() {
            steps += 1;
            if steps > 100_000 {
                break;
            }
            let me = OwnerId::Task(t);
            let new = self.inherited_for(&me);
            if new == self.boosts.get(&t).copied() {
                continue;
            }
            match new {
                Some(p) => self.boosts.insert(t, p),
                None => self.boosts.remove(&t),
            };
            changes.insert(t, new);
            if let Some(e) = self.owners.get(&me) {
                for &k in &e.waits {
                    for (r, _) in &self.waiters[k].req.items {
                        for h in self.resources.get(&**r).map_or(&[][..], |r| &r.holders) {
                            if let OwnerId::Task(x) = h.owner {
                                if x != t {
                                    work.push_back(x);
                                }
                            }
                        }
                    }
                }
            }
        }
        changes.into_iter().collect()
    }

    /// Totals, with the current table figures.
    pub fn totals(&self) -> LockTotals {
        LockTotals {
            acquisitions_read: self.totals.reads,
            acquisitions_write: self.totals.writes,
            contended: self.totals.contended,
            timeouts: self.totals.timeouts,
            deadlocks: self.totals.deadlocks,
            expired: self.totals.expired,
            resources: self.resources.len(),
            holders: self.resources.values().map(|r| r.holders.len()).sum(),
            waiters: self.waiting,
            wait_time: self.totals.wait.summary(),
            hold_time: self.totals.hold.summary(),
        }
    }

    /// Totals and per-resource figures.
    pub fn stats(&self) -> LockStats {
        let mut resources: Vec<_> = self
            .resources
            .iter()
            .map(|(n, r)| r.counters.snapshot(n, r.holders.len(), r.queue.len()))
            .collect();
        resources.extend(self.retained.iter().map(|(n, c)| c.snapshot(n, 0, 0)));
        resources.sort_by(|a, b| a.name.cmp(&b.name));
        LockStats {
            totals: self.totals(),
            resources,
        }
    }
}

/// What [`State::decide`] found.
#[derive(Debug)]
pub(crate) enum Decision {
    Granted(Grants),
    Wait,
    Fail(LockError),
}
