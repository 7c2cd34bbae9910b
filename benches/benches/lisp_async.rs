//! `lisp_async`: async Lisp on the scheduler (SPEC §9, issue 4).
//!
//! Criterion groups, all on one tokio current-thread runtime built outside the timed loop:
//! * `llm_makespan` — wall-clock makespan (real clock) of 1000 mock LLM calls of 20 ms under
//!   `max_concurrent_llm_calls(100)`; the ideal is 10 waves × 20 ms = 200 ms (goal: makespan ÷
//!   ideal ≤ 1.02). Cases: `omega_1000x20ms_max100` (a Lisp script: `await-all` of 1000
//!   `async` tasks that each call `llm.infer` on a [`MockProvider`] with 20 ms latency);
//!   `omega_sched_1000x20ms_max100` (the floor without Lisp: 1000 Rust tasks on the
//!   scheduler that each hold an `"llm"` pool permit across `omega_sched::sleep(20 ms)`);
//!   `tokio_semaphore_1000x20ms_max100` (the floor without Omega: 1000 `spawn_local` tasks
//!   holding a `Semaphore::new(100)` permit across `tokio::time::sleep(20 ms)`). Measured
//!   with `iter_custom`; the median makespan and its ratio to the ideal are printed.
//! * `lisp_fanout` — `(await-all (map (lambda (i) (async (lambda () i))) (range 100000)))`
//!   as a script (`omega_100k`) vs CPython's `asyncio.gather(*(f(i) for i in range(100000)))`
//!   with a trivial coroutine (`python_asyncio_gather`): one `python3` subprocess per
//!   criterion sample, timing only the `gather` with `time.perf_counter` (interpreter
//!   start-up excluded). Skipped with a message if `python3` is absent.
//!
//! One-shot measurement, printed before criterion runs: `suspended_memory` — resident memory
//! per suspended task with 100k tasks alive, each parked in a 60 s sleep (goal ≤ 1 KiB per
//! Lisp task). Each case runs in a fresh child process (this binary, re-executed with
//! [`MEMORY_ENV`] set) so that neither criterion nor an earlier case has warmed the
//! allocator: the child reads `VmRSS` from `/proc/self/status` before spawning and once all
//! tasks are suspended, then cancels them all and settles. Cases: `omega_100k` (Lisp
//! `(async (lambda () (sleep 60000)))` ×100k, awaited by the script's top level),
//! `omega_sched_100k` (Rust tasks on the scheduler in `omega_sched::sleep`),
//! `tokio_100k` (`spawn_local` of `tokio::time::sleep`), and the baselines of other runtimes
//! on the same workload, each a script run by its own interpreter: `node_100k`
//! (`benches/baselines/suspended_memory.js`: async functions parked in
//! `await new Promise(r => setTimeout(r, 60000))`) and `python_asyncio_100k`
//! (`benches/baselines/suspended_memory.py`: `asyncio` tasks in `asyncio.sleep(60)`); a
//! baseline whose interpreter is not on `PATH` is skipped with a message. A table of all
//! cases is printed at the end.

mod common;

use std::cell::{Cell, RefCell};
use std::process::Command;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use omega_lisp::Runtime as Lisp;
use omega_llm::MockProvider;
use omega_sched::{Scheduler, TaskOptions, TaskState};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::{JoinSet, LocalSet};

/// LLM calls per makespan iteration.
const CALLS: usize = 1000;
/// Mock latency of one call.
const LATENCY: Duration = Duration::from_millis(20);
/// LLM calls in flight at once.
const MAX_LLM: usize = 100;
/// Tasks of the fan-out and of the memory measurement.
const N: usize = 100_000;
/// Environment variable that turns this binary into a memory-measuring child:
/// `<case>:<tasks>`, e.g. `omega:100000`.
const MEMORY_ENV: &str = "OMEGA_BENCH_SUSPENDED";
/// Set (to anything) beside [`MEMORY_ENV`]: the `omega*` Lisp cases print their figures and
/// exit at once, with every task still suspended, so that a heap profiler's "leaked at
/// exit" report is exactly what the suspended tasks hold (`heaptrack`, see the README).
const EXIT_ENV: &str = "OMEGA_BENCH_SUSPENDED_EXIT";

/// The runtime every case runs on: current-thread, timers and I/O enabled.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the OS could not create a tokio runtime")
}

