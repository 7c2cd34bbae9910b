//! `omega_sched::sleep` inside scheduler tasks (SPEC §3, §9): a sleep wakes the waker it was
//! last polled with — also under a combinator that polls it with its own waker — and a sleep
//! dropped before its end leaves nothing behind. Paused clock: every time is exact.

use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use omega_sched::{Scheduler, TaskOptions};
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
