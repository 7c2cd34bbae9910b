//! The VM's value stack: a vector of slots that are always initialised, and a stack pointer.
//!
//! # Implementation details
//!
//! `Vec::push` builds the value in a temporary and copies it in with one 16-byte move after its
//! capacity check; when the value was just written field by field (a tag byte and a payload
//! word), that 16-byte load cannot be forwarded from the two smaller stores and stalls the CPU
//! (measured: three such stalls took over a third of `fib`'s time). Here the slot is found
//! first and the value is then written straight into it, so new values are stored field by field
//! in place. Slots above the stack pointer hold `nil`, so writing one never has to drop
//! anything.
//!
//! # Invariants
//!
//! 1. `slots[sp..]` are all `Value::Nil` (every pop or truncate puts `nil` back).
//! 2. `slots.len()` (and hence `sp`) stays below 2^32, so a frame can keep positions in `u32`s.

use std::ops::{Index, IndexMut};

use crate::value::Value;

/// The first allocation of a stack, in slots (see `Stack::grow`): what the smallest task body,
/// a thunk tail-calling a native with one argument (`(lambda () (sleep ms))`: the native and
/// its argument; the thunk runs with no callee slot, `VmCore::start_closure`), needs. 32
/// bytes, a 48-byte glibc chunk; 3 slots took 64, 4 took 80.
const MIN_SLOTS: usize = 2;

/// The value stack (see the module docs).
#[derive(Default)]
pub(crate) struct Stack {
    slots: Vec<Value>,
    sp: usize,
}

impl Stack {
    pub(crate) fn new() -> Stack {
        Stack::default()
    }

