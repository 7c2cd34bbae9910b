//! `Op::Edge`: a loop's back edge decoded at compile time, with the loop's exit test folded in.
//!
//! `(loop (- i 1) (+ i sum))` under `(if (< i 0) sum …)` was two dispatches per iteration
//! (`JumpLoopNum`, which matched each argument op and chose `+`/`-` and the operand kinds at
//! run time, then `BranchLI`). Here the arguments are [`EdgeArg`]s, one variant per primitive
//! and shape, computed in one pass when they are all integers (or all floats), stored, and the
//! test at the loop's head is run too; the dispatch loop continues where the branch would.
//! A counter and an accumulator (`CountAcc`) add a step decoded at compile time
//! (`Edge::istep`/`fstep`) and test a float counter against a decoded interval
//! (`EdgeTest::frange`); a list loop's `(ok? row (+ dist 1) (cdr placed))` (`Pairs`) has its
//! own out-of-line path, [`list_edge`], with its `null?` test.
//!
//! # Invariants
//!
//! 1. [`run`] either does exactly what `JumpLoopNum` followed by the jump to the loop's head
//!    would (the same values stored; returning the pc to continue at, the step not yet
//!    counted), or returns `None` with no effect at all, so the argument ops and the
//!    `JumpLoop` after the `Edge` run instead (the first error in argument order, a redefined
//!    primitive).
//! 2. The folded test is pure (it reads locals): the caller may count the step after it and,
//!    when the step hook must run, continue at the head + 1 instead, where the branch op runs
//!    it again. A test off its fast path (a non-number, a redefined primitive) is left to that
//!    branch op: `run` then returns the head + 1.
//! 3. Each fast path gives what the op it replaces gives on its own fast path (integer
//!    overflow left to the slow path; the same integer-float mixes as `vm/args.rs`,
//!    `BranchLI`, `BranchLL` and `BranchLK`).

use crate::bytecode::{Edge, EdgeArg, EdgeRhs, EdgeShape, EdgeTest, Op, PairsEdge, PrimOp};
use crate::state::PRIM_COUNT;
use crate::value::Value;

use super::args::MAX_NUM_ARGS;
use super::arith::{float_arith, float_holds, int_holds};
use super::compare::branch_to;

/// The back edge `e` (invariant 1): stores its arguments and returns the pc to continue at,
/// or `None` with no effect. `at` is the code and the pc of the argument ops after the `Edge`
/// (the generic path of `vm/args.rs` when the arguments are neither all integers nor all
/// floats). Inlined into the dispatch loop (only the counter-and-accumulator path is there;
/// every other shape calls the out-of-line [`general`]): measured, it changed no other op's
/// instructions and saved the call (`sum` −28 %, `sumfp` −17 % instructions against −14 %
/// and −2 % out of line).
#[inline(always)]
pub(super) fn run(
    w: &mut [Value],
    e: &Edge,
    at: (&[Op], usize),
    consts: &[Value],
    redefined: u64,
    intact: &[bool; PRIM_COUNT],
) -> Option<u32> {
    // The counter-and-accumulator shape first, with as little around it as possible: one test
    // for all its primitives (its steps', its test's), and the test on the counter run on
    // the value just computed, its range decoded at compile time.
    if let (EdgeShape::CountAcc(_), 0) = (e.shape, redefined & e.needs) {
        match count_acc(w, e.first as usize, e.istep, e.fstep) {
            Counted::Int(i) => {
                if let (Some(t), true) = (e.test, e.on_counter) {
                    if let Some(next) = counter_int(e.head, t, i) {
                        return Some(next);
                    }
                }
                return Some(test(w, e, intact));
            }
            Counted::Float(x) => {
                if let (Some(t), true) = (e.test, e.on_counter) {
                    if let Some(next) = counter_float(e.head, t, x) {
                        return Some(next);
                    }
                }
                return Some(test(w, e, intact));
            }
            Counted::No => {}
        }
    }
    general(w, e, at, consts, intact)
}

