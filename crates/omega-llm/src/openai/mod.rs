//! The OpenAI-compatible provider: `POST {base_url}/chat/completions` over `reqwest` (rustls,
//! no OpenSSL). Works against OpenAI, vLLM, Ollama, llama.cpp server, LiteLLM proxy and
//! llmock (SPEC §5).
//!
//! | file | what |
//! |---|---|
//! | `config.rs` | [`OpenAiConfig`]: environment variables, defaults, validation |
//! | `wire.rs` | the JSON request and answer, servers' error bodies |
//! | `retry.rs` | the retry loop: what is retried, how long to wait, the deadline |
//! | `ratelimit.rs` | client-side RPM/TPM token buckets and the `x-ratelimit-*` headers |
//!
//! # A call
//!
//! [`OpenAiCompatible::complete_with`] builds the body once, then runs the retry loop
//! (`retry.rs`): per attempt it enters the gate (if any), takes a rate-limit slot, sends the
//! request and reads the whole answer, and leaves the gate. Every answer's headers feed the
//! rate limiter. The call ends with a completion, a non-retryable error, or at its
//! deadline; its usage is added to [`OpenAiCompatible::usage_by_model`].

mod config;
mod ratelimit;
mod retry;
mod wire;

use std::collections::BTreeMap;
use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;
use tokio::time::Instant;

pub use config::{OpenAiConfig, DEFAULT_BASE_URL};

use crate::gate::{AttemptGate, CallOptions};
use crate::provider::{LlmFuture, LlmProvider};
use crate::types::{LlmError, LlmRequest, LlmResponse};
use crate::usage::{CallRecord, Ending, Ledger, ModelUsage};
use ratelimit::RateLimiter;
use retry::{Backoff, Budget, Failure, Jitter};
use wire::ChatRequest;

/// A provider for any server speaking OpenAI's `POST /v1/chat/completions`.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use omega_llm::{CallOptions, LlmProvider, LlmRequest, OpenAiCompatible};
///
/// # async fn demo() -> Result<(), omega_llm::LlmError> {
/// // OMEGA_LLM_BASE_URL=http://127.0.0.1:8080/v1 OMEGA_LLM_MODEL=qwen2.5 (no key on loopback)
/// let llm = OpenAiCompatible::from_env()?;
/// let pool = Arc::new(tokio::sync::Semaphore::new(8)); // the scheduler's "llm" pool, say
/// let answer = llm
///     .complete_with(LlmRequest::prompt("Say hi"), CallOptions::new().gate(pool))
///     .await?;
/// println!("{} ({} tokens)", answer.text, answer.usage.completion_tokens);
/// println!("{:?}", llm.usage_by_model());
/// # Ok(()) }
/// ```
///
/// # Retries, deadline and the gate
///
/// See [`complete_with`](Self::complete_with). A call with no deadline of its own ends
/// [`OpenAiConfig::timeout`] after it starts.
///
/// # Cancellation safety
///
/// Dropping a call's future drops the in-flight HTTP request at once (its connection is
/// closed, not returned to the pool), drops the gate permit, and counts the call as
/// cancelled in [`usage_by_model`](Self::usage_by_model).
pub struct OpenAiCompatible {
    config: OpenAiConfig,
    endpoint: Url,
    auth: Option<HeaderValue>,
    client: reqwest::Client,
    gate: Option<Arc<dyn AttemptGate>>,
    limiter: RateLimiter,
    jitter: Jitter,
    usage: Ledger,
}

impl fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("config", &self.config)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl OpenAiCompatible {
    /// A provider configured from the environment (see [`OpenAiConfig::from_env`]).
    ///
    /// Fails with [`LlmError::Config`] on a missing model, a missing key for a server that
    /// is not on a loopback address, or a bad URL: before any call is made.
    pub fn from_env() -> Result<Self, LlmError> {
        Self::new(OpenAiConfig::from_env()?)
    }

