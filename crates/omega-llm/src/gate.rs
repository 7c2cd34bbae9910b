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
//!    the wire (from sending the request to reading the whole answer; for a stream, to its
//!    last chunk).
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
pub type GateFuture = Pin<Box<dyn Future<Output = Result<GatePermit, LlmError>> + Send>>;

/// A limit a provider enters around each attempt of a call.
///
/// The scheduler bounds LLM calls in flight with its `"llm"` pool. A provider that retries
/// must not hold a pool slot while it sleeps between attempts, so the caller hands it the
/// pool as a gate and the provider holds a [`GatePermit`] only while an attempt is on the
/// wire: it leaves the gate before backing off or waiting for a rate limit, and enters it
/// again for the next attempt. Providers that do not retry hold it for the whole call (the
/// default [`LlmProvider::complete_with`](crate::LlmProvider::complete_with)); a stream
/// holds it until its last chunk has been read or it is dropped.
///
/// Permits are owned (`'static`), so a stream can carry its permit wherever it goes.
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
    fn enter(self: Arc<Self>) -> GateFuture;
}

/// A slot of an [`AttemptGate`], freed when dropped.
#[must_use = "the slot is freed as soon as the permit is dropped"]
pub struct GatePermit {
    _guard: Box<dyn Send>,
}

impl GatePermit {
    /// Wraps the guard that frees the slot when dropped (a semaphore permit, a pool lease).
    pub fn new(guard: impl Send + 'static) -> Self {
        GatePermit {
            _guard: Box::new(guard),
        }
    }
}

impl fmt::Debug for GatePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GatePermit")
    }
}

impl AttemptGate for tokio::sync::Semaphore {
    fn enter(self: Arc<Self>) -> GateFuture {
        Box::pin(async move {
            self.acquire_owned()
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
    /// An absolute end for the whole call: queueing for the gate and for rate limits,
    /// attempts, backoff and (for streams) reading the last chunk.
    pub deadline: Option<Instant>,
    /// The call's time limit, retries and backoff included, counted from when its first
    /// request is sent: time queued for a gate slot or a rate-limit slot is not counted
    /// (bound it with [`queue_timeout`](Self::queue_timeout) or `deadline`). `None` takes
    /// the provider's default.
    pub timeout: Option<Duration>,
    /// How long the call may queue before its first request is sent (for a gate slot and
    /// for client-side rate limits); running out fails it with [`LlmError::QueueTimeout`].
    /// `None`: as long as it takes (the calling task's own timeout still applies).
    pub queue_timeout: Option<Duration>,
}

impl CallOptions {
    /// No gate, the provider's default deadline, unbounded queueing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enters `gate` around each attempt.
    pub fn gate(mut self, gate: Arc<dyn AttemptGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Ends the call, queueing and retries included, at `deadline`.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Ends the call, retries included, `timeout` after its first request is sent.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Fails the call if it has queued `limit` without being sent.
    pub fn queue_timeout(mut self, limit: Duration) -> Self {
        self.queue_timeout = Some(limit);
        self
    }

    /// The latest moment the call may still be queueing, for a call that started at
    /// `start`: the earlier of `deadline` and `start + queue_timeout`, if either is set.
    pub fn queue_deadline(&self, start: Instant) -> Option<Instant> {
        earliest(self.deadline, self.queue_timeout.map(|q| start + q))
    }

    /// The call's end once its first request is sent at `sent`: the earlier of `deadline`
    /// and `sent + timeout` (`default_timeout` when the options set none).
    pub fn call_deadline(
        &self,
        sent: Instant,
        default_timeout: Option<Duration>,
    ) -> Option<Instant> {
        earliest(
            self.deadline,
            self.timeout.or(default_timeout).map(|t| sent + t),
        )
    }
}

/// The earlier of two optional instants.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
