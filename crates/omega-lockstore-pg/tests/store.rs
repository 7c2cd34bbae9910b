//! Behaviour of the PostgreSQL store beyond the store-generic suite: queue rules, batches
//! that wait, cancellation and abandoned waits, upgrades, leases, the owner registry, an
//! unreachable server, hand-offs between two stores (two "processes" in one).
#![allow(clippy::unwrap_used)] // test bodies: a failed step is a failed test

mod common;

use std::time::Duration;

use common::{connect, until, Schema};
use omega_lockstore_pg::{PgLockStore, PgStoreConfig};
use omega_sched::{
    LockError, LockMode, LockSpec, LockStore, Metadata, OwnerId, OwnerRegistry, RegistryError,
    RegistryEvent, Scheduler, StoreGuard, TaskOptions,
};
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn w(name: &str, owner: &str) -> LockSpec {
    LockSpec::new(name, LockMode::Write).owner(owner)
}

fn r(name: &str, owner: &str) -> LockSpec {
    LockSpec::new(name, LockMode::Read).owner(owner)
}

#[tokio::test(start_paused = true)]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn a_waiting_writer_blocks_later_readers_and_grants_go_in_order() {
    let schema = Schema::new();
    let s = schema.virtual_store();
    let r1 = s.acquire(r("d", "r1")).await.unwrap();
    // A writer queues behind the reader...
    let writer = tokio::spawn({
        let s = s.clone();
        async move { s.acquire(w("d", "w").timeout(ms(5000))).await }
    });
    let db = connect(&schema).await;
    until(
        &db,
        "SELECT count(*) FROM waiters WHERE req IS NOT NULL",
        1,
        "writer queued",
    )
    .await;
    // ...so a later reader may not pass it, though it is compatible with the holder.
    let e = s.try_acquire(r("d", "r2")).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "lock \"d\" is reserved by earlier waiters; you are 2nd in queue"
    );
    let reader = tokio::spawn({
        let s = s.clone();
        async move { s.acquire(r("d", "r2").timeout(ms(5000))).await }
    });
    until(
        &db,
        "SELECT count(*) FROM waiters WHERE req IS NOT NULL",
        2,
        "reader queued",
    )
    .await;
    drop(r1);
    let wg = writer.await.unwrap().unwrap();
    assert_eq!(s.holders("d").await[0].owner, OwnerId::named("w"));
    drop(wg);
    let rg = reader.await.unwrap().unwrap();
    assert!(rg[0].fence() > 2);
}

#[tokio::test(start_paused = true)]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn a_waiting_batch_holds_nothing_until_it_gets_everything() {
    let schema = Schema::new();
    let s = schema.virtual_store();
    let db = connect(&schema).await;
    let b = s.acquire(w("b", "x")).await.unwrap();
    let batch = tokio::spawn({
        let s = s.clone();
        async move {
            s.acquire(
                LockSpec::batch(&[
                    ("c", LockMode::Write),
                    ("a", LockMode::Read),
                    ("b", LockMode::Write),
                ])
                .owner("y"),
            )
            .await
        }
    });
    until(
        &db,
        "SELECT count(*) FROM waiters WHERE req IS NOT NULL",
        3,
        "batch queued",
    )
    .await;
    // Nothing is granted to a waiting batch; its place in each queue still counts (FIFO).
    assert!(s.holders("a").await.is_empty());
    assert!(s.holders("c").await.is_empty());
    let e = s.try_acquire(w("c", "z")).await.unwrap_err();
    assert_eq!(
        e,
        LockError::Conflict {
            resource: "c".into(),
            holder: None,
            queue_position: 2
        }
    );
    drop(b);
    let got = batch.await.unwrap().unwrap();
    let names: Vec<(&str, LockMode)> = got.iter().map(|g| (g.resource(), g.mode())).collect();
    assert_eq!(
        names,
        [
            ("a", LockMode::Read),
            ("b", LockMode::Write),
            ("c", LockMode::Write)
        ]
    );
    assert_eq!(s.holders("c").await[0].owner, OwnerId::named("y"));
}

