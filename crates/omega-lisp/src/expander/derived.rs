//! Derived forms desugared into the core: named `let`, `do`, `cond`, `case`, `try`/`catch`/
//! `finally` and quasiquote.

use super::{err, is_head, list_items, pos, Expander, Scope};
use crate::error::LispResult;
use crate::ir::{Catch, Expr, ExprKind, Lambda, VarId};
use crate::reader::{Syntax, SyntaxKind};
use crate::symbol::Symbol;
use crate::value::Value;

impl Expander<'_> {
    pub(super) fn named_let(
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
            Ok(loop_call(lv, lam, inits, p))
        })();
        self.scopes.pop();
        r
    }

    pub(super) fn do_loop(&mut self, args: &[Syntax], s: &Syntax) -> LispResult<Expr> {
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
        Ok(loop_call(lv, lam, inits, p))
    }

    pub(super) fn cond(&mut self, clauses: &[Syntax], s: &Syntax) -> LispResult<Expr> {
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

    pub(super) fn case(&mut self, args: &[Syntax], s: &Syntax) -> LispResult<Expr> {
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

    pub(super) fn try_form(&mut self, args: &[Syntax], s: &Syntax) -> LispResult<Expr> {
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

    pub(super) fn quasi(&mut self, s: &Syntax, depth: u32) -> LispResult<Expr> {
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

/// The core form of a loop whose body is the closure `lam`, bound to the local `lv` and
/// called once with `inits`: `(letrec ((lv lam)) (lv inits...))` (named `let` and `do`).
fn loop_call(lv: VarId, lam: Expr, inits: Vec<Expr>, p: (u32, u32)) -> Expr {
    let set = Expr::new(ExprKind::SetLocal(lv, Box::new(lam)), p);
    let call = Expr::new(
        ExprKind::Call(Box::new(Expr::new(ExprKind::Local(lv), p)), inits),
        p,
    );
    Expr::new(
        ExprKind::Letrec(
            vec![lv],
            Box::new(Expr::new(ExprKind::Seq(vec![set, call]), p)),
        ),
        p,
    )
}
