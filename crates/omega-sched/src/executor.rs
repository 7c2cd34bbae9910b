//! The executor: where task futures live and the driver loop that polls them.
//!
//! # Implementation details
//!
//! A scheduler's state is split in two:
//!
//! * [`Shared`] (`Send + Sync`, behind every `Scheduler` clone, waker and handle): the
//!   [`Core`] under one mutex, the driver's waker, the pools, the event bus, and a small
//!   injection list of `Send` futures submitted from other threads.
//! * [`LocalStore`] (`!Send`, one per scheduler per thread, in a thread-local): the futures
//!   themselves, indexed by task key. `!Send` futures (`submit_local`) can live here because
//!   only the thread that drives the scheduler ever touches it.
//!
//! The driver ([`Scheduler::run_until`](crate::Scheduler::run_until)) is an ordinary future
//! running inside a tokio runtime, so tokio timers and I/O work inside tasks. Each time
//! tokio polls it, it polls the caller's future, fires expired timers, then polls up to
//! [`BUDGET`] ready tasks one after another — the order comes from the ready queue — and
//! yields back to tokio, so tokio's own timers and I/O make progress between turns.
//!
//! A task is polled with the core lock released: the lock is taken to pop a key and again
//! to record the outcome, never across a task's poll, a destructor, or a user callback.
//!
//! # Invariants
//!
//! 1. Only the driver thread polls or drops task futures, and only it finishes tasks; other
//!    threads change the core (submit, wake, cancel) but never end a task. So a driver-side
//!    check followed by an action on the same task cannot race with another finisher.
//! 2. A key popped from the ready queue has its future either in the local store or in the
//!    injection list: submitters push to the injection list before releasing the core lock.
//! 3. While a task's future is being polled it is out of the store, so a task submitting
//!    tasks (which borrows the store) never conflicts with its own poll.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::ThreadId;

use futures::task::AtomicWaker;
use parking_lot::Mutex;
use tokio::time::{Instant, Sleep};

use crate::core::{Core, Ending, Expired, Popped, TaskKey};
use crate::error::TaskError;
use crate::events::EventBus;
use crate::lock::LockManager;
use crate::pool::Pool;
use crate::task::{CancelMode, TaskId};
use crate::token::{CancellationToken, OnCancelGuard};

/// Task polls per driver turn before yielding to tokio.
pub(crate) const BUDGET: usize = 64;

/// A task body, type-erased: it stores its value in its `JoinCell` and returns `Ok(())`, or
/// returns the error it ended with.
pub(crate) type LocalBody = Pin<Box<dyn Future<Output = Result<(), TaskError>>>>;
/// A `Send` task body.
pub(crate) type SendBody = Pin<Box<dyn Future<Output = Result<(), TaskError>> + Send>>;

/// Delivers a task's ending to its `TaskHandle`.
pub(crate) trait Publish {
    /// `None`: the body stashed its value; `Some(e)`: it ended with `e`.
    fn publish(&self, error: Option<TaskError>);
}

/// What the current task's code can see of itself (through [`crate::current_task`] etc.).
/// It is also the task's waker: waking it queues the task by key (a wake meant for an
/// earlier task that had the same key is ignored, its `seq` differs).
#[derive(Debug)]
pub(crate) struct TaskCtx {
    pub shared: Weak<Shared>,
    pub sched_id: u64,
    pub key: TaskKey,
    pub seq: u64,
    pub id: TaskId,
    pub token: CancellationToken,
    pub priority: i32,
    pub cancel_mode: CancelMode,
    /// Open `shield` sections.
    pub shield_depth: AtomicU32,
}

impl TaskCtx {
    /// True when the token is cancelled and no shield is open: cancellation is visible.
    pub fn cancel_visible(&self) -> bool {
        self.token.is_cancelled() && self.shield_depth.load(Ordering::Relaxed) == 0
    }
}

