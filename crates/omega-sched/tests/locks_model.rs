//! Model tests of the lock manager: a stress test checking the exclusion invariant at every
//! grant, and a proptest that runs random interleavings of acquire / try / poll / cancel /
//! release against a small reference model of the grant rules (no loom: the manager's
//! state is one mutex, so the races that matter are orderings of these operations, which
//! the proptest enumerates deterministically).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use omega_sched::{
    Fairness, LockAcquire, LockGuard, LockManager, LockMode, OwnerId, Scheduler, TaskOptions,
};
use proptest::prelude::*;

#[derive(Default)]
struct Occupancy {
    readers: AtomicUsize,
    writers: AtomicUsize,
}

#[tokio::test(start_paused = true)]
async fn stress_many_tasks_few_resources_never_break_exclusion() {
    let sched = Scheduler::builder()
        .fairness(Fairness::Priority)
        .max_concurrent_tasks(24)
        .build();
    let names = ["r0", "r1", "r2"];
    let occ: Arc<Vec<Occupancy>> = Arc::new((0..3).map(|_| Occupancy::default()).collect());
    let grants = Arc::new(AtomicUsize::new(0));
    let s = sched.clone();
    let (o2, g2) = (occ.clone(), grants.clone());
    sched
        .run_until(async move {
            let mut hs = Vec::new();
            for i in 0..400usize {
                let (s2, occ, grants) = (s.clone(), o2.clone(), g2.clone());
                let r = i % 3;
                let mode = if i % 4 == 0 {
                    LockMode::Write
                } else {
                    LockMode::Read
                };
                let batch = i % 7 == 0;
                hs.push(s.submit(
                    async move {
                        let locks = s2.locks();
                        let guards: Vec<LockGuard> = if batch {
                            let other = (r + 1) % 3;
                            match locks
                                .acquire_all(&[(names[r], mode), (names[other], LockMode::Write)])
                                .timeout(Duration::from_millis(50 + (i % 5) as u64))
                                .await
                            {
                                Ok(g) => g,
                                Err(e) => {
                                    assert!(e.is_timeout(), "{e}");
                                    return;
                                }
                            }
                        } else {
                            vec![locks.acquire(names[r], mode).await.unwrap()]
                        };
                        // The invariant, at every grant.
                        for g in &guards {
                            let k = names.iter().position(|n| *n == g.resource()).unwrap();
                            let o = &occ[k];
                            match g.mode() {
                                LockMode::Write => {
                                    assert_eq!(o.writers.fetch_add(1, Ordering::SeqCst), 0);
                                    assert_eq!(o.readers.load(Ordering::SeqCst), 0);
                                    assert_eq!(locks.holders(g.resource()).len(), 1);
                                }
                                LockMode::Read => {
                                    o.readers.fetch_add(1, Ordering::SeqCst);
                                    assert_eq!(o.writers.load(Ordering::SeqCst), 0);
                                }
                            }
                            grants.fetch_add(1, Ordering::SeqCst);
                        }
                        omega_sched::sleep(Duration::from_millis((i % 3) as u64))
                            .await
                            .unwrap();
                        omega_sched::yield_now().await.unwrap();
                        for g in &guards {
                            let k = names.iter().position(|n| *n == g.resource()).unwrap();
                            match g.mode() {
                                LockMode::Write => occ[k].writers.fetch_sub(1, Ordering::SeqCst),
                                LockMode::Read => occ[k].readers.fetch_sub(1, Ordering::SeqCst),
                            };
                        }
                    },
                    TaskOptions::new().priority((i % 5) as i32),
                ));
                if i % 50 == 0 {
                    omega_sched::yield_now().await.unwrap();
                }
            }
            // Cancel a few while they wait.
            for h in hs.iter().skip(3).step_by(37) {
                h.cancel("chaos");
            }
            s.await_all_settled(hs).await;
        })
        .await;
    assert!(grants.load(Ordering::SeqCst) > 300);
    assert_eq!(sched.locks().resource_count(), 0);
    let t = sched.stats().locks;
    assert_eq!((t.holders, t.waiters), (0, 0));
    assert!(t.contended > 0);
}

