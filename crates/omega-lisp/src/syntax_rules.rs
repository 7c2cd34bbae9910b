//! `syntax-rules` (R7RS 4.3.2): a transformer spec compiled once into [`SyntaxRules`], a macro
//! use matched against its patterns, the first matching rule's template instantiated with the
//! identifiers it introduces renamed. The expander (`expander.rs`) owns the environments:
//! `define-syntax`, `let-syntax`, `letrec-syntax`, and how a renamed identifier resolves.
//!
//! # Hygiene: what is and is not hygienic
//!
//! Every identifier a template introduces (one that is not a pattern variable) becomes, once
//! per expansion, a fresh *alias* (`AliasRefs::fresh`): a symbol with the same name that no
//! reader input produces. The expander resolves an alias like this:
//!
//! 1. If the expansion itself binds the alias (`let`, `lambda`, `define` in a body, `do`,
//!    named `let`, `let-syntax` …), the alias refers to that binding. A user's variable of the
//!    same name is a different symbol, so it is neither captured nor shadowed (`swap!`'s
//!    `tmp`, `my-or`'s `t`, a `while` macro's `loop`).
//! 2. Otherwise the alias means what its name meant where the macro was defined: for a
//!    top-level `define-syntax`, the global variable, special form or global macro of that
//!    name, whatever locals the use site has (`(let ((if list)) (my-or #f 1))` still uses the
//!    special form `if`); for `let-syntax`, `letrec-syntax` and a `define-syntax` in a body, the
//!    bindings visible at that definition, locals included, and globals past them.
//!
//! Pattern variables keep the use site's symbols, so user code inside a macro use means what
//! it meant there. Literals (`else`, `=>`, `then`) match an input identifier that has the same
//! binding as the literal has at the definition (free-identifier=?). Data is not renamed: a
//! quoted template symbol is the plain symbol (`quote`, `quasiquote` and `case` data strip
//! aliases).
//!
//! Not hygienic, by design or for now:
//! * A top-level `define` of an introduced name defines the global of that plain name (there
//!   is one global namespace; a body `define` of an introduced name stays private).
//! * `defmacro` macros get aliases as arguments: they keep their meaning when the `defmacro`'s
//!   output puts them back in code (an introduced name its output binds stays private). Free
//!   aliases of R7RS auxiliary syntax (`else => _ ... unquote unquote-splicing`) are passed
//!   plain, so a `defmacro` comparing an argument with `'else` sees a template's `else`; other
//!   introduced symbols a `defmacro` compares with `eq?` to a quoted symbol do not match.
//! * Special forms recognise their own sub-keywords (`else`, `=>`, `catch`, `finally`,
//!   `unquote`) by name, as they do for unrenamed code (so R7RS's `(let ((=> #f)) (cond (#t =>
//!   'ok)))` still sees the arrow).
//! * A global `syntax-rules` macro is looked up by its plain name when used, so redefining a
//!   name later (or defining a macro named like a special form, which then takes precedence
//!   over it) changes what earlier macros' templates expand to.
//!
//! Aliases are reclaimed (`symbol.rs`): the expander of a top-level form holds the aliases its
//! expansions make ([`Expansion::aliases`]) until it is done, and a compiled transformer holds
//! those in its own spec (a macro a macro defined), so a host that expands macros for days
//! keeps only the aliases of the macros still defined.
//!
//! # Implementation details
//!
//! * Patterns and templates are compiled at the definition: pattern variables get slots with
//!   their ellipsis depth, every ellipsis in a template knows the variables that drive it, and
//!   misuse (an ellipsis with no variable under it, a variable used under fewer ellipses than
//!   in its pattern, a duplicate pattern variable) is a `:syntax` error at the offending datum's
//!   `file:line:col`.
//! * Matching borrows the use's syntax ([`Match`]) and visits each input node at most once per
//!   rule tried, so a 100,000-element ellipsis match is linear. Nothing is copied until the
//!   chosen template is instantiated; each output node is then made once.
//! * Work is reported to a budget callback (the expander charges it to the lent `max_steps`
//!   count and polls interrupts and the heap limit): the nodes a match visits and the nodes an
//!   instantiation makes, every [`CHARGE_EVERY`] nodes and at the end.
//! * Output nesting is held to [`EXPAND_LIMIT`]: every syntax tree the expander sees is then
//!   at most that deep, so the (recursive) walks over it stay within the native stack.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use crate::error::{ErrorKind, LispError, LispResult, Span};
use crate::expander::{unalias, EXPAND_LIMIT};
use crate::reader::{Syntax, SyntaxKind};
use crate::stack_guard::StackGuard;
use crate::symbol::{AliasRefs, Symbol, MAX_LIVE_ALIASES};
use crate::value::{Foreign, Value};

/// How many nodes of matching or instantiation are done between two budget charges.
const CHARGE_EVERY: u64 = 1024;

/// A compiled `syntax-rules` transformer.
pub(crate) struct SyntaxRules {
    /// The keyword it is bound to (for error messages).
    pub(crate) name: Symbol,
    /// How many of the expander's scopes were visible where it was defined (0: top level).
    /// Identifiers its templates introduce resolve there when the expansion does not bind them.
    pub(crate) env_depth: usize,
    /// The literals, in the definition environment.
    literals: Vec<Symbol>,
    rules: Vec<Rule>,
    /// The aliases in the spec (a transformer a macro's expansion defined): its patterns and
    /// templates refer to them, so they live as long as it does.
    _aliases: AliasRefs,
}

