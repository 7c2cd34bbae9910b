//! Whole evaluation of arbitrary source under tight limits: a value or a typed error, never a
//! panic, a native stack overflow or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let out = omega_lisp::OutputBuffer::new();
    let rt = omega_lisp::Runtime::builder()
        .output(out)
        .limits(omega_lisp::Limits {
            max_steps: Some(20_000),
            max_depth: 1_000,
            max_string_len: 1 << 16,
            max_list_len: 10_000,
            max_tasks: Some(100),
            ..omega_lisp::Limits::default()
        })
        .build();
    let _ = rt.eval_sync(src, "fuzz.lisp");
    // The runtime's own cycles too: what is left at exit is what nothing can reclaim.
    drop(rt);
    omega_lisp::collector::collect();
});
