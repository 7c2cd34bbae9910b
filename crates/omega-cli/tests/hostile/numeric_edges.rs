//! Class 6: numeric and limit edges end in typed errors, never a panic or a silent wrap.

use super::{omega, run_script, Run};

fn eval(expr: &str) -> Run {
    let r = omega(&["eval", expr]);
    r.assert_no_crash();
    r
}

#[test]
fn min_int_divided_by_minus_one_is_a_catchable_overflow() {
    for op in ["/", "quotient"] {
        let r = eval(&format!("({op} -9223372036854775808 -1)"));
        assert_eq!(r.code, Some(1), "{op}: {r:?}");
        assert!(r.stderr.contains("error[:overflow]"), "{op}: {r:?}");
        let r = eval(&format!(
            "(try ({op} -9223372036854775808 -1) (catch e (error-kind e)))"
        ));
        assert_eq!(r.stdout.trim(), ":overflow", "{op}: {r:?}");
    }
    for op in ["remainder", "modulo"] {
        let r = eval(&format!("({op} -9223372036854775808 -1)"));
        assert_eq!(r.stdout.trim(), "0", "{op}: {r:?}");
    }
}

#[test]
fn range_near_the_integer_limit_does_not_wrap() {
    let r = eval("(range 9223372036854775000 9223372036854775807 100)");
    assert_eq!(r.code, Some(0), "{r:?}");
    let items: Vec<i64> = r
        .stdout
        .trim()
        .trim_matches(['(', ')'])
        .split(' ')
        .map(|x| x.parse().expect("integers"))
        .collect();
    assert_eq!(items.len(), 9, "{r:?}");
    assert_eq!(items[8], 9223372036854775800);
    assert!(items.windows(2).all(|w| w[0] < w[1]), "{r:?}");
}

#[test]
fn append_is_held_to_max_list_len() {
    let r = eval("(length (append (range 6000000) (range 6000000)))");
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr
            .contains("error[:limit]: limit exceeded: max_list_len (10000000)"),
        "{r:?}"
    );
}

#[test]
fn a_20_mb_string_literal_is_held_to_max_string_len() {
    let r = run_script(&[], &format!("(define s \"{}\")", "x".repeat(20_000_000)));
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr
            .contains("hostile.lisp:1:11: limit exceeded: max_string_len (16777216)"),
        "{r:?}"
    );
}

#[test]
fn a_30_mb_mock_reply_is_held_to_max_string_len() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("replies.json");
    let reply = "x".repeat(30_000_000);
    std::fs::write(
        &rules,
        format!("[{{\"contains\": \"big\", \"reply\": \"{reply}\"}}]"),
    )
    .expect("writable");
    let r = run_script(
        &["--mock-responses", &rules.display().to_string()],
        "(println (string-length (llm.infer \"big\" :max-tokens 8)))",
    );
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr
            .contains("error[:limit]: limit exceeded: max_string_len (16777216)"),
        "{r:?}"
    );
}
