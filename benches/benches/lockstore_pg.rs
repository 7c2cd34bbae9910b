//! `lockstore_pg`: the PostgreSQL lock store (`omega-lockstore-pg`, SPEC §8–9, issue 12)
//! beside PostgreSQL's own advisory locks on the same server, in the same run.
//!
//! Needs `OMEGA_PG_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`); without it, or
//! when the server does not answer, the target says so and measures nothing. Everything
//! runs in a schema of its own, dropped at the end.
//!
//! Cases (goals from the issue):
//! * `pg_uncontended/omega_drop` — one store, one owner: `acquire("r", Write)` and drop the
//!   guard, [`OPS`] times (a drop releases in the background; the next acquire waits for
//!   it, so each pair is two round trips); `omega_release` — the same releasing with
//!   `guard.release().await`; vs `advisory_lock` — `SELECT pg_advisory_lock($1)` then
//!   `SELECT pg_advisory_unlock($1)`, prepared, on one connection. Goal: omega ÷ advisory
//!   ≤ 2.0.
//! * `pg_handoff/omega` — this process holds "h"; a second process (this binary re-run as a
//!   peer) waits for it. Timed: from calling `release()` until the peer reports the grant
//!   on its stdout (so a pipe hop is included). Then, untimed, the peer releases, this
//!   process takes "h" back and waits until the peer queues again. vs `advisory` — the
//!   same with the peer blocked in `pg_advisory_lock` and `pg_advisory_unlock` here. Goal:
//!   ≤ 2 ms on loopback (NOTIFY-driven, not polled).
//! * `pg_throughput/omega_8x8_16` — 8 peer processes × 8 tokio tasks, each task
//!   [`ROUNDS`] times: acquire one of 16 resources (pseudo-random) for writing and release
//!   it. Timed: from "run" to every process's "done". vs `advisory_8x8_16` — the same with
//!   one connection per task and `pg_advisory_lock`/`unlock`. Throughput in acquisitions.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use omega_lockstore_pg::{PgGuard, PgLockStore, PgStoreConfig};
use omega_sched::{LockMode, LockSpec, LockStore};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::runtime::Runtime;
use tokio_postgres::Client;

/// Acquire+release pairs per iteration of the uncontended cases.
const OPS: u64 = 200;
/// Peer processes and tasks per process of the throughput cases.
const PROCS: usize = 8;
const TASKS: usize = 8;
/// Resources of the throughput cases.
const RESOURCES: u64 = 16;
/// Acquire+release rounds per task per iteration of the throughput cases.
const ROUNDS: u64 = 10;
/// Set in a peer's environment: what it is to do.
const PEER_ENV: &str = "OMEGA_PG_BENCH_PEER";
/// The advisory key of the hand-off baseline.
const KEY: i64 = 0x0e6a_0001;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the OS could not create a tokio runtime")
}

async fn connect(url: &str, schema: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("a connection to OMEGA_PG_URL");
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "SET client_min_messages TO warning; CREATE SCHEMA IF NOT EXISTS \"{schema}\";"
        ))
        .await
        .expect("the bench schema");
    client
}

async fn store(url: &str, schema: &str) -> PgLockStore {
    PgLockStore::connect(
        PgStoreConfig::new(url)
            .expect("OMEGA_PG_URL parses")
            .schema(schema),
    )
    .await
    .expect("the store connects")
}

async fn take(store: &PgLockStore, name: &str, owner: &str) -> PgGuard {
    store
        .acquire(LockSpec::new(name, LockMode::Write).owner(owner))
        .await
        .expect("granted")
        .remove(0)
}

// ---- the peer process -------------------------------------------------------------------

/// A peer: this binary re-run with [`PEER_ENV`] set, answering line commands on stdout.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Peer {
    async fn start(mode: &str, url: &str, schema: &str) -> Peer {
        let mut child =
            tokio::process::Command::new(std::env::current_exe().expect("the bench binary's path"))
                .env(PEER_ENV, mode)
                .env("OMEGA_PG_URL", url)
                .env("OMEGA_PG_BENCH_SCHEMA", schema)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("a peer process");
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut p = Peer {
            child,
            stdin,
            stdout,
        };
        assert_eq!(p.line().await, "ready");
        p
    }

    async fn send(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("peer stdin");
        self.stdin.flush().await.expect("peer stdin");
    }

    async fn line(&mut self) -> String {
        self.stdout
            .next_line()
            .await
            .expect("peer stdout")
            .expect("the peer is alive")
    }

    async fn stop(mut self) {
        self.send("exit").await;
        let _ = self.child.wait().await;
    }
}

