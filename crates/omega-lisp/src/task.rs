//! Lisp evaluations as scheduler tasks (SPEC §6.4): [`LispTask`], the future that drives a
//! [`Fiber`] on `omega-sched`, and [`TaskValue`], the task object Lisp code holds.
//!
//! # Implementation details
//!
//! A `LispTask` runs its fiber in slices. `Step::Yield` (every `yield_interval` steps) wakes
//! the task and returns `Pending`, so the scheduler can run others: only one Lisp evaluation
//! runs at a time, and a tight loop cannot starve anyone. `Step::Suspend` carries a
//! [`Suspension`]: an [`AsyncRequest`] — a boxed future (an await, an LLM call) — or a plain
//! `sleep`, whose `omega_sched::SleepFuture` the task holds inline (no box per sleeping task,
//! SPEC §9). The task polls it until it completes, then hands its result to the fiber with
//! `resume_with`.
//!
//! Tasks run in `CancelMode::Cooperative`: the scheduler never drops a Lisp task early.
//! Cancellation is **level-triggered** (SPEC §3.7, §6.5): once the task is cancelled (by
//! `cancel`, a parent, its timeout, shutdown…), it is raised as `:cancelled` at every later
//! checkpoint — the fiber's interrupt hook at each slice and at the end of each bare
//! `catch`, and every suspension: a request the fiber is parked on is dropped (which drops
//! an in-flight LLM call) and the fiber resumed with the error; a new request is not even
//! started. The one exception is shielded code (`finally` blocks, `shield` forms): there
//! nothing is raised, and requests run inside `omega_sched::shield`, so cleanup can await,
//! bounded by the scheduler's `cleanup_grace`. A timeout raises `:cancelled` (reason
//! `timeout`) inside the task; the awaiter sees `:timeout` (see [`to_lisp_error`]).
//!
//! Lisp errors are rich (`Rc`-based stack traces) and stay on this thread: the task stores
//! its `LispError` in its `TaskValue` and hands the scheduler only a `Send` summary.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use futures::future::{LocalBoxFuture, Shared};
use omega_sched::{
    AwaitGuard, CancellationToken, Scheduler, TaskError, TaskHandle, TaskId, TaskState,
};

use crate::budget::Budget;
use crate::error::{ErrorKind, LispError, LispResult};
use crate::fiber::{Fiber, Step};
use crate::state::{AsyncCtx, Shared as RuntimeShared};
use crate::value::Value;
use crate::vm::Interrupt;

pub(crate) use crate::native::AsyncRequest;
use crate::native::{sleep_result, Suspension};

/// The `Send` summary of a failed Lisp task, for the scheduler's records.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct LispFailure(pub String);

/// The Lisp error a cancelled task raises inside itself, whatever the reason (a timeout
/// included: it becomes `:timeout` only at the task's boundary, for its awaiter).
pub(crate) fn cancel_error(reason: &str) -> LispError {
    if reason == "timeout" {
        LispError::new(ErrorKind::Cancelled, "timed out")
    } else {
        LispError::new(ErrorKind::Cancelled, format!("cancelled: {reason}"))
    }
}

/// `e` with what the task was waiting for when it was stopped, if known:
/// `timed out (queued 118.2s for an llm slot)`.
pub(crate) fn with_note(e: LispError, note: Option<&str>) -> LispError {
    match note {
        Some(note) => LispError::new(e.kind().clone(), format!("{} ({note})", e.message())),
        None => e,
    }
}

/// A scheduler-level error as a Lisp error (for tasks that never produced a Lisp error:
/// cancelled before they ran, timed out, panicked).
pub(crate) fn task_error_to_lisp(e: &TaskError) -> LispError {
    match e {
        TaskError::Cancelled { reason } => {
            LispError::new(ErrorKind::Cancelled, format!("cancelled: {reason}"))
        }
        TaskError::TimedOut { after } => LispError::new(
            ErrorKind::Timeout,
            format!("task timed out after {after:?}"),
        ),
        TaskError::Panicked { message } => {
            LispError::new(ErrorKind::Panic, format!("task panicked: {message}"))
        }
        TaskError::Failed(inner) => LispError::new(ErrorKind::Error, inner.to_string()),
        TaskError::Deadlock { .. } => LispError::new(ErrorKind::Deadlock, e.to_string()),
        other => LispError::new(ErrorKind::Cancelled, other.to_string()),
    }
}

/// How a task gets its fiber: ready-made (a script), or by calling a thunk on its first poll
/// (`async`: the runtime's state is busy while the native that spawns it runs).
pub(crate) enum FiberStart {
    /// A script's fiber.
    Ready(Box<Fiber>),
    /// Call this procedure with no arguments.
    Call(Weak<RuntimeShared>, Value),
}

/// A task's fiber: how to make it until its first poll, then the fiber itself.
///
/// ```text
/// Start ──first poll──▶ Running      (Start ──cancelled before it ran──▶ ends, never made)
/// ```
///
/// Each stage carries the task's flags ([`TOP_LEVEL`], [`VALUE_IN_SLOT`]): beside the start
/// and the failure, and in the fiber's spare bits once running (`Fiber::owner_bits`, in
/// what would be padding), so they cost no field of their own (8 bytes less in every
/// task's cell, SPEC §9).
enum Stage {
    /// Not polled yet.
    Start(FiberStart, u8),
    /// Made (with the cancellation interrupt installed); the flags in its owner bits.
    Running(Fiber),
    /// The start failed (the runtime was gone, or the call was refused); the task ends with
    /// that error. Keeps the runtime's context, if it still has one, for the task's `Drop`.
    Failed(Option<Rc<AsyncCtx>>, u8),
}

