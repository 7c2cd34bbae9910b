//! The R7RS list procedures of SPEC §6.9 beside §6.3's: the `c[ad]{2,4}r` family (`cadr` and
//! `cddr` are in `lists.rs`), `memq memv assq assv list-tail list-ref list-set! list-copy
//! last-pair`, `member`/`assoc` with an optional predicate, and SRFI 1's `delete-duplicates`
//! (a native for its `equal?` form). Those two stay natives (so `assoc` on a map and
//! the two-argument forms cost what they did); given a predicate, they hand the call to
//! `%member-by`/`%assoc-by` in `scheme_prelude.lisp` ([`Delegate::Call`]), which can call it.
//!
//! # Invariants
//!
//! 1. Every walk is a loop over the spine: nothing recurses on a list's length.
//! 2. A bad index names the index and the list's length; a `c…r` that runs off the list names
//!    the step that failed and what it met.

use crate::builtins::{def, def_kind, index_arg, maps};
use crate::error::{ErrorKind, LispError, LispResult};
use crate::native::{Delegate, NativeKind};
use crate::state::State;
use crate::symbol::Symbol;
use crate::value::{self, CycleCheck, ListShape, Pair, Value};

/// `(c…r x)`: applies the `a`/`d` letters of `who` from right to left, e.g. `caddr` takes the
/// `cdr`, the `cdr`, then the `car`. (Also the slow path of the inlined `caddr`, `vm/lists.rs`.)
pub(crate) fn cxr(who: &str, x: &Value) -> LispResult<Value> {
    let path = &who[1..who.len() - 1];
    let mut cur = x.clone();
    for (done, op) in path.bytes().rev().enumerate() {
        let next = match &cur {
            Value::Pair(p) if op == b'a' => p.car(),
            Value::Pair(p) => p.cdr(),
            other => {
                let step = if op == b'a' { "car" } else { "cdr" };
                let before = if done == 0 {
                    String::new()
                } else {
                    format!(" of the c{}r", &path[path.len() - done..])
                };
                return Err(LispError::new(
                    ErrorKind::TypeError,
                    format!(
                        "{who}: cannot take the {step}{before} of {}: it is {}",
                        crate::printer::write_string_limited(x, 60),
                        other.type_description()
                    ),
                ));
            }
        };
        cur = next;
    }
    Ok(cur)
}

macro_rules! cxrs {
    ($($f:ident)*) => {
        $(fn $f(_: &mut State, a: &[Value]) -> LispResult<Value> {
            cxr(stringify!($f), &a[0])
        })*
        fn install_cxrs(st: &mut State) {
            $(def(st, stringify!($f), 1, Some(1), $f);)*
        }
    };
}

cxrs! {
    caar cdar
    caaar caadr cadar caddr cdaar cdadr cddar cdddr
    caaaar caaadr caadar caaddr cadaar cadadr caddar cadddr
    cdaaar cdaadr cdadar cdaddr cddaar cddadr cdddar cddddr
}

fn improper(who: &str, list: &Value) -> LispError {
    LispError::type_error(who, "a list", list)
}

/// Walks the list `list` and returns its first pair for which `hit` is true (`None` at the
/// end); a circular or improper list is an error naming `who`.
fn find_pair(
    who: &str,
    list: &Value,
    mut hit: impl FnMut(&Pair) -> LispResult<bool>,
) -> LispResult<Option<Value>> {
    let mut cur = list.clone();
    let mut check = CycleCheck::new();
    loop {
        match &cur {
            Value::Pair(p) if check.circular(p) => {
                return Err(value::circular_list_error(who, list))
            }
            Value::Pair(p) if hit(p)? => return Ok(Some(cur)),
            Value::Pair(p) => cur = p.cdr(),
            Value::Nil => return Ok(None),
            _ => return Err(improper(who, list)),
        }
    }
}

/// The sublist starting at the first element `same` as `x`, or `#f`.
fn mem(who: &str, a: &[Value], same: fn(&Value, &Value) -> bool) -> LispResult<Value> {
    let found = find_pair(who, &a[1], |p| Ok(same(&a[0], &p.car())))?;
    Ok(found.unwrap_or(Value::Bool(false)))
}

