//! The provider trait: one async method, object-safe so hosts can hold `Arc<dyn LlmProvider>`.

use std::future::Future;
use std::pin::Pin;

use tokio::time::Instant;

use crate::gate::CallOptions;
use crate::types::{LlmError, LlmRequest, LlmResponse};

/// The future a provider returns.
pub type LlmFuture<'a> = Pin<Box<dyn Future<Output = Result<LlmResponse, LlmError>> + Send + 'a>>;

/// Something that completes prompts: the mock, an OpenAI-compatible server, a host's own.
///
/// Implementations must be cancel-safe: dropping the returned future abandons the call (an
/// HTTP provider drops the request). Concurrency limits are not the provider's job: callers
/// either hold a permit of the scheduler's `"llm"` pool for the whole call, or pass the pool
/// as an [`AttemptGate`](crate::AttemptGate) to [`complete_with`](Self::complete_with),
/// which lets a retrying provider give the slot back while it backs off.
pub trait LlmProvider: Send + Sync {
    /// Completes one request.
    fn complete(&self, req: LlmRequest) -> LlmFuture<'_>;

    /// A short name for logs and stats (`mock`, `openai`, …).
    fn name(&self) -> &str;

    /// Completes one request under per-call options: a gate entered around each attempt
    /// and an overall deadline.
    ///
    /// The default holds the gate for the whole call and maps the deadline to
    /// [`LlmError::Timeout`]; providers that retry (the OpenAI-compatible one) override it to
    /// hold the gate only while an attempt is on the wire.
    ///
    /// # Cancellation safety
    ///
    /// Dropping the future drops the permit and the call.
    fn complete_with(&self, req: LlmRequest, options: CallOptions) -> LlmFuture<'_> {
        Box::pin(async move {
            let start = Instant::now();
            let call = async {
                let _permit = match &options.gate {
                    Some(gate) => Some(gate.enter().await?),
                    None => None,
                };
                self.complete(req).await
            };
            match options.deadline_from(start) {
                Some(deadline) => tokio::time::timeout_at(deadline, call)
                    .await
                    .unwrap_or_else(|_| {
                        Err(LlmError::Timeout {
                            after: deadline.saturating_duration_since(start),
                        })
                    }),
                None => call.await,
            }
        })
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
}
