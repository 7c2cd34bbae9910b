//! The Lisp [`Value`]: a 16-byte enum; integers, floats, booleans, nil, symbols and keywords are
//! inline, everything else is behind an `Rc`.
//!
//! # Invariants
//!
//! 1. Strings, maps, closures and errors are immutable once built; sharing them is always safe.
//!    Pairs (`set-car!`/`set-cdr!`) and vectors are mutable: a mutation that stores a heap value
//!    registers the object with the cycle collector (`collector.rs`), because it may close a
//!    cycle. Data may therefore be cyclic; every walk over pairs/vectors that can meet Lisp data
//!    must terminate on cycles (a bound, a tortoise-and-hare check, or a visited set).
//!    A mutable pair or vector used as a map key and then mutated leaves the map's order stale
//!    (lookups may miss it; nothing worse): use immutable keys.
//! 2. Dropping a long or deep list never recurses on the native stack (see `Drop for Pair`).
//! 3. `Value::Cell` never escapes to Lisp code: the compiler only uses it for variables that are
//!    both captured by a closure and assigned (or bound by `letrec`).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use crate::bytecode::Proto;
use crate::error::{ErrorData, LispError};
use crate::native::Native;
use crate::symbol::Symbol;
pub use crate::task::TaskValue;

/// A Lisp value.
#[derive(Default)]
pub enum Value {
    /// The empty list, `nil` / `()`. Falsy.
    #[default]
    Nil,
    /// `#t` / `#f`. Only `#f` is falsy.
    Bool(bool),
    /// A 64-bit integer; arithmetic overflow is an `:overflow` error.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A character (a Unicode scalar value, `#\a`); immediate, compared by code point.
    Char(char),
    /// An interned symbol.
    Symbol(Symbol),
    /// An interned keyword (`:name`; the symbol holds the name without the colon).
    Keyword(Symbol),
    /// An immutable string.
    Str(Rc<String>),
    /// A cons cell (mutable through `set-car!`/`set-cdr!`).
    Pair(Rc<Pair>),
    /// A vector (`#(1 2 3)`): a mutable, fixed-length array of values.
    Vector(Rc<LispVector>),
    /// An immutable map (`{:a 1}`), ordered by key.
    Map(Rc<LispMap>),
    /// A Lisp closure.
    Closure(Rc<Closure>),
    /// A native (Rust) procedure.
    Native(Rc<Native>),
    /// An error value (what `catch` binds).
    Error(Rc<ErrorData>),
    /// A host object (ports, promises, records, handles; tasks have [`Value::Task`]).
    /// Double-boxed so `Value` stays 16 bytes (a fat `Rc<dyn _>` would make every value 24).
    Foreign(Rc<Box<dyn Foreign>>),
    /// A task (what `async` returns): its own variant rather than a [`Value::Foreign`], so
    /// that a suspended task's value is one allocation (SPEC §9, memory per task).
    Task(Rc<TaskValue>),
    /// Internal: a mutable box for a captured, assigned variable. Never visible to Lisp code.
    #[doc(hidden)]
    Cell(Rc<RefCell<Value>>),
}

impl Clone for Value {
    #[inline(always)]
    fn clone(&self) -> Value {
        match self {
            Value::Nil => Value::Nil,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(i) => Value::Int(*i),
            Value::Float(f) => Value::Float(*f),
            Value::Char(c) => Value::Char(*c),
            Value::Symbol(s) => Value::Symbol(*s),
            Value::Keyword(s) => Value::Keyword(*s),
            Value::Str(r) => Value::Str(Rc::clone(r)),
            Value::Pair(r) => Value::Pair(Rc::clone(r)),
            Value::Vector(r) => Value::Vector(Rc::clone(r)),
            Value::Map(r) => Value::Map(Rc::clone(r)),
            Value::Closure(r) => Value::Closure(Rc::clone(r)),
            Value::Native(r) => Value::Native(Rc::clone(r)),
            Value::Error(r) => Value::Error(Rc::clone(r)),
            Value::Foreign(r) => Value::Foreign(Rc::clone(r)),
            Value::Task(r) => Value::Task(Rc::clone(r)),
            Value::Cell(r) => Value::Cell(Rc::clone(r)),
        }
    }
}

/// A host object stored in a [`Value`] (e.g. a task handle).
pub trait Foreign: Any + fmt::Debug {
    /// The type name shown by the printer and in type errors (`task`).
    fn type_name(&self) -> &str;
    /// Upcast for downcasting to the concrete type.
    fn as_any(&self) -> &dyn Any;
    /// Whether this object holds Lisp values that may refer back to it (then it is registered
    /// with the cycle collector, see `collector.rs`, and must implement `trace` and
    /// `clear_values`). Default: no.
    fn holds_values(&self) -> bool {
        false
    }
    /// Calls `visit` on every Lisp value this object holds a strong reference to; `false` if
    /// they cannot be listed now (the object is then treated as referenced from outside).
    fn trace(&self, _visit: &mut dyn FnMut(&Value)) -> bool {
        true
    }
    /// Gives up the Lisp values this object holds (called by the cycle collector only when
    /// the object is unreachable garbage), returning them to be dropped.
    fn clear_values(&self) -> Vec<Value> {
        Vec::new()
    }
}

