//! The compiler's tests: the ops it emits and the behaviour they keep.

use std::rc::Rc;

use super::compile_toplevel;
use crate::bytecode::{Op, PrimOp, Proto};
use crate::{Limits, Runtime, Value};

/// Every op of `src`'s forms, nested functions included.
fn ops_of(src: &str) -> Vec<Op> {
    fn collect(p: &Proto, out: &mut Vec<Op>) {
        out.extend(&p.code);
        for q in &p.protos {
            collect(q, out);
        }
    }
    let mut st = crate::state::State::new(Limits::default(), Box::new(std::io::sink()), 0);
    let mut out = Vec::new();
    for form in crate::reader::read_all(src, "t").expect("reads") {
        let (expr, vars) = crate::expander::expand_toplevel(&mut st, &form).expect("expands");
        let proto = compile_toplevel(&expr, &vars, Rc::from("t")).expect("compiles");
        collect(&proto, &mut out);
    }
    out
}

fn jumps(src: &str) -> usize {
    ops_of(src)
        .iter()
        .filter(|op| matches!(op, Op::JumpLoop(..)))
        .count()
}

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

#[test]
fn loops_compile_to_jumps_and_keep_their_values() {
    let rt = Runtime::new();
    let cases = [
        // A named let in tail position, a do, a local function called once.
        (
            "(define (sum n) (let loop ((i n) (s 0)) (if (< i 0) s (loop (- i 1) (+ i s))))) (sum 100)",
            "5050",
            1,
        ),
        (
            "(do ((i 0 (+ i 1)) (acc '() (cons i acc))) ((= i 5) acc))",
            "(4 3 2 1 0)",
            1,
        ),
        (
            "(define (f n) (define (go i acc) (if (= i 0) acc (go (- i 1) (* acc 2)))) (go n 1)) (f 10)",
            "1024",
            1,
        ),
        // Not in tail position: the loop's value goes on.
        (
            "(+ 1 (let loop ((i 0)) (if (< i 10) (loop (+ i 1)) i)))",
            "11",
            1,
        ),
        // Each iteration's variables are fresh bindings for the closures made in it.
        (
            "(map (lambda (t) (t)) (let loop ((i 0) (acc '())) (if (< i 3) (loop (+ i 1) (cons (lambda () i) acc)) acc)))",
            "(2 1 0)",
            1,
        ),
        (
            "(let loop ((i 0) (acc '())) (if (< i 3) (loop (+ i 1) (cons (lambda () (set! i (+ i 10)) i) acc)) (map (lambda (t) (t)) acc)))",
            "(12 11 10)",
            1,
        ),
        // `set!` of a loop variable (not of the loop's name) still jumps.
        (
            "(let loop ((i 0)) (if (< i 3) (begin (set! i (+ i 1)) (loop i)) i))",
            "3",
            1,
        ),
        // Nested loops; the inner one jumps back to the outer one's head.
        (
            "(let outer ((i 0) (acc 0)) (if (< i 4) (let inner ((j 0) (acc acc)) (if (< j 3) (inner (+ j 1) (+ acc 1)) (outer (+ i 1) acc))) acc))",
            "12",
            2,
        ),
        // Tail positions through cond, and, when.
        (
            "(let loop ((i 0)) (cond ((= i 5) 'done) ((odd? i) (loop (+ i 1))) (else (and #t (loop (+ i 1))))))",
            "done",
            2,
        ),
        (
            "(let lp ((xs '(1 2 3)) (n 0)) (if (null? xs) n (lp (cdr xs) (+ n (car xs)))))",
            "6",
            1,
        ),
    ];
    for (src, want, n) in cases {
        let got = crate::printer::write_string(&eval(&rt, src));
        assert_eq!(got, want, "{src}");
        assert_eq!(jumps(src), n, "{src}");
    }
}

#[test]
fn loops_whose_name_escapes_stay_closures_with_the_same_results() {
    let rt = Runtime::new();
    let cases = [
        // Returned.
        (
            "(procedure? (let loop ((i 0)) (if (< i 3) (loop (+ i 1)) loop)))",
            "#t",
        ),
        // Called in a non-tail position (real recursion).
        (
            "(let loop ((i 0)) (if (< i 3) (+ 1 (loop (+ i 1))) 0))",
            "3",
        ),
        // Called inside a `try` body (not a tail position).
        (
            "(let loop ((i 0)) (if (< i 3) (try (loop (+ i 1)) (catch e 0)) i))",
            "3",
        ),
        // Captured by a lambda.
        (
            "(let loop ((i 0)) (if (< i 3) ((lambda () (loop (+ i 1)))) i))",
            "3",
        ),
        // The name is assigned.
        (
            "(let loop ((i 0)) (if (< i 3) (begin (set! loop (lambda (j) 'replaced)) (loop 9)) i))",
            "replaced",
        ),
        // Wrong arity: the closure reports it.
    ];
    for (src, want) in cases {
        let got = crate::printer::write_string(&eval(&rt, src));
        assert_eq!(got, want, "{src}");
        assert_eq!(jumps(src), 0, "{src}");
    }
    // A local function called twice stays a closure; its own self tail call is the one jump
    // (to the start of its body, not to a loop head: `FnGen::self_local`).
    let src =
        "(define (f n) (define (go i) (if (= i 0) 'z (go (- i 1)))) (list (go n) (go n))) (f 2)";
    assert_eq!(crate::printer::write_string(&eval(&rt, src)), "(z z)");
    assert!(
        !ops_of(src).iter().any(|op| matches!(op, Op::Loop)),
        "{src}"
    );
    assert_eq!(jumps(src), 1, "{src}");
    let src = "(define (f x) (let loop ((i 0)) (if (< i 3) (loop (+ i 1) 2) x)))\n(f 1)";
    assert_eq!(jumps(src), 0);
    let err = rt.eval_sync(src, "t.lisp").expect_err("arity");
    assert_eq!(*err.kind(), crate::ErrorKind::ArityError);
    assert!(err.to_string().contains("at loop (t.lisp:1:45)"), "{err}");
}

