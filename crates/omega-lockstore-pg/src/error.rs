//! [`ConfigError`] (bad settings) and the classification of database failures into the
//! ones worth retrying (the connection) and the rest.

use std::sync::Arc;
use std::time::Duration;

use omega_sched::LockError;

/// The store cannot be built as configured.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL does not parse.
    #[error("lock store URL {url:?}: {reason}")]
    Url {
        /// The URL, password redacted.
        url: String,
        /// Why.
        reason: String,
    },
    /// The schema is not a plain identifier.
    #[error(
        "lock store schema {schema:?} must be a plain lower-case identifier \
         ([a-z_][a-z0-9_]*, at most 40 characters)"
    )]
    Schema {
        /// The name given.
        schema: String,
    },
    /// An interval is zero.
    #[error("lock store {what} must be greater than zero")]
    Zero {
        /// Which.
        what: &'static str,
    },
    /// Renewals would come after the leases they renew ran out.
    #[error("lock store keepalive interval {every:?} must be shorter than the lease TTL {ttl:?}")]
    Keepalive {
        /// The keepalive interval.
        every: Duration,
        /// The lease TTL.
        ttl: Duration,
    },
}

/// A failed database request, as the retry loop sees it.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The connection failed or was lost (or the server is restarting): another connection
    /// may succeed.
    Connection(String),
    /// The database refused the request: retrying will not help.
    Fatal(String),
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::Connection(m) | Failure::Fatal(m) => m,
        }
    }

    /// As a [`LockError::Store`], saying what was attempted.
    pub fn lock_error(&self, what: &str) -> LockError {
        LockError::Store {
            message: Arc::from(format!("{what}: {}", self.message())),
        }
    }
}

/// SQLSTATEs after which a fresh connection may succeed: connection exceptions (class 08),
/// operator intervention (57P01 `pg_terminate_backend`, 57P02 crash shutdown, 57P03 cannot
/// connect now), too many connections, and a serialization hiccup.
fn retryable_state(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01"
        )
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        let text = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => {
                // The Display of a client-side error is terse ("db error", "error
                // connecting to server"): add its source.
                let mut s = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(cause) = src {
                    s.push_str(": ");
                    s.push_str(&cause.to_string());
                    src = cause.source();
                }
                s
            }
        };
        match e.as_db_error() {
            Some(db) if !retryable_state(db.code().code()) => Failure::Fatal(text),
            _ => Failure::Connection(text),
        }
    }
}

impl From<deadpool_postgres::PoolError> for Failure {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => Failure::from(e),
            other => Failure::Connection(other.to_string()),
        }
    }
}
