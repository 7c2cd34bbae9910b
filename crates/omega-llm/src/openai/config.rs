//! Configuration of the OpenAI-compatible provider: from the environment or built in code.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `OMEGA_LLM_BASE_URL` | the server's API root (the part before `/chat/completions`) | `OPENAI_BASE_URL` |
//! | `OPENAI_BASE_URL` | the same, as the OpenAI SDKs spell it | `https://api.openai.com/v1` |
//! | `OPENAI_API_KEY` | sent as `Authorization: Bearer …` | required, except for loopback servers |
//! | `OMEGA_LLM_MODEL` | the model asked for when a request names none | required |
//! | `OMEGA_LLM_TIMEOUT` | a call's time limit in seconds, from its first request | 120 |
//! | `OMEGA_LLM_RPM` | client-side requests-per-minute limit | none |
//! | `OMEGA_LLM_TPM` | client-side tokens-per-minute limit | none |
//! | `OMEGA_LLM_MAX_RETRIES` | retries per call of requests that did not reach the model | 8 |
//! | `OMEGA_LLM_CONNECT_RETRIES` | retries per call when the server cannot be reached | 2 |
//! | `OMEGA_LLM_RETRY_SENT` | `1`: also retry requests that may have reached the model | off |
//!
//! Empty variables count as unset. A key is optional when the base URL's host is a loopback
//! address (`localhost`, `127.0.0.0/8`, `::1`): local servers such as llama.cpp, vLLM or
//! llmock usually need none. Every problem is reported by [`OpenAiConfig::from_env`] or
//! [`OpenAiCompatible::new`](crate::OpenAiCompatible::new), before any call is made.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;

use crate::types::LlmError;