/// A task flag: the task runs a script's top level (its children are cancelled when it
/// ends).
const TOP_LEVEL: u8 = 1;
/// A task flag: leave the value in the slot and hand the scheduler `nil` (see
/// [`TaskSlot`]).
const VALUE_IN_SLOT: u8 = 2;

impl Stage {
    /// The task's flags.
    fn flags(&self) -> u8 {
        match self {
            Stage::Start(_, f) | Stage::Failed(_, f) => *f,
            Stage::Running(fiber) => fiber.owner_bits(),
        }
    }

    fn set_flags(&mut self, flags: u8) {
        match self {
            Stage::Start(_, f) | Stage::Failed(_, f) => *f = flags,
            Stage::Running(fiber) => fiber.set_owner_bits(flags),
        }
    }
}

/// What a parked task waits on: a boxed request, or a plain `sleep` held inline (no box:
/// a `SleepFuture` is a deadline and a slot in the scheduler's sleep timers, SPEC §9).
enum Waiting {
    /// A native's future (an await, an LLM call, a shielded sleep…).
    Request(AsyncRequest),
    /// `(sleep ms)` outside shielded code.
    Sleep(omega_sched::SleepFuture),
}

impl Waiting {
    /// For a suspension of the fiber: shielded code (finally blocks, shield forms) must be
    /// able to await, so its request runs inside `omega_sched::shield` (boxed, sleeps
    /// included: rare, and the shield must wrap the future it guards).
    fn of(s: Suspension, shielded: bool) -> Waiting {
        match s {
            Suspension::Sleep(ms) if !shielded => {
                Waiting::Sleep(omega_sched::sleep(std::time::Duration::from_millis(ms)))
            }
            s if shielded => Waiting::Request(Box::pin(omega_sched::shield(s.into_request()))),
            s => Waiting::Request(s.into_request()),
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<LispResult<Value>> {
        match self {
            Waiting::Request(r) => r.as_mut().poll(cx),
            Waiting::Sleep(s) => Pin::new(s).poll(cx).map(sleep_result),
        }
    }
}

/// The future a Lisp task runs: a fiber and what it is waiting for.
///
/// It keeps no `Rc<AsyncCtx>` of its own: the runtime's context is the fiber's (8 bytes less in
/// every task's cell, SPEC §9; see [`LispTask::ctx`]).
pub(crate) struct LispTask {
    stage: Stage,
    waiting: Option<Waiting>,
    /// The task's own value, strongly, while the body lives (`None` only once dropped):
    /// a running task is not freed however Lisp drops its value, and its result and error
    /// go to the value's [`TaskSlot`]. The cycle value → handle → cell → body → value
    /// ends when the body does (the scheduler drops a body when its task ends).
    task: Option<Rc<TaskValue>>,
    /// The script's budget, shared by all its tasks (see `budget.rs`).
    budget: Option<Rc<Budget>>,
}

impl LispTask {
    /// A task of runtime `ctx` (counted live until it is dropped); `start` must make its
    /// fiber on that runtime.
    pub fn new(
        start: FiberStart,
        task: Rc<TaskValue>,
        top_level: bool,
        ctx: Rc<AsyncCtx>,
        budget: Option<Rc<Budget>>,
    ) -> LispTask {
        ctx.alive.set(ctx.alive.get() + 1);
        LispTask {
            stage: Stage::Start(start, if top_level { TOP_LEVEL } else { 0 }),
            waiting: None,
            task: Some(task),
            budget,
        }
    }

    /// The task's value goes to its slot (where the cycle collector sees it, through the
    /// task value) and its scheduler output is `nil`: for tasks whose result is read
    /// through a [`TaskValue`] only.
    pub(crate) fn value_in_slot(mut self) -> Self {
        let flags = self.stage.flags();
        self.stage.set_flags(flags | VALUE_IN_SLOT);
        self
    }

    /// Whether the task has `flag` ([`TOP_LEVEL`], [`VALUE_IN_SLOT`]).
    fn has(&self, flag: u8) -> bool {
        self.stage.flags() & flag != 0
    }

    /// The runtime's context: its fiber's (made or to be made); `None` once the runtime is
    /// gone and the task never started.
    fn ctx(&self) -> Option<Rc<AsyncCtx>> {
        match &self.stage {
            Stage::Start(FiberStart::Ready(f), _) => Some(f.shared().async_ctx.clone()),
            Stage::Start(FiberStart::Call(shared, _), _) => {
                shared.upgrade().map(|s| s.async_ctx.clone())
            }
            Stage::Running(f) => Some(f.shared().async_ctx.clone()),
            Stage::Failed(ctx, _) => ctx.clone(),
        }
    }

    /// The fiber, created on first use with the cancellation interrupt installed.
    fn fiber(&mut self) -> LispResult<&mut Fiber> {
        if let Stage::Start(_, flags) = self.stage {
            let ctx = self.ctx();
            let failed = Stage::Failed(ctx, flags);
            let Stage::Start(start, _) = std::mem::replace(&mut self.stage, failed) else {
                unreachable!("matched just above");
            };
            let mut fiber = match start {
                FiberStart::Ready(f) => *f,
                FiberStart::Call(shared, thunk) => {
                    let shared = shared.upgrade().ok_or_else(|| {
                        LispError::new(ErrorKind::Error, "the Lisp runtime was dropped")
                    })?;
                    Fiber::for_call(shared, thunk, Vec::new())?
                }
            };
            install_interrupt(&mut fiber);
            fiber.set_owner_bits(flags);
            self.stage = Stage::Running(fiber);
        }
        match &mut self.stage {
            Stage::Running(f) => Ok(f),
            _ => Err(LispError::new(
                ErrorKind::Error,
                "this task's evaluation could not start",
            )),
        }
    }

    /// The fiber, once made.
    fn running(&mut self) -> Option<&mut Fiber> {
        match &mut self.stage {
            Stage::Running(f) => Some(f),
            _ => None,
        }
    }

    /// Whether the fiber runs shielded code now.
    fn in_shield(&self) -> bool {
        matches!(&self.stage, Stage::Running(f) if f.in_shield())
    }
}

impl Drop for LispTask {
    /// The scheduler drops a task's body when the task ends, however it ends.
    fn drop(&mut self) {
        // The fiber is freed under the script's budget: its bytes are credited back (budget.rs).
        let _heap = crate::budget::enter(self.budget.clone());
        // Taken first: the fiber may hold the runtime's last reference.
        let ctx = self.ctx();
        self.stage = Stage::Failed(None, 0);
        let Some(ctx) = ctx else {
            // The runtime is gone (the task never started): nobody counts its tasks.
            if let Some(b) = &self.budget {
                b.task_ended();
            }
            drop(self.task.take());
            return;
        };
        ctx.alive.set(ctx.alive.get() - 1);
        if let Some(b) = &self.budget {
            b.task_ended();
        }
        // An ended task is no longer live: its value stays alive only through whoever holds
        // it (this may drop it, and with it the task's handle).
        drop(self.task.take());
        if ctx.alive.get() == 0 {
            let woken = ctx
                .settle_waiters
                .try_borrow_mut()
                .map(|mut w| std::mem::take(&mut *w))
                .unwrap_or_default();
            woken.into_iter().for_each(Waker::wake);
        }
    }
}

/// Makes a task's value the runtime's current one (`current-task`), and its runtime this
/// thread's polled one (the interrupt hook), for one poll.
struct CurrentSlot<'a> {
    ctx: &'a Rc<AsyncCtx>,
    prev: Option<Rc<TaskValue>>,
    prev_ctx: Option<Rc<AsyncCtx>>,
}

impl<'a> CurrentSlot<'a> {
    fn enter(ctx: &'a Rc<AsyncCtx>, task: Option<&Rc<TaskValue>>) -> Self {
        let prev = ctx.current.replace(task.cloned());
        let prev_ctx = POLLED.with(|p| p.replace(Some(ctx.clone())));
        CurrentSlot {
            ctx,
            prev,
            prev_ctx,
        }
    }
}

impl Drop for CurrentSlot<'_> {
    fn drop(&mut self) {
        let mine = self.ctx.current.replace(self.prev.take());
        drop(mine);
        let prev_ctx = self.prev_ctx.take();
        let mine = POLLED.try_with(|p| p.replace(prev_ctx)).ok().flatten();
        drop(mine);
    }
}