/// [`EdgeShape::Pairs`] (two arguments: a `cdr` and a number, decoded in `p`): when the
/// `cdr` is of a pair, the other argument an integer (as [`ints`] computes it) and every
/// primitive intact, stores them over the two parameters and returns where the loop's test
/// sends control (as [`test`], also for a `null?`/`pair?`/`not` test); `None` with no effect
/// otherwise (the argument ops then run: their own results and errors).
///
/// The arguments' positions come decoded from the compiler and the common step, `(+ dist 1)`,
/// has its own arm: 147 instructions an iteration of `nqueens`' `ok?` loop where finding the
/// shape and the `cdr` at run time took 182, plus 29 for [`general`]'s set-up (now 8). Out of
/// line, reached through [`general`]: a test for this shape inlined in the dispatch loop cost
/// every program 2–11 % instructions, `fib` included, which has no loop.
#[inline(never)]
fn list_edge(w: &mut [Value], e: &Edge, p: &PairsEdge, intact: &[bool; PRIM_COUNT]) -> Option<u32> {
    if !intact[PrimOp::Cdr.index()] {
        return None;
    }
    let x = match p.num {
        EdgeArg::Keep => None,
        EdgeArg::AddLI(s, k) => match (intact[PrimOp::Add.index()], w.get(s as usize)) {
            (true, Some(Value::Int(x))) => Some(x.checked_add(k)?),
            _ => return None,
        },
        n => {
            if n.prim().is_some_and(|q| !intact[q.index()]) {
                return None;
            }
            Some(int_arg(w, n)?)
        }
    };
    let tail = match w.get(p.src as usize) {
        Some(Value::Pair(c)) => c.cdr(),
        _ => return None,
    };
    if let (Some(x), Some(slot)) = (x, w.get_mut(p.num_dst as usize)) {
        put(slot, Value::Int(x));
    }
    if let Some(slot) = w.get_mut(p.dst as usize) {
        // The old value is usually a pair of the same list: its count drops inline.
        match std::mem::replace(slot, tail) {
            Value::Pair(old) => drop(old),
            old => drop(old),
        }
    }
    Some(match e.test {
        Some(t) if t.rhs == EdgeRhs::Unary => test_unary(w, e.head, t, intact),
        _ => test(w, e, intact),
    })
}

/// [`run`] for every other shape (and `CountAcc` off its path): [`list_edge`] or
/// [`numbers`]. Two jumps, no frame of its own (with the two paths in one function, its set-up
/// cost the list loop 29 instructions an iteration).
#[inline(never)]
fn general(
    w: &mut [Value],
    e: &Edge,
    at: (&[Op], usize),
    consts: &[Value],
    intact: &[bool; PRIM_COUNT],
) -> Option<u32> {
    match &e.pairs {
        Some(p) => list_edge(w, e, p, intact),
        None => numbers(w, e, at, consts, intact),
    }
}

/// [`general`] for number arguments: all integers or all floats in one pass, or the mixes of
/// the generic path (`vm/args.rs`).
#[inline(never)]
fn numbers(
    w: &mut [Value],
    e: &Edge,
    at: (&[Op], usize),
    consts: &[Value],
    intact: &[bool; PRIM_COUNT],
) -> Option<u32> {
    for p in &e.prims {
        if !intact[p.index()] {
            return None;
        }
    }
    let first = e.first as usize;
    if ints(w, first, &e.args) || floats(w, first, &e.args) {
        return Some(test(w, e, intact));
    }
    let (code, pc) = at;
    let ops = code.get(pc..pc + e.args.len())?;
    if super::args::jump_nums(w, first, ops, consts, intact) {
        // The mixes of the generic path: the branch op runs the test.
        return Some(e.head + 1);
    }
    None
}

/// What [`count_acc`] did.
enum Counted {
    /// Stepped two integers; the counter's new value.
    Int(i64),
    /// Stepped two floats; the counter's new value.
    Float(f64),
    /// Nothing (off its path).
    No,
}

/// [`EdgeShape::CountAcc`] on two integers or two floats: `i' = i ± k`, `acc' = i + acc`,
/// written over the two numbers in place (their kinds do not change).
#[inline(always)]
fn count_acc(w: &mut [Value], first: usize, istep: Option<i64>, fstep: f64) -> Counted {
    let Some([a, b, ..]) = w.get_mut(first..) else {
        return Counted::No;
    };
    match (a, b) {
        (Value::Int(i), Value::Int(acc)) => {
            // The step decoded at compile time (`Edge::istep`): `i ± k` as `i + istep`.
            let next = match istep {
                Some(k) => i.checked_add(k),
                None => None,
            };
            match (next, acc.checked_add(*i)) {
                (Some(n), Some(sum)) => {
                    *i = n;
                    *acc = sum;
                    Counted::Int(n)
                }
                _ => Counted::No,
            }
        }
        (Value::Float(i), Value::Float(acc)) => {
            // The step decoded at compile time (`Edge::fstep`): `i ± k` as `i + fstep`.
            let next = *i + fstep;
            // `+` on floats is commutative: `(+ i acc)` and `(+ acc i)` are the same number.
            *acc += *i;
            *i = next;
            Counted::Float(next)
        }
        _ => Counted::No,
    }
}

