//! Behaviour of the lock manager (SPEC §4), one test per bullet, on tokio's paused clock.

mod common;

use std::time::Duration;

use omega_sched::{
    EventKind, Fairness, LockError, LockMode, OwnerId, Scheduler, TaskError, TaskOptions, WaitOn,
};
use tokio::time::Instant;

use common::{ms, Log};

/// Submits a task that takes `name` in `mode`, logs, holds for `hold`, then releases.
fn holder(
    s: &Scheduler,
    log: &Log,
    tag: &str,
    name: &'static str,
    mode: LockMode,
    hold: Duration,
    prio: i32,
) -> omega_sched::TaskHandle<()> {
    let (s2, log, tag) = (s.clone(), log.clone(), tag.to_string());
    s.submit(
        async move {
            let g = s2.locks().acquire(name, mode).await.expect("granted");
            log.push(format!("{tag}+"));
            omega_sched::sleep(hold).await.expect("not cancelled");
            log.push(format!("{tag}-"));
            drop(g);
        },
        TaskOptions::new().priority(prio),
    )
}

#[tokio::test(start_paused = true)]
async fn readers_share_writer_excludes_and_waiting_writer_blocks_later_readers() {
    let sched = Scheduler::new();
    let log = Log::default();
    let s = sched.clone();
    let l = log.clone();
    sched
        .run_until(async move {
            let t0 = Instant::now();
            let r1 = holder(&s, &l, "r1", "doc", LockMode::Read, ms(10), 0);
            let r2 = holder(&s, &l, "r2", "doc", LockMode::Read, ms(10), 0);
            omega_sched::sleep(ms(1)).await.unwrap();
            let w = holder(&s, &l, "w", "doc", LockMode::Write, ms(10), 0);
            omega_sched::sleep(ms(1)).await.unwrap();
            // A later reader must wait behind the waiting writer (no writer starvation).
            let r3 = holder(&s, &l, "r3", "doc", LockMode::Read, ms(10), 0);
            s.await_all(vec![r1, r2, w, r3]).await.unwrap();
            assert_eq!(t0.elapsed(), ms(30));
        })
        .await;
    assert_eq!(
        log.get(),
        ["r1+", "r2+", "r1-", "r2-", "w+", "w-", "r3+", "r3-"]
    );
    assert_eq!(sched.locks().resource_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn fifo_grant_order_and_priority_order_under_priority_fairness() {
    for (fairness, expected) in [
        (
            Fairness::Fifo,
            ["a+", "a-", "p0+", "p0-", "p5+", "p5-", "p9+", "p9-"],
        ),
        (
            Fairness::Priority,
            ["a+", "a-", "p9+", "p9-", "p5+", "p5-", "p0+", "p0-"],
        ),
    ] {
        let sched = Scheduler::builder().fairness(fairness).build();
        let log = Log::default();
        let s = sched.clone();
        let l = log.clone();
        sched
            .run_until(async move {
                let a = holder(&s, &l, "a", "x", LockMode::Write, ms(10), 100);
                omega_sched::sleep(ms(1)).await.unwrap();
                let mut hs = vec![a];
                for p in [0, 5, 9] {
                    hs.push(holder(
                        &s,
                        &l,
                        &format!("p{p}"),
                        "x",
                        LockMode::Write,
                        ms(1),
                        p,
                    ));
                    omega_sched::sleep(ms(1)).await.unwrap();
                }
                s.await_all(hs).await.unwrap();
            })
            .await;
        assert_eq!(log.get(), expected, "{fairness:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn reentrant_counted_upgrade_only_for_sole_holder() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let locks = s.locks().clone();
            let a = OwnerId::named("agent-a");
            let b = OwnerId::named("agent-b");
            let g1 = locks
                .acquire("r", LockMode::Read)
                .owner(a.clone())
                .await
                .unwrap();
            let g2 = locks
                .acquire("r", LockMode::Read)
                .owner(a.clone())
                .await
                .unwrap();
            assert_eq!(locks.holders("r")[0].count, 2);
            // Sole holder: upgrade granted at once.
            let up = locks
                .acquire("r", LockMode::Write)
                .owner(a.clone())
                .try_now()
                .unwrap();
            assert_eq!(locks.holders("r")[0].mode, LockMode::Write);
            // Another owner conflicts and is told who holds it.
            let e = locks
                .acquire("r", LockMode::Read)
                .owner(b.clone())
                .try_now()
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                "lock \"r\" is held by owner \"agent-a\" (write); you are 1st in queue"
            );
            drop(up);
            // Back to read only: b may read now, and then a's upgrade is refused clearly.
            let gb = locks
                .acquire("r", LockMode::Read)
                .owner(b.clone())
                .try_now()
                .unwrap();
            let e = locks
                .acquire("r", LockMode::Write)
                .owner(a.clone())
                .await
                .unwrap_err();
            assert!(
                matches!(e, LockError::UpgradeConflict { others: 1, .. }),
                "{e}"
            );
            assert!(e.to_string().contains("cannot upgrade"), "{e}");
            drop((g1, g2, gb));
            assert_eq!(locks.resource_count(), 0);
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn try_acquire_conflict_names_holder_and_queue_position() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let h = s.submit(
                {
                    let s = s.clone();
                    async move {
                        let _g = s.locks().acquire("plan:42", LockMode::Write).await.unwrap();
                        omega_sched::sleep(ms(100)).await.unwrap();
                    }
                },
                TaskOptions::new(),
            );
            let holder_id = h.id();
            let waiter = s.submit(
                {
                    let s = s.clone();
                    async move {
                        omega_sched::sleep(ms(1)).await.unwrap();
                        let _g = s.locks().acquire("plan:42", LockMode::Read).await.unwrap();
                    }
                },
                TaskOptions::new(),
            );
            omega_sched::sleep(ms(5)).await.unwrap();
            let probe = s.submit(
                {
                    let s = s.clone();
                    async move { s.locks().try_acquire("plan:42", LockMode::Read).map(|_| ()) }
                },
                TaskOptions::new(),
            );
            let e = probe.await.unwrap().unwrap_err();
            match &e {
                LockError::Conflict {
                    resource,
                    holder,
                    queue_position,
                } => {
                    assert_eq!(&**resource, "plan:42");
                    assert_eq!(holder, &Some((OwnerId::Task(holder_id), LockMode::Write)));
                    assert_eq!(*queue_position, 2);
                }
                other => panic!("{other}"),
            }
            let short = &holder_id.to_string()[..8];
            assert_eq!(
                e.to_string(),
                format!("lock \"plan:42\" is held by task {short} (write); you are 2nd in queue")
            );
            h.await.unwrap();
            waiter.await.unwrap();
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn timeout_fails_after_exactly_d_and_leaves_the_queue() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let locks = s.locks().clone();
            let _g = locks
                .acquire("x", LockMode::Write)
                .owner("holder")
                .await
                .unwrap();
            let t0 = Instant::now();
            let e = locks
                .acquire("x", LockMode::Write)
                .owner("late")
                .timeout(ms(250))
                .await
                .unwrap_err();
            assert_eq!(t0.elapsed(), ms(250));
            assert!(e.is_timeout());
            assert!(e.to_string().contains("timed out after 250ms"), "{e}");
            assert_eq!(locks.waiters("x"), 0);
            assert_eq!(locks.stats().totals.timeouts, 1);
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn cancelled_waiter_leaves_queue_and_next_is_granted() {
    let sched = Scheduler::new();
    let log = Log::default();
    let s = sched.clone();
    let l = log.clone();
    sched
        .run_until(async move {
            let a = holder(&s, &l, "a", "x", LockMode::Write, ms(10), 0);
            omega_sched::sleep(ms(1)).await.unwrap();
            let b = holder(&s, &l, "b", "x", LockMode::Write, ms(10), 0);
            omega_sched::sleep(ms(1)).await.unwrap();
            let c = holder(&s, &l, "c", "x", LockMode::Write, ms(10), 0);
            omega_sched::sleep(ms(1)).await.unwrap();
            assert_eq!(s.locks().waiters("x"), 2);
            b.cancel("not needed");
            omega_sched::sleep(ms(1)).await.unwrap();
            assert_eq!(s.locks().waiters("x"), 1);
            let t0 = Instant::now();
            a.await.unwrap();
            assert!(b.await.unwrap_err().is_cancelled());
            c.await.unwrap();
            assert_eq!(t0.elapsed(), ms(6 + 10));
        })
        .await;
    assert_eq!(log.get(), ["a+", "a-", "c+", "c-"]);
}

#[tokio::test(start_paused = true)]
async fn cooperative_cancel_returns_cancelled_error() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let _g = s
                .locks()
                .acquire("x", LockMode::Write)
                .owner("o")
                .await
                .unwrap();
            let h = s.submit(
                {
                    let s = s.clone();
                    async move { s.locks().acquire("x", LockMode::Read).await.map(|_| ()) }
                },
                TaskOptions::new().cancel_mode(omega_sched::CancelMode::Cooperative),
            );
            omega_sched::sleep(ms(1)).await.unwrap();
            h.cancel("stop");
            let e = h.await.unwrap().unwrap_err();
            assert!(e.is_cancelled(), "{e}");
            assert_eq!(s.locks().waiters("x"), 0);
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn acquire_all_is_all_or_nothing_and_batches_do_not_deadlock() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let locks = s.locks().clone();
            let gb = locks
                .acquire("b", LockMode::Write)
                .owner("x")
                .await
                .unwrap();
            // Waits for b, holding nothing meanwhile: a stays free.
            let batch = s.submit(
                {
                    let locks = locks.clone();
                    async move {
                        let t0 = Instant::now();
                        let gs = locks
                            .acquire_all(&[("a", LockMode::Write), ("b", LockMode::Write)])
                            .await
                            .unwrap();
                        (t0.elapsed(), gs.len())
                    }
                },
                TaskOptions::new(),
            );
            omega_sched::sleep(ms(5)).await.unwrap();
            // Nothing held while waiting (its place in a's queue still keeps later
            // readers behind it: a waiting writer blocks later readers).
            assert!(locks.holders("a").is_empty());
            assert_eq!(locks.waiters("a"), 1);
            let e = locks
                .acquire("a", LockMode::Read)
                .owner("y")
                .try_now()
                .unwrap_err();
            assert!(matches!(
                e,
                LockError::Conflict {
                    holder: None,
                    queue_position: 2,
                    ..
                }
            ));
            omega_sched::sleep(ms(5)).await.unwrap();
            drop(gb);
            assert_eq!(batch.await.unwrap(), (ms(10), 2));
            // Opposite orders, many times: never a deadlock.
            let hs: Vec<_> = (0..20)
                .map(|i| {
                    let locks = locks.clone();
                    s.submit(
                        async move {
                            let items: &[(&str, LockMode)] = if i % 2 == 0 {
                                &[("p", LockMode::Write), ("q", LockMode::Write)]
                            } else {
                                &[("q", LockMode::Write), ("p", LockMode::Write)]
                            };
                            let _g = locks.acquire_all(items).await.unwrap();
                            omega_sched::sleep(ms(1)).await.unwrap();
                        },
                        TaskOptions::new(),
                    )
                })
                .collect();
            let t0 = Instant::now();
            s.await_all(hs).await.unwrap();
            assert_eq!(t0.elapsed(), ms(20));
            assert_eq!(locks.resource_count(), 0);
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn leases_expire_waiters_proceed_renew_extends_and_fences_increase() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let locks = s.locks().clone();
            let t0 = Instant::now();
            let g = locks
                .acquire("job", LockMode::Write)
                .owner("crashed-agent")
                .ttl(ms(100))
                .await
                .unwrap();
            let f1 = g.fence();
            assert_eq!(g.expires_at(), Some(t0 + ms(100)));
            // Renewal at 50 ms pushes expiry to 150 ms.
            omega_sched::sleep(ms(50)).await.unwrap();
            assert_eq!(g.renew(ms(100)).unwrap(), t0 + ms(150));
            // A waiter proceeds exactly when the lease expires.
            let g2 = locks
                .acquire("job", LockMode::Write)
                .owner("next")
                .await
                .unwrap();
            assert_eq!(t0.elapsed(), ms(150));
            assert!(g2.fence() > f1);
            assert!(!g.is_held());
            assert!(g
                .renew(ms(10))
                .unwrap_err()
                .to_string()
                .contains("not held"));
            drop(g); // no-op: swept already
            assert_eq!(locks.holders("job")[0].owner, OwnerId::named("next"));
            drop(g2);
            // Without waiters an expired lease is stale until swept.
            let g3 = locks
                .acquire("idle", LockMode::Read)
                .owner("o")
                .ttl(ms(10))
                .await
                .unwrap();
            omega_sched::sleep(ms(20)).await.unwrap();
            assert_eq!(locks.stale_count(), 1);
            assert_eq!(locks.sweep(), 1);
            assert_eq!(locks.stale_count(), 0);
            assert!(!g3.is_held());
            assert_eq!(locks.stats().totals.expired, 2);
            assert_eq!(locks.resource_count(), 0);
            // Fencing tokens strictly increase per resource, even across table removal.
            let mut last = 0;
            for _ in 0..5 {
                let g = locks
                    .acquire("job", LockMode::Read)
                    .owner("o")
                    .await
                    .unwrap();
                assert!(g.fence() > last);
                last = g.fence();
            }
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn deadlock_parent_holding_x_awaits_child_wanting_x() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let parent = s.submit_result(
                {
                    let s = s.clone();
                    async move {
                        let _x = s.locks().acquire("x", LockMode::Write).await.unwrap();
                        let child =
                            s.submit_result(
                                {
                                    let s = s.clone();
                                    async move {
                                        s.locks().acquire("x", LockMode::Write).await.map(|_| ())
                                    }
                                },
                                TaskOptions::new().name("child"),
                            );
                        child.await
                    }
                },
                TaskOptions::new().name("parent"),
            );
            let parent_id = parent.id();
            let err = parent.await.unwrap_err();
            let TaskError::Failed(inner) = &err else {
                panic!("{err}")
            };
            let lock_err = inner.downcast_ref::<LockError>().expect("a LockError");
            let LockError::Deadlock { cycle } = lock_err else {
                panic!("{lock_err}")
            };
            assert_eq!(cycle.edges.len(), 2);
            assert_eq!(cycle.edges[0].on, WaitOn::Lock("x".into()));
            assert_eq!(cycle.edges[0].holder, OwnerId::Task(parent_id));
            assert_eq!(cycle.edges[1].on, WaitOn::Await);
            assert_eq!(cycle.edges[1].waiter, OwnerId::Task(parent_id));
            let text = lock_err.to_string();
            assert!(text.starts_with("deadlock: task "), "{text}");
            assert!(text.contains("waits for \"x\" held by task"), "{text}");
            assert!(text.contains(", which awaits task"), "{text}");
            assert_eq!(s.locks().stats().totals.deadlocks, 1);
        })
        .await;
    assert_eq!(sched.locks().resource_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn deadlock_closed_by_the_await_fails_the_queued_wait() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let parent = s.submit_result(
                {
                    let s = s.clone();
                    async move {
                        let _x = s.locks().acquire("x", LockMode::Write).await.unwrap();
                        let child =
                            s.submit_result(
                                {
                                    let s = s.clone();
                                    async move {
                                        s.locks().acquire("x", LockMode::Write).await.map(|_| ())
                                    }
                                },
                                TaskOptions::new(),
                            );
                        // The child queues for x first; then the await closes the cycle.
                        omega_sched::sleep(ms(5)).await.unwrap();
                        assert_eq!(s.locks().waiters("x"), 1);
                        child.await
                    }
                },
                TaskOptions::new(),
            );
            let t0 = Instant::now();
            let err = parent.await.unwrap_err();
            assert_eq!(t0.elapsed(), ms(5));
            assert!(err.to_string().contains("deadlock"), "{err}");
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn deadlock_between_two_tasks_crossing_locks() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            let mk = |first: &'static str, second: &'static str, delay: u64| {
                let s2 = s.clone();
                s.submit(
                    async move {
                        let _a = s2.locks().acquire(first, LockMode::Write).await.unwrap();
                        omega_sched::sleep(ms(delay)).await.unwrap();
                        s2.locks()
                            .acquire(second, LockMode::Write)
                            .await
                            .map(|_| ())
                    },
                    TaskOptions::new(),
                )
            };
            let a = mk("x", "y", 1);
            let b = mk("y", "x", 2);
            let ra = a.await.unwrap();
            let rb = b.await.unwrap();
            // A queued first (for y); B's wait for x would close the cycle and fails.
            assert!(ra.is_ok());
            let e = rb.unwrap_err();
            assert!(e.is_deadlock(), "{e}");
            let LockError::Deadlock { cycle } = e else {
                unreachable!()
            };
            assert_eq!(cycle.resources().len(), 2);
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn priority_inheritance_lets_the_holder_run_before_medium_tasks() {
    for inherit in [true, false] {
        let sched = Scheduler::builder().fairness(Fairness::Priority).build();
        let log = Log::default();
        let s = sched.clone();
        let l = log.clone();
        sched
            .run_until(async move {
                let low = s.submit(
                    {
                        let (s, l) = (s.clone(), l.clone());
                        async move {
                            let g = s.locks().acquire("x", LockMode::Write).await.unwrap();
                            omega_sched::sleep(ms(2)).await.unwrap();
                            for _ in 0..5 {
                                omega_sched::yield_now().await.unwrap();
                            }
                            l.push("low done");
                            drop(g);
                        }
                    },
                    TaskOptions::new().priority(0),
                );
                omega_sched::sleep(ms(1)).await.unwrap();
                let high = s.submit(
                    {
                        let (s, l) = (s.clone(), l.clone());
                        async move {
                            if inherit {
                                let _g = s.locks().acquire("x", LockMode::Write).await.unwrap();
                            } else {
                                omega_sched::sleep(ms(1)).await.unwrap();
                            }
                            l.push("high");
                        }
                    },
                    TaskOptions::new().priority(10),
                );
                let mids: Vec<_> = (0..3)
                    .map(|i| {
                        let l = l.clone();
                        s.submit(
                            async move {
                                omega_sched::sleep(ms(1)).await.unwrap();
                                for _ in 0..5 {
                                    omega_sched::yield_now().await.unwrap();
                                }
                                l.push(format!("mid{i}"));
                            },
                            TaskOptions::new().priority(5),
                        )
                    })
                    .collect();
                low.await.unwrap();
                high.await.unwrap();
                s.await_all(mids).await.unwrap();
            })
            .await;
        let got = log.get();
        let low_at = got.iter().position(|e| e == "low done").unwrap();
        if inherit {
            // Boosted to 10, low finishes before any medium task.
            assert_eq!(low_at, 0, "{got:?}");
            assert_eq!(got[1], "high", "{got:?}");
        } else {
            // Control: without a waiter, the medium tasks starve low.
            assert_eq!(low_at, 4, "{got:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn everything_a_task_holds_is_released_when_it_ends_however_it_ends() {
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            // Panics holding a lock; leaks another guard with mem::forget; is cancelled.
            let p = s.submit(
                {
                    let s = s.clone();
                    async move {
                        std::mem::forget(
                            s.locks().acquire("leaked", LockMode::Write).await.unwrap(),
                        );
                        let _g = s.locks().acquire("a", LockMode::Write).await.unwrap();
                        panic!("boom");
                    }
                },
                TaskOptions::new(),
            );
            assert!(p.await.unwrap_err().is_panic());
            let c = s.submit(
                {
                    let s = s.clone();
                    async move {
                        std::mem::forget(s.locks().acquire("b", LockMode::Read).await.unwrap());
                        omega_sched::sleep(ms(1000)).await.unwrap();
                    }
                },
                TaskOptions::new(),
            );
            omega_sched::sleep(ms(1)).await.unwrap();
            assert_eq!(s.locks().resource_count(), 1);
            c.cancel("bye");
            assert!(c.await.unwrap_err().is_cancelled());
            assert_eq!(s.locks().resource_count(), 0);
            // Named owners survive task ends; release_all frees them.
            let agent = OwnerId::named("agent");
            for n in ["m", "n", "o"] {
                std::mem::forget(
                    s.locks()
                        .acquire(n, LockMode::Write)
                        .owner(agent.clone())
                        .await
                        .unwrap(),
                );
            }
            assert_eq!(s.locks().release_all(&agent), 3);
            assert_eq!(s.locks().resource_count(), 0);
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_million_distinct_names_leave_an_empty_table() {
    let sched = Scheduler::new();
    let locks = sched.locks().clone();
    let owner = OwnerId::named("bulk");
    for i in 0..1_000_000u32 {
        let g = locks
            .acquire(&format!("name:{i}"), LockMode::Write)
            .owner(owner.clone())
            .try_now()
            .unwrap();
        if i % 100_000 == 0 {
            assert_eq!(locks.resource_count(), 1);
        }
        drop(g);
    }
    assert_eq!(locks.resource_count(), 0);
    assert_eq!(locks.stats().totals.acquisitions_write, 1_000_000);
}

#[tokio::test(start_paused = true)]
async fn stats_and_events() {
    let sched = Scheduler::new();
    let mut events = sched.events();
    let s = sched.clone();
    sched
        .run_until(async move {
            let log = Log::default();
            let a = holder(&s, &log, "a", "hot", LockMode::Write, ms(10), 0);
            omega_sched::sleep(ms(1)).await.unwrap();
            let b = holder(&s, &log, "b", "hot", LockMode::Read, ms(5), 0);
            omega_sched::sleep(ms(1)).await.unwrap();
            let st = s.lock_stats();
            let hot = st.resource("hot").unwrap();
            assert_eq!((hot.holders, hot.waiters), (1, 1));
            s.await_all(vec![a, b]).await.unwrap();
        })
        .await;
    let st = sched.lock_stats();
    let hot = st
        .resource("hot")
        .expect("hot resources keep their figures");
    assert_eq!((hot.acquisitions_write, hot.acquisitions_read), (1, 1));
    assert_eq!(hot.contended, 1);
    assert_eq!(hot.wait_time.max, ms(9));
    assert_eq!(hot.hold_time.max, ms(10));
    let totals = sched.stats().locks;
    assert_eq!(totals.contended, 1);
    assert_eq!(
        (totals.holders, totals.waiters, totals.resources),
        (0, 0, 0)
    );
    let mut kinds = Vec::new();
    while let Ok(e) = events.try_recv() {
        match e.kind {
            EventKind::LockAcquired { resource, mode, .. } => {
                kinds.push(format!("+{resource}:{mode}"))
            }
            EventKind::LockReleased { resource, mode } => kinds.push(format!("-{resource}:{mode}")),
            _ => {}
        }
    }
    assert_eq!(
        kinds,
        ["+hot:write", "-hot:write", "+hot:read", "-hot:read"]
    );
}

#[tokio::test(start_paused = true)]
async fn outside_a_task_an_owner_is_required() {
    let sched = Scheduler::new();
    let e = sched.locks().try_acquire("x", LockMode::Read).unwrap_err();
    assert!(e.to_string().contains(".owner("), "{e}");
}

#[test]
fn bounds() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<omega_sched::LockManager>();
    send_sync::<omega_sched::LockGuard>();
    send::<omega_sched::LockAcquire>();
    send::<omega_sched::AcquireAll>();
    send_sync::<LockError>();
}
