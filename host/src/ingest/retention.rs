//! Retention: events are kept for `ingest.event_retention` (by their own timestamp); older ones
//! are refused at ingest and pruned from the store, their idempotency keys with them.

use std::time::Duration;

use super::Ingest;
use crate::store::StoreResult;

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

    /// Removes the events older than the retention, of every tenant this node looks after;
    /// answers how many.
    pub fn prune(&self) -> StoreResult<usize> {
        let cutoff = self.clock.now() - self.cohorts.retention;
        let mut pruned = 0;
        for tenant in self.store.tenants.ids()?.into_iter().filter(|t| self.cluster.owns(t)) {
            pruned += self.store.prune_events(&tenant, cutoff)?;
        }
        Ok(pruned)
    }
}
