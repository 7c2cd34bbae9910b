//! Reclamation of `syntax-rules` aliases (`symbol.rs`): a host that expands macros without end
//! keeps only the aliases of the macros still defined.

use crate::error::ErrorKind;
use crate::printer::write_string;
use crate::symbol::{live_aliases, set_alias_limit, MAX_LIVE_ALIASES};
use crate::Runtime;

const SWAP: &str = "(define-syntax swap!
  (syntax-rules () ((_ a b) (let ((tmp a)) (set! a b) (set! b tmp)))))
(define tmp 1)
(define other 2)";

/// `(let () (swap! tmp other) …)` with `n` uses: one top-level form of `n` expansions, three
/// aliases each.
fn swaps(n: usize) -> String {
    let mut src = String::from("(let ()");
    for _ in 0..n {
        src.push_str(" (swap! tmp other)");
    }
    src.push_str(" (list tmp other))");
    src
}

fn eval(rt: &Runtime, src: &str) -> String {
    match rt.eval_sync(src, "alias-test") {
        Ok(v) => write_string(&v),
        Err(e) => panic!("{src:.80}: {e}"),
    }
}

#[test]
fn a_million_hygienic_expansions_leave_the_alias_table_as_it_was() {
    let before = live_aliases();
    let uses = swaps(1000);
    let mut peak = 0;
    // 1,000,000 expansions of swap! (200,000 in a debug build, which takes a minute for a
    // million): runtimes on this thread, 10 evaluations of 1,000 uses each.
    let runtimes = if cfg!(debug_assertions) { 20 } else { 100 };
    for _ in 0..runtimes {
        let rt = Runtime::new();
        eval(&rt, SWAP);
        let macro_aliases = live_aliases() - before;
        for _ in 0..10 {
            // 1,000 swaps: an even count leaves the values where they were.
            assert_eq!(eval(&rt, &uses), "(1 2)");
            peak = peak.max(live_aliases());
            assert_eq!(live_aliases(), before + macro_aliases);
        }
    }
    assert_eq!(live_aliases(), before);
    // Nothing more than one form's expansions is alive at once either (the peak is taken
    // between forms: during one, its 3,000 aliases are).
    assert!(peak <= before, "peak {peak}, before {before}");
}

#[test]
fn a_macro_defined_by_a_macro_keeps_its_aliases_while_it_is_defined() {
    let before = live_aliases();
    let rt = Runtime::new();
    // `def-swapper` defines a swap macro whose template's `tmp`, `let` and `set!` are
    // aliases (made by def-swapper's expansion): they must outlive that expansion.
    eval(
        &rt,
        "(define-syntax def-swapper
           (syntax-rules ()
             ((_ name) (define-syntax name
                         (syntax-rules () ((_ a b) (let ((tmp a)) (set! a b) (set! b tmp))))))))
         (def-swapper my-swap!)
         (define tmp 1)
         (define other 2)",
    );
    let with_macro = live_aliases();
    assert!(
        with_macro > before,
        "the defined macro holds its template's aliases"
    );
    // Many other compiles later, the template's aliases still mean what they did.
    for _ in 0..200 {
        eval(&rt, "(my-swap! tmp other)");
    }
    assert_eq!(live_aliases(), with_macro);
    assert_eq!(eval(&rt, "(my-swap! tmp other) (list tmp other)"), "(2 1)");
    // Redefining the macro releases the old template's aliases (the new one holds its own).
    eval(&rt, "(def-swapper my-swap!)");
    assert_eq!(live_aliases(), with_macro);
    eval(
        &rt,
        "(define-syntax my-swap! (syntax-rules () ((_ a b) (list a b))))",
    );
    assert!(live_aliases() < with_macro);
    drop(rt);
    assert_eq!(live_aliases(), before);
}

#[test]
fn an_alias_a_defmacro_keeps_past_its_compile_still_prints_its_name() {
    let rt = Runtime::new();
    eval(
        &rt,
        "(define kept nil)
         (defmacro keep! (form) (set! kept form) nil)
         (define-syntax via-rules (syntax-rules () ((_) (keep! (tmp other)))))
         (via-rules)",
    );
    // `kept` holds the aliases of tmp and other; their expansion is long over.
    eval(&rt, SWAP);
    eval(&rt, &swaps(100));
    assert_eq!(eval(&rt, "kept"), "(tmp other)");
    assert_eq!(
        eval(&rt, "(map symbol->string kept)"),
        "(\"tmp\" \"other\")"
    );
    // A stale alias means its plain name when put back into code.
    eval(&rt, "(defmacro replay () (car kept))");
    assert_eq!(eval(&rt, "(set! tmp 7) (replay)"), "7");
}

#[test]
fn too_many_live_aliases_is_a_limit_error_and_the_runtime_goes_on() {
    let rt = Runtime::new();
    eval(&rt, SWAP);
    set_alias_limit(live_aliases() + 100);
    let err = rt
        .eval_sync(&swaps(200), "alias-test")
        .expect_err("past the alias limit");
    set_alias_limit(MAX_LIVE_ALIASES);
    assert_eq!(*err.kind(), ErrorKind::Limit);
    assert!(
        err.message().contains("live macro-introduced identifiers"),
        "{}",
        err.message()
    );
    assert_eq!(eval(&rt, &swaps(200)), "(1 2)");
}
