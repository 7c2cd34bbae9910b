//! The current-task context: what a task body can ask about itself, and the scheduler's
//! cooperative checkpoints: [`current_task`], [`current_token`], [`current_cancellation`],
//! [`check_cancelled`], [`yield_now`], [`sleep`], [`shield`] and [`CancelScope`].
//!
//! # When a cancellation is observed, and when it ends
//!
//! A task is cancelled by [`Scheduler::cancel`](crate::Scheduler::cancel), its handle, its
//! token, a parent, a failing sibling (`await_all`), a winning one (`await_any`), its
//! timeout or deadline, `cancel_all`, or `shutdown`. From that moment the cancellation is
//! **level-triggered**: every later checkpoint of the task — [`check_cancelled`],
//! [`yield_now`], [`sleep`], a [`Pool`](crate::Pool) permit wait, a lock wait, awaiting a
//! [`TaskHandle`](crate::TaskHandle) — observes it again, however many times the body
//! catches and ignores it. It ends only with the task. The one exception is [`shield`]:
//! inside a shield nothing outside it is visible, so cleanup can await; the shield is
//! bounded by the scheduler's `cleanup_grace` (default 5 s) after the cancel, after which
//! the body is dropped whatever it is doing.
//!
//! How a checkpoint reports it depends on the task's [`CancelMode`]:
//! * `Drop` (the default): it never completes; the executor drops the body there (after
//!   any open shield closes).
//! * `Cooperative`: it returns an error (`Cancelled`, `LockError::Cancelled`,
//!   `TaskError::Cancelled`) so the body can unwind and clean up.
//!
//! A [`CancelScope`] is a cancellation inside a task (a Trio cancel scope): code run in it
//! ([`CancelScope::run`]) sees the scope's cancellation at its checkpoints, as an error in
//! either mode, until it leaves the scope; code outside the scope does not. With nested
//! scopes, [`current_cancellation`] names the outermost cancelled one that is not masked by
//! a shield: the one whose deadline or cancel caused the unwinding. Outside any task, no
//! checkpoint ever sees a cancellation.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::executor::SharedRef;
use crate::sleeps::{SleepKey, Update};
use crate::task::{CancelMode, TaskId};
use crate::token::{CancellationToken, Cancelled, OnCancelGuard};

/// What the task being polled on this thread sees of itself. Set by the driver around each
/// poll from the task's entry.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    /// The scheduler's id.
    pub sched: u64,
    pub id: TaskId,
    pub priority: i32,
    pub mode: CancelMode,
    /// The task's cancellation reason, once cancelled.
    pub cancel: Option<Arc<str>>,
    /// End the body without polling it (forced, doomed, or cancelled in `Drop` mode).
    pub stop: bool,
    /// Open `shield`s (kept between polls in the entry).
    pub shield_depth: u32,
    /// The driver turn's clock reading (one read per turn).
    pub now: Instant,
}

/// A frame of the checkpoint stack, pushed while a [`Shield`] or [`Scoped`] polls its
/// inner future.
#[derive(Debug, Clone)]
enum Frame {
    Shield,
    Scope(ScopeId, CancellationToken),
}

thread_local! {
    /// The task being polled on this thread.
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
    /// Shields and scopes around the code running now, innermost last.
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with the current task, if any. Never panics, even while the thread's locals
/// are being destroyed (then there is no current task).
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&mut Current>) -> R) -> R {
    let mut f = Some(f);
    let r = CURRENT.try_with(|c| match c.try_borrow_mut() {
        Ok(mut c) => (f.take().expect("called once"))(c.as_mut()),
        Err(_) => (f.take().expect("called once"))(None),
    });
    match r {
        Ok(r) => r,
        Err(_) => (f.take().expect("not called: the thread local is gone"))(None),
    }
}

/// Sets the current task for one poll, restoring the previous one (and its frames) after.
pub(crate) struct CurrentGuard {
    prev: Option<Current>,
    frames: Vec<Frame>,
}

impl CurrentGuard {
    pub fn enter(c: Current) -> Self {
        let prev = CURRENT.with(|cur| cur.replace(Some(c)));
        let frames = FRAMES.with(|f| std::mem::take(&mut *f.borrow_mut()));
        CurrentGuard { prev, frames }
    }

