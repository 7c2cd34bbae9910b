//! Class 12 (issue 15): cyclic data through mutable pairs, vectors and records. Printing,
//! comparing, measuring and converting a cycle ends (datum labels or a clear error), huge
//! vectors are `:limit` errors, and cycles made in a loop are reclaimed (flat memory).

use super::{assert_flat_memory, run_script};

/// A circular list and a self-containing vector, defined at the top of each script.
const PRELUDE: &str = "(define c (list 1 2 3)) (set-cdr! (cddr c) c)
                       (define v (vector 0 0)) (vector-set! v 0 v) (vector-set! v 1 c)\n";

#[test]
fn a_cycle_through_every_printing_and_walking_builtin_ends() {
    let r = run_script(
        &[],
        &format!(
            "{PRELUDE}
             (write c) (newline) (display v) (newline) (write-shared v) (newline)
             (println (str \"s=\" c))
             (println (equal? c c) (equal? v v) (list? c))
             (define (try-it f) (try (f) (catch e (error-kind e))))
             (println (map try-it (list (lambda () (length c)) (lambda () (json-stringify c))
                                        (lambda () (json-stringify v)) (lambda () (reverse c))
                                        (lambda () (append c c)) (lambda () (list-copy c))
                                        (lambda () (list->vector c)) (lambda () (memv 9 c)))))
             (error \"cyclic\" c v)"
        ),
    );
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "#0=(1 2 3 . #0#)",
            "#0=#(#0# #1=(1 2 3 . #1#))",
            "#0=#(#0# #1=(1 2 3 . #1#))",
            "s=#0=(1 2 3 . #0#)",
            "#t #t #f",
            "(:type-error :type-error :error :type-error :type-error :type-error :type-error \
             :type-error)",
        ],
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains("error[:error]: cyclic #0=(1 2 3 . #0#) #0=#(#0# #1=(1 2 3 . #1#))"),
        "{r:?}"
    );
}

#[test]
fn map_over_a_circular_list_ends_at_a_limit() {
    // The prelude's map keeps consing: it ends at the heap limit (or max_list_len), never hangs.
    let r = run_script(
        &["--max-heap", "64M"],
        &format!("{PRELUDE} (map (lambda (x) x) c)"),
    );
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("error[:limit]"), "{r:?}");
}

#[test]
fn a_trillion_element_vector_is_a_limit_error() {
    for src in [
        "(make-vector 1000000000000 0)",
        "(make-vector 9000000 0)",
        "(vector->list (make-vector 20000000))",
    ] {
        let r = run_script(&["--max-heap", "64M"], src);
        r.assert_no_crash();
        assert_eq!(r.code, Some(1), "{src}: {r:?}");
        assert!(r.stderr.contains("error[:limit]"), "{src}: {r:?}");
    }
}

#[test]
fn a_huge_vector_literal_reads_or_stops_at_the_heap_limit() {
    let mut src = String::from("(define v #(");
    for i in 0..2_000_000 {
        src.push_str(&i.to_string());
        src.push(' ');
    }
    src.push_str(")) (println (vector-length v))");
    let r = run_script(&[], &src);
    r.assert_no_crash();
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout.trim(), "2000000");
    let r = run_script(&["--max-heap", "64M"], &src);
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("error[:limit]"), "{r:?}");
}

#[test]
fn cycles_through_vectors_pairs_and_records_are_reclaimed() {
    let script = "(define-record-type node (make-node next) node? (next node-next set-node-next!))
         (define (run n)
           (if (= n 0) :done
               (let ((v (make-vector 2 n)) (p (list n n)) (r (make-node n)))
                 (vector-set! v 0 v) (vector-set! v 1 p)
                 (set-cdr! (cdr p) p) (set-car! p v)
                 (set-node-next! r r)
                 (run (- n 1)))))
         (run N)";
    assert_flat_memory(script, 100_000, |_, _| {});
}
