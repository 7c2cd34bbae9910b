//! loom models of the core's races: a task's wake (from another thread), its cancel (from
//! another thread) and the driver's poll/finish, interleaved in every way loom finds, on
//! the real [`Core`] behind a loom mutex and real `async-task` cells. Run by
//! `.ci/sched-models.sh` (`RUSTFLAGS="--cfg loom" cargo test -p omega-sched --lib loom`).
//!
//! The driver here does what `Driver::turn` and the task's `Body` do, step for step:
//! absorb the inbox, pop, end the task if the popped view says stop or cancelled (the body
//! of a cooperative task that sees its cancellation returns), else poll it and record
//! `after_poll`. Invariants checked at the end: the task ended exactly once and as
//! cancelled, no runnable is left anywhere, and the counts are exact.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use loom::sync::{Arc, Mutex};
use loom::thread;
use tokio::time::Instant;

use super::{Core, Ending, NewTask};
use crate::config::Config;
use crate::executor::{Runnable, TaskTag};
use crate::task::{CancelMode, TaskId};

/// A body that parks until woken, forever.
struct Parked;

impl Future for Parked {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

type Inbox = Arc<Mutex<Vec<Runnable>>>;

/// One task in a fresh core; returns the core, the inbox its waker feeds, its id and a waker.
fn setup(mode: CancelMode) -> (Arc<Mutex<Core>>, Inbox, TaskId, std::task::Waker) {
    let mut core = Core::new(Config::default());
    let inbox: Inbox = Arc::new(Mutex::new(Vec::new()));
    let (key, seq) = core.next_ids();
    let id = TaskId::new(uuid::Uuid::nil(), key, seq);
    let ib = inbox.clone();
    let tag = TaskTag {
        key: key as u32,
        seq,
        home: None,
    };
    let (runnable, task) = async_task::Builder::new()
        .metadata(tag)
        .spawn(move |_| Parked, move |r| ib.lock().unwrap().push(r));
    task.detach();
    let waker = runnable.waker();
    core.insert(
        NewTask {
            id,
            name: None,
            priority: 0,
            mode,
            parent: None,
            link: crate::token::OnCancelGuard::inert(),
            born_cancelled: None,
            timeout: Some(None),
            deadline: None,
            queue_timeout: None,
        },
        runnable,
        waker.clone(),
        Instant::now(),
    );
    (Arc::new(Mutex::new(core)), inbox, id, waker)
}

/// One driver step: absorb, pop, and end or poll what was popped. Returns false when
/// there was nothing to run.
fn driver_step(core: &Mutex<Core>, inbox: &Inbox, now: Instant) -> bool {
    let arrived: Vec<Runnable> = std::mem::take(&mut *inbox.lock().unwrap());
    let (popped, fx) = {
        let mut c = core.lock().unwrap();
        for r in arrived {
            c.absorb(r, now);
        }
        let p = c.pop(1, now);
        (p, std::mem::take(&mut c.fx))
    };
    deliver(fx);
    let Some((runnable, cur)) = popped else {
        return false;
    };
    if cur.stop || cur.cancel.is_some() {
        // The body ends: dropped (stop) or unwound (a cooperative body seeing the cancel).
        drop(runnable);
        let fx = {
            let mut c = core.lock().unwrap();
            let out = c.finish(cur.id.key(), cur.id.seq(), Ending::Stopped, now);
            assert!(out.is_some(), "a popped task is live until it finishes");
            std::mem::take(&mut c.fx)
        };
        deliver(fx);
    } else {
        let rescheduled = runnable.run();
        let fx = {
            let mut c = core.lock().unwrap();
            c.after_poll(cur.id, rescheduled, cur.shield_depth, now);
            std::mem::take(&mut c.fx)
        };
        deliver(fx);
    }
    true
}

/// What `CoreGuard` does after unlocking.
fn deliver(fx: super::Effects) {
    for w in fx.wake {
        w.wake();
    }
    drop(fx.garbage);
}

fn check(mode: CancelMode) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(move || {
        let (core, inbox, id, waker) = setup(mode);
        let now = Instant::now();
        // Admit and park it once, as the driver would.
        assert!(driver_step(&core, &inbox, now));
        // A waker on another thread (a timer, I/O) and a canceller on a third.
        let w = thread::spawn(move || waker.wake());
        let (c2, now2) = (core.clone(), now);
        let canceller = thread::spawn(move || {
            let fx = {
                let mut c = c2.lock().unwrap();
                if let Some(k) = c.live_key(id) {
                    c.request_cancel(k, "stop".into(), super::Why::Cancel, now2);
                }
                std::mem::take(&mut c.fx)
            };
            deliver(fx);
        });
        // The driver runs meanwhile.
        driver_step(&core, &inbox, now);
        w.join().unwrap();
        canceller.join().unwrap();
        // Then until quiet.
        let mut steps = 0;
        while driver_step(&core, &inbox, now) {
            steps += 1;
            assert!(steps < 10, "the driver never goes quiet");
        }
        let c = core.lock().unwrap();
        assert_eq!(c.live(), 0, "the cancelled task ended");
        let st = c.stats();
        assert_eq!((st.cancelled, st.completed, st.failed), (1, 0, 0));
        assert_eq!(st.pending + st.running + st.suspended, 0);
        assert!(inbox.lock().unwrap().is_empty(), "no runnable stranded");
    });
}

#[test]
fn loom_wake_cancel_finish_drop_mode() {
    check(CancelMode::Drop);
}

#[test]
fn loom_wake_cancel_finish_cooperative() {
    check(CancelMode::Cooperative);
}