impl fmt::Debug for SyntaxRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#<syntax-rules {}>", self.name)
    }
}

/// A global `syntax-rules` macro as it sits in the runtime's macro table. It holds no Lisp
/// values that could refer back to it (template constants are literal data), so it is not
/// registered with the cycle collector.
#[derive(Debug)]
pub(crate) struct MacroTransformer(pub(crate) Rc<SyntaxRules>);

impl Foreign for MacroTransformer {
    fn type_name(&self) -> &str {
        "syntax-rules"
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The transformer held by a macro-table value, if it is a `syntax-rules` one.
pub(crate) fn transformer_of(v: &Value) -> Option<Rc<SyntaxRules>> {
    match v {
        Value::Foreign(f) => f
            .as_any()
            .downcast_ref::<MacroTransformer>()
            .map(|t| t.0.clone()),
        _ => None,
    }
}

/// One `(pattern template)` rule.
struct Rule {
    /// The pattern without its keyword: matched against the use without its head.
    pattern: ListPattern,
    template: Template,
    /// Ellipsis depth of each pattern variable, by slot.
    var_depth: Vec<usize>,
}

enum Pattern {
    /// `_`: matches anything, binds nothing.
    Any,
    /// A pattern variable (its slot).
    Var(usize),
    /// A literal identifier.
    Literal(Symbol),
    /// `()`.
    Nil,
    /// A number, string, character, boolean or keyword, compared with `equal?`.
    Datum(Value),
    List(ListPattern),
    /// `#(p …)`: a vector whose elements match the list pattern (never dotted).
    Vector(ListPattern),
}

/// `(before… [rep <ellipsis>] after… . rest)`.
struct ListPattern {
    before: Vec<Pattern>,
    rep: Option<Repeat>,
    after: Vec<Pattern>,
    rest: Option<Box<Pattern>>,
}

/// A subpattern followed by an ellipsis, with the slots of the variables inside it.
struct Repeat {
    pattern: Box<Pattern>,
    vars: Vec<usize>,
}

enum Template {
    /// An introduced identifier: renamed at each expansion.
    Ident(Symbol),
    /// A pattern variable used where its binding is a single form.
    Var(usize),
    /// A constant.
    Datum(Value),
    /// A list (elements, dotted tail).
    List(Vec<Element>, Option<Box<Template>>),
    /// A map literal `{…}`.
    Map(Vec<Element>),
    /// A vector `#(…)` with pattern variables in it: its elements instantiated, then made
    /// into one constant vector (data: aliases stripped, like quoted data).
    Vector(Vec<Element>),
}

/// A list element of a template, followed by `ellipses` ellipses; `levels[j]` lists the
/// variables iterated by the `j`-th of them.
struct Element {
    template: Template,
    ellipses: usize,
    levels: Vec<Vec<usize>>,
}

/// What a pattern variable matched: borrowed from the use, or owned when it is an element of
/// a vector in the use (a vector is one constant atom, its elements made syntax to match).
#[derive(Debug)]
enum Match<'a> {
    One(Cow<'a, Syntax>),
    /// The rest of a list after a dotted pattern's fixed part.
    Rest(Vec<Cow<'a, Syntax>>, Option<Cow<'a, Syntax>>),
    /// One match per repetition of an ellipsis.
    Seq(Vec<Match<'a>>),
}

impl Match<'_> {
    /// The same match, owning its syntax.
    fn into_owned(self) -> Match<'static> {
        let own = |s: Cow<'_, Syntax>| Cow::Owned(s.into_owned());
        match self {
            Match::One(s) => Match::One(own(s)),
            Match::Rest(items, tail) => {
                Match::Rest(items.into_iter().map(own).collect(), tail.map(own))
            }
            Match::Seq(ms) => Match::Seq(ms.into_iter().map(Match::into_owned).collect()),
        }
    }
}

/// How many nodes [`strip_data`] visits in one vector template at most.
const STRIP_BUDGET: usize = 1 << 20;

/// `v` with the aliases in it replaced by their plain symbols: a vector template's elements
/// are data, like quoted data. Walks lists (along their tails) and vectors, at most `budget`
/// nodes in all and [`EXPAND_LIMIT`] levels deep; past that (cyclic or widely shared data)
/// values are left as they are.
fn strip_data(v: &Value, depth: usize, budget: &mut usize) -> Value {
    if *budget == 0 || depth > EXPAND_LIMIT {
        return v.clone();
    }
    *budget -= 1;
    match v {
        Value::Symbol(s) if s.is_alias() => Value::Symbol(unalias(*s)),
        Value::Pair(_) => {
            let mut items = Vec::new();
            let mut cur = v.clone();
            while let Value::Pair(p) = &cur {
                if *budget == 0 {
                    break;
                }
                *budget -= 1;
                items.push(strip_data(&p.car(), depth + 1, budget));
                let next = p.cdr();
                cur = next;
            }
            Value::list_with_tail(items, strip_data(&cur, depth + 1, budget))
        }
        Value::Vector(items) => Value::vector(
            items
                .to_vec()
                .iter()
                .map(|item| strip_data(item, depth + 1, budget))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The elements of a vector atom as syntax at `span`.
fn vector_items(v: &crate::value::LispVector, span: &Span) -> LispResult<Vec<Syntax>> {
    v.to_vec()
        .iter()
        .map(|item| Syntax::from_value(item, span))
        .collect()
}

/// The `:limit` error of macro `name` expanding into itself past [`EXPAND_LIMIT`] levels (or
/// past the native-stack budget of the expander, which such nesting exhausts first).
pub(crate) fn depth_limit_error(name: Symbol, span: &Span) -> LispError {
    LispError::new(
        ErrorKind::Limit,
        format!("limit exceeded: macro expansion depth ({EXPAND_LIMIT}), expanding {name}"),
    )
    .with_span(span.clone())
}

fn err(span: &Span, msg: impl Into<String>) -> LispError {
    LispError::syntax(span.clone(), msg)
}

/// The elements and the final tail of a list-like syntax (`(a . (b c))` is `(a b c)`); a
/// non-list is its own tail.
fn flat(s: &Syntax) -> (Vec<&Syntax>, Option<&Syntax>) {
    match &s.kind {
        SyntaxKind::Atom(Value::Nil) => (Vec::new(), None),
        SyntaxKind::List(items, tail) => {
            let mut out: Vec<&Syntax> = items.iter().collect();
            let mut tail = tail.as_deref();
            while let Some(t) = tail {
                match &t.kind {
                    SyntaxKind::List(more, next) => {
                        out.extend(more.iter());
                        tail = next.as_deref();
                    }
                    SyntaxKind::Atom(Value::Nil) => tail = None,
                    _ => break,
                }
            }
            (out, tail)
        }
        _ => (Vec::new(), Some(s)),
    }
}

/// Compiling patterns and templates of one transformer.
struct Compiler<'a> {
    /// `None` when the ellipsis identifier is one of the literals.
    ellipsis: Option<Symbol>,
    literals: &'a [Symbol],
    /// Pattern variables of the rule being compiled: name, ellipsis depth.
    vars: Vec<(Symbol, usize)>,
}

impl Compiler<'_> {
    /// Whether `s` is the ellipsis (an alias of it too: a macro-defining macro's template
    /// writes `(... ...)`, which its expansion renames).
    fn is_ellipsis(&self, s: &Syntax) -> bool {
        self.ellipsis.is_some() && s.as_symbol().map(unalias) == self.ellipsis
    }

    fn pattern(&mut self, s: &Syntax, depth: usize) -> LispResult<Pattern> {
        match &s.kind {
            SyntaxKind::Atom(Value::Symbol(sym)) => {
                if self.literals.contains(sym) {
                    Ok(Pattern::Literal(*sym))
                } else if self.is_ellipsis(s) {
                    Err(err(
                        &s.span,
                        format!("syntax-rules: misplaced ellipsis {sym} in a pattern"),
                    ))
                } else if &*sym.name() == "_" {
                    Ok(Pattern::Any)
                } else if self.vars.iter().any(|(v, _)| v == sym) {
                    Err(err(
                        &s.span,
                        format!("syntax-rules: pattern variable {sym} appears twice in a pattern"),
                    ))
                } else {
                    self.vars.push((*sym, depth));
                    Ok(Pattern::Var(self.vars.len() - 1))
                }
            }
            SyntaxKind::Atom(Value::Nil) => Ok(Pattern::Nil),
            SyntaxKind::Atom(Value::Vector(v)) => {
                let items = vector_items(v, &s.span)?;
                let refs: Vec<&Syntax> = items.iter().collect();
                Ok(Pattern::Vector(self.list_pattern(&refs, None, depth)?))
            }
            SyntaxKind::Atom(v) => Ok(Pattern::Datum(v.clone())),
            SyntaxKind::Map(_) => Err(err(
                &s.span,
                "syntax-rules: a map literal cannot be a pattern",
            )),
            SyntaxKind::List(..) => {
                let (items, tail) = flat(s);
                Ok(Pattern::List(self.list_pattern(&items, tail, depth)?))
            }
        }
    }

    fn list_pattern(
        &mut self,
        items: &[&Syntax],
        tail: Option<&Syntax>,
        depth: usize,
    ) -> LispResult<ListPattern> {
        let mut lp = ListPattern {
            before: Vec::new(),
            rep: None,
            after: Vec::new(),
            rest: None,
        };
        let mut i = 0;
        while i < items.len() {
            let item = items[i];
            if self.is_ellipsis(item) {
                return Err(err(
                    &item.span,
                    "syntax-rules: an ellipsis must follow a subpattern",
                ));
            }
            if items.get(i + 1).is_some_and(|n| self.is_ellipsis(n)) {
                if lp.rep.is_some() {
                    return Err(err(
                        &items[i + 1].span,
                        "syntax-rules: more than one ellipsis in one list of a pattern",
                    ));
                }
                let first = self.vars.len();
                let pattern = Box::new(self.pattern(item, depth + 1)?);
                lp.rep = Some(Repeat {
                    pattern,
                    vars: (first..self.vars.len()).collect(),
                });
                i += 2;
                continue;
            }
            let p = self.pattern(item, depth)?;
            if lp.rep.is_some() {
                lp.after.push(p);
            } else {
                lp.before.push(p);
            }
            i += 1;
        }
        if let Some(t) = tail {
            lp.rest = Some(Box::new(self.pattern(t, depth)?));
        }
        Ok(lp)
    }

    fn var(&self, sym: Symbol) -> Option<(usize, usize)> {
        self.vars
            .iter()
            .position(|(v, _)| *v == sym)
            .map(|i| (i, self.vars[i].1))
    }

    /// Compiles template `s` at ellipsis depth `depth`; `used` collects the pattern variables
    /// it mentions. `escaped`: inside `(... …)`, where the ellipsis is an ordinary identifier.
    fn template(
        &self,
        s: &Syntax,
        depth: usize,
        escaped: bool,
        used: &mut Vec<usize>,
    ) -> LispResult<Template> {
        match &s.kind {
            SyntaxKind::Atom(Value::Symbol(sym)) => {
                if let Some((slot, vdepth)) = self.var(*sym) {
                    if vdepth > depth {
                        return Err(err(
                            &s.span,
                            format!(
                                "syntax-rules: pattern variable {sym} is followed by {vdepth} \
                                 ellipsis(es) in the pattern but only {depth} in the template"
                            ),
                        ));
                    }
                    used.push(slot);
                    Ok(Template::Var(slot))
                } else if !escaped && self.is_ellipsis(s) {
                    Err(err(
                        &s.span,
                        format!("syntax-rules: misplaced ellipsis {sym} in a template"),
                    ))
                } else {
                    Ok(Template::Ident(*sym))
                }
            }
            SyntaxKind::Atom(Value::Vector(v)) => {
                let items = vector_items(v, &s.span)?;
                let refs: Vec<&Syntax> = items.iter().collect();
                let mut inner = Vec::new();
                let elems = self.elements(&refs, depth, escaped, &mut inner)?;
                if inner.is_empty() {
                    // No pattern variable inside: the vector is a constant as written.
                    return Ok(Template::Datum(Value::Vector(v.clone())));
                }
                used.extend(inner);
                Ok(Template::Vector(elems))
            }
            SyntaxKind::Atom(v) => Ok(Template::Datum(v.clone())),
            SyntaxKind::Map(items) => {
                let items: Vec<&Syntax> = items.iter().collect();
                Ok(Template::Map(self.elements(&items, depth, escaped, used)?))
            }
            SyntaxKind::List(..) => {
                let (items, tail) = flat(s);
                if !escaped && self.is_ellipsis(items[0]) {
                    if items.len() == 2 && tail.is_none() {
                        // `(... template)`: the ellipsis stands for itself inside.
                        return self.template(items[1], depth, true, used);
                    }
                    return Err(err(
                        &items[0].span,
                        "syntax-rules: an ellipsis must follow a subtemplate (escape it as (... ...))",
                    ));
                }
                let elems = self.elements(&items, depth, escaped, used)?;
                let tail = match tail {
                    Some(t) => Some(Box::new(self.template(t, depth, escaped, used)?)),
                    None => None,
                };
                Ok(Template::List(elems, tail))
            }
        }
    }

    fn elements(
        &self,
        items: &[&Syntax],
        depth: usize,
        escaped: bool,
        used: &mut Vec<usize>,
    ) -> LispResult<Vec<Element>> {
        let mut out = Vec::with_capacity(items.len());
        let mut i = 0;
        while i < items.len() {
            let item = items[i];
            let mut ellipses = 0;
            while !escaped
                && items
                    .get(i + 1 + ellipses)
                    .is_some_and(|n| self.is_ellipsis(n))
            {
                ellipses += 1;
            }
            let mut inner = Vec::new();
            let template = self.template(item, depth + ellipses, escaped, &mut inner)?;
            let levels: Vec<Vec<usize>> = (0..ellipses)
                .map(|j| {
                    let mut vs: Vec<usize> = inner
                        .iter()
                        .copied()
                        .filter(|&v| self.vars[v].1 > depth + j)
                        .collect();
                    vs.sort_unstable();
                    vs.dedup();
                    vs
                })
                .collect();
            if let Some(j) = levels.iter().position(Vec::is_empty) {
                return Err(err(
                    &items[i + 1 + j].span,
                    "syntax-rules: no pattern variable under this ellipsis is followed by as \
                     many ellipses in the pattern",
                ));
            }
            used.extend(inner);
            out.push(Element {
                template,
                ellipses,
                levels,
            });
            i += 1 + ellipses;
        }
        Ok(out)
    }
}

/// Compiles `(syntax-rules [ellipsis] (literal…) (pattern template)…)`, the transformer of
/// macro `name`, defined where `env_depth` scopes are visible.
pub(crate) fn compile(spec: &Syntax, name: Symbol, env_depth: usize) -> LispResult<SyntaxRules> {
    let (items, tail) = flat(spec);
    if tail.is_some() {
        return Err(err(&spec.span, "syntax-rules: a dotted transformer spec"));
    }
    let usage = "syntax-rules expects (syntax-rules (literal…) (pattern template)…)";
    let mut rest = items.get(1..).unwrap_or(&[]);
    let mut ellipsis = Some(Symbol::intern("..."));
    if let Some(custom) = rest.first().and_then(|s| s.as_symbol()) {
        ellipsis = Some(unalias(custom));
        rest = &rest[1..];
    }
    let Some((lits, rules)) = rest.split_first() else {
        return Err(err(&spec.span, usage));
    };
    let (lit_items, lit_tail) = flat(lits);
    if lit_tail.is_some()
        || !matches!(
            lits.kind,
            SyntaxKind::List(..) | SyntaxKind::Atom(Value::Nil)
        )
    {
        return Err(err(
            &lits.span,
            "syntax-rules: the literals must be a list of identifiers",
        ));
    }
    let literals = lit_items
        .iter()
        .map(|l| {
            l.as_symbol()
                .ok_or_else(|| err(&l.span, "syntax-rules: a literal must be an identifier"))
        })
        .collect::<LispResult<Vec<_>>>()?;
    if ellipsis.is_some_and(|e| literals.iter().any(|l| unalias(*l) == e)) {
        ellipsis = None;
    }
    let mut compiled = Vec::with_capacity(rules.len());
    for rule in rules {
        let (parts, rtail) = flat(rule);
        if parts.len() != 2 || rtail.is_some() {
            return Err(err(
                &rule.span,
                "syntax-rules: each rule must be (pattern template)",
            ));
        }
        let (pat_items, pat_tail) = flat(parts[0]);
        if pat_items.first().and_then(|k| k.as_symbol()).is_none() {
            return Err(err(
                &parts[0].span,
                "syntax-rules: a pattern must be a list that starts with the macro keyword",
            ));
        }
        let mut cx = Compiler {
            ellipsis,
            literals: &literals,
            vars: Vec::new(),
        };
        let pattern = cx.list_pattern(&pat_items[1..], pat_tail, 0)?;
        let template = cx.template(parts[1], 0, false, &mut Vec::new())?;
        compiled.push(Rule {
            pattern,
            template,
            var_depth: cx.vars.iter().map(|(_, d)| *d).collect(),
        });
    }
    let mut aliases = AliasRefs::default();
    aliases.retain(name);
    retain_aliases(spec, &mut aliases);
    Ok(SyntaxRules {
        name,
        env_depth,
        literals,
        rules: compiled,
        _aliases: aliases,
    })
}

/// Adds every alias in `spec` to `refs`, data included (iteratively: no native recursion; a
/// value is walked along list tails and into vectors, up to [`STRIP_BUDGET`] nodes, which
/// covers all the data a template can hold).
fn retain_aliases(spec: &Syntax, refs: &mut AliasRefs) {
    let mut seen = std::collections::HashSet::new();
    let mut keep = |sym: Symbol, refs: &mut AliasRefs| {
        if sym.is_alias() && seen.insert(sym) {
            refs.retain(sym);
        }
    };
    let mut forms = vec![spec];
    let mut values = Vec::new();
    while let Some(form) = forms.pop() {
        match &form.kind {
            SyntaxKind::Atom(v) => values.push(v.clone()),
            SyntaxKind::List(items, tail) => {
                forms.extend(items.iter());
                forms.extend(tail.as_deref());
            }
            SyntaxKind::Map(items) => forms.extend(items.iter()),
        }
    }
    let mut budget = STRIP_BUDGET;
    while let Some(v) = values.pop() {
        if budget == 0 {
            break;
        }
        budget -= 1;
        match v {
            Value::Symbol(sym) => keep(sym, refs),
            Value::Pair(p) => {
                values.push(p.car());
                values.push(p.cdr());
            }
            Value::Vector(items) => values.extend(items.to_vec()),
            _ => {}
        }
    }
}

/// The `:limit` error of an expansion that would make more than [`MAX_LIVE_ALIASES`] aliases
/// alive at once.
fn alias_limit_error(name: Symbol, span: &Span) -> LispError {
    LispError::new(
        ErrorKind::Limit,
        format!(
            "limit exceeded: {MAX_LIVE_ALIASES} live macro-introduced identifiers, expanding \
             {name}"
        ),
    )
    .with_span(span.clone())
}

/// Matching one use: the literal test the expander supplies and the work done.
struct Matcher<'f> {
    /// Whether an input identifier has the binding a literal has at the definition.
    same: &'f dyn Fn(Symbol, Symbol) -> bool,
    /// Nodes visited since the last charge.
    cost: u64,
    charge: &'f mut dyn FnMut(u64) -> LispResult<()>,
    guard: StackGuard,
    span: Span,
    name: Symbol,
}

impl Matcher<'_> {
    fn tick(&mut self, n: u64) -> LispResult<()> {
        if !self.guard.ok() {
            return Err(depth_limit_error(self.name, &self.span));
        }
        self.cost += n;
        if self.cost >= CHARGE_EVERY {
            let c = std::mem::take(&mut self.cost);
            (self.charge)(c)?;
        }
        Ok(())
    }

