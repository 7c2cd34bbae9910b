//! Class 7: a source file with invalid UTF-8, a byte-order mark or a NUL byte.

use super::omega;

fn run_bytes(bytes: &[u8], sub: &str) -> super::Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("src.lisp");
    std::fs::write(&path, bytes).expect("writable");
    let r = omega(&[sub, &path.display().to_string()]);
    r.assert_no_crash();
    r
}

#[test]
fn invalid_utf8_is_a_syntax_error_with_its_position() {
    for sub in ["run", "check"] {
        let r = run_bytes(b"(println \"hi\")\n(println \"a\xff\")\n", sub);
        assert_eq!(r.code, Some(1), "{sub}: {r:?}");
        assert!(
            r.stderr.contains("error[:syntax]: ")
                && r.stderr
                    .contains("src.lisp:2:12: invalid UTF-8 (byte 0xff)"),
            "{sub}: {r:?}"
        );
        assert!(r.stdout.is_empty(), "nothing runs: {r:?}");
    }
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let r = run_bytes(b"\xef\xbb\xbf(println \"bom ok\")\n", "run");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "bom ok\n");
}

#[test]
fn a_nul_byte_is_reported_as_such() {
    let r = run_bytes(b"(println 1)\n  (foo\x00)\n", "run");
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains("src.lisp:2:7: NUL byte in source"),
        "{r:?}"
    );
}
