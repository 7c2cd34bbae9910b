//! `omega_sched::sleep` inside scheduler tasks (SPEC §3, §9): a sleep wakes the waker it was
//! last polled with — also under a combinator that polls it with its own waker — and a sleep
//! dropped before its end leaves nothing behind. Paused clock: every time is exact.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use omega_sched::{CancelMode, Scheduler, TaskOptions};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn sleeps_under_futures_unordered_each_wake_their_own_waker() {
    let sched = Scheduler::new();
    let s = sched.clone();
    let ends = sched
        .run_until(async move {
            let t0 = Instant::now();
            let h = s.submit(
                async move {
                    let mut set: FuturesUnordered<_> = [3u64, 1, 2]
                        .into_iter()
                        .map(|secs| async move {
                            omega_sched::sleep(Duration::from_secs(secs)).await.ok();
                            (secs, t0.elapsed())
                        })
                        .collect();
                    let mut ends = Vec::new();
                    while let Some(end) = set.next().await {
                        ends.push(end);
                    }
                    ends
                },
                TaskOptions::new(),
            );
            h.await.expect("the task ends")
        })
        .await;
    assert_eq!(
        ends,
        vec![
            (1, Duration::from_secs(1)),
            (2, Duration::from_secs(2)),
            (3, Duration::from_secs(3)),
        ]
    );
}

/// The sleep tables are empty: nothing registered, nothing stale left in the heap.
fn assert_no_sleeps(sched: &Scheduler) {
    let n = sched.sleep_counts();
    assert_eq!((n.live, n.heap), (0, 0), "{n:?}");
}

#[tokio::test(start_paused = true)]
async fn join_all_of_100_sleeps_inside_a_task_ends_each_on_time() {
    let sched = Scheduler::new();
    let s = sched.clone();
    let ends = sched
        .run_until(async move {
            let t0 = Instant::now();
            s.submit(
                async move {
                    // More than 30 children: `join_all` polls them through a
                    // `FuturesOrdered`, each child with a waker of its own.
                    futures::future::join_all((1..=100u64).rev().map(|ms| async move {
                        omega_sched::sleep(Duration::from_millis(ms)).await.ok();
                        t0.elapsed()
                    }))
                    .await
                },
                TaskOptions::new(),
            )
            .await
            .expect("the task ends")
        })
        .await;
    let want: Vec<Duration> = (1..=100u64).rev().map(Duration::from_millis).collect();
    assert_eq!(ends, want);
    assert_no_sleeps(&sched);
}

/// A waker that counts how often it is woken.
#[derive(Default)]
struct CountWakes(AtomicUsize);

impl Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn a_sleep_wakes_the_waker_of_its_latest_poll_once() {
    let sched = Scheduler::new();
    let s = sched.clone();
    let (first, second) = sched
        .run_until(async move {
            s.submit(
                async {
                    let first = Arc::new(CountWakes::default());
                    let second = Arc::new(CountWakes::default());
                    let mut nap = std::pin::pin!(omega_sched::sleep(Duration::from_secs(1)));
                    for w in [&first, &second, &second] {
                        let waker = Waker::from(w.clone());
                        let mut cx = Context::from_waker(&waker);
                        assert!(nap.as_mut().poll(&mut cx).is_pending());
                    }
                    // The task itself is woken by a longer sleep, not by `nap`.
                    omega_sched::sleep(Duration::from_secs(2)).await.ok();
                    let counts = (
                        first.0.load(Ordering::SeqCst),
                        second.0.load(Ordering::SeqCst),
                    );
                    let waker = Waker::from(second.clone());
                    let mut cx = Context::from_waker(&waker);
                    assert!(nap.as_mut().poll(&mut cx).is_ready(), "due by now");
                    counts
                },
                TaskOptions::new(),
            )
            .await
            .expect("the task ends")
        })
        .await;
    assert_eq!((first, second), (0, 1));
    assert_no_sleeps(&sched);
}

