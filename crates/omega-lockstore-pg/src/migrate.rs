//! Migrations: the SQL files in `migrations/`, compiled in, applied on first use.
//!
//! Each store applies whatever versions its schema lacks, in order, one transaction each,
//! under a session advisory lock keyed by the schema, so processes starting together
//! migrate once. Applied versions are recorded in `<schema>.migrations`.

use tokio_postgres::Client;

use crate::error::Failure;

/// `(version, name, sql)`, in order. Append only: never edit an applied migration.
pub(crate) const MIGRATIONS: &[(i32, &str, &str)] =
    &[(1, "locks", include_str!("../migrations/0001_locks.sql"))];

/// The advisory lock key class of migrations (the other key is the schema's hash).
const MIGRATE_LOCK: i32 = 1_869_440_365;

/// Brings `schema` up to date. `schema` was validated as a plain identifier.
pub(crate) async fn migrate(client: &Client, schema: &str) -> Result<(), Failure> {
    client
        .query_one(
            "SELECT pg_advisory_lock($1, hashtext($2))",
            &[&MIGRATE_LOCK, &schema],
        )
        .await?;
    let r = apply(client, schema).await;
    let unlock = client
        .query_one(
            "SELECT pg_advisory_unlock($1, hashtext($2))",
            &[&MIGRATE_LOCK, &schema],
        )
        .await;
    r?;
    unlock?;
    Ok(())
}

async fn apply(client: &Client, schema: &str) -> Result<(), Failure> {
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             CREATE TABLE IF NOT EXISTS \"{schema}\".migrations (
                 version int PRIMARY KEY,
                 name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now());"
        ))
        .await?;
    let applied: Vec<i32> = client
        .query(&format!("SELECT version FROM \"{schema}\".migrations"), &[])
        .await?
        .iter()
        .map(|r| crate::outcome::get(r, 0))
        .collect::<Result<_, _>>()?;
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tracing::info!(schema, version, name, "applying lock store migration");
        let script = format!(
            "BEGIN;
             SET LOCAL search_path TO \"{schema}\";
             {sql}
             INSERT INTO \"{schema}\".migrations (version, name) VALUES ({version}, '{name}');
             COMMIT;"
        );
        if let Err(e) = client.batch_execute(&script).await {
            let _ = client.batch_execute("ROLLBACK").await;
            let what =
                |m: &str| format!("migration {version} ({name}) of schema {schema:?} failed: {m}");
            // A lost connection may be retried; anything else will fail again.
            return Err(match Failure::from(e) {
                Failure::Connection(m) => Failure::Connection(what(&m)),
                Failure::Fatal(m) => Failure::Fatal(what(&m)),
            });
        }
    }
    Ok(())
}
