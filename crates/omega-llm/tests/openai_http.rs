//! The OpenAI-compatible provider against an in-process HTTP server that injects faults.
//!
//! Real sockets do not mix with tokio's paused clock, so these tests use small real
//! durations and assert lower bounds and attempt counts; exact backoff timing is tested on a
//! paused clock in `src/openai/retry.rs`.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use omega_llm::{
    AttemptGate, CallOptions, GateFuture, GatePermit, LlmError, LlmProvider, LlmRequest,
    OpenAiCompatible, OpenAiConfig,
};
use support::{Event, Reply, Server};
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);
const PATIENCE: Duration = Duration::from_secs(5);

fn provider(server: &Server) -> OpenAiCompatible {
    OpenAiCompatible::new(
        OpenAiConfig::new(&server.base_url, "test-model")
            .api_key("sk-test")
            .backoff(10 * MS, 50 * MS)
            .timeout(Duration::from_secs(10)),
    )
    .unwrap()
}

/// Replies from a list, one per request in arrival order, then the last one forever.
fn sequence(replies: Vec<Reply>) -> impl Fn(&support::Seen) -> Reply + Send + Sync {
    move |seen| replies[seen.n.min(replies.len() - 1)].clone()
}

#[tokio::test]
async fn answers_and_counts_usage() {
    let server = Server::start(|_| {
        Reply::json(200, &support::ok_body("Paris", 12, 1)).header("x-request-id", "abc")
    })
    .await;
    let llm = provider(&server);
    let mut req = LlmRequest::prompt("capital of France?");
    req.system = Some("be brief".into());
    req.max_tokens = Some(8);
    let r = llm.complete(req).await.unwrap();
    assert_eq!(r.text, "Paris");
    assert_eq!(r.model, "served-model");
    assert_eq!((r.usage.prompt_tokens, r.usage.completion_tokens), (12, 1));
    assert_eq!(r.finish_reason, "stop");

    let seen = &server.seen()[0];
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(seen.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        seen.body,
        serde_json::json!({
            "model": "test-model",
            "messages": [{"role": "system", "content": "be brief"},
                         {"role": "user", "content": "capital of France?"}],
            "max_tokens": 8,
        })
    );

    let mut other = LlmRequest::prompt("again");
    other.model = Some("other-model".into());
    llm.complete(other).await.unwrap();
    let usage = llm.usage_by_model();
    let m = usage["test-model"];
    assert_eq!((m.calls, m.attempts, m.failed, m.cancelled), (1, 1, 0, 0));
    assert_eq!((m.prompt_tokens, m.completion_tokens), (12, 1));
    assert_eq!(usage["other-model"].calls, 1);
    assert_eq!(server.seen()[1].model(), "other-model");
}

#[tokio::test]
async fn no_key_is_sent_to_a_loopback_server_without_one() {
    let server = Server::start(|_| Reply::ok("hi")).await;
    let llm = OpenAiCompatible::new(OpenAiConfig::new(&server.base_url, "m")).unwrap();
    llm.complete(LlmRequest::prompt("x")).await.unwrap();
    assert_eq!(server.seen()[0].header("authorization"), None);
}

#[tokio::test]
async fn latency_is_waited_out() {
    let server = Server::start(|_| Reply::ok("slow").delay(150 * MS)).await;
    let llm = provider(&server);
    let t0 = Instant::now();
    let r = llm.complete(LlmRequest::prompt("x")).await.unwrap();
    assert_eq!(r.text, "slow");
    assert!(t0.elapsed() >= 150 * MS);
    assert!(r.latency >= 150 * MS);
}

#[tokio::test]
async fn rate_limited_then_success_waits_retry_after() {
    let server = Server::start(sequence(vec![
        Reply::error(429, "Rate limit reached for requests")
            .header("retry-after-ms", "200")
            .header("retry-after", "1"),
        Reply::ok("done"),
    ]))
    .await;
    let llm = provider(&server);
    let r = llm.complete(LlmRequest::prompt("x")).await.unwrap();
    assert_eq!(r.text, "done");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= 200 * MS, "waited {gap:?}, retry-after-ms said 200ms");
    assert!(
        gap < 1000 * MS,
        "retry-after-ms wins over Retry-After: {gap:?}"
    );
    assert_eq!(llm.usage_by_model()["test-model"].attempts, 2);
}

