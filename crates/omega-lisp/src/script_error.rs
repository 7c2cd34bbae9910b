//! [`ScriptError`]: a Lisp error as owned data — `Send + Sync + 'static`, a
//! `std::error::Error` — for errors that leave the runtime's thread (the
//! [`Engine`](crate::Engine)'s results, host functions' failures).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, LispError, Span};

/// A source position: `file:line:col` (1-based).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The file (or pseudo-file such as `<inline>`).
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

impl Position {
    fn from_span(s: &Span) -> Position {
        Position {
            file: s.file.to_string(),
            line: s.line,
            col: s.col,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// One frame of a Lisp stack trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The function's name (`<top>`, `<lambda>` …).
    pub function: String,
    /// Where it was executing, if known.
    pub position: Option<Position>,
}

/// A script's error: kind (keyword name without the colon, e.g. `"type-error"`), message,
/// position, and the Lisp stack (innermost first). `Display` prints the SPEC §6.5 report.
///
/// ```
/// let e = omega_lisp::ScriptError::new("tool", "the search index is down");
/// assert_eq!(e.to_string(), "error[:tool]: the search index is down");
/// let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
/// assert!(boxed.to_string().contains("index"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScriptError(Box<Body>);

/// What a [`ScriptError`] holds (boxed: a `Result` with it stays small).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Body {
    kind: String,
    message: String,
    position: Option<Position>,
    stack: Vec<Frame>,
    report: String,
}

impl ScriptError {
    /// An error of `kind` (a keyword name, without the colon) with `message`: what a host
    /// function returns to raise that error in the calling script.
    pub fn new(kind: &str, message: impl Into<String>) -> ScriptError {
        let message = message.into();
        ScriptError(Box::new(Body {
            report: format!("error[:{kind}]: {message}"),
            kind: kind.to_string(),
            message,
            position: None,
            stack: Vec::new(),
        }))
    }

    /// The kind, as a keyword name without the colon (`"type-error"`, `"limit"` …).
    pub fn kind(&self) -> &str {
        &self.0.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Where the error was raised, if known.
    pub fn position(&self) -> Option<&Position> {
        self.0.position.as_ref()
    }

    /// The Lisp call stack, innermost first.
    pub fn stack(&self) -> &[Frame] {
        &self.0.stack
    }

    /// True for `:cancelled` and `:timeout`.
    pub fn is_cancellation(&self) -> bool {
        self.0.kind == "cancelled" || self.0.kind == "timeout"
    }

    /// The Lisp error to raise for it (inside the runtime's thread).
    pub(crate) fn to_lisp(&self) -> LispError {
        LispError::new(ErrorKind::from_name(&self.0.kind), self.0.message.clone())
    }
}

impl From<&LispError> for ScriptError {
    fn from(e: &LispError) -> ScriptError {
        ScriptError(Box::new(Body {
            kind: e.kind().name().to_string(),
            message: e.message().to_string(),
            position: e.span().map(Position::from_span),
            stack: e
                .stack()
                .iter()
                .map(|f| Frame {
                    function: f.function.clone(),
                    position: f.span.as_ref().map(Position::from_span),
                })
                .collect(),
            report: e.to_string(),
        }))
    }
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.report)
    }
}

impl std::error::Error for ScriptError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        fn send_sync<T: Send + Sync + 'static + std::error::Error>() {}
        send_sync::<ScriptError>();
    }

    #[test]
    fn keeps_kind_message_position_and_stack() {
        let rt = crate::Runtime::new();
        let e = rt
            .eval_sync("(define (f x) (+ x \"a\"))\n(f 1)", "s.lisp")
            .expect_err("fails");
        let s = ScriptError::from(&e);
        assert_eq!(s.kind(), "type-error");
        assert_eq!(
            s.position().map(ToString::to_string).as_deref(),
            Some("s.lisp:1:15")
        );
        assert_eq!(s.stack()[0].function, "f");
        assert_eq!(s.stack()[1].function, "<top>");
        assert_eq!(s.to_string(), e.to_string());
    }
}
