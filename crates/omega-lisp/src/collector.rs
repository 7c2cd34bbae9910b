//! The cycle collector: reclaims values that are reachable only through reference cycles.
//!
//! Values are reference counted (`Rc`); that frees everything except cycles. Maps, strings,
//! closures and errors are immutable once built, and a new pair or vector only refers to values
//! that existed before it, so a cycle is always closed by a *mutation*: of a [`Value::Cell`] (a
//! captured, assigned variable, e.g. the self-reference of a named `let` or `letrec`), of a
//! pair (`set-car!`/`set-cdr!`), of a vector (`vector-set!`, `vector-fill!`, `vector-copy!`),
//! or of a [`Foreign`] object that holds values ([`Foreign::holds_values`], e.g. a record).
//! Those mutable objects are the *candidates*, registered (as weak references) in a per-thread
//! registry:
//!
//! - a cell or a value-holding foreign object when it is created;
//! - a pair each time a heap value is stored into it by `set-car!`/`set-cdr!` (pairs have no
//!   room for a flag; duplicates are merged at the next collection);
//! - a vector the first time a heap value is stored into it after creation (it keeps a flag and
//!   stays registered while alive).
//!
//! A pair or vector never mutated (or only given immediates) cannot close a cycle and is never
//! registered, so ordinary list code pays nothing.
//!
//! # The algorithm (synchronous trial deletion, after Bacon and Rajan)
//!
//! 1. Take the live candidates and everything reachable from them through pairs, maps,
//!    closures, cells, errors and traced foreign objects: the *subgraph*.
//! 2. Count, for each object of the subgraph, the strong references that come from inside the
//!    subgraph. An object whose strong count is larger is referenced from outside — from a VM
//!    stack, a global, a suspended task, a value the host holds — and is live; so is everything
//!    reachable from it.
//! 3. Everything else is garbage: every reference to it comes from other garbage. Each garbage
//!    candidate is emptied (a cell's value, a pair's car and cdr, a vector's elements; a foreign
//!    object is asked to [`Foreign::clear_values`]), which breaks every garbage cycle (each
//!    passes through the candidate whose mutation closed it); reference counting then frees
//!    the rest.
//!
//! # Roots and what a host must do
//!
//! There is no root set to maintain: any strong reference that the collector cannot see is a
//! root by construction. A host keeps a [`Value`] alive simply by holding it (or a clone); it
//! never needs to register anything. An edge the collector does not know about (an object it
//! cannot inspect, e.g. a cell borrowed at that moment, or a host closure in a native) can only
//! make it keep more, never free something in use. A foreign type that holds Lisp values
//! which may refer back to it must implement `holds_values`, `trace` and `clear_values`, or
//! cycles through it are not reclaimed.
//!
//! # When it collects
//!
//! At the VM's safe points (the per-step hook's slow path, every `yield_interval` steps, see
//! `vm.rs` invariant 4), when the registry has grown past a threshold: twice the candidates that
//! survived the previous collection plus an eighth of the live objects it visited (at least
//! [`MIN_THRESHOLD`]). Each registration thus pays for a bounded amount of collection work on
//! live objects (amortised O(1); garbage visited is freed, so paid for by its allocation), and
//! garbage stays proportional to the live heap. [`collect`] runs one collection now.
//!
//! # Invariants
//!
//! 1. During a collection no Lisp code runs and nothing is freed until the analysis is done; the
//!    collector holds exactly one strong reference to each object of the subgraph, which it
//!    subtracts from the counts.
//! 2. Only real strong references are counted as internal edges.
//! 3. An object reached through an edge while its strong count is 1 is owned by its referrer
//!    alone; it is folded into the referrer's node (same liveness) instead of getting one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use crate::value::{Foreign, LispVector, Pair, TaskValue, Value};

/// The registry size below which no collection is started.
pub const MIN_THRESHOLD: usize = 1024;

/// A registered candidate.
enum Candidate {
    Cell(Weak<RefCell<Value>>),
    Foreign(Weak<Box<dyn Foreign>>),
    Task(Weak<TaskValue>),
    Pair(Weak<Pair>),
    Vector(Weak<LispVector>),
}

