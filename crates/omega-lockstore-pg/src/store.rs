//! [`PgLockStore`]: the public handle, and [`LockStore`] on PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use omega_sched::{HolderInfo, LeaseId, LockError, LockMode, LockSpec, LockStore, OwnerId};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::PgStoreConfig;
use crate::db::{micros, sql, Db};
use crate::error::{ConfigError, Failure};
use crate::guard::PgGuard;
use crate::outcome::{get, Released};
use crate::registry::PgOwnerRegistry;
use crate::shared::Shared;

/// What handles and guards keep alive; dropping the last one stops the background tasks.
#[derive(Debug)]
pub(crate) struct Inner {
    pub shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Omega's locks in PostgreSQL, shared by every process (and host) that uses the same
/// database and schema: a [`LockStore`] with the semantics of the in-memory manager —
/// read/write modes, re-entrancy per owner, FIFO across processes, all-or-nothing batches,
/// leases, fencing tokens, deadlock detection — plus an owner registry
/// ([`registry`](Self::registry)). Cheap to clone (a handle).
///
/// Nothing connects until the first operation, which also creates or migrates the schema
/// and starts the background tasks (job worker, listener, keepalive and sweeper) on the
/// current tokio runtime: use a store inside one runtime.
///
/// ```no_run
/// use omega_lockstore_pg::{PgLockStore, PgStoreConfig};
/// use omega_sched::{LockMode, LockSpec, LockStore, StoreGuard};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PgLockStore::new(PgStoreConfig::new("postgres://postgres@127.0.0.1/test")?)?;
/// let g = store
///     .acquire(LockSpec::new("report:42", LockMode::Write).owner("worker-1"))
///     .await?
///     .remove(0);
/// // Writes downstream carry g.fence(); a store that saw a higher fence refuses them.
/// println!("holding {} with fence {}", g.resource(), g.fence());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PgLockStore {
    pub(crate) inner: Arc<Inner>,
}

impl PgLockStore {
    /// A store for `cfg`. Fails only on invalid settings; nothing connects yet.
    pub fn new(cfg: PgStoreConfig) -> Result<PgLockStore, ConfigError> {
        let session = Uuid::new_v4();
        let db = Db::new(cfg, session)?;
        Ok(PgLockStore {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared::new(db, session)),
                cancel: CancellationToken::new(),
            }),
        })
    }

    /// A store for `cfg`, connected (and its schema migrated) before it is returned; one
    /// attempt, so an unreachable server is reported at once.
    pub async fn connect(cfg: PgStoreConfig) -> Result<PgLockStore, LockError> {
        let url = cfg.url().to_string();
        let store = PgLockStore::new(cfg).map_err(|e| LockError::Store {
            message: e.to_string().into(),
        })?;
        store.inner.start()?;
        store
            .inner
            .shared
            .db
            .ping()
            .await
            .map_err(|f| f.lock_error(&format!("connecting to {url}")))?;
        Ok(store)
    }

    /// This store instance's id: it tags the rows it writes (`session` column) and names its
    /// connections (`application_name` = `omega-lockstore <id>`, the listener's with ` listener`).
    pub fn session(&self) -> Uuid {
        self.inner.shared.session
    }

    /// The settings.
    pub fn config(&self) -> &PgStoreConfig {
        &self.inner.shared.db.cfg
    }

    /// The owner registry in the same database and schema.
    pub fn registry(&self) -> PgOwnerRegistry {
        PgOwnerRegistry {
            inner: self.inner.clone(),
        }
    }

    /// True while the listener connection is up (hand-offs arrive by notification).
    pub fn is_listening(&self) -> bool {
        self.inner.shared.listening.borrow().up
    }

    /// Releases everything this store instance holds or waits for, at once (an orderly
    /// shutdown; otherwise leases run out on their own), and refuses acquisitions from
    /// then on: waits in progress fail. Returns how many grants were released.
    pub async fn close(&self) -> Result<usize, LockError> {
        let sh = &self.inner.shared;
        self.inner.start()?;
        sh.close();
        sh.jobs.settled().await;
        let now = sh.db.times.now_param();
        let r = sh
            .db
            .one(sql::RELEASE_SESSION, &[&sh.session, &now])
            .await
            .and_then(|row| Released::from_row(&row))
            .map_err(|f| f.lock_error("releasing this store's locks"))?;
        sh.deliver(&r.grants);
        sh.local
            .lock()
            .guards
            .values_mut()
            .for_each(|h| h.lost = true);
        Ok(r.n)
    }
}

