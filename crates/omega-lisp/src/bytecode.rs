//! The compiled form: a typed [`Op`] enum (12 bytes) and function prototypes ([`Proto`]).
//!
//! # Implementation details
//!
//! * Locals live in the frame's window of the VM value stack, addressed by slot number.
//! * Closures are flat: a closure copies the values it captures. A variable that is captured and
//!   assigned (or bound by `letrec`/internal `define`) lives in a `Value::Cell`, so copies share it.
//! * Globals are addressed by slot in the runtime's global table (late-bound: redefinition is
//!   seen by code compiled earlier).
//! * `Prim` ops are inlined arithmetic/comparison on the two top values with a small-int fast
//!   path; if the program redefines the primitive's global, they fall back to a normal call.

use std::rc::Rc;

use crate::value::Value;

/// An inlined primitive operation (binary unless noted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PrimOp {
    Add,
    Sub,
    Mul,
    Lt,
    Gt,
    Le,
    Ge,
    NumEq,
    Cons,
    EqP,
    /// Unary.
    Car,
    /// Unary.
    Cdr,
    /// Unary.
    Not,
    /// Unary.
    NullP,
    /// Unary: `pair?` (a fused test like `null?`).
    PairP,
    /// Unary: `cadr` (`vm/lists.rs`; off its fast path the builtin's own error).
    Cadr,
    /// Unary: `cddr`.
    Cddr,
    /// Unary: `caddr`.
    Caddr,
}

impl PrimOp {
    /// Every primitive, with its global name and argument count.
    pub(crate) const ALL: [(PrimOp, &'static str, u32); 18] = [
        (PrimOp::Add, "+", 2),
        (PrimOp::Sub, "-", 2),
        (PrimOp::Mul, "*", 2),
        (PrimOp::Lt, "<", 2),
        (PrimOp::Gt, ">", 2),
        (PrimOp::Le, "<=", 2),
        (PrimOp::Ge, ">=", 2),
        (PrimOp::NumEq, "=", 2),
        (PrimOp::Cons, "cons", 2),
        (PrimOp::EqP, "eq?", 2),
        (PrimOp::Car, "car", 1),
        (PrimOp::Cdr, "cdr", 1),
        (PrimOp::Not, "not", 1),
        (PrimOp::NullP, "null?", 1),
        (PrimOp::PairP, "pair?", 1),
        (PrimOp::Cadr, "cadr", 1),
        (PrimOp::Cddr, "cddr", 1),
        (PrimOp::Caddr, "caddr", 1),
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// This primitive's bit in a set of primitives (`Edge::needs`, `State::prims_redefined`).
    #[inline]
    pub(crate) fn bit(self) -> u64 {
        1 << self.index()
    }

    #[inline]
    pub(crate) fn argc(self) -> u32 {
        match self {
            PrimOp::Car
            | PrimOp::Cdr
            | PrimOp::Not
            | PrimOp::NullP
            | PrimOp::PairP
            | PrimOp::Cadr
            | PrimOp::Cddr
            | PrimOp::Caddr => 1,
            _ => 2,
        }
    }

    /// Whether this is a numeric comparison (`< > <= >= =`).
    #[inline(always)]
    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            PrimOp::Lt | PrimOp::Gt | PrimOp::Le | PrimOp::Ge | PrimOp::NumEq
        )
    }

    /// Whether this is `+ - *`.
    #[inline(always)]
    pub(crate) fn is_arith(self) -> bool {
        matches!(self, PrimOp::Add | PrimOp::Sub | PrimOp::Mul)
    }

    /// Whether this is integer-friendly arithmetic or comparison (fusable with a constant).
    #[inline(always)]
    pub(crate) fn is_numeric(self) -> bool {
        self.is_comparison() || matches!(self, PrimOp::Add | PrimOp::Sub | PrimOp::Mul)
    }

    pub(crate) fn name(self) -> &'static str {
        PrimOp::ALL[self.index()].1
    }
}