/// A Lisp runtime on a fresh scheduler; output is discarded.
fn lisp(sched: &Scheduler, llm: MockProvider) -> Lisp {
    Lisp::builder()
        .scheduler(sched.clone())
        .llm(Arc::new(llm))
        .output(std::io::sink())
        .build()
}

/// Runs `src` as a script on `lisp`'s scheduler; returns the length of its list value.
fn run_list(rt: &Runtime, lisp: &Lisp, src: &str) -> usize {
    let sched = lisp.scheduler();
    let v = rt
        .block_on(sched.run_until(lisp.eval_str(src, "bench")))
        .unwrap_or_else(|e| panic!("the bench script failed: {e}"));
    v.list_to_vec().expect("the script returns a list").len()
}

/// The makespan script: `n` concurrent `llm.infer` calls awaited together.
fn makespan_script(n: usize) -> String {
    format!("(await-all (map (lambda (i) (async (lambda () (llm.infer \"p\")))) (range {n})))")
}

/// `n` Rust tasks on `sched`, each holding an `"llm"` permit across a sleep of [`LATENCY`].
fn sched_makespan(rt: &Runtime, sched: &Scheduler, n: usize) -> usize {
    rt.block_on(sched.run_until(async {
        let handles = (0..n)
            .map(|_| {
                let pool = sched.llm_pool().clone();
                sched.submit(
                    async move {
                        let _permit = pool.acquire().await.expect("nothing cancels these");
                        omega_sched::sleep(LATENCY)
                            .await
                            .expect("nothing cancels these");
                    },
                    TaskOptions::new(),
                )
            })
            .collect();
        sched.await_all(handles).await.expect("tasks succeed").len()
    }))
}

/// `n` `spawn_local` tasks, each holding a permit of a `Semaphore::new(MAX_LLM)` across a
/// tokio sleep of [`LATENCY`].
fn tokio_makespan(rt: &Runtime, local: &LocalSet, n: usize) -> usize {
    rt.block_on(local.run_until(async {
        let sem = Arc::new(Semaphore::new(MAX_LLM));
        let mut set = JoinSet::new();
        for _ in 0..n {
            let sem = sem.clone();
            set.spawn_local(async move {
                let _permit = sem.acquire().await.expect("never closed");
                tokio::time::sleep(LATENCY).await;
            });
        }
        let mut done = 0;
        while let Some(r) = set.join_next().await {
            r.expect("tasks succeed");
            done += 1;
        }
        done
    }))
}

/// Times `iters` runs of `f`, remembering each makespan in `seen`.
fn timed(iters: u64, seen: &RefCell<Vec<Duration>>, mut f: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        f();
        let d = start.elapsed();
        seen.borrow_mut().push(d);
        total += d;
    }
    total
}

/// Prints the median makespan of `seen` and its ratio to the ideal.
fn report_makespan(case: &str, seen: &RefCell<Vec<Duration>>) {
    let mut v = seen.borrow().clone();
    if v.is_empty() {
        return;
    }
    v.sort();
    let median = v[v.len() / 2];
    let ideal = LATENCY * (CALLS / MAX_LLM) as u32;
    println!(
        "llm_makespan/{case}: median makespan {:.1} ms over {} runs (min {:.1} ms), \
         ratio to ideal {} ms = {:.3} (goal <= 1.02)",
        median.as_secs_f64() * 1e3,
        v.len(),
        v[0].as_secs_f64() * 1e3,
        ideal.as_millis(),
        median.as_secs_f64() / ideal.as_secs_f64(),
    );
}

