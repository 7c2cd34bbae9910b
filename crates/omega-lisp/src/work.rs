//! Work done inside natives, counted as VM steps.
//!
//! A native that copies or walks a big value (`append`, `assoc` on a map, `sort`, `equal?`,
//! `list->vector` …) does work proportional to its size in what the VM counts as one step.
//! Uncounted, a loop of such calls reaches the step hook's slow path (SPEC §6.7: `max_steps`,
//! interrupts, cancellation, task timeouts, the yield to other tasks) a thousand times less
//! often in time than a loop of plain calls: a 1 s `--task-timeout` fired after 4–60 s. So the
//! shared walks and builders charge the elements they handle here ([`charge`]: Brent's
//! [`CycleCheck`](crate::value::CycleCheck), [`Value::list`](crate::value::Value::list),
//! [`Value::vector`](crate::value::Value::vector), `compare`, the JSON converter, `sort`,
//! string building, searches and comparisons), and the VM counts it as steps after each
//! native call, one per [`ITEMS_PER_STEP`] elements: [`spend`] moves the step countdown on (at
//! most to its last step, so the step hook's slow path follows the call), and the slow path
//! counts the rest ([`take`]).
//!
//! # Invariants
//!
//! 1. The counter is per thread (all natives of a runtime run on its one thread); it only
//!    grows between two [`take`]s, and a [`take`] leaves less than [`ITEMS_PER_STEP`] in it.
//! 2. Work charged outside a VM (a host calling a native directly) waits for the next VM on the
//!    thread that calls a native; it can only make that VM poll its hook sooner. Building a
//!    runtime forgets what is waiting ([`discard`]), so a runtime's step count does not depend
//!    on what other runtimes of its thread did before.

use std::cell::Cell;

/// Elements handled per step charged: about the time of one procedure call of the VM (a map
/// entry or a pair is copied or visited in ~1–5 ns, a call takes ~20 ns).
pub(crate) const ITEMS_PER_STEP: u64 = 16;

thread_local! {
    /// Elements handled by natives since the last [`take`] (invariant 1).
    static ITEMS: Cell<u64> = const { Cell::new(0) };
}

/// Charges the handling of `items` elements.
#[inline]
pub(crate) fn charge(items: usize) {
    ITEMS.with(|c| c.set(c.get().saturating_add(items as u64)));
}

/// Whether a step's worth of work is waiting to be taken (the VM's test after a native call).
#[inline]
pub(crate) fn pending() -> bool {
    ITEMS.with(|c| c.get() >= ITEMS_PER_STEP)
}

/// Moves a VM's step `countdown` on by the whole steps of work charged, at most to its last
/// step (so the `tick!` after the native call takes the slow path); what does not fit stays
/// charged, for the slow path to count ([`take`]).
#[cold]
pub(crate) fn spend(countdown: &mut u32) {
    let work = take();
    let room = u64::from(countdown.saturating_sub(1));
    if work <= room {
        // `work <= room < u32::MAX`.
        *countdown -= work as u32;
    } else {
        *countdown = 1;
        charge(
            usize::try_from(work - room)
                .unwrap_or(usize::MAX)
                .saturating_mul(ITEMS_PER_STEP as usize),
        );
    }
}

/// Forgets the work charged and not yet counted (a new runtime starts from nothing).
pub(crate) fn discard() {
    ITEMS.with(|c| c.set(0));
}

/// The whole steps' worth of work charged since the last call; the remainder stays.
pub(crate) fn take() -> u64 {
    ITEMS.with(|c| {
        let items = c.get();
        c.set(items % ITEMS_PER_STEP);
        items / ITEMS_PER_STEP
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, Runtime, Value};

    fn runtime(max_steps: u64) -> Runtime {
        let rt = crate::limits::step_limited(max_steps);
        rt.eval_sync(
            "(define big-map (apply hash-map (range 32768))) (define small-map {:a 1})
             (define big-list (range 32768)) (define small-list '(1 2 3))
             (define big-str (make-string 262144 #\\a)) (define small-str \"abc\")
             (define (times n f) (let loop ((i 0)) (if (< i n) (begin (f) (loop (+ i 1))) n)))",
            "setup",
        )
        .expect("setup runs");
        rt
    }

    #[test]
    fn a_loop_of_natives_on_big_values_meets_max_steps_through_every_call_path() {
        // 100 calls: ~300 steps of the loop itself, ~100k of charged work on the big values.
        let loops = [
            // `CallGlobal` to a builtin.
            "(times 100 (lambda () (assoc MAP :k 1)))",
            "(times 100 (lambda () (length LIST)))",
            // `Call` of a builtin held in a local.
            "(let ((f reverse)) (times 100 (lambda () (f LIST))))",
            // The generic call path (`apply`, a delegating native).
            "(times 100 (lambda () (apply dissoc (list MAP 0))))",
            "(times 100 (lambda () (member -1 LIST)))",
            "(times 100 (lambda () (equal? LIST (list-copy LIST))))",
            // Scans of text (searches, comparisons).
            "(times 100 (lambda () (string-contains? STR \"b\")))",
            "(times 100 (lambda () (string-contains STR \"b\")))",
            "(times 100 (lambda () (string<? STR STR)))",
            "(times 100 (lambda () (string-ci=? STR STR)))",
        ];
        for src in loops {
            let rt = runtime(30_000);
            let small = src
                .replace("MAP", "small-map")
                .replace("LIST", "small-list")
                .replace("STR", "small-str");
            assert_eq!(
                rt.eval_sync(&small, "t").expect("small values fit"),
                Value::Int(100),
                "{small}"
            );
            let big = src
                .replace("MAP", "big-map")
                .replace("LIST", "big-list")
                .replace("STR", "big-str");
            let err = rt.eval_sync(&big, "t").expect_err("the work is counted");
            assert_eq!(*err.kind(), ErrorKind::Limit, "{big}: {err}");
            assert!(err.message().contains("max_steps (30000)"), "{big}: {err}");
        }
    }

    #[test]
    fn take_returns_whole_steps_and_keeps_the_remainder() {
        take();
        let rest = ITEMS.with(Cell::get);
        charge(40 - rest as usize);
        assert!(pending());
        assert_eq!(take(), 2);
        assert!(!pending());
        charge(ITEMS_PER_STEP as usize - 8);
        assert_eq!(take(), 1, "8 left from before plus 8 make a step");
        assert_eq!(ITEMS.with(Cell::get), 0);
    }
}
