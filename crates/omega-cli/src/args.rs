//! Command-line arguments (SPEC §7).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Omega: run Lisp scripts that fan out LLM calls on a cooperative scheduler.
#[derive(Debug, Parser)]
#[command(name = "omega", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a script; prints only what the script prints.
    Run(RunArgs),
    /// Evaluate one expression and print its value in `write` form.
    Eval {
        /// The expression.
        expr: String,
        /// Scheduler and LLM settings.
        #[command(flatten)]
        opts: RuntimeOpts,
    },
    /// Read and compile a script without running it; report every error with file:line:col.
    Check {
        /// The script.
        file: PathBuf,
    },
    /// An interactive session: line editing, history, multi-line input; errors don't exit.
    Repl {
        /// Scheduler and LLM settings.
        #[command(flatten)]
        opts: RuntimeOpts,
    },
}

/// `omega run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The script to run.
    pub file: PathBuf,
    /// Scheduler and LLM settings.
    #[command(flatten)]
    pub opts: RuntimeOpts,
    /// Print the final statistics as JSON on stderr.
    #[arg(long)]
    pub stats: bool,
    /// Show a live status line on stderr (default: on when stderr is a terminal).
    #[arg(long, overrides_with = "no_progress")]
    pub progress: bool,
    /// Never show the status line.
    #[arg(long)]
    pub no_progress: bool,
}

/// Settings shared by `run`, `eval` and `repl`.
#[derive(Debug, Args, Clone)]
pub struct RuntimeOpts {
    /// Tasks admitted at once (the script's top level counts as one).
    #[arg(long, value_name = "N")]
    pub max_tasks: Option<usize>,
    /// LLM requests on the wire at once; other calls queue for a slot (a local model
    /// server usually answers one at a time: more only makes them wait there instead).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_LLM)]
    pub max_llm: usize,
    /// Admission and polling order.
    #[arg(long, value_enum, default_value_t = FairnessArg::Fifo)]
    pub fairness: FairnessArg,
    /// Default timeout of every task, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub task_timeout: Option<u64>,
    /// LLM provider.
    #[arg(long, value_enum, default_value_t = LlmArg::Mock)]
    pub llm: LlmArg,
    /// Latency of the mock provider, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub mock_latency: u64,
    /// JSON file of scripted replies for the mock provider.
    #[arg(long, value_name = "FILE")]
    pub mock_responses: Option<PathBuf>,
    /// Steps (procedure calls; a builtin that copies or walks n elements counts n/16 more) a
    /// script may take in all, its tasks together; exceeding it ends the script with a :limit
    /// error.
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u64>,
    /// Bytes the process may have in use (K, M, G suffixes: KiB, MiB, GiB); past it the
    /// script ends with a :limit error ("heap limit of N bytes reached").
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    pub max_heap: usize,
    /// Log scheduler and task events, and LLM retries, to stderr (tracing).
    #[arg(long)]
    pub trace: bool,
    /// Share locks with other processes through PostgreSQL (SPEC §8):
    /// postgres://user@host:port/database (schema: OMEGA_LOCK_SCHEMA, default omega_locks).
    /// Default: the OMEGA_LOCK_STORE environment variable; without either, locks are this
    /// process's own. An unreachable store is a usage error.
    #[arg(long, value_name = "URL")]
    pub lock_store: Option<String>,
    /// Settings of `--llm openai`.
    #[command(flatten)]
    pub llm_opts: LlmOpts,
}

/// Parses a byte size: digits with an optional `K`, `M` or `G` suffix (powers of 1024).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 10),
        Some((i, 'm' | 'M')) => (&t[..i], 20),
        Some((i, 'g' | 'G')) => (&t[..i], 30),
        _ => (t, 0),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("not a size: {s:?} (expected e.g. 64M, 2G or 1048576)"))?;
    n.checked_mul(1usize << shift)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("size out of range: {s:?}"))
}

/// The default of `--max-llm`.
pub const DEFAULT_MAX_LLM: usize = 4;

/// Settings of the OpenAI-compatible provider (`--llm openai`). Each overrides its
/// environment variable; unset, the variable (or the default) applies.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "LLM provider (--llm openai)")]
pub struct LlmOpts {
    /// A call's time limit in seconds, retries included, from its first request (time
    /// queued for a slot is not counted) [env: OMEGA_LLM_TIMEOUT] [default: 120]
    #[arg(long, value_name = "SECS")]
    pub llm_timeout: Option<f64>,
    /// Client-side requests-per-minute limit [env: OMEGA_LLM_RPM]
    #[arg(long, value_name = "N")]
    pub llm_rpm: Option<u32>,
    /// Client-side tokens-per-minute limit [env: OMEGA_LLM_TPM]
    #[arg(long, value_name = "N")]
    pub llm_tpm: Option<u32>,
    /// Retries per call of requests that did not reach the model (429, 408, 503 with
    /// Retry-After) [env: OMEGA_LLM_MAX_RETRIES] [default: 8]
    #[arg(long, value_name = "N")]
    pub llm_retries: Option<u32>,
    /// Retries per call when the server cannot be reached (connection refused, unknown
    /// host) [env: OMEGA_LLM_CONNECT_RETRIES] [default: 2]
    #[arg(long, value_name = "N")]
    pub llm_connect_retries: Option<u32>,
    /// Also retry requests that may have reached the model (other 5xx, connection lost
    /// mid-answer); a paid API may bill them twice [env: OMEGA_LLM_RETRY_SENT=1]
    #[arg(long)]
    pub llm_retry_sent: bool,
}

impl LlmOpts {
    /// True if any flag is given.
    pub fn any(&self) -> bool {
        self.llm_timeout.is_some()
            || self.llm_rpm.is_some()
            || self.llm_tpm.is_some()
            || self.llm_retries.is_some()
            || self.llm_connect_retries.is_some()
            || self.llm_retry_sent
    }
}

/// `--fairness`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FairnessArg {
    /// Submission order.
    Fifo,
    /// Highest priority first, with aging.
    Priority,
    /// One task per parent in turn.
    RoundRobin,
}

/// `--llm`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LlmArg {
    /// The deterministic mock (no network).
    Mock,
    /// An OpenAI-compatible server: OMEGA_LLM_BASE_URL (or OPENAI_BASE_URL, with /v1),
    /// OPENAI_API_KEY (not needed on loopback), OMEGA_LLM_MODEL.
    Openai,
}
