//! [`Scheduler`]: the public handle — submit, await, cancel, inspect, configure, drive.

use std::any::Any;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::config::{Config, ConfigPatch, SchedulerBuilder};
use crate::core::{Core, NewTask};
use crate::error::TaskError;
use crate::events::{Event, EventBus};
use crate::executor::{
    driver_store, with_current, Driver, Injected, LocalBody, LocalTask, Publish, SendBody, Shared,
    TaskCtx,
};
use crate::handle::{JoinCell, TaskHandle};
use crate::lock::{LockManager, LockStats};
use crate::pool::Pool;
use crate::queue::Fairness;
use crate::stats::Stats;
use crate::task::{TaskId, TaskInfo, TaskOptions, TaskState};
use crate::token::{CancellationToken, Cancelled};

/// A cooperative task scheduler. Cheap to clone; `Send + Sync`; usable from any thread.
///
/// Tasks run on one thread, the one that drives the scheduler with [`run_until`]
/// (or [`block_on`]) inside a tokio runtime: only one task body runs at a time, tasks
/// switch at await points, and I/O overlaps.
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
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
    }
}

/// The body wrapper: stash the value, or map the error.
async fn wrap<F, T, E>(fut: F, cell: Arc<JoinCell<T>>) -> Result<(), TaskError>
where
    F: Future<Output = Result<T, E>>,
    E: StdError + Send + Sync + 'static,
{
    match fut.await {
        Ok(v) => {
            cell.stash(v);
            Ok(())
        }
        Err(e) => Err(to_task_error(e)),
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

enum Body {
    Local(LocalBody, Arc<dyn Publish>),
    Send(SendBody, Arc<dyn Publish + Send + Sync>),
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

    pub(crate) fn from_config(config: Config) -> Self {
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
        let shared = Arc::new_cyclic(|weak| {
            let locks = LockManager::new(weak.clone(), events.clone(), by_priority);
            Shared::new(core, events, llm, pools, locks)
        });
        Scheduler {
            shared,
            store: None,
        }
    }

    /// Submits a `Send` future as a task. Callable from any thread. From inside another
    /// task of this scheduler, the new task is that task's child (SPEC §3.3).
    pub fn submit<F>(&self, fut: F, opts: TaskOptions) -> TaskHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.submit_result(
            async move { Ok::<_, std::convert::Infallible>(fut.await) },
            opts,
        )
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
        let cell = Arc::new(JoinCell::new());
        let body = Box::pin(wrap(fut, cell.clone()));
        self.spawn(opts, cell.clone(), Body::Send(body, cell))
    }

    /// Submits a `!Send` future. Must be called on the thread driving this scheduler (from
    /// inside a task or the future given to `run_until`).
    ///
    /// # Panics
    /// When called on a thread that is not driving this scheduler.
    pub fn submit_local<F>(&self, fut: F, opts: TaskOptions) -> TaskHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.submit_local_result(
            async move { Ok::<_, std::convert::Infallible>(fut.await) },
            opts,
        )
    }

    /// True when this thread is driving this scheduler right now (inside `run_until`,
    /// `block_on` or one of its tasks): the condition for calling `submit_local`.
    pub fn is_driven_here(&self) -> bool {
        driver_store(&self.shared).is_some()
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
        let cell = Arc::new(JoinCell::new());
        let body = Box::pin(wrap(fut, cell.clone()));
        self.spawn(opts, cell.clone(), Body::Local(body, cell))
    }

    fn spawn<T>(&self, opts: TaskOptions, join: Arc<JoinCell<T>>, body: Body) -> TaskHandle<T> {
        let shared = &self.shared;
        let store = driver_store(shared);
        let parent = if opts.detached {
            None
        } else {
            with_current(|c| c.filter(|c| c.sched_id == shared.id).cloned())
        };
        let token = match &parent {
            Some(p) => p.token.child(),
            None => CancellationToken::new(),
        };
        let uuid = uuid::Uuid::new_v4();
        let span =
            tracing::info_span!("task", id = %uuid, name = opts.name.as_deref().unwrap_or(""));
        let now = Instant::now();
        let mut core = shared.core.lock();
        let (key, seq) = core.next_ids();
        let id = TaskId::new(uuid, key, seq);
        let ctx = Arc::new(TaskCtx {
            shared: Arc::downgrade(shared),
            sched_id: shared.id,
            key,
            seq,
            id,
            token: token.clone(),
            priority: opts.priority,
            cancel_mode: opts.cancel_mode,
            shield_depth: Default::default(),
        });
        let inserted = core.insert(
            NewTask {
                id,
                name: opts.name,
                priority: opts.priority,
                parent: parent.as_ref().map(|p| (p.key, p.seq, p.id)),
                token: token.clone(),
                timeout: opts.timeout,
                deadline: opts.deadline,
                queue_timeout: opts.queue_timeout,
            },
            now,
            &shared.events,
        );
        debug_assert_eq!(inserted, (key, seq));
        let local = match body {
            Body::Send(body, join) if store.is_none() => {
                shared.inject(Injected {
                    key,
                    body,
                    join,
                    ctx,
                    span,
                });
                None
            }
            Body::Send(body, join) => {
                Some((body as LocalBody, join as Arc<dyn Publish>, ctx, span))
            }
            Body::Local(body, join) => Some((body, join, ctx, span)),
        };
        drop(core);
        match (local, store) {
            (Some((body, join, ctx, span)), Some(store)) => {
                store.put(key, LocalTask::new(body, join, ctx, span))
            }
            (Some(_), None) => panic!(
                "omega_sched: submit_local must be called on the thread driving this scheduler \
                 (inside a task or the future given to run_until)"
            ),
            (None, _) => shared.driver.wake(),
        }
        TaskHandle {
            id,
            key,
            seq,
            join,
            token,
            shared: shared.clone(),
            awaited_by: None,
        }
    }

    /// Awaits every task; the first error cancels the others (reason `"sibling failed"`) and
    /// is returned (fail-fast). Values come back in the order of `handles`.
    pub async fn await_all<T>(&self, handles: Vec<TaskHandle<T>>) -> Result<Vec<T>, TaskError> {
        crate::combinators::all_or_cancel(handles, "sibling failed").await
    }

    /// Awaits every task and returns each one's result, cancelling nothing (supervised).
    pub async fn await_all_settled<T>(
        &self,
        handles: Vec<TaskHandle<T>>,
    ) -> Vec<Result<T, TaskError>> {
        futures::future::join_all(handles).await
    }

    /// Returns the first task to **succeed** (its index and value) and cancels the others
    /// (reason `"another task won"`). If all fail, returns the last error; with no tasks,
    /// `TaskError::Failed(NoTasks)`.
    pub async fn await_any<T>(&self, handles: Vec<TaskHandle<T>>) -> Result<(usize, T), TaskError> {
        crate::combinators::first_ok_or_cancel(handles, "another task won").await
    }

    /// Cancels the task `id` (and its subtree) with `reason`. True if it had not finished.
    pub fn cancel(&self, id: TaskId, reason: &str) -> bool {
        let token = {
            let core = self.shared.core.lock();
            core.key_of(id).map(|k| core.tasks[k].token.clone())
        };
        match token {
            Some(t) => {
                t.cancel(reason);
                true
            }
            None => false,
        }
    }

    /// Cancels every unfinished task with `reason`. Returns how many there were.
    pub fn cancel_all(&self, reason: &str) -> usize {
        let tokens: Vec<CancellationToken> = {
            let core = self.shared.core.lock();
            core.tasks.iter().map(|(_, e)| e.token.clone()).collect()
        };
        for t in &tokens {
            t.cancel(reason);
        }
        tokens.len()
    }

    /// A snapshot of task `id`, live or in the bounded history.
    pub fn task(&self, id: TaskId) -> Option<TaskInfo> {
        self.shared.core.lock().find(id)
    }

    /// Snapshots of every live task (oldest first), then the remembered finished ones.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.shared.core.lock().all()
    }

    /// Snapshots of the tasks in `state`.
    pub fn tasks_in(&self, state: TaskState) -> Vec<TaskInfo> {
        let mut v = self.tasks();
        v.retain(|t| t.state == state);
        v
    }

    /// Counts, pools and histograms (SPEC §3.8).
    pub fn stats(&self) -> Stats {
        let mut s = self.shared.core.lock().stats();
        s.pools = std::iter::once(self.shared.llm.stats())
            .chain(self.shared.pools.iter().map(Pool::stats))
            .collect();
        s.llm_in_flight = s.pools[0].in_use;
        s.locks = self.shared.locks.totals();
        s
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
            let mut core = self.shared.core.lock();
            let before = core.config.clone();
            patch.apply(&mut core.config);
            if before.fairness != core.config.fairness
                || before.aging != core.config.aging
                || before.history_limit != core.config.history_limit
            {
                core.reorder();
            }
            core.admit_pending(Instant::now(), &self.shared.events);
            let by_priority = core.config.fairness == Fairness::Priority;
            for p in std::iter::once(&self.shared.llm).chain(&self.shared.pools) {
                p.set_priority_order(by_priority);
            }
            self.shared.locks.set_priority_order(by_priority);
        }
        if let Some(n) = patch.max_concurrent_llm_calls {
            self.shared.llm.set_capacity(n.unwrap_or(usize::MAX));
        }
        self.shared.driver.wake();
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

    /// A stream of lifecycle events from now on (SPEC §3.8).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// Drives the scheduler on this thread until `fut` completes, and returns its output.
    /// Must run inside a tokio runtime (timers and I/O of tasks use it). Tasks left
    /// unfinished when `fut` completes stay where they are until the scheduler is driven
    /// again. `fut` itself is not a task: it can submit and await tasks, including
    /// `submit_local` ones.
    ///
    /// # Panics
    /// If this scheduler is being driven already, or was driven on another thread before.
    pub async fn run_until<F: Future>(&self, fut: F) -> F::Output {
        let mut driver = Driver::new(self.shared.clone());
        let mut fut = pin!(fut);
        std::future::poll_fn(move |cx| driver.poll_with(cx, fut.as_mut())).await
    }

    /// Creates a single-threaded tokio runtime (timers and I/O enabled) and drives the
    /// scheduler on it until `fut` completes.
    ///
    /// # Panics
    /// As [`run_until`](Self::run_until); also if called from inside a tokio runtime or if
    /// the OS cannot provide the runtime's resources.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the OS could not create a tokio runtime");
        rt.block_on(self.run_until(fut))
    }
}
