//! The heap limit (SPEC §6.7 `max_heap_bytes`): how many bytes the runtime may have in use.
//!
//! # Design
//!
//! Bytes in use are counted by a *meter*: a function the host installs once per process with
//! [`set_meter`], normally reading a counting global allocator (the `omega` CLI wraps the
//! system allocator in `cap::Cap` and installs `|| ALLOC.allocated()`). Counting in the
//! allocator charges every allocation path at once — the reader, literals, builtins, `append`,
//! string building, JSON, LLM replies, macro expansion — and credits every free, so the figure
//! is live bytes, not bytes ever allocated. Without a meter the limit is not enforced (an
//! embedder that wants it installs one).
//!
//! The limit is compared with the meter at *check points*: the VM's safe points (every
//! `yield_interval` steps), every builtin that builds a string or a list
//! (`State::make_string`/`make_list` and the length checks), each macro expansion, the reader
//! (every few thousand datums) and the printers. Exceeding it raises the uncatchable `:limit`
//! error "heap limit of N bytes reached"; the evaluation unwinds, freeing what it held, and the
//! runtime stays usable.
//!
//! # Invariants
//!
//! 1. The meter is process-wide; the limit in force on a thread is the one of the runtime that
//!    last ran or was built on it ([`set_thread_limit`]), which is what the reader — called
//!    without a runtime — checks against. A runtime checks its own [`crate::Limits`] directly.

use std::cell::Cell;
use std::sync::RwLock;

use crate::error::{ErrorKind, LispError, LispResult};

static METER: RwLock<Option<fn() -> usize>> = RwLock::new(None);

thread_local! {
    static THREAD_LIMIT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Installs the process-wide meter: a function returning the bytes in use now. Replaces any
/// meter installed before.
pub fn set_meter(meter: fn() -> usize) {
    if let Ok(mut m) = METER.write() {
        *m = Some(meter);
    }
}

/// The bytes in use according to the meter, if one is installed.
pub fn in_use() -> Option<usize> {
    let meter = (*METER.read().ok()?)?;
    Some(meter())
}

/// Sets the heap limit the reader checks on this thread (invariant 1).
pub fn set_thread_limit(max: Option<usize>) {
    THREAD_LIMIT.with(|l| l.set(max));
}

/// The error raised when the heap limit `max` is reached.
pub(crate) fn limit_error(max: usize) -> LispError {
    LispError::new(
        ErrorKind::Limit,
        format!("heap limit of {max} bytes reached"),
    )
}

/// Fails with `:limit` if the bytes in use exceed `max`.
#[inline]
pub(crate) fn check(max: Option<usize>) -> LispResult<()> {
    let Some(max) = max else { return Ok(()) };
    match in_use() {
        Some(used) if used > max => Err(limit_error(max)),
        _ => Ok(()),
    }
}

/// [`check`] against this thread's limit (invariant 1).
pub(crate) fn check_thread() -> LispResult<()> {
    check(THREAD_LIMIT.with(Cell::get))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_limit_or_no_meter_never_fails() {
        assert!(check(None).is_ok());
    }

    thread_local! {
        static FAKE_IN_USE: Cell<usize> = const { Cell::new(0) };
    }

    /// A meter that reads a per-thread figure, so other tests (other threads) see 0.
    fn fake_meter() -> usize {
        FAKE_IN_USE.with(Cell::get)
    }

    #[test]
    fn over_the_limit_an_evaluation_fails_with_limit_and_the_runtime_survives() {
        set_meter(fake_meter);
        let rt = crate::Runtime::new();
        rt.set_limits(crate::Limits {
            max_heap_bytes: Some(1000),
            ..crate::Limits::default()
        })
        .expect("idle runtime");
        FAKE_IN_USE.with(|f| f.set(1001));
        let e = rt
            .eval_sync(
                "(define (f n) (if (= n 0) 0 (f (- n 1)))) (try (f 5000) (catch e :caught))",
                "t",
            )
            .expect_err("over the limit");
        assert_eq!(e.kind(), &ErrorKind::Limit);
        assert_eq!(e.message(), "heap limit of 1000 bytes reached");
        FAKE_IN_USE.with(|f| f.set(10));
        assert_eq!(
            rt.eval_sync("(+ 1 2)", "t").expect("within the limit"),
            crate::Value::Int(3)
        );
    }

    #[test]
    fn the_limit_error_names_the_limit() {
        let e = limit_error(64);
        assert_eq!(e.kind(), &ErrorKind::Limit);
        assert_eq!(e.message(), "heap limit of 64 bytes reached");
        assert!(!e.is_catchable());
    }
}
