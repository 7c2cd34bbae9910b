//! The executor: the state every handle shares, the inbox wakers feed, and the driver turn
//! that polls tasks.
//!
//! # Implementation details
//!
//! Each task is one `async-task` cell: header, schedule function, and the task's
//! [`Body`](crate::body::Body) (its future, then its output) in a single allocation. The
//! cell's metadata is a [`TaskTag`] (key, seq, and the home thread of a `!Send` task).
//!
//! * Waking a task hands its [`Runnable`] to the schedule function, which pushes it on the
//!   [`Inbox`] (a small mutex of its own) and wakes the driver. No waker ever takes the core
//!   lock: the driver moves runnables from the inbox into the core (`Core::absorb`) at the
//!   start of a turn and between polls.
//! * The driver ([`Driver`], inside `Scheduler::run_until` or the dedicated driver thread)
//!   is an ordinary future in a tokio runtime. One turn: read the clock once, fire due
//!   timers, then pop and run ready tasks in the ready queue's order until none is left,
//!   [`MAX_POLLS`] ran, or the turn's time budget (`turn_budget`, default 1 ms, looked at
//!   every 4 polls) is spent;
//!   then yield to tokio so its timers and I/O run between turns.
//! * Every core lock goes through [`CoreGuard`], which delivers what the locked section
//!   collected (events, wakes, token cancels, entries to drop) after unlocking.
//!
//! # Invariants
//!
//! 1. Only a driver runs a runnable, and only on the runnable's home thread if it has one
//!    (a `!Send` body is polled and dropped only on the thread that created it). A driver
//!    on another thread parks such runnables until a driver runs on their home thread.
//! 2. At most one driver drives a scheduler at a time (`claim`); a second `run_until`
//!    polls its own future only and takes over when the first stops.
//! 3. No lock is held while a task is polled, a waker is woken, an event is sent, a token
//!    is cancelled (callbacks) or anything of a task is dropped.
//! 4. A task's body records its ending in the core (and releases its locks) before its
//!    output is published, so whoever the handle wakes sees the task finished.

use std::cell::RefCell;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::thread::ThreadId;

use futures::task::AtomicWaker;
use parking_lot::MutexGuard;

use crate::sync::{AtomicBool as ShimBool, Mutex as ShimMutex};
use tokio::time::{Instant, Sleep};

use crate::context::{note_cancel, CurrentGuard};
use crate::core::{Core, Ending, Garbage, Why};
use crate::error::TaskError;
use crate::events::EventBus;
use crate::lock::{DeadlockCycle, LockManager, TaskGraph, TaskGraphHost};
use crate::pool::Pool;
use crate::sleeps::Sleeps;
use crate::task::TaskId;
use crate::token::CancellationToken;

/// A task's cell, as the driver holds it.
pub(crate) type Runnable = async_task::Runnable<TaskTag>;

/// Most task polls in one driver turn.
pub(crate) const MAX_POLLS: usize = 64;

/// The metadata stored in each task's cell.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TaskTag {
    pub key: u32,
    pub seq: u64,
    /// The thread a `!Send` body must be polled and dropped on.
    pub home: Option<ThreadId>,
}

/// Runnables woken since the driver last looked, from any thread.
///
/// Protocol (model-checked in `loom_models`): a pusher appends under the queue lock, then
/// sets `flag` and wakes the driver iff the flag was clear; the driver clears the flag
/// before it takes the queue. So whenever the queue holds an item the driver has not
/// taken, the flag is set and a wake-up was issued after the item arrived: no runnable is
/// stranded while the driver sleeps.
pub(crate) struct Inbox<T = Runnable> {
    queue: ShimMutex<Vec<T>>,
    flag: ShimBool,
    /// The driver's tokio waker.
    pub driver: AtomicWaker,
}

impl<T> Default for Inbox<T> {
    fn default() -> Self {
        Inbox {
            queue: ShimMutex::new(Vec::new()),
            flag: ShimBool::new(false),
            driver: AtomicWaker::new(),
        }
    }
}

impl<T> std::fmt::Debug for Inbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("flag", &self.flag.load(Ordering::Relaxed))
            .finish()
    }
}