/// The task value of the Lisp task being polled now (`current-task`), if it has one.
pub(crate) fn current_task_value(ctx: &AsyncCtx) -> Option<Value> {
    let task = ctx.current.try_borrow().ok()?.clone()?;
    Some(Value::Task(task))
}

/// Raises the task's cancellation in the fiber for as long as it lasts (the fiber skips it
/// in shielded code); ends the fiber when the runtime's total step budget is spent.
///
/// The hook captures nothing (so boxing it allocates nothing: 32 bytes less per task, SPEC
/// §9): it runs only inside `LispTask::poll`, which makes the task's budget
/// (`budget::enter`) and runtime ([`CurrentSlot`]) current on this thread.
fn install_interrupt(fiber: &mut Fiber) {
    fiber.set_interrupt_fn(|| {
        if let Some(e) = crate::budget::current().and_then(|b| b.steps_exceeded()) {
            return Some(Interrupt::Raise(e));
        }
        let over = POLLED.with(|p| {
            let ctx = p.borrow();
            let ctx = ctx.as_ref()?;
            let max = ctx.max_total_steps.get()?;
            (ctx.total_steps.get() > max).then_some(max)
        });
        if let Some(max) = over {
            return Some(Interrupt::Raise(LispError::limit("max_total_steps", max)));
        }
        let cancelled = omega_sched::check_cancelled().err()?;
        Some(Interrupt::Raise(cancel_error(&cancelled.reason)))
    });
}

thread_local! {
    /// The runtime of the Lisp task being polled on this thread (set by [`CurrentSlot`]).
    static POLLED: RefCell<Option<Rc<AsyncCtx>>> = const { RefCell::new(None) };
}

impl LispTask {
    /// Ends the task: children of a script's top level are cancelled ("script finished").
    fn finish(&mut self, result: LispResult<Value>) -> Result<Value, TaskError> {
        let Some(task) = self.task.clone() else {
            return Err(TaskError::failed(LispFailure(
                "the task's value was dropped".into(),
            )));
        };
        if self.has(TOP_LEVEL) {
            if let Some(t) = omega_sched::current_token() {
                t.cancel("script finished");
            }
        }
        match result {
            Ok(v) if self.has(VALUE_IN_SLOT) => {
                let traced = !v.is_immediate();
                task.slot.set_value(v);
                if traced {
                    crate::collector::register_task(&task);
                }
                Ok(Value::Nil)
            }
            Ok(v) => Ok(v),
            Err(e) => {
                let summary = e.headline();
                let stopped = matches!(e.kind(), ErrorKind::Cancelled | ErrorKind::Timeout)
                    && omega_sched::current_token().is_some_and(|t| t.is_cancelled());
                let traced = !e.irritants().is_empty();
                task.slot.set_error(e);
                if traced {
                    crate::collector::register_task(&task);
                }
                if stopped {
                    let reason = omega_sched::current_token()
                        .and_then(|t| t.reason())
                        .unwrap_or_else(|| "cancelled".into());
                    Err(TaskError::Cancelled { reason })
                } else {
                    Err(TaskError::failed(LispFailure(summary)))
                }
            }
        }
    }
}

