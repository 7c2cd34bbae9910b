//! Client-side rate limits: requests and tokens per minute, as token buckets.
//!
//! # Implementation details
//!
//! Each dimension (requests, tokens) has up to two continuously refilling buckets:
//!
//! * the **client** bucket, from [`OpenAiConfig`](crate::OpenAiConfig)'s
//!   `requests_per_minute` / `tokens_per_minute`: capacity `N`, refilled at `N / 60` per
//!   second, full at start;
//! * the **server** bucket, learnt from the `x-ratelimit-*` headers of every answer (2xx or
//!   not): capacity `x-ratelimit-limit-*`, level `x-ratelimit-remaining-*`, refilled at
//!   `(limit - remaining) / x-ratelimit-reset-*` per second — OpenAI's reset is the time
//!   until the bucket is full again, and it refills continuously.
//!
//! A request may go when every bucket holds one request and its estimated tokens; sending
//! takes them. Otherwise the caller is told how long until they all will.
//!
//! # Invariants
//!
//! 1. Header observations only ever lower a server bucket's level (`min(level, remaining)`):
//!    the server counted the request when it admitted it, while we already deducted every
//!    request sent since, so our own count is the more current one unless the server says
//!    less is left.
//! 2. A request never needs more than a bucket's capacity (it is clamped), so a huge prompt
//!    waits for a full bucket instead of forever.
//! 3. Token charges are settled when the server reports real usage: the difference between
//!    the estimate and the real count is taken or given back.
//!
//! The mutex is held only for arithmetic, never across an await.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::HeaderMap;
use tokio::time::Instant;

use crate::openai::retry::Paced;

/// A continuously refilling bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Bucket {
    capacity: f64,
    /// Units per second.
    rate: f64,
    level: f64,
    updated: Instant,
}

impl Bucket {
    fn per_minute(n: u32, now: Instant) -> Self {
        let n = f64::from(n);
        Bucket {
            capacity: n,
            rate: n / 60.0,
            level: n,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.level = (self.level + elapsed * self.rate).min(self.capacity);
        self.updated = self.updated.max(now);
    }

    /// How long until `amount` (clamped to the capacity, invariant 2) is available.
    fn wait_for(&self, amount: f64) -> Duration {
        let missing = amount.min(self.capacity) - self.level;
        if missing <= 0.0 {
            Duration::ZERO
        } else if self.rate <= 0.0 {
            Duration::from_secs(60)
        } else {
            Duration::from_secs_f64((missing / self.rate).min(3600.0))
        }
    }

    fn take(&mut self, amount: f64) {
        self.level -= amount.min(self.capacity);
    }
}

/// The buckets of one dimension.
#[derive(Debug, Default)]
struct Dimension {
    client: Option<Bucket>,
    server: Option<Bucket>,
}

impl Dimension {
    fn buckets(&mut self) -> impl Iterator<Item = &mut Bucket> {
        self.client.iter_mut().chain(self.server.iter_mut())
    }

