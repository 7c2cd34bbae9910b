//! The provider trait: complete a request, or stream its reply; object-safe so hosts can
//! hold `Arc<dyn LlmProvider>`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::time::Instant;

use crate::activity::Activity;
use crate::gate::{CallOptions, GatePermit};
use crate::stream::LlmStream;
use crate::types::{LlmError, LlmRequest, LlmResponse};

/// The future a provider returns.
pub type LlmFuture<'a> = Pin<Box<dyn Future<Output = Result<LlmResponse, LlmError>> + Send + 'a>>;

/// Something that completes prompts: the mock, an OpenAI-compatible server, a host's own.
///
/// Implementations must be cancel-safe: dropping the returned future (or stream) abandons
/// the call (an HTTP provider drops the request). Concurrency limits are not the provider's
/// job: callers either hold a permit of the scheduler's `"llm"` pool for the whole call, or
/// pass the pool as an [`AttemptGate`](crate::AttemptGate) through [`CallOptions`], which
/// lets a retrying provider give the slot back while it backs off.
pub trait LlmProvider: Send + Sync + 'static {
    /// Completes one request.
    fn complete(&self, req: LlmRequest) -> LlmFuture<'_>;

    /// A short name for logs and stats (`mock`, `openai`, …).
    fn name(&self) -> &str;

    /// The model asked for when a request names none: what usage is counted under. The
    /// default is [`name`](Self::name).
    fn default_model(&self) -> &str {
        self.name()
    }

    /// What the provider is doing now (calls queued, on the wire, backing off). The
    /// default reports nothing.
    fn activity(&self) -> Activity {
        Activity::default()
    }

    /// Completes one request under per-call options: a gate entered around each attempt,
    /// a queueing limit and a deadline.
    ///
    /// The default holds the gate for the whole call; its time limit
    /// ([`CallOptions::timeout`]) starts once the gate is entered, and time spent waiting
    /// for the gate counts only against [`CallOptions::queue_timeout`] and
    /// [`CallOptions::deadline`]. Providers that retry (the OpenAI-compatible one) override
    /// it to hold the gate only while an attempt is on the wire.
    ///
    /// # Cancellation safety
    ///
    /// Dropping the future drops the permit and the call.
    fn complete_with(&self, req: LlmRequest, options: CallOptions) -> LlmFuture<'_> {
        Box::pin(async move {
            let (_permit, deadline, sent) = enter_whole_call(&options).await?;
            bounded(deadline, sent, self.complete(req)).await
        })
    }

    /// Streams one request's reply under per-call options (see
    /// [`complete_with`](Self::complete_with)); the stream owns the provider (hence
    /// `self: Arc<Self>`), so it can outlive the caller's borrow.
    ///
    /// The default completes the request and yields the whole text as one piece; providers
    /// that can stream (the mock, the OpenAI-compatible one) override it.
    fn stream_with(self: Arc<Self>, req: LlmRequest, options: CallOptions) -> LlmStream {
        LlmStream::from_future(async move { self.complete_with(req, options).await })
    }
}

/// Enters `options`' gate for a call that holds it throughout, bounded by its queue
/// deadline; returns the permit, the call's deadline (from now) and the moment it was sent.
pub(crate) async fn enter_whole_call(
    options: &CallOptions,
) -> Result<(Option<GatePermit>, Option<Instant>, Instant), LlmError> {
    let start = Instant::now();
    let permit = match &options.gate {
        Some(gate) => {
            let enter = gate.clone().enter();
            match options.queue_deadline(start) {
                Some(limit) => match tokio::time::timeout_at(limit, enter).await {
                    Ok(p) => Some(p?),
                    Err(_) => {
                        return Err(LlmError::QueueTimeout {
                            waited: start.elapsed(),
                            waiting_for: "an llm slot".into(),
                        })
                    }
                },
                None => Some(enter.await?),
            }
        }
        None => None,
    };
    let sent = Instant::now();
    Ok((permit, options.call_deadline(sent, None), sent))
}

