//! `llm.infer` and `llm.stream` on the real scheduler with the mock provider and tokio's
//! paused clock: streaming, usage by model, reply limits, and what a task cancelled while
//! queued for an llm slot is told.

use std::sync::Arc;
use std::time::Duration;

use omega_lisp::{write_string, ErrorKind, Limits, OutputBuffer, Runtime};
use omega_llm::MockProvider;
use omega_sched::Scheduler;

fn runtime(sched: &Scheduler, mock: MockProvider, limits: Limits, out: &OutputBuffer) -> Runtime {
    Runtime::builder()
        .scheduler(sched.clone())
        .llm(Arc::new(mock))
        .limits(limits)
        .output(out.clone())
        .build()
}

/// Runs `src` as a script; returns its value (written) or its error, and the output.
async fn run(
    sched: &Scheduler,
    mock: MockProvider,
    limits: Limits,
    src: &str,
) -> (Result<String, omega_lisp::LispError>, String, Runtime) {
    let out = OutputBuffer::new();
    let rt = runtime(sched, mock, limits, &out);
    let r = sched
        .run_until(async { rt.eval_str(src, "llm.lisp").await })
        .await;
    (r.map(|v| write_string(&v)), out.contents(), rt)
}

#[tokio::test(start_paused = true)]
async fn a_stream_calls_back_per_piece_and_holds_its_slot_until_the_end() {
    let sched = Scheduler::builder().max_concurrent_llm_calls(2).build();
    let (r, out, rt) = run(
        &sched,
        MockProvider::new().latency(Duration::from_millis(50)),
        Limits::default(),
        r#"(define seen '())
           (define whole
             (llm.stream "one two" (lambda (p)
                                     (set! seen (cons (list p (get (stats) :llm-in-flight)) seen)))))
           (println whole)
           (list (reverse seen) (get (stats) :llm-in-flight))"#,
    )
    .await;
    assert_eq!(out, "echo: one two\n");
    assert_eq!(
        r.unwrap(),
        r#"((("echo: " 1) ("one " 1) ("two" 1)) 0)"#,
        "one slot while pieces arrive, none after"
    );
    let u = rt.llm_usage_by_model()["mock"];
    assert_eq!((u.calls, u.errors, u.completion_tokens), (1, 0, 3));
}

