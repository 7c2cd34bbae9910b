//! [`LockStore`]: the lock manager's semantics as a trait, so a shared store (PostgreSQL,
//! SPEC §8) can stand in for the in-memory [`LockManager`] and pass the same behavioural
//! suite (`tests/locks_store.rs` is written against this trait).
//!
//! Every method returns a boxed `'static` future, so a networked store can implement it;
//! the in-memory manager's futures complete at once except `acquire`. Guards release on
//! drop (a networked store may do so in the background).

use std::sync::Arc;
use std::time::Duration;

use futures::future::{self, BoxFuture};

use super::error::LockError;
use super::guard::LockGuard;
use super::manager::{HolderInfo, LockManager};
use super::types::{LeaseId, LockMode, OwnerId};

/// What to acquire, for [`LockStore`]: one or several resources, an owner (`None`: the
/// current task), a timeout and a lease TTL.
#[derive(Clone, Debug, Default)]
pub struct LockSpec {
    /// The resources and modes (several = all or nothing).
    pub items: Vec<(Arc<str>, LockMode)>,
    /// The owner; `None` = the current task.
    pub owner: Option<OwnerId>,
    /// Give up after this long.
    pub timeout: Option<Duration>,
    /// Lease TTL.
    pub ttl: Option<Duration>,
}

impl LockSpec {
    /// One resource.
    pub fn new(name: &str, mode: LockMode) -> Self {
        LockSpec {
            items: vec![(name.into(), mode)],
            ..Default::default()
        }
    }

    /// A batch.
    pub fn batch(items: &[(&str, LockMode)]) -> Self {
        LockSpec {
            items: items.iter().map(|(n, m)| (Arc::from(*n), *m)).collect(),
            ..Default::default()
        }
    }

    /// Sets the owner.
    pub fn owner(mut self, owner: impl Into<OwnerId>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Sets the lease TTL.
    pub fn ttl(mut self, d: Duration) -> Self {
        self.ttl = Some(d);
        self
    }
}

/// A grant held through a [`LockStore`]; released when dropped.
pub trait StoreGuard: Send + 'static {
    /// Its lease id.
    fn lease(&self) -> LeaseId;
    /// Its fencing token (strictly increasing per resource).
    fn fence(&self) -> u64;
    /// The resource.
    fn resource(&self) -> &str;
    /// The mode.
    fn mode(&self) -> LockMode;
}

/// The lock semantics of SPEC §4, independent of where the table lives.
pub trait LockStore: Send + Sync + 'static {
    /// The guard type.
    type Guard: StoreGuard;

    /// Waits for every item of `spec` (all or nothing). One guard per distinct name.
    fn acquire(&self, spec: LockSpec) -> BoxFuture<'static, Result<Vec<Self::Guard>, LockError>>;
    /// Takes every item now or fails with [`LockError::Conflict`].
    fn try_acquire(
        &self,
        spec: LockSpec,
    ) -> BoxFuture<'static, Result<Vec<Self::Guard>, LockError>>;
    /// Extends a lease to `ttl` from now.
    fn renew(&self, lease: LeaseId, ttl: Duration) -> BoxFuture<'static, Result<(), LockError>>;
    /// Releases a lease; false if not held.
    fn release(&self, lease: LeaseId) -> BoxFuture<'static, bool>;
    /// Releases everything `owner` holds; returns how many grants.
    fn release_all(&self, owner: OwnerId) -> BoxFuture<'static, usize>;
    /// Frees expired leases; returns how many.
    fn sweep(&self) -> BoxFuture<'static, usize>;
    /// Expired leases not swept yet.
    fn stale_count(&self) -> BoxFuture<'static, usize>;
    /// Who holds `resource`.
    fn holders(&self, resource: &str) -> BoxFuture<'static, Vec<HolderInfo>>;
}

impl StoreGuard for LockGuard {
    fn lease(&self) -> LeaseId {
        LockGuard::lease(self)
    }
    fn fence(&self) -> u64 {
        LockGuard::fence(self)
    }
    fn resource(&self) -> &str {
        LockGuard::resource(self)
    }
    fn mode(&self) -> LockMode {
        LockGuard::mode(self)
    }
}

