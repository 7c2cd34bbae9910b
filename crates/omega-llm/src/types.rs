//! The request, response and error types every provider speaks (SPEC §5).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The caller.
    User,
    /// The model.
    Assistant,
}

/// One message of a chat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

/// One completion request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    /// Model name; `None` uses the provider's default.
    pub model: Option<String>,
    /// The conversation; a plain prompt is one user message.
    pub messages: Vec<Message>,
    /// A system prompt, sent before the messages.
    pub system: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Upper bound on completion tokens.
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Free-form tags carried through to logs and stats.
    pub metadata: BTreeMap<String, String>,
}

impl LlmRequest {
    /// A request with one user message.
    pub fn prompt(text: impl Into<String>) -> Self {
        LlmRequest {
            messages: vec![Message {
                role: Role::User,
                content: text.into(),
            }],
            ..Default::default()
        }
    }

    /// The text of the last user message (what the mock echoes).
    pub fn last_user_text(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.content.as_str())
    }
}

/// Token counts of one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens in the completion.
    pub completion_tokens: u64,
}

/// One completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlmResponse {
    /// The generated text.
    pub text: String,
    /// The model that answered.
    pub model: String,
    /// Token counts.
    pub usage: Usage,
    /// Time from request to response.
    pub latency: Duration,
    /// Why generation stopped (`stop`, `length`, …).
    pub finish_reason: String,
}

/// Why a call failed. Each variant says whether a retry may help ([`LlmError::is_retryable`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The provider said to slow down (HTTP 429).
    #[error("rate limited{}: {message}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited {
        /// How long the provider asked to wait, if it said.
        retry_after: Option<Duration>,
        /// The provider's message.
        message: String,
    },
    /// No answer in time.
    #[error("LLM call timed out after {after:?}")]
    Timeout {
        /// How long the call had.
        after: Duration,
    },
    /// The call queued too long before its first request was sent (see
    /// [`CallOptions::queue_timeout`](crate::CallOptions::queue_timeout)).
    #[error("LLM call timed out: queued {} for {waiting_for} without being sent", human_duration(*waited))]
    QueueTimeout {
        /// How long it queued.
        waited: Duration,
        /// What it queued for: `an llm slot`, `a requests-per-minute slot`, …
        waiting_for: String,
    },
    /// The server could not be reached: connection refused, unknown host, no route. The
    /// request was never sent.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The connection failed after it was opened (reset, closed mid-answer), or a
    /// connection attempt timed out.
    #[error("transport error: {0}")]
    Transport(String),
    /// The server failed (HTTP 5xx).
    #[error("server error {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The request was refused (HTTP 4xx other than 408/409/429); never retried.
    #[error("bad request {status}: {message}")]
    BadRequest {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The calling task was cancelled.
    #[error("LLM call cancelled: {reason}")]
    Cancelled {
        /// The task's cancellation reason.
        reason: String,
    },
    /// The answer could not be understood.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The provider is misconfigured (missing key, bad URL, unreadable replies file).
    #[error("LLM configuration error: {0}")]
    Config(String),
}

impl LlmError {
    /// A short kind name: `rate-limited`, `timeout` (also for queue timeouts), `connect`,
    /// `transport`, `server`, `bad-request`, `cancelled`, `invalid-response`, `config`.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::RateLimited { .. } => "rate-limited",
            LlmError::Timeout { .. } | LlmError::QueueTimeout { .. } => "timeout",
            LlmError::Connect(_) => "connect",
            LlmError::Transport(_) => "transport",
            LlmError::Server { .. } => "server",
            LlmError::BadRequest { .. } => "bad-request",
            LlmError::Cancelled { .. } => "cancelled",
            LlmError::InvalidResponse(_) => "invalid-response",
            LlmError::Config(_) => "config",
        }
    }

    /// True for errors a later retry may cure: rate limits, timeouts, connection trouble
    /// and 5xx. (Whether a provider retries on its own is narrower: see
    /// [`OpenAiCompatible::complete_with`](crate::OpenAiCompatible::complete_with).)
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            LlmError::RateLimited { .. }
                | LlmError::Timeout { .. }
                | LlmError::QueueTimeout { .. }
                | LlmError::Connect(_)
                | LlmError::Transport(_)
                | LlmError::Server { .. }
        )
    }

    /// A few words for progress lines and retry logs: `429`, `503`, `connection refused`…
    pub fn short(&self) -> String {
        match self {
            LlmError::RateLimited { .. } => "429".into(),
            LlmError::Server { status, .. } | LlmError::BadRequest { status, .. } => {
                status.to_string()
            }
            LlmError::Connect(_) => "cannot connect".into(),
            LlmError::Transport(_) => "connection lost".into(),
            other => other.kind().into(),
        }
    }

    /// Parses a kind name as used in mock reply files (`"server"`, `"rate-limited"`, …)
    /// into an error with `message`.
    pub fn from_kind(kind: &str, message: &str) -> Option<LlmError> {
        let message = message.to_string();
        Some(match kind {
            "rate-limited" => LlmError::RateLimited {
                retry_after: None,
                message,
            },
            "timeout" => LlmError::Timeout {
                after: Duration::ZERO,
            },
            "connect" => LlmError::Connect(message),
            "transport" => LlmError::Transport(message),
            "server" => LlmError::Server {
                status: 500,
                message,
            },
            "bad-request" => LlmError::BadRequest {
                status: 400,
                message,
            },
            "invalid-response" => LlmError::InvalidResponse(message),
            _ => return None,
        })
    }
}

/// A duration for messages: `850ms`, `2.1s`.
pub(crate) fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A rough token count for providers that do not report one: words and punctuation runs.
pub fn estimate_tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_and_kinds() {
        let e = LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
            message: "slow down".into(),
        };
        assert_eq!(e.to_string(), "rate limited (retry after 2s): slow down");
        assert!(e.is_retryable());
        let e = LlmError::BadRequest {
            status: 401,
            message: "no key".into(),
        };
        assert_eq!(e.to_string(), "bad request 401: no key");
        assert!(!e.is_retryable());
        assert_eq!(e.kind(), "bad-request");
        assert_eq!(
            LlmError::from_kind("server", "down").map(|e| e.to_string()),
            Some("server error 500: down".into())
        );
        assert_eq!(LlmError::from_kind("nope", ""), None);
        let e = LlmError::QueueTimeout {
            waited: Duration::from_millis(118_200),
            waiting_for: "an llm slot".into(),
        };
        assert_eq!(
            e.to_string(),
            "LLM call timed out: queued 118.2s for an llm slot without being sent"
        );
        assert_eq!(e.kind(), "timeout");
        let e = LlmError::Connect("connection refused".into());
        assert_eq!((e.kind(), e.short()), ("connect", "cannot connect".into()));
        assert_eq!(
            LlmError::from_kind("connect", "down"),
            Some(LlmError::Connect("down".into()))
        );
    }

    #[test]
    fn prompt_builds_one_user_message() {
        let r = LlmRequest::prompt("hi there");
        assert_eq!(r.last_user_text(), "hi there");
        assert_eq!(estimate_tokens("hi there"), 2);
    }
}