#[tokio::test(start_paused = true)]
async fn a_raising_callback_closes_the_stream_and_frees_its_slot() {
    let sched = Scheduler::new();
    let (r, _, rt) = run(
        &sched,
        MockProvider::new(),
        Limits::default(),
        r#"(define n 0)
           (define caught
             (try (llm.stream "a b c d" (lambda (p) (set! n (+ n 1)) (if (= n 2) (error :enough "stop"))))
                  (catch e (error-message e))))
           (list caught n (get (stats) :llm-in-flight))"#,
    )
    .await;
    assert_eq!(r.unwrap(), r#"("stop" 2 0)"#);
    assert_eq!(
        rt.llm_usage().calls,
        0,
        "an abandoned stream is not a completed call"
    );
}

#[tokio::test(start_paused = true)]
async fn usage_is_counted_under_the_configured_model_whatever_the_outcome() {
    // Failed calls used to be counted under "default", successes under the served name.
    let mock = MockProvider::new()
        .replies_json(r#"[{"contains": "bad", "error": "server", "message": "overloaded"}]"#)
        .unwrap();
    let (r, _, rt) = run(
        &Scheduler::new(),
        mock,
        Limits::default(),
        r#"(llm.infer "good")
           (try (llm.infer "bad") (catch e :failed))
           (llm.stream "good" (lambda (p) p))
           (try (llm.stream "bad" (lambda (p) p)) (catch e :failed))
           (llm.infer "good" :model "other")
           (keys (get (stats) :llm-models))"#,
    )
    .await;
    let by_model = rt.llm_usage_by_model();
    assert_eq!(
        by_model.keys().collect::<Vec<_>>(),
        ["mock", "other"],
        "{r:?}"
    );
    let m = by_model["mock"];
    assert_eq!((m.calls, m.errors), (2, 2));
    assert_eq!((by_model["other"].calls, by_model["other"].errors), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn replies_are_held_to_max_string_len() {
    let limits = Limits {
        max_string_len: 12,
        ..Limits::default()
    };
    let (r, _, _) = run(
        &Scheduler::new(),
        MockProvider::new(),
        limits.clone(),
        r#"(llm.infer "a much longer prompt")"#,
    )
    .await;
    let e = r.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Limit);
    assert_eq!(e.message(), "limit exceeded: max_string_len (12)");
    // A stream is stopped at the piece that crosses the limit, with the slot given back.
    let sched = Scheduler::new();
    let (r, out, _) = run(
        &sched,
        MockProvider::new(),
        limits,
        r#"(llm.stream "w x y z" (lambda (p) (println p)))"#,
    )
    .await;
    assert_eq!(
        r.unwrap_err().message(),
        "limit exceeded: max_string_len (12)"
    );
    assert_eq!(
        out, "echo: \nw \nx \ny \n",
        "12 bytes pass; the last piece would make 13"
    );
    assert_eq!(sched.stats().llm_in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_task_timed_out_while_queued_for_an_llm_slot_is_told_so() {
    // One slot, held 1 s by the first call; the second task's 300 ms run out in the queue.
    let one_slot = || Scheduler::builder().max_concurrent_llm_calls(1).build();
    let slow_mock = || MockProvider::new().latency(Duration::from_secs(1));
    let (r, _, _) = run(
        &one_slot(),
        slow_mock(),
        Limits::default(),
        r#"(define first (async (lambda () (llm.infer "first"))))
           (define queued (async (lambda () (llm.infer "second")) :timeout 300))
           (define slow (async (lambda () (llm.infer "third")) :timeout 1500))
           (list (try (await queued) (catch e (list (error-kind e) (error-message e))))
                 (await first)
                 (try (await slow) (catch e (list (error-kind e) (error-message e)))))"#,
    )
    .await;
    // "third" got the slot at 1 s and ran out of time on the wire at 1.5 s: no note.
    assert_eq!(
        r.unwrap(),
        r#"((:timeout "task timed out after 300ms (queued 0.3s for an llm slot)") "echo: first" (:timeout "task timed out after 1.5s"))"#
    );
    // Inside the task, the error it sees (in a finally, say) says the same.
    let (r, out, _) = run(
        &one_slot(),
        slow_mock(),
        Limits::default(),
        r#"(define first (async (lambda () (llm.infer "first"))))
           (define queued
             (async (lambda () (try (llm.infer "second") (catch e (println (error-message e)) (raise e))))
                    :timeout 300))
           (await first)
           (try (await queued) (catch e (error-kind e)))"#,
    )
    .await;
    assert_eq!(r.unwrap(), ":timeout");
    assert_eq!(out, "timed out (queued 0.3s for an llm slot)\n");
}

#[tokio::test(start_paused = true)]
async fn calling_the_model_from_a_stream_that_holds_every_slot_fails_instead_of_hanging() {
    let src = r#"(define got '())
                 (llm.stream "a b" (lambda (p) (set! got (cons (llm.infer p) got))))
                 (list (reverse got) (get (stats) :llm-in-flight))"#;
    let one_slot = Scheduler::builder().max_concurrent_llm_calls(1).build();
    let (r, _, _) = run(&one_slot, MockProvider::new(), Limits::default(), src).await;
    let e = r.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Llm);
    assert_eq!(
        e.message(),
        "llm.infer: this task's open llm.stream calls hold all 1 llm slots (--max-llm), so it \
         would wait for one forever: call the model once the stream has ended, or allow more \
         calls at once"
    );
    assert_eq!(one_slot.stats().llm_in_flight, 0);
    // With a slot to spare it works, and a stream closed is no longer counted.
    let two_slots = Scheduler::builder().max_concurrent_llm_calls(2).build();
    let (r, _, _) = run(&two_slots, MockProvider::new(), Limits::default(), src).await;
    assert_eq!(r.unwrap(), r#"(("echo: echo: " "echo: a " "echo: b") 0)"#);
    let (r, _, _) = run(
        &Scheduler::builder().max_concurrent_llm_calls(1).build(),
        MockProvider::new(),
        Limits::default(),
        r#"(llm.stream "a" (lambda (p) p)) (llm.stream "b" (lambda (p) p)) (llm.infer "c")"#,
    )
    .await;
    assert_eq!(r.unwrap(), r#""echo: c""#);
}

#[tokio::test(start_paused = true)]
async fn bad_stream_arguments_are_clear_errors() {
    for (src, kind, msg) in [
        (
            r#"(llm.stream "x" 5)"#,
            ErrorKind::TypeError,
            "llm.stream expects a procedure to call with each piece",
        ),
        (
            "(llm.stream 5 (lambda (p) p))",
            ErrorKind::TypeError,
            "llm.stream expects a prompt string, got 5 (an integer)",
        ),
        (
            r#"(llm.stream "x" (lambda (p) p) :max-tokens -1)"#,
            ErrorKind::TypeError,
            "llm.stream :max-tokens expects a positive integer, got -1 (an integer)",
        ),
        (
            r#"(llm.stream "x" (lambda (p) p) :colour 1)"#,
            ErrorKind::Error,
            "llm.stream: unknown option :colour (expected one of :model :system :temperature :max-tokens)",
        ),
    ] {
        let (r, _, _) = run(&Scheduler::new(), MockProvider::new(), Limits::default(), src).await;
        let e = r.unwrap_err();
        assert_eq!((e.kind(), e.message()), (&kind, msg), "{src}");
    }
}
