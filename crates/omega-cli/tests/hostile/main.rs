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

use std::process::{Command, Output};

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