#[tokio::test]
async fn retry_after_in_seconds_is_honoured() {
    // Retry-After as whole seconds (here 0, the only value a fast test can afford) and
    // backoff is skipped: the second attempt follows at once.
    let server = Server::start(sequence(vec![
        Reply::error(503, "overloaded").header("retry-after", "0"),
        Reply::ok("done"),
    ]))
    .await;
    let llm = OpenAiCompatible::new(
        OpenAiConfig::new(&server.base_url, "m")
            .backoff(Duration::from_secs(30), Duration::from_secs(30)),
    )
    .unwrap();
    let t0 = Instant::now();
    assert_eq!(
        llm.complete(LlmRequest::prompt("x")).await.unwrap().text,
        "done"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "Retry-After: 0 beat a 30 s backoff"
    );
}

#[tokio::test]
async fn server_errors_are_retried_only_when_the_request_surely_did_not_run() {
    // A 500 may come after the model ran (and billed): not retried unless allowed.
    let replies = || sequence(vec![Reply::error(500, "boom"), Reply::ok("fine")]);
    let server = Server::start(replies()).await;
    let e = provider(&server)
        .complete(LlmRequest::prompt("x"))
        .await
        .unwrap_err();
    assert_eq!(server.seen().len(), 1);
    assert!(
        e.to_string()
            .starts_with("server error 500: boom (after 1 attempt over ")
            && e.to_string()
                .contains("not retried: the request may have reached the model"),
        "{e}"
    );
    let server = Server::start(replies()).await;
    let llm = OpenAiCompatible::new(
        OpenAiConfig::new(&server.base_url, "m")
            .backoff(10 * MS, 50 * MS)
            .retry_sent(true),
    )
    .unwrap();
    assert_eq!(
        llm.complete(LlmRequest::prompt("x")).await.unwrap().text,
        "fine"
    );
    assert_eq!(server.seen().len(), 2);
    // A 503 with Retry-After is load shedding before the model: retried by default.
    let server = Server::start(sequence(vec![
        Reply::error(503, "overloaded").header("retry-after-ms", "20"),
        Reply::ok("fine"),
    ]))
    .await;
    assert_eq!(
        provider(&server)
            .complete(LlmRequest::prompt("x"))
            .await
            .unwrap()
            .text,
        "fine"
    );
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn persistent_server_errors_stop_at_the_deadline_and_say_so() {
    // Retry-After 150 ms, deadline 400 ms: attempts at about 0, 150 and 300 ms; after the
    // third, a retry at 450 ms would pass the deadline, so the call gives up at once. (An
    // attempt taking over 100 ms would instead be cut by the deadline: a timeout.)
    let server =
        Server::start(|_| Reply::error(503, "overloaded").header("retry-after-ms", "150")).await;
    let llm = provider(&server);
    let t0 = Instant::now();
    let e = llm
        .complete_with(
            LlmRequest::prompt("x"),
            CallOptions::new().timeout(400 * MS),
        )
        .await
        .unwrap_err();
    let attempts = server.seen().len();
    assert!(attempts >= 2, "{attempts} attempts in 400ms at 150ms apart");
    assert!(t0.elapsed() >= 150 * MS * (attempts as u32 - 1));
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "ended by the deadline"
    );
    let message = e.to_string();
    assert_eq!(
        message,
        format!(
            "server error 503: overloaded (after {attempts} attempts over {}; gave up: a retry \
             in 150ms would pass the 400ms deadline)",
            elapsed_of(&e)
        )
    );
    let m = llm.usage_by_model()["test-model"];
    assert_eq!((m.calls, m.failed, m.attempts), (0, 1, attempts as u64));
}