/// A cons cell. Its two fields are `Cell`s so that `set-car!`/`set-cdr!` can change them
/// through a shared `Rc` while the payload stays two values (32 bytes); read them with
/// [`Pair::car`]/[`Pair::cdr`] (a clone), change them with [`set_car`]/[`set_cdr`] (which
/// register the pair with the cycle collector when a heap value is stored).
pub struct Pair {
    car: Cell<Value>,
    cdr: Cell<Value>,
}

impl Pair {
    /// A new pair.
    #[inline(always)]
    pub fn new(car: Value, cdr: Value) -> Pair {
        Pair {
            car: Cell::new(car),
            cdr: Cell::new(cdr),
        }
    }

    /// The head (a clone: one reference-count increment for heap values).
    #[inline(always)]
    pub fn car(&self) -> Value {
        peek(&self.car)
    }

    /// The tail (a clone).
    #[inline(always)]
    pub fn cdr(&self) -> Value {
        peek(&self.cdr)
    }

    /// The head when it is an integer (without cloning it).
    #[inline(always)]
    pub(crate) fn car_int(&self) -> Option<i64> {
        let v = self.car.replace(Value::Nil);
        let r = match v {
            Value::Int(x) => Some(x),
            _ => None,
        };
        // What comes back is the `Nil` put there just above: nothing to drop.
        std::mem::forget(self.car.replace(v));
        r
    }

    /// Whether the tail is `nil` (without cloning it).
    #[inline(always)]
    pub fn cdr_is_nil(&self) -> bool {
        let v = self.cdr.take();
        let r = v.is_nil();
        self.cdr.set(v);
        r
    }

    /// Replaces the head without registering with the collector (only for values that cannot
    /// close a cycle, or for the collector itself); returns the old head.
    pub(crate) fn replace_car(&self, v: Value) -> Value {
        self.car.replace(v)
    }

    /// Replaces the tail without registering; see [`Pair::replace_car`].
    pub(crate) fn replace_cdr(&self, v: Value) -> Value {
        self.cdr.replace(v)
    }
}

/// A clone of the value in `c`. No code runs between the `take` and the `set` (cloning a value
/// only bumps a reference count), so nobody can observe the placeholder.
///
/// The common kinds are put back rebuilt from their fields rather than moved back whole: a
/// move copies the bytes that only some kinds use (a character, a symbol) in pieces, and
/// reading those pieces back just after writing them stalled the CPU (measured in
/// `nqueens`' loop over a list: the one hottest instruction of `list_edge`).
#[inline(always)]
fn peek(c: &Cell<Value>) -> Value {
    let v = c.replace(Value::Nil);
    // What comes back from each `replace` below is the `Nil` put there just above: nothing
    // to drop.
    match v {
        Value::Nil => Value::Nil,
        Value::Int(x) => {
            std::mem::forget(c.replace(Value::Int(x)));
            Value::Int(x)
        }
        Value::Float(x) => {
            std::mem::forget(c.replace(Value::Float(x)));
            Value::Float(x)
        }
        Value::Pair(p) => {
            let r = Value::Pair(Rc::clone(&p));
            std::mem::forget(c.replace(Value::Pair(p)));
            r
        }
        v => {
            let r = v.clone();
            std::mem::forget(c.replace(v));
            r
        }
    }
}

/// `set-car!`: stores `v` as the head of `p`; a stored heap value makes `p` a cycle candidate.
pub fn set_car(p: &Rc<Pair>, v: Value) {
    if is_container(&v) {
        crate::collector::register_pair(p);
    }
    drop(p.replace_car(v));
}

/// `set-cdr!`: stores `v` as the tail of `p`; a stored heap value makes `p` a cycle candidate.
pub fn set_cdr(p: &Rc<Pair>, v: Value) {
    if is_container(&v) {
        crate::collector::register_pair(p);
    }
    drop(p.replace_cdr(v));
}

impl fmt::Debug for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::printer::write_string(&Value::cons(
            self.car(),
            self.cdr(),
        )))
    }
}

impl Drop for Pair {
    // Invariant 2: unlink iteratively so dropping a million-element (or million-deep) list does
    // not recurse once per cell.
    fn drop(&mut self) {
        if self.car.get_mut().is_immediate() && self.cdr.get_mut().is_immediate() {
            return;
        }
        if !is_container(self.car.get_mut()) {
            unlink_flat(self.cdr.take());
            return;
        }
        teardown([self.car.take(), self.cdr.take()]);
    }
}

