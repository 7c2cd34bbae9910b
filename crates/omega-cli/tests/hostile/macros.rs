//! Class 12: `syntax-rules` macros (issue 15). Expansion runs under the script's steps, a fixed
//! per-form expansion budget, the heap limit and interrupts; a macro that recurses forever or
//! grows exponentially ends in a `:limit` error (under `omega check` too), and a huge ellipsis
//! match stays linear.

use std::time::{Duration, Instant};

use super::{omega, run_script, signal_after_start};

const SELF_RECURSIVE: &str = "(define-syntax forever (syntax-rules () ((_ x) (forever x))))
(forever 1)";

const EXPONENTIAL: &str = "(define-syntax dbl (syntax-rules () ((_) 1) ((_ x . r) (+ (dbl . r) (dbl . r)))))
(dbl 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40)";

/// Runs `omega check` on `src`.
fn check_script(src: &str) -> super::Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hostile.lisp");
    std::fs::write(&path, src).expect("temp file is writable");
    omega(&["check", &path.display().to_string()])
}

#[test]
fn a_self_recursive_macro_ends_in_a_limit_error() {
    let r = run_script(&[], SELF_RECURSIVE);
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr
            .contains(":2:1: limit exceeded: macro expansion depth (1100), expanding forever"),
        "{r:?}"
    );
}

#[test]
fn omega_check_stops_a_self_recursive_macro() {
    let r = check_script(SELF_RECURSIVE);
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr
            .contains("limit exceeded: macro expansion depth (1100), expanding forever"),
        "{r:?}"
    );
}

#[test]
fn an_exponential_macro_is_held_to_max_steps() {
    let r = run_script(&["--max-steps", "200000"], EXPONENTIAL);
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains("limit exceeded: max_steps (200000)"),
        "{r:?}"
    );
}

#[test]
fn omega_check_stops_an_exponential_macro() {
    let r = check_script(EXPONENTIAL);
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains(
            "limit exceeded: max_expansion_work (10000000 nodes of macro expansion in one \
             top-level form)"
        ),
        "{r:?}"
    );
}

#[test]
fn a_macro_doubling_its_output_ends_in_a_limit_error() {
    let r = run_script(
        &[],
        "(define-syntax grow (syntax-rules () ((_ x) (grow (x x)))))\n(grow 1)",
    );
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("error[:limit]"), "{r:?}");
}

#[test]
fn a_hundred_thousand_element_ellipsis_match_is_linear() {
    let n = 100_000;
    let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let items = items.join(" ");
    let src = format!(
        "(define-syntax count-args (syntax-rules () ((_ x ...) (length '(x ...)))))
         (define-syntax last-two (syntax-rules () ((_ a ... y z) '(y z))))
         (define-syntax pairs (syntax-rules () ((_ (a b) ...) (list (+ a b) ...))))
         (println (count-args {items}))
         (println (last-two {items}))
         (println (length (pairs {})))",
        (0..n)
            .map(|i| format!("({i} 1)"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let started = Instant::now();
    let r = run_script(&[], &src);
    r.assert_no_crash();
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, format!("{n}\n({} {})\n{n}\n", n - 2, n - 1));
    // Generous (debug build, shared machine): a quadratic match would take minutes.
    assert!(started.elapsed() < Duration::from_secs(60), "{r:?}");
}

#[test]
fn ctrl_c_interrupts_a_long_expansion() {
    // `started` is printed while `(go)` is expanded, just before its expansion, the
    // exponential `dbl` use, is expanded in turn: the signal comes while the expander holds
    // the main thread (or, on a loaded machine, while `go` is still returning: then `go`
    // takes it). Either way it ends the expansion at once: left alone it would run for about
    // a second into `max_expansion_work` (exit 1). That the syntax-rules expander itself
    // takes the request is checked exactly in omega-lisp's tests/interrupt_request.rs.
    let src = format!(
        "{}\n(defmacro go () (println \"started\") '{})\n(go)",
        EXPONENTIAL.lines().next().expect("two lines"),
        EXPONENTIAL.lines().nth(1).expect("two lines"),
    );
    let r = signal_after_start(&src, "INT");
    assert!(r.after_signal < Duration::from_secs(20), "{r:?}");
    assert_eq!(r.code, Some(130), "{r:?}");
    assert!(
        r.stderr.contains("error[:cancelled]: ")
            && r.stderr.contains("cancelled: interrupted")
            && r.stderr.contains("m.lisp:3:1"),
        "{r:?}"
    );
}