impl Future for LispTask {
    type Output = Result<Value, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let _budget = crate::budget::enter(this.budget.clone());
        let ctx = this.ctx();
        let _current = ctx
            .as_ref()
            .map(|ctx| CurrentSlot::enter(ctx, this.task.as_ref()));
        if let Stage::Start(..) = this.stage {
            // Cancelled before it ever ran: it never starts (no side effect of its body).
            if let Err(c) = omega_sched::check_cancelled() {
                return Poll::Ready(Err(TaskError::Cancelled { reason: c.reason }));
            }
        }
        loop {
            let shielded = this.in_shield();
            if this.waiting.is_some() && !shielded {
                if let Err(c) = omega_sched::check_cancelled() {
                    // Level-triggered: every wait of a cancelled task ends at once.
                    // Dropping the request drops whatever it was doing (an LLM call, …),
                    // which may leave a note on what it was waiting for.
                    this.waiting = None;
                    let note = ctx.as_ref().and_then(|c| c.take_cancel_note());
                    let e = with_note(cancel_error(&c.reason), note.as_deref());
                    if let Some(t) = &this.task {
                        t.slot.set_note(note);
                    }
                    if let Some(f) = this.running() {
                        f.resume_with(Err(e));
                    }
                }
            }
            if let Some(w) = this.waiting.as_mut() {
                match w.poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => {
                        this.waiting = None;
                        if let Some(f) = this.running() {
                            f.resume_with(r);
                        }
                    }
                }
            }
            let step = match this.fiber() {
                Ok(f) => {
                    // The slice's steps, added to the runtime's total (no field to keep
                    // the count between polls: 8 bytes less in every task's cell).
                    let before = f.steps();
                    let step = f.resume();
                    let delta = f.steps().saturating_sub(before);
                    if let Some(ctx) = &ctx {
                        ctx.total_steps.set(ctx.total_steps.get() + delta);
                    }
                    if let Some(b) = &this.budget {
                        b.add_steps(delta);
                    }
                    step
                }
                Err(e) => Err(e),
            };
            match step {
                Ok(Step::Done(v)) => return Poll::Ready(this.finish(Ok(v))),
                Ok(Step::Yield) => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Ok(Step::Suspend(s)) => {
                    this.waiting = Some(Waiting::of(s, this.in_shield()));
                }
                Err(e) => return Poll::Ready(this.finish(Err(e))),
            }
        }
    }
}

/// What a task leaves for whoever awaits it: its value or its Lisp error, written by the
/// task's body ([`LispTask`]) into its [`TaskValue`].
///
/// One thin pointer, boxed once the task leaves something (24 bytes less in every task
/// value than three fields inline: the value's `Rc` allocation drops from a 160-byte glibc
/// chunk to 144, SPEC §9; a suspended task has left nothing yet). A `Cell`, not a
/// `RefCell`: the box is read by taking it out and putting it back, and nothing runs in
/// between.
#[derive(Default)]
pub(crate) struct TaskSlot {
    end: Cell<Option<Box<End>>>,
}

/// What a [`TaskSlot`] holds once set.
#[derive(Default)]
struct End {
    /// The value the task returned (for a body made with [`LispTask::value_in_slot`]).
    /// Kept here rather than in the scheduler's task cell, so that the cycle collector can
    /// reach it through the task value: `(define t (async (lambda () (list t))))` is a
    /// cycle task value → value → task value.
    value: Option<Value>,
    error: Option<LispError>,
    /// What the task was waiting for when it was cancelled or timed out, if known.
    note: Option<String>,
}

impl TaskSlot {
    /// Calls `f` on what the slot holds (`None`: nothing yet), left in place.
    fn peek<R>(&self, f: impl FnOnce(Option<&End>) -> R) -> R {
        let x = self.end.take();
        let r = f(x.as_deref());
        self.end.set(x);
        r
    }

    /// Changes what the slot holds, boxing it on first use.
    fn update(&self, f: impl FnOnce(&mut End)) {
        let mut x = self.end.take().unwrap_or_default();
        f(&mut x);
        self.end.set(Some(x));
    }

    /// The value the task left, if any.
    pub(crate) fn value(&self) -> Option<Value> {
        self.peek(|e| e.and_then(|e| e.value.clone()))
    }

    /// The Lisp error the task ended with, if any.
    pub(crate) fn error(&self) -> Option<LispError> {
        self.peek(|e| e.and_then(|e| e.error.clone()))
    }

    /// What the task was waiting for when it was stopped, if known.
    pub(crate) fn note(&self) -> Option<String> {
        self.peek(|e| e.and_then(|e| e.note.clone()))
    }

    fn set_value(&self, v: Value) {
        self.update(|e| e.value = Some(v));
    }

    fn set_error(&self, err: LispError) {
        self.update(|e| e.error = Some(err));
    }

    /// Records (or, with `None`, clears) what the task was waiting for; no box for `None`
    /// when nothing is there yet.
    fn set_note(&self, note: Option<String>) {
        if note.is_some() || self.peek(|e| e.is_some()) {
            self.update(|e| e.note = note);
        }
    }

    /// Whether the slot holds Lisp values (a value, or an error with irritants).
    fn holds_values(&self) -> bool {
        self.peek(|e| {
            e.is_some_and(|e| {
                e.value.is_some() || e.error.as_ref().is_some_and(|e| !e.irritants().is_empty())
            })
        })
    }
}

/// The outcome every awaiter of a task shares.
pub(crate) type Outcome = Result<Value, TaskError>;

