//! System events from the outbox: each is matched against the tenant's `event_match` rules and
//! leaves the outbox in the transaction that queues its notifications, so each is matched once,
//! also across a crash.

use std::time::Duration;

use super::Ingest;
use crate::alerts::Work;
use crate::notifications::incidents;
use crate::store::StoreResult;

/// The longest the loop sleeps before looking again.
const POLL: Duration = Duration::from_secs(1);

impl Ingest {
    /// Matches pending system events now and whenever more are put in the outbox.
    pub fn spawn_system_events(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let ingest = this.clone();
                let pass = tokio::task::spawn_blocking(move || ingest.run_system_events()).await;
                if let Ok(Err(e)) = pass {
                    tracing::error!(error = %e, "matching system events failed; retrying");
                }
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = this.system_due.notified() => {}
                }
            }
        });
    }

    /// Matches every pending system event; answers how many. Blocking.
    pub fn run_system_events(&self) -> StoreResult<usize> {
        let _one_pass = self.system_turn.lock().expect("system events lock");
        let mut matched = 0;
        let mut notified = 0;
        while let Some(outboxed) = self.store.first_system_event(|tenant| self.cluster.owns(tenant))? {
            let pending = &outboxed.pending;
            let rules = self.alerts.tenant_rules(&pending.tenant)?;
            let routing = self.notifications.routing(&pending.tenant)?;
            let now = self.clock.now();
            notified += self.store.transact(|tx| {
                if !tx.take_system_event(&outboxed)? {
                    return Ok(0);
                }
                let tenant = pending.tenant.as_str();
                let mut work = Work::new(tx, tenant, now);
                let customer = match (&pending.customer, &pending.event.customer_id) {
                    (Some(snapshot), _) => Some(snapshot.clone()),
                    (None, Some(id)) => work.customer(id)?,
                    (None, None) => None,
                };
                self.alerts.on_system_event(&mut work, &rules, &pending.event, customer.as_ref())?;
                if let Some(n) = incidents::raised_by(tx, tenant, &pending.event, now)? {
                    work.notify(n);
                }
                let notified = work.notified();
                work.finish(&routing)?;
                Ok(notified)
            })?;
            matched += 1;
        }
        // The delivery worker flushes before it attempts what was queued.
        if notified > 0 {
            self.notifications.wake_deliveries();
        }
        Ok(matched)
    }
}
