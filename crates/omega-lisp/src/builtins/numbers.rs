//! Numbers: `+ - * / quotient remainder modulo abs min max floor ceiling round sqrt expt
//! = < > <= >= number? integer? float? zero? even? odd?`.

use crate::builtins::{def, int_arg};
use crate::bytecode::PrimOp;
use crate::error::{ErrorKind, LispError, LispResult};
use crate::state::State;
use crate::value::Value;

#[derive(Clone, Copy)]
enum Num {
    I(i64),
    F(f64),
}

impl Num {
    fn f(self) -> f64 {
        match self {
            Num::I(i) => i as f64,
            Num::F(f) => f,
        }
    }
    fn value(self) -> Value {
        match self {
            Num::I(i) => Value::Int(i),
            Num::F(f) => Value::Float(f),
        }
    }
}

fn num(who: &str, v: &Value) -> LispResult<Num> {
    match v {
        Value::Int(i) => Ok(Num::I(*i)),
        Value::Float(f) => Ok(Num::F(*f)),
        other => Err(LispError::type_error(who, "numbers", other)),
    }
}

/// `:overflow` for `who`.
pub(crate) fn overflow(who: &str) -> LispError {
    LispError::new(ErrorKind::Overflow, format!("integer overflow in {who}"))
}

fn div_zero(who: &str) -> LispError {
    LispError::new(
        ErrorKind::DivisionByZero,
        format!("{who}: division by zero"),
    )
}

fn add(who: &str, a: Num, b: Num) -> LispResult<Num> {
    Ok(match (a, b) {
        (Num::I(x), Num::I(y)) => Num::I(x.checked_add(y).ok_or_else(|| overflow(who))?),
        _ => Num::F(a.f() + b.f()),
    })
}

fn sub(who: &str, a: Num, b: Num) -> LispResult<Num> {
    Ok(match (a, b) {
        (Num::I(x), Num::I(y)) => Num::I(x.checked_sub(y).ok_or_else(|| overflow(who))?),
        _ => Num::F(a.f() - b.f()),
    })
}

fn mul(who: &str, a: Num, b: Num) -> LispResult<Num> {
    Ok(match (a, b) {
        (Num::I(x), Num::I(y)) => Num::I(x.checked_mul(y).ok_or_else(|| overflow(who))?),
        _ => Num::F(a.f() * b.f()),
    })
}

fn div(a: Num, b: Num) -> LispResult<Num> {
    Ok(match (a, b) {
        (Num::I(_), Num::I(0)) => return Err(div_zero("/")),
        (Num::I(x), Num::I(y)) => {
            // `checked_rem` too: `i64::MIN % -1` overflows (issue 10, class 6).
            if x.checked_rem(y).ok_or_else(|| overflow("/"))? == 0 {
                Num::I(x.checked_div(y).ok_or_else(|| overflow("/"))?)
            } else {
                Num::F(x as f64 / y as f64)
            }
        }
        _ => Num::F(a.f() / b.f()),
    })
}

/// Generic binary arithmetic for the inlined `+ - *` when an operand is not an integer.
pub(crate) fn arith2(p: PrimOp, a: &Value, b: &Value) -> LispResult<Value> {
    let who = p.name();
    let (x, y) = (num(who, a)?, num(who, b)?);
    let r = match p {
        PrimOp::Add => add(who, x, y)?,
        PrimOp::Sub => sub(who, x, y)?,
        _ => mul(who, x, y)?,
    };
    Ok(r.value())
}

fn cmp(a: Num, b: Num) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Num::I(x), Num::I(y)) => Some(x.cmp(&y)),
        _ => a.f().partial_cmp(&b.f()),
    }
}

fn holds(p: PrimOp, a: Num, b: Num) -> bool {
    use std::cmp::Ordering::*;
    match (p, cmp(a, b)) {
        (_, None) => false,
        (PrimOp::Lt, Some(o)) => o == Less,
        (PrimOp::Gt, Some(o)) => o == Greater,
        (PrimOp::Le, Some(o)) => o != Greater,
        (PrimOp::Ge, Some(o)) => o != Less,
        (_, Some(o)) => o == Equal,
    }
}

