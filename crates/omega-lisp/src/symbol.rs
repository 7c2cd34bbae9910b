//! Interned symbols and keywords: a [`Symbol`] is a `u32` id into a per-thread table.
//!
//! # Implementation details
//!
//! Values are single-threaded (`Rc`), so one interner per thread is enough and lets a `Symbol`
//! print itself without a runtime handle. Names are never freed (symbols are few).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

/// An interned name (used by both symbols and keywords).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Symbol(u32);

struct Interner {
    ids: HashMap<Rc<str>, u32>,
    names: Vec<Rc<str>>,
    gensym_counter: u64,
    /// The symbol each alias renames: alias `ALIAS_BIT | i` is `aliases[i]`'s (see
    /// [`Symbol::alias`]).
    aliases: Vec<Symbol>,
}

/// Set in the id of an alias, so telling a plain symbol from an alias takes no lookup.
const ALIAS_BIT: u32 = 1 << 31;

/// Symbols a runtime interns before running any script (builtins, preludes): the table starts
/// this large, so building the first runtime does not rehash it again and again.
const INITIAL_SYMBOLS: usize = 2048;

impl Default for Interner {
    fn default() -> Interner {
        Interner {
            ids: HashMap::with_capacity(INITIAL_SYMBOLS),
            names: Vec::with_capacity(INITIAL_SYMBOLS),
            gensym_counter: 0,
            aliases: Vec::new(),
        }
    }
}

thread_local! {
    static INTERNER: RefCell<Interner> = RefCell::new(Interner::default());
}

impl Symbol {
    /// Interns `name`.
    pub fn intern(name: &str) -> Symbol {
        INTERNER.with(|i| {
            let mut i = i.borrow_mut();
            if let Some(&id) = i.ids.get(name) {
                return Symbol(id);
            }
            let id = u32::try_from(i.names.len())
                .ok()
                .filter(|id| id & ALIAS_BIT == 0)
                .expect("fewer than 2^31 symbols");
            let rc: Rc<str> = Rc::from(name);
            i.names.push(rc.clone());
            i.ids.insert(rc, id);
            Symbol(id)
        })
    }

    /// A fresh symbol that no reader input produces (`#:g12`).
    pub fn gensym(prefix: &str) -> Symbol {
        let n = INTERNER.with(|i| {
            let mut i = i.borrow_mut();
            i.gensym_counter += 1;
            i.gensym_counter
        });
        Symbol::intern(&format!("#:{prefix}{n}"))
    }

    /// A fresh alias of `self`: a symbol with the same name that no reader input produces and
    /// [`Symbol::intern`] never returns. The expander renames the identifiers a `syntax-rules`
    /// template introduces to aliases (`syntax_rules.rs`); [`Symbol::alias_base`] leads back.
    pub(crate) fn alias(self) -> Symbol {
        INTERNER.with(|i| {
            let mut i = i.borrow_mut();
            let index = u32::try_from(i.aliases.len())
                .ok()
                .filter(|n| n & ALIAS_BIT == 0)
                .expect("fewer than 2^31 aliases");
            i.aliases.push(self);
            Symbol(ALIAS_BIT | index)
        })
    }

    /// The symbol `self` is an alias of, if it is one ([`Symbol::alias`]).
    pub(crate) fn alias_base(self) -> Option<Symbol> {
        if self.0 & ALIAS_BIT == 0 {
            return None;
        }
        INTERNER.with(|i| {
            i.borrow()
                .aliases
                .get((self.0 & !ALIAS_BIT) as usize)
                .copied()
        })
    }

    /// The symbol's name (an alias has its base's).
    pub fn name(self) -> Rc<str> {
        INTERNER.with(|i| {
            let i = i.borrow();
            let mut id = self.0;
            while id & ALIAS_BIT != 0 {
                id = i.aliases[(id & !ALIAS_BIT) as usize].0;
            }
            i.names[id as usize].clone()
        })
    }

    /// The numeric id.
    pub fn id(self) -> u32 {
        self.0
    }
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
