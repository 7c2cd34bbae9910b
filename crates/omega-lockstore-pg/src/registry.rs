//! [`PgOwnerRegistry`]: the owner registry (SPEC §8) in the store's `owners` table, seen
//! alike by every process. Sweeping an owner deletes its row and its locks in one
//! transaction, regrants their waiters and notifies every process; each process's listener
//! turns the notifications into [`RegistryEvent`]s for its subscribers, so a subscriber sees
//! registrations, sweeps and deregistrations made anywhere.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use omega_sched::{
    HeldLock, LockMode, Metadata, OwnerId, OwnerInfo, OwnerRegistry, RegistryError, RegistryEvent,
};
use tokio::sync::broadcast;

use crate::db::{micros, sql};
use crate::error::Failure;
use crate::outcome::{get, Released};
use crate::store::Inner;

/// The owner registry of a [`PgLockStore`](crate::PgLockStore) (from
/// [`registry`](crate::PgLockStore::registry)). Owners are `OwnerId::Named`: the locks an
/// owner takes through any process's store are the ones freed when it is swept.
#[derive(Clone, Debug)]
pub struct PgOwnerRegistry {
    pub(crate) inner: Arc<Inner>,
}

fn store_error(what: &str, f: &Failure) -> RegistryError {
    RegistryError::Store {
        message: format!("{what}: {}", f.message()).into(),
    }
}

fn name_of(owner: &OwnerId) -> Result<String, RegistryError> {
    match owner {
        OwnerId::Named(n) => Ok(n.to_string()),
        OwnerId::Task(_) => Err(RegistryError::NotRegistered {
            owner: owner.clone(),
        }),
    }
}

impl PgOwnerRegistry {
    async fn ready(&self) -> Result<(), RegistryError> {
        self.inner.start().map_err(|e| RegistryError::Store {
            message: e.to_string().into(),
        })?;
        let sh = &self.inner.shared;
        sh.jobs.settled().await;
        // Events of this process's own calls come back through the listener.
        sh.listener_ready(sh.db.cfg.poll).await;
        Ok(())
    }

    async fn register_now(
        &self,
        name: String,
        metadata: Metadata,
        ttl: Duration,
    ) -> Result<OwnerId, RegistryError> {
        self.ready().await?;
        let sh = &self.inner.shared;
        let meta = serde_json::Value::Object(
            metadata
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        );
        let now = sh.db.times.now_param();
        let row = sh
            .db
            .one(sql::REGISTER_OWNER, &[&name, &meta, &micros(ttl), &now])
            .await
            .map_err(|f| store_error(&format!("registering owner {name:?}"), &f))?;
        let (ok, grants): (bool, Vec<String>) = get(&row, 0)
            .and_then(|ok| Ok((ok, get(&row, 1)?)))
            .map_err(|f| store_error("registering an owner", &f))?;
        sh.deliver(&grants);
        let owner = OwnerId::named(name);
        if ok {
            Ok(owner)
        } else {
            Err(RegistryError::AlreadyRegistered { owner })
        }
    }

    async fn heartbeat_now(&self, owner: OwnerId) -> Result<(), RegistryError> {
        let name = name_of(&owner)?;
        self.ready().await?;
        let sh = &self.inner.shared;
        let now = sh.db.times.now_param();
        let row = sh
            .db
            .one(sql::HEARTBEAT_OWNER, &[&name, &now])
            .await
            .map_err(|f| store_error(&format!("heartbeat of {owner}"), &f))?;
        let (ok, grants): (bool, Vec<String>) = get(&row, 0)
            .and_then(|ok| Ok((ok, get(&row, 1)?)))
            .map_err(|f| store_error(&format!("heartbeat of {owner}"), &f))?;
        sh.deliver(&grants);
        if ok {
            Ok(())
        } else {
            Err(RegistryError::NotRegistered { owner })
        }
    }

