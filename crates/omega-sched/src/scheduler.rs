//! [`Scheduler`]: the public handle — build, submit, await, cancel, inspect, configure,
//! drive, shut down.

use std::any::Any;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::thread::ThreadId;

use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::body::Body;
use crate::config::{Config, ConfigPatch, SchedulerBuilder};
use crate::context::{current_in, scope_parent_token};
use crate::core::{Core, NewTask, Why};
use crate::error::TaskError;
use crate::events::{Event, EventBus};
use crate::executor::{driving, Driver, Runnable, Shared, TaskTag};
use crate::handle::TaskHandle;
use crate::lock::{LockManager, LockStats};
use crate::pool::Pool;
use crate::queue::Fairness;
use crate::stats::Stats;
use crate::task::{TaskId, TaskInfo, TaskOptions, TaskState};
use crate::token::{Cancelled, OnCancelGuard};

/// A cooperative task scheduler. Cheap to clone; `Send + Sync`; usable from any thread.
///
/// Tasks run on one thread at a time: the one driving the scheduler, either with
/// [`run_until`] (or [`block_on`]) inside a tokio runtime, or the scheduler's own driver
/// thread ([`SchedulerBuilder::spawn_driver`]). Only one task body runs at a time, tasks
/// switch at await points, and I/O overlaps.
///
/// When the last `Scheduler` handle is dropped the scheduler shuts down (see
/// [`shutdown`](Self::shutdown)); with no driver running, every task is ended at once.
/// Task bodies that hold a `Scheduler` clone keep it alive: call `shutdown` explicitly.
///
/// ```
/// use omega_sched::{Scheduler, TaskOptions};
///
/// let sched = Scheduler::builder().max_concurrent_tasks(2).build();
/// let total = sched.block_on({
///     let sched = sched.clone();
///     async move {
///         let handles: Vec<_> = (1..=4u32)
///             .map(|i| sched.submit(async move { i * 10 }, TaskOptions::new().name(format!("t{i}"))))
///             .collect();
///         sched.await_all(handles).await.unwrap().into_iter().sum::<u32>()
///     }
/// });
/// assert_eq!(total, 100);
/// assert_eq!(sched.stats().completed, 4);
/// ```
///
/// [`run_until`]: Scheduler::run_until
/// [`block_on`]: Scheduler::block_on
#[derive(Clone, Debug)]
pub struct Scheduler {
    pub(crate) shared: Arc<Shared>,
    /// The store given to [`SchedulerBuilder::lock_store`], if any.
    pub(crate) store: Option<Arc<dyn crate::lock::DynLockStore>>,
    _life: Arc<Life>,
}

/// Shared by the `Scheduler` handles only: its drop is the last handle going.
#[derive(Debug)]
struct Life(Weak<Shared>);

impl Drop for Life {
    fn drop(&mut self) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        shared
            .orphaned
            .store(true, std::sync::atomic::Ordering::Release);
        shared.shutdown("scheduler dropped");
        shared.end_now_if_undriven("scheduler dropped");
    }
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
    }
}

pin_project_lite::pin_project! {
    /// A task's future with its error mapped to a [`TaskError`] (see [`to_task_error`]).
    ///
    /// Written by hand rather than as an `async fn` on purpose: an `async fn` wrapper keeps
    /// its argument and the future it awaits in two fields of its state, so the wrapped
    /// future is stored twice in the task's cell (it doubled a Lisp task's cell, 312-byte
    /// body, to 768 bytes).
    struct Wrap<F> {
        #[pin]
        fut: F,
    }
}

impl<F, T, E> Future for Wrap<F>
where
    F: Future<Output = Result<T, E>>,
    E: StdError + Send + Sync + 'static,
{
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .fut
            .poll(cx)
            .map(|r| r.map_err(to_task_error))
    }
}

/// The body wrapper: map the error.
fn wrap<F>(fut: F) -> Wrap<F> {
    Wrap { fut }
}

