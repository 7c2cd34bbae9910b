//! `limited_100k`: 100k tasks that each yield once, at most 64 admitted at a time (SPEC §9,
//! goal: omega ÷ tokio ≤ 0.8).
//!
//! Cases, all on one tokio current-thread runtime built outside the timed loop:
//! * `omega_max64` — a scheduler with `max_concurrent_tasks(64)`, 100k
//!   [`Scheduler::submit`]ted tasks each running `omega_sched::yield_now().await`, then one
//!   [`Scheduler::await_all`];
//! * `omega_local_max64` — the same with [`Scheduler::submit_local`];
//! * `tokio_semaphore_joinset` — the baseline: `JoinSet::spawn` of 100k tasks that each
//!   acquire a permit of a `Semaphore::new(64)`, then `tokio::task::yield_now().await`, then
//!   drain the set with `join_next`;
//! * `tokio_semaphore_joinset_local` — the baseline with `JoinSet::spawn_local` inside a
//!   `LocalSet`.

mod common;

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use omega_sched::{Scheduler, TaskOptions};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::{JoinSet, LocalSet};

/// Tasks per iteration.
const N: usize = 100_000;
/// Tasks admitted (omega) or holding a permit (tokio) at once.
const LIMIT: usize = 64;

/// The runtime every case runs on: current-thread, timers and I/O enabled.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the OS could not create a tokio runtime")
}

/// One iteration of an omega case; returns how many tasks completed.
fn omega_run(rt: &Runtime, sched: &Scheduler, local: bool, n: usize) -> usize {
    rt.block_on(sched.run_until(async {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let body = async {
                    omega_sched::yield_now()
                        .await
                        .expect("nothing cancels these tasks");
                };
                if local {
                    sched.submit_local(body, TaskOptions::new())
                } else {
                    sched.submit(body, TaskOptions::new())
                }
            })
            .collect();
        sched
            .await_all(handles)
            .await
            .expect("yielding tasks succeed")
            .len()
    }))
}

/// The body of one baseline task: hold a permit across one yield.
async fn tokio_body(sem: Arc<Semaphore>) {
    let _permit = sem.acquire().await.expect("the semaphore is never closed");
    tokio::task::yield_now().await;
}

/// Drains `set`; returns how many tasks completed.
async fn join_all(mut set: JoinSet<()>) -> usize {
    let mut done = 0;
    while let Some(r) = set.join_next().await {
        r.expect("yielding tasks succeed");
        done += 1;
    }
    done
}

/// One iteration of the baseline on the runtime's own scheduler.
fn tokio_run(rt: &Runtime, n: usize) -> usize {
    rt.block_on(async {
        let sem = Arc::new(Semaphore::new(LIMIT));
        let mut set = JoinSet::new();
        for _ in 0..n {
            set.spawn(tokio_body(sem.clone()));
        }
        join_all(set).await
    })
}

/// One iteration of the baseline inside a `LocalSet`.
fn tokio_local_run(rt: &Runtime, local: &LocalSet, n: usize) -> usize {
    rt.block_on(local.run_until(async {
        let sem = Arc::new(Semaphore::new(LIMIT));
        let mut set = JoinSet::new();
        for _ in 0..n {
            set.spawn_local(tokio_body(sem.clone()));
        }
        join_all(set).await
    }))
}

fn limited(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("limited_100k");
    group.throughput(Throughput::Elements(N as u64));
    // One iteration takes tens of milliseconds: equal-sized samples, not a linear ramp.
    group.sampling_mode(SamplingMode::Flat);

    for (name, local) in [("omega_max64", false), ("omega_local_max64", true)] {
        let sched = Scheduler::builder().max_concurrent_tasks(LIMIT).build();
        // Sanity check (untimed): every task runs to completion under the limit.
        assert_eq!(omega_run(&rt, &sched, local, 1_000), 1_000);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| omega_run(&rt, &sched, local, N))
        });
    }

    assert_eq!(tokio_run(&rt, 1_000), 1_000);
    group.bench_function(
        BenchmarkId::from_parameter("tokio_semaphore_joinset"),
        |b| b.iter(|| tokio_run(&rt, N)),
    );

    let local = LocalSet::new();
    assert_eq!(tokio_local_run(&rt, &local, 1_000), 1_000);
    group.bench_function(
        BenchmarkId::from_parameter("tokio_semaphore_joinset_local"),
        |b| b.iter(|| tokio_local_run(&rt, &local, N)),
    );
    group.finish();
}

/// Criterion's entry point (what `criterion_group!` and `criterion_main!` would generate,
/// written out so that no undocumented public item is needed): small samples so that the
/// whole suite runs in a few minutes; command-line options still override them.
fn main() {
    let mut c = common::criterion(5);
    limited(&mut c);
    c.final_summary();
}
