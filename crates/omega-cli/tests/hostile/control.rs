//! Class: Scheme control (issue 15) under load — continuations called in long loops, escapes
//! through deep `dynamic-wind` nesting, long `delay-force` chains, deep `parameterize` and
//! `guard` nesting, deep promise chains dropped. No panic, flat memory, the documented exit
//! codes.

use super::{assert_flat_memory, run_script};

/// Runs `src`; asserts exit code `code` and stdout `expected` (trimmed), returns the run.
fn assert_runs(src: &str, code: i32, expected: &str) -> super::Run {
    let r = run_script(&[], src);
    r.assert_no_crash();
    assert_eq!(r.code, Some(code), "{r:?}");
    assert_eq!(r.stdout.trim(), expected, "{r:?}");
    r
}

/// Runs `src`; asserts it ended with a clean `:stack-overflow` report (exit code 1, no native
/// crash — `assert_no_crash` would take the Lisp message "stack overflow: …" for one) and
/// printed `expected`.
fn assert_overflows(src: &str, expected: &str) {
    let r = run_script(&[], src);
    for bad in [
        "panicked at",
        "RUST_BACKTRACE",
        "has overflowed its stack",
        "memory allocation",
    ] {
        assert!(
            !r.stderr.contains(bad) && !r.stdout.contains(bad),
            "crash text {bad:?}: {r:?}"
        );
    }
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr
            .starts_with("error[:stack-overflow]: stack overflow: call depth exceeds max_depth"),
        "{r:?}"
    );
    assert_eq!(r.stdout.trim(), expected, "{r:?}");
}

#[test]
fn a_continuation_called_a_million_times_runs_in_flat_memory() {
    let script = "(define (run n acc)
                    (if (= n 0) acc (run (- n 1) (+ acc (call/cc (lambda (k) (k 1) 0))))))
                  (println (run N 0))";
    assert_flat_memory(script, 100_000, |n, out| {
        assert_eq!(out.trim(), n.to_string())
    });
}

#[test]
fn an_escape_through_90k_nested_dynamic_winds_runs_every_after_thunk() {
    assert_runs(
        "(define afters 0)
         (define (nest n k)
           (if (= n 0)
               (k 'out)
               (dynamic-wind (lambda () #f)
                             (lambda () (nest (- n 1) k))
                             (lambda () (set! afters (+ afters 1))))))
         (println (call/cc (lambda (k) (nest 90000 k))) afters)",
        0,
        "out 90000",
    );
}

#[test]
fn nesting_dynamic_winds_past_max_depth_is_a_clean_stack_overflow() {
    assert_overflows(
        "(define afters 0)
         (define (nest n)
           (dynamic-wind (lambda () #f)
                         (lambda () (nest (+ n 1)))
                         (lambda () (set! afters (+ afters 1)))))
         (try (nest 0) (finally (println afters)))",
        "99999",
    );
}

#[test]
fn a_million_long_delay_force_chain_forces_in_constant_stack() {
    assert_runs(
        "(define (loop k) (delay-force (if (= k 0) (delay 'done) (loop (- k 1)))))
         (println (force (loop 1000000)))",
        0,
        "done",
    );
}

#[test]
fn dropping_a_chain_of_200k_promises_does_not_overflow() {
    assert_runs(
        "(define (chain n acc) (if (= n 0) acc (chain (- n 1) (let ((p acc)) (delay (force p))))))
         (define c (chain 200000 (delay 0)))
         (set! c nil)
         (define d (let loop ((n 0) (acc (make-promise 0)))
                     (if (= n 200000) acc (loop (+ n 1) (make-promise (list acc))))))
         (set! d nil)
         (println :ok)",
        0,
        ":ok",
    );
}

#[test]
fn deep_parameterize_nesting_works_then_overflows_cleanly() {
    let src = "(define p (make-parameter 0))
               (define (nest n) (if (= n 0) (p) (parameterize ((p n)) (+ 0 (nest (- n 1))))))
               (println (nest N) (p))";
    assert_runs(&src.replace('N', "20000"), 0, "1 0");
    assert_overflows(&src.replace('N', "1000000"), "");
}

#[test]
fn deep_guard_nesting_reraises_through_every_level() {
    assert_runs(
        "(define (nest n) (if (= n 0) (raise 'deep) (guard (e ((string? e) 'no)) (+ 0 (nest (- n 1))))))
         (println (guard (e ((symbol? e) (list 'caught e))) (nest 20000)))",
        0,
        "(caught deep)",
    );
}

#[test]
fn re_entering_a_continuation_in_a_loop_is_refused_each_time() {
    assert_runs(
        "(define k (call/cc (lambda (c) c)))
         (define (loop i n)
           (if (= i 100000) n
               (loop (+ i 1) (+ n (try (k 1) (catch e (if (eq? (error-kind e) :unsupported) 1 0)))))))
         (println (loop 0 0))",
        0,
        "100000",
    );
}