    /// Number of live values.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.sp
    }

    #[cfg(test)]
    /// Slots allocated (live or not): a stack that was dropped and replaced has none.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Makes room for `extra` more values (amortised doubling, filled with `nil`).
    #[inline(always)]
    pub(crate) fn reserve(&mut self, extra: usize) {
        if self.sp + extra > self.slots.len() {
            self.grow(self.sp + extra);
        }
    }

    /// Grows the slots to hold at least `need` values (out of line, by value: see
    /// [`grown`]).
    #[inline(always)]
    fn grow(&mut self, need: usize) {
        self.slots = grown(std::mem::take(&mut self.slots), need);
    }

    /// The slot just above the top, made part of the stack; write the new value into it.
    #[inline(always)]
    pub(crate) fn push_slot(&mut self) -> &mut Value {
        self.reserve(1);
        let sp = self.sp;
        self.sp = sp + 1;
        &mut self.slots[sp]
    }

    /// Pushes `v`. (To avoid the temporary, prefer `*push_slot() = …` with a fresh value.)
    #[inline(always)]
    pub(crate) fn push(&mut self, v: Value) {
        let slot = self.push_slot();
        // Invariant 1: the slot holds `nil`, nothing to drop.
        std::mem::forget(std::mem::replace(slot, v));
    }

    /// Pushes the value `make` builds, written in place: `make` runs after the slot is found,
    /// so a fresh value's fields go straight into it.
    #[inline(always)]
    pub(crate) fn push_with(&mut self, make: impl FnOnce() -> Value) {
        let slot = self.push_slot();
        let v = make();
        std::mem::forget(std::mem::replace(slot, v));
    }

    /// Pushes an integer, written in place.
    #[inline(always)]
    pub(crate) fn push_int(&mut self, i: i64) {
        self.push_with(|| Value::Int(i));
    }

    /// Pushes a boolean, written in place.
    #[inline(always)]
    pub(crate) fn push_bool(&mut self, b: bool) {
        self.push_with(|| Value::Bool(b));
    }

    /// Overwrites the integer at `i` with another integer, in place.
    #[inline(always)]
    pub(crate) fn set_int(&mut self, i: usize, x: i64) {
        let slot = &mut self.slots[i];
        debug_assert!(matches!(slot, Value::Int(_)));
        // An integer has nothing to drop.
        std::mem::forget(std::mem::replace(slot, Value::Int(x)));
    }

    /// Pushes a copy of the value at `i` (integers are written in place).
    #[inline(always)]
    pub(crate) fn push_copy(&mut self, i: usize) {
        if let Value::Int(x) = self.slots[i] {
            self.push_int(x);
        } else {
            let v = self.slots[i].clone();
            self.push(v);
        }
    }

    /// Removes and returns the top value.
    #[inline(always)]
    pub(crate) fn pop(&mut self) -> Value {
        let sp = self
            .sp
            .checked_sub(1)
            .expect("operand stack underflow (compiler invariant)");
        self.sp = sp;
        std::mem::take(&mut self.slots[sp])
    }

    /// Pops the top value into slot `dst` (below the top), dropping what `dst` held. A number
    /// is moved field by field (popping it whole would load 16 bytes just stored in two parts,
    /// see the module docs).
    #[inline(always)]
    pub(crate) fn pop_into(&mut self, dst: usize) {
        let sp = self
            .sp
            .checked_sub(1)
            .expect("operand stack underflow (compiler invariant)");
        debug_assert!(dst < sp);
        self.sp = sp;
        // Each number kind on its own path, so the value is written with a constant tag (one
        // path for both built the value in a temporary and copied it whole).
        match self.slots[sp] {
            Value::Int(x) => {
                // A number has nothing to drop: just put `nil` back (invariant 1).
                std::mem::forget(std::mem::take(&mut self.slots[sp]));
                self.set_int_dropping(dst, x);
            }
            Value::Float(x) => {
                std::mem::forget(std::mem::take(&mut self.slots[sp]));
                self.set_float_dropping(dst, x);
            }
            _ => {
                let v = std::mem::take(&mut self.slots[sp]);
                self.slots[dst] = v;
            }
        }
    }

    /// Writes the integer `x` at `i`, dropping what was there.
    #[inline(always)]
    fn set_int_dropping(&mut self, i: usize, x: i64) {
        let slot = &mut self.slots[i];
        if slot.is_immediate() {
            std::mem::forget(std::mem::replace(slot, Value::Int(x)));
        } else {
            *slot = Value::Int(x);
        }
    }

    /// Writes the float `x` at `i`, dropping what was there.
    #[inline(always)]
    fn set_float_dropping(&mut self, i: usize, x: f64) {
        let slot = &mut self.slots[i];
        if slot.is_immediate() {
            std::mem::forget(std::mem::replace(slot, Value::Float(x)));
        } else {
            *slot = Value::Float(x);
        }
    }

    /// Drops the top two values, which are numbers (nothing to drop: each tag is reset to
    /// `nil` without reading it).
    #[inline(always)]
    pub(crate) fn drop_two_numbers(&mut self) {
        let top = self.sp;
        debug_assert!(top >= 2 && self.slots[top - 2..top].iter().all(Value::is_immediate));
        if let [.., a, b] = &mut self.slots[..top] {
            std::mem::forget(std::mem::take(a));
            std::mem::forget(std::mem::take(b));
            self.sp = top - 2;
        }
    }

    /// Drops the top value.
    #[inline(always)]
    pub(crate) fn drop_top(&mut self) {
        let n = self.sp.saturating_sub(1);
        self.truncate(n);
    }

    /// The top value.
    #[inline(always)]
    pub(crate) fn last(&self) -> Option<&Value> {
        self.sp.checked_sub(1).map(|i| &self.slots[i])
    }

    /// Drops the values above `n` (none if `n >= len`).
    #[inline(always)]
    pub(crate) fn truncate(&mut self, n: usize) {
        let top = self.sp;
        if top <= n {
            return;
        }
        self.sp = n;
        clear_slots(&mut self.slots[n..top]);
    }

    /// Drops every value.
    pub(crate) fn clear(&mut self) {
        self.truncate(0);
    }

    /// Grows the stack to `n` values with `nil`s (no-op if already that long).
    #[inline(always)]
    pub(crate) fn resize_nil(&mut self, n: usize) {
        if n > self.sp {
            self.reserve(n - self.sp);
            self.sp = n;
        }
    }

    /// Moves the value at `src` (at or above `dst`) to `dst` and drops everything above `dst`
    /// (a frame's return: `src` is the top, or a local for `ReturnLocal`).
    #[inline(always)]
    pub(crate) fn return_from(&mut self, src: usize, dst: usize) {
        match self.slots[src] {
            // The common numeric cases, moved field by field.
            Value::Int(x) => self.return_int(x, dst),
            _ => {
                self.slots.swap(dst, src);
                self.truncate(dst + 1);
            }
        }
    }

    /// Writes the float `x` at `dst` and drops everything above `dst` (a frame's return of a
    /// float result; as [`Stack::return_int`]).
    #[inline(always)]
    pub(crate) fn return_float(&mut self, x: f64, dst: usize) {
        let slot = &mut self.slots[dst];
        if slot.is_immediate() {
            std::mem::forget(std::mem::replace(slot, Value::Float(x)));
        } else {
            match std::mem::replace(slot, Value::Float(x)) {
                Value::Closure(c) => drop(c),
                old => drop(old),
            }
        }
        self.top_after_return(dst);
    }

    /// Makes `dst` the top after a return wrote it: drops what is above, or, when `dst` was at
    /// or above the top (`drop_two_numbers` took the operands of a frame with no arguments,
    /// whose result slot is its first operand's), raises the top to it.
    #[inline(always)]
    fn top_after_return(&mut self, dst: usize) {
        if self.sp <= dst {
            self.sp = dst + 1;
        } else {
            self.truncate(dst + 1);
        }
    }

    /// Writes the integer `x` at `dst` and drops everything above `dst` (a frame's return of
    /// an integer result).
    #[inline(always)]
    pub(crate) fn return_int(&mut self, x: i64, dst: usize) {
        // Drops the callee or argument kept at `dst`. (Replaced first, dropped after: an
        // assignment would build the new value in a temporary while the old one is dropped.)
        let slot = &mut self.slots[dst];
        if slot.is_immediate() {
            // An argument of a frame without callee slot, usually: only its tag is read (a
            // 16-byte load of the whole value, recently stored field by field, could stall).
            std::mem::forget(std::mem::replace(slot, Value::Int(x)));
        } else {
            match std::mem::replace(slot, Value::Int(x)) {
                // The callee kept in its slot: an inlined reference-count decrement.
                Value::Closure(c) => drop(c),
                old => drop(old),
            }
        }
        self.top_after_return(dst);
    }

    /// Removes `from..to`, sliding the values above it down (a tail call's arguments over the
    /// frame it replaces: usually a few values, so a loop of swaps, integers moved field by
    /// field, rather than a generic rotate).
    #[inline(always)]
    pub(crate) fn remove_range(&mut self, from: usize, to: usize) {
        self.sp = remove_slots(&mut self.slots[..self.sp], from, to);
    }

    /// Moves the top `n` values down to `at .. at + n`, drops everything above them (what
    /// they replace included) and grows the stack to `len` values with `nil`s: a self tail
    /// call's arguments over the frame's parameters, its locals reset. Integers are moved
    /// field by field; the stack pointer is stored once. The moves are out of line
    /// ([`restart_slots`]): a loop the dispatch loop need not hold registers for.
    #[inline(always)]
    pub(crate) fn restart(&mut self, at: usize, n: usize, len: usize) {
        self.sp = restart_slots(&mut self.slots[..self.sp], at, n);
        self.resize_nil(len);
    }

    /// Removes and returns the values from `at` to the top.
    pub(crate) fn split_off(&mut self, at: usize) -> Vec<Value> {
        let out = self.slots[at..self.sp]
            .iter_mut()
            .map(std::mem::take)
            .collect();
        self.sp = at;
        out
    }

    /// Inserts `v` at `at`, shifting the values above it up.
    pub(crate) fn insert(&mut self, at: usize, v: Value) {
        self.push(v);
        self.slots[at..self.sp].rotate_right(1);
    }

    /// Removes the value at `at`, shifting the values above it down.
    pub(crate) fn remove(&mut self, at: usize) {
        self.remove_range(at, at + 1);
    }

    /// The values from `at` to the top.
    #[inline(always)]
    pub(crate) fn from(&self, at: usize) -> &[Value] {
        &self.slots[at..self.sp]
    }

    /// The values from `at` to the top, to change in place.
    #[inline(always)]
    pub(crate) fn window_mut(&mut self, at: usize) -> &mut [Value] {
        &mut self.slots[at..self.sp]
    }

    /// All live values.
    #[inline(always)]
    pub(crate) fn as_slice(&self) -> &[Value] {
        &self.slots[..self.sp]
    }
}

