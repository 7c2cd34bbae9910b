//! Interned symbols and keywords: a [`Symbol`] is a `u64` id, a plain name's an index into a
//! per-thread table; and the reclaimable *aliases* that `syntax-rules` hygiene renames
//! template identifiers to.
//!
//! # Implementation details
//!
//! Values are single-threaded (`Rc`), so one interner per thread is enough and lets a `Symbol`
//! print itself without a runtime handle. Comparing and hashing a symbol never looks at a table.
//! Plain names are never freed (the names a program's text and its builtins use are few);
//! gensyms are not interned (their id holds their name: [`Symbol::gensym`]), so a `defmacro`
//! that makes them at each expansion grows no table.
//!
//! **Cost of names made at run time.** `string->symbol` and `read` (from a string port) intern
//! too, so each *distinct* name a script makes stays in this thread's table for the thread's
//! life: about 130 bytes per name (measured: 2M distinct `string->symbol` names, 268 MB RSS).
//! While a script runs, the bytes count against its heap limit like any allocation (a script
//! cannot intern past `max_heap_bytes`), but they are not returned when it ends. A host that
//! feeds unbounded distinct names into symbols for days (ids, numbers, model output) grows
//! this table; such data should stay strings (as `json-parse` keeps object keys). Reclaiming
//! plain names would need every `Symbol` to be counted or traced.
//!
//! ## Aliases and their reclamation
//!
//! Every identifier a `syntax-rules` template introduces gets a fresh alias per expansion
//! (`syntax_rules.rs`), so a host that evaluates scripts with macros for days makes aliases
//! without end; they must be freed. An alias's id carries, besides a flag, a 31-bit *serial*
//! (unique among live aliases) and the id of the plain symbol its name is (the *name id*):
//!
//! ```text
//! plain symbol:  0 | 0 ....................... 0 | name index (32 bits)
//! alias:         1 | serial (31 bits)             | name id (32 bits)
//! gensym:        0 | 1 | counter (40 bits)        | prefix name id (22 bits)
//! ```
//!
//! The alias table maps each live alias's serial to its entry: the symbol it renames (its
//! *base*, itself maybe an alias: macro-defining macros rename twice) and a reference count.
//! The owners that count are:
//!
//! 1. an [`AliasRefs`] set, which releases what it holds when dropped: the expander of one
//!    top-level form owns every alias that form's expansion makes (the expansion output and
//!    the core expression are gone when it finishes: the compiler's output names variables by
//!    index and globals by their plain names, and quoted data is stripped of aliases);
//! 2. a compiled `syntax-rules` transformer owns the aliases in its spec (a macro defined by a
//!    macro's expansion keeps its template's aliases alive while the macro is in a scope or in
//!    the runtime's macro table; redefining or dropping it releases them);
//! 3. a live alias owns its base.
//!
//! When the count reaches zero the entry is removed, and its serial may later be reused.
//!
//! An alias can still escape into a value that outlives its owners: a `defmacro` gets aliases
//! as arguments and may store one (in a global, an error's irritants). Such a *stale* alias
//! stays a valid symbol: its name comes from the name id in the id itself, and
//! [`Symbol::alias_base`] of a stale alias (no entry, or an entry with another id) is its plain
//! name symbol — what it meant in any later compile anyway (aliases resolve in the
//! environment of a macro's definition only during the compile that made them). Two copies of
//! one stale alias stay equal. A stale alias could only be confused with a new one whose
//! serial is equal (reused after 2^31 other aliases) *and* whose name is the same.
//!
//! The table holds at most [`MAX_LIVE_ALIASES`] entries; making one more fails (the expander
//! reports a `:limit` error), so no count of aliases can panic or exhaust the serials.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

/// An interned name (used by both symbols and keywords), or an alias of one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Symbol(u64);

/// A small, fast hasher (the FxHash function of rustc) for tables whose keys the runtime
/// hands out in sequence (alias serials), never for keys a script chooses: FxHash has no
/// secret seed, so names crafted to collide (feasible offline for a hostile script) would make
/// every lookup probe them all — a quadratic hang of the reader. The name table therefore
/// keeps std's randomly seeded SipHash. Nor for [`Symbol`] keys: an alias's id keeps its name
/// in the low bits, which this hash does not mix into the bucket index, so the many aliases of
/// one name (`tmp` in a macro expanded 10,000 times) would all start probing at one bucket.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` hashed with [`FxHasher`].
pub(crate) type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Set in the id of an alias, so telling a plain symbol from an alias takes no lookup.
const ALIAS_BIT: u64 = 1 << 63;
/// Set (without [`ALIAS_BIT`]) in the id of a gensym: `#:` + prefix + counter, the counter in
/// bits 22..62, the prefix's name id in bits 0..22 (see [`Symbol::gensym`]).
const GENSYM_BIT: u64 = 1 << 62;
const GENSYM_PREFIX_BITS: u32 = 22;
const GENSYM_COUNTER_LIMIT: u64 = 1 << (62 - GENSYM_PREFIX_BITS);
/// The serials of aliases: 31 bits.
const SERIAL_MASK: u32 = (1 << 31) - 1;