    fn pattern<'a>(
        &mut self,
        p: &Pattern,
        s: &'a Syntax,
        b: &mut [Option<Match<'a>>],
        nvars: usize,
    ) -> LispResult<bool> {
        self.tick(1)?;
        Ok(match p {
            Pattern::Any => true,
            Pattern::Var(v) => {
                b[*v] = Some(Match::One(Cow::Borrowed(s)));
                true
            }
            Pattern::Vector(lp) => match &s.kind {
                SyntaxKind::Atom(Value::Vector(v)) => self.vector(lp, v, &s.span, b, nvars)?,
                _ => false,
            },
            Pattern::Literal(l) => s.as_symbol().is_some_and(|x| (self.same)(x, *l)),
            Pattern::Nil => matches!(s.kind, SyntaxKind::Atom(Value::Nil)),
            Pattern::Datum(d) => {
                matches!(&s.kind, SyntaxKind::Atom(v) if crate::value::equal(v, d))
            }
            Pattern::List(lp) => match &s.kind {
                SyntaxKind::List(..) | SyntaxKind::Atom(Value::Nil) => {
                    let (items, tail) = flat(s);
                    self.list(lp, &items, tail, b, nvars)?
                }
                _ => false,
            },
        })
    }

    /// Matches the rest of a list (`items` then `tail`) against a dotted pattern's tail.
    fn rest<'a>(
        &mut self,
        p: &Pattern,
        items: &[&'a Syntax],
        tail: Option<&'a Syntax>,
        b: &mut [Option<Match<'a>>],
        nvars: usize,
    ) -> LispResult<bool> {
        match (items, tail) {
            ([], Some(t)) => self.pattern(p, t, b, nvars),
            ([], None) => Ok(match p {
                Pattern::Any | Pattern::Nil => true,
                Pattern::Var(v) => {
                    b[*v] = Some(Match::Rest(Vec::new(), None));
                    true
                }
                Pattern::List(lp) => self.list(lp, &[], None, b, nvars)?,
                Pattern::Literal(_) | Pattern::Datum(_) | Pattern::Vector(_) => false,
            }),
            _ => Ok(match p {
                Pattern::Any => true,
                Pattern::Var(v) => {
                    b[*v] = Some(Match::Rest(
                        items.iter().map(|s| Cow::Borrowed(*s)).collect(),
                        tail.map(Cow::Borrowed),
                    ));
                    true
                }
                Pattern::List(lp) => self.list(lp, items, tail, b, nvars)?,
                _ => false,
            }),
        }
    }

    /// Matches the elements of vector `v` (an atom of the use at `span`) against `lp`; what
    /// its variables match is owned (the elements are made syntax here).
    fn vector<'a>(
        &mut self,
        lp: &ListPattern,
        v: &crate::value::LispVector,
        span: &Span,
        b: &mut [Option<Match<'a>>],
        nvars: usize,
    ) -> LispResult<bool> {
        let items = vector_items(v, span)?;
        self.tick(items.len() as u64)?;
        let refs: Vec<&Syntax> = items.iter().collect();
        let mut sub: Vec<Option<Match<'_>>> = (0..nvars).map(|_| None).collect();
        if !self.list(lp, &refs, None, &mut sub, nvars)? {
            return Ok(false);
        }
        for (slot, m) in b.iter_mut().zip(sub) {
            if let Some(m) = m {
                *slot = Some(m.into_owned());
            }
        }
        Ok(true)
    }

    fn list<'a>(
        &mut self,
        lp: &ListPattern,
        items: &[&'a Syntax],
        tail: Option<&'a Syntax>,
        b: &mut [Option<Match<'a>>],
        nvars: usize,
    ) -> LispResult<bool> {
        let fixed = lp.before.len() + lp.after.len();
        if items.len() < fixed || (lp.rest.is_none() && tail.is_some()) {
            return Ok(false);
        }
        if lp.rep.is_none() && lp.rest.is_none() && items.len() != fixed {
            return Ok(false);
        }
        for (p, s) in lp.before.iter().zip(items) {
            if !self.pattern(p, s, b, nvars)? {
                return Ok(false);
            }
        }
        let mut next = lp.before.len();
        if let Some(rep) = &lp.rep {
            let count = items.len() - fixed;
            let mut seqs: Vec<Vec<Match<'a>>> =
                rep.vars.iter().map(|_| Vec::with_capacity(count)).collect();
            let mut sub: Vec<Option<Match<'a>>> = (0..nvars).map(|_| None).collect();
            for s in &items[next..next + count] {
                if !self.pattern(&rep.pattern, s, &mut sub, nvars)? {
                    return Ok(false);
                }
                for (seq, &v) in seqs.iter_mut().zip(&rep.vars) {
                    seq.push(sub[v].take().unwrap_or(Match::Seq(Vec::new())));
                }
            }
            for (seq, &v) in seqs.into_iter().zip(&rep.vars) {
                b[v] = Some(Match::Seq(seq));
            }
            next += count;
            for (p, s) in lp.after.iter().zip(&items[next..]) {
                if !self.pattern(p, s, b, nvars)? {
                    return Ok(false);
                }
            }
            next += lp.after.len();
        }
        match &lp.rest {
            Some(r) => self.rest(r, &items[next..], tail, b, nvars),
            None => Ok(true),
        }
    }
}

/// Instantiating one template.
struct Instantiator<'f> {
    /// The use's position: every node the template makes gets it.
    span: Span,
    /// Template identifier → its alias in this expansion.
    renames: HashMap<Symbol, Symbol>,
    /// The aliases made (what [`Expansion::aliases`] hands over).
    owned: AliasRefs,
    cost: u64,
    charge: &'f mut dyn FnMut(u64) -> LispResult<()>,
    name: Symbol,
    guard: StackGuard,
}

/// A pattern variable's binding while instantiating.
type Bindings<'m, 'a> = Vec<Option<&'m Match<'a>>>;

impl Instantiator<'_> {
    fn tick(&mut self, n: u64) -> LispResult<()> {
        if !self.guard.ok() {
            return Err(depth_limit_error(self.name, &self.span));
        }
        self.cost += n;
        if self.cost >= CHARGE_EVERY {
            let c = std::mem::take(&mut self.cost);
            (self.charge)(c)?;
        }
        Ok(())
    }

