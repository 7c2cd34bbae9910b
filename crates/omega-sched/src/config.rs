//! Configuration: the [`SchedulerBuilder`] and runtime changes through [`ConfigPatch`].

use std::time::Duration;

use crate::queue::Fairness;
use crate::scheduler::Scheduler;

/// Default for [`SchedulerBuilder::history_limit`].
pub const DEFAULT_HISTORY_LIMIT: usize = 10_000;
/// Default for [`SchedulerBuilder::cleanup_grace`].
pub const DEFAULT_CLEANUP_GRACE: Duration = Duration::from_secs(5);
/// Default for [`SchedulerBuilder::aging`]: a waiting task gains one priority level per second.
pub const DEFAULT_AGING: Duration = Duration::from_secs(1);
/// Default for [`SchedulerBuilder::turn_budget`]: a driver turn yields to tokio after 1 ms.
pub const DEFAULT_TURN_BUDGET: Duration = Duration::from_millis(1);

/// The settings a scheduler runs with.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub max_concurrent_tasks: Option<usize>,
    pub max_concurrent_llm_calls: Option<usize>,
    pub task_timeout: Option<Duration>,
    pub fairness: Fairness,
    pub aging: Option<Duration>,
    pub history_limit: usize,
    pub cleanup_grace: Duration,
    pub turn_budget: Duration,
    pub pools: Vec<(String, usize)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_concurrent_tasks: None,
            max_concurrent_llm_calls: None,
            task_timeout: None,
            fairness: Fairness::Fifo,
            aging: Some(DEFAULT_AGING),
            history_limit: DEFAULT_HISTORY_LIMIT,
            cleanup_grace: DEFAULT_CLEANUP_GRACE,
            turn_budget: DEFAULT_TURN_BUDGET,
            pools: Vec::new(),
        }
    }
}

/// Builds a [`Scheduler`]. Every setting has a default; see each method.
///
/// ```
/// use std::time::Duration;
/// use omega_sched::{Fairness, Scheduler};
///
/// let sched = Scheduler::builder()
///     .max_concurrent_tasks(64)
///     .max_concurrent_llm_calls(8)
///     .task_timeout(Duration::from_secs(300))
///     .fairness(Fairness::Priority)
///     .pool("db", 5)
///     .build();
/// assert_eq!(sched.pool("db").map(|p| p.capacity()), Some(5));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct SchedulerBuilder {
    config: Config,
    lock_store: Option<std::sync::Arc<dyn crate::lock::DynLockStore>>,
}

impl SchedulerBuilder {
    /// Tasks admitted (running + suspended) at once; `None` (the default) = unbounded.
    pub fn max_concurrent_tasks(mut self, n: impl Into<Option<usize>>) -> Self {
        self.config.max_concurrent_tasks = n.into();
        self
    }

    /// Capacity of the built-in `"llm"` pool; `None` (the default) = unbounded.
    pub fn max_concurrent_llm_calls(mut self, n: impl Into<Option<usize>>) -> Self {
        self.config.max_concurrent_llm_calls = n.into();
        self
    }

    /// Default timeout of every task, counted from admission; `None` (the default) = none.
    pub fn task_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.config.task_timeout = d.into();
        self
    }

    /// Admission and polling order. Default [`Fairness::Fifo`].
    pub fn fairness(mut self, f: Fairness) -> Self {
        self.config.fairness = f;
        self
    }

    /// Under [`Fairness::Priority`], a waiting task gains one priority level per `d` it
    /// waits (default 1 s); `None` disables aging.
    pub fn aging(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.config.aging = d.into();
        self
    }

    /// How many finished tasks stay queryable (default 10,000). Counters are unaffected.
    pub fn history_limit(mut self, n: usize) -> Self {
        self.config.history_limit = n;
        self
    }

    /// How long cleanup may run after a cancel (shielded sections, cooperative bodies)
    /// before the body is dropped anyway. Default 5 s.
    pub fn cleanup_grace(mut self, d: Duration) -> Self {
        self.config.cleanup_grace = d;
        self
    }

    /// How long one driver turn may poll tasks before it yields to tokio (default 1 ms), so
    /// timers and I/O on the driver's thread keep running however busy the tasks are. A
    /// turn also ends after 64 polls.
    pub fn turn_budget(mut self, d: Duration) -> Self {
        self.config.turn_budget = d;
        self
    }

    /// Defines a named pool of `capacity` permits (SPEC §3.5).
    pub fn pool(mut self, name: impl Into<String>, capacity: usize) -> Self {
        self.config.pools.push((name.into(), capacity));
        self
    }

    /// The lock store that [`Scheduler::lock_store`] hands out — and so the one Lisp
    /// `with-lock`/`with-locks` use — e.g. a PostgreSQL store shared by several processes
    /// (SPEC §8). Default: this scheduler's in-memory [`LockManager`](crate::LockManager).
    pub fn lock_store(mut self, store: std::sync::Arc<dyn crate::lock::DynLockStore>) -> Self {
        self.lock_store = Some(store);
        self
    }

    /// Builds the scheduler. Nothing runs until a driver runs it (see
    /// [`Scheduler::run_until`], or [`spawn_driver`](Self::spawn_driver)).
    pub fn build(self) -> Scheduler {
        let mut sched = Scheduler::build(self.config);
        sched.store = self.lock_store;
        sched
    }

    /// Builds the scheduler and starts its own driver thread (a current-thread tokio
    /// runtime): every other thread then only holds `Send + Sync` handles. See
    /// [`DriverHandle`](crate::DriverHandle).
    pub fn spawn_driver(self) -> std::io::Result<crate::DriverHandle> {
        crate::driver::DriverHandle::start(self.build())
    }
}

