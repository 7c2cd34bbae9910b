//! Lisp evaluations as scheduler tasks (SPEC §6.4): [`LispTask`], the future that drives a
//! [`Fiber`] on `omega-sched`, and [`TaskValue`], the task object Lisp code holds.
//!
//! # Implementation details
//!
//! A `LispTask` runs its fiber in slices. `Step::Yield` (every `yield_interval` steps) wakes
//! the task and returns `Pending`, so the scheduler can run others: only one Lisp evaluation
//! runs at a time, and a tight loop cannot starve anyone. `Step::Suspend` carries an
//! [`AsyncRequest`] — a boxed future (an await, a sleep, an LLM call) — which the task polls
//! until it completes, then hands its result to the fiber with `resume_with`.
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
use std::task::{Context, Poll};

use futures::future::{LocalBoxFuture, Shared};
use omega_sched::{Scheduler, TaskError, TaskId, TaskState};

use crate::budget::Budget;
use crate::error::{ErrorKind, LispError, LispResult};
use crate::fiber::{Fiber, Step};
use crate::state::{AsyncCtx, Shared as RuntimeShared};
use crate::value::{Foreign, Value};
use crate::vm::Interrupt;

pub(crate) use crate::native::AsyncRequest;

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

/// The future a Lisp task runs: a fiber and what it is waiting for.
pub(crate) struct LispTask {
    ctx: Rc<AsyncCtx>,
    /// The fiber's step count already added to the runtime's total.
    counted: u64,
    start: Option<FiberStart>,
    fiber: Option<Fiber>,
    waiting: Option<AsyncRequest>,
    slot: Rc<TaskSlot>,
    top_level: bool,
    /// The script's budget, shared by all its tasks (see `budget.rs`).
    budget: Option<Rc<Budget>>,
}

impl LispTask {
    pub fn new(
        start: FiberStart,
        slot: Rc<TaskSlot>,
        top_level: bool,
        ctx: Rc<AsyncCtx>,
        budget: Option<Rc<Budget>>,
    ) -> LispTask {
        ctx.alive.set(ctx.alive.get() + 1);
        LispTask {
            ctx,
            counted: 0,
            start: Some(start),
            fiber: None,
            waiting: None,
            slot,
            top_level,
            budget,
        }
    }

    /// The fiber, created on first use with the cancellation interrupt installed.
    fn fiber(&mut self) -> LispResult<&mut Fiber> {
        if let Some(start) = self.start.take() {
            let mut fiber = match start {
                FiberStart::Ready(f) => *f,
                FiberStart::Call(shared, thunk) => {
                    let shared = shared.upgrade().ok_or_else(|| {
                        LispError::new(ErrorKind::Error, "the Lisp runtime was dropped")
                    })?;
                    Fiber::for_call(shared, thunk, Vec::new())?
                }
            };
            install_interrupt(&mut fiber, self.ctx.clone(), self.budget.clone());
            self.fiber = Some(fiber);
        }
        Ok(self
            .fiber
            .as_mut()
            .expect("the fiber exists once the start was taken"))
    }
}

impl Drop for LispTask {
    /// The scheduler drops a task's body when the task ends, however it ends.
    fn drop(&mut self) {
        self.ctx.alive.set(self.ctx.alive.get() - 1);
        if let Some(b) = &self.budget {
            b.task_ended();
        }
        // An ended task is no longer live: its value stays alive only through whoever holds
        // it. (If the table is borrowed right now, `Runtime::settle` prunes it instead.)
        if let Some(id) = self.slot.id.get() {
            let gone = self
                .ctx
                .live
                .try_borrow_mut()
                .ok()
                .and_then(|mut live| live.remove(&id));
            drop(gone);
        }
    }
}

/// Raises the task's cancellation in the fiber for as long as it lasts (the fiber skips it
/// in shielded code); ends the fiber when the runtime's total step budget is spent.
fn install_interrupt(fiber: &mut Fiber, ctx: Rc<AsyncCtx>, budget: Option<Rc<Budget>>) {
    fiber.set_interrupt(move || {
        if let Some(e) = budget.as_ref().and_then(|b| b.steps_exceeded()) {
            return Some(Interrupt::Raise(e));
        }
        if let Some(max) = ctx.max_total_steps.get() {
            if ctx.total_steps.get() > max {
                return Some(Interrupt::Raise(LispError::limit("max_total_steps", max)));
            }
        }
        let cancelled = omega_sched::check_cancelled().err()?;
        Some(Interrupt::Raise(cancel_error(&cancelled.reason)))
    });
}