    /// The output would be nested past [`EXPAND_LIMIT`] levels (a macro growing its input as
    /// it recurses).
    fn too_deep(&self) -> LispError {
        depth_limit_error(self.name, &self.span)
    }

    /// A copy of input syntax `s` and its depth; charges its size first.
    fn copy(&mut self, s: &Syntax) -> LispResult<(Syntax, usize)> {
        let (nodes, depth) = measure(s, 0, &self.guard).ok_or_else(|| self.too_deep())?;
        self.tick(nodes)?;
        Ok((s.clone(), depth))
    }

    fn list_of(
        &mut self,
        mut items: Vec<Syntax>,
        mut depth: usize,
        tail: Option<(Syntax, usize)>,
        span: Span,
    ) -> LispResult<(Syntax, usize)> {
        let tail = match tail {
            Some((t, d)) => match t.kind {
                SyntaxKind::List(more, next) => {
                    depth = depth.max(d.saturating_sub(1));
                    items.extend(more);
                    next
                }
                SyntaxKind::Atom(Value::Nil) => None,
                _ => {
                    depth = depth.max(d);
                    Some(Box::new(t))
                }
            },
            None => None,
        };
        if items.is_empty() {
            return Ok(match tail {
                Some(t) => (*t, depth),
                None => (Syntax::atom(Value::Nil, span), 0),
            });
        }
        if depth + 1 > EXPAND_LIMIT {
            return Err(self.too_deep());
        }
        Ok((
            Syntax {
                kind: SyntaxKind::List(items, tail),
                span,
            },
            depth + 1,
        ))
    }

