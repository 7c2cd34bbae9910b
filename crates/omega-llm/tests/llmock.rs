//! End to end against llmock (PyPI `llmock`), an independent OpenAI-compatible mock server
//! with fault injection, driven over its HTTP control API:
//!
//! * `POST /_llmock/scenario {"behaviors": [...]}` queues behaviours (`fail`, `delay`, …),
//!   each matching requests by `model` here, so tests running at once do not interfere;
//! * `GET /_llmock/requests` lists every request served, with `status`, `started_at`,
//!   `ended_at` (monotonic seconds), `model`, `retry_after` and `completed`;
//! * `GET /_llmock/verdict` grades the client (Retry-After ignored, retry storms, …).
//!
//! `.ci/run` starts `llmock serve --rpm 60` on a loopback port and exports its root URL as
//! `OMEGA_TEST_LLMOCK_URL`. Without it these tests print why and pass without running.
//! Each test uses its own model names (for scenarios and the request log) and its own API
//! key (llmock keeps rate-limit buckets per key).
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use omega_llm::{CallOptions, LlmProvider, LlmRequest, OpenAiCompatible, OpenAiConfig};
use serde_json::{json, Value};
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);

/// llmock's root URL, or `None` after printing why the test is skipped.
fn llmock(test: &str) -> Option<String> {
    match std::env::var("OMEGA_TEST_LLMOCK_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().trim_end_matches('/').to_string()),
        _ => {
            eprintln!(
                "skipping {test}: OMEGA_TEST_LLMOCK_URL is not set. .ci/run starts llmock; to run \
                 these tests locally: python3 -m venv .venv && .venv/bin/pip install llmock && \
                 .venv/bin/llmock serve --host 127.0.0.1 --port 8000 --rpm 60 & \
                 OMEGA_TEST_LLMOCK_URL=http://127.0.0.1:8000 cargo test -p omega-llm --test llmock"
            );
            None
        }
    }
}

/// A name no other test (or earlier run against the same server) uses.
fn unique(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("omega-{what}-{}-{nanos}", std::process::id())
}

fn provider(url: &str, model: &str) -> OpenAiCompatible {
    OpenAiCompatible::new(
        OpenAiConfig::new(format!("{url}/v1"), model)
            .api_key(unique("key"))
            .backoff(20 * MS, 200 * MS)
            .timeout(Duration::from_secs(30)),
    )
    .unwrap()
}

