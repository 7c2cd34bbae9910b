//! Synchronisation shim: `std`/`parking_lot` normally, `loom` under `cfg(all(test, loom))`.
//!
//! Concurrency modules import `Arc`, `Mutex` and the atomics from here so that their loom
//! model tests exercise exactly the production code. [`Mutex::lock`] returns the guard
//! directly in both configurations (no poisoning: a panic while a lock is held cannot leave
//! the protected data half-updated in the modules that use it, and loom's poison is ignored).
//!
//! The loom side is gated on `test` as well as `loom` because `loom` is only a
//! dev-dependency: building the library itself with `--cfg loom` must still work.

#[cfg(not(all(test, loom)))]
mod imp {
    pub(crate) use parking_lot::Mutex;
    pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
    pub(crate) use std::sync::Arc;
}

#[cfg(all(test, loom))]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicBool, Ordering};
    pub(crate) use loom::sync::Arc;

    /// `loom::sync::Mutex` with a `parking_lot`-style, non-poisoning [`Mutex::lock`].
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        /// Creates a new unlocked mutex.
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        /// Acquires the lock, ignoring poisoning.
        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }
}

pub(crate) use imp::{Arc, AtomicBool, Mutex, Ordering};
