//! The preludes — the parts of the language written in Lisp (`builtins/prelude.lisp`,
//! `builtins/scheme_prelude.lisp`, `builtins/async_prelude.lisp`) — and how a runtime loads
//! them.
//!
//! # Procedures and macros load on first use
//!
//! Reading, expanding and compiling the preludes' 33 KB of Lisp was three quarters of building
//! a runtime, and so of `omega run` on a small script (9.3 M of its 11.2 M instructions), while
//! most scripts use a handful of the preludes' ~70 procedures and ~20 macros. So when a runtime
//! is built, a procedure definition — a top-level form `(define (name …) …)` whose name nothing
//! has bound yet — and a macro definition `(defmacro name …)` are not compiled: the name's
//! global slot is made and the form's text recorded as *pending* ([`Lazy`]).
//!
//! * Procedures: the expander notes each pending global that a form refers to (a variable
//!   reference or a `set!`, [`Lazy::want`]); once [`crate::expander::expand_toplevel`] is done
//!   with the form, [`load_wanted`] reads, expands, compiles and runs those definitions — and,
//!   in the same loop, the pending ones they refer to — before the form can run.
//! * Macros: the expander needs the transformer at once, so looking a macro up
//!   ([`macro_named`]) loads a pending one there and then, with the procedures it refers to.
//!
//! Any other top-level form would load when the runtime is built, in order, with the pending
//! definitions it refers to; the preludes have none (a test checks it), so building a runtime
//! runs no Lisp. The values they need are made with the natives instead (`%param-tag`, and
//! `%raise`, `%async`, `%await`: natives under names a script does not rebind).
//!
//! # Why this is the same language as loading everything at start
//!
//! 1. Running a pending definition only makes a closure that captures nothing and defines the
//!    global (or the macro): it has no other effect, so when it runs does not matter, only that
//!    it has run before anything uses it.
//! 2. Code reaches a global only through the expander (`var_ref`, `set!`), which notes pending
//!    ones, and everything that compiles code expands it with `expand_toplevel`, which loads
//!    them before the code can run; the expander finds macros only through [`macro_named`].
//!    The other readers of globals load first too: natives that call a prelude helper
//!    ([`global`]), `Runtime::global`; `Runtime::names` lists pending names as defined.
//! 3. Defining a procedure's name by any means (`State::define_global`: a script's `define` or
//!    `set!`, a host's `set_global`) forgets the pending definition, which loading at start would
//!    have run earlier and which the new definition would have replaced. A script's macro of a
//!    pending macro's name is the script's; the preludes' own code still sees the preludes'.
//! 4. A pending body expands under the preludes' macros (`Lazy::macros`), not under macros a
//!    script has defined since, with the limits the preludes load under (the script's heap limit
//!    apart) and nothing charged to the script's steps, as at start.
//! 5. Every pending name gets its slot when the runtime is built, so slots do not depend on
//!    which definitions a script used; prelude code refers only to names that exist when the
//!    preludes end (a test checks it), so compiled pending definitions are shared by the
//!    runtimes of a thread whose slots match ([`Cache`]), with the slots they refer to.
//! 6. Procedures load iteratively: a pending body's own references join the wanted list rather
//!    than loading from inside the expander, so the native stack stays as deep as the form's own
//!    expansion. A macro loads inside the expansion that meets it, one shallow definition deep.
//!
//! A definition that fails to load (the heap limit met while compiling it) stays pending, and
//! the error is the form's.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::OnceLock;

use crate::builtins;
use crate::bytecode::Proto;
use crate::error::LispResult;
use crate::limits::Limits;
use crate::native::NativeKind;
use crate::reader::{self, Syntax, SyntaxKind};
use crate::runtime::Runtime;
use crate::state::State;
use crate::symbol::{FxHashMap, Symbol};
use crate::value::{Closure, Value};

/// One top-level form of a prelude's text.
#[derive(Debug)]
struct Chunk {
    /// The prelude's name in positions (`<prelude>`, `<async-prelude>`).
    file: &'static str,
    /// The line the form starts on.
    line: u32,
    /// The form's text, with the comments after it up to the next form.
    text: &'static str,
    /// For `(define (name …) …)`, the name: a procedure definition, which may load on first use.
    procedure: Option<&'static str>,
    /// For `(defmacro name …)`, the name: a macro, which may load on first use.
    macro_name: Option<&'static str>,
}