/// A spawned task's outcome as its awaiters see it: waited for (by these wakers), then
/// known. One enum, not an `Option<Outcome>` beside a `Vec<Waker>`: 16 bytes less in every
/// task value (SPEC §9).
///
/// Each state carries the bytes the scheduler's record of the task was charged to the
/// script at the spawn (`budget::record_bytes`), credited back when the value goes; the
/// `u32` sits beside the enum's tag, in what was padding.
///
/// Both states are one pointer (16 bytes with the tag and the `u32`, not 32: 16 bytes less
/// in every task value, SPEC §9): the awaiters' wakers in one box made when the first
/// awaiter waits, the outcome boxed once known.
enum Wait {
    Waiting(Option<Box<Waiters>>, u32),
    Done(Box<Outcome>, u32),
}

/// The wakers of a task's awaiters: most tasks have one.
struct Waiters {
    first: Waker,
    more: Vec<Waker>,
}

impl Waiters {
    /// Adds `waker` unless one that wakes the same task is there.
    fn add(&mut self, waker: &Waker) {
        if !self.first.will_wake(waker) && !self.more.iter().any(|w| w.will_wake(waker)) {
            self.more.push(waker.clone());
        }
    }

    fn wake_all(self) {
        self.first.wake();
        self.more.into_iter().for_each(Waker::wake);
    }
}

/// Where a task value's outcome comes from.
enum Source {
    /// Made before its body was submitted (the body holds its value); replaced by one of
    /// the others right after submission, before Lisp can see the value.
    Unborn,
    /// A Lisp task spawned by this runtime: its (untracked) handle, the outcome once taken
    /// from it, and the wakers of awaiters waiting for it. One awaiter at a time polls the
    /// handle (it keeps the last poller's waker); whoever gets the outcome stores it and
    /// wakes the rest, and an awaiter that goes away wakes the rest so that one of them
    /// polls the handle again.
    Task {
        handle: TaskHandle<Value>,
        wait: Wait,
    },
    /// A host's wrapper around a script (the `Engine`): its id, token, scheduler and a
    /// shared future of its outcome.
    ///
    /// Boxed (one per script run by an `Engine`): inline it would make every task value
    /// 8 bytes bigger (the enum's tag would no longer fit a niche of `Task`, SPEC §9).
    Hosted(Box<Hosted>),
}

/// See [`Source::Hosted`].
struct Hosted {
    id: TaskId,
    token: CancellationToken,
    sched: Scheduler,
    done: Shared<LocalBoxFuture<'static, Outcome>>,
}

/// A task as a Lisp value ([`Value::Task`], `task?` is true): what `async` returns and
/// `await` takes.
///
/// # Memory
///
/// One allocation per task (the `Rc` of [`Value::Task`], with the result slot inline),
/// alive as long as Lisp holds it or the task runs: the handle's cell is the task itself,
/// so the value adds only this (SPEC §9, memory per suspended task). It joins the cycle
/// collector once its result holds heap values (see `TaskSlot`).
pub struct TaskValue {
    /// A boxed `String`, a thin pointer (one more allocation for a named task): 8 bytes less
    /// in every task value than a `Box<str>`, 16 less than a `String`.
    #[allow(clippy::box_collection)]
    pub(crate) name: Option<Box<String>>,
    pub(crate) slot: TaskSlot,
    source: RefCell<Source>,
}

impl fmt::Debug for TaskValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskValue")
            .field("id", &self.id())
            .field("name", &self.name)
            .finish()
    }
}

impl Drop for TaskValue {
    /// The handle goes (the scheduler's record with it, once the task has ended): the
    /// script is credited what the record was charged at the spawn (budget.rs).
    fn drop(&mut self) {
        if let Source::Task { handle, wait } =
            std::mem::replace(self.source.get_mut(), Source::Unborn)
        {
            crate::budget::record_freed(wait.record(), move || drop(handle));
        }
    }
}

impl TaskValue {
    /// Whether its slot holds Lisp values (for the cycle collector).
    pub(crate) fn holds_values(&self) -> bool {
        self.slot.holds_values()
    }

    /// Calls `visit` on the values its slot holds (always inspectable: true).
    pub(crate) fn trace(&self, visit: &mut dyn FnMut(&Value)) -> bool {
        self.slot.peek(|end| {
            if let Some(end) = end {
                end.value.iter().for_each(&mut *visit);
                if let Some(e) = &end.error {
                    e.irritants().iter().for_each(&mut *visit);
                }
            }
        });
        true
    }

    /// Takes the values out of its slot (the collector breaks a garbage cycle; a chain of
    /// task values is dropped iteratively).
    pub(crate) fn clear_values(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let Some(mut end) = self.slot.end.take() else {
            return out;
        };
        out.extend(end.value.take());
        if let Some(err) = end.error.take() {
            if err.irritants().is_empty() {
                end.error = Some(err);
            } else {
                // The same error without its irritants.
                end.error = Some(LispError::new(err.kind().clone(), err.message()));
                out.extend(err.irritants().iter().cloned());
            }
        }
        self.slot.end.set(Some(end));
        out
    }
}

impl TaskValue {
    /// The value of a task about to be submitted (its body holds it: [`LispTask::new`]);
    /// [`TaskValue::spawned`] or [`TaskValue::hosted`] completes it once submitted.
    pub(crate) fn unborn(name: Option<String>) -> Rc<TaskValue> {
        Rc::new(TaskValue {
            name: name.map(Box::new),
            slot: TaskSlot::default(),
            source: RefCell::new(Source::Unborn),
        })
    }

