//! The retry loop: one per call, owned by the provider.
//!
//! # Implementation details
//!
//! [`run`] drives a call as a sequence of attempts:
//!
//! ```text
//! loop {
//!     admit:   enter the gate; ask the rate limiter; if it says wait, leave the gate, sleep,
//!              and admit again. Before the first send this is queueing, bounded only by
//!              the queue deadline; the call's own clock starts at the first send.
//!     attempt: send the request and read the answer (for a stream: its status), holding
//!              the gate permit
//!     success → return the answer with the permit (a stream keeps it to its end);
//!     failure → leave the gate; retry if its class and budget allow, after Retry-After or
//!               full-jitter backoff, unless that passes the deadline
//! }
//! ```
//!
//! What is retried depends on whether the request may have reached the model
//! ([`Retry`]): a request that surely did not (429, 408, 503 with `Retry-After`, a
//! connection attempt that timed out) is retried patiently, up to `max_retries`; a server
//! that cannot be reached at all (connection refused, unknown host) gets `connect_retries`
//! quick retries, since it is down rather than busy; a request that may have reached the
//! model (other 5xx, a connection lost after sending) is retried only with `retry_sent`,
//! since a paid API may bill it twice; 4xx and undecodable answers never are. The wait is
//! `retry-after-ms`, else `Retry-After` (seconds or an HTTP date), else a uniformly random
//! time in `0..=min(cap, base * 2^(n-1))` before the `n`th retry of its class. Every retry
//! is logged (`tracing`, target `omega_llm`) and shown in the provider's
//! [`Activity`](crate::Activity).
//!
//! # Invariants
//!
//! 1. The gate permit is held only across one attempt ([`crate::gate`], invariants 1–2): it
//!    is dropped before every sleep (backoff or rate limit) and re-taken after it; a
//!    successful attempt hands it to the caller.
//! 2. Queueing ends at the queue deadline; everything after the first send ends at the
//!    call's deadline. A wait that would end at or past it is not started; the call fails
//!    at once with the last error, annotated with the attempts made.
//! 3. Every error the loop returns after an attempt says how many attempts were made and
//!    over how long, e.g. `server error 503: overloaded (after 4 attempts over 2.1s)`, and
//!    why it stopped there when a retry was possible in principle.
//!
//! # Cancellation safety
//!
//! Dropping the loop's future drops whatever it awaits: the gate wait, a sleep, or the
//! attempt (and with it the HTTP request). No state outlives it.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use tokio::time::Instant;

use crate::activity::{Counted, Tracker};
use crate::gate::{CallOptions, GatePermit};
use crate::mock::splitmix64;
use crate::openai::wire::error_message;
use crate::types::{human_duration as human, LlmError};

/// The backoff used when the server does not say how long to wait.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    pub(crate) base: Duration,
    pub(crate) cap: Duration,
}

impl Backoff {
    /// The wait before retry `retry` (1-based) for a uniform `draw`: full jitter.
    pub(crate) fn delay(&self, retry: u32, draw: u64) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        let ceiling = self
            .base
            .checked_mul(1 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap);
        ceiling.mul_f64(draw as f64 / u64::MAX as f64)
    }
}

/// What may be retried, and how often.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    pub(crate) backoff: Backoff,
    /// Retries of [`Retry::Unsent`] failures (and of [`Retry::Sent`] ones with `retry_sent`).
    pub(crate) max_retries: u32,
    /// Retries of [`Retry::Down`] failures.
    pub(crate) connect_retries: u32,
    pub(crate) retry_sent: bool,
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

/// Whether a failed attempt may be retried, by what it tells about the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Never: the server refused the request (4xx) or answered nonsense.
    Never,
    /// The request surely did not reach the model (429, 408, 503 with `Retry-After`, a
    /// connection attempt that timed out): retried patiently.
    Unsent,
    /// The server could not be reached (refused, unknown host, no route): retried a few
    /// times, quickly.
    Down,
    /// The request may have reached the model (other 5xx, connection lost after sending):
    /// retried only when the user opted in.
    Sent,
}

/// How an attempt failed, with the wait the server asked for, if any.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: LlmError,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) retry: Retry,
}

impl Failure {
    /// A failure of class `retry`.
    pub(crate) fn new(error: LlmError, retry: Retry) -> Self {
        Failure {
            error,
            retry_after: None,
            retry,
        }
    }

