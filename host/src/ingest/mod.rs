//! Customers and events: what tenants send, validated and kept durably, and what follows from
//! it in the same transaction (activity, the event-type catalogue, rules, cohorts). Klaxon's
//! own system events enter here too, from the outbox (`system`).
//!
//! An event's `id` is its idempotency key: the first write wins, and a re-sent event changes
//! nothing. An event for an unknown customer creates it. Events are kept for
//! `ingest.event_retention` (`retention`).

mod catalogue;
mod customers;
mod parse;
mod retention;
mod round;
mod system;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::alerts::Alerts;
use crate::clock::SharedClock;
use crate::cluster::Cluster;
use crate::cohorts::Cohorts;
use crate::error::Invalid;
use crate::notifications::Notifications;
use crate::records;
use crate::store::group::{self, Group};
use crate::store::{Store, StoreResult};
pub use catalogue::{EventTypeStats, EventTypes};
pub use customers::{CustomerInput, PutError};
use round::{Round, Setting};

/// The most events one ingest transaction takes (it always takes at least one batch).
const MAX_ROUND_EVENTS: usize = 10_000;
/// Tenants written at once, each in transactions of its own: a tenant whose transactions are
/// long holds back the others only when this many are being written.
const TENANTS_AT_ONCE: usize = 4;

/// A batch waiting for its transaction: its valid events (each with its JSON) and who sent it.
struct Pending {
    tenant: String,
    actor: String,
    events: Vec<(Vec<u8>, records::Event)>,
}

/// What one batch came to in its transaction.
#[derive(Debug, Default, Clone, Copy)]
struct Written {
    accepted: usize,
    notifications: usize,
}

/// What became of a batch.
#[derive(Debug, Default, Serialize)]
pub struct BatchOutcome {
    pub accepted: usize,
    pub duplicates: usize,
    /// Notifications the accepted events queued.
    pub notifications: usize,
    pub rejected: Vec<Rejected>,
}

/// An event of the batch that was refused, by its position.
#[derive(Debug, Serialize)]
pub struct Rejected {
    pub index: usize,
    pub field: Option<String>,
    pub message: String,
}

#[derive(Clone)]
pub struct Ingest {
    store: Store,
    clock: SharedClock,
    alerts: Arc<Alerts>,
    cohorts: Arc<Cohorts>,
    notifications: Arc<Notifications>,
    /// Which tenants' outbox and retention this node looks after.
    cluster: Arc<Cluster>,
    /// One transaction at a time per tenant: each ingest transaction, and each save of a
    /// cohort's definition (see `save_cohort`).
    turns: Arc<Mutex<HashMap<String, Arc<Mutex<()>>>>>,
    /// Batches waiting to share transactions: a tenant's concurrent requests are written
    /// together, and up to `TENANTS_AT_ONCE` tenants at once.
    queue: Group<Pending, Written>,
    /// Notified when system events were put in the outbox.
    system_due: Arc<Notify>,
    /// One pass over the outbox at a time.
    system_turn: Arc<Mutex<()>>,
}

impl Ingest {
    pub fn new(
        store: Store,
        clock: SharedClock,
        alerts: Arc<Alerts>,
        cohorts: Arc<Cohorts>,
        notifications: Arc<Notifications>,
        cluster: Arc<Cluster>,
        system_due: Arc<Notify>,
    ) -> Self {
        Ingest {
            store,
            clock,
            alerts,
            cohorts,
            notifications,
            cluster,
            turns: Arc::default(),
            queue: Group::by_owner(
                |p: &Pending| p.events.len(),
                MAX_ROUND_EVENTS,
                |p: &Pending| &p.tenant,
                TENANTS_AT_ONCE,
            ),
            system_due,
            system_turn: Arc::default(),
        }
    }

    /// Runs `f` in the tenant's turn.
    fn in_turn<T>(&self, tenant: &str, f: impl FnOnce() -> T) -> T {
        let turn = self.turns.lock().expect("ingest turns lock").entry(tenant.to_string()).or_default().clone();
        let _turn = turn.lock().expect("ingest turn lock");
        f()
    }

