//! `omega check FILE`: read and compile without running; every error with file:line:col.

use std::path::Path;

use omega_lisp::Runtime;

use crate::report::{self, EXIT_LISP_ERROR, EXIT_OK};

/// Checks `file`; prints each error and `FILE: ok` when there are none.
pub fn check(file: &Path) -> u8 {
    let src = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => return report::usage_error(format!("cannot read {}: {e}", file.display())),
    };
    let name = file.display().to_string();
    let errors = Runtime::new().check(&src, &name);
    if errors.is_empty() {
        eprintln!("{name}: ok");
        return EXIT_OK;
    }
    for e in &errors {
        eprintln!("{e}");
    }
    eprintln!(
        "{name}: {} error{}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    EXIT_LISP_ERROR
}
