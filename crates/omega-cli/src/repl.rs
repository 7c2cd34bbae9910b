//! `omega repl`: line editing and history (rustyline), multi-line forms, errors that don't
//! end the session, Ctrl-C to cancel an evaluation or clear the line, Ctrl-D to leave.

use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;

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

/// Runs the REPL until end of input.
pub fn repl(opts: &RuntimeOpts) -> u8 {
    let session = match Session::new(opts) {
        Ok(s) => s,
        Err(e) => return report::usage_error(e),
    };
    let mut editor = match DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => return report::usage_error(format!("cannot start the line editor: {e}")),
    };
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
    use super::incomplete;

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
