//! Level-triggered cancellation in Lisp (issue 16, SPEC §3.7, §6.5): a catch-all cannot
//! swallow a cancel or a deadline, `finally` and `shield` run shielded within the grace,
//! and a handler that names `:cancelled` may end it. Paused tokio clock: every duration
//! below is exact, so "within 20 ms" is checked as "at the very instant".

use std::sync::Arc;
use std::time::Duration;

use omega_lisp::{write_string, OutputBuffer, Runtime};
use omega_llm::MockProvider;
use omega_sched::Scheduler;
use tokio::time::Instant;

/// Runs `src` on `sched` with the mock (`latency_ms` per call); returns the value written
/// (or the error's report), the elapsed time and the printed output.
async fn run_on(sched: Scheduler, latency_ms: u64, src: &str) -> (String, Duration, String) {
    let out = OutputBuffer::new();
    let rt = Runtime::builder()
        .scheduler(sched.clone())
        .llm(Arc::new(
            MockProvider::new().latency(Duration::from_millis(latency_ms)),
        ))
        .output(out.clone())
        .build();
    let t0 = Instant::now();
    let r = sched
        .run_until(async { rt.eval_str(src, "cancel.lisp").await })
        .await;
    let r = match r {
        Ok(v) => write_string(&v),
        Err(e) => e.to_string(),
    };
    (r, t0.elapsed(), out.contents())
}

async fn run(src: &str) -> (String, Duration, String) {
    run_on(Scheduler::new(), 1000, src).await
}

/// Issue 16, reproducer 1: a retry loop whose catch-all logs every error stops at the
/// cancel (not 5 s later, at the grace), and its `finally` runs.
#[tokio::test(start_paused = true)]
async fn a_retry_loop_that_catches_everything_stops_at_the_cancel() {
    let (r, elapsed, out) = run(
        r#"(define t (async (lambda ()
             (try (let loop () (try (sleep 100) (catch e (println "logged" (error-kind e)))) (loop))
                  (finally (println "finally"))))))
           (sleep 250)
           (cancel t "stop")
           (list (try (await t) (catch e (list (error-kind e) (error-message e)))) (task-state t))"#,
    )
    .await;
    assert_eq!(r, r#"((:cancelled "cancelled: stop") :cancelled)"#);
    assert_eq!(
        elapsed,
        Duration::from_millis(250),
        "at the cancel, not at the grace"
    );
    assert_eq!(
        out, "logged :cancelled\nfinally\n",
        "logged once, then finally"
    );
}

/// Reproducer 2: `with-timeout` around the same loop raises `:timeout` at its deadline.
#[tokio::test(start_paused = true)]
async fn with_timeout_around_a_catch_all_loop_ends_at_its_deadline() {
    let (r, elapsed, _) = run(
        r#"(try (with-timeout 200 (let loop () (try (sleep 100) (catch e 0)) (loop)))
                (catch e (list (error-kind e) (error-message e))))"#,
    )
    .await;
    assert_eq!(r, r#"(:timeout "task timed out after 200ms")"#);
    assert_eq!(elapsed, Duration::from_millis(200));
}

/// Reproducer 3: a task timeout around the same loop, with a `finally`.
#[tokio::test(start_paused = true)]
async fn a_task_timeout_around_a_catch_all_loop_ends_at_its_deadline() {
    let (r, elapsed, out) = run(r#"(define t (async (lambda ()
             (try (let loop () (try (sleep 100) (catch e 0)) (loop))
                  (finally (println "finally"))))
             :timeout 300))
           (try (await t) (catch e (error-kind e)))"#)
    .await;
    assert_eq!(r, ":timeout");
    assert_eq!(elapsed, Duration::from_millis(300));
    assert_eq!(out, "finally\n");
}

