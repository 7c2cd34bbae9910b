//! `locks`: the scheduler's named resource locks vs tokio's locks (SPEC §9, issue 5; goal for
//! the uncontended case: omega ÷ tokio ≤ 2.0).
//!
//! Cases, all on one tokio current-thread runtime built outside the timed loop:
//! * `lock_uncontended/omega` — one scheduler task acquires and releases (drops the guard of)
//!   `locks.acquire("r", LockMode::Write).await`, [`OPS`] times; vs `tokio_rwlock`:
//!   `RwLock::write().await` and drop, [`OPS`] times, in one task. Only the loop is timed
//!   (`iter_custom`, the clock read inside the task), so spawning the task is excluded.
//! * `lock_contended/omega_64` — 64 scheduler tasks, each [`ROUNDS`] times: acquire "r" for
//!   writing, `omega_sched::yield_now()`, release; vs `tokio_rwlock_64`: 64 `spawn_local`
//!   tasks doing the same on one `RwLock` with `tokio::task::yield_now()`. Every grant after
//!   the first of a round is a hand-off to a queued waiter. Timed: submit to last join.
//! * `lock_acquire_all/omega_8` — `acquire_all` of 8 resources for writing and release, [`OPS`]
//!   times in one task; vs `tokio_8_mutexes_ordered`: lock 8 `tokio::sync::Mutex`es in a
//!   fixed order (the usual deadlock-free discipline) and drop the guards. Timed as the
//!   uncontended case.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use omega_sched::{LockMode, Scheduler, TaskOptions};
use tokio::runtime::Runtime;
use tokio::sync::{Mutex, RwLock};
use tokio::task::{JoinSet, LocalSet};

/// Acquire+release pairs per iteration of the single-task cases.
const OPS: u64 = 10_000;
/// Tasks of the contended case.
const TASKS: usize = 64;
/// Acquire → yield → release rounds per task of the contended case.
const ROUNDS: usize = 100;
/// The resources of a batch.
const BATCH: [&str; 8] = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"];

/// The runtime every case runs on: current-thread, timers and I/O enabled.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the OS could not create a tokio runtime")
}

/// Runs `body` as one task on `sched` and returns its output.
fn in_task<T: Send + 'static>(
    rt: &Runtime,
    sched: &Scheduler,
    body: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    rt.block_on(sched.run_until(async {
        sched
            .submit(body, TaskOptions::new())
            .await
            .expect("the bench task succeeds")
    }))
}

/// `iters × OPS` uncontended acquire+release of "r" in one scheduler task; the loop's time.
fn omega_uncontended(rt: &Runtime, sched: &Scheduler, iters: u64) -> Duration {
    let locks = sched.locks().clone();
    in_task(rt, sched, async move {
        let start = Instant::now();
        for _ in 0..iters * OPS {
            let g = locks
                .acquire("r", LockMode::Write)
                .await
                .expect("nobody else holds r");
            drop(g);
        }
        start.elapsed()
    })
}

/// The baseline of [`omega_uncontended`] on a `tokio::sync::RwLock`.
fn tokio_uncontended(rt: &Runtime, lock: &RwLock<u64>, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters * OPS {
            let mut g = lock.write().await;
            *g += 1;
            drop(g);
        }
        start.elapsed()
    })
}

/// 64 scheduler tasks × 100 rounds of acquire → yield → release on "r"; returns the grants.
fn omega_contended(rt: &Runtime, sched: &Scheduler) -> usize {
    rt.block_on(sched.run_until(async {
        let handles = (0..TASKS)
            .map(|_| {
                let locks = sched.locks().clone();
                sched.submit(
                    async move {
                        for _ in 0..ROUNDS {
                            let g = locks
                                .acquire("r", LockMode::Write)
                                .await
                                .expect("the lock is granted in turn");
                            omega_sched::yield_now()
                                .await
                                .expect("nothing cancels these tasks");
                            drop(g);
                        }
                        ROUNDS
                    },
                    TaskOptions::new(),
                )
            })
            .collect();
        let done = sched.await_all(handles).await.expect("tasks succeed");
        done.iter().sum()
    }))
}

