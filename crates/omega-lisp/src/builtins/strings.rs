//! Strings: `str string-append substring string-length string-upcase string-downcase
//! string-split string-join string-contains? string-replace string-contains string-prefix?
//! string-suffix? (SRFI-13) string-trim number->string
//! string->number symbol->string string->symbol keyword->string format`, and the R7RS
//! character-level procedures of SPEC §6.9: `string-ref string=? string<? string>? string<=?
//! string>=?` (and `-ci`), `string->list list->string make-string string string-copy`.
//! (`string-map string-for-each string-index` call procedures, so they are in
//! `scheme_prelude.lisp`.)
//!
//! # Representation and indexing cost
//!
//! A string is immutable UTF-8 (`Rc<String>`); indices are **character** (Unicode scalar value)
//! indices, never bytes, everywhere (`string-length`, `string-ref`, `substring`,
//! `string-copy`, `string->list`). Finding character `k` means walking UTF-8 from a known
//! position, so one `string-ref` is O(k) in the worst case. To keep the usual loops (`(string-ref
//! s i)` for `i` going up or down, over one string or comparing a few) linear rather than
//! quadratic, `string-ref` keeps cursors per thread ([`char_at`]) on the last four strings it
//! indexed: the string (held weakly, so a cursor never keeps a string alive and a freed
//! string's address cannot be mistaken for a live one), the last character index and its byte
//! offset, and whether that string is all ASCII (then every index is O(1)). Otherwise an index
//! costs the characters walked from the cursor (forwards or backwards) or from the start,
//! whichever is nearer; the first index into a string also checks it for ASCII once (O(bytes)).
//! `string-length` shares the cursors: O(1) for an all-ASCII string, otherwise the count of
//! characters is made once and kept with the string's cursor ([`char_len`]), so `(< i
//! (string-length s))` as a loop's test does not make the loop quadratic.
//!
//! # Invariants
//!
//! 1. Every string a builtin here returns was checked against `max_string_len` (bytes) before it
//!    was built; `make-string` checks `k × bytes-per-char` before allocating anything.
//! 2. Index errors name the index and the string's length in characters.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::rc::{Rc, Weak};

use crate::builtins::chars::{char_arg, foldcase};
use crate::builtins::{def, index_arg, int_arg, list_arg, str_arg};
use crate::error::{ErrorKind, LispError, LispResult};
use crate::printer::{display_bounded, write_bounded};
use crate::reader;
use crate::state::State;
use crate::value::Value;

fn s(st: &State, x: String) -> LispResult<Value> {
    st.make_string(x)
}

fn str_(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let mut out = String::new();
    for v in a {
        out.push_str(&display_bounded(st, v)?);
        st.check_str_len(out.len())?;
    }
    s(st, out)
}

fn string_append(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let mut out = String::new();
    for v in a {
        out.push_str(str_arg("string-append", v)?);
        st.check_str_len(out.len())?;
    }
    s(st, out)
}

fn substring(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = str_arg("substring", &a[0])?;
    let len = text.chars().count();
    let start = index_arg("substring", &a[1])?;
    let end = match a.get(2) {
        Some(v) => index_arg("substring", v)?,
        None => len,
    };
    if start > end || end > len {
        return Err(LispError::new(
            ErrorKind::Error,
            format!("substring: range {start}..{end} out of bounds for a string of length {len}"),
        ));
    }
    s(st, text.chars().skip(start).take(end - start).collect())
}

fn string_length(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let Value::Str(text) = &a[0] else {
        return Err(LispError::type_error("string-length", "a string", &a[0]));
    };
    Ok(Value::Int(
        i64::try_from(char_len(text)).unwrap_or(i64::MAX),
    ))
}

fn upcase(st: &mut State, a: &[Value]) -> LispResult<Value> {
    s(st, str_arg("string-upcase", &a[0])?.to_uppercase())
}

fn downcase(st: &mut State, a: &[Value]) -> LispResult<Value> {
    s(st, str_arg("string-downcase", &a[0])?.to_lowercase())
}

