//! The Engine front door (issue 11) as a multi-threaded tokio host uses it: many scripts from
//! many tokio tasks, an async host tool, cancel from another OS thread, typed errors with
//! positions, per-script budgets, and shutdown with scripts mid-flight.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use omega_lisp::{Data, Engine, ScriptOptions};
use omega_llm::MockProvider;
use omega_sched::{Scheduler, TaskState};

fn engine(latency_ms: u64) -> Engine {
    Engine::builder()
        .llm(Arc::new(
            MockProvider::new().latency(Duration::from_millis(latency_ms)),
        ))
        .output(std::io::sink())
        .build()
        .expect("an engine")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_scripts_from_eight_tokio_tasks_all_return_the_right_values() {
    let engine = engine(1);
    let fetched = Arc::new(AtomicUsize::new(0));
    let f = fetched.clone();
    engine
        .register_async_fn("tool.fetch", move |args| {
            let f = f.clone();
            async move {
                // Runs on the host's runtime: tokio's own timer, on a worker thread.
                tokio::time::sleep(Duration::from_millis(1)).await;
                f.fetch_add(1, Ordering::SeqCst);
                Ok(Data::Str(format!("page {}", args[0])))
            }
        })
        .expect("registered");
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..8i64 {
        let engine = engine.clone();
        tasks.spawn(async move {
            let mut out = Vec::new();
            for i in 0..25i64 {
                let n = t * 100 + i;
                let src = format!(
                    r#"(define answers (await-all (map (lambda (q) (async (lambda () (llm.infer q))))
                                                      (list "a" "b" "c"))))
                       (list {n} (length answers) (tool.fetch {n}))"#
                );
                let v = engine
                    .eval(&src, &format!("s{n}.lisp"))
                    .await
                    .expect("the script succeeds");
                out.push((n, v));
            }
            out
        });
    }
    let mut seen = 0;
    while let Some(r) = tasks.join_next().await {
        for (n, v) in r.expect("the tokio task ends") {
            assert_eq!(
                v,
                Data::List(vec![
                    Data::Int(n),
                    Data::Int(3),
                    Data::Str(format!("page {n}"))
                ])
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 200);
    assert_eq!(fetched.load(Ordering::SeqCst), 200);
    let usage = engine.llm_usage().await.expect("the engine runs");
    assert_eq!((usage.calls, usage.errors), (600, 0));
    let s = engine.stats();
    assert_eq!(s.failed + s.cancelled + s.timed_out, 0);
    engine.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_from_another_os_thread_ends_a_catch_all_loop_with_finally_run() {
    let engine = engine(0);
    let (started_tx, started_rx) = std::sync::mpsc::sync_channel(1);
    engine
        .register_fn("started", move |_| {
            let _ = started_tx.try_send(());
            Ok(Data::Nil)
        })
        .expect("registered");
    let cleaned = common::register_flag(&engine, "cleaned");
    // A loop that never suspends and whose catch-all swallows everything.
    let h = engine
        .spawn(
            r#"(define n 0)
               (started)
               (try (let loop () (try (set! n (+ n 1)) (catch e 0)) (loop))
                    (finally (cleaned)))"#,
            ScriptOptions::new().name("spin.lisp"),
        )
        .await
        .expect("spawned");
    let id = h.id();
    let sched = engine.scheduler().clone();
    let canceller = std::thread::spawn(move || {
        started_rx.recv().expect("the script started");
        let t0 = Instant::now();
        assert!(sched.cancel(id, "from another thread"));
        t0
    });
    let r = h.await;
    let t0 = canceller.join().expect("the canceller thread ends");
    let e = r.expect_err("cancelled");
    assert_eq!(e.kind(), "cancelled");
    assert_eq!(e.message(), "cancelled: from another thread");
    assert!(cleaned.load(Ordering::SeqCst), "finally ran");
    // One VM slice is microseconds; allow a loaded CI machine plenty.
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(
        engine.scheduler().task(id).map(|i| i.state),
        Some(TaskState::Cancelled)
    );
    engine.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_error_arrives_typed_with_its_position_and_stack() {
    let engine = engine(0);
    let e = engine
        .eval("(define (f x) (car x))\n(f 5)", "bad.lisp")
        .await
        .expect_err("fails");
    assert_eq!(e.kind(), "type-error");
    assert_eq!(
        e.position().map(ToString::to_string).as_deref(),
        Some("bad.lisp:1:15")
    );
    let names: Vec<&str> = e.stack().iter().map(|f| f.function.as_str()).collect();
    assert_eq!(names, ["f", "<top>"]);
    assert!(e.to_string().starts_with("error[:type-error]: car expects"));
    // It travels as any error does.
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    assert!(boxed.to_string().contains("at f (bad.lisp:1:15)"));
    // A read error is returned by spawn itself.
    let e = engine
        .spawn("(+ 1", ScriptOptions::new().name("open.lisp"))
        .await
        .expect_err("a read error");
    assert_eq!(e.kind(), "syntax");
    assert_eq!(e.position().map(|p| p.line), Some(1));
    // A host function's error is raised in the script with its kind.
    engine
        .register_fn("tool.fail", |_| {
            Err(omega_lisp::ScriptError::new("tool", "index down"))
        })
        .expect("registered");
    let v = engine
        .eval(
            "(try (tool.fail) (catch e (list (error-kind e) (error-message e))))",
            "t",
        )
        .await
        .expect("caught");
    assert_eq!(v.to_string(), "(:tool \"index down\")");
    // A host function that tries to register another one gets an error, not a panic.
    let e2 = engine.clone();
    engine
        .register_fn("tool.register", move |_| {
            e2.register_fn("x", |_| Ok(Data::Nil))?;
            Ok(Data::Nil)
        })
        .expect("registered");
    let e = engine
        .eval("(tool.register)", "re.lisp")
        .await
        .expect_err("refused");
    assert_eq!(
        e.message(),
        "host functions cannot be registered from inside a script's host function"
    );
    engine.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_script_budgets_fail_with_limit_naming_the_budget() {
    let engine = engine(0);
    let src = r#"(list (llm.infer "a") (llm.infer "b")
                       (try (llm.infer "c") (catch e :caught-but-not-stopped)))"#;
    let e = engine
        .spawn(src, ScriptOptions::new().llm_max_calls(2))
        .await
        .expect("spawned")
        .await
        .expect_err("over budget");
    assert_eq!(e.kind(), "limit");
    assert_eq!(e.message(), "limit exceeded: script llm_max_calls (2)");
    // Calls from child tasks count toward the same script's budget.
    let e = engine
        .spawn(
            r#"(await-all (map (lambda (i) (async (lambda () (llm.infer "one two three four"))))
                               (range 5)))"#,
            ScriptOptions::new().llm_max_tokens(20),
        )
        .await
        .expect("spawned")
        .await
        .expect_err("over budget");
    assert_eq!(e.kind(), "limit");
    assert!(
        e.message().contains("llm_max_tokens (20)"),
        "{}",
        e.message()
    );
    // Another script is not affected by the first one's spending.
    assert_eq!(
        engine
            .spawn(r#"(llm.infer "x")"#, ScriptOptions::new().llm_max_calls(1))
            .await
            .expect("spawned")
            .await
            .expect("within budget"),
        Data::Str("echo: x".into())
    );
    let e = engine
        .spawn(
            "(let loop () (loop))",
            ScriptOptions::new().max_steps(50_000),
        )
        .await
        .expect("spawned")
        .await
        .expect_err("over budget");
    assert_eq!(e.message(), "limit exceeded: script max_steps (50000)");
    let e = engine
        .spawn(
            "(map (lambda (i) (async (lambda () (sleep 100)))) (range 10))",
            ScriptOptions::new().max_tasks(4),
        )
        .await
        .expect("spawned")
        .await
        .expect_err("over budget");
    assert_eq!(e.message(), "limit exceeded: script max_tasks (4)");
    engine.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_sees_itself_as_current_task() {
    let engine = engine(0);
    let v = engine
        .eval(
            r#"(define me (current-task))
               (list (task-name me) (task-state me)
                     (try (await me) (catch e (error-kind e))))"#,
            "me.lisp",
        )
        .await
        .expect("runs");
    assert_eq!(v.to_string(), r#"("me.lisp" :running :deadlock)"#);
    let e = engine
        .eval(
            r#"(cancel (current-task) "self") (sleep 1000) :not-reached"#,
            "self.lisp",
        )
        .await
        .expect_err("cancelled itself");
    assert_eq!(e.message(), "cancelled: self");
    engine.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_timeout_is_timeout_at_the_boundary() {
    let engine = engine(0);
    let e = engine
        .spawn(
            "(let loop () (try (sleep 20) (catch e 0)) (loop))",
            ScriptOptions::new().timeout(Duration::from_millis(50)),
        )
        .await
        .expect("spawned")
        .await
        .expect_err("timed out");
    assert_eq!(e.kind(), "timeout");
    engine.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_flight_loses_no_lock_permit_or_result() {
    let engine = Engine::builder()
        .scheduler(Scheduler::builder().max_concurrent_llm_calls(2))
        .llm(Arc::new(
            MockProvider::new().latency(Duration::from_secs(60)),
        ))
        .output(std::io::sink())
        .build()
        .expect("an engine");
    let mut handles = Vec::new();
    for i in 0..6 {
        let src = if i % 2 == 0 {
            format!(r#"(with-lock "r{i}" (sleep 60000))"#)
        } else {
            r#"(llm.infer "slow")"#.to_string()
        };
        handles.push(
            engine
                .spawn(&src, ScriptOptions::new())
                .await
                .expect("spawned"),
        );
    }
    // Wait until the locks are held and both LLM slots taken.
    let sched = engine.scheduler().clone();
    let t0 = Instant::now();
    while sched.locks().totals().holders < 3 || sched.stats().pools[0].in_use < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the scripts never started"
        );
        tokio::task::yield_now().await;
    }
    engine.shutdown("host stopping").await;
    for h in handles {
        let e = h.await.expect_err("stopped by the shutdown");
        assert!(e.is_cancellation(), "{e}");
    }
    assert_eq!(sched.locks().totals().holders, 0, "every lock released");
    assert_eq!(sched.stats().pools[0].in_use, 0, "every permit returned");
    assert_eq!(sched.stats().running + sched.stats().suspended, 0);
    // Later spawns fail clearly.
    let later = engine.spawn("1", ScriptOptions::new()).await;
    assert!(later.is_err(), "spawn after shutdown must fail");
}

/// Resident memory of this process in KiB (Linux), if known.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_over_ten_thousand_script_runs() {
    let engine = engine(0);
    // Tasks, an LLM call, a host-free await and a string per run. (Not `map`/`reduce`: the
    // prelude's named-let loops are closure cycles, which leak until the heap collector of
    // issue 10 reclaims cycles — with `Runtime::eval_str` just the same.)
    // The value holds the script's own task (a cycle through its outcome, once).
    let src = r#"(define q (str "q" (+ 1 2)))
                 (define t (async (lambda () (llm.infer q))))
                 (list (await t) (string-length q) (current-task))"#;
    let run = |n: usize| {
        let engine = engine.clone();
        async move {
            for _ in 0..n {
                let v = engine.eval(src, "m.lisp").await.expect("runs");
                match v {
                    Data::List(items) => {
                        assert_eq!(items[..2], [Data::Str("echo: q3".into()), Data::Int(2)]);
                        assert!(matches!(&items[2], Data::Opaque(t) if t.starts_with("#<task")));
                    }
                    other => panic!("not a list: {other:?}"),
                }
            }
        }
    };
    run(1_000).await; // warm up: allocator pools, history ring, symbol table
    let Some(before) = rss_kib() else { return };
    run(10_000).await;
    let after = rss_kib().expect("still readable");
    let grown = after.saturating_sub(before);
    assert!(
        grown < 8 * 1024,
        "RSS grew {grown} KiB over 10k runs ({before} -> {after})"
    );
    engine.shutdown("done").await;
}

/// Scripts that use the preludes' procedures and macros (which each runtime loads on first
/// use, `omega_lisp`'s `prelude.rs`), in a different order in each script, on three engines
/// (three driver threads, each with its own thread cache) from six tokio tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scripts_on_several_engines_use_prelude_procedures_and_macros_in_any_order() {
    const USES: [(&str, &str); 10] = [
        (
            "(guard (e ((symbol? e) (list 'caught e))) (raise 'boom))",
            "(caught boom)",
        ),
        ("(let-values (((a b) (values 1 2))) (+ a b))", "3"),
        (
            "(let ((p (make-parameter 1))) (parameterize ((p 2)) (p)))",
            "2",
        ),
        (
            "(begin (define-record-type pt (mk x) pt? (x px)) (px (mk 7)))",
            "7",
        ),
        ("(sort (filter odd? '(5 2 3 1)) <)", "(1 3 5)"),
        ("(fold + 0 (map (lambda (x) (* x x)) '(1 2 3)))", "14"),
        ("(string-map char-upcase \"abc\")", "\"ABC\""),
        ("(vector->list (vector-map + #(1 2) #(10 20)))", "(11 22)"),
        ("((case-lambda ((a) 'one) ((a b) 'two)) 1 2)", "two"),
        ("(force (delay (count odd? '(1 2 3))))", "2"),
    ];
    let engines: Vec<Engine> = (0..3).map(|_| engine(0)).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..6usize {
        let engine = engines[t % 3].clone();
        tasks.spawn(async move {
            for round in 0..20usize {
                // A rotation of the uses: each script meets them first in another order.
                let k = (t * 7 + round * 3) % USES.len();
                let forms: Vec<&str> = (0..USES.len())
                    .map(|i| USES[(k + i) % USES.len()].0)
                    .collect();
                let src = format!("(list {})", forms.join(" "));
                let v = engine
                    .eval(&src, &format!("t{t}r{round}.lisp"))
                    .await
                    .unwrap_or_else(|e| panic!("t{t} r{round}: {e}"));
                let Data::List(items) = v else {
                    panic!("a list: {v}")
                };
                let got: Vec<String> = items.iter().map(|d| d.to_string()).collect();
                let want: Vec<&str> = (0..USES.len())
                    .map(|i| USES[(k + i) % USES.len()].1)
                    .collect();
                assert_eq!(got, want, "t{t} r{round}");
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("every script right");
    }
    for e in engines {
        e.shutdown("done").await;
    }
}
