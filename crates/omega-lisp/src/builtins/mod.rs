//! The builtin procedures of SPEC §6.3, split by topic, plus the Lisp prelude (higher-order list
//! functions written in Lisp so they can call closures, tail-call and suspend like any code).
//!
//! Every builtin checks its arity (in the VM, from the registered min/max) and the types of its
//! arguments; messages name the function, the expected type and what it got.

pub(crate) mod async_surface;
pub(crate) mod chars;
pub(crate) mod control;
pub(crate) mod data;
pub(crate) mod io;
pub(crate) mod list_ops;
pub(crate) mod lists;
pub(crate) mod locks;
pub(crate) mod maps;
pub(crate) mod misc;
pub(crate) mod numbers;
pub(crate) mod numeric;
pub(crate) mod ports;
pub(crate) mod predicates;
pub(crate) mod promises;
pub(crate) mod records;
pub(crate) mod regex;
pub(crate) mod strings;
pub(crate) mod values;
pub(crate) mod vectors;

use std::collections::HashMap;
use std::rc::Rc;

use crate::error::{ErrorKind, LispError, LispResult};
use crate::native::{BuiltinFn, Native, NativeKind};
use crate::state::State;
use crate::symbol::Symbol;
use crate::value::Value;

/// The Lisp source of the prelude (map, filter, reduce, foldl, foldr, for-each, sort), then the
/// Scheme-surface procedures that call procedures (`scheme_prelude.lisp`: `member`/`assoc` with a
/// predicate, `string-map`, `string-for-each`, `string-index`).
pub(crate) const PRELUDE: &str = concat!(
    include_str!("prelude.lisp"),
    "\n",
    include_str!("scheme_prelude.lisp")
);

/// Registers a builtin as a global and in the expander's builtin table.
pub(crate) fn def(
    st: &mut State,
    name: &'static str,
    min: usize,
    max: Option<usize>,
    f: BuiltinFn,
) {
    def_kind(st, name, min, max, NativeKind::Builtin(f));
}

pub(crate) fn def_kind(
    st: &mut State,
    name: &'static str,
    min: usize,
    max: Option<usize>,
    kind: NativeKind,
) {
    let v = Value::Native(Rc::new(Native::new(name, min, max, kind)));
    let slot = st.global_slot(Symbol::intern(name));
    st.globals[slot as usize] = Some(v.clone());
    st.builtins.insert(name, v);
}

/// Defines global `name` as what global `of` holds now (a native under a private name that a
/// script's redefinition of `of` does not reach: `%raise`, `%async`, `%await`).
pub(crate) fn alias(st: &mut State, name: &'static str, of: &'static str) {
    let from = st.global_slot(Symbol::intern(of));
    let v = st.globals[from as usize].clone();
    let slot = st.global_slot(Symbol::intern(name));
    st.globals[slot as usize] = v;
}

/// Registers a runtime-bound native: one that closes over runtime state (the async surface's,
/// the lock and LLM natives), with its arity checked by the VM like every builtin's.
pub(crate) fn def_host(
    st: &mut State,
    name: &'static str,
    min: usize,
    max: Option<usize>,
    f: impl Fn(Vec<Value>) -> LispResult<Value> + 'static,
) {
    def_kind(st, name, min, max, NativeKind::Host(Rc::new(f)));
}

/// Registers a native that suspends its calling task until the future in its
/// [`crate::native::Suspension`] completes, with its arity.
pub(crate) fn def_suspending(
    st: &mut State,
    name: &'static str,
    min: usize,
    max: Option<usize>,
    f: impl Fn(Vec<Value>) -> LispResult<crate::native::Suspension> + 'static,
) {
    def_kind(st, name, min, max, NativeKind::Suspending(Rc::new(f)));
}

/// Installs every builtin.
pub(crate) fn install(st: &mut State) {
    numbers::install(st);
    predicates::install(st);
    lists::install(st);
    strings::install(st);
    maps::install(st);
    io::install(st);
    data::install(st);
    misc::install(st);
    chars::install(st);
    list_ops::install(st);
    numeric::install(st);
    regex::install(st);
    ports::install(st);
    values::install(st);
    control::install(st);
    promises::install(st);
    vectors::install(st);
    records::install(st);
}

/// An integer argument.
pub(crate) fn int_arg(who: &str, v: &Value) -> LispResult<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(LispError::type_error(who, "an integer", other)),
    }
}

/// A non-negative integer argument usable as an index.
pub(crate) fn index_arg(who: &str, v: &Value) -> LispResult<usize> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(usize::try_from(*i).unwrap_or(usize::MAX)),
        other => Err(LispError::type_error(who, "a non-negative integer", other)),
    }
}

/// A string argument.
pub(crate) fn str_arg<'a>(who: &str, v: &'a Value) -> LispResult<&'a str> {
    match v {
        Value::Str(s) => Ok(s.as_str()),
        other => Err(LispError::type_error(who, "a string", other)),
    }
}

/// A proper-list argument (a circular list is an error saying so).
pub(crate) fn list_arg(who: &str, v: &Value) -> LispResult<Vec<Value>> {
    v.list_to_vec().ok_or_else(|| {
        if crate::value::list_length(v) == crate::value::ListShape::Circular {
            crate::value::circular_list_error(who, v)
        } else {
            LispError::type_error(who, "a list", v)
        }
    })
}

/// `(f positional… :key value …)`: the positional arguments and the options.
pub(crate) fn split_options<'a>(
    who: &str,
    args: &'a [Value],
    positional: usize,
    allowed: &[&str],
) -> LispResult<(&'a [Value], HashMap<String, Value>)> {
    if args.len() < positional {
        return Err(LispError::arity(
            who,
            &format!("at least {positional}"),
            args.len(),
        ));
    }
    let (pos, rest) = args.split_at(positional);
    if rest.len() % 2 != 0 {
        return Err(LispError::new(
            ErrorKind::ArityError,
            format!("{who}: options come in :key value pairs"),
        ));
    }
    let mut opts = HashMap::new();
    for pair in rest.chunks(2) {
        let Value::Keyword(k) = &pair[0] else {
            return Err(LispError::type_error(who, "an option keyword", &pair[0]));
        };
        let name = k.name();
        if !allowed.contains(&&*name) {
            return Err(LispError::new(
                ErrorKind::Error,
                format!(
                    "{who}: unknown option :{name} (expected one of {})",
                    allowed
                        .iter()
                        .map(|a| format!(":{a}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            ));
        }
        opts.insert(name.to_string(), pair[1].clone());
    }
    Ok((pos, opts))
}

pub(crate) fn opt_int(
    who: &str,
    opts: &HashMap<String, Value>,
    key: &str,
) -> LispResult<Option<i64>> {
    match opts.get(key) {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => v
            .as_int()
            .map(Some)
            .ok_or_else(|| LispError::type_error(&format!("{who} :{key}"), "an integer", v)),
    }
}

pub(crate) fn opt_str(
    who: &str,
    opts: &HashMap<String, Value>,
    key: &str,
) -> LispResult<Option<String>> {
    match opts.get(key) {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => v
            .as_str()
            .map(|s| Some(s.to_string()))
            .ok_or_else(|| LispError::type_error(&format!("{who} :{key}"), "a string", v)),
    }
}
