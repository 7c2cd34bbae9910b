//! Lifecycle events, broadcast to every [`Scheduler::events`](crate::Scheduler::events)
//! subscriber.
//!
//! Events are sent only while someone subscribes; a scheduler nobody ever subscribed to pays
//! one relaxed atomic load per would-be event. A slow subscriber that falls more than [`EVENT_CAPACITY`] events
//! behind gets `RecvError::Lagged` from tokio's broadcast channel and loses the oldest ones.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::lock::LockMode;
use crate::task::TaskId;

/// How many events a subscriber may fall behind before it starts losing the oldest.
pub const EVENT_CAPACITY: usize = 4096;

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The task was submitted (state `pending`).
    Submitted,
    /// The task was admitted (`pending → running`).
    Started,
    /// The task parked on something (`running → suspended`).
    Suspended,
    /// The task was woken (`suspended → running`).
    Resumed,
    /// The body returned a value.
    Completed,
    /// The body returned an error or panicked.
    Failed {
        /// The error as text.
        error: String,
    },
    /// The task ended cancelled.
    Cancelled {
        /// The token's reason.
        reason: Arc<str>,
    },
    /// The task's timeout, deadline or queue timeout expired.
    TimedOut {
        /// How long it had.
        after: Duration,
    },
    /// A pool permit was granted to the task.
    PoolAcquired {
        /// The pool's name.
        pool: Arc<str>,
    },
    /// A pool permit held by the task was released.
    PoolReleased {
        /// The pool's name.
        pool: Arc<str>,
    },
    /// A lock was granted (`task`: the owning task, or for a named owner the acquiring
    /// task, if any).
    LockAcquired {
        /// The resource.
        resource: Arc<str>,
        /// The mode granted.
        mode: LockMode,
        /// The grant's fencing token.
        fence: u64,
    },
    /// A grant was released (guard dropped, `release_all`, task end or lease expiry).
    LockReleased {
        /// The resource.
        resource: Arc<str>,
        /// The mode of the grant released.
        mode: LockMode,
    },
}

/// One lifecycle event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The task it is about (`None` for pool events outside any task).
    pub task: Option<TaskId>,
    /// What happened.
    pub kind: EventKind,
    /// When (tokio's clock, so paused-clock tests see exact times).
    pub at: Instant,
}

/// The sending side, owned by the scheduler.
#[derive(Debug)]
pub(crate) struct EventBus {
    /// Made by the first `subscribe`: a channel of `EVENT_CAPACITY` slots is ~0.4 MB, touched
    /// when made (a fifth of the page faults of `omega run` on a small script), and nothing
    /// sent before anyone subscribes is kept anyway.
    tx: OnceLock<broadcast::Sender<Event>>,
    /// Set by the first `subscribe`: until then `active` is one relaxed load (tokio's
    /// `receiver_count` takes a mutex).
    ever_subscribed: AtomicBool,
}

impl EventBus {
    pub fn new() -> Self {
        EventBus {
            tx: OnceLock::new(),
            ever_subscribed: AtomicBool::new(false),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        let rx = self
            .tx
            .get_or_init(|| broadcast::channel(EVENT_CAPACITY).0)
            .subscribe();
        self.ever_subscribed.store(true, Ordering::Relaxed);
        rx
    }

    /// True when someone listens; check it before building an event.
    pub fn active(&self) -> bool {
        self.ever_subscribed.load(Ordering::Relaxed)
            && self.tx.get().is_some_and(|tx| tx.receiver_count() > 0)
    }

    /// True once anyone subscribed (one relaxed load): worth collecting events.
    pub fn maybe_active(&self) -> bool {
        self.ever_subscribed.load(Ordering::Relaxed)
    }

    /// Sends an event stamped now. Never call with a scheduler lock held: the broadcast
    /// wakes receivers inline, and a receiver may be a task of this scheduler.
    pub fn send(&self, task: Option<TaskId>, kind: EventKind) {
        self.send_at(task, kind, Instant::now());
    }

    /// Sends an event that happened at `at` (collected under a lock, sent after it).
    pub fn send_at(&self, task: Option<TaskId>, kind: EventKind, at: Instant) {
        if self.active() {
            // An error only means every receiver went away meanwhile.
            if let Some(tx) = self.tx.get() {
                let _ = tx.send(Event { task, kind, at });
            }
        }
    }
}
