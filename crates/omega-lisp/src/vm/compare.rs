//! `Op::Compare`: a compare-and-branch whose two operands are decoded at compile time.
//!
//! `(not (= (car placed) (+ row dist)))` in an `and` was three dispatches (`CarL`, `PrimLL`,
//! `BranchPrim`), each operand pushed and popped again. Here the operands are [`CmpArg`]s read
//! straight from the frame's locals and compared in one dispatch.
//!
//! # Invariants
//!
//! 1. [`run`] reads the frame's locals and nothing else changes: it either returns the pc the
//!    `BranchPrim` would continue at after its operand ops ran on their fast paths, or `None`
//!    with no effect at all, and the operand ops and the `BranchPrim` after the `Compare` run
//!    instead (a non-integer, an overflow, a redefined primitive: their own results and errors,
//!    in their order).
//! 2. It takes a fast path only where each op it replaces takes one with the same result:
//!    `car` of a pair (`CarL`), integer `+`/`-` without overflow (`PrimLL`, `PrimLI`), an
//!    integer comparison (`BranchPrim`), every primitive involved still intact.

use crate::bytecode::{CmpArg, Compare, PrimOp};
use crate::state::PRIM_COUNT;
use crate::value::Value;

use super::arith::int_holds;

/// The comparison `c` on the frame's locals `w` (invariant 1): the pc to continue at, or
/// `None` with no effect.
#[inline(always)]
pub(super) fn run(w: &[Value], c: &Compare, intact: &[bool; PRIM_COUNT]) -> Option<u32> {
    if !intact[c.p.index()] || (c.neg && !intact[PrimOp::Not.index()]) {
        return None;
    }
    let x = int(w, c.a, intact)?;
    let y = int(w, c.b, intact)?;
    // As the `BranchPrim` with its pc after it: past its `JumpIfFalse`/`JumpIfFalseElsePop`
    // (and the `Prim(Not)` before it with `neg`), or to its target.
    Some(if int_holds(c.p, x, y) != c.neg {
        c.branch + 2 + u32::from(c.neg)
    } else {
        branch_to(c.target)
    })
}

/// `target`, the pc a fused test sends control to when its branch is taken, returned from a
/// call that is never inlined, so that the choice of the next pc stays a branch. Chosen
/// without branching (a `cmov`, which LLVM picks for a two-way `if` of two pcs), the next pc
/// — and with it the next op's fetch and dispatch — waits on the values compared: measured,
/// `sum` and `sumfp` ran 15–60 % slower with 14 % fewer instructions (a loop's folded test in
/// `vm/edge.rs`), `nqueens` 13 % slower (this op, twice in each turn of its `ok?` loop).
#[cold]
#[inline(never)]
pub(super) fn branch_to(target: u32) -> u32 {
    target
}

/// Operand `a` as an integer, when it is one on its op's fast path (invariant 2).
#[inline(always)]
fn int(w: &[Value], a: CmpArg, intact: &[bool; PRIM_COUNT]) -> Option<i64> {
    let local = |s: u16| match w.get(s as usize) {
        Some(Value::Int(x)) => Some(*x),
        _ => None,
    };
    if let Some(p) = a.prim() {
        if !intact[p.index()] {
            return None;
        }
    }
    match a {
        CmpArg::Local(s) => local(s),
        CmpArg::Int(k) => Some(k),
        CmpArg::Car(s) => match w.get(s as usize) {
            Some(Value::Pair(c)) => c.car_int(),
            _ => None,
        },
        CmpArg::AddLL(a, b) => local(a)?.checked_add(local(b)?),
        CmpArg::SubLL(a, b) => local(a)?.checked_sub(local(b)?),
        CmpArg::AddLI(s, k) => local(s)?.checked_add(k),
        CmpArg::SubLI(s, k) => local(s)?.checked_sub(k),
    }
}
