//! Several processes on one database: `omega-pg-worker` processes (and this test process's
//! own store) sharing locks through PostgreSQL. Each test runs on a fresh schema.
#![allow(clippy::unwrap_used)] // test bodies: a failed step is a failed test

mod common;

use std::time::Duration;

use common::{connect, until, Schema, Worker};
use omega_sched::{
    LockMode, LockSpec, LockStore, OwnerId, OwnerRegistry, RegistryEvent, StoreGuard,
};
use tokio::time::Instant;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn fenced_increments_from_four_processes_lose_no_update() {
    let schema = Schema::new();
    let db = connect(&schema).await;
    db.batch_execute(
        "CREATE TABLE counter (name text PRIMARY KEY, value bigint NOT NULL, fence bigint NOT NULL);
         INSERT INTO counter VALUES ('c', 0, 0);",
    )
    .await
    .unwrap();
    let mut workers = Vec::new();
    for _ in 0..4 {
        workers.push(Worker::start(&schema, &[]).await);
    }
    for (i, w) in workers.iter_mut().enumerate() {
        w.send(&format!("increment w{i} c 500")).await;
    }
    for w in &mut workers {
        assert_eq!(w.line().await, "incremented 500 rejected 0");
    }
    let row = db
        .query_one("SELECT value, fence FROM counter WHERE name = 'c'", &[])
        .await
        .unwrap();
    // Every read-modify-write saw the previous one's value: none was lost, none refused.
    assert_eq!(row.get::<_, i64>(0), 2000);
    assert!(
        row.get::<_, i64>(1) >= 2000,
        "fences come from one sequence"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn single_and_batch_acquisitions_from_four_processes_lose_no_update() {
    // Single-resource requests run narrow (in parallel per resource), batches wide: the
    // two disciplines must still exclude each other.
    let schema = Schema::new();
    let db = connect(&schema).await;
    db.batch_execute(
        "CREATE TABLE counter (name text PRIMARY KEY, value bigint NOT NULL, fence bigint NOT NULL);
         INSERT INTO counter VALUES ('a', 0, 0), ('b', 0, 0), ('c', 0, 0), ('d', 0, 0);",
    )
    .await
    .unwrap();
    let mut workers = Vec::new();
    for _ in 0..4 {
        workers.push(Worker::start(&schema, &[]).await);
    }
    for (i, w) in workers.iter_mut().enumerate() {
        w.send(&format!("mixed w{i} 150 {}", i + 7)).await;
    }
    let mut want = [0i64; 4];
    for w in &mut workers {
        let a = w.line().await;
        let fields: Vec<&str> = a.split_whitespace().collect();
        assert_eq!(fields.first(), Some(&"mixed"), "{a}");
        assert_eq!(fields.last(), Some(&"0"), "a stale holder was refused: {a}");
        for (i, f) in fields[1..5].iter().enumerate() {
            want[i] += f.split('=').nth(1).unwrap().parse::<i64>().unwrap();
        }
    }
    let got: Vec<i64> = db
        .query("SELECT value FROM counter ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(got, want);
    assert!(want.iter().sum::<i64>() >= 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn waiters_in_five_processes_get_the_lock_in_arrival_order() {
    let schema = Schema::new();
    let db = connect(&schema).await;
    db.batch_execute("CREATE TABLE log (n serial, label text NOT NULL, fence bigint NOT NULL)")
        .await
        .unwrap();
    let mut holder = Worker::start(&schema, &[]).await;
    let f = Worker::fences(&holder.ask("acquire h write q - -").await)[0];
    let mut waiters = Vec::new();
    for i in 0..5 {
        let mut w = Worker::start(&schema, &[]).await;
        w.send(&format!("acquire-log w{i} q w{i}")).await;
        // The next one starts only once this one stands in the queue.
        until(
            &db,
            "SELECT count(*) FROM waiters WHERE resource = 'q' AND req IS NOT NULL",
            i + 1,
            "waiter queued",
        )
        .await;
        waiters.push(w);
    }
    // A newcomer is told the holder and its place behind the five.
    let e = holder.ask("try x read q").await;
    assert!(
        e.starts_with(
            "error lock-conflict lock \"q\" is held by owner \"h\" (write); you are 6th in queue"
        ),
        "{e}"
    );
    assert_eq!(holder.ask(&format!("release {f}")).await, "released");
    let mut fences = Vec::new();
    for (i, w) in waiters.iter_mut().enumerate() {
        let a = w.line().await;
        let rest = a
            .strip_prefix(&format!("logged w{i} "))
            .unwrap_or_else(|| panic!("w{i} said {a:?}"));
        fences.push(rest.parse::<i64>().unwrap());
    }
    let order: Vec<String> = db
        .query("SELECT label FROM log ORDER BY n", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(order, ["w0", "w1", "w2", "w3", "w4"]);
    assert!(fences.windows(2).all(|p| p[0] < p[1]), "{fences:?}");
    assert!(fences[0] > f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn a_holder_killed_with_sigkill_loses_the_lock_after_its_lease() {
    let schema = Schema::new();
    let mut w = Worker::start(
        &schema,
        &["--lease-ttl-ms", "1500", "--keepalive-ms", "300"],
    )
    .await;
    let f = Worker::fences(&w.ask("acquire victim write k - -").await)[0];
    let store = schema.store();
    let e = store
        .try_acquire(LockSpec::new("k", LockMode::Write).owner("next"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("held by owner \"victim\""), "{e}");
    w.kill().await;
    let t0 = Instant::now();
    let g = store
        .acquire(
            LockSpec::new("k", LockMode::Write)
                .owner("next")
                .timeout(secs(10)),
        )
        .await
        .unwrap()
        .remove(0);
    // Not at once: the lease, renewed at most 300 ms before the kill, ran out first.
    assert!(
        t0.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        t0.elapsed()
    );
    assert!(g.fence() as i64 > f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn backends_terminated_mid_hold_reconnect_and_the_waiter_still_gets_the_lock() {
    let schema = Schema::new();
    let db = connect(&schema).await;
    let mut w = Worker::start(
        &schema,
        &["--lease-ttl-ms", "3000", "--keepalive-ms", "500"],
    )
    .await;
    let f = Worker::fences(&w.ask("acquire holder write b - -").await)[0];
    let store = schema.store();
    let waiter = tokio::spawn({
        let s = store.clone();
        async move {
            s.acquire(
                LockSpec::new("b", LockMode::Write)
                    .owner("waiter")
                    .timeout(secs(15)),
            )
            .await
        }
    });
    until(
        &db,
        "SELECT count(*) FROM waiters WHERE resource = 'b' AND req IS NOT NULL",
        1,
        "waiter queued",
    )
    .await;
    // Every connection of both processes: the holder's pool and listener, the waiter's.
    let killed: i64 = db
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE application_name LIKE $1 OR application_name LIKE $2",
            &[
                &format!("omega-lockstore {}%", w.session),
                &format!("omega-lockstore {}%", store.session()),
            ],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 3, "terminated {killed} backends");
    // The holder reconnects and proves its lease is live; the lock is still its own.
    assert_eq!(w.ask(&format!("renew {f} 3000")).await, "renewed");
    let owner: String = db
        .query_one(
            "SELECT owner_id FROM locks WHERE resource = 'b' AND fence IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, "holder");
    // It lets go; the waiter, whose listener was cut, re-listens and is handed the lock.
    assert_eq!(w.ask(&format!("release-now {f}")).await, "released true");
    let g = waiter.await.unwrap().unwrap().remove(0);
    assert!(g.fence() as i64 > f);
    assert_eq!(g.owner(), &OwnerId::named("waiter"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn an_owner_that_stops_heartbeating_is_swept_and_its_locks_freed() {
    let schema = Schema::new();
    let db = connect(&schema).await;
    let mut w = Worker::start(&schema, &[]).await;
    assert_eq!(w.ask("register agent-7 1000").await, "registered");
    assert_eq!(w.ask("heartbeat agent-7 200").await, "heartbeating");
    let f = Worker::fences(&w.ask("acquire agent-7 write plan - -").await)[0];
    let store = omega_lockstore_pg::PgLockStore::new(
        schema.config().sweep_every(Duration::from_millis(200)),
    )
    .unwrap();
    let reg = store.registry();
    let mut events = reg.subscribe();
    let listed = reg.owners().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].owner, OwnerId::named("agent-7"));
    assert!(listed[0].metadata.contains_key("pid"));
    assert!(listed[0].since_heartbeat < secs(1));
    assert_eq!(listed[0].held.len(), 1);
    assert_eq!(&*listed[0].held[0].resource, "plan");
    let waiter = tokio::spawn({
        let s = store.clone();
        async move {
            s.acquire(
                LockSpec::new("plan", LockMode::Write)
                    .owner("next")
                    .timeout(secs(15)),
            )
            .await
        }
    });
    until(
        &db,
        "SELECT count(*) FROM waiters WHERE resource = 'plan' AND req IS NOT NULL",
        1,
        "waiter queued",
    )
    .await;
    // It falls silent: swept once its TTL passes without a heartbeat.
    assert_eq!(w.ask("stop-heartbeat").await, "stopped");
    let swept = tokio::time::timeout(secs(15), async {
        loop {
            match events.recv().await.unwrap() {
                RegistryEvent::Swept { owner, released } => return (owner, released),
                _ => continue,
            }
        }
    })
    .await
    .expect("a sweep event");
    assert_eq!(swept, (OwnerId::named("agent-7"), 1));
    let g = waiter.await.unwrap().unwrap().remove(0);
    assert!(g.fence() as i64 > f);
    let e = w.ask(&format!("renew {f} 1000")).await;
    assert!(e.starts_with("error lock-not-held"), "{e}");
    assert!(reg.owners().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
async fn a_cross_process_deadlock_fails_the_newest_waiter() {
    let schema = Schema::new();
    let db = connect(&schema).await;
    let mut a = Worker::start(&schema, &[]).await;
    let mut b = Worker::start(&schema, &[]).await;
    Worker::fences(&a.ask("acquire A write x - -").await);
    let fy = Worker::fences(&b.ask("acquire B write y - -").await)[0];
    a.send("acquire A write y - 15000").await;
    until(
        &db,
        "SELECT count(*) FROM waiters WHERE resource = 'y' AND req IS NOT NULL",
        1,
        "A queued for y",
    )
    .await;
    let e = b.ask("acquire B write x - 15000").await;
    assert_eq!(
        e,
        "error deadlock deadlock: owner \"B\" waits for \"x\" held by owner \"A\", which \
         waits for \"y\" held by owner \"B\""
    );
    // The refused waiter backs off; the older one proceeds.
    assert_eq!(b.ask(&format!("release {fy}")).await, "released");
    let got = a.line().await;
    assert!(got.starts_with("granted "), "{got}");
}
