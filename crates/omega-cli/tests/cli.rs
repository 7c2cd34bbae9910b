//! End-to-end tests through the real `omega` binary (SPEC §7): every example runs, exit
//! codes, the error report format, `--stats`, overlap of LLM calls, the REPL and Ctrl-C.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn omega() -> Command {
    Command::new(env!("CARGO_BIN_EXE_omega"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    omega()
        .args(args)
        .current_dir(repo())
        .output()
        .expect("the omega binary runs")
}

fn script(dir: &tempfile::TempDir, name: &str, src: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, src).expect("temp file is writable");
    p.display().to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn every_example_runs_with_the_defaults() {
    let mut seen = 0;
    for entry in std::fs::read_dir(repo().join("lisp-examples")).expect("lisp-examples exists") {
        let path = entry.expect("readable dir").path();
        if path.extension().is_some_and(|e| e == "lisp") {
            seen += 1;
            let src = std::fs::read_to_string(&path).expect("readable example");
            assert!(
                src.starts_with(";;"),
                "{} needs a header comment",
                path.display()
            );
            let out = omega()
                .args(["run", "--no-progress"])
                .arg(&path)
                .output()
                .expect("runs");
            assert!(
                out.status.success(),
                "{} failed: {}",
                path.display(),
                text(&out.stderr)
            );
            assert!(!out.stdout.is_empty(), "{} printed nothing", path.display());
        }
    }
    assert!(seen >= 7, "expected the examples of SPEC §6.4 and locks");
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ok = script(&dir, "ok.lisp", "(println \"hi\")");
    let bad = script(&dir, "bad.lisp", "(car 1)");
    let slow = script(&dir, "slow.lisp", "(with-timeout 10 (sleep 1000))");
    let cancelled = script(
        &dir,
        "cancelled.lisp",
        "(define t (async (lambda () (sleep 1000)))) (cancel t \"stop\") (await t)",
    );
    let code = |args: &[&str]| run(args).status.code();
    assert_eq!(code(&["run", &ok]), Some(0));
    assert_eq!(code(&["run", &bad]), Some(1));
    assert_eq!(code(&["run", &slow]), Some(3));
    assert_eq!(code(&["run", &cancelled]), Some(3));
    assert_eq!(code(&["run", "/nonexistent/x.lisp"]), Some(2));
    assert_eq!(code(&["run", &ok, "--bogus"]), Some(2));
    assert_eq!(code(&["run", &ok, "--max-tasks", "0"]), Some(2));
    assert_eq!(code(&["frobnicate"]), Some(2));
}

#[test]
fn run_prints_only_what_the_script_prints_and_reports_errors_as_spec() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = script(
        &dir,
        "demo.lisp",
        "(define (add-one x)\n  (+ x 1))\n\n(println \"before\")\n(add-one \"a\")\n",
    );
    let out = run(&["run", "--no-progress", &f]);
    assert_eq!(text(&out.stdout), "before\n");
    assert_eq!(
        text(&out.stderr),
        format!(
            "error[:type-error]: + expects numbers, got \"a\" (a string)\n  at add-one ({f}:2:3)\n  at <top> ({f}:5:1)\n"
        )
    );
}

#[test]
fn eval_prints_the_value_in_write_form() {
    let out = run(&["eval", "(list 1 \"two\" :three 4.0)"]);
    assert_eq!(text(&out.stdout), "(1 \"two\" :three 4.0)\n");
    let out = run(&["eval", "(await (async (lambda () (llm.infer \"x\"))))"]);
    assert_eq!(text(&out.stdout), "\"echo: x\"\n");
}

