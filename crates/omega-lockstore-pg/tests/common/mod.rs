//! Helpers of the PostgreSQL tests: the database URL, a fresh schema per test (dropped at
//! the end, and leftovers of killed runs dropped after an hour), and a store on it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use omega_lockstore_pg::{Clock, PgLockStore, PgStoreConfig};

/// Why every test here is ignored unless run by `.ci/pg.sh` (or by hand with
/// `--run-ignored only`): they need a PostgreSQL.
pub const NEEDS_PG: &str = "needs PostgreSQL: OMEGA_PG_URL (run by .ci/pg.sh)";

/// `OMEGA_PG_URL`.
pub fn url() -> String {
    std::env::var("OMEGA_PG_URL").unwrap_or_else(|_| {
        panic!(
            "OMEGA_PG_URL is not set: these tests need a PostgreSQL, e.g. \
             OMEGA_PG_URL=postgres://postgres@127.0.0.1:5432/test (see .ci/pg.sh)"
        )
    })
}

/// Runs `sql` on a fresh connection, on a thread of its own (usable from `Drop` and from
/// inside a runtime).
pub fn admin(sql: String) {
    let url = url();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the admin connection");
        rt.block_on(async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("admin connection");
            tokio::spawn(conn);
            client.batch_execute(&sql).await.expect("admin statement");
        });
    })
    .join()
    .expect("admin thread");
}

fn secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A schema of its own for one test; dropped (with everything in it) when dropped.
#[derive(Debug)]
pub struct Schema {
    pub name: String,
}

impl Schema {
    pub fn new() -> Arc<Schema> {
        static CLEANUP: Once = Once::new();
        static N: AtomicUsize = AtomicUsize::new(0);
        CLEANUP.call_once(|| {
            // Leftovers of runs that were killed before their schemas were dropped.
            admin(format!(
                "DO $$ DECLARE s text; BEGIN
                   FOR s IN SELECT nspname FROM pg_namespace
                             WHERE nspname ~ '^omega_t_[0-9]+_'
                               AND split_part(nspname, '_', 3)::bigint < {} LOOP
                     EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', s);
                   END LOOP; END $$;",
                secs().saturating_sub(3600)
            ));
        });
        Arc::new(Schema {
            name: format!(
                "omega_t_{}_{}_{}",
                secs(),
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
        })
    }

    /// A configuration for this schema with short, test-friendly intervals.
    pub fn config(&self) -> PgStoreConfig {
        PgStoreConfig::new(&url())
            .expect("OMEGA_PG_URL parses")
            .schema(&self.name)
            .retry_for(Duration::from_secs(5))
    }

    /// A store on this schema.
    pub fn store(&self) -> PgLockStore {
        PgLockStore::new(self.config()).expect("valid test configuration")
    }

    /// A store on this schema on tokio's (paused) clock, for the store-generic suite.
    pub fn virtual_store(&self) -> PgLockStore {
        PgLockStore::new(self.config().clock(Clock::Tokio)).expect("valid test configuration")
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        admin(format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name));
    }
}

/// A direct connection to the test's schema (for tables the tests own and for looking at
/// the store's), driven on the current runtime.
pub async fn connect(schema: &Schema) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .expect("test connection");
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "SET client_min_messages TO warning;
             CREATE SCHEMA IF NOT EXISTS \"{0}\";
             SET search_path TO \"{0}\";",
            schema.name
        ))
        .await
        .expect("test schema");
    client
}

/// Runs `f` holding a paused tokio clock still (a request at the server is not virtual
/// time: see the crate's `Clock::Tokio`); harmless on a running clock.
pub async fn held<T>(f: impl std::future::Future<Output = T>) -> T {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    drop(tokio::task::spawn_blocking(move || {
        let _ = rx.recv();
    }));
    let out = f.await;
    drop(tx);
    out
}

/// Polls `sql` (one row, one bigint column) until it returns `want`; panics with `what`
/// after 20 s (real time) . A wait on an observable condition, not on time.
pub async fn until(db: &tokio_postgres::Client, sql: &str, want: i64, what: &str) {
    let give_up = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got: i64 = held(db.query_one(sql, &[])).await.expect(what).get(0);
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "{what}: still {got} (want {want}) after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// An `omega-pg-worker` process on the test's schema, driven line by line.
pub struct Worker {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    /// Its store's session (it names its connections).
    pub session: String,
}

impl Worker {
    /// Starts a worker; `args` are extra flags (`--lease-ttl-ms`, …).
    pub async fn start(schema: &Schema, args: &[&str]) -> Worker {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_omega-pg-worker"))
            .arg("--schema")
            .arg(&schema.name)
            .args(args)
            .env("OMEGA_PG_URL", url())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start omega-pg-worker");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = tokio::io::BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut w = Worker {
            child,
            stdin,
            stdout,
            session: String::new(),
        };
        let first = w.line().await;
        w.session = first
            .strip_prefix("session ")
            .unwrap_or_else(|| panic!("worker said {first:?}"))
            .to_string();
        w
    }

    /// The next line the worker prints (120 s at most: a busy machine is slow).
    pub async fn line(&mut self) -> String {
        match tokio::time::timeout(Duration::from_secs(120), self.stdout.next_line()).await {
            Ok(Ok(Some(l))) => l,
            other => panic!("worker gave no answer: {other:?}"),
        }
    }

    /// Sends a command without waiting for its answer.
    pub async fn send(&mut self, cmd: &str) {
        use tokio::io::AsyncWriteExt;
        self.stdin
            .write_all(format!("{cmd}\n").as_bytes())
            .await
            .expect("worker stdin");
        self.stdin.flush().await.expect("worker stdin");
    }

    /// Sends a command and returns its answer.
    pub async fn ask(&mut self, cmd: &str) -> String {
        self.send(cmd).await;
        self.line().await
    }

    /// The fences of a `granted F1,F2` answer; panics on anything else.
    pub fn fences(answer: &str) -> Vec<i64> {
        answer
            .strip_prefix("granted ")
            .unwrap_or_else(|| panic!("expected a grant, got {answer:?}"))
            .split(',')
            .map(|f| f.parse().expect("a fence"))
            .collect()
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill worker");
    }
}
