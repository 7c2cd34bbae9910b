//! Class 11: cycles through task values — a task whose value or error refers back to its own
//! task value — are reclaimed once dropped, so a loop that makes one per round, awaits it and
//! drops it runs in flat memory (issue 10: `TaskValue` is traced by the cycle collector).
//! The parent stores the task into a list the child returns (or raises): the child may run
//! before the parent's next op, so reading a variable the parent sets after `async` would
//! make some rounds without a cycle.

use super::assert_flat_memory;

#[test]
fn a_task_whose_value_holds_the_task_is_reclaimed() {
    assert_flat_memory(
        "(define (spin n)
           (if (= n 0)
               :done
               (begin
                 (let* ((box (list nil (list n n n))) (t (async (lambda () box))))
                   (set-car! box t)
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
                 (let* ((box (list nil (list n n n)))
                        (t (async (lambda () (error :mine \"boom\" box)))))
                   (set-car! box t)
                   (try (await t) (catch e (error-kind e))))
                 (spin (- n 1)))))
         (println (spin N))",
        10_000,
        |_, out| assert!(out.contains(":done"), "{out}"),
    );
}