/// Generic binary comparison for the inlined `< > <= >= =`.
pub(crate) fn compare2(p: PrimOp, a: &Value, b: &Value) -> LispResult<Value> {
    let who = p.name();
    Ok(Value::Bool(holds(p, num(who, a)?, num(who, b)?)))
}

fn chain(p: PrimOp, args: &[Value]) -> LispResult<Value> {
    let who = p.name();
    let nums = args
        .iter()
        .map(|a| num(who, a))
        .collect::<LispResult<Vec<_>>>()?;
    Ok(Value::Bool(nums.windows(2).all(|w| holds(p, w[0], w[1]))))
}

fn plus(_: &mut State, args: &[Value]) -> LispResult<Value> {
    let mut acc = Num::I(0);
    for a in args {
        acc = add("+", acc, num("+", a)?)?;
    }
    Ok(acc.value())
}

fn times(_: &mut State, args: &[Value]) -> LispResult<Value> {
    let mut acc = Num::I(1);
    for a in args {
        acc = mul("*", acc, num("*", a)?)?;
    }
    Ok(acc.value())
}

fn minus(_: &mut State, args: &[Value]) -> LispResult<Value> {
    let first = num("-", &args[0])?;
    if args.len() == 1 {
        return Ok(sub("-", Num::I(0), first)?.value());
    }
    let mut acc = first;
    for a in &args[1..] {
        acc = sub("-", acc, num("-", a)?)?;
    }
    Ok(acc.value())
}

fn divide(_: &mut State, args: &[Value]) -> LispResult<Value> {
    let first = num("/", &args[0])?;
    if args.len() == 1 {
        return Ok(div(Num::I(1), first)?.value());
    }
    let mut acc = first;
    for a in &args[1..] {
        acc = div(acc, num("/", a)?)?;
    }
    Ok(acc.value())
}

fn int_pair(who: &str, args: &[Value]) -> LispResult<(i64, i64)> {
    let a = int_arg(who, &args[0])?;
    let b = int_arg(who, &args[1])?;
    if b == 0 {
        return Err(div_zero(who));
    }
    Ok((a, b))
}

fn quotient(_: &mut State, args: &[Value]) -> LispResult<Value> {
    let (a, b) = int_pair("quotient", args)?;
    Ok(Value::Int(
        a.checked_div(b).ok_or_else(|| overflow("quotient"))?,
    ))
}

fn remainder(_: &mut State, args: &[Value]) -> LispResult<Value> {
    let (a, b) = int_pair("remainder", args)?;
    Ok(Value::Int(a.checked_rem(b).unwrap_or(0)))
}

fn modulo(_: &mut State, args: &[Value]) -> LispResult<Value> {
    let (a, b) = int_pair("modulo", args)?;
    let r = a.checked_rem(b).unwrap_or(0);
    Ok(Value::Int(if r != 0 && ((r < 0) != (b < 0)) {
        r + b
    } else {
        r
    }))
}

fn abs(_: &mut State, args: &[Value]) -> LispResult<Value> {
    Ok(match num("abs", &args[0])? {
        Num::I(i) => Value::Int(i.checked_abs().ok_or_else(|| overflow("abs"))?),
        Num::F(f) => Value::Float(f.abs()),
    })
}

fn extremum(who: &str, args: &[Value], want_max: bool) -> LispResult<Value> {
    let nums = args
        .iter()
        .map(|a| num(who, a))
        .collect::<LispResult<Vec<_>>>()?;
    let any_float = nums.iter().any(|n| matches!(n, Num::F(_)));
    let mut best = nums[0];
    for &n in &nums[1..] {
        let better = match cmp(n, best) {
            Some(std::cmp::Ordering::Greater) => want_max,
            Some(std::cmp::Ordering::Less) => !want_max,
            _ => false,
        };
        if better || n.f().is_nan() {
            best = n;
        }
    }
    Ok(if any_float {
        Value::Float(best.f())
    } else {
        best.value()
    })
}

fn min(_: &mut State, args: &[Value]) -> LispResult<Value> {
    extremum("min", args, false)
}

fn max(_: &mut State, args: &[Value]) -> LispResult<Value> {
    extremum("max", args, true)
}

