//! Macro uses and definitions: `defmacro` transformers run on the VM, `syntax-rules` ones
//! instantiated with their introduced identifiers renamed (the aliases the expander holds for
//! the rest of the form, `symbol.rs`), `define-syntax` transformers compiled, and
//! `let-syntax`/`letrec-syntax`.

use std::rc::Rc;

use super::{err, list_items, resolve_in, Expander, Meaning, Scope, EXPAND_LIMIT};
use crate::error::{LispError, LispResult};
use crate::ir::Expr;
use crate::reader::{Syntax, SyntaxKind};
use crate::symbol::Symbol;
use crate::syntax_rules::{self, SyntaxRules};
use crate::value::Value;

impl Expander<'_> {
    /// Expands a macro use; `name` (the variable a `define` binds) names a lambda it expands
    /// to, as it would a lambda written there (`(define f (case-lambda …))`).
    pub(super) fn expand_macro(
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
    pub(super) fn expand_syntax_rules(
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
    pub(super) fn syntax_rules_output(
        &mut self,
        m: &Rc<SyntaxRules>,
        s: &Syntax,
    ) -> LispResult<Syntax> {
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
    pub(super) fn transformer(
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
    pub(super) fn define_syntax_parts<'a>(
        &self,
        s: &'a Syntax,
    ) -> LispResult<(Symbol, &'a Syntax)> {
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
    pub(super) fn macro_output(
        &mut self,
        m: &Value,
        s: &Syntax,
        items: &[Syntax],
    ) -> LispResult<Syntax> {
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

    /// `(let-syntax ((name (syntax-rules …))…) body…)` and `letrec-syntax`, whose transformers
    /// also see the macros they bind.
    pub(super) fn let_syntax(
        &mut self,
        head: &str,
        args: &[Syntax],
        s: &Syntax,
    ) -> LispResult<Expr> {
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
}
