//! [`Fiber`]: one evaluation (a script or a call) that runs in slices, so a host — the async
//! scheduler — can interleave many of them, cancel them and suspend them on I/O.
//!
//! # Implementation details
//!
//! A fiber owns a `VmCore` (value stack, frames, handlers — all on the heap) and, for scripts,
//! the top-level forms not yet run. Each form is expanded and compiled just before it runs, so
//! `defmacro` and `define` affect the forms after them. [`Fiber::resume`] borrows the runtime
//! state for one slice and returns a [`Step`]:
//!
//! * `Done(v)`: finished, `v` is the value of the last form;
//! * `Yield`: `yield_interval` steps passed — call `resume` again (after letting others run);
//! * `Suspend(s)`: a native asked to wait on something; resolve `s`, then call
//!   [`Fiber::resume_with`] and `resume` again.
//!
//! To wrap a fiber in a `Future`: `poll` calls `resume`; on `Yield` wake the waker and return
//! `Pending`; on `Suspend` store the request (e.g. a boxed future taken out of the
//! [`Suspension`]), poll it, and when it completes call `resume_with(result)`; on `Done`/`Err`
//! return `Ready`. Cancellation: set an interrupt hook with [`Fiber::set_interrupt_fn`] that returns
//! `Interrupt::Cancel(reason)` while the token is cancelled; the fiber raises `:cancelled` at
//! its next slice, again at every later one and at the end of every bare `catch`
//! (level-triggered), but not inside `finally` code or `shield` forms. A fiber parked in
//! `Suspend` is cancelled by `resume_with(Err(cancelled error))`.

use std::collections::VecDeque;
use std::rc::Rc;

use crate::compiler::compile_toplevel;
use crate::error::{ErrorKind, LispError, LispResult};
use crate::expander::expand_toplevel;
use crate::native::Suspension;
use crate::reader::{Syntax, SyntaxKind};
use crate::state::Shared;
use crate::value::Value;
use crate::vm::{Exit, Hook, Interrupt, VmCore};

/// The outcome of one slice of a [`Fiber`].
#[derive(Debug)]
pub(crate) enum Step {
    /// The evaluation finished with this value.
    Done(Value),
    /// The step budget of this slice (`yield_interval`) ran out; resume when convenient.
    Yield,
    /// A native function asked to suspend; resolve the request, then `resume_with`.
    Suspend(Suspension),
}

/// One evaluation running on a runtime, resumable in slices.
pub(crate) struct Fiber {
    shared: Rc<Shared>,
    core: VmCore,
    /// A script's forms not yet run; `None` for a call. Boxed: every Lisp task has a fiber
    /// and most are calls (`async`), which should not carry a script's fields (SPEC §9,
    /// memory per suspended task).
    script: Option<Box<Script>>,
}

/// What only a script's fiber has: its file name, the top-level forms not yet run and the
/// value of the last form run (a call's fiber ends with its call's value: 16 bytes less in
/// every task).
struct Script {
    forms: VecDeque<Syntax>,
    file: Rc<str>,
    last: Value,
}

impl std::fmt::Debug for Fiber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fiber")
            .field("file", &self.script.as_ref().map_or("<call>", |s| &*s.file))
            .field("core", &self.core)
            .field(
                "forms_left",
                &self.script.as_ref().map_or(0, |s| s.forms.len()),
            )
            .field("done", &self.core.done)
            .finish()
    }
}

fn is_toplevel_begin(s: &Syntax) -> Option<&[Syntax]> {
    match &s.kind {
        SyntaxKind::List(items, None)
            if items[0].as_symbol().is_some_and(|h| &*h.name() == "begin") =>
        {
            Some(&items[1..])
        }
        _ => None,
    }
}

impl Fiber {
    pub(crate) fn for_forms(shared: Rc<Shared>, forms: Vec<Syntax>, file: Rc<str>) -> Fiber {
        Fiber {
            shared,
            core: VmCore::new(),
            script: Some(Box::new(Script {
                forms: forms.into(),
                file,
                last: Value::Nil,
            })),
        }
    }

    pub(crate) fn for_call(shared: Rc<Shared>, f: Value, args: Vec<Value>) -> LispResult<Fiber> {
        let mut core = VmCore::new();
        {
            let mut st = shared.state.try_borrow_mut().map_err(|_| busy())?;
            core.start_call(&mut st, f, args)?;
        }
        Ok(Fiber {
            shared,
            core,
            script: None,
        })
    }

    /// Installs the interrupt hook polled by the step hook (every `yield_interval` steps) and
    /// at the end of every bare `catch` handler. The hook is level-triggered: it should keep
    /// returning `Interrupt::Cancel` for as long as the evaluation is cancelled; the fiber
    /// raises it again at each poll except inside `finally` code and `shield` forms.
    ///
    /// A plain function, kept inline in the fiber's core: a closure would be boxed in the
    /// core's cold part, which a task should not need (SPEC §9; tests use closures,
    /// `set_interrupt`).
    pub(crate) fn set_interrupt_fn(&mut self, hook: fn() -> Option<Interrupt>) {
        self.core.set_hook(Some(Hook::Fn(hook)));
    }

    /// Installs a closure as the interrupt hook (see `set_interrupt_fn`).
    #[cfg(test)]
    pub fn set_interrupt(&mut self, hook: impl FnMut() -> Option<Interrupt> + 'static) {
        self.core.set_hook(Some(Hook::Boxed(Box::new(hook))));
    }

