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
    /// LLM calls in flight at once.
    #[arg(long, value_name = "N")]
    pub max_llm: Option<usize>,
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
    /// Steps (procedure calls) a script may take in all, its tasks together; exceeding it
    /// ends the script with a :limit error.
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u64>,
    /// Log scheduler and task events to stderr (tracing).
    #[arg(long)]
    pub trace: bool,
    /// Share locks with other processes through PostgreSQL (SPEC §8):
    /// postgres://user@host:port/database (schema: OMEGA_LOCK_SCHEMA, default omega_locks).
    /// Default: the OMEGA_LOCK_STORE environment variable; without either, locks are this
    /// process's own. An unreachable store is a usage error.
    #[arg(long, value_name = "URL")]
    pub lock_store: Option<String>,
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
    /// An OpenAI-compatible server: OMEGA_LLM_BASE_URL (or OPENAI_BASE_URL), OPENAI_API_KEY,
    /// OMEGA_LLM_MODEL.
    Openai,
}
