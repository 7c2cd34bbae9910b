//! The retry loop: one per call, owned by the provider.
//!
//! # Implementation details
//!
//! [`run`] drives a call as a sequence of attempts under one overall deadline:
//!
//! ```text
//! loop {
//!     admit:   enter the gate; ask the rate limiter; if it says wait, leave the gate, sleep,
//!              and admit again
//!     attempt: send the request and read the whole answer, holding the gate permit
//!     leave the gate
//!     success → return; not retryable → return the error;
//!     retryable → wait Retry-After (or full-jitter backoff) unless that passes the deadline
//! }
//! ```
//!
//! What is retried: transport errors, 408, 409, 429 and 5xx (the errors for which
//! [`LlmError::is_retryable`] holds). Never 400, 401, 403, 404 or other 4xx, nor answers we
//! cannot decode. The wait is `retry-after-ms`, else `Retry-After` (seconds or an HTTP date),
//! else a uniformly random time in `0..=min(cap, base * 2^(n-1))` after attempt `n`.
//!
//! # Invariants
//!
//! 1. The gate permit is held only across one attempt ([`crate::gate`], invariants 1–2): it
//!    is dropped before every sleep (backoff or rate limit) and re-taken after it.
//! 2. Nothing outlives the deadline: admission, attempts and waits all end at it. A wait that
//!    would end at or past the deadline is not started; the call fails at once with the last
//!    error, annotated with the attempts made.
//! 3. Every error the loop returns after an attempt says how many attempts were made and
//!    over how long, e.g. `server error 503: overloaded (after 4 attempts over 2.1s)`.
//!
//! # Cancellation safety
//!
//! Dropping the loop's future drops whatever it awaits: the gate wait, a sleep, or the
//! attempt (and with it the HTTP request). No state outlives it.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use tokio::time::Instant;

use crate::gate::AttemptGate;
use crate::mock::splitmix64;
use crate::openai::wire::error_message;
use crate::types::LlmError;

/// The backoff used when the server does not say how long to wait.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    pub(crate) base: Duration,
    pub(crate) cap: Duration,
}

impl Backoff {
    /// The wait after attempt `attempt` (1-based) for a uniform `draw`: full jitter.
    pub(crate) fn delay(&self, attempt: u32, draw: u64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let ceiling = self
            .base
            .checked_mul(1 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap);
        ceiling.mul_f64(draw as f64 / u64::MAX as f64)
    }
}

/// A lock-free source of random draws for jitter, seeded per process.
#[derive(Debug)]
pub(crate) struct Jitter(AtomicU64);

impl Jitter {
    /// A generator with a random seed.
    pub(crate) fn new() -> Self {
        Jitter(AtomicU64::new(
            RandomState::new().hash_one(0x006f_6d65_6761_u64),
        ))
    }

    /// The next draw.
    pub(crate) fn draw(&self) -> u64 {
        splitmix64(self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed))
    }
}

/// How an attempt failed, with the wait the server asked for, if any.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: LlmError,
    pub(crate) retry_after: Option<Duration>,
}

impl From<LlmError> for Failure {
    fn from(error: LlmError) -> Self {
        Failure {
            error,
            retry_after: None,
        }
    }
}

/// A client-side rate limit's answer: wait this long before sending.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Paced {
    pub(crate) wait: Duration,
    /// Which limit: `requests` or `tokens`.
    pub(crate) limit: &'static str,
}

/// Maps a non-2xx answer to an error and the wait the server asked for.
pub(crate) fn classify(status: u16, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Failure {
    let message = error_message(body);
    let retry_after = retry_after(headers, now);
    let error = match status {
        429 => LlmError::RateLimited {
            retry_after,
            message,
        },
        // 408 and 409 are retryable; they are reported as server-side trouble.
        408 | 409 | 500..=599 => LlmError::Server { status, message },
        400..=499 => LlmError::BadRequest { status, message },
        _ => LlmError::InvalidResponse(format!("unexpected HTTP status {status}: {message}")),
    };
    Failure { error, retry_after }
}

/// The wait a server asked for: `retry-after-ms`, else `Retry-After` in seconds or as an
/// HTTP date (relative to `now`). Absurd values are clamped to a day.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    const DAY: f64 = 86_400.0;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let seconds = |v: f64| (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v.min(DAY)));
    if let Some(d) = header("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|ms| seconds(ms / 1000.0))
    {
        return Some(d);
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return seconds(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(DAY as u64)),
    )
}

/// One call's time budget.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    pub(crate) start: Instant,
    pub(crate) deadline: Instant,
}

impl Budget {
    fn timeout(&self) -> LlmError {
        LlmError::Timeout {
            after: self.deadline.saturating_duration_since(self.start),
        }
    }
}

