//! Hostile-input tests (issue 10): each module is one class of attack, run through the real
//! `omega` binary under a virtual-memory cap and a wall-clock timeout. Every test asserts the
//! documented exit code, that no panic text reached the output, and the error kind.

mod control;
mod cycles;
mod cyclic_data;
mod deep_drop;
mod error_reports;
mod expansion;
mod finished_tasks;
mod heap_limit;
mod macros;
mod numeric_edges;
mod pipes_signals;
mod source_text;
mod task_cycles;
mod walking_builtins;

use std::io::{BufRead, BufReader, Lines, Read};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The memory cap for every run, in KiB of virtual memory (`ulimit -v`).
pub const MEM_CAP_KIB: u64 = 4_000_000;

/// The wall-clock limit for every run, in seconds (`timeout`).
pub const TIME_CAP_SECS: u64 = 120;

/// What a capped run produced.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts nothing looks like a Rust panic, an abort or an allocation failure.
    pub fn assert_no_crash(&self) {
        for bad in [
            "panicked at",
            "RUST_BACKTRACE",
            "memory allocation",
            "stack overflow",
            "has overflowed its stack",
        ] {
            assert!(
                !self.stderr.contains(bad) && !self.stdout.contains(bad),
                "crash text {bad:?} in output: {self:?}"
            );
        }
        assert!(self.code.is_some(), "killed by a signal: {self:?}");
        assert_ne!(self.code, Some(124), "timed out: {self:?}");
    }

    /// The peak RSS reported by `--stats`, in bytes.
    pub fn peak_rss(&self) -> u64 {
        let start = self.stderr.find('{').expect("stats JSON on stderr");
        let json: serde_json::Value =
            serde_json::from_str(&self.stderr[start..]).expect("stats JSON parses");
        json["memory"]["peak_rss_bytes"]
            .as_u64()
            .expect("peak_rss_bytes is reported")
    }
}

/// Runs `omega ARGS…` under the memory cap and timeout.
pub fn omega(args: &[&str]) -> Run {
    let out: Output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {MEM_CAP_KIB}; exec timeout -s KILL {TIME_CAP_SECS} \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_omega"))
        .args(args)
        .output()
        .expect("sh runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Writes `src` to a temporary script and runs `omega run [FLAGS…] FILE`.
pub fn run_script(flags: &[&str], src: &str) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hostile.lisp");
    std::fs::write(&path, src).expect("temp file is writable");
    let path = path.display().to_string();
    let mut args = vec!["run", "--no-progress"];
    args.extend_from_slice(flags);
    args.push(&path);
    omega(&args)
}

/// What [`signal_after_start`] saw.
#[derive(Debug)]
pub struct Signalled {
    /// The exit code (`None` if a signal killed it).
    pub code: Option<i32>,
    /// The standard output after the `started` line, lines joined with `\n`.
    pub stdout: String,
    /// The whole standard error.
    pub stderr: String,
    /// How long `omega` took to end after the signal was sent.
    pub after_signal: Duration,
}

/// `omega run --no-progress m.lisp` running, its script having printed its first line.
#[derive(Debug)]
pub struct Started {
    /// Holds `m.lisp` as long as the process may read it.
    _dir: tempfile::TempDir,
    /// The process (its stdout taken into `lines`, its stderr piped).
    pub child: Child,
    /// The rest of its standard output.
    pub lines: Lines<BufReader<ChildStdout>>,
}

/// Writes `src` to `m.lisp` in a temporary directory, runs `omega run --no-progress` on it
/// and waits for its first line, which must be `started`.
pub fn start_script(src: &str) -> Started {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("m.lisp");
    std::fs::write(&path, src).expect("temp file is writable");
    let mut child = Command::new(env!("CARGO_BIN_EXE_omega"))
        .args(["run", "--no-progress", &path.display().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("omega starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    assert_eq!(lines.next().expect("a line").expect("utf-8"), "started");
    Started {
        _dir: dir,
        child,
        lines,
    }
}

/// All of `child`'s standard error (piped), up to its end.
pub fn read_stderr(child: &mut Child) -> String {
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("stderr readable");
    stderr
}

/// Sends `kill -SIG` to `pid`; whether `kill` succeeded.
pub fn send_signal(sig: &str, pid: u32) -> bool {
    Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill runs")
        .success()
}

/// Runs `src` as [`start_script`] does; once it has printed `started`, sends it `kill -SIG`
/// and collects what it prints until it ends.
pub fn signal_after_start(src: &str, sig: &str) -> Signalled {
    let Started {
        _dir,
        mut child,
        lines,
    } = start_script(src);
    let sent = Instant::now();
    assert!(send_signal(sig, child.id()));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let stderr = read_stderr(&mut child);
    let status = child.wait().expect("omega ends");
    Signalled {
        code: status.code(),
        stdout: rest.join("\n"),
        stderr,
        after_signal: sent.elapsed(),
    }
}

/// Runs `script` through `omega run --stats` with `N` replaced by `small` and by `10 × small`;
/// each run must exit 0 and pass `check(n, stdout)`. Asserts the peak RSS of the larger run
/// stays within 10 % (+2 MiB of noise) of the smaller: memory does not grow with iterations.
pub fn assert_flat_memory(script: &str, small: u64, check: impl Fn(u64, &str)) {
    let peak = |n: u64| {
        let r = run_script(&["--stats"], &script.replace("N", &n.to_string()));
        r.assert_no_crash();
        assert_eq!(r.code, Some(0), "{r:?}");
        check(n, &r.stdout);
        r.peak_rss()
    };
    let a = peak(small);
    let b = peak(small * 10);
    assert!(
        b <= a + a / 10 + (2 << 20),
        "memory grew with iterations: {a} bytes after {small}, {b} after {}",
        small * 10
    );
}
