//! The owner registry (SPEC §8): host-level lock owners — agents, sessions, workers —
//! register with a name and metadata, heartbeat, and are listed with their last heartbeat
//! and the locks they hold. An owner silent for longer than its TTL is **swept**: removed,
//! every lock it held released (so its waiters proceed), and a [`RegistryEvent::Swept`]
//! sent. [`OwnerRegistry::release_all_for_owner`] frees an owner's locks on an explicit
//! shutdown; [`OwnerRegistry::deregister`] also removes it.
//!
//! [`OwnerRegistry`] is the trait (a shared store implements it too, e.g. PostgreSQL in
//! `omega-lockstore-pg`); [`MemoryOwnerRegistry`] keeps the registry in this process over a
//! [`LockManager`], through its public API. [`spawn_heartbeat`] and [`spawn_sweeper`] run
//! the two periodic duties as tokio tasks that stop when their handle is dropped.
//!
//! # Invariants (of [`MemoryOwnerRegistry`])
//!
//! 1. An owner is registered at most once at a time; registering a name whose owner is
//!    alive fails with [`RegistryError::AlreadyRegistered`].
//! 2. An owner whose last heartbeat is `ttl` or more ago is dead: every operation sweeps
//!    dead owners first, so a late heartbeat never revives one (it gets
//!    [`RegistryError::NotRegistered`]) and a listing never shows one.
//! 3. The table's mutex is never held while locks are released or events are sent.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::{self, BoxFuture};
use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::manager::LockManager;
use super::types::{LockMode, OwnerId};

/// An owner's metadata: free-form string pairs (host, pid, role, …).
pub type Metadata = BTreeMap<String, String>;

/// How many registry events a subscriber may fall behind before it loses the oldest.
pub const REGISTRY_EVENT_CAPACITY: usize = 1024;

/// One lock an owner holds, in an [`OwnerInfo`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldLock {
    /// The resource.
    pub resource: Arc<str>,
    /// The strongest mode held.
    pub mode: LockMode,
    /// Grants held on it (re-entrant acquisitions count).
    pub count: u32,
}

/// A registered owner, as listed by [`OwnerRegistry::owners`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerInfo {
    /// The owner (`OwnerId::Named(name)`).
    pub owner: OwnerId,
    /// What it registered with.
    pub metadata: Metadata,
    /// Silence longer than this gets it swept.
    pub ttl: Duration,
    /// How long ago its last heartbeat (or its registration) was, when listed.
    pub since_heartbeat: Duration,
    /// The wall-clock time of that heartbeat.
    pub last_heartbeat: SystemTime,
    /// The locks it holds, by resource name.
    pub held: Vec<HeldLock>,
}

/// What happened to an owner; sent to every [`OwnerRegistry::subscribe`] receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryEvent {
    /// It registered.
    Registered {
        /// The owner.
        owner: OwnerId,
    },
    /// It stayed silent past its TTL: removed, its locks released.
    Swept {
        /// The owner.
        owner: OwnerId,
        /// How many grants were released.
        released: usize,
    },
    /// It deregistered: removed, its locks released.
    Deregistered {
        /// The owner.
        owner: OwnerId,
        /// How many grants were released.
        released: usize,
    },
}

/// A registry operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A live owner already has that name.
    #[error("{owner} is already registered and alive; pick another name or wait for its TTL")]
    AlreadyRegistered {
        /// The owner.
        owner: OwnerId,
    },
    /// Heartbeat or deregistration of an owner that is not registered.
    #[error(
        "{owner} is not registered (never registered, deregistered, or swept after its TTL \
         passed without a heartbeat)"
    )]
    NotRegistered {
        /// The owner.
        owner: OwnerId,
    },
    /// The shared store behind the registry could not do it.
    #[error("owner registry store: {message}")]
    Store {
        /// What was attempted, and the store's error.
        message: Arc<str>,
    },
}

impl RegistryError {
    /// `NotRegistered`: the owner is gone (a heartbeat loop should stop).
    pub fn is_not_registered(&self) -> bool {
        matches!(self, RegistryError::NotRegistered { .. })
    }
}

