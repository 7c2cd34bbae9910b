//! Misc: `gensym error raise error-message error-kind error-irritants now-ms random assert`, the
//! R7RS error objects (`error-object? error-object-message error-object-irritants file-error?
//! read-error?`), and the internal helpers the expander and prelude use (`%unsupported`,
//! `%type-error`, `%condition`).
//!
//! `(raise obj)` of one object that is neither an error nor a keyword raises an `:error` whose
//! message is `obj` displayed and which remembers `obj` (`ErrorData::raised`): `guard` and
//! `with-exception-handler` hand their handlers `obj` itself (R7RS), through `%condition`.

use crate::builtins::{def, def_kind, str_arg};
use crate::error::{ErrorKind, LispError, LispResult};
use crate::native::{Delegate, NativeKind};
use crate::printer::display_string;
use crate::state::State;
use crate::symbol::Symbol;
use crate::value::Value;

fn gensym(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let prefix = match a.first() {
        None => "g".to_string(),
        Some(Value::Str(s)) => s.to_string(),
        Some(Value::Symbol(s)) => s.name().to_string(),
        Some(other) => return Err(LispError::type_error("gensym", "a string or symbol", other)),
    };
    Ok(Value::Symbol(Symbol::gensym(&prefix)))
}

/// Builds an error from `(kind? message irritant…)`.
fn make_error(a: &[Value]) -> LispError {
    let (kind, rest) = match a.first() {
        Some(Value::Keyword(k)) => (ErrorKind::from_name(&k.name()), &a[1..]),
        _ => (ErrorKind::Error, a),
    };
    let (message, irritants) = match rest.split_first() {
        Some((Value::Str(s), irr)) => (s.to_string(), irr.to_vec()),
        Some((other, irr)) => (display_string(other), irr.to_vec()),
        None => (kind.name().to_string(), Vec::new()),
    };
    LispError::new(kind, message).with_irritants(irritants)
}

/// Whether a raise of `e` from Lisp calls the task's exception handlers before unwinding: when
/// the innermost handler of the dynamic environment is a procedure installed in this task (not
/// a `guard`'s mark, not the `%inherited` mark of a task's start) and `e` is not a `:limit`
/// error, which passes every handler and catch.
fn dispatches(e: &LispError) -> bool {
    if matches!(e.kind(), ErrorKind::Limit | ErrorKind::Escape) {
        return false;
    }
    match crate::builtins::control::current_dynamic() {
        Value::Pair(env) => match env.cdr() {
            Value::Pair(handlers) => {
                matches!(handlers.car(), Value::Closure(_) | Value::Native(_))
            }
            _ => false,
        },
        _ => false,
    }
}

/// The prelude's Lisp procedure `name` (`%raise-dispatch`, `%error-dispatch`).
fn prelude_helper(st: &mut State, name: &str) -> LispResult<Delegate> {
    crate::prelude::global(st, Symbol::intern(name))?
        .map(Delegate::Call)
        .ok_or_else(|| LispError::new(ErrorKind::Unbound, format!("unbound variable: {name}")))
}

/// `(error [kind] message irritant…)`: raises the error; when the task has exception handlers
/// (`with-exception-handler`), the prelude's `%error-dispatch` calls them first, before
/// unwinding (R7RS).
fn error(st: &mut State, a: &[Value]) -> LispResult<Delegate> {
    let e = make_error(a);
    if dispatches(&e) {
        return prelude_helper(st, "%error-dispatch");
    }
    Err(e)
}

/// The error `(raise obj…)` raises: an error value's own data (its handler marks cleared),
/// a non-error object wrapped (`raised`), several arguments as `error` reads them.
fn raise_error(a: &[Value]) -> LispError {
    match a {
        [Value::Error(data)] => {
            let mut e = LispError::from_data((**data).clone());
            e.data_mut().dispatched = None;
            e
        }
        [obj] if !matches!(obj, Value::Keyword(_)) => {
            let mut e = LispError::new(ErrorKind::Error, display_string(obj))
                .with_irritants(vec![obj.clone()]);
            e.data_mut().raised = true;
            e
        }
        _ => make_error(a),
    }
}

