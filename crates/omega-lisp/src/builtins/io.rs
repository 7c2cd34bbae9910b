//! Output: `display print println newline write`, to the sink the embedder chose (default
//! stdout) or, for `display write newline`, to a string port given as the last argument. No input, file, network, process or environment access (SPEC §6.7).

use std::io::Write;

use crate::builtins::def;
use crate::builtins::ports::emit_to;
use crate::error::{ErrorKind, LispError, LispResult};
use crate::printer::{display_string, write_string};
use crate::state::State;
use crate::value::Value;

/// Writes `text` to the embedder's output sink.
pub(crate) fn emit(st: &mut State, text: &str) -> LispResult<Value> {
    st.output
        .write_all(text.as_bytes())
        .and_then(|()| st.output.flush())
        .map_err(|e| LispError::new(ErrorKind::Error, format!("output failed: {e}")))?;
    Ok(Value::Nil)
}

fn joined(a: &[Value]) -> String {
    a.iter().map(display_string).collect::<Vec<_>>().join(" ")
}

fn display(st: &mut State, a: &[Value]) -> LispResult<Value> {
    emit_to(st, "display", a.get(1), &display_string(&a[0]))
}

fn write(st: &mut State, a: &[Value]) -> LispResult<Value> {
    emit_to(st, "write", a.get(1), &write_string(&a[0]))
}

fn print(st: &mut State, a: &[Value]) -> LispResult<Value> {
    emit(st, &joined(a))
}

fn println(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let mut text = joined(a);
    text.push('\n');
    emit(st, &text)
}

fn newline(st: &mut State, a: &[Value]) -> LispResult<Value> {
    emit_to(st, "newline", a.first(), "\n")
}

pub(crate) fn install(st: &mut State) {
    def(st, "display", 1, Some(2), display);
    def(st, "write", 1, Some(2), write);
    def(st, "print", 0, None, print);
    def(st, "println", 0, None, println);
    def(st, "newline", 0, Some(1), newline);
}