/// The preludes' top-level forms, in order (split once per process).
fn chunks() -> &'static [Chunk] {
    static CHUNKS: OnceLock<Vec<Chunk>> = OnceLock::new();
    CHUNKS.get_or_init(|| {
        let mut out = split(builtins::PRELUDE, "<prelude>");
        out.extend(split(
            builtins::async_surface::ASYNC_PRELUDE,
            "<async-prelude>",
        ));
        out
    })
}

/// Splits a prelude's text into its top-level forms: each starts with `(` at the start of a
/// line (the preludes' layout, which a test checks by reading every chunk).
fn split(text: &'static str, file: &'static str) -> Vec<Chunk> {
    let mut starts = Vec::new();
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.starts_with('(') {
            starts.push((offset, u32::try_from(i + 1).expect("a prelude is short")));
        }
        offset += line.len();
    }
    let ends = starts.iter().skip(1).map(|&(o, _)| o).chain([text.len()]);
    starts
        .iter()
        .zip(ends)
        .map(|(&(start, line), end)| {
            let text = &text[start..end];
            let name_after = |prefix: &str| {
                text.strip_prefix(prefix).and_then(|rest| {
                    let name = &rest[..rest
                        .find(|c: char| c.is_whitespace() || c == ')')
                        .unwrap_or(0)];
                    (!name.is_empty()).then_some(name)
                })
            };
            Chunk {
                file,
                line,
                text,
                procedure: name_after("(define ("),
                macro_name: name_after("(defmacro "),
            }
        })
        .collect()
}

/// A procedure or macro definition not loaded yet; shared by the runtimes of a thread whose
/// slots match, with its compiled code once one of them has compiled it.
pub(crate) struct Pending {
    chunk: &'static Chunk,
    /// The compiled definition and every global slot its code refers to (which must load
    /// with it when the code is reused without expanding it again).
    proto: RefCell<Option<Compiled>>,
}

/// A pending definition's code, and the global slots it refers to.
type Compiled = (Rc<Proto>, Rc<[u32]>);

/// A runtime's pending definitions (see the module docs).
///
/// Invariant: `pending[slot]` is `Some` only while global `slot` is unbound; `wanted` holds
/// slots the expander saw referred to since the last [`load_wanted`] (some may have loaded or
/// been defined since: loading skips them).
#[derive(Default)]
pub(crate) struct Lazy {
    pending: Vec<Option<Rc<Pending>>>,
    wanted: Vec<u32>,
    /// The preludes' macros — those run at start and those loaded since — under which pending
    /// bodies expand.
    macros: Rc<HashMap<Symbol, Value>>,
    /// While a runtime loads the preludes itself: the code run so far, in order, procedures
    /// that forms loaded at start referred to included (what [`Cache::forms`] replays).
    record: Option<Vec<Rc<Proto>>>,
    /// While a pending definition expands: every global slot its code refers to.
    noting: Option<Vec<u32>>,
    /// Macros not loaded yet, by name (at most a few dozen plain names, so the fast hash
    /// is safe: see `FxHasher`).
    pending_macros: FxHashMap<Symbol, Rc<Pending>>,
    /// How many pending definitions are expanding (nested): while above zero, macros are
    /// looked up in `macros`, the preludes' own, instead of the script's table.
    in_prelude: u32,
}

impl Lazy {
    /// Notes that code refers to global `slot` (the expander's variable references and
    /// `set!`s): loaded after the form's expansion if it is pending.
    #[inline]
    pub(crate) fn want(&mut self, slot: u32) {
        if let Some(noting) = self.noting.as_mut() {
            noting.push(slot);
        }
        if let Some(Some(_)) = self.pending.get(slot as usize) {
            self.wanted.push(slot);
        }
    }

    /// Global `slot` is being defined: its pending definition, if any, is forgotten.
    #[inline]
    pub(crate) fn forget(&mut self, slot: u32) {
        if let Some(p) = self.pending.get_mut(slot as usize) {
            *p = None;
        }
    }

    /// Forgets the slots noted since the last load (the form's expansion failed: they stay
    /// pending, to load when a form that refers to them expands).
    pub(crate) fn forget_wanted(&mut self) {
        self.wanted.clear();
    }

    /// Whether global `slot` has a pending definition.
    pub(crate) fn is_pending(&self, slot: u32) -> bool {
        matches!(self.pending.get(slot as usize), Some(Some(_)))
    }

    fn set(&mut self, slot: u32, p: Rc<Pending>) {
        let i = slot as usize;
        if self.pending.len() <= i {
            self.pending.resize(i + 1, None);
        }
        self.pending[i] = Some(p);
    }

