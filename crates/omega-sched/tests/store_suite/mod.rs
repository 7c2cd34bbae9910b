//! The behavioural suite every [`LockStore`] must pass (SPEC §4, §8). Each case is a generic
//! function; `store_suite!` instantiates all of them for one store, as paused-clock tokio
//! tests. It lives in its own module so that other crates' tests can include it
//! (`#[path = ".../omega-sched/tests/store_suite/mod.rs"] #[macro_use] mod store_suite;`):
//! the in-memory manager runs it in `tests/locks_store.rs`, the PostgreSQL store in
//! `omega-lockstore-pg`'s tests. The includer glob-imports the cases (`use store_suite::*;`)
//! and may add attributes to every generated test (e.g. `#[ignore = "…"]`).

// The suite's cases are test bodies written as generic fns (instantiated by the macro).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use omega_sched::{LockMode, LockSpec, LockStore, OwnerId, Scheduler, StoreGuard, TaskOptions};
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub async fn reentrant_and_conflict<S: LockStore>(store: S, _s: Scheduler) {
    let a = OwnerId::named("a");
    let g1 = store
        .acquire(LockSpec::new("r", LockMode::Write).owner(a.clone()))
        .await
        .unwrap();
    let g2 = store
        .acquire(LockSpec::new("r", LockMode::Write).owner(a.clone()))
        .await
        .unwrap();
    assert_eq!(store.holders("r").await[0].count, 2);
    let e = match store
        .try_acquire(LockSpec::new("r", LockMode::Read).owner("b"))
        .await
    {
        Err(e) => e,
        Ok(_) => panic!("granted a conflicting read"),
    };
    assert!(e.is_conflict());
    assert!(e.to_string().contains("owner \"a\""), "{e}");
    drop(g1);
    assert_eq!(store.holders("r").await[0].count, 1);
    drop(g2);
    assert!(store.holders("r").await.is_empty());
}

pub async fn readers_share<S: LockStore>(store: S, _s: Scheduler) {
    let r1 = store
        .try_acquire(LockSpec::new("d", LockMode::Read).owner("1"))
        .await
        .unwrap();
    let r2 = store
        .try_acquire(LockSpec::new("d", LockMode::Read).owner("2"))
        .await
        .unwrap();
    assert_eq!(store.holders("d").await.len(), 2);
    assert!(store
        .try_acquire(LockSpec::new("d", LockMode::Write).owner("3"))
        .await
        .is_err());
    drop((r1, r2));
    assert!(store
        .try_acquire(LockSpec::new("d", LockMode::Write).owner("3"))
        .await
        .is_ok());
}

pub async fn timeout_is_exact<S: LockStore>(store: S, _s: Scheduler) {
    let _g = store
        .acquire(LockSpec::new("t", LockMode::Write).owner("h"))
        .await
        .unwrap();
    let t0 = Instant::now();
    let e = match store
        .acquire(
            LockSpec::new("t", LockMode::Read)
                .owner("w")
                .timeout(ms(40)),
        )
        .await
    {
        Err(e) => e,
        Ok(_) => panic!("granted"),
    };
    assert!(e.is_timeout());
    assert_eq!(t0.elapsed(), ms(40));
}

pub async fn batch_all_or_nothing<S: LockStore>(store: S, _s: Scheduler) {
    let b = store
        .acquire(LockSpec::new("b", LockMode::Write).owner("x"))
        .await
        .unwrap();
    let r = store
        .try_acquire(LockSpec::batch(&[("a", LockMode::Write), ("b", LockMode::Write)]).owner("y"))
        .await;
    assert!(r.is_err());
    assert!(store.holders("a").await.is_empty());
    drop(b);
    let gs = store
        .try_acquire(LockSpec::batch(&[("a", LockMode::Write), ("b", LockMode::Write)]).owner("y"))
        .await
        .unwrap();
    assert_eq!(gs.len(), 2);
}

pub async fn leases_fencing_and_sweep<S: LockStore>(store: S, _s: Scheduler) {
    let t0 = Instant::now();
    let g = store
        .acquire(LockSpec::new("l", LockMode::Write).owner("o").ttl(ms(100)))
        .await
        .unwrap()
        .remove(0);
    let f1 = g.fence();
    tokio::time::sleep(ms(60)).await;
    store.renew(g.lease(), ms(100)).await.unwrap();
    // The waiter gets it when the renewed lease runs out: 60 + 100 ms.
    let g2 = store
        .acquire(LockSpec::new("l", LockMode::Write).owner("p"))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(t0.elapsed(), ms(160));
    assert!(g2.fence() > f1);
    assert!(store.renew(g.lease(), ms(10)).await.is_err());
    drop(g2);
    let _s = store
        .acquire(LockSpec::new("m", LockMode::Read).owner("o").ttl(ms(5)))
        .await
        .unwrap();
    tokio::time::sleep(ms(10)).await;
    assert_eq!(store.stale_count().await, 1);
    assert_eq!(store.sweep().await, 1);
    assert_eq!(store.stale_count().await, 0);
}

pub async fn release_all_and_explicit_release<S: LockStore>(store: S, _s: Scheduler) {
    let o = OwnerId::named("agent");
    let mut keep = Vec::new();
    for n in ["a", "b", "c"] {
        keep.extend(
            store
                .acquire(LockSpec::new(n, LockMode::Write).owner(o.clone()))
                .await
                .unwrap(),
        );
    }
    assert!(store.release(keep[0].lease()).await);
    assert!(!store.release(keep[0].lease()).await);
    assert_eq!(store.release_all(o).await, 2);
    assert!(store.holders("b").await.is_empty());
}

pub async fn task_owner_by_default<S: LockStore + Clone>(store: S, s: Scheduler) {
    let st = store.clone();
    let h = s.submit(
        async move {
            let g = st
                .acquire(LockSpec::new("k", LockMode::Write))
                .await
                .unwrap();
            let owner = st.holders("k").await[0].owner.clone();
            drop(g);
            owner
        },
        TaskOptions::new(),
    );
    let id = h.id();
    assert_eq!(h.await.unwrap(), OwnerId::Task(id));
}

/// `store_suite!(name, make)` or `store_suite!(name, make, #[attr]…)`: a module `name` with
/// one `#[tokio::test(start_paused = true)]` per case, each building its store with
/// `make(&scheduler)` and running the case inside `Scheduler::run_until`.
#[allow(unused_macros)]
macro_rules! store_suite {
    ($store:ident, $make:expr $(, #[$attr:meta])*) => {
        mod $store {
            use super::*;
            store_suite!(@case [$(#[$attr])*] $make; reentrant_and_conflict, readers_share,
                timeout_is_exact, batch_all_or_nothing, leases_fencing_and_sweep,
                release_all_and_explicit_release, task_owner_by_default);
        }
    };
    (@case [$($attrs:tt)*] $make:expr; $case:ident $(, $rest:ident)*) => {
        $($attrs)*
        #[tokio::test(start_paused = true)]
        async fn $case() {
            let sched = omega_sched::Scheduler::new();
            let make = $make;
            let store = make(&sched);
            let s = sched.clone();
            sched.run_until(super::$case(store, s)).await;
        }
        store_suite!(@case [$($attrs)*] $make; $($rest),*);
    };
    (@case [$($attrs:tt)*] $make:expr;) => {};
}