fn build(mgr: &LockManager, spec: LockSpec) -> super::acquire::AcquireAll {
    let mut a = super::acquire::AcquireAll::new(mgr.clone(), spec.items.into_iter().collect());
    if let Some(o) = spec.owner {
        a = a.owner(o);
    }
    if let Some(d) = spec.timeout {
        a = a.timeout(d);
    }
    if let Some(d) = spec.ttl {
        a = a.ttl(d);
    }
    a
}

impl LockStore for LockManager {
    type Guard = LockGuard;

    fn acquire(&self, spec: LockSpec) -> BoxFuture<'static, Result<Vec<LockGuard>, LockError>> {
        Box::pin(build(self, spec))
    }

    fn try_acquire(&self, spec: LockSpec) -> BoxFuture<'static, Result<Vec<LockGuard>, LockError>> {
        // Resolved on first poll, inside the caller's task (the default owner).
        let a = build(self, spec);
        Box::pin(async move { a.try_now() })
    }

    fn renew(&self, lease: LeaseId, ttl: Duration) -> BoxFuture<'static, Result<(), LockError>> {
        Box::pin(future::ready(
            LockManager::renew(self, lease, ttl).map(|_| ()),
        ))
    }

    fn release(&self, lease: LeaseId) -> BoxFuture<'static, bool> {
        Box::pin(future::ready(self.release_lease(lease)))
    }

    fn release_all(&self, owner: OwnerId) -> BoxFuture<'static, usize> {
        Box::pin(future::ready(LockManager::release_all(self, &owner)))
    }

    fn sweep(&self) -> BoxFuture<'static, usize> {
        Box::pin(future::ready(LockManager::sweep(self)))
    }

    fn stale_count(&self) -> BoxFuture<'static, usize> {
        Box::pin(future::ready(LockManager::stale_count(self)))
    }

    fn holders(&self, resource: &str) -> BoxFuture<'static, Vec<HolderInfo>> {
        Box::pin(future::ready(LockManager::holders(self, resource)))
    }
}

/// A [`LockStore`] behind a pointer: the object-safe face of every store, so a scheduler,
/// the Lisp runtime or a host can hold "some store" (in memory, PostgreSQL, …) as
/// `Arc<dyn DynLockStore>` and choose it at run time. Every [`LockStore`] is one (blanket
/// implementation); guards come boxed. `Arc<dyn DynLockStore>` is itself a [`LockStore`]
/// (with `Box<dyn StoreGuard>` guards), so generic code and the behavioural suite accept it.
///
/// ```
/// use std::sync::Arc;
/// use omega_sched::{DynLockStore, LockMode, LockSpec, LockStore, Scheduler, StoreGuard};
///
/// let sched = Scheduler::new();
/// let store: Arc<dyn DynLockStore> = Arc::new(sched.locks().clone());
/// sched.block_on(async move {
///     let g = store
///         .acquire(LockSpec::new("plan:42", LockMode::Write).owner("agent-1"))
///         .await
///         .unwrap();
///     assert_eq!(g[0].resource(), "plan:42");
///     assert_eq!(store.holders("plan:42").await.len(), 1);
/// });
/// ```
pub trait DynLockStore: Send + Sync + std::fmt::Debug + 'static {
    /// [`LockStore::acquire`], guards boxed.
    fn acquire_boxed(
        &self,
        spec: LockSpec,
    ) -> BoxFuture<'static, Result<Vec<Box<dyn StoreGuard>>, LockError>>;
    /// [`LockStore::try_acquire`], guards boxed.
    fn try_acquire_boxed(
        &self,
        spec: LockSpec,
    ) -> BoxFuture<'static, Result<Vec<Box<dyn StoreGuard>>, LockError>>;
    /// [`LockStore::renew`].
    fn renew_dyn(&self, lease: LeaseId, ttl: Duration)
        -> BoxFuture<'static, Result<(), LockError>>;
    /// [`LockStore::release`].
    fn release_dyn(&self, lease: LeaseId) -> BoxFuture<'static, bool>;
    /// [`LockStore::release_all`].
    fn release_all_dyn(&self, owner: OwnerId) -> BoxFuture<'static, usize>;
    /// [`LockStore::sweep`].
    fn sweep_dyn(&self) -> BoxFuture<'static, usize>;
    /// [`LockStore::stale_count`].
    fn stale_count_dyn(&self) -> BoxFuture<'static, usize>;
    /// [`LockStore::holders`].
    fn holders_dyn(&self, resource: &str) -> BoxFuture<'static, Vec<HolderInfo>>;
}

