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
//! * Recursion is bounded by [`COMPILE_LIMIT`]; deeper code is a clean `:syntax` error.

use std::collections::HashMap;
use std::rc::Rc;

use crate::bytecode::{Capture, HandlerKind, Op, Proto};
use crate::error::{LispError, LispResult, Span};
use crate::ir::{Catch, Expr, ExprKind, Lambda, VarId, VarInfo};
use crate::stack_guard::StackGuard;
use crate::value::Value;

/// Deepest expression nesting the compiler accepts.
pub(crate) const COMPILE_LIMIT: usize = 4000;

/// Compiles a top-level expression into a zero-argument procedure named `<top>`.
pub(crate) fn compile_toplevel(
    expr: &Expr,
    vars: &[VarInfo],
    file: Rc<str>,
) -> LispResult<Rc<Proto>> {
    let mut c = Compiler {
        vars,
        fns: vec![FnGen::new("<top>".into(), file.clone())],
        file,
        depth: 0,
        guard: StackGuard::new(),
    };
    // Not a tail position: the `<top>` frame stays in stack traces.
    c.expr(expr, false)?;
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
        }
    }

    fn alloc(&mut self, v: VarId) -> u32 {
        let s = self.next_slot;
        self.next_slot += 1;
        self.max_slot = self.max_slot.max(self.next_slot);
        self.slots.insert(v, s);
        s
    }

    fn finish(self, nparams: u32, rest: bool) -> Proto {
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
        }
    }
}

enum Access {
    Local(u32),
    Free(u32),
}