/// The elapsed time an annotated error reports (`… over 312ms; …`).
fn elapsed_of(e: &LlmError) -> String {
    let s = e.to_string();
    let start = s.find(" over ").unwrap() + 6;
    let end = s[start..].find([';', ')']).unwrap() + start;
    s[start..end].to_string()
}

#[tokio::test]
async fn malformed_json_is_an_invalid_response_and_not_retried() {
    let server = Server::start(|_| Reply::json(200, "{\"choices\": [tru")).await;
    let llm = provider(&server);
    let e = llm.complete(LlmRequest::prompt("x")).await.unwrap_err();
    assert_eq!(e.kind(), "invalid-response");
    let message = e.to_string();
    assert!(message.contains("is not a chat completion"), "{message}");
    assert!(message.contains("(after 1 attempt over "), "{message}");
    assert_eq!(server.seen().len(), 1);
}

/// A provider that also retries requests that may have reached the model.
fn retrying_sent(server: &Server) -> OpenAiCompatible {
    OpenAiCompatible::new(
        OpenAiConfig::new(&server.base_url, "test-model")
            .backoff(10 * MS, 50 * MS)
            .retry_sent(true),
    )
    .unwrap()
}

#[tokio::test]
async fn connections_lost_after_sending_are_retried_only_when_allowed() {
    // The server read the request, then hung up: it may have run it.
    let replies = || sequence(vec![Reply::Drop, Reply::Drop, Reply::ok("third time")]);
    let server = Server::start(replies()).await;
    let e = provider(&server)
        .complete(LlmRequest::prompt("x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "transport");
    assert!(e.to_string().contains("not retried"), "{e}");
    assert_eq!(server.seen().len(), 1, "sent once");

    let server = Server::start(replies()).await;
    let llm = retrying_sent(&server);
    assert_eq!(
        llm.complete(LlmRequest::prompt("x")).await.unwrap().text,
        "third time"
    );
    assert_eq!(server.seen().len(), 3);

    let server = Server::start(|_| Reply::Drop).await;
    let llm = retrying_sent(&server);
    let e = llm
        .complete_with(
            LlmRequest::prompt("x"),
            CallOptions::new().timeout(200 * MS),
        )
        .await
        .unwrap_err();
    // Retried until the deadline: the call gives up when the next backoff would pass it
    // (a transport error naming the attempts) or, if the deadline falls during an attempt,
    // times out.
    assert!(server.seen().len() >= 2, "retried");
    match e.kind() {
        "transport" => assert!(
            e.to_string()
                .contains(&format!("(after {} attempts", server.seen().len())),
            "{e}"
        ),
        "timeout" => assert_eq!(e, LlmError::Timeout { after: 200 * MS }),
        other => panic!("unexpected {other}: {e}"),
    }
}

#[tokio::test]
async fn refused_requests_are_never_retried() {
    for (status, message) in [
        (401, "Incorrect API key provided"),
        (400, "Invalid 'messages'"),
        (403, "Forbidden"),
        (404, "The model `nope` does not exist"),
    ] {
        let server = Server::start(move |_| Reply::error(status, message)).await;
        let llm = provider(&server);
        let e = llm.complete(LlmRequest::prompt("x")).await.unwrap_err();
        // A 404 names the URL asked (it may be a wrong base URL rather than a wrong model).
        let url = match status {
            404 => format!(" (POST {}/chat/completions)", server.base_url),
            _ => String::new(),
        };
        assert_eq!(
            e,
            LlmError::BadRequest {
                status,
                message: format!("{message}{url} (after 1 attempt over {})", elapsed_of(&e)),
            }
        );
        assert!(!e.is_retryable());
        assert_eq!(server.seen().len(), 1, "{status} is not retried");
    }
}

#[tokio::test]
async fn the_deadline_drops_a_never_answered_request() {
    let mut server = Server::start(|_| Reply::Hang).await;
    let llm = provider(&server);
    let t0 = Instant::now();
    let e = llm
        .complete_with(
            LlmRequest::prompt("x"),
            CallOptions::new().timeout(200 * MS),
        )
        .await
        .unwrap_err();
    assert_eq!(e, LlmError::Timeout { after: 200 * MS });
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "ended at the deadline"
    );
    assert!(matches!(
        server.next_event(PATIENCE).await,
        Event::Received(0)
    ));
    match server.next_event(PATIENCE).await {
        Event::Closed(0, after) => {
            assert!(after < Duration::from_secs(1), "closed after {after:?}")
        }
        other => panic!("expected the connection closed, got {other:?}"),
    }
    assert_eq!(llm.usage_by_model()["test-model"].failed, 1);
}

#[tokio::test]
async fn dropping_the_call_closes_the_connection_at_once() {
    let mut server = Server::start(|_| Reply::Hang).await;
    let llm = Arc::new(provider(&server));
    let l = llm.clone();
    let call = tokio::spawn(async move { l.complete(LlmRequest::prompt("x")).await });
    assert!(matches!(
        server.next_event(PATIENCE).await,
        Event::Received(0)
    ));
    let dropped = Instant::now();
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    match server.next_event(PATIENCE).await {
        Event::Closed(0, _) => {
            let after = dropped.elapsed();
            assert!(
                after < Duration::from_secs(1),
                "the server saw the close after {after:?}"
            );
        }
        other => panic!("expected the connection closed, got {other:?}"),
    }
    let m = llm.usage_by_model()["test-model"];
    assert_eq!((m.calls, m.failed, m.cancelled, m.attempts), (0, 0, 1, 1));
}

/// A gate that logs entries and exits and checks one permit at a time.
#[derive(Debug, Default)]
struct CountingGate {
    held: AtomicUsize,
    log: Mutex<Vec<(Instant, &'static str)>>,
}

struct Held(Arc<CountingGate>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::SeqCst);
        self.0.log.lock().unwrap().push((Instant::now(), "leave"));
    }
}

