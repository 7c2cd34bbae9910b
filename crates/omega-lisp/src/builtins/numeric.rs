//! The R7RS number procedures of SPEC §6.9 beside §6.3's arithmetic: exactness (`exact inexact
//! exact->inexact inexact->exact exact? inexact? exact-integer?`), `truncate`, integer division
//! (`floor/ truncate/ floor-quotient floor-remainder truncate-quotient truncate-remainder`),
//! `gcd lcm square exact-integer-sqrt` and `nan? infinite? finite?`.
//!
//! # Implementation details
//!
//! Omega's exact numbers are the 64-bit integers and its inexact numbers the 64-bit floats;
//! there are no rationals or bignums. So `(exact 2.5)` is an error (not `5/2`), and a result
//! that does not fit an `i64` is an `:overflow` error — never a wrap and never a panic
//! (`(floor/ i64-min -1)`, `(square 4000000000)`, `(lcm …)`).
//!
//! `floor/`, `truncate/` and `exact-integer-sqrt` return two values (`values.rs`): quotient
//! and remainder, root and rest.
//!
//! The integer-division procedures also accept floats with integral values (R7RS's inexact
//! integers) and then return floats.

use crate::builtins::def;
use crate::builtins::numbers::overflow;
use crate::builtins::values::values_of;
use crate::error::{ErrorKind, LispError, LispResult};
use crate::printer::format_float;
use crate::state::State;
use crate::value::Value;

fn not_number(who: &str, v: &Value) -> LispError {
    LispError::type_error(who, "a number", v)
}

fn exact(_: &mut State, a: &[Value]) -> LispResult<Value> {
    to_exact("exact", &a[0])
}
fn inexact_to_exact(_: &mut State, a: &[Value]) -> LispResult<Value> {
    to_exact("inexact->exact", &a[0])
}

/// The integer equal to `v`: a float must be integral and fit an `i64`.
fn to_exact(who: &str, v: &Value) -> LispResult<Value> {
    match v {
        Value::Int(i) => Ok(Value::Int(*i)),
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 => {
            // 2^63 is exactly representable; every integral float in [-2^63, 2^63) fits.
            const LIMIT: f64 = 9_223_372_036_854_775_808.0;
            if (-LIMIT..LIMIT).contains(f) {
                Ok(Value::Int(*f as i64))
            } else {
                Err(LispError::new(
                    ErrorKind::Overflow,
                    format!("{who}: {} does not fit a 64-bit integer", format_float(*f)),
                ))
            }
        }
        Value::Float(f) => Err(LispError::new(
            ErrorKind::Error,
            format!(
                "{who}: {} has no exact value (Omega's exact numbers are integers; round, floor \
                 or truncate it first)",
                format_float(*f)
            ),
        )),
        other => Err(not_number(who, other)),
    }
}

fn to_inexact(who: &str, v: &Value) -> LispResult<Value> {
    match v {
        Value::Int(i) => Ok(Value::Float(*i as f64)),
        Value::Float(f) => Ok(Value::Float(*f)),
        other => Err(not_number(who, other)),
    }
}
fn inexact(_: &mut State, a: &[Value]) -> LispResult<Value> {
    to_inexact("inexact", &a[0])
}
fn exact_to_inexact(_: &mut State, a: &[Value]) -> LispResult<Value> {
    to_inexact("exact->inexact", &a[0])
}

fn is_exact(_: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Int(_) => Ok(Value::Bool(true)),
        Value::Float(_) => Ok(Value::Bool(false)),
        other => Err(not_number("exact?", other)),
    }
}
fn is_inexact(_: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Int(_) => Ok(Value::Bool(false)),
        Value::Float(_) => Ok(Value::Bool(true)),
        other => Err(not_number("inexact?", other)),
    }
}
fn is_exact_integer(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Bool(matches!(a[0], Value::Int(_))))
}

fn float_test(who: &str, v: &Value, test: fn(f64) -> bool) -> LispResult<Value> {
    match v {
        Value::Int(i) => Ok(Value::Bool(test(*i as f64))),
        Value::Float(f) => Ok(Value::Bool(test(*f))),
        other => Err(not_number(who, other)),
    }
}
fn is_nan(_: &mut State, a: &[Value]) -> LispResult<Value> {
    float_test("nan?", &a[0], f64::is_nan)
}
fn is_infinite(_: &mut State, a: &[Value]) -> LispResult<Value> {
    float_test("infinite?", &a[0], f64::is_infinite)
}
fn is_finite(_: &mut State, a: &[Value]) -> LispResult<Value> {
    float_test("finite?", &a[0], f64::is_finite)
}

fn truncate(_: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Int(i) => Ok(Value::Int(*i)),
        Value::Float(f) => Ok(Value::Float(f.trunc())),
        other => Err(not_number("truncate", other)),
    }
}

fn square(_: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Int(i) => i
            .checked_mul(*i)
            .map(Value::Int)
            .ok_or_else(|| overflow("square")),
        Value::Float(f) => Ok(Value::Float(f * f)),
        other => Err(not_number("square", other)),
    }
}

/// Which integer division: quotient rounded toward negative infinity or toward zero.
#[derive(Clone, Copy)]
enum Rounding {
    Floor,
    Truncate,
}

/// An integer-division operand: an integer, or a float with an integral value.
enum Operand {
    Int(i64),
    Float(f64),
}

fn operand(who: &str, v: &Value) -> LispResult<Operand> {
    match v {
        Value::Int(i) => Ok(Operand::Int(*i)),
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 => Ok(Operand::Float(*f)),
        other => Err(LispError::type_error(who, "an integer", other)),
    }
}

