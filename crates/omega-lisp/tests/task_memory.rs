//! What the memory work on suspended Lisp tasks (issue 10, SPEC §9) must not change:
//! a plain `sleep` is held inline by its task (no boxed future) and a lambda with no free
//! variables is one shared closure, yet cancellation, shields, timeouts, `await-all` /
//! `await-any` and closures that capture behave as before. Paused tokio clock: every
//! duration below is exact.

mod common;

use std::time::Duration;

/// Runs `src` as a script: the value written (or the error's report), the elapsed time and
/// the printed output (`common::run_timed`).
async fn run(src: &str) -> (String, Duration, String) {
    common::run_timed(src, "task_memory.lisp").await
}

#[tokio::test(start_paused = true)]
async fn a_task_cancelled_in_a_plain_sleep_ends_cancelled_at_the_cancel() {
    let (r, elapsed, out) = run(r#"(define t (async (lambda ()
             (try (sleep 60000)
                  (catch e (println "saw" (error-kind e)) (raise e))
                  (finally (println "finally"))))))
           (sleep 50)
           (cancel t "stop")
           (list (try (await t) (catch e (list (error-kind e) (error-message e)))) (task-state t))"#)
    .await;
    assert_eq!(r, r#"((:cancelled "cancelled: stop") :cancelled)"#);
    assert_eq!(elapsed, Duration::from_millis(50), "at the cancel");
    assert_eq!(out, "saw :cancelled\nfinally\n");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_task_does_not_start_a_new_sleep() {
    // Level-triggered: after a catch-all swallowed the first `:cancelled`, the next sleep of
    // the cancelled task fails at once too.
    let (r, elapsed, _) = run(r#"(define t (async (lambda ()
             (try (sleep 60000) (catch e :swallowed))
             (sleep 60000)
             :never)))
           (sleep 10)
           (cancel t "stop")
           (try (await t) (catch e (error-kind e)))"#)
    .await;
    assert_eq!(r, ":cancelled");
    assert_eq!(elapsed, Duration::from_millis(10));
}

#[tokio::test(start_paused = true)]
async fn a_sleep_under_a_shield_or_in_finally_still_sleeps_after_the_cancel() {
    let (r, elapsed, out) = run(r#"(define t (async (lambda ()
             (try (sleep 60000)
                  (finally (sleep 100) (println "finally slept")
                           (shield (sleep 100) (println "shield slept")))))))
           (sleep 50)
           (cancel t "stop")
           (try (await t) (catch e (error-kind e)))"#)
    .await;
    assert_eq!(r, ":cancelled");
    assert_eq!(
        elapsed,
        Duration::from_millis(250),
        "the cancel at 50, then two shielded sleeps of 100"
    );
    assert_eq!(out, "finally slept\nshield slept\n");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_ends_a_plain_sleep_at_its_deadline() {
    let (r, elapsed, _) = run(r#"(list
             (try (await (async (lambda () (sleep 60000) :late) :timeout 100))
                  (catch e (error-kind e)))
             (try (with-timeout 50 (sleep 60000)) (catch e (error-kind e)))
             (await (async (lambda () (sleep 10) :on-time) :timeout 100)))"#)
    .await;
    assert_eq!(r, "(:timeout :timeout :on-time)");
    assert_eq!(elapsed, Duration::from_millis(160));
}

#[tokio::test(start_paused = true)]
async fn many_plain_sleeps_end_in_order_under_await_all_and_await_any() {
    // `await-any` takes the first to end and cancels the others (in their sleeps).
    let (r, elapsed, _) = run(
        r#"(define racers (map (lambda (i) (async (lambda () (sleep (- 1000 i)) i)))
                                (range 1000)))
           (define first (await-any racers))
           (define ts (map (lambda (i) (async (lambda () (sleep (* 10 (+ i 1))) i)))
                           (range 1000)))
           (define all (await-all ts))
           (list first (length all) (car all) (list-ref all 999) (apply + all)
                 (task-state (car racers)) (task-state (list-ref racers 999)))"#,
    )
    .await;
    assert_eq!(r, "(999 1000 0 999 499500 :cancelled :completed)");
    assert_eq!(
        elapsed,
        Duration::from_millis(1 + 10_000),
        "the first racer, then the longest sleep"
    );
}

#[tokio::test(start_paused = true)]
async fn one_lambda_with_no_free_variables_runs_as_many_tasks() {
    // The thunk `(lambda () …)` captures nothing: every evaluation may be the same closure,
    // and still each `async` is its own task with its own result and state.
    let (r, _, out) = run(
        r#"(define (spawn) (async (lambda () (sleep 5) (println "ran") :v)))
           (define a (spawn))
           (define b (spawn))
           (cancel b "only b")
           (list (eq? a b) (await a) (try (await b) (catch e (error-kind e)))
                 (task-state a) (task-state b))"#,
    )
    .await;
    assert_eq!(r, "(#f :v :cancelled :completed :cancelled)");
    assert_eq!(out, "ran\n");
}

#[tokio::test(start_paused = true)]
async fn closures_that_capture_are_fresh_each_time_and_those_that_do_not_are_shared() {
    let (r, _, _) = run(r#"(define (make x) (lambda () x))
           (define (constant) (lambda () 42))
           (define p (make 1))
           (define q (make 2))
           (list (p) (q) (eq? p q) (eq? (make 1) (make 1))
                 ((constant)) (eq? (constant) (constant))
                 (procedure? (constant)))"#)
    .await;
    // R7RS leaves `eqv?` of two evaluations of one lambda unspecified: a lambda that
    // captures nothing is compiled to one closure (no allocation per evaluation).
    assert_eq!(r, "(1 2 #f #f 42 #t #t)");
}

#[tokio::test(start_paused = true)]
async fn a_shared_closure_keeps_its_name_and_recursion() {
    // A named inner function that captures nothing (it refers to globals only) is shared
    // too; its name and its self calls are those of its code.
    let (r, _, _) = run(r#"(define (outer)
             (define (fact n) (if (= n 0) 1 (* n (fact (- n 1)))))
             fact)
           (define (count-to n) (let loop ((i 0)) (if (< i n) (loop (+ i 1)) i)))
           (list ((outer) 10) (count-to 100000) (await (async (lambda () ((outer) 5)))))"#)
    .await;
    assert_eq!(r, "(3628800 100000 120)");
}