    fn take(&mut self, slot: u32) -> Option<Rc<Pending>> {
        self.pending.get_mut(slot as usize).and_then(Option::take)
    }

    /// Whether macro `name` is pending.
    fn is_pending_macro(&self, name: Symbol) -> bool {
        !self.pending_macros.is_empty() && self.pending_macros.contains_key(&name)
    }

    fn all(&self) -> Vec<(u32, Rc<Pending>)> {
        self.pending
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((u32::try_from(i).ok()?, p.clone()?)))
            .collect()
    }
}

/// The preludes as a thread's first runtime loaded them, reused by every later runtime there
/// whose global table before the preludes is the same, name for name and slot for slot
/// (`names_before`); the preludes then allocate the same slots in the same order
/// (`names_after`). Each runtime still runs the forms' top-level code, so it gets its own
/// closures, macros and data. Code whose constants could be mutated or hold runtime-bound
/// natives is never cached (see [`shareable`]).
struct Cache {
    names_before: Vec<Symbol>,
    names_after: Vec<Symbol>,
    /// The code that ran at start, in order: the forms and the procedures they referred to.
    forms: Vec<Rc<Proto>>,
    /// The pending procedure definitions, by slot.
    pending: Vec<(u32, Rc<Pending>)>,
    /// The pending macros, by name.
    pending_macros: Vec<(Symbol, Rc<Pending>)>,
}

thread_local! {
    static CACHE: RefCell<Option<Rc<Cache>>> = const { RefCell::new(None) };
}

/// Whether `proto` (and every function inside it) may be shared by runtimes: its constants
/// are immutable data or stateless builtins.
fn shareable(proto: &Proto) -> bool {
    proto.consts.iter().all(|c| match c {
        Value::Str(_) => true,
        Value::Native(n) => matches!(n.kind, NativeKind::Builtin(_)),
        // A lambda with no free variables, compiled as a constant closure.
        Value::Closure(c) => c.free.is_empty() && shareable(&c.proto),
        other => other.heap_address().is_none(),
    }) && proto.protos.iter().all(|p| shareable(p))
}

/// Loads the preludes into a runtime being built: from this thread's [`Cache`] when it fits,
/// else chunk by chunk (and cached when shareable). Procedure definitions become pending;
/// every other form's code runs here, in order.
pub(crate) fn load(rt: &Runtime) {
    let names_before = rt.with_state(|st| st.global_names.clone());
    let cached = CACHE
        .with(|c| c.borrow().clone())
        .filter(|c| c.names_before == names_before);
    if let Some(cache) = cached {
        rt.with_state(|st| {
            for name in &cache.names_after[names_before.len()..] {
                st.global_slot(*name);
            }
            for (slot, p) in &cache.pending {
                st.lazy.set(*slot, p.clone());
            }
            for (name, p) in &cache.pending_macros {
                st.lazy.pending_macros.insert(*name, p.clone());
            }
        });
        for proto in &cache.forms {
            rt.run_proto(proto.clone())
                .expect("the cached prelude runs as it did");
        }
        snapshot_macros(rt);
        return;
    }
    // Every procedure's slot first, so that a form loaded at start that refers to one defined
    // further down notes it as pending.
    let eager: Vec<&'static Chunk> = rt.with_state(|st| {
        st.lazy.record = Some(Vec::new());
        // Procedures loaded while the preludes load expand under the macros there are so far.
        st.lazy.macros = Rc::new(st.macros.clone());
        chunks()
            .iter()
            .filter(|chunk| {
                if let Some(name) = chunk.macro_name {
                    let name = Symbol::intern(name);
                    if st.macros.contains_key(&name) {
                        return true;
                    }
                    // `defmacro` names a global slot too: made now, as for procedures.
                    st.global_slot(name);
                    let p = Pending {
                        chunk,
                        proto: RefCell::new(None),
                    };
                    st.lazy.pending_macros.insert(name, Rc::new(p));
                    return false;
                }
                let Some(name) = chunk.procedure else {
                    return true;
                };
                let slot = st.global_slot(Symbol::intern(name));
                if st.globals[slot as usize].is_some() {
                    // A prelude procedure that replaces a builtin loads at start.
                    return true;
                }
                st.lazy.set(
                    slot,
                    Rc::new(Pending {
                        chunk,
                        proto: RefCell::new(None),
                    }),
                );
                false
            })
            .collect()
    });
    for chunk in eager {
        rt.set_thread_heap_limit();
        let syntax =
            reader::read_all_at(chunk.text, chunk.file, chunk.line).expect("the preludes read");
        let file: Rc<str> = Rc::from(chunk.file);
        let mut queue: std::collections::VecDeque<Syntax> = syntax.into();
        while let Some(form) = queue.pop_front() {
            if let SyntaxKind::List(items, None) = &form.kind {
                if items[0].as_symbol().is_some_and(|h| &*h.name() == "begin") {
                    for item in items[1..].iter().rev() {
                        queue.push_front(item.clone());
                    }
                    continue;
                }
            }
            let proto = rt
                .with_state(|st| {
                    st.lent_steps = Some(0);
                    let expanded = crate::expander::expand_toplevel(st, &form);
                    st.lent_steps = None;
                    expanded.and_then(|(expr, vars)| {
                        crate::compiler::compile_toplevel(&expr, &vars, file.clone())
                    })
                })
                .expect("the preludes compile");
            rt.run_proto(proto.clone()).expect("the preludes run");
            rt.with_state(|st| st.lazy.record.get_or_insert_with(Vec::new).push(proto));
        }
    }
    snapshot_macros(rt);
    let forms = rt.with_state(|st| st.lazy.record.take().unwrap_or_default());
    if forms.iter().all(|p| shareable(p)) {
        let (names_after, pending, pending_macros) = rt.with_state(|st| {
            let macros = st
                .lazy
                .pending_macros
                .iter()
                .map(|(name, p)| (*name, p.clone()))
                .collect();
            (st.global_names.clone(), st.lazy.all(), macros)
        });
        CACHE.with(|c| {
            *c.borrow_mut() = Some(Rc::new(Cache {
                names_before,
                names_after,
                forms,
                pending,
                pending_macros,
            }))
        });
    }
}