#[tokio::test(start_paused = true)]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn upgrades_are_allowed_only_to_a_sole_reader() {
    let schema = Schema::new();
    let s = schema.virtual_store();
    let _a = s.acquire(r("u", "a")).await.unwrap();
    let up = s.try_acquire(w("u", "a")).await.unwrap();
    assert_eq!(s.holders("u").await[0].mode, LockMode::Write);
    drop(up);
    let _b = s.acquire(r("u", "b")).await.unwrap();
    let e = s.acquire(w("u", "a")).await.unwrap_err();
    assert_eq!(
        e,
        LockError::UpgradeConflict {
            resource: "u".into(),
            owner: OwnerId::named("a"),
            others: 1
        }
    );
}

#[tokio::test(start_paused = true)]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn a_cancelled_task_leaves_the_queue_and_the_next_waiter_proceeds() {
    let schema = Schema::new();
    let s = schema.virtual_store();
    let db = connect(&schema).await;
    let sched = Scheduler::new();
    let held = s.acquire(w("k", "h")).await.unwrap();
    let sc = sched.clone();
    sched
        .run_until(async move {
            let st = s.clone();
            let h = sc.submit(
                async move {
                    st.acquire(LockSpec::new("k", LockMode::Write))
                        .await
                        .map(drop)
                },
                TaskOptions::new(),
            );
            until(
                &db,
                "SELECT count(*) FROM waiters WHERE req IS NOT NULL",
                1,
                "task queued",
            )
            .await;
            let next = tokio::spawn({
                let s = s.clone();
                async move { s.acquire(w("k", "next").timeout(ms(5000))).await }
            });
            until(
                &db,
                "SELECT count(*) FROM waiters WHERE req IS NOT NULL",
                2,
                "next queued",
            )
            .await;
            sc.cancel(h.id(), "stop");
            match h.await {
                // Dropped with its task, or told it was cancelled: never granted.
                Err(e) => assert!(e.is_cancelled(), "{e}"),
                Ok(Err(e)) => assert!(e.is_cancelled(), "{e}"),
                Ok(Ok(())) => panic!("the cancelled wait was granted"),
            }
            until(
                &db,
                "SELECT count(*) FROM waiters WHERE req IS NOT NULL",
                1,
                "task left",
            )
            .await;
            drop(held);
            let g = next.await.unwrap().unwrap();
            assert_eq!(g[0].owner(), &OwnerId::named("next"));
        })
        .await;
}

#[tokio::test(start_paused = true)]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn a_dropped_acquire_leaves_the_queue() {
    let schema = Schema::new();
    let s = schema.virtual_store();
    let db = connect(&schema).await;
    let held = s.acquire(w("k", "h")).await.unwrap();
    let f = s.acquire(w("k", "gone"));
    let drop_later = tokio::spawn(async move {
        let _ = tokio::time::timeout(ms(50), f).await;
    });
    drop_later.await.unwrap();
    until(
        &db,
        "SELECT count(*) FROM waiters WHERE req IS NOT NULL",
        0,
        "the dropped wait left",
    )
    .await;
    drop(held);
    assert!(s.holders("k").await.is_empty());
    assert_eq!(s.stale_count().await, 0);
}

