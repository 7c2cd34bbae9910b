//! Lists: `cons car cdr set-car! set-cdr! cadr cddr first rest second list list* append reverse length nth last
//! range member apply` and the native part of `sort` (`map filter reduce foldl foldr for-each`
//! and comparator sorts are in the Lisp prelude).

use crate::builtins::{def, def_kind, index_arg, list_arg};
use crate::error::{ErrorKind, LispError, LispResult};
use crate::native::NativeKind;
use crate::state::State;
use crate::value::{self, CycleCheck, ListShape, Value};

fn pair_parts(who: &str, v: &Value) -> LispResult<(Value, Value)> {
    match v {
        Value::Pair(p) => Ok((p.car(), p.cdr())),
        other => Err(LispError::type_error(who, "a pair", other)),
    }
}

fn cons(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::cons(a[0].clone(), a[1].clone()))
}
fn car(_: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Pair(p) => Ok(p.car()),
        other => Err(LispError::type_error("car", "a pair", other)),
    }
}
fn cdr(_: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Pair(p) => Ok(p.cdr()),
        other => Err(LispError::type_error("cdr", "a pair", other)),
    }
}
fn cadr(_: &mut State, a: &[Value]) -> LispResult<Value> {
    cadr_of(&a[0])
}
fn cddr(_: &mut State, a: &[Value]) -> LispResult<Value> {
    cddr_of(&a[0])
}

/// `(cadr x)`, with the builtin's error (also the inlined primitive's slow path, `vm/lists.rs`).
pub(crate) fn cadr_of(x: &Value) -> LispResult<Value> {
    let rest = pair_parts("cadr", x)?.1;
    Ok(pair_parts("cadr", &rest)?.0)
}

/// `(cddr x)`, with the builtin's error (see [`cadr_of`]).
pub(crate) fn cddr_of(x: &Value) -> LispResult<Value> {
    let rest = pair_parts("cddr", x)?.1;
    Ok(pair_parts("cddr", &rest)?.1)
}

/// `(set-car! pair obj)`: stores `obj` as the pair's head (every pair is mutable, literal
/// constants included; see `value.rs` invariant 1).
fn set_car(_: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Pair(p) => {
            value::set_car(p, a[1].clone());
            Ok(Value::Nil)
        }
        other => Err(LispError::type_error("set-car!", "a pair", other)),
    }
}

/// `(set-cdr! pair obj)`: stores `obj` as the pair's tail.
fn set_cdr(_: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Pair(p) => {
            value::set_cdr(p, a[1].clone());
            Ok(Value::Nil)
        }
        other => Err(LispError::type_error("set-cdr!", "a pair", other)),
    }
}

/// `first`/`rest`/`second` accept nil (giving nil) as well as pairs.
fn lenient(who: &str, v: &Value) -> LispResult<Option<(Value, Value)>> {
    match v {
        Value::Nil => Ok(None),
        Value::Pair(p) => Ok(Some((p.car(), p.cdr()))),
        other => Err(LispError::type_error(who, "a list", other)),
    }
}
fn first(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(lenient("first", &a[0])?.map_or(Value::Nil, |p| p.0))
}
fn rest(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(lenient("rest", &a[0])?.map_or(Value::Nil, |p| p.1))
}
fn second(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let tail = lenient("second", &a[0])?.map_or(Value::Nil, |p| p.1);
    Ok(lenient("second", &tail)?.map_or(Value::Nil, |p| p.0))
}

fn list(st: &mut State, a: &[Value]) -> LispResult<Value> {
    st.make_list(a.to_vec())
}

fn list_star(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let (last, init) = a.split_last().expect("arity checked: at least 1");
    st.check_list_len(init.len())?;
    Ok(Value::list_with_tail(init.to_vec(), last.clone()))
}

