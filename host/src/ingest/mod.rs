//! Customers and events: what tenants send, validated and kept durably.
//!
//! An event's `id` is its idempotency key: the first write wins (an atomic insert-if-absent),
//! and a re-sent event changes nothing. An event for an unknown customer creates it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::alerts::{Alerts, Work};
use crate::clock::SharedClock;
use crate::context::CustomerRef;
use crate::rules::{Invalid, invalid};
use crate::store::{self, Store, StoreError, StoreResult};

/// How far ahead of the server's clock an event's timestamp may be (clock skew).
const MAX_FUTURE: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);
const MAX_ID_BYTES: usize = 256;
const MAX_TYPE_BYTES: usize = 128;
const MAX_FIELD_NAME_BYTES: usize = 128;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub name: Option<String>,
    /// Custom fields (`tier`, `seats`, `contract_end`, ...) that scopes and filters use.
    pub fields: Map<String, Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Customer {
    /// A customer known only by its id (an event named it, or a dry run needs one).
    pub fn blank(id: &str, now: Timestamp) -> Self {
        Customer { id: id.to_string(), name: None, fields: Map::new(), created_at: now, updated_at: now }
    }

    /// The customer as templates and plugins see it.
    pub fn to_ref(&self) -> CustomerRef {
        CustomerRef { id: self.id.clone(), name: self.name.clone(), fields: self.fields.clone() }
    }
}

/// A customer as a client sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub customer_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub timestamp: Timestamp,
    pub properties: Map<String, Value>,
    pub received_at: Timestamp,
}

/// An event as a client sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventInput {
    id: String,
    customer_id: String,
    #[serde(rename = "type")]
    event_type: String,
    timestamp: Timestamp,
    #[serde(default)]
    properties: Map<String, Value>,
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
    /// One batch at a time per tenant: concurrent batches of a tenant touch the same alerts, and
    /// taking turns is cheaper than a transaction retrying a whole batch after a conflict.
    turns: Arc<Mutex<HashMap<String, Arc<Mutex<()>>>>>,
}

/// The key of a tenant's customer or event.
pub fn key(tenant: &str, id: &str) -> String {
    format!("{tenant}/{id}")
}

impl Ingest {
    pub fn new(store: Store, clock: SharedClock, alerts: Arc<Alerts>) -> Self {
        Ingest { store, clock, alerts, turns: Arc::default() }
    }

    /// Creates or replaces a customer; `true` when it was created.
    pub fn put_customer(&self, tenant: &str, id: &str, input: CustomerInput) -> Result<(Customer, bool), PutError> {
        check_id("id", id).map_err(PutError::Invalid)?;
        check_fields(&input.fields).map_err(PutError::Invalid)?;
        let now = self.clock.now();
        let existing = self.customer(tenant, id)?;
        let customer = Customer {
            id: id.to_string(),
            name: input.name,
            fields: input.fields,
            created_at: existing.as_ref().map_or(now, |c| c.created_at),
            updated_at: now,
        };
        store::put_json(&self.store.customers, &key(tenant, id), &customer)?;
        self.alerts.customer_saved(tenant, &customer)?;
        Ok((customer, existing.is_none()))
    }

    pub fn customer(&self, tenant: &str, id: &str) -> StoreResult<Option<Customer>> {
        store::get_json(&self.store.customers, &key(tenant, id))
    }