#[tokio::test(start_paused = true)]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn leases_renew_expire_and_guards_say_so() {
    let schema = Schema::new();
    let s = schema.virtual_store();
    let g = s.acquire(w("l", "o").ttl(ms(100))).await.unwrap().remove(0);
    assert!(g.is_held());
    tokio::time::sleep(ms(80)).await;
    g.renew(ms(100)).await.unwrap();
    tokio::time::sleep(ms(80)).await;
    assert!(g.is_held(), "renewed at 80 ms: held until 180 ms");
    tokio::time::sleep(ms(20)).await;
    assert!(!g.is_held(), "the lease ran out at 180 ms");
    assert_eq!(s.stale_count().await, 1);
    let e = g.renew(ms(100)).await.unwrap_err();
    assert_eq!(e, LockError::NotHeld { lease: g.lease() });
    // An auto-renewed lease (no TTL) outlives its TTL while its store renews it.
    let auto = s.acquire(w("m", "o")).await.unwrap().remove(0);
    tokio::time::sleep(omega_lockstore_pg::DEFAULT_LEASE_TTL * 3).await;
    assert!(auto.is_held());
    assert_eq!(s.holders("m").await.len(), 1);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn a_release_in_one_store_hands_off_to_a_waiter_of_another_by_notify() {
    let schema = Schema::new();
    // Two stores are two sessions: no shortcut, the hand-off travels by NOTIFY.
    let a = schema.store();
    let b = PgLockStore::new(schema.config().poll_every(Duration::from_secs(30))).unwrap();
    let g = a.acquire(w("h", "a")).await.unwrap();
    let db = connect(&schema).await;
    let waiter = tokio::spawn({
        let b = b.clone();
        async move {
            b.acquire(w("h", "b").timeout(Duration::from_secs(20)))
                .await
        }
    });
    until(
        &db,
        "SELECT count(*) FROM waiters WHERE req IS NOT NULL",
        1,
        "b queued",
    )
    .await;
    assert!(b.is_listening());
    let t0 = Instant::now();
    drop(g);
    let got = waiter.await.unwrap().unwrap();
    // Far sooner than the 30 s fallback poll: the notification woke it.
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(got[0].owner(), &OwnerId::named("b"));
}

