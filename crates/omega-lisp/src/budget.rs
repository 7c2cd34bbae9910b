//! Per-script budgets ([`ScriptLimits`]): what one script — its top level and every task it
//! spawns — may spend: VM steps, live tasks, heap bytes, LLM calls and LLM tokens. Exceeding
//! one is a `:limit` error naming it (`limit exceeded: script llm_max_calls (3)`), which no
//! `catch` stops; the script unwinds (its `finally` blocks run) and the other scripts of the
//! runtime go on.
//!
//! # Implementation details
//!
//! A script's `Budget` is shared (`Rc`) by its tasks: a `LispTask` holds it and makes it the
//! thread's current budget while it is polled ([`enter`]), so the natives that spend
//! (`async`, `llm.infer`, `llm.stream`) find it with [`current`] and a task spawned from the
//! script inherits it. Outside scripts with a budget nothing is counted.
//!
//! ## The heap budget (`max_heap_bytes`)
//!
//! Bytes are charged per *slice*: while a budget with a heap limit is current, the thread's
//! allocation counters (`heap::thread_counters`: bytes ever allocated and ever freed on this
//! thread, kept by `heap::CountingAlloc`) are marked; when the budget stops being current
//! (the slice ends, or another budget is entered inside it) the net difference — allocated
//! minus freed since the mark — is added to the script's count. Every heap check point
//! (the VM's safe points every `yield_interval` steps at most, the builtins that build
//! strings and lists, the reader, macro expansion) charges the slice so far and compares
//! ([`check_heap`]), so one long slice overshoots the limit by at most what is allocated
//! between two check points. A task's fiber is freed under its script's budget, so a script
//! that spawns and finishes many tasks is not charged for their stacks forever.
//!
//! What this counts, honestly:
//! - Net, not cumulative: a script that allocates and frees ten times its limit in a loop
//!   never reaches it.
//! - By thread and time, not by owner: bytes allocated while the script's task runs are the
//!   script's, whoever keeps them (a `define`d global, an interned symbol, a string handed to
//!   the host); bytes freed while it runs are credited to it, whoever allocated them — so a
//!   script that frees another script's value (replacing a shared global) is credited with it
//!   and its count can go below zero. All scripts of a runtime run on one thread, one slice at
//!   a time, so within a runtime every byte allocated during a slice is charged to exactly one
//!   script.
//! - Not what runs elsewhere: an async host function's future running on the host's own
//!   tokio runtime, another runtime's thread, or the scheduler's bookkeeping between slices.
//! - A child's scheduler record is charged while it lives, then credited exactly (see
//!   "The scheduler's record" below): a script that spawns and finishes a million tasks over
//!   its life holds no more for them than one that spawned none. What the handle's drop
//!   frees beyond the record (a cancellation token made on request, an error summary nobody
//!   read) stays charged: a few bytes, on the conservative side.
//! - The count starts at the script's first slice; what the host allocated to start it (the
//!   source, the compiled code) is not charged.
//!
//! ## The scheduler's record of a child task
//!
//! Spawning a child allocates, inside the parent's slice, the scheduler's record of it: its
//! cell (the body, the fiber inline), the link to its parent's token, their share of the
//! scheduler's tables. The record is freed later, partly inside some slice (the poll of the
//! handle that takes the outcome frees the cell) and partly by the scheduler between slices
//! (the entry and link when the child ends; the cell, when nobody awaited it, once its body
//! returns), so counting its frees as they come would leave ~30–415 bytes per finished
//! child charged forever — a false `:limit` in a long-running agent loop. So the record is
//! counted apart:
//! - at the spawn, [`record_bytes`] measures the net bytes the submission allocated (the
//!   thread's counters before and after, inside the slice); they are charged as usual and
//!   the child's task value keeps the figure;
//! - the polls and drop of the child's handle run [`uncredited`]: what they allocate is
//!   charged, what they free (the record) is not credited;
//! - when the task value goes, [`record_freed`] credits the budget current then (the
//!   parent's, in the common case) exactly the figure kept at the spawn.
//!
//! So the record is credited once and never with more than it was charged: a hostile script
//! cannot farm credit by spawning (crediting the spawn's size up front, tried first, credited
//! ~450 bytes too many per child, since the handle frees most of the record inside a slice).
//! `runtime-tests/tests/script_heap.rs` checks both: 100,000 children one after another fit
//! in 1 MiB, and batches of 20,000 move the count by under 4 KiB either way. A task value
//! dropped while no heap-limited budget is current (the host's, after the script) credits
//! nothing. The figure includes the record's share of table growth (a slab doubling); that
//! growth stays with the scheduler for its next tasks, so the over-credit is bounded by the
//! tables' peak size, not by the number of spawns.
//!
//! # Invariants
//!
//! 1. `tasks` counts the script's live `LispTask`s: added when a task is created, removed
//!    when it is dropped.
//! 2. LLM calls are counted when they start (refused once `llm_max_calls` were started);
//!    tokens when they are answered (a call whose answer goes over `llm_max_tokens` fails
//!    with the `:limit` error, and so does every later call).
//! 3. `HEAP_MARK` is `Some` exactly while the current budget has a heap limit and the
//!    counters can be read; it holds the thread's counters when the budget's charge was last
//!    brought up to date ([`settle`]). Entering and leaving a budget settle the outgoing one
//!    first, so nested slices charge each byte to one budget only.
//! 4. A child's scheduler record is credited to a budget at most once, with at most what its
//!    spawn was charged ([`record_bytes`] / [`record_freed`]); the handle's frees are never
//!    credited ([`uncredited`]).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::error::{LispError, LispResult};