    /// Up to `limit` customers in id order, after the id `after`.
    pub fn customers(&self, tenant: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<Customer>> {
        let prefix = format!("{tenant}/");
        let start = match after {
            // The smallest key above `after`'s.
            Some(after) => format!("{prefix}{after}\0"),
            None => prefix.clone(),
        };
        self.store
            .customers
            .range(start..)
            .take_while(|entry| entry.as_ref().map_or(true, |(k, _)| k.starts_with(prefix.as_bytes())))
            .take(limit)
            .map(|entry| {
                let (k, v) = entry?;
                serde_json::from_slice(&v)
                    .map_err(|source| StoreError::Corrupt { key: String::from_utf8_lossy(&k).into_owned(), source })
            })
            .collect()
    }

    /// Removes a customer and its alerts; `false` when there was none. Its events stay.
    pub fn delete_customer(&self, tenant: &str, id: &str) -> StoreResult<bool> {
        let existed = self.store.customers.remove(key(tenant, id))?.is_some();
        if existed {
            self.alerts.customer_deleted(tenant, id)?;
        }
        Ok(existed)
    }

    /// Removes every customer and event of a tenant that is being deleted.
    pub fn delete_tenant(&self, tenant: &str) -> StoreResult<()> {
        let prefix = format!("{tenant}/");
        store::remove_prefix(&self.store.customers, &prefix)?;
        store::remove_prefix(&self.store.events, &prefix)
    }

    /// Validates each event on its own; keeps the good ones and evaluates the rules they
    /// concern, all in one transaction (a crash keeps all of it or none). The caller flushes
    /// before answering. Blocking: run it off the async threads.
    pub fn ingest(&self, tenant: &str, events: Vec<Value>) -> StoreResult<BatchOutcome> {
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
        let rules = self.alerts.tenant_rules(tenant)?;
        let turn = self.turns.lock().expect("ingest turns lock").entry(tenant.to_string()).or_default().clone();
        let _turn = turn.lock().expect("ingest turn lock");
        let (accepted, notified, wake) = self.store.transact(|tx| {
            let mut work = Work::new(tx, tenant, now);
            let mut accepted = 0;
            for (bytes, event) in &good {
                let key = key(tenant, &event.id);
                // The id is the idempotency key: a re-sent event changes nothing.
                if tx.events.get(key.as_bytes())?.is_some() {
                    continue;
                }
                tx.events.insert(key.as_bytes(), bytes.as_slice())?;
                let customer = work.customer_or_create(&event.customer_id)?;
                self.alerts.on_event(&mut work, &rules, event, &customer)?;
                accepted += 1;
            }
            let (notified, wake) = (work.notified(), work.wants_scheduler());
            work.finish()?;
            Ok((accepted, notified, wake))
        })?;
        if wake {
            self.alerts.wake();
        }
        if notified > 0 {
            self.alerts.wake_deliveries();
        }
        outcome.accepted = accepted;
        outcome.duplicates = good.len() - accepted;
        outcome.notifications = notified;
        Ok(outcome)
    }

    pub fn event(&self, tenant: &str, id: &str) -> StoreResult<Option<Event>> {
        store::get_json(&self.store.events, &key(tenant, id))
    }

    /// An event checked as ingest checks it, without keeping it (for dry runs).
    pub fn parse_event(&self, raw: Value) -> Result<Event, Invalid> {
        self.parse_event_at(raw, self.clock.now())
    }

    fn parse_event_at(&self, raw: Value, now: Timestamp) -> Result<Event, Invalid> {
        let input: EventInput = serde_path_to_error::deserialize(raw).map_err(|e| {
            let inner = e.inner().to_string();
            let path = e.path().to_string();
            let field = match inner.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
                Some(missing) if path == "." => missing.to_string(),
                Some(missing) => format!("{path}.{missing}"),
                None if path == "." => "event".to_string(),
                None => path,
            };
            invalid(field, inner)
        })?;
        check_id("id", &input.id)?;
        check_id("customer_id", &input.customer_id)?;
        if input.event_type.is_empty() || input.event_type.len() > MAX_TYPE_BYTES {
            return Err(invalid("type", format!("must be 1 to {MAX_TYPE_BYTES} bytes")));
        }
        if input.timestamp > now + MAX_FUTURE {
            return Err(invalid("timestamp", "is more than 24 hours ahead of the server's clock"));
        }
        Ok(Event {
            id: input.id,
            customer_id: input.customer_id,
            event_type: input.event_type,
            timestamp: input.timestamp,
            properties: input.properties,
            received_at: now,
        })
    }
}

/// Why a customer could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("{}: {}", .0.field, .0.message)]
    Invalid(Invalid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sled::Error> for PutError {
    fn from(e: sled::Error) -> Self {
        PutError::Store(e.into())
    }
}

/// Ids: 1 to 256 bytes, no control characters.
fn check_id(field: &str, id: &str) -> Result<(), Invalid> {
    if id.is_empty() || id.len() > MAX_ID_BYTES || id.chars().any(char::is_control) {
        return Err(invalid(field, format!("must be 1 to {MAX_ID_BYTES} bytes without control characters")));
    }
    Ok(())
}

/// Custom fields: names of 1 to 128 bytes; values that filters can compare (strings, numbers,
/// booleans, null, or lists of those).
fn check_fields(fields: &Map<String, Value>) -> Result<(), Invalid> {
    for (name, value) in fields {
        if name.is_empty() || name.len() > MAX_FIELD_NAME_BYTES {
            return Err(invalid(
                format!("fields.{name}"),
                format!("field names must be 1 to {MAX_FIELD_NAME_BYTES} bytes"),
            ));
        }
        let scalar = |v: &Value| !matches!(v, Value::Object(_) | Value::Array(_));
        let ok = match value {
            Value::Array(items) => items.iter().all(scalar),
            other => scalar(other),
        };
        if !ok {
            return Err(invalid(
                format!("fields.{name}"),
                "must be a string, number, boolean, null, or a list of those",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_must_be_comparable() {
        let fields = |v: Value| v.as_object().unwrap().clone();
        assert!(check_fields(&fields(json!({ "tier": "pro", "seats": 120, "tags": ["a", 1] }))).is_ok());
        let err = check_fields(&fields(json!({ "address": { "city": "Oslo" } }))).unwrap_err();
        assert_eq!(err.field, "fields.address");
    }

    #[test]
    fn ids_have_bounds() {
        assert!(check_id("id", "cus_1").is_ok());
        assert_eq!(check_id("id", "").unwrap_err().field, "id");
        assert!(check_id("id", "a\nb").is_err());
        assert!(check_id("id", &"x".repeat(257)).is_err());
    }
}
