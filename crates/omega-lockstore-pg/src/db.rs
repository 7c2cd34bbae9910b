//! [`Db`]: the connection pool, first-use migration, and the one way requests are made —
//! prepared, timed, retried across lost connections, and (under [`Clock::Tokio`]) holding
//! a paused clock still.
//!
//! Every lock operation is one call of one SQL function, so one round trip and one
//! implicit transaction; a retry after a lost connection is safe because every mutating
//! function is idempotent for its arguments (requests carry a uuid, releases name fences).

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio::sync::OnceCell;
use tokio::time::Instant;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use crate::clock::{Clock, Times};
use crate::config::PgStoreConfig;
use crate::error::{ConfigError, Failure};
use crate::migrate::migrate;

/// Parameters of one request.
pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// The database side of a store.
#[derive(Debug)]
pub(crate) struct Db {
    pool: Pool,
    pub cfg: PgStoreConfig,
    pub times: Times,
    /// The LISTEN/NOTIFY channel: `omega_locks.<schema>`.
    pub channel: String,
    /// The listener connection's `application_name`.
    listener_name: String,
    migrated: OnceCell<()>,
}

impl Db {
    pub fn new(cfg: PgStoreConfig, session: Uuid) -> Result<Db, ConfigError> {
        cfg.validate()?;
        let mut pg = cfg.pg.clone();
        // Keep options given in the URL; ours come last and win. Generic plans: the SQL
        // functions' statements are index lookups on tiny tables, and re-planning them on
        // every call (PostgreSQL's default for parameterised statements that look no
        // cheaper generic) cost a third of a grant's server time.
        let ours = format!(
            "-c search_path={} -c plan_cache_mode=force_generic_plan",
            cfg.schema
        );
        let options = match pg.get_options() {
            Some(o) => format!("{o} {ours}"),
            None => ours,
        };
        pg.options(options);
        if pg.get_application_name().is_none() {
            pg.application_name(format!("omega-lockstore {session}"));
        }
        let listener_name = format!("{} listener", pg.get_application_name().unwrap_or_default());
        let mgr = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(cfg.pool_size)
            .build()
            .expect("a pool without timeouts needs no runtime to build");
        Ok(Db {
            pool,
            times: Times::new(cfg.clock),
            channel: format!("omega_locks.{}", cfg.schema),
            listener_name,
            cfg,
            migrated: OnceCell::new(),
        })
    }

    /// The connection settings of the pool (the listener connects with the same).
    pub fn pg_config(&self) -> tokio_postgres::Config {
        let mut pg = self.cfg.pg.clone();
        pg.application_name(&self.listener_name);
        pg
    }

    /// One row of `sql`.
    pub async fn one(&self, sql: &'static str, params: &Params<'_>) -> Result<Row, Failure> {
        self.one_with(sql, |_| params.to_vec()).await
    }