    fn var<'a>(&mut self, m: Option<&Match<'a>>) -> LispResult<(Syntax, usize)> {
        match m {
            Some(Match::One(s)) => self.copy(s),
            Some(Match::Rest(items, tail)) => {
                let mut out = Vec::with_capacity(items.len());
                let mut depth = 0;
                for s in items {
                    let (c, d) = self.copy(s)?;
                    depth = depth.max(d);
                    out.push(c);
                }
                let tail = tail.as_deref().map(|t| self.copy(t)).transpose()?;
                let span = items
                    .first()
                    .map_or_else(|| self.span.clone(), |s| s.span.clone());
                self.list_of(out, depth, tail, span)
            }
            // Excluded by the depth checks made at the definition.
            Some(Match::Seq(_)) | None => Err(err(
                &self.span,
                format!(
                    "syntax-rules: {}: a pattern variable is used at the wrong ellipsis depth",
                    self.name
                ),
            )),
        }
    }

    fn template<'m, 'a>(
        &mut self,
        t: &Template,
        b: &mut Bindings<'m, 'a>,
        depth: usize,
        var_depth: &[usize],
    ) -> LispResult<(Syntax, usize)> {
        self.tick(1)?;
        match t {
            Template::Ident(sym) => {
                let alias = match self.renames.get(sym) {
                    Some(alias) => *alias,
                    None => {
                        let alias = self
                            .owned
                            .fresh(*sym)
                            .ok_or_else(|| alias_limit_error(self.name, &self.span))?;
                        self.renames.insert(*sym, alias);
                        alias
                    }
                };
                Ok((Syntax::atom(Value::Symbol(alias), self.span.clone()), 0))
            }
            Template::Var(v) => self.var(b[*v]),
            Template::Datum(v) => Ok((Syntax::atom(v.clone(), self.span.clone()), 0)),
            Template::List(elems, tail) => {
                let mut items = Vec::with_capacity(elems.len());
                let mut d = 0;
                for e in elems {
                    d = d.max(self.element(e, 0, b, depth, var_depth, &mut items)?);
                }
                let tail = match tail {
                    Some(t) => Some(self.template(t, b, depth, var_depth)?),
                    None => None,
                };
                self.list_of(items, d, tail, self.span.clone())
            }
            Template::Vector(elems) => {
                let mut items = Vec::with_capacity(elems.len());
                for e in elems {
                    self.element(e, 0, b, depth, var_depth, &mut items)?;
                }
                let mut budget = STRIP_BUDGET;
                let values = items
                    .iter()
                    .map(|s| strip_data(&s.to_value(), 0, &mut budget))
                    .collect();
                Ok((Syntax::atom(Value::vector(values), self.span.clone()), 0))
            }
            Template::Map(elems) => {
                let mut items = Vec::with_capacity(elems.len());
                let mut d = 0;
                for e in elems {
                    d = d.max(self.element(e, 0, b, depth, var_depth, &mut items)?);
                }
                if d + 1 > EXPAND_LIMIT {
                    return Err(self.too_deep());
                }
                Ok((
                    Syntax {
                        kind: SyntaxKind::Map(items),
                        span: self.span.clone(),
                    },
                    d + 1,
                ))
            }
        }
    }

    /// Instantiates element `e` from its `level`-th ellipsis on (the list is at ellipsis depth
    /// `depth`), pushing the forms to `out`; returns their greatest depth.
    fn element<'m, 'a>(
        &mut self,
        e: &Element,
        level: usize,
        b: &mut Bindings<'m, 'a>,
        depth: usize,
        var_depth: &[usize],
        out: &mut Vec<Syntax>,
    ) -> LispResult<usize> {
        if level == e.ellipses {
            let (s, d) = self.template(&e.template, b, depth + e.ellipses, var_depth)?;
            out.push(s);
            return Ok(d);
        }
        let drivers = &e.levels[level];
        let mut seqs: Vec<&'m [Match<'a>]> = Vec::with_capacity(drivers.len());
        for &v in drivers {
            match b[v] {
                Some(Match::Seq(items)) => seqs.push(items),
                _ => return self.var(None).map(|_| 0),
            }
        }
        let len = seqs.first().map_or(0, |s| s.len());
        if let Some(k) = seqs.iter().position(|s| s.len() != len) {
            return Err(err(
                &self.span,
                format!(
                    "{}: pattern variables under one ellipsis matched different numbers of \
                     forms ({len} and {})",
                    self.name,
                    seqs[k].len()
                ),
            ));
        }
        let saved: Vec<Option<&'m Match<'a>>> = drivers.iter().map(|&v| b[v]).collect();
        let mut d = 0;
        for i in 0..len {
            for (&v, seq) in drivers.iter().zip(&seqs) {
                b[v] = Some(&seq[i]);
            }
            d = d.max(self.element(e, level + 1, b, depth, var_depth, out)?);
        }
        for (&v, old) in drivers.iter().zip(saved) {
            b[v] = old;
        }
        Ok(d)
    }
}

