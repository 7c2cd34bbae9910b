//! [`Data`]: a Lisp value as plain owned data — `Send + Sync`, `serde`-serialisable — for
//! values that leave the runtime's thread (results and host-function arguments of the
//! [`Engine`](crate::Engine)).
//!
//! # Invariants
//!
//! 1. Converting from a [`Value`] never recurses deeper than [`MAX_DEPTH`] levels and never
//!    follows a list longer than the runtime allows; anything deeper, and anything that is not
//!    data (procedures, tasks, host objects), becomes [`Data::Opaque`] with its printed form.
//! 2. `Data → Value → Data` is the identity for every variant but `Opaque` (which comes back
//!    as a string), for data up to [`MAX_DEPTH`] levels deep; deeper levels become `"…"`
//!    (conversion never recurses without bound).
//! 3. Cyclic data (mutable pairs and vectors) converts in bounded time and space: a value that
//!    refers back to one of its own containers becomes `Opaque("#<cycle>")` at that point, a
//!    circular list becomes `Opaque` of its labelled printed form (`#0=(1 . #0#)`), and at most
//!    [`MAX_NODES`] values are converted (shared structure is unfolded; past the budget the
//!    rest becomes `"…"`).

use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::printer::{write_string, write_string_limited};
use crate::value::{MapKey, Value};

/// Deepest nesting converted from a [`Value`] (invariant 1).
pub const MAX_DEPTH: usize = 256;

/// Most values converted from one [`Value`] (invariant 3).
pub const MAX_NODES: usize = 1 << 22;

/// A Lisp value as owned data.
///
/// # Examples
///
/// ```
/// use omega_lisp::Data;
/// let d = Data::List(vec![Data::Int(1), Data::from("two"), Data::Keyword("three".into())]);
/// assert_eq!(d.to_json(), serde_json::json!([1, "two", "three"]));
/// assert_eq!(Data::from(serde_json::json!({"a": [true, null]})).to_string(), "{\"a\" (#t nil)}");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub enum Data {
    /// `nil` / `()`.
    #[default]
    Nil,
    /// `#t` / `#f`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A character (`#\a`); JSON has none, so it converts to a one-character string.
    Char(char),
    /// A symbol, by name.
    Symbol(String),
    /// A keyword, by name without the colon.
    Keyword(String),
    /// A proper list.
    List(Vec<Data>),
    /// A map, in the runtime's key order.
    Map(Vec<(Data, Data)>),
    /// A vector (`#(1 2 3)`); JSON: an array, like a list.
    Vector(Vec<Data>),
    /// A value that is not data (a procedure, a task, an error, an improper list…): its
    /// printed form.
    Opaque(String),
}

impl Data {
    /// Converts a Lisp value (invariant 1).
    pub(crate) fn from_value(v: &Value) -> Data {
        let mut cx = FromValue {
            path: Vec::new(),
            nodes: 0,
        };
        cx.convert(v, 0)
    }

    /// The Lisp value for this data (`Opaque` becomes its text; levels below [`MAX_DEPTH`]
    /// become the string `"…"`).
    pub(crate) fn to_value(&self) -> Value {
        self.to_value_depth(0)
    }