async fn say(out: &mut tokio::io::Stdout, line: &str) {
    out.write_all(format!("{line}\n").as_bytes())
        .await
        .expect("stdout");
    out.flush().await.expect("stdout");
}

/// A tiny deterministic generator for picking resources.
fn next(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *seed >> 33
}

async fn omega_task(store: PgLockStore, owner: String, mut seed: u64, rounds: u64) {
    for _ in 0..rounds {
        let r = format!("r{}", next(&mut seed) % RESOURCES);
        drop(take(&store, &r, &owner).await);
    }
}

async fn advisory_task(db: std::sync::Arc<Client>, mut seed: u64, rounds: u64) {
    let lock = db
        .prepare("SELECT pg_advisory_lock($1)")
        .await
        .expect("prepare");
    let unlock = db
        .prepare("SELECT pg_advisory_unlock($1)")
        .await
        .expect("prepare");
    for _ in 0..rounds {
        let k = (next(&mut seed) % RESOURCES) as i64;
        db.query_one(&lock, &[&k]).await.expect("lock");
        db.query_one(&unlock, &[&k]).await.expect("unlock");
    }
}

fn peer(mode: String) {
    let url = std::env::var("OMEGA_PG_URL").expect("a peer gets OMEGA_PG_URL");
    let schema = std::env::var("OMEGA_PG_BENCH_SCHEMA").expect("a peer gets its schema");
    runtime().block_on(async move {
        let mut out = tokio::io::stdout();
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        let db = connect(&url, &schema).await;
        let store = store(&url, &schema).await;
        let mut dbs = Vec::new();
        for _ in 0..TASKS {
            dbs.push(std::sync::Arc::new(connect(&url, &schema).await));
        }
        say(&mut out, "ready").await;
        let lock = db
            .prepare("SELECT pg_advisory_lock($1)")
            .await
            .expect("prepare");
        let unlock = db
            .prepare("SELECT pg_advisory_unlock($1)")
            .await
            .expect("prepare");
        while let Ok(Some(line)) = lines.next_line().await {
            match (mode.as_str(), line.as_str()) {
                (_, "exit") => break,
                ("handoff-omega", "go") => {
                    let g = take(&store, "h", "peer").await;
                    say(&mut out, "got").await;
                    g.release().await.expect("released");
                    say(&mut out, "released").await;
                }
                ("handoff-advisory", "go") => {
                    db.query_one(&lock, &[&KEY]).await.expect("lock");
                    say(&mut out, "got").await;
                    db.query_one(&unlock, &[&KEY]).await.expect("unlock");
                    say(&mut out, "released").await;
                }
                ("throughput-omega", "run") | ("throughput-advisory", "run") => {
                    let pid = u64::from(std::process::id());
                    let mut tasks = Vec::new();
                    for (t, tdb) in dbs.iter().enumerate() {
                        let seed = pid * 131 + t as u64;
                        tasks.push(if mode == "throughput-omega" {
                            tokio::spawn(omega_task(
                                store.clone(),
                                format!("p{pid}-t{t}"),
                                seed,
                                ROUNDS,
                            ))
                        } else {
                            tokio::spawn(advisory_task(tdb.clone(), seed, ROUNDS))
                        });
                    }
                    for t in tasks {
                        t.await.expect("a task");
                    }
                    say(&mut out, "done").await;
                }
                (m, l) => panic!("peer {m}: unexpected {l:?}"),
            }
        }
        let _ = store.close().await;
    });
}

// ---- the cases -----------------------------------------------------------------------

fn uncontended(c: &mut Criterion, rt: &Runtime, url: &str, schema: &str) {
    let mut group = c.benchmark_group("pg_uncontended");
    group.throughput(Throughput::Elements(OPS));
    let store = rt.block_on(store(url, schema));
    group.bench_function(BenchmarkId::from_parameter("omega_drop"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t0 = Instant::now();
                for _ in 0..iters * OPS {
                    drop(take(&store, "r", "bench").await);
                }
                t0.elapsed()
            })
        })
    });
    group.bench_function(BenchmarkId::from_parameter("omega_release"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t0 = Instant::now();
                for _ in 0..iters * OPS {
                    let released = take(&store, "r", "bench").await.release().await;
                    assert_eq!(released, Ok(true));
                }
                t0.elapsed()
            })
        })
    });
    let db = rt.block_on(connect(url, schema));
    let (lock, unlock) = rt.block_on(async {
        (
            db.prepare("SELECT pg_advisory_lock($1)")
                .await
                .expect("prepare"),
            db.prepare("SELECT pg_advisory_unlock($1)")
                .await
                .expect("prepare"),
        )
    });
    group.bench_function(BenchmarkId::from_parameter("advisory_lock"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t0 = Instant::now();
                for _ in 0..iters * OPS {
                    db.query_one(&lock, &[&KEY]).await.expect("lock");
                    let r = db.query_one(&unlock, &[&KEY]).await.expect("unlock");
                    assert!(r.get::<_, bool>(0));
                }
                t0.elapsed()
            })
        })
    });
    group.finish();
}