    /// Completes the value of a Lisp task spawned on this runtime with its handle;
    /// `record` is what the scheduler's record of the task was charged to the script's
    /// heap budget (see `budget::record_bytes`).
    pub(crate) fn spawned(&self, handle: TaskHandle<Value>, record: u32) {
        *self.source.borrow_mut() = Source::Task {
            handle,
            wait: Wait::Waiting(None, record),
        };
    }

    /// Completes the value of a host's wrapper task (see [`Source::Hosted`]).
    pub(crate) fn hosted(
        &self,
        id: TaskId,
        token: CancellationToken,
        sched: Scheduler,
        done: Shared<LocalBoxFuture<'static, Outcome>>,
    ) {
        *self.source.borrow_mut() = Source::Hosted(Box::new(Hosted {
            id,
            token,
            sched,
            done,
        }));
    }

    /// The task's id (`None` only while the value is being made, before its task is
    /// submitted: never for a value Lisp code or a host is given).
    pub fn id(&self) -> Option<TaskId> {
        match &*self.source.borrow() {
            Source::Unborn => None,
            Source::Task { handle, .. } => Some(handle.id()),
            Source::Hosted(h) => Some(h.id),
        }
    }

    /// The task's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref().map(String::as_str)
    }

    /// The task's cancellation token.
    pub(crate) fn token(&self) -> CancellationToken {
        match &*self.source.borrow() {
            // Not submitted yet: a fresh token nothing listens to.
            Source::Unborn => CancellationToken::default(),
            Source::Task { handle, .. } => handle.token(),
            Source::Hosted(h) => h.token.clone(),
        }
    }

    /// The task's state; a finished task that left the scheduler's history reports how its
    /// result says it ended.
    pub fn state(&self) -> TaskState {
        let source = self.source.borrow();
        let (known, outcome) = match &*source {
            Source::Unborn => (Some(TaskState::Pending), None),
            Source::Task { handle, wait, .. } => (handle.state(), wait.outcome()),
            Source::Hosted(h) => (h.sched.task(h.id).map(|i| i.state), h.done.peek()),
        };
        if let Some(state) = known {
            return state;
        }
        match outcome {
            Some(Ok(_)) => TaskState::Completed,
            Some(Err(TaskError::Cancelled { .. })) => TaskState::Cancelled,
            _ => TaskState::Error,
        }
    }

    /// True once the task has finished.
    pub fn is_finished(&self) -> bool {
        match &*self.source.borrow() {
            Source::Unborn => false,
            Source::Task { handle, wait, .. } => wait.outcome().is_some() || handle.is_finished(),
            Source::Hosted(h) => h.done.peek().is_some(),
        }
    }

    /// Cancels the task and its subtree. True if this call stopped a task that had not
    /// finished; false if it had finished or was already cancelled.
    pub fn cancel(&self, reason: &str) -> bool {
        if self.is_finished() || self.state().is_finished() {
            return false;
        }
        self.token().cancel(reason)
    }

    /// A future of the task's result as Lisp sees it: the value, or its Lisp error (with
    /// the task's own stack trace when it failed in Lisp).
    pub fn result(self: &Rc<Self>) -> impl Future<Output = LispResult<Value>> + 'static {
        let outcome = self.outcome();
        let task = self.clone();
        async move { outcome.await.map_err(|e| to_lisp_error(&task.slot, &e)) }
    }

    /// The task's raw outcome (for combinators that need the scheduler's error). The
    /// awaiting task's await edge is recorded while it waits (slot lending under
    /// `max_concurrent_tasks`; an await cycle fails at once with `:deadlock`): the task's
    /// handle itself tracks nothing, so one awaiter's deadlock never reaches others.
    pub(crate) fn outcome(self: &Rc<Self>) -> TaskWait {
        TaskWait {
            task: self.clone(),
            edge: None,
            started: false,
            waiting: false,
            hosted: None,
        }
    }

    /// Records the running task's await edge to this one (see [`TaskValue::outcome`]).
    fn track_await(&self) -> Result<Option<AwaitGuard>, TaskError> {
        match &*self.source.borrow() {
            Source::Unborn => Ok(None),
            Source::Task { handle, .. } => handle.track_await().map(Some),
            Source::Hosted(h) => h.sched.track_await(h.id).map(Some),
        }
    }

    /// Polls for the outcome on behalf of one awaiter (see [`Source::Task`]); `Ready` for
    /// a hosted task's outcome means "await `done` instead" (`Err(done)`).
    fn poll_outcome(&self, cx: &mut Context<'_>) -> Result<Poll<Outcome>, SharedDone> {
        let mut source = self.source.borrow_mut();
        let (handle, wait) = match &mut *source {
            Source::Task { handle, wait, .. } => (handle, wait),
            Source::Hosted(h) => return Err(h.done.clone()),
            Source::Unborn => {
                return Ok(Poll::Ready(Err(TaskError::failed(LispFailure(
                    "this task was never submitted".into(),
                )))))
            }
        };
        let (waiters, record) = match wait {
            Wait::Done(o, _) => return Ok(Poll::Ready(self.resolve(o))),
            Wait::Waiting(w, record) => (w, *record),
        };
        // The poll that gets the outcome frees the scheduler's record (the cell), which the
        // script is credited for once, when this value goes (budget.rs).
        match crate::budget::uncredited(|| Pin::new(handle).poll(cx)) {
            Poll::Ready(o) => {
                let woken = waiters.take();
                let r = self.resolve(&o);
                *wait = Wait::Done(Box::new(o), record);
                drop(source);
                if let Some(w) = woken {
                    w.wake_all();
                }
                Ok(Poll::Ready(r))
            }
            Poll::Pending => {
                match waiters {
                    Some(w) => w.add(cx.waker()),
                    None => {
                        *waiters = Some(Box::new(Waiters {
                            first: cx.waker().clone(),
                            more: Vec::new(),
                        }))
                    }
                }
                Ok(Poll::Pending)
            }
        }
    }

    /// An awaiter stopped waiting before the outcome came: the others poll again, so that
    /// one of them is the handle's waker.
    fn waiter_left(&self) {
        let woken = match self.source.try_borrow_mut().as_deref_mut() {
            Ok(Source::Task {
                wait: Wait::Waiting(waiters, _),
                ..
            }) => waiters.take(),
            _ => return,
        };
        if let Some(w) = woken {
            w.wake_all();
        }
    }

    /// The outcome as awaiters see it: a value left in the slot replaces the `nil` the
    /// body handed the scheduler.
    fn resolve(&self, o: &Outcome) -> Outcome {
        match o {
            Ok(v) => Ok(self.slot.value().unwrap_or_else(|| v.clone())),
            Err(e) => Err(e.clone()),
        }
    }
}