/// Owners with heartbeats and TTLs, whose locks are freed when they go silent (SPEC §8).
pub trait OwnerRegistry: Send + Sync + 'static {
    /// Registers `name` (the owner `OwnerId::Named(name)`) with its metadata and TTL.
    fn register(
        &self,
        name: &str,
        metadata: Metadata,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<OwnerId, RegistryError>>;
    /// Records a heartbeat: the owner lives another `ttl`.
    fn heartbeat(&self, owner: &OwnerId) -> BoxFuture<'static, Result<(), RegistryError>>;
    /// Every live owner, by name, with its last heartbeat and held locks.
    fn owners(&self) -> BoxFuture<'static, Result<Vec<OwnerInfo>, RegistryError>>;
    /// Sweeps owners silent past their TTL: removes them and releases their locks. Returns
    /// the owners swept.
    fn sweep(&self) -> BoxFuture<'static, Result<Vec<OwnerId>, RegistryError>>;
    /// Releases every lock `owner` holds (explicit shutdown); it stays registered. Returns
    /// how many grants were released.
    fn release_all_for_owner(
        &self,
        owner: &OwnerId,
    ) -> BoxFuture<'static, Result<usize, RegistryError>>;
    /// Releases everything `owner` holds and removes it. Returns how many grants.
    fn deregister(&self, owner: &OwnerId) -> BoxFuture<'static, Result<usize, RegistryError>>;
    /// Registrations, sweeps and deregistrations from now on.
    fn subscribe(&self) -> broadcast::Receiver<RegistryEvent>;
}

#[derive(Debug)]
struct Entry {
    metadata: Metadata,
    ttl: Duration,
    last: Instant,
    last_wall: SystemTime,
}

#[derive(Debug)]
struct RegistryInner {
    locks: LockManager,
    owners: Mutex<HashMap<OwnerId, Entry>>,
    /// Made by the first `subscribe` (a channel's slots are allocated and touched when it is
    /// made; nothing sent before anyone subscribes is kept anyway).
    events: std::sync::OnceLock<broadcast::Sender<RegistryEvent>>,
}

/// The owner registry of one process, over a [`LockManager`] (tokio's clock: paused-clock
/// tests see exact expiries). Cheap to clone (a handle).
///
/// ```
/// use std::time::Duration;
/// use omega_sched::{LockMode, MemoryOwnerRegistry, OwnerRegistry, Scheduler};
///
/// let sched = Scheduler::new();
/// let reg = MemoryOwnerRegistry::new(sched.locks().clone());
/// sched.block_on(async {
///     let me = reg.register("agent-1", Default::default(), Duration::from_secs(30)).await.unwrap();
///     let _g = sched.locks().acquire("plan:42", LockMode::Write).owner(me.clone()).await.unwrap();
///     let listed = reg.owners().await.unwrap();
///     assert_eq!(listed[0].held[0].resource.as_ref(), "plan:42");
///     assert_eq!(reg.deregister(&me).await.unwrap(), 1); // its lock is released
/// });
/// ```
#[derive(Clone, Debug)]
pub struct MemoryOwnerRegistry {
    inner: Arc<RegistryInner>,
}

impl MemoryOwnerRegistry {
    /// A registry whose swept owners' locks are released in `locks`.
    pub fn new(locks: LockManager) -> Self {
        MemoryOwnerRegistry {
            inner: Arc::new(RegistryInner {
                locks,
                owners: Mutex::new(HashMap::new()),
                events: std::sync::OnceLock::new(),
            }),
        }
    }

    fn send(&self, e: RegistryEvent) {
        // No channel or an error: nobody subscribes.
        if let Some(events) = self.inner.events.get() {
            let _ = events.send(e);
        }
    }