fn split(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = str_arg("string-split", &a[0])?;
    let parts: Vec<Value> = match a.get(1) {
        None => text.split_whitespace().map(Value::string).collect(),
        Some(sep) => {
            let sep = str_arg("string-split", sep)?;
            if sep.is_empty() {
                text.chars().map(|c| Value::string(c.to_string())).collect()
            } else {
                text.split(sep).map(Value::string).collect()
            }
        }
    };
    st.make_list(parts)
}

fn join(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let items = list_arg("string-join", &a[0])?;
    let sep = match a.get(1) {
        Some(v) => str_arg("string-join", v)?,
        None => "",
    };
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&display_bounded(st, item)?);
        st.check_str_len(out.len())?;
    }
    s(st, out)
}

/// Charges a scan of `bytes` bytes of text as work (`work.rs`), at the rate of building a
/// string (`State::make_string`): one element per 8 bytes.
fn charge_scan(bytes: usize) {
    crate::work::charge(bytes / 8);
}

fn contains(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = str_arg("string-contains?", &a[0])?;
    let sub = str_arg("string-contains?", &a[1])?;
    charge_scan(text.len());
    Ok(Value::Bool(text.contains(sub)))
}

/// SRFI-13 `(string-prefix? prefix s)`.
fn prefix_p(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let prefix = str_arg("string-prefix?", &a[0])?;
    let text = str_arg("string-prefix?", &a[1])?;
    Ok(Value::Bool(text.starts_with(prefix)))
}

/// SRFI-13 `(string-suffix? suffix s)`.
fn suffix_p(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let suffix = str_arg("string-suffix?", &a[0])?;
    let text = str_arg("string-suffix?", &a[1])?;
    Ok(Value::Bool(text.ends_with(suffix)))
}

/// SRFI-13 `(string-contains s pattern)`: the **character** index where `pattern` first
/// occurs in `s` (as `string-ref` counts), or `#f`.
fn contains_at(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = str_arg("string-contains", &a[0])?;
    let pattern = str_arg("string-contains", &a[1])?;
    charge_scan(text.len());
    Ok(match text.find(pattern) {
        Some(byte) => Value::Int(i64::try_from(text[..byte].chars().count()).unwrap_or(i64::MAX)),
        None => Value::Bool(false),
    })
}

fn replace(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = str_arg("string-replace", &a[0])?;
    let from = str_arg("string-replace", &a[1])?;
    let to = str_arg("string-replace", &a[2])?;
    if from.is_empty() {
        return Err(LispError::new(
            ErrorKind::Error,
            "string-replace: the pattern must not be empty",
        ));
    }
    let count = text.matches(from).count();
    st.check_str_len(text.len() + count.saturating_mul(to.len()))?;
    s(st, text.replace(from, to))
}

fn trim(st: &mut State, a: &[Value]) -> LispResult<Value> {
    s(st, str_arg("string-trim", &a[0])?.trim().to_string())
}

fn radix_arg(who: &str, a: &[Value], at: usize) -> LispResult<u32> {
    match a.get(at) {
        None => Ok(10),
        Some(v) => {
            let r = int_arg(who, v)?;
            match u32::try_from(r) {
                Ok(r @ 2..=36) => Ok(r),
                _ => Err(LispError::new(
                    ErrorKind::Error,
                    format!("{who}: radix must be an integer from 2 to 36, got {r}"),
                )),
            }
        }
    }
}

/// `i` written in `radix` (2..=36), lower-case digits, `-` for negatives.
fn int_in_radix(i: i64, radix: u32) -> String {
    let mut n = i.unsigned_abs();
    let mut digits = Vec::new();
    loop {
        let d = u32::try_from(n % u64::from(radix)).unwrap_or(0);
        digits.push(char::from_digit(d, radix).unwrap_or('?'));
        n /= u64::from(radix);
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        digits.push('-');
    }
    digits.iter().rev().collect()
}

/// `(number->string n radix)` for a radix other than 10: integers only.
fn number_in_radix(st: &State, n: &Value, radix: u32) -> LispResult<Value> {
    match n {
        Value::Int(i) => s(st, int_in_radix(*i, radix)),
        Value::Float(_) => Err(LispError::new(
            ErrorKind::Error,
            format!("number->string: a float can only be written in radix 10, not {radix}"),
        )),
        other => Err(LispError::type_error("number->string", "a number", other)),
    }
}

