//! Tests of [`Fiber`] itself — slices, yields, interrupts, suspension and resumption — which
//! the public API (`Runtime::eval_str`, tasks) only shows from outside. Included by `fiber.rs`.

use std::cell::Cell;
use std::rc::Rc;

use super::Step;
use crate::error::{ErrorKind, LispError, LispResult};
use crate::native::Suspension;
use crate::vm::Interrupt;
use crate::{Limits, OutputBuffer, Runtime, Value};

fn rt_with(limits: Limits) -> Runtime {
    Runtime::builder()
        .limits(limits)
        .output(OutputBuffer::new())
        .build()
}

#[test]
fn tail_loop_of_ten_million_runs_in_constant_space() {
    let rt = rt_with(Limits {
        yield_interval: 10_000,
        ..Limits::default()
    });
    let mut fiber = rt
        .fiber(
            "(define (loop i) (if (< i 10000000) (loop (+ i 1)) i)) (loop 0)",
            "<tail>",
        )
        .expect("reads");
    let mut max_sizes = (0, 0, 0);
    let mut yields = 0;
    let v = loop {
        match fiber.resume().expect("no error") {
            Step::Done(v) => break v,
            Step::Yield => {
                yields += 1;
                let (s, f, h) = fiber.stack_sizes();
                max_sizes = (max_sizes.0.max(s), max_sizes.1.max(f), max_sizes.2.max(h));
            }
            Step::Suspend(_) => panic!("nothing suspends"),
        }
    };
    assert_eq!(v, Value::Int(10_000_000));
    assert!(yields >= 999, "yielded {yields} times");
    assert!(
        max_sizes.0 <= 8 && max_sizes.1 <= 2 && max_sizes.2 == 0,
        "sizes grew: {max_sizes:?}"
    );
}

#[test]
fn fiber_yields_every_interval() {
    let rt = rt_with(Limits {
        yield_interval: 100,
        ..Limits::default()
    });
    let mut fiber = rt
        .fiber(
            "(define (f n) (if (= n 0) 'done (f (- n 1)))) (f 1000)",
            "<y>",
        )
        .expect("reads");
    let mut yields = 0;
    loop {
        match fiber.resume().expect("ok") {
            Step::Yield => yields += 1,
            Step::Done(v) => {
                assert_eq!(v, Value::symbol("done"));
                break;
            }
            Step::Suspend(_) => unreachable!(),
        }
    }
    assert!((9..=11).contains(&yields), "{yields} yields");
}

#[test]
fn interrupt_cancels_and_runs_finally() {
    let out = OutputBuffer::new();
    let rt = Runtime::builder()
        .output(out.clone())
        .limits(Limits {
            yield_interval: 50,
            ..Limits::default()
        })
        .build();
    let mut fiber = rt
        .fiber(
            "(define (spin) (spin)) (try (spin) (finally (println \"cleanup\")))",
            "<c>",
        )
        .expect("reads");
    let cancelled = Rc::new(Cell::new(false));
    let flag = cancelled.clone();
    fiber.set_interrupt(move || flag.get().then(|| Interrupt::Cancel("stop".into())));
    for _ in 0..5 {
        assert!(matches!(fiber.resume().expect("runs"), Step::Yield));
    }
    cancelled.set(true);
    let err = fiber.resume().expect_err("cancelled");
    assert_eq!(*err.kind(), ErrorKind::Cancelled);
    assert_eq!(err.message(), "cancelled: stop");
    assert_eq!(out.contents(), "cleanup\n");
    assert!(fiber.is_done());
}

