//! The attempt gate: how a caller's concurrency limit reaches inside a provider's retries.
//!
//! The scheduler bounds LLM calls in flight with its `"llm"` pool (SPEC §5). A provider that
//! retries must not sit on a pool permit while it sleeps between attempts: other tasks could
//! use that slot meanwhile. So instead of holding a permit for the whole call, the caller
//! hands the provider an [`AttemptGate`], and the provider enters it around each HTTP attempt
//! only.
//!
//! This crate does not depend on the scheduler: the gate is a trait any limit can implement
//! (the scheduler's pool, a [`tokio::sync::Semaphore`], a test's counter).
//!
//! # Invariants
//!
//! 1. A provider holds at most one [`GatePermit`] per call, and only while an attempt is on
//!    the wire (from sending the request to reading the whole answer).
//! 2. No permit is held while backing off, while waiting for a client-side rate limit, or
//!    after the call has returned.
//! 3. Dropping a call's future drops its permit (RAII), so cancellation never leaks a slot.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::types::LlmError;

/// The future [`AttemptGate::enter`] returns.
pub type GateFuture<'a> =
    Pin<Box<dyn Future<Output = Result<GatePermit<'a>, LlmError>> + Send + 'a>>;

/// A limit a provider enters around each attempt of a call.
///
/// The scheduler bounds LLM calls in flight with its `"llm"` pool. A provider that retries
/// must not hold a pool slot while it sleeps between attempts, so the caller hands it the
/// pool as a gate and the provider holds a [`GatePermit`] only while an attempt is on the
/// wire: it leaves the gate before backing off or waiting for a rate limit, and enters it
/// again for the next attempt. Providers that do not retry hold it for the whole call (the
/// default [`LlmProvider::complete_with`](crate::LlmProvider::complete_with)).
///
/// # Examples
///
/// A semaphore is a gate; the scheduler's `"llm"` pool is meant to be one too:
///
/// ```
/// use std::sync::Arc;
/// use omega_llm::{AttemptGate, CallOptions};
///
/// let gate: Arc<dyn AttemptGate> = Arc::new(tokio::sync::Semaphore::new(8));
/// let options = CallOptions::new().gate(gate);
/// # let _ = options;
/// ```
///
/// # Cancellation safety
///
/// Dropping the future `enter` returns must give up the wait without taking a slot.
pub trait AttemptGate: Send + Sync + fmt::Debug {
    /// Waits for a slot and returns it as a permit; dropping the permit frees the slot.
    ///
    /// An error (for example, the pool was closed) fails the call with that error.
    fn enter(&self) -> GateFuture<'_>;
}

/// A slot of an [`AttemptGate`], freed when dropped.
#[must_use = "the slot is freed as soon as the permit is dropped"]
pub struct GatePermit<'a> {
    _guard: Box<dyn Send + 'a>,
}

impl<'a> GatePermit<'a> {
    /// Wraps the guard that frees the slot when dropped (a semaphore permit, a pool lease).
    pub fn new(guard: impl Send + 'a) -> Self {
        GatePermit {
            _guard: Box::new(guard),
        }
    }
}

impl fmt::Debug for GatePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GatePermit")
    }
}

impl AttemptGate for tokio::sync::Semaphore {
    fn enter(&self) -> GateFuture<'_> {
        Box::pin(async move {
            self.acquire()
                .await
                .map(GatePermit::new)
                .map_err(|_| LlmError::Cancelled {
                    reason: "the LLM gate was closed".into(),
                })
        })
    }
}

/// Per-call options for [`LlmProvider::complete_with`](crate::LlmProvider::complete_with).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use omega_llm::{CallOptions, LlmProvider, LlmRequest, MockProvider};
///
/// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// let pool = Arc::new(tokio::sync::Semaphore::new(2));
/// let options = CallOptions::new().gate(pool).timeout(Duration::from_secs(30));
/// let r = rt.block_on(MockProvider::new().complete_with(LlmRequest::prompt("hi"), options));
/// assert_eq!(r.unwrap().text, "echo: hi");
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// Entered around each attempt; `None` leaves concurrency to the caller (or to the
    /// provider's own default gate).
    pub gate: Option<Arc<dyn AttemptGate>>,
    /// The call's overall deadline, across all retries.
    pub deadline: Option<Instant>,
    /// The call's overall time limit, across all retries, from when the call starts (its
    /// future is first polled). With both set, the earlier end wins; with neither, the
    /// provider's default applies.
    pub timeout: Option<Duration>,
}

impl CallOptions {
    /// No gate, the provider's default deadline.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enters `gate` around each attempt.
    pub fn gate(mut self, gate: Arc<dyn AttemptGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Ends the call, retries included, at `deadline`.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Ends the call, retries included, `timeout` after it starts.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The deadline of a call starting at `start`: the earlier of `deadline` and
    /// `start + timeout`, if either is set.
    pub fn deadline_from(&self, start: Instant) -> Option<Instant> {
        let by_timeout = self.timeout.map(|t| start + t);
        match (self.deadline, by_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
