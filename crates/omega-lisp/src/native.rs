//! Native (Rust) procedures: builtins, host functions and suspending host functions.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use crate::error::LispResult;
use crate::state::State;
use crate::value::Value;

/// A builtin: a plain function over the interpreter state and the arguments.
pub(crate) type BuiltinFn = fn(&mut State, &[Value]) -> LispResult<Value>;

/// What a [`DelegatingFn`] answers.
pub(crate) enum Delegate {
    /// The result.
    Done(Value),
    /// Tail-call this Lisp closure with the same arguments instead (for the cases that must call
    /// a procedure, e.g. `member` with a predicate).
    Call(Value),
}

/// A builtin that either answers or hands its call to a Lisp closure ([`Delegate`]).
pub(crate) type DelegatingFn = fn(&mut State, &[Value]) -> LispResult<Delegate>;

/// A host function registered with [`crate::Runtime::register_fn`].
pub(crate) type HostFn = Rc<dyn Fn(Vec<Value>) -> LispResult<Value>>;

/// A host function that asks the VM to suspend (see [`Suspension`]).
pub(crate) type SuspendingFn = Rc<dyn Fn(Vec<Value>) -> LispResult<Suspension>>;

/// What a suspending native hands its task: the future the task polls while it is parked (an
/// await, a sleep, an LLM call, an async host function). When it completes, its result becomes
/// the value (or the error) of the native's call.
pub(crate) type AsyncRequest = Pin<Box<dyn Future<Output = LispResult<Value>>>>;

/// A request from a native to suspend the calling evaluation until its future completes. The VM
/// returns it in `Step::Suspend`; the task that runs the fiber (`task.rs`) polls the future and
/// resumes the fiber with its result. Typed, so there is nothing to downcast.
///
/// A plain `sleep` is its own variant, a number of milliseconds with no boxed future: the task
/// keeps the scheduler's sleep inline while it is parked (no `Box<dyn Future>` per sleeping
/// task, SPEC §9, memory per task). Anything else is a boxed future.
pub(crate) enum Suspension {
    /// Wait for this future.
    Request(AsyncRequest),
    /// `(sleep ms)`: wait this many milliseconds (`omega_sched::sleep`; `nil` when it ends,
    /// `:cancelled` if the task is cancelled meanwhile).
    Sleep(u64),
}

impl Suspension {
    /// Suspends until `request` completes.
    pub(crate) fn new(request: impl Future<Output = LispResult<Value>> + 'static) -> Suspension {
        Suspension::Request(Box::pin(request))
    }

    /// Suspends for `ms` milliseconds on the scheduler's clock.
    pub(crate) fn sleep(ms: u64) -> Suspension {
        Suspension::Sleep(ms)
    }

    /// The future to poll, boxed whatever the variant (a sleep as `omega_sched::sleep`
    /// mapped to its Lisp result).
    pub(crate) fn into_request(self) -> AsyncRequest {
        match self {
            Suspension::Request(r) => r,
            Suspension::Sleep(ms) => Box::pin(futures::FutureExt::map(
                omega_sched::sleep(Duration::from_millis(ms)),
                sleep_result,
            )),
        }
    }
}

/// What a finished `omega_sched::sleep` gives the Lisp call: `nil`, or `:cancelled`.
pub(crate) fn sleep_result(r: Result<(), omega_sched::Cancelled>) -> LispResult<Value> {
    match r {
        Ok(()) => Ok(Value::Nil),
        Err(c) => Err(crate::task::cancel_error(&c.reason)),
    }
}

impl fmt::Debug for Suspension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Suspension(..)")
    }
}

/// How a native is implemented.
#[derive(Clone)]
pub(crate) enum NativeKind {
    Builtin(BuiltinFn),
    Host(HostFn),
    Suspending(SuspendingFn),
    /// `apply`: handled by the VM itself (it must call a procedure).
    Apply,
    /// A builtin that may hand its call to a Lisp closure (the VM re-dispatches in place).
    Delegating(DelegatingFn),
}

/// A native procedure: name, arity and implementation.
pub struct Native {
    pub(crate) name: Rc<str>,
    pub(crate) min: usize,
    pub(crate) max: Option<usize>,
    pub(crate) kind: NativeKind,
}

impl Native {
    pub(crate) fn new(name: &str, min: usize, max: Option<usize>, kind: NativeKind) -> Native {
        Native {
            name: Rc::from(name),
            min,
            max,
            kind,
        }
    }

    /// The name it was registered under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Describes the arity for error messages: `1 argument`, `2 to 3 arguments`, `at least 1
    /// argument`.
    pub(crate) fn arity_text(&self) -> String {
        arity_text(self.min, self.max)
    }
}

/// `1 argument`, `2 to 3 arguments`, `at least 1 argument`.
pub(crate) fn arity_text(min: usize, max: Option<usize>) -> String {
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    match max {
        Some(max) if max == min => format!("{min} {}", plural(min)),
        Some(max) => format!("{min} to {max} {}", plural(max)),
        None => format!("at least {min} {}", plural(min)),
    }
}

impl fmt::Debug for Native {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#<procedure {}>", self.name)
    }
}
