//! Class 7: error reports cut long strings and symbols as they cut long lists.

use super::run_script;

#[test]
fn an_8_mib_string_in_a_type_error_is_cut() {
    let r = run_script(
        &[],
        "(define (grow s n) (if (= n 0) s (grow (str s s) (- n 1))))
         (+ (grow \"x\" 23) 1)",
    );
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains("error[:type-error]: + expects numbers"),
        "{r:?}"
    );
    assert!(r.stderr.contains("xxx...\""), "{r:?}");
    assert!(r.stderr.len() < 2000, "{} bytes of report", r.stderr.len());
}

#[test]
fn a_huge_unbound_symbol_is_not_echoed_whole() {
    let r = run_script(&[], &format!("({})", "y".repeat(5_000_000)));
    r.assert_no_crash();
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains("error[:unbound]: unbound variable: yyy"),
        "{r:?}"
    );
    assert!(r.stderr.len() < 2000, "{} bytes of report", r.stderr.len());
}
