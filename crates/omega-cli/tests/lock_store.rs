//! `omega run --lock-store postgres://…` (and OMEGA_LOCK_STORE): scripts in separate
//! processes share their `with-lock`s through PostgreSQL (SPEC §8). Ignored unless
//! PostgreSQL is configured (OMEGA_PG_URL; `.ci/pg.sh` runs them).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

fn omega() -> Command {
    Command::new(env!("CARGO_BIN_EXE_omega"))
}

fn url() -> String {
    std::env::var("OMEGA_PG_URL").expect("OMEGA_PG_URL: these tests need a PostgreSQL")
}

/// A schema of this test's own (the crate omega-lockstore-pg's test runs drop leftovers
/// named like this after an hour; .ci/pg.sh drops them at the end of its run).
fn schema() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("omega_t_{secs}_{}_cli", std::process::id())
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
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
fn scripts_in_two_processes_share_a_lock() {
    let dir = tempfile::tempdir().expect("temp dir");
    let schema = schema();
    let holder = script(
        &dir,
        "holder.lisp",
        r#"(with-lock "report" :mode :write
             (println "holding")
             (sleep 1500)
             (println "done"))"#,
    );
    let impatient = script(
        &dir,
        "impatient.lisp",
        r#"(with-lock "report" :mode :write :timeout 100 (println "never"))"#,
    );
    let patient = script(
        &dir,
        "patient.lisp",
        r#"(with-lock "report" :mode :write :timeout 20000 (println "got it"))"#,
    );
    let mut a = omega()
        .args(["run", "--no-progress", "--lock-store", &url(), &holder])
        .env("OMEGA_LOCK_SCHEMA", &schema)
        .stdout(Stdio::piped())
        .spawn()
        .expect("omega runs");
    let mut lines = BufReader::new(a.stdout.take().expect("piped")).lines();
    assert_eq!(lines.next().expect("a line").expect("utf-8"), "holding");
    // Another process: the environment variable names the store; the lock is taken.
    let out = omega()
        .args(["run", "--no-progress", &impatient])
        .env("OMEGA_LOCK_STORE", url())
        .env("OMEGA_LOCK_SCHEMA", &schema)
        .output()
        .expect("omega runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("lock-timeout"), "{err}");
    assert!(
        err.contains(
            "timed out after 100ms waiting for lock \"report\", which is held by owner \"task:"
        ),
        "{err}"
    );
    // A patient one waits for the holder to finish and then gets it.
    let out = omega()
        .args(["run", "--no-progress", "--lock-store", &url(), &patient])
        .env("OMEGA_LOCK_SCHEMA", &schema)
        .output()
        .expect("omega runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "got it\n");
    // By then the holder had finished: its "done" came before.
    assert_eq!(lines.next().expect("a line").expect("utf-8"), "done");
    assert!(a.wait().expect("exits").success());
}

#[test]
#[ignore = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)"]
fn an_unreachable_lock_store_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = script(&dir, "x.lisp", "(println 1)");
    let out = omega()
        .args([
            "run",
            "--no-progress",
            "--lock-store",
            "postgres://postgres@127.0.0.1:9/test",
            &s,
        ])
        .output()
        .expect("omega runs");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(
            "omega: cannot use the lock store: lock store: connecting to \
             postgres://postgres@127.0.0.1:9/test: "
        ),
        "{err}"
    );
    let out = omega()
        .args(["run", "--no-progress", "--lock-store", "mysql://x", &s])
        .output()
        .expect("omega runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("lock store URL \"mysql://x\""));
}
