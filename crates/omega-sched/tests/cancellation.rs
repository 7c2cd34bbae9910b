//! Level-triggered cancellation (SPEC §3.7, issue 16, the scheduler's half): once a task is
//! cancelled every later checkpoint fails again, except inside `shield`; cancel scopes
//! report themselves and end at their boundary. Paused clock: every time is exact.

mod common;

use std::time::Duration;

use omega_sched::{
    CancelMode, CancelScope, Cancelled, LockError, LockMode, Scheduler, TaskError, TaskHandle,
    TaskOptions, TaskState,
};
use tokio::time::Instant;

use common::{ms, Log};

fn coop() -> TaskOptions {
    TaskOptions::new().cancel_mode(CancelMode::Cooperative)
}

/// A task sleeping `secs` seconds, submitted on `s` while `scope` is current (so it follows
/// the scope, and through it the running task).
async fn sleeper_in_scope(
    scope: &CancelScope,
    s: &Scheduler,
    secs: u64,
) -> TaskHandle<Result<(), Cancelled>> {
    #[allow(clippy::async_yields_async)]
    scope
        .run(async {
            s.submit(
                omega_sched::sleep(Duration::from_secs(secs)),
                TaskOptions::new(),
            )
        })
        .await
}

#[tokio::test(start_paused = true)]
async fn every_checkpoint_keeps_failing_after_a_cancel_except_inside_shield() {
    let sched = Scheduler::builder().pool("db", 1).build();
    let log = Log::default();
    let s = sched.clone();
    let l = log.clone();
    let elapsed = sched
        .run_until(async move {
            let db = s.pool("db").unwrap();
            let held = db.try_acquire().unwrap();
            let blocker = s.submit(
                {
                    let s = s.clone();
                    async move {
                        let _g = s.locks().acquire("x", LockMode::Write).await.unwrap();
                        omega_sched::sleep(Duration::from_secs(60)).await.ok();
                    }
                },
                TaskOptions::new(),
            );
            let s2 = s.clone();
            let t0 = Instant::now();
            let h = s.submit_result(
                async move {
                    let first = omega_sched::sleep(Duration::from_secs(3600)).await;
                    l.push(format!("sleep: {first:?}"));
                    // A catch-all retry loop: every round fails again, at once.
                    for round in 0..2 {
                        let c = omega_sched::check_cancelled().is_err();
                        let y = omega_sched::yield_now().await.is_err();
                        let z = omega_sched::sleep(ms(100)).await.is_err();
                        let p = s2.pool("db").unwrap().acquire().await.is_err();
                        let k = matches!(
                            s2.locks().acquire("x", LockMode::Read).await,
                            Err(LockError::Cancelled { .. })
                        );
                        let child = s2.submit(async { 1 }, TaskOptions::new().detached());
                        let a = matches!(child.await, Err(TaskError::Cancelled { .. }));
                        l.push(format!("round {round}: {c} {y} {z} {p} {k} {a}"));
                    }
                    let seen = omega_sched::current_cancellation().unwrap();
                    l.push(format!("seen: {} {:?}", seen.reason, seen.scope));
                    // Cleanup that awaits: inside a shield nothing of the cancel shows.
                    omega_sched::shield(async {
                        assert!(omega_sched::check_cancelled().is_ok());
                        assert!(omega_sched::current_cancellation().is_none());
                        omega_sched::sleep(ms(5)).await.unwrap();
                    })
                    .await;
                    l.push(format!(
                        "after shield: {}",
                        omega_sched::check_cancelled().is_err()
                    ));
                    omega_sched::check_cancelled()?;
                    Ok::<_, omega_sched::Cancelled>(0u8)
                },
                coop(),
            );
            omega_sched::sleep(ms(10)).await.unwrap();
            assert!(h.cancel("stop"));
            match h.await {
                Err(TaskError::Cancelled { reason }) => assert_eq!(&*reason, "stop"),
                other => panic!("{other:?}"),
            }
            drop(held);
            blocker.cancel("done");
            let _ = blocker.await;
            t0.elapsed()
        })
        .await;
    assert_eq!(
        elapsed,
        ms(15),
        "cancelled at 10 ms, 5 ms of shielded cleanup"
    );
    assert_eq!(
        log.get(),
        [
            "sleep: Err(Cancelled { reason: \"stop\" })",
            "round 0: true true true true true true",
            "round 1: true true true true true true",
            "seen: stop None",
            "after shield: true",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_scope_timeout_fails_every_checkpoint_inside_and_ends_at_its_boundary() {
    let sched = Scheduler::new();
    let s = sched.clone();
    let (rounds, timed_out, after, t) = sched
        .run_until(async move {
            s.submit(
                async {
                    let t0 = Instant::now();
                    let scope = CancelScope::new().timeout(ms(50));
                    let rounds = scope
                        .run(async {
                            let mut failures = 0;
                            // A retry loop that swallows every error still ends promptly.
                            while failures < 3 {
                                if omega_sched::sleep(ms(20)).await.is_err() {
                                    failures += 1;
                                }
                            }
                            failures
                        })
                        .await;
                    let t = t0.elapsed();
                    // Outside the scope nothing is cancelled.
                    omega_sched::sleep(ms(5)).await.unwrap();
                    (
                        rounds,
                        scope.timed_out(),
                        omega_sched::check_cancelled().is_ok(),
                        t,
                    )
                },
                TaskOptions::new(),
            )
            .await
            .unwrap()
        })
        .await;
    assert_eq!((rounds, timed_out, after), (3, true, true));
    assert_eq!(t, ms(50), "within no time of the deadline");
}

#[tokio::test(start_paused = true)]
async fn nested_scopes_report_the_one_whose_deadline_expired() {
    let sched = Scheduler::new();
    let s = sched.clone();
    let seen = sched
        .run_until(async move {
            s.submit(
                async {
                    let mut seen = Vec::new();
                    // Inner shorter: the inner scope reports, the outer one goes on.
                    let outer = CancelScope::new().timeout(ms(100));
                    let inner = CancelScope::new().timeout(ms(30));
                    let (o, i) = (outer.id(), inner.id());
                    outer
                        .run(async {
                            inner
                                .run(async {
                                    let _ = omega_sched::sleep(Duration::from_secs(10)).await;
                                    let c = omega_sched::current_cancellation().unwrap();
                                    seen.push((c.scope == Some(i), c.reason.to_string()));
                                })
                                .await;
                            let _ = omega_sched::sleep(Duration::from_secs(10)).await;
                            let c = omega_sched::current_cancellation().unwrap();
                            seen.push((c.scope == Some(o), c.reason.to_string()));
                        })
                        .await;
                    // Outer shorter: both are cancelled; the outer one (outermost) reports.
                    let outer = CancelScope::new().timeout(ms(30));
                    let o = outer.id();
                    outer
                        .run(async {
                            let inner = CancelScope::new().timeout(ms(100));
                            inner
                                .run(async {
                                    let _ = omega_sched::sleep(Duration::from_secs(10)).await;
                                    let c = omega_sched::current_cancellation().unwrap();
                                    seen.push((c.scope == Some(o), c.reason.to_string()));
                                    assert!(inner.is_cancelled() && !inner.timed_out());
                                    // A shield masks the scopes around it.
                                    omega_sched::shield(omega_sched::sleep(ms(1)))
                                        .await
                                        .unwrap();
                                })
                                .await;
                        })
                        .await;
                    seen
                },
                TaskOptions::new(),
            )
            .await
            .unwrap()
        })
        .await;
    assert_eq!(
        seen,
        [
            (true, "timeout".to_string()),
            (true, "timeout".to_string()),
            (true, "timeout".to_string()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_cancel_inside_a_scope_reports_the_task_and_children_follow_the_scope() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let s2 = s.clone();
            let h = s.submit(
                async move {
                    let scope = CancelScope::new();
                    // Submitted while the scope is current; awaited outside it.
                    let child = sleeper_in_scope(&scope, &s2, 10).await;
                    scope.cancel("scope closed");
                    let r = child.await.unwrap_err().to_string();
                    assert_eq!(r, "task cancelled: scope closed");
                    scope
                        .run(async {
                            let _ = omega_sched::sleep(Duration::from_secs(10)).await;
                            omega_sched::current_cancellation()
                        })
                        .await
                },
                coop(),
            );
            omega_sched::sleep(ms(1)).await.unwrap();
            // The scope's own cancellation is visible inside it; no task cancel yet.
            assert!(h.is_finished());
            let c = h.await.unwrap().unwrap();
            assert_eq!(&*c.reason, "scope closed");
            assert!(c.scope.is_some());

            let h = s.submit(
                async {
                    CancelScope::new()
                        .run(async {
                            let _ = omega_sched::sleep(Duration::from_secs(10)).await;
                            omega_sched::current_cancellation()
                        })
                        .await
                },
                coop(),
            );
            omega_sched::sleep(ms(1)).await.unwrap();
            h.cancel("task cancelled");
            let c = h.await.unwrap().unwrap();
            assert_eq!((&*c.reason, c.scope), ("task cancelled", None));
        })
        .await;
}

/// A child is linked to its parent's token by one callback entry (no token node of its
/// own until asked for): cancelling the parent, by id or through its token, still reaches
/// every child and grandchild with the parent's reason, and a finished child leaves no
/// entry behind on the parent's token.
#[tokio::test(start_paused = true)]
async fn children_and_grandchildren_follow_their_parents_cancellation() {
    for through_token in [false, true] {
        let sched = Scheduler::new();
        let s = sched.clone();
        let log = Log::default();
        let l = log.clone();
        sched
            .run_until(async move {
                let s2 = s.clone();
                let parent = s.submit_result(
                    async move {
                        let me = omega_sched::current_token().unwrap();
                        // The parent's own link: one entry.
                        let base = me.callback_count();
                        assert_eq!(base, 1);
                        // A child that finishes unregisters its link.
                        let quick = s2.submit(async { 7 }, TaskOptions::new().name("quick"));
                        assert_eq!(me.callback_count(), base + 1);
                        assert_eq!(quick.await.unwrap(), 7);
                        assert_eq!(me.callback_count(), base);
                        let kids: Vec<_> = (0..3)
                            .map(|i| {
                                let s3 = s2.clone();
                                let l = l.clone();
                                s2.submit_result(
                                    async move {
                                        let r = if i == 0 {
                                            // A grandchild: the child's token is made now.
                                            let g = s3.submit(
                                                omega_sched::sleep(Duration::from_secs(60)),
                                                TaskOptions::new().name("grandchild"),
                                            );
                                            g.await.map(|_| ())
                                        } else {
                                            omega_sched::sleep(Duration::from_secs(60))
                                                .await
                                                .map_err(TaskError::from)
                                        };
                                        l.push(format!("{r:?}"));
                                        r
                                    },
                                    coop().name(format!("child {i}")),
                                )
                            })
                            .collect();
                        assert_eq!(me.callback_count(), base + 3, "one entry per child");
                        omega_sched::sleep(Duration::from_secs(3600)).await?;
                        drop(kids);
                        Ok::<_, omega_sched::Cancelled>(())
                    },
                    TaskOptions::new().name("parent"),
                );
                omega_sched::sleep(ms(10)).await.unwrap();
                assert_eq!(s.tasks_in(TaskState::Suspended).len(), 5);
                if through_token {
                    assert!(parent.token().cancel("via token"));
                } else {
                    assert!(s.cancel(parent.id(), "via token"));
                }
                let r = parent.await.unwrap_err().to_string();
                assert_eq!(r, "task cancelled: via token");
                omega_sched::sleep(ms(10)).await.unwrap();
                for t in s
                    .tasks()
                    .into_iter()
                    .filter(|t| t.name.as_deref() != Some("quick"))
                {
                    assert_eq!(t.state, TaskState::Cancelled, "{:?}", t.name);
                    assert_eq!(t.error.as_deref(), Some("task cancelled: via token"));
                }
                assert_eq!(s.tasks().len(), 6);
            })
            .await;
        let mut seen = log.get();
        seen.sort();
        assert_eq!(
            seen,
            [
                "Err(Cancelled { reason: \"via token\" })",
                "Err(Cancelled { reason: \"via token\" })",
                "Err(Cancelled { reason: \"via token\" })",
            ],
            "through_token = {through_token}"
        );
        assert_eq!(sched.stats().live(), 0);
    }
}

/// A child born after its parent was cancelled is cancelled at birth with the parent's
/// reason and never runs; its token, asked for later, is cancelled with that reason too.
#[tokio::test(start_paused = true)]
async fn a_child_born_after_its_parent_was_cancelled_never_runs() {
    let sched = Scheduler::new();
    let s = sched.clone();
    let ran = Log::default();
    let r = ran.clone();
    sched
        .run_until(async move {
            let s2 = s.clone();
            let parent = s.submit(
                async move {
                    let _ = omega_sched::sleep(Duration::from_secs(60)).await;
                    let r2 = r.clone();
                    let child = s2.submit(async move { r2.push("child ran") }, TaskOptions::new());
                    let token_reason = child.token().reason();
                    (child.await.unwrap_err().to_string(), token_reason)
                },
                coop(),
            );
            omega_sched::sleep(ms(1)).await.unwrap();
            parent.cancel("parent gone");
            let (err, token_reason) = parent.await.unwrap();
            assert_eq!(err, "task cancelled: parent gone");
            assert_eq!(token_reason.as_deref(), Some("parent gone"));
        })
        .await;
    assert!(ran.get().is_empty());
    assert_eq!(sched.stats().cancelled, 1);
}

/// A child spawned inside a cancel scope follows the scope, and through the scope its
/// parent; a child's token asked for after submission descends from the scope's token.
#[tokio::test(start_paused = true)]
async fn a_child_in_a_cancel_scope_follows_the_scope_and_the_parent() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let s2 = s.clone();
            let parent = s.submit(
                async move {
                    let scope = CancelScope::new();
                    let child = sleeper_in_scope(&scope, &s2, 60).await;
                    let child_token = child.token().clone();
                    assert!(!child_token.is_cancelled());
                    let r = child.await;
                    (r.map_err(|e| e.to_string()), child_token.reason())
                },
                coop(),
            );
            omega_sched::sleep(ms(1)).await.unwrap();
            // Cancelling the parent reaches the child through the scope's token.
            parent.cancel("from the top");
            let (r, token_reason) = parent.await.unwrap();
            assert_eq!(r, Err("task cancelled: from the top".to_string()));
            assert_eq!(token_reason.as_deref(), Some("from the top"));
        })
        .await;
    let st = sched.stats();
    assert_eq!((st.cancelled, st.completed), (1, 1));
}
