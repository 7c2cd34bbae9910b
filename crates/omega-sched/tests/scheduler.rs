//! Behaviour of the scheduler core (SPEC §3): order, limits, lending, timeouts,
//! cancellation, panics, pools, stats, history and events. Timed tests run on tokio's
//! paused clock, so durations are exact.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use omega_sched::{
    CancelMode, ConfigPatch, ErrorKind, EventKind, Fairness, Scheduler, TaskError, TaskOptions,
    TaskState,
};
use parking_lot::Mutex;
use tokio::time::Instant;

use common::{ms, Log};

#[tokio::test(start_paused = true)]
async fn fifo_admits_in_submission_order() {
    let sched = Scheduler::builder().max_concurrent_tasks(1).build();
    let log = Log::default();
    let s = sched.clone();
    let l = log.clone();
    sched
        .run_until(async move {
            let hs: Vec<_> = (0..5)
                .map(|i| {
                    let l = l.clone();
                    s.submit(
                        async move { l.push(format!("t{i}")) },
                        TaskOptions::new().priority(i),
                    )
                })
                .collect();
            s.await_all(hs).await.unwrap();
        })
        .await;
    assert_eq!(log.get(), ["t0", "t1", "t2", "t3", "t4"]);
}

#[tokio::test(start_paused = true)]
async fn priority_admits_highest_first_fifo_among_equals() {
    let sched = Scheduler::builder()
        .max_concurrent_tasks(1)
        .fairness(Fairness::Priority)
        .build();
    let log = Log::default();
    let s = sched.clone();
    let l = log.clone();
    sched
        .run_until(async move {
            // The first is admitted at once (a slot is free); the rest wait and are ordered.
            let hs: Vec<_> = [
                ("first", 0),
                ("low", 1),
                ("hi-a", 5),
                ("mid", 3),
                ("hi-b", 5),
            ]
            .into_iter()
            .map(|(name, p)| {
                let l = l.clone();
                s.submit(async move { l.push(name) }, TaskOptions::new().priority(p))
            })
            .collect();
            s.await_all(hs).await.unwrap();
        })
        .await;
    assert_eq!(log.get(), ["first", "hi-a", "hi-b", "mid", "low"]);
}

#[tokio::test(start_paused = true)]
async fn priority_aging_prevents_starvation() {
    // aging: +1 level per 10ms of waiting. A priority-0 task that has waited 100ms beats a
    // priority-5 task that just arrived.
    let sched = Scheduler::builder()
        .max_concurrent_tasks(1)
        .fairness(Fairness::Priority)
        .aging(ms(10))
        .build();
    let log = Log::default();
    let s = sched.clone();
    let l = log.clone();
    sched
        .run_until(async move {
            let l1 = l.clone();
            let blocker = s.submit(
                async move {
                    omega_sched::sleep(ms(100)).await.unwrap();
                    l1.push("blocker");
                },
                TaskOptions::new(),
            );
            let l2 = l.clone();
            let old = s.submit(async move { l2.push("old-low") }, TaskOptions::new());
            omega_sched::sleep(ms(99)).await.unwrap();
            let l3 = l.clone();
            let new = s.submit(
                async move { l3.push("new-high") },
                TaskOptions::new().priority(5),
            );
            s.await_all(vec![blocker, old, new]).await.unwrap();
        })
        .await;
    assert_eq!(log.get(), ["blocker", "old-low", "new-high"]);
}