    /// One row of `sql`, with parameters built per attempt: `params(retry)`, where `retry`
    /// says an earlier attempt may have reached the server (its reply was lost).
    pub async fn one_with<'a>(
        &self,
        sql: &'static str,
        params: impl Fn(bool) -> Vec<&'a (dyn ToSql + Sync)>,
    ) -> Result<Row, Failure> {
        let mut rows = self.rows_with(sql, params).await?;
        if rows.len() != 1 {
            return Err(Failure::Fatal(format!(
                "expected one row from the lock store, got {}",
                rows.len()
            )));
        }
        Ok(rows.pop().expect("checked: one row"))
    }

    /// Every row of `sql`, retrying lost connections for up to `retry_for`.
    pub async fn rows(&self, sql: &'static str, params: &Params<'_>) -> Result<Vec<Row>, Failure> {
        self.rows_with(sql, |_| params.to_vec()).await
    }

    async fn rows_with<'a>(
        &self,
        sql: &'static str,
        params: impl Fn(bool) -> Vec<&'a (dyn ToSql + Sync)>,
    ) -> Result<Vec<Row>, Failure> {
        let give_up = Instant::now() + self.cfg.retry_for;
        let mut backoff = Duration::from_millis(20);
        let mut retry = false;
        loop {
            let r = {
                let _hold = self.times.hold();
                self.attempt(sql, &params(retry)).await
            };
            match r {
                Err(Failure::Connection(m)) if Instant::now() + backoff < give_up => {
                    tracing::debug!(error = %m, "lock store request failed; retrying");
                    retry = true;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                r => return r,
            }
        }
    }

    async fn attempt(&self, sql: &'static str, params: &Params<'_>) -> Result<Vec<Row>, Failure> {
        let client = self.client().await?;
        let r = match self.times.clock() {
            Clock::Server => {
                match tokio::time::timeout(self.cfg.request_timeout, run(&client, sql, params))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Err(Failure::Connection(format!(
                        "no answer within {:?}",
                        self.cfg.request_timeout
                    ))),
                }
            }
            Clock::Tokio => run(&client, sql, params).await,
        };
        if matches!(r, Err(Failure::Connection(_))) {
            // Never hand a connection in doubt to the next request.
            let _ = Object::take(client);
        }
        r
    }

    /// A pooled connection to a migrated schema.
    async fn client(&self) -> Result<Object, Failure> {
        let client = self.pool.get().await?;
        self.migrated
            .get_or_try_init(|| migrate(&client, &self.cfg.schema))
            .await?;
        Ok(client)
    }

    /// Connects (and migrates) now, once: a store that cannot be reached at start is
    /// reported at once rather than after the retry budget.
    pub async fn ping(&self) -> Result<(), Failure> {
        let _hold = self.times.hold();
        self.attempt("SELECT 1", &[]).await.map(drop)
    }
}

async fn run(client: &Object, sql: &'static str, params: &Params<'_>) -> Result<Vec<Row>, Failure> {
    let stmt = client.prepare_cached(sql).await?;
    Ok(client.query(&stmt, params).await?)
}

/// The statements, one per SQL function. TTLs travel as microseconds.
pub(crate) mod sql {
    /// The columns of an `outcome`.
    macro_rules! outcome {
        ($call:literal) => {
            concat!(
                "SELECT status, fences, resource, holder, holder_mode, position, others, ",
                "expiry_us, edges, grants FROM ",
                $call
            )
        };
    }

    pub const ACQUIRE: &str = outcome!(
        "acquire($1, $2, $3, $4, $5, $6, $7::bigint * interval '1 microsecond', $8, $9, \
         $10::bigint * interval '1 microsecond', $11, $12, $13, $14, $15)"
    );
    pub const CHECK: &str = outcome!("check_wait($1, $2, $3)");
    pub const TIME_OUT: &str = outcome!("time_out($1, $2, $3)");
    pub const LEAVE: &str = "SELECT n, grants FROM leave($1, $2, $3)";
    pub const RELEASE: &str = "SELECT n, grants FROM release($1, $2, $3)";
    pub const RELEASE_OWNER: &str = "SELECT n, grants FROM release_owner($1, $2)";
    pub const RELEASE_SESSION: &str = "SELECT n, grants FROM release_session($1, $2)";
    pub const SWEEP: &str = "SELECT n, grants FROM sweep($1)";
    pub const RENEW: &str = "SELECT renew($1, $2, $3::bigint * interval '1 microsecond', $4)";
    pub const KEEPALIVE: &str = "SELECT fences, reqs FROM \
        keepalive($1, $2, $3, $4, $5::bigint * interval '1 microsecond', $6)";
    pub const STALE_COUNT: &str = "SELECT stale_count($1)";
    pub const HOLDERS: &str = "SELECT owner_id, mode, n FROM holders($1, $2)";
    pub const REGISTER_OWNER: &str = "SELECT ok, grants FROM \
        register_owner($1, $2, $3::bigint * interval '1 microsecond', $4)";
    pub const HEARTBEAT_OWNER: &str = "SELECT ok, grants FROM heartbeat_owner($1, $2)";
    pub const SWEEP_OWNERS: &str = "SELECT swept, counts, grants FROM sweep_owners($1)";
    pub const DEREGISTER_OWNER: &str = "SELECT n, grants FROM deregister_owner($1, $2)";
    pub const LIST_OWNERS: &str = "SELECT owner_id, metadata, ttl_us, since_us, last_heartbeat, \
        held FROM list_owners($1)";
}

/// A duration as the microseconds the statements take.
pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