/// `(quotient, remainder)` of `a` by `b` under `rounding`. The quotient is an `:overflow` error
/// for `i64::MIN / -1` (the remainder, 0, is still defined).
fn divide(
    who: &str,
    rounding: Rounding,
    a: &Value,
    b: &Value,
) -> LispResult<(LispResult<Value>, Value)> {
    let zero = || {
        LispError::new(
            ErrorKind::DivisionByZero,
            format!("{who}: division by zero"),
        )
    };
    match (operand(who, a)?, operand(who, b)?) {
        (Operand::Int(n), Operand::Int(d)) => {
            if d == 0 {
                return Err(zero());
            }
            // `i64::MIN / -1` is the only overflow; its remainder is 0.
            let q = n.checked_div(d);
            let mut r = n.checked_rem(d).unwrap_or(0);
            let mut q = q.ok_or_else(|| overflow(who));
            if matches!(rounding, Rounding::Floor) && r != 0 && ((r < 0) != (d < 0)) {
                q = q.map(|q| q - 1);
                r += d;
            }
            Ok((q.map(Value::Int), Value::Int(r)))
        }
        (n, d) => {
            let f = |o: Operand| match o {
                Operand::Int(i) => i as f64,
                Operand::Float(f) => f,
            };
            let (n, d) = (f(n), f(d));
            if d == 0.0 {
                return Err(zero());
            }
            let q = match rounding {
                Rounding::Floor => (n / d).floor(),
                Rounding::Truncate => (n / d).trunc(),
            };
            Ok((Ok(Value::Float(q)), Value::Float(n - d * q)))
        }
    }
}

fn both(_: &mut State, q: LispResult<Value>, r: Value) -> LispResult<Value> {
    Ok(values_of(vec![q?, r]))
}
fn quotient_part(_: &mut State, q: LispResult<Value>, _: Value) -> LispResult<Value> {
    q
}
fn remainder_part(_: &mut State, _: LispResult<Value>, r: Value) -> LispResult<Value> {
    Ok(r)
}

macro_rules! divisions {
    ($($f:ident $name:literal $rounding:ident $part:ident;)*) => {
        $(fn $f(st: &mut State, a: &[Value]) -> LispResult<Value> {
            let (q, r) = divide($name, Rounding::$rounding, &a[0], &a[1])?;
            $part(st, q, r)
        })*
        fn install_divisions(st: &mut State) {
            $(def(st, $name, 2, Some(2), $f);)*
        }
    };
}

divisions! {
    floor_div "floor/" Floor both;
    floor_quotient "floor-quotient" Floor quotient_part;
    floor_remainder "floor-remainder" Floor remainder_part;
    truncate_div "truncate/" Truncate both;
    truncate_quotient "truncate-quotient" Truncate quotient_part;
    truncate_remainder "truncate-remainder" Truncate remainder_part;
}

fn int_args(who: &str, a: &[Value]) -> LispResult<Vec<i64>> {
    a.iter()
        .map(|v| match v {
            Value::Int(i) => Ok(*i),
            other => Err(LispError::type_error(who, "integers", other)),
        })
        .collect()
}

fn gcd_u64(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn to_int(who: &str, n: u64) -> LispResult<Value> {
    i64::try_from(n).map(Value::Int).map_err(|_| overflow(who))
}

fn gcd(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let g = int_args("gcd", a)?
        .into_iter()
        .fold(0, |g, n| gcd_u64(g, n.unsigned_abs()));
    to_int("gcd", g)
}

fn lcm(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let mut l: u64 = 1;
    for n in int_args("lcm", a)? {
        let n = n.unsigned_abs();
        if n == 0 {
            return Ok(Value::Int(0));
        }
        l = (l / gcd_u64(l, n))
            .checked_mul(n)
            .ok_or_else(|| overflow("lcm"))?;
    }
    to_int("lcm", l)
}

fn exact_integer_sqrt(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let k = match &a[0] {
        Value::Int(k) if *k >= 0 => *k,
        other => {
            return Err(LispError::type_error(
                "exact-integer-sqrt",
                "a non-negative integer",
                other,
            ))
        }
    };
    // The float root is within one of the true root; correct it exactly.
    let mut s = (k as f64).sqrt() as i64;
    while s.checked_mul(s).is_none_or(|sq| sq > k) {
        s -= 1;
    }
    while (s + 1).checked_mul(s + 1).is_some_and(|sq| sq <= k) {
        s += 1;
    }
    Ok(values_of(vec![Value::Int(s), Value::Int(k - s * s)]))
}

pub(crate) fn install(st: &mut State) {
    def(st, "exact", 1, Some(1), exact);
    def(st, "inexact", 1, Some(1), inexact);
    def(st, "exact->inexact", 1, Some(1), exact_to_inexact);
    def(st, "inexact->exact", 1, Some(1), inexact_to_exact);
    def(st, "exact?", 1, Some(1), is_exact);
    def(st, "inexact?", 1, Some(1), is_inexact);
    def(st, "exact-integer?", 1, Some(1), is_exact_integer);
    def(st, "nan?", 1, Some(1), is_nan);
    def(st, "infinite?", 1, Some(1), is_infinite);
    def(st, "finite?", 1, Some(1), is_finite);
    def(st, "truncate", 1, Some(1), truncate);
    def(st, "square", 1, Some(1), square);
    install_divisions(st);
    def(st, "gcd", 0, None, gcd);
    def(st, "lcm", 0, None, lcm);
    def(st, "exact-integer-sqrt", 1, Some(1), exact_integer_sqrt);
}
