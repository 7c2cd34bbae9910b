//! The printers: `write` form (readable: strings quoted, floats always with `.` or exponent) and
//! `display` form (strings raw).
//!
//! # Implementation details
//!
//! Printing is iterative (an explicit work stack), so deeply nested data prints without native
//! recursion. A byte budget either cuts the text with `...` (error messages: long strings and
//! symbols are cut too) or, for the builtins that build strings (`str`, `write`, `display`,
//! `format`…), fails with the `max_string_len` `:limit` error as soon as the output passes
//! it, so printing a shared structure whose printed form is exponentially long stops early.
//!
//! # Cycles: datum labels
//!
//! Pairs and vectors are mutable, so data can be cyclic. Before printing, a depth-first walk
//! ([`find_labels`]) finds the objects that need a datum label: for `write`/`display` (R7RS
//! `write`) those a cycle comes back to, so `(let ((x (list 1 2))) (set-cdr! (cdr x) x) x)`
//! prints `#0=(1 2 . #0#)` and acyclic sharing is printed in full; for `write-shared` every
//! object met twice. The walk only remembers objects with more than one reference (one
//! referenced once cannot be met twice), so a fresh list costs one pass and no hashing. When
//! printing is cut to a small budget (error messages) the walk is bounded too; what it did not
//! reach prints unfolded until the budget cuts it, which still terminates.

use std::collections::HashMap;
use std::rc::Rc;

use crate::error::{LispError, LispResult};
use crate::state::State;
use crate::value::Value;

/// What to do when the output passes its budget.
#[derive(Clone, Copy, PartialEq)]
enum Over {
    /// Cut with `...` (error messages).
    Truncate,
    /// Stop with an error (string-building builtins).
    Fail,
}

enum Task {
    Val(Value),
    Text(&'static str),
}

/// Which objects get datum labels.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sharing {
    /// Only objects a cycle comes back to (R7RS `write`, `display`).
    Cycles,
    /// Every object met more than once (R7RS `write-shared`).
    All,
}

/// The heap identity of an object the printer descends into (pairs, vectors, maps, cells) and
/// its strong count.
fn node(v: &Value) -> Option<(usize, usize)> {
    fn id<T: ?Sized>(rc: &Rc<T>) -> (usize, usize) {
        (crate::value::addr(rc), Rc::strong_count(rc))
    }
    match v {
        Value::Pair(r) => Some(id(r)),
        Value::Vector(r) => Some(id(r)),
        Value::Map(r) => Some(id(r)),
        Value::Cell(r) => Some(id(r)),
        _ => None,
    }
}

/// Pushes (clones of) the values the printer would print inside `v`.
fn push_children(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Pair(p) => {
            out.push(p.car());
            out.push(p.cdr());
        }
        Value::Vector(items) => out.extend(items.to_vec()),
        Value::Map(m) => {
            for (k, x) in m.iter() {
                out.push(k.0.clone());
                out.push(x.clone());
            }
        }
        Value::Cell(c) => {
            if let Ok(x) = c.try_borrow() {
                out.push(x.clone());
            }
        }
        _ => {}
    }
}

/// The objects of `v` that need a datum label (by address), found by an iterative depth-first
/// walk over at most `budget` objects. Every value the walk looks at is a clone it holds, so an
/// object whose strong count is at most 2 (its one referrer and that clone) cannot be met again
/// and is not remembered.
pub(crate) fn find_labels(v: &Value, sharing: Sharing, budget: usize) -> HashMap<usize, usize> {
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut labels: HashMap<usize, usize> = HashMap::new();
    if node(v).is_none() {
        return labels;
    }
    let mut state: HashMap<usize, u8> = HashMap::new();
    enum Walk {
        Enter(Value),
        Exit(usize),
    }
    let mut work = vec![Walk::Enter(v.clone())];
    let mut children = Vec::new();
    let mut visited = 0usize;
    while let Some(w) = work.pop() {
        let v = match w {
            Walk::Exit(id) => {
                state.insert(id, DONE);
                continue;
            }
            Walk::Enter(v) => v,
        };
        let Some((id, count)) = node(&v) else {
            continue;
        };
        visited += 1;
        if visited > budget {
            break;
        }
        if count > 2 {
            match state.get(&id) {
                Some(&ON_PATH) => {
                    labels.insert(id, usize::MAX);
                    continue;
                }
                Some(_) => {
                    if sharing == Sharing::All {
                        labels.insert(id, usize::MAX);
                    }
                    continue;
                }
                None => {
                    state.insert(id, ON_PATH);
                    work.push(Walk::Exit(id));
                }
            }
        }
        push_children(&v, &mut children);
        // Reverse, so the walk meets children in printing order (labels number left to right
        // for `write-shared` only by first print, which the printer assigns anyway).
        work.extend(children.drain(..).rev().map(Walk::Enter));
    }
    // The walk, charged as work done by a native (`work.rs`).
    crate::work::charge(visited);
    labels
}

