//! Generators and helpers shared by the property tests (`props*.rs`) and the script runners
//! of `control.rs` and `task_memory.rs`. Each test binary uses a different part of it, hence
//! `dead_code` is allowed here.
#![allow(dead_code)]

use omega_lisp::{read_one, write_string, Limits, OutputBuffer, Runtime, Value};
use proptest::prelude::*;

/// Symbol names the reader reads back as symbols (not numbers, not reserved words).
pub fn symbol_name() -> impl Strategy<Value = String> {
    "[a-z*!?<>=_+/-][a-z0-9.*!?<>=_+/-]{0,8}".prop_filter("not a number or reserved", |s| {
        read_one(s, "<p>")
            .map(|v| matches!(v, Value::Symbol(_)))
            .unwrap_or(false)
    })
}

/// Atoms that `write` prints and `read` reads back as equal values: nil, booleans, integers,
/// finite floats, strings, characters, symbols and keywords.
pub fn leaf_datum() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::Float),
        ".{0,12}".prop_map(Value::string),
        any::<char>().prop_map(Value::Char),
        symbol_name().prop_map(|s| Value::symbol(&s)),
        "[a-z][a-z0-9-]{0,6}".prop_map(|s| Value::keyword(&s)),
    ]
}

/// `s` as a Lisp string literal.
pub fn lit(s: &str) -> String {
    write_string(&Value::string(s))
}

/// A runtime held to `max_steps` steps and a call depth of 200, printing nowhere: for running
/// generated programs that may loop or recurse.
pub fn limited_runtime(max_steps: u64) -> Runtime {
    Runtime::builder()
        .output(OutputBuffer::new())
        .limits(Limits {
            max_steps: Some(max_steps),
            max_depth: 200,
            ..Limits::default()
        })
        .build()
}

/// Random nested calls `(head arg…)` over `atoms`, up to 4 levels deep, after `prelude` (the
/// definitions the atoms refer to).
pub fn nested_program(
    atoms: impl Strategy<Value = String> + 'static,
    heads: &'static [&'static str],
    prelude: &'static str,
) -> impl Strategy<Value = String> {
    atoms
        .prop_recursive(4, 40, 5, move |inner| {
            (
                prop::sample::select(heads.to_vec()),
                prop::collection::vec(inner, 0..4),
            )
                .prop_map(|(h, args)| format!("({h} {})", args.join(" ")))
        })
        .prop_map(move |body| format!("{prelude} {body}"))
}

/// Runs `src` (named `name` in positions) as a script on a fresh runtime and scheduler, with
/// the mock LLM; returns the value written (or the error's report), the elapsed time (exact
/// under tokio's paused clock) and the printed output.
pub async fn run_timed(src: &str, name: &str) -> (String, std::time::Duration, String) {
    let sched = omega_sched::Scheduler::new();
    let out = OutputBuffer::new();
    let rt = Runtime::builder()
        .scheduler(sched.clone())
        .llm(std::sync::Arc::new(omega_llm::MockProvider::new()))
        .output(out.clone())
        .build();
    let t0 = tokio::time::Instant::now();
    let r = sched
        .run_until(async { rt.eval_str(src, name).await })
        .await;
    let r = match r {
        Ok(v) => write_string(&v),
        Err(e) => e.to_string(),
    };
    (r, t0.elapsed(), out.contents())
}
