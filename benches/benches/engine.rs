//! `engine`: the cost of the `Engine` front door (issue 11).
//!
//! Criterion groups, set up outside the timed loops:
//! * `round_trip` — one `(+ 1 2)` script: `engine_eval_from_other_thread` (the bench thread
//!   drives a current-thread tokio runtime and awaits `engine.eval`; the script runs on the
//!   engine's driver thread) vs `runtime_run_script_same_thread` (a `Runtime` and its
//!   scheduler driven on the bench thread, `eval_str` awaited inside `run_until`) vs
//!   `runtime_eval_str_sync` (the synchronous floor, no task at all).
//! * `scripts_10k` — 10,000 `(+ 1 2)` scripts: `engine_spawn_all_then_await` (all spawned
//!   from the bench thread, then awaited) vs `runtime_on_its_thread` (10,000 `eval_str`
//!   in sequence on the thread driving the scheduler).

use std::time::Duration;

use criterion::Criterion;
use omega_lisp::{Engine, Runtime as Lisp, ScriptOptions};
use omega_sched::Scheduler;

const SRC: &str = "(+ 1 2)";

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("round_trip");
    g.measurement_time(Duration::from_secs(3));
    let rt = tokio_rt();
    let engine = rt.block_on(async { Engine::builder().output(std::io::sink()).build() });
    let engine = engine.expect("an engine");
    g.bench_function("engine_eval_from_other_thread", |b| {
        b.iter(|| rt.block_on(engine.eval(SRC, "<bench>")).expect("evaluates"))
    });
    let sched = Scheduler::new();
    let lisp = Lisp::builder()
        .scheduler(sched.clone())
        .output(std::io::sink())
        .build();
    g.bench_function("runtime_run_script_same_thread", |b| {
        b.iter(|| {
            rt.block_on(sched.run_until(lisp.eval_str(SRC, "<bench>")))
                .expect("evaluates")
        })
    });
    g.bench_function("runtime_eval_str_sync", |b| {
        b.iter(|| lisp.eval_sync(SRC, "<bench>").expect("evaluates"))
    });
    g.finish();
    rt.block_on(engine.shutdown("bench done"));
}

fn scripts_10k(c: &mut Criterion) {
    let mut g = c.benchmark_group("scripts_10k");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let rt = tokio_rt();
    let engine = rt.block_on(async { Engine::builder().output(std::io::sink()).build() });
    let engine = engine.expect("an engine");
    g.bench_function("engine_spawn_all_then_await", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut hs = Vec::with_capacity(10_000);
                for _ in 0..10_000 {
                    hs.push(
                        engine
                            .spawn(SRC, ScriptOptions::new())
                            .await
                            .expect("spawned"),
                    );
                }
                for h in hs {
                    h.await.expect("evaluates");
                }
            })
        })
    });
    let sched = Scheduler::new();
    let lisp = Lisp::builder()
        .scheduler(sched.clone())
        .output(std::io::sink())
        .build();
    g.bench_function("runtime_on_its_thread", |b| {
        b.iter(|| {
            rt.block_on(sched.run_until(async {
                for _ in 0..10_000 {
                    lisp.eval_str(SRC, "<bench>").await.expect("evaluates");
                }
            }))
        })
    });
    g.finish();
    rt.block_on(engine.shutdown("bench done"));
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    round_trip(&mut c);
    scripts_10k(&mut c);
    c.final_summary();
}
