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