/// The `write` form of `v` (`"a\nb"` with quotes and escapes).
pub fn write_string(v: &Value) -> String {
    print(v, true, usize::MAX, Over::Truncate).unwrap_or_default()
}

/// The `display` form of `v` (strings without quotes).
pub fn display_string(v: &Value) -> String {
    print(v, false, usize::MAX, Over::Truncate).unwrap_or_default()
}

/// The `write` form, cut after about `limit` bytes with `...` (also inside long strings and
/// symbols).
pub fn write_string_limited(v: &Value, limit: usize) -> String {
    print(v, true, limit, Over::Truncate).unwrap_or_default()
}

/// The `write` form for a builtin: fails with `:limit` past `max_string_len`.
pub(crate) fn write_bounded(st: &State, v: &Value) -> LispResult<String> {
    print(v, true, st.limits.max_string_len, Over::Fail)
}

/// The `display` form for a builtin: fails with `:limit` past `max_string_len`.
pub(crate) fn display_bounded(st: &State, v: &Value) -> LispResult<String> {
    print(v, false, st.limits.max_string_len, Over::Fail)
}

/// Appends at most `room` bytes of `s` (cut at a character boundary, then `...`).
fn push_cut(out: &mut String, s: &str, room: usize) {
    if s.len() <= room {
        out.push_str(s);
    } else {
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str(&s[..end]);
        out.push_str("...");
    }
}

/// Formats a float in shortest round-trip form, always with a `.` or an exponent.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "+nan.0".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "+inf.0" } else { "-inf.0" }.to_string()
    } else {
        // `Debug` for f64 is shortest round-trip and keeps a `.0` or uses an exponent.
        format!("{f:?}")
    }
}

/// The R7RS character names (`#\space`…), shared by the reader and the printer. The printer uses
/// the first name listed for a character.
pub(crate) const CHAR_NAMES: &[(&str, char)] = &[
    ("alarm", '\u{7}'),
    ("backspace", '\u{8}'),
    ("delete", '\u{7f}'),
    ("escape", '\u{1b}'),
    ("newline", '\n'),
    ("null", '\0'),
    ("nul", '\0'),
    ("return", '\r'),
    ("space", ' '),
    ("tab", '\t'),
];

/// Appends the `write` form of a character: `#\a`, a name (`#\space`, `#\newline`), or
/// `#\xHEX` for other control and whitespace characters, so the reader reads it back.
pub(crate) fn write_char_literal(out: &mut String, c: char) {
    out.push_str("#\\");
    if let Some((name, _)) = CHAR_NAMES.iter().find(|(_, ch)| *ch == c) {
        out.push_str(name);
    } else if c.is_control() || c.is_whitespace() {
        out.push_str(&format!("x{:x}", c as u32));
    } else {
        out.push(c);
    }
}

/// Appends the `write` form of a string (quoted, escaped).
pub fn write_escaped_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Objects the label walk visits at most when the output is cut to a finite budget.
const TRUNCATED_WALK_BUDGET: usize = 1 << 16;

fn print(v: &Value, write: bool, limit: usize, over: Over) -> LispResult<String> {
    print_shared(v, write, limit, over, Sharing::Cycles)
}

/// `write-shared`'s text: every object met twice is labelled; fails with `:limit` past
/// `max_string_len`.
pub(crate) fn write_shared_bounded(st: &State, v: &Value) -> LispResult<String> {
    print_shared(v, true, st.limits.max_string_len, Over::Fail, Sharing::All)
}

