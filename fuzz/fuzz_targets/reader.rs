//! The reader on arbitrary bytes: `decode_source` then `read_all` must return a value or a
//! typed error, never panic, overflow the stack or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = omega_lisp::decode_source(data, "fuzz.lisp") {
        if let Ok(forms) = omega_lisp::read_all(src, "fuzz.lisp") {
            for f in &forms {
                let _ = omega_lisp::write_string(&f.to_value());
            }
        }
    }
});
