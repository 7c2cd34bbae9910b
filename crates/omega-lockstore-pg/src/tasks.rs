//! The background tasks of a store, started on first use and stopped when the last handle
//! and guard are gone:
//!
//! * [`worker`] runs the job queue: releases of dropped guards (batched into one request)
//!   and leaves of abandoned waits, in order.
//! * [`listener`] holds a dedicated connection that `LISTEN`s on the store's channel and
//!   completes this process's waiters from the hand-off notifications (`g <req> <fences>`)
//!   and re-broadcasts owner events (`o <kind> <n> <owner>`). When the connection drops it
//!   reconnects with backoff and bumps the listening epoch, so every waiter looks at its
//!   state again: nothing sent while it was away is missed for longer than that.
//! * [`keepalive`] renews this process's auto-renewed leases and its waits, marks lost the
//!   fences the server no longer has, and sweeps expired leases, waits and owners (at start,
//!   then periodically).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use omega_sched::{OwnerId, RegistryEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::{micros, sql};
use crate::error::Failure;
use crate::outcome::Released;
use crate::shared::{Job, Listening, Shared};

/// Runs jobs until cancelled, then runs what is still queued and ends.
pub(crate) async fn worker(shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        let batch = tokio::select! {
            biased;
            batch = shared.jobs.next_batch() => batch,
            _ = cancel.cancelled() => {
                let rest = shared.jobs.drain();
                run_jobs(&shared, rest).await;
                return;
            }
        };
        run_jobs(&shared, batch).await;
    }
}

/// Runs a batch: consecutive releases as one request, leaves one by one, in order.
async fn run_jobs(shared: &Shared, batch: Vec<Job>) {
    let n = batch.len() as u64;
    let mut fences: Vec<i64> = Vec::new();
    let mut resources: Vec<String> = Vec::new();
    for job in batch {
        match job {
            Job::Release { fence, resource } => {
                fences.push(fence as i64);
                resources.push(resource.to_string());
            }
            Job::Leave { req, items } => {
                release_fences(
                    shared,
                    std::mem::take(&mut fences),
                    std::mem::take(&mut resources),
                )
                .await;
                leave(shared, req, &items).await;
            }
        }
    }
    release_fences(shared, fences, resources).await;
    shared.jobs.finish(n);
}

async fn release_fences(shared: &Shared, fences: Vec<i64>, resources: Vec<String>) {
    if fences.is_empty() {
        return;
    }
    let now = shared.db.times.now_param();
    let res = Some(resources);
    match shared.db.one(sql::RELEASE, &[&fences, &res, &now]).await {
        Ok(row) => match Released::from_row(&row) {
            Ok(r) => shared.deliver(&r.grants),
            Err(e) => tracing::warn!(error = e.message(), "lock release answer unreadable"),
        },
        // The leases run out on their own: the holders are gone.
        Err(e) => tracing::warn!(
            error = e.message(),
            ?fences,
            "could not release locks; their leases will expire"
        ),
    }
}

/// Leaves the queue for `req` (a dropped or cancelled wait on `items`); a grant made
/// meanwhile is released.
pub(crate) async fn leave(shared: &Shared, req: Uuid, items: &[String]) {
    let now = shared.db.times.now_param();
    match shared.db.one(sql::LEAVE, &[&req, &items, &now]).await {
        Ok(row) => {
            if let Ok(r) = Released::from_row(&row) {
                shared.deliver(&r.grants);
            }
        }
        Err(e) => tracing::warn!(
            error = e.message(),
            %req,
            "could not leave a lock queue; the wait will expire"
        ),
    }
}

/// Keeps a LISTEN connection up until cancelled.
pub(crate) async fn listener(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let started = Instant::now();
        let r = listen(&shared, &cancel).await;
        shared.listening.send_modify(|l| l.up = false);
        if cancel.is_cancelled() {
            return;
        }
        if let Err(e) = r {
            tracing::warn!(
                error = e.message(),
                "lock store listener lost; reconnecting"
            );
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(50);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = cancel.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One listening session: connect, LISTEN, deliver notifications until the connection ends.
async fn listen(shared: &Shared, cancel: &CancellationToken) -> Result<(), Failure> {
    let hold = shared.db.times.hold();
    let (client, mut conn) = shared.db.pg_config().connect(NoTls).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "lock store listener connection ended");
                    return;
                }
            }
        }
    });
    let listened = client
        .batch_execute(&format!("LISTEN \"{}\"", shared.db.channel))
        .await;
    drop(hold);
    if let Err(e) = listened {
        driver.abort();
        return Err(e.into());
    }
    shared.listening.send_modify(|l| {
        *l = Listening {
            up: true,
            epoch: l.epoch + 1,
        }
    });
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(payload) => on_notification(shared, &payload),
                None => break,
            },
            _ = cancel.cancelled() => {
                driver.abort();
                return Ok(());
            }
        }
    }
    drop(client);
    Err(Failure::Connection(
        "the listening connection closed".into(),
    ))
}