/// Drops the tail `next` of a freed pair whose head holds no container: while the cells it
/// reaches are unshared and hold numbers, symbols or strings, they are unlinked one by one in a
/// loop, without the work list (one allocation) that [`teardown`] needs in general; the first
/// cell with a container in its head goes to `teardown`. Each cell freed here has a tail of
/// `nil` by then, so its own drop returns at once.
#[inline(never)]
fn unlink_flat(mut next: Value) {
    loop {
        match next {
            Value::Pair(rc) => match Rc::try_unwrap(rc) {
                Ok(mut p) => {
                    if is_container(p.car.get_mut()) {
                        teardown([p.car.take(), p.cdr.take()]);
                        return;
                    }
                    next = p.cdr.take();
                }
                // Shared: only its count drops.
                Err(_) => return,
            },
            other => {
                if is_container(&other) {
                    teardown([other]);
                }
                return;
            }
        }
    }
}

/// A vector: a fixed-length array of values, mutable in place (`vector-set!`). Registered with
/// the cycle collector the first time a heap value is stored into it after creation (see
/// [`LispVector::set`]); a new vector only refers to older values, so it cannot close a cycle
/// before that.
pub struct LispVector {
    items: RefCell<Vec<Value>>,
    /// Registered with the collector (it stays registered while alive).
    registered: Cell<bool>,
}

impl LispVector {
    /// A vector holding `items`.
    pub fn new(items: Vec<Value>) -> LispVector {
        LispVector {
            items: RefCell::new(items),
            registered: Cell::new(false),
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.items.borrow().len()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element at `i` (a clone), if in range.
    pub fn get(&self, i: usize) -> Option<Value> {
        self.items.borrow().get(i).cloned()
    }

    /// A copy of the elements `start..end` (clamped to the length).
    pub fn slice(&self, start: usize, end: usize) -> Vec<Value> {
        let items = self.items.borrow();
        let end = end.min(items.len());
        items[start.min(end)..end].to_vec()
    }

    /// A copy of every element.
    pub fn to_vec(&self) -> Vec<Value> {
        self.items.borrow().clone()
    }

    /// Stores `v` at `i` (the caller checked the index: out of range does nothing and returns
    /// `false`). A heap value registers the vector with the collector.
    pub fn set(self: &Rc<Self>, i: usize, v: Value) -> bool {
        if is_container(&v) {
            self.note_heap_store();
        }
        let old = match self.items.borrow_mut().get_mut(i) {
            Some(slot) => std::mem::replace(slot, v),
            None => return false,
        };
        drop(old);
        true
    }

    /// Stores `values` from index `at` on (the caller checked the range); registers as
    /// [`LispVector::set`] does.
    pub fn set_range(self: &Rc<Self>, at: usize, values: Vec<Value>) {
        if values.iter().any(is_container) {
            self.note_heap_store();
        }
        let mut old = Vec::with_capacity(values.len());
        {
            let mut items = self.items.borrow_mut();
            for (slot, v) in items.iter_mut().skip(at).zip(values) {
                old.push(std::mem::replace(slot, v));
            }
        }
        teardown(old);
    }

    fn note_heap_store(self: &Rc<Self>) {
        if !self.registered.get() {
            self.registered.set(true);
            crate::collector::register_vector(self);
        }
    }

    /// Calls `f` on each element if the vector is not being mutated; `false` otherwise.
    pub(crate) fn try_for_each(&self, f: &mut dyn FnMut(&Value)) -> bool {
        match self.items.try_borrow() {
            Ok(items) => {
                items.iter().for_each(f);
                true
            }
            Err(_) => false,
        }
    }

    /// Empties the vector, returning its elements (the collector breaks garbage cycles so).
    pub(crate) fn take_all(&self) -> Vec<Value> {
        match self.items.try_borrow_mut() {
            Ok(mut items) => std::mem::take(&mut *items),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for LispVector {
    // Invariant 2: elements drop iteratively.
    fn drop(&mut self) {
        let items = std::mem::take(self.items.get_mut());
        if items.iter().any(is_container) {
            teardown(items);
        }
    }
}

impl fmt::Debug for LispVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::printer::write_string(&Value::Vector(Rc::new(
            LispVector::new(self.to_vec()),
        ))))
    }
}

/// Drops `values` without native recursion (invariant 2): a value whose heap object this is the
/// last strong reference to has its children moved onto an explicit work list before the
/// emptied object is freed, so chains of pairs, maps, closures, cells and errors of any depth
/// drop in constant native stack.
pub(crate) fn teardown(values: impl IntoIterator<Item = Value>) {
    let mut work: Vec<Value> = values.into_iter().filter(is_container).collect();
    while let Some(v) = work.pop() {
        let mut push = |x: Value| {
            if is_container(&x) {
                work.push(x);
            }
        };
        match v {
            Value::Pair(rc) => {
                if let Ok(p) = Rc::try_unwrap(rc) {
                    push(p.car.take());
                    push(p.cdr.take());
                }
            }
            Value::Vector(rc) => {
                if let Ok(vector) = Rc::try_unwrap(rc) {
                    vector.take_all().into_iter().for_each(push);
                }
            }
            Value::Closure(rc) => {
                if let Ok(mut c) = Rc::try_unwrap(rc) {
                    std::mem::take(&mut c.free)
                        .into_vec()
                        .into_iter()
                        .for_each(push);
                }
            }
            Value::Map(rc) => {
                if let Ok(mut m) = Rc::try_unwrap(rc) {
                    for (k, v) in std::mem::take(&mut m.0) {
                        push(k.0);
                        push(v);
                    }
                }
            }
            Value::Cell(rc) => {
                if let Ok(c) = Rc::try_unwrap(rc) {
                    push(c.into_inner());
                }
            }
            Value::Error(rc) => {
                if let Ok(mut e) = Rc::try_unwrap(rc) {
                    std::mem::take(&mut e.irritants).into_iter().for_each(push);
                }
            }
            Value::Foreign(rc) => {
                // A value-holding foreign object (a record) about to be freed gives up its
                // values first, so a chain of records drops iteratively too.
                if Rc::strong_count(&rc) == 1 && rc.holds_values() {
                    rc.clear_values().into_iter().for_each(&mut push);
                }
                drop(rc);
            }
            Value::Task(rc) => {
                if Rc::strong_count(&rc) == 1 && rc.holds_values() {
                    rc.clear_values().into_iter().for_each(&mut push);
                }
                drop(rc);
            }
            other => drop(other),
        }
    }
}

/// Whether `v` is a kind that holds other values (and so may start a deep chain or close a
/// cycle).
#[inline(always)]
pub(crate) fn is_container(v: &Value) -> bool {
    matches!(
        v,
        Value::Pair(_)
            | Value::Vector(_)
            | Value::Closure(_)
            | Value::Map(_)
            | Value::Cell(_)
            | Value::Error(_)
            | Value::Foreign(_)
            | Value::Task(_)
    )
}

/// A map: keys ordered by a total order on values (one that `equal?` agrees with), so
/// printing is deterministic. Derefs to the `BTreeMap` it wraps; dropping one drops its
/// entries iteratively (invariant 2).
#[derive(Clone, Default)]
pub struct LispMap(pub BTreeMap<MapKey, Value>);

impl LispMap {
    /// An empty map.
    pub fn new() -> LispMap {
        LispMap(BTreeMap::new())
    }
}

impl std::ops::Deref for LispMap {
    type Target = BTreeMap<MapKey, Value>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for LispMap {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl FromIterator<(MapKey, Value)> for LispMap {
    fn from_iter<I: IntoIterator<Item = (MapKey, Value)>>(iter: I) -> LispMap {
        LispMap(iter.into_iter().collect())
    }
}

impl fmt::Debug for LispMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl Drop for LispMap {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            teardown(
                std::mem::take(&mut self.0)
                    .into_iter()
                    .flat_map(|(k, v)| [k.0, v]),
            );
        }
    }
}

/// A map key: any value, in a total order on values that `equal?` agrees with.
#[derive(Clone)]
pub struct MapKey(pub Value);

impl PartialEq for MapKey {
    fn eq(&self, other: &Self) -> bool {
        compare(&self.0, &other.0) == Ordering::Equal
    }
}
impl Eq for MapKey {}
impl PartialOrd for MapKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for MapKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.0, &other.0)
    }
}
impl fmt::Debug for MapKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A closure: compiled code plus the values it captured.
pub struct Closure {
    /// The compiled function.
    pub(crate) proto: Rc<Proto>,
    /// Captured variables (flat closure), in the order of `proto.captures`.
    pub(crate) free: Box<[Value]>,
}