impl Candidate {
    fn upgrade(&self) -> Option<Value> {
        match self {
            Candidate::Cell(w) => w.upgrade().map(Value::Cell),
            Candidate::Foreign(w) => w.upgrade().map(Value::Foreign),
            Candidate::Task(w) => w.upgrade().map(Value::Task),
            Candidate::Pair(w) => w.upgrade().map(Value::Pair),
            Candidate::Vector(w) => w.upgrade().map(Value::Vector),
        }
    }

    /// The candidate for a value of a mutable kind.
    fn of(v: &Value) -> Option<Candidate> {
        match v {
            Value::Cell(c) => Some(Candidate::Cell(Rc::downgrade(c))),
            Value::Foreign(f) => Some(Candidate::Foreign(Rc::downgrade(f))),
            Value::Task(t) => Some(Candidate::Task(Rc::downgrade(t))),
            Value::Pair(p) => Some(Candidate::Pair(Rc::downgrade(p))),
            Value::Vector(v) => Some(Candidate::Vector(Rc::downgrade(v))),
            _ => None,
        }
    }
}

struct Registry {
    candidates: Vec<Candidate>,
    threshold: usize,
    stats: CollectorStats,
}

/// Counters of the collector on this thread (for tests and introspection).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CollectorStats {
    /// Collections run.
    pub collections: u64,
    /// Candidates (cells, foreign objects) found to be garbage and emptied, in total.
    pub reclaimed: u64,
    /// Candidates registered now (live or not yet pruned).
    pub registered: usize,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = const {
        RefCell::new(Registry {
            candidates: Vec::new(),
            threshold: MIN_THRESHOLD,
            stats: CollectorStats { collections: 0, reclaimed: 0, registered: 0 },
        })
    };
}

/// A pass when the thread exits. Garbage cycles wait for the next pass on their thread; on a
/// thread that ends, there is none, so what its runtimes left in cycles stayed allocated for
/// the life of the process — ~1.5 KB per thread that built a runtime, found by an outside
/// probe that built one on each of 4,000 short threads.
///
/// Armed ([`arm_exit_pass`]) by every runtime built on the thread, after the symbol table has
/// been made there and after the registry, which arming touches first: thread-local
/// destructors run in the reverse order of their registration, so this one runs while those
/// still exist.
struct ExitPass;

impl Drop for ExitPass {
    fn drop(&mut self) {
        if REGISTRY.try_with(|_| ()).is_ok() {
            collect();
        }
    }
}

thread_local! {
    static EXIT_PASS: ExitPass = const { ExitPass };
}

/// Makes sure this thread runs a collection when it exits (see `ExitPass`).
pub(crate) fn arm_exit_pass() {
    // The registry's destructor registered first (a runtime may not have registered anything
    // yet), so that it runs after this pass.
    let _ = REGISTRY.try_with(|_| ());
    let _ = EXIT_PASS.try_with(|_| ());
}

fn register(c: Candidate) {
    REGISTRY.with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            r.candidates.push(c);
        }
    });
}

/// A new cell holding `v`, registered as a candidate.
pub(crate) fn new_cell(v: Value) -> Value {
    let rc = Rc::new(RefCell::new(v));
    register(Candidate::Cell(Rc::downgrade(&rc)));
    Value::Cell(rc)
}

/// Registers a foreign object that holds values.
pub(crate) fn register_foreign(rc: &Rc<Box<dyn Foreign>>) {
    register(Candidate::Foreign(Rc::downgrade(rc)));
}

/// Registers a task value whose result or error now holds heap values.
pub(crate) fn register_task(rc: &Rc<TaskValue>) {
    register(Candidate::Task(Rc::downgrade(rc)));
}

/// Registers a pair a heap value was just stored into (`set-car!`/`set-cdr!`).
pub(crate) fn register_pair(rc: &Rc<Pair>) {
    register(Candidate::Pair(Rc::downgrade(rc)));
}

/// Registers a vector a heap value was stored into for the first time.
pub(crate) fn register_vector(rc: &Rc<LispVector>) {
    register(Candidate::Vector(Rc::downgrade(rc)));
}

/// The collector's counters on this thread.
pub fn stats() -> CollectorStats {
    REGISTRY.with(|r| {
        let r = r.borrow();
        CollectorStats {
            registered: r.candidates.len(),
            ..r.stats
        }
    })
}

