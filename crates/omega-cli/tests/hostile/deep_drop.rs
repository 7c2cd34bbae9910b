//! Class 3: dropping deeply nested values of every kind never overflows the native stack.

use super::run_script;

fn assert_runs(src: &str, expected: &str) {
    let r = run_script(&[], src);
    r.assert_no_crash();
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout.trim(), expected);
}

#[test]
fn dropping_100k_nested_maps_does_not_overflow() {
    assert_runs(
        "(define (nest n acc) (if (= n 0) acc (nest (- n 1) (hash-map :k acc))))
         (define m (nest 100000 1))
         (set! m nil)
         (println :ok)",
        ":ok",
    );
}

#[test]
fn dropping_a_chain_of_200k_closures_does_not_overflow() {
    assert_runs(
        "(define (chain n acc) (if (= n 0) acc (chain (- n 1) (lambda () acc))))
         (define c (chain 200000 nil))
         (set! c nil)
         (println :ok)",
        ":ok",
    );
}

#[test]
fn dropping_errors_nested_as_irritants_does_not_overflow() {
    assert_runs(
        "(define (nest n acc)
           (if (= n 0) acc (nest (- n 1) (try (error :error \"e\" acc) (catch e e)))))
         (define e (nest 100000 nil))
         (set! e nil)
         (println :ok)",
        ":ok",
    );
}

#[test]
fn dropping_a_chain_through_cells_does_not_overflow() {
    assert_runs(
        "(define (chain n acc)
           (if (= n 0) acc
               (chain (- n 1) (let ((x acc)) (set! x x) (lambda () x)))))
         (define c (chain 200000 nil))
         (set! c nil)
         (println :ok)",
        ":ok",
    );
}