/// The baseline of [`omega_contended`]: `spawn_local` tasks on one `RwLock`.
fn tokio_contended(rt: &Runtime, local: &LocalSet) -> usize {
    rt.block_on(local.run_until(async {
        let lock = Arc::new(RwLock::new(0usize));
        let mut set = JoinSet::new();
        for _ in 0..TASKS {
            let lock = lock.clone();
            set.spawn_local(async move {
                for _ in 0..ROUNDS {
                    let mut g = lock.write().await;
                    tokio::task::yield_now().await;
                    *g += 1;
                    drop(g);
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("tasks succeed");
        }
        let n = *lock.read().await;
        n
    }))
}

/// `iters × OPS` batches of the 8 [`BATCH`] resources for writing, in one scheduler task.
fn omega_acquire_all(rt: &Runtime, sched: &Scheduler, iters: u64) -> Duration {
    let locks = sched.locks().clone();
    in_task(rt, sched, async move {
        let items: Vec<(&str, LockMode)> = BATCH.iter().map(|r| (*r, LockMode::Write)).collect();
        let start = Instant::now();
        for _ in 0..iters * OPS {
            let guards = locks
                .acquire_all(&items)
                .await
                .expect("nobody else holds these");
            debug_assert_eq!(guards.len(), BATCH.len());
            drop(guards);
        }
        start.elapsed()
    })
}

/// The baseline of [`omega_acquire_all`]: 8 mutexes locked in index order, then dropped.
fn tokio_acquire_all(rt: &Runtime, mutexes: &[Mutex<u64>], iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters * OPS {
            let mut guards = Vec::with_capacity(mutexes.len());
            for m in mutexes {
                guards.push(m.lock().await);
            }
            *guards[0] += 1;
            drop(guards);
        }
        start.elapsed()
    })
}

fn lock_uncontended(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("lock_uncontended");
    group.throughput(Throughput::Elements(OPS));

    let sched = Scheduler::new();
    // Sanity check (untimed): the loop runs, every grant was a write, nothing is left held.
    omega_uncontended(rt, &sched, 1);
    assert_eq!(sched.lock_stats().totals.acquisitions_write, OPS);
    assert_eq!(sched.locks().resource_count(), 0);
    group.bench_function(BenchmarkId::from_parameter("omega"), |b| {
        b.iter_custom(|iters| omega_uncontended(rt, &sched, iters))
    });

    let lock = RwLock::new(0);
    tokio_uncontended(rt, &lock, 1);
    assert_eq!(*lock.try_read().expect("released"), OPS);
    group.bench_function(BenchmarkId::from_parameter("tokio_rwlock"), |b| {
        b.iter_custom(|iters| tokio_uncontended(rt, &lock, iters))
    });
    group.finish();
}

fn lock_contended(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("lock_contended");
    group.throughput(Throughput::Elements((TASKS * ROUNDS) as u64));
    // One omega iteration takes most of a second: equal-sized samples, not a linear ramp.
    group.sampling_mode(SamplingMode::Flat);

    let sched = Scheduler::new();
    // Sanity check (untimed): every round was granted, and the holders really queued.
    assert_eq!(omega_contended(rt, &sched), TASKS * ROUNDS);
    let totals = sched.lock_stats().totals;
    assert_eq!(totals.acquisitions_write, (TASKS * ROUNDS) as u64);
    assert!(totals.contended > 0, "no waits recorded: {totals:?}");
    assert_eq!(sched.locks().resource_count(), 0);
    group.bench_function(BenchmarkId::from_parameter("omega_64"), |b| {
        b.iter(|| omega_contended(rt, &sched))
    });

    let local = LocalSet::new();
    assert_eq!(tokio_contended(rt, &local), TASKS * ROUNDS);
    group.bench_function(BenchmarkId::from_parameter("tokio_rwlock_64"), |b| {
        b.iter(|| tokio_contended(rt, &local))
    });
    group.finish();
}

fn lock_acquire_all(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("lock_acquire_all");
    group.throughput(Throughput::Elements(OPS));

    let sched = Scheduler::new();
    omega_acquire_all(rt, &sched, 1);
    assert_eq!(
        sched.lock_stats().totals.acquisitions_write,
        OPS * BATCH.len() as u64
    );
    assert_eq!(sched.locks().resource_count(), 0);
    group.bench_function(BenchmarkId::from_parameter("omega_8"), |b| {
        b.iter_custom(|iters| omega_acquire_all(rt, &sched, iters))
    });

    let mutexes: Vec<Mutex<u64>> = BATCH.iter().map(|_| Mutex::new(0)).collect();
    tokio_acquire_all(rt, &mutexes, 1);
    assert_eq!(*mutexes[0].try_lock().expect("released"), OPS);
    group.bench_function(
        BenchmarkId::from_parameter("tokio_8_mutexes_ordered"),
        |b| b.iter_custom(|iters| tokio_acquire_all(rt, &mutexes, iters)),
    );
    group.finish();
}

/// Criterion's entry point (what `criterion_group!` and `criterion_main!` would generate,
/// written out so that no undocumented public item is needed): small samples so that the
/// target runs in under a minute; command-line options still override them.
fn main() {
    let rt = runtime();
    let mut c = common::criterion(2);
    lock_uncontended(&mut c, &rt);
    lock_contended(&mut c, &rt);
    lock_acquire_all(&mut c, &rt);
    c.final_summary();
}
