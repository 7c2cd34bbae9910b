//! The mock provider: deterministic answers with no network (SPEC §5).
//!
//! By default it answers `echo: <prompt>` at once. It can wait a fixed latency (on tokio's
//! clock, so paused-clock tests are exact), answer from a JSON file of scripted replies, and
//! fail a seeded fraction of calls.
//!
//! # Replies file
//!
//! A JSON array of rules (or an object `{"rules": [...]}`); the first rule whose `contains`
//! is a substring of the prompt (or that has no `contains`) decides the answer:
//!
//! ```json
//! [
//!   {"contains": "capital of France", "reply": "Paris"},
//!   {"contains": "slow", "reply": "eventually", "latency_ms": 500},
//!   {"contains": "broken", "error": "server", "message": "model overloaded"},
//!   {"reply": "I was asked: {prompt}"}
//! ]
//! ```
//!
//! `reply` may use `{prompt}`; `error` is one of `rate-limited`, `timeout`, `connect`,
//! `transport`, `server`, `bad-request`, `invalid-response`. Prompts no rule matches get the
//! echo. Streamed calls ([`LlmProvider::stream_with`]) get the same answer word by word.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;

use crate::gate::CallOptions;
use crate::provider::{bounded, enter_whole_call, LlmFuture, LlmProvider};
use crate::stream::{LlmStream, StreamEvent};
use crate::types::{estimate_tokens, LlmError, LlmRequest, LlmResponse, Usage};

/// One scripted reply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Matches prompts containing this text; absent matches every prompt.
    #[serde(default)]
    pub contains: Option<String>,
    /// The answer; `{prompt}` is replaced by the prompt.
    #[serde(default)]
    pub reply: Option<String>,
    /// Latency for this rule, overriding the provider's.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Fail with this error kind instead of answering.
    #[serde(default)]
    pub error: Option<String>,
    /// The error's message.
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RulesFile {
    List(Vec<Rule>),
    Object { rules: Vec<Rule> },
}

/// A deterministic provider for tests, examples and `omega run --llm mock`.
///
/// ```
/// use omega_llm::{LlmProvider, LlmRequest, MockProvider};
///
/// let mock = MockProvider::new();
/// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// let r = rt.block_on(mock.complete(LlmRequest::prompt("hello"))).unwrap();
/// assert_eq!(r.text, "echo: hello");
/// ```
#[derive(Debug, Default)]
pub struct MockProvider {
    latency: Duration,
    rules: Vec<Rule>,
    failure_rate: f64,
    seed: u64,
    calls: AtomicU64,
}

/// SplitMix64: a tiny, well-distributed hash of the call number for seeded failures.
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl MockProvider {
    /// Echoes at once, never fails.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits `latency` before each answer.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Answers from these rules (see the module docs).
    pub fn rules(mut self, rules: Vec<Rule>) -> Self {
        self.rules = rules;
        self
    }

    /// Answers from a replies file (see the module docs).
    pub fn replies_file(self, path: &Path) -> Result<Self, LlmError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            LlmError::Config(format!("cannot read replies file {}: {e}", path.display()))
        })?;
        self.replies_json(&text)
            .map_err(|e| LlmError::Config(format!("{}: {e}", path.display())))
    }

    /// Answers from replies given as JSON text (see the module docs).
    pub fn replies_json(self, json: &str) -> Result<Self, String> {
        let rules = match serde_json::from_str::<RulesFile>(json) {
            Ok(RulesFile::List(r)) | Ok(RulesFile::Object { rules: r }) => r,
            Err(e) => {
                return Err(format!(
                    "replies must be a JSON array of rules like {{\"contains\": \"..\", \"reply\": \"..\"}}: {e}"
                ))
            }
        };
        for (i, r) in rules.iter().enumerate() {
            if let Some(kind) = &r.error {
                if LlmError::from_kind(kind, "").is_none() {
                    return Err(format!("rule {i}: unknown error kind {kind:?}"));
                }
            }
        }
        Ok(self.rules(rules))
    }

    /// Fails a `rate` fraction (0.0..=1.0) of calls with a 503, chosen by `seed` and the
    /// call's number, so a run is reproducible.
    pub fn failure_rate(mut self, rate: f64, seed: u64) -> Self {
        self.failure_rate = rate.clamp(0.0, 1.0);
        self.seed = seed;
        self
    }

    /// Calls answered or failed so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn rule_for(&self, prompt: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.contains.as_deref().is_none_or(|c| prompt.contains(c)))
    }
}