#[tokio::test]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn the_registry_refuses_duplicates_and_unknown_owners_and_reports_events() {
    let schema = Schema::new();
    let s = schema.store();
    let reg = s.registry();
    let mut events = reg.subscribe();
    let meta: Metadata = [("role".to_string(), "planner".to_string())].into();
    let a = reg
        .register("a", meta.clone(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        reg.register("a", Metadata::new(), Duration::from_secs(30))
            .await,
        Err(RegistryError::AlreadyRegistered { owner: a.clone() })
    );
    let ghost = OwnerId::named("ghost");
    let e = reg.heartbeat(&ghost).await.unwrap_err();
    assert!(e.is_not_registered());
    assert_eq!(
        e.to_string(),
        "owner \"ghost\" is not registered (never registered, deregistered, or swept after its \
         TTL passed without a heartbeat)"
    );
    reg.heartbeat(&a).await.unwrap();
    let _x = s.acquire(w("x", "a")).await.unwrap();
    let _y = s.acquire(r("y", "a")).await.unwrap();
    let _y2 = s.acquire(r("y", "a")).await.unwrap();
    let listed = reg.owners().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].metadata, meta);
    let held: Vec<(String, LockMode, u32)> = listed[0]
        .held
        .iter()
        .map(|h| (h.resource.to_string(), h.mode, h.count))
        .collect();
    assert_eq!(
        held,
        [
            ("x".to_string(), LockMode::Write, 1),
            ("y".to_string(), LockMode::Read, 2)
        ]
    );
    assert_eq!(reg.release_all_for_owner(&a).await.unwrap(), 3);
    assert_eq!(reg.owners().await.unwrap()[0].held, vec![]);
    let _z = s.acquire(w("z", "a")).await.unwrap();
    assert_eq!(reg.deregister(&a).await.unwrap(), 1);
    assert!(reg.deregister(&a).await.unwrap_err().is_not_registered());
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.push(
            tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .expect("an event")
                .unwrap(),
        );
    }
    assert_eq!(
        seen,
        [
            RegistryEvent::Registered { owner: a.clone() },
            RegistryEvent::Deregistered {
                owner: a,
                released: 1
            }
        ]
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn an_unreachable_server_is_a_clear_error_not_a_hang() {
    // A port nobody listens on.
    let cfg = PgStoreConfig::new("postgres://postgres@127.0.0.1:9/test")
        .unwrap()
        .retry_for(Duration::from_millis(300));
    let s = PgLockStore::new(cfg).unwrap();
    let t0 = Instant::now();
    let e = s
        .acquire(w("k", "o").timeout(Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(e.kind(), "lock-store");
    let text = e.to_string();
    assert!(text.starts_with("lock store: acquiring \"k\": "), "{text}");
    assert!(text.contains("connect"), "{text}");
    let e = PgLockStore::connect(
        PgStoreConfig::new("postgres://postgres@127.0.0.1:9/test")
            .unwrap()
            .retry_for(Duration::from_millis(100)),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("connecting to postgres://postgres@127.0.0.1:9/test"),
        "{e}"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn close_releases_everything_the_store_holds_and_waits_for() {
    let schema = Schema::new();
    let a = schema.store();
    let b = schema.store();
    let db = connect(&schema).await;
    let held = a.acquire(w("c", "a")).await.unwrap();
    let _also = a.acquire(r("d", "a")).await.unwrap();
    let hold_b = b.acquire(w("e", "b")).await.unwrap();
    let waiting = tokio::spawn({
        let a = a.clone();
        async move { a.acquire(w("e", "a2")).await.map(drop) }
    });
    until(
        &db,
        "SELECT count(*) FROM waiters WHERE req IS NOT NULL",
        1,
        "a queued",
    )
    .await;
    assert_eq!(a.close().await.unwrap(), 2);
    assert!(!held[0].is_held());
    assert!(b.holders("c").await.is_empty());
    until(
        &db,
        "SELECT count(*) FROM waiters WHERE req IS NOT NULL",
        0,
        "a's wait removed",
    )
    .await;
    // The wait in progress fails: the store is closed.
    let e = waiting.await.unwrap().unwrap_err();
    assert_eq!(
        e.to_string(),
        "lock store: acquiring \"e\": the lock store was closed"
    );
    let e = a.try_acquire(w("f", "a")).await.unwrap_err();
    assert_eq!(e.kind(), "lock-store");
    assert_eq!(b.holders("e").await[0].owner, OwnerId::named("b"));
    drop(hold_b);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn after_a_crash_empties_the_unlogged_tables_fences_still_increase_and_holders_learn() {
    let schema = Schema::new();
    let s = PgLockStore::new(
        schema
            .config()
            .lease_ttl(Duration::from_millis(900))
            .keepalive_every(Duration::from_millis(100)),
    )
    .unwrap();
    let old = s.acquire(w("k", "a")).await.unwrap().remove(0);
    let db = connect(&schema).await;
    // What crash recovery does to unlogged objects: emptied, sequences back to the start.
    db.batch_execute("TRUNCATE locks, waiters, fence_epoch; ALTER SEQUENCE fence_seq RESTART;")
        .await
        .unwrap();
    // The holder learns at its next keepalive that its fence is gone...
    let t0 = Instant::now();
    while old.is_held() {
        assert!(t0.elapsed() < Duration::from_secs(10), "still claimed held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        old.renew(Duration::from_secs(1)).await.unwrap_err(),
        LockError::NotHeld { lease: old.lease() }
    );
    // ...and the next grant's fence is above every fence of the old epoch.
    let new = s.acquire(w("k", "b")).await.unwrap().remove(0);
    assert!(
        new.fence() > old.fence(),
        "{} <= {}",
        new.fence(),
        old.fence()
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn a_wait_whose_lease_ran_out_queues_again_and_is_served() {
    let schema = Schema::new();
    let h = schema.store();
    let held = h.acquire(w("q", "h")).await.unwrap();
    let s = PgLockStore::new(schema.config().poll_every(Duration::from_millis(100))).unwrap();
    let db = connect(&schema).await;
    let waiter = tokio::spawn({
        let s = s.clone();
        async move {
            s.acquire(w("q", "w").timeout(Duration::from_secs(20)))
                .await
        }
    });
    until(
        &db,
        "SELECT count(*) FROM waiters WHERE req IS NOT NULL",
        1,
        "queued",
    )
    .await;
    let first: String = db
        .query_one("SELECT req::text FROM waiters WHERE req IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    // As if its process could not renew the wait for longer than its lease.
    db.batch_execute(
        "UPDATE waiters SET expires_at = now() - interval '1 s' WHERE req IS NOT NULL",
    )
    .await
    .unwrap();
    // Its next look finds the wait gone: it queues again, as a new request.
    let t0 = Instant::now();
    loop {
        let reqs: Vec<String> = db
            .query(
                "SELECT req::text FROM waiters WHERE req IS NOT NULL AND expires_at > now()",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        if reqs.len() == 1 && reqs[0] != first {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "not queued again: {reqs:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(held);
    let g = waiter.await.unwrap().unwrap();
    assert_eq!(g[0].owner(), &OwnerId::named("w"));
}
