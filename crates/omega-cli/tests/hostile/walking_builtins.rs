//! Class 4: builtins that walk a value respect `max_string_len` and do not hang on a shared
//! structure whose unfolded tree is exponentially large (a 60-level DAG).

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