/// Every argument an integer: computed, then stored over the parameters from `first` (locals
/// of the window `w`).
#[inline(always)]
fn ints(w: &mut [Value], first: usize, args: &[EdgeArg]) -> bool {
    let int = |w: &[Value], s: u16| match w.get(s as usize) {
        Some(Value::Int(x)) => Some(*x),
        _ => None,
    };
    let mut vals = [0i64; MAX_NUM_ARGS];
    for (k, a) in args.iter().enumerate().take(MAX_NUM_ARGS) {
        let v = match *a {
            EdgeArg::Keep => Some(0),
            EdgeArg::Local(s) => int(w, s),
            EdgeArg::Int(i) => Some(i),
            EdgeArg::AddLI(s, i) => int(w, s).and_then(|x| x.checked_add(i)),
            EdgeArg::SubLI(s, i) => int(w, s).and_then(|x| x.checked_sub(i)),
            EdgeArg::MulLI(s, i) => int(w, s).and_then(|x| x.checked_mul(i)),
            EdgeArg::AddLL(a, b) => match (int(w, a), int(w, b)) {
                (Some(x), Some(y)) => x.checked_add(y),
                _ => None,
            },
            EdgeArg::SubLL(a, b) => match (int(w, a), int(w, b)) {
                (Some(x), Some(y)) => x.checked_sub(y),
                _ => None,
            },
            EdgeArg::MulLL(a, b) => match (int(w, a), int(w, b)) {
                (Some(x), Some(y)) => x.checked_mul(y),
                _ => None,
            },
            EdgeArg::LF(..) | EdgeArg::Cdr(_) => None,
        };
        match v {
            Some(x) => vals[k] = x,
            None => return false,
        }
    }
    for (k, a) in args.iter().enumerate().take(MAX_NUM_ARGS) {
        if let (false, Some(slot)) = (*a == EdgeArg::Keep, w.get_mut(first + k)) {
            put(slot, Value::Int(vals[k]));
        }
    }
    true
}

/// The folded test `t` of the loop at `head` when it is `null?`, `pair?` or `not` of a local
/// (a `BranchL`), as [`test`] runs the others (invariant 2).
#[inline(always)]
fn test_unary(w: &[Value], head: u32, t: EdgeTest, intact: &[bool; PRIM_COUNT]) -> u32 {
    let branch = head + 1;
    if !intact[t.p.index()] || (t.neg && !intact[PrimOp::Not.index()]) {
        return branch;
    }
    let Some(a) = w.get(t.slot as usize) else {
        return branch;
    };
    let holds = match t.p {
        PrimOp::NullP => a.is_nil(),
        PrimOp::PairP => matches!(a, Value::Pair(_)),
        _ => !a.is_truthy(),
    };
    if holds != t.neg {
        branch + 2 + u32::from(t.neg)
    } else {
        t.target
    }
}

/// A number argument as an integer, as [`ints`] computes it.
#[inline(always)]
fn int_arg(w: &[Value], a: EdgeArg) -> Option<i64> {
    let int = |s: u16| match w.get(s as usize) {
        Some(Value::Int(x)) => Some(*x),
        _ => None,
    };
    match a {
        EdgeArg::Local(s) => int(s),
        EdgeArg::Int(i) => Some(i),
        EdgeArg::AddLI(s, i) => int(s)?.checked_add(i),
        EdgeArg::SubLI(s, i) => int(s)?.checked_sub(i),
        EdgeArg::MulLI(s, i) => int(s)?.checked_mul(i),
        EdgeArg::AddLL(a, b) => int(a)?.checked_add(int(b)?),
        EdgeArg::SubLL(a, b) => int(a)?.checked_sub(int(b)?),
        EdgeArg::MulLL(a, b) => int(a)?.checked_mul(int(b)?),
        EdgeArg::Keep | EdgeArg::LF(..) | EdgeArg::Cdr(_) => None,
    }
}