#[test]
fn float_and_mixed_fast_paths_give_the_generic_results() {
    let rt = Runtime::new();
    eval(
        &rt,
        "(define (add a b) (+ a b)) (define (sub a b) (- a b)) (define (mul a b) (* a b))
         (define (lt a b) (< a b)) (define (ge a b) (>= a b)) (define (eq a b) (= a b))
         (define (dec x) (- x 1)) (define (small? x) (if (< x 2) 'yes 'no))
         (define (lt2 a b) (if (< a b) 'yes 'no))
         (define (lk x) (if (< x 2.5) (- x 0.5) (* x 1.5)))
         (define (nlk x) (if (not (>= x 100000)) 'small 'big))
         (define (big x) (+ x 100000))",
    );
    let cases = [
        ("(add 1.5 2)", "3.5"),
        ("(add 2 1.5)", "3.5"),
        ("(add 0.1 0.2)", "0.30000000000000004"),
        ("(sub 1 0.5)", "0.5"),
        ("(mul 3 0.5)", "1.5"),
        ("(+ 1.5 (mul 2.0 2.0))", "5.5"),
        ("(lt 1 1.5)", "#t"),
        ("(lt 1.5 1)", "#f"),
        ("(ge 2.0 2)", "#t"),
        ("(eq 2.0 2)", "#t"),
        ("(eq (/ 0.0 0.0) (/ 0.0 0.0))", "#f"),
        ("(lt (/ 0.0 0.0) 1.0)", "#f"),
        ("(dec 2.5)", "1.5"),
        ("(small? 1.5)", "yes"),
        ("(small? 2.0)", "no"),
        ("(lt2 1 1.5)", "yes"),
        ("(lt2 2.5 1.5)", "no"),
        ("(lk 1)", "0.5"),
        ("(lk 2.0)", "1.5"),
        ("(lk 4)", "6.0"),
        ("(nlk 5)", "small"),
        ("(nlk 100000.0)", "big"),
        ("(big 1)", "100001"),
        ("(big 0.5)", "100000.5"),
        // Integers stay exact; overflow still errors.
        ("(add 1 2)", "3"),
    ];
    for (src, want) in cases {
        assert_eq!(crate::printer::write_string(&eval(&rt, src)), want, "{src}");
    }
    let err = rt
        .eval_sync("(add 9223372036854775807 1)", "t")
        .expect_err("overflows");
    assert_eq!(*err.kind(), crate::ErrorKind::Overflow);
    let err = rt
        .eval_sync("(big 9223372036854775807)", "t")
        .expect_err("overflows");
    assert_eq!(*err.kind(), crate::ErrorKind::Overflow);
    let err = rt.eval_sync("(lk 'a)", "t").expect_err("type");
    assert_eq!(*err.kind(), crate::ErrorKind::TypeError);
    let err = rt.eval_sync("(add 1.5 \"a\")", "t").expect_err("type");
    assert_eq!(*err.kind(), crate::ErrorKind::TypeError);
    let err = rt.eval_sync("(small? 'x)", "t").expect_err("type");
    assert_eq!(*err.kind(), crate::ErrorKind::TypeError);
}

/// The error report of `src` run as file `t.lisp`.
fn report(rt: &Runtime, src: &str) -> String {
    rt.eval_sync(src, "t.lisp").expect_err("fails").to_string()
}

