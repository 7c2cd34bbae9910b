//! `startup`: what it costs to get a Lisp runtime to run a first form (helper C, issue 15's
//! whole-process table counts it in every program).
//!
//! Criterion group `startup`, each case beside its baseline in the same run:
//! * `runtime_new` — `Runtime::builder().output(sink()).build()` on the bench thread: builtins
//!   installed, the preludes (`builtins/*.lisp`) loaded — their procedures and macros only
//!   registered, compiled on first use (`prelude.rs`). Every runtime after the first on a
//!   thread reuses what the first compiled (`prelude::Cache`), so this is what a host that
//!   makes many runtimes (`Engine` scripts, tests) pays.
//! * `runtime_new_eval` — the same plus `eval_sync("(+ 1 2)")`.
//! * `tokio_current_thread` — Rust baseline: building a current-thread tokio runtime with
//!   I/O and time enabled, what every `omega` process also does once; the floor a host pays
//!   for any async runtime at all.
//! * `omega_process` — whole process: `omega eval nil` (the release binary, built first with
//!   `cargo build --release -p omega-cli`; skipped with a message when
//!   `target/release/omega` is absent, or set `OMEGA_BIN`).
//! * `lua_process` — baseline: `lua5.4 -e ''` (skipped with a message when `lua5.4` is not
//!   installed: `apt-get install -y lua5.4`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use criterion::Criterion;
use omega_lisp::Runtime;

/// The `omega` release binary, if it has been built.
fn omega_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OMEGA_BIN") {
        return Some(PathBuf::from(p));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let p = target.join("release").join("omega");
    p.exists().then_some(p)
}

fn runs(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

fn startup(c: &mut Criterion) {
    let mut g = c.benchmark_group("startup");
    g.bench_function("runtime_new", |b| {
        b.iter(|| Runtime::builder().output(std::io::sink()).build())
    });
    g.bench_function("runtime_new_eval", |b| {
        b.iter(|| {
            let rt = Runtime::builder().output(std::io::sink()).build();
            rt.eval_sync("(+ 1 2)", "<bench>").expect("evaluates")
        })
    });
    g.bench_function("tokio_current_thread", |b| {
        b.iter(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime")
        })
    });
    match omega_bin() {
        Some(bin) => {
            g.bench_function("omega_process", |b| {
                b.iter(|| assert!(runs(Command::new(&bin).args(["eval", "nil"]))))
            });
        }
        None => println!(
            "startup/omega_process skipped: no target/release/omega (cargo build --release -p omega-cli)"
        ),
    }
    if runs(Command::new("lua5.4").args(["-e", ""])) {
        g.bench_function("lua_process", |b| {
            b.iter(|| assert!(runs(Command::new("lua5.4").args(["-e", ""]))))
        });
    } else {
        println!(
            "startup/lua_process skipped: lua5.4 is not installed (apt-get install -y lua5.4)"
        );
    }
    g.finish();
}

fn main() {
    let mut c = common::criterion(3);
    startup(&mut c);
    c.final_summary();
}
