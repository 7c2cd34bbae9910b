//! Pools: named counting limits with RAII permits (SPEC §3.5). The built-in pool `"llm"`
//! bounds LLM calls in flight.
//!
//! # Implementation details
//!
//! A pool is a counter (`in_use` of `capacity`) and an ordered set of waiters, all under one
//! small mutex per pool. Waiters are ordered by `(rank, arrival)`: rank is 0 for everyone
//! (FIFO), or the negated task priority when the scheduler's fairness is
//! [`Fairness::Priority`](crate::Fairness::Priority).
//!
//! # Invariants
//!
//! 1. `in_use` = permits alive + waiters marked `granted` whose `Acquire` has not yet
//!    turned the grant into a permit.
//! 2. A new acquire takes a permit directly only if nobody waits (no barging).
//! 3. Whenever `in_use` drops or capacity grows, waiters are granted in order while
//!    `in_use < capacity`. A granted waiter whose `Acquire` is dropped (cancelled) gives its
//!    grant back, which grants the next one.
//! 4. Wakers are woken after the pool lock is released.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use slab::Slab;
use tokio::time::Instant;

use crate::context::{cancel_poll, current_priority, current_task};
use crate::events::{EventBus, EventKind};
use crate::stats::{Histogram, PoolStats};
use crate::token::Cancelled;

#[derive(Debug)]
struct Waiter {
    waker: Option<Waker>,
    granted: bool,
    since: Instant,
    order: (i64, u64),
}

#[derive(Debug)]
struct PoolState {
    capacity: usize,
    in_use: usize,
    waiters: Slab<Waiter>,
    order: BTreeMap<(i64, u64), usize>,
    arrivals: u64,
    total: u64,
    peak: usize,
    wait: Histogram,
}

#[derive(Debug)]
struct PoolInner {
    name: Arc<str>,
    state: Mutex<PoolState>,
    by_priority: AtomicBool,
    events: Arc<EventBus>,
}

/// A named counting limit. Cheap to clone (a handle).
///
/// ```
/// use omega_sched::Scheduler;
/// let sched = Scheduler::builder().pool("db", 2).build();
/// let db = sched.pool("db").unwrap();
/// let a = db.try_acquire().unwrap();
/// let _b = db.try_acquire().unwrap();
/// assert!(db.try_acquire().is_none());
/// drop(a);
/// assert_eq!(db.in_use(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

impl PoolState {
    /// Counts one permit taken after waiting `waited`.
    fn take_one(&mut self, waited: std::time::Duration) {
        self.in_use += 1;
        self.total += 1;
        self.peak = self.peak.max(self.in_use);
        self.wait.record(waited);
    }

    /// Takes a permit at once if one is free and nobody waits (invariant 2: no barging).
    fn try_take(&mut self) -> bool {
        let free = self.order.is_empty() && self.in_use < self.capacity;
        if free {
            self.take_one(std::time::Duration::ZERO);
        }
        free
    }

    fn grant(&mut self, now: Instant, wake: &mut Vec<Waker>) {
        while self.in_use < self.capacity {
            let Some((_, key)) = self.order.pop_first() else {
                return;
            };
            let since = self.waiters[key].since;
            self.take_one(now.saturating_duration_since(since));
            let w = &mut self.waiters[key];
            w.granted = true;
            if let Some(waker) = w.waker.take() {
                wake.push(waker);
            }
        }
    }
}

fn wake_all(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake();
    }
}

