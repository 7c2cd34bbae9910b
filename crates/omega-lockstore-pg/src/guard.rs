//! [`PgGuard`]: one grant held in the PostgreSQL store; released when dropped.

use std::sync::Arc;
use std::time::Duration;

use omega_sched::{LeaseId, LockError, LockMode, OwnerId, StoreGuard};
use tokio::time::Instant;

use crate::shared::{Job, TaskRef};
use crate::store::Inner;

/// One grant of one resource in the shared store. Dropping it releases the grant (in the
/// background; the next operation of the same store waits for it).
///
/// A guard proves the lock only as far as its lease: [`is_held`](Self::is_held) is true
/// while this process can show the lease live (a renewal or grant answered within the
/// lease's TTL, and the server never said it was gone). After a lost connection it turns
/// false when the lease may have run out on the server; the fencing token
/// ([`fence`](StoreGuard::fence)) is what a downstream store checks to refuse a stale
/// holder's writes.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct PgGuard {
    pub(crate) inner: Arc<Inner>,
    pub(crate) fence: u64,
    pub(crate) resource: Arc<str>,
    pub(crate) mode: LockMode,
    pub(crate) owner: OwnerId,
    pub(crate) released: bool,
    pub(crate) _task: Option<TaskRef>,
}

impl PgGuard {
    /// The owner the grant belongs to.
    pub fn owner(&self) -> &OwnerId {
        &self.owner
    }

    /// True while this process can prove the grant: the server has not said it is gone
    /// and the lease, as last confirmed, has not run out.
    pub fn is_held(&self) -> bool {
        self.held_until().is_some_and(|t| t > Instant::now())
    }

    /// Until when the lease is proven (`None`: released, or known lost).
    pub fn held_until(&self) -> Option<Instant> {
        let local = self.inner.shared.local.lock();
        local
            .guards
            .get(&self.fence)
            .filter(|h| !h.lost)
            .map(|h| h.proven_until)
    }

    /// Extends the lease to `ttl` from now; from then on it is not renewed automatically.
    /// Fails with [`LockError::NotHeld`] if the lease is gone, or [`LockError::Store`]
    /// (saying until when the lease is still proven) if the database cannot be reached.
    pub async fn renew(&self, ttl: Duration) -> Result<(), LockError> {
        self.inner.renew(LeaseId(self.fence), ttl).await
    }

    /// Releases now; false if it was not held any more (expired, or released through
    /// `release_all` or an owner sweep).
    pub async fn release(mut self) -> Result<bool, LockError> {
        self.released = true;
        self.inner.release(LeaseId(self.fence)).await
    }
}

impl StoreGuard for PgGuard {
    fn lease(&self) -> LeaseId {
        LeaseId(self.fence)
    }
    fn fence(&self) -> u64 {
        self.fence
    }
    fn resource(&self) -> &str {
        &self.resource
    }
    fn mode(&self) -> LockMode {
        self.mode
    }
}

impl Drop for PgGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let shared = &self.inner.shared;
        if shared.local.lock().guards.remove(&self.fence).is_some() {
            shared.jobs.push(Job::Release {
                fence: self.fence,
                resource: self.resource.clone(),
            });
        }
    }
}