#[test]
fn a_native_can_suspend_and_be_resumed_with_a_value_or_an_error() {
    let out = OutputBuffer::new();
    let rt = Runtime::builder().output(out.clone()).build();
    // The request's future answers 10×n, or a timeout for n = 2; the test polls it itself.
    rt.define_suspending("fetch", 1, Some(1), |args| {
        let n = args[0].as_int().expect("int");
        Ok(Suspension::new(async move {
            if n == 2 {
                Err(LispError::new(ErrorKind::Timeout, "too slow"))
            } else {
                Ok(Value::Int(n * 10))
            }
        }))
    });
    let src = r#"
        (define a (fetch 1))
        (define b (try (fetch 2) (catch e (error-message e)) (finally (println "finally"))))
        (define (tail) (fetch 3))
        (list a b (+ 1 (tail)))
    "#;
    let mut fiber = rt.fiber(src, "<s>").expect("reads");
    let mut requests = Vec::new();
    let v = loop {
        match fiber.resume().expect("runs") {
            Step::Done(v) => break v,
            Step::Yield => {}
            Step::Suspend(s) => {
                assert!(fiber.is_suspended());
                requests.push(requests.len() + 1);
                // The evaluation is parked: the host may do anything, including running others.
                assert_eq!(
                    rt.eval_sync("(+ 40 2)", "<other>").expect("runtime free"),
                    Value::Int(42)
                );
                fiber.resume_with(futures::executor::block_on(s.into_request()));
            }
        }
    };
    assert_eq!(requests, vec![1, 2, 3]);
    assert_eq!(crate::write_string(&v), "(10 \"too slow\" 31)");
    assert_eq!(out.contents(), "finally\n");
}

#[test]
fn resume_without_a_value_is_an_error_not_a_panic() {
    let rt = rt_with(Limits::default());
    rt.define_suspending("wait", 0, Some(0), |_| {
        Ok(Suspension::new(std::future::pending::<LispResult<Value>>()))
    });
    let mut fiber = rt.fiber("(wait)", "<w>").expect("reads");
    assert!(matches!(fiber.resume().expect("runs"), Step::Suspend(_)));
    assert!(fiber.resume().is_err());
    fiber.resume_with(Ok(Value::Int(7)));
    assert!(matches!(
        fiber.resume().expect("runs"),
        Step::Done(Value::Int(7))
    ));
    // eval_sync cannot drive suspensions: a clean error that names the async entry point.
    let err = rt.eval_sync("(wait)", "<w>").expect_err("suspends");
    assert!(err.message().contains("Runtime::eval_str"), "{err}");
}

#[test]
fn a_second_resume_value_replaces_the_first_and_an_error_is_raised_where_it_suspended() {
    let rt = rt_with(Limits::default());
    rt.define_suspending("wait", 0, Some(0), |_| {
        Ok(Suspension::new(std::future::pending::<LispResult<Value>>()))
    });
    // The value waits on the value stack until the next slice: a second one replaces it.
    let mut fiber = rt.fiber("(list 1 (wait))", "<w>").expect("reads");
    assert!(matches!(fiber.resume().expect("runs"), Step::Suspend(_)));
    fiber.resume_with(Ok(Value::Int(7)));
    fiber.resume_with(Ok(Value::Int(8)));
    assert_eq!(
        crate::write_string(&match fiber.resume().expect("runs") {
            Step::Done(v) => v,
            other => panic!("not done: {other:?}"),
        }),
        "(1 8)"
    );
    // An error (kept apart until the next slice) replaces a value and is caught there.
    let mut fiber = rt
        .fiber("(try (list 1 (wait)) (catch e (error-message e)))", "<w>")
        .expect("reads");
    assert!(matches!(fiber.resume().expect("runs"), Step::Suspend(_)));
    fiber.resume_with(Ok(Value::Int(7)));
    fiber.resume_with(Err(LispError::new(ErrorKind::Error, "gave up")));
    assert!(matches!(
        fiber.resume().expect("runs"),
        Step::Done(Value::Str(_))
    ));
    assert_eq!(fiber.stack_sizes(), (0, 0, 0));
}

