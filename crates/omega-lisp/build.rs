//! Generates one `#[test]` per `tests/scripts/**/*.lisp` file (see `tests/scripts.rs`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "lisp") {
            out.push(path);
        }
    }
}

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let scripts = root.join("tests").join("scripts");
    println!("cargo:rerun-if-changed=tests/scripts");
    let mut files = Vec::new();
    collect(&scripts, &mut files);
    files.sort();
    let mut code = String::new();
    for f in &files {
        let rel = f
            .strip_prefix(&root)
            .expect("under the crate")
            .to_string_lossy()
            .replace('\\', "/");
        let name: String = rel
            .trim_start_matches("tests/scripts/")
            .trim_end_matches(".lisp")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        writeln!(
            code,
            "#[test]\nfn script_{name}() {{\n    run_script({rel:?});\n}}\n"
        )
        .expect("write to String");
        if let Some(parent) = f.parent() {
            println!("cargo:rerun-if-changed={}", parent.display());
        }
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("script_tests.rs");
    std::fs::write(out, code).expect("write generated tests");
}
