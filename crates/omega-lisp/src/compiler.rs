//! The compiler: core [`Expr`] → bytecode [`Proto`].
//!
//! # Implementation details
//!
//! * Every local gets a frame slot, allocated stack-like per scope; a function's `nlocals` is the
//!   high-water mark. Parameters occupy the first slots (the rest list last).
//! * Variables captured by a nested lambda are copied into the closure (flat closures); those
//!   that are also assigned or `letrec`-bound live in a cell (`MakeCell`) so every copy shares it.
//! * Tail position is tracked explicitly; calls in tail position become `TailCall`. `try` bodies
//!   and handlers are never in tail position (their handler frame must stay).
//! * A call whose operator is a global variable compiles to `CallGlobal`/`TailCallGlobal`: the
//!   arguments are evaluated first and the callee is fetched from its global slot at the call
//!   (Scheme leaves the evaluation order of operator and operands unspecified). So an unbound
//!   callee is reported after its arguments were evaluated (and not at all if one of them
//!   raises); the error's message and span (the operator's position) are the same as for any
//!   unbound variable. Every other operator is evaluated before the operands.
//! * Fused ops: `Local` followed by `Return` becomes `ReturnLocal` and `Prim` becomes
//!   `PrimReturn` (still followed by the `Return`) when no jump targets the `Return`; an `if` on
//!   a numeric comparison becomes `BranchLI`/`BranchPrim`; `(OP local small-int)` is `PrimLI`.
//! * Loops compile to jumps: a named `let`, a `do`, or a body with one local function called
//!   once — all `(letrec ((f (lambda …))) (f inits…))` — whose name is only called, with the
//!   right number of arguments, in tail positions of its own body ([`find_loops`] decides, in
//!   one pass before compiling) is compiled inline. Its parameters get consecutive slots of the
//!   enclosing frame; the entry stores the inits and runs a `Loop` head, and each call
//!   evaluates its arguments and `JumpLoop`s back, which stores them and counts a step (as the
//!   closure call did: `max_steps`, interrupts and yields are unchanged). A loop entered in a
//!   non-tail position leaves its value on the stack like any expression; a call in a tail
//!   position of its body that is not a tail call of the function is noted in the loop's
//!   [`Region`], so stack traces show what the closure version showed.
//! * Numbers on the back edge: when each argument of a loop jump is one op among `Local`,
//!   `Int`, and `PrimLI`/`PrimLL`/`PrimLK` of `+ - *` (`(loop (- i 1) (+ i sum))`), a
//!   `JumpLoopNum` before those ops computes them all and jumps in one dispatch while they are
//!   numbers on their fast paths; the ops and the `JumpLoop` stay after it as its slow path
//!   (`vm/args.rs`). The same for a tail call of the global a function was `define`d as, with
//!   its arity (`TailSelfNum` before the ops and the `TailCallGlobal`; at run time it also
//!   checks that the global still holds the running closure).
//! * The loop jump's op is an `Edge` rather than a `JumpLoopNum` when every argument fits an
//!   `EdgeArg` (`bytecode.rs`): the arguments decoded at compile time, one variant per
//!   primitive and shape, and, when the loop's body starts with a compare-and-branch op
//!   (`BranchLI`/`BranchLL`/`BranchLK` at the head + 1), that test too (resolved in
//!   `FnGen::finish`, when its target is patched): one dispatch per iteration (`vm/edge.rs`).
//!   A `cdr` of a local may be one of exactly two arguments, the other a number (`(ok? row
//!   (+ dist 1) (cdr placed))`: shape `Pairs`), and a `null?`/`pair?`/`not` test of a local
//!   (`BranchL`) at the head + 1 is folded as well. For a counter and an accumulator
//!   (`CountAcc`) the step is decoded as the number added (`Edge::istep`, `Edge::fstep`) and a
//!   float exit test as an interval (`EdgeTest::frange`).
//! * A `BranchPrim` whose two operands are each one op among `Local`, `Int`, `CarL`, and
//!   `PrimLL`/`PrimLI` of `+ -` gets a `Compare` before them (`fuse_compare`): the operands
//!   decoded (`Proto::compares`), compared in one dispatch while they are integers, the ops
//!   and the `BranchPrim` after it as its slow path (`vm/compare.rs`).
//! * A `letrec` variable (an internal `define`) assigned once, by a lambda that captures
//!   nothing (compiled as a constant closure), and never `set!` holds that closure from its
//!   init on: every reference compiled after the init loads the constant (`note_known`), so
//!   a sibling that only calls such functions captures nothing and is a constant too. A
//!   non-tail call of such a variable is a `CallConst` (the closure fetched from the
//!   constants at the call, as `CallGlobal` fetches a global's: no callee pushed, counted and
//!   dropped per call; `nqueens`' calls of `ok?`).
//! * A non-last item of `and` that is a numeric comparison, or `not` of one, is its
//!   compare-and-branch op followed by `JumpIfFalseElsePop`: false jumps to the `#f` pushed
//!   after the last item (as `ShortL` does), true skips the `JumpIfFalseElsePop`; off the fast
//!   path the op pushes the primitive's own value, which `JumpIfFalseElsePop` keeps.
//! * Self calls of a local function: a lambda assigned to a `letrec` variable (an
//!   internal `define`, a named `let` that is not inlined) that is assigned nowhere else and
//!   never `set!` is the only value that variable ever holds once the lambda's code runs (the
//!   cell is filled right after the closure is made; a continuation cannot re-enter). So a
//!   call of that variable with the lambda's arity in a tail position of its body is a call of
//!   the running closure: it compiles to a `JumpLoop` (or `JumpLoopNum`/`Edge`) to a
//!   `Jump(1)` at pc 0, as an inline loop's call, when no parameter lives in a cell
//!   (`FnGen::self_local`). No callee is loaded, no frame restarted; a step is counted, as
//!   for the tail call. The other locals are not reset: each is stored before it is read.
//!   A non-tail call of that variable with that arity is `CallSelf` (any parameters): the
//!   running closure called with no callee loaded, the code kept loaded (VM invariant 9). A
//!   `set!` of the variable anywhere keeps the closure calls (whose self calls also restart
//!   the frame or keep the code loaded, after an `Rc::ptr_eq` test).
//! * Invariant of inline loops: at a loop's head and at every `JumpLoop` to it, the operand
//!   stack has the same height (loop calls are only in tail positions of the body, where
//!   nothing of the body is left on the operand stack).
//! * Recursion is bounded by [`COMPILE_LIMIT`]; deeper code is a clean `:syntax` error.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::bytecode::{
    Capture, CmpArg, Compare, Edge, EdgeArg, EdgeRhs, EdgeShape, EdgeTest, HandlerKind, Op,
    PairsEdge, PrimOp, Proto, Region,
};
use crate::error::{LispError, LispResult, Span};
use crate::ir::{Catch, Expr, ExprKind, Lambda, VarId, VarInfo};
use crate::stack_guard::StackGuard;
use crate::value::{Closure, Value};

/// Deepest expression nesting the compiler accepts.
pub(crate) const COMPILE_LIMIT: usize = 4000;

/// Compiles a top-level expression into a zero-argument procedure named `<top>`.
pub(crate) fn compile_toplevel(
    expr: &Expr,
    vars: &[VarInfo],
    file: Rc<str>,
) -> LispResult<Rc<Proto>> {
    let (loop_vars, sets) = find_loops(expr);
    let mut c = Compiler {
        vars,
        loop_vars,
        sets,
        fns: vec![FnGen::new("<top>".into(), file.clone())],
        file,
        depth: 0,
        guard: StackGuard::new(),
        defining: None,
        defining_local: None,
        known: HashMap::new(),
    };
    // Not a tail position: the `<top>` frame stays in stack traces.
    c.expr(expr, Tail::NO)?;
    c.emit_return(expr.pos);
    let f = c.fns.pop().expect("top function");
    Ok(Rc::new(f.finish(0, false)))
}

