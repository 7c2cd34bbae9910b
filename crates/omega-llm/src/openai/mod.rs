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
//! | `streaming.rs` | streamed calls: the server-sent events read into an [`LlmStream`] |
//!
//! # A call
//!
//! [`OpenAiCompatible::complete_with`] builds the body once, then runs the retry loop
//! (`retry.rs`): per attempt it enters the gate (if any), takes a rate-limit slot, sends the
//! request and reads the whole answer, and leaves the gate. Every answer's headers feed the
//! rate limiter. The call ends with a completion, an error it may not or need not retry,
//! a spent retry budget, or at its deadline; its usage is added to
//! [`OpenAiCompatible::usage_by_model`]. A streamed call
//! ([`OpenAiCompatible::stream_with`]) runs the same loop up to the answer's status, then
//! reads the events as the caller asks for them, holding the gate slot to the end.

mod config;
mod ratelimit;
mod retry;
mod streaming;
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

use crate::activity::{Activity, Tracker};
use crate::gate::{AttemptGate, CallOptions};
use crate::provider::{LlmFuture, LlmProvider};
use crate::stream::LlmStream;
use crate::types::{LlmError, LlmRequest, LlmResponse};
use crate::usage::{CallRecord, Ending, Ledger, ModelUsage};
use ratelimit::RateLimiter;
use retry::{Admitted, Backoff, Call, Failure, Jitter, Policy, Retry};
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
///     .complete_with(LlmRequest::prompt("Say hi"), CallOptions::new().gate(pool.clone()))
///     .await?;
/// println!("{} ({} tokens)", answer.text, answer.usage.completion_tokens);
///
/// // The same, streamed: pieces of text as the model produces them.
/// let mut stream = llm.stream_with(LlmRequest::prompt("Tell a story"), CallOptions::new().gate(pool));
/// while let Some(piece) = stream.next().await {
///     print!("{}", piece?);
/// }
/// println!("\n{:?}", llm.usage_by_model());
/// # Ok(()) }
/// ```
///
/// # Retries, deadline and the gate
///
/// See [`complete_with`](Self::complete_with). A call with no time limit of its own ends
/// [`OpenAiConfig::timeout`] after its first request is sent.
///
/// # Cancellation safety
///
/// Dropping a call's future (or a stream before its end) drops the in-flight HTTP request
/// at once (its connection is closed, not returned to the pool, which tells a llama.cpp
/// server to stop generating a stream), drops the gate permit, and counts the call as
/// cancelled in [`usage_by_model`](Self::usage_by_model).
pub struct OpenAiCompatible {
    inner: Arc<Inner>,
    /// Entered by calls that bring no gate of their own.
    gate: Option<Arc<dyn AttemptGate>>,
}

/// What every call of a provider shares (streams keep a reference after the call returns).
struct Inner {
    config: OpenAiConfig,
    endpoint: Url,
    auth: Option<HeaderValue>,
    client: reqwest::Client,
    policy: Policy,
    limiter: RateLimiter,
    jitter: Jitter,
    usage: Arc<Ledger>,
    tracker: Arc<Tracker>,
}

impl fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("config", &self.inner.config)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

/// A request ready to send: its body, the model it asks for, its estimates and options.
struct Prepared {
    model: String,
    body: Vec<u8>,
    /// Prompt tokens, estimated, for servers that report no usage.
    prompt_estimate: u64,
    /// Tokens charged to the tokens-per-minute limit before sending.
    charged: u64,
    /// The caller's options (with the provider's gate when they bring none).
    options: CallOptions,
}