/// The most aliases alive at once on one thread (each costs about 40 bytes): past it, making
/// an alias fails and the expansion ends with a `:limit` error.
pub(crate) const MAX_LIVE_ALIASES: usize = 1 << 22;

/// What the table knows of one live alias.
struct AliasEntry {
    /// The alias's own id (a stale alias whose serial was reused does not match it).
    id: u64,
    /// The symbol it renames.
    base: Symbol,
    /// Owners: [`AliasRefs`] sets, transformers, aliases of it.
    refs: u32,
}

struct Interner {
    /// Name to index. Keyed by script text, so hashed with std's seeded hasher (see
    /// [`FxHasher`]'s docs for why not Fx).
    ids: HashMap<Rc<str>, u32>,
    names: Vec<Rc<str>>,
    gensym_counter: u64,
    /// Live aliases by serial.
    aliases: FxHashMap<u32, AliasEntry>,
    /// The serial tried first for the next alias.
    next_serial: u32,
    /// The bound on live aliases ([`MAX_LIVE_ALIASES`]; lowered by tests).
    alias_limit: usize,
}

/// Symbols a runtime interns before running any script (builtins, preludes): the table starts
/// this large, so building the first runtime does not rehash it again and again.
const INITIAL_SYMBOLS: usize = 2048;

impl Default for Interner {
    fn default() -> Interner {
        Interner {
            ids: HashMap::with_capacity(INITIAL_SYMBOLS),
            names: Vec::with_capacity(INITIAL_SYMBOLS),
            gensym_counter: 0,
            aliases: FxHashMap::default(),
            next_serial: 0,
            alias_limit: MAX_LIVE_ALIASES,
        }
    }
}

impl Interner {
    fn intern(&mut self, name: &str) -> Symbol {
        if let Some(&id) = self.ids.get(name) {
            return Symbol(u64::from(id));
        }
        // 2^32 names of at least 40 bytes each cannot be allocated: never reached.
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 symbols");
        let rc: Rc<str> = Rc::from(name);
        self.names.push(rc.clone());
        self.ids.insert(rc, id);
        Symbol(u64::from(id))
    }

    /// The name of `sym`.
    fn name_of(&self, sym: Symbol) -> Rc<str> {
        if sym.0 & (ALIAS_BIT | GENSYM_BIT) == GENSYM_BIT {
            let prefix = (sym.0 & ((1 << GENSYM_PREFIX_BITS) - 1)) as usize;
            let counter = (sym.0 & !GENSYM_BIT) >> GENSYM_PREFIX_BITS;
            return Rc::from(format!("#:{}{counter}", self.names[prefix]));
        }
        self.names[(sym.0 & u64::from(u32::MAX)) as usize].clone()
    }

    /// The live entry of alias `sym` (none for a plain symbol or a stale alias).
    fn entry(&self, sym: Symbol) -> Option<&AliasEntry> {
        if sym.0 & ALIAS_BIT == 0 {
            return None;
        }
        self.aliases
            .get(&sym.serial())
            .filter(|entry| entry.id == sym.0)
    }

    /// A new alias of `base` with one reference, or `None` at the limit.
    fn new_alias(&mut self, base: Symbol) -> Option<Symbol> {
        if self.aliases.len() >= self.alias_limit {
            return None;
        }
        let name_id = if base.0 & ALIAS_BIT != 0 {
            base.0 & u64::from(u32::MAX)
        } else if base.0 & GENSYM_BIT != 0 {
            // An alias of a gensym (a template a `defmacro` made): its name as a plain symbol.
            let name = self.name_of(base);
            self.intern(&name).0
        } else {
            base.0
        };
        // Fewer than 2^31 serials are live, so a free one is found; they are handed out in
        // order, so the one tried is almost always free.
        let mut serial = self.next_serial;
        while self.aliases.contains_key(&serial) {
            serial = (serial + 1) & SERIAL_MASK;
        }
        self.next_serial = (serial + 1) & SERIAL_MASK;
        let id = ALIAS_BIT | (u64::from(serial) << 32) | name_id;
        self.retain(base);
        self.aliases
            .insert(serial, AliasEntry { id, base, refs: 1 });
        Some(Symbol(id))
    }

