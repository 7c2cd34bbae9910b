//! `omega run` with LLM servers that misbehave (issue 13): a down server fails fast and
//! says so, retries show in `--trace` and `--progress`, `--trace` has no colour codes in a
//! pipe, the `--llm-*` flags and the `--max-llm` default, usage by the configured model.
//! Servers here are tiny loopback HTTP/1.1 servers on plain threads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn omega() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_omega"));
    for var in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OMEGA_LLM_BASE_URL",
        "OMEGA_LLM_MODEL",
        "OMEGA_LLM_TIMEOUT",
        "OMEGA_LLM_RPM",
        "OMEGA_LLM_TPM",
        "OMEGA_LLM_MAX_RETRIES",
        "OMEGA_LLM_CONNECT_RETRIES",
        "OMEGA_LLM_RETRY_SENT",
    ] {
        c.env_remove(var);
    }
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn script(dir: &tempfile::TempDir, src: &str) -> PathBuf {
    let p = dir.path().join("s.lisp");
    std::fs::write(&p, src).expect("temp file is writable");
    p
}

/// A loopback server answering request `n` (0-based) with `reply(n, body)`, a whole raw
/// HTTP response; it closes each connection after answering. Returns its `/v1` URL and the
/// bodies it has read.
fn serve(
    reply: impl Fn(usize, &str) -> String + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!(
        "http://127.0.0.1:{}/v1",
        listener.local_addr().expect("bound").port()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let reply = Arc::new(reply);
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { return };
            let (reply, log) = (reply.clone(), log.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone socket"));
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let body = text(&body);
                log.lock().expect("log").push(body.clone());
                let _ = conn.write_all(reply(n, &body).as_bytes());
            });
        }
    });
    (url, seen)
}

fn http(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut r = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r
}

fn completion(text: &str, model: &str) -> String {
    serde_json::json!({
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    })
    .to_string()
}

fn closed_port_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    format!(
        "http://127.0.0.1:{}/v1",
        l.local_addr().expect("bound").port()
    )
}

#[test]
fn a_down_server_fails_within_seconds_and_the_trace_shows_the_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = script(&dir, r#"(println (llm.infer "hello"))"#);
    let url = closed_port_url();
    let t0 = Instant::now();
    let out = omega()
        .args(["run", "--no-progress", "--trace", "--llm", "openai"])
        .arg(&f)
        .env("OMEGA_LLM_BASE_URL", &url)
        .env("OMEGA_LLM_MODEL", "m")
        .output()
        .expect("runs");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?} (it used to wait out a 120 s deadline)",
        t0.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "error[:llm]: llm.infer failed (connect): cannot connect: {url}/chat/completions: "
        )),
        "{err}"
    );
    assert!(
        err.contains("gave up after 2 connect retries: is the server running at this address?"),
        "{err}"
    );
    let retries = err.lines().filter(|l| l.contains("retrying in")).count();
    assert_eq!(retries, 2, "each retry is logged: {err}");
    assert!(
        err.contains("m: attempt 1 failed (cannot connect: "),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "no colour codes in a pipe: {err:?}");
}