/// Every argument a float (a float local, or a local and a float constant): computed, then
/// stored over the parameters from `first`.
#[inline(always)]
fn floats(w: &mut [Value], first: usize, args: &[EdgeArg]) -> bool {
    let float = |w: &[Value], s: u16| match w.get(s as usize) {
        Some(Value::Float(x)) => Some(*x),
        _ => None,
    };
    let mut vals = [0f64; MAX_NUM_ARGS];
    for (k, a) in args.iter().enumerate().take(MAX_NUM_ARGS) {
        let v = match *a {
            EdgeArg::Keep => Some(0.0),
            EdgeArg::Local(s) => float(w, s),
            EdgeArg::Int(_) => None,
            EdgeArg::AddLI(s, i) => float(w, s).map(|x| x + i as f64),
            EdgeArg::SubLI(s, i) => float(w, s).map(|x| x - i as f64),
            EdgeArg::MulLI(s, i) => float(w, s).map(|x| x * i as f64),
            EdgeArg::LF(p, s, y) => match w.get(s as usize) {
                Some(Value::Float(x)) => Some(float_arith(p, *x, y)),
                Some(Value::Int(x)) => Some(float_arith(p, *x as f64, y)),
                _ => None,
            },
            EdgeArg::AddLL(a, b) => float_two(w, a, b).map(|(x, y)| x + y),
            EdgeArg::SubLL(a, b) => float_two(w, a, b).map(|(x, y)| x - y),
            EdgeArg::MulLL(a, b) => float_two(w, a, b).map(|(x, y)| x * y),
            EdgeArg::Cdr(_) => None,
        };
        match v {
            Some(x) => vals[k] = x,
            None => return false,
        }
    }
    for (k, a) in args.iter().enumerate().take(MAX_NUM_ARGS) {
        if let (false, Some(slot)) = (*a == EdgeArg::Keep, w.get_mut(first + k)) {
            put(slot, Value::Float(vals[k]));
        }
    }
    true
}

/// Two locals as floats when they are two numbers and at least one is a float.
#[inline(always)]
fn float_two(w: &[Value], a: u16, b: u16) -> Option<(f64, f64)> {
    match (w.get(a as usize)?, w.get(b as usize)?) {
        (Value::Float(x), Value::Float(y)) => Some((*x, *y)),
        (Value::Int(x), Value::Float(y)) => Some((*x as f64, *y)),
        (Value::Float(x), Value::Int(y)) => Some((*x, *y as f64)),
        _ => None,
    }
}

/// The folded exit test (invariant 2): where its branch op would continue, or the head + 1
/// (the branch op itself) off the fast path.
#[inline(always)]
fn test(w: &[Value], e: &Edge, intact: &[bool; PRIM_COUNT]) -> u32 {
    let branch = e.head + 1;
    let Some(t) = e.test else {
        return branch;
    };
    if !intact[t.p.index()] || (t.neg && !intact[PrimOp::Not.index()]) {
        return branch;
    }
    let Some(a) = w.get(t.slot as usize) else {
        return branch;
    };
    let holds = match (a, t.rhs) {
        (Value::Int(x), EdgeRhs::Int(_)) => return test_int(e.head, t, *x, intact),
        (Value::Float(x), EdgeRhs::Int(y)) => float_holds(t.p, *x, y as f64),
        (Value::Float(x), EdgeRhs::Float(y)) => float_holds(t.p, *x, y),
        (Value::Int(x), EdgeRhs::Float(y)) => float_holds(t.p, *x as f64, y),
        (_, EdgeRhs::Local(s)) => match (a, w.get(s as usize)) {
            (Value::Int(x), Some(Value::Int(y))) => int_holds(t.p, *x, *y),
            (Value::Float(x), Some(Value::Float(y))) => float_holds(t.p, *x, *y),
            (Value::Int(x), Some(Value::Float(y))) => float_holds(t.p, *x as f64, *y),
            (Value::Float(x), Some(Value::Int(y))) => float_holds(t.p, *x, *y as f64),
            _ => return branch,
        },
        _ => return branch,
    };
    // As the branch op, run with its pc after it: past its `JumpIfFalse` (and the `Prim(Not)`
    // before that with `neg`), or to its target.
    if holds != t.neg {
        branch + 2 + u32::from(t.neg)
    } else {
        t.target
    }
}

