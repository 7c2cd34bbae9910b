//! The VM core: an explicit value stack, frame stack and handler stack, all on the heap, run in
//! slices.
//!
//! # Implementation details
//!
//! `VmCore::run` executes until the outermost frame returns ([`Exit::Returned`]), the step hook
//! asks to yield ([`Exit::Yield`]) or a native asks to suspend ([`Exit::Suspend`]). Between
//! slices the whole state is in `VmCore`, so the host can park it and resume it later.
//!
//! # Invariants
//!
//! 1. Frame `f` owns `stack[f.start() ..]` up to the next frame's first slot: the callee at
//!    `f.base - 1` if it was entered by `Call`/`TailCall` (`nc = 0`; `start = base - 1`), no
//!    callee slot if it was entered by `CallGlobal`/`TailCallGlobal`/`CallConst` (`nc = 1`;
//!    `start = base`, the callee stays in its global slot or constant and the frame's
//!    `closure` keeps it alive) or by `CallSelf` (`nc = 1`; the callee is the caller's
//!    closure), then its locals `stack[f.base .. f.base + nlocals]` and its operand values.
//!    Its result goes to `stack[f.start()]`.
//! 2. A saved `Frame::pc` points just after the instruction the frame is executing, so
//!    `pos[pc - 1]` is that instruction's source position (used for stack traces).
//! 3. A handler records the frame count and stack height at `PushHandler` (or `Capture`);
//!    unwinding to it truncates both and pushes the error value (or, for an escape handler,
//!    the values given to the continuation). An error unwinds to the innermost `Catch` or
//!    `Finally` handler, popping escape handlers on the way (their continuations die); an
//!    escape (`ErrorKind::Escape`) unwinds to the innermost `Finally` handler or its own
//!    escape handler, whichever is nearer, popping `Catch` handlers on the way — so a
//!    `finally` (or `dynamic-wind` after-thunk) runs for it, then re-raises it, and no
//!    `catch` ever sees it.
//! 4. `tick` — the per-step hook — is the only place that counts steps, enforces `max_steps`,
//!    polls the interrupt and decides to yield. It runs after each call has entered its callee
//!    (or a native has returned), and at each `Loop` head and `JumpLoop`/`JumpLoopNum`/`Edge`
//!    of a loop compiled inline (a step each, as the closure call they replace), when the
//!    state is consistent between instructions. A `JumpLoopNum`, `Edge` or `TailSelfNum` that falls
//!    back on its slow path counts nothing itself (the `JumpLoop`/`TailCallGlobal` after it
//!    does). An `Edge` that also ran the loop's exit test counts its step with `pc` at the
//!    loop's head + 1 (the test's branch op), so the step hook's slow path sees the state of
//!    the plain jump, and the branch op runs the test again after it.
//! 5. Inside `run`'s dispatch loop the running frame is held in locals (`closure`, `pc`,
//!    `base`, `nc`) and is not on `frames`, and the value stack is the local `stack` (what
//!    `self.stack` holds meanwhile is empty); `spill!` pushes the frame back and moves the
//!    stack back into `self` before anything that looks at or changes either (every slow
//!    path: a generic call, an error, the end of a slice), and `'reload` takes them out again.
//!    Outside the loop, invariants 1–3 hold with `frames.last()` the running frame. (Kept as a
//!    local whose address is never taken — every `Stack` method the loop calls is inlined and
//!    the out-of-line helpers get slices — the stack's fields stay in registers or in the
//!    loop's own stack slots instead of being reloaded through `self` after every store:
//!    tak −5.8 %, ack −5.5 %, fib −4.3 % instructions; benches/README, "Stop 28".)
//! 6. `shield_depth` counts the shielded regions (`ShieldEnter` … `ShieldExit`) the running
//!    code is in; a handler records it at `PushHandler` and an unwind to the handler restores
//!    it, so an error leaving a shield closes it. Cancellation interrupts are raised only at
//!    depth 0 — at every slice (level-triggered; but not within the slice after a handler
//!    caught a cancellation, so it can log it), at the end of a bare `catch`
//!    (`CheckCancel`) and when the last shield closes (`ShieldExit`).
//! 7. A continuation is live exactly while its escape handler is on `handlers` at the index it
//!    recorded, with its tag (tags are unique on the thread): calling it otherwise is refused
//!    (`:unsupported`, re-entry), before anything unwinds.
//! 8. `dynamic` is the task's dynamic environment (parameters, exception handlers; see
//!    `builtins/control.rs`); `run` installs it as the thread's current one for the slice and
//!    takes it back on every exit, so natives see the running task's.
//! 9. A saved frame whose `closure` is `None` runs the same closure as the frame above it (the
//!    running frame, for the top of `frames`): a call of the running closure by itself saves
//!    the caller without a reference count, and its return keeps the code loaded. Whatever
//!    removes or replaces the frame above such a frame first hands it the closure
//!    (`truncate_frames`, the tail calls).
//!
//! # Performance notes
//!
//! The hot paths (closure calls and tail calls with fixed arity, returns, integer primitives,
//! builtin calls, also for `CallGlobal`, which saves the `Global` dispatch and the reference
//! count of a callee on the stack) are handled inline in the loop; everything else goes through
//! `call`. New values are written into their stack slot field by field (see `stack.rs`), and a
//! `Frame` is a pair of words, so neither is built in a temporary and copied (a copy of a value
//! that was just stored field by field stalls store-to-load forwarding).

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::builtins::{control, numbers};
use crate::bytecode::{Capture, HandlerKind, Op, PrimOp, Proto};
use crate::error::{ErrorKind, LispError, LispResult, Span, StackFrame};
use crate::native::{Delegate, Native, NativeKind, Suspension};
use crate::stack::Stack;
use crate::state::{State, PRIM_COUNT};
use crate::value::{Closure, Value};

mod args;
mod arith;
mod compare;
mod edge;
mod frame;
mod lists;

pub(crate) use args::{is_num_arg, MAX_NUM_ARGS};
use arith::{float_arith, float_holds, float_pair, int_arith, int_holds, num_pair};
use frame::Frame;

/// A request from the host's interrupt hook, delivered at the next step.
#[derive(Clone, Debug)]
pub enum Interrupt {
    /// Raise `:cancelled` with this reason (`try`/`finally` unwind as for any error).
    Cancel(String),
    /// Raise `:timeout` with this message.
    Timeout(String),
    /// Raise this error.
    Raise(LispError),
}

impl Interrupt {
    fn into_error(self) -> LispError {
        match self {
            Interrupt::Cancel(reason) => {
                LispError::new(ErrorKind::Cancelled, format!("cancelled: {reason}"))
            }
            Interrupt::Timeout(msg) => LispError::new(ErrorKind::Timeout, msg),
            Interrupt::Raise(e) => e,
        }
    }
}

/// The host's interrupt hook: polled by the step hook every `yield_interval` steps.
pub type InterruptFn = Box<dyn FnMut() -> Option<Interrupt>>;

/// An interrupt hook as a core holds it (and lends it, `State::lent_interrupt`): a plain
/// function, kept inline (8 bytes, not a 16-byte boxed closure: every Lisp task has one,
/// SPEC §9), or a host's closure, kept in the core's cold part.
pub(crate) enum Hook {
    /// A function with no state (a Lisp task's hook, `task.rs`).
    Fn(fn() -> Option<Interrupt>),
    /// A closure.
    Boxed(InterruptFn),
}

impl Hook {
    /// Polls the hook.
    pub(crate) fn poll(&mut self) -> Option<Interrupt> {
        match self {
            Hook::Fn(f) => f(),
            Hook::Boxed(f) => f(),
        }
    }
}

/// The interrupt request ([`request_interrupt`]): one flag for the process, behind an `Arc` so
/// that a signal handler can set it ([`interrupt_request_flag`]).
static INTERRUPT_REQUESTED: std::sync::LazyLock<Arc<AtomicBool>> =
    std::sync::LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Asks the evaluation running now, on any thread, to raise `:cancelled` ("cancelled:
/// interrupted") at its next step outside a shield (a `finally` block, `shield`: the request
/// waits for it to end, as a cancellation does) — for a host whose own loop cannot run because
/// an evaluation holds its thread (a long macro expansion, a loop between yields). May be
/// called from any thread. One request is taken by one evaluation; a host that handled the
/// interrupt itself withdraws the request with [`clear_interrupt_request`].
pub fn request_interrupt() {
    INTERRUPT_REQUESTED.store(true, Ordering::SeqCst);
}

/// Withdraws a [`request_interrupt`] no evaluation has taken yet.
pub fn clear_interrupt_request() {
    INTERRUPT_REQUESTED.store(false, Ordering::SeqCst);
}

/// The flag behind [`request_interrupt`]: storing `true` in it is a request, and it reads
/// `false` again once an evaluation has taken the request (or a host withdrew it). For a
/// signal handler, which may do no more than store to an atomic: `omega` registers it with
/// `signal_hook::flag::register` for Ctrl-C, SIGTERM and SIGHUP, so no thread has to watch
/// for them.
pub fn interrupt_request_flag() -> Arc<AtomicBool> {
    Arc::clone(&INTERRUPT_REQUESTED)
}

/// Takes a pending [`request_interrupt`], if there is one.
fn take_interrupt_request() -> bool {
    INTERRUPT_REQUESTED.load(Ordering::Relaxed) && INTERRUPT_REQUESTED.swap(false, Ordering::SeqCst)
}

#[derive(Debug, Clone, Copy)]
struct Handler {
    frames: usize,
    stack_len: usize,
    pc: usize,
    /// The shield depth at `PushHandler`, restored when an error unwinds to it.
    shield: u32,
    kind: Unwind,
}

/// What a handler takes (invariant 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unwind {
    /// A `try`'s `catch`: errors only.
    Catch,
    /// A `try`'s `finally`: errors and escapes.
    Finally,
    /// A `call/cc`: the escapes to its continuation, whose tag this is.
    Escape(u64),
}

/// Why `run` stopped.
pub(crate) enum Exit {
    Returned(Value),
    Yield,
    Suspend(Suspension),
}