struct FnGen {
    name: String,
    code: Vec<Op>,
    pos: Vec<(u32, u32)>,
    consts: Vec<Value>,
    protos: Vec<Rc<Proto>>,
    captures: Vec<Capture>,
    slots: HashMap<VarId, u32>,
    free: HashMap<VarId, u32>,
    next_slot: u32,
    max_slot: u32,
    /// The highest jump target patched so far (for the `ReturnLocal` fusion).
    max_target: u32,
    callee_pos: Vec<(u32, (u32, u32))>,
    file: Rc<str>,
    /// The loops compiled inline whose bodies enclose the code being compiled, outermost
    /// first.
    loops: Vec<LoopCtx>,
    /// Every loop compiled inline in this function, in order of their heads.
    regions: Vec<Region>,
    /// The global slot this function is the value of (`(define (f …) …)`) and its number of
    /// parameters, when it has no rest parameter: a tail call of that global with that many
    /// arguments is likely a call of itself (`TailSelfNum`).
    self_global: Option<(u32, usize)>,
    /// The local variable that holds this function wherever its code runs (a `letrec`,
    /// internal `define` or named `let` binding assigned once, by this lambda, and never
    /// `set!`) and its number of parameters, when it has no rest parameter, no parameter in
    /// a cell, and a tail call of that variable in its body: such a tail call with that many
    /// arguments is a self tail call, a `JumpLoop` to the `Jump(1)` at pc 0.
    self_local: Option<(VarId, usize)>,
    /// The same variable and arity when only the first conditions hold (assigned once by
    /// this lambda, never `set!`, fixed arity): a non-tail call of it with that many
    /// arguments is a call of the running closure (`CallSelf`).
    self_call: Option<(VarId, usize)>,
    /// The fused back edges (`Op::Edge`); their tests are resolved by `finish`.
    edges: Vec<Edge>,
    /// The fused comparisons (`Op::Compare`); their targets are copied by `finish`.
    compares: Vec<Compare>,
}

/// A loop compiled inline (see the module docs): its name's variable, its parameters' slots and
/// the pc of its `Loop` head.
struct LoopCtx {
    var: VarId,
    slots: Vec<u32>,
    head: u32,
    /// Its index in `FnGen::regions`.
    region: usize,
}

/// Where an expression's value goes: `ret` — it is the function's result (a call there is a
/// tail call); `loops` — it is the value of the bodies of the inline loops
/// `FnGen::loops[loops..]` (a call of one of their names there is a jump back to its head;
/// `usize::MAX` when none).
#[derive(Clone, Copy, Debug)]
struct Tail {
    ret: bool,
    loops: usize,
}

impl Tail {
    /// Not a tail position.
    const NO: Tail = Tail {
        ret: false,
        loops: usize::MAX,
    };
    /// A function body's tail position.
    const RET: Tail = Tail {
        ret: true,
        loops: usize::MAX,
    };
}

impl FnGen {
    fn new(name: String, file: Rc<str>) -> FnGen {
        FnGen {
            name,
            code: Vec::new(),
            pos: Vec::new(),
            consts: Vec::new(),
            protos: Vec::new(),
            captures: Vec::new(),
            slots: HashMap::new(),
            free: HashMap::new(),
            next_slot: 0,
            max_slot: 0,
            max_target: 0,
            callee_pos: Vec::new(),
            file,
            loops: Vec::new(),
            regions: Vec::new(),
            self_global: None,
            self_local: None,
            self_call: None,
            edges: Vec::new(),
            compares: Vec::new(),
        }
    }

    fn alloc(&mut self, v: VarId) -> u32 {
        let s = self.next_slot;
        self.next_slot += 1;
        self.max_slot = self.max_slot.max(self.next_slot);
        self.slots.insert(v, s);
        s
    }

    fn finish(mut self, nparams: u32, rest: bool) -> Proto {
        // Every branch target is patched by now: fold each loop's exit test into its edges.
        for e in &mut self.edges {
            e.resolve_test(edge_test(&self.code, &self.consts, e.head as usize + 1));
        }
        for c in &mut self.compares {
            if let Some(Op::BranchPrim(_, _, t)) = self.code.get(c.branch as usize) {
                c.target = *t;
            }
        }
        Proto {
            name: self.name,
            nparams,
            rest,
            nlocals: self.max_slot,
            code: self.code,
            pos: self.pos,
            file: self.file,
            consts: self.consts,
            protos: self.protos,
            captures: self.captures,
            callee_pos: self.callee_pos,
            regions: self.regions,
            edges: self.edges,
            compares: self.compares,
        }
    }
}

/// The exit test at `pc` (a loop's head + 1) that an `Op::Edge` can run itself: a
/// `BranchLI`/`BranchLL`/`BranchLK` (each followed by its `JumpIfFalse`, and with the negation
/// flag a `Prim(Not)` before it, as `condition` emits them).
fn edge_test(code: &[Op], consts: &[Value], pc: usize) -> Option<EdgeTest> {
    let (p, neg, slot, rhs, target) = match *code.get(pc)? {
        Op::BranchLI(p, neg, s, imm, t) => (p, neg, s, EdgeRhs::Int(i64::from(imm)), t),
        Op::BranchLL(p, neg, a, b, t) => (p, neg, a, EdgeRhs::Local(b), t),
        Op::BranchL(p, neg, s, t) => (p, neg, s, EdgeRhs::Unary, t),
        Op::BranchLK(p, neg, s, k, t) => match consts.get(k as usize)? {
            Value::Int(i) => (p, neg, s, EdgeRhs::Int(*i), t),
            Value::Float(x) => (p, neg, s, EdgeRhs::Float(*x), t),
            _ => return None,
        },
        _ => return None,
    };
    let range = match rhs {
        EdgeRhs::Int(y) => EdgeTest::int_range(p, neg, y),
        _ => None,
    };
    let frange = match rhs {
        EdgeRhs::Int(y) => EdgeTest::float_range(p, y as f64),
        EdgeRhs::Float(y) => EdgeTest::float_range(p, y),
        _ => None,
    };
    Some(EdgeTest {
        p,
        neg,
        slot,
        rhs,
        target,
        range,
        frange,
    })
}

/// `op`, an argument of a loop jump whose parameter is local `dst` ([`crate::vm::is_num_arg`]),
/// as an [`EdgeArg`]; `None` if it does not fit one.
fn edge_arg(op: &Op, dst: usize, consts: &[Value]) -> Option<EdgeArg> {
    Some(match *op {
        Op::Local(s) if s as usize == dst => EdgeArg::Keep,
        Op::Local(s) => EdgeArg::Local(u16::try_from(s).ok()?),
        Op::Int(i) => EdgeArg::Int(i64::from(i)),
        Op::PrimLI(p, s, i) => int_arg(p, s, i64::from(i))?,
        Op::PrimLL(PrimOp::Add, a, b) => EdgeArg::AddLL(a, b),
        Op::PrimLL(PrimOp::Sub, a, b) => EdgeArg::SubLL(a, b),
        Op::PrimLL(PrimOp::Mul, a, b) => EdgeArg::MulLL(a, b),
        Op::CdrL(s) => EdgeArg::Cdr(s),
        Op::PrimLK(p, s, k) => match consts.get(k as usize)? {
            Value::Int(i) => int_arg(p, s, *i)?,
            Value::Float(y) if p.is_arith() => EdgeArg::LF(p, s, *y),
            _ => return None,
        },
        _ => return None,
    })
}

/// `local OP k` for an integer constant `k`.
fn int_arg(p: PrimOp, s: u16, k: i64) -> Option<EdgeArg> {
    match p {
        PrimOp::Add => Some(EdgeArg::AddLI(s, k)),
        PrimOp::Sub => Some(EdgeArg::SubLI(s, k)),
        PrimOp::Mul => Some(EdgeArg::MulLI(s, k)),
        _ => None,
    }
}

enum Access {
    Local(u32),
    Free(u32),
}

