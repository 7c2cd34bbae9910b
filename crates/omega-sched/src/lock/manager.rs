//! [`LockManager`]: the public handle of the in-memory lock manager (SPEC §4).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::Waker;
use std::time::Duration;

use parking_lot::Mutex;
use smallvec::SmallVec;
use tokio::time::Instant;

use crate::events::EventBus;
use crate::task::TaskId;

use super::acquire::{Acquire, AcquireAll};
use super::error::LockError;
use super::graph::{Graph, TaskGraphHost};
use super::guard::LockGuard;
use super::state::{normalise, Decision, Effects, Grants, Outcome, Req, State, WaiterKey};
use super::stats::{LockStats, LockTotals};
use super::types::{LeaseId, LockMode, OwnerId};

/// One owner's hold on a resource, from [`LockManager::holders`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderInfo {
    /// The owner.
    pub owner: OwnerId,
    /// Its strongest mode.
    pub mode: LockMode,
    /// Its grants (guards) on the resource: re-entrant acquisitions count.
    pub count: u32,
}

pub(crate) struct LockInner {
    state: Mutex<State>,
    host: Weak<dyn TaskGraphHost>,
    events: Arc<EventBus>,
    /// Set at the first acquisition: from then on task awaits are recorded (see `handle.rs`).
    used: AtomicBool,
    /// Mirrors `State::waiting`.
    waiting: AtomicUsize,
    /// Mirrors `State::owners.len()`: zero lets a task end skip the table (I3).
    owners: AtomicUsize,
}

/// The lock manager of a scheduler: `sched.locks()`. Cheap to clone (a handle).
///
/// Resources are named by strings; owners are the acquiring task by default, or any
/// [`OwnerId`] given with `.owner(..)`. See the `lock` module docs (SPEC §4) for the rules:
/// grant order, re-entrancy, upgrades, batches, leases, fencing tokens, deadlock detection,
/// priority inheritance and release at task end.
///
/// ```
/// use std::time::Duration;
/// use omega_sched::{LockMode, Scheduler, TaskOptions};
///
/// let sched = Scheduler::new();
/// let s = sched.clone();
/// sched.block_on(async move {
///     let h = s.submit({
///         let s = s.clone();
///         async move {
///             let g = s.locks().acquire("plan:42", LockMode::Write)
///                 .timeout(Duration::from_secs(1))
///                 .await
///                 .unwrap();
///             assert_eq!(s.locks().holders("plan:42").len(), 1);
///             g.fence()
///         }
///     }, TaskOptions::new());
///     assert!(h.await.unwrap() > 0);
/// });
/// assert_eq!(sched.locks().resource_count(), 0);
/// assert_eq!(sched.lock_stats().totals.acquisitions_write, 1);
/// ```
#[derive(Clone)]
pub struct LockManager {
    pub(crate) inner: Arc<LockInner>,
}

impl std::fmt::Debug for LockManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockManager")
            .field("resources", &self.resource_count())
            .finish()
    }
}

/// How the first poll of an acquisition went.
pub(crate) enum Start {
    Granted(Grants),
    Failed(LockError),
    Waiting(WaiterKey),
}

/// How a waiting acquisition stands.
pub(crate) enum Check {
    Granted(Grants),
    Failed(LockError),
    Waiting { next_expiry: Option<Instant> },
}

impl LockManager {
    pub(crate) fn new(
        host: Weak<dyn TaskGraphHost>,
        events: Arc<EventBus>,
        by_priority: bool,
    ) -> Self {
        LockManager {
            inner: Arc::new(LockInner {
                state: Mutex::new(State::new(by_priority)),
                host,
                events,
                used: AtomicBool::new(false),
                waiting: AtomicUsize::new(0),
                owners: AtomicUsize::new(0),
            }),
        }
    }

    pub(crate) fn set_priority_order(&self, on: bool) {
        self.inner.state.lock().by_priority = on;
    }

    /// Delivers what a locked section collected: mirrors, then events and wakers, with no
    /// lock held (I2); then re-syncs inherited priorities (graph → state order).
    fn flush(&self, st: parking_lot::MutexGuard<'_, State>, fx: Effects) {
        self.mirror(&st);
        drop(st);
        self.deliver(fx);
    }

    fn mirror(&self, st: &State) {
        self.inner.waiting.store(st.waiting, Ordering::Relaxed);
        self.inner.owners.store(st.owners.len(), Ordering::Relaxed);
    }

