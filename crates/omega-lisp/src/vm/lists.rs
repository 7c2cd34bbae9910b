//! The list primitives inlined by the compiler beyond `car`/`cdr`/`null?`: `pair?` and the
//! two- and three-step accessors `cadr`, `cddr`, `caddr` (`PrimOp::PairP`, `Cadr`, `Cddr`,
//! `Caddr`), which are builtins called through a global otherwise.
//!
//! # Invariants
//!
//! 1. [`cxr_fast`] has no effect: it either walks pairs all the way and returns a clone of the
//!    value reached, or returns `None`, and the caller then runs the generic primitive
//!    ([`cxr`]), whose error is the builtin's own (same message, built by the same function),
//!    or calls the redefined global.
//! 2. Like every inlined primitive, these are used only while their global is intact
//!    (`State::prim_intact`); a redefinition sends every use to the global's value.

use std::rc::Rc;

use crate::bytecode::PrimOp;
use crate::error::LispResult;
use crate::value::{Pair, Value};

/// The value `cadr`/`cddr`/`caddr` (and `car`/`cdr`) of `v` when every step is a pair; `None`
/// otherwise, and for any other primitive (invariant 1).
#[inline(always)]
pub(super) fn cxr_fast(p: PrimOp, v: &Value) -> Option<Value> {
    let Value::Pair(c) = v else { return None };
    match p {
        PrimOp::Car => Some(c.car()),
        PrimOp::Cdr => Some(c.cdr()),
        PrimOp::Cadr => tail_pair(c).map(|d| d.car()),
        PrimOp::Cddr => tail_pair(c).map(|d| d.cdr()),
        PrimOp::Caddr => tail_pair(c).and_then(|d| tail_pair(&d)).map(|dd| dd.car()),
        _ => None,
    }
}

/// The tail of `c` when it is a pair (a clone of its `Rc`: reading through a taken-out tail
/// would see the placeholder if the list's tail is the pair itself).
#[inline(always)]
fn tail_pair(c: &Pair) -> Option<Rc<Pair>> {
    match c.cdr() {
        Value::Pair(d) => Some(d),
        _ => None,
    }
}

/// Whether `p` is one of the accessors [`cxr`] computes.
#[inline(always)]
pub(super) fn is_cxr(p: PrimOp) -> bool {
    matches!(p, PrimOp::Cadr | PrimOp::Cddr | PrimOp::Caddr)
}

/// `cadr`/`cddr`/`caddr` of `v` as the builtin computes it, errors included (invariant 1).
pub(super) fn cxr(p: PrimOp, v: &Value) -> LispResult<Value> {
    if let Some(r) = cxr_fast(p, v) {
        return Ok(r);
    }
    match p {
        PrimOp::Cadr => crate::builtins::lists::cadr_of(v),
        PrimOp::Cddr => crate::builtins::lists::cddr_of(v),
        _ => crate::builtins::list_ops::cxr(p.name(), v),
    }
}