/// The state shared by every handle to one scheduler. See the module docs.
pub(crate) struct Shared {
    pub id: u64,
    pub core: Mutex<Core>,
    pub driver: AtomicWaker,
    pub events: Arc<EventBus>,
    pub llm: Pool,
    pub pools: Vec<Pool>,
    /// The lock manager (SPEC §4); it holds a `Weak` back to this `Shared`.
    pub locks: LockManager,
    injected: Mutex<Vec<Injected>>,
    has_injected: AtomicBool,
    driver_thread: Mutex<Option<ThreadId>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("id", &self.id).finish()
    }
}

/// A `Send` task submitted from a thread that is not driving the scheduler.
pub(crate) struct Injected {
    pub key: TaskKey,
    pub body: SendBody,
    pub join: Arc<dyn Publish + Send + Sync>,
    pub ctx: Arc<TaskCtx>,
    pub span: tracing::Span,
}

static NEXT_SCHED_ID: AtomicU64 = AtomicU64::new(1);

impl Shared {
    pub fn new(
        core: Core,
        events: Arc<EventBus>,
        llm: Pool,
        pools: Vec<Pool>,
        locks: LockManager,
    ) -> Self {
        Shared {
            locks,
            id: NEXT_SCHED_ID.fetch_add(1, Ordering::Relaxed),
            core: Mutex::new(core),
            driver: AtomicWaker::new(),
            events,
            llm,
            pools,
            injected: Mutex::new(Vec::new()),
            has_injected: AtomicBool::new(false),
            driver_thread: Mutex::new(None),
        }
    }

    /// Queues a `Send` body for the driver. Call with the core lock held (invariant 2).
    pub fn inject(&self, task: Injected) {
        self.injected.lock().push(task);
        self.has_injected.store(true, Ordering::Release);
    }

    /// A task's waker fired.
    pub fn wake_task(&self, key: TaskKey, seq: u64) {
        let notify = self
            .core
            .lock()
            .wake(key, seq, Instant::now(), &self.events);
        if notify && !on_driver_of(self.id) {
            self.driver.wake();
        }
    }
}

impl Wake for TaskCtx {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(shared) = self.shared.upgrade() {
            shared.wake_task(self.key, self.seq);
        }
    }
}

/// A task's future and what the driver needs to poll it.
pub(crate) struct LocalTask {
    pub body: LocalBody,
    pub join: Arc<dyn Publish>,
    pub ctx: Arc<TaskCtx>,
    pub waker: Waker,
    pub span: tracing::Span,
    /// Wakes the task when its token is cancelled; unregistered when the task ends.
    pub _on_cancel: OnCancelGuard,
}

impl LocalTask {
    /// Registers the cancel wake-up. Called outside the core lock: a token cancelled
    /// already wakes the task at once, so no cancel between submission and here is lost.
    pub fn new(
        body: LocalBody,
        join: Arc<dyn Publish>,
        ctx: Arc<TaskCtx>,
        span: tracing::Span,
    ) -> Self {
        let waker = Waker::from(ctx.clone());
        let _on_cancel = ctx.token.wake_on_cancel(waker.clone());
        LocalTask {
            body,
            join,
            ctx,
            waker,
            span,
            _on_cancel,
        }
    }
}

/// The futures of one scheduler's tasks on this thread, indexed by task key.
#[derive(Default)]
pub(crate) struct LocalStore {
    tasks: RefCell<Vec<Option<LocalTask>>>,
    driving: Cell<bool>,
}

impl LocalStore {
    pub fn put(&self, key: TaskKey, task: LocalTask) {
        let mut tasks = self.tasks.borrow_mut();
        if tasks.len() <= key {
            tasks.resize_with(key + 1, || None);
        }
        tasks[key] = Some(task);
    }

    fn take(&self, key: TaskKey) -> Option<LocalTask> {
        self.tasks.borrow_mut().get_mut(key).and_then(Option::take)
    }
}

struct DriverCtx {
    shared: Arc<Shared>,
    store: Rc<LocalStore>,
}

thread_local! {
    /// The schedulers being driven on this thread, innermost last.
    static DRIVERS: RefCell<Vec<DriverCtx>> = const { RefCell::new(Vec::new()) };
    /// The task being polled on this thread.
    static CURRENT: RefCell<Option<Arc<TaskCtx>>> = const { RefCell::new(None) };
    /// Every scheduler's local store on this thread, by scheduler id.
    static STORES: RefCell<HashMap<u64, Rc<LocalStore>>> = RefCell::new(HashMap::new());
}