/// Collects if the registry has grown past its threshold (called at VM safe points).
#[inline]
pub(crate) fn maybe_collect() {
    let due = REGISTRY.with(|r| {
        r.try_borrow()
            .is_ok_and(|r| r.candidates.len() >= r.threshold)
    });
    if due {
        collect();
    }
}

/// One node of the subgraph: the collector's own strong reference and its counts.
struct Node {
    value: Value,
    /// Strong references from other nodes of the subgraph.
    internal: usize,
    /// Its children could not be inspected (treated as referenced from outside).
    opaque: bool,
    live: bool,
    /// Its out-edges are `edges[edge_start .. next node's edge_start]`.
    edge_start: usize,
}

/// The address that identifies a heap object, if `v` is one the collector traverses.
fn identity(v: &Value) -> Option<usize> {
    match v {
        Value::Pair(_)
        | Value::Vector(_)
        | Value::Map(_)
        | Value::Closure(_)
        | Value::Cell(_)
        | Value::Error(_)
        | Value::Foreign(_)
        | Value::Task(_) => v.heap_address(),
        _ => None,
    }
}

fn strong_count(v: &Value) -> usize {
    match v {
        Value::Pair(r) => Rc::strong_count(r),
        Value::Vector(r) => Rc::strong_count(r),
        Value::Map(r) => Rc::strong_count(r),
        Value::Closure(r) => Rc::strong_count(r),
        Value::Cell(r) => Rc::strong_count(r),
        Value::Error(r) => Rc::strong_count(r),
        Value::Foreign(r) => Rc::strong_count(r),
        Value::Task(r) => Rc::strong_count(r),
        _ => usize::MAX,
    }
}

/// Calls `visit` on each value `v` holds a strong reference to; `false` if `v` could not be
/// inspected.
fn children(v: &Value, visit: &mut dyn FnMut(&Value)) -> bool {
    match v {
        Value::Pair(p) => {
            visit(&p.car());
            visit(&p.cdr());
        }
        Value::Vector(v) => return v.try_for_each(visit),
        Value::Map(m) => {
            for (k, x) in m.iter() {
                visit(&k.0);
                visit(x);
            }
        }
        Value::Closure(c) => c.free.iter().for_each(visit),
        Value::Cell(c) => match c.try_borrow() {
            Ok(x) => visit(&x),
            Err(_) => return false,
        },
        Value::Error(e) => e.irritants.iter().for_each(visit),
        Value::Foreign(f) => return f.trace(visit),
        Value::Task(t) => return t.trace(visit),
        _ => {}
    }
    true
}

