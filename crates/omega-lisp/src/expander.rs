//! The expander: [`Syntax`] → core [`Expr`]. Recognises the special forms of SPEC §6.2,
//! expands macros (`defmacro`s run on the VM at compile time; `syntax-rules` macros of
//! `define-syntax`, `let-syntax` and `letrec-syntax` through `syntax_rules.rs`), desugars
//! `let*`, named `let`, `do`, `cond`, `case`, `when`, `unless` and quasiquote, and resolves
//! every identifier to a lexical [`VarId`], a local macro or a global slot.
//!
//! This file holds the core (scopes, resolution, special forms, lambda); by concept, the
//! submodules hold macro uses and definitions (`macros`), bodies and their definitions
//! (`body`), and the derived forms (`derived`: named `let`, `do`, `cond`, `case`, `try`,
//! quasiquote).
//!
//! # Implementation details
//!
//! * Recursion is bounded by [`EXPAND_LIMIT`] (the reader bounds nesting; the guard also stops a
//!   macro that keeps expanding into itself: a `:limit` error for `syntax-rules` macros).
//! * Scopes: one [`Scope`] per binding form, a stack. A body always opens its own scope, which
//!   holds its internal definitions and its `define-syntax` macros (bound while the body is
//!   flattened, so later forms of the body can use them).
//! * Hygiene (see `syntax_rules.rs` for what is and is not hygienic): a `syntax-rules` template's
//!   identifiers arrive as aliases (`AliasRefs::fresh`), held by the expander until the
//!   top-level form is expanded (`symbol.rs` on their reclamation). [`Expander::resolve`]
//!   looks an alias up like any symbol; if the expansion did not bind it, it looks its base up in the scopes
//!   of the macro's definition (the outermost `env_depth` ones, recorded per alias in
//!   `alias_env`; none for a top-level macro), then among globals. Those scopes are still the
//!   bottom of the stack wherever a local macro can be used. Globals, special forms and global
//!   macros are keyed by the plain symbol; `quote`, `quasiquote` and `case` strip aliases from
//!   data.
//! * Global `syntax-rules` macros sit in the runtime's macro table as a foreign value
//!   ([`MacroTransformer`]) and are defined at expansion time (so `omega check` sees them).
//!   `syntax-rules` work is charged to the lent steps (`vm::charge_lent`, which also polls
//!   interrupts and the heap limit) and held to [`Limits::max_expansion_work`] per top-level
//!   form.
//!
//! [`Limits::max_expansion_work`]: crate::Limits::max_expansion_work
//! * Variables record whether a nested lambda captures them and whether they are assigned; the
//!   compiler uses that to decide which live in cells.
//! * `with-lock`, `with-locks` and `with-timeout` are macros of the async prelude
//!   (`builtins/async_prelude.lisp`), not special forms.

use std::rc::Rc;

use crate::bytecode::PrimOp;
use crate::error::{LispError, LispResult, Span};
use crate::ir::{Expr, ExprKind, Lambda, VarId, VarInfo};
use crate::reader::{Syntax, SyntaxKind, MAX_NESTING};
use crate::stack_guard::StackGuard;
use crate::state::State;
use crate::symbol::{AliasRefs, Symbol};
use crate::syntax_rules::{self, MacroTransformer, SyntaxRules};
use crate::value::Value;

#[cfg(test)]
mod alias_tests;
mod body;
mod derived;
mod macros;

/// Deepest expansion recursion accepted.
pub(crate) const EXPAND_LIMIT: usize = MAX_NESTING + 100;

/// Expands one top-level form.
pub(crate) fn expand_toplevel(st: &mut State, form: &Syntax) -> LispResult<(Expr, Vec<VarInfo>)> {
    let expanded = match expand_one(st, form) {
        Ok(expanded) => expanded,
        Err(e) => {
            st.lazy.forget_wanted();
            return Err(e);
        }
    };
    // The preludes' procedures the form refers to, before it can run (`prelude.rs`).
    crate::prelude::load_wanted(st)?;
    Ok(expanded)
}