impl Drop for Closure {
    // Invariant 2: a chain of closures capturing closures drops iteratively.
    fn drop(&mut self) {
        if !self.free.is_empty() {
            teardown(std::mem::take(&mut self.free).into_vec());
        }
    }
}

impl Closure {
    /// The function's name (`<lambda>` when anonymous).
    pub fn name(&self) -> &str {
        &self.proto.name
    }
}

impl fmt::Debug for Closure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#<procedure {}>", self.proto.name)
    }
}

impl Value {
    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::Str(Rc::new(s.into()))
    }

    /// A symbol value.
    pub fn symbol(name: &str) -> Value {
        Value::Symbol(Symbol::intern(name))
    }

    /// A host object value.
    pub fn foreign(obj: impl Foreign) -> Value {
        let holds = obj.holds_values();
        let rc: Rc<Box<dyn Foreign>> = Rc::new(Box::new(obj));
        if holds {
            crate::collector::register_foreign(&rc);
        }
        Value::Foreign(rc)
    }

    /// A keyword value (`name` without the colon).
    pub fn keyword(name: &str) -> Value {
        Value::Keyword(Symbol::intern(name))
    }

    /// A cons cell.
    pub fn cons(car: Value, cdr: Value) -> Value {
        Value::Pair(Rc::new(Pair::new(car, cdr)))
    }

    /// A proper list of `items`.
    pub fn list(items: impl IntoIterator<Item = Value, IntoIter: DoubleEndedIterator>) -> Value {
        Value::list_with_tail(items, Value::Nil)
    }

    /// A list of `items` ending in `tail`.
    pub fn list_with_tail(
        items: impl IntoIterator<Item = Value, IntoIter: DoubleEndedIterator>,
        tail: Value,
    ) -> Value {
        let mut n = 0;
        let list = items.into_iter().rev().fold(tail, |acc, v| {
            n += 1;
            Value::cons(v, acc)
        });
        // Built by a native: charged as work (`work.rs`).
        crate::work::charge(n);
        list
    }

    /// A map from key/value pairs.
    pub fn map(entries: impl IntoIterator<Item = (Value, Value)>) -> Value {
        Value::Map(Rc::new(
            entries.into_iter().map(|(k, v)| (MapKey(k), v)).collect(),
        ))
    }

    /// An error value.
    pub fn error(err: LispError) -> Value {
        Value::Error(Rc::new(err.into_data()))
    }

    /// Falsy values are exactly `#f` and `nil`.
    #[inline]
    pub fn is_truthy(&self) -> bool {
        !matches!(self, Value::Nil | Value::Bool(false))
    }

    /// Whether the value is stored inline (nothing to drop or reference-count).
    #[inline(always)]
    pub(crate) fn is_immediate(&self) -> bool {
        matches!(
            self,
            Value::Nil
                | Value::Bool(_)
                | Value::Int(_)
                | Value::Float(_)
                | Value::Char(_)
                | Value::Symbol(_)
                | Value::Keyword(_)
        )
    }

    /// `nil`?
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// A procedure (closure or native)?
    pub fn is_procedure(&self) -> bool {
        matches!(self, Value::Closure(_) | Value::Native(_))
    }

    /// The string contents, if a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The integer, if an integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// A vector of `items`.
    pub fn vector(items: Vec<Value>) -> Value {
        // Built by a native: charged as work (`work.rs`).
        crate::work::charge(items.len());
        Value::Vector(Rc::new(LispVector::new(items)))
    }

    /// The elements of a proper list, or `None` if it is not one (circular lists included:
    /// they are detected, not walked forever).
    pub fn list_to_vec(&self) -> Option<Vec<Value>> {
        let mut out = Vec::new();
        let mut cur = self.clone();
        let mut check = CycleCheck::new();
        loop {
            match cur {
                Value::Nil => return Some(out),
                Value::Pair(p) => {
                    if check.circular(&p) {
                        return None;
                    }
                    out.push(p.car());
                    cur = p.cdr();
                }
                _ => return None,
            }
        }
    }

    /// Iterates over the cars of a list (stopping at the first non-pair tail). It does not
    /// stop on a circular list: bound it (`take`) or check with [`list_length`] first.
    pub fn iter(&self) -> ListIter {
        ListIter { cur: self.clone() }
    }

    /// A short type name: `integer`, `string`, `list`…
    pub fn type_name(&self) -> &str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Char(_) => "char",
            Value::Symbol(_) => "symbol",
            Value::Keyword(_) => "keyword",
            Value::Str(_) => "string",
            Value::Pair(_) => "list",
            Value::Vector(_) => "vector",
            Value::Map(_) => "map",
            Value::Closure(_) | Value::Native(_) => "procedure",
            Value::Error(_) => "error",
            Value::Foreign(f) => f.type_name(),
            Value::Task(_) => "task",
            Value::Cell(_) => "cell",
        }
    }

    /// The type with an article, for messages: `a string`, `an integer`, `nil`.
    pub fn type_description(&self) -> String {
        let name = self.type_name();
        if name == "nil" {
            return "nil".to_string();
        }
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {name}")
    }
}