struct Compiler<'a> {
    vars: &'a [VarInfo],
    /// The loop names that compile to jumps ([`find_loops`]).
    loop_vars: HashSet<VarId>,
    fns: Vec<FnGen>,
    file: Rc<str>,
    depth: usize,
    guard: StackGuard,
    /// The global slot whose `define` value is being compiled, when that value is a lambda
    /// (taken by that lambda: `FnGen::self_global`).
    defining: Option<u32>,
    /// The local variable being assigned, when the value is a lambda (taken by that lambda:
    /// `FnGen::self_local`).
    defining_local: Option<VarId>,
    /// How many `SetLocal`s (`letrec` inits, internal `define`s, `set!`s) assign each variable.
    sets: HashMap<VarId, usize>,
    /// The `letrec` variables whose only value is a closure without captures, compiled as a
    /// constant (`note_known`): every reference compiled after that init loads the constant.
    known: HashMap<VarId, Value>,
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("fewer than 2^32 items")
}

impl Compiler<'_> {
    fn f(&mut self) -> &mut FnGen {
        self.fns.last_mut().expect("a function is being compiled")
    }

    fn emit(&mut self, op: Op, pos: (u32, u32)) -> usize {
        let f = self.f();
        f.code.push(op);
        f.pos.push(pos);
        f.code.len() - 1
    }

    /// Emits `Return`, fused with a preceding `Local` into `ReturnLocal` unless a jump targets
    /// the return itself (every jump target so far is at most `max_target`). A preceding `Prim`
    /// becomes `PrimReturn` under the same condition, and the `Return` stays after it for the
    /// cases `PrimReturn` does not return itself.
    fn emit_return(&mut self, pos: (u32, u32)) -> usize {
        let f = self.f();
        let at = f.code.len();
        if f.max_target < to_u32(at) {
            match f.code.last() {
                Some(&Op::Local(s)) => {
                    f.code[at - 1] = Op::ReturnLocal(s);
                    return at - 1;
                }
                Some(&Op::Prim(p)) => f.code[at - 1] = Op::PrimReturn(p),
                _ => {}
            }
        }
        self.emit(Op::Return, pos)
    }

    fn here(&mut self) -> u32 {
        to_u32(self.f().code.len())
    }

    /// Sets the target of the jump at `at` (a no-op if it is not a jump: the `Return` that
    /// `emit_return` emits for an `if` branch in tail position).
    fn patch(&mut self, at: usize, target: u32) {
        let f = self.f();
        let op = &mut f.code[at];
        *op = match *op {
            Op::Jump(_) => Op::Jump(target),
            Op::JumpIfFalse(_) => Op::JumpIfFalse(target),
            Op::JumpIfFalseElsePop(_) => Op::JumpIfFalseElsePop(target),
            Op::JumpIfTrueElsePop(_) => Op::JumpIfTrueElsePop(target),
            Op::PushHandler(_, k) => Op::PushHandler(target, k),
            Op::BranchLI(p, n, s, k, _) => Op::BranchLI(p, n, s, k, target),
            Op::BranchLL(p, n, a, b, _) => Op::BranchLL(p, n, a, b, target),
            Op::BranchLK(p, n, s, k, _) => Op::BranchLK(p, n, s, k, target),
            Op::BranchL(p, n, s, _) => Op::BranchL(p, n, s, target),
            Op::ShortL(p, n, or, s, _) => Op::ShortL(p, n, or, s, target),
            Op::BranchNot(_) => Op::BranchNot(target),
            Op::BranchPrim(p, n, _) => Op::BranchPrim(p, n, target),
            // Not a jump: no new jump target.
            _ => return,
        };
        f.max_target = f.max_target.max(target);
    }

    fn constant(&mut self, v: Value, pos: (u32, u32)) {
        let op = match v {
            Value::Nil => Op::Nil,
            Value::Bool(true) => Op::True,
            Value::Bool(false) => Op::False,
            Value::Int(i) if i32::try_from(i).is_ok() => {
                Op::Int(i32::try_from(i).expect("checked"))
            }
            v => {
                let f = self.f();
                f.consts.push(v);
                Op::Const(to_u32(f.consts.len() - 1))
            }
        };
        self.emit(op, pos);
    }

    /// Where variable `v` lives from the current function (adding captures as needed).
    fn access(&mut self, v: VarId) -> Access {
        let level = self.fns.len() - 1;
        self.access_at(level, v)
    }

    fn access_at(&mut self, level: usize, v: VarId) -> Access {
        if let Some(&s) = self.fns[level].slots.get(&v) {
            return Access::Local(s);
        }
        if let Some(&i) = self.fns[level].free.get(&v) {
            return Access::Free(i);
        }
        // Captured from an enclosing function (the expander guarantees one binds it).
        let cap = match level.checked_sub(1).map(|l| self.access_at(l, v)) {
            Some(Access::Local(s)) => Capture::Local(s),
            Some(Access::Free(i)) => Capture::Free(i),
            None => Capture::Local(0),
        };
        let f = &mut self.fns[level];
        f.captures.push(cap);
        let i = to_u32(f.captures.len() - 1);
        f.free.insert(v, i);
        Access::Free(i)
    }

    fn boxed(&self, v: VarId) -> bool {
        self.vars[v as usize].boxed()
    }

    fn get_var(&mut self, v: VarId, pos: (u32, u32)) {
        if let Some(c) = (!self.known.is_empty())
            .then(|| self.known.get(&v))
            .flatten()
        {
            // The one closure this variable holds from here on (`note_known`).
            let c = c.clone();
            self.constant(c, pos);
            return;
        }
        let boxed = self.boxed(v);
        let op = match (self.access(v), boxed) {
            (Access::Local(s), false) => Op::Local(s),
            (Access::Local(s), true) => Op::LocalCell(s),
            (Access::Free(i), false) => Op::Free(i),
            (Access::Free(i), true) => Op::FreeCell(i),
        };
        self.emit(op, pos);
    }

    /// Pops the top value into variable `v` (already bound).
    fn set_var(&mut self, v: VarId, pos: (u32, u32)) {
        let boxed = self.boxed(v);
        let op = match (self.access(v), boxed) {
            (Access::Local(s), false) => Op::SetLocal(s),
            (Access::Local(s), true) => Op::SetLocalCell(s),
            (Access::Free(i), true) => Op::SetFreeCell(i),
            // An assigned captured variable is always boxed; this arm cannot be reached.
            (Access::Free(i), false) => Op::SetFreeCell(i),
        };
        self.emit(op, pos);
    }

    /// Binds a new variable from the value on top of the stack.
    fn bind_var(&mut self, v: VarId, pos: (u32, u32)) {
        let s = self.f().alloc(v);
        self.emit(Op::SetLocal(s), pos);
        if self.boxed(v) {
            self.emit(Op::MakeCell(s), pos);
        }
    }

    fn expr(&mut self, e: &Expr, tail: Tail) -> LispResult<()> {
        self.depth += 1;
        let r = if self.depth > COMPILE_LIMIT || !self.guard.ok() {
            Err(LispError::syntax(
                Span::new(self.file.clone(), e.pos.0, e.pos.1),
                "expression nested too deeply to compile",
            ))
        } else {
            self.expr_inner(e, tail)
        };
        self.depth -= 1;
        r
    }

    fn expr_inner(&mut self, e: &Expr, tail: Tail) -> LispResult<()> {
        let p = e.pos;
        match &e.kind {
            ExprKind::Const(v) => self.constant(v.clone(), p),
            ExprKind::Local(v) => self.get_var(*v, p),
            ExprKind::Global(slot) => {
                self.emit(Op::Global(*slot), p);
            }
            ExprKind::SetLocal(v, value) => {
                let lambda = matches!(value.kind, ExprKind::Lambda(_));
                if lambda {
                    self.defining_local = Some(*v);
                }
                self.expr(value, Tail::NO)?;
                if lambda {
                    self.note_known(*v);
                }
                self.set_var(*v, p);
                self.emit(Op::Nil, p);
            }
            ExprKind::SetGlobal(slot, value) => {
                self.expr(value, Tail::NO)?;
                self.emit(Op::SetGlobal(*slot), p);
                self.emit(Op::Nil, p);
            }
            ExprKind::DefGlobal(slot, value, name) => {
                if matches!(value.kind, ExprKind::Lambda(_)) {
                    self.defining = Some(*slot);
                }
                self.expr(value, Tail::NO)?;
                self.emit(Op::DefGlobal(*slot), p);
                self.constant(Value::Symbol(*name), p);
            }
            ExprKind::DefMacro(slot, value, name) => {
                self.expr(value, Tail::NO)?;
                self.emit(Op::DefMacro(*slot), p);
                self.constant(Value::Symbol(*name), p);
            }
            ExprKind::If(c, t, f) => {
                let jumps = self.condition(c)?;
                self.expr(t, tail)?;
                // In tail position the next instruction would be `Return`: return directly.
                let j = if tail.ret {
                    self.emit_return(p)
                } else {
                    self.emit(Op::Jump(0), p)
                };
                let else_at = self.here();
                for jf in jumps {
                    self.patch(jf, else_at);
                }
                self.expr(f, tail)?;
                let end = self.here();
                self.patch(j, end);
            }
            ExprKind::Lambda(lam) => self.lambda(lam, p)?,
            ExprKind::Call(f, args) => {
                let n = to_u32(args.len());
                if let ExprKind::Local(v) = f.kind {
                    if let Some(i) = self.loop_index(v) {
                        return self.loop_call(i, args, tail, p);
                    }
                    if tail.ret && self.f().self_local == Some((v, args.len())) {
                        return self.self_jump(args, p);
                    }
                    if !tail.ret && self.f().self_call == Some((v, args.len())) {
                        for a in args {
                            self.expr(a, Tail::NO)?;
                        }
                        let at = self.emit(Op::CallSelf(n), p);
                        self.note_call(at, tail);
                        return Ok(());
                    }
                    if let (false, Some(c)) = (tail.ret, self.known.get(&v).cloned()) {
                        // A known function (`note_known`): the callee is a constant, fetched
                        // at the call.
                        for a in args {
                            self.expr(a, Tail::NO)?;
                        }
                        let f = self.f();
                        f.consts.push(c);
                        let k = to_u32(f.consts.len() - 1);
                        let at = self.emit(Op::CallConst(k, n), p);
                        self.note_call(at, tail);
                        return Ok(());
                    }
                }
                if let ExprKind::Global(slot) = f.kind {
                    // The callee is fetched at the call, after the arguments (module docs).
                    let start = self.f().code.len();
                    for a in args {
                        self.expr(a, Tail::NO)?;
                    }
                    if tail.ret && self.f().self_global == Some((slot, args.len())) {
                        self.fuse_self_tail_call(start, slot, args.len());
                    }
                    let op = if tail.ret {
                        Op::TailCallGlobal(slot, n)
                    } else {
                        Op::CallGlobal(slot, n)
                    };
                    let at = self.emit(op, p);
                    self.f().callee_pos.push((to_u32(at), f.pos));
                    self.note_call(at, tail);
                    return Ok(());
                }
                self.expr(f, Tail::NO)?;
                for a in args {
                    self.expr(a, Tail::NO)?;
                }
                let at = self.emit(
                    if tail.ret {
                        Op::TailCall(n)
                    } else {
                        Op::Call(n)
                    },
                    p,
                );
                self.note_call(at, tail);
            }
            ExprKind::Prim(op, args) => {
                if let Some((slot, imm)) = self.local_and_small_int(*op, args) {
                    self.emit(Op::PrimLI(*op, slot, imm), p);
                    return Ok(());
                }
                if let Some((a, b)) = self.two_locals(*op, args) {
                    self.emit(Op::PrimLL(*op, a, b), p);
                    return Ok(());
                }
                if let Some((slot, k)) = self.local_and_number(*op, args) {
                    self.emit(Op::PrimLK(*op, slot, u32::from(k)), p);
                    return Ok(());
                }
                if let Some((q, neg, slot, inner)) = self.unary_local(*op, args) {
                    let op = match (q, neg) {
                        (PrimOp::Car, false) => Op::CarL(slot),
                        (PrimOp::Cdr, false) => Op::CdrL(slot),
                        _ => Op::PrimL(q, neg, slot),
                    };
                    self.emit(op, if neg { inner } else { p });
                    if neg {
                        self.emit(Op::Prim(PrimOp::Not), p);
                    }
                    return Ok(());
                }
                for a in args {
                    self.expr(a, Tail::NO)?;
                }
                self.emit(Op::Prim(*op), p);
            }
            ExprKind::Seq(items) => {
                if items.is_empty() {
                    self.emit(Op::Nil, p);
                }
                for (i, item) in items.iter().enumerate() {
                    let last = i + 1 == items.len();
                    self.expr(item, if last { tail } else { Tail::NO })?;
                    if !last {
                        self.emit(Op::Pop, p);
                    }
                }
            }
            ExprKind::Let(bindings, body) => {
                for (_, init) in bindings {
                    self.expr(init, Tail::NO)?;
                }
                let saved = self.f().next_slot;
                let slots: Vec<u32> = bindings.iter().map(|(v, _)| self.f().alloc(*v)).collect();
                for ((v, _), s) in bindings.iter().zip(&slots).rev() {
                    self.emit(Op::SetLocal(*s), p);
                    if self.boxed(*v) {
                        self.emit(Op::MakeCell(*s), p);
                    }
                }
                self.expr(body, tail)?;
                self.f().next_slot = saved;
            }
            ExprKind::Letrec(vars, body) => {
                if let Some((lv, lam, inits)) = loop_shape(vars, body) {
                    if self.loop_vars.contains(&lv) {
                        return self.inline_loop(lv, lam, inits, tail, p);
                    }
                }
                let saved = self.f().next_slot;
                for v in vars {
                    self.emit(Op::Nil, p);
                    self.bind_var(*v, p);
                }
                self.expr(body, tail)?;
                self.f().next_slot = saved;
            }
            ExprKind::And(items) => self.short_circuit(items, true, tail, p)?,
            ExprKind::Or(items) => self.short_circuit(items, false, tail, p)?,
            ExprKind::Try {
                body,
                catch,
                finally,
            } => self.try_expr(body, catch.as_ref(), finally.as_ref(), p)?,
            ExprKind::Shield(body) => {
                self.emit(Op::ShieldEnter, p);
                self.expr(body, Tail::NO)?;
                self.emit(Op::ShieldExit(true), p);
            }
        }
        Ok(())
    }

    /// The index in the running function's inline loops of the loop named by `v`.
    fn loop_index(&mut self, v: VarId) -> Option<usize> {
        self.f().loops.iter().rposition(|l| l.var == v)
    }

    /// Records a call compiled at `at` that the closure version of the innermost inline loop
    /// would have made as a tail call (the loop's frame replaced by the callee's), so that a
    /// stack trace through it leaves the loop's line out.
    fn note_call(&mut self, at: usize, tail: Tail) {
        let f = self.f();
        if !tail.ret && tail.loops < f.loops.len() {
            if let Some(l) = f.loops.last() {
                let r = l.region;
                f.regions[r].tail_calls.push(to_u32(at));
            }
        }
    }

    /// A call of inline loop `i` in a tail position of its body: the arguments are evaluated,
    /// stored into the loop's parameter slots, and control jumps back to the loop's head.
    fn loop_call(&mut self, i: usize, args: &[Expr], tail: Tail, p: (u32, u32)) -> LispResult<()> {
        let f = self.f();
        if i < tail.loops || args.len() != f.loops[i].slots.len() {
            // `find_loops` only lets through loops whose every call qualifies.
            return Err(LispError::syntax(
                Span::new(self.file.clone(), p.0, p.1),
                "internal error: a loop call that cannot jump",
            ));
        }
        let f = self.f();
        let head = f.loops[i].head;
        let slots = f.loops[i].slots.clone();
        // The parameters' slots are consecutive (`inline_loop` allocates them together): the
        // jump stores the arguments itself when they fit its fields.
        let fused = match (slots.first(), u16::try_from(slots.len())) {
            (Some(&first), Ok(n)) => u16::try_from(first)
                .ok()
                .filter(|first| first.checked_add(n).is_some()),
            _ => None,
        };
        match fused {
            Some(first) => self.jump_with_args(args, head, first, p)?,
            None => {
                for a in args {
                    self.expr(a, Tail::NO)?;
                }
                for s in slots.iter().rev() {
                    self.emit(Op::SetLocal(*s), p);
                }
                self.emit(Op::JumpLoop(head, 0, 0), p);
            }
        }
        let f = self.f();
        f.max_target = f.max_target.max(head);
        Ok(())
    }

    /// If the loop jump's arguments, compiled from `start`, are one number op each that
    /// `JumpLoopNum` can compute (`vm/args.rs`), puts a `JumpLoopNum` before them (the ops
    /// and the `JumpLoop` after them stay as its slow path). The ops record no pc (they are
    /// not jumps, calls or loop heads), and a jump that already targets `start` now lands on
    /// the `JumpLoopNum`, which is equivalent.
    fn fuse_num_args(&mut self, start: usize, head: u32, first: u16, n: u16) {
        let f = self.f();
        let ops = &f.code[start..];
        // Numbers only, or numbers and `cdr`s of locals (an `Edge` of shape `Pairs`, which
        // has no `JumpLoopNum` form).
        let nums = ops.iter().all(crate::vm::is_num_arg);
        // No argument ops (every argument passes its own parameter on): nothing to fuse.
        if ops.is_empty()
            || ops.len() != usize::from(n)
            || ops.len() > crate::vm::MAX_NUM_ARGS
            || !ops
                .iter()
                .all(|op| crate::vm::is_num_arg(op) || matches!(op, Op::CdrL(_)))
        {
            return;
        }
        let pos = f.pos[start];
        let args: Option<Vec<EdgeArg>> = ops
            .iter()
            .enumerate()
            .map(|(k, op)| edge_arg(op, usize::from(first) + k, &f.consts))
            .collect();
        // A `cdr` only as one of two arguments (`EdgeShape::Pairs`).
        let args = args.filter(|a| {
            let cdrs = a.iter().filter(|x| matches!(x, EdgeArg::Cdr(_))).count();
            cdrs == 0 || (cdrs == 1 && a.len() == 2)
        });
        let op = match (args, u32::try_from(f.edges.len())) {
            (Some(args), Ok(i)) => {
                let mut prims: Vec<PrimOp> = Vec::new();
                for p in args.iter().filter_map(|a| a.prim()) {
                    if !prims.contains(&p) {
                        prims.push(p);
                    }
                }
                let shape = EdgeShape::of(first, &args);
                let (fstep, istep) = match (shape, args.first()) {
                    (EdgeShape::CountAcc(_), Some(&a)) => (a.float_step(), a.int_step()),
                    _ => (0.0, None),
                };
                f.edges.push(Edge {
                    head,
                    first,
                    shape,
                    pairs: PairsEdge::of(first, &args),
                    needs: 0,
                    on_counter: false,
                    fstep,
                    istep,
                    args,
                    prims,
                    test: None,
                });
                Op::Edge(i)
            }
            _ if nums => Op::JumpLoopNum(head, first, n),
            _ => return,
        };
        f.code.insert(start, op);
        f.pos.insert(start, pos);
    }

    /// A tail call of the global this function was defined as, with its number of arguments,
    /// compiled from `start`: if the arguments are one number op each (as for
    /// `fuse_num_args`), puts a `TailSelfNum` before them; the ops and the `TailCallGlobal`
    /// after them stay as its slow path (also when the global holds something else by then).
    fn fuse_self_tail_call(&mut self, start: usize, slot: u32, argc: usize) {
        let f = self.f();
        let ops = &f.code[start..];
        let Ok(n) = u16::try_from(ops.len()) else {
            return;
        };
        if ops.is_empty()
            || ops.len() != argc
            || ops.len() > crate::vm::MAX_NUM_ARGS
            || !ops.iter().all(crate::vm::is_num_arg)
        {
            return;
        }
        let pos = f.pos[start];
        f.code.insert(start, Op::TailSelfNum(slot, n));
        f.pos.insert(start, pos);
    }

    /// Compiles the loop `(letrec ((lv lam)) (lv inits…))` (a named `let`, a `do`, a body
    /// with one local function called once) inline: the inits go into fresh slots of this
    /// frame that are the loop's parameters, then the body runs from a `Loop` head that counts
    /// a step like the closure call it replaces.
    fn inline_loop(
        &mut self,
        lv: VarId,
        lam: &Lambda,
        inits: &[Expr],
        tail: Tail,
        p: (u32, u32),
    ) -> LispResult<()> {
        for init in inits {
            self.expr(init, Tail::NO)?;
        }
        let saved = self.f().next_slot;
        let slots: Vec<u32> = lam.params.iter().map(|v| self.f().alloc(*v)).collect();
        for s in slots.iter().rev() {
            self.emit(Op::SetLocal(*s), p);
        }
        let head = to_u32(self.emit(Op::Loop, p));
        for (v, s) in lam.params.iter().zip(&slots) {
            if self.boxed(*v) {
                self.emit(Op::MakeCell(*s), p);
            }
        }
        let f = self.f();
        let idx = f.loops.len();
        let region = f.regions.len();
        f.regions.push(Region {
            start: head,
            end: head,
            name: lam.name.clone(),
            tail: tail.ret || tail.loops < idx,
            entry: p,
            tail_calls: Vec::new(),
        });
        f.loops.push(LoopCtx {
            var: lv,
            slots,
            head,
            region,
        });
        let body_tail = Tail {
            ret: tail.ret,
            loops: tail.loops.min(idx),
        };
        let r = self.expr(&lam.body, body_tail);
        let f = self.f();
        f.loops.pop();
        r?;
        let end = to_u32(f.code.len());
        f.regions[region].end = end;
        // A step counted at the head is reported where the closure's first op was.
        let h = head as usize;
        if let Some(&q) = f.pos.get(h + 1) {
            f.pos[h] = q;
        }
        f.next_slot = saved;
        Ok(())
    }

    /// `(OP local small-int)` with OP numeric and the local an unboxed slot of this frame.
    fn local_and_small_int(&mut self, op: PrimOp, args: &[Expr]) -> Option<(u16, i16)> {
        if !op.is_numeric() {
            return None;
        }
        let [a, b] = args else { return None };
        let (ExprKind::Local(v), ExprKind::Const(Value::Int(k))) = (&a.kind, &b.kind) else {
            return None;
        };
        if self.boxed(*v) {
            return None;
        }
        let slot = *self.f().slots.get(v)?;
        Some((u16::try_from(slot).ok()?, i16::try_from(*k).ok()?))
    }

    /// `(OP local number)` with OP numeric, the local an unboxed slot of this frame and the
    /// number a constant (not a small integer: see `local_and_small_int`), added to the pool.
    fn local_and_number(&mut self, op: PrimOp, args: &[Expr]) -> Option<(u16, u16)> {
        if !op.is_numeric() {
            return None;
        }
        let [a, b] = args else { return None };
        let (ExprKind::Local(v), ExprKind::Const(k @ (Value::Int(_) | Value::Float(_)))) =
            (&a.kind, &b.kind)
        else {
            return None;
        };
        if self.boxed(*v) {
            return None;
        }
        let f = self.f();
        let slot = u16::try_from(*f.slots.get(v)?).ok()?;
        let idx = u16::try_from(f.consts.len()).ok()?;
        f.consts.push(k.clone());
        Some((slot, idx))
    }

    /// `(OP local local)` with OP numeric and both locals unboxed slots of this frame.
    fn two_locals(&mut self, op: PrimOp, args: &[Expr]) -> Option<(u16, u16)> {
        if !op.is_numeric() {
            return None;
        }
        let [a, b] = args else { return None };
        let (ExprKind::Local(x), ExprKind::Local(y)) = (&a.kind, &b.kind) else {
            return None;
        };
        if self.boxed(*x) || self.boxed(*y) {
            return None;
        }
        let f = self.f();
        let (sx, sy) = (*f.slots.get(x)?, *f.slots.get(y)?);
        Some((u16::try_from(sx).ok()?, u16::try_from(sy).ok()?))
    }

    /// `(OP local)` with OP unary (`car cdr null? not`) and the local an unboxed slot of this
    /// frame, or `(not (OP local))` (negated): the primitive, the negation, the slot and the
    /// position of `(OP local)`.
    fn unary_local(
        &mut self,
        op: PrimOp,
        args: &[Expr],
    ) -> Option<(PrimOp, bool, u16, (u32, u32))> {
        let [a] = args else { return None };
        let direct = |c: &mut Self, op: PrimOp, a: &Expr| -> Option<u16> {
            if op.argc() != 1 {
                return None;
            }
            let ExprKind::Local(v) = &a.kind else {
                return None;
            };
            if c.boxed(*v) {
                return None;
            }
            u16::try_from(*c.f().slots.get(v)?).ok()
        };
        if op == PrimOp::Not {
            if let ExprKind::Prim(q, inner) = &a.kind {
                if let [x] = inner.as_slice() {
                    if let Some(slot) = direct(self, *q, x) {
                        return Some((*q, true, slot, a.pos));
                    }
                }
            }
        }
        let slot = direct(self, op, a)?;
        Some((op, false, slot, (0, 0)))
    }

    /// Compiles an `if` test; returns the jumps to patch to the else branch. A numeric
    /// comparison, `null?`, `pair?` or `not` of a local, or `not` of one of those, becomes a
    /// compare-and-branch op; `(not X)` a `BranchNot`.
    fn condition(&mut self, c: &Expr) -> LispResult<Vec<usize>> {
        let p = c.pos;
        if let ExprKind::Prim(op, args) = &c.kind {
            if let Some((q, neg, slot, inner)) = self.unary_local(*op, args) {
                if matches!(q, PrimOp::NullP | PrimOp::PairP | PrimOp::Not) {
                    let at = if neg { inner } else { p };
                    let b = self.emit(Op::BranchL(q, neg, slot, 0), at);
                    if neg {
                        self.emit(Op::Prim(PrimOp::Not), p);
                    }
                    let j = self.emit(Op::JumpIfFalse(0), p);
                    return Ok(vec![b, j]);
                }
            }
            if let (PrimOp::Not, [x]) = (op, args.as_slice()) {
                let is_cmp =
                    matches!(&x.kind, ExprKind::Prim(q, a) if q.is_comparison() && a.len() == 2);
                if !is_cmp {
                    self.expr(x, Tail::NO)?;
                    let b = self.emit(Op::BranchNot(0), p);
                    let j = self.emit(Op::JumpIfFalse(0), p);
                    return Ok(vec![b, j]);
                }
            }
        }
        if let Some(b) = self.compare_branch(c)? {
            let j = self.emit(Op::JumpIfFalse(0), p);
            return Ok(vec![b, j]);
        }
        self.expr(c, Tail::NO)?;
        Ok(vec![self.emit(Op::JumpIfFalse(0), p)])
    }

    /// If `c` is a numeric comparison of two operands, or `not` of one, emits its
    /// compare-and-branch op (`BranchLI`/`BranchLL`/`BranchLK`/`BranchPrim`, with its operands
    /// before it for `BranchPrim`) and, negated, the `Prim(Not)` after it; returns the branch
    /// op's index (its target is patched later). The caller emits the op that consumes the
    /// value the slow path pushes (`JumpIfFalse`, or `JumpIfFalseElsePop` in an `and`), which
    /// the fast path skips.
    fn compare_branch(&mut self, c: &Expr) -> LispResult<Option<usize>> {
        let p = c.pos;
        let (test, neg) = match &c.kind {
            ExprKind::Prim(PrimOp::Not, args)
                if matches!(args.as_slice(), [Expr { kind: ExprKind::Prim(op, a), .. }]
                    if op.is_comparison() && a.len() == 2) =>
            {
                (&args[0], true)
            }
            _ => (c, false),
        };
        let ExprKind::Prim(op, args) = &test.kind else {
            return Ok(None);
        };
        if !op.is_comparison() || args.len() != 2 {
            return Ok(None);
        }
        let q = test.pos;
        let b = if let Some((slot, imm)) = self.local_and_small_int(*op, args) {
            self.emit(Op::BranchLI(*op, neg, slot, imm, 0), q)
        } else if let Some((x, y)) = self.two_locals(*op, args) {
            self.emit(Op::BranchLL(*op, neg, x, y, 0), q)
        } else if let Some((slot, k)) = self.local_and_number(*op, args) {
            self.emit(Op::BranchLK(*op, neg, slot, k, 0), q)
        } else {
            let start = self.f().code.len();
            for a in args {
                self.expr(a, Tail::NO)?;
            }
            let b = self.emit(Op::BranchPrim(*op, neg, 0), q);
            self.fuse_compare(start, b)
        };
        if neg {
            self.emit(Op::Prim(PrimOp::Not), p);
        }
        Ok(Some(b))
    }

    /// If the operands of the `BranchPrim` at `b`, compiled from `start`, are one op each
    /// that [`CmpArg`] decodes, puts a `Compare` before them (they and the `BranchPrim` stay
    /// as its slow path); returns the `BranchPrim`'s index. The ops record no pc (they are
    /// not jumps, calls or loop heads), and a jump that already targets `start` now lands on
    /// the `Compare`, which is equivalent.
    fn fuse_compare(&mut self, start: usize, b: usize) -> usize {
        let f = self.f();
        let Op::BranchPrim(p, neg, _) = f.code[b] else {
            return b;
        };
        let (Some(a), Some(bb)) = (
            f.code.get(start).and_then(CmpArg::of),
            f.code.get(start + 1).and_then(CmpArg::of),
        ) else {
            return b;
        };
        let Ok(i) = u32::try_from(f.compares.len()) else {
            return b;
        };
        if b != start + 2 {
            return b;
        }
        f.compares.push(Compare {
            p,
            neg,
            a,
            b: bb,
            branch: to_u32(b + 1),
            target: 0,
        });
        let pos = f.pos[start];
        f.code.insert(start, Op::Compare(i));
        f.pos.insert(start, pos);
        b + 1
    }

    /// An `and`/`or` item that `ShortL` can test: `null?`, `pair?` or `not` of an unboxed local, or `not`
    /// of one of those; the primitive, the negation, the slot and the op's position.
    fn short_test(&mut self, item: &Expr) -> Option<(PrimOp, bool, u16, (u32, u32))> {
        let ExprKind::Prim(op, args) = &item.kind else {
            return None;
        };
        let (q, neg, slot, inner) = self.unary_local(*op, args)?;
        if !matches!(q, PrimOp::NullP | PrimOp::PairP | PrimOp::Not) {
            return None;
        }
        Some((q, neg, slot, if neg { inner } else { item.pos }))
    }

    fn short_circuit(
        &mut self,
        items: &[Expr],
        is_and: bool,
        tail: Tail,
        p: (u32, u32),
    ) -> LispResult<()> {
        if items.is_empty() {
            self.emit(if is_and { Op::True } else { Op::False }, p);
            return Ok(());
        }
        let mut jumps = Vec::new();
        // The `ShortL` ops, to patch to the boolean that ends the form.
        let mut fast = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let last = i + 1 == items.len();
            if let (false, Some((q, neg, slot, at))) = (last, self.short_test(item)) {
                fast.push(self.emit(Op::ShortL(q, neg, !is_and, slot, 0), at));
                if neg {
                    self.emit(Op::Prim(PrimOp::Not), item.pos);
                }
                let op = if is_and {
                    Op::JumpIfFalseElsePop(0)
                } else {
                    Op::JumpIfTrueElsePop(0)
                };
                jumps.push(self.emit(op, p));
                continue;
            }
            if is_and && !last {
                // A comparison (or `not` of one): its branch op jumps to the `#f` after the
                // last item when it is false (the value the form returns), else skips its slow
                // section (the primitive's own value, kept by `JumpIfFalseElsePop`).
                if let Some(b) = self.compare_branch(item)? {
                    fast.push(b);
                    jumps.push(self.emit(Op::JumpIfFalseElsePop(0), p));
                    continue;
                }
            }
            self.expr(item, if last { tail } else { Tail::NO })?;
            if !last {
                let op = if is_and {
                    Op::JumpIfFalseElsePop(0)
                } else {
                    Op::JumpIfTrueElsePop(0)
                };
                jumps.push(self.emit(op, p));
            }
        }
        if !fast.is_empty() {
            // After the last item: past the boolean that the fast paths jump to.
            let j = if tail.ret {
                self.emit_return(p)
            } else {
                self.emit(Op::Jump(0), p)
            };
            let at = self.here();
            self.emit(if is_and { Op::False } else { Op::True }, p);
            for b in fast {
                self.patch(b, at);
            }
            jumps.push(j);
        }
        let end = self.here();
        for j in jumps {
            self.patch(j, end);
        }
        Ok(())
    }

    /// `try`: a handler for `finally` around a handler for `catch` around the body. The
    /// `finally` code runs shielded on both paths (SPEC §6.5); a bare `catch` ends with
    /// `CheckCancel`, so it cannot end a cancellation.
    fn try_expr(
        &mut self,
        body: &Expr,
        catch: Option<&Catch>,
        finally: Option<&(VarId, Box<Expr>)>,
        p: (u32, u32),
    ) -> LispResult<()> {
        let fin_handler = finally.map(|_| self.emit(Op::PushHandler(0, HandlerKind::Finally), p));
        match catch {
            Some(c) => {
                let h = self.emit(Op::PushHandler(0, HandlerKind::Catch), p);
                self.expr(body, Tail::NO)?;
                self.emit(Op::PopHandler, p);
                let j = self.emit(Op::Jump(0), p);
                let catch_at = self.here();
                self.patch(h, catch_at);
                let saved = self.f().next_slot;
                self.bind_var(c.var, p);
                self.expr(&c.handler, Tail::NO)?;
                if !c.ends_cancel {
                    self.emit(Op::CheckCancel, p);
                }
                self.f().next_slot = saved;
                let end = self.here();
                self.patch(j, end);
            }
            None => self.expr(body, Tail::NO)?,
        }
        if let (Some(fh), Some((tmp, fin))) = (fin_handler, finally) {
            self.emit(Op::PopHandler, p);
            self.emit(Op::ShieldEnter, p);
            self.expr(fin, Tail::NO)?;
            self.emit(Op::Pop, p);
            self.emit(Op::ShieldExit(true), p);
            let j = self.emit(Op::Jump(0), p);
            let err_at = self.here();
            self.patch(fh, err_at);
            let saved = self.f().next_slot;
            self.bind_var(*tmp, p);
            self.emit(Op::ShieldEnter, p);
            self.expr(fin, Tail::NO)?;
            self.emit(Op::Pop, p);
            self.emit(Op::ShieldExit(false), p);
            self.get_var(*tmp, p);
            self.emit(Op::Raise, p);
            self.f().next_slot = saved;
            let end = self.here();
            self.patch(j, end);
        }
        Ok(())
    }

    /// Whether lambda `lam`, being assigned to `v`, gets `FnGen::self_local`: `v` is bound by
    /// `letrec` (or an internal `define`), assigned only here and never `set!` — so in
    /// `lam`'s code `v` always holds the running closure (its cell is filled once, right after
    /// the closure is made; escape continuations cannot re-enter) — `lam` has a fixed arity and
    /// no parameter in a cell (the jump goes to the body, after the parameters' `MakeCell`s),
    /// and its body has a tail call of `v` with its arity.
    fn is_self_loop(&self, v: VarId, lam: &Lambda) -> bool {
        self.is_self_var(v, lam)
            && !lam.params.iter().any(|p| self.boxed(*p))
            && has_tail_call(&lam.body, v, lam.params.len(), &self.loop_vars, 0)
    }

    /// After the init of `letrec` variable `v` (an internal `define`) was compiled from a
    /// lambda: when that lambda captures nothing it is one constant closure (`lambda`), and
    /// when `v` is assigned only there and never `set!`, `v` holds that closure from its init
    /// on. Every reference compiled after this point runs after the init (the inits and the
    /// body of a `letrec` run in their textual order, a lambda compiled later is made later,
    /// and a continuation cannot re-enter), so it loads the constant (`get_var`): no
    /// capture of the cell, no `FreeCell` borrow — and a sibling that only calls such
    /// functions may capture nothing itself and be a constant too.
    fn note_known(&mut self, v: VarId) {
        let info = &self.vars[v as usize];
        if !info.letrec || info.assigned || self.sets.get(&v) != Some(&1) {
            return;
        }
        let f = self.f();
        let c = match f.code.last() {
            Some(Op::Const(k)) => match f.consts.get(*k as usize) {
                Some(c @ Value::Closure(_)) => c.clone(),
                _ => return,
            },
            _ => return,
        };
        self.known.insert(v, c);
    }

    /// Whether `v` holds lambda `lam` wherever `lam`'s code runs (`FnGen::self_call`).
    fn is_self_var(&self, v: VarId, lam: &Lambda) -> bool {
        let info = &self.vars[v as usize];
        info.letrec && !info.assigned && self.sets.get(&v) == Some(&1) && lam.rest.is_none()
    }

    /// A tail call of the running function through `FnGen::self_local`: the arguments are
    /// stored into the parameters and control jumps back to the start of the body, as an
    /// inline loop's call does (a step counted, as the tail call did). What else the frame
    /// holds needs no reset: at a tail position nothing is left on the operand stack, and the
    /// other locals are each stored before they are read.
    fn self_jump(&mut self, args: &[Expr], p: (u32, u32)) -> LispResult<()> {
        match u16::try_from(args.len()) {
            Ok(_) => self.jump_with_args(args, 0, 0, p),
            Err(_) => {
                for a in args {
                    self.expr(a, Tail::NO)?;
                }
                for s in (0..args.len()).rev() {
                    self.emit(Op::SetLocal(to_u32(s)), p);
                }
                self.emit(Op::JumpLoop(0, 0, 0), p);
                Ok(())
            }
        }
    }

    /// Compiles `args` and a `JumpLoop(head, …)` (or `JumpLoopNum`/`Edge`) that stores them
    /// into the consecutive slots from `first`. An argument that is its own parameter's value
    /// (a `Local` of that slot's variable, never assigned) is left out when it is among the
    /// leading or trailing ones (`(ok? row (+ dist 1) (cdr placed))` stores two): reading a
    /// local has no effect, and no other argument can change that slot.
    fn jump_with_args(
        &mut self,
        args: &[Expr],
        head: u32,
        first: u16,
        p: (u32, u32),
    ) -> LispResult<()> {
        let same = |c: &mut Self, k: usize| match args[k].kind {
            ExprKind::Local(v) => {
                !c.vars[v as usize].assigned
                    && c.f().slots.get(&v) == Some(&(u32::from(first) + to_u32(k)))
            }
            _ => false,
        };
        let mut lead = 0;
        while lead < args.len() && same(self, lead) {
            lead += 1;
        }
        let mut end = args.len();
        while end > lead && same(self, end - 1) {
            end -= 1;
        }
        let start = self.f().code.len();
        for a in &args[lead..end] {
            self.expr(a, Tail::NO)?;
        }
        // Both fit: `first + args.len()` and `args.len()` fit a `u16` (the callers check).
        let first = first + u16::try_from(lead).unwrap_or(0);
        let n = u16::try_from(end - lead).unwrap_or(0);
        self.fuse_num_args(start, head, first, n);
        self.emit(Op::JumpLoop(head, first, n), p);
        Ok(())
    }

    fn lambda(&mut self, lam: &Lambda, p: (u32, u32)) -> LispResult<()> {
        let file = self.file.clone();
        let mut gen = FnGen::new(lam.name.clone(), file);
        if lam.rest.is_none() {
            gen.self_global = self.defining.map(|g| (g, lam.params.len()));
            gen.self_local = self
                .defining_local
                .filter(|v| self.is_self_loop(*v, lam))
                .map(|v| (v, lam.params.len()));
            gen.self_call = self
                .defining_local
                .filter(|v| self.is_self_var(*v, lam))
                .map(|v| (v, lam.params.len()));
        }
        self.defining = None;
        self.defining_local = None;
        self.fns.push(gen);
        let r = (|| -> LispResult<()> {
            let mut params = lam.params.clone();
            params.extend(lam.rest);
            for v in &params {
                let s = self.f().alloc(*v);
                if self.boxed(*v) {
                    self.emit(Op::MakeCell(s), p);
                }
            }
            if self.f().self_local.is_some() {
                // The head of the self tail calls' jumps (no step: the call counted one).
                self.emit(Op::Jump(1), p);
                let f = self.f();
                f.max_target = f.max_target.max(1);
            }
            self.expr(&lam.body, Tail::RET)?;
            self.emit_return(p);
            Ok(())
        })();
        let f = self.fns.pop().expect("lambda function");
        r?;
        let proto = Rc::new(f.finish(to_u32(lam.params.len()), lam.rest.is_some()));
        let parent = self.f();
        parent.protos.push(proto.clone());
        if proto.captures.is_empty() {
            // Nothing to capture: every evaluation of this lambda is the same closure, made
            // once here and loaded as a constant (a closure holds only its code and captures,
            // and R7RS leaves `eqv?` of two evaluations unspecified). No 40-byte allocation
            // per evaluation, e.g. per `(async (lambda () …))` task (SPEC §9).
            let closure = Closure {
                proto,
                free: Box::new([]),
            };
            self.constant(Value::Closure(Rc::new(closure)), p);
            return Ok(());
        }
        let idx = to_u32(parent.protos.len() - 1);
        self.emit(Op::Closure(idx), p);
        Ok(())
    }
}

