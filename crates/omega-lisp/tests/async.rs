//! The async surface (SPEC §6.4) on the real scheduler and the mock LLM provider, with
//! tokio's paused clock so every duration is exact.

use std::sync::Arc;
use std::time::Duration;

use omega_lisp::{write_string, ErrorKind, OutputBuffer, Runtime, Value};
use omega_llm::MockProvider;
use omega_sched::Scheduler;
use tokio::time::Instant;

fn runtime(sched: &Scheduler, latency_ms: u64, out: &OutputBuffer) -> Runtime {
    Runtime::builder()
        .scheduler(sched.clone())
        .llm(Arc::new(
            MockProvider::new().latency(Duration::from_millis(latency_ms)),
        ))
        .output(out.clone())
        .build()
}

/// Runs `src` to the end on a fresh scheduler; returns (value or error, elapsed, output).
async fn run(
    sched: Scheduler,
    latency_ms: u64,
    src: &str,
) -> (Result<String, String>, Duration, String) {
    let out = OutputBuffer::new();
    let rt = runtime(&sched, latency_ms, &out);
    let t0 = Instant::now();
    let r = sched
        .run_until(async { rt.eval_str(src, "test.lisp").await })
        .await;
    let r = r.map(|v| write_string(&v)).map_err(|e| e.to_string());
    (r, t0.elapsed(), out.contents())
}

#[tokio::test(start_paused = true)]
async fn twenty_llm_calls_overlap_in_one_latency() {
    let sched = Scheduler::builder().max_concurrent_llm_calls(20).build();
    let (r, elapsed, _) = run(
        sched.clone(),
        100,
        r#"(define ts (map (lambda (i) (async (lambda () (llm.infer (str "q" i))))) (range 20)))
           (length (await-all ts))"#,
    )
    .await;
    assert_eq!(r.unwrap(), "20");
    assert_eq!(
        elapsed,
        Duration::from_millis(100),
        "one latency, not twenty"
    );
    assert_eq!(sched.stats().pools[0].peak_in_use, 20);
}

#[tokio::test(start_paused = true)]
async fn max_llm_bounds_calls_in_flight() {
    let sched = Scheduler::builder().max_concurrent_llm_calls(5).build();
    let (r, elapsed, _) = run(
        sched.clone(),
        100,
        r#"(await-all (map (lambda (i) (async (lambda () (llm.infer "x")))) (range 20)))
           :ok"#,
    )
    .await;
    assert_eq!(r.unwrap(), ":ok");
    assert_eq!(elapsed, Duration::from_millis(400), "4 waves of 5");
    let pool = &sched.stats().pools[0];
    assert_eq!((pool.peak_in_use, pool.total_acquisitions), (5, 20));
}

#[tokio::test(start_paused = true)]
async fn values_errors_and_task_introspection() {
    let (r, _, out) = run(
        Scheduler::new(),
        10,
        r#"(define t (async (lambda () (llm.infer "hello")) :name "greeter" :priority 3))
           (println (task-name t) (task-state t) (task? t) (string? (task-id t)))
           (define v (await t))
           (println v (task-state t) (await t))
           (define bad (async (lambda () (car 5))))
           (println (try (await bad) (catch e (list (error-kind e) (error-message e)))))
           (println (task-state bad))
           (list (cancelled?) (task? (current-task)))"#,
    )
    .await;
    assert_eq!(r.unwrap(), "(#f #t)");
    assert_eq!(
        out,
        "greeter :running #t #t\n\
         echo: hello :completed echo: hello\n\
         (:type-error car expects a pair, got 5 (an integer))\n\
         :error\n"
    );
}

#[tokio::test(start_paused = true)]
async fn await_all_fails_fast_and_await_any_takes_the_first_success() {
    let (r, elapsed, out) = run(
        Scheduler::new(),
        0,
        r#"(define slow (async (lambda () (sleep 1000) :slow)))
           (define failing (async (lambda () (sleep 10) (error :boom "bad input"))))
           (println (try (await-all (list slow failing)) (catch e (error-kind e))))
           (println (try (await slow) (catch e (error-message e))) (task-state slow))
           (define a (async (lambda () (sleep 5) (error "no"))))
           (define b (async (lambda () (sleep 20) :b)))
           (define c (async (lambda () (sleep 50) :c)))
           (println (await-any (list a b c)))
           (println (try (await c) (catch e (error-message e))) (task-state c))
           (await-all-settled (list a b))"#,
    )
    .await;
    assert_eq!(
        r.unwrap(),
        "({:error #<error :error \"no\"> :status :error} {:status :ok :value :b})"
    );
    assert_eq!(
        out,
        ":boom\ncancelled: sibling failed :cancelled\n:b\ncancelled: another task won :cancelled\n"
    );
    assert_eq!(elapsed, Duration::from_millis(30));
}

