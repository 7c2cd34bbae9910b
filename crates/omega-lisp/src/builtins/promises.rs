//! R7RS promises (SPEC §6.9): the promise object and the natives under the prelude's `delay`,
//! `delay-force`, `make-promise`, `force` and `promise?`.
//!
//! # Implementation details
//!
//! A promise is a foreign object in one of four states ([`PromiseState`]). `force` is Lisp
//! (so the thunks it calls can raise, suspend and be cancelled like any code) and follows
//! R7RS's reference implementation: forcing a `delay-force` promise calls its thunk, which
//! yields another promise, then *moves* that promise's state into the one being forced and
//! makes the other one forward to it (`%promise-update!`), and loops. A chain of a million
//! `delay-force`s (a lazy stream) is thus forced in a loop, in constant stack. Where R7RS
//! shares one mutable box between two promises, the second one forwards to the first, so
//! every strong reference is a real edge the cycle collector can count.
//!
//! # Invariants
//!
//! 1. States move only `Delay`/`DelayForce` → `Done` (the first value wins: a promise forced
//!    again re-entrantly by its own thunk keeps the value of whichever force finished first,
//!    R7RS) and `Delay`/`DelayForce`/`Done` → `Forward` (by `%promise-update!`). A promise
//!    never forwards to itself, so a forwarding chain ends.
//! 2. A promise holds exactly one value; `trace` visits it and `clear_values` takes it
//!    (collector invariant 2). Dropping a promise drops what it holds iteratively, even
//!    through chains of promises (see [`Promise`]'s `Drop`).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::builtins::def;
use crate::error::{LispError, LispResult};
use crate::state::State;
use crate::value::{Foreign, Value};

/// What a promise holds (invariant 1).
#[derive(Debug)]
enum PromiseState {
    /// Forced (or made by `make-promise`): its value.
    Done(Value),
    /// `(delay expr)`: the thunk computing the value.
    Delay(Value),
    /// `(delay-force expr)`: the thunk computing a promise to force in its place.
    DelayForce(Value),
    /// Shares the state of this other promise (R7RS's shared box).
    Forward(Value),
}

impl PromiseState {
    fn take_value(&mut self) -> Value {
        match std::mem::replace(self, PromiseState::Done(Value::Nil)) {
            PromiseState::Done(v)
            | PromiseState::Delay(v)
            | PromiseState::DelayForce(v)
            | PromiseState::Forward(v) => v,
        }
    }

    fn value(&self) -> &Value {
        match self {
            PromiseState::Done(v)
            | PromiseState::Delay(v)
            | PromiseState::DelayForce(v)
            | PromiseState::Forward(v) => v,
        }
    }
}

/// A promise (`delay`, `delay-force`, `make-promise`).
#[derive(Debug)]
pub(crate) struct Promise(RefCell<PromiseState>);

impl Foreign for Promise {
    fn type_name(&self) -> &str {
        "promise"
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn holds_values(&self) -> bool {
        true
    }
    fn trace(&self, visit: &mut dyn FnMut(&Value)) -> bool {
        match self.0.try_borrow() {
            Ok(s) => {
                visit(s.value());
                true
            }
            Err(_) => false,
        }
    }
    fn clear_values(&self) -> Vec<Value> {
        self.0
            .try_borrow_mut()
            .map(|mut s| vec![s.take_value()])
            .unwrap_or_default()
    }
}

thread_local! {
    /// Whether a promise's drop is under way on this thread, and what nested drops left for it.
    static DROPPING: Cell<bool> = const { Cell::new(false) };
    static DEFERRED: RefCell<Vec<Value>> = const { RefCell::new(Vec::new()) };
}

impl Drop for Promise {
    // Invariant 2: a promise whose thunk holds the next promise, a million deep, must not drop
    // recursively. The outermost drop tears its value down iteratively (`value::teardown`); a
    // promise dropped during that leaves its value on a per-thread list that the outermost drop
    // drains, so the native stack stays at one promise drop deep.
    fn drop(&mut self) {
        let v = self.0.get_mut().take_value();
        if v.is_immediate() {
            return;
        }
        let nested = DROPPING.try_with(|d| d.replace(true)).unwrap_or(true);
        if nested {
            // Left for the outermost drop (or dropped here if the thread is ending).
            let _ = DEFERRED.try_with(move |q| q.borrow_mut().push(v));
            return;
        }
        crate::value::teardown([v]);
        while let Some(batch) = DEFERRED
            .try_with(|q| std::mem::take(&mut *q.borrow_mut()))
            .ok()
            .filter(|b| !b.is_empty())
        {
            crate::value::teardown(batch);
        }
        let _ = DROPPING.try_with(|d| d.set(false));
    }
}

fn promise(v: &Value) -> Option<&Promise> {
    match v {
        Value::Foreign(f) => f.as_any().downcast_ref::<Promise>(),
        _ => None,
    }
}

fn promise_arg<'a>(who: &str, v: &'a Value) -> LispResult<&'a Promise> {
    promise(v).ok_or_else(|| LispError::type_error(who, "a promise", v))
}

