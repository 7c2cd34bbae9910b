//! `Op::JumpLoopNum`: the back edge of an inline loop whose arguments are numbers computed
//! from locals and constants, in one dispatch (and `Op::TailSelfNum`, the same for a function's
//! tail call of itself, whose parameters are the locals from 0).
//!
//! `(loop (- i 1) (+ i sum))` dispatched op by op is `PrimLI`, `PrimLL`, `JumpLoop`: each result
//! is pushed, then popped into its parameter. Here the arguments are computed into registers and
//! written into the parameters' slots directly.
//!
//! # Invariants
//!
//! 1. [`jump_nums`] reads the frame's slots and nothing else changes: it either computes
//!    every argument and stores it, or returns `false` with no effect at all (no error, no
//!    step), so the caller can fall back on dispatching the same argument ops, which compute the same values
//!    in the same order or raise the first error in that order.
//! 2. It takes an op's fast path only where that op's own arm in the dispatch loop takes a fast
//!    path with the same result (`prim_intact` checked the same way, integer overflow left to
//!    the slow path, the same integer-float mixes).

use crate::bytecode::{Op, PrimOp};
use crate::state::PRIM_COUNT;
use crate::value::Value;

use super::arith::{float_arith, int_arith};

/// The most arguments a `JumpLoopNum` takes (the compiler emits it for no more).
pub(crate) const MAX_NUM_ARGS: usize = 4;

/// A computed argument.
#[derive(Clone, Copy)]
pub(super) enum Num {
    /// The parameter's own local, unchanged.
    Keep,
    Int(i64),
    Float(f64),
}

/// Whether the compiler may use `op` as an argument of a `JumpLoopNum`.
pub(crate) fn is_num_arg(op: &Op) -> bool {
    match *op {
        Op::Local(_) | Op::Int(_) => true,
        Op::PrimLI(p, ..) | Op::PrimLL(p, ..) | Op::PrimLK(p, ..) => p.is_arith(),
        _ => false,
    }
}

#[inline(always)]
fn num(v: &Value) -> Option<Num> {
    match *v {
        Value::Int(x) => Some(Num::Int(x)),
        Value::Float(x) => Some(Num::Float(x)),
        _ => None,
    }
}

/// `a OP b` for `+ - *` on numbers, as the fused primitive ops compute it; `None` on an integer
/// overflow (the slow path reports it).
#[inline(always)]
fn arith(p: PrimOp, a: Num, b: Num) -> Option<Num> {
    let (x, y) = match (a, b) {
        (Num::Int(x), Num::Int(y)) => return int_arith(p, x, y).map(Num::Int),
        (Num::Float(x), Num::Float(y)) => (x, y),
        (Num::Int(x), Num::Float(y)) => (x as f64, y),
        (Num::Float(x), Num::Int(y)) => (x, y as f64),
        _ => return None,
    };
    Some(Num::Float(float_arith(p, x, y)))
}

/// The back edge's work: computes the arguments `ops` (each [`is_num_arg`], at most
/// [`MAX_NUM_ARGS`]) of the loop whose parameters are the locals from `first` and stores them,
/// or returns `false` with no effect (invariant 1). Out of line, so the dispatch loop keeps its
/// registers; unrolled for each argument count.
#[inline(never)]
pub(super) fn jump_nums(
    w: &mut [Value],
    first: usize,
    ops: &[Op],
    consts: &[Value],
    intact: &[bool; PRIM_COUNT],
) -> bool {
    match *ops {
        [ref a] => fixed(w, first, [a], consts, intact),
        [ref a, ref b] => fixed(w, first, [a, b], consts, intact),
        [ref a, ref b, ref c] => fixed(w, first, [a, b, c], consts, intact),
        [ref a, ref b, ref c, ref d] => fixed(w, first, [a, b, c, d], consts, intact),
        _ => false,
    }
}

#[inline(always)]
fn fixed<const N: usize>(
    w: &mut [Value],
    first: usize,
    ops: [&Op; N],
    consts: &[Value],
    intact: &[bool; PRIM_COUNT],
) -> bool {
    let mut vals = [Num::Keep; N];
    for k in 0..N {
        match one(w, first + k, ops[k], consts, intact) {
            Some(v) => vals[k] = v,
            None => return false,
        }
    }
    store_nums(w, first, &vals);
    true
}

/// The value of one argument op whose parameter is local `dst` (invariant 2).
#[inline(always)]
fn one(
    w: &[Value],
    dst: usize,
    op: &Op,
    consts: &[Value],
    intact: &[bool; PRIM_COUNT],
) -> Option<Num> {
    match *op {
        Op::Local(s) if s as usize == dst => Some(Num::Keep),
        Op::Local(s) => num(&w[s as usize]),
        Op::Int(i) => Some(Num::Int(i64::from(i))),
        Op::PrimLI(p, s, imm) if intact[p.index()] => {
            num(&w[s as usize]).and_then(|a| arith(p, a, Num::Int(i64::from(imm))))
        }
        Op::PrimLL(p, a, b) if intact[p.index()] => {
            match (num(&w[a as usize]), num(&w[b as usize])) {
                (Some(a), Some(b)) => arith(p, a, b),
                _ => None,
            }
        }
        Op::PrimLK(p, a, k) if intact[p.index()] => {
            match (num(&w[a as usize]), consts.get(k as usize).and_then(num)) {
                (Some(a), Some(b)) => arith(p, a, b),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Stores the computed arguments into the locals from `at`. Each kind has its own path, so
/// the value is written with a constant tag (see `stack.rs` on copies through a temporary).
#[inline(always)]
fn store_nums(w: &mut [Value], at: usize, vals: &[Num]) {
    for (k, v) in vals.iter().enumerate() {
        match *v {
            Num::Keep => {}
            Num::Int(x) => put(&mut w[at + k], Value::Int(x)),
            Num::Float(x) => put(&mut w[at + k], Value::Float(x)),
        }
    }
}

/// Writes `new` into `slot`, dropping the old value only if it needs it.
#[inline(always)]
fn put(slot: &mut Value, new: Value) {
    if slot.is_immediate() {
        std::mem::forget(std::mem::replace(slot, new));
    } else {
        *slot = new;
    }
}
