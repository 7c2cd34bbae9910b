//! [`Shared`]: what a store's handles, guards and background tasks share — the database,
//! this process's view of its grants and waits, the queue of background releases, and the
//! listener's state.
//!
//! # Invariants
//!
//! 1. `local.guards` holds every fence this process believes it holds, with how long it can
//!    prove it (`proven_until`: the send time of the last request that showed the lease
//!    live, plus its TTL). A fence is `lost` once the server said it is gone; the keepalive
//!    claims only fences listed here, so the server renews nothing this process forgot.
//! 2. `local.waiters[req]` exists from just before a waiting request is sent until its
//!    grant is delivered or it leaves; a hand-off for a `req` not listed belongs to another
//!    process (or to a wait that left: its `leave` releases the grant).
//! 3. Jobs (releases of dropped guards, leaves of abandoned waits) run in queue order;
//!    every operation first waits for the jobs queued before it ([`Jobs::settled`]), so a
//!    guard dropped before a call is released before that call runs.
//! 4. The `local` mutex is never held across an `.await`, nor while a waiter is completed,
//!    nor while a [`TaskRef`] is made, cloned or dropped (they take it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use omega_sched::{OwnerId, RegistryEvent, TaskId};
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::Db;
use crate::outcome::parse_grant;

/// A grant this process holds.
#[derive(Debug)]
pub(crate) struct Held {
    /// The owner as stored.
    pub owner: String,
    /// Renewed by the keepalive (no explicit TTL).
    pub auto: bool,
    pub ttl: Duration,
    pub proven_until: Instant,
    pub lost: bool,
}

/// This process's grants, waits and task owners.
#[derive(Debug, Default)]
pub(crate) struct Local {
    pub guards: HashMap<u64, Held>,
    pub waiters: HashMap<Uuid, oneshot::Sender<Vec<u64>>>,
    /// Task owners this process encoded, by task uuid, with how many guards and
    /// acquisitions use them (decoding `task:<uuid>` back to `OwnerId::Task`).
    pub tasks: HashMap<Uuid, (TaskId, usize)>,
}

/// Background work: releases of dropped guards and leaves of abandoned waits.
#[derive(Debug)]
pub(crate) enum Job {
    Release(u64),
    Leave(Uuid),
}

/// The job queue and its progress, for the ordering of I3.
#[derive(Debug)]
pub(crate) struct Jobs {
    /// Jobs queued so far, and the queue; together, so the count and the order agree.
    tx: Mutex<(u64, mpsc::UnboundedSender<Job>)>,
    /// Jobs finished so far.
    pub done: watch::Sender<u64>,
}

impl Jobs {
    fn new() -> (Jobs, mpsc::UnboundedReceiver<Job>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Jobs {
                tx: Mutex::new((0, tx)),
                done: watch::channel(0).0,
            },
            rx,
        )
    }

    pub fn push(&self, job: Job) {
        let mut q = self.tx.lock();
        if q.1.send(job).is_ok() {
            q.0 += 1;
        }
    }

    /// Waits until every job queued before this call has run (I3).
    pub async fn settled(&self) {
        let target = self.tx.lock().0;
        let mut rx = self.done.subscribe();
        // An error means the worker is gone (shutdown): nothing more will run.
        let _ = rx.wait_for(|d| *d >= target).await;
    }
}

/// Whether the listener is listening, and how many times it (re)started listening.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Listening {
    pub up: bool,
    pub epoch: u64,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Shared {
    pub db: Db,
    /// This store instance (one per `PgLockStore::new`): tags its rows.
    pub session: Uuid,
    pub local: Mutex<Local>,
    pub jobs: Jobs,
    jobs_rx: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    pub listening: watch::Sender<Listening>,
    pub events: broadcast::Sender<RegistryEvent>,
    started: AtomicBool,
    /// Set by `PgLockStore::close`: no new acquisitions.
    closed: AtomicBool,
}