impl Inner {
    /// Starts the background tasks on first use.
    pub fn start(&self) -> Result<(), LockError> {
        self.shared
            .start(&self.cancel)
            .map_err(|m| LockError::Store { message: m.into() })
    }

    pub async fn renew(&self, lease: LeaseId, ttl: Duration) -> Result<(), LockError> {
        let sh = &self.shared;
        self.start()?;
        sh.jobs.settled().await;
        let sent = Instant::now();
        let now = sh.db.times.now_param();
        let fence = lease.0 as i64;
        let resource: Option<String> = sh
            .local
            .lock()
            .guards
            .get(&lease.0)
            .map(|h| h.resource.to_string());
        let r = sh
            .db
            .one(sql::RENEW, &[&fence, &resource, &micros(ttl), &now])
            .await
            .and_then(|row| {
                row.try_get::<_, bool>(0)
                    .map_err(|e| Failure::Fatal(e.to_string()))
            });
        let mut local = sh.local.lock();
        match r {
            Ok(true) => {
                if let Some(h) = local.guards.get_mut(&lease.0) {
                    h.auto = false;
                    h.ttl = ttl;
                    h.proven_until = sent + ttl;
                    h.lost = false;
                }
                Ok(())
            }
            Ok(false) => {
                if let Some(h) = local.guards.get_mut(&lease.0) {
                    h.lost = true;
                }
                Err(LockError::NotHeld { lease })
            }
            Err(f) => {
                let proven = local
                    .guards
                    .get(&lease.0)
                    .filter(|h| !h.lost)
                    .map(|h| h.proven_until.saturating_duration_since(Instant::now()));
                let tail = match proven {
                    Some(d) if !d.is_zero() => {
                        format!("; the lease is proven for {d:?} more, then must be presumed lost")
                    }
                    _ => "; the lease can no longer be proven held".to_string(),
                };
                Err(LockError::Store {
                    message: format!("renewing {lease}: {}{tail}", f.message()).into(),
                })
            }
        }
    }

    pub async fn release(&self, lease: LeaseId) -> Result<bool, LockError> {
        let sh = &self.shared;
        self.start()?;
        let held = sh.local.lock().guards.remove(&lease.0);
        sh.jobs.settled().await;
        let fences = vec![lease.0 as i64];
        // Unknown resource (a lease id without its guard here): the server scans.
        let resources = held.map(|h| vec![h.resource.to_string()]);
        let now = sh.db.times.now_param();
        let r = sh
            .db
            .one(sql::RELEASE, &[&fences, &resources, &now])
            .await
            .and_then(|row| Released::from_row(&row))
            .map_err(|f| f.lock_error(&format!("releasing {lease}")))?;
        sh.deliver(&r.grants);
        Ok(r.n > 0)
    }

    pub async fn release_all(&self, owner: &OwnerId) -> Result<usize, LockError> {
        let sh = &self.shared;
        self.start()?;
        sh.jobs.settled().await;
        let who = sh.encode_owner(owner);
        let now = sh.db.times.now_param();
        let r = sh
            .db
            .one(sql::RELEASE_OWNER, &[&who, &now])
            .await
            .and_then(|row| Released::from_row(&row))
            .map_err(|f| f.lock_error(&format!("releasing the locks of {owner}")))?;
        sh.deliver(&r.grants);
        sh.local
            .lock()
            .guards
            .values_mut()
            .filter(|h| h.owner == who)
            .for_each(|h| h.lost = true);
        Ok(r.n)
    }

    pub async fn sweep(&self) -> Result<usize, LockError> {
        let sh = &self.shared;
        self.start()?;
        sh.jobs.settled().await;
        let now = sh.db.times.now_param();
        let r = sh
            .db
            .one(sql::SWEEP, &[&now])
            .await
            .and_then(|row| Released::from_row(&row))
            .map_err(|f| f.lock_error("sweeping expired leases"))?;
        sh.deliver(&r.grants);
        Ok(r.n)
    }