fn on_notification(shared: &Shared, payload: &str) {
    if payload.starts_with("g ") || payload.starts_with("c ") {
        shared.deliver_one(payload);
        return;
    }
    // o <kind> <n> <owner>; the owner may contain spaces.
    let mut parts = payload.splitn(4, ' ');
    if let (Some("o"), Some(kind), Some(n), Some(owner)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    {
        let owner = OwnerId::named(owner);
        let released = n.parse().unwrap_or(0);
        let event = match kind {
            "registered" => RegistryEvent::Registered { owner },
            "swept" => RegistryEvent::Swept { owner, released },
            "deregistered" => RegistryEvent::Deregistered { owner, released },
            _ => return,
        };
        // An error only means nobody subscribes.
        let _ = shared.events.send(event);
    }
}

/// Renews leases and waits every keepalive interval; sweeps at start and every sweep
/// interval.
pub(crate) async fn keepalive(shared: Arc<Shared>, cancel: CancellationToken) {
    let cfg = &shared.db.cfg;
    let mut renew = tokio::time::interval(cfg.keepalive_interval());
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sweep = tokio::time::interval(cfg.sweep_every);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = renew.tick() => renew_all(&shared).await,
            _ = sweep.tick() => sweep_all(&shared).await,
            _ = cancel.cancelled() => return,
        }
    }
}

async fn renew_all(shared: &Shared) {
    let mut fences: Vec<i64> = Vec::new();
    let mut resources: Vec<String> = Vec::new();
    let mut reqs: Vec<Uuid> = Vec::new();
    let mut wait_res: Vec<String> = Vec::new();
    {
        let local = shared.local.lock();
        for (f, h) in local.guards.iter().filter(|(_, h)| !h.lost) {
            fences.push(*f as i64);
            resources.push(h.resource.to_string());
        }
        for (req, w) in &local.waiters {
            reqs.push(*req);
            wait_res.extend(w.items.iter().cloned());
        }
    }
    if fences.is_empty() && reqs.is_empty() {
        return;
    }
    let sent = Instant::now();
    let now = shared.db.times.now_param();
    let wait_ttl = micros(shared.db.cfg.lease_ttl);
    let row = match shared
        .db
        .one(
            sql::KEEPALIVE,
            &[&fences, &resources, &reqs, &wait_res, &wait_ttl, &now],
        )
        .await
    {
        Ok(row) => row,
        Err(e) => {
            tracing::warn!(
                error = e.message(),
                "lock store keepalive failed; leases run out unless it recovers"
            );
            return;
        }
    };
    let alive: Vec<i64> = row.try_get("fences").unwrap_or_default();
    let mut local = shared.local.lock();
    for f in fences {
        if let Some(h) = local.guards.get_mut(&(f as u64)) {
            if !alive.contains(&f) {
                h.lost = true;
            } else if h.auto {
                h.proven_until = sent + h.ttl;
            }
        }
    }
}

/// Sweeps expired leases, waits and owners everywhere.
pub(crate) async fn sweep_all(shared: &Shared) {
    let now = shared.db.times.now_param();
    match shared.db.one(sql::SWEEP, &[&now]).await {
        Ok(row) => {
            if let Ok(r) = Released::from_row(&row) {
                shared.deliver(&r.grants);
            }
        }
        Err(e) => {
            tracing::warn!(error = e.message(), "lock store sweep failed");
            return;
        }
    }
    match shared.db.one(sql::SWEEP_OWNERS, &[&now]).await {
        Ok(row) => {
            let grants: Vec<String> = row.try_get("grants").unwrap_or_default();
            shared.deliver(&grants);
        }
        Err(e) => tracing::warn!(error = e.message(), "owner sweep failed"),
    }
}