#[test]
fn inline_loops_keep_error_positions_and_stack_traces() {
    // Each report is the one the closure version of the loop gave (checked against the
    // VM before loops were inlined): a loop entered in a tail position replaces its
    // caller's line; a call in a loop's tail position replaces the loop's line.
    let cases = [
        (
            "(define (f x) (let loop ((i 0)) (if (< i 3) (loop (+ i 1)) (+ x \"a\"))))\n(f 1)",
            vec!["at loop (t.lisp:1:60)", "at <top> (t.lisp:2:1)"],
            3,
        ),
        (
            "(define (f x) (+ 1 (let loop ((i 0)) (if (< i 3) (loop (+ i 1)) (+ x \"a\")))))\n(f 1)",
            vec!["at loop (t.lisp:1:65)", "at f (t.lisp:1:20)", "at <top> (t.lisp:2:1)"],
            4,
        ),
        (
            "(define (g y) (car y))\n(define (f x) (+ 1 (let loop ((i 0)) (if (< i 3) (loop (+ i 1)) (g x)))))\n(f 1)",
            vec!["at g (t.lisp:1:15)", "at f (t.lisp:2:20)", "at <top> (t.lisp:3:1)"],
            4,
        ),
        (
            "(define (g y) (car y))\n(define (f x) (+ 1 (let outer ((i 0)) (if (< i 3) (let inner ((j 0)) (if (< j 2) (inner (+ j 1)) (outer (+ i 1)))) (let inner2 ((k 0)) (if (< k 1) (inner2 (+ k 1)) (g x)))))))\n(f 1)",
            vec!["at g (t.lisp:1:15)", "at f (t.lisp:2:20)", "at <top> (t.lisp:3:1)"],
            4,
        ),
        (
            "(define (g y) (car y))\n(define (f x) (let loop ((i 0)) (if (< i 3) (loop (+ i 1)) (+ 1 (g x)))))\n(f 1)",
            vec!["at g (t.lisp:1:15)", "at loop (t.lisp:2:65)", "at <top> (t.lisp:3:1)"],
            4,
        ),
        (
            "(define (f x) (do ((i 0 (+ i 1))) ((= i 3) (car x)) (display i)))\n(display (f 1))",
            vec!["at do (t.lisp:1:44)", "at <top> (t.lisp:2:10)"],
            3,
        ),
        (
            "(define (f x) (+ 1 (let loop ((i 0)) (if (< i 3) (loop (+ i 1)) (nope x)))))\n(f 1)",
            vec!["at loop (t.lisp:1:66)", "at f (t.lisp:1:20)", "at <top> (t.lisp:2:1)"],
            4,
        ),
        (
            "(define (f x) (+ 1 (let outer ((i 0)) (+ 2 (let inner ((j 0)) (if (< j 2) (inner (+ j 1)) (car x)))))))\n(f 1)",
            vec![
                "at inner (t.lisp:1:91)",
                "at outer (t.lisp:1:44)",
                "at f (t.lisp:1:20)",
                "at <top> (t.lisp:2:1)",
            ],
            5,
        ),
        (
            "(define (f x) (+ 1 (let loop ((i 0)) (if (< i 3) (loop (+ i 1)) (car x 2)))))\n(f 1)",
            vec!["at loop (t.lisp:1:65)", "at f (t.lisp:1:20)", "at <top> (t.lisp:2:1)"],
            4,
        ),
    ];
    for (src, lines, n) in cases {
        assert!(jumps(src) > 0, "{src}");
        let rt = Runtime::builder()
            .output(crate::OutputBuffer::new())
            .build();
        let r = report(&rt, src);
        let got: Vec<&str> = r.lines().skip(1).map(str::trim).collect();
        assert_eq!(got, lines, "{src}\n{r}");
        assert_eq!(r.lines().count(), n, "{r}");
    }
}

#[test]
fn an_inline_loop_counts_a_step_per_iteration_and_hits_max_steps() {
    let rt = crate::limits::step_limited(10_000);
    let count = "(define (count n) (let loop ((i 0)) (if (< i n) (loop (+ i 1)) i)))";
    assert!(jumps(count) > 0);
    eval(&rt, count);
    // One step per iteration, as for the closure: 9,000 fit, 11,000 do not.
    assert_eq!(eval(&rt, "(count 9000)"), Value::Int(9000));
    let err = rt.eval_sync("(count 11000)", "t").expect_err("limit");
    assert_eq!(*err.kind(), crate::ErrorKind::Limit);
    // An endless loop stops at the limit (the step is counted on the backward jump).
    let forever = "(let loop ((i 0)) (loop (+ i 1)))";
    assert!(jumps(forever) > 0);
    let err = rt.eval_sync(forever, "t").expect_err("limit");
    assert_eq!(*err.kind(), crate::ErrorKind::Limit);
    assert!(err.message().contains("max_steps (10000)"), "{err}");
    let err = rt
        .eval_sync("(do ((i 0 (+ i 1))) (#f))", "t")
        .expect_err("limit");
    assert_eq!(*err.kind(), crate::ErrorKind::Limit);
    // The same with a back edge that computes its numbers and runs the exit test in one op
    // (`Edge`).
    let sum = "(define (sum n) (let loop ((i n) (s 0)) (if (= i 0) s (loop (- i 1) (+ s i)))))";
    assert!(ops_of(sum).iter().any(|op| matches!(op, Op::Edge(_))));
    eval(&rt, sum);
    assert_eq!(eval(&rt, "(sum 8999)"), Value::Int(8999 * 9000 / 2));
    let err = rt.eval_sync("(sum 11000)", "t").expect_err("limit");
    assert_eq!(*err.kind(), crate::ErrorKind::Limit);
    // Arguments that are not one number op each keep the plain jump.
    let mixed = "(let loop ((i 3) (l '())) (if (= i 0) l (loop (- i 1) (cons i l))))";
    assert!(!ops_of(mixed)
        .iter()
        .any(|op| matches!(op, Op::JumpLoopNum(..) | Op::Edge(_))));
    assert_eq!(eval(&rt, mixed), eval(&rt, "'(1 2 3)"));
}