    pub async fn stale_count(&self) -> Result<usize, LockError> {
        let sh = &self.shared;
        self.start()?;
        sh.jobs.settled().await;
        let now = sh.db.times.now_param();
        let row = sh
            .db
            .one(sql::STALE_COUNT, &[&now])
            .await
            .map_err(|f| f.lock_error("counting stale leases"))?;
        let n: i64 = get(&row, 0).map_err(|f| f.lock_error("counting stale leases"))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    pub async fn holders(&self, resource: &str) -> Result<Vec<HolderInfo>, LockError> {
        let sh = &self.shared;
        self.start()?;
        sh.jobs.settled().await;
        let now = sh.db.times.now_param();
        let rows = sh
            .db
            .rows(sql::HOLDERS, &[&resource, &now])
            .await
            .map_err(|f| f.lock_error(&format!("listing the holders of {resource:?}")))?;
        rows.iter()
            .map(|r| {
                let owner: String = get(r, 0)?;
                let mode: String = get(r, 1)?;
                let n: i64 = get(r, 2)?;
                Ok(HolderInfo {
                    owner: sh.decode_owner(&owner),
                    mode: if mode == "write" {
                        LockMode::Write
                    } else {
                        LockMode::Read
                    },
                    count: u32::try_from(n).unwrap_or(u32::MAX),
                })
            })
            .collect::<Result<Vec<_>, Failure>>()
            .map_err(|f| f.lock_error(&format!("listing the holders of {resource:?}")))
    }
}

/// The trait's methods that cannot fail return a neutral value when the database is out of
/// reach (and log why): `release` → false, `release_all`/`sweep`/`stale_count` → 0,
/// `holders` → empty. The fallible ones (`acquire`, `try_acquire`, `renew`) return
/// [`LockError::Store`].
impl LockStore for PgLockStore {
    type Guard = PgGuard;

    fn acquire(&self, spec: LockSpec) -> BoxFuture<'static, Result<Vec<PgGuard>, LockError>> {
        Box::pin(crate::acquire::acquire(self.inner.clone(), spec, true))
    }

    fn try_acquire(&self, spec: LockSpec) -> BoxFuture<'static, Result<Vec<PgGuard>, LockError>> {
        Box::pin(crate::acquire::acquire(self.inner.clone(), spec, false))
    }

    fn renew(&self, lease: LeaseId, ttl: Duration) -> BoxFuture<'static, Result<(), LockError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.renew(lease, ttl).await })
    }

    fn release(&self, lease: LeaseId) -> BoxFuture<'static, bool> {
        let inner = self.inner.clone();
        Box::pin(async move { logged(inner.release(lease).await, false) })
    }

    fn release_all(&self, owner: OwnerId) -> BoxFuture<'static, usize> {
        let inner = self.inner.clone();
        Box::pin(async move { logged(inner.release_all(&owner).await, 0) })
    }

    fn sweep(&self) -> BoxFuture<'static, usize> {
        let inner = self.inner.clone();
        Box::pin(async move { logged(inner.sweep().await, 0) })
    }

    fn stale_count(&self) -> BoxFuture<'static, usize> {
        let inner = self.inner.clone();
        Box::pin(async move { logged(inner.stale_count().await, 0) })
    }

    fn holders(&self, resource: &str) -> BoxFuture<'static, Vec<HolderInfo>> {
        let inner = self.inner.clone();
        let resource = resource.to_string();
        Box::pin(async move { logged(inner.holders(&resource).await, Vec::new()) })
    }
}

fn logged<T>(r: Result<T, LockError>, neutral: T) -> T {
    r.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "lock store operation failed");
        neutral
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outside a tokio runtime the store cannot start its tasks: a clear error, no panic.
    #[test]
    fn outside_a_runtime_acquire_fails_clearly() {
        let store = PgLockStore::new(
            PgStoreConfig::new("postgres://nobody@127.0.0.1:9/none").expect("a valid URL"),
        )
        .expect("valid settings");
        let e = futures::executor::block_on(
            store.acquire(LockSpec::new("r", LockMode::Write).owner("o")),
        )
        .expect_err("no runtime");
        assert_eq!(e.kind(), "lock-store");
        assert!(e.to_string().contains("inside a tokio runtime"), "{e}");
        // Nothing is held, nothing hangs: the trait's infallible calls answer neutrally.
        assert_eq!(futures::executor::block_on(store.stale_count()), 0);
    }
}