fn append(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let Some((last, init)) = a.split_last() else {
        return Ok(Value::Nil);
    };
    st.check_heap()?;
    let max = st.limits.max_list_len;
    // Left to right, as errors are reported: every list but the last is copied as it is
    // walked, and must be proper; a walk that stops says which error by the list's shape
    // (its shape first, then the length limit, as when they were checked before copying).
    let mut copy = value::ListCopy::default();
    for l in init {
        if copy.extend(l, max).is_err() {
            return Err(match value::list_length(l) {
                ListShape::Dotted(_) => LispError::type_error("append", "a list", l),
                ListShape::Circular => value::circular_list_error("append", l),
                ListShape::Proper(_) => LispError::limit("max_list_len", max),
            });
        }
    }
    // The result shares the last list: count it too (up to the limit), so the result is
    // held to max_list_len as a whole (a circular last list is past any limit).
    let copied = copy.len();
    let room = max.saturating_sub(copied);
    if copied + value::list_len_upto(last, room) > max {
        return Err(LispError::limit("max_list_len", max));
    }
    crate::work::charge(copied);
    Ok(copy.finish(last.clone()))
}

fn reverse(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let mut out = Value::Nil;
    let mut cur = a[0].clone();
    let mut check = CycleCheck::new();
    let mut n = 0usize;
    loop {
        match &cur {
            Value::Nil => return Ok(out),
            Value::Pair(p) => {
                if check.circular(p) {
                    return Err(value::circular_list_error("reverse", &a[0]));
                }
                out = Value::cons(p.car(), out);
                let next = p.cdr();
                cur = next;
                n += 1;
                if n % 4096 == 0 {
                    st.check_list_len(n)?;
                }
            }
            _ => return Err(LispError::type_error("reverse", "a list", &a[0])),
        }
    }
}

/// `(length lst)`: the number of elements; a circular list is an error saying so.
fn length(_: &mut State, a: &[Value]) -> LispResult<Value> {
    match value::list_length(&a[0]) {
        ListShape::Proper(n) => Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX))),
        ListShape::Dotted(_) => Err(LispError::type_error("length", "a list", &a[0])),
        ListShape::Circular => Err(value::circular_list_error("length", &a[0])),
    }
}

fn nth(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let i = index_arg("nth", &a[1])?;
    // `walk_cdrs` reduces the index on a circular list, so a huge index cannot loop for long.
    match value::walk_cdrs(&a[0], i) {
        (Value::Pair(p), _) => Ok(p.car()),
        (Value::Nil, k) => Err(LispError::new(
            ErrorKind::Error,
            format!("nth: index {i} out of range for a list of length {k}"),
        )),
        _ => Err(LispError::type_error("nth", "a list", &a[0])),
    }
}

fn last(_: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Pair(_) => {
            let mut cur = a[0].clone();
            let mut check = CycleCheck::new();
            while let Value::Pair(p) = &cur {
                if check.circular(p) {
                    return Err(value::circular_list_error("last", &a[0]));
                }
                match p.cdr() {
                    next @ Value::Pair(_) => cur = next,
                    _ => return Ok(p.car()),
                }
            }
            Ok(Value::Nil)
        }
        Value::Nil => Err(LispError::new(ErrorKind::Error, "last: empty list")),
        other => Err(LispError::type_error("last", "a list", other)),
    }
}

fn range(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let all_int = a.iter().all(|v| matches!(v, Value::Int(_)));
    let nums = a
        .iter()
        .map(|v| match v {
            Value::Int(i) => Ok(*i as f64),
            Value::Float(f) => Ok(*f),
            other => Err(LispError::type_error("range", "numbers", other)),
        })
        .collect::<LispResult<Vec<f64>>>()?;
    let (start, end, step) = match nums.as_slice() {
        [e] => (0.0, *e, 1.0),
        [s, e] => (*s, *e, 1.0),
        [s, e, st] => (*s, *e, *st),
        _ => unreachable!("arity checked"),
    };
    if step == 0.0 || step.is_nan() {
        return Err(LispError::new(
            ErrorKind::Error,
            "range: step must not be zero",
        ));
    }
    if all_int {
        // Exact integer arithmetic (floats would round near i64::MAX and wrap; issue 10).
        let ints: Vec<i128> = a.iter().filter_map(Value::as_int).map(i128::from).collect();
        let (s, e, stp) = match ints.as_slice() {
            [e] => (0, *e, 1),
            [s, e] => (*s, *e, 1),
            [s, e, stp] => (*s, *e, *stp),
            _ => (0, 0, 1),
        };
        let span = e - s;
        let count = if (span > 0) == (stp > 0) && span != 0 {
            (span.abs() + stp.abs() - 1) / stp.abs()
        } else {
            0
        };
        if count > st.limits.max_list_len as i128 {
            return Err(LispError::limit("max_list_len", st.limits.max_list_len));
        }
        st.check_heap()?;
        let items = (0..count)
            .map(|k| {
                i64::try_from(s + stp * k)
                    .map(Value::Int)
                    .map_err(|_| crate::builtins::numbers::overflow("range"))
            })
            .collect::<LispResult<Vec<Value>>>()?;
        return Ok(Value::list(items));
    }
    let count = ((end - start) / step).ceil();
    let count = if count.is_finite() && count > 0.0 {
        count
    } else {
        0.0
    };
    if count > st.limits.max_list_len as f64 {
        return Err(LispError::limit("max_list_len", st.limits.max_list_len));
    }
    st.check_heap()?;
    let count = count as usize;
    let items: Vec<Value> = (0..count)
        .map(|k| Value::Float(start + step * k as f64))
        .collect();
    Ok(Value::list(items))
}

