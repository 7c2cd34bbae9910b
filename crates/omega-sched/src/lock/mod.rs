//! Resource locks as scheduler primitives (SPEC §4): `sched.locks()` is a [`LockManager`].
//!
//! Named resources are held in [`LockMode::Read`] (shared) or [`LockMode::Write`]
//! (exclusive) by an [`OwnerId`] — the acquiring task by default. Acquisition is re-entrant
//! per owner; a sole reader may upgrade to write; a waiting writer blocks later readers;
//! waiters are served FIFO (by task priority under `Fairness::Priority`). A batch
//! ([`LockManager::acquire_all`]) is all or nothing. Grants may carry a lease (TTL) and
//! always carry a fencing token. A wait that would close a cycle of the wait-for graph
//! (lock waits *and* task awaits) fails at once with [`LockError::Deadlock`]. A task
//! holding a lock that a higher-priority task waits for runs at that priority. Everything a
//! task holds is released when it ends.
//!
//! # Implementation details
//!
//! * `state.rs` — the table: `resources` (name → holders + a queue ordered by
//!   `(rank, arrival)`), `waiters` (a slab of queued requests; a batch sits in the queue of
//!   each of its resources under one key), `grants` (fencing token → grant), `owners`
//!   (owner → its grants and waits), a lease heap, counters. All of it behind **one** mutex
//!   per manager: a batch grant and a deadlock check need a consistent view of several
//!   resources, and the scheduler drives tasks on one thread, so sharding would buy little.
//! * `graph.rs` — the wait-for graph, read off the table and the core when a wait starts.
//! * `manager.rs` — the public [`LockManager`]; `acquire.rs` — the [`Acquire`] /
//!   [`AcquireAll`] builder-futures; `guard.rs` — [`LockGuard`]; `store.rs` — the
//!   [`LockStore`] trait; `stats.rs` — figures; `error.rs` — [`LockError`].
//! * `registry.rs` — the owner registry (SPEC §8): [`OwnerRegistry`], the in-process
//!   [`MemoryOwnerRegistry`] built on the manager's public API, heartbeat and sweep loops.
//! * **Grant rule.** A request is granted when, for every resource, it fits the holders
//!   (compatible, or re-entrant, or a sole holder's upgrade) and every waiter queued ahead
//!   of it may be passed — only a reader passes a reader. Re-entrant requests and upgrades
//!   skip the queue. After any release or departure, `regrant` walks the resource's queue in
//!   order, granting what fits and stopping at the first waiting writer.
//! * **Batches** are granted only when every resource is grantable, in one critical
//!   section. Queues share one global order, so the first waiter in that order waits only
//!   for holders, and holders never wait on a batch that holds nothing: batches cannot
//!   deadlock among themselves.
//! * **Leases.** A grant with a TTL has an expiry in the lease heap. Every operation sweeps
//!   expired leases first; a waiting acquisition arms a tokio timer at the next expiry and
//!   sweeps when it fires, so waiters proceed exactly at expiry (deterministic under a
//!   paused clock). [`LockManager::sweep`] sweeps on demand; `stale_count` counts expired,
//!   unswept leases.
//! * **Fencing tokens** come from one counter per manager, bumped at every grant: strictly
//!   increasing per resource (and globally), never reset when an entry is removed.
//! * **Deadlock detection** (see `graph.rs`): when a request must wait, a breadth-first
//!   search from what it would wait for looks for its own owner or task; task awaits come
//!   from the core (recorded by `TaskHandle::poll`). When a new *await* closes a cycle
//!   with a queued lock wait, that wait fails with `Deadlock` (the await itself cannot
//!   fail).
//! * **Priority inheritance** (SPEC §3.4): a task holder's inherited priority is the
//!   highest priority among waiters queued on what it holds, passed along wait chains. The
//!   manager hands changes to the scheduler through the `TaskGraph` trait, which queues the
//!   task in the ready queue at `max(own, inherited)` until the waiter is gone.
//! * **The task graph** is reached only through the crate-private `TaskGraph` /
//!   `TaskGraphHost` traits (await edges, inherited priorities): `lock/` does not know the
//!   scheduler's core.
//! * **Task end.** `Driver::end` calls `task_ended(id)` after recording the ending and
//!   before publishing it, so an awaiter sees the locks already free. Guards dropped with
//!   the body release first; `task_ended` catches guards that escaped the body.
//!
//! # Invariants
//!
//! 1. A resource is in `resources` iff it has a holder or a queued waiter (the table never
//!    grows with the number of names ever used).
//! 2. No mutex is held while a waker is woken, an event is sent or user code runs: locked
//!    sections collect them in `Effects` and `flush` delivers them after unlocking.
//! 3. `owners[o]` lists exactly `o`'s live grants and the waiting requests made by or for
//!    `o`; it is removed when both are empty.
//! 4. A waiting request is in the queue of each of its resources under one key and one
//!    order; once granted or failed it is in no queue, and its grants exist in full.
//! 5. Never a writer with anyone else: a resource's holders are all readers, or exactly
//!    one owner (who may hold both modes, counted). A waiting writer blocks later readers.
//! 6. Every grant gets a fencing token greater than every earlier one.
//! 7. A grant is released exactly once: by its guard, `release_all`, task end or the sweep;
//!    later attempts find no grant and do nothing. A grant made for a request that was then
//!    abandoned is released at once, which grants the next waiter.
//! 8. `boosts[t]` is the inherited priority last handed to the core for task `t`.
//! 9. A grant whose lease expired is released by the next operation, sweep or waiter timer.
//!
//! # Lock order
//!
//! task graph (core) → lock state (→ event bus, never held by us while sending). The
//! manager takes the graph (`TaskGraphHost::with_graph`) only on the contended path
//! (deadlock check + enqueue + boosts), to re-sync inherited priorities and when a new
//! task await may close a cycle with a lock wait, always *before* its own state lock.
//! Nothing takes the core lock while holding the state lock. No lock is held across an
//! `.await`, and no event is sent or waker woken with either lock held.

mod acquire;
mod error;
mod graph;
mod guard;
mod manager;
mod registry;
mod state;
mod stats;
mod store;
mod types;

pub use acquire::{Acquire, AcquireAll};
pub use error::{DeadlockCycle, LockError, WaitEdge, WaitOn};
pub(crate) use graph::{TaskGraph, TaskGraphHost};
pub use guard::LockGuard;
pub use manager::{HolderInfo, LockManager};
pub use registry::{
    spawn_heartbeat, spawn_sweeper, Heartbeat, HeldLock, MemoryOwnerRegistry, Metadata, OwnerInfo,
    OwnerRegistry, RegistryError, RegistryEvent, Sweeper, REGISTRY_EVENT_CAPACITY,
};
pub use stats::{LockStats, LockTotals, ResourceLockStats, RETAINED_RESOURCE_STATS};
pub use store::DynLockStore;
pub use store::{LockSpec, LockStore, StoreGuard};
pub use types::{LeaseId, LockMode, OwnerId};