/// [`expand_toplevel`] without loading the pending prelude procedures the form refers to
/// (`prelude.rs` loads them in its own loop).
pub(crate) fn expand_one(st: &mut State, form: &Syntax) -> LispResult<(Expr, Vec<VarInfo>)> {
    let mut ex = Expander {
        st,
        vars: Vec::new(),
        scopes: Vec::new(),
        fn_depth: 0,
        depth: 0,
        guard: StackGuard::new(),
        alias_env: std::collections::HashMap::new(),
        renamed: false,
        work: 0,
        aliases: AliasRefs::default(),
    };
    let e = ex.expand(form)?;
    Ok((e, ex.vars))
}

/// What an identifier means where it is used.
#[derive(Clone)]
enum Meaning {
    /// A lexical variable.
    Var(VarId),
    /// A macro bound by `let-syntax`, `letrec-syntax` or a body's `define-syntax`.
    Macro(Rc<SyntaxRules>),
    /// Not bound lexically: the global, special form or global macro of this (unaliased) name.
    Free(Symbol),
}

impl PartialEq for Meaning {
    fn eq(&self, other: &Meaning) -> bool {
        match (self, other) {
            (Meaning::Var(a), Meaning::Var(b)) => a == b,
            (Meaning::Macro(a), Meaning::Macro(b)) => Rc::ptr_eq(a, b),
            (Meaning::Free(a), Meaning::Free(b)) => a == b,
            _ => false,
        }
    }
}

/// The identifiers one binding form introduces (variables, or macros: never `Free`), latest
/// last. Past [`Scope::INDEX_AFTER`] names a hash index keeps lookups constant-time, so a
/// lambda with 400k parameters that uses them expands in linear time.
#[derive(Default)]
struct Scope {
    names: Vec<(Symbol, Meaning)>,
    index: Option<std::collections::HashMap<Symbol, Meaning>>,
}

impl Scope {
    const INDEX_AFTER: usize = 16;

    fn insert(&mut self, name: Symbol, meaning: Meaning) {
        self.names.push((name, meaning.clone()));
        if let Some(index) = &mut self.index {
            index.insert(name, meaning);
        } else if self.names.len() > Scope::INDEX_AFTER {
            // Later bindings of a name shadow earlier ones, as in the linear search.
            self.index = Some(self.names.iter().cloned().collect());
        }
    }

    fn get(&self, name: Symbol) -> Option<&Meaning> {
        match &self.index {
            Some(index) => index.get(&name),
            None => self
                .names
                .iter()
                .rev()
                .find(|(s, _)| *s == name)
                .map(|(_, m)| m),
        }
    }
}

struct Expander<'s> {
    st: &'s mut State,
    vars: Vec<VarInfo>,
    scopes: Vec<Scope>,
    fn_depth: u32,
    depth: usize,
    guard: StackGuard,
    /// The scope depth of the definition environment of each alias made by a macro defined
    /// in a local scope (`let-syntax` …); an alias not listed resolves at the top level.
    alias_env: std::collections::HashMap<Symbol, usize>,
    /// Whether a `syntax-rules` macro was expanded, so quoted data may hold aliases.
    renamed: bool,
    /// `syntax-rules` expansion work so far, held to `Limits::max_expansion_work`.
    work: u64,
    /// The aliases this form's expansions made, freed when the form is expanded (the core
    /// expression names variables by index and globals by plain name; see `symbol.rs`).
    aliases: AliasRefs,
}

fn pos(span: &Span) -> (u32, u32) {
    (span.line, span.col)
}

fn err(span: &Span, msg: impl Into<String>) -> LispError {
    LispError::syntax(span.clone(), msg)
}

fn is_head(s: &Syntax, name: &str) -> bool {
    match &s.kind {
        SyntaxKind::List(items, _) => items
            .first()
            .and_then(Syntax::as_symbol)
            .is_some_and(|h| &*h.name() == name),
        _ => false,
    }
}

fn list_items(s: &Syntax) -> Option<&[Syntax]> {
    match &s.kind {
        SyntaxKind::List(items, None) => Some(items),
        SyntaxKind::Atom(Value::Nil) => Some(&[]),
        _ => None,
    }
}