fn llm_makespan(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("llm_makespan");
    group.sampling_mode(SamplingMode::Flat);

    let sched = Scheduler::builder()
        .max_concurrent_llm_calls(MAX_LLM)
        .build();
    let lisp = lisp(&sched, MockProvider::new().latency(LATENCY));
    let src = makespan_script(CALLS);
    // Sanity check (untimed): every call answers and the cap holds.
    assert_eq!(run_list(rt, &lisp, &src), CALLS);
    let stats = sched.stats();
    assert!(
        stats.pools[0].peak_in_use <= MAX_LLM,
        "the llm pool exceeded its cap: {stats:?}"
    );
    let seen = RefCell::new(Vec::new());
    group.bench_function(BenchmarkId::from_parameter("omega_1000x20ms_max100"), |b| {
        b.iter_custom(|iters| {
            timed(iters, &seen, || {
                assert_eq!(run_list(rt, &lisp, &src), CALLS);
            })
        })
    });
    report_makespan("omega_1000x20ms_max100", &seen);

    let sched = Scheduler::builder()
        .max_concurrent_llm_calls(MAX_LLM)
        .build();
    assert_eq!(sched_makespan(rt, &sched, CALLS), CALLS);
    let seen = RefCell::new(Vec::new());
    group.bench_function(
        BenchmarkId::from_parameter("omega_sched_1000x20ms_max100"),
        |b| {
            b.iter_custom(|iters| {
                timed(iters, &seen, || {
                    assert_eq!(sched_makespan(rt, &sched, CALLS), CALLS);
                })
            })
        },
    );
    report_makespan("omega_sched_1000x20ms_max100", &seen);

    let local = LocalSet::new();
    assert_eq!(tokio_makespan(rt, &local, CALLS), CALLS);
    let seen = RefCell::new(Vec::new());
    group.bench_function(
        BenchmarkId::from_parameter("tokio_semaphore_1000x20ms_max100"),
        |b| {
            b.iter_custom(|iters| {
                timed(iters, &seen, || {
                    assert_eq!(tokio_makespan(rt, &local, CALLS), CALLS);
                })
            })
        },
    );
    report_makespan("tokio_semaphore_1000x20ms_max100", &seen);
    group.finish();
}

/// The Python side of `lisp_fanout`: `argv[1]` tasks, `argv[2]` timed gathers, one duration
/// in nanoseconds per line.
const PYTHON_GATHER: &str = r#"
import asyncio, sys, time

async def f(i):
    return i

async def main(n, iters):
    out = []
    for _ in range(iters):
        t = time.perf_counter()
        r = await asyncio.gather(*(f(i) for i in range(n)))
        out.append(time.perf_counter() - t)
        assert len(r) == n and r[-1] == n - 1
    return out

for d in asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]))):
    print(int(d * 1e9))
"#;

/// Runs [`PYTHON_GATHER`] once; the total of its `iters` gather durations.
fn python_gather(n: usize, iters: u64) -> Duration {
    let out = Command::new("python3")
        .args(["-c", PYTHON_GATHER, &n.to_string(), &iters.to_string()])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("python3 prints ASCII");
    let durations: Vec<u64> = text
        .lines()
        .map(|l| l.trim().parse().expect("one duration in ns per line"))
        .collect();
    assert_eq!(durations.len() as u64, iters);
    Duration::from_nanos(durations.iter().sum())
}

fn python3_available() -> bool {
    available("python3")
}

fn lisp_fanout(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("lisp_fanout");
    group.sampling_mode(SamplingMode::Flat);

    let sched = Scheduler::new();
    let lisp = lisp(&sched, MockProvider::new());
    let script =
        |n: usize| format!("(await-all (map (lambda (i) (async (lambda () i))) (range {n})))");
    // Sanity check (untimed) on a small fan-out, then the real one once.
    assert_eq!(run_list(rt, &lisp, &script(1_000)), 1_000);
    let src = script(N);
    assert_eq!(run_list(rt, &lisp, &src), N);
    group.bench_function(BenchmarkId::from_parameter("omega_100k"), |b| {
        b.iter(|| run_list(rt, &lisp, &src))
    });

    if python3_available() {
        assert!(python_gather(1_000, 1) > Duration::ZERO);
        group.bench_function(BenchmarkId::from_parameter("python_asyncio_gather"), |b| {
            b.iter_custom(|iters| python_gather(N, iters))
        });
    } else {
        println!("lisp_fanout/python_asyncio_gather: skipped (python3 not found on PATH)");
    }
    group.finish();
}

/// Resident set size of this process in bytes (`VmRSS` of `/proc/self/status`).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc is readable");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("/proc/self/status has a VmRSS line in kB");
    kib * 1024
}

