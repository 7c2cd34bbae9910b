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
//! 3. Every operation runs after the jobs (releases of dropped guards, leaves of abandoned
//!    waits) queued before it: it waits for them ([`Jobs::settled`]) or, when they are all
//!    releases, runs them first in its own transaction ([`Jobs::take_releases`]). So a
//!    guard dropped before a call is released before that call runs.
//! 4. The `local` mutex is never held across an `.await`, nor while a waiter is completed,
//!    nor while a [`TaskRef`] is made, cloned or dropped (they take it).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use omega_sched::{OwnerId, RegistryEvent, TaskId};
use parking_lot::Mutex;
use tokio::sync::{broadcast, oneshot, watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::Db;
use crate::outcome::{parse_grant, parse_poke};

/// A grant this process holds.
#[derive(Debug)]
pub(crate) struct Held {
    pub resource: Arc<str>,
    /// The owner as stored.
    pub owner: String,
    /// Renewed by the keepalive (no explicit TTL).
    pub auto: bool,
    pub ttl: Duration,
    pub proven_until: Instant,
    pub lost: bool,
}

/// A wait of this process: where to deliver its grant, how to tell it to look again (a
/// batch passed over by a narrow hand-off), and its resources.
#[derive(Debug)]
pub(crate) struct Waiting {
    pub tx: oneshot::Sender<Vec<u64>>,
    pub poke: Arc<Notify>,
    pub items: Vec<String>,
}

/// This process's grants, waits and task owners.
#[derive(Debug, Default)]
pub(crate) struct Local {
    pub guards: HashMap<u64, Held>,
    pub waiters: HashMap<Uuid, Waiting>,
    /// Task owners this process encoded, by task uuid, with how many guards and
    /// acquisitions use them (decoding `task:<uuid>` back to `OwnerId::Task`).
    pub tasks: HashMap<Uuid, (TaskId, usize)>,
}

/// Background work: releases of dropped guards and leaves of abandoned waits.
#[derive(Debug)]
pub(crate) enum Job {
    Release { fence: u64, resource: Arc<str> },
    Leave { req: Uuid, items: Vec<String> },
}

#[derive(Debug, Default)]
struct Queue {
    pending: VecDeque<Job>,
    /// Jobs queued so far.
    queued: u64,
}

/// The job queue and its progress, for the ordering of I3. Jobs are run by the worker, or
/// taken along by the next request of the store ([`Jobs::take_releases`]): a dropped
/// guard's release then costs no round trip of its own.
#[derive(Debug)]
pub(crate) struct Jobs {
    queue: Mutex<Queue>,
    wake: Notify,
    /// Jobs finished so far (run by the worker, or by a request that took them along).
    done: watch::Sender<u64>,
}

/// Releases a request took along: counted done when dropped (its request answered, failed
/// or was abandoned — a release that did not happen leaves a lease that runs out).
#[derive(Debug)]
pub(crate) struct Taken<'a> {
    jobs: &'a Jobs,
    pub fences: Vec<i64>,
    pub resources: Vec<String>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if !self.fences.is_empty() {
            self.jobs.finish(self.fences.len() as u64);
        }
    }
}

impl Jobs {
    fn new() -> Jobs {
        Jobs {
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            done: watch::channel(0).0,
        }
    }

    pub fn push(&self, job: Job) {
        let mut q = self.queue.lock();
        q.pending.push_back(job);
        q.queued += 1;
        drop(q);
        self.wake.notify_one();
    }

    /// The worker's side: waits for jobs, then takes them all.
    pub async fn next_batch(&self) -> Vec<Job> {
        loop {
            let batch: Vec<Job> = self.queue.lock().pending.drain(..).collect();
            if !batch.is_empty() {
                return batch;
            }
            self.wake.notified().await;
        }
    }

    /// Jobs still pending (for the worker's last round).
    pub fn drain(&self) -> Vec<Job> {
        self.queue.lock().pending.drain(..).collect()
    }

    pub fn finish(&self, n: u64) {
        self.done.send_modify(|d| *d += n);
    }

    async fn wait_done(&self, target: u64) {
        let mut rx = self.done.subscribe();
        // An error means the worker is gone (shutdown): nothing more will run.
        let _ = rx.wait_for(|d| *d >= target).await;
    }

    /// Waits until every job queued before this call has run (I3).
    pub async fn settled(&self) {
        let target = self.queue.lock().queued;
        self.wait_done(target).await;
    }

    /// Takes the pending jobs along when they are all releases (a request runs them first,
    /// in its own transaction), then waits until every other job queued before has run
    /// (I3). With a leave pending, takes nothing and waits for all.
    pub async fn take_releases(&self) -> Taken<'_> {
        let mut taken = Taken {
            jobs: self,
            fences: Vec::new(),
            resources: Vec::new(),
        };
        let target = {
            let mut q = self.queue.lock();
            if q.pending.iter().all(|j| matches!(j, Job::Release { .. })) {
                for j in q.pending.drain(..) {
                    if let Job::Release { fence, resource } = j {
                        taken.fences.push(fence as i64);
                        taken.resources.push(resource.to_string());
                    }
                }
            }
            q.queued - taken.fences.len() as u64
        };
        self.wait_done(target).await;
        taken
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
    pub listening: watch::Sender<Listening>,
    pub events: broadcast::Sender<RegistryEvent>,
    started: AtomicBool,
    /// Set by `PgLockStore::close`: no new acquisitions.
    closed: AtomicBool,
}

impl Shared {
    pub fn new(db: Db, session: Uuid) -> Shared {
        Shared {
            db,
            session,
            local: Mutex::new(Local::default()),
            jobs: Jobs::new(),
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
        tokio::spawn(crate::tasks::worker(self.clone(), cancel.clone()));
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
        if let Some(req) = parse_poke(payload) {
            if let Some(w) = self.local.lock().waiters.get(&req) {
                w.poke.notify_one();
            }
            return;
        }
        let Some((req, fences)) = parse_grant(payload) else {
            return;
        };
        let slot = self.local.lock().waiters.remove(&req);
        if let Some(w) = slot {
            // An error means the wait was dropped meanwhile: its leave releases the grant.
            let _ = w.tx.send(fences);
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