fn number_to_string(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let radix = radix_arg("number->string", a, 1)?;
    if radix != 10 {
        return number_in_radix(st, &a[0], radix);
    }
    match &a[0] {
        Value::Int(_) | Value::Float(_) => s(st, crate::printer::write_string(&a[0])),
        other => Err(LispError::type_error("number->string", "a number", other)),
    }
}

/// `(string->number text [radix])`: the number, or `#f` when `text` is not one (or does not
/// fit an integer). A `#x #o #b #d` prefix overrides the radix.
fn string_to_number(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let mut text = str_arg("string->number", &a[0])?.trim();
    let mut radix = radix_arg("string->number", a, 1)?;
    for (prefix, r) in [
        ("#x", 16),
        ("#X", 16),
        ("#o", 8),
        ("#O", 8),
        ("#b", 2),
        ("#B", 2),
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest;
            radix = r;
        }
    }
    if let Some(rest) = text.strip_prefix("#d").or_else(|| text.strip_prefix("#D")) {
        text = rest;
        radix = 10;
    }
    if radix != 10 {
        let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return Ok(Value::Bool(false));
        }
        return Ok(i64::from_str_radix(text, radix).map_or(Value::Bool(false), Value::Int));
    }
    if text.starts_with('#') {
        return Ok(Value::Bool(false));
    }
    match reader::read_one(text, "<string>") {
        Ok(v @ (Value::Int(_) | Value::Float(_))) => Ok(v),
        _ => Ok(Value::Bool(false)),
    }
}

fn symbol_to_string(st: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Symbol(sym) => s(st, sym.name().to_string()),
        other => Err(LispError::type_error("symbol->string", "a symbol", other)),
    }
}

fn string_to_symbol(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::symbol(str_arg("string->symbol", &a[0])?))
}

fn keyword_to_string(st: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Keyword(k) => s(st, k.name().to_string()),
        other => Err(LispError::type_error("keyword->string", "a keyword", other)),
    }
}

fn format(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let fmt = str_arg("format", &a[0])?;
    let mut args = a[1..].iter();
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(d @ ('a' | 's')) => {
                let v = args.next().ok_or_else(|| {
                    LispError::new(
                        ErrorKind::Error,
                        format!("format: not enough arguments for {fmt:?}"),
                    )
                })?;
                out.push_str(&if d == 'a' {
                    display_bounded(st, v)?
                } else {
                    write_bounded(st, v)?
                });
                st.check_str_len(out.len())?;
            }
            Some('%') => out.push('\n'),
            Some('~') => out.push('~'),
            other => {
                return Err(LispError::new(
                    ErrorKind::Error,
                    format!(
                        "format: unknown directive ~{}",
                        other.map(String::from).unwrap_or_default()
                    ),
                ))
            }
        }
        st.check_str_len(out.len())?;
    }
    if args.next().is_some() {
        return Err(LispError::new(
            ErrorKind::Error,
            format!("format: too many arguments for {fmt:?}"),
        ));
    }
    s(st, out)
}

// ---------------------------------------------------------------------------------------------
// Characters in strings (SPEC §6.9)
// ---------------------------------------------------------------------------------------------

/// A `string-ref` cursor on one string (see "Representation and indexing cost" above).
struct Cursor {
    string: Weak<String>,
    ascii: bool,
    char_index: usize,
    byte_offset: usize,
    /// The string's length in characters, once counted.
    chars: Option<usize>,
}

/// Strings up to this many bytes have their characters counted at each `string-length`
/// (cheaper than a cursor).
const SHORT_STRING: usize = 64;

/// How many strings keep a cursor at once, so a loop that compares two or three strings
/// character by character stays linear.
const CURSORS: usize = 4;

thread_local! {
    /// Most recently used first.
    static CURSOR_CACHE: RefCell<Vec<Cursor>> = const { RefCell::new(Vec::new()) };
}

