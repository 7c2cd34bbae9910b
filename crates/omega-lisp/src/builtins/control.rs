//! Scheme control (SPEC §6.9): escaping continuations (`call/cc`,
//! `call-with-current-continuation`, `call/ec`) and the task's dynamic environment, on which
//! the prelude builds `parameterize` and `with-exception-handler`.
//!
//! # Implementation details
//!
//! * `call/cc` is a closure over a hand-assembled [`Proto`]: the dynamic environment saved in
//!   local 1, `Local(0)` (the procedure `f`), `Capture` (push an escape handler and the
//!   continuation `k`), `Call(1)`, `PopHandler`, then `(%set-dynamic-env! saved)` and `Return`.
//!   The escape handler's target is that restore, so an escape that reaches it returns the
//!   continuation's values from `call/cc` in the dynamic environment `call/cc` was called in.
//! * A continuation is a closure over another hand-assembled proto (`Escape`, `Return`; rest
//!   parameter) whose captured values are its tag, the index of its escape handler and the
//!   number of the VM core that made it. Calling it while its handler is still in place
//!   raises an [`ErrorKind::Escape`] "error" carrying the tag and the values; the VM unwinds
//!   it through `finally` blocks (and so `dynamic-wind` after-thunks, parameter restores) to
//!   the handler, never into a `catch` (`vm.rs` invariants 3 and 7).
//! * Re-entry is not supported: calling a continuation whose `call/cc` has returned (or that
//!   belongs to another task) raises `:unsupported` and unwinds nothing.
//! * The dynamic environment is one Lisp value per task, opaque to Rust (the prelude keeps a
//!   pair `(parameter-bindings . exception-handlers)` in it). The running VM core installs its
//!   own as the thread's current one for each slice (`vm.rs` invariant 8); `%dynamic-env` and
//!   `%set-dynamic-env!` read and replace it. A task spawned by `async` starts with the
//!   environment current at the spawn ([`inherit`]), its handler list behind the mark
//!   `%inherited`. `raise` and `error` (`misc.rs`) read the handler list to decide whether
//!   to call the task's handlers before unwinding; a `try` with a `catch` puts the mark
//!   `%catch-mark` in front of them for its body (`%push-catch-mark`), so its `catch` takes
//!   an error raised there first, as before.
//!
//! # Invariants
//!
//! 1. Tags and core numbers come from one per-thread counter, so no two escape handlers, and
//!    no two cores, on a thread share one; a continuation can only match its own handler.
//! 2. The current dynamic environment is only replaced by `%set-dynamic-env!` (whose callers
//!    restore the old one in a `finally`) and by `swap_dynamic` around a slice.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::builtins::values::values_of;
use crate::builtins::{def, def_kind};
use crate::bytecode::{Op, Proto};
use crate::error::{ErrorKind, LispError, LispResult};
use crate::native::{Native, NativeKind};
use crate::state::State;
use crate::symbol::Symbol;
use crate::value::{Closure, Value};

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
    static DYNAMIC: RefCell<Value> = const { RefCell::new(Value::Nil) };
    // Saves the dynamic environment in local 1, calls (f k) behind the escape handler, and,
    // returned to or escaped to (pc 7), restores that environment before returning the value.
    static CALLCC: Rc<Proto> = Rc::new(Proto {
        nlocals: 2,
        ..proto(
            "call/cc",
            1,
            false,
            vec![
                Op::Const(0),
                Op::Call(0),
                Op::SetLocal(1),
                Op::Local(0),
                Op::Capture(7),
                Op::Call(1),
                Op::PopHandler,
                Op::Const(1),
                Op::Local(1),
                Op::Call(1),
                Op::Pop,
                Op::Return,
            ],
            vec![
                Value::Native(Rc::new(Native::new(
                    "%dynamic-env",
                    0,
                    Some(0),
                    NativeKind::Builtin(dynamic_env),
                ))),
                Value::Native(Rc::new(Native::new(
                    "%set-dynamic-env!",
                    1,
                    Some(1),
                    NativeKind::Builtin(set_dynamic_env),
                ))),
            ],
        )
    });
    static CHECK_CANCEL: Rc<Proto> = Rc::new(proto(
        "%check-cancel",
        0,
        false,
        vec![Op::CheckCancel, Op::Nil, Op::Return],
        Vec::new(),
    ));
    static CONTINUATION: Rc<Proto> = Rc::new(proto(
        "continuation",
        0,
        true,
        vec![Op::Escape, Op::Return],
        Vec::new(),
    ));
}

