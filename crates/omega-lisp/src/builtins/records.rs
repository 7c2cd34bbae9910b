//! Records (R7RS `define-record-type`, issue 15): the native primitives under the prelude's
//! `define-record-type` macro (`scheme_prelude.lisp`).
//!
//! - `(%make-record-type name '(field …))` → a record type (a foreign `record-type` value);
//! - `(%record type v …)` → a new record with one value per field, in field order;
//! - `(%record? type x)`, `(%record-ref type x i 'who)`, `(%record-set! type x i v 'who)`.
//!
//! # Design
//!
//! A record is a foreign object ([`Record`]) holding its type (shared, `Rc`) and its field
//! values. It prints as `#<record point>`; `eq?`/`eqv?`/`equal?` compare records by identity
//! (R7RS leaves `equal?` on records to `eqv?`). A record type is generative: two
//! `define-record-type`s of the same name are different types.
//!
//! # Invariants
//!
//! 1. A record's fields can be set (modifiers), so a record can close a cycle: it is a
//!    value-holding foreign object, registered with the cycle collector when created, tracing
//!    its fields and giving them up when found to be garbage (`collector.rs`).
//! 2. An accessor or modifier given anything but a record of its type is a `:type-error`
//!    naming the procedure, the record type and the field.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

use crate::builtins::def;
use crate::error::{ErrorKind, LispError, LispResult};
use crate::state::State;
use crate::value::{Foreign, Value};

/// What a record type is: its name (without `<>`) and field names.
#[derive(Debug)]
pub(crate) struct RecordTypeInfo {
    name: String,
    /// `record NAME`, what records of this type print and report as.
    type_name: String,
    fields: Vec<String>,
}

/// A record type, as a Lisp value (`#<record-type point>`).
#[derive(Debug)]
pub(crate) struct RecordType(Rc<RecordTypeInfo>);