/// One instruction (12 bytes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Op {
    /// Push `consts[i]`.
    Const(u32),
    /// Push a small integer.
    Int(i32),
    /// Push nil.
    Nil,
    /// Push `#t`.
    True,
    /// Push `#f`.
    False,
    /// Push local slot.
    Local(u32),
    /// Pop into local slot.
    SetLocal(u32),
    /// Push the contents of the cell in local slot.
    LocalCell(u32),
    /// Pop into the cell in local slot.
    SetLocalCell(u32),
    /// Wrap the value in local slot into a fresh cell.
    MakeCell(u32),
    /// Push captured value.
    Free(u32),
    /// Push the contents of the captured cell.
    FreeCell(u32),
    /// Pop into the captured cell.
    SetFreeCell(u32),
    /// Push global (`:unbound` if undefined).
    Global(u32),
    /// Pop into an existing global (`set!`; `:unbound` if undefined).
    SetGlobal(u32),
    /// Pop and define global.
    DefGlobal(u32),
    /// Pop a closure and make it the macro for global slot's name.
    DefMacro(u32),
    /// Discard the top value.
    Pop,
    /// Jump to absolute pc.
    Jump(u32),
    /// Pop; jump if falsy.
    JumpIfFalse(u32),
    /// If top is falsy jump (keeping it) else pop (`and`).
    JumpIfFalseElsePop(u32),
    /// If top is truthy jump (keeping it) else pop (`or`).
    JumpIfTrueElsePop(u32),
    /// Build a closure from `protos[i]`.
    Closure(u32),
    /// Call with argc args; the callee is below them.
    Call(u32),
    /// Tail call with argc args.
    TailCall(u32),
    /// Call the value of global slot with the top argc values as arguments (`Global` + `Call`
    /// fused; nothing below the arguments). The callee is fetched after its arguments were
    /// evaluated (`:unbound` if undefined).
    CallGlobal(u32, u32),
    /// Tail call of the value of global slot with argc args (`Global` + `TailCall` fused).
    TailCallGlobal(u32, u32),
    /// Call the closure `consts[k]` with the top argc values as arguments, nothing below them
    /// (`Const` + `Call` fused, as `CallGlobal`): a call of a local function the compiler knows
    /// the one value of (`note_known`: an internal `define` or `letrec` of a lambda that
    /// captures nothing), so no callee is pushed, reference-counted and dropped per call.
    CallConst(u32, u32),
    /// A non-tail call of the running closure by itself with argc args (nothing below them):
    /// a function calling the local variable that holds it wherever its code runs (see the
    /// compiler's module docs). The code stays loaded (invariant 9 in `vm.rs`).
    CallSelf(u32),
    /// Return top of stack to the caller.
    Return,
    /// Return local slot to the caller (`Local` + `Return` fused).
    ReturnLocal(u32),
    /// Install a handler of this kind whose code starts at pc.
    PushHandler(u32, HandlerKind),
    /// Remove the innermost handler.
    PopHandler,
    /// Enter a shielded region (`finally`, `shield`): the task's cancellation is not raised
    /// until the matching `ShieldExit` (or an unwind past it).
    ShieldEnter,
    /// Leave the innermost shielded region; with `true`, leaving the last one is a
    /// checkpoint (a cancellation that arrived meanwhile is raised). `false` on a `finally`'s
    /// error path, which re-raises its error right after.
    ShieldExit(bool),
    /// End of a bare `catch` handler: if the task is cancelled (and no shield masks it),
    /// raise the cancellation again, so a catch-all cannot end it.
    CheckCancel,
    /// Pop a value and raise it (re-raise an error value, or raise `:error` with it).
    Raise,
    /// `call/cc`'s body: install an escape handler whose target is pc (the frame's `Return`)
    /// and push the continuation procedure that escapes to it (see `control.rs`).
    Capture(u32),
    /// A continuation's body: escape to the continuation in the running closure's captured
    /// values with the values in local 0 (a list).
    Escape,
    /// Inlined primitive.
    Prim(PrimOp),
    /// Inlined primitive whose result is returned to the caller (`Prim` + `Return` fused).
    PrimReturn(PrimOp),
    /// Push `local[slot] OP imm` (binary primitive with a local and a small constant).
    PrimLI(PrimOp, u16, i16),
    /// Push `local[slot] OP consts[k]` (a numeric constant that is not a small integer, e.g.
    /// a float).
    PrimLK(PrimOp, u16, u32),
    /// `BranchLI` on `local[slot] OP consts[k]`.
    BranchLK(PrimOp, bool, u16, u16, u32),
    /// Push `local[a] OP local[b]` (binary numeric primitive on two locals).
    PrimLL(PrimOp, u16, u16),
    /// Unless `local[slot] OP imm` holds, jump to target; pushes nothing. Always followed by a
    /// `JumpIfFalse(target)` that the slow path (primitive redefined, not a number) falls back
    /// on. With the flag (`(not (OP …))`), the condition is negated and a `Prim(Not)` sits
    /// between the two: the fast path skips both; the slow path pushes `local[slot] OP imm`
    /// and goes on to the `Prim(Not)`.
    BranchLI(PrimOp, bool, u16, i16, u32),
    /// Push `OP local[slot]` for a unary primitive (`car cdr null? not pair? cadr cddr
    /// caddr`); with the flag
    /// (`(not (OP local))`) a `Prim(Not)` follows, which the fast path skips by pushing the
    /// negation itself and the slow path runs.
    PrimL(PrimOp, bool, u16),
    /// `BranchLI` on the predicate `OP local[slot]` (`null?`, `pair?`, `not`).
    BranchL(PrimOp, bool, u16, u32),
    /// A non-last item of `and` (flag `or` false) or `or` (true) that is `BranchL`'s test
    /// (`null?`/`pair?`/`not` of a local, negated with the first flag): when the test's value ends the
    /// form (`#f` for `and`, `#t` for `or`), jump to target, where that boolean is pushed; else
    /// skip the slow section after this op and go on with the next item. The slow section (the
    /// primitive redefined: its result is pushed) is a `Prim(Not)` with the negation, then the
    /// form's `JumpIfFalseElsePop`/`JumpIfTrueElsePop`, which keeps the value the form returns.
    ShortL(PrimOp, bool, bool, u16, u32),
    /// `(if (not X) …)`: pop X; jump to target if it is true (`not` is false), else skip the
    /// `JumpIfFalse(target)` that follows — which consumes the result of the user's `not` when
    /// `not` was redefined (then this op calls it).
    BranchNot(u32),
    /// `BranchLI` on `local[a] OP local[b]`.
    BranchLL(PrimOp, bool, u16, u16, u32),
    /// Pop b, a; unless `a OP b` holds (negated with the flag), jump to target. Followed by
    /// `JumpIfFalse` (after a `Prim(Not)` with the flag) like `BranchLI`.
    BranchPrim(PrimOp, bool, u32),
    /// The head of a loop compiled inline (a named `let`, `do` or local function whose calls
    /// are all jumps): counts a step, as the call of the closure it replaces did.
    Loop,
    /// A loop's call of itself: pop `n` values into the locals `first .. first + n` (the last
    /// into the last), jump to the `Loop` at target, counting its step (the step hook's slice
    /// check runs on every backward jump), and continue after it.
    JumpLoop(u32, u16, u16),
    /// A `JumpLoop(target, first, n)` whose `n` arguments are each one op right after this
    /// one (a local, a small integer, `local OP small-int`, `local OP local` or `local OP
    /// constant` for `+ - *`): when every one of them is a number on its fast path, computes
    /// them all, stores them into the locals `first .. first + n`, counts the step and jumps to
    /// the `Loop` at target — one dispatch for the whole back edge. Otherwise (a non-number, an
    /// overflow, a redefined primitive) it has no effect and falls through to those ops and
    /// the `JumpLoop` after them, which compute the same values or raise the first error in
    /// argument order. An argument that is the parameter's own local is left in place.
    JumpLoopNum(u32, u16, u16),
    /// A `TailCallGlobal(g, n)` of the running function by itself whose `n` arguments are
    /// each one number op right after this one (as for `JumpLoopNum`): when global `g` still
    /// holds the running closure and every argument is a number on its fast path, stores them
    /// into the parameters, resets the other locals and restarts the frame, as the self tail
    /// call does. Otherwise it has no effect and falls through to those ops and the
    /// `TailCallGlobal` after them.
    TailSelfNum(u32, u16),
    /// A loop's back edge decoded at compile time: `Proto::edges[i]` describes the jump, its
    /// arguments (a `JumpLoopNum`'s) and the loop's exit test when the loop's body starts with
    /// a compare-and-branch (`BranchLI`/`BranchLL`/`BranchLK`, or `BranchL` for the shape
    /// `Pairs`). When every argument is an integer (or every one a float; or, for `Pairs`, a
    /// `cdr` of a pair and an integer) on its fast path, stores them, counts the step, and runs
    /// the test too, continuing where that branch would: one dispatch per iteration. Otherwise
    /// it does what the `JumpLoopNum` it replaces does (`vm/edge.rs`): the argument ops and
    /// the `JumpLoop` follow it.
    Edge(u32),
    /// `(car local[slot])`: `PrimL(Car, false, slot)` without choosing the primitive or the
    /// negation at run time (`vm/lists.rs`); off the fast path (not a pair, `car` redefined)
    /// the generic primitive.
    CarL(u16),
    /// `(cdr local[slot])`, as [`Op::CarL`].
    CdrL(u16),
    /// A `BranchPrim` whose two operands are each one op right after this one (a local, a
    /// small integer, `car` of a local, `local ± local`, `local ± small-int`), decoded at compile
    /// time into `Proto::compares[i]`: when every operand is an integer on its op's fast path,
    /// runs the comparison and continues where the `BranchPrim` would (past its slow section,
    /// or at its target) — one dispatch instead of three (`vm/compare.rs`). Otherwise it has no
    /// effect and falls through to those ops and the `BranchPrim`.
    Compare(u32),
}