impl Pool {
    pub(crate) fn new(
        name: &str,
        capacity: usize,
        by_priority: bool,
        events: Arc<EventBus>,
    ) -> Self {
        Pool {
            inner: Arc::new(PoolInner {
                name: name.into(),
                state: Mutex::new(PoolState {
                    capacity,
                    in_use: 0,
                    waiters: Slab::new(),
                    order: BTreeMap::new(),
                    arrivals: 0,
                    total: 0,
                    peak: 0,
                    wait: Histogram::default(),
                }),
                by_priority: AtomicBool::new(by_priority),
                events,
            }),
        }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Permits in all (`usize::MAX` when unbounded).
    pub fn capacity(&self) -> usize {
        self.inner.state.lock().capacity
    }

    /// Permits held now.
    pub fn in_use(&self) -> usize {
        self.inner.state.lock().in_use
    }

    /// Acquires waiting now.
    pub fn waiting(&self) -> usize {
        self.inner.state.lock().order.len()
    }

    /// Changes the capacity. Growing grants waiters at once; shrinking never takes permits
    /// back, it only delays new grants.
    pub fn set_capacity(&self, capacity: usize) {
        let mut wake = Vec::new();
        {
            let mut st = self.inner.state.lock();
            st.capacity = capacity;
            st.grant(Instant::now(), &mut wake);
        }
        wake_all(wake);
    }

    pub(crate) fn set_priority_order(&self, on: bool) {
        self.inner.by_priority.store(on, Ordering::Relaxed);
    }

    /// Waits for a permit. Waiters are served in arrival order, or by task priority under
    /// `Fairness::Priority`.
    ///
    /// # Cancellation safety
    /// Dropping the future (or the task being cancelled) leaves the queue; a grant that
    /// arrived meanwhile passes on to the next waiter. In a cancelled cooperative task the
    /// future returns `Err(Cancelled)`.
    pub fn acquire(&self) -> Acquire {
        Acquire {
            pool: self.clone(),
            waiter: None,
        }
    }

    /// A permit now if one is free and nobody waits, else `None`.
    pub fn try_acquire(&self) -> Option<PoolPermit> {
        let taken = self.inner.state.lock().try_take();
        taken.then(|| self.permit())
    }

    fn permit(&self) -> PoolPermit {
        self.inner.events.send(
            current_task(),
            EventKind::PoolAcquired {
                pool: self.inner.name.clone(),
            },
        );
        PoolPermit { pool: self.clone() }
    }

    /// This pool's figures.
    pub fn stats(&self) -> PoolStats {
        let st = self.inner.state.lock();
        PoolStats {
            name: self.inner.name.to_string(),
            capacity: st.capacity,
            in_use: st.in_use,
            waiting: st.order.len(),
            total_acquisitions: st.total,
            peak_in_use: st.peak,
            wait_time: st.wait.summary(),
        }
    }

    fn release_one(&self) {
        let mut wake = Vec::new();
        {
            let mut st = self.inner.state.lock();
            st.in_use -= 1;
            st.grant(Instant::now(), &mut wake);
        }
        wake_all(wake);
    }
}

/// The future of [`Pool::acquire`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire {
    pool: Pool,
    waiter: Option<usize>,
}

impl Acquire {
    /// Leaves the queue; a grant received meanwhile is handed on.
    fn leave(&mut self) {
        let Some(key) = self.waiter.take() else {
            return;
        };
        let mut wake = Vec::new();
        {
            let mut st = self.pool.inner.state.lock();
            let w = st.waiters.remove(key);
            if w.granted {
                st.in_use -= 1;
                st.grant(Instant::now(), &mut wake);
            } else {
                st.order.remove(&w.order);
            }
        }
        wake_all(wake);
    }
}

impl Future for Acquire {
    type Output = Result<PoolPermit, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(p) = cancel_poll() {
            if p.is_ready() {
                self.leave();
            }
            return p;
        }
        let inner = self.pool.inner.clone();
        let mut st = inner.state.lock();
        if let Some(key) = self.waiter {
            if st.waiters[key].granted {
                st.waiters.remove(key);
                drop(st);
                self.waiter = None;
                return Poll::Ready(Ok(self.pool.permit()));
            }
            let w = &mut st.waiters[key];
            match &w.waker {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => w.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        if st.try_take() {
            drop(st);
            return Poll::Ready(Ok(self.pool.permit()));
        }
        let rank = if inner.by_priority.load(Ordering::Relaxed) {
            -(current_priority() as i64)
        } else {
            0
        };
        st.arrivals += 1;
        let order = (rank, st.arrivals);
        let key = st.waiters.insert(Waiter {
            waker: Some(cx.waker().clone()),
            granted: false,
            since: Instant::now(),
            order,
        });
        st.order.insert(order, key);
        self.waiter = Some(key);
        Poll::Pending
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        self.leave();
    }
}

/// One permit of a [`Pool`]; released when dropped (including when its task ends or is
/// cancelled).
#[must_use = "the permit is released as soon as it is dropped"]
#[derive(Debug)]
pub struct PoolPermit {
    pool: Pool,
}

impl PoolPermit {
    /// The pool this permit belongs to.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

impl Drop for PoolPermit {
    fn drop(&mut self) {
        self.pool.release_one();
        self.pool.inner.events.send(
            current_task(),
            EventKind::PoolReleased {
                pool: self.pool.inner.name.clone(),
            },
        );
    }
}
