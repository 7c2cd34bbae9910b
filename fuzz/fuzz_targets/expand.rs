//! The expander and compiler on arbitrary source (`Runtime::check`: reads, runs `defmacro`s,
//! expands and compiles every form) under tight limits: errors, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let rt = omega_lisp::Runtime::new();
    let _ = rt.set_limits(omega_fuzz_limits());
    let _ = rt.check(src, "fuzz.lisp");
    drop(rt);
    // Cycles the input made and dropped are reclaimed at the collector's next pass; run it
    // now, so that what is left at exit is what nothing can reclaim (a leak).
    omega_lisp::collector::collect();
});

fn omega_fuzz_limits() -> omega_lisp::Limits {
    omega_lisp::Limits {
        max_steps: Some(20_000),
        max_depth: 1_000,
        max_string_len: 1 << 16,
        max_list_len: 10_000,
        ..omega_lisp::Limits::default()
    }
}