impl MockProvider {
    /// Decides a call's answer (or error) and how long it takes, counting the call.
    fn plan(&self, req: &LlmRequest) -> (Duration, Result<LlmResponse, LlmError>) {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let prompt = req.last_user_text().to_string();
        let rule = self.rule_for(&prompt).cloned().unwrap_or_default();
        let latency = rule.latency_ms.map_or(self.latency, Duration::from_millis);
        if self.failure_rate > 0.0 {
            let draw = splitmix64(self.seed ^ n) as f64 / u64::MAX as f64;
            if draw < self.failure_rate {
                let e = LlmError::Server {
                    status: 503,
                    message: format!("mock failure (call {n}, seed {})", self.seed),
                };
                return (latency, Err(e));
            }
        }
        if let Some(kind) = &rule.error {
            let message = rule.message.as_deref().unwrap_or("scripted failure");
            if let Some(e) = LlmError::from_kind(kind, message) {
                return (latency, Err(e));
            }
        }
        let mut text = match &rule.reply {
            Some(r) => r.replace("{prompt}", &prompt),
            None => format!("echo: {prompt}"),
        };
        if let Some(max) = req.max_tokens {
            let words: Vec<&str> = text.split_whitespace().collect();
            if words.len() > max as usize {
                text = words[..max as usize].join(" ");
            }
        }
        let prompt_tokens = req
            .messages
            .iter()
            .map(|m| estimate_tokens(&m.content))
            .sum::<u64>()
            + req.system.as_deref().map_or(0, estimate_tokens);
        let response = LlmResponse {
            usage: Usage {
                prompt_tokens,
                completion_tokens: estimate_tokens(&text),
            },
            text,
            model: req.model.clone().unwrap_or_else(|| "mock".into()),
            latency,
            finish_reason: "stop".into(),
        };
        (latency, Ok(response))
    }
}

impl LlmProvider for MockProvider {
    fn name(&self) -> &str {
        "mock"
    }

