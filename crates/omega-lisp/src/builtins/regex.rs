//! Regular expressions (SPEC §6.9): `regex-match regex-find-all regex-replace regex-split`, on
//! the `regex` crate, whose matching is linear in the pattern and the text (no backtracking), so
//! neither a hostile pattern nor a hostile reply can hang a host.
//!
//! A pattern is a plain string in the `regex` crate's syntax (Perl-like; no look-around, no
//! back-references). Compiled patterns are cached per thread (one runtime runs on one thread),
//! at most [`CACHE_SIZE`] of them; the cache is cleared when full.
//!
//! # Results
//!
//! * `(regex-match pat s)` searches `s` for the first match (anywhere: anchor with `^…$` for a
//!   whole-string match) and returns `#f` if there is none, otherwise the **match list**: the
//!   whole match followed by each capture group in order, `#f` for a group that did not take
//!   part. If the pattern has named groups (`(?<name>…)`) the result is instead a **map** from
//!   `:match` (the whole match) and each group's name as a keyword to its text (or `#f`).
//! * `(regex-find-all pat s)` returns every non-overlapping match, left to right: a list of
//!   strings when the pattern has no groups, else a list of match lists (or maps, as above).
//! * `(regex-replace pat s replacement)` replaces every match; `$1`, `${1}`, `${name}` in the
//!   replacement stand for groups (`$$` for a dollar sign).
//! * `(regex-split pat s)` returns the pieces between matches.
//!
//! # Invariants
//!
//! 1. A pattern compiles with a size limit of [`SIZE_LIMIT`] bytes for the compiled program and
//!    for the lazy DFA's cache; a pattern over it (e.g. `a{1000}{1000}`) is a catchable
//!    `:error` naming the limit, never an abort or a huge allocation. Its text counts against
//!    `max_string_len` like any string.
//! 2. Every string and list returned was checked against `max_string_len` / `max_list_len`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use ::regex::{Captures, Regex, RegexBuilder};

use crate::builtins::{def, str_arg};
use crate::error::{ErrorKind, LispError, LispResult};
use crate::state::State;
use crate::value::Value;

/// Most compiled patterns kept per thread.
pub(crate) const CACHE_SIZE: usize = 64;

/// Byte budget of one compiled pattern (program and lazy-DFA cache each).
pub(crate) const SIZE_LIMIT: usize = 1 << 20;

thread_local! {
    static CACHE: RefCell<HashMap<String, Rc<Regex>>> = RefCell::new(HashMap::new());
}

/// The compiled form of `pat`, from the cache or freshly built (Invariant 1).
fn compile(st: &State, who: &str, pat: &str) -> LispResult<Rc<Regex>> {
    if let Some(re) = CACHE.with(|c| c.borrow().get(pat).cloned()) {
        return Ok(re);
    }
    st.check_str_len(pat.len())?;
    let re = RegexBuilder::new(pat)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            ::regex::Error::CompiledTooBig(limit) => LispError::new(
                ErrorKind::Error,
                format!("{who}: pattern too large when compiled (limit {limit} bytes)"),
            ),
            other => LispError::new(
                ErrorKind::Error,
                format!(
                    "{who}: bad pattern: {}",
                    syntax_error_text(pat, &other.to_string())
                ),
            ),
        })
        .map_err(|e| e.with_irritants(vec![Value::string(pat)]))?;
    let re = Rc::new(re);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_SIZE {
            c.clear();
        }
        c.insert(pat.to_string(), Rc::clone(&re));
    });
    Ok(re)
}

/// Longest pattern whose syntax error is shown with the pattern and a caret under the fault.
const SHOWN_PATTERN_CHARS: usize = 80;

/// The regex crate's syntax error for `pat`. It repeats the whole pattern (twice for some
/// errors) with a caret line; for a long pattern that is kilobytes of message, so only its
/// `error: …` lines are kept (the pattern itself is the error's irritant, which prints
/// truncated).
fn syntax_error_text(pat: &str, text: &str) -> String {
    if pat.chars().count() <= SHOWN_PATTERN_CHARS {
        return text.to_string();
    }
    let reasons: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("error:"))
        .map(|l| l.trim_start_matches("error:").trim())
        .collect();
    if reasons.is_empty() {
        "regex parse error".to_string()
    } else {
        format!("regex parse error: {}", reasons.join("; "))
    }
}