impl<T> Inbox<T> {
    /// The schedule function of every task: queue it and wake the driver.
    pub fn push(&self, r: T) {
        self.queue.lock().push(r);
        if !self.flag.swap(true, Ordering::AcqRel) {
            self.driver.wake();
        }
    }

    /// Moves what arrived into `out`.
    pub(crate) fn drain(&self, out: &mut Vec<T>) {
        if self.flag.swap(false, Ordering::AcqRel) {
            out.append(&mut self.queue.lock());
        }
    }

    /// True if something arrived since the last `drain`.
    pub(crate) fn has_work(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

/// The state shared by every handle to one scheduler. See the module docs.
pub(crate) struct Shared {
    pub id: u64,
    core: Mutex<Core>,
    pub inbox: Arc<Inbox>,
    pub events: Arc<EventBus>,
    pub llm: Pool,
    pub pools: Vec<Pool>,
    /// The lock manager (SPEC §4); it reaches the task graph through [`TaskGraphHost`].
    pub locks: LockManager,
    /// The timers of `sleep`s inside tasks (a leaf lock, see `sleeps.rs`).
    pub sleeps: Sleeps,
    /// Who drives now (invariant 2): a driver's id, 0 for nobody.
    claim: AtomicU64,
    /// `run_until`s waiting to take over the driving.
    standby: Mutex<Vec<Waker>>,
    /// Runnables of `!Send` tasks waiting for a driver on their home thread.
    parked: Mutex<Vec<Runnable>>,
    /// Set when the last `Scheduler` handle went away: the driver ends what is left.
    pub orphaned: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("id", &self.id).finish()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The core lock; delivers the locked section's [`Effects`](crate::core::Effects) after
/// unlocking (invariant 3).
pub(crate) struct CoreGuard<'a> {
    shared: &'a Shared,
    guard: Option<MutexGuard<'a, Core>>,
}

impl Deref for CoreGuard<'_> {
    type Target = Core;
    fn deref(&self) -> &Core {
        self.guard.as_ref().expect("held until drop")
    }
}

impl DerefMut for CoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Core {
        self.guard.as_mut().expect("held until drop")
    }
}

impl Drop for CoreGuard<'_> {
    fn drop(&mut self) {
        let Some(mut g) = self.guard.take() else {
            return;
        };
        if g.fx.is_empty() {
            return;
        }
        // Swap in this thread's empty spare (its vectors keep their capacity), so that
        // delivering costs no allocation.
        let mut fx = SPARE_FX
            .try_with(|s| std::mem::take(&mut *s.borrow_mut()))
            .unwrap_or_default();
        std::mem::swap(&mut fx, &mut g.fx);
        drop(g);
        for (task, kind, at) in fx.events.drain(..) {
            self.shared.events.send_at(task, kind, at);
        }
        for (token, reason) in fx.cancel.drain(..) {
            token.cancel(reason);
        }
        for w in fx.wake.drain(..) {
            w.wake();
        }
        drop_quietly(&mut fx.garbage);
        let _ = SPARE_FX.try_with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                *s = fx;
            }
        });
    }
}

thread_local! {
    /// Emptied effects, kept for the next `CoreGuard` on this thread.
    static SPARE_FX: RefCell<crate::core::Effects> = RefCell::new(Default::default());
}

/// Drops entries and stale runnables in place; a panicking destructor does not take the
/// caller down (the others are still dropped: `clear` drops every element).
fn drop_quietly(garbage: &mut Vec<Garbage>) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| garbage.clear()));
    garbage.clear();
}

