//! The outbox of system events and the cohort rules' waiting batches, outside transactions.

use super::{Store, StoreResult, decode, keys};
use crate::records::Event;
use crate::records::system::Pending;

/// A system event as the outbox holds it.
pub struct Outboxed {
    pub(super) key: Vec<u8>,
    pub pending: Pending,
}

/// Where an event goes in the outbox: after every event made before it.
pub(super) fn outbox_key(event: &Event) -> Vec<u8> {
    keys::outbox(crate::clock::sequence(event.timestamp), &event.id)
}

impl Store {
    /// The oldest system event in the outbox.
    pub fn first_system_event(&self) -> StoreResult<Option<Outboxed>> {
        let Some((key, bytes)) = self.system_events.first()? else { return Ok(None) };
        Ok(Some(Outboxed { key: key.to_vec(), pending: decode("system event", &bytes)? }))
    }

    /// Puts a system event in the outbox right after the change it reports (a change of a
    /// record kept outside the transactions' trees).
    pub fn emit(&self, tenant: &str, event: Event) -> StoreResult<()> {
        let key = outbox_key(&event);
        let bytes = serde_json::to_vec(&Pending::new(tenant, event, None)).expect("events serialize");
        self.system_events.insert(key, bytes)?;
        Ok(())
    }

    /// The customers whose entry or exit waits for a cohort rule's next batch.
    pub fn waiting_cohort_changes(&self, tenant: &str, rule: &str) -> StoreResult<Vec<String>> {
        let prefix = keys::rule_prefix(tenant, rule);
        self.cohort_batches
            .scan_prefix(&prefix)
            .keys()
            .map(|key| Ok(String::from_utf8_lossy(&key?[prefix.len()..]).into_owned()))
            .collect()
    }
}
