//! The transaction an ingest round, an evaluation or a change of customers, incidents or
//! deliveries runs in: typed reads and writes of the records they change together, with their
//! keys built here. A crash keeps all of a transaction or none of it.

use std::cell::RefCell;

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::backend::Fence;
use super::backend::{TxResult, abort};
use super::deliveries::{Stage, waiting};
use super::queues::{Outboxed, outbox_entry};
use super::stats::{Tallies, tally_in};
use super::tree::{TxTree, transaction_under};
use super::usage::{self, Kept};
use super::{QueueEntry, Store, StoreResult, Timer, decode, keys};
use crate::records::notification::OpenBatch;
use crate::records::stats::Minute;
use crate::records::{Customer, Event};

/// The trees one transaction may change.
pub struct Tx<'a> {
    events: &'a TxTree<'a>,
    customers: &'a TxTree<'a>,
    alerts: &'a TxTree<'a>,
    alert_counts: &'a TxTree<'a>,
    transitions: &'a TxTree<'a>,
    notifications: &'a TxTree<'a>,
    timers: &'a TxTree<'a>,
    deliveries: &'a TxTree<'a>,
    delivery_queue: &'a TxTree<'a>,
    events_by_time: &'a TxTree<'a>,
    event_types: &'a TxTree<'a>,
    system_events: &'a TxTree<'a>,
    cohort_members: &'a TxTree<'a>,
    cohort_batches: &'a TxTree<'a>,
    incidents: &'a TxTree<'a>,
    open_incidents: &'a TxTree<'a>,
    batches: &'a TxTree<'a>,
    batch_members: &'a TxTree<'a>,
    usage: &'a TxTree<'a>,
    /// Changes to the counts of events and customers kept, written as the body ends.
    kept: RefCell<usage::Changes>,
    /// The queue entries written, for the delivery worker once the transaction commits.
    queued: RefCell<Vec<QueueEntry>>,
    /// What it counted, for the stats once it commits.
    tallies: RefCell<Tallies>,
}

fn get<T: DeserializeOwned>(tree: &TxTree, key: &[u8]) -> TxResult<Option<T>> {
    match tree.get(key)? {
        Some(bytes) => decode(&String::from_utf8_lossy(key), &bytes).map(Some).map_err(abort),
        None => Ok(None),
    }
}

fn put<T: Serialize>(tree: &TxTree, key: &[u8], value: &T) -> TxResult<()> {
    tree.insert(key, serde_json::to_vec(value).expect("records serialize to JSON"))?;
    Ok(())
}

impl Store {
    /// Runs `body` as one serializable transaction; it is run again when a concurrent
    /// transaction conflicts, so it must do nothing but read and write through its `Tx`.
    pub fn transact<T>(&self, body: impl Fn(&Tx) -> TxResult<T>) -> StoreResult<T> {
        self.transact_under(None, body)
    }

    /// `transact` for a partition's work, committed only while `fence`'s lease holds (else
    /// `StoreError::Fenced`, and nothing is written).
    pub fn transact_under<T>(&self, fence: Option<&Fence>, body: impl Fn(&Tx) -> TxResult<T>) -> StoreResult<T> {
        let trees = [
            &self.events,
            &self.customers,
            &self.alerts,
            &self.transitions,
            &self.notifications,
            &self.timers,
            &self.deliveries,
            &self.delivery_queue,
            &self.events_by_time,
            &self.event_types,
            &self.system_events,
            &self.cohort_members,
            &self.cohort_batches,
            &self.incidents.0,
            &self.open_incidents,
            &self.batches,
            &self.batch_members,
            &self.alert_counts,
            &self.usage,
        ];
        let (out, queued, tallies) = transaction_under(&trees, fence, |t| {
            let tx = Tx {
                events: &t[0],
                customers: &t[1],
                alerts: &t[2],
                transitions: &t[3],
                notifications: &t[4],
                timers: &t[5],
                deliveries: &t[6],
                delivery_queue: &t[7],
                events_by_time: &t[8],
                event_types: &t[9],
                system_events: &t[10],
                cohort_members: &t[11],
                cohort_batches: &t[12],
                incidents: &t[13],
                open_incidents: &t[14],
                batches: &t[15],
                batch_members: &t[16],
                alert_counts: &t[17],
                usage: &t[18],
                kept: RefCell::default(),
                queued: RefCell::default(),
                tallies: RefCell::default(),
            };
            let out = body(&tx)?;
            usage::apply(tx.usage, &tx.kept.borrow())?;
            Ok((out, tx.queued.into_inner(), tx.tallies.into_inner()))
        })?;
        self.note_queued(queued);
        self.note_tallies(tallies);
        Ok(out)
    }
}