/// The fused back edges of every function in `src`.
fn edges_of(src: &str) -> Vec<crate::bytecode::Edge> {
    fn collect(p: &Proto, out: &mut Vec<crate::bytecode::Edge>) {
        out.extend(p.edges.iter().cloned());
        for q in &p.protos {
            collect(q, out);
        }
    }
    let mut st = crate::state::State::new(Limits::default(), Box::new(std::io::sink()), 0);
    let mut out = Vec::new();
    for form in crate::reader::read_all(src, "t").expect("reads") {
        let (expr, vars) = crate::expander::expand_toplevel(&mut st, &form).expect("expands");
        let proto = compile_toplevel(&expr, &vars, Rc::from("t")).expect("compiles");
        collect(&proto, &mut out);
    }
    out
}

#[test]
fn a_list_loops_back_edge_is_decoded_with_its_cdr_and_number_in_either_order() {
    use crate::bytecode::{EdgeArg, EdgeShape, PairsEdge};
    let e =
        edges_of("(lambda (l) (let loop ((l l) (n 0)) (if (null? l) n (loop (cdr l) (+ n 1)))))");
    assert_eq!(e[0].shape, EdgeShape::Pairs);
    assert_eq!(
        e[0].pairs,
        Some(PairsEdge {
            src: 1,
            dst: 1,
            num: EdgeArg::AddLI(2, 1),
            num_dst: 2
        })
    );
    let e =
        edges_of("(lambda (l) (let loop ((n 1) (l l)) (if (null? l) n (loop (* n 2) (cdr l)))))");
    assert_eq!(
        e[0].pairs,
        Some(PairsEdge {
            src: 2,
            dst: 2,
            num: EdgeArg::MulLI(1, 2),
            num_dst: 1
        })
    );
    // Any other arguments have no decoded pair (and no `Pairs` shape).
    assert_eq!(PairsEdge::of(0, &[EdgeArg::Cdr(0), EdgeArg::Cdr(1)]), None);
    assert_eq!(PairsEdge::of(0, &[EdgeArg::Cdr(0)]), None);
    let three = [EdgeArg::Cdr(0), EdgeArg::Int(1), EdgeArg::Int(2)];
    assert_eq!(PairsEdge::of(0, &three), None);
    assert_eq!(EdgeShape::of(0, &three), EdgeShape::General);
    assert_eq!(
        PairsEdge::of(u16::MAX, &[EdgeArg::Int(1), EdgeArg::Cdr(0)]),
        None
    );
    let e = edges_of("(lambda (n) (let loop ((i n) (s 0)) (if (< i 0) s (loop (- i 1) (+ i s)))))");
    assert_eq!(e[0].pairs, None);
}

#[test]
fn a_back_edge_is_decoded_and_folds_the_loops_exit_test() {
    use crate::bytecode::{EdgeArg, EdgeRhs, EdgeShape, PrimOp};
    // `sum`'s loop: `i - 1` and `i + sum`, and the head's `(< i 0)`.
    let e = edges_of(
        "(lambda (n) (let loop ((i n) (sum 0)) (if (< i 0) sum (loop (- i 1) (+ i sum)))))",
    );
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].args, vec![EdgeArg::SubLI(1, 1), EdgeArg::AddLL(1, 2)]);
    assert_eq!(e[0].prims, vec![PrimOp::Sub, PrimOp::Add]);
    assert_eq!(e[0].shape, EdgeShape::CountAcc(PrimOp::Sub));
    let t = e[0].test.expect("the exit test is folded");
    assert_eq!(
        (t.p, t.neg, t.slot, t.rhs),
        (PrimOp::Lt, false, 1, EdgeRhs::Int(0))
    );
    // Its integer constant decoded as the range of counters for which the test holds (the
    // branch falls through): `i <= -1`.
    assert_eq!(t.range, Some((i64::MIN, i64::MAX as u64)));
    // The primitives its fast path needs intact, the test's included; the test is on the
    // counter.
    assert_eq!(
        e[0].needs,
        PrimOp::Sub.bit() | PrimOp::Add.bit() | PrimOp::Lt.bit()
    );
    assert!(e[0].on_counter);
    // Floats (`BranchLK`, `PrimLK`), a negated test on two locals whose loop call is in the
    // then-branch (the branch's target is patched after the edge is compiled), an argument
    // left in place.
    let e = edges_of("(let loop ((i 9.5) (s 0.0)) (if (< i 0.0) s (loop (- i 1.0) (+ i s))))");
    assert_eq!(
        e[0].args,
        vec![EdgeArg::LF(PrimOp::Sub, 0, 1.0), EdgeArg::AddLL(0, 1)]
    );
    assert_eq!(e[0].test.map(|t| t.rhs), Some(EdgeRhs::Float(0.0)));
    assert_eq!(e[0].shape, EdgeShape::CountAcc(PrimOp::Sub));
    let e = edges_of(
        "(lambda (n) (let loop ((i 0) (k 5) (j 0)) (if (not (>= i n)) (loop (+ i 1) k (+ j 1)) i)))",
    );
    assert_eq!(
        e[0].args,
        vec![EdgeArg::AddLI(1, 1), EdgeArg::Keep, EdgeArg::AddLI(3, 1)]
    );
    assert_eq!(e[0].shape, EdgeShape::General);
    let t = e[0].test.expect("folded");
    assert_eq!((t.p, t.neg, t.rhs), (PrimOp::Ge, true, EdgeRhs::Local(0)));
    // A negated test needs `not` too; the test is on `i`, the first parameter.
    assert_eq!(
        e[0].needs,
        PrimOp::Add.bit() | PrimOp::Ge.bit() | PrimOp::Not.bit()
    );
    assert!(e[0].on_counter);
    assert_ne!(
        t.target, 0,
        "the branch target is resolved when the function is finished"
    );
    // A leading or trailing argument left in place is not stored at all.
    let e =
        edges_of("(lambda (n) (let loop ((i 0) (k 5)) (if (not (>= i n)) (loop (+ i 1) k) i)))");
    assert_eq!(
        (e[0].first, e[0].args.clone()),
        (1, vec![EdgeArg::AddLI(1, 1)])
    );
    let e = edges_of("(let loop ((k 5) (i 0)) (if (< i 3) (loop k (+ i 1)) k))");
    assert_eq!(
        (e[0].first, e[0].args.clone()),
        (1, vec![EdgeArg::AddLI(1, 1)])
    );
    // A body that does not start with a compare-and-branch: no test; the jump is still fused.
    let e = edges_of("(let loop ((i 0)) (display i) (if (< i 3) (loop (+ i 1)) i))");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].test, None);
    // A large integer constant and a product.
    let e =
        edges_of("(let loop ((i 0) (p 1)) (if (> i 3) p (loop (+ i 100000) (* p 3000000000))))");
    assert_eq!(
        e[0].args,
        vec![EdgeArg::AddLI(0, 100_000), EdgeArg::MulLI(1, 3_000_000_000)]
    );
}