/// A hand-assembled prototype without source positions.
fn proto(name: &str, nparams: u32, rest: bool, code: Vec<Op>, consts: Vec<Value>) -> Proto {
    Proto {
        name: name.into(),
        nparams,
        rest,
        nlocals: nparams + u32::from(rest),
        pos: vec![(0, 0); code.len()],
        code,
        file: Rc::from("<builtin>"),
        consts,
        protos: Vec::new(),
        captures: Vec::new(),
        callee_pos: Vec::new(),
        regions: Vec::new(),
        edges: Vec::new(),
        compares: Vec::new(),
    }
}

/// A fresh number, unique on this thread (invariant 1): escape tags and VM core numbers.
pub(crate) fn next_id() -> u64 {
    NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    })
}

/// The continuation of the escape handler with `tag` at `index` of core `core`'s handlers.
pub(crate) fn continuation(tag: u64, index: usize, core: u64) -> Value {
    let int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    Value::Closure(Rc::new(Closure {
        proto: CONTINUATION.with(Rc::clone),
        free: Box::new([int(tag), int(index as u64), int(core)]),
    }))
}

/// A continuation's tag, handler index and core number (from its captured values).
pub(crate) fn continuation_parts(free: &[Value]) -> (u64, usize, u64) {
    let n = |i: usize| match free.get(i) {
        Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    };
    (n(0), usize::try_from(n(1)).unwrap_or(usize::MAX), n(2))
}

/// The escape to the live continuation `tag` with the values in list `args`.
pub(crate) fn escape_error(tag: u64, args: &Value) -> LispError {
    let values = values_of(args.list_to_vec().unwrap_or_default());
    let tag = Value::Int(i64::try_from(tag).unwrap_or(i64::MAX));
    LispError::new(ErrorKind::Escape, "continuation escape").with_irritants(vec![tag, values])
}

/// The tag and values of an escape made by [`escape_error`].
pub(crate) fn escape_parts(e: &LispError) -> (u64, Value) {
    match e.irritants() {
        [Value::Int(tag), values] => (u64::try_from(*tag).unwrap_or(0), values.clone()),
        _ => (0, Value::Nil),
    }
}

/// The error of calling a continuation that is no longer live (re-entry is not supported).
pub(crate) fn dead_continuation(other_task: bool) -> LispError {
    let msg = if other_task {
        "continuation called from another task: continuations only escape within the task \
         whose call/cc made them (re-entry is not supported)"
    } else {
        "continuation re-entry is not supported: its call/cc has already returned \
         (continuations only escape to a call/cc still running)"
    };
    LispError::new(ErrorKind::Unsupported, msg)
}

/// Makes `env` the thread's current dynamic environment, returning the one it replaces
/// (`vm.rs` invariant 8).
pub(crate) fn swap_dynamic(env: Value) -> Value {
    DYNAMIC.with(|d| std::mem::replace(&mut *d.borrow_mut(), env))
}

/// The thread's current dynamic environment.
pub(crate) fn current_dynamic() -> Value {
    DYNAMIC.with(|d| d.borrow().clone())
}

/// The thunk a task spawned now should run so that it starts with the current dynamic
/// environment: `thunk` itself when that is empty, else a closure that installs it and
/// tail-calls `thunk` (so it leaves no frame in stack traces).
///
/// The child's exception handlers start with the mark `%inherited`: handlers installed by the
/// parent are not called by a `raise` in the child before it unwinds (the parent's
/// `with-exception-handler` sees the error when it awaits the child, after unwinding), while
/// `raise-continuable` looks past the mark to them.
pub(crate) fn inherit(thunk: Value) -> Value {
    let mut env = current_dynamic();
    if env.is_nil() {
        return thunk;
    }
    if let Value::Pair(p) = &env {
        let handlers = p.cdr();
        let inherited = Value::Symbol(Symbol::intern("%inherited"));
        let marked = matches!(&handlers, Value::Pair(h) if crate::value::eq(&h.car(), &inherited));
        if matches!(handlers, Value::Pair(_)) && !marked {
            env = Value::cons(p.car(), Value::cons(inherited, handlers));
        }
    }
    let set = Value::Native(Rc::new(Native::new(
        "%set-dynamic-env!",
        1,
        Some(1),
        NativeKind::Builtin(set_dynamic_env),
    )));
    let code = vec![
        Op::Const(0),
        Op::Free(0),
        Op::Call(1),
        Op::Pop,
        Op::Free(1),
        Op::TailCall(0),
    ];
    Value::Closure(Rc::new(Closure {
        proto: Rc::new(proto("<task>", 0, false, code, vec![set])),
        free: Box::new([env, thunk]),
    }))
}

