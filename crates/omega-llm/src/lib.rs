//! LLM providers for Omega (SPEC §5): the object-safe [`LlmProvider`] trait, the request,
//! response and error types every provider speaks, and the deterministic [`MockProvider`]
//! (echo, fixed latency, scripted replies, seeded failures) that `omega run` uses by default.
//! Concurrency limits live in the scheduler: callers hold a permit of its `"llm"` pool for
//! the whole call, and cancelling the calling task drops the call's future.
#![warn(missing_docs, missing_debug_implementations)]

mod mock;
mod provider;
mod types;

pub use mock::{MockProvider, Rule};
pub use provider::{LlmFuture, LlmProvider};
pub use types::{estimate_tokens, LlmError, LlmRequest, LlmResponse, Message, Role, Usage};
