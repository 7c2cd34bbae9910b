//! Conversions: [`Value`] ⇄ Rust types and ⇄ `serde_json::Value`.
//!
//! JSON mapping: objects ↔ maps with string keys (keyword and symbol keys are written by name),
//! arrays ↔ lists, `null` ↔ nil, numbers ↔ integers (when they fit in i64) or floats.

use std::rc::Rc;

use crate::error::{ErrorKind, LispError, LispResult};
use crate::value::{MapKey, Value};

/// Deepest nesting `to_json` converts.
pub(crate) const MAX_JSON_DEPTH: usize = 512;

/// Converts JSON to a Lisp value.
pub fn from_json(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::string(s.clone()),
        serde_json::Value::Array(items) => {
            Value::list(items.iter().map(from_json).collect::<Vec<_>>())
        }
        serde_json::Value::Object(obj) => Value::Map(Rc::new(
            obj.iter()
                .map(|(k, v)| (MapKey(Value::string(k.clone())), from_json(v)))
                .collect(),
        )),
    }
}

/// Converts a Lisp value to JSON; fails on values JSON cannot hold (procedures, NaN, …).
pub fn to_json(v: &Value) -> LispResult<serde_json::Value> {
    to_json_depth(v, 0)
}

fn to_json_depth(v: &Value, depth: usize) -> LispResult<serde_json::Value> {
    if depth > MAX_JSON_DEPTH {
        return Err(LispError::new(
            ErrorKind::Error,
            "json-stringify: value nested too deeply (or cyclic)",
        ));
    }
    Ok(match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .ok_or_else(|| LispError::type_error("json-stringify", "a finite number", v))?,
        Value::Str(s) => serde_json::Value::String(s.to_string()),
        Value::Keyword(k) | Value::Symbol(k) => serde_json::Value::String(k.name().to_string()),
        Value::Pair(_) => {
            let items = v
                .list_to_vec()
                .ok_or_else(|| not_a_list("json-stringify", v))?;
            serde_json::Value::Array(
                items
                    .iter()
                    .map(|x| to_json_depth(x, depth + 1))
                    .collect::<LispResult<_>>()?,
            )
        }
        Value::Vector(items) => serde_json::Value::Array(
            items
                .to_vec()
                .iter()
                .map(|x| to_json_depth(x, depth + 1))
                .collect::<LispResult<_>>()?,
        ),
        Value::Map(m) => {
            let mut obj = serde_json::Map::new();
            for (k, val) in m.iter() {
                let key = json_key(&k.0)?;
                obj.insert(key, to_json_depth(val, depth + 1)?);
            }
            serde_json::Value::Object(obj)
        }
        other => {
            return Err(LispError::type_error(
                "json-stringify",
                "JSON-compatible data",
                other,
            ))
        }
    })
}

impl From<serde_json::Value> for Value {
    fn from(j: serde_json::Value) -> Value {
        from_json(&j)
    }
}

impl TryFrom<&Value> for serde_json::Value {
    type Error = LispError;
    fn try_from(v: &Value) -> LispResult<serde_json::Value> {
        to_json(v)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Value {
        Value::Int(i64::from(i))
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::string(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::string(s)
    }
}

impl From<()> for Value {
    fn from((): ()) -> Value {
        Value::Nil
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::Nil, Into::into)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Value {
        Value::list(items.into_iter().map(Into::into).collect::<Vec<_>>())
    }
}

fn conv_err(expected: &str, v: &Value) -> LispError {
    LispError::type_error("conversion", expected, v)
}

impl TryFrom<Value> for i64 {
    type Error = LispError;
    fn try_from(v: Value) -> LispResult<i64> {
        v.as_int().ok_or_else(|| conv_err("an integer", &v))
    }
}

impl TryFrom<Value> for f64 {
    type Error = LispError;
    fn try_from(v: Value) -> LispResult<f64> {
        match v {
            Value::Float(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            other => Err(conv_err("a number", &other)),
        }
    }
}

impl TryFrom<Value> for bool {
    type Error = LispError;
    fn try_from(v: Value) -> LispResult<bool> {
        match v {
            Value::Bool(b) => Ok(b),
            other => Err(conv_err("a boolean", &other)),
        }
    }
}

impl TryFrom<Value> for String {
    type Error = LispError;
    fn try_from(v: Value) -> LispResult<String> {
        match v {
            Value::Str(s) => Ok(s.to_string()),
            other => Err(conv_err("a string", &other)),
        }
    }
}

impl TryFrom<Value> for Vec<Value> {
    type Error = LispError;
    fn try_from(v: Value) -> LispResult<Vec<Value>> {
        v.list_to_vec().ok_or_else(|| conv_err("a list", &v))
    }
}

/// The error for a value that should be a proper list: a circular one says so.
pub(crate) fn not_a_list(who: &str, v: &Value) -> LispError {
    if crate::value::list_length(v) == crate::value::ListShape::Circular {
        crate::value::circular_list_error(who, v)
    } else {
        LispError::type_error(who, "a proper list", v)
    }
}

/// The JSON object key for a map key: strings as they are, keywords and symbols by name,
/// integers in decimal; anything else is a type error (shared by `json-stringify`'s writer).
pub(crate) fn json_key(k: &Value) -> LispResult<String> {
    match k {
        Value::Str(s) => Ok(s.to_string()),
        Value::Keyword(s) | Value::Symbol(s) => Ok(s.name().to_string()),
        Value::Int(i) => Ok(i.to_string()),
        other => Err(LispError::type_error(
            "json-stringify",
            "string, keyword or integer map keys",
            other,
        )),
    }
}