fn new_promise(state: PromiseState) -> Value {
    Value::foreign(Promise(RefCell::new(state)))
}

/// The promise `p` forwards to, through the whole chain (invariant 1), as a value. The
/// promises on the way are pointed straight at it (path compression), so repeated lookups
/// through chains that `delay-force` can build stay cheap: a native step stays short.
fn root(p: &Value) -> Value {
    let mut path = Vec::new();
    let mut cur = p.clone();
    loop {
        let next = match promise(&cur).map(|pr| pr.0.borrow()) {
            Some(s) => match &*s {
                PromiseState::Forward(next) => next.clone(),
                _ => break,
            },
            None => break,
        };
        path.push(std::mem::replace(&mut cur, next));
    }
    // The last one on the path points at `cur` already.
    path.pop();
    for q in &path {
        if let Some(pr) = promise(q) {
            let old =
                std::mem::replace(&mut *pr.0.borrow_mut(), PromiseState::Forward(cur.clone()));
            drop(old);
        }
    }
    cur
}

fn same(a: &Value, b: &Value) -> bool {
    matches!((a, b), (Value::Foreign(x), Value::Foreign(y)) if Rc::ptr_eq(x, y))
}

/// `(promise? x)`.
fn promise_p(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Bool(promise(&a[0]).is_some()))
}

/// `(make-promise x)`: a forced promise of `x` (`x` itself if it is a promise).
fn make_promise(_: &mut State, a: &[Value]) -> LispResult<Value> {
    if promise(&a[0]).is_some() {
        return Ok(a[0].clone());
    }
    Ok(new_promise(PromiseState::Done(a[0].clone())))
}

/// `(%make-lazy thunk delay?)`: the promise of `delay` (`#t`) or `delay-force` (`#f`).
fn make_lazy(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let thunk = a[0].clone();
    Ok(new_promise(if a[1].is_truthy() {
        PromiseState::Delay(thunk)
    } else {
        PromiseState::DelayForce(thunk)
    }))
}

/// `(%promise-root p)`: the promise whose state `p` shares.
fn promise_root(_: &mut State, a: &[Value]) -> LispResult<Value> {
    promise_arg("force", &a[0])?;
    Ok(root(&a[0]))
}

/// `(%promise-step p)` on a root: `(#t . value)` if forced, else `(delay? . thunk)` with
/// `delay?` the keyword `:delay` or `:delay-force`.
fn promise_step(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let p = promise_arg("force", &a[0])?;
    let s = p.0.borrow();
    Ok(match &*s {
        PromiseState::Done(v) => Value::cons(Value::Bool(true), v.clone()),
        PromiseState::Delay(t) => Value::cons(Value::keyword("delay"), t.clone()),
        PromiseState::DelayForce(t) => Value::cons(Value::keyword("delay-force"), t.clone()),
        PromiseState::Forward(_) => Value::cons(Value::Bool(false), Value::Nil),
    })
}

/// `(%promise-resolve! p v)`: the value of `delay` promise `p` (a root), unless a re-entrant
/// force already gave it one (invariant 1).
fn promise_resolve(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let p = promise_arg("force", &a[0])?;
    let mut s = p.0.borrow_mut();
    if !matches!(&*s, PromiseState::Done(_) | PromiseState::Forward(_)) {
        let old = std::mem::replace(&mut *s, PromiseState::Done(a[1].clone()));
        drop(s);
        drop(old);
    }
    Ok(Value::Nil)
}

