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
    /// The earliest timer of a tenant `ours` picks. Entries that cannot be read are dropped on
    /// the way.
    pub fn next_timer(&self, ours: impl Fn(&str) -> bool) -> StoreResult<Option<Timer>> {
        self.timers_of(ours, |_| true, 1).map(|mut timers| timers.pop())
    }

    /// Up to `most` timers of the tenants `ours` picks that are due at `now`, earliest first.
    pub fn due_timers(&self, now: Timestamp, most: usize, ours: impl Fn(&str) -> bool) -> StoreResult<Vec<Timer>> {
        self.timers_of(ours, |due| due <= now, most)
    }

    /// Up to `most` timers of the tenants `ours` picks, in time order, as long as `wanted` takes
    /// their due time. Entries that cannot be read are dropped on the way.
    fn timers_of(
        &self,
        ours: impl Fn(&str) -> bool,
        wanted: impl Fn(Timestamp) -> bool,
        most: usize,
    ) -> StoreResult<Vec<Timer>> {
        let mut timers = Vec::new();
        for entry in self.timers.iter() {
            if timers.len() == most {
                break;
            }
            let (key, tag) = entry?;
            match keys::parse_timer(&key) {
                Some((due, ..)) if !wanted(due) => break,
                Some((_, tenant, ..)) if !ours(tenant) => {}
                Some((due, tenant, rule, scope)) => timers.push(Timer {
                    due,
                    tenant: tenant.to_string(),
                    rule: rule.to_string(),
                    scope: scope.to_string(),
                    tag: String::from_utf8_lossy(&tag).into_owned(),
                }),
                None => {
                    tracing::warn!(key = ?key, "dropping a timer that cannot be read");
                    self.timers.remove(&key)?;
                }
            }
        }
        Ok(timers)
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
