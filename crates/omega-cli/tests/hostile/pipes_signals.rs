//! Class 8: a closed pipe ends `omega` quietly; SIGTERM and SIGHUP cancel like Ctrl-C.

use std::io::Read;
use std::process::{Command, Stdio};

use super::signal_after_start;

fn omega() -> Command {
    Command::new(env!("CARGO_BIN_EXE_omega"))
}

/// Runs `omega ARGS…` with stdout read for `n` bytes and then closed.
fn read_then_close(args: &[&str], n: usize) -> (Option<i32>, String) {
    let mut child = omega()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("omega starts");
    let mut out = child.stdout.take().expect("piped");
    let mut buf = vec![0u8; n];
    out.read_exact(&mut buf).expect("some output");
    drop(out);
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut err)
        .expect("stderr readable");
    let status = child.wait().expect("omega ends");
    (status.code(), err)
}

#[test]
fn a_value_printed_into_a_closed_pipe_ends_quietly() {
    let (code, err) = read_then_close(&["eval", "(range 200000)"], 10);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn a_script_printing_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("p.lisp");
    std::fs::write(
        &path,
        "(define (f n) (if (= n 0) :done (begin (println n) (f (- n 1))))) (f 1000000)",
    )
    .expect("writable");
    let (code, err) = read_then_close(&["run", &path.display().to_string()], 10);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn an_error_report_into_a_closed_stderr_does_not_panic() {
    let out = omega()
        .args(["eval", "(car 1)"])
        .stderr(Stdio::null())
        .output()
        .expect("omega runs");
    assert_eq!(out.status.code(), Some(1));
    // With stderr closed outright (not /dev/null) through the shell.
    let out = Command::new("sh")
        .arg("-c")
        .arg("\"$0\" eval '(car 1)' 2>&-; echo \"exit $?\"")
        .arg(env!("CARGO_BIN_EXE_omega"))
        .output()
        .expect("sh runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "exit 1");
}

#[test]
fn sigterm_and_sighup_cancel_like_ctrl_c_and_run_finally() {
    for sig in ["TERM", "HUP"] {
        let r = signal_after_start(
            "(try (begin (println \"started\") (sleep 30000)) (finally (println \"finally ran\")))",
            sig,
        );
        assert_eq!(r.code, Some(130), "{sig}: {r:?}");
        assert_eq!(r.stdout, "finally ran", "{sig}: {r:?}");
        assert!(
            r.stderr
                .contains("error[:cancelled]: cancelled: interrupted"),
            "{sig}: {r:?}"
        );
    }
}
