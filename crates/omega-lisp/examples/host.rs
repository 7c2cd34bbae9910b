//! A multi-threaded tokio host serving Lisp scripts through the `Engine` (SPEC §6.8):
//! eight tokio tasks each run scripts that fan out `llm.infer` calls (mock provider) and
//! call an async host tool; every script has an LLM budget; one long script is cancelled
//! from a plain OS thread; an allocation bomb meets its per-script heap limit while the other
//! scripts run on (the process counts its bytes, per thread too, with
//! `omega_lisp::heap::CountingAlloc`), another meets the runtime's; then the engine shuts
//! down cleanly.
//!
//! ```text
//! cargo run -p omega-lisp --example host
//! ```

use std::sync::Arc;
use std::time::Duration;

use omega_lisp::{Data, Engine, Limits, ScriptError, ScriptOptions};
use omega_llm::MockProvider;
use omega_sched::Scheduler;

/// A script per request: ask three questions at once, look the topic up with the host's
/// tool, and answer with a summary.
fn request_script(topic: &str) -> String {
    format!(
        r#"(define questions (list "who {topic}?" "what {topic}?" "why {topic}?"))
           (define answers (await-all (map (lambda (q) (async (lambda () (llm.infer q :max-tokens 16))))
                                           questions)))
           (define page (tool.search "{topic}"))
           {{:topic "{topic}" :answers (length answers) :page page}}"#
    )
}

/// jemalloc, counting the bytes in use (the meter of the runtime's heap limit) and each
/// thread's (what a script's heap limit is charged from).
#[global_allocator]
static ALLOC: omega_lisp::heap::CountingAlloc = omega_lisp::heap::counting_alloc();

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    omega_lisp::heap::set_meter(|| ALLOC.allocated());
    let engine = Engine::builder()
        .limits(Limits {
            max_heap_bytes: Some(256 << 20),
            ..Limits::default()
        })
        .scheduler(Scheduler::builder().max_concurrent_llm_calls(8))
        .llm(Arc::new(
            MockProvider::new().latency(Duration::from_millis(20)),
        ))
        .build()?;

    // An async host tool: its future runs on this tokio runtime (an HTTP client would go
    // here); only the calling script task waits for it.
    engine.register_async_fn("tool.search", |args| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let q = args
            .first()
            .and_then(Data::as_str)
            .unwrap_or("?")
            .to_string();
        Ok(Data::Str(format!("https://example.org/search?q={q}")))
    })?;

    // Eight tokio tasks, five requests each, every script limited to 3 LLM calls.
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let engine = engine.clone();
        workers.spawn(async move {
            let mut done = 0;
            for r in 0..5 {
                let topic = format!("topic-{w}-{r}");
                let opts = ScriptOptions::new()
                    .name(&format!("request-{w}-{r}"))
                    .llm_max_calls(3);
                let v = engine.spawn(&request_script(&topic), opts).await?.await?;
                let json = v.to_json();
                assert_eq!(json["answers"], 3);
                done += 1;
            }
            Ok::<_, ScriptError>(done)
        });
    }

    // A script that would run forever (and catches every error) — cancelled from another
    // OS thread after 100 ms; its finally block still runs.
    let forever = engine
        .spawn(
            r#"(try (let loop () (try (llm.infer "poll") (catch e (println "caught" (error-kind e)))) (loop))
                    (finally (println "forever: cleaned up")))"#,
            ScriptOptions::new().name("forever"),
        )
        .await?;
    let canceller = forever.canceller();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        canceller.cancel("operator pressed stop");
    });

    // A request's script gets a heap limit of its own: past 16 MiB it ends with `:limit`,
    // its finally block runs, and no other script is charged for its bytes.
    let request_bomb = engine
        .spawn(
            r#"(define (hoard xs) (hoard (cons (make-string 10000 #\x) xs)))
               (try (hoard '()) (finally (println "request bomb: cleaned up")))"#,
            ScriptOptions::new()
                .name("request-bomb")
                .max_heap_bytes(16 << 20),
        )
        .await?
        .await;

    // An allocation bomb without a limit of its own meets the runtime's heap limit; the
    // engine and the other scripts go on.
    let bomb = engine
        .spawn(
            r#"(define (grow xs) (grow (cons (make-string 100000 #\x) xs))) (grow '())"#,
            ScriptOptions::new().name("bomb"),
        )
        .await?
        .await;

    // A script over its budget fails with :limit naming the budget.
    let greedy = engine
        .spawn(
            r#"(map (lambda (i) (llm.infer "again")) (range 10))"#,
            ScriptOptions::new().name("greedy").llm_max_calls(3),
        )
        .await?
        .await;

    let mut served = 0;
    while let Some(r) = workers.join_next().await {
        served += r??;
    }
    println!("served {served} requests from 8 tokio tasks");
    println!("greedy script: {}", greedy.expect_err("over budget"));
    println!(
        "request-bomb script: {}",
        request_bomb.expect_err("over its own heap limit")
    );
    println!("bomb script: {}", bomb.expect_err("over the heap limit"));
    println!("forever script: {}", forever.await.expect_err("cancelled"));
    let s = engine.stats();
    println!(
        "scheduler: {} completed, {} cancelled, {} failed",
        s.completed, s.cancelled, s.failed
    );
    engine.shutdown("host exiting").await;
    println!("shut down cleanly");
    Ok(())
}