/// `(%promise-update! new old)`: R7RS `promise-update!` — `old` (a root being forced) takes
/// the state of the promise `new` that its `delay-force` thunk yielded, and `new` forwards to
/// `old` from now on.
fn promise_update(_: &mut State, a: &[Value]) -> LispResult<Value> {
    if promise(&a[0]).is_none() {
        return Err(LispError::type_error(
            "force",
            "the expression of delay-force to yield a promise",
            &a[0],
        ));
    }
    let old = promise_arg("force", &a[1])?;
    if !matches!(
        &*old.0.borrow(),
        PromiseState::Delay(_) | PromiseState::DelayForce(_)
    ) {
        // Forced re-entrantly meanwhile: the first value wins.
        return Ok(Value::Nil);
    }
    let new_root = root(&a[0]);
    if same(&new_root, &a[1]) {
        // `(delay-force p)` yielding `p` itself: forcing it again is R7RS's endless loop,
        // bounded here by the step limits.
        return Ok(Value::Nil);
    }
    let Some(new) = promise(&new_root) else {
        return Ok(Value::Nil);
    };
    let moved = std::mem::replace(
        &mut *new.0.borrow_mut(),
        PromiseState::Forward(a[1].clone()),
    );
    let moved = match moved {
        PromiseState::Done(v) => {
            // Keep `new` answering directly too (it is forced already).
            *new.0.borrow_mut() = PromiseState::Done(v.clone());
            PromiseState::Done(v)
        }
        other => other,
    };
    let previous = std::mem::replace(&mut *old.0.borrow_mut(), moved);
    drop(previous);
    Ok(Value::Nil)
}

pub(crate) fn install(st: &mut State) {
    def(st, "promise?", 1, Some(1), promise_p);
    def(st, "make-promise", 1, Some(1), make_promise);
    def(st, "%make-lazy", 2, Some(2), make_lazy);
    def(st, "%promise-root", 1, Some(1), promise_root);
    def(st, "%promise-step", 1, Some(1), promise_step);
    def(st, "%promise-resolve!", 2, Some(2), promise_resolve);
    def(st, "%promise-update!", 2, Some(2), promise_update);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::collect;

    fn weak(v: &Value) -> std::rc::Weak<Box<dyn Foreign>> {
        match v {
            Value::Foreign(f) => Rc::downgrade(f),
            _ => unreachable!("a promise is a foreign object"),
        }
    }

    #[test]
    fn a_self_referential_promise_is_collected() {
        collect();
        let p = new_promise(PromiseState::Done(Value::Nil));
        if let Some(pr) = promise(&p) {
            *pr.0.borrow_mut() = PromiseState::Delay(Value::list([p.clone()]));
        }
        let w = weak(&p);
        // Held from outside: kept.
        collect();
        assert!(w.upgrade().is_some());
        drop(p);
        assert!(w.upgrade().is_some(), "only the cycle holds it");
        assert!(collect() >= 1);
        assert!(
            w.upgrade().is_none(),
            "the cycle through the promise was reclaimed"
        );
    }

    #[test]
    fn two_promises_forwarding_in_a_cycle_through_a_value_are_collected() {
        collect();
        let a = new_promise(PromiseState::Done(Value::Nil));
        let b = new_promise(PromiseState::Forward(a.clone()));
        if let Some(pr) = promise(&a) {
            *pr.0.borrow_mut() = PromiseState::Done(Value::list([b.clone()]));
        }
        let (wa, wb) = (weak(&a), weak(&b));
        drop((a, b));
        collect();
        assert!(wa.upgrade().is_none() && wb.upgrade().is_none());
    }

    #[test]
    fn dropping_a_million_nested_promises_does_not_recurse() {
        let mut p = new_promise(PromiseState::Done(Value::Int(0)));
        for _ in 0..1_000_000 {
            p = new_promise(PromiseState::Done(p));
        }
        drop(p);
        assert!(DEFERRED.with(|q| q.borrow().is_empty()));
        assert!(!DROPPING.with(Cell::get));
    }

    #[test]
    fn root_follows_a_forwarding_chain() {
        let a = new_promise(PromiseState::Done(Value::Int(1)));
        let b = new_promise(PromiseState::Forward(a.clone()));
        let c = new_promise(PromiseState::Forward(b.clone()));
        assert!(same(&root(&c), &a));
        assert!(same(&root(&a), &a));
        // Compressed: c points straight at a now.
        let direct = promise(&c).map(|pr| match &*pr.0.borrow() {
            PromiseState::Forward(next) => same(next, &a),
            _ => false,
        });
        assert_eq!(direct, Some(true));
    }

    #[test]
    fn a_long_forwarding_chain_is_walked_once() {
        let first = new_promise(PromiseState::Done(Value::Int(1)));
        let mut last = first.clone();
        let mut all = vec![first.clone()];
        for _ in 0..100_000 {
            last = new_promise(PromiseState::Forward(last));
            all.push(last.clone());
        }
        assert!(same(&root(&last), &first));
        // Every promise on the chain now forwards to the root directly.
        for q in &all[1..] {
            let direct = promise(q).map(|pr| match &*pr.0.borrow() {
                PromiseState::Forward(next) => same(next, &first),
                _ => false,
            });
            assert_eq!(direct, Some(true));
        }
    }
}