    fn to_value_depth(&self, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::string("…");
        }
        let d = depth + 1;
        match self {
            Data::Nil => Value::Nil,
            Data::Bool(b) => Value::Bool(*b),
            Data::Int(i) => Value::Int(*i),
            Data::Float(f) => Value::Float(*f),
            Data::Char(c) => Value::Char(*c),
            Data::Str(s) | Data::Opaque(s) => Value::string(s.as_str()),
            Data::Symbol(s) => Value::symbol(s),
            Data::Keyword(k) => Value::keyword(k),
            Data::List(items) => Value::list(
                items
                    .iter()
                    .map(|x| x.to_value_depth(d))
                    .collect::<Vec<_>>(),
            ),
            Data::Vector(items) => {
                Value::vector(items.iter().map(|x| x.to_value_depth(d)).collect())
            }
            Data::Map(entries) => Value::Map(Rc::new(
                entries
                    .iter()
                    .map(|(k, v)| (MapKey(k.to_value_depth(d)), v.to_value_depth(d)))
                    .collect(),
            )),
        }
    }

    /// As JSON: maps become objects (keys by name), lists arrays, `nil` null, keywords and
    /// symbols strings, non-finite floats null; levels deeper than 256 become `"…"`.
    pub fn to_json(&self) -> serde_json::Value {
        self.to_json_depth(0)
    }

    fn to_json_depth(&self, depth: usize) -> serde_json::Value {
        use serde_json::Value as J;
        if depth > MAX_DEPTH {
            return J::String("…".into());
        }
        let d = depth + 1;
        match self {
            Data::Nil => J::Null,
            Data::Bool(b) => J::Bool(*b),
            Data::Int(i) => J::from(*i),
            Data::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Data::Char(c) => J::String(c.to_string()),
            Data::Str(s) | Data::Symbol(s) | Data::Keyword(s) | Data::Opaque(s) => {
                J::String(s.clone())
            }
            Data::List(items) | Data::Vector(items) => {
                J::Array(items.iter().map(|x| x.to_json_depth(d)).collect())
            }
            Data::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.key_name(), v.to_json_depth(d)))
                    .collect(),
            ),
        }
    }

    fn key_name(&self) -> String {
        match self {
            Data::Str(s) | Data::Symbol(s) | Data::Keyword(s) | Data::Opaque(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Data::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Data::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// The state of one [`Data::from_value`]: the containers being converted (the path from the
/// root, for cycle detection) and the values converted so far (invariant 3).
struct FromValue {
    path: Vec<usize>,
    nodes: usize,
}

/// The address of a container a cycle can pass through.
fn container_id(v: &Value) -> Option<usize> {
    match v {
        Value::Pair(_) | Value::Vector(_) | Value::Map(_) => v.heap_address(),
        _ => None,
    }
}

impl FromValue {
    fn convert(&mut self, v: &Value, depth: usize) -> Data {
        self.nodes += 1;
        if self.nodes % 1024 == 0 {
            // Charged as work done by a native (`work.rs`).
            crate::work::charge(1024);
        }
        if depth > MAX_DEPTH || self.nodes > MAX_NODES {
            return Data::Opaque("…".to_string());
        }
        let id = container_id(v);
        if let Some(id) = id {
            if self.path.contains(&id) {
                return Data::Opaque("#<cycle>".to_string());
            }
            self.path.push(id);
        }
        let d = self.convert_inner(v, depth);
        if id.is_some() {
            self.path.pop();
        }
        d
    }

    fn convert_inner(&mut self, v: &Value, depth: usize) -> Data {
        match v {
            Value::Nil => Data::Nil,
            Value::Bool(b) => Data::Bool(*b),
            Value::Int(i) => Data::Int(*i),
            Value::Float(f) => Data::Float(*f),
            Value::Str(s) => Data::Str(s.to_string()),
            Value::Char(c) => Data::Char(*c),
            Value::Symbol(s) => Data::Symbol(s.name().to_string()),
            Value::Keyword(k) => Data::Keyword(k.name().to_string()),
            Value::Pair(_) => match v.list_to_vec() {
                Some(items) => {
                    Data::List(items.iter().map(|x| self.convert(x, depth + 1)).collect())
                }
                None => Data::Opaque(write_string_limited(v, OPAQUE_TEXT_LIMIT)),
            },
            Value::Vector(items) => Data::Vector(
                items
                    .to_vec()
                    .iter()
                    .map(|x| self.convert(x, depth + 1))
                    .collect(),
            ),
            Value::Map(m) => Data::Map(
                m.iter()
                    .map(|(k, x)| (self.convert(&k.0, depth + 1), self.convert(x, depth + 1)))
                    .collect(),
            ),
            other => Data::Opaque(write_string_limited(other, OPAQUE_TEXT_LIMIT)),
        }
    }
}

/// Longest printed form kept in a [`Data::Opaque`] (bytes, then `...`).
const OPAQUE_TEXT_LIMIT: usize = 1 << 20;

/// Prints as Lisp `write` would.
impl std::fmt::Display for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&write_string(&self.to_value()))
    }
}