/// Polls `sql` until it returns `want` (outside the timed part).
async fn until(db: &Client, sql: &str, want: i64) {
    loop {
        let got: i64 = db.query_one(sql, &[]).await.expect("poll").get(0);
        if got == want {
            return;
        }
        tokio::task::yield_now().await;
    }
}

fn handoff(c: &mut Criterion, rt: &Runtime, url: &str, schema: &str) {
    let mut group = c.benchmark_group("pg_handoff");
    let store = rt.block_on(store(url, schema));
    let db = rt.block_on(connect(url, schema));
    let queued = format!(
        "SELECT count(*) FROM \"{schema}\".waiters WHERE resource = 'h' AND req IS NOT NULL"
    );
    let mut peer = rt.block_on(Peer::start("handoff-omega", url, schema));
    group.bench_function(BenchmarkId::from_parameter("omega"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                let mut g = take(&store, "h", "bench").await;
                for _ in 0..iters {
                    peer.send("go").await;
                    until(&db, &queued, 1).await;
                    let t0 = Instant::now();
                    g.release().await.expect("released");
                    assert_eq!(peer.line().await, "got");
                    total += t0.elapsed();
                    assert_eq!(peer.line().await, "released");
                    g = take(&store, "h", "bench").await;
                }
                drop(g);
                total
            })
        })
    });
    rt.block_on(peer.stop());
    let mut peer = rt.block_on(Peer::start("handoff-advisory", url, schema));
    let waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted";
    group.bench_function(BenchmarkId::from_parameter("advisory"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    db.query_one("SELECT pg_advisory_lock($1)", &[&KEY])
                        .await
                        .expect("lock");
                    peer.send("go").await;
                    until(&db, waiting, 1).await;
                    let t0 = Instant::now();
                    db.query_one("SELECT pg_advisory_unlock($1)", &[&KEY])
                        .await
                        .expect("unlock");
                    assert_eq!(peer.line().await, "got");
                    total += t0.elapsed();
                    assert_eq!(peer.line().await, "released");
                }
                total
            })
        })
    });
    rt.block_on(peer.stop());
    group.finish();
}

fn throughput(c: &mut Criterion, rt: &Runtime, url: &str, schema: &str) {
    let mut group = c.benchmark_group("pg_throughput");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(PROCS as u64 * TASKS as u64 * ROUNDS));
    for (mode, name) in [
        ("throughput-omega", "omega_8x8_16"),
        ("throughput-advisory", "advisory_8x8_16"),
    ] {
        let mut peers = Vec::new();
        for _ in 0..PROCS {
            peers.push(rt.block_on(Peer::start(mode, url, schema)));
        }
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let t0 = Instant::now();
                    for _ in 0..iters {
                        for p in &mut peers {
                            p.send("run").await;
                        }
                        for p in &mut peers {
                            assert_eq!(p.line().await, "done");
                        }
                    }
                    t0.elapsed()
                })
            })
        });
        for p in peers {
            rt.block_on(p.stop());
        }
    }
    group.finish();
}

/// Criterion's entry point, or a peer's when [`PEER_ENV`] is set.
fn main() {
    if let Ok(mode) = std::env::var(PEER_ENV) {
        return peer(mode);
    }
    let Ok(url) = std::env::var("OMEGA_PG_URL") else {
        eprintln!("lockstore_pg: SKIPPED — set OMEGA_PG_URL (e.g. postgres://postgres@127.0.0.1:5432/test)");
        return;
    };
    let rt = runtime();
    let schema = format!("omega_bench_{}", std::process::id());
    let answers = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(5),
            tokio_postgres::connect(&url, tokio_postgres::NoTls),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    });
    if !answers {
        eprintln!("lockstore_pg: SKIPPED — no PostgreSQL answers at {url}");
        return;
    }
    let mut c = common::criterion(3);
    uncontended(&mut c, &rt, &url, &schema);
    handoff(&mut c, &rt, &url, &schema);
    throughput(&mut c, &rt, &url, &schema);
    c.final_summary();
    rt.block_on(async {
        let db = connect(&url, &schema).await;
        db.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await
            .expect("drop the bench schema");
    });
}