/// Runs one collection now; returns how many candidates were found to be garbage.
pub fn collect() -> usize {
    let Some(candidates) = REGISTRY.with(|r| {
        r.try_borrow_mut()
            .ok()
            .map(|mut r| std::mem::take(&mut r.candidates))
    }) else {
        return 0;
    };
    let mut nodes: Vec<Node> = Vec::new();
    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut edges: Vec<usize> = Vec::new();
    let mut roots: Vec<usize> = Vec::new();
    for c in &candidates {
        if let Some(v) = c.upgrade() {
            if let Some(id) = identity(&v) {
                let i = *index.entry(id).or_insert_with(|| {
                    nodes.push(Node {
                        value: v,
                        internal: 0,
                        opaque: false,
                        live: false,
                        edge_start: 0,
                    });
                    nodes.len() - 1
                });
                roots.push(i);
            }
        }
    }
    drop(candidates);
    // A pair is registered at each mutation: keep one root per object.
    roots.sort_unstable();
    roots.dedup();

    // 1–2: the subgraph and its internal reference counts (nodes are processed in index order,
    // so each node's edges are contiguous). An object whose only strong reference is the edge
    // that reached it (count 1: an unshared pair of a list, say) is live exactly when that
    // referrer is, so it gets no node of its own: its children count as the referrer's
    // (invariant 3). That keeps long unshared lists out of the index.
    let mut i = 0;
    let mut merged: Vec<Value> = Vec::new();
    while i < nodes.len() {
        nodes[i].edge_start = edges.len();
        let mut found: Vec<Value> = Vec::new();
        let mut ok = true;
        merged.push(nodes[i].value.clone());
        while let Some(v) = merged.pop() {
            ok &= children(&v, &mut |x| {
                if identity(x).is_some() {
                    if strong_count(x) == 1 {
                        merged.push(x.clone());
                    } else {
                        found.push(x.clone());
                    }
                }
            });
        }
        nodes[i].opaque = !ok;
        for x in found {
            let id = identity(&x).unwrap_or(0);
            let j = match index.get(&id) {
                Some(&j) => j,
                None => {
                    nodes.push(Node {
                        value: x,
                        internal: 0,
                        opaque: false,
                        live: false,
                        edge_start: 0,
                    });
                    index.insert(id, nodes.len() - 1);
                    nodes.len() - 1
                }
            };
            nodes[j].internal += 1;
            edges.push(j);
        }
        i += 1;
    }
    drop(index);

    // Referenced from outside (invariant 1: one strong reference is the collector's own).
    let mut work: Vec<usize> = Vec::new();
    for (i, n) in nodes.iter_mut().enumerate() {
        if n.opaque || strong_count(&n.value) > n.internal + 1 {
            n.live = true;
            work.push(i);
        }
    }
    while let Some(i) = work.pop() {
        let end = nodes.get(i + 1).map_or(edges.len(), |n| n.edge_start);
        for &j in &edges[nodes[i].edge_start..end] {
            if !nodes[j].live {
                nodes[j].live = true;
                work.push(j);
            }
        }
    }

    // 3: break the garbage cycles.
    let mut doomed: Vec<Value> = Vec::new();
    let mut reclaimed = 0usize;
    for n in nodes.iter().filter(|n| !n.live) {
        match &n.value {
            Value::Cell(c) => {
                if let Ok(mut x) = c.try_borrow_mut() {
                    doomed.push(std::mem::take(&mut *x));
                    reclaimed += 1;
                }
            }
            Value::Foreign(f) => {
                doomed.extend(f.clear_values());
                reclaimed += 1;
            }
            Value::Task(t) => {
                doomed.extend(t.clear_values());
                reclaimed += 1;
            }
            Value::Pair(p) => {
                doomed.push(p.replace_car(Value::Nil));
                doomed.push(p.replace_cdr(Value::Nil));
                reclaimed += 1;
            }
            Value::Vector(v) => {
                doomed.extend(v.take_all());
                reclaimed += 1;
            }
            _ => {}
        }
    }
    let survivors: Vec<Candidate> = roots
        .iter()
        .filter(|&&i| nodes[i].live)
        .filter_map(|&i| Candidate::of(&nodes[i].value))
        .collect();
    // Only what survived counts: garbage visited now must not postpone the next collection.
    let live_nodes = nodes.iter().filter(|n| n.live).count();
    REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        let added = std::mem::take(&mut r.candidates);
        r.threshold = (2 * survivors.len() + live_nodes / 8).max(MIN_THRESHOLD);
        r.candidates = survivors;
        r.candidates.extend(added);
        r.stats.collections += 1;
        r.stats.reclaimed += reclaimed as u64;
    });
    // Free outside the registry borrow; `teardown` keeps deep structures off the native stack.
    crate::value::teardown(nodes.into_iter().map(|n| n.value));
    crate::value::teardown(doomed);
    reclaimed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_ends_reclaims_the_cycles_its_runtime_left() {
        // A host function held only by a garbage cycle: its closure (and the flag's guard it
        // owns) is dropped exactly when the cycle is reclaimed.
        struct SetOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let freed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let guard = SetOnDrop(freed.clone());
        let seen = freed.clone();
        std::thread::spawn(move || {
            let rt = crate::Runtime::new();
            rt.register_fn("probe", move |_| {
                let _ = &guard;
                Ok(Value::Nil)
            });
            rt.eval_sync(
                "(define x (list probe)) (set-cdr! x x) (set! x #f) (set! probe #f)",
                "t",
            )
            .expect("runs");
            drop(rt);
            // No pass has run since: the cycle still holds the host function.
            assert!(!seen.load(std::sync::atomic::Ordering::SeqCst));
        })
        .join()
        .expect("the thread ends");
        assert!(
            freed.load(std::sync::atomic::Ordering::SeqCst),
            "the thread's exit pass reclaimed the cycle"
        );
    }

    #[test]
    fn a_self_referencing_cell_is_reclaimed() {
        collect();
        let before = stats().reclaimed;
        let cell = new_cell(Value::Nil);
        let weak = match &cell {
            Value::Cell(c) => Rc::downgrade(c),
            _ => unreachable!(),
        };
        if let Value::Cell(c) = &cell {
            *c.borrow_mut() = Value::list([cell.clone()]);
        }
        // Held from outside: kept.
        assert_eq!(collect(), 0);
        assert!(weak.upgrade().is_some());
        drop(cell);
        // Only the cycle holds it now.
        assert!(weak.upgrade().is_some());
        assert_eq!(collect(), 1);
        assert!(weak.upgrade().is_none());
        assert_eq!(stats().reclaimed, before + 1);
    }

    #[test]
    fn a_cycle_reachable_from_a_held_value_is_kept() {
        let cell = new_cell(Value::Nil);
        if let Value::Cell(c) = &cell {
            *c.borrow_mut() = Value::cons(Value::Int(7), cell.clone());
        }
        let holder = match &cell {
            Value::Cell(c) => c.borrow().clone(),
            _ => unreachable!(),
        };
        drop(cell);
        collect();
        // The pair held from outside keeps the cell and its contents.
        match &holder {
            Value::Pair(p) => match &p.cdr() {
                Value::Cell(c) => assert!(matches!(&*c.borrow(), Value::Pair(_))),
                other => panic!("not a cell: {other:?}"),
            },
            other => panic!("not a pair: {other:?}"),
        }
    }

    #[test]
    fn a_cycle_through_an_unshared_list_is_reclaimed_and_a_shared_one_kept() {
        // cell -> (1 2 (closure-like pair holding the cell)): the list's pairs are unshared.
        let cell = new_cell(Value::Nil);
        let weak = match &cell {
            Value::Cell(c) => Rc::downgrade(c),
            _ => unreachable!(),
        };
        if let Value::Cell(c) = &cell {
            *c.borrow_mut() =
                Value::list([Value::Int(1), Value::Int(2), Value::list([cell.clone()])]);
        }
        let shared_tail = match &cell {
            Value::Cell(c) => match &*c.borrow() {
                Value::Pair(p) => p.cdr(),
                _ => unreachable!(),
            },
            _ => unreachable!(),
        };
        drop(cell);
        // The tail held from outside keeps the cycle alive.
        collect();
        assert!(weak.upgrade().is_some());
        drop(shared_tail);
        collect();
        assert!(weak.upgrade().is_none());
    }

    #[test]
    fn a_pair_cycle_made_by_set_cdr_is_reclaimed_and_a_held_one_kept() {
        collect();
        let list = Value::list([Value::Int(1), Value::Int(2)]);
        let (first, weak) = match &list {
            Value::Pair(p) => (Rc::clone(p), Rc::downgrade(p)),
            _ => unreachable!(),
        };
        let last = match first.cdr() {
            Value::Pair(p) => p,
            _ => unreachable!(),
        };
        crate::value::set_cdr(&last, list.clone());
        drop(last);
        drop(first);
        // Held from outside: kept, and still circular.
        collect();
        assert!(weak.upgrade().is_some());
        assert_eq!(
            crate::value::list_length(&list),
            crate::value::ListShape::Circular
        );
        drop(list);
        assert!(weak.upgrade().is_some(), "only the cycle holds it now");
        assert!(collect() >= 1);
        assert!(weak.upgrade().is_none());
    }

    #[test]
    fn a_vector_holding_itself_is_reclaimed() {
        collect();
        let v = Value::vector(vec![Value::Nil, Value::Int(3)]);
        let weak = match &v {
            Value::Vector(items) => {
                items.set(0, Value::list([v.clone()]));
                Rc::downgrade(items)
            }
            _ => unreachable!(),
        };
        collect();
        assert!(weak.upgrade().is_some());
        drop(v);
        assert!(weak.upgrade().is_some());
        assert!(collect() >= 1);
        assert!(weak.upgrade().is_none());
    }

    #[test]
    fn a_pair_mutated_many_times_is_one_candidate_after_a_collection() {
        collect();
        let p = Value::cons(Value::Nil, Value::Nil);
        if let Value::Pair(pair) = &p {
            for _ in 0..100 {
                crate::value::set_car(pair, Value::list([Value::Int(1)]));
            }
        }
        let before = stats().registered;
        assert!(before >= 100);
        collect();
        assert!(stats().registered <= before - 99, "duplicates merged");
        drop(p);
    }
}
