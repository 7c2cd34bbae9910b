//! Strings: `str string-append substring string-length string-upcase string-downcase
//! string-split string-join string-contains? string-replace string-trim number->string
//! string->number symbol->string string->symbol keyword->string format`.

use crate::builtins::{def, index_arg, list_arg, str_arg};
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
    let n = str_arg("string-length", &a[0])?.chars().count();
    Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
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

fn contains(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = str_arg("string-contains?", &a[0])?;
    let sub = str_arg("string-contains?", &a[1])?;
    Ok(Value::Bool(text.contains(sub)))
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

fn number_to_string(st: &mut State, a: &[Value]) -> LispResult<Value> {
    match &a[0] {
        Value::Int(_) | Value::Float(_) => s(st, crate::printer::write_string(&a[0])),
        other => Err(LispError::type_error("number->string", "a number", other)),
    }
}

fn string_to_number(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = str_arg("string->number", &a[0])?.trim();
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

pub(crate) fn install(st: &mut State) {
    def(st, "str", 0, None, str_);
    def(st, "string-append", 0, None, string_append);
    def(st, "substring", 2, Some(3), substring);
    def(st, "string-length", 1, Some(1), string_length);
    def(st, "string-upcase", 1, Some(1), upcase);
    def(st, "string-downcase", 1, Some(1), downcase);
    def(st, "string-split", 1, Some(2), split);
    def(st, "string-join", 1, Some(2), join);
    def(st, "string-contains?", 2, Some(2), contains);
    def(st, "string-replace", 3, Some(3), replace);
    def(st, "string-trim", 1, Some(1), trim);
    def(st, "number->string", 1, Some(1), number_to_string);
    def(st, "string->number", 1, Some(1), string_to_number);
    def(st, "symbol->string", 1, Some(1), symbol_to_string);
    def(st, "string->symbol", 1, Some(1), string_to_symbol);
    def(st, "keyword->string", 1, Some(1), keyword_to_string);
    def(st, "format", 1, None, format);
}