    fn retain(&mut self, sym: Symbol) {
        if sym.0 & ALIAS_BIT == 0 {
            return;
        }
        if let Some(entry) = self.aliases.get_mut(&sym.serial()) {
            if entry.id == sym.0 {
                entry.refs = entry.refs.saturating_add(1);
            }
        }
    }

    /// Drops one reference to `sym`; frees the alias (and so on down its bases) at zero.
    fn release(&mut self, mut sym: Symbol) {
        while sym.0 & ALIAS_BIT != 0 {
            let serial = sym.serial();
            let Some(entry) = self.aliases.get_mut(&serial) else {
                return;
            };
            // A saturated count is never decremented: such an alias is kept.
            if entry.id != sym.0 || entry.refs == u32::MAX {
                return;
            }
            entry.refs -= 1;
            if entry.refs > 0 {
                return;
            }
            let base = entry.base;
            self.aliases.remove(&serial);
            sym = base;
        }
    }
}

thread_local! {
    static INTERNER: RefCell<Interner> = RefCell::new(Interner::default());
}

impl Symbol {
    /// Interns `name`.
    pub fn intern(name: &str) -> Symbol {
        INTERNER.with(|i| i.borrow_mut().intern(name))
    }

    /// A fresh symbol that no reader input produces (`#:g12`): uninterned, so making one
    /// stores nothing (a `defmacro` that makes one per expansion costs no memory for good);
    /// its id holds the prefix's name id and the counter. `string->symbol` of its name is
    /// another symbol. (Past 2^40 gensyms or with a prefix interned after 2^22 other names,
    /// the name is interned instead.)
    pub fn gensym(prefix: &str) -> Symbol {
        INTERNER.with(|i| {
            let mut i = i.borrow_mut();
            i.gensym_counter += 1;
            let counter = i.gensym_counter;
            let prefix_id = i.intern(prefix).0;
            if prefix_id < 1 << GENSYM_PREFIX_BITS && counter < GENSYM_COUNTER_LIMIT {
                Symbol(GENSYM_BIT | (counter << GENSYM_PREFIX_BITS) | prefix_id)
            } else {
                let name = format!("#:{prefix}{counter}");
                i.intern(&name)
            }
        })
    }

    /// The serial of an alias (meaningless for a plain symbol).
    fn serial(self) -> u32 {
        ((self.0 >> 32) as u32) & SERIAL_MASK
    }

    /// Whether `self` is an alias ([`AliasRefs::fresh`]); no lookup.
    pub(crate) fn is_alias(self) -> bool {
        self.0 & ALIAS_BIT != 0
    }

    /// The symbol `self` is an alias of, if it is one: while the alias lives, the symbol it
    /// was made from; for a stale alias (see the module docs), its plain name symbol.
    pub(crate) fn alias_base(self) -> Option<Symbol> {
        if self.0 & ALIAS_BIT == 0 {
            return None;
        }
        let live = INTERNER.with(|i| i.borrow().entry(self).map(|entry| entry.base));
        Some(live.unwrap_or(Symbol(self.0 & u64::from(u32::MAX))))
    }

    /// The symbol's name (an alias has its base's).
    pub fn name(self) -> Rc<str> {
        INTERNER.with(|i| i.borrow().name_of(self))
    }

    /// The numeric id (an alias's has its top bit set).
    pub fn id(self) -> u64 {
        self.0
    }
}

/// A set of references to aliases, released when it is dropped: what keeps aliases alive
/// (see the module docs). Plain symbols put in it are ignored.
#[derive(Default)]
pub(crate) struct AliasRefs(Vec<Symbol>);

impl AliasRefs {
    /// A fresh alias of `base` held by this set: a symbol with the same name that no reader
    /// input produces and [`Symbol::intern`] never returns. `None` when [`MAX_LIVE_ALIASES`]
    /// are alive.
    pub(crate) fn fresh(&mut self, base: Symbol) -> Option<Symbol> {
        let alias = INTERNER.with(|i| i.borrow_mut().new_alias(base))?;
        self.0.push(alias);
        Some(alias)
    }

    /// Holds `sym` too (if it is a live alias).
    pub(crate) fn retain(&mut self, sym: Symbol) {
        if sym.is_alias() {
            INTERNER.with(|i| i.borrow_mut().retain(sym));
            self.0.push(sym);
        }
    }