    /// Leaves, returning what the poll left of the current task.
    pub fn leave(mut self) -> Option<Current> {
        let prev = self.prev.take();
        let out = CURRENT.with(|cur| cur.replace(prev));
        let frames = std::mem::take(&mut self.frames);
        FRAMES.with(|f| *f.borrow_mut() = frames);
        std::mem::forget(self);
        out
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        let _ = CURRENT.try_with(|cur| cur.replace(prev));
        let frames = std::mem::take(&mut self.frames);
        let _ = FRAMES.try_with(|f| *f.borrow_mut() = frames);
    }
}

/// The id of the task whose body is running on this thread, if any.
pub fn current_task() -> Option<TaskId> {
    with_current(|c| c.map(|c| c.id))
}

/// The priority of the running task (0 outside tasks).
pub fn current_priority() -> i32 {
    with_current(|c| c.map_or(0, |c| c.priority))
}

/// The scheduler id and task id of the running task.
pub(crate) fn current_in() -> Option<(u64, TaskId)> {
    with_current(|c| c.map(|c| (c.sched, c.id)))
}

/// The cancellation token of the running task, if any (created on first use: tasks that
/// never ask for one never pay for one).
pub fn current_token() -> Option<CancellationToken> {
    let (sched, id) = current_in()?;
    crate::executor::token_of(sched, id)
}

/// Marks the running task cancelled in this thread's context, if it is `id` (a cancel
/// from inside the task's own poll is visible at once).
pub(crate) fn note_cancel(id: TaskId, reason: &Arc<str>) {
    with_current(|c| {
        if let Some(c) = c {
            if c.id == id && c.cancel.is_none() {
                c.cancel = Some(reason.clone());
            }
        }
    })
}

/// A visible cancellation of the running task: why, and which scope it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    /// The first reason given to the cancelled task or scope.
    pub reason: Arc<str>,
    /// The cancelled [`CancelScope`], or `None` when the task itself is cancelled.
    pub scope: Option<ScopeId>,
}

impl Cancellation {
    /// As the error checkpoints return.
    pub fn to_cancelled(&self) -> Cancelled {
        Cancelled {
            reason: self.reason.clone(),
        }
    }
}

/// The cancellation the running task would observe at a checkpoint now, if any: the task's
/// own (unless a shield is open around the running code), else the outermost cancelled
/// [`CancelScope`] not masked by a shield. `None` outside tasks. Level-triggered: it stays
/// `Some` until the task ends or the code leaves the cancelled scope.
pub fn current_cancellation() -> Option<Cancellation> {
    visible_any().map(|(c, _)| c)
}

fn visible_with(task: Option<Arc<str>>) -> Option<(Cancellation, bool)> {
    FRAMES
        .try_with(|frames| {
            let frames = frames.borrow();
            let mut outermost = None;
            let mut masked = false;
            for f in frames.iter().rev() {
                match f {
                    Frame::Shield => {
                        masked = true;
                        break;
                    }
                    Frame::Scope(id, token) => {
                        if let Some(reason) = token.reason() {
                            outermost = Some(Cancellation {
                                reason,
                                scope: Some(*id),
                            });
                        }
                    }
                }
            }
            match task {
                Some(reason) if !masked => Some((
                    Cancellation {
                        reason,
                        scope: None,
                    },
                    true,
                )),
                _ => outermost.map(|c| (c, false)),
            }
        })
        .ok()
        .flatten()
}

/// The visible cancellation, scopes included, for a task that may not be cancelled itself.
fn visible_any() -> Option<(Cancellation, bool)> {
    let in_task = with_current(|c| c.map(|c| c.cancel.clone()))?;
    visible_with(in_task)
}

/// `Err(Cancelled)` if the running task (or an enclosing [`CancelScope`]) is cancelled and
/// no shield masks it. Level-triggered: it keeps failing until the task ends.
///
/// ```
/// # omega_sched::Scheduler::new().block_on(async {
/// assert!(omega_sched::check_cancelled().is_ok()); // not in a task: never cancelled
/// # });
/// ```
pub fn check_cancelled() -> Result<(), Cancelled> {
    match visible_any() {
        Some((c, _)) => Err(c.to_cancelled()),
        None => Ok(()),
    }
}