#[tokio::test(start_paused = true)]
async fn sleeps_dropped_early_leave_the_tables_bounded() {
    let sched = Scheduler::new();
    let s = sched.clone();
    let worst = sched
        .run_until(async move {
            let probe = s.clone();
            s.submit(
                async move {
                    // One long sleep stays registered beside the churn.
                    let mut long = std::pin::pin!(omega_sched::sleep(Duration::from_secs(7200)));
                    futures::future::poll_fn(|cx| {
                        assert!(long.as_mut().poll(cx).is_pending());
                        std::task::Poll::Ready(())
                    })
                    .await;
                    let mut worst = omega_sched::SleepCounts::default();
                    for _ in 0..100_000 {
                        let nap = omega_sched::sleep(Duration::from_secs(3600));
                        let r = tokio::time::timeout(Duration::from_millis(1), nap).await;
                        assert!(r.is_err(), "the hour-long sleep never ends first");
                        let n = probe.sleep_counts();
                        worst.live = worst.live.max(n.live);
                        worst.heap = worst.heap.max(n.heap);
                        worst.slots = worst.slots.max(n.slots);
                    }
                    worst
                },
                TaskOptions::new(),
            )
            .await
            .expect("the task ends")
        })
        .await;
    assert_eq!(worst.live, 1, "only the long sleep stays: {worst:?}");
    assert!(worst.heap <= 3, "{worst:?}");
    assert!(worst.slots <= 2, "{worst:?}");
    assert_no_sleeps(&sched);
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_task_parked_in_sleep_ends_it_at_once_and_frees_its_slot() {
    for mode in [CancelMode::Drop, CancelMode::Cooperative] {
        let sched = Scheduler::new();
        let s = sched.clone();
        let (out, after) = sched
            .run_until(async move {
                let h = s.submit(
                    async { omega_sched::sleep(Duration::from_secs(3600)).await },
                    TaskOptions::new().cancel_mode(mode),
                );
                omega_sched::yield_now().await.ok();
                tokio::time::sleep(Duration::from_secs(1)).await;
                assert_eq!(s.sleep_counts().live, 1, "{mode:?}: parked in its sleep");
                let t = Instant::now();
                h.cancel("stop");
                let out = h.await;
                (out, t.elapsed())
            })
            .await;
        assert_eq!(after, Duration::ZERO, "{mode:?}");
        match mode {
            CancelMode::Drop => assert!(out.is_err_and(|e| e.is_cancelled()), "{mode:?}"),
            _ => {
                // The body saw `Err(Cancelled)` from its sleep and returned it.
                let err = out.expect("a cooperative body returns").unwrap_err();
                assert_eq!(&*err.reason, "stop");
            }
        }
        assert_no_sleeps(&sched);
    }
}

#[tokio::test(start_paused = true)]
async fn a_new_earliest_sleep_shortens_the_drivers_wait() {
    let sched = Scheduler::new();
    let s = sched.clone();
    let (long, short) = sched
        .run_until(async move {
            let t0 = Instant::now();
            let long = s.submit(
                async move {
                    omega_sched::sleep(Duration::from_secs(10)).await.ok();
                    t0.elapsed()
                },
                TaskOptions::new(),
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
            let short = s.submit(
                async move {
                    omega_sched::sleep(Duration::from_millis(500)).await.ok();
                    t0.elapsed()
                },
                TaskOptions::new(),
            );
            (long.await.unwrap(), short.await.unwrap())
        })
        .await;
    assert_eq!(short, Duration::from_millis(1500));
    assert_eq!(long, Duration::from_secs(10));
}

#[test]
fn a_sleep_fires_on_a_scheduler_driven_from_another_thread() {
    let sched = Scheduler::new();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let s = sched.clone();
    let driver = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(s.run_until(async move {
            let _ = stop_rx.await;
        }));
    });
    // Submitted from this thread while the other one drives: a short sleep after a long
    // one, so the driver's own wait must be cut short.
    let long = sched.submit(
        async { omega_sched::sleep(Duration::from_secs(3600)).await },
        TaskOptions::new(),
    );
    let short = sched.submit(
        async {
            let t = std::time::Instant::now();
            omega_sched::sleep(Duration::from_millis(20)).await.ok();
            t.elapsed()
        },
        TaskOptions::new(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(futures::executor::block_on(short));
    });
    let slept = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the sleep fired")
        .expect("the task ends");
    assert!(slept >= Duration::from_millis(20), "{slept:?}");
    long.cancel("done");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(futures::executor::block_on(long));
    });
    assert!(rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the cancel reached the sleeping task")
        .is_err_and(|e| e.is_cancelled()));
    let _ = stop_tx.send(());
    driver.join().expect("the driver thread ends");
    assert_no_sleeps(&sched);
}

#[tokio::test(start_paused = true)]
async fn shutdown_and_drop_with_tasks_parked_in_sleeps() {
    let sched = Scheduler::new();
    let s = sched.clone();
    let n = sched
        .run_until(async move {
            let hs: Vec<_> = (0..10u64)
                .map(|i| {
                    s.submit(
                        omega_sched::sleep(Duration::from_secs(100 + i)),
                        TaskOptions::new(),
                    )
                })
                .collect();
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(s.sleep_counts().live, 10);
            s.shutdown("bye");
            let ends = s.await_all_settled(hs).await;
            ends.iter().filter(|r| r.is_err()).count()
        })
        .await;
    assert_eq!(n, 10);
    assert_no_sleeps(&sched);

    // Dropped with no driver: the bodies (and their sleeps) are dropped by the last handle.
    let sched = Scheduler::new();
    let s = sched.clone();
    sched
        .run_until(async move {
            for i in 0..10u64 {
                s.submit(
                    omega_sched::sleep(Duration::from_secs(100 + i)),
                    TaskOptions::new(),
                )
                .detach();
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        })
        .await;
    assert_eq!(sched.sleep_counts().live, 10);
    drop(sched);
}

#[tokio::test(start_paused = true)]
async fn outside_a_task_sleep_is_tokios_own() {
    let t0 = Instant::now();
    omega_sched::sleep(Duration::from_millis(1500))
        .await
        .expect("never cancelled outside a task");
    assert_eq!(t0.elapsed(), Duration::from_millis(1500));
}
