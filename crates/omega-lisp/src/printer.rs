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

fn print(v: &Value, write: bool, limit: usize, over: Over) -> LispResult<String> {
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
                loop {
                    match cur {
                        Value::Pair(p) => {
                            items.push(p.car.clone());
                            cur = p.cdr.clone();
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
            Value::Cell(c) => {
                out.push_str("#<cell ");
                work.push(Task::Text(">"));
                work.push(Task::Val(c.borrow().clone()));
            }
        }
    }
    Ok(out)
}