/// An operand of a fused comparison ([`Op::Compare`]), decoded from its op at compile time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum CmpArg {
    /// A local (`Local`).
    Local(u16),
    /// An integer constant (`Int`).
    Int(i64),
    /// The head of the pair in a local (`CarL`).
    Car(u16),
    /// `a + b` on two locals (`PrimLL`).
    AddLL(u16, u16),
    /// `a - b` on two locals (`PrimLL`).
    SubLL(u16, u16),
    /// `local + k` (`PrimLI`).
    AddLI(u16, i64),
    /// `local - k` (`PrimLI`).
    SubLI(u16, i64),
}

impl CmpArg {
    /// The operand `op` computes, if it is one a [`Compare`] takes.
    pub(crate) fn of(op: &Op) -> Option<CmpArg> {
        Some(match *op {
            Op::Local(s) => CmpArg::Local(u16::try_from(s).ok()?),
            Op::Int(i) => CmpArg::Int(i64::from(i)),
            Op::CarL(s) => CmpArg::Car(s),
            Op::PrimLL(PrimOp::Add, a, b) => CmpArg::AddLL(a, b),
            Op::PrimLL(PrimOp::Sub, a, b) => CmpArg::SubLL(a, b),
            Op::PrimLI(PrimOp::Add, s, k) => CmpArg::AddLI(s, i64::from(k)),
            Op::PrimLI(PrimOp::Sub, s, k) => CmpArg::SubLI(s, i64::from(k)),
            _ => return None,
        })
    }

