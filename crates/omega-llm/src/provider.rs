//! The provider trait: one async method, object-safe so hosts can hold `Arc<dyn LlmProvider>`.

use std::future::Future;
use std::pin::Pin;

use crate::types::{LlmError, LlmRequest, LlmResponse};

/// The future a provider returns.
pub type LlmFuture<'a> = Pin<Box<dyn Future<Output = Result<LlmResponse, LlmError>> + Send + 'a>>;

/// Something that completes prompts: the mock, an OpenAI-compatible server, a host's own.
///
/// Implementations must be cancel-safe: dropping the returned future abandons the call (an
/// HTTP provider drops the request). Concurrency limits are not the provider's job: callers
/// hold a permit of the scheduler's `"llm"` pool for the whole call.
pub trait LlmProvider: Send + Sync {
    /// Completes one request.
    fn complete(&self, req: LlmRequest) -> LlmFuture<'_>;

    /// A short name for logs and stats (`mock`, `openai`, …).
    fn name(&self) -> &str;
}
