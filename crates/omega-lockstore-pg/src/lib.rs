//! Omega's locks shared across processes and hosts, in PostgreSQL (SPEC §8): a
//! [`LockStore`](omega_sched::LockStore) with the in-memory manager's semantics — read and
//! write modes, re-entrancy per owner, FIFO order across processes with conflicts naming
//! the holder and the queue position, all-or-nothing batches, leases with renewal and
//! sweeping, fencing tokens from a sequence, deadlock detection over every process's waits —
//! and the owner registry ([`PgOwnerRegistry`]) whose silent owners are swept and their
//! locks freed. Waiters are woken by LISTEN/NOTIFY (a release hands the lock to the next
//! waiter inside its own transaction), with a bounded fallback poll. The client is
//! **tokio-postgres with a deadpool pool**, chosen over sqlx because each lock operation is
//! one call of a prepared SQL function (one round trip, pipelined, no ORM or query macros
//! between), notifications come straight off a connection we drive ourselves (so a lost
//! listener is noticed, reconnected and every waiter re-checks, which sqlx's `PgListener`
//! would hide), and both crates are small, tokio-native and well kept. The schema's
//! migrations are compiled in and run on first use. See `src/README.md` for the design.
#![warn(missing_docs, missing_debug_implementations)]

mod acquire;
mod clock;
mod config;
mod db;
mod deadlock;
mod error;
mod guard;
mod migrate;
mod outcome;
mod registry;
mod shared;
mod store;
mod tasks;

pub use clock::Clock;
pub use config::{
    PgStoreConfig, DEFAULT_LEASE_TTL, DEFAULT_SCHEMA, LOCK_SCHEMA_ENV, LOCK_STORE_ENV,
};
pub use error::ConfigError;
pub use guard::PgGuard;
pub use registry::PgOwnerRegistry;
pub use store::PgLockStore;