fn on_driver_of(id: u64) -> bool {
    DRIVERS.with(|d| d.borrow().last().is_some_and(|c| c.shared.id == id))
}

/// The local store of `shared` if this thread is driving it now.
pub(crate) fn driver_store(shared: &Arc<Shared>) -> Option<Rc<LocalStore>> {
    DRIVERS.with(|d| {
        d.borrow()
            .iter()
            .rev()
            .find(|c| c.shared.id == shared.id)
            .map(|c| c.store.clone())
    })
}

/// Runs `f` with the task being polled on this thread, if any.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Arc<TaskCtx>>) -> R) -> R {
    CURRENT.with(|c| f(c.borrow().as_ref()))
}

/// Sets the current task for the duration of a poll or drop, restoring the previous one.
struct CurrentGuard(Option<Arc<TaskCtx>>);

impl CurrentGuard {
    fn enter(ctx: Arc<TaskCtx>) -> Self {
        CurrentGuard(CURRENT.with(|c| c.replace(Some(ctx))))
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

struct DriverGuard;

impl DriverGuard {
    fn enter(shared: &Arc<Shared>, store: &Rc<LocalStore>) -> Self {
        DRIVERS.with(|d| {
            d.borrow_mut().push(DriverCtx {
                shared: shared.clone(),
                store: store.clone(),
            })
        });
        DriverGuard
    }
}

impl Drop for DriverGuard {
    fn drop(&mut self) {
        DRIVERS.with(|d| d.borrow_mut().pop());
    }
}

/// Drives one scheduler on the current thread. Created by `run_until`.
pub(crate) struct Driver {
    shared: Arc<Shared>,
    store: Rc<LocalStore>,
    sleep: Pin<Box<Sleep>>,
}

impl Driver {
    /// Claims this thread as the scheduler's driver thread.
    ///
    /// # Panics
    /// If the scheduler was driven on another thread before, or is being driven on this
    /// thread already (nested `run_until` of the same scheduler).
    pub fn new(shared: Arc<Shared>) -> Self {
        let me = std::thread::current().id();
        {
            let mut owner = shared.driver_thread.lock();
            match *owner {
                Some(t) if t != me => panic!(
                    "omega_sched: a Scheduler is driven from one thread only \
                     (first driven on {t:?}, now asked on {me:?})"
                ),
                _ => *owner = Some(me),
            }
        }
        let store = STORES.with(|s| s.borrow_mut().entry(shared.id).or_default().clone());
        assert!(
            !store.driving.replace(true),
            "omega_sched: run_until called while this scheduler is already being driven"
        );
        Driver {
            shared,
            store,
            sleep: Box::pin(tokio::time::sleep_until(
                Instant::now() + std::time::Duration::from_secs(86_400 * 365),
            )),
        }
    }

    /// One poll of the driver: the caller's future, then a turn of tasks.
    pub fn poll_with<F: Future + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        fut: Pin<&mut F>,
    ) -> Poll<F::Output> {
        let _g = DriverGuard::enter(&self.shared, &self.store);
        self.shared.driver.register(cx.waker());
        if let Poll::Ready(v) = fut.poll(cx) {
            return Poll::Ready(v);
        }
        if self.turn() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let next = self.shared.core.lock().next_timer();
        if let Some(at) = next {
            if self.sleep.deadline() != at {
                self.sleep.as_mut().reset(at);
            }
            if self.sleep.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            }
        }
        Poll::Pending
    }

    /// Fires due timers and polls up to `BUDGET` ready tasks. Returns true if ready tasks
    /// remain.
    fn turn(&mut self) -> bool {
        let now = Instant::now();
        let expired = self.shared.core.lock().expire_timers(now);
        for e in expired {
            match e {
                Expired::Deadline(token) => {
                    token.cancel("timeout");
                }
                Expired::Queue(key, seq) => self.end_if_live(key, seq, Ending::QueueTimeout),
                Expired::Grace(key, seq) => self.end_if_live(key, seq, Ending::Stopped),
            }
        }
        for _ in 0..BUDGET {
            self.drain_injected();
            let popped = self.shared.core.lock().pop_ready();
            match popped {
                None => return false,
                Some(Popped::EndPending(key)) => {
                    let task = self.take(key);
                    self.end(key, task, Ending::Stopped);
                }
                Some(Popped::Poll(key)) => self.poll_task(key),
            }
        }
        self.shared.core.lock().has_ready()
    }