impl OpenAiCompatible {
    /// A provider configured from the environment (see [`OpenAiConfig::from_env`]).
    ///
    /// Fails with [`LlmError::Config`] on a missing model, a missing key for a server that
    /// is not on a loopback address, a bad URL or a malformed setting: before any call.
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
        let policy = Policy {
            backoff: Backoff {
                base: config.backoff_base,
                cap: config.backoff_cap,
            },
            max_retries: config.max_retries,
            connect_retries: config.connect_retries,
            retry_sent: config.retry_sent,
        };
        Ok(OpenAiCompatible {
            inner: Arc::new(Inner {
                config,
                endpoint,
                auth,
                client,
                policy,
                limiter,
                jitter: Jitter::new(),
                usage: Arc::default(),
                tracker: Arc::default(),
            }),
            gate: None,
        })
    }

    /// Enters `gate` around each attempt of calls that bring no gate of their own (through
    /// [`CallOptions::gate`]), including plain [`LlmProvider::complete`] calls.
    pub fn with_gate(mut self, gate: Arc<dyn AttemptGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// `options` with the provider's gate when they bring none.
    fn with_default_gate(&self, mut options: CallOptions) -> CallOptions {
        if options.gate.is_none() {
            options.gate = self.gate.clone();
        }
        options
    }

    /// The configuration in use.
    pub fn config(&self) -> &OpenAiConfig {
        &self.inner.config
    }

    /// Calls, attempts and tokens so far, per requested model name (the configured model
    /// for requests that name none), streamed calls included.
    pub fn usage_by_model(&self) -> BTreeMap<String, ModelUsage> {
        self.inner.usage.snapshot()
    }

    /// Calls queued, requests on the wire (and the most ever at once), calls backing off,
    /// and the last retry decided.
    pub fn activity(&self) -> Activity {
        self.inner.tracker.snapshot()
    }

    /// Completes `req` under `options`.
    ///
    /// * **Time**: the call's time limit (`options`' timeout, else
    ///   [`OpenAiConfig::timeout`]) starts when its first request is sent, and bounds its
    ///   attempts and backoff; an attempt still running then is dropped and the call fails
    ///   with [`LlmError::Timeout`]. Time queued for a gate slot or a client-side rate-limit
    ///   slot is bounded only by [`CallOptions::queue_timeout`] and
    ///   [`CallOptions::deadline`] ([`LlmError::QueueTimeout`] says what it waited for),
    ///   and of course by the calling task's own timeout.
    /// * **Retries**: requests that surely did not reach the model (429, 408, 503 with
    ///   `Retry-After`, a connection attempt that timed out) are retried up to
    ///   [`OpenAiConfig::max_retries`] times; a server that cannot be reached (connection
    ///   refused, unknown host, or a connection reset before any answer, as a dead server's
    ///   kept-alive connections are) only [`OpenAiConfig::connect_retries`] times, quickly,
    ///   then the call fails with [`LlmError::Connect`]; other 5xx and connections lost
    ///   or closed after sending only with [`OpenAiConfig::retry_sent`]; other 4xx and
    ///   undecodable answers never. Waits follow `retry-after-ms`, else `Retry-After`,
    ///   else full-jitter exponential backoff ([`OpenAiConfig::backoff`]). Every retry is
    ///   logged (`tracing`, target `omega_llm`) and shown in [`activity`](Self::activity).
    ///   Errors say what happened, how many attempts were made and why the call stopped:
    ///   `server error 503: overloaded (after 4 attempts over 2.1s; gave up after 3
    ///   retries)`.
    /// * **Gate**: `options.gate`, else the provider's [`with_gate`](Self::with_gate), is
    ///   entered for each attempt and left before any wait, so a pool slot is free while
    ///   the call backs off.
    pub fn complete_with(&self, req: LlmRequest, options: CallOptions) -> LlmFuture<'static> {
        let (inner, options) = (self.inner.clone(), self.with_default_gate(options));
        Box::pin(async move {
            let start = Instant::now();
            let call = inner.prepare(&req, options, false)?;
            let record = CallRecord::new(inner.usage.clone(), call.model.clone());
            let result = inner
                .run(&call, start, || {
                    record.attempt();
                    inner.attempt_whole(&call)
                })
                .await;
            match result {
                Ok(Admitted {
                    value: answer,
                    hold,
                    sent,
                    ..
                }) => {
                    drop(hold);
                    record.finish(Ending::Completed(answer.usage));
                    Ok(LlmResponse {
                        text: answer.text,
                        model: answer.model.unwrap_or(call.model),
                        usage: answer.usage,
                        latency: sent.elapsed(),
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

    /// Streams `req`'s reply under `options`: the request goes out (with the same
    /// admission, retries, gate and time limit as [`complete_with`](Self::complete_with))
    /// when the stream is first polled; once the server has answered 200, pieces of text
    /// come as the server sends them (`"stream": true`, server-sent events), and nothing is
    /// retried any more. The gate slot is held until the stream ends or is dropped; the
    /// call's deadline bounds the whole stream. A server that ignores `"stream": true` and
    /// answers with a whole completion gives one piece.
    ///
    /// Usage is the server's when it sends it (`stream_options.include_usage`), else
    /// estimated: the prompt's words and one token per piece.
    pub fn stream_with(&self, req: LlmRequest, options: CallOptions) -> LlmStream {
        streaming::stream(self.inner.clone(), req, self.with_default_gate(options))
    }
}

impl Inner {
    fn prepare(
        &self,
        req: &LlmRequest,
        options: CallOptions,
        stream: bool,
    ) -> Result<Prepared, LlmError> {
        let model = req
            .model
            .clone()
            .unwrap_or_else(|| self.config.model.clone());
        let sent = ChatRequest::new(req, &model, stream);
        let body = serde_json::to_vec(&sent)
            .map_err(|e| LlmError::Config(format!("cannot encode the request: {e}")))?;
        let (prompt_estimate, charged) = (sent.estimated_prompt_tokens(), sent.estimated_tokens());
        Ok(Prepared {
            model,
            body,
            prompt_estimate,
            charged,
            options,
        })
    }

    /// The retry loop over `attempt` for `call` (see `retry.rs`).
    async fn run<T, F>(
        &self,
        call: &Prepared,
        start: Instant,
        attempt: impl FnMut() -> F,
    ) -> Result<Admitted<T>, LlmError>
    where
        F: std::future::Future<Output = Result<T, Failure>>,
    {
        retry::run(
            &self.policy,
            &self.jitter,
            &self.tracker,
            Call {
                label: &call.model,
                start,
                options: &call.options,
                default_timeout: self.config.timeout,
            },
            || self.limiter.try_acquire(call.charged, Instant::now()),
            attempt,
        )
        .await
    }

    /// Sends the request; returns the answer once its status is 2xx (the body unread), or
    /// the failure a non-2xx answer means.
    async fn send(&self, call: &Prepared) -> Result<reqwest::Response, Failure> {
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(call.body.clone());
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| self.transport(e, Phase::Sending))?;
        self.limiter.observe(response.headers(), Instant::now());
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = self.read_body(&mut response).await?;
        let mut failure = retry::classify(status, &headers, &body, SystemTime::now());
        if status == 404 {
            // Name the URL: a wrong base URL shows up as a bare "Not Found".
            if let LlmError::BadRequest { message, .. } = &mut failure.error {
                let hint = if self.endpoint.path().contains("/v1/") {
                    ""
                } else {
                    ": is the base URL right? OpenAI-compatible servers usually serve the API \
                     under /v1"
                };
                message.push_str(&format!(" (POST {}{hint})", self.endpoint));
            }
        }
        Err(failure)
    }

    /// One HTTP attempt of a whole (not streamed) call: send, read the answer, decode it.
    async fn attempt_whole(&self, call: &Prepared) -> Result<wire::Answer, Failure> {
        let mut response = self.send(call).await?;
        let body = self.read_body(&mut response).await?;
        let answer = wire::decode_answer(&body, call.prompt_estimate).map_err(Failure::fatal)?;
        let used = answer.usage.prompt_tokens + answer.usage.completion_tokens;
        self.limiter.settle(call.charged, used);
        Ok(answer)
    }

    /// Reads a whole body, up to [`OpenAiConfig::max_response_bytes`].
    async fn read_body(&self, response: &mut reqwest::Response) -> Result<Vec<u8>, Failure> {
        let max = self.config.max_response_bytes;
        let mut body = Vec::new();
        while let Some(piece) = response
            .chunk()
            .await
            .map_err(|e| self.transport(e, Phase::Reading))?
        {
            if body.len() + piece.len() > max {
                return Err(Failure::fatal(LlmError::InvalidResponse(format!(
                    "the answer is larger than {max} bytes (OpenAiConfig::max_response_bytes)"
                ))));
            }
            body.extend_from_slice(&piece);
        }
        Ok(body)
    }

    /// A transport error, classified by whether the request can have reached the model.
    fn transport(&self, e: reqwest::Error, phase: Phase) -> Failure {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, TimedOut};
        let text = chain(&e);
        // Without reqwest's "error sending request for url (…)": the URL is said once.
        let causes = causes(&e)[1..].join(": ");
        if e.is_connect() && (e.is_timeout() || has_io_kind(&e, &[TimedOut])) {
            // Slow to accept: busy or far, not down.
            return Failure::new(
                LlmError::Transport(format!(
                    "{}: connecting timed out after {}: {causes}",
                    self.endpoint,
                    crate::types::human_duration(self.config.connect_timeout)
                )),
                Retry::Unsent,
            );
        }
        // Refused, unknown host, no route; or a connection reset before any answer (a
        // kept-alive connection the server dropped, or a server that died): the server
        // is not there to run the request.
        let reset_unanswered =
            phase == Phase::Sending && has_io_kind(&e, &[ConnectionReset, ConnectionAborted]);
        if e.is_connect() || reset_unanswered {
            return Failure::new(
                LlmError::Connect(format!("{}: {causes}", self.endpoint)),
                Retry::Down,
            );
        }
        Failure::new(LlmError::Transport(text), Retry::Sent)
    }
}

/// Where in an attempt a transport error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before any byte of the answer.
    Sending,
    /// Reading the answer's body.
    Reading,
}

impl LlmProvider for OpenAiCompatible {
    fn name(&self) -> &str {
        "openai"
    }

    fn default_model(&self) -> &str {
        &self.inner.config.model
    }

    fn activity(&self) -> Activity {
        OpenAiCompatible::activity(self)
    }

    fn complete(&self, req: LlmRequest) -> LlmFuture<'_> {
        self.complete_with(req, CallOptions::default())
    }

    fn complete_with(&self, req: LlmRequest, options: CallOptions) -> LlmFuture<'_> {
        OpenAiCompatible::complete_with(self, req, options)
    }

    fn stream_with(self: Arc<Self>, req: LlmRequest, options: CallOptions) -> LlmStream {
        OpenAiCompatible::stream_with(&self, req, options)
    }
}

/// True if one of `e`'s causes is an I/O error of one of `kinds`.
fn has_io_kind(e: &reqwest::Error, kinds: &[std::io::ErrorKind]) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| kinds.contains(&io.kind()))
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// An error and its sources, `: `-separated, without repeats.
fn chain(e: &reqwest::Error) -> String {
    causes(e).join(": ")
}

/// An error's message and its sources' (without repeats, nor hyper's bare
/// `client error (Connect)` labels).
fn causes(e: &reqwest::Error) -> Vec<String> {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.starts_with("client error (") && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts
}