    /// A failure that is never retried.
    pub(crate) fn fatal(error: LlmError) -> Self {
        Failure::new(error, Retry::Never)
    }
}

/// A client-side rate limit's answer: wait this long before sending.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Paced {
    pub(crate) wait: Duration,
    /// Which limit: `requests` or `tokens`.
    pub(crate) limit: &'static str,
}

/// Maps a non-2xx answer to an error, its retry class and the wait the server asked for.
pub(crate) fn classify(status: u16, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Failure {
    let message = error_message(body);
    let retry_after = retry_after(headers, now);
    let (error, retry) = match status {
        429 => (
            LlmError::RateLimited {
                retry_after,
                message,
            },
            Retry::Unsent,
        ),
        // 408: the server gave up waiting for the request. 503 with Retry-After: it is
        // shedding load before looking at requests.
        408 => (LlmError::Server { status, message }, Retry::Unsent),
        503 if retry_after.is_some() => (LlmError::Server { status, message }, Retry::Unsent),
        409 | 500..=599 => (LlmError::Server { status, message }, Retry::Sent),
        400..=499 => (LlmError::BadRequest { status, message }, Retry::Never),
        _ => (
            LlmError::InvalidResponse(format!("unexpected HTTP status {status}: {message}")),
            Retry::Never,
        ),
    };
    Failure {
        error,
        retry_after,
        retry,
    }
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

/// One call as the loop sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Call<'a> {
    /// The model, for logs.
    pub(crate) label: &'a str,
    /// When the call started (its future was first polled).
    pub(crate) start: Instant,
    /// The caller's gate and time limits.
    pub(crate) options: &'a CallOptions,
    /// The time limit when the options set none.
    pub(crate) default_timeout: Duration,
}

/// What a successful attempt leaves the caller: its value, the gate permit and the
/// on-the-wire count (held until dropped), and the call's deadline.
#[derive(Debug)]
pub(crate) struct Admitted<T> {
    pub(crate) value: T,
    pub(crate) hold: Hold,
    pub(crate) deadline: Instant,
    /// When the first request was sent.
    pub(crate) sent: Instant,
}

/// A request's place on the wire: its gate permit and its count in the activity.
#[derive(Debug)]
pub(crate) struct Hold {
    _permit: Option<GatePermit>,
    _wire: Counted,
}

/// Runs a call: admission through the gate and `pace`, then `attempt`, retried as the
/// module docs say until success, a final error, a spent budget or the deadline.
pub(crate) async fn run<T, P, A, F>(
    policy: &Policy,
    jitter: &Jitter,
    tracker: &Arc<Tracker>,
    call: Call<'_>,
    mut pace: P,
    mut attempt: A,
) -> Result<Admitted<T>, LlmError>
where
    P: FnMut() -> Result<(), Paced>,
    A: FnMut() -> F,
    F: Future<Output = Result<T, Failure>>,
{
    let options = call.options;
    let queue_deadline = options.queue_deadline(call.start);
    // Set at the first send (invariant 2).
    let mut sent: Option<(Instant, Instant)> = None;
    let (mut attempts, mut retries, mut connect_retries) = (0u32, 0u32, 0u32);
    loop {
        // Admission: the gate first, then the rate limiter, so a slot's wait for the limiter
        // happens outside the gate (invariant 1).
        let limit = sent.map(|(_, deadline)| deadline).or(queue_deadline);
        let queued = sent.is_none().then(|| tracker.queued());
        let permit = loop {
            let permit = match &options.gate {
                Some(g) => {
                    let enter = g.clone().enter();
                    match limit {
                        Some(limit) => match tokio::time::timeout_at(limit, enter).await {
                            Ok(permit) => Some(permit?),
                            Err(_) => return Err(out_of_time(call, sent, "an llm slot")),
                        },
                        None => Some(enter.await?),
                    }
                }
                None => None,
            };
            match pace() {
                Ok(()) => break permit,
                Err(paced) => {
                    drop(permit);
                    if let Some(limit) = limit.filter(|l| Instant::now() + paced.wait >= *l) {
                        let within = match sent {
                            Some((first, _)) => format!(
                                "before the call's {} deadline",
                                human(limit.saturating_duration_since(first))
                            ),
                            None => format!(
                                "within the call's {} queue limit",
                                human(limit.saturating_duration_since(call.start))
                            ),
                        };
                        return Err(LlmError::RateLimited {
                            retry_after: Some(paced.wait),
                            message: format!(
                                "the {} per minute limit leaves no slot {within} (next slot in {})",
                                paced.limit,
                                human(paced.wait),
                            ),
                        });
                    }
                    tokio::time::sleep(paced.wait).await;
                }
            }
        };
        drop(queued);

        let now = Instant::now();
        let (first_sent, deadline) = *sent.get_or_insert_with(|| {
            let deadline = options
                .call_deadline(now, Some(call.default_timeout))
                .expect("a default timeout is given");
            (now, deadline)
        });
        attempts += 1;
        let wire = tracker.on_wire();
        let outcome = match tokio::time::timeout_at(deadline, attempt()).await {
            Ok(outcome) => outcome,
            Err(_) => return Err(out_of_time(call, sent, "")),
        };
        let failure = match outcome {
            Ok(value) => {
                return Ok(Admitted {
                    value,
                    hold: Hold {
                        _permit: permit,
                        _wire: wire,
                    },
                    deadline,
                    sent: first_sent,
                })
            }
            Err(failure) => failure,
        };
        drop((permit, wire));

        let elapsed = first_sent.elapsed();
        let refusal = match failure.retry {
            Retry::Never => Some(None),
            Retry::Down if connect_retries >= policy.connect_retries => Some(Some(format!(
                "gave up after {} connect retr{}: is the server running at this address?",
                policy.connect_retries,
                if policy.connect_retries == 1 {
                    "y"
                } else {
                    "ies"
                }
            ))),
            Retry::Sent if !policy.retry_sent => Some(Some(
                "not retried: the request may have reached the model (retry_sent, \
                 OMEGA_LLM_RETRY_SENT=1 or --llm-retry-sent allow it)"
                    .to_string(),
            )),
            Retry::Unsent | Retry::Sent if retries >= policy.max_retries => Some(Some(format!(
                "gave up after {} retr{}",
                policy.max_retries,
                if policy.max_retries == 1 { "y" } else { "ies" }
            ))),
            _ => None,
        };
        if let Some(note) = refusal {
            return Err(annotate(failure.error, attempts, elapsed, note));
        }
        let nth = if failure.retry == Retry::Down {
            connect_retries += 1;
            connect_retries
        } else {
            retries += 1;
            retries
        };
        let wait = failure
            .retry_after
            .unwrap_or_else(|| policy.backoff.delay(nth, jitter.draw()));
        if Instant::now() + wait >= deadline {
            let note = format!(
                "gave up: a retry in {} would pass the {} deadline",
                human(wait),
                human(deadline.saturating_duration_since(first_sent))
            );
            return Err(annotate(failure.error, attempts, elapsed, Some(note)));
        }
        let note = format!("retrying in {} ({})", human(wait), failure.error.short());
        tracing::warn!(
            target: "omega_llm",
            model = call.label,
            attempt = attempts,
            wait_ms = wait.as_millis() as u64,
            "{}: attempt {attempts} failed ({}); {note}",
            call.label,
            failure.error,
        );
        let _backing_off = tracker.backing_off(note);
        tokio::time::sleep(wait).await;
    }
}

/// The error for a call whose time ran out: queueing (`sent` is `None`) for `waiting_for`,
/// or after its first send.
fn out_of_time(call: Call<'_>, sent: Option<(Instant, Instant)>, waiting_for: &str) -> LlmError {
    match sent {
        None => LlmError::QueueTimeout {
            waited: call.start.elapsed(),
            waiting_for: waiting_for.to_string(),
        },
        Some((first, deadline)) => LlmError::Timeout {
            after: deadline.saturating_duration_since(first),
        },
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
        LlmError::Connect(message) => LlmError::Connect(with(message)),
        LlmError::Transport(message) => LlmError::Transport(with(message)),
        LlmError::InvalidResponse(message) => LlmError::InvalidResponse(with(message)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    use reqwest::header::HeaderValue;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::gate::{AttemptGate, GateFuture};

    const MS: Duration = Duration::from_millis(1);

    /// A gate that logs when it is entered and left, and how many permits are out.
    #[derive(Debug, Default)]
    struct CountingGate {
        held: AtomicUsize,
        log: Mutex<Vec<(Duration, &'static str)>>,
        origin: Mutex<Option<Instant>>,
    }

    struct Held(Arc<CountingGate>);

    impl Drop for Held {
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
        fn enter(self: Arc<Self>) -> GateFuture {
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

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_millis(1000),
    };

    const POLICY: Policy = Policy {
        backoff: BACKOFF,
        max_retries: 100,
        connect_retries: 2,
        retry_sent: false,
    };

    /// One call's surroundings: policy, activity, options.
    struct Harness {
        policy: Policy,
        tracker: Arc<Tracker>,
        options: CallOptions,
        start: Instant,
    }

    impl Harness {
        fn new(timeout: Duration) -> Self {
            Harness {
                policy: POLICY,
                tracker: Arc::default(),
                options: CallOptions::new().timeout(timeout),
                start: Instant::now(),
            }
        }

        fn policy(mut self, f: impl FnOnce(&mut Policy)) -> Self {
            f(&mut self.policy);
            self
        }

        fn options(mut self, f: impl FnOnce(CallOptions) -> CallOptions) -> Self {
            self.options = f(self.options);
            self
        }

        async fn run<T, F>(
            &self,
            pace: impl FnMut() -> Result<(), Paced>,
            attempt: impl FnMut() -> F,
        ) -> Result<T, LlmError>
        where
            F: Future<Output = Result<T, Failure>>,
        {
            let call = Call {
                label: "m",
                start: self.start,
                options: &self.options,
                default_timeout: Duration::from_secs(120),
            };
            run(
                &self.policy,
                &Jitter::new(),
                &self.tracker,
                call,
                pace,
                attempt,
            )
            .await
            .map(|admitted| admitted.value)
        }
    }

    fn server(status: u16, retry: Retry) -> Failure {
        Failure::new(
            LlmError::Server {
                status,
                message: "overloaded".into(),
            },
            retry,
        )
    }

    fn refused() -> Failure {
        Failure::new(
            LlmError::Connect("http://127.0.0.1:9/v1/chat/completions: connection refused".into()),
            Retry::Down,
        )
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
    fn statuses_map_to_kinds_and_retry_classes() {
        let class = |status, retry_after: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(v) = retry_after {
                headers.insert("retry-after", HeaderValue::from_str(v).unwrap());
            }
            let f = classify(
                status,
                &headers,
                br#"{"error":{"message":"m"}}"#,
                SystemTime::now(),
            );
            (f.error.kind(), f.retry)
        };
        assert_eq!(class(429, None), ("rate-limited", Retry::Unsent));
        assert_eq!(class(408, None), ("server", Retry::Unsent));
        assert_eq!(class(503, Some("1")), ("server", Retry::Unsent));
        assert_eq!(
            class(503, None),
            ("server", Retry::Sent),
            "may have been processed"
        );
        assert_eq!(class(500, None), ("server", Retry::Sent));
        assert_eq!(class(502, Some("1")), ("server", Retry::Sent));
        assert_eq!(class(409, None), ("server", Retry::Sent));
        for status in [400, 401, 403, 404, 422] {
            assert_eq!(
                class(status, None),
                ("bad-request", Retry::Never),
                "{status}"
            );
        }
        assert_eq!(class(302, None), ("invalid-response", Retry::Never));
        let f = classify(
            401,
            &HeaderMap::new(),
            br#"{"error":{"message":"Incorrect API key"}}"#,
            SystemTime::now(),
        );
        assert_eq!(f.error.to_string(), "bad request 401: Incorrect API key");
    }

    #[tokio::test(start_paused = true)]
    async fn unsent_failures_are_retried_with_backoff_until_success() {
        let n = AtomicUsize::new(0);
        let h = Harness::new(Duration::from_secs(10));
        let r = h
            .run(
                || Ok(()),
                || async {
                    match n.fetch_add(1, Ordering::SeqCst) {
                        0 => Err(Failure::new(
                            LlmError::RateLimited {
                                retry_after: None,
                                message: "slow down".into(),
                            },
                            Retry::Unsent,
                        )),
                        1 => Err(Failure::new(
                            LlmError::Transport("connecting timed out".into()),
                            Retry::Unsent,
                        )),
                        _ => Ok("done"),
                    }
                },
            )
            .await;
        assert_eq!(r, Ok("done"));
        assert_eq!(n.load(Ordering::SeqCst), 3);
        assert!(h.start.elapsed() <= 300 * MS, "100ms + 200ms ceilings");
        assert_eq!(h.tracker.snapshot().retries, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_exactly() {
        let n = AtomicUsize::new(0);
        let h = Harness::new(Duration::from_secs(10));
        let r = h
            .run(
                || Ok(()),
                || async {
                    if n.fetch_add(1, Ordering::SeqCst) == 0 {
                        Err(Failure {
                            retry_after: Some(700 * MS),
                            ..server(503, Retry::Unsent)
                        })
                    } else {
                        Ok(())
                    }
                },
            )
            .await;
        assert_eq!(r, Ok(()));
        assert_eq!(h.start.elapsed(), 700 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn stops_at_the_deadline_not_after_a_count() {
        let n = AtomicUsize::new(0);
        let h = Harness::new(Duration::from_secs(1));
        let r: Result<(), _> = h
            .run(
                || Ok(()),
                || async {
                    n.fetch_add(1, Ordering::SeqCst);
                    Err(Failure {
                        retry_after: Some(100 * MS),
                        ..server(503, Retry::Unsent)
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
        assert_eq!(h.start.elapsed(), 900 * MS, "no useless last sleep");
    }

    #[tokio::test(start_paused = true)]
    async fn the_retry_budget_bounds_patient_retries() {
        let n = AtomicUsize::new(0);
        let h = Harness::new(Duration::from_secs(60)).policy(|p| p.max_retries = 3);
        let r: Result<(), _> = h
            .run(
                || Ok(()),
                || async {
                    n.fetch_add(1, Ordering::SeqCst);
                    Err(Failure {
                        retry_after: Some(100 * MS),
                        ..server(503, Retry::Unsent)
                    })
                },
            )
            .await;
        assert_eq!(
            n.load(Ordering::SeqCst),
            4,
            "the first attempt and 3 retries"
        );
        assert_eq!(
            r.unwrap_err().to_string(),
            "server error 503: overloaded (after 4 attempts over 300ms; gave up after 3 retries)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_refuses_connections_is_given_up_on_quickly() {
        let n = AtomicUsize::new(0);
        let h = Harness::new(Duration::from_secs(120));
        let r: Result<(), _> = h
            .run(
                || Ok(()),
                || async {
                    n.fetch_add(1, Ordering::SeqCst);
                    Err(refused())
                },
            )
            .await;
        assert_eq!(
            n.load(Ordering::SeqCst),
            3,
            "the first attempt and 2 connect retries"
        );
        assert!(
            h.start.elapsed() <= 300 * MS,
            "backoff ceilings 100ms + 200ms, not the 120s deadline: {:?}",
            h.start.elapsed()
        );
        let e = r.unwrap_err();
        assert_eq!(e.kind(), "connect");
        let m = e.to_string();
        assert!(
            m.starts_with(
                "cannot connect: http://127.0.0.1:9/v1/chat/completions: connection refused \
                 (after 3 attempts over "
            ),
            "{m}"
        );
        assert!(
            m.ends_with(
                "; gave up after 2 connect retries: is the server running at this address?)"
            ),
            "{m}"
        );
        // Connect failures have their own budget: patient retries are not spent on them.
        let n = AtomicUsize::new(0);
        let h = Harness::new(Duration::from_secs(120)).policy(|p| p.connect_retries = 0);
        let r: Result<(), _> = h
            .run(
                || Ok(()),
                || async {
                    n.fetch_add(1, Ordering::SeqCst);
                    Err(refused())
                },
            )
            .await;
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert!(r
            .unwrap_err()
            .to_string()
            .contains("gave up after 0 connect retries"));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_that_may_have_reached_the_model_are_retried_only_on_request() {
        let n = AtomicUsize::new(0);
        let attempt = || async {
            match n.fetch_add(1, Ordering::SeqCst) {
                0 => Err(Failure::new(
                    LlmError::Transport("connection reset by peer".into()),
                    Retry::Sent,
                )),
                1 => Err(server(500, Retry::Sent)),
                _ => Ok("second answer"),
            }
        };
        let h = Harness::new(Duration::from_secs(10));
        let e = h.run(|| Ok(()), attempt).await.unwrap_err();
        assert_eq!(n.load(Ordering::SeqCst), 1, "never sent twice by default");
        assert_eq!(
            e.to_string(),
            "transport error: connection reset by peer (after 1 attempt over 0ms; not retried: \
             the request may have reached the model (retry_sent, OMEGA_LLM_RETRY_SENT=1 or \
             --llm-retry-sent allow it))"
        );
        n.store(0, Ordering::SeqCst);
        let h = Harness::new(Duration::from_secs(10)).policy(|p| p.retry_sent = true);
        assert_eq!(h.run(|| Ok(()), attempt).await, Ok("second answer"));
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn client_errors_are_not_retried() {
        let n = AtomicUsize::new(0);
        let h = Harness::new(Duration::from_secs(5));
        let r: Result<(), _> = h
            .run(
                || Ok(()),
                || async {
                    n.fetch_add(1, Ordering::SeqCst);
                    Err(Failure::fatal(LlmError::BadRequest {
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
        let h = Harness::new(500 * MS);
        let r: Result<(), _> = h
            .run(|| Ok(()), std::future::pending::<Result<(), Failure>>)
            .await;
        assert_eq!(r, Err(LlmError::Timeout { after: 500 * MS }));
        assert_eq!(h.start.elapsed(), 500 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn time_queued_for_the_gate_does_not_count_against_the_call() {
        // The only slot is busy for 5 s; the call's 1 s limit starts when it is sent.
        let pool = Arc::new(Semaphore::new(1));
        let busy = pool.clone().acquire_owned().await.unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(busy);
        });
        let h = Harness::new(Duration::from_secs(1)).options(|o| o.gate(pool.clone()));
        let probe = h.tracker.clone();
        let watcher = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            probe.snapshot()
        });
        let r = h
            .run(
                || Ok(()),
                || async {
                    tokio::time::sleep(500 * MS).await;
                    Ok("answer")
                },
            )
            .await;
        assert_eq!(r, Ok("answer"));
        assert_eq!(h.start.elapsed(), 5500 * MS);
        let seen = watcher.await.unwrap();
        assert_eq!((seen.queued, seen.on_wire), (1, 0), "queued at 2 s");
        let now = h.tracker.snapshot();
        assert_eq!((now.queued, now.on_wire, now.peak_on_wire), (0, 0, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_limit_says_what_the_call_waited_for() {
        let pool = Arc::new(Semaphore::new(0));
        let h = Harness::new(Duration::from_secs(1))
            .options(|o| o.gate(pool.clone()).queue_timeout(Duration::from_secs(3)));
        let r: Result<(), _> = h.run(|| Ok(()), || async { Ok(()) }).await;
        assert_eq!(
            r,
            Err(LlmError::QueueTimeout {
                waited: Duration::from_secs(3),
                waiting_for: "an llm slot".into()
            })
        );
        assert_eq!(h.tracker.snapshot().queued, 0);
        // An absolute deadline bounds queueing too.
        let deadline = Instant::now() + Duration::from_secs(2);
        let h = Harness::new(Duration::from_secs(1))
            .options(|o| o.gate(pool.clone()).deadline(deadline));
        let r: Result<(), _> = h.run(|| Ok(()), || async { Ok(()) }).await;
        assert_eq!(
            r.unwrap_err().to_string(),
            "LLM call timed out: queued 2.0s for an llm slot without being sent"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_is_not_held_while_backing_off_and_retries_are_shown() {
        let gate = Arc::new(CountingGate::default());
        let h = Arc::new(Harness::new(Duration::from_secs(10)).options(|o| o.gate(gate.clone())));
        let (g, h2) = (gate.clone(), h.clone());
        let call = tokio::spawn(async move {
            let n = AtomicUsize::new(0);
            h2.run(
                || Ok(()),
                || async {
                    assert_eq!(g.held(), 1, "attempts run inside the gate");
                    tokio::time::sleep(10 * MS).await;
                    match n.fetch_add(1, Ordering::SeqCst) {
                        0 | 1 => Err(Failure {
                            retry_after: Some(300 * MS),
                            ..server(503, Retry::Unsent)
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
        let a = h.tracker.snapshot();
        assert_eq!((a.backing_off, a.on_wire, a.retries), (1, 0, 1));
        assert_eq!(a.last_retry.as_deref(), Some("retrying in 300ms (503)"));
        assert_eq!(call.await.unwrap(), Ok(()));
        assert_eq!(gate.held(), 0);
        assert_eq!(h.tracker.snapshot().backing_off, 0);
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
        let gate = Arc::new(CountingGate::default());
        let mut paced = false;
        let h = Harness::new(Duration::from_secs(10)).options(|o| o.gate(gate.clone()));
        let r = h
            .run(
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
        let h = Harness::new(Duration::from_secs(10))
            .options(|o| o.queue_timeout(Duration::from_secs(1)));
        let r: Result<(), _> = h
            .run(
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
            "rate limited (retry after 5s): the tokens per minute limit leaves no slot within \
             the call's 1.0s queue limit (next slot in 5.0s)"
        );
    }
}
