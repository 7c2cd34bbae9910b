//! Maps: `hash-map get assoc dissoc keys vals contains? count` (`assoc` also looks up
//! association lists: `(assoc key alist)`).

use std::rc::Rc;

use crate::builtins::def;
use crate::error::{ErrorKind, LispError, LispResult};
use crate::state::State;
use crate::value::{self, LispMap, MapKey, Value};

fn map_arg<'a>(who: &str, v: &'a Value) -> LispResult<&'a Rc<LispMap>> {
    match v {
        Value::Map(m) => Ok(m),
        other => Err(LispError::type_error(who, "a map", other)),
    }
}

fn hash_map(_: &mut State, a: &[Value]) -> LispResult<Value> {
    if a.len() % 2 != 0 {
        return Err(LispError::new(
            ErrorKind::ArityError,
            format!(
                "hash-map expects an even number of arguments, got {}",
                a.len()
            ),
        ));
    }
    crate::work::charge(a.len() / 2);
    Ok(Value::map(
        a.chunks(2).map(|c| (c[0].clone(), c[1].clone())),
    ))
}

fn get(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let default = a.get(2).cloned().unwrap_or(Value::Nil);
    match &a[0] {
        Value::Nil => Ok(default),
        v => Ok(map_arg("get", v)?
            .get(&MapKey(a[1].clone()))
            .cloned()
            .unwrap_or(default)),
    }
}

// A map key's order never looks inside interior mutability (cells and procedures order by
// address), so mutating through a key cannot reorder a map.
#[allow(clippy::mutable_key_type)]
pub(crate) fn assoc(_: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Map(m) => {
            if a.len() % 2 != 1 || a.len() < 3 {
                return Err(LispError::new(
                    ErrorKind::ArityError,
                    "assoc on a map expects (assoc map key value …)",
                ));
            }
            // A copy: O(n) work, charged (a loop of `assoc`s on a big map is quadratic).
            crate::work::charge(m.len());
            let mut m = (**m).clone();
            for kv in a[1..].chunks(2) {
                m.insert(MapKey(kv[0].clone()), kv[1].clone());
            }
            Ok(Value::Map(Rc::new(m)))
        }
        key => {
            // (assoc key alist): the first pair whose car is equal? to key, or #f.
            if a.len() != 2 {
                return Err(LispError::new(
                    ErrorKind::ArityError,
                    "assoc expects (assoc key alist) or (assoc map key value …)",
                ));
            }
            let mut cur = a[1].clone();
            let mut check = value::CycleCheck::new();
            loop {
                match &cur {
                    Value::Pair(p) if check.circular(p) => {
                        return Err(value::circular_list_error("assoc", &a[1]))
                    }
                    Value::Pair(p) => {
                        let item = p.car();
                        if let Value::Pair(entry) = &item {
                            if value::equal(&entry.car(), key) {
                                return Ok(item);
                            }
                        }
                        let next = p.cdr();
                        cur = next;
                    }
                    Value::Nil => return Ok(Value::Bool(false)),
                    _ => return Err(LispError::type_error("assoc", "an association list", &a[1])),
                }
            }
        }
    }
}

// A map key's order never looks inside interior mutability (cells and procedures order by
// address), so mutating through a key cannot reorder a map.
#[allow(clippy::mutable_key_type)]
fn dissoc(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let m = map_arg("dissoc", &a[0])?;
    crate::work::charge(m.len());
    let mut m = (**m).clone();
    for k in &a[1..] {
        m.remove(&MapKey(k.clone()));
    }
    Ok(Value::Map(Rc::new(m)))
}

fn keys(_: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Nil => Ok(Value::Nil),
        v => Ok(Value::list({
            let m = map_arg("keys", v)?;
            crate::work::charge(m.len());
            m.keys().map(|k| k.0.clone()).collect::<Vec<_>>()
        })),
    }
}

fn vals(_: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Nil => Ok(Value::Nil),
        v => Ok(Value::list({
            let m = map_arg("vals", v)?;
            crate::work::charge(m.len());
            m.values().cloned().collect::<Vec<_>>()
        })),
    }
}

fn contains(_: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Nil => Ok(Value::Bool(false)),
        v => Ok(Value::Bool(
            map_arg("contains?", v)?.contains_key(&MapKey(a[1].clone())),
        )),
    }
}

fn count(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let n = match &a[0] {
        Value::Nil => 0,
        Value::Map(m) => m.len(),
        Value::Str(s) => crate::builtins::strings::char_len(s),
        // Walked with a cycle check: a circular list (`set-cdr!`) is an error, not a hang.
        Value::Pair(_) => match crate::value::list_length(&a[0]) {
            crate::value::ListShape::Proper(n) | crate::value::ListShape::Dotted(n) => n,
            crate::value::ListShape::Circular => {
                return Err(crate::value::circular_list_error("count", &a[0]))
            }
        },
        other => {
            return Err(LispError::type_error(
                "count",
                "a map, list or string",
                other,
            ))
        }
    };
    Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

pub(crate) fn install(st: &mut State) {
    def(st, "hash-map", 0, None, hash_map);
    def(st, "get", 2, Some(3), get);
    def(st, "assoc", 2, None, assoc);
    def(st, "dissoc", 1, None, dissoc);
    def(st, "keys", 1, Some(1), keys);
    def(st, "vals", 1, Some(1), vals);
    def(st, "contains?", 2, Some(2), contains);
    // `count` itself is the prelude's (it also takes SRFI-1's predicate form) and calls this.
    def(st, "%count", 1, Some(1), count);
}
