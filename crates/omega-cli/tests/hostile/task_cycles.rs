//! Class 11: cycles through task values — a task whose value or error refers back to its own
//! task value — are reclaimed once dropped, so a loop that makes one per round, awaits it and
//! drops it runs in flat memory (issue 10: `TaskValue` is traced by the cycle collector).

use super::assert_flat_memory;

#[test]
fn a_task_whose_value_holds_the_task_is_reclaimed() {
    assert_flat_memory(
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
        |_, out| assert!(out.contains(":done"), "{out}"),
    );
}

#[test]
fn a_task_whose_error_holds_the_task_is_reclaimed() {
    assert_flat_memory(
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
        |_, out| assert!(out.contains(":done"), "{out}"),
    );
}
