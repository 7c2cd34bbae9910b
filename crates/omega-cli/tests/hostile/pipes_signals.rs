//! Class 8: a closed pipe ends `omega` quietly; SIGTERM and SIGHUP cancel like Ctrl-C.

use std::io::Read;
use std::process::{Command, Stdio};

use super::{read_stderr, send_signal, signal_after_start, start_script, Started};

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

#[test]
fn a_signal_during_a_finally_block_lets_it_finish() {
    // The signal comes while the `finally` block loops (the body has printed `started` and
    // ended): neither the interrupt request nor the cancellation may cut the block short.
    let r = signal_after_start(
        "(try (println \"started\")
           (finally (let loop ((i 0)) (if (< i 3000000) (loop (+ i 1))))
                    (println \"finally ran\")))",
        "INT",
    );
    assert_eq!(r.code, Some(130), "{r:?}");
    assert_eq!(r.stdout, "finally ran", "{r:?}");
}

/// Starts `omega run` on `src` (which must print `started` first), then sends SIGINT every
/// 50 ms until it ends (at most 200 times). Signals sent close together may reach it as one, so
/// "a second signal" is "one more signal after the first was delivered"; returns the exit code
/// and standard error.
fn interrupt_repeatedly(src: &str) -> (Option<i32>, String) {
    let Started {
        _dir, mut child, ..
    } = start_script(src);
    let mut status = None;
    for _ in 0..200 {
        let killed = send_signal("INT", child.id());
        // The process may have ended between the last check and this signal.
        if let Some(s) = child.try_wait().expect("try_wait") {
            status = Some(s);
            break;
        }
        assert!(killed);
        std::thread::sleep(std::time::Duration::from_millis(50));
        if let Some(s) = child.try_wait().expect("try_wait") {
            status = Some(s);
            break;
        }
    }
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            panic!("200 signals did not end omega");
        }
    };
    (status.code(), read_stderr(&mut child))
}

#[test]
fn a_second_signal_nothing_took_ends_the_process() {
    // The main loop cannot run (a macro expansion holds the thread) and the expansion does not
    // take the interrupt request either (it waits in a `finally` block, which may not be cut
    // short): the next signal finds the first still pending and ends the process at once.
    let (code, stderr) = interrupt_repeatedly(
        "(defmacro m () (try (println \"started\") (finally (let loop () (loop))))) (m)",
    );
    assert_eq!(code, Some(130), "{stderr}");
}

#[test]
fn a_second_signal_the_main_loop_took_exits_with_a_message() {
    // The first signal cancels every task; the `finally` block then waits, and the second
    // signal, taken by the main loop, exits.
    let (code, stderr) = interrupt_repeatedly(
        "(try (begin (println \"started\") (sleep 60000)) (finally (sleep 60000)))",
    );
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("omega: interrupted twice, exiting"),
        "{stderr}"
    );
}