impl AttemptGate for CountingGate {
    fn enter(self: Arc<Self>) -> GateFuture {
        Box::pin(async move {
            assert_eq!(self.held.fetch_add(1, Ordering::SeqCst), 0);
            self.log.lock().unwrap().push((Instant::now(), "enter"));
            Ok(GatePermit::new(Held(self)))
        })
    }
}

#[tokio::test]
async fn the_gate_is_free_while_backing_off() {
    let server = Server::start(sequence(vec![
        Reply::error(503, "busy").header("retry-after-ms", "200"),
        Reply::error(429, "slow down").header("retry-after-ms", "200"),
        Reply::ok("done"),
    ]))
    .await;
    let gate = Arc::new(CountingGate::default());
    let llm = provider(&server);
    let r = llm
        .complete_with(
            LlmRequest::prompt("x"),
            CallOptions::new().gate(gate.clone()),
        )
        .await;
    assert_eq!(r.unwrap().text, "done");
    assert_eq!(gate.held.load(Ordering::SeqCst), 0);
    let log = gate.log.lock().unwrap().clone();
    let kinds: Vec<&str> = log.iter().map(|(_, k)| *k).collect();
    assert_eq!(
        kinds,
        ["enter", "leave", "enter", "leave", "enter", "leave"]
    );
    let seen = server.seen();
    for i in 0..2 {
        let (left, reentered) = (log[2 * i + 1].0, log[2 * i + 2].0);
        assert!(reentered - left >= 200 * MS, "free for the whole backoff");
        assert!(
            left <= seen[i + 1].at && seen[i].at <= left,
            "left right after attempt {i}"
        );
    }
}