/// What to do with the value a suspended native eventually produces.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pending {
    None,
    Push,
    PushThenReturn,
}

/// Whether a suspended core has been given its native's result (`VmCore::resume_with`):
/// a value is kept on top of the value stack, an error in the cold part. No
/// `Option<LispResult<Value>>` field: 16 bytes less in every suspended task (SPEC §9).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Resumed {
    No,
    /// The value is on top of the stack.
    Value,
    /// The error is in `Cold::resume_error`.
    Error,
}

/// The fields of a core that most evaluations never use, made on first use (SPEC §9: every
/// suspended Lisp task has a core; a `(lambda () (sleep ms))` task uses none of these).
#[derive(Default)]
struct Cold {
    /// The handler stack (invariant 3).
    handlers: Vec<Handler>,
    /// After a handler caught a cancellation, the slice check does not raise it again
    /// before `steps` reaches this (one `yield_interval` later), so the handler can log it.
    quiet_until: u64,
    /// This core's number on the thread (continuations record it, to say "another task");
    /// 0 until the first continuation asks (`control::next_id` starts at 1).
    id: u64,
    /// The dynamic environment between slices (invariant 8).
    dynamic: Value,
    /// The error a suspended native ended with ([`Resumed::Error`]).
    resume_error: Option<LispError>,
    /// The interrupt hook when it is a closure ([`Hook::Boxed`]; a plain function is
    /// `VmCore::hook_fn`).
    hook: Option<InterruptFn>,
}

enum Flow {
    /// A frame was entered or replaced: reload the current frame.
    Reload,
    /// A native returned and its value was pushed: continue in the same frame.
    Continue,
    Suspend(Suspension),
}

/// The heap-allocated execution state of one evaluation.
pub(crate) struct VmCore {
    stack: Stack,
    frames: Vec<Frame>,
    /// The interrupt hook when it is a plain function ([`Hook::Fn`]; a closure is in
    /// `Cold::hook`; at most one of the two is set).
    hook_fn: Option<fn() -> Option<Interrupt>>,
    pub(crate) steps: u64,
    countdown: u32,
    chunk: u32,
    /// Steps since the last yield, counted in whole chunks (saturating).
    since_yield: u32,
    /// Open shielded regions (`finally` code, `shield` forms): while above 0 the interrupt's
    /// cancellations are not raised (invariant 6).
    shield_depth: u32,
    pending: Pending,
    resumed: Resumed,
    /// Set for evaluations that must finish without suspending (`Runtime::eval_sync`,
    /// `call_sync`): a suspending native is refused before it runs, so it never builds a future
    /// (which may need a tokio reactor the caller does not have).
    synchronous: bool,
    /// Set by the fiber that owns the core when its evaluation has finished (kept here, in
    /// what would be padding: 8 bytes less in every task, SPEC §9).
    pub(crate) done: bool,
    /// Bits the core's owner keeps here, in what would be padding (a task's flags,
    /// `task.rs`: 8 bytes less in every task, SPEC §9); the core never reads them.
    pub(crate) owner_bits: u8,
    /// Handlers, the dynamic environment, the core's number…: `None` until first used.
    cold: Option<Box<Cold>>,
}

impl std::fmt::Debug for VmCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmCore")
            .field("stack_len", &self.stack.len())
            .field("frames", &self.frames.len())
            .field("handlers", &self.handlers().len())
            .field("steps", &self.steps)
            .finish()
    }
}

/// Calls `f` with `args` to completion on a fresh core (used for macro expansion and
/// `Runtime::call`). Yields are ignored; a suspension is an error.
/// When a fiber has lent its budget (`VmCore::lend_budget`, during macro expansion), the call
/// counts its steps on the fiber's count and polls the fiber's interrupt hook.
pub(crate) fn call_sync(st: &mut State, f: &Value, args: Vec<Value>) -> LispResult<Value> {
    let mut core = VmCore::new();
    core.synchronous = true;
    let lent = st.lent_steps.take();
    if let Some(steps) = lent {
        core.steps = steps;
        core.set_hook(st.lent_interrupt.take());
    }
    let result = run_sync(st, &mut core, f, args);
    if lent.is_some() {
        st.lent_steps = Some(core.steps);
        st.lent_interrupt = core.take_hook();
    }
    result
}

/// Charges `steps` units of work done outside the VM for a fiber that lent its budget
/// (`syntax-rules` expansion in `expander.rs`) and polls what the step hook polls: `max_steps`,
/// an interrupt request, the lent interrupt hook and the heap limit.
pub(crate) fn charge_lent(st: &mut State, steps: u64) -> LispResult<()> {
    if let Some(count) = st.lent_steps.as_mut() {
        *count = count.saturating_add(steps);
        if let Some(max) = st.limits.max_steps {
            if *count > max {
                return Err(LispError::limit("max_steps", max));
            }
        }
    }
    if take_interrupt_request() {
        return Err(Interrupt::Cancel("interrupted".into()).into_error());
    }
    if let Some(e) = st.lent_interrupt.as_mut().and_then(Hook::poll) {
        return Err(e.into_error());
    }
    st.check_heap()
}

/// The error for a suspending native called where nothing can suspend.
pub(crate) fn suspend_in_sync_error(name: &str) -> LispError {
    LispError::new(
        ErrorKind::Error,
        format!(
            "{name} suspends its task, which a synchronous evaluation (Runtime::eval_sync, Runtime::call, a macro expansion) cannot do: run the script with Runtime::eval_str(..).await"
        ),
    )
}

fn run_sync(st: &mut State, core: &mut VmCore, f: &Value, args: Vec<Value>) -> LispResult<Value> {
    core.start_call(st, f.clone(), args)?;
    loop {
        match core.run(st)? {
            Exit::Returned(v) => return Ok(v),
            Exit::Yield => {}
            Exit::Suspend(_) => {
                core.reset();
                return Err(LispError::new(
                    ErrorKind::Error,
                    "a suspending function cannot be called here (macro expansion or synchronous call)",
                ));
            }
        }
    }
}

impl VmCore {
    pub(crate) fn new() -> VmCore {
        VmCore {
            stack: Stack::new(),
            frames: Vec::new(),
            hook_fn: None,
            steps: 0,
            countdown: 1,
            chunk: 1,
            since_yield: 0,
            shield_depth: 0,
            pending: Pending::None,
            resumed: Resumed::No,
            synchronous: false,
            done: false,
            owner_bits: 0,
            cold: None,
        }
    }

    /// The cold part, made on first use.
    /// Installs (or, with `None`, removes) the interrupt hook.
    pub(crate) fn set_hook(&mut self, hook: Option<Hook>) {
        self.hook_fn = None;
        if let Some(c) = self.cold.as_deref_mut() {
            c.hook = None;
        }
        match hook {
            Some(Hook::Fn(f)) => self.hook_fn = Some(f),
            Some(Hook::Boxed(f)) => self.cold_mut().hook = Some(f),
            None => {}
        }
    }

    /// Takes the interrupt hook out.
    fn take_hook(&mut self) -> Option<Hook> {
        if let Some(f) = self.hook_fn.take() {
            return Some(Hook::Fn(f));
        }
        self.cold.as_deref_mut()?.hook.take().map(Hook::Boxed)
    }

    /// Polls the interrupt hook, if any.
    fn poll_hook(&mut self) -> Option<Interrupt> {
        if let Some(f) = self.hook_fn {
            return f();
        }
        self.cold.as_deref_mut()?.hook.as_mut()?()
    }

