//! The preludes' split into forms, and procedures loading on first use.

use super::{chunks, Pending};
use crate::printer::write_string;
use crate::reader;
use crate::runtime::Runtime;
use crate::symbol::Symbol;

#[test]
fn every_chunk_is_one_form_and_together_they_are_the_whole_prelude() {
    let mut total = 0;
    for (text, file) in [
        (crate::builtins::PRELUDE, "<prelude>"),
        (
            crate::builtins::async_surface::ASYNC_PRELUDE,
            "<async-prelude>",
        ),
    ] {
        let whole = reader::read_all(text, file).expect("reads");
        let mine: Vec<_> = chunks().iter().filter(|c| c.file == file).collect();
        assert_eq!(whole.len(), mine.len(), "{file}: forms vs chunks");
        for (form, chunk) in whole.iter().zip(&mine) {
            let read = reader::read_all_at(chunk.text, chunk.file, chunk.line).expect("reads");
            assert_eq!(read.len(), 1, "{}:{} is one form", chunk.file, chunk.line);
            assert_eq!(read[0], *form, "{}:{}", chunk.file, chunk.line);
            // Positions are the whole file's.
            assert_eq!(read[0].span.line, form.span.line);
            assert_eq!(read[0].span.col, form.span.col);
        }
        total += whole.len();
    }
    assert_eq!(total, chunks().len());
}

