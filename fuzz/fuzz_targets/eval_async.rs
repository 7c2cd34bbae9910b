//! Whole evaluation of arbitrary source *as a task* (`Runtime::eval_str` on the real scheduler,
//! the mock LLM provider and tokio's paused clock), under tight limits: `async`, `await`,
//! `sleep`, locks, cancellation and `llm.infer` are all reachable. A value or a typed error,
//! never a panic, a native stack overflow or a hang (a deadlock ends at the script timeout,
//! which the paused clock reaches at once).
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(tokio_rt) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
    else {
        return;
    };
    tokio_rt.block_on(async {
        let sched = omega_sched::Scheduler::builder()
            .max_concurrent_llm_calls(4)
            .build();
        let rt = omega_lisp::Runtime::builder()
            .scheduler(sched.clone())
            .llm(Arc::new(
                omega_llm::MockProvider::new().latency(Duration::from_millis(20)),
            ))
            .output(omega_lisp::OutputBuffer::new())
            .limits(omega_lisp::Limits {
                max_steps: Some(20_000),
                max_total_steps: Some(200_000),
                max_depth: 1_000,
                max_string_len: 1 << 16,
                max_list_len: 10_000,
                max_tasks: Some(100),
                script_timeout: Some(Duration::from_secs(30)),
                ..omega_lisp::Limits::default()
            })
            .build();
        let _ = sched
            .run_until(async { rt.eval_str(src, "fuzz.lisp").await })
            .await;
    });
    omega_lisp::collector::collect();
});
