//! Bodies: the forms at the start of a body that splice (`begin`, macro uses producing
//! definitions, `define-syntax`), internal definitions, and the `letrec*` a body with
//! definitions becomes.

use std::rc::Rc;

use super::{err, is_head, list_items, pos, Expander, Meaning, Scope, EXPAND_LIMIT};
use crate::error::{LispResult, Span};
use crate::ir::{Expr, ExprKind};
use crate::reader::{Syntax, SyntaxKind};
use crate::symbol::Symbol;
use crate::syntax_rules::{self, SyntaxRules};
use crate::value::Value;

/// What a form at the top of a body is, for splicing (`Expander::body_form_kind`).
enum BodyForm {
    Begin,
    DefineSyntax,
    SyntaxRules(Rc<SyntaxRules>),
    Macro(Value),
    Other,
}

impl Expander<'_> {
    /// What body form `f` is: a non-empty `(begin …)`, a `define-syntax`, a macro call, or
    /// anything else (heads shadowed by a local variable or by a name the body itself defines,
    /// `defined`, are anything else).
    fn body_form_kind(&mut self, f: &Syntax, defined: &[Symbol]) -> BodyForm {
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
                // A prelude macro that fails to load (the heap limit) fails again, with its
                // error, when the form expands.
                _ => match crate::prelude::macro_named(self.st, base).unwrap_or(None) {
                    Some(m) => match syntax_rules::transformer_of(&m) {
                        Some(t) => BodyForm::SyntaxRules(t),
                        None if matches!(f.kind, SyntaxKind::List(_, None)) => BodyForm::Macro(m),
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

    /// `(define name value)`, `(define name)` or `(define (name . params) body…)`.
    pub(super) fn define_parts(&mut self, s: &Syntax) -> LispResult<(Symbol, Expr)> {
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
    pub(super) fn body(&mut self, forms: &[Syntax], span: &Span) -> LispResult<Expr> {
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
}
