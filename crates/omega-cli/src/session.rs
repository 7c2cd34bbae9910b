//! One CLI session: a scheduler, an LLM provider and a Lisp runtime built from the flags,
//! driven on a single-threaded tokio runtime; and the `run` and `eval` commands on top.

use std::io::IsTerminal;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use omega_lisp::{write_string, Limits, LispResult, Runtime, Value};
use omega_llm::{LlmProvider, MockProvider, OpenAiCompatible, OpenAiConfig};
use omega_lockstore_pg::{PgLockStore, PgStoreConfig};
use omega_sched::{Fairness, Scheduler};

use crate::args::{FairnessArg, LlmArg, LlmOpts, RunArgs, RuntimeOpts};
use crate::report::{self, EXIT_INTERRUPTED, EXIT_OK};

/// How an input is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A script: its unawaited tasks are cancelled and waited out at the end.
    Script,
    /// A REPL input: tasks it spawns live on into later inputs.
    Interactive,
}

/// The scheduler, runtime and tokio runtime of one invocation.
pub struct Session {
    pub sched: Scheduler,
    pub rt: Runtime,
    /// The provider the runtime calls, for the progress line.
    llm: Arc<dyn LlmProvider>,
    tokio: tokio::runtime::Runtime,
    trace: bool,
    /// The shared lock store (`--lock-store`), closed when the session ends.
    store: Option<PgLockStore>,
}

/// `--lock-store` (or OMEGA_LOCK_STORE), connected on `tokio`; `None` without either.
fn lock_store(
    opts: &RuntimeOpts,
    tokio: &tokio::runtime::Runtime,
) -> Result<Option<PgLockStore>, String> {
    let url = opts
        .lock_store
        .clone()
        .or_else(|| std::env::var(omega_lockstore_pg::LOCK_STORE_ENV).ok())
        .filter(|u| !u.is_empty());
    let Some(url) = url else {
        return Ok(None);
    };
    let mut cfg = PgStoreConfig::new(&url).map_err(|e| e.to_string())?;
    if let Ok(schema) = std::env::var(omega_lockstore_pg::LOCK_SCHEMA_ENV) {
        cfg = cfg.schema(&schema);
    }
    tokio
        .block_on(PgLockStore::connect(cfg))
        .map(Some)
        .map_err(|e| format!("cannot use the lock store: {e}"))
}

impl Drop for Session {
    /// Releases at once whatever this process still holds or waits for in the shared store
    /// (otherwise other processes would wait for the leases to run out).
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            if let Err(e) = self.tokio.block_on(store.close()) {
                err_line!("omega: {e}");
            }
        }
    }
}

/// What one evaluation produced.
pub struct Outcome {
    pub result: LispResult<Value>,
    pub interrupted: bool,
}

fn provider(opts: &RuntimeOpts) -> Result<Arc<dyn LlmProvider>, String> {
    match opts.llm {
        LlmArg::Mock => {
            if opts.llm_opts.any() {
                return Err("the --llm-* settings only apply to --llm openai".into());
            }
            let mut m = MockProvider::new().latency(Duration::from_millis(opts.mock_latency));
            if let Some(path) = &opts.mock_responses {
                m = m.replies_file(path).map_err(|e| e.to_string())?;
            }
            Ok(Arc::new(m))
        }
        LlmArg::Openai => {
            if opts.mock_responses.is_some() || opts.mock_latency != 0 {
                return Err("--mock-latency and --mock-responses only apply to --llm mock".into());
            }
            // Settings are checked here, before any task runs.
            let hint = "(set OMEGA_LLM_BASE_URL, OPENAI_API_KEY and OMEGA_LLM_MODEL)";
            let config = OpenAiConfig::from_env().map_err(|e| format!("{e} {hint}"))?;
            let p = OpenAiCompatible::new(with_flags(config, &opts.llm_opts)?)
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(p))
        }
    }
}

