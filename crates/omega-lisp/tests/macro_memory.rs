//! A host that evaluates scripts with macros for days: the memory of the process stays flat
//! (issue 10). Expansions make aliases for the identifiers their templates introduce; they must
//! be freed once the form is compiled, and a macro's own aliases once it is redefined.

use omega_lisp::{write_string, Runtime};

/// The process's resident set, in KiB (Linux).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// A macro-defining macro (its output's template holds aliases) and a macro whose template
/// introduces twelve identifiers.
const DEFS: &str = "
(define-syntax def-swapper
  (syntax-rules ()
    ((_ name) (define-syntax name
                (syntax-rules () ((_ a b) (let ((tmp a)) (set! a b) (set! b tmp))))))))
(define-syntax rotate!
  (syntax-rules ()
    ((_ a b c) (let* ((t1 a) (t2 b) (t3 c) (u1 t1) (u2 t2) (u3 t3))
                 (set! a u2) (set! b u3) (set! c u1)))))
(define x 1) (define y 2) (define z 3)";

/// One round of a host's work: redefine a macro with a macro, use both macros 60 times and
/// the preludes' `let-values` and `guard` (`defmacro`s that make gensyms) 3 times.
fn round(rt: &Runtime, uses: &str) {
    rt.eval_sync("(def-swapper my-swap!)", "host")
        .expect("defines");
    let v = rt.eval_sync(uses, "host").expect("runs");
    assert_eq!(write_string(&v), "(1 2 3)");
}

#[test]
fn expanding_macros_in_a_host_loop_keeps_memory_flat() {
    let rt = Runtime::new();
    rt.eval_sync(DEFS, "host").expect("defines");
    // 30 rotations (a multiple of 3) and 30 swaps (even): the values end where they began.
    let mut uses = String::from("(let ()");
    for i in 0..30 {
        uses.push_str(" (rotate! x y z) (my-swap! x y)");
        if i % 10 == 0 {
            uses.push_str(" (let-values (((p q) (values 1 2))) (guard (e (#t p)) (raise q)))");
        }
    }
    uses.push_str(" (list x y z))");
    for _ in 0..300 {
        round(&rt, &uses);
    }
    let warm = rss_kib();
    // 3,000 rounds: 180,000 expansions, about 1.2 million aliases (about 5 MB when aliases
    // were never freed).
    for _ in 0..3000 {
        round(&rt, &uses);
    }
    let after = rss_kib();
    assert!(
        after <= warm + warm / 20 + 512,
        "RSS grew from {warm} KiB to {after} KiB"
    );
}
