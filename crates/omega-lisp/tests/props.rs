//! Property tests: `read(write(v)) == v`; the reader never panics on arbitrary input; the
//! evaluator never panics on generated small programs.

use omega_lisp::{read_one, write_string, Limits, OutputBuffer, Runtime, Value};
use proptest::prelude::*;

mod common;
use common::{leaf_datum, nested_program};

fn datum() -> impl Strategy<Value = Value> {
    let leaf = leaf_datum();
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..6).prop_map(Value::list),
            (prop::collection::vec(inner.clone(), 1..4), inner.clone())
                .prop_filter("improper tail", |(_, t)| !matches!(
                    t,
                    Value::Nil | Value::Pair(_)
                ))
                .prop_map(|(items, tail)| Value::list_with_tail(items, tail)),
            prop::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::map),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn read_write_round_trip(v in datum()) {
        let text = write_string(&v);
        let back = read_one(&text, "<p>").map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(&back, &v, "text: {}", text);
    }

    #[test]
    fn reader_never_panics_on_strings(s in ".{0,200}") {
        let _ = omega_lisp::read_all(&s, "<p>");
    }

    #[test]
    fn reader_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = omega_lisp::read_all(&s, "<p>");
    }

    #[test]
    fn reader_never_panics_on_lisp_like_text(s in "[()\\[\\]{}'`,@#|;:\"\\\\ a-z0-9.\n-]{0,120}") {
        let _ = omega_lisp::read_all(&s, "<p>");
    }

    #[test]
    fn evaluator_never_panics(prog in program()) {
        let rt = Runtime::builder()
            .output(OutputBuffer::new())
            .limits(Limits { max_steps: Some(20_000), max_depth: 200, ..Limits::default() })
            .build();
        let _ = rt.eval_sync(&prog, "<p>");
        // The runtime is still usable afterwards. Only special forms here: the program may
        // have redefined any global it can name (`(define (+) 0)` made `(+ 1 2)` fail).
        prop_assert_eq!(
            rt.eval_sync("((lambda (a b) (if a b 0)) #t 3)", "<p>").ok(),
            Some(Value::Int(3))
        );
    }
}

fn program() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("0".to_string()),
        Just("1".to_string()),
        Just("-7".to_string()),
        Just("2.5".to_string()),
        Just("\"s\"".to_string()),
        Just("'a".to_string()),
        Just(":k".to_string()),
        Just("nil".to_string()),
        Just("#t".to_string()),
        Just("x".to_string()),
        Just("f".to_string()),
        Just("'(1 2 3)".to_string()),
        Just("{:a 1}".to_string()),
        Just("9223372036854775807".to_string()),
    ];
    const HEADS: &[&str] = &[
        "+",
        "-",
        "*",
        "/",
        "<",
        "=",
        "car",
        "cdr",
        "cons",
        "list",
        "if",
        "let",
        "lambda",
        "begin",
        "and",
        "or",
        "when",
        "define",
        "set!",
        "try",
        "quote",
        "str",
        "map",
        "apply",
        "f",
        "x",
        "length",
        "reverse",
        "append",
        "get",
        "assoc",
        "error",
        "raise",
        "cond",
        "do",
        "quasiquote",
        "unquote",
        "format",
        "range",
        "sort",
        "string-append",
        "nth",
        "expt",
        "json-stringify",
    ];
    nested_program(atom, HEADS, "(define x 3) (define (f a) (+ a 1))")
}

/// The input that made `evaluator_never_panics` fail: it redefines `+`, so the property's own
/// follow-up check must not call `+` (it now uses special forms only).
#[test]
fn a_program_that_redefines_plus_leaves_a_usable_runtime() {
    let rt = Runtime::builder()
        .output(OutputBuffer::new())
        .limits(Limits {
            max_steps: Some(20_000),
            max_depth: 200,
            ..Limits::default()
        })
        .build();
    let _ = rt.eval_sync("(define x 3) (define (f a) (+ a 1)) (define (+ ) 0)", "<p>");
    assert!(
        rt.eval_sync("(+ 1 2)", "<p>").is_err(),
        "`+` now takes no arguments"
    );
    assert_eq!(
        rt.eval_sync("((lambda (a b) (if a b 0)) #t 3)", "<p>").ok(),
        Some(Value::Int(3))
    );
}