#[test]
fn every_prelude_form_is_a_procedure_or_a_macro_so_building_a_runtime_runs_no_lisp() {
    // A value definition would run when every runtime is built (start-up; a value made by
    // a prelude procedure also loads that procedure and what it refers to). Make the value
    // in Rust with the natives instead (`%param-tag`, `%raise`, `%async`, `%await`).
    for chunk in chunks() {
        assert!(
            chunk.procedure.is_some() || chunk.macro_name.is_some(),
            "{}:{} is neither `(define (name …) …)` nor `(defmacro name …)`",
            chunk.file,
            chunk.line
        );
    }
    // What replaced the value definitions behaves as they did, whatever a script rebinds.
    let rt = Runtime::new();
    assert_eq!(
        written(
            &rt,
            "(define p (make-parameter 1))
             (set! make-parameter (lambda args 'mine))
             (set! raise #f)
             (list (parameterize ((p 2)) (p)) (p) (eq? %raise raise) %param-tag
                   (count \"héllo\") (count odd? '(1 2 3)) (count {:a 1})
                   (guard (e (#t (list 'caught e))) (%raise 'x)))"
        ),
        "(2 1 #f (parameter) 5 2 1 (caught x))"
    );
}

#[test]
fn no_name_is_defined_twice_by_the_preludes() {
    let mut seen = std::collections::HashSet::new();
    for chunk in chunks() {
        let form = &reader::read_all_at(chunk.text, chunk.file, chunk.line).expect("reads")[0];
        let reader::SyntaxKind::List(items, _) = &form.kind else {
            continue;
        };
        let head = items[0].as_symbol().map(|s| s.name().to_string());
        if !matches!(head.as_deref(), Some("define" | "defmacro")) {
            continue;
        }
        let name = match &items[1].kind {
            reader::SyntaxKind::List(sig, _) => sig[0].as_symbol(),
            _ => items[1].as_symbol(),
        }
        .expect("a named definition");
        assert!(
            seen.insert(name),
            "{name} is defined twice ({}:{})",
            chunk.file,
            chunk.line
        );
    }
    // Most of them are procedures, which load on first use.
    let procedures = chunks().iter().filter(|c| c.procedure.is_some()).count();
    assert!(procedures > 60, "{procedures} procedure definitions");
}

/// What `src` evaluates to in `rt`, in `write` form.
fn written(rt: &Runtime, src: &str) -> String {
    write_string(
        &rt.eval_sync(src, "<t>")
            .unwrap_or_else(|e| panic!("{src}: {e}")),
    )
}

/// Loads every pending definition of `rt`.
fn load_all(rt: &Runtime) {
    let names: Vec<Symbol> = rt.with_state(|st| super::pending_names(st).collect());
    assert!(!names.is_empty());
    for name in names {
        rt.with_state(|st| {
            if st.lazy.is_pending_macro(name) {
                super::macro_named(st, name)
            } else {
                super::global(st, name)
            }
        })
        .expect("loads")
        .unwrap_or_else(|| panic!("{name} is defined once loaded"));
    }
    rt.with_state(|st| assert_eq!(super::pending_names(st).count(), 0));
}

#[test]
fn prelude_code_refers_only_to_names_that_exist_when_the_preludes_end() {
    // Invariant 5 of the module docs: compiled pending definitions are shared by runtimes
    // only because loading one never makes a new global slot.
    let rt = Runtime::new();
    let before = rt.with_state(|st| st.global_names.len());
    load_all(&rt);
    let after = rt.with_state(|st| st.global_names.clone());
    assert_eq!(
        after.len(),
        before,
        "prelude code refers to names nothing defines: {:?}",
        &after[before..]
    );
}

#[test]
fn a_procedure_loads_when_a_form_refers_to_it_and_not_before() {
    let rt = Runtime::new();
    let slot = |rt: &Runtime, name: &str| rt.with_state(|st| st.global_slot(Symbol::intern(name)));
    let filter = slot(&rt, "filter");
    assert!(rt.with_state(|st| st.lazy.is_pending(filter)));
    assert!(rt.with_state(|st| st.globals[filter as usize].is_none()));
    // Quoted, it is data: nothing loads.
    rt.eval_sync("'(filter odd? xs)", "<t>").expect("runs");
    assert!(rt.with_state(|st| st.lazy.is_pending(filter)));
    // Referred to inside a lambda that never runs: loads all the same.
    rt.eval_sync("(define (later xs) (filter odd? xs))", "<t>")
        .expect("runs");
    assert!(!rt.with_state(|st| st.lazy.is_pending(filter)));
    assert_eq!(written(&rt, "(later '(1 2 3))"), "(1 3)");
    // Listed as defined while pending.
    assert!(rt.names().contains(&"reduce".to_string()));
    assert!(rt.global("reduce").is_some());
}

#[test]
fn a_script_definition_replaces_a_pending_procedure_and_set_loads_it_first() {
    let rt = Runtime::new();
    assert_eq!(
        written(&rt, "(define (filter p l) 'mine) (filter odd? '(1))"),
        "mine"
    );
    // `set!` of a pending procedure: it is defined (as with the preludes loaded at start),
    // so the set! succeeds and sees the old value first.
    assert_eq!(
        written(
            &rt,
            "(define old-remove remove) (set! remove 5) (list (procedure? old-remove) remove)"
        ),
        "(#t 5)"
    );
    // A host's definition replaces it too.
    rt.set_global("reduce", crate::Value::Int(7));
    assert_eq!(written(&rt, "reduce"), "7");
}

#[test]
fn pending_bodies_expand_under_the_preludes_macros_not_the_scripts() {
    let rt = Runtime::new();
    // A script macro named like a procedure `map`'s body calls (and `if`-shaped nonsense for
    // `cond`): the prelude's `map`, loaded after, still works.
    assert_eq!(
        written(
            &rt,
            "(defmacro reverse (x) ''broken) (defmacro %check-proc args ''broken) \
             (map (lambda (x) (* x 2)) '(1 2 3))"
        ),
        "(2 4 6)"
    );
}

#[test]
fn a_small_step_limit_does_not_count_loading() {
    let rt = Runtime::new();
    rt.set_limits(crate::Limits {
        max_steps: Some(40),
        ..crate::Limits::default()
    })
    .expect("limits");
    // `sort` loads `sort`'s helpers, whose expansion and definition are not the script's steps.
    assert_eq!(written(&rt, "(sort '(3 1 2) <)"), "(1 2 3)");
}

#[test]
fn later_runtimes_share_compiled_pending_definitions() {
    let first = Runtime::new();
    first
        .eval_sync("(filter odd? '(1 2))", "<t>")
        .expect("runs");
    let second = Runtime::new();
    let shared = |rt: &Runtime| -> Option<std::rc::Rc<Pending>> {
        rt.with_state(|st| {
            let slot = st.global_slot(Symbol::intern("filter"));
            st.lazy.pending[slot as usize].clone()
        })
    };
    let p = shared(&second).expect("pending in the second runtime");
    assert!(
        p.proto.borrow().is_some(),
        "compiled by the first runtime, shared with the second"
    );
    assert_eq!(written(&second, "(filter odd? '(1 2 3))"), "(1 3)");
}

#[test]
fn a_macro_loads_when_the_expander_meets_it_and_the_scripts_own_wins() {
    let rt = Runtime::new();
    let guard = Symbol::intern("guard");
    assert!(rt.with_state(|st| st.lazy.is_pending_macro(guard)));
    assert!(rt.names().contains(&"guard".to_string()));
    // In a body, where the expander first asks whether a form is a macro to splice.
    assert_eq!(
        written(
            &rt,
            "(define (f) (guard (e (#t (list 'caught e))) (raise 'x))) (f)"
        ),
        "(caught x)"
    );
    assert!(!rt.with_state(|st| st.lazy.is_pending_macro(guard)));
    // A script's macro named like a pending one is the script's; the preludes' code that
    // uses the name (`parameterize` in a pending procedure, say) still gets the preludes'.
    let rt = Runtime::new();
    assert_eq!(
        written(
            &rt,
            "(defmacro let-values args ''mine) (list (let-values 1) \
             (call-with-values (lambda () (values 1 2)) +))"
        ),
        "(mine 3)"
    );
    assert_eq!(
        written(&rt, "(define-record-type pt (mk x) pt? (x px)) (px (mk 5))"),
        "5"
    );
}

#[test]
fn a_macro_first_met_at_the_bottom_of_deep_code_loads_within_a_small_stack() {
    // The one load that nests inside an expansion (module docs, point 6), at the deepest point
    // the expander allows on a 2 MiB thread in this build: an answer or a clean error, never
    // an overflow.
    fn eval_on_small_stack(src: String) -> Result<(), crate::ErrorKind> {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let rt = Runtime::new();
                rt.eval_sync(&src, "<t>")
                    .map(|_| ())
                    .map_err(|e| e.kind().clone())
            })
            .expect("spawns")
            .join()
            .expect("no overflow or panic")
    }
    let nest = |open: &str, depth: usize, inner: &str| {
        format!("{}{inner}{}", open.repeat(depth), ")".repeat(depth))
    };
    for open in ["(let ((a 1)) ", "(list ", "(lambda () ", "(if #t "] {
        // The deepest nesting of this shape that compiles.
        let (mut ok, mut too_deep) = (1, 1000);
        while too_deep - ok > 1 {
            let mid = (ok + too_deep) / 2;
            match eval_on_small_stack(nest(open, mid, "'x")) {
                Ok(()) => ok = mid,
                Err(kind) => {
                    assert_eq!(kind, crate::ErrorKind::Syntax, "{open} × {mid}");
                    too_deep = mid;
                }
            }
        }
        assert!(ok > 20, "{open}: only {ok} deep");
        let at_bottom = nest(open, ok, "(guard (e (#t 'caught)) (raise 'x))");
        if let Err(kind) = eval_on_small_stack(at_bottom) {
            assert_eq!(kind, crate::ErrorKind::Syntax, "{open} × {ok}");
        }
    }
}

#[test]
fn a_form_that_fails_to_expand_loads_nothing_and_leaves_nothing_noted() {
    let rt = Runtime::new();
    let remove = rt.with_state(|st| st.global_slot(Symbol::intern("remove")));
    let err = rt
        .eval_sync("(list remove (lambda))", "<t>")
        .expect_err("a bad lambda");
    assert_eq!(err.kind(), &crate::ErrorKind::Syntax, "{err}");
    rt.with_state(|st| {
        assert!(st.lazy.is_pending(remove));
        assert!(st.lazy.wanted.is_empty());
    });
    assert_eq!(written(&rt, "(remove odd? '(1 2 3))"), "(2)");
}
