//! One transaction's working set: the alerts (with their series) and customers it reads, cached so a
//! batch touching the same alert or customer a thousand times reads and writes it once, and the
//! transitions, notifications and timers it produces, written together by `finish`.

use std::collections::HashMap;

use jiff::Timestamp;

use super::counts::{self, Standing};
use super::state::{AlertRecord, TransitionRecord, stored};
use crate::notifications;
use crate::notifications::routing::TenantRouting;
use crate::records::Customer;
use crate::records::notification::Notification;
use crate::series::aggregate::{Agg, Series};
use crate::series::window::Period;
use crate::store::{self, Tx, TxResult};

/// One alert as the transaction sees it: its record (none yet for a new alert) and its series.
struct Entry {
    record: Option<AlertRecord>,
    series: Series,
    due_at_load: Option<Timestamp>,
    /// Where it stood when stored (none: not stored yet), for the rule's state counts.
    standing_at_load: Option<Standing>,
    changed: bool,
}

pub struct Work<'a> {
    tx: &'a Tx<'a>,
    pub tenant: &'a str,
    pub now: Timestamp,
    /// By rule and scope key.
    alerts: HashMap<(String, String), Entry>,
    /// Each customer read, and whether it changed.
    customers: HashMap<String, (Option<Customer>, bool)>,
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
            alerts: HashMap::new(),
            customers: HashMap::new(),
            transitions: Vec::new(),
            notifications: Vec::new(),
            soon: Vec::new(),
        }
    }

    pub fn tx(&self) -> &'a Tx<'a> {
        self.tx
    }

    fn entry(&mut self, rule: &str, scope: &str) -> TxResult<&mut Entry> {
        let key = (rule.to_string(), scope.to_string());
        if !self.alerts.contains_key(&key) {
            let (record, series) = match self.tx.alert(self.tenant, rule, scope)? {
                Some(bytes) => {
                    let (record, series) = stored::decode(&bytes)
                        .ok_or_else(|| store::abort(store::corrupt(format!("{rule}/{scope}"), "an alert")))?;
                    (Some(record), series)
                }
                None => (None, Series::default()),
            };
            let due_at_load = record.as_ref().and_then(|r| r.due);
            let standing_at_load = record.as_ref().map(Standing::of);
            self.alerts.insert(key.clone(), Entry { record, series, due_at_load, standing_at_load, changed: false });
        }
        Ok(self.alerts.get_mut(&key).expect("just cached"))
    }

    /// Counts a sample in a bucket of the alert's series, dropping buckets older than `oldest`.
    pub fn add_sample(&mut self, rule: &str, scope: &str, bucket: i64, sample: f64, oldest: i64) -> TxResult<()> {
        let entry = self.entry(rule, scope)?;
        entry.series.add(bucket, sample, oldest);
        entry.changed = true;
        Ok(())
    }

    /// The alert's aggregate over a period.
    pub fn window(&mut self, rule: &str, scope: &str, period: &Period) -> TxResult<Agg> {
        Ok(self.entry(rule, scope)?.series.window(period.first, period.last))
    }

    /// The alert's series of buckets.
    pub fn series(&mut self, rule: &str, scope: &str) -> TxResult<&Series> {
        Ok(&self.entry(rule, scope)?.series)
    }

    /// The stored alert, if there is one.
    pub fn alert(&mut self, rule: &str, scope: &str) -> TxResult<Option<&AlertRecord>> {
        Ok(self.entry(rule, scope)?.record.as_ref())
    }

    /// The alert to change (a new one when there is none); give it back with `put_alert`.
    pub fn take_alert(&mut self, rule: &str, scope: &str) -> TxResult<AlertRecord> {
        let now = self.now;
        Ok(self.entry(rule, scope)?.record.clone().unwrap_or_else(|| AlertRecord::new(now)))
    }

    pub fn put_alert(&mut self, rule: &str, scope: &str, record: AlertRecord) -> TxResult<()> {
        let entry = self.entry(rule, scope)?;
        entry.record = Some(record);
        entry.changed = true;
        Ok(())
    }

    /// The alert's timer at `due` ran (and was removed): its next one must be written.
    pub fn timer_fired(&mut self, rule: &str, scope: &str, due: Timestamp) -> TxResult<()> {
        let entry = self.entry(rule, scope)?;
        if entry.due_at_load == Some(due) {
            entry.due_at_load = None;
            entry.changed = true;
        }
        Ok(())
    }

    fn customer_entry(&mut self, id: &str) -> TxResult<&mut (Option<Customer>, bool)> {
        if !self.customers.contains_key(id) {
            let customer = self.tx.customer(self.tenant, id)?;
            self.customers.insert(id.to_string(), (customer, false));
        }
        Ok(self.customers.get_mut(id).expect("just cached"))
    }

    pub fn customer(&mut self, id: &str) -> TxResult<Option<Customer>> {
        Ok(self.customer_entry(id)?.0.clone())
    }

    /// The customer to change; it is written by `finish`.
    pub fn customer_mut(&mut self, id: &str) -> TxResult<Option<&mut Customer>> {
        let entry = self.customer_entry(id)?;
        entry.1 = true;
        Ok(entry.0.as_mut())
    }

    /// Creates the customer without fields when it is new (an event for an unknown customer);
    /// `true` when it did.
    pub fn customer_or_create(&mut self, id: &str) -> TxResult<bool> {
        let now = self.now;
        let entry = self.customer_entry(id)?;
        if entry.0.is_some() {
            return Ok(false);
        }
        *entry = (Some(Customer::blank(id, now)), true);
        Ok(true)
    }

    /// Stores `customer` (new or replacing the one read) at `finish`.
    pub fn put_customer(&mut self, customer: Customer) {
        self.customers.insert(customer.id.clone(), (Some(customer), true));
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

    /// Writes everything that changed; the notifications go where `routing` says.
    pub fn finish(mut self, routing: &TenantRouting) -> TxResult<()> {
        let tx = self.tx;
        for (id, (customer, changed)) in &self.customers {
            if let (Some(customer), true) = (customer, changed) {
                tx.put_customer(self.tenant, id, customer)?;
            }
        }
        let mut moves: HashMap<&str, Vec<counts::Move>> = HashMap::new();
        for ((rule, scope), entry) in self.alerts.iter().filter(|(_, entry)| entry.changed) {
            // A series without a record yet (a plugin rule between its event and its
            // evaluation) is an alert still evaluating.
            let record = entry.record.clone().unwrap_or_else(|| AlertRecord::new(self.now));
            tx.put_alert(self.tenant, rule, scope, stored::encode(&record, &entry.series))?;
            let standing = Standing::of(&record);
            if entry.standing_at_load != Some(standing) {
                moves.entry(rule).or_default().push((entry.standing_at_load, Some(standing)));
            }
            if record.due != entry.due_at_load {
                if let Some(old) = entry.due_at_load {
                    tx.clear_timer(old, self.tenant, rule, scope)?;
                }
                if let Some(due) = record.due {
                    tx.set_timer(due, self.tenant, rule, scope, "")?;
                }
            }
        }
        for (rule, moves) in moves {
            counts::apply(tx, self.tenant, rule, self.now, moves)?;
        }
        for (rule, scope) in &self.soon {
            tx.set_timer(self.now, self.tenant, rule, scope, "")?;
        }
        for (rule, transition) in &self.transitions {
            tx.put_transition(self.tenant, rule, transition.at, crate::clock::sequence(self.now), transition)?;
        }
        for notification in &mut self.notifications {
            notifications::save(tx, self.tenant, notification, routing, self.now)?;
        }
        Ok(())
    }
}