#[tokio::test(start_paused = true)]
async fn round_robin_admits_one_per_parent_in_turn() {
    for (fairness, expected) in [
        (
            Fairness::RoundRobin,
            ["a0", "r0", "a1", "r1", "a2", "r2"].as_slice(),
        ),
        (
            Fairness::Fifo,
            ["a0", "a1", "a2", "r0", "r1", "r2"].as_slice(),
        ),
    ] {
        let sched = Scheduler::builder()
            .max_concurrent_tasks(1)
            .fairness(fairness)
            .build();
        let log = Log::default();
        let s = sched.clone();
        let l = log.clone();
        sched
            .run_until(async move {
                let s2 = s.clone();
                let parent = s.submit(
                    async move {
                        let mut hs = Vec::new();
                        for i in 0..3 {
                            let l = l.clone();
                            hs.push(s2.submit(
                                async move { l.push(format!("a{i}")) },
                                TaskOptions::new(),
                            ));
                        }
                        for i in 0..3 {
                            let l = l.clone();
                            hs.push(s2.submit(
                                async move { l.push(format!("r{i}")) },
                                TaskOptions::new().detached(),
                            ));
                        }
                        hs
                    },
                    TaskOptions::new(),
                );
                let hs = parent.await.unwrap();
                s.await_all(hs).await.unwrap();
            })
            .await;
        assert_eq!(log.get(), expected, "{fairness:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn ready_queue_never_polls_a_task_twice_while_another_waits() {
    let sched = Scheduler::builder().fairness(Fairness::RoundRobin).build();
    let log = Log::default();
    let s = sched.clone();
    let l = log.clone();
    sched
        .run_until(async move {
            let hs: Vec<_> = ["a", "b", "c"]
                .into_iter()
                .map(|name| {
                    let l = l.clone();
                    s.submit(
                        async move {
                            for i in 0..3 {
                                l.push(format!("{name}{i}"));
                                omega_sched::yield_now().await.unwrap();
                            }
                        },
                        TaskOptions::new(),
                    )
                })
                .collect();
            s.await_all(hs).await.unwrap();
        })
        .await;
    assert_eq!(
        log.get(),
        ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]
    );
}

#[tokio::test(start_paused = true)]
async fn limit_is_never_exceeded() {
    let limit = 4;
    let sched = Scheduler::builder().max_concurrent_tasks(limit).build();
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let s = sched.clone();
    let (a, p) = (active.clone(), peak.clone());
    sched
        .run_until(async move {
            let hs: Vec<_> = (0..50u64)
                .map(|i| {
                    let (a, p, s2) = (a.clone(), p.clone(), s.clone());
                    s.submit(
                        async move {
                            let now = a.fetch_add(1, Ordering::SeqCst) + 1;
                            p.fetch_max(now, Ordering::SeqCst);
                            let st = s2.stats();
                            assert!(st.running + st.suspended <= 4, "{st:?}");
                            omega_sched::sleep(ms(1 + i % 7)).await.unwrap();
                            omega_sched::yield_now().await.unwrap();
                            a.fetch_sub(1, Ordering::SeqCst);
                        },
                        TaskOptions::new(),
                    )
                })
                .collect();
            s.await_all(hs).await.unwrap();
        })
        .await;
    assert_eq!(peak.load(Ordering::SeqCst), limit);
    let st = sched.stats();
    assert_eq!(st.peak_admitted, limit);
    assert_eq!(st.completed, 50);
    assert_eq!(st.queue_wait.count, 50);
}

fn nest(s: Scheduler, depth: u32) -> BoxFuture<'static, u32> {
    async move {
        if depth == 0 {
            return 0;
        }
        let child = s.submit(nest(s.clone(), depth - 1), TaskOptions::new());
        child.await.expect("nested child completes") + 1
    }
    .boxed()
}