/// Iterator over a list's elements (clones).
#[derive(Debug)]
pub struct ListIter {
    cur: Value,
}

impl Iterator for ListIter {
    type Item = Value;
    #[inline]
    fn next(&mut self) -> Option<Value> {
        let Value::Pair(p) = &self.cur else {
            return None;
        };
        let car = p.car();
        self.cur = p.cdr();
        Some(car)
    }
}

/// Brent's cycle detection for a walk down a chain of pairs: call [`CycleCheck::circular`]
/// with each pair met; it answers `true` once the walk has come round to a pair it passed
/// (within twice the cycle's length), in constant space. A walk is charged as work done by a
/// native (counted as VM steps, one per 16 pairs; within a factor of two of its length).
pub struct CycleCheck {
    mark: Option<Rc<Pair>>,
    lam: usize,
    power: usize,
}

impl Default for CycleCheck {
    fn default() -> CycleCheck {
        CycleCheck::new()
    }
}

impl fmt::Debug for CycleCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CycleCheck")
            .field("steps", &self.lam)
            .field("power", &self.power)
            .finish()
    }
}

impl CycleCheck {
    /// A check for a new walk.
    pub fn new() -> CycleCheck {
        CycleCheck {
            mark: None,
            lam: 0,
            power: 1,
        }
    }