fn member(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let mut cur = a[1].clone();
    let mut check = CycleCheck::new();
    loop {
        match &cur {
            Value::Pair(p) => {
                if check.circular(p) {
                    return Err(value::circular_list_error("member", &a[1]));
                }
                if value::equal(&p.car(), &a[0]) {
                    return Ok(cur);
                }
                let next = p.cdr();
                cur = next;
            }
            Value::Nil => return Ok(Value::Bool(false)),
            _ => return Err(LispError::type_error("member", "a list", &a[1])),
        }
    }
}

/// `(%sort lst)` / `(%sort lst < or >)`: native sort of numbers or strings.
fn native_sort(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let mut items = list_arg("sort", &a[0])?;
    st.check_list_len(items.len())?;
    // n log n comparisons, charged as work (`work.rs`); the walk was charged by `list_arg`.
    crate::work::charge(items.len() * (usize::BITS - items.len().leading_zeros()) as usize);
    let descending = match a.get(1) {
        Some(Value::Native(n)) => n.name() == ">",
        _ => false,
    };
    let all_num = items
        .iter()
        .all(|v| matches!(v, Value::Int(_) | Value::Float(_)));
    let all_str = items.iter().all(|v| matches!(v, Value::Str(_)));
    if !all_num && !all_str {
        let bad = items
            .iter()
            .find(|v| !matches!(v, Value::Int(_) | Value::Float(_) | Value::Str(_)))
            .or_else(|| items.iter().find(|v| matches!(v, Value::Str(_))))
            .cloned()
            .unwrap_or(Value::Nil);
        return Err(LispError::type_error(
            "sort",
            "a list of numbers or of strings (or a comparator)",
            &bad,
        ));
    }
    items.sort_by(|x, y| {
        let o = match (x, y) {
            (Value::Int(p), Value::Int(q)) => p.cmp(q),
            (Value::Str(p), Value::Str(q)) => p.cmp(q),
            _ => {
                let f = |v: &Value| match v {
                    Value::Int(i) => *i as f64,
                    Value::Float(f) => *f,
                    _ => 0.0,
                };
                f(x).total_cmp(&f(y))
            }
        };
        if descending {
            o.reverse()
        } else {
            o
        }
    });
    Ok(Value::list(items))
}

pub(crate) fn install(st: &mut State) {
    def(st, "cons", 2, Some(2), cons);
    def(st, "car", 1, Some(1), car);
    def(st, "cdr", 1, Some(1), cdr);
    def(st, "set-car!", 2, Some(2), set_car);
    def(st, "set-cdr!", 2, Some(2), set_cdr);
    def(st, "cadr", 1, Some(1), cadr);
    def(st, "cddr", 1, Some(1), cddr);
    def(st, "first", 1, Some(1), first);
    def(st, "rest", 1, Some(1), rest);
    def(st, "second", 1, Some(1), second);
    def(st, "list", 0, None, list);
    def(st, "list*", 1, None, list_star);
    def(st, "append", 0, None, append);
    def(st, "reverse", 1, Some(1), reverse);
    def(st, "length", 1, Some(1), length);
    def(st, "nth", 2, Some(2), nth);
    def(st, "last", 1, Some(1), last);
    def(st, "range", 1, Some(3), range);
    def(st, "member", 2, Some(2), member);
    def(st, "%sort", 1, Some(2), native_sort);
    def_kind(st, "apply", 2, None, NativeKind::Apply);
}