/// The API root used when neither `OMEGA_LLM_BASE_URL` nor `OPENAI_BASE_URL` is set.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Settings of an [`OpenAiCompatible`](crate::OpenAiCompatible) provider.
///
/// [`from_env`](Self::from_env) reads:
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `OMEGA_LLM_BASE_URL` | the API root (the part before `/chat/completions`) | `OPENAI_BASE_URL` |
/// | `OPENAI_BASE_URL` | the same, as the OpenAI SDKs spell it | `https://api.openai.com/v1` |
/// | `OPENAI_API_KEY` | sent as `Authorization: Bearer …` | required, except for loopback servers |
/// | `OMEGA_LLM_MODEL` | the model asked for when a request names none | required |
/// | `OMEGA_LLM_TIMEOUT` | [`timeout`](Self::timeout), in seconds | 120 |
/// | `OMEGA_LLM_RPM` | [`requests_per_minute`](Self::requests_per_minute) | none |
/// | `OMEGA_LLM_TPM` | [`tokens_per_minute`](Self::tokens_per_minute) | none |
/// | `OMEGA_LLM_MAX_RETRIES` | [`max_retries`](Self::max_retries) | 8 |
/// | `OMEGA_LLM_CONNECT_RETRIES` | [`connect_retries`](Self::connect_retries) | 2 |
/// | `OMEGA_LLM_RETRY_SENT` | [`retry_sent`](Self::retry_sent): `1`/`true` or `0`/`false` | off |
///
/// Empty variables count as unset. The key may be left out when the base URL's host is a
/// loopback address (`localhost`, `127.0.0.0/8`, `::1`): local servers such as llama.cpp,
/// vLLM or llmock need none.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use omega_llm::OpenAiConfig;
///
/// let config = OpenAiConfig::new("http://127.0.0.1:8080/v1", "qwen2.5-7b-instruct")
///     .timeout(Duration::from_secs(60))
///     .requests_per_minute(120);
/// assert!(config.validate().is_ok(), "no key needed on loopback");
/// assert!(OpenAiConfig::new("https://api.openai.com/v1", "gpt-4o-mini").validate().is_err());
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct OpenAiConfig {
    /// The API root: requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    /// The bearer token; optional for loopback servers.
    pub api_key: Option<String>,
    /// The model asked for when a request names none.
    pub model: String,
    /// A call's time limit, retries and waits included, counted from when its first request
    /// is sent (time queued for a gate or rate-limit slot is not counted), unless the call
    /// gives its own.
    pub timeout: Duration,
    /// How long opening a connection may take (one attempt; a failure is retried).
    pub connect_timeout: Duration,
    /// The first backoff step: attempt `n` waits a random time in
    /// `0..=min(cap, base * 2^(n-1))` when the server gives no `Retry-After`.
    pub backoff_base: Duration,
    /// The largest backoff step.
    pub backoff_cap: Duration,
    /// Client-side requests-per-minute limit.
    pub requests_per_minute: Option<u32>,
    /// Client-side tokens-per-minute limit (prompt estimate plus `max_tokens`, corrected by
    /// the usage the server reports).
    pub tokens_per_minute: Option<u32>,
    /// Retries per call of requests that surely did not reach the model: 429, 408, 503 with
    /// `Retry-After`, a connection attempt that timed out (and, with
    /// [`retry_sent`](Self::retry_sent), of the others). The deadline still bounds them.
    pub max_retries: u32,
    /// Retries per call when the server cannot be reached at all (connection refused,
    /// unknown host, no route): a server that refuses connections is down, not busy, so
    /// the call gives up after this many quick retries instead of waiting out its deadline.
    pub connect_retries: u32,
    /// Also retry requests that may have reached the model: other 5xx answers, and a
    /// connection lost after the request was sent. Off by default, since a paid API may
    /// bill such a request twice.
    pub retry_sent: bool,
    /// The largest answer body read, in bytes (a larger one fails the call).
    pub max_response_bytes: usize,
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_cap", &self.backoff_cap)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("tokens_per_minute", &self.tokens_per_minute)
            .field("max_retries", &self.max_retries)
            .field("connect_retries", &self.connect_retries)
            .field("retry_sent", &self.retry_sent)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

impl OpenAiConfig {
    /// A configuration for `model` at `base_url`, no key, default timeouts and backoff
    /// (120 s per call, 10 s to connect, backoff from 250 ms up to 20 s, 8 retries, 2
    /// connect retries, sent requests not retried, answers up to 64 MiB), no client limits.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiConfig {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(20),
            requests_per_minute: None,
            tokens_per_minute: None,
            max_retries: 8,
            connect_retries: 2,
            retry_sent: false,
            max_response_bytes: 64 << 20,
        }
    }

    /// Reads the variables in the table of [`OpenAiConfig`] and validates the result: a
    /// missing model, a missing key for a server not on loopback, a bad URL or a malformed
    /// number is an [`LlmError::Config`] naming the variable.
    pub fn from_env() -> Result<Self, LlmError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), reading variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, LlmError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let (base_url, source) = match (var("OMEGA_LLM_BASE_URL"), var("OPENAI_BASE_URL")) {
            (Some(url), _) => (url, "OMEGA_LLM_BASE_URL"),
            (None, Some(url)) => (url, "OPENAI_BASE_URL"),
            (None, None) => (DEFAULT_BASE_URL.to_string(), "the default base URL"),
        };
        let Some(model) = var("OMEGA_LLM_MODEL") else {
            return Err(LlmError::Config(
                "OMEGA_LLM_MODEL is not set: name the model to call (e.g. gpt-4o-mini, or the \
                 model name your llama.cpp or vLLM server serves)"
                    .into(),
            ));
        };
        let mut config = OpenAiConfig::new(base_url.trim(), model.trim());
        config.api_key = var("OPENAI_API_KEY").map(|k| k.trim().to_string());
        let number = |name: &str| -> Result<Option<u32>, LlmError> {
            var(name)
                .map(|v| {
                    v.trim().parse::<u32>().map_err(|_| {
                        LlmError::Config(format!(
                            "{name} must be a whole number, not {:?}",
                            v.trim()
                        ))
                    })
                })
                .transpose()
        };
        if let Some(v) = var("OMEGA_LLM_TIMEOUT") {
            config.timeout = parse_seconds(&v).ok_or_else(|| {
                LlmError::Config(format!(
                    "OMEGA_LLM_TIMEOUT must be a positive number of seconds, not {:?}",
                    v.trim()
                ))
            })?;
        }
        config.requests_per_minute = number("OMEGA_LLM_RPM")?;
        config.tokens_per_minute = number("OMEGA_LLM_TPM")?;
        if let Some(n) = number("OMEGA_LLM_MAX_RETRIES")? {
            config.max_retries = n;
        }
        if let Some(n) = number("OMEGA_LLM_CONNECT_RETRIES")? {
            config.connect_retries = n;
        }
        if let Some(v) = var("OMEGA_LLM_RETRY_SENT") {
            config.retry_sent = match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                other => {
                    return Err(LlmError::Config(format!(
                        "OMEGA_LLM_RETRY_SENT must be 1 or 0 (true or false), not {other:?}"
                    )))
                }
            };
        }
        match config.validate() {
            Ok(_) => Ok(config),
            Err(LlmError::Config(m)) => Err(LlmError::Config(format!("{m} (from {source})"))),
            Err(e) => Err(e),
        }
    }

    /// Sets the bearer token.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets a call's overall deadline (retries and waits included).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how long opening a connection may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the backoff's first step and largest step.
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap.max(base);
        self
    }

    /// Limits requests per minute on the client side.
    pub fn requests_per_minute(mut self, rpm: u32) -> Self {
        self.requests_per_minute = Some(rpm);
        self
    }

    /// Limits tokens per minute on the client side.
    pub fn tokens_per_minute(mut self, tpm: u32) -> Self {
        self.tokens_per_minute = Some(tpm);
        self
    }

    /// Sets how many times a call retries requests that did not reach the model.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets how many times a call retries when the server cannot be reached.
    pub fn connect_retries(mut self, n: u32) -> Self {
        self.connect_retries = n;
        self
    }

    /// Also retries requests that may have reached the model (see the field).
    pub fn retry_sent(mut self, yes: bool) -> Self {
        self.retry_sent = yes;
        self
    }

    /// Sets the largest answer body read.
    pub fn max_response_bytes(mut self, n: usize) -> Self {
        self.max_response_bytes = n;
        self
    }

    /// Checks the settings and returns the endpoint, `{base_url}/chat/completions`.
    ///
    /// Fails with [`LlmError::Config`] on a URL that is not `http(s)` or names no host, an
    /// empty model, a zero limit or timeout, or a missing key for a server that is not on a
    /// loopback address.
    pub fn validate(&self) -> Result<Url, LlmError> {
        let base = self.base_url.trim_end_matches('/');
        let bad = |why: String| LlmError::Config(format!("base URL {:?} {why}", self.base_url));
        let parsed = Url::parse(base).map_err(|e| bad(format!("is not a valid URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("must start with http:// or https://".into()));
        }
        // `http:///v1` parses with host "v1"; a base URL must name its host right after `//`.
        let after_scheme = base.split_once("://").map_or("", |(_, rest)| rest);
        if after_scheme.is_empty() || after_scheme.starts_with('/') || parsed.host_str().is_none() {
            return Err(bad(
                "names no host (expected e.g. http://127.0.0.1:8080/v1)".into(),
            ));
        }
        let url = Url::parse(&format!("{base}/chat/completions"))
            .map_err(|e| bad(format!("is not a valid URL: {e}")))?;
        if self.timeout.is_zero() {
            return Err(LlmError::Config("the call timeout must be positive".into()));
        }
        if self.model.trim().is_empty() {
            return Err(LlmError::Config("the model name is empty".into()));
        }
        if self.requests_per_minute == Some(0) || self.tokens_per_minute == Some(0) {
            return Err(LlmError::Config(
                "requests and tokens per minute must be positive".into(),
            ));
        }
        let has_key = self.api_key.as_deref().is_some_and(|k| !k.is_empty());
        if !has_key && !is_loopback(&url) {
            return Err(LlmError::Config(format!(
                "OPENAI_API_KEY is not set: the server at {base} needs an API key (a key is \
                 optional only for servers on a loopback address, such as a local llama.cpp \
                 or vLLM)"
            )));
        }
        Ok(url)
    }
}

/// Seconds as written in a variable or flag (`90`, `2.5`), positive and finite.
pub(crate) fn parse_seconds(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    (secs.is_finite() && secs > 0.0 && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

/// True when the URL's host is `localhost` or a loopback IP address.
pub(crate) fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    fn config_error(r: Result<OpenAiConfig, LlmError>) -> String {
        match r {
            Err(LlmError::Config(m)) => m,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn base_url_precedence() {
        let c = OpenAiConfig::from_vars(vars(&[
            ("OMEGA_LLM_BASE_URL", "http://127.0.0.1:9/v1/"),
            ("OPENAI_BASE_URL", "http://other/v1"),
            ("OMEGA_LLM_MODEL", "m"),
        ]))
        .unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:9/v1/");
        assert_eq!(
            c.validate().unwrap().as_str(),
            "http://127.0.0.1:9/v1/chat/completions"
        );
        let c = OpenAiConfig::from_vars(vars(&[
            ("OMEGA_LLM_BASE_URL", " "),
            ("OPENAI_BASE_URL", "http://localhost:8000/v1"),
            ("OMEGA_LLM_MODEL", "m"),
        ]))
        .unwrap();
        assert_eq!(c.base_url, "http://localhost:8000/v1");
        let c = OpenAiConfig::from_vars(vars(&[
            ("OPENAI_API_KEY", "sk-1"),
            ("OMEGA_LLM_MODEL", "gpt-4o-mini"),
        ]))
        .unwrap();
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert_eq!(c.api_key.as_deref(), Some("sk-1"));
        assert_eq!(c.model, "gpt-4o-mini");
        assert!(!format!("{c:?}").contains("sk-1"), "the key is redacted");
    }

    #[test]
    fn missing_key_is_an_error_except_on_loopback() {
        let m = config_error(OpenAiConfig::from_vars(vars(&[("OMEGA_LLM_MODEL", "m")])));
        assert!(
            m.starts_with("OPENAI_API_KEY is not set: the server at https://api.openai.com/v1"),
            "{m}"
        );
        assert!(m.ends_with("(from the default base URL)"), "{m}");
        for url in [
            "http://localhost:8080/v1",
            "http://127.0.0.1:8080/v1",
            "http://127.1.2.3/v1",
            "http://[::1]:8000/v1",
        ] {
            OpenAiConfig::new(url, "m").validate().unwrap();
        }
        for url in [
            "http://10.0.0.1/v1",
            "http://example.com/v1",
            "http://[::2]/v1",
        ] {
            let e = OpenAiConfig::new(url, "m").validate().unwrap_err();
            assert_eq!(e.kind(), "config", "{url}");
        }
    }

    #[test]
    fn other_config_errors() {
        let m = config_error(OpenAiConfig::from_vars(vars(&[])));
        assert!(m.starts_with("OMEGA_LLM_MODEL is not set"), "{m}");
        let m = config_error(OpenAiConfig::from_vars(vars(&[
            ("OMEGA_LLM_BASE_URL", "not a url"),
            ("OMEGA_LLM_MODEL", "m"),
        ])));
        assert!(
            m.starts_with("base URL \"not a url\" is not a valid URL"),
            "{m}"
        );
        assert!(m.ends_with("(from OMEGA_LLM_BASE_URL)"), "{m}");
        let e = OpenAiConfig::new("ftp://localhost/v1", "m").validate();
        assert!(e.unwrap_err().to_string().contains("must start with http"));
        let e = OpenAiConfig::new("http://localhost/v1", "m")
            .requests_per_minute(0)
            .validate();
        assert!(e.is_err());
    }

    #[test]
    fn a_base_url_without_a_host_is_refused() {
        for url in ["http://", "http:///v1", "https://", "http://:8080/v1"] {
            let e = OpenAiConfig::new(url, "m")
                .api_key("k")
                .validate()
                .unwrap_err();
            assert_eq!(e.kind(), "config", "{url}");
            let m = e.to_string();
            assert!(
                m.contains("names no host") || m.contains("is not a valid URL"),
                "{url}: {m}"
            );
        }
        let m = config_error(OpenAiConfig::from_vars(vars(&[
            ("OMEGA_LLM_BASE_URL", "http://"),
            ("OPENAI_API_KEY", "sk-1"),
            ("OMEGA_LLM_MODEL", "m"),
        ])));
        assert!(m.ends_with("(from OMEGA_LLM_BASE_URL)"), "{m}");
    }

    #[test]
    fn knobs_from_the_environment() {
        let base = [
            ("OMEGA_LLM_BASE_URL", "http://127.0.0.1:9/v1"),
            ("OMEGA_LLM_MODEL", "m"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let all: Vec<(&str, &str)> = base.iter().chain(extra).copied().collect();
            OpenAiConfig::from_vars(vars(&all))
        };
        let c = with(&[]).unwrap();
        assert_eq!(c.timeout, Duration::from_secs(120));
        assert_eq!(
            (c.max_retries, c.connect_retries, c.retry_sent),
            (8, 2, false)
        );
        assert_eq!((c.requests_per_minute, c.tokens_per_minute), (None, None));
        let c = with(&[
            ("OMEGA_LLM_TIMEOUT", "2.5"),
            ("OMEGA_LLM_RPM", "60"),
            ("OMEGA_LLM_TPM", "90000"),
            ("OMEGA_LLM_MAX_RETRIES", "3"),
            ("OMEGA_LLM_CONNECT_RETRIES", "0"),
            ("OMEGA_LLM_RETRY_SENT", "true"),
        ])
        .unwrap();
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(
            (c.requests_per_minute, c.tokens_per_minute),
            (Some(60), Some(90000))
        );
        assert_eq!(
            (c.max_retries, c.connect_retries, c.retry_sent),
            (3, 0, true)
        );
        for (name, value, says) in [
            (
                "OMEGA_LLM_TIMEOUT",
                "soon",
                "OMEGA_LLM_TIMEOUT must be a positive number of seconds, not \"soon\"",
            ),
            (
                "OMEGA_LLM_TIMEOUT",
                "0",
                "OMEGA_LLM_TIMEOUT must be a positive number",
            ),
            (
                "OMEGA_LLM_RPM",
                "-1",
                "OMEGA_LLM_RPM must be a whole number, not \"-1\"",
            ),
            (
                "OMEGA_LLM_RPM",
                "0",
                "requests and tokens per minute must be positive",
            ),
            (
                "OMEGA_LLM_MAX_RETRIES",
                "x",
                "OMEGA_LLM_MAX_RETRIES must be a whole number",
            ),
            (
                "OMEGA_LLM_RETRY_SENT",
                "maybe",
                "OMEGA_LLM_RETRY_SENT must be 1 or 0",
            ),
        ] {
            let m = config_error(with(&[(name, value)]));
            assert!(m.starts_with(says), "{name}={value}: {m}");
        }
    }
}