/// What a checkpoint should do about cancellation right now: `Some(poll)` to return at once
/// (`Pending` parks a `Drop`-mode task, which the executor then drops; `Ready(Err)` in
/// `Cooperative` mode or for a scope), `None` to work normally.
pub(crate) fn cancel_poll<T>() -> Option<Poll<Result<T, Cancelled>>> {
    let (c, own) = visible_any()?;
    let drop_mode = own && with_current(|cur| cur.is_some_and(|cur| cur.mode == CancelMode::Drop));
    Some(if drop_mode {
        Poll::Pending
    } else {
        Poll::Ready(Err(c.to_cancelled()))
    })
}

/// Gives other ready tasks a turn: the current task goes to the back of the ready queue.
/// A checkpoint: returns `Err(Cancelled)` in a cancelled cooperative task.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = Result<(), Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(p) = cancel_poll() {
            return p;
        }
        if self.yielded {
            return Poll::Ready(Ok(()));
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Sleeps for `d` on tokio's clock (so paused-clock tests are exact). The task is
/// `suspended` meanwhile. A checkpoint: returns `Err(Cancelled)` early in a cancelled
/// cooperative task.
///
/// Polled inside a task of a scheduler driven on this thread, the sleep is a slot in the
/// scheduler's own sleep timers (a waker and a heap entry, 40 bytes) instead of a tokio
/// timer entry inside the task (SPEC §9, memory per task); it wakes the waker it was last
/// polled with, so it works under any combinator (`join_all`, `FuturesUnordered`), and
/// dropping it early frees its slot at once. Polled anywhere else it is a boxed tokio
/// `Sleep`.
///
/// ```
/// use std::time::Duration;
/// use omega_sched::{Scheduler, TaskOptions};
///
/// let sched = Scheduler::new();
/// let s = sched.clone();
/// sched.block_on(async move {
///     let h = s.submit(async {
///         omega_sched::sleep(Duration::from_millis(2)).await.unwrap();
///         "rested"
///     }, TaskOptions::new());
///     assert_eq!(h.await.unwrap(), "rested");
/// });
/// ```
pub fn sleep(d: Duration) -> SleepFuture {
    let now = Instant::now();
    // As tokio does: a sleep too long to represent ends in about 30 years.
    let at = now
        .checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(86400 * 365 * 30));
    SleepFuture {
        timer: SleepTimer::Unarmed(at),
    }
}

/// The future of [`sleep`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct SleepFuture {
    timer: SleepTimer,
}

/// Where a [`SleepFuture`]'s timer lives.
#[derive(Debug)]
enum SleepTimer {
    /// Not registered anywhere (not polled yet, or over): the deadline.
    Unarmed(Instant),
    /// A slot in its scheduler's sleep timers (freed by `Drop`).
    Slot {
        at: Instant,
        shared: SharedRef,
        key: SleepKey,
    },
    /// Polled outside a driven task: tokio's timer.
    Tokio(Pin<Box<tokio::time::Sleep>>),
}

impl SleepTimer {
    fn deadline(&self) -> Instant {
        match self {
            SleepTimer::Unarmed(at) | SleepTimer::Slot { at, .. } => *at,
            SleepTimer::Tokio(s) => s.deadline(),
        }
    }

    /// Frees the scheduler slot, if any.
    fn disarm(&mut self) {
        if let SleepTimer::Slot { at, shared, key } = self {
            if let Some(s) = shared.upgrade() {
                s.sleeps.cancel(*key);
            }
            *self = SleepTimer::Unarmed(*at);
        }
    }
}

impl Future for SleepFuture {
    type Output = Result<(), Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(p) = cancel_poll() {
            return p;
        }
        let timer = &mut self.timer;
        if let SleepTimer::Tokio(s) = timer {
            return s.as_mut().poll(cx).map(Ok);
        }
        let at = timer.deadline();
        let task = with_current(|c| c.map(|c| (c.sched, c.now)));
        let now = task.map_or_else(Instant::now, |(_, now)| now);
        if now >= at {
            timer.disarm();
            return Poll::Ready(Ok(()));
        }
        if let SleepTimer::Slot { shared, key, .. } = timer {
            let kept = shared
                .upgrade()
                .is_some_and(|s| s.sleeps.update(*key, cx.waker()) == Update::Kept);
            if kept {
                return Poll::Pending;
            }
            // Fired early by another clock, or the scheduler is gone: register again.
            *timer = SleepTimer::Unarmed(at);
        }
        if let Some(shared) = task.and_then(|(sched, _)| crate::executor::driving(sched)) {
            // The driver runs here and sleeps until the earliest sleep once this poll is
            // over: nothing to wake.
            let (key, _) = shared.sleeps.register(at, cx.waker().clone());
            *timer = SleepTimer::Slot {
                at,
                shared: Arc::downgrade(&shared),
                key,
            };
            return Poll::Pending;
        }
        let mut s = Box::pin(tokio::time::sleep_until(at));
        let out = s.as_mut().poll(cx).map(Ok);
        *timer = SleepTimer::Tokio(s);
        out
    }
}