#[test]
fn a_plain_sleep_suspends_with_its_milliseconds_and_no_boxed_future() {
    let rt = rt_with(Limits::default());
    let mut fiber = rt.fiber("(list (sleep 5) :woke)", "<s>").expect("reads");
    // The task keeps the scheduler's sleep inline (task.rs): nothing boxed per sleeping task.
    assert!(matches!(
        fiber.resume().expect("runs"),
        Step::Suspend(Suspension::Sleep(5))
    ));
    fiber.resume_with(Ok(Value::Nil));
    match fiber.resume().expect("runs") {
        Step::Done(v) => assert_eq!(crate::write_string(&v), "(nil :woke)"),
        other => panic!("not done: {other:?}"),
    }
    // Bad input is still refused before anything suspends.
    let mut fiber = rt.fiber("(sleep -1)", "<s>").expect("reads");
    let err = fiber.resume().expect_err("a negative sleep");
    assert!(err.message().contains("non-negative"), "{err}");
    let mut fiber = rt.fiber("(sleep 1.5)", "<s>").expect("reads");
    assert!(fiber.resume().is_err());
}

/// Runs `fiber` to its end, resuming each suspension with 7; the value and the number of
/// slices that ended in a yield and in a suspension.
fn run_to_end(fiber: &mut super::Fiber) -> (LispResult<Value>, usize, usize) {
    let (mut yields, mut suspensions) = (0, 0);
    loop {
        match fiber.resume() {
            Ok(Step::Done(v)) => return (Ok(v), yields, suspensions),
            Ok(Step::Yield) => yields += 1,
            Ok(Step::Suspend(_)) => {
                suspensions += 1;
                fiber.resume_with(Ok(Value::Int(7)));
            }
            Err(e) => return (Err(e), yields, suspensions),
        }
    }
}

#[test]
fn every_exit_of_the_dispatch_loop_puts_the_value_stack_back() {
    // The dispatch loop runs with the value stack moved out of the core (vm.rs invariant 5):
    // each way out must move it back, or the next slice starts on an empty stack (lost
    // values) and every run allocates a new one. A stack dropped on the way out leaves the
    // core with no slots at all.
    let rt = rt_with(Limits {
        yield_interval: 100,
        ..Limits::default()
    });
    rt.define_suspending("wait", 0, Some(0), |_| {
        Ok(Suspension::new(std::future::pending::<LispResult<Value>>()))
    });
    let cases: &[(&str, &str, usize, usize)] = &[
        // A return from the outermost frame (`Return`, `ReturnLocal`).
        ("(define (f a b c) c) (f 1 2 3)", "3", 0, 0),
        ("(define (g a) (list a a)) (g 1)", "(1 1)", 0, 0),
        // `PrimReturn` from the outermost frame, on integers and on floats.
        ("(define x 2) (+ x x)", "4", 0, 0),
        ("(define y 2.5) (+ y y)", "5.0", 0, 0),
        // Slices that end in a yield (the step countdown), then a return.
        (
            "(define (count i) (if (< i 1000) (count (+ i 1)) i)) (count 0)",
            "1000",
            1,
            0,
        ),
        // A suspension through the generic call path, resumed, then a return.
        ("(define (h) (+ 1 (wait))) (h)", "8", 0, 1),
        // An error thrown out of the outermost frame, and one caught inside.
        ("(define (bad x) (car x)) (bad 5)", "", 0, 0),
        (
            "(define (ok x) (try (car x) (catch e :caught))) (ok 5)",
            ":caught",
            0,
            0,
        ),
    ];
    for &(src, want, min_yields, want_suspensions) in cases {
        let mut fiber = rt.fiber(src, "<exit>").expect("reads");
        let (result, yields, suspensions) = run_to_end(&mut fiber);
        match result {
            Ok(v) => assert_eq!(crate::write_string(&v), want, "{src}"),
            Err(e) => {
                assert!(want.is_empty(), "{src}: {e}");
                assert_eq!(*e.kind(), ErrorKind::TypeError, "{src}: {e}");
            }
        }
        assert!(yields >= min_yields, "{src}: {yields} yields");
        assert_eq!(suspensions, want_suspensions, "{src}");
        assert_eq!(fiber.stack_sizes().0, 0, "{src}: values left");
        assert!(
            fiber.stack_capacity() > 0,
            "{src}: the value stack was dropped, not put back"
        );
    }
}
