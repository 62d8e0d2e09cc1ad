//! Incidents outside transactions (a transaction opens and changes them through `Tx`).

use super::{Store, StoreResult, keys};

impl Store {
    /// Whether a source (an alert, a channel, a plugin) has an open incident.
    pub fn has_open_incident(&self, tenant: &str, source: &str) -> StoreResult<bool> {
        self.open_incidents.contains_key(keys::named(tenant, source))
    }
}
