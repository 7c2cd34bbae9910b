//! `omega-pg-worker`: one process using the PostgreSQL lock store, driven line by line on
//! stdin, answering one line per command on stdout. It is the "other process" of the
//! crate's multi-process tests (and a handy probe of a live store).
//!
//! ```text
//! omega-pg-worker --schema S [--lease-ttl-ms N] [--keepalive-ms N] [--poll-ms N]
//!                            [--sweep-ms N]            (URL from OMEGA_PG_URL)
//! ```
//!
//! It prints `session <uuid>` first. Commands (owners are names; `-` = none):
//!
//! | command | answer |
//! |---|---|
//! | `acquire OWNER read\|write R1,R2 TTL_MS\|- TIMEOUT_MS\|-` | `granted F1,F2` or `error KIND MESSAGE` |
//! | `try OWNER read\|write R1,R2` | the same, never waiting |
//! | `release F` (drop the guard) / `release-now F` (and wait) | `released` / `released true\|false` |
//! | `renew F TTL_MS` | `renewed` or `error KIND MESSAGE` |
//! | `held F` | `held true\|false` |
//! | `increment OWNER RESOURCE N` — N fenced read-modify-write increments of the row `RESOURCE` of the table `counter` | `incremented N rejected R` |
//! | `acquire-log OWNER RESOURCE LABEL` — wait, insert LABEL into `log`, release | `logged LABEL F` |
//! | `mixed OWNER N SEED` — N rounds: take one or two of the rows a, b, c, d of `counter` (a batch when two; mostly a and b), increment each as `increment` does | `mixed a=A b=B c=C d=D rejected R` |
//! | `register OWNER TTL_MS` | `registered` or `error …` |
//! | `heartbeat OWNER EVERY_MS` / `stop-heartbeat` | `heartbeating` / `stopped` |
//! | `close` | `closed N` |
//! | `exit` | (exits) |

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use omega_lockstore_pg::{PgGuard, PgLockStore, PgStoreConfig};
use omega_sched::{
    spawn_heartbeat, Heartbeat, LockError, LockMode, LockSpec, LockStore, Metadata, OwnerRegistry,
    StoreGuard,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

struct Worker {
    store: PgLockStore,
    held: HashMap<u64, PgGuard>,
    heartbeat: Option<Heartbeat>,
    data: tokio_postgres::Client,
}

fn ms(s: &str) -> Option<Duration> {
    s.parse().ok().map(Duration::from_millis)
}

fn error(e: &LockError) -> String {
    format!("error {} {}", e.kind(), e)
}

fn spec(owner: &str, mode: &str, resources: &str) -> Result<LockSpec, String> {
    let mode = match mode {
        "read" => LockMode::Read,
        "write" => LockMode::Write,
        other => return Err(format!("error usage mode {other:?}")),
    };
    let items: Vec<(&str, LockMode)> = resources.split(',').map(|r| (r, mode)).collect();
    let mut s = LockSpec::batch(&items);
    if owner != "-" {
        s = s.owner(owner);
    }
    Ok(s)
}

impl Worker {
    fn keep(&mut self, guards: Vec<PgGuard>) -> String {
        let fences: Vec<String> = guards.iter().map(|g| g.fence().to_string()).collect();
        for g in guards {
            self.held.insert(g.fence(), g);
        }
        format!("granted {}", fences.join(","))
    }

    async fn command(&mut self, words: &[&str]) -> Option<String> {
        Some(match *words {
            ["acquire", owner, mode, resources, ttl, timeout] => {
                let mut s = match spec(owner, mode, resources) {
                    Ok(s) => s,
                    Err(e) => return Some(e),
                };
                if let Some(d) = ms(ttl) {
                    s = s.ttl(d);
                }
                if let Some(d) = ms(timeout) {
                    s = s.timeout(d);
                }
                match self.store.acquire(s).await {
                    Ok(g) => self.keep(g),
                    Err(e) => error(&e),
                }
            }
            ["try", owner, mode, resources] => {
                let s = match spec(owner, mode, resources) {
                    Ok(s) => s,
                    Err(e) => return Some(e),
                };
                match self.store.try_acquire(s).await {
                    Ok(g) => self.keep(g),
                    Err(e) => error(&e),
                }
            }
            ["release", f] => {
                self.held.remove(&f.parse().unwrap_or(0));
                "released".into()
            }
            ["release-now", f] => match self.held.remove(&f.parse().unwrap_or(0)) {
                Some(g) => match g.release().await {
                    Ok(b) => format!("released {b}"),
                    Err(e) => error(&e),
                },
                None => "released false".into(),
            },
            ["renew", f, ttl] => match (self.held.get(&f.parse().unwrap_or(0)), ms(ttl)) {
                (Some(g), Some(d)) => match g.renew(d).await {
                    Ok(()) => "renewed".into(),
                    Err(e) => error(&e),
                },
                _ => "error usage renew FENCE TTL_MS of a held fence".into(),
            },
            ["held", f] => format!(
                "held {}",
                self.held
                    .get(&f.parse().unwrap_or(0))
                    .is_some_and(|g| g.is_held())
            ),
            ["increment", owner, resource, n] => self.increment(owner, resource, n).await,
            ["mixed", owner, n, seed] => self.mixed(owner, n, seed).await,
            ["acquire-log", owner, resource, label] => {
                let g = match self
                    .store
                    .acquire(LockSpec::new(resource, LockMode::Write).owner(owner))
                    .await
                {
                    Ok(mut g) => g.remove(0),
                    Err(e) => return Some(error(&e)),
                };
                let fence = g.fence() as i64;
                if let Err(e) = self
                    .data
                    .execute(
                        "INSERT INTO log (label, fence) VALUES ($1, $2)",
                        &[&label, &fence],
                    )
                    .await
                {
                    return Some(format!("error data {e}"));
                }
                drop(g);
                format!("logged {label} {fence}")
            }
            ["register", owner, ttl] => {
                let reg = self.store.registry();
                let meta: Metadata = [("pid".to_string(), std::process::id().to_string())].into();
                match reg.register(owner, meta, ms(ttl)?).await {
                    Ok(_) => "registered".into(),
                    Err(e) => format!("error registry {e}"),
                }
            }
            ["heartbeat", owner, every] => {
                let reg: Arc<dyn OwnerRegistry> = Arc::new(self.store.registry());
                self.heartbeat = Some(spawn_heartbeat(reg, owner.into(), ms(every)?));
                "heartbeating".into()
            }
            ["stop-heartbeat"] => {
                self.heartbeat = None;
                "stopped".into()
            }
            ["close"] => match self.store.close().await {
                Ok(n) => format!("closed {n}"),
                Err(e) => error(&e),
            },
            _ => format!("error usage unknown command {:?}", words.join(" ")),
        })
    }

    /// One fenced read-modify-write increment of `counter[resource]` under `fence`: false
    /// when the row had seen a newer fence (a stale holder is refused).
    async fn bump(&self, resource: &str, fence: i64) -> Result<bool, String> {
        let value: i64 = self
            .data
            .query_one("SELECT value FROM counter WHERE name = $1", &[&resource])
            .await
            .map_err(|e| format!("error data {e}"))?
            .get(0);
        // Let the others run between the read and the write: a broken lock shows.
        tokio::task::yield_now().await;
        let written = self
            .data
            .execute(
                "UPDATE counter SET value = $2, fence = $3 WHERE name = $1 AND fence < $3",
                &[&resource, &(value + 1), &fence],
            )
            .await
            .map_err(|e| format!("error data {e}"))?;
        Ok(written == 1)
    }

    /// `n` increments of `counter[resource]`, each under the write lock.
    async fn increment(&mut self, owner: &str, resource: &str, n: &str) -> String {
        let n: usize = n.parse().unwrap_or(0);
        let mut rejected = 0;
        for _ in 0..n {
            let g = match self
                .store
                .acquire(LockSpec::new(resource, LockMode::Write).owner(owner))
                .await
            {
                Ok(mut g) => g.remove(0),
                Err(e) => return error(&e),
            };
            match self.bump(resource, g.fence() as i64).await {
                Ok(true) => {}
                Ok(false) => rejected += 1,
                Err(e) => return e,
            }
            drop(g);
        }
        format!("incremented {n} rejected {rejected}")
    }

    /// `n` rounds over the rows a, b, c, d: one or two of them (a batch when two, pseudo-
    /// random from `seed`, mostly a and b), each incremented under the write lock.
    async fn mixed(&mut self, owner: &str, n: &str, seed: &str) -> String {
        const ROWS: [&str; 4] = ["a", "b", "c", "d"];
        let n: usize = n.parse().unwrap_or(0);
        let mut seed: u64 = seed.parse().unwrap_or(1);
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize
        };
        let mut counts = [0u64; 4];
        let mut rejected = 0;
        for _ in 0..n {
            // Mostly a and b, so singles and batches collide often; c and d now and then.
            let first = if next() % 4 == 0 {
                2 + next() % 2
            } else {
                next() % 2
            };
            let mut picked = vec![first];
            if next() % 2 == 0 {
                picked.push(first ^ 1);
            }
            let items: Vec<(&str, LockMode)> =
                picked.iter().map(|i| (ROWS[*i], LockMode::Write)).collect();
            let guards = match self
                .store
                .acquire(LockSpec::batch(&items).owner(owner))
                .await
            {
                Ok(g) => g,
                Err(e) => return error(&e),
            };
            for g in &guards {
                match self.bump(g.resource(), g.fence() as i64).await {
                    Ok(true) => {}
                    Ok(false) => rejected += 1,
                    Err(e) => return e,
                }
                if let Some(i) = ROWS.iter().position(|r| *r == g.resource()) {
                    counts[i] += 1;
                }
            }
            drop(guards);
        }
        format!(
            "mixed a={} b={} c={} d={} rejected {rejected}",
            counts[0], counts[1], counts[2], counts[3]
        )
    }
}

