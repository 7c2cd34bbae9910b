//! `omega check FILE`: read and compile without running; every error with file:line:col.

use std::path::Path;

use omega_lisp::Runtime;

use crate::report::{self, EXIT_LISP_ERROR, EXIT_OK};

/// Checks `file`; prints each error and `FILE: ok` when there are none.
pub fn check(file: &Path) -> u8 {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return report::usage_error(format!("cannot read {}: {e}", file.display())),
    };
    let name = file.display().to_string();
    let errors = match omega_lisp::decode_source(&bytes, &name) {
        Ok(src) => Runtime::new().check(src, &name),
        Err(e) => vec![e],
    };
    if errors.is_empty() {
        err_line!("{name}: ok");
        return EXIT_OK;
    }
    for e in &errors {
        err_line!("{e}");
    }
    err_line!(
        "{name}: {} error{}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    EXIT_LISP_ERROR
}