// ---- proptest model ----

#[derive(Clone, Debug)]
enum Op {
    Acquire(usize, usize, bool),
    Try(usize, usize, bool),
    Poll(usize),
    Cancel(usize),
    Release(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4usize, 0..2usize, any::<bool>()).prop_map(|(o, r, w)| Op::Acquire(o, r, w)),
        (0..4usize, 0..2usize, any::<bool>()).prop_map(|(o, r, w)| Op::Try(o, r, w)),
        (0..8usize).prop_map(Op::Poll),
        (0..8usize).prop_map(Op::Cancel),
        (0..8usize).prop_map(Op::Release),
    ]
}

fn mode(w: bool) -> LockMode {
    if w {
        LockMode::Write
    } else {
        LockMode::Read
    }
}

/// The reference: per resource, holders (owner → (reads, writes)) and a FIFO queue.
#[derive(Default, Debug)]
struct Model {
    holders: [HashMap<usize, (u32, u32)>; 2],
    queue: [Vec<(u64, usize, LockMode)>; 2],
    /// Waiting future id → granted?
    granted: HashMap<u64, bool>,
}

enum Fit {
    Ok,
    Blocked,
    Upgrade,
}

impl Model {
    fn fit(&self, r: usize, o: usize, m: LockMode) -> Fit {
        let h = &self.holders[r];
        if let Some(&(_, w)) = h.get(&o) {
            return if m == LockMode::Read || w > 0 || h.len() == 1 {
                Fit::Ok
            } else {
                Fit::Upgrade
            };
        }
        let conflict = h.values().any(|&(_, w)| w > 0) || (m == LockMode::Write && !h.is_empty());
        if conflict {
            Fit::Blocked
        } else {
            Fit::Ok
        }
    }
    fn hold(&mut self, r: usize, o: usize, m: LockMode) {
        let e = self.holders[r].entry(o).or_default();
        if m == LockMode::Write {
            e.1 += 1
        } else {
            e.0 += 1
        }
    }
    fn unhold(&mut self, r: usize, o: usize, m: LockMode) {
        let e = self.holders[r].get_mut(&o).expect("model holder");
        if m == LockMode::Write {
            e.1 -= 1
        } else {
            e.0 -= 1
        }
        if *e == (0, 0) {
            self.holders[r].remove(&o);
        }
        self.regrant(r);
    }
    /// None = must wait; Some(Ok) granted; Some(Err) upgrade refused.
    fn request(&mut self, r: usize, o: usize, m: LockMode) -> Option<Result<(), ()>> {
        match self.fit(r, o, m) {
            Fit::Upgrade => Some(Err(())),
            Fit::Ok if self.holders[r].contains_key(&o) => {
                self.hold(r, o, m);
                Some(Ok(()))
            }
            Fit::Ok
                if self.queue[r]
                    .iter()
                    .all(|q| q.2 == LockMode::Read && m == LockMode::Read) =>
            {
                self.hold(r, o, m);
                Some(Ok(()))
            }
            _ => None,
        }
    }
    fn regrant(&mut self, r: usize) {
        let mut reader_waiting = false;
        let mut i = 0;
        while i < self.queue[r].len() {
            let (id, o, m) = self.queue[r][i];
            if m == LockMode::Write && reader_waiting {
                break;
            }
            if matches!(self.fit(r, o, m), Fit::Ok) {
                self.queue[r].remove(i);
                self.hold(r, o, m);
                self.granted.insert(id, true);
                if m == LockMode::Write {
                    break;
                }
                continue;
            }
            if m == LockMode::Write {
                break;
            }
            reader_waiting = true;
            i += 1;
        }
    }
}

struct Waiting {
    id: u64,
    r: usize,
    o: usize,
    m: LockMode,
    fut: Pin<Box<LockAcquire>>,
}