impl Wait {
    /// What the scheduler's record was charged at the spawn.
    fn record(&self) -> u32 {
        match self {
            Wait::Waiting(_, r) | Wait::Done(_, r) => *r,
        }
    }

    /// The outcome, once known.
    fn outcome(&self) -> Option<&Outcome> {
        match self {
            Wait::Waiting(..) => None,
            Wait::Done(o, _) => Some(&**o),
        }
    }
}

/// A hosted task's shared outcome future.
type SharedDone = Shared<LocalBoxFuture<'static, Outcome>>;

/// One awaiter's future of a task's outcome ([`TaskValue::outcome`]).
pub(crate) struct TaskWait {
    /// The task awaited.
    task: Rc<TaskValue>,
    /// The await edge, while waiting.
    edge: Option<AwaitGuard>,
    started: bool,
    /// Registered among the task's waiters.
    waiting: bool,
    /// A hosted task's outcome future, once polled.
    hosted: Option<SharedDone>,
}

impl Future for TaskWait {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.get_mut();
        let tv = &*this.task;
        if !this.started {
            this.started = true;
            match tv.track_await() {
                Ok(edge) => this.edge = edge,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let r = match this.hosted.as_mut() {
            Some(done) => Pin::new(done).poll(cx),
            None => match tv.poll_outcome(cx) {
                Ok(r) => {
                    this.waiting = r.is_pending();
                    r
                }
                Err(done) => Pin::new(this.hosted.insert(done)).poll(cx),
            },
        };
        if r.is_ready() {
            this.edge = None;
        }
        r
    }
}

impl Drop for TaskWait {
    fn drop(&mut self) {
        if self.waiting {
            self.task.waiter_left();
        }
    }
}

/// The Lisp error for a task's failure: the one it raised, else one made from `e`.
pub(crate) fn to_lisp_error(slot: &TaskSlot, e: &TaskError) -> LispError {
    match (slot.error(), e) {
        // A task stopped by a timeout raised `:cancelled`/`:timeout` itself; the scheduler's
        // verdict (TimedOut) is what the awaiter should see.
        (Some(_), TaskError::TimedOut { .. } | TaskError::Deadlock { .. }) => {
            with_note(task_error_to_lisp(e), slot.note().as_deref())
        }
        (Some(err), _) => err,
        (None, _) => task_error_to_lisp(e),
    }
}

/// The task value inside `v`, or a type error naming `who`.
pub(crate) fn as_task<'a>(who: &str, v: &'a Value) -> LispResult<&'a Rc<TaskValue>> {
    match v {
        Value::Task(t) => Ok(t),
        _ => Err(LispError::type_error(who, "a task", v)),
    }
}

/// The TaskState as the keyword Lisp shows.
pub(crate) fn state_keyword(s: TaskState) -> Value {
    Value::keyword(s.as_str())
}

/// What a suspended task carries (SPEC §9, memory per task; glibc rounds a request up to
/// 16 bytes plus 8): the task value's `Rc` (16 + 112 = 128 → a 144-byte chunk) and the body
/// inline in the scheduler's cell, of which the fiber's VM core (its rarely used fields boxed
/// apart, `vm.rs`) and what it waits on (a plain sleep inline: 32 bytes, no boxed future).
/// A field added here costs every task.
#[cfg(all(test, target_pointer_width = "64"))]
const _: () = {
    assert!(std::mem::size_of::<TaskValue>() <= 112);
    assert!(std::mem::size_of::<crate::fiber::Fiber>() <= 120);
    assert!(std::mem::size_of::<Option<Waiting>>() <= 32);
    assert!(std::mem::size_of::<crate::vm::VmCore>() <= 104);
    assert!(std::mem::size_of::<LispTask>() <= 168);
};

#[cfg(test)]
mod tests {
    use crate::{collector, write_string, Runtime};
    use omega_sched::Scheduler;

