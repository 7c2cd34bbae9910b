//! The classic benchmark programs of `benches/programs/` (transliterated from
//! ecraven/r7rs-benchmarks) as tests: each runs through the scheduler as `omega run` does, and
//! its printed output must equal its `; expect-output:` lines. Inputs are sized so that a debug
//! build runs each in well under a second.

use std::path::PathBuf;

use omega_lisp::{OutputBuffer, Runtime};

fn programs() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("programs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "lisp"))
        .collect();
    files.sort();
    files
}

fn expected_output(src: &str) -> Vec<String> {
    src.lines()
        .filter_map(|l| l.trim_start().strip_prefix("; expect-output:"))
        .map(|o| o.strip_prefix(' ').unwrap_or(o).to_string())
        .collect()
}

#[test]
fn every_program_prints_its_expected_output() {
    let files = programs();
    assert!(
        files.len() >= 12,
        "expected at least 12 programs, found {}",
        files.len()
    );
    for path in files {
        let name = path.display().to_string();
        let src = std::fs::read_to_string(&path).expect("readable program");
        assert!(src.starts_with(";;"), "{name} needs a header comment");
        let expected = expected_output(&src);
        assert!(
            !expected.is_empty(),
            "{name} has no `; expect-output:` lines"
        );
        let out = OutputBuffer::new();
        let rt = Runtime::builder().output(out.clone()).build();
        if let Err(e) = rt.scheduler().block_on(rt.eval_str(&src, &name)) {
            panic!("{name} failed:\n{e}");
        }
        let got = out.contents();
        let got: Vec<&str> = got.strip_suffix('\n').unwrap_or(&got).split('\n').collect();
        assert_eq!(got, expected, "{name}: wrong output");
    }
}