impl LispTask {
    /// Ends the task: children of a script's top level are cancelled ("script finished").
    fn finish(&mut self, result: LispResult<Value>) -> Result<Value, TaskError> {
        if self.top_level {
            if let Some(t) = omega_sched::current_token() {
                t.cancel("script finished");
            }
        }
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                let summary = e.headline();
                let stopped = matches!(e.kind(), ErrorKind::Cancelled | ErrorKind::Timeout)
                    && omega_sched::current_token().is_some_and(|t| t.is_cancelled());
                *self.slot.error.borrow_mut() = Some(e);
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
        if this.start.is_some() {
            // Cancelled before it ever ran: it never starts (no side effect of its body).
            if let Err(c) = omega_sched::check_cancelled() {
                return Poll::Ready(Err(TaskError::Cancelled { reason: c.reason }));
            }
        }
        loop {
            let shielded = this.fiber.as_ref().is_some_and(Fiber::in_shield);
            if this.waiting.is_some() && !shielded {
                if let Err(c) = omega_sched::check_cancelled() {
                    // Level-triggered: every wait of a cancelled task ends at once.
                    // Dropping the request drops whatever it was doing (an LLM call, …),
                    // which may leave a note on what it was waiting for.
                    this.waiting = None;
                    let note = this.ctx.take_cancel_note();
                    let e = with_note(cancel_error(&c.reason), note.as_deref());
                    *this.slot.note.borrow_mut() = note;
                    if let Some(f) = this.fiber.as_mut() {
                        f.resume_with(Err(e));
                    }
                }
            }
            if let Some(w) = this.waiting.as_mut() {
                match w.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => {
                        this.waiting = None;
                        if let Some(f) = this.fiber.as_mut() {
                            f.resume_with(r);
                        }
                    }
                }
            }
            let step = match this.fiber() {
                Ok(f) => {
                    let step = f.resume();
                    let steps = f.steps();
                    let delta = steps.saturating_sub(this.counted);
                    this.counted = steps;
                    this.ctx.total_steps.set(this.ctx.total_steps.get() + delta);
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
                    let request = s.into_request();
                    let shielded = this.fiber.as_ref().is_some_and(Fiber::in_shield);
                    this.waiting = Some(if shielded {
                        // Cleanup (finally blocks, shield forms) must be able to await.
                        Box::pin(omega_sched::shield(request))
                    } else {
                        request
                    });
                }
                Err(e) => return Poll::Ready(this.finish(Err(e))),
            }
        }
    }
}

/// What a task leaves for whoever awaits it: its Lisp error, if it failed with one.
#[derive(Default)]
pub(crate) struct TaskSlot {
    /// The task's id, set once it is submitted: its body leaves the runtime's `live` table
    /// under this id when it ends, so a finished task nobody awaits costs nothing.
    pub id: Cell<Option<TaskId>>,
    pub error: RefCell<Option<LispError>>,
    /// What the task was waiting for when it was cancelled or timed out, if known.
    pub note: RefCell<Option<String>>,
}

/// The outcome every awaiter of a task shares.
pub(crate) type Outcome = Result<Value, TaskError>;

/// A task as a Lisp value (`task?` is true): what `async` returns and `await` takes.
pub(crate) struct TaskValue {
    pub(crate) id: TaskId,
    pub(crate) name: Option<String>,
    pub(crate) token: omega_sched::CancellationToken,
    pub(crate) sched: Scheduler,
    pub(crate) done: Shared<LocalBoxFuture<'static, Outcome>>,
    pub(crate) slot: Rc<TaskSlot>,
}

impl fmt::Debug for TaskValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskValue")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

impl Foreign for TaskValue {
    fn type_name(&self) -> &str {
        "task"
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl TaskValue {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The task's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The task's state; a finished task that left the scheduler's history reports how its
    /// result says it ended.
    pub fn state(&self) -> TaskState {
        if let Some(info) = self.sched.task(self.id) {
            return info.state;
        }
        match self.done.peek() {
            Some(Ok(_)) => TaskState::Completed,
            Some(Err(TaskError::Cancelled { .. })) => TaskState::Cancelled,
            _ => TaskState::Error,
        }
    }

    /// True once the task has finished.
    pub fn is_finished(&self) -> bool {
        self.done.peek().is_some()
    }

    /// Cancels the task and its subtree. True if this call stopped a task that had not
    /// finished; false if it had finished or was already cancelled.
    pub fn cancel(&self, reason: &str) -> bool {
        if self.is_finished() || self.state().is_finished() {
            return false;
        }
        self.token.cancel(reason)
    }

    /// A future of the task's result as Lisp sees it: the value, or its Lisp error (with
    /// the task's own stack trace when it failed in Lisp).
    pub fn result(&self) -> impl Future<Output = LispResult<Value>> + 'static {
        let outcome = self.outcome();
        let slot = self.slot.clone();
        async move { outcome.await.map_err(|e| to_lisp_error(&slot, &e)) }
    }

    /// The task's raw outcome (for combinators that need the scheduler's error). The
    /// awaiting task's await edge is recorded while it waits (slot lending under
    /// `max_concurrent_tasks`; an await cycle fails at once with `:deadlock`): the shared
    /// `done` future itself tracks nothing, so one awaiter's deadlock never reaches others.
    pub(crate) fn outcome(&self) -> impl Future<Output = Outcome> + 'static {
        let done = self.done.clone();
        let sched = self.sched.clone();
        let id = self.id;
        async move {
            let _edge = sched.track_await(id)?;
            done.await
        }
    }
}

/// The Lisp error for a task's failure: the one it raised, else one made from `e`.
pub(crate) fn to_lisp_error(slot: &TaskSlot, e: &TaskError) -> LispError {
    match (&*slot.error.borrow(), e) {
        // A task stopped by a timeout raised `:cancelled`/`:timeout` itself; the scheduler's
        // verdict (TimedOut) is what the awaiter should see.
        (Some(_), TaskError::TimedOut { .. } | TaskError::Deadlock { .. }) => {
            with_note(task_error_to_lisp(e), slot.note.borrow().as_deref())
        }
        (Some(err), _) => err.clone(),
        (None, _) => task_error_to_lisp(e),
    }
}

/// The task value inside `v`, or a type error naming `who`.
pub(crate) fn as_task<'a>(who: &str, v: &'a Value) -> LispResult<&'a TaskValue> {
    if let Value::Foreign(f) = v {
        if let Some(t) = f.as_any().downcast_ref::<TaskValue>() {
            return Ok(t);
        }
    }
    Err(LispError::type_error(who, "a task", v))
}

/// The TaskState as the keyword Lisp shows.
pub(crate) fn state_keyword(s: TaskState) -> Value {
    Value::keyword(s.as_str())
}
