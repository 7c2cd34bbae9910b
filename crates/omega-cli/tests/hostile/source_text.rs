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

#[test]
fn the_repl_reports_an_invalid_utf8_line_and_goes_on() {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_omega"))
        .arg("repl")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("omega starts");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(b"(+ 1 2)\n(println \"a\xff\")\n(+ 3 4)\n")
        .expect("writable");
    let out = child.wait_with_output().expect("omega ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "3\n7\n", "{stderr}");
    assert!(stderr.contains("invalid UTF-8"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