/// Runs `call` until `deadline`, if any; running out is a [`LlmError::Timeout`] counted
/// from `sent`.
pub(crate) async fn bounded<T>(
    deadline: Option<Instant>,
    sent: Instant,
    call: impl Future<Output = Result<T, LlmError>>,
) -> Result<T, LlmError> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, call)
            .await
            .unwrap_or_else(|_| {
                Err(LlmError::Timeout {
                    after: deadline.saturating_duration_since(sent),
                })
            }),
        None => call.await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::*;
    use crate::MockProvider;

    #[tokio::test(start_paused = true)]
    async fn default_complete_with_holds_the_gate_and_keeps_the_deadline() {
        let mock = MockProvider::new().latency(Duration::from_millis(100));
        let pool = Arc::new(Semaphore::new(1));
        let options = CallOptions::new().gate(pool.clone());
        let call = mock.complete_with(LlmRequest::prompt("a"), options.clone());
        let probe = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            pool.available_permits()
        };
        let (r, free) = tokio::join!(call, probe);
        assert_eq!(r.unwrap().text, "echo: a");
        assert_eq!(free, 0, "held for the whole call");
        assert_eq!(pool.available_permits(), 1);

        let r = mock
            .complete_with(
                LlmRequest::prompt("b"),
                options.timeout(Duration::from_millis(30)),
            )
            .await;
        assert_eq!(
            r,
            Err(LlmError::Timeout {
                after: Duration::from_millis(30)
            })
        );
        let deadline = Instant::now() + Duration::from_millis(10);
        let r = mock
            .complete_with(
                LlmRequest::prompt("c"),
                CallOptions::new()
                    .deadline(deadline)
                    .timeout(Duration::from_secs(5)),
            )
            .await;
        assert_eq!(
            r,
            Err(LlmError::Timeout {
                after: Duration::from_millis(10)
            }),
            "the earlier end wins"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn default_complete_with_starts_the_clock_when_it_gets_the_gate() {
        let mock = MockProvider::new().latency(Duration::from_millis(100));
        let pool = Arc::new(Semaphore::new(1));
        let busy = pool.clone().acquire_owned().await.unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            drop(busy);
        });
        let t0 = Instant::now();
        let options = CallOptions::new()
            .gate(pool.clone())
            .timeout(Duration::from_millis(150));
        let r = mock.complete_with(LlmRequest::prompt("a"), options).await;
        assert_eq!(
            r.unwrap().text,
            "echo: a",
            "3 s queued, then 100 ms of its 150"
        );
        assert_eq!(t0.elapsed(), Duration::from_millis(3100));

        let _busy = pool.clone().acquire_owned().await.unwrap();
        let options = CallOptions::new()
            .gate(pool)
            .queue_timeout(Duration::from_secs(2));
        let r = mock.complete_with(LlmRequest::prompt("b"), options).await;
        assert_eq!(
            r,
            Err(LlmError::QueueTimeout {
                waited: Duration::from_secs(2),
                waiting_for: "an llm slot".into()
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_provider_that_cannot_stream_gives_one_piece() {
        /// A provider with only `complete`.
        struct Plain;
        impl LlmProvider for Plain {
            fn complete(&self, req: LlmRequest) -> LlmFuture<'_> {
                Box::pin(async move { MockProvider::new().complete(req).await })
            }
            fn name(&self) -> &str {
                "plain"
            }
        }
        let p: Arc<dyn LlmProvider> = Arc::new(Plain);
        assert_eq!(p.default_model(), "plain");
        let mut s = p.stream_with(LlmRequest::prompt("a b"), CallOptions::new());
        assert_eq!(s.next().await, Some(Ok("echo: a b".to_string())));
        assert_eq!(s.next().await, None);
        assert_eq!(s.response().unwrap().text, "echo: a b");
    }
}
