//! LLM providers for Omega (SPEC §5): the object-safe [`LlmProvider`] trait (complete a
//! request, or stream its reply as an [`LlmStream`]), the request, response and error types
//! every provider speaks, the deterministic [`MockProvider`] (echo, fixed latency, scripted
//! replies, seeded failures) that `omega run` uses by default, and [`OpenAiCompatible`],
//! which calls any server speaking OpenAI's chat completions API with retries that never
//! resend what may have run, deadlines, client-side rate limits, streaming, usage
//! accounting and a live [`Activity`] view.
//! Concurrency limits live in the scheduler: callers either hold a permit of its `"llm"` pool
//! for the whole call, or pass the pool as an [`AttemptGate`] through [`CallOptions`] so that
//! a retrying provider frees the slot while it backs off. Cancelling the calling task drops
//! the call's future, and with it the HTTP request.
#![warn(missing_docs, missing_debug_implementations)]

mod activity;
mod gate;
mod mock;
mod openai;
mod provider;
mod stream;
mod types;
mod usage;

pub use activity::Activity;
pub use gate::{AttemptGate, CallOptions, GateFuture, GatePermit};
pub use mock::{MockProvider, Rule};
pub use openai::{OpenAiCompatible, OpenAiConfig, DEFAULT_BASE_URL};
pub use provider::{LlmFuture, LlmProvider};
pub use stream::{LlmStream, StreamEvent};
pub use types::{estimate_tokens, LlmError, LlmRequest, LlmResponse, Message, Role, Usage};
pub use usage::ModelUsage;
