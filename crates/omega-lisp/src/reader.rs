//! The reader: source text → [`Syntax`] (datums that carry their source position).
//!
//! # Implementation details
//!
//! The reader is iterative: open lists, maps, quote prefixes and `#;` skips live on an explicit
//! stack, so deeply nested input ends in a clean "nesting too deep" error instead of a native
//! stack overflow. Nesting is capped at [`MAX_NESTING`], which also bounds the recursion of the
//! expander and compiler that walk the result.

use std::rc::Rc;

use crate::error::{LispError, LispResult, Span};
use crate::printer::CHAR_NAMES;
use crate::symbol::Symbol;
use crate::value::{MapKey, Value};

/// Deepest nesting of lists/maps/quotes the reader (and the compiler) accept.
pub const MAX_NESTING: usize = 1000;

/// A datum with its source position.
#[derive(Clone, Debug)]
pub struct Syntax {
    /// What was read.
    pub kind: SyntaxKind,
    /// Where it starts.
    pub span: Span,
}

/// The shape of a [`Syntax`].
#[derive(Clone, Debug)]
pub enum SyntaxKind {
    /// A number, string, symbol, keyword, boolean or `nil`/`()`.
    Atom(Value),
    /// A non-empty list, with an optional dotted tail (`(a b . c)`).
    List(Vec<Syntax>, Option<Box<Syntax>>),
    /// A map literal `{k v …}` (an even number of forms, checked by the reader).
    Map(Vec<Syntax>),
}

impl Syntax {
    /// An atom at `span`.
    pub fn atom(v: Value, span: Span) -> Syntax {
        Syntax {
            kind: SyntaxKind::Atom(v),
            span,
        }
    }

    /// The symbol, if this is a symbol atom.
    pub fn as_symbol(&self) -> Option<Symbol> {
        match &self.kind {
            SyntaxKind::Atom(Value::Symbol(s)) => Some(*s),
            _ => None,
        }
    }

    /// The plain value of this datum (what `quote` returns). Recursion is bounded by
    /// [`MAX_NESTING`].
    // Map keys order by address inside interior mutability, never by contents.
    #[allow(clippy::mutable_key_type)]
    pub fn to_value(&self) -> Value {
        match &self.kind {
            SyntaxKind::Atom(v) => v.clone(),
            SyntaxKind::List(items, tail) => {
                let tail = tail.as_ref().map_or(Value::Nil, |t| t.to_value());
                Value::list_with_tail(items.iter().map(Syntax::to_value).collect::<Vec<_>>(), tail)
            }
            SyntaxKind::Map(items) => {
                let map = items
                    .chunks(2)
                    .filter(|c| c.len() == 2)
                    .map(|c| (MapKey(c[0].to_value()), c[1].to_value()))
                    .collect();
                Value::Map(Rc::new(map))
            }
        }
    }

    /// Converts a value (e.g. a macro's output) back to syntax, giving every part `span`.
    /// Fails on improper structures nested deeper than [`MAX_NESTING`].
    ///
    /// The datum of a `(quote X)` stays one atom holding `X` as it is, so quoted data a macro
    /// returns keeps its sharing (a 60-level shared structure is not unfolded); other forms
    /// are charged to the heap limit as they are converted.
    pub fn from_value(v: &Value, span: &Span) -> LispResult<Syntax> {
        Syntax::from_value_depth(v, span, 0, &mut 0)
    }