/// `slots` grown to at least `need` values (amortised doubling, filled with `nil`). By value
/// rather than through `&mut Stack`, so the dispatch loop's stack, a local there, never has
/// its address taken and its fields stay in registers.
#[cold]
#[inline(never)]
fn grown(mut slots: Vec<Value>, need: usize) -> Vec<Value> {
    // Start small: every suspended task has its own fiber and stack (SPEC §9 asks for
    // ≤ 1 KiB per suspended task), and a task body such as `(lambda () (sleep ms))` needs
    // 2 slots (32 bytes; 16 slots cost 256); doubling makes growth cheap.
    let n = need.max(slots.len() * 2).max(MIN_SLOTS);
    // Invariant 2 (a stack this large could not be allocated anyway: 64 GiB).
    assert!(u32::try_from(n).is_ok(), "value stack exceeds 2^32 slots");
    // Exactly `n`: `resize` alone would round a first allocation up to 4 slots.
    slots.reserve_exact(n - slots.len());
    slots.resize(n, Value::Nil);
    slots
}

/// Drops the values of `slots` (the top first, as popping one by one would), leaving `nil`s
/// (invariant 1).
#[inline(always)]
fn clear_slots(slots: &mut [Value]) {
    for slot in slots.iter_mut().rev() {
        if slot.is_immediate() {
            // Nothing to drop: just put `nil` back.
            std::mem::forget(std::mem::take(slot));
        } else {
            *slot = Value::Nil;
        }
    }
}

