//! VM behaviour that script files cannot express: the depth limit, every sandbox limit (and that
//! the runtime survives it), host functions, conversions and hostile input. (Slices, yields,
//! interrupts and suspension of a fiber are tested inside the crate, `src/fiber_tests.rs`.)

use omega_lisp::{ErrorKind, Limits, LispError, OutputBuffer, Runtime, Value};

fn rt_with(limits: Limits) -> Runtime {
    Runtime::builder()
        .limits(limits)
        .output(OutputBuffer::new())
        .build()
}

fn eval(rt: &Runtime, src: &str) -> Result<Value, LispError> {
    rt.eval_sync(src, "<test>")
}

#[test]
fn recursion_to_max_depth_works_and_one_more_overflows() {
    let rt = rt_with(Limits::default());
    eval(&rt, "(define (d n) (if (= n 1) 1 (+ 1 (d (- n 1)))))").expect("defines");
    assert_eq!(
        eval(&rt, "(d 100000)").expect("depth 100000 works"),
        Value::Int(100_000)
    );
    let err = eval(&rt, "(d 100001)").expect_err("depth 100001 overflows");
    assert_eq!(*err.kind(), ErrorKind::StackOverflow);
    assert!(err.to_string().contains("frames omitted"), "{err}");
    // Still usable afterwards.
    assert_eq!(eval(&rt, "(d 10)").expect("works again"), Value::Int(10));
}

#[test]
fn max_steps_is_an_uncatchable_limit_and_the_runtime_survives() {
    let rt = rt_with(Limits {
        max_steps: Some(10_000),
        ..Limits::default()
    });
    let err = eval(&rt, "(define (f) (f)) (try (f) (catch e 'caught))").expect_err("limit");
    assert_eq!(*err.kind(), ErrorKind::Limit);
    assert!(
        err.message().contains("limit exceeded: max_steps (10000)"),
        "{err}"
    );
    assert_eq!(eval(&rt, "(+ 1 2)").expect("usable"), Value::Int(3));
}

#[test]
fn max_string_len_and_max_list_len_are_limits() {
    let rt = rt_with(Limits {
        max_string_len: 100,
        max_list_len: 1000,
        ..Limits::default()
    });
    let err = eval(
        &rt,
        "(define (grow s) (grow (string-append s s))) (grow \"ab\")",
    )
    .expect_err("limit");
    assert_eq!(*err.kind(), ErrorKind::Limit);
    assert!(err.message().contains("max_string_len (100)"), "{err}");
    let err = eval(&rt, "(range 5000)").expect_err("limit");
    assert!(err.message().contains("max_list_len (1000)"), "{err}");
    let err = eval(&rt, "(append (range 600) (range 600) '())").expect_err("limit");
    assert!(err.message().contains("max_list_len"), "{err}");
    // `append`'s result is held to the limit as a whole, the shared last list included; a
    // list that is not proper is reported as such even when it is also too long (its shape is
    // found before the limit, as when they were checked before copying).
    assert_eq!(
        eval(&rt, "(length (append (range 500) (range 500)))").expect("at the limit"),
        Value::Int(1000)
    );
    let err = eval(&rt, "(append '(1) (range 1000))").expect_err("limit");
    assert!(err.message().contains("max_list_len (1000)"), "{err}");
    let err = eval(
        &rt,
        "(define c (list 1 2)) (set-cdr! (cdr c) c) (append '(0) c)",
    )
    .expect_err("a circular last list is past any limit");
    assert!(err.message().contains("max_list_len (1000)"), "{err}");
    let err = eval(
        &rt,
        "(define d (let loop ((i 0) (l 5)) (if (= i 1500) l (loop (+ i 1) (cons i l))))) (append d '())",
    )
    .expect_err("dotted");
    assert_eq!(*err.kind(), ErrorKind::TypeError, "{err}");
    assert_eq!(
        eval(&rt, "(length (range 10))").expect("usable"),
        Value::Int(10)
    );
}

#[test]
fn max_depth_is_configurable() {
    let rt = rt_with(Limits {
        max_depth: 50,
        ..Limits::default()
    });
    eval(&rt, "(define (d n) (if (= n 1) 1 (+ 1 (d (- n 1)))))").expect("defines");
    assert_eq!(eval(&rt, "(d 50)").expect("works"), Value::Int(50));
    assert_eq!(
        *eval(&rt, "(d 51)").expect_err("overflows").kind(),
        ErrorKind::StackOverflow
    );
}