/// A change to a running scheduler's settings, for [`Scheduler::configure`]. Fields left
/// `None` keep their value. Limits take effect for later admissions: running tasks are never
/// stopped to honour a lower limit.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ConfigPatch {
    pub(crate) max_concurrent_tasks: Option<Option<usize>>,
    pub(crate) max_concurrent_llm_calls: Option<Option<usize>>,
    pub(crate) task_timeout: Option<Option<Duration>>,
    pub(crate) fairness: Option<Fairness>,
    pub(crate) aging: Option<Option<Duration>>,
    pub(crate) history_limit: Option<usize>,
    pub(crate) cleanup_grace: Option<Duration>,
    pub(crate) turn_budget: Option<Duration>,
}

impl ConfigPatch {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }

    /// See [`SchedulerBuilder::max_concurrent_tasks`].
    pub fn max_concurrent_tasks(mut self, n: impl Into<Option<usize>>) -> Self {
        self.max_concurrent_tasks = Some(n.into());
        self
    }

    /// See [`SchedulerBuilder::max_concurrent_llm_calls`].
    pub fn max_concurrent_llm_calls(mut self, n: impl Into<Option<usize>>) -> Self {
        self.max_concurrent_llm_calls = Some(n.into());
        self
    }

    /// See [`SchedulerBuilder::task_timeout`] (applies to tasks submitted later).
    pub fn task_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.task_timeout = Some(d.into());
        self
    }

    /// See [`SchedulerBuilder::fairness`]; queued tasks are re-ordered at once.
    pub fn fairness(mut self, f: Fairness) -> Self {
        self.fairness = Some(f);
        self
    }

    /// See [`SchedulerBuilder::aging`].
    pub fn aging(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.aging = Some(d.into());
        self
    }

    /// See [`SchedulerBuilder::history_limit`].
    pub fn history_limit(mut self, n: usize) -> Self {
        self.history_limit = Some(n);
        self
    }

    /// See [`SchedulerBuilder::cleanup_grace`].
    pub fn cleanup_grace(mut self, d: Duration) -> Self {
        self.cleanup_grace = Some(d);
        self
    }

    /// See [`SchedulerBuilder::turn_budget`].
    pub fn turn_budget(mut self, d: Duration) -> Self {
        self.turn_budget = Some(d);
        self
    }

    pub(crate) fn apply(&self, c: &mut Config) {
        if let Some(v) = self.turn_budget {
            c.turn_budget = v;
        }
        if let Some(v) = self.max_concurrent_tasks {
            c.max_concurrent_tasks = v;
        }
        if let Some(v) = self.max_concurrent_llm_calls {
            c.max_concurrent_llm_calls = v;
        }
        if let Some(v) = self.task_timeout {
            c.task_timeout = v;
        }
        if let Some(v) = self.fairness {
            c.fairness = v;
        }
        if let Some(v) = self.aging {
            c.aging = v;
        }
        if let Some(v) = self.history_limit {
            c.history_limit = v;
        }
        if let Some(v) = self.cleanup_grace {
            c.cleanup_grace = v;
        }
    }
}