    fn from_value_depth(
        v: &Value,
        span: &Span,
        depth: usize,
        nodes: &mut usize,
    ) -> LispResult<Syntax> {
        if depth > MAX_NESTING {
            return Err(LispError::syntax(
                span.clone(),
                format!("form nested too deeply (more than {MAX_NESTING} levels)"),
            ));
        }
        *nodes += 1;
        if *nodes % 4096 == 0 {
            crate::heap::check_thread().map_err(|e| e.with_span(span.clone()))?;
        }
        Ok(match v {
            Value::Pair(p) if is_quote_form(p) => {
                let datum = match &p.cdr() {
                    Value::Pair(rest) => rest.car(),
                    _ => Value::Nil,
                };
                Syntax {
                    kind: SyntaxKind::List(
                        vec![
                            Syntax::atom(p.car(), span.clone()),
                            Syntax::atom(datum, span.clone()),
                        ],
                        None,
                    ),
                    span: span.clone(),
                }
            }
            Value::Pair(_) => {
                let mut items = Vec::new();
                let mut cur = v.clone();
                let mut check = crate::value::CycleCheck::new();
                while let Value::Pair(p) = &cur {
                    if check.circular(p) {
                        return Err(LispError::syntax(
                            span.clone(),
                            "a macro produced a circular list as code",
                        ));
                    }
                    items.push(Syntax::from_value_depth(&p.car(), span, depth + 1, nodes)?);
                    let next = p.cdr();
                    cur = next;
                }
                let tail = match cur {
                    Value::Nil => None,
                    other => Some(Box::new(Syntax::from_value_depth(
                        &other,
                        span,
                        depth + 1,
                        nodes,
                    )?)),
                };
                Syntax {
                    kind: SyntaxKind::List(items, tail),
                    span: span.clone(),
                }
            }
            other => Syntax::atom(other.clone(), span.clone()),
        })
    }
}

/// Whether `p` is `(quote X)`: the symbol `quote` and exactly one datum.
fn is_quote_form(p: &crate::value::Pair) -> bool {
    matches!(&p.car(), Value::Symbol(s) if &*s.name() == "quote")
        && matches!(&p.cdr(), Value::Pair(rest) if rest.cdr_is_nil())
}

/// Reads every datum in `src`; `file` names the source in positions and errors.
///
/// A leading UTF-8 byte-order mark is skipped; a NUL character is a `:syntax` error at its
/// position; a string literal or symbol longer than the thread's `max_string_len`
/// ([`set_thread_max_string_len`]) is a `:limit` error.
pub fn read_all(src: &str, file: &str) -> LispResult<Vec<Syntax>> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    if let Some(at) = src.find('\0') {
        let (line, col) = line_col(&src[..at]);
        return Err(LispError::syntax(
            Span::new(Rc::from(file), line, col),
            "NUL byte in source",
        ));
    }
    Reader::new(src, Rc::from(file)).read_all()
}

/// [`read_all`] of text that starts at line `line` (column 1) of `file`: the preludes read
/// one top-level form at a time (`prelude.rs`), with the positions of the whole file.
pub(crate) fn read_all_at(src: &str, file: &str, line: u32) -> LispResult<Vec<Syntax>> {
    let mut r = Reader::new(src, Rc::from(file));
    r.line = line;
    r.read_all()
}

/// Reads the first datum of `src` (for `read` on a string port), as if `src` started at
/// `line`:`col` of `file`; returns the datum and the number of bytes it and the atmosphere
/// before it took, or `None` at the end of the input (only atmosphere left).
pub(crate) fn read_first(
    src: &str,
    file: &str,
    line: u32,
    col: u32,
) -> LispResult<Option<(Value, usize)>> {
    let mut r = Reader::new(src, Rc::from(file));
    r.line = line;
    r.col = col;
    r.one = true;
    let forms = r.read_forms()?;
    Ok(forms.first().map(|d| (d.to_value(), r.pos)))
}

/// The source text of a file's bytes: UTF-8 without a leading byte-order mark. Invalid UTF-8
/// is a `:syntax` error at the line and column of the first bad byte.
pub fn decode_source<'a>(bytes: &'a [u8], file: &str) -> LispResult<&'a str> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let good = e.valid_up_to();
        // The prefix is valid by definition.
        let prefix = std::str::from_utf8(&bytes[..good]).unwrap_or_default();
        let (line, col) = line_col(prefix);
        LispError::syntax(
            Span::new(Rc::from(file), line, col),
            format!("invalid UTF-8 (byte 0x{:02x})", bytes[good]),
        )
    })
}