fn memq(_: &mut State, a: &[Value]) -> LispResult<Value> {
    mem("memq", a, value::eq)
}
fn memv(_: &mut State, a: &[Value]) -> LispResult<Value> {
    mem("memv", a, value::eqv)
}

/// The first pair of the association list whose car is `same` as `x`, or `#f`.
fn ass(who: &str, a: &[Value], same: fn(&Value, &Value) -> bool) -> LispResult<Value> {
    let found = find_pair(who, &a[1], |p| match p.car() {
        Value::Pair(entry) => Ok(same(&a[0], &entry.car())),
        other => Err(LispError::type_error(
            who,
            "an association list (a list of pairs)",
            &other,
        )),
    })?;
    Ok(match found {
        Some(Value::Pair(p)) => p.car(),
        _ => Value::Bool(false),
    })
}

fn assq(_: &mut State, a: &[Value]) -> LispResult<Value> {
    ass("assq", a, value::eq)
}
fn assv(_: &mut State, a: &[Value]) -> LispResult<Value> {
    ass("assv", a, value::eqv)
}

/// The length of the proper or improper list `v` (pairs before the first non-pair); `None` for
/// a circular list.
fn spine_len(v: &Value) -> Option<usize> {
    match value::list_length(v) {
        ListShape::Proper(n) | ListShape::Dotted(n) => Some(n),
        ListShape::Circular => None,
    }
}

/// The `k`th tail of `list`; for `list-ref` (`need_pair`) the tail must be a pair. A circular
/// list has every tail (the walk is bounded by `k`).
fn tail(who: &str, list: &Value, k: usize, need_pair: bool) -> LispResult<Value> {
    let (cur, reached) = value::walk_cdrs(list, k);
    if reached >= k && (!need_pair || matches!(cur, Value::Pair(_))) {
        return Ok(cur);
    }
    if !matches!(list, Value::Pair(_) | Value::Nil) {
        return Err(improper(who, list));
    }
    Err(LispError::new(
        ErrorKind::Error,
        format!(
            "{who}: index {k} out of range for a list of length {}",
            spine_len(list).unwrap_or(reached)
        ),
    ))
}

fn list_tail(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let k = index_arg("list-tail", &a[1])?;
    tail("list-tail", &a[0], k, false)
}

fn list_ref(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let k = index_arg("list-ref", &a[1])?;
    match tail("list-ref", &a[0], k, true)? {
        Value::Pair(p) => Ok(p.car()),
        other => Err(LispError::type_error("list-ref", "a pair", &other)),
    }
}

/// `(list-set! list k obj)`: stores `obj` as element `k` (R7RS 6.4; pairs are mutable).
fn list_set(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let k = index_arg("list-set!", &a[1])?;
    match tail("list-set!", &a[0], k, true)? {
        Value::Pair(p) => {
            value::set_car(&p, a[2].clone());
            Ok(Value::Nil)
        }
        other => Err(LispError::type_error("list-set!", "a pair", &other)),
    }
}

/// `(list-copy obj)`: a fresh spine with the same elements and the same final tail (an improper
/// list stays improper; a non-list is returned as is; a circular list is an error).
fn list_copy(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let mut items = Vec::new();
    let mut cur = a[0].clone();
    let mut check = CycleCheck::new();
    while let Value::Pair(p) = &cur {
        if check.circular(p) {
            return Err(value::circular_list_error("list-copy", &a[0]));
        }
        items.push(p.car());
        let next = p.cdr();
        cur = next;
        if items.len() % 4096 == 0 {
            st.check_list_len(items.len())?;
        }
    }
    st.check_list_len(items.len())?;
    Ok(Value::list_with_tail(items, cur))
}