#[test]
fn a_fused_back_edge_counts_one_step_per_iteration_and_yields_the_same_values() {
    let rt = crate::limits::step_limited(10_000);
    let src = "(define (run n) (let loop ((i n) (sum 0)) (if (< i 0) sum (loop (- i 1) (+ i sum)))))
               (define (runf n) (let loop ((i n) (sum 0.0)) (if (< i 0.0) sum (loop (- i 1.0) (+ i sum)))))";
    eval(&rt, src);
    assert_eq!(eval(&rt, "(run 9000)"), Value::Int(9000 * 9001 / 2));
    assert_eq!(eval(&rt, "(runf 9000.0)"), Value::Float(40_504_500.0));
    for call in ["(run 11000)", "(runf 11000.0)"] {
        let err = rt.eval_sync(call, "t").expect_err("limit");
        assert_eq!(*err.kind(), crate::ErrorKind::Limit, "{call}");
    }
}

#[test]
fn fused_tests_on_locals_keep_errors_and_redefinition() {
    let rt = Runtime::new();
    eval(
        &rt,
        "(define (lt a b) (if (not (< a b)) 'no 'yes))
         (define (nul x) (if (null? x) 'empty 'full))
         (define (nn x) (if (not (null? x)) 'full 'empty))
         (define (nv x) (not (null? x)))
         (define (hd x) (car x))
         (define (tl x) (cdr x))
         (define (nf x) (if (not (hd x)) 'f 't))
         (define (ll a b) (+ a b))",
    );
    let cases = [
        ("(lt 1 2)", "yes"),
        ("(lt 2 1)", "no"),
        ("(lt 1.5 2.5)", "yes"),
        ("(lt 2 1.5)", "no"),
        ("(nul '())", "empty"),
        ("(nul '(1))", "full"),
        ("(nn '())", "empty"),
        ("(nn '(1))", "full"),
        ("(nv '(1))", "#t"),
        ("(nv '())", "#f"),
        ("(hd '(1 2))", "1"),
        ("(tl '(1 2))", "(2)"),
        ("(nf '(#f))", "f"),
        ("(nf '(0))", "t"),
        ("(ll 2 3)", "5"),
        ("(ll 2 0.5)", "2.5"),
    ];
    for (src, want) in cases {
        assert_eq!(crate::printer::write_string(&eval(&rt, src)), want, "{src}");
    }
    let err = rt.eval_sync("(hd 5)", "t").expect_err("not a pair");
    assert_eq!(*err.kind(), crate::ErrorKind::TypeError);
    assert!(err.to_string().contains("car expects a pair"), "{err}");
    let err = rt.eval_sync("(lt 'a 1)", "t").expect_err("not a number");
    assert_eq!(*err.kind(), crate::ErrorKind::TypeError);
    let err = rt
        .eval_sync("(ll 9223372036854775807 1)", "t")
        .expect_err("overflows");
    assert_eq!(*err.kind(), crate::ErrorKind::Overflow);
    // Redefined primitives are called, also through the fused negation.
    eval(&rt, "(define (not x) x) (define (null? x) (pair? x))");
    let cases = [
        ("(lt 1 2)", "no"),
        ("(nul '())", "full"),
        ("(nn '())", "empty"),
        ("(nn '(1))", "full"),
        ("(nv '(1))", "#t"),
        ("(nf '(#f))", "t"),
    ];
    for (src, want) in cases {
        assert_eq!(crate::printer::write_string(&eval(&rt, src)), want, "{src}");
    }
    eval(&rt, "(define (car x) 'mine) (define (< a b) #f)");
    assert_eq!(eval(&rt, "(hd '(1 2))"), eval(&rt, "'mine"));
    assert_eq!(eval(&rt, "(nf '(0))"), eval(&rt, "'f"));
}