#[tokio::test(start_paused = true)]
async fn nested_awaits_to_depth_50_under_limit_1_complete() {
    let sched = Scheduler::builder().max_concurrent_tasks(1).build();
    let s = sched.clone();
    let out = sched
        .run_until(async move { s.submit(nest(s.clone(), 50), TaskOptions::new()).await })
        .await;
    assert_eq!(out.unwrap(), 50);
    let st = sched.stats();
    assert_eq!(st.completed, 51);
    assert_eq!(st.peak_admitted, 1, "lent slots are not extra slots");
    assert_eq!(st.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn lending_slot_returns_to_lender_and_limit_holds_for_others() {
    // limit 1: A awaits B (pending) twice in a row; an unrelated C waits its turn.
    let sched = Scheduler::builder().max_concurrent_tasks(1).build();
    let log = Log::default();
    let s = sched.clone();
    let l = log.clone();
    sched
        .run_until(async move {
            let s2 = s.clone();
            let l2 = l.clone();
            let a = s.submit(
                async move {
                    let l3 = l2.clone();
                    let b1 = s2.submit(async move { l3.push("b1") }, TaskOptions::new());
                    let l4 = l2.clone();
                    let b2 = s2.submit(async move { l4.push("b2") }, TaskOptions::new());
                    b1.await.unwrap();
                    b2.await.unwrap();
                    l2.push("a");
                },
                TaskOptions::new(),
            );
            let l5 = l.clone();
            let c = s.submit(async move { l5.push("c") }, TaskOptions::new());
            a.await.unwrap();
            c.await.unwrap();
        })
        .await;
    assert_eq!(log.get(), ["b1", "b2", "a", "c"]);
    assert_eq!(sched.stats().peak_admitted, 1);
}

#[tokio::test(start_paused = true)]
async fn timeout_ends_task_in_error_with_exact_time() {
    let sched = Scheduler::new();
    let s = sched.clone();
    let (res, elapsed, id) = sched
        .run_until(async move {
            let t0 = Instant::now();
            let h = s.submit(
                async {
                    omega_sched::sleep(Duration::from_secs(10)).await.ok();
                    7
                },
                TaskOptions::new().timeout(ms(100)),
            );
            let id = h.id();
            let r = h.await;
            (r, t0.elapsed(), id)
        })
        .await;
    match res {
        Err(TaskError::TimedOut { after }) => assert_eq!(after, ms(100)),
        other => panic!("expected timeout, got {other:?}"),
    }
    assert_eq!(elapsed, ms(100));
    let info = sched.task(id).unwrap();
    assert_eq!(info.state, TaskState::Error);
    assert_eq!(info.error_kind, Some(ErrorKind::Timeout));
    assert_eq!(sched.stats().timed_out, 1);
}

#[tokio::test(start_paused = true)]
async fn default_task_timeout_and_deadline() {
    let sched = Scheduler::builder().task_timeout(ms(300)).build();
    let s = sched.clone();
    sched
        .run_until(async move {
            let t0 = Instant::now();
            let by_default = s.submit(
                omega_sched::sleep(Duration::from_secs(5)),
                TaskOptions::new(),
            );
            let by_deadline = s.submit(
                omega_sched::sleep(Duration::from_secs(5)),
                TaskOptions::new().deadline(t0 + ms(50)),
            );
            let unlimited = s.submit(
                omega_sched::sleep(Duration::from_secs(1)),
                TaskOptions::new().no_timeout(),
            );
            assert!(by_deadline.await.unwrap_err().is_timeout());
            assert_eq!(t0.elapsed(), ms(50));
            assert!(by_default.await.unwrap_err().is_timeout());
            assert_eq!(t0.elapsed(), ms(300));
            assert!(unlimited.await.unwrap().is_ok());
            assert_eq!(t0.elapsed(), ms(1000));
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn child_never_outlives_parent_deadline() {
    let sched = Scheduler::new();
    let s = sched.clone();
    let (child_res, at) = sched
        .run_until(async move {
            let t0 = Instant::now();
            let s2 = s.clone();
            let parent = s.submit(
                async move {
                    let child = s2.submit(
                        async {
                            omega_sched::sleep(Duration::from_secs(1)).await.ok();
                        },
                        TaskOptions::new().timeout(Duration::from_secs(10)),
                    );
                    child.await
                },
                TaskOptions::new().timeout(ms(100)),
            );
            let pid = parent.id();
            let r = parent.await;
            assert!(r.unwrap_err().is_timeout());
            let child = s
                .tasks()
                .into_iter()
                .find(|t| t.parent == Some(pid))
                .unwrap();
            (child, t0.elapsed())
        })
        .await;
    assert_eq!(at, ms(100));
    assert_eq!(child_res.state, TaskState::Error);
    assert_eq!(child_res.error_kind, Some(ErrorKind::Timeout));
}

#[tokio::test(start_paused = true)]
async fn queue_timeout_ends_a_pending_task() {
    let sched = Scheduler::builder().max_concurrent_tasks(1).build();
    let s = sched.clone();
    sched
        .run_until(async move {
            let t0 = Instant::now();
            let blocker = s.submit(omega_sched::sleep(ms(500)), TaskOptions::new());
            let queued = s.submit(async { 1 }, TaskOptions::new().queue_timeout(ms(20)));
            let id = queued.id();
            match queued.await {
                Err(TaskError::TimedOut { after }) => assert_eq!(after, ms(20)),
                other => panic!("{other:?}"),
            }
            assert_eq!(t0.elapsed(), ms(20));
            let info = s.task(id).unwrap();
            assert_eq!(info.state, TaskState::Error);
            assert_eq!(info.started_at, None, "never admitted");
            blocker.await.unwrap().unwrap();
        })
        .await;
    assert_eq!(sched.stats().timed_out, 1);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_binds_while_pending_too() {
    let sched = Scheduler::builder().max_concurrent_tasks(1).build();
    let s = sched.clone();
    sched
        .run_until(async move {
            let t0 = Instant::now();
            let blocker = s.submit(omega_sched::sleep(ms(500)), TaskOptions::new());
            let queued = s.submit(async { 1 }, TaskOptions::new().deadline(t0 + ms(30)));
            let id = queued.id();
            match queued.await {
                Err(TaskError::TimedOut { after }) => assert_eq!(after, ms(30)),
                other => panic!("{other:?}"),
            }
            assert_eq!(t0.elapsed(), ms(30));
            assert_eq!(s.task(id).unwrap().started_at, None);
            assert_eq!(s.task(id).unwrap().state, TaskState::Error);
            blocker.await.unwrap().unwrap();
        })
        .await;
    assert_eq!(sched.stats().timed_out, 1);
}

#[test]
fn other_threads_submit_and_cancel_while_the_driver_runs() {
    let sched = Scheduler::builder().max_concurrent_tasks(8).build();
    let s = sched.clone();
    let (ok, cancelled) = sched.block_on(async move {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    (0..250u64)
                        .map(|i| {
                            let h = s.submit(
                                async move {
                                    for _ in 0..3 {
                                        omega_sched::yield_now().await.ok();
                                    }
                                    i
                                },
                                TaskOptions::new(),
                            );
                            if (i + t) % 5 == 0 {
                                h.cancel("from another thread");
                            }
                            h
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut handles = Vec::new();
        for t in threads {
            handles.extend(t.join().unwrap());
        }
        let results = s.await_all_settled(handles).await;
        let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
        let cancelled = results
            .iter()
            .filter(|r| matches!(r, Err(e) if e.is_cancelled()))
            .count() as u64;
        (ok, cancelled)
    });
    let st = sched.stats();
    assert_eq!(ok + cancelled, 1000);
    assert_eq!((st.completed, st.cancelled, st.live()), (ok, cancelled, 0));
    assert!(st.peak_admitted <= 8);
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_parent_cancels_the_subtree_with_its_reason() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let s2 = s.clone();
            let parent = s.submit(
                async move {
                    let s3 = s2.clone();
                    let child = s2.submit(
                        async move {
                            let grandchild = s3.submit(
                                omega_sched::sleep(Duration::from_secs(60)),
                                TaskOptions::new().name("grandchild"),
                            );
                            grandchild.await
                        },
                        TaskOptions::new().name("child"),
                    );
                    child.await
                },
                TaskOptions::new().name("parent"),
            );
            omega_sched::sleep(ms(10)).await.unwrap();
            assert_eq!(s.tasks_in(TaskState::Suspended).len(), 3);
            let pid = parent.id();
            assert!(s.cancel(pid, "user requested"));
            match parent.await {
                Err(TaskError::Cancelled { reason }) => assert_eq!(&*reason, "user requested"),
                other => panic!("{other:?}"),
            }
            // Every task of the tree ended cancelled with the parent's reason.
            let all = s.tasks();
            assert_eq!(all.len(), 3);
            for t in all {
                assert_eq!(t.state, TaskState::Cancelled, "{:?}", t.name);
                assert_eq!(t.error.as_deref(), Some("task cancelled: user requested"));
            }
            assert!(!s.cancel(pid, "again"), "finished tasks can't be cancelled");
        })
        .await;
    let st = sched.stats();
    assert_eq!((st.cancelled, st.live()), (3, 0));
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_pending_task_ends_it_without_running() {
    let sched = Scheduler::builder().max_concurrent_tasks(1).build();
    let ran = Arc::new(AtomicUsize::new(0));
    let s = sched.clone();
    let r = ran.clone();
    sched
        .run_until(async move {
            let blocker = s.submit(omega_sched::sleep(ms(50)), TaskOptions::new());
            let queued = s.submit(
                async move {
                    r.fetch_add(1, Ordering::SeqCst);
                },
                TaskOptions::new(),
            );
            assert_eq!(queued.state(), Some(TaskState::Pending));
            assert!(queued.cancel("not needed"));
            let t0 = Instant::now();
            assert!(queued.await.unwrap_err().is_cancelled());
            assert_eq!(
                t0.elapsed(),
                Duration::ZERO,
                "ended at once, not after the blocker"
            );
            blocker.await.unwrap().unwrap();
        })
        .await;
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn panics_are_caught_and_the_scheduler_goes_on() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let bad = s.submit(
                async {
                    if true {
                        panic!("boom");
                    }
                },
                TaskOptions::new(),
            );
            let id = bad.id();
            match bad.await {
                Err(TaskError::Panicked { message }) => assert_eq!(&*message, "boom"),
                other => panic!("{other:?}"),
            }
            assert_eq!(s.task(id).unwrap().state, TaskState::Error);
            assert_eq!(s.task(id).unwrap().error_kind, Some(ErrorKind::Panic));
            assert_eq!(s.submit(async { 5 }, TaskOptions::new()).await.unwrap(), 5);
        })
        .await;
    let st = sched.stats();
    assert_eq!((st.failed, st.panicked, st.completed), (1, 1, 1));
}

#[derive(Debug, thiserror::Error)]
#[error("bad input: {0}")]
struct BadInput(u32);

#[tokio::test(start_paused = true)]
async fn await_all_fails_fast_and_cancels_the_rest() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let t0 = Instant::now();
            let slow: Vec<_> = (0..3)
                .map(|_| {
                    s.submit_result(
                        async {
                            omega_sched::sleep(Duration::from_secs(5)).await?;
                            Ok::<u32, omega_sched::Cancelled>(1)
                        },
                        TaskOptions::new(),
                    )
                })
                .collect();
            let ids: Vec<_> = slow.iter().map(|h| h.id()).collect();
            let failing = s.submit_result(
                async {
                    omega_sched::sleep(ms(10)).await.ok();
                    Err::<u32, _>(TaskError::failed(BadInput(3)))
                },
                TaskOptions::new(),
            );
            let mut hs = slow;
            hs.insert(1, failing);
            let err = s.await_all(hs).await.unwrap_err();
            assert_eq!(err.to_string(), "task failed: bad input: 3");
            assert_eq!(t0.elapsed(), ms(10));
            omega_sched::yield_now().await.unwrap();
            for id in ids {
                let info = s.task(id).unwrap();
                assert_eq!(info.state, TaskState::Cancelled);
                assert_eq!(
                    info.error.as_deref(),
                    Some("task cancelled: sibling failed")
                );
            }
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn await_any_returns_first_success_and_cancels_the_others() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let t0 = Instant::now();
            let mk = |delay: u64, ok: bool| {
                s.submit_result(
                    async move {
                        omega_sched::sleep(ms(delay)).await?;
                        if ok {
                            Ok(delay)
                        } else {
                            Err(TaskError::failed(BadInput(delay as u32)))
                        }
                    },
                    TaskOptions::new(),
                )
            };
            let hs = vec![mk(5, false), mk(20, true), mk(50, true)];
            let loser = hs[2].id();
            assert_eq!(s.await_any(hs).await.unwrap(), (1, 20));
            assert_eq!(t0.elapsed(), ms(20));
            omega_sched::yield_now().await.unwrap();
            let info = s.task(loser).unwrap();
            assert_eq!(info.state, TaskState::Cancelled);
            assert_eq!(
                info.error.as_deref(),
                Some("task cancelled: another task won")
            );

            let all_fail = vec![mk(5, false), mk(7, false)];
            let err = s.await_any(all_fail).await.unwrap_err();
            assert_eq!(
                err.to_string(),
                "task failed: bad input: 7",
                "the last error"
            );
            let none: Vec<omega_sched::TaskHandle<u64>> = Vec::new();
            assert_eq!(
                s.await_any(none).await.unwrap_err().to_string(),
                "task failed: await_any needs at least one task"
            );
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn await_all_settled_waits_for_everyone_and_cancels_nothing() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let a = s.submit_result(
                async { Err::<u32, _>(TaskError::failed(BadInput(1))) },
                TaskOptions::new(),
            );
            let b = s.submit_result(
                async {
                    omega_sched::sleep(ms(30)).await?;
                    Ok::<_, TaskError>(2)
                },
                TaskOptions::new(),
            );
            let r = s.await_all_settled(vec![a, b]).await;
            assert_eq!(r[0].as_ref().unwrap_err().kind(), ErrorKind::Failed);
            assert_eq!(*r[1].as_ref().unwrap(), 2);
        })
        .await;
    assert_eq!(sched.stats().cancelled, 0);
}

#[tokio::test(start_paused = true)]
async fn shield_lets_cleanup_finish_after_cancel() {
    let sched = Scheduler::new();
    let log = Log::default();
    let s = sched.clone();
    let l = log.clone();
    sched
        .run_until(async move {
            let h = s.submit(
                async move {
                    let _ = omega_sched::sleep(ms(10)).await;
                    l.push("before cancel");
                    omega_sched::current_token().unwrap().cancel("stop");
                    omega_sched::shield(async {
                        omega_sched::sleep(ms(20)).await.unwrap();
                        assert!(omega_sched::check_cancelled().is_ok(), "hidden in a shield");
                        l.push("cleanup done");
                    })
                    .await;
                    l.push("never: dropped at the next await");
                    let _ = omega_sched::yield_now().await;
                    l.push("unreachable");
                },
                TaskOptions::new(),
            );
            let t0 = Instant::now();
            assert!(h.await.unwrap_err().is_cancelled());
            assert_eq!(t0.elapsed(), ms(30));
        })
        .await;
    assert_eq!(
        log.get(),
        [
            "before cancel",
            "cleanup done",
            "never: dropped at the next await"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn shield_is_bounded_by_cleanup_grace() {
    let sched = Scheduler::builder().cleanup_grace(ms(100)).build();
    let s = sched.clone();
    sched
        .run_until(async move {
            let h = s.submit(
                async { omega_sched::shield(omega_sched::sleep(Duration::from_secs(3600))).await },
                TaskOptions::new(),
            );
            omega_sched::sleep(ms(5)).await.unwrap();
            let t0 = Instant::now();
            h.cancel("shutdown");
            assert!(h.await.unwrap_err().is_cancelled());
            assert_eq!(t0.elapsed(), ms(100));
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn cooperative_tasks_see_cancellation_at_await_points_and_clean_up() {
    let sched = Scheduler::new();
    let log = Log::default();
    let s = sched.clone();
    let l = log.clone();
    sched
        .run_until(async move {
            let h = s.submit_result(
                async move {
                    let r = omega_sched::sleep(Duration::from_secs(60)).await;
                    l.push(format!("sleep -> {r:?}"));
                    // Cleanup can still await inside a shield.
                    omega_sched::shield(omega_sched::sleep(ms(5)))
                        .await
                        .unwrap();
                    l.push("cleaned");
                    r.map(|_| 0u8)
                },
                TaskOptions::new().cancel_mode(CancelMode::Cooperative),
            );
            omega_sched::sleep(ms(1)).await.unwrap();
            h.cancel("bye");
            match h.await {
                Err(TaskError::Cancelled { reason }) => assert_eq!(&*reason, "bye"),
                other => panic!("{other:?}"),
            }
        })
        .await;
    assert_eq!(
        log.get(),
        [
            "sleep -> Err(Cancelled { reason: \"bye\" })".to_string(),
            "cleaned".to_string()
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn stats_match_what_happened_and_history_is_bounded() {
    let sched = Scheduler::builder().history_limit(5).build();
    let s = sched.clone();
    sched
        .run_until(async move {
            let mut hs = Vec::new();
            for i in 0..20u64 {
                let h = s.submit_result(
                    async move {
                        match i % 4 {
                            0 => Ok(i),
                            1 => Err(TaskError::failed(BadInput(i as u32))),
                            _ => {
                                omega_sched::sleep(Duration::from_secs(10)).await?;
                                Ok(i)
                            }
                        }
                    },
                    // i%4==3 times out; i%4==2 gets cancelled below.
                    if i % 4 == 3 {
                        TaskOptions::new().timeout(ms(10))
                    } else {
                        TaskOptions::new()
                    },
                );
                hs.push(h);
            }
            omega_sched::yield_now().await.unwrap();
            for h in hs.iter().skip(2).step_by(4) {
                h.cancel("x");
            }
            s.await_all_settled(hs).await;
        })
        .await;
    let st = sched.stats();
    assert_eq!(st.submitted, 20);
    assert_eq!(
        (st.completed, st.failed, st.cancelled, st.timed_out),
        (5, 5, 5, 5)
    );
    assert_eq!(st.live(), 0);
    assert_eq!(st.run_time.count, 20);
    assert_eq!(sched.tasks().len(), 5, "history keeps the last 5");
}

#[tokio::test(start_paused = true)]
async fn cancellation_storm_leaves_counts_exact() {
    let sched = Scheduler::builder().max_concurrent_tasks(16).build();
    let s = sched.clone();
    sched
        .run_until(async move {
            let s2 = s.clone();
            let hs: Vec<_> = (0..2000u64)
                .map(|i| {
                    let s3 = s2.clone();
                    s.submit(
                        async move {
                            if i % 3 == 0 {
                                let c =
                                    s3.submit(omega_sched::sleep(ms(i % 11)), TaskOptions::new());
                                let _ = c.await;
                            }
                            omega_sched::sleep(ms(i % 13)).await.ok();
                        },
                        TaskOptions::new(),
                    )
                })
                .collect();
            for round in 0..5u64 {
                omega_sched::sleep(ms(2)).await.unwrap();
                for h in hs.iter().skip(round as usize).step_by(7) {
                    h.cancel("storm");
                }
            }
            s.cancel_all("the end");
            s.await_all_settled(hs).await;
        })
        .await;
    let st = sched.stats();
    assert_eq!(st.live(), 0, "{st:?}");
    assert_eq!(st.finished(), st.submitted, "{st:?}");
    // Parents cancelled early never submit their child.
    assert!((2000..=2667).contains(&st.submitted), "{st:?}");
    assert!(st.peak_admitted <= 16);
}

#[tokio::test(start_paused = true)]
async fn pool_bounds_holders_and_reports_stats() {
    let sched = Scheduler::builder().max_concurrent_llm_calls(2).build();
    let holding = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let s = sched.clone();
    let (h2, p2) = (holding.clone(), peak.clone());
    sched
        .run_until(async move {
            let t0 = Instant::now();
            let hs: Vec<_> = (0..10)
                .map(|_| {
                    let (h, p, s2) = (h2.clone(), p2.clone(), s.clone());
                    s.submit(
                        async move {
                            let _permit = s2.llm_pool().acquire().await.unwrap();
                            p.fetch_max(h.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                            omega_sched::sleep(ms(10)).await.unwrap();
                            h.fetch_sub(1, Ordering::SeqCst);
                        },
                        TaskOptions::new(),
                    )
                })
                .collect();
            omega_sched::yield_now().await.unwrap();
            let st = s.stats();
            assert_eq!((st.llm_in_flight, st.pools[0].waiting), (2, 8));
            s.await_all(hs).await.unwrap();
            assert_eq!(t0.elapsed(), ms(50), "5 waves of 2");
        })
        .await;
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    let p = &sched.stats().pools[0];
    assert_eq!(p.name, "llm");
    assert_eq!(
        (p.in_use, p.waiting, p.total_acquisitions, p.peak_in_use),
        (0, 0, 10, 2)
    );
    assert_eq!(p.wait_time.max, ms(40));
}

#[tokio::test(start_paused = true)]
async fn pool_waiters_follow_priority_and_cancelled_waiters_leave() {
    let sched = Scheduler::builder()
        .fairness(Fairness::Priority)
        .pool("db", 1)
        .build();
    let log = Log::default();
    let s = sched.clone();
    let l = log.clone();
    sched
        .run_until(async move {
            let db = s.pool("db").unwrap();
            let first = db.try_acquire().unwrap();
            let mut hs = Vec::new();
            for (name, p) in [("low", 1), ("doomed", 9), ("high", 5), ("mid", 3)] {
                let (db, l) = (db.clone(), l.clone());
                hs.push(s.submit(
                    async move {
                        let _p = db.acquire().await.unwrap();
                        l.push(name);
                    },
                    TaskOptions::new().priority(p),
                ));
            }
            omega_sched::yield_now().await.unwrap();
            assert_eq!(db.waiting(), 4);
            assert!(hs[1].cancel("gone"));
            omega_sched::yield_now().await.unwrap();
            assert_eq!(db.waiting(), 3, "the cancelled waiter left the queue");
            drop(first);
            s.await_all_settled(hs).await;
        })
        .await;
    assert_eq!(log.get(), ["high", "mid", "low"]);
}

#[tokio::test(start_paused = true)]
async fn events_report_the_lifecycle_in_order() {
    let sched = Scheduler::new();
    let mut rx = sched.events();
    let s = sched.clone();
    let id = sched
        .run_until(async move {
            let h = s.submit(
                async {
                    omega_sched::sleep(ms(1)).await.unwrap();
                },
                TaskOptions::new().name("ev"),
            );
            let id = h.id();
            h.await.unwrap();
            id
        })
        .await;
    let mut kinds = Vec::new();
    while let Ok(e) = rx.try_recv() {
        assert_eq!(e.task, Some(id));
        kinds.push(e.kind);
    }
    assert_eq!(
        kinds,
        [
            EventKind::Submitted,
            EventKind::Started,
            EventKind::Suspended,
            EventKind::Resumed,
            EventKind::Completed
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn current_task_and_token_inside_tasks_only() {
    let sched = Scheduler::new();
    assert!(omega_sched::current_task().is_none());
    let s = sched.clone();
    sched
        .run_until(async move {
            assert!(
                omega_sched::current_task().is_none(),
                "run_until's future is no task"
            );
            let h = s.submit(
                async { (omega_sched::current_task(), omega_sched::current_token()) },
                TaskOptions::new(),
            );
            let id = h.id();
            let token = h.token().clone();
            let (cur, tok) = h.await.unwrap();
            assert_eq!(cur, Some(id));
            assert!(tok.unwrap().same_token(&token));
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn configure_raises_the_limit_for_pending_tasks() {
    let sched = Scheduler::builder().max_concurrent_tasks(1).build();
    let s = sched.clone();
    sched
        .run_until(async move {
            let t0 = Instant::now();
            let hs: Vec<_> = (0..4)
                .map(|_| s.submit(omega_sched::sleep(ms(10)), TaskOptions::new()))
                .collect();
            assert_eq!(s.stats().pending, 3);
            s.configure(ConfigPatch::new().max_concurrent_tasks(4));
            assert_eq!(s.stats().pending, 0);
            s.await_all(hs).await.unwrap();
            assert_eq!(t0.elapsed(), ms(10));
        })
        .await;
}

#[test]
fn submit_from_another_thread_and_local_futures() {
    let sched = Scheduler::new();
    let s = sched.clone();
    let out = sched.block_on(async move {
        // A !Send future on the driver thread.
        let rc = std::rc::Rc::new(5);
        let local = s.submit_local(async move { *rc + 1 }, TaskOptions::new());
        // A Send future from another OS thread.
        let s2 = s.clone();
        let remote = std::thread::spawn(move || s2.submit(async { 10 }, TaskOptions::new()))
            .join()
            .unwrap();
        local.await.unwrap() + remote.await.unwrap()
    });
    assert_eq!(out, 16);
}

#[test]
#[should_panic(expected = "submit_local must be called on the thread driving this scheduler")]
fn submit_local_off_the_driver_thread_panics_clearly() {
    let sched = Scheduler::new();
    drop(sched.submit_local(async {}, TaskOptions::new()));
}

/// Every task body runs inside a `tracing` span named `task` with its id and name (SPEC §3.8).
#[test]
fn task_bodies_run_inside_a_tracing_span_with_id_and_name() {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let sched = Scheduler::new();
    let s = sched.clone();
    let id = tracing::subscriber::with_default(subscriber, || {
        sched.block_on(async move {
            let h = s.submit(
                async {
                    tracing::info!("inside the body");
                },
                TaskOptions::new().name("traced"),
            );
            let id = h.id();
            h.await.unwrap();
            id
        })
    });
    let out = String::from_utf8(buf.0.lock().clone()).unwrap();
    assert!(
        out.contains(&format!("task{{id={id} name=\"traced\"}}: "))
            && out.contains("inside the body"),
        "{out}"
    );
}