/// The environment's configuration with the `--llm-*` flags on top.
fn with_flags(mut c: OpenAiConfig, f: &LlmOpts) -> Result<OpenAiConfig, String> {
    if let Some(secs) = f.llm_timeout {
        if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
            return Err(format!(
                "--llm-timeout must be a positive number of seconds, not {secs}"
            ));
        }
        c = c.timeout(Duration::from_secs_f64(secs));
    }
    if let Some(n) = f.llm_rpm {
        c = c.requests_per_minute(n);
    }
    if let Some(n) = f.llm_tpm {
        c = c.tokens_per_minute(n);
    }
    if let Some(n) = f.llm_retries {
        c = c.max_retries(n);
    }
    if let Some(n) = f.llm_connect_retries {
        c = c.connect_retries(n);
    }
    if f.llm_retry_sent {
        c = c.retry_sent(true);
    }
    Ok(c)
}

impl Session {
    /// Builds everything from the flags; an error is a usage error.
    pub fn new(opts: &RuntimeOpts) -> Result<Session, String> {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let store = lock_store(opts, &tokio)?;
        let mut b = Scheduler::builder().fairness(match opts.fairness {
            FairnessArg::Fifo => Fairness::Fifo,
            FairnessArg::Priority => Fairness::Priority,
            FairnessArg::RoundRobin => Fairness::RoundRobin,
        });
        if let Some(n) = opts.max_tasks {
            if n == 0 {
                return Err("--max-tasks must be at least 1 (the script itself is a task)".into());
            }
            b = b.max_concurrent_tasks(n);
        }
        if opts.max_llm == 0 {
            return Err("--max-llm must be at least 1".into());
        }
        b = b.max_concurrent_llm_calls(opts.max_llm);
        if let Some(ms) = opts.task_timeout {
            b = b.task_timeout(Duration::from_millis(ms));
        }
        if let Some(s) = &store {
            b = b.lock_store(Arc::new(s.clone()));
        }
        let sched = b.build();
        let llm = provider(opts)?;
        let rt = Runtime::builder()
            .scheduler(sched.clone())
            .llm(llm.clone())
            .output(report::ScriptStdout)
            .limits(Limits {
                // The flag bounds the whole run: every task and all of them together.
                max_steps: opts.max_steps,
                max_total_steps: opts.max_steps,
                max_heap_bytes: Some(opts.max_heap),
                ..Limits::default()
            })
            .build();
        if opts.trace {
            let _ = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                // Colour codes only for a terminal: a log file or a pipe gets plain text.
                .with_ansi(std::io::stderr().is_terminal())
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("OMEGA_LOG")
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .try_init();
        }
        Ok(Session {
            sched,
            rt,
            llm,
            tokio,
            trace: opts.trace,
            store,
        })
    }

    /// Evaluates `src` to the end. Ctrl-C, SIGTERM and SIGHUP cancel every task with reason
    /// "interrupted" (their `finally` blocks run); a second one exits at once.
    pub fn run(&self, src: &str, name: &str, mode: Mode, progress: bool) -> Outcome {
        let start = tokio::time::Instant::now();
        let mut events = self.trace.then(|| self.sched.events());
        self.tokio.block_on(self.sched.run_until(async {
            let mut interrupted = false;
            let result = {
                let work = async {
                    match mode {
                        Mode::Script => {
                            let task = self.rt.spawn_str(src, name, Default::default())?;
                            let r = task.result().await;
                            self.rt.settle().await;
                            r
                        }
                        Mode::Interactive => self.rt.eval_interactive(src, name).await,
                    }
                };
                let mut work = pin!(work);
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                use tokio::signal::unix::{signal, SignalKind};
                let mut term = signal(SignalKind::terminate()).ok();
                let mut hup = signal(SignalKind::hangup()).ok();
                loop {
                    tokio::select! {
                        r = &mut work => break r,
                        s = stop_signal(&mut term, &mut hup) => {
                            report::signal_handled();
                            if interrupted || s.is_err() {
                                err_line!("\nomega: interrupted twice, exiting");
                                std::process::exit(EXIT_INTERRUPTED.into());
                            }
                            interrupted = true;
                            self.sched.cancel_all("interrupted");
                        }
                        _ = tick.tick(), if progress => report::progress_line(&self.sched.stats(), &self.llm.activity()),
                        e = async { events.as_mut().expect("guarded by the branch condition").recv().await },
                            if events.is_some() => match e {
                            Ok(e) => err_line!("{}", report::trace_line(&e, start, &self.sched)),
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                                err_line!("[trace] {n} events dropped (stderr too slow)")
                            }
                            Err(_) => events = None,
                        },
                    }
                }
            };
            if let Some(rx) = events.as_mut() {
                while let Ok(e) = rx.try_recv() {
                    err_line!("{}", report::trace_line(&e, start, &self.sched));
                }
            }
            if progress {
                report::clear_progress();
            }
            Outcome {
                result,
                interrupted,
            }
        }))
    }
}