    /// The primitive this operand applies, if any (its redefinition sends the comparison to
    /// the slow path).
    pub(crate) fn prim(self) -> Option<PrimOp> {
        match self {
            CmpArg::Local(_) | CmpArg::Int(_) => None,
            CmpArg::Car(_) => Some(PrimOp::Car),
            CmpArg::AddLL(..) | CmpArg::AddLI(..) => Some(PrimOp::Add),
            CmpArg::SubLL(..) | CmpArg::SubLI(..) => Some(PrimOp::Sub),
        }
    }
}

/// A fused comparison ([`Op::Compare`]): the `BranchPrim(p, neg, target)` at `branch` and its
/// two operands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Compare {
    pub(crate) p: PrimOp,
    pub(crate) neg: bool,
    pub(crate) a: CmpArg,
    pub(crate) b: CmpArg,
    /// The pc of the `BranchPrim`.
    pub(crate) branch: u32,
    /// The `BranchPrim`'s target, copied when the function is finished (it is patched after
    /// the comparison is compiled).
    pub(crate) target: u32,
}

/// An argument of a fused back edge ([`Op::Edge`]), decoded from its op at compile time so the
/// VM chooses neither the primitive nor the operand kinds at run time. The `L…` variants read
/// a local; `I` is an integer constant, `F` a float constant, `L` a second local.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum EdgeArg {
    /// The parameter's own local, left in place.
    Keep,
    /// A copy of another local (a number).
    Local(u16),
    /// An integer constant.
    Int(i64),
    /// `local + k`.
    AddLI(u16, i64),
    /// `local - k`.
    SubLI(u16, i64),
    /// `local * k`.
    MulLI(u16, i64),
    /// `local OP k` for a float constant `k` (`+ - *`).
    LF(PrimOp, u16, f64),
    /// `a + b` on two locals.
    AddLL(u16, u16),
    /// `a - b` on two locals.
    SubLL(u16, u16),
    /// `a * b` on two locals.
    MulLL(u16, u16),
    /// The tail of the pair in a local (`CdrL`; the edge's shape is then
    /// [`EdgeShape::Pairs`]).
    Cdr(u16),
}

