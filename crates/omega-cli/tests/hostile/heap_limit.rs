//! Class 2: the heap limit (`--max-heap`) holds on every allocation path and ends the script
//! with `:limit` instead of exhausting memory.

use super::{omega, run_script, Run};

fn assert_heap_limit(r: &Run, bytes: u64) {
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains("error[:limit]")
            && r.stderr
                .contains(&format!("heap limit of {bytes} bytes reached")),
        "{r:?}"
    );
}

#[test]
fn a_doubling_macro_fails_fast_with_limit() {
    let r = run_script(
        &["--max-heap", "64M"],
        "(defmacro dbl (n) (if (= n 0) 1 `(+ (dbl ,(- n 1)) (dbl ,(- n 1)))))
         (dbl 40)",
    );
    assert_heap_limit(&r, 64 << 20);
}

#[test]
fn a_thousand_8_mib_strings_hit_the_limit_and_try_cannot_catch_it() {
    let r = run_script(
        &["--max-heap", "256M"],
        "(define (grow s n) (if (= n 0) s (grow (str s s) (- n 1))))
         (define chunk (grow \"a\" 23))
         (define (mk n acc) (if (= n 0) acc (mk (- n 1) (cons (str chunk \"b\") acc))))
         (println (try (length (mk 1000 nil)) (catch e :caught)))",
    );
    assert_heap_limit(&r, 256 << 20);
    assert!(!r.stdout.contains("caught"), "{r:?}");
}

#[test]
fn a_huge_quoted_literal_is_charged_while_it_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.lisp");
    let mut src = String::from("(define x '(");
    for _ in 0..3_000_000 {
        src.push_str("12345 ");
    }
    src.push_str("))\n(println (length x))\n");
    std::fs::write(&path, src).expect("writable");
    let r = omega(&[
        "run",
        "--no-progress",
        "--max-heap",
        "64M",
        &path.display().to_string(),
    ]);
    assert_heap_limit(&r, 64 << 20);
    assert!(r.stderr.contains("big.lisp:1:"), "a position: {r:?}");
}

#[test]
fn eval_takes_max_heap_too_and_a_bad_size_is_a_usage_error() {
    let r = omega(&[
        "eval",
        "--max-heap",
        "32M",
        "(define (grow s n) (if (= n 0) s (grow (str s s) (- n 1)))) (grow \"a\" 26)",
    ]);
    assert_heap_limit(&r, 32 << 20);
    let r = omega(&["eval", "--max-heap", "lots", "1"]);
    r.assert_no_crash();
    assert_eq!(r.code, Some(2), "{r:?}");
}

#[test]
fn within_the_limit_scripts_run_normally() {
    let r = run_script(&["--max-heap", "64M"], "(println (length (range 100000)))");
    r.assert_no_crash();
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout.trim(), "100000");
}