/// A loop that never suspends is stopped at its next VM slice, even through a catch-all.
/// (It never lets the paused clock advance, so the script only yields before the cancel.)
#[tokio::test(start_paused = true)]
async fn a_compute_loop_with_a_catch_all_stops_within_a_slice() {
    let (r, elapsed, _) = run(r#"(define spins 0)
           (define t (async (lambda ()
             (let loop () (try (set! spins (+ spins 1)) (catch e 0)) (loop)))))
           (yield)
           (yield)
           (cancel t "stop")
           (define at-cancel spins)
           (list (try (await t) (catch e (error-kind e))) (< (- spins at-cancel) 2000))"#)
    .await;
    assert_eq!(r, "(:cancelled #t)");
    assert_eq!(elapsed, Duration::ZERO);
}

/// A retry loop around `llm.infer` with a backoff, cancelled mid-call and mid-backoff.
#[tokio::test(start_paused = true)]
async fn an_llm_retry_loop_is_cancelled_mid_call_and_mid_backoff() {
    let src = |cancel_at: u64| {
        format!(
            r#"(define calls 0)
               (define t (async (lambda ()
                 (let loop ()
                   (try (begin (set! calls (+ calls 1)) (llm.infer "q") (error "bad answer"))
                        (catch e (sleep 50)))
                   (loop)))))
               (sleep {cancel_at})
               (cancel t "stop")
               (list (try (await t) (catch e (error-kind e))) calls)"#
        )
    };
    // Mid-call: the first call (1 s) is dropped at 500 ms.
    let (r, elapsed, _) = run(&src(500)).await;
    assert_eq!(r, "(:cancelled 1)");
    assert_eq!(elapsed, Duration::from_millis(500));
    // Mid-backoff: the first call failed at 1000 ms, the backoff sleeps until 1050.
    let (r, elapsed, _) = run(&src(1020)).await;
    assert_eq!(r, "(:cancelled 1)", "no second call after the cancel");
    assert_eq!(elapsed, Duration::from_millis(1020));
}

/// Nested `with-timeout`: the scope whose deadline expired is the one that reports.
#[tokio::test(start_paused = true)]
async fn nested_with_timeouts_report_at_the_expired_scope() {
    // Inner shorter: the inner scope reports, the outer body goes on.
    let (r, elapsed, _) = run(r#"(with-timeout 500
             (list (try (with-timeout 100 (sleep 1000)) (catch e (error-kind e))) :after))"#)
    .await;
    assert_eq!(r, "(:timeout :after)");
    assert_eq!(elapsed, Duration::from_millis(100));
    // Outer shorter: the inner catch-all cannot stop it; the outer boundary reports.
    let (r, elapsed, out) = run(
        r#"(try (with-timeout 100
                  (try (with-timeout 500 (sleep 1000)) (catch e (println "inner saw" (error-kind e))))
                  (println "not reached"))
                (catch e (list :outer (error-kind e))))"#,
    )
    .await;
    assert_eq!(r, "(:outer :timeout)");
    assert_eq!(elapsed, Duration::from_millis(100));
    assert_eq!(out, "inner saw :cancelled\n");
    // A task timeout around a with-timeout.
    let (r, elapsed, _) = run(
        r#"(try (await (async (lambda () (with-timeout 1000 (sleep 5000))) :timeout 100))
                (catch e (error-kind e)))"#,
    )
    .await;
    assert_eq!(r, ":timeout");
    assert_eq!(elapsed, Duration::from_millis(100));
}

/// A cancel that arrives while a `finally` runs lets it finish (it is shielded), then the
/// cancellation goes on from the end of the `finally` (a checkpoint); a handler that
/// re-raises passes it on.
#[tokio::test(start_paused = true)]
async fn a_cancel_during_finally_lets_it_finish() {
    let (r, elapsed, out) = run(r#"(define t (async (lambda ()
             (try (try (sleep 10) (finally (println "cleanup") (sleep 100) (println "cleaned")))
                  (catch e (raise e)))
             (println "not reached"))))
           (sleep 50)
           (cancel t "stop")
           (list (try (await t) (catch e (error-kind e))) (task-state t))"#)
    .await;
    assert_eq!(r, "(:cancelled :cancelled)");
    assert_eq!(
        elapsed,
        Duration::from_millis(110),
        "the finally's sleep ran out"
    );
    assert_eq!(out, "cleanup\ncleaned\n");
}

/// `(catch e :cancelled …)` names the kind: its value is the `try`'s, and the task may end
/// with it if it reaches no other checkpoint.
#[tokio::test(start_paused = true)]
async fn a_handler_naming_cancelled_returns_a_value() {
    let (r, elapsed, _) = run(
        r#"(define t (async (lambda () (try (sleep 1000) (catch e :cancelled (list :stopped (error-kind e)))))))
           (sleep 5)
           (cancel t "stop")
           (await t)"#,
    )
    .await;
    assert_eq!(r, "(:stopped :cancelled)");
    assert_eq!(elapsed, Duration::from_millis(5));
    // But a later checkpoint raises again (level-triggered).
    let (r, _, _) = run(
        r#"(define t (async (lambda () (try (sleep 1000) (catch e :cancelled 0)) (sleep 1) :ran-on)))
           (sleep 5)
           (cancel t "stop")
           (try (await t) (catch e (error-kind e)))"#,
    )
    .await;
    assert_eq!(r, ":cancelled");
}

/// `shield` lets cleanup await within the grace; past the grace the task is dropped,
/// counted as cancelled and reported.
#[tokio::test(start_paused = true)]
async fn shield_awaits_within_the_grace_and_is_dropped_past_it() {
    let (r, elapsed, out) = run(r#"(define t (async (lambda ()
             (try (sleep 1000)
                  (catch e (shield (sleep 100) (println "saved" (error-kind e))))))))
           (sleep 10)
           (cancel t "stop")
           (try (await t) (catch e (error-kind e)))"#)
    .await;
    assert_eq!(
        r, ":cancelled",
        "the bare catch raises it again after the shield"
    );
    assert_eq!(elapsed, Duration::from_millis(110));
    assert_eq!(out, "saved :cancelled\n");

    let sched = Scheduler::builder()
        .cleanup_grace(Duration::from_millis(200))
        .build();
    let (r, elapsed, out) = run_on(
        sched.clone(),
        0,
        r#"(define t (async (lambda () (shield (sleep 5000) (println "never")))))
           (sleep 10)
           (cancel t "stop")
           (list (try (await t) (catch e (error-kind e))) (task-state t))"#,
    )
    .await;
    assert_eq!(r, "(:cancelled :cancelled)");
    assert_eq!(elapsed, Duration::from_millis(210), "dropped at the grace");
    assert_eq!(out, "");
    assert_eq!(sched.stats().cancelled, 1);
}