fn snapshot_macros(rt: &Runtime) {
    rt.with_state(|st| st.lazy.macros = Rc::new(st.macros.clone()));
}

/// Loads the pending definitions the expander noted (and those they refer to), one after the
/// other. On an error the rest stay pending.
pub(crate) fn load_wanted(st: &mut State) -> LispResult<()> {
    while let Some(slot) = st.lazy.wanted.pop() {
        if let Err(e) = load_slot(st, slot) {
            st.lazy.wanted.clear();
            return Err(e);
        }
    }
    Ok(())
}

/// The value of global `name`, loading it first if it is pending (natives that call a prelude
/// helper, `Runtime::global`).
pub(crate) fn global(st: &mut State, name: Symbol) -> LispResult<Option<Value>> {
    let slot = st.global_slot(name);
    if st.lazy.is_pending(slot) {
        st.lazy.wanted.push(slot);
        load_wanted(st)?;
    }
    Ok(st.globals[slot as usize].clone())
}

/// The names of the pending definitions, procedures and macros (defined, as far as a script
/// can tell).
pub(crate) fn pending_names(st: &State) -> impl Iterator<Item = Symbol> + '_ {
    st.lazy
        .pending
        .iter()
        .zip(&st.global_names)
        .filter(|(p, _)| p.is_some())
        .map(|(_, name)| *name)
        .chain(st.lazy.pending_macros.keys().copied())
}

/// The global macro `name` as the expander sees it here: the script's (or, while a pending
/// definition expands, the preludes'), loading a pending prelude macro first.
pub(crate) fn macro_named(st: &mut State, name: Symbol) -> LispResult<Option<Value>> {
    let table = |st: &State| -> Option<Value> {
        if st.lazy.in_prelude > 0 {
            st.lazy.macros.get(&name).cloned()
        } else {
            st.macros.get(&name).cloned()
        }
    };
    if let Some(m) = table(st) {
        return Ok(Some(m));
    }
    if !st.lazy.is_pending_macro(name) {
        return Ok(None);
    }
    load_macro(st, name)?;
    Ok(table(st))
}