#[tokio::test]
async fn a_backing_off_call_lends_its_slot() {
    // One slot. Call A fails once and backs off 800 ms; call B, started meanwhile, gets the
    // slot and finishes while A is still waiting.
    let mut server = Server::start(|seen| match (seen.model(), seen.n) {
        ("a", 0) => Reply::error(503, "busy").header("retry-after-ms", "800"),
        _ => Reply::ok(seen.model()),
    })
    .await;
    let llm = Arc::new(provider(&server));
    let pool = Arc::new(tokio::sync::Semaphore::new(1));
    let call = |model: &str| {
        let (llm, pool) = (llm.clone(), pool.clone());
        let mut req = LlmRequest::prompt("x");
        req.model = Some(model.into());
        tokio::spawn(async move { llm.complete_with(req, CallOptions::new().gate(pool)).await })
    };
    let a = call("a");
    assert!(matches!(
        server.next_event(PATIENCE).await,
        Event::Received(0)
    ));
    let b = call("b");
    assert_eq!(b.await.unwrap().unwrap().text, "b");
    assert!(!a.is_finished(), "A is still backing off");
    assert_eq!(a.await.unwrap().unwrap().text, "a");
    let order: Vec<&str> = server
        .seen()
        .iter()
        .map(|s| s.model())
        .map(|m| if m == "a" { "a" } else { "b" })
        .collect();
    assert_eq!(order, ["a", "b", "a"]);
}

#[tokio::test]
async fn server_rate_limit_headers_pace_the_next_request() {
    // 10 requests per 2 s and none left: the next slot comes in 200 ms.
    let server = Server::start(|_| {
        Reply::ok("x")
            .header("x-ratelimit-limit-requests", "10")
            .header("x-ratelimit-remaining-requests", "0")
            .header("x-ratelimit-reset-requests", "2s")
    })
    .await;
    let llm = provider(&server);
    llm.complete(LlmRequest::prompt("x")).await.unwrap();
    llm.complete(LlmRequest::prompt("x")).await.unwrap();
    let seen = server.seen();
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= 190 * MS, "the second request waited only {gap:?}");
}

#[tokio::test]
async fn client_rpm_limit_fails_fast_when_no_slot_comes_in_time() {
    // One request per minute: the second call's next slot is 60 s away, past its 5 s
    // queue limit, so it fails at once without sending (the bucket's timing is unit-tested
    // in ratelimit.rs). (Its call timeout would not do: it starts when the call is sent.)
    let server = Server::start(|_| Reply::ok("x")).await;
    let llm =
        OpenAiCompatible::new(OpenAiConfig::new(&server.base_url, "m").requests_per_minute(1))
            .unwrap();
    llm.complete(LlmRequest::prompt("x")).await.unwrap();
    let t0 = Instant::now();
    let e = llm
        .complete_with(
            LlmRequest::prompt("x"),
            CallOptions::new().queue_timeout(Duration::from_secs(5)),
        )
        .await
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(1), "no hopeless wait");
    assert_eq!(e.kind(), "rate-limited");
    assert!(
        e.to_string()
            .contains("the requests per minute limit leaves no slot"),
        "{e}"
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_missing_key_fails_before_any_call() {
    let e =
        OpenAiCompatible::new(OpenAiConfig::new("https://api.example.com/v1", "m")).unwrap_err();
    assert_eq!(e.kind(), "config");
    assert!(e.to_string().contains("OPENAI_API_KEY is not set"), "{e}");
}

#[tokio::test]
async fn a_server_that_is_down_fails_fast_and_says_so() {
    // A port nobody listens on: connection refused. The default 120 s deadline must not be
    // waited out (it was: 19 silent attempts over 118 s).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/v1");
    let llm = OpenAiCompatible::new(OpenAiConfig::new(&url, "m")).unwrap();
    let t0 = Instant::now();
    let e = llm.complete(LlmRequest::prompt("x")).await.unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "gave up after {:?}",
        t0.elapsed()
    );
    assert_eq!(e.kind(), "connect");
    let m = e.to_string();
    assert!(
        m.starts_with(&format!("cannot connect: {url}/chat/completions: ")),
        "{m}"
    );
    assert!(m.contains("(after 3 attempts over "), "{m}");
    assert!(m.contains("gave up after 2 connect retries"), "{m}");
    let a = llm.activity();
    assert_eq!(
        (a.retries, a.on_wire, a.queued, a.backing_off),
        (2, 0, 0, 0)
    );
    assert_eq!(
        a.last_retry
            .as_deref()
            .map(|n| n.ends_with("(cannot connect)")),
        Some(true)
    );
    assert_eq!(llm.usage_by_model()["m"].failed, 1);
}

