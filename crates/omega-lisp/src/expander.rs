//! The expander: [`Syntax`] → core [`Expr`]. Recognises the special forms of SPEC §6.2,
//! expands macros (`defmacro`s run on the VM at compile time; `syntax-rules` macros of
//! `define-syntax`, `let-syntax` and `letrec-syntax` through `syntax_rules.rs`), desugars
//! `let*`, named `let`, `do`, `cond`, `case`, `when`, `unless` and quasiquote, and resolves
//! every identifier to a lexical [`VarId`], a local macro or a global slot.
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
use crate::ir::{Catch, Expr, ExprKind, Lambda, VarId, VarInfo};
use crate::reader::{Syntax, SyntaxKind, MAX_NESTING};
use crate::stack_guard::StackGuard;
use crate::state::State;
use crate::symbol::{AliasRefs, Symbol};
use crate::syntax_rules::{self, MacroTransformer, SyntaxRules};
use crate::value::Value;

#[cfg(test)]
mod alias_tests;

/// Deepest expansion recursion accepted.
pub(crate) const EXPAND_LIMIT: usize = MAX_NESTING + 100;

/// Expands one top-level form.
pub(crate) fn expand_toplevel(st: &mut State, form: &Syntax) -> LispResult<(Expr, Vec<VarInfo>)> {
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

/// What a form at the top of a body is, for splicing (`Expander::body_form_kind`).
enum BodyForm {
    Begin,
    DefineSyntax,
    SyntaxRules(Rc<SyntaxRules>),
    Macro(Value),
    Other,
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
                    Some(Meaning::Free(base)) => self.st.macros.get(base).cloned(),
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
            Meaning::Free(base) => Ok(Expr::new(ExprKind::Global(self.st.global_slot(base)), p)),
            Meaning::Macro(_) => Err(err(
                span,
                format!("{sym} is a macro and cannot be used as a value"),
            )),
        }
    }

    fn seq(&mut self, forms: &[Syntax], p: (u32, u32)) -> LispResult<Expr> {
        match forms {
            [] => Ok(Expr::new(ExprKind::Const(Value::Nil), p)),
            [one] => self.expand(one),
            _ => Ok(Expr::new(ExprKind::Seq(self.expand_all(forms)?), p)),
        }
    }

    /// Expands a macro use; `name` (the variable a `define` binds) names a lambda it expands
    /// to, as it would a lambda written there (`(define f (case-lambda …))`).
    fn expand_macro(
        &mut self,
        m: &Value,
        s: &Syntax,
        items: &[Syntax],
        name: Option<Symbol>,
    ) -> LispResult<Expr> {
        let syn = self.macro_output(m, s, items)?;
        self.expand_named(&syn, name)
    }

    /// Expands a use of `syntax-rules` macro `m`.
    fn expand_syntax_rules(
        &mut self,
        m: &Rc<SyntaxRules>,
        s: &Syntax,
        name: Option<Symbol>,
    ) -> LispResult<Expr> {
        // An expansion that keeps expanding into itself ends here rather than at the native
        // stack, as a limit (one macro use per level).
        if self.depth >= EXPAND_LIMIT || !self.guard.ok() {
            return Err(syntax_rules::depth_limit_error(m.name, &s.span));
        }
        let syn = self.syntax_rules_output(m, s)?;
        self.expand_named(&syn, name)
    }

    /// Runs `syntax-rules` macro `m` on the form `s` once: its output, the template's
    /// identifiers renamed (charged to the lent steps; interrupts and the heap limit polled).
    fn syntax_rules_output(&mut self, m: &Rc<SyntaxRules>, s: &Syntax) -> LispResult<Syntax> {
        self.renamed = true;
        let lit_env = m.env_depth;
        let literal_meanings: Vec<(Symbol, Meaning)> = m
            .literals()
            .iter()
            .map(|l| (*l, self.resolve_in(*l, lit_env)))
            .collect();
        let (scopes, alias_env) = (&self.scopes, &self.alias_env);
        let same = |input: Symbol, literal: Symbol| {
            literal_meanings
                .iter()
                .find(|(l, _)| *l == literal)
                .is_some_and(|(_, meaning)| {
                    resolve_in(scopes, alias_env, input, scopes.len()) == *meaning
                })
        };
        let st = &mut *self.st;
        let max_work = st.limits.max_expansion_work;
        let work = &mut self.work;
        let mut charge = |n: u64| {
            *work += n;
            if *work > max_work {
                return Err(LispError::new(
                    crate::error::ErrorKind::Limit,
                    format!(
                        "limit exceeded: max_expansion_work ({max_work} nodes of macro expansion \
                         in one top-level form)"
                    ),
                ));
            }
            crate::vm::charge_lent(st, n)
        };
        let expansion =
            m.expand(s, &same, &mut charge, self.guard)
                .map_err(|e| match e.span() {
                    Some(_) => e,
                    None => e.with_span(s.span.clone()),
                })?;
        if m.env_depth > 0 {
            for a in expansion.aliases.iter() {
                self.alias_env.insert(a, m.env_depth);
            }
        }
        self.aliases.absorb(expansion.aliases);
        Ok(expansion.output)
    }

    /// Compiles the transformer `spec` of macro `name` (it must be a `syntax-rules` form),
    /// defined where `env_depth` scopes are visible.
    fn transformer(
        &self,
        name: Symbol,
        spec: &Syntax,
        env_depth: usize,
    ) -> LispResult<Rc<SyntaxRules>> {
        let is_rules = match &spec.kind {
            SyntaxKind::List(items, _) => items[0]
                .as_symbol()
                .is_some_and(|h| self.means(h, "syntax-rules")),
            _ => false,
        };
        if !is_rules {
            return Err(err(
                &spec.span,
                format!("{name}: the transformer must be a (syntax-rules …) form"),
            ));
        }
        Ok(Rc::new(syntax_rules::compile(spec, name, env_depth)?))
    }

    /// `(define-syntax name (syntax-rules …))`: the name and the transformer spec.
    fn define_syntax_parts<'a>(&self, s: &'a Syntax) -> LispResult<(Symbol, &'a Syntax)> {
        match list_items(s) {
            Some([_, name, spec]) => match name.as_symbol() {
                Some(sym) => Ok((sym, spec)),
                None => Err(err(&name.span, "define-syntax: the name must be a symbol")),
            },
            _ => Err(err(
                &s.span,
                "define-syntax expects (define-syntax name (syntax-rules …))",
            )),
        }
    }

    /// Runs macro `m` on the form `s` (whose parts are `items`) once: its output as syntax.
    fn macro_output(&mut self, m: &Value, s: &Syntax, items: &[Syntax]) -> LispResult<Syntax> {
        let args: Vec<Value> = items[1..].iter().map(|i| self.macro_arg(i)).collect();
        // An error the transformer raises names the use, the form the user wrote: as its
        // position, or, when it carries the transformer's own stack, as that stack's outermost
        // frame (`at expansion of define-record-type (file:line:col)`).
        let out = crate::vm::call_sync(self.st, m, args).map_err(|mut e| {
            if e.span().is_none() {
                e = e.with_span(s.span.clone());
            }
            if !e.stack().is_empty() {
                let name = items[0]
                    .as_symbol()
                    .map_or_else(|| "a macro".to_string(), |m| m.name().to_string());
                e.data_mut().stack.push(crate::error::StackFrame {
                    function: format!("expansion of {name}"),
                    span: Some(s.span.clone()),
                });
            }
            e
        })?;
        // Expansion output is charged as it is built (the heap limit, `heap.rs`).
        self.st
            .check_heap()
            .map_err(|e| e.with_span(s.span.clone()))?;
        Syntax::from_value(&out, &s.span)
    }

    /// What body form `f` is: a non-empty `(begin …)`, a `define-syntax`, a macro call, or
    /// anything else (heads shadowed by a local variable or by a name the body itself defines,
    /// `defined`, are anything else).
    fn body_form_kind(&self, f: &Syntax, defined: &[Symbol]) -> BodyForm {
        let SyntaxKind::List(items, _) = &f.kind else {
            return BodyForm::Other;
        };
        let Some(sym) = items[0].as_symbol() else {
            return BodyForm::Other;
        };
        if defined.contains(&sym) {
            return BodyForm::Other;
        }
        match self.resolve(sym) {
            Meaning::Var(_) => BodyForm::Other,
            Meaning::Macro(m) => BodyForm::SyntaxRules(m),
            Meaning::Free(base) => match &*base.name() {
                "begin" if items.len() > 1 && matches!(f.kind, SyntaxKind::List(_, None)) => {
                    BodyForm::Begin
                }
                "define-syntax" => BodyForm::DefineSyntax,
                _ => match self.st.macros.get(&base) {
                    Some(m) => match syntax_rules::transformer_of(m) {
                        Some(t) => BodyForm::SyntaxRules(t),
                        None if matches!(f.kind, SyntaxKind::List(_, None)) => {
                            BodyForm::Macro(m.clone())
                        }
                        None => BodyForm::Other,
                    },
                    None => BodyForm::Other,
                },
            },
        }
    }

    /// What body form `f` stands for in a body (`body_form_kind`): the `begin`'s forms, or
    /// the macro's output, or nothing for a `define-syntax` (which binds its macro in the
    /// body's scope, the innermost). `None` for anything else.
    fn body_form_parts(
        &mut self,
        f: &Syntax,
        defined: &[Symbol],
    ) -> LispResult<Option<Vec<Syntax>>> {
        match self.body_form_kind(f, defined) {
            BodyForm::Other => Ok(None),
            BodyForm::Begin => Ok(list_items(f).map(|items| items[1..].to_vec())),
            BodyForm::DefineSyntax => {
                let (name, spec) = self.define_syntax_parts(f)?;
                // `letrec*` scope: the macro sees the body's definitions and itself.
                let t = self.transformer(name, spec, self.scopes.len())?;
                self.scopes
                    .last_mut()
                    .expect("a body has its scope")
                    .insert(name, Meaning::Macro(t));
                Ok(Some(Vec::new()))
            }
            BodyForm::SyntaxRules(m) => Ok(Some(vec![self.syntax_rules_output(&m, f)?])),
            BodyForm::Macro(m) => {
                let SyntaxKind::List(items, _) = &f.kind else {
                    return Ok(None);
                };
                Ok(Some(vec![self.macro_output(&m, f, items)?]))
            }
        }
    }

    /// A body with `(begin …)` forms spliced, macro calls at its top expanded (R7RS 5.3.2) and
    /// `define-syntax` forms bound, so definitions inside them, or produced by a macro, are
    /// internal definitions of the body. Borrowed when there is nothing to splice. Runs in the
    /// body's own scope.
    fn flatten_body<'f>(
        &mut self,
        forms: &'f [Syntax],
    ) -> LispResult<std::borrow::Cow<'f, [Syntax]>> {
        // A local `receive` (say) stays local even where a macro of that name exists.
        let defined: Vec<Symbol> = forms.iter().filter_map(|f| self.define_name(f)).collect();
        if forms
            .iter()
            .all(|f| matches!(self.body_form_kind(f, &defined), BodyForm::Other))
        {
            return Ok(std::borrow::Cow::Borrowed(forms));
        }
        let mut out = Vec::with_capacity(forms.len());
        // Each form carries how many splices made it, so a macro that expands to itself fails
        // like any too-deep form instead of looping.
        let mut work: Vec<(Syntax, usize)> = forms.iter().rev().map(|f| (f.clone(), 0)).collect();
        while let Some((f, depth)) = work.pop() {
            if depth > EXPAND_LIMIT {
                return Err(match self.body_form_kind(&f, &defined) {
                    BodyForm::SyntaxRules(m) => syntax_rules::depth_limit_error(m.name, &f.span),
                    _ => err(&f.span, "form nested too deeply to compile"),
                });
            }
            match self.body_form_parts(&f, &defined)? {
                Some(parts) => work.extend(parts.into_iter().rev().map(|p| (p, depth + 1))),
                None => out.push(f),
            }
        }
        Ok(std::borrow::Cow::Owned(out))
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
                        Expr::new(ExprKind::SetGlobal(self.st.global_slot(base), value), p)
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

    /// `(let-syntax ((name (syntax-rules …))…) body…)` and `letrec-syntax`, whose transformers
    /// also see the macros they bind.
    fn let_syntax(&mut self, head: &str, args: &[Syntax], s: &Syntax) -> LispResult<Expr> {
        if args.len() < 2 {
            return Err(err(
                &s.span,
                format!("{head} expects ({head} ((name (syntax-rules …))…) body…)"),
            ));
        }
        let specs = list_items(&args[0])
            .ok_or_else(|| err(&args[0].span, format!("{head}: bindings must be a list")))?;
        let outer = self.scopes.len();
        let env = if head == "letrec-syntax" {
            outer + 1
        } else {
            outer
        };
        self.scopes.push(Scope::default());
        let r = (|| -> LispResult<Expr> {
            for spec in specs {
                let (name, transformer) = match list_items(spec) {
                    Some([name, t]) => match name.as_symbol() {
                        Some(sym) => (sym, t),
                        None => {
                            return Err(err(
                                &name.span,
                                format!("{head}: binding name must be a symbol"),
                            ))
                        }
                    },
                    _ => {
                        return Err(err(
                            &spec.span,
                            format!("{head}: each binding must be (name (syntax-rules …))"),
                        ))
                    }
                };
                let t = self.transformer(name, transformer, env)?;
                self.scopes[outer].insert(name, Meaning::Macro(t));
            }
            self.body(&args[1..], &s.span)
        })();
        self.scopes.truncate(outer);
        r
    }

    /// `(define name value)`, `(define name)` or `(define (name . params) body…)`.
    fn define_parts(&mut self, s: &Syntax) -> LispResult<(Symbol, Expr)> {
        let SyntaxKind::List(items, _) = &s.kind else {
            unreachable!("define is a list")
        };
        let p = pos(&s.span);
        match items.get(1).map(|t| &t.kind) {
            Some(SyntaxKind::Atom(Value::Symbol(sym))) => {
                let value = match items.len() {
                    2 => Expr::new(ExprKind::Const(Value::Nil), p),
                    3 => self.expand_named(&items[2], Some(*sym))?,
                    _ => return Err(err(&s.span, "define expects (define name value)")),
                };
                Ok((*sym, value))
            }
            Some(SyntaxKind::List(sig, tail)) => {
                let sym = sig[0]
                    .as_symbol()
                    .ok_or_else(|| err(&sig[0].span, "define: function name must be a symbol"))?;
                if items.len() < 3 {
                    return Err(err(&s.span, format!("define: {sym} needs a body")));
                }
                let params = Syntax {
                    kind: if sig.len() == 1 && tail.is_none() {
                        SyntaxKind::Atom(Value::Nil)
                    } else if sig.len() == 1 {
                        tail.as_ref()
                            .map_or(SyntaxKind::Atom(Value::Nil), |t| t.kind.clone())
                    } else {
                        SyntaxKind::List(sig[1..].to_vec(), tail.clone())
                    },
                    span: items[1].span.clone(),
                };
                let lam = self.lambda(sym.name().to_string(), &params, &items[2..], &s.span)?;
                Ok((sym, lam))
            }
            _ => Err(err(
                &s.span,
                "define expects (define name value) or (define (name params…) body…)",
            )),
        }
    }

    fn define_name(&self, s: &Syntax) -> Option<Symbol> {
        if !is_head(s, "define") {
            return None;
        }
        let SyntaxKind::List(items, _) = &s.kind else {
            return None;
        };
        let head = items[0].as_symbol()?;
        if !self.means(head, "define") {
            return None;
        }
        match &items.get(1)?.kind {
            SyntaxKind::Atom(Value::Symbol(sym)) => Some(*sym),
            SyntaxKind::List(sig, _) => sig[0].as_symbol(),
            _ => None,
        }
    }

    /// A body: internal defines (letrec* semantics) followed by expressions, in a scope of
    /// its own (which also holds its `define-syntax` macros).
    fn body(&mut self, forms: &[Syntax], span: &Span) -> LispResult<Expr> {
        if forms.is_empty() {
            return Err(err(span, "empty body"));
        }
        let outer = self.scopes.len();
        self.scopes.push(Scope::default());
        let r = self.body_in_scope(forms, span);
        self.scopes.truncate(outer);
        r
    }

    fn body_in_scope(&mut self, forms: &[Syntax], span: &Span) -> LispResult<Expr> {
        let p = pos(span);
        let flat = self.flatten_body(forms)?;
        let forms: &[Syntax] = &flat;
        if forms.is_empty() {
            return Err(err(span, "empty body"));
        }
        let names: Vec<Symbol> = forms.iter().filter_map(|f| self.define_name(f)).collect();
        if names.is_empty() {
            return self.seq(forms, p);
        }
        {
            let mut vars = Vec::new();
            let mut bound = std::collections::HashSet::with_capacity(names.len());
            for n in &names {
                if !bound.insert(*n) {
                    continue;
                }
                vars.push(self.bind(*n, true));
            }
            let mut seq = Vec::new();
            for f in forms {
                if self.define_name(f).is_some() {
                    let (sym, value) = self.define_parts(f)?;
                    let Some(v) = self.lookup(sym) else {
                        return Err(err(&f.span, format!("define: cannot define {sym} here")));
                    };
                    seq.push(Expr::new(
                        ExprKind::SetLocal(v, Box::new(value)),
                        pos(&f.span),
                    ));
                } else {
                    seq.push(self.expand(f)?);
                }
            }
            Ok(Expr::new(
                ExprKind::Letrec(vars, Box::new(Expr::new(ExprKind::Seq(seq), p))),
                p,
            ))
        }
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

    fn named_let(
        &mut self,
        loop_name: Symbol,
        bindings: &Syntax,
        body: &[Syntax],
        s: &Syntax,
    ) -> LispResult<Expr> {
        let p = pos(&s.span);
        let bindings = self.bindings(bindings, "let")?;
        let inits = bindings
            .iter()
            .map(|(_, i)| self.expand(i))
            .collect::<LispResult<Vec<_>>>()?;
        self.scopes.push(Scope::default());
        let r = (|| -> LispResult<Expr> {
            let lv = self.bind(loop_name, true);
            let names = bindings
                .iter()
                .map(|(sym, _)| sym.name().to_string())
                .collect::<Vec<_>>();
            let params_syn = if names.is_empty() {
                Syntax::atom(Value::Nil, s.span.clone())
            } else {
                let items = bindings
                    .iter()
                    .map(|(sym, i)| Syntax::atom(Value::Symbol(*sym), i.span.clone()))
                    .collect();
                Syntax {
                    kind: SyntaxKind::List(items, None),
                    span: s.span.clone(),
                }
            };
            let lam = self.lambda(loop_name.name().to_string(), &params_syn, body, &s.span)?;
            let set = Expr::new(ExprKind::SetLocal(lv, Box::new(lam)), p);
            let call = Expr::new(
                ExprKind::Call(Box::new(Expr::new(ExprKind::Local(lv), p)), inits),
                p,
            );
            Ok(Expr::new(
                ExprKind::Letrec(
                    vec![lv],
                    Box::new(Expr::new(ExprKind::Seq(vec![set, call]), p)),
                ),
                p,
            ))
        })();
        self.scopes.pop();
        r
    }

    fn do_loop(&mut self, args: &[Syntax], s: &Syntax) -> LispResult<Expr> {
        let p = pos(&s.span);
        if args.len() < 2 {
            return Err(err(
                &s.span,
                "do expects (do ((var init step)…) (test result…) body…)",
            ));
        }
        let specs =
            list_items(&args[0]).ok_or_else(|| err(&args[0].span, "do: bad variable list"))?;
        let mut vars = Vec::new();
        for spec in specs {
            match list_items(spec) {
                Some(parts) if (2..=3).contains(&parts.len()) && parts[0].as_symbol().is_some() => {
                    vars.push((
                        parts[0].as_symbol().expect("checked"),
                        &parts[1],
                        parts.get(2),
                    ));
                }
                _ => {
                    return Err(err(
                        &spec.span,
                        "do: each variable must be (var init [step])",
                    ))
                }
            }
        }
        let exit = list_items(&args[1])
            .filter(|e| !e.is_empty())
            .ok_or_else(|| err(&args[1].span, "do: expects (test result…)"))?;
        let inits = vars
            .iter()
            .map(|(_, i, _)| self.expand(i))
            .collect::<LispResult<Vec<_>>>()?;
        self.scopes.push(Scope::default());
        // The loop variable is only referred to by its id: it needs no name in the scope
        // (and so no gensym, which would be interned for good at each `do`).
        let lv = self.new_var(Symbol::intern("do-loop"), true);
        self.fn_depth += 1;
        self.scopes.push(Scope::default());
        let r = (|| -> LispResult<Expr> {
            let params: Vec<VarId> = vars
                .iter()
                .map(|(sym, _, _)| self.bind(*sym, false))
                .collect();
            let test = self.expand(&exit[0])?;
            let result = self.seq(&exit[1..], p)?;
            let mut body = self.expand_all(&args[2..])?;
            let steps = vars
                .iter()
                .map(|(sym, _, step)| match step {
                    Some(st) => self.expand(st),
                    None => self.var_ref(*sym, &s.span),
                })
                .collect::<LispResult<Vec<_>>>()?;
            self.use_var(lv);
            let again = Expr::new(
                ExprKind::Call(Box::new(Expr::new(ExprKind::Local(lv), p)), steps),
                p,
            );
            body.push(again);
            let lam_body = Expr::new(
                ExprKind::If(
                    Box::new(test),
                    Box::new(result),
                    Box::new(Expr::new(ExprKind::Seq(body), p)),
                ),
                p,
            );
            Ok(Expr::new(
                ExprKind::Lambda(Box::new(Lambda {
                    name: "do".into(),
                    params,
                    rest: None,
                    body: lam_body,
                })),
                p,
            ))
        })();
        self.scopes.pop();
        self.fn_depth -= 1;
        self.scopes.pop();
        let lam = r?;
        let set = Expr::new(ExprKind::SetLocal(lv, Box::new(lam)), p);
        let call = Expr::new(
            ExprKind::Call(Box::new(Expr::new(ExprKind::Local(lv), p)), inits),
            p,
        );
        Ok(Expr::new(
            ExprKind::Letrec(
                vec![lv],
                Box::new(Expr::new(ExprKind::Seq(vec![set, call]), p)),
            ),
            p,
        ))
    }

    fn cond(&mut self, clauses: &[Syntax], s: &Syntax) -> LispResult<Expr> {
        let p = pos(&s.span);
        let mut acc = Expr::new(ExprKind::Const(Value::Nil), p);
        for (i, clause) in clauses.iter().enumerate().rev() {
            let parts = list_items(clause)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| err(&clause.span, "cond: each clause must be (test body…)"))?;
            let cp = pos(&clause.span);
            if parts[0].as_symbol().is_some_and(|h| &*h.name() == "else")
                && !self.is_local(parts[0].as_symbol().expect("symbol"))
            {
                if i != clauses.len() - 1 {
                    return Err(err(&clause.span, "cond: else must be the last clause"));
                }
                acc = self.seq(&parts[1..], cp)?;
                continue;
            }
            let test = self.expand(&parts[0])?;
            if parts.len() == 1 {
                acc = Expr::new(ExprKind::Or(vec![test, acc]), cp);
            } else if parts.len() == 3 && parts[1].as_symbol().is_some_and(|a| &*a.name() == "=>") {
                let f = self.expand(&parts[2])?;
                let tmp = self.new_var(Symbol::intern("cond-tmp"), false);
                let call = Expr::new(
                    ExprKind::Call(Box::new(f), vec![Expr::new(ExprKind::Local(tmp), cp)]),
                    cp,
                );
                let iff = Expr::new(
                    ExprKind::If(
                        Box::new(Expr::new(ExprKind::Local(tmp), cp)),
                        Box::new(call),
                        Box::new(acc),
                    ),
                    cp,
                );
                acc = Expr::new(ExprKind::Let(vec![(tmp, test)], Box::new(iff)), cp);
            } else {
                let body = self.seq(&parts[1..], cp)?;
                acc = Expr::new(
                    ExprKind::If(Box::new(test), Box::new(body), Box::new(acc)),
                    cp,
                );
            }
        }
        Ok(acc)
    }

    fn case(&mut self, args: &[Syntax], s: &Syntax) -> LispResult<Expr> {
        let p = pos(&s.span);
        if args.is_empty() {
            return Err(err(&s.span, "case expects (case key ((datum…) body…)…)"));
        }
        let key = self.expand(&args[0])?;
        let tmp = self.new_var(Symbol::intern("case-key"), false);
        let eqv = self.builtin("eqv?");
        let mut acc = Expr::new(ExprKind::Const(Value::Nil), p);
        let clauses = &args[1..];
        for (i, clause) in clauses.iter().enumerate().rev() {
            let parts = list_items(clause)
                .filter(|c| c.len() >= 2)
                .ok_or_else(|| err(&clause.span, "case: each clause must be ((datum…) body…)"))?;
            let cp = pos(&clause.span);
            let body = self.seq(&parts[1..], cp)?;
            if parts[0].as_symbol().is_some_and(|h| &*h.name() == "else") {
                if i != clauses.len() - 1 {
                    return Err(err(&clause.span, "case: else must be the last clause"));
                }
                acc = body;
                continue;
            }
            let data: Vec<Value> = match list_items(&parts[0]) {
                Some(d) => d.iter().map(|x| self.datum(x)).collect(),
                None => vec![self.datum(&parts[0])],
            };
            let tests = data
                .into_iter()
                .map(|d| {
                    let f = Expr::new(ExprKind::Const(eqv.clone()), cp);
                    let args = vec![
                        Expr::new(ExprKind::Local(tmp), cp),
                        Expr::new(ExprKind::Const(d), cp),
                    ];
                    Expr::new(ExprKind::Call(Box::new(f), args), cp)
                })
                .collect();
            acc = Expr::new(
                ExprKind::If(
                    Box::new(Expr::new(ExprKind::Or(tests), cp)),
                    Box::new(body),
                    Box::new(acc),
                ),
                cp,
            );
        }
        Ok(Expr::new(ExprKind::Let(vec![(tmp, key)], Box::new(acc)), p))
    }

    fn try_form(&mut self, args: &[Syntax], s: &Syntax) -> LispResult<Expr> {
        let p = pos(&s.span);
        let mut end = args.len();
        let mut finally_forms = None;
        let mut catch_clause = None;
        if end > 0 && is_head(&args[end - 1], "finally") {
            finally_forms = list_items(&args[end - 1]).map(|f| (&f[1..], &args[end - 1].span));
            end -= 1;
        }
        if end > 0 && is_head(&args[end - 1], "catch") {
            let c = list_items(&args[end - 1]).unwrap_or(&[]);
            if c.len() < 3 {
                return Err(err(&args[end - 1].span, "catch expects (catch e handler…)"));
            }
            let var = c[1]
                .as_symbol()
                .ok_or_else(|| err(&c[1].span, "catch: error variable must be a symbol"))?;
            // `(catch e :cancelled handler…)`: the handler may end a cancellation.
            let names_cancelled = c.len() > 3
                && matches!(&c[2].kind, SyntaxKind::Atom(Value::Keyword(k)) if &*k.name() == "cancelled");
            let handler = if names_cancelled { &c[3..] } else { &c[2..] };
            catch_clause = Some((var, handler, names_cancelled, &args[end - 1].span));
            end -= 1;
        }
        if let Some(bad) = args[..end]
            .iter()
            .find(|a| is_head(a, "catch") || is_head(a, "finally"))
        {
            return Err(err(
                &bad.span,
                "try: catch and finally must come last, catch before finally",
            ));
        }
        let body = self.seq(&args[..end], p)?;
        let catch = match catch_clause {
            Some((var, handler, ends_cancel, span)) => {
                self.scopes.push(Scope::default());
                let v = self.bind(var, false);
                let h = self.seq(handler, pos(span));
                self.scopes.pop();
                Some(Catch {
                    var: v,
                    handler: Box::new(h?),
                    ends_cancel,
                })
            }
            None => None,
        };
        let finally = match finally_forms {
            Some((forms, span)) => {
                let tmp = self.new_var(Symbol::intern("finally-error"), false);
                Some((tmp, Box::new(self.seq(forms, pos(span))?)))
            }
            None => None,
        };
        // A `catch` shields its body from the `with-exception-handler`s outside it: the body
        // runs behind `%catch-mark`, so a Lisp `raise` there unwinds to this `catch` instead of
        // calling those handlers first. The mark is taken off when the body returns and first
        // thing in the `catch`; an escape past both lands in a `call/cc`, which restores the
        // dynamic environment it was called in (`builtins/control.rs`); a `:limit` ends the
        // evaluation. (A `finally` would do it too, but costs ~2.5× a `try`'s entry.)
        let Some(mut catch) = catch else {
            return Ok(Expr::new(
                ExprKind::Try {
                    body: Box::new(body),
                    catch: None,
                    finally,
                },
                p,
            ));
        };
        let mark = self.new_var(Symbol::intern("catch-mark"), false);
        let pop = |this: &Self, v: Expr| {
            this.call_builtin(
                "%pop-catch-mark",
                vec![Expr::new(ExprKind::Local(mark), p), v],
                p,
            )
        };
        let body = pop(self, body);
        let handler = std::mem::replace(
            &mut catch.handler,
            Box::new(Expr::new(ExprKind::Const(Value::Nil), p)),
        );
        let restore = pop(self, Expr::new(ExprKind::Const(Value::Nil), p));
        catch.handler = Box::new(Expr::new(ExprKind::Seq(vec![restore, *handler]), p));
        let push = self.call_builtin("%push-catch-mark", Vec::new(), p);
        let e = Expr::new(
            ExprKind::Try {
                body: Box::new(body),
                catch: Some(catch),
                finally,
            },
            p,
        );
        Ok(Expr::new(ExprKind::Let(vec![(mark, push)], Box::new(e)), p))
    }

    fn quasi(&mut self, s: &Syntax, depth: u32) -> LispResult<Expr> {
        let p = pos(&s.span);
        match &s.kind {
            // `#(a ,b ,@c)`: the elements quasiquoted as a list, then `list->vector` (issue 15).
            SyntaxKind::Atom(Value::Vector(v)) if !v.is_empty() => {
                let items = v
                    .to_vec()
                    .iter()
                    .map(|x| Syntax::from_value(x, &s.span))
                    .collect::<LispResult<Vec<_>>>()?;
                let list = Syntax {
                    kind: SyntaxKind::List(items, None),
                    span: s.span.clone(),
                };
                let e = self.quasi(&list, depth)?;
                Ok(self.call_builtin("list->vector", vec![e], p))
            }
            SyntaxKind::Atom(_) => Ok(Expr::new(ExprKind::Const(self.datum(s)), p)),
            SyntaxKind::Map(items) => {
                let args = items
                    .iter()
                    .map(|i| self.quasi(i, depth))
                    .collect::<LispResult<Vec<_>>>()?;
                Ok(self.call_builtin("hash-map", args, p))
            }
            SyntaxKind::List(items, tail) => {
                let head = items[0].as_symbol().map(|h| h.name());
                if items.len() == 2 && tail.is_none() {
                    match head.as_deref() {
                        Some("unquote") if depth == 1 => return self.expand(&items[1]),
                        Some(h @ ("unquote" | "unquote-splicing")) => {
                            let inner = self.quasi(&items[1], depth - 1)?;
                            return Ok(self.call_builtin(
                                "list",
                                vec![Expr::new(ExprKind::Const(Value::symbol(h)), p), inner],
                                p,
                            ));
                        }
                        Some("quasiquote") => {
                            let inner = self.quasi(&items[1], depth + 1)?;
                            let q = Expr::new(ExprKind::Const(Value::symbol("quasiquote")), p);
                            return Ok(self.call_builtin("list", vec![q, inner], p));
                        }
                        _ => {}
                    }
                }
                let mut acc = match tail {
                    Some(t) => self.quasi(t, depth)?,
                    None => Expr::new(ExprKind::Const(Value::Nil), p),
                };
                for item in items.iter().rev() {
                    let ip = pos(&item.span);
                    let splice = match &item.kind {
                        SyntaxKind::List(parts, None)
                            if depth == 1
                                && parts.len() == 2
                                && is_head(item, "unquote-splicing") =>
                        {
                            Some(&parts[1])
                        }
                        _ => None,
                    };
                    acc = match splice {
                        Some(x) => {
                            let e = self.expand(x)?;
                            self.call_builtin("append", vec![e, acc], ip)
                        }
                        None => {
                            let e = self.quasi(item, depth)?;
                            self.call_builtin("cons", vec![e, acc], ip)
                        }
                    };
                }
                Ok(acc)
            }
        }
    }
}