#[test]
fn retries_show_in_the_progress_line_and_usage_counts_the_configured_model() {
    // First a 429 asking for 1 s, then an answer naming another model than the one asked.
    let (url, seen) = serve(|n, _| match n {
        0 => http(
            "429 Too Many Requests",
            &[("retry-after", "1")],
            r#"{"error": {"message": "slow down"}}"#,
        ),
        _ => http("200 OK", &[], &completion("hi", "served-name-2024")),
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let f = script(&dir, r#"(println (llm.infer "hello"))"#);
    let out = omega()
        .args(["run", "--progress", "--stats", "--llm", "openai"])
        .arg(&f)
        .env("OMEGA_LLM_BASE_URL", &url)
        .env("OMEGA_LLM_MODEL", "configured")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\n");
    assert_eq!(seen.lock().expect("log").len(), 2);
    let err = text(&out.stderr);
    assert!(
        err.contains("llm 0 · retrying in 1.0s (429)"),
        "the status line shows the pending retry: {err:?}"
    );
    let json_start = err.find('{').expect("--stats JSON");
    let stats: serde_json::Value =
        serde_json::from_str(&err[json_start..]).expect("--stats prints JSON");
    let by_model = stats["llm"]["by_model"].as_object().expect("by_model");
    assert_eq!(
        by_model.keys().collect::<Vec<_>>(),
        ["configured"],
        "counted under the model asked for, not the served name"
    );
    assert_eq!(by_model["configured"]["calls"], 1);
}

#[test]
fn failed_calls_count_under_the_configured_model_too() {
    let (url, _) = serve(|_, body| {
        if body.contains("bad") {
            http("400 Bad Request", &[], r#"{"error": {"message": "no"}}"#)
        } else {
            http("200 OK", &[], &completion("ok", "served-name"))
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let f = script(
        &dir,
        r#"(llm.infer "good") (try (llm.infer "bad") (catch e :failed))"#,
    );
    let out = omega()
        .args(["run", "--no-progress", "--stats", "--llm", "openai"])
        .arg(&f)
        .env("OMEGA_LLM_BASE_URL", &url)
        .env("OMEGA_LLM_MODEL", "configured")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stats: serde_json::Value = serde_json::from_str(&text(&out.stderr)).expect("JSON");
    assert_eq!(
        stats["llm"]["by_model"],
        serde_json::json!({"configured": {"calls": 1, "errors": 1, "prompt_tokens": 3, "completion_tokens": 1}})
    );
}

#[test]
fn sent_requests_are_not_retried_unless_the_flag_says_so() {
    let run = |extra: &[&str]| -> (Output, usize) {
        let (url, seen) = serve(|n, _| match n {
            0 => http(
                "500 Internal Server Error",
                &[],
                r#"{"error": {"message": "boom"}}"#,
            ),
            _ => http("200 OK", &[], &completion("second try", "m")),
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let f = script(&dir, r#"(println (llm.infer "x"))"#);
        let out = omega()
            .args(["run", "--no-progress", "--llm", "openai"])
            .args(extra)
            .arg(&f)
            .env("OMEGA_LLM_BASE_URL", &url)
            .env("OMEGA_LLM_MODEL", "m")
            .output()
            .expect("runs");
        let n = seen.lock().expect("log").len();
        (out, n)
    };
    let (out, n) = run(&[]);
    assert_eq!(
        (out.status.code(), n),
        (Some(1), 1),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("not retried: the request may have reached the model"));
    let (out, n) = run(&["--llm-retry-sent"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!((text(&out.stdout).as_str(), n), ("second try\n", 2));
}

#[test]
fn the_llm_flags_are_checked_and_shown_in_help() {
    let help = text(
        &omega()
            .args(["run", "--help"])
            .output()
            .expect("runs")
            .stdout,
    );
    for needle in [
        "--max-llm <N>",
        "[default: 4]",
        "--llm-timeout <SECS>",
        "OMEGA_LLM_TIMEOUT",
        "--llm-rpm <N>",
        "--llm-tpm <N>",
        "--llm-retries <N>",
        "--llm-connect-retries <N>",
        "--llm-retry-sent",
    ] {
        assert!(
            help.contains(needle),
            "{needle} missing from --help:\n{help}"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let f = script(&dir, "(println 1)");
    let usage = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = omega();
        c.args(["run"]).args(args).arg(&f);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().expect("runs");
        (out.status.code(), text(&out.stderr))
    };
    let (code, err) = usage(&["--llm-rpm", "10"], &[]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("the --llm-* settings only apply to --llm openai"),
        "{err}"
    );
    let local = [
        ("OMEGA_LLM_BASE_URL", "http://127.0.0.1:9/v1"),
        ("OMEGA_LLM_MODEL", "m"),
    ];
    let (code, err) = usage(&["--llm", "openai", "--llm-timeout", "0"], &local);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--llm-timeout must be a positive number of seconds"),
        "{err}"
    );
    let (code, err) = usage(
        &["--llm", "openai"],
        &[
            ("OMEGA_LLM_BASE_URL", "http:///v1"),
            ("OPENAI_API_KEY", "k"),
            ("OMEGA_LLM_MODEL", "m"),
        ],
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("names no host"), "{err}");
    let (code, err) = usage(
        &["--llm", "openai"],
        &[
            ("OMEGA_LLM_BASE_URL", "http://127.0.0.1:9/v1"),
            ("OMEGA_LLM_MODEL", "m"),
            ("OMEGA_LLM_RPM", "lots"),
        ],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("OMEGA_LLM_RPM must be a whole number, not \"lots\""),
        "{err}"
    );
}

#[test]
fn max_llm_defaults_to_four() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = script(
        &dir,
        "(length (await-all (map (lambda (i) (async (lambda () (llm.infer \"q\")))) (range 10))))",
    );
    let out = omega()
        .args(["run", "--no-progress", "--mock-latency", "30", "--stats"])
        .arg(&f)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stats: serde_json::Value = serde_json::from_str(&text(&out.stderr)).expect("JSON");
    let pool = &stats["pools"][0];
    assert_eq!(
        (pool["capacity"].as_u64(), pool["peak_in_use"].as_u64()),
        (Some(4), Some(4))
    );
}

#[test]
fn llm_stream_prints_pieces_as_they_come() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = script(
        &dir,
        r#"(define whole (llm.stream "a b" (lambda (p) (println "piece:" p))))
           (println "whole:" whole)"#,
    );
    let out = omega()
        .args(["run", "--no-progress"])
        .arg(&f)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "piece: echo: \npiece: a \npiece: b\nwhole: echo: a b\n"
    );
}

#[test]
fn time_queued_for_a_slot_does_not_count_against_the_llm_timeout() {
    // 4 calls of 400 ms one at a time take 1.6 s; each has 1 s from when it is sent. They
    // used to share a clock started when they were made, so the last ones timed out unsent.
    let (url, seen) = serve(|_, _| {
        std::thread::sleep(Duration::from_millis(400));
        http("200 OK", &[], &completion("ok", "m"))
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let f = script(
        &dir,
        "(println (await-all (map (lambda (i) (async (lambda () (llm.infer \"q\")))) (range 4))))",
    );
    let out = omega()
        .args([
            "run",
            "--no-progress",
            "--llm",
            "openai",
            "--max-llm",
            "1",
            "--llm-timeout",
            "1",
        ])
        .arg(&f)
        .env("OMEGA_LLM_BASE_URL", &url)
        .env("OMEGA_LLM_MODEL", "m")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "(ok ok ok ok)\n");
    assert_eq!(seen.lock().expect("log").len(), 4);
}
