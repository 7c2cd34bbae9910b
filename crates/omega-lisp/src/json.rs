//! JSON text for `json-stringify`, written directly (no intermediate `serde_json::Value`) and
//! held to a length budget.
//!
//! # Invariants
//!
//! 1. The output is the same text `serde_json` prints for [`crate::to_json`] of the value
//!    (object keys sorted, floats in shortest form).
//! 2. Writing stops with the `max_string_len` `:limit` error as soon as the text passes the
//!    budget, so a shared structure whose JSON is exponentially long costs at most the budget.
//! 3. Nesting is bounded by [`crate::convert::MAX_JSON_DEPTH`] (recursion depth).

use std::collections::BTreeMap;

use crate::convert::{json_key, MAX_JSON_DEPTH};
use crate::error::{ErrorKind, LispError, LispResult};
use crate::value::Value;

/// The JSON text of `v`, at most `max_len` bytes.
pub(crate) fn stringify(v: &Value, max_len: usize) -> LispResult<String> {
    let mut w = Writer {
        out: String::new(),
        max_len,
    };
    w.value(v, 0)?;
    // About one element per 8 bytes written, charged as work (`work.rs`).
    crate::work::charge(w.out.len() / 8);
    Ok(w.out)
}

struct Writer {
    out: String,
    max_len: usize,
}

impl Writer {
    fn check(&self) -> LispResult<()> {
        if self.out.len() > self.max_len {
            return Err(LispError::limit("max_string_len", self.max_len));
        }
        Ok(())
    }

    fn string(&mut self, s: &str) -> LispResult<()> {
        if s.len() > self.max_len {
            return Err(LispError::limit("max_string_len", self.max_len));
        }
        let quoted = serde_json::to_string(s)
            .map_err(|e| LispError::new(ErrorKind::Error, format!("json-stringify: {e}")))?;
        self.out.push_str(&quoted);
        self.check()
    }

    fn value(&mut self, v: &Value, depth: usize) -> LispResult<()> {
        if depth > MAX_JSON_DEPTH {
            return Err(LispError::new(
                ErrorKind::Error,
                "json-stringify: value nested too deeply (or cyclic)",
            ));
        }
        match v {
            Value::Nil => self.out.push_str("null"),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => self.out.push_str(&i.to_string()),
            Value::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => self.out.push_str(&n.to_string()),
                None => {
                    return Err(LispError::type_error(
                        "json-stringify",
                        "a finite number",
                        v,
                    ))
                }
            },
            Value::Str(s) => self.string(s)?,
            Value::Keyword(k) | Value::Symbol(k) => self.string(&k.name())?,
            Value::Pair(_) => {
                // Check the whole list first, as `to_json` does, so the error is the same.
                if !is_proper(v) {
                    return Err(crate::convert::not_a_list("json-stringify", v));
                }
                self.out.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.value(&x, depth + 1)?;
                    self.check()?;
                }
                self.out.push(']');
            }
            Value::Vector(items) => {
                // A vector is a JSON array (issue 15).
                self.out.push('[');
                for (i, x) in items.to_vec().iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.value(x, depth + 1)?;
                    self.check()?;
                }
                self.out.push(']');
            }
            Value::Map(m) => {
                let mut obj: BTreeMap<String, &Value> = BTreeMap::new();
                for (k, val) in m.iter() {
                    let key = json_key(&k.0)?;
                    obj.insert(key, val);
                }
                self.out.push('{');
                for (i, (k, val)) in obj.into_iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.string(&k)?;
                    self.out.push(':');
                    self.value(val, depth + 1)?;
                    self.check()?;
                }
                self.out.push('}');
            }
            other => {
                return Err(LispError::type_error(
                    "json-stringify",
                    "JSON-compatible data",
                    other,
                ))
            }
        }
        self.check()
    }
}

fn is_proper(v: &Value) -> bool {
    matches!(
        crate::value::list_length(v),
        crate::value::ListShape::Proper(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_as_serde(v: &Value) {
        let expected = crate::to_json(v).expect("JSON data").to_string();
        assert_eq!(stringify(v, usize::MAX).expect("JSON data"), expected);
    }

    #[test]
    fn the_text_is_what_serde_json_prints() {
        same_as_serde(&Value::list([
            Value::Int(-3),
            Value::Float(1.5),
            Value::Float(1e300),
            Value::string("a\"b\n\u{1}é"),
            Value::keyword("k"),
            Value::Nil,
            Value::Bool(true),
            Value::map([
                (Value::string("b"), Value::Int(1)),
                (Value::keyword("a"), Value::list([Value::Int(2)])),
                (Value::Int(10), Value::Bool(false)),
            ]),
        ]));
    }

    #[test]
    fn past_the_budget_it_fails_with_limit() {
        let mut v = Value::list([Value::Int(1)]);
        for _ in 0..60 {
            v = Value::list([v.clone(), v]);
        }
        let e = stringify(&v, 1 << 20).expect_err("exponentially long");
        assert_eq!(e.kind(), &ErrorKind::Limit);
        assert!(e.message().contains("max_string_len"), "{e}");
    }
}