/// An HTTP client for llmock's control API (never through a proxy).
fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn scenario(url: &str, behaviors: Value) {
    let r = http()
        .post(format!("{url}/_llmock/scenario"))
        .json(&json!({ "behaviors": behaviors }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
}

/// llmock's log of the requests for `model`, oldest first (it waits for those in flight).
async fn requests(url: &str, model: &str) -> Vec<Value> {
    let log: Value = http()
        .get(format!("{url}/_llmock/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["model"] == model)
        .cloned()
        .collect()
}

/// Findings of llmock's verdict with severity `error` about any of `records`.
async fn verdict_errors(url: &str, records: &[Value]) -> Vec<Value> {
    let verdict: Value = http()
        .get(format!("{url}/_llmock/verdict"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seqs: Vec<&Value> = records.iter().map(|r| &r["seq"]).collect();
    verdict["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .filter(|f| {
            f["requests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| seqs.contains(&s))
        })
        .cloned()
        .collect()
}

fn seconds(record: &Value, field: &str) -> f64 {
    record[field].as_f64().unwrap()
}

fn prompt(model: &str, text: &str) -> LlmRequest {
    let mut req = LlmRequest::prompt(text);
    req.model = Some(model.into());
    req
}

#[tokio::test]
async fn llmock_concurrent_calls_overlap_up_to_the_gate() {
    let Some(url) = llmock("llmock_concurrent_calls_overlap_up_to_the_gate") else {
        return;
    };
    let model = unique("overlap");
    scenario(
        &url,
        json!([{"type": "delay", "seconds": 0.3, "times": 6, "match": {"model": model}}]),
    )
    .await;
    let llm = Arc::new(provider(&url, &model));
    let pool = Arc::new(tokio::sync::Semaphore::new(3)); // --max-llm 3
    let t0 = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..6 {
        let (llm, pool, req) = (
            llm.clone(),
            pool.clone(),
            prompt(&model, &format!("call {i}")),
        );
        calls.spawn(async move { llm.complete_with(req, CallOptions::new().gate(pool)).await });
    }
    while let Some(r) = calls.join_next().await {
        assert!(!r.unwrap().unwrap().text.is_empty());
    }
    assert!(t0.elapsed() >= 600 * MS, "6 calls of 300 ms, 3 at a time");

    let log = requests(&url, &model).await;
    assert_eq!(log.len(), 6);
    assert!(log.iter().all(|r| r["status"] == 200));
    // The most requests llmock was serving at once.
    let most = log
        .iter()
        .map(|r| {
            let t = seconds(r, "started_at");
            log.iter()
                .filter(|o| seconds(o, "started_at") <= t && t < seconds(o, "ended_at"))
                .count()
        })
        .max()
        .unwrap();
    assert_eq!(most, 3, "calls overlap, bounded by the gate's 3 slots");
    assert_eq!(llm.usage_by_model()[&model].calls, 6);
}

#[tokio::test]
async fn llmock_rate_limited_then_success() {
    let Some(url) = llmock("llmock_rate_limited_then_success") else {
        return;
    };
    let model = unique("429");
    scenario(
        &url,
        json!([{"type": "fail", "status": 429, "retry_after": 0.2, "times": 2, "match": {"model": model}}]),
    )
    .await;
    let llm = provider(&url, &model);
    let r = llm.complete(prompt(&model, "hello")).await.unwrap();
    assert!(!r.text.is_empty());

    let log = requests(&url, &model).await;
    let statuses: Vec<&Value> = log.iter().map(|r| &r["status"]).collect();
    assert_eq!(statuses, [&json!(429), &json!(429), &json!(200)]);
    for pair in log.windows(2) {
        let waited = seconds(&pair[1], "started_at") - seconds(&pair[0], "ended_at");
        assert!(waited >= 0.19, "waited {waited:.3}s of Retry-After 0.2s");
    }
    assert_eq!(verdict_errors(&url, &log).await, Vec::<Value>::new());
    let m = llm.usage_by_model()[&model];
    assert_eq!((m.calls, m.attempts), (1, 3));
}

#[tokio::test]
async fn llmock_client_errors_are_not_retried() {
    let Some(url) = llmock("llmock_client_errors_are_not_retried") else {
        return;
    };
    let model = unique("401");
    scenario(
        &url,
        json!([{"type": "fail", "status": 401, "message": "Incorrect API key provided", "match": {"model": model}}]),
    )
    .await;
    let llm = provider(&url, &model);
    let e = llm.complete(prompt(&model, "hello")).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("bad request 401: Incorrect API key provided (after 1 attempt"),
        "{e}"
    );
    let log = requests(&url, &model).await;
    assert_eq!(log.len(), 1);
    assert_eq!(verdict_errors(&url, &log).await, Vec::<Value>::new());
}

#[tokio::test]
async fn llmock_cancellation_drops_the_request() {
    let Some(url) = llmock("llmock_cancellation_drops_the_request") else {
        return;
    };
    let model = unique("cancel");
    scenario(
        &url,
        json!([{"type": "delay", "seconds": 1.0, "match": {"model": model}}]),
    )
    .await;
    let llm = provider(&url, &model);
    let t0 = Instant::now();
    let r = tokio::time::timeout(300 * MS, llm.complete(prompt(&model, "hello"))).await;
    assert!(r.is_err(), "the call was still running at 300 ms");
    assert!(
        t0.elapsed() < 900 * MS,
        "dropping the call returned at once"
    );
    let m = llm.usage_by_model()[&model];
    assert_eq!((m.calls, m.cancelled, m.attempts), (0, 1, 1));

    // llmock saw exactly one request, never a retry. (Its log marks non-streamed answers
    // complete even when the client has gone: uvicorn drops the late write silently, so
    // the close itself is checked against the in-process server in openai_http.rs.)
    let log = requests(&url, &model).await;
    assert_eq!(log.len(), 1, "{log:?}");
}

#[tokio::test]
async fn llmock_rate_limit_headers_are_respected() {
    let Some(url) = llmock("llmock_rate_limit_headers_are_respected") else {
        return;
    };
    let model = unique("rpm");
    let key = unique("key");
    // Ask llmock for its quota with a raw request on the same key.
    let probe = http()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": unique("probe"), "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let limit = probe
        .headers()
        .get("x-ratelimit-limit-requests")
        .and_then(|v| v.to_str().ok()?.parse::<u32>().ok());
    let Some(limit) = limit.filter(|l| *l <= 120) else {
        eprintln!(
            "skipping llmock_rate_limit_headers_are_respected: llmock sends no requests-per-minute \
             quota of at most 120 (start it with --rpm 60, as .ci/run does)"
        );
        return;
    };
    let llm = OpenAiCompatible::new(
        OpenAiConfig::new(format!("{url}/v1"), &model)
            .api_key(&key)
            .timeout(Duration::from_secs(30)),
    )
    .unwrap();
    // The probe took one request: `limit - 1` go at once, then llmock's headers say none
    // is left and refills come at limit/60 per second.
    let extra = 3;
    let t0 = Instant::now();
    for i in 0..limit - 1 + extra {
        llm.complete(prompt(&model, &format!("request {i}")))
            .await
            .unwrap();
    }
    let elapsed = t0.elapsed();
    let log = requests(&url, &model).await;
    assert_eq!(log.len() as u32, limit - 1 + extra);
    let refused = log.iter().filter(|r| r["status"] == 429).count();
    assert_eq!(refused, 0, "the client paced itself from the headers");
    let refill = Duration::from_secs_f64(60.0 / f64::from(limit));
    assert!(
        elapsed >= refill * (extra - 1),
        "{extra} requests past the quota took only {elapsed:?}"
    );
}