fn check_holders(locks: &LockManager, model: &Model) {
    for r in 0..2 {
        let mut got: Vec<(String, u32)> = locks
            .holders(&format!("r{r}"))
            .into_iter()
            .map(|h| (format!("{:?}", h.owner), h.count))
            .collect();
        got.sort();
        let mut want: Vec<(String, u32)> = model.holders[r]
            .iter()
            .map(|(o, (a, b))| (format!("{:?}", OwnerId::named(format!("o{o}"))), a + b))
            .collect();
        want.sort();
        assert_eq!(got, want, "holders of r{r}");
        let h = locks.holders(&format!("r{r}"));
        if h.iter().any(|h| h.mode == LockMode::Write) {
            assert_eq!(h.len(), 1, "a writer with others on r{r}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn random_interleavings_match_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let sched = Scheduler::new();
        let locks = sched.locks().clone();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut model = Model::default();
        let mut held: Vec<(usize, usize, LockMode, LockGuard)> = Vec::new();
        let mut waiting: Vec<Waiting> = Vec::new();
        let mut next_id = 0u64;
        for op in ops {
            match op {
                Op::Acquire(o, r, w) => {
                    let m = mode(w);
                    let mut fut = Box::pin(locks.acquire(&format!("r{r}"), m).owner(format!("o{o}").as_str()));
                    let got = fut.as_mut().poll(&mut cx);
                    match (model.request(r, o, m), got) {
                        (Some(Ok(())), Poll::Ready(Ok(g))) => held.push((r, o, m, g)),
                        (Some(Err(())), Poll::Ready(Err(e))) => prop_assert!(e.to_string().contains("upgrade")),
                        // Waiting would close a cycle (checked by the deadlock tests): refused.
                        (None, Poll::Ready(Err(e))) if e.is_deadlock() => {}
                        (None, Poll::Pending) => {
                            next_id += 1;
                            model.queue[r].push((next_id, o, m));
                            model.granted.insert(next_id, false);
                            waiting.push(Waiting { id: next_id, r, o, m, fut });
                        }
                        (want, got) => prop_assert!(false, "model {want:?}, got ready={}", got.is_ready()),
                    }
                }
                Op::Try(o, r, w) => {
                    let m = mode(w);
                    let got = locks.acquire(&format!("r{r}"), m).owner(format!("o{o}").as_str()).try_now();
                    match (model.request(r, o, m), got) {
                        (Some(Ok(())), Ok(g)) => held.push((r, o, m, g)),
                        (Some(Err(())), Err(_)) | (None, Err(_)) => {}
                        (want, got) => prop_assert!(false, "model {want:?}, got {:?}", got.map(|_| ())),
                    }
                }
                Op::Poll(i) if !waiting.is_empty() => {
                    let i = i % waiting.len();
                    let granted = model.granted[&waiting[i].id];
                    match waiting[i].fut.as_mut().poll(&mut cx) {
                        Poll::Ready(Ok(g)) => {
                            prop_assert!(granted, "granted ahead of the model");
                            let w = waiting.remove(i);
                            model.granted.remove(&w.id);
                            held.push((w.r, w.o, w.m, g));
                        }
                        Poll::Pending => prop_assert!(!granted, "model granted, manager did not"),
                        Poll::Ready(Err(e)) => prop_assert!(false, "{e}"),
                    }
                }
                Op::Cancel(i) if !waiting.is_empty() => {
                    let w = waiting.remove(i % waiting.len());
                    let granted = model.granted.remove(&w.id).unwrap();
                    drop(w.fut);
                    if granted {
                        // Granted but never collected: the grant passes on.
                        model.unhold(w.r, w.o, w.m);
                    } else {
                        model.queue[w.r].retain(|q| q.0 != w.id);
                        model.regrant(w.r);
                    }
                }
                Op::Release(i) if !held.is_empty() => {
                    let (r, o, m, g) = held.remove(i % held.len());
                    prop_assert!(g.release());
                    model.unhold(r, o, m);
                }
                _ => {}
            }
            check_holders(&locks, &model);
        }
        drop(waiting);
        drop(held);
        prop_assert_eq!(locks.resource_count(), 0);
        let t = locks.totals();
        prop_assert_eq!((t.holders, t.waiters), (0, 0));
    }
}