/// [`Stack::remove_range`] on the live slots `live`: returns the new stack pointer.
#[inline(always)]
fn remove_slots(live: &mut [Value], from: usize, to: usize) -> usize {
    let n = to - from;
    let top = live.len();
    if n == 0 {
        return top;
    }
    for i in to..top {
        let dst = i - n;
        if let Value::Int(x) = live[i] {
            // The removed value moves up to `i`, to be dropped below.
            let old = std::mem::replace(&mut live[dst], Value::Int(x));
            std::mem::forget(std::mem::replace(&mut live[i], old));
        } else {
            live.swap(dst, i);
        }
    }
    clear_slots(&mut live[top - n..]);
    top - n
}

/// [`Stack::restart`]'s moves on the live slots `live`: the top `n` values to `at .. at + n`,
/// everything above them dropped; returns the new stack pointer (`at + n`).
#[inline(never)]
fn restart_slots(live: &mut [Value], at: usize, n: usize) -> usize {
    let from = live.len() - n;
    if from >= at + n {
        let (lo, hi) = live.split_at_mut(from);
        for (d, s) in lo[at..at + n].iter_mut().zip(&mut hi[..n]) {
            if let Value::Int(x) = *s {
                // Nothing to drop in `s`: just put `nil` back (invariant 1).
                std::mem::forget(std::mem::take(s));
                if d.is_immediate() {
                    std::mem::forget(std::mem::replace(d, Value::Int(x)));
                } else {
                    *d = Value::Int(x);
                }
            } else {
                *d = std::mem::take(s);
            }
        }
        // `from ..` are all `nil` now; drop the slots between.
        clear_slots(&mut lo[at + n..]);
        at + n
    } else {
        // The arguments overlap their parameters (fewer slots between than arguments).
        remove_slots(live, at, from)
    }
}

