//! [`LockGuard`]: one grant, released when dropped.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::error::LockError;
use super::manager::LockManager;
use super::state::Granted;
use super::types::{LeaseId, LockMode, OwnerId};

/// One grant of one resource. Dropping it releases that grant (re-entrant grants are
/// counted: the resource is free once every guard of its owner is gone).
///
/// A guard whose lease expired and was swept, or whose owner was released by
/// [`LockManager::release_all`] (or by its task ending), no longer holds anything: dropping
/// it is a no-op, and [`is_held`](Self::is_held) says so.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct LockGuard {
    mgr: LockManager,
    fence: u64,
    resource: Arc<str>,
    mode: LockMode,
    owner: OwnerId,
    released: bool,
}

impl LockGuard {
    pub(crate) fn new(mgr: LockManager, g: Granted, owner: OwnerId) -> Self {
        LockGuard {
            mgr,
            fence: g.fence,
            resource: g.resource,
            mode: g.mode,
            owner,
            released: false,
        }
    }

    /// The resource's name.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The mode granted.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// The owner the grant belongs to.
    pub fn owner(&self) -> &OwnerId {
        &self.owner
    }

    /// The fencing token: strictly greater than every earlier grant's on this resource, so
    /// a store can refuse writes carrying an older token (a stale holder).
    pub fn fence(&self) -> u64 {
        self.fence
    }

    /// This grant's lease id (for [`LockManager::renew`]).
    pub fn lease(&self) -> LeaseId {
        LeaseId(self.fence)
    }

    /// When the lease expires (`None`: no TTL, or not held any more).
    pub fn expires_at(&self) -> Option<Instant> {
        self.mgr.expires_at(self.lease())
    }

    /// True while the grant is held.
    pub fn is_held(&self) -> bool {
        !self.released && self.mgr.is_held(self.lease())
    }

    /// Extends the lease to `ttl` from now (see [`LockManager::renew`]).
    pub fn renew(&self, ttl: Duration) -> Result<Instant, LockError> {
        self.mgr.renew(self.lease(), ttl)
    }

    /// Releases now. False if it was not held any more (expired and swept, or released
    /// through `release_all`).
    pub fn release(mut self) -> bool {
        self.released = true;
        self.mgr.release_fence(self.fence)
    }
}

impl From<&LockGuard> for LeaseId {
    fn from(g: &LockGuard) -> Self {
        g.lease()
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if !self.released {
            self.mgr.release_fence(self.fence);
        }
    }
}
