//! `omega`: run, evaluate, check and explore Omega Lisp scripts (SPEC §7).
//!
//! Exit codes: 0 success, 1 Lisp error (reported on stderr as in SPEC §6.5), 2 usage error,
//! 3 cancelled or timed out, 130 interrupted (Ctrl-C cancels every task with reason
//! "interrupted" and lets their `finally` blocks run).

/// Like `println!`, but a closed stdout (`omega … | head`) ends the program quietly instead
/// of panicking (see `report::write_out`).
macro_rules! out_line {
    ($($t:tt)*) => { $crate::report::write_out(format_args!($($t)*)) };
}

/// Like `eprintln!`, but a failed write to stderr is ignored instead of panicking.
macro_rules! err_line {
    ($($t:tt)*) => { $crate::report::write_err(format_args!($($t)*)) };
}

mod args;
mod check;
mod repl;
mod report;
mod session;

use std::process::ExitCode;

use clap::Parser;

/// jemalloc, counting the bytes in use (the meter of the heap limit: `--max-heap`,
/// `omega_lisp::heap`) and each thread's. Its own cap stays off; the runtime checks the count.
#[global_allocator]
static ALLOC: omega_lisp::heap::CountingAlloc = omega_lisp::heap::counting_alloc();

fn main() -> ExitCode {
    omega_lisp::heap::set_meter(|| ALLOC.allocated());
    let cli = args::Cli::parse();
    if matches!(
        cli.command,
        args::Command::Run(_) | args::Command::Eval { .. }
    ) {
        report::watch_signals();
    }
    let code = match cli.command {
        args::Command::Run(a) => session::run_file(&a),
        args::Command::Eval { expr, opts } => session::eval(&expr, &opts),
        args::Command::Check { file } => check::check(&file),
        args::Command::Repl { opts } => repl::repl(&opts),
    };
    ExitCode::from(code)
}