impl Tx<'_> {
    /// Counts something that happened to `tenant` at `at`, should the transaction commit.
    pub fn tally(&self, tenant: &str, at: Timestamp, f: impl FnOnce(&mut Minute)) {
        tally_in(&mut self.tallies.borrow_mut(), tenant, at, f);
    }

    /// Whether the tenant has an event with this id (the idempotency check).
    /// Reads ahead, together, whether each of `events` (ids) was kept before, and `customers`.
    pub fn prefetch_records<'k>(
        &self,
        tenant: &str,
        events: impl Iterator<Item = &'k str>,
        customers: impl Iterator<Item = &'k str>,
    ) -> TxResult<()> {
        let records = |ids: &mut dyn Iterator<Item = &'k str>| -> Vec<Vec<u8>> {
            ids.map(|id| keys::record(tenant, id).into_bytes()).collect()
        };
        self.events.prefetch(&records(&mut { events }))?;
        self.customers.prefetch(&records(&mut { customers }))
    }

    /// Reads ahead, together, the alerts (rule, scope key) of `alerts`.
    pub fn prefetch_alerts<'k>(&self, tenant: &str, alerts: impl Iterator<Item = (&'k str, &'k str)>) -> TxResult<()> {
        let keys: Vec<Vec<u8>> = alerts.map(|(rule, scope)| keys::alert(tenant, rule, scope)).collect();
        self.alerts.prefetch(&keys)
    }

    pub fn has_event(&self, tenant: &str, id: &str) -> TxResult<bool> {
        Ok(self.events.get(keys::record(tenant, id))?.is_some())
    }

    /// Keeps a new event (as its JSON; the caller found no event with its id, `has_event`) with
    /// its place in time and the ingest batch it came in.
    pub fn put_event(&self, tenant: &str, id: &str, at: Timestamp, json: &[u8], batch: [u8; 8]) -> TxResult<()> {
        self.events.insert(keys::record(tenant, id).as_bytes(), json)?;
        self.events_by_time.insert(keys::event_time(tenant, at, id), &batch[..])?;
        self.count(tenant, Kept::Events, 1);
        Ok(())
    }

    fn count(&self, tenant: &str, kept: Kept, change: i64) {
        *self.kept.borrow_mut().entry((tenant.to_string(), kept)).or_default() += change;
    }

    /// What the tenant's events of a type have looked like so far, as the catalogue's `shard`
    /// counted them.
    pub fn event_type<T: DeserializeOwned>(&self, tenant: &str, name: &str, shard: u8) -> TxResult<Option<T>> {
        get(self.event_types, &keys::event_type(tenant, name, shard))
    }

    pub fn put_event_type<T: Serialize>(&self, tenant: &str, name: &str, shard: u8, stats: &T) -> TxResult<()> {
        put(self.event_types, &keys::event_type(tenant, name, shard), stats)
    }

    /// Reads ahead, together, the catalogue's entries in `shard` for the event types `names`.
    pub fn prefetch_event_types<'k>(
        &self,
        tenant: &str,
        names: impl Iterator<Item = &'k str>,
        shard: u8,
    ) -> TxResult<()> {
        let keys: Vec<Vec<u8>> = names.map(|name| keys::event_type(tenant, name, shard)).collect();
        self.event_types.prefetch(&keys)
    }

    pub fn customer<T: DeserializeOwned>(&self, tenant: &str, id: &str) -> TxResult<Option<T>> {
        get(self.customers, keys::record(tenant, id).as_bytes())
    }

    pub fn put_customer<T: Serialize>(&self, tenant: &str, id: &str, customer: &T) -> TxResult<()> {
        let key = keys::record(tenant, id);
        if self.customers.get(key.as_bytes())?.is_none() {
            self.count(tenant, Kept::Customers, 1);
        }
        put(self.customers, key.as_bytes(), customer)
    }

    pub fn delete_customer(&self, tenant: &str, id: &str) -> TxResult<()> {
        if self.customers.remove(keys::record(tenant, id).as_bytes())?.is_some() {
            self.count(tenant, Kept::Customers, -1);
        }
        Ok(())
    }

    /// An alert as stored (its record and series, encoded by their owner).
    pub fn alert(&self, tenant: &str, rule: &str, scope: &str) -> TxResult<Option<Vec<u8>>> {
        self.alerts.get(keys::alert(tenant, rule, scope))
    }

    pub fn put_alert(&self, tenant: &str, rule: &str, scope: &str, bytes: Vec<u8>) -> TxResult<()> {
        self.alerts.insert(keys::alert(tenant, rule, scope), bytes)?;
        Ok(())
    }

    /// Removes an alert; answers what it was.
    pub fn delete_alert(&self, tenant: &str, rule: &str, scope: &str) -> TxResult<Option<Vec<u8>>> {
        self.alerts.remove(keys::alert(tenant, rule, scope))
    }

    /// How many of a rule's alerts stand where.
    pub fn alert_counts<T: DeserializeOwned>(&self, tenant: &str, rule: &str) -> TxResult<Option<T>> {
        get(self.alert_counts, &keys::rule_prefix(tenant, rule))
    }

    pub fn put_alert_counts<T: Serialize>(&self, tenant: &str, rule: &str, counts: &T) -> TxResult<()> {
        put(self.alert_counts, &keys::rule_prefix(tenant, rule), counts)
    }

    /// Adds an entry to a rule's history, at `at` (`sequence` orders entries of one moment).
    pub fn put_transition<T: Serialize>(
        &self,
        tenant: &str,
        rule: &str,
        at: Timestamp,
        sequence: u64,
        transition: &T,
    ) -> TxResult<()> {
        put(self.transitions, &keys::transition(tenant, rule, at, sequence), transition)
    }

    /// Sets a timer: the scheduler runs it at `due`. `tag` is what the scheduler is told with
    /// it (a rule's version, for its windows' moves).
    pub fn set_timer(&self, due: Timestamp, tenant: &str, rule: &str, scope: &str, tag: &str) -> TxResult<()> {
        self.timers.insert(keys::timer(due, tenant, rule, scope), tag.as_bytes())?;
        Ok(())
    }

    /// Removes a timer, if it is set.
    pub fn clear_timer(&self, due: Timestamp, tenant: &str, rule: &str, scope: &str) -> TxResult<()> {
        self.timers.remove(keys::timer(due, tenant, rule, scope))?;
        Ok(())
    }

    /// Takes a timer the scheduler runs; false when it is gone already (another node, or this
    /// one before a pause, ran it): its work is done, and is not done again.
    pub fn take_timer(&self, timer: &Timer) -> TxResult<bool> {
        Ok(self.timers.remove(keys::timer(timer.due, &timer.tenant, &timer.rule, &timer.scope))?.is_some())
    }

    pub fn put_notification<T: Serialize>(&self, tenant: &str, id: &str, notification: &T) -> TxResult<()> {
        put(self.notifications, &keys::named(tenant, id), notification)
    }

    /// Queues the first attempt of a delivery at `due`: until that attempt writes its record,
    /// the queue entry holds `waiting`, what the delivery needs beside its notification (its
    /// JSON must not be empty: a retry's entry is).
    pub fn queue_delivery<W: Serialize>(
        &self,
        due: Timestamp,
        tenant: &str,
        notification: &str,
        channel: &str,
        waiting: &W,
    ) -> TxResult<()> {
        let entry = QueueEntry::new(due, tenant, notification, channel);
        put(self.delivery_queue, &entry.key(), waiting)?;
        self.queued.borrow_mut().push(entry);
        Ok(())
    }

    /// Changes a delivery whose first attempt was queued at `first_due` where it is kept (its
    /// record, or what its queue entry holds before that attempt), when `change` says it
    /// changed it.
    pub fn change_delivery<R, W>(
        &self,
        first_due: Timestamp,
        tenant: &str,
        notification: &str,
        channel: &str,
        change: impl FnOnce(Stage<&mut R, &mut W>) -> bool,
    ) -> TxResult<()>
    where
        R: Serialize + DeserializeOwned,
        W: Serialize + DeserializeOwned,
    {
        let record = keys::delivery(tenant, notification, channel);
        if let Some(mut delivery) = get::<R>(self.deliveries, &record)? {
            if change(Stage::Recorded(&mut delivery)) {
                put(self.deliveries, &record, &delivery)?;
            }
            return Ok(());
        }
        let key = QueueEntry::new(first_due, tenant, notification, channel).key();
        let Some(bytes) = waiting(self.delivery_queue.get(&key)?) else { return Ok(()) };
        let mut queued: W = decode(&String::from_utf8_lossy(&key), &bytes).map_err(abort)?;
        if change(Stage::Waiting(&mut queued)) {
            put(self.delivery_queue, &key, &queued)?;
        }
        Ok(())
    }

    /// Puts a system event in the outbox, inside the transaction that makes the change it
    /// reports. `customer` is the customer a customer event reports on, as the change left it.
    pub fn emit(&self, tenant: &str, event: Event, customer: Option<&Customer>) -> TxResult<()> {
        let (key, bytes) = outbox_entry(tenant, event, customer);
        self.system_events.insert(key, bytes)?;
        Ok(())
    }

    /// Takes a system event from the outbox; `false` when another pass took it.
    pub fn take_system_event(&self, outboxed: &Outboxed) -> TxResult<bool> {
        Ok(self.system_events.remove(outboxed.key.as_slice())?.is_some())
    }

    /// Records that a customer entered a cohort at `since`.
    pub fn add_cohort_member(&self, tenant: &str, cohort: &str, customer: &str, since: Timestamp) -> TxResult<()> {
        put(self.cohort_members, &keys::alert(tenant, cohort, customer), &since)
    }

    pub fn remove_cohort_member(&self, tenant: &str, cohort: &str, customer: &str) -> TxResult<()> {
        self.cohort_members.remove(keys::alert(tenant, cohort, customer))?;
        Ok(())
    }

    /// A customer's entry or exit waiting for a cohort rule's next batch.
    pub fn cohort_change<T: DeserializeOwned>(&self, tenant: &str, rule: &str, customer: &str) -> TxResult<Option<T>> {
        get(self.cohort_batches, &keys::alert(tenant, rule, customer))
    }

    pub fn put_cohort_change<T: Serialize>(
        &self,
        tenant: &str,
        rule: &str,
        customer: &str,
        change: &T,
    ) -> TxResult<()> {
        put(self.cohort_batches, &keys::alert(tenant, rule, customer), change)
    }

    /// Takes a waiting change out of the batch; answers it.
    pub fn take_cohort_change<T: DeserializeOwned>(
        &self,
        tenant: &str,
        rule: &str,
        customer: &str,
    ) -> TxResult<Option<T>> {
        let change = self.cohort_change(tenant, rule, customer)?;
        self.cohort_batches.remove(keys::alert(tenant, rule, customer))?;
        Ok(change)
    }

    pub fn incident<T: DeserializeOwned>(&self, tenant: &str, id: &str) -> TxResult<Option<T>> {
        get(self.incidents, keys::record(tenant, id).as_bytes())
    }

    pub fn put_incident<T: Serialize>(&self, tenant: &str, id: &str, incident: &T) -> TxResult<()> {
        put(self.incidents, keys::record(tenant, id).as_bytes(), incident)
    }

    /// The id of the open incident a source (an alert, a channel, a plugin) raised.
    pub fn open_incident(&self, tenant: &str, source: &str) -> TxResult<Option<String>> {
        Ok(self.open_incidents.get(keys::named(tenant, source))?.map(|id| String::from_utf8_lossy(&id).into_owned()))
    }

    pub fn set_open_incident(&self, tenant: &str, source: &str, id: &str) -> TxResult<()> {
        self.open_incidents.insert(keys::named(tenant, source), id.as_bytes())?;
        Ok(())
    }

    pub fn clear_open_incident(&self, tenant: &str, source: &str) -> TxResult<()> {
        self.open_incidents.remove(keys::named(tenant, source))?;
        Ok(())
    }

    /// The batch a channel is collecting under `key` (a digest, quiet hours' end, a group).
    pub fn open_batch(&self, tenant: &str, channel: &str, key: &str) -> TxResult<Option<OpenBatch>> {
        get(self.batches, &keys::alert(tenant, channel, key))
    }

    pub fn put_open_batch(&self, tenant: &str, channel: &str, key: &str, batch: &OpenBatch) -> TxResult<()> {
        put(self.batches, &keys::alert(tenant, channel, key), batch)
    }

    /// Records that a batch collected a notification.
    pub fn add_batch_member(&self, tenant: &str, batch: &str, member: &str) -> TxResult<()> {
        self.batch_members.insert(keys::alert(tenant, batch, member), &[][..])?;
        Ok(())
    }
}