/// Whether `e` has, in a tail position (of the function whose body it is, or of an inline
/// loop in one), a call of local `v` with `argc` arguments. Nested lambdas are not looked
/// into; a true answer only costs a `Jump` if no such call compiles to a jump.
fn has_tail_call(e: &Expr, v: VarId, argc: usize, loops: &HashSet<VarId>, depth: usize) -> bool {
    if depth > COMPILE_LIMIT {
        return false;
    }
    let d = depth + 1;
    match &e.kind {
        ExprKind::Call(f, args) => {
            matches!(f.kind, ExprKind::Local(w) if w == v && args.len() == argc)
        }
        ExprKind::If(_, t, f) => {
            has_tail_call(t, v, argc, loops, d) || has_tail_call(f, v, argc, loops, d)
        }
        ExprKind::Seq(items) | ExprKind::And(items) | ExprKind::Or(items) => items
            .last()
            .is_some_and(|x| has_tail_call(x, v, argc, loops, d)),
        ExprKind::Let(_, body) => has_tail_call(body, v, argc, loops, d),
        ExprKind::Letrec(vars, body) => match loop_shape(vars, body) {
            Some((lv, lam, _)) if loops.contains(&lv) => {
                has_tail_call(&lam.body, v, argc, loops, d)
            }
            _ => has_tail_call(body, v, argc, loops, d),
        },
        _ => false,
    }
}

