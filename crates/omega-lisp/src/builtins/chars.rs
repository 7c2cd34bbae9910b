//! Characters (SPEC §6.9): `char? char->integer integer->char char-upcase char-downcase
//! char-foldcase char-alphabetic? char-numeric? char-whitespace? char-upper-case?
//! char-lower-case? digit-value char=? char<? char>? char<=? char>=?` and the `-ci` comparisons.
//!
//! # Implementation details
//!
//! A character is a Unicode scalar value ([`Value::Char`], immediate). Case mapping is Rust's
//! full Unicode mapping, kept only when it maps one character to one character (R7RS: `ß` has
//! no one-character upper case, so `(char-upcase #\ß)` is `#\ß`). `char-foldcase` is the
//! one-character lower case. The `-ci` comparisons compare folded characters.
//!
//! `digit-value` and `char-numeric?` agree: a character is numeric when it is a decimal digit
//! (Unicode `Nd`) of one of the scripts in [`DIGIT_ZEROS`] (ASCII, Arabic-Indic, Devanagari…,
//! full-width); other `Nd` digits are not recognised (no Unicode table is linked in).

use crate::builtins::{def, int_arg};
use crate::error::{ErrorKind, LispError, LispResult};
use crate::state::State;
use crate::value::Value;

/// The code points of `0` in each run of ten decimal digits that `digit-value` knows.
const DIGIT_ZEROS: &[u32] = &[
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0xFF10,
];

/// A character argument.
pub(crate) fn char_arg(who: &str, v: &Value) -> LispResult<char> {
    match v {
        Value::Char(c) => Ok(*c),
        other => Err(LispError::type_error(who, "a char", other)),
    }
}

/// The decimal value of `c`, if it is a decimal digit of a known script.
pub(crate) fn digit_of(c: char) -> Option<u32> {
    let cp = c as u32;
    DIGIT_ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&cp))
        .map(|zero| cp - zero)
}

/// `c` upper-cased when that gives exactly one character, else `c`.
pub(crate) fn upcase(c: char) -> char {
    single(c.to_uppercase()).unwrap_or(c)
}

/// `c` lower-cased when that gives exactly one character, else `c`.
pub(crate) fn downcase(c: char) -> char {
    single(c.to_lowercase()).unwrap_or(c)
}

/// The folded form of `c` used by the `-ci` comparisons.
pub(crate) fn foldcase(c: char) -> char {
    downcase(c)
}

fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
    let c = it.next()?;
    it.next().is_none().then_some(c)
}

fn b(x: bool) -> LispResult<Value> {
    Ok(Value::Bool(x))
}

fn is_char(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(matches!(a[0], Value::Char(_)))
}

fn char_to_integer(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Int(i64::from(u32::from(char_arg(
        "char->integer",
        &a[0],
    )?))))
}

fn integer_to_char(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let i = int_arg("integer->char", &a[0])?;
    u32::try_from(i)
        .ok()
        .and_then(char::from_u32)
        .map(Value::Char)
        .ok_or_else(|| {
            LispError::new(
                ErrorKind::Error,
                format!("integer->char: {i} is not a Unicode scalar value (0..=#x10FFFF, not a surrogate)"),
            )
        })
}

fn char_upcase(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Char(upcase(char_arg("char-upcase", &a[0])?)))
}
fn char_downcase(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Char(downcase(char_arg("char-downcase", &a[0])?)))
}
fn char_foldcase(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Char(foldcase(char_arg("char-foldcase", &a[0])?)))
}
fn is_alphabetic(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(char_arg("char-alphabetic?", &a[0])?.is_alphabetic())
}
fn is_numeric(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(digit_of(char_arg("char-numeric?", &a[0])?).is_some())
}
fn is_whitespace(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(char_arg("char-whitespace?", &a[0])?.is_whitespace())
}
fn is_upper(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(char_arg("char-upper-case?", &a[0])?.is_uppercase())
}
fn is_lower(_: &mut State, a: &[Value]) -> LispResult<Value> {
    b(char_arg("char-lower-case?", &a[0])?.is_lowercase())
}
fn digit_value(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(match digit_of(char_arg("digit-value", &a[0])?) {
        Some(d) => Value::Int(i64::from(d)),
        None => Value::Bool(false),
    })
}

/// `(char<? a b c …)`: true when `holds` for every adjacent pair (after `fold`); every argument
/// is type-checked even when an earlier pair already failed.
fn chain(
    who: &str,
    a: &[Value],
    fold: fn(char) -> char,
    holds: fn(char, char) -> bool,
) -> LispResult<Value> {
    let chars = a
        .iter()
        .map(|v| char_arg(who, v).map(fold))
        .collect::<LispResult<Vec<char>>>()?;
    b(chars.windows(2).all(|w| holds(w[0], w[1])))
}

fn same(c: char) -> char {
    c
}

macro_rules! comparisons {
    ($($f:ident $name:literal $fold:ident $op:tt;)*) => {
        $(fn $f(_: &mut State, a: &[Value]) -> LispResult<Value> {
            chain($name, a, $fold, |x, y| x $op y)
        })*
        fn install_comparisons(st: &mut State) {
            $(def(st, $name, 1, None, $f);)*
        }
    };
}

comparisons! {
    char_eq "char=?" same ==;
    char_lt "char<?" same <;
    char_gt "char>?" same >;
    char_le "char<=?" same <=;
    char_ge "char>=?" same >=;
    char_ci_eq "char-ci=?" foldcase ==;
    char_ci_lt "char-ci<?" foldcase <;
    char_ci_gt "char-ci>?" foldcase >;
    char_ci_le "char-ci<=?" foldcase <=;
    char_ci_ge "char-ci>=?" foldcase >=;
}

pub(crate) fn install(st: &mut State) {
    def(st, "char?", 1, Some(1), is_char);
    def(st, "char->integer", 1, Some(1), char_to_integer);
    def(st, "integer->char", 1, Some(1), integer_to_char);
    def(st, "char-upcase", 1, Some(1), char_upcase);
    def(st, "char-downcase", 1, Some(1), char_downcase);
    def(st, "char-foldcase", 1, Some(1), char_foldcase);
    def(st, "char-alphabetic?", 1, Some(1), is_alphabetic);
    def(st, "char-numeric?", 1, Some(1), is_numeric);
    def(st, "char-whitespace?", 1, Some(1), is_whitespace);
    def(st, "char-upper-case?", 1, Some(1), is_upper);
    def(st, "char-lower-case?", 1, Some(1), is_lower);
    def(st, "digit-value", 1, Some(1), digit_value);
    install_comparisons(st);
}