    /// Takes over everything `other` holds.
    pub(crate) fn absorb(&mut self, mut other: AliasRefs) {
        self.0.append(&mut other.0);
    }

    /// The aliases held, in the order they were added.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Symbol> + '_ {
        self.0.iter().copied()
    }
}

impl Drop for AliasRefs {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        // At thread exit the table may be gone already: then there is nothing to release.
        let _ = INTERNER.try_with(|i| {
            if let Ok(mut i) = i.try_borrow_mut() {
                for sym in self.0.drain(..) {
                    i.release(sym);
                }
            }
        });
    }
}

/// How many aliases are alive on this thread (for tests of their reclamation).
#[cfg(test)]
pub(crate) fn live_aliases() -> usize {
    INTERNER.with(|i| i.borrow().aliases.len())
}

/// Sets the bound on live aliases of this thread (tests of the `:limit` error).
#[cfg(test)]
pub(crate) fn set_alias_limit(limit: usize) {
    INTERNER.with(|i| i.borrow_mut().alias_limit = limit);
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.name())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_freed_with_their_last_owner() {
        let base = Symbol::intern("tmp");
        let before = live_aliases();
        let mut outer = AliasRefs::default();
        let a = outer.fresh(base).expect("below the limit");
        let b = {
            let mut inner = AliasRefs::default();
            let b = inner.fresh(a).expect("below the limit");
            assert_eq!(live_aliases(), before + 2);
            outer.retain(b);
            b
        };
        assert_ne!(a, base);
        assert_ne!(a, b);
        assert_eq!(&*b.name(), "tmp");
        assert_eq!(b.alias_base(), Some(a));
        assert_eq!(a.alias_base(), Some(base));
        assert_eq!(base.alias_base(), None);
        drop(outer);
        assert_eq!(live_aliases(), before);
        // Stale: still named, and its base is its plain name.
        assert_eq!(&*b.name(), "tmp");
        assert_eq!(b.alias_base(), Some(base));
        assert!(b.is_alias());
    }

    #[test]
    fn a_base_outlives_its_own_owner_while_an_alias_of_it_lives() {
        let base = Symbol::intern("x");
        let before = live_aliases();
        let mut first = AliasRefs::default();
        let a = first.fresh(base).expect("below the limit");
        let mut second = AliasRefs::default();
        let b = second.fresh(a).expect("below the limit");
        drop(first);
        assert_eq!(live_aliases(), before + 2);
        assert_eq!(b.alias_base(), Some(a));
        drop(second);
        assert_eq!(live_aliases(), before);
    }

    #[test]
    fn making_aliases_past_the_limit_fails_and_serials_are_reused() {
        let base = Symbol::intern("y");
        let before = live_aliases();
        set_alias_limit(before + 3);
        let mut refs = AliasRefs::default();
        for _ in 0..3 {
            assert!(refs.fresh(base).is_some());
        }
        assert_eq!(refs.fresh(base), None);
        drop(refs);
        // Freed serials make room again, many times over.
        for _ in 0..10_000 {
            let mut refs = AliasRefs::default();
            assert!(refs.fresh(base).is_some());
        }
        assert_eq!(live_aliases(), before);
        set_alias_limit(MAX_LIVE_ALIASES);
    }

    #[test]
    fn gensyms_are_distinct_named_and_not_interned() {
        let a = Symbol::gensym("vals");
        let b = Symbol::gensym("vals");
        assert_ne!(a, b);
        assert!(a.name().starts_with("#:vals"));
        assert_ne!(a.name(), b.name());
        assert_ne!(Symbol::intern(&a.name()), a);
        assert!(!a.is_alias());
        assert_eq!(a.alias_base(), None);
        // An alias of a gensym is named like it and leads back to it.
        let mut refs = AliasRefs::default();
        let alias = refs.fresh(a).expect("below the limit");
        assert_eq!(alias.name(), a.name());
        assert_eq!(alias.alias_base(), Some(a));
        let names = INTERNER.with(|i| i.borrow().names.len());
        for _ in 0..1000 {
            Symbol::gensym("vals");
        }
        assert_eq!(INTERNER.with(|i| i.borrow().names.len()), names);
    }

    #[test]
    fn fx_hasher_spreads_short_keys() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<FxHasher>::default();
        let hashes: std::collections::HashSet<u64> = ["a", "b", "ab", "ba", "abcdefghi"]
            .iter()
            .map(|s| build.hash_one(s))
            .collect();
        assert_eq!(hashes.len(), 5);
    }
}