impl EdgeArg {
    /// A counter's step (`AddLI`, `SubLI`) as the integer added to an integer counter
    /// (`EdgeShape::CountAcc`); `None` for anything else.
    pub(crate) fn int_step(self) -> Option<i64> {
        match self {
            EdgeArg::AddLI(_, k) => Some(k),
            EdgeArg::SubLI(_, k) => k.checked_neg(),
            _ => None,
        }
    }

    /// A counter's step (`AddLI`, `SubLI`, `LF` of `+`/`-`) as the float added to a float
    /// counter (`EdgeShape::CountAcc`); 0 for anything else.
    pub(crate) fn float_step(self) -> f64 {
        match self {
            EdgeArg::AddLI(_, k) => k as f64,
            EdgeArg::SubLI(_, k) => -(k as f64),
            EdgeArg::LF(PrimOp::Add, _, y) => y,
            EdgeArg::LF(PrimOp::Sub, _, y) => -y,
            _ => 0.0,
        }
    }

    /// The primitive this argument applies, if any (its redefinition sends the edge to the
    /// slow path).
    pub(crate) fn prim(self) -> Option<PrimOp> {
        match self {
            EdgeArg::Keep | EdgeArg::Local(_) | EdgeArg::Int(_) => None,
            EdgeArg::AddLI(..) | EdgeArg::AddLL(..) => Some(PrimOp::Add),
            EdgeArg::SubLI(..) | EdgeArg::SubLL(..) => Some(PrimOp::Sub),
            EdgeArg::MulLI(..) | EdgeArg::MulLL(..) => Some(PrimOp::Mul),
            EdgeArg::LF(p, ..) => Some(p),
            EdgeArg::Cdr(_) => Some(PrimOp::Cdr),
        }
    }
}

/// The second operand of a fused exit test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum EdgeRhs {
    Int(i64),
    Float(f64),
    Local(u16),
    /// No second operand: the test is `null?`, `pair?` or `not` of the local (a `BranchL`).
    Unary,
}

/// A loop's exit test folded into its back edge: the `BranchLI`/`BranchLL`/`BranchLK(p, neg,
/// slot, …, target)` or `BranchL(p, neg, slot, target)` at the loop's head + 1, as that op
/// would run it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct EdgeTest {
    pub(crate) p: PrimOp,
    pub(crate) neg: bool,
    pub(crate) slot: u16,
    pub(crate) rhs: EdgeRhs,
    /// Where the branch goes when `slot OP rhs` does not hold (negated with `neg`).
    pub(crate) target: u32,
    /// With an integer `rhs`: the integers `x` for which the test holds (negated with `neg`),
    /// i.e. the branch op falls through rather than jumping to `target`, as a wrapping range
    /// `(lo, span)` — those with
    /// `x.wrapping_sub(lo) as u64 <= span` — so an integer counter is tested with one
    /// subtraction and one comparison, whatever the primitive. `None` when that set is empty
    /// (e.g. `(< i most-negative)`) or `rhs` is not an integer.
    pub(crate) range: Option<(i64, u64)>,
    /// With a number `rhs`: the floats `x` for which `x OP rhs` holds (before the negation),
    /// as a closed interval `(lo, hi)` — those with `lo <= x && x <= hi`, which no NaN is, as
    /// no comparison with a NaN holds — so a float counter is tested without choosing the
    /// primitive at run time (an empty interval when none holds). `None` for a local `rhs`.
    pub(crate) frange: Option<(f64, f64)>,
}

