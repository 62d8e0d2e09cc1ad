//! A new definition's first membership, computed in the background from the stored customers
//! and events, while ingest goes on: events of ingest batches numbered below the cohort's
//! `version` are counted here, later ones by ingest into the same tracks. Nothing is announced:
//! the first membership is not a change. Interrupted (a restart, a new definition), it starts
//! over where it left off: a customer whose past is counted is not counted again.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;

use super::{Cohort, Cohorts, Compiled, Status};
use crate::records::Customer;
use crate::series::counts::Counts;
use crate::store::StoreResult;

/// Customers judged per transaction.
const CHUNK: usize = 500;

impl Cohorts {
    /// Computes the cohort's membership on a blocking thread, unless this node is at it already.
    pub fn spawn_compute(self: &Arc<Self>, tenant: String, id: String) {
        let running = (tenant.clone(), id.clone());
        if !self.computing.lock().expect("computing lock").insert(running.clone()) {
            return;
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            match this.compute(&tenant, &id) {
                Ok(()) => {
                    tracing::info!(%tenant, cohort = %id, elapsed_ms = started.elapsed().as_millis() as u64, "cohort computed")
                }
                Err(e) => tracing::error!(%tenant, cohort = %id, error = %e, "cohort computation failed"),
            }
            this.computing.lock().expect("computing lock").remove(&running);
        });
    }

    /// Starts the computations a stop interrupted (here or on a node that is gone) for the
    /// tenants `ours` picks; answers how many. (Two nodes at one computation only repeat work:
    /// a customer whose past is counted is not counted again.)
    pub fn resume(self: &Arc<Self>, ours: impl Fn(&str) -> bool) -> StoreResult<usize> {
        let mut started = 0;
        for (tenant, cohort) in self.store.cohorts.all::<Cohort>()? {
            if cohort.status == Status::Computing && ours(&tenant) {
                self.spawn_compute(tenant, cohort.id);
                started += 1;
            }
        }
        Ok(started)
    }

    /// Computes the cohort's membership, then marks it ready.
    pub fn compute(&self, tenant: &str, id: &str) -> StoreResult<()> {
        let Some(cohort) = self.get(tenant, id)?.filter(|c| c.status == Status::Computing) else { return Ok(()) };
        let version = cohort.version;
        let compiled = Compiled::new(cohort);
        let past = self.past_counts(tenant, &compiled)?;
        if !self.judge_all(tenant, &compiled, &past)? {
            return Ok(());
        }
        let marked = self.store.cohorts.update(tenant, id, |cohort: &mut Cohort| {
            if cohort.version != version {
                return false;
            }
            cohort.status = Status::Ready;
            cohort.computed_at = Some(self.clock.now());
            true
        })?;
        let Some(ready) = marked else { return Ok(()) };
        self.reload(tenant)?;
        // Customers created while the pass ran, past the point it had reached.
        self.judge_all(tenant, &Compiled::new(ready), &past)?;
        self.store.flush_now()
    }

    /// Per customer, the events from before the definition that its criteria count.
    fn past_counts(&self, tenant: &str, cohort: &Compiled) -> StoreResult<HashMap<String, Vec<Counts>>> {
        let mut counts: HashMap<String, Vec<Counts>> = HashMap::new();
        let now = self.clock.now();
        let Some(since) = cohort.oldest_counted(now) else { return Ok(counts) };
        for event in self.store.events_since(tenant, since) {
            let (batch, event) = event?;
            if batch >= cohort.cohort.version {
                continue;
            }
            let Some(customer) = event.customer_id.clone() else { continue };
            for (slot, bucket, oldest) in cohort.samples(&event, now) {
                let counted = counts.entry(customer.clone()).or_insert_with(|| cohort.empty_counts());
                counted[slot].add(bucket, oldest);
            }
        }
        Ok(counts)
    }

    /// Counts in the past and judges every customer not yet counted for this definition,
    /// silently. `false` when the definition changed meanwhile (this computation is over).
    fn judge_all(&self, tenant: &str, cohort: &Compiled, past: &HashMap<String, Vec<Counts>>) -> StoreResult<bool> {
        let mut after: Option<String> = None;
        loop {
            let chunk = self.store.customer_ids(tenant, after.as_deref(), CHUNK)?;
            let Some(last) = chunk.last() else { return Ok(true) };
            after = Some(last.clone());
            let now = self.clock.now();
            self.store.transact(|tx| {
                for id in &chunk {
                    let Some(mut customer) = tx.customer::<Customer>(tenant, id)? else { continue };
                    let counted = past.get(&customer.id);
                    let track = cohort.track(&mut customer);
                    if track.counted_past {
                        continue;
                    }
                    if let Some(counts) = counted {
                        for (kept, counted) in track.counts.iter_mut().zip(counts) {
                            kept.merge(counted);
                        }
                    }
                    track.counted_past = true;
                    let (member, due) = cohort.judge(&customer, &customer.cohorts[&cohort.cohort.version], now);
                    cohort.apply(tx, tenant, &mut customer, member, due, now, &[])?;
                    tx.put_customer(tenant, id, &customer)?;
                }
                Ok(())
            })?;
            if self.get(tenant, cohort.id())?.is_none_or(|c| c.version != cohort.cohort.version) {
                return Ok(false);
            }
        }
    }
}

impl Compiled {
    /// The oldest time the criteria count events from at `now`; none when no criterion counts
    /// events.
    pub fn oldest_counted(&self, now: Timestamp) -> Option<Timestamp> {
        self.spans().map(|span| span.current(now).window.start).min()
    }
}
