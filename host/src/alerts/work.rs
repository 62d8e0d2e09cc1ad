//! One transaction's working set: the series, alerts and customers it reads, cached so a
//! batch touching the same alert a thousand times reads and writes it once, and the
//! transitions, notifications and timers it produces, written together by `finish`.

use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::Map;

use super::aggregate::{Agg, Series};
use super::keys;
use super::state::{AlertRecord, TransitionRecord};
use super::window::Period;
use crate::ingest::Customer;
use crate::notifications::{self, Notification};
use crate::store::{self, StoreError, Tx, TxResult};

struct Loaded {
    record: AlertRecord,
    due_at_load: Option<Timestamp>,
}

pub struct Work<'a> {
    tx: &'a Tx<'a>,
    pub tenant: &'a str,
    pub now: Timestamp,
    aggregates: HashMap<Vec<u8>, (Series, bool)>,
    alerts: HashMap<Vec<u8>, Loaded>,
    customers: HashMap<String, Option<Customer>>,
    transitions: Vec<(String, TransitionRecord)>,
    notifications: Vec<Notification>,
    soon: Vec<(String, String)>,
}

impl<'a> Work<'a> {
    pub fn new(tx: &'a Tx<'a>, tenant: &'a str, now: Timestamp) -> Self {
        Work {
            tx,
            tenant,
            now,
            aggregates: HashMap::new(),
            alerts: HashMap::new(),
            customers: HashMap::new(),
            transitions: Vec::new(),
            notifications: Vec::new(),
            soon: Vec::new(),
        }
    }

