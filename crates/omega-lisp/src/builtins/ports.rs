//! String ports (SPEC §6.9): `open-input-string open-output-string read-char peek-char
//! read-line read-string read write-char write-string get-output-string close-port
//! close-input-port close-output-port input-port? output-port? port? eof-object eof-object?`;
//! `display write newline` take an optional output port too (`io.rs`).
//!
//! There is no file or console input (SPEC §6.7): every input port reads a string, every output
//! port collects one. The port argument of the reading procedures is therefore required; the
//! writing procedures write to the embedder's output sink when it is left out.
//!
//! # Invariants
//!
//! 1. Ports are foreign objects holding only strings and positions, never a [`Value`], so they
//!    add no edge to the heap.
//! 2. An input port's position is a byte offset on a character boundary; its line and column
//!    (1-based) follow it, so `read` reports a syntax error at the place in the string.
//! 3. An output port never holds more than `max_string_len` bytes: a write that would pass it
//!    is a `:limit` error and leaves the port unchanged.
//! 4. The end-of-file object is one per thread, so `eq?` holds between any two of them.

use std::any::Any;
use std::cell::{Cell, RefCell};

use crate::builtins::chars::char_arg;
use crate::builtins::{def, index_arg, str_arg};
use crate::error::{ErrorKind, LispError, LispResult};
use crate::reader;
use crate::state::State;
use crate::value::{Foreign, Value};

/// A port reading a string.
#[derive(Debug)]
pub(crate) struct InputPort {
    text: String,
    pos: Cell<usize>,
    line: Cell<u32>,
    col: Cell<u32>,
    closed: Cell<bool>,
}

