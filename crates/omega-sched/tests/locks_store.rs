//! The store-generic behavioural suite (`store_suite/mod.rs`) run against the in-memory
//! lock manager, directly and behind the object-safe [`DynLockStore`].
#![allow(clippy::unwrap_used)] // test bodies: a failed step is a failed test

#[macro_use]
mod store_suite;

use std::sync::Arc;

use omega_sched::{DynLockStore, Scheduler};
use store_suite::*;

store_suite!(in_memory, |s: &Scheduler| s.locks().clone());
store_suite!(in_memory_dyn, |s: &Scheduler| {
    Arc::new(s.locks().clone()) as Arc<dyn DynLockStore>
});

/// `SchedulerBuilder::lock_store` is the store `Scheduler::lock_store` hands out; without
/// one it is the scheduler's own manager.
#[tokio::test]
async fn the_builder_s_store_is_the_one_handed_out() {
    use omega_sched::{LockMode, LockSpec, LockStore};
    let shared = Scheduler::new();
    let sched = Scheduler::builder()
        .lock_store(Arc::new(shared.locks().clone()))
        .build();
    let g = sched
        .lock_store()
        .acquire(LockSpec::new("r", LockMode::Write).owner("o"))
        .await
        .unwrap();
    assert_eq!(shared.locks().holders("r").len(), 1);
    assert!(sched.locks().holders("r").is_empty());
    drop(g);
    let own = Scheduler::new();
    let _g = own
        .lock_store()
        .acquire(LockSpec::new("r", LockMode::Write).owner("o"))
        .await
        .unwrap();
    assert_eq!(own.locks().holders("r").len(), 1);
}