impl Shared {
    pub fn new(
        core: Core,
        events: Arc<EventBus>,
        llm: Pool,
        pools: Vec<Pool>,
        locks: LockManager,
    ) -> Self {
        Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            core: Mutex::new(core),
            inbox: Arc::default(),
            events,
            llm,
            pools,
            locks,
            sleeps: Sleeps::default(),
            claim: AtomicU64::new(0),
            standby: Mutex::new(Vec::new()),
            parked: Mutex::new(Vec::new()),
            orphaned: AtomicBool::new(false),
        }
    }

    /// Takes the core lock (see [`CoreGuard`]).
    pub fn lock_core(&self) -> CoreGuard<'_> {
        let mut g = self.core.lock();
        g.events_on = self.events.maybe_active();
        CoreGuard {
            shared: self,
            guard: Some(g),
        }
    }

    /// Cancels task `id` with `reason`. True if it had not finished (cancelled already or
    /// not); its token, if any, is cancelled too, and it is woken.
    pub fn cancel_task(&self, id: TaskId, reason: &Arc<str>, why: Why) -> bool {
        let live = {
            let mut core = self.lock_core();
            match core.live_key(id) {
                Some(k) => {
                    core.request_cancel(k, reason.clone(), why, Instant::now());
                    true
                }
                None => false,
            }
        };
        if live {
            note_cancel(id, reason);
        }
        live
    }

    /// The token of task `id`, created and linked on first use (`None` once it finished).
    pub fn task_token(self: &Arc<Self>, id: TaskId) -> Option<CancellationToken> {
        let (token, new) = {
            let mut core = self.lock_core();
            let k = core.live_key(id)?;
            core.token_of(k)
        };
        if new {
            self.link_token(&token, id);
        }
        Some(token)
    }

    /// The link that cancels the task at `key`/`seq` (if it still lives) with the reason it
    /// is given: a child task's entry on its parent's token, stored inline in the token's
    /// entries (no boxed closure per child task, SPEC §9).
    pub fn cancel_link(self: &Arc<Self>, key: u32, seq: u64) -> crate::token::TaskLink {
        crate::token::TaskLink {
            shared: Arc::downgrade(self),
            key,
            seq,
        }
    }

    /// [`cancel_task`](Self::cancel_task) by key and seq, with `Why::Cancel`.
    pub(crate) fn cancel_at(&self, key: u32, seq: u64, reason: &Arc<str>) {
        let id = {
            let mut core = self.lock_core();
            let Some(id) = core
                .tasks
                .get(key as usize)
                .filter(|e| e.id.seq() == seq)
                .map(|e| e.id)
            else {
                return;
            };
            core.request_cancel(key as usize, reason.clone(), Why::Cancel, Instant::now());
            id
        };
        note_cancel(id, reason);
    }

    /// Makes cancelling `token` cancel task `id`.
    pub fn link_token(self: &Arc<Self>, token: &CancellationToken, id: TaskId) {
        let weak = Arc::downgrade(self);
        token
            .on_cancel(move |reason| {
                if let Some(s) = weak.upgrade() {
                    s.cancel_task(id, &Arc::from(reason), Why::Cancel);
                }
            })
            .detach();
    }

    /// Task `awaiter` starts awaiting `target` (see `Core::begin_await`); a lock wait that
    /// the new edge puts on a cycle fails.
    pub fn begin_await(&self, awaiter: TaskId, target: TaskId) -> Result<bool, DeadlockCycle> {
        let r = self.lock_core().begin_await(awaiter, target, now());
        if let Ok(true) = r {
            if self.locks.tracks_awaits() {
                self.locks.await_started(awaiter, target);
            }
        }
        r
    }

    /// The await of `awaiter` on `target` is over.
    pub fn end_await(&self, awaiter: TaskId, target: TaskId) {
        self.lock_core()
            .end_await(awaiter.key(), awaiter.seq(), target);
    }

    /// [`end_await`](Self::end_await) with the awaiter given by key and seq.
    pub fn end_await_at(&self, key: u32, seq: u64, target: TaskId) {
        self.lock_core().end_await(key as usize, seq, target);
    }

    /// Records a task's ending (the body is gone already), releases what it held, and
    /// returns the error its handle gets (invariant 4).
    pub fn finish(&self, key: u32, seq: u64, ending: Ending, now: Instant) -> Option<TaskError> {
        let out = self.lock_core().finish(key as usize, seq, ending, now);
        match out {
            Some(o) => {
                // Lock-manager hook (SPEC §4): whatever the task still holds is released,
                // however it ended, before its handle learns the ending.
                self.locks.task_ended(o.id);
                o.error
            }
            // Not live (ended already: its locks went then).
            None => Some(TaskError::failed(LostTask)),
        }
    }

    /// Begins shutdown: later submissions fail, every task is cancelled with `reason`.
    /// Returns how many tasks were cancelled by this call.
    pub fn shutdown(&self, reason: &str) -> usize {
        let reason: Arc<str> = reason.into();
        let mut n = 0;
        let ids: Vec<TaskId> = {
            let mut core = self.lock_core();
            if core.closed.is_none() {
                core.closed = Some(reason.clone());
            }
            core.tasks.iter().map(|(_, e)| e.id).collect()
        };
        for id in ids {
            let mut core = self.lock_core();
            if let Some(k) = core.live_key(id) {
                if core.request_cancel(k, reason.clone(), Why::Cancel, Instant::now()) {
                    n += 1;
                }
            }
        }
        self.inbox.driver.wake();
        n
    }

    /// True once `shutdown` ran.
    pub fn is_closed(&self) -> bool {
        self.core.lock().closed.is_some()
    }

    /// Ends every task now, on this thread, without waiting for cleanup: bodies are
    /// dropped (`!Send` ones only on their home thread; those of another thread are leaked,
    /// never dropped on the wrong thread) and every ending is recorded, so counts are exact
    /// and locks and permits are released. Used when the last handle goes with no driver.
    pub fn end_all_now(self: &Arc<Self>, reason: &str) {
        let reason: Arc<str> = reason.into();
        let me = std::thread::current().id();
        let mut runnables = Vec::new();
        for _ in 0..4 {
            let now = Instant::now();
            {
                let mut core = self.lock_core();
                let keys: Vec<usize> = core.tasks.iter().map(|(k, _)| k).collect();
                for k in keys {
                    core.force(k, &reason, now);
                }
            }
            // Forced suspended tasks were woken: their runnables are in the inbox now.
            runnables.append(&mut self.parked.lock());
            self.inbox.drain(&mut runnables);
            {
                let mut core = self.lock_core();
                for r in runnables.drain(..) {
                    core.absorb(r, now);
                }
            }
            let mut progress = false;
            loop {
                let next = self.lock_core().pop(self.id, now);
                let Some((r, mut cur)) = next else { break };
                progress = true;
                cur.stop = true;
                cur.now = now;
                match r.metadata().home {
                    Some(home) if home != me => {
                        // Invariant 1: never dropped here. Leak the body; record its end.
                        let id = cur.id;
                        std::mem::forget(r);
                        self.finish(id.key() as u32, id.seq(), Ending::Stopped, now);
                    }
                    _ => {
                        let g = CurrentGuard::enter(cur);
                        r.run();
                        drop(g);
                    }
                }
            }
            if !progress || self.lock_core().live() == 0 {
                break;
            }
        }
    }

    /// Ends every task now if no driver is running (nobody else could).
    pub fn end_now_if_undriven(self: &Arc<Self>, reason: &str) {
        if !self.is_driven() {
            self.end_all_now(reason);
        }
    }

    /// True while some driver has claimed the scheduler.
    pub fn is_driven(&self) -> bool {
        self.claim.load(Ordering::Acquire) != 0
    }

    fn standby_wake(&self) {
        for w in std::mem::take(&mut *self.standby.lock()) {
            w.wake();
        }
    }
}

