//! Class 4: builtins that walk a value respect `max_string_len` and do not hang on a shared
//! structure whose unfolded tree is exponentially large (a 60-level DAG); their work on big
//! values counts as steps, so a loop of them meets `--max-steps` (and, as often in time as
//! any loop, timeouts and Ctrl-C: a 1 s `--task-timeout` fired after 4–60 s before).

use super::run_script;

const DAG: &str = "(define (dag n acc) (if (= n 0) acc (dag (- n 1) (list acc acc))))\n";

#[test]
fn equal_on_two_60_level_dags_answers_at_once() {
    let r = run_script(
        &[],
        &format!(
            "{DAG}(println (list (equal? (dag 60 '(1)) (dag 60 '(1)))
                               (equal? (dag 60 '(1)) (dag 60 '(2)))))"
        ),
    );
    r.assert_no_crash();
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout.trim(), "(#t #f)");
}

#[test]
fn printing_a_60_level_dag_stops_at_max_string_len() {
    for builtin in ["str", "write", "display", "json-stringify", "println"] {
        let r = run_script(&[], &format!("{DAG}({builtin} (dag 60 '(1)))"));
        r.assert_no_crash();
        assert_eq!(r.code, Some(1), "{builtin}: {r:?}");
        assert!(
            r.stderr
                .contains("error[:limit]: limit exceeded: max_string_len (16777216)"),
            "{builtin}: {r:?}"
        );
        assert!(
            r.stdout.len() < 1 << 20,
            "{builtin} printed {} bytes",
            r.stdout.len()
        );
    }
}

#[test]
fn a_macro_returning_a_quoted_60_level_dag_keeps_its_sharing() {
    let r = run_script(
        &["--max-heap", "64M"],
        &format!(
            "{DAG}(defmacro m () (list 'quote (dag 60 '(1))))
             (define d (m))
             (println (list (length d) (equal? d (dag 60 '(1)))))"
        ),
    );
    r.assert_no_crash();
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout.trim(), "(2 #t)");
}

#[test]
fn a_macro_returning_a_60_level_dag_as_code_hits_a_limit() {
    let r = run_script(
        &["--max-heap", "64M"],
        &format!("{DAG}(defmacro m () (dag 60 '(+ 1 2))) (m)"),
    );
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("error[:limit]"), "{r:?}");
}

#[test]
fn a_loop_of_builtins_on_big_values_meets_max_steps() {
    // 2,000 iterations of about 3 steps each fit 100k steps; the work on 300k-element values
    // (one step per 16 elements) does not.
    for call in [
        "(assoc big-map -1 i)",
        "(append big-list '(1))",
        "(reverse big-list)",
        "(length big-list)",
        "(list->vector big-list)",
        "(vector->list big-vector)",
        "(vector-fill! big-vector 0)",
        "(sort big-list <)",
        "(member -1 big-list)",
        "(equal? big-list (list-copy big-list))",
        "(range 300000)",
        "(json-stringify big-list)",
        "(apply + big-list)",
        "(regex-replace \"0\" big-string \"1\")",
        "(string-append big-string \"x\")",
        "(substring big-string 1 299999)",
        "(str big-list)",
    ] {
        let r = run_script(
            &["--max-steps", "100000"],
            &format!(
                "(define big-list (range 300000)) (define big-vector (list->vector big-list))
                 (define big-map (apply hash-map (range 20000)))
                 (define big-string (make-string 300000 #\\0))
                 (define (f i) {call})
                 (let loop ((i 0)) (if (< i 2000) (begin (f i) (loop (+ i 1)))))
                 (println :done)"
            ),
        );
        r.assert_no_crash();
        assert_eq!(r.code, Some(1), "{call}: {r:?}");
        assert!(
            r.stderr
                .contains("error[:limit]: limit exceeded: max_steps (100000)"),
            "{call}: {r:?}"
        );
    }
}