    fn complete(&self, req: LlmRequest) -> LlmFuture<'_> {
        Box::pin(async move {
            let (latency, answer) = self.plan(&req);
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            answer
        })
    }

    /// Streams the reply word by word (each piece keeps its trailing space): the first
    /// piece after the latency, the others right after it. The gate is held, and the
    /// deadline runs, as in [`complete_with`](LlmProvider::complete_with).
    fn stream_with(self: Arc<Self>, req: LlmRequest, options: CallOptions) -> LlmStream {
        let (latency, answer) = self.plan(&req);
        let events = async move {
            let (permit, deadline, sent) = enter_whole_call(&options).await?;
            bounded(deadline, sent, async {
                if !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
                Ok(())
            })
            .await?;
            let response = answer?;
            let mut events: Vec<Result<StreamEvent, LlmError>> = response
                .text
                .split_inclusive(' ')
                .map(|piece| Ok(StreamEvent::Delta(piece.to_string())))
                .collect();
            events.push(Ok(StreamEvent::Done(response)));
            Ok::<_, LlmError>((permit, events))
        };
        LlmStream::new(futures::stream::once(events).flat_map(|r| {
            match r {
                // The permit is held until the stream is dropped (at its end, or abandoned).
                Ok((permit, events)) => futures::stream::iter(events)
                    .map(move |e| {
                        let _held = &permit;
                        e
                    })
                    .left_stream(),
                Err(e) => futures::stream::iter(vec![Err(e)]).right_stream(),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn echoes_after_its_latency() {
        let mock = MockProvider::new().latency(Duration::from_millis(20));
        let t0 = Instant::now();
        let mut req = LlmRequest::prompt("hello world");
        req.model = Some("m1".into());
        let r = mock.complete(req).await.unwrap();
        assert_eq!(r.text, "echo: hello world");
        assert_eq!(r.model, "m1");
        assert_eq!(r.latency, Duration::from_millis(20));
        assert_eq!(t0.elapsed(), Duration::from_millis(20));
        assert_eq!(
            r.usage,
            Usage {
                prompt_tokens: 2,
                completion_tokens: 3
            }
        );
        assert_eq!(mock.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn scripted_rules_first_match_wins() {
        let mock = MockProvider::new()
            .replies_json(
                r#"[{"contains": "France", "reply": "Paris"},
                    {"contains": "slow", "reply": "late", "latency_ms": 300},
                    {"contains": "broken", "error": "rate-limited", "message": "easy"},
                    {"contains": "sum", "reply": "summary of {prompt}"}]"#,
            )
            .unwrap();
        let ask = |p: &str| mock.complete(LlmRequest::prompt(p));
        assert_eq!(ask("capital of France?").await.unwrap().text, "Paris");
        let t0 = Instant::now();
        assert_eq!(ask("slow one").await.unwrap().text, "late");
        assert_eq!(t0.elapsed(), Duration::from_millis(300));
        assert_eq!(
            ask("broken").await.unwrap_err().to_string(),
            "rate limited: easy"
        );
        assert_eq!(ask("sum it").await.unwrap().text, "summary of sum it");
        assert_eq!(ask("other").await.unwrap().text, "echo: other");
    }

    #[test]
    fn bad_replies_are_clear_errors() {
        let e = MockProvider::new().replies_json("{").unwrap_err();
        assert!(e.starts_with("replies must be a JSON array"), "{e}");
        let e = MockProvider::new()
            .replies_json(r#"[{"error": "kaboom"}]"#)
            .unwrap_err();
        assert_eq!(e, "rule 0: unknown error kind \"kaboom\"");
        let e = MockProvider::new()
            .replies_file(Path::new("/nonexistent/replies.json"))
            .unwrap_err();
        assert!(e.to_string().starts_with(
            "LLM configuration error: cannot read replies file /nonexistent/replies.json"
        ));
    }

    #[tokio::test]
    async fn seeded_failures_are_reproducible_and_near_the_rate() {
        async fn run(seed: u64) -> Vec<bool> {
            let mock = MockProvider::new().failure_rate(0.25, seed);
            let mut out = Vec::new();
            for _ in 0..400 {
                out.push(mock.complete(LlmRequest::prompt("x")).await.is_err());
            }
            out
        }
        let a = run(7).await;
        assert_eq!(a, run(7).await, "same seed, same failures");
        assert_ne!(a, run(8).await);
        let failures = a.iter().filter(|f| **f).count();
        assert!(
            (70..=130).contains(&failures),
            "{failures} of 400 at rate 0.25"
        );
    }

    #[tokio::test]
    async fn max_tokens_truncates_the_reply() {
        let mock = MockProvider::new();
        let mut req = LlmRequest::prompt("a b c d e");
        req.max_tokens = Some(3);
        let r = mock.complete(req).await.unwrap();
        assert_eq!(r.text, "echo: a b");
        assert_eq!(r.usage.completion_tokens, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn streams_word_by_word_holding_the_gate_to_the_end() {
        let mock = Arc::new(MockProvider::new().latency(Duration::from_millis(40)));
        let pool = Arc::new(tokio::sync::Semaphore::new(1));
        let t0 = Instant::now();
        let mut s = mock.clone().stream_with(
            LlmRequest::prompt("x y"),
            CallOptions::new().gate(pool.clone()),
        );
        assert_eq!(
            pool.available_permits(),
            1,
            "nothing happens before the first poll"
        );
        assert_eq!(s.next().await, Some(Ok("echo: ".to_string())));
        assert_eq!(t0.elapsed(), Duration::from_millis(40));
        assert_eq!(pool.available_permits(), 0, "held while pieces remain");
        assert_eq!(s.next().await, Some(Ok("x ".to_string())));
        assert_eq!(s.next().await, Some(Ok("y".to_string())));
        assert_eq!(s.next().await, None);
        assert_eq!(pool.available_permits(), 1);
        let r = s.response().unwrap();
        assert_eq!(
            (r.text.as_str(), r.usage.completion_tokens),
            ("echo: x y", 3)
        );

        let s = mock.clone().stream_with(
            LlmRequest::prompt("late"),
            CallOptions::new().timeout(Duration::from_millis(10)),
        );
        assert_eq!(
            s.collect().await,
            Err(LlmError::Timeout {
                after: Duration::from_millis(10)
            })
        );
        let failing = Arc::new(
            MockProvider::new()
                .replies_json(r#"[{"error": "connect", "message": "down"}]"#)
                .unwrap(),
        );
        let mut s = failing.stream_with(LlmRequest::prompt("x"), CallOptions::new());
        assert_eq!(s.next().await, Some(Err(LlmError::Connect("down".into()))));
        assert_eq!(s.next().await, None);
    }
}