#[tokio::test]
async fn a_connection_reset_before_any_answer_is_retried_like_a_refused_one() {
    // A dead server's kept-alive connection, or one reset unread: the request never ran.
    let server = Server::start(sequence(vec![Reply::Reset, Reply::ok("fresh")])).await;
    let llm = provider(&server);
    assert_eq!(
        llm.complete(LlmRequest::prompt("x")).await.unwrap().text,
        "fresh"
    );
    assert_eq!(server.seen().len(), 2);
    let server = Server::start(|_| Reply::Reset).await;
    let llm = provider(&server);
    let e = llm.complete(LlmRequest::prompt("x")).await.unwrap_err();
    assert_eq!(e.kind(), "connect", "{e}");
    assert!(
        e.to_string().contains("gave up after 2 connect retries"),
        "{e}"
    );
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn a_base_url_without_v1_names_the_url_in_the_404() {
    let server = Server::start(|_| Reply::json(404, r#"{"detail":"Not Found"}"#)).await;
    let root = server.base_url.trim_end_matches("/v1").to_string();
    let llm = OpenAiCompatible::new(OpenAiConfig::new(&root, "m")).unwrap();
    let e = llm.complete(LlmRequest::prompt("x")).await.unwrap_err();
    assert_eq!(e.kind(), "bad-request");
    let m = e.to_string();
    assert!(
        m.starts_with(&format!(
            "bad request 404: Not Found (POST {root}/chat/completions: is the base URL right? \
             OpenAI-compatible servers usually serve the API under /v1) (after 1 attempt"
        )),
        "{m}"
    );
}

/// Reads a stream to its end, noting when each piece arrived.
async fn pieces_of(stream: &mut omega_llm::LlmStream) -> Vec<(Instant, Result<String, LlmError>)> {
    let mut out = Vec::new();
    while let Some(p) = stream.next().await {
        out.push((Instant::now(), p));
    }
    out
}

#[tokio::test]
async fn streams_pieces_as_the_server_sends_them() {
    let server = Server::start(|_| Reply::Sse {
        events: support::sse_answer(&["Par", "is", "!"]),
        gap: 100 * MS,
        hang: false,
    })
    .await;
    let llm = provider(&server);
    let mut stream = llm.stream_with(LlmRequest::prompt("capital?"), CallOptions::new());
    let pieces = pieces_of(&mut stream).await;
    let texts: Vec<&str> = pieces.iter().map(|(_, p)| p.as_deref().unwrap()).collect();
    assert_eq!(texts, ["Par", "is", "!"]);
    let spread = pieces[2].0 - pieces[0].0;
    assert!(
        spread >= 150 * MS,
        "pieces came as sent, not all at the end: {spread:?}"
    );
    let r = stream.response().unwrap();
    assert_eq!(r.text, "Paris!");
    assert_eq!(r.model, "served-model");
    assert_eq!(r.finish_reason, "stop");
    assert_eq!(
        (r.usage.prompt_tokens, r.usage.completion_tokens),
        (1, 3),
        "estimated: no usage in the stream"
    );
    let body = &server.seen()[0].body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    let m = llm.usage_by_model()["test-model"];
    assert_eq!((m.calls, m.attempts, m.completion_tokens), (1, 1, 3));
    assert_eq!(llm.activity().on_wire, 0);
}

#[tokio::test]
async fn dropping_a_stream_closes_the_connection_and_frees_the_slot() {
    let mut server = Server::start(|_| Reply::Sse {
        events: vec![support::delta("first")],
        gap: Duration::ZERO,
        hang: true,
    })
    .await;
    let llm = provider(&server);
    let pool = Arc::new(tokio::sync::Semaphore::new(1));
    let mut stream = llm.stream_with(
        LlmRequest::prompt("x"),
        CallOptions::new().gate(pool.clone()),
    );
    assert_eq!(stream.next().await, Some(Ok("first".to_string())));
    assert_eq!(pool.available_permits(), 0, "held while the answer streams");
    assert_eq!(llm.activity().on_wire, 1);
    assert!(matches!(
        server.next_event(PATIENCE).await,
        Event::Received(0)
    ));
    let dropped = Instant::now();
    drop(stream);
    match server.next_event(PATIENCE).await {
        Event::Closed(0, _) => assert!(
            dropped.elapsed() < Duration::from_secs(1),
            "closed after {:?}",
            dropped.elapsed()
        ),
        other => panic!("expected the connection closed, got {other:?}"),
    }
    assert_eq!(pool.available_permits(), 1);
    assert_eq!(llm.activity().on_wire, 0);
    let m = llm.usage_by_model()["test-model"];
    assert_eq!((m.calls, m.failed, m.cancelled), (0, 0, 1));
}

#[tokio::test]
async fn a_stream_past_its_deadline_fails_and_closes_the_connection() {
    let mut server = Server::start(|_| Reply::Sse {
        events: vec![support::delta("slow")],
        gap: Duration::ZERO,
        hang: true,
    })
    .await;
    let llm = provider(&server);
    let mut stream = llm.stream_with(
        LlmRequest::prompt("x"),
        CallOptions::new().timeout(300 * MS),
    );
    assert_eq!(stream.next().await, Some(Ok("slow".to_string())));
    assert_eq!(
        stream.next().await,
        Some(Err(LlmError::Timeout { after: 300 * MS }))
    );
    let failed = Instant::now();
    assert!(matches!(
        server.next_event(PATIENCE).await,
        Event::Received(0)
    ));
    match server.next_event(PATIENCE).await {
        Event::Closed(0, _) => assert!(failed.elapsed() < Duration::from_secs(1)),
        other => panic!("expected the connection closed, got {other:?}"),
    }
    assert_eq!(stream.next().await, None);
    assert_eq!(llm.usage_by_model()["test-model"].failed, 1);
}

#[tokio::test]
async fn a_stream_is_retried_only_before_it_starts() {
    let server = Server::start(sequence(vec![
        Reply::error(429, "slow down").header("retry-after-ms", "50"),
        Reply::Sse {
            events: vec![support::delta("half")],
            gap: Duration::ZERO,
            hang: false,
        },
    ]))
    .await;
    let llm = provider(&server);
    let mut stream = llm.stream_with(LlmRequest::prompt("x"), CallOptions::new());
    let pieces = pieces_of(&mut stream).await;
    assert_eq!(pieces[0].1, Ok("half".to_string()));
    let e = pieces[1].1.clone().unwrap_err();
    assert_eq!(e.kind(), "transport");
    assert_eq!(
        e.to_string(),
        "transport error: the server closed the stream after 1 pieces, before the answer was \
         complete"
    );
    assert_eq!(pieces.len(), 2);
    assert_eq!(
        server.seen().len(),
        2,
        "the 429 was retried, the cut stream was not"
    );
}

#[tokio::test]
async fn a_server_that_ignores_stream_true_gives_one_piece() {
    let server = Server::start(|_| Reply::json(200, &support::ok_body("all at once", 4, 3))).await;
    let llm = provider(&server);
    let r = llm
        .stream_with(LlmRequest::prompt("x"), CallOptions::new())
        .collect()
        .await
        .unwrap();
    assert_eq!(r.text, "all at once");
    assert_eq!((r.usage.prompt_tokens, r.usage.completion_tokens), (4, 3));
}

#[tokio::test]
async fn streamed_usage_from_the_server_is_counted() {
    let server = Server::start(|_| {
        let mut events = support::sse_answer(&["a", "b"]);
        events.insert(
            3,
            r#"{"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 2}}"#.into(),
        );
        Reply::Sse {
            events,
            gap: Duration::ZERO,
            hang: false,
        }
    })
    .await;
    let llm = provider(&server);
    let r = llm
        .stream_with(LlmRequest::prompt("x"), CallOptions::new())
        .collect()
        .await
        .unwrap();
    assert_eq!(r.text, "ab");
    assert_eq!((r.usage.prompt_tokens, r.usage.completion_tokens), (11, 2));
    let m = llm.usage_by_model()["test-model"];
    assert_eq!((m.prompt_tokens, m.completion_tokens), (11, 2));
}