#[test]
fn self_tail_calls_with_number_arguments_restart_in_one_op() {
    let rt = crate::limits::step_limited(10_000);
    let f = "(define (f n acc) (if (= n 0) acc (f (- n 1) (+ acc n))))";
    assert!(ops_of(f)
        .iter()
        .any(|op| matches!(op, Op::TailSelfNum(_, 2))));
    eval(&rt, f);
    assert_eq!(eval(&rt, "(f 100 0.5)"), Value::Float(5050.5));
    // One step per call, as before: 9,000 fit, 11,000 do not.
    assert_eq!(eval(&rt, "(f 8999 0)"), Value::Int(8999 * 9000 / 2));
    let err = rt.eval_sync("(f 11000 0)", "t").expect_err("limit");
    assert_eq!(*err.kind(), crate::ErrorKind::Limit);
    // Off the fast path: the plain ops raise the first argument's error.
    let err = rt.eval_sync("(f \"a\" 0)", "t").expect_err("type");
    assert!(err.message().contains("="), "{err}");
    let err = rt.eval_sync("(f 2 'x)", "t").expect_err("type");
    assert!(err.message().contains("+"), "{err}");
    // Another function's tail call, a call with a rest parameter or another arity: no fusion.
    for src in [
        "(define (g n) (if (= n 0) 0 (f (- n 1) 1)))",
        "(define (h n . r) (if (= n 0) 0 (h (- n 1))))",
        "(define (k n) (if (= n 0) 0 (k (- n 1) 2)))",
    ] {
        assert!(
            !ops_of(src)
                .iter()
                .any(|op| matches!(op, Op::TailSelfNum(..))),
            "{src}"
        );
    }
    // Redefined between calls: the new definition is called.
    eval(
        &rt,
        "(define (r n acc) (if (= n 2) (set! r (lambda (n acc) (list 'new n))) #f) (if (= n 0) 0 (r (- n 1) 0)))",
    );
    assert_eq!(eval(&rt, "(r 5 0)"), eval(&rt, "'(new 1)"));
}

#[test]
fn list_accessors_of_locals_are_one_op_each() {
    let ops = ops_of("(define (f x) (list (car x) (cdr x) (cadr x) (caddr x) (pair? x)))");
    assert!(ops.contains(&Op::CarL(0)), "{ops:?}");
    assert!(ops.contains(&Op::CdrL(0)), "{ops:?}");
    assert!(ops.contains(&Op::PrimL(PrimOp::Cadr, false, 0)), "{ops:?}");
    assert!(ops.contains(&Op::PrimL(PrimOp::Caddr, false, 0)), "{ops:?}");
    assert!(ops.contains(&Op::PrimL(PrimOp::PairP, false, 0)), "{ops:?}");
    // `pair?` as a test branches on the local directly.
    let ops = ops_of("(define (g x) (if (pair? x) 1 2))");
    assert!(
        ops.contains(&Op::BranchL(PrimOp::PairP, false, 0, 4)),
        "{ops:?}"
    );
    let rt = Runtime::new();
    eval(
        &rt,
        "(define (h x) (list (car x) (cdr x) (cadr x) (cddr x) (caddr x) (pair? x)))",
    );
    assert_eq!(
        crate::printer::write_string(&eval(&rt, "(h '(1 2 3 4))")),
        "(1 (2 3 4) 2 (3 4) 3 #t)"
    );
}

#[test]
fn a_local_function_calling_itself_in_tail_position_jumps_and_counts_the_same_steps() {
    // `go` is assigned once (an internal define) and never `set!`: its self tail call is a
    // jump back to the start of its body (`Jump(1)` at pc 0 is the jump's head). Called twice,
    // so it is not an inline loop.
    let fused = "(define (f n) (define (go i acc) (if (= i 0) acc (go (- i 1) (+ acc i)))) (+ (go n 0) (go 0 0)))";
    let protos = ops_of(fused);
    assert!(protos.iter().any(|op| matches!(op, Op::Jump(1))));
    assert!(protos
        .iter()
        .any(|op| matches!(op, Op::JumpLoop(0, 0, 2) | Op::Edge(_))));
    // `set!` anywhere, a second definition, a rest parameter, another arity or a parameter in
    // a cell: the closure calls stay.
    let plain = "(define (f n) (define (go i acc) (if #f (set! go go)) (if (= i 0) acc (go (- i 1) (+ acc i)))) (+ (go n 0) (go 0 0)))";
    for src in [
        plain,
        "(define (f n) (define (go i) (if (= i 0) 0 (go (- i 1)))) (define (go i) i) (go (go n)))",
        "(define (f n) (define (go i . r) (if (= i 0) 0 (go (- i 1)))) (go (go n)))",
        "(define (f n) (define (go i) (if (= i 0) 0 (go (- i 1) 2))) (go (go n)))",
        "(define (f n) (define (go i) (if (= i 0) (lambda () (set! i 1)) (go (- i 1)))) (go (go n)))",
    ] {
        assert_eq!(jumps(src), 0, "{src}");
    }
    // The same number of steps: one per call, counted by the jump as by the tail call.
    let rt = assert_same_step_limit(plain, fused, |n| format!("(f {n})"), 9_900..10_100);
    assert_eq!(eval(&rt, "(f 100)"), Value::Int(5050));
    let err = rt.eval_sync("(f 20000)", "t").expect_err("limit");
    assert_eq!(*err.kind(), crate::ErrorKind::Limit);
}