impl EdgeTest {
    /// [`EdgeTest::range`] for `x OP y` (negated with `neg`) on integers.
    pub(crate) fn int_range(p: PrimOp, neg: bool, y: i64) -> Option<(i64, u64)> {
        // The integers for which `x OP y` holds, `a ..= b`; when there are none, all hold the
        // negation.
        let all = if neg {
            Some((i64::MIN, u64::MAX))
        } else {
            None
        };
        let (a, b) = match p {
            PrimOp::Lt => match y.checked_sub(1) {
                Some(b) => (i64::MIN, b),
                None => return all,
            },
            PrimOp::Le => (i64::MIN, y),
            PrimOp::Gt => match y.checked_add(1) {
                Some(a) => (a, i64::MAX),
                None => return all,
            },
            PrimOp::Ge => (y, i64::MAX),
            PrimOp::NumEq => (y, y),
            _ => return None,
        };
        if !neg {
            return Some((a, b.wrapping_sub(a) as u64));
        }
        // The complement, `b + 1 ..= a - 1` wrapping around (empty when `a ..= b` is all).
        if (a, b) == (i64::MIN, i64::MAX) {
            return None;
        }
        let lo = b.wrapping_add(1);
        Some((lo, a.wrapping_sub(1).wrapping_sub(lo) as u64))
    }

    /// [`EdgeTest::frange`] for `x OP y` on floats.
    pub(crate) fn float_range(p: PrimOp, y: f64) -> Option<(f64, f64)> {
        const EMPTY: (f64, f64) = (f64::INFINITY, f64::NEG_INFINITY);
        // Between two adjacent floats there is none: `x < y` is `x <= next_down(y)` (for a
        // zero too: the next float below both zeros is the least negative one).
        Some(match p {
            PrimOp::Lt if y == f64::NEG_INFINITY => EMPTY,
            PrimOp::Lt => (f64::NEG_INFINITY, next_down(y)),
            PrimOp::Le => (f64::NEG_INFINITY, y),
            PrimOp::Gt if y == f64::INFINITY => EMPTY,
            PrimOp::Gt => (next_up(y), f64::INFINITY),
            PrimOp::Ge => (y, f64::INFINITY),
            PrimOp::NumEq => (y, y),
            _ => return None,
        })
    }

    /// Whether the test holds (negated with `neg`) for the integer `x`, by
    /// [`EdgeTest::range`].
    #[inline(always)]
    pub(crate) fn in_range((lo, span): (i64, u64), x: i64) -> bool {
        x.wrapping_sub(lo) as u64 <= span
    }
}

/// The least float above `x` (`f64::next_up`, which is newer than the crate's MSRV): `x`
/// itself for NaN and `+inf`, the least positive float for both zeros.
pub(crate) fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let b = x.to_bits();
    f64::from_bits(if x > 0.0 { b + 1 } else { b - 1 })
}

/// The greatest float below `x` (`f64::next_down`).
pub(crate) fn next_down(x: f64) -> f64 {
    -next_up(-x)
}

/// A fused back edge ([`Op::Edge`]): the `JumpLoopNum(head, first, n)` it stands for, with its
/// `n` arguments decoded, and the loop's exit test if it has one.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Edge {
    /// The pc of the loop's `Loop` head.
    pub(crate) head: u32,
    /// The first parameter's slot.
    pub(crate) first: u16,
    /// The arguments, one per parameter from `first` (at most `vm::MAX_NUM_ARGS`).
    pub(crate) args: Vec<EdgeArg>,
    /// The primitives the arguments apply (each must still be intact).
    pub(crate) prims: Vec<PrimOp>,
    /// The exit test at `head + 1`, resolved when the function is finished (the branch's
    /// target is patched after the back edge is compiled).
    pub(crate) test: Option<EdgeTest>,
    /// The arguments' shape, when it has a path of its own.
    pub(crate) shape: EdgeShape,
    /// With [`EdgeShape::Pairs`], the arguments decoded; `None` otherwise.
    pub(crate) pairs: Option<PairsEdge>,
    /// Every primitive the edge's fast paths apply, as [`PrimOp::bit`]s: the arguments'
    /// (`prims`), the test's and `not` for a negated test ([`Edge::resolve_test`]). The
    /// counter-and-accumulator path runs only when none of them is redefined, tested at once
    /// against `State::prims_redefined`.
    pub(crate) needs: u64,
    /// The test is on the counter itself (its slot is `first`): with
    /// [`EdgeShape::CountAcc`], it is run on the counter's new value as computed.
    pub(crate) on_counter: bool,
    /// With [`EdgeShape::CountAcc`], the counter's step on a float as the number added
    /// (`(- i k)` adds `-k`: the same float, IEEE subtraction being the addition of the
    /// negation); 0 otherwise.
    pub(crate) fstep: f64,
    /// With [`EdgeShape::CountAcc`], the counter's step on an integer as the number added
    /// (`(- i k)` adds `-k`); `None` for a float constant (or `-k` out of range: the general
    /// path then computes it).
    pub(crate) istep: Option<i64>,
}

