//! Class 1: values reachable only through cycles are reclaimed, so loops that make a
//! self-recursive local function (named `let`, `letrec`, internal `define`, the prelude's
//! `map`) run in flat memory.

use super::{assert_flat_memory, run_script};

#[test]
fn map_in_a_loop_runs_in_flat_memory() {
    // Each `map` call makes a named-let closure that captures itself through a cell.
    assert_flat_memory(
        "(define (mk n) (if (= n 0) :done (begin (map car '((1))) (mk (- n 1))))) (mk N)",
        50_000,
        |_, _| {},
    );
}

#[test]
fn named_lets_letrec_and_internal_defines_run_in_flat_memory() {
    assert_flat_memory(
        "(define (f x)
           (define (g y) (if (= y 0) 0 (g (- y 1))))
           (letrec ((h (lambda (z) (if (= z 0) 0 (h (- z 1))))))
             (let loop ((i 0)) (if (< i 1) (loop (+ i 1)) (+ (g 1) (h 1) i)))))
         (define (run n) (if (= n 0) :done (begin (f n) (run (- n 1)))))
         (run N)",
        30_000,
        |_, _| {},
    );
}

#[test]
fn a_closure_joined_to_data_through_an_assigned_variable_is_reclaimed() {
    assert_flat_memory(
        "(define (f i)
           (let ((self nil) (data (list i i i)))
             (set! self (lambda () (list self data)))
             (self)))
         (define (run n) (if (= n 0) :done (begin (f n) (run (- n 1)))))
         (run N)",
        30_000,
        |_, _| {},
    );
}

#[test]
fn live_cycles_survive_collection() {
    // A self-recursive closure kept in a global and used after many collections.
    let r = run_script(
        &[],
        "(define keep (let loop ((i 0)) (lambda (n) (if (= n 0) i (loop n)))))
         (define counter
           (let ((count 0)) (lambda () (set! count (+ count 1)) count)))
         (define (churn n) (if (= n 0) :done (begin (map car '((1))) (counter) (churn (- n 1)))))
         (churn 100000)
         (println (list (keep 0) (counter)))",
    );
    r.assert_no_crash();
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout.trim(), "(0 100001)");
}
