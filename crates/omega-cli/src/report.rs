//! What the CLI prints besides the script's own output: exit codes, `--stats` JSON,
//! `--trace` event lines and the `--progress` status line.

use std::io::Write;
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

static SIGNALS_HANDLED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static SIGNALS_SEEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Whether the watcher ([`watch_signals`]) has seen a Ctrl-C, SIGTERM or SIGHUP.
pub fn signal_seen() -> bool {
    SIGNALS_SEEN.load(std::sync::atomic::Ordering::SeqCst) > 0
}

/// Records that the main loop has seen a Ctrl-C/SIGTERM/SIGHUP (see [`watch_signals`]).
pub fn signal_handled() {
    SIGNALS_HANDLED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    omega_lisp::clear_interrupt_request();
}

/// How long the main loop has to take a signal before the watcher steps in.
const SIGNAL_GRACE: Duration = Duration::from_millis(300);

/// Starts a thread that watches Ctrl-C, SIGTERM and SIGHUP for the case the main loop cannot:
/// when an evaluation holds the main thread (a long macro expansion, say), the main loop's
/// `select!` never runs. If the main loop has not taken a signal within [`SIGNAL_GRACE`], the
/// watcher asks the running evaluation to raise `:cancelled` (`omega_lisp::request_interrupt`);
/// a second signal still not taken exits at once with the interrupted code.
///
/// The thread blocks on `signal-hook`'s self-pipe. (It ran a tokio runtime of its own before:
/// building that at every start cost ~0.3 ms of the ~2.8 ms `omega run` took on an empty
/// script; benches/README, "Stop 29".) The handlers are registered before the thread starts,
/// so a signal that comes at once is already watched, and the thread allocates nothing until
/// a signal comes: the allocator sets up no cache or arena for it (about 50 of the ~500 page
/// faults of `omega run` on an empty script).
pub fn watch_signals() {
    use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM};
    use std::sync::atomic::Ordering::SeqCst;
    // Registered here, so the thread allocates nothing of its own until a signal comes (the
    // allocator then sets up no cache and arena for it at start-up).
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("omega-signals".into())
        .spawn(move || {
            let mut seen = 0u64;
            for _ in signals.forever() {
                seen += 1;
                SIGNALS_SEEN.store(seen, SeqCst);
                std::thread::sleep(SIGNAL_GRACE);
                match after_grace(seen, SIGNALS_HANDLED.load(SeqCst)) {
                    AfterGrace::Exit => {
                        write_err(format_args!("\nomega: interrupted twice, exiting"));
                        std::process::exit(i32::from(EXIT_INTERRUPTED));
                    }
                    AfterGrace::Interrupt => omega_lisp::request_interrupt(),
                    AfterGrace::Nothing => {}
                }
            }
        });
    drop(spawned);
}

/// What the signal watcher does once the grace period after a signal has passed.
#[derive(Debug, PartialEq, Eq)]
enum AfterGrace {
    /// The main loop took every signal seen: nothing.
    Nothing,
    /// One signal is not taken: ask the running evaluation to raise `:cancelled`.
    Interrupt,
    /// Two or more are not taken (the evaluation did not stop for the first): exit.
    Exit,
}

/// The watcher's decision after the grace period of its `seen`-th signal, the main loop
/// having taken `handled` signals so far.
fn after_grace(seen: u64, handled: u64) -> AfterGrace {
    if handled + 1 < seen {
        AfterGrace::Exit
    } else if handled < seen {
        AfterGrace::Interrupt
    } else {
        AfterGrace::Nothing
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

#[cfg(test)]
mod tests {
    use super::{after_grace, AfterGrace};

    #[test]
    fn the_watcher_interrupts_for_one_untaken_signal_and_exits_for_two() {
        // Taken by the main loop: nothing to do.
        assert_eq!(after_grace(1, 1), AfterGrace::Nothing);
        assert_eq!(after_grace(3, 3), AfterGrace::Nothing);
        // The main loop is held (an evaluation on the main thread): interrupt it.
        assert_eq!(after_grace(1, 0), AfterGrace::Interrupt);
        assert_eq!(after_grace(2, 1), AfterGrace::Interrupt);
        // A second signal the main loop never took: the interrupt did not stop it, exit.
        assert_eq!(after_grace(2, 0), AfterGrace::Exit);
        assert_eq!(after_grace(4, 2), AfterGrace::Exit);
    }
}
