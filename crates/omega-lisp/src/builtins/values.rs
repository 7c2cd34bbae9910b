//! Multiple values (SPEC §6.9): `values` and the internal `%values->list`; `call-with-values`,
//! `let-values`, `let*-values`, `define-values` and `receive` are built on them in
//! `scheme_prelude.lisp`.
//!
//! # Design
//!
//! `(values x)` is `x` itself, so the common case costs nothing. `values` with any other number
//! of arguments returns one **multiple-values object** (a foreign value of type
//! `multiple-values`, printed `#<multiple-values>`) holding them. The consumers —
//! `call-with-values` and the binding forms over it — spread such an object into the
//! consumer's arguments and pass any other value as the single argument. In a single-value
//! context a multiple-values object is just an opaque value: it can be stored, passed on and
//! later consumed, but arithmetic and the other procedures reject it with a `:type-error`
//! (`+ expects numbers, got #<multiple-values> (a multiple-values)`); R7RS leaves that case
//! unspecified.
//!
//! # Invariants
//!
//! 1. A multiple-values object never holds exactly one value (`values` of one argument returns
//!    the argument), so a consumer sees the same arguments whichever way they were produced.
//! 2. Its values are fixed when it is made and never mutated by Lisp code. Unlike a port it
//!    does hold [`Value`] edges, so a cycle can run through it once a mutable object points
//!    back at it (a captured, assigned variable holding `(values (lambda () var) 1)`): it
//!    takes part in cycle collection (`collector.rs`): it traces its values, and the collector
//!    alone may clear them when the object is garbage.

use std::any::Any;
use std::cell::RefCell;

use crate::builtins::def;
use crate::error::LispResult;
use crate::state::State;
use crate::value::{Foreign, Value};

/// The result of `values` with zero or two or more arguments.
#[derive(Debug)]
pub(crate) struct MultipleValues(RefCell<Vec<Value>>);

impl Foreign for MultipleValues {
    fn type_name(&self) -> &str {
        "multiple-values"
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn holds_values(&self) -> bool {
        true
    }
    fn trace(&self, visit: &mut dyn FnMut(&Value)) -> bool {
        let Ok(values) = self.0.try_borrow() else {
            return false;
        };
        values.iter().for_each(visit);
        true
    }
    fn clear_values(&self) -> Vec<Value> {
        self.0
            .try_borrow_mut()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

impl MultipleValues {
    /// The values, in order.
    pub(crate) fn values(&self) -> Vec<Value> {
        self.0.borrow().clone()
    }
}

/// `values` of `items`: the item itself when there is one, else a multiple-values object.
pub(crate) fn values_of(mut items: Vec<Value>) -> Value {
    if items.len() == 1 {
        items.pop().unwrap_or_default()
    } else {
        Value::foreign(MultipleValues(RefCell::new(items)))
    }
}

fn values(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(values_of(a.to_vec()))
}

/// `(%values->list v)`: the values of a multiple-values object as a list, or `(v)`.
fn values_to_list(_: &mut State, a: &[Value]) -> LispResult<Value> {
    if let Value::Foreign(f) = &a[0] {
        if let Some(mv) = f.as_any().downcast_ref::<MultipleValues>() {
            return Ok(Value::list(mv.values()));
        }
    }
    Ok(Value::list([a[0].clone()]))
}

pub(crate) fn install(st: &mut State) {
    def(st, "values", 0, None, values);
    def(st, "%values->list", 1, Some(1), values_to_list);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn a_cycle_through_multiple_values_is_reclaimed_and_a_held_one_kept() {
        crate::collector::collect();
        // cell -> #<multiple-values> -> (cell): only the collector can free it.
        let cell = crate::collector::new_cell(Value::Nil);
        let weak = match &cell {
            Value::Cell(c) => Rc::downgrade(c),
            _ => unreachable!("new_cell makes a cell"),
        };
        let mv = values_of(vec![Value::list([cell.clone()]), Value::Int(1)]);
        if let Value::Cell(c) = &cell {
            *c.borrow_mut() = mv.clone();
        }
        drop(cell);
        // Held from outside (through `mv`): kept, values intact.
        crate::collector::collect();
        assert!(weak.upgrade().is_some());
        let Value::Foreign(f) = &mv else {
            unreachable!("two values make an object")
        };
        let held = f
            .as_any()
            .downcast_ref::<MultipleValues>()
            .map(|m| m.values().len());
        assert_eq!(held, Some(2));
        drop(mv);
        assert!(crate::collector::collect() >= 1);
        assert!(
            weak.upgrade().is_none(),
            "the cycle through the values was freed"
        );
    }
}