    async fn owners_now(&self) -> Result<Vec<OwnerInfo>, RegistryError> {
        self.ready().await?;
        let sh = &self.inner.shared;
        let now = sh.db.times.now_param();
        let rows = sh
            .db
            .rows(sql::LIST_OWNERS, &[&now])
            .await
            .map_err(|f| store_error("listing owners", &f))?;
        let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        let info = |r: &tokio_postgres::Row| -> Result<OwnerInfo, Failure> {
            let name: String = get(r, 0)?;
            let meta: serde_json::Value = get(r, 1)?;
            let held: serde_json::Value = get(r, 5)?;
            Ok(OwnerInfo {
                owner: OwnerId::named(name),
                metadata: match meta {
                    serde_json::Value::Object(m) => m
                        .into_iter()
                        .map(|(k, v)| match v {
                            serde_json::Value::String(s) => (k, s),
                            other => (k, other.to_string()),
                        })
                        .collect(),
                    _ => Metadata::new(),
                },
                ttl: micros(get(r, 2)?),
                since_heartbeat: micros(get(r, 3)?),
                last_heartbeat: get::<SystemTime, _>(r, 4)?,
                held: held
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|h| {
                        Some(HeldLock {
                            resource: h.get("resource")?.as_str()?.into(),
                            mode: if h.get("mode")?.as_str()? == "write" {
                                LockMode::Write
                            } else {
                                LockMode::Read
                            },
                            count: u32::try_from(h.get("count")?.as_u64()?).ok()?,
                        })
                    })
                    .collect(),
            })
        };
        rows.iter()
            .map(info)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|f| store_error("listing owners", &f))
    }

    async fn sweep_now(&self) -> Result<Vec<OwnerId>, RegistryError> {
        self.ready().await?;
        let sh = &self.inner.shared;
        let now = sh.db.times.now_param();
        let row = sh
            .db
            .one(sql::SWEEP_OWNERS, &[&now])
            .await
            .map_err(|f| store_error("sweeping owners", &f))?;
        let (swept, grants): (Vec<String>, Vec<String>) = get(&row, 0)
            .and_then(|s| Ok((s, get(&row, 2)?)))
            .map_err(|f| store_error("sweeping owners", &f))?;
        sh.deliver(&grants);
        Ok(swept.into_iter().map(OwnerId::named).collect())
    }

    async fn deregister_now(&self, owner: OwnerId) -> Result<usize, RegistryError> {
        let name = name_of(&owner)?;
        self.ready().await?;
        let sh = &self.inner.shared;
        let now = sh.db.times.now_param();
        let r = sh
            .db
            .one(sql::DEREGISTER_OWNER, &[&name, &now])
            .await
            .and_then(|row| {
                let n: i32 = get(&row, 0)?;
                Released::from_row(&row).map(|r| (n, r))
            })
            .map_err(|f| store_error(&format!("deregistering {owner}"), &f))?;
        sh.deliver(&r.1.grants);
        if r.0 < 0 {
            return Err(RegistryError::NotRegistered { owner });
        }
        Ok(r.1.n)
    }
}

impl OwnerRegistry for PgOwnerRegistry {
    fn register(
        &self,
        name: &str,
        metadata: Metadata,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<OwnerId, RegistryError>> {
        let me = self.clone();
        let name = name.to_string();
        Box::pin(async move { me.register_now(name, metadata, ttl).await })
    }

    fn heartbeat(&self, owner: &OwnerId) -> BoxFuture<'static, Result<(), RegistryError>> {
        let me = self.clone();
        let owner = owner.clone();
        Box::pin(async move { me.heartbeat_now(owner).await })
    }

    fn owners(&self) -> BoxFuture<'static, Result<Vec<OwnerInfo>, RegistryError>> {
        let me = self.clone();
        Box::pin(async move { me.owners_now().await })
    }

    fn sweep(&self) -> BoxFuture<'static, Result<Vec<OwnerId>, RegistryError>> {
        let me = self.clone();
        Box::pin(async move { me.sweep_now().await })
    }

    fn release_all_for_owner(
        &self,
        owner: &OwnerId,
    ) -> BoxFuture<'static, Result<usize, RegistryError>> {
        let inner = self.inner.clone();
        let owner = owner.clone();
        Box::pin(async move {
            inner
                .release_all(&owner)
                .await
                .map_err(|e| RegistryError::Store {
                    message: e.to_string().into(),
                })
        })
    }

    fn deregister(&self, owner: &OwnerId) -> BoxFuture<'static, Result<usize, RegistryError>> {
        let me = self.clone();
        let owner = owner.clone();
        Box::pin(async move { me.deregister_now(owner).await })
    }

    fn subscribe(&self) -> broadcast::Receiver<RegistryEvent> {
        self.inner.shared.events.subscribe()
    }
}