/// Waits (real time, polling the scheduler's stats) until `n` tasks are suspended.
async fn until_suspended(sched: &Scheduler, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = sched.stats();
        if s.suspended >= n && s.running == 0 && s.pending == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "tasks never all suspended: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `suspended_memory` of Lisp tasks: the script defines `ts`, a list of `n` tasks that each
/// run `(sleep 60000)`, then runs `parent` (which parks the top level: its own sleep, or an
/// await on `ts`). Returns the RSS before the script and with all `n + 1` tasks suspended.
fn omega_suspended(rt: &Runtime, n: usize, parent: &str) -> (u64, u64) {
    let sched = Scheduler::new();
    let lisp = lisp(&sched, MockProvider::new());
    // Warm the runtime (compiler, symbol table, scheduler) on a tiny fan-out first.
    let warm = "(await-all (map (lambda (i) (async (lambda () (sleep 1)))) (range 10)))";
    assert_eq!(run_list(rt, &lisp, warm), 10);
    let src = format!(
        "(define ts (map (lambda (i) (async (lambda () (sleep 60000)))) (range {n}))) {parent}"
    );
    rt.block_on(sched.run_until(async {
        let before = rss_bytes();
        let script = lisp
            .spawn_str(&src, "suspended", TaskOptions::new())
            .expect("the script reads");
        until_suspended(&sched, n + 1).await;
        let after = rss_bytes();
        if std::env::var_os(EXIT_ENV).is_some() {
            println!("{before} {after}");
            std::process::exit(0);
        }
        // Cancel every child by id, then the script. Then collect every child's outcome
        // with a second script before `settle`: `Runtime::settle` rescans its whole table of
        // live tasks after each task whose result nobody took, which is quadratic (minutes
        // at 100k; see the README).
        let top = script.id();
        let cancelled = sched
            .tasks_in(TaskState::Suspended)
            .iter()
            .filter(|t| t.id != top && sched.cancel(t.id, "measured"))
            .count();
        assert_eq!(cancelled, n);
        script.cancel("measured");
        let _ = script.result().await;
        let drained = lisp
            .eval_str("(length (await-all-settled ts))", "drain")
            .await
            .expect("the drain script runs");
        assert_eq!(drained.as_int(), Some(n as i64));
        assert_eq!(sched.stats().live(), 0, "every task ended");
        (before, after)
    }))
}

/// The child's side of `suspended_memory`: spawns `n` sleeping tasks of `case`, returns the
/// RSS before and with all of them suspended, then cancels them and settles.
fn measure_suspended(case: &str, n: usize) -> (u64, u64) {
    let rt = runtime();
    match case {
        "omega" => omega_suspended(&rt, n, "(sleep 60000)"),
        "omega_await_all" => omega_suspended(&rt, n, "(await-all ts)"),
        "omega_await_all_settled" => omega_suspended(&rt, n, "(await-all-settled ts)"),
        "omega_sched" => {
            let sched = Scheduler::new();
            rt.block_on(sched.run_until(async {
                let before = rss_bytes();
                let handles: Vec<_> = (0..n)
                    .map(|_| {
                        sched.submit(
                            async { omega_sched::sleep(Duration::from_secs(60)).await },
                            TaskOptions::new(),
                        )
                    })
                    .collect();
                until_suspended(&sched, n).await;
                let after = rss_bytes();
                assert_eq!(sched.cancel_all("measured"), n);
                let settled = sched.await_all_settled(handles).await;
                assert!(settled.iter().all(|r| r.is_err()), "all were cancelled");
                assert_eq!(sched.stats().live(), 0, "every task ended");
                (before, after)
            }))
        }
        "tokio" => {
            let local = LocalSet::new();
            rt.block_on(local.run_until(async {
                let before = rss_bytes();
                let parked = Rc::new(Cell::new(0usize));
                let mut set = JoinSet::new();
                for _ in 0..n {
                    let parked = parked.clone();
                    set.spawn_local(async move {
                        parked.set(parked.get() + 1);
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    });
                }
                while parked.get() < n {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let after = rss_bytes();
                set.abort_all();
                while let Some(r) = set.join_next().await {
                    assert!(r.is_err_and(|e| e.is_cancelled()), "all were aborted");
                }
                (before, after)
            }))
        }
        other => panic!("unknown {MEMORY_ENV} case {other:?}"),
    }
}

/// Where a `suspended_memory` case runs: this binary re-executed, or a baseline runtime.
enum MemoryCase {
    /// This bench binary with [`MEMORY_ENV`] set to `<case>:<n>`.
    Omega(&'static str),
    /// `program script n`, for a runtime measured beside Omega (Node, CPython).
    External {
        program: &'static str,
        script: &'static str,
    },
}

/// Every `suspended_memory` case, in the order of the printed table: its name and how it runs.
const MEMORY_CASES: [(&str, MemoryCase); 7] = [
    ("omega", MemoryCase::Omega("omega")),
    ("omega_await_all", MemoryCase::Omega("omega_await_all")),
    (
        "omega_await_all_settled",
        MemoryCase::Omega("omega_await_all_settled"),
    ),
    ("omega_sched", MemoryCase::Omega("omega_sched")),
    ("tokio", MemoryCase::Omega("tokio")),
    (
        "node",
        MemoryCase::External {
            program: "node",
            script: concat!(env!("CARGO_MANIFEST_DIR"), "/baselines/suspended_memory.js"),
        },
    ),
    (
        "python_asyncio",
        MemoryCase::External {
            program: "python3",
            script: concat!(env!("CARGO_MANIFEST_DIR"), "/baselines/suspended_memory.py"),
        },
    ),
];

/// True if `program --version` runs.
fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs one `suspended_memory` case in a fresh child process; its RSS before and after, or
/// `None` (with the reason printed) when a baseline's runtime is not installed.
fn suspended_memory(name: &str, case: &MemoryCase, n: usize) -> Option<(u64, u64)> {
    let out = match case {
        MemoryCase::Omega(case) => {
            let exe = std::env::current_exe().expect("the bench binary knows its path");
            Command::new(exe)
                .env(MEMORY_ENV, format!("{case}:{n}"))
                .output()
                .expect("the bench binary re-executes itself")
        }
        MemoryCase::External { program, script } => {
            if !available(program) {
                println!("suspended_memory/{name}: skipped ({program} not found on PATH)");
                return None;
            }
            Command::new(program)
                .arg(script)
                .arg(n.to_string())
                .output()
                .unwrap_or_else(|e| panic!("{program} {script} did not run: {e}"))
        }
    };
    assert!(
        out.status.success(),
        "suspended_memory/{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<u64> = text
        .split_whitespace()
        .map(|w| w.parse().expect("the child prints two byte counts"))
        .collect();
    let [before, after] = nums[..] else {
        panic!("suspended_memory/{name}: the child printed {text:?}");
    };
    Some((before, after))
}

/// Runs every `suspended_memory` case with `n` tasks and prints one line per case, then the
/// table that `benches/README.md` quotes.
fn suspended_memory_table(n: usize) {
    let mut rows = Vec::new();
    for (name, case) in &MEMORY_CASES {
        let Some((before, after)) = suspended_memory(name, case, n) else {
            continue;
        };
        let per_task = after.saturating_sub(before) / n as u64;
        println!(
            "suspended_memory/{name}_{}k: RSS {:.1} MiB -> {:.1} MiB, {per_task} bytes/task{}",
            n / 1000,
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            if *name == "omega" {
                " (goal <= 1024)"
            } else {
                ""
            },
        );
        rows.push((*name, per_task));
    }
    println!(
        "\n| suspended_memory, {n} tasks parked in a 60 s sleep | bytes per task (RSS delta / n) |"
    );
    println!("|---|---|");
    for (name, per_task) in rows {
        println!("| `{name}` | {per_task} |");
    }
    println!();
}

/// Criterion's entry point (what `criterion_group!` and `criterion_main!` would generate,
/// written out so that no undocumented public item is needed), preceded by the one-shot
/// memory measurement. Small samples so that the target runs in about a minute; criterion's
/// command-line options still override them.
fn main() {
    if let Ok(spec) = std::env::var(MEMORY_ENV) {
        let (case, n) = spec
            .split_once(':')
            .unwrap_or_else(|| panic!("{MEMORY_ENV}={spec:?}: expected <case>:<tasks>"));
        let n = n.parse().expect("a task count");
        let (before, after) = measure_suspended(case, n);
        println!("{before} {after}");
        return;
    }

    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--list") {
        // Only `cargo bench` passes `--bench`; without it this is criterion's test mode
        // (`cargo test --benches`, `--test`, a debug build), which only smoke-tests the
        // memory table with 1,000 tasks.
        let n = if args.iter().any(|a| a == "--bench") {
            N
        } else {
            1_000
        };
        suspended_memory_table(n);
    }

    let rt = runtime();
    let mut c = common::criterion(3);
    llm_makespan(&mut c, &rt);
    lisp_fanout(&mut c, &rt);
    c.final_summary();
}
