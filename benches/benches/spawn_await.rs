//! `spawn_await`: spawn 100k no-op tasks, then await every one of them (SPEC §9, goal: omega ÷
//! tokio ≤ 1.0).
//!
//! Cases, all on one tokio current-thread runtime built outside the timed loop:
//! * `omega` — [`Scheduler::submit`] (the `Send` path) inside [`Scheduler::run_until`], then
//!   each [`TaskHandle`](omega_sched::TaskHandle) awaited in turn;
//! * `omega_local` — the same with [`Scheduler::submit_local`] (the `!Send` path the Lisp VM
//!   uses);
//! * `omega_await_all` — [`Scheduler::submit`], then one [`Scheduler::await_all`];
//! * `tokio_localset` — the baseline: `LocalSet::run_until` with `spawn_local`, then each
//!   `JoinHandle` awaited in turn.

mod common;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use omega_sched::{Scheduler, TaskOptions};
use tokio::runtime::Runtime;
use tokio::task::LocalSet;

/// Tasks per iteration.
const N: usize = 100_000;

/// The runtime every case runs on: current-thread, timers and I/O enabled.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the OS could not create a tokio runtime")
}

/// How the omega cases submit and await.
#[derive(Clone, Copy, Debug)]
enum Omega {
    /// `submit`, then await each handle.
    Submit,
    /// `submit_local`, then await each handle.
    SubmitLocal,
    /// `submit`, then `await_all`.
    AwaitAll,
}

/// One iteration of an omega case: `n` no-op tasks submitted and awaited; returns how many
/// completed.
fn omega_run(rt: &Runtime, sched: &Scheduler, how: Omega, n: usize) -> usize {
    rt.block_on(sched.run_until(async {
        match how {
            Omega::Submit | Omega::AwaitAll => {
                let handles: Vec<_> = (0..n)
                    .map(|_| sched.submit(async {}, TaskOptions::new()))
                    .collect();
                if let Omega::AwaitAll = how {
                    return sched
                        .await_all(handles)
                        .await
                        .expect("no-op tasks succeed")
                        .len();
                }
                let mut done = 0;
                for h in handles {
                    h.await.expect("no-op tasks succeed");
                    done += 1;
                }
                done
            }
            Omega::SubmitLocal => {
                let handles: Vec<_> = (0..n)
                    .map(|_| sched.submit_local(async {}, TaskOptions::new()))
                    .collect();
                let mut done = 0;
                for h in handles {
                    h.await.expect("no-op tasks succeed");
                    done += 1;
                }
                done
            }
        }
    }))
}

/// One iteration of the baseline: `n` no-op `spawn_local` tasks joined; returns how many
/// completed.
fn tokio_run(rt: &Runtime, local: &LocalSet, n: usize) -> usize {
    rt.block_on(local.run_until(async {
        let handles: Vec<_> = (0..n).map(|_| tokio::task::spawn_local(async {})).collect();
        let mut done = 0;
        for h in handles {
            h.await.expect("no-op tasks succeed");
            done += 1;
        }
        done
    }))
}

fn spawn_await(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("spawn_await");
    group.throughput(Throughput::Elements(N as u64));
    // One iteration takes tens of milliseconds: equal-sized samples, not a linear ramp.
    group.sampling_mode(SamplingMode::Flat);

    for (name, how) in [
        ("omega", Omega::Submit),
        ("omega_local", Omega::SubmitLocal),
        ("omega_await_all", Omega::AwaitAll),
    ] {
        let sched = Scheduler::new();
        // Sanity check (untimed): every task runs to completion.
        assert_eq!(omega_run(&rt, &sched, how, 1_000), 1_000);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| omega_run(&rt, &sched, how, N))
        });
    }

    let local = LocalSet::new();
    assert_eq!(tokio_run(&rt, &local, 1_000), 1_000);
    group.bench_function(BenchmarkId::from_parameter("tokio_localset"), |b| {
        b.iter(|| tokio_run(&rt, &local, N))
    });
    group.finish();
}

/// Criterion's entry point (what `criterion_group!` and `criterion_main!` would generate,
/// written out so that no undocumented public item is needed): small samples so that the
/// whole suite runs in a few minutes; command-line options still override them.
fn main() {
    let mut c = common::criterion(5);
    spawn_await(&mut c);
    c.final_summary();
}
