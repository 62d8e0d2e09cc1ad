//! The outbox of system events and the cohort rules' waiting batches, outside transactions.

use super::{Store, StoreResult, decode, keys, suffixes};
use crate::records::system::Pending;
use crate::records::{Customer, Event};

/// A system event as the outbox holds it.
pub struct Outboxed {
    pub(super) key: Vec<u8>,
    pub pending: Pending,
}

/// A system event's entry in the outbox, key and bytes: it sorts after every event made
/// before it. `customer` is the customer a customer event reports on, as the change left it.
pub(super) fn outbox_entry(tenant: &str, event: Event, customer: Option<&Customer>) -> (Vec<u8>, Vec<u8>) {
    let key = keys::outbox(crate::clock::sequence(event.timestamp), &event.id);
    let bytes = serde_json::to_vec(&Pending::new(tenant, event, customer)).expect("events serialize");
    (key, bytes)
}

impl Store {
    /// The oldest system event in the outbox of a tenant `ours` picks.
    pub fn first_system_event(&self, ours: impl Fn(&str) -> bool) -> StoreResult<Option<Outboxed>> {
        for entry in self.system_events.iter() {
            let (key, bytes) = entry?;
            let pending: Pending = decode("system event", &bytes)?;
            if ours(&pending.tenant) {
                return Ok(Some(Outboxed { key, pending }));
            }
        }
        Ok(None)
    }

    /// Puts a system event in the outbox right after the change it reports (a change of a
    /// record kept outside the transactions' trees).
    pub fn emit(&self, tenant: &str, event: Event) -> StoreResult<()> {
        let (key, bytes) = outbox_entry(tenant, event, None);
        self.system_events.insert(key, bytes)?;
        Ok(())
    }

    /// The customers whose entry or exit waits for a cohort rule's next batch.
    pub fn waiting_cohort_changes(&self, tenant: &str, rule: &str) -> StoreResult<Vec<String>> {
        suffixes(&self.cohort_batches, &keys::rule_prefix(tenant, rule))
    }
}
