//! The store-generic behavioural suite (`store_suite/mod.rs`) run against the in-memory
//! lock manager, directly and behind the object-safe [`DynLockStore`].

#[macro_use]
mod store_suite;

use std::sync::Arc;

use omega_sched::{DynLockStore, Scheduler};
use store_suite::*;

store_suite!(in_memory, |s: &Scheduler| s.locks().clone());
store_suite!(in_memory_dyn, |s: &Scheduler| {
    Arc::new(s.locks().clone()) as Arc<dyn DynLockStore>
});
