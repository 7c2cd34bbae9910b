//! Property tests for issue 15's data: `write` then `read` round-trips every generated value,
//! vectors and cyclic structures included (compared with `equal?`, which terminates on cycles);
//! `vector->list`/`list->vector` round-trip; printing and comparing cyclic data ends.

use omega_lisp::{equal, read_one, set_car, set_cdr, write_string, OutputBuffer, Runtime, Value};
use proptest::prelude::*;

mod common;
use common::leaf_datum as leaf;

fn datum() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..6).prop_map(Value::list),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::vector),
            (prop::collection::vec(inner.clone(), 1..4), inner.clone())
                .prop_filter("improper tail", |(_, t)| !matches!(
                    t,
                    Value::Nil | Value::Pair(_)
                ))
                .prop_map(|(items, tail)| Value::list_with_tail(items, tail)),
            prop::collection::vec((leaf(), inner), 0..3).prop_map(Value::map),
        ]
    })
}

/// Every pair and vector reachable from `v` (each once), in a fixed order.
fn containers(v: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut work = vec![v.clone()];
    while let Some(x) = work.pop() {
        if matches!(x, Value::Pair(_) | Value::Vector(_))
            && out.iter().any(|o| omega_lisp::eq(o, &x))
        {
            continue;
        }
        match &x {
            Value::Pair(p) => {
                work.push(p.cdr());
                work.push(p.car());
                out.push(x.clone());
            }
            Value::Vector(items) => {
                work.extend(items.to_vec().into_iter().rev());
                out.push(x.clone());
            }
            Value::Map(m) => {
                for (_, val) in m.iter() {
                    work.push(val.clone());
                }
            }
            _ => {}
        }
    }
    out
}

/// Applies `edits` (container index, slot, target index): points a slot of one container at
/// another, making shared and cyclic structure.
fn mutate(v: &Value, edits: &[(usize, usize, usize)]) {
    let nodes = containers(v);
    if nodes.is_empty() {
        return;
    }
    for &(a, slot, b) in edits {
        let target = nodes[b % nodes.len()].clone();
        match &nodes[a % nodes.len()] {
            Value::Pair(p) if slot % 2 == 0 => set_car(p, target),
            Value::Pair(p) => set_cdr(p, target),
            Value::Vector(items) if !items.is_empty() => {
                items.set(slot % items.len(), target);
            }
            _ => {}
        }
    }
}

fn runtime() -> Runtime {
    Runtime::builder().output(OutputBuffer::new()).build()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn write_read_round_trips_vectors_and_cycles(
        v in datum(),
        edits in prop::collection::vec((0usize..64, 0usize..8, 0usize..64), 0..4),
    ) {
        mutate(&v, &edits);
        let text = write_string(&v);
        let back = match read_one(&text, "<p>") {
            Ok(back) => back,
            // Documented (README, reader.rs `patch_label`): a cycle through a map's key or
            // value cannot be rebuilt, because maps are immutable; `read` names the label.
            // Found by this property once mutations could close a cycle through a map.
            Err(e) if e.message().contains("(maps are immutable)") => {
                prop_assert!(text.contains('{'), "{}: {}", text, e);
                prop_assert_eq!(e.kind(), &omega_lisp::ErrorKind::Syntax);
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("{text}: {e}"))),
        };
        prop_assert!(equal(&back, &v), "text: {}\nback: {}", text, write_string(&back));
        prop_assert_eq!(write_string(&back), text);
    }

    #[test]
    fn vector_list_round_trip(v in prop::collection::vec(datum(), 0..12)) {
        let list = Value::list(v.clone());
        let rt = runtime();
        let src = format!(
            "(let ((l '{})) (list (equal? (vector->list (list->vector l)) l) \
             (equal? (list->vector (vector->list (list->vector l))) (list->vector l)) \
             (= (vector-length (list->vector l)) (length l))))",
            write_string(&list)
        );
        let r = rt.eval_sync(&src, "<p>").map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
        prop_assert_eq!(write_string(&r), "(#t #t #t)");
    }

    #[test]
    fn cyclic_values_print_compare_and_convert_in_bounded_time(
        v in datum(),
        edits in prop::collection::vec((0usize..64, 0usize..8, 0usize..64), 1..6),
    ) {
        mutate(&v, &edits);
        let rt = runtime();
        rt.set_global("x", v.clone());
        let r = rt
            .eval_sync(
                "(list (equal? x x) (string? (str x)) (list? (list x)) \
                  (string? (try (json-stringify x) (catch e \"no\"))) \
                  (boolean? (list? x)))",
                "<p>",
            )
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(write_string(&r), "(#t #t #t #t #t)");
    }
}
