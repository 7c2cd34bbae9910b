//! Class 11: cycles through task values — a task whose value or error refers back to its own
//! task value — are reclaimed once dropped, so a loop that makes one per round, awaits it and
//! drops it runs in flat memory (issue 10: `TaskValue` is traced by the cycle collector).

use super::run_script;

/// Peak RSS of `script` run with `n` substituted for `N`.
fn peak_with(script: &str, n: u64) -> u64 {
    let r = run_script(&["--stats"], &script.replace("N", &n.to_string()));
    r.assert_no_crash();
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains(":done"), "{r:?}");
    r.peak_rss()
}

/// Asserts the peak RSS of 10× the rounds stays within 10 % (+2 MiB of noise) of 1×.
fn assert_flat(script: &str, small: u64) {
    let a = peak_with(script, small);
    let b = peak_with(script, small * 10);
    assert!(
        b <= a + a / 10 + (2 << 20),
        "memory grew with rounds: {a} bytes after {small}, {b} after {}",
        small * 10
    );
}

#[test]
fn a_task_whose_value_holds_the_task_is_reclaimed() {
    assert_flat(
        "(define (spin n)
           (if (= n 0)
               :done
               (begin
                 (let ((t nil))
                   (set! t (async (lambda () (list t (list n n n)))))
                   (await t))
                 (spin (- n 1)))))
         (println (spin N))",
        10_000,
    );
}

#[test]
fn a_task_whose_error_holds_the_task_is_reclaimed() {
    assert_flat(
        "(define (spin n)
           (if (= n 0)
               :done
               (begin
                 (let ((t nil))
                   (set! t (async (lambda () (error :mine \"boom\" t (list n n n)))))
                   (try (await t) (catch e (error-kind e))))
                 (spin (- n 1)))))
         (println (spin N))",
        10_000,
    );
}
