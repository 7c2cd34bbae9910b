//! R7RS vectors (issue 15): `vector? make-vector vector vector-ref vector-set! vector-length
//! vector-fill! vector-copy vector-copy! vector-append vector->list list->vector
//! vector->string string->vector`. `vector-map` and `vector-for-each` call procedures, so they
//! are in `scheme_prelude.lisp` (over `vector->list`/`list->vector`).
//!
//! # Invariants
//!
//! 1. A vector is never longer than `max_list_len`, and one about to be allocated is checked
//!    against the heap limit *with its size* first, so `(make-vector 1000000000000 0)` is a
//!    `:limit` error, not an allocation failure.
//! 2. A bad index or range names the procedure, the index and the vector's length.
//! 3. Stores go through [`LispVector::set`]/[`LispVector::set_range`], which register the
//!    vector with the cycle collector when a heap value is stored (see `collector.rs`).

use std::rc::Rc;

use crate::builtins::{def, list_arg, str_arg};
use crate::error::{ErrorKind, LispError, LispResult};
use crate::state::State;
use crate::value::{LispVector, Value};

/// Fails with `:limit` if `n` values are more than a vector may hold, or if allocating them
/// would pass the heap limit.
fn check_size(st: &State, n: usize) -> LispResult<()> {
    st.check_list_len(n)?;
    if let (Some(max), Some(used)) = (st.limits.max_heap_bytes, crate::heap::in_use()) {
        let bytes = n.saturating_mul(std::mem::size_of::<Value>());
        if used.saturating_add(bytes) > max {
            return Err(crate::heap::limit_error(max));
        }
    }
    Ok(())
}

/// A vector argument.
fn vector_arg<'a>(who: &str, v: &'a Value) -> LispResult<&'a Rc<LispVector>> {
    match v {
        Value::Vector(vec) => Ok(vec),
        other => Err(LispError::type_error(who, "a vector", other)),
    }
}

/// A length or index argument: a non-negative integer.
fn size_arg(who: &str, v: &Value) -> LispResult<usize> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(usize::try_from(*i).unwrap_or(usize::MAX)),
        other => Err(LispError::type_error(who, "a non-negative integer", other)),
    }
}

/// `who: index I out of range for a vector of length N`.
fn out_of_range(who: &str, what: &str, i: &Value, len: usize) -> LispError {
    LispError::new(
        ErrorKind::Error,
        format!(
            "{who}: {what} {} out of range for a vector of length {len}",
            crate::printer::write_string_limited(i, 40)
        ),
    )
}

/// An index into a vector of `len` elements.
fn index(who: &str, v: &Value, len: usize) -> LispResult<usize> {
    match v {
        Value::Int(i) if *i >= 0 && (*i as u64) < len as u64 => Ok(*i as usize),
        Value::Int(_) => Err(out_of_range(who, "index", v, len)),
        other => Err(LispError::type_error(who, "an integer index", other)),
    }
}

/// The optional `start`/`end` arguments at `a[from]`, `a[from + 1]` for a sequence of `len`
/// elements (R7RS: `0 <= start <= end <= len`).
pub(crate) fn range_args(
    who: &str,
    a: &[Value],
    from: usize,
    len: usize,
) -> LispResult<(usize, usize)> {
    let start = match a.get(from) {
        None => 0,
        Some(v) => match v {
            Value::Int(i) if *i >= 0 && (*i as u64) <= len as u64 => *i as usize,
            Value::Int(_) => return Err(out_of_range(who, "start", v, len)),
            other => return Err(LispError::type_error(who, "an integer start", other)),
        },
    };
    let end = match a.get(from + 1) {
        None => len,
        Some(v) => match v {
            Value::Int(i) if *i >= start as i64 && (*i as u64) <= len as u64 => *i as usize,
            Value::Int(_) => {
                return Err(LispError::new(
                    ErrorKind::Error,
                    format!(
                        "{who}: end {} out of range for start {start} and a vector of length \
                         {len}",
                        crate::printer::write_string_limited(v, 40)
                    ),
                ))
            }
            other => return Err(LispError::type_error(who, "an integer end", other)),
        },
    };
    Ok((start, end))
}

fn is_vector(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Bool(matches!(a[0], Value::Vector(_))))
}

/// `(make-vector k [fill])`: R7RS leaves the default fill unspecified; Omega uses `nil`, its
/// unspecified value everywhere else.
fn make_vector(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let n = size_arg("make-vector", &a[0])?;
    check_size(st, n)?;
    let fill = a.get(1).cloned().unwrap_or(Value::Nil);
    Ok(Value::vector(vec![fill; n]))
}

fn vector(st: &mut State, a: &[Value]) -> LispResult<Value> {
    check_size(st, a.len())?;
    Ok(Value::vector(a.to_vec()))
}

fn vector_length(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let v = vector_arg("vector-length", &a[0])?;
    Ok(Value::Int(v.len() as i64))
}

