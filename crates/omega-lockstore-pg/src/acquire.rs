//! Acquiring: one request (one uuid) per attempt, granted, refused or queued by the
//! `acquire` SQL function in one round trip; then, if queued, waiting without polling the
//! table.
//!
//! A queued request waits for the first of:
//! * its grant — delivered by whoever granted it: by the release's own answer when the
//!   releaser is this process, else by the NOTIFY the granting transaction sent;
//! * the next expiry of a lease in its way (then it sweeps and looks again: `check_wait`);
//! * a new listening epoch (the listener reconnected: a notification may have been lost);
//! * the fallback poll (bounded: a lost notification is noticed within it);
//! * its timeout (`time_out`: leave the queue and say who held it and where it stood);
//! * its task's cancellation (leave the queue, `LockError::Cancelled`).
//!
//! Dropping the future leaves the queue in the background ([`Pending`]); a grant that
//! arrived meanwhile is released, which hands it to the next waiter.

use std::sync::Arc;
use std::time::Duration;

use omega_sched::{LockError, LockMode, LockSpec, OwnerId};
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;
use uuid::Uuid;

use crate::db::{micros, sql};
use crate::error::Failure;
use crate::guard::PgGuard;
use crate::outcome::{Blocker, Kind, Outcome};
use crate::shared::{task_text, Held, Job, Shared, TaskRef, Waiting};
use crate::store::Inner;

/// Items sorted by name (bytewise, as the database's `COLLATE "C"`), one per name with the
/// stronger mode.
pub(crate) fn normalise(mut items: Vec<(Arc<str>, LockMode)>) -> Vec<(Arc<str>, LockMode)> {
    items.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    items.dedup_by(|later, first| later.0 == first.0);
    items
}

/// A request that may exist in the database: unless disarmed, dropping it queues a `leave`
/// (which also releases a grant nobody took).
struct Pending {
    shared: Arc<Shared>,
    req: Uuid,
    /// The request's resources.
    items: Vec<String>,
    armed: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.shared.local.lock().waiters.remove(&self.req);
        if self.armed {
            self.shared.jobs.push(Job::Leave {
                req: self.req,
                items: std::mem::take(&mut self.items),
            });
        }
    }
}

/// Everything one acquisition needs, resolved at its first poll.
struct Request {
    inner: Arc<Inner>,
    items: Vec<(Arc<str>, LockMode)>,
    owner: OwnerId,
    /// The owner as stored.
    who: String,
    /// The acting task as stored, when it is not the owner.
    acting: Option<String>,
    auto: bool,
    ttl: Duration,
    task: Option<TaskRef>,
}

impl Request {
    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    fn first(&self) -> Arc<str> {
        self.items[0].0.clone()
    }

    /// Turns the fences of a grant into guards, recording them (shared I1). `since`: a
    /// moment before the grant was made (the send time of the last request that saw the
    /// request not yet granted), from which the lease is proven.
    fn guards(
        &self,
        p: &mut Pending,
        fences: Vec<u64>,
        since: Instant,
    ) -> Result<Vec<PgGuard>, LockError> {
        p.armed = false;
        if fences.len() != self.items.len() {
            return Err(LockError::Store {
                message: format!(
                    "acquiring {:?}: the store granted {} fences for {} resources",
                    self.first(),
                    fences.len(),
                    self.items.len()
                )
                .into(),
            });
        }
        // Taken before the table's lock: a TaskRef takes it too (shared I4).
        let tasks: Vec<Option<TaskRef>> = fences.iter().map(|_| self.task.clone()).collect();
        let mut local = self.shared().local.lock();
        local.waiters.remove(&p.req);
        let mut out = Vec::with_capacity(fences.len());
        for ((fence, (resource, mode)), task) in fences.into_iter().zip(&self.items).zip(tasks) {
            local.guards.insert(
                fence,
                Held {
                    resource: resource.clone(),
                    owner: self.who.clone(),
                    auto: self.auto,
                    ttl: self.ttl,
                    proven_until: since + self.ttl,
                    lost: false,
                },
            );
            out.push(PgGuard {
                inner: self.inner.clone(),
                fence,
                resource: resource.clone(),
                mode: *mode,
                owner: self.owner.clone(),
                released: false,
                _task: task,
            });
        }
        Ok(out)
    }

