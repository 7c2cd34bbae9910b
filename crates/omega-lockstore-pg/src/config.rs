//! [`PgStoreConfig`]: where the store lives and how it keeps its leases.

use std::str::FromStr;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::ConfigError;

/// The environment variable `omega run` reads for the store's URL (`--lock-store` wins).
pub const LOCK_STORE_ENV: &str = "OMEGA_LOCK_STORE";
/// The environment variable naming the schema (default [`DEFAULT_SCHEMA`]).
pub const LOCK_SCHEMA_ENV: &str = "OMEGA_LOCK_SCHEMA";
/// The schema the tables live in unless configured.
pub const DEFAULT_SCHEMA: &str = "omega_locks";
/// A grant's lease when the acquisition names no TTL: renewed by its process every third of
/// it, lost this long after the process stops renewing (crash, partition).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// How a [`PgLockStore`](crate::PgLockStore) connects and keeps its leases.
///
/// ```
/// use std::time::Duration;
/// use omega_lockstore_pg::PgStoreConfig;
///
/// let cfg = PgStoreConfig::new("postgres://postgres@127.0.0.1:5432/test")
///     .unwrap()
///     .schema("omega_locks")
///     .lease_ttl(Duration::from_secs(10));
/// assert_eq!(cfg.schema_name(), "omega_locks");
/// assert!(PgStoreConfig::new("mysql://nope").is_err());
/// ```
#[derive(Clone, Debug)]
pub struct PgStoreConfig {
    pub(crate) pg: tokio_postgres::Config,
    pub(crate) url: String,
    pub(crate) schema: String,
    pub(crate) pool_size: usize,
    pub(crate) lease_ttl: Duration,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) poll: Duration,
    pub(crate) sweep_every: Duration,
    pub(crate) retry_for: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) clock: Clock,
}

/// The URL with any password replaced, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &userinfo[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl PgStoreConfig {
    /// Parses a `postgres://user[:password]@host[:port]/db[?…]` URL (or a libpq key=value
    /// string). Nothing connects yet: the store connects and migrates on first use.
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        let shown = redact(url);
        if !(url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || url.contains('='))
        {
            return Err(ConfigError::Url {
                url: shown,
                reason: "expected postgres://user@host:port/database".into(),
            });
        }
        let mut pg = tokio_postgres::Config::from_str(url).map_err(|e| ConfigError::Url {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(Duration::from_secs(5));
        }
        pg.keepalives(true)
            .keepalives_idle(Duration::from_secs(15))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        Ok(PgStoreConfig {
            pg,
            url: shown,
            schema: DEFAULT_SCHEMA.to_string(),
            pool_size: 4,
            lease_ttl: DEFAULT_LEASE_TTL,
            keepalive: None,
            poll: Duration::from_secs(1),
            sweep_every: Duration::from_secs(5),
            retry_for: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            clock: Clock::Server,
        })
    }

    /// From [`LOCK_STORE_ENV`] (and [`LOCK_SCHEMA_ENV`]); `Ok(None)` when it is not set.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        let Ok(url) = std::env::var(LOCK_STORE_ENV) else {
            return Ok(None);
        };
        let mut cfg = PgStoreConfig::new(&url)?;
        if let Ok(s) = std::env::var(LOCK_SCHEMA_ENV) {
            cfg = cfg.schema(&s);
        }
        Ok(Some(cfg))
    }

    /// The schema holding the tables (created on first use). Stores sharing locks must use
    /// the same schema; different schemas never see each other's locks. Must be a plain
    /// lower-case identifier (`[a-z_][a-z0-9_]*`, at most 40 characters).
    pub fn schema(mut self, schema: &str) -> Self {
        self.schema = schema.to_string();
        self
    }

    /// The schema name.
    pub fn schema_name(&self) -> &str {
        &self.schema
    }

    /// The URL, password redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Database connections for lock operations (the listener has one more). Default 4.
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// The lease of a grant made without a TTL (default [`DEFAULT_LEASE_TTL`]): the store
    /// renews it every third of it while it can reach the database; a holder that stops
    /// (killed, partitioned) loses the lock this long after its last renewal.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// How often leases and waits are renewed (default: a third of the lease TTL).
    pub fn keepalive_every(mut self, d: Duration) -> Self {
        self.keepalive = Some(d);
        self
    }

    /// A waiter's fallback poll, should a notification be lost (default 1 s). Hand-offs
    /// arrive by LISTEN/NOTIFY; this only bounds how late a lost one is noticed.
    pub fn poll_every(mut self, d: Duration) -> Self {
        self.poll = d;
        self
    }

    /// How often expired leases, waits and owners are swept (default 5 s; also at start).
    pub fn sweep_every(mut self, d: Duration) -> Self {
        self.sweep_every = d;
        self
    }

    /// How long an operation keeps retrying while the database is unreachable before it
    /// fails with `LockError::Store` (default 10 s).
    pub fn retry_for(mut self, d: Duration) -> Self {
        self.retry_for = d;
        self
    }

    /// How long one request may take before its connection is presumed dead (default 10 s).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Whose clock decides expiries (default [`Clock::Server`]).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets `application_name` on every connection (visible in `pg_stat_activity`).
    pub fn application_name(mut self, name: &str) -> Self {
        self.pg.application_name(name);
        self
    }

    pub(crate) fn keepalive_interval(&self) -> Duration {
        self.keepalive.unwrap_or(self.lease_ttl / 3)
    }

    /// Checks what cannot be checked while building.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.schema;
        let ok = !s.is_empty()
            && s.len() <= 40
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(ConfigError::Schema { schema: s.clone() });
        }
        for (what, d) in [
            ("lease TTL", self.lease_ttl),
            ("keepalive interval", self.keepalive_interval()),
            ("poll interval", self.poll),
            ("sweep interval", self.sweep_every),
        ] {
            if d.is_zero() {
                return Err(ConfigError::Zero { what });
            }
        }
        if self.keepalive_interval() >= self.lease_ttl {
            return Err(ConfigError::Keepalive {
                every: self.keepalive_interval(),
                ttl: self.lease_ttl,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_passwords_never_shown() {
        let e = PgStoreConfig::new("postgres://u:secret@h:99999/db").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(e.to_string().contains("postgres://u:***@h:99999/db"), "{e}");
        assert!(PgStoreConfig::new("redis://x").is_err());
        let c = PgStoreConfig::new("postgres://u:pw@localhost/db").unwrap();
        assert_eq!(c.url(), "postgres://u:***@localhost/db");
    }

    #[test]
    fn schema_and_intervals_are_validated() {
        let c = PgStoreConfig::new("postgres://u@h/db").unwrap();
        assert!(c.clone().validate().is_ok());
        let e = c.clone().schema("Bad-Name").validate().unwrap_err();
        assert!(e.to_string().contains("\"Bad-Name\""), "{e}");
        assert!(c.clone().schema("x; drop table y").validate().is_err());
        let e = c
            .clone()
            .lease_ttl(Duration::from_secs(1))
            .keepalive_every(Duration::from_secs(2))
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("keepalive"), "{e}");
        assert!(c.poll_every(Duration::ZERO).validate().is_err());
    }
}