    /// Whether `p` closes a cycle of the walk so far.
    #[inline]
    pub fn circular(&mut self, p: &Rc<Pair>) -> bool {
        if self.mark.as_ref().is_some_and(|m| Rc::ptr_eq(m, p)) {
            return true;
        }
        self.lam += 1;
        if self.lam >= self.power {
            // The pairs walked since the last mark, charged as work (`work.rs`): at least half
            // of a walk's pairs in all.
            crate::work::charge(self.lam);
            self.mark = Some(Rc::clone(p));
            self.power = self.power.saturating_mul(2);
            self.lam = 0;
        }
        false
    }
}

/// Follows up to `k` cdrs from `v`: the tail reached and how many cdrs were taken (fewer than
/// `k` when a non-pair tail comes first). On a circular list `k` is reduced modulo the cycle,
/// so the walk takes time linear in the list's pairs however large `k` is.
pub fn walk_cdrs(v: &Value, k: usize) -> (Value, usize) {
    let mut cur = v.clone();
    let mut check = CycleCheck::new();
    let mut i = 0usize;
    while i < k {
        let next = match &cur {
            Value::Pair(p) if check.circular(p) => {
                let (mu, lam) = cycle_shape(v, p);
                let target = if k >= mu { mu + (k - mu) % lam } else { k };
                let mut c = v.clone();
                for _ in 0..target {
                    c = match &c {
                        Value::Pair(q) => q.cdr(),
                        _ => break,
                    };
                }
                return (c, k);
            }
            Value::Pair(p) => p.cdr(),
            _ => return (cur, i),
        };
        cur = next;
        i += 1;
    }
    (cur, i)
}

/// For a circular list `head` and a pair `on` of its cycle: the number of pairs before the
/// cycle and the cycle's length.
fn cycle_shape(head: &Value, on: &Rc<Pair>) -> (usize, usize) {
    let step = |v: &Value| match v {
        Value::Pair(p) => p.cdr(),
        _ => Value::Nil,
    };
    let start = Value::Pair(Rc::clone(on));
    let mut lam = 1usize;
    let mut c = step(&start);
    while !eq(&c, &start) {
        c = step(&c);
        lam += 1;
    }
    let mut a = head.clone();
    let mut b = head.clone();
    for _ in 0..lam {
        b = step(&b);
    }
    let mut mu = 0usize;
    while !eq(&a, &b) {
        a = step(&a);
        b = step(&b);
        mu += 1;
    }
    (mu, lam)
}

/// The error for a circular list given where a list is needed: `who: expected a proper list,
/// got a circular list: #0=(1 2 . #0#)`.
pub fn circular_list_error(who: &str, v: &Value) -> LispError {
    LispError::new(
        crate::error::ErrorKind::TypeError,
        format!(
            "{who}: expected a proper list, got a circular list: {}",
            crate::printer::write_string_limited(v, 60)
        ),
    )
}

/// What walking the cdrs of a value found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListShape {
    /// A proper list of this many elements.
    Proper(usize),
    /// A chain of this many pairs ending in a non-nil tail.
    Dotted(usize),
    /// A circular list.
    Circular,
}

/// `append`'s copy of its lists but the last, built front to back in one walk of each list:
/// [`ListCopy::extend`] copies a list's elements onto the end of the copy so far,
/// [`ListCopy::finish`] ends it in the shared tail. The copy is reached by nothing but its own
/// head and ends in a value that existed before, so it is acyclic and its pairs need no
/// registration with the collector (which `set_cdr` would make).
#[derive(Default)]
pub(crate) struct ListCopy {
    /// The first pair of the copy, once there is one.
    head: Option<Rc<Pair>>,
    /// The last pair of the copy (its `cdr` is `Nil` until [`ListCopy::finish`]).
    end: Option<Rc<Pair>>,
    /// The pairs copied.
    len: usize,
}

impl ListCopy {
    /// The pairs copied so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Copies the elements of `list` onto the end of the copy. Stops with `Err(())` — what
    /// was copied of `list` is left in place, to be dropped with the copy — when `list` is not
    /// a proper list (a non-pair tail, or a cycle found by [`CycleCheck`], which also charges
    /// the walk as work) or the copy would grow past `cap` pairs; the caller tells which
    /// (`list_length`). One walk where shape, length and copy were three.
    pub(crate) fn extend(&mut self, list: &Value, cap: usize) -> Result<(), ()> {
        let mut cur = list.clone();
        let mut check = CycleCheck::new();
        loop {
            match cur {
                Value::Nil => return Ok(()),
                Value::Pair(p) => {
                    if self.len >= cap || check.circular(&p) {
                        return Err(());
                    }
                    let cell = Rc::new(Pair::new(p.car(), Value::Nil));
                    match &self.end {
                        Some(end) => {
                            end.replace_cdr(Value::Pair(Rc::clone(&cell)));
                        }
                        None => self.head = Some(Rc::clone(&cell)),
                    }
                    self.end = Some(cell);
                    self.len += 1;
                    cur = p.cdr();
                }
                _ => return Err(()),
            }
        }
    }