/// `(letrec ((lv (lambda params body))) (lv inits…))` with fixed arity and as many inits as
/// parameters: what a named `let`, a `do` and a body with one local function called once
/// expand to.
fn loop_shape<'e>(vars: &[VarId], body: &'e Expr) -> Option<(VarId, &'e Lambda, &'e [Expr])> {
    let [lv] = vars else { return None };
    let ExprKind::Seq(items) = &body.kind else {
        return None;
    };
    let [set, call] = items.as_slice() else {
        return None;
    };
    let (ExprKind::SetLocal(v, value), ExprKind::Call(f, args)) = (&set.kind, &call.kind) else {
        return None;
    };
    let (ExprKind::Lambda(lam), ExprKind::Local(w)) = (&value.kind, &f.kind) else {
        return None;
    };
    (v == lv && w == lv && lam.rest.is_none() && args.len() == lam.params.len()).then_some((
        *lv,
        &**lam,
        args.as_slice(),
    ))
}

/// The loop names (see [`loop_shape`]) that are only ever called, with the right number of
/// arguments, in a tail position of their own body (or of a loop nested in it in tail
/// position), and never referenced otherwise: not passed, stored, `set!`, captured by a lambda
/// or called from elsewhere. Those compile to jumps; every other loop stays a closure. Also
/// counts the `SetLocal`s of each variable.
fn find_loops(e: &Expr) -> (HashSet<VarId>, HashMap<VarId, usize>) {
    let mut scan = LoopScan {
        cands: HashMap::new(),
        sets: HashMap::new(),
        bad: HashSet::new(),
        stack: Vec::new(),
        depth: 0,
        gave_up: false,
        guard: StackGuard::new(),
    };
    scan.walk(e, usize::MAX);
    if scan.gave_up {
        // Too deep to analyse (the compiler reports it): no loop is inlined.
        return (HashSet::new(), HashMap::new());
    }
    let loops = scan
        .cands
        .into_keys()
        .filter(|v| !scan.bad.contains(v))
        .collect();
    (loops, scan.sets)
}

