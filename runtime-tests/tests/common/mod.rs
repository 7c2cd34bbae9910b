//! Helpers shared by the runtime tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use omega_lisp::{Data, Engine};

/// Registers a host function `name` that raises a flag when a script calls it (e.g. from a
/// `finally` block); the returned flag says whether it was called.
pub fn register_flag(engine: &Engine, name: &str) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    engine
        .register_fn(name, move |_| {
            f.store(true, Ordering::SeqCst);
            Ok(Data::Nil)
        })
        .expect("registered");
    flag
}
