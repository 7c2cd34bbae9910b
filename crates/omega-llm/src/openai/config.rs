//! Configuration of the OpenAI-compatible provider: from the environment or built in code.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `OMEGA_LLM_BASE_URL` | the server's API root (the part before `/chat/completions`) | `OPENAI_BASE_URL` |
//! | `OPENAI_BASE_URL` | the same, as the OpenAI SDKs spell it | `https://api.openai.com/v1` |
//! | `OPENAI_API_KEY` | sent as `Authorization: Bearer …` | required, except for loopback servers |
//! | `OMEGA_LLM_MODEL` | the model asked for when a request names none | required |
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
    /// A call's overall deadline, retries and waits included, unless the call gives its own.
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
            .finish()
    }
}

impl OpenAiConfig {
    /// A configuration for `model` at `base_url`, no key, default timeouts and backoff
    /// (120 s per call, 10 s to connect, backoff from 250 ms up to 20 s), no client limits.
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
        }
    }

    /// Reads `OMEGA_LLM_BASE_URL`, `OPENAI_BASE_URL`, `OPENAI_API_KEY` and `OMEGA_LLM_MODEL`
    /// (see [`OpenAiConfig`]) and validates the result: a missing model, a missing key for a
    /// server not on loopback, or a bad URL is an [`LlmError::Config`] naming the variable.
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

    /// Checks the settings and returns the endpoint, `{base_url}/chat/completions`.
    ///
    /// Fails with [`LlmError::Config`] on a URL that is not `http(s)`, an empty model, a zero
    /// limit, or a missing key for a server that is not on a loopback address.
    pub fn validate(&self) -> Result<Url, LlmError> {
        let base = self.base_url.trim_end_matches('/');
        let url = Url::parse(&format!("{base}/chat/completions")).map_err(|e| {
            LlmError::Config(format!(
                "base URL {:?} is not a valid URL: {e}",
                self.base_url
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(LlmError::Config(format!(
                "base URL {:?} must start with http:// or https://",
                self.base_url
            )));
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
}