pin_project_lite::pin_project! {
    /// An infallible task's future as a fallible one (`Ok` of its output), without storing
    /// it twice (see [`Wrap`]).
    struct Infallibly<F> {
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for Infallibly<F> {
    type Output = Result<F::Output, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().fut.poll(cx).map(Ok)
    }
}

/// Maps a body's error: `TaskError` and `Cancelled` keep their meaning, anything else is
/// `Failed`.
fn to_task_error<E: StdError + Send + Sync + 'static>(e: E) -> TaskError {
    let any: &dyn Any = &e;
    if let Some(t) = any.downcast_ref::<TaskError>() {
        return t.clone();
    }
    if let Some(c) = any.downcast_ref::<Cancelled>() {
        return TaskError::Cancelled {
            reason: c.reason.clone(),
        };
    }
    TaskError::failed(e)
}

/// A task's cell, as created by one of the two `async-task` spawn functions.
type Spawned<T> = (Runnable, async_task::Task<Result<T, TaskError>, TaskTag>);

/// A submission between its two halves (see `Scheduler::reserve`).
struct Reservation<'a> {
    core: crate::executor::CoreGuard<'a>,
    id: TaskId,
    tag: TaskTag,
    parent: Option<TaskId>,
    /// The child's registration on its parent's (or scope's) token.
    link: OnCancelGuard,
    /// The parent's token was cancelled already, with this reason.
    born_cancelled: Option<Arc<str>>,
    now: Instant,
}

/// Removes an await edge recorded by [`Scheduler::track_await`] when dropped.
#[derive(Debug)]
#[must_use = "the await edge is removed when the guard is dropped"]
pub struct AwaitGuard {
    edge: Option<(Arc<Shared>, TaskId, TaskId)>,
}

impl Drop for AwaitGuard {
    fn drop(&mut self) {
        if let Some((shared, awaiter, target)) = self.edge.take() {
            shared.end_await(awaiter, target);
        }
    }
}

/// [`Scheduler::track_await`] on the scheduler `shared` (also [`TaskHandle::track_await`]).
pub(crate) fn track_await_in(
    shared: &Arc<Shared>,
    target: TaskId,
) -> Result<AwaitGuard, TaskError> {
    let Some((sched, me)) = current_in() else {
        return Ok(AwaitGuard { edge: None });
    };
    if sched != shared.id {
        return Ok(AwaitGuard { edge: None });
    }
    match shared.begin_await(me, target) {
        Err(cycle) => Err(TaskError::Deadlock { cycle }),
        Ok(true) => Ok(AwaitGuard {
            edge: Some((shared.clone(), me, target)),
        }),
        Ok(false) => Ok(AwaitGuard { edge: None }),
    }
}

impl Scheduler {
    /// A builder with every setting at its default.
    pub fn builder() -> SchedulerBuilder {
        SchedulerBuilder::default()
    }

    /// A scheduler with default settings (no limits, FIFO).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Builds a scheduler from its settings (see [`SchedulerBuilder::build`]).
    pub(crate) fn build(config: Config) -> Self {
        let events = Arc::new(EventBus::new());
        let by_priority = config.fairness == Fairness::Priority;
        let llm = Pool::new(
            "llm",
            config.max_concurrent_llm_calls.unwrap_or(usize::MAX),
            by_priority,
            events.clone(),
        );
        let pools = config
            .pools
            .iter()
            .map(|(name, cap)| Pool::new(name, *cap, by_priority, events.clone()))
            .collect();
        let core = Core::new(config);
        let shared = Arc::new_cyclic(|weak: &Weak<Shared>| {
            let host: Weak<dyn crate::lock::TaskGraphHost> = weak.clone();
            let locks = LockManager::new(host, events.clone(), by_priority);
            Shared::new(core, events, llm, pools, locks)
        });
        Self::from_shared(shared)
    }

    fn from_shared(shared: Arc<Shared>) -> Self {
        let life = Arc::new(Life(Arc::downgrade(&shared)));
        Scheduler {
            shared,
            store: None,
            _life: life,
        }
    }