    /// Removes dead owners (I2), then releases their locks and reports them, unlocked (I3).
    fn sweep_now(&self) -> Vec<OwnerId> {
        let now = Instant::now();
        let dead: Vec<OwnerId> = {
            let mut owners = self.inner.owners.lock();
            let dead: Vec<OwnerId> = owners
                .iter()
                .filter(|(_, e)| now.saturating_duration_since(e.last) >= e.ttl)
                .map(|(o, _)| o.clone())
                .collect();
            for o in &dead {
                owners.remove(o);
            }
            dead
        };
        for o in &dead {
            let released = self.inner.locks.release_all(o);
            self.send(RegistryEvent::Swept {
                owner: o.clone(),
                released,
            });
        }
        dead
    }

    fn held_by(&self, owner: &OwnerId) -> Vec<HeldLock> {
        let mut held = Vec::new();
        for r in self.inner.locks.stats().resources {
            if r.holders == 0 {
                continue;
            }
            for h in self.inner.locks.holders(&r.name) {
                if &h.owner == owner {
                    held.push(HeldLock {
                        resource: r.name.as_str().into(),
                        mode: h.mode,
                        count: h.count,
                    });
                }
            }
        }
        held
    }

    fn register_now(
        &self,
        name: &str,
        metadata: Metadata,
        ttl: Duration,
    ) -> Result<OwnerId, RegistryError> {
        self.sweep_now();
        let owner = OwnerId::named(name);
        {
            let mut owners = self.inner.owners.lock();
            if owners.contains_key(&owner) {
                return Err(RegistryError::AlreadyRegistered { owner });
            }
            owners.insert(
                owner.clone(),
                Entry {
                    metadata,
                    ttl,
                    last: Instant::now(),
                    last_wall: SystemTime::now(),
                },
            );
        }
        self.send(RegistryEvent::Registered {
            owner: owner.clone(),
        });
        Ok(owner)
    }

    fn heartbeat_now(&self, owner: &OwnerId) -> Result<(), RegistryError> {
        self.sweep_now();
        match self.inner.owners.lock().get_mut(owner) {
            Some(e) => {
                e.last = Instant::now();
                e.last_wall = SystemTime::now();
                Ok(())
            }
            None => Err(RegistryError::NotRegistered {
                owner: owner.clone(),
            }),
        }
    }

    fn owners_now(&self) -> Vec<OwnerInfo> {
        self.sweep_now();
        let now = Instant::now();
        let mut list: Vec<OwnerInfo> = self
            .inner
            .owners
            .lock()
            .iter()
            .map(|(o, e)| OwnerInfo {
                owner: o.clone(),
                metadata: e.metadata.clone(),
                ttl: e.ttl,
                since_heartbeat: now.saturating_duration_since(e.last),
                last_heartbeat: e.last_wall,
                held: Vec::new(),
            })
            .collect();
        list.sort_by(|a, b| a.owner.cmp(&b.owner));
        for info in &mut list {
            info.held = self.held_by(&info.owner);
        }
        list
    }

    fn deregister_now(&self, owner: &OwnerId) -> Result<usize, RegistryError> {
        self.sweep_now();
        if self.inner.owners.lock().remove(owner).is_none() {
            return Err(RegistryError::NotRegistered {
                owner: owner.clone(),
            });
        }
        let released = self.inner.locks.release_all(owner);
        self.send(RegistryEvent::Deregistered {
            owner: owner.clone(),
            released,
        });
        Ok(released)
    }
}

impl OwnerRegistry for MemoryOwnerRegistry {
    fn register(
        &self,
        name: &str,
        metadata: Metadata,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<OwnerId, RegistryError>> {
        Box::pin(future::ready(self.register_now(name, metadata, ttl)))
    }

    fn heartbeat(&self, owner: &OwnerId) -> BoxFuture<'static, Result<(), RegistryError>> {
        Box::pin(future::ready(self.heartbeat_now(owner)))
    }