/// The folded test `t` of the loop at `head` on the integer `x` (the value of its local),
/// as [`test`] runs it (invariant 2).
#[inline(always)]
fn test_int(head: u32, t: EdgeTest, x: i64, intact: &[bool; PRIM_COUNT]) -> u32 {
    let branch = head + 1;
    if !intact[t.p.index()] || (t.neg && !intact[PrimOp::Not.index()]) {
        return branch;
    }
    let on = match t.range {
        Some(r) => EdgeTest::in_range(r, x),
        None => match t.rhs {
            EdgeRhs::Int(y) => int_holds(t.p, x, y) != t.neg,
            _ => return branch,
        },
    };
    if on {
        branch + 2 + u32::from(t.neg)
    } else {
        t.target
    }
}

/// The folded test `t` of the loop at `head` on the integer counter `x` just computed, its
/// primitives known intact (`Edge::needs`): where the branch op would continue, or `None`
/// when its range is not decoded (then [`test`] runs it).
#[inline(always)]
fn counter_int(head: u32, t: EdgeTest, x: i64) -> Option<u32> {
    let on = EdgeTest::in_range(t.range?, x);
    Some(if on {
        head + 3 + u32::from(t.neg)
    } else {
        branch_to(t.target)
    })
}

/// [`counter_int`] for a float counter (the interval `EdgeTest::frange`, which no NaN is in).
#[inline(always)]
fn counter_float(head: u32, t: EdgeTest, x: f64) -> Option<u32> {
    let (lo, hi) = t.frange?;
    Some(if (lo <= x && x <= hi) != t.neg {
        head + 3 + u32::from(t.neg)
    } else {
        branch_to(t.target)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoded interval of a folded float test agrees with the comparison it replaces, at
    /// the zeros, the infinities, NaN and the floats next to the constant.
    #[test]
    fn a_float_range_agrees_with_the_comparison() {
        use crate::bytecode::{next_down, next_up};
        assert_eq!(next_up(0.0), 5e-324);
        assert_eq!(next_up(-0.0), 5e-324);
        assert_eq!(next_down(0.0), -5e-324);
        assert_eq!(next_up(1.0), 1.0 + f64::EPSILON);
        assert_eq!(next_down(1.0), 1.0 - f64::EPSILON / 2.0);
        assert!(next_up(-5e-324) == 0.0 && next_up(-5e-324).is_sign_negative());
        assert_eq!(next_up(f64::MAX), f64::INFINITY);
        assert_eq!(next_up(f64::NEG_INFINITY), f64::MIN);
        assert_eq!(next_up(f64::INFINITY), f64::INFINITY);
        assert!(next_up(f64::NAN).is_nan());
        let ys = [
            f64::NEG_INFINITY,
            f64::MIN,
            -1.5,
            -0.0,
            0.0,
            5e-324,
            -5e-324,
            1.0,
            f64::MAX,
            f64::INFINITY,
            f64::NAN,
        ];
        for p in [
            PrimOp::Lt,
            PrimOp::Le,
            PrimOp::Gt,
            PrimOp::Ge,
            PrimOp::NumEq,
        ] {
            for &y in &ys {
                let (lo, hi) = EdgeTest::float_range(p, y).expect("a comparison");
                let mut xs = ys.to_vec();
                xs.extend([
                    crate::bytecode::next_up(y),
                    crate::bytecode::next_down(y),
                    2.5,
                    -7.0,
                ]);
                for x in xs {
                    let got = lo <= x && x <= hi;
                    assert_eq!(got, float_holds(p, x, y), "{p:?} x={x} y={y}");
                }
            }
        }
    }

    /// The decoded range of a folded integer test agrees with the comparison it replaces
    /// (negated or not), at the ends of the integers and around the constant.
    #[test]
    fn an_int_range_agrees_with_the_comparison() {
        let edges = [i64::MIN, i64::MIN + 1, i64::MIN + 2, -2, -1, 0, 1, 2];
        let edges = edges.iter().chain(&[i64::MAX - 2, i64::MAX - 1, i64::MAX]);
        let ys: Vec<i64> = edges.copied().collect();
        let mut xs = ys.clone();
        xs.extend([-3, 3, 17, -17]);
        for p in [
            PrimOp::Lt,
            PrimOp::Le,
            PrimOp::Gt,
            PrimOp::Ge,
            PrimOp::NumEq,
        ] {
            for neg in [false, true] {
                for &y in &ys {
                    let range = EdgeTest::int_range(p, neg, y);
                    for &x in &xs {
                        let want = int_holds(p, x, y) != neg;
                        let got = range.is_some_and(|r| EdgeTest::in_range(r, x));
                        assert_eq!(got, want, "{p:?} neg={neg} x={x} y={y}");
                    }
                }
            }
        }
    }
}