fn boxed<G: StoreGuard>(
    f: BoxFuture<'static, Result<Vec<G>, LockError>>,
) -> BoxFuture<'static, Result<Vec<Box<dyn StoreGuard>>, LockError>> {
    use futures::FutureExt;
    f.map(|r| {
        r.map(|gs| {
            gs.into_iter()
                .map(|g| Box::new(g) as Box<dyn StoreGuard>)
                .collect()
        })
    })
    .boxed()
}

impl<S: LockStore + std::fmt::Debug> DynLockStore for S {
    fn acquire_boxed(
        &self,
        spec: LockSpec,
    ) -> BoxFuture<'static, Result<Vec<Box<dyn StoreGuard>>, LockError>> {
        boxed(LockStore::acquire(self, spec))
    }
    fn try_acquire_boxed(
        &self,
        spec: LockSpec,
    ) -> BoxFuture<'static, Result<Vec<Box<dyn StoreGuard>>, LockError>> {
        boxed(LockStore::try_acquire(self, spec))
    }
    fn renew_dyn(
        &self,
        lease: LeaseId,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<(), LockError>> {
        LockStore::renew(self, lease, ttl)
    }
    fn release_dyn(&self, lease: LeaseId) -> BoxFuture<'static, bool> {
        LockStore::release(self, lease)
    }
    fn release_all_dyn(&self, owner: OwnerId) -> BoxFuture<'static, usize> {
        LockStore::release_all(self, owner)
    }
    fn sweep_dyn(&self) -> BoxFuture<'static, usize> {
        LockStore::sweep(self)
    }
    fn stale_count_dyn(&self) -> BoxFuture<'static, usize> {
        LockStore::stale_count(self)
    }
    fn holders_dyn(&self, resource: &str) -> BoxFuture<'static, Vec<HolderInfo>> {
        LockStore::holders(self, resource)
    }
}

impl StoreGuard for Box<dyn StoreGuard> {
    fn lease(&self) -> LeaseId {
        (**self).lease()
    }
    fn fence(&self) -> u64 {
        (**self).fence()
    }
    fn resource(&self) -> &str {
        (**self).resource()
    }
    fn mode(&self) -> LockMode {
        (**self).mode()
    }
}

impl LockStore for Arc<dyn DynLockStore> {
    type Guard = Box<dyn StoreGuard>;

    fn acquire(&self, spec: LockSpec) -> BoxFuture<'static, Result<Vec<Self::Guard>, LockError>> {
        (**self).acquire_boxed(spec)
    }
    fn try_acquire(
        &self,
        spec: LockSpec,
    ) -> BoxFuture<'static, Result<Vec<Self::Guard>, LockError>> {
        (**self).try_acquire_boxed(spec)
    }
    fn renew(&self, lease: LeaseId, ttl: Duration) -> BoxFuture<'static, Result<(), LockError>> {
        (**self).renew_dyn(lease, ttl)
    }
    fn release(&self, lease: LeaseId) -> BoxFuture<'static, bool> {
        (**self).release_dyn(lease)
    }
    fn release_all(&self, owner: OwnerId) -> BoxFuture<'static, usize> {
        (**self).release_all_dyn(owner)
    }
    fn sweep(&self) -> BoxFuture<'static, usize> {
        (**self).sweep_dyn()
    }
    fn stale_count(&self) -> BoxFuture<'static, usize> {
        (**self).stale_count_dyn()
    }
    fn holders(&self, resource: &str) -> BoxFuture<'static, Vec<HolderInfo>> {
        (**self).holders_dyn(resource)
    }
}
