//! Omega's cooperative task scheduler.
//!
//! A [`Scheduler`] runs many tasks on one thread at a time inside a tokio runtime — driven
//! by [`Scheduler::run_until`] (a `Send` future) or by a thread of its own
//! ([`SchedulerBuilder::spawn_driver`], [`DriverHandle`]) — with one allocation per task. It
//! bounds how many are admitted at once (`max_concurrent_tasks`, with slot lending so
//! nested and fan-out awaits never deadlock) and how many hold a [`Pool`] permit (the
//! built-in `"llm"` pool bounds LLM calls in flight); orders admission and polling FIFO, by
//! priority (with aging) or round-robin ([`Fairness`]); times tasks out; cancels them
//! through [`CancellationToken`]s that form a tree with the tasks, level-triggered (every
//! later checkpoint fails again, outside a [`shield`]; [`CancelScope`]s inside a task);
//! refuses await cycles ([`TaskError::Deadlock`]); shuts down cleanly
//! ([`Scheduler::shutdown`]); and reports every task's state ([`TaskInfo`]), cumulative
//! [`Stats`] and a stream of [`Event`]s. Task bodies reach the scheduler through free
//! functions: [`current_task`], [`current_cancellation`], [`check_cancelled`],
//! [`yield_now`], [`sleep`], [`shield`]. See `src/README.md` for a map of the modules.
//!
//! ```
//! use std::time::Duration;
//! use omega_sched::{Scheduler, TaskError, TaskOptions};
//!
//! let sched = Scheduler::builder().max_concurrent_tasks(8).build();
//! sched.block_on({
//!     let sched = sched.clone();
//!     async move {
//!         let slow = sched.submit(
//!             async { omega_sched::sleep(Duration::from_secs(60)).await.ok(); 1 },
//!             TaskOptions::new().name("slow").timeout(Duration::from_millis(10)),
//!         );
//!         assert!(matches!(slow.await, Err(TaskError::TimedOut { .. })));
//!     }
//! });
//! assert_eq!(sched.stats().timed_out, 1);
//! ```
#![warn(missing_docs, missing_debug_implementations)]

mod body;
pub mod combinators;
mod config;
mod context;
mod core;
mod driver;
mod error;
mod events;
mod executor;
mod handle;
pub mod lock;
mod pool;
mod queue;
mod scheduler;
mod sleeps;
mod stats;
mod sync;
mod task;
pub mod token;

pub use config::{
    ConfigPatch, SchedulerBuilder, DEFAULT_AGING, DEFAULT_CLEANUP_GRACE, DEFAULT_HISTORY_LIMIT,
    DEFAULT_TURN_BUDGET,
};
pub use context::{
    check_cancelled, current_cancellation, current_priority, current_task, current_token, shield,
    sleep, yield_now, CancelScope, Cancellation, ScopeId, Scoped, Shield, SleepFuture, YieldNow,
};
pub use driver::{DriverGone, DriverHandle};
pub use error::{ErrorKind, NoTasks, TaskError};
pub use events::{Event, EventKind, EVENT_CAPACITY};
pub use handle::TaskHandle;
pub use lock::DynLockStore;
pub use lock::{
    spawn_heartbeat, spawn_sweeper, Heartbeat, HeldLock, MemoryOwnerRegistry, Metadata, OwnerInfo,
    OwnerRegistry, RegistryError, RegistryEvent, Sweeper, REGISTRY_EVENT_CAPACITY,
};
pub use lock::{
    Acquire as LockAcquire, AcquireAll, DeadlockCycle, HolderInfo, LeaseId, LockError, LockGuard,
    LockManager, LockMode, LockSpec, LockStats, LockStore, LockTotals, OwnerId, ResourceLockStats,
    StoreGuard, WaitEdge, WaitOn,
};
pub use pool::{Acquire, Pool, PoolPermit};
pub use queue::Fairness;
pub use scheduler::{AwaitGuard, Scheduler};
#[doc(hidden)]
pub use sleeps::SleepCounts;
pub use stats::{Histogram, HistogramSummary, PoolStats, Stats};
pub use task::{CancelMode, IllegalTransition, TaskId, TaskInfo, TaskOptions, TaskState};
pub use token::{CancellationToken, Cancelled, CancelledFuture, OnCancelGuard};