impl Foreign for RecordType {
    fn type_name(&self) -> &str {
        "record-type"
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A record: its type and one value per field.
#[derive(Debug)]
pub(crate) struct Record {
    rtd: Rc<RecordTypeInfo>,
    fields: RefCell<Vec<Value>>,
}

impl Foreign for Record {
    fn type_name(&self) -> &str {
        &self.rtd.type_name
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn holds_values(&self) -> bool {
        true
    }
    fn trace(&self, visit: &mut dyn FnMut(&Value)) -> bool {
        let Ok(fields) = self.fields.try_borrow() else {
            return false;
        };
        fields.iter().for_each(visit);
        true
    }
    fn clear_values(&self) -> Vec<Value> {
        self.fields
            .try_borrow_mut()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

fn rtd_arg<'a>(who: &str, v: &'a Value) -> LispResult<&'a Rc<RecordTypeInfo>> {
    match v {
        Value::Foreign(f) => match f.as_any().downcast_ref::<RecordType>() {
            Some(t) => Ok(&t.0),
            None => Err(LispError::type_error(who, "a record type", v)),
        },
        other => Err(LispError::type_error(who, "a record type", other)),
    }
}

/// The record `v` if it is one of type `rtd`.
fn record_of<'a>(rtd: &Rc<RecordTypeInfo>, v: &'a Value) -> Option<&'a Record> {
    match v {
        Value::Foreign(f) => f
            .as_any()
            .downcast_ref::<Record>()
            .filter(|r| Rc::ptr_eq(&r.rtd, rtd)),
        _ => None,
    }
}

/// The name of a symbol or string argument (record and field names).
fn name_of(v: &Value) -> Option<String> {
    match v {
        Value::Symbol(s) => Some(s.name().to_string()),
        Value::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

/// `(%make-record-type name fields)`: `name` a symbol (`<point>` or `point`), `fields` a list
/// of symbols.
fn make_record_type(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let raw = name_of(&a[0])
        .ok_or_else(|| LispError::type_error("define-record-type", "a symbol", &a[0]))?;
    let name = raw
        .strip_prefix('<')
        .and_then(|n| n.strip_suffix('>'))
        .filter(|n| !n.is_empty())
        .unwrap_or(&raw)
        .to_string();
    let list = crate::builtins::list_arg("define-record-type", &a[1])?;
    let mut fields: Vec<String> = Vec::with_capacity(list.len());
    for f in &list {
        let field = name_of(f).ok_or_else(|| {
            LispError::type_error("define-record-type", "a field name (a symbol)", f)
        })?;
        if fields.contains(&field) {
            return Err(LispError::new(
                ErrorKind::Syntax,
                format!("define-record-type {name}: field {field} is listed twice"),
            ));
        }
        fields.push(field);
    }
    let type_name = format!("record {name}");
    Ok(Value::foreign(RecordType(Rc::new(RecordTypeInfo {
        name,
        type_name,
        fields,
    }))))
}

/// `(%record type v …)`: one value per field, in field order.
fn record(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let rtd = rtd_arg("%record", &a[0])?;
    let values = a[1..].to_vec();
    if values.len() != rtd.fields.len() {
        return Err(LispError::new(
            ErrorKind::ArityError,
            format!(
                "record {} has {} fields, got {} values",
                rtd.name,
                rtd.fields.len(),
                values.len()
            ),
        ));
    }
    Ok(Value::foreign(Record {
        rtd: Rc::clone(rtd),
        fields: RefCell::new(values),
    }))
}

fn is_record(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let rtd = rtd_arg("%record?", &a[0])?;
    Ok(Value::Bool(record_of(rtd, &a[1]).is_some()))
}

/// The field index argument `a[i]`, checked against the type.
fn field_index(rtd: &RecordTypeInfo, v: &Value) -> LispResult<usize> {
    match v {
        Value::Int(i) if *i >= 0 && (*i as u64) < rtd.fields.len() as u64 => Ok(*i as usize),
        other => Err(LispError::type_error(
            "%record-ref",
            "a field index of the record type",
            other,
        )),
    }
}

/// The error for an accessor/modifier given a non-record (invariant 2).
fn not_a_record(who: &Value, rtd: &RecordTypeInfo, field: usize, got: &Value) -> LispError {
    let who = name_of(who).unwrap_or_else(|| "record accessor".to_string());
    LispError::new(
        ErrorKind::TypeError,
        format!(
            "{who} expects a record of type {} (field {}), got {} ({})",
            rtd.name,
            rtd.fields.get(field).map_or("?", String::as_str),
            crate::printer::write_string_limited(got, 80),
            got.type_description()
        ),
    )
}

/// `(%record-ref type x i who)`.
fn record_ref(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let rtd = rtd_arg("%record-ref", &a[0])?;
    let i = field_index(rtd, &a[2])?;
    let rec = record_of(rtd, &a[1]).ok_or_else(|| not_a_record(&a[3], rtd, i, &a[1]))?;
    let fields = rec
        .fields
        .try_borrow()
        .map_err(|_| LispError::new(ErrorKind::Error, "record is being modified"))?;
    Ok(fields.get(i).cloned().unwrap_or_default())
}

/// `(%record-set! type x i v who)`.
fn record_set(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let rtd = rtd_arg("%record-set!", &a[0])?;
    let i = field_index(rtd, &a[2])?;
    let rec = record_of(rtd, &a[1]).ok_or_else(|| not_a_record(&a[4], rtd, i, &a[1]))?;
    let old = {
        let mut fields = rec
            .fields
            .try_borrow_mut()
            .map_err(|_| LispError::new(ErrorKind::Error, "record is being modified"))?;
        match fields.get_mut(i) {
            Some(slot) => std::mem::replace(slot, a[3].clone()),
            None => Value::Nil,
        }
    };
    drop(old);
    Ok(Value::Nil)
}

pub(crate) fn install(st: &mut State) {
    def(st, "%make-record-type", 2, Some(2), make_record_type);
    def(st, "%record", 1, None, record);
    def(st, "%record?", 2, Some(2), is_record);
    def(st, "%record-ref", 4, Some(4), record_ref);
    def(st, "%record-set!", 5, Some(5), record_set);
}
