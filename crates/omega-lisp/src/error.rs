//! The one rich error type of the Lisp: [`LispError`].
//!
//! # Implementation details
//!
//! An error carries a [`ErrorKind`] (printed as a keyword), a message, optional irritants, the
//! source [`Span`] where it was raised and the Lisp call stack at that moment. The payload is
//! boxed so `Result<Value, LispError>` stays two words wide.
//!
//! Errors of kind [`ErrorKind::Limit`] are *uncatchable*: no `catch` intercepts them, because a
//! limit ends the evaluation (SPEC §6.7); the `finally` blocks on the way out still run (so a
//! script over its heap limit releases what it holds), each re-raising the error at its end. A
//! limit that still holds while a `finally` block runs (steps spent) is raised again there at
//! the VM's next check, so cleanup cannot outlive the limit by more than one slice.
//!
//! An escape to a continuation (`call/cc`, see `builtins/control.rs`) travels as an error of
//! kind [`ErrorKind::Escape`] so that it unwinds exactly like one — through `finally` blocks
//! and `dynamic-wind` after-thunks — but no `catch`, `guard` or exception handler ever sees
//! it: the VM passes every catch handler by and stops at the escape's own `call/cc`.
//!
//! `(raise obj)` of an object that is not an error makes an `:error` whose message is `obj`
//! displayed and whose only irritant is `obj` itself, marked [`ErrorData::raised`], so that
//! `guard` and `with-exception-handler` hand the handler `obj` (R7RS) while `try` still sees
//! an error value.

use std::fmt;
use std::rc::Rc;

use crate::value::Value;

/// A position in source text: file name, 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// The file (or pseudo-file such as `<inline>`) the text came from.
    pub file: Rc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column (in characters).
    pub col: u32,
}

impl Span {
    /// Builds a span.
    pub fn new(file: Rc<str>, line: u32, col: u32) -> Span {
        Span { file, line, col }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// One frame of the Lisp call stack recorded in an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackFrame {
    /// The function's name (`<top>` for top-level code, `<lambda>` for anonymous closures).
    pub function: String,
    /// Where that frame was executing when the error was raised.
    pub span: Option<Span>,
}

/// The kind of a Lisp error, printed as a keyword (`:type-error`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `:error`, the generic kind (also `(error "msg")`).
    Error,
    /// `:syntax`, a read or compile error.
    Syntax,
    /// `:type-error`, an argument of the wrong type.
    TypeError,
    /// `:arity-error`, a call with the wrong number of arguments.
    ArityError,
    /// `:unbound`, a reference to an undefined variable.
    Unbound,
    /// `:division-by-zero`, integer division by zero.
    DivisionByZero,
    /// `:overflow`, i64 overflow.
    Overflow,
    /// `:cancelled`, the evaluation was cancelled by its host.
    Cancelled,
    /// `:timeout`, a deadline passed.
    Timeout,
    /// `:lock-timeout`, a lock could not be acquired in time.
    LockTimeout,
    /// `:lock-conflict`, a lock is held in a conflicting mode.
    LockConflict,
    /// `:deadlock`, a lock wait would deadlock.
    Deadlock,
    /// `:stack-overflow`, the Lisp call depth exceeded `max_depth`.
    StackOverflow,
    /// `:limit`, a sandbox limit was exceeded (uncatchable).
    Limit,
    /// `:llm`, an LLM call failed.
    Llm,
    /// `:panic`, a host function panicked.
    Panic,
    /// `:unsupported`, a form that this runtime does not provide (yet); also a continuation
    /// called after its `call/cc` returned or from another task (re-entry is not supported:
    /// continuations only escape).
    Unsupported,
    /// `:escape`, internal: an escape to a continuation in flight. It runs `finally` blocks
    /// on its way but is never caught; user code cannot make one (`(error :escape …)` is an
    /// ordinary error of kind `Other("escape")`).
    Escape,
    /// Any other kind, named by a user keyword (`(error :my-kind "msg")`), without the colon.
    Other(String),
}