/// The 1-based line and column just after `prefix`.
fn line_col(prefix: &str) -> (u32, u32) {
    let line = prefix.bytes().filter(|&b| b == b'\n').count() + 1;
    let last = prefix.rfind('\n').map_or(prefix, |i| &prefix[i + 1..]);
    let col = last.chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

thread_local! {
    static MAX_STRING_LEN: std::cell::Cell<usize> =
        const { std::cell::Cell::new(16 * 1024 * 1024) };
}

/// Sets the longest string literal or symbol the reader accepts on this thread (a runtime sets
/// its `max_string_len` before reading).
pub fn set_thread_max_string_len(max: usize) {
    MAX_STRING_LEN.with(|m| m.set(max));
}

fn check_atom_len(len: usize, span: &Span) -> LispResult<()> {
    let max = MAX_STRING_LEN.with(std::cell::Cell::get);
    if len > max {
        return Err(LispError::limit("max_string_len", max).with_span(span.clone()));
    }
    Ok(())
}

/// Reads exactly one datum from `src` (e.g. `(read-string "(1 2)")`).
pub fn read_one(src: &str, file: &str) -> LispResult<Value> {
    let forms = read_all(src, file)?;
    match forms.as_slice() {
        [one] => Ok(one.to_value()),
        [] => Err(LispError::syntax(
            Span::new(Rc::from(file), 1, 1),
            "no datum to read",
        )),
        [_, second, ..] => Err(LispError::syntax(
            second.span.clone(),
            "more than one datum",
        )),
    }
}

enum Frame {
    List {
        span: Span,
        items: Vec<Syntax>,
        dot: Dot,
    },
    Map {
        span: Span,
        items: Vec<Syntax>,
    },
    Prefix {
        sym: &'static str,
        span: Span,
    },
    Skip {
        span: Span,
    },
    /// `#(`: a vector literal, read as one constant (self-evaluating).
    Vector {
        span: Span,
        items: Vec<Syntax>,
    },
    /// `#n=`: the next datum gets label `n`.
    Label {
        n: u64,
        span: Span,
    },
}

/// A datum label of the datum being read (`#n=`): in progress (references to it inside its own
/// datum read as a placeholder, patched when the datum is complete) or done.
enum LabelState {
    Open(Value),
    Done(Value),
}

/// The placeholder a `#n#` inside datum `n` reads as until the datum is complete.
#[derive(Debug)]
struct LabelPlaceholder;

impl crate::value::Foreign for LabelPlaceholder {
    fn type_name(&self) -> &str {
        "datum-label"
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Replaces every occurrence of `placeholder` reachable from `root` through pairs, vectors
/// and maps with `root` itself (closing the cycles `#n=…#n#` describes). Iterative, each
/// object once. A map is immutable, so a placeholder that is directly a map's key or value
/// cannot be patched: `false` then (the caller reports it).
fn patch_label(root: &Value, placeholder: &Value) -> bool {
    let is_ph = |v: &Value| crate::value::eq(v, placeholder);
    let mut seen: std::collections::HashSet<usize> = std::collections::HashSet::new();
    let mut work = vec![root.clone()];
    while let Some(v) = work.pop() {
        match &v {
            Value::Pair(p) => {
                if !seen.insert(Rc::as_ptr(p) as usize) {
                    continue;
                }
                let (car, cdr) = (p.car(), p.cdr());
                if is_ph(&car) {
                    crate::value::set_car(p, root.clone());
                } else {
                    work.push(car);
                }
                if is_ph(&cdr) {
                    crate::value::set_cdr(p, root.clone());
                } else {
                    work.push(cdr);
                }
            }
            Value::Vector(items) => {
                if !seen.insert(Rc::as_ptr(items) as usize) {
                    continue;
                }
                for (i, x) in items.to_vec().into_iter().enumerate() {
                    if is_ph(&x) {
                        items.set(i, root.clone());
                    } else {
                        work.push(x);
                    }
                }
            }
            Value::Map(m) => {
                if !seen.insert(Rc::as_ptr(m) as usize) {
                    continue;
                }
                for (k, x) in m.iter() {
                    if is_ph(&k.0) || is_ph(x) {
                        return false;
                    }
                    work.push(k.0.clone());
                    work.push(x.clone());
                }
            }
            _ => {}
        }
    }
    true
}

#[derive(PartialEq)]
enum Dot {
    No,
    ExpectTail,
    Tail(Box<Syntax>),
}

struct Reader<'a> {
    /// The whole source (tokens are sliced from it, not copied char by char).
    src: &'a str,
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    file: Rc<str>,
    line: u32,
    col: u32,
    /// Bytes consumed so far.
    pos: usize,
    /// Stop after the first top-level datum (`read_first`).
    one: bool,
}

impl PartialEq for Syntax {
    fn eq(&self, other: &Syntax) -> bool {
        self.to_value() == other.to_value()
    }
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '(' | ')' | '[' | ']' | '{' | '}' | '"' | ';' | '\'' | '`' | ','
        )
}

impl<'a> Reader<'a> {
    fn new(src: &'a str, file: Rc<str>) -> Reader<'a> {
        Reader {
            src,
            chars: src.chars().peekable(),
            file,
            line: 1,
            col: 1,
            pos: 0,
            one: false,
        }
    }

    fn span(&self) -> Span {
        Span::new(self.file.clone(), self.line, self.col)
    }

    fn err(&self, span: Span, msg: impl Into<String>) -> LispError {
        LispError::syntax(span, msg)
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.chars.clone();
        it.next();
        it.next()
    }

    /// Skips whitespace, `;` comments and nested `#| |#` comments.
    fn skip_atmosphere(&mut self) -> LispResult<()> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some(';') => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                Some('#') if self.peek2() == Some('|') => {
                    let start = self.span();
                    self.bump();
                    self.bump();
                    let mut depth = 1usize;
                    while depth > 0 {
                        match self.bump() {
                            None => return Err(self.err(start, "unterminated block comment")),
                            Some('|') if self.peek() == Some('#') => {
                                self.bump();
                                depth -= 1;
                            }
                            Some('#') if self.peek() == Some('|') => {
                                self.bump();
                                depth += 1;
                            }
                            Some(_) => {}
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn read_all(mut self) -> LispResult<Vec<Syntax>> {
        self.read_forms()
    }

    /// Reads `#n=` or `#n#` (the `#` and a digit are next): the label and whether it is a
    /// definition.
    fn read_label(&mut self, span: &Span) -> LispResult<(u64, bool)> {
        self.bump();
        let mut n: u64 = 0;
        while let Some(c) = self.peek() {
            let Some(d) = c.to_digit(10) else { break };
            self.bump();
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d)))
                .ok_or_else(|| self.err(span.clone(), "datum label too large"))?;
        }
        match self.bump() {
            Some('=') => Ok((n, true)),
            Some('#') => Ok((n, false)),
            _ => Err(self.err(
                span.clone(),
                format!("bad datum label: expected #{n}= or #{n}#"),
            )),
        }
    }

    fn read_forms(&mut self) -> LispResult<Vec<Syntax>> {
        let mut out = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        // Datum labels of the top-level datum being read (R7RS: their scope is that datum).
        let mut labels: std::collections::HashMap<u64, LabelState> =
            std::collections::HashMap::new();
        let mut until_heap_check = 0u32;
        loop {
            self.skip_atmosphere()?;
            let span = self.span();
            // The heap limit (`heap.rs`): what is read is charged as it is built.
            if until_heap_check == 0 {
                until_heap_check = 4096;
                crate::heap::check_thread().map_err(|e| e.with_span(span.clone()))?;
            }
            until_heap_check -= 1;
            let Some(c) = self.peek() else {
                return match stack.pop() {
                    None => Ok(out),
                    Some(Frame::List { span, .. }) => {
                        Err(self.err(span, "unclosed ( (end of input)"))
                    }
                    Some(Frame::Map { span, .. }) => {
                        Err(self.err(span, "unclosed { (end of input)"))
                    }
                    Some(Frame::Prefix { span, sym }) => {
                        Err(self.err(span, format!("{sym} needs a datum (end of input)")))
                    }
                    Some(Frame::Skip { span }) => {
                        Err(self.err(span, "#; needs a datum (end of input)"))
                    }
                    Some(Frame::Vector { span, .. }) => {
                        Err(self.err(span, "unclosed #( (end of input)"))
                    }
                    Some(Frame::Label { span, n }) => {
                        Err(self.err(span, format!("#{n}= needs a datum (end of input)")))
                    }
                };
            };
            if stack.len() >= MAX_NESTING
                && (matches!(c, '(' | '[' | '{' | '\'' | '`' | ',')
                    || (c == '#' && matches!(self.peek2(), Some('(' | '0'..='9'))))
            {
                return Err(self.err(
                    span,
                    format!("nesting too deep (more than {MAX_NESTING} levels)"),
                ));
            }
            let datum = match c {
                '(' | '[' => {
                    self.bump();
                    stack.push(Frame::List {
                        span,
                        items: Vec::new(),
                        dot: Dot::No,
                    });
                    continue;
                }
                '{' => {
                    self.bump();
                    stack.push(Frame::Map {
                        span,
                        items: Vec::new(),
                    });
                    continue;
                }
                '#' if self.peek2() == Some('(') => {
                    self.bump();
                    self.bump();
                    stack.push(Frame::Vector {
                        span,
                        items: Vec::new(),
                    });
                    continue;
                }
                '#' if self.peek2().is_some_and(|d| d.is_ascii_digit()) => {
                    let (n, define) = self.read_label(&span)?;
                    if define {
                        if labels.contains_key(&n) {
                            return Err(self.err(span, format!("datum label #{n}= defined twice")));
                        }
                        labels.insert(n, LabelState::Open(Value::foreign(LabelPlaceholder)));
                        stack.push(Frame::Label { n, span });
                        continue;
                    }
                    match labels.get(&n) {
                        Some(LabelState::Open(v) | LabelState::Done(v)) => {
                            Syntax::atom(v.clone(), span)
                        }
                        None => return Err(self.err(span, format!("undefined datum label #{n}#"))),
                    }
                }
                ')' | ']' if matches!(stack.last(), Some(Frame::Vector { .. })) => {
                    self.bump();
                    match stack.pop() {
                        Some(Frame::Vector { span, items }) => {
                            let v = Value::vector(items.iter().map(Syntax::to_value).collect());
                            Syntax::atom(v, span)
                        }
                        _ => return Err(self.err(span, format!("unexpected {c}"))),
                    }
                }
                ')' | ']' => {
                    self.bump();
                    match stack.pop() {
                        Some(Frame::List { span, items, dot }) => match dot {
                            Dot::ExpectTail => {
                                return Err(self.err(span, "expected a datum after . in list"))
                            }
                            Dot::Tail(t) => Syntax {
                                kind: SyntaxKind::List(items, Some(t)),
                                span,
                            },
                            Dot::No if items.is_empty() => Syntax::atom(Value::Nil, span),
                            Dot::No => Syntax {
                                kind: SyntaxKind::List(items, None),
                                span,
                            },
                        },
                        Some(Frame::Map { .. }) => {
                            return Err(self.err(span, format!("unexpected {c} (expected }})")))
                        }
                        _ => return Err(self.err(span, format!("unexpected {c}"))),
                    }
                }
                '}' => {
                    self.bump();
                    match stack.pop() {
                        Some(Frame::Map { span, items }) => {
                            if items.len() % 2 != 0 {
                                return Err(
                                    self.err(span, "map literal needs an even number of forms")
                                );
                            }
                            Syntax {
                                kind: SyntaxKind::Map(items),
                                span,
                            }
                        }
                        Some(Frame::List { .. }) => {
                            return Err(self.err(span, "unexpected } (expected ))"))
                        }
                        _ => return Err(self.err(span, "unexpected }")),
                    }
                }
                '\'' | '`' | ',' => {
                    self.bump();
                    let sym = match c {
                        '\'' => "quote",
                        '`' => "quasiquote",
                        _ if self.peek() == Some('@') => {
                            self.bump();
                            "unquote-splicing"
                        }
                        _ => "unquote",
                    };
                    stack.push(Frame::Prefix { sym, span });
                    continue;
                }
                '"' => self.read_string()?,
                '#' if self.peek2() == Some('\\') => self.read_char()?,
                '#' if self.peek2() == Some(';') => {
                    self.bump();
                    self.bump();
                    stack.push(Frame::Skip { span });
                    continue;
                }
                _ => {
                    let tok = self.read_token();
                    check_atom_len(tok.len(), &span)?;
                    if tok == "." {
                        match stack.last_mut() {
                            Some(Frame::List { items, dot, .. })
                                if *dot == Dot::No && !items.is_empty() =>
                            {
                                *dot = Dot::ExpectTail;
                                continue;
                            }
                            _ => return Err(self.err(span, "unexpected .")),
                        }
                    }
                    Syntax::atom(self.parse_atom(tok, &span)?, span)
                }
            };
            // A datum is complete: feed it to the enclosing frames.
            let mut datum = Some(datum);
            while let Some(d) = datum.take() {
                match stack.last_mut() {
                    None if self.one => return Ok(vec![d]),
                    None => {
                        labels.clear();
                        out.push(d)
                    }
                    Some(Frame::Vector { items, .. }) => items.push(d),
                    Some(Frame::Label { .. }) => {
                        if let Some(Frame::Label { n, span }) = stack.pop() {
                            let v = d.to_value();
                            if let Some(LabelState::Open(ph)) = labels.remove(&n) {
                                if crate::value::eq(&v, &ph) {
                                    return Err(self.err(span, format!("#{n}= refers to itself")));
                                }
                                if !patch_label(&v, &ph) {
                                    return Err(self.err(
                                        span,
                                        format!("#{n}# cannot be a key or value of a map inside #{n}= (maps are immutable)"),
                                    ));
                                }
                            }
                            labels.insert(n, LabelState::Done(v.clone()));
                            datum = Some(Syntax::atom(v, span));
                        }
                    }
                    Some(Frame::List { items, dot, .. }) => match dot {
                        Dot::No => items.push(d),
                        Dot::ExpectTail => *dot = Dot::Tail(Box::new(d)),
                        Dot::Tail(_) => {
                            return Err(self.err(d.span, "only one datum may follow . in a list"));
                        }
                    },
                    Some(Frame::Map { items, .. }) => items.push(d),
                    Some(Frame::Prefix { .. }) => {
                        if let Some(Frame::Prefix { sym, span }) = stack.pop() {
                            let head = Syntax::atom(Value::symbol(sym), span.clone());
                            datum = Some(Syntax {
                                kind: SyntaxKind::List(vec![head, d], None),
                                span,
                            });
                        }
                    }
                    Some(Frame::Skip { .. }) => {
                        stack.pop();
                    }
                }
            }
        }
    }

    /// The characters up to the next delimiter, as a slice of the source.
    fn read_token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if is_delimiter(c) {
                break;
            }
            self.bump();
        }
        self.src.get(start..self.pos).unwrap_or_default()
    }

    fn read_string(&mut self) -> LispResult<Syntax> {
        let span = self.span();
        self.bump();
        let mut s = String::new();
        loop {
            let esc_span = self.span();
            match self.bump() {
                None => return Err(self.err(span, "unterminated string")),
                Some('"') => break,
                Some('\\') => match self.bump() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some('0') => s.push('\0'),
                    Some('\\') => s.push('\\'),
                    Some('"') => s.push('"'),
                    Some('u') => {
                        if self.bump() != Some('{') {
                            return Err(self.err(esc_span, "bad \\u escape: expected \\u{HEX}"));
                        }
                        let mut hex = String::new();
                        loop {
                            match self.bump() {
                                Some('}') => break,
                                Some(c) if c.is_ascii_hexdigit() && hex.len() < 6 => hex.push(c),
                                _ => {
                                    return Err(
                                        self.err(esc_span, "bad \\u escape: expected \\u{HEX}")
                                    )
                                }
                            }
                        }
                        let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                        match ch {
                            Some(ch) => s.push(ch),
                            None => {
                                return Err(self.err(
                                    esc_span,
                                    format!("bad \\u escape: \\u{{{hex}}} is not a character"),
                                ))
                            }
                        }
                    }
                    None => return Err(self.err(span, "unterminated string")),
                    Some(c) => {
                        return Err(self.err(esc_span, format!("unknown escape \\{c} in string")))
                    }
                },
                Some(c) => s.push(c),
            }
        }
        check_atom_len(s.len(), &span)?;
        Ok(Syntax::atom(Value::string(s), span))
    }

    /// Reads a character literal: `#\a`, `#\(` (any one character, even a delimiter), a name
    /// from [`CHAR_NAMES`] (`#\space`) or `#\xHEX`.
    fn read_char(&mut self) -> LispResult<Syntax> {
        let span = self.span();
        self.bump();
        self.bump();
        let Some(first) = self.bump() else {
            return Err(self.err(span, "#\\ needs a character (end of input)"));
        };
        let mut tok = String::from(first);
        tok.push_str(self.read_token());
        let mut chars = tok.chars();
        let c = match (chars.next(), chars.next()) {
            (Some(c), None) => c,
            _ => match CHAR_NAMES.iter().find(|(name, _)| *name == tok) {
                Some((_, c)) => *c,
                None => tok
                    .strip_prefix('x')
                    .filter(|hex| hex.len() <= 6 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.err(span.clone(), format!("unknown character #\\{tok}")))?,
            },
        };
        Ok(Syntax::atom(Value::Char(c), span))
    }

    fn parse_atom(&self, tok: &str, span: &Span) -> LispResult<Value> {
        match tok {
            "#t" | "true" => return Ok(Value::Bool(true)),
            "#f" | "false" => return Ok(Value::Bool(false)),
            "nil" => return Ok(Value::Nil),
            "+inf.0" => return Ok(Value::Float(f64::INFINITY)),
            "-inf.0" => return Ok(Value::Float(f64::NEG_INFINITY)),
            "+nan.0" => return Ok(Value::Float(f64::NAN)),
            _ => {}
        }
        match classify_number(tok) {
            Some(true) => {
                return tok.parse::<i64>().map(Value::Int).map_err(|_| {
                    self.err(span.clone(), format!("integer literal out of range: {tok}"))
                });
            }
            Some(false) => {
                return tok
                    .parse::<f64>()
                    .map(Value::Float)
                    .map_err(|_| self.err(span.clone(), format!("bad float literal: {tok}")));
            }
            None => {}
        }
        if let Some(name) = tok.strip_prefix(':') {
            if name.is_empty() || name.starts_with(':') {
                return Err(self.err(span.clone(), format!("bad keyword: {tok}")));
            }
            return Ok(Value::keyword(name));
        }
        if let Some(v) = radix_integer(tok) {
            return v
                .map(Value::Int)
                .ok_or_else(|| self.err(span.clone(), format!("bad integer literal: {tok}")));
        }
        if tok.starts_with('#') {
            return Err(self.err(span.clone(), format!("unknown syntax {tok}")));
        }
        Ok(Value::symbol(tok))
    }
}

/// An R7RS radix-prefixed integer (`#x1F`, `#b-101`, `#o17`, `#d10`): `None` when `tok` has no
/// such prefix, `Some(None)` when the digits are bad or do not fit an `i64`.
fn radix_integer(tok: &str) -> Option<Option<i64>> {
    let mut chars = tok.chars();
    if chars.next() != Some('#') {
        return None;
    }
    let radix = match chars.next()?.to_ascii_lowercase() {
        'x' => 16,
        'b' => 2,
        'o' => 8,
        'd' => 10,
        _ => return None,
    };
    let digits = chars.as_str();
    let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
    if unsigned.is_empty() || !unsigned.chars().all(|c| c.is_digit(radix)) {
        return Some(None);
    }
    Some(i64::from_str_radix(digits, radix).ok())
}

/// `Some(true)` for an integer literal, `Some(false)` for a float literal, `None` otherwise.
fn classify_number(tok: &str) -> Option<bool> {
    let b = tok.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    let mut is_float = false;
    if i < b.len() && b[i] == b'.' {
        is_float = true;
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - s;
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        is_float = true;
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    Some(!is_float)
}
