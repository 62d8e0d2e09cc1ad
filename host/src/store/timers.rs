//! Timers: when the scheduler looks at an alert, a rule's windows, a customer's cohorts or a
//! maintenance again. Kept in time order; a timer set in a transaction is `Tx::set_timer`.

use jiff::Timestamp;

use super::{Store, StoreResult, keys};

/// A timer that fell (or will fall) due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub due: Timestamp,
    pub tenant: String,
    /// The rule (or cohort, or maintenance) it is for.
    pub rule: String,
    /// The alert's scope key, the customer, or the moment; empty for a rule's own tick.
    pub scope: String,
    /// What it was set with (a rule's version, for its windows' moves).
    pub tag: String,
}

impl Store {
    /// The earliest timer. Entries that cannot be read are dropped on the way.
    pub fn next_timer(&self) -> StoreResult<Option<Timer>> {
        while let Some((key, tag)) = self.timers.first()? {
            match keys::parse_timer(&key) {
                Some((due, tenant, rule, scope)) => {
                    return Ok(Some(Timer {
                        due,
                        tenant: tenant.to_string(),
                        rule: rule.to_string(),
                        scope: scope.to_string(),
                        tag: String::from_utf8_lossy(&tag).into_owned(),
                    }));
                }
                None => {
                    tracing::warn!(key = ?key, "dropping a timer that cannot be read");
                    self.timers.remove(&key)?;
                }
            }
        }
        Ok(None)
    }

    /// Sets a timer outside a transaction.
    pub fn set_timer(&self, due: Timestamp, tenant: &str, rule: &str, scope: &str, tag: &str) -> StoreResult<()> {
        self.timers.insert(keys::timer(due, tenant, rule, scope), tag.as_bytes())?;
        Ok(())
    }

    /// Removes a timer outside a transaction (one that failed and is dropped).
    pub fn remove_timer(&self, timer: &Timer) -> StoreResult<()> {
        self.timers.remove(keys::timer(timer.due, &timer.tenant, &timer.rule, &timer.scope))?;
        Ok(())
    }
}
