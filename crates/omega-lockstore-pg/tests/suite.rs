//! The store-generic behavioural suite of omega-sched (`tests/store_suite/mod.rs`, the
//! cases the in-memory manager passes), unchanged, against PostgreSQL: each case on a fresh
//! schema, on tokio's paused clock ([`Clock::Tokio`]) so its exact timings hold.
#![allow(clippy::unwrap_used)] // test bodies: a failed step is a failed test

#[path = "../../omega-sched/tests/store_suite/mod.rs"]
#[macro_use]
mod store_suite;

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use omega_lockstore_pg::{PgGuard, PgLockStore};
use omega_sched::{HolderInfo, LeaseId, LockError, LockSpec, LockStore, OwnerId, Scheduler};
use store_suite::*;

/// The store, and its schema: dropped when the case is done with both.
#[derive(Clone)]
struct Fresh {
    store: PgLockStore,
    _schema: Arc<common::Schema>,
}

fn fresh(_s: &Scheduler) -> Fresh {
    let schema = common::Schema::new();
    Fresh {
        store: schema.virtual_store(),
        _schema: schema,
    }
}

impl LockStore for Fresh {
    type Guard = PgGuard;
    fn acquire(&self, spec: LockSpec) -> BoxFuture<'static, Result<Vec<PgGuard>, LockError>> {
        self.store.acquire(spec)
    }
    fn try_acquire(&self, spec: LockSpec) -> BoxFuture<'static, Result<Vec<PgGuard>, LockError>> {
        self.store.try_acquire(spec)
    }
    fn renew(&self, lease: LeaseId, ttl: Duration) -> BoxFuture<'static, Result<(), LockError>> {
        self.store.renew(lease, ttl)
    }
    fn release(&self, lease: LeaseId) -> BoxFuture<'static, bool> {
        self.store.release(lease)
    }
    fn release_all(&self, owner: OwnerId) -> BoxFuture<'static, usize> {
        self.store.release_all(owner)
    }
    fn sweep(&self) -> BoxFuture<'static, usize> {
        self.store.sweep()
    }
    fn stale_count(&self) -> BoxFuture<'static, usize> {
        self.store.stale_count()
    }
    fn holders(&self, resource: &str) -> BoxFuture<'static, Vec<HolderInfo>> {
        self.store.holders(resource)
    }
}

store_suite!(postgres, fresh, #[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]);