async fn say(out: &mut tokio::io::Stdout, line: String) {
    let _ = out.write_all(format!("{line}\n").as_bytes()).await;
    let _ = out.flush().await;
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Ok(url) = std::env::var("OMEGA_PG_URL") else {
        eprintln!("omega-pg-worker: set OMEGA_PG_URL");
        return ExitCode::from(2);
    };
    let Some(schema) = arg(&args, "--schema") else {
        eprintln!("omega-pg-worker: --schema S is required");
        return ExitCode::from(2);
    };
    let mut cfg = match PgStoreConfig::new(&url) {
        Ok(c) => c.schema(&schema),
        Err(e) => {
            eprintln!("omega-pg-worker: {e}");
            return ExitCode::from(2);
        }
    };
    let setting = |name| arg(&args, name).as_deref().and_then(ms);
    if let Some(d) = setting("--lease-ttl-ms") {
        cfg = cfg.lease_ttl(d);
    }
    if let Some(d) = setting("--keepalive-ms") {
        cfg = cfg.keepalive_every(d);
    }
    if let Some(d) = setting("--poll-ms") {
        cfg = cfg.poll_every(d);
    }
    if let Some(d) = setting("--sweep-ms") {
        cfg = cfg.sweep_every(d);
    }
    let store = match PgLockStore::connect(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("omega-pg-worker: {e}");
            return ExitCode::from(1);
        }
    };
    let data = match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            client
        }
        Err(e) => {
            eprintln!("omega-pg-worker: data connection: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = data
        .batch_execute(&format!("SET search_path TO \"{schema}\""))
        .await
    {
        eprintln!("omega-pg-worker: {e}");
        return ExitCode::from(1);
    }
    let mut w = Worker {
        store,
        held: HashMap::new(),
        heartbeat: None,
        data,
    };
    let mut out = tokio::io::stdout();
    say(&mut out, format!("session {}", w.store.session())).await;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"exit") {
            break;
        }
        let answer = w
            .command(&words)
            .await
            .unwrap_or_else(|| format!("error usage {line:?}"));
        say(&mut out, answer).await;
    }
    ExitCode::SUCCESS
}