struct LoopScan {
    /// Candidate loop names and their parameter counts.
    cands: HashMap<VarId, usize>,
    /// Candidates referenced in a way a jump cannot implement.
    bad: HashSet<VarId>,
    /// How many `SetLocal`s assign each variable.
    sets: HashMap<VarId, usize>,
    /// The candidates whose bodies enclose the expression being walked, outermost first.
    stack: Vec<VarId>,
    depth: usize,
    gave_up: bool,
    guard: StackGuard,
}

impl LoopScan {
    /// Walks `e`, which is in a tail position of the bodies of `stack[tail..]` (as
    /// `Tail::loops`; `usize::MAX` for none).
    fn walk(&mut self, e: &Expr, tail: usize) {
        if self.gave_up {
            return;
        }
        self.depth += 1;
        if self.depth > COMPILE_LIMIT || !self.guard.ok() {
            self.gave_up = true;
        } else {
            self.walk_inner(e, tail);
        }
        self.depth -= 1;
    }

    fn walk_inner(&mut self, e: &Expr, tail: usize) {
        const NO: usize = usize::MAX;
        match &e.kind {
            ExprKind::Const(_) | ExprKind::Global(_) => {}
            ExprKind::Local(v) => {
                self.bad.insert(*v);
            }
            ExprKind::SetLocal(v, x) => {
                self.bad.insert(*v);
                *self.sets.entry(*v).or_insert(0) += 1;
                self.walk(x, NO);
            }
            ExprKind::SetGlobal(_, x)
            | ExprKind::DefGlobal(_, x, _)
            | ExprKind::DefMacro(_, x, _) => self.walk(x, NO),
            ExprKind::If(c, t, f) => {
                self.walk(c, NO);
                self.walk(t, tail);
                self.walk(f, tail);
            }
            ExprKind::Lambda(lam) => self.walk(&lam.body, NO),
            ExprKind::Call(f, args) => {
                match f.kind {
                    ExprKind::Local(v) if self.cands.contains_key(&v) => {
                        let ok = self
                            .stack
                            .iter()
                            .rposition(|&l| l == v)
                            .is_some_and(|i| i >= tail && args.len() == self.cands[&v]);
                        if !ok {
                            self.bad.insert(v);
                        }
                    }
                    _ => self.walk(f, NO),
                }
                for a in args {
                    self.walk(a, NO);
                }
            }
            ExprKind::Prim(_, args) => {
                for a in args {
                    self.walk(a, NO);
                }
            }
            ExprKind::Seq(items) | ExprKind::And(items) | ExprKind::Or(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.walk(item, if i + 1 == items.len() { tail } else { NO });
                }
            }
            ExprKind::Let(bindings, body) => {
                for (_, init) in bindings {
                    self.walk(init, NO);
                }
                self.walk(body, tail);
            }
            ExprKind::Letrec(vars, body) => match loop_shape(vars, body) {
                Some((lv, lam, inits)) => {
                    self.cands.insert(lv, lam.params.len());
                    for init in inits {
                        self.walk(init, NO);
                    }
                    let idx = self.stack.len();
                    self.stack.push(lv);
                    self.walk(&lam.body, tail.min(idx));
                    self.stack.pop();
                }
                None => self.walk(body, tail),
            },
            ExprKind::Try {
                body,
                catch,
                finally,
            } => {
                self.walk(body, NO);
                if let Some(c) = catch {
                    self.walk(&c.handler, NO);
                }
                if let Some((_, fin)) = finally {
                    self.walk(fin, NO);
                }
            }
            ExprKind::Shield(body) => self.walk(body, NO),
        }
    }
}

#[cfg(test)]
mod tests;
