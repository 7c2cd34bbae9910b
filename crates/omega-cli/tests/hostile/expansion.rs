//! Class 5: macro expansion runs under the script's steps, heap limit and interrupts, and
//! compiling a huge lambda takes linear time.

use std::time::Duration;

use super::{run_script, signal_after_start};

const LOOPING_MACRO: &str = "(defmacro m () (let loop ((i 0)) (loop (+ i 1)))) (m)";

#[test]
fn a_looping_macro_is_held_to_max_steps() {
    let r = run_script(&["--max-steps", "100000"], LOOPING_MACRO);
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr
            .contains("error[:limit]: limit exceeded: max_steps (100000)"),
        "{r:?}"
    );
}

#[test]
fn a_doubling_macro_is_held_to_max_steps() {
    let r = run_script(
        &["--max-steps", "200000"],
        "(defmacro dbl (n) (if (= n 0) 1 `(+ (dbl ,(- n 1)) (dbl ,(- n 1)))))
         (dbl 40)",
    );
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("max_steps (200000)"), "{r:?}");
}

#[test]
fn ctrl_c_interrupts_a_looping_macro() {
    // `started` is printed by the macro itself, so the signal comes while its expansion holds
    // the main thread (the main loop cannot take it; the expansion must).
    let r = signal_after_start(
        "(defmacro m () (println \"started\") (let loop ((i 0)) (loop (+ i 1))))\n(m)",
        "INT",
    );
    assert!(r.after_signal < Duration::from_secs(20), "{r:?}");
    assert_eq!(r.code, Some(130), "{r:?}");
    assert!(
        r.stderr
            .contains("error[:cancelled]: cancelled: interrupted"),
        "{r:?}"
    );
    assert!(r.stderr.contains("m.lisp:2:1"), "the macro use: {r:?}");
}

#[test]
fn a_lambda_with_400k_parameters_compiles_in_linear_time() {
    let params: Vec<String> = (0..400_000).map(|i| format!("p{i}")).collect();
    let used: Vec<&str> = params.iter().step_by(10).map(String::as_str).collect();
    let src = format!(
        "(define f (lambda ({}) (length (list {}))))\n(println :compiled)",
        params.join(" "),
        used.join(" ")
    );
    let r = run_script(&[], &src);
    r.assert_no_crash();
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout.trim(), ":compiled");
}