    fn owners(&self) -> BoxFuture<'static, Result<Vec<OwnerInfo>, RegistryError>> {
        Box::pin(future::ready(Ok(self.owners_now())))
    }

    fn sweep(&self) -> BoxFuture<'static, Result<Vec<OwnerId>, RegistryError>> {
        Box::pin(future::ready(Ok(self.sweep_now())))
    }

    fn release_all_for_owner(
        &self,
        owner: &OwnerId,
    ) -> BoxFuture<'static, Result<usize, RegistryError>> {
        Box::pin(future::ready(Ok(self.inner.locks.release_all(owner))))
    }

    fn deregister(&self, owner: &OwnerId) -> BoxFuture<'static, Result<usize, RegistryError>> {
        Box::pin(future::ready(self.deregister_now(owner)))
    }

    fn subscribe(&self) -> broadcast::Receiver<RegistryEvent> {
        self.inner
            .events
            .get_or_init(|| broadcast::channel(REGISTRY_EVENT_CAPACITY).0)
            .subscribe()
    }
}

/// A running heartbeat loop ([`spawn_heartbeat`]); dropping it stops the loop.
#[derive(Debug)]
pub struct Heartbeat {
    task: tokio::task::JoinHandle<()>,
    stopped: watch::Receiver<Option<RegistryError>>,
}

impl Heartbeat {
    /// Waits until the loop stops on its own, which it does only when the owner is gone
    /// ([`RegistryError::NotRegistered`]: swept or deregistered); returns that error.
    pub async fn stopped(&mut self) -> RegistryError {
        match self.stopped.wait_for(Option::is_some).await {
            Ok(e) => e.clone().expect("waited for Some"),
            // The loop cannot end without sending, except by being aborted (by us).
            Err(_) => RegistryError::Store {
                message: "the heartbeat task ended".into(),
            },
        }
    }

    /// The error that stopped the loop, if it stopped.
    pub fn error(&self) -> Option<RegistryError> {
        self.stopped.borrow().clone()
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Heartbeats `owner` every `every` (the first at once) on the current tokio runtime until
/// the returned [`Heartbeat`] is dropped or the owner is found gone. Other errors (a store
/// briefly unreachable) are logged and retried at the next tick: the owner's TTL decides.
pub fn spawn_heartbeat(
    registry: Arc<dyn OwnerRegistry>,
    owner: OwnerId,
    every: Duration,
) -> Heartbeat {
    let (tx, rx) = watch::channel(None);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match registry.heartbeat(&owner).await {
                Ok(()) => {}
                Err(e) if e.is_not_registered() => {
                    let _ = tx.send(Some(e));
                    return;
                }
                Err(e) => tracing::warn!(%owner, error = %e, "heartbeat failed; retrying"),
            }
        }
    });
    Heartbeat { task, stopped: rx }
}