    /// Events, boosts and wakers, with no lock held.
    fn deliver(&self, mut fx: Effects) {
        for (task, kind) in fx.events.drain(..) {
            self.inner.events.send(task, kind);
        }
        let boost = std::mem::take(&mut fx.boost);
        if !boost.is_empty() {
            self.sync_boosts(boost);
        }
        for w in fx.wakers {
            w.wake();
        }
    }

    /// Recomputes inherited priorities of `tasks` and hands changes to the task graph, with
    /// the graph locked before the state lock.
    fn sync_boosts(&self, tasks: Vec<TaskId>) {
        match self.inner.host.upgrade() {
            Some(host) => {
                let now = Instant::now();
                let mut tasks = Some(tasks);
                host.with_graph(&mut |g| {
                    let mut st = self.inner.state.lock();
                    for (t, p) in st.update_boosts(tasks.take().unwrap_or_default()) {
                        g.set_inherited_priority(t, p, now);
                    }
                });
            }
            None => {
                self.inner.state.lock().update_boosts(tasks);
            }
        }
    }

    /// Empty effects, collecting events only if anyone ever subscribed.
    fn effects(&self) -> Effects {
        Effects {
            events_on: self.inner.events.maybe_active(),
            ..Effects::default()
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, State> {
        self.inner.state.lock()
    }

    /// Waits for `name` in `mode`. The returned [`Acquire`] is a builder and a future:
    /// `.timeout(d)`, `.owner(o)`, `.ttl(d)`, then `.await` (or `.try_now()`).
    pub fn acquire(&self, name: &str, mode: LockMode) -> Acquire {
        Acquire::new(self.clone(), smallvec::smallvec![(name.into(), mode)])
    }

    /// Waits for every `(name, mode)` at once: all or nothing. Nothing is held while
    /// waiting; all are granted in one step. Batches cannot deadlock with each other.
    /// Repeated names count once, at the stronger mode.
    pub fn acquire_all(&self, items: &[(&str, LockMode)]) -> AcquireAll {
        AcquireAll::new(
            self.clone(),
            items.iter().map(|(n, m)| (Arc::from(*n), *m)).collect(),
        )
    }

    /// Takes `name` now for the current task, or fails with [`LockError::Conflict`]
    /// (naming a holder and the queue position the request would have).
    pub fn try_acquire(&self, name: &str, mode: LockMode) -> Result<LockGuard, LockError> {
        self.acquire(name, mode).try_now()
    }

    pub(crate) fn guards(&self, owner: &OwnerId, granted: Grants) -> SmallVec<[LockGuard; 1]> {
        granted
            .into_iter()
            .map(|g| LockGuard::new(self.clone(), g, owner.clone()))
            .collect()
    }

    /// Grants now or fails with the conflict; never queues.
    pub(crate) fn try_grant(&self, mut req: Req) -> Result<Grants, LockError> {
        req.items = normalise(std::mem::take(&mut req.items));
        self.inner.used.store(true, Ordering::Relaxed);
        let now = Instant::now();
        let mut fx = self.effects();
        let mut st = self.lock();
        st.sweep(now, &mut fx);
        let r = match st.decide(&req, now, &mut fx) {
            Decision::Granted(g) => Ok(g),
            Decision::Fail(e) => Err(e),
            Decision::Wait => Err(st.blocker(&req, None)),
        };
        self.flush(st, fx);
        r
    }

    /// First poll of an acquisition: grant, fail, or queue (after the deadlock check).
    pub(crate) fn start(&self, mut req: Req, waker: &Waker) -> Start {
        req.items = normalise(std::mem::take(&mut req.items));
        self.inner.used.store(true, Ordering::Relaxed);
        let now = Instant::now();
        let mut fx = self.effects();
        // Fast path: the state lock alone.
        {
            let mut st = self.lock();
            st.sweep(now, &mut fx);
            let out = match st.decide(&req, now, &mut fx) {
                Decision::Granted(g) => Some(Start::Granted(g)),
                Decision::Fail(e) => Some(Start::Failed(e)),
                Decision::Wait => None,
            };
            if let Some(out) = out {
                self.flush(st, fx);
                return out;
            }
        }
        // Slow path: graph, then state (lock order), so the deadlock check sees task
        // awaits and the queueing is atomic with it.
        let mut req = Some(req);
        let mut out = None;
        let mut decide = |graph: Option<&mut dyn super::graph::TaskGraph>| {
            let Some(req) = req.take() else { return };
            let mut st = self.lock();
            let o = match st.decide(&req, now, &mut fx) {
                Decision::Granted(g) => Start::Granted(g),
                Decision::Fail(e) => Start::Failed(e),
                Decision::Wait => {
                    let cycle = Graph {
                        st: &st,
                        core: graph.as_deref(),
                    }
                    .would_deadlock(&req);
                    match cycle {
                        Some(cycle) => {
                            st.count_deadlock(&req.items);
                            Start::Failed(LockError::Deadlock { cycle })
                        }
                        None => {
                            let key = st.enqueue(req, waker, now);
                            // Priority inheritance: the new waiter may raise its blockers (I8).
                            let mut cands = std::mem::take(&mut fx.boost);
                            for (r, _) in &st.waiters[key].req.items.clone() {
                                if let Some(res) = st.resources.get(&**r) {
                                    cands.extend(res.holders.iter().filter_map(|h| h.owner.task()));
                                }
                            }
                            let changes = st.update_boosts(cands);
                            if let Some(g) = graph {
                                for (t, p) in changes {
                                    g.set_inherited_priority(t, p, now);
                                }
                            }
                            Start::Waiting(key)
                        }
                    }
                }
            };
            self.mirror(&st);
            out = Some(o);
        };
        match self.inner.host.upgrade() {
            Some(host) => host.with_graph(&mut |g| decide(Some(g))),
            None => decide(None),
        }
        self.deliver(fx);
        out.expect("the decision ran")
    }

    /// A later poll of a waiting acquisition.
    pub(crate) fn check(&self, key: WaiterKey, waker: &Waker) -> Check {
        let mut st = self.lock();
        let w = &mut st.waiters[key];
        match &w.outcome {
            Outcome::Waiting => {
                match &w.waker {
                    Some(old) if old.will_wake(waker) => {}
                    _ => w.waker = Some(waker.clone()),
                }
                Check::Waiting {
                    next_expiry: st.next_expiry(),
                }
            }
            _ => {
                let mut fx = self.effects();
                let out = match st.remove_waiter(key, Instant::now(), &mut fx) {
                    Outcome::Granted(g) => Check::Granted(g),
                    Outcome::Failed(e) => Check::Failed(e),
                    Outcome::Waiting => unreachable!("checked above"),
                };
                self.flush(st, fx);
                out
            }
        }
    }

    /// The wait of `key` timed out: leave the queue and describe the wait, unless the grant
    /// arrived meanwhile (then it is returned).
    pub(crate) fn time_out(&self, key: WaiterKey, after: Duration) -> Result<Grants, LockError> {
        let now = Instant::now();
        let mut fx = self.effects();
        let mut st = self.lock();
        let r = if matches!(st.waiters[key].outcome, Outcome::Waiting) {
            st.count_timeout(key);
            let w = &st.waiters[key];
            let err = match st.blocker(&w.req, Some(w.order)) {
                LockError::Conflict {
                    resource,
                    holder,
                    queue_position,
                } => LockError::Timeout {
                    resource,
                    after,
                    holder,
                    queue_position,
                },
                other => other,
            };
            st.remove_waiter(key, now, &mut fx);
            Err(err)
        } else {
            match st.remove_waiter(key, now, &mut fx) {
                Outcome::Granted(g) => Ok(g),
                Outcome::Failed(e) => Err(e),
                Outcome::Waiting => unreachable!("checked above"),
            }
        };
        self.flush(st, fx);
        r
    }

    /// The acquisition `key` is abandoned (dropped or cancelled): leave the queue; a grant
    /// that arrived meanwhile is released, which hands it on (I7).
    pub(crate) fn leave(&self, key: WaiterKey) {
        let now = Instant::now();
        let mut fx = self.effects();
        let mut st = self.lock();
        if let Outcome::Granted(g) = st.remove_waiter(key, now, &mut fx) {
            for g in g {
                st.release(g.fence, now, &mut fx);
            }
        }
        self.flush(st, fx);
    }

    /// Releases one grant (a guard's drop). False if it was not held any more.
    pub(crate) fn release_fence(&self, fence: u64) -> bool {
        let mut fx = self.effects();
        let mut st = self.lock();
        let r = st.release(fence, Instant::now(), &mut fx);
        self.flush(st, fx);
        r
    }

    /// Releases the grant `lease`. False if it was not held (released or swept before).
    pub fn release_lease(&self, lease: LeaseId) -> bool {
        self.release_fence(lease.0)
    }

    /// Releases a guard explicitly (the same as dropping it). False if its lease had
    /// expired and been swept, or `release_all` freed it.
    pub fn release(&self, guard: LockGuard) -> bool {
        guard.release()
    }

    /// Releases everything `owner` holds. Returns how many grants were released. Waiting
    /// acquisitions are not affected.
    pub fn release_all(&self, owner: &OwnerId) -> usize {
        let mut fx = self.effects();
        let mut st = self.lock();
        let n = st.release_owner(owner, Instant::now(), &mut fx);
        self.flush(st, fx);
        n
    }

    /// Hook of `Driver::end`: a task ended, however it ended; what it still holds goes.
    pub(crate) fn task_ended(&self, task: TaskId) {
        if self.inner.owners.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut fx = self.effects();
        let mut st = self.lock();
        let me = OwnerId::Task(task);
        st.release_owner(&me, Instant::now(), &mut fx);
        st.boosts.remove(&task);
        self.flush(st, fx);
    }

    /// Extends the lease `lease` (a guard or its [`LeaseId`]) to `ttl` from now. Returns the
    /// new expiry. Fails with [`LockError::NotHeld`] if it already expired (it is swept
    /// first) or was released. A grant taken without `.ttl` gets one.
    pub fn renew(&self, lease: impl Into<LeaseId>, ttl: Duration) -> Result<Instant, LockError> {
        let lease = lease.into();
        let now = Instant::now();
        let mut fx = self.effects();
        let mut st = self.lock();
        st.sweep(now, &mut fx);
        let r = st
            .renew(lease.0, ttl, now)
            .ok_or(LockError::NotHeld { lease });
        self.flush(st, fx);
        r
    }

    /// Frees every lease whose TTL has run out and grants the waiters behind them.
    /// Returns how many leases were freed. Waiting acquisitions also sweep when a lease
    /// in the way expires, and every acquisition sweeps first.
    pub fn sweep(&self) -> usize {
        let mut fx = self.effects();
        let mut st = self.lock();
        let n = st.sweep(Instant::now(), &mut fx);
        self.flush(st, fx);
        n
    }

    /// Leases expired but not swept yet.
    pub fn stale_count(&self) -> usize {
        self.lock().stale_count(Instant::now())
    }

    /// The expiry of a lease, if it has one and is held.
    pub fn expires_at(&self, lease: impl Into<LeaseId>) -> Option<Instant> {
        self.lock()
            .grants
            .get(&lease.into().0)
            .and_then(|g| g.expires)
    }

    /// True while the lease is held (not released, not swept).
    pub fn is_held(&self, lease: impl Into<LeaseId>) -> bool {
        self.lock().grants.contains_key(&lease.into().0)
    }

    /// Who holds `name` now.
    pub fn holders(&self, name: &str) -> Vec<HolderInfo> {
        self.lock()
            .resources
            .get(name)
            .map(|r| {
                r.holders
                    .iter()
                    .map(|h| HolderInfo {
                        owner: h.owner.clone(),
                        mode: h.mode(),
                        count: h.reads + h.writes,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Acquisitions waiting for `name` now.
    pub fn waiters(&self, name: &str) -> usize {
        self.lock().resources.get(name).map_or(0, |r| r.queue.len())
    }

    /// Resources in the table (held or waited for). Idle resources leave the table, so
    /// this does not grow with the number of distinct names ever used.
    pub fn resource_count(&self) -> usize {
        self.lock().resources.len()
    }

    /// Totals and per-resource figures.
    pub fn stats(&self) -> LockStats {
        self.lock().stats()
    }

    /// Totals only (what [`Stats::locks`](crate::Stats::locks) carries).
    pub fn totals(&self) -> LockTotals {
        self.lock().totals()
    }

    /// True once any acquisition was made: task awaits are recorded from then on.
    pub(crate) fn tracks_awaits(&self) -> bool {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// Hook of a new task await (`TaskHandle::poll`, `Scheduler::track_await`): task
    /// `awaiter` starts awaiting `target`. If that closes a cycle with a queued lock wait,
    /// the wait fails with [`LockError::Deadlock`].
    pub(crate) fn await_started(&self, awaiter: TaskId, target: TaskId) {
        if self.inner.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        let Some(host) = self.inner.host.upgrade() else {
            return;
        };
        let mut fx = self.effects();
        host.with_graph(&mut |g| {
            let mut st = self.lock();
            let found = Graph {
                st: &st,
                core: Some(&*g),
            }
            .await_cycle(awaiter, target);
            let Some((cycle, key)) = found else {
                return;
            };
            let items = st.waiters[key].req.items.clone();
            st.count_deadlock(&items);
            st.fail_waiter(key, LockError::Deadlock { cycle }, Instant::now(), &mut fx);
            self.mirror(&st);
        });
        self.deliver(fx);
    }
}
