//! Retention: events are kept for `ingest.event_retention` (by their own timestamp); older ones
//! are refused at ingest and pruned from the store, their idempotency keys with them.

use std::time::Duration;

use super::Ingest;
use crate::records;
use crate::store::{StoreResult, keys};

/// How often the pruning runs.
const EVERY: Duration = Duration::from_secs(600);

impl Ingest {
    /// Prunes now and every ten minutes.
    pub fn spawn_retention(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let ingest = this.clone();
                match tokio::task::spawn_blocking(move || ingest.prune()).await {
                    Ok(Ok(pruned)) if pruned > 0 => tracing::info!(pruned, "old events pruned"),
                    Ok(Err(e)) => tracing::error!(error = %e, "pruning old events failed"),
                    _ => {}
                }
                tokio::time::sleep(EVERY).await;
            }
        });
    }

    /// Removes the events older than the retention, of every tenant; answers how many.
    pub fn prune(&self) -> StoreResult<usize> {
        let cutoff = self.clock.now() - self.cohorts.retention;
        let mut pruned = 0;
        for tenant in self.store.tenants.ids()? {
            let prefix = [tenant.as_bytes(), b"\0"].concat();
            let end = keys::event_time(&tenant, cutoff, "");
            for key in self.store.events_by_time.range(prefix.clone()..end).keys() {
                let key = key?;
                let id = String::from_utf8_lossy(&key[prefix.len() + 8..]).into_owned();
                self.store.events.remove(records::key(&tenant, &id))?;
                self.store.events_by_time.remove(&key)?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }
}