/// The node count and depth of `s` (`None` past [`EXPAND_LIMIT`] levels below `depth`, or
/// past the native-stack budget).
fn measure(s: &Syntax, depth: usize, guard: &StackGuard) -> Option<(u64, usize)> {
    if depth > EXPAND_LIMIT || !guard.ok() {
        return None;
    }
    match &s.kind {
        SyntaxKind::Atom(_) => Some((1, 0)),
        SyntaxKind::List(items, tail) => {
            let mut nodes = 1;
            let mut d = 0;
            for i in items.iter().chain(tail.as_deref()) {
                let (n, id) = measure(i, depth + 1, guard)?;
                nodes += n;
                d = d.max(id);
            }
            Some((nodes, d + 1))
        }
        SyntaxKind::Map(items) => {
            let mut nodes = 1;
            let mut d = 0;
            for i in items {
                let (n, id) = measure(i, depth + 1, guard)?;
                nodes += n;
                d = d.max(id);
            }
            Some((nodes, d + 1))
        }
    }
}

/// The output of one expansion and the aliases it introduced.
pub(crate) struct Expansion {
    /// The form the use stands for.
    pub(crate) output: Syntax,
    /// The aliases made for the template's identifiers, held until this is dropped (the
    /// expander keeps them for the rest of its top-level form).
    pub(crate) aliases: AliasRefs,
}