fn args<'a>(st: &State, who: &str, a: &'a [Value]) -> LispResult<(Rc<Regex>, &'a str)> {
    let re = compile(st, who, str_arg(who, &a[0])?)?;
    let text = str_arg(who, &a[1])?;
    // A scan of the text (and what is built from its matches), charged as work (`work.rs`).
    crate::work::charge(text.len());
    Ok((re, text))
}

fn has_names(re: &Regex) -> bool {
    re.capture_names().flatten().next().is_some()
}

/// One match as a match list or, with named groups, a map (module docs).
fn captures_value(st: &State, re: &Regex, caps: &Captures<'_>) -> LispResult<Value> {
    let text = |i: usize| {
        caps.get(i)
            .map_or(Value::Bool(false), |m| Value::string(m.as_str()))
    };
    if has_names(re) {
        let mut entries = vec![(Value::keyword("match"), text(0))];
        for (i, name) in re.capture_names().enumerate() {
            if let Some(name) = name {
                entries.push((Value::keyword(name), text(i)));
            }
        }
        Ok(Value::map(entries))
    } else {
        st.make_list((0..caps.len()).map(text).collect())
    }
}

fn regex_match(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let (re, s) = args(st, "regex-match", a)?;
    match re.captures(s) {
        None => Ok(Value::Bool(false)),
        Some(caps) => captures_value(st, &re, &caps),
    }
}

fn regex_find_all(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let (re, s) = args(st, "regex-find-all", a)?;
    let mut out = Vec::new();
    if re.captures_len() == 1 {
        for m in re.find_iter(s) {
            out.push(Value::string(m.as_str()));
            st.check_list_len(out.len())?;
        }
    } else {
        for caps in re.captures_iter(s) {
            out.push(captures_value(st, &re, &caps)?);
            st.check_list_len(out.len())?;
        }
    }
    Ok(Value::list(out))
}

fn regex_replace(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let (re, s) = args(st, "regex-replace", a)?;
    let rep = str_arg("regex-replace", &a[2])?;
    // Built match by match, checking the length as it grows (Invariant 2): an empty pattern
    // matches at every position, so the result could otherwise be |s| × |replacement| bytes.
    let mut out = String::new();
    let mut last = 0;
    for caps in re.captures_iter(s) {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&s[last..m.start()]);
        caps.expand(rep, &mut out);
        last = m.end();
        st.check_str_len(out.len())?;
    }
    out.push_str(&s[last..]);
    st.make_string(out)
}

fn regex_split(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let (re, s) = args(st, "regex-split", a)?;
    let mut out = Vec::new();
    for piece in re.split(s) {
        out.push(Value::string(piece));
        st.check_list_len(out.len())?;
    }
    Ok(Value::list(out))
}

pub(crate) fn install(st: &mut State) {
    def(st, "regex-match", 2, Some(2), regex_match);
    def(st, "regex-find-all", 2, Some(2), regex_find_all);
    def(st, "regex-replace", 3, Some(3), regex_replace);
    def(st, "regex-split", 2, Some(2), regex_split);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn state() -> State {
        State::new(Limits::default(), Box::new(std::io::sink()), 1)
    }

    #[test]
    fn a_pattern_over_the_size_limit_is_a_clear_error() {
        let st = state();
        let err = compile(&st, "regex-match", "a{1000}{1000}").expect_err("too big");
        assert_eq!(err.kind(), &ErrorKind::Error);
        assert!(
            err.message().contains("pattern too large"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn a_replacement_is_bounded_while_it_grows() {
        let mut st = state();
        st.limits.max_string_len = 1000;
        let a = [
            Value::string(""),
            Value::string("x".repeat(900)),
            Value::string("0123456789"),
        ];
        let err = regex_replace(&mut st, &a).expect_err("over the limit");
        assert_eq!(err.kind(), &ErrorKind::Limit);
        assert!(
            err.message().contains("max_string_len"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn the_cache_stays_bounded() {
        let st = state();
        for i in 0..(CACHE_SIZE * 3) {
            compile(&st, "regex-match", &format!("x{i}")).expect("compiles");
            assert!(CACHE.with(|c| c.borrow().len()) <= CACHE_SIZE);
        }
    }
}