/// A running sweep loop ([`spawn_sweeper`]); dropping it stops the loop.
#[derive(Debug)]
pub struct Sweeper {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sweeps `registry` every `every` on the current tokio runtime until the returned
/// [`Sweeper`] is dropped.
pub fn spawn_sweeper(registry: Arc<dyn OwnerRegistry>, every: Duration) -> Sweeper {
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = registry.sweep().await {
                tracing::warn!(error = %e, "owner sweep failed; retrying");
            }
        }
    });
    Sweeper { task }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LockMode, Scheduler};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn silent_owner_is_swept_and_its_locks_freed() {
        let sched = Scheduler::new();
        let reg = MemoryOwnerRegistry::new(sched.locks().clone());
        let mut events = reg.subscribe();
        let meta: Metadata = [("host".to_string(), "h1".to_string())].into();
        let a = reg.register("a", meta.clone(), ms(100)).await.unwrap();
        assert_eq!(
            events.recv().await.unwrap(),
            RegistryEvent::Registered { owner: a.clone() }
        );
        let g = sched
            .locks()
            .acquire("r", LockMode::Write)
            .owner(a.clone())
            .try_now()
            .unwrap();
        tokio::time::sleep(ms(60)).await;
        reg.heartbeat(&a).await.unwrap();
        tokio::time::sleep(ms(60)).await;
        // 60 ms after the heartbeat: alive, listed with its lock.
        let listed = reg.owners().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].metadata, meta);
        assert_eq!(listed[0].since_heartbeat, ms(60));
        assert_eq!(
            listed[0].held,
            vec![HeldLock {
                resource: "r".into(),
                mode: LockMode::Write,
                count: 1
            }]
        );
        tokio::time::sleep(ms(40)).await;
        // 100 ms of silence: swept, lock released, event sent, heartbeat refused.
        assert_eq!(reg.sweep().await.unwrap(), vec![a.clone()]);
        assert!(!g.is_held());
        assert!(sched.locks().holders("r").is_empty());
        assert_eq!(
            events.recv().await.unwrap(),
            RegistryEvent::Swept {
                owner: a.clone(),
                released: 1
            }
        );
        let e = reg.heartbeat(&a).await.unwrap_err();
        assert!(e.is_not_registered(), "{e}");
        assert!(
            e.to_string().contains("owner \"a\" is not registered"),
            "{e}"
        );
        assert!(reg.owners().await.unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn names_are_unique_while_alive_and_late_heartbeats_do_not_revive() {
        let sched = Scheduler::new();
        let reg = MemoryOwnerRegistry::new(sched.locks().clone());
        let a = reg.register("a", Metadata::new(), ms(50)).await.unwrap();
        let e = reg
            .register("a", Metadata::new(), ms(50))
            .await
            .unwrap_err();
        assert_eq!(e, RegistryError::AlreadyRegistered { owner: a.clone() });
        tokio::time::sleep(ms(50)).await;
        // Dead but not swept yet: the heartbeat sweeps it and is refused (I2).
        assert!(reg.heartbeat(&a).await.unwrap_err().is_not_registered());
        // The name is free again.
        reg.register("a", Metadata::new(), ms(50)).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn release_all_for_owner_keeps_it_registered_deregister_removes_it() {
        let sched = Scheduler::new();
        let reg = MemoryOwnerRegistry::new(sched.locks().clone());
        let a = reg.register("a", Metadata::new(), ms(1000)).await.unwrap();
        let locks = sched.locks();
        let _g1 = locks
            .acquire("x", LockMode::Read)
            .owner(a.clone())
            .try_now()
            .unwrap();
        let _g2 = locks
            .acquire("y", LockMode::Write)
            .owner(a.clone())
            .try_now()
            .unwrap();
        assert_eq!(reg.release_all_for_owner(&a).await.unwrap(), 2);
        assert_eq!(reg.owners().await.unwrap()[0].held, vec![]);
        let _g3 = locks
            .acquire("x", LockMode::Write)
            .owner(a.clone())
            .try_now()
            .unwrap();
        assert_eq!(reg.deregister(&a).await.unwrap(), 1);
        assert!(reg.deregister(&a).await.unwrap_err().is_not_registered());
        assert!(locks.holders("x").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_loop_keeps_an_owner_alive_and_sweeper_sweeps_the_silent() {
        let sched = Scheduler::new();
        let reg = MemoryOwnerRegistry::new(sched.locks().clone());
        let dynreg: Arc<dyn OwnerRegistry> = Arc::new(reg.clone());
        let a = reg.register("a", Metadata::new(), ms(100)).await.unwrap();
        let b = reg.register("b", Metadata::new(), ms(100)).await.unwrap();
        let _hb = spawn_heartbeat(dynreg.clone(), a.clone(), ms(30));
        let hb_b = spawn_heartbeat(dynreg.clone(), b.clone(), ms(30));
        let _sw = spawn_sweeper(dynreg.clone(), ms(10));
        tokio::time::sleep(ms(200)).await;
        hb_b.task.abort();
        // b's loop was aborted: it falls silent and the sweeper removes it 100 ms later.
        tokio::time::sleep(ms(120)).await;
        let names: Vec<OwnerId> = reg
            .owners()
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.owner)
            .collect();
        assert_eq!(names, vec![a.clone()]);
        assert!(hb_b.error().is_none());
        // A loop whose owner is deregistered stops on its own and says why.
        let mut hb_a = spawn_heartbeat(dynreg.clone(), a.clone(), ms(30));
        reg.deregister(&a).await.unwrap();
        assert!(hb_a.stopped().await.is_not_registered());
    }
}
