//! The Lisp face of the scheduler's lock manager (SPEC §4, §6.4): the natives behind the
//! `with-lock` / `with-locks` macros (see `async_prelude.lisp`) and `lock-stats`, installed with
//! the async surface (`async_surface.rs`) because they close over the runtime's scheduler.
//!
//! `%lock-acquire` suspends its task until every named lock is granted (all or nothing) and
//! returns a [`LockHold`]; `%lock-release` drops its guards. The macros release in a
//! `finally`, and the scheduler releases whatever a task still holds when it ends, so a lock
//! is never left behind. Lock errors become Lisp errors of kinds `:lock-timeout`,
//! `:lock-conflict`, `:deadlock` (and `:cancelled` for a cancelled wait).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use omega_sched::{LockError, LockMode, LockSpec, StoreGuard};

use super::{def_host, def_suspending};
use crate::error::{ErrorKind, LispError};
use crate::native::Suspension;
use crate::state::{AsyncCtx, State};
use crate::value::{Foreign, Value};

/// Locks held by a `with-lock`/`with-locks` form (from the scheduler's lock store).
pub(crate) struct LockHold {
    guards: RefCell<Vec<Box<dyn StoreGuard>>>,
}

impl std::fmt::Debug for LockHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let guards = self.guards.borrow();
        let names: Vec<&str> = guards.iter().map(|g| g.resource()).collect();
        f.debug_struct("LockHold")
            .field("resources", &names)
            .finish()
    }
}

impl Foreign for LockHold {
    fn type_name(&self) -> &str {
        "lock"
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A lock error as a Lisp error.
pub(crate) fn lock_error(e: &LockError) -> LispError {
    let kind = match e {
        LockError::Timeout { .. } => ErrorKind::LockTimeout,
        LockError::Conflict { .. } | LockError::UpgradeConflict { .. } => ErrorKind::LockConflict,
        LockError::Deadlock { .. } => ErrorKind::Deadlock,
        LockError::Cancelled { .. } => ErrorKind::Cancelled,
        _ => ErrorKind::Error,
    };
    LispError::new(kind, e.to_string())
}

fn mode_of(who: &str, v: &Value) -> Result<LockMode, LispError> {
    match v {
        Value::Keyword(k) if &*k.name() == "read" => Ok(LockMode::Read),
        Value::Keyword(k) if &*k.name() == "write" => Ok(LockMode::Write),
        other => Err(LispError::type_error(
            &format!("{who} :mode"),
            ":read or :write",
            other,
        )),
    }
}

fn names_of(who: &str, v: &Value) -> Result<Vec<String>, LispError> {
    if let Some(s) = v.as_str() {
        return Ok(vec![s.to_string()]);
    }
    let items = v
        .list_to_vec()
        .ok_or_else(|| LispError::type_error(who, "a resource name or a list of names", v))?;
    if items.is_empty() {
        return Err(LispError::new(
            ErrorKind::Error,
            format!("{who} needs at least one resource name"),
        ));
    }
    items
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| LispError::type_error(who, "resource names (strings)", x))
        })
        .collect()
}

/// Installs `%lock-acquire`, `%lock-release` and `lock-stats`.
pub(crate) fn install(st: &mut State, ctx: &Rc<AsyncCtx>) {
    let c = ctx.clone();
    def_suspending(st, "%lock-acquire", 4, Some(4), move |args| {
        let who = args
            .first()
            .and_then(|v| v.as_str())
            .unwrap_or("with-lock")
            .to_string();
        let names = names_of(&who, &args[1])?;
        let mode = mode_of(&who, &args[2])?;
        let timeout = match &args[3] {
            Value::Nil => None,
            v => Some(Duration::from_millis(
                v.as_int()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| {
                        LispError::type_error(&format!("{who} :timeout"), "milliseconds", v)
                    })?,
            )),
        };
        // The scheduler's lock store: its in-memory manager, or the one the embedder gave
        // (e.g. PostgreSQL shared with other processes).
        let store = c.sched.lock_store();
        let items: Vec<(&str, LockMode)> = names.iter().map(|n| (n.as_str(), mode)).collect();
        let mut spec = LockSpec::batch(&items);
        if let Some(t) = timeout {
            spec = spec.timeout(t);
        }
        let acquired = store.acquire_boxed(spec);
        Ok(Suspension::new(async move {
            let guards = acquired.await.map_err(|e| lock_error(&e))?;
            Ok(Value::foreign(LockHold {
                guards: RefCell::new(guards),
            }))
        }))
    });

    def_host(st, "%lock-release", 1, Some(1), |args| {
        if let Some(Value::Foreign(f)) = args.first() {
            if let Some(h) = f.as_any().downcast_ref::<LockHold>() {
                h.guards.borrow_mut().clear();
                return Ok(Value::Nil);
            }
        }
        Err(LispError::new(
            ErrorKind::Error,
            "%lock-release expects what %lock-acquire returned",
        ))
    });

    let c = ctx.clone();
    def_host(st, "lock-stats", 0, Some(0), move |_| {
        let t = c.sched.locks().totals();
        let n = |x: u64| Value::Int(i64::try_from(x).unwrap_or(i64::MAX));
        Ok(Value::map([
            (Value::keyword("acquisitions-read"), n(t.acquisitions_read)),
            (
                Value::keyword("acquisitions-write"),
                n(t.acquisitions_write),
            ),
            (Value::keyword("contended"), n(t.contended)),
            (Value::keyword("timeouts"), n(t.timeouts)),
            (Value::keyword("deadlocks"), n(t.deadlocks)),
            (Value::keyword("resources"), n(t.resources as u64)),
            (Value::keyword("holders"), n(t.holders as u64)),
            (Value::keyword("waiters"), n(t.waiters as u64)),
        ]))
    });
}