/// Character `k` of `text`, or `None` past the end. Amortised O(1) for loops that walk up to
/// [`CURSORS`] strings forwards or backwards, and for any index into an all-ASCII string;
/// otherwise O(distance from the cursor or the start).
pub(crate) fn char_at(text: &Rc<String>, k: usize) -> Option<char> {
    with_cursor(text, |c| {
        if c.ascii {
            return text.as_bytes().get(k).map(|&b| char::from(b));
        }
        let back = c.char_index.checked_sub(k);
        let (off, ch) = match back {
            // Backwards from the cursor when that is nearer than the start.
            Some(d) if d > 0 && d <= k => {
                let (off, ch) = text.get(..c.byte_offset)?.char_indices().rev().nth(d - 1)?;
                (off, ch)
            }
            Some(d) if d > 0 => text.char_indices().nth(k)?,
            _ => {
                let (off, ch) = text
                    .get(c.byte_offset..)?
                    .char_indices()
                    .nth(k - c.char_index)?;
                (c.byte_offset + off, ch)
            }
        };
        c.char_index = k;
        c.byte_offset = off;
        Some(ch)
    })
}

/// The length of `text` in characters: counted directly if it is short; otherwise its byte
/// length if it is all ASCII, or counted (and the count charged as work) the first time and
/// kept with the string's cursor.
pub(crate) fn char_len(text: &Rc<String>) -> usize {
    if text.len() <= SHORT_STRING {
        return text.chars().count();
    }
    with_cursor(text, |c| {
        if c.ascii {
            return text.len();
        }
        *c.chars.get_or_insert_with(|| {
            charge_scan(text.len());
            text.chars().count()
        })
    })
}

/// Runs `f` on the cursor of `text`, made (at the front of the cache, the least recently used
/// one dropped) if the cache holds none.
fn with_cursor<R>(text: &Rc<String>, f: impl FnOnce(&mut Cursor) -> R) -> R {
    CURSOR_CACHE.with(|cell| {
        let mut cache = cell.borrow_mut();
        // A live `Weak` keeps its allocation, so no other string can have this address.
        match cache
            .iter()
            .position(|c| std::ptr::eq(c.string.as_ptr(), Rc::as_ptr(text)))
        {
            Some(0) => {}
            Some(i) => {
                let c = cache.remove(i);
                cache.insert(0, c);
            }
            None => {
                cache.truncate(CURSORS - 1);
                cache.insert(
                    0,
                    Cursor {
                        string: Rc::downgrade(text),
                        ascii: text.is_ascii(),
                        char_index: 0,
                        byte_offset: 0,
                        chars: None,
                    },
                );
            }
        }
        f(&mut cache[0])
    })
}

fn char_count(text: &str) -> usize {
    text.chars().count()
}

fn string_ref(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let Value::Str(text) = &a[0] else {
        return Err(LispError::type_error("string-ref", "a string", &a[0]));
    };
    let k = index_arg("string-ref", &a[1])?;
    char_at(text, k).map(Value::Char).ok_or_else(|| {
        LispError::new(
            ErrorKind::Error,
            format!(
                "string-ref: index {k} out of range for a string of length {}",
                char_count(text)
            ),
        )
    })
}

/// The byte range of characters `[start, end)` of `text`, from optional arguments `a[at]` and
/// `a[at + 1]` (default: the whole string); an error names the range and the length.
fn char_range(who: &str, text: &str, a: &[Value], at: usize) -> LispResult<(usize, usize)> {
    let start = a
        .get(at)
        .map(|v| index_arg(who, v))
        .transpose()?
        .unwrap_or(0);
    let end = a.get(at + 1).map(|v| index_arg(who, v)).transpose()?;
    let mut offsets = text.char_indices().map(|(i, _)| i).chain([text.len()]);
    let byte_start = offsets.nth(start);
    let byte_end = match end {
        None => Some(text.len()),
        Some(e) if e >= start => {
            if e == start {
                byte_start
            } else {
                offsets.nth(e - start - 1)
            }
        }
        Some(_) => None,
    };
    match (byte_start, byte_end) {
        (Some(s), Some(e)) => Ok((s, e)),
        _ => Err(LispError::new(
            ErrorKind::Error,
            format!(
                "{who}: range {start}..{} out of bounds for a string of length {}",
                end.map_or_else(|| "end".to_string(), |e| e.to_string()),
                char_count(text)
            ),
        )),
    }
}