    fn cold_mut(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Box::default)
    }

    /// The handler stack (invariant 3).
    fn handlers(&self) -> &[Handler] {
        self.cold.as_deref().map_or(&[], |c| &c.handlers)
    }

    /// Pops the innermost handler.
    fn pop_handler(&mut self) -> Option<Handler> {
        self.cold.as_deref_mut()?.handlers.pop()
    }

    /// Pushes a handler (makes the cold part).
    fn push_handler(&mut self, h: Handler) {
        self.cold_mut().handlers.push(h);
    }

    /// This core's number on the thread, given on first use (continuations record it).
    fn id(&mut self) -> u64 {
        let cold = self.cold_mut();
        if cold.id == 0 {
            cold.id = control::next_id();
        }
        cold.id
    }

    /// Whether the running code is inside a shielded region (`finally`, `shield`): the host
    /// runs what it suspends on shielded too.
    pub(crate) fn in_shield(&self) -> bool {
        self.shield_depth > 0
    }

    /// The error to raise at a bare `catch`'s end: the interrupt's cancellation (or limit),
    /// unless a shield masks it.
    fn cancellation(&mut self) -> Option<LispError> {
        if self.shield_depth > 0 {
            return None;
        }
        self.poll_hook().map(Interrupt::into_error)
    }

    /// Lends this core's step count and interrupt hook to the synchronous calls made through
    /// `st` (macro expansion) until [`VmCore::reclaim_budget`].
    pub(crate) fn lend_budget(&mut self, st: &mut State) {
        st.lent_steps = Some(self.steps);
        st.lent_interrupt = self.take_hook();
    }

    /// Takes back what [`VmCore::lend_budget`] lent, with the steps the calls took.
    pub(crate) fn reclaim_budget(&mut self, st: &mut State) {
        if let Some(steps) = st.lent_steps.take() {
            self.steps = steps;
        }
        if let Some(hook) = st.lent_interrupt.take() {
            self.set_hook(Some(hook));
        }
    }

    #[cfg(test)]
    /// Current sizes (value stack, frames, handlers), for tests and introspection.
    pub(crate) fn sizes(&self) -> (usize, usize, usize) {
        (self.stack.len(), self.frames.len(), self.handlers().len())
    }

    #[cfg(test)]
    /// Slots allocated in the value stack (see `Stack::capacity`).
    pub(crate) fn stack_capacity(&self) -> usize {
        self.stack.capacity()
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.frames.is_empty() && self.pending == Pending::None
    }

    /// Makes this core refuse suspending natives (see the `synchronous` field).
    pub(crate) fn set_synchronous(&mut self) {
        self.synchronous = true;
    }

    pub(crate) fn is_suspended(&self) -> bool {
        self.pending != Pending::None
    }

    /// Whether a suspended core has been given its result.
    pub(crate) fn has_resume_value(&self) -> bool {
        self.resumed != Resumed::No
    }

    fn reset(&mut self) {
        self.stack.clear();
        self.frames.clear();
        if let Some(c) = self.cold.as_deref_mut() {
            c.handlers.clear();
            c.resume_error = None;
        }
        self.shield_depth = 0;
        self.pending = Pending::None;
        self.resumed = Resumed::No;
    }

    /// Starts running a top-level procedure (no arguments).
    pub(crate) fn start_proto(&mut self, proto: Rc<Proto>) {
        self.start_closure(Rc::new(Closure {
            proto,
            free: Box::new([]),
        }));
    }

    /// Starts running a closure of no arguments and no free variables as the outermost
    /// frame.
    fn start_closure(&mut self, closure: Rc<Closure>) {
        if self.frames.capacity() == 0 {
            // Room for this frame only, not the default four: every suspended task keeps its
            // frame stack, and a task's thunk runs as the outermost frame (SPEC §9).
            self.frames.reserve_exact(1);
        }
        // No callee slot (`nc = 1`, invariant 1): the frame's `closure` keeps it alive, and a
        // parked `(lambda () (sleep ms))` needs two slots, not three (SPEC §9).
        let base = self.stack.len();
        self.stack.resize_nil(base + closure.proto.nlocals as usize);
        self.frames.push(Frame::new(closure, 0, base, 1));
    }

    /// Starts a call of `f` with `args` as the outermost frame.
    pub(crate) fn start_call(
        &mut self,
        st: &mut State,
        f: Value,
        args: Vec<Value>,
    ) -> LispResult<()> {
        // A trampoline: `(f args…)` compiled by hand, returning the result. One closure per
        // thread, shared by every call (each task starts with one: no allocation per task).
        thread_local! {
            static TRAMPOLINE: Rc<Closure> = Rc::new(Closure {
                proto: Rc::new(Proto {
                    name: "<call>".into(),
                    nparams: 0,
                    rest: false,
                    nlocals: 0,
                    code: vec![Op::Return],
                    pos: vec![(0, 0)],
                    file: Rc::from("<host>"),
                    consts: Vec::new(),
                    protos: Vec::new(),
                    captures: Vec::new(),
                    callee_pos: Vec::new(),
                    regions: Vec::new(),
        edges: Vec::new(),
        compares: Vec::new(),
                }),
                free: Box::new([]),
            });
        }
        if let Value::Closure(c) = &f {
            if args.is_empty() && c.proto.nparams == 0 && !c.proto.rest {
                // A thunk (a task's body): it runs as the outermost frame itself, as a
                // script's top-level procedure does, so a parked task keeps one frame, not
                // two (SPEC §9).
                let c = c.clone();
                self.start_closure(c);
                return Ok(());
            }
        }
        if self.frames.capacity() == 0 {
            // The trampoline's frame and the callee's.
            self.frames.reserve_exact(2);
        }
        let tramp = TRAMPOLINE.with(Rc::clone);
        self.start_closure(tramp);
        let argc = args.len();
        self.stack.push(f);
        self.stack.extend(args);
        match self.call(st, argc, false) {
            Ok(Flow::Reload | Flow::Continue) => Ok(()),
            Ok(Flow::Suspend(_)) => {
                self.reset();
                Err(LispError::new(
                    ErrorKind::Error,
                    "a suspending function cannot be called synchronously",
                ))
            }
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    /// Provides the result of the native that suspended.
    /// A value goes on top of the stack, where the native's call left its result slot; an
    /// error waits in the cold part. A second result replaces the first; a result for a core
    /// that is not suspended is dropped.
    pub(crate) fn resume_with(&mut self, result: LispResult<Value>) {
        if self.pending == Pending::None {
            return;
        }
        match self.resumed {
            Resumed::No => {}
            Resumed::Value => self.stack.drop_top(),
            Resumed::Error => {
                if let Some(c) = self.cold.as_deref_mut() {
                    c.resume_error = None;
                }
            }
        }
        match result {
            Ok(v) => {
                self.stack.push(v);
                self.resumed = Resumed::Value;
            }
            Err(e) => {
                self.cold_mut().resume_error = Some(e);
                self.resumed = Resumed::Error;
            }
        }
    }

    fn reset_countdown(&mut self, st: &State) {
        let interval = st.limits.yield_interval.max(1);
        let mut chunk = u64::from(interval);
        if let Some(max) = st.limits.max_steps {
            chunk = chunk.min(max.saturating_sub(self.steps).max(1));
        }
        self.chunk = u32::try_from(chunk).unwrap_or(interval);
        self.countdown = self.chunk;
    }

    /// The per-step hook's slow path (invariant 4). `Ok(true)` means "yield now".
    #[cold]
    fn tick_slow(&mut self, st: &State) -> LispResult<bool> {
        // The chunk, and the work of natives beyond what moved the countdown (`work.rs`).
        self.steps += u64::from(self.chunk) + crate::work::take();
        self.since_yield = self.since_yield.saturating_add(self.chunk);
        if let Some(max) = st.limits.max_steps {
            if self.steps > max {
                // The `finally` blocks on the way out get one more slice, then meet the limit
                // again (without this the countdown, left at 0, would wrap at their first step).
                self.chunk = st.limits.yield_interval.max(1);
                self.countdown = self.chunk;
                return Err(LispError::limit("max_steps", max));
            }
        }
        self.reset_countdown(st);
        if self.shield_depth == 0 && take_interrupt_request() {
            return Err(Interrupt::Cancel("interrupted".into()).into_error());
        }
        crate::collector::maybe_collect();
        crate::heap::set_thread_limit(st.limits.max_heap_bytes);
        st.check_heap()?;
        if let Some(e) = self.poll_hook().map(Interrupt::into_error) {
            // Level-triggered: a cancellation is raised at every slice until the error
            // leaves the task, except inside a shield (`finally`, `shield`) and in the
            // slice after a handler caught it (invariant 6).
            let cancel = matches!(e.kind(), ErrorKind::Cancelled | ErrorKind::Timeout);
            let quiet_until = self.cold.as_deref().map_or(0, |c| c.quiet_until);
            if !cancel || (self.shield_depth == 0 && self.steps >= quiet_until) {
                return Err(e);
            }
        }
        if self.since_yield >= st.limits.yield_interval.max(1) {
            self.since_yield = 0;
            return Ok(true);
        }
        Ok(false)
    }

    /// Builds the Lisp stack trace (innermost first), eliding the middle of very deep stacks.
    /// A frame inside loops compiled inline shows a line per loop, as their closures would have
    /// (`Proto::regions`).
    fn trace(&self) -> Vec<StackFrame> {
        const HEAD: usize = 20;
        const TAIL: usize = 5;
        // A frame's lines: one per inline loop its pc is in (innermost first, as the closures
        // they replace would show), then its function's.
        let frame_lines = |f: &Frame, proto: &Proto, innermost: bool, out: &mut Vec<StackFrame>| {
            let i = f
                .pc()
                .saturating_sub(1)
                .min(proto.pos.len().saturating_sub(1));
            let span_at =
                |p: (u32, u32)| (p.0 > 0).then(|| Span::new(proto.file.clone(), p.0, p.1));
            let mut pos = proto.pos.get(i).copied().unwrap_or((0, 0));
            // Whether the line at hand was replaced by a tail call of the closure version.
            let mut replaced = false;
            for (k, r) in proto.regions_at(i).enumerate() {
                if k == 0 {
                    let at = u32::try_from(i).unwrap_or(u32::MAX);
                    replaced = !innermost && r.tail_calls.binary_search(&at).is_ok();
                }
                if !replaced {
                    out.push(StackFrame {
                        function: r.name.clone(),
                        span: span_at(pos),
                    });
                }
                replaced = r.tail;
                pos = r.entry;
            }
            if !replaced {
                out.push(StackFrame {
                    function: proto.name.clone(),
                    span: span_at(pos),
                });
            }
        };
        let n = self.frames.len();
        let mut out = Vec::new();
        // The closure of the frame above (invariant 9); the top frame has its own.
        let mut above: Option<&Rc<Closure>> = None;
        for (k, f) in self.frames.iter().rev().enumerate() {
            let Some(closure) = f.closure.as_ref().or(above) else {
                continue;
            };
            above = Some(closure);
            if n > HEAD + TAIL + 1 && k == HEAD {
                out.push(StackFrame {
                    function: format!("... {} frames omitted", n - HEAD - TAIL),
                    span: None,
                });
            }
            if n > HEAD + TAIL + 1 && k >= HEAD && k < n - TAIL {
                continue;
            }
            if closure.proto.name == "<call>" {
                continue;
            }
            frame_lines(f, &closure.proto, k == 0, &mut out);
        }
        out
    }

    /// Raises `e`: fills in its stack and span, then unwinds to the innermost handler.
    /// `Ok(())` means a handler took it; `Err` means it escaped (the core is reset).
    fn throw(&mut self, mut e: LispError) -> LispResult<()> {
        if e.kind() == &ErrorKind::Escape {
            return self.escape(e);
        }
        if e.stack().is_empty() {
            let trace = self.trace();
            if e.span().is_none() {
                // The innermost frame with a position (not a hand-assembled one: `call/cc`, a
                // continuation).
                if let Some(span) = trace.iter().find_map(|f| f.span.clone()) {
                    e = e.with_span(span);
                }
            }
            e.data_mut().stack = trace;
        }
        if e.is_catchable() {
            // Escape handlers are passed by: their continuations die (invariant 3).
            while self
                .handlers()
                .last()
                .is_some_and(|h| matches!(h.kind, Unwind::Escape(_)))
            {
                self.pop_handler();
            }
            if let Some(h) = self.pop_handler() {
                self.truncate_frames(h.frames);
                self.stack.truncate(h.stack_len);
                self.shield_depth = h.shield;
                if e.kind() == &ErrorKind::Cancelled {
                    // `steps` counts whole chunks: the next slice check is quiet, not the one after.
                    let quiet_until = self.steps + u64::from(self.chunk) + 1;
                    self.cold_mut().quiet_until = quiet_until;
                }
                if let Some(f) = self.frames.last_mut() {
                    f.set_pc(h.pc);
                }
                self.stack.push(Value::error(e));
                return Ok(());
            }
        } else {
            // An uncatchable error (a `:limit`) passes every `catch` by but runs the `finally`
            // blocks on its way out, each re-raising it at its end; a limit that still holds
            // is raised again in the block at its next check (error.rs).
            while let Some(h) = self.pop_handler() {
                if !matches!(h.kind, Unwind::Finally) {
                    continue;
                }
                self.truncate_frames(h.frames);
                self.stack.truncate(h.stack_len);
                self.shield_depth = h.shield;
                if let Some(f) = self.frames.last_mut() {
                    f.set_pc(h.pc);
                }
                self.stack.push(Value::error(e));
                return Ok(());
            }
        }
        self.reset();
        Err(e)
    }

    /// Unwinds an escape (invariant 3): to the nearest `finally`, which re-raises it when it is
    /// done, or to its own `call/cc`, which returns the continuation's values.
    fn escape(&mut self, e: LispError) -> LispResult<()> {
        let (tag, values) = control::escape_parts(&e);
        while let Some(h) = self.pop_handler() {
            let value = match h.kind {
                Unwind::Catch => continue,
                Unwind::Escape(t) if t != tag => continue,
                Unwind::Escape(_) => values,
                Unwind::Finally => Value::error(e),
            };
            self.truncate_frames(h.frames);
            self.stack.truncate(h.stack_len);
            self.shield_depth = h.shield;
            if let Some(f) = self.frames.last_mut() {
                f.set_pc(h.pc);
            }
            self.stack.push(value);
            return Ok(());
        }
        // Cannot happen: the continuation was live when called (invariant 7).
        self.reset();
        Err(LispError::new(
            ErrorKind::Error,
            "internal error: a continuation escape found no call/cc to return to",
        ))
    }

    /// The error or escape of calling continuation `free` (its captured values) with the
    /// values in `args` (a list).
    #[cold]
    #[inline(never)]
    fn escape_error(&self, free: &[Value], args: &Value) -> LispError {
        let (tag, index, core) = control::continuation_parts(free);
        let live = self
            .handlers()
            .get(index)
            .is_some_and(|h| h.kind == Unwind::Escape(tag));
        if live {
            control::escape_error(tag, args)
        } else {
            // A core without a number has made no continuation: `k` is another core's.
            let mine = self.cold.as_deref().map_or(0, |c| c.id);
            control::dead_continuation(core != mine)
        }
    }

    /// The `:unbound` error of a global call's callee, with the span (and innermost stack frame
    /// position) of the operator, as if it had been fetched by `Global` (the running frame has
    /// been spilled).
    #[cold]
    #[inline(never)]
    fn unbound_callee(&self, st: &State, g: u32) -> LispError {
        let mut e = st.unbound(g);
        let mut trace = self.trace();
        // The running frame was spilled: the top frame has its closure (invariant 9).
        if let (Some(f), Some(first)) = (self.frames.last(), trace.first_mut()) {
            let Some(c) = &f.closure else {
                e.data_mut().stack = trace;
                return e;
            };
            let proto = &c.proto;
            let (line, col) = proto.callee_pos(f.pc().saturating_sub(1));
            let span = (line > 0).then(|| Span::new(proto.file.clone(), line, col));
            first.span.clone_from(&span);
            if let Some(span) = span {
                e = e.with_span(span);
            }
        }
        e.data_mut().stack = trace;
        e
    }

    /// Checks arity, packs the rest list and sizes the locals of closure `c` whose `argc`
    /// arguments start at `base` (the callee is at `base - 1`).
    #[inline(always)]
    fn prepare(
        &mut self,
        st: &State,
        c: &Closure,
        base: usize,
        argc: usize,
        depth: usize,
    ) -> LispResult<()> {
        let proto = &c.proto;
        let np = proto.nparams as usize;
        if !proto.rest {
            if argc != np {
                return Err(arity_error(proto, argc));
            }
        } else {
            if argc < np {
                return Err(arity_error(proto, argc));
            }
            let rest = Value::list(self.stack.split_off(base + np));
            self.stack.push(rest);
        }
        // `frames` includes the outermost (top-level) frame, which does not count as depth.
        if depth > st.limits.max_depth {
            return Err(depth_error(st.limits.max_depth));
        }
        let want = base + proto.nlocals as usize;
        self.stack.resize_nil(want);
        Ok(())
    }

    /// Enters closure `c` in a new frame.
    #[inline]
    fn enter(&mut self, st: &State, c: Rc<Closure>, base: usize, argc: usize) -> LispResult<()> {
        self.prepare(st, &c, base, argc, self.frames.len())?;
        self.frames.push(Frame::new(c, 0, base, 0));
        Ok(())
    }

    /// Calls the procedure below the top `argc` values. In tail position the current frame is
    /// replaced (closures) or returned from (natives).
    fn call(&mut self, st: &mut State, mut argc: usize, tail: bool) -> LispResult<Flow> {
        loop {
            let fpos = self.stack.len() - argc - 1;
            match &self.stack[fpos] {
                Value::Closure(c) => {
                    let c = c.clone();
                    if tail {
                        // Replace the current frame in place: move callee and arguments down
                        // over it (swaps, so nothing is dropped until the truncate).
                        let n = self.frames.len();
                        let dst = self.frames[n - 1].start();
                        self.stack.remove_range(dst, fpos);
                        self.prepare(st, &c, dst + 1, argc, n - 1)?;
                        let old = std::mem::replace(
                            &mut self.frames[n - 1],
                            Frame::new(c, 0, dst + 1, 0),
                        );
                        frame::hand_down(&mut self.frames, n - 1, old.closure);
                    } else {
                        self.enter(st, c, fpos + 1, argc)?;
                    }
                    return Ok(Flow::Reload);
                }
                Value::Native(n) => {
                    let n = n.clone();
                    if argc < n.min || n.max.is_some_and(|m| argc > m) {
                        return Err(LispError::arity(&n.name, &n.arity_text(), argc));
                    }
                    let result = match &n.kind {
                        NativeKind::Builtin(f) => f(st, self.stack.from(fpos + 1)),
                        NativeKind::Host(f) => {
                            let args = self.stack.from(fpos + 1).to_vec();
                            call_host(&n.name, || f(args))
                        }
                        NativeKind::Suspending(_) if self.synchronous => {
                            Err(suspend_in_sync_error(&n.name))
                        }
                        NativeKind::Suspending(f) => {
                            let args = self.stack.from(fpos + 1).to_vec();
                            match call_host(&n.name, || f(args)) {
                                Ok(s) => {
                                    self.stack.truncate(fpos);
                                    self.pending = if tail {
                                        Pending::PushThenReturn
                                    } else {
                                        Pending::Push
                                    };
                                    return Ok(Flow::Suspend(s));
                                }
                                Err(e) => Err(e),
                            }
                        }
                        NativeKind::Delegating(f) => match f(st, self.stack.from(fpos + 1))? {
                            Delegate::Done(v) => Ok(v),
                            Delegate::Call(target @ Value::Closure(_)) => {
                                // Same arguments, the closure in the callee's slot.
                                self.stack[fpos] = target;
                                continue;
                            }
                            Delegate::Call(other) => Err(LispError::type_error(
                                &n.name,
                                "its helper to be a Lisp procedure",
                                &other,
                            )),
                        },
                        NativeKind::Apply => {
                            // (apply f a … lst): spread lst and call f.
                            let lst = self.stack.pop();
                            let items = lst.list_to_vec().ok_or_else(|| {
                                LispError::type_error("apply", "a list as its last argument", &lst)
                            })?;
                            st.check_list_len(items.len())?;
                            self.stack.remove(fpos);
                            argc = argc - 2 + items.len();
                            self.stack.extend(items);
                            continue;
                        }
                    };
                    if crate::work::pending() {
                        crate::work::spend(&mut self.countdown);
                    }
                    let v = result?;
                    self.stack.truncate(fpos);
                    if tail {
                        self.do_return(v);
                        return Ok(Flow::Reload);
                    }
                    self.stack.push(v);
                    return Ok(Flow::Continue);
                }
                other => {
                    return Err(LispError::new(
                        ErrorKind::TypeError,
                        format!(
                            "cannot call {} ({}): not a procedure",
                            crate::printer::write_string_limited(other, 60),
                            other.type_description()
                        ),
                    ));
                }
            }
        }
    }

    /// Keeps only the first `n` frames; the new top gets the closure of the frames removed
    /// above it if it runs the same one (invariant 9).
    fn truncate_frames(&mut self, n: usize) {
        if n == 0 || n >= self.frames.len() {
            self.frames.truncate(n);
            return;
        }
        if self.frames[n - 1].closure.is_none() {
            let c = self.frames[n..].iter_mut().find_map(|f| f.closure.take());
            self.frames[n - 1].closure = c;
        }
        self.frames.truncate(n);
    }

    /// Pops the current frame and delivers `v` to its caller (or as the result).
    #[inline(always)]
    fn do_return(&mut self, v: Value) {
        let n = self.frames.len();
        let start = self.frames[n - 1].start();
        self.truncate_frames(n - 1);
        self.stack.truncate(start);
        self.stack.push(v);
    }

    /// Runs until the outermost frame returns, a yield, or a suspension.
    ///
    /// Invariant 5 holds inside the dispatch loop: the running frame lives in the locals
    /// `closure`, `pc`, `base` and `nc`, not on `self.frames`. Closure calls, tail calls and
    /// returns switch those locals directly; everything that inspects or changes the frame stack
    /// (the generic `call`, `throw`, the step hook's slow path, exits) runs after `spill!` has
    /// pushed the running frame back, and `'reload` pops it again.
    pub(crate) fn run(&mut self, st: &mut State) -> LispResult<Exit> {
        // Invariant 8: the task's dynamic environment is the thread's for this slice.
        let mine = self
            .cold
            .as_deref_mut()
            .map_or(Value::Nil, |c| std::mem::take(&mut c.dynamic));
        let outer = control::swap_dynamic(mine);
        let exit = self.run_slice(st);
        let mine = control::swap_dynamic(outer);
        if self.cold.is_some() || !mine.is_nil() {
            self.cold_mut().dynamic = mine;
        }
        exit
    }

    /// `run` with the dynamic environment installed.
    fn run_slice(&mut self, st: &mut State) -> LispResult<Exit> {
        if self.countdown == 0 {
            self.reset_countdown(st);
        }
        if self.pending != Pending::None {
            match self.resumed {
                Resumed::Value => {
                    let pending = std::mem::replace(&mut self.pending, Pending::None);
                    self.resumed = Resumed::No;
                    if pending == Pending::PushThenReturn {
                        let v = self.stack.pop();
                        self.do_return(v);
                    }
                }
                Resumed::Error => {
                    self.pending = Pending::None;
                    self.resumed = Resumed::No;
                    let e = self
                        .cold
                        .as_deref_mut()
                        .and_then(|c| c.resume_error.take())
                        .unwrap_or_else(|| {
                            LispError::new(
                                ErrorKind::Error,
                                "internal error: a resumed error was lost",
                            )
                        });
                    self.throw(e)?;
                }
                Resumed::No => {
                    return Err(LispError::new(
                        ErrorKind::Error,
                        "resumed a suspended evaluation without a result (call resume_with first)",
                    ));
                }
            }
        }
        'reload: loop {
            let Some(frame) = self.frames.pop() else {
                let v = if self.stack.len() > 0 {
                    self.stack.pop()
                } else {
                    Value::Nil
                };
                self.stack.clear();
                return Ok(Exit::Returned(v));
            };
            let (mut pc, mut base, mut nc) = (frame.pc(), frame.base(), frame.nc());
            // The top frame always has its closure (invariant 9).
            let Some(mut closure) = frame.closure else {
                self.reset();
                return Err(LispError::new(
                    ErrorKind::Error,
                    "internal error: the top frame has no closure",
                ));
            };
            // The value stack, a local while the frame runs (invariant 5): its fields stay in
            // registers rather than being reloaded through `self`. Put back by `spill!` before
            // anything that looks at `self.stack`.
            let mut stack = std::mem::take(&mut self.stack);

            // Puts the running frame back on `self.frames` (invariant 5); always followed by
            // `continue 'reload` or a return.
            macro_rules! spill {
                () => {{
                    self.frames.push(Frame::new(closure, pc, base, nc));
                    self.stack = stack;
                }};
            }
            macro_rules! throw {
                ($e:expr) => {{
                    // Errors are off every hot path: lay them out of the way.
                    cold_path();
                    let e = $e;
                    spill!();
                    self.throw(e)?;
                    continue 'reload;
                }};
            }
            // The per-step hook (invariant 4) with the running frame in locals.
            macro_rules! tick {
                () => {{
                    self.countdown -= 1;
                    if self.countdown == 0 {
                        // Once per slice (`yield_interval` steps).
                        cold_path();
                        spill!();
                        match self.tick_slow(st) {
                            Ok(false) => {}
                            Ok(true) => return Ok(Exit::Yield),
                            Err(e) => self.throw(e)?,
                        }
                        continue 'reload;
                    }
                }};
            }
            // The per-step hook after a slow path that spilled the running frame.
            macro_rules! tick_spilled {
                () => {{
                    self.countdown -= 1;
                    if self.countdown == 0 {
                        match self.tick_slow(st) {
                            Ok(false) => {}
                            Ok(true) => return Ok(Exit::Yield),
                            Err(e) => self.throw(e)?,
                        }
                    }
                    continue 'reload;
                }};
            }
            // The generic call path (natives, rest parameters, arity and depth errors).
            macro_rules! slow_call {
                // With callee `$f` first put at `$at`, below the arguments (by then the stack
                // is back in `self`, so `insert` never takes the local's address).
                ($argc:expr, $tail:expr, $at:expr, $f:expr) => {{
                    let (at, f): (usize, Value) = ($at, $f);
                    spill!();
                    self.stack.insert(at, f);
                    slow_call!(@spilled $argc, $tail)
                }};
                ($argc:expr, $tail:expr) => {{
                    spill!();
                    slow_call!(@spilled $argc, $tail)
                }};
                (@spilled $argc:expr, $tail:expr) => {{
                    match self.call(st, $argc, $tail) {
                        Ok(Flow::Reload) if self.frames.is_empty() => continue 'reload,
                        Ok(Flow::Reload | Flow::Continue) => tick_spilled!(),
                        Ok(Flow::Suspend(s)) => return Ok(Exit::Suspend(s)),
                        Err(e) => {
                            self.throw(e)?;
                            continue 'reload;
                        }
                    }
                }};
            }
            // The primitive's global was redefined: call it like any procedure (its operands are
            // on the stack), then continue after this instruction.
            macro_rules! slow_prim {
                ($p:expr) => {{
                    let p: PrimOp = $p;
                    let argc = p.argc() as usize;
                    let at = stack.len() - argc;
                    match st.globals[p.index()].clone() {
                        Some(g) => slow_call!(argc, false, at, g),
                        None => throw!(st.unbound(to_slot(p))),
                    }
                }};
            }

            // A primitive whose operands are on the stack, off the fast paths: the redefined
            // global's call if it was redefined, else the generic primitive (errors thrown).
            macro_rules! generic_prim {
                ($p:expr) => {{
                    let p: PrimOp = $p;
                    if !st.prim_intact[p.index()] {
                        slow_prim!(p);
                    }
                    if let Err(e) = prim(&mut stack, p) {
                        throw!(e);
                    }
                }};
            }

            // The result of arithmetic or comparison primitive `p` on two integers (an
            // `:overflow` error thrown) or two floats, pushed.
            macro_rules! push_int_prim {
                ($p:expr, $x:expr, $y:expr) => {{
                    let (p, x, y): (PrimOp, i64, i64) = ($p, $x, $y);
                    if p.is_arith() {
                        match int_arith(p, x, y) {
                            Some(r) => stack.push_int(r),
                            None => throw!(numbers::overflow(p.name())),
                        }
                    } else {
                        stack.push_bool(int_holds(p, x, y));
                    }
                }};
            }
            macro_rules! push_float_prim {
                ($p:expr, $x:expr, $y:expr) => {{
                    let (p, x, y): (PrimOp, f64, f64) = ($p, $x, $y);
                    if p.is_arith() {
                        stack.push_with(|| Value::Float(float_arith(p, x, y)));
                    } else {
                        stack.push_bool(float_holds(p, x, y));
                    }
                }};
            }

            // A primitive on two operands that are not on the stack (`PrimLL`, `PrimLK`):
            // integers and floats inline, anything else pushed for the generic `prim!`.
            // A call of the running closure by itself (invariant 9): the caller's frame is
            // saved without its closure and the code stays loaded; the new frame's arguments
            // start at `$base`, `$nc` callee slots below them; `$proto` is the running code.
            macro_rules! enter_self {
                ($base:expr, $nc:expr, $proto:expr) => {{
                    let new_base = $base;
                    self.frames.push(Frame::same(pc, base, nc));
                    base = new_base;
                    nc = $nc;
                    pc = 0;
                    stack.resize_nil(base + $proto.nlocals as usize);
                    tick!();
                    continue;
                }};
            }

            // A builtin callee `$f` that accepts the `$argc` arguments from `$args`, called on the
            // fast path: its result replaces everything from `$result` up (`Call`'s callee slot
            // and arguments, or only the arguments). Anything else falls through.
            macro_rules! call_builtin_fast {
                ($f:expr, $args:expr, $argc:expr, $result:expr) => {{
                    if let Value::Native(n) = $f {
                        if let (NativeKind::Builtin(bf), true) = (&n.kind, accepts(n, $argc)) {
                            let bf = *bf;
                            match call_builtin(bf, st, stack.from($args), &mut self.countdown) {
                                Ok(v) => {
                                    stack.truncate($result);
                                    stack.push(v);
                                    tick!();
                                    continue;
                                }
                                Err(e) => throw!(e),
                            }
                        }
                    }
                }};
            }

            // A call of the callee `$f` (a reference to a value not on the stack: a global's, a
            // constant's) with the `$argc` arguments from `$at`, nothing below them
            // (`CallGlobal`, `CallConst`): a closure of that arity or a builtin on the fast
            // paths of `Call`, anything else put below its arguments for `call`.
            macro_rules! call_fixed {
                ($f:expr, $at:expr, $argc:expr, $proto:expr, $frame:lifetime) => {{
                    let (f, at, argc): (&Value, usize, usize) = ($f, $at, $argc);
                    // The fast paths of `Call`; the new frame has no callee slot.
                    if self.frames.len() < st.limits.max_depth {
                        if let Some(c) = simple_closure(f, argc) {
                            if Rc::ptr_eq(c, &closure) {
                                // A self call: the code stays loaded (invariant 9).
                                enter_self!(at, 1, $proto);
                            }
                            let c = c.clone();
                            let caller = std::mem::replace(&mut closure, c);
                            self.frames.push(Frame::new(caller, pc, base, nc));
                            base = at;
                            nc = 1;
                            pc = 0;
                            let want = base + closure.proto.nlocals as usize;
                            stack.resize_nil(want);
                            tick!();
                            continue $frame;
                        }
                    }
                    call_builtin_fast!(f, at, argc, at);
                    // Anything else: put the callee below the arguments, as for `Call`.
                    let f = f.clone();
                    slow_call!(argc, false, at, f)
                }};
            }

            // `car`/`cdr` of a local (`CarL`, `CdrL`): a pair's field pushed inline; anything
            // else (or a redefined primitive) through the generic primitive.
            macro_rules! pair_field_of_local {
                ($slot:expr, $p:expr, $field:ident) => {{
                    let a = &stack[base + $slot as usize];
                    if let (Value::Pair(c), true) = (a, st.prim_intact[$p.index()]) {
                        let v = c.$field();
                        stack.push(v);
                        continue;
                    }
                    let a = a.clone();
                    stack.push(a);
                    prim!($p)
                }};
            }

            macro_rules! prim_two {
                ($p:expr, $a:expr, $b:expr) => {{
                    let (p, a, b): (PrimOp, &Value, &Value) = ($p, $a, $b);
                    if let (Value::Int(x), Value::Int(y), true) = (a, b, st.prim_intact[p.index()])
                    {
                        let (x, y) = (*x, *y);
                        push_int_prim!(p, x, y);
                        continue;
                    }
                    if let (Some((x, y)), true) = (num_pair(a, b), st.prim_intact[p.index()]) {
                        push_float_prim!(p, x, y);
                        continue;
                    }
                    let (a, b) = (a.clone(), b.clone());
                    stack.push(a);
                    stack.push(b);
                    prim!(p)
                }};
            }

            // A fused compare-and-branch on two operands (`BranchLL`, `BranchLK`): integers and
            // floats inline; anything else (or a redefined primitive) through the generic
            // primitive, whose result the next op consumes.
            macro_rules! compare_branch {
                ($p:expr, $neg:expr, $a:expr, $b:expr, $target:expr) => {{
                    let (p, neg, a, b) = ($p, $neg, $a, $b);
                    let intact =
                        st.prim_intact[p.index()] && (!neg || st.prim_intact[PrimOp::Not.index()]);
                    let holds = match (a, b, intact) {
                        (Value::Int(x), Value::Int(y), true) => int_holds(p, *x, *y),
                        (_, _, true) if num_pair(a, b).is_some() => {
                            let (x, y) = num_pair(a, b).unwrap_or_default();
                            float_holds(p, x, y)
                        }
                        _ => {
                            let (a, b) = (a.clone(), b.clone());
                            stack.push(a);
                            stack.push(b);
                            generic_prim!(p);
                            continue;
                        }
                    };
                    pc = if holds != neg {
                        pc + 1 + usize::from(neg)
                    } else {
                        $target as usize
                    };
                }};
            }

            // An inlined primitive on the top of the stack (`Prim`).
            macro_rules! prim {
                ($p:expr) => {{
                    let p: PrimOp = $p;
                    if !st.prim_intact[p.index()] {
                        slow_prim!(p);
                    }
                    if let [.., Value::Int(x), Value::Int(y)] = *stack.as_slice() {
                        if p.is_arith() {
                            match int_arith(p, x, y) {
                                Some(r) => {
                                    stack.drop_top();
                                    let n = stack.len();
                                    stack.set_int(n - 1, r);
                                }
                                None => throw!(numbers::overflow(p.name())),
                            }
                            continue;
                        }
                        if p.is_comparison() {
                            let n = stack.len();
                            stack.truncate(n - 2);
                            stack.push_bool(int_holds(p, x, y));
                            continue;
                        }
                    }
                    if let (true, Some((x, y))) = (p.is_numeric(), float_pair(stack.as_slice())) {
                        let n = stack.len();
                        stack.truncate(n - 2);
                        push_float_prim!(p, x, y);
                        continue;
                    }
                    if let Err(e) = prim(&mut stack, p) {
                        throw!(e);
                    }
                }};
            }

            'frame: loop {
                let proto: &Proto = &closure.proto;
                let code: &[Op] = &proto.code;
                loop {
                    let op = &code[pc];
                    pc += 1;
                    match *op {
                        Op::Const(i) => stack.push(proto.consts[i as usize].clone()),
                        Op::Int(i) => stack.push_int(i64::from(i)),
                        Op::Nil => {
                            stack.push_slot();
                        }
                        Op::True => stack.push_bool(true),
                        Op::False => stack.push_bool(false),
                        Op::Local(s) => stack.push_copy(base + s as usize),
                        Op::SetLocal(s) => stack.pop_into(base + s as usize),
                        Op::LocalCell(s) => {
                            let v = match &stack[base + s as usize] {
                                Value::Cell(c) => c.borrow().clone(),
                                other => other.clone(),
                            };
                            stack.push(v);
                        }
                        Op::SetLocalCell(s) => {
                            let v = stack.pop();
                            if let Value::Cell(c) = &stack[base + s as usize] {
                                *c.borrow_mut() = v;
                            }
                        }
                        Op::MakeCell(s) => {
                            let slot = &mut stack[base + s as usize];
                            let v = std::mem::take(slot);
                            *slot = crate::collector::new_cell(v);
                        }
                        Op::Free(i) => stack.push(closure.free[i as usize].clone()),
                        Op::FreeCell(i) => {
                            let v = match &closure.free[i as usize] {
                                Value::Cell(c) => c.borrow().clone(),
                                other => other.clone(),
                            };
                            stack.push(v);
                        }
                        Op::SetFreeCell(i) => {
                            let v = stack.pop();
                            if let Value::Cell(c) = &closure.free[i as usize] {
                                *c.borrow_mut() = v;
                            }
                        }
                        Op::Global(g) => match &st.globals[g as usize] {
                            Some(Value::Closure(c)) => {
                                let c = c.clone();
                                stack.push_with(|| Value::Closure(c));
                            }
                            Some(v) => stack.push(v.clone()),
                            None => throw!(st.unbound(g)),
                        },
                        Op::SetGlobal(g) => {
                            if st.globals[g as usize].is_none() {
                                throw!(LispError::new(
                                    ErrorKind::Unbound,
                                    format!(
                                        "set!: unbound variable: {}",
                                        crate::printer::write_string_limited(
                                            &Value::Symbol(st.global_names[g as usize]),
                                            80
                                        )
                                    )
                                ));
                            }
                            let v = stack.pop();
                            st.define_global(g, v);
                        }
                        Op::DefGlobal(g) => {
                            let v = stack.pop();
                            st.define_global(g, v);
                        }
                        Op::DefMacro(g) => {
                            let v = stack.pop();
                            let name = st.global_names[g as usize];
                            st.macros.insert(name, v);
                        }
                        Op::Pop => stack.drop_top(),
                        Op::Jump(t) => pc = t as usize,
                        Op::JumpIfFalse(t) => {
                            if !stack.last().is_some_and(Value::is_truthy) {
                                pc = t as usize;
                            }
                            stack.drop_top();
                        }
                        Op::JumpIfFalseElsePop(t) => {
                            if stack.last().is_some_and(|v| !v.is_truthy()) {
                                pc = t as usize;
                            } else {
                                stack.drop_top();
                            }
                        }
                        Op::JumpIfTrueElsePop(t) => {
                            if stack.last().is_some_and(Value::is_truthy) {
                                pc = t as usize;
                            } else {
                                stack.drop_top();
                            }
                        }
                        Op::Closure(i) => {
                            let p = proto.protos[i as usize].clone();
                            let free = p
                                .captures
                                .iter()
                                .map(|c| match *c {
                                    Capture::Local(s) => stack[base + s as usize].clone(),
                                    Capture::Free(j) => closure.free[j as usize].clone(),
                                })
                                .collect();
                            stack.push(Value::Closure(Rc::new(Closure { proto: p, free })));
                        }
                        Op::Call(argc) => {
                            let argc = argc as usize;
                            let fpos = stack.len() - argc - 1;
                            // Fast path: a closure with fixed arity `argc`, within max_depth
                            // (`frames` plus the running frame is the new frame's depth).
                            if self.frames.len() < st.limits.max_depth {
                                if let Some(c) = simple_closure(&stack[fpos], argc) {
                                    // Cloned rather than moved out of its slot: reading the
                                    // slot's two fields is cheaper than a 16-byte load of a
                                    // value that was just stored field by field.
                                    if Rc::ptr_eq(c, &closure) {
                                        // A self call: the code stays loaded (invariant 9).
                                        enter_self!(fpos + 1, 0, proto);
                                    }
                                    let c = c.clone();
                                    let caller = std::mem::replace(&mut closure, c);
                                    self.frames.push(Frame::new(caller, pc, base, nc));
                                    base = fpos + 1;
                                    nc = 0;
                                    pc = 0;
                                    let want = base + closure.proto.nlocals as usize;
                                    stack.resize_nil(want);
                                    tick!();
                                    continue 'frame;
                                }
                            }
                            call_builtin_fast!(&stack[fpos], fpos + 1, argc, fpos);
                            slow_call!(argc, false)
                        }
                        Op::CallGlobal(g, argc) => {
                            let argc = argc as usize;
                            let at = stack.len() - argc;
                            let Some(f) = &st.globals[g as usize] else {
                                spill!();
                                let e = self.unbound_callee(st, g);
                                self.throw(e)?;
                                continue 'reload;
                            };
                            call_fixed!(f, at, argc, proto, 'frame)
                        }
                        Op::CallConst(k, argc) => {
                            let argc = argc as usize;
                            let at = stack.len() - argc;
                            let f = &proto.consts[k as usize];
                            call_fixed!(f, at, argc, proto, 'frame)
                        }
                        Op::TailCallGlobal(g, argc) => {
                            let argc = argc as usize;
                            let at = stack.len() - argc;
                            let Some(f) = &st.globals[g as usize] else {
                                spill!();
                                let e = self.unbound_callee(st, g);
                                self.throw(e)?;
                                continue 'reload;
                            };
                            if let Some(c) = simple_closure(f, argc) {
                                if Rc::ptr_eq(c, &closure) {
                                    // A self tail call (the global still holds the running
                                    // closure; a redefinition fails this test and takes the
                                    // path below): a jump back to the start, like `JumpLoop`.
                                    stack.restart(
                                        base,
                                        argc,
                                        base + closure.proto.nlocals as usize,
                                    );
                                    pc = 0;
                                    tick!();
                                    continue;
                                }
                                let c = c.clone();
                                // Replace the running frame: drop what it owns, sliding the
                                // arguments down to its first slot.
                                let start = base + nc - 1;
                                stack.remove_range(start, at);
                                base = start;
                                nc = 1;
                                let old = std::mem::replace(&mut closure, c);
                                let n = self.frames.len();
                                frame::hand_down(&mut self.frames, n, Some(old));
                                pc = 0;
                                let want = base + closure.proto.nlocals as usize;
                                stack.resize_nil(want);
                                tick!();
                                continue 'frame;
                            }
                            let f = f.clone();
                            slow_call!(argc, true, at, f)
                        }
                        Op::CallSelf(argc) => {
                            let at = stack.len() - argc as usize;
                            if self.frames.len() < st.limits.max_depth {
                                // No callee slot, as for `CallGlobal`.
                                enter_self!(at, 1, proto);
                            }
                            throw!(depth_error(st.limits.max_depth))
                        }
                        Op::TailCall(argc) => {
                            let argc = argc as usize;
                            let fpos = stack.len() - argc - 1;
                            let same = match simple_closure(&stack[fpos], argc) {
                                Some(c) => Rc::ptr_eq(c, &closure),
                                None => false,
                            };
                            if same {
                                // A self tail call: a jump back to the start (the callee
                                // slot is dropped with the frame's temporaries).
                                stack.restart(base, argc, base + closure.proto.nlocals as usize);
                                pc = 0;
                                tick!();
                                continue;
                            }
                            if let Some(c) = simple_closure(&stack[fpos], argc) {
                                let c = c.clone();
                                {
                                    // Replace the running frame: drop its callee slot, locals
                                    // and temporaries, sliding the callee and the arguments
                                    // down.
                                    stack.remove_range(base + nc - 1, fpos);
                                    base += nc;
                                    nc = 0;
                                    let old = std::mem::replace(&mut closure, c);
                                    let n = self.frames.len();
                                    frame::hand_down(&mut self.frames, n, Some(old));
                                    pc = 0;
                                    let want = base + closure.proto.nlocals as usize;
                                    stack.resize_nil(want);
                                    tick!();
                                    continue 'frame;
                                }
                            }
                            slow_call!(argc, true)
                        }
                        Op::Return | Op::ReturnLocal(_) => {
                            let src = match *op {
                                Op::ReturnLocal(s) => base + s as usize,
                                _ => stack.len() - 1,
                            };
                            match self.frames.pop() {
                                Some(caller) => {
                                    stack.return_from(src, base + nc - 1);
                                    pc = caller.pc();
                                    base = caller.base();
                                    nc = caller.nc();
                                    match caller.closure {
                                        // The same closure: the code stays loaded.
                                        None => continue,
                                        Some(c) => closure = c,
                                    }
                                    continue 'frame;
                                }
                                None => {
                                    let v = std::mem::take(&mut stack[src]);
                                    stack.clear();
                                    self.stack = stack;
                                    return Ok(Exit::Returned(v));
                                }
                            }
                        }
                        Op::PushHandler(t, kind) => {
                            let h = Handler {
                                // Counting the running frame (invariant 5).
                                frames: self.frames.len() + 1,
                                stack_len: stack.len(),
                                pc: t as usize,
                                shield: self.shield_depth,
                                kind: match kind {
                                    HandlerKind::Catch => Unwind::Catch,
                                    HandlerKind::Finally => Unwind::Finally,
                                },
                            };
                            self.push_handler(h);
                        }
                        Op::Capture(t) => {
                            let tag = control::next_id();
                            self.push_handler(Handler {
                                frames: self.frames.len() + 1,
                                stack_len: stack.len(),
                                pc: t as usize,
                                shield: self.shield_depth,
                                kind: Unwind::Escape(tag),
                            });
                            let index = self.handlers().len() - 1;
                            let k = control::continuation(tag, index, self.id());
                            stack.push(k);
                        }
                        Op::Escape => {
                            let e = self.escape_error(&closure.free, &stack[base]);
                            throw!(e);
                        }
                        Op::PopHandler => {
                            self.pop_handler();
                        }
                        Op::ShieldEnter => self.shield_depth += 1,
                        Op::ShieldExit(checkpoint) => {
                            // Leaving the last shield is a checkpoint: a cancellation that
                            // arrived during the cleanup goes on from here.
                            self.shield_depth = self.shield_depth.saturating_sub(1);
                            if checkpoint {
                                if let Some(e) = self.cancellation() {
                                    throw!(e);
                                }
                            }
                        }
                        Op::CheckCancel => {
                            if let Some(e) = self.cancellation() {
                                throw!(e);
                            }
                        }
                        Op::Raise => {
                            let v = stack.pop();
                            let e = match v {
                                Value::Error(data) => LispError::from_data((*data).clone()),
                                other => LispError::new(
                                    ErrorKind::Error,
                                    crate::printer::display_string(&other),
                                ),
                            };
                            throw!(e);
                        }
                        Op::Prim(p) => prim!(p),
                        Op::Loop => tick!(),
                        Op::JumpLoopNum(t, first, n) => {
                            if args::jump_nums(
                                stack.window_mut(base),
                                first as usize,
                                &code[pc..pc + n as usize],
                                &proto.consts,
                                &st.prim_intact,
                            ) {
                                pc = t as usize + 1;
                                tick!();
                            }
                        }
                        Op::Edge(i) => {
                            let e = &proto.edges[i as usize];
                            let done = edge::run(
                                stack.window_mut(base),
                                e,
                                (code, pc),
                                &proto.consts,
                                st.prims_redefined,
                                &st.prim_intact,
                            );
                            if let Some(next) = done {
                                // The step is counted at the loop's head (the folded test is
                                // pure: after the step hook's slow path the branch op runs it).
                                pc = e.head as usize + 1;
                                tick!();
                                pc = next as usize;
                            }
                        }
                        Op::TailSelfNum(g, n) => {
                            let n = n as usize;
                            let same = match &st.globals[g as usize] {
                                Some(f) => {
                                    simple_closure(f, n).is_some_and(|c| Rc::ptr_eq(c, &closure))
                                }
                                None => false,
                            };
                            if same
                                && args::jump_nums(
                                    stack.window_mut(base),
                                    0,
                                    &code[pc..pc + n],
                                    &proto.consts,
                                    &st.prim_intact,
                                )
                            {
                                // What `restart_frame` leaves: the parameters, then `nil`s.
                                stack.truncate(base + n);
                                stack.resize_nil(base + proto.nlocals as usize);
                                pc = 0;
                                tick!();
                            }
                        }
                        Op::JumpLoop(t, first, n) => {
                            let first = base + first as usize;
                            for k in (0..n as usize).rev() {
                                stack.pop_into(first + k);
                            }
                            pc = t as usize + 1;
                            tick!();
                        }
                        Op::PrimReturn(p) => {
                            // Integer arithmetic returns at once; anything else is `Prim`, and
                            // the `Return` that follows returns its result.
                            if let ([.., Value::Int(x), Value::Int(y)], true, true) =
                                (stack.as_slice(), p.is_arith(), st.prim_intact[p.index()])
                            {
                                if let Some(r) = int_arith(p, *x, *y) {
                                    match self.frames.pop() {
                                        Some(caller) => {
                                            stack.drop_two_numbers();
                                            stack.return_int(r, base + nc - 1);
                                            pc = caller.pc();
                                            base = caller.base();
                                            nc = caller.nc();
                                            match caller.closure {
                                                None => continue,
                                                Some(c) => closure = c,
                                            }
                                            continue 'frame;
                                        }
                                        None => {
                                            stack.clear();
                                            self.stack = stack;
                                            return Ok(Exit::Returned(Value::Int(r)));
                                        }
                                    }
                                }
                            }
                            if let (true, true, Some((x, y))) = (
                                p.is_arith(),
                                st.prim_intact[p.index()],
                                float_pair(stack.as_slice()),
                            ) {
                                let r = float_arith(p, x, y);
                                match self.frames.pop() {
                                    Some(caller) => {
                                        stack.drop_two_numbers();
                                        stack.return_float(r, base + nc - 1);
                                        pc = caller.pc();
                                        base = caller.base();
                                        nc = caller.nc();
                                        match caller.closure {
                                            None => continue,
                                            Some(c) => closure = c,
                                        }
                                        continue 'frame;
                                    }
                                    None => {
                                        stack.clear();
                                        self.stack = stack;
                                        return Ok(Exit::Returned(Value::Float(r)));
                                    }
                                }
                            }
                            prim!(p)
                        }
                        Op::PrimLI(p, slot, imm) => {
                            let a = &stack[base + slot as usize];
                            if let (Value::Int(x), true) = (a, st.prim_intact[p.index()]) {
                                let (x, y) = (*x, i64::from(imm));
                                push_int_prim!(p, x, y);
                            } else if let (Value::Float(x), true) = (a, st.prim_intact[p.index()]) {
                                let (x, y) = (*x, f64::from(imm));
                                push_float_prim!(p, x, y);
                            } else {
                                let a = a.clone();
                                stack.push(a);
                                stack.push_int(i64::from(imm));
                                generic_prim!(p);
                            }
                        }
                        Op::BranchLI(p, neg, slot, imm, target) => {
                            let a = &stack[base + slot as usize];
                            let intact = st.prim_intact[p.index()]
                                && (!neg || st.prim_intact[PrimOp::Not.index()]);
                            let holds = match (a, intact) {
                                (Value::Int(x), true) => int_holds(p, *x, i64::from(imm)),
                                (Value::Float(x), true) => float_holds(p, *x, f64::from(imm)),
                                _ => {
                                    let a = a.clone();
                                    stack.push(a);
                                    stack.push_int(i64::from(imm));
                                    // The next op (`Prim(Not)` with `neg`, else
                                    // `JumpIfFalse(target)`) consumes the result.
                                    generic_prim!(p);
                                    continue;
                                }
                            };
                            pc = if holds != neg {
                                pc + 1 + usize::from(neg)
                            } else {
                                target as usize
                            };
                        }
                        Op::BranchLL(p, neg, sa, sb, target) => {
                            let a = &stack[base + sa as usize];
                            let b = &stack[base + sb as usize];
                            compare_branch!(p, neg, a, b, target);
                        }
                        Op::PrimL(p, neg, slot) => {
                            let a = &stack[base + slot as usize];
                            if st.prim_intact[p.index()]
                                && (!neg || st.prim_intact[PrimOp::Not.index()])
                            {
                                // Booleans are pushed at once (a `Value` built on one path for
                                // every kind is copied whole from a temporary).
                                let flag = match p {
                                    PrimOp::NullP => Some(a.is_nil()),
                                    PrimOp::Not => Some(!a.is_truthy()),
                                    PrimOp::PairP => Some(matches!(a, Value::Pair(_))),
                                    _ => None,
                                };
                                if let Some(b) = flag {
                                    stack.push_bool(b != neg);
                                    pc += usize::from(neg);
                                    continue;
                                }
                                let v = match (p, a) {
                                    (PrimOp::Car, Value::Pair(c)) => c.car(),
                                    (PrimOp::Cdr, Value::Pair(c)) => c.cdr(),
                                    _ => match lists::cxr_fast(p, a) {
                                        Some(v) => v,
                                        None => {
                                            let a = a.clone();
                                            stack.push(a);
                                            prim!(p);
                                            continue;
                                        }
                                    },
                                };
                                if neg {
                                    stack.push_bool(!v.is_truthy());
                                    pc += 1;
                                } else {
                                    stack.push(v);
                                }
                                continue;
                            }
                            let a = a.clone();
                            stack.push(a);
                            prim!(p)
                        }
                        Op::CarL(slot) => pair_field_of_local!(slot, PrimOp::Car, car),
                        Op::CdrL(slot) => pair_field_of_local!(slot, PrimOp::Cdr, cdr),
                        Op::BranchL(p, neg, slot, target) => {
                            let a = &stack[base + slot as usize];
                            if st.prim_intact[p.index()]
                                && (!neg || st.prim_intact[PrimOp::Not.index()])
                            {
                                let holds = match p {
                                    PrimOp::NullP => a.is_nil(),
                                    PrimOp::PairP => matches!(a, Value::Pair(_)),
                                    _ => !a.is_truthy(),
                                };
                                pc = if holds != neg {
                                    pc + 1 + usize::from(neg)
                                } else {
                                    target as usize
                                };
                                continue;
                            }
                            let a = a.clone();
                            stack.push(a);
                            prim!(p)
                        }
                        Op::ShortL(p, neg, or, slot, target) => {
                            let a = &stack[base + slot as usize];
                            if st.prim_intact[p.index()]
                                && (!neg || st.prim_intact[PrimOp::Not.index()])
                            {
                                let value = match p {
                                    PrimOp::NullP => a.is_nil(),
                                    PrimOp::PairP => matches!(a, Value::Pair(_)),
                                    _ => !a.is_truthy(),
                                } != neg;
                                pc = if value == or {
                                    target as usize
                                } else {
                                    pc + 1 + usize::from(neg)
                                };
                                continue;
                            }
                            // The slow section after this op consumes the result.
                            let a = a.clone();
                            stack.push(a);
                            prim!(p)
                        }
                        Op::BranchNot(target) => {
                            if !st.prim_intact[PrimOp::Not.index()] {
                                slow_prim!(PrimOp::Not);
                            }
                            let truthy = stack.last().is_some_and(Value::is_truthy);
                            stack.drop_top();
                            pc = if truthy { target as usize } else { pc + 1 };
                        }
                        Op::PrimLK(p, sa, k) => {
                            let a = &stack[base + sa as usize];
                            let b = &proto.consts[k as usize];
                            prim_two!(p, a, b)
                        }
                        Op::BranchLK(p, neg, sa, k, target) => {
                            let a = &stack[base + sa as usize];
                            let b = &proto.consts[k as usize];
                            compare_branch!(p, neg, a, b, target);
                        }
                        Op::PrimLL(p, sa, sb) => {
                            let a = &stack[base + sa as usize];
                            let b = &stack[base + sb as usize];
                            prim_two!(p, a, b)
                        }
                        Op::Compare(i) => {
                            let c = &proto.compares[i as usize];
                            if let Some(next) = compare::run(stack.from(base), c, &st.prim_intact) {
                                pc = next as usize;
                            }
                        }
                        Op::BranchPrim(p, neg, target) => {
                            if !st.prim_intact[p.index()] {
                                slow_prim!(p);
                            }
                            let holds =
                                if let [.., Value::Int(x), Value::Int(y)] = *stack.as_slice() {
                                    int_holds(p, x, y)
                                } else if let Some((x, y)) = float_pair(stack.as_slice()) {
                                    float_holds(p, x, y)
                                } else {
                                    // Generic numbers push the boolean for the following op.
                                    if let Err(e) = prim(&mut stack, p) {
                                        throw!(e);
                                    }
                                    continue;
                                };
                            if neg && !st.prim_intact[PrimOp::Not.index()] {
                                let n = stack.len();
                                stack.truncate(n - 2);
                                stack.push_bool(holds);
                                continue;
                            }
                            let n = stack.len();
                            stack.truncate(n - 2);
                            pc = if holds != neg {
                                pc + 1 + usize::from(neg)
                            } else {
                                target as usize
                            };
                        }
                    }
                }
            }
        }
    }
}

/// An inlined primitive on the top of `stack` (the dispatch loop's, a local there: inlined,
/// so its address is never taken).
#[inline(always)]
fn prim(stack: &mut Stack, p: PrimOp) -> LispResult<()> {
    if p.argc() == 1 {
        // In place: the operand is replaced by the result (no copy of a value just stored).
        let n = stack.len();
        let top = &mut stack[n - 1];
        let v = match (p, &*top) {
            (PrimOp::Car, Value::Pair(c)) => c.car(),
            (PrimOp::Cdr, Value::Pair(c)) => c.cdr(),
            (PrimOp::Car, other) => return Err(LispError::type_error("car", "a pair", other)),
            (PrimOp::Cdr, other) => return Err(LispError::type_error("cdr", "a pair", other)),
            (PrimOp::Not, a) => Value::Bool(!a.is_truthy()),
            (PrimOp::PairP, a) => Value::Bool(matches!(a, Value::Pair(_))),
            (p, a) if lists::is_cxr(p) => lists::cxr(p, a)?,
            (_, a) => Value::Bool(a.is_nil()),
        };
        *top = v;
        return Ok(());
    }
    let b = stack.pop();
    let a = stack.pop();
    let v = match (p, &a, &b) {
        (PrimOp::Add, Value::Int(x), Value::Int(y)) => match x.checked_add(*y) {
            Some(r) => Value::Int(r),
            None => return Err(numbers::overflow("+")),
        },
        (PrimOp::Sub, Value::Int(x), Value::Int(y)) => match x.checked_sub(*y) {
            Some(r) => Value::Int(r),
            None => return Err(numbers::overflow("-")),
        },
        (PrimOp::Lt, Value::Int(x), Value::Int(y)) => Value::Bool(x < y),
        (PrimOp::Gt, Value::Int(x), Value::Int(y)) => Value::Bool(x > y),
        (PrimOp::Le, Value::Int(x), Value::Int(y)) => Value::Bool(x <= y),
        (PrimOp::Ge, Value::Int(x), Value::Int(y)) => Value::Bool(x >= y),
        (PrimOp::NumEq, Value::Int(x), Value::Int(y)) => Value::Bool(x == y),
        (PrimOp::Cons, _, _) => Value::cons(a, b),
        (PrimOp::EqP, _, _) => Value::Bool(crate::value::eq(&a, &b)),
        (PrimOp::Add | PrimOp::Sub | PrimOp::Mul, _, _) => numbers::arith2(p, &a, &b)?,
        _ => numbers::compare2(p, &a, &b)?,
    };
    stack.push(v);
    Ok(())
}

/// Marks the path that calls it as unlikely, so the dispatch loop lays it out of the way of
/// the hot paths (`std::hint::cold_path` is newer than the crate's MSRV). Errors (`throw!`)
/// and the end of a slice (`tick!`): tak −5 %, fibfp −6 %, nqueens −2 % in paired CPU time
/// (0.1 % more instructions; the other programs within noise).
#[cold]
#[inline(never)]
fn cold_path() {}

/// Calls builtin `f` (a fast path of `Call`/`CallGlobal`) and counts the work it charged
/// against the countdown (`work::spend`), so the `tick!` after it takes the slow path when a
/// native did a slice's worth. Out of line: in the dispatch loop, the check alone cost fib and
/// tak ~5 % in time (registers), though ~0.1 % in instructions.
#[inline(never)]
fn call_builtin(
    f: crate::native::BuiltinFn,
    st: &mut State,
    args: &[Value],
    countdown: &mut u32,
) -> LispResult<Value> {
    let r = f(st, args);
    if crate::work::pending() {
        crate::work::spend(countdown);
    }
    r
}

/// `f` if it is a closure that the fast call path can enter with `argc` arguments: fixed
/// arity, exactly `argc` parameters.
#[inline(always)]
fn simple_closure(f: &Value, argc: usize) -> Option<&Rc<Closure>> {
    match f {
        Value::Closure(c) if !c.proto.rest && c.proto.nparams as usize == argc => Some(c),
        _ => None,
    }
}

/// The error of a call deeper than `max_depth`.
#[cold]
#[inline(never)]
fn depth_error(max_depth: usize) -> LispError {
    LispError::new(
        ErrorKind::StackOverflow,
        format!("stack overflow: call depth exceeds max_depth ({max_depth})"),
    )
}

/// Whether native `n` accepts `argc` arguments.
#[inline(always)]
fn accepts(n: &Native, argc: usize) -> bool {
    argc >= n.min && n.max.is_none_or(|m| argc <= m)
}

fn to_slot(p: PrimOp) -> u32 {
    debug_assert!(p.index() < PRIM_COUNT);
    u32::try_from(p.index()).expect("small")
}

fn arity_error(proto: &Proto, argc: usize) -> LispError {
    let expected = crate::native::arity_text(
        proto.nparams as usize,
        if proto.rest {
            None
        } else {
            Some(proto.nparams as usize)
        },
    );
    LispError::arity(&proto.name, &expected, argc)
}

/// Calls a host function, turning a panic into a `:panic` error.
fn call_host<T>(name: &str, f: impl FnOnce() -> LispResult<T>) -> LispResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(LispError::new(
                ErrorKind::Panic,
                format!("{name} panicked: {msg}"),
            ))
        }
    }
}