/// `(raise obj)`: raises `obj`; when the task has exception handlers, the prelude's
/// `%raise-dispatch` calls them first, before unwinding (R7RS).
fn raise(st: &mut State, a: &[Value]) -> LispResult<Delegate> {
    let e = raise_error(a);
    if dispatches(&e) {
        return prelude_helper(st, "%raise-dispatch");
    }
    Err(e)
}

/// `(%make-error [kind] message irritant…)`: the error value `error` would raise, unraised.
fn make_error_value(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Error(std::rc::Rc::new(make_error(a).into_data())))
}

/// `(%raise-dispatched obj from to)`: raises `obj` (as `raise` would) marked as already handed
/// to the handlers from handler list `from` up to `to`.
fn raise_dispatched(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let mut e = raise_error(&a[..1]);
    e.data_mut().dispatched = Some(Value::cons(a[1].clone(), a[2].clone()));
    Err(e)
}

/// Whether `tail` is `list` or one of its tails (`eq?`).
fn has_tail(list: &Value, tail: &Value) -> bool {
    let mut cur = list.clone();
    let mut check = crate::value::CycleCheck::new();
    loop {
        if crate::value::eq(&cur, tail) {
            return true;
        }
        let Value::Pair(p) = &cur else {
            return false;
        };
        if check.circular(p) {
            return false;
        }
        let next = p.cdr();
        cur = next;
    }
}

/// `(%reraise-handled e from outer)`: raises the error `e`, which left a handler called for a
/// raise whose handlers start at `from`, marked as handed to every handler from `from` up to
/// `outer` (the handlers outside that handler), or further if it was already handed further.
fn reraise_handled(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let Value::Error(data) = &a[0] else {
        return Err(LispError::type_error("%reraise-handled", "an error", &a[0]));
    };
    let mut e = LispError::from_data((**data).clone());
    let to = match &data.dispatched {
        Some(Value::Pair(range)) if has_tail(&a[2], &range.cdr()) => range.cdr(),
        _ => a[2].clone(),
    };
    e.data_mut().dispatched = Some(Value::cons(a[1].clone(), to));
    Err(e)
}

/// `(%reraise e)`: raises the caught error `e` again, unchanged (marks included).
fn reraise(_: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Error(data) => Err(LispError::from_data((**data).clone())),
        other => Err(LispError::type_error("%reraise", "an error", other)),
    }
}

/// `(%dispatched-past? e entry)`: whether the error `e` was already handed to the handler at the
/// head of handler list `entry` (the one a `with-exception-handler` installed).
fn dispatched_past(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let Value::Error(data) = &a[0] else {
        return Ok(Value::Bool(false));
    };
    let Some(Value::Pair(range)) = &data.dispatched else {
        return Ok(Value::Bool(false));
    };
    let (from, to) = (range.car(), range.cdr());
    let mut cur = from;
    let mut check = crate::value::CycleCheck::new();
    while let Value::Pair(p) = &cur {
        if crate::value::eq(&cur, &to) || check.circular(p) {
            break;
        }
        if crate::value::eq(&cur, &a[1]) {
            return Ok(Value::Bool(true));
        }
        let next = p.cdr();
        cur = next;
    }
    Ok(Value::Bool(false))
}

/// `(%condition e)`: what `guard` and exception handlers receive for the caught error value
/// `e` — the object given to `raise` if it was not an error, else `e`.
fn condition(_: &mut State, a: &[Value]) -> LispResult<Value> {
    if let Value::Error(data) = &a[0] {
        if let (true, [obj]) = (data.raised, &data.irritants[..]) {
            return Ok(obj.clone());
        }
    }
    Ok(a[0].clone())
}

fn error_object_p(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Bool(matches!(a[0], Value::Error(_))))
}

/// Whether `v` is an error whose kind is one of `kinds`.
fn error_of_kind(v: &Value, kinds: &[&str]) -> Value {
    Value::Bool(matches!(v, Value::Error(e) if kinds.contains(&e.kind.name())))
}