impl Extend<Value> for Stack {
    fn extend<I: IntoIterator<Item = Value>>(&mut self, iter: I) {
        for v in iter {
            self.push(v);
        }
    }
}

impl Index<usize> for Stack {
    type Output = Value;
    #[inline(always)]
    fn index(&self, i: usize) -> &Value {
        &self.slots[i]
    }
}

impl IndexMut<usize> for Stack {
    #[inline(always)]
    fn index_mut(&mut self, i: usize) -> &mut Value {
        &mut self.slots[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_above_the_top_stay_nil() {
        let mut s = Stack::new();
        s.push(Value::string("a"));
        s.push_int(1);
        s.push(Value::string("b"));
        s.push_bool(true);
        assert_eq!(s.len(), 4);
        s.insert(1, Value::Int(9));
        assert_eq!(
            s.as_slice(),
            &[
                Value::string("a"),
                Value::Int(9),
                Value::Int(1),
                Value::string("b"),
                Value::Bool(true)
            ]
        );
        s.remove_range(1, 3);
        assert_eq!(
            s.as_slice(),
            &[Value::string("a"), Value::string("b"), Value::Bool(true)]
        );
        let top = s.len() - 1;
        s.return_from(top, 0);
        assert_eq!(s.as_slice(), &[Value::Bool(true)]);
        s.push_copy(0);
        s.resize_nil(4);
        assert_eq!(
            s.split_off(1),
            vec![Value::Bool(true), Value::Nil, Value::Nil]
        );
        s.clear();
        assert!(s.slots.iter().all(Value::is_nil));
    }

    #[test]
    fn restart_moves_the_top_values_down_and_resets_the_rest() {
        // A frame at 1 with 3 parameters and 4 locals, a temporary, then 3 arguments.
        let mut s = Stack::new();
        s.push(Value::string("below"));
        s.push_int(1);
        s.push(Value::string("old"));
        s.push(Value::Float(0.5));
        s.push(Value::string("local"));
        s.push(Value::string("temp"));
        s.push_int(7);
        s.push(Value::string("new"));
        s.push(Value::Float(2.5));
        s.restart(1, 3, 5);
        assert_eq!(
            s.as_slice(),
            &[
                Value::string("below"),
                Value::Int(7),
                Value::string("new"),
                Value::Float(2.5),
                Value::Nil
            ]
        );
        assert!(s.slots[5..].iter().all(Value::is_nil));
        // Arguments overlapping their parameters (fewer slots between than arguments).
        let mut s = Stack::new();
        s.push(Value::string("old"));
        s.push(Value::string("a"));
        s.push_int(9);
        s.restart(0, 2, 3);
        assert_eq!(
            s.as_slice(),
            &[Value::string("a"), Value::Int(9), Value::Nil]
        );
        assert!(s.slots[3..].iter().all(Value::is_nil));
    }

    #[test]
    fn return_over_two_numbers_leaves_the_result_and_nils_above() {
        let mut s = Stack::new();
        s.push(Value::string("callee"));
        s.push_int(5);
        s.push_int(3);
        s.push(Value::Float(0.5));
        s.drop_two_numbers();
        s.return_float(2.5, 0);
        assert_eq!(s.as_slice(), &[Value::Float(2.5)]);
        s.push_int(1);
        s.push_int(2);
        s.drop_two_numbers();
        s.return_int(7, 0);
        assert_eq!(s.as_slice(), &[Value::Int(7)]);
        assert!(s.slots[1..].iter().all(Value::is_nil));
    }

    #[test]
    fn the_first_allocation_is_two_slots_then_doubles() {
        let mut s = Stack::new();
        s.push_int(1);
        assert_eq!(s.slots.capacity(), MIN_SLOTS);
        for i in 0..MIN_SLOTS {
            s.push_int(i as i64);
        }
        assert_eq!(s.slots.capacity(), 2 * MIN_SLOTS);
    }
}
