//! Equality and type predicates: `eq? eqv? equal? not boolean? string? symbol? keyword? list?
//! pair? null? procedure? map? task? error?`, and R7RS's `boolean=? symbol=?` (SPEC §6.9).

use crate::builtins::def;
use crate::error::{LispError, LispResult};
use crate::state::State;
use crate::value::{self, Value};

fn b(x: bool) -> LispResult<Value> {
    Ok(Value::Bool(x))
}

fn eq(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(value::eq(&a[0], &a[1]))
}
fn eqv(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(value::eqv(&a[0], &a[1]))
}
fn equal(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(value::equal(&a[0], &a[1]))
}
fn not(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(!a[0].is_truthy())
}
fn is_boolean(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(matches!(a[0], Value::Bool(_)))
}
fn is_string(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(matches!(a[0], Value::Str(_)))
}
fn is_symbol(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(matches!(a[0], Value::Symbol(_)))
}
fn is_keyword(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(matches!(a[0], Value::Keyword(_)))
}
/// `(list? x)`: a proper list (`#f` for a circular one).
fn is_list(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(matches!(
        crate::value::list_length(&a[0]),
        crate::value::ListShape::Proper(_)
    ))
}
fn is_pair(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(matches!(a[0], Value::Pair(_)))
}
fn is_null(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(a[0].is_nil())
}
fn is_procedure(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(a[0].is_procedure())
}
fn is_map(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(matches!(a[0], Value::Map(_)))
}
fn is_task(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(matches!(&a[0], Value::Task(_)))
}
fn is_error(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(matches!(a[0], Value::Error(_)))
}

/// `(boolean=? a b …)` / `(symbol=? a b …)`: every argument must be of the type (checked even
/// after a mismatch), and all must be the same.
fn all_same(who: &str, what: &str, a: &[Value], is: fn(&Value) -> bool) -> LispResult<Value> {
    if let Some(bad) = a.iter().find(|v| !is(v)) {
        return Err(LispError::type_error(who, what, bad));
    }
    b(a.windows(2).all(|w| value::eq(&w[0], &w[1])))
}
fn boolean_eq(_: &mut State, a: &[Value]) -> LispResult<Value> {
    all_same("boolean=?", "booleans", a, |v| matches!(v, Value::Bool(_)))
}
fn symbol_eq(_: &mut State, a: &[Value]) -> LispResult<Value> {
    all_same("symbol=?", "symbols", a, |v| matches!(v, Value::Symbol(_)))
}

pub(crate) fn install(st: &mut State) {
    def(st, "boolean=?", 2, None, boolean_eq);
    def(st, "symbol=?", 2, None, symbol_eq);
    def(st, "eq?", 2, Some(2), eq);
    def(st, "eqv?", 2, Some(2), eqv);
    def(st, "equal?", 2, Some(2), equal);
    def(st, "not", 1, Some(1), not);
    def(st, "boolean?", 1, Some(1), is_boolean);
    def(st, "string?", 1, Some(1), is_string);
    def(st, "symbol?", 1, Some(1), is_symbol);
    def(st, "keyword?", 1, Some(1), is_keyword);
    def(st, "list?", 1, Some(1), is_list);
    def(st, "pair?", 1, Some(1), is_pair);
    def(st, "null?", 1, Some(1), is_null);
    def(st, "procedure?", 1, Some(1), is_procedure);
    def(st, "map?", 1, Some(1), is_map);
    def(st, "task?", 1, Some(1), is_task);
    def(st, "error?", 1, Some(1), is_error);
}
