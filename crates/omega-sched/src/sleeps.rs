//! The scheduler's sleep timers: one slab of wakers and one min-heap of deadlines, behind a
//! small mutex of their own, so that a task parked in [`sleep`](crate::sleep) costs a 24-byte
//! slot and a 16-byte heap entry instead of a tokio timer entry inside its cell (SPEC §9).
//!
//! # Implementation details
//!
//! A [`SleepFuture`](crate::SleepFuture) polled inside a task of a scheduler driven on this
//! thread registers here once (`register`): it gets a slot holding the waker it was polled
//! with, and the heap gets `(deadline, slot, generation)`. Every later poll hands its waker
//! to `update`, which replaces the stored one unless it `will_wake` the same task: a sleep
//! always wakes the waker of its **latest** poll (a combinator such as `FuturesUnordered`
//! polls each child with a waker of its own, not the task's).
//!
//! The driver fires due entries at the start of each turn (`expire`): an entry whose
//! generation matches its slot wakes the stored waker and frees the slot; any other entry
//! is stale and fires as a no-op. The driver sleeps until the earliest of the core's timers
//! and [`Sleeps::next`].
//!
//! A sleep dropped before its end frees its slot (`cancel`), bumping the generation so that
//! its heap entry becomes stale. Stale entries are dropped lazily (when they reach the top of
//! the heap) and all at once when they outnumber the live ones (`compact`, after a `cancel`
//! or an `expire`), so the heap holds at most twice the live sleeps and a loop of
//! `timeout(1ms, sleep(1h))` does not grow it.
//!
//! # Invariants
//!
//! 1. A slot is occupied (holds a waker) iff exactly one heap entry carries its index and
//!    current generation; `live` counts the occupied slots.
//! 2. `stale` counts the heap entries whose generation no longer matches their slot, so
//!    `heap.len() == live + stale`; between operations `stale <= live` (only `cancel` adds
//!    stale entries and only `expire` removes live ones, and both compact when `stale`
//!    exceeds `live`).
//! 3. A generation is reused only after 2^32 frees of one slot. A stale entry is gone by the
//!    next compaction, which comes as soon as `stale` exceeds `live`, so it never sees its
//!    slot's generation come round again (that would take 2^32 live sleeps).
//! 4. Nothing foreign runs under the lock: wakers are cloned before it is taken, and woken or
//!    dropped after it is released.
//!
//! # Lock order
//!
//! The sleep lock is a leaf: nothing else is locked while it is held. It may be taken while
//! the core lock is held — a task body (and the sleeps inside it) can be dropped under the
//! core lock, and its `Drop` frees its slot here — so core → sleeps is allowed and
//! sleeps → core never happens.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::task::Waker;

use tokio::time::Instant;

use crate::sync::Mutex;

/// A registered sleep's slot and generation (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SleepKey {
    slot: u32,
    gen: u32,
}

/// What `update` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Update {
    /// Still registered; the stored waker wakes the given one's task.
    Kept,
    /// The registration is over (fired): the sleep is due, or must register again.
    Gone,
}

/// One slot of the slab: 24 bytes.
#[derive(Debug)]
struct Slot {
    /// The waker of the sleep's latest poll; `None` while the slot is free.
    waker: Option<Waker>,
    /// Bumped each time the slot is freed.
    gen: u32,
    /// The next free slot ([`NONE`] for none), while this one is free.
    next_free: u32,
}

/// No slot.
const NONE: u32 = u32::MAX;

/// One heap entry: 16 bytes, earliest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    /// The deadline in nanoseconds since `Inner::epoch` (an `Instant` is 16 bytes).
    at: u64,
    slot: u32,
    gen: u32,
}

#[derive(Debug)]
struct Inner {
    /// What heap deadlines count from: the tables' creation (a deadline before it is due
    /// at once, and counted as 0).
    epoch: Instant,
    slots: Vec<Slot>,
    /// Head of the free list.
    free: Option<u32>,
    heap: BinaryHeap<Reverse<Entry>>,
    live: usize,
    stale: usize,
}