fn file_error_p(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(error_of_kind(&a[0], &["file-error", "io"]))
}

fn read_error_p(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(error_of_kind(&a[0], &["syntax", "read-error"]))
}

fn error_object_message(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::string(
        error_arg("error-object-message", &a[0])?.message.clone(),
    ))
}

fn error_object_irritants(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::list(
        error_arg("error-object-irritants", &a[0])?
            .irritants
            .clone(),
    ))
}

fn error_arg<'a>(who: &str, v: &'a Value) -> LispResult<&'a crate::error::ErrorData> {
    match v {
        Value::Error(e) => Ok(e),
        other => Err(LispError::type_error(who, "an error", other)),
    }
}

fn error_message(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::string(
        error_arg("error-message", &a[0])?.message.clone(),
    ))
}

fn error_kind(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::keyword(error_arg("error-kind", &a[0])?.kind.name()))
}

fn error_irritants(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::list(
        error_arg("error-irritants", &a[0])?.irritants.clone(),
    ))
}

fn now_ms(_: &mut State, _: &[Value]) -> LispResult<Value> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Ok(Value::Int(i64::try_from(ms).unwrap_or(i64::MAX)))
}

fn random(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let unit = (st.next_random() >> 11) as f64 / (1u64 << 53) as f64;
    match a.first() {
        None => Ok(Value::Float(unit)),
        Some(Value::Int(n)) if *n > 0 => Ok(Value::Int((st.next_random() % (*n as u64)) as i64)),
        Some(Value::Float(f)) if *f > 0.0 => Ok(Value::Float(unit * f)),
        Some(other) => Err(LispError::type_error("random", "a positive number", other)),
    }
}

fn assert(_: &mut State, a: &[Value]) -> LispResult<Value> {
    if a[0].is_truthy() {
        return Ok(Value::Bool(true));
    }
    let msg = match a.get(1) {
        Some(m) => format!("assertion failed: {}", display_string(m)),
        None => "assertion failed".to_string(),
    };
    Err(LispError::new(ErrorKind::Other("assertion".into()), msg))
}

fn unsupported(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Err(LispError::new(
        ErrorKind::Unsupported,
        display_string(&a[0]),
    ))
}

/// `(%type-error who expected value)`: the standard type error, for the prelude.
fn type_error(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Err(LispError::type_error(
        str_arg("%type-error", &a[0])?,
        str_arg("%type-error", &a[1])?,
        &a[2],
    ))
}

pub(crate) fn install(st: &mut State) {
    def(st, "gensym", 0, Some(1), gensym);
    def_kind(st, "error", 0, None, NativeKind::Delegating(error));
    def_kind(st, "raise", 1, None, NativeKind::Delegating(raise));
    super::alias(st, "%raise", "raise");
    def(st, "%make-error", 0, None, make_error_value);
    def(st, "%raise-dispatched", 3, Some(3), raise_dispatched);
    def(st, "%reraise-handled", 3, Some(3), reraise_handled);
    def(st, "%reraise", 1, Some(1), reraise);
    def(st, "%dispatched-past?", 2, Some(2), dispatched_past);
    def(st, "error-message", 1, Some(1), error_message);
    def(st, "error-kind", 1, Some(1), error_kind);
    def(st, "error-irritants", 1, Some(1), error_irritants);
    def(st, "error-object?", 1, Some(1), error_object_p);
    def(st, "error-object-message", 1, Some(1), error_object_message);
    def(
        st,
        "error-object-irritants",
        1,
        Some(1),
        error_object_irritants,
    );
    def(st, "file-error?", 1, Some(1), file_error_p);
    def(st, "read-error?", 1, Some(1), read_error_p);
    def(st, "%condition", 1, Some(1), condition);
    def(st, "now-ms", 0, Some(0), now_ms);
    def(st, "random", 0, Some(1), random);
    def(st, "assert", 1, Some(2), assert);
    def(st, "%unsupported", 1, Some(1), unsupported);
    def(st, "%type-error", 3, Some(3), type_error);
}
