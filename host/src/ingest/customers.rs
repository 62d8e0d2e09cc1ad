//! Customers: created, replaced and deleted by clients (or created by their first event), each
//! change reported as a system event and judged against the tenant's cohorts and time-driven
//! rules in the transaction that makes it.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Ingest;
use super::parse::{check_fields, check_id};
use crate::alerts::Work;
use crate::error::Invalid;
use crate::records::{Customer, system};
use crate::store::{StoreError, StoreResult};

/// A customer as a client sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub fields: Map<String, Value>,
}

/// Why a customer could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("{}: {}", .0.field, .0.message)]
    Invalid(Invalid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Ingest {
    /// Creates or replaces a customer's name and fields (its activity stays); `true` when it
    /// was created. `actor` is the key making the change.
    pub fn put_customer(
        &self,
        tenant: &str,
        actor: &str,
        id: &str,
        input: CustomerInput,
    ) -> Result<(Customer, bool), PutError> {
        check_id("id", id).map_err(PutError::Invalid)?;
        check_fields(&input.fields).map_err(PutError::Invalid)?;
        let now = self.clock.now();
        let rules = self.alerts.tenant_rules(tenant)?;
        let cohorts = self.cohorts.tenant(tenant)?;
        let routing = self.notifications.routing(tenant)?;
        let (customer, created, notified) = self.store.transact(|tx| {
            let mut work = Work::new(tx, tenant, now);
            let existing = work.customer(id)?;
            let mut customer = existing.clone().unwrap_or_else(|| Customer::blank(id, now));
            customer.name = input.name.clone();
            customer.fields = input.fields.clone();
            customer.updated_at = now;
            cohorts.drop_stale_tracks(&mut customer);
            for cohort in &cohorts.all {
                cohort.settle(tx, tenant, &mut customer, now, rules.cohort_listeners(cohort.id()))?;
            }
            let report = match &existing {
                None => Some(("customer.created", json!({ "name": customer.name, "fields": customer.fields }))),
                Some(old) => changes(old, &customer).map(|changes| ("customer.updated", changes)),
            };
            if let Some((kind, properties)) = report {
                let event = system::event(kind, Some(id), properties, Some(actor), now);
                tx.emit(tenant, event, Some(&customer))?;
            }
            work.put_customer(customer.clone());
            self.alerts.customer_saved(&mut work, &rules, &customer)?;
            let notified = work.notified();
            work.finish(&routing)?;
            Ok((customer, existing.is_none(), notified))
        })?;
        self.after_change(notified);
        Ok((customer, created))
    }

    pub fn customer(&self, tenant: &str, id: &str) -> StoreResult<Option<Customer>> {
        self.store.customer(tenant, id)
    }

    /// Up to `limit` customers in id order, after the id `after`.
    pub fn customers(&self, tenant: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<Customer>> {
        self.store.customers(tenant, after, limit)
    }

    /// Removes a customer: it leaves its cohorts, its alerts go, and a `customer.deleted`
    /// system event reports it; `false` when there was none. Its events stay.
    pub fn delete_customer(&self, tenant: &str, actor: &str, id: &str) -> StoreResult<bool> {
        let now = self.clock.now();
        let rules = self.alerts.tenant_rules(tenant)?;
        let cohorts = self.cohorts.tenant(tenant)?;
        let deleted = self.store.transact(|tx| {
            let Some(mut customer) = tx.customer::<Customer>(tenant, id)? else {
                return Ok(false);
            };
            tx.delete_customer(tenant, id)?;
            for cohort in &cohorts.all {
                cohort.apply(tx, tenant, &mut customer, false, None, now, rules.cohort_listeners(cohort.id()))?;
            }
            self.alerts.customer_deleted(&Work::new(tx, tenant, now), &rules, id)?;
            let properties = json!({ "name": customer.name, "fields": customer.fields });
            let event = system::event("customer.deleted", Some(id), properties, Some(actor), now);
            tx.emit(tenant, event, Some(&customer))?;
            Ok(true)
        })?;
        self.after_change(0);
        Ok(deleted)
    }

    /// Wakes what a change outside a batch may have given work to.
    fn after_change(&self, notified: usize) {
        self.system_due.notify_one();
        if notified > 0 {
            self.notifications.wake_deliveries();
        }
    }
}

/// What changed between two versions of a customer, as a `customer.updated` event's
/// properties: `changed` (the names) and `changes.<name>.old|new`. `None` when nothing did.
fn changes(old: &Customer, new: &Customer) -> Option<Value> {
    let mut names = Vec::new();
    let mut changes = Map::new();
    let mut compare = |name: &str, before: Option<&Value>, after: Option<&Value>| {
        if before != after {
            names.push(json!(name));
            changes.insert(name.to_string(), json!({ "old": before, "new": after }));
        }
    };
    let (old_name, new_name) = (old.name.as_ref().map(|n| json!(n)), new.name.as_ref().map(|n| json!(n)));
    compare("name", old_name.as_ref(), new_name.as_ref());
    let all: std::collections::BTreeSet<&String> = old.fields.keys().chain(new.fields.keys()).collect();
    for field in all {
        compare(field, old.fields.get(field), new.fields.get(field));
    }
    (!names.is_empty()).then(|| json!({ "changed": names, "changes": changes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_each_field_with_old_and_new() {
        let mut old = Customer::blank("c", jiff::Timestamp::UNIX_EPOCH);
        old.fields.insert("tier".into(), json!("pro"));
        old.fields.insert("contract_end".into(), json!("2030-06-30"));
        let mut new = old.clone();
        assert_eq!(changes(&old, &new), None);
        new.fields.insert("contract_end".into(), json!("2031-06-30"));
        new.fields.remove("tier");
        let changes = changes(&old, &new).unwrap();
        assert_eq!(changes["changed"], json!(["contract_end", "tier"]));
        assert_eq!(changes["changes"]["contract_end"], json!({ "old": "2030-06-30", "new": "2031-06-30" }));
        assert_eq!(changes["changes"]["tier"], json!({ "old": "pro", "new": null }));
    }
}