impl Drop for SleepFuture {
    fn drop(&mut self) {
        self.timer.disarm();
    }
}

/// Runs `fut` so that cancellation from outside it does not interrupt it: for cleanup that
/// must finish (closing a session, releasing a remote lock, a Lisp `finally`).
///
/// While the shield is open, checkpoints inside it do not report the task's cancellation
/// (nor that of scopes around the shield) and a `Drop`-mode task is not dropped. The
/// protection is bounded: `cleanup_grace` (default 5 s) after the cancel, the task's body
/// is dropped anyway.
///
/// ```
/// use omega_sched::{shield, Scheduler, TaskOptions};
/// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
///
/// let sched = Scheduler::new();
/// let cleaned = Arc::new(AtomicBool::new(false));
/// let flag = cleaned.clone();
/// let s = sched.clone();
/// sched.block_on(async move {
///     let h = s.submit(async move {
///         omega_sched::current_token().unwrap().cancel("stop");
///         shield(async {
///             let _ = omega_sched::sleep(std::time::Duration::from_millis(1)).await;
///             flag.store(true, Ordering::SeqCst);
///         }).await;
///         // The cancellation takes effect at the next checkpoint.
///         omega_sched::yield_now().await.ok();
///         unreachable!("dropped at the checkpoint above");
///     }, TaskOptions::new());
///     assert!(h.await.unwrap_err().is_cancelled());
/// });
/// assert!(cleaned.load(Ordering::SeqCst));
/// ```
pub fn shield<F: Future>(fut: F) -> Shield<F> {
    Shield {
        fut,
        task: None,
        done: false,
    }
}

pin_project! {
    /// The future of [`shield`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Shield<F> {
        #[pin]
        fut: F,
        task: Option<TaskId>,
        done: bool,
    }

    impl<F> PinnedDrop for Shield<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            leave_shield(this.task);
        }
    }
}

fn leave_shield(task: &mut Option<TaskId>) {
    if let Some(id) = task.take() {
        with_current(|c| {
            if let Some(c) = c.filter(|c| c.id == id) {
                c.shield_depth = c.shield_depth.saturating_sub(1);
            }
        });
    }
}

impl<F> std::fmt::Debug for Shield<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shield").field("task", &self.task).finish()
    }
}

/// Pushes `frame` while `f` runs.
fn in_frame<R>(frame: Frame, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            let _ = FRAMES.try_with(|fr| fr.borrow_mut().pop());
        }
    }
    FRAMES.with(|fr| fr.borrow_mut().push(frame));
    let _pop = Pop;
    f()
}

impl<F: Future> Future for Shield<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        if !*this.done && this.task.is_none() {
            *this.task = with_current(|c| {
                c.map(|c| {
                    c.shield_depth += 1;
                    c.id
                })
            });
        }
        let out = in_frame(Frame::Shield, || this.fut.as_mut().poll(cx));
        if out.is_ready() {
            *this.done = true;
            leave_shield(this.task);
        }
        out
    }
}

/// Identifies a [`CancelScope`] (in [`Cancellation::scope`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeId(u64);

static NEXT_SCOPE: AtomicU64 = AtomicU64::new(1);