impl ErrorKind {
    /// The keyword name without the leading colon, e.g. `"type-error"`.
    pub fn name(&self) -> &str {
        match self {
            ErrorKind::Error => "error",
            ErrorKind::Syntax => "syntax",
            ErrorKind::TypeError => "type-error",
            ErrorKind::ArityError => "arity-error",
            ErrorKind::Unbound => "unbound",
            ErrorKind::DivisionByZero => "division-by-zero",
            ErrorKind::Overflow => "overflow",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Timeout => "timeout",
            ErrorKind::LockTimeout => "lock-timeout",
            ErrorKind::LockConflict => "lock-conflict",
            ErrorKind::Deadlock => "deadlock",
            ErrorKind::StackOverflow => "stack-overflow",
            ErrorKind::Limit => "limit",
            ErrorKind::Llm => "llm",
            ErrorKind::Panic => "panic",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Escape => "escape",
            ErrorKind::Other(s) => s,
        }
    }

    /// The kind named by a keyword name (without the colon); unknown names become `Other`.
    pub fn from_name(name: &str) -> ErrorKind {
        match name {
            "error" => ErrorKind::Error,
            "syntax" => ErrorKind::Syntax,
            "type-error" => ErrorKind::TypeError,
            "arity-error" => ErrorKind::ArityError,
            "unbound" => ErrorKind::Unbound,
            "division-by-zero" => ErrorKind::DivisionByZero,
            "overflow" => ErrorKind::Overflow,
            "cancelled" => ErrorKind::Cancelled,
            "timeout" => ErrorKind::Timeout,
            "lock-timeout" => ErrorKind::LockTimeout,
            "lock-conflict" => ErrorKind::LockConflict,
            "deadlock" => ErrorKind::Deadlock,
            "stack-overflow" => ErrorKind::StackOverflow,
            "limit" => ErrorKind::Limit,
            "llm" => ErrorKind::Llm,
            "panic" => ErrorKind::Panic,
            "unsupported" => ErrorKind::Unsupported,
            other => ErrorKind::Other(other.to_string()),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, ":{}", self.name())
    }
}

/// The data behind a [`LispError`] (and behind a Lisp error value).
#[derive(Clone, Debug)]
pub struct ErrorData {
    /// The kind, printed as a keyword.
    pub kind: ErrorKind,
    /// The human-readable message.
    pub message: String,
    /// Extra values attached by `(error kind msg irritant…)`.
    pub irritants: Vec<Value>,
    /// Where the error was raised, when known.
    pub span: Option<Span>,
    /// The Lisp call stack, innermost frame first.
    pub stack: Vec<StackFrame>,
    /// Made by `(raise obj)` of a non-error `obj`, which is the only irritant: `guard` and
    /// `with-exception-handler` see `obj` itself, and the report does not repeat it.
    pub raised: bool,
    /// Set when a Lisp `raise`/`error` has already called the exception handlers of its task
    /// before unwinding (`builtins/misc.rs`): the pair `(from . to)` of handler lists, the
    /// handlers from `from` up to (not including) `to`. The `with-exception-handler`s those
    /// handlers belong to let the error pass instead of calling them again.
    pub(crate) dispatched: Option<Value>,
}

impl Drop for ErrorData {
    // Errors nested as irritants of errors drop iteratively (`value` invariant 2).
    fn drop(&mut self) {
        if !self.irritants.is_empty() {
            crate::value::teardown(std::mem::take(&mut self.irritants));
        }
    }
}

/// A Lisp error: kind, message, irritants, source span and Lisp call stack (SPEC §6.5).
///
/// `Display` renders the SPEC format:
///
/// ```text
/// error[:type-error]: + expects numbers, got "a" (a string)
///   at add-one (lisp-examples/demo.lisp:3:5)
///   at <top> (lisp-examples/demo.lisp:7:1)
/// ```
#[derive(Clone)]
pub struct LispError(Box<ErrorData>);