    /// Saves a cohort's definition in the tenant's turn: every ingest batch is then either
    /// before it (counted by the cohort's computation) or after it (counted by ingest).
    pub fn save_cohort(
        &self,
        tenant: &str,
        created_by: &str,
        existing: Option<crate::cohorts::Cohort>,
        spec: crate::cohorts::CohortSpec,
    ) -> StoreResult<crate::cohorts::Cohort> {
        self.in_turn(tenant, || {
            let version = self.store.generate_id()?;
            self.cohorts.save(tenant, created_by, existing, spec, version)
        })
    }

    /// Validates each event on its own; keeps the good ones and everything they change (the
    /// customers' activity, the catalogue, rules and cohorts), all in one transaction (a crash
    /// keeps all of it or none) that concurrent batches of the tenant share (`queue`). `actor`
    /// is the key sending them. The caller flushes before answering.
    pub async fn ingest(&self, tenant: &str, actor: &str, events: Vec<Value>) -> StoreResult<BatchOutcome> {
        let now = self.clock.now();
        let mut outcome = BatchOutcome::default();
        let mut good = Vec::with_capacity(events.len());
        for (index, raw) in events.into_iter().enumerate() {
            match self.parse_event_at(raw, now) {
                Ok(event) => good.push((serde_json::to_vec(&event).expect("events serialize"), event)),
                Err(Invalid { field, message }) => {
                    outcome.rejected.push(Rejected { index, field: Some(field), message })
                }
            }
        }
        if good.is_empty() {
            return Ok(outcome);
        }
        let sent = good.len();
        let this = self.clone();
        let pending = Pending { tenant: tenant.to_string(), actor: actor.to_string(), events: good };
        let written = self.queue.submit(pending, move |round| this.write_round(round)).await?;
        outcome.accepted = written.accepted;
        outcome.duplicates = sent - written.accepted;
        outcome.notifications = written.notifications;
        Ok(outcome)
    }

    /// Writes a round of one tenant's batches; answers each batch's outcome.
    fn write_round(&self, round: Vec<Pending>) -> Vec<StoreResult<Written>> {
        group::shared(round.len(), self.write(&round[0].tenant, &round))
    }

    /// Writes `batches` in one transaction (a round), in the tenant's turn: each event, and
    /// everything it changes. Answers what became of each batch.
    fn write(&self, tenant: &str, batches: &[Pending]) -> StoreResult<Vec<Written>> {
        let now = self.clock.now();
        let (written, finished) = self.in_turn(tenant, || {
            let rules = self.alerts.tenant_rules(tenant)?;
            let cohorts = self.cohorts.tenant(tenant)?;
            let routing = self.notifications.routing(tenant)?;
            let batch = self.store.generate_id()?.to_be_bytes();
            self.store.transact(|tx| {
                let shard = self.cluster.shard();
                let setting = Setting { alerts: &self.alerts, rules: &rules, cohorts: &cohorts, batch, shard };
                let mut round = Round::new(tx, tenant, now, setting);
                let events: Vec<&records::Event> =
                    batches.iter().flat_map(|b| b.events.iter().map(|(_, e)| e)).collect();
                round.prefetch(&events)?;
                let mut written = Vec::with_capacity(batches.len());
                for Pending { actor, events, .. } in batches {
                    let (mut accepted, notified_before) = (0, round.notified());
                    for (bytes, event) in events {
                        if round.accept(actor, bytes, event)? {
                            accepted += 1;
                        }
                    }
                    written.push(Written { accepted, notifications: round.notified() - notified_before });
                }
                let accepted = written.iter().map(|w| w.accepted as u64).sum::<u64>();
                tx.tally(tenant, now, |minute| minute.events += accepted);
                Ok((written, round.finish(&routing)?))
            })
        })?;
        if finished.wants_scheduler {
            self.alerts.wake();
        }
        if finished.notified > 0 {
            self.notifications.wake_deliveries();
        }
        if finished.reported {
            self.system_due.notify_one();
        }
        Ok(written)
    }
}