impl TaskGraphHost for Shared {
    fn with_graph(&self, f: &mut dyn FnMut(&mut dyn TaskGraph)) {
        let mut core = self.lock_core();
        f(&mut *core);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("internal error: the task's record was lost by the scheduler")]
struct LostTask;

thread_local! {
    /// The schedulers being driven on this thread, innermost last.
    static DRIVING: RefCell<Vec<Arc<Shared>>> = const { RefCell::new(Vec::new()) };
    /// The clock as read at the start of the driver poll running on this thread.
    static DRIVER_NOW: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// The time for bookkeeping: the running task's turn, else the running driver poll's, else
/// the clock (one clock read per driver poll, not one per submission).
pub(crate) fn now() -> Instant {
    crate::context::with_current(|c| c.map(|c| c.now))
        .or_else(|| DRIVER_NOW.try_with(std::cell::Cell::get).ok().flatten())
        .unwrap_or_else(Instant::now)
}

/// The scheduler `id` if this thread is driving it now.
pub(crate) fn driving(id: u64) -> Option<Arc<Shared>> {
    DRIVING
        .try_with(|d| d.borrow().iter().rev().find(|s| s.id == id).cloned())
        .ok()
        .flatten()
}

/// The token of the running task `id` of scheduler `sched` (see `current_token`).
pub(crate) fn token_of(sched: u64, id: TaskId) -> Option<CancellationToken> {
    driving(sched)?.task_token(id)
}

struct DrivingGuard(Option<Instant>);

impl DrivingGuard {
    fn enter(shared: &Arc<Shared>) -> Self {
        DRIVING.with(|d| d.borrow_mut().push(shared.clone()));
        DrivingGuard(DRIVER_NOW.with(std::cell::Cell::get))
    }

    /// Also sets the driver poll's clock reading.
    fn enter_at(shared: &Arc<Shared>, now: Instant) -> Self {
        let g = Self::enter(shared);
        DRIVER_NOW.with(|n| n.set(Some(now)));
        g
    }
}

impl Drop for DrivingGuard {
    fn drop(&mut self) {
        let _ = DRIVING.try_with(|d| d.borrow_mut().pop());
        let _ = DRIVER_NOW.try_with(|n| n.set(self.0));
    }
}

static NEXT_DRIVER: AtomicU64 = AtomicU64::new(1);

/// Drives one scheduler: the state of one `run_until` (or of the driver thread).
pub(crate) struct Driver {
    shared: Arc<Shared>,
    id: u64,
    /// The timer of the next task timer, made at first use (inside the runtime).
    sleep: Option<Pin<Box<Sleep>>>,
    buf: Vec<Runnable>,
    /// Wakers of due sleeps, woken after the sleep lock is released.
    due: Vec<Waker>,
}

impl Driver {
    pub fn new(shared: Arc<Shared>) -> Self {
        Driver {
            shared,
            id: NEXT_DRIVER.fetch_add(1, Ordering::Relaxed),
            sleep: None,
            buf: Vec::new(),
            due: Vec::new(),
        }
    }

    /// Becomes the scheduler's driver unless another one is (invariant 2).
    fn claim(&self, cx: &Context<'_>) -> bool {
        let s = &self.shared;
        match s
            .claim
            .compare_exchange(0, self.id, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(holder) if holder == self.id => true,
            Err(_) => {
                s.standby.lock().push(cx.waker().clone());
                // The holder may have let go in between.
                s.claim
                    .compare_exchange(0, self.id, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            }
        }
    }

    /// One poll of the driver: the caller's future, then a turn of tasks.
    pub fn poll_with<F: Future + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        fut: Pin<&mut F>,
    ) -> Poll<F::Output> {
        if !self.claim(cx) {
            // Someone else drives; our future still runs (it is not a task).
            return fut.poll(cx);
        }
        let now = Instant::now();
        let _driving = DrivingGuard::enter_at(&self.shared, now);
        self.shared.inbox.driver.register(cx.waker());
        if let Poll::Ready(v) = fut.poll(cx) {
            return Poll::Ready(v);
        }
        if self.turn(now) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.arm_timer(cx);
        Poll::Pending
    }

    /// Sleeps until the next task timer or `sleep` (a stale task timer fires as a no-op).
    pub fn arm_timer(&mut self, cx: &mut Context<'_>) {
        let task = self.shared.lock_core().next_timer();
        let next = match (task, self.shared.sleeps.next()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(at) = next {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if sleep.deadline() != at {
                sleep.as_mut().reset(at);
            }
            if sleep.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            }
        }
    }

    /// Fires due timers and runs ready tasks until none is left, `MAX_POLLS` ran or the
    /// time budget is spent. Returns true if ready tasks remain.
    pub fn turn(&mut self, now: Instant) -> bool {
        let shared = self.shared.clone();
        let me = std::thread::current().id();
        let started = std::time::Instant::now();
        let budget = {
            let mut core = shared.lock_core();
            core.expire_timers(now);
            core.config.turn_budget
        };
        // Due sleeps: their wakers are woken with no lock held (invariant 3); a task's
        // runnable reaches the inbox, drained below in this same turn.
        shared.sleeps.expire(now, &mut self.due);
        for w in self.due.drain(..) {
            w.wake();
        }
        self.unpark(me, now);
        let mut prev: Option<(TaskId, bool, u32)> = None;
        let mut more = false;
        for n in 0..MAX_POLLS {
            shared.inbox.drain(&mut self.buf);
            let next = {
                let mut core = shared.lock_core();
                if let Some((id, rescheduled, depth)) = prev.take() {
                    core.after_poll(id, rescheduled, depth, now);
                }
                for r in self.buf.drain(..) {
                    core.absorb(r, now);
                }
                core.pop(shared.id, now)
            };
            let Some((runnable, mut cur)) = next else {
                break;
            };
            cur.now = now;
            let id = cur.id;
            if runnable.metadata().home.is_some_and(|h| h != me) {
                // Invariant 1: back in line once a driver runs on its home thread.
                shared.parked.lock().push(runnable);
                prev = Some((id, true, cur.shield_depth));
                continue;
            }
            let guard = CurrentGuard::enter(cur);
            let rescheduled = runnable.run();
            let depth = guard.leave().map_or(0, |c| c.shield_depth);
            prev = Some((id, rescheduled, depth));
            if n % 4 == 3 && started.elapsed() >= budget {
                more = true;
                break;
            }
        }
        {
            let mut core = shared.lock_core();
            if let Some((id, rescheduled, depth)) = prev.take() {
                core.after_poll(id, rescheduled, depth, now);
            }
            more |= core.has_ready();
        }
        more || shared.inbox.has_work()
    }

    /// Takes back the parked runnables whose home is this thread.
    fn unpark(&mut self, me: ThreadId, now: Instant) {
        let mine: Vec<Runnable> = {
            let mut parked = self.shared.parked.lock();
            if parked.is_empty() {
                return;
            }
            let (mine, theirs) = std::mem::take(&mut *parked)
                .into_iter()
                .partition(|r| r.metadata().home == Some(me));
            *parked = theirs;
            mine
        };
        let mut core = self.shared.lock_core();
        for r in mine {
            core.absorb(r, now);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let mine = self.shared.claim.load(Ordering::Acquire) == self.id;
        if !mine {
            return;
        }
        if self.shared.orphaned.load(Ordering::Acquire) {
            // The last handle went while this driver ran: nobody will drive again.
            let _driving = DrivingGuard::enter(&self.shared);
            self.shared.end_all_now("scheduler dropped");
        }
        self.shared.claim.store(0, Ordering::Release);
        self.shared.standby_wake();
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("scheduler", &self.shared.id)
            .finish()
    }
}

/// A weak link from a task's body back to its scheduler.
pub(crate) type SharedRef = Weak<Shared>;

#[cfg(all(test, loom))]
mod loom_models {
    use super::Inbox;
    use loom::thread;

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(3);
        b.check(f);
    }

    /// Two wakers push while the driver drains: every item is taken exactly once, and an
    /// item the driver has not taken is always announced by the flag (no lost wake-up).
    #[test]
    fn loom_inbox_push_vs_drain_loses_nothing() {
        model(|| {
            let inbox = loom::sync::Arc::new(Inbox::<u32>::default());
            let pushers: Vec<_> = (0..2)
                .map(|i| {
                    let ib = inbox.clone();
                    thread::spawn(move || ib.push(i))
                })
                .collect();
            let mut got = Vec::new();
            inbox.drain(&mut got);
            for p in pushers {
                p.join().unwrap();
            }
            let announced = inbox.has_work();
            let mut rest = Vec::new();
            inbox.drain(&mut rest);
            assert!(rest.is_empty() || announced, "an item arrived unannounced");
            got.extend(rest);
            got.sort_unstable();
            assert_eq!(got, [0, 1]);
        });
    }
}