/// The symbol an alias stands for, through every layer of renaming.
pub(crate) fn unalias(mut sym: Symbol) -> Symbol {
    while let Some(base) = sym.alias_base() {
        sym = base;
    }
    sym
}

/// `v` with every alias `strip` accepts replaced by its plain symbol (quoted data in a template
/// is not renamed). Walks lists along their tails; nesting past [`MAX_NESTING`] is left as it
/// is.
fn strip_value(v: &Value, depth: usize, strip: &dyn Fn(Symbol) -> bool) -> Value {
    match v {
        Value::Symbol(s) if s.is_alias() && strip(*s) => Value::Symbol(unalias(*s)),
        Value::Pair(_) if depth <= MAX_NESTING => {
            let mut items = Vec::new();
            let mut cur = v.clone();
            while let Value::Pair(p) = &cur {
                if items.len() >= 1 << 24 {
                    // Too long to be source (or cyclic data a `defmacro` quoted): as it is.
                    return v.clone();
                }
                items.push(strip_value(&p.car(), depth + 1, strip));
                let next = p.cdr();
                cur = next;
            }
            Value::list_with_tail(items, strip_value(&cur, depth + 1, strip))
        }
        other => other.clone(),
    }
}

/// What `sym` means seeing the outermost `limit` of `scopes` (see [`Expander::resolve`]).
fn resolve_in(
    scopes: &[Scope],
    alias_env: &std::collections::HashMap<Symbol, usize>,
    mut sym: Symbol,
    mut limit: usize,
) -> Meaning {
    loop {
        if let Some(m) = scopes[..limit]
            .iter()
            .rev()
            .find_map(|scope| scope.get(sym))
        {
            return m.clone();
        }
        match sym.alias_base() {
            Some(base) => {
                limit = limit.min(alias_env.get(&sym).copied().unwrap_or(0));
                sym = base;
            }
            None => return Meaning::Free(sym),
        }
    }
}