    pub fn tx(&self) -> &Tx<'a> {
        self.tx
    }

    fn series(&mut self, rule: &str, scope: &str) -> TxResult<&mut (Series, bool)> {
        let key = keys::alert(self.tenant, rule, scope);
        if !self.aggregates.contains_key(&key) {
            let series = match self.tx.aggregates.get(&key)? {
                Some(bytes) => Series::from_bytes(&bytes).ok_or_else(|| corrupt(&key))?,
                None => Series::default(),
            };
            self.aggregates.insert(key.clone(), (series, false));
        }
        Ok(self.aggregates.get_mut(&key).expect("just cached"))
    }

    /// Counts a sample in a bucket of the alert's series, dropping buckets older than `oldest`.
    pub fn add_sample(&mut self, rule: &str, scope: &str, bucket: i64, sample: f64, oldest: i64) -> TxResult<()> {
        let entry = self.series(rule, scope)?;
        entry.0.add(bucket, sample, oldest);
        entry.1 = true;
        Ok(())
    }

    /// The alert's aggregate over a period.
    pub fn window(&mut self, rule: &str, scope: &str, period: &Period) -> TxResult<Agg> {
        Ok(self.series(rule, scope)?.0.window(period.first, period.last))
    }

    /// The stored alert, if there is one.
    pub fn alert(&mut self, rule: &str, scope: &str) -> TxResult<Option<&AlertRecord>> {
        let key = keys::alert(self.tenant, rule, scope);
        if !self.alerts.contains_key(&key) {
            let Some(record) = store::tx_get_json::<AlertRecord>(self.tx.alerts, &key)? else { return Ok(None) };
            self.alerts.insert(key.clone(), Loaded { due_at_load: record.due, record });
        }
        Ok(self.alerts.get(&key).map(|loaded| &loaded.record))
    }

    /// The alert to change (a new one when there is none); give it back with `put_alert`.
    pub fn take_alert(&mut self, rule: &str, scope: &str) -> TxResult<AlertRecord> {
        let record = self.alert(rule, scope)?.cloned();
        Ok(record.unwrap_or_else(|| AlertRecord::new(self.now)))
    }

    pub fn put_alert(&mut self, rule: &str, scope: &str, record: AlertRecord) {
        let key = keys::alert(self.tenant, rule, scope);
        match self.alerts.get_mut(&key) {
            Some(loaded) => loaded.record = record,
            None => {
                self.alerts.insert(key, Loaded { record, due_at_load: None });
            }
        }
    }

    /// The alert's timer at `due` ran (and was removed): its next one must be written.
    pub fn timer_fired(&mut self, rule: &str, scope: &str, due: Timestamp) -> TxResult<()> {
        self.alert(rule, scope)?;
        if let Some(loaded) = self.alerts.get_mut(&keys::alert(self.tenant, rule, scope))
            && loaded.due_at_load == Some(due)
        {
            loaded.due_at_load = None;
        }
        Ok(())
    }

    pub fn customer(&mut self, id: &str) -> TxResult<Option<Customer>> {
        if !self.customers.contains_key(id) {
            let key = [self.tenant.as_bytes(), b"/", id.as_bytes()].concat();
            let customer = store::tx_get_json(self.tx.customers, &key)?;
            self.customers.insert(id.to_string(), customer);
        }
        Ok(self.customers[id].clone())
    }

    /// The customer, created without fields when it is new (an event for an unknown customer).
    pub fn customer_or_create(&mut self, id: &str) -> TxResult<Customer> {
        if let Some(customer) = self.customer(id)? {
            return Ok(customer);
        }
        let now = self.now;
        let customer =
            Customer { id: id.to_string(), name: None, fields: Map::new(), created_at: now, updated_at: now };
        let key = [self.tenant.as_bytes(), b"/", id.as_bytes()].concat();
        store::tx_put_json(self.tx.customers, &key, &customer)?;
        self.customers.insert(id.to_string(), Some(customer.clone()));
        Ok(customer)
    }

    pub fn transition(&mut self, rule: &str, record: TransitionRecord) {
        self.transitions.push((rule.to_string(), record));
    }

    pub fn notify(&mut self, notification: Notification) {
        self.notifications.push(notification);
    }

    /// Asks the scheduler to evaluate an alert as soon as it can (plugin conditions run there,
    /// outside transactions).
    pub fn soon(&mut self, rule: &str, scope: &str) {
        self.soon.push((rule.to_string(), scope.to_string()));
    }

    pub fn notified(&self) -> usize {
        self.notifications.len()
    }

    pub fn wants_scheduler(&self) -> bool {
        !self.soon.is_empty()
    }

    /// Writes everything that changed.
    pub fn finish(self) -> TxResult<()> {
        let tx = self.tx;
        for (key, (series, dirty)) in &self.aggregates {
            if *dirty {
                tx.aggregates.insert(key.as_slice(), series.to_bytes())?;
            }
        }
        for (key, loaded) in &self.alerts {
            store::tx_put_json(tx.alerts, key, &loaded.record)?;
            if loaded.record.due != loaded.due_at_load {
                // A timer key is the due time followed by the alert's key.
                if let Some(old) = loaded.due_at_load {
                    tx.timers.remove([&keys::due_bound(old)[..], key].concat())?;
                }
                if let Some(due) = loaded.record.due {
                    tx.timers.insert([&keys::due_bound(due)[..], key].concat(), &[][..])?;
                }
            }
        }
        for (rule, scope) in &self.soon {
            tx.timers.insert(keys::timer(self.now, self.tenant, rule, scope), &[][..])?;
        }
        for (rule, transition) in &self.transitions {
            let key = keys::transition(self.tenant, rule, transition.at, crate::clock::sequence(self.now));
            store::tx_put_json(tx.transitions, &key, transition)?;
        }
        for notification in &self.notifications {
            store::tx_put_json(tx.notifications, &notifications::key(self.tenant, &notification.id), notification)?;
        }
        Ok(())
    }
}

fn corrupt(key: &[u8]) -> sled::transaction::ConflictableTransactionError<StoreError> {
    let source = serde_json::Error::io(std::io::Error::other("not a series of aggregates"));
    sled::transaction::ConflictableTransactionError::Abort(StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}
