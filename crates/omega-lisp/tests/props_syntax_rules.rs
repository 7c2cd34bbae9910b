//! Property tests for `syntax-rules` (SPEC §6.9, issue 15): ellipsis matching (at the end, in
//! the middle, nested) agrees with the list procedures on random inputs; introduced bindings
//! never capture a user variable of any name; the expander never panics on random macro
//! definitions and uses (errors are `:syntax` or `:limit`).

use omega_lisp::{write_string, ErrorKind, Runtime};
use proptest::prelude::*;

mod common;
use common::limited_runtime;

fn eval(rt: &Runtime, src: &str) -> Result<String, String> {
    rt.eval_sync(src, "<p>")
        .map(|v| write_string(&v))
        .map_err(|e| e.to_string())
}

fn ints(xs: &[i64]) -> String {
    xs.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")
}

/// Identifiers a user might pick, including the ones the macros below introduce.
fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("tmp".to_string()),
        Just("t".to_string()),
        Just("loop".to_string()),
        Just("acc".to_string()),
        Just("if".to_string()),
        Just("let".to_string()),
        Just("when".to_string()),
        // Not the names the test's own code uses.
        "[a-z]{1,6}".prop_filter("a name of the test", |s| !["n", "other", "cons"]
            .contains(&s.as_str())),
    ]
}

/// Pieces of macro definitions and uses.
fn piece() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "(",
            ")",
            "(",
            ")",
            "x",
            "y",
            "...",
            "_",
            "(... ...)",
            "1",
            "'a",
            ".",
            "m",
            "lit",
            "(list x ...)",
            "(m x ...)",
            "(let ((t x)) t)",
            "((x y) ...)",
            "\"s\"",
        ]),
        0..14,
    )
    .prop_map(|v| v.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn ellipsis_matches_agree_with_list_procedures(xs in prop::collection::vec(-50i64..50, 0..30)) {
        let rt = limited_runtime(200_000);
        let defs = "(define-syntax all (syntax-rules () ((_ x ...) '(x ...))))
                    (define-syntax rev (syntax-rules () ((_ () acc) 'acc) ((_ (x y ...) (a ...)) (rev (y ...) (x a ...)))))
                    (define-syntax ends (syntax-rules () ((_) 'none) ((_ x) 'one) ((_ a ... y z) '((a ...) y z))))";
        eval(&rt, defs).map_err(TestCaseError::fail)?;
        let l = ints(&xs);
        prop_assert_eq!(eval(&rt, &format!("(equal? (all {l}) '({l}))")), Ok("#t".into()));
        prop_assert_eq!(eval(&rt, &format!("(equal? (rev ({l}) ()) (reverse '({l})))")), Ok("#t".into()));
        let expect = match xs.len() {
            0 => "none".to_string(),
            1 => "one".to_string(),
            n => format!("(({}) {} {})", ints(&xs[..n - 2]), xs[n - 2], xs[n - 1])
                .replace("(()", "(nil"),
        };
        prop_assert_eq!(eval(&rt, &format!("(ends {l})")), Ok(expect));
    }

    #[test]
    fn nested_ellipses_transpose_like_map(rows in prop::collection::vec(prop::collection::vec(0i64..9, 0..5), 0..6)) {
        let rt = limited_runtime(200_000);
        eval(&rt, "(define-syntax heads (syntax-rules () ((_ (h t ...) ...) '((t ... h) ...))))")
            .map_err(TestCaseError::fail)?;
        let rows: Vec<Vec<i64>> = rows.into_iter().filter(|r| !r.is_empty()).collect();
        let src: Vec<String> = rows.iter().map(|r| format!("({})", ints(r))).collect();
        let rotated: Vec<String> = rows
            .iter()
            .map(|r| format!("'({} {})", ints(&r[1..]), r[0]))
            .collect();
        let got = eval(&rt, &format!("(equal? (heads {}) (list {}))", src.join(" "), rotated.join(" ")));
        prop_assert_eq!(got, Ok("#t".into()));
    }

    #[test]
    fn introduced_bindings_never_capture_a_user_variable(name in ident(), v in -100i64..100) {
        let rt = limited_runtime(200_000);
        eval(&rt, "(define-syntax my-or (syntax-rules () ((_) #f) ((_ e) e) ((_ e r ...) (let ((t e)) (if t t (my-or r ...))))))
                   (define-syntax swap! (syntax-rules () ((_ a b) (let ((tmp a)) (set! a b) (set! b tmp)))))
                   (define-syntax while (syntax-rules () ((_ c b ...) (let loop () (when c b ... (loop))))))")
            .map_err(TestCaseError::fail)?;
        // The user's variable, whatever its name, is seen through each macro.
        let src = format!(
            "(let (({name} {v}) (other 'o) (n 0))
               (swap! {name} other)
               (swap! {name} other)
               (while (< n 2) (set! n (+ n 1)))
               (cons (my-or #f {name}) n))"
        );
        prop_assert_eq!(eval(&rt, &src), Ok(format!("({v} . 2)")));
    }

    #[test]
    fn random_macros_never_panic(def in piece(), use_ in piece()) {
        let rt = limited_runtime(200_000);
        let src = format!("(define-syntax m (syntax-rules (lit) ((_ {def}) ({use_}))))\n(m {use_})\n(m {def})");
        if let Err(e) = rt.eval_sync(&src, "<p>") {
            prop_assert!(e.span().is_some() || *e.kind() != ErrorKind::Syntax, "{e}");
        }
    }
}