/// Sizes of the sleep tables, for tests and stats (`Scheduler::sleep_counts`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SleepCounts {
    /// Registered sleeps not yet fired nor dropped.
    pub live: usize,
    /// Heap entries, stale ones included.
    pub heap: usize,
    /// Slots in the slab, free ones included (its high-water mark).
    pub slots: usize,
}

/// The sleep timers of one scheduler. See the module docs.
#[derive(Debug)]
pub(crate) struct Sleeps {
    inner: Mutex<Inner>,
}

impl Default for Sleeps {
    fn default() -> Self {
        Sleeps {
            inner: Mutex::new(Inner {
                epoch: Instant::now(),
                slots: Vec::new(),
                free: None,
                heap: BinaryHeap::new(),
                live: 0,
                stale: 0,
            }),
        }
    }
}

impl Inner {
    /// `t` as a heap deadline (nanoseconds since the epoch, saturating).
    fn since(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn is_current(&self, key: SleepKey) -> bool {
        self.slots
            .get(key.slot as usize)
            .is_some_and(|s| s.gen == key.gen && s.waker.is_some())
    }

    /// Frees an occupied slot: its generation moves on, its waker is returned (to be
    /// dropped after the lock, invariant 4).
    fn free(&mut self, slot: u32) -> Option<Waker> {
        let next = self.free.unwrap_or(NONE);
        let s = &mut self.slots[slot as usize];
        let w = s.waker.take();
        s.gen = s.gen.wrapping_add(1);
        s.next_free = next;
        self.free = Some(slot);
        self.live -= 1;
        w
    }

    /// Pops stale entries off the top of the heap.
    fn skip_stale(&mut self) {
        while let Some(Reverse(e)) = self.heap.peek() {
            let e = *e;
            if self.is_current(SleepKey {
                slot: e.slot,
                gen: e.gen,
            }) {
                break;
            }
            self.heap.pop();
            self.stale -= 1;
        }
    }

    /// Rebuilds the heap without its stale entries (invariant 2).
    fn compact(&mut self) {
        let slots = &self.slots;
        self.heap.retain(|Reverse(e)| {
            slots
                .get(e.slot as usize)
                .is_some_and(|s| s.gen == e.gen && s.waker.is_some())
        });
        self.stale = 0;
        let (len, cap) = (self.heap.len(), self.heap.capacity());
        if cap > 64 && len < cap / 4 {
            self.heap.shrink_to(len * 2);
        }
    }
}

impl Sleeps {
    /// Registers a sleep due at `at` that wakes `waker` (cloned by the caller, before the
    /// lock: invariant 4). True in the second place if it is now the earliest.
    pub fn register(&self, at: Instant, waker: Waker) -> (SleepKey, bool) {
        let mut g = self.inner.lock();
        let slot = match g.free {
            Some(slot) => {
                let next = g.slots[slot as usize].next_free;
                g.free = (next != NONE).then_some(next);
                g.slots[slot as usize].waker = Some(waker);
                slot
            }
            None => {
                let slot = u32::try_from(g.slots.len())
                    .ok()
                    .filter(|&s| s != NONE)
                    .expect("fewer than 2^32 - 1 sleeps at once");
                g.slots.push(Slot {
                    waker: Some(waker),
                    gen: 0,
                    next_free: NONE,
                });
                slot
            }
        };
        let gen = g.slots[slot as usize].gen;
        g.live += 1;
        g.skip_stale();
        let at = g.since(at);
        let earliest = g.heap.peek().is_none_or(|Reverse(e)| at < e.at);
        g.heap.push(Reverse(Entry { at, slot, gen }));
        (SleepKey { slot, gen }, earliest)
    }

    /// A later poll of a registered sleep: makes `waker` the one woken, unless the stored
    /// waker already wakes the same task. `Gone` if the registration fired meanwhile.
    pub fn update(&self, key: SleepKey, waker: &Waker) -> Update {
        {
            let g = self.inner.lock();
            if !g.is_current(key) {
                return Update::Gone;
            }
            let s = &g.slots[key.slot as usize];
            if s.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                return Update::Kept;
            }
        }
        // Another waker: clone it outside the lock (invariant 4), then swap it in.
        let new = waker.clone();
        let old = {
            let mut g = self.inner.lock();
            if !g.is_current(key) {
                return Update::Gone;
            }
            g.slots[key.slot as usize].waker.replace(new)
        };
        drop(old);
        Update::Kept
    }