/// The mark `%catch-mark` in a handler list: a `try` with a `catch` between a raise and the
/// handlers outside the `try`, which must not be called before the `try` catches.
fn catch_mark() -> Value {
    Value::Symbol(Symbol::intern("%catch-mark"))
}

/// `(%push-catch-mark)`, at the entry of a `try` that has a `catch` (the expander adds it):
/// when the innermost exception handler is a procedure (`with-exception-handler`'s), puts
/// `%catch-mark` in front of it, so that a `raise` or `error` inside the `try` unwinds to the
/// `catch` rather than calling that handler first; returns the environment to restore, or
/// `#f` when nothing changed.
fn push_catch_mark(_: &mut State, _: &[Value]) -> LispResult<Value> {
    let env = current_dynamic();
    let Value::Pair(p) = &env else {
        return Ok(Value::Bool(false));
    };
    let handlers = p.cdr();
    match &handlers {
        Value::Pair(h) if matches!(h.car(), Value::Closure(_) | Value::Native(_)) => {
            let marked = Value::cons(p.car(), Value::cons(catch_mark(), handlers.clone()));
            Ok(swap_dynamic(marked))
        }
        _ => Ok(Value::Bool(false)),
    }
}

/// `(%pop-catch-mark old v)`, when the same `try`'s body returns `v` and first thing in its
/// `catch`: restores `old` unless it is `#f`; returns `v`.
fn pop_catch_mark(_: &mut State, a: &[Value]) -> LispResult<Value> {
    if !matches!(a[0], Value::Bool(false)) {
        drop(swap_dynamic(a[0].clone()));
    }
    Ok(a[1].clone())
}

/// `(%dynamic-env)`: the running task's dynamic environment.
fn dynamic_env(_: &mut State, _: &[Value]) -> LispResult<Value> {
    Ok(current_dynamic())
}

/// `(%set-dynamic-env! env)`: replaces it (callers restore the old one in a `finally`).
fn set_dynamic_env(_: &mut State, a: &[Value]) -> LispResult<Value> {
    drop(swap_dynamic(a[0].clone()));
    Ok(Value::Nil)
}

/// `(%same-code? a b)`: whether `a` and `b` are closures of the same lambda (the prelude
/// recognises parameter objects by it).
fn same_code(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Bool(matches!(
        (&a[0], &a[1]),
        (Value::Closure(x), Value::Closure(y)) if Rc::ptr_eq(&x.proto, &y.proto)
    )))
}

/// Defines `name` as a global bound to the closure of `proto`.
fn def_closure(st: &mut State, name: &'static str, proto: Rc<Proto>) {
    let v = Value::Closure(Rc::new(Closure {
        proto,
        free: Box::new([]),
    }));
    let slot = st.global_slot(Symbol::intern(name));
    st.globals[slot as usize] = Some(v.clone());
    st.builtins.insert(name, v);
}

pub(crate) fn install(st: &mut State) {
    let callcc = CALLCC.with(Rc::clone);
    def_closure(st, "call/cc", callcc.clone());
    def_closure(st, "call-with-current-continuation", callcc.clone());
    def_closure(st, "call/ec", callcc);
    // `(%check-cancel)`: raises the task's cancellation now, unless a shield masks it (the
    // check at the end of a bare `catch`), for handlers that may not return.
    def_closure(st, "%check-cancel", CHECK_CANCEL.with(Rc::clone));
    def(st, "%same-code?", 2, Some(2), same_code);
    // The unique value a parameter answers its converter to (`make-parameter` in the prelude).
    let tag = Value::list(vec![Value::Symbol(Symbol::intern("parameter"))]);
    let slot = st.global_slot(Symbol::intern("%param-tag"));
    st.globals[slot as usize] = Some(tag);
    def(st, "%dynamic-env", 0, Some(0), dynamic_env);
    def(st, "%push-catch-mark", 0, Some(0), push_catch_mark);
    def(st, "%pop-catch-mark", 2, Some(2), pop_catch_mark);
    def_kind(
        st,
        "%set-dynamic-env!",
        1,
        Some(1),
        NativeKind::Builtin(set_dynamic_env),
    );
}