    fn wait_for(&mut self, amount: f64, now: Instant) -> Duration {
        self.buckets()
            .map(|b| {
                b.refill(now);
                b.wait_for(amount)
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }

    fn take(&mut self, amount: f64) {
        self.buckets().for_each(|b| b.take(amount));
    }

    /// Updates the server bucket from `limit`, `remaining` and `reset` headers.
    fn observe(
        &mut self,
        limit: Option<f64>,
        remaining: f64,
        reset: Option<Duration>,
        now: Instant,
    ) {
        let capacity = limit
            .or(self.server.map(|b| b.capacity))
            .unwrap_or(remaining)
            .max(remaining)
            .max(1.0);
        let used = capacity - remaining;
        let rate = match reset {
            Some(r) if r > Duration::ZERO && used > 0.0 => used / r.as_secs_f64(),
            _ => capacity / 60.0,
        };
        match &mut self.server {
            Some(b) => {
                b.refill(now);
                b.capacity = capacity;
                b.rate = rate;
                b.level = b.level.min(remaining); // invariant 1
            }
            None => {
                self.server = Some(Bucket {
                    capacity,
                    rate,
                    level: remaining,
                    updated: now,
                })
            }
        }
    }
}

/// Requests-per-minute and tokens-per-minute limits of one provider.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    state: Mutex<[Dimension; 2]>,
}

const REQUESTS: usize = 0;
const TOKENS: usize = 1;

impl RateLimiter {
    /// Limits from the configuration (either may be absent); server limits are learnt.
    pub(crate) fn new(rpm: Option<u32>, tpm: Option<u32>, now: Instant) -> Self {
        let dim = |n: Option<u32>| Dimension {
            client: n.map(|n| Bucket::per_minute(n, now)),
            server: None,
        };
        RateLimiter {
            state: Mutex::new([dim(rpm), dim(tpm)]),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [Dimension; 2]> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one request and `tokens` tokens if every bucket has them; else says how long
    /// to wait (and takes nothing).
    pub(crate) fn try_acquire(&self, tokens: u64, now: Instant) -> Result<(), Paced> {
        let mut dims = self.lock();
        let tokens = tokens as f64;
        let wait_requests = dims[REQUESTS].wait_for(1.0, now);
        let wait_tokens = dims[TOKENS].wait_for(tokens, now);
        if wait_requests.is_zero() && wait_tokens.is_zero() {
            dims[REQUESTS].take(1.0);
            dims[TOKENS].take(tokens);
            return Ok(());
        }
        Err(if wait_requests >= wait_tokens {
            Paced {
                wait: wait_requests,
                limit: "requests",
            }
        } else {
            Paced {
                wait: wait_tokens,
                limit: "tokens",
            }
        })
    }

    /// Corrects a token charge once the real count is known (invariant 3).
    pub(crate) fn settle(&self, charged: u64, actual: u64) {
        let mut dims = self.lock();
        let delta = actual as f64 - charged as f64;
        for b in dims[TOKENS].buckets() {
            b.level = (b.level - delta).min(b.capacity);
        }
    }

    /// Learns the server's limits from an answer's `x-ratelimit-*` headers.
    pub(crate) fn observe(&self, headers: &HeaderMap, now: Instant) {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let number = |name: &str| {
            header(name)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
        };
        let mut dims = self.lock();
        for (i, kind) in [(REQUESTS, "requests"), (TOKENS, "tokens")] {
            let Some(remaining) = number(&format!("x-ratelimit-remaining-{kind}")) else {
                continue;
            };
            let limit = number(&format!("x-ratelimit-limit-{kind}"));
            let reset = header(&format!("x-ratelimit-reset-{kind}")).and_then(parse_reset);
            dims[i].observe(limit, remaining, reset, now);
        }
    }
}

/// Parses a reset header: Go-style durations as OpenAI sends them (`20ms`, `1s`, `6m0s`,
/// `1h2m3.5s`) or a bare number of seconds.
pub(crate) fn parse_reset(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let mut total = 0.0;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|i| *i > 0)?;
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    (!value.is_empty()).then(|| Duration::from_secs_f64(total.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn reset_formats() {
        assert_eq!(parse_reset("20ms"), Some(20 * MS));
        assert_eq!(parse_reset("1s"), Some(1000 * MS));
        assert_eq!(parse_reset("59.5s"), Some(59_500 * MS));
        assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_reset("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_reset("2.5"), Some(2500 * MS));
        assert_eq!(parse_reset(""), None);
        assert_eq!(parse_reset("soon"), None);
        assert_eq!(parse_reset("5x"), None);
    }

    #[test]
    fn client_rpm_spaces_requests_out() {
        let t0 = Instant::now();
        let rl = RateLimiter::new(Some(60), None, t0);
        for _ in 0..60 {
            rl.try_acquire(0, t0).unwrap();
        }
        assert_eq!(
            rl.try_acquire(0, t0),
            Err(Paced {
                wait: Duration::from_secs(1),
                limit: "requests"
            })
        );
        let later = t0 + Duration::from_millis(500);
        assert_eq!(rl.try_acquire(0, later).unwrap_err().wait, 500 * MS);
        rl.try_acquire(0, t0 + Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn client_tpm_clamps_and_settles() {
        let t0 = Instant::now();
        let rl = RateLimiter::new(None, Some(600), t0);
        rl.try_acquire(500, t0).unwrap();
        let e = rl.try_acquire(200, t0).unwrap_err();
        assert_eq!(e.limit, "tokens");
        assert_eq!(
            e.wait,
            Duration::from_secs(10),
            "100 missing at 10 tokens/s"
        );
        rl.settle(500, 300); // the server said 300: 200 come back
        rl.try_acquire(200, t0).unwrap();
        // A request bigger than the whole bucket waits for a full bucket, not forever.
        let e = rl.try_acquire(10_000, t0).unwrap_err();
        assert_eq!(e.wait, Duration::from_secs(50), "500 missing of a full 600");
    }

    #[test]
    fn server_headers_pace_requests() {
        let t0 = Instant::now();
        let rl = RateLimiter::new(None, None, t0);
        rl.try_acquire(10, t0).unwrap();
        rl.observe(
            &headers(&[
                ("x-ratelimit-limit-requests", "60"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", "60s"),
                ("x-ratelimit-limit-tokens", "1000"),
                ("x-ratelimit-remaining-tokens", "990"),
                ("x-ratelimit-reset-tokens", "600ms"),
            ]),
            t0,
        );
        // 60 used, full again in 60 s: one request per second.
        assert_eq!(
            rl.try_acquire(1, t0),
            Err(Paced {
                wait: Duration::from_secs(1),
                limit: "requests"
            })
        );
        rl.try_acquire(1, t0 + Duration::from_secs(1)).unwrap();
        // A later answer saying more is left than we think does not raise our count.
        rl.observe(
            &headers(&[("x-ratelimit-remaining-requests", "30")]),
            t0 + Duration::from_secs(1),
        );
        assert!(rl.try_acquire(1, t0 + Duration::from_secs(1)).is_err());
        // Servers that send only `remaining` are assumed to refill per minute.
        let rl = RateLimiter::new(None, None, t0);
        rl.observe(&headers(&[("x-ratelimit-remaining-requests", "0")]), t0);
        assert_eq!(
            rl.try_acquire(0, t0).unwrap_err().wait,
            Duration::from_secs(60)
        );
    }
}