fn print_shared(
    v: &Value,
    write: bool,
    limit: usize,
    over: Over,
    sharing: Sharing,
) -> LispResult<String> {
    let budget = if over == Over::Truncate && limit != usize::MAX {
        TRUNCATED_WALK_BUDGET
    } else {
        usize::MAX
    };
    let mut labels = find_labels(v, sharing, budget);
    let mut next_label = 0usize;
    let mut out = String::new();
    let mut work = vec![Task::Val(v.clone())];
    while let Some(task) = work.pop() {
        if out.len() > limit {
            if over == Over::Fail {
                return Err(LispError::limit("max_string_len", limit));
            }
            out.push_str("...");
            break;
        }
        // Room left before the budget; long atoms are cut to it when truncating.
        let room = match over {
            Over::Truncate => limit - out.len(),
            Over::Fail => usize::MAX,
        };
        let v = match task {
            Task::Text(t) => {
                out.push_str(t);
                continue;
            }
            Task::Val(v) => v,
        };
        if !labels.is_empty() {
            if let Some(label) = node(&v).and_then(|(id, _)| labels.get_mut(&id)) {
                if *label == usize::MAX {
                    *label = next_label;
                    next_label += 1;
                    out.push_str(&format!("#{}=", *label));
                } else {
                    out.push_str(&format!("#{}#", *label));
                    continue;
                }
            }
        }
        match &v {
            Value::Nil => out.push_str("nil"),
            Value::Bool(true) => out.push_str("#t"),
            Value::Bool(false) => out.push_str("#f"),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&format_float(*f)),
            Value::Symbol(s) => push_cut(&mut out, &s.name(), room),
            Value::Keyword(s) => {
                out.push(':');
                push_cut(&mut out, &s.name(), room);
            }
            Value::Str(s) => {
                if s.len() > room {
                    let mut end = room;
                    while !s.is_char_boundary(end) {
                        end -= 1;
                    }
                    if write {
                        write_escaped_str(&mut out, &s[..end]);
                        out.pop();
                        out.push_str("...\"");
                    } else {
                        out.push_str(&s[..end]);
                        out.push_str("...");
                    }
                } else if write {
                    write_escaped_str(&mut out, s);
                } else {
                    out.push_str(s);
                }
            }
            Value::Pair(_) => {
                out.push('(');
                let mut items = Vec::new();
                let mut cur = v.clone();
                let mut dotted = false;
                let mut head = true;
                loop {
                    match cur {
                        // A labelled pair down the spine prints as a dotted tail (`. #0#`).
                        Value::Pair(p)
                            if head
                                || labels.is_empty()
                                || !labels.contains_key(&(Rc::as_ptr(&p) as usize)) =>
                        {
                            head = false;
                            items.push(p.car());
                            cur = p.cdr();
                        }
                        Value::Nil => break,
                        tail => {
                            work.push(Task::Text(")"));
                            work.push(Task::Val(tail));
                            work.push(Task::Text(" . "));
                            dotted = true;
                            break;
                        }
                    }
                    if items.len() > limit {
                        break;
                    }
                }
                if !dotted {
                    work.push(Task::Text(")"));
                }
                for (i, item) in items.into_iter().enumerate().rev() {
                    work.push(Task::Val(item));
                    if i > 0 {
                        work.push(Task::Text(" "));
                    }
                }
            }
            Value::Vector(vector) => {
                out.push_str("#(");
                work.push(Task::Text(")"));
                let items = vector.to_vec();
                let n = items.len();
                // Cut long vectors as long lists are: the budget stops the output anyway.
                for (i, item) in items
                    .into_iter()
                    .enumerate()
                    .take(limit.saturating_add(1))
                    .rev()
                {
                    work.push(Task::Val(item));
                    if i > 0 && i < n {
                        work.push(Task::Text(" "));
                    }
                }
            }
            Value::Map(m) => {
                out.push('{');
                work.push(Task::Text("}"));
                let n = m.len();
                for (i, (k, val)) in m.iter().enumerate().rev() {
                    work.push(Task::Val(val.clone()));
                    work.push(Task::Text(" "));
                    work.push(Task::Val(k.0.clone()));
                    if i > 0 && i < n {
                        work.push(Task::Text(" "));
                    }
                }
            }
            Value::Char(c) => {
                if write {
                    write_char_literal(&mut out, *c);
                } else {
                    out.push(*c);
                }
            }
            Value::Closure(c) => out.push_str(&format!("#<procedure {}>", c.name())),
            Value::Native(n) => out.push_str(&format!("#<procedure {}>", n.name())),
            Value::Error(e) => {
                out.push_str(&format!("#<error {} ", e.kind));
                let mut end = e.message.len().min(room);
                while !e.message.is_char_boundary(end) {
                    end -= 1;
                }
                write_escaped_str(&mut out, &e.message[..end]);
                if end < e.message.len() {
                    out.insert_str(out.len() - 1, "...");
                }
                out.push('>');
            }
            Value::Foreign(f) => out.push_str(&format!("#<{}>", f.type_name())),
            Value::Task(_) => out.push_str("#<task>"),
            Value::Cell(c) => {
                out.push_str("#<cell ");
                work.push(Task::Text(">"));
                work.push(Task::Val(c.borrow().clone()));
            }
        }
    }
    // The text written, charged as work (`work.rs`), one element per 8 bytes.
    crate::work::charge(out.len() / 8);
    Ok(out)
}