/// A shape of [`Edge`] arguments with its own straight-line path in the VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EdgeShape {
    /// Any arguments (one pass over them).
    General,
    /// A counter and an accumulator, `(loop (- i k) (+ i acc))`: two parameters, the first
    /// stepped by a constant (`AddLI`/`SubLI`/`LF` of `+`/`-` on itself), the second the sum
    /// of both (`AddLL` of the two, in either order). With the step's primitive (`+`/`-`).
    CountAcc(PrimOp),
    /// Two arguments, a [`EdgeArg::Cdr`] and a number (computed as an integer): `(ok? row
    /// (+ dist 1) (cdr placed))`, decoded in [`Edge::pairs`]. The compiler makes no edge with a
    /// `cdr` otherwise. (The decoded arguments are not held here: a larger `EdgeShape` cost
    /// the counter-and-accumulator path two instructions an iteration to tell its shape.)
    Pairs,
}

/// The two arguments of an [`EdgeShape::Pairs`] edge, decoded at compile time so the VM does
/// not look for the `cdr` among them: the list parameter at `dst` becomes the tail of the pair
/// in local `src`, the number parameter at `num_dst` becomes `num` (left alone when `Keep`).
/// [`PairsEdge::of`] decodes them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PairsEdge {
    /// The local whose pair's tail is taken.
    pub(crate) src: u16,
    /// The list parameter's slot.
    pub(crate) dst: u16,
    /// The number argument (never a `Cdr`).
    pub(crate) num: EdgeArg,
    /// The number parameter's slot.
    pub(crate) num_dst: u16,
}

impl EdgeShape {
    /// The shape of the arguments `args` of parameters from `first`.
    pub(crate) fn of(first: u16, args: &[EdgeArg]) -> EdgeShape {
        if PairsEdge::of(first, args).is_some() {
            return EdgeShape::Pairs;
        }
        if args.iter().any(|a| matches!(a, EdgeArg::Cdr(_))) {
            // A `cdr` in any other position: the general path (which declines it).
            return EdgeShape::General;
        }
        let Some(second) = first.checked_add(1) else {
            return EdgeShape::General;
        };
        let step = match args.first() {
            Some(EdgeArg::AddLI(s, _)) if *s == first => Some(PrimOp::Add),
            Some(EdgeArg::SubLI(s, _)) if *s == first => Some(PrimOp::Sub),
            // A NaN step keeps the general path (its sign is that of `x - y`, not `x + -y`).
            Some(EdgeArg::LF(p @ (PrimOp::Add | PrimOp::Sub), s, y))
                if *s == first && !y.is_nan() =>
            {
                Some(*p)
            }
            _ => None,
        };
        let acc = match args.get(1) {
            Some(EdgeArg::AddLL(a, b)) => {
                (*a, *b) == (first, second) || (*a, *b) == (second, first)
            }
            _ => false,
        };
        match step {
            Some(p) if acc && args.len() == 2 => EdgeShape::CountAcc(p),
            _ => EdgeShape::General,
        }
    }
}

impl PairsEdge {
    /// The decoded arguments `args` of parameters from `first`, when they are a `cdr` and a
    /// number, in either order.
    pub(crate) fn of(first: u16, args: &[EdgeArg]) -> Option<PairsEdge> {
        let (src, num, k, n) = match *args {
            [EdgeArg::Cdr(s), num] => (s, num, 0, 1),
            [num, EdgeArg::Cdr(s)] => (s, num, 1, 0),
            _ => return None,
        };
        if matches!(num, EdgeArg::Cdr(_)) {
            return None;
        }
        Some(PairsEdge {
            src,
            dst: first.checked_add(k)?,
            num,
            num_dst: first.checked_add(n)?,
        })
    }
}

