//! One ingest round: the batches a tenant's concurrent requests sent, kept in one transaction
//! with everything their events change (customers and their activity, the event-type
//! catalogue, cohorts, alerts and the notifications those raise). Ingest drives it: `accept`
//! each event, then `finish`; what must be woken once it is on disk comes back in `Finished`.

use std::collections::{BTreeSet, HashMap};

use jiff::Timestamp;

use super::catalogue;
use crate::alerts::{Alerts, TenantRules, Work};
use crate::cohorts::TenantCohorts;
use crate::notifications::routing::TenantRouting;
use crate::records::{Customer, Event, system};
use crate::store::{Tx, TxResult};

/// What the round needs from the tenant's configuration, read once before it starts.
pub(super) struct Setting<'a> {
    pub alerts: &'a Alerts,
    pub rules: &'a TenantRules,
    pub cohorts: &'a TenantCohorts,
    /// The round's batch id, kept with each event (retention removes events by it).
    pub batch: [u8; 8],
    /// The shard of the event-type catalogue this node writes.
    pub shard: u8,
}

pub(super) struct Round<'a> {
    setting: Setting<'a>,
    work: Work<'a>,
    types: catalogue::Seen,
    /// Per customer, the cohorts to judge it for once every event is counted.
    to_judge: HashMap<&'a str, BTreeSet<usize>>,
    /// Whether a customer the round created was reported (a `customer.created` rule watches).
    reported: bool,
}

/// What a round left to do once it is on disk.
pub(super) struct Finished {
    pub notified: usize,
    /// Plugin conditions wait for the scheduler.
    pub wants_scheduler: bool,
    /// System events went to the outbox.
    pub reported: bool,
}

impl<'a> Round<'a> {
    pub fn new(tx: &'a Tx<'a>, tenant: &'a str, now: Timestamp, setting: Setting<'a>) -> Self {
        Round {
            setting,
            work: Work::new(tx, tenant, now),
            types: catalogue::Seen::default(),
            to_judge: HashMap::new(),
            reported: false,
        }
    }

    /// Reads ahead, together, what `events` will look at (whether each was kept before, their
    /// customers, the alerts they may change, the catalogue's entries for their types): one
    /// round trip each instead of one per read, where reads are round trips.
    pub fn prefetch(&mut self, events: &[&'a Event]) -> TxResult<()> {
        let (tx, tenant, now) = (self.work.tx(), self.work.tenant, self.work.now);
        let customer_of = |event: &'a Event| event.customer_id.as_deref().expect("tenant events name their customer");
        tx.prefetch_records(tenant, events.iter().map(|e| e.id.as_str()), events.iter().map(|e| customer_of(e)))?;
        let mut alerts = Vec::new();
        for event in events {
            let id = customer_of(event);
            let customer = self.work.customer(id)?.unwrap_or_else(|| Customer::blank(id, now));
            alerts.extend(self.setting.rules.alerts_of(event, &customer));
        }
        tx.prefetch_alerts(tenant, alerts.iter().map(|(rule, scope)| (rule.as_str(), scope.as_str())))?;
        let types: BTreeSet<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        tx.prefetch_event_types(tenant, types.into_iter(), self.setting.shard)
    }

    /// Notifications raised so far.
    pub fn notified(&self) -> usize {
        self.work.notified()
    }

    /// Keeps `event` (`bytes` is its JSON) and counts it wherever it counts; `false` when an
    /// event with its id was kept before (the id is the idempotency key: a re-sent event changes
    /// nothing). `actor` is the key that sent it.
    pub fn accept(&mut self, actor: &str, bytes: &[u8], event: &'a Event) -> TxResult<bool> {
        let (tx, tenant, now) = (self.work.tx(), self.work.tenant, self.work.now);
        if tx.has_event(tenant, &event.id)? {
            return Ok(false);
        }
        tx.put_event(tenant, &event.id, event.timestamp, bytes, self.setting.batch)?;
        self.types.add(event);
        let id = event.customer_id.as_deref().expect("tenant events name their customer");
        let created = self.work.customer_or_create(id)?;
        // Rules see only events after they are saved: with none watching, there is nothing to
        // report (a bulk import writes no outbox entry per customer).
        if created && self.setting.rules.watches("customer.created") {
            self.reported = true;
            let properties = serde_json::json!({ "name": null, "fields": {} });
            let emitted = system::event("customer.created", Some(id), properties, Some(actor), now);
            let customer = self.work.customer(id)?;
            tx.emit(tenant, emitted, customer.as_ref())?;
        }
        let customer = self.work.customer_mut(id)?.expect("just created");
        customer.saw(event);
        let judge = self.to_judge.entry(id).or_default();
        for (i, cohort) in self.setting.cohorts.all.iter().enumerate() {
            if created || cohort.counts_type(&event.event_type) {
                cohort.count(customer, event, now);
                judge.insert(i);
            }
        }
        let customer = customer.without_tracks();
        self.setting.alerts.on_event(&mut self.work, self.setting.rules, event, &customer)?;
        Ok(true)
    }

    /// Judges the customers the round counted for their cohorts, then writes what changed;
    /// the notifications raised go where `routing` says.
    pub fn finish(mut self, routing: &TenantRouting) -> TxResult<Finished> {
        let (tx, tenant, now) = (self.work.tx(), self.work.tenant, self.work.now);
        let cohorts = self.setting.cohorts;
        for (id, judge) in &self.to_judge {
            let customer = self.work.customer_mut(id)?.expect("counted above");
            // Tracks of deleted cohorts go as the customer is next written.
            cohorts.drop_stale_tracks(customer);
            for i in judge {
                let cohort = &cohorts.all[*i];
                cohort.settle(tx, tenant, customer, now, self.setting.rules.cohort_listeners(cohort.id()))?;
            }
        }
        self.types.write(tx, tenant, self.setting.shard)?;
        let finished = Finished {
            notified: self.work.notified(),
            wants_scheduler: self.work.wants_scheduler(),
            reported: self.reported,
        };
        self.work.finish(routing)?;
        Ok(finished)
    }
}
