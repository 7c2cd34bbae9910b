//! Cancelling a script at every kind of await point (SPEC §10): each time, every `finally`
//! runs, the scheduler's counts are exact, no LLM permit and no lock is left behind.

use std::sync::Arc;
use std::time::Duration;

use omega_lisp::{OutputBuffer, Runtime};
use omega_llm::MockProvider;
use omega_sched::{Scheduler, TaskOptions};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Timeline (mock latency 10 ms): sleep until 10, LLM call until 20, lock held while sleeping
/// until 30, a child task until 40, a yield, done at 40.
const SCRIPT: &str = r#"
(define (work)
  (try
    (begin
      (sleep 10)
      (llm.infer "question")
      (with-lock "shared" :mode :write (sleep 10))
      (await (async (lambda ()
                      (try (sleep 10) (finally (println "child finally"))))))
      (yield)
      :done)
    (finally (println "work finally"))))
(define helper (async (lambda () (try (work) (finally (println "helper finally"))))))
(try (work) (finally (println "top finally")))
"#;

async fn cancel_at(at: Option<u64>) -> (Result<String, String>, String, Scheduler) {
    let sched = Scheduler::builder().max_concurrent_llm_calls(1).build();
    let out = OutputBuffer::new();
    let rt = Runtime::builder()
        .scheduler(sched.clone())
        .llm(Arc::new(MockProvider::new().latency(ms(10))))
        .output(out.clone())
        .build();
    let result = sched
        .run_until(async move {
            let task = rt
                .spawn_str(SCRIPT, "cancel.lisp", TaskOptions::new())
                .expect("the script reads");
            if let Some(at) = at {
                omega_sched::sleep(ms(at)).await.expect("not in a task");
                task.cancel("test");
            }
            let r = task.result().await;
            rt.settle().await;
            r.map(|v| omega_lisp::write_string(&v))
                .map_err(|e| e.kind().to_string())
        })
        .await;
    (result, out.contents(), sched)
}

fn assert_clean(sched: &Scheduler, label: &str) {
    let st = sched.stats();
    assert_eq!(st.live(), 0, "{label}: {st:?}");
    assert_eq!(st.finished(), st.submitted, "{label}: {st:?}");
    assert_eq!(st.llm_in_flight, 0, "{label}: a permit was left behind");
    assert!(
        st.pools.iter().all(|p| p.in_use == 0 && p.waiting == 0),
        "{label}"
    );
    let locks = sched.locks().totals();
    assert_eq!(
        (locks.holders, locks.waiters, locks.resources),
        (0, 0, 0),
        "{label}: {locks:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn uncancelled_run_completes() {
    let (r, out, sched) = cancel_at(None).await;
    assert_eq!(r.unwrap(), ":done");
    // helper and top run interleaved; each prints its child's, its work's and its own finally.
    assert_eq!(out.matches("child finally").count(), 2);
    assert_eq!(out.matches("work finally").count(), 2);
    assert_eq!(out.matches("top finally").count(), 1);
    assert_eq!(out.matches("helper finally").count(), 1);
    assert_clean(&sched, "uncancelled");
}

#[tokio::test(start_paused = true)]
async fn cancel_at_every_await_point_runs_every_finally_and_leaks_nothing() {
    // 0: before the first poll; 5: in sleep; 15: in the LLM call; 25: holding the lock
    // (or waiting for it); 35: awaiting the child.
    for at in [0, 5, 15, 25, 35] {
        let (r, out, sched) = cancel_at(Some(at)).await;
        let label = format!("cancelled at {at}ms");
        assert_eq!(r.unwrap_err(), ":cancelled", "{label}");
        if at > 0 {
            assert_eq!(out.matches("top finally").count(), 1, "{label}: {out}");
            assert_eq!(out.matches("work finally").count(), 2, "{label}: {out}");
            // the helper is cancelled with "script finished" and waited out
            assert_eq!(out.matches("helper finally").count(), 1, "{label}: {out}");
        }
        let started_children = out.matches("child finally").count();
        assert!(started_children <= 2, "{label}: {out}");
        assert_clean(&sched, &label);
    }
}

/// Settling a script that leaves many suspended tasks behind is linear, not quadratic:
/// 20,000 stragglers are cancelled and waited out (SPEC §10: nothing stranded).
#[tokio::test(start_paused = true)]
async fn many_stragglers_settle() {
    let sched = Scheduler::new();
    let rt = Runtime::builder().scheduler(sched.clone()).build();
    let v = sched
        .run_until(rt.eval_str(
            "(define ts (map (lambda (i) (async (lambda () (sleep 1000000)))) (range 20000))) (sleep 1) (length ts)",
            "stragglers.lisp",
        ))
        .await
        .unwrap();
    assert_eq!(omega_lisp::write_string(&v), "20000");
    let st = sched.stats();
    assert_eq!((st.live(), st.cancelled), (0, 20000));
}
