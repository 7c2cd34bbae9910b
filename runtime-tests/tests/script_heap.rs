//! Per-script heap limits through the Engine (issue 11, `ScriptOptions::max_heap_bytes`), from
//! a multi-threaded tokio host that installs the counting allocator, as a real host does.
//!
//! The limit is net bytes (allocated minus freed) while the script's tasks run: a bomb ends
//! with `:limit` naming the budget and its `finally` runs, the engine's other scripts are not
//! charged for it, a script that allocates and frees far more than its limit over time
//! completes, and the script's child tasks count against it.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use omega_lisp::{Data, Engine, ScriptOptions};
use omega_llm::MockProvider;

/// jemalloc with process-wide and per-thread byte counts: what the per-script limit needs.
#[global_allocator]
static ALLOC: omega_lisp::heap::CountingAlloc = omega_lisp::heap::counting_alloc();

const MIB: usize = 1 << 20;

fn engine() -> Engine {
    Engine::builder()
        .llm(Arc::new(MockProvider::new()))
        .output(std::io::sink())
        .build()
        .expect("an engine")
}

/// `(grow n)`: a list of `n` strings of 1,000 bytes, all held at once, and its length.
const GROW: &str = r#"(define (grow-onto xs n)
                         (if (= n 0) xs (grow-onto (cons (make-string 1000 #\x) xs) (- n 1))))
                       (define (grow n) (length (grow-onto '() n)))"#;

#[test]
fn the_counting_allocator_counts_per_thread() {
    assert!(omega_lisp::heap::counts_per_thread());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_heap_bomb_ends_with_limit_and_finally_while_twenty_other_scripts_complete() {
    let engine = engine();
    let cleaned = common::register_flag(&engine, "cleaned");
    // A million strings of 1,000 bytes (over 1 GB) against 32 MiB; the catch-all does not
    // stop the limit, the finally block runs.
    let bomb = engine
        .spawn(
            &format!(
                r#"{GROW}
                   (try (try (grow 1000000) (catch e :caught))
                        (finally (cleaned)))"#
            ),
            ScriptOptions::new()
                .name("bomb.lisp")
                .max_heap_bytes(32 * MIB),
        )
        .await
        .expect("spawned");
    // Twenty scripts on the same engine at the same time, each holding ~1.3 MB of strings
    // under a 4 MiB limit of its own: none is charged for the bomb's bytes.
    let mut others = Vec::new();
    for i in 0..20i64 {
        let src = format!(
            r#"(define (grow-y xs n)
                 (if (= n 0) xs (grow-y (cons (make-string 1000 #\y) xs) (- n 1))))
               (let ((kept (grow-y '() 1000)))
                 (list {i} (length kept) (llm.infer "q{i}") (string-length (car kept))))"#
        );
        let h = engine
            .spawn(
                &src,
                ScriptOptions::new()
                    .name(&format!("other-{i}.lisp"))
                    .max_heap_bytes(4 * MIB),
            )
            .await
            .expect("spawned");
        others.push((i, h));
    }
    for (i, h) in others {
        let v = h.await.expect("a script under its own limit completes");
        assert_eq!(
            v,
            Data::List(vec![
                Data::Int(i),
                Data::Int(1000),
                Data::Str(format!("echo: q{i}")),
                Data::Int(1000),
            ])
        );
    }
    let e = bomb.await.expect_err("over its heap limit");
    assert_eq!(e.kind(), "limit");
    assert_eq!(
        e.message(),
        format!("limit exceeded: script max_heap_bytes ({})", 32 * MIB)
    );
    assert!(cleaned.load(Ordering::SeqCst), "the bomb's finally ran");
    // The engine goes on.
    assert_eq!(
        engine.eval("(+ 1 2)", "after.lisp").await.expect("runs"),
        Data::Int(3)
    );
    engine.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocating_and_freeing_ten_times_the_limit_over_time_completes() {
    let engine = engine();
    // 8 MiB limit; each round holds 2,000 strings (~2.5 MB) then drops them: 40 rounds
    // allocate over 100 MB in all (more than ten times the limit), never more than one round
    // at once. Cumulative accounting would stop it in the fourth round.
    let v = engine
        .spawn(
            &format!(
                r#"{GROW}
                   (let loop ((round 0) (total 0))
                     (if (= round 40) total (loop (+ round 1) (+ total (grow 2000)))))"#
            ),
            ScriptOptions::new()
                .name("churn.lisp")
                .max_heap_bytes(8 * MIB),
        )
        .await
        .expect("spawned")
        .await
        .expect("net, not cumulative: it completes");
    assert_eq!(v, Data::Int(80_000));
    engine.shutdown("done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_tasks_allocations_count_against_the_parent_script() {
    let engine = engine();
    // Each child holds ~13 MB of strings until the parent has them all.
    let children = |n: usize| {
        format!(
            r#"{GROW}
               (define parts
                 (await-all (map (lambda (i)
                                   (async (lambda () (grow-onto '() 10000))))
                                 (range {n}))))
               (apply + (map length parts))"#
        )
    };
    // One child fits in 32 MiB ...
    let v = engine
        .spawn(
            &children(1),
            ScriptOptions::new()
                .name("one.lisp")
                .max_heap_bytes(32 * MIB),
        )
        .await
        .expect("spawned")
        .await
        .expect("one child fits");
    assert_eq!(v, Data::Int(10_000));
    // ... four do not: their bytes are the parent script's.
    let e = engine
        .spawn(
            &children(4),
            ScriptOptions::new()
                .name("four.lisp")
                .max_heap_bytes(32 * MIB),
        )
        .await
        .expect("spawned")
        .await
        .expect_err("the children's bytes count against the script");
    assert_eq!(e.kind(), "limit");
    assert_eq!(
        e.message(),
        format!("limit exceeded: script max_heap_bytes ({})", 32 * MIB)
    );
    // Many short children one after another: their fibers are credited back when they
    // end, and so is the scheduler's record of each, exactly what its spawn was charged
    // (budget.rs), so 100,000 of them fit in 1 MiB (at the ~30 bytes per awaited child
    // that stayed charged before, they needed 3 MB).
    let v = engine
        .spawn(
            r#"(let loop ((i 0) (sum 0))
                 (if (= i 100000) sum
                     (loop (+ i 1) (+ sum (await (async (lambda () (make-string 100 #\z) i)))))))"#,
            ScriptOptions::new().name("many.lisp").max_heap_bytes(MIB),
        )
        .await
        .expect("spawned")
        .await
        .expect("finished children leave nothing charged");
    assert_eq!(v, Data::Int((0..100_000).sum()));
    engine.shutdown("done").await;
}

/// Registers `held`: the bytes charged to the calling script so far.
fn register_held(engine: &Engine) {
    engine
        .register_fn("held", |_| {
            Ok(Data::Int(
                omega_lisp::heap::script_heap_held().expect("a heap limit is set"),
            ))
        })
        .expect("registered");
}

/// Children spawned one after another, each awaited (`awaited`) or left to end on its own
/// (`unawaited`): `n` of them, then `:ok`.
const CHILDREN: &str = r#"(define (awaited n)
                            (let loop ((i 0))
                              (if (< i n)
                                  (begin (await (async (lambda () (make-string 100 #\z) i)))
                                         (loop (+ i 1)))
                                  :ok)))
                          (define (unawaited n)
                            (let loop ((i 0))
                              (if (< i n)
                                  (begin (async (lambda () (make-string 100 #\z) i))
                                         (yield)
                                         (loop (+ i 1)))
                                  (begin (sleep 1) :ok))))"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_children_leave_nothing_charged_and_earn_no_credit() {
    let engine = engine();
    register_held(&engine);
    // Five readings of the charged count: after a warm-up, then after each batch of 20,000
    // children. Before the scheduler's record was credited back, each awaited child left
    // ~30 bytes charged and each unawaited one ~415 (600 KB and 8 MB a batch); crediting
    // the spawn's size up front credited ~450 bytes too many per child (-9 MB a batch).
    let v = engine
        .spawn(
            &format!(
                "{CHILDREN}
                 (awaited 100) (unawaited 100)
                 (define h0 (held))
                 (awaited 20000)
                 (define h1 (held))
                 (awaited 20000)
                 (define h2 (held))
                 (unawaited 20000)
                 (define h3 (held))
                 (unawaited 20000)
                 (list h0 h1 h2 h3 (held))"
            ),
            ScriptOptions::new()
                .name("flat.lisp")
                .max_heap_bytes(64 * MIB),
        )
        .await
        .expect("spawned")
        .await
        .expect("the children fit");
    let Data::List(held) = v else {
        panic!("a list of counts: {v:?}");
    };
    let held: Vec<i64> = held
        .iter()
        .map(|d| match d {
            Data::Int(n) => *n,
            other => panic!("a count: {other:?}"),
        })
        .collect();
    // Each batch moves the count by less than a KiB whatever its size (what the runtime's
    // shared tables happen to free during it); one byte per child would be 20 KB.
    for (batch, w) in held.windows(2).enumerate() {
        let moved = w[1] - w[0];
        assert!(
            moved.abs() < 4096,
            "batch {batch} of 20,000 children moved the charged count by {moved} bytes: {held:?}"
        );
    }
    engine.shutdown("done").await;
}