    /// The copy ending in `tail` (`tail` itself when nothing was copied).
    pub(crate) fn finish(self, tail: Value) -> Value {
        match (self.head, self.end) {
            (Some(head), Some(end)) => {
                end.replace_cdr(tail);
                Value::Pair(head)
            }
            _ => tail,
        }
    }
}

/// The number of pairs along the `cdr`s of `v`, counted up to `cap + 1` (so a circular or
/// too-long list is known to be longer than `cap` without being walked further): a walk that
/// takes no element, where a [`ListIter`] would clone each.
pub(crate) fn list_len_upto(v: &Value, cap: usize) -> usize {
    let mut n = 0usize;
    let mut cur = v.clone();
    while n <= cap {
        match cur {
            Value::Pair(p) => {
                n += 1;
                cur = p.cdr();
            }
            _ => break,
        }
    }
    n
}

/// The shape of `v` as a list, in time linear in its length and constant space (Brent's
/// cycle detection), so a circular list is reported, not walked forever.
pub fn list_length(v: &Value) -> ListShape {
    let mut n = 0usize;
    let mut cur = v.clone();
    let mut check = CycleCheck::new();
    loop {
        match cur {
            Value::Nil => return ListShape::Proper(n),
            Value::Pair(p) => {
                if check.circular(&p) {
                    return ListShape::Circular;
                }
                n += 1;
                cur = p.cdr();
            }
            _ => return ListShape::Dotted(n),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::printer::write_string(self))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::printer::display_string(self))
    }
}

impl PartialEq for Value {
    /// Structural equality (`equal?`).
    fn eq(&self, other: &Value) -> bool {
        equal(self, other)
    }
}

/// `eq?`: identity for heap objects, value equality for immediates (ints, floats by bits).
pub fn eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Char(x), Value::Char(y)) => x == y,
        (Value::Symbol(x), Value::Symbol(y)) | (Value::Keyword(x), Value::Keyword(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => Rc::ptr_eq(x, y),
        (Value::Pair(x), Value::Pair(y)) => Rc::ptr_eq(x, y),
        (Value::Vector(x), Value::Vector(y)) => Rc::ptr_eq(x, y),
        (Value::Map(x), Value::Map(y)) => Rc::ptr_eq(x, y),
        (Value::Closure(x), Value::Closure(y)) => Rc::ptr_eq(x, y),
        (Value::Native(x), Value::Native(y)) => Rc::ptr_eq(x, y),
        (Value::Error(x), Value::Error(y)) => Rc::ptr_eq(x, y),
        (Value::Foreign(x), Value::Foreign(y)) => Rc::ptr_eq(x, y),
        (Value::Task(x), Value::Task(y)) => Rc::ptr_eq(x, y),
        (Value::Cell(x), Value::Cell(y)) => Rc::ptr_eq(x, y),
        _ => false,
    }
}

/// `eqv?`: like `eq?`, but strings compare by contents and floats by value.
pub fn eqv(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        _ => eq(a, b),
    }
}

/// `equal?`: structural equality, iterative (no native recursion on deep data).
pub fn equal(a: &Value, b: &Value) -> bool {
    compare(a, b) == Ordering::Equal
}

/// Nodes [`compare`] visits before it starts remembering shared structure.
const MEMO_AFTER: usize = 4096;

fn rank(v: &Value) -> u8 {
    match v {
        Value::Nil => 0,
        Value::Bool(_) => 1,
        Value::Int(_) => 2,
        Value::Float(_) => 3,
        Value::Str(_) => 4,
        Value::Keyword(_) => 5,
        Value::Symbol(_) => 6,
        Value::Pair(_) => 7,
        Value::Map(_) => 8,
        Value::Closure(_) => 9,
        Value::Native(_) => 10,
        Value::Error(_) => 11,
        Value::Foreign(_) => 12,
        Value::Cell(_) => 13,
        Value::Char(_) => 14,
        Value::Vector(_) => 15,
        Value::Task(_) => 16,
    }
}

/// The address of the object behind `rc`: its identity while it is alive.
pub(crate) fn addr<T: ?Sized>(rc: &Rc<T>) -> usize {
    Rc::as_ptr(rc).cast::<u8>() as usize
}

impl Value {
    /// The address of the heap object behind this value (its identity while alive), or `None`
    /// for an immediate value. Walks that must recognise an object met before (cycle checks,
    /// datum labels, the collector) key on it.
    pub(crate) fn heap_address(&self) -> Option<usize> {
        match self {
            Value::Str(r) => Some(addr(r)),
            Value::Pair(r) => Some(addr(r)),
            Value::Vector(r) => Some(addr(r)),
            Value::Map(r) => Some(addr(r)),
            Value::Closure(r) => Some(addr(r)),
            Value::Native(r) => Some(addr(r)),
            Value::Error(r) => Some(addr(r)),
            Value::Foreign(r) => Some(addr(r)),
            Value::Task(r) => Some(addr(r)),
            Value::Cell(r) => Some(addr(r)),
            Value::Nil
            | Value::Bool(_)
            | Value::Int(_)
            | Value::Float(_)
            | Value::Char(_)
            | Value::Symbol(_)
            | Value::Keyword(_) => None,
        }
    }
}

