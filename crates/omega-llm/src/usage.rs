//! Usage accounting per model: calls, attempts and tokens, as a provider saw them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::types::Usage;

/// What one model has cost so far, as read from
/// [`OpenAiCompatible::usage_by_model`](crate::OpenAiCompatible::usage_by_model).
///
/// Every call ends in exactly one of `calls`, `failed` or `cancelled`, so their sum is the
/// number of calls started that have ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelUsage {
    /// Calls that returned a completion.
    pub calls: u64,
    /// Calls that ended in an error (after their retries).
    pub failed: u64,
    /// Calls whose future was dropped before they ended.
    pub cancelled: u64,
    /// HTTP attempts, retries included.
    pub attempts: u64,
    /// Prompt tokens of the completed calls, as the server reported them (or estimated).
    pub prompt_tokens: u64,
    /// Completion tokens of the completed calls.
    pub completion_tokens: u64,
}

/// How a call ended, for [`Ledger::finish`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ending {
    Completed(Usage),
    Failed,
    Cancelled,
}

/// The per-model table behind a mutex held only to add numbers.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    models: Mutex<BTreeMap<String, ModelUsage>>,
}

impl Ledger {
    fn with<R>(&self, model: &str, f: impl FnOnce(&mut ModelUsage) -> R) -> R {
        let mut models = self.models.lock().unwrap_or_else(|p| p.into_inner());
        let entry = match models.get_mut(model) {
            Some(e) => e,
            None => models.entry(model.to_string()).or_default(),
        };
        f(entry)
    }

    /// Counts one HTTP attempt.
    pub(crate) fn attempt(&self, model: &str) {
        self.with(model, |u| u.attempts += 1);
    }

    /// Counts how a call ended.
    pub(crate) fn finish(&self, model: &str, ending: Ending) {
        self.with(model, |u| match ending {
            Ending::Completed(usage) => {
                u.calls += 1;
                u.prompt_tokens += usage.prompt_tokens;
                u.completion_tokens += usage.completion_tokens;
            }
            Ending::Failed => u.failed += 1,
            Ending::Cancelled => u.cancelled += 1,
        });
    }

    /// A copy of the table.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, ModelUsage> {
        self.models
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Counts a call as cancelled unless it was finished: dropped futures (and streams) are
/// counted too.
#[derive(Debug)]
pub(crate) struct CallRecord {
    ledger: Arc<Ledger>,
    model: String,
    ended: bool,
}

impl CallRecord {
    pub(crate) fn new(ledger: Arc<Ledger>, model: String) -> Self {
        CallRecord {
            ledger,
            model,
            ended: false,
        }
    }

    pub(crate) fn attempt(&self) {
        self.ledger.attempt(&self.model);
    }

    pub(crate) fn finish(mut self, ending: Ending) {
        self.ended = true;
        self.ledger.finish(&self.model, ending);
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        if !self.ended {
            self.ledger.finish(&self.model, Ending::Cancelled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_ends_once() {
        let ledger = Arc::new(Ledger::default());
        let r = CallRecord::new(ledger.clone(), "m".into());
        r.attempt();
        r.attempt();
        r.finish(Ending::Completed(Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
        }));
        CallRecord::new(ledger.clone(), "m".into()).finish(Ending::Failed);
        drop(CallRecord::new(ledger.clone(), "m".into()));
        let m = ledger.snapshot()["m"];
        assert_eq!((m.calls, m.failed, m.cancelled, m.attempts), (1, 1, 1, 2));
        assert_eq!((m.prompt_tokens, m.completion_tokens), (3, 4));
    }
}