#[test]
fn host_functions_errors_and_panics() {
    let rt = rt_with(Limits::default());
    rt.register_fn("tool.add", |args| {
        let a = i64::try_from(args[0].clone())?;
        let b = i64::try_from(args[1].clone())?;
        Ok(Value::Int(a + b))
    });
    rt.register_fn("tool.boom", |_| panic!("kaboom"));
    assert_eq!(eval(&rt, "(tool.add 2 3)").expect("works"), Value::Int(5));
    let err = eval(&rt, "(tool.add 2 \"x\")").expect_err("type");
    assert_eq!(*err.kind(), ErrorKind::TypeError);
    let err = eval(&rt, "(tool.boom)").expect_err("panic");
    assert_eq!(*err.kind(), ErrorKind::Panic);
    assert!(err.message().contains("kaboom"));
    assert_eq!(
        eval(&rt, "(tool.add 1 1)").expect("still works"),
        Value::Int(2)
    );
}

#[test]
fn calling_lisp_from_rust_and_globals() {
    let rt = rt_with(Limits::default());
    eval(&rt, "(define (sq x) (* x x))").expect("defines");
    let sq = rt.global("sq").expect("defined");
    assert_eq!(
        rt.call(&sq, vec![Value::Int(9)]).expect("calls"),
        Value::Int(81)
    );
    rt.set_global("answer", Value::Int(42));
    assert_eq!(eval(&rt, "answer").expect("reads global"), Value::Int(42));
    assert!(rt.call(&Value::Int(1), vec![]).is_err());
}

#[test]
fn redefining_an_inlined_primitive_is_honoured() {
    let rt = rt_with(Limits::default());
    eval(&rt, "(define (f a b) (+ a b))").expect("defines");
    assert_eq!(eval(&rt, "(f 1 2)").expect("adds"), Value::Int(3));
    eval(&rt, "(define (+ a b) (* a b))").expect("redefines");
    assert_eq!(eval(&rt, "(f 3 4)").expect("uses new +"), Value::Int(12));
}

#[test]
fn conversions_rust_and_json() {
    let v: Value = vec![1i64, 2, 3].into();
    assert_eq!(omega_lisp::write_string(&v), "(1 2 3)");
    assert_eq!(i64::try_from(Value::Int(5)).expect("int"), 5);
    assert_eq!(String::try_from(Value::string("s")).expect("str"), "s");
    assert!(bool::try_from(Value::Int(1)).is_err());
    let j = serde_json::json!({"a": [1, 2.5, null, true], "b": {"c": "d"}});
    let v = Value::from(j.clone());
    assert_eq!(serde_json::Value::try_from(&v).expect("back to json"), j);
}

#[test]
fn hostile_input_never_panics_or_overflows() {
    let rt = rt_with(Limits::default());
    // A million open parens: a clean read error.
    let deep = "(".repeat(1_000_000);
    let err = eval(&rt, &deep).expect_err("too deep");
    assert_eq!(*err.kind(), ErrorKind::Syntax);
    let deep = format!("{}1{}", "(".repeat(1_000_000), ")".repeat(1_000_000));
    assert!(eval(&rt, &deep).is_err());
    // Nesting at the reader's limit compiles (as quoted data) and prints.
    let ok = format!("(quote {}1{})", "(".repeat(990), ")".repeat(990));
    assert!(eval(&rt, &ok).is_ok());
    // Deep data built at runtime: printing, equality and dropping are iterative.
    let v = eval(
        &rt,
        "(define (nest n acc) (if (= n 0) acc (nest (- n 1) (list acc)))) (nest 200000 1)",
    )
    .expect("builds");
    let printed = omega_lisp::write_string(&v);
    assert_eq!(printed.len(), 400_001);
    assert!(
        eval(&rt, "(equal? (nest 200000 1) (nest 200000 1))").expect("compares")
            == Value::Bool(true)
    );
    drop(v);
    let long = eval(&rt, "(range 1000000)").expect("builds");
    drop(long);
    // A macro that expands forever ends in a clean error.
    let err = eval(&rt, "(defmacro m () '(m)) (m)").expect_err("expansion limit");
    assert_eq!(*err.kind(), ErrorKind::Syntax);
    let err = eval(&rt, "(defmacro m2 (x) `(+ 1 (m2 ,x))) (m2 1)").expect_err("expansion limit");
    assert_eq!(*err.kind(), ErrorKind::Syntax);
    assert_eq!(eval(&rt, "(+ 1 1)").expect("usable"), Value::Int(2));
}

#[test]
fn error_report_has_the_spec_format() {
    let rt = rt_with(Limits::default());
    let src = "(define (add-one x)\n  (+ x \"a\"))\n\n\n\n\n(add-one 1)\n";
    let err = rt
        .eval_sync(src, "lisp-examples/demo.lisp")
        .expect_err("type error");
    assert_eq!(
        err.to_string(),
        "error[:type-error]: + expects numbers, got \"a\" (a string)\n  at add-one (lisp-examples/demo.lisp:2:3)\n  at <top> (lisp-examples/demo.lisp:7:1)"
    );
    let err = rt
        .eval_sync("(display \"x)", "f.lisp")
        .expect_err("read error");
    assert_eq!(
        err.to_string(),
        "error[:syntax]: f.lisp:1:10: unterminated string"
    );
}