impl Foreign for InputPort {
    fn type_name(&self) -> &str {
        "input-port"
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl InputPort {
    fn rest(&self) -> &str {
        &self.text[self.pos.get()..]
    }

    /// Moves past the next `bytes` bytes (a character boundary), following lines (Invariant 2).
    fn advance(&self, bytes: usize) {
        let start = self.pos.get();
        for c in self.text[start..start + bytes].chars() {
            if c == '\n' {
                self.line.set(self.line.get().saturating_add(1));
                self.col.set(1);
            } else {
                self.col.set(self.col.get().saturating_add(1));
            }
        }
        self.pos.set(start + bytes);
    }
}

/// A port collecting a string.
#[derive(Debug)]
pub(crate) struct OutputPort {
    buf: RefCell<String>,
    closed: Cell<bool>,
}

impl Foreign for OutputPort {
    fn type_name(&self) -> &str {
        "output-port"
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The end-of-file object's type.
#[derive(Debug)]
struct Eof;

impl Foreign for Eof {
    fn type_name(&self) -> &str {
        "eof-object"
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

thread_local! {
    static EOF: Value = Value::foreign(Eof);
}

/// The end-of-file object (Invariant 4).
fn eof() -> Value {
    EOF.with(Value::clone)
}

fn input<'a>(who: &str, v: &'a Value) -> LispResult<&'a InputPort> {
    match v {
        Value::Foreign(f) => match f.as_any().downcast_ref::<InputPort>() {
            Some(p) if p.closed.get() => Err(LispError::new(
                ErrorKind::Error,
                format!("{who}: the input port is closed"),
            )),
            Some(p) => Ok(p),
            None => Err(LispError::type_error(who, "an input port", v)),
        },
        _ => Err(LispError::type_error(who, "an input port", v)),
    }
}

fn output_port(v: &Value) -> Option<&OutputPort> {
    match v {
        Value::Foreign(f) => f.as_any().downcast_ref::<OutputPort>(),
        _ => None,
    }
}

/// Writes `text` to the output port `port` (Invariant 3), or to the embedder's sink when
/// `port` is `None`. Shared with `display write newline`.
pub(crate) fn emit_to(
    st: &mut State,
    who: &str,
    port: Option<&Value>,
    text: &str,
) -> LispResult<Value> {
    let Some(v) = port else {
        return crate::builtins::io::emit(st, text);
    };
    let p = output_port(v).ok_or_else(|| LispError::type_error(who, "an output port", v))?;
    if p.closed.get() {
        return Err(LispError::new(
            ErrorKind::Error,
            format!("{who}: the output port is closed"),
        ));
    }
    let mut buf = p.buf.borrow_mut();
    st.check_str_len(buf.len().saturating_add(text.len()))?;
    buf.push_str(text);
    Ok(Value::Nil)
}

fn open_input_string(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = str_arg("open-input-string", &a[0])?.to_string();
    Ok(Value::foreign(InputPort {
        text,
        pos: Cell::new(0),
        line: Cell::new(1),
        col: Cell::new(1),
        closed: Cell::new(false),
    }))
}

fn open_output_string(_: &mut State, _: &[Value]) -> LispResult<Value> {
    Ok(Value::foreign(OutputPort {
        buf: RefCell::new(String::new()),
        closed: Cell::new(false),
    }))
}

fn read_char(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let p = input("read-char", &a[0])?;
    match p.rest().chars().next() {
        None => Ok(eof()),
        Some(c) => {
            p.advance(c.len_utf8());
            Ok(Value::Char(c))
        }
    }
}

fn peek_char(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let p = input("peek-char", &a[0])?;
    Ok(p.rest().chars().next().map_or_else(eof, Value::Char))
}

fn read_line(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let p = input("read-line", &a[0])?;
    let rest = p.rest();
    if rest.is_empty() {
        return Ok(eof());
    }
    let (line, used) = match rest.find('\n') {
        Some(i) => (&rest[..i], i + 1),
        None => (rest, rest.len()),
    };
    let line = line.strip_suffix('\r').unwrap_or(line);
    let v = Value::string(line);
    p.advance(used);
    Ok(v)
}

fn read_string(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let k = index_arg("read-string", &a[0])?;
    let p = input("read-string", &a[1])?;
    let rest = p.rest();
    if rest.is_empty() && k > 0 {
        return Ok(eof());
    }
    let used = rest.char_indices().nth(k).map_or(rest.len(), |(i, _)| i);
    let v = Value::string(&rest[..used]);
    p.advance(used);
    Ok(v)
}

fn read(_: &mut State, a: &[Value]) -> LispResult<Value> {
    let p = input("read", &a[0])?;
    let (line, col) = (p.line.get(), p.col.get());
    match reader::read_first(p.rest(), "<string>", line, col) {
        Ok(None) => {
            p.advance(p.rest().len());
            Ok(eof())
        }
        Ok(Some((v, used))) => {
            p.advance(used);
            Ok(v)
        }
        Err(e) if e.kind() == &ErrorKind::Syntax => {
            let at = e
                .span()
                .map(|s| format!(" at line {}, column {} of the string", s.line, s.col))
                .unwrap_or_default();
            Err(LispError::new(
                ErrorKind::Syntax,
                format!("read: {}{at}", e.message()),
            ))
        }
        Err(e) => Err(e),
    }
}

fn write_char(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let c = char_arg("write-char", &a[0])?;
    emit_to(st, "write-char", a.get(1), c.encode_utf8(&mut [0; 4]))
}

fn write_string(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let s = str_arg("write-string", &a[0])?;
    emit_to(st, "write-string", a.get(1), s)
}

fn get_output_string(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let p = output_port(&a[0])
        .ok_or_else(|| LispError::type_error("get-output-string", "an output port", &a[0]))?;
    let text = p.buf.borrow().clone();
    st.make_string(text)
}

fn close_port(_: &mut State, a: &[Value]) -> LispResult<Value> {
    if let Value::Foreign(f) = &a[0] {
        if let Some(p) = f.as_any().downcast_ref::<InputPort>() {
            p.closed.set(true);
            return Ok(Value::Nil);
        }
        if let Some(p) = f.as_any().downcast_ref::<OutputPort>() {
            p.closed.set(true);
            return Ok(Value::Nil);
        }
    }
    Err(LispError::type_error("close-port", "a port", &a[0]))
}

fn is<T: 'static>(v: &Value) -> bool {
    matches!(v, Value::Foreign(f) if f.as_any().is::<T>())
}

fn eof_object(_: &mut State, _: &[Value]) -> LispResult<Value> {
    Ok(eof())
}

fn eof_object_p(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Bool(is::<Eof>(&a[0])))
}

fn input_port_p(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Bool(is::<InputPort>(&a[0])))
}

fn output_port_p(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Bool(is::<OutputPort>(&a[0])))
}

fn port_p(_: &mut State, a: &[Value]) -> LispResult<Value> {
    Ok(Value::Bool(
        is::<InputPort>(&a[0]) || is::<OutputPort>(&a[0]),
    ))
}

pub(crate) fn install(st: &mut State) {
    def(st, "open-input-string", 1, Some(1), open_input_string);
    def(st, "open-output-string", 0, Some(0), open_output_string);
    def(st, "read-char", 1, Some(1), read_char);
    def(st, "peek-char", 1, Some(1), peek_char);
    def(st, "read-line", 1, Some(1), read_line);
    def(st, "read-string", 2, Some(2), read_string);
    def(st, "read", 1, Some(1), read);
    def(st, "write-char", 1, Some(2), write_char);
    def(st, "write-string", 1, Some(2), write_string);
    def(st, "get-output-string", 1, Some(1), get_output_string);
    def(st, "close-port", 1, Some(1), close_port);
    def(st, "close-input-port", 1, Some(1), close_port);
    def(st, "close-output-port", 1, Some(1), close_port);
    def(st, "eof-object", 0, Some(0), eof_object);
    def(st, "eof-object?", 1, Some(1), eof_object_p);
    def(st, "input-port?", 1, Some(1), input_port_p);
    def(st, "output-port?", 1, Some(1), output_port_p);
    def(st, "port?", 1, Some(1), port_p);
}