fn wants_progress(a: &RunArgs) -> bool {
    a.progress || (!a.no_progress && std::io::stderr().is_terminal())
}

/// The next Ctrl-C, SIGTERM or SIGHUP (the last two when their handlers could be set up).
async fn stop_signal(
    term: &mut Option<tokio::signal::unix::Signal>,
    hup: &mut Option<tokio::signal::unix::Signal>,
) -> std::io::Result<()> {
    async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
        if let Some(s) = s {
            if s.recv().await.is_some() {
                return;
            }
        }
        std::future::pending().await
    }
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        () = next(term) => Ok(()),
        () = next(hup) => Ok(()),
    }
}

/// `omega run FILE`.
pub fn run_file(a: &RunArgs) -> u8 {
    let bytes = match std::fs::read(&a.file) {
        Ok(b) => b,
        Err(e) => return report::usage_error(format!("cannot read {}: {e}", a.file.display())),
    };
    let src = match omega_lisp::decode_source(&bytes, &display_name(&a.file)) {
        Ok(s) => s,
        Err(e) => {
            err_line!("{e}");
            return report::exit_code_for(&e);
        }
    };
    let session = match Session::new(&a.opts) {
        Ok(s) => s,
        Err(e) => return report::usage_error(e),
    };
    let t0 = std::time::Instant::now();
    let name = display_name(&a.file);
    let out = session.run(src, &name, Mode::Script, wants_progress(a));
    if a.stats {
        let json = report::stats_json(&session.sched.stats(), &session.rt, t0.elapsed());
        err_line!("{json:#}");
    }
    finish(out, |_| {})
}

/// `omega eval EXPR`: prints the value in `write` form.
pub fn eval(expr: &str, opts: &RuntimeOpts) -> u8 {
    let session = match Session::new(opts) {
        Ok(s) => s,
        Err(e) => return report::usage_error(e),
    };
    let out = session.run(expr, "<eval>", Mode::Script, false);
    finish(out, |v| out_line!("{}", write_string(v)))
}

/// Reports an outcome and picks the exit code.
fn finish(out: Outcome, on_value: impl FnOnce(&Value)) -> u8 {
    // A signal the main loop never took (an evaluation took its interrupt request first, or
    // held the thread to the end) counts too.
    let interrupted = out.interrupted || report::signal_seen();
    match &out.result {
        Ok(v) if !interrupted => {
            on_value(v);
            EXIT_OK
        }
        Ok(_) => EXIT_INTERRUPTED,
        Err(e) => {
            err_line!("{e}");
            if interrupted {
                EXIT_INTERRUPTED
            } else {
                report::exit_code_for(e)
            }
        }
    }
}

/// The file name as given (relative paths stay relative, as in error reports).
fn display_name(p: &Path) -> String {
    p.display().to_string()
}