/// Whether `(f n)` returns, with the program `src` (defining `f`) run under `max_depth`.
fn fits_depth(src: &str, n: i64, max_depth: usize) -> bool {
    let rt = Runtime::builder()
        .limits(Limits {
            max_depth,
            ..Limits::default()
        })
        .build();
    eval(&rt, src);
    rt.eval_sync(&format!("(f {n})"), "t").is_ok()
}

#[test]
fn a_local_function_calling_itself_keeps_max_depth() {
    // Non-tail self calls through the variable (`CallSelf`) still make frames, tail calls do
    // not: the
    // deepest recursion that fits is the same as without the jump (a `set!` keeps the calls).
    let fits = |src: &str, n: i64| fits_depth(src, n, 50);
    let fused = "(define (f n) (define (d i) (if (= i 1) 1 (+ 1 (d (- i 1))))) (define (t i) (if (= i 0) (d n) (t (- i 1)))) (+ (t 3) (t 0)))";
    let plain = "(define (f n) (define (d i) (if #f (set! d d)) (if (= i 1) 1 (+ 1 (d (- i 1))))) (define (t i) (if #f (set! t t)) (if (= i 0) (d n) (t (- i 1)))) (+ (t 3) (t 0)))";
    assert!(jumps(fused) > 0 && jumps(plain) == 0);
    let self_calls = |src| {
        ops_of(src)
            .iter()
            .filter(|op| matches!(op, Op::CallSelf(1)))
            .count()
    };
    assert_eq!((self_calls(fused), self_calls(plain)), (1, 0));
    let edge = (30..60).find(|&n| !fits(plain, n)).expect("overflows");
    assert!(fits(fused, edge - 1));
    assert!(!fits(fused, edge));
    let rt = Runtime::new();
    eval(&rt, fused);
    assert_eq!(eval(&rt, "(f 40)"), Value::Int(80));
}