impl Shared {
    pub fn new(db: Db, session: Uuid) -> Shared {
        let (jobs, rx) = Jobs::new();
        Shared {
            db,
            session,
            local: Mutex::new(Local::default()),
            jobs,
            jobs_rx: Mutex::new(Some(rx)),
            listening: watch::channel(Listening::default()).0,
            events: broadcast::channel(omega_sched::REGISTRY_EVENT_CAPACITY).0,
            started: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Refuses new acquisitions and ends this process's waits (their slots close).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let slots = std::mem::take(&mut self.local.lock().waiters);
        drop(slots);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Starts the background tasks (job worker, listener, keepalive and sweeper) on the
    /// current tokio runtime, once. Fails outside a runtime.
    pub fn start(self: &Arc<Self>, cancel: &CancellationToken) -> Result<(), String> {
        if self.started.load(Ordering::Acquire) {
            return Ok(());
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err("the PostgreSQL lock store must be used inside a tokio runtime".into());
        }
        if self.started.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let rx = self
            .jobs_rx
            .lock()
            .take()
            .expect("the job queue is taken once, by the first start");
        tokio::spawn(crate::tasks::worker(self.clone(), rx, cancel.clone()));
        tokio::spawn(crate::tasks::listener(self.clone(), cancel.clone()));
        tokio::spawn(crate::tasks::keepalive(self.clone(), cancel.clone()));
        Ok(())
    }

    /// Completes this process's waiters among `grants` (payload form) (I2, I4).
    pub fn deliver(&self, grants: &[String]) {
        for p in grants {
            self.deliver_one(p);
        }
    }

    pub fn deliver_one(&self, payload: &str) {
        let Some((req, fences)) = parse_grant(payload) else {
            return;
        };
        let slot = self.local.lock().waiters.remove(&req);
        if let Some(tx) = slot {
            // An error means the wait was dropped meanwhile: its leave releases the grant.
            let _ = tx.send(fences);
        }
    }

    /// Waits (at most `limit`) until the listener listens, so a hand-off to a wait queued
    /// after this cannot be missed. Past the limit the wait relies on its fallback poll.
    pub async fn listener_ready(&self, limit: Duration) {
        let mut rx = self.listening.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|l| l.up)).await;
    }

    /// The owner as stored: a name as is, a task as `task:<uuid>` (recorded for decoding).
    pub fn encode_owner(&self, owner: &OwnerId) -> String {
        match owner {
            OwnerId::Named(n) => n.to_string(),
            OwnerId::Task(t) => task_text(*t),
        }
    }

    /// The owner a stored name stands for: this process's tasks come back as
    /// `OwnerId::Task`; everything else (names, other processes' tasks) as a name.
    pub fn decode_owner(&self, s: &str) -> OwnerId {
        if let Some(u) = s
            .strip_prefix("task:")
            .and_then(|u| Uuid::parse_str(u).ok())
        {
            if let Some((id, _)) = self.local.lock().tasks.get(&u) {
                return OwnerId::Task(*id);
            }
        }
        OwnerId::named(s)
    }
}

/// A task as stored.
pub(crate) fn task_text(t: TaskId) -> String {
    format!("task:{}", t.as_uuid())
}

/// Keeps a task owner decodable while a guard or an acquisition of it lives.
#[derive(Debug)]
pub(crate) struct TaskRef {
    shared: Arc<Shared>,
    uuid: Uuid,
}

impl TaskRef {
    pub fn new(shared: &Arc<Shared>, owner: &OwnerId) -> Option<TaskRef> {
        let OwnerId::Task(t) = owner else {
            return None;
        };
        let uuid = t.as_uuid();
        shared.local.lock().tasks.entry(uuid).or_insert((*t, 0)).1 += 1;
        Some(TaskRef {
            shared: shared.clone(),
            uuid,
        })
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> Self {
        if let Some(e) = self.shared.local.lock().tasks.get_mut(&self.uuid) {
            e.1 += 1;
        }
        TaskRef {
            shared: self.shared.clone(),
            uuid: self.uuid,
        }
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        let mut local = self.shared.local.lock();
        if let Some(e) = local.tasks.get_mut(&self.uuid) {
            e.1 -= 1;
            if e.1 == 0 {
                local.tasks.remove(&self.uuid);
            }
        }
    }
}