#[tokio::test(start_paused = true)]
async fn cancel_runs_finally_and_reports_the_reason() {
    let (r, _, out) = run(
        Scheduler::new(),
        1000,
        r#"(define t (async (lambda ()
              (try (llm.infer "long")
                   (finally (println "cleanup") (sleep 5) (println "cleanup done"))))))
           (sleep 10)
           (println (cancel t "user stop") (cancel t "again"))
           (println (try (await t) (catch e (list (error-kind e) (error-message e)))))
           (task-state t)"#,
    )
    .await;
    assert_eq!(r.unwrap(), ":cancelled");
    assert_eq!(
        out,
        "#t #f\ncleanup\ncleanup done\n(:cancelled cancelled: user stop)\n"
    );
}

#[tokio::test(start_paused = true)]
async fn timeouts_with_async_option_and_with_timeout() {
    let (r, elapsed, out) = run(
        Scheduler::new(),
        0,
        r#"(define t (async (lambda () (sleep 5000)) :timeout 100))
           (println (try (await t) (catch e (error-kind e))))
           (println (try (with-timeout 50 (sleep 1000) :done) (catch e (error-kind e))))
           (with-timeout 50 :fast)"#,
    )
    .await;
    assert_eq!(r.unwrap(), ":fast");
    assert_eq!(out, ":timeout\n:timeout\n");
    assert_eq!(elapsed, Duration::from_millis(150));
}

#[tokio::test(start_paused = true)]
async fn a_tight_loop_yields_and_is_cancellable() {
    // The spinner never awaits; the VM yields every yield_interval steps, so the other task
    // runs and can cancel it.
    let (r, _, out) = run(
        Scheduler::new(),
        0,
        r#"(define (spin n) (spin (+ n 1)))
           (define s (async (lambda () (try (spin 0) (finally (println "spinner stopped"))))))
           (define k (async (lambda () (yield) (cancel s "enough"))))
           (await k)
           (try (await s) (catch e (error-message e)))"#,
    )
    .await;
    assert_eq!(r.unwrap(), "\"cancelled: enough\"");
    assert_eq!(out, "spinner stopped\n");
}

#[tokio::test(start_paused = true)]
async fn script_end_cancels_unawaited_children_and_waits_for_their_finally() {
    let sched = Scheduler::new();
    let (r, _, out) = run(
        sched.clone(),
        0,
        r#"(async (lambda () (try (sleep 100000) (finally (println "child cleaned up")))))
           (sleep 1) ; the child starts and parks in its sleep
           :top-done"#,
    )
    .await;
    assert_eq!(r.unwrap(), ":top-done");
    assert_eq!(out, "child cleaned up\n");
    let st = sched.stats();
    assert_eq!((st.live(), st.completed, st.cancelled), (0, 1, 1));
    let child = sched
        .tasks()
        .into_iter()
        .find(|t| t.parent.is_some())
        .unwrap();
    assert_eq!(
        child.error.as_deref(),
        Some("task cancelled: script finished")
    );
}

#[tokio::test(start_paused = true)]
async fn top_level_counts_toward_max_tasks_and_nested_awaits_do_not_deadlock() {
    let sched = Scheduler::builder().max_concurrent_tasks(1).build();
    let (r, _, _) = run(
        sched.clone(),
        0,
        r#"(define (nest n) (if (= n 0) 0 (+ 1 (await (async (lambda () (nest (- n 1))))))))
           (nest 30)"#,
    )
    .await;
    assert_eq!(r.unwrap(), "30");
    assert_eq!(sched.stats().peak_admitted, 1);
}