struct Compiler<'a> {
    vars: &'a [VarInfo],
    fns: Vec<FnGen>,
    file: Rc<str>,
    depth: usize,
    guard: StackGuard,
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
            Op::BranchLI(p, s, k, _) => Op::BranchLI(p, s, k, target),
            Op::BranchPrim(p, _) => Op::BranchPrim(p, target),
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

    fn expr(&mut self, e: &Expr, tail: bool) -> LispResult<()> {
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

    fn expr_inner(&mut self, e: &Expr, tail: bool) -> LispResult<()> {
        let p = e.pos;
        match &e.kind {
            ExprKind::Const(v) => self.constant(v.clone(), p),
            ExprKind::Local(v) => self.get_var(*v, p),
            ExprKind::Global(slot) => {
                self.emit(Op::Global(*slot), p);
            }
            ExprKind::SetLocal(v, value) => {
                self.expr(value, false)?;
                self.set_var(*v, p);
                self.emit(Op::Nil, p);
            }
            ExprKind::SetGlobal(slot, value) => {
                self.expr(value, false)?;
                self.emit(Op::SetGlobal(*slot), p);
                self.emit(Op::Nil, p);
            }
            ExprKind::DefGlobal(slot, value, name) => {
                self.expr(value, false)?;
                self.emit(Op::DefGlobal(*slot), p);
                self.constant(Value::Symbol(*name), p);
            }
            ExprKind::DefMacro(slot, value, name) => {
                self.expr(value, false)?;
                self.emit(Op::DefMacro(*slot), p);
                self.constant(Value::Symbol(*name), p);
            }
            ExprKind::If(c, t, f) => {
                let jumps = self.condition(c)?;
                self.expr(t, tail)?;
                // In tail position the next instruction would be `Return`: return directly.
                let j = if tail {
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
                if let ExprKind::Global(slot) = f.kind {
                    // The callee is fetched at the call, after the arguments (module docs).
                    for a in args {
                        self.expr(a, false)?;
                    }
                    let op = if tail {
                        Op::TailCallGlobal(slot, n)
                    } else {
                        Op::CallGlobal(slot, n)
                    };
                    let at = to_u32(self.emit(op, p));
                    self.f().callee_pos.push((at, f.pos));
                    return Ok(());
                }
                self.expr(f, false)?;
                for a in args {
                    self.expr(a, false)?;
                }
                self.emit(if tail { Op::TailCall(n) } else { Op::Call(n) }, p);
            }
            ExprKind::Prim(op, args) => {
                if let Some((slot, imm)) = self.local_and_small_int(*op, args) {
                    self.emit(Op::PrimLI(*op, slot, imm), p);
                    return Ok(());
                }
                for a in args {
                    self.expr(a, false)?;
                }
                self.emit(Op::Prim(*op), p);
            }
            ExprKind::Seq(items) => {
                if items.is_empty() {
                    self.emit(Op::Nil, p);
                }
                for (i, item) in items.iter().enumerate() {
                    let last = i + 1 == items.len();
                    self.expr(item, tail && last)?;
                    if !last {
                        self.emit(Op::Pop, p);
                    }
                }
            }
            ExprKind::Let(bindings, body) => {
                for (_, init) in bindings {
                    self.expr(init, false)?;
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
                self.expr(body, false)?;
                self.emit(Op::ShieldExit(true), p);
            }
        }
        Ok(())
    }

    /// `(OP local small-int)` with OP numeric and the local an unboxed slot of this frame.
    fn local_and_small_int(
        &mut self,
        op: crate::bytecode::PrimOp,
        args: &[Expr],
    ) -> Option<(u16, i16)> {
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

    /// Compiles an `if` test; returns the jumps to patch to the else branch.
    fn condition(&mut self, c: &Expr) -> LispResult<Vec<usize>> {
        let p = c.pos;
        if let ExprKind::Prim(op, args) = &c.kind {
            if op.is_comparison() {
                if let Some((slot, imm)) = self.local_and_small_int(*op, args) {
                    let b = self.emit(Op::BranchLI(*op, slot, imm, 0), p);
                    let j = self.emit(Op::JumpIfFalse(0), p);
                    return Ok(vec![b, j]);
                }
                for a in args {
                    self.expr(a, false)?;
                }
                let b = self.emit(Op::BranchPrim(*op, 0), p);
                let j = self.emit(Op::JumpIfFalse(0), p);
                return Ok(vec![b, j]);
            }
        }
        self.expr(c, false)?;
        Ok(vec![self.emit(Op::JumpIfFalse(0), p)])
    }

    fn short_circuit(
        &mut self,
        items: &[Expr],
        is_and: bool,
        tail: bool,
        p: (u32, u32),
    ) -> LispResult<()> {
        if items.is_empty() {
            self.emit(if is_and { Op::True } else { Op::False }, p);
            return Ok(());
        }
        let mut jumps = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let last = i + 1 == items.len();
            self.expr(item, tail && last)?;
            if !last {
                let op = if is_and {
                    Op::JumpIfFalseElsePop(0)
                } else {
                    Op::JumpIfTrueElsePop(0)
                };
                jumps.push(self.emit(op, p));
            }
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
                self.expr(body, false)?;
                self.emit(Op::PopHandler, p);
                let j = self.emit(Op::Jump(0), p);
                let catch_at = self.here();
                self.patch(h, catch_at);
                let saved = self.f().next_slot;
                self.bind_var(c.var, p);
                self.expr(&c.handler, false)?;
                if !c.ends_cancel {
                    self.emit(Op::CheckCancel, p);
                }
                self.f().next_slot = saved;
                let end = self.here();
                self.patch(j, end);
            }
            None => self.expr(body, false)?,
        }
        if let (Some(fh), Some((tmp, fin))) = (fin_handler, finally) {
            self.emit(Op::PopHandler, p);
            self.emit(Op::ShieldEnter, p);
            self.expr(fin, false)?;
            self.emit(Op::Pop, p);
            self.emit(Op::ShieldExit(true), p);
            let j = self.emit(Op::Jump(0), p);
            let err_at = self.here();
            self.patch(fh, err_at);
            let saved = self.f().next_slot;
            self.bind_var(*tmp, p);
            self.emit(Op::ShieldEnter, p);
            self.expr(fin, false)?;
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

    fn lambda(&mut self, lam: &Lambda, p: (u32, u32)) -> LispResult<()> {
        let file = self.file.clone();
        self.fns.push(FnGen::new(lam.name.clone(), file));
        let r = (|| -> LispResult<()> {
            let mut params = lam.params.clone();
            params.extend(lam.rest);
            for v in &params {
                let s = self.f().alloc(*v);
                if self.boxed(*v) {
                    self.emit(Op::MakeCell(s), p);
                }
            }
            self.expr(&lam.body, true)?;
            self.emit_return(p);
            Ok(())
        })();
        let f = self.fns.pop().expect("lambda function");
        r?;
        let proto = f.finish(to_u32(lam.params.len()), lam.rest.is_some());
        let parent = self.f();
        parent.protos.push(Rc::new(proto));
        let idx = to_u32(parent.protos.len() - 1);
        self.emit(Op::Closure(idx), p);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Runtime, Value};

    fn eval(rt: &Runtime, src: &str) -> Value {
        rt.eval_sync(src, "test").expect("evaluates")
    }

    #[test]
    fn return_local_fusion_respects_jump_targets() {
        let rt = Runtime::new();
        // `x` then `Return` fuse; the `try` case ends in `Local(e)` at a jump target and must
        // keep its `Return`.
        eval(
            &rt,
            "(define (id x) x)
             (define (t x) (try x (catch e e)))
             (define (pick a b) (if a b a))
             (define (loop n acc) (if (= n 0) acc (loop (- n 1) (+ acc n))))",
        );
        assert_eq!(eval(&rt, "(id 7)"), Value::Int(7));
        assert_eq!(eval(&rt, "(t 5)"), Value::Int(5));
        assert_eq!(eval(&rt, "(pick #f 3)"), Value::Bool(false));
        assert_eq!(eval(&rt, "(pick 1 \"s\")"), Value::string("s"));
        assert_eq!(eval(&rt, "(loop 100000 0)"), Value::Int(5_000_050_000));
    }

    #[test]
    fn fast_paths_keep_overflow_checks_and_redefinition() {
        let rt = Runtime::new();
        eval(&rt, "(define (dec n) (- n 1)) (define (add a b) (+ a b))");
        let err = rt
            .eval_sync("(dec -9223372036854775808)", "test")
            .expect_err("overflows");
        assert_eq!(*err.kind(), crate::ErrorKind::Overflow);
        let err = rt
            .eval_sync("(add 9223372036854775807 1)", "test")
            .expect_err("overflows");
        assert_eq!(*err.kind(), crate::ErrorKind::Overflow);
        assert_eq!(eval(&rt, "(add 1.5 2)"), Value::Float(3.5));
        // Redefining a primitive sends the fused ops to the slow path.
        eval(&rt, "(define (- a b) (* a b))");
        assert_eq!(eval(&rt, "(dec 6)"), Value::Int(6));
    }

    #[test]
    fn global_calls_fetch_the_callee_after_the_arguments() {
        let rt = Runtime::new();
        // An unbound callee: the operator's span, as for any unbound variable.
        let err = rt
            .eval_sync("(define x 1)\n(+ x (nope 1 2))", "t.lisp")
            .expect_err("unbound");
        assert_eq!(*err.kind(), crate::ErrorKind::Unbound);
        let report = err.to_string();
        assert!(report.contains("unbound variable: nope"), "{report}");
        assert!(report.contains("at <top> (t.lisp:2:7)"), "{report}");
        let err = rt
            .eval_sync("(define (f) (nope))\n(f)", "t.lisp")
            .expect_err("unbound in tail position");
        assert!(err.to_string().contains("at f (t.lisp:1:14)"), "{err}");
        // The arguments are evaluated first: their error wins.
        let err = rt
            .eval_sync("(nope (car 1))", "t.lisp")
            .expect_err("car fails");
        assert_eq!(*err.kind(), crate::ErrorKind::TypeError);
        // Natives, rest parameters, redefinition and tail calls through globals.
        eval(
            &rt,
            "(define (r . xs) xs)
             (define (g n) (if (= n 0) (list 1 2) (g (- n 1))))
             (define (h n acc) (if (= n 0) acc (h (- n 1) (+ acc 1))))
             (define (k n) (h n 0))",
        );
        assert_eq!(eval(&rt, "(length (g 3))"), Value::Int(2));
        assert_eq!(eval(&rt, "(r)"), Value::Nil);
        assert_eq!(eval(&rt, "(length (r 1 2 3))"), Value::Int(3));
        assert_eq!(eval(&rt, "(+ 1 (k 100000))"), Value::Int(100_001));
        eval(&rt, "(define (h n acc) -1)");
        assert_eq!(eval(&rt, "(k 5)"), Value::Int(-1));
        let err = rt.eval_sync("(k 1 2)", "t.lisp").expect_err("arity");
        assert_eq!(*err.kind(), crate::ErrorKind::ArityError);
    }

    #[test]
    fn prim_return_falls_back_for_non_integers_and_redefinition() {
        let rt = Runtime::new();
        eval(
            &rt,
            "(define (add a b) (+ a b)) (define (lt a b) (< a b)) (define (pair a b) (cons a b))",
        );
        assert_eq!(eval(&rt, "(add 2 3)"), Value::Int(5));
        assert_eq!(eval(&rt, "(add 2 0.5)"), Value::Float(2.5));
        assert_eq!(eval(&rt, "(lt 2 3)"), Value::Bool(true));
        assert_eq!(eval(&rt, "(car (pair 1 2))"), Value::Int(1));
        let err = rt
            .eval_sync("(add 9223372036854775807 1)", "t.lisp")
            .expect_err("overflows");
        assert_eq!(*err.kind(), crate::ErrorKind::Overflow);
        eval(&rt, "(define (+ a b) (* a b))");
        assert_eq!(eval(&rt, "(add 2 3)"), Value::Int(6));
    }
}