fn string_to_list(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = str_arg("string->list", &a[0])?;
    let (from, to) = char_range("string->list", text, a, 1)?;
    let chars: Vec<Value> = text[from..to].chars().map(Value::Char).collect();
    st.make_list(chars)
}

fn list_to_string(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let mut out = String::new();
    let mut cur = a[0].clone();
    loop {
        match &cur {
            Value::Nil => break,
            Value::Pair(p) => {
                match p.car() {
                    Value::Char(c) => out.push(c),
                    other => {
                        return Err(LispError::type_error(
                            "list->string",
                            "a list of chars",
                            &other,
                        ))
                    }
                }
                st.check_str_len(out.len())?;
                let next = p.cdr();
                cur = next;
            }
            _ => return Err(LispError::type_error("list->string", "a list", &a[0])),
        }
    }
    s(st, out)
}

fn make_string(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let k = index_arg("make-string", &a[0])?;
    let fill = match a.get(1) {
        Some(v) => char_arg("make-string", v)?,
        None => ' ',
    };
    // Invariant 1: check before allocating.
    st.check_str_len(k.saturating_mul(fill.len_utf8()))?;
    s(st, std::iter::repeat_n(fill, k).collect())
}

fn string_of_chars(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let mut out = String::new();
    for v in a {
        out.push(char_arg("string", v)?);
    }
    s(st, out)
}

fn string_copy(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = str_arg("string-copy", &a[0])?;
    let (from, to) = char_range("string-copy", text, a, 1)?;
    s(st, text[from..to].to_string())
}

/// `(string<? a b c …)`: true when `holds` for every adjacent pair; strings compare by code
/// point (which is UTF-8 byte order), the `-ci` forms after folding every character. Every
/// argument is checked to be a string first; the texts are compared in place, without
/// copies, and the bytes compared are charged as work.
fn compare_chain(
    who: &str,
    a: &[Value],
    fold: bool,
    holds: fn(Ordering) -> bool,
) -> LispResult<Value> {
    let texts = a
        .iter()
        .map(|v| str_arg(who, v))
        .collect::<LispResult<Vec<&str>>>()?;
    Ok(Value::Bool(texts.windows(2).all(|w| {
        charge_scan(w[0].len().min(w[1].len()));
        let order = if fold {
            w[0].chars().map(foldcase).cmp(w[1].chars().map(foldcase))
        } else {
            w[0].cmp(w[1])
        };
        holds(order)
    })))
}

macro_rules! string_comparisons {
    ($($f:ident $name:literal $fold:literal $($ord:ident)|+;)*) => {
        $(fn $f(_: &mut State, a: &[Value]) -> LispResult<Value> {
            compare_chain($name, a, $fold, |o| matches!(o, $(Ordering::$ord)|+))
        })*
        fn install_comparisons(st: &mut State) {
            $(def(st, $name, 1, None, $f);)*
        }
    };
}

string_comparisons! {
    string_eq "string=?" false Equal;
    string_lt "string<?" false Less;
    string_gt "string>?" false Greater;
    string_le "string<=?" false Less | Equal;
    string_ge "string>=?" false Greater | Equal;
    string_ci_eq "string-ci=?" true Equal;
    string_ci_lt "string-ci<?" true Less;
    string_ci_gt "string-ci>?" true Greater;
    string_ci_le "string-ci<=?" true Less | Equal;
    string_ci_ge "string-ci>=?" true Greater | Equal;
}

