//! What the SQL functions answer, parsed: [`Outcome`] (an `outcome` row), [`Released`] (a
//! `released` row) and the hand-off payloads ([`parse_grant`]).

use omega_sched::LockMode;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::Failure;

/// Why a request cannot be granted now: the first blocked resource, a conflicting holder
/// (owner as stored, mode) and the queue position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Blocker {
    pub resource: String,
    pub holder: Option<(String, LockMode)>,
    pub position: usize,
}

#[derive(Debug)]
pub(crate) enum Kind {
    /// Fences, one per item (items sorted by name).
    Granted(Vec<u64>),
    Waiting {
        /// Microseconds until the next lease in the way expires.
        expiry_us: Option<i64>,
    },
    Conflict(Blocker),
    Upgrade {
        resource: String,
        others: usize,
    },
    Deadlock(serde_json::Value),
    Timeout(Blocker),
    /// The request is neither queued nor granted (its wait expired, or it left).
    Gone,
    /// Nothing was decided: ask again with `p_wide` (a wait that may close a cycle needs
    /// the whole wait-for graph).
    Wide,
}

/// One `outcome` row.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub kind: Kind,
    /// Hand-offs made on the way (payload form), for this process's waiters.
    pub grants: Vec<String>,
}

fn mode(s: Option<&str>) -> LockMode {
    match s {
        Some("write") => LockMode::Write,
        _ => LockMode::Read,
    }
}

/// Column `col` of an answer; a mismatch (a schema from another version) is a failure,
/// not a panic.
pub(crate) fn get<'a, T, I>(row: &'a Row, col: I) -> Result<T, Failure>
where
    T: tokio_postgres::types::FromSql<'a>,
    I: tokio_postgres::row::RowIndex + std::fmt::Display + Copy,
{
    row.try_get(col)
        .map_err(|e| Failure::Fatal(format!("unexpected lock store answer ({col}): {e}")))
}

impl Outcome {
    pub fn from_row(row: &Row) -> Result<Outcome, Failure> {
        let status: String = get(row, "status")?;
        let grants: Option<Vec<String>> = get(row, "grants")?;
        let blocker = || -> Result<Blocker, Failure> {
            let holder: Option<String> = get(row, "holder")?;
            let holder_mode: Option<String> = get(row, "holder_mode")?;
            let position: Option<i32> = get(row, "position")?;
            Ok(Blocker {
                resource: get::<Option<String>, _>(row, "resource")?.unwrap_or_default(),
                holder: holder.map(|h| (h, mode(holder_mode.as_deref()))),
                position: position.map_or(1, |p| usize::try_from(p).unwrap_or(1)),
            })
        };
        let kind = match status.as_str() {
            "granted" => {
                let fences: Vec<i64> = get(row, "fences")?;
                Kind::Granted(fences.into_iter().map(|f| f as u64).collect())
            }
            "waiting" => Kind::Waiting {
                expiry_us: get(row, "expiry_us")?,
            },
            "conflict" => Kind::Conflict(blocker()?),
            "timeout" => Kind::Timeout(blocker()?),
            "upgrade" => Kind::Upgrade {
                resource: get::<Option<String>, _>(row, "resource")?.unwrap_or_default(),
                others: get::<Option<i32>, _>(row, "others")?
                    .map_or(0, |n| usize::try_from(n).unwrap_or(0)),
            },
            "deadlock" => Kind::Deadlock(get(row, "edges")?),
            "gone" => Kind::Gone,
            "wide" => Kind::Wide,
            other => {
                return Err(Failure::Fatal(format!(
                    "unexpected lock store status {other:?}"
                )))
            }
        };
        Ok(Outcome {
            kind,
            grants: grants.unwrap_or_default(),
        })
    }
}

/// One `released` row: how many grants went, and the hand-offs that made.
#[derive(Debug)]
pub(crate) struct Released {
    pub n: usize,
    pub grants: Vec<String>,
}

impl Released {
    pub fn from_row(row: &Row) -> Result<Released, Failure> {
        let n: Option<i32> = get(row, "n")?;
        let grants: Option<Vec<String>> = get(row, "grants")?;
        Ok(Released {
            n: n.map_or(0, |n| usize::try_from(n).unwrap_or(0)),
            grants: grants.unwrap_or_default(),
        })
    }
}

/// `c <req>` → a waiting batch that should look at its state again.
pub(crate) fn parse_poke(payload: &str) -> Option<Uuid> {
    Uuid::parse_str(payload.strip_prefix("c ")?).ok()
}

/// `g <req> <fence>,<fence>…` → the request and its fences.
pub(crate) fn parse_grant(payload: &str) -> Option<(Uuid, Vec<u64>)> {
    let mut parts = payload.split(' ');
    if parts.next()? != "g" {
        return None;
    }
    let req = Uuid::parse_str(parts.next()?).ok()?;
    let fences = parts
        .next()?
        .split(',')
        .map(|f| f.parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    Some((req, fences))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_payloads_parse_and_junk_does_not() {
        let u = Uuid::new_v4();
        assert_eq!(parse_grant(&format!("g {u} 7,9")), Some((u, vec![7, 9])));
        assert_eq!(parse_grant(&format!("g {u} 12")), Some((u, vec![12])));
        assert_eq!(parse_grant("g nope 1"), None);
        assert_eq!(parse_grant(&format!("g {u} x")), None);
        assert_eq!(parse_grant("o swept 1 a"), None);
        assert_eq!(parse_grant(""), None);
        assert_eq!(parse_poke(&format!("c {u}")), Some(u));
        assert_eq!(parse_poke(&format!("g {u} 1")), None);
    }
}