/// A cancellation scope inside a task (Trio's cancel scope): code run in it sees the
/// scope's cancellation at every checkpoint, as an error, until it leaves the scope.
///
/// A scope made inside a task is a child of the innermost enclosing scope (or of the task's
/// token): cancelling the task or an outer scope cancels it too, and tasks submitted from
/// code running in the scope are children of the scope. A scope with a deadline cancels
/// itself with reason `"timeout"` when the deadline passes.
///
/// ```
/// use std::time::Duration;
/// use omega_sched::{CancelScope, Scheduler, TaskOptions};
///
/// let sched = Scheduler::new();
/// let s = sched.clone();
/// let out = sched.block_on(async move {
///     s.submit(async {
///         let scope = CancelScope::new().timeout(Duration::from_millis(5));
///         let r = scope.run(async {
///             loop {
///                 // A catch-all cannot swallow it: every checkpoint fails again.
///                 let _ = omega_sched::sleep(Duration::from_millis(1)).await;
///                 if omega_sched::check_cancelled().is_err() { break "stopped"; }
///             }
///         }).await;
///         (r, scope.is_cancelled(), omega_sched::check_cancelled().is_ok())
///     }, TaskOptions::new()).await.unwrap()
/// });
/// assert_eq!(out, ("stopped", true, true));
/// ```
#[derive(Debug, Clone)]
pub struct CancelScope {
    id: ScopeId,
    token: CancellationToken,
    deadline: Option<Instant>,
}

impl Default for CancelScope {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelScope {
    /// A new scope, a child of the innermost enclosing scope or of the running task.
    pub fn new() -> Self {
        let parent = innermost_scope_token().or_else(current_token);
        CancelScope {
            id: ScopeId(NEXT_SCOPE.fetch_add(1, Ordering::Relaxed)),
            token: parent.map_or_else(CancellationToken::new, |p| p.child()),
            deadline: None,
        }
    }

    /// Cancels the scope (reason `"timeout"`) `d` after the scope starts running.
    pub fn timeout(self, d: Duration) -> Self {
        self.deadline(Instant::now() + d)
    }

    /// Cancels the scope (reason `"timeout"`) at `at`.
    pub fn deadline(mut self, at: Instant) -> Self {
        self.deadline = Some(self.deadline.map_or(at, |d| d.min(at)));
        self
    }

    /// This scope's id (as in [`Cancellation::scope`]).
    pub fn id(&self) -> ScopeId {
        self.id
    }

    /// The scope's token: cancel it, or hand it to others.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Cancels the scope with `reason` (first reason wins).
    pub fn cancel(&self, reason: &str) -> bool {
        self.token.cancel(reason)
    }

    /// True once the scope is cancelled (by its deadline, its token or an outer scope).
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// True if the scope's deadline passed (it was cancelled by its timeout).
    pub fn timed_out(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
            && self.token.reason().as_deref() == Some("timeout")
    }

    /// Runs `fut` inside the scope.
    pub fn run<F: Future>(&self, fut: F) -> Scoped<F> {
        Scoped {
            fut,
            scope: self.clone(),
            timer: self.deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            wake: None,
        }
    }
}

fn innermost_scope_token() -> Option<CancellationToken> {
    current_in()?;
    FRAMES
        .try_with(|f| {
            f.borrow().iter().rev().find_map(|fr| match fr {
                Frame::Scope(_, t) => Some(t.clone()),
                Frame::Shield => None,
            })
        })
        .ok()
        .flatten()
}

/// The token tasks submitted now should descend from: the innermost scope's, if any.
pub(crate) fn scope_parent_token() -> Option<CancellationToken> {
    innermost_scope_token()
}

pin_project! {
    /// The future of [`CancelScope::run`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Scoped<F> {
        #[pin]
        fut: F,
        scope: CancelScope,
        timer: Option<Pin<Box<tokio::time::Sleep>>>,
        wake: Option<OnCancelGuard>,
    }
}

impl<F> std::fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scoped")
            .field("scope", &self.scope)
            .finish()
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        if let Some(t) = this.timer.as_mut() {
            if t.as_mut().poll(cx).is_ready() {
                this.scope.token.cancel("timeout");
                *this.timer = None;
            }
        }
        if this.wake.is_none() && !this.scope.token.is_cancelled() {
            // A cancel from elsewhere must reach the code parked in the scope.
            *this.wake = Some(this.scope.token.wake_on_cancel(cx.waker().clone()));
        }
        let frame = Frame::Scope(this.scope.id, this.scope.token.clone());
        in_frame(frame, || this.fut.as_mut().poll(cx))
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
const _: () = assert!(std::mem::size_of::<SleepFuture>() <= 32);