    /// A provider for `config`, validated (see [`OpenAiConfig::validate`]).
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        let endpoint = config.validate()?;
        let auth = match config.api_key.as_deref().filter(|k| !k.is_empty()) {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                    LlmError::Config(
                        "OPENAI_API_KEY contains characters not allowed in an HTTP header".into(),
                    )
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let mut client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("omega-llm/", env!("CARGO_PKG_VERSION")));
        if config::is_loopback(&endpoint) {
            // A local server is never reached through HTTP(S)_PROXY.
            client = client.no_proxy();
        }
        let client = client.build().map_err(|e| {
            LlmError::Config(format!("cannot build the HTTP client: {}", chain(&e)))
        })?;
        let limiter = RateLimiter::new(
            config.requests_per_minute,
            config.tokens_per_minute,
            Instant::now(),
        );
        Ok(OpenAiCompatible {
            config,
            endpoint,
            auth,
            client,
            gate: None,
            limiter,
            jitter: Jitter::new(),
            usage: Ledger::default(),
        })
    }

    /// Enters `gate` around each attempt of calls that bring no gate of their own (through
    /// [`CallOptions::gate`]), including plain [`LlmProvider::complete`] calls.
    pub fn with_gate(mut self, gate: Arc<dyn AttemptGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// Calls, attempts and tokens so far, per requested model name.
    pub fn usage_by_model(&self) -> BTreeMap<String, ModelUsage> {
        self.usage.snapshot()
    }

    /// Completes `req` under `options`.
    ///
    /// * **Deadline**: `options`' deadline or timeout, else [`OpenAiConfig::timeout`] from
    ///   the start. It bounds the whole call: waiting for the gate, rate-limit waits,
    ///   attempts and backoff. An attempt still running then is dropped and the call fails
    ///   with [`LlmError::Timeout`].
    /// * **Retries**: transport errors, 408, 409, 429 and 5xx are retried after
    ///   `retry-after-ms`, else `Retry-After`, else full-jitter exponential backoff
    ///   ([`OpenAiConfig::backoff`]), until the deadline; 400, 401, 403, 404 (any other
    ///   4xx) and undecodable answers are not. Errors say what happened and how many
    ///   attempts were made: `server error 503: overloaded (after 4 attempts over 2.1s)`.
    /// * **Gate**: `options.gate`, else the provider's [`with_gate`](Self::with_gate), is
    ///   entered for each attempt and left before any wait, so a pool slot is free while
    ///   the call backs off.
    pub fn complete_with(&self, req: LlmRequest, options: CallOptions) -> LlmFuture<'_> {
        Box::pin(async move {
            let start = Instant::now();
            let budget = Budget {
                start,
                deadline: options
                    .deadline_from(start)
                    .unwrap_or(start + self.config.timeout),
            };
            let gate = options.gate.as_ref().or(self.gate.as_ref());
            let model = req
                .model
                .clone()
                .unwrap_or_else(|| self.config.model.clone());
            let sent = ChatRequest::new(&req, &model);
            let body = serde_json::to_vec(&sent)
                .map_err(|e| LlmError::Config(format!("cannot encode the request: {e}")))?;
            let tokens = sent.estimated_tokens();
            let record = CallRecord::new(&self.usage, &model);
            let backoff = Backoff {
                base: self.config.backoff_base,
                cap: self.config.backoff_cap,
            };
            let result = retry::run(
                backoff,
                &self.jitter,
                budget,
                gate.map(|g| &**g),
                || self.limiter.try_acquire(tokens, Instant::now()),
                || {
                    record.attempt();
                    self.attempt(&body, &sent, tokens)
                },
            )
            .await;
            match result {
                Ok(answer) => {
                    record.finish(Ending::Completed(answer.usage));
                    Ok(LlmResponse {
                        text: answer.text,
                        model: answer.model.unwrap_or(model.clone()),
                        usage: answer.usage,
                        latency: start.elapsed(),
                        finish_reason: answer.finish_reason,
                    })
                }
                Err(e) => {
                    record.finish(Ending::Failed);
                    Err(e)
                }
            }
        })
    }

    /// One HTTP attempt: send, read the whole answer, decode it.
    async fn attempt(
        &self,
        body: &[u8],
        sent: &ChatRequest<'_>,
        charged: u64,
    ) -> Result<wire::Answer, Failure> {
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        self.limiter.observe(&headers, Instant::now());
        let bytes = response.bytes().await.map_err(transport)?;
        if !(200..300).contains(&status) {
            return Err(retry::classify(status, &headers, &bytes, SystemTime::now()));
        }
        let answer = wire::decode_answer(&bytes, sent)?;
        let used = answer.usage.prompt_tokens + answer.usage.completion_tokens;
        self.limiter.settle(charged, used);
        Ok(answer)
    }
}

impl LlmProvider for OpenAiCompatible {
    fn name(&self) -> &str {
        "openai"
    }

    fn complete(&self, req: LlmRequest) -> LlmFuture<'_> {
        self.complete_with(req, CallOptions::default())
    }

    fn complete_with(&self, req: LlmRequest, options: CallOptions) -> LlmFuture<'_> {
        OpenAiCompatible::complete_with(self, req, options)
    }
}

/// A transport error with its causes: reqwest's own message says little on its own.
fn transport(e: reqwest::Error) -> Failure {
    Failure::from(LlmError::Transport(chain(&e)))
}

/// An error and its sources, `: `-separated, without repeats.
fn chain(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