    /// A registered sleep ended or was dropped: frees its slot if it still holds it (its
    /// heap entry becomes stale), compacting the heap when stale entries outnumber live ones.
    pub fn cancel(&self, key: SleepKey) {
        let old = {
            let mut g = self.inner.lock();
            if !g.is_current(key) {
                return;
            }
            let w = g.free(key.slot);
            g.stale += 1;
            if g.stale > g.live {
                g.compact();
            }
            w
        };
        drop(old);
    }

    /// Fires every sleep due at `now`: their wakers go to `out`, to be woken after the lock.
    pub fn expire(&self, now: Instant, out: &mut Vec<Waker>) {
        let mut g = self.inner.lock();
        let now = g.since(now);
        while let Some(Reverse(e)) = g.heap.peek() {
            let e = *e;
            if e.at > now {
                break;
            }
            g.heap.pop();
            let key = SleepKey {
                slot: e.slot,
                gen: e.gen,
            };
            if g.is_current(key) {
                if let Some(w) = g.free(e.slot) {
                    out.push(w);
                }
            } else {
                g.stale -= 1;
            }
        }
        if g.stale > g.live {
            g.compact();
        }
    }

    /// The earliest live sleep's deadline.
    pub fn next(&self) -> Option<Instant> {
        let mut g = self.inner.lock();
        g.skip_stale();
        let epoch = g.epoch;
        g.heap
            .peek()
            .map(|Reverse(e)| epoch + std::time::Duration::from_nanos(e.at))
    }

