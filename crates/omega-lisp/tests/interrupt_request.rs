//! The process-wide interrupt request (`request_interrupt`, `interrupt_request_flag`,
//! `clear_interrupt_request`): the evaluation running takes it at its next step outside a
//! shield and raises `:cancelled`. The request is one flag for the whole process, so every
//! case runs in this one test, in its own test binary: no other evaluation can take it.

use omega_lisp::{
    clear_interrupt_request, interrupt_request_flag, request_interrupt, ErrorKind, Runtime, Value,
};

const LOOP: &str = "(let loop ((i 0)) (if (< i 1000000) (loop (+ i 1)) i))";

#[test]
fn the_interrupt_request_is_taken_once_outside_shields() {
    let rt = Runtime::new();
    rt.register_fn("request-interrupt", |_| {
        request_interrupt();
        Ok(Value::Nil)
    });
    let flag = interrupt_request_flag();

    // Taken at the next step: the loop never ends by itself.
    let e = rt
        .eval_sync(&format!("(begin (request-interrupt) {LOOP})"), "t")
        .expect_err("interrupted");
    assert_eq!(e.kind(), &ErrorKind::Cancelled, "{e}");
    assert_eq!(e.message(), "cancelled: interrupted");
    assert!(!flag.load(std::sync::atomic::Ordering::SeqCst), "taken");
    // Taken once: the next evaluation runs to its end.
    assert_eq!(
        rt.eval_sync(LOOP, "t").expect("runs"),
        Value::Int(1_000_000)
    );

    // A `finally` block is not cut short: a request made in it waits for it to end, then is
    // taken by the loop after it.
    rt.eval_sync("(define done #f)", "t").expect("defines");
    let e = rt
        .eval_sync(
            &format!("(try 1 (finally (request-interrupt) {LOOP} (set! done #t))) {LOOP}"),
            "t",
        )
        .expect_err("interrupted after the finally block");
    assert_eq!(e.kind(), &ErrorKind::Cancelled, "{e}");
    assert_eq!(rt.global("done"), Some(Value::Bool(true)));

    // The flag is the request: what a signal handler stores is taken the same way.
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
    let e = rt.eval_sync(LOOP, "t").expect_err("interrupted");
    assert_eq!(e.kind(), &ErrorKind::Cancelled, "{e}");

    // A syntax-rules expansion takes it too (it holds the thread as long as it runs): a
    // request pending when the form's exponential expansion starts ends it long before its
    // work limit.
    rt.eval_sync(
        "(define-syntax dbl (syntax-rules () ((_) 1) ((_ x . r) (+ (dbl . r) (dbl . r)))))",
        "t",
    )
    .expect("defines");
    request_interrupt();
    let e = rt
        .eval_sync(
            "(dbl 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30)",
            "t",
        )
        .expect_err("interrupted");
    assert_eq!(e.kind(), &ErrorKind::Cancelled, "{e}");
    assert!(
        e.to_string().contains("t:1:1: cancelled: interrupted"),
        "{e}"
    );

    // A withdrawn request is not taken.
    request_interrupt();
    clear_interrupt_request();
    assert!(!flag.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(
        rt.eval_sync(LOOP, "t").expect("runs"),
        Value::Int(1_000_000)
    );
}
