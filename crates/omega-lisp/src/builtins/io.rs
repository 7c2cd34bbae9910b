//! Output: `display print println newline write`, to the sink the embedder chose (default
//! stdout) or, for `display write newline`, to a string port given as the last argument. No input, file, network, process or environment access (SPEC §6.7).

use std::io::Write;

use crate::builtins::def;
use crate::builtins::ports::emit_to;
use crate::error::{ErrorKind, LispError, LispResult};
use crate::printer::{display_bounded, write_bounded};
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

/// The display forms of `a` joined by spaces, held to `max_string_len`.
fn joined(st: &State, a: &[Value]) -> LispResult<String> {
    let mut out = String::new();
    for (i, v) in a.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&display_bounded(st, v)?);
        st.check_str_len(out.len())?;
    }
    Ok(out)
}

fn display(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = display_bounded(st, &a[0])?;
    emit_to(st, "display", a.get(1), &text)
}

fn write(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = write_bounded(st, &a[0])?;
    emit_to(st, "write", a.get(1), &text)
}

/// `(write-shared obj [port])`: like `write`, but every pair/vector/map met twice gets a datum
/// label (`#0=(a) #0#`), not only cycles (issue 15).
fn write_shared(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = crate::printer::write_shared_bounded(st, &a[0])?;
    emit_to(st, "write-shared", a.get(1), &text)
}

fn print(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = joined(st, a)?;
    emit(st, &text)
}

fn println(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let mut text = joined(st, a)?;
    text.push('\n');
    emit(st, &text)
}

fn newline(st: &mut State, a: &[Value]) -> LispResult<Value> {
    emit_to(st, "newline", a.first(), "\n")
}

pub(crate) fn install(st: &mut State) {
    def(st, "display", 1, Some(2), display);
    def(st, "write", 1, Some(2), write);
    // R7RS `write-simple` prints no labels; Omega never loops on cyclic data, so it is `write`.
    def(st, "write-simple", 1, Some(2), write);
    def(st, "write-shared", 1, Some(2), write_shared);
    def(st, "print", 0, None, print);
    def(st, "println", 0, None, println);
    def(st, "newline", 0, Some(1), newline);
}