/// Loads pending macro `name`: its transformer joins the preludes' table and, unless the script
/// has a macro of that name, the script's. The procedures the transformer refers to load too,
/// before it can run. Called from inside an expansion (the macro is needed now), so this nests;
/// a prelude macro's definition is shallow.
fn load_macro(st: &mut State, name: Symbol) -> LispResult<()> {
    let Some(p) = st.lazy.pending_macros.remove(&name) else {
        return Ok(());
    };
    let result = with_loading_limits(st, |st| {
        let proto = compile(st, &p)?;
        load_wanted(st)?;
        // `DefMacro` writes the script's table: it runs on an empty one, kept aside.
        let script = std::mem::take(&mut st.macros);
        let ran = run(st, proto);
        let defined = std::mem::replace(&mut st.macros, script).remove(&name);
        ran?;
        Ok(defined)
    });
    match result {
        Ok(Some(m)) => {
            Rc::make_mut(&mut st.lazy.macros).insert(name, m.clone());
            st.macros.entry(name).or_insert(m);
            Ok(())
        }
        Ok(None) => Err(crate::error::LispError::new(
            crate::error::ErrorKind::Error,
            format!("internal error: the prelude's {name} defines no macro"),
        )),
        Err(e) => {
            st.lazy.pending_macros.insert(name, p);
            Err(e)
        }
    }
}

/// Runs a definition's compiled code, recording it while the runtime is being built.
fn run(st: &mut State, proto: Rc<Proto>) -> LispResult<()> {
    let f = Value::Closure(Rc::new(Closure {
        proto: proto.clone(),
        free: Box::new([]),
    }));
    crate::vm::call_sync(st, &f, Vec::new())?;
    if let Some(record) = st.lazy.record.as_mut() {
        record.push(proto);
    }
    Ok(())
}

/// Runs `f` as the preludes load at start: under [`loading_limits`] (but the script's heap
/// limit), nothing charged to a fiber's lent budget, no interrupt hook.
fn with_loading_limits<T>(st: &mut State, f: impl FnOnce(&mut State) -> T) -> T {
    let saved_steps = st.lent_steps.take();
    let saved_hook = st.lent_interrupt.take();
    let heap = st.limits.max_heap_bytes;
    let saved_limits = std::mem::replace(
        &mut st.limits,
        Limits {
            max_heap_bytes: heap,
            ..loading_limits()
        },
    );
    reader::set_thread_max_string_len(st.limits.max_string_len);
    let out = f(st);
    st.lent_steps = saved_steps;
    st.lent_interrupt = saved_hook;
    st.limits = saved_limits;
    reader::set_thread_max_string_len(st.limits.max_string_len);
    out
}

/// Loads pending definition `slot`, if it still is one.
fn load_slot(st: &mut State, slot: u32) -> LispResult<()> {
    let Some(p) = st.lazy.take(slot) else {
        return Ok(());
    };
    let result = with_loading_limits(st, |st| {
        let proto = compile(st, &p)?;
        run(st, proto)
    });
    if result.is_err() && st.globals[slot as usize].is_none() {
        st.lazy.set(slot, p);
    }
    result
}

/// The compiled code of a pending definition: cached, or read, expanded (under the preludes'
/// macros) and compiled now.
fn compile(st: &mut State, p: &Pending) -> LispResult<Rc<Proto>> {
    if let Some((proto, refers_to)) = p.proto.borrow().clone() {
        for &slot in refers_to.iter() {
            st.lazy.want(slot);
        }
        return Ok(proto);
    }
    let chunk = p.chunk;
    let forms = reader::read_all_at(chunk.text, chunk.file, chunk.line)?;
    let [form] = forms.as_slice() else {
        return Err(crate::error::LispError::new(
            crate::error::ErrorKind::Error,
            format!(
                "internal error: {}:{} is not one form",
                chunk.file, chunk.line
            ),
        ));
    };
    let names = st.global_names.len();
    let outer = st.lazy.noting.replace(Vec::new());
    st.lazy.in_prelude += 1;
    st.lent_steps = Some(0);
    let expanded = crate::expander::expand_one(st, form);
    st.lent_steps = None;
    st.lazy.in_prelude -= 1;
    let refers_to = std::mem::replace(&mut st.lazy.noting, outer).unwrap_or_default();
    let (expr, vars) = expanded?;
    let proto = crate::compiler::compile_toplevel(&expr, &vars, Rc::from(chunk.file))?;
    if st.global_names.len() == names && shareable(&proto) {
        *p.proto.borrow_mut() = Some((proto.clone(), refers_to.into()));
    }
    Ok(proto)
}

/// Limits under which the preludes load when a runtime is built: none on steps.
pub(crate) fn loading_limits() -> Limits {
    Limits {
        max_steps: None,
        ..Limits::default()
    }
}

/// Whether this thread has cached the preludes (tests).
#[cfg(test)]
pub(crate) fn cache_is_set() -> bool {
    CACHE.with(|c| c.borrow().is_some())
}

#[cfg(test)]
mod tests;