impl LispError {
    /// A new error of `kind` with `message`, no span, no stack.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> LispError {
        LispError(Box::new(ErrorData {
            kind,
            message: message.into(),
            irritants: Vec::new(),
            span: None,
            stack: Vec::new(),
            raised: false,
            dispatched: None,
        }))
    }

    /// Builds an error from its data.
    pub fn from_data(data: ErrorData) -> LispError {
        LispError(Box::new(data))
    }

    /// A `:syntax` error at `span` (read and compile errors).
    pub fn syntax(span: Span, message: impl Into<String>) -> LispError {
        LispError::new(ErrorKind::Syntax, message).with_span(span)
    }

    /// A `:type-error`: `who expects what, got value (a type)`.
    pub fn type_error(who: &str, expected: &str, got: &Value) -> LispError {
        LispError::new(
            ErrorKind::TypeError,
            format!(
                "{who} expects {expected}, got {} ({})",
                crate::printer::write_string_limited(got, 80),
                got.type_description()
            ),
        )
    }

    /// An `:arity-error`: `who expects N arguments, got M`.
    pub fn arity(who: &str, expected: &str, got: usize) -> LispError {
        let plural = if got == 1 { "" } else { "s" };
        LispError::new(
            ErrorKind::ArityError,
            format!("{who} expects {expected}, got {got} argument{plural}"),
        )
    }

    /// A `:limit` error naming the limit: `limit exceeded: max_steps (1000)`.
    pub fn limit(name: &str, value: impl fmt::Display) -> LispError {
        LispError::new(
            ErrorKind::Limit,
            format!("limit exceeded: {name} ({value})"),
        )
    }

    /// Attaches a span (replacing any).
    pub fn with_span(mut self, span: Span) -> LispError {
        self.0.span = Some(span);
        self
    }

    /// Attaches irritants.
    pub fn with_irritants(mut self, irritants: Vec<Value>) -> LispError {
        self.0.irritants = irritants;
        self
    }

    /// The kind.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The irritants.
    pub fn irritants(&self) -> &[Value] {
        &self.0.irritants
    }

    /// Where it was raised, if known.
    pub fn span(&self) -> Option<&Span> {
        self.0.span.as_ref()
    }

    /// The Lisp call stack, innermost first.
    pub fn stack(&self) -> &[StackFrame] {
        &self.0.stack
    }

    /// The underlying data.
    pub fn data(&self) -> &ErrorData {
        &self.0
    }

    /// Mutable access to the underlying data.
    pub fn data_mut(&mut self) -> &mut ErrorData {
        &mut self.0
    }

    /// Consumes the error, returning its data.
    pub fn into_data(self) -> ErrorData {
        *self.0
    }

    /// Whether `try` may catch it (everything but `:limit`).
    pub fn is_catchable(&self) -> bool {
        self.0.kind != ErrorKind::Limit
    }

    /// The first line of the report: `error[:kind]: message` (with `file:line:col: ` before the
    /// message for errors that have a span but no stack, i.e. read and compile errors).
    pub fn headline(&self) -> String {
        let mut s = format!("error[{}]: ", self.0.kind);
        if self.0.stack.is_empty() {
            if let Some(span) = &self.0.span {
                s.push_str(&format!("{span}: "));
            }
        }
        s.push_str(&self.0.message);
        let shown = if self.0.raised {
            &[][..]
        } else {
            &self.0.irritants[..]
        };
        for irr in shown {
            s.push(' ');
            s.push_str(&crate::printer::write_string_limited(irr, 200));
        }
        s
    }
}

impl fmt::Display for LispError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())?;
        for frame in &self.0.stack {
            match &frame.span {
                Some(span) => write!(f, "\n  at {} ({span})", frame.function)?,
                None => write!(f, "\n  at {}", frame.function)?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for LispError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for LispError {}

/// Shorthand for results of Lisp operations.
pub type LispResult<T> = Result<T, LispError>;