#[test]
fn check_reports_errors_with_positions_without_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = script(&dir, "good.lisp", "(println \"never printed\")");
    let out = run(&["check", &good]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "", "check does not run the script");
    let bad = script(&dir, "bad.lisp", "(let ((x)) x)\n(if)\n");
    let out = run(&["check", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{bad}:1:7: let: each binding must be (name value)"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("{bad}:2:1")), "{err}");
    assert!(err.ends_with("2 errors\n"), "{err}");
}

fn stats_of(out: &Output) -> serde_json::Value {
    serde_json::from_str(&text(&out.stderr)).expect("--stats prints JSON on stderr")
}

#[test]
fn llm_calls_overlap_and_max_llm_is_respected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = script(
        &dir,
        "fan.lisp",
        "(length (await-all (map (lambda (i) (async (lambda () (llm.infer \"q\")))) (range 20))))",
    );
    // 20 calls of 100 ms with room for all: about one latency, not twenty (generous bound).
    let t0 = Instant::now();
    let out = run(&[
        "run",
        &f,
        "--max-llm",
        "20",
        "--mock-latency",
        "100",
        "--stats",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );
    let s = stats_of(&out);
    assert_eq!(s["llm"]["calls"], 20);
    assert_eq!(s["pools"][0]["peak_in_use"], 20);
    // --max-llm 5: never more than 5 in flight.
    let out = run(&[
        "run",
        &f,
        "--max-llm",
        "5",
        "--mock-latency",
        "20",
        "--stats",
    ]);
    let s = stats_of(&out);
    assert_eq!(s["pools"][0]["peak_in_use"], 5);
    assert_eq!(s["pools"][0]["total_acquisitions"], 20);
    assert_eq!(s["tasks"]["completed"], 21, "20 calls and the top level");
}

#[test]
fn repl_keeps_going_after_errors_and_reads_multi_line_forms() {
    let mut child = omega()
        .arg("repl")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("HOME", tempfile::tempdir().expect("tempdir").path())
        .spawn()
        .expect("repl starts");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(b"(define x 40)\n(car 1)\n(+ x\n   2)\n(define t (async (lambda () :later)))\n(await t)\n")
        .expect("write to repl");
    let out = child
        .wait_with_output()
        .expect("repl exits at end of input");
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("42\n"), "{stdout}");
    assert!(
        stdout.contains(":later\n"),
        "a task outlives its input line: {stdout}"
    );
    assert!(
        text(&out.stderr).contains("error[:type-error]: car expects a pair"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn ctrl_c_cancels_everything_runs_finally_and_exits_130() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = script(
        &dir,
        "long.lisp",
        r#"(define t (async (lambda () (try (sleep 60000) (finally (println "child finally"))))))
           (try (begin (println "started") (await t))
                (finally (println "top finally")))"#,
    );
    let mut child = omega()
        .args(["run", "--no-progress", &f])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    // Wait until the script is running (it says so) before interrupting it.
    assert_eq!(lines.next().expect("a line").expect("utf-8"), "started");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let rest: Vec<String> = lines.map(|l| l.expect("utf-8")).collect();
    let out = child.wait_with_output().expect("exits");
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(rest.contains(&"child finally".to_string()), "{rest:?}");
    assert!(rest.contains(&"top finally".to_string()), "{rest:?}");
    assert!(
        text(&out.stderr).contains("interrupted"),
        "{}",
        text(&out.stderr)
    );
}

/// `omega run --llm openai` against llmock (started by `.ci/run`; skipped without it):
/// calls overlap up to `--max-llm`, a 429 is retried after its Retry-After, usage is counted.
#[test]
fn openai_provider_end_to_end_against_llmock() {
    let Ok(url) = std::env::var("OMEGA_TEST_LLMOCK_URL") else {
        eprintln!("skipped: OMEGA_TEST_LLMOCK_URL is not set (.ci/run starts llmock)");
        return;
    };
    let model = format!("cli-e2e-{}", std::process::id());
    let scenario = format!(
        r#"{{"behaviors": [{{"type": "fail", "status": 429, "retry_after": 0.2, "times": 1, "match": {{"model": "{model}"}}}}]}}"#
    );
    let posted = Command::new("python3")
        .args([
            "-c",
            "import sys, urllib.request as u; r = u.urlopen(u.Request(sys.argv[1], data=sys.argv[2].encode(), headers={'Content-Type': 'application/json'})); print(r.status)",
            &format!("{url}/_llmock/scenario"),
            &scenario,
        ])
        .output()
        .expect("python3 runs");
    assert_eq!(
        text(&posted.stdout).trim(),
        "201",
        "{}",
        text(&posted.stderr)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let f = script(
        &dir,
        "real.lisp",
        "(for-each println (await-all (map (lambda (i) (async (lambda () (llm.infer (str \"question \" i))))) (range 4))))",
    );
    let out = omega()
        .args([
            "run",
            "--no-progress",
            "--llm",
            "openai",
            "--max-llm",
            "2",
            "--stats",
            &f,
        ])
        .env("OMEGA_LLM_BASE_URL", format!("{url}/v1"))
        .env("OMEGA_LLM_MODEL", &model)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().count(),
        4,
        "{}",
        text(&out.stdout)
    );
    let s = stats_of(&out);
    assert_eq!(s["llm"]["calls"], 4);
    let peak = s["pools"][0]["peak_in_use"].as_u64().expect("a number");
    assert!(
        (1..=2).contains(&peak),
        "--max-llm 2 bounds calls in flight: {peak}"
    );
    // 4 calls plus one retried 429: five acquisitions of the llm pool (the permit is given
    // back while the 429 is waited out, and taken again for the retry).
    assert_eq!(s["pools"][0]["total_acquisitions"], 5);
}

#[test]
fn progress_and_trace_report_on_stderr_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = script(
        &dir,
        "slow.lisp",
        "(await (async (lambda () (sleep 350) (llm.infer \"x\")) :name \"worker\")) (println \"done\")",
    );
    let out = run(&["run", "--progress", &f]);
    assert_eq!(
        text(&out.stdout),
        "done\n",
        "the status line never touches stdout"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("pending 0 running 0 suspended 2 done 0 llm 0"),
        "a status line while the worker sleeps: {err:?}"
    );
    assert!(
        err.ends_with("\r\x1b[2K"),
        "the line is cleared at the end: {err:?}"
    );

    let out = run(&["run", "--no-progress", "--trace", &f]);
    assert_eq!(text(&out.stdout), "done\n");
    let err = text(&out.stderr);
    for needle in [
        "(worker): submitted",
        "(worker): started",
        "(worker): suspended",
        "(worker): acquired a llm permit",
        "(worker): completed",
    ] {
        assert!(
            err.contains(needle),
            "{needle} missing from the trace: {err}"
        );
    }
}