impl From<serde_json::Value> for Data {
    /// Objects become maps with string keys, arrays lists, null `nil`.
    fn from(j: serde_json::Value) -> Data {
        use serde_json::Value as J;
        match j {
            J::Null => Data::Nil,
            J::Bool(b) => Data::Bool(b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Data::Int(i),
                None => Data::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Data::Str(s),
            J::Array(items) => Data::List(items.into_iter().map(Data::from).collect()),
            J::Object(obj) => Data::Map(
                obj.into_iter()
                    .map(|(k, v)| (Data::Str(k), Data::from(v)))
                    .collect(),
            ),
        }
    }
}

impl From<Data> for serde_json::Value {
    fn from(d: Data) -> serde_json::Value {
        d.to_json()
    }
}

impl From<i64> for Data {
    fn from(i: i64) -> Data {
        Data::Int(i)
    }
}

impl From<f64> for Data {
    fn from(f: f64) -> Data {
        Data::Float(f)
    }
}

impl From<bool> for Data {
    fn from(b: bool) -> Data {
        Data::Bool(b)
    }
}

impl From<&str> for Data {
    fn from(s: &str) -> Data {
        Data::Str(s.to_string())
    }
}

impl From<String> for Data {
    fn from(s: String) -> Data {
        Data::Str(s)
    }
}

impl<T: Into<Data>> From<Vec<T>> for Data {
    fn from(items: Vec<T>) -> Data {
        Data::List(items.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Data>();
    }

    #[test]
    fn round_trips_through_values_and_json() {
        // In the runtime's key order (strings before keywords).
        let d = Data::Map(vec![
            (Data::Str("b".into()), Data::Symbol("x".into())),
            (
                Data::Keyword("a".into()),
                Data::List(vec![1.into(), 2.5.into()]),
            ),
        ]);
        assert_eq!(Data::from_value(&d.to_value()), d);
        assert_eq!(d.to_json(), serde_json::json!({"a": [1, 2.5], "b": "x"}));
        let j = serde_json::json!({"k": [1, "s", null, false]});
        assert_eq!(Data::from(j.clone()).to_json(), j);
        let text = serde_json::to_string(&d).expect("serialises");
        assert_eq!(serde_json::from_str::<Data>(&text).expect("parses"), d);
    }

    #[test]
    fn vectors_round_trip_and_cycles_convert_in_bounded_space() {
        let rt = crate::Runtime::new();
        let v = rt.eval_sync("#(1 (2) #(\"x\"))", "<t>").expect("evaluates");
        let d = Data::from_value(&v);
        assert_eq!(
            d,
            Data::Vector(vec![
                1.into(),
                Data::List(vec![2.into()]),
                Data::Vector(vec![Data::Str("x".into())])
            ])
        );
        assert_eq!(Data::from_value(&d.to_value()), d);
        assert_eq!(d.to_json(), serde_json::json!([1, [2], ["x"]]));
        // A vector holding itself twice: a back-reference, not 2^256 copies.
        let v = rt
            .eval_sync(
                "(let ((v (vector 0 0))) (vector-set! v 0 v) (vector-set! v 1 v) v)",
                "<t>",
            )
            .expect("evaluates");
        let cycle = Data::Opaque("#<cycle>".into());
        assert_eq!(
            Data::from_value(&v),
            Data::Vector(vec![cycle.clone(), cycle])
        );
        // A circular list: its labelled printed form.
        let c = rt
            .eval_sync("(let ((c (list 1 2))) (set-cdr! (cdr c) c) c)", "<t>")
            .expect("evaluates");
        assert_eq!(Data::from_value(&c), Data::Opaque("#0=(1 2 . #0#)".into()));
    }

    #[test]
    fn characters_round_trip_and_become_strings_in_json() {
        let rt = crate::Runtime::new();
        let v = rt
            .eval_sync("(list #\\a #\\x3bb)", "<t>")
            .expect("evaluates");
        let d = Data::from_value(&v);
        assert_eq!(d, Data::List(vec![Data::Char('a'), Data::Char('λ')]));
        assert_eq!(Data::from_value(&d.to_value()), d);
        assert_eq!(d.to_json(), serde_json::json!(["a", "λ"]));
        assert_eq!(d.to_string(), "(#\\a #\\λ)");
    }

    #[test]
    fn non_data_is_opaque_and_deep_nesting_is_cut() {
        let rt = crate::Runtime::new();
        let v = rt
            .eval_sync("(list car (cons 1 2))", "<t>")
            .expect("evaluates");
        assert_eq!(
            Data::from_value(&v),
            Data::List(vec![
                Data::Opaque("#<procedure car>".into()),
                Data::Opaque("(1 . 2)".into())
            ])
        );
        let mut deep = Value::Nil;
        for _ in 0..1000 {
            deep = Value::list(vec![deep]);
        }
        let mut d = &Data::from_value(&deep);
        let mut levels = 0;
        while let Data::List(items) = d {
            d = &items[0];
            levels += 1;
        }
        assert_eq!(levels, MAX_DEPTH + 1);
        assert_eq!(d, &Data::Opaque("…".into()));
        // From the host side too: deep data converts without unbounded recursion.
        let mut deep = Data::Nil;
        for _ in 0..(MAX_DEPTH * 4) {
            deep = Data::List(vec![deep]);
        }
        let mut j = &deep.to_json();
        let mut levels = 0;
        while let serde_json::Value::Array(items) = j {
            j = &items[0];
            levels += 1;
        }
        assert_eq!((levels, j.as_str()), (MAX_DEPTH + 1, Some("…")));
        assert!(deep.to_string().contains('…'));
    }
}