    /// The sizes of the tables.
    pub fn counts(&self) -> SleepCounts {
        let g = self.inner.lock();
        SleepCounts {
            live: g.live,
            heap: g.heap.len(),
            slots: g.slots.len(),
        }
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
const _: () = {
    assert!(std::mem::size_of::<Slot>() == 24);
    assert!(std::mem::size_of::<Entry>() == 16);
};

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count::default());
        (c.clone(), Waker::from(c))
    }

    fn fire(s: &Sleeps, now: Instant) -> usize {
        let mut out = Vec::new();
        s.expire(now, &mut out);
        let n = out.len();
        out.into_iter().for_each(Waker::wake);
        n
    }

    #[test]
    fn fires_in_deadline_order_and_frees_slots() {
        let s = Sleeps::default();
        let t0 = Instant::now();
        let (a, wa) = counter();
        let (b, wb) = counter();
        let (ka, first) = s.register(t0 + Duration::from_secs(2), wa);
        assert!(first);
        let (_, first) = s.register(t0 + Duration::from_secs(1), wb);
        assert!(first, "an earlier deadline is the new earliest");
        assert_eq!(s.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(fire(&s, t0 + Duration::from_secs(1)), 1);
        assert_eq!(
            (a.0.load(Ordering::SeqCst), b.0.load(Ordering::SeqCst)),
            (0, 1)
        );
        assert_eq!(fire(&s, t0 + Duration::from_secs(2)), 1);
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
        assert_eq!(s.update(ka, &Waker::noop().clone()), Update::Gone);
        s.cancel(ka); // after firing: a no-op
        assert_eq!(
            s.counts(),
            SleepCounts {
                live: 0,
                heap: 0,
                slots: 2
            }
        );
    }

    #[test]
    fn the_latest_waker_is_woken_once() {
        let s = Sleeps::default();
        let t0 = Instant::now();
        let (first, w1) = counter();
        let (second, w2) = counter();
        let (k, _) = s.register(t0, w1);
        assert_eq!(s.update(k, &w2), Update::Kept);
        assert_eq!(s.update(k, &w2), Update::Kept);
        assert_eq!(fire(&s, t0), 1);
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert_eq!(fire(&s, t0 + Duration::from_secs(1)), 0);
    }

    #[test]
    fn dropped_sleeps_leave_the_heap_bounded_and_never_fire() {
        let s = Sleeps::default();
        let t0 = Instant::now();
        let (c, w) = counter();
        // One long sleep stays; 100k short-lived ones come and go around it.
        let (_keep, _) = s.register(t0 + Duration::from_secs(7200), w.clone());
        for i in 0..100_000u64 {
            let (k, _) = s.register(t0 + Duration::from_secs(3600 + i), w.clone());
            s.cancel(k);
            let n = s.counts();
            assert!(n.heap <= 2 * n.live + 1, "{n:?}");
            assert!(n.slots <= 2, "{n:?}");
        }
        assert_eq!(fire(&s, t0 + Duration::from_secs(7199)), 0);
        assert_eq!(c.0.load(Ordering::SeqCst), 0);
        assert_eq!(fire(&s, t0 + Duration::from_secs(7200)), 1);
        assert_eq!(s.counts().heap, 0);
    }

    #[test]
    fn firing_the_live_ones_compacts_the_stale_ones_left_behind() {
        let s = Sleeps::default();
        let t0 = Instant::now();
        let keys: Vec<_> = (0..10u64)
            .map(|i| {
                s.register(t0 + Duration::from_secs(100 + i), Waker::noop().clone())
                    .0
            })
            .collect();
        for i in 0..10u64 {
            let _ = s.register(t0 + Duration::from_secs(i), Waker::noop().clone());
        }
        keys.iter().for_each(|k| s.cancel(*k));
        assert_eq!(s.counts().heap, 20, "10 live, 10 stale behind them");
        assert_eq!(fire(&s, t0 + Duration::from_secs(50)), 10);
        assert_eq!(
            s.counts(),
            SleepCounts {
                live: 0,
                heap: 0,
                slots: 20
            }
        );
    }

    #[test]
    fn a_stale_entry_is_skipped_by_next() {
        let s = Sleeps::default();
        let t0 = Instant::now();
        let (k, _) = s.register(t0 + Duration::from_secs(1), Waker::noop().clone());
        let (_k2, _) = s.register(t0 + Duration::from_secs(5), Waker::noop().clone());
        s.cancel(k);
        assert_eq!(s.next(), Some(t0 + Duration::from_secs(5)));
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! The drop-vs-fire race: the driver fires a due sleep while the task's body drops it
    //! under the core lock (cancel in `Drop` mode), and a re-poll swaps the waker meanwhile.

    use super::*;
    use loom::sync::Mutex as LoomMutex;
    use loom::thread;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(3);
        b.check(f);
    }

    /// Fire (driver: core lock, then the sleep lock after releasing it) against drop (body
    /// dropped while the core lock is held: core → sleeps) against a re-poll with a new
    /// waker. No deadlock; at most one wake in all, and none to a waker replaced before the
    /// fire; nothing left registered.
    #[test]
    fn loom_sleep_drop_vs_fire() {
        model(|| {
            let core = loom::sync::Arc::new(LoomMutex::new(()));
            let sleeps = loom::sync::Arc::new(Sleeps::default());
            let at = Instant::now();
            let a = std::sync::Arc::new(Count::default());
            let b = std::sync::Arc::new(Count::default());
            let (key, _) = sleeps.register(at, Waker::from(a.clone()));

            let (c, s) = (core.clone(), sleeps.clone());
            let dropper = thread::spawn(move || {
                let _core = c.lock().unwrap();
                s.cancel(key);
            });
            let (s, bw) = (sleeps.clone(), Waker::from(b.clone()));
            let repoller = thread::spawn(move || {
                let _ = s.update(key, &bw);
            });
            {
                drop(core.lock().unwrap());
                let mut out = Vec::new();
                sleeps.expire(at, &mut out);
                assert!(out.len() <= 1);
                out.into_iter().for_each(Waker::wake);
            }
            dropper.join().unwrap();
            repoller.join().unwrap();
            let wakes = a.0.load(Ordering::SeqCst) + b.0.load(Ordering::SeqCst);
            assert!(wakes <= 1, "woken {wakes} times");
            let n = sleeps.counts();
            assert_eq!((n.live, n.heap), (0, 0), "{n:?}");
        });
    }
}