impl Expander<'_> {
    /// What `sym` means here (see `syntax_rules.rs` on hygiene): its innermost binding among
    /// the visible scopes; for an alias the expansion did not bind, what its base meant in the
    /// macro's definition environment (the scopes below its depth), and so on.
    fn resolve(&self, sym: Symbol) -> Meaning {
        self.resolve_in(sym, self.scopes.len())
    }

    /// [`Expander::resolve`] seeing only the outermost `limit` scopes.
    fn resolve_in(&self, sym: Symbol, limit: usize) -> Meaning {
        resolve_in(&self.scopes, &self.alias_env, sym, limit)
    }

    /// The variable `sym` names here, if it names a lexical variable.
    fn lookup(&self, sym: Symbol) -> Option<VarId> {
        match self.resolve(sym) {
            Meaning::Var(id) => Some(id),
            _ => None,
        }
    }

    /// Whether `sym` is bound lexically here (a variable or a local macro).
    fn is_local(&self, sym: Symbol) -> bool {
        !matches!(self.resolve(sym), Meaning::Free(_))
    }

    /// Whether `sym` means the special form or global macro called `name` here.
    fn means(&self, sym: Symbol, name: &str) -> bool {
        matches!(self.resolve(sym), Meaning::Free(b) if &*b.name() == name)
    }

    /// The plain value of datum `s` (what `quote` returns), aliases stripped.
    fn datum(&self, s: &Syntax) -> Value {
        let v = s.to_value();
        if self.renamed {
            strip_value(&v, 0, &|_| true)
        } else {
            v
        }
    }

    /// The value of `s` as a `defmacro` argument. Aliases stay (so an introduced name the
    /// `defmacro`'s output binds stays private), except free aliases of R7RS auxiliary syntax
    /// (`else => _ ... unquote unquote-splicing`), so a `defmacro` that compares an argument
    /// with `'else` sees a template's `else`.
    fn macro_arg(&self, s: &Syntax) -> Value {
        let v = s.to_value();
        if !self.renamed {
            return v;
        }
        let auxiliary = |sym: Symbol| {
            matches!(
                &*sym.name(),
                "else" | "=>" | "_" | "..." | "unquote" | "unquote-splicing"
            ) && !self.is_local(sym)
        };
        strip_value(&v, 0, &auxiliary)
    }

    fn new_var(&mut self, _name: Symbol, letrec: bool) -> VarId {
        let id = u32::try_from(self.vars.len()).expect("fewer than 2^32 variables");
        self.vars.push(VarInfo {
            fn_depth: self.fn_depth,
            captured: false,
            assigned: false,
            letrec,
        });
        id
    }

    fn bind(&mut self, name: Symbol, letrec: bool) -> VarId {
        let id = self.new_var(name, letrec);
        self.scopes
            .last_mut()
            .expect("a scope is open")
            .insert(name, Meaning::Var(id));
        id
    }

    fn use_var(&mut self, id: VarId) {
        if self.vars[id as usize].fn_depth < self.fn_depth {
            self.vars[id as usize].captured = true;
        }
    }

    fn builtin(&self, name: &str) -> Value {
        self.st.builtins.get(name).cloned().unwrap_or(Value::Nil)
    }

    fn call_builtin(&self, name: &str, args: Vec<Expr>, p: (u32, u32)) -> Expr {
        let f = Expr::new(ExprKind::Const(self.builtin(name)), p);
        Expr::new(ExprKind::Call(Box::new(f), args), p)
    }

    fn expand(&mut self, s: &Syntax) -> LispResult<Expr> {
        self.expand_named(s, None)
    }

    /// Expands `s`; a lambda gets `name` if given.
    fn expand_named(&mut self, s: &Syntax, name: Option<Symbol>) -> LispResult<Expr> {
        self.depth += 1;
        let r = if self.depth > EXPAND_LIMIT || !self.guard.ok() {
            Err(err(&s.span, "form nested too deeply to compile"))
        } else {
            self.expand_inner(s, name)
        };
        self.depth -= 1;
        r
    }

    fn expand_inner(&mut self, s: &Syntax, name: Option<Symbol>) -> LispResult<Expr> {
        let p = pos(&s.span);
        match &s.kind {
            SyntaxKind::Atom(Value::Symbol(sym)) => self.var_ref(*sym, &s.span),
            SyntaxKind::Atom(v) => Ok(Expr::new(ExprKind::Const(v.clone()), p)),
            SyntaxKind::Map(items) => {
                let args = items
                    .iter()
                    .map(|i| self.expand(i))
                    .collect::<LispResult<Vec<_>>>()?;
                Ok(self.call_builtin("hash-map", args, p))
            }
            SyntaxKind::List(items, tail) => {
                let head = &items[0];
                let meaning = head.as_symbol().map(|sym| self.resolve(sym));
                if let Some(Meaning::Macro(m)) = &meaning {
                    return self.expand_syntax_rules(m, s, name);
                }
                let global_macro = match &meaning {
                    Some(Meaning::Free(base)) => crate::prelude::macro_named(self.st, *base)?,
                    _ => None,
                };
                if let Some(t) = global_macro.as_ref().and_then(syntax_rules::transformer_of) {
                    return self.expand_syntax_rules(&t, s, name);
                }
                if tail.is_some() {
                    return Err(err(&s.span, "a dotted list is not a valid expression"));
                }
                if let Some(Meaning::Free(base)) = meaning {
                    let hname = base.name();
                    if let Some(e) = self.special_form(&hname, s, items, name)? {
                        return Ok(e);
                    }
                    if let Some(m) = global_macro {
                        return self.expand_macro(&m, s, items, name);
                    }
                    if let Some((op, _, argc)) = PrimOp::ALL.iter().find(|(_, n, _)| **n == *hname)
                    {
                        if *argc as usize == items.len() - 1 {
                            let args = self.expand_all(&items[1..])?;
                            return Ok(Expr::new(ExprKind::Prim(*op, args), p));
                        }
                    }
                }
                let f = self.expand(head)?;
                let args = self.expand_all(&items[1..])?;
                Ok(Expr::new(ExprKind::Call(Box::new(f), args), p))
            }
        }
    }

    fn expand_all(&mut self, forms: &[Syntax]) -> LispResult<Vec<Expr>> {
        forms.iter().map(|f| self.expand(f)).collect()
    }

    fn var_ref(&mut self, sym: Symbol, span: &Span) -> LispResult<Expr> {
        let p = pos(span);
        match self.resolve(sym) {
            Meaning::Var(id) => {
                self.use_var(id);
                Ok(Expr::new(ExprKind::Local(id), p))
            }
            Meaning::Free(base) => Ok(Expr::new(ExprKind::Global(self.global_ref(base)), p)),
            Meaning::Macro(_) => Err(err(
                span,
                format!("{sym} is a macro and cannot be used as a value"),
            )),
        }
    }

    /// The slot of global `sym`, which code refers to (a pending prelude procedure loads when
    /// the form's expansion is done).
    fn global_ref(&mut self, sym: Symbol) -> u32 {
        let slot = self.st.global_slot(sym);
        self.st.lazy.want(slot);
        slot
    }

    fn seq(&mut self, forms: &[Syntax], p: (u32, u32)) -> LispResult<Expr> {
        match forms {
            [] => Ok(Expr::new(ExprKind::Const(Value::Nil), p)),
            [one] => self.expand(one),
            _ => Ok(Expr::new(ExprKind::Seq(self.expand_all(forms)?), p)),
        }
    }

    /// Returns `Some` if `head` names a special form.
    fn special_form(
        &mut self,
        head: &str,
        s: &Syntax,
        items: &[Syntax],
        name: Option<Symbol>,
    ) -> LispResult<Option<Expr>> {
        let p = pos(&s.span);
        let args = &items[1..];
        let need = |n: usize, what: &str| -> LispResult<()> {
            if args.len() < n {
                Err(err(&s.span, format!("{head}: {what}")))
            } else {
                Ok(())
            }
        };
        let e = match head {
            "quote" => {
                if args.len() != 1 {
                    return Err(err(&s.span, "quote expects exactly 1 form"));
                }
                Expr::new(ExprKind::Const(self.datum(&args[0])), p)
            }
            "quasiquote" => {
                if args.len() != 1 {
                    return Err(err(&s.span, "quasiquote expects exactly 1 form"));
                }
                self.quasi(&args[0], 1)?
            }
            "unquote" | "unquote-splicing" => {
                return Err(err(
                    &s.span,
                    format!("{head} is only valid inside quasiquote"),
                ));
            }
            "define" => {
                if !self.scopes.is_empty() {
                    return Err(err(
                        &s.span,
                        "define is only allowed at top level or at the start of a body",
                    ));
                }
                let (sym, value) = self.define_parts(s)?;
                // One global namespace: an introduced name defines the plain one.
                let sym = unalias(sym);
                let slot = self.st.global_slot(sym);
                Expr::new(ExprKind::DefGlobal(slot, Box::new(value), sym), p)
            }
            "defmacro" => {
                if !self.scopes.is_empty() || self.fn_depth > 0 {
                    return Err(err(&s.span, "defmacro is only allowed at top level"));
                }
                need(3, "expects (defmacro name (params…) body…)")?;
                let sym = args[0]
                    .as_symbol()
                    .map(unalias)
                    .ok_or_else(|| err(&args[0].span, "defmacro: name must be a symbol"))?;
                let lam = self.lambda(sym.name().to_string(), &args[1], &args[2..], &s.span)?;
                let slot = self.st.global_slot(sym);
                Expr::new(ExprKind::DefMacro(slot, Box::new(lam), sym), p)
            }
            "set!" => {
                if args.len() != 2 {
                    return Err(err(&s.span, "set! expects (set! name value)"));
                }
                let sym = args[0]
                    .as_symbol()
                    .ok_or_else(|| err(&args[0].span, "set!: target must be a symbol"))?;
                let value = Box::new(self.expand(&args[1])?);
                match self.resolve(sym) {
                    Meaning::Var(id) => {
                        self.use_var(id);
                        self.vars[id as usize].assigned = true;
                        Expr::new(ExprKind::SetLocal(id, value), p)
                    }
                    Meaning::Free(base) => {
                        Expr::new(ExprKind::SetGlobal(self.global_ref(base), value), p)
                    }
                    Meaning::Macro(_) => {
                        return Err(err(&args[0].span, format!("set!: {sym} is a macro")));
                    }
                }
            }
            "lambda" | "fn" => {
                need(2, "expects (lambda (params…) body…)")?;
                let n = name.map_or_else(|| "<lambda>".to_string(), |n| n.name().to_string());
                self.lambda(n, &args[0], &args[1..], &s.span)?
            }
            "let" => {
                need(1, "expects (let ((name value)…) body…)")?;
                if let Some(loop_name) = args[0].as_symbol() {
                    need(3, "named let expects (let name ((var init)…) body…)")?;
                    self.named_let(loop_name, &args[1], &args[2..], s)?
                } else {
                    need(2, "expects (let ((name value)…) body…)")?;
                    let bindings = self.bindings(&args[0], "let")?;
                    let mut inits = Vec::new();
                    for (sym, init) in &bindings {
                        inits.push(self.expand_named(init, Some(*sym))?);
                    }
                    self.scopes.push(Scope::default());
                    let vars: Vec<VarId> = bindings
                        .iter()
                        .map(|(sym, _)| self.bind(*sym, false))
                        .collect();
                    let body = self.body(&args[1..], &s.span);
                    self.scopes.pop();
                    Expr::new(
                        ExprKind::Let(vars.into_iter().zip(inits).collect(), Box::new(body?)),
                        p,
                    )
                }
            }
            "let*" => {
                need(2, "expects (let* ((name value)…) body…)")?;
                let bindings = self.bindings(&args[0], "let*")?;
                let mut pairs = Vec::new();
                let mut opened = 0;
                let result = (|| -> LispResult<Expr> {
                    for (sym, init) in &bindings {
                        let init = self.expand_named(init, Some(*sym))?;
                        self.scopes.push(Scope::default());
                        opened += 1;
                        let v = self.bind(*sym, false);
                        pairs.push((v, init));
                    }
                    if bindings.is_empty() {
                        self.scopes.push(Scope::default());
                        opened += 1;
                    }
                    self.body(&args[1..], &s.span)
                })();
                for _ in 0..opened {
                    self.scopes.pop();
                }
                let mut body = result?;
                for (v, init) in pairs.into_iter().rev() {
                    body = Expr::new(ExprKind::Let(vec![(v, init)], Box::new(body)), p);
                }
                body
            }
            "letrec" | "letrec*" => {
                need(2, "expects (letrec ((name value)…) body…)")?;
                let bindings = self.bindings(&args[0], head)?;
                self.scopes.push(Scope::default());
                let r = (|| -> LispResult<Expr> {
                    let vars: Vec<VarId> = bindings
                        .iter()
                        .map(|(sym, _)| self.bind(*sym, true))
                        .collect();
                    let mut seq = Vec::new();
                    for ((sym, init), v) in bindings.iter().zip(&vars) {
                        let init = self.expand_named(init, Some(*sym))?;
                        seq.push(Expr::new(ExprKind::SetLocal(*v, Box::new(init)), p));
                    }
                    seq.push(self.body(&args[1..], &s.span)?);
                    Ok(Expr::new(
                        ExprKind::Letrec(vars, Box::new(Expr::new(ExprKind::Seq(seq), p))),
                        p,
                    ))
                })();
                self.scopes.pop();
                r?
            }
            "if" => {
                if args.len() != 2 && args.len() != 3 {
                    return Err(err(&s.span, "if expects (if test then [else])"));
                }
                let c = self.expand(&args[0])?;
                let t = self.expand(&args[1])?;
                let e = match args.get(2) {
                    Some(e) => self.expand(e)?,
                    None => Expr::new(ExprKind::Const(Value::Nil), p),
                };
                Expr::new(ExprKind::If(Box::new(c), Box::new(t), Box::new(e)), p)
            }
            "cond" => self.cond(args, s)?,
            "case" => self.case(args, s)?,
            "when" | "unless" => {
                need(1, "expects a test")?;
                let c = self.expand(&args[0])?;
                let body = self.seq(&args[1..], p)?;
                let nil = Expr::new(ExprKind::Const(Value::Nil), p);
                let (t, e) = if head == "when" {
                    (body, nil)
                } else {
                    (nil, body)
                };
                Expr::new(ExprKind::If(Box::new(c), Box::new(t), Box::new(e)), p)
            }
            "and" => Expr::new(ExprKind::And(self.expand_all(args)?), p),
            "or" => Expr::new(ExprKind::Or(self.expand_all(args)?), p),
            "begin" => self.seq(args, p)?,
            "do" => self.do_loop(args, s)?,
            "try" => self.try_form(args, s)?,
            "shield" => Expr::new(ExprKind::Shield(Box::new(self.seq(args, p)?)), p),
            "define-syntax" => {
                if !self.scopes.is_empty() {
                    return Err(err(
                        &s.span,
                        "define-syntax is only allowed at top level or at the start of a body",
                    ));
                }
                let (sym, spec) = self.define_syntax_parts(s)?;
                let sym = unalias(sym);
                let t = self.transformer(sym, spec, 0)?;
                // Defined now, at expansion time, so `omega check` and later forms see it.
                self.st
                    .macros
                    .insert(sym, Value::foreign(MacroTransformer(t)));
                Expr::new(ExprKind::Const(Value::Symbol(sym)), p)
            }
            "let-syntax" | "letrec-syntax" => self.let_syntax(head, args, s)?,
            "syntax-rules" => {
                return Err(err(
                    &s.span,
                    "syntax-rules is only valid as the transformer of define-syntax, let-syntax \
                     or letrec-syntax",
                ));
            }
            _ => return Ok(None),
        };
        Ok(Some(e))
    }

    fn params(&self, s: &Syntax) -> LispResult<(Vec<Symbol>, Option<Symbol>)> {
        let sym = |x: &Syntax| {
            x.as_symbol()
                .ok_or_else(|| err(&x.span, "parameter must be a symbol"))
        };
        let (fixed, rest) = match &s.kind {
            SyntaxKind::Atom(Value::Nil) => (Vec::new(), None),
            SyntaxKind::Atom(Value::Symbol(r)) => (Vec::new(), Some(*r)),
            SyntaxKind::List(items, tail) => {
                let fixed = items.iter().map(sym).collect::<LispResult<Vec<_>>>()?;
                let rest = tail.as_ref().map(|t| sym(t)).transpose()?;
                (fixed, rest)
            }
            _ => return Err(err(&s.span, "bad parameter list")),
        };
        // A set, so a lambda with 400k parameters expands in linear time (issue 10).
        let mut seen = std::collections::HashSet::with_capacity(fixed.len() + 1);
        for a in fixed.iter().chain(rest.iter()) {
            if !seen.insert(*a) {
                return Err(err(&s.span, format!("duplicate parameter {a}")));
            }
        }
        Ok((fixed, rest))
    }

    fn lambda(
        &mut self,
        name: String,
        params: &Syntax,
        body: &[Syntax],
        span: &Span,
    ) -> LispResult<Expr> {
        let (fixed, rest) = self.params(params)?;
        if body.is_empty() {
            return Err(err(span, "lambda needs a body"));
        }
        self.fn_depth += 1;
        self.scopes.push(Scope::default());
        let params: Vec<VarId> = fixed.iter().map(|s| self.bind(*s, false)).collect();
        let rest = rest.map(|r| self.bind(r, false));
        let body = self.body(body, span);
        self.scopes.pop();
        self.fn_depth -= 1;
        let lam = Lambda {
            name,
            params,
            rest,
            body: body?,
        };
        Ok(Expr::new(ExprKind::Lambda(Box::new(lam)), pos(span)))
    }

    fn bindings<'a>(&self, s: &'a Syntax, form: &str) -> LispResult<Vec<(Symbol, &'a Syntax)>> {
        let items = list_items(s)
            .ok_or_else(|| err(&s.span, format!("{form}: bindings must be a list")))?;
        items
            .iter()
            .map(|b| match &b.kind {
                SyntaxKind::List(pair, None) if pair.len() == 2 => match pair[0].as_symbol() {
                    Some(sym) => Ok((sym, &pair[1])),
                    None => Err(err(
                        &pair[0].span,
                        format!("{form}: binding name must be a symbol"),
                    )),
                },
                _ => Err(err(
                    &b.span,
                    format!("{form}: each binding must be (name value)"),
                )),
            })
            .collect()
    }
}