#[test]
fn random_is_seeded_per_runtime() {
    let a = Runtime::builder().seed(7).build();
    let b = Runtime::builder().seed(7).build();
    let xs = eval(&a, "(list (random 1000) (random 1000) (random))").expect("ok");
    let ys = eval(&b, "(list (random 1000) (random 1000) (random))").expect("ok");
    assert_eq!(xs, ys);
}

#[test]
fn check_reports_every_compile_error_without_running() {
    let out = OutputBuffer::new();
    let rt = Runtime::builder().output(out.clone()).build();
    let src = "(println \"side effect\")\n(if)\n(defmacro twice (x) `(begin ,x ,x))\n(twice (let ((a)) a))\n(define ok 1)\n";
    let errors = rt.check(src, "c.lisp");
    let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{texts:?}");
    assert!(texts[0].contains("c.lisp:2:1: if expects"), "{texts:?}");
    assert!(
        texts[1].contains("let: each binding must be (name value)"),
        "{texts:?}"
    );
    assert_eq!(out.contents(), "", "check must not run code");
    let errors = rt.check("(display \"x)", "r.lisp");
    assert_eq!(errors.len(), 1);
}

#[test]
fn check_holds_a_doubling_macro_to_max_steps() {
    // Issue 10, class 5: expansion in `check` shares one step count per form.
    let rt = rt_with(Limits {
        max_steps: Some(50_000),
        ..Limits::default()
    });
    let errors = rt.check(
        "(defmacro dbl (n) (if (= n 0) 1 `(+ (dbl ,(- n 1)) (dbl ,(- n 1)))))\n(dbl 40)\n",
        "d.lisp",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].kind(), &omega_lisp::ErrorKind::Limit);
    assert!(
        errors[0].message().contains("max_steps (50000)"),
        "{}",
        errors[0]
    );
}

/// Found by the `eval` fuzz target: `sleep` in a synchronous evaluation with no tokio runtime
/// on the thread built its timer before the evaluation could refuse the suspension, and the
/// timer panicked ("there is no reactor running"). A suspending native is now refused before
/// it runs, in every synchronous path: `eval_sync`, `call`, macro expansion.
#[test]
fn suspending_natives_in_a_synchronous_evaluation_fail_cleanly_without_tokio() {
    let rt = rt_with(Limits::default());
    for (src, native) in [
        ("(sleep 50)", "sleep"),
        ("(+ 1 (sleep 1))", "sleep"),
        ("(define (f) (sleep 5)) (f)", "sleep"),
        ("(try (sleep 5) (catch e (error-message e)))", "sleep"),
        ("(defmacro m () (sleep 5) 1) (m)", "sleep"),
    ] {
        let result = eval(&rt, src);
        if src.starts_with("(try") {
            let msg = result.expect("try catches it");
            let Value::Str(s) = &msg else {
                panic!("{src}: expected a message, got {msg}");
            };
            assert!(s.contains("sleep suspends its task"), "{src}: {s}");
            continue;
        }
        let err = result.expect_err(src);
        assert_eq!(*err.kind(), ErrorKind::Error, "{src}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("{native} suspends its task"))
                && text.contains("Runtime::eval_str"),
            "{src}: {text}"
        );
    }
    // The runtime is unharmed.
    assert_eq!(eval(&rt, "(+ 40 2)").expect("works"), Value::Int(42));
    let f = eval(&rt, "(lambda () (sleep 1))").expect("a closure");
    let err = rt
        .call(&f, vec![])
        .expect_err("call refuses the suspension");
    assert!(err.to_string().contains("sleep suspends its task"), "{err}");
}

/// The fuzz input itself (fuzz/artifacts/eval/crash-068ff82c…: a mangled
/// `lisp-examples/priorities.lisp` that reaches `(sleep 50)` under eval_sync).
#[test]
fn fuzz_crash_sleep_without_reactor_is_an_error() {
    let src = "(define order '())\n(define (job name prio) (async (try (car 1) (finally (println \"cleanup ran\")))))\n(sleep 50)\n(await-all jobs)\n";
    let rt = rt_with(Limits {
        max_steps: Some(20_000),
        max_depth: 1_000,
        max_string_len: 1 << 16,
        max_list_len: 10_000,
        max_tasks: Some(100),
        ..Limits::default()
    });
    let err = eval(&rt, src).expect_err("sleep cannot run synchronously");
    assert!(err.to_string().contains("sleep suspends its task"), "{err}");
    assert!(err.to_string().contains("<test>:3:1"), "{err}");
}