    fn blocker(&self, b: Blocker) -> (Arc<str>, Option<(OwnerId, LockMode)>, usize) {
        let resource: Arc<str> = if b.resource.is_empty() {
            self.first()
        } else {
            b.resource.into()
        };
        let holder = b.holder.map(|(h, m)| (self.shared().decode_owner(&h), m));
        (resource, holder, b.position)
    }

    fn store_error(&self, f: &Failure) -> LockError {
        f.lock_error(&format!("acquiring {:?}", self.first()))
    }
}

/// Acquires `spec` (all or nothing), waiting when `wait`, else failing with the conflict.
pub(crate) async fn acquire(
    inner: Arc<Inner>,
    spec: LockSpec,
    wait: bool,
) -> Result<Vec<PgGuard>, LockError> {
    inner.start()?;
    let sh = inner.shared.clone();
    let items = normalise(spec.items);
    let task = omega_sched::current_task();
    let Some(owner) = spec.owner.or(task.map(OwnerId::Task)) else {
        return Err(LockError::NoOwner {
            resource: items.first().map_or_else(|| "".into(), |i| i.0.clone()),
        });
    };
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let first = items[0].0.clone();
    let closed = || LockError::Store {
        message: format!("acquiring {first:?}: the lock store was closed").into(),
    };
    if sh.is_closed() {
        return Err(closed());
    }
    let who = sh.encode_owner(&owner);
    let (auto, ttl) = match spec.ttl {
        Some(d) => (false, d),
        None => (true, sh.db.cfg.lease_ttl),
    };
    let r = Request {
        task: TaskRef::new(&sh, &owner),
        acting: task.map(task_text).filter(|t| *t != who),
        inner,
        items,
        owner,
        who,
        auto,
        ttl,
    };
    let token = omega_sched::current_token();
    let deadline = spec.timeout.map(|d| Instant::now() + d);
    let resources: Vec<String> = r.items.iter().map(|(n, _)| n.to_string()).collect();
    let modes: Vec<&str> = r.items.iter().map(|(_, m)| m.as_str()).collect();
    let cfg = &sh.db.cfg;
    let times = &sh.db.times;
    let mut watch_cancel = token.is_some();
    let cancelled = async {
        match &token {
            Some(t) => t.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(cancelled);
    // Each round is one request; a request whose wait expired (its process could not renew
    // it) is made again, at the back of the queue.
    loop {
        let req = Uuid::new_v4();
        let mut p = Pending {
            shared: sh.clone(),
            req,
            items: resources.clone(),
            armed: true,
        };
        let mut slot: Option<oneshot::Receiver<Vec<u64>>> = None;
        let poke = Arc::new(Notify::new());
        if wait {
            let (tx, rx) = oneshot::channel();
            sh.local.lock().waiters.insert(
                req,
                Waiting {
                    tx,
                    poke: poke.clone(),
                    items: resources.clone(),
                },
            );
            slot = Some(rx);
            sh.listener_ready(cfg.poll).await;
        }
        // Releases of guards dropped since the last request go first, in this request.
        let mut taken = Some(sh.jobs.take_releases().await);
        let mut since = Instant::now();
        let (ttl, lease_ttl) = (micros(r.ttl), micros(cfg.lease_ttl));
        let no_fences: Vec<i64> = Vec::new();
        let no_resources: Vec<String> = Vec::new();
        let mut wide = false;
        let out = loop {
            let now = times.now_param();
            let (fences, fence_res) = match &taken {
                Some(t) => (&t.fences, &t.resources),
                None => (&no_fences, &no_resources),
            };
            let out = sh
                .db
                .one_with(sql::ACQUIRE, |retry| {
                    vec![
                        &req,
                        &sh.session,
                        &r.who,
                        &r.acting,
                        &resources,
                        &modes,
                        &ttl,
                        &r.auto,
                        &wait,
                        &lease_ttl,
                        &now,
                        fences,
                        fence_res,
                        if retry { &true } else { &false },
                        if wide { &true } else { &false },
                    ]
                })
                .await
                .and_then(|row| Outcome::from_row(&row))
                .map_err(|f| r.store_error(&f));
            // The releases went with the first request (or are lost with it: their
            // leases run out).
            taken = None;
            let out = out?;
            sh.deliver(&out.grants);
            match out.kind {
                // The wait may close a cycle: ask again, with the whole graph in view.
                Kind::Wide if !wide => wide = true,
                _ => break out,
            }
        };
        let mut expiry = match out.kind {
            Kind::Granted(fences) => return r.guards(&mut p, fences, since),
            Kind::Conflict(b) => {
                p.armed = false;
                let (resource, holder, queue_position) = r.blocker(b);
                return Err(LockError::Conflict {
                    resource,
                    holder,
                    queue_position,
                });
            }
            Kind::Upgrade { resource, others } => {
                p.armed = false;
                return Err(LockError::UpgradeConflict {
                    resource: resource.into(),
                    owner: r.owner.clone(),
                    others,
                });
            }
            Kind::Deadlock(graph) => {
                p.armed = false;
                let cycle = crate::deadlock::cycle(&graph, &r.who, r.acting.as_deref(), |s| {
                    sh.decode_owner(s)
                });
                return Err(LockError::Deadlock { cycle });
            }
            Kind::Waiting { expiry_us } => expiry_us.map(|us| times.expiry_at(us)),
            Kind::Timeout(_) | Kind::Gone | Kind::Wide => {
                return Err(r.store_error(&Failure::Fatal("unexpected answer".into())))
            }
        };
        let mut slot = slot.expect("a queued request registered its slot");
        let mut slot_live = true;
        let mut epochs = sh.listening.subscribe();
        epochs.borrow_and_update();
        let mut poll_at = Instant::now() + cfg.poll;
        loop {
            let mut wake = poll_at;
            if let Some(e) = expiry {
                wake = wake.min(e);
            }
            if let Some(d) = deadline {
                wake = wake.min(d);
            }
            tokio::select! {
                biased;
                got = &mut slot, if slot_live => match got {
                    Ok(fences) => return r.guards(&mut p, fences, since),
                    Err(_) => slot_live = false,
                },
                _ = &mut cancelled, if watch_cancel => {
                    if let Err(c) = omega_sched::check_cancelled() {
                        p.armed = false;
                        sh.local.lock().waiters.remove(&req);
                        crate::tasks::leave(&sh, req, &resources).await;
                        return Err(LockError::Cancelled {
                            resource: r.first(),
                            reason: c.reason,
                        });
                    }
                    // Shielded: the wait goes on, and cancellation is not watched again.
                    watch_cancel = false;
                    continue;
                }
                _ = epochs.changed() => {}
                _ = poke.notified() => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
            let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
            let sent = Instant::now();
            let now = times.now_param();
            let call = if timed_out { sql::TIME_OUT } else { sql::CHECK };
            let out = sh
                .db
                .one(call, &[&req, &resources, &now])
                .await
                .and_then(|row| Outcome::from_row(&row))
                .map_err(|f| r.store_error(&f))?;
            sh.deliver(&out.grants);
            match out.kind {
                Kind::Granted(fences) => return r.guards(&mut p, fences, since),
                Kind::Timeout(b) => {
                    p.armed = false;
                    let (resource, holder, queue_position) = r.blocker(b);
                    return Err(LockError::Timeout {
                        resource,
                        after: spec.timeout.unwrap_or_default(),
                        holder,
                        queue_position,
                    });
                }
                Kind::Gone if timed_out => {
                    p.armed = false;
                    return Err(LockError::Timeout {
                        resource: r.first(),
                        after: spec.timeout.unwrap_or_default(),
                        holder: None,
                        queue_position: 1,
                    });
                }
                Kind::Waiting { expiry_us } => {
                    since = sent;
                    expiry = expiry_us.map(|us| times.expiry_at(us));
                    poll_at = Instant::now() + cfg.poll;
                }
                Kind::Gone if sh.is_closed() => {
                    p.armed = false;
                    return Err(closed());
                }
                Kind::Gone => {
                    tracing::warn!(
                        resource = %r.first(),
                        "a lock wait expired in the store (its renewals failed); queueing again"
                    );
                    p.armed = false;
                    break;
                }
                _ => return Err(r.store_error(&Failure::Fatal("unexpected answer".into()))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_sorts_bytewise_and_keeps_the_stronger_mode() {
        let n = normalise(vec![
            ("b".into(), LockMode::Read),
            ("a".into(), LockMode::Read),
            ("b".into(), LockMode::Write),
            ("B".into(), LockMode::Read),
        ]);
        let names: Vec<(&str, LockMode)> = n.iter().map(|(r, m)| (&**r, *m)).collect();
        assert_eq!(
            names,
            vec![
                ("B", LockMode::Read),
                ("a", LockMode::Read),
                ("b", LockMode::Write)
            ]
        );
    }
}