    fn drain_injected(&self) {
        if !self.shared.has_injected.swap(false, Ordering::Acquire) {
            return;
        }
        let batch = std::mem::take(&mut *self.shared.injected.lock());
        for t in batch {
            self.store
                .put(t.key, LocalTask::new(t.body, t.join, t.ctx, t.span));
        }
    }

    fn take(&self, key: TaskKey) -> Option<LocalTask> {
        self.store.take(key).or_else(|| {
            self.shared.has_injected.store(true, Ordering::Release);
            self.drain_injected();
            self.store.take(key)
        })
    }

    fn end_if_live(&mut self, key: TaskKey, seq: u64, ending: Ending) {
        let live = self
            .shared
            .core
            .lock()
            .tasks
            .get(key)
            .is_some_and(|e| e.seq == seq && !e.polling);
        if live {
            let task = self.take(key);
            self.end(key, task, ending);
        }
    }

    fn poll_task(&mut self, key: TaskKey) {
        let Some(mut task) = self.take(key) else {
            // Invariant 2 says this cannot happen; end the task rather than lose it.
            self.end(key, None, Ending::Failed(lost_body()));
            return;
        };
        let ctx = task.ctx.clone();
        if ctx.cancel_visible() && ctx.cancel_mode == CancelMode::Drop {
            self.end(key, Some(task), Ending::Stopped);
            return;
        }
        let result = {
            let _current = CurrentGuard::enter(ctx.clone());
            let _span = task.span.enter();
            let mut cx = Context::from_waker(&task.waker);
            catch_unwind(AssertUnwindSafe(|| task.body.as_mut().poll(&mut cx)))
        };
        match result {
            Ok(Poll::Ready(Ok(()))) => self.end(key, Some(task), Ending::Completed),
            Ok(Poll::Ready(Err(e))) => {
                let ending = if e.is_cancelled() && ctx.token.is_cancelled() {
                    Ending::Stopped
                } else {
                    Ending::Failed(e)
                };
                self.end(key, Some(task), ending)
            }
            Err(panic) => self.end(
                key,
                Some(task),
                Ending::Failed(TaskError::from_panic(panic)),
            ),
            Ok(Poll::Pending) => {
                if ctx.cancel_visible() && ctx.cancel_mode == CancelMode::Drop {
                    self.end(key, Some(task), Ending::Stopped);
                    return;
                }
                let arm_grace = ctx.token.is_cancelled();
                self.store.put(key, task);
                self.shared.core.lock().end_poll(
                    key,
                    arm_grace,
                    Instant::now(),
                    &self.shared.events,
                );
            }
        }
    }

    /// Drops the body (outside any lock, as the task itself), records the ending and tells
    /// the handle.
    fn end(&mut self, key: TaskKey, task: Option<LocalTask>, ending: Ending) {
        let mut join = None;
        if let Some(task) = task {
            let LocalTask {
                body,
                ctx,
                span,
                join: j,
                ..
            } = task;
            join = Some(j);
            let _current = CurrentGuard::enter(ctx);
            let _span = span.enter();
            // A panicking destructor must not take the driver down with it.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(body)));
        }
        let (error, entry) =
            self.shared
                .core
                .lock()
                .finish(key, ending, Instant::now(), &self.shared.events);
        let id = entry.id;
        drop(entry);
        // Lock-manager hook (SPEC §4): whatever the task still holds is released, however
        // it ended, before its handle learns the ending (no lock is held here).
        self.shared.locks.task_ended(id);
        if let Some(join) = join {
            join.publish(error);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.store.driving.set(false);
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("scheduler", &self.shared.id)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("internal error: the task's body was lost by the executor")]
struct LostBody;

fn lost_body() -> TaskError {
    TaskError::failed(LostBody)
}