fn vector_ref(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let v = vector_arg("vector-ref", &a[0])?;
    let i = index("vector-ref", &a[1], v.len())?;
    v.get(i)
        .ok_or_else(|| out_of_range("vector-ref", "index", &a[1], v.len()))
}

fn vector_set(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let v = vector_arg("vector-set!", &a[0])?;
    let i = index("vector-set!", &a[1], v.len())?;
    if !v.set(i, a[2].clone()) {
        return Err(out_of_range("vector-set!", "index", &a[1], v.len()));
    }
    Ok(Value::Nil)
}

/// `(vector-fill! v fill [start [end]])`.
fn vector_fill(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let v = vector_arg("vector-fill!", &a[0])?;
    let (start, end) = range_args("vector-fill!", a, 2, v.len())?;
    crate::work::charge(end - start);
    v.set_range(start, vec![a[1].clone(); end - start]);
    Ok(Value::Nil)
}

/// `(vector-copy v [start [end]])`: a new vector.
fn vector_copy(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let v = vector_arg("vector-copy", &a[0])?;
    let (start, end) = range_args("vector-copy", a, 1, v.len())?;
    check_size(st, end - start)?;
    Ok(Value::vector(v.slice(start, end)))
}

/// `(vector-copy! to at from [start [end]])`: copies `from[start..end]` into `to` from `at`
/// on (overlapping ranges of one vector copy as if through a temporary, R7RS).
fn vector_copy_into(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let to = vector_arg("vector-copy!", &a[0])?;
    let from = vector_arg("vector-copy!", &a[2])?;
    let at = match &a[1] {
        Value::Int(i) if *i >= 0 && (*i as u64) <= to.len() as u64 => *i as usize,
        Value::Int(_) => return Err(out_of_range("vector-copy!", "at", &a[1], to.len())),
        other => {
            return Err(LispError::type_error(
                "vector-copy!",
                "an integer index",
                other,
            ))
        }
    };
    let (start, end) = range_args("vector-copy!", a, 3, from.len())?;
    if to.len() - at < end - start {
        return Err(LispError::new(
            ErrorKind::Error,
            format!(
                "vector-copy!: {} elements do not fit at {at} in a vector of length {}",
                end - start,
                to.len()
            ),
        ));
    }
    to.set_range(at, from.slice(start, end));
    Ok(Value::Nil)
}

fn vector_append(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let mut items = Vec::new();
    for v in a {
        let v = vector_arg("vector-append", v)?;
        check_size(st, items.len().saturating_add(v.len()))?;
        items.extend(v.to_vec());
    }
    Ok(Value::vector(items))
}

/// `(vector->list v [start [end]])`.
fn vector_to_list(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let v = vector_arg("vector->list", &a[0])?;
    let (start, end) = range_args("vector->list", a, 1, v.len())?;
    st.make_list(v.slice(start, end))
}

/// `(list->vector lst)`: a circular or improper list is an error.
fn list_to_vector(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let items = list_arg("list->vector", &a[0])?;
    check_size(st, items.len())?;
    Ok(Value::vector(items))
}

/// `(vector->string v [start [end]])`: the elements must be characters.
fn vector_to_string(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let v = vector_arg("vector->string", &a[0])?;
    let (start, end) = range_args("vector->string", a, 1, v.len())?;
    let mut out = String::new();
    for x in v.slice(start, end) {
        match x {
            Value::Char(c) => out.push(c),
            other => {
                return Err(LispError::type_error(
                    "vector->string",
                    "a vector of characters",
                    &other,
                ))
            }
        }
    }
    st.make_string(out)
}

/// `(string->vector s [start [end]])`: by character.
fn string_to_vector(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let s = str_arg("string->vector", &a[0])?;
    let chars: Vec<Value> = s.chars().map(Value::Char).collect();
    let (start, end) = range_args("string->vector", a, 1, chars.len())?;
    check_size(st, end - start)?;
    Ok(Value::vector(chars[start..end].to_vec()))
}

pub(crate) fn install(st: &mut State) {
    def(st, "vector?", 1, Some(1), is_vector);
    def(st, "make-vector", 1, Some(2), make_vector);
    def(st, "vector", 0, None, vector);
    def(st, "vector-length", 1, Some(1), vector_length);
    def(st, "vector-ref", 2, Some(2), vector_ref);
    def(st, "vector-set!", 3, Some(3), vector_set);
    def(st, "vector-fill!", 2, Some(4), vector_fill);
    def(st, "vector-copy", 1, Some(3), vector_copy);
    def(st, "vector-copy!", 3, Some(5), vector_copy_into);
    def(st, "vector-append", 0, None, vector_append);
    def(st, "vector->list", 1, Some(3), vector_to_list);
    def(st, "list->vector", 1, Some(1), list_to_vector);
    def(st, "vector->string", 1, Some(3), vector_to_string);
    def(st, "string->vector", 1, Some(3), string_to_vector);
}