#[tokio::test(start_paused = true)]
async fn stats_and_llm_errors() {
    let sched = Scheduler::new();
    let out = OutputBuffer::new();
    let rt = Runtime::builder()
        .scheduler(sched.clone())
        .llm(Arc::new(
            MockProvider::new()
                .replies_json(
                    r#"[{"contains": "bad", "error": "server", "message": "overloaded"}]"#,
                )
                .unwrap(),
        ))
        .output(out.clone())
        .build();
    let v = sched
        .run_until(rt.eval_str(
            r#"(llm.infer "good one")
               (println (try (llm.infer "bad") (catch e (list (error-kind e) (error-message e)))))
               (define s (stats))
               (list (get s :llm-calls) (get s :llm-errors) (get s :completed) (get s :running))"#,
            "stats.lisp",
        ))
        .await
        .unwrap();
    assert_eq!(write_string(&v), "(1 1 0 1)");
    assert_eq!(
        out.contents(),
        "(:llm llm.infer failed (server): server error 500: overloaded)\n"
    );
    assert_eq!(rt.llm_usage().calls, 1);
}

#[tokio::test(start_paused = true)]
async fn bad_arguments_are_clear_errors() {
    for (src, kind, msg) in [
        (
            "(await 5)",
            ErrorKind::TypeError,
            "await expects a task, got 5 (an integer)",
        ),
        (
            "(async 5)",
            ErrorKind::TypeError,
            "async expects a procedure, got 5 (an integer)",
        ),
        (
            "(async (lambda () 1) :bogus 1)",
            ErrorKind::Error,
            "async: unknown option :bogus (expected one of :name :priority :timeout)",
        ),
        (
            "(llm.infer 42)",
            ErrorKind::TypeError,
            "llm.infer expects a prompt string, got 42 (an integer)",
        ),
        (
            "(sleep \"x\")",
            ErrorKind::TypeError,
            "sleep expects milliseconds (an integer), got \"x\" (a string)",
        ),
        (
            "(await-all 5)",
            ErrorKind::TypeError,
            "await-all expects a list of tasks, got 5 (an integer)",
        ),
        (
            "(await-any '())",
            ErrorKind::Error,
            "await-any needs at least one task",
        ),
    ] {
        let sched = Scheduler::new();
        let rt = Runtime::builder().scheduler(sched.clone()).build();
        let err = sched
            .run_until(rt.eval_str(src, "bad.lisp"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &kind, "{src}");
        assert_eq!(err.message(), msg, "{src}");
    }
}

#[test]
fn async_outside_a_driven_scheduler_is_an_error_not_a_panic() {
    let rt = Runtime::new();
    let err = rt
        .eval_sync("(async (lambda () 1))", "sync.lisp")
        .unwrap_err();
    assert!(
        err.message().starts_with("tasks need a running scheduler"),
        "{err}"
    );
}

#[test]
fn register_async_fn_suspends_only_its_task() {
    let rt = Runtime::new();
    rt.register_async_fn("tool.fetch", |args| async move {
        omega_sched::sleep(Duration::from_millis(5))
            .await
            .map_err(|c| omega_lisp::LispError::new(ErrorKind::Cancelled, c.to_string()))?;
        Ok(Value::string(format!("fetched {}", write_string(&args[0]))))
    });
    let v = rt
        .scheduler()
        .block_on(rt.eval_str(
            r#"(await-all (list (async (lambda () (tool.fetch "a"))) (async (lambda () (tool.fetch 2)))))"#,
            "fetch.lisp",
        ))
        .unwrap();
    assert_eq!(write_string(&v), r#"("fetched \"a\"" "fetched 2")"#);
}

#[tokio::test(start_paused = true)]
async fn max_total_steps_bounds_all_tasks_together() {
    // Each task alone stays under a per-task budget; together they cross the total.
    let sched = Scheduler::new();
    let rt = Runtime::builder()
        .scheduler(sched.clone())
        .limits(omega_lisp::Limits {
            max_steps: Some(50_000),
            max_total_steps: Some(100_000),
            ..omega_lisp::Limits::default()
        })
        .build();
    let err = sched
        .run_until(rt.eval_str(
            r#"(define (count-down n) (if (= n 0) :done (count-down (- n 1))))
               (await-all (map (lambda (i) (async (lambda () (count-down 30000)))) (range 10)))"#,
            "total.lisp",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Limit);
    assert_eq!(err.message(), "limit exceeded: max_total_steps (100000)");
    // The budget is the runtime's: spent, it stays spent; the runtime stays usable and a
    // higher limit lets it go on.
    let again = sched
        .run_until(rt.eval_str("(count-down 30000)", "one.lisp"))
        .await
        .unwrap_err();
    assert_eq!(again.kind(), &ErrorKind::Limit);
    rt.set_limits(omega_lisp::Limits {
        max_total_steps: Some(10_000_000),
        ..rt.limits()
    })
    .unwrap();
    let v = sched
        .run_until(rt.eval_str("(count-down 30000)", "one.lisp"))
        .await
        .unwrap();
    assert_eq!(write_string(&v), ":done");
}

#[tokio::test(start_paused = true)]
async fn runaway_spawning_ends_in_a_limit_error_and_finished_tasks_free_their_place() {
    let sched = Scheduler::new();
    let rt = Runtime::builder()
        .scheduler(sched.clone())
        .limits(omega_lisp::Limits {
            max_tasks: Some(100),
            ..omega_lisp::Limits::default()
        })
        .build();
    let err = sched
        .run_until(rt.eval_str(
            "(define (spawn-forever) (async (lambda () (sleep 100000))) (spawn-forever)) (spawn-forever)",
            "runaway.lisp",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "limit exceeded: max_tasks (100)");
    assert_eq!(
        sched.stats().live(),
        0,
        "the script's tasks were cancelled and waited out"
    );
    // 1000 tasks one after another never have more than 100 alive.
    let v = sched
        .run_until(rt.eval_str(
            "(length (map (lambda (i) (await (async (lambda () i)))) (range 1000)))",
            "sequential.lisp",
        ))
        .await
        .unwrap();
    assert_eq!(write_string(&v), "1000");
}

#[tokio::test(start_paused = true)]
async fn a_task_cancelled_before_it_runs_never_starts() {
    let (r, _, out) = run(
        Scheduler::new(),
        0,
        r#"(define t (async (lambda () (println "side effect") :ran)))
           (cancel t "too late")
           (list (try (await t) (catch e (error-message e))) (task-state t))"#,
    )
    .await;
    assert_eq!(r.unwrap(), "(\"cancelled: too late\" :cancelled)");
    assert_eq!(out, "", "the body never ran");
}

/// Issue 9: `await-all` under `--max-tasks 1` admits every awaited task in turn on the
/// awaiter's slot (it used to hang).
#[tokio::test(start_paused = true)]
async fn await_all_under_max_tasks_1_completes() {
    let sched = Scheduler::builder().max_concurrent_tasks(1).build();
    let (r, elapsed, _) = run(
        sched.clone(),
        0,
        r#"(list (await-all (map (lambda (i) (async (lambda () (sleep 10) i))) (list 1 2 3)))
                 (await-any (map (lambda (i) (async (lambda () (sleep 10) i))) (list 4 5)))
                 (map (lambda (r) (get r :value))
                      (await-all-settled (map (lambda (i) (async (lambda () (sleep 10) i))) (list 6 7)))))"#,
    )
    .await;
    assert_eq!(r.unwrap(), "((1 2 3) 4 (6 7))");
    assert_eq!(elapsed, Duration::from_millis(60), "one at a time, in turn");
    assert_eq!(sched.stats().peak_admitted, 1);
}

/// Issue 9: awaiting oneself, or two tasks awaiting each other, fails at once with
/// `:deadlock` (it used to hang at 0 % CPU); other awaiters are not affected.
#[tokio::test(start_paused = true)]
async fn await_cycles_fail_at_once_with_deadlock() {
    let (r, elapsed, _) = run(
        Scheduler::new(),
        0,
        r#"(define self-await (try (await (current-task)) (catch e (list (error-kind e) (error-message e)))))
           (define b nil)
           (define a (async (lambda () (sleep 1) (try (await b) (catch e (error-kind e))))))
           (set! b (async (lambda () (sleep 2) (try (await a) (catch e (error-kind e))))))
           (list (car self-await) (await a) (await b))"#,
    )
    .await;
    assert_eq!(r.unwrap(), "(:deadlock :deadlock :deadlock)");
    assert_eq!(
        elapsed,
        Duration::from_millis(2),
        "at once, not at a timeout"
    );
}
