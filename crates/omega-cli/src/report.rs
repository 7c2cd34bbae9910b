//! What the CLI prints besides the script's own output: exit codes, `--stats` JSON,
//! `--trace` event lines and the `--progress` status line.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use omega_lisp::{ErrorKind, LispError, Runtime};
use omega_llm::Activity;
use omega_sched::{Event, EventKind, Scheduler, Stats};
use serde_json::json;

/// Success.
pub const EXIT_OK: u8 = 0;
/// The script raised an error.
pub const EXIT_LISP_ERROR: u8 = 1;
/// Bad command line or unreadable input.
pub const EXIT_USAGE: u8 = 2;
/// The script was cancelled or timed out.
pub const EXIT_CANCELLED: u8 = 3;
/// Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

/// The exit code for a script's error.
pub fn exit_code_for(e: &LispError) -> u8 {
    match e.kind() {
        ErrorKind::Cancelled | ErrorKind::Timeout => EXIT_CANCELLED,
        _ => EXIT_LISP_ERROR,
    }
}

/// Prints a usage-level problem (`omega: …`) and returns the usage exit code.
pub fn usage_error(msg: impl std::fmt::Display) -> u8 {
    err_line!("omega: {msg}");
    EXIT_USAGE
}

/// Set by the signal handlers ([`watch_signals`]) at every Ctrl-C, SIGTERM or SIGHUP; never
/// cleared.
static SIGNAL_SEEN: std::sync::LazyLock<Arc<AtomicBool>> =
    std::sync::LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Whether a Ctrl-C, SIGTERM or SIGHUP has come (see [`watch_signals`]).
pub fn signal_seen() -> bool {
    SIGNAL_SEEN.load(Ordering::SeqCst)
}

/// Records that the main loop has taken a Ctrl-C/SIGTERM/SIGHUP (see [`watch_signals`]): the
/// interrupt request the signal made is withdrawn, so the next signal does not find it
/// pending.
pub fn signal_handled() {
    omega_lisp::clear_interrupt_request();
}

/// Sets up Ctrl-C, SIGTERM and SIGHUP for the case the main loop cannot take them: when an
/// evaluation holds the main thread (a long macro expansion, say), the main loop's `select!`
/// never runs. Each signal's handler, which may only store to atomics, does three things in
/// this order:
///
/// 1. if the last signal's interrupt request is still pending — neither an evaluation nor the
///    main loop has taken it — it exits at once with the interrupted code (130; silently: a
///    signal handler cannot print);
/// 2. it requests an interrupt (`omega_lisp::interrupt_request_flag`): the evaluation running
///    raises `:cancelled` ("cancelled: interrupted") at its next step outside a `finally`
///    block;
/// 3. it records that a signal came ([`signal_seen`]), for the exit code.
///
/// The main loop takes the same signal through tokio, cancels every task and withdraws the
/// request ([`signal_handled`]); a second signal it takes exits with a message.
///
/// No thread watches: a thread blocked on `signal-hook`'s self-pipe did this before, costing
/// ~0.4 ms of wall time at every start (its stack, its allocator arena, and joining it at
/// exit; benches/README, "Stop 31").
pub fn watch_signals() {
    use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::flag;
    let request = omega_lisp::interrupt_request_flag();
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        // A failed registration leaves the signal to the main loop alone (tokio's handler).
        let _ = flag::register_conditional_shutdown(sig, EXIT_INTERRUPTED.into(), request.clone())
            .and_then(|_| flag::register(sig, request.clone()))
            .and_then(|_| flag::register(sig, SIGNAL_SEEN.clone()));
    }
}

/// Writes a line to stdout. If stdout is a closed pipe the program ends at once, quietly and
/// with exit code 0, as a Unix filter killed by SIGPIPE would stop (no panic, no report).
pub fn write_out(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let r = out.write_fmt(args).and_then(|()| out.write_all(b"\n"));
    if let Err(e) = r.and_then(|()| out.flush()) {
        quit_if_closed(&e);
    }
}

/// Writes a line to stderr, ignoring failures (a closed stderr must not crash the program).
pub fn write_err(args: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// Ends the program quietly if `e` says the reader of stdout is gone.
fn quit_if_closed(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(i32::from(EXIT_OK));
    }
}

/// The scripts' output sink: stdout, where a closed pipe ends the program quietly (see
/// [`write_out`]) instead of failing every later `println`.
#[derive(Debug, Default)]
pub struct ScriptStdout;

impl Write for ScriptStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stdout().write(buf).inspect_err(quit_if_closed)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush().inspect_err(quit_if_closed)
    }
}