    /// Runs `src` as a script on a fresh runtime and scheduler; its value, written.
    async fn run(src: &str) -> String {
        let sched = Scheduler::new();
        let rt = Runtime::builder().scheduler(sched.clone()).build();
        let v = sched
            .run_until(rt.eval_str(src, "cycles.lisp"))
            .await
            .expect("the script runs");
        write_string(&v)
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_whose_result_refers_to_it_is_collected_once_dropped() {
        let before = collector::stats();
        // Each round: a task whose value is a list holding the task itself, awaited, then
        // dropped. Only the cycle task value -> its value -> task value keeps each alive.
        // The parent puts the task into the list: the child may run before the parent's next
        // op (a slice can end right after `async` returns), so it must not read a variable
        // the parent sets after spawning it.
        let out = run("(define (spin n)
                         (if (> n 0)
                             (begin
                               (let* ((box (list #f)) (t (async (lambda () box))))
                                 (set-car! box t)
                                 (if (eq? (car (await t)) t) #t (error \"not itself\")))
                               (spin (- n 1)))
                             :done))
                       (spin 3000)")
        .await;
        assert_eq!(out, ":done");
        collector::collect();
        let after = collector::stats();
        assert!(
            after.reclaimed - before.reclaimed >= 2900,
            "cycles through task values were not reclaimed: {before:?} -> {after:?}"
        );
        assert!(
            after.registered < 64,
            "task values stay registered: {after:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_whose_error_refers_to_it_is_collected_once_dropped() {
        let before = collector::stats();
        let out = run("(define (spin n)
                         (if (> n 0)
                             (begin
                               (let* ((box (list #f))
                                      (t (async (lambda () (error :mine \"boom\" box)))))
                                 (set-car! box t)
                                 (try (await t) (catch e (error-irritants e))))
                               (spin (- n 1)))
                             :done))
                       (spin 2000)")
        .await;
        assert_eq!(out, ":done");
        collector::collect();
        let after = collector::stats();
        assert!(
            // (A task value can also go by plain reference counting, when a round's
            // collection comes at the right moment; what matters is that none stays.)
            after.reclaimed - before.reclaimed >= 1900 && after.registered < 64,
            "cycles through task errors were not reclaimed: {before:?} -> {after:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_with_several_awaiters_answers_them_all_and_a_leaving_awaiter_strands_none() {
        // Three awaiters of one task; one of them gives up (its `with-timeout` fires) while
        // the task still sleeps: the other two still get the value.
        let out = run("(define t (async (lambda () (sleep 100) :v)))
                       (define a (async (lambda () (await t))))
                       (define b (async (lambda () (try (with-timeout 10 (await t))
                                                        (catch e (error-kind e))))))
                       (define c (async (lambda () (await t))))
                       (list (await a) (await b) (await c) (await t))")
        .await;
        assert_eq!(out, "(:v :timeout :v :v)");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_value_is_its_own_kind_printed_compared_and_seen_by_current_task() {
        let out = run("(define me #f)
                       (define t (async (lambda () (set! me (current-task)) (sleep 5) :v)))
                       (define u (async (lambda () :u)))
                       (sleep 1)
                       (list (task? t) (task? 't) (eq? me t) (equal? t u) (equal? t t)
                             (str t) (task-state t) (await t) (task-state t))")
        .await;
        assert_eq!(out, "(#t #f #t #f #t \"#<task>\" :suspended :v :completed)");
    }

    // The VM core's cold part (handlers, core number, dynamic environment, a resumed error)
    // is made on first use: these use it across suspensions.

    #[tokio::test(start_paused = true)]
    async fn a_handler_made_before_a_suspension_catches_after_the_resume() {
        let out = run("(define log '())
                       (define t (async (lambda ()
                         (try (begin (sleep 5) (error \"boom\"))
                              (catch e (list :caught (error-message e)))
                              (finally (set! log (cons :finally log)))))))
                       (define u (async (lambda () (try (sleep 5) (catch e :never)) :after)))
                       (list (await t) (await u) log)")
        .await;
        assert_eq!(out, "((:caught \"boom\") :after (:finally))");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_cancelled_in_a_sleep_runs_its_finally_and_ends_cancelled() {
        // The first task suspends with no handler (no cold part yet): the cancellation
        // resumes it with an error, kept in the cold part until the next slice.
        let out = run("(define log '())
                       (define t (async (lambda () (try (sleep 1000)
                                                        (finally (set! log (cons :cleaned log)))))))
                       (define u (async (lambda () (sleep 1000))))
                       (sleep 1)
                       (cancel t \"stop\")
                       (cancel u \"stop\")
                       (list (try (await t) (catch e (error-kind e)))
                             (try (await u) (catch e (error-kind e)))
                             log)")
        .await;
        assert_eq!(out, "(:cancelled :cancelled (:cleaned))");
    }

    #[tokio::test(start_paused = true)]
    async fn a_continuation_knows_its_task_when_numbers_are_given_lazily() {
        let out = run("(define k0 #f)
                       (await (async (lambda () (call/cc (lambda (k) (set! k0 k) 1)))))
                       (define other (await (async (lambda ()
                         (try (k0 5) (catch e (error-message e)))))))
                       (define same (await (async (lambda ()
                         (let ((k1 #f))
                           (call/cc (lambda (k) (set! k1 k)))
                           (sleep 1)
                           (try (k1 2) (catch e (error-message e))))))))
                       (define escaped (await (async (lambda ()
                         (+ 1 (call/cc (lambda (k) (sleep 1) (k 41) 0)))))))
                       (list (string-contains? other \"another task\")
                             (string-contains? same \"already returned\")
                             escaped)")
        .await;
        assert_eq!(out, "(#t #t 42)");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_keeps_its_dynamic_environment_across_slices() {
        let out = run("(define p (make-parameter 1))
                       (define t (async (lambda () (parameterize ((p 2)) (sleep 5) (p)))))
                       (define u (async (lambda () (sleep 2) (p))))
                       (define v (parameterize ((p 3)) (sleep 3) (p)))
                       (list (await t) (await u) v (p))")
        .await;
        assert_eq!(out, "(2 1 3 1)");
    }

    #[tokio::test(start_paused = true)]
    async fn awaiting_the_task_itself_is_still_a_deadlock() {
        let out = run(
            "(define t (async (lambda () (try (await t) (catch e (error-kind e))))))
                       (await t)",
        )
        .await;
        assert_eq!(out, ":deadlock");
    }
}