    /// Submits a `Send` future as a task. Callable from any thread. From inside another
    /// task of this scheduler, the new task is that task's child (SPEC §3.3). After
    /// [`shutdown`](Self::shutdown) the handle resolves at once with
    /// [`TaskError::Shutdown`] (see [`try_submit`](Self::try_submit) to be told directly).
    pub fn submit<F>(&self, fut: F, opts: TaskOptions) -> TaskHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.submit_result(Infallibly { fut }, opts)
    }

    /// [`submit`](Self::submit), or the [`TaskError::Shutdown`] that says why not.
    pub fn try_submit<F>(
        &self,
        fut: F,
        opts: TaskOptions,
    ) -> Result<TaskHandle<F::Output>, TaskError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if let Some(reason) = self.shared.lock_core().closed.clone() {
            return Err(TaskError::Shutdown { reason });
        }
        Ok(self.submit(fut, opts))
    }

    /// Submits a `Send` future whose `Err` ends the task in `error` (`TaskError::Failed`;
    /// a `Cancelled` or `TaskError` keeps its meaning, so `check_cancelled()?` ends the task
    /// `cancelled`).
    pub fn submit_result<F, T, E>(&self, fut: F, opts: TaskOptions) -> TaskHandle<T>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: StdError + Send + Sync + 'static,
    {
        self.submit_with(opts, None, wrap(fut), |tag, body, inbox| {
            async_task::Builder::new()
                .metadata(tag)
                .spawn(move |_| body, move |run| inbox.push(run))
        })
    }

    /// Submits a `!Send` future. Must be called on the thread driving this scheduler (from
    /// inside a task or the future given to `run_until`); the task runs only there.
    ///
    /// # Panics
    /// When called on a thread that is not driving this scheduler.
    pub fn submit_local<F>(&self, fut: F, opts: TaskOptions) -> TaskHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.submit_local_result(Infallibly { fut }, opts)
    }

    /// True when this thread is driving this scheduler right now (inside `run_until`,
    /// `block_on`, the driver thread, or one of its tasks): the condition for calling
    /// `submit_local`.
    pub fn is_driven_here(&self) -> bool {
        driving(self.shared.id).is_some()
    }

    /// [`submit_local`](Self::submit_local) for a fallible body (see `submit_result`).
    ///
    /// # Panics
    /// When called on a thread that is not driving this scheduler.
    pub fn submit_local_result<F, T, E>(&self, fut: F, opts: TaskOptions) -> TaskHandle<T>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
        E: StdError + Send + Sync + 'static,
    {
        assert!(
            self.is_driven_here(),
            "omega_sched: submit_local must be called on the thread driving this scheduler \
             (inside a task or the future given to run_until)"
        );
        let home = Some(std::thread::current().id());
        self.submit_with(opts, home, wrap(fut), |tag, body, inbox| {
            async_task::Builder::new()
                .metadata(tag)
                .spawn_local(move |_| body, move |run| inbox.push(run))
        })
    }

    /// A submission: reserve, make the cell with `spawn` (one of `async-task`'s two spawn
    /// functions, given the tag, the body and the inbox its schedule function feeds),
    /// commit.
    fn submit_with<W, T>(
        &self,
        opts: TaskOptions,
        home: Option<ThreadId>,
        fut: W,
        spawn: impl FnOnce(TaskTag, Body<W>, Arc<crate::executor::Inbox>) -> Spawned<T>,
    ) -> TaskHandle<T> {
        let r = match self.reserve(&opts, home) {
            Ok(r) => r,
            Err(e) => return self.refused(e),
        };
        let body = self.body(&r, &opts, fut);
        let cell = spawn(r.tag, body, self.shared.inbox.clone());
        self.commit(r, opts, cell)
    }

    /// First half of a submission, under the core lock: the task's parent, token, id and
    /// tag (the lock is held until [`commit`](Self::commit), so the key stays free).
    fn reserve(
        &self,
        opts: &TaskOptions,
        home: Option<ThreadId>,
    ) -> Result<Reservation<'_>, TaskError> {
        let shared = &self.shared;
        let parent = if opts.detached {
            None
        } else {
            current_in()
                .filter(|(s, _)| *s == shared.id)
                .map(|(_, id)| id)
        };
        // A child is linked to the innermost cancel scope's token, else to its parent's.
        let link_to = parent.and_then(|p| scope_parent_token().or_else(|| shared.task_token(p)));
        let uuid = uuid::Uuid::new_v4();
        let now = crate::executor::now();
        let mut core = shared.lock_core();
        if let Some(reason) = core.closed.clone() {
            return Err(TaskError::Shutdown { reason });
        }
        let (key, seq) = core.next_ids();
        let id = TaskId::new(uuid, key, seq);
        let tag = TaskTag {
            key: key as u32,
            seq,
            home,
        };
        // Registered under the core lock (the callback cannot run before the task is in
        // the table: it takes this lock), never run here: a cancelled token is refused and
        // its reason makes the child born cancelled.
        let (link, born_cancelled) = match link_to {
            None => (OnCancelGuard::inert(), None),
            Some(t) => match t.link_task_unless_cancelled(shared.cancel_link(tag.key, seq)) {
                Ok(guard) => (guard, None),
                Err(reason) => (OnCancelGuard::inert(), Some(reason)),
            },
        };
        Ok(Reservation {
            core,
            id,
            tag,
            parent,
            link,
            born_cancelled,
            now,
        })
    }

    /// The body of a reserved task.
    fn body<W>(&self, r: &Reservation<'_>, opts: &TaskOptions, fut: W) -> Body<W> {
        let span = tracing::info_span!(
            "task",
            id = %r.id,
            name = opts.name.as_deref().unwrap_or("")
        );
        Body::new(fut, Arc::downgrade(&self.shared), r.id, span)
    }

    /// Second half of a submission: the task's entry, its token link, its handle.
    fn commit<T>(&self, r: Reservation<'_>, opts: TaskOptions, cell: Spawned<T>) -> TaskHandle<T> {
        let Reservation {
            mut core,
            id,
            parent,
            link,
            born_cancelled,
            now,
            ..
        } = r;
        let (runnable, task) = cell;
        let waker = runnable.waker();
        core.insert(
            NewTask {
                id,
                name: opts.name,
                priority: opts.priority,
                mode: opts.cancel_mode,
                parent,
                link,
                born_cancelled,
                timeout: opts.timeout,
                deadline: opts.deadline,
                queue_timeout: opts.queue_timeout,
            },
            runnable,
            waker,
            now,
        );
        drop(core);
        let shared = &self.shared;
        if driving(shared.id).is_none() {
            shared.inbox.driver.wake();
        }
        TaskHandle::new(id, task.fallible(), shared.clone())
    }

    fn refused<T>(&self, e: TaskError) -> TaskHandle<T> {
        TaskHandle::failed(
            TaskId::new(uuid::Uuid::new_v4(), 0, 0),
            e,
            self.shared.clone(),
        )
    }

    /// Awaits every task; the first error cancels the others (reason `"sibling failed"`) and
    /// is returned (fail-fast). Values come back in the order of `handles`. Under
    /// `max_concurrent_tasks`, pending tasks are admitted in turn on the awaiter's slot.
    ///
    /// # Cancel safety
    /// Dropping the future detaches the tasks not finished yet (nothing is cancelled).
    pub async fn await_all<T>(&self, handles: Vec<TaskHandle<T>>) -> Result<Vec<T>, TaskError> {
        crate::combinators::all_or_cancel(handles, "sibling failed").await
    }

    /// Awaits every task and returns each one's result, cancelling nothing (supervised).
    ///
    /// # Cancel safety
    /// Dropping the future detaches the tasks not finished yet.
    pub async fn await_all_settled<T>(
        &self,
        handles: Vec<TaskHandle<T>>,
    ) -> Vec<Result<T, TaskError>> {
        futures::future::join_all(handles).await
    }

    /// Returns the first task to **succeed** (its index and value) and cancels the others
    /// (reason `"another task won"`). If all fail, returns the last error; with no tasks,
    /// `TaskError::Failed(NoTasks)`.
    ///
    /// # Cancel safety
    /// Dropping the future detaches the tasks not finished yet (nothing is cancelled).
    pub async fn await_any<T>(&self, handles: Vec<TaskHandle<T>>) -> Result<(usize, T), TaskError> {
        crate::combinators::first_ok_or_cancel(handles, "another task won").await
    }

    /// Records that the running task awaits task `target` until the returned guard is
    /// dropped, as awaiting its [`TaskHandle`] does: a pending `target` borrows the
    /// awaiter's slot, and an await that closes a cycle fails with
    /// [`TaskError::Deadlock`]. Outside this scheduler's tasks it records nothing. For
    /// wrappers that await a task through something else than its handle (see
    /// [`TaskHandle::untracked`]).
    pub fn track_await(&self, target: TaskId) -> Result<AwaitGuard, TaskError> {
        track_await_in(&self.shared, target)
    }

    /// Cancels the task `id` (and its subtree) with `reason`. True if it had not finished.
    pub fn cancel(&self, id: TaskId, reason: &str) -> bool {
        self.shared.cancel_task(id, &reason.into(), Why::Cancel)
    }

    /// Cancels every unfinished task with `reason`. Returns how many this call cancelled
    /// (tasks cancelled before are not counted again).
    pub fn cancel_all(&self, reason: &str) -> usize {
        let reason: Arc<str> = reason.into();
        let ids: Vec<TaskId> = self
            .shared
            .lock_core()
            .tasks
            .iter()
            .map(|(_, e)| e.id)
            .collect();
        let mut n = 0;
        for id in ids {
            let mut core = self.shared.lock_core();
            if let Some(k) = core.live_key(id) {
                if core.request_cancel(k, reason.clone(), Why::Cancel, Instant::now()) {
                    n += 1;
                }
            }
            drop(core);
            crate::context::note_cancel(id, &reason);
        }
        n
    }

    /// Shuts the scheduler down: later submissions fail with [`TaskError::Shutdown`], and
    /// every task is cancelled with `reason`. With a driver running (`run_until` on some
    /// thread, or the [`DriverHandle`](crate::DriverHandle) thread), shielded cleanups may
    /// run for `cleanup_grace`, then every remaining body is dropped on the driver thread;
    /// the driver thread ends once no task is left. With no driver running, nobody could
    /// run cleanup: every body is dropped at once, on this thread (a `!Send` body of
    /// another thread is leaked, never dropped on the wrong thread). Either way every
    /// ending is recorded and every lock and permit released. Returns how many tasks this
    /// call cancelled.
    ///
    /// Also run when the last `Scheduler` handle is dropped. Tasks that hold a clone of
    /// their scheduler keep it alive: a host that lets them should call `shutdown`.
    pub fn shutdown(&self, reason: &str) -> usize {
        let n = self.shared.shutdown(reason);
        self.shared.end_now_if_undriven(reason);
        n
    }

    /// True once [`shutdown`](Self::shutdown) ran.
    pub fn is_shut_down(&self) -> bool {
        self.shared.is_closed()
    }

    /// A snapshot of task `id`, live or in the bounded history.
    pub fn task(&self, id: TaskId) -> Option<TaskInfo> {
        self.shared.lock_core().find(id)
    }

    /// Snapshots of every live task (oldest first), then the remembered finished ones.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.shared.lock_core().all()
    }

    /// Snapshots of the tasks in `state`.
    pub fn tasks_in(&self, state: TaskState) -> Vec<TaskInfo> {
        let mut v = self.tasks();
        v.retain(|t| t.state == state);
        v
    }

    /// Counts, pools and histograms (SPEC §3.8).
    pub fn stats(&self) -> Stats {
        let mut s = self.shared.lock_core().stats();
        s.pools = std::iter::once(self.shared.llm.stats())
            .chain(self.shared.pools.iter().map(Pool::stats))
            .collect();
        s.llm_in_flight = s.pools[0].in_use;
        s.locks = self.shared.locks.totals();
        s
    }

    /// The sizes of the scheduler's sleep timers: registered sleeps, heap entries (stale
    /// ones included) and slab slots. For tests of the bounds `sleep` keeps.
    #[doc(hidden)]
    pub fn sleep_counts(&self) -> crate::sleeps::SleepCounts {
        self.shared.sleeps.counts()
    }

    /// The lock manager (SPEC §4).
    pub fn locks(&self) -> &LockManager {
        &self.shared.locks
    }

    /// The lock store to lock through: the one given to
    /// [`SchedulerBuilder::lock_store`] (say, PostgreSQL shared by several processes), or
    /// else this scheduler's in-memory [`LockManager`]. Lisp `with-lock` uses it.
    pub fn lock_store(&self) -> Arc<dyn crate::lock::DynLockStore> {
        match &self.store {
            Some(s) => s.clone(),
            None => Arc::new(self.shared.locks.clone()),
        }
    }

    /// Lock figures, totals and per resource (SPEC §4).
    pub fn lock_stats(&self) -> LockStats {
        self.shared.locks.stats()
    }

    /// Changes settings; limits apply to later admissions (SPEC §3.2).
    pub fn configure(&self, patch: ConfigPatch) {
        {
            let mut core = self.shared.lock_core();
            let before = core.config.clone();
            patch.apply(&mut core.config);
            if before.fairness != core.config.fairness
                || before.aging != core.config.aging
                || before.history_limit != core.config.history_limit
            {
                core.reorder();
            }
            core.admit_pending(Instant::now());
            let by_priority = core.config.fairness == Fairness::Priority;
            drop(core);
            for p in std::iter::once(&self.shared.llm).chain(&self.shared.pools) {
                p.set_priority_order(by_priority);
            }
            self.shared.locks.set_priority_order(by_priority);
        }
        if let Some(n) = patch.max_concurrent_llm_calls {
            self.shared.llm.set_capacity(n.unwrap_or(usize::MAX));
        }
        self.shared.inbox.driver.wake();
    }

    /// The built-in `"llm"` pool, or a pool defined with `SchedulerBuilder::pool`.
    pub fn pool(&self, name: &str) -> Option<Pool> {
        if name == "llm" {
            return Some(self.shared.llm.clone());
        }
        self.shared.pools.iter().find(|p| p.name() == name).cloned()
    }

    /// The built-in `"llm"` pool.
    pub fn llm_pool(&self) -> &Pool {
        &self.shared.llm
    }

    /// A stream of lifecycle events from now on (SPEC §3.8). A task may read it: events
    /// are sent with no scheduler lock held.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// Drives the scheduler on this thread until `fut` completes, and returns its output.
    /// Must run inside a tokio runtime (timers and I/O of tasks use it). Tasks left
    /// unfinished when `fut` completes stay where they are until the scheduler is driven
    /// again. `fut` itself is not a task: it can submit and await tasks, including
    /// `submit_local` ones.
    ///
    /// The returned future is `Send` when `fut` is, so it may be given to `tokio::spawn`
    /// or driven from `spawn_blocking`; a `!Send` task (`submit_local`) only ever runs on
    /// the thread that submitted it. One driver drives at a time: a second `run_until` of
    /// the same scheduler (on any thread) only polls its own future, and takes over the
    /// driving when the first one stops.
    pub async fn run_until<F: Future>(&self, fut: F) -> F::Output {
        let mut driver = Driver::new(self.shared.clone());
        let mut fut = pin!(fut);
        std::future::poll_fn(move |cx| driver.poll_with(cx, fut.as_mut())).await
    }

    /// Creates a single-threaded tokio runtime (timers and I/O enabled) and drives the
    /// scheduler on it until `fut` completes.
    ///
    /// # Panics
    /// If called from inside a tokio runtime or if the OS cannot provide the runtime's
    /// resources.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the OS could not create a tokio runtime");
        rt.block_on(self.run_until(fut))
    }
}