pub(crate) fn install(st: &mut State) {
    def(st, "string-ref", 2, Some(2), string_ref);
    def(st, "string->list", 1, Some(3), string_to_list);
    def(st, "list->string", 1, Some(1), list_to_string);
    def(st, "make-string", 1, Some(2), make_string);
    def(st, "string", 0, None, string_of_chars);
    def(st, "string-copy", 1, Some(3), string_copy);
    install_comparisons(st);
    def(st, "str", 0, None, str_);
    def(st, "string-append", 0, None, string_append);
    def(st, "substring", 2, Some(3), substring);
    def(st, "string-length", 1, Some(1), string_length);
    def(st, "string-upcase", 1, Some(1), upcase);
    def(st, "string-downcase", 1, Some(1), downcase);
    def(st, "string-split", 1, Some(2), split);
    def(st, "string-join", 1, Some(2), join);
    def(st, "string-contains?", 2, Some(2), contains);
    def(st, "string-contains", 2, Some(2), contains_at);
    def(st, "string-prefix?", 2, Some(2), prefix_p);
    def(st, "string-suffix?", 2, Some(2), suffix_p);
    def(st, "string-replace", 3, Some(3), replace);
    def(st, "string-trim", 1, Some(1), trim);
    def(st, "number->string", 1, Some(2), number_to_string);
    def(st, "string->number", 1, Some(2), string_to_number);
    def(st, "symbol->string", 1, Some(1), symbol_to_string);
    def(st, "string->symbol", 1, Some(1), string_to_symbol);
    def(st, "keyword->string", 1, Some(1), keyword_to_string);
    def(st, "format", 1, None, format);
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::{char_at, char_len};
    use crate::Value;

    fn nth(s: &str, k: usize) -> Option<char> {
        s.chars().nth(k)
    }

    #[test]
    fn char_at_agrees_with_chars_across_more_strings_than_cursors() {
        let strings: Vec<Rc<String>> = (0..6)
            .map(|i| Rc::new(format!("{}é{}😀x", "a".repeat(i), "λ".repeat(7 * i))))
            .chain([Rc::new("plain ascii".to_string())])
            .collect();
        // Interleave strings and jump forwards, backwards and past the end.
        for round in 0..40usize {
            for (i, s) in strings.iter().enumerate() {
                let k = (round * 7 + i * 3) % (s.chars().count() + 2);
                assert_eq!(char_at(s, k), nth(s, k), "string {i} index {k}");
                let back = k / 2;
                assert_eq!(char_at(s, back), nth(s, back), "string {i} index {back}");
            }
        }
    }

    #[test]
    fn char_len_agrees_with_chars_on_short_long_ascii_and_wide_strings() {
        let strings: Vec<Rc<String>> = [
            String::new(),
            "é".to_string(),
            "a".repeat(64),
            "a".repeat(65),
            format!("{}é", "a".repeat(100)),
            "😀λ".repeat(500),
        ]
        .into_iter()
        .map(Rc::new)
        .collect();
        for _ in 0..3 {
            for s in &strings {
                assert_eq!(char_len(s), s.chars().count(), "{:?}", &s[..s.len().min(8)]);
                // Indexing moves the cursor; the count it keeps stays right.
                let last = s.chars().count().saturating_sub(1);
                assert_eq!(char_at(s, last), s.chars().last());
                assert_eq!(char_len(s), s.chars().count());
            }
        }
    }

    #[test]
    fn a_loop_bounded_by_the_length_of_a_wide_string_stays_linear() {
        // 100,000 characters of 2 bytes: counting them is 200 KB of work (1,562 steps) each
        // time; a loop that counted at each of its 100,000 tests would need ~156M steps.
        let rt = crate::limits::step_limited(1_000_000);
        let src = "(define s (make-string 100000 #\\é))
                   (let loop ((i 0)) (if (< i (string-length s)) (loop (+ i 1)) i))";
        assert_eq!(rt.eval_sync(src, "t").expect("linear"), Value::Int(100_000));
    }

    #[test]
    fn a_string_made_after_a_freed_one_is_indexed_afresh() {
        let a = Rc::new("ééééé".to_string());
        assert_eq!(char_at(&a, 4), Some('é'));
        drop(a);
        // Same length in bytes, different characters: a stale cursor would misplace index 4.
        let b = Rc::new("aaaaéaaaaa".to_string());
        assert_eq!(char_at(&b, 4), Some('é'));
        assert_eq!(char_at(&b, 9), Some('a'));
        assert_eq!(char_at(&b, 10), None);
    }
}