fn summary(h: &omega_sched::HistogramSummary) -> serde_json::Value {
    json!({
        "count": h.count,
        "mean_ms": h.mean.as_secs_f64() * 1e3,
        "p50_ms": h.p50.as_secs_f64() * 1e3,
        "p99_ms": h.p99.as_secs_f64() * 1e3,
        "max_ms": h.max.as_secs_f64() * 1e3,
    })
}

/// The final statistics as JSON (`--stats`).
pub fn stats_json(stats: &Stats, rt: &Runtime, wall: Duration) -> serde_json::Value {
    let usage = rt.llm_usage();
    json!({
        "wall_ms": wall.as_secs_f64() * 1e3,
        "tasks": {
            "submitted": stats.submitted,
            "completed": stats.completed,
            "failed": stats.failed,
            "panicked": stats.panicked,
            "cancelled": stats.cancelled,
            "timed_out": stats.timed_out,
            "pending": stats.pending,
            "running": stats.running,
            "suspended": stats.suspended,
            "peak_admitted": stats.peak_admitted,
            "queue_wait": summary(&stats.queue_wait),
            "run_time": summary(&stats.run_time),
        },
        "llm": {
            "in_flight": stats.llm_in_flight,
            "calls": usage.calls,
            "errors": usage.errors,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "by_model": rt.llm_usage_by_model().into_iter().map(|(m, u)| (m, json!({
                "calls": u.calls,
                "errors": u.errors,
                "prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens,
            }))).collect::<serde_json::Map<_, _>>(),
        },
        "pools": stats.pools.iter().map(|p| json!({
            "name": p.name,
            "capacity": if p.capacity == usize::MAX { serde_json::Value::Null } else { json!(p.capacity) },
            "in_use": p.in_use,
            "waiting": p.waiting,
            "total_acquisitions": p.total_acquisitions,
            "peak_in_use": p.peak_in_use,
            "wait_time": summary(&p.wait_time),
        })).collect::<Vec<_>>(),
        "locks": {
            "acquisitions_read": stats.locks.acquisitions_read,
            "acquisitions_write": stats.locks.acquisitions_write,
            "contended": stats.locks.contended,
            "timeouts": stats.locks.timeouts,
            "deadlocks": stats.locks.deadlocks,
        },
        "memory": {
            "peak_rss_bytes": peak_rss_bytes(),
        },
    })
}

/// The process's peak resident set size (`VmHWM` in `/proc/self/status`), if known.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// One `--trace` line for an event.
pub fn trace_line(e: &Event, start: tokio::time::Instant, sched: &Scheduler) -> String {
    let at = e.at.saturating_duration_since(start).as_secs_f64() * 1e3;
    let who = match e.task {
        Some(id) => {
            let short = id.to_string()[..8].to_string();
            match sched.task(id).and_then(|t| t.name) {
                Some(n) => format!("task {short} ({n})"),
                None => format!("task {short}"),
            }
        }
        None => "host".to_string(),
    };
    let what = match &e.kind {
        EventKind::Failed { error } => format!("failed: {error}"),
        EventKind::Cancelled { reason } => format!("cancelled: {reason}"),
        EventKind::TimedOut { after } => format!("timed out after {after:?}"),
        EventKind::PoolAcquired { pool } => format!("acquired a {pool} permit"),
        EventKind::PoolReleased { pool } => format!("released a {pool} permit"),
        other => format!("{other:?}").to_lowercase(),
    };
    format!("[{at:>9.3}ms] {who}: {what}")
}

/// Redraws the `--progress` line: tasks, LLM calls in flight, and what the provider is
/// doing when it says (calls queued for a slot, a retry it is waiting to make).
pub fn progress_line(stats: &Stats, llm: &Activity) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K{}", status_text(stats, llm));
    let _ = err.flush();
}

/// The text of the status line.
fn status_text(stats: &Stats, llm: &Activity) -> String {
    let mut line = format!(
        "pending {} running {} suspended {} done {} llm {}",
        stats.pending,
        stats.running,
        stats.suspended,
        stats.finished(),
        stats.llm_in_flight
    );
    if llm.queued > 0 {
        line.push_str(&format!(" (+{} queued)", llm.queued));
    }
    if llm.backing_off > 0 {
        if let Some(note) = &llm.last_retry {
            line.push_str(&format!(" · {note}"));
        }
    }
    line
}

/// Clears the `--progress` line.
pub fn clear_progress() {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K");
    let _ = err.flush();
}
