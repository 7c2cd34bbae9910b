//! The VM's inline number paths: integer and float arithmetic and comparisons of the fused
//! primitive ops (the same results as `builtins::numbers`).

use crate::bytecode::PrimOp;
use crate::value::Value;

/// `x OP y` for `+ - *` on two integers; `None` on overflow.
#[inline(always)]
pub(super) fn int_arith(p: PrimOp, x: i64, y: i64) -> Option<i64> {
    match p {
        PrimOp::Add => x.checked_add(y),
        PrimOp::Sub => x.checked_sub(y),
        _ => x.checked_mul(y),
    }
}

/// The top two values as floats when they are two numbers and at least one is a float (the
/// mixes that the generic `numbers` code computes in floating point).
#[inline(always)]
pub(super) fn float_pair(s: &[Value]) -> Option<(f64, f64)> {
    match s {
        [.., Value::Float(x), Value::Float(y)] => Some((*x, *y)),
        [.., Value::Int(x), Value::Float(y)] => Some((*x as f64, *y)),
        [.., Value::Float(x), Value::Int(y)] => Some((*x, *y as f64)),
        _ => None,
    }
}

/// `a` and `b` as floats when they are two numbers and at least one is a float.
#[inline(always)]
pub(super) fn num_pair(a: &Value, b: &Value) -> Option<(f64, f64)> {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => Some((*x, *y)),
        (Value::Int(x), Value::Float(y)) => Some((*x as f64, *y)),
        (Value::Float(x), Value::Int(y)) => Some((*x, *y as f64)),
        _ => None,
    }
}

/// `x OP y` for `+ - *` on floats (as `numbers::arith2` computes them).
#[inline(always)]
pub(super) fn float_arith(p: PrimOp, x: f64, y: f64) -> f64 {
    match p {
        PrimOp::Add => x + y,
        PrimOp::Sub => x - y,
        _ => x * y,
    }
}

/// `x OP y` for a comparison primitive on floats (`=` for anything else); false when either
/// is NaN, as in `numbers::compare2`.
#[inline(always)]
pub(super) fn float_holds(p: PrimOp, x: f64, y: f64) -> bool {
    match p {
        PrimOp::Lt => x < y,
        PrimOp::Gt => x > y,
        PrimOp::Le => x <= y,
        PrimOp::Ge => x >= y,
        _ => x == y,
    }
}

/// `x OP y` for a comparison primitive on two integers (`=` for anything else). Branch-free:
/// the ordering indexes a per-primitive bit mask (no jump table on `p`).
#[inline(always)]
pub(super) fn int_holds(p: PrimOp, x: i64, y: i64) -> bool {
    // Bit 0: less, bit 1: equal, bit 2: greater.
    let mask: u8 = match p {
        PrimOp::Lt => 0b001,
        PrimOp::Gt => 0b100,
        PrimOp::Le => 0b011,
        PrimOp::Ge => 0b110,
        _ => 0b010,
    };
    let bit = (x >= y) as u8 + (x > y) as u8;
    (mask >> bit) & 1 == 1
}