fn rounding(who: &str, v: &Value, f: fn(f64) -> f64) -> LispResult<Value> {
    Ok(match num(who, v)? {
        Num::I(i) => Value::Int(i),
        Num::F(x) => Value::Float(f(x)),
    })
}

fn floor(_: &mut State, args: &[Value]) -> LispResult<Value> {
    rounding("floor", &args[0], f64::floor)
}

fn ceiling(_: &mut State, args: &[Value]) -> LispResult<Value> {
    rounding("ceiling", &args[0], f64::ceil)
}

fn round(_: &mut State, args: &[Value]) -> LispResult<Value> {
    rounding("round", &args[0], f64::round_ties_even)
}

fn sqrt(_: &mut State, args: &[Value]) -> LispResult<Value> {
    Ok(match num("sqrt", &args[0])? {
        Num::I(i) if i >= 0 => {
            let r = (i as f64).sqrt();
            let ri = r as i64;
            if ri.checked_mul(ri) == Some(i) {
                Value::Int(ri)
            } else {
                Value::Float(r)
            }
        }
        n => Value::Float(n.f().sqrt()),
    })
}

fn expt(_: &mut State, args: &[Value]) -> LispResult<Value> {
    let base = num("expt", &args[0])?;
    let e = num("expt", &args[1])?;
    Ok(match (base, e) {
        (Num::I(b), Num::I(e)) if e >= 0 => {
            let e = u32::try_from(e).map_err(|_| overflow("expt"))?;
            Value::Int(b.checked_pow(e).ok_or_else(|| overflow("expt"))?)
        }
        _ => Value::Float(base.f().powf(e.f())),
    })
}

fn num_eq(_: &mut State, a: &[Value]) -> LispResult<Value> {
    chain(PrimOp::NumEq, a)
}
fn lt(_: &mut State, a: &[Value]) -> LispResult<Value> {
    chain(PrimOp::Lt, a)
}
fn gt(_: &mut State, a: &[Value]) -> LispResult<Value> {
    chain(PrimOp::Gt, a)
}
fn le(_: &mut State, a: &[Value]) -> LispResult<Value> {
    chain(PrimOp::Le, a)
}
fn ge(_: &mut State, a: &[Value]) -> LispResult<Value> {
    chain(PrimOp::Ge, a)
}

fn is_number(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Bool(matches!(a[0], Value::Int(_) | Value::Float(_))))
}
fn is_integer(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Bool(matches!(a[0], Value::Int(_))))
}
fn is_float(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Bool(matches!(a[0], Value::Float(_))))
}
fn is_zero(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Bool(num("zero?", &a[0])?.f() == 0.0))
}
fn is_even(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Bool(int_arg("even?", &a[0])? % 2 == 0))
}
fn is_odd(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Bool(int_arg("odd?", &a[0])? % 2 != 0))
}

pub(crate) fn install(st: &mut State) {
    def(st, "+", 0, None, plus);
    def(st, "-", 1, None, minus);
    def(st, "*", 0, None, times);
    def(st, "/", 1, None, divide);
    def(st, "quotient", 2, Some(2), quotient);
    def(st, "remainder", 2, Some(2), remainder);
    def(st, "modulo", 2, Some(2), modulo);
    def(st, "abs", 1, Some(1), abs);
    def(st, "min", 1, None, min);
    def(st, "max", 1, None, max);
    def(st, "floor", 1, Some(1), floor);
    def(st, "ceiling", 1, Some(1), ceiling);
    def(st, "round", 1, Some(1), round);
    def(st, "sqrt", 1, Some(1), sqrt);
    def(st, "expt", 2, Some(2), expt);
    def(st, "=", 1, None, num_eq);
    def(st, "<", 1, None, lt);
    def(st, ">", 1, None, gt);
    def(st, "<=", 1, None, le);
    def(st, ">=", 1, None, ge);
    def(st, "number?", 1, Some(1), is_number);
    def(st, "integer?", 1, Some(1), is_integer);
    def(st, "float?", 1, Some(1), is_float);
    def(st, "zero?", 1, Some(1), is_zero);
    def(st, "even?", 1, Some(1), is_even);
    def(st, "odd?", 1, Some(1), is_odd);
}
