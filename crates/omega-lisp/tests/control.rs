//! Scheme control and tasks (issue 15): escapes through `await`, `dynamic-wind` and
//! `parameterize` under cancellation, `guard` and `with-exception-handler` unable to end a
//! cancellation, continuations refused across tasks. Paused tokio clock: every duration is
//! exact.

mod common;

use std::time::Duration;

/// Runs `src` as a script: the value written (or the error's report), the elapsed time and
/// the printed output (`common::run_timed`).
async fn run(src: &str) -> (String, Duration, String) {
    common::run_timed(src, "control.lisp").await
}

/// The brief's test: a task cancelled while it awaits inside a `dynamic-wind` thunk runs the
/// after-thunk, shielded (its own sleep completes), and ends cancelled.
#[tokio::test(start_paused = true)]
async fn an_after_thunk_runs_when_the_task_is_cancelled_while_awaiting() {
    let (r, elapsed, out) = run(r#"(define t (async (lambda ()
             (dynamic-wind
               (lambda () (println "before"))
               (lambda () (await (async (lambda () (sleep 1000) 1))) (println "not reached"))
               (lambda () (sleep 20) (println "after"))))))
           (sleep 100)
           (cancel t "stop")
           (list (try (await t) (catch e (list (error-kind e) (error-message e)))) (task-state t))"#)
    .await;
    assert_eq!(r, r#"((:cancelled "cancelled: stop") :cancelled)"#);
    assert_eq!(out, "before\nafter\n");
    assert_eq!(
        elapsed,
        Duration::from_millis(120),
        "the after-thunk's sleep ran out"
    );
}

/// `guard` with a catch-all clause cannot end a cancellation: the clause runs (it may log)
/// and the cancellation goes on; a retry loop around it stops at the cancel.
#[tokio::test(start_paused = true)]
async fn guard_cannot_end_a_cancellation() {
    let (r, elapsed, out) = run(r#"(define t (async (lambda ()
             (let loop ()
               (guard (e (#t (println "guarded" (error-kind e)) 'swallowed)) (sleep 100))
               (loop)))))
           (sleep 250)
           (cancel t "stop")
           (list (try (await t) (catch e (error-kind e))) (task-state t))"#)
    .await;
    assert_eq!(r, "(:cancelled :cancelled)");
    assert_eq!(elapsed, Duration::from_millis(250), "at the cancel");
    assert_eq!(out, "guarded :cancelled\n");
}

/// The R7RS escape pattern — a handler that leaves through a continuation — does not end a
/// cancellation either: the handler is not called for it.
#[tokio::test(start_paused = true)]
async fn an_escaping_exception_handler_cannot_end_a_cancellation() {
    let (r, elapsed, out) = run(r#"(define t (async (lambda ()
             (let loop ()
               (call/cc (lambda (k)
                 (with-exception-handler
                   (lambda (e) (println "handler") (k 'recovered))
                   (lambda () (sleep 100)))))
               (loop)))))
           (sleep 250)
           (cancel t "stop")
           (list (try (await t) (catch e (error-kind e))) (task-state t))"#)
    .await;
    assert_eq!(r, "(:cancelled :cancelled)");
    assert_eq!(elapsed, Duration::from_millis(250));
    assert_eq!(out, "", "no handler call for the cancellation");
}

/// `parameterize` restores its bindings when a cancellation leaves it (seen by a handler that
/// names `:cancelled` and so may end it).
#[tokio::test(start_paused = true)]
async fn parameterize_is_restored_on_cancellation() {
    let (r, _, _) = run(r#"(define p (make-parameter 'outer))
           (define t (async (lambda ()
             (try (parameterize ((p 'inner)) (sleep 1000))
                  (catch e :cancelled (list (error-kind e) (p)))))))
           (sleep 10)
           (cancel t "stop")
           (await t)"#)
    .await;
    assert_eq!(r, "(:cancelled outer)");
}

/// A continuation escapes after its task has suspended and resumed (through `await` and
/// `sleep`), running the `finally` on the way.
#[tokio::test(start_paused = true)]
async fn a_continuation_escapes_across_awaits() {
    let (r, elapsed, out) = run(r#"(call/cc (lambda (k)
             (try (let ((v (await (async (lambda () (sleep 30) 5)))))
                    (sleep 10)
                    (k (list 'escaped v))
                    'not-reached)
                  (catch e 'caught)
                  (finally (println "finally")))))"#)
    .await;
    assert_eq!(r, "(escaped 5)");
    assert_eq!(out, "finally\n");
    assert_eq!(elapsed, Duration::from_millis(40));
}

/// A continuation called from another task is refused (`:unsupported`), in that task, and the
/// task that made it is unaffected.
#[tokio::test(start_paused = true)]
async fn a_continuation_from_another_task_is_refused() {
    let (r, _, _) = run(r#"(call/cc (lambda (k)
             (let ((t (async (lambda () (k 'from-child)))))
               (list (try (await t) (catch e (list (error-kind e) (error-message e))))
                     'parent-goes-on))))"#)
    .await;
    assert_eq!(
        r,
        "((:unsupported \"continuation called from another task: continuations only escape \
         within the task whose call/cc made them (re-entry is not supported)\") parent-goes-on)"
    );
}

/// An escape out of a `with-lock` body releases the lock (its `finally`).
#[tokio::test(start_paused = true)]
async fn an_escape_releases_a_lock() {
    let (r, _, _) = run(r#"(list (call/cc (lambda (k) (with-lock "res" (k 'out))))
                 (with-lock "res" :timeout 10 'reacquired))"#)
    .await;
    assert_eq!(r, "(out reacquired)");
}

/// An after-thunk that suspends while an escape passes through it: the escape waits in the
/// `finally` across the suspension and then goes on to its `call/cc`.
#[tokio::test(start_paused = true)]
async fn an_escape_waits_for_an_after_thunk_that_sleeps() {
    let (r, elapsed, out) = run(r#"(list (call/cc (lambda (k)
               (dynamic-wind (lambda () #f)
                             (lambda () (k 'out) 'not-reached)
                             (lambda () (sleep 20) (println "after slept")))))
             :next)"#)
    .await;
    assert_eq!(r, "(out :next)");
    assert_eq!(out, "after slept\n");
    assert_eq!(elapsed, Duration::from_millis(20));
}
