//! A host program as an embedder writes it (issue 9): a multi-threaded tokio host drives a
//! scheduler on the scheduler's own thread, submits from several tokio tasks, subscribes to
//! events from inside a task, cancels from a plain OS thread, runs `!Send` work on the
//! driver thread, and shuts down while tasks still hold locks and LLM permits.

use std::time::Duration;

use omega_sched::{EventKind, LockMode, Scheduler, TaskError, TaskOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_multi_threaded_host_drives_submits_watches_cancels_and_shuts_down() {
    let driver = Scheduler::builder()
        .max_concurrent_tasks(8)
        .max_concurrent_llm_calls(2)
        .spawn_driver()
        .expect("a driver thread");
    let sched = driver.scheduler().clone();

    // A task of the scheduler watches the scheduler's own events.
    let mut rx = sched.events();
    let watcher = sched.submit(
        async move {
            let mut completed = 0;
            while completed < 100 {
                match rx.recv().await {
                    Ok(e) if e.kind == EventKind::Completed => completed += 1,
                    Ok(_) => {}
                    Err(e) => panic!("watcher lost events: {e}"),
                }
            }
            completed
        },
        TaskOptions::new().name("watcher"),
    );

    // Four tokio tasks submit 25 tasks each, on whatever worker thread they run.
    let mut submitters = tokio::task::JoinSet::new();
    for t in 0..4u64 {
        let s = sched.clone();
        submitters.spawn(async move {
            let hs: Vec<_> = (0..25u64)
                .map(|i| {
                    s.submit(
                        async move {
                            omega_sched::sleep(Duration::from_millis(1)).await.ok();
                            t * 100 + i
                        },
                        TaskOptions::new(),
                    )
                })
                .collect();
            s.await_all(hs).await.expect("all complete").len()
        });
    }
    let mut total = 0;
    while let Some(n) = submitters.join_next().await {
        total += n.unwrap();
    }
    assert_eq!(total, 100);
    assert_eq!(watcher.await.unwrap(), 100);

    // Tasks that hold locks and LLM permits, and tasks waiting for them.
    for i in 0..3 {
        let s = sched.clone();
        sched
            .submit(
                async move {
                    let _g = s
                        .locks()
                        .acquire(&format!("doc:{i}"), LockMode::Write)
                        .await
                        .unwrap();
                    let _p = s.llm_pool().acquire().await.unwrap();
                    std::future::pending::<()>().await;
                },
                TaskOptions::new().name("holder"),
            )
            .detach();
    }
    let victim = sched.submit(
        omega_sched::sleep(Duration::from_secs(3600)),
        TaskOptions::new().name("victim"),
    );

    // A plain OS thread cancels one.
    let (s, id) = (sched.clone(), victim.id());
    std::thread::spawn(move || assert!(s.cancel(id, "from another thread")))
        .join()
        .unwrap();
    match victim.await {
        Err(TaskError::Cancelled { reason }) => assert_eq!(&*reason, "from another thread"),
        other => panic!("{other:?}"),
    }

    // `!Send` work, created on the driver thread.
    let local = driver
        .spawn_local_with(
            || {
                let shared = std::rc::Rc::new(std::cell::Cell::new(1));
                async move {
                    omega_sched::yield_now().await.ok();
                    shared.set(shared.get() + 1);
                    shared.get()
                }
            },
            TaskOptions::new(),
        )
        .unwrap();
    assert_eq!(local.await.unwrap(), 2);

    let st = sched.stats();
    assert_eq!(st.llm_in_flight, 2);
    assert_eq!(
        st.pools[0].waiting, 1,
        "the third holder waits for a permit"
    );
    assert_eq!(sched.locks().resource_count(), 3);

    // Shut down with tasks still holding locks; the join happens off the async workers.
    tokio::task::spawn_blocking(move || driver.shutdown("host exit"))
        .await
        .unwrap()
        .expect("the driver thread ends cleanly");
    let st = sched.stats();
    assert_eq!(st.live(), 0, "{st:?}");
    assert_eq!(st.llm_in_flight, 0);
    assert_eq!(sched.locks().resource_count(), 0, "every lock released");
    assert_eq!(st.finished(), st.submitted);
    let refused = sched.submit(async { 1 }, TaskOptions::new()).await;
    assert!(
        matches!(refused, Err(TaskError::Shutdown { .. })),
        "{refused:?}"
    );
}

/// Found from outside the repo (a host crate, stop 24): a plain thread drives a scheduler with
/// `block_on`, hands its task handles to another thread and exits with the tasks parked in a
/// one-hour sleep. Once the last `Scheduler` clone is gone, every handle resolves with
/// `cancelled` (nothing hangs); while the host keeps a clone, a later driver on another thread
/// picks the tasks up and runs them to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_that_drove_a_scheduler_exits_with_tasks_alive() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    // The thread's scheduler is dropped with the thread.
    let started = Arc::new(AtomicUsize::new(0));
    let st = started.clone();
    let handles = std::thread::spawn(move || {
        let s = Scheduler::new();
        s.block_on(async {
            let hs: Vec<_> = (0..100u64)
                .map(|i| {
                    let st = st.clone();
                    s.submit(
                        async move {
                            st.fetch_add(1, Ordering::SeqCst);
                            // Err once cancelled; the task's own value is what is checked.
                            let _ = omega_sched::sleep(Duration::from_secs(3600)).await;
                            i
                        },
                        TaskOptions::new(),
                    )
                })
                .collect();
            while st.load(Ordering::SeqCst) < 100 {
                tokio::task::yield_now().await;
            }
            hs
        })
    })
    .join()
    .expect("the driving thread");
    assert_eq!(started.load(Ordering::SeqCst), 100, "every task was parked");
    for h in handles {
        let r = tokio::time::timeout(Duration::from_secs(10), h)
            .await
            .expect("a handle of an orphaned task must resolve, not hang");
        match r {
            Err(TaskError::Cancelled { reason }) => assert_eq!(&*reason, "scheduler dropped"),
            other => panic!("expected cancelled, got {other:?}"),
        }
    }

    // The host keeps a clone: the tasks wait for the next driver, then finish normally.
    let s = Scheduler::new();
    let s2 = s.clone();
    let h = std::thread::spawn(move || {
        let h = s2.submit(
            async {
                omega_sched::sleep(Duration::from_millis(5))
                    .await
                    .expect("not cancelled");
                7
            },
            TaskOptions::new(),
        );
        // This thread drives it until it parks in its sleep, then exits.
        s2.block_on(tokio::task::yield_now());
        h
    })
    .join()
    .expect("the first driving thread");
    let v = tokio::time::timeout(Duration::from_secs(10), s.run_until(h))
        .await
        .expect("a second driver runs the task left behind")
        .expect("the task's value");
    assert_eq!(v, 7);
}