    /// Bits its owner keeps in the fiber (in its VM core's padding; the fiber never reads
    /// them): a task's flags (`task.rs`).
    pub(crate) fn owner_bits(&self) -> u8 {
        self.core.owner_bits
    }

    /// Sets the bits [`Fiber::owner_bits`] returns.
    pub(crate) fn set_owner_bits(&mut self, bits: u8) {
        self.core.owner_bits = bits;
    }

    /// The runtime it runs on.
    pub(crate) fn shared(&self) -> &Rc<Shared> {
        &self.shared
    }

    /// Steps taken so far (counted at whole slices of the step hook).
    pub fn steps(&self) -> u64 {
        self.core.steps
    }

    #[cfg(test)]
    /// Whether the evaluation has finished (successfully or not).
    pub fn is_done(&self) -> bool {
        self.core.done
    }

    /// Whether the running code is in a shielded region (`finally`, `shield`): what it
    /// suspends on must not be interrupted by the evaluation's cancellation.
    pub(crate) fn in_shield(&self) -> bool {
        self.core.in_shield()
    }

    #[cfg(test)]
    /// Whether it is parked on a suspension, waiting for [`Fiber::resume_with`].
    pub fn is_suspended(&self) -> bool {
        self.core.is_suspended()
    }

    #[cfg(test)]
    /// Current (value stack, frame stack, handler stack) lengths — for tests and introspection.
    pub fn stack_sizes(&self) -> (usize, usize, usize) {
        self.core.sizes()
    }

    #[cfg(test)]
    /// Slots allocated in the value stack, for tests.
    pub fn stack_capacity(&self) -> usize {
        self.core.stack_capacity()
    }

    /// Supplies the result of the native call that suspended: the evaluation continues as if
    /// the native had returned `Ok(v)` or raised `Err(e)` (unwinding through `finally`).
    pub fn resume_with(&mut self, result: LispResult<Value>) {
        self.core.resume_with(result);
    }

    /// Runs one slice. See the module docs for the protocol.
    pub fn resume(&mut self) -> LispResult<Step> {
        if self.core.done {
            return Err(LispError::new(
                ErrorKind::Error,
                "this evaluation has already finished",
            ));
        }
        if self.core.is_suspended() && !self.core.has_resume_value() {
            // A host mistake, not a failure of the evaluation: it stays resumable.
            return Err(LispError::new(
                ErrorKind::Error,
                "resumed a suspended evaluation without its result (call resume_with first)",
            ));
        }
        let shared = self.shared.clone();
        let mut st = shared.state.try_borrow_mut().map_err(|_| busy())?;
        loop {
            if !self.core.is_idle() {
                match self.core.run(&mut st) {
                    Ok(Exit::Returned(v)) => match self.script.as_mut() {
                        Some(script) => script.last = v,
                        None => {
                            self.core.done = true;
                            return Ok(Step::Done(v));
                        }
                    },
                    Ok(Exit::Yield) => return Ok(Step::Yield),
                    Ok(Exit::Suspend(s)) => return Ok(Step::Suspend(s)),
                    Err(e) => {
                        self.finish();
                        return Err(e);
                    }
                }
            }
            let Some(script) = self.script.as_mut() else {
                self.core.done = true;
                return Ok(Step::Done(Value::Nil));
            };
            let Some(form) = script.forms.pop_front() else {
                self.core.done = true;
                return Ok(Step::Done(std::mem::take(&mut script.last)));
            };
            // A top-level `begin` splices its forms, so a `defmacro` inside it applies to the
            // forms after it.
            if let Some(items) = is_toplevel_begin(&form) {
                for item in items.iter().rev() {
                    script.forms.push_front(item.clone());
                }
                if items.is_empty() {
                    script.last = Value::Nil;
                }
                continue;
            }
            // Expansion runs under this fiber's steps and interrupt (issue 10, class 5).
            self.core.lend_budget(&mut st);
            let expanded = expand_toplevel(&mut st, &form);
            self.core.reclaim_budget(&mut st);
            let compiled = expanded
                .and_then(|(expr, vars)| compile_toplevel(&expr, &vars, script.file.clone()));
            match compiled {
                Ok(proto) => self.core.start_proto(proto),
                Err(e) => {
                    self.finish();
                    return Err(e);
                }
            }
        }
    }

    fn finish(&mut self) {
        self.core.done = true;
        self.script = None;
    }

    /// Runs to completion, treating `Yield` as "continue". Fails if a native suspends.
    pub fn run_to_end(&mut self) -> LispResult<Value> {
        self.core.set_synchronous();
        loop {
            match self.resume()? {
                Step::Done(v) => return Ok(v),
                Step::Yield => {}
                Step::Suspend(_) => {
                    self.finish();
                    return Err(LispError::new(
                        ErrorKind::Error,
                        "a suspending function (await, sleep, llm.infer, an async host function…) was called in a synchronous evaluation: run the script with Runtime::eval_str(..).await",
                    ));
                }
            }
        }
    }
}

fn busy() -> LispError {
    LispError::new(
        ErrorKind::Error,
        "the runtime is busy: a host function tried to re-enter it",
    )
}

#[cfg(test)]
#[path = "fiber_tests.rs"]
mod tests;