#[test]
fn a_local_function_that_captures_nothing_is_loaded_as_a_constant() {
    // `ok?` captures nothing (its self call is a jump): `try-it` loads it as a constant, not
    // through a captured cell, so `try-it` captures nothing either and is a constant too.
    let src = "(define (q n)
                 (define (ok? row dist placed)
                   (if (null? placed) #t
                       (and (not (= (car placed) (+ row dist)))
                            (not (= (car placed) (- row dist)))
                            (ok? row (+ dist 1) (cdr placed)))))
                 (define (try-it x z) (if (ok? (car x) 1 z) (try-it (cdr x) z) 0))
                 (try-it n '()))";
    let ops = ops_of(src);
    assert!(
        !ops.iter()
            .any(|op| matches!(op, Op::FreeCell(_) | Op::Closure(_))),
        "{ops:?}"
    );
    // Each `(not (= (car placed) (± row dist)))` is one `Compare`; the self jump with a `cdr`
    // is one `Edge` (of shape `Pairs`) with the `null?` test folded.
    assert_eq!(
        ops.iter().filter(|op| matches!(op, Op::Compare(_))).count(),
        2
    );
    let edges = edges_of(src);
    assert!(
        edges
            .iter()
            .any(|e| e.shape == crate::bytecode::EdgeShape::Pairs
                && e.test.is_some_and(|t| t.p == PrimOp::NullP)),
        "{edges:?}"
    );
    // A `set!`, a second definition or a captured variable keep the cell.
    for plain in [
        "(define (q) (define (a) 1) (define (b) (a)) (set! a a) (b))",
        "(define (q) (define (a) 1) (define (b) (a)) (define (a) 2) (b))",
        "(define (q n) (define (a) n) (define (b) (a)) (b))",
    ] {
        let ops = ops_of(plain);
        assert!(
            ops.iter().any(|op| matches!(op, Op::FreeCell(_))),
            "{plain}: {ops:?}"
        );
    }
    let rt = Runtime::new();
    eval(
        &rt,
        "(define (q) (define (a) 1) (define (b) (list (a) (eq? a a))) (define c (b)) (list c a))
         (define (fwd) (define (b) (a)) (define (a) 7) (b))",
    );
    assert_eq!(
        crate::printer::write_string(&eval(&rt, "(car (q))")),
        "(1 #t)"
    );
    assert_eq!(eval(&rt, "(fwd)"), Value::Int(7));
}

#[test]
fn a_local_list_loop_as_one_edge_counts_the_same_steps() {
    // `walk`'s self jump `(walk (+ n 1) (cdr l))` is one `Edge`; a `set!` keeps the closure
    // calls. One step per call either way.
    let fused = "(define (f l) (define (walk n l) (if (null? l) n (walk (+ n 1) (cdr l)))) (+ (walk 0 l) (walk 0 '())))";
    let plain = "(define (f l) (define (walk n l) (if #f (set! walk walk)) (if (null? l) n (walk (+ n 1) (cdr l)))) (+ (walk 0 l) (walk 0 '())))";
    assert!(ops_of(fused).iter().any(|op| matches!(op, Op::Edge(_))));
    assert!(!ops_of(plain).iter().any(|op| matches!(op, Op::Edge(_))));
    let rt = assert_same_step_limit(plain, fused, |n| format!("(f (range {n}))"), 9_000..10_100);
    assert_eq!(eval(&rt, "(f '(a b c))"), Value::Int(3));
}

/// Checks that `fused` (a program defining `f`) counts the same steps as `plain`: under a
/// 10,000-step limit, the smallest input in `sizes` at which `(call n)` fails for `plain` is
/// also the first at which it fails for `fused`. Returns a runtime under that limit with
/// `fused` defined, for further checks.
fn assert_same_step_limit(
    plain: &str,
    fused: &str,
    call: impl Fn(i64) -> String,
    sizes: std::ops::Range<i64>,
) -> Runtime {
    let limited = || crate::limits::step_limited(10_000);
    let fits = |src: &str, n: i64| {
        let rt = limited();
        eval(&rt, src);
        rt.eval_sync(&call(n), "t").is_ok()
    };
    let edge = sizes
        .into_iter()
        .find(|&n| !fits(plain, n))
        .expect("the limit is reached near 10,000 calls");
    assert!(fits(fused, edge - 1), "{fused}: fails at {}", edge - 1);
    assert!(!fits(fused, edge), "{fused}: fits at {edge}");
    let rt = limited();
    eval(&rt, fused);
    rt
}

#[test]
fn a_known_local_function_is_called_as_a_constant_with_the_same_errors_and_limits() {
    // `sq` captures nothing: its non-tail calls fetch it as a constant at the call
    // (`CallConst`, no callee pushed); a `set!` keeps the plain `Call` through its cell.
    let fused =
        "(define (f n) (define (sq y) (if (> y 0) (+ (* y y) (sq (- y 1))) 0)) (+ (sq n) 1))";
    let plain = "(define (f n) (define (sq y) (if #f (set! sq sq)) (if (> y 0) (+ (* y y) (sq (- y 1))) 0)) (+ (sq n) 1))";
    let count = |src: &str, want: fn(&Op) -> bool| ops_of(src).iter().filter(|op| want(op)).count();
    assert_eq!(count(fused, |op| matches!(op, Op::CallConst(_, 1))), 1);
    assert_eq!(count(plain, |op| matches!(op, Op::CallConst(..))), 0);
    // The same steps per call, and the same values.
    let looped = |src: &str| {
        src.replace(
            "(+ (sq n) 1))",
            "(let loop ((i 0) (acc 0)) (if (= i n) acc (loop (+ i 1) (+ acc (sq 1))))))",
        )
    };
    let rt = assert_same_step_limit(
        &looped(plain),
        &looped(fused),
        |n| format!("(f {n})"),
        3_200..3_500,
    );
    assert_eq!(eval(&rt, "(f 3)"), Value::Int(3));
    let rt = Runtime::new();
    eval(&rt, fused);
    assert_eq!(eval(&rt, "(f 3)"), Value::Int(15));
    // The same depth: the deepest recursion that fits under max_depth.
    let fits = |src: &str, n: i64| fits_depth(src, n, 60);
    let edge = (30..70).find(|&n| !fits(plain, n)).expect("overflows");
    assert!(fits(fused, edge - 1));
    assert!(!fits(fused, edge));
    // A wrong argument count, a non-number and an error inside the callee read the same,
    // with the callee on the stack trace.
    for (body, call) in [
        ("(define (g) (define (h a b) (+ a b)) (list (h 1)))", "(g)"),
        ("(define (g) (define (h a) (* a a)) (+ 1 (h 'x)))", "(g)"),
        (
            "(define (g) (define (h . xs) (car xs)) (list (h) 2))",
            "(g)",
        ),
    ] {
        let kept = body.replacen("(define (g) ", "(define (g) (if #f (set! h h)) ", 1);
        assert!(
            ops_of(body)
                .iter()
                .any(|op| matches!(op, Op::CallConst(..))),
            "{body}"
        );
        let run = |src: &str| {
            let rt = Runtime::new();
            eval(&rt, src);
            rt.eval_sync(call, "t").expect_err("fails")
        };
        let (a, b) = (run(body), run(&kept));
        assert_eq!((a.kind(), a.message()), (b.kind(), b.message()), "{body}");
        let names = |e: &crate::LispError| {
            e.stack()
                .iter()
                .map(|f| f.function.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&a), names(&b), "{body}");
        assert!(
            names(&a).iter().any(|n| n == "g"),
            "{body}: {:?}",
            names(&a)
        );
    }
}
