//! Property tests for string ports and regexes: data written into an output port with `write`
//! read back one by one with `read` from an input port (then the end-of-file object); `read-line`
//! gives back the lines `string-split`… joined; `regex-split` on a literal separator inverts
//! `string-join`; arbitrary patterns never panic or hang (they match or raise `:error`).

use omega_lisp::{write_string, ErrorKind, OutputBuffer, Runtime, Value};
use proptest::prelude::*;

mod common;
use common::{leaf_datum, lit};

fn datum() -> impl Strategy<Value = Value> {
    let leaf = leaf_datum();
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..5).prop_map(Value::list),
            prop::collection::vec((inner.clone(), inner), 0..3).prop_map(Value::map),
        ]
    })
}

fn eval(src: &str) -> Result<Value, omega_lisp::LispError> {
    let rt = Runtime::builder().output(OutputBuffer::new()).build();
    rt.eval_sync(src, "<p>")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn write_to_a_port_then_read_back(vs in prop::collection::vec(datum(), 0..6)) {
        let quoted: Vec<String> = vs.iter().map(|v| format!("(quote {})", write_string(v))).collect();
        let src = format!(
            "(let ((o (open-output-string)))
               (for-each (lambda (v) (write v o) (write-char #\\space o)) (list {}))
               (let ((in (open-input-string (get-output-string o))))
                 (let loop ((acc '()))
                   (let ((d (read in)))
                     (if (eof-object? d) (reverse acc) (loop (cons d acc)))))))",
            quoted.join(" ")
        );
        let back = eval(&src).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, Value::list(vs));
    }

    #[test]
    fn read_line_gives_back_the_lines(lines in prop::collection::vec("[^\n\r]{0,10}", 1..6)) {
        let text = lines.join("\n");
        let src = format!(
            "(let ((in (open-input-string {})))
               (let loop ((acc '()))
                 (let ((l (read-line in)))
                   (if (eof-object? l) (reverse acc) (loop (cons l acc))))))",
            lit(&text)
        );
        let got = eval(&src).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // A trailing empty line is no line at all: "a\n" reads as ("a").
        let mut want: Vec<Value> = lines.iter().map(Value::string).collect();
        if text.is_empty() || text.ends_with('\n') {
            want.pop();
        }
        prop_assert_eq!(got, Value::list(want));
    }

    #[test]
    fn regex_split_inverts_string_join(parts in prop::collection::vec("[a-zé ]{0,6}", 1..6)) {
        let joined = parts.join(",");
        let src = format!("(string-join (regex-split \",\" {}) \",\")", lit(&joined));
        let got = eval(&src).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got, Value::string(joined));
    }

    #[test]
    fn any_pattern_matches_or_is_an_error(pat in ".{0,30}", text in ".{0,60}") {
        let src = format!("(regex-find-all {} {})", lit(&pat), lit(&text));
        if let Err(e) = eval(&src) {
            prop_assert_eq!(e.kind(), &ErrorKind::Error, "{}", e);
        }
    }
}