/// Runs a call: admission through `gate` and `pace`, then `attempt`, retried as the module
/// docs say until success, a final error, or `budget.deadline`.
pub(crate) async fn run<T, P, A, F>(
    backoff: Backoff,
    jitter: &Jitter,
    budget: Budget,
    gate: Option<&dyn AttemptGate>,
    mut pace: P,
    mut attempt: A,
) -> Result<T, LlmError>
where
    P: FnMut() -> Result<(), Paced>,
    A: FnMut() -> F,
    F: Future<Output = Result<T, Failure>>,
{
    let deadline = budget.deadline;
    let mut attempts = 0u32;
    loop {
        // Admission: the gate first, then the rate limiter, so a slot's wait for the limiter
        // happens outside the gate (invariant 1).
        let permit = loop {
            let permit = match gate {
                Some(g) => match tokio::time::timeout_at(deadline, g.enter()).await {
                    Ok(permit) => Some(permit?),
                    Err(_) => return Err(budget.timeout()),
                },
                None => None,
            };
            match pace() {
                Ok(()) => break permit,
                Err(paced) => {
                    drop(permit);
                    if Instant::now() + paced.wait >= deadline {
                        return Err(LlmError::RateLimited {
                            retry_after: Some(paced.wait),
                            message: format!(
                                "the {} per minute limit leaves no slot before the call's \
                                 {} deadline (next slot in {})",
                                paced.limit,
                                human(deadline.saturating_duration_since(budget.start)),
                                human(paced.wait),
                            ),
                        });
                    }
                    tokio::time::sleep(paced.wait).await;
                }
            }
        };

        attempts += 1;
        let outcome = match tokio::time::timeout_at(deadline, attempt()).await {
            Ok(outcome) => outcome,
            Err(_) => return Err(budget.timeout()),
        };
        drop(permit);

        let failure = match outcome {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        let elapsed = budget.start.elapsed();
        if !failure.error.is_retryable() {
            return Err(annotate(failure.error, attempts, elapsed, None));
        }
        let wait = failure
            .retry_after
            .unwrap_or_else(|| backoff.delay(attempts, jitter.draw()));
        if Instant::now() + wait >= deadline {
            let note = format!(
                "gave up: a retry in {} would pass the {} deadline",
                human(wait),
                human(deadline.saturating_duration_since(budget.start))
            );
            return Err(annotate(failure.error, attempts, elapsed, Some(note)));
        }
        tokio::time::sleep(wait).await;
    }
}

/// Appends `(after N attempts over T[; note])` to an error's message (invariant 3).
fn annotate(error: LlmError, attempts: u32, elapsed: Duration, note: Option<String>) -> LlmError {
    let plural = if attempts == 1 { "" } else { "s" };
    let mut suffix = format!("after {attempts} attempt{plural} over {}", human(elapsed));
    if let Some(note) = note {
        suffix = format!("{suffix}; {note}");
    }
    let with = |message: String| format!("{message} ({suffix})");
    match error {
        LlmError::RateLimited {
            retry_after,
            message,
        } => LlmError::RateLimited {
            retry_after,
            message: with(message),
        },
        LlmError::Server { status, message } => LlmError::Server {
            status,
            message: with(message),
        },
        LlmError::BadRequest { status, message } => LlmError::BadRequest {
            status,
            message: with(message),
        },
        LlmError::Transport(message) => LlmError::Transport(with(message)),
        LlmError::InvalidResponse(message) => LlmError::InvalidResponse(with(message)),
        other => other,
    }
}

/// A duration for messages: `850ms`, `2.1s`.
pub(crate) fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Mutex};

    use reqwest::header::HeaderValue;

    use super::*;
    use crate::gate::{GateFuture, GatePermit};

    const MS: Duration = Duration::from_millis(1);

    /// A gate that logs when it is entered and left, and how many permits are out.
    #[derive(Debug, Default)]
    struct CountingGate {
        held: AtomicUsize,
        log: Mutex<Vec<(Duration, &'static str)>>,
        origin: Mutex<Option<Instant>>,
    }

    struct Held<'a>(&'a CountingGate);

    impl Drop for Held<'_> {
        fn drop(&mut self) {
            self.0.held.fetch_sub(1, Ordering::SeqCst);
            self.0.note("leave");
        }
    }

    impl CountingGate {
        fn note(&self, what: &'static str) {
            let origin = *self.origin.lock().unwrap().get_or_insert_with(Instant::now);
            self.log.lock().unwrap().push((origin.elapsed(), what));
        }
        fn held(&self) -> usize {
            self.held.load(Ordering::SeqCst)
        }
    }

    impl AttemptGate for CountingGate {
        fn enter(&self) -> GateFuture<'_> {
            Box::pin(async move {
                self.note("enter");
                assert_eq!(
                    self.held.fetch_add(1, Ordering::SeqCst),
                    0,
                    "one permit per call"
                );
                Ok(GatePermit::new(Held(self)))
            })
        }
    }

    fn budget(timeout: Duration) -> Budget {
        let start = Instant::now();
        Budget {
            start,
            deadline: start + timeout,
        }
    }

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_millis(1000),
    };

    fn server(status: u16) -> Failure {
        Failure::from(LlmError::Server {
            status,
            message: "overloaded".into(),
        })
    }

    #[test]
    fn full_jitter_stays_under_the_doubling_ceiling() {
        let b = BACKOFF;
        assert_eq!(b.delay(1, u64::MAX), 100 * MS);
        assert_eq!(b.delay(2, u64::MAX), 200 * MS);
        assert_eq!(b.delay(4, u64::MAX), 800 * MS);
        assert_eq!(b.delay(5, u64::MAX), 1000 * MS, "capped");
        assert_eq!(b.delay(500, u64::MAX), 1000 * MS, "no overflow");
        assert_eq!(b.delay(3, 0), Duration::ZERO);
        assert_eq!(b.delay(3, u64::MAX / 2), 200 * MS);
        let j = Jitter::new();
        let draws: Vec<u64> = (0..64).map(|_| j.draw()).collect();
        assert!(draws.iter().any(|d| *d > u64::MAX / 2) && draws.iter().any(|d| *d < u64::MAX / 2));
    }

    #[test]
    fn retry_after_headers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let h = |pairs: &[(&'static str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_str(v).unwrap());
            }
            retry_after(&m, now)
        };
        assert_eq!(h(&[]), None);
        assert_eq!(h(&[("retry-after", "2")]), Some(2000 * MS));
        assert_eq!(h(&[("retry-after", "0.25")]), Some(250 * MS));
        assert_eq!(
            h(&[("retry-after", "2"), ("retry-after-ms", "150")]),
            Some(150 * MS),
            "retry-after-ms wins"
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(h(&[("retry-after", &date)]), Some(30_000 * MS));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(h(&[("retry-after", &past)]), Some(Duration::ZERO));
        assert_eq!(h(&[("retry-after", "soon")]), None);
        assert_eq!(h(&[("retry-after", "-1")]), None);
        assert_eq!(
            h(&[("retry-after", "1e300")]),
            Some(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn statuses_map_to_kinds() {
        let kind = |status| {
            let f = classify(
                status,
                &HeaderMap::new(),
                br#"{"error":{"message":"m"}}"#,
                SystemTime::now(),
            );
            (f.error.kind(), f.error.is_retryable())
        };
        assert_eq!(kind(429), ("rate-limited", true));
        assert_eq!(kind(408), ("server", true));
        assert_eq!(kind(409), ("server", true));
        assert_eq!(kind(500), ("server", true));
        assert_eq!(kind(503), ("server", true));
        for status in [400, 401, 403, 404, 422] {
            assert_eq!(kind(status), ("bad-request", false), "{status}");
        }
        assert_eq!(kind(302), ("invalid-response", false));
        let f = classify(
            401,
            &HeaderMap::new(),
            br#"{"error":{"message":"Incorrect API key"}}"#,
            SystemTime::now(),
        );
        assert_eq!(f.error.to_string(), "bad request 401: Incorrect API key");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_with_backoff_until_success() {
        let n = AtomicUsize::new(0);
        let b = budget(Duration::from_secs(10));
        let r = run(
            BACKOFF,
            &Jitter::new(),
            b,
            None,
            || Ok(()),
            || async {
                match n.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(server(500)),
                    1 => Err(Failure::from(LlmError::Transport("reset".into()))),
                    _ => Ok("done"),
                }
            },
        )
        .await;
        assert_eq!(r, Ok("done"));
        assert_eq!(n.load(Ordering::SeqCst), 3);
        assert!(b.start.elapsed() <= 300 * MS, "100ms + 200ms ceilings");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_exactly() {
        let n = AtomicUsize::new(0);
        let b = budget(Duration::from_secs(10));
        let r = run(
            BACKOFF,
            &Jitter::new(),
            b,
            None,
            || Ok(()),
            || async {
                if n.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(Failure {
                        error: LlmError::RateLimited {
                            retry_after: Some(700 * MS),
                            message: "slow down".into(),
                        },
                        retry_after: Some(700 * MS),
                    })
                } else {
                    Ok(())
                }
            },
        )
        .await;
        assert_eq!(r, Ok(()));
        assert_eq!(b.start.elapsed(), 700 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn stops_at_the_deadline_not_after_a_count() {
        let n = AtomicUsize::new(0);
        let b = budget(Duration::from_secs(1));
        let r: Result<(), _> = run(
            BACKOFF,
            &Jitter::new(),
            b,
            None,
            || Ok(()),
            || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(Failure {
                    retry_after: Some(100 * MS),
                    ..server(503)
                })
            },
        )
        .await;
        assert_eq!(n.load(Ordering::SeqCst), 10, "t = 0, 100, …, 900 ms");
        assert_eq!(
            r.unwrap_err().to_string(),
            "server error 503: overloaded (after 10 attempts over 900ms; gave up: a retry in \
             100ms would pass the 1.0s deadline)"
        );
        assert_eq!(b.start.elapsed(), 900 * MS, "no useless last sleep");
    }

    #[tokio::test(start_paused = true)]
    async fn client_errors_are_not_retried() {
        let n = AtomicUsize::new(0);
        let r: Result<(), _> = run(
            BACKOFF,
            &Jitter::new(),
            budget(Duration::from_secs(5)),
            None,
            || Ok(()),
            || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(Failure::from(LlmError::BadRequest {
                    status: 401,
                    message: "Incorrect API key".into(),
                }))
            },
        )
        .await;
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert_eq!(
            r.unwrap_err().to_string(),
            "bad request 401: Incorrect API key (after 1 attempt over 0ms)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_cuts_an_attempt_short() {
        let b = budget(500 * MS);
        let r: Result<(), _> = run(
            BACKOFF,
            &Jitter::new(),
            b,
            None,
            || Ok(()),
            std::future::pending::<Result<(), Failure>>,
        )
        .await;
        assert_eq!(r, Err(LlmError::Timeout { after: 500 * MS }));
        assert_eq!(b.start.elapsed(), 500 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_is_not_held_while_backing_off() {
        let gate = Arc::new(CountingGate::default());
        let g = gate.clone();
        let call = tokio::spawn(async move {
            let n = AtomicUsize::new(0);
            let b = budget(Duration::from_secs(10));
            run(
                BACKOFF,
                &Jitter::new(),
                b,
                Some(&*g),
                || Ok(()),
                || async {
                    assert_eq!(g.held(), 1, "attempts run inside the gate");
                    tokio::time::sleep(10 * MS).await;
                    match n.fetch_add(1, Ordering::SeqCst) {
                        0 | 1 => Err(Failure {
                            retry_after: Some(300 * MS),
                            ..server(503)
                        }),
                        _ => Ok(()),
                    }
                },
            )
            .await
        });
        // Attempt 1 runs over 0..10ms, then the call backs off until 310ms.
        tokio::time::sleep(150 * MS).await;
        assert_eq!(gate.held(), 0, "backing off without the permit");
        assert_eq!(call.await.unwrap(), Ok(()));
        assert_eq!(gate.held(), 0);
        let log = gate.log.lock().unwrap().clone();
        assert_eq!(
            log,
            vec![
                (Duration::ZERO, "enter"),
                (10 * MS, "leave"),
                (310 * MS, "enter"),
                (320 * MS, "leave"),
                (620 * MS, "enter"),
                (630 * MS, "leave"),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_waits_happen_outside_the_gate() {
        let gate = CountingGate::default();
        let mut paced = false;
        let b = budget(Duration::from_secs(10));
        let r = run(
            BACKOFF,
            &Jitter::new(),
            b,
            Some(&gate),
            || {
                if paced {
                    Ok(())
                } else {
                    paced = true;
                    Err(Paced {
                        wait: 250 * MS,
                        limit: "requests",
                    })
                }
            },
            || async { Ok(()) },
        )
        .await;
        assert_eq!(r, Ok(()));
        assert_eq!(
            gate.log.lock().unwrap().clone(),
            vec![
                (Duration::ZERO, "enter"),
                (Duration::ZERO, "leave"),
                (250 * MS, "enter"),
                (250 * MS, "leave"),
            ]
        );
        let r: Result<(), _> = run(
            BACKOFF,
            &Jitter::new(),
            budget(Duration::from_secs(1)),
            None,
            || {
                Err(Paced {
                    wait: Duration::from_secs(5),
                    limit: "tokens",
                })
            },
            || async { Ok(()) },
        )
        .await;
        assert_eq!(
            r.unwrap_err().to_string(),
            "rate limited (retry after 5s): the tokens per minute limit leaves no slot before \
             the call's 1.0s deadline (next slot in 5.0s)"
        );
    }
}
