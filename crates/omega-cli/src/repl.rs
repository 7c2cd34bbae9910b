//! `omega repl`: line editing and history (rustyline), completion of every name in scope (Tab:
//! special forms, macros, builtins and the session's own definitions), multi-line forms, errors
//! that don't end the session, Ctrl-C to cancel an evaluation or clear the line, Ctrl-D to leave.

use std::cell::RefCell;
use std::rc::Rc;

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use omega_lisp::write_string;

use crate::args::RuntimeOpts;
use crate::report::{self, EXIT_OK};
use crate::session::{Mode, Session};

/// True when `src` is an unfinished form (more lines are needed).
pub fn incomplete(src: &str) -> bool {
    match omega_lisp::read_all(src, "<repl>") {
        Ok(_) => false,
        Err(e) => {
            let m = e.message();
            m.contains("(end of input)")
                || m.contains("unterminated string")
                || m.contains("unterminated block comment")
        }
    }
}

/// Characters that end a Lisp symbol (so a completion starts after the last of them).
fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || "()[]{}'`,\";".contains(c)
}

/// The start of the word that ends at byte `pos` of `line`, and the names that complete it.
pub fn complete_word(line: &str, pos: usize, names: &[String]) -> (usize, Vec<String>) {
    let pos = pos.min(line.len());
    let before = line.get(..pos).unwrap_or("");
    let start = before
        .char_indices()
        .rev()
        .find(|&(_, c)| is_delimiter(c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &before[start..];
    if word.is_empty() {
        return (start, Vec::new());
    }
    let found = names
        .iter()
        .filter(|n| n.starts_with(word))
        .cloned()
        .collect();
    (start, found)
}

/// The line editor's helper: completes names from the session's runtime (refreshed after each
/// evaluation, so new definitions complete too).
struct NameCompleter {
    names: Rc<RefCell<Vec<String>>>,
}

impl Completer for NameCompleter {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(complete_word(line, pos, &self.names.borrow()))
    }
}

impl Hinter for NameCompleter {
    type Hint = String;
}

impl Highlighter for NameCompleter {}

impl Validator for NameCompleter {}

impl Helper for NameCompleter {}

/// Runs the REPL until end of input.
pub fn repl(opts: &RuntimeOpts) -> u8 {
    let session = match Session::new(opts) {
        Ok(s) => s,
        Err(e) => return report::usage_error(e),
    };
    let mut editor: Editor<NameCompleter, DefaultHistory> = match Editor::new() {
        Ok(e) => e,
        Err(e) => return report::usage_error(format!("cannot start the line editor: {e}")),
    };
    let names = Rc::new(RefCell::new(session.rt.names()));
    editor.set_helper(Some(NameCompleter {
        names: names.clone(),
    }));
    let history = std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".omega_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let mut buffer = String::new();
    // Consecutive undecodable lines, so a stream that keeps failing still ends the loop.
    let mut bad_lines = 0u32;
    loop {
        let prompt = if buffer.is_empty() {
            "omega> "
        } else {
            "  ...> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                bad_lines = 0;
                buffer.push_str(&line);
                buffer.push('\n');
                if buffer.trim().is_empty() {
                    buffer.clear();
                    continue;
                }
                if incomplete(&buffer) {
                    continue;
                }
                let _ = editor.add_history_entry(buffer.trim_end());
                let out = session.run(&buffer, "<repl>", Mode::Interactive, false);
                match out.result {
                    Ok(v) => out_line!("{}", write_string(&v)),
                    Err(e) => err_line!("{e}"),
                }
                buffer.clear();
                *names.borrow_mut() = session.rt.names();
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            // An input line that is not UTF-8: report it, drop the pending form, go on.
            Err(ReadlineError::Io(e))
                if e.kind() == std::io::ErrorKind::InvalidData && bad_lines < 1000 =>
            {
                bad_lines += 1;
                err_line!(
                    "error[:syntax]: <repl>: invalid UTF-8 in the input line; it was skipped"
                );
                buffer.clear();
            }
            Err(e) => {
                err_line!("omega: {e}");
                break;
            }
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use super::{complete_word, incomplete};

    #[test]
    fn completion_takes_the_word_before_the_cursor() {
        let names: Vec<String> = ["vector-ref", "vector-set!", "values", "car"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            complete_word("(display (vector-r", 18, &names),
            (10, vec!["vector-ref".to_string()])
        );
        assert_eq!(
            complete_word("(v", 2, &names).1,
            vec!["vector-ref", "vector-set!", "values"]
        );
        // Nothing before the cursor, or a cursor after a delimiter: no candidates.
        assert_eq!(complete_word("(", 1, &names), (1, vec![]));
        assert_eq!(complete_word("", 0, &names), (0, vec![]));
        // Completes at the cursor, not at the end of the line; a position past the end is clamped.
        assert_eq!(complete_word("(ca x)", 3, &names).1, vec!["car"]);
        assert_eq!(
            complete_word("'ca", 99, &names),
            (1, vec!["car".to_string()])
        );
    }

    #[test]
    fn a_runtime_names_its_forms_builtins_macros_and_definitions() {
        let rt = omega_lisp::Runtime::new();
        rt.eval_sync("(define my-helper 1)", "<t>")
            .expect("defines");
        let names = rt.names();
        for n in [
            "define",
            "lambda",
            "try",
            "car",
            "map",
            "with-lock",
            "let-values",
            "llm.infer",
            "string-ref",
            "my-helper",
            "vector-ref",
            "call/cc",
            "dynamic-wind",
            "guard",
            "parameterize",
            "define-record-type",
            "define-syntax",
            "syntax-rules",
            "delay-force",
        ] {
            assert!(
                names.iter().any(|x| x == n),
                "{n} missing from {} names",
                names.len()
            );
        }
        assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        assert!(
            !names.iter().any(|x| x.starts_with('%')),
            "internal names are hidden"
        );
    }

    #[test]
    fn multi_line_forms_are_detected() {
        assert!(incomplete("(define (f x)"));
        assert!(incomplete("(println \"abc"));
        assert!(incomplete("{:a 1"));
        assert!(!incomplete("(+ 1 2)"));
        assert!(
            !incomplete(")"),
            "a real syntax error is reported, not continued"
        );
    }
}
