//! Property tests for the character and string surface of SPEC §6.9: `write` then `read`
//! round-trips characters and strings (alone and inside lists); `string->list`/`list->string`
//! round-trip; `string-ref`/`string-length` index by character; the evaluator never panics on
//! small programs over the new list, string, character and number builtins.

use omega_lisp::{read_one, write_string, Limits, OutputBuffer, Runtime, Value};
use proptest::prelude::*;

mod common;
use common::{limited_runtime, lit, nested_program};

/// Strings mixing ASCII, accented letters, CJK, emoji, controls and the characters that need
/// escaping.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::char::range('a', 'z'),
            1 => prop::sample::select(vec!['é', 'ß', 'λ', '中', '😀', ' ', '\n', '\t', '"', '\\', '\0', '\u{7f}', '\u{2028}']),
            1 => any::<char>(),
        ],
        0..40,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn chars_round_trip_through_write_and_read(c in any::<char>()) {
        let v = Value::Char(c);
        let text = write_string(&v);
        let back = read_one(&text, "<p>").map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(&back, &v, "text: {}", text);
    }

    #[test]
    fn lists_of_chars_and_strings_round_trip(cs in prop::collection::vec(any::<char>(), 0..8), s in text()) {
        let v = Value::list(
            cs.iter().map(|&c| Value::Char(c)).chain([Value::string(s.clone())]).collect::<Vec<_>>(),
        );
        let text = write_string(&v);
        let back = read_one(&text, "<p>").map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(&back, &v, "text: {}", text);
    }

    #[test]
    fn string_list_round_trip(s in text()) {
        let rt = limited_runtime(200_000);
        let src = format!("(list->string (string->list {}))", lit(&s));
        prop_assert_eq!(rt.eval_sync(&src, "<p>").ok(), Some(Value::string(s.clone())));
        let chars = rt.eval_sync(&format!("(string->list {})", lit(&s)), "<p>").ok();
        prop_assert_eq!(chars, Some(Value::list(s.chars().map(Value::Char).collect::<Vec<_>>())));
    }

    #[test]
    fn string_ref_indexes_by_character(s in text()) {
        let rt = limited_runtime(200_000);
        // Forwards then backwards over the same string, as loops do.
        let src = format!(
            "(define s {}) (define n (string-length s))
             (define (up i acc) (if (= i n) (reverse acc) (up (+ i 1) (cons (string-ref s i) acc))))
             (define (down i acc) (if (< i 0) acc (down (- i 1) (cons (string-ref s i) acc))))
             (list n (up 0 '()) (down (- n 1) '()))",
            lit(&s)
        );
        let chars = Value::list(s.chars().map(Value::Char).collect::<Vec<_>>());
        let n = i64::try_from(s.chars().count()).unwrap_or(i64::MAX);
        let want = Value::list(vec![Value::Int(n), chars.clone(), chars]);
        prop_assert_eq!(rt.eval_sync(&src, "<p>").ok(), Some(want));
    }

    #[test]
    fn evaluator_never_panics_on_the_scheme_surface(prog in program()) {
        let rt = Runtime::builder()
            .output(OutputBuffer::new())
            .limits(Limits { max_steps: Some(20_000), max_depth: 200, ..Limits::default() })
            .build();
        let _ = rt.eval_sync(&prog, "<p>");
        prop_assert_eq!(rt.eval_sync("(+ 1 2)", "<p>").ok(), Some(Value::Int(3)));
    }
}

fn program() -> impl Strategy<Value = String> {
    let atom = prop::sample::select(vec![
        "0",
        "1",
        "-1",
        "2",
        "-7",
        "2.5",
        "-0.0",
        "+inf.0",
        "+nan.0",
        "1e300",
        "9223372036854775807",
        "-9223372036854775808",
        "#\\a",
        "#\\λ",
        "#\\space",
        "\"héllo\"",
        "\"\"",
        "'(1 2 3)",
        "'((a . 1) (b . 2))",
        "'(1 . 2)",
        "nil",
        "#t",
        "s",
        "l",
    ])
    .prop_map(str::to_string);
    const HEADS: &[&str] = &[
        "string-ref",
        "substring",
        "string-copy",
        "string->list",
        "list->string",
        "make-string",
        "string",
        "string-map",
        "string-for-each",
        "string-index",
        "string<?",
        "string-ci=?",
        "number->string",
        "string->number",
        "char->integer",
        "integer->char",
        "char-upcase",
        "digit-value",
        "char<?",
        "char-ci=?",
        "caddr",
        "cdadr",
        "memv",
        "member",
        "assq",
        "assoc",
        "list-tail",
        "list-ref",
        "list-copy",
        "last-pair",
        "exact",
        "inexact",
        "truncate",
        "floor/",
        "truncate-remainder",
        "floor-quotient",
        "gcd",
        "lcm",
        "square",
        "exact-integer-sqrt",
        "nan?",
        "list",
        "char-upcase",
    ];
    nested_program(atom, HEADS, "(define s \"aλ😀 b\") (define l '(1 2 3))")
}