impl Edge {
    /// Folds the loop's exit test `t` in (when the function is finished and its branch
    /// targets are patched): sets [`Edge::test`], [`Edge::needs`] and [`Edge::on_counter`].
    pub(crate) fn resolve_test(&mut self, t: Option<EdgeTest>) {
        self.test = t;
        self.needs = self.prims.iter().fold(0, |m, p| m | p.bit());
        if let Some(t) = t {
            self.needs |= t.p.bit();
            if t.neg {
                self.needs |= PrimOp::Not.bit();
            }
        }
        self.on_counter = t.is_some_and(|t| t.slot == self.first);
    }
}

/// A loop compiled inline into its enclosing function, for stack traces that look as if it
/// were still a closure: a frame whose pc is in `start..end` is shown as a frame of `name`
/// over its enclosing function's frame (left out when `tail`, as a tail call replaces it).
#[derive(Debug)]
pub(crate) struct Region {
    /// The pc of the loop's `Loop` head.
    pub(crate) start: u32,
    /// The pc just after the loop's body.
    pub(crate) end: u32,
    /// The closure's name (the loop's name; `do` for a `do`).
    pub(crate) name: String,
    /// The loop was entered in a tail position of its enclosing function or loop.
    pub(crate) tail: bool,
    /// The position of the call that entered the loop (shown for the enclosing frame).
    pub(crate) entry: (u32, u32),
    /// The pcs, in increasing order, of the calls in a tail position of the loop's body that
    /// are not tail calls of the function (the loop was not entered in a tail position): while
    /// such a call's callee runs, the loop's own line is left out.
    pub(crate) tail_calls: Vec<u32>,
}

/// What a handler installed by [`Op::PushHandler`] does when something unwinds to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandlerKind {
    /// A `try`'s `catch`: takes errors (binds them and runs its code); an escape to a
    /// continuation passes it by.
    Catch,
    /// A `try`'s `finally` (and so `dynamic-wind`'s after-thunk): runs for errors and
    /// escapes alike, then re-raises what it got.
    Finally,
}

/// What a closure captures: a slot of the enclosing frame or one of its captured values.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Capture {
    Local(u32),
    Free(u32),
}

/// A compiled function.
#[derive(Debug)]
pub(crate) struct Proto {
    pub(crate) name: String,
    pub(crate) nparams: u32,
    pub(crate) rest: bool,
    pub(crate) nlocals: u32,
    pub(crate) code: Vec<Op>,
    /// Source position (line, col) of each op.
    pub(crate) pos: Vec<(u32, u32)>,
    pub(crate) file: Rc<str>,
    pub(crate) consts: Vec<Value>,
    pub(crate) protos: Vec<Rc<Proto>>,
    pub(crate) captures: Vec<Capture>,
    /// `(pc, (line, col))` of the operator of each `CallGlobal`/`TailCallGlobal` at `pc`, in
    /// increasing `pc` order: the span of an unbound callee's error.
    pub(crate) callee_pos: Vec<(u32, (u32, u32))>,
    /// The loops compiled inline, in increasing order of `start` (nested ones after the loop
    /// that encloses them).
    pub(crate) regions: Vec<Region>,
    /// The fused back edges, indexed by [`Op::Edge`].
    pub(crate) edges: Vec<Edge>,
    /// The fused comparisons, indexed by [`Op::Compare`].
    pub(crate) compares: Vec<Compare>,
}

impl Proto {
    /// The inline loops whose code contains `pc`, innermost first.
    pub(crate) fn regions_at(&self, pc: usize) -> impl Iterator<Item = &Region> {
        self.regions
            .iter()
            .rev()
            .filter(move |r| (r.start as usize) <= pc && pc < r.end as usize)
    }

    /// The operator's position of the global call at `pc` (the call's own position if unknown).
    pub(crate) fn callee_pos(&self, pc: usize) -> (u32, u32) {
        match self
            .callee_pos
            .binary_search_by_key(&(pc as u64), |&(at, _)| u64::from(at))
        {
            Ok(i) => self.callee_pos[i].1,
            Err(_) => self.pos.get(pc).copied().unwrap_or((0, 0)),
        }
    }
}
const _: () = assert!(std::mem::size_of::<Op>() == 12);