/// A total order on values, consistent with `equal?` (used for map keys and `equal?`).
/// Different types order by a fixed type rank; lists lexicographically; maps by entries.
/// Iterative: uses an explicit work stack.
///
/// Shared structure is compared once: after [`MEMO_AFTER`] nodes, each pair of pairs (or maps,
/// or vectors) met is remembered and a pair met again is skipped. That is exact — the work stack is
/// depth-first, so the first meeting is compared completely before a later one is reached —
/// and makes comparing two DAGs whose unfolded trees are exponentially large take time linear
/// in their nodes. It also makes `equal?` terminate on cyclic data (R7RS): two cyclic
/// structures are equal when no difference is found while unfolding them, and the memo bounds
/// the unfolding by the number of node pairs.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    let mut work: Vec<(Value, Value)> = Vec::new();
    let mut next = Some((a.clone(), b.clone()));
    let mut visited = 0usize;
    let mut seen: std::collections::HashSet<(usize, usize)> = std::collections::HashSet::new();
    while let Some((x, y)) = next.take().or_else(|| work.pop()) {
        visited += 1;
        if visited % 1024 == 0 {
            // A big comparison is charged as work (`work.rs`); a map key's is too small to.
            crate::work::charge(1024);
        }
        if visited > MEMO_AFTER {
            let key = match (&x, &y) {
                (Value::Pair(p), Value::Pair(q)) => Some((addr(p), addr(q))),
                (Value::Map(p), Value::Map(q)) => Some((addr(p), addr(q))),
                (Value::Vector(p), Value::Vector(q)) => Some((addr(p), addr(q))),
                _ => None,
            };
            if key.is_some_and(|k| !seen.insert(k)) {
                continue;
            }
        }
        let o = match (&x, &y) {
            (Value::Nil, Value::Nil) => Ordering::Equal,
            (Value::Bool(p), Value::Bool(q)) => p.cmp(q),
            (Value::Int(p), Value::Int(q)) => p.cmp(q),
            (Value::Float(p), Value::Float(q)) => p.total_cmp(q),
            (Value::Char(p), Value::Char(q)) => p.cmp(q),
            (Value::Str(p), Value::Str(q)) => p.cmp(q),
            (Value::Keyword(p), Value::Keyword(q)) | (Value::Symbol(p), Value::Symbol(q)) => {
                if p == q {
                    Ordering::Equal
                } else {
                    p.name().cmp(&q.name())
                }
            }
            (Value::Pair(p), Value::Pair(q)) => {
                if Rc::ptr_eq(p, q) {
                    Ordering::Equal
                } else {
                    work.push((p.cdr(), q.cdr()));
                    next = Some((p.car(), q.car()));
                    Ordering::Equal
                }
            }
            (Value::Vector(p), Value::Vector(q)) => {
                if Rc::ptr_eq(p, q) {
                    Ordering::Equal
                } else if p.len() != q.len() {
                    p.len().cmp(&q.len())
                } else {
                    // Push in reverse so the first elements are compared first.
                    for (a, b) in p.to_vec().into_iter().zip(q.to_vec()).rev() {
                        work.push((a, b));
                    }
                    Ordering::Equal
                }
            }
            (Value::Map(p), Value::Map(q)) => {
                if Rc::ptr_eq(p, q) {
                    Ordering::Equal
                } else if p.len() != q.len() {
                    p.len().cmp(&q.len())
                } else {
                    // Push in reverse so the first entries are compared first.
                    for ((k1, v1), (k2, v2)) in p.iter().zip(q.iter()).rev() {
                        work.push((v1.clone(), v2.clone()));
                        work.push((k1.0.clone(), k2.0.clone()));
                    }
                    Ordering::Equal
                }
            }
            (Value::Error(p), Value::Error(q)) => {
                if Rc::ptr_eq(p, q) {
                    Ordering::Equal
                } else {
                    (p.kind.name(), &p.message).cmp(&(q.kind.name(), &q.message))
                }
            }
            (Value::Closure(p), Value::Closure(q)) => addr(p).cmp(&addr(q)),
            (Value::Native(p), Value::Native(q)) => addr(p).cmp(&addr(q)),
            (Value::Foreign(p), Value::Foreign(q)) => addr(p).cmp(&addr(q)),
            (Value::Task(p), Value::Task(q)) => addr(p).cmp(&addr(q)),
            (Value::Cell(p), Value::Cell(q)) => addr(p).cmp(&addr(q)),
            _ => rank(&x).cmp(&rank(&y)),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

// Values are copied constantly; keep them two words.
const _: () = assert!(std::mem::size_of::<Value>() == 16);