/// Outside any task (synchronous `eval_sync`), `shield` and `(catch e :cancelled …)` are
/// ordinary forms.
#[test]
fn shield_and_named_catch_evaluate_synchronously() {
    let rt = Runtime::new();
    let v = rt
        .eval_sync(
            "(list (shield 1 2) (try (error \"x\") (catch e :cancelled (error-message e))) (try (car 1) (catch e :cancelled)))",
            "<t>",
        )
        .expect("evaluates");
    assert_eq!(write_string(&v), "(2 \"x\" :cancelled)");
}

/// A random tree of code as Lisp text, and the most time its shielded parts (`finally`
/// bodies, `shield` forms) can still sleep after a cancel.
#[derive(Clone, Debug)]
struct Tree {
    src: String,
    shielded_ms: u64,
}

fn tree() -> impl proptest::strategy::Strategy<Value = Tree> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        (1u64..40).prop_map(|ms| Tree {
            src: format!("(sleep {ms})"),
            shielded_ms: 0
        }),
        Just(Tree {
            src: "(yield)".into(),
            shielded_ms: 0
        }),
        Just(Tree {
            src: "(llm.infer \"q\")".into(),
            shielded_ms: 0
        }),
        Just(Tree {
            src: "(error \"boom\")".into(),
            shielded_ms: 0
        }),
        Just(Tree {
            src: "(do ((i 0 (+ i 1))) ((= i 2000) i))".into(),
            shielded_ms: 0,
        }),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            // A catch-all.
            inner.clone().prop_map(|b| Tree {
                src: format!("(try {} (catch e 0))", b.src),
                shielded_ms: b.shielded_ms,
            }),
            // A finally that sleeps (shielded).
            (inner.clone(), 1u64..30).prop_map(|(b, ms)| Tree {
                src: format!("(try {} (finally (sleep {ms})))", b.src),
                shielded_ms: b.shielded_ms + ms,
            }),
            // A catch-all whose handler awaits in a shield.
            (inner.clone(), 1u64..30).prop_map(|(b, ms)| Tree {
                src: format!("(try {} (catch e (shield (sleep {ms}))))", b.src),
                shielded_ms: b.shielded_ms + ms,
            }),
            // A child task, awaited.
            inner.clone().prop_map(|b| Tree {
                src: format!("(await (async (lambda () {})))", b.src),
                shielded_ms: b.shielded_ms,
            }),
            // A scope with a deadline that does not expire first.
            inner.clone().prop_map(|b| Tree {
                src: format!("(with-timeout 100000 {})", b.src),
                shielded_ms: b.shielded_ms,
            }),
            prop::collection::vec(inner, 1..3).prop_map(|v| Tree {
                src: format!(
                    "(begin {})",
                    v.iter()
                        .map(|t| t.src.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                shielded_ms: v.iter().map(|t| t.shielded_ms).sum(),
            }),
        ]
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, .. Default::default() })]

    /// Issue 16's property: a task running random trees of scopes, catch-all handlers,
    /// finally blocks, shields and child tasks inside a retry-forever loop ends at its
    /// cancel — plus at most what its shielded parts still sleep, never at the grace — and
    /// the scheduler's counts stay exact.
    #[test]
    fn every_random_tree_ends_at_its_cancel(t in tree(), cancel_at in 1u64..200) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a tokio runtime");
        let (r, elapsed, sched) = rt.block_on(async {
            let sched = Scheduler::builder()
                .cleanup_grace(Duration::from_secs(100))
                .build();
            let src = format!(
                r#"(define t (async (lambda ()
                     (let loop () (try (begin (sleep 1) {}) (catch e 0)) (loop)))))
                   (sleep {cancel_at})
                   (cancel t "stop")
                   (try (await t) (catch e (error-kind e)))"#,
                t.src
            );
            let (r, elapsed, _) = run_on(sched.clone(), 5, &src).await;
            (r, elapsed, sched)
        });
        proptest::prop_assert_eq!(r, ":cancelled");
        let bound = Duration::from_millis(cancel_at + t.shielded_ms);
        proptest::prop_assert!(elapsed <= bound, "{elapsed:?} > {bound:?} for {}", t.src);
        let s = sched.stats();
        proptest::prop_assert_eq!(s.pending + s.running + s.suspended, 0);
        proptest::prop_assert_eq!(s.submitted, s.completed + s.cancelled + s.failed + s.timed_out);
    }
}