impl SyntaxRules {
    /// The literals, for the expander's free-identifier test.
    pub(crate) fn literals(&self) -> &[Symbol] {
        &self.literals
    }

    /// Expands `use_form` (`(keyword …)`) with the first rule whose pattern matches. `same`
    /// says whether an input identifier has a literal's binding; `charge` is given the work
    /// done (nodes) and fails to stop the expansion (steps, interrupt, heap).
    pub(crate) fn expand(
        &self,
        use_form: &Syntax,
        same: &dyn Fn(Symbol, Symbol) -> bool,
        charge: &mut dyn FnMut(u64) -> LispResult<()>,
        guard: StackGuard,
    ) -> LispResult<Expansion> {
        let (items, tail) = flat(use_form);
        let args = items.get(1..).unwrap_or(&[]);
        let mut matcher = Matcher {
            same,
            cost: 0,
            charge: &mut *charge,
            guard,
            span: use_form.span.clone(),
            name: self.name,
        };
        let mut chosen = None;
        for rule in &self.rules {
            let nvars = rule.var_depth.len();
            let mut b: Vec<Option<Match<'_>>> = (0..nvars).map(|_| None).collect();
            if matcher.list(&rule.pattern, args, tail, &mut b, nvars)? {
                chosen = Some((rule, b));
                break;
            }
        }
        let cost = matcher.cost;
        charge(cost.max(1))?;
        let Some((rule, matches)) = chosen else {
            return Err(LispError::new(
                ErrorKind::Syntax,
                format!(
                    "no syntax-rules clause of {} matches {}",
                    self.name,
                    crate::printer::write_string_limited(&use_form.to_value(), 80)
                ),
            )
            .with_span(use_form.span.clone()));
        };
        let mut inst = Instantiator {
            span: use_form.span.clone(),
            renames: HashMap::new(),
            owned: AliasRefs::default(),
            cost: 0,
            charge: &mut *charge,
            name: self.name,
            guard,
        };
        let mut b: Bindings<'_, '_> = matches.iter().map(Option::as_ref).collect();
        let (output, _) = inst.template(&rule.template, &mut b, 0, &rule.var_depth)?;
        let cost = inst.cost;
        let aliases = std::mem::take(&mut inst.owned);
        charge(cost)?;
        Ok(Expansion { output, aliases })
    }
}