fn last_pair(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let Value::Pair(_) = &a[0] else {
        return Err(LispError::type_error("last-pair", "a pair", &a[0]));
    };
    let mut cur = a[0].clone();
    let mut check = CycleCheck::new();
    while let Value::Pair(p) = &cur {
        if check.circular(p) {
            return Err(value::circular_list_error("last-pair", &a[0]));
        }
        let next = p.cdr();
        if !matches!(next, Value::Pair(_)) {
            break;
        }
        cur = next;
    }
    Ok(cur)
}

/// `(delete-duplicates lst)`: the first of each group of `equal?` elements, in order, in
/// O(n log n) (a set ordered like map keys); `(delete-duplicates lst same?)` hands the call to
/// `%delete-duplicates-by` in `scheme_prelude.lisp`, which calls `same?` (quadratic, as SRFI 1
/// allows for an arbitrary predicate).
fn delete_duplicates(st: &mut State, a: &[Value]) -> LispResult<Delegate> {
    if a.len() == 2 {
        return helper(st, "%delete-duplicates-by");
    }
    // Keys are compared by contents; a mutable pair could change order, but no Lisp code runs
    // while this set lives (it is local to this call), so nothing mutates a key.
    #[allow(clippy::mutable_key_type)]
    let mut seen = std::collections::BTreeSet::new();
    let mut items = Vec::new();
    let mut cur = a[0].clone();
    let mut check = CycleCheck::new();
    let mut visited = 0usize;
    while let Value::Pair(p) = &cur {
        if check.circular(p) {
            return Err(value::circular_list_error("delete-duplicates", &a[0]));
        }
        let x = p.car();
        if seen.insert(value::MapKey(x.clone())) {
            items.push(x);
        }
        let next = p.cdr();
        cur = next;
        visited += 1;
        if visited % 4096 == 0 {
            st.check_list_len(visited)?;
        }
    }
    if !matches!(cur, Value::Nil) {
        return Err(LispError::type_error("delete-duplicates", "a list", &a[0]));
    }
    st.check_list_len(items.len())?;
    Ok(Delegate::Done(Value::list(items)))
}

/// The prelude closure `name` to hand a call to.
fn helper(st: &mut State, name: &str) -> LispResult<Delegate> {
    crate::prelude::global(st, Symbol::intern(name))?
        .map(Delegate::Call)
        .ok_or_else(|| LispError::new(ErrorKind::Unbound, format!("unbound variable: {name}")))
}

/// `(member x lst)` compares with `equal?`; `(member x lst same?)` calls `(same? x element)`.
fn member(st: &mut State, a: &[Value]) -> LispResult<Delegate> {
    if a.len() == 2 {
        mem("member", a, value::equal).map(Delegate::Done)
    } else {
        helper(st, "%member-by")
    }
}

/// `(assoc key alist)` compares with `equal?`; `(assoc key alist same?)` calls
/// `(same? key (car entry))`; `(assoc map key value …)` is the map update of SPEC §6.3.
fn assoc(st: &mut State, a: &[Value]) -> LispResult<Delegate> {
    if a.len() == 3 && !matches!(a[0], Value::Map(_)) {
        helper(st, "%assoc-by")
    } else {
        maps::assoc(st, a).map(Delegate::Done)
    }
}

pub(crate) fn install(st: &mut State) {
    def_kind(st, "member", 2, Some(3), NativeKind::Delegating(member));
    def_kind(st, "assoc", 2, None, NativeKind::Delegating(assoc));
    install_cxrs(st);
    def(st, "memq", 2, Some(2), memq);
    def(st, "memv", 2, Some(2), memv);
    def(st, "assq", 2, Some(2), assq);
    def(st, "assv", 2, Some(2), assv);
    def(st, "list-tail", 2, Some(2), list_tail);
    def(st, "list-ref", 2, Some(2), list_ref);
    def(st, "list-set!", 3, Some(3), list_set);
    def(st, "list-copy", 1, Some(1), list_copy);
    def(st, "last-pair", 1, Some(1), last_pair);
    def_kind(
        st,
        "delete-duplicates",
        1,
        Some(2),
        NativeKind::Delegating(delete_duplicates),
    );
}