/// Limits on what one script may spend (see [`ScriptOptions`](crate::ScriptOptions)).
/// `None` means unbounded (the runtime's own [`Limits`](crate::Limits) still apply).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptLimits {
    /// VM steps, all of the script's tasks together.
    pub max_steps: Option<u64>,
    /// Tasks alive at once, the top level included.
    pub max_tasks: Option<usize>,
    /// Bytes the script may hold: net bytes allocated (allocated minus freed) on the thread
    /// while its tasks run (see the module docs). Needs [`crate::heap::CountingAlloc`] as the
    /// global allocator: an `Engine` refuses a script with this limit without it.
    pub max_heap_bytes: Option<usize>,
    /// `llm.infer` / `llm.stream` calls started.
    pub llm_max_calls: Option<u64>,
    /// LLM tokens (prompt + completion) as the provider reported them.
    pub llm_max_tokens: Option<u64>,
}

/// A script's spending so far, against its limits.
#[derive(Debug)]
pub(crate) struct Budget {
    limits: ScriptLimits,
    steps: Cell<u64>,
    tasks: Cell<usize>,
    /// Net bytes charged so far (may go below zero; see the module docs).
    heap: Cell<i64>,
    llm_calls: Cell<u64>,
    llm_tokens: Cell<u64>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Budget>>> = const { RefCell::new(None) };
    /// The thread's allocation counters at the current budget's last charge (invariant 3).
    static HEAP_MARK: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

/// The budget of the script whose task is being polled on this thread, if any.
pub(crate) fn current() -> Option<Rc<Budget>> {
    CURRENT
        .try_with(|c| c.try_borrow().ok().and_then(|b| b.clone()))
        .ok()
        .flatten()
}

/// Makes `b` the current budget until the guard is dropped (the outgoing budget is charged
/// its heap bytes so far first: invariant 3).
pub(crate) fn enter(b: Option<Rc<Budget>>) -> Entered {
    settle();
    let mark = b.as_ref().and_then(|b| b.heap_mark());
    let prev = CURRENT.try_with(|c| c.replace(b)).ok().flatten();
    let _ = HEAP_MARK.try_with(|m| m.set(mark));
    Entered(prev)
}

/// Restores the previous current budget when dropped.
pub(crate) struct Entered(Option<Rc<Budget>>);

impl Drop for Entered {
    fn drop(&mut self) {
        settle();
        let prev = self.0.take();
        let mark = prev.as_ref().and_then(|b| b.heap_mark());
        let _ = CURRENT.try_with(|c| c.replace(prev));
        let _ = HEAP_MARK.try_with(|m| m.set(mark));
    }
}

/// Charges the current budget the net bytes the thread allocated since its mark, and moves
/// the mark to now (invariant 3). Nothing to do while no heap limit is current.
fn settle() {
    let Ok(Some(mark)) = HEAP_MARK.try_with(Cell::get) else {
        return;
    };
    let Some(now) = crate::heap::thread_counters() else {
        return;
    };
    let _ = HEAP_MARK.try_with(|m| m.set(Some(now)));
    // Wrapping: the counters are monotonic u64s; their differences fit an i64.
    let allocated = now.0.wrapping_sub(mark.0) as i64;
    let freed = now.1.wrapping_sub(mark.1) as i64;
    if let Some(b) = current() {
        b.heap
            .set(b.heap.get().saturating_add(allocated.wrapping_sub(freed)));
    }
}

/// The net bytes charged so far to the script being polled on this thread (its slice so
/// far included), if it has a heap limit (`ScriptOptions::max_heap_bytes`) and the
/// counting allocator is installed; `None` otherwise. For a host function called by the
/// script, e.g. to watch a long-running agent loop's footprint (see the module docs for
/// what is counted).
pub fn script_heap_held() -> Option<i64> {
    if !matches!(HEAP_MARK.try_with(Cell::get), Ok(Some(_))) {
        return None;
    }
    settle();
    current().map(|b| b.heap.get())
}

/// Runs `f` — the submission of a child task to the scheduler — and returns what it
/// returned with the net bytes it allocated on this thread: the scheduler's record of the
/// child (its cell, the link to its parent, their share of the scheduler's tables), charged
/// to the current budget like any allocation of the slice. `0` (and nothing measured) when
/// no heap-limited budget is current. The child's task value keeps the figure and hands it
/// to [`record_freed`] when it goes (see the module docs, "The scheduler's record").
pub(crate) fn record_bytes<R>(f: impl FnOnce() -> R) -> (R, u32) {
    let before = match HEAP_MARK.try_with(Cell::get) {
        Ok(Some(_)) => crate::heap::thread_counters(),
        _ => None,
    };
    let r = f();
    let Some(before) = before else {
        return (r, 0);
    };
    let Some(now) = crate::heap::thread_counters() else {
        return (r, 0);
    };
    let allocated = now.0.wrapping_sub(before.0);
    let freed = now.1.wrapping_sub(before.1);
    let net = allocated.saturating_sub(freed);
    (r, u32::try_from(net).unwrap_or(u32::MAX))
}

/// A child's task value goes: runs `drop_handle` (which frees the scheduler's record if
/// the child has ended and nothing else holds it) and credits the current budget exactly
/// the `record` bytes [`record_bytes`] charged for it at the spawn — not what the drop
/// happened to free, which is left out of the count (the record's cell may be freed here,
/// inside the slice, or later by the scheduler between slices; either way the script is
/// credited once, with what it was charged). Nothing is credited while no heap-limited
/// budget is current (the bytes stay charged: the conservative side).
pub(crate) fn record_freed(record: u32, drop_handle: impl FnOnce()) {
    if !matches!(HEAP_MARK.try_with(Cell::get), Ok(Some(_))) {
        drop_handle();
        return;
    }
    uncredited(drop_handle);
    if let Some(b) = current() {
        b.heap.set(b.heap.get().saturating_sub(i64::from(record)));
    }
}

/// Runs `f` — something that may free a child's scheduler record inside the slice (the
/// last poll of its handle, the handle's drop) — charging what it allocates but crediting
/// nothing it frees: the record is credited once, by [`record_freed`]. One thread-local
/// read when no heap-limited budget is current.
#[inline]
pub(crate) fn uncredited<R>(f: impl FnOnce() -> R) -> R {
    if !matches!(HEAP_MARK.try_with(Cell::get), Ok(Some(_))) {
        return f();
    }
    settle();
    let before = crate::heap::thread_counters();
    let r = f();
    if let (Some(before), Some(now)) = (before, crate::heap::thread_counters()) {
        let allocated = now.0.wrapping_sub(before.0) as i64;
        let _ = HEAP_MARK.try_with(|m| m.set(Some(now)));
        if let Some(b) = current() {
            b.heap.set(b.heap.get().saturating_add(allocated));
        }
    }
    r
}

/// The heap check of the script being polled on this thread: charges its slice so far and
/// fails with `:limit` if it holds more than its `max_heap_bytes`. One thread-local read
/// when no script with a heap limit is current.
#[inline]
pub(crate) fn check_heap() -> LispResult<()> {
    if !matches!(HEAP_MARK.try_with(Cell::get), Ok(Some(_))) {
        return Ok(());
    }
    settle();
    match current().and_then(|b| b.heap_exceeded()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

impl Budget {
    pub(crate) fn new(limits: ScriptLimits) -> Rc<Budget> {
        Rc::new(Budget {
            limits,
            steps: Cell::new(0),
            tasks: Cell::new(0),
            heap: Cell::new(0),
            llm_calls: Cell::new(0),
            llm_tokens: Cell::new(0),
        })
    }

    /// Adds steps taken by one of the script's tasks.
    pub(crate) fn add_steps(&self, n: u64) {
        self.steps.set(self.steps.get().saturating_add(n));
    }

    /// The `:limit` error once the script's steps are spent.
    pub(crate) fn steps_exceeded(&self) -> Option<LispError> {
        let max = self.limits.max_steps?;
        (self.steps.get() > max).then(|| LispError::limit("script max_steps", max))
    }

    /// The thread's counters now, if this budget has a heap limit and they can be read.
    fn heap_mark(&self) -> Option<(u64, u64)> {
        self.limits.max_heap_bytes?;
        crate::heap::thread_counters()
    }

    /// The `:limit` error once the script holds more than its `max_heap_bytes`.
    fn heap_exceeded(&self) -> Option<LispError> {
        let max = self.limits.max_heap_bytes?;
        let held = self.heap.get();
        (held > 0 && held as u64 > max as u64)
            .then(|| LispError::limit("script max_heap_bytes", max))
    }

    /// Net bytes charged to the script so far (see the module docs).
    #[cfg(test)]
    pub(crate) fn heap_held(&self) -> i64 {
        self.heap.get()
    }

    /// Counts a new task of the script (invariant 1), or refuses it.
    pub(crate) fn task_started(&self) -> LispResult<()> {
        if let Some(max) = self.limits.max_tasks {
            if self.tasks.get() >= max {
                return Err(LispError::limit("script max_tasks", max));
            }
        }
        self.tasks.set(self.tasks.get() + 1);
        Ok(())
    }

    /// One of the script's tasks was dropped (invariant 1).
    pub(crate) fn task_ended(&self) {
        self.tasks.set(self.tasks.get().saturating_sub(1));
    }

    /// Counts an LLM call about to start, or refuses it (invariant 2).
    pub(crate) fn llm_call(&self) -> LispResult<()> {
        self.tokens_left()?;
        if let Some(max) = self.limits.llm_max_calls {
            if self.llm_calls.get() >= max {
                return Err(LispError::limit("script llm_max_calls", max));
            }
        }
        self.llm_calls.set(self.llm_calls.get() + 1);
        Ok(())
    }

    /// Counts an answer's tokens; the `:limit` error if they went over (invariant 2).
    pub(crate) fn llm_tokens(&self, n: u64) -> LispResult<()> {
        self.llm_tokens.set(self.llm_tokens.get().saturating_add(n));
        self.tokens_left()
    }

    fn tokens_left(&self) -> LispResult<()> {
        match self.limits.llm_max_tokens {
            Some(max) if self.llm_tokens.get() > max => {
                Err(LispError::limit("script llm_max_tokens", max))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_budget_names_its_limit_once_over_it() {
        let b = Budget::new(ScriptLimits {
            max_heap_bytes: Some(1000),
            ..ScriptLimits::default()
        });
        b.heap.set(1000);
        assert!(b.heap_exceeded().is_none(), "at the limit is within it");
        b.heap.set(-5000);
        assert!(b.heap_exceeded().is_none(), "credited below zero");
        b.heap.set(1001);
        let e = b.heap_exceeded().expect("over");
        assert_eq!(e.kind(), &crate::error::ErrorKind::Limit);
        assert_eq!(e.message(), "limit exceeded: script max_heap_bytes (1000)");
        assert!(!e.is_catchable());
        assert_eq!(b.heap_held(), 1001);
    }

    #[test]
    fn without_the_counting_allocator_nothing_is_marked_or_charged() {
        let b = Budget::new(ScriptLimits {
            max_heap_bytes: Some(10),
            ..ScriptLimits::default()
        });
        let g = enter(Some(b.clone()));
        let v = std::hint::black_box(vec![0u8; 1 << 16]);
        assert!(check_heap().is_ok());
        drop(g);
        drop(v);
        assert_eq!(b.heap_held(), 0);
        assert!(current().is_none());
    }
}
